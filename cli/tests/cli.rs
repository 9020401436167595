//! The `ec2-backup` command-line tool against the moto server: status and its exit code, restore
//! in the home and the DR region, volume restore with attach, drills that leave nothing behind,
//! the DR account's KMS pre-flight (check-dr) on good and broken keys.

use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use chrono::{TimeDelta, Utc};
use integration_tests::accounts::{HOME_ACCOUNT, VAULT_ACCOUNT};
use integration_tests::*;
use serde_json::{Value, json};
use shared::Config;
use shared::backup::DrillResult;
use shared::create::ResourceKind;
use shared::create::handle;
use shared::drill::record::{DrillRecord, Restore, RestoreKind};
use shared::tags::format_time;
use std::collections::BTreeMap;
use std::process::{Command, Output};

fn cli(moto: &Moto, args: &[&str]) -> Output {
    cli_env(moto, args, &[])
}

/// The command with these variables set on top of the usual test environment.
fn cli_env(moto: &Moto, args: &[&str], vars: &[(&str, &str)]) -> Output {
    command(moto, args, vars).output().expect("run ec2-backup")
}

fn command(moto: &Moto, args: &[&str], vars: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ec2-backup"));
    command
        .args(args)
        .env("AWS_ENDPOINT_URL", moto.url())
        .env("AWS_REGION", HOME)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("COPY_TO_REGIONS", DR)
        .env_remove("TAG_PREFIX")
        .env_remove("DEPLOYMENT_NAME")
        .env_remove("DEFAULT_INTERVAL")
        .env_remove("DRY_RUN")
        .env_remove("DRILL_INTERVAL")
        .env_remove("EVIDENCE_BUCKET")
        .env_remove("DR_ACCOUNT")
        .env_remove("SHARE_KMS_KEYS")
        .env_remove("COPY_KMS_KEYS");
    for (name, _) in std::env::vars().filter(|(k, _)| k.starts_with("DRILL_")) {
        command.env_remove(name);
    }
    for (k, v) in vars {
        command.env(k, v);
    }
    command
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
        None,
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

#[tokio::test]
async fn backup_in_the_minute_of_a_tag_change_s_ami_makes_one_at_each_run() {
    // GIVEN an instance its Tag Change backed up this minute
    let moto = Moto::start().await;
    let web = moto
        .instance(HOME, &[("Backup", "true"), ("Name", "web-01")], 0)
        .await;
    let at = in_one_minute(40);
    let e = event(
        "tag-change-instance.json",
        &[
            ("i-0123456789abcdef0", &web),
            ("2026-11-25T02:58:12Z", &format_time(at)),
        ],
    );
    let tagged = handle(
        ResourceKind::Instance,
        &config(),
        &moto.ec2(HOME),
        None,
        &e,
        REQUEST_ID,
        at,
    )
    .await
    .unwrap();
    assert_eq!(
        tagged["created"].as_array().map(Vec::len),
        Some(1),
        "{tagged}"
    );

    // WHEN a person runs the command twice in that minute
    for _ in 0..2 {
        let out = cli(&moto, &["backup", &web]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            stdout(&out).contains(&format!("{web}: created ami-")),
            "{}",
            stdout(&out)
        );
    }

    // THEN each run made an AMI of its own, all three of that minute
    let minute = format!("{web}-{}", at.format("%Y%m%dT%H%MZ"));
    let names: Vec<String> = moto
        .images(HOME)
        .await
        .iter()
        .filter_map(|i| i.name().map(str::to_string))
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(names.iter().all(|n| n.contains(&minute)), "{names:?}");
}

/// Drill resources of any deployment still there in `region`: instances not terminated and
/// volumes carrying `backup:drill-of`.
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
        .filter(|i| tag_map(i.tags()).contains_key("backup:drill-of"))
        .filter(|i| i.state().and_then(|s| s.name()).map(|n| n.as_str()) != Some("terminated"))
        .count();
    let volumes = moto.client(region).describe_volumes().send().await.unwrap();
    live + volumes
        .volumes()
        .iter()
        .filter(|v| tag_map(v.tags()).contains_key("backup:drill-of"))
        .count()
}

/// The tags of every image and snapshot of ours in `region`, by id.
async fn backup_tags(moto: &Moto, region: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut tags = BTreeMap::new();
    for i in moto.images(region).await {
        tags.insert(i.image_id().unwrap().to_string(), tag_map(i.tags()));
    }
    for s in moto.snapshots(region).await {
        tags.insert(s.snapshot_id().unwrap().to_string(), tag_map(s.tags()));
    }
    tags
}

/// Moves every drill mark in `region` eight days back: the resources are due again.
async fn make_due(moto: &Moto, region: &str) {
    let long_ago = format_time(Utc::now() - TimeDelta::days(8));
    for (id, tags) in backup_tags(moto, region).await {
        if tags.contains_key("backup:drilled-at") {
            moto.set_tags(region, &id, &[("backup:drilled-at", &long_ago)])
                .await;
        }
    }
}

fn records(report: &Value) -> &Vec<Value> {
    report["records"]
        .as_array()
        .unwrap_or_else(|| panic!("no records: {report}"))
}

