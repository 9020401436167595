//! expire against the moto server: what a sweep deletes, what it keeps and why, in every region
//! it covers, and that no snapshot of ours is ever left behind untracked.
//!
//! Time moves by writing `backup:created-at` / `backup:expires-at` (backups are made "at" a
//! past instant, or retagged), never by sleeping.

use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use chrono::{DateTime, TimeDelta, Utc};
use integration_tests::*;
use serde_json::{Value, json};
use shared::Config;
use shared::clients::Clients;
use shared::create::ResourceKind;
use shared::tags::{format_time, parse_time};
use std::collections::BTreeSet;

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

fn days(n: i64) -> DateTime<Utc> {
    now() + TimeDelta::days(n)
}

fn config() -> Config {
    Config::default()
}

/// An AMI of `instance` made by create-image `ago` days before now (retention 7 days, so it
/// expires `7 - ago` days from now).
async fn backup_at(moto: &Moto, instance: &str, at: DateTime<Utc>) -> String {
    on_demand_image(moto, &config(), HOME, instance, at).await
}

/// A standalone snapshot of `volume` made by create-snapshot at `at`.
async fn snapshot_at(moto: &Moto, volume: &str, at: DateTime<Utc>) -> String {
    let report = shared::create::handle(
        ResourceKind::Volume,
        &config(),
        &moto.ec2(HOME),
        None,
        &json!({ "volume_ids": [volume] }),
        // Each backup its own request (a retry of one request would reuse its backup).
        &format!("request-at-{}", at.timestamp()),
        at,
    )
    .await
    .expect("snapshot made");
    report["created"][0]["id"]
        .as_str()
        .expect("a snapshot id")
        .to_string()
}

fn tags(pairs: &[(&str, &str)]) -> Vec<Tag> {
    pairs
        .iter()
        .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
        .collect()
}

/// A DR copy of `ami` in `region`, as replicate makes it: our tags and `copy-of`, expiring at
/// `expires`; its snapshots tagged too unless `tag_snapshots` is false.
async fn copy_at(
    moto: &Moto,
    ami: &str,
    source: &str,
    region: &str,
    created: DateTime<Utc>,
    expires: DateTime<Utc>,
    tag_snapshots: bool,
) -> String {
    let (created, expires) = (format_time(created), format_time(expires));
    let ours = tags(&[
        ("backup:managed-by", "ec2-backup"),
        ("backup:kind", "image"),
        ("backup:source", source),
        ("backup:source-region", HOME),
        ("backup:created-at", &created),
        ("backup:expires-at", &expires),
        ("backup:copy-of", ami),
    ]);
    let spec = |rt: ResourceType| {
        TagSpecification::builder()
            .resource_type(rt)
            .set_tags(Some(ours.clone()))
            .build()
    };
    let mut call = moto
        .client(region)
        .copy_image()
        .source_region(HOME)
        .source_image_id(ami)
        .name(format!("copy of {ami} {created}").replace(':', "."))
        .tag_specifications(spec(ResourceType::Image));
    if tag_snapshots {
        call = call.tag_specifications(spec(ResourceType::Snapshot));
    }
    call.send()
        .await
        .expect("copy_image")
        .image_id()
        .expect("copy id")
        .to_string()
}

async fn image_snapshots(moto: &Moto, region: &str, ami: &str) -> Vec<String> {
    moto.images(region)
        .await
        .into_iter()
        .filter(|i| i.image_id() == Some(ami))
        .flat_map(|i| {
            i.block_device_mappings()
                .iter()
                .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()).map(str::to_string))
                .collect::<Vec<_>>()
        })
        .collect()
}

async fn image_ids(moto: &Moto, region: &str) -> BTreeSet<String> {
    moto.images(region)
        .await
        .iter()
        .filter_map(|i| i.image_id().map(str::to_string))
        .collect()
}

async fn snapshot_ids(moto: &Moto, region: &str) -> BTreeSet<String> {
    moto.snapshots(region)
        .await
        .iter()
        .filter_map(|s| s.snapshot_id().map(str::to_string))
        .collect()
}

/// Runs expire with `payload`; the report, and whether the invocation succeeded. A failed
/// invocation still carries the whole report.
async fn expire_with(
    clients: &Clients,
    config: &Config,
    payload: &Value,
    at: DateTime<Utc>,
) -> (Value, bool) {
    match shared::expire::handle(config, clients, None, payload, at).await {
        Ok(report) => (report, true),
        Err(shared::Error::SomeFailed { result, .. }) => {
            (serde_json::from_str(&result).expect("report JSON"), false)
        }
        Err(e) => panic!("expire failed as a whole: {e}"),
    }
}

/// One sweep at `now()` from the home region, which must succeed, and the invariant checked.
async fn sweep(moto: &Moto, config: &Config) -> Value {
    let (report, ok) = expire_with(
        &moto.clients(HOME),
        config,
        &event("expire-sweep.json", &[]),
        now(),
    )
    .await;
    assert!(ok, "the sweep reported failures: {report}");
    assert_no_untracked_orphans(moto, &report).await;
    report
}

/// The promise of expire: after a run, no snapshot of a backed-up volume is left behind
/// untracked in a swept region. Every snapshot of ours (by its tags), and every snapshot made
/// from a volume that a backup of ours was made from, tagged or not (a copy made without
/// snapshot tags, tags lost), is used by a registered image, or reported (kept or failed; in a
/// dry run, also as to be deleted). Snapshots of volumes nothing of ours backs up, such as the
/// look-alikes a test seeds on purpose, are not ours to track.
async fn assert_no_untracked_orphans(moto: &Moto, report: &Value) {
    let regions: Vec<String> = report["regions"]
        .as_object()
        .expect("regions")
        .keys()
        .cloned()
        .collect();
    let backed_up = backed_up_volumes(moto, &regions).await;
    for region in &regions {
        let r = &report["regions"][region];
        let used: BTreeSet<String> = all_images(moto, region)
            .await
            .iter()
            .flat_map(|i| i.block_device_mappings().to_vec())
            .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()).map(str::to_string))
            .collect();
        let mut reported: BTreeSet<String> = BTreeSet::new();
        for list in ["kept", "failed"] {
            reported.extend(ids(r, list));
        }
        if report["dry_run"] == json!(true) {
            reported.extend(ids(r, "deleted_snapshots"));
        }
        for s in all_snapshots(moto, region).await {
            let volume = s.volume_id().unwrap_or_default();
            if !is_ours(s.tags()) && !backed_up.contains(volume) {
                continue;
            }
            let id = s.snapshot_id().unwrap_or_default().to_string();
            assert!(
                used.contains(&id) || reported.contains(&id),
                "{id} in {region} (of {volume}, tags {:?}) is ours, used by no image and not reported: {report}",
                tag_map(s.tags())
            );
        }
    }
}

fn is_ours(tags: &[Tag]) -> bool {
    tag_map(tags).get("backup:managed-by").map(String::as_str) == Some("ec2-backup")
}

