//! The result of expire: per region, what was deleted, kept and why, and what failed.

use super::{Common, Failed, is_zero};
use crate::expire::plan::{DeleteReason, Kept};
use crate::region::Region;
use serde::Serialize;
use std::collections::BTreeMap;

/// A deregistered image or a deleted snapshot (in a dry run: one that would be).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Deleted {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// For a snapshot deleted with its image: the image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    pub reason: DeleteReason,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RegionReport {
    pub deregistered: Vec<Deleted>,
    pub deleted_snapshots: Vec<Deleted>,
    pub kept: Vec<Kept>,
    pub failed: Vec<Failed>,
    /// Deletions not started because the invocation's deadline was too near; the next run
    /// finds them (each step leaves what it has not done findable: see `delete_image`).
    #[serde(skip_serializing_if = "is_zero")]
    pub remaining: usize,
}

impl RegionReport {
    pub fn merge(&mut self, other: RegionReport) {
        self.deregistered.extend(other.deregistered);
        self.deleted_snapshots.extend(other.deleted_snapshots);
        self.kept.extend(other.kept);
        self.failed.extend(other.failed);
        self.remaining += other.remaining;
    }

    pub fn sort(&mut self) {
        self.deregistered.sort();
        self.deleted_snapshots.sort();
        self.kept.sort();
        self.failed.sort();
    }
}

/// The result of expire.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExpireReport {
    pub regions: BTreeMap<Region, RegionReport>,
    /// The warnings, the dry run and the work handed on, as every function says them.
    #[serde(flatten)]
    pub common: Common,
}

impl ExpireReport {
    pub fn failed(&self) -> usize {
        self.regions.values().map(|r| r.failed.len()).sum()
    }

    /// The counts it publishes (`shared/metrics.json`, expire), over every region swept.
    pub fn metric_values(&self) -> crate::metrics::Values {
        use crate::metrics::{Metric, count};
        let sum = |f: fn(&RegionReport) -> usize| count(self.regions.values().map(f).sum());
        vec![
            (Metric::ImagesDeregistered, sum(|r| r.deregistered.len())),
            (Metric::SnapshotsDeleted, sum(|r| r.deleted_snapshots.len())),
            (Metric::BackupsKept, sum(|r| r.kept.len())),
            (Metric::DeletesFailed, sum(|r| r.failed.len())),
        ]
    }
}
