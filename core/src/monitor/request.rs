//! Why monitor was invoked: the schedule, or `{}`.

use crate::error::Error;
use crate::event::truncate;
use serde_json::Value;

/// Why monitor was invoked: the schedule, or `{}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorRequest {
    pub event_id: Option<String>,
}

const EXPECTED: &str = "expected an EventBridge \"Scheduled Event\" or {}";

pub fn parse_monitor_request(payload: &Value) -> Result<MonitorRequest, Error> {
    if let Some(event) = crate::event::eventbridge(payload) {
        let event = event?;
        return match (event.source.as_str(), event.detail_type.as_str()) {
            ("aws.events", "Scheduled Event") => Ok(MonitorRequest { event_id: event.id }),
            (source, detail_type) => Err(Error::Payload(format!(
                "{EXPECTED}; got an event from {source:?} with detail-type {detail_type:?}"
            ))),
        };
    }
    let Some(direct) = crate::event::Direct::parse(payload) else {
        return Err(Error::Payload(format!(
            "{EXPECTED}; got {}",
            truncate(payload)
        )));
    };
    let unknown = direct.fields_besides(&[]);
    if !unknown.is_empty() {
        return Err(Error::Payload(format!(
            "{EXPECTED}; unknown fields {unknown:?}"
        )));
    }
    Ok(MonitorRequest { event_id: None })
}
