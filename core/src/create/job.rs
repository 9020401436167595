//! The calls a create run makes: a new AMI or a new snapshot, and what started them.

use crate::tags::Tags;

/// A new AMI: what CreateImage is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRequest {
    pub instance_id: String,
    pub name: String,
    pub description: String,
    pub reboot: bool,
    pub tags: Tags,
}

/// A new snapshot: what CreateSnapshot is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRequest {
    pub volume_id: String,
    pub description: String,
    pub tags: Tags,
}

/// Whether the interval applies: a person asking for a backup gets one now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger<'a> {
    Schedule,
    TagChange,
    /// On demand, with the id of the request: Lambda retries an asynchronous invocation with the
    /// same request id, and a retry finds the backups its first attempt made by it.
    OnDemand {
        request_id: &'a str,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    Image(ImageRequest),
    Snapshot(SnapshotRequest),
}

impl Job {
    /// The resource it backs up.
    pub fn source(&self) -> &str {
        match self {
            Job::Image(r) => &r.instance_id,
            Job::Snapshot(r) => &r.volume_id,
        }
    }
    /// The AMI name, or the snapshot's description.
    pub fn name(&self) -> &str {
        match self {
            Job::Image(r) => &r.name,
            Job::Snapshot(r) => &r.description,
        }
    }
}
