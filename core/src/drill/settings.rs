//! The drill function's own variables (the common ones are [`crate::config`]'s): where the
//! evidence goes, how many restores a run makes, how long one may take, and where they run.

use crate::config::ConfigError;
use crate::duration::Duration;
use crate::region::Region;
use std::collections::BTreeMap;

/// The variables only the drill function reads (`function_environment.drill` of
/// `shared/permissions.json`).
pub const VARIABLES: &[&str] = &[
    "EVIDENCE_BUCKET",
    "DRILL_BATCH",
    "DRILL_TIMEOUT",
    "DRILL_INSTANCE_TYPE",
    "DRILL_SUBNETS",
    "DRILL_SECURITY_GROUPS",
];

/// The most restores one run may make (`DRILL_BATCH`).
pub const MAX_BATCH: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrillSettings {
    /// `EVIDENCE_BUCKET`: the S3 bucket of the records (`None` only for the command-line tool,
    /// which then keeps no evidence).
    pub evidence_bucket: Option<String>,
    /// `DRILL_BATCH`: restores per run, at most.
    pub batch: usize,
    /// `DRILL_TIMEOUT`: how long a restore may take to be ready before it is `timed-out`; and
    /// the age past which a drill resource left behind is swept.
    pub timeout: Duration,
    /// `DRILL_INSTANCE_TYPE`: the type of every drill instance; `None`: the original's.
    pub instance_type: Option<String>,
    /// `DRILL_SUBNETS`: the subnet of each region's drill instances; elsewhere the default
    /// subnet of an available zone.
    pub subnets: BTreeMap<Region, String>,
    /// `DRILL_SECURITY_GROUPS`: the groups of each region's drill instances; elsewhere a group
    /// of this deployment with no ingress.
    pub security_groups: BTreeMap<Region, Vec<String>>,
}

impl Default for DrillSettings {
    fn default() -> Self {
        Self {
            evidence_bucket: None,
            batch: 10,
            timeout: Duration::minutes(30),
            instance_type: None,
            subnets: BTreeMap::new(),
            security_groups: BTreeMap::new(),
        }
    }
}

impl DrillSettings {
    /// The drill function's settings: `EVIDENCE_BUCKET` is required.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok(), true)
    }

    /// Reads each variable through `lookup`; unset and empty both mean the default.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
        bucket_required: bool,
    ) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let fail = |variable: &'static str, value: &str, reason: &str| ConfigError {
            variable,
            value: value.to_string(),
            reason: reason.to_string(),
        };
        let mut s = Self::default();
        match get("EVIDENCE_BUCKET") {
            Some(v) => {
                s.evidence_bucket =
                    Some(validate_bucket(v.trim()).map_err(|r| fail("EVIDENCE_BUCKET", &v, &r))?)
            }
            None if bucket_required => {
                return Err(fail(
                    "EVIDENCE_BUCKET",
                    "",
                    "required: the S3 bucket the drill records go to",
                ));
            }
            None => {}
        }
        if let Some(v) = get("DRILL_BATCH") {
            s.batch = v
                .trim()
                .parse()
                .ok()
                .filter(|n| (1..=MAX_BATCH).contains(n))
                .ok_or_else(|| {
                    fail(
                        "DRILL_BATCH",
                        &v,
                        &format!("expected a whole number from 1 to {MAX_BATCH}"),
                    )
                })?;
        }
        if let Some(v) = get("DRILL_TIMEOUT") {
            s.timeout =
                Duration::parse(&v).map_err(|e| fail("DRILL_TIMEOUT", &v, &e.to_string()))?;
        }
        if let Some(v) = get("DRILL_INSTANCE_TYPE") {
            s.instance_type = Some(
                validate_instance_type(v.trim())
                    .map_err(|r| fail("DRILL_INSTANCE_TYPE", &v, &r))?,
            );
        }
        if let Some(v) = get("DRILL_SUBNETS") {
            for (region, id) in
                region_pairs(&v, "subnet-").map_err(|r| fail("DRILL_SUBNETS", &v, &r))?
            {
                if s.subnets.insert(region.clone(), id).is_some() {
                    let why = format!("region {region} is named twice: one subnet per region");
                    return Err(fail("DRILL_SUBNETS", &v, &why));
                }
            }
        }
        if let Some(v) = get("DRILL_SECURITY_GROUPS") {
            for (region, id) in
                region_pairs(&v, "sg-").map_err(|r| fail("DRILL_SECURITY_GROUPS", &v, &r))?
            {
                s.security_groups.entry(region).or_default().push(id);
            }
        }
        Ok(s)
    }
}

