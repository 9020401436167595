//! The isolated DR account against the moto server, with two accounts: the home deployment
//! shares each backup with the vault and tells it with a `Backup Shared` event (through the
//! EventBridge rules the templates make); the vault copies it into its own account in two
//! regions, re-encrypted with its own keys, locks every snapshot of each copy until the copy's
//! expiry and protects its AMIs; it keeps them whatever the home account does.

use aws_sdk_ec2::types::Filter;
use chrono::{DateTime, TimeDelta, Utc};
use integration_tests::accounts::{HOME_ACCOUNT, STRANGER_ACCOUNT, VAULT_ACCOUNT};

use integration_tests::*;
use serde_json::{Value, json};
use shared::Config;
use shared::config::{Lock, LockMode};
use shared::create::ResourceKind::{Instance, Volume};
use shared::duration::Duration;
use shared::tags::parse_time;
use std::collections::BTreeMap;

fn now() -> DateTime<Utc> {
    parse_time("2026-11-25T03:00:00Z").unwrap()
}

async fn start() -> Moto {
    let moto = Moto::start().await;
    moto.set_clock(now() + TimeDelta::minutes(1));
    moto
}

fn home_config() -> Config {
    Config {
        deployment_name: "home".into(),
        dr_account: Some(VAULT_ACCOUNT.into()),
        ..Config::default()
    }
}

fn vault_config() -> Config {
    Config {
        deployment_name: "vault".into(),
        source_accounts: vec![HOME_ACCOUNT.into()],
        copy_to_regions: vec![region(DR), region(DR2)],
        copy_retention: Some(Duration::days(30)),
        lock: Lock {
            mode: LockMode::Compliance,
            cool_off_hours: 1,
        },
        ..Config::default()
    }
}

/// An AMI backup of a new instance and a snapshot backup of a new volume, made by the home
/// deployment's create functions: their ids.
async fn home_backups(moto: &Moto) -> (String, String) {
    let instance = moto
        .instance(HOME, &[("Backup", "true"), ("Name", "web-01")], 0)
        .await;
    let volume = moto
        .volume(HOME, &[("Backup", "true"), ("Name", "db-data")])
        .await;
    let image = home_backup(moto, Instance, &instance, "r-1", now()).await;
    let snapshot = home_backup(moto, Volume, &volume, "r-2", now()).await;
    (image, snapshot)
}

