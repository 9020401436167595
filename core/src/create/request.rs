//! Why a create function was invoked: its payloads parsed into [`CreateRequest`], and the
//! continuation it hands on through its work queue ([`CreateWork`]).

use crate::error::Error;
use crate::event::{
    Direct, SCHEDULED, TAG_CHANGE, detail, eventbridge, id_from_arn, is_ec2_id, truncate,
};
use chrono::{DateTime, Utc};
use serde_json::Value;

/// What a create function backs up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    Instance,
    Volume,
}

impl ResourceKind {
    /// The key of a direct invocation: `{"instance_ids": [...]}`.
    pub fn ids_field(self) -> &'static str {
        match self {
            ResourceKind::Instance => "instance_ids",
            ResourceKind::Volume => "volume_ids",
        }
    }
    /// The resource type in ARNs and Tag Change events.
    pub fn resource_type(self) -> &'static str {
        match self {
            ResourceKind::Instance => "instance",
            ResourceKind::Volume => "volume",
        }
    }
    /// The function that backs it up (the binary's name, the metrics' `Function`).
    pub fn function(self) -> &'static str {
        match self {
            ResourceKind::Instance => "create-image",
            ResourceKind::Volume => "create-snapshot",
        }
    }
    /// What a backup of it is.
    pub fn backup_kind(self) -> crate::tags::Kind {
        match self {
            ResourceKind::Instance => crate::tags::Kind::Image,
            ResourceKind::Volume => crate::tags::Kind::Snapshot,
        }
    }
    fn id_prefix(self) -> &'static str {
        match self {
            ResourceKind::Instance => "i-",
            ResourceKind::Volume => "vol-",
        }
    }
    pub fn is_id(self, id: &str) -> bool {
        is_ec2_id(self.id_prefix(), id)
    }
}

/// Why a create function was invoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateRequest {
    /// The schedule: sweep every opted-in resource of the region.
    Schedule {
        event_id: Option<String>,
        time: Option<DateTime<Utc>>,
    },
    /// Tags changed on these resources: back them up if they opt in and are due.
    TagChange {
        event_id: Option<String>,
        time: Option<DateTime<Utc>>,
        region: Option<String>,
        ids: Vec<String>,
    },
    /// A person or a script asked for these now, whatever the interval.
    OnDemand { ids: Vec<String> },
    /// Work an earlier invocation handed on through the work queue (see [`CreateWork`]).
    Continued(CreateWork),
    /// Well-formed, but not for this function (a Tag Change on another resource type).
    Ignored {
        event_id: Option<String>,
        reason: String,
    },
}

impl CreateRequest {
    pub fn event_id(&self) -> Option<&str> {
        match self {
            CreateRequest::Schedule { event_id, .. }
            | CreateRequest::TagChange { event_id, .. }
            | CreateRequest::Ignored { event_id, .. } => event_id.as_deref(),
            CreateRequest::Continued(work) => work.event_id.as_deref(),
            CreateRequest::OnDemand { .. } => None,
        }
    }

    /// Whether it runs from the work queue, when the function has one: sweeps and this region's
    /// Tag Changes, one at a time (the queue's one message group), so that a sweep that outlasts
    /// the interval never races the next, nor a Tag Change the sweep; and a record is at most a
    /// message's worth of backups, so a Tag Change waits a few minutes at most.
    pub fn runs_from_the_queue(&self, region: &str) -> bool {
        match self {
            CreateRequest::Schedule { .. } => true,
            CreateRequest::TagChange { region: from, .. } => {
                from.as_deref().is_none_or(|r| r == region)
            }
            _ => false,
        }
    }

    /// A Tag Change, or the rest of one.
    pub fn is_tag_change(&self) -> bool {
        matches!(
            self,
            CreateRequest::TagChange { .. }
                | CreateRequest::Continued(CreateWork {
                    origin: Origin::TagChange,
                    ..
                })
        )
    }