#[tokio::test]
async fn a_drill_restores_in_each_drill_region_and_leaves_nothing_behind() {
    // GIVEN two instances with copies of their backups in the DR region, and a volume with no
    // DR region (drilled at home)
    let moto = Moto::start().await;
    let a = moto
        .instance(HOME, &[("Backup", "true"), ("Name", "web-a")], 0)
        .await;
    let b = moto.instance(HOME, &[("Backup", "true")], 0).await;
    let amis = backup(&moto, ResourceKind::Instance, &[&a, &b]).await;
    for ami in &amis {
        copy_to_dr(&moto, ami).await;
    }
    // The copies of a and b, in that order.
    let dr = backup_tags(&moto, DR).await;
    let copy_of = |source: &str| {
        dr.iter()
            .find(|(_, t)| t.get("backup:source").map(String::as_str) == Some(source))
            .map(|(id, _)| id.clone())
            .unwrap()
    };
    let copies = [copy_of(&a), copy_of(&b)];
    let vol = moto
        .volume(HOME, &[("Backup", "true"), ("backup:copy-to", "none")])
        .await;
    let snap = backup(&moto, ResourceKind::Volume, &[&vol]).await.remove(0);

    // A dry run says what it would restore and launches nothing.
    let out = cli(&moto, &["drill", "--dry-run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("would restore {a} in {DR} from {}", copies[0])),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains(&format!("would restore {vol} in {HOME} from {snap}")),
        "{}",
        stdout(&out)
    );
    let launched = moto.client(DR).describe_instances().send().await.unwrap();
    assert!(
        launched.reservations().is_empty(),
        "a dry run launches nothing"
    );

    // WHEN the drill runs
    moto.reset_calls();
    let out = cli(&moto, &["drill", "--json"]);

    // THEN the instances were restored from their copies in the DR region, the volume at
    // home, each passed and was cleaned up, and nothing is left
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let report = json_out(&out);
    let got: BTreeMap<String, (String, String)> = records(&report)
        .iter()
        .map(|r| {
            (
                r["resource"].as_str().unwrap().to_string(),
                (
                    r["region"].as_str().unwrap().to_string(),
                    r["backup"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect();
    let expected: BTreeMap<String, (String, String)> = [
        (a.clone(), (DR.to_string(), copies[0].clone())),
        (b.clone(), (DR.to_string(), copies[1].clone())),
        (vol.clone(), (HOME.to_string(), snap.clone())),
    ]
    .into();
    assert_eq!(got, expected, "{report}");
    for r in records(&report) {
        assert_eq!(r["result"], "passed", "{r}");
        assert!(
            r["rpo_seconds"].is_i64() && r["rto_seconds"].is_i64(),
            "{r}"
        );
        assert!(
            r["restored"].is_string() && r["cleaned_up_at"].is_string(),
            "{r}"
        );
        assert_eq!(r["error"], Value::Null);
    }
    assert_eq!(report["counts"]["passed"], 3);
    assert_eq!(report["dry_run"], false);
    assert_eq!(drill_leftovers(&moto, DR).await, 0);
    assert_eq!(drill_leftovers(&moto, HOME).await, 0);
    assert_cli_calls_allowed(&moto);

    // AND the throwaway carried the drill's tags, and the drilled backups are marked
    let of_a = records(&report)
        .iter()
        .find(|r| r["resource"] == a.as_str())
        .unwrap();
    let tags = moto
        .instance_tags(DR, of_a["restored"].as_str().unwrap())
        .await;
    assert_eq!(
        tags.get("backup:managed-by").map(String::as_str),
        Some("ec2-backup")
    );
    assert_eq!(tags.get("backup:drill-of"), Some(&copies[0]));
    assert_eq!(
        tags.get("backup:drill-run"),
        of_a["run"].as_str().map(str::to_string).as_ref()
    );
    assert!(tags.contains_key("backup:drill-started-at"), "{tags:?}");
    assert_eq!(tags.get("Name"), Some(&format!("drill-{a}")));
    assert_eq!(of_a["name"], "web-a");
    let marks = backup_tags(&moto, DR).await;
    for copy in &copies {
        assert_eq!(
            marks[copy].get("backup:drill-result").map(String::as_str),
            Some("passed"),
            "{copy}: {:?}",
            marks[copy]
        );
        assert!(marks[copy].contains_key("backup:restore-seconds"));
    }
    assert_eq!(
        backup_tags(&moto, HOME).await[&snap]
            .get("backup:drill-result")
            .map(String::as_str),
        Some("passed")
    );

    // AND the table says the same, and status shows the last drill per row
    let out = cli(&moto, &["status", "--json"]);
    let status = json_out(&out);
    let row = |resource: &str, region: &str| {
        status["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == resource && r["region"] == region)
            .cloned()
            .unwrap()
    };
    assert_eq!(row(&a, DR)["last_drill"]["result"], "passed");
    assert_eq!(row(&a, HOME)["last_drill"], Value::Null);
    assert_eq!(row(&vol, HOME)["last_drill"]["result"], "passed");

    // AND a second drill the same day drills nothing: each resource passed within the interval
    let out = cli(&moto, &["drill"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("nothing drilled"), "{}", stdout(&out));

    // AND when the copies are due again and one restore fails, the drill says so, fails, and
    // still leaves nothing behind
    make_due(&moto, DR).await;
    moto.fault(json!({"action": "RunInstances", "region": DR, "code": "InsufficientInstanceCapacity", "message": "none left", "count": 1}));
    let out = cli(&moto, &["drill", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let report = json_out(&out);
    assert_eq!(
        records(&report).len(),
        2,
        "only the copies were due: {report}"
    );
    let failed: Vec<&Value> = records(&report)
        .iter()
        .filter(|r| r["result"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1, "{report}");
    assert_eq!(failed[0]["error_code"], "InsufficientInstanceCapacity");
    assert_eq!(failed[0]["restored"], Value::Null);
    assert_eq!(drill_leftovers(&moto, DR).await, 0);

    // AND the table names the failure
    make_due(&moto, DR).await;
    moto.fault(json!({"action": "RunInstances", "region": DR, "code": "InsufficientInstanceCapacity", "message": "none left", "count": 1}));
    let out = cli(&moto, &["drill", "--region", DR]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.starts_with("resource"), "{text}");
    assert!(
        text.contains("FAILED") && text.contains("InsufficientInstanceCapacity: none left"),
        "{text}"
    );
    assert!(text.contains("2 restores: 1 passed, 1 failed"), "{text}");
    assert!(text.contains("no evidence bucket"), "{text}");
}

#[tokio::test]
async fn a_drill_cleans_up_only_its_own_leftovers_and_drills_at_home_what_has_no_dr_region() {
    // GIVEN an instance with a copy in the DR region, and there: an instance someone else
    // tagged like a drill's, another deployment's drill volume, and two drill instances of
    // ours, one left two hours ago, one started a minute ago (a run still going)
    let moto = Moto::start().await;
    let a = moto.instance(HOME, &[("Backup", "true")], 0).await;
    let ami = backup(&moto, ResourceKind::Instance, &[&a]).await.remove(0);
    copy_to_dr(&moto, &ami).await;
    let two_hours_ago = format_time(Utc::now() - TimeDelta::hours(2));
    let a_minute_ago = format_time(Utc::now() - TimeDelta::minutes(1));
    let foreign = moto
        .instance(
            DR,
            &[
                ("backup:drill-of", "ami-12345678"),
                ("backup:drill-started-at", &two_hours_ago),
            ],
            0,
        )
        .await;
    let other = moto
        .volume(
            DR,
            &[
                ("backup:managed-by", "another-deployment"),
                ("backup:drill-of", "snap-12345678"),
                ("backup:drill-started-at", &two_hours_ago),
            ],
        )
        .await;
    fn ours(started: &str) -> Vec<(&str, &str)> {
        vec![
            ("backup:managed-by", "ec2-backup"),
            ("backup:drill-of", "ami-12345678"),
            ("backup:drill-started-at", started),
        ]
    }
    let left = moto.instance(DR, &ours(&two_hours_ago), 0).await;
    let going = moto.instance(DR, &ours(&a_minute_ago), 0).await;

    // WHEN our drill runs
    let out = cli(&moto, &["drill"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    // (the leftover, and the drill's own restore)
    assert!(
        stdout(&out).contains("2 drill resources cleaned up"),
        "{}",
        stdout(&out)
    );

    // THEN only our leftover is gone
    let state = |id: String| {
        let moto = &moto;
        async move {
            let out = moto
                .client(DR)
                .describe_instances()
                .instance_ids(&id)
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
        }
    };
    assert_eq!(state(foreign).await, "running");
    assert_eq!(state(going).await, "running");
    assert_eq!(state(left).await, "terminated");
    let vols = moto
        .client(DR)
        .describe_volumes()
        .volume_ids(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(vols.volumes().len(), 1);

    // AND the home region is no longer refused: a resource with a DR region is not drilled
    // there, one without is
    let out = cli(&moto, &["drill", "--region", HOME, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(records(&json_out(&out)).is_empty());
    let out = cli(
        &moto,
        &["drill", "--region", HOME, "--json", "--copy-to-regions", ""],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = json_out(&out);
    assert_eq!(records(&report).len(), 1, "{report}");
    assert_eq!(records(&report)[0]["region"], HOME);
    assert_eq!(records(&report)[0]["backup"], ami.as_str());
    assert_eq!(records(&report)[0]["result"], "passed");
}

#[tokio::test]
async fn a_drill_with_a_bucket_writes_each_record_once_as_evidence() {
    // GIVEN an instance with a copy in the DR region, a volume drilled at home, and a bucket
    let moto = Moto::start().await;
    let web = moto.instance(HOME, &[("Backup", "true")], 0).await;
    let ami = backup(&moto, ResourceKind::Instance, &[&web])
        .await
        .remove(0);
    copy_to_dr(&moto, &ami).await;
    let data = moto
        .volume(HOME, &[("Backup", "true"), ("backup:copy-to", "none")])
        .await;
    backup(&moto, ResourceKind::Volume, &[&data]).await;
    let s3 = s3_bucket(&moto, "drill-evidence").await;

    // WHEN the drill runs with --bucket, narrowed to the instance
    let out = cli(
        &moto,
        &[
            "drill",
            "--bucket",
            "drill-evidence",
            "--resource",
            &web,
            "--json",
        ],
    );

    // THEN its one record is the one object written, under the run's day
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let report = json_out(&out);
    assert_eq!(records(&report).len(), 1, "{report}");
    let record = &records(&report)[0];
    let objects = s3_objects(&s3, "drill-evidence").await;
    assert_eq!(objects.len(), 1, "{objects:?}");
    let (key, body) = &objects[0];
    let day = Utc::now().format("%Y/%m/%d").to_string();
    assert_eq!(
        key,
        &format!(
            "drills/{day}/{}/{DR}/{web}.json",
            record["run"].as_str().unwrap()
        )
    );
    let written: Value = serde_json::from_str(body).unwrap();
    assert_eq!(&written, record);
    assert_eq!(drill_leftovers(&moto, DR).await, 0);

    // AND EVIDENCE_BUCKET does the same for the volume, and the table says where it went
    let out = cli_env(&moto, &["drill"], &[("EVIDENCE_BUCKET", "drill-evidence")]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains(&format!("evidence: s3://drill-evidence/drills/{day}/")),
        "{}",
        stdout(&out)
    );
    let objects = s3_objects(&s3, "drill-evidence").await;
    assert_eq!(objects.len(), 2);
    assert!(
        objects
            .iter()
            .any(|(k, _)| k.ends_with(&format!("/{HOME}/{data}.json")))
    );

    // AND a bucket that is not there fails the run after cleaning up, naming the bucket
    make_due(&moto, DR).await;
    let out = cli(&moto, &["drill", "--bucket", "no-such-bucket", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let report = json_out(&out);
    assert!(
        report["failed"][0]["error"]
            .as_str()
            .unwrap()
            .contains("no-such-bucket"),
        "{report}"
    );
    assert_eq!(drill_leftovers(&moto, DR).await, 0);

    // AND a bad bucket name or timeout is refused before any call
    moto.reset_calls();
    let out = cli(&moto, &["drill", "--bucket", "s3://drill-evidence"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("'--bucket <BUCKET>'"),
        "{}",
        stderr(&out)
    );
    let out = cli(&moto, &["drill", "--timeout", "900"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no unit"), "{}", stderr(&out));
    assert!(moto.calls().is_empty(), "{:?}", moto.calls());
}

#[test]
fn help_has_examples() {
    let out = Command::new(env!("CARGO_BIN_EXE_ec2-backup"))
        .arg("--help")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Examples:")
            && text.contains("ec2-backup drill")
            && text.contains("ec2-backup evidence")
            && text.contains("ec2-backup check-dr"),
        "{text}"
    );
}

// ----------------------------------------------------------------- helpers of the tests below

/// The tests' moto as S3, with a bucket made (path-style: the server has no per-bucket host
/// names, as the CLI's client knows from AWS_ENDPOINT_URL).
async fn s3_bucket(moto: &Moto, name: &str) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new(HOME))
        .endpoint_url(moto.url())
        .force_path_style(true)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .build();
    let s3 = aws_sdk_s3::Client::from_conf(conf);
    s3.create_bucket().bucket(name).send().await.unwrap();
    s3
}

/// Every object of the bucket: its key and its body, in key order.
async fn s3_objects(s3: &aws_sdk_s3::Client, bucket: &str) -> Vec<(String, String)> {
    let listed = s3.list_objects_v2().bucket(bucket).send().await.unwrap();
    let mut out = Vec::new();
    for o in listed.contents() {
        let key = o.key().unwrap().to_string();
        let body = s3
            .get_object()
            .bucket(bucket)
            .key(&key)
            .send()
            .await
            .unwrap();
        let bytes = body.body.collect().await.unwrap().into_bytes();
        out.push((key, String::from_utf8_lossy(&bytes).into_owned()));
    }
    out
}

async fn put_object(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, body: String) {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(aws_sdk_s3::primitives::ByteStream::from(body.into_bytes()))
        .send()
        .await
        .unwrap();
}

fn json_out(o: &Output) -> Value {
    serde_json::from_str(&stdout(o))
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}{}", stdout(o), stderr(o)))
}

/// A copy of a standalone snapshot backup in the DR region, tagged as replicate tags it.
async fn copy_snapshot_to_dr(moto: &Moto, snapshot_id: &str) -> String {
    let original = moto
        .snapshots(HOME)
        .await
        .into_iter()
        .find(|s| s.snapshot_id() == Some(snapshot_id))
        .unwrap();
    let mut tags: Vec<Tag> = original.tags().to_vec();
    tags.push(
        Tag::builder()
            .key("backup:copy-of")
            .value(snapshot_id)
            .build(),
    );
    moto.client(DR)
        .copy_snapshot()
        .source_snapshot_id(snapshot_id)
        .source_region(HOME)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Snapshot)
                .set_tags(Some(tags))
                .build(),
        )
        .send()
        .await
        .unwrap()
        .snapshot_id()
        .unwrap()
        .to_string()
}

/// The default subnet of `zone`.
async fn default_subnet(moto: &Moto, region: &str, zone: &str) -> String {
    let out = moto
        .client(region)
        .describe_subnets()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("availability-zone")
                .values(zone)
                .build(),
        )
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("default-for-az")
                .values("true")
                .build(),
        )
        .send()
        .await
        .unwrap();
    out.subnets()[0].subnet_id().unwrap().to_string()
}

/// An instance launched into `subnet`.
async fn instance_in(moto: &Moto, region: &str, subnet: &str) -> String {
    moto.client(region)
        .run_instances()
        .image_id("ami-12345678")
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .subnet_id(subnet)
        .send()
        .await
        .unwrap()
        .instances()[0]
        .instance_id()
        .unwrap()
        .to_string()
}

async fn volumes(moto: &Moto, region: &str) -> Vec<aws_sdk_ec2::types::Volume> {
    moto.client(region)
        .describe_volumes()
        .send()
        .await
        .unwrap()
        .volumes()
        .to_vec()
}

/// Marks a zone impaired, as DescribeAvailabilityZones reports it during an outage.
fn impair(moto: &Moto, region: &str, zone: &str) {
    let spec = json!({"region": region, "zone": zone, "state": "impaired"});
    let (status, body) = moto.http("POST", "/_test/zone-state", &spec.to_string());
    assert_eq!(status, 200, "{body}");
}

/// Every EC2 call since the last reset is one the CLI's entry in shared/permissions.json lists.
fn assert_cli_calls_allowed(moto: &Moto) {
    let permissions: Value = serde_json::from_str(shared::permissions::JSON).unwrap();
    let allowed: Vec<&str> = permissions["cli"]["ec2-backup"]
        .as_array()
        .expect("a cli entry in shared/permissions.json")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for (region, calls) in moto.calls() {
        for action in calls.keys() {
            assert!(
                allowed.contains(&format!("ec2:{action}").as_str()),
                "the CLI called ec2:{action} in {region}, which shared/permissions.json does not list"
            );
        }
    }
}

// ------------------------------------------------------------------------------- the tests

#[tokio::test]
async fn every_subcommand_prints_json_with_output_json() {
    // GIVEN an instance and a volume, backed up, the instance's AMI copied to the DR region
    let moto = Moto::start().await;
    let web = moto
        .instance(HOME, &[("Backup", "true"), ("Name", "web-01")], 0)
        .await;
    let data = moto
        .volume(HOME, &[("Backup", "true"), ("backup:copy-to", "none")])
        .await;
    let ami = backup(&moto, ResourceKind::Instance, &[&web])
        .await
        .remove(0);
    let snap = backup(&moto, ResourceKind::Volume, &[&data])
        .await
        .remove(0);
    copy_to_dr(&moto, &ami).await;

    // WHEN each subcommand runs with --output json THEN each prints one JSON document
    let status = json_out(&cli(&moto, &["status", "--output", "json"]));
    assert_eq!(status["rows"].as_array().unwrap().len(), 3, "{status}");
    let table = cli(&moto, &["status", "--output", "table"]);
    assert!(stdout(&table).starts_with("resource"), "{}", stdout(&table));

    let other = moto.instance(HOME, &[("Backup", "true")], 0).await;
    let out = cli(&moto, &["backup", &other, "--wait", "--output", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let made = json_out(&out);
    let new_ami = made["created"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(made["created"][0]["source"], other.as_str());
    assert_eq!(made["available"][0]["id"], new_ami.as_str());
    assert_eq!(made["dry_run"], false);

    let out = cli(
        &moto,
        &["restore", "instance", &web, "--dry-run", "--output", "json"],
    );
    let plan = json_out(&out);
    assert_eq!(plan["image_id"], ami.as_str());
    assert_eq!(plan["instance_id"], Value::Null);
    assert_eq!(plan["dry_run"], true);
    let out = cli(&moto, &["restore", "instance", &web, "--output", "json"]);
    let restored = json_out(&out);
    let new_id = restored["instance_id"].as_str().unwrap();
    assert_eq!(
        moto.instance_tags(HOME, new_id)
            .await
            .get("backup:restored-from"),
        Some(&ami)
    );

    let out = cli(&moto, &["restore", "volume", &data, "--output", "json"]);
    let vol = json_out(&out);
    assert_eq!(vol["snapshot_id"], snap.as_str());
    assert!(
        vol["volume_id"].as_str().unwrap().starts_with("vol-"),
        "{vol}"
    );

    let out = cli(&moto, &["drill", "--dry-run", "--output", "json"]);
    let planned = json_out(&out);
    assert_eq!(planned["dry_run"], true);
    assert!(
        planned["would_restore"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["resource"] == web.as_str() && p["backup"].is_string()),
        "{planned}"
    );
    s3_bucket(&moto, "evidence").await;
    let out = cli(
        &moto,
        &["drill", "--output", "json", "--bucket", "evidence"],
    );
    let drill = json_out(&out);
    assert!(
        records(&drill)
            .iter()
            .any(|r| r["resource"] == web.as_str() && r["result"] == "passed"),
        "{drill}"
    );
    let out = cli(
        &moto,
        &["evidence", "--output", "json", "--bucket", "evidence"],
    );
    let evidence = json_out(&out);
    assert!(
        evidence["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["resource"] == web.as_str() && g["drills"][0]["result"] == "passed"),
        "{evidence}"
    );

    // AND markdown is for evidence only
    let out = cli(&moto, &["status", "--output", "markdown"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("only evidence prints markdown"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn bad_regions_durations_and_times_are_rejected_by_clap_naming_the_flag() {
    let moto = Moto::start().await;
    // (arguments, variables, what stderr says)
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: [Case; 6] = [
        (
            &["status", "--region", "Mars"],
            &[],
            &[
                "invalid value 'Mars' for '--region <REGIONS>'",
                "not an AWS region name",
            ],
        ),
        (
            &["status", "--default-interval", "soon"],
            &[],
            &[
                "'--default-interval <DEFAULT_INTERVAL>'",
                "is not a duration",
            ],
        ),
        (
            &["status"],
            &[("DEFAULT_INTERVAL", "soon")],
            &[
                "'--default-interval <DEFAULT_INTERVAL>'",
                "is not a duration",
            ],
        ),
        (
            &["status", "--copy-to-regions", "us-west-2,nowhere"],
            &[],
            &[
                "'--copy-to-regions <COPY_TO_REGIONS>'",
                "not an AWS region name",
            ],
        ),
        (
            &[
                "restore",
                "instance",
                "i-0abc1234def567890",
                "--before",
                "yesterday",
            ],
            &[],
            &["'--before <BEFORE>'", "not an RFC 3339 time"],
        ),
        (
            &["status", "--home-region", "us_east_1"],
            &[],
            &["'--home-region <HOME_REGION>'", "not an AWS region name"],
        ),
    ];
    for (args, vars, expected) in cases {
        let out = cli_env(&moto, args, vars);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        for text in expected {
            assert!(stderr(&out).contains(text), "{args:?}: {}", stderr(&out));
        }
    }
    let out = cli(&moto, &["status", "--output", "xml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("possible values: table, json"),
        "{}",
        stderr(&out)
    );
    // Rejected before any AWS call.
    assert!(moto.calls().is_empty(), "{:?}", moto.calls());
}

#[tokio::test]
async fn settings_come_from_their_variables_and_a_flag_wins() {
    // GIVEN an instance opted in under the prefix "snap", one under "backup" with a 3-hour-old backup
    let moto = Moto::start().await;
    let snap = moto.instance(HOME, &[("snap", "true")], 0).await;
    let web = moto.instance(HOME, &[("Backup", "true")], 0).await;
    let ami = backup(&moto, ResourceKind::Instance, &[&web])
        .await
        .remove(0);
    moto.set_tags(
        HOME,
        &ami,
        &[(
            "backup:created-at",
            &format_time(Utc::now() - TimeDelta::hours(3)),
        )],
    )
    .await;
    let resources = |o: &Output| -> Vec<String> {
        let mut ids: Vec<String> = rows(&json_out(o))
            .into_iter()
            .map(|(id, _, _)| id)
            .collect();
        ids.dedup();
        ids
    };
    let regions =
        |o: &Output| -> Vec<String> { rows(&json_out(o)).into_iter().map(|(_, r, _)| r).collect() };

    // TAG_PREFIX sets the prefix; --tag-prefix overrides it
    let out = cli_env(&moto, &["status", "--json"], &[("TAG_PREFIX", "snap")]);
    assert_eq!(resources(&out), vec![snap.clone()]);
    let out = cli_env(
        &moto,
        &["status", "--json", "--tag-prefix", "backup"],
        &[("TAG_PREFIX", "snap")],
    );
    assert_eq!(resources(&out), vec![web.clone()]);

    // COPY_TO_REGIONS sets the DR regions (empty: none); --copy-to-regions overrides it
    assert_eq!(regions(&cli(&moto, &["status", "--json"])), vec![HOME, DR]);
    let out = cli_env(&moto, &["status", "--json"], &[("COPY_TO_REGIONS", "")]);
    assert_eq!(regions(&out), vec![HOME]);
    let out = cli(&moto, &["status", "--json", "--copy-to-regions", DR2]);
    assert_eq!(regions(&out), vec![HOME, DR2]);

    // DEFAULT_INTERVAL sets the interval; --default-interval overrides it
    let rpo_home = |o: &Output| rows(&json_out(o))[0].2.clone();
    let out = cli_env(&moto, &["status", "--json"], &[("DEFAULT_INTERVAL", "1h")]);
    assert_eq!(rpo_home(&out), "late");
    let out = cli_env(
        &moto,
        &["status", "--json", "--default-interval", "1d"],
        &[("DEFAULT_INTERVAL", "1h")],
    );
    assert_eq!(rpo_home(&out), "met");

    // DEPLOYMENT_NAME sets whose backups these are; --deployment-name overrides it
    let newest = |o: &Output| json_out(o)["rows"][0]["newest"].clone();
    let out = cli_env(
        &moto,
        &["status", "--json"],
        &[("DEPLOYMENT_NAME", "other")],
    );
    assert_eq!(newest(&out), Value::Null);
    let out = cli_env(
        &moto,
        &["status", "--json", "--deployment-name", "ec2-backup"],
        &[("DEPLOYMENT_NAME", "other")],
    );
    assert_eq!(newest(&out), ami.as_str());

    // AWS_REGION sets the home region; --home-region overrides it
    let out = cli_env(&moto, &["status", "--json"], &[("AWS_REGION", DR)]);
    assert!(rows(&json_out(&out)).is_empty(), "{}", stdout(&out));
    let out = cli_env(
        &moto,
        &["status", "--json", "--home-region", HOME],
        &[("AWS_REGION", DR)],
    );
    assert_eq!(resources(&out), vec![web.clone()]);
}

#[tokio::test]
async fn a_volume_restore_goes_to_an_available_zone_or_its_instance_s() {
    // GIVEN a volume backup, an instance in us-east-1b, and us-east-1a impaired
    let moto = Moto::start().await;
    let data = moto.volume(HOME, &[("Backup", "true")]).await;
    backup(&moto, ResourceKind::Volume, &[&data]).await;
    let subnet_b = default_subnet(&moto, HOME, "us-east-1b").await;
    let target = instance_in(&moto, HOME, &subnet_b).await;
    impair(&moto, HOME, "us-east-1a");
    let zone_of = |vols: &[aws_sdk_ec2::types::Volume], id: &str| {
        vols.iter()
            .find(|v| v.volume_id() == Some(id))
            .and_then(|v| v.availability_zone())
            .map(str::to_string)
    };

    // WHEN a volume is restored with no zone THEN it goes to the first available one
    let out = cli(&moto, &["restore", "volume", &data]);
    assert!(out.status.success(), "{}", stderr(&out));
    let vol = stdout(&out).trim().to_string();
    assert_eq!(
        zone_of(&volumes(&moto, HOME).await, &vol).as_deref(),
        Some("us-east-1b")
    );

    // AND with --attach and no zone, into the instance's zone, attached
    let out = cli(
        &moto,
        &[
            "restore", "volume", &data, "--attach", &target, "--device", "/dev/sdf",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let vol = stdout(&out).trim().to_string();
    let all = volumes(&moto, HOME).await;
    assert_eq!(zone_of(&all, &vol).as_deref(), Some("us-east-1b"));
    let attached = all
        .iter()
        .find(|v| v.volume_id() == Some(vol.as_str()))
        .unwrap();
    assert_eq!(
        attached.attachments()[0].instance_id(),
        Some(target.as_str())
    );

    // AND a zone that does not fit is refused before any volume is made
    let before = volumes(&moto, HOME).await.len();
    for (zone, says) in [
        (
            "us-east-1z",
            "--availability-zone us-east-1z: not an available zone of us-east-1",
        ),
        (
            "us-east-1a",
            "--availability-zone us-east-1a: not an available zone of us-east-1",
        ),
    ] {
        let out = cli(
            &moto,
            &["restore", "volume", &data, "--availability-zone", zone],
        );
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains(says), "{}", stderr(&out));
    }
    let out = cli(
        &moto,
        &[
            "restore",
            "volume",
            &data,
            "--availability-zone",
            "us-east-1c",
            "--attach",
            &target,
            "--device",
            "/dev/sdg",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&format!("--attach {target} is in us-east-1b")),
        "{}",
        stderr(&out)
    );
    assert_eq!(volumes(&moto, HOME).await.len(), before);
}

#[tokio::test]
async fn an_instance_restore_picks_a_real_subnet_and_names_a_wrong_one() {
    // GIVEN an instance's backup copied to the DR region
    let moto = Moto::start().await;
    let web = moto.instance(HOME, &[("Backup", "true")], 0).await;
    let ami = backup(&moto, ResourceKind::Instance, &[&web])
        .await
        .remove(0);
    copy_to_dr(&moto, &ami).await;
    moto.reset_calls();

    // WHEN it is restored in the DR region in a zone THEN it lands in that zone's default subnet
    let out = cli(
        &moto,
        &[
            "restore",
            "instance",
            &web,
            "--region",
            DR,
            "--availability-zone",
            "us-west-2c",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let restored = json_out(&out);
    let subnet_c = default_subnet(&moto, DR, "us-west-2c").await;
    assert_eq!(restored["subnet_id"], subnet_c.as_str());
    let id = restored["instance_id"].as_str().unwrap();
    let described = moto
        .client(DR)
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .unwrap();
    let instance = &described.reservations()[0].instances()[0];
    assert_eq!(instance.subnet_id(), Some(subnet_c.as_str()));
    assert_cli_calls_allowed(&moto);

    // AND with no zone, while us-west-2a is impaired, in another zone's default subnet
    impair(&moto, DR, "us-west-2a");
    let out = cli(
        &moto,
        &[
            "restore",
            "instance",
            &web,
            "--region",
            DR,
            "--dry-run",
            "--json",
        ],
    );
    let plan = json_out(&out);
    assert_eq!(plan["availability_zone"], "us-west-2b", "{plan}");
    assert_eq!(
        plan["subnet_id"],
        default_subnet(&moto, DR, "us-west-2b").await.as_str()
    );

    // AND a subnet that is not there, or not in the zone asked for, is named
    let out = cli(
        &moto,
        &[
            "restore",
            "instance",
            &web,
            "--region",
            DR,
            "--subnet",
            "subnet-0123456789abcdef0",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--subnet subnet-0123456789abcdef0: no such subnet in us-west-2"),
        "{}",
        stderr(&out)
    );
    let out = cli(
        &moto,
        &[
            "restore",
            "instance",
            &web,
            "--region",
            DR,
            "--subnet",
            &subnet_c,
            "--availability-zone",
            "us-west-2b",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("it is in us-west-2c"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn a_drill_restores_into_an_available_zone_or_the_subnet_asked_for() {
    // GIVEN an instance and a volume with copies of their backups in the DR region, us-west-2a impaired
    let moto = Moto::start().await;
    let web = moto.instance(HOME, &[("Backup", "true")], 0).await;
    let data = moto.volume(HOME, &[("Backup", "true")]).await;
    let ami = backup(&moto, ResourceKind::Instance, &[&web])
        .await
        .remove(0);
    let snap = backup(&moto, ResourceKind::Volume, &[&data])
        .await
        .remove(0);
    copy_to_dr(&moto, &ami).await;
    copy_snapshot_to_dr(&moto, &snap).await;
    impair(&moto, DR, "us-west-2a");
    moto.reset_calls();
    // The volume is kept (its deletion fails once), to see where it was made.
    moto.fault(json!({"action": "DeleteVolume", "region": DR, "code": "IncorrectState", "message": "busy", "count": 1}));

    // WHEN the drill runs
    let out = cli(&moto, &["drill", "--json"]);

    // THEN both restores passed in us-west-2b, the instance in its default subnet and the
    // deployment's drill group; the volume not deleted is a failure of the run, named
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let report = json_out(&out);
    assert_eq!(records(&report).len(), 2, "{report}");
    assert!(
        records(&report).iter().all(|r| r["result"] == "passed"),
        "{report}"
    );
    let restored = |resource: &str| {
        records(&report)
            .iter()
            .find(|r| r["resource"] == resource)
            .and_then(|r| r["restored"].as_str())
            .unwrap()
            .to_string()
    };
    let (instance, volume) = (restored(&web), restored(&data));
    assert_eq!(report["failed"][0]["source"], volume.as_str(), "{report}");
    let subnet_b = default_subnet(&moto, DR, "us-west-2b").await;
    let drilled = launched(&moto, DR, &instance).await;
    assert_eq!(drilled.subnet_id(), Some(subnet_b.as_str()));
    let groups: Vec<&str> = drilled
        .network_interfaces()
        .iter()
        .flat_map(|n| n.groups())
        .filter_map(|g| g.group_name())
        .collect();
    assert_eq!(groups, ["ec2-backup-drill"], "{drilled:?}");
    assert_eq!(drilled.public_ip_address(), None);
    let kept = volumes(&moto, DR).await;
    let kept = kept
        .iter()
        .find(|v| v.volume_id() == Some(volume.as_str()))
        .unwrap();
    assert_eq!(kept.availability_zone(), Some("us-west-2b"));
    moto.client(DR)
        .delete_volume()
        .volume_id(&volume)
        .send()
        .await
        .unwrap();
    assert_eq!(drill_leftovers(&moto, DR).await, 0);
    assert_cli_calls_allowed(&moto);

    // AND with --subnet (and its one --region), the instance goes to that subnet
    make_due(&moto, DR).await;
    let subnet_c = default_subnet(&moto, DR, "us-west-2c").await;
    let out = cli(
        &moto,
        &[
            "drill",
            "--region",
            DR,
            "--subnet",
            &subnet_c,
            "--resource",
            &web,
            "--json",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let report = json_out(&out);
    assert_eq!(records(&report).len(), 1, "{report}");
    let id = records(&report)[0]["restored"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        launched(&moto, DR, &id).await.subnet_id(),
        Some(subnet_c.as_str())
    );
    assert_eq!(drill_leftovers(&moto, DR).await, 0);

    // AND a subnet without one --region, or that is not there, is refused, nothing launched
    moto.reset_calls();
    let out = cli(&moto, &["drill", "--subnet", &subnet_c]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("give exactly one --region"),
        "{}",
        stderr(&out)
    );
    let out = cli(
        &moto,
        &[
            "drill",
            "--region",
            DR,
            "--subnet",
            "subnet-0123456789abcdef0",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--subnet subnet-0123456789abcdef0: no such subnet in us-west-2"),
        "{}",
        stderr(&out)
    );
    assert!(!moto.calls_in(DR).contains_key("RunInstances"));
}

/// An instance as EC2 describes it (a terminated one is still listed for a while).
async fn launched(moto: &Moto, region: &str, id: &str) -> aws_sdk_ec2::types::Instance {
    let out = moto
        .client(region)
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .unwrap();
    out.reservations()[0].instances()[0].clone()
}

#[tokio::test]
async fn backup_waits_for_the_copy_in_the_dr_region() {
    // GIVEN an instance whose backups are copied to the DR region
    let moto = Moto::start().await;
    let web = moto.instance(HOME, &[("Backup", "true")], 0).await;

    // WHEN a backup is taken with --wait --copies, and the copy appears a little later
    let child = command(
        &moto,
        &[
            "backup",
            &web,
            "--wait",
            "--copies",
            "--timeout",
            "120",
            "--json",
        ],
        &[],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let ami = loop {
        if let Some(image) = moto.images(HOME).await.first() {
            break image.image_id().unwrap().to_string();
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let copy = copy_to_dr(&moto, &ami).await;
    let out = child.wait_with_output().unwrap();

    // THEN it reports both available, the copy by its id in the DR region
    assert!(out.status.success(), "{}", stderr(&out));
    let report = json_out(&out);
    let available = report["available"].as_array().unwrap();
    assert_eq!(available.len(), 2, "{report}");
    assert_eq!(available[1]["id"], copy.as_str());
    assert_eq!(available[1]["region"], DR);
    assert_eq!(available[1]["copy_of"], ami.as_str());
}

/// A drill record of `resource` in `region` that started `days` days and an hour ago.
fn drill_record(
    resource: &str,
    name: Option<&str>,
    region_name: &str,
    days: i64,
    result: DrillResult,
) -> DrillRecord {
    let started = Utc::now() - TimeDelta::days(days) - TimeDelta::hours(1);
    let restore = Restore {
        resource: resource.to_string(),
        name: name.map(str::to_string),
        kind: if resource.starts_with("vol-") {
            RestoreKind::Volume
        } else {
            RestoreKind::Instance
        },
        region: region(region_name),
        backup: "ami-0123456789abcdef0".into(),
        backup_created_at: started - TimeDelta::hours(5),
        started_at: started,
        restored: "i-0aaaaaaaaaaaaaaaa".into(),
    };
    let error = (result == DrillResult::Failed).then(|| {
        (
            "InsufficientInstanceCapacity".to_string(),
            "none left".to_string(),
        )
    });
    let done = started + TimeDelta::seconds(140 + days);
    let mut record = DrillRecord::of(&format!("run-{days}"), &restore, result, error, done);
    record.cleaned_up_at = Some(done);
    record
}

#[tokio::test]
async fn evidence_prints_a_month_of_drills_per_resource_with_the_summary() {
    // GIVEN a protected instance (drilled in the DR region) and a protected volume with no DR
    // region (drilled at home), and a bucket with a month of their drills: the instance daily
    // (one failed, one timed out, one long before the period), the volume weekly (its last pass
    // ten days ago), a resource no longer protected, and an object that is not a record
    let moto = Moto::start().await;
    let web = moto
        .instance(HOME, &[("Backup", "true"), ("Name", "web-01")], 0)
        .await;
    let data = moto
        .volume(HOME, &[("Backup", "true"), ("backup:copy-to", "none")])
        .await;
    let gone = "i-0000000000000dead";
    let s3 = s3_bucket(&moto, "audit-evidence").await;
    let mut seeded = Vec::new();
    for n in 1..=30 {
        let result = match n {
            3 => DrillResult::Failed,
            5 => DrillResult::TimedOut,
            _ => DrillResult::Passed,
        };
        seeded.push(drill_record(&web, Some("web-01"), DR, n, result));
    }
    seeded.push(drill_record(
        &web,
        Some("web-01"),
        DR,
        120,
        DrillResult::Passed,
    ));
    for n in [10, 17, 24] {
        seeded.push(drill_record(&data, None, HOME, n, DrillResult::Passed));
    }
    seeded.push(drill_record(gone, None, DR, 2, DrillResult::Passed));
    for record in &seeded {
        let key = record.evidence_key(record.started_at);
        put_object(
            &s3,
            "audit-evidence",
            &key,
            serde_json::to_string(record).unwrap(),
        )
        .await;
    }
    let broken = format!(
        "drills/{}/run-4/{DR}/broken.json",
        (Utc::now() - TimeDelta::days(4)).format("%Y/%m/%d")
    );
    put_object(&s3, "audit-evidence", &broken, "not a record".into()).await;
    let evidence = |args: &[&str], vars: &[(&str, &str)]| {
        let mut all = vec!["evidence", "--bucket", "audit-evidence"];
        all.extend_from_slice(args);
        cli_env(&moto, &all, vars)
    };
    let group = |report: &Value, resource: &str| -> Value {
        report["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["resource"] == resource)
            .cloned()
            .unwrap_or_else(|| panic!("no {resource}: {report}"))
    };

    // WHEN the evidence of the default period (90 days) is asked for as JSON
    moto.reset_calls();
    let out = evidence(&["--output", "json"], &[]);

    // THEN every drill of the period is there per resource and region, with the last pass,
    // the summary counts the instance proven and the volume not, and the broken object is
    // named and skipped
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&broken) && stderr(&out).contains("skipped"),
        "{}",
        stderr(&out)
    );
    let report = json_out(&out);
    assert_eq!(
        report["summary"],
        json!({"proven": 1, "protected": 2, "interval": "7d"})
    );
    assert_eq!(report["period"], "90d");
    assert_eq!(report["skipped"], json!([broken]));
    assert_eq!(report["resources"].as_array().unwrap().len(), 3, "{report}");
    let w = group(&report, &web);
    assert_eq!(
        (w["region"].clone(), w["name"].clone()),
        (json!(DR), json!("web-01"))
    );
    let drills = w["drills"].as_array().unwrap();
    assert_eq!(
        drills.len(),
        30,
        "the one of 120 days ago is outside the period"
    );
    assert_eq!(drills[0]["run"], "run-30", "oldest first");
    assert_eq!(w["last_passed"]["run"], "run-1");
    assert_eq!(w["proven"], true);
    let results: Vec<&str> = drills.iter().filter_map(|d| d["result"].as_str()).collect();
    assert!(results.contains(&"failed") && results.contains(&"timed-out"));
    let d = group(&report, &data);
    assert_eq!(
        (d["region"].clone(), d["proven"].clone()),
        (json!(HOME), json!(false))
    );
    assert_eq!(d["drills"].as_array().unwrap().len(), 3);
    assert_eq!(d["last_passed"]["run"], "run-10");
    let g = group(&report, gone);
    assert_eq!(
        (
            g["protected"].clone(),
            g["drills"].as_array().unwrap().len()
        ),
        (json!(false), 1)
    );
    // The CLI's EC2 calls (the protected resources) are the ones it may make.
    assert_cli_calls_allowed(&moto);

    // AND --since narrows the period by the drills' start
    let report = json_out(&evidence(&["--since", "10d", "--output", "json"], &[]));
    assert_eq!(group(&report, &web)["drills"].as_array().unwrap().len(), 9);
    assert_eq!(group(&report, &data)["drills"], json!([]));
    assert_eq!(report["period"], "10d");
    assert_eq!(group(&report, gone)["drills"].as_array().unwrap().len(), 1);

    // AND --resource keeps one resource, in the summary too
    let report = json_out(&evidence(&["--resource", &data, "--output", "json"], &[]));
    assert_eq!(report["resources"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(
        report["summary"],
        json!({"proven": 0, "protected": 1, "interval": "7d"})
    );

    // AND DRILL_INTERVAL sets what proven means
    let report = json_out(&evidence(
        &["--output", "json"],
        &[("DRILL_INTERVAL", "14d")],
    ));
    assert_eq!(
        report["summary"],
        json!({"proven": 2, "protected": 2, "interval": "14d"})
    );

    // AND the table shows each resource and region, its drills and the summary line
    let out = evidence(&[], &[]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    for says in [
        format!("{web} (web-01) in {DR}: last passed"),
        format!("{data} in {HOME}: last passed"),
        "NOT PROVEN".to_string(),
        "timed-out".to_string(),
        "InsufficientInstanceCapacity: none left".to_string(),
        "1 of 2 protected resources proven within DRILL_INTERVAL (7d)".to_string(),
    ] {
        assert!(text.contains(&says), "{says}: {text}");
    }

    // AND markdown is a document to paste into an audit
    let out = evidence(&["--output", "markdown", "--since", "30d"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let md = stdout(&out);
    assert!(md.starts_with("# Restore drill evidence\n"), "{md}");
    for says in [
        "**1 of 2 protected resources proven within DRILL_INTERVAL (7d)**",
        "(30d)",
        "| Resource | Name | Region | Drills | Passed | Last passed (UTC) | RTO | Status |",
        &format!("| {web} | web-01 | {DR} | 29 | 27 |"),
        &format!("## {web} (web-01) in {DR}"),
        "| failed |",
        "InsufficientInstanceCapacity: none left",
        "`s3://audit-evidence/drills/`",
    ] {
        assert!(md.contains(says), "{says}: {md}");
    }

    // AND EVIDENCE_BUCKET names the bucket as --bucket does; without either, the error says
    // both; a bucket that is not there is an error
    let out = cli_env(
        &moto,
        &["evidence", "--resource", &web, "--json"],
        &[("EVIDENCE_BUCKET", "audit-evidence")],
    );
    assert_eq!(json_out(&out)["resources"].as_array().unwrap().len(), 1);
    let out = cli(&moto, &["evidence"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--bucket") && stderr(&out).contains("EVIDENCE_BUCKET"),
        "{}",
        stderr(&out)
    );
    let out = cli(&moto, &["evidence", "--bucket", "no-such-bucket"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("NoSuchBucket"), "{}", stderr(&out));
}

#[tokio::test]
async fn status_shows_the_last_drill_of_each_row() {
    // GIVEN an instance whose copy in the DR region passed a drill two days ago
    let moto = Moto::start().await;
    let web = moto.instance(HOME, &[("Backup", "true")], 0).await;
    let ami = backup(&moto, ResourceKind::Instance, &[&web])
        .await
        .remove(0);
    let copy = copy_to_dr(&moto, &ami).await;
    let two_days_ago = format_time(Utc::now() - TimeDelta::days(2));
    moto.set_tags(
        DR,
        &copy,
        &[
            ("backup:drilled-at", &two_days_ago),
            ("backup:drill-result", "passed"),
            ("backup:restore-seconds", "143"),
        ],
    )
    .await;

    // WHEN status runs THEN the DR row shows it and the home row none
    let out = cli(&moto, &["status"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let text = stdout(&out);
    assert!(
        text.lines().next().unwrap().ends_with("last drill"),
        "{text}"
    );
    let line = |region: &str| {
        text.lines()
            .find(|l| l.contains(&format!("{region} (")))
            .unwrap()
            .to_string()
    };
    assert!(line(DR).ends_with("passed 2d0h ago (143s)"), "{text}");
    assert!(line(HOME).ends_with(" -"), "{text}");
    let status = json_out(&cli(&moto, &["status", "--json"]));
    assert_eq!(
        status["rows"][1]["last_drill"],
        json!({"at": two_days_ago, "result": "passed", "restore_seconds": 143})
    );
    assert_eq!(status["rows"][0]["last_drill"], Value::Null);
}

// ------------------------------------------------------------ check-dr: the KMS pre-flight

/// The tests' moto as KMS, in `account` and `region`.
async fn kms(moto: &Moto, account: &str, region: &str) -> aws_sdk_kms::Client {
    aws_sdk_kms::Client::new(&moto.sdk_in(account, region).await)
}

/// The key policy docs/dr-account.md asks for: the home administrators' statement and the two
/// of the stack output ShareKeyPolicyStatements, for the DR account `dr`.
fn share_policy(dr: &str) -> Value {
    json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "EnableIamUserPermissions", "Effect": "Allow",
         "Principal": {"AWS": format!("arn:aws:iam::{HOME_ACCOUNT}:root")},
         "Action": "kms:*", "Resource": "*"},
        {"Sid": "AllowDrAccountUseOfTheKey", "Effect": "Allow",
         "Principal": {"AWS": format!("arn:aws:iam::{dr}:root")},
         "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:ReEncrypt*", "kms:GenerateDataKey*"],
         "Resource": "*"},
        {"Sid": "AllowDrAccountGrantsForAwsResources", "Effect": "Allow",
         "Principal": {"AWS": format!("arn:aws:iam::{dr}:root")},
         "Action": "kms:CreateGrant", "Resource": "*",
         "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}}
    ]})
}

/// A customer managed key of `account` in `region` (with `policy`, else KMS's default one that
/// names only the account itself); its ARN and key id.
async fn customer_key(
    moto: &Moto,
    account: &str,
    region: &str,
    policy: Option<&Value>,
) -> (String, String) {
    let made = kms(moto, account, region)
        .await
        .create_key()
        .set_policy(policy.map(Value::to_string))
        .send()
        .await
        .unwrap();
    let meta = made.key_metadata().unwrap();
    (meta.arn().unwrap().to_string(), meta.key_id().to_string())
}

/// The ARN of the home account's AWS managed `aws/ebs` key in `region` (made, as AWS makes it,
/// by the first encrypted volume).
async fn aws_ebs_key(moto: &Moto, region: &str) -> String {
    moto.default_key_in(HOME_ACCOUNT, region).await;
    let described = kms(moto, HOME_ACCOUNT, region)
        .await
        .describe_key()
        .key_id("alias/aws/ebs")
        .send()
        .await
        .unwrap();
    described.key_metadata().unwrap().arn().unwrap().to_string()
}

fn check_dr(moto: &Moto, args: &[&str], share_keys: &str) -> Output {
    let mut all = vec!["check-dr", "--dr-account", VAULT_ACCOUNT];
    all.extend_from_slice(args);
    cli_env(moto, &all, &[("SHARE_KMS_KEYS", share_keys)])
}

#[tokio::test]
async fn check_dr_passes_share_keys_whose_policy_lets_the_dr_account_use_them() {
    // GIVEN a share key at home with the statements of docs/dr-account.md, and one in the DR
    // region whose policy names the DR account by its bare id in a list, its actions otherwise
    let moto = Moto::start().await;
    let (home_key, _) = customer_key(
        &moto,
        HOME_ACCOUNT,
        HOME,
        Some(&share_policy(VAULT_ACCOUNT)),
    )
    .await;
    let other = json!({"Statement": [
        {"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::999999999999:root", VAULT_ACCOUNT]},
         "Action": ["kms:Decrypt", "kms:Describe*", "kms:ReEncrypt*", "kms:GenerateDataKeyWithoutPlaintext"],
         "Resource": "*"},
        {"Effect": "Allow", "Principal": {"AWS": VAULT_ACCOUNT}, "Action": "kms:CreateGrant",
         "Resource": "*", "Condition": {"Bool": {"kms:GrantIsForAWSResource": true}}}
    ]});
    let (dr_key, _) = customer_key(&moto, HOME_ACCOUNT, DR, Some(&other)).await;
    let keys = format!("{HOME}={home_key},{DR}={dr_key}");

    // WHEN check-dr runs with the home account's credentials THEN each key is ok, exit code 0
    let out = check_dr(&moto, &[], &keys);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let text = stdout(&out);
    for (key, region) in [(&home_key, HOME), (&dr_key, DR)] {
        assert!(
            text.contains(&format!(
                "share key {key} in {region}: ok, the DR account {VAULT_ACCOUNT} may use it"
            )),
            "{text}"
        );
    }
    assert!(text.contains("2 of 2 keys ok"), "{text}");

    // AND with the account from DR_ACCOUNT and --output json: one object per key and region
    let out = cli_env(
        &moto,
        &["check-dr", "--output", "json"],
        &[("SHARE_KMS_KEYS", &keys), ("DR_ACCOUNT", VAULT_ACCOUNT)],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = json_out(&out);
    assert_eq!(
        (&report["checked"], &report["account"], &report["ok"]),
        (&json!("share"), &json!(VAULT_ACCOUNT), &json!(true)),
        "{report}"
    );
    let first = &report["keys"][0];
    assert_eq!(first["region"], HOME);
    assert_eq!(first["key"], home_key.as_str());
    assert_eq!(first["role"], "share");
    assert_eq!(first["ok"], true);
    assert_eq!(first["problems"], json!([]));
    assert_eq!(first["warnings"], json!([]));
    assert_eq!(report["keys"][1]["key"], dr_key.as_str());
    // AND it called no EC2 action (only STS and KMS)
    assert!(moto.calls().is_empty(), "{:?}", moto.calls());
}

#[tokio::test]
async fn check_dr_names_the_key_and_the_problem_of_each_broken_setup() {
    // GIVEN a good share key at home, and three that will not do: (a) the AWS managed aws/ebs
    // key, (b) a customer managed key whose policy does not name the DR account, (c) a key with
    // the right policy, disabled
    let moto = Moto::start().await;
    let (good, _) = customer_key(
        &moto,
        HOME_ACCOUNT,
        HOME,
        Some(&share_policy(VAULT_ACCOUNT)),
    )
    .await;
    let aws_ebs = aws_ebs_key(&moto, DR).await;
    let (unnamed, _) = customer_key(&moto, HOME_ACCOUNT, DR, None).await;
    let (disabled, disabled_id) =
        customer_key(&moto, HOME_ACCOUNT, DR2, Some(&share_policy(VAULT_ACCOUNT))).await;
    kms(&moto, HOME_ACCOUNT, DR2)
        .await
        .disable_key()
        .key_id(&disabled_id)
        .send()
        .await
        .unwrap();
    type Case<'a> = (&'a str, &'a str, &'a [&'a str]);
    let cases: [Case; 3] = [
        (
            DR,
            &aws_ebs,
            &[
                "is AWS managed",
                "create a customer managed key in us-west-2",
                "SHARE_KMS_KEYS",
            ],
        ),
        (
            DR,
            &unnamed,
            &[
                "its key policy does not allow the DR account 444455556666 (arn:aws:iam::444455556666:root) kms:Decrypt, kms:DescribeKey, kms:ReEncryptFrom, kms:ReEncryptTo, kms:GenerateDataKeyWithoutPlaintext",
                "kms:CreateGrant with the condition Bool kms:GrantIsForAWSResource true",
                "ShareKeyPolicyStatements",
            ],
        ),
        (
            DR2,
            &disabled,
            &["is Disabled", "aws kms enable-key --region eu-west-1"],
        ),
    ];
    for (region, key, expected) in cases {
        // WHEN check-dr checks the good key and the broken one
        let out = check_dr(&moto, &[], &format!("{HOME}={good},{region}={key}"));
        // THEN the exit code is 1, the good key ok, the broken one named with its problem
        assert_eq!(
            out.status.code(),
            Some(1),
            "{key}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        let text = stdout(&out);
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("share key {key} in {region}: ")))
            .unwrap_or_else(|| panic!("no line for {key}: {text}"));
        for part in expected {
            assert!(line.contains(part), "{part}: {line}");
        }
        assert!(
            text.contains(&format!("share key {good} in {HOME}: ok")),
            "{text}"
        );
        assert!(text.contains("1 of 2 keys ok"), "{text}");
    }

    // AND the JSON says the same, key by key
    let keys = format!("{HOME}={good},{DR2}={disabled}");
    let out = check_dr(&moto, &["--output", "json"], &keys);
    assert_eq!(out.status.code(), Some(1));
    let report = json_out(&out);
    assert_eq!(report["ok"], false);
    let entry = |key: &str| -> Value {
        report["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["key"] == key)
            .cloned()
            .unwrap_or_else(|| panic!("no {key} in {report}"))
    };
    assert_eq!(entry(&good)["ok"], true);
    let broken = entry(&disabled);
    assert_eq!(
        (&broken["ok"], &broken["region"]),
        (&json!(false), &json!(DR2))
    );
    let problem = broken["problems"][0].as_str().unwrap();
    assert!(
        problem.starts_with(&format!("share key {disabled} in {DR2}: is Disabled")),
        "{problem}"
    );

    // AND a key that does not exist is named too
    let gone = format!("arn:aws:kms:{DR}:{HOME_ACCOUNT}:key/0b1e2c3d-0000-4000-8000-000000000000");
    let out = check_dr(&moto, &[], &format!("{DR}={gone}"));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains(&format!("share key {gone} in {DR}: does not exist in {DR}")),
        "{}",
        stdout(&out)
    );
}

#[tokio::test]
async fn check_dr_needs_a_dr_account_of_12_digits_other_than_its_own_and_keys_to_check() {
    let moto = Moto::start().await;
    let (key, _) = customer_key(
        &moto,
        HOME_ACCOUNT,
        HOME,
        Some(&share_policy(VAULT_ACCOUNT)),
    )
    .await;
    let keys = format!("{HOME}={key}");
    // (arguments, variables, what stderr says)
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: [Case; 5] = [
        (
            &["check-dr"],
            &[("SHARE_KMS_KEYS", &keys)],
            &["the DR account: none given: pass --dr-account or set DR_ACCOUNT"],
        ),
        (
            &["check-dr", "--dr-account", "4444555566"],
            &[("SHARE_KMS_KEYS", &keys)],
            &[
                "invalid value '4444555566' for '--dr-account <DR_ACCOUNT>'",
                "expected an AWS account id of 12 digits",
            ],
        ),
        (
            &["check-dr"],
            &[("SHARE_KMS_KEYS", &keys), ("DR_ACCOUNT", "vault")],
            &["'--dr-account <DR_ACCOUNT>'", "12 digits"],
        ),
        (
            &["check-dr", "--dr-account", VAULT_ACCOUNT],
            &[],
            &[
                "SHARE_KMS_KEYS: is empty",
                "set SHARE_KMS_KEYS=region=key-arn",
            ],
        ),
        (
            &["check-dr", "--dr-account", HOME_ACCOUNT],
            &[("SHARE_KMS_KEYS", &keys)],
            &["123456789012 is the account of these credentials"],
        ),
    ];
    for (args, vars, expected) in cases {
        let out = cli_env(&moto, args, vars);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?} {vars:?}: {}",
            stderr(&out)
        );
        for text in expected {
            assert!(stderr(&out).contains(text), "{args:?}: {}", stderr(&out));
        }
        assert!(stdout(&out).is_empty(), "{args:?}: {}", stdout(&out));
    }
}

#[tokio::test]
async fn check_dr_vault_checks_the_copy_keys_in_the_dr_account() {
    // GIVEN the vault's copy key in us-east-1, and in us-west-2 an alias that names no key yet
    let moto = Moto::start().await;
    let (vault_key, _) = customer_key(&moto, VAULT_ACCOUNT, HOME, None).await;
    let keys = format!("{HOME}={vault_key},{DR}=alias/vault-copies");
    let as_vault = [
        ("AWS_ACCESS_KEY_ID", VAULT_ACCOUNT),
        ("COPY_KMS_KEYS", keys.as_str()),
    ];

    // WHEN check-dr --vault runs with the DR account's credentials THEN the alias is a problem
    let out = cli_env(&moto, &["check-dr", "--vault"], &as_vault);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "vault copy key {vault_key} in {HOME}: ok, enabled in this account {VAULT_ACCOUNT}"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "vault copy key alias/vault-copies in {DR}: does not exist in this account's {DR}"
        )),
        "{text}"
    );

    // AND once the alias names a key of the vault there, every key is ok
    let (_, dr_id) = customer_key(&moto, VAULT_ACCOUNT, DR, None).await;
    kms(&moto, VAULT_ACCOUNT, DR)
        .await
        .create_alias()
        .alias_name("alias/vault-copies")
        .target_key_id(&dr_id)
        .send()
        .await
        .unwrap();
    let out = cli_env(
        &moto,
        &["check-dr", "--vault", "--output", "json"],
        &as_vault,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let report = json_out(&out);
    assert_eq!(
        (&report["checked"], &report["account"], &report["ok"]),
        (&json!("vault"), &json!(VAULT_ACCOUNT), &json!(true)),
        "{report}"
    );
    assert_eq!(report["keys"][1]["role"], "vault-copy");

    // AND with the home account's credentials and the DR account named, it refuses to run
    let out = cli_env(
        &moto,
        &["check-dr", "--vault", "--dr-account", VAULT_ACCOUNT],
        &[("COPY_KMS_KEYS", keys.as_str())],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).contains(
            "these credentials are in account 123456789012, not in the DR account 444455556666"
        ),
        "{}",
        stderr(&out)
    );
    // AND with no copy keys there is nothing to check
    let out = cli_env(
        &moto,
        &["check-dr", "--vault"],
        &[("AWS_ACCESS_KEY_ID", VAULT_ACCOUNT)],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("COPY_KMS_KEYS: is empty"),
        "{}",
        stderr(&out)
    );
}
