//! replicate against the moto server: original backups are copied into their DR regions once,
//! tagged in the same call, whatever the number of events; the sweep makes exactly the missing
//! copies; limits defer, they do not fail.

use chrono::{DateTime, TimeDelta, Utc};
use integration_tests::*;
use serde_json::{Value, json};
use shared::Config;
use shared::create::ResourceKind::{Instance, Volume};
use shared::tags::parse_time;
use std::collections::BTreeMap;

const KEY_DR: &str = "arn:aws:kms:us-west-2:123456789012:key/0f1e2d3c-dr-key";

fn now() -> DateTime<Utc> {
    parse_time("2026-11-25T03:00:00Z").unwrap()
}

/// The moto server for one test, its EC2 stamps (see [`Moto::set_clock`]) a day after `now()`:
/// after every instant these tests make a backup at, as AWS stamps a backup a little after the
/// `P:created-at` its function wrote. Then the tests pass whatever the machine's clock says.
async fn start() -> Moto {
    let moto = Moto::start().await;
    moto.set_clock(now() + TimeDelta::days(1));
    moto
}

/// When the copies are made: a little after the backup.
fn later() -> DateTime<Utc> {
    now() + TimeDelta::minutes(12)
}

fn config() -> Config {
    Config {
        copy_to_regions: vec![region(DR)],
        ..Config::default()
    }
}

/// An AMI backup made by create-image of a new instance tagged `Backup=true` and `tags`.
async fn image_backup(moto: &Moto, tags: &[(&str, &str)]) -> String {
    let mut all = vec![("Backup", "true")];
    all.extend_from_slice(tags);
    let instance = moto.instance(HOME, &all, 0).await;
    made(
        shared::create::handle(
            Instance,
            &config(),
            &moto.ec2(HOME),
            None,
            &json!({ "instance_ids": [instance] }),
            "on-demand-request",
            now(),
        )
        .await,
    )
}

/// A standalone snapshot backup made by create-snapshot of a new tagged volume.
async fn snapshot_backup(moto: &Moto, tags: &[(&str, &str)]) -> String {
    let mut all = vec![("Backup", "true")];
    all.extend_from_slice(tags);
    let volume = moto.volume(HOME, &all).await;
    made(
        shared::create::handle(
            Volume,
            &config(),
            &moto.ec2(HOME),
            None,
            &json!({ "volume_ids": [volume] }),
            "on-demand-request",
            now(),
        )
        .await,
    )
}

