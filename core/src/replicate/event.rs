//! The payloads `replicate` accepts, parsed into [`ReplicateRequest`]. Well-formed events that
//! are not for this function (another detail-type from `aws.ec2`, a copySnapshot notification,
//! an AMI that was deregistered) are [`ReplicateRequest::Ignored`] with a reason; anything else is
//! an error that says what was expected.

use crate::error::Error;
use crate::event::truncate;
use crate::tags::Kind;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::Deserialize;
use serde_json::Value;

pub const AMI_STATE_CHANGE: &str = "EC2 AMI State Change";
pub const SNAPSHOT_NOTIFICATION: &str = "EBS Snapshot Notification";
const SCHEDULED: &str = "Scheduled Event";

pub const IMAGE_IDS: &str = "image_ids";
pub const SNAPSHOT_IDS: &str = "snapshot_ids";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicateRequest {
    /// AMIs (or standalone snapshots) became available: copy those that are ours. One event
    /// invoked directly, or the events of one batch of the work queue, done as one run.
    Completed(Vec<Completion>),
    /// An AMI reached the `failed` state: nothing to copy, but a person must hear about it.
    ImageFailed {
        event_id: Option<String>,
        region: Option<String>,
        id: String,
        message: String,
    },
    /// The schedule: the reconcile sweep over every original backup of the region.
    Sweep { event_id: Option<String> },
    /// A direct invocation: replicate these now.
    OnDemand {
        image_ids: Vec<String>,
        snapshot_ids: Vec<String>,
    },
    /// Copies an earlier invocation deferred, handed on through the work queue.
    Continued(ReplicateWork),
    /// Backups another account shared with this one (a vault's `Backup Shared` events and EBS
    /// `shareSnapshot` notifications).
    Shared(Vec<super::notice::SharedNotice>),
    /// Well-formed, but nothing to do for this function.
    Ignored {
        event_id: Option<String>,
        source: String,
        reason: String,
    },
}

/// One backup's `available` (an AMI) or `succeeded` (a snapshot) event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub event_id: Option<String>,
    /// The region the event is from.
    pub region: Option<String>,
    pub kind: Kind,
    pub id: String,
}

impl ReplicateRequest {
    fn completed(event_id: Option<String>, region: Option<String>, kind: Kind, id: String) -> Self {
        ReplicateRequest::Completed(vec![Completion {
            event_id,
            region,
            kind,
            id,
        }])
    }

    /// The id of the event it is, when it is one event (a batch's events are each logged as
    /// they join its run).
    pub fn event_id(&self) -> Option<&str> {
        match self {
            ReplicateRequest::Completed(events) => match &events[..] {
                [one] => one.event_id.as_deref(),
                _ => None,
            },
            ReplicateRequest::Shared(notices) => match &notices[..] {
                [one] => one.event_id.as_deref(),
                _ => None,
            },
            ReplicateRequest::ImageFailed { event_id, .. }
            | ReplicateRequest::Sweep { event_id }
            | ReplicateRequest::Ignored { event_id, .. } => event_id.as_deref(),
            ReplicateRequest::OnDemand { .. } | ReplicateRequest::Continued(_) => None,
        }
    }
}

/// replicate's continuation (see [`crate::continuation`]): backups whose copies were deferred
/// (a copy limit full, throttling, the deadline), tried again. It plans again from the copies in
/// each destination, so a repeat finds the copy the first made; CopyImage's ClientToken (from
/// the source and destination) makes two racing AMI copies one. CopySnapshot takes no token: two
/// deliveries racing at the same instant could copy a snapshot twice (the extra copy is expired
/// like any other).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicateWork {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub snapshot_ids: Vec<String>,
    /// How many times these were handed on before: the delay grows with it, and past
    /// [`MAX_ATTEMPTS`] the reconcile sweep takes over.
    pub attempt: u32,
    /// Backups shared with a vault, to copy: its `shareSnapshot` notifications, acted on
    /// [`SHARE_NOTIFICATION_DELAY`] seconds after they came (by then the `Backup Shared` event
    /// of the same share has made the copies: CopySnapshot takes no ClientToken, and two runs at
    /// once could copy a snapshot twice), and the shared backups whose copies were deferred.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shared: Vec<SharedBackup>,
    /// A vault's copies still pending when it looked: locked (and protected) once they are
    /// usable, looked at again with the delay of [`ReplicateWork::delay_seconds`] until they are.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to_lock: Vec<CopyToLock>,
}

