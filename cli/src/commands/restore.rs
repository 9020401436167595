//! `ec2-backup restore instance|volume`: a new instance from the newest (or the chosen) usable
//! AMI backup, or a new volume from a snapshot backup, in a real zone and subnet of the region;
//! `--dry-run` says what would be made.

use super::context::{Ctx, created};
use super::placement::{choose_subnet, given_subnet, volume_zone};
use crate::error::{CliError, Result};
use crate::output::json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::Region;
use shared::restore::{Launch, NewVolume};
use shared::status::choose_backup;
use shared::tags::Kind;
use std::process::ExitCode;
use std::time::Duration;

/// How long an attach waits for the new volume to become available.
const ATTACH_WAIT: Duration = Duration::from_secs(600);

/// Which backup: the one named, or the newest usable one (made before `before`).
pub struct Choice {
    pub named: Option<String>,
    pub before: Option<DateTime<Utc>>,
}

/// What the user gave for the new instance; the rest comes from the original.
pub struct InstanceOverrides {
    pub instance_type: Option<String>,
    pub subnet: Option<String>,
    pub availability_zone: Option<String>,
    pub security_groups: Vec<String>,
    pub key_name: Option<String>,
}

#[derive(Debug, Serialize)]
struct InstanceRestore {
    /// `None` in a dry run.
    instance_id: Option<String>,
    region: Region,
    image_id: String,
    backup_created_at: String,
    instance_type: String,
    subnet_id: Option<String>,
    availability_zone: Option<String>,
    security_group_ids: Vec<String>,
    key_name: Option<String>,
    dry_run: bool,
}

struct InstancePlan {
    launch: Launch,
    availability_zone: Option<String>,
    backup_created: String,
}

impl InstancePlan {
    fn describe(&self) -> String {
        format!(
            "type {}, subnet {}{}, security groups [{}], key {}",
            self.launch.instance_type,
            self.launch.subnet_id.as_deref().unwrap_or("(default)"),
            self.availability_zone
                .as_deref()
                .map(|z| format!(" in {z}"))
                .unwrap_or_default(),
            self.launch.security_group_ids.join(", "),
            self.launch.key_name.as_deref().unwrap_or("(none)")
        )
    }
}

