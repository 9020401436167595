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
    let ec2 = moto.ec2(HOME);
    let image = shared::create::handle(
        Instance,
        &home_config(),
        &ec2,
        None,
        &json!({"instance_ids": [instance]}),
        "r-1",
        now(),
    )
    .await
    .expect("image made");
    let snapshot = shared::create::handle(
        Volume,
        &home_config(),
        &ec2,
        None,
        &json!({"volume_ids": [volume]}),
        "r-2",
        now(),
    )
    .await
    .expect("snapshot made");
    (
        image["created"][0]["id"].as_str().unwrap().to_string(),
        snapshot["created"][0]["id"].as_str().unwrap().to_string(),
    )
}

async fn home_sweep(moto: &Moto, config: &Config, at: DateTime<Utc>) -> Value {
    let clients = moto.home_clients().await;
    shared::replicate::handle(
        config,
        &clients,
        None,
        &event("scheduled-event.json", &[]),
        at,
    )
    .await
    .expect("home replicate")
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
        let ours: Vec<_> = copies
            .values()
            .filter(|t| t.get("backup:kind").map(String::as_str) != Some("image") || true)
            .collect();
        assert!(!ours.is_empty());
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
