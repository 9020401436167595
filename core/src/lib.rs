//! The pure core of the ec2-backup functions: what a backup is, the tag contract, every plan
//! and rule, and the report types. No AWS SDK, no tokio and no clock: every decision takes the
//! time it needs as an argument, so each is unit-tested in milliseconds.
//!
//! Layout (docs/architecture.md tells the whole story), from the bottom:
//! - `duration`, `region`, `queue`: value types (a duration, a region name, a work queue's URL).
//! - `pacing`: EC2's throttling buckets, our share of them and the invocation's deadline.
//! - `config`: the environment, parsed once at cold start.
//! - `error`: the one error type, which keeps the AWS error code; `codes`: the AWS error codes
//!   we branch on, named once, with the set each decision reads.
//! - `tags`: the tag contract (opt-in, per-resource policy, copy-to, the tags every backup
//!   carries and the 50-tag cut).
//! - `backup`: the one model of a backup (typed state, the created-at rule) and its query;
//!   `lock`: snapshot locks (a vault's), which expire never deletes through;
//!   `source`: what is backed up; `restore`: what a restore makes.
//! - `due`, `naming`: is a resource due, what a backup is called.
//! - `continuation`: the format of the work a function hands on to its work queue.
//! - `event`: what the payloads share (EventBridge events, a direct invocation's ids).
//! - `metrics`, `report`: the metric names and documents; what every invocation returns.
//! - `status`: where each resource's RPO stands (the on-call view) and which backup a restore
//!   uses.
//! - `create`, `replicate`, `expire`, `monitor`, `drill`: each function's requests, plan and
//!   rules; `dr`: sharing with an isolated DR account, and that account's vault.

pub mod backup;
pub mod codes;
pub mod config;
pub mod continuation;
pub mod create;
pub mod dr;
pub mod drill;
pub mod due;
pub mod duration;
pub mod error;
pub mod event;
pub mod expire;
pub mod lock;
pub mod metrics;
pub mod monitor;
pub mod naming;
pub mod pacing;
pub mod queue;
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
