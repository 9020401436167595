//! `ec2-backup status`: per resource and backup region, the newest usable backup, whether it
//! meets the interval, copies still to come, next expiry, holds and the last drill there (from
//! the drilled backups' tags); then the backups whose source is gone. Exit code 1 when any row
//! is late or has no backup.

use super::context::Ctx;
use crate::error::{CliError, Result};
use crate::output::{age, json, table};
use chrono::{DateTime, Utc};
use shared::Region;
use shared::backup::{DrillMark, DrillResult};
use shared::status::{Listing, Rpo, Status, gather, status};
use shared::tags::format_time;
use std::process::ExitCode;

pub async fn run(ctx: &Ctx, extra: &[Region]) -> Result<ExitCode> {
    let now = Utc::now();
    let inputs = gather(
        &ctx.config,
        &ctx.keys,
        &ctx.clients,
        extra,
        Listing::Backups,
    )
    .await
    .map_err(CliError::from)?;
    let report = status(
        ctx.home(),
        extra,
        &inputs.resources,
        &inputs.backups,
        &inputs.existing_sources,
        now,
    );
    if ctx.json() {
        json(&report)?;
    } else {
        print_table(&report, now);
    }
    Ok(if report.failing() > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `passed 2d3h ago (143s)`, `FAILED 5h12m ago`, `-` where none.
fn last_drill(mark: Option<&DrillMark>, now: DateTime<Utc>) -> String {
    let Some(mark) = mark else {
        return "-".into();
    };
    let result = match mark.result {
        DrillResult::Passed => "passed".to_string(),
        other => other.as_str().to_uppercase(),
    };
    let when = age((now - mark.at).num_minutes().max(0));
    match mark.restore_seconds {
        Some(s) => format!("{result} {when} ago ({s}s)"),
        None => format!("{result} {when} ago"),
    }
}

fn print_table(report: &Status, now: DateTime<Utc>) {
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
                last_drill(r.last_drill.as_ref(), now),
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
                "holds",
                "last drill"
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
    println!(
        "\n{} rows, {} late or without a backup",
        report.rows.len(),
        report.failing()
    );
}
