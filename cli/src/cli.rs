//! The command line: subcommands, flags, and which configuration variable each setting mirrors.

use crate::values::{self, Setting, SourceId};
use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use shared::Region;
use shared::duration::Duration;

const EXAMPLES: &str = "\
Examples:
  ec2-backup status                         every opted-in resource, home and DR regions
  ec2-backup status --output json | jq '.rows[] | select(.rpo != \"met\")'
  ec2-backup backup i-0abc1234def567890 --wait
  ec2-backup restore instance i-0abc1234def567890 --region us-west-2 --subnet subnet-0123 --dry-run
  ec2-backup restore volume vol-0abc1234def567890 --availability-zone us-east-1a --attach i-0def --device /dev/sdf
  ec2-backup drill --region us-west-2 --bucket my-evidence
  ec2-backup evidence --since 90d --output markdown > drills.md
  ec2-backup check-dr --dr-account 444455556666   the share keys the DR account must be able to use

Settings come from the same environment variables as the functions (TAG_PREFIX, DEPLOYMENT_NAME,
COPY_TO_REGIONS, DRILL_INTERVAL, EVIDENCE_BUCKET, DRILL_*, ...); the flags below override them.
AWS credentials and the home region come from the usual chain (AWS_PROFILE, AWS_REGION, ...);
AWS_ENDPOINT_URL is honoured. --output json (or --json) prints JSON on every subcommand;
evidence also prints markdown.

Exit codes: 0 all well; 1 a resource is late or has no backup (status), a restore failed, timed
out or was not cleaned up (drill), an evidence object could not be read (evidence), a KMS key
will not do (check-dr); 2 the command could not run (bad input, AWS error).";

#[derive(Debug, Parser)]
#[command(name = "ec2-backup", version, about = "Status, restore and DR drills for ec2-backup", after_help = EXAMPLES)]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,
    /// Output format
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    pub output: Format,
    /// The same as --output json (kept for existing scripts)
    #[arg(long, global = true, hide = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    pub fn format(&self) -> Format {
        if self.json { Format::Json } else { self.output }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns and sentences, for people
    Table,
    /// One JSON document on stdout, for machines
    Json,
    /// A document to paste into an audit (evidence only)
    Markdown,
}

/// The deployment's configuration: each flag mirrors the variable the functions read (an empty
/// variable means the default, as for them); a flag given wins over its variable.
#[derive(Debug, Args)]
pub struct Settings {
    /// Tag prefix
    #[arg(long, global = true, env = "TAG_PREFIX", value_parser = values::tag_prefix)]
    pub tag_prefix: Option<Setting<String>>,
    /// Deployment name written as P:managed-by
    #[arg(long, global = true, env = "DEPLOYMENT_NAME", value_parser = values::deployment_name)]
    pub deployment_name: Option<Setting<String>>,
    /// Default DR regions, comma-separated
    #[arg(long, global = true, env = "COPY_TO_REGIONS", value_parser = values::region_list)]
    pub copy_to_regions: Option<Setting<Vec<Region>>>,
    /// Default interval (90m, 12h, 1d, 2w)
    #[arg(long, global = true, env = "DEFAULT_INTERVAL", value_parser = values::duration_setting)]
    pub default_interval: Option<Setting<Duration>>,
    /// The home region, where the sources live (default: the SDK's region chain)
    #[arg(long, global = true, env = "AWS_REGION", value_parser = values::region_setting)]
    pub home_region: Option<Setting<Region>>,
}

