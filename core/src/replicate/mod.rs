//! The rules of replicate: its payloads ([`event`]), what is copied where ([`plan`]), and its
//! report.

pub mod event;
pub mod plan;
pub mod report;

/// The function's name: its continuations' `function`, its metrics' `Function`.
pub const FUNCTION: &str = "replicate";
