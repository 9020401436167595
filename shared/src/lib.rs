//! The shared crate of the ec2-backup functions.
//!
//! Layout:
//! - `config`: the environment, parsed once at cold start; `region`, `duration`: its value types.
//! - `tags`: the tag contract (opt-in, per-resource policy, the tags every backup carries).
//! - `due`, `naming`: pure decisions (is a resource due, what a backup is called).
//! - `event`: the payloads each function accepts, parsed into our own enums.
//! - `ec2`: the adapter, the only code that touches the SDK's builders.
//! - `create`: the create-image / create-snapshot pipeline (plan, then execute).
//! - `expire`: the expire function's rules (pure plan), its EC2 calls and its crash-safe deletions.
//! - `replicate`: the cross-region copy of backups to DR regions (event, plan, adapter).
//! - `report`, `error`: what every invocation returns.
//! - `lambda`: the wiring every function's `main` shares.

pub mod backup;
pub mod clients;
pub mod config;
pub mod create;
pub mod due;
pub mod duration;
pub mod ec2;
pub mod error;
pub mod event;
pub mod expire;
pub mod lambda;
pub mod naming;
pub mod permissions;
pub mod region;
pub mod replicate;
pub mod report;
pub mod restore;
pub mod source;
pub mod status;
pub mod tags;

pub use config::Config;
pub use error::Error;
pub use region::Region;
