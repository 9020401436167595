//! Running a function's real binary through the Lambda Runtime API emulator
//! (`tests/lambda_invoke.py`) against the moto server (see [`crate::server`]): the tests of
//! each `main`.

pub use crate::server::root;
use crate::server::{moto_url, venv_python};
use serde_json::Value;
use std::process::{Command, Output};

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `binary` on one payload, in us-east-1 of the moto server, under the tag prefix
/// `binarytest` (so a sweep finds only what these tests made), with `env` on top.
pub fn invoke(binary: &str, payload: &str, env: &[(&str, &str)]) -> Output {
    let moto = moto_url();
    let mut command = Command::new(venv_python());
    command
        .arg(root().join("tests/lambda_invoke.py"))
        .arg(binary)
        .args(["--payload", payload, "--timeout", "60"])
        .env("AWS_ENDPOINT_URL", moto)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("TAG_PREFIX", "binarytest");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("run tests/lambda_invoke.py")
}

/// The emulator's line for the (first) invocation.
pub fn result(out: &Output) -> Value {
    let stdout = text(&out.stdout);
    let line = stdout
        .lines()
        .next()
        .unwrap_or_else(|| panic!("no result line; stderr: {}", text(&out.stderr)));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

/// A sample from `events/` as text.
pub fn sample(name: &str) -> String {
    let path = root().join("events").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs a line of Python with boto3 (`ec2` is a client for us-east-1 of the moto server) and
/// returns what it prints: a quick way to seed a resource.
pub fn boto3(expression: &str) -> String {
    let moto = moto_url();
    let script = format!(
        "import boto3\nec2 = boto3.client('ec2', region_name='us-east-1', endpoint_url='{moto}', aws_access_key_id='testing', aws_secret_access_key='testing')\nprint({expression})"
    );
    let out = Command::new(venv_python())
        .args(["-c", &script])
        .output()
        .expect("run python");
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}

/// The checks every function's binary must pass: a malformed payload is a non-retryable error
/// that says what was expected, and a bad environment variable stops the cold start naming it.
pub fn assert_rejects_bad_input(binary: &str) {
    let out = invoke(binary, r#"{"hello": "world"}"#, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let line = result(&out);
    assert_eq!(
        line["error"]["errorType"], "NonRetryable.InvalidPayload",
        "{line}"
    );
    assert!(
        line["error"]["errorMessage"]
            .as_str()
            .unwrap_or_default()
            .contains("expected"),
        "{line}"
    );

    let out = invoke(binary, "{}", &[("DEFAULT_INTERVAL", "fortnightly")]);
    assert_eq!(out.status.code(), Some(2), "the function must not start");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("DEFAULT_INTERVAL") && stderr.contains("fortnightly"),
        "{stderr}"
    );
}