/// A backup of `resource` made by the home deployment's create function, as request `request`
/// at `at`: its id.
async fn home_backup(
    moto: &Moto,
    kind: shared::create::ResourceKind,
    resource: &str,
    request: &str,
    at: DateTime<Utc>,
) -> String {
    let payload = json!({ kind.ids_field(): [resource] });
    let made = shared::create::handle(
        kind,
        &home_config(),
        &moto.ec2(HOME),
        None,
        &payload,
        request,
        at,
    )
    .await
    .expect("the backup is made");
    made["created"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no backup made: {made}"))
        .to_string()
}

async fn home_sweep(moto: &Moto, config: &Config, at: DateTime<Utc>) -> Value {
    let clients = moto.home_clients().await;
    let answer = shared::replicate::handle(
        config,
        &clients,
        None,
        &event("scheduled-event.json", &[]),
        at,
    )
    .await;
    result_of(answer)
}

/// The result, whether some failed (the invocation's error carries it) or none did.
fn result_of(answer: Result<Value, shared::Error>) -> Value {
    match answer {
        Ok(v) => v,
        Err(shared::Error::SomeFailed { result, .. }) => serde_json::from_str(&result).unwrap(),
        Err(e) => panic!("{e}"),
    }
}

async fn vault_replicate(
    moto: &Moto,
    config: &Config,
    payload: &Value,
    at: DateTime<Utc>,
) -> Value {
    let clients = moto.clients_in(VAULT_ACCOUNT, HOME);
    shared::replicate::handle(config, &clients, None, payload, at)
        .await
        .expect("vault replicate")
}

/// The vault's copies in `region`: id -> tags (images and snapshots both).
async fn vault_copies(moto: &Moto, region: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let ec2 = moto.ec2_in(VAULT_ACCOUNT, region);
    let copy_of = Filter::builder()
        .name("tag-key")
        .values("backup:copy-of")
        .build();
    let mut out = BTreeMap::new();
    let images = ec2
        .describe_images()
        .owners("self")
        .filters(copy_of.clone())
        .send()
        .await
        .unwrap();
    for i in images.images() {
        out.insert(i.image_id().unwrap().to_string(), tag_map(i.tags()));
    }
    let snaps = ec2
        .describe_snapshots()
        .owner_ids("self")
        .filters(copy_of)
        .send()
        .await
        .unwrap();
    for s in snaps.snapshots() {
        out.insert(s.snapshot_id().unwrap().to_string(), tag_map(s.tags()));
    }
    out
}

/// The vault's snapshot locks in `region`: snapshot -> (state, until).
async fn locks(moto: &Moto, region: &str) -> BTreeMap<String, (String, String)> {
    let out = moto
        .ec2_in(VAULT_ACCOUNT, region)
        .describe_locked_snapshots()
        .send()
        .await
        .unwrap();
    out.snapshots()
        .iter()
        .map(|s| {
            (
                s.snapshot_id().unwrap().to_string(),
                (
                    s.lock_state()
                        .map(|l| l.as_str().to_string())
                        .unwrap_or_default(),
                    s.lock_expires_on()
                        .map(|t| t.to_string())
                        .unwrap_or_default(),
                ),
            )
        })
        .collect()
}

async fn setup(moto: &Moto) -> String {
    for r in [DR, DR2] {
        moto.default_key_in(VAULT_ACCOUNT, r).await;
    }
    moto.wire_events().await
}

#[tokio::test]
async fn an_ami_and_a_snapshot_reach_the_vault_reencrypted_and_locked_in_two_regions() {
    let moto = start().await;
    let queue = setup(&moto).await;
    let (image, snapshot) = home_backups(&moto).await;

    // The home deployment's sweep shares both and tells the vault.
    moto.reset_calls();
    let home = home_sweep(&moto, &home_config(), now()).await;
    moto.assert_calls_allowed("replicate");
    let shared: Vec<&str> = home["shared"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["shared"].as_str().unwrap())
        .collect();
    assert_eq!(shared.len(), 2, "{home}");
    assert!(
        shared.contains(&image.as_str()) && shared.contains(&snapshot.as_str()),
        "{home}"
    );
    let attrs = moto
        .uncounted_client(HOME)
        .describe_image_attribute()
        .image_id(&image)
        .attribute(aws_sdk_ec2::types::ImageAttributeName::LaunchPermission)
        .send()
        .await
        .unwrap();
    let users: Vec<&str> = attrs
        .launch_permissions()
        .iter()
        .filter_map(|p| p.user_id())
        .collect();
    assert_eq!(users, [VAULT_ACCOUNT]);
    let described = moto
        .client(HOME)
        .describe_images()
        .image_ids(&image)
        .send()
        .await
        .unwrap();
    let tags = tag_map(described.images()[0].tags());
    assert_eq!(
        tags.get("backup:shared-with").map(String::as_str),
        Some(VAULT_ACCOUNT),
        "{tags:?}"
    );

    // The events reach the vault's queue as the home account's, with the contract's detail.
    let events = moto.vault_events(&queue).await;
    assert_eq!(events.len(), 2, "{events:?}");
    for e in &events {
        assert_eq!(e["account"], HOME_ACCOUNT);
        assert_eq!(e["detail-type"], "Backup Shared");
        let d = &e["detail"];
        for field in [
            "backup",
            "kind",
            "region",
            "source",
            "name",
            "created_at",
            "deployment",
        ] {
            assert!(d.get(field).is_some(), "{field} missing: {e}");
        }
        assert_eq!(d["deployment"], "home");
        assert_eq!(d["created_at"], "2026-11-25T03:00:00Z");
    }

    // The vault copies each into both its regions, and locks and protects the copies.
    let later = now() + TimeDelta::minutes(5);
    for e in &events {
        let out = vault_replicate(&moto, &vault_config(), e, later).await;
        assert_eq!(out["copied"].as_array().unwrap().len(), 2, "{out}");
        assert!(out["failed"].as_array().unwrap().is_empty(), "{out}");
    }
    for r in [DR, DR2] {
        let copies = vault_copies(&moto, r).await;
        // The AMI's copy, its snapshot (tagged with it) and the snapshot's copy.
        assert_eq!(copies.len(), 3, "{r}: {copies:?}");
        let image_copy = copies
            .iter()
            .find(|(id, t)| id.starts_with("ami-") && t["backup:copy-of"] == image)
            .expect("the AMI's copy");
        let snap_copy = copies
            .iter()
            .find(|(_, t)| t["backup:copy-of"] == snapshot)
            .expect("the snapshot's copy");
        for (_, t) in [image_copy, snap_copy] {
            assert_eq!(t["backup:source-account"], HOME_ACCOUNT);
            assert_eq!(t["backup:managed-by"], "vault");
            let created = parse_time(&t["backup:created-at"]).unwrap();
            let expires = parse_time(&t["backup:expires-at"]).unwrap();
            assert_eq!(
                expires - created,
                TimeDelta::days(30),
                "the vault's own COPY_RETENTION"
            );
        }
        // Encrypted with a key of the vault's own account.
        let desc = moto
            .ec2_in(VAULT_ACCOUNT, r)
            .describe_snapshots()
            .snapshot_ids(snap_copy.0)
            .send()
            .await
            .unwrap();
        let s = &desc.snapshots()[0];
        assert_eq!(s.encrypted(), Some(true));
        assert!(
            s.kms_key_id().unwrap_or("").contains(VAULT_ACCOUNT),
            "{:?}",
            s.kms_key_id()
        );
        // Every snapshot of each copy locked until the copy's expiry.
        let locked = locks(&moto, r).await;
        let img = moto
            .ec2_in(VAULT_ACCOUNT, r)
            .describe_images()
            .image_ids(image_copy.0)
            .send()
            .await
            .unwrap();
        let img = &img.images()[0];
        assert!(
            img.deregistration_protection()
                .unwrap_or("")
                .starts_with("enabled"),
            "{img:?}"
        );
        for sid in img
            .block_device_mappings()
            .iter()
            .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()))
            .chain([snap_copy.0.as_str()])
        {
            let (state, _) = locked
                .get(sid)
                .unwrap_or_else(|| panic!("{sid} not locked in {r}: {locked:?}"));
            assert_eq!(state, "compliance-cooloff");
        }
    }

    // A replayed event and the vault's sweep change nothing.
    let before: Vec<_> = [
        vault_copies(&moto, DR).await,
        vault_copies(&moto, DR2).await,
    ]
    .into();
    let replay = vault_replicate(&moto, &vault_config(), &events[0], later).await;
    assert!(replay["copied"].as_array().unwrap().is_empty(), "{replay}");
    assert!(
        replay["skipped"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["reason"].as_str().unwrap().starts_with("already-copied")),
        "{replay}"
    );
    let sweep = vault_replicate(
        &moto,
        &vault_config(),
        &event("scheduled-event.json", &[]),
        later,
    )
    .await;
    assert!(
        sweep["copied"].as_array().unwrap().is_empty()
            && sweep["locked"].as_array().is_none_or(|l| l.is_empty()),
        "{sweep}"
    );
    let after: Vec<_> = [
        vault_copies(&moto, DR).await,
        vault_copies(&moto, DR2).await,
    ]
    .into();
    assert_eq!(before, after);
    // And the home sweep does not share them again.
    let again = home_sweep(&moto, &home_config(), later).await;
    assert!(again.get("shared").is_none(), "{again}");
    assert!(moto.vault_events(&queue).await.is_empty());
    moto.assert_calls_allowed("replicate");
}

