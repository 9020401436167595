//! `ec2-backup evidence`: the drill records of the evidence bucket (`drills/YYYY/MM/DD/...`,
//! one JSON record per object as the drill writes them; JSON Lines are read too), per resource
//! and region: every drill of the period, the last pass, and whether the resource is proven
//! (each of its drill regions has a passed drill within `DRILL_INTERVAL`); then the summary
//! over the protected resources as EC2 lists them now. Printed as a table, JSON, or a markdown
//! document to paste into an audit.
//!
//! An object that is not a drill record is named on stderr and skipped; one that cannot be read
//! is named too, and makes the exit code 1. A bucket that cannot be listed is an error (2).

use super::context::Ctx;
use crate::cli::Format;
use crate::error::{CliError, Result};
use crate::output::{age, json, table};
use chrono::{DateTime, TimeDelta, Utc};
use futures::stream::{self, StreamExt};
use serde::Serialize;
use shared::Region;
use shared::backup::DrillResult;
use shared::drill::plan::drill_regions;
use shared::drill::record::{DrillRecord, EVIDENCE_PREFIX, day_prefix};
use shared::duration::Duration;
use shared::s3::Evidence;
use shared::status::Resource;
use shared::tags::format_time;
use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;

/// Objects read at once.
const READS_IN_FLIGHT: usize = 16;

pub struct Options {
    pub since: Duration,
    pub resources: Vec<String>,
    /// `--bucket`, else `EVIDENCE_BUCKET` (clap reads it).
    pub bucket: Option<String>,
}

/// Every drill of one resource in one region.
#[derive(Debug, Serialize)]
struct Group {
    resource: String,
    name: Option<String>,
    region: Region,
    /// Protected now (opted in, and this is one of its drill regions).
    protected: bool,
    /// A passed drill within the interval.
    proven: bool,
    /// The drills that started in the period, oldest first.
    drills: Vec<DrillRecord>,
    /// The newest passed drill read (in the period, or the interval when that is longer).
    last_passed: Option<DrillRecord>,
}

#[derive(Debug, Serialize)]
struct Summary {
    /// Protected resources whose every drill region has a passed drill within the interval.
    proven: usize,
    protected: usize,
    interval: String,
}

#[derive(Debug, Serialize)]
struct Report {
    bucket: String,
    /// The period: drills that started at or after `since`, up to `until`.
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    period: String,
    resources: Vec<Group>,
    summary: Summary,
    /// Objects that are not drill records (skipped), and objects that could not be read.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    skipped: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    unreadable: Vec<String>,
}

