//! The one model of a backup: an AMI or an EBS snapshot of this toolkit, an original or a DR
//! copy, as the adapter describes it. Every function and the CLI read backups through this type
//! and [`BackupQuery`]; the rules on what a backup's tags and state mean live here, once.

use crate::config::parse_bool;
use crate::region::Region;
use crate::tags::{Kind, TagKeys, Tags, key, parse_time};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::fmt;

/// A backup's state as EC2 reports it: images are `pending`, `available`, `failed`,
/// `disabled`, ...; snapshots are `pending`, `completed`, `error`, ...
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum State {
    Pending,
    /// An image ready to use.
    Available,
    /// A snapshot ready to use.
    Completed,
    /// An image that will never be usable.
    Failed,
    /// A snapshot that will never be usable.
    Error,
    /// A disabled image: not usable, but its snapshots are still its own.
    Disabled,
    /// Anything else EC2 says (`deregistered`, `invalid`, `transient`, `recoverable`, ...), or
    /// nothing at all (an empty string).
    Other(String),
}

impl State {
    pub fn parse(text: &str) -> Self {
        match text {
            "pending" => State::Pending,
            "available" => State::Available,
            "completed" => State::Completed,
            "failed" => State::Failed,
            "error" => State::Error,
            "disabled" => State::Disabled,
            other => State::Other(other.to_string()),
        }
    }

    /// The ready state of a kind: what a describe filters on to find usable backups.
    pub fn ready(kind: Kind) -> Self {
        match kind {
            Kind::Image => State::Available,
            Kind::Snapshot => State::Completed,
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            State::Pending => "pending",
            State::Available => "available",
            State::Completed => "completed",
            State::Failed => "failed",
            State::Error => "error",
            State::Disabled => "disabled",
            State::Other(s) => s,
        }
    }

    /// Ready to restore from or to copy.
    pub fn is_usable(&self) -> bool {
        matches!(self, State::Available | State::Completed)
    }

    /// There or on its way: counts for the interval and as a copy.
    pub fn is_live(&self) -> bool {
        self.is_usable() || self.is_pending()
    }

