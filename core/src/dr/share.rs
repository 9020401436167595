//! The home side: which backups are shared with the DR account, and how. A backup the DR
//! account could not use (encrypted with the default `aws/ebs` key, which cannot be shared, or
//! with any key `SHARE_KMS_KEYS` does not name for its region) is first copied in its own
//! region, re-encrypted with the share key, and that shareable copy is shared instead.

use crate::backup::Backup;
use crate::config::Config;
use crate::naming::{ami_name_part, cut};
use crate::region::Region;
use crate::replicate::notice::Claimed;
use crate::replicate::plan::{CLIENT_TOKEN_MAX, CopyJob, DESCRIPTION_MAX, Encryption};
use crate::tags::{Kind, TagKeys, Tags, Warning, key, within_tag_limit};

/// What sharing one original of ours takes next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShareStep {
    /// Share `target` (the original, or its usable shareable copy) with the DR account, tell
    /// it, and mark `target` and the original shared.
    Share {
        target: Box<Backup>,
        original: String,
    },
    /// Make the shareable copy first.
    Copy(Box<CopyJob>),
    /// Nothing now, and why: shared already, its shareable copy still pending, ...
    Skip(String),
    /// It cannot be shared as things are set up, and what to do.
    Refuse(String),
}

/// Whether a usable backup of ours is a candidate: an original in its own right (or a
/// shareable copy), not yet marked shared with `dr`.
pub fn is_candidate(keys: &TagKeys, config: &Config, backup: &Backup) -> Result<(), String> {
    let Some(dr) = config.dr_account.as_deref() else {
        return Err("DR_ACCOUNT is not set".into());
    };
    if backup.managed_by.as_deref() != Some(config.deployment_name.as_str()) {
        return Err("not a backup of this deployment".into());
    }
    if backup.copy_of.is_some() {
        return Err("a DR copy: only originals are shared".into());
    }
    if !backup.is_standalone() {
        return Err("an AMI's snapshot: it is shared with its AMI".into());
    }
    if !backup.is_usable() {
        return Err(format!("the {} is {}", backup.kind.as_str(), backup.state));
    }
    if backup.shared_with.as_deref() == Some(dr) {
        return Err(format!(
            "already-shared: {} says {dr}",
            keys.key(key::SHARED_WITH)
        ));
    }
    Ok(())
}

/// Whether the DR account can use `backup` as it is: unencrypted, or every encrypted volume on
/// the region's share key.
pub fn usable_by_dr(config: &Config, backup: &Backup) -> bool {
    if !backup.encrypted {
        return true;
    }
    let Some(share_key) = config.share_kms_keys.get(&backup.region) else {
        return false;
    };
    !backup.kms_key_ids.is_empty() && backup.kms_key_ids.iter().all(|k| k == share_key)
}

/// The next step for `original` (a candidate, see [`is_candidate`]), given the shareable
/// copies of it found in its region.
pub fn next_step(
    keys: &TagKeys,
    config: &Config,
    original: &Backup,
    shareable: &[&Backup],
    warnings: &mut Vec<Warning>,
) -> ShareStep {
    let dr = config.dr_account.as_deref().unwrap_or_default();
    if original.share_of.is_some() || usable_by_dr(config, original) {
        let of = original
            .share_of
            .clone()
            .unwrap_or_else(|| original.id.clone());
        return ShareStep::Share {
            target: Box::new(original.clone()),
            original: of,
        };
    }
    let region = &original.region;
    let Some(share_key) = config.share_kms_keys.get(region) else {
        let keys_text = if original.kms_key_ids.is_empty() {
            "a KMS key".to_string()
        } else {
            original.kms_key_ids.join(", ")
        };
        return ShareStep::Refuse(format!(
            "{} is encrypted with {keys_text}, which account {dr} cannot use (the default aws/ebs key can never be shared), and SHARE_KMS_KEYS names no key for {region}: add {region}=<ARN of a customer-managed key whose key policy lets {dr} use it>",
            original.id
        ));
    };
    if let Some(copy) = shareable.iter().find(|c| c.is_usable()) {
        return ShareStep::Share {
            target: Box::new((*copy).clone()),
            original: original.id.clone(),
        };
    }
    if let Some(copy) = shareable.iter().find(|c| c.state.is_pending()) {
        return ShareStep::Skip(format!(
            "waiting for its shareable copy {} (pending) to be shared",
            copy.id
        ));
    }
    let dead = shareable.len();
    ShareStep::Copy(Box::new(shareable_copy(
        keys, config, original, share_key, dead, warnings,
    )))
}

