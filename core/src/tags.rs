//! The tag contract: which tags users set on their instances and volumes, and which tags every
//! backup carries. Keys are matched case-insensitively; keys we write use the configured prefix.

use crate::config::{Config, parse_bool};
use crate::duration::Duration;
use crate::region::{Region, format_region_list, parse_region_list};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// Tags as EC2 returns them, in order.
pub type Tags = Vec<(String, String)>;

/// EC2 allows at most 50 user tags on a resource.
pub const MAX_TAGS: usize = 50;

/// The names after `P:` in the contract.
pub mod key {
    pub const INTERVAL: &str = "interval";
    pub const RETENTION: &str = "retention";
    pub const COPY_TO: &str = "copy-to";
    pub const COPY_RETENTION: &str = "copy-retention";
    pub const REBOOT: &str = "reboot";
    pub const MANAGED_BY: &str = "managed-by";
    pub const KIND: &str = "kind";
    pub const SOURCE: &str = "source";
    pub const SOURCE_REGION: &str = "source-region";
    pub const CREATED_AT: &str = "created-at";
    pub const EXPIRES_AT: &str = "expires-at";
    pub const COPY_OF: &str = "copy-of";
    pub const COPIES: &str = "copies";
    pub const HOLD: &str = "hold";
    pub const REQUEST_ID: &str = "request-id";
    /// On a drill's throwaway instance or volume: the backup it was restored from, the run
    /// that made it and when (see the drill function).
    pub const DRILL_OF: &str = "drill-of";
    pub const DRILL_RUN: &str = "drill-run";
    pub const DRILL_STARTED_AT: &str = "drill-started-at";
    /// On a drilled backup: its last drill, when, how it ended and (passed) how long it took.
    pub const DRILLED_AT: &str = "drilled-at";
    pub const DRILL_RESULT: &str = "drill-result";
    pub const RESTORE_SECONDS: &str = "restore-seconds";
    /// On an original (and its shareable copy) shared with the DR account: that account.
    pub const SHARED_WITH: &str = "shared-with";
    /// On a shareable copy (re-encrypted with the share key in the same region): its original.
    pub const SHARE_OF: &str = "share-of";
    /// On a vault's copy: the account that shared the backup it copies.
    pub const SOURCE_ACCOUNT: &str = "source-account";
}

/// What a backup is: an AMI (with its snapshots) or a standalone EBS snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Image,
    Snapshot,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Image => "image",
            Kind::Snapshot => "snapshot",
        }
    }

    /// The code EC2 answers for an id of this kind that does not exist.
    pub fn not_found_code(self) -> &'static str {
        match self {
            Kind::Image => crate::codes::AMI_NOT_FOUND,
            Kind::Snapshot => crate::codes::SNAPSHOT_NOT_FOUND,
        }
    }
}

/// The tag keys of one deployment, built from `TAG_PREFIX`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagKeys {
    prefix: String,
}

impl TagKeys {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_string(),
        }
    }

    /// The opt-in key, `P` itself.
    pub fn opt_in(&self) -> &str {
        &self.prefix
    }

    /// `P:name`, as written on backups.
    pub fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.prefix)
    }

    /// Spellings of the opt-in key that a sweep asks EC2 for: EC2's tag filters are
    /// case-sensitive, so the common cases are listed and the rest matched here.
    pub fn opt_in_spellings(&self) -> Vec<String> {
        let lower = self.prefix.to_ascii_lowercase();
        let mut title = lower.clone();
        if let Some(first) = title.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        let mut spellings = vec![
            self.prefix.clone(),
            lower.clone(),
            title,
            self.prefix.to_ascii_uppercase(),
        ];
        spellings.sort();
        spellings.dedup();
        spellings
    }

    /// Whether `key` is `P` or `P:...`, in any case.
    pub fn in_namespace(&self, key: &str) -> bool {
        let p = self.prefix.len();
        key.len() >= p
            && key.is_char_boundary(p)
            && key[..p].eq_ignore_ascii_case(&self.prefix)
            && (key.len() == p || key[p..].starts_with(':'))
    }

    /// Whether `key` is `P:name`, in any case.
    pub fn is_key(&self, key: &str, name: &str) -> bool {
        self.in_namespace(key)
            && key.len() == self.prefix.len() + 1 + name.len()
            && key[self.prefix.len() + 1..].eq_ignore_ascii_case(name)
    }

    /// The value of the tag `P:name` (or `P` when `name` is empty), key matched in any case.
    pub fn get<'a>(&self, tags: &'a [(String, String)], name: &str) -> Option<&'a str> {
        let wanted = if name.is_empty() {
            self.prefix.clone()
        } else {
            self.key(name)
        };
        tags.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(&wanted))
            .map(|(_, v)| v.as_str())
    }

    /// A resource's own tags, as a backup (and a restore from it) carries them: not `aws:` keys,
    /// which only AWS may write, nor our namespace.
    pub fn carried(&self, tags: &[(String, String)]) -> Tags {
        tags.iter()
            .filter(|(k, _)| !k.to_ascii_lowercase().starts_with("aws:") && !self.in_namespace(k))
            .cloned()
            .collect()
    }

    /// `Ok` when the resource opts in; otherwise why not.
    pub fn opt_in_state(&self, tags: &[(String, String)]) -> Result<(), String> {
        match self.get(tags, "") {
            None => Err(format!("no {} tag", self.prefix)),
            Some(v) if parse_bool(v) == Some(true) => Ok(()),
            Some(v) => Err(format!(
                "{}={v:?} does not opt in (true, yes, on or 1 does)",
                self.prefix
            )),
        }
    }
}

