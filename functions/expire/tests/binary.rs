//! The real `expire` binary through the Lambda runtime loop: the wiring of `main`.

use chrono::{TimeDelta, Utc};
use integration_tests::binary::{
    assert_invocation_metrics, assert_rejects_bad_input, boto3, invoke, result, text,
};
use shared::tags::format_time;

const BINARY: &str = env!("CARGO_BIN_EXE_expire");

#[test]
fn a_sweep_goes_through_the_runtime_loop_and_deregisters_what_expired() {
    // The binary reads the machine's clock: the backup expired a day before it, whatever it says.
    let now = Utc::now();
    let (created, expires) = (
        format_time(now - TimeDelta::days(8)),
        format_time(now - TimeDelta::days(1)),
    );
    let image = boto3(&format!(
        "ec2.create_image(InstanceId=ec2.run_instances(ImageId='ami-12345678', MinCount=1, MaxCount=1)['Instances'][0]['InstanceId'], Name='binarytest-' + __import__('uuid').uuid4().hex, TagSpecifications=[{{'ResourceType': k, 'Tags': [{{'Key': 'binarytest:managed-by', 'Value': 'ec2-backup'}}, {{'Key': 'binarytest:kind', 'Value': 'image'}}, {{'Key': 'binarytest:source', 'Value': 'i-0fedcba9876543210'}}, {{'Key': 'binarytest:created-at', 'Value': '{created}'}}, {{'Key': 'binarytest:expires-at', 'Value': '{expires}'}}]}} for k in ('image', 'snapshot')])['ImageId']",
    ));
    let out = invoke(BINARY, "{}", &[("KEEP_LAST", "0")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let line = result(&out);
    let deregistered: Vec<&str> = line["response"]["regions"]["us-east-1"]["deregistered"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert!(deregistered.contains(&image.as_str()), "{line}");
    let total = |list: &str| -> usize {
        line["response"]["regions"]
            .as_object()
            .unwrap()
            .values()
            .map(|r| r[list].as_array().map_or(0, Vec::len))
            .sum()
    };
    assert_invocation_metrics(
        &out,
        "expire",
        &[
            ("ImagesDeregistered", total("deregistered")),
            ("SnapshotsDeleted", total("deleted_snapshots")),
            ("BackupsKept", total("kept")),
            ("DeletesFailed", total("failed")),
        ],
    );
}

#[test]
fn bad_input_is_rejected_clearly() {
    assert_rejects_bad_input(BINARY);
}
