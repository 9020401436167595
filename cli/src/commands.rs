//! What each command does, on top of `shared`: the same configuration, tag contract, adapter and
//! create pipeline as the functions.

use crate::cli::{Cli, Command, Restore, Settings};
use crate::output::{age, table};
use chrono::{DateTime, Utc};
use serde_json::json;
use shared::backup::Backup;
use shared::clients::Clients;
use shared::event::ResourceKind;
use shared::restore::{Launch, NewVolume};
use shared::source::Source;
use shared::status::{Resource, Rpo, choose_backup, status};
use shared::tags::{Kind, TagKeys, Tags, format_time, parse_time, resolve_policy};
use shared::{Config, Region};
use std::collections::{BTreeSet, HashSet};
use std::process::ExitCode;
use std::time::{Duration, Instant};

type Result<T> = std::result::Result<T, String>;

struct Ctx {
    config: Config,
    keys: TagKeys,
    clients: Clients,
}

impl Ctx {
    fn home(&self) -> &Region {
        self.clients.home_region()
    }
}

async fn context(settings: &Settings) -> Result<Ctx> {
    let overrides = [
        ("TAG_PREFIX", &settings.tag_prefix),
        ("DEPLOYMENT_NAME", &settings.deployment_name),
        ("COPY_TO_REGIONS", &settings.copy_to_regions),
        ("DEFAULT_INTERVAL", &settings.default_interval),
    ];
    let config = Config::from_lookup(|name| {
        overrides
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| (*v).clone())
            .or_else(|| std::env::var(name).ok())
    })
    .map_err(|e| e.to_string())?;
    let sdk = shared::lambda::sdk_config().await;
    let home = match &settings.home_region {
        Some(r) => Region::parse(r).map_err(|e| format!("--home-region: {e}"))?,
        None => shared::lambda::home_region(&sdk)
            .map_err(|e| format!("{e} (set AWS_REGION or --home-region)"))?,
    };
    Ok(Ctx {
        keys: TagKeys::new(&config.tag_prefix),
        config,
        clients: Clients::from_sdk(sdk, home),
    })
}