/// A tag value we could not use: the default was used instead, and the user is told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    pub resource: String,
    pub key: String,
    pub value: String,
    pub message: String,
}

impl Warning {
    pub fn new(resource: &str, key: &str, value: &str, message: impl Into<String>) -> Self {
        Self {
            resource: resource.into(),
            key: key.into(),
            value: value.into(),
            message: message.into(),
        }
    }
}

/// How one resource is to be backed up, after its tags and the configuration are combined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub interval: Duration,
    pub retention: Duration,
    pub copy_to: Vec<Region>,
    pub copy_retention: Duration,
    pub reboot: bool,
}

/// Reads the user's tags on a resource; an invalid value falls back to the default (never
/// losing the backup) and adds a warning naming the resource, the key and the value.
pub fn resolve_policy(
    keys: &TagKeys,
    config: &Config,
    resource_id: &str,
    tags: &[(String, String)],
    warnings: &mut Vec<Warning>,
) -> Policy {
    let mut duration = |name: &str, default: Duration| -> Option<Duration> {
        let value = keys.get(tags, name)?;
        match Duration::parse(value) {
            Ok(d) => Some(d),
            Err(e) => {
                warnings.push(Warning::new(
                    resource_id,
                    &keys.key(name),
                    value,
                    format!("{e}; using {default}"),
                ));
                None
            }
        }
    };
    let interval =
        duration(key::INTERVAL, config.default_interval).unwrap_or(config.default_interval);
    let retention =
        duration(key::RETENTION, config.default_retention).unwrap_or(config.default_retention);
    let fallback_copy_retention = config.copy_retention.unwrap_or(retention);
    let copy_retention =
        duration(key::COPY_RETENTION, fallback_copy_retention).unwrap_or(fallback_copy_retention);

    let copy_to = match keys.get(tags, key::COPY_TO) {
        None => config.copy_to_regions.clone(),
        Some(v) => match parse_copy_to(v) {
            Ok(regions) => regions,
            Err(e) => {
                warnings.push(Warning::new(
                    resource_id,
                    &keys.key(key::COPY_TO),
                    v,
                    format!(
                        "{e}; using COPY_TO_REGIONS ({:?})",
                        format_region_list(&config.copy_to_regions)
                    ),
                ));
                config.copy_to_regions.clone()
            }
        },
    };

    let reboot = match keys.get(tags, key::REBOOT) {
        None => false,
        Some(v) => parse_bool(v).unwrap_or_else(|| {
            warnings.push(Warning::new(
                resource_id,
                &keys.key(key::REBOOT),
                v,
                "expected true or false; not rebooting",
            ));
            false
        }),
    };

    Policy {
        interval,
        retention,
        copy_to,
        copy_retention,
        reboot,
    }
}

/// A `P:copy-to` value: comma-separated regions, or `none` (any case) for no DR copies.
pub fn parse_copy_to(value: &str) -> Result<Vec<Region>, String> {
    if value.trim().eq_ignore_ascii_case("none") {
        Ok(Vec::new())
    } else {
        parse_region_list(value)
    }
}

/// EC2 allows 50 tags on a resource: as many `carried` tags as fit beside `contract` (the
/// contract's own, which always fit), then `contract`. The dropped keys are reported:
/// "EC2 allows 50 tags per resource: {what}".
pub fn within_tag_limit(
    resource: &str,
    carried: Tags,
    contract: Tags,
    what: &str,
    warnings: &mut Vec<Warning>,
) -> Tags {
    let room = MAX_TAGS.saturating_sub(contract.len());
    if carried.len() > room {
        let dropped: Vec<&str> = carried[room..].iter().map(|(k, _)| k.as_str()).collect();
        warnings.push(Warning::new(
            resource,
            &dropped.join(","),
            "",
            format!("EC2 allows {MAX_TAGS} tags per resource: {what}"),
        ));
    }
    carried.into_iter().take(room).chain(contract).collect()
}

