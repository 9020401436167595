//! The `ec2-backup` command-line tool against the moto server: status and its exit code, restore
//! in the home and the DR region, volume restore with attach, drills that leave nothing behind.

use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use chrono::{TimeDelta, Utc};
use integration_tests::*;
use serde_json::{Value, json};
use shared::Config;
use shared::create::handle;
use shared::event::ResourceKind;
use shared::tags::format_time;
use std::process::{Command, Output};

fn cli(moto: &Moto, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ec2-backup"))
        .args(args)
        .env("AWS_ENDPOINT_URL", moto.url())
        .env("AWS_REGION", HOME)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("COPY_TO_REGIONS", DR)
        .env_remove("TAG_PREFIX")
        .env_remove("DEPLOYMENT_NAME")
        .output()
        .expect("run ec2-backup")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn config() -> Config {
    Config {
        copy_to_regions: vec![region(DR)],
        ..Config::default()
    }
}

/// Backs up `ids` now (instances or volumes) with the functions' code path; returns the ids made.
async fn backup(moto: &Moto, kind: ResourceKind, ids: &[&str]) -> Vec<String> {
    let payload = json!({ kind.ids_field(): ids });
    // Every call a request of its own.
    let request = format!(
        "cli-test-{}",
        Utc::now().timestamp_nanos_opt().unwrap_or_default()
    );
    let report = handle(
        kind,
        &config(),
        &moto.ec2(HOME),
        &payload,
        &request,
        Utc::now(),
    )
    .await
    .unwrap();
    report["created"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

/// A copy of an original AMI in the DR region, tagged as replicate tags it.
async fn copy_to_dr(moto: &Moto, image_id: &str) -> String {
    let original = moto
        .images(HOME)
        .await
        .into_iter()
        .find(|i| i.image_id() == Some(image_id))
        .unwrap();
    let mut tags: Vec<Tag> = original.tags().to_vec();
    tags.push(Tag::builder().key("backup:copy-of").value(image_id).build());
    moto.client(DR)
        .copy_image()
        .source_image_id(image_id)
        .source_region(HOME)
        .name(format!("copy of {image_id}"))
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Image)
                .set_tags(Some(tags))
                .build(),
        )
        .send()
        .await
        .unwrap()
        .image_id()
        .unwrap()
        .to_string()
}

fn rows(status: &Value) -> Vec<(String, String, String)> {
    status["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["resource"].as_str().unwrap().to_string(),
                r["region"].as_str().unwrap().to_string(),
                r["rpo"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn status_shows_rpo_per_region_and_fails_while_anything_is_late() {
    // GIVEN an opted-in instance backed up at home but not yet copied to its DR region
    let moto = Moto::start().await;
    let web = moto
        .instance(HOME, &[("Backup", "true"), ("Name", "web-01")], 0)
        .await;
    let ami = backup(&moto, ResourceKind::Instance, &[&web])
        .await
        .remove(0);

    // WHEN status runs THEN home is met, DR has none, and the exit code says so
    let out = cli(&moto, &["status", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let status: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        rows(&status),
        vec![
            (web.clone(), HOME.into(), "met".into()),
            (web.clone(), DR.into(), "none".into())
        ]
    );
    assert_eq!(status["rows"][1]["copies_pending"], 1);

    // AND once the copy is there, all is met and the exit code is 0
    copy_to_dr(&moto, &ami).await;
    let out = cli(&moto, &["status"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("web-01") && stdout(&out).contains("met"),
        "{}",
        stdout(&out)
    );

    // AND when the backups are three days old (moved by their tags), both regions are late
    for region in [HOME, DR] {
        for image in moto.images(region).await {
            moto.set_tags(
                region,
                image.image_id().unwrap(),
                &[(
                    "backup:created-at",
                    &format_time(Utc::now() - TimeDelta::days(3)),
                )],
            )
            .await;
        }
    }
    let out = cli(&moto, &["status", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let status: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(
        rows(&status).iter().all(|(_, _, rpo)| rpo == "late"),
        "{status}"
    );
}

#[tokio::test]
async fn status_lists_backups_whose_source_is_gone() {
    let moto = Moto::start().await;
    let gone = moto.instance(HOME, &[("Backup", "true")], 0).await;
    let ami = backup(&moto, ResourceKind::Instance, &[&gone])
        .await
        .remove(0);
    moto.terminate(HOME, &gone).await;
    let out = cli(&moto, &["status", "--json"]);
    let status: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(status["orphans"][0]["id"], ami.as_str());
    assert_eq!(status["orphans"][0]["source"], gone.as_str());
    assert!(stdout(&cli(&moto, &["status"])).contains("no longer exists"));
}

#[tokio::test]
async fn restore_an_instance_at_home_and_in_the_dr_region() {
    let moto = Moto::start().await;
    let web = moto
        .instance(
            HOME,
            &[("Backup", "true"), ("Name", "web-01"), ("Team", "core")],
            0,
        )
        .await;
    let ami = backup(&moto, ResourceKind::Instance, &[&web])
        .await
        .remove(0);
    let copy = copy_to_dr(&moto, &ami).await;

    // A dry run says what it would do and launches nothing.
    let out = cli(&moto, &["restore", "instance", &web, "--dry-run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("from {ami}")),
        "{}",
        stdout(&out)
    );
    let count = |r: &'static str| {
        let moto = &moto;
        async move {
            moto.client(r)
                .describe_instances()
                .send()
                .await
                .unwrap()
                .reservations()
                .iter()
                .map(|x| x.instances().len())
                .sum::<usize>()
        }
    };
    assert_eq!(count(HOME).await, 1);

    // At home: a new instance from the newest backup, with the original's tags.
    let out = cli(&moto, &["restore", "instance", &web]);
    assert!(out.status.success(), "{}", stderr(&out));
    let new_id = stdout(&out).trim().to_string();
    let tags = moto.instance_tags(HOME, &new_id).await;
    assert_eq!(tags.get("backup:restored-from"), Some(&ami));
    assert_eq!(tags.get("Name").map(String::as_str), Some("web-01"));
    assert_eq!(tags.get("Team").map(String::as_str), Some("core"));
    assert!(
        !tags.contains_key("Backup"),
        "the restored instance does not opt in by itself: {tags:?}"
    );

    // In the DR region: from the copy there.
    let out = cli(&moto, &["restore", "instance", &web, "--region", DR]);
    assert!(out.status.success(), "{}", stderr(&out));
    let dr_id = stdout(&out).trim().to_string();
    assert_eq!(
        moto.instance_tags(DR, &dr_id)
            .await
            .get("backup:restored-from"),
        Some(&copy)
    );
}

#[tokio::test]
async fn a_missing_backup_is_a_clear_error() {
    let moto = Moto::start().await;
    let web = moto.instance(HOME, &[("Backup", "true")], 0).await;
    let out = cli(&moto, &["restore", "instance", &web, "--region", DR]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&format!("no usable backup of {web} in {DR}")),
        "{}",
        stderr(&out)
    );
    let out = cli(
        &moto,
        &["restore", "instance", &web, "--before", "yesterday"],
    );
    assert!(
        stderr(&out).contains("not an RFC 3339 time"),
        "{}",
        stderr(&out)
    );
    let out = cli(&moto, &["backup", "sg-12345678"]);
    assert!(
        stderr(&out).contains("neither an instance id"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn restore_a_volume_and_attach_it() {
    let moto = Moto::start().await;
    let data = moto
        .volume(HOME, &[("Backup", "true"), ("Name", "db-data")])
        .await;
    let snap = backup(&moto, ResourceKind::Volume, &[&data])
        .await
        .remove(0);
    let target = moto.instance(HOME, &[], 0).await;
    let out = cli(
        &moto,
        &[
            "restore",
            "volume",
            &data,
            "--availability-zone",
            "us-east-1a",
            "--attach",
            &target,
            "--device",
            "/dev/sdg",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let vol = stdout(&out).trim().to_string();
    let described = moto
        .client(HOME)
        .describe_volumes()
        .volume_ids(&vol)
        .send()
        .await
        .unwrap();
    let v = &described.volumes()[0];
    assert_eq!(v.snapshot_id(), Some(snap.as_str()));
    assert_eq!(v.attachments()[0].instance_id(), Some(target.as_str()));
    assert_eq!(tag_map(v.tags()).get("backup:restored-from"), Some(&snap));
}

#[tokio::test]
async fn backup_on_demand_and_wait() {
    let moto = Moto::start().await;
    let web = moto.instance(HOME, &[("Backup", "true")], 0).await;
    let out = cli(&moto, &["backup", &web, "--dry-run"]);
    assert!(stdout(&out).contains("would create"), "{}", stdout(&out));
    assert!(moto.images(HOME).await.is_empty());
    let out = cli(&moto, &["backup", &web, "--wait"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("is available"), "{}", stderr(&out));
    assert_eq!(moto.images(HOME).await.len(), 1);
}

async fn drill_leftovers(moto: &Moto, region: &str) -> usize {
    let instances = moto
        .client(region)
        .describe_instances()
        .send()
        .await
        .unwrap();
    let live = instances
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter(|i| tag_map(i.tags()).contains_key("backup:drill"))
        .filter(|i| i.state().and_then(|s| s.name()).map(|n| n.as_str()) != Some("terminated"))
        .count();
    let volumes = moto.client(region).describe_volumes().send().await.unwrap();
    live + volumes
        .volumes()
        .iter()
        .filter(|v| tag_map(v.tags()).contains_key("backup:drill"))
        .count()
}

#[tokio::test]
async fn a_drill_restores_in_the_dr_region_and_leaves_nothing_behind() {
    // GIVEN two instances and a volume, with copies of the instances' backups in the DR region
    let moto = Moto::start().await;
    let a = moto.instance(HOME, &[("Backup", "true")], 0).await;
    let b = moto.instance(HOME, &[("Backup", "true")], 0).await;
    let amis = backup(&moto, ResourceKind::Instance, &[&a, &b]).await;
    for ami in &amis {
        copy_to_dr(&moto, ami).await;
    }
    let vol = moto
        .volume(HOME, &[("Backup", "true"), ("backup:copy-to", "none")])
        .await;
    backup(&moto, ResourceKind::Volume, &[&vol]).await;

    // A dry run says what it would restore and launches nothing.
    let out = cli(&moto, &["drill", "--dry-run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("would restore {a} in {DR}")),
        "{}",
        stdout(&out)
    );
    let launched = moto.client(DR).describe_instances().send().await.unwrap();
    assert!(
        launched.reservations().is_empty(),
        "a dry run launches nothing"
    );

    // WHEN the drill runs
    let out = cli(&moto, &["drill", "--json"]);

    // THEN both instances were restored in the DR region, and nothing is left running
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "the volume has no DR region: {report}");
    assert!(
        rows.iter()
            .all(|r| r["restored"] == true && r["region"] == DR && r["rpo_minutes"].is_number())
    );
    assert_eq!(drill_leftovers(&moto, DR).await, 0);

    // AND when one restore fails, the drill says so, fails, and still leaves nothing behind
    moto.fault(json!({"action": "RunInstances", "region": DR, "code": "InsufficientInstanceCapacity", "message": "none left", "count": 1}));
    let out = cli(&moto, &["drill", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let failed: Vec<&Value> = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["restored"] == false)
        .collect();
    assert_eq!(failed.len(), 1, "{report}");
    assert!(
        failed[0]["error"]
            .as_str()
            .unwrap()
            .contains("InsufficientInstanceCapacity")
    );
    assert_eq!(drill_leftovers(&moto, DR).await, 0);
}

#[tokio::test]
async fn a_drill_never_touches_drill_tagged_resources_it_did_not_make() {
    // GIVEN an instance someone else tagged backup:drill=true, and another deployment's drill volume
    let moto = Moto::start().await;
    let a = moto.instance(HOME, &[("Backup", "true")], 0).await;
    let ami = backup(&moto, ResourceKind::Instance, &[&a]).await.remove(0);
    copy_to_dr(&moto, &ami).await;
    let foreign = moto.instance(DR, &[("backup:drill", "true")], 0).await;
    let other = moto
        .volume(
            DR,
            &[
                ("backup:drill", "true"),
                ("backup:managed-by", "another-deployment"),
            ],
        )
        .await;

    // WHEN our drill runs
    let out = cli(&moto, &["drill"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );

    // THEN both are still there
    let state = moto
        .client(DR)
        .describe_instances()
        .instance_ids(&foreign)
        .send()
        .await
        .unwrap();
    assert_eq!(
        state.reservations()[0].instances()[0]
            .state()
            .unwrap()
            .name()
            .unwrap()
            .as_str(),
        "running"
    );
    let vols = moto
        .client(DR)
        .describe_volumes()
        .volume_ids(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(vols.volumes().len(), 1);

    // AND a drill asked to restore in the home region refuses
    let out = cli(&moto, &["drill", "--region", HOME]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not in the home region"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn help_has_examples() {
    let out = Command::new(env!("CARGO_BIN_EXE_ec2-backup"))
        .arg("--help")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Examples:") && text.contains("ec2-backup drill"),
        "{text}"
    );
}
