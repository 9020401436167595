//! The real `create-snapshot` binary through the Lambda runtime loop: the wiring of `main`.

use integration_tests::binary::{
    assert_invocation_metrics, assert_rejects_bad_input, boto3, invoke, listed, result, sample,
    text,
};

const BINARY: &str = env!("CARGO_BIN_EXE_create-snapshot");

#[test]
fn a_scheduled_event_goes_through_the_runtime_loop_and_snapshots_what_opts_in() {
    let id = boto3(
        "ec2.create_volume(AvailabilityZone='us-east-1a', Size=8, TagSpecifications=[{'ResourceType': 'volume', 'Tags': [{'Key': 'binarytest', 'Value': 'true'}]}])['VolumeId']",
    );
    let out = invoke(BINARY, &sample("scheduled-event.json"), &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let line = result(&out);
    assert_eq!(line["ok"], true);
    let created: Vec<&str> = line["response"]["created"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["source"].as_str().unwrap())
        .collect();
    assert!(created.contains(&id.as_str()), "{line}");
    assert_invocation_metrics(
        &out,
        "create-snapshot",
        &[
            ("BackupsCreated", listed(&line, "created")),
            ("BackupsSkipped", listed(&line, "skipped")),
            ("BackupsFailed", listed(&line, "failed")),
            ("Warnings", listed(&line, "warnings")),
        ],
    );
}

#[test]
fn on_demand_in_the_same_minute_as_a_tag_change_s_snapshot_snapshots_now() {
    // A volume tagged (its Tag Change makes a snapshot at once), then a backup asked for in the
    // same minute: snapshots have no name to collide on, and on demand backs up now.
    let prefix = "ondemandsnaptest";
    let id = boto3(&format!(
        "ec2.create_volume(AvailabilityZone='us-east-1a', Size=8, TagSpecifications=[{{'ResourceType': 'volume', 'Tags': [{{'Key': '{prefix}', 'Value': 'true'}}]}}])['VolumeId']"
    ));
    let env = [("TAG_PREFIX", prefix)];
    let time = shared::tags::format_time(integration_tests::in_one_minute(40));
    let tag_change = sample("tag-change-volume.json")
        .replace("vol-0abcdef1234567890", &id)
        .replace("2026-11-25T02:59:30Z", &time);
    let tagged = result(&invoke(BINARY, &tag_change, &env));
    assert_eq!(tagged["ok"], true, "{tagged}");
    assert_eq!(listed(&tagged, "created"), 1, "{tagged}");

    let out = invoke(BINARY, &format!(r#"{{"volume_ids": ["{id}"]}}"#), &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let asked = result(&out);
    assert_eq!(asked["ok"], true, "{asked}");
    assert_eq!(
        asked["response"]["created"][0]["source"],
        id.as_str(),
        "{asked}"
    );
    assert_eq!(
        asked["response"]["skipped"],
        serde_json::json!([]),
        "{asked}"
    );
    // Two snapshots, both made in that minute.
    let created: serde_json::Value = serde_json::from_str(&boto3(&format!(
        "__import__('json').dumps([{{t['Key']: t['Value'] for t in s.get('Tags', [])}}.get('{prefix}:created-at', '') for s in ec2.describe_snapshots(OwnerIds=['self'], Filters=[{{'Name': 'tag:{prefix}:source', 'Values': ['{id}']}}])['Snapshots']])"
    )))
    .unwrap();
    let created = created.as_array().cloned().unwrap_or_default();
    assert_eq!(created.len(), 2, "{created:?}");
    for at in &created {
        assert!(
            at.as_str().unwrap_or_default().starts_with(&time[..16]),
            "{created:?} in the minute of {time}"
        );
    }
}

#[test]
fn bad_input_is_rejected_clearly() {
    assert_rejects_bad_input(BINARY);
}
