//! `ec2-backup drill`: the drill function's own run ([`shared::drill::Drill`]) from a shell,
//! without a work queue: it waits for its restores in-process (looking again every few
//! seconds, up to `DRILL_TIMEOUT`), so the choice of what is due, the restores, the judging, the
//! clean-up, the evidence and the tags on the drilled backups are the function's. This module
//! only builds the run from the flags and prints its report. Exit code 1 when any restore did
//! not pass or the run itself failed somewhere (a clean-up, the evidence, a region unread).

use super::context::Ctx;
use super::placement::given_subnet;
use crate::error::{CliError, Result};
use crate::output::{age, json, table};
use chrono::Utc;
use shared::Region;
use shared::backup::DrillResult;
use shared::drill::record::{DrillRecord, day_prefix};
use shared::drill::settings::DrillSettings;
use shared::drill::{Drill, DrillReport, DrillRequest, Run};
use shared::duration::Duration;
use shared::invocation::{Function, Setting};
use shared::s3::Evidence;
use shared::tags::format_time;
use std::process::ExitCode;

/// Without a work queue: how long the run waits between two looks at its restores.
const POLL: std::time::Duration = std::time::Duration::from_secs(5);

pub struct Options {
    pub resources: Vec<String>,
    pub regions: Vec<Region>,
    pub subnet: Option<String>,
    /// Overrides `DRILL_TIMEOUT`.
    pub timeout: Option<Duration>,
    /// `--bucket`, else `EVIDENCE_BUCKET` (clap reads it).
    pub bucket: Option<String>,
    pub dry_run: bool,
}

/// The drill's settings as the function reads them, with the flags over the variables.
async fn settings(ctx: &Ctx, options: &Options) -> Result<DrillSettings> {
    let mut settings = DrillSettings::from_lookup(
        |name| match name {
            "EVIDENCE_BUCKET" => options.bucket.clone(),
            _ => std::env::var(name).ok(),
        },
        false,
    )?;
    if let Some(timeout) = options.timeout {
        settings.timeout = timeout;
    }
    if let Some(subnet) = &options.subnet {
        let [region] = options.regions.as_slice() else {
            return Err(CliError::bad_input(
                format!("--subnet {subnet}"),
                "a subnet belongs to one region: give exactly one --region with it",
            ));
        };
        // Asked for by name: a wrong one is the user's to fix before anything is launched.
        given_subnet(&ctx.clients.region(region), region, subnet).await?;
        settings.subnets.insert(region.clone(), subnet.clone());
    }
    Ok(settings)
}

pub async fn run(ctx: &Ctx, options: Options) -> Result<ExitCode> {
    let settings = settings(ctx, &options).await?;
    let config = shared::Config {
        dry_run: ctx.config.dry_run || options.dry_run,
        ..ctx.config.clone()
    };
    let now = Utc::now();
    let drill = Drill {
        setting: Setting {
            config: &config,
            queue: None,
            now,
        },
        settings: &settings,
        clients: ctx.clients.clone(),
        evidence: settings
            .evidence_bucket
            .as_deref()
            .map(|bucket| Evidence::new(&ctx.sdk, bucket)),
        run: Run::new(now, &format!("cli{}", std::process::id())),
        poll: POLL,
        // No queue: never handed on.
        recheck_seconds: 0,
        started: std::time::Instant::now(),
    };
    let request = DrillRequest {
        resource_ids: (!options.resources.is_empty()).then(|| dedup(options.resources.clone())),
        regions: (!options.regions.is_empty()).then(|| dedup(options.regions.clone())),
        ..DrillRequest::default()
    };
    if !ctx.json() && !config.dry_run {
        eprintln!(
            "drill run {}: restoring what is due, then waiting up to {} for each restore",
            drill.run.id, settings.timeout
        );
    }
    let report = drill
        .run(request)
        .await
        .map_err(CliError::aws("drilling"))?;
    let failing = report
        .records
        .iter()
        .any(|r| r.result != DrillResult::Passed)
        || !report.failed.is_empty();
    if ctx.json() {
        json(&report)?;
    } else if config.dry_run {
        print_dry_run(&report);
    } else {
        print_report(&report, &drill, &config);
    }
    Ok(if failing {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn dedup<T: PartialEq>(items: Vec<T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(items.len());
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

fn print_dry_run(report: &DrillReport) {
    for p in &report.would_restore {
        println!(
            "dry run: would restore {} in {} from {} (made {})",
            p.resource,
            p.region,
            p.backup,
            format_time(p.backup_created_at)
        );
    }
    print_not_drilled(report);
    if report.would_restore.is_empty() {
        println!("dry run: nothing to restore: no resource asked for is due");
    }
}

fn print_not_drilled(report: &DrillReport) {
    for n in &report.not_drilled {
        println!("not drilled: {} in {}: {}", n.resource, n.region, n.reason);
    }
}

/// One row per record: what was restored, how old the data was, how long it took, the result.
fn row(r: &DrillRecord) -> Vec<String> {
    let error = match (&r.error_code, &r.error) {
        // An AWS error's message names its code already.
        (Some(code), Some(message)) if !message.contains(code.as_str()) => {
            format!("{code}: {message}")
        }
        (code, message) => message.clone().or(code.clone()).unwrap_or_default(),
    };
    vec![
        r.resource.clone(),
        r.name.clone().unwrap_or_default(),
        r.region.to_string(),
        r.backup.clone(),
        age(r.rpo_seconds.max(0) / 60),
        r.rto_seconds
            .map_or_else(|| "-".into(), |s| format!("{s}s")),
        match r.result {
            DrillResult::Passed => "passed".into(),
            other => other.as_str().to_uppercase(),
        },
        r.restored.clone().unwrap_or_else(|| "-".into()),
        error,
    ]
}

fn print_report(report: &DrillReport, drill: &Drill<'_>, config: &shared::Config) {
    if !report.records.is_empty() {
        let rows: Vec<Vec<String>> = report.records.iter().map(row).collect();
        println!(
            "{}",
            table(
                &[
                    "resource", "name", "region", "backup", "rpo", "rto", "result", "restored",
                    "error"
                ],
                &rows
            )
        );
        println!();
    }
    print_not_drilled(report);
    for f in &report.failed {
        let region = f
            .region
            .as_ref()
            .map(|r| format!(" in {r}"))
            .unwrap_or_default();
        println!("FAILED: {}{region}: {}", f.source, f.error);
    }
    let c = &report.counts;
    if report.records.is_empty() {
        println!(
            "nothing drilled: no opted-in resource asked for is due (a pass within DRILL_INTERVAL, {}, counts)",
            config.drill_interval
        );
    } else {
        println!(
            "{} restores: {} passed, {} failed, {} timed out",
            report.records.len(),
            c.passed,
            c.failed,
            c.timed_out
        );
    }
    if c.cleaned_up > 0 {
        let s = if c.cleaned_up == 1 { "" } else { "s" };
        println!("{} drill resource{s} cleaned up", c.cleaned_up);
    }
    match &drill.evidence {
        Some(e) if !report.records.is_empty() => println!(
            "evidence: s3://{}/{}{}/",
            e.bucket(),
            day_prefix(drill.run.started_at),
            drill.run.id
        ),
        Some(_) => {}
        None => println!(
            "no evidence bucket (--bucket or EVIDENCE_BUCKET): the results are kept only in the backups' tags"
        ),
    }
}
