//! The `Backup Shared` event: what a home deployment tells its DR account of each backup it
//! shared, and what a vault reads from it (or from EBS's own `shareSnapshot` notification).

use crate::tags::{Kind, format_time, parse_time};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The event's `source`.
pub const EVENT_SOURCE: &str = "ec2-backup";
/// The event's `detail-type`.
pub const DETAIL_TYPE: &str = "Backup Shared";

/// The event's `detail`: the shared backup and what identifies it, since the DR account sees
/// none of its tags.
/// Fields a newer home deployment adds are ignored: the two accounts are deployed apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedDetail {
    /// The shared AMI or snapshot: the original, or its shareable re-encrypted copy.
    pub backup: String,
    /// `image` or `snapshot`: the original's kind.
    pub kind: String,
    /// Where the shared backup is.
    pub region: String,
    /// The instance or volume backed up.
    pub source: String,
    /// The source's `Name` tag, else the AMI's name (may be empty).
    pub name: String,
    /// The original's `P:created-at`.
    pub created_at: String,
    /// The home deployment's name.
    pub deployment: String,
}

impl SharedDetail {
    pub fn new(backup: &str, kind: Kind, region: &str, claimed: &Claimed) -> Self {
        Self {
            backup: backup.to_string(),
            kind: kind.as_str().to_string(),
            region: region.to_string(),
            source: claimed.source.clone(),
            name: claimed.name.clone(),
            created_at: claimed.created_at.map(format_time).unwrap_or_default(),
            deployment: claimed.deployment.clone(),
        }
    }
}

/// What the home deployment says of a shared backup: information for the vault's tags, never
/// an instruction (the vault's own configuration decides how long it keeps its copy).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Claimed {
    pub source: String,
    pub name: String,
    pub created_at: Option<DateTime<Utc>>,
    pub deployment: String,
}

/// What a vault is told of one shared backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedNotice {
    pub event_id: Option<String>,
    /// The account that says it shared the backup: a `Backup Shared` event's envelope
    /// `account` (set by EventBridge, not by the sender), a `shareSnapshot` notification's
    /// `detail.source`.
    pub account: String,
    pub kind: Kind,
    pub backup: String,
    /// The region the event names.
    pub region: Option<String>,
    /// The home deployment's account of it (`Backup Shared` only).
    pub claimed: Option<Claimed>,
}

/// Why a `Backup Shared` detail cannot be read, if it cannot.
pub fn read_detail(
    account: &str,
    event_id: Option<String>,
    detail: SharedDetail,
) -> Result<SharedNotice, String> {
    let kind = match detail.kind.as_str() {
        "image" => Kind::Image,
        "snapshot" => Kind::Snapshot,
        other => {
            return Err(format!(
                "detail.kind {other:?} is neither image nor snapshot"
            ));
        }
    };
    let backup = detail.backup.trim().to_string();
    if !super::event::is_id(kind, &backup) {
        return Err(format!(
            "detail.backup {backup:?} is not a valid {} id",
            kind.as_str()
        ));
    }
    if !crate::config::is_account_id(account) {
        return Err(format!(
            "the event's account {account:?} is not an account id"
        ));
    }
    Ok(SharedNotice {
        event_id,
        account: account.to_string(),
        kind,
        backup,
        region: Some(detail.region).filter(|r| !r.is_empty()),
        claimed: Some(Claimed {
            source: detail.source,
            name: detail.name,
            created_at: parse_time(&detail.created_at),
            deployment: detail.deployment,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detail() -> SharedDetail {
        serde_json::from_str(
            r#"{"backup":"ami-0a1b2c3d4e5f60718","kind":"image","region":"us-east-1",
                "source":"i-0123456789abcdef0","name":"web-01",
                "created_at":"2026-11-25T03:00:00Z","deployment":"ec2-backup"}"#,
        )
        .unwrap()
    }

    #[test]
    fn a_detail_is_read_with_the_envelopes_account() {
        let n = read_detail("111122223333", Some("e-1".into()), detail()).unwrap();
        assert_eq!(n.account, "111122223333");
        assert_eq!(n.kind, Kind::Image);
        let claimed = n.claimed.unwrap();
        assert_eq!(claimed.source, "i-0123456789abcdef0");
        assert_eq!(claimed.created_at, parse_time("2026-11-25T03:00:00Z"));
    }

    #[test]
    fn a_bad_detail_says_which_field() {
        let e = read_detail(
            "111122223333",
            None,
            SharedDetail {
                kind: "volume".into(),
                ..detail()
            },
        )
        .unwrap_err();
        assert!(e.contains("detail.kind"), "{e}");
        let e = read_detail(
            "111122223333",
            None,
            SharedDetail {
                backup: "snap-0123".into(),
                ..detail()
            },
        )
        .unwrap_err();
        assert!(e.contains("detail.backup"), "{e}");
        assert!(
            read_detail("1111", None, detail())
                .unwrap_err()
                .contains("account")
        );
    }

    #[test]
    fn the_detail_carries_the_contracts_fields() {
        let claimed = Claimed {
            source: "vol-1".into(),
            name: "db".into(),
            created_at: parse_time("2026-11-25T03:00:00Z"),
            deployment: "prod".into(),
        };
        let d = SharedDetail::new(
            "snap-0123456789abcdef0",
            Kind::Snapshot,
            "us-east-1",
            &claimed,
        );
        let v = serde_json::to_value(&d).unwrap();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "backup",
                "created_at",
                "deployment",
                "kind",
                "name",
                "region",
                "source"
            ]
        );
        assert_eq!(v["created_at"], "2026-11-25T03:00:00Z");
    }
}
