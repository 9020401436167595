//! The real `create-image` binary through the Lambda runtime loop: the wiring of `main`.

use integration_tests::binary::{
    assert_invocation_metrics, assert_rejects_bad_input, boto3, deliver, invoke, invoke_within,
    listed, result, sample, text, work_queue,
};

const BINARY: &str = env!("CARGO_BIN_EXE_create-image");

#[test]
fn a_scheduled_event_goes_through_the_runtime_loop_waits_out_throttling_and_backs_up_what_opts_in()
{
    let id = boto3(
        "ec2.run_instances(ImageId='ami-12345678', MinCount=1, MaxCount=1, TagSpecifications=[{'ResourceType': 'instance', 'Tags': [{'Key': 'binarytest', 'Value': 'true'}]}])['Instances'][0]['InstanceId']",
    );
    // EC2 throttles the first two CreateImage calls: the SDK waits them out, and the metrics
    // line counts them.
    throttle_create_image(2);
    let out = invoke(
        BINARY,
        &sample("scheduled-event.json"),
        &[("AWS_LAMBDA_LOG_FORMAT", "JSON")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let line = result(&out);
    assert_eq!(line["ok"], true);
    // One JSON log line per backup, with the resource and the EventBridge event's id.
    let logs = text(&out.stderr);
    let created_log = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| {
            l["fields"]["message"] == "backup created" && l["fields"]["source"] == id.as_str()
        })
        .unwrap_or_else(|| panic!("no JSON log line for {id}: {logs}"));
    assert_eq!(
        created_log["span"]["event_id"], "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "{created_log}"
    );
    let created: Vec<&str> = line["response"]["created"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["source"].as_str().unwrap())
        .collect();
    assert!(created.contains(&id.as_str()), "{line}");
    assert_eq!(line["response"]["failed"], serde_json::json!([]));
    // Its metrics line says what the result lists.
    assert_invocation_metrics(
        &out,
        "create-image",
        &[
            ("BackupsCreated", listed(&line, "created")),
            ("BackupsSkipped", listed(&line, "skipped")),
            ("BackupsFailed", 0),
            ("Warnings", listed(&line, "warnings")),
            ("Throttles", 2),
            ("Continuations", 0),
        ],
    );
}

#[test]
fn a_sweep_that_outlasts_its_timeout_returns_before_it_with_the_rest_remaining() {
    // Twelve instances under a prefix of their own, one CreateImage a second, and an 8 s
    // timeout: with its margin (2 s), the function starts calls for about 6 s, then returns
    // what it made and how many remain, before Lambda (the emulator) would kill it.
    let seed = "ec2.run_instances(ImageId='ami-12345678', MinCount=12, MaxCount=12, TagSpecifications=[{'ResourceType': 'instance', 'Tags': [{'Key': 'slowtest', 'Value': 'true'}]}])['Instances'][0]['InstanceId']";
    boto3(seed);
    let started = std::time::Instant::now();
    let out = invoke_within(
        BINARY,
        &sample("scheduled-event.json"),
        &[
            ("TAG_PREFIX", "slowtest"),
            ("EC2_RATE_LIMITS", "CreateImage=1/1"),
        ],
        8,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        started.elapsed().as_secs_f64() < 10.0,
        "returned within its timeout"
    );
    let line = result(&out);
    assert_eq!(line["ok"], true, "{line}");
    let made = listed(&line, "created");
    let remaining = line["response"]["remaining"].as_u64().unwrap_or(0) as usize;
    assert!(made >= 3 && remaining >= 3, "{line}");
    assert_eq!(made + remaining, 12, "{line}");
    assert_eq!(line["response"]["failed"], serde_json::json!([]));
}

#[test]
fn on_demand_in_the_same_minute_as_a_tag_change_s_backup_backs_up_now() {
    // An instance tagged (its Tag Change makes an AMI at once), then a backup asked for in the
    // same minute: on demand backs up now, whatever was made before.
    let prefix = "ondemandtest";
    let id = boto3(&format!(
        "ec2.run_instances(ImageId='ami-12345678', MinCount=1, MaxCount=1, TagSpecifications=[{{'ResourceType': 'instance', 'Tags': [{{'Key': '{prefix}', 'Value': 'true'}}, {{'Key': 'Name', 'Value': 'web-01'}}]}}])['Instances'][0]['InstanceId']"
    ));
    let env = [("TAG_PREFIX", prefix)];
    let time = shared::tags::format_time(integration_tests::in_one_minute(40));
    let tag_change = sample("tag-change-instance.json")
        .replace("i-0123456789abcdef0", &id)
        .replace("2026-11-25T02:58:12Z", &time);
    let tagged = result(&invoke(BINARY, &tag_change, &env));
    assert_eq!(tagged["ok"], true, "{tagged}");
    assert_eq!(listed(&tagged, "created"), 1, "{tagged}");

    let out = invoke(BINARY, &format!(r#"{{"instance_ids": ["{id}"]}}"#), &env);
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

    // Two AMIs of the same minute: the on-demand one named after its request.
    let images: serde_json::Value = serde_json::from_str(&boto3(&format!(
        "__import__('json').dumps(sorted([i['Name'], {{t['Key']: t['Value'] for t in i.get('Tags', [])}}.get('{prefix}:request-id', '')] for i in ec2.describe_images(Owners=['self'], Filters=[{{'Name': 'tag:{prefix}:source', 'Values': ['{id}']}}])['Images']))"
    )))
    .unwrap();
    let minute = time[..16].replace(['-', ':'], "");
    let name = format!("web-01-{id}-{minute}Z");
    assert_eq!(images.as_array().map(Vec::len), Some(2), "{images}");
    assert_eq!(images[0], serde_json::json!([name, ""]), "{images}");
    let request_id = images[1][1].as_str().unwrap_or_default();
    assert!(!request_id.is_empty(), "{images}");
    assert_eq!(images[1][0], format!("{name}-{request_id}"), "{images}");
}

#[test]
fn bad_input_is_rejected_clearly() {
    assert_rejects_bad_input(BINARY);
}

/// Arms the moto server to answer the next `count` CreateImage calls as EC2 does when its
/// bucket is empty.
fn throttle_create_image(count: u32) {
    let spec = serde_json::json!({
        "action": "CreateImage", "code": "RequestLimitExceeded", "status": 503,
        "message": "Request limit exceeded.", "count": count,
    });
    boto3(&format!(
        "__import__('urllib.request').request.urlopen(__import__('urllib.request').request.Request(ec2.meta.endpoint_url + '/_test/faults', data={:?}.encode(), method='POST')).status",
        spec.to_string()
    ));
}

#[test]
fn a_sweep_longer_than_an_invocation_continues_through_the_work_queue_and_backs_up_each_instance_once()
 {
    // Twelve instances under a prefix of their own, one CreateImage a second, an 8 s timeout,
    // and create-image's FIFO work queue: the schedule hands the sweep to the queue, and the
    // event source mapping delivers it and each continuation until all are made.
    let prefix = "queuetest";
    boto3(&format!(
        "ec2.run_instances(ImageId='ami-12345678', MinCount=12, MaxCount=12, TagSpecifications=[{{'ResourceType': 'instance', 'Tags': [{{'Key': '{prefix}', 'Value': 'true'}}]}}])['Instances'][0]['InstanceId']"
    ));
    let queue = work_queue("binarytest-create-image.fifo", 48);
    let env = [
        ("TAG_PREFIX", prefix),
        ("EC2_RATE_LIMITS", "CreateImage=1/1"),
        ("WORK_QUEUE_URL", queue.as_str()),
    ];
    let out = invoke_within(BINARY, &sample("scheduled-event.json"), &env, 8);
    let line = result(&out);
    assert_eq!(line["response"]["continuations"], 1, "{line}");
    assert_invocation_metrics(
        &out,
        "create-image",
        &[("BackupsCreated", 0), ("Continuations", 1)],
    );

    let delivered = deliver(BINARY, &queue, &env, 8, 120);
    let summary = &delivered.summary;
    assert_eq!(summary["stopped"], "idle", "{summary}");
    assert_eq!(summary["failed"], 0, "{summary}");
    assert_eq!(
        summary["errors"], 0,
        "no invocation failed or timed out: {summary}"
    );
    assert!(
        summary["invocations"].as_u64().unwrap() >= 2,
        "the sweep outlasted one invocation: {summary}"
    );
    let made: u64 = delivered
        .invocations
        .iter()
        .flat_map(|i| {
            i["response"]["records"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|r| r["result"]["counts"]["created"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(made, 12, "{:?}", delivered.invocations);
    let images = boto3(&format!(
        "len([i for i in ec2.describe_images(Owners=['self'], Filters=[{{'Name': 'tag:{prefix}:managed-by', 'Values': ['ec2-backup']}}])['Images']])"
    ));
    assert_eq!(images, "12", "one AMI of each instance, no duplicate");
}
