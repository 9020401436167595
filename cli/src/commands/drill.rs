//! `ec2-backup drill`: restore every resource's newest backup in each DR region into a
//! throwaway instance or volume tagged `P:drill=true`, in a real subnet and zone of that region,
//! wait for it with the SDK's waiters, delete it again whatever happened, and report RPO and
//! time to restore. Exit code 1 when any restore or clean-up failed.

use super::context::{Ctx, backup_kind, created};
use super::placement::{choose_subnet, given_subnet, volume_zone};
use crate::error::{CliError, Result};
use crate::output::{age, json, table};
use chrono::Utc;
use serde::Serialize;
use serde_json::json as object;
use shared::Region;
use shared::backup::Backup;
use shared::restore::{InstanceState, Launch, NewVolume, Subnet};
use shared::source::Source;
use shared::status::{Resource, choose_backup};
use shared::tags::{Kind, Tags};
use std::collections::BTreeSet;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// How long a terminated drill instance may take to be gone (its volumes are deleted after).
const TERMINATE_WAIT: Duration = Duration::from_secs(600);

pub struct Options {
    pub regions: Vec<Region>,
    pub subnet: Option<String>,
    pub timeout: Duration,
    pub dry_run: bool,
}

#[derive(Serialize)]
struct DrillRow {
    resource: String,
    kind: &'static str,
    region: Region,
    backup: Option<String>,
    rpo_minutes: Option<i64>,
    restored: bool,
    restore_seconds: Option<f64>,
    /// Where the throwaway resource was made.
    availability_zone: Option<String>,
    subnet: Option<String>,
    error: Option<String>,
}

impl DrillRow {
    fn new(r: &Resource, region: &Region) -> Self {
        Self {
            resource: r.id.clone(),
            kind: r.kind,
            region: region.clone(),
            backup: None,
            rpo_minutes: None,
            restored: false,
            restore_seconds: None,
            availability_zone: None,
            subnet: None,
            error: None,
        }
    }
}

/// Where the drill restores in one region: the subnet of the instances (the one given, or
/// the default subnet of an available zone) and the zone of the volumes (the subnet's, so both
/// land together, else the first available zone). A failure here fails that region's rows.
struct Place {
    subnet: std::result::Result<Subnet, String>,
    zone: std::result::Result<String, String>,
}

async fn place(ctx: &Ctx, region: &Region, subnet: Option<&str>) -> Result<Place> {
    let ec2 = ctx.clients.region(region);
    if let Some(id) = subnet {
        // Asked for by name: a wrong one is the user's to fix before anything is launched.
        let subnet = given_subnet(&ec2, region, id).await?;
        return Ok(Place {
            zone: Ok(subnet.availability_zone.clone()),
            subnet: Ok(subnet),
        });
    }
    let subnet = choose_subnet(&ec2, region, None, None)
        .await
        .map_err(|e| e.to_string());
    let zone = match &subnet {
        Ok(s) => Ok(s.availability_zone.clone()),
        Err(_) => volume_zone(&ec2, region, None)
            .await
            .map_err(|e| e.to_string()),
    };
    Ok(Place { subnet, zone })
}

