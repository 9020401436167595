//! The rules of replicate: what is copied where, and its report.

pub mod plan;
pub mod report;
