//! What an invocation did, skipped and failed, and why: the JSON every function returns.

use crate::error::Error;
use crate::region::Region;
use crate::tags::Warning;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Created {
    pub source: String,
    /// `None` in a dry run: nothing was created.
    pub id: Option<String>,
    pub name: String,
}

/// Something not done, and why: every function's `skipped` entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub source: String,
    /// The region it concerns, where that is not the function's own (replicate's destinations).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<Region>,
    pub reason: String,
}

/// Something that failed: every function's `failed` entries (expire's name the backup as `id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failed {
    pub source: String,
    /// The region the failing call was made in, where it is not the function's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<Region>,
    pub error: String,
    /// The AWS error code, when AWS gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

impl Failed {
    pub fn from_error(source: &str, region: Option<&Region>, err: &Error) -> Self {
        Self {
            source: source.to_string(),
            region: region.cloned(),
            error: err.to_string(),
            code: err.code().map(str::to_string),
        }
    }
}

/// A copy that exists (or, in a dry run, would).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Copied {
    pub source: String,
    pub region: Region,
    /// `None` in a dry run.
    pub id: Option<String>,
}

/// A copy left for the next reconcile sweep (a limit or throttling), not a failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deferred {
    pub source: String,
    pub region: Region,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// Logs an invalid tag value as it is found (the contract asks for a log line besides the
/// entry under `warnings`) and keeps it for the result.
pub fn warn_all(warnings: &[Warning]) {
    for w in warnings {
        tracing::warn!(resource = %w.resource, key = %w.key, value = %w.value, message = %w.message, "invalid tag value");
    }
}

/// The result of create-image and create-snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CreateReport {
    pub created: Vec<Created>,
    pub skipped: Vec<Skipped>,
    pub failed: Vec<Failed>,
    pub warnings: Vec<Warning>,
    pub dry_run: bool,
    /// Backups not started because the invocation's deadline was too near: the next schedule
    /// finds them due.
    #[serde(skip_serializing_if = "is_zero")]
    pub remaining: usize,
}

pub(crate) fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl CreateReport {
    /// The counts it publishes (`shared/metrics.json`, create-image and create-snapshot).
    pub fn metric_values(&self) -> crate::metrics::Values {
        use crate::metrics::{Metric, count};
        vec![
            (Metric::BackupsCreated, count(self.created.len())),
            (Metric::BackupsSkipped, count(self.skipped.len())),
            (Metric::BackupsFailed, count(self.failed.len())),
            (Metric::Warnings, count(self.warnings.len())),
        ]
    }

    pub fn skip(&mut self, source: &str, reason: impl Into<String>) {
        self.skipped.push(Skipped {
            source: source.to_string(),
            region: None,
            reason: reason.into(),
        });
    }
}

/// The invocation's outcome: the report when nothing failed; otherwise an error carrying the
/// whole report, so Lambda retries and dead-letters it only after everything else was done.
pub fn into_outcome<T: Serialize>(report: T, failed: usize) -> Result<serde_json::Value, Error> {
    let value = serde_json::to_value(&report)
        .unwrap_or_else(|e| serde_json::json!({ "serialization_error": e.to_string() }));
    if failed == 0 {
        Ok(value)
    } else {
        Err(Error::SomeFailed {
            failed,
            result: value.to_string(),
        })
    }
}
