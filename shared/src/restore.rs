//! Restoring from a backup: what a new instance or volume is made with, and where the original
//! ran. The calls are the adapter's (`ec2::restore`); the command-line tool decides.

use crate::tags::Tags;

/// What a new instance is launched with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Launch {
    pub image_id: String,
    pub instance_type: String,
    pub subnet_id: Option<String>,
    pub security_group_ids: Vec<String>,
    pub key_name: Option<String>,
    pub tags: Tags,
}

/// What a new volume is made with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewVolume {
    pub snapshot_id: String,
    pub availability_zone: String,
    pub volume_type: Option<String>,
    pub tags: Tags,
}

/// Where and how an instance ran: the defaults of a restore.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InstanceShape {
    pub instance_type: Option<String>,
    pub subnet_id: Option<String>,
    pub security_group_ids: Vec<String>,
    pub key_name: Option<String>,
    pub availability_zone: Option<String>,
}