fn made(report: Result<Value, shared::Error>) -> String {
    let report = report.expect("backup made");
    report["created"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no backup in {report}"))
        .to_string()
}

async fn replicate_in(
    moto: &Moto,
    home: &str,
    config: &Config,
    payload: &Value,
) -> Result<Value, shared::Error> {
    shared::replicate::handle(config, &moto.clients(home), None, payload, later()).await
}

async fn replicate(moto: &Moto, config: &Config, payload: &Value) -> Value {
    replicate_in(moto, HOME, config, payload)
        .await
        .expect("replicate succeeds")
}

fn available(ami: &str) -> Value {
    event(
        "ami-state-change-available.json",
        &[("ami-0a1b2c3d4e5f67890", ami)],
    )
}

fn snapshot_created(sample: &str, snap: &str) -> Value {
    event(sample, &[("snap-01234567890abcdef", snap)])
}

fn sweep_event() -> Value {
    event("scheduled-event.json", &[])
}

/// Images in `region` that are copies of `source`.
async fn image_copies(moto: &Moto, region: &str, source: &str) -> Vec<aws_sdk_ec2::types::Image> {
    moto.images(region)
        .await
        .into_iter()
        .filter(|i| tag_map(i.tags()).get("backup:copy-of").map(String::as_str) == Some(source))
        .collect()
}

async fn snapshot_copies(
    moto: &Moto,
    region: &str,
    source: &str,
) -> Vec<aws_sdk_ec2::types::Snapshot> {
    moto.snapshots(region)
        .await
        .into_iter()
        .filter(|s| tag_map(s.tags()).get("backup:copy-of").map(String::as_str) == Some(source))
        .collect()
}

async fn image_tags(moto: &Moto, region: &str, id: &str) -> BTreeMap<String, String> {
    let image = moto
        .images(region)
        .await
        .into_iter()
        .find(|i| i.image_id() == Some(id))
        .unwrap_or_else(|| panic!("{id} not in {region}"));
    tag_map(image.tags())
}

/// `(source, region, id)` of each entry of `copied`.
fn copied(report: &Value) -> Vec<(String, String, String)> {
    report["copied"]
        .as_array()
        .unwrap_or_else(|| panic!("no copied in {report}"))
        .iter()
        .map(|c| {
            (
                c["source"].as_str().unwrap_or_default().to_string(),
                c["region"].as_str().unwrap_or_default().to_string(),
                c["id"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn reasons(report: &Value) -> Vec<String> {
    report["skipped"]
        .as_array()
        .unwrap_or_else(|| panic!("no skipped in {report}"))
        .iter()
        .map(|s| s["reason"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn count(calls: &BTreeMap<String, u64>, action: &str) -> u64 {
    calls.get(action).copied().unwrap_or(0)
}

fn failed_report(err: shared::Error) -> Value {
    let shared::Error::SomeFailed { result, .. } = err else {
        panic!("expected a partial failure, got {err}")
    };
    serde_json::from_str(&result).expect("the result is JSON")
}

#[tokio::test]
async fn an_available_event_copies_the_ami_into_its_dr_region_tagged_in_the_same_call() {
    // Scenario: the AMI of a tagged instance becomes available; its copy appears in the DR
    // region with the source's tags and the copy's own, and the original records it.

    // GIVEN an AMI backup of web-01, copied to us-west-2 and kept there 30 days
    let moto = start().await;
    let ami = image_backup(
        &moto,
        &[
            ("Name", "web-01"),
            ("CostCenter", "42"),
            ("backup:copy-retention", "30d"),
        ],
    )
    .await;
    moto.reset_calls();

    // WHEN its "available" event arrives
    let report = replicate(&moto, &config(), &available(&ami)).await;

    // THEN it cost one describe per region, one CopyImage, one CreateTags on the original
    let (home, dr) = (moto.calls_in(HOME), moto.calls_in(DR));
    assert_eq!(count(&home, "DescribeImages"), 1, "{home:?}");
    assert_eq!(count(&home, "CreateTags"), 1, "{home:?}");
    assert_eq!(count(&dr, "DescribeImages"), 1, "{dr:?}");
    assert_eq!(count(&dr, "CopyImage"), 1, "{dr:?}");
    assert_eq!(
        count(&dr, "CreateTags"),
        0,
        "tagged in the same call: {dr:?}"
    );
    moto.assert_calls_allowed("replicate");

    // AND one copy is made in us-west-2 and reported
    let copies = image_copies(&moto, DR, &ami).await;
    assert_eq!(copies.len(), 1);
    let copy = &copies[0];
    let copy_id = copy.image_id().unwrap().to_string();
    assert_eq!(
        copied(&report),
        vec![(ami.clone(), DR.to_string(), copy_id.clone())]
    );
    assert_eq!(report["failed"], json!([]));
    assert_eq!(report["deferred"], json!([]));

    // AND it carries the source's tags and the copy's, set by the CopyImage call itself
    let tags = tag_map(copy.tags());
    for (k, v) in [
        ("Name", "web-01"),
        ("CostCenter", "42"),
        ("backup:managed-by", "ec2-backup"),
        ("backup:kind", "image"),
        ("backup:copy-of", ami.as_str()),
        ("backup:source-region", HOME),
        ("backup:created-at", "2026-11-25T03:00:00Z"),
        ("backup:expires-at", "2026-12-25T03:00:00Z"),
        ("backup:copy-to", ""),
        ("backup:copy-retention", "30d"),
    ] {
        assert_eq!(tags.get(k).map(String::as_str), Some(v), "{k} in {tags:?}");
    }
    assert!(!tags.contains_key("backup:copies"), "{tags:?}");
    assert!(
        copy.name()
            .unwrap()
            .ends_with(&format!(" copy of {ami} from {HOME}")),
        "{:?}",
        copy.name()
    );
    assert!(
        copy.description()
            .unwrap()
            .starts_with(&format!("ec2-backup DR copy of {ami} from {HOME}")),
        "{:?}",
        copy.description()
    );
    // Its snapshots are tagged too (moto makes the source's snapshots in the DR region).
    let snapshots = snapshot_copies(&moto, DR, &ami).await;
    assert_eq!(snapshots.len(), 1);
    assert_eq!(
        tag_map(snapshots[0].tags())
            .get("backup:expires-at")
            .map(String::as_str),
        Some("2026-12-25T03:00:00Z")
    );

    // AND the original says where its copy is
    let original = image_tags(&moto, HOME, &ami).await;
    assert_eq!(original["backup:copies"], format!("{DR}={copy_id}"));
}

#[tokio::test]
async fn a_backup_is_copied_into_each_of_two_regions() {
    // Scenario: P:copy-to names two DR regions.
    // GIVEN an AMI backup with backup:copy-to=us-west-2,eu-west-1
    let moto = start().await;
    let ami = image_backup(&moto, &[("backup:copy-to", "us-west-2,eu-west-1")]).await;

    // WHEN its available event arrives
    let report = replicate(&moto, &config(), &available(&ami)).await;

    // THEN there is one copy in each region, and the original lists both
    let west = image_copies(&moto, DR, &ami).await;
    let eu = image_copies(&moto, DR2, &ami).await;
    assert_eq!((west.len(), eu.len()), (1, 1));
    let (west, eu) = (west[0].image_id().unwrap(), eu[0].image_id().unwrap());
    assert_eq!(
        copied(&report),
        vec![
            (ami.clone(), DR2.to_string(), eu.to_string()),
            (ami.clone(), DR.to_string(), west.to_string()),
        ]
    );
    assert_eq!(
        image_tags(&moto, HOME, &ami).await["backup:copies"],
        format!("{DR2}={eu},{DR}={west}")
    );
}

#[tokio::test]
async fn replaying_the_same_event_three_times_makes_one_copy_per_region() {
    // Scenario: EventBridge delivers the same event more than once, in sequence and at once.
    // GIVEN an AMI backup going to two regions
    let moto = start().await;
    let ami = image_backup(&moto, &[("backup:copy-to", "us-west-2,eu-west-1")]).await;
    let e = available(&ami);

    // WHEN the event is handled three times, one after the other
    let first = replicate(&moto, &config(), &e).await;
    moto.reset_calls();
    let second = replicate(&moto, &config(), &e).await;
    let third = replicate(&moto, &config(), &e).await;

    // THEN there is still one copy per region; the replays say so and copy nothing
    assert_eq!(copied(&first).len(), 2);
    for replay in [&second, &third] {
        assert_eq!(replay["copied"], json!([]), "{replay}");
        let reasons = reasons(replay);
        assert_eq!(reasons.len(), 2, "{replay}");
        assert!(
            reasons.iter().all(|r| r.contains("already copied")),
            "{reasons:?}"
        );
    }
    assert_eq!(image_copies(&moto, DR, &ami).await.len(), 1);
    assert_eq!(image_copies(&moto, DR2, &ami).await.len(), 1);
    for region in [DR, DR2] {
        assert_eq!(count(&moto.calls_in(region), "CopyImage"), 0);
    }
    // P:copies is already right: no CreateTags either.
    assert_eq!(count(&moto.calls_in(HOME), "CreateTags"), 0);

    // AND two deliveries racing each other (both looked before either copied) still make one
    // copy per region: the second CopyImage, with the same ClientToken, returns the first image
    let other = image_backup(&moto, &[("Name", "db-01")]).await;
    let e = available(&other);
    let config = config();
    let (a, b) = tokio::join!(replicate(&moto, &config, &e), replicate(&moto, &config, &e));
    assert_eq!(image_copies(&moto, DR, &other).await.len(), 1, "{a} {b}");
    let first = image_copies(&moto, DR, &other).await[0]
        .image_id()
        .unwrap()
        .to_string();
    let keys = shared::tags::TagKeys::new("backup");
    let clients = moto.clients(HOME);
    let mut backup = clients
        .home()
        .backups(
            &keys,
            &shared::backup::BackupQuery::by_id(
                shared::tags::Kind::Image,
                std::slice::from_ref(&other),
            ),
        )
        .await
        .unwrap()
        .remove(0);
    // The plan as the loser of the race saw it: no copy in the destination, no P:copies yet.
    backup.tags.retain(|(k, _)| k != "backup:copies");
    let eligible = shared::replicate::plan::Eligible {
        backup,
        targets: vec![region(DR)],
    };
    let plan = shared::replicate::plan::missing_copies(&keys, &config, &[eligible], &[], later());
    let dr = clients.region(&region(DR));
    let again = dr.copy_image(&plan.jobs[0]).await.unwrap();
    assert_eq!(again, first);
    // AND should the tokens differ, the AMI name (unique per region) refuses a second copy,
    // which replicate reports as a skip, not a failure
    let mut other_token = plan.jobs[0].clone();
    other_token.client_token.push_str("-x");
    let err = dr.copy_image(&other_token).await.unwrap_err();
    assert_eq!(err.code(), Some("InvalidAMIName.Duplicate"));
    assert_eq!(image_copies(&moto, DR, &other).await.len(), 1);
}

#[tokio::test]
async fn images_that_are_not_original_backups_of_ours_are_ignored_with_a_reason() {
    // Scenario: an unmanaged AMI, another deployment's AMI and P:copy-to=none all become
    // available; none is copied.
    let moto = start().await;
    // GIVEN an AMI made by hand from an untagged instance
    let instance = moto.instance(HOME, &[], 0).await;
    let by_hand = moto
        .client(HOME)
        .create_image()
        .instance_id(&instance)
        .name("golden-image")
        .send()
        .await
        .unwrap()
        .image_id()
        .unwrap()
        .to_string();
    // AND a backup of another deployment, and one of ours with backup:copy-to=none
    let theirs = image_backup(&moto, &[]).await;
    moto.set_tags(HOME, &theirs, &[("backup:managed-by", "someone-else")])
        .await;
    let no_dr = image_backup(&moto, &[("backup:copy-to", "none")]).await;
    moto.reset_calls();

    // WHEN their available events arrive
    let mut all = Vec::new();
    for ami in [&by_hand, &theirs, &no_dr] {
        let report = replicate(&moto, &config(), &available(ami)).await;
        assert_eq!(report["copied"], json!([]), "{report}");
        all.push(reasons(&report).join(" "));
    }

    // THEN each is skipped with its reason, and nothing is copied anywhere
    assert!(all[0].contains("no backup:managed-by tag"), "{}", all[0]);
    assert!(all[1].contains("\"someone-else\""), "{}", all[1]);
    assert!(
        all[2].contains("backup:copy-to=\"\": no DR region"),
        "{}",
        all[2]
    );
    assert_eq!(count(&moto.calls_in(DR), "DescribeImages"), 0);
    assert!(moto.images(DR).await.is_empty());
}

#[tokio::test]
async fn a_copys_own_available_event_in_the_dr_region_makes_no_copy_loop() {
    // Scenario: the same rule is deployed in the DR region, where the copy's own "available"
    // event fires; it must not be copied back (or anywhere).
    // GIVEN an AMI copied into us-west-2, whose copy-to names us-east-1 too
    let moto = start().await;
    let ami = image_backup(&moto, &[("backup:copy-to", "us-west-2")]).await;
    replicate(&moto, &config(), &available(&ami)).await;
    let copy = image_copies(&moto, DR, &ami).await[0]
        .image_id()
        .unwrap()
        .to_string();
    moto.reset_calls();

    // WHEN the DR region's replicate gets the copy's available event, and then sweeps
    let dr_config = Config {
        copy_to_regions: vec![region(HOME)],
        ..Config::default()
    };
    let e = event(
        "ami-state-change-available-dr-copy.json",
        &[("ami-0fedcba9876543210", &copy)],
    );
    let report = replicate_in(&moto, DR, &dr_config, &e).await.unwrap();
    let swept = replicate_in(&moto, DR, &dr_config, &sweep_event())
        .await
        .unwrap();

    // THEN the copy is skipped as a copy, and nothing was copied anywhere
    assert_eq!(report["copied"], json!([]));
    assert!(
        reasons(&report)[0].contains(&format!("a DR copy of {ami}")),
        "{report}"
    );
    assert_eq!(swept["copied"], json!([]), "{swept}");
    for region in [HOME, DR, DR2] {
        assert_eq!(count(&moto.calls_in(region), "CopyImage"), 0);
    }
    assert_eq!(moto.images(HOME).await.len(), 1);
}

#[tokio::test]
async fn a_failed_ami_event_is_listed_and_nothing_is_copied() {
    // Scenario: CreateImage ended in the "failed" state.
    // GIVEN a backup AMI and its "failed" event (the sample's region changed to ours)
    let moto = start().await;
    let ami = image_backup(&moto, &[]).await;
    let e = event(
        "ami-state-change-failed.json",
        &[("ami-0fedcba9876543210", &ami), ("us-west-2", HOME)],
    );
    moto.reset_calls();

    // WHEN it arrives
    let report = replicate(&moto, &config(), &e).await;

    // THEN the AMI is listed with AWS's error message, the invocation succeeds (a retry would
    // change nothing), and nothing is copied
    assert_eq!(sources(&report, "skipped"), vec![ami.clone()]);
    let reason = &reasons(&report)[0];
    assert!(
        reason.contains("the AMI failed (Description of failure)"),
        "{reason}"
    );
    assert_eq!(report["copied"], json!([]));
    assert_eq!(count(&moto.calls_in(DR), "CopyImage"), 0);
    moto.assert_calls_allowed("replicate");
}

#[tokio::test]
async fn a_snapshot_notification_copies_the_standalone_snapshot_once() {
    // Scenario: a standalone EBS snapshot backup completes; both ARN shapes of the docs.
    // GIVEN a snapshot backup of a tagged volume
    let moto = start().await;
    let snap = snapshot_backup(&moto, &[("Name", "data-01")]).await;
    moto.reset_calls();

    // WHEN its createSnapshot notification arrives, and again in the other ARN shape
    let report = replicate(
        &moto,
        &config(),
        &snapshot_created("ebs-snapshot-create-succeeded.json", &snap),
    )
    .await;
    let replay = replicate(
        &moto,
        &config(),
        &snapshot_created("ebs-snapshot-create-succeeded-region-first.json", &snap),
    )
    .await;

    // THEN one CopySnapshot made one tagged copy in us-west-2
    let copies = snapshot_copies(&moto, DR, &snap).await;
    assert_eq!(copies.len(), 1);
    let copy = &copies[0];
    assert_eq!(
        copied(&report),
        vec![(
            snap.clone(),
            DR.to_string(),
            copy.snapshot_id().unwrap().to_string()
        )]
    );
    assert_eq!(replay["copied"], json!([]));
    assert!(reasons(&replay)[0].contains("already copied"), "{replay}");
    let tags = tag_map(copy.tags());
    for (k, v) in [
        ("Name", "data-01"),
        ("backup:kind", "snapshot"),
        ("backup:copy-of", snap.as_str()),
        ("backup:source-region", HOME),
        ("backup:created-at", "2026-11-25T03:00:00Z"),
        ("backup:expires-at", "2026-12-02T03:00:00Z"),
        ("backup:copy-to", ""),
    ] {
        assert_eq!(tags.get(k).map(String::as_str), Some(v), "{k} in {tags:?}");
    }
    assert!(
        copy.description()
            .unwrap()
            .starts_with(&format!("ec2-backup DR copy of {snap} from {HOME}")),
        "{:?}",
        copy.description()
    );
    let dr = moto.calls_in(DR);
    assert_eq!(count(&dr, "CopySnapshot"), 1, "{dr:?}");
    assert_eq!(count(&dr, "CreateTags"), 0, "{dr:?}");
    let original = moto
        .snapshots(HOME)
        .await
        .into_iter()
        .find(|s| s.snapshot_id() == Some(snap.as_str()))
        .unwrap();
    assert_eq!(
        tag_map(original.tags())["backup:copies"],
        format!("{DR}={}", copy.snapshot_id().unwrap())
    );
    moto.assert_calls_allowed("replicate");
}

#[tokio::test]
async fn snapshot_notifications_that_are_not_for_a_standalone_backup_are_skipped() {
    // Scenario: the snapshot of an AMI backup completes (it travels with its AMI); a copy
    // and a failed snapshot notify too; a multi-volume set reports with its own detail-type.
    let moto = start().await;
    // GIVEN an AMI backup, whose snapshot carries the AMI's tags (P:kind=image)
    let ami = image_backup(&moto, &[]).await;
    let ami_snapshot = moto
        .snapshots(HOME)
        .await
        .into_iter()
        .find(|s| tag_map(s.tags()).contains_key("backup:source"))
        .unwrap()
        .snapshot_id()
        .unwrap()
        .to_string();
    moto.reset_calls();

    // WHEN its createSnapshot notification arrives
    let report = replicate(
        &moto,
        &config(),
        &snapshot_created("ebs-snapshot-create-succeeded.json", &ami_snapshot),
    )
    .await;
    // THEN it is skipped: it travels with its AMI
    assert!(
        reasons(&report)[0].contains("copied with its AMI"),
        "{report} ({ami})"
    );

    // AND the other notifications are skipped with their reason, and nothing is copied
    for (sample, want) in [
        // A copy's own event, in its destination region: not this home region's.
        ("ebs-snapshot-copy-succeeded.json", "is from us-west-2"),
        ("ebs-snapshot-create-failed.json", "\"failed\""),
        (
            "ebs-multi-volume-snapshots-completed.json",
            "EBS Multi-Volume Snapshots Completion Status",
        ),
        ("ami-state-change-deregistered.json", "deregistered"),
    ] {
        let report = replicate(&moto, &config(), &event(sample, &[])).await;
        assert_eq!(report["copied"], json!([]));
        assert!(reasons(&report)[0].contains(want), "{sample}: {report}");
    }
    assert_eq!(count(&moto.calls_in(DR), "CopySnapshot"), 0);
    assert_eq!(count(&moto.calls_in(DR), "CopyImage"), 0);
}

#[tokio::test]
async fn the_reconcile_sweep_makes_exactly_the_missing_copies_with_one_describe_per_region() {
    // Scenario: events were missed; the schedule finds every original whose copies are
    // missing and makes just those.
    // GIVEN four AMI backups and two snapshot backups, going to one or two regions; the first
    // AMI already copied everywhere, the second only to us-west-2
    let moto = start().await;
    let both = [("backup:copy-to", "us-west-2,eu-west-1")];
    let done = image_backup(&moto, &both).await;
    let half = image_backup(&moto, &both).await;
    let none_yet = image_backup(&moto, &both).await;
    let west_only = image_backup(&moto, &[]).await;
    let no_dr = image_backup(&moto, &[("backup:copy-to", "none")]).await;
    let snap = snapshot_backup(&moto, &both).await;
    let snap_done = snapshot_backup(&moto, &[]).await;
    replicate(&moto, &config(), &available(&done)).await;
    replicate(&moto, &config(), &json!({"snapshot_ids": [snap_done]})).await;
    // `half` reaches us-west-2 only: copy it, then take eu-west-1's copy away again.
    replicate(&moto, &config(), &available(&half)).await;
    let eu_copy = image_copies(&moto, DR2, &half).await[0]
        .image_id()
        .unwrap()
        .to_string();
    moto.client(DR2)
        .deregister_image()
        .image_id(&eu_copy)
        .send()
        .await
        .unwrap();
    moto.reset_calls();

    // WHEN the schedule fires
    let report = replicate(&moto, &config(), &sweep_event()).await;
    let (home, dr, dr2) = (moto.calls_in(HOME), moto.calls_in(DR), moto.calls_in(DR2));

    // THEN exactly the missing copies are made
    let mut made: Vec<(String, String)> = copied(&report)
        .into_iter()
        .map(|(s, r, _)| (s, r))
        .collect();
    made.sort();
    let mut want = vec![
        (half.clone(), DR2.to_string()),
        (none_yet.clone(), DR.to_string()),
        (none_yet.clone(), DR2.to_string()),
        (west_only.clone(), DR.to_string()),
        (snap.clone(), DR.to_string()),
        (snap.clone(), DR2.to_string()),
    ];
    want.sort();
    assert_eq!(made, want, "{report}");
    assert_eq!(report["failed"], json!([]));
    assert!(
        reasons(&report).iter().any(|r| r.contains("no DR region")),
        "{no_dr} is skipped: {report}"
    );
    for region in [DR, DR2] {
        for source in [&done, &half, &none_yet] {
            assert_eq!(image_copies(&moto, region, source).await.len(), 1);
        }
    }

    // AND the sweep read each region once per kind, whatever the number of backups
    eprintln!("calls per sweep: {HOME} {home:?}, {DR} {dr:?}, {DR2} {dr2:?}");
    assert_eq!(count(&home, "DescribeImages"), 1, "{home:?}");
    assert_eq!(count(&home, "DescribeSnapshots"), 1, "{home:?}");
    for calls in [&dr, &dr2] {
        assert_eq!(count(calls, "DescribeSnapshots"), 1, "{calls:?}");
    }
    assert_eq!(count(&dr, "DescribeImages"), 1, "{dr:?}");
    // Plus one look-up by id of the copy `half` lists in eu-west-1 that the sweep did not see.
    assert_eq!(count(&dr2, "DescribeImages"), 2, "{dr2:?}");
    assert_eq!(count(&dr, "CopyImage") + count(&dr2, "CopyImage"), 4);
    assert_eq!(count(&dr, "CopySnapshot") + count(&dr2, "CopySnapshot"), 2);
    moto.assert_calls_allowed("replicate");

    // AND a second sweep finds nothing missing and copies nothing
    moto.reset_calls();
    let again = replicate(&moto, &config(), &sweep_event()).await;
    assert_eq!(again["copied"], json!([]), "{again}");
    for region in [DR, DR2] {
        let calls = moto.calls_in(region);
        assert_eq!(
            count(&calls, "CopyImage") + count(&calls, "CopySnapshot"),
            0
        );
    }
    assert_eq!(count(&moto.calls_in(HOME), "CreateTags"), 0);
}

#[tokio::test]
async fn the_kms_key_is_chosen_per_destination_region() {
    // Scenario: COPY_KMS_KEYS names a key for us-west-2 only; the source has an encrypted
    // volume; eu-west-1 gets the region's default EBS key and a warning.
    // GIVEN an instance with an encrypted data volume, backed up to both regions
    let moto = start().await;
    let instance = moto
        .instance(
            HOME,
            &[
                ("Backup", "true"),
                ("backup:copy-to", "us-west-2,eu-west-1"),
            ],
            0,
        )
        .await;
    let az = moto
        .client(HOME)
        .describe_instances()
        .instance_ids(&instance)
        .send()
        .await
        .unwrap()
        .reservations()[0]
        .instances()[0]
        .placement()
        .and_then(|p| p.availability_zone())
        .unwrap()
        .to_string();
    let volume = moto
        .client(HOME)
        .create_volume()
        .availability_zone(az)
        .size(8)
        .encrypted(true)
        .send()
        .await
        .unwrap()
        .volume_id()
        .unwrap()
        .to_string();
    moto.attach(HOME, &volume, &instance, "/dev/sdf").await;
    let ami = made(
        shared::create::handle(
            Instance,
            &config(),
            &moto.ec2(HOME),
            None,
            &json!({ "instance_ids": [instance] }),
            "on-demand-request",
            now(),
        )
        .await,
    );
    let config = Config {
        copy_kms_keys: BTreeMap::from([(region(DR), KEY_DR.to_string())]),
        ..config()
    };

    // WHEN its available event arrives
    let report = replicate(&moto, &config, &available(&ami)).await;

    // THEN every snapshot of the us-west-2 copy is encrypted with the named key
    assert_eq!(copied(&report).len(), 2, "{report}");
    let west = snapshot_copies(&moto, DR, &ami).await;
    assert_eq!(west.len(), 2);
    for s in &west {
        assert_eq!(s.encrypted(), Some(true));
        assert_eq!(s.kms_key_id(), Some(KEY_DR));
    }
    // AND the eu-west-1 copy is encrypted with that region's default key, with a warning
    let eu = snapshot_copies(&moto, DR2, &ami).await;
    assert_eq!(eu.len(), 2);
    for s in &eu {
        assert_eq!(s.encrypted(), Some(true));
        assert_ne!(s.kms_key_id(), Some(KEY_DR));
        assert!(s.kms_key_id().is_some_and(|k| !k.is_empty()), "{s:?}");
    }
    let warnings = report["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{report}");
    assert_eq!(warnings[0]["resource"], ami.as_str());
    assert_eq!(warnings[0]["key"], "COPY_KMS_KEYS");
    assert_eq!(warnings[0]["value"], DR2);

    // AND an unencrypted snapshot going to us-west-2 is encrypted there with the key too
    let snap = snapshot_backup(&moto, &[]).await;
    replicate(&moto, &config, &json!({"snapshot_ids": [snap]})).await;
    let copy = &snapshot_copies(&moto, DR, &snap).await[0];
    assert_eq!(
        (copy.encrypted(), copy.kms_key_id()),
        (Some(true), Some(KEY_DR))
    );
}

#[tokio::test]
async fn a_limit_error_defers_the_copy_to_the_next_sweep_without_failing() {
    // Scenario: us-west-2 answers ResourceLimitExceeded (too many copies in flight), and then
    // throttles past the SDK's retries; eu-west-1 is fine.
    // GIVEN an AMI backup going to both regions, and CopyImage in us-west-2 refused
    let moto = start().await;
    let ami = image_backup(&moto, &[("backup:copy-to", "us-west-2,eu-west-1")]).await;
    moto.fault(
        json!({"action": "CopyImage", "region": DR, "code": "ResourceLimitExceeded",
                      "message": "too many copies in flight", "status": 400, "count": 10}),
    );

    // WHEN its available event arrives
    let report = replicate(&moto, &config(), &available(&ami)).await;

    // THEN the us-west-2 copy is deferred, not failed; eu-west-1's is made; the invocation
    // succeeds; and P:copies lists only the copy that exists
    let deferred = report["deferred"].as_array().unwrap();
    assert_eq!(deferred.len(), 1, "{report}");
    assert_eq!(deferred[0]["source"], ami.as_str());
    assert_eq!(deferred[0]["region"], DR);
    assert_eq!(deferred[0]["code"], "ResourceLimitExceeded");
    assert_eq!(report["failed"], json!([]));
    assert_eq!(copied(&report).len(), 1);
    assert_eq!(copied(&report)[0].1, DR2);
    assert!(image_copies(&moto, DR, &ami).await.is_empty());
    let copies = image_tags(&moto, HOME, &ami).await["backup:copies"].clone();
    assert!(
        copies.starts_with(&format!("{DR2}=")) && !copies.contains(DR),
        "{copies}"
    );

    // AND once the limit clears, the next sweep makes the missing copy, and only it
    moto.http("DELETE", "/_test/faults", "");
    let swept = replicate(&moto, &config(), &sweep_event()).await;
    let made = copied(&swept);
    assert_eq!(made.len(), 1, "{swept}");
    assert_eq!((made[0].0.as_str(), made[0].1.as_str()), (ami.as_str(), DR));
    let copies = image_tags(&moto, HOME, &ami).await["backup:copies"].clone();
    assert!(
        copies.contains(&format!("{DR}={}", made[0].2)) && copies.contains(DR2),
        "{copies}"
    );
}

#[tokio::test]
async fn a_copy_that_could_only_start_past_the_deadline_is_deferred_to_the_next_sweep() {
    let moto = start().await;
    let first = image_backup(&moto, &[("backup:copy-to", DR)]).await;
    let second = image_backup(&moto, &[("backup:copy-to", DR)]).await;
    // One CopyImage every two seconds into DR, and 4 s to go (a 2 s margin): the first copy
    // leaves at once, the second could only leave as the margin begins.
    let limits = shared::pacing::RateLimits::parse("CopyImage=0.5/1").unwrap();
    let clients = moto.clients_paced(HOME, limits);
    let t0 = std::time::Instant::now();
    let deadline = shared::pacing::Deadline::new(t0 + std::time::Duration::from_secs(4), t0);
    let report = shared::replicate::handle(
        &config(),
        &clients.until(deadline),
        None,
        &sweep_event(),
        later(),
    )
    .await
    .expect("a deferral is not a failure");
    assert_eq!(copied(&report).len(), 1, "{report}");
    let deferred = report["deferred"].as_array().unwrap();
    assert_eq!(deferred.len(), 1, "{report}");
    assert!(
        deferred[0]["reason"].as_str().unwrap().contains("deadline"),
        "{report}"
    );
    assert_eq!(report["failed"], json!([]));
    // The next sweep, with time, makes the other copy and no second one of the first.
    let next = replicate(&moto, &config(), &sweep_event()).await;
    assert_eq!(copied(&next).len(), 1, "{next}");
    for ami in [&first, &second] {
        assert_eq!(image_copies(&moto, DR, ami).await.len(), 1, "{ami}");
    }
}

#[tokio::test]
async fn a_copy_whose_record_the_deadline_cuts_off_stays_copied_and_the_next_run_records_it_once() {
    // GIVEN an AMI backup for us-west-2, an invocation with 4 s to go (a 2 s margin), and
    // CreateTags at home throttled for as long as the invocation lasts
    let moto = start().await;
    let ami = image_backup(&moto, &[("backup:copy-to", DR)]).await;
    moto.fault(
        json!({"action": "CreateTags", "region": HOME, "code": "RequestLimitExceeded",
                      "message": "Request limit exceeded.", "status": 503}),
    );
    let t0 = std::time::Instant::now();
    let deadline = shared::pacing::Deadline::new(t0 + std::time::Duration::from_secs(4), t0);

    // WHEN its available event arrives
    let report = shared::replicate::handle(
        &config(),
        &moto.clients(HOME).until(deadline),
        None,
        &available(&ami),
        later(),
    )
    .await
    .expect("a copy made is not a failure");

    // THEN the copy is made and reported as made, not failed, and `P:copies` is left unwritten
    let made = copied(&report);
    assert_eq!(made.len(), 1, "{report}");
    assert_eq!((made[0].0.as_str(), made[0].1.as_str()), (ami.as_str(), DR));
    assert_eq!(report["failed"], json!([]), "{report}");
    assert_eq!(report["deferred"], json!([]), "{report}");
    assert!(
        !image_tags(&moto, HOME, &ami)
            .await
            .contains_key("backup:copies"),
        "the write was cut off"
    );

    // AND the next run (the event again, then the sweep) finds the copy by its own tags, makes
    // no second one, and records it
    moto.http("DELETE", "/_test/faults", "");
    let again = replicate(&moto, &config(), &available(&ami)).await;
    assert_eq!(again["copied"], json!([]), "{again}");
    assert!(
        reasons(&again)[0].contains(&format!("already copied to {DR} as {}", made[0].2)),
        "{again}"
    );
    let swept = replicate(&moto, &config(), &sweep_event()).await;
    assert_eq!(swept["copied"], json!([]), "{swept}");
    assert_eq!(image_copies(&moto, DR, &ami).await.len(), 1);
    assert_eq!(
        image_tags(&moto, HOME, &ami).await["backup:copies"],
        format!("{DR}={}", made[0].2)
    );
}

#[tokio::test]
async fn throttling_that_outlasts_the_sdks_retries_is_waited_out_not_deferred() {
    let moto = start().await;
    let ami = image_backup(&moto, &[("backup:copy-to", DR)]).await;
    // Five throttled answers: the SDK's three attempts, then two more rounds of the adapter.
    moto.fault(
        json!({"action": "CopyImage", "region": DR, "code": "RequestLimitExceeded",
                      "message": "slow down", "status": 503, "count": 5}),
    );
    moto.reset_calls();
    let report = replicate(&moto, &config(), &available(&ami)).await;
    assert_eq!(report["deferred"], json!([]), "{report}");
    assert_eq!(report["failed"], json!([]));
    assert_eq!(copied(&report).len(), 1, "{report}");
    assert_eq!(
        count(&moto.calls_in(DR), "CopyImage"),
        6,
        "5 throttled, then the copy"
    );
    assert_eq!(
        image_copies(&moto, DR, &ami).await.len(),
        1,
        "one copy, no duplicate"
    );
}

#[tokio::test]
async fn an_aws_error_fails_that_copy_alone_and_the_invocation_reports_everything() {
    // Scenario: CopyImage in eu-west-1 is refused for good (not a limit).
    let moto = start().await;
    let ami = image_backup(&moto, &[("backup:copy-to", "us-west-2,eu-west-1")]).await;
    moto.fault(
        json!({"action": "CopyImage", "region": DR2, "code": "UnauthorizedOperation",
                      "message": "not allowed", "status": 403, "count": 1}),
    );

    let err = replicate_in(&moto, HOME, &config(), &available(&ami))
        .await
        .unwrap_err();

    let report = failed_report(err);
    assert_eq!(report["failed"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(report["failed"][0]["source"], ami.as_str());
    assert_eq!(report["failed"][0]["region"], DR2);
    assert_eq!(report["failed"][0]["code"], "UnauthorizedOperation");
    assert_eq!(copied(&report).len(), 1);
    assert_eq!(copied(&report)[0].1, DR);
    assert_eq!(image_copies(&moto, DR, &ami).await.len(), 1);
}

#[tokio::test]
async fn on_demand_ids_replicate_now_and_a_missing_id_fails_alone() {
    // Scenario: a person asks for these backups to be replicated now.
    // GIVEN an AMI backup and a snapshot backup
    let moto = start().await;
    let ami = image_backup(&moto, &[]).await;
    let snap = snapshot_backup(&moto, &[]).await;

    // WHEN the samples are sent with their ids (the snapshot one as is)
    let images = replicate(
        &moto,
        &config(),
        &event(
            "replicate-image-ids.json",
            &[("ami-0a1b2c3d4e5f67890", &ami)],
        ),
    )
    .await;
    let snapshots = replicate(
        &moto,
        &config(),
        &event(
            "replicate-snapshot-ids.json",
            &[("snap-01234567890abcdef", &snap)],
        ),
    )
    .await;

    // THEN both are copied
    assert_eq!(copied(&images)[0].0, ami);
    assert_eq!(copied(&snapshots)[0].0, snap);
    assert_eq!(image_copies(&moto, DR, &ami).await.len(), 1);
    assert_eq!(snapshot_copies(&moto, DR, &snap).await.len(), 1);

    // AND an id that does not exist fails alone, with the AWS code, after the rest is done
    let ami2 = image_backup(&moto, &[("Name", "second")]).await;
    let err = replicate_in(
        &moto,
        HOME,
        &config(),
        &json!({"image_ids": [ami2, "ami-0000000000000dead"]}),
    )
    .await
    .unwrap_err();
    let report = failed_report(err);
    assert_eq!(report["failed"][0]["source"], "ami-0000000000000dead");
    assert_eq!(report["failed"][0]["code"], "InvalidAMIID.NotFound");
    assert_eq!(copied(&report)[0].0, ami2);
}

#[tokio::test]
async fn p_copies_is_merged_with_what_the_original_already_lists() {
    // Scenario: the original already lists a copy in another region, a copy of it exists that
    // P:copies does not list (the tag was overwritten), and one was deleted: all end up right.
    // GIVEN an AMI copied to us-west-2 and eu-west-1; the eu-west-1 copy is deleted by hand,
    // and P:copies is overwritten to name ap-south-1 and the deleted copy, not us-west-2's
    let moto = start().await;
    let ami = image_backup(&moto, &[("backup:copy-to", "us-west-2,eu-west-1")]).await;
    replicate(&moto, &config(), &json!({"image_ids": [ami]})).await;
    let gone = image_copies(&moto, DR2, &ami).await[0]
        .image_id()
        .unwrap()
        .to_string();
    moto.client(DR2)
        .deregister_image()
        .image_id(&gone)
        .send()
        .await
        .unwrap();
    let listed = format!("ap-south-1=ami-0123456789abcdef0,{DR2}={gone}");
    moto.set_tags(HOME, &ami, &[("backup:copies", &listed)])
        .await;

    // WHEN it is replicated again
    let report = replicate(&moto, &config(), &available(&ami)).await;

    // THEN P:copies lists the earlier copies and the new one, one per region, sorted
    let west = image_copies(&moto, DR, &ami).await[0]
        .image_id()
        .unwrap()
        .to_string();
    let eu = image_copies(&moto, DR2, &ami).await[0]
        .image_id()
        .unwrap()
        .to_string();
    assert_ne!(eu, gone);
    assert_eq!(
        copied(&report),
        vec![(ami.clone(), DR2.to_string(), eu.clone())]
    );
    assert_eq!(
        image_tags(&moto, HOME, &ami).await["backup:copies"],
        format!("ap-south-1=ami-0123456789abcdef0,{DR2}={eu},{DR}={west}")
    );
}

#[tokio::test]
async fn a_listed_copy_the_describe_misses_is_looked_up_and_not_copied_again() {
    // Scenario: right after a copy, EC2's filtered describe may not show it yet while the
    // original's P:copies already names it. A replay then must not copy again.
    // GIVEN an AMI copied to us-west-2, whose copy the tag-filtered describe cannot see (its
    // copy-of tag removed, standing in for a describe that lags)
    let moto = start().await;
    let ami = image_backup(&moto, &[]).await;
    replicate(&moto, &config(), &available(&ami)).await;
    let copy = image_copies(&moto, DR, &ami).await[0]
        .image_id()
        .unwrap()
        .to_string();
    moto.client(DR)
        .delete_tags()
        .resources(&copy)
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key("backup:copy-of")
                .build(),
        )
        .send()
        .await
        .unwrap();

    // WHEN the event is replayed
    let report = replicate(&moto, &config(), &available(&ami)).await;

    // THEN the listed copy was found by its id, and no second copy was made
    assert_eq!(copied(&report), vec![]);
    assert!(
        reasons(&report)
            .iter()
            .any(|r| r.contains(&format!("already copied to {DR} as {copy}"))),
        "{report}"
    );
    assert_eq!(moto.images(DR).await.len(), 1);
}

#[tokio::test]
async fn dry_run_reports_what_it_would_copy_and_changes_nothing() {
    // Scenario: DRY_RUN=true.
    let moto = start().await;
    let ami = image_backup(&moto, &[("backup:copy-to", "us-west-2,eu-west-1")]).await;
    moto.reset_calls();
    let config = Config {
        dry_run: true,
        ..config()
    };

    let report = replicate(&moto, &config, &sweep_event()).await;

    assert_eq!(report["dry_run"], true);
    assert_eq!(
        report["copied"],
        json!([{"source": ami, "region": DR2, "id": null}, {"source": ami, "region": DR, "id": null}])
    );
    assert!(moto.images(DR).await.is_empty());
    assert!(moto.images(DR2).await.is_empty());
    for region in [HOME, DR, DR2] {
        let calls = moto.calls_in(region);
        assert!(
            calls.keys().all(|a| a.starts_with("Describe")),
            "{region}: {calls:?}"
        );
    }
    assert!(
        !image_tags(&moto, HOME, &ami)
            .await
            .contains_key("backup:copies")
    );
}

#[tokio::test]
async fn a_malformed_payload_is_an_error_that_says_what_was_expected_and_calls_nothing() {
    // Scenario: payloads replicate does not take.
    let moto = start().await;
    image_backup(&moto, &[]).await;
    moto.reset_calls();
    for payload in [
        json!({"instance_ids": ["i-12345678"]}),
        json!([1, 2]),
        json!({"image_ids": ["snap-12345678"]}),
        json!({"detail-type": "EC2 AMI State Change", "source": "aws.ec2", "detail": {"State": "available"}}),
        json!({"detail-type": "Tag Change on Resource", "source": "aws.tag", "detail": {}}),
    ] {
        let err = replicate_in(&moto, HOME, &config(), &payload)
            .await
            .unwrap_err();
        assert!(matches!(err, shared::Error::Payload(_)), "{payload}: {err}");
        assert!(
            err.to_string().contains("expected") || err.to_string().contains("valid"),
            "{err}"
        );
    }
    assert!(
        moto.calls().values().all(|c| c.is_empty()),
        "{:?}",
        moto.calls()
    );
}

#[tokio::test]
async fn an_event_from_another_region_is_skipped() {
    // Scenario: the rule forwards another region's event; this function replicates its own.
    let moto = start().await;
    let ami = image_backup(&moto, &[]).await;
    let e = event(
        "ami-state-change-available.json",
        &[
            ("ami-0a1b2c3d4e5f67890", &ami),
            ("\"region\": \"us-east-1\"", "\"region\": \"eu-west-1\""),
        ],
    );
    moto.reset_calls();
    let report = replicate(&moto, &config(), &e).await;
    assert_eq!(report["copied"], json!([]));
    assert!(
        reasons(&report)[0].contains("the event is from eu-west-1"),
        "{report}"
    );
    assert!(moto.calls().values().all(|c| c.is_empty()));
}

#[tokio::test]
async fn a_full_copy_limit_becomes_a_delayed_continuation_that_makes_the_copy_once() {
    // GIVEN an AMI backup for us-west-2, whose CopyImage answers that too many copies are in
    // flight, and replicate's work queue
    let moto = start().await;
    let ami = image_backup(&moto, &[("backup:copy-to", DR)]).await;
    let queue = moto.work_queue("ec2-backup-replicate", "replicate").await;
    moto.fault(
        json!({"action": "CopyImage", "region": DR, "code": "ResourceLimitExceeded",
                      "message": "too many copies in flight", "status": 400, "count": 10}),
    );

    // WHEN its available event arrives
    let report = shared::replicate::handle(
        &config(),
        &moto.clients(HOME),
        Some(&queue),
        &available(&ami),
        later(),
    )
    .await
    .expect("a deferral is not a failure");

    // THEN the copy is deferred and handed on in a message delayed for a minute, not left
    // for the sweep hours later
    assert_eq!(report["deferred"][0]["source"], ami.as_str(), "{report}");
    assert_eq!(report["continuations"], 1, "{report}");
    use aws_sdk_sqs::types::QueueAttributeName as A;
    assert_eq!(
        moto.queue_count(&queue, A::ApproximateNumberOfMessagesDelayed)
            .await,
        1
    );
    assert!(
        moto.receive(&queue).await.is_empty(),
        "not delivered before its delay"
    );

    // WHEN the limit has cleared and the continuation is delivered (twice: SQS delivers at
    // least once)
    moto.http("DELETE", "/_test/faults", "");
    let work = shared::replicate::ReplicateWork {
        image_ids: vec![ami.clone()],
        snapshot_ids: Vec::new(),
        attempt: 0,
        shared: Vec::new(),
        to_lock: Vec::new(),
    };
    let body = shared::continuation::body(&config(), "replicate", &work).unwrap();
    let event = json!({"Records": [sqs_record("m-1", &body, "ec2-backup-replicate")]});
    for _ in 0..2 {
        let answer = shared::replicate::handle(
            &config(),
            &moto.clients(HOME),
            Some(&queue),
            &event,
            later(),
        )
        .await
        .unwrap();
        assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
        assert_eq!(answer["records"][0]["result"].get("continuations"), None);
    }
    // THEN there is one copy in us-west-2, listed on the original
    let copies = image_copies(&moto, DR, &ami).await;
    assert_eq!(copies.len(), 1);
    let listed = image_tags(&moto, HOME, &ami).await["backup:copies"].clone();
    assert_eq!(listed, format!("{DR}={}", copies[0].image_id().unwrap()));
}

#[tokio::test]
async fn copies_the_deadline_cut_off_are_handed_on_at_once() {
    // GIVEN two AMI backups for us-west-2 and one CopyImage every two seconds, 4 s to go
    let moto = start().await;
    let first = image_backup(&moto, &[("backup:copy-to", DR)]).await;
    let second = image_backup(&moto, &[("backup:copy-to", DR)]).await;
    let queue = moto.work_queue("ec2-backup-replicate", "replicate").await;
    let limits = shared::pacing::RateLimits::parse("CopyImage=0.5/1").unwrap();
    let clients = moto.clients_paced(HOME, limits);
    let t0 = std::time::Instant::now();
    let deadline = shared::pacing::Deadline::new(t0 + std::time::Duration::from_secs(4), t0);

    // WHEN the sweep runs
    let report = shared::replicate::handle(
        &config(),
        &clients.until(deadline),
        Some(&queue),
        &sweep_event(),
        later(),
    )
    .await
    .unwrap();

    // THEN the copy not started is in a message delivered at once, naming its backup
    assert_eq!(report["continuations"], 1, "{report}");
    let batch = moto.receive(&queue).await;
    assert_eq!(batch.len(), 1);
    let body: Value = serde_json::from_str(batch[0].body().unwrap()).unwrap();
    let deferred = report["deferred"][0]["source"].as_str().unwrap();
    assert_eq!(body["work"], json!({"image_ids": [deferred], "attempt": 0}));

    // AND delivered, it makes that copy: one copy of each backup
    let answer = shared::replicate::handle(
        &config(),
        &moto.clients(HOME),
        Some(&queue),
        &sqs_event(&queue, &batch),
        later(),
    )
    .await
    .unwrap();
    assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
    for ami in [&first, &second] {
        assert_eq!(image_copies(&moto, DR, ami).await.len(), 1, "{ami}");
    }
}

#[tokio::test]
async fn copies_stop_while_the_deadline_leaves_room_to_record_them_and_the_rest_is_handed_on() {
    // GIVEN eight AMI backups for us-west-2, copies at 2/s after a burst of 10, CreateTags at
    // 1/s, and 6 s to go (a 2 s margin): eight copies would fit, but not the eight writes of
    // `P:copies` after them
    let moto = start().await;
    let mut amis = Vec::new();
    for _ in 0..8 {
        amis.push(image_backup(&moto, &[("backup:copy-to", DR)]).await);
    }
    let queue = moto.work_queue("ec2-backup-replicate", "replicate").await;
    let limits = shared::pacing::RateLimits::parse("CopyImage=2/10,CreateTags=1/1").unwrap();
    let clients = moto.clients_paced(HOME, limits);
    let t0 = std::time::Instant::now();
    let deadline = shared::pacing::Deadline::new(t0 + std::time::Duration::from_secs(6), t0);

    // WHEN the sweep runs
    let report = shared::replicate::handle(
        &config(),
        &clients.until(deadline),
        Some(&queue),
        &sweep_event(),
        later(),
    )
    .await
    .expect("nothing failed");

    // THEN it copies only what it has time to record, records each copy, and hands the rest on
    assert_eq!(report["failed"], json!([]), "{report}");
    let made = copied(&report);
    let deferred = report["deferred"].as_array().unwrap();
    assert!(!made.is_empty() && !deferred.is_empty(), "{report}");
    assert_eq!(made.len() + deferred.len(), amis.len(), "{report}");
    for (source, region, id) in &made {
        assert_eq!(
            image_tags(&moto, HOME, source).await["backup:copies"],
            format!("{region}={id}")
        );
    }
    assert_eq!(report["continuations"], 1, "{report}");

    // AND delivered, the rest is copied: one copy of each backup, each recorded
    let batch = moto.receive(&queue).await;
    let answer = shared::replicate::handle(
        &config(),
        &moto.clients(HOME),
        Some(&queue),
        &sqs_event(&queue, &batch),
        later(),
    )
    .await
    .unwrap();
    assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
    for ami in &amis {
        let copies = image_copies(&moto, DR, ami).await;
        assert_eq!(copies.len(), 1, "{ami}");
        assert_eq!(
            image_tags(&moto, HOME, ami).await["backup:copies"],
            format!("{DR}={}", copies[0].image_id().unwrap())
        );
    }
}

#[tokio::test]
async fn a_record_the_deadline_leaves_no_time_for_is_sent_again_not_failed() {
    // GIVEN a continuation delivered to an invocation whose deadline has as good as come
    let moto = start().await;
    let ami = image_backup(&moto, &[("backup:copy-to", DR)]).await;
    let queue = moto.work_queue("ec2-backup-replicate", "replicate").await;
    let work = shared::replicate::ReplicateWork {
        image_ids: vec![ami.clone()],
        snapshot_ids: Vec::new(),
        attempt: 3,
        shared: Vec::new(),
        to_lock: Vec::new(),
    };
    let body = shared::continuation::body(&config(), "replicate", &work).unwrap();
    let event = json!({"Records": [sqs_record("m-late", &body, "ec2-backup-replicate")]});
    let t0 = std::time::Instant::now();
    let deadline = shared::pacing::Deadline::new(t0 + std::time::Duration::from_millis(10), t0);

    // WHEN it is handled
    let answer = shared::replicate::handle(
        &config(),
        &moto.clients(HOME).until(deadline),
        Some(&queue),
        &event,
        later(),
    )
    .await
    .unwrap();

    // THEN it is not a batch item failure (no receive counted towards the dead-letter
    // queue): the same work is on the queue again, as a new message
    assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
    assert_eq!(answer["records"][0]["sent_again"], true, "{answer}");
    let batch = moto.receive(&queue).await;
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0].body(), Some(body.as_str()));
    assert!(image_copies(&moto, DR, &ami).await.is_empty());
}

/// An SQS record of replicate's work queue whose body is `event`, as an EventBridge rule
/// targeting the queue sends it.
fn queued(message_id: &str, event: &Value) -> Value {
    sqs_record(message_id, &event.to_string(), "ec2-backup-replicate")
}

#[tokio::test]
async fn a_batch_of_available_events_is_one_run_and_each_record_answers_for_its_backup() {
    // Scenario: the rules put AMI events on replicate's work queue; the mapping hands ten at
    // a time to the function, which reads the batch's sources in one describe and their copies
    // in one more per destination, instead of two describes an event.

    // GIVEN three AMI backups for us-west-2, a fourth whose copy was handed on as a
    // continuation, a snapshot backup, and the work queue
    let moto = start().await;
    let mut amis = Vec::new();
    for _ in 0..4 {
        amis.push(image_backup(&moto, &[("backup:copy-to", DR)]).await);
    }
    let snap = snapshot_backup(&moto, &[]).await;
    let queue = moto.work_queue("ec2-backup-replicate", "replicate").await;
    let work = shared::replicate::ReplicateWork {
        image_ids: vec![amis[3].clone()],
        snapshot_ids: Vec::new(),
        attempt: 0,
        shared: Vec::new(),
        to_lock: Vec::new(),
    };
    let continuation = shared::continuation::body(&config(), "replicate", &work).unwrap();
    let elsewhere = event(
        "ami-state-change-available.json",
        &[
            ("ami-0a1b2c3d4e5f67890", &amis[0]),
            ("\"region\": \"us-east-1\"", "\"region\": \"eu-west-1\""),
        ],
    );
    moto.reset_calls();

    // WHEN one batch brings their events (the second twice: EventBridge delivers at least
    // once), one from another region, a body that is nobody's, a schedule that has no business
    // on the queue, and the continuation
    let batch = json!({"Records": [
        queued("m-0", &available(&amis[0])),
        queued("m-1", &available(&amis[1])),
        queued("m-1-again", &available(&amis[1])),
        queued("m-2", &available(&amis[2])),
        queued("m-snap", &snapshot_created("ebs-snapshot-create-succeeded.json", &snap)),
        queued("m-elsewhere", &elsewhere),
        sqs_record("m-bad", "{\"hello\": 1}", "ec2-backup-replicate"),
        queued("m-sweep", &sweep_event()),
        sqs_record("m-continued", &continuation, "ec2-backup-replicate"),
    ]});
    let answer = shared::replicate::handle(
        &config(),
        &moto.clients(HOME),
        Some(&queue),
        &batch,
        later(),
    )
    .await
    .unwrap();

    // THEN the three AMI events cost one DescribeImages at home and one in us-west-2 (the
    // continuation its own two), one CopyImage per AMI; the snapshot's one DescribeSnapshots
    // each, with them
    let (home, dr) = (moto.calls_in(HOME), moto.calls_in(DR));
    assert_eq!(count(&home, "DescribeImages"), 2, "{home:?}");
    assert_eq!(count(&dr, "DescribeImages"), 2, "{dr:?}");
    assert_eq!(count(&dr, "CopyImage"), 4, "{dr:?}");
    assert_eq!(count(&home, "DescribeSnapshots"), 1, "{home:?}");
    assert_eq!(count(&dr, "DescribeSnapshots"), 1, "{dr:?}");
    assert_eq!(count(&dr, "CopySnapshot"), 1, "{dr:?}");
    moto.assert_calls_allowed("replicate");

    // AND only the body that is nobody's is a batch item failure, refused saying what was
    // expected
    assert_eq!(
        answer["batchItemFailures"],
        json!([{"itemIdentifier": "m-bad"}, {"itemIdentifier": "m-sweep"}]),
        "{answer}"
    );
    let records = answer["records"].as_array().unwrap();
    let record = |id: &str| records.iter().find(|r| r["messageId"] == id).unwrap();
    let refused = record("m-bad")["error"].as_str().unwrap();
    assert!(
        refused.contains("expected a continuation") && refused.contains("EC2 AMI State Change"),
        "{refused}"
    );

    // AND each AMI has exactly one copy, listed on its original
    for ami in &amis {
        let copies = image_copies(&moto, DR, ami).await;
        assert_eq!(copies.len(), 1, "{ami}");
        let listed = image_tags(&moto, HOME, ami).await["backup:copies"].clone();
        assert_eq!(listed, format!("{DR}={}", copies[0].image_id().unwrap()));
    }

    // AND each event's record answers for its own AMI only
    for (id, ami) in [
        ("m-0", &amis[0]),
        ("m-1", &amis[1]),
        ("m-1-again", &amis[1]),
        ("m-2", &amis[2]),
    ] {
        let result = &record(id)["result"];
        assert_eq!(record(id)["ok"], true, "{id}: {answer}");
        let sources: Vec<&str> = result["copied"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["source"].as_str().unwrap())
            .collect();
        assert_eq!(sources, [ami.as_str()], "{id}: {result}");
    }
    assert_eq!(record("m-0")["result"]["skipped"], json!([]), "{answer}");
    assert_eq!(
        record("m-elsewhere")["result"]["copied"],
        json!([]),
        "{answer}"
    );
    let refused = record("m-sweep")["error"].as_str().unwrap();
    assert!(
        refused.contains("the schedule invokes replicate itself"),
        "{refused}"
    );
    let snapshot_copy = snapshot_copies(&moto, DR, &snap).await;
    assert_eq!(snapshot_copy.len(), 1);
    assert_eq!(
        record("m-snap")["result"]["copied"][0]["source"],
        snap.as_str()
    );
    let skipped = &record("m-elsewhere")["result"]["skipped"][0];
    assert_eq!(skipped["source"], amis[0].as_str());
    assert!(
        skipped["reason"]
            .as_str()
            .unwrap()
            .contains("the event is from eu-west-1"),
        "{skipped}"
    );
    assert_eq!(
        record("m-continued")["result"]["copied"][0]["source"],
        amis[3].as_str()
    );
}

#[tokio::test]
async fn a_batch_whose_home_region_cannot_be_read_fails_each_of_its_event_records() {
    // GIVEN two AMI backups whose events are on the work queue, and a home region whose
    // DescribeImages is refused
    let moto = start().await;
    let first = image_backup(&moto, &[("backup:copy-to", DR)]).await;
    let second = image_backup(&moto, &[("backup:copy-to", DR)]).await;
    let queue = moto.work_queue("ec2-backup-replicate", "replicate").await;
    moto.fault(
        json!({"action": "DescribeImages", "region": HOME, "code": "UnauthorizedOperation",
                      "message": "not allowed", "status": 403, "count": 10}),
    );

    // WHEN the batch is handled
    let batch = json!({"Records": [
        queued("m-first", &available(&first)),
        queued("m-second", &available(&second)),
    ]});
    let answer = shared::replicate::handle(
        &config(),
        &moto.clients(HOME),
        Some(&queue),
        &batch,
        later(),
    )
    .await
    .unwrap();

    // THEN both records are batch item failures naming the call and its code (SQS delivers
    // them again, then dead-letters them), and nothing is copied
    assert_eq!(
        answer["batchItemFailures"],
        json!([{"itemIdentifier": "m-first"}, {"itemIdentifier": "m-second"}]),
        "{answer}"
    );
    for r in answer["records"].as_array().unwrap() {
        let error = r["error"].as_str().unwrap();
        assert!(
            error.contains("DescribeImages") && error.contains("UnauthorizedOperation"),
            "{error}"
        );
    }
    for ami in [&first, &second] {
        assert!(image_copies(&moto, DR, ami).await.is_empty());
    }
}

#[tokio::test]
async fn a_batch_the_deadline_leaves_no_time_for_is_sent_again_record_by_record() {
    // GIVEN two AMI events on the work queue, delivered to an invocation whose deadline has
    // as good as come
    let moto = start().await;
    let first = image_backup(&moto, &[("backup:copy-to", DR)]).await;
    let second = image_backup(&moto, &[("backup:copy-to", DR)]).await;
    let queue = moto.work_queue("ec2-backup-replicate", "replicate").await;
    let bodies = [
        available(&first).to_string(),
        available(&second).to_string(),
    ];
    let batch = json!({"Records": [
        sqs_record("m-first", &bodies[0], "ec2-backup-replicate"),
        sqs_record("m-second", &bodies[1], "ec2-backup-replicate"),
    ]});
    let t0 = std::time::Instant::now();
    let deadline = shared::pacing::Deadline::new(t0 + std::time::Duration::from_millis(10), t0);

    // WHEN it is handled
    let answer = shared::replicate::handle(
        &config(),
        &moto.clients(HOME).until(deadline),
        Some(&queue),
        &batch,
        later(),
    )
    .await
    .unwrap();

    // THEN neither record is a batch item failure: each event is on the queue again, as it
    // came, and nothing was copied
    assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
    for r in answer["records"].as_array().unwrap() {
        assert_eq!(r["sent_again"], true, "{answer}");
    }
    let mut again: Vec<String> = moto
        .receive(&queue)
        .await
        .iter()
        .map(|m| m.body().unwrap().to_string())
        .collect();
    again.sort();
    let mut want = bodies.to_vec();
    want.sort();
    assert_eq!(again, want);
    for ami in [&first, &second] {
        assert!(image_copies(&moto, DR, ami).await.is_empty());
    }
}
