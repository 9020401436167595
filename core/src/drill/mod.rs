//! drill: proves the backups restorable. On a schedule it restores the newest usable backup of
//! each protected resource in each of its drill regions into a throwaway instance or volume,
//! judges it, deletes it, and keeps the evidence (RPO and RTO per resource).
//!
//! - `settings`: its own variables (`EVIDENCE_BUCKET`, `DRILL_*`);
//! - `request`: its payloads and its continuation;
//! - `plan`: what is drilled where, from which backup, and what is not proven in time;
//! - `record`: a restore in progress, how it is judged, and the record an auditor reads.

pub mod plan;
pub mod record;
pub mod request;
pub mod settings;
