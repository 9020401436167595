//! The payloads each function accepts, parsed into our own types. Anything else is an error that
//! says what was expected.

use crate::error::Error;
use aws_lambda_events::eventbridge::EventBridgeEvent;
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

/// An EC2 id: `prefix` (`i-`, `vol-`, `ami-`, `snap-`) and 8 or 17 hex digits (the old and
/// the new id shapes).
pub fn is_ec2_id(prefix: &str, id: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|hex| {
        (8..=17).contains(&hex.len()) && hex.bytes().all(|b| b.is_ascii_hexdigit())
    })
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
    /// Work an earlier invocation handed on through the work queue (see [`crate::continuation`]).
    Continued(crate::create::CreateWork),
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

    /// When EventBridge says the event happened: the same on every redelivery of it.
    pub fn event_time(&self) -> Option<DateTime<Utc>> {
        match self {
            CreateRequest::Schedule { time, .. } | CreateRequest::TagChange { time, .. } => *time,
            CreateRequest::Continued(work) => work.time,
            CreateRequest::OnDemand { .. } | CreateRequest::Ignored { .. } => None,
        }
    }
}

const SCHEDULED: &str = "Scheduled Event";
const TAG_CHANGE: &str = "Tag Change on Resource";

/// Parses an EventBridge event when the payload looks like one (`detail-type` present).
fn eventbridge(payload: &Value) -> Option<Result<EventBridgeEvent<Value>, Error>> {
    payload.get("detail-type")?;
    Some(
        serde_json::from_value::<EventBridgeEvent<Value>>(payload.clone())
            .map_err(|e| Error::Payload(format!("an EventBridge event that does not parse: {e}"))),
    )
}

/// An event's `detail` as the typed struct of its detail-type (absent fields take their
/// defaults, so a missing one is reported by the check that needs it).
pub fn detail<T: serde::de::DeserializeOwned>(event: &EventBridgeEvent<Value>) -> Result<T, Error> {
    serde_json::from_value(event.detail.clone()).map_err(|e| {
        Error::Payload(format!(
            "a \"{}\" event whose detail does not parse: {e}",
            event.detail_type
        ))
    })
}

/// `detail` of a `Tag Change on Resource`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, rename_all = "kebab-case")]
struct TagChangeDetail {
    service: String,
    resource_type: String,
}

/// One id of a direct invocation as sent: text, or anything else (quoted in the error).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(untagged)]
pub enum SentId {
    Text(String),
    Other(Value),
}

/// A list of ids as sent: a list, or anything else (refused, naming the field).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(untagged)]
pub enum SentIds {
    List(Vec<SentId>),
    Other(Value),
}

impl SentIds {
    /// The ids, each checked for shape, in order, each once; `field` and `what` name them in
    /// the errors.
    pub fn check(
        &self,
        field: &str,
        what: &str,
        valid: impl Fn(&str) -> bool,
    ) -> Result<Vec<String>, Error> {
        let SentIds::List(list) = self else {
            return Err(Error::Payload(format!(
                "{field} must be a list of {what} ids"
            )));
        };
        if list.is_empty() {
            return Err(Error::Payload(format!(
                "{field} is empty: name at least one {what}"
            )));
        }
        let mut ids: Vec<String> = Vec::with_capacity(list.len());
        for item in list {
            match item {
                SentId::Text(id) if valid(id) => {
                    if !ids.contains(id) {
                        ids.push(id.clone());
                    }
                }
                SentId::Text(id) => return Err(not_an_id(field, &Value::from(id.as_str()), what)),
                SentId::Other(v) => return Err(not_an_id(field, v, what)),
            }
        }
        Ok(ids)
    }
}

fn not_an_id(field: &str, item: &Value, what: &str) -> Error {
    Error::Payload(format!(
        "{field} holds {item}, which is not a valid {what} id"
    ))
}

/// A direct invocation of a function: the id lists it may carry, and anything else it sent
/// (refused by name).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct Direct {
    pub instance_ids: Option<SentIds>,
    pub volume_ids: Option<SentIds>,
    pub image_ids: Option<SentIds>,
    pub snapshot_ids: Option<SentIds>,
    pub dry_run: Option<Value>,
    #[serde(flatten)]
    pub other: std::collections::BTreeMap<String, Value>,
}

impl Direct {
    /// The payload as a direct invocation, or `None` when it is not a JSON object.
    pub fn parse(payload: &Value) -> Option<Self> {
        if !payload.is_object() {
            return None;
        }
        serde_json::from_value(payload.clone()).ok()
    }

    /// The names of the fields sent, other than `allowed`, sorted.
    pub fn fields_besides(&self, allowed: &[&str]) -> Vec<String> {
        let known = [
            ("instance_ids", self.instance_ids.is_some()),
            ("volume_ids", self.volume_ids.is_some()),
            ("image_ids", self.image_ids.is_some()),
            ("snapshot_ids", self.snapshot_ids.is_some()),
            ("dry_run", self.dry_run.is_some()),
        ];
        let mut extra: Vec<String> = known
            .iter()
            .filter(|(name, sent)| *sent && !allowed.contains(name))
            .map(|(name, _)| name.to_string())
            .chain(self.other.keys().cloned())
            .collect();
        extra.sort();
        extra
    }

    /// The id list sent in `field`.
    pub fn ids(&self, field: &str) -> Option<&SentIds> {
        match field {
            "instance_ids" => self.instance_ids.as_ref(),
            "volume_ids" => self.volume_ids.as_ref(),
            "image_ids" => self.image_ids.as_ref(),
            "snapshot_ids" => self.snapshot_ids.as_ref(),
            _ => None,
        }
    }
}

/// The id after the last `/` of an ARN such as `arn:aws:ec2:us-east-1:123:instance/i-0abc`.
pub fn id_from_arn(arn: &str) -> Option<&str> {
    arn.rsplit_once('/')
        .map(|(_, id)| id)
        .filter(|id| !id.is_empty())
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

/// A payload quoted in an error: enough to recognise it, never the whole of a large one.
pub fn truncate(payload: &Value) -> String {
    let text = payload.to_string();
    if text.len() <= 200 {
        text
    } else {
        format!("{}...", crate::naming::cut(&text, 200))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
}