const SHARE_KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/0a1b2c3d-share";

#[tokio::test]
async fn a_backup_on_the_default_key_goes_through_a_shareable_copy() {
    let moto = start().await;
    let queue = setup(&moto).await;
    // A volume on the default aws/ebs key, which AWS never lets anyone share.
    let volume = moto
        .client(HOME)
        .create_volume()
        .availability_zone(format!("{HOME}a"))
        .size(8)
        .encrypted(true)
        .tag_specifications(
            aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::Volume)
                .tags(
                    aws_sdk_ec2::types::Tag::builder()
                        .key("Backup")
                        .value("true")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap()
        .volume_id()
        .unwrap()
        .to_string();
    let original = home_backup(&moto, Volume, &volume, "r-3", now()).await;

    // Without a share key for the region: refused, saying what to set.
    let refused = home_sweep(&moto, &home_config(), now()).await;
    let failed = &refused["failed"][0];
    assert_eq!(failed["source"], original.as_str(), "{refused}");
    assert_eq!(failed["code"], "ShareKeyMissing");
    let why = failed["error"].as_str().unwrap();
    assert!(
        why.contains("SHARE_KMS_KEYS") && why.contains(VAULT_ACCOUNT) && why.contains("us-east-1="),
        "{why}"
    );

    // With one: a shareable copy on it first, then that copy is shared (not the original).
    let config = Config {
        share_kms_keys: [(region(HOME), SHARE_KEY.to_string())].into(),
        ..home_config()
    };
    let first = home_sweep(&moto, &config, now()).await;
    let copy = first["copied"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{first}"))
        .to_string();
    assert_eq!(first["copied"][0]["region"], HOME);
    assert!(first.get("shared").is_none(), "{first}");
    let described = moto
        .client(HOME)
        .describe_snapshots()
        .snapshot_ids(&copy)
        .send()
        .await
        .unwrap();
    let c = &described.snapshots()[0];
    assert_eq!(c.kms_key_id(), Some(SHARE_KEY));
    let tags = tag_map(c.tags());
    assert_eq!(tags.get("backup:share-of"), Some(&original));
    // The copy's own copySnapshot event (moto's copies complete at once): shared.
    let copied = event(
        "ebs-snapshot-copy-succeeded.json",
        &[("us-west-2", HOME), ("snap-0fedcba9876543210", &copy)],
    );
    let clients = moto.home_clients().await;
    let second = result_of(
        shared::replicate::handle(
            &config,
            &clients,
            None,
            &copied,
            now() + TimeDelta::minutes(1),
        )
        .await,
    );
    assert_eq!(second["shared"][0]["shared"], copy.as_str(), "{second}");
    assert_eq!(second["shared"][0]["source"], original.as_str());
    let events = moto.vault_events(&queue).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["detail"]["backup"], copy.as_str());
    assert_eq!(events[0]["detail"]["kind"], "snapshot");
    assert_eq!(
        events[0]["detail"]["source"],
        volume.as_str(),
        "the original's source"
    );
    assert_eq!(events[0]["detail"]["created_at"], "2026-11-25T03:00:00Z");
    // The vault copies the shareable copy.
    let out = vault_replicate(
        &moto,
        &vault_config(),
        &events[0],
        now() + TimeDelta::minutes(5),
    )
    .await;
    assert_eq!(out["copied"].as_array().unwrap().len(), 2, "{out}");
    // And a third sweep neither copies nor shares again.
    let third = home_sweep(&moto, &config, now() + TimeDelta::minutes(10)).await;
    assert!(
        third["copied"].as_array().unwrap().is_empty() && third.get("shared").is_none(),
        "{third}"
    );
}

#[tokio::test]
async fn a_share_from_an_account_not_in_source_accounts_is_ignored() {
    let moto = start().await;
    setup(&moto).await;
    // A stranger shares an AMI with the vault and says so with a Backup Shared event of its own.
    let stranger = moto.ec2_in(STRANGER_ACCOUNT, HOME);
    let instance = stranger
        .run_instances()
        .image_id("ami-12345678")
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .unwrap()
        .instances()[0]
        .instance_id()
        .unwrap()
        .to_string();
    let image = stranger
        .create_image()
        .instance_id(&instance)
        .name("bait")
        .description("ec2-backup backup of i-0123456789abcdef0")
        .send()
        .await
        .unwrap()
        .image_id()
        .unwrap()
        .to_string();
    stranger
        .modify_image_attribute()
        .image_id(&image)
        .launch_permission(
            aws_sdk_ec2::types::LaunchPermissionModifications::builder()
                .add(
                    aws_sdk_ec2::types::LaunchPermission::builder()
                        .user_id(VAULT_ACCOUNT)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut sample = event("backup-shared.json", &[]);
    sample["account"] = json!(STRANGER_ACCOUNT);
    sample["detail"]["backup"] = json!(image);
    let out = vault_replicate(&moto, &vault_config(), &sample, now()).await;
    let reason = out["skipped"][0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("not-from-a-source-account") && reason.contains(STRANGER_ACCOUNT),
        "{out}"
    );
    // A home account's event naming the stranger's AMI: the owner is not the sender.
    sample["account"] = json!(HOME_ACCOUNT);
    let out = vault_replicate(&moto, &vault_config(), &sample, now()).await;
    assert!(out["copied"].as_array().unwrap().is_empty(), "{out}");
    assert!(
        out["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("not-from-a-source-account: ami-"),
        "{out}"
    );
    // The sweep does not see it either (owners are SOURCE_ACCOUNTS only).
    let sweep = vault_replicate(
        &moto,
        &vault_config(),
        &event("scheduled-event.json", &[]),
        now(),
    )
    .await;
    assert!(sweep["copied"].as_array().unwrap().is_empty(), "{sweep}");
    for r in [DR, DR2] {
        assert!(vault_copies(&moto, r).await.is_empty());
    }
}

/// The vault's expire, as Lambda runs it on its schedule.
async fn vault_expire(moto: &Moto, config: &Config, at: DateTime<Utc>) -> Value {
    let clients = moto.clients_in(VAULT_ACCOUNT, HOME);
    result_of(
        shared::expire::handle(config, &clients, None, &event("expire-sweep.json", &[]), at).await,
    )
}

/// Shares the home backups made so far and has the vault copy them (at `at`).
async fn share_and_copy(moto: &Moto, queue: &str, at: DateTime<Utc>) {
    moto.share_and_copy(&home_config(), &vault_config(), queue, at)
        .await;
}

#[tokio::test]
async fn a_compromised_home_account_cannot_make_the_vault_lose_its_copies() {
    let moto = start().await;
    let queue = setup(&moto).await;
    let instance = moto.instance(HOME, &[("Backup", "true")], 0).await;
    // Two backups of the instance, a day apart, each shared and copied into both regions.
    let mut originals = Vec::new();
    for day in 0..2 {
        let at = now() + TimeDelta::days(day);
        moto.set_clock(at + TimeDelta::minutes(1));
        originals.push(home_backup(&moto, Instance, &instance, &format!("r-{day}"), at).await);
        share_and_copy(&moto, &queue, at + TimeDelta::minutes(5)).await;
    }
    let copies = |m: BTreeMap<String, BTreeMap<String, String>>| -> Vec<String> {
        m.into_iter()
            .filter(|(id, _)| id.starts_with("ami-"))
            .map(|(id, _)| id)
            .collect()
    };
    let before = [
        copies(vault_copies(&moto, DR).await),
        copies(vault_copies(&moto, DR2).await),
    ];
    assert_eq!(before.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2]);

    // The attacker, with the home account's credentials: every original goes...
    let home = moto.client(HOME);
    for image in &originals {
        let snaps: Vec<String> = home
            .describe_images()
            .image_ids(image)
            .send()
            .await
            .unwrap()
            .images()[0]
            .block_device_mappings()
            .iter()
            .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()).map(str::to_string))
            .collect();
        home.deregister_image()
            .image_id(image)
            .send()
            .await
            .unwrap();
        for s in snaps {
            home.delete_snapshot().snapshot_id(s).send().await.unwrap();
        }
    }
    // ...but the vault's copies are not the home account's to delete,
    for (r, ids) in [(DR, &before[0]), (DR2, &before[1])] {
        let home_there = moto.ec2_in(HOME_ACCOUNT, r);
        for id in ids {
            assert!(
                home_there
                    .deregister_image()
                    .image_id(id)
                    .send()
                    .await
                    .is_err(),
                "{id} in {r}"
            );
        }
    }
    // ...and an event naming an original the attacker deleted copies nothing.
    let mut forged = event("backup-shared.json", &[]);
    forged["account"] = json!(HOME_ACCOUNT);
    forged["detail"]["backup"] = json!(originals[0]);
    let out = vault_replicate(&moto, &vault_config(), &forged, now() + TimeDelta::days(2)).await;
    assert!(out["copied"].as_array().unwrap().is_empty(), "{out}");

    // The vault's expire keeps every copy while it is young, locked...
    let soon = now() + TimeDelta::days(2);
    moto.set_clock(soon);
    let kept = vault_expire(&moto, &vault_config(), soon).await;
    for r in [DR, DR2] {
        assert!(
            kept["regions"][r]["deregistered"]
                .as_array()
                .unwrap()
                .is_empty(),
            "{kept}"
        );
        for (snapshot, (state, _)) in locks(&moto, r).await {
            assert_eq!(state, "compliance", "{snapshot} in {r}");
        }
    }
    // ...the copies still launch in the vault account (ec2-backup restore's launch),
    let copy = &before[0][0];
    let launched = moto
        .ec2_in(VAULT_ACCOUNT, DR)
        .run_instances()
        .image_id(copy)
        .min_count(1)
        .max_count(1)
        .send()
        .await;
    assert!(launched.is_ok(), "{launched:?}");
    // ...and after its own retention, once the first copy's lock has ended, the first goes
    // (its protection lifted first) and the newest stays, however old: keep-last.
    let after = now() + TimeDelta::days(30) + TimeDelta::hours(1);
    moto.set_clock(after);
    let swept = vault_expire(&moto, &vault_config(), after).await;
    for (r, ids) in [(DR, &before[0]), (DR2, &before[1])] {
        let gone: Vec<&str> = swept["regions"][r]["deregistered"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_str().unwrap())
            .collect();
        assert_eq!(gone.len(), 1, "{swept}");
        let left = copies(vault_copies(&moto, r).await);
        assert_eq!(left.len(), 1, "{r}: {left:?}");
        assert!(ids.contains(&left[0]));
    }
    let much_later = now() + TimeDelta::days(400);
    moto.set_clock(much_later);
    moto.reset_calls();
    let swept = vault_expire(&moto, &vault_config(), much_later).await;
    for r in [DR, DR2] {
        assert_eq!(
            copies(vault_copies(&moto, r).await).len(),
            1,
            "keep-last: {swept}"
        );
    }
    moto.assert_calls_allowed("expire");
}

/// monitor's result and the EMF documents it wrote.
async fn monitor(
    moto: &Moto,
    account: &str,
    config: &Config,
    at: DateTime<Utc>,
) -> (Value, Vec<Value>) {
    let clients = moto.clients_in(account, HOME);
    let (answer, docs) = shared::monitor::handle_published(
        config,
        &clients,
        &event("scheduled-event.json", &[]),
        at,
    )
    .await;
    (answer.expect("monitor"), docs)
}

#[tokio::test]
async fn monitor_says_what_is_not_shared_not_copied_or_not_locked() {
    let moto = start().await;
    let queue = setup(&moto).await;
    home_backups(&moto).await;
    let later = now() + TimeDelta::hours(3);
    let governance = Config {
        lock: Lock::default(),
        ..vault_config()
    };

    // At home, past COPY_GRACE: both backups not shared yet; then shared: none.
    let (home, docs) = monitor(&moto, HOME_ACCOUNT, &home_config(), later).await;
    assert_eq!(home["regions"][HOME]["not_shared"], 2, "{home}");
    let total = docs
        .iter()
        .find(|d| d.get("Region").is_none() && d.get("NotShared").is_some())
        .unwrap();
    assert_eq!(total["NotShared"], 2);
    home_sweep(&moto, &home_config(), later).await;
    let (home, _) = monitor(&moto, HOME_ACCOUNT, &home_config(), later).await;
    assert_eq!(home["regions"][HOME]["not_shared"], 0, "{home}");

    // In the vault: shared and not copied yet.
    let (vault, _) = monitor(&moto, VAULT_ACCOUNT, &governance, later).await;
    assert_eq!(
        vault["vault"][HOME_ACCOUNT]["shared_not_copied"], 2,
        "{vault}"
    );
    // Copied and locked: nothing missing, the worst DR RPO is the backups' age.
    for e in moto.vault_events(&queue).await {
        vault_replicate(&moto, &governance, &e, later).await;
    }
    let at = later + TimeDelta::hours(3);
    let (vault, docs) = monitor(&moto, VAULT_ACCOUNT, &governance, at).await;
    let f = &vault["vault"][HOME_ACCOUNT];
    assert_eq!(f["shared_not_copied"], 0, "{vault}");
    assert_eq!(f["unlocked"], 0, "{vault}");
    assert_eq!(f["resources"], 2, "{vault}");
    assert_eq!(f["worst_dr_rpo_seconds"], 6 * 3600, "{vault}");
    let per_account = docs
        .iter()
        .find(|d| d["SourceAccount"] == HOME_ACCOUNT)
        .expect("a SourceAccount line");
    assert_eq!(per_account["WorstDrRpoSeconds"], 6 * 3600);
    let totals = docs
        .iter()
        .find(|d| d.get("SourceAccount").is_none() && d.get("Unlocked").is_some())
        .expect("the vault's totals");
    assert_eq!(totals["SharedNotCopied"], 0);
    // Someone unlocks a copy's snapshot (governance allows it): monitor counts it.
    let ec2 = moto.ec2_in(VAULT_ACCOUNT, DR);
    let locked = locks(&moto, DR).await;
    let snapshot = locked.keys().next().unwrap();
    ec2.unlock_snapshot()
        .snapshot_id(snapshot)
        .send()
        .await
        .unwrap();
    let (vault, _) = monitor(&moto, VAULT_ACCOUNT, &governance, at).await;
    assert_eq!(vault["vault"][HOME_ACCOUNT]["unlocked"], 1, "{vault}");
    // And the vault's next sweep locks it again.
    let sweep = vault_replicate(&moto, &governance, &event("scheduled-event.json", &[]), at).await;
    assert_eq!(sweep["locked"].as_array().unwrap().len(), 1, "{sweep}");
}

#[tokio::test]
async fn the_drill_proves_the_vaults_copies_restorable_in_the_vault_account() {
    use shared::drill::settings::DrillSettings;
    use shared::drill::{Drill, Run};
    use shared::invocation::{Function, Report, Setting, run_and_publish};
    let moto = start().await;
    let queue = setup(&moto).await;
    let (_image, _snapshot) = home_backups(&moto).await;
    share_and_copy(&moto, &queue, now() + TimeDelta::minutes(5)).await;
    let evidence = moto
        .evidence_bucket_in(VAULT_ACCOUNT, "vault-evidence")
        .await;
    let settings = DrillSettings {
        evidence_bucket: Some("vault-evidence".into()),
        ..DrillSettings::default()
    };
    let at = now() + TimeDelta::hours(1);
    let config = vault_config();
    let drill = Drill {
        setting: Setting {
            config: &config,
            queue: None,
            now: at,
        },
        settings: &settings,
        clients: moto.clients_in(VAULT_ACCOUNT, HOME),
        evidence: Some(evidence.clone()),
        run: Run::new(at, "req-vault"),
        poll: std::time::Duration::from_millis(50),
        recheck_seconds: 0,
        started: std::time::Instant::now(),
    };
    let (report, _) = run_and_publish(&drill, drill.parse(&json!({}))).await;
    let answer = report.and_then(Report::into_answer).expect("the drill ran");
    // The instance's AMI copy and the volume's snapshot copy, in each of the vault's regions.
    let records = answer["records"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"));
    assert_eq!(records.len(), 4, "{answer}");
    for r in records {
        assert_eq!(r["result"], "passed", "{r}");
    }
    let regions: std::collections::BTreeSet<&str> = records
        .iter()
        .map(|r| r["region"].as_str().unwrap())
        .collect();
    assert_eq!(regions.into_iter().collect::<Vec<_>>(), [DR2, DR]);
    // The evidence is in the vault's own bucket.
    let keys = evidence.keys("drills/", None).await.unwrap();
    assert_eq!(keys.len(), 4, "{keys:?}");
}

#[tokio::test]
async fn a_share_snapshot_notification_waits_for_the_backup_shared_event_of_the_same_share() {
    let moto = start().await;
    let queue = setup(&moto).await;
    let (_, snapshot) = home_backups(&moto).await;
    home_sweep(&moto, &home_config(), now()).await;
    let shared_event = moto
        .vault_events(&queue)
        .await
        .into_iter()
        .find(|e| e["detail"]["backup"] == snapshot.as_str())
        .expect("the snapshot's Backup Shared event");
    let work = moto.work_queue("vault-replicate-work", "replicate").await;
    let clients = moto.clients_in(VAULT_ACCOUNT, HOME);
    let at = now() + TimeDelta::minutes(2);

    // EBS's shareSnapshot notification comes first: handed on, due in five minutes.
    let notification = event(
        "ebs-snapshot-share.json",
        &[
            ("snap-0f1e2d3c4b5a69788", &snapshot),
            ("111122223333", HOME_ACCOUNT),
        ],
    );
    let first = result_of(
        shared::replicate::handle(&vault_config(), &clients, Some(&work), &notification, at).await,
    );
    assert_eq!(first["copied"], json!([]), "{first}");
    assert!(
        first["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("deferred"),
        "{first}"
    );
    assert_eq!(first["continuations"], 1, "{first}");
    assert_eq!(copies_of(&moto, &snapshot).await, 0);
    // The Backup Shared event makes the copies meanwhile.
    let second = vault_replicate(&moto, &vault_config(), &shared_event, at).await;
    assert_eq!(second["copied"].as_array().unwrap().len(), 2, "{second}");
    // The notification, when due (delivered twice, as SQS may): nothing more is copied.
    let due = shared::replicate::ReplicateWork {
        image_ids: Vec::new(),
        snapshot_ids: Vec::new(),
        attempt: 0,
        shared: vec![shared::replicate::event::SharedBackup {
            account: HOME_ACCOUNT.into(),
            kind: "snapshot".into(),
            backup: snapshot.clone(),
            region: Some(HOME.into()),
        }],
        to_lock: Vec::new(),
    };
    let body = shared::continuation::body(&vault_config(), "replicate", &due).unwrap();
    let delivered = json!({"Records": [sqs_record("m-1", &body, "vault-replicate-work")]});
    for _ in 0..2 {
        let answer = shared::replicate::handle(
            &vault_config(),
            &clients,
            Some(&work),
            &delivered,
            at + TimeDelta::minutes(5),
        )
        .await
        .unwrap();
        assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
        let result = &answer["records"][0]["result"];
        assert_eq!(result["copied"], json!([]), "{answer}");
        assert!(
            result["skipped"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["reason"].as_str().unwrap().starts_with("already-copied")),
            "{answer}"
        );
    }
    assert_eq!(
        copies_of(&moto, &snapshot).await,
        2,
        "one copy in each region"
    );
}

/// The vault's copies of `shared`, in both its regions.
async fn copies_of(moto: &Moto, shared: &str) -> usize {
    let mut n = 0;
    for r in [DR, DR2] {
        let copies = vault_copies(moto, r).await;
        n += copies
            .values()
            .filter(|t| t["backup:copy-of"] == shared)
            .count();
    }
    n
}

#[tokio::test]
async fn an_ami_whose_snapshots_are_on_the_share_key_is_shared_as_it_is() {
    let moto = start().await;
    setup(&moto).await;
    // An instance with a data volume on the share key.
    let instance = moto.instance(HOME, &[("Backup", "true")], 0).await;
    let home = moto.client(HOME);
    let az = home
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
    let volume = home
        .create_volume()
        .availability_zone(az)
        .size(8)
        .encrypted(true)
        .kms_key_id(SHARE_KEY)
        .send()
        .await
        .unwrap()
        .volume_id()
        .unwrap()
        .to_string();
    home.attach_volume()
        .volume_id(&volume)
        .instance_id(&instance)
        .device("/dev/sdf")
        .send()
        .await
        .unwrap();
    let image = home_backup(&moto, Instance, &instance, "r-1", now()).await;
    let config = Config {
        share_kms_keys: [(region(HOME), SHARE_KEY.to_string())].into(),
        ..home_config()
    };
    let out = home_sweep(&moto, &config, now()).await;
    // Shared as it is: no shareable copy made.
    assert_eq!(out["copied"], json!([]), "{out}");
    assert_eq!(out["shared"][0]["shared"], image.as_str(), "{out}");
}

#[tokio::test]
async fn what_the_source_account_claims_never_shortens_a_vault_copys_life() {
    let moto = start().await;
    let queue = setup(&moto).await;
    home_backups(&moto).await;
    home_sweep(&moto, &home_config(), now()).await;
    // A compromised home account's events claim the backups were made in 2000.
    let at = now() + TimeDelta::minutes(5);
    for mut e in moto.vault_events(&queue).await {
        e["detail"]["created_at"] = json!("2000-01-01T00:00:00Z");
        let out = vault_replicate(&moto, &vault_config(), &e, at).await;
        assert_eq!(out["copied"].as_array().unwrap().len(), 2, "{out}");
    }
    // The copies are dated by EC2's record of the shared backups, and kept the vault's
    // COPY_RETENTION from then.
    for r in [DR, DR2] {
        for (id, t) in vault_copies(&moto, r).await {
            let created = parse_time(&t["backup:created-at"]).unwrap();
            let expires = parse_time(&t["backup:expires-at"]).unwrap();
            assert!(created >= now(), "{id} in {r}: {created}");
            assert_eq!(expires - created, TimeDelta::days(30), "{id} in {r}");
        }
    }
    // And the vault's expire a week later deletes none of them.
    let week = now() + TimeDelta::days(7);
    moto.set_clock(week);
    let swept = vault_expire(&moto, &vault_config(), week).await;
    for r in [DR, DR2] {
        assert_eq!(swept["regions"][r]["deregistered"], json!([]), "{swept}");
        assert_eq!(
            swept["regions"][r]["deleted_snapshots"],
            json!([]),
            "{swept}"
        );
    }
}

#[tokio::test]
async fn a_copy_not_locked_yet_is_locked_by_the_continuation_that_names_it() {
    let moto = start().await;
    let queue = setup(&moto).await;
    home_backups(&moto).await;
    // Copied by a vault that did not lock (as if its copies were still pending then).
    let unlocking = Config {
        lock: Lock {
            mode: LockMode::None,
            cool_off_hours: 24,
        },
        ..vault_config()
    };
    moto.share_and_copy(&home_config(), &unlocking, &queue, now())
        .await;
    assert!(locks(&moto, DR).await.is_empty());
    let named: Vec<shared::replicate::event::CopyToLock> = vault_copies(&moto, DR)
        .await
        .into_iter()
        .filter(|(_, t)| {
            t.get("backup:kind").is_some_and(|k| k == "image")
                && t.contains_key("backup:source-account")
        })
        .filter_map(|(id, _)| {
            id.starts_with("ami-")
                .then(|| shared::replicate::event::CopyToLock {
                    region: DR.into(),
                    kind: "image".into(),
                    id,
                })
        })
        .collect();
    assert_eq!(named.len(), 1);
    let work = shared::replicate::ReplicateWork {
        image_ids: Vec::new(),
        snapshot_ids: Vec::new(),
        attempt: 1,
        shared: Vec::new(),
        to_lock: named,
    };
    let body = shared::continuation::body(&vault_config(), "replicate", &work).unwrap();
    let delivered = json!({"Records": [sqs_record("m-1", &body, "vault-replicate-work")]});
    let clients = moto.clients_in(VAULT_ACCOUNT, HOME);
    let answer = shared::replicate::handle(&vault_config(), &clients, None, &delivered, now())
        .await
        .unwrap();
    let result = &answer["records"][0]["result"];
    assert_eq!(
        result["locked"].as_array().map(Vec::len),
        Some(2),
        "{answer}"
    );
    assert_eq!(
        locks(&moto, DR).await.len(),
        1,
        "the AMI copy's one snapshot"
    );
}

#[tokio::test]
async fn the_shares_of_one_sqs_batch_are_copied_in_one_run() {
    let moto = start().await;
    let queue = setup(&moto).await;
    home_backups(&moto).await;
    home_sweep(&moto, &home_config(), now()).await;
    let events = moto.vault_events(&queue).await;
    assert_eq!(events.len(), 2);
    let records: Vec<Value> = events
        .iter()
        .enumerate()
        .map(|(i, e)| sqs_record(&format!("m-{i}"), &e.to_string(), "vault-replicate-work"))
        .collect();
    moto.reset_calls();
    let clients = moto.clients_in(VAULT_ACCOUNT, HOME);
    let answer = shared::replicate::handle(
        &vault_config(),
        &clients,
        None,
        &json!({"Records": records}),
        now(),
    )
    .await
    .unwrap();
    assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
    // Each record answers for its own share: its two copies.
    for (i, e) in events.iter().enumerate() {
        let result = &answer["records"][i]["result"];
        let copied = result["copied"].as_array().unwrap();
        assert_eq!(copied.len(), 2, "{answer}");
        assert!(
            copied.iter().all(|c| c["source"] == e["detail"]["backup"]),
            "{answer}"
        );
    }
    // One run: the locks of each region read once.
    for r in [DR, DR2] {
        assert_eq!(
            moto.calls_in(r).get("DescribeLockedSnapshots"),
            Some(&1),
            "{r}: {:?}",
            moto.calls_in(r)
        );
    }
}
