//! create-image and create-snapshot: what they are asked ([`request`]), which resources they
//! back up and why not the others ([`plan`]), and the calls they make ([`job`]).

pub mod job;
pub mod plan;
pub mod request;

pub use job::{ImageRequest, Job, Made, SnapshotRequest, Trigger};
pub use plan::{Inputs, Plan};
pub use request::{CreateRequest, CreateWork, Origin, ResourceKind, parse_create_request};