    pub fn is_pending(&self) -> bool {
        matches!(self, State::Pending)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for State {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl From<&str> for State {
    fn from(text: &str) -> Self {
        State::parse(text)
    }
}

impl PartialEq<&str> for State {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// When a backup was made: its `P:created-at` tag, unless AWS's own record is earlier. A tag
/// edited into the future must neither stop backups until that date nor move a copy's expiry.
pub fn created_at(
    tagged: Option<DateTime<Utc>>,
    recorded: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    match (tagged, recorded) {
        (Some(t), Some(r)) => Some(t.min(r)),
        (t, r) => t.or(r),
    }
}

/// Whether a `P:hold` value holds: anything that is not clearly false does (when in doubt,
/// keep).
pub fn holds(value: &str) -> bool {
    parse_bool(value) != Some(false)
}

/// One backup: what EC2 says of it, and what its tags say, read once by the contract's rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Backup {
    pub id: String,
    /// Which resource it is: an AMI or a snapshot (an AMI's own snapshots are snapshots here;
    /// their `P:kind` tag says `image`).
    pub kind: Kind,
    pub region: Region,
    pub state: State,
    /// The AMI's name; `None` for snapshots.
    #[serde(skip)]
    pub name: Option<String>,
    #[serde(skip)]
    pub description: Option<String>,
    /// EC2's own creation (start) time.
    #[serde(skip)]
    pub recorded_at: Option<DateTime<Utc>>,
    /// Any of its EBS data is encrypted.
    #[serde(skip)]
    pub encrypted: bool,
    /// For images: the snapshots behind it.
    pub snapshot_ids: Vec<String>,
    /// For images: the device names of its EBS volumes (a drill's launch deletes each with the
    /// instance).
    #[serde(skip)]
    pub ebs_devices: Vec<String>,
    /// For snapshots: size in GiB.
    pub size_gib: Option<i32>,
    /// `P:managed-by`: the deployment that made it.
    #[serde(skip)]
    pub managed_by: Option<String>,
    /// `P:kind`: `image` on an AMI and on an AMI's snapshots, `snapshot` on a standalone one.
    #[serde(skip)]
    pub tagged_kind: Option<String>,
    pub source: Option<String>,
    pub source_region: Option<String>,
    /// The one created-at rule: [`created_at`].
    pub created_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub hold: bool,
    pub copy_of: Option<String>,
    /// `P:share-of`: a shareable copy (re-encrypted with the share key) of this original.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share_of: Option<String>,
    /// `P:shared-with`: the DR account it was shared with.
    #[serde(skip)]
    pub shared_with: Option<String>,
    /// `P:source-account`: on a vault's copy, the account whose backup it copies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_account: Option<String>,
    /// The account that owns it (another account's, when it is shared with this one).
    #[serde(skip)]
    pub owner: Option<String>,
    /// The KMS keys of its encrypted EBS data, as EC2 names them (key ARNs), each once.
    #[serde(skip)]
    pub kms_key_ids: Vec<String>,
    /// An AMI with deregistration protection on.
    #[serde(skip)]
    pub protected: bool,
    /// `P:request-id`: the on-demand request that made it.
    #[serde(skip)]
    pub request_id: Option<String>,
    /// Its last drill (`P:drilled-at`, `P:drill-result`, `P:restore-seconds`), when it was
    /// drilled and the tags read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drill: Option<DrillMark>,
    #[serde(skip)]
    pub tags: Tags,
}

/// How a drill of a backup ended (`P:drill-result`, and a drill record's `result`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DrillResult {
    Passed,
    Failed,
    TimedOut,
}

impl DrillResult {
    pub fn as_str(self) -> &'static str {
        match self {
            DrillResult::Passed => "passed",
            DrillResult::Failed => "failed",
            DrillResult::TimedOut => "timed-out",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "passed" => Some(DrillResult::Passed),
            "failed" => Some(DrillResult::Failed),
            "timed-out" => Some(DrillResult::TimedOut),
            _ => None,
        }
    }
}

impl fmt::Display for DrillResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A backup's last drill, as its tags record it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DrillMark {
    pub at: DateTime<Utc>,
    pub result: DrillResult,
    /// On a pass: seconds from the restore call to the check that saw it ready.
    pub restore_seconds: Option<u64>,
}

impl DrillMark {
    /// The mark `tags` carry: both `P:drilled-at` and `P:drill-result` readable, else none.
    pub fn read(keys: &TagKeys, tags: &[(String, String)]) -> Option<Self> {
        let at = keys.get(tags, key::DRILLED_AT).and_then(parse_time)?;
        let result = keys
            .get(tags, key::DRILL_RESULT)
            .and_then(DrillResult::parse)?;
        // A pass's figure stays on the backup when a later drill of it does not pass.
        let restore_seconds = keys
            .get(tags, key::RESTORE_SECONDS)
            .and_then(|v| v.trim().parse().ok())
            .filter(|_| result == DrillResult::Passed);
        Some(Self {
            at,
            result,
            restore_seconds,
        })
    }

    /// The tags that record it on the backup.
    pub fn tags(&self, keys: &TagKeys) -> Tags {
        let mut tags = vec![
            (keys.key(key::DRILLED_AT), crate::tags::format_time(self.at)),
            (
                keys.key(key::DRILL_RESULT),
                self.result.as_str().to_string(),
            ),
        ];
        if let Some(s) = self.restore_seconds {
            tags.push((keys.key(key::RESTORE_SECONDS), s.to_string()));
        }
        tags
    }
}

/// What EC2 says of a backup, before its tags are read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Described {
    pub id: String,
    pub state: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub recorded_at: Option<DateTime<Utc>>,
    pub encrypted: bool,
    pub snapshot_ids: Vec<String>,
    pub ebs_devices: Vec<String>,
    pub size_gib: Option<i32>,
    pub owner: Option<String>,
    pub kms_key_ids: Vec<String>,
    pub protected: bool,
    pub tags: Tags,
}

