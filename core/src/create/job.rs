//! The calls a create run makes: a new AMI or a new snapshot, and what started them.

use crate::codes;
use crate::error::Error;
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

impl Trigger<'_> {
    /// On demand, the request's id.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Trigger::OnDemand { request_id } => Some(request_id),
            _ => None,
        }
    }
}

/// What became of one create call, classified once: the report and the log line both read it.
#[derive(Debug, Clone)]
pub enum Made {
    /// The new AMI's or snapshot's id.
    Created(String),
    /// Not started: the invocation's deadline was too near (handed on, or the next schedule's).
    NotStarted,
    /// Another call for the same backup got there first; why it is no failure.
    AlreadyMade(String),
    Failed(Error),
}

impl Made {
    /// The outcome of `job`'s call. An AMI name holds the minute, and on demand the request:
    /// a name taken means another invocation for the same event, or for the same request (a
    /// retry), made it.
    pub fn of(job: &Job, result: Result<String, Error>, request_id: Option<&str>) -> Self {
        match result {
            Ok(id) => Made::Created(id),
            Err(Error::Deadline { .. }) => Made::NotStarted,
            Err(e) if e.code() == Some(codes::AMI_NAME_DUPLICATE) => {
                let by = match request_id {
                    Some(request_id) => format!("this request ({request_id}) already made it"),
                    None => "a backup of it was made this minute".to_string(),
                };
                Made::AlreadyMade(format!(
                    "an AMI named {:?} already exists: {by}",
                    job.name()
                ))
            }
            Err(e) => Made::Failed(e),
        }
    }
}
