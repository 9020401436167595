//! The real `drill` binary through the Lambda runtime loop and the SQS event source mapping
//! emulator: the wiring of `main`.

use chrono::{TimeDelta, Utc};
use integration_tests::binary::{
    assert_invocation_metrics, assert_rejects_bad_input_with, deliver, invoke, python, result,
    text, work_queue,
};
use serde_json::{Value, json};
use shared::tags::format_time;

const BINARY: &str = env!("CARGO_BIN_EXE_drill");
/// A deployment of this file's own: nothing another test makes is drilled or swept.
const DEPLOYMENT: &str = "drillbin";

fn clients() -> &'static str {
    "ec2 = boto3.client('ec2', region_name='us-east-1', endpoint_url=MOTO, aws_access_key_id='testing', aws_secret_access_key='testing')\ns3 = boto3.client('s3', region_name='us-east-1', endpoint_url=MOTO, aws_access_key_id='testing', aws_secret_access_key='testing')"
}

/// A bucket of its own, and an instance (no DR region) with an AMI of it made an hour ago:
/// (bucket, instance, image).
fn seeded(name: &str) -> (String, String, String) {
    let bucket = format!("drillbin-{name}-{}", std::process::id());
    let created = format_time(Utc::now() - TimeDelta::hours(1));
    let out = python(&format!(
        "{clients}\ns3.create_bucket(Bucket='{bucket}')\ni = ec2.run_instances(ImageId='ami-12345678', MinCount=1, MaxCount=1, TagSpecifications=[{{'ResourceType': 'instance', 'Tags': [{{'Key': 'binarytest', 'Value': 'true'}}, {{'Key': 'binarytest:copy-to', 'Value': 'none'}}]}}])['Instances'][0]['InstanceId']\ntags = [{{'Key': k, 'Value': v}} for k, v in [('binarytest:managed-by', '{DEPLOYMENT}'), ('binarytest:kind', 'image'), ('binarytest:source', i), ('binarytest:created-at', '{created}')]]\nimage = ec2.create_image(InstanceId=i, Name='drillbin-' + i, TagSpecifications=[{{'ResourceType': 'image', 'Tags': tags}}, {{'ResourceType': 'snapshot', 'Tags': tags}}])['ImageId']\nprint(i, image)",
        clients = clients()
    ));
    let (instance, image) = out.split_once(' ').unwrap();
    (bucket, instance.to_string(), image.to_string())
}

fn objects(bucket: &str) -> Vec<Value> {
    let out = python(&format!(
        "{clients}\nkeys = [o['Key'] for o in s3.list_objects_v2(Bucket='{bucket}').get('Contents', [])]\nprint(json.dumps([json.loads(s3.get_object(Bucket='{bucket}', Key=k)['Body'].read()) for k in keys]))",
        clients = clients()
    ));
    serde_json::from_str(&out).unwrap()
}

fn state(instance: &str) -> String {
    python(&format!(
        "{clients}\nprint(ec2.describe_instances(InstanceIds=['{instance}'])['Reservations'][0]['Instances'][0]['State']['Name'])",
        clients = clients()
    ))
}

#[test]
fn a_drill_goes_through_the_runtime_loop_and_keeps_its_evidence() {
    // GIVEN an instance with a backup an hour old
    let (bucket, instance, image) = seeded("run");

    // WHEN the binary is asked to drill it
    let payload = json!({"resource_ids": [instance]}).to_string();
    let out = invoke(
        BINARY,
        &payload,
        &[
            ("EVIDENCE_BUCKET", &bucket),
            ("DEPLOYMENT_NAME", DEPLOYMENT),
        ],
    );

    // THEN it restored it at home, judged it passed, and cleaned it up
    assert!(out.status.success(), "{}", text(&out.stderr));
    let line = result(&out);
    let response = &line["response"];
    assert_eq!(response["counts"]["passed"], 1, "{line}");
    let record = &response["records"][0];
    assert_eq!(record["backup"], image.as_str());
    assert_eq!(state(record["restored"].as_str().unwrap()), "terminated");
    // AND its record is the one evidence object, and the metrics say so
    assert_eq!(objects(&bucket), std::slice::from_ref(record));
    assert_invocation_metrics(
        &out,
        "drill",
        &[
            ("DrillsPassed", 1),
            ("DrillsFailed", 0),
            ("DrillsTimedOut", 0),
        ],
    );
}

#[test]
fn a_continuation_is_judged_when_the_work_queue_delivers_it() {
    // GIVEN a restore a run started a minute ago, handed on to the work queue
    let (bucket, instance, image) = seeded("queue");
    let started = format_time(Utc::now() - TimeDelta::minutes(1));
    let restored = python(&format!(
        "{clients}\ntags = [{{'Key': k, 'Value': v}} for k, v in [('binarytest:managed-by', '{DEPLOYMENT}'), ('binarytest:drill-of', '{image}'), ('binarytest:drill-run', 'run-1'), ('binarytest:drill-started-at', '{started}')]]\nprint(ec2.run_instances(ImageId='{image}', MinCount=1, MaxCount=1, TagSpecifications=[{{'ResourceType': 'instance', 'Tags': tags}}])['Instances'][0]['InstanceId'])",
        clients = clients()
    ));
    let body = json!({"continuation": 1, "deployment": DEPLOYMENT, "function": "drill", "work": {
        "run": "run-1", "run_started_at": started,
        "restores": [{"resource": instance, "name": null, "kind": "instance", "region": "us-east-1",
                      "backup": image, "backup_created_at": started, "started_at": started, "restored": restored}]}});
    let url = work_queue(&format!("drillbin-{}", std::process::id()), 60);
    python(&format!(
        "sqs = boto3.client('sqs', region_name='us-east-1', endpoint_url=MOTO, aws_access_key_id='testing', aws_secret_access_key='testing')\nsqs.send_message(QueueUrl='{url}', MessageBody={body:?})",
        body = body.to_string()
    ));

    // WHEN the event source mapping delivers it to the binary
    let delivered = deliver(
        BINARY,
        &url,
        &[
            ("EVIDENCE_BUCKET", bucket.as_str()),
            ("DEPLOYMENT_NAME", DEPLOYMENT),
            ("WORK_QUEUE_URL", url.as_str()),
        ],
        30,
        60,
    );

    // THEN the restore is judged, cleaned up and recorded, and the message is done
    let summary = &delivered.summary;
    assert_eq!(
        summary["failed"],
        0,
        "{summary} {}",
        text(&delivered.output.stderr)
    );
    assert_eq!(summary["errors"], 0, "{summary}");
    assert_eq!(summary["deleted"], 1, "{summary}");
    assert_eq!(state(&restored), "terminated");
    let evidence = objects(&bucket);
    assert_eq!(evidence.len(), 1, "{evidence:?}");
    assert_eq!(evidence[0]["run"], "run-1");
    assert_eq!(evidence[0]["result"], "passed");
}

#[test]
fn bad_input_is_rejected_clearly_and_the_bucket_is_required() {
    assert_rejects_bad_input_with(BINARY, &[("EVIDENCE_BUCKET", "drillbin-evidence")]);
    let out = invoke(BINARY, "{}", &[("EVIDENCE_BUCKET", "")]);
    assert_eq!(out.status.code(), Some(2), "the function must not start");
    assert!(
        text(&out.stderr).contains("EVIDENCE_BUCKET"),
        "{}",
        text(&out.stderr)
    );
}
