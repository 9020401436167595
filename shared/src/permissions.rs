//! What each function is allowed to call, from `shared/permissions.json`: the same list the
//! tests hold each function's calls to and the SAM template's policies are checked against.

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
pub struct Permissions {
    pub environment: Vec<String>,
    /// The variables only one function reads, by function (the drill's own).
    #[serde(default)]
    pub function_environment: BTreeMap<String, Vec<String>>,
    pub functions: BTreeMap<String, Vec<String>>,
}

pub const JSON: &str = include_str!("../permissions.json");

pub fn permissions() -> Permissions {
    // The file is part of the source and checked by a unit test below.
    serde_json::from_str(JSON).unwrap_or(Permissions {
        environment: Vec::new(),
        function_environment: BTreeMap::new(),
        functions: BTreeMap::new(),
    })
}

/// The EC2 actions (`ec2:CreateImage`, ...) that `function` may call.
pub fn ec2_actions(function: &str) -> Vec<String> {
    permissions().functions.remove(function).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_parses_and_names_every_variable_the_config_reads() {
        let p: Permissions = serde_json::from_str(JSON).expect("permissions.json parses");
        assert_eq!(p.environment, crate::config::VARIABLES);
        assert_eq!(
            p.function_environment["drill"],
            backup_core::drill::settings::VARIABLES
        );
        for f in [
            "create-image",
            "create-snapshot",
            "replicate",
            "expire",
            "drill",
        ] {
            assert!(!p.functions[f].is_empty(), "{f}");
        }
    }
}