/// The volumes backups of ours are made from, as the server shows them now: the volumes of
/// the opted-in instances and the opted-in volumes at home, and the volumes behind every
/// backup of ours still there (an AMI's snapshots, a standalone snapshot, a copy's, whose
/// snapshots keep their source's volume id) in `regions`.
async fn backed_up_volumes(moto: &Moto, regions: &[String]) -> BTreeSet<String> {
    let opts_in = |tags: &[Tag]| {
        tags.iter().any(|t| {
            t.key().is_some_and(|k| k.eq_ignore_ascii_case("backup"))
                && t.value().is_some_and(|v| {
                    matches!(v.to_ascii_lowercase().as_str(), "true" | "yes" | "on" | "1")
                })
        })
    };
    let home = moto.uncounted_client(HOME);
    let mut volumes: BTreeSet<String> = home
        .describe_instances()
        .send()
        .await
        .expect("describe_instances")
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter(|i| opts_in(i.tags()))
        .flat_map(|i| i.block_device_mappings())
        .filter_map(|m| m.ebs().and_then(|e| e.volume_id()).map(str::to_string))
        .collect();
    volumes.extend(
        home.describe_volumes()
            .send()
            .await
            .expect("describe_volumes")
            .volumes()
            .iter()
            .filter(|v| opts_in(v.tags()))
            .filter_map(|v| v.volume_id().map(str::to_string)),
    );
    for region in regions.iter().map(String::as_str).chain([HOME]) {
        let snapshots = all_snapshots(moto, region).await;
        let of_our_images: BTreeSet<String> = all_images(moto, region)
            .await
            .iter()
            .filter(|i| is_ours(i.tags()))
            .flat_map(|i| i.block_device_mappings().to_vec())
            .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()).map(str::to_string))
            .collect();
        volumes.extend(
            snapshots
                .iter()
                .filter(|s| {
                    is_ours(s.tags()) || of_our_images.contains(s.snapshot_id().unwrap_or_default())
                })
                .filter_map(|s| s.volume_id().map(str::to_string)),
        );
    }
    volumes
}

/// Every image in the region, read without a trace in the server's call counters.
async fn all_images(moto: &Moto, region: &str) -> Vec<aws_sdk_ec2::types::Image> {
    moto.uncounted_client(region)
        .describe_images()
        .send()
        .await
        .expect("describe_images")
        .images()
        .to_vec()
}

/// Every snapshot of ours in the region, read without a trace in the server's call counters.
async fn all_snapshots(moto: &Moto, region: &str) -> Vec<aws_sdk_ec2::types::Snapshot> {
    moto.uncounted_client(region)
        .describe_snapshots()
        .owner_ids("self")
        .send()
        .await
        .expect("describe_snapshots")
        .snapshots()
        .to_vec()
}

