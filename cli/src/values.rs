//! The value parsers of the command line: a bad region, duration, time or id is rejected by clap
//! with a message that names the flag and says what was expected.

use chrono::{DateTime, Utc};
use shared::create::ResourceKind;
use shared::drill::settings::DrillSettings;
use shared::duration::Duration;
use shared::region::parse_region_list;
use shared::tags::parse_time;
use shared::{Config, Region};

/// A setting mirrored from a configuration variable. An empty variable means the default, as it
/// does for the functions, so `COPY_TO_REGIONS=` is no regions rather than an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting<T>(pub Option<T>);

fn blank_or<T>(
    text: &str,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<Setting<T>, String> {
    if text.trim().is_empty() {
        Ok(Setting(None))
    } else {
        parse(text.trim()).map(|v| Setting(Some(v)))
    }
}

/// One variable through the functions' own parser, so the CLI accepts exactly what they do.
fn as_the_functions_read(name: &str, text: &str) -> Result<Config, String> {
    Config::from_lookup(|n| (n == name).then(|| text.to_string())).map_err(|e| e.reason)
}

pub fn tag_prefix(text: &str) -> Result<Setting<String>, String> {
    blank_or(text, |v| {
        as_the_functions_read("TAG_PREFIX", v).map(|c| c.tag_prefix)
    })
}

pub fn deployment_name(text: &str) -> Result<Setting<String>, String> {
    blank_or(text, |v| {
        as_the_functions_read("DEPLOYMENT_NAME", v).map(|c| c.deployment_name)
    })
}

pub fn region_list(text: &str) -> Result<Setting<Vec<Region>>, String> {
    // Blank means none (not "the default"), as COPY_TO_REGIONS does for the functions.
    parse_region_list(text).map(|r| Setting(Some(r)))
}

pub fn duration_setting(text: &str) -> Result<Setting<Duration>, String> {
    blank_or(text, |v| Duration::parse(v).map_err(|e| e.to_string()))
}

/// A duration as the variables take it (`90m`, `12h`, `30d`, `2w`, a bare number of days).
pub fn duration(text: &str) -> Result<Duration, String> {
    Duration::parse(text).map_err(|e| e.to_string())
}

/// `drill --timeout`: a duration with its unit. A bare number is refused rather than read as
/// days (as DRILL_TIMEOUT reads it): this flag took seconds before.
pub fn drill_timeout(text: &str) -> Result<Duration, String> {
    if text.trim().bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{text:?} has no unit: give minutes or hours, like 15m or 1h"
        ));
    }
    as_the_drill_reads("DRILL_TIMEOUT", text).map(|s| s.timeout)
}

/// `--bucket` and `EVIDENCE_BUCKET`: an S3 bucket name, checked as the drill function checks it
/// (blank: none).
pub fn bucket(text: &str) -> Result<Setting<String>, String> {
    blank_or(text, |v| {
        as_the_drill_reads("EVIDENCE_BUCKET", v).map(|s| s.evidence_bucket.unwrap_or_default())
    })
}

/// One of the drill's variables through the function's own parser.
fn as_the_drill_reads(name: &str, text: &str) -> Result<DrillSettings, String> {
    DrillSettings::from_lookup(|n| (n == name).then(|| text.to_string()), false)
        .map_err(|e| e.reason)
}

/// `--dr-account` and `DR_ACCOUNT`: an account id of 12 digits, checked as the functions check
/// DR_ACCOUNT (blank: none).
pub fn account_id(text: &str) -> Result<Setting<String>, String> {
    blank_or(text, |v| {
        as_the_functions_read("DR_ACCOUNT", v).map(|c| c.dr_account.unwrap_or_default())
    })
}

pub fn region_setting(text: &str) -> Result<Setting<Region>, String> {
    blank_or(text, Region::parse)
}

pub fn region(text: &str) -> Result<Region, String> {
    Region::parse(text)
}

/// `--before`: RFC 3339, like the times in the tags.
pub fn time(text: &str) -> Result<DateTime<Utc>, String> {
    parse_time(text)
        .ok_or_else(|| format!("{text:?} is not an RFC 3339 time like 2026-11-25T03:00:00Z"))
}

/// What `backup` is given: an instance or a volume id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceId {
    pub kind: ResourceKind,
    pub id: String,
}

pub fn source_id(text: &str) -> Result<SourceId, String> {
    [ResourceKind::Instance, ResourceKind::Volume]
        .into_iter()
        .find(|k| k.is_id(text))
        .map(|kind| SourceId {
            kind,
            id: text.to_string(),
        })
        .ok_or_else(|| {
            format!("{text} is neither an instance id (i-...) nor a volume id (vol-...)")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_settings_mean_the_default() {
        assert_eq!(duration_setting(" "), Ok(Setting(None)));
        assert_eq!(tag_prefix(""), Ok(Setting(None)));
        assert_eq!(region_setting(""), Ok(Setting(None)));
        assert_eq!(region_list(""), Ok(Setting(Some(vec![]))));
    }

    #[test]
    fn settings_are_checked_as_the_functions_check_them() {
        assert_eq!(
            duration_setting("12h"),
            Ok(Setting(Some(Duration::hours(12))))
        );
        assert!(duration_setting("soon").is_err());
        assert!(tag_prefix("aws:backup").is_err());
        assert!(deployment_name("a b").is_err());
        assert!(region_list("us-west-2,Mars").is_err());
        assert!(
            time("yesterday")
                .unwrap_err()
                .contains("not an RFC 3339 time")
        );
        assert_eq!(
            source_id("vol-0123abcd").unwrap().kind,
            ResourceKind::Volume
        );
        assert!(source_id("sg-12345678").is_err());
        assert_eq!(drill_timeout("15m"), Ok(Duration::minutes(15)));
        assert!(drill_timeout("900").unwrap_err().contains("no unit"));
        assert!(drill_timeout("soon").is_err());
        assert_eq!(
            bucket("my-evidence"),
            Ok(Setting(Some("my-evidence".into())))
        );
        assert_eq!(bucket(""), Ok(Setting(None)));
        assert!(bucket("s3://my-evidence").is_err());
        assert_eq!(duration("90d"), Ok(Duration::days(90)));
        assert_eq!(
            account_id(" 444455556666 "),
            Ok(Setting(Some("444455556666".into())))
        );
        assert_eq!(account_id(""), Ok(Setting(None)));
        assert!(
            account_id("4444-5555-6666")
                .unwrap_err()
                .contains("12 digits")
        );
    }
}
