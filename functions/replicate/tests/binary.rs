//! The real `replicate` binary through the Lambda runtime loop: the wiring of `main`.

use chrono::{TimeDelta, Utc};
use integration_tests::binary::{
    assert_emf_document, assert_invocation_metrics, assert_rejects_bad_input, boto3, emf_lines,
    invoke, listed, result, sample, text,
};
use shared::tags::format_time;

const BINARY: &str = env!("CARGO_BIN_EXE_replicate");

#[test]
fn the_reconcile_sweep_goes_through_the_runtime_loop_and_copies_what_is_missing() {
    // An original backup of ours (under this test's prefix) that wants a copy in us-west-2,
    // made an hour before the machine's clock, which the binary reads (a copy that would
    // already be expired is not made).
    let now = Utc::now();
    let (created, expires) = (
        format_time(now - TimeDelta::hours(1)),
        format_time(now + TimeDelta::days(30)),
    );
    let image = boto3(&format!(
        "ec2.create_image(InstanceId=ec2.run_instances(ImageId='ami-12345678', MinCount=1, MaxCount=1)['Instances'][0]['InstanceId'], Name='binarytest-' + __import__('uuid').uuid4().hex, TagSpecifications=[{{'ResourceType': 'image', 'Tags': [{{'Key': k, 'Value': v}} for k, v in {{'binarytest:managed-by': 'ec2-backup', 'binarytest:kind': 'image', 'binarytest:source': 'i-0123456789abcdef0', 'binarytest:source-region': 'us-east-1', 'binarytest:created-at': '{created}', 'binarytest:expires-at': '{expires}', 'binarytest:copy-to': 'us-west-2', 'binarytest:copy-retention': '7d'}}.items()]}}])['ImageId']",
    ));
    let out = invoke(BINARY, &sample("scheduled-event.json"), &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let line = result(&out);
    let copied: Vec<(&str, &str)> = line["response"]["copied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["source"].as_str().unwrap(), c["region"].as_str().unwrap()))
        .collect();
    assert!(copied.contains(&(image.as_str(), "us-west-2")), "{line}");
    assert_eq!(line["response"]["failed"], serde_json::json!([]));
    assert_invocation_metrics(
        &out,
        "replicate",
        &[
            ("CopiesStarted", listed(&line, "copied")),
            ("CopiesSkipped", listed(&line, "skipped")),
            ("CopiesDeferred", listed(&line, "deferred")),
            ("CopiesFailed", 0),
        ],
    );
    // And one line per destination, with the copies started there.
    let west = emf_lines(&out)
        .into_iter()
        .find(|l| l["Region"] == "us-west-2")
        .unwrap_or_else(|| panic!("no EMF line for us-west-2: {}", text(&out.stderr)));
    assert_emf_document(&west, "replicate", "destination");
    let started_west = copied.iter().filter(|(_, r)| *r == "us-west-2").count();
    assert_eq!(west["CopiesStarted"], started_west as u64, "{west}");
}

#[test]
fn bad_input_is_rejected_clearly() {
    assert_rejects_bad_input(BINARY);
}