/// A vault copy to lock once it is usable.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CopyToLock {
    pub region: String,
    /// `image` or `snapshot`.
    pub kind: String,
    pub id: String,
}

impl CopyToLock {
    pub fn kind(&self) -> Option<Kind> {
        match self.kind.as_str() {
            "image" => Some(Kind::Image),
            "snapshot" => Some(Kind::Snapshot),
            _ => None,
        }
    }
}

/// A backup an account shared with this one: what a vault's continuation names.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedBackup {
    pub account: String,
    /// `image` or `snapshot`.
    pub kind: String,
    pub backup: String,
    /// The region the notice was from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// How long a vault waits before it acts on a `shareSnapshot` notification (see
/// [`ReplicateWork::shared`]).
pub const SHARE_NOTIFICATION_DELAY: u32 = 300;

impl SharedBackup {
    pub fn of(notice: &super::notice::SharedNotice) -> Self {
        Self {
            account: notice.account.clone(),
            kind: notice.kind.as_str().to_string(),
            backup: notice.backup.clone(),
            region: notice.region.clone(),
        }
    }

    fn kind(&self) -> Option<Kind> {
        match self.kind.as_str() {
            "image" => Some(Kind::Image),
            "snapshot" => Some(Kind::Snapshot),
            _ => None,
        }
    }

    /// The notice it was made of (the home deployment's claim is not kept: the vault reads
    /// the backup's name and description again).
    pub fn notice(&self) -> super::notice::SharedNotice {
        super::notice::SharedNotice {
            event_id: None,
            account: self.account.clone(),
            kind: self.kind().unwrap_or(Kind::Snapshot),
            backup: self.backup.clone(),
            region: self.region.clone(),
            claimed: None,
        }
    }
}

/// Continuations of one backup at most: a day of waits at the longest delay.
pub const MAX_ATTEMPTS: u32 = 96;

impl ReplicateWork {
    /// Refuses work this function cannot do, naming what is wrong.
    pub fn check(self) -> Result<Self, Error> {
        for (kind, ids) in [
            (Kind::Image, &self.image_ids),
            (Kind::Snapshot, &self.snapshot_ids),
        ] {
            if let Some(bad) = ids.iter().find(|id| !is_id(kind, id)) {
                return Err(Error::Payload(format!(
                    "a continuation naming {bad:?}, which is not a valid {} id",
                    kind.as_str()
                )));
            }
        }
        for shared in &self.shared {
            let ok = shared.kind().is_some_and(|k| is_id(k, &shared.backup))
                && crate::config::is_account_id(&shared.account);
            if !ok {
                return Err(Error::Payload(format!(
                    "a continuation naming the shared {:?} {:?} of account {:?}, which is not a valid image or snapshot id and account id",
                    shared.kind, shared.backup, shared.account
                )));
            }
        }
        for copy in &self.to_lock {
            let ok = copy.kind().is_some_and(|k| is_id(k, &copy.id))
                && crate::region::Region::parse(&copy.region).is_ok();
            if !ok {
                return Err(Error::Payload(format!(
                    "a continuation naming the copy {:?} ({:?} in {:?}) to lock, which is not a valid image or snapshot in a region",
                    copy.id, copy.kind, copy.region
                )));
            }
        }
        if self.image_ids.is_empty()
            && self.snapshot_ids.is_empty()
            && self.shared.is_empty()
            && self.to_lock.is_empty()
        {
            return Err(Error::Payload("a continuation naming no backup".into()));
        }
        Ok(self)
    }

    /// How long the next attempt waits when waiting is the point: a minute, doubling, at most
    /// SQS's 15 minutes.
    pub fn delay_seconds(attempt: u32) -> u32 {
        60u32
            .saturating_mul(1 << attempt.min(4))
            .min(crate::queue::MAX_DELAY_SECONDS)
    }
}

