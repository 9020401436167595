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
    /// A drill's launch: no public IP (the one network interface says so), and a shutdown from
    /// inside terminates the instance.
    pub throwaway: bool,
    /// RunInstances' ClientToken: a retry of the call returns the instance it made.
    pub client_token: Option<String>,
    /// The AMI's EBS devices, each deleted with the instance (an AMI of an instance keeps a
    /// data volume's own setting, often to outlive it).
    pub delete_on_termination: Vec<String>,
}

/// What a new volume is made with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewVolume {
    pub snapshot_id: String,
    pub availability_zone: String,
    pub volume_type: Option<String>,
    pub tags: Tags,
    /// CreateVolume's ClientToken: a retry of the call returns the volume it made.
    pub client_token: Option<String>,
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

/// An availability zone of a region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    pub name: String,
    pub zone_id: Option<String>,
    /// `available`, `impaired`, `unavailable`, ...
    pub state: String,
}

/// A subnet an instance can be launched into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subnet {
    pub id: String,
    pub availability_zone: String,
    pub vpc_id: Option<String>,
    /// The default subnet of its zone (in the default VPC).
    pub default_for_az: bool,
    pub state: String,
}