impl Backup {
    /// Reads the tags of a described image or snapshot by the contract.
    pub fn new(keys: &TagKeys, kind: Kind, region: &Region, d: Described) -> Self {
        let get = |name: &str| keys.get(&d.tags, name).map(str::to_string);
        Self {
            kind,
            region: region.clone(),
            state: State::parse(&d.state),
            managed_by: get(key::MANAGED_BY),
            tagged_kind: get(key::KIND),
            source: get(key::SOURCE),
            source_region: get(key::SOURCE_REGION),
            created_at: created_at(
                get(key::CREATED_AT).as_deref().and_then(parse_time),
                d.recorded_at,
            ),
            expires_at: get(key::EXPIRES_AT).as_deref().and_then(parse_time),
            hold: get(key::HOLD).is_some_and(|v| holds(&v)),
            copy_of: get(key::COPY_OF).filter(|v| !v.is_empty()),
            share_of: get(key::SHARE_OF).filter(|v| !v.is_empty()),
            shared_with: get(key::SHARED_WITH).filter(|v| !v.is_empty()),
            source_account: get(key::SOURCE_ACCOUNT).filter(|v| !v.is_empty()),
            owner: d.owner,
            kms_key_ids: d.kms_key_ids,
            protected: d.protected,
            request_id: get(key::REQUEST_ID).filter(|v| !v.is_empty()),
            drill: DrillMark::read(keys, &d.tags),
            id: d.id,
            name: d.name,
            description: d.description,
            recorded_at: d.recorded_at,
            encrypted: d.encrypted,
            snapshot_ids: d.snapshot_ids,
            ebs_devices: d.ebs_devices,
            size_gib: d.size_gib,
            tags: d.tags,
        }
    }

    /// Drops what only a whole-region rule never reads: the name, the description, and every
    /// tag but [`LEAN_TAGS`] (the others are read into the fields already).
    pub fn make_lean(&mut self, keys: &TagKeys) {
        self.name = None;
        self.description = None;
        self.tags
            .retain(|(k, _)| LEAN_TAGS.iter().any(|name| keys.is_key(k, name)));
        self.tags.shrink_to_fit();
    }

    pub fn is_usable(&self) -> bool {
        self.state.is_usable()
    }

    pub fn is_live(&self) -> bool {
        self.state.is_live()
    }

    /// Made by this toolkit in its home region (not a DR copy, nor a shareable copy).
    pub fn is_original(&self) -> bool {
        self.copy_of.is_none() && self.share_of.is_none()
    }

    /// A backup in its own right: an AMI, or a standalone snapshot (not an AMI's snapshot).
    pub fn is_standalone(&self) -> bool {
        self.tagged_kind.as_deref() == Some(self.kind.as_str())
    }

    /// Whether [`BackupQuery::managed`] lists it, of what [`BackupQuery::everything`] listed
    /// (same deployment): a backup in its own right, and no disabled AMI (EC2 lists those only
    /// when asked). So one listing of everything serves both.
    pub fn is_managed_backup(&self) -> bool {
        self.is_standalone() && self.state != State::Disabled
    }
}

/// Which copies a listing returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Copies {
    /// Originals and copies alike.
    #[default]
    Any,
    /// Originals only (no `P:copy-of`; read from the tags, EC2 cannot filter on a missing tag).
    None,
    /// Every copy (`P:copy-of` set).
    All,
    /// Copies of these originals.
    Of(Vec<String>),
    /// The shareable copies (`P:share-of`) of these originals.
    ShareOf(Vec<String>),
}

/// The tags a lean listing keeps as written: those whose value can be unreadable and is then
/// warned of (`P:hold`, `P:expires-at`), and those no field holds as written (`P:copy-of`,
/// `P:copy-to`).
pub const LEAN_TAGS: [&str; 4] = [key::HOLD, key::EXPIRES_AT, key::COPY_OF, key::COPY_TO];