pub async fn run(cli: Cli) -> Result<ExitCode> {
    let ctx = context(&cli.settings).await?;
    match cli.command {
        Command::Status { regions, json } => status_command(&ctx, &regions, json).await,
        Command::Backup {
            ids,
            wait,
            copies,
            timeout,
            dry_run,
        } => {
            backup_command(
                &ctx,
                &ids,
                wait,
                copies,
                Duration::from_secs(timeout),
                dry_run,
            )
            .await
        }
        Command::Restore(Restore::Instance {
            instance_id,
            region,
            image,
            before,
            instance_type,
            subnet,
            security_groups,
            key_name,
            dry_run,
        }) => {
            let region = region_or_home(&ctx, region.as_deref())?;
            let before = parse_before(before.as_deref())?;
            let plan = plan_instance_restore(
                &ctx,
                &instance_id,
                &region,
                image.as_deref(),
                before,
                InstanceOverrides {
                    instance_type,
                    subnet,
                    security_groups,
                    key_name,
                },
            )
            .await?;
            if dry_run {
                println!(
                    "dry run: would launch in {region} from {} ({}): {}",
                    plan.launch.image_id,
                    plan.backup_created,
                    plan.describe()
                );
                return Ok(ExitCode::SUCCESS);
            }
            let id = ctx
                .clients
                .region(&region)
                .launch(&plan.launch)
                .await
                .map_err(|e| e.to_string())?;
            eprintln!(
                "launched {id} in {region} from {} ({})",
                plan.launch.image_id, plan.backup_created
            );
            println!("{id}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Restore(Restore::Volume {
            volume_id,
            availability_zone,
            region,
            snapshot,
            before,
            attach,
            device,
            volume_type,
            dry_run,
        }) => {
            let region = region_or_home(&ctx, region.as_deref())?;
            let before = parse_before(before.as_deref())?;
            let ec2 = ctx.clients.region(&region);
            let backups = backups_of_kind(&ctx, &region, Kind::Snapshot).await?;
            let backup = choose_backup(&backups, &volume_id, &region, snapshot.as_deref(), before)?;
            let new = NewVolume {
                snapshot_id: backup.id.clone(),
                availability_zone,
                volume_type,
                tags: restored_tags(&ctx, backup),
            };
            if dry_run {
                println!(
                    "dry run: would create a volume in {} from {} ({}){}",
                    new.availability_zone,
                    backup.id,
                    created(backup),
                    attach
                        .as_ref()
                        .map(|i| format!(" and attach it to {i}"))
                        .unwrap_or_default()
                );
                return Ok(ExitCode::SUCCESS);
            }
            let id = ec2
                .create_volume_from(&new)
                .await
                .map_err(|e| e.to_string())?;
            eprintln!(
                "created {id} in {} from {} ({})",
                new.availability_zone,
                backup.id,
                created(backup)
            );
            if let (Some(instance), Some(device)) = (attach, device) {
                ec2.wait_for(&id, "available", Duration::from_secs(600))
                    .await
                    .map_err(|e| e.to_string())?;
                ec2.attach_volume(&id, &instance, &device)
                    .await
                    .map_err(|e| e.to_string())?;
                eprintln!("attached {id} to {instance} as {device}");
            }
            println!("{id}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Drill {
            regions,
            json,
            timeout,
            dry_run,
        } => drill_command(&ctx, &regions, json, Duration::from_secs(timeout), dry_run).await,
    }
}

fn region_or_home(ctx: &Ctx, region: Option<&str>) -> Result<Region> {
    match region {
        Some(r) => Region::parse(r).map_err(|e| format!("--region: {e}")),
        None => Ok(ctx.home().clone()),
    }
}

fn parse_before(before: Option<&str>) -> Result<Option<DateTime<Utc>>> {
    before
        .map(|t| {
            parse_time(t).ok_or_else(|| {
                format!("--before {t:?} is not an RFC 3339 time like 2026-11-25T03:00:00Z")
            })
        })
        .transpose()
}

fn created(b: &Backup) -> String {
    b.created_at
        .map(format_time)
        .unwrap_or_else(|| "creation time unknown".into())
}

async fn backups_of_kind(ctx: &Ctx, region: &Region, kind: Kind) -> Result<Vec<Backup>> {
    Ok(ctx
        .clients
        .region(region)
        .managed_backups(&ctx.keys, &ctx.config.deployment_name)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|b| b.kind == kind)
        .collect())
}

/// The restored resource carries its original's tags (as the backup recorded them) and says
/// which backup it came from; it does not opt in by itself.
fn restored_tags(ctx: &Ctx, backup: &Backup) -> Tags {
    let mut tags = ctx.keys.carried(&backup.tags);
    tags.push((ctx.keys.key("restored-from"), backup.id.clone()));
    tags
}

/// The opted-in instances and volumes of the home region, with their policies.
async fn resources(ctx: &Ctx) -> Result<Vec<(Source, Resource)>> {
    let ec2 = ctx.clients.home();
    let mut out = Vec::new();
    for (kind, sources) in [
        (
            "instance",
            ec2.instances(&ctx.keys, None)
                .await
                .map_err(|e| e.to_string())?,
        ),
        (
            "volume",
            ec2.volumes(&ctx.keys, None)
                .await
                .map_err(|e| e.to_string())?,
        ),
    ] {
        for source in sources {
            if ctx.keys.opt_in_state(&source.tags).is_err() {
                continue;
            }
            let policy = resolve_policy(
                &ctx.keys,
                &ctx.config,
                &source.id,
                &source.tags,
                &mut Vec::new(),
            );
            let resource = Resource {
                id: source.id.clone(),
                kind,
                name: source.name().map(str::to_string),
                interval: policy.interval,
                copy_to: policy.copy_to,
            };
            out.push((source, resource));
        }
    }
    Ok(out)
}

