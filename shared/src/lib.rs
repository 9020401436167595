//! The shared crate of the ec2-backup functions.
//!
//! Layout (docs/architecture.md tells the whole story):
//! - `config`: the environment, parsed once at cold start; `region`, `duration`: its value types.
//! - `tags`: the tag contract (opt-in, per-resource policy, copy-to, the tags every backup
//!   carries and the 50-tag cut).
//! - `backup`: the one model of a backup (typed state, the created-at rule) and its query;
//!   `source`: what is backed up; `restore`: what a restore makes.
//! - `due`, `naming`, `status`: pure decisions (is a resource due, what a backup is called,
//!   where each resource's RPO stands).
//! - `event`: the payloads of the create functions, parsed into our own enums.
//! - `ec2`: the adapter, the only code that knows the SDK.
//! - `create`: the create-image / create-snapshot pipeline (plan, then execute).
//! - `replicate`: the copies to DR regions (payloads, pure plan, named steps).
//! - `expire`: the deletions (pure plan, crash-safe execution).
//! - `monitor`: where the deployment stands (pure summary over `status`'s gathering, metrics).
//! - `report`, `error`: what every invocation returns.
//! - `continuation`, `sqs`: work handed on through each function's SQS work queue (the
//!   envelope, the SQS event's records, the one SQS adapter).
//! - `clients`, `lambda`: the regional adapters and the wiring every `main` shares.

pub mod backup;
pub mod clients;
pub mod config;
pub mod continuation;
pub mod create;
pub mod due;
pub mod duration;
pub mod ec2;
pub mod error;
pub mod event;
pub mod expire;
pub mod lambda;
pub mod metrics;
pub mod monitor;
pub mod naming;
pub mod pacing;
pub mod permissions;
pub mod region;
pub mod replicate;
pub mod report;
pub mod restore;
pub mod source;
pub mod sqs;
pub mod status;
pub mod tags;

pub use config::Config;
pub use error::Error;
pub use region::Region;
