//! monitor's pure summary over plain backups, its payloads and its metrics lines.

use super::*;
use crate::backup::{Backup, Described};
use crate::duration::Duration;
use crate::region::Region;
use crate::status::{Inputs, Resource, status};
use crate::tags::{Kind, format_time, parse_time};
use chrono::TimeDelta;
use serde_json::json;

fn r(name: &str) -> Region {
    Region::parse(name).unwrap()
}

fn home() -> Region {
    r("us-east-1")
}

fn dr() -> Region {
    r("us-west-2")
}

fn now() -> DateTime<Utc> {
    parse_time("2026-11-25T12:00:00Z").unwrap()
}

fn hours_ago(h: i64) -> DateTime<Utc> {
    now() - TimeDelta::hours(h)
}

/// A backup of ours as the adapter describes it: `kind`, in `region`, of `source`, in
/// `state`, made (tag and EC2's record) at `made`, with `extra` tags on top.
struct Made<'a> {
    id: &'a str,
    kind: Kind,
    region: Region,
    source: &'a str,
    state: &'a str,
    made: DateTime<Utc>,
    extra: &'a [(&'a str, &'a str)],
    snapshot_ids: &'a [&'a str],
}

impl Made<'_> {
    fn backup(&self) -> Backup {
        let mut tags: Vec<(String, String)> = [
            ("backup:managed-by", "ec2-backup"),
            ("backup:kind", self.kind.as_str()),
            ("backup:source", self.source),
            ("backup:copy-to", "us-west-2"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        tags.push(("backup:created-at".into(), format_time(self.made)));
        tags.push((
            "backup:expires-at".into(),
            format_time(self.made + TimeDelta::days(7)),
        ));
        for (k, v) in self.extra {
            tags.retain(|(key, _)| key != k);
            tags.push((k.to_string(), v.to_string()));
        }
        Backup::new(
            &TagKeys::new("backup"),
            self.kind,
            &self.region,
            Described {
                id: self.id.into(),
                state: self.state.into(),
                recorded_at: Some(self.made),
                snapshot_ids: self.snapshot_ids.iter().map(|s| s.to_string()).collect(),
                tags,
                ..Described::default()
            },
        )
    }
}

/// An available AMI of `source` at home, made `h` hours ago.
fn ami(id: &str, source: &str, h: i64) -> Backup {
    Made {
        id,
        kind: Kind::Image,
        region: home(),
        source,
        state: "available",
        made: hours_ago(h),
        extra: &[],
        snapshot_ids: &[],
    }
    .backup()
}

/// A copy of `of` in the DR region, in `state`, made `h` hours ago.
fn copy(id: &str, of: &str, source: &str, state: &str, h: i64) -> Backup {
    Made {
        id,
        kind: Kind::Image,
        region: dr(),
        source,
        state,
        made: hours_ago(h),
        extra: &[("backup:copy-of", of), ("backup:copy-to", "")],
        snapshot_ids: &[],
    }
    .backup()
}

fn resource(id: &str) -> Resource {
    Resource {
        id: id.into(),
        kind: "instance",
        name: None,
        interval: Duration::hours(24),
        copy_to: vec![dr()],
    }
}

fn inputs(resources: Vec<Resource>, backups: Vec<Backup>, others: Vec<Backup>) -> Inputs {
    Inputs {
        regions: vec![home(), dr()],
        existing_sources: resources.iter().map(|r| r.id.clone()).collect(),
        resources,
        backups,
        others,
    }
}

fn config() -> Config {
    Config {
        copy_to_regions: vec![dr()],
        ..Config::default()
    }
}

fn summary(inputs: &Inputs) -> MonitorReport {
    let rows = status(
        &home(),
        &[],
        &inputs.resources,
        &inputs.backups,
        &inputs.existing_sources,
        now(),
    )
    .rows;
    summarize(&home(), inputs, &rows, &config(), now())
}

#[test]
fn rows_give_protected_late_without_backup_and_the_worst_rpo_per_region() {
    // GIVEN i-met backed up 2h ago at home and copied; i-late's newest backup 30h old (past
    // 24h plus 2h24m of grace), not copied; i-none never backed up
    let backups = vec![
        ami("ami-met", "i-met", 2),
        copy("ami-met-copy", "ami-met", "i-met", "available", 2),
        ami("ami-late", "i-late", 30),
    ];
    let inputs = inputs(
        vec![resource("i-met"), resource("i-late"), resource("i-none")],
        backups,
        vec![],
    );

    // WHEN summarized
    let report = summary(&inputs);

    // THEN home protects all three, one late, one without; the DR region the same three
    let home_f = report.regions[&home()];
    assert_eq!(
        (home_f.protected, home_f.late, home_f.without_backup),
        (3, 1, 1)
    );
    assert_eq!(home_f.worst_rpo_seconds, 30 * 3600);
    assert_eq!(home_f.copies_missing, 0, "never at home");
    let dr_f = report.regions[&dr()];
    assert_eq!((dr_f.protected, dr_f.late, dr_f.without_backup), (3, 0, 2));
    assert_eq!(dr_f.worst_rpo_seconds, 2 * 3600);
    // AND the late one says why; the DR rows without a copy say whether one is coming
    assert_eq!(report.late.len(), 1);
    assert_eq!(report.late[0].resource, "i-late");
    assert_eq!(report.late[0].region, home());
    assert_eq!(
        report.late[0].reason,
        "the newest usable backup here, ami-late, is 1d6h old: more than its interval 1d plus 2h24m of grace"
    );
    let without: Vec<(&str, &str, &str)> = report
        .without_backup
        .iter()
        .map(|f| (f.resource.as_str(), f.region.as_str(), f.reason.as_str()))
        .collect();
    assert_eq!(
        without,
        vec![
            ("i-none", "us-east-1", "no usable backup"),
            (
                "i-late",
                "us-west-2",
                "no usable copy here; 1 usable backup at home not copied here yet"
            ),
            (
                "i-none",
                "us-west-2",
                "no usable copy here, and no usable backup at home to copy"
            ),
        ]
    );
    // AND the totals sum the counts and take the worst RPO
    let total = report.total();
    assert_eq!(
        (total.protected, total.late, total.without_backup),
        (6, 1, 3)
    );
    assert_eq!(total.worst_rpo_seconds, 30 * 3600);
}

#[test]
fn a_copy_is_missing_once_the_grace_is_over_and_no_usable_copy_is_there() {
    let keep_one_hour = [("backup:copy-retention", "1h")];
    let elsewhere = [("backup:copy-to", "eu-west-1")];
    let backups = vec![
        // 3h old, no copy: missing
        ami("ami-uncopied", "i-1", 3),
        // 1h old, no copy: within COPY_GRACE (2h)
        ami("ami-young", "i-2", 1),
        // 3h old, copied: fine
        ami("ami-copied", "i-3", 3),
        copy("ami-copied-dr", "ami-copied", "i-3", "available", 3),
        // 3h old, its copy still pending: missing, saying so
        ami("ami-in-flight", "i-4", 3),
        copy("ami-in-flight-dr", "ami-in-flight", "i-4", "pending", 1),
        // 3h old, its copy failed: missing
        ami("ami-failed-copy", "i-5", 3),
        copy("ami-failed-copy-dr", "ami-failed-copy", "i-5", "failed", 2),
        // 3h old, but a copy would be kept 1h only: replicate skips it, so not missing
        Made {
            extra: &keep_one_hour,
            ..made("ami-short", "i-6", 3)
        }
        .backup(),
        // 3h old, copied to another region only
        Made {
            extra: &elsewhere,
            ..made("ami-elsewhere", "i-7", 3)
        }
        .backup(),
        // 3h old, still pending itself: replicate copies only available ones
        Made {
            state: "pending",
            ..made("ami-pending", "i-8", 3)
        }
        .backup(),
    ];
    let resources = (1..=8).map(|n| resource(&format!("i-{n}"))).collect();
    let report = summary(&inputs(resources, backups, vec![]));

    let missing: Vec<(&str, Option<&str>, &str)> = report
        .copies_missing
        .iter()
        .map(|m| (m.backup.as_str(), m.source.as_deref(), m.region.as_str()))
        .collect();
    assert_eq!(
        missing,
        vec![
            ("ami-failed-copy", Some("i-5"), "us-west-2"),
            ("ami-in-flight", Some("i-4"), "us-west-2"),
            ("ami-uncopied", Some("i-1"), "us-west-2"),
        ]
    );
    assert_eq!(report.regions[&dr()].copies_missing, 3);
    assert_eq!(report.regions[&home()].copies_missing, 0);
    let reason = |id: &str| {
        report
            .copies_missing
            .iter()
            .find(|m| m.backup == id)
            .unwrap()
            .reason
            .clone()
    };
    assert_eq!(
        reason("ami-uncopied"),
        "made 2026-11-25T09:00:00Z (3h0m ago); no copy here after COPY_GRACE 2h"
    );
    assert!(
        reason("ami-in-flight").contains("its copy ami-in-flight-dr here is pending"),
        "{}",
        reason("ami-in-flight")
    );
    assert!(reason("ami-failed-copy").contains("is failed"));
}

/// A `Made` for an AMI at home, `h` hours ago, to adjust.
fn made<'a>(id: &'a str, source: &'a str, h: i64) -> Made<'a> {
    Made {
        id,
        kind: Kind::Image,
        region: home(),
        source,
        state: "available",
        made: hours_ago(h),
        extra: &[],
        snapshot_ids: &[],
    }
}

#[test]
fn pending_too_long_is_judged_by_ec2s_start_time() {
    // GIVEN a pending AMI started 7h ago (PENDING_LIMIT 6h), one started 1h ago, and a DR copy
    // started 1h ago whose created-at is its original's, 3 days ago
    let original_time = format_time(hours_ago(72));
    let copy_tags = [
        ("backup:copy-of", "ami-old"),
        ("backup:created-at", original_time.as_str()),
    ];
    let backups = vec![
        Made {
            state: "pending",
            ..made("ami-stuck", "i-1", 7)
        }
        .backup(),
        Made {
            state: "pending",
            ..made("ami-fresh", "i-1", 1)
        }
        .backup(),
        Made {
            region: dr(),
            state: "pending",
            extra: &copy_tags,
            ..made("ami-copying", "i-1", 1)
        }
        .backup(),
        Made {
            state: "failed",
            ..made("ami-failed", "i-1", 9)
        }
        .backup(),
    ];
    let report = summary(&inputs(vec![resource("i-1")], backups, vec![]));
    assert_eq!(report.regions[&home()].pending_too_long, 1);
    let stuck: Vec<(&str, &str)> = report
        .stuck
        .iter()
        .map(|s| (s.backup.as_str(), s.reason.as_str()))
        .collect();
    assert_eq!(
        stuck,
        vec![(
            "ami-stuck",
            "pending since 2026-11-25T05:00:00Z (7h0m), longer than PENDING_LIMIT 6h"
        )]
    );
    assert_eq!(
        report.regions[&dr()].pending_too_long,
        0,
        "the copy started an hour ago, whatever its created-at says"
    );
}

#[test]
fn an_orphan_is_a_snapshot_of_ours_no_image_lists_and_no_standalone_backup() {
    // GIVEN an AMI listing snap-used, a disabled AMI (listed apart) listing snap-disabled, a
    // standalone snapshot backup, and an AMI's snapshot no image lists any more
    let snapshot = |id: &str, kind: &str| {
        let tag = [("backup:kind", kind)];
        Made {
            kind: Kind::Snapshot,
            state: "completed",
            extra: &tag,
            ..made(id, "i-1", 5)
        }
        .backup()
    };
    let backups = vec![
        Made {
            snapshot_ids: &["snap-used"],
            ..made("ami-1", "i-1", 5)
        }
        .backup(),
        snapshot("snap-standalone", "snapshot"),
    ];
    let others = vec![
        Made {
            state: "disabled",
            snapshot_ids: &["snap-disabled"],
            ..made("ami-disabled", "i-1", 5)
        }
        .backup(),
        snapshot("snap-used", "image"),
        snapshot("snap-disabled", "image"),
        snapshot("snap-orphan", "image"),
    ];
    let report = summary(&inputs(vec![resource("i-1")], backups, others));
    assert_eq!(report.regions[&home()].orphaned_snapshots, 1);
    assert_eq!(report.regions[&dr()].orphaned_snapshots, 0);
}

#[test]
fn the_lists_are_capped_and_say_how_many_were_left_off() {
    // GIVEN 150 resources whose backups are late by 30h + n minutes
    let resources: Vec<Resource> = (0..150)
        .map(|n| Resource {
            copy_to: vec![],
            ..resource(&format!("i-{n:03}"))
        })
        .collect();
    let backups: Vec<Backup> = (0..150)
        .map(|n| {
            let id = format!("ami-{n:03}");
            let source = format!("i-{n:03}");
            Made {
                made: hours_ago(30) - TimeDelta::minutes(n),
                extra: &[("backup:copy-to", "")],
                ..made(&id, &source, 0)
            }
            .backup()
        })
        .collect();
    let mut report = summary(&inputs(resources, backups, vec![]));
    assert_eq!(report.late.len(), 150, "the summary is complete");

    // WHEN capped at the results' limit
    report.cap(crate::report::LIST_LIMIT);

    // THEN 100 are listed, the most overdue first, and 50 said to be left off
    assert_eq!(report.late.len(), 100);
    assert_eq!(report.late[0].resource, "i-149");
    assert_eq!(report.late[99].resource, "i-050");
    assert_eq!(
        report.regions[&home()].late,
        150,
        "the figures count them all"
    );
    let value = serde_json::to_value(&report).unwrap();
    assert_eq!(value["omitted"], json!({"late": 50}));
    assert_eq!(value["late"].as_array().unwrap().len(), 100);
    // AND a report with nothing cut has no "omitted"
    let small =
        serde_json::to_value(summary(&inputs(vec![resource("i-1")], vec![], vec![]))).unwrap();
    assert!(small.get("omitted").is_none(), "{small}");
}

#[test]
fn the_result_has_the_documented_shape() {
    let report = summary(&inputs(
        vec![resource("i-1")],
        vec![ami("ami-1", "i-1", 3)],
        vec![],
    ));
    let value = serde_json::to_value(&report).unwrap();
    assert_eq!(
        value["regions"]["us-west-2"],
        json!({"protected": 1, "late": 0, "without_backup": 1, "copies_missing": 1,
               "pending_too_long": 0, "orphaned_snapshots": 0, "worst_rpo_seconds": 0, "not_drilled": 0, "not_shared": 0})
    );
    assert_eq!(
        value["copies_missing"][0],
        json!({"backup": "ami-1", "source": "i-1", "region": "us-west-2",
               "reason": "made 2026-11-25T09:00:00Z (3h0m ago); no copy here after COPY_GRACE 2h"})
    );
    assert_eq!(
        value["without_backup"][0],
        json!({"resource": "i-1", "region": "us-west-2",
               "reason": "no usable copy here; 1 usable backup at home not copied here yet"})
    );
    assert_eq!(value["late"], json!([]));
}

#[test]
fn the_schedule_and_an_empty_object_are_accepted_and_anything_else_is_refused() {
    let scheduled: Value =
        serde_json::from_str(include_str!("../../../events/scheduled-event.json")).unwrap();
    assert_eq!(
        parse_monitor_request(&scheduled)
            .unwrap()
            .event_id
            .as_deref(),
        Some("53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa")
    );
    assert_eq!(
        parse_monitor_request(&json!({})).unwrap(),
        MonitorRequest { event_id: None }
    );
    let mut tag_change = scheduled.clone();
    tag_change["source"] = json!("aws.tag");
    tag_change["detail-type"] = json!("Tag Change on Resource");
    for (payload, says) in [
        (json!({"hello": "world"}), "unknown fields [\"hello\"]"),
        (json!({"dry_run": true}), "unknown fields [\"dry_run\"]"),
        (
            json!({"instance_ids": ["i-12345678"]}),
            "unknown fields [\"instance_ids\"]",
        ),
        (json!([1, 2]), "got [1,2]"),
        (json!("sweep"), "got \"sweep\""),
        (
            tag_change,
            "got an event from \"aws.tag\" with detail-type \"Tag Change on Resource\"",
        ),
    ] {
        let err = parse_monitor_request(&payload).unwrap_err();
        assert!(matches!(err, Error::Payload(_)), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("expected an EventBridge \"Scheduled Event\" or {}")
                && text.contains(says),
            "{text}"
        );
    }
}

#[test]
fn one_line_per_region_and_one_with_the_totals() {
    let report = summary(&inputs(
        vec![resource("i-1")],
        vec![ami("ami-1", "i-1", 30)],
        vec![],
    ));
    let publisher = Publisher::new(&Config::default(), "monitor");
    let docs = documents(&publisher, &report, now());
    assert_eq!(docs.len(), 3);
    let dims = |d: &Value| d["_aws"]["CloudWatchMetrics"][0]["Dimensions"].clone();
    assert_eq!(dims(&docs[0]), json!([["Deployment", "Region"]]));
    assert_eq!(docs[0]["Region"], "us-east-1");
    assert_eq!(docs[0]["Late"], 1);
    assert_eq!(docs[0]["WorstRpoSeconds"], 30 * 3600);
    assert_eq!(docs[1]["Region"], "us-west-2");
    assert_eq!(docs[1]["CopiesMissing"], 1);
    assert_eq!(dims(&docs[2]), json!([["Deployment"]]));
    assert_eq!(docs[2]["Protected"], 2);
    assert_eq!(docs[2]["WithoutBackup"], 1);
    assert_eq!(
        docs[2]["WorstRpoSeconds"],
        30 * 3600,
        "the worst, not a sum"
    );
}