/// A message of the work queue: an event its rules put there (EventBridge sends the event
/// itself as the body), or a continuation.
pub fn parse_body(config: &crate::config::Config, body: &str) -> Result<ReplicateRequest, Error> {
    if let Ok(event) = serde_json::from_str::<Value>(body)
        && event.get("detail-type").is_some()
    {
        return match parse_replicate_request(&event)? {
            // Only the rules of EC2's events send to the queue: a sweep is the schedule's.
            ReplicateRequest::Sweep { .. } => Err(Error::Payload(format!(
                "a \"{SCHEDULED}\" on the work queue: the schedule invokes replicate itself; the queue takes \"{AMI_STATE_CHANGE}\" and \"{SNAPSHOT_NOTIFICATION}\" events and continuations"
            ))),
            request => Ok(request),
        };
    }
    crate::continuation::parse::<ReplicateWork>(config, super::FUNCTION, body)
        .map_err(|e| match e {
            Error::Payload(why) => Error::Payload(format!(
                "{why}, or an EventBridge \"{AMI_STATE_CHANGE}\" or \"{SNAPSHOT_NOTIFICATION}\" event"
            )),
            other => other,
        })
        .and_then(ReplicateWork::check)
        .map(ReplicateRequest::Continued)
}

/// `ami-` or `snap-` and 8 or 17 hex digits.
pub fn is_id(kind: Kind, id: &str) -> bool {
    crate::event::is_ec2_id(
        match kind {
            Kind::Image => "ami-",
            Kind::Snapshot => "snap-",
        },
        id,
    )
}

/// The snapshot id in an EBS notification's ARN. AWS's own samples put the region in different
/// fields of that ARN (`arn:aws:ec2::us-east-1:snapshot/...`, `arn:aws:ec2:us-east-1::snapshot/...`),
/// so only the text after `snapshot/` is trusted.
pub fn snapshot_id_from_arn(arn: &str) -> Option<&str> {
    arn.split_once("snapshot/")
        .map(|(_, id)| id.trim())
        .filter(|id| is_id(Kind::Snapshot, id))
}

fn expected() -> String {
    format!(
        "expected an EventBridge \"{AMI_STATE_CHANGE}\" or \"{SNAPSHOT_NOTIFICATION}\" event from aws.ec2, a \"{}\" event from {}, a \"{SCHEDULED}\", or {{\"{IMAGE_IDS}\": [...]}} / {{\"{SNAPSHOT_IDS}\": [...]}}",
        super::notice::DETAIL_TYPE,
        super::notice::EVENT_SOURCE
    )
}

/// `detail` of an `EC2 AMI State Change`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct AmiStateDetail {
    image_id: String,
    state: String,
    error_message: String,
}

/// `detail` of an `EBS Snapshot Notification`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SnapshotNotificationDetail {
    event: String,
    result: String,
    /// An ARN, whatever the field's name says.
    snapshot_id: String,
    /// A createSnapshot's volume ARN; a shareSnapshot's sharing account.
    source: String,
}

pub fn parse_replicate_request(payload: &Value) -> Result<ReplicateRequest, Error> {
    if payload.get("detail-type").is_some() {
        let event: EventBridgeEvent<Value> =
            serde_json::from_value(payload.clone()).map_err(|e| {
                Error::Payload(format!("an EventBridge event that does not parse: {e}"))
            })?;
        return parse_event(event);
    }
    let Some(direct) = crate::event::Direct::parse(payload) else {
        return Err(Error::Payload(format!(
            "{}; got {}",
            expected(),
            truncate(payload)
        )));
    };
    let extra = direct.fields_besides(&[IMAGE_IDS, SNAPSHOT_IDS]);
    if !extra.is_empty() {
        return Err(Error::Payload(format!(
            "unknown fields {extra:?}; {}",
            expected()
        )));
    }
    if direct.image_ids.is_none() && direct.snapshot_ids.is_none() {
        return Err(Error::Payload(format!("{}; got {{}}", expected())));
    }
    let ids = |field: &str, kind: Kind| -> Result<Vec<String>, Error> {
        match direct.ids(field) {
            Some(sent) => sent.check(field, kind.as_str(), |id| is_id(kind, id)),
            None => Ok(Vec::new()),
        }
    };
    Ok(ReplicateRequest::OnDemand {
        image_ids: ids(IMAGE_IDS, Kind::Image)?,
        snapshot_ids: ids(SNAPSHOT_IDS, Kind::Snapshot)?,
    })
}

