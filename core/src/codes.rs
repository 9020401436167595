//! The AWS error codes the toolkit branches on, each named once, beside the set each decision
//! reads. A code compared anywhere else is a code missing here.

/// EC2's throttling of an action's bucket.
pub const REQUEST_LIMIT_EXCEEDED: &str = "RequestLimitExceeded";
pub const THROTTLING: &str = "Throttling";
pub const THROTTLING_EXCEPTION: &str = "ThrottlingException";

/// Throttling: the call is tried again later, never a failure of the resource.
pub const THROTTLED: &[&str] = &[REQUEST_LIMIT_EXCEEDED, THROTTLING, THROTTLING_EXCEPTION];

/// A limit on what is in flight: copies of an account and region, concurrent snapshots.
pub const RESOURCE_LIMIT_EXCEEDED: &str = "ResourceLimitExceeded";
pub const CONCURRENT_SNAPSHOT_LIMIT_EXCEEDED: &str = "ConcurrentSnapshotLimitExceeded";
pub const SNAPSHOT_CREATION_PER_VOLUME_RATE_EXCEEDED: &str =
    "SnapshotCreationPerVolumeRateExceeded";

/// A copy answered "not now" (a limit full, throttling): left for a later run, not failed.
pub const COPY_DEFERRED: &[&str] = &[
    RESOURCE_LIMIT_EXCEEDED,
    REQUEST_LIMIT_EXCEEDED,
    THROTTLING,
    THROTTLING_EXCEPTION,
    CONCURRENT_SNAPSHOT_LIMIT_EXCEEDED,
];

/// No answer from AWS: the SDK's kinds of failure, kept as codes.
pub const DISPATCH_FAILURE: &str = "DispatchFailure";
pub const TIMEOUT_ERROR: &str = "TimeoutError";
pub const RESPONSE_ERROR: &str = "ResponseError";
pub const CONSTRUCTION_FAILURE: &str = "ConstructionFailure";

/// "Try again later", not "this is wrong": Lambda's `Retryable` errors.
pub const RETRYABLE: &[&str] = &[
    REQUEST_LIMIT_EXCEEDED,
    THROTTLING,
    THROTTLING_EXCEPTION,
    RESOURCE_LIMIT_EXCEEDED,
    SNAPSHOT_CREATION_PER_VOLUME_RATE_EXCEEDED,
    CONCURRENT_SNAPSHOT_LIMIT_EXCEEDED,
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    "Unavailable",
    DISPATCH_FAILURE,
    TIMEOUT_ERROR,
    RESPONSE_ERROR,
];

pub const AMI_NOT_FOUND: &str = "InvalidAMIID.NotFound";
pub const AMI_UNAVAILABLE: &str = "InvalidAMIID.Unavailable";
pub const SNAPSHOT_NOT_FOUND: &str = "InvalidSnapshot.NotFound";

/// Ours, not AWS's: a backup encrypted with a key the DR account cannot use, and no share key
/// (`SHARE_KMS_KEYS`) for its region.
pub const SHARE_KEY_MISSING: &str = "ShareKeyMissing";

/// An image already gone: its deletion is done.
pub const IMAGE_GONE: &[&str] = &[AMI_NOT_FOUND, AMI_UNAVAILABLE];
/// A snapshot already gone: its deletion is done.
pub const SNAPSHOT_GONE: &[&str] = &[SNAPSHOT_NOT_FOUND];

/// A snapshot another image still lists: kept for a later run, not failed.
pub const SNAPSHOT_IN_USE: &str = "InvalidSnapshot.InUse";
/// An AMI of that name exists in the region: another call for the same backup got there first.
pub const AMI_NAME_DUPLICATE: &str = "InvalidAMIName.Duplicate";
/// A resource named that EC2 does not find.
pub const INSTANCE_NOT_FOUND: &str = "InvalidInstanceID.NotFound";
pub const VOLUME_NOT_FOUND: &str = "InvalidVolume.NotFound";
/// A resource in a state the call does not take (an instance still pending).
pub const INCORRECT_STATE: &str = "IncorrectState";
/// Ours: a resource waited for went into a state it will not leave (a restore that failed).
pub const UNEXPECTED_STATE: &str = "UnexpectedState";

/// A security group of that name exists in the VPC: a drill run at the same moment made it.
pub const GROUP_DUPLICATE: &str = "InvalidGroup.Duplicate";
/// S3's answer to a conditional put whose key exists: the evidence record is written already.
pub const PRECONDITION_FAILED: &str = "PreconditionFailed";
/// Ours: the drill's security group was given ingress rules; no instance is launched into it.
pub const DRILL_GROUP_OPEN: &str = "DrillSecurityGroupHasIngress";
/// Ours: the region has no subnet or zone for a drill to restore into.
pub const NO_PLACE: &str = "NoDrillPlacement";

/// KMS's answer for a key, alias or key ARN it does not know.
pub const KMS_NOT_FOUND: &str = "NotFoundException";

/// The credentials may not do this.
pub const NOT_ALLOWED: &[&str] = &["UnauthorizedOperation", "AuthFailure", "AccessDenied"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_deferred_or_throttled_is_also_retryable() {
        for code in THROTTLED.iter().chain(COPY_DEFERRED) {
            assert!(RETRYABLE.contains(code), "{code}");
        }
        assert!(!RETRYABLE.contains(&AMI_NAME_DUPLICATE));
        assert!(!RETRYABLE.contains(&SNAPSHOT_IN_USE));
    }
}
