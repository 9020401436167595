//! Why drill was invoked: its payloads parsed into [`DrillRequest`], and the continuation it
//! hands on through its work queue ([`DrillWork`]: the restores still to check).

use super::record::Restore;
use crate::error::Error;
use crate::event::{Scheduled, SentIds, eventbridge, is_ec2_id, parse_scheduled, truncate};
use crate::region::Region;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The function's name: its continuations' `function`, its metrics' `Function`.
pub const FUNCTION: &str = "drill";

/// Restores one continuation carries at most (each about 300 bytes: a message stays far inside
/// SQS's 256 KiB).
pub const RESTORES_PER_MESSAGE: usize = 100;

/// Why drill was invoked.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DrillRequest {
    pub event_id: Option<String>,
    /// The scheduled event's time: with its id, the run's (the same in a retry of it).
    pub event_time: Option<DateTime<Utc>>,
    /// `resource_ids`: only these resources. `None`: every protected one.
    pub resource_ids: Option<Vec<String>>,
    /// `regions`: only these drill regions. `None`: every one.
    pub regions: Option<Vec<Region>>,
    /// A continuation: the restores of an earlier invocation to check, nothing new.
    pub work: Option<DrillWork>,
}

/// drill's continuation (see [`crate::continuation`]): the restores still to check, with the
/// run they belong to. Checked twice, a restore is judged twice, but its evidence is written
/// once (the object's key is the run's, the region's and the resource's, and the write is
/// conditional) and its throwaway resource is already gone the second time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillWork {
    pub run: String,
    pub run_started_at: DateTime<Utc>,
    pub restores: Vec<Restore>,
}

const EXPECTED: &str = "expected an EventBridge \"Scheduled Event\", {} (every resource due), {\"resource_ids\": [\"i-...\", \"vol-...\"], \"regions\": [\"us-west-2\"]} (either list optional), or a continuation of drill from its work queue";

/// The fields a direct invocation may carry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Direct {
    resource_ids: Option<SentIds>,
    regions: Option<Value>,
}

pub fn parse_drill_request(payload: &Value) -> Result<DrillRequest, Error> {
    if let Some(event) = eventbridge(payload) {
        let time = event.as_ref().ok().and_then(|e| e.time);
        return match parse_scheduled(payload, EXPECTED, &[])? {
            Scheduled::Event { id } => Ok(DrillRequest {
                event_id: id,
                event_time: time,
                ..DrillRequest::default()
            }),
            Scheduled::Direct { .. } => Err(Error::Payload(EXPECTED.into())),
        };
    }
    if !payload.is_object() {
        return Err(Error::Payload(format!(
            "{EXPECTED}; got {}",
            truncate(payload)
        )));
    }
    let direct: Direct = serde_json::from_value(payload.clone())
        .map_err(|e| Error::Payload(format!("{EXPECTED}; {e}")))?;
    let resource_ids = direct
        .resource_ids
        .map(|ids| {
            ids.check("resource_ids", "instance or volume", |id| {
                is_ec2_id("i-", id) || is_ec2_id("vol-", id)
            })
            .map_err(|e| match e {
                Error::Payload(why) => Error::Payload(format!("{EXPECTED}; {why}")),
                other => other,
            })
        })
        .transpose()?;
    let regions = direct.regions.map(|v| parse_regions(&v)).transpose()?;
    Ok(DrillRequest {
        resource_ids,
        regions,
        ..DrillRequest::default()
    })
}

fn parse_regions(value: &Value) -> Result<Vec<Region>, Error> {
    let bad = |why: String| Error::Payload(format!("{EXPECTED}; regions {why}"));
    let list = value
        .as_array()
        .ok_or_else(|| bad(format!("must be a list of region names, got {value}")))?;
    if list.is_empty() {
        return Err(bad("is empty: name at least one region".into()));
    }
    let mut regions: Vec<Region> = Vec::new();
    for item in list {
        let name = item
            .as_str()
            .ok_or_else(|| bad(format!("holds {item}, which is not a region name")))?;
        let region = Region::parse(name).map_err(|e| bad(format!("holds {name:?}: {e}")))?;
        if !regions.contains(&region) {
            regions.push(region);
        }
    }
    Ok(regions)
}

impl DrillWork {
    /// A continuation's work, checked: it names at least one restore.
    pub fn check(self) -> Result<Self, Error> {
        if self.restores.is_empty() {
            return Err(Error::Payload(
                "a continuation of drill naming no restore".into(),
            ));
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_schedule_an_empty_object_and_a_narrowed_run_are_requests() {
        let scheduled = json!({"version": "0", "id": "e-1", "detail-type": "Scheduled Event", "source": "aws.events", "account": "123456789012", "time": "2026-12-06T03:00:00Z", "region": "us-east-1", "resources": [], "detail": {}});
        let r = parse_drill_request(&scheduled).unwrap();
        assert_eq!(r.event_id.as_deref(), Some("e-1"));
        assert_eq!(
            r.event_time,
            crate::tags::parse_time("2026-12-06T03:00:00Z")
        );
        assert_eq!(r.resource_ids, None);
        assert_eq!(
            parse_drill_request(&json!({})).unwrap(),
            DrillRequest::default()
        );
        let r = parse_drill_request(
            &json!({"resource_ids": ["i-0123456789abcdef0", "vol-0123456789abcdef0", "i-0123456789abcdef0"], "regions": ["us-west-2"]}),
        )
        .unwrap();
        assert_eq!(
            r.resource_ids.unwrap(),
            ["i-0123456789abcdef0", "vol-0123456789abcdef0"]
        );
        assert_eq!(r.regions.unwrap(), [Region::parse("us-west-2").unwrap()]);
    }

    #[test]
    fn anything_else_is_refused_saying_what_was_expected() {
        let cases = [
            (json!([]), "got []"),
            (json!("drill"), "got \"drill\""),
            (
                json!({"instance_ids": ["i-0123456789abcdef0"]}),
                "unknown field",
            ),
            (
                json!({"resource_ids": ["ami-0123456789abcdef0"]}),
                "not a valid instance or volume id",
            ),
            (json!({"resource_ids": []}), "is empty"),
            (json!({"regions": "us-west-2"}), "must be a list"),
            (json!({"regions": ["Mars"]}), "\"Mars\""),
            (json!({"regions": []}), "is empty"),
            (
                json!({"detail-type": "Tag Change on Resource", "source": "aws.tag", "id": "1", "version": "0", "account": "1", "time": "2026-12-06T03:00:00Z", "region": "us-east-1", "resources": [], "detail": {}}),
                "detail-type",
            ),
        ];
        for (payload, why) in cases {
            let err = parse_drill_request(&payload).unwrap_err().to_string();
            assert!(err.contains(why), "{payload}: {err}");
            assert!(err.contains("expected an EventBridge"), "{err}");
        }
    }
}
