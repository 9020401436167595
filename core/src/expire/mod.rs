//! The rules of expire: what expires, keep-last, the regions swept.

pub mod plan;
