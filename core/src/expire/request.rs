//! Why expire was invoked: its payloads parsed into [`ExpireRequest`], and the continuation it
//! hands on through its work queue ([`ExpireWork`]).

use crate::error::Error;
use crate::event::{Scheduled, parse_scheduled};
use crate::region::Region;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeSet;

/// Why expire was invoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpireRequest {
    pub event_id: Option<String>,
    /// `{"dry_run": true}`: plan only, whatever `DRY_RUN` says.
    pub dry_run: bool,
    /// A continuation's regions: only these are swept. `None`: every region expire sweeps.
    pub regions: Option<Vec<Region>>,
    /// How many times the sweep was handed on before (0: a scheduled or direct one).
    pub attempt: u32,
}

/// expire's continuation (see [`crate::continuation`]): the regions whose sweep the deadline cut
/// short, swept again (a sweep can be done twice: what was deleted is gone, what was not is
/// found again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpireWork {
    pub regions: Vec<Region>,
    /// How many times the sweep was handed on before: past [`MAX_ATTEMPTS`] (EC2's delete
    /// buckets taken by others for hours), the next schedule takes over.
    #[serde(default)]
    pub attempt: u32,
}

/// Continuations of one sweep at most: about 12 hours of 15-minute invocations.
pub const MAX_ATTEMPTS: u32 = 48;

impl ExpireWork {
    pub fn check(mut self) -> Result<Self, Error> {
        if self.regions.is_empty() {
            return Err(Error::Payload("a continuation naming no region".into()));
        }
        // Each region swept once, in the order named.
        let mut seen = BTreeSet::new();
        self.regions.retain(|r| seen.insert(r.clone()));
        Ok(self)
    }
}

/// The function's name: its continuations' `function`, its metrics' `Function`.
pub const FUNCTION: &str = "expire";

const EXPECTED: &str =
    "expected an EventBridge \"Scheduled Event\", {} (one sweep) or {\"dry_run\": true}";

pub fn parse_expire_request(payload: &Value) -> Result<ExpireRequest, Error> {
    let (event_id, dry_run) = match parse_scheduled(payload, EXPECTED, &["dry_run"])? {
        Scheduled::Event { id } => (id, false),
        Scheduled::Direct { dry_run } => match dry_run {
            None => (None, false),
            Some(Value::Bool(b)) => (None, b),
            Some(other) => {
                return Err(Error::Payload(format!(
                    "{EXPECTED}; dry_run must be true or false, got {other}"
                )));
            }
        },
    };
    Ok(ExpireRequest {
        event_id,
        dry_run,
        regions: None,
        attempt: 0,
    })
}