pub async fn run(ctx: &Ctx, options: Options) -> Result<ExitCode> {
    let only = &options.regions;
    if only.contains(ctx.home()) {
        return Err(CliError::bad_input(
            format!("--region {}", ctx.home()),
            "a drill restores in DR regions, not in the home region",
        ));
    }
    let marks = drill_marks(ctx);
    let resources = ctx.resources().await?;
    let in_region = |region: &Region| {
        resources
            .iter()
            .filter(move |(_, r)| only.contains(region) || r.copy_to.contains(region))
            .collect::<Vec<_>>()
    };
    let mut by_region: BTreeSet<Region> = BTreeSet::new();
    for (_, r) in &resources {
        let regions = if only.is_empty() { &r.copy_to } else { only };
        by_region.extend(regions.iter().filter(|x| *x != ctx.home()).cloned());
    }
    if let Some(subnet) = &options.subnet
        && by_region.len() > 1
    {
        return Err(CliError::bad_input(
            format!("--subnet {subnet}"),
            format!(
                "a subnet belongs to one region, and this drill restores in {}: give --region too",
                by_region
                    .iter()
                    .map(Region::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let mut places = Vec::new();
    for region in &by_region {
        places.push((region, place(ctx, region, options.subnet.as_deref()).await?));
    }
    if options.dry_run {
        return dry_run(ctx, &places, &in_region).await;
    }
    let mut cleanup = Cleanup::default();
    for region in &by_region {
        clean_drill_leftovers(ctx, region, &marks, &mut cleanup).await;
    }
    let mut rows = Vec::new();
    for (region, place) in &places {
        let backups = match ctx.backups(region).await {
            Ok(b) => b,
            Err(e) => {
                for (_, r) in in_region(region) {
                    let mut row = DrillRow::new(r, region);
                    row.error = Some(e.to_string());
                    rows.push(row);
                }
                continue;
            }
        };
        for (source, r) in in_region(region) {
            rows.push(
                drill_one(
                    ctx,
                    source,
                    r,
                    region,
                    place,
                    &backups,
                    &marks,
                    options.timeout,
                )
                .await,
            );
        }
    }
    // The instances are terminated by now; their volumes that outlive them (data volumes without
    // DeleteOnTermination) are deleted here.
    let mut after = Cleanup::default();
    for region in &by_region {
        clean_drill_leftovers(ctx, region, &marks, &mut after).await;
    }
    let failures = rows.iter().filter(|r| !r.restored).count();
    let cleanup_errors: Vec<&String> = cleanup.errors.iter().chain(&after.errors).collect();
    if ctx.json() {
        json(&object!({
            "rows": rows,
            "leftovers_cleaned": cleanup.cleaned,
            "volumes_deleted_after": after.cleaned,
            "cleanup_errors": cleanup_errors,
        }))?;
    } else {
        print_table(&rows, &cleanup, &cleanup_errors, failures);
    }
    Ok(if failures > 0 || !cleanup_errors.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Which backup would be restored where; launches and deletes nothing.
async fn dry_run<'a>(
    ctx: &Ctx,
    places: &[(&Region, Place)],
    in_region: &impl Fn(&Region) -> Vec<&'a (Source, Resource)>,
) -> Result<ExitCode> {
    let mut planned = Vec::new();
    for (region, place) in places {
        let backups = ctx.backups(region).await?;
        for (_, r) in in_region(region) {
            let kind = backup_kind(r.kind);
            let of_kind: Vec<Backup> = backups.iter().filter(|b| b.kind == kind).cloned().collect();
            let (zone, subnet) = match kind {
                Kind::Image => (
                    place
                        .subnet
                        .as_ref()
                        .ok()
                        .map(|s| s.availability_zone.clone()),
                    place.subnet.as_ref().ok().map(|s| s.id.clone()),
                ),
                Kind::Snapshot => (place.zone.as_ref().ok().cloned(), None),
            };
            match choose_backup(&of_kind, &r.id, region, None, None) {
                Ok(b) => {
                    if !ctx.json() {
                        println!(
                            "dry run: would restore {} in {region} from {} ({}) into {}",
                            r.id,
                            b.id,
                            created(b),
                            subnet
                                .as_deref()
                                .map(|s| format!("{s} in "))
                                .unwrap_or_default()
                                + zone.as_deref().unwrap_or("(no available zone)")
                        );
                    }
                    planned.push(object!({
                        "resource": r.id, "kind": r.kind, "region": region, "backup": b.id,
                        "backup_created_at": b.created_at, "availability_zone": zone,
                        "subnet": subnet, "error": null,
                    }));
                }
                Err(e) => {
                    if !ctx.json() {
                        println!("dry run: {}: {e}", r.id);
                    }
                    planned.push(object!({
                        "resource": r.id, "kind": r.kind, "region": region, "backup": null,
                        "backup_created_at": null, "availability_zone": zone,
                        "subnet": subnet, "error": e,
                    }));
                }
            }
        }
    }
    if ctx.json() {
        json(&object!({ "dry_run": true, "planned": planned }))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_table(rows: &[DrillRow], cleanup: &Cleanup, cleanup_errors: &[&String], failures: usize) {
    let table_rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.resource.clone(),
                r.region.to_string(),
                r.availability_zone.clone().unwrap_or_else(|| "-".into()),
                r.backup.clone().unwrap_or_else(|| "-".into()),
                r.rpo_minutes.map(age).unwrap_or_else(|| "-".into()),
                if r.restored {
                    "yes".into()
                } else {
                    "NO".into()
                },
                r.restore_seconds
                    .map(|s| format!("{s:.1}s"))
                    .unwrap_or_else(|| "-".into()),
                r.error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    println!(
        "{}",
        table(
            &[
                "resource", "region", "zone", "backup", "rpo", "restored", "time", "error"
            ],
            &table_rows
        )
    );
    if !cleanup.cleaned.is_empty() {
        println!(
            "\ncleaned up drill resources left by an earlier run: {}",
            cleanup.cleaned.join(", ")
        );
    }
    for e in cleanup_errors {
        println!("cleanup FAILED: {e}");
    }
    println!("\n{} restores, {} failed", rows.len(), failures);
}

/// The tags that mark a drill resource of this deployment: only resources carrying all of them
/// are ever cleaned up, so another deployment's drill or a resource someone else tagged
/// `P:drill` is never touched.
fn drill_marks(ctx: &Ctx) -> Vec<(String, String)> {
    vec![
        (ctx.keys.key("drill"), "true".into()),
        (
            ctx.keys.key(shared::tags::key::MANAGED_BY),
            ctx.config.deployment_name.clone(),
        ),
    ]
}

#[derive(Default)]
struct Cleanup {
    cleaned: Vec<String>,
    errors: Vec<String>,
}

/// Restores one resource's newest backup in `region` into a throwaway resource, waits for it,
/// and deletes it again whatever happened.
#[allow(clippy::too_many_arguments)]
async fn drill_one(
    ctx: &Ctx,
    source: &Source,
    r: &Resource,
    region: &Region,
    place: &Place,
    backups: &[Backup],
    marks: &[(String, String)],
    timeout: Duration,
) -> DrillRow {
    let kind = backup_kind(r.kind);
    let mut row = DrillRow::new(r, region);
    let of_kind: Vec<Backup> = backups.iter().filter(|b| b.kind == kind).cloned().collect();
    let backup = match choose_backup(&of_kind, &r.id, region, None, None) {
        Ok(b) => b,
        Err(e) => {
            row.error = Some(e);
            return row;
        }
    };
    row.backup = Some(backup.id.clone());
    row.rpo_minutes = backup.created_at.map(|t| (Utc::now() - t).num_minutes());
    let ec2 = ctx.clients.region(region);
    let mut tags: Tags = vec![
        ("Name".into(), format!("drill-{}", r.id)),
        (ctx.keys.key("restored-from"), backup.id.clone()),
    ];
    tags.extend(marks.iter().cloned());
    let start = Instant::now();
    let made = if kind == Kind::Image {
        let subnet = match &place.subnet {
            Ok(s) => s,
            Err(e) => {
                row.error = Some(e.clone());
                return row;
            }
        };
        row.subnet = Some(subnet.id.clone());
        row.availability_zone = Some(subnet.availability_zone.clone());
        // The original's type; a small one when the original is gone (the drill is throwaway).
        let instance_type = match ctx.clients.home().instance_shape(&source.id).await {
            Ok(shape) => shape
                .and_then(|s| s.instance_type)
                .unwrap_or_else(|| "t3.micro".into()),
            Err(e) => {
                row.error = Some(e.to_string());
                return row;
            }
        };
        ec2.launch(&Launch {
            image_id: backup.id.clone(),
            instance_type,
            subnet_id: Some(subnet.id.clone()),
            tags,
            ..Launch::default()
        })
        .await
    } else {
        let zone = match &place.zone {
            Ok(z) => z,
            Err(e) => {
                row.error = Some(e.clone());
                return row;
            }
        };
        row.availability_zone = Some(zone.clone());
        ec2.create_volume_from(&NewVolume {
            snapshot_id: backup.id.clone(),
            availability_zone: zone.clone(),
            volume_type: None,
            tags,
        })
        .await
    };
    let id = match made {
        Ok(id) => id,
        Err(e) => {
            row.error = Some(e.to_string());
            return row;
        }
    };
    let up = if kind == Kind::Image {
        ec2.wait_until_instance(&id, InstanceState::Running, timeout)
            .await
    } else {
        ec2.wait_until_volume_available(&id, timeout).await
    };
    match up {
        Ok(()) => {
            row.restored = true;
            row.restore_seconds = Some((start.elapsed().as_secs_f64() * 10.0).round() / 10.0);
        }
        Err(e) => row.error = Some(e.to_string()),
    }
    let cleanup = if kind == Kind::Image {
        // Terminated, not just terminating: its volumes are deleted after, and an in-use
        // volume cannot be.
        match ec2.terminate(&id).await {
            Ok(()) => {
                ec2.wait_until_instance(&id, InstanceState::Terminated, TERMINATE_WAIT)
                    .await
            }
            Err(e) => Err(e),
        }
    } else {
        ec2.delete_volume(&id).await
    };
    if let Err(e) = cleanup {
        let note = format!("could not delete drill resource {id}: {e}");
        row.error = Some(match row.error.take() {
            Some(prev) => format!("{prev}; {note}"),
            None => note,
        });
        row.restored = false;
    }
    row
}

/// Deletes this deployment's drill resources in `region` (an interrupted drill's leftovers, or
/// the volumes a terminated drill instance leaves), recording what was deleted and what failed.
async fn clean_drill_leftovers(
    ctx: &Ctx,
    region: &Region,
    marks: &[(String, String)],
    cleanup: &mut Cleanup,
) {
    let ec2 = ctx.clients.region(region);
    let (instances, volumes) = match ec2.tagged_leftovers(marks).await {
        Ok(found) => found,
        Err(e) => {
            cleanup
                .errors
                .push(format!("looking for drill resources in {region}: {e}"));
            return;
        }
    };
    for id in instances {
        match ec2.terminate(&id).await {
            Ok(()) => cleanup.cleaned.push(id),
            Err(e) => cleanup.errors.push(format!("{id} in {region}: {e}")),
        }
    }
    for id in volumes {
        match ec2.delete_volume(&id).await {
            Ok(()) => cleanup.cleaned.push(id),
            Err(e) => cleanup.errors.push(format!("{id} in {region}: {e}")),
        }
    }
}
