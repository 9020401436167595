//! The real `create-snapshot` binary, run through the Lambda Runtime API emulator
//! (`tests/lambda_invoke.py`) against the moto server at `MOTO_URL`: the wiring of `main`.

use std::path::PathBuf;
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs the binary on one payload with these extra environment variables.
fn invoke(payload: &str, env: &[(&str, &str)]) -> Output {
    let moto =
        std::env::var("MOTO_URL").expect("MOTO_URL is not set: run the tests with scripts/test");
    let mut command = Command::new(root().join(".venv/bin/python"));
    command
        .arg(root().join("tests/lambda_invoke.py"))
        .arg(env!("CARGO_BIN_EXE_create-snapshot"))
        .args(["--payload", payload, "--timeout", "60"])
        .env("AWS_ENDPOINT_URL", moto)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        // A prefix no other test uses: this sweep finds nothing of theirs.
        .env("TAG_PREFIX", "binarytest");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("run tests/lambda_invoke.py")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A resource that opts in under this test's own prefix, made with boto3 in the test venv.
fn seed() -> String {
    let moto =
        std::env::var("MOTO_URL").expect("MOTO_URL is not set: run the tests with scripts/test");
    let script = format!(
        r#"import boto3
ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url="{moto}", aws_access_key_id="testing", aws_secret_access_key="testing")
tags = [{{"Key": "binarytest", "Value": "true"}}]
print(ec2.create_volume(AvailabilityZone="us-east-1a", Size=8, TagSpecifications=[{{"ResourceType": "volume", "Tags": tags}}])["VolumeId"])"#
    );
    let out = Command::new(root().join(".venv/bin/python"))
        .args(["-c", &script])
        .output()
        .expect("run python");
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}

#[test]
fn a_scheduled_event_goes_through_the_runtime_loop_and_backs_up_what_opts_in() {
    let id = seed();
    let event = std::fs::read_to_string(root().join("events/scheduled-event.json")).unwrap();
    let out = invoke(&event, &[]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    let line: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(line["ok"], true);
    let created: Vec<&str> = line["response"]["created"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["source"].as_str().unwrap())
        .collect();
    assert!(created.contains(&id.as_str()), "{stdout}");
    assert_eq!(line["response"]["failed"], serde_json::json!([]));
}

#[test]
fn a_malformed_payload_is_a_non_retryable_error_that_says_what_was_expected() {
    let out = invoke(r#"{"hello": "world"}"#, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let line: serde_json::Value =
        serde_json::from_str(text(&out.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(line["error"]["errorType"], "NonRetryable.InvalidPayload");
    assert!(
        line["error"]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("expected an EventBridge")
    );
}

#[test]
fn a_bad_environment_variable_stops_the_cold_start_and_names_the_variable_and_value() {
    let out = invoke("{}", &[("DEFAULT_INTERVAL", "fortnightly")]);
    assert_eq!(out.status.code(), Some(2), "the function must not start");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("DEFAULT_INTERVAL") && stderr.contains("fortnightly"),
        "{stderr}"
    );
}
