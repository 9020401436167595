//! monitor's figures: the pure summary of where the deployment stands.

pub mod summary;
