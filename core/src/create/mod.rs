//! create-image and create-snapshot: what they are asked ([`request`]) and the calls they make
//! ([`job`]).

pub mod job;
pub mod request;

pub use job::{ImageRequest, Job, SnapshotRequest, Trigger};
pub use request::{CreateRequest, CreateWork, Origin, ResourceKind, parse_create_request};
