//! monitor against the moto server, home us-east-1 and DR us-west-2: each figure from real
//! backups made by create-image and copied by replicate, the metrics lines it writes, and that
//! it only ever describes.
//!
//! Time moves by making backups "at" past instants, with moto's clock (see
//! [`Moto::set_clock`]) set to each instant so that EC2's own stamps agree with the tags.

use chrono::{DateTime, TimeDelta, Utc};
use integration_tests::*;
use serde_json::{Value, json};
use shared::Config;
use shared::tags::parse_time;

fn now() -> DateTime<Utc> {
    parse_time("2026-11-25T12:00:00Z").unwrap()
}

fn hours_ago(h: i64) -> DateTime<Utc> {
    now() - TimeDelta::hours(h)
}

fn config() -> Config {
    Config {
        copy_to_regions: vec![region(DR)],
        ..Config::default()
    }
}

/// An instance opted in (copy-to from `COPY_TO_REGIONS`: us-west-2).
async fn instance(moto: &Moto) -> String {
    moto.instance(HOME, &[("Backup", "true")], 0).await
}

/// An AMI of `instance` made by create-image at `at`, EC2's clock at `at` too.
async fn backup_at(moto: &Moto, instance: &str, at: DateTime<Utc>) -> String {
    moto.set_clock(at);
    on_demand_image(moto, &config(), HOME, instance, at).await
}

/// replicate's sweep at `at`: the missing copies made, EC2's clock at `at`.
async fn replicate_at(moto: &Moto, at: DateTime<Utc>) -> Value {
    moto.set_clock(at);
    shared::replicate::handle(
        &config(),
        &moto.clients(HOME),
        None,
        &event("scheduled-event.json", &[]),
        at,
    )
    .await
    .expect("replicate sweep")
}

/// monitor at `now()` with `config`: its result (or error) and its metrics lines.
async fn monitor_with(
    moto: &Moto,
    config: &Config,
    payload: &Value,
) -> (Result<Value, shared::Error>, Vec<Value>) {
    shared::monitor::handle_published(config, &moto.clients(HOME), payload, now()).await
}

/// monitor at `now()` on the schedule: its result, which must be a success.
async fn monitor(moto: &Moto) -> Value {
    let (result, _) = monitor_with(moto, &config(), &event("scheduled-event.json", &[])).await;
    result.expect("monitor ran")
}