/// The value of a setting given by a flag or a non-empty variable.
pub fn given<T: Clone>(setting: &Option<Setting<T>>) -> Option<T> {
    setting.as_ref().and_then(|s| s.0.clone())
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Newest backup, RPO, pending copies, next expiry, holds and last drill per resource and
    /// region
    #[command(
        after_help = "Examples:\n  ec2-backup status\n  ec2-backup status --region eu-central-1 --output json\n\nExit code 1 when any row is late or has no backup."
    )]
    Status {
        /// Regions to show besides home and each resource's DR regions
        #[arg(long = "region", value_parser = values::region)]
        regions: Vec<Region>,
    },
    /// Back up instances or volumes now, through the functions' own code path
    #[command(
        after_help = "Examples:\n  ec2-backup backup i-0abc1234def567890\n  ec2-backup backup i-0abc1234def567890 vol-0abc1234def567890 --wait --copies"
    )]
    Backup {
        /// Instance (i-...) or volume (vol-...) ids
        #[arg(required = true, value_parser = values::source_id)]
        ids: Vec<SourceId>,
        /// Wait until each backup is available
        #[arg(long)]
        wait: bool,
        /// With --wait: also wait for the copies in every DR region
        #[arg(long, requires = "wait")]
        copies: bool,
        /// How long to wait, in seconds
        #[arg(long, default_value_t = 1800)]
        timeout: u64,
        /// Say what would be backed up; change nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Restore an instance or a volume from a backup
    #[command(subcommand)]
    Restore(Restore),
    /// Run the drill function's own drill from here: restore the resources due in each drill
    /// region (their DR regions, else home) into throwaway resources, judge them, delete them,
    /// and print one record per restore (RPO, time to restore, result)
    #[command(
        after_help = "Examples:\n  ec2-backup drill\n  ec2-backup drill --region us-west-2 --output json\n  ec2-backup drill --resource i-0abc1234def567890 --bucket my-evidence\n  ec2-backup drill --region us-west-2 --subnet subnet-0123abcd --timeout 15m\n  ec2-backup drill --dry-run\n\nA resource is due where its last passed drill is older than DRILL_INTERVAL (7d) less an hour,\nas for the function; a pass from here counts for the interval too. The other drill variables\n(DRILL_BATCH, DRILL_INSTANCE_TYPE, DRILL_SUBNETS, DRILL_SECURITY_GROUPS) are read as the\nfunction reads them.\n\nExit code 1 when any restore failed, timed out, or was not cleaned up, or its evidence was\nnot written, or a drill region could not be read or had no place to restore into."
    )]
    Drill {
        /// Drill only this resource (i-... or vol-...; repeatable)
        #[arg(long = "resource", value_parser = values::source_id)]
        resources: Vec<SourceId>,
        /// Drill only in this region (repeatable; default: each resource's drill regions)
        #[arg(long = "region", value_parser = values::region)]
        regions: Vec<Region>,
        /// Subnet of the drill instances, with exactly one --region (DRILL_SUBNETS for it);
        /// default: the default subnet of an available zone
        #[arg(long)]
        subnet: Option<String>,
        /// How long each restore may take to be ready before it is timed-out, and the age past
        /// which a drill resource left behind is deleted (15m, 1h) [default: DRILL_TIMEOUT, 30m]
        #[arg(long, value_parser = values::drill_timeout)]
        timeout: Option<Duration>,
        /// S3 bucket to write the records to, as the function does (default: none, the records
        /// are kept only in the output and the backups' tags)
        #[arg(long, env = "EVIDENCE_BUCKET", value_parser = values::bucket)]
        bucket: Option<Setting<String>>,
        /// Say which backups would be restored where; launch and delete nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Print the drill records in the evidence bucket: per resource and region every drill of
    /// the period (RPO, RTO, result), the last pass, and how many protected resources are proven
    #[command(
        after_help = "Examples:\n  ec2-backup evidence\n  ec2-backup evidence --since 30d --resource i-0abc1234def567890\n  ec2-backup evidence --bucket my-evidence --output markdown > drills.md\n  ec2-backup evidence --output json | jq '.summary'\n\nA protected resource is proven when each of its drill regions has a passed drill within\nDRILL_INTERVAL (7d).\n\nExit code 1 when an object of the bucket could not be read; one that is not a drill record\nis named on stderr and skipped."
    )]
    Evidence {
        /// The period: drills that started this long ago or since (90m, 12h, 30d, 2w)
        #[arg(long, default_value = "90d", value_parser = values::duration)]
        since: Duration,
        /// Only this resource (i-... or vol-...; repeatable)
        #[arg(long = "resource", value_parser = values::source_id)]
        resources: Vec<SourceId>,
        /// The evidence bucket (the stack's output EvidenceBucketName)
        #[arg(long, env = "EVIDENCE_BUCKET", value_parser = values::bucket)]
        bucket: Option<Setting<String>>,
    },
    /// The KMS pre-flight of the isolated DR account: each share key (SHARE_KMS_KEYS) exists, is
    /// customer managed and enabled, and its key policy lets the DR account use it; with
    /// --vault, each of the vault's copy keys (COPY_KMS_KEYS) exists in this account and is
    /// enabled
    #[command(
        after_help = "Examples:\n  ec2-backup check-dr --dr-account 444455556666\n  DR_ACCOUNT=444455556666 SHARE_KMS_KEYS=us-east-1=arn:aws:kms:us-east-1:111122223333:key/... ec2-backup check-dr --output json\n  ec2-backup check-dr --vault        (with the DR account's credentials and the vault's COPY_KMS_KEYS)\n\nRun it with the home account's credentials: it reads each share key in its region\n(kms:DescribeKey, kms:GetKeyPolicy). A good key policy has the statements of the home stack's\noutput ShareKeyPolicyStatements (docs/dr-account.md).\n\nExit code 1 when any key will not do; 2 when there is nothing to check or no DR account."
    )]
    CheckDr {
        /// The DR account the share keys must let use them (12 digits; the vault stack's output
        /// VaultAccountId). With --vault: the account the credentials must be in
        #[arg(long, env = "DR_ACCOUNT", value_parser = values::account_id)]
        dr_account: Option<Setting<String>>,
        /// Check the vault's own copy keys (COPY_KMS_KEYS) in this account instead, with the DR
        /// account's credentials
        #[arg(long)]
        vault: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum Restore {
    /// Launch a new instance from the newest (or a chosen) backup of INSTANCE_ID
    #[command(
        after_help = "Examples:\n  ec2-backup restore instance i-0abc1234def567890\n  ec2-backup restore instance i-0abc1234def567890 --region us-west-2 --subnet subnet-0123 --security-group sg-0123\n  ec2-backup restore instance i-0abc1234def567890 --before 2026-11-24T00:00:00Z --dry-run"
    )]
    Instance {
        instance_id: String,
        /// Region to restore in (default: home); a DR region restores from the copy there
        #[arg(long, value_parser = values::region)]
        region: Option<Region>,
        /// The AMI to restore (default: the newest usable backup)
        #[arg(long, conflicts_with = "before")]
        image: Option<String>,
        /// The newest backup made before this time (RFC 3339)
        #[arg(long, value_parser = values::time)]
        before: Option<DateTime<Utc>>,
        /// Default: the original's type
        #[arg(long)]
        instance_type: Option<String>,
        /// Default: the original's, when restoring in its own region; else the default subnet
        /// of --availability-zone or of an available zone
        #[arg(long)]
        subnet: Option<String>,
        /// Zone to launch in, when no subnet is given (its default subnet, else an available one)
        #[arg(long)]
        availability_zone: Option<String>,
        /// Default: the original's, when restoring in its own region
        #[arg(long = "security-group")]
        security_groups: Vec<String>,
        /// Default: the original's, when restoring in its own region
        #[arg(long)]
        key_name: Option<String>,
        /// Say what would be launched; change nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Create a volume from the newest (or a chosen) snapshot backup of VOLUME_ID
    #[command(
        after_help = "Examples:\n  ec2-backup restore volume vol-0abc1234def567890\n  ec2-backup restore volume vol-0abc1234def567890 --availability-zone us-east-1a\n  ec2-backup restore volume vol-0abc1234def567890 --availability-zone us-east-1a --attach i-0def --device /dev/sdf"
    )]
    Volume {
        volume_id: String,
        /// Default: the zone of the --attach instance, else the first available zone
        #[arg(long)]
        availability_zone: Option<String>,
        /// Region to restore in (default: home)
        #[arg(long, value_parser = values::region)]
        region: Option<Region>,
        /// The snapshot to restore (default: the newest usable backup)
        #[arg(long, conflicts_with = "before")]
        snapshot: Option<String>,
        /// The newest backup made before this time (RFC 3339)
        #[arg(long, value_parser = values::time)]
        before: Option<DateTime<Utc>>,
        /// Attach the new volume to this instance
        #[arg(long, requires = "device")]
        attach: Option<String>,
        /// Device name for --attach, like /dev/sdf
        #[arg(long, requires = "attach")]
        device: Option<String>,
        #[arg(long)]
        volume_type: Option<String>,
        /// Say what would be created; change nothing
        #[arg(long)]
        dry_run: bool,
    },
}