/// The one listing query of backups: every caller says what it needs, the adapter turns it into
/// filters, pages and chunks of ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupQuery {
    /// DescribeImages or DescribeSnapshots.
    pub kind: Kind,
    /// `P:managed-by`; `None` for any owner's (our account's) resources of that kind.
    pub managed_by: Option<String>,
    /// Only those whose `P:kind` is `kind` (for snapshots: standalone ones, not an AMI's).
    pub kind_tag: bool,
    /// Only these ids; `None`: any id. An empty list asks for nothing, and no call is made
    /// (as `sources`), so a caller that filtered its ids down to none never lists the account.
    pub ids: Option<Vec<String>>,
    /// Only the backups of these sources (`P:source`); `None`: any source's. An empty list
    /// asks for nothing, and no call is made (as `Copies::Of` an empty list).
    pub sources: Option<Vec<String>>,
    pub copies: Copies,
    /// Only these states (empty: any).
    pub states: Vec<State>,
    /// Disabled AMIs too (they still hold their snapshots).
    pub include_disabled: bool,
    /// Only what expire's rules read: of the tags only [`LEAN_TAGS`] (the rest is in the
    /// fields), no name or description. A region's listing then takes about half the memory.
    pub lean: bool,
}

impl BackupQuery {
    /// The backups of `kind` of this deployment, in any state: originals and copies.
    pub fn managed(kind: Kind, deployment: &str) -> Self {
        Self {
            kind,
            managed_by: Some(deployment.to_string()),
            kind_tag: true,
            ids: None,
            sources: None,
            copies: Copies::Any,
            states: Vec::new(),
            include_disabled: false,
            lean: false,
        }
    }

    /// Every image or snapshot of this deployment, an AMI's snapshots and disabled AMIs too.
    pub fn everything(kind: Kind, deployment: &str) -> Self {
        Self {
            kind_tag: false,
            include_disabled: true,
            ..Self::managed(kind, deployment)
        }
    }

    /// The named images or snapshots of this account, whoever made them.
    pub fn by_id(kind: Kind, ids: &[String]) -> Self {
        Self {
            kind,
            managed_by: None,
            kind_tag: false,
            ids: Some(ids.to_vec()),
            sources: None,
            copies: Copies::Any,
            states: Vec::new(),
            include_disabled: false,
            lean: false,
        }
    }

    /// Only the backups of these instances or volumes.
    pub fn of_sources(mut self, sources: &[String]) -> Self {
        self.sources = Some(sources.to_vec());
        self
    }

    pub fn lean(mut self) -> Self {
        self.lean = true;
        self
    }

    pub fn copies(mut self, copies: Copies) -> Self {
        self.copies = copies;
        self
    }

    pub fn in_states(mut self, states: impl IntoIterator<Item = State>) -> Self {
        self.states = states.into_iter().collect();
        self
    }

