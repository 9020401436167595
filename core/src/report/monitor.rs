//! The result of monitor: where the deployment stands, region by region.

use super::Omitted;
use crate::metrics::{Metric, Values, count};
use crate::region::Region;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

/// One region's figures (and, summed, the deployment's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Figures {
    /// The status rows in the region: at home every opted-in resource; in a DR region the
    /// resources whose copy-to names it.
    pub protected: usize,
    /// Rows whose newest usable backup is older than the interval plus grace ([`crate::status::Rpo::Late`]).
    pub late: usize,
    /// Rows with no usable backup at all ([`crate::status::Rpo::None`]).
    pub without_backup: usize,
    /// DR regions only: usable originals at home, older than `COPY_GRACE`, that are to be
    /// copied here and have no usable copy here (see `copies_missing` in the monitor summary).
    pub copies_missing: usize,
    /// Backups and copies here still pending (neither usable nor failed) for longer than
    /// `PENDING_LIMIT`, by EC2's own start time.
    pub pending_too_long: usize,
    /// Snapshots of ours here that no image of ours lists and that are no standalone backup.
    pub orphaned_snapshots: usize,
    /// The age, in seconds, of the oldest of the newest usable backups of the rows here that
    /// have one; 0 when none has.
    pub worst_rpo_seconds: i64,
    /// Resources drilled here (see `crate::drill::plan::not_drilled`) whose last passed drill
    /// is older than `DRILL_INTERVAL` and a day, or that have waited that long for a first one.
    pub not_drilled: usize,
    /// Home only, with `DR_ACCOUNT`: usable originals older than `COPY_GRACE` not yet shared
    /// with the DR account (no `P:shared-with` naming it).
    pub not_shared: usize,
}

impl Figures {
    /// The nine figures as metrics (`shared/metrics.json`, monitor's `region` and
    /// `deployment` sets).
    pub fn metric_values(&self) -> Values {
        vec![
            (Metric::Protected, count(self.protected)),
            (Metric::Late, count(self.late)),
            (Metric::WithoutBackup, count(self.without_backup)),
            (Metric::CopiesMissing, count(self.copies_missing)),
            (Metric::PendingTooLong, count(self.pending_too_long)),
            (Metric::OrphanedSnapshots, count(self.orphaned_snapshots)),
            (Metric::WorstRpoSeconds, self.worst_rpo_seconds as f64),
            (Metric::NotDrilled, count(self.not_drilled)),
            (Metric::NotShared, count(self.not_shared)),
        ]
    }

    /// The deployment's figures: the sums over the regions, and the worst RPO of any region.
    pub fn total<'a>(regions: impl IntoIterator<Item = &'a Figures>) -> Figures {
        regions
            .into_iter()
            .fold(Figures::default(), |t, f| Figures {
                protected: t.protected + f.protected,
                late: t.late + f.late,
                without_backup: t.without_backup + f.without_backup,
                copies_missing: t.copies_missing + f.copies_missing,
                pending_too_long: t.pending_too_long + f.pending_too_long,
                orphaned_snapshots: t.orphaned_snapshots + f.orphaned_snapshots,
                worst_rpo_seconds: t.worst_rpo_seconds.max(f.worst_rpo_seconds),
                not_drilled: t.not_drilled + f.not_drilled,
                not_shared: t.not_shared + f.not_shared,
            })
    }
}

/// A vault's figures for one source account (`SOURCE_ACCOUNTS`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct VaultFigures {
    /// The source resources with a copy in the vault.
    pub resources: usize,
    /// The age, in seconds, of the newest locked copy of each source resource, the worst (a
    /// resource with copies but none locked counts from its oldest copy); 0 when there is none.
    pub worst_dr_rpo_seconds: i64,
    /// Usable copies older than `COPY_GRACE` whose snapshots are not all locked (0 with
    /// `LOCK_MODE=none`).
    pub unlocked: usize,
    /// Backups the account shared with the vault, older than `COPY_GRACE`, without a live copy
    /// in each of the vault's regions.
    pub shared_not_copied: usize,
}

impl VaultFigures {
    /// The three figures as metrics (`shared/metrics.json`, monitor's `source_account` and
    /// `vault` sets).
    pub fn metric_values(&self) -> Values {
        vec![
            (Metric::WorstDrRpoSeconds, self.worst_dr_rpo_seconds as f64),
            (Metric::Unlocked, count(self.unlocked)),
            (Metric::SharedNotCopied, count(self.shared_not_copied)),
        ]
    }

    /// The vault's figures over every source account: sums, and the worst RPO.
    pub fn total<'a>(accounts: impl IntoIterator<Item = &'a VaultFigures>) -> VaultFigures {
        accounts
            .into_iter()
            .fold(VaultFigures::default(), |t, f| VaultFigures {
                resources: t.resources + f.resources,
                worst_dr_rpo_seconds: t.worst_dr_rpo_seconds.max(f.worst_dr_rpo_seconds),
                unlocked: t.unlocked + f.unlocked,
                shared_not_copied: t.shared_not_copied + f.shared_not_copied,
            })
    }
}

/// A resource whose recovery point is not met in a region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub resource: String,
    pub region: Region,
    pub reason: String,
}

/// An original backup that has no usable copy yet in a DR region it is to be copied to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MissingCopy {
    pub backup: String,
    /// The instance or volume it is a backup of.
    pub source: Option<String>,
    pub region: Region,
    pub reason: String,
    /// When the original was made (the order of the list: oldest first).
    #[serde(skip)]
    pub made_at: DateTime<Utc>,
}

/// A backup or copy pending for longer than `PENDING_LIMIT`: logged, counted, not listed in the
/// result (whose lists are the late, unprotected and uncopied resources).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stuck {
    pub backup: String,
    pub source: Option<String>,
    pub region: Region,
    pub reason: String,
}

/// The result of monitor: `{"regions": {...}, "late": [...], "without_backup": [...],
/// "copies_missing": [...]}`, and `"omitted"` when a list was cut.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MonitorReport {
    pub regions: BTreeMap<Region, Figures>,
    /// Most overdue first (by how far past its interval plus grace).
    pub late: Vec<Finding>,
    /// By region, then resource.
    pub without_backup: Vec<Finding>,
    /// Oldest original first.
    pub copies_missing: Vec<MissingCopy>,
    /// A vault: its figures per source account.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub vault: BTreeMap<String, VaultFigures>,
    /// What the DR figures count, one line each (not shared, unlocked, shared not copied): for
    /// the log lines.
    #[serde(skip)]
    pub dr_findings: Vec<Stuck>,
    #[serde(skip_serializing_if = "Omitted::is_empty")]
    pub omitted: Omitted,
    /// For the log lines only.
    #[serde(skip)]
    pub stuck: Vec<Stuck>,
}

impl MonitorReport {
    /// The deployment's figures.
    pub fn total(&self) -> Figures {
        Figures::total(self.regions.values())
    }

    /// Cuts each list to `limit` entries (the most urgent ones stay), saying under `omitted`
    /// how many were left off. The figures still count them all.
    pub fn cap(&mut self, limit: usize) {
        self.omitted.cap("late", &mut self.late, limit);
        self.omitted
            .cap("without_backup", &mut self.without_backup, limit);
        self.omitted
            .cap("copies_missing", &mut self.copies_missing, limit);
    }
}
