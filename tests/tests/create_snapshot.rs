//! create-snapshot against the moto server: tagged volumes get a snapshot, tagged and described,
//! once per interval.

use chrono::{DateTime, TimeDelta, Utc};
use integration_tests::*;
use serde_json::{Value, json};
use shared::Config;
use shared::create::ResourceKind::Volume;
use shared::tags::parse_time;

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

async fn managed_snapshots(moto: &Moto) -> Vec<aws_sdk_ec2::types::Snapshot> {
    moto.snapshots(HOME)
        .await
        .into_iter()
        .filter(|s| tag_map(s.tags()).contains_key("backup:managed-by"))
        .collect()
}

async fn sweep(moto: &Moto, config: &Config, at: DateTime<Utc>) -> Value {
    handle(Volume, config, &moto.ec2(HOME), &scheduled_at(at), at)
        .await
        .expect("sweep succeeds")
}

#[tokio::test]
async fn a_sweep_snapshots_opted_in_volumes_in_use_or_available() {
    // GIVEN a tagged volume attached to an instance, a tagged loose volume, and untagged ones
    let moto = start().await;
    let instance = moto.instance(HOME, &[], 0).await;
    let data = moto
        .volume(
            HOME,
            &[
                ("backup", "yes"),
                ("Name", "db-data"),
                ("backup:retention", "30d"),
            ],
        )
        .await;
    moto.attach(HOME, &data, &instance, "/dev/sdf").await;
    let loose = moto.volume(HOME, &[("Backup", "true")]).await;
    let declined = moto.volume(HOME, &[("Backup", "no")]).await;
    let _untagged = moto.volume(HOME, &[("Name", "tmp")]).await;
    moto.reset_calls();

    // WHEN the schedule fires
    let report = sweep(&moto, &Config::default(), now()).await;

    // THEN the two opted-in volumes have a snapshot each, in one call each
    let mut want = vec![data.clone(), loose.clone()];
    want.sort();
    assert_eq!(sources(&report, "created"), want);
    assert_eq!(sources(&report, "skipped"), vec![declined]);
    let calls = moto.calls_in(HOME);
    assert_eq!(calls.get("CreateSnapshot"), Some(&2), "{calls:?}");
    assert_eq!(calls.get("DescribeVolumes"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("DescribeSnapshots"), Some(&1), "{calls:?}");
    moto.assert_calls_allowed("create-snapshot");

    let snapshots = managed_snapshots(&moto).await;
    assert_eq!(snapshots.len(), 2);
    let snap = snapshots
        .iter()
        .find(|s| s.volume_id() == Some(data.as_str()))
        .unwrap();
    assert_eq!(
        snap.description().unwrap(),
        format!("ec2-backup backup of {data} attached to {instance}")
    );
    let tags = tag_map(snap.tags());
    for (k, v) in [
        ("backup:managed-by", "ec2-backup"),
        ("backup:kind", "snapshot"),
        ("backup:source", data.as_str()),
        ("backup:source-region", HOME),
        ("backup:created-at", "2026-11-25T03:00:00Z"),
        ("backup:expires-at", "2026-12-25T03:00:00Z"),
        ("backup:copy-to", ""),
        ("backup:copy-retention", "30d"),
        ("Name", "db-data"),
    ] {
        assert_eq!(
            tags.get(k).map(String::as_str),
            Some(v),
            "tag {k} of {tags:?}"
        );
    }
}

#[tokio::test]
async fn a_volume_is_snapshotted_once_per_interval() {
    let moto = start().await;
    let vol = moto
        .volume(HOME, &[("Backup", "true"), ("backup:interval", "12h")])
        .await;
    sweep(&moto, &Config::default(), now()).await;
    let soon = sweep(&moto, &Config::default(), now() + TimeDelta::hours(6)).await;
    assert_eq!(soon["created"], json!([]));
    assert!(
        soon["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("12h interval"),
        "{soon}"
    );
    let later = sweep(&moto, &Config::default(), now() + TimeDelta::hours(12)).await;
    assert_eq!(sources(&later, "created"), vec![vol]);
    assert_eq!(managed_snapshots(&moto).await.len(), 2);
}

#[tokio::test]
async fn a_tag_change_on_a_volume_snapshots_it_once() {
    let moto = start().await;
    let vol = moto.volume(HOME, &[("backup", "yes")]).await;
    let e = event("tag-change-volume.json", &[("vol-0abcdef1234567890", &vol)]);
    let ec2 = moto.ec2(HOME);
    let first = handle(Volume, &Config::default(), &ec2, &e, now())
        .await
        .unwrap();
    let again = handle(
        Volume,
        &Config::default(),
        &ec2,
        &e,
        now() + TimeDelta::seconds(1),
    )
    .await
    .unwrap();
    assert_eq!(sources(&first, "created"), vec![vol.clone()]);
    assert_eq!(again["created"], json!([]));
    assert_eq!(managed_snapshots(&moto).await.len(), 1);

    // An instance's Tag Change is not for this function.
    let other = handle(
        Volume,
        &Config::default(),
        &ec2,
        &event("tag-change-instance.json", &[]),
        now(),
    )
    .await
    .unwrap();
    assert!(
        other["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("backs up ec2 volume"),
        "{other}"
    );
}

#[tokio::test]
async fn on_demand_and_dry_run() {
    let moto = start().await;
    let vol = moto.volume(HOME, &[("Backup", "true")]).await;
    let payload = json!({"volume_ids": [vol]});
    let dry = Config {
        dry_run: true,
        ..Config::default()
    };
    let report = handle(Volume, &dry, &moto.ec2(HOME), &payload, now())
        .await
        .unwrap();
    assert_eq!(sources(&report, "created"), vec![vol.clone()]);
    assert!(managed_snapshots(&moto).await.is_empty());

    let report = handle(Volume, &Config::default(), &moto.ec2(HOME), &payload, now())
        .await
        .unwrap();
    assert_eq!(sources(&report, "created"), vec![vol.clone()]);
    assert_eq!(managed_snapshots(&moto).await.len(), 1);

    let err = handle(
        Volume,
        &Config::default(),
        &moto.ec2(HOME),
        &json!({"volume_ids": ["vol-00000000000000000"]}),
        now(),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("vol-00000000000000000 was not found"),
        "{err}"
    );
}

/// The scheduled event as EventBridge would send it at `at`.
fn scheduled_at(at: DateTime<Utc>) -> Value {
    event(
        "scheduled-event.json",
        &[("2026-11-25T03:00:00Z", &shared::tags::format_time(at))],
    )
}
