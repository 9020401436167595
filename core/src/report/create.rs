//! The result of create-image and create-snapshot.

use super::{Common, Created, Failed, Skipped, is_zero};
use serde::Serialize;

/// The result of create-image and create-snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CreateReport {
    pub created: Vec<Created>,
    pub skipped: Vec<Skipped>,
    pub failed: Vec<Failed>,
    /// The warnings, the dry run and the work handed on, as every function says them.
    #[serde(flatten)]
    pub common: Common,
    /// Backups not started because the invocation's deadline was too near: handed on through
    /// the work queue when there is one (`continuations`), else the next schedule finds them due.
    #[serde(skip_serializing_if = "is_zero")]
    pub remaining: usize,
    /// The ids of the `remaining` backups, for the continuation.
    #[serde(skip)]
    pub unstarted: Vec<String>,
}

impl CreateReport {
    /// The counts it publishes (`shared/metrics.json`, create-image and create-snapshot).
    pub fn metric_values(&self) -> crate::metrics::Values {
        use crate::metrics::{Metric, count};
        vec![
            (Metric::BackupsCreated, count(self.created.len())),
            (Metric::BackupsSkipped, count(self.skipped.len())),
            (Metric::BackupsFailed, count(self.failed.len())),
            (Metric::Warnings, count(self.common.warnings.len())),
        ]
    }

    /// Whether a resource named was not ready to back up yet (an instance still pending): the
    /// work is tried again in a minute.
    pub fn waits_for_a_resource(&self) -> bool {
        self.failed
            .iter()
            .any(|f| f.code.as_deref() == Some(crate::codes::INCORRECT_STATE))
    }

    pub fn skip(&mut self, source: &str, reason: impl Into<String>) {
        self.skipped.push(Skipped {
            source: source.to_string(),
            region: None,
            reason: reason.into(),
        });
    }
}
