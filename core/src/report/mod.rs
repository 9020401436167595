//! What an invocation did, skipped and failed, and why: the JSON every function returns. The
//! entries every function shares are here; each function's report, with its own fields beside
//! them, is in the module of its name.

pub mod create;
pub mod drill;
pub mod expire;
pub mod monitor;
pub mod replicate;

pub use create::CreateReport;
pub use drill::DrillReport;
pub use expire::{Deleted, ExpireReport, RegionReport};
pub use monitor::{Figures, Finding, MissingCopy, MonitorReport, Stuck, VaultFigures};
pub use replicate::{LockedEntry, ReplicateReport, SharedEntry, VaultFollowUp};

use crate::error::Error;
use crate::region::Region;
use crate::tags::{Kind, Warning};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Created {
    pub source: String,
    /// `None` in a dry run: nothing was created.
    pub id: Option<String>,
    pub name: String,
}

/// What every function's report says beside its own fields: the invalid tag values found,
/// whether it was a dry run, and the work handed on to the function's work queue.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Common {
    pub warnings: Vec<Warning>,
    pub dry_run: bool,
    /// Messages sent to the function's work queue: the rest of the work, done from there.
    #[serde(skip_serializing_if = "is_zero")]
    pub continuations: usize,
    /// Why the work must be done again (see [`crate::error::Error::Unfinished`]), when it must.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unfinished: Option<String>,
}

impl Common {
    pub fn dry_run(dry_run: bool) -> Self {
        Self {
            dry_run,
            ..Self::default()
        }
    }
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

/// Something that failed: every function's `failed` entries. expire's name the backup (or the
/// region that could not be read) as `id`, and the source only when the backup names one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Failed {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
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
    /// A backup (or a region, named as `id`) that `err` left as it was.
    pub fn of_backup(id: &str, source: Option<&String>, err: &Error) -> Self {
        Self {
            id: Some(id.to_string()),
            source: source.cloned().unwrap_or_default(),
            region: None,
            error: err.to_string(),
            code: err.code().map(str::to_string),
        }
    }

    pub fn from_error(source: &str, region: Option<&Region>, err: &Error) -> Self {
        Self {
            id: None,
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
    /// What the source is: a continuation names images and snapshots apart.
    #[serde(skip)]
    pub kind: Kind,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Whether waiting is the point (a copy limit full, sustained throttling): the continuation
    /// is delayed; otherwise (the invocation's deadline) it is handed on at once.
    #[serde(skip)]
    pub wait: bool,
}

pub fn is_zero(n: &usize) -> bool {
    *n == 0
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
    outcome(to_value(&report), failed)
}

/// [`into_outcome`] of a result bounded by [`bounded`]: what create, replicate and expire
/// return, so that a result of thousands of resources still fits Lambda's response and the
/// on-failure record (256 KiB).
pub fn into_bounded_outcome<T: Serialize>(
    report: T,
    failed: usize,
) -> Result<serde_json::Value, Error> {
    outcome(bounded(to_value(&report)), failed)
}

/// [`into_bounded_outcome`], unless the work is `unfinished`: then an [`Error::Unfinished`]
/// carrying the bounded result, so that it is tried again (Lambda's retry, or the work queue's).
pub fn into_outcome_unless_unfinished<T: Serialize>(
    report: T,
    failed: usize,
    unfinished: Option<String>,
) -> Result<serde_json::Value, Error> {
    match unfinished {
        Some(reason) => Err(Error::Unfinished {
            reason,
            result: bounded(to_value(&report)).to_string(),
        }),
        None => into_bounded_outcome(report, failed),
    }
}

fn to_value<T: Serialize>(report: &T) -> serde_json::Value {
    serde_json::to_value(report)
        .unwrap_or_else(|e| serde_json::json!({ "serialization_error": e.to_string() }))
}

fn outcome(value: serde_json::Value, failed: usize) -> Result<serde_json::Value, Error> {
    if failed == 0 {
        Ok(value)
    } else {
        Err(Error::SomeFailed {
            failed,
            result: value.to_string(),
        })
    }
}

/// Bounds a result: in every object that holds lists (the result itself, each region of
/// expire's), `"counts"` gives each list's full length, every list keeps its first
/// [`LIST_LIMIT`] entries, and `"omitted"` says how many each cut list left off (only when one
/// was cut). Every entry is also logged as it happens, so what is cut here is in the logs.
pub fn bounded(mut value: serde_json::Value) -> serde_json::Value {
    bound(&mut value);
    value
}

fn bound(value: &mut serde_json::Value) {
    let Some(object) = value.as_object_mut() else {
        return;
    };
    let mut counts = serde_json::Map::new();
    let mut omitted = serde_json::Map::new();
    for (name, member) in object.iter_mut() {
        match member {
            serde_json::Value::Array(list) => {
                counts.insert(name.clone(), list.len().into());
                if list.len() > LIST_LIMIT {
                    omitted.insert(name.clone(), (list.len() - LIST_LIMIT).into());
                    list.truncate(LIST_LIMIT);
                }
            }
            serde_json::Value::Object(_) => bound(member),
            _ => {}
        }
    }
    if !counts.is_empty() {
        object.insert("counts".into(), counts.into());
    }
    if !omitted.is_empty() {
        object.insert("omitted".into(), omitted.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bounded_result_counts_every_list_and_keeps_at_most_a_hundred_of_each() {
        let created: Vec<u32> = (0..250).collect();
        let value = serde_json::json!({
            "created": created, "failed": [1, 2], "dry_run": false,
            "regions": {"us-east-1": {"deregistered": (0..101).collect::<Vec<_>>(), "kept": []}},
        });
        let b = bounded(value);
        assert_eq!(b["created"].as_array().unwrap().len(), 100);
        assert_eq!(b["created"][0], 0, "the first ones are kept");
        assert_eq!(
            b["counts"],
            serde_json::json!({"created": 250, "failed": 2})
        );
        assert_eq!(b["omitted"], serde_json::json!({"created": 150}));
        let r = &b["regions"]["us-east-1"];
        assert_eq!(
            r["counts"],
            serde_json::json!({"deregistered": 101, "kept": 0})
        );
        assert_eq!(r["omitted"], serde_json::json!({"deregistered": 1}));
        assert!(b["regions"].get("counts").is_none(), "no lists, no counts");
        // 10,000 failures fit the on-failure record.
        let many: Vec<serde_json::Value> = (0..10_000)
            .map(|i| serde_json::json!({"source": format!("i-{i:017x}"), "error": "x".repeat(200)}))
            .collect();
        let text = bounded(serde_json::json!({ "failed": many })).to_string();
        assert!(text.len() < 256 * 1024, "{}", text.len());
    }

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
