//! drill against the moto server, home us-east-1, DR us-west-2 and eu-west-1: restores from real
//! backups made by create-image and create-snapshot and copied by replicate, judged, cleaned up,
//! and their evidence in S3, on the backups' tags and in the metrics lines.

use chrono::{DateTime, TimeDelta, Utc};
use integration_tests::*;
use serde_json::{Value, json};
use shared::Config;
use shared::drill::settings::DrillSettings;
use shared::drill::{Drill, Run};
use shared::invocation::{Function, Report, Setting, run_and_publish};
use shared::sqs::WorkQueue;
use shared::tags::parse_time;

const BUCKET: &str = "drill-evidence";

fn now() -> DateTime<Utc> {
    parse_time("2026-11-25T12:00:00Z").unwrap()
}

fn config() -> Config {
    Config {
        copy_to_regions: vec![region(DR)],
        ..Config::default()
    }
}

fn settings(batch: usize) -> DrillSettings {
    DrillSettings {
        evidence_bucket: Some(BUCKET.into()),
        batch,
        ..DrillSettings::default()
    }
}

/// The world of most tests: an instance (with a data volume, which its AMI keeps when the
/// instance is terminated) copied to us-west-2 and eu-west-1, and a volume with no DR region
/// (`copy-to=none`), each backed up an hour before `now()` and copied.
struct World {
    instance: String,
    volume: String,
}

async fn world(moto: &Moto) -> World {
    let instance = moto
        .instance(
            HOME,
            &[
                ("Backup", "true"),
                ("Name", "web"),
                ("backup:copy-to", "us-west-2,eu-west-1"),
            ],
            1,
        )
        .await;
    let volume = moto
        .volume(HOME, &[("Backup", "true"), ("backup:copy-to", "none")])
        .await;
    backed_up(moto, &[&instance], &[&volume]).await;
    World { instance, volume }
}

/// Backups of the instances and volumes an hour before `now()`, copied to their DR regions.
async fn backed_up(moto: &Moto, instances: &[&str], volumes: &[&str]) {
    backed_up_at(moto, instances, volumes, now() - TimeDelta::hours(1)).await;
}

/// Backups of the instances and volumes at `at` (requests of their own), copied five minutes
/// later; EC2's clock back at `now()` after.
async fn backed_up_at(moto: &Moto, instances: &[&str], volumes: &[&str], at: DateTime<Utc>) {
    moto.set_clock(at);
    let request = |kind: &str| format!("req-{kind}-{}", at.timestamp());
    let (config, ec2) = (config(), moto.ec2(HOME));
    if !instances.is_empty() {
        let payload = json!({ "instance_ids": instances });
        shared::create::handle(
            shared::create::ResourceKind::Instance,
            &config,
            &ec2,
            None,
            &payload,
            &request("i"),
            at,
        )
        .await
        .expect("images made");
    }
    if !volumes.is_empty() {
        let payload = json!({ "volume_ids": volumes });
        shared::create::handle(
            shared::create::ResourceKind::Volume,
            &config,
            &ec2,
            None,
            &payload,
            &request("v"),
            at,
        )
        .await
        .expect("snapshots made");
    }
    let sweep = event("scheduled-event.json", &[]);
    shared::replicate::handle(
        &config,
        &moto.clients(HOME),
        None,
        &sweep,
        at + TimeDelta::minutes(5),
    )
    .await
    .expect("copies made");
    moto.set_clock(now());
}

/// One invocation of drill at `at` (its request id `request`): its answer and metrics lines.
async fn drill_at(
    moto: &Moto,
    settings: &DrillSettings,
    queue: Option<&WorkQueue>,
    payload: &Value,
    at: DateTime<Utc>,
    request: &str,
) -> (Result<Value, shared::Error>, Vec<Value>) {
    let config = config();
    let drill = Drill {
        setting: Setting {
            config: &config,
            queue,
            now: at,
        },
        settings,
        clients: moto.clients(HOME),
        evidence: Some(moto.evidence(BUCKET).await),
        run: Run::new(at, request),
        poll: std::time::Duration::from_millis(50),
        // Delivered at once: the test says when the next look happens.
        recheck_seconds: 0,
        started: std::time::Instant::now(),
    };
    let parsed = match payload.get("Records") {
        Some(records) => drill.parse_body(records[0]["body"].as_str().unwrap()),
        None => drill.parse(payload),
    };
    let (report, lines) = run_and_publish(&drill, parsed).await;
    (report.and_then(Report::into_answer), lines)
}