/// RFC 3339 in UTC to the second, as written in `P:created-at` and `P:expires-at`.
pub fn format_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// What a new backup records about where it came from.
#[derive(Debug, Clone)]
pub struct BackupOrigin<'a> {
    pub kind: Kind,
    pub source_id: &'a str,
    pub source_region: &'a Region,
    pub created_at: DateTime<Utc>,
    pub source_tags: &'a [(String, String)],
    /// On demand: the request that made it, written as `P:request-id`.
    pub request_id: Option<&'a str>,
}

/// The full tag set of a new backup: the source's own tags (except `aws:` and our namespace),
/// so cost allocation follows the backup, then the contract's tags. EC2's limit of 50 tags
/// cuts source tags first; the contract's tags always fit.
pub fn backup_tags(
    keys: &TagKeys,
    deployment: &str,
    origin: &BackupOrigin<'_>,
    policy: &Policy,
    warnings: &mut Vec<Warning>,
) -> Tags {
    let ours = vec![
        (keys.key(key::MANAGED_BY), deployment.to_string()),
        (keys.key(key::KIND), origin.kind.as_str().to_string()),
        (keys.key(key::SOURCE), origin.source_id.to_string()),
        (
            keys.key(key::SOURCE_REGION),
            origin.source_region.to_string(),
        ),
        (keys.key(key::CREATED_AT), format_time(origin.created_at)),
        (
            keys.key(key::EXPIRES_AT),
            format_time(origin.created_at + policy.retention.to_delta()),
        ),
        (keys.key(key::COPY_TO), format_region_list(&policy.copy_to)),
        (
            keys.key(key::COPY_RETENTION),
            policy.copy_retention.to_string(),
        ),
    ];
    let mut ours = ours;
    if let Some(id) = origin.request_id {
        ours.push((keys.key(key::REQUEST_ID), id.to_string()));
    }
    within_tag_limit(
        origin.source_id,
        keys.carried(origin.source_tags),
        ours,
        "these source tags were not carried to the backup",
        warnings,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn opt_in_accepts_the_documented_values_in_any_case() {
        let keys = TagKeys::new("backup");
        for v in ["true", "TRUE", "Yes", "on", "1", " true "] {
            assert!(keys.opt_in_state(&tags(&[("Backup", v)])).is_ok(), "{v}");
            assert!(keys.opt_in_state(&tags(&[("BACKUP", v)])).is_ok(), "{v}");
        }
        for v in ["false", "no", "0", "", "maybe", "truee"] {
            let reason = keys.opt_in_state(&tags(&[("backup", v)])).unwrap_err();
            assert!(reason.contains("does not opt in"), "{reason}");
        }
        assert_eq!(
            keys.opt_in_state(&tags(&[("Name", "x")])).unwrap_err(),
            "no backup tag"
        );
        // A key of the namespace is not the opt-in key.
        assert!(
            keys.opt_in_state(&tags(&[("backup:interval", "true")]))
                .is_err()
        );
    }

    #[test]
    fn namespace_is_matched_in_any_case_and_only_at_a_colon() {
        let keys = TagKeys::new("backup");
        assert!(keys.in_namespace("backup"));
        assert!(keys.in_namespace("Backup:Retention"));
        assert!(!keys.in_namespace("backups"));
        assert!(!keys.in_namespace("back"));
        assert!(!keys.in_namespace("Name"));
        assert_eq!(keys.opt_in_spellings(), vec!["BACKUP", "Backup", "backup"]);
    }

    #[test]
    fn policy_uses_tags_then_defaults() {
        let keys = TagKeys::new("backup");
        let config = Config {
            copy_to_regions: vec![Region::parse("us-west-2").unwrap()],
            ..Config::default()
        };
        let mut warnings = Vec::new();
        let p = resolve_policy(&keys, &config, "i-1", &tags(&[]), &mut warnings);
        assert_eq!(p.interval, Duration::hours(24));
        assert_eq!(p.retention, Duration::days(7));
        assert_eq!(
            p.copy_retention,
            Duration::days(7),
            "copy retention falls back to retention"
        );
        assert_eq!(format_region_list(&p.copy_to), "us-west-2");
        assert!(!p.reboot);

        let p = resolve_policy(
            &keys,
            &config,
            "i-1",
            &tags(&[
                ("Backup:Interval", "6h"),
                ("backup:retention", "2w"),
                ("backup:copy-to", "eu-west-1, eu-central-1"),
                ("backup:reboot", "TRUE"),
            ]),
            &mut warnings,
        );
        assert_eq!(p.interval, Duration::hours(6));
        assert_eq!(p.retention, Duration::days(14));
        assert_eq!(p.copy_retention, Duration::days(14));
        assert_eq!(format_region_list(&p.copy_to), "eu-west-1,eu-central-1");
        assert!(p.reboot);
        assert!(warnings.is_empty());

        let p = resolve_policy(
            &keys,
            &config,
            "i-1",
            &tags(&[("backup:copy-to", "None")]),
            &mut warnings,
        );
        assert!(p.copy_to.is_empty());
        let with_env = Config {
            copy_retention: Some(Duration::days(30)),
            ..config.clone()
        };
        let p = resolve_policy(&keys, &with_env, "i-1", &tags(&[]), &mut warnings);
        assert_eq!(p.copy_retention, Duration::days(30));
    }

    #[test]
    fn an_invalid_value_uses_the_default_and_warns_with_resource_key_and_value() {
        let keys = TagKeys::new("backup");
        let config = Config::default();
        let mut warnings = Vec::new();
        let p = resolve_policy(
            &keys,
            &config,
            "i-0abc",
            &tags(&[
                ("backup:interval", "often"),
                ("backup:retention", "0d"),
                ("backup:copy-to", "us-west-2,atlantis"),
                ("backup:copy-retention", "x"),
                ("backup:reboot", "perhaps"),
            ]),
            &mut warnings,
        );
        assert_eq!(p.interval, config.default_interval);
        assert_eq!(p.retention, config.default_retention);
        assert!(p.copy_to.is_empty());
        assert_eq!(p.copy_retention, config.default_retention);
        assert!(!p.reboot);
        let seen: Vec<(&str, &str)> = warnings
            .iter()
            .map(|w| (w.key.as_str(), w.value.as_str()))
            .collect();
        assert_eq!(
            seen,
            vec![
                ("backup:interval", "often"),
                ("backup:retention", "0d"),
                ("backup:copy-retention", "x"),
                ("backup:copy-to", "us-west-2,atlantis"),
                ("backup:reboot", "perhaps"),
            ]
        );
        assert!(warnings.iter().all(|w| w.resource == "i-0abc"));
    }

    #[test]
    fn backup_tags_carry_source_tags_and_the_contract() {
        let keys = TagKeys::new("backup");
        let region = Region::parse("us-east-1").unwrap();
        let created = parse_time("2026-11-25T03:00:00Z").unwrap();
        let source_tags = tags(&[
            ("Name", "web-01"),
            ("CostCenter", "42"),
            ("aws:cloudformation:stack-name", "s"),
            ("Backup", "true"),
            ("backup:retention", "14d"),
        ]);
        let policy = Policy {
            interval: Duration::hours(24),
            retention: Duration::days(14),
            copy_to: vec![Region::parse("us-west-2").unwrap()],
            copy_retention: Duration::days(30),
            reboot: false,
        };
        let origin = BackupOrigin {
            kind: Kind::Image,
            source_id: "i-1",
            source_region: &region,
            created_at: created,
            source_tags: &source_tags,
            request_id: None,
        };
        let mut warnings = Vec::new();
        let t = backup_tags(&keys, "ec2-backup", &origin, &policy, &mut warnings);
        assert_eq!(
            t,
            tags(&[
                ("Name", "web-01"),
                ("CostCenter", "42"),
                ("backup:managed-by", "ec2-backup"),
                ("backup:kind", "image"),
                ("backup:source", "i-1"),
                ("backup:source-region", "us-east-1"),
                ("backup:created-at", "2026-11-25T03:00:00Z"),
                ("backup:expires-at", "2026-12-09T03:00:00Z"),
                ("backup:copy-to", "us-west-2"),
                ("backup:copy-retention", "30d"),
            ])
        );
        assert!(warnings.is_empty());
    }

    #[test]
    fn backup_tags_stay_within_ec2s_limit() {
        let keys = TagKeys::new("backup");
        let region = Region::parse("us-east-1").unwrap();
        let source_tags: Tags = (0..50)
            .map(|i| (format!("k{i}"), "v".to_string()))
            .collect();
        let policy = resolve_policy(&keys, &Config::default(), "vol-1", &[], &mut Vec::new());
        let origin = BackupOrigin {
            kind: Kind::Snapshot,
            source_id: "vol-1",
            source_region: &region,
            created_at: Utc::now(),
            source_tags: &source_tags,
            request_id: None,
        };
        let mut warnings = Vec::new();
        let t = backup_tags(&keys, "d", &origin, &policy, &mut warnings);
        assert_eq!(t.len(), MAX_TAGS);
        assert!(t.iter().any(|(k, v)| k == "backup:managed-by" && v == "d"));
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].key.starts_with("k42,"));
    }
}
