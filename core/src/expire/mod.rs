//! The rules of expire: its payloads ([`request`]), what expires, keep-last and the regions
//! swept ([`plan`]).

pub mod plan;
pub mod request;
