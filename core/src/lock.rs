//! EBS snapshot locks as this toolkit reads them: a vault locks its copies' snapshots, and
//! expire never deletes a backup whose lock still holds.

use crate::backup::Backup;
use crate::tags::Kind;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// A snapshot lock, as DescribeLockedSnapshots reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockInfo {
    /// `compliance-cooloff`, `governance`, `compliance` or `expired`.
    pub state: String,
    pub until: Option<DateTime<Utc>>,
}

impl LockInfo {
    /// Whether the lock still stops a deletion at `now`.
    pub fn holds(&self, now: DateTime<Utc>) -> bool {
        self.state != "expired" && self.until.is_none_or(|u| u > now)
    }

    pub fn is_compliance(&self) -> bool {
        self.state.starts_with("compliance")
    }
}

/// Whether any snapshot of `backup` (an AMI's snapshots, or the snapshot itself) is locked at
/// `now`.
pub fn is_locked(backup: &Backup, locks: &HashMap<String, LockInfo>, now: DateTime<Utc>) -> bool {
    snapshots_of(backup)
        .iter()
        .any(|s| locks.get(*s).is_some_and(|l| l.holds(now)))
}

pub fn snapshots_of(backup: &Backup) -> Vec<&str> {
    match backup.kind {
        Kind::Image => backup.snapshot_ids.iter().map(String::as_str).collect(),
        Kind::Snapshot => vec![backup.id.as_str()],
    }
}