pub async fn instance(
    ctx: &Ctx,
    instance_id: &str,
    region: &Region,
    choice: Choice,
    overrides: InstanceOverrides,
    dry_run: bool,
) -> Result<ExitCode> {
    let plan = plan_instance(ctx, instance_id, region, choice, overrides).await?;
    let id = if dry_run {
        None
    } else {
        let id = ctx
            .clients
            .region(region)
            .launch(&plan.launch)
            .await
            .map_err(CliError::aws(format!(
                "launching {instance_id}'s restore from {} in {region}",
                plan.launch.image_id
            )))?;
        Some(id)
    };
    if ctx.json() {
        json(&InstanceRestore {
            instance_id: id,
            region: region.clone(),
            image_id: plan.launch.image_id.clone(),
            backup_created_at: plan.backup_created.clone(),
            instance_type: plan.launch.instance_type.clone(),
            subnet_id: plan.launch.subnet_id.clone(),
            availability_zone: plan.availability_zone.clone(),
            security_group_ids: plan.launch.security_group_ids.clone(),
            key_name: plan.launch.key_name.clone(),
            dry_run,
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    match id {
        None => println!(
            "dry run: would launch in {region} from {} ({}): {}",
            plan.launch.image_id,
            plan.backup_created,
            plan.describe()
        ),
        Some(id) => {
            eprintln!(
                "launched {id} in {region} from {} ({}): {}",
                plan.launch.image_id,
                plan.backup_created,
                plan.describe()
            );
            println!("{id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The launch of a restore: the chosen backup, and for what the user did not give, the
/// original's type (from wherever it lives) and its network in its own region; elsewhere (or
/// when a zone is asked for) a subnet chosen among the region's available ones.
async fn plan_instance(
    ctx: &Ctx,
    instance_id: &str,
    region: &Region,
    choice: Choice,
    overrides: InstanceOverrides,
) -> Result<InstancePlan> {
    let backups = ctx.backups_of_kind(region, Kind::Image).await?;
    let backup = choose_backup(
        &backups,
        instance_id,
        region,
        choice.named.as_deref(),
        choice.before,
    )
    .map_err(CliError::NotFound)?;
    let source_region = backup
        .source_region
        .as_deref()
        .and_then(|r| Region::parse(r).ok())
        .unwrap_or_else(|| ctx.home().clone());
    let shape = ctx
        .clients
        .region(&source_region)
        .instance_shape(instance_id)
        .await
        .map_err(CliError::aws(format!(
            "looking up {instance_id} in {source_region}"
        )))?
        .unwrap_or_default();
    let same_region = &source_region == region;
    let instance_type = overrides
        .instance_type
        .or(shape.instance_type)
        .ok_or_else(|| {
            CliError::bad_input(
                "--instance-type",
                format!("{instance_id} no longer exists to take its instance type from: give --instance-type"),
            )
        })?;
    let ec2 = ctx.clients.region(region);
    let original_subnet = shape.subnet_id.filter(|_| same_region);
    let (subnet_id, availability_zone) = match (&overrides.subnet, &overrides.availability_zone) {
        (Some(id), zone) => {
            let subnet = given_subnet(&ec2, region, id).await?;
            if let Some(zone) = zone.as_deref().filter(|z| *z != subnet.availability_zone) {
                return Err(CliError::bad_input(
                    format!("--subnet {id}"),
                    format!(
                        "it is in {}, not in --availability-zone {zone}",
                        subnet.availability_zone
                    ),
                ));
            }
            (Some(subnet.id), Some(subnet.availability_zone))
        }
        (None, None) if original_subnet.is_some() => (original_subnet, shape.availability_zone),
        (None, zone) => {
            // The original's VPC first, so its security groups still apply.
            let original_vpc = match &original_subnet {
                Some(id) => ec2
                    .subnet(id)
                    .await
                    .map_err(CliError::aws(format!(
                        "looking up {instance_id}'s subnet {id}"
                    )))?
                    .and_then(|s| s.vpc_id),
                None => None,
            };
            let subnet =
                choose_subnet(&ec2, region, zone.as_deref(), original_vpc.as_deref()).await?;
            (Some(subnet.id), Some(subnet.availability_zone))
        }
    };
    let launch = Launch {
        image_id: backup.id.clone(),
        instance_type,
        subnet_id,
        security_group_ids: if overrides.security_groups.is_empty() && same_region {
            shape.security_group_ids
        } else {
            overrides.security_groups
        },
        key_name: overrides
            .key_name
            .or(if same_region { shape.key_name } else { None }),
        tags: ctx.restored_tags(backup),
        ..Launch::default()
    };
    Ok(InstancePlan {
        launch,
        availability_zone,
        backup_created: created(backup),
    })
}

/// What the user gave for the new volume.
pub struct VolumeOptions {
    pub availability_zone: Option<String>,
    pub attach: Option<(String, String)>,
    pub volume_type: Option<String>,
    pub dry_run: bool,
}

#[derive(Debug, Serialize)]
struct VolumeRestore {
    /// `None` in a dry run.
    volume_id: Option<String>,
    region: Region,
    availability_zone: String,
    snapshot_id: String,
    backup_created_at: String,
    attached_to: Option<String>,
    device: Option<String>,
    dry_run: bool,
}

pub async fn volume(
    ctx: &Ctx,
    volume_id: &str,
    region: &Region,
    choice: Choice,
    options: VolumeOptions,
) -> Result<ExitCode> {
    let ec2 = ctx.clients.region(region);
    let backups = ctx.backups_of_kind(region, Kind::Snapshot).await?;
    let backup = choose_backup(
        &backups,
        volume_id,
        region,
        choice.named.as_deref(),
        choice.before,
    )
    .map_err(CliError::NotFound)?;
    // A volume attaches only to an instance in its own zone: take that zone, and refuse another
    // before creating a volume that could never be attached.
    let attach_zone = match &options.attach {
        Some((instance, _)) => {
            let shape = ec2
                .instance_shape(instance)
                .await
                .map_err(CliError::aws(format!(
                    "looking up --attach {instance} in {region}"
                )))?
                .ok_or_else(|| {
                    CliError::NotFound(format!("--attach {instance}: no such instance in {region}"))
                })?;
            shape.availability_zone
        }
        None => None,
    };
    let zone = match (&options.availability_zone, &attach_zone) {
        (Some(asked), Some(theirs)) if asked != theirs => {
            let instance = options
                .attach
                .as_ref()
                .map(|(i, _)| i.as_str())
                .unwrap_or_default();
            return Err(CliError::bad_input(
                format!("--availability-zone {asked}"),
                format!(
                    "--attach {instance} is in {theirs}; a volume attaches only in its own zone"
                ),
            ));
        }
        (None, Some(theirs)) => theirs.clone(),
        (asked, _) => volume_zone(&ec2, region, asked.as_deref()).await?,
    };
    let new = NewVolume {
        snapshot_id: backup.id.clone(),
        availability_zone: zone,
        volume_type: options.volume_type,
        tags: ctx.restored_tags(backup),
        client_token: None,
    };
    let mut result = VolumeRestore {
        volume_id: None,
        region: region.clone(),
        availability_zone: new.availability_zone.clone(),
        snapshot_id: backup.id.clone(),
        backup_created_at: created(backup),
        attached_to: None,
        device: None,
        dry_run: options.dry_run,
    };
    if options.dry_run {
        if ctx.json() {
            json(&result)?;
        } else {
            println!(
                "dry run: would create a volume in {} from {} ({}){}",
                new.availability_zone,
                backup.id,
                created(backup),
                options
                    .attach
                    .as_ref()
                    .map(|(i, _)| format!(" and attach it to {i}"))
                    .unwrap_or_default()
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let id = ec2
        .create_volume_from(&new)
        .await
        .map_err(CliError::aws(format!(
            "creating {volume_id}'s restore from {} in {}",
            backup.id, new.availability_zone
        )))?;
    eprintln!(
        "created {id} in {} from {} ({})",
        new.availability_zone,
        backup.id,
        created(backup)
    );
    result.volume_id = Some(id.clone());
    if let Some((instance, device)) = options.attach {
        ec2.wait_until_volume_available(&id, ATTACH_WAIT)
            .await
            .map_err(CliError::aws(format!("waiting for {id} to attach it")))?;
        ec2.attach_volume(&id, &instance, &device)
            .await
            .map_err(CliError::aws(format!(
                "attaching {id} to {instance} as {device}"
            )))?;
        eprintln!("attached {id} to {instance} as {device}");
        result.attached_to = Some(instance);
        result.device = Some(device);
    }
    if ctx.json() {
        json(&result)?;
    } else {
        println!("{id}");
    }
    Ok(ExitCode::SUCCESS)
}