/// The same-region copy of `original` re-encrypted with `share_key`: tagged as the original
/// (so it expires with it) plus `P:share-of`, with no `P:copy-to` (never copied to a DR
/// region) and none of the original's own state (`P:copies`, `P:shared-with`).
pub fn shareable_copy(
    keys: &TagKeys,
    config: &Config,
    original: &Backup,
    share_key: &str,
    attempt: usize,
    warnings: &mut Vec<Warning>,
) -> CopyJob {
    let replaced = [
        key::COPIES,
        key::SHARED_WITH,
        key::SHARE_OF,
        key::COPY_TO,
        key::DRILLED_AT,
        key::DRILL_RESULT,
        key::RESTORE_SECONDS,
    ]
    .map(|k| keys.key(k));
    let namespace: Tags = original
        .tags
        .iter()
        .filter(|(k, _)| {
            keys.in_namespace(k) && !replaced.iter().any(|r| r.eq_ignore_ascii_case(k))
        })
        .cloned()
        .chain([
            (keys.key(key::SHARE_OF), original.id.clone()),
            (keys.key(key::COPY_TO), String::new()),
        ])
        .collect();
    let tags = within_tag_limit(
        &original.id,
        keys.carried(&original.tags),
        namespace,
        "these tags were not carried to the shareable copy",
        warnings,
    );
    let mut suffix = format!(" shareable {}", original.id);
    if attempt > 0 {
        suffix.push_str(&format!(" retry {attempt}"));
    }
    let name = match original.kind {
        Kind::Image => {
            let base = ami_name_part(original.name.as_deref().unwrap_or(""), suffix.len());
            format!("{base}{suffix}").trim().to_string()
        }
        Kind::Snapshot => String::new(),
    };
    let claimed = claimed(keys, config, original);
    let description = format!(
        "{} shareable copy of {} (source {} created {})",
        config.deployment_name,
        original.id,
        claimed.source,
        claimed
            .created_at
            .map(crate::tags::format_time)
            .unwrap_or_default()
    );
    let mut token = format!("{}-share", original.id);
    if attempt > 0 {
        token.push_str(&format!("-{attempt}"));
    }
    CopyJob {
        kind: original.kind,
        source_id: original.id.clone(),
        source_region: original.region.clone(),
        destination: original.region.clone(),
        name,
        description: cut(&description, DESCRIPTION_MAX).to_string(),
        client_token: cut(&token, CLIENT_TOKEN_MAX).to_string(),
        tags,
        encryption: Encryption::Key(share_key.to_string()),
        listed_copy: None,
    }
}

/// What the home deployment tells the DR account of `backup` (an original or its shareable
/// copy, which carries the original's tags): its source, the source's `Name` (else the AMI's
/// name), and when the original was made.
pub fn claimed(keys: &TagKeys, config: &Config, backup: &Backup) -> Claimed {
    let name = backup
        .tags
        .iter()
        .find(|(k, _)| k == "Name")
        .map(|(_, v)| v.clone())
        .or_else(|| backup.name.clone())
        .unwrap_or_default();
    Claimed {
        source: backup.source.clone().unwrap_or_default(),
        name,
        created_at: keys
            .get(&backup.tags, key::CREATED_AT)
            .and_then(crate::tags::parse_time)
            .or(backup.created_at),
        deployment: config.deployment_name.clone(),
    }
}