/// The ids in one list of a region's report.
fn ids(region_report: &Value, list: &str) -> Vec<String> {
    let mut out: Vec<String> = region_report[list]
        .as_array()
        .unwrap_or_else(|| panic!("no {list} in {region_report}"))
        .iter()
        .map(|e| e["id"].as_str().unwrap_or_default().to_string())
        .collect();
    out.sort();
    out
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// The reason a region's report gives for keeping `id`.
fn kept_reason(region_report: &Value, id: &str) -> String {
    region_report["kept"]
        .as_array()
        .and_then(|k| k.iter().find(|e| e["id"] == id))
        .and_then(|e| e["reason"].as_str())
        .unwrap_or_else(|| panic!("{id} is not in kept: {region_report}"))
        .to_string()
}

#[tokio::test]
async fn expired_backups_are_deleted_with_their_snapshots_and_the_rest_stay() {
    // GIVEN an instance with a data volume and three AMIs of it (two snapshots each): made 10
    // and 9 days ago (expired), and yesterday (not); and a volume with an expired standalone
    // snapshot and a fresh one
    let moto = start().await;
    let web = moto.instance(HOME, &[("Backup", "true")], 1).await;
    let old = backup_at(&moto, &web, days(-10)).await;
    let older_snaps = image_snapshots(&moto, HOME, &old).await;
    let mid = backup_at(&moto, &web, days(-9)).await;
    let mid_snaps = image_snapshots(&moto, HOME, &mid).await;
    let new = backup_at(&moto, &web, days(-1)).await;
    let vol = moto.volume(HOME, &[("Backup", "true")]).await;
    let old_vol_snap = snapshot_at(&moto, &vol, days(-8)).await;
    let new_vol_snap = snapshot_at(&moto, &vol, days(-1)).await;
    assert_eq!(older_snaps.len(), 2);
    moto.reset_calls();

    // WHEN the sweep runs
    let (report, ok) = expire_with(&moto.clients(HOME), &config(), &json!({}), now()).await;
    let calls = moto.calls_in(HOME);
    assert!(ok, "{report}");
    assert_no_untracked_orphans(&moto, &report).await;

    // THEN the expired AMIs are deregistered and their snapshots deleted, with reasons
    let home = &report["regions"][HOME];
    assert_eq!(
        ids(home, "deregistered"),
        sorted(vec![old.clone(), mid.clone()])
    );
    let mut gone: Vec<String> = older_snaps.iter().chain(&mid_snaps).cloned().collect();
    gone.push(old_vol_snap.clone());
    assert_eq!(ids(home, "deleted_snapshots"), sorted(gone.clone()));
    assert!(
        home["deregistered"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["reason"] == "expired" && d["source"] == web.as_str())
    );
    // AND the fresh ones stay, reported as not expired
    assert_eq!(kept_reason(home, &new), "not-expired");
    assert_eq!(kept_reason(home, &new_vol_snap), "not-expired");
    assert_eq!(report["dry_run"], json!(false));
    assert_eq!(image_ids(&moto, HOME).await, BTreeSet::from([new.clone()]));
    let left = snapshot_ids(&moto, HOME).await;
    assert!(gone.iter().all(|s| !left.contains(s)), "{left:?}");
    assert!(left.contains(&new_vol_snap));

    // AND it cost one describe of each kind and one call per deletion, all allowed: each AMI
    // went with its two snapshots in its one DeregisterImage (DeleteAssociatedSnapshots), and
    // the standalone snapshot took a DeleteSnapshot (before: 2 + 5 calls)
    assert_eq!(calls.get("DescribeImages"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("DescribeSnapshots"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("DeregisterImage"), Some(&2), "{calls:?}");
    assert_eq!(calls.get("DeleteSnapshot"), Some(&1), "{calls:?}");
    assert_eq!(
        calls.get("CreateTags"),
        None,
        "our snapshots were tagged at creation"
    );
    moto.assert_calls_allowed("expire");

    // AND a second sweep finds nothing more to do
    moto.reset_calls();
    let again = sweep(&moto, &config()).await;
    assert_eq!(again["regions"][HOME]["deregistered"], json!([]));
    assert_eq!(again["regions"][HOME]["deleted_snapshots"], json!([]));
    let calls = moto.calls_in(HOME);
    assert_eq!(calls.get("DeregisterImage"), None, "{calls:?}");
    assert_eq!(calls.get("DeleteSnapshot"), None, "{calls:?}");
}

#[tokio::test]
async fn a_failed_image_is_deleted_at_once_with_its_snapshots() {
    // GIVEN an instance's only AMI, not expired, that ended up failed, and a good AMI of another
    let moto = start().await;
    let i = moto.instance(HOME, &[("Backup", "true")], 1).await;
    let failed = backup_at(&moto, &i, days(-1)).await;
    let failed_snaps = image_snapshots(&moto, HOME, &failed).await;
    moto.set_image_state(HOME, &failed, "failed");
    let j = moto.instance(HOME, &[("Backup", "true")], 0).await;
    let good = backup_at(&moto, &j, days(-1)).await;

    // WHEN the sweep runs
    let report = sweep(&moto, &config()).await;

    // THEN the failed AMI and both its snapshots are gone (a failed image is no "last good
    // backup"), and the good one stays
    let home = &report["regions"][HOME];
    assert_eq!(ids(home, "deregistered"), vec![failed.clone()]);
    assert_eq!(home["deregistered"][0]["reason"], "failed", "{report}");
    assert_eq!(failed_snaps.len(), 2);
    let left = snapshot_ids(&moto, HOME).await;
    assert!(failed_snaps.iter().all(|s| !left.contains(s)), "{report}");
    assert!(!image_ids(&moto, HOME).await.contains(&failed));
    assert_eq!(kept_reason(home, &good), "not-expired");
}

#[tokio::test]
async fn a_held_backup_stays_after_its_expiry() {
    // GIVEN two expired AMIs of an instance and a newer one; the oldest is on hold
    let moto = start().await;
    let i = moto.instance(HOME, &[("Backup", "true")], 0).await;
    let held = backup_at(&moto, &i, days(-20)).await;
    let expired = backup_at(&moto, &i, days(-10)).await;
    let _newest = backup_at(&moto, &i, days(-1)).await;
    moto.set_tags(HOME, &held, &[("backup:hold", "true")]).await;
    let held_snaps = image_snapshots(&moto, HOME, &held).await;

    // WHEN the sweep runs
    let report = sweep(&moto, &config()).await;

    // THEN the held AMI and its snapshot stay, reported as held; the other expired one goes
    let home = &report["regions"][HOME];
    assert_eq!(kept_reason(home, &held), "hold");
    assert_eq!(ids(home, "deregistered"), vec![expired]);
    assert!(image_ids(&moto, HOME).await.contains(&held));
    assert!(snapshot_ids(&moto, HOME).await.contains(&held_snaps[0]));

    // AND once the hold is lifted, the next sweep deletes it
    moto.set_tags(HOME, &held, &[("backup:hold", "false")])
        .await;
    let report = sweep(&moto, &config()).await;
    assert_eq!(ids(&report["regions"][HOME], "deregistered"), vec![held]);
}

#[tokio::test]
async fn keep_last_keeps_the_newest_backups_of_each_source_in_each_region() {
    // GIVEN every backup expired: three AMIs of web, two of db (whose instance is gone), and
    // two DR copies of web's AMIs in us-west-2
    let moto = start().await;
    let web = moto.instance(HOME, &[("Backup", "true")], 0).await;
    let db = moto.instance(HOME, &[("Backup", "true")], 0).await;
    let web1 = backup_at(&moto, &web, days(-12)).await;
    let web2 = backup_at(&moto, &web, days(-11)).await;
    let web3 = backup_at(&moto, &web, days(-10)).await;
    let db1 = backup_at(&moto, &db, days(-12)).await;
    let db2 = backup_at(&moto, &db, days(-11)).await;
    moto.terminate(HOME, &db).await;
    let copy1 = copy_at(&moto, &web1, &web, DR, days(-12), days(-1), true).await;
    let copy2 = copy_at(&moto, &web2, &web, DR, days(-11), days(-1), true).await;
    let config = Config {
        copy_to_regions: vec![region(DR)],
        ..config()
    };

    // WHEN the sweep runs with KEEP_LAST=1 (the default)
    let report = sweep(&moto, &config).await;

    // THEN the newest AMI of each source stays at home, even of the gone instance
    let home = &report["regions"][HOME];
    assert_eq!(ids(home, "deregistered"), sorted(vec![web1, web2, db1]));
    assert_eq!(kept_reason(home, &web3), "keep-last");
    assert_eq!(kept_reason(home, &db2), "keep-last");
    // AND copies are counted in their own region: the newest copy stays in us-west-2
    let dr = &report["regions"][DR];
    assert_eq!(ids(dr, "deregistered"), vec![copy1]);
    assert_eq!(kept_reason(dr, &copy2), "keep-last");
    assert_eq!(image_ids(&moto, DR).await, BTreeSet::from([copy2]));
}

#[tokio::test]
async fn deletions_that_could_only_start_past_the_deadline_are_left_for_the_next_run() {
    // GIVEN three expired AMIs, and one DeregisterImage every two seconds
    let moto = start().await;
    let i = moto.instance(HOME, &[("Backup", "true")], 0).await;
    for d in [-12, -11, -10] {
        backup_at(&moto, &i, days(d)).await;
    }
    let zero = Config {
        keep_last: 0,
        ..config()
    };
    let limits = shared::pacing::RateLimits::parse("DeregisterImage=0.5/1").unwrap();
    let clients = moto.clients_paced(HOME, limits);
    // WHEN swept with 3.5 s to go (a 2 s margin): only the first deregistration can start
    let t0 = std::time::Instant::now();
    let deadline = shared::pacing::Deadline::new(t0 + std::time::Duration::from_millis(3500), t0);
    let (report, ok) = expire_with(
        &clients.until(deadline),
        &zero,
        &event("expire-sweep.json", &[]),
        now(),
    )
    .await;
    // THEN it is no failure; one image went with its snapshots, two are left, nothing orphaned
    assert!(ok, "{report}");
    let home = &report["regions"][HOME];
    assert_eq!(ids(home, "deregistered").len(), 1, "{report}");
    assert_eq!(home["remaining"], 2, "{report}");
    assert_no_untracked_orphans(&moto, &report).await;
    assert_eq!(image_ids(&moto, HOME).await.len(), 2);
    // AND the next run, with time, deletes the rest
    let next = sweep(&moto, &zero).await;
    assert_eq!(
        ids(&next["regions"][HOME], "deregistered").len(),
        2,
        "{next}"
    );
    assert!(image_ids(&moto, HOME).await.is_empty());
    assert!(snapshot_ids(&moto, HOME).await.is_empty());
}

#[tokio::test]
async fn keep_last_zero_lets_the_last_backup_expire_and_two_keeps_two() {
    // GIVEN three expired AMIs of an instance
    let moto = start().await;
    let i = moto.instance(HOME, &[("Backup", "true")], 0).await;
    let a = backup_at(&moto, &i, days(-12)).await;
    let b = backup_at(&moto, &i, days(-11)).await;
    let c = backup_at(&moto, &i, days(-10)).await;

    // WHEN swept with KEEP_LAST=2, THEN the two newest stay
    let two = Config {
        keep_last: 2,
        ..config()
    };
    let report = sweep(&moto, &two).await;
    assert_eq!(ids(&report["regions"][HOME], "deregistered"), vec![a]);
    assert_eq!(kept_reason(&report["regions"][HOME], &b), "keep-last");

    // WHEN swept with KEEP_LAST=0, THEN none is kept by count, not even the last
    let zero = Config {
        keep_last: 0,
        ..config()
    };
    let report = sweep(&moto, &zero).await;
    assert_eq!(
        ids(&report["regions"][HOME], "deregistered"),
        sorted(vec![b, c])
    );
    assert!(image_ids(&moto, HOME).await.is_empty());
    assert!(snapshot_ids(&moto, HOME).await.is_empty());
}

#[tokio::test]
async fn images_and_snapshots_of_others_stay_however_expired_they_look() {
    // GIVEN an AMI and a snapshot with no managed-by, named and tagged like old backups, and an
    // AMI and snapshot of another deployment, all "expired" years ago
    let moto = start().await;
    let ec2 = moto.client(HOME);
    let i = moto.instance(HOME, &[("Name", "web")], 0).await;
    let look_alike = [
        ("backup:kind", "image"),
        ("backup:source", i.as_str()),
        ("backup:expires-at", "2020-01-01T00:00:00Z"),
        ("backup:created-at", "2019-12-01T00:00:00Z"),
    ];
    let mut other_deployment = look_alike.to_vec();
    other_deployment.push(("backup:managed-by", "someone-else"));
    let mut images = Vec::new();
    for (n, t) in [look_alike.to_vec(), other_deployment.clone()]
        .into_iter()
        .enumerate()
    {
        let id = ec2
            .create_image()
            .instance_id(&i)
            .name(format!("ec2-backup web 2020-01-0{n}"))
            .description("ec2-backup of web")
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Image)
                    .set_tags(Some(tags(&t)))
                    .build(),
            )
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Snapshot)
                    .set_tags(Some(tags(&t)))
                    .build(),
            )
            .send()
            .await
            .unwrap()
            .image_id()
            .unwrap()
            .to_string();
        images.push(id);
    }
    let vol = moto.volume(HOME, &[]).await;
    for t in [look_alike.to_vec(), other_deployment] {
        ec2.create_snapshot()
            .volume_id(&vol)
            .description("ec2-backup snapshot")
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Snapshot)
                    .set_tags(Some(tags(&t)))
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
    // A plain image deregistered by hand leaves an untagged snapshot behind: not ours either.
    let before_images = image_ids(&moto, HOME).await;
    let before_snapshots = snapshot_ids(&moto, HOME).await;
    moto.reset_calls();

    // WHEN the sweep runs
    let report = sweep(&moto, &config()).await;

    // THEN nothing was touched, nor even reported: only the two describes were called
    let home = &report["regions"][HOME];
    for list in ["deregistered", "deleted_snapshots", "kept", "failed"] {
        assert_eq!(home[list], json!([]), "{list}: {report}");
    }
    assert_eq!(image_ids(&moto, HOME).await, before_images);
    assert_eq!(snapshot_ids(&moto, HOME).await, before_snapshots);
    let calls = moto.calls_in(HOME);
    assert_eq!(
        calls.keys().cloned().collect::<Vec<_>>(),
        ["DescribeImages", "DescribeSnapshots"],
        "{calls:?}"
    );
}