fn parse_event(event: EventBridgeEvent<Value>) -> Result<ReplicateRequest, Error> {
    let event_id = event.id.clone();
    let region = event.region.clone();
    let named_id = event_id.clone();
    let named = named_id.as_deref().unwrap_or("(no id)");
    match (event.source.as_str(), event.detail_type.as_str()) {
        ("aws.events", SCHEDULED) => Ok(ReplicateRequest::Sweep { event_id }),
        ("aws.ec2", AMI_STATE_CHANGE) => {
            let detail: AmiStateDetail = crate::event::detail(&event)?;
            let id = detail.image_id.trim().to_string();
            if !is_id(Kind::Image, &id) {
                return Err(Error::Payload(format!(
                    "{AMI_STATE_CHANGE} event {named} has no valid detail.ImageId (got {id:?})"
                )));
            }
            match detail.state.as_str() {
                "available" => Ok(ReplicateRequest::completed(
                    event_id,
                    region,
                    Kind::Image,
                    id,
                )),
                "failed" => Ok(ReplicateRequest::ImageFailed {
                    event_id,
                    region,
                    id,
                    message: detail.error_message,
                }),
                other => Ok(ReplicateRequest::Ignored {
                    event_id,
                    source: id,
                    reason: format!("the AMI is {other:?}: only available AMIs are copied"),
                }),
            }
        }
        ("aws.ec2", SNAPSHOT_NOTIFICATION) => {
            let detail: SnapshotNotificationDetail = crate::event::detail(&event)?;
            let arn = detail.snapshot_id.as_str();
            let id = snapshot_id_from_arn(arn).ok_or_else(|| {
                Error::Payload(format!(
                    "{SNAPSHOT_NOTIFICATION} event {named} has no snapshot id after \"snapshot/\" in detail.snapshot_id (got {arn:?})"
                ))
            })?;
            match (detail.event.as_str(), detail.result.as_str()) {
                // A copy done: a shareable copy at home (then shared) or a vault's copy (then
                // locked); any other copy is skipped when described.
                ("createSnapshot" | "copySnapshot", "succeeded") => Ok(
                    ReplicateRequest::completed(event_id, region, Kind::Snapshot, id.to_string()),
                ),
                ("shareSnapshot", "succeeded") => {
                    let account = detail.source.trim();
                    if !crate::config::is_account_id(account) {
                        return Err(Error::Payload(format!(
                            "{SNAPSHOT_NOTIFICATION} shareSnapshot event {named} has no sharing account in detail.source (got {account:?})"
                        )));
                    }
                    Ok(ReplicateRequest::Shared(vec![
                        super::notice::SharedNotice {
                            event_id,
                            account: account.to_string(),
                            kind: Kind::Snapshot,
                            backup: id.to_string(),
                            region,
                            claimed: None,
                        },
                    ]))
                }
                (what, result) => Ok(ReplicateRequest::Ignored {
                    event_id,
                    source: id.to_string(),
                    reason: format!(
                        "a {what} notification with result {result:?}: only a succeeded createSnapshot, copySnapshot or shareSnapshot is acted on"
                    ),
                }),
            }
        }
        (super::notice::EVENT_SOURCE, super::notice::DETAIL_TYPE) => {
            let detail: super::notice::SharedDetail = crate::event::detail(&event)?;
            let account = event.account.clone().unwrap_or_default();
            super::notice::read_detail(&account, event_id, detail)
                .map(|n| ReplicateRequest::Shared(vec![n]))
                .map_err(|why| {
                    Error::Payload(format!(
                        "{} event {named}: {why}",
                        super::notice::DETAIL_TYPE
                    ))
                })
        }
        ("aws.ec2", other) => Ok(ReplicateRequest::Ignored {
            source: event_id.clone().unwrap_or_else(|| "event".into()),
            event_id,
            reason: format!(
                "detail-type {other:?}: replicate copies on \"{AMI_STATE_CHANGE}\" and \"{SNAPSHOT_NOTIFICATION}\""
            ),
        }),
        (source, detail_type) => Err(Error::Payload(format!(
            "{} from {source:?} with detail-type {detail_type:?}",
            expected()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_continuation_waits_longer_each_time_up_to_sqs_limit() {
        let delays: Vec<u32> = (0..7).map(ReplicateWork::delay_seconds).collect();
        assert_eq!(delays, [60, 120, 240, 480, 900, 900, 900]);
    }

    #[test]
    fn a_continuation_with_a_bad_or_no_id_is_refused() {
        let work = |images: &[&str]| ReplicateWork {
            image_ids: images.iter().map(|s| s.to_string()).collect(),
            snapshot_ids: Vec::new(),
            attempt: 0,
            shared: Vec::new(),
            to_lock: Vec::new(),
        };
        assert!(work(&["ami-0123456789abcdef0"]).check().is_ok());
        let err = work(&["snap-0123456789abcdef0"]).check().unwrap_err();
        assert!(err.to_string().contains("not a valid image id"), "{err}");
        assert!(
            work(&[])
                .check()
                .unwrap_err()
                .to_string()
                .contains("no backup")
        );
    }
    use serde_json::json;

    fn ami_event(state: &str) -> Value {
        json!({"version": "0", "id": "e-1", "detail-type": "EC2 AMI State Change", "source": "aws.ec2",
               "account": "123456789012", "time": "2026-11-25T03:12:45Z", "region": "us-east-1",
               "resources": ["arn:aws:ec2:us-east-1::image/ami-0a1b2c3d4e5f67890"],
               "detail": {"RequestId": "r", "ImageId": "ami-0a1b2c3d4e5f67890", "State": state,
                          "ErrorMessage": if state == "failed" { "disk gone" } else { "" }}})
    }

    fn snapshot_event(event: &str, result: &str, arn: &str) -> Value {
        json!({"version": "0", "id": "e-2", "detail-type": "EBS Snapshot Notification", "source": "aws.ec2",
               "account": "123456789012", "time": "2026-11-25T03:15:10Z", "region": "us-east-1",
               "resources": [arn],
               "detail": {"event": event, "result": result, "cause": "", "request-id": "",
                          "snapshot_id": arn, "source": "arn:aws:ec2::us-east-1:volume/vol-0abcdef1234567890",
                          "startTime": "2026-11-25T03:12:46Z", "endTime": "2026-11-25T03:15:09Z"}})
    }

    #[test]
    fn an_available_ami_is_to_be_copied() {
        assert_eq!(
            parse_replicate_request(&ami_event("available")).unwrap(),
            ReplicateRequest::completed(
                Some("e-1".into()),
                Some("us-east-1".into()),
                Kind::Image,
                "ami-0a1b2c3d4e5f67890".into()
            )
        );
    }

    #[test]
    fn a_failed_ami_carries_its_message() {
        match parse_replicate_request(&ami_event("failed")).unwrap() {
            ReplicateRequest::ImageFailed { id, message, .. } => {
                assert_eq!(id, "ami-0a1b2c3d4e5f67890");
                assert_eq!(message, "disk gone");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn other_ami_states_are_ignored_with_a_reason() {
        match parse_replicate_request(&ami_event("deregistered")).unwrap() {
            ReplicateRequest::Ignored { reason, source, .. } => {
                assert_eq!(source, "ami-0a1b2c3d4e5f67890");
                assert!(reason.contains("deregistered"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_snapshot_id_is_read_after_snapshot_slash_in_either_arn_shape() {
        for arn in [
            "arn:aws:ec2::us-east-1:snapshot/snap-01234567890abcdef",
            "arn:aws:ec2:us-east-1::snapshot/snap-01234567890abcdef",
            "arn:aws:ec2:us-east-1:123456789012:snapshot/snap-01234567890abcdef",
        ] {
            assert_eq!(
                parse_replicate_request(&snapshot_event("createSnapshot", "succeeded", arn))
                    .unwrap(),
                ReplicateRequest::completed(
                    Some("e-2".into()),
                    Some("us-east-1".into()),
                    Kind::Snapshot,
                    "snap-01234567890abcdef".into()
                ),
                "{arn}"
            );
        }
    }

    #[test]
    fn other_snapshot_events_and_results_are_ignored_with_a_reason() {
        let arn = "arn:aws:ec2::us-east-1:snapshot/snap-01234567890abcdef";
        for (event, result) in [
            ("createSnapshot", "failed"),
            ("copySnapshot", "failed"),
            ("shareSnapshot", "failed"),
        ] {
            match parse_replicate_request(&snapshot_event(event, result, arn)).unwrap() {
                ReplicateRequest::Ignored { reason, .. } => {
                    assert!(
                        reason.contains(event) && reason.contains(result),
                        "{reason}"
                    )
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_backup_shared_event_and_a_share_snapshot_notification_are_shares() {
        let sample: Value =
            serde_json::from_str(include_str!("../../../events/backup-shared.json")).unwrap();
        let ReplicateRequest::Shared(notices) = parse_replicate_request(&sample).unwrap() else {
            panic!()
        };
        assert_eq!(notices[0].account, "111122223333");
        assert_eq!(notices[0].backup, "ami-0a1b2c3d4e5f60718");
        let claimed = notices[0].claimed.as_ref().unwrap();
        assert_eq!(claimed.source, "i-0123456789abcdef0");
        let sample: Value =
            serde_json::from_str(include_str!("../../../events/ebs-snapshot-share.json")).unwrap();
        let ReplicateRequest::Shared(notices) = parse_replicate_request(&sample).unwrap() else {
            panic!()
        };
        // The sharing account is detail.source; the envelope is the receiving account's.
        assert_eq!(notices[0].account, "111122223333");
        assert_eq!(notices[0].kind, Kind::Snapshot);
        assert!(notices[0].claimed.is_none());
    }

    #[test]
    fn a_bad_share_names_the_field() {
        let mut sample: Value =
            serde_json::from_str(include_str!("../../../events/backup-shared.json")).unwrap();
        sample["detail"]["kind"] = "volume".into();
        let e = parse_replicate_request(&sample).unwrap_err().to_string();
        assert!(
            e.contains("Backup Shared") && e.contains("detail.kind"),
            "{e}"
        );
        let mut sample: Value =
            serde_json::from_str(include_str!("../../../events/ebs-snapshot-share.json")).unwrap();
        sample["detail"]["source"] = "someone".into();
        let e = parse_replicate_request(&sample).unwrap_err().to_string();
        assert!(e.contains("detail.source"), "{e}");
    }

    #[test]
    fn schedule_and_on_demand() {
        let s = json!({"version": "0", "id": "e-3", "detail-type": "Scheduled Event", "source": "aws.events",
                       "account": "1", "time": "2026-11-25T03:00:00Z", "region": "us-east-1",
                       "resources": [], "detail": {}});
        assert_eq!(
            parse_replicate_request(&s).unwrap(),
            ReplicateRequest::Sweep {
                event_id: Some("e-3".into())
            }
        );
        assert_eq!(
            parse_replicate_request(&json!({"image_ids": ["ami-12345678", "ami-12345678"]}))
                .unwrap(),
            ReplicateRequest::OnDemand {
                image_ids: vec!["ami-12345678".into()],
                snapshot_ids: vec![]
            }
        );
        assert_eq!(
            parse_replicate_request(&json!({"snapshot_ids": ["snap-0123456789abcdef0"]})).unwrap(),
            ReplicateRequest::OnDemand {
                image_ids: vec![],
                snapshot_ids: vec!["snap-0123456789abcdef0".into()]
            }
        );
    }

    #[test]
    fn malformed_payloads_say_what_was_expected() {
        let cases = [
            (json!({}), "expected an EventBridge"),
            (json!(null), "expected an EventBridge"),
            (json!([1]), "expected an EventBridge"),
            (json!({"image_ids": []}), "image_ids is empty"),
            (json!({"image_ids": "ami-12345678"}), "must be a list"),
            (
                json!({"image_ids": ["snap-12345678"]}),
                "not a valid image id",
            ),
            (
                json!({"snapshot_ids": ["ami-12345678"]}),
                "not a valid snapshot id",
            ),
            (json!({"instance_ids": ["i-12345678"]}), "unknown fields"),
            (
                json!({"detail-type": "Tag Change on Resource", "source": "aws.tag", "detail": {}}),
                "detail-type \"Tag Change on Resource\"",
            ),
            (
                json!({"detail-type": "EC2 AMI State Change"}),
                "does not parse",
            ),
            (
                json!({"detail-type": "EC2 AMI State Change", "source": "aws.ec2", "detail": {"State": "available"}}),
                "no valid detail.ImageId",
            ),
            (
                json!({"detail-type": "EBS Snapshot Notification", "source": "aws.ec2",
                       "detail": {"event": "createSnapshot", "result": "succeeded", "snapshot_id": "snap-1"}}),
                "after \"snapshot/\"",
            ),
        ];
        for (payload, want) in cases {
            let err = parse_replicate_request(&payload).unwrap_err();
            assert!(matches!(err, Error::Payload(_)), "{payload}: {err}");
            let err = err.to_string();
            assert!(err.contains(want), "{payload}: {err}");
        }
    }

    #[test]
    fn other_ec2_detail_types_are_ignored() {
        let e = json!({"version": "0", "id": "e-4", "detail-type": "EBS Multi-Volume Snapshots Completion Status",
                       "source": "aws.ec2", "account": "1", "time": "2026-11-25T03:00:00Z",
                       "region": "us-east-1", "resources": [], "detail": {}});
        assert!(matches!(
            parse_replicate_request(&e).unwrap(),
            ReplicateRequest::Ignored { .. }
        ));
    }
}
