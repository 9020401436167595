//! The rules of replicate: its payloads ([`event`]) and what is copied where ([`plan`]); its
//! report is [`crate::report::ReplicateReport`].

pub mod event;
pub mod notice;
pub mod plan;

/// The function's name: its continuations' `function`, its metrics' `Function`.
pub const FUNCTION: &str = "replicate";
