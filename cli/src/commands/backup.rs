//! `ec2-backup backup`: the functions' own on-demand path (same tags, same checks), then, with
//! `--wait`, the SDK's waiters on each backup by id and, with `--copies`, on its copy in every
//! DR region by its `P:copy-of` tag: one describe per poll, never a re-listing of every backup.

use super::context::Ctx;
use crate::error::{CliError, Result};
use crate::output::json;
use crate::values::SourceId;
use chrono::Utc;
use serde::Serialize;
use shared::Config;
use shared::Region;
use shared::create::{CreateRequest, ResourceKind};
use shared::report::{Created, Failed, Skipped};
use shared::tags::{Kind, Warning};
use std::process::ExitCode;
use std::time::{Duration, Instant};

pub struct Options {
    pub wait: bool,
    pub copies: bool,
    pub timeout: Duration,
    pub dry_run: bool,
}

/// Both create reports (instances and volumes) in one, and what became available.
#[derive(Debug, Default, Serialize)]
struct BackupReport {
    created: Vec<Created>,
    skipped: Vec<Skipped>,
    failed: Vec<Failed>,
    warnings: Vec<Warning>,
    dry_run: bool,
    /// With `--wait`: each backup, and with `--copies` each copy, once it is usable.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    available: Vec<Available>,
    /// Each backup made, with its kind (what `--wait` waits for): the source, the backup.
    #[serde(skip)]
    made: Vec<(Kind, String, String)>,
}

#[derive(Debug, Serialize)]
struct Available {
    source: String,
    id: String,
    region: Region,
    /// For a copy: the backup it is a copy of.
    #[serde(skip_serializing_if = "Option::is_none")]
    copy_of: Option<String>,
    seconds: u64,
}

pub async fn run(ctx: &Ctx, ids: &[SourceId], options: Options) -> Result<ExitCode> {
    let config = Config {
        dry_run: options.dry_run || ctx.config.dry_run,
        ..ctx.config.clone()
    };
    let mut report = BackupReport {
        dry_run: config.dry_run,
        ..BackupReport::default()
    };
    // Each run of the command is a request of its own: it always backs up now (a retry of a
    // Lambda request reuses its backups; a person running the command again wants new ones).
    let request_id = format!(
        "cli-{}-{}",
        Utc::now().timestamp_millis(),
        std::process::id()
    );
    for kind in [ResourceKind::Instance, ResourceKind::Volume] {
        let list: Vec<String> = ids
            .iter()
            .filter(|s| s.kind == kind)
            .map(|s| s.id.clone())
            .collect();
        if list.is_empty() {
            continue;
        }
        let request = CreateRequest::OnDemand { ids: list };
        let home = ctx.clients.home();
        let made = shared::create::run(kind, &config, &home, request, &request_id, Utc::now())
            .await
            .map_err(CliError::aws(format!(
                "backing up {}s in {}",
                kind.resource_type(),
                ctx.home()
            )))?;
        report.made.extend(
            made.created
                .iter()
                .filter_map(|c| Some((kind.backup_kind(), c.source.clone(), c.id.clone()?))),
        );
        report.created.extend(made.created);
        report.skipped.extend(made.skipped);
        report.failed.extend(made.failed);
        report.warnings.extend(made.common.warnings);
    }
    if !ctx.json() {
        print_lines(&report);
    }
    if options.wait {
        wait(ctx, &mut report, options.copies, options.timeout).await?;
    }
    if ctx.json() {
        json(&report)?;
    }
    Ok(if report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_lines(report: &BackupReport) {
    for c in &report.created {
        match &c.id {
            Some(id) => println!("{}: created {id}", c.source),
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
}

/// Waits, within one `timeout` for everything, until each backup made is usable and, with
/// `copies`, until its copy is usable in each of its `P:copy-to` regions.
async fn wait(ctx: &Ctx, report: &mut BackupReport, copies: bool, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    let left = || timeout.saturating_sub(start.elapsed());
    let home = ctx.home().clone();
    let ec2 = ctx.clients.home();
    for (kind, source, id) in report.made.clone() {
        eprintln!("  waiting for {id} in {home}");
        let waited = match kind {
            Kind::Image => ec2.wait_until_image_available(&id, left()).await,
            Kind::Snapshot => ec2.wait_until_snapshot_completed(&id, left()).await,
        };
        let tags = waited.map_err(CliError::aws(format!("waiting for {id} of {source}")))?;
        eprintln!(
            "{source}: {id} is available ({}s)",
            start.elapsed().as_secs()
        );
        report.available.push(Available {
            source: source.clone(),
            id: id.clone(),
            region: home.clone(),
            copy_of: None,
            seconds: start.elapsed().as_secs(),
        });
        if !copies {
            continue;
        }
        let copy_to = ctx
            .keys
            .get(&tags, shared::tags::key::COPY_TO)
            .unwrap_or_default();
        let regions = shared::region::parse_region_list(copy_to).map_err(|reason| {
            CliError::bad_input(format!("{id}: its copy-to tag {copy_to:?}"), reason)
        })?;
        if regions.is_empty() {
            eprintln!("{source}: {id} has no DR regions to wait for");
        }
        for region in regions.iter().filter(|r| **r != home) {
            eprintln!("  waiting for the copy of {id} in {region}");
            let copy = ctx
                .clients
                .region(region)
                .wait_until_copy_available(
                    &ctx.keys,
                    &ctx.config.deployment_name,
                    kind,
                    &id,
                    left(),
                )
                .await
                .map_err(CliError::aws(format!(
                    "waiting for the copy of {id} in {region}"
                )))?;
            eprintln!(
                "{source}: copy {copy} in {region} is available ({}s)",
                start.elapsed().as_secs()
            );
            report.available.push(Available {
                source: source.clone(),
                id: copy,
                region: region.clone(),
                copy_of: Some(id.clone()),
                seconds: start.elapsed().as_secs(),
            });
        }
    }
    Ok(())
}