fn figure(report: &Value, region: &str, name: &str) -> u64 {
    report["regions"][region][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no {name} for {region} in {report}"))
}

/// `(resource, region)` of each entry of a list of the result.
fn listed(report: &Value, list: &str) -> Vec<(String, String)> {
    report[list]
        .as_array()
        .unwrap_or_else(|| panic!("no {list} in {report}"))
        .iter()
        .map(|e| {
            let who = e.get("resource").or(e.get("backup")).unwrap();
            (
                who.as_str().unwrap().to_string(),
                e["region"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_resource_backed_up_and_copied_within_its_interval_is_not_late() {
    // GIVEN an instance backed up an hour ago and copied to us-west-2
    let moto = Moto::start().await;
    let i = instance(&moto).await;
    backup_at(&moto, &i, hours_ago(1)).await;
    replicate_at(&moto, hours_ago(1) + TimeDelta::minutes(5)).await;

    // WHEN monitor runs
    let report = monitor(&moto).await;

    // THEN both regions protect it, nothing is late, unprotected or missing
    for region in [HOME, DR] {
        assert_eq!(figure(&report, region, "protected"), 1, "{report}");
        for name in [
            "late",
            "without_backup",
            "copies_missing",
            "pending_too_long",
            "orphaned_snapshots",
        ] {
            assert_eq!(
                figure(&report, region, name),
                0,
                "{name} in {region}: {report}"
            );
        }
    }
    assert_eq!(figure(&report, HOME, "worst_rpo_seconds"), 3600);
    assert_eq!(
        figure(&report, DR, "worst_rpo_seconds"),
        3600,
        "the copy is as old as its original"
    );
    assert_eq!(report["late"], json!([]));
    assert_eq!(report["without_backup"], json!([]));
    assert_eq!(report["copies_missing"], json!([]));
    assert!(report.get("omitted").is_none(), "{report}");
}

#[tokio::test]
async fn a_backup_older_than_the_interval_and_its_grace_is_late() {
    // GIVEN an instance whose newest backup is 30 hours old (interval 24h, grace 2h24m), copied
    let moto = Moto::start().await;
    let i = instance(&moto).await;
    let ami = backup_at(&moto, &i, hours_ago(30)).await;
    replicate_at(&moto, hours_ago(30) + TimeDelta::minutes(5)).await;

    // WHEN monitor runs
    let report = monitor(&moto).await;

    // THEN it is late in both regions, listed with the reason, and the worst RPO is 30h
    assert_eq!(figure(&report, HOME, "late"), 1);
    assert_eq!(figure(&report, DR, "late"), 1);
    assert_eq!(figure(&report, HOME, "worst_rpo_seconds"), 30 * 3600);
    assert_eq!(
        listed(&report, "late"),
        vec![(i.clone(), HOME.into()), (i.clone(), DR.into())]
    );
    let reason = report["late"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains(&ami) && reason.contains("1d6h old") && reason.contains("interval 1d"),
        "{reason}"
    );
    assert_eq!(figure(&report, HOME, "without_backup"), 0);
}

#[tokio::test]
async fn a_resource_with_no_backup_is_without_backup_in_every_region() {
    // GIVEN an opted-in instance never backed up, and one that opts out
    let moto = Moto::start().await;
    let i = instance(&moto).await;
    moto.instance(HOME, &[("Backup", "false")], 0).await;

    // WHEN monitor runs
    let report = monitor(&moto).await;

    // THEN only the opted-in one is protected, and it has no backup at home nor in us-west-2
    assert_eq!(figure(&report, HOME, "protected"), 1);
    assert_eq!(figure(&report, HOME, "without_backup"), 1);
    assert_eq!(figure(&report, DR, "without_backup"), 1);
    assert_eq!(figure(&report, HOME, "worst_rpo_seconds"), 0);
    assert_eq!(
        listed(&report, "without_backup"),
        vec![(i.clone(), HOME.into()), (i, DR.into())]
    );
    assert_eq!(report["without_backup"][0]["reason"], "no usable backup");
}

#[tokio::test]
async fn an_original_older_than_copy_grace_without_a_dr_copy_is_a_missing_copy() {
    // GIVEN a backup made 3 hours ago (COPY_GRACE 2h), never copied
    let moto = Moto::start().await;
    let i = instance(&moto).await;
    let ami = backup_at(&moto, &i, hours_ago(3)).await;

    // WHEN monitor runs THEN us-west-2 misses its copy, named with its source
    let report = monitor(&moto).await;
    assert_eq!(figure(&report, DR, "copies_missing"), 1, "{report}");
    assert_eq!(figure(&report, HOME, "copies_missing"), 0);
    let missing = &report["copies_missing"][0];
    assert_eq!(missing["backup"], ami.as_str());
    assert_eq!(missing["source"], i.as_str());
    assert_eq!(missing["region"], DR);
    assert!(
        missing["reason"].as_str().unwrap().contains("no copy here"),
        "{missing}"
    );

    // AND once replicate made the copy, none is missing
    replicate_at(&moto, hours_ago(2)).await;
    let report = monitor(&moto).await;
    assert_eq!(figure(&report, DR, "copies_missing"), 0, "{report}");
    assert_eq!(report["copies_missing"], json!([]));
}

#[tokio::test]
async fn a_backup_pending_longer_than_pending_limit_is_counted() {
    // GIVEN a backup started 7 hours ago (PENDING_LIMIT 6h) still pending, and one started an
    // hour ago, pending too
    let moto = Moto::start().await;
    let stuck = backup_at(&moto, &instance(&moto).await, hours_ago(7)).await;
    let fresh = backup_at(&moto, &instance(&moto).await, hours_ago(1)).await;
    for ami in [&stuck, &fresh] {
        moto.set_image_state(HOME, ami, "pending");
    }

    // WHEN monitor runs THEN only the old one is stuck
    let report = monitor(&moto).await;
    assert_eq!(figure(&report, HOME, "pending_too_long"), 1, "{report}");
    assert_eq!(figure(&report, DR, "pending_too_long"), 0);
    // AND a pending backup is no usable one
    assert_eq!(figure(&report, HOME, "without_backup"), 2);
}

#[tokio::test]
async fn a_snapshot_of_ours_that_no_image_lists_is_an_orphan() {
    // GIVEN an AMI deregistered by hand, which left its snapshot behind, and a live AMI
    let moto = Moto::start().await;
    let i = instance(&moto).await;
    let gone = backup_at(&moto, &i, hours_ago(5)).await;
    backup_at(&moto, &i, hours_ago(1)).await;
    moto.client(HOME)
        .deregister_image()
        .image_id(&gone)
        .send()
        .await
        .unwrap();

    // WHEN monitor runs THEN the one left behind is an orphan; the live AMI's is not
    let report = monitor(&moto).await;
    assert_eq!(figure(&report, HOME, "orphaned_snapshots"), 1, "{report}");
    assert_eq!(figure(&report, DR, "orphaned_snapshots"), 0);
}

#[tokio::test]
async fn monitor_only_describes_within_its_permissions_and_changes_nothing() {
    // GIVEN backups at home, a copy in us-west-2, an orphan and a stuck backup
    let moto = Moto::start().await;
    let i = instance(&moto).await;
    let a = backup_at(&moto, &i, hours_ago(30)).await;
    replicate_at(&moto, hours_ago(29)).await;
    backup_at(&moto, &instance(&moto).await, hours_ago(8)).await;
    moto.set_image_state(HOME, &a, "pending");
    let state = || async {
        let mut images: Vec<String> = Vec::new();
        let mut snapshots: Vec<String> = Vec::new();
        for region in [HOME, DR] {
            let ec2 = moto.uncounted_client(region);
            let out = ec2.describe_images().owners("self").send().await.unwrap();
            images.extend(out.images().iter().map(|i| format!("{i:?}")));
            let out = ec2
                .describe_snapshots()
                .owner_ids("self")
                .send()
                .await
                .unwrap();
            snapshots.extend(out.snapshots().iter().map(|s| format!("{s:?}")));
        }
        (images, snapshots)
    };
    let before = state().await;
    moto.reset_calls();

    // WHEN monitor runs, in a dry run too
    let report = monitor(&moto).await;
    let (dry, _) = monitor_with(
        &moto,
        &Config {
            dry_run: true,
            ..config()
        },
        &json!({}),
    )
    .await;

    // THEN it made describe calls only, every one allowed by its policy, and the same result
    assert_eq!(dry.unwrap(), report, "a dry run is the same run");
    moto.assert_calls_allowed("monitor");
    for (region, calls) in moto.calls() {
        for action in calls.keys() {
            assert!(action.starts_with("Describe"), "{action} in {region}");
        }
    }
    assert_eq!(
        moto.calls_in(HOME).get("DescribeImages"),
        Some(&2),
        "one per run"
    );
    assert_eq!(moto.calls_in(DR).get("DescribeSnapshots"), Some(&2));
    // AND nothing changed
    assert_eq!(state().await, before);
}

#[tokio::test]
async fn every_region_gets_its_metrics_line_and_the_deployment_its_totals() {
    // GIVEN one late resource and one without a backup
    let moto = Moto::start().await;
    let i = instance(&moto).await;
    backup_at(&moto, &i, hours_ago(30)).await;
    instance(&moto).await;

    // WHEN monitor runs, in a dry run (which changes nothing for monitor)
    let (result, docs) = monitor_with(
        &moto,
        &Config {
            dry_run: true,
            ..config()
        },
        &json!({}),
    )
    .await;
    result.unwrap();

    // THEN the invocation's line, one line per region, the totals, under the usual dimensions
    let dims: Vec<Value> = docs
        .iter()
        .map(|d| d["_aws"]["CloudWatchMetrics"][0]["Dimensions"].clone())
        .collect();
    assert_eq!(
        dims,
        vec![
            json!([["Deployment", "Function"]]),
            json!([["Deployment", "Region"]]),
            json!([["Deployment", "Region"]]),
            json!([["Deployment"]]),
        ]
    );
    assert_eq!(docs[0]["Function"], "monitor");
    assert_eq!(
        (&docs[1]["Region"], &docs[2]["Region"]),
        (&json!(HOME), &json!(DR))
    );
    assert_eq!(docs[1]["Late"], 1);
    assert_eq!(docs[1]["WithoutBackup"], 1);
    assert_eq!(docs[2]["CopiesMissing"], 1);
    assert_eq!(docs[3]["Protected"], 4);
    assert_eq!(docs[3]["WithoutBackup"], 3);
    assert_eq!(docs[3]["WorstRpoSeconds"], 30 * 3600);
}

#[tokio::test]
async fn a_region_that_cannot_be_read_fails_the_invocation_which_still_writes_its_line() {
    // GIVEN every DescribeImages in us-west-2 refused
    let moto = Moto::start().await;
    let i = instance(&moto).await;
    backup_at(&moto, &i, hours_ago(1)).await;
    moto.fault(json!({"action": "DescribeImages", "region": DR, "code": "UnauthorizedOperation", "message": "You are not authorized to perform this operation.", "status": 403}));

    // WHEN monitor runs
    let (result, docs) = monitor_with(&moto, &config(), &json!({})).await;
    moto.http("DELETE", "/_test/faults", "");

    // THEN it fails with the AWS code, and writes only its own line
    let err = result.unwrap_err();
    assert_eq!(err.code(), Some("UnauthorizedOperation"), "{err}");
    assert!(err.to_string().contains("us-west-2"), "{err}");
    assert_eq!(docs.len(), 1, "{docs:?}");
    assert_eq!(docs[0]["Function"], "monitor");
}

#[tokio::test]
async fn any_payload_but_the_schedule_or_an_empty_object_is_rejected() {
    let moto = Moto::start().await;
    moto.reset_calls();
    for payload in [
        json!({"hello": "world"}),
        json!({"dry_run": true}),
        event("tag-change-instance.json", &[]),
        json!([]),
    ] {
        let (result, docs) = monitor_with(&moto, &config(), &payload).await;
        let err = result.unwrap_err();
        assert!(matches!(err, shared::Error::Payload(_)), "{err}");
        assert!(
            err.to_string()
                .contains("expected an EventBridge \"Scheduled Event\" or {}"),
            "{err}"
        );
        assert_eq!(docs.len(), 1, "only the invocation's line: {docs:?}");
    }
    assert!(
        moto.calls().values().all(|c| c.is_empty()),
        "{:?}",
        moto.calls()
    );
}

#[tokio::test]
async fn an_sqs_event_is_no_payload_of_monitor_which_reads_no_queue() {
    // GIVEN an SQS event, as a work queue's event source mapping would send it
    let moto = Moto::start().await;
    moto.reset_calls();
    let sqs = json!({"Records": [{
        "messageId": "m-1",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:work",
        "body": "{}"
    }]});
    // WHEN monitor is invoked with it, as its binary is
    let err = shared::monitor::handle(&config(), &moto.clients(HOME), &sqs, now())
        .await
        .unwrap_err();
    // THEN it is refused as any other payload, and nothing is read
    assert!(matches!(err, shared::Error::Payload(_)), "{err}");
    assert!(
        err.to_string().contains("unknown fields [\"Records\"]"),
        "{err}"
    );
    assert!(
        moto.calls().values().all(|c| c.is_empty()),
        "{:?}",
        moto.calls()
    );
}
