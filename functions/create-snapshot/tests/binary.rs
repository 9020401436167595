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
fn bad_input_is_rejected_clearly() {
    assert_rejects_bad_input(BINARY);
}
