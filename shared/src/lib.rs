//! The adapters and the functions' runs of the ec2-backup toolkit, on top of the pure core
//! ([`backup_core`], re-exported here module by module so that `shared::tags` and
//! `crate::tags` name the same thing).
//!
//! Layout (docs/architecture.md tells the whole story):
//! - `ec2`, `sqs`, `s3`, `events`, `sts`, `kms`: the adapters, the only code that calls the SDKs
//!   (`aws`: their errors as ours; `kms` serves only the CLI's `check-dr`);
//!   `clients`: one `Ec2` per region; `pacing`: the pacer every EC2 call waits on, and the
//!   invocation's deadline it keeps to.
//! - `lambda`, `invocation`, `metrics`, `continuation`: the Lambda plumbing (the SDK's
//!   configuration, the invocation pipeline, the SQS records, the hand-on, the metrics lines).
//! - `create`, `replicate`, `expire`, `monitor`, `drill`, `status`: each function's run, on top
//!   of the core's plans.
//! - `permissions`: what each function may call (`shared/permissions.json`).

pub use backup_core::{
    backup, codes, config, dr, due, duration, error, event, naming, queue, region, report, restore,
    source, tags,
};

pub mod aws;
pub mod clients;
pub mod continuation;
pub mod create;
pub mod drill;
pub mod ec2;
pub mod events;
pub mod expire;
pub mod invocation;
pub mod kms;
pub mod lambda;
pub mod metrics;
pub mod monitor;
pub mod pacing;
pub mod permissions;
pub mod replicate;
pub mod s3;
pub mod sqs;
pub mod status;
pub mod sts;

pub use config::Config;
pub use error::Error;
pub use region::Region;
