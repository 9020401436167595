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
    invoke_within(binary, payload, env, 60)
}

/// [`invoke`] with the function's timeout (the deadline the emulator hands out, and past which
/// it kills the binary) set to `timeout_seconds`.
pub fn invoke_within(
    binary: &str,
    payload: &str,
    env: &[(&str, &str)],
    timeout_seconds: u32,
) -> Output {
    let moto = moto_url();
    let timeout = timeout_seconds.to_string();
    let mut command = Command::new(venv_python());
    command
        .arg(root().join("tests/lambda_invoke.py"))
        .arg(binary)
        .args(["--payload", payload, "--timeout", &timeout])
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

/// Runs a Python script against the moto server (`MOTO` is its URL, `boto3` imported) and
/// returns what it prints.
pub fn python(script: &str) -> String {
    let moto = moto_url();
    let script = format!("import boto3, json\nMOTO = '{moto}'\n{script}");
    let out = Command::new(venv_python())
        .args(["-c", &script])
        .output()
        .expect("run python");
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
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
    assert_rejects_bad_input_with(binary, &[]);
}

/// [`assert_rejects_bad_input`] for a binary that needs `env` to start (the drill's bucket).
pub fn assert_rejects_bad_input_with(binary: &str, env: &[(&str, &str)]) {
    let out = invoke(binary, r#"{"hello": "world"}"#, env);
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
    // A failed invocation still publishes its line: nothing done, and how long it took.
    let function = std::path::Path::new(binary)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let emf = assert_invocation_metrics(&out, function, &[("Throttles", 0), ("Continuations", 0)]);
    let list: Value = serde_json::from_str(shared::metrics::JSON).unwrap();
    for name in list["functions"][function]["function"].as_array().unwrap() {
        if name != "Duration" {
            assert_eq!(emf[name.as_str().unwrap()], 0, "{name} in {emf}");
        }
    }

    let mut bad = env.to_vec();
    bad.push(("DEFAULT_INTERVAL", "fortnightly"));
    let out = invoke(binary, "{}", &bad);
    assert_eq!(out.status.code(), Some(2), "the function must not start");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("DEFAULT_INTERVAL") && stderr.contains("fortnightly"),
        "{stderr}"
    );
}

/// The binary's EMF lines (its stdout, which the emulator passes on with its logs).
pub fn emf_lines(out: &Output) -> Vec<Value> {
    text(&out.stderr)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("_aws").is_some())
        .collect()
}

/// Checks one EMF document against the embedded metric format specification and
/// `shared/metrics.json`: a millisecond timestamp, one directive in the namespace, one
/// dimension set whose values are strings at the root, and exactly the metrics that
/// `function` publishes under `set`, each with its unit and a number at the root.
pub fn assert_emf_document(doc: &Value, function: &str, set: &str) {
    let list: Value = serde_json::from_str(shared::metrics::JSON).unwrap();
    let aws = &doc["_aws"];
    let ts = aws["Timestamp"].as_i64().unwrap_or_else(|| panic!("{doc}"));
    let now = chrono::Utc::now().timestamp_millis();
    assert!(
        (ts - now).abs() < 86_400_000,
        "Timestamp is not milliseconds near now: {doc}"
    );
    let directives = aws["CloudWatchMetrics"].as_array().unwrap();
    assert_eq!(directives.len(), 1, "{doc}");
    let d = &directives[0];
    assert_eq!(d["Namespace"], list["namespace"], "{doc}");
    assert_eq!(
        d["Dimensions"],
        serde_json::json!([list["dimensions"][set]]),
        "{doc}"
    );
    for key in list["dimensions"][set].as_array().unwrap() {
        assert!(doc[key.as_str().unwrap()].is_string(), "{key} in {doc}");
    }
    let mut names: Vec<&str> = Vec::new();
    for m in d["Metrics"].as_array().unwrap() {
        let name = m["Name"].as_str().unwrap();
        assert_eq!(m["Unit"], list["units"][name], "{name} in {doc}");
        assert!(doc[name].is_number(), "{name} in {doc}");
        names.push(name);
    }
    let mut expected: Vec<&str> = list["functions"][function][set]
        .as_array()
        .unwrap_or_else(|| panic!("{function} publishes nothing under {set}"))
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    names.sort_unstable();
    expected.sort_unstable();
    assert_eq!(names, expected, "{doc}");
}

