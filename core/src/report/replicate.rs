//! What a `replicate` invocation returns.

use super::{Common, Copied, Deferred, Failed, Skipped};
use crate::region::Region;
use serde::Serialize;

/// A backup shared with the DR account, and the event that told it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SharedEntry {
    /// The original backup.
    pub source: String,
    /// What was shared: the original, or its shareable copy.
    pub shared: String,
    /// The DR account.
    pub with: String,
}

/// A vault copy's snapshot locked (or its AMI protected from deregistration).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockedEntry {
    /// The vault copy.
    pub source: String,
    pub region: Region,
    /// The snapshot locked; `None`: the AMI's deregistration protection turned on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// The lock's mode and end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// The shared backup the copy is of: the record of a batch that named it answers for it.
    #[serde(skip)]
    pub copy_of: Option<String>,
}

/// `{"copied": [...], "skipped": [...], "deferred": [...], "failed": [...], "warnings": [...]}`,
/// with `shared` (a home deployment with a DR account) and `locked` (a vault) when not empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReplicateReport {
    pub copied: Vec<Copied>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shared: Vec<SharedEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub locked: Vec<LockedEntry>,
    pub skipped: Vec<Skipped>,
    pub deferred: Vec<Deferred>,
    pub failed: Vec<Failed>,
    /// The warnings, the dry run and the work handed on, as every function says them.
    #[serde(flatten)]
    pub common: Common,
    /// The sources whose deferred copies could not be handed on (the reason is `unfinished`).
    #[serde(skip)]
    pub not_handed_on: Vec<String>,
    /// What a vault's run leaves to its work queue (not part of the result).
    #[serde(skip)]
    pub follow_up: VaultFollowUp,
}

/// What a vault's run leaves to its work queue: shared backups whose copies were deferred
/// (a limit, throttling, the deadline) and copies still pending, to lock once usable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VaultFollowUp {
    /// `(account, kind, shared backup id)`.
    pub shared: Vec<(String, crate::tags::Kind, String)>,
    /// `(region, kind, copy id)`.
    pub to_lock: Vec<(Region, crate::tags::Kind, String)>,
}

impl VaultFollowUp {
    pub fn is_empty(&self) -> bool {
        self.shared.is_empty() && self.to_lock.is_empty()
    }
}

impl ReplicateReport {
    pub fn new(dry_run: bool) -> Self {
        Self {
            common: Common::dry_run(dry_run),
            ..Self::default()
        }
    }

    pub fn skip(&mut self, source: &str, region: Option<&Region>, reason: impl Into<String>) {
        self.skipped.push(Skipped {
            source: source.to_string(),
            region: region.cloned(),
            reason: reason.into(),
        });
    }

    /// The part of the report about `sources` (one record's, of a batch done as one run):
    /// their entries and warnings; the messages sent and why the run is unfinished stay with
    /// the run.
    pub fn of_sources(&self, sources: &[String]) -> Self {
        fn ours<T: Clone>(all: &[T], source: impl Fn(&T) -> &String, sources: &[String]) -> Vec<T> {
            all.iter()
                .filter(|e| sources.contains(source(e)))
                .cloned()
                .collect()
        }
        Self {
            copied: ours(&self.copied, |c| &c.source, sources),
            shared: ours(&self.shared, |c| &c.source, sources),
            locked: self
                .locked
                .iter()
                .filter(|l| {
                    sources.contains(&l.source)
                        || l.copy_of.as_ref().is_some_and(|o| sources.contains(o))
                })
                .cloned()
                .collect(),
            skipped: ours(&self.skipped, |c| &c.source, sources),
            deferred: ours(&self.deferred, |c| &c.source, sources),
            failed: ours(&self.failed, |c| &c.source, sources),
            common: Common {
                warnings: ours(&self.common.warnings, |w| &w.resource, sources),
                ..Common::dry_run(self.common.dry_run)
            },
            not_handed_on: Vec::new(),
            follow_up: VaultFollowUp::default(),
        }
    }

    /// The counts it publishes (`shared/metrics.json`, replicate).
    pub fn metric_values(&self) -> crate::metrics::Values {
        use crate::metrics::{Metric, count};
        vec![
            (Metric::CopiesStarted, count(self.copied.len())),
            (Metric::CopiesSkipped, count(self.skipped.len())),
            (Metric::CopiesDeferred, count(self.deferred.len())),
            (Metric::CopiesFailed, count(self.failed.len())),
        ]
    }

    /// The same counts per destination region (the entries that name one), for the
    /// dashboard's copies per DR region.
    pub fn metric_values_by_region(
        &self,
    ) -> std::collections::BTreeMap<Region, crate::metrics::Values> {
        use crate::metrics::Metric;
        let mut by: std::collections::BTreeMap<Region, [usize; 4]> = Default::default();
        let mut add = |region: Option<&Region>, i: usize| {
            if let Some(r) = region {
                by.entry(r.clone()).or_default()[i] += 1;
            }
        };
        self.copied.iter().for_each(|c| add(Some(&c.region), 0));
        self.skipped.iter().for_each(|c| add(c.region.as_ref(), 1));
        self.deferred.iter().for_each(|c| add(Some(&c.region), 2));
        self.failed.iter().for_each(|c| add(c.region.as_ref(), 3));
        by.into_iter()
            .map(|(region, n)| {
                let names = [
                    Metric::CopiesStarted,
                    Metric::CopiesSkipped,
                    Metric::CopiesDeferred,
                    Metric::CopiesFailed,
                ];
                let values = names
                    .into_iter()
                    .zip(n)
                    .map(|(m, n)| (m, n as f64))
                    .collect();
                (region, values)
            })
            .collect()
    }

    /// Adds `other`'s entries, warnings and messages sent to this report.
    pub fn merge(&mut self, other: ReplicateReport) {
        self.copied.extend(other.copied);
        self.shared.extend(other.shared);
        self.locked.extend(other.locked);
        self.skipped.extend(other.skipped);
        self.deferred.extend(other.deferred);
        self.failed.extend(other.failed);
        self.common.warnings.extend(other.common.warnings);
        self.common.continuations += other.common.continuations;
        self.not_handed_on.extend(other.not_handed_on);
        self.follow_up.shared.extend(other.follow_up.shared);
        self.follow_up.to_lock.extend(other.follow_up.to_lock);
        self.sort();
    }

    /// A stable order, whatever order the calls finished in.
    pub fn sort(&mut self) {
        self.shared.sort_by(|a, b| a.source.cmp(&b.source));
        self.locked.sort_by(|a, b| {
            (&a.source, &a.region, &a.snapshot).cmp(&(&b.source, &b.region, &b.snapshot))
        });
        self.copied
            .sort_by(|a, b| (&a.source, &a.region).cmp(&(&b.source, &b.region)));
        self.skipped
            .sort_by(|a, b| (&a.source, &a.region).cmp(&(&b.source, &b.region)));
        self.deferred
            .sort_by(|a, b| (&a.source, &a.region).cmp(&(&b.source, &b.region)));
        self.failed
            .sort_by(|a, b| (&a.source, &a.region).cmp(&(&b.source, &b.region)));
    }
}
