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

/// How many entries a list of a result holds at most: a result stays readable (and well
/// inside Lambda's 6 MB response) when thousands of resources are in the same state.
pub const LIST_LIMIT: usize = 100;

/// How many entries were left off each cut list of a result, by the list's name; only the cut
/// lists appear (`"omitted": {"late": 50}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Omitted(std::collections::BTreeMap<&'static str, usize>);

impl Omitted {
    /// Cuts `list` (named `name` in the result) to `limit` entries, the first ones kept, and
    /// records how many were left off.
    pub fn cap<T>(&mut self, name: &'static str, list: &mut Vec<T>, limit: usize) {
        let over = list.len().saturating_sub(limit);
        if over > 0 {
            list.truncate(limit);
            *self.0.entry(name).or_default() += over;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many were left off `name` (0 when it was not cut).
    pub fn of(&self, name: &str) -> usize {
        self.0.get(name).copied().unwrap_or(0)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_over_the_limit_is_cut_and_says_how_many_were_left_off() {
        let mut omitted = Omitted::default();
        let mut long: Vec<u32> = (0..150).collect();
        let mut short: Vec<u32> = (0..100).collect();
        omitted.cap("long", &mut long, LIST_LIMIT);
        omitted.cap("short", &mut short, LIST_LIMIT);
        assert_eq!(
            long,
            (0..100).collect::<Vec<_>>(),
            "the first ones are kept"
        );
        assert_eq!(short.len(), 100);
        assert_eq!((omitted.of("long"), omitted.of("short")), (50, 0));
        assert_eq!(
            serde_json::to_value(&omitted).unwrap(),
            serde_json::json!({"long": 50}),
            "only the cut lists appear"
        );
        assert!(Omitted::default().is_empty());
    }
}