/// monitor's `NotShared`: usable originals of ours in `home`, made longer than `COPY_GRACE`
/// ago (by EC2's record), not marked shared with `DR_ACCOUNT`; with why, for the log.
pub fn not_shared<'a>(
    config: &Config,
    home: &Region,
    backups: &'a [Backup],
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<&'a Backup> {
    let Some(dr) = config.dr_account.as_deref() else {
        return Vec::new();
    };
    backups
        .iter()
        .filter(|b| &b.region == home && b.is_original() && b.is_standalone() && b.is_usable())
        .filter(|b| b.managed_by.as_deref() == Some(config.deployment_name.as_str()))
        .filter(|b| b.shared_with.as_deref() != Some(dr))
        .filter(|b| {
            b.recorded_at
                .or(b.created_at)
                .is_some_and(|t| now - t > config.copy_grace.to_delta())
        })
        .collect()
}

/// The region's share key, for messages.
pub fn share_key<'a>(config: &'a Config, region: &Region) -> Option<&'a str> {
    config.share_kms_keys.get(region).map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::Described;
    use crate::tags::parse_time;

    const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/share";

    fn config() -> Config {
        Config {
            dr_account: Some("444455556666".into()),
            share_kms_keys: [(Region::parse("us-east-1").unwrap(), KEY.to_string())].into(),
            ..Config::default()
        }
    }

    fn backup(id: &str, kms: &[&str], extra: &[(&str, &str)]) -> Backup {
        let mut tags: Tags = [
            ("Name", "web-01"),
            ("backup:managed-by", "ec2-backup"),
            ("backup:kind", "image"),
            ("backup:source", "i-1"),
            ("backup:created-at", "2026-11-25T03:00:00Z"),
            ("backup:expires-at", "2026-12-02T03:00:00Z"),
            ("backup:copy-to", "us-west-2"),
            ("backup:copies", "us-west-2=ami-9"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            tags.push((k.to_string(), v.to_string()));
        }
        Backup::new(
            &TagKeys::new("backup"),
            Kind::Image,
            &Region::parse("us-east-1").unwrap(),
            Described {
                id: id.into(),
                state: "available".into(),
                name: Some("web-01-i-1-20261125T0300Z".into()),
                encrypted: !kms.is_empty(),
                kms_key_ids: kms.iter().map(|k| k.to_string()).collect(),
                snapshot_ids: vec!["snap-1".into()],
                recorded_at: parse_time("2026-11-25T03:00:05Z"),
                tags,
                ..Default::default()
            },
        )
    }

    fn step(b: &Backup, shareable: &[&Backup]) -> ShareStep {
        next_step(
            &TagKeys::new("backup"),
            &config(),
            b,
            shareable,
            &mut Vec::new(),
        )
    }

    #[test]
    fn unencrypted_and_share_key_backups_are_shared_as_they_are() {
        for b in [backup("ami-1", &[], &[]), backup("ami-1", &[KEY], &[])] {
            assert!(
                matches!(step(&b, &[]), ShareStep::Share { ref target, ref original } if target.id == "ami-1" && original == "ami-1")
            );
        }
    }

    #[test]
    fn another_key_goes_through_a_shareable_copy_on_the_share_key() {
        let b = backup(
            "ami-1",
            &["arn:aws:kms:us-east-1:111122223333:key/aws-ebs"],
            &[],
        );
        let ShareStep::Copy(job) = step(&b, &[]) else {
            panic!("{:?}", step(&b, &[]))
        };
        assert_eq!(job.destination, job.source_region);
        assert_eq!(job.encryption, Encryption::Key(KEY.into()));
        assert_eq!(job.client_token, "ami-1-share");
        let tag = |k: &str| {
            job.tags
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(tag("backup:share-of"), Some("ami-1"));
        assert_eq!(
            tag("backup:expires-at"),
            Some("2026-12-02T03:00:00Z"),
            "expires with its original"
        );
        assert_eq!(
            tag("backup:copy-to"),
            Some(""),
            "never copied to a DR region"
        );
        assert_eq!(tag("backup:copies"), None);
        assert_eq!(tag("Name"), Some("web-01"));
        assert!(
            job.description
                .contains("source i-1 created 2026-11-25T03:00:00Z"),
            "{}",
            job.description
        );
        // Its copy, pending: wait; usable: share it for the original.
        let mut copy = backup("ami-2", &[KEY], &[("backup:share-of", "ami-1")]);
        copy.state = "pending".into();
        assert!(matches!(step(&b, &[&copy]), ShareStep::Skip(r) if r.contains("ami-2")));
        copy.state = "available".into();
        assert!(
            matches!(step(&b, &[&copy]), ShareStep::Share { ref target, ref original } if target.id == "ami-2" && original == "ami-1")
        );
        // A failed one: another copy, with a token of its own.
        copy.state = "failed".into();
        let ShareStep::Copy(retry) = step(&b, &[&copy]) else {
            panic!()
        };
        assert_eq!(retry.client_token, "ami-1-share-1");
    }

    #[test]
    fn a_key_that_cannot_be_shared_and_no_share_key_is_refused_saying_what_to_do() {
        let b = backup(
            "ami-1",
            &["arn:aws:kms:us-east-1:111122223333:key/aws-ebs"],
            &[],
        );
        let none = Config {
            share_kms_keys: Default::default(),
            ..config()
        };
        let s = next_step(&TagKeys::new("backup"), &none, &b, &[], &mut Vec::new());
        let ShareStep::Refuse(why) = s else {
            panic!("{s:?}")
        };
        assert!(
            why.contains("ami-1")
                && why.contains("444455556666")
                && why.contains("SHARE_KMS_KEYS")
                && why.contains("us-east-1="),
            "{why}"
        );
    }

    #[test]
    fn only_usable_unshared_originals_of_ours_are_candidates() {
        let keys = TagKeys::new("backup");
        let c = config();
        assert!(is_candidate(&keys, &c, &backup("ami-1", &[], &[])).is_ok());
        let shared = backup("ami-1", &[], &[("backup:shared-with", "444455556666")]);
        assert!(
            is_candidate(&keys, &c, &shared)
                .unwrap_err()
                .starts_with("already-shared")
        );
        let copy = backup("ami-1", &[], &[("backup:copy-of", "ami-0")]);
        assert!(is_candidate(&keys, &c, &copy).is_err());
        let theirs = backup("ami-1", &[], &[]);
        let other = Config {
            deployment_name: "other".into(),
            ..config()
        };
        assert!(is_candidate(&keys, &other, &theirs).is_err());
        let off = Config {
            dr_account: None,
            ..config()
        };
        assert!(is_candidate(&keys, &off, &theirs).is_err());
    }

    #[test]
    fn not_shared_counts_usable_originals_past_the_grace_without_the_mark() {
        let home = Region::parse("us-east-1").unwrap();
        let at = |m| parse_time("2026-11-25T03:00:05Z").unwrap() + chrono::TimeDelta::minutes(m);
        let shared = backup("ami-2", &[], &[("backup:shared-with", "444455556666")]);
        let elsewhere = backup("ami-3", &[], &[("backup:shared-with", "999988887777")]);
        let copy = backup("ami-4", &[], &[("backup:share-of", "ami-1")]);
        let all = [backup("ami-1", &[], &[]), shared, elsewhere, copy];
        let ids = |now| -> Vec<String> {
            not_shared(&config(), &home, &all, now)
                .iter()
                .map(|b| b.id.clone())
                .collect()
        };
        assert!(ids(at(60)).is_empty(), "within COPY_GRACE");
        assert_eq!(ids(at(121)), ["ami-1", "ami-3"]);
        let off = Config {
            dr_account: None,
            ..config()
        };
        assert!(not_shared(&off, &home, &all, at(500)).is_empty());
    }

    #[test]
    fn the_claim_is_the_originals_source_name_and_time() {
        let b = backup("ami-1", &[], &[]);
        let c = claimed(&TagKeys::new("backup"), &config(), &b);
        assert_eq!((c.source.as_str(), c.name.as_str()), ("i-1", "web-01"));
        assert_eq!(c.created_at, parse_time("2026-11-25T03:00:00Z"));
    }
}
