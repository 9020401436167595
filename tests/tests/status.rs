//! The gathering behind `ec2-backup status` and monitor (`shared::status::gather`) against the
//! moto server: which regions it reads, that the full listing monitor asks for holds the same
//! backups as the CLI's, and that only sources the sweep did not show are looked up.

use chrono::{DateTime, TimeDelta, Utc};
use integration_tests::*;
use serde_json::json;
use shared::Config;
use shared::backup::Backup;
use shared::create::ResourceKind;
use shared::status::{Listing, gather};
use shared::tags::{TagKeys, parse_time};

fn now() -> DateTime<Utc> {
    parse_time("2026-11-25T12:00:00Z").unwrap()
}

fn config() -> Config {
    Config {
        copy_to_regions: vec![region(DR)],
        ..Config::default()
    }
}

async fn backup(moto: &Moto, kind: ResourceKind, id: &str) -> String {
    let field = kind.ids_field();
    let report = shared::create::handle(
        kind,
        &config(),
        &moto.ec2(HOME),
        None,
        &json!({ field: [id] }),
        &format!("request-{id}"),
        now(),
    )
    .await
    .expect("backup made");
    report["created"][0]["id"].as_str().unwrap().to_string()
}

fn ids(backups: &[Backup]) -> Vec<String> {
    backups
        .iter()
        .map(|b| format!("{} {}", b.region, b.id))
        .collect()
}

#[tokio::test]
async fn the_full_listing_holds_the_managed_backups_and_the_rest_apart() {
    // GIVEN an AMI with its snapshot and a standalone snapshot at home, both copied to
    // us-west-2, and an instance whose own copy-to names eu-west-1
    let moto = Moto::start().await;
    moto.set_clock(now());
    let i = moto.instance(HOME, &[("Backup", "true")], 0).await;
    let v = moto.volume(HOME, &[("Backup", "true")]).await;
    let ami = backup(&moto, ResourceKind::Instance, &i).await;
    let snap = backup(&moto, ResourceKind::Volume, &v).await;
    moto.instance(HOME, &[("Backup", "true"), ("backup:copy-to", DR2)], 0)
        .await;
    moto.set_clock(now() + TimeDelta::minutes(5));
    shared::replicate::handle(
        &config(),
        &moto.clients(HOME),
        None,
        &event("scheduled-event.json", &[]),
        now() + TimeDelta::minutes(5),
    )
    .await
    .expect("copies made");
    let (keys, clients) = (TagKeys::new("backup"), moto.clients(HOME));

    // WHEN gathered both ways
    let managed = gather(&config(), &keys, &clients, &[], Listing::Backups)
        .await
        .unwrap();
    let everything = gather(&config(), &keys, &clients, &[], Listing::Everything)
        .await
        .unwrap();

    // THEN home comes first, then every DR region named, each once
    assert_eq!(managed.regions, vec![region(HOME), region(DR2), region(DR)]);
    // AND both hold the same backups (the AMIs and standalone snapshots, copies included)
    assert_eq!(ids(&managed.backups), ids(&everything.backups));
    assert_eq!(managed.backups.len(), 4, "{:?}", ids(&managed.backups));
    assert!(managed.backups.iter().any(|b| b.id == ami));
    assert!(managed.backups.iter().any(|b| b.id == snap));
    assert!(managed.others.is_empty());
    // AND the full listing holds the AMIs' own snapshots apart, at home and in us-west-2
    let others: Vec<(&str, &str)> = everything
        .others
        .iter()
        .map(|b| (b.region.as_str(), b.tagged_kind.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(others, vec![(HOME, "image"), (DR, "image")]);
    assert_eq!(managed.existing_sources, everything.existing_sources);
}

#[tokio::test]
async fn only_the_sources_the_sweep_did_not_show_are_looked_up() {
    // GIVEN backups of a running instance and of one terminated since
    let moto = Moto::start().await;
    moto.set_clock(now());
    let kept = moto.instance(HOME, &[("Backup", "true")], 0).await;
    let gone = moto.instance(HOME, &[("Backup", "true")], 0).await;
    backup(&moto, ResourceKind::Instance, &kept).await;
    backup(&moto, ResourceKind::Instance, &gone).await;
    moto.terminate(HOME, &gone).await;
    let (keys, clients) = (TagKeys::new("backup"), moto.clients(HOME));
    moto.reset_calls();

    // WHEN gathered
    let inputs = gather(&config(), &keys, &clients, &[], Listing::Backups)
        .await
        .unwrap();

    // THEN the running one exists and the terminated one does not; the sweep showed the first,
    // so one lookup (of the second) follows the sweep
    assert!(inputs.existing_sources.contains(&kept));
    assert!(!inputs.existing_sources.contains(&gone));
    assert_eq!(moto.calls_in(HOME).get("DescribeInstances"), Some(&2));

    // AND once no backup names the terminated one, the sweep is the only DescribeInstances
    moto.client(HOME)
        .deregister_image()
        .image_id(
            moto.images(HOME)
                .await
                .iter()
                .find(|i| tag_map(i.tags()).get("backup:source").map(String::as_str) == Some(&gone))
                .and_then(|i| i.image_id())
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    moto.reset_calls();
    let inputs = gather(&config(), &keys, &clients, &[], Listing::Backups)
        .await
        .unwrap();
    assert!(inputs.existing_sources.contains(&kept));
    assert_eq!(moto.calls_in(HOME).get("DescribeInstances"), Some(&1));
}