#[tokio::test]
async fn a_snapshot_still_in_use_by_another_image_is_kept_not_failed() {
    // GIVEN an expired AMI of ours that someone adopted (retagged as another deployment's): its
    // snapshots, still tagged ours and expired, look like orphans to us
    let moto = start().await;
    let i = moto.instance(HOME, &[("Backup", "true")], 0).await;
    let adopted = backup_at(&moto, &i, days(-10)).await;
    let snaps = image_snapshots(&moto, HOME, &adopted).await;
    moto.set_tags(HOME, &adopted, &[("backup:managed-by", "team-b")])
        .await;
    moto.reset_calls();

    // WHEN the sweep runs
    let report = sweep(&moto, &config()).await;

    // THEN EC2 refused the delete as in use, and the snapshot is kept for a later run, reported
    // "in-use", and the invocation succeeded
    let home = &report["regions"][HOME];
    assert_eq!(kept_reason(home, &snaps[0]), "in-use");
    assert_eq!(home["failed"], json!([]));
    assert_eq!(home["deleted_snapshots"], json!([]));
    assert_eq!(moto.calls_in(HOME).get("DeleteSnapshot"), Some(&1));
    assert!(image_ids(&moto, HOME).await.contains(&adopted));
    assert!(snapshot_ids(&moto, HOME).await.contains(&snaps[0]));
}

#[tokio::test]
async fn snapshots_orphaned_by_a_crash_are_found_and_deleted() {
    // GIVEN an expired AMI deregistered by an earlier run that crashed before deleting its
    // snapshots (simulated: deregistered directly), and a fresh one crashed the same way
    let moto = start().await;
    let i = moto.instance(HOME, &[("Backup", "true")], 1).await;
    let expired = backup_at(&moto, &i, days(-10)).await;
    let fresh = backup_at(&moto, &i, days(-1)).await;
    let orphans = image_snapshots(&moto, HOME, &expired).await;
    let young_orphans = image_snapshots(&moto, HOME, &fresh).await;
    for ami in [&expired, &fresh] {
        moto.client(HOME)
            .deregister_image()
            .image_id(ami)
            .send()
            .await
            .unwrap();
    }

    // WHEN the sweep runs
    let report = sweep(&moto, &config()).await;

    // THEN the expired orphans are deleted as orphans; the young ones wait, reported
    let home = &report["regions"][HOME];
    assert_eq!(ids(home, "deleted_snapshots"), sorted(orphans.clone()));
    assert!(
        home["deleted_snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["reason"] == "orphan" && d["source"] == i.as_str())
    );
    for s in &young_orphans {
        assert_eq!(kept_reason(home, s), "not-expired");
    }
    let left = snapshot_ids(&moto, HOME).await;
    assert!(orphans.iter().all(|s| !left.contains(s)));
}

#[tokio::test]
async fn a_crash_after_tagging_leaves_findable_orphans() {
    // GIVEN an expired DR copy whose snapshot carries none of our tags (a copy made without
    // snapshot tags), and DeregisterImage failing once in the DR region (the "crash")
    let moto = start().await;
    let i = moto.instance(HOME, &[("Backup", "true")], 0).await;
    let ami = backup_at(&moto, &i, days(-3)).await;
    let copy = copy_at(&moto, &ami, &i, DR, days(-3), days(-1), false).await;
    let copy_snaps = image_snapshots(&moto, DR, &copy).await;
    let untagged = moto.snapshots(DR).await;
    assert!(untagged.iter().all(|s| s.tags().is_empty()), "{untagged:?}");
    moto.fault(json!({"action": "DeregisterImage", "region": DR, "code": "UnauthorizedOperation", "status": 403, "count": 1}));
    let config = Config {
        keep_last: 0,
        copy_to_regions: vec![region(DR)],
        ..config()
    };
    moto.reset_calls();

    // WHEN the sweep runs
    let (report, ok) = expire_with(&moto.clients(HOME), &config, &json!({}), now()).await;

    // THEN the copy failed and stays, but its snapshot already carries our tags, expired
    assert!(!ok);
    assert_eq!(ids(&report["regions"][DR], "failed"), vec![copy.clone()]);
    assert_eq!(
        report["regions"][DR]["failed"][0]["code"],
        "UnauthorizedOperation"
    );
    let tagged = tag_map(
        moto.snapshots(DR)
            .await
            .iter()
            .find(|s| s.snapshot_id() == Some(copy_snaps[0].as_str()))
            .unwrap()
            .tags(),
    );
    assert_eq!(tagged["backup:managed-by"], "ec2-backup");
    assert_eq!(tagged["backup:expires-at"], format_time(days(-1)));
    assert_eq!(moto.calls_in(DR).get("CreateTags"), Some(&1));
    moto.assert_calls_allowed("expire");
    assert_no_untracked_orphans(&moto, &report).await;

    // AND the next sweep deregisters it and deletes the snapshot
    let report = sweep(&moto, &config).await;
    assert_eq!(ids(&report["regions"][DR], "deregistered"), vec![copy]);
    assert_eq!(ids(&report["regions"][DR], "deleted_snapshots"), copy_snaps);
    assert!(snapshot_ids(&moto, DR).await.is_empty());
}

/// An AMI of ours made at `at` (expiring 7 days later) whose snapshots carry none of our tags,
/// as CreateImage made them before tag specifications (or after someone removed the tags).
async fn image_with_untagged_snapshots(moto: &Moto, instance: &str, at: DateTime<Utc>) -> String {
    let (created, expires) = (format_time(at), format_time(at + TimeDelta::days(7)));
    moto.client(HOME)
        .create_image()
        .instance_id(instance)
        .name(format!("ec2-backup legacy {created}").replace(':', "."))
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Image)
                .set_tags(Some(tags(&[
                    ("backup:managed-by", "ec2-backup"),
                    ("backup:kind", "image"),
                    ("backup:source", instance),
                    ("backup:created-at", &created),
                    ("backup:expires-at", &expires),
                ])))
                .build(),
        )
        .send()
        .await
        .expect("create_image")
        .image_id()
        .expect("image id")
        .to_string()
}

