//! What is backed up: an instance or a volume, as the adapter describes it.

use crate::tags::Tags;

/// An instance or a volume that may be backed up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub id: String,
    /// `running`, `stopped`, ... for instances; `in-use`, `available`, ... for volumes.
    pub state: String,
    pub tags: Tags,
    /// The instance a volume is attached to.
    pub attached_to: Option<String>,
}

impl Source {
    pub fn name(&self) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == "Name")
            .map(|(_, v)| v.as_str())
    }
}
