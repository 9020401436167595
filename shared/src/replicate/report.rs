//! What a `replicate` invocation returns.

use crate::region::Region;
pub use crate::report::{Copied, Deferred, Failed, Skipped};
use crate::tags::Warning;
use serde::Serialize;

/// `{"copied": [...], "skipped": [...], "deferred": [...], "failed": [...], "warnings": [...]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReplicateReport {
    pub copied: Vec<Copied>,
    pub skipped: Vec<Skipped>,
    pub deferred: Vec<Deferred>,
    pub failed: Vec<Failed>,
    pub warnings: Vec<Warning>,
    pub dry_run: bool,
}

impl ReplicateReport {
    pub fn new(dry_run: bool) -> Self {
        Self {
            dry_run,
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

    /// A stable order, whatever order the calls finished in.
    pub fn sort(&mut self) {
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
