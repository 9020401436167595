//! The real `replicate` binary, run through the Lambda Runtime API emulator
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
        .arg(env!("CARGO_BIN_EXE_replicate"))
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

#[test]
fn the_reconcile_sweep_goes_through_the_runtime_loop_and_returns_the_report() {
    let event = std::fs::read_to_string(root().join("events/scheduled-event.json")).unwrap();
    let out = invoke(&event, &[]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    let line: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(line["ok"], true);
    assert_eq!(line["response"]["failed"], serde_json::json!([]));
    assert_eq!(line["response"]["dry_run"], false);
    assert_eq!(line["response"]["deferred"], serde_json::json!([]));
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
    let out = invoke("{}", &[("COPY_KMS_KEYS", "us-west-2")]);
    assert_eq!(out.status.code(), Some(2), "the function must not start");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("COPY_KMS_KEYS") && stderr.contains("us-west-2"),
        "{stderr}"
    );
}