async fn status_command(ctx: &Ctx, extra: &[String], as_json: bool) -> Result<ExitCode> {
    let now = Utc::now();
    let resources: Vec<Resource> = resources(ctx).await?.into_iter().map(|(_, r)| r).collect();
    let extra: Vec<Region> = extra
        .iter()
        .map(|r| Region::parse(r).map_err(|e| format!("--region: {e}")))
        .collect::<Result<_>>()?;
    let mut regions: BTreeSet<Region> = BTreeSet::from([ctx.home().clone()]);
    regions.extend(ctx.config.copy_to_regions.iter().cloned());
    regions.extend(resources.iter().flat_map(|r| r.copy_to.iter().cloned()));
    regions.extend(extra.iter().cloned());
    let mut backups = Vec::new();
    for region in &regions {
        backups.extend(
            ctx.clients
                .region(region)
                .managed_backups(&ctx.keys, &ctx.config.deployment_name)
                .await
                .map_err(|e| e.to_string())?,
        );
    }
    let existing = existing_sources(ctx, &backups).await?;
    let report = status(ctx.home(), &extra, &resources, &backups, &existing, now);
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
        );
    } else {
        let rows: Vec<Vec<String>> = report
            .rows
            .iter()
            .map(|r| {
                vec![
                    r.resource.clone(),
                    r.name.clone().unwrap_or_default(),
                    format!("{} ({})", r.region, r.role),
                    r.newest.clone().unwrap_or_else(|| "-".into()),
                    r.age_minutes.map(age).unwrap_or_else(|| "-".into()),
                    match r.rpo {
                        Rpo::Met => "met".into(),
                        Rpo::Late => "LATE".into(),
                        Rpo::None => "NONE".into(),
                    },
                    r.copies_pending.to_string(),
                    r.next_expiry.map(format_time).unwrap_or_else(|| "-".into()),
                    r.holds.to_string(),
                ]
            })
            .collect();
        println!(
            "{}",
            table(
                &[
                    "resource",
                    "name",
                    "region",
                    "newest backup",
                    "age",
                    "rpo",
                    "pending",
                    "next expiry",
                    "holds"
                ],
                &rows
            )
        );
        if !report.orphans.is_empty() {
            println!("\nbackups whose source no longer exists:");
            let rows: Vec<Vec<String>> = report
                .orphans
                .iter()
                .map(|o| {
                    vec![
                        o.id.clone(),
                        o.region.to_string(),
                        o.source.clone(),
                        o.created_at.map(format_time).unwrap_or_default(),
                    ]
                })
                .collect();
            println!(
                "{}",
                table(&["backup", "region", "source", "created"], &rows)
            );
        }
        let failing = report.failing();
        println!(
            "\n{} rows, {} late or without a backup",
            report.rows.len(),
            failing
        );
    }
    Ok(if report.failing() > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Which of the sources named by backups still exist (terminated instances do not).
async fn existing_sources(ctx: &Ctx, backups: &[Backup]) -> Result<HashSet<String>> {
    let ids: BTreeSet<&str> = backups.iter().filter_map(|b| b.source.as_deref()).collect();
    let instances: Vec<String> = ids
        .iter()
        .filter(|i| i.starts_with("i-"))
        .map(|s| s.to_string())
        .collect();
    let volumes: Vec<String> = ids
        .iter()
        .filter(|i| i.starts_with("vol-"))
        .map(|s| s.to_string())
        .collect();
    let ec2 = ctx.clients.home();
    let mut existing = HashSet::new();
    // EC2 takes at most 200 values in one filter.
    for chunk in instances.chunks(200) {
        for s in ec2
            .instances(&ctx.keys, Some(chunk))
            .await
            .map_err(|e| e.to_string())?
        {
            if s.state != "terminated" && s.state != "shutting-down" {
                existing.insert(s.id);
            }
        }
    }
    for chunk in volumes.chunks(200) {
        for s in ec2
            .volumes(&ctx.keys, Some(chunk))
            .await
            .map_err(|e| e.to_string())?
        {
            existing.insert(s.id);
        }
    }
    Ok(existing)
}

async fn backup_command(
    ctx: &Ctx,
    ids: &[String],
    wait: bool,
    copies: bool,
    timeout: Duration,
    dry_run: bool,
) -> Result<ExitCode> {
    let mut instances = Vec::new();
    let mut volumes = Vec::new();
    for id in ids {
        if ResourceKind::Instance.is_id(id) {
            instances.push(id.clone());
        } else if ResourceKind::Volume.is_id(id) {
            volumes.push(id.clone());
        } else {
            return Err(format!(
                "{id} is neither an instance id (i-...) nor a volume id (vol-...)"
            ));
        }
    }
    let config = Config {
        dry_run: dry_run || ctx.config.dry_run,
        ..ctx.config.clone()
    };
    let ec2 = ctx.clients.home();
    // Each run of the command is a request of its own: it always backs up now.
    let request_id = format!(
        "cli-{}-{}",
        Utc::now().timestamp_millis(),
        std::process::id()
    );
    let mut made: Vec<(String, String)> = Vec::new();
    let mut failed = false;
    for (kind, list) in [
        (ResourceKind::Instance, instances),
        (ResourceKind::Volume, volumes),
    ] {
        if list.is_empty() {
            continue;
        }
        // The functions' own on-demand path, with its typed report.
        let request = shared::event::CreateRequest::OnDemand { ids: list };
        let report = shared::create::run(kind, &config, &ec2, request, &request_id, Utc::now())
            .await
            .map_err(|e| e.to_string())?;
        for c in &report.created {
            match &c.id {
                Some(id) => {
                    println!("{}: created {id}", c.source);
                    made.push((c.source.clone(), id.clone()));
                }
                None => println!("{}: would create {}", c.source, c.name),
            }
        }
        for s in &report.skipped {
            println!("{}: skipped: {}", s.source, s.reason);
        }
        for f in &report.failed {
            println!("{}: FAILED: {}", f.source, f.error);
        }
        for w in &report.warnings {
            println!(
                "{}: warning: {}={:?}: {}",
                w.resource, w.key, w.value, w.message
            );
        }
        failed |= !report.failed.is_empty();
    }
    if wait && !made.is_empty() {
        let start = Instant::now();
        for (source, id) in &made {
            wait_for_backup(ctx, ctx.home(), id, None, start, timeout).await?;
            eprintln!(
                "{source}: {id} is available ({}s)",
                start.elapsed().as_secs()
            );
            if copies {
                let backups = ctx
                    .clients
                    .home()
                    .managed_backups(&ctx.keys, &ctx.config.deployment_name)
                    .await
                    .map_err(|e| e.to_string())?;
                let backup = backups.iter().find(|b| &b.id == id).ok_or_else(|| {
                    format!(
                        "{id} is no longer among this deployment's backups in {}",
                        ctx.home()
                    )
                })?;
                let copy_to = ctx
                    .keys
                    .get(&backup.tags, shared::tags::key::COPY_TO)
                    .unwrap_or_default();
                let regions = shared::region::parse_region_list(copy_to)
                    .map_err(|e| format!("{id}: its copy-to tag: {e}"))?;
                if regions.is_empty() {
                    eprintln!("{source}: {id} has no DR regions to wait for");
                }
                for region in regions.iter().filter(|r| *r != ctx.home()) {
                    let copy = wait_for_backup(ctx, region, id, Some(id), start, timeout).await?;
                    eprintln!(
                        "{source}: copy {copy} in {region} is available ({}s)",
                        start.elapsed().as_secs()
                    );
                }
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Waits until the backup `id` (or, with `copy_of`, the copy of it) is usable in `region`;
/// returns its id.
async fn wait_for_backup(
    ctx: &Ctx,
    region: &Region,
    id: &str,
    copy_of: Option<&str>,
    start: Instant,
    timeout: Duration,
) -> Result<String> {
    let ec2 = ctx.clients.region(region);
    let mut delay = Duration::from_millis(500);
    loop {
        let backups = ec2
            .managed_backups(&ctx.keys, &ctx.config.deployment_name)
            .await
            .map_err(|e| e.to_string())?;
        let found = backups.iter().find(|b| match copy_of {
            Some(original) => b.copy_of.as_deref() == Some(original),
            None => b.id == id,
        });
        match found {
            Some(b) if b.is_usable() => return Ok(b.id.clone()),
            Some(b) if matches!(b.state.as_str(), "failed" | "error") => {
                return Err(format!("{} in {region} is {}", b.id, b.state));
            }
            found => {
                if start.elapsed() > timeout {
                    return Err(format!(
                        "{} in {region} not available after {}s",
                        found.map(|b| b.id.as_str()).unwrap_or(id),
                        timeout.as_secs()
                    ));
                }
                eprintln!(
                    "  waiting for {} in {region}: {} ({}s)",
                    copy_of
                        .map(|o| format!("the copy of {o}"))
                        .unwrap_or_else(|| id.to_string()),
                    found.map(|b| b.state.as_str()).unwrap_or("not there yet"),
                    start.elapsed().as_secs()
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(15));
            }
        }
    }
}

struct InstanceOverrides {
    instance_type: Option<String>,
    subnet: Option<String>,
    security_groups: Vec<String>,
    key_name: Option<String>,
}

struct InstancePlan {
    launch: Launch,
    backup_created: String,
}

impl InstancePlan {
    fn describe(&self) -> String {
        format!(
            "type {}, subnet {}, security groups [{}], key {}",
            self.launch.instance_type,
            self.launch.subnet_id.as_deref().unwrap_or("(default)"),
            self.launch.security_group_ids.join(", "),
            self.launch.key_name.as_deref().unwrap_or("(none)")
        )
    }
}

/// The launch of a restore: the chosen backup, and for what the user did not give, the
/// original's type (from wherever it lives) and its network (only in its own region).
async fn plan_instance_restore(
    ctx: &Ctx,
    instance_id: &str,
    region: &Region,
    image: Option<&str>,
    before: Option<DateTime<Utc>>,
    overrides: InstanceOverrides,
) -> Result<InstancePlan> {
    let backups = backups_of_kind(ctx, region, Kind::Image).await?;
    let backup = choose_backup(&backups, instance_id, region, image, before)?;
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
        .map_err(|e| e.to_string())?
        .unwrap_or_default();
    let same_region = &source_region == region;
    let instance_type = overrides
        .instance_type
        .or(shape.instance_type)
        .ok_or_else(|| format!("{instance_id} no longer exists to take its instance type from: give --instance-type"))?;
    let launch = Launch {
        image_id: backup.id.clone(),
        instance_type,
        subnet_id: overrides
            .subnet
            .or(if same_region { shape.subnet_id } else { None }),
        security_group_ids: if overrides.security_groups.is_empty() && same_region {
            shape.security_group_ids
        } else {
            overrides.security_groups
        },
        key_name: overrides
            .key_name
            .or(if same_region { shape.key_name } else { None }),
        tags: restored_tags(ctx, backup),
    };
    Ok(InstancePlan {
        launch,
        backup_created: created(backup),
    })
}

#[derive(serde::Serialize)]
struct DrillRow {
    resource: String,
    kind: &'static str,
    region: Region,
    backup: Option<String>,
    rpo_minutes: Option<i64>,
    restored: bool,
    restore_seconds: Option<f64>,
    error: Option<String>,
}

async fn drill_command(
    ctx: &Ctx,
    only: &[String],
    as_json: bool,
    timeout: Duration,
    dry_run: bool,
) -> Result<ExitCode> {
    let only: Vec<Region> = only
        .iter()
        .map(|r| Region::parse(r).map_err(|e| format!("--region: {e}")))
        .collect::<Result<_>>()?;
    if only.contains(ctx.home()) {
        return Err(format!(
            "--region {}: a drill restores in DR regions, not in the home region",
            ctx.home()
        ));
    }
    let marks = drill_marks(ctx);
    let resources = resources(ctx).await?;
    let mut rows = Vec::new();
    let mut by_region: BTreeSet<Region> = BTreeSet::new();
    for (_, r) in &resources {
        let regions: Vec<Region> = if only.is_empty() {
            r.copy_to.clone()
        } else {
            only.clone()
        };
        by_region.extend(regions.into_iter().filter(|x| x != ctx.home()));
    }
    if dry_run {
        for region in &by_region {
            let backups = ctx
                .clients
                .region(region)
                .managed_backups(&ctx.keys, &ctx.config.deployment_name)
                .await
                .map_err(|e| e.to_string())?;
            for (_, r) in resources
                .iter()
                .filter(|(_, r)| only.contains(region) || r.copy_to.contains(region))
            {
                let kind = if r.kind == "instance" {
                    Kind::Image
                } else {
                    Kind::Snapshot
                };
                let of_kind: Vec<Backup> =
                    backups.iter().filter(|b| b.kind == kind).cloned().collect();
                match choose_backup(&of_kind, &r.id, region, None, None) {
                    Ok(b) => println!(
                        "dry run: would restore {} in {region} from {} ({})",
                        r.id,
                        b.id,
                        created(b)
                    ),
                    Err(e) => println!("dry run: {}: {e}", r.id),
                }
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut cleanup = Cleanup::default();
    for region in &by_region {
        clean_drill_leftovers(ctx, region, &marks, &mut cleanup).await;
    }
    for region in &by_region {
        let backups = match ctx
            .clients
            .region(region)
            .managed_backups(&ctx.keys, &ctx.config.deployment_name)
            .await
        {
            Ok(b) => b,
            Err(e) => {
                for (_, r) in resources
                    .iter()
                    .filter(|(_, r)| only.contains(region) || r.copy_to.contains(region))
                {
                    rows.push(DrillRow {
                        resource: r.id.clone(),
                        kind: r.kind,
                        region: region.clone(),
                        backup: None,
                        rpo_minutes: None,
                        restored: false,
                        restore_seconds: None,
                        error: Some(e.to_string()),
                    });
                }
                continue;
            }
        };
        for (source, r) in resources
            .iter()
            .filter(|(_, r)| only.contains(region) || r.copy_to.contains(region))
        {
            rows.push(drill_one(ctx, source, r, region, &backups, &marks, timeout).await);
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
    if as_json {
        let report = json!({
            "rows": rows,
            "leftovers_cleaned": cleanup.cleaned,
            "volumes_deleted_after": after.cleaned,
            "cleanup_errors": cleanup_errors,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
        );
    } else {
        let table_rows: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    r.resource.clone(),
                    r.region.to_string(),
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
                    "resource", "region", "backup", "rpo", "restored", "time", "error"
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
        for e in &cleanup_errors {
            println!("cleanup FAILED: {e}");
        }
        println!("\n{} restores, {} failed", rows.len(), failures);
    }
    Ok(if failures > 0 || !cleanup_errors.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
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
async fn drill_one(
    ctx: &Ctx,
    source: &Source,
    r: &Resource,
    region: &Region,
    backups: &[Backup],
    marks: &[(String, String)],
    timeout: Duration,
) -> DrillRow {
    let kind = if r.kind == "instance" {
        Kind::Image
    } else {
        Kind::Snapshot
    };
    let mut row = DrillRow {
        resource: r.id.clone(),
        kind: r.kind,
        region: region.clone(),
        backup: None,
        rpo_minutes: None,
        restored: false,
        restore_seconds: None,
        error: None,
    };
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
    let created = if kind == Kind::Image {
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
            tags,
            ..Launch::default()
        })
        .await
    } else {
        ec2.create_volume_from(&NewVolume {
            snapshot_id: backup.id.clone(),
            availability_zone: format!("{region}a"),
            volume_type: None,
            tags,
        })
        .await
    };
    let id = match created {
        Ok(id) => id,
        Err(e) => {
            row.error = Some(e.to_string());
            return row;
        }
    };
    let want = if kind == Kind::Image {
        "running"
    } else {
        "available"
    };
    match ec2.wait_for(&id, want, timeout).await {
        Ok(()) => {
            row.restored = true;
            row.restore_seconds = Some((start.elapsed().as_secs_f64() * 10.0).round() / 10.0);
        }
        Err(e) => row.error = Some(e.to_string()),
    }
    let cleanup = if kind == Kind::Image {
        ec2.terminate(&id).await
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
