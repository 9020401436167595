//! `ec2-backup status`: per resource and backup region, the newest usable backup, whether it
//! meets the interval, copies still to come, next expiry and holds; then the backups whose
//! source is gone. Exit code 1 when any row is late or has no backup.

use super::context::Ctx;
use crate::error::{CliError, Result};
use crate::output::{age, json, table};
use chrono::Utc;
use shared::Region;
use shared::backup::Backup;
use shared::status::{Resource, Rpo, Status, status};
use shared::tags::format_time;
use std::collections::{BTreeSet, HashSet};
use std::process::ExitCode;

pub async fn run(ctx: &Ctx, extra: &[Region]) -> Result<ExitCode> {
    let now = Utc::now();
    let resources: Vec<Resource> = ctx.resources().await?.into_iter().map(|(_, r)| r).collect();
    let mut regions: BTreeSet<Region> = BTreeSet::from([ctx.home().clone()]);
    regions.extend(ctx.config.copy_to_regions.iter().cloned());
    regions.extend(resources.iter().flat_map(|r| r.copy_to.iter().cloned()));
    regions.extend(extra.iter().cloned());
    let mut backups = Vec::new();
    for region in &regions {
        backups.extend(ctx.backups(region).await?);
    }
    let existing = existing_sources(ctx, &backups).await?;
    let report = status(ctx.home(), extra, &resources, &backups, &existing, now);
    if ctx.json() {
        json(&report)?;
    } else {
        print_table(&report);
    }
    Ok(if report.failing() > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_table(report: &Status) {
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
    println!(
        "\n{} rows, {} late or without a backup",
        report.rows.len(),
        report.failing()
    );
}

/// Which of the sources named by backups still exist (terminated instances do not).
async fn existing_sources(ctx: &Ctx, backups: &[Backup]) -> Result<HashSet<String>> {
    let ids: BTreeSet<&str> = backups.iter().filter_map(|b| b.source.as_deref()).collect();
    let of = |prefix: &str| -> Vec<String> {
        ids.iter()
            .filter(|i| i.starts_with(prefix))
            .map(|s| s.to_string())
            .collect()
    };
    let (instances, volumes) = (of("i-"), of("vol-"));
    let ec2 = ctx.clients.home();
    let home = ctx.home();
    let mut existing = HashSet::new();
    for chunk in instances.chunks(shared::ec2::MAX_FILTER_VALUES) {
        let found = ec2
            .instances(&ctx.keys, Some(chunk))
            .await
            .map_err(CliError::aws(format!(
                "looking up the backed-up instances in {home}"
            )))?;
        existing.extend(
            found
                .into_iter()
                .filter(|s| s.state != "terminated" && s.state != "shutting-down")
                .map(|s| s.id),
        );
    }
    for chunk in volumes.chunks(shared::ec2::MAX_FILTER_VALUES) {
        let found = ec2
            .volumes(&ctx.keys, Some(chunk))
            .await
            .map_err(CliError::aws(format!(
                "looking up the backed-up volumes in {home}"
            )))?;
        existing.extend(found.into_iter().map(|s| s.id));
    }
    Ok(existing)
}