    /// When EventBridge says the event happened: the same on every redelivery of it.
    pub fn event_time(&self) -> Option<DateTime<Utc>> {
        match self {
            CreateRequest::Schedule { time, .. } | CreateRequest::TagChange { time, .. } => *time,
            CreateRequest::Continued(work) => work.time,
            CreateRequest::OnDemand { .. } | CreateRequest::Ignored { .. } => None,
        }
    }
}

/// `detail` of a `Tag Change on Resource`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, rename_all = "kebab-case")]
struct TagChangeDetail {
    service: String,
    resource_type: String,
}

pub fn parse_create_request(payload: &Value, kind: ResourceKind) -> Result<CreateRequest, Error> {
    let expected = || {
        format!(
            "expected an EventBridge \"{SCHEDULED}\", a \"{TAG_CHANGE}\" event for ec2 {} resources, or {{\"{}\": [...]}}",
            kind.resource_type(),
            kind.ids_field()
        )
    };
    if let Some(event) = eventbridge(payload) {
        let event = event?;
        let event_id = event.id.clone();
        let time = event.time;
        return match (event.source.as_str(), event.detail_type.as_str()) {
            ("aws.events", SCHEDULED) => Ok(CreateRequest::Schedule { event_id, time }),
            ("aws.tag", TAG_CHANGE) => {
                let detail: TagChangeDetail = detail(&event)?;
                let (service, rtype) = (detail.service.as_str(), detail.resource_type.as_str());
                if service != "ec2" || rtype != kind.resource_type() {
                    return Ok(CreateRequest::Ignored {
                        event_id,
                        reason: format!(
                            "Tag Change on {service} {rtype}: this function backs up ec2 {} resources",
                            kind.resource_type()
                        ),
                    });
                }
                let ids: Vec<String> = event
                    .resources
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|arn| id_from_arn(arn))
                    .filter(|id| kind.is_id(id))
                    .map(str::to_string)
                    .collect();
                if ids.is_empty() {
                    return Err(Error::Payload(format!(
                        "Tag Change event {} names no ec2 {} in resources",
                        event_id.as_deref().unwrap_or("(no id)"),
                        kind.resource_type()
                    )));
                }
                Ok(CreateRequest::TagChange {
                    event_id,
                    time,
                    region: event.region,
                    ids,
                })
            }
            (source, detail_type) => Err(Error::Payload(format!(
                "{} from {source:?} with detail-type {detail_type:?}",
                expected()
            ))),
        };
    }
    if let Some(direct) = Direct::parse(payload)
        && let Some(sent) = direct.ids(kind.ids_field())
    {
        let extra = direct.fields_besides(&[kind.ids_field()]);
        if !extra.is_empty() {
            return Err(Error::Payload(format!(
                "unknown fields {extra:?}; {}",
                expected()
            )));
        }
        let ids = sent.check(kind.ids_field(), kind.resource_type(), |id| kind.is_id(id))?;
        return Ok(CreateRequest::OnDemand { ids });
    }
    Err(Error::Payload(format!(
        "{}; got {}",
        expected(),
        truncate(payload)
    )))
}

/// What started the work a continuation carries on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    Schedule,
    TagChange,
    OnDemand,
}

/// A create function's continuation: the rest of a sweep, of a
/// Tag Change or of an on-demand request, or a whole scheduled sweep handed to the queue.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateWork {
    pub origin: Origin,
    /// The original event's time: AMI names carry it, so that a repeat collides on the name.
    pub time: Option<DateTime<Utc>>,
    /// An on-demand request's id: a repeat finds the backups the request made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The resources left; `None`: every opted-in resource of the region (a whole sweep).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids: Option<Vec<String>>,
    /// The original EventBridge event's id: every record of a sweep logs it, so that a chain of
    /// continuations is found by its schedule's event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

