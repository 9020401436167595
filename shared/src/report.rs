//! What an invocation did, skipped and failed, and why: the JSON every function returns.

use crate::error::Error;
use crate::tags::Warning;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Created {
    pub source: String,
    /// `None` in a dry run: nothing was created.
    pub id: Option<String>,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub source: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failed {
    pub source: String,
    pub error: String,
    /// The AWS error code, when AWS gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

impl Failed {
    pub fn from_error(source: &str, err: &Error) -> Self {
        Self {
            source: source.to_string(),
            error: err.to_string(),
            code: err.code().map(str::to_string),
        }
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
}

impl CreateReport {
    pub fn skip(&mut self, source: &str, reason: impl Into<String>) {
        self.skipped.push(Skipped {
            source: source.to_string(),
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