async fn drill(moto: &Moto, settings: &DrillSettings, at: DateTime<Utc>) -> Value {
    let (answer, _) = drill_at(moto, settings, None, &json!({}), at, "req-1").await;
    answer.expect("the drill ran")
}

/// This deployment's drill resources still there (instances not terminated, volumes), in
/// every region.
async fn left_running(moto: &Moto) -> Vec<String> {
    let keys = shared::tags::TagKeys::new("backup");
    let mut out = Vec::new();
    for r in [HOME, DR, DR2] {
        let found = moto
            .ec2(r)
            .drill_resources(&keys, "ec2-backup")
            .await
            .unwrap();
        out.extend(found.into_iter().map(|t| t.id));
    }
    out
}

fn records(answer: &Value) -> Vec<(String, String, String)> {
    answer["records"]
        .as_array()
        .unwrap_or_else(|| panic!("no records in {answer}"))
        .iter()
        .map(|r| {
            (
                r["resource"].as_str().unwrap().to_string(),
                r["region"].as_str().unwrap().to_string(),
                r["result"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn tags_of_backup(
    moto: &Moto,
    region: &str,
    id: &str,
) -> std::collections::BTreeMap<String, String> {
    if id.starts_with("ami-") {
        let images = moto.images(region).await;
        let image = images
            .iter()
            .find(|i| i.image_id() == Some(id))
            .expect("the image");
        tag_map(image.tags())
    } else {
        let snapshots = moto.snapshots(region).await;
        let s = snapshots
            .iter()
            .find(|s| s.snapshot_id() == Some(id))
            .expect("the snapshot");
        tag_map(s.tags())
    }
}

#[tokio::test]
async fn a_first_run_proves_every_resource_where_it_is_drilled_and_keeps_the_evidence() {
    // GIVEN an instance copied to two DR regions and a volume with none
    let moto = Moto::start().await;
    let w = world(&moto).await;
    moto.evidence_bucket(BUCKET).await;
    // (never drilled, with backups there for more than a day: monitor counts each
    // resource-region it is drilled in as not drilled)
    let not_drilled = async |at: DateTime<Utc>| {
        let report = shared::monitor::handle(&config(), &moto.clients(HOME), &json!({}), at)
            .await
            .unwrap();
        [HOME, DR, DR2].map(|r| report["regions"][r]["not_drilled"].as_u64().unwrap())
    };
    assert_eq!(not_drilled(now() + TimeDelta::hours(12)).await, [0, 0, 0]);
    assert_eq!(not_drilled(now() + TimeDelta::days(2)).await, [1, 1, 1]);
    moto.reset_calls();

    // WHEN the drill runs
    let (answer, lines) = drill_at(
        &moto,
        &settings(10),
        None,
        &event("scheduled-event.json", &[]),
        now(),
        "req-1",
    )
    .await;
    let answer = answer.expect("the drill ran");

    // THEN the instance is proven in each DR region (not at home), the volume at home
    let mut got = records(&answer);
    got.sort();
    let mut want = vec![
        (w.instance.clone(), DR2.to_string(), "passed".to_string()),
        (w.instance.clone(), DR.to_string(), "passed".to_string()),
        (w.volume.clone(), HOME.to_string(), "passed".to_string()),
    ];
    want.sort();
    assert_eq!(got, want, "{answer}");
    assert_eq!(
        answer["counts"],
        json!({"passed": 3, "failed": 0, "timed_out": 0, "pending": 0, "cleaned_up": 3})
    );
    assert_eq!(answer["dry_run"], false);
    for r in answer["records"].as_array().unwrap() {
        // AND each record says what was restored from what, RPO and RTO, and its clean-up
        assert_eq!(
            r["rpo_seconds"].as_i64().unwrap(),
            (parse_time(r["started_at"].as_str().unwrap()).unwrap()
                - parse_time(r["backup_created_at"].as_str().unwrap()).unwrap())
            .num_seconds()
        );
        assert!(r["rpo_seconds"].as_i64().unwrap() >= 3600, "{r}");
        assert!(r["rto_seconds"].as_i64().unwrap() >= 0, "{r}");
        assert!(
            r["restored"]
                .as_str()
                .unwrap()
                .starts_with(if r["kind"] == "instance" {
                    "i-"
                } else {
                    "vol-"
                })
        );
        assert!(r["cleaned_up_at"].is_string(), "{r}");
        assert_eq!(r["error"], Value::Null);
        if r["kind"] == "instance" {
            assert_eq!(r["name"], "web");
        }
        // AND the drilled backup (a copy in a DR region) carries the drill
        let tags = tags_of_backup(
            &moto,
            r["region"].as_str().unwrap(),
            r["backup"].as_str().unwrap(),
        )
        .await;
        assert_eq!(tags["backup:drill-result"], "passed");
        assert_eq!(tags["backup:drilled-at"], r["started_at"].as_str().unwrap());
        assert_eq!(tags["backup:restore-seconds"], r["rto_seconds"].to_string());
        if r["region"] != HOME {
            assert!(
                tags.contains_key("backup:copy-of"),
                "a DR copy is drilled: {tags:?}"
            );
        }
    }
    // AND one evidence object per record, under the run's day, each the record itself
    let objects = moto.objects(BUCKET, "drills/").await;
    assert_eq!(objects.len(), 3, "{objects:?}");
    for (key, body) in &objects {
        assert!(
            // The scheduled event's run: its time and its id (the same in a retry of it).
            key.starts_with("drills/2026/11/25/20261125T030000Z-53dc4d37/"),
            "{key}"
        );
        let record: Value = serde_json::from_str(body).unwrap();
        assert!(
            answer["records"].as_array().unwrap().contains(&record),
            "{record}"
        );
    }
    // AND nothing is left running, and every call was one the drill role may make
    assert!(left_running(&moto).await.is_empty());
    moto.assert_calls_allowed("drill");
    // AND the metrics: the function's counts and each region's, with its slowest restore
    let function = lines
        .iter()
        .find(|l| l.get("Region").is_none() && l["Function"] == "drill")
        .unwrap();
    assert_eq!(
        (
            function["DrillsPassed"].as_u64(),
            function["DrillsFailed"].as_u64(),
            function["DrillsTimedOut"].as_u64()
        ),
        (Some(3), Some(0), Some(0))
    );
    for r in [HOME, DR, DR2] {
        let line = lines
            .iter()
            .find(|l| l["Region"] == r)
            .unwrap_or_else(|| panic!("no line for {r}: {lines:?}"));
        assert_eq!(line["DrillsPassed"], 1);
        assert!(line.get("RestoreSeconds").is_some(), "{line}");
    }

    // WHEN it runs again the same day THEN nothing is due
    let again = drill(&moto, &settings(10), now() + TimeDelta::hours(1)).await;
    assert!(records(&again).is_empty(), "{again}");

    // AND monitor counts nothing undrilled, a week and two days later every resource-region
    let report = shared::monitor::handle(
        &config(),
        &moto.clients(HOME),
        &json!({}),
        now() + TimeDelta::hours(2),
    )
    .await
    .unwrap();
    for r in [HOME, DR, DR2] {
        assert_eq!(report["regions"][r]["not_drilled"], 0, "{report}");
    }
}

#[tokio::test]
async fn at_most_the_batch_is_drilled_a_run_the_never_drilled_first_then_the_oldest() {
    // GIVEN three instances copied to us-west-2
    let moto = Moto::start().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(moto.instance(HOME, &[("Backup", "true")], 0).await);
    }
    backed_up(
        &moto,
        &ids.iter().map(String::as_str).collect::<Vec<_>>(),
        &[],
    )
    .await;
    moto.evidence_bucket(BUCKET).await;

    // WHEN the drill runs with a batch of two, then again
    let first = drill(&moto, &settings(2), now()).await;
    let second = drill(&moto, &settings(2), now() + TimeDelta::hours(1)).await;

    // THEN the first run drills two, the second the one left, and none twice
    let (a, b) = (records(&first), records(&second));
    assert_eq!((a.len(), b.len()), (2, 1), "{first} {second}");
    let mut all: Vec<String> = a.iter().chain(&b).map(|(r, _, _)| r.clone()).collect();
    all.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(all, want);

    // AND eight days later the oldest pass goes first
    let later = drill(&moto, &settings(1), now() + TimeDelta::days(8)).await;
    let first_drilled: Vec<String> = a.iter().map(|(r, _, _)| r.clone()).collect();
    assert!(first_drilled.contains(&records(&later)[0].0), "{later}");
    assert!(left_running(&moto).await.is_empty());
}

#[tokio::test]
async fn a_restore_aws_refuses_is_a_failed_record_that_stops_nothing_else() {
    // GIVEN the world, and us-west-2 out of capacity for one launch
    let moto = Moto::start().await;
    let w = world(&moto).await;
    moto.evidence_bucket(BUCKET).await;
    moto.fault(json!({"action": "RunInstances", "region": DR, "code": "InsufficientInstanceCapacity", "message": "We currently do not have sufficient capacity", "count": 1}));

    // WHEN the drill runs THEN the invocation succeeds: a failed restore is a finding
    let answer = drill(&moto, &settings(10), now()).await;
    assert_eq!(answer["counts"]["failed"], 1, "{answer}");
    assert_eq!(answer["counts"]["passed"], 2, "{answer}");
    let failed = answer["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["result"] == "failed")
        .unwrap();
    assert_eq!(failed["resource"], w.instance.as_str());
    assert_eq!(failed["region"], DR);
    assert_eq!(failed["error_code"], "InsufficientInstanceCapacity");
    assert!(
        failed["error"].as_str().unwrap().contains("capacity"),
        "{failed}"
    );
    assert_eq!(failed["restored"], Value::Null);
    assert_eq!(failed["rto_seconds"], Value::Null);
    // AND it is evidence too, and on the backup
    assert_eq!(moto.objects(BUCKET, "drills/").await.len(), 3);
    let tags = tags_of_backup(&moto, DR, failed["backup"].as_str().unwrap()).await;
    assert_eq!(tags["backup:drill-result"], "failed");
    assert!(left_running(&moto).await.is_empty());
}

#[tokio::test]
async fn a_restore_not_ready_is_checked_again_from_the_queue_and_times_out() {
    // GIVEN the instance's restores in us-west-2 never pass their status checks
    let moto = Moto::start().await;
    let w = world(&moto).await;
    moto.evidence_bucket(BUCKET).await;
    moto.hold_restores(DR, "instance", Some("initializing"));
    let queue = moto.work_queue("drill-work", "drill").await;
    let only_dr = json!({"regions": [DR]});

    // WHEN the drill runs with its work queue
    let (answer, _) = drill_at(&moto, &settings(10), Some(&queue), &only_dr, now(), "req-1").await;
    let answer = answer.unwrap();
    // THEN the restore is handed on, not waited for
    assert_eq!(answer["counts"]["pending"], 1, "{answer}");
    assert_eq!(answer["continuations"], 1, "{answer}");
    assert!(records(&answer).is_empty());
    assert_eq!(left_running(&moto).await.len(), 1);

    // WHEN the continuation comes 10 minutes later THEN it is still pending and handed on again
    let batch = moto.receive(&queue).await;
    assert_eq!(batch.len(), 1);
    let event = sqs_event(&queue, &batch);
    let (answer, _) = drill_at(
        &moto,
        &settings(10),
        Some(&queue),
        &event,
        now() + TimeDelta::minutes(10),
        "req-2",
    )
    .await;
    assert_eq!(answer.unwrap()["counts"]["pending"], 1);
    moto.settle(&queue, &batch, &json!({"batchItemFailures": []}))
        .await;

    // WHEN it comes again past DRILL_TIMEOUT THEN the restore timed out, and is cleaned up
    let batch = moto.receive(&queue).await;
    let event = sqs_event(&queue, &batch);
    let (answer, _) = drill_at(
        &moto,
        &settings(10),
        Some(&queue),
        &event,
        now() + TimeDelta::minutes(31),
        "req-3",
    )
    .await;
    let answer = answer.unwrap();
    assert_eq!(
        records(&answer),
        [(w.instance.clone(), DR.to_string(), "timed-out".to_string())]
    );
    assert!(left_running(&moto).await.is_empty());
    // AND its evidence is in the run's day, under the first invocation's run
    let objects = moto
        .objects(BUCKET, "drills/2026/11/25/20261125T120000Z-req1/")
        .await;
    assert_eq!(objects.len(), 1, "{objects:?}");

    // WHEN the same message is delivered again (a replay) THEN nothing is recorded twice
    let (again, _) = drill_at(
        &moto,
        &settings(10),
        Some(&queue),
        &event,
        now() + TimeDelta::minutes(32),
        "req-4",
    )
    .await;
    assert!(records(&again.unwrap()).is_empty());
    assert_eq!(moto.objects(BUCKET, "drills/").await.len(), 1);
}

#[tokio::test]
async fn a_restore_that_gets_ready_later_passes_with_its_time_to_restore() {
    let moto = Moto::start().await;
    let w = world(&moto).await;
    moto.evidence_bucket(BUCKET).await;
    moto.hold_restores(DR2, "instance", Some("initializing"));
    let queue = moto.work_queue("drill-work", "drill").await;
    let (answer, _) = drill_at(
        &moto,
        &settings(10),
        Some(&queue),
        &json!({"regions": [DR2]}),
        now(),
        "req-1",
    )
    .await;
    assert_eq!(answer.unwrap()["counts"]["pending"], 1);
    moto.hold_restores(DR2, "instance", None);
    let batch = moto.receive(&queue).await;
    let event = sqs_event(&queue, &batch);
    let (answer, _) = drill_at(
        &moto,
        &settings(10),
        Some(&queue),
        &event,
        now() + TimeDelta::minutes(4),
        "req-2",
    )
    .await;
    let answer = answer.unwrap();
    assert_eq!(
        records(&answer),
        [(w.instance.clone(), DR2.to_string(), "passed".to_string())]
    );
    let rto = answer["records"][0]["rto_seconds"].as_i64().unwrap();
    assert!((239..=241).contains(&rto), "{answer}");
}

/// A throwaway instance in us-west-2 as a drill run makes it, with these tags on top.
async fn throwaway(moto: &Moto, tags: &[(&str, &str)]) -> String {
    moto.instance(DR, tags, 0).await
}

#[tokio::test]
async fn what_a_killed_run_left_is_cleaned_by_the_next_and_nothing_foreign_is_touched() {
    let moto = Moto::start().await;
    moto.evidence_bucket(BUCKET).await;
    let w = world(&moto).await;
    let old = (now() - TimeDelta::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let young = (now() - TimeDelta::minutes(5)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    // GIVEN a restore a killed run left an hour ago, and one of a run still going
    let left = throwaway(
        &moto,
        &[
            ("backup:managed-by", "ec2-backup"),
            ("backup:drill-of", "ami-0123456789abcdef0"),
            ("backup:drill-started-at", &old),
        ],
    )
    .await;
    let going = throwaway(
        &moto,
        &[
            ("backup:managed-by", "ec2-backup"),
            ("backup:drill-of", "ami-0123456789abcdef0"),
            ("backup:drill-started-at", &young),
        ],
    )
    .await;
    // AND look-alikes: another deployment's drill, one of ours without drill-of, a user's
    let other = throwaway(
        &moto,
        &[
            ("backup:managed-by", "other"),
            ("backup:drill-of", "ami-0123456789abcdef0"),
            ("backup:drill-started-at", &old),
        ],
    )
    .await;
    let no_drill_of = throwaway(
        &moto,
        &[
            ("backup:managed-by", "ec2-backup"),
            ("backup:drill-started-at", &old),
        ],
    )
    .await;
    let users = throwaway(&moto, &[("backup:drill", "true"), ("Name", "drill-i-0123")]).await;

    // WHEN the drill runs
    let answer = drill(&moto, &settings(10), now()).await;

    // THEN the leftover is terminated, and the rest left as they were
    assert_eq!(
        answer["counts"]["cleaned_up"],
        1 + 3,
        "the leftover and the run's three: {answer}"
    );
    let state = async |id: &str| {
        let out = moto
            .uncounted_client(DR)
            .describe_instances()
            .instance_ids(id)
            .send()
            .await
            .unwrap();
        out.reservations()[0].instances()[0]
            .state()
            .unwrap()
            .name()
            .unwrap()
            .as_str()
            .to_string()
    };
    assert_eq!(state(&left).await, "terminated");
    for id in [&going, &other, &no_drill_of, &users] {
        assert_eq!(state(id).await, "running", "{id}");
    }
    assert_eq!(records(&answer).len(), 3, "{answer} {w:?}", w = w.instance);
}

#[tokio::test]
async fn a_dry_run_says_what_it_would_restore_and_restores_nothing() {
    let moto = Moto::start().await;
    let w = world(&moto).await;
    moto.evidence_bucket(BUCKET).await;
    let config = Config {
        dry_run: true,
        ..config()
    };
    let s = settings(10);
    let drill = Drill {
        setting: Setting {
            config: &config,
            queue: None,
            now: now(),
        },
        settings: &s,
        clients: moto.clients(HOME),
        evidence: Some(moto.evidence(BUCKET).await),
        run: Run::new(now(), "req-1"),
        poll: std::time::Duration::from_millis(50),
        // Delivered at once: the test says when the next look happens.
        recheck_seconds: 0,
        started: std::time::Instant::now(),
    };
    moto.reset_calls();
    let answer = shared::drill::handle(&drill, &json!({"resource_ids": [w.instance]}))
        .await
        .unwrap();
    assert_eq!(answer["dry_run"], true);
    assert_eq!(
        answer["would_restore"].as_array().unwrap().len(),
        2,
        "{answer}"
    );
    assert!(records(&answer).is_empty());
    assert!(left_running(&moto).await.is_empty());
    assert!(moto.objects(BUCKET, "drills/").await.is_empty());
    for (region, calls) in moto.calls() {
        for action in calls.keys() {
            assert!(
                action.starts_with("Describe"),
                "a dry run called {action} in {region}"
            );
        }
    }
}

#[tokio::test]
async fn evidence_that_cannot_be_written_fails_the_run_and_a_bad_payload_is_refused() {
    // GIVEN no bucket at all
    let moto = Moto::start().await;
    world(&moto).await;
    let (answer, _) = drill_at(&moto, &settings(10), None, &json!({}), now(), "req-1").await;
    let err = answer.unwrap_err();
    assert!(matches!(err, shared::Error::SomeFailed { .. }), "{err}");
    assert!(err.to_string().contains("NoSuchBucket"), "{err}");
    // AND the restores were still cleaned up, and no backup is marked: no pass without its
    // evidence
    assert!(left_running(&moto).await.is_empty());
    for region in [HOME, DR, DR2] {
        for image in moto.images(region).await {
            assert!(
                !tag_map(image.tags()).contains_key("backup:drill-result"),
                "{image:?}"
            );
        }
        for snapshot in moto.snapshots(region).await {
            assert!(
                !tag_map(snapshot.tags()).contains_key("backup:drill-result"),
                "{snapshot:?}"
            );
        }
    }

    let (answer, _) = drill_at(
        &moto,
        &settings(10),
        None,
        &json!({"instance_ids": ["i-0123456789abcdef0"]}),
        now(),
        "req-2",
    )
    .await;
    let err = answer.unwrap_err().to_string();
    assert!(
        err.contains("expected an EventBridge") && err.contains("resource_ids"),
        "{err}"
    );
    // A continuation of another deployment is refused (and so dead-lettered by the redrive).
    let body = json!({"continuation": 1, "deployment": "other", "function": "drill", "work": {"run": "r", "run_started_at": "2026-11-25T12:00:00Z", "restores": []}});
    let record = sqs_record("m-1", &body.to_string(), "drill-work");
    let (answer, _) = drill_at(
        &moto,
        &settings(10),
        None,
        &json!({"Records": [record]}),
        now(),
        "req-3",
    )
    .await;
    assert!(
        answer
            .unwrap_err()
            .to_string()
            .contains("deployment \"other\"")
    );
}

#[tokio::test]
async fn expire_keeps_the_last_proven_backup_so_the_proof_outlives_its_retention() {
    // GIVEN the world drilled, backed up again a week later, and its drilled backups expired
    // the day after, KEEP_LAST=0
    let moto = Moto::start().await;
    let w = world(&moto).await;
    moto.evidence_bucket(BUCKET).await;
    let answer = drill(&moto, &settings(10), now()).await;
    assert_eq!(answer["counts"]["passed"], 3, "{answer}");
    backed_up_at(
        &moto,
        &[&w.instance],
        &[&w.volume],
        now() + TimeDelta::days(7),
    )
    .await;
    let config = Config {
        keep_last: 0,
        ..config()
    };
    let later = now() + TimeDelta::days(8);

    // WHEN expire sweeps
    let report = shared::expire::handle(&config, &moto.clients(HOME), None, &json!({}), later)
        .await
        .expect("expire ran");

    // THEN each drilled backup is kept as the last proven one, so its pass stays readable
    for r in answer["records"].as_array().unwrap() {
        let region = r["region"].as_str().unwrap();
        let kept = report["regions"][region]["kept"].as_array().unwrap();
        assert!(
            kept.iter()
                .any(|k| k["id"] == r["backup"] && k["reason"] == "last-proven"),
            "{region}: {report}"
        );
    }
    let original = report["regions"][HOME]["deregistered"].as_array().unwrap();
    assert!(
        original.iter().any(|d| d["source"] == w.instance.as_str()),
        "the undrilled original at home goes: {report}"
    );
}

#[tokio::test]
async fn an_instance_type_ec2_does_not_offer_and_a_volume_in_error_are_failed_records() {
    // GIVEN the world, DRILL_INSTANCE_TYPE naming a type EC2 does not know, and volumes made
    // from snapshots at home going into the error state
    let moto = Moto::start().await;
    let w = world(&moto).await;
    moto.evidence_bucket(BUCKET).await;
    moto.hold_restores(HOME, "volume", Some("error"));
    let s = DrillSettings {
        instance_type: Some("m99.huge".into()),
        ..settings(10)
    };

    // WHEN the drill runs THEN every restore failed, each with what EC2 said, and nothing is left
    let answer = drill(&moto, &s, now()).await;
    assert_eq!(answer["counts"]["failed"], 3, "{answer}");
    for r in answer["records"].as_array().unwrap() {
        if r["resource"] == w.volume.as_str() {
            assert_eq!(r["error_code"], "VolumeError", "{r}");
            assert!(
                r["restored"].is_string() && r["cleaned_up_at"].is_string(),
                "{r}"
            );
        } else {
            assert_eq!(r["error_code"], "InvalidParameterValue", "{r}");
            assert!(r["error"].as_str().unwrap().contains("m99.huge"), "{r}");
        }
    }
    assert!(left_running(&moto).await.is_empty());
}

#[tokio::test]
async fn a_scheduled_event_delivered_twice_makes_one_restore_of_each_resource() {
    // GIVEN restores in us-west-2 that take their time, and a work queue
    let moto = Moto::start().await;
    let w = world(&moto).await;
    moto.evidence_bucket(BUCKET).await;
    moto.hold_restores(DR, "instance", Some("initializing"));
    let queue = moto.work_queue("drill-work", "drill").await;
    // (the event's time is the run's start, as the schedule fires it)
    let scheduled = event(
        "scheduled-event.json",
        &[("2026-11-25T03:00:00Z", "2026-11-25T12:00:00Z")],
    );

    // WHEN the schedule's event comes, and again a minute later (a retry, or a duplicate)
    let (first, _) = drill_at(
        &moto,
        &settings(10),
        Some(&queue),
        &scheduled,
        now(),
        "req-1",
    )
    .await;
    let first = first.unwrap();
    let running = left_running(&moto).await;
    let (second, _) = drill_at(
        &moto,
        &settings(10),
        Some(&queue),
        &scheduled,
        now() + TimeDelta::minutes(1),
        "req-2",
    )
    .await;
    let second = second.unwrap();

    // THEN the second makes no restore of its own: the one in us-west-2 is the first's, still
    // pending; what passed at once is not due
    assert_eq!(first["counts"]["pending"], 1, "{first}");
    assert_eq!(second["counts"]["pending"], 0, "{second}");
    assert!(records(&second).is_empty(), "{second}");
    assert_eq!(left_running(&moto).await, running);
    // AND the first's continuation finishes it: one record of the instance in us-west-2
    moto.hold_restores(DR, "instance", None);
    let batch = moto.receive(&queue).await;
    assert_eq!(batch.len(), 1, "one continuation");
    let (done, _) = drill_at(
        &moto,
        &settings(10),
        Some(&queue),
        &sqs_event(&queue, &batch),
        now() + TimeDelta::minutes(2),
        "req-3",
    )
    .await;
    assert_eq!(
        records(&done.unwrap()),
        [(w.instance.clone(), DR.to_string(), "passed".to_string())]
    );
    assert_eq!(moto.objects(BUCKET, "drills/").await.len(), 3);
    assert!(left_running(&moto).await.is_empty());
}