    /// Whether a described backup answers the parts of the query EC2 cannot filter on.
    pub fn keeps(&self, backup: &Backup) -> bool {
        match &self.copies {
            Copies::None => backup.is_original(),
            Copies::All | Copies::Of(_) => backup.copy_of.is_some(),
            Copies::ShareOf(_) => backup.share_of.is_some(),
            Copies::Any => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tagged(pairs: &[(&str, &str)]) -> Described {
        Described {
            id: "ami-1".into(),
            state: "available".into(),
            tags: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Described::default()
        }
    }

    fn region() -> Region {
        Region::parse("us-east-1").unwrap()
    }

    #[test]
    fn created_at_is_the_earlier_of_the_tag_and_ec2s_record() {
        let keys = TagKeys::new("backup");
        let mut d = tagged(&[("backup:created-at", "2030-01-01T00:00:00Z")]);
        d.recorded_at = parse_time("2026-11-25T03:00:00Z");
        let b = Backup::new(&keys, Kind::Image, &region(), d.clone());
        assert_eq!(b.created_at, parse_time("2026-11-25T03:00:00Z"));
        d.tags[0].1 = "2026-11-20T00:00:00Z".into();
        let b = Backup::new(&keys, Kind::Image, &region(), d.clone());
        assert_eq!(b.created_at, parse_time("2026-11-20T00:00:00Z"));
        d.recorded_at = None;
        d.tags[0].1 = "not a time".into();
        assert_eq!(
            Backup::new(&keys, Kind::Image, &region(), d).created_at,
            None
        );
    }

    #[test]
    fn states_say_what_is_live_and_usable() {
        for (s, live, usable) in [
            ("pending", true, false),
            ("available", true, true),
            ("completed", true, true),
            ("failed", false, false),
            ("error", false, false),
            ("disabled", false, false),
            ("deregistered", false, false),
            ("", false, false),
        ] {
            let state = State::parse(s);
            assert_eq!(state.as_str(), s);
            assert_eq!((state.is_live(), state.is_usable()), (live, usable), "{s}");
        }
    }

    #[test]
    fn tags_are_read_in_any_case_and_hold_when_not_clearly_false() {
        let keys = TagKeys::new("backup");
        let b = Backup::new(
            &keys,
            Kind::Snapshot,
            &region(),
            tagged(&[
                ("Backup:Managed-By", "ec2-backup"),
                ("backup:kind", "image"),
                ("backup:hold", "maybe"),
                ("backup:copy-of", ""),
                ("backup:request-id", "req-1"),
            ]),
        );
        assert_eq!(b.managed_by.as_deref(), Some("ec2-backup"));
        assert!(b.hold);
        assert!(b.is_original(), "an empty copy-of is no copy");
        assert!(!b.is_standalone(), "an AMI's snapshot");
        assert_eq!(b.request_id.as_deref(), Some("req-1"));
    }

    #[test]
    fn a_lean_backup_keeps_its_fields_and_only_the_tags_read_as_written() {
        let keys = TagKeys::new("backup");
        let mut d = tagged(&[
            ("backup:managed-by", "d"),
            ("backup:source", "i-1"),
            ("BACKUP:Hold", "maybe"),
            ("backup:expires-at", "2026-12-01T00:00:00Z"),
            ("backup:copy-to", "us-west-2"),
            ("backup:copy-of", "ami-0"),
            ("backup:hold-x", "x"),
            ("Name", "web"),
            ("team", "sre"),
        ]);
        d.name = Some("web-i-1".into());
        d.description = Some("a backup".into());
        let full = Backup::new(&keys, Kind::Image, &Region::parse("us-east-1").unwrap(), d);
        let mut lean = full.clone();
        lean.make_lean(&keys);
        let kept: Vec<&str> = lean.tags.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            kept,
            [
                "BACKUP:Hold",
                "backup:expires-at",
                "backup:copy-to",
                "backup:copy-of"
            ]
        );
        assert_eq!(
            (lean.name.as_deref(), lean.description.as_deref()),
            (None, None)
        );
        assert_eq!(lean.managed_by.as_deref(), Some("d"));
        assert_eq!(lean.source.as_deref(), Some("i-1"));
        assert_eq!(
            Backup {
                tags: full.tags.clone(),
                name: full.name.clone(),
                description: full.description.clone(),
                ..lean
            },
            full,
            "every field is as before"
        );
    }

    #[test]
    fn the_query_keeps_what_ec2_cannot_filter() {
        let keys = TagKeys::new("backup");
        let original = Backup::new(&keys, Kind::Image, &region(), tagged(&[]));
        let copy = Backup::new(
            &keys,
            Kind::Image,
            &region(),
            tagged(&[("backup:copy-of", "ami-0")]),
        );
        let q = BackupQuery::managed(Kind::Image, "d");
        assert!(q.keeps(&original) && q.keeps(&copy));
        let q = q.copies(Copies::None);
        assert!(q.keeps(&original) && !q.keeps(&copy));
        let q = q.copies(Copies::All);
        assert!(!q.keeps(&original) && q.keeps(&copy));
    }
}
