//! The result of drill: the counts, one record per restore judged, what a dry run would
//! restore, and what kept the run itself from being whole.

use super::{Common, Failed, Omitted};
use crate::backup::DrillResult;
use crate::drill::record::{Counts, DrillRecord, RestoreKind};
use crate::metrics::{Metric, Values, count};
use crate::region::Region;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

/// A restore a dry run would make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Planned {
    pub resource: String,
    pub kind: RestoreKind,
    pub region: Region,
    pub backup: String,
    pub backup_created_at: DateTime<Utc>,
}

/// A resource due for a drill that has nothing to restore in that region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotDrilled {
    pub resource: String,
    pub region: Region,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DrillReport {
    pub counts: Counts,
    /// Every restore judged by this invocation (passed, failed or timed out).
    pub records: Vec<DrillRecord>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub would_restore: Vec<Planned>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_drilled: Vec<NotDrilled>,
    /// What failed in the run itself: a region that could not be read, evidence not written,
    /// a throwaway resource not cleaned up. A restore that fails is a record, not this.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<Failed>,
    #[serde(flatten)]
    pub common: Common,
    #[serde(skip_serializing_if = "Omitted::is_empty")]
    pub omitted: Omitted,
}

impl DrillReport {
    /// Adds a judged restore's record.
    pub fn record(&mut self, record: DrillRecord) {
        self.counts.add(record.result);
        if record.cleaned_up_at.is_some() {
            self.counts.cleaned_up += 1;
        }
        self.records.push(record);
    }

    /// The function's line: the counts over every region.
    pub fn metric_values(&self) -> Values {
        vec![
            (Metric::DrillsPassed, count(self.counts.passed)),
            (Metric::DrillsFailed, count(self.counts.failed)),
            (Metric::DrillsTimedOut, count(self.counts.timed_out)),
        ]
    }

    /// Each region's line: its counts and, when a restore passed there, the slowest pass.
    pub fn metric_values_by_region(&self) -> BTreeMap<Region, Values> {
        let mut by: BTreeMap<Region, (Counts, Option<i64>)> = BTreeMap::new();
        for r in &self.records {
            let (counts, slowest) = by.entry(r.region.clone()).or_default();
            counts.add(r.result);
            if r.result == DrillResult::Passed {
                let rto = r.rto_seconds.unwrap_or(0);
                *slowest = Some(slowest.map_or(rto, |s| s.max(rto)));
            }
        }
        by.into_iter()
            .map(|(region, (c, slowest))| {
                let mut values = vec![
                    (Metric::DrillsPassed, count(c.passed)),
                    (Metric::DrillsFailed, count(c.failed)),
                    (Metric::DrillsTimedOut, count(c.timed_out)),
                ];
                if let Some(s) = slowest {
                    values.push((Metric::RestoreSeconds, s as f64));
                }
                (region, values)
            })
            .collect()
    }

    /// Cuts each list to `limit` entries (every record is logged and in the evidence bucket).
    pub fn cap(&mut self, limit: usize) {
        self.omitted.cap("records", &mut self.records, limit);
        self.omitted
            .cap("would_restore", &mut self.would_restore, limit);
        self.omitted
            .cap("not_drilled", &mut self.not_drilled, limit);
        self.omitted.cap("failed", &mut self.failed, limit);
    }
}
