//! Why monitor was invoked: the schedule, or `{}`.

use crate::error::Error;
use crate::event::{Scheduled, parse_scheduled};
use serde_json::Value;

/// Why monitor was invoked: the schedule, or `{}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorRequest {
    pub event_id: Option<String>,
}

const EXPECTED: &str = "expected an EventBridge \"Scheduled Event\" or {}";

pub fn parse_monitor_request(payload: &Value) -> Result<MonitorRequest, Error> {
    let event_id = match parse_scheduled(payload, EXPECTED, &[])? {
        Scheduled::Event { id } => id,
        Scheduled::Direct { .. } => None,
    };
    Ok(MonitorRequest { event_id })
}
