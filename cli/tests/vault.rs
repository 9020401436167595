//! `ec2-backup restore` in the DR account: with the vault account's credentials and the vault
//! deployment's name, an instance backed up in the home account restores from its locked vault
//! copy, whatever became of the home account's backups.

use chrono::Utc;
use integration_tests::accounts::{HOME_ACCOUNT, VAULT_ACCOUNT};
use integration_tests::*;
use serde_json::json;
use shared::Config;
use std::process::Command;

#[tokio::test]
async fn restore_in_the_vault_account_launches_from_the_vault_copy() {
    let moto = Moto::start().await;
    for r in [DR, DR2] {
        moto.default_key_in(VAULT_ACCOUNT, r).await;
    }
    let queue = moto.wire_events().await;
    let home = Config {
        deployment_name: "home".into(),
        dr_account: Some(VAULT_ACCOUNT.into()),
        ..Config::default()
    };
    let vault = Config {
        deployment_name: "vault".into(),
        source_accounts: vec![HOME_ACCOUNT.into()],
        copy_to_regions: vec![region(DR), region(DR2)],
        ..Config::default()
    };
    let now = Utc::now();
    let instance = moto
        .instance(HOME, &[("Backup", "true"), ("Name", "web")], 0)
        .await;
    let made = shared::create::handle(
        shared::create::ResourceKind::Instance,
        &home,
        &moto.ec2(HOME),
        None,
        &json!({"instance_ids": [instance]}),
        "r-1",
        now,
    )
    .await
    .expect("the backup");
    let original = made["created"][0]["id"].as_str().unwrap().to_string();
    moto.share_and_copy(&home, &vault, &queue, now).await;
    // The home account loses its backup (and, in the disaster, the instance).
    moto.client(HOME)
        .deregister_image()
        .image_id(&original)
        .send()
        .await
        .unwrap();
    moto.terminate(HOME, &instance).await;

    let out = Command::new(env!("CARGO_BIN_EXE_ec2-backup"))
        .args([
            "restore",
            "instance",
            &instance,
            "--region",
            DR,
            "--instance-type",
            "t3.micro",
        ])
        .env("AWS_ENDPOINT_URL", moto.url())
        .env("AWS_REGION", HOME)
        .env("AWS_ACCESS_KEY_ID", VAULT_ACCOUNT)
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("DEPLOYMENT_NAME", "vault")
        .env("SOURCE_ACCOUNTS", HOME_ACCOUNT)
        .env("COPY_TO_REGIONS", format!("{DR},{DR2}"))
        .env_remove("TAG_PREFIX")
        .env_remove("DR_ACCOUNT")
        .output()
        .expect("run ec2-backup");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let launched = String::from_utf8_lossy(&out.stdout).trim().to_string();
    // In the vault account, from the vault's copy of the original.
    let found = moto
        .ec2_in(VAULT_ACCOUNT, DR)
        .describe_instances()
        .instance_ids(&launched)
        .send()
        .await
        .expect("the restored instance is the vault account's");
    let image = found.reservations()[0].instances()[0]
        .image_id()
        .unwrap()
        .to_string();
    let copy = moto
        .ec2_in(VAULT_ACCOUNT, DR)
        .describe_images()
        .image_ids(&image)
        .send()
        .await
        .unwrap();
    let tags = tag_map(copy.images()[0].tags());
    assert_eq!(tags.get("backup:copy-of"), Some(&original), "{tags:?}");
    assert_eq!(
        tags.get("backup:source-account").map(String::as_str),
        Some(HOME_ACCOUNT)
    );
}
