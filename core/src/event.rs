//! What the functions' payloads share: an EventBridge event and its `detail`, a direct
//! invocation's id lists, ids and ARNs, and how a payload is quoted in an error. Each function's
//! own requests are parsed beside its plan (`create::request`, `replicate::event`, ...).

use crate::error::Error;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde_json::Value;

/// The detail-type of EventBridge Scheduler's and a schedule rule's events.
pub const SCHEDULED: &str = "Scheduled Event";
/// The detail-type of a tag change on a resource.
pub const TAG_CHANGE: &str = "Tag Change on Resource";

/// Parses an EventBridge event when the payload looks like one (`detail-type` present).
pub fn eventbridge(payload: &Value) -> Option<Result<EventBridgeEvent<Value>, Error>> {
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

/// An EC2 id: `prefix` (`i-`, `vol-`, `ami-`, `snap-`) and 8 or 17 hex digits (the old and
/// the new id shapes).
pub fn is_ec2_id(prefix: &str, id: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|hex| {
        (8..=17).contains(&hex.len()) && hex.bytes().all(|b| b.is_ascii_hexdigit())
    })
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

/// The payload of a function that runs on a schedule: the schedule's event, or a direct
/// invocation carrying only fields the function allows (`dry_run`, as sent, the one there is).
#[derive(Debug, Clone)]
pub enum Scheduled {
    Event { id: Option<String> },
    Direct { dry_run: Option<Value> },
}

/// `payload` as a [`Scheduled`] one: an EventBridge `Scheduled Event`, or a JSON object with no
/// field but `allowed`; anything else is refused, saying what was `expected`.
pub fn parse_scheduled(
    payload: &Value,
    expected: &str,
    allowed: &[&str],
) -> Result<Scheduled, Error> {
    if let Some(event) = eventbridge(payload) {
        let event = event?;
        return match (event.source.as_str(), event.detail_type.as_str()) {
            ("aws.events", SCHEDULED) => Ok(Scheduled::Event { id: event.id }),
            (source, detail_type) => Err(Error::Payload(format!(
                "{expected}; got an event from {source:?} with detail-type {detail_type:?}"
            ))),
        };
    }
    let Some(direct) = Direct::parse(payload) else {
        return Err(Error::Payload(format!(
            "{expected}; got {}",
            truncate(payload)
        )));
    };
    let unknown = direct.fields_besides(allowed);
    if !unknown.is_empty() {
        return Err(Error::Payload(format!(
            "{expected}; unknown fields {unknown:?}"
        )));
    }
    Ok(Scheduled::Direct {
        dry_run: direct.dry_run,
    })
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