#[tokio::test]
async fn an_image_of_ours_whose_snapshots_lack_our_tag_goes_with_them_in_one_call() {
    // GIVEN an expired AMI of ours with two snapshots that carry no tag at all (the case
    // today's IAM left registered for ever), and a fresh AMI of the same instance
    let moto = start().await;
    let i = moto.instance(HOME, &[("Backup", "true")], 1).await;
    let legacy = image_with_untagged_snapshots(&moto, &i, days(-10)).await;
    let snaps = image_snapshots(&moto, HOME, &legacy).await;
    assert_eq!(snaps.len(), 2);
    assert!(
        moto.snapshots(HOME)
            .await
            .iter()
            .all(|s| s.tags().is_empty())
    );
    let fresh = backup_at(&moto, &i, days(-1)).await;
    moto.reset_calls();

    // WHEN the sweep runs
    let report = sweep(&moto, &config()).await;
    let calls = moto.calls_in(HOME);

    // THEN the AMI is deregistered and both its snapshots deleted, with the AMI's reason
    let home = &report["regions"][HOME];
    assert_eq!(ids(home, "deregistered"), vec![legacy.clone()]);
    assert_eq!(ids(home, "deleted_snapshots"), sorted(snaps.clone()));
    assert!(
        home["deleted_snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["image"] == legacy.as_str() && d["reason"] == "expired")
    );
    assert_eq!(image_ids(&moto, HOME).await, BTreeSet::from([fresh]));
    let left = snapshot_ids(&moto, HOME).await;
    assert!(snaps.iter().all(|s| !left.contains(s)), "{left:?}");
    // AND it cost the listing, one describe by id to tell whose the snapshots are, one
    // CreateTags claiming both (what IAM needs before it lets them be deleted) and one
    // DeregisterImage that deleted them: no DeleteSnapshot (before: 1 + 2 calls, and IAM
    // refused the tagging)
    assert_eq!(calls.get("DescribeSnapshots"), Some(&2), "{calls:?}");
    assert_eq!(calls.get("CreateTags"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("DeregisterImage"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("DeleteSnapshot"), None, "{calls:?}");
    moto.assert_calls_allowed("expire");

    // AND the next sweep has nothing left to do
    let again = sweep(&moto, &config()).await;
    assert_eq!(again["regions"][HOME]["deleted_snapshots"], json!([]));
}

#[tokio::test]
async fn a_snapshot_another_deployment_manages_stays_when_our_image_goes() {
    // GIVEN an expired AMI of ours whose two snapshots carry no tag of ours, one of them
    // tagged as another deployment's
    let moto = start().await;
    let i = moto.instance(HOME, &[("Name", "legacy")], 1).await;
    let legacy = image_with_untagged_snapshots(&moto, &i, days(-10)).await;
    let snaps = image_snapshots(&moto, HOME, &legacy).await;
    let (bare, theirs) = (snaps[0].clone(), snaps[1].clone());
    moto.set_tags(HOME, &theirs, &[("backup:managed-by", "team-b")])
        .await;
    let config = Config {
        keep_last: 0,
        ..config()
    };
    moto.reset_calls();

    // WHEN the sweep runs
    let report = sweep(&moto, &config).await;
    let calls = moto.calls_in(HOME);

    // THEN the AMI is deregistered and the untagged snapshot deleted; the other deployment's
    // stays as it was (not retagged, not deleted, not reported: its own deployment tracks it)
    let home = &report["regions"][HOME];
    assert_eq!(ids(home, "deregistered"), vec![legacy.clone()]);
    assert_eq!(ids(home, "deleted_snapshots"), vec![bare.clone()]);
    assert_eq!(home["kept"], json!([]));
    let left: Vec<_> = moto.snapshots(HOME).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].snapshot_id(), Some(theirs.as_str()));
    assert_eq!(
        tag_map(left[0].tags()),
        [("backup:managed-by".to_string(), "team-b".to_string())].into()
    );
    // AND not in one call (that would have deleted theirs too): deregistered alone, then ours
    assert_eq!(calls.get("DeregisterImage"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("DeleteSnapshot"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("CreateTags"), Some(&1), "{calls:?}");
    moto.assert_calls_allowed("expire");
}

#[tokio::test]
async fn a_snapshot_an_ami_not_ours_lists_survives_the_one_call() {
    // GIVEN an expired AMI of ours, and an AMI someone registered by hand from its data
    // snapshot (not ours: expire never sees it, so the plan deletes the AMI in one call)
    let moto = start().await;
    let i = moto.instance(HOME, &[("Backup", "true")], 1).await;
    let ours = backup_at(&moto, &i, days(-10)).await;
    let snaps = image_snapshots(&moto, HOME, &ours).await;
    let (root, data) = (snaps[0].clone(), snaps[1].clone());
    let theirs = moto
        .client(HOME)
        .register_image()
        .name("restored-by-hand")
        .root_device_name("/dev/sda1")
        .block_device_mappings(
            aws_sdk_ec2::types::BlockDeviceMapping::builder()
                .device_name("/dev/sda1")
                .ebs(
                    aws_sdk_ec2::types::EbsBlockDevice::builder()
                        .snapshot_id(&data)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("register_image")
        .image_id()
        .expect("image id")
        .to_string();
    let config = Config {
        keep_last: 0,
        ..config()
    };
    moto.reset_calls();

    // WHEN the sweep runs
    let report = sweep(&moto, &config).await;
    let calls = moto.calls_in(HOME);

    // THEN our AMI went in one call with its root snapshot; EC2 skipped the snapshot the other
    // AMI lists, and it is kept for a later run, not failed
    let home = &report["regions"][HOME];
    assert_eq!(ids(home, "deregistered"), vec![ours]);
    assert_eq!(ids(home, "deleted_snapshots"), vec![root]);
    assert_eq!(kept_reason(home, &data), "in-use");
    assert_eq!(home["failed"], json!([]));
    assert_eq!(calls.get("DeregisterImage"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("DeleteSnapshot"), None, "{calls:?}");
    assert!(image_ids(&moto, HOME).await.contains(&theirs));
    assert!(snapshot_ids(&moto, HOME).await.contains(&data));

    // AND the next sweep keeps it too (EC2 refuses its delete as in use), until that AMI goes
    let report = sweep(&moto, &config).await;
    assert_eq!(kept_reason(&report["regions"][HOME], &data), "in-use");
    assert!(snapshot_ids(&moto, HOME).await.contains(&data));
}

#[tokio::test]
#[should_panic(expected = "used by no image and not reported")]
async fn the_orphan_check_sees_an_untagged_snapshot_of_a_backed_up_volume() {
    // GIVEN an orphan expire cannot know as ours: a fresh AMI of a tagged instance deregistered
    // by hand, its snapshot's tags then removed
    let moto = start().await;
    let i = moto.instance(HOME, &[("Backup", "true")], 0).await;
    let ami = backup_at(&moto, &i, days(-1)).await;
    let snaps = image_snapshots(&moto, HOME, &ami).await;
    assert_eq!(snaps.len(), 1);
    let ec2 = moto.client(HOME);
    ec2.deregister_image().image_id(&ami).send().await.unwrap();
    let keys: Vec<Tag> = moto.snapshots(HOME).await[0]
        .tags()
        .iter()
        .map(|t| Tag::builder().key(t.key().unwrap()).build())
        .collect();
    ec2.delete_tags()
        .set_resources(Some(snaps.clone()))
        .set_tags(Some(keys))
        .send()
        .await
        .unwrap();
    assert!(moto.snapshots(HOME).await[0].tags().is_empty());

    // WHEN the sweep runs (and reports nothing about it), THEN the check fails on it
    sweep(&moto, &config()).await;
}

#[tokio::test]
async fn a_dr_copy_expires_on_its_own_clock_in_a_region_named_only_by_tags() {
    // GIVEN an instance copying to eu-west-1 by its own tag (COPY_TO_REGIONS is empty): a fresh
    // original at home, and in eu-west-1 an expired copy of an older AMI and a fresh copy
    // whose copy retention is longer than the original's
    let moto = start().await;
    let i = moto
        .instance(HOME, &[("Backup", "true"), ("backup:copy-to", DR2)], 0)
        .await;
    let older = backup_at(&moto, &i, days(-10)).await;
    let newer = backup_at(&moto, &i, days(-3)).await;
    let old_copy = copy_at(&moto, &older, &i, DR2, days(-10), days(-2), true).await;
    let new_copy = copy_at(&moto, &newer, &i, DR2, days(-3), days(27), true).await;
    let old_copy_snaps = image_snapshots(&moto, DR2, &old_copy).await;
    // The original at home is made to expire too; the fresh copy must outlive it.
    moto.set_tags(
        HOME,
        &newer,
        &[("backup:expires-at", &format_time(days(-1)))],
    )
    .await;

    // WHEN the sweep runs with KEEP_LAST=0
    let report = sweep(
        &moto,
        &Config {
            keep_last: 0,
            ..config()
        },
    )
    .await;

    // THEN eu-west-1 was swept because a backup's copy-to named it
    let regions: Vec<&String> = report["regions"].as_object().unwrap().keys().collect();
    assert_eq!(regions, [DR2, HOME]);
    // AND there the expired copy went with its snapshot, the fresh copy stays, whatever its
    // original at home did
    let dr = &report["regions"][DR2];
    assert_eq!(ids(dr, "deregistered"), vec![old_copy]);
    assert_eq!(ids(dr, "deleted_snapshots"), old_copy_snaps);
    assert_eq!(kept_reason(dr, &new_copy), "not-expired");
    assert_eq!(
        ids(&report["regions"][HOME], "deregistered"),
        sorted(vec![older, newer])
    );
    assert_eq!(image_ids(&moto, DR2).await, BTreeSet::from([new_copy]));
}

#[tokio::test]
async fn cleanup_regions_are_swept_too() {
    // GIVEN an expired copy in eu-west-1, named by no tag and no COPY_TO_REGIONS
    let moto = start().await;
    let i = moto.instance(HOME, &[("Backup", "true")], 0).await;
    let ami = backup_at(&moto, &i, days(-1)).await;
    let copy = copy_at(&moto, &ami, &i, DR2, days(-9), days(-2), true).await;
    let copy2 = copy_at(&moto, &ami, &i, DR2, days(-8), days(-1), true).await;

    // WHEN swept without, then with, CLEANUP_REGIONS=eu-west-1
    let report = sweep(&moto, &config()).await;
    assert!(report["regions"].get(DR2).is_none());
    let report = sweep(
        &moto,
        &Config {
            cleanup_regions: vec![region(DR2)],
            ..config()
        },
    )
    .await;

    // THEN only then is it swept: the older copy goes, the newest is kept as the last
    assert_eq!(ids(&report["regions"][DR2], "deregistered"), vec![copy]);
    assert_eq!(kept_reason(&report["regions"][DR2], &copy2), "keep-last");
}

#[tokio::test]
async fn dry_run_reports_the_same_plan_and_changes_nothing() {
    // GIVEN expired AMIs, an orphan and a fresh AMI
    let moto = start().await;
    let i = moto.instance(HOME, &[("Backup", "true")], 0).await;
    let a = backup_at(&moto, &i, days(-12)).await;
    let b = backup_at(&moto, &i, days(-11)).await;
    let _c = backup_at(&moto, &i, days(-1)).await;
    moto.client(HOME)
        .deregister_image()
        .image_id(&a)
        .send()
        .await
        .unwrap();
    let before = (
        image_ids(&moto, HOME).await,
        snapshot_ids(&moto, HOME).await,
    );

    for (how, config, payload) in [
        ("payload", config(), event("expire-dry-run.json", &[])),
        (
            "DRY_RUN",
            Config {
                dry_run: true,
                ..config()
            },
            event("scheduled-event.json", &[]),
        ),
    ] {
        // WHEN a dry run is asked for through the payload, or through DRY_RUN
        moto.reset_calls();
        let (plan, ok) = expire_with(&moto.clients(HOME), &config, &payload, now()).await;
        assert!(ok, "{how}: {plan}");
        assert_no_untracked_orphans(&moto, &plan).await;

        // THEN it says what it would do, and only described
        assert_eq!(plan["dry_run"], json!(true), "{how}");
        assert_eq!(ids(&plan["regions"][HOME], "deregistered"), vec![b.clone()]);
        assert_eq!(ids(&plan["regions"][HOME], "deleted_snapshots").len(), 2);
        let calls = moto.calls_in(HOME);
        assert_eq!(
            calls.keys().cloned().collect::<Vec<_>>(),
            ["DescribeImages", "DescribeSnapshots"],
            "{how}: {calls:?}"
        );
        assert_eq!(
            (
                image_ids(&moto, HOME).await,
                snapshot_ids(&moto, HOME).await
            ),
            before,
            "{how}"
        );
    }

    // AND the real run does exactly what the dry run said
    let (plan, _) = expire_with(
        &moto.clients(HOME),
        &config(),
        &json!({"dry_run": true}),
        now(),
    )
    .await;
    let mut real = sweep(&moto, &config()).await;
    real["dry_run"] = json!(true);
    assert_eq!(real, plan);
}

#[tokio::test]
async fn a_region_whose_calls_fail_is_reported_and_the_others_are_swept() {
    // GIVEN expired copies in us-west-2 and eu-west-1, an expired AMI at home, and every
    // DescribeImages in eu-west-1 refused
    let moto = start().await;
    let i = moto.instance(HOME, &[("Backup", "true")], 0).await;
    let a = backup_at(&moto, &i, days(-12)).await;
    let b = backup_at(&moto, &i, days(-11)).await;
    let west = copy_at(&moto, &a, &i, DR, days(-12), days(-2), true).await;
    let eu = copy_at(&moto, &a, &i, DR2, days(-12), days(-2), true).await;
    let eu_snaps = image_snapshots(&moto, DR2, &eu).await;
    moto.fault(json!({"action": "DescribeImages", "region": DR2, "code": "UnauthorizedOperation", "message": "You are not authorized to perform this operation.", "status": 403}));
    let config = Config {
        keep_last: 0,
        copy_to_regions: vec![region(DR), region(DR2)],
        ..config()
    };

    // WHEN the sweep runs
    let (report, ok) = expire_with(&moto.clients(HOME), &config, &json!({}), now()).await;

    // THEN the invocation fails, carrying the whole report
    assert!(!ok);
    moto.http("DELETE", "/_test/faults", "");
    // AND eu-west-1 is reported failed with the AWS code, and nothing there was touched
    let eu_report = &report["regions"][DR2];
    assert_eq!(ids(eu_report, "failed"), vec![DR2.to_string()]);
    assert_eq!(eu_report["failed"][0]["code"], "UnauthorizedOperation");
    assert!(image_ids(&moto, DR2).await.contains(&eu));
    assert!(snapshot_ids(&moto, DR2).await.contains(&eu_snaps[0]));
    assert_eq!(moto.calls_in(DR2).get("DeleteSnapshot"), None);
    // AND home and us-west-2 were swept all the same
    assert_eq!(
        ids(&report["regions"][HOME], "deregistered"),
        sorted(vec![a, b])
    );
    assert_eq!(ids(&report["regions"][DR], "deregistered"), vec![west]);
    assert_eq!(report["regions"][DR]["failed"], json!([]));
    assert_no_untracked_orphans(&moto, &report).await;
}

#[tokio::test]
async fn a_delete_that_fails_is_reported_and_the_rest_go_on() {
    // GIVEN two expired standalone snapshots and DeleteSnapshot refused once
    let moto = start().await;
    let vol = moto.volume(HOME, &[("Backup", "true")]).await;
    let s1 = snapshot_at(&moto, &vol, days(-12)).await;
    let s2 = snapshot_at(&moto, &vol, days(-11)).await;
    moto.fault(json!({"action": "DeleteSnapshot", "code": "UnauthorizedOperation", "status": 403, "count": 1}));
    let config = Config {
        keep_last: 0,
        ..config()
    };

    // WHEN the sweep runs
    let (report, ok) = expire_with(&moto.clients(HOME), &config, &json!({}), now()).await;

    // THEN one was deleted, the other failed with its code, and the invocation failed
    assert!(!ok);
    let home = &report["regions"][HOME];
    let (deleted, failed) = (ids(home, "deleted_snapshots"), ids(home, "failed"));
    assert_eq!(deleted.len() + failed.len(), 2, "{report}");
    assert_eq!(failed.len(), 1);
    assert_eq!(home["failed"][0]["code"], "UnauthorizedOperation");
    assert_eq!(home["failed"][0]["source"], vol.as_str());
    assert_eq!(sorted([deleted, failed].concat()), sorted(vec![s1, s2]));
    assert_no_untracked_orphans(&moto, &report).await;
    // AND the next run finishes the job
    let report = sweep(&moto, &config).await;
    assert_eq!(ids(&report["regions"][HOME], "deleted_snapshots").len(), 1);
}

#[tokio::test]
async fn throttled_deletes_are_retried_by_the_sdk() {
    // GIVEN an expired AMI and an expired standalone snapshot, and DeregisterImage and
    // DeleteSnapshot throttled twice each
    let moto = start().await;
    let i = moto.instance(HOME, &[("Backup", "true")], 0).await;
    let a = backup_at(&moto, &i, days(-12)).await;
    let vol = moto.volume(HOME, &[("Backup", "true")]).await;
    let s = snapshot_at(&moto, &vol, days(-12)).await;
    moto.fault(json!({"action": "DeregisterImage", "code": "RequestLimitExceeded", "message": "slow down", "status": 503, "count": 2}));
    moto.fault(json!({"action": "DeleteSnapshot", "code": "RequestLimitExceeded", "message": "slow down", "status": 503, "count": 2}));
    let sdk = moto.functions_sdk_config(HOME).await;
    let clients = Clients::from_sdk(sdk, region(HOME), shared::pacing::RateLimits::default());
    moto.reset_calls();

    // WHEN the sweep runs with the functions' own SDK configuration
    let (report, ok) = expire_with(
        &clients,
        &Config {
            keep_last: 0,
            ..config()
        },
        &json!({}),
        now(),
    )
    .await;

    // THEN the SDK retried and everything was deleted
    assert!(ok, "{report}");
    assert_eq!(ids(&report["regions"][HOME], "deregistered"), vec![a]);
    assert!(ids(&report["regions"][HOME], "deleted_snapshots").contains(&s));
    assert!(snapshot_ids(&moto, HOME).await.is_empty());
    let calls = moto.calls_in(HOME);
    assert_eq!(calls.get("DeregisterImage"), Some(&3), "{calls:?}");
    assert_eq!(calls.get("DeleteSnapshot"), Some(&3), "{calls:?}");
}

#[tokio::test]
async fn a_large_sweep_reads_every_page_and_costs_one_call_per_deletion() {
    // GIVEN 12 instances with one expired and one fresh AMI each, read in pages of 5
    let moto = start().await;
    let mut expired = Vec::new();
    for _ in 0..12 {
        let i = moto.instance(HOME, &[("Backup", "true")], 0).await;
        expired.push(backup_at(&moto, &i, days(-10)).await);
        backup_at(&moto, &i, days(-1)).await;
    }
    let url = moto.url().to_string();
    let clients = Clients::new(region(HOME), move |r| {
        let conf = aws_sdk_ec2::Config::builder()
            .behavior_version(aws_sdk_ec2::config::BehaviorVersion::latest())
            .region(aws_sdk_ec2::config::Region::new(r.to_string()))
            .endpoint_url(&url)
            .credentials_provider(aws_sdk_ec2::config::Credentials::new(
                "testing", "testing", None, None, "tests",
            ))
            .build();
        shared::ec2::Ec2::new(aws_sdk_ec2::Client::from_conf(conf), r.clone()).with_page_size(5)
    });
    moto.reset_calls();

    // WHEN the sweep runs
    let (report, ok) = expire_with(&clients, &config(), &json!({}), now()).await;

    // THEN all 12 expired AMIs were found across the pages and deleted with their snapshots,
    // one call each
    assert!(ok, "{report}");
    assert_eq!(
        ids(&report["regions"][HOME], "deregistered"),
        sorted(expired)
    );
    assert_eq!(ids(&report["regions"][HOME], "kept").len(), 12);
    let calls = moto.calls_in(HOME);
    assert_eq!(
        calls.get("DescribeImages"),
        Some(&5),
        "24 images in pages of 5: {calls:?}"
    );
    assert_eq!(calls.get("DescribeSnapshots"), Some(&5), "{calls:?}");
    // one call per expired AMI, its snapshot with it (before: 12 DeregisterImage and 12
    // DeleteSnapshot)
    assert_eq!(calls.get("DeregisterImage"), Some(&12), "{calls:?}");
    assert_eq!(calls.get("DeleteSnapshot"), None, "{calls:?}");
    assert_eq!(calls.get("CreateTags"), None, "{calls:?}");
    assert!(
        snapshot_ids(&moto, HOME).await.len() == 12,
        "the fresh AMIs' snapshots stay"
    );
    moto.assert_calls_allowed("expire");
    assert_no_untracked_orphans(&moto, &report).await;
}

#[tokio::test]
async fn the_event_samples_are_one_sweep_and_any_other_payload_is_rejected() {
    // GIVEN the sample events of expire and of the schedule
    let moto = start().await;
    let clients = moto.clients(HOME);
    for name in [
        "expire-sweep.json",
        "expire-dry-run.json",
        "scheduled-event.json",
    ] {
        // WHEN each is handled, THEN it is one sweep
        let (report, ok) = expire_with(&clients, &config(), &event(name, &[]), now()).await;
        assert!(ok, "{name}: {report}");
        assert_eq!(
            report["dry_run"],
            json!(name == "expire-dry-run.json"),
            "{name}"
        );
        assert!(report["regions"].get(HOME).is_some(), "{name}");
    }
    // AND anything else is an error naming what was expected, before any call
    moto.reset_calls();
    for payload in [
        json!({"instance_ids": ["i-12345678"]}),
        json!({"dry_run": "please"}),
        event("tag-change-instance.json", &[]),
    ] {
        let err = shared::expire::handle(&config(), &clients, None, &payload, now())
            .await
            .unwrap_err();
        assert!(matches!(err, shared::Error::Payload(_)), "{err}");
        assert!(err.to_string().contains("Scheduled Event"), "{err}");
    }
    assert!(moto.calls().is_empty(), "{:?}", moto.calls());
}

#[tokio::test]
async fn a_sweep_the_deadline_cuts_short_is_handed_on_and_finished_from_the_queue() {
    // GIVEN three expired AMIs, one DeregisterImage every two seconds, expire's work queue
    let moto = start().await;
    let i = moto.instance(HOME, &[("Backup", "true")], 0).await;
    for d in [-12, -11, -10] {
        backup_at(&moto, &i, days(d)).await;
    }
    let zero = Config {
        keep_last: 0,
        ..config()
    };
    let queue = moto.work_queue("ec2-backup-expire", "expire").await;
    let limits = shared::pacing::RateLimits::parse("DeregisterImage=0.5/1").unwrap();
    let clients = moto.clients_paced(HOME, limits);
    let t0 = std::time::Instant::now();
    let deadline = shared::pacing::Deadline::new(t0 + std::time::Duration::from_millis(3500), t0);

    // WHEN swept with 3.5 s to go
    let report = shared::expire::handle(
        &zero,
        &clients.until(deadline),
        Some(&queue),
        &event("expire-sweep.json", &[]),
        now(),
    )
    .await
    .unwrap();

    // THEN the home region's rest is handed on
    assert_eq!(report["regions"][HOME]["remaining"], 2, "{report}");
    assert_eq!(report["continuations"], 1, "{report}");
    let batch = moto.receive(&queue).await;
    let body: Value = serde_json::from_str(batch[0].body().unwrap()).unwrap();
    assert_eq!(body["work"], json!({"regions": [HOME], "attempt": 0}));

    // AND delivered, the continuation sweeps that region only and finishes it
    let answer = shared::expire::handle(
        &zero,
        &clients,
        Some(&queue),
        &sqs_event(&queue, &batch),
        now(),
    )
    .await
    .unwrap();
    assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
    let result = &answer["records"][0]["result"];
    assert_eq!(result["regions"].as_object().unwrap().len(), 1, "{answer}");
    assert_eq!(ids(&result["regions"][HOME], "deregistered").len(), 2);
    assert!(image_ids(&moto, HOME).await.is_empty());
    assert_no_untracked_orphans(&moto, result).await;
}

#[tokio::test]
async fn a_continuation_sweeps_the_regions_it_names_without_reading_home_again() {
    // GIVEN an expired copy in eu-west-1, a region named only by the instance's copy-to tag
    // (COPY_TO_REGIONS and CLEANUP_REGIONS are empty), a continuation naming eu-west-1 on
    // expire's queue, and every DescribeImages at home refused
    let moto = start().await;
    let i = moto
        .instance(HOME, &[("Backup", "true"), ("backup:copy-to", DR2)], 0)
        .await;
    let older = backup_at(&moto, &i, days(-10)).await;
    let old_copy = copy_at(&moto, &older, &i, DR2, days(-10), days(-2), true).await;
    let old_copy_snaps = image_snapshots(&moto, DR2, &old_copy).await;
    let zero = Config {
        keep_last: 0,
        ..config()
    };
    let queue = moto.work_queue("ec2-backup-expire", "expire").await;
    let work = shared::expire::ExpireWork {
        regions: vec![region(DR2)],
        attempt: 1,
    };
    shared::continuation::hand_on(&queue, &zero, "expire", "test", &[work], 0)
        .await
        .unwrap();
    moto.fault(json!({"action": "DescribeImages", "region": HOME, "code": "UnauthorizedOperation", "message": "You are not authorized to perform this operation.", "status": 403}));
    moto.reset_calls();

    // WHEN the continuation is delivered
    let batch = moto.receive(&queue).await;
    let answer = shared::expire::handle(
        &zero,
        &moto.clients(HOME),
        Some(&queue),
        &sqs_event(&queue, &batch),
        now(),
    )
    .await
    .unwrap();
    moto.http("DELETE", "/_test/faults", "");

    // THEN the record is finished: eu-west-1 was swept, its expired copy gone with its snapshot
    assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
    let result = &answer["records"][0]["result"];
    let regions: Vec<&String> = result["regions"].as_object().unwrap().keys().collect();
    assert_eq!(regions, [DR2], "{answer}");
    assert_eq!(ids(&result["regions"][DR2], "deregistered"), vec![old_copy]);
    assert_eq!(
        ids(&result["regions"][DR2], "deleted_snapshots"),
        old_copy_snaps
    );
    // AND home, not among its regions, was not read (its fault did not cost eu-west-1)
    assert_eq!(moto.calls_in(HOME).get("DescribeImages"), None);
    assert_eq!(result["warnings"], json!([]), "{answer}");
    // AND the original at home stays
    assert!(image_ids(&moto, HOME).await.contains(&older));
}
