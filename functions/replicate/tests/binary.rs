//! The real `replicate` binary through the Lambda runtime loop: the wiring of `main`.

use chrono::{TimeDelta, Utc};
use integration_tests::binary::{
    assert_emf_document, assert_invocation_metrics, assert_rejects_bad_input, boto3, deliver,
    emf_lines, invoke, invoke_within, listed, result, sample, text, work_queue,
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
fn a_sweep_its_deadline_cuts_short_fails_nothing_and_makes_and_records_each_copy_once() {
    // Thirty originals missing their copy in us-west-2, copies at 2/s after a burst of 10,
    // CreateTags at 2/s after a burst of 2, an 8 s timeout (a 2 s margin) and replicate's work
    // queue: more copies than one invocation can make and record.
    let prefix = "replicatedeadline";
    let now = Utc::now();
    let (created, expires) = (
        format_time(now - TimeDelta::hours(1)),
        format_time(now + TimeDelta::days(30)),
    );
    let seeded = boto3(&format!(
        "__import__('json').dumps([ec2.create_image(InstanceId=i, Name='{prefix}-' + __import__('uuid').uuid4().hex, TagSpecifications=[{{'ResourceType': 'image', 'Tags': [{{'Key': k, 'Value': v}} for k, v in {{'{prefix}:managed-by': 'ec2-backup', '{prefix}:kind': 'image', '{prefix}:source': i, '{prefix}:source-region': 'us-east-1', '{prefix}:created-at': '{created}', '{prefix}:expires-at': '{expires}', '{prefix}:copy-to': 'us-west-2', '{prefix}:copy-retention': '7d'}}.items()]}}])['ImageId'] for i in [x['InstanceId'] for x in ec2.run_instances(ImageId='ami-12345678', MinCount=30, MaxCount=30)['Instances']]])"
    ));
    let originals: Vec<String> = serde_json::from_str(&seeded).unwrap();
    assert_eq!(originals.len(), 30, "{seeded}");
    let queue = work_queue("binarytest-replicate-deadline", 48);
    let env = [
        ("TAG_PREFIX", prefix),
        ("EC2_RATE_LIMITS", "CopyImage=2/10,CreateTags=2/2"),
        ("WORK_QUEUE_URL", queue.as_str()),
    ];

    // The schedule's sweep: no failure, what it had no time for handed on.
    let out = invoke_within(BINARY, &sample("scheduled-event.json"), &env, 8);
    let line = result(&out);
    assert_eq!(line["ok"], true, "{line}");
    assert_eq!(line["response"]["failed"], serde_json::json!([]), "{line}");
    let (copied, deferred) = (listed(&line, "copied"), listed(&line, "deferred"));
    assert!(copied > 0 && deferred > 0, "{line}");
    assert_eq!(copied + deferred, 30, "{line}");
    assert!(
        line["response"]["continuations"].as_u64() >= Some(1),
        "{line}"
    );

    // The queue's continuations: no invocation error, no record failed.
    let delivered = deliver(BINARY, &queue, &env, 8, 180);
    let summary = &delivered.summary;
    assert_eq!(summary["stopped"], "idle", "{summary}");
    assert_eq!(summary["failed"], 0, "{summary}");
    assert_eq!(summary["errors"], 0, "{summary}");
    for invocation in &delivered.invocations {
        for record in invocation["response"]["records"]
            .as_array()
            .into_iter()
            .flatten()
        {
            assert_eq!(record["ok"], true, "{record}");
            assert_eq!(record.get("failed"), None, "{record}");
        }
    }

    // The next sweep, with time: nothing left to copy.
    let line = result(&invoke(BINARY, &sample("scheduled-event.json"), &env[..2]));
    assert_eq!(line["ok"], true, "{line}");
    assert_eq!(listed(&line, "copied"), 0, "{line}");

    // One copy of each original in us-west-2, listed on it.
    let west = "__import__('boto3').client('ec2', region_name='us-west-2', endpoint_url=ec2.meta.endpoint_url, aws_access_key_id='testing', aws_secret_access_key='testing')";
    let found: serde_json::Value = serde_json::from_str(&boto3(&format!(
        "__import__('json').dumps({{'copies': sorted(t['Value'] for i in {west}.describe_images(Owners=['self'], Filters=[{{'Name': 'tag-key', 'Values': ['{prefix}:copy-of']}}])['Images'] for t in i['Tags'] if t['Key'] == '{prefix}:copy-of'), 'listed': {{i['ImageId']: {{t['Key']: t['Value'] for t in i.get('Tags', [])}}.get('{prefix}:copies', '') for i in ec2.describe_images(ImageIds={originals:?})['Images']}}}})"
    )))
    .unwrap();
    let mut expected = originals.clone();
    expected.sort();
    assert_eq!(found["copies"], serde_json::json!(expected), "{found}");
    for id in &originals {
        assert!(
            found["listed"][id]
                .as_str()
                .unwrap_or_default()
                .starts_with("us-west-2=ami-"),
            "{id}: {found}"
        );
    }
}

#[test]
fn bad_input_is_rejected_clearly() {
    assert_rejects_bad_input(BINARY);
}
