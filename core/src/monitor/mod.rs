//! monitor's payloads ([`request`]) and figures: the pure summary of where the deployment
//! stands ([`summary`]).

pub mod request;
pub mod summary;
