//! AWS region names, checked for shape (not against a list, so new regions need no release).

use serde::Serialize;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Region(#[serde(deserialize_with = "checked")] String);

/// A region read from JSON (a continuation's) is checked as one from the environment is.
fn checked<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let text = <String as serde::Deserialize>::deserialize(d)?;
    Region::parse(&text)
        .map(|r| r.0)
        .map_err(serde::de::Error::custom)
}

impl Region {
    /// `us-east-1`, `ap-southeast-2`, `us-gov-west-1`: lowercase words joined by `-`, ending in a number.
    pub fn parse(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split('-').collect();
        let shaped = parts.len() >= 3
            && parts[..parts.len() - 1]
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
            && parts[0].len() == 2
            && parts
                .last()
                .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        if shaped {
            Ok(Self(text.to_string()))
        } else {
            Err(format!(
                "{text:?} is not an AWS region name (like us-east-1)"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A comma-separated list of regions; blanks are ignored and repeats dropped, order kept.
pub fn parse_region_list(text: &str) -> Result<Vec<Region>, String> {
    let mut regions: Vec<Region> = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let region = Region::parse(part)?;
        if !regions.contains(&region) {
            regions.push(region);
        }
    }
    Ok(regions)
}

/// The form written into tags: `us-west-2,eu-west-1`, or the empty string for none.
pub fn format_region_list(regions: &[Region]) -> String {
    regions
        .iter()
        .map(Region::as_str)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_real_region_shapes() {
        for r in [
            "us-east-1",
            "ap-southeast-2",
            "us-gov-west-1",
            "eu-central-2",
            "il-central-1",
        ] {
            assert!(Region::parse(r).is_ok(), "{r}");
        }
    }

    #[test]
    fn rejects_other_shapes() {
        for r in [
            "",
            "us-east",
            "US-EAST-1",
            "us_east_1",
            "useast1",
            "us-east-1a",
            "mars",
            "u-east-1",
        ] {
            assert!(Region::parse(r).is_err(), "{r}");
        }
    }

    #[test]
    fn lists_drop_blanks_and_repeats() {
        let list = parse_region_list(" us-west-2,,eu-west-1, us-west-2 ").unwrap();
        assert_eq!(format_region_list(&list), "us-west-2,eu-west-1");
        assert!(parse_region_list("").unwrap().is_empty());
        assert!(parse_region_list("us-west-2,nowhere").is_err());
    }
}