/// The invocation's own EMF line (`[Deployment, Function]`), checked, with each of `counts`
/// equal to the given number (what the result lists).
pub fn assert_invocation_metrics(out: &Output, function: &str, counts: &[(&str, usize)]) -> Value {
    let lines = emf_lines(out);
    let line = lines
        .iter()
        .find(|l| {
            l["Function"] == function
                && l["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
                    == serde_json::json!([["Deployment", "Function"]])
        })
        .unwrap_or_else(|| panic!("no EMF line of {function}: {}", text(&out.stderr)))
        .clone();
    assert_emf_document(&line, function, "function");
    for (name, n) in counts {
        assert_eq!(line[*name], *n as u64, "{name} in {line}");
    }
    line
}

/// The number of entries of `list` in an emulator result line's response.
pub fn listed(line: &Value, list: &str) -> usize {
    line["response"][list].as_array().map_or(0, Vec::len)
}

/// A work queue on the moto server, as the template makes it (FIFO with content-based
/// deduplication when `name` ends in `.fifo`), its visibility timeout `visibility` seconds
/// (the event source mapping refuses one below the function's timeout): its URL.
pub fn work_queue(name: &str, visibility: u32) -> String {
    let fifo = if name.ends_with(".fifo") {
        ", 'FifoQueue': 'true', 'ContentBasedDeduplication': 'true'"
    } else {
        ""
    };
    let moto = moto_url();
    let script = format!(
        "import boto3\nsqs = boto3.client('sqs', region_name='us-east-1', endpoint_url='{moto}', aws_access_key_id='testing', aws_secret_access_key='testing')\nprint(sqs.create_queue(QueueName='{name}', Attributes={{'VisibilityTimeout': '{visibility}'{fifo}}})['QueueUrl'])"
    );
    let out = Command::new(venv_python())
        .args(["-c", &script])
        .output()
        .expect("run python");
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}

/// What the event source mapping emulator (`tests/esm.py`) did delivering `queue_url` to
/// `binary` (its environment as [`invoke_within`]'s, with `env` on top) until the queue stayed
/// empty: one line per invocation, then the summary.
pub struct Delivered {
    pub invocations: Vec<Value>,
    pub summary: Value,
    pub output: Output,
}

pub fn deliver(
    binary: &str,
    queue_url: &str,
    env: &[(&str, &str)],
    timeout_seconds: u32,
    max_seconds: u32,
) -> Delivered {
    let moto = moto_url();
    let mut command = Command::new(venv_python());
    command
        .arg(root().join("tests/esm.py"))
        .arg(binary)
        .args([
            "--queue-url",
            queue_url,
            "--endpoint-url",
            moto,
            "--region",
            "us-east-1",
        ])
        .args(["--timeout", &timeout_seconds.to_string()])
        .args([
            "--max-time",
            &max_seconds.to_string(),
            "--idle",
            "2",
            "--wait",
            "1",
        ])
        .env("AWS_ENDPOINT_URL", moto)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("TAG_PREFIX", "binarytest");
    for (k, v) in env {
        command.args(["--env", &format!("{k}={v}")]);
    }
    let output = command.output().expect("run tests/esm.py");
    let mut lines: Vec<Value> = text(&output.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let summary = match lines.pop() {
        Some(last) if last.get("summary").is_some() => last["summary"].clone(),
        _ => panic!("no summary from esm.py; stderr: {}", text(&output.stderr)),
    };
    Delivered {
        invocations: lines,
        summary,
        output,
    }
}