/// `region=id,region=id`, each id beginning `prefix` and followed by hexadecimal digits.
fn region_pairs(text: &str, prefix: &str) -> Result<Vec<(Region, String)>, String> {
    let mut pairs = Vec::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (region, id) = pair
            .split_once('=')
            .ok_or_else(|| format!("{pair:?} is not region={prefix}..."))?;
        let region = Region::parse(region.trim())?;
        let id = id.trim();
        let hex = id.strip_prefix(prefix).unwrap_or("");
        if hex.len() < 8 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!(
                "{id:?} is not an id of the form {prefix}0123abcd..."
            ));
        }
        pairs.push((region, id.to_string()));
    }
    Ok(pairs)
}

/// S3's rules for a bucket name: 3 to 63 lowercase letters, digits, dots and hyphens, beginning
/// and ending with a letter or digit.
fn validate_bucket(v: &str) -> Result<String, String> {
    let ok = v.len() >= 3
        && v.len() <= 63
        && v.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && v.starts_with(|c: char| c.is_ascii_alphanumeric())
        && v.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !ok {
        return Err("expected an S3 bucket name: 3 to 63 lowercase letters, digits, . and -, beginning and ending with a letter or digit".into());
    }
    Ok(v.to_string())
}

/// An instance type's shape (`m5.large`, `t3a.micro`, `u-6tb1.metal`): EC2 says whether the
/// region offers it.
fn validate_instance_type(v: &str) -> Result<String, String> {
    let ok = v.split_once('.').is_some_and(|(family, size)| {
        !family.is_empty()
            && !size.is_empty()
            && !size.contains('.')
            && v.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
    });
    if !ok {
        return Err("expected an instance type such as m5.large".into());
    }
    Ok(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)], required: bool) -> Result<DrillSettings, ConfigError> {
        let vars: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        DrillSettings::from_lookup(|k| vars.get(k).cloned(), required)
    }

    #[test]
    fn defaults_and_every_variable() {
        let s = settings(&[("EVIDENCE_BUCKET", "drill-evidence")], true).unwrap();
        assert_eq!(s.batch, 10);
        assert_eq!(s.timeout, Duration::minutes(30));
        assert_eq!(s.evidence_bucket.as_deref(), Some("drill-evidence"));
        let s = settings(
            &[
                ("EVIDENCE_BUCKET", "my.evidence-1"),
                ("DRILL_BATCH", "1000"),
                ("DRILL_TIMEOUT", "45m"),
                ("DRILL_INSTANCE_TYPE", "t3.micro"),
                (
                    "DRILL_SUBNETS",
                    "us-west-2=subnet-0123abcd, eu-west-1=subnet-89abcdef",
                ),
                (
                    "DRILL_SECURITY_GROUPS",
                    "us-west-2=sg-0123abcd,us-west-2=sg-0123abce",
                ),
            ],
            true,
        )
        .unwrap();
        let west = Region::parse("us-west-2").unwrap();
        assert_eq!(s.batch, 1000);
        assert_eq!(s.timeout, Duration::minutes(45));
        assert_eq!(s.instance_type.as_deref(), Some("t3.micro"));
        assert_eq!(s.subnets[&west], "subnet-0123abcd");
        assert_eq!(s.subnets.len(), 2);
        assert_eq!(s.security_groups[&west], ["sg-0123abcd", "sg-0123abce"]);
        // The command-line tool may run without a bucket.
        assert_eq!(settings(&[], false).unwrap().evidence_bucket, None);
    }

    #[test]
    fn a_bad_or_missing_value_names_the_variable() {
        let err = settings(&[], true).unwrap_err();
        assert_eq!(err.variable, "EVIDENCE_BUCKET");
        assert!(err.to_string().contains("required"), "{err}");
        let cases = [
            ("EVIDENCE_BUCKET", "Evidence_Bucket"),
            ("EVIDENCE_BUCKET", "s3://evidence"),
            ("DRILL_BATCH", "0"),
            ("DRILL_BATCH", "1001"),
            ("DRILL_BATCH", "ten"),
            ("DRILL_TIMEOUT", "30s"),
            ("DRILL_INSTANCE_TYPE", "large"),
            ("DRILL_SUBNETS", "us-west-2"),
            ("DRILL_SUBNETS", "us-west-2=sg-0123abcd"),
            (
                "DRILL_SUBNETS",
                "us-west-2=subnet-0123abcd,us-west-2=subnet-0123abce",
            ),
            ("DRILL_SUBNETS", "Mars=subnet-0123abcd"),
            ("DRILL_SECURITY_GROUPS", "us-west-2=subnet-0123abcd"),
        ];
        for (name, value) in cases {
            let mut vars = vec![("EVIDENCE_BUCKET", "evidence")];
            vars.retain(|(k, _)| *k != name);
            vars.push((name, value));
            let err = settings(&vars, true).unwrap_err();
            assert_eq!(err.variable, name, "{value}");
            assert!(err.to_string().contains(value), "{err}");
        }
    }
}