pub async fn run(ctx: &Ctx, options: Options) -> Result<ExitCode> {
    let bucket = options.bucket.clone().ok_or_else(|| {
        CliError::bad_input(
            "the evidence bucket",
            "none given: give --bucket or set EVIDENCE_BUCKET (the stack's output EvidenceBucketName)",
        )
    })?;
    let evidence = Evidence::new(&ctx.sdk, &bucket);
    let now = Utc::now();
    let interval = ctx.config.drill_interval;
    let since = now - options.since.to_delta();
    // The proof needs the interval's records, whatever the period shown.
    let proof_from = now - interval.to_delta();
    let read_from = since.min(proof_from);
    let only: BTreeSet<&str> = options.resources.iter().map(String::as_str).collect();

    // A run's records are under the day it began: the day before the first one read, too.
    let start_after = day_prefix(read_from - TimeDelta::days(1));
    let keys = evidence
        .keys(EVIDENCE_PREFIX, Some(&start_after))
        .await
        .map_err(CliError::aws(format!(
            "listing the drill records in s3://{bucket}/{EVIDENCE_PREFIX}"
        )))?;
    let keys: Vec<String> = keys
        .into_iter()
        .filter(|k| only.is_empty() || named_resource(k).is_none_or(|r| only.contains(r)))
        .collect();
    let read = read_all(&evidence, keys).await;
    let mut records: Vec<DrillRecord> = read
        .records
        .into_iter()
        .filter(|r| r.started_at >= read_from)
        .filter(|r| only.is_empty() || only.contains(r.resource.as_str()))
        .collect();
    records.sort_by(|a, b| {
        (&a.resource, &a.region, a.started_at).cmp(&(&b.resource, &b.region, b.started_at))
    });

    let protected: Vec<Resource> = ctx
        .resources()
        .await?
        .into_iter()
        .map(|(_, r)| r)
        .filter(|r| only.is_empty() || only.contains(r.id.as_str()))
        .collect();
    let resources = groups(ctx.home(), &protected, records, since, proof_from);
    let report = Report {
        summary: Summary {
            proven: proven(ctx.home(), &protected, &resources),
            protected: protected.len(),
            interval: interval.to_string(),
        },
        resources,
        bucket,
        since,
        until: now,
        period: options.since.to_string(),
        skipped: read.skipped,
        unreadable: read.unreadable,
    };
    match ctx.format {
        Format::Json => json(&report)?,
        Format::Markdown => print!("{}", markdown(&report, ctx)),
        Format::Table => print!("{}", text(&report)),
    }
    Ok(if report.unreadable.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The resource an evidence key names (`.../<run>/<region>/<resource>.json`), when it does.
fn named_resource(key: &str) -> Option<&str> {
    let file = key.rsplit('/').next()?;
    let id = file.strip_suffix(".json")?;
    (id.starts_with("i-") || id.starts_with("vol-")).then_some(id)
}

#[derive(Default)]
struct Read {
    records: Vec<DrillRecord>,
    skipped: Vec<String>,
    unreadable: Vec<String>,
}

/// Every object of `keys`, a few at a time: its records, or its key among the skipped (not a
/// drill record) or the unreadable (the GetObject failed), each named on stderr.
async fn read_all(evidence: &Evidence, keys: Vec<String>) -> Read {
    let bucket = evidence.bucket().to_string();
    let answers: Vec<(String, std::result::Result<String, shared::Error>)> = stream::iter(keys)
        .map(|key| async move {
            let body = evidence.get(&key).await;
            (key, body)
        })
        .buffer_unordered(READS_IN_FLIGHT)
        .collect()
        .await;
    let mut read = Read::default();
    for (key, body) in answers {
        match body {
            Ok(text) => match parse_records(&text) {
                Ok(records) => read.records.extend(records),
                Err(e) => {
                    eprintln!(
                        "ec2-backup: warning: s3://{bucket}/{key} is not a drill record ({e}): skipped"
                    );
                    read.skipped.push(key);
                }
            },
            Err(e) => {
                eprintln!("ec2-backup: warning: s3://{bucket}/{key} could not be read: {e}");
                read.unreadable.push(key);
            }
        }
    }
    read.skipped.sort();
    read.unreadable.sort();
    read
}

/// An object's records: one JSON record, or JSON Lines of them.
fn parse_records(text: &str) -> std::result::Result<Vec<DrillRecord>, serde_json::Error> {
    match serde_json::from_str::<DrillRecord>(text) {
        Ok(record) => Ok(vec![record]),
        Err(whole) => {
            let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
            if lines.len() < 2 {
                return Err(whole);
            }
            lines.into_iter().map(serde_json::from_str).collect()
        }
    }
}

/// The records by resource and region, with a group for each drill region of each protected
/// resource even without a record (an auditor sees the gap).
fn groups(
    home: &Region,
    protected: &[Resource],
    records: Vec<DrillRecord>,
    since: DateTime<Utc>,
    proof_from: DateTime<Utc>,
) -> Vec<Group> {
    let mut by: BTreeMap<(String, Region), Group> = BTreeMap::new();
    let group = |resource: &str, name: Option<String>, region: &Region| Group {
        resource: resource.to_string(),
        name,
        region: region.clone(),
        protected: false,
        proven: false,
        drills: Vec::new(),
        last_passed: None,
    };
    for r in protected {
        for region in drill_regions(home, &r.copy_to) {
            let g = by
                .entry((r.id.clone(), region.clone()))
                .or_insert_with(|| group(&r.id, r.name.clone(), &region));
            g.protected = true;
        }
    }
    for record in records {
        let g = by
            .entry((record.resource.clone(), record.region.clone()))
            .or_insert_with(|| group(&record.resource, record.name.clone(), &record.region));
        if g.name.is_none() {
            g.name = record.name.clone();
        }
        if record.result == DrillResult::Passed {
            if record.started_at >= proof_from {
                g.proven = true;
            }
            if g.last_passed
                .as_ref()
                .is_none_or(|l| l.started_at <= record.started_at)
            {
                g.last_passed = Some(record.clone());
            }
        }
        if record.started_at >= since {
            g.drills.push(record);
        }
    }
    by.into_values()
        // A resource no longer protected shows only when it was drilled in the period.
        .filter(|g| g.protected || !g.drills.is_empty())
        .collect()
}

/// The protected resources proven in each of their drill regions.
fn proven(home: &Region, protected: &[Resource], groups: &[Group]) -> usize {
    protected
        .iter()
        .filter(|r| {
            drill_regions(home, &r.copy_to).iter().all(|region| {
                groups
                    .iter()
                    .any(|g| g.resource == r.id && &g.region == region && g.proven)
            })
        })
        .count()
}

fn summary_line(report: &Report) -> String {
    format!(
        "{} of {} protected resources proven within DRILL_INTERVAL ({})",
        report.summary.proven, report.summary.protected, report.summary.interval
    )
}

fn rpo(r: &DrillRecord) -> String {
    age(r.rpo_seconds.max(0) / 60)
}

fn rto(r: &DrillRecord) -> String {
    r.rto_seconds
        .map_or_else(|| "-".into(), |s| format!("{s}s"))
}

fn error(r: &DrillRecord) -> String {
    match (&r.error_code, &r.error) {
        // An AWS error's message names its code already.
        (Some(code), Some(message)) if !message.contains(code.as_str()) => {
            format!("{code}: {message}")
        }
        (code, message) => message.clone().or(code.clone()).unwrap_or_default(),
    }
}

fn title(g: &Group) -> String {
    match &g.name {
        Some(name) => format!("{} ({name}) in {}", g.resource, g.region),
        None => format!("{} in {}", g.resource, g.region),
    }
}

fn last_passed(g: &Group) -> String {
    match &g.last_passed {
        Some(l) => format!(
            "last passed {} (RPO {}, RTO {})",
            format_time(l.started_at),
            rpo(l),
            rto(l)
        ),
        None => "no passed drill".into(),
    }
}

fn standing(g: &Group) -> &'static str {
    match (g.protected, g.proven) {
        (_, true) => "proven",
        (true, false) => "NOT PROVEN",
        (false, false) => "no longer protected",
    }
}

/// For a terminal: each resource and region, its drills, then the summary.
fn text(report: &Report) -> String {
    let mut out = format!(
        "drills in s3://{}/{EVIDENCE_PREFIX} since {} ({}):\n",
        report.bucket,
        format_time(report.since),
        report.period
    );
    for g in &report.resources {
        out.push_str(&format!(
            "\n{}: {}; {}\n",
            title(g),
            last_passed(g),
            standing(g)
        ));
        if g.drills.is_empty() {
            out.push_str("  no drill in the period\n");
            continue;
        }
        let rows: Vec<Vec<String>> = g
            .drills
            .iter()
            .map(|r| {
                vec![
                    format_time(r.started_at),
                    r.result.as_str().to_string(),
                    rpo(r),
                    rto(r),
                    r.backup.clone(),
                    error(r),
                ]
            })
            .collect();
        let t = table(
            &["started at", "result", "rpo", "rto", "backup", "error"],
            &rows,
        );
        for line in t.lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    out.push_str(&format!("\n{}\n", summary_line(report)));
    out
}

/// A markdown cell: no pipe or line break breaks the table.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// For an audit: the scope, the summary, a table of every resource and region, then each one's
/// drills.
fn markdown(report: &Report, ctx: &Ctx) -> String {
    let mut out = String::from("# Restore drill evidence\n\n");
    out.push_str(&format!(
        "- Deployment: `{}`, home region {}\n",
        ctx.config.deployment_name,
        ctx.home()
    ));
    out.push_str(&format!(
        "- Source: `s3://{}/{EVIDENCE_PREFIX}`\n",
        report.bucket
    ));
    out.push_str(&format!(
        "- Period: {} to {} ({})\n",
        format_time(report.since),
        format_time(report.until),
        report.period
    ));
    out.push_str(&format!("- **{}**\n", summary_line(report)));
    if !report.skipped.is_empty() || !report.unreadable.is_empty() {
        out.push_str(&format!(
            "- Objects not read as drill records: {}\n",
            report
                .skipped
                .iter()
                .chain(&report.unreadable)
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    out.push_str("\n## Summary\n\n");
    out.push_str(
        "| Resource | Name | Region | Drills | Passed | Last passed (UTC) | RTO | Status |\n",
    );
    out.push_str("|---|---|---|---|---|---|---|---|\n");
    for g in &report.resources {
        let passed = g
            .drills
            .iter()
            .filter(|r| r.result == DrillResult::Passed)
            .count();
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            cell(&g.resource),
            cell(g.name.as_deref().unwrap_or("")),
            g.region,
            g.drills.len(),
            passed,
            g.last_passed
                .as_ref()
                .map_or_else(|| "never".into(), |l| format_time(l.started_at)),
            g.last_passed.as_ref().map_or_else(|| "-".into(), rto),
            standing(g),
        ));
    }
    for g in &report.resources {
        let last = match &g.last_passed {
            Some(l) => format!(
                "Last passed drill: {} (RPO {}, RTO {}, backup `{}`); {}.",
                format_time(l.started_at),
                rpo(l),
                rto(l),
                l.backup,
                standing(g)
            ),
            None => format!("No passed drill; {}.", standing(g)),
        };
        out.push_str(&format!("\n## {}\n\n{last}\n\n", cell(&title(g))));
        if g.drills.is_empty() {
            out.push_str("No drill in the period.\n");
            continue;
        }
        out.push_str("| Started (UTC) | Result | RPO | RTO | Backup | Backup made (UTC) | Restored | Cleaned up (UTC) | Error |\n");
        out.push_str("|---|---|---|---|---|---|---|---|---|\n");
        for r in &g.drills {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                format_time(r.started_at),
                r.result,
                rpo(r),
                rto(r),
                cell(&r.backup),
                format_time(r.backup_created_at),
                cell(r.restored.as_deref().unwrap_or("-")),
                r.cleaned_up_at.map_or_else(|| "-".into(), format_time),
                cell(&error(r)),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::drill::record::{Restore, RestoreKind};
    use shared::tags::parse_time;

    fn t(text: &str) -> DateTime<Utc> {
        parse_time(text).unwrap()
    }

    fn r(name: &str) -> Region {
        Region::parse(name).unwrap()
    }

    fn record(resource: &str, region: &str, started: &str, result: DrillResult) -> DrillRecord {
        let started = t(started);
        let restore = Restore {
            resource: resource.into(),
            name: Some("web".into()),
            kind: RestoreKind::Instance,
            region: r(region),
            backup: "ami-0123456789abcdef0".into(),
            backup_created_at: started - TimeDelta::hours(2),
            started_at: started,
            restored: "i-0aaaaaaaaaaaaaaaa".into(),
        };
        DrillRecord::of(
            "run-1",
            &restore,
            result,
            None,
            started + TimeDelta::seconds(143),
        )
    }

    fn resource(id: &str, copy_to: &[&str]) -> Resource {
        Resource {
            id: id.into(),
            kind: "instance",
            name: None,
            interval: Duration::days(1),
            copy_to: copy_to.iter().map(|x| r(x)).collect(),
        }
    }

    #[test]
    fn a_resource_is_proven_when_each_drill_region_passed_within_the_interval() {
        let home = r("us-east-1");
        let protected = [
            resource("i-1", &["us-west-2", "eu-west-1"]),
            resource("i-2", &["us-west-2"]),
            resource("i-3", &[]),
        ];
        let records = vec![
            record(
                "i-1",
                "us-west-2",
                "2026-12-05T03:00:00Z",
                DrillResult::Passed,
            ),
            record(
                "i-1",
                "eu-west-1",
                "2026-12-04T03:00:00Z",
                DrillResult::Passed,
            ),
            // i-2 passed, but before the interval; failed since
            record(
                "i-2",
                "us-west-2",
                "2026-11-20T03:00:00Z",
                DrillResult::Passed,
            ),
            record(
                "i-2",
                "us-west-2",
                "2026-12-05T03:00:00Z",
                DrillResult::Failed,
            ),
            // a resource no longer protected
            record(
                "i-9",
                "us-west-2",
                "2026-12-05T03:00:00Z",
                DrillResult::Passed,
            ),
        ];
        let since = t("2026-11-06T03:00:00Z");
        let proof_from = t("2026-11-29T03:00:00Z");
        let g = groups(&home, &protected, records, since, proof_from);
        let names: Vec<(&str, &str, bool)> = g
            .iter()
            .map(|g| (g.resource.as_str(), g.region.as_str(), g.proven))
            .collect();
        assert_eq!(
            names,
            [
                ("i-1", "eu-west-1", true),
                ("i-1", "us-west-2", true),
                ("i-2", "us-west-2", false),
                ("i-3", "us-east-1", false),
                ("i-9", "us-west-2", true),
            ]
        );
        let i2 = &g[2];
        assert_eq!(i2.drills.len(), 2);
        assert_eq!(
            i2.last_passed.as_ref().unwrap().started_at,
            t("2026-11-20T03:00:00Z")
        );
        assert!(!g[4].protected);
        assert_eq!(proven(&home, &protected, &g), 1);
    }

    #[test]
    fn keys_name_their_resource_and_an_object_may_hold_json_lines() {
        assert_eq!(
            named_resource("drills/2026/12/06/run/us-west-2/i-0123456789abcdef0.json"),
            Some("i-0123456789abcdef0")
        );
        assert_eq!(named_resource("drills/2026/12/06/run.jsonl"), None);
        let a = record(
            "i-1",
            "us-west-2",
            "2026-12-05T03:00:00Z",
            DrillResult::Passed,
        );
        let one = serde_json::to_string(&a).unwrap();
        assert_eq!(parse_records(&one).unwrap(), vec![a.clone()]);
        let lines = format!("{one}\n{one}\n");
        assert_eq!(parse_records(&lines).unwrap().len(), 2);
        assert!(parse_records("{\"not\": \"a record\"}").is_err());
        assert!(parse_records("").is_err());
    }

    #[test]
    fn a_pipe_does_not_break_a_markdown_table() {
        assert_eq!(cell("web|db\nx"), "web\\|db x");
    }
}