impl CreateWork {
    /// The continuation of `request` (without its ids), `None` for a request that hands
    /// nothing on. `now` stands for an on-demand request's time, as its AMI names do.
    pub fn of(request: &CreateRequest, request_id: &str, now: DateTime<Utc>) -> Option<Self> {
        let (origin, time) = match request {
            CreateRequest::Schedule { time, .. } => (Origin::Schedule, time.unwrap_or(now)),
            CreateRequest::TagChange { time, .. } => (Origin::TagChange, time.unwrap_or(now)),
            CreateRequest::OnDemand { .. } => (Origin::OnDemand, now),
            CreateRequest::Continued(work) => {
                return Some(CreateWork {
                    ids: None,
                    ..work.clone()
                });
            }
            CreateRequest::Ignored { .. } => return None,
        };
        Some(CreateWork {
            origin,
            time: Some(time),
            request_id: (origin == Origin::OnDemand).then(|| request_id.to_string()),
            ids: None,
            event_id: request.event_id().map(str::to_string),
        })
    }

    /// Refuses work this function cannot do, naming what is wrong.
    pub fn check(self, kind: ResourceKind) -> Result<Self, Error> {
        if let Some(ids) = &self.ids
            && let Some(bad) = ids.iter().find(|id| !kind.is_id(id))
        {
            return Err(Error::Payload(format!(
                "a continuation naming {bad:?}, which is not a valid {} id",
                kind.resource_type()
            )));
        }
        if self.ids.as_ref().is_some_and(Vec::is_empty) {
            return Err(Error::Payload("a continuation naming no resource".into()));
        }
        if self.time.is_none() {
            return Err(Error::Payload(
                "a continuation without the original event's time (its AMI names carry it)".into(),
            ));
        }
        if self.ids.is_none() && self.origin != Origin::Schedule {
            return Err(Error::Payload(
                "a continuation of a Tag Change or an on-demand request must name its resources"
                    .into(),
            ));
        }
        if self.origin == Origin::OnDemand && self.request_id.is_none() {
            return Err(Error::Payload(
                "an on-demand continuation without its request_id".into(),
            ));
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tags::parse_time;
    use serde_json::json;

    fn scheduled() -> Value {
        json!({"version": "0", "id": "e-1", "detail-type": "Scheduled Event", "source": "aws.events",
               "account": "123456789012", "time": "2026-11-25T03:00:00Z", "region": "us-east-1",
               "resources": ["arn:aws:events:us-east-1:123456789012:rule/r"], "detail": {}})
    }

    fn tag_change(rtype: &str, arn: &str) -> Value {
        json!({"version": "0", "id": "e-2", "detail-type": "Tag Change on Resource", "source": "aws.tag",
               "account": "123456789012", "time": "2026-11-25T03:00:00Z", "region": "us-east-1",
               "resources": [arn],
               "detail": {"changed-tag-keys": ["Backup"], "service": "ec2", "resource-type": rtype,
                          "version": 5, "tags": {"Backup": "true"}}})
    }

    #[test]
    fn schedule() {
        assert_eq!(
            parse_create_request(&scheduled(), ResourceKind::Instance).unwrap(),
            CreateRequest::Schedule {
                event_id: Some("e-1".into()),
                time: crate::tags::parse_time("2026-11-25T03:00:00Z"),
            }
        );
    }

    #[test]
    fn tag_change_of_the_right_type() {
        let e = tag_change(
            "instance",
            "arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0",
        );
        assert_eq!(
            parse_create_request(&e, ResourceKind::Instance).unwrap(),
            CreateRequest::TagChange {
                event_id: Some("e-2".into()),
                time: crate::tags::parse_time("2026-11-25T03:00:00Z"),
                region: Some("us-east-1".into()),
                ids: vec!["i-0123456789abcdef0".into()]
            }
        );
        let e = tag_change(
            "volume",
            "arn:aws:ec2:us-east-1:123456789012:volume/vol-0123456789abcdef0",
        );
        assert!(matches!(
            parse_create_request(&e, ResourceKind::Volume).unwrap(),
            CreateRequest::TagChange { .. }
        ));
    }

    #[test]
    fn tag_change_of_another_type_is_ignored_with_a_reason() {
        let e = tag_change(
            "volume",
            "arn:aws:ec2:us-east-1:123456789012:volume/vol-0123456789abcdef0",
        );
        match parse_create_request(&e, ResourceKind::Instance).unwrap() {
            CreateRequest::Ignored { reason, .. } => assert!(reason.contains("volume"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn on_demand() {
        let p = json!({"instance_ids": ["i-0123456789abcdef0", "i-12345678", "i-12345678"]});
        assert_eq!(
            parse_create_request(&p, ResourceKind::Instance).unwrap(),
            CreateRequest::OnDemand {
                ids: vec!["i-0123456789abcdef0".into(), "i-12345678".into()]
            }
        );
    }

    #[test]
    fn malformed_payloads_say_what_was_expected() {
        let cases = [
            (json!({}), "expected an EventBridge"),
            (json!("hello"), "expected an EventBridge"),
            (json!({"instance_ids": []}), "instance_ids is empty"),
            (json!({"instance_ids": "i-12345678"}), "must be a list"),
            (
                json!({"instance_ids": ["vol-12345678"]}),
                "not a valid instance id",
            ),
            (json!({"instance_ids": [42]}), "not a valid instance id"),
            (
                json!({"instance_ids": ["i-12345678"], "force": true}),
                "unknown fields",
            ),
            (
                json!({"detail-type": "EC2 AMI State Change", "source": "aws.ec2", "detail": {}}),
                "detail-type \"EC2 AMI State Change\"",
            ),
            (json!({"detail-type": "Scheduled Event"}), "does not parse"),
            (
                json!({"detail-type": "Tag Change on Resource", "source": "aws.tag", "resources": [],
                    "detail": {"service": "ec2", "resource-type": "instance"}}),
                "names no ec2 instance",
            ),
        ];
        for (payload, want) in cases {
            let err = parse_create_request(&payload, ResourceKind::Instance)
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{payload}: {err}");
        }
    }

    #[test]
    fn ids_are_checked_for_shape() {
        assert!(ResourceKind::Instance.is_id("i-0123456789abcdef0"));
        assert!(ResourceKind::Instance.is_id("i-12345678"));
        assert!(!ResourceKind::Instance.is_id("i-1234567"));
        assert!(!ResourceKind::Instance.is_id("i-0123456789abcdefg"));
        assert!(ResourceKind::Volume.is_id("vol-0123456789abcdef0"));
        assert_eq!(
            id_from_arn("arn:aws:ec2::us-east-1:snapshot/snap-1"),
            Some("snap-1")
        );
        assert_eq!(id_from_arn("nothing"), None);
    }

    #[test]
    fn a_continuation_that_would_lose_its_idempotency_is_refused() {
        let work = |origin, time: Option<&str>, ids: Option<&[&str]>| CreateWork {
            origin,
            time: time.map(|t| parse_time(t).unwrap()),
            request_id: (origin == Origin::OnDemand).then(|| "r-1".to_string()),
            ids: ids.map(|ids| ids.iter().map(|s| s.to_string()).collect()),
            event_id: None,
        };
        let t = Some("2026-11-25T03:00:00Z");
        let one: &[&str] = &["i-0123456789abcdef0"];
        assert!(
            work(Origin::Schedule, t, None)
                .check(ResourceKind::Instance)
                .is_ok()
        );
        assert!(
            work(Origin::OnDemand, t, Some(one))
                .check(ResourceKind::Instance)
                .is_ok()
        );
        let refused = [
            (work(Origin::Schedule, None, None), "time"),
            (work(Origin::OnDemand, t, None), "must name its resources"),
            (work(Origin::TagChange, t, None), "must name its resources"),
            (
                work(Origin::Schedule, t, Some(&["vol-0123456789abcdef0"])),
                "not a valid instance id",
            ),
            (work(Origin::Schedule, t, Some(&[])), "naming no resource"),
        ];
        for (w, why) in refused {
            let err = w.check(ResourceKind::Instance).unwrap_err().to_string();
            assert!(err.contains(why), "{err}");
        }
    }
}
