//! What is backed up: an instance or a volume, as the adapter describes it.

use crate::tags::Tags;

/// An instance or a volume that may be backed up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub id: String,
    pub state: SourceState,
    pub tags: Tags,
    /// The instance a volume is attached to.
    pub attached_to: Option<String>,
    /// An instance's type (`m5.large`): what a drill of it launches.
    pub instance_type: Option<String>,
}

impl Source {
    pub fn name(&self) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == "Name")
            .map(|(_, v)| v.as_str())
    }
}

/// An instance's or a volume's state as EC2 reports it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SourceState {
    /// An instance starting.
    Pending,
    Running,
    Stopping,
    Stopped,
    ShuttingDown,
    Terminated,
    /// A volume being made.
    Creating,
    /// A volume attached to no instance.
    Available,
    /// A volume attached to an instance.
    InUse,
    Deleting,
    Deleted,
    /// A volume that failed.
    Error,
    /// Anything else EC2 says, or nothing at all (an empty string).
    Other(String),
}

impl SourceState {
    pub fn parse(text: &str) -> Self {
        match text {
            "pending" => SourceState::Pending,
            "running" => SourceState::Running,
            "stopping" => SourceState::Stopping,
            "stopped" => SourceState::Stopped,
            "shutting-down" => SourceState::ShuttingDown,
            "terminated" => SourceState::Terminated,
            "creating" => SourceState::Creating,
            "available" => SourceState::Available,
            "in-use" => SourceState::InUse,
            "deleting" => SourceState::Deleting,
            "deleted" => SourceState::Deleted,
            "error" => SourceState::Error,
            other => SourceState::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            SourceState::Pending => "pending",
            SourceState::Running => "running",
            SourceState::Stopping => "stopping",
            SourceState::Stopped => "stopped",
            SourceState::ShuttingDown => "shutting-down",
            SourceState::Terminated => "terminated",
            SourceState::Creating => "creating",
            SourceState::Available => "available",
            SourceState::InUse => "in-use",
            SourceState::Deleting => "deleting",
            SourceState::Deleted => "deleted",
            SourceState::Error => "error",
            SourceState::Other(s) => s,
        }
    }

    /// On its way to being usable: an instance pending, a volume being made.
    pub fn is_coming(&self) -> bool {
        matches!(self, SourceState::Pending | SourceState::Creating)
    }

    /// Gone, or on its way out: nothing to back up or to restore over.
    pub fn is_gone(&self) -> bool {
        matches!(
            self,
            SourceState::ShuttingDown
                | SourceState::Terminated
                | SourceState::Deleting
                | SourceState::Deleted
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_reads_back_as_ec2_wrote_it() {
        for text in [
            "pending",
            "running",
            "stopping",
            "stopped",
            "shutting-down",
            "terminated",
            "creating",
            "available",
            "in-use",
            "deleting",
            "deleted",
            "error",
            "impaired",
            "",
        ] {
            assert_eq!(SourceState::parse(text).as_str(), text);
        }
        assert!(SourceState::parse("pending").is_coming());
        assert!(SourceState::parse("shutting-down").is_gone());
        assert!(!SourceState::parse("stopped").is_gone());
    }
}
