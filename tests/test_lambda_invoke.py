"""Tests for tests/lambda_invoke.py against a tiny fake runtime client written
in Python that speaks the Lambda Runtime API loop like the Rust
`lambda_runtime` crate does (keep-alive connection, /next, /response, /error,
/init/error) and echoes the event with its process id (which sandbox ran it).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from lambda_invoke import EmulatorError, Function, invoke  # noqa: E402

SCRIPT = Path(__file__).with_name("lambda_invoke.py")

FAKE_RUNTIME = r'''
import http.client, json, os, sys, time

# Like lambda_runtime 1.x: these must be set, or the runtime cannot start.
for var in ("AWS_LAMBDA_RUNTIME_API", "AWS_LAMBDA_FUNCTION_NAME",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION"):
    if var not in os.environ:
        print(f"missing {var}", file=sys.stderr)
        sys.exit(4)
host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
conn = http.client.HTTPConnection(host, int(port))  # one kept-alive connection
base = "/2018-06-01/runtime"

def post(path, body, chunked=False, headers=None):
    data = json.dumps(body).encode()
    if chunked:
        conn.request("POST", base + path, body=iter([data[:5], data[5:]]), encode_chunked=True,
                     headers=dict(headers or {}, **{"Transfer-Encoding": "chunked"}))
    else:
        conn.request("POST", base + path, body=data, headers=headers or {})
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 202, resp.status

if os.environ.get("FAKE_INIT_ERROR"):
    post("/init/error", {"errorType": "Runtime.InitError", "errorMessage": "no config"},
         headers={"Lambda-Runtime-Function-Error-Type": "Runtime.InitError"})
    sys.exit(1)

time.sleep(float(os.environ.get("FAKE_INIT_SLEEP", "0")))
print("fake runtime started", file=sys.stderr, flush=True)
while True:
    conn.request("GET", base + "/invocation/next")
    resp = conn.getresponse()
    event = json.loads(resp.read())
    rid = resp.getheader("Lambda-Runtime-Aws-Request-Id")
    print(f"handling {rid}", flush=True)  # the function's stdout: a log line
    if event.get("crash"):
        sys.exit(3)
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("fail"):
        post(f"/invocation/{rid}/error", {"errorType": "BackupError", "errorMessage": "instance not found"},
             headers={"Lambda-Runtime-Function-Error-Type": "unhandled"})
        continue
    post(f"/invocation/{rid}/response", {
        "echo": event,
        "request_id": rid,
        "pid": os.getpid(),
        "deadline_ms": int(resp.getheader("Lambda-Runtime-Deadline-Ms")),
        "arn": resp.getheader("Lambda-Runtime-Invoked-Function-Arn"),
        "trace_id": resp.getheader("Lambda-Runtime-Trace-Id"),
        "env": {k: os.environ.get(k) for k in ("AWS_LAMBDA_FUNCTION_NAME", "AWS_REGION", "FOO",
                                               "AWS_LAMBDA_LOG_GROUP_NAME")},
    }, chunked=bool(event.get("chunked")))
'''


@pytest.fixture
def fake(tmp_path) -> str:
    path = tmp_path / "fake-backup-fn"
    path.write_text(f"#!{sys.executable}\n{FAKE_RUNTIME}")
    path.chmod(0o755)
    return str(path)


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout)


def test_invoke_library_echoes_events_with_stats(fake):
    logs = io.StringIO()
    results, stats = invoke(fake, [{"n": 1}, '{"n": 2}', {"n": 3, "chunked": True}],
                            env={"FOO": "bar", "AWS_REGION": "eu-west-1"}, logs=logs)
    assert [r["ok"] for r in results] == [True, True, True]
    assert [r["response"]["echo"]["n"] for r in results] == [1, 2, 3]
    first = results[0]["response"]
    assert first["request_id"] == results[0]["request_id"]
    assert first["arn"] == "arn:aws:lambda:eu-west-1:123456789012:function:fake-backup-fn"
    assert first["trace_id"].startswith("Root=1-")
    assert first["deadline_ms"] > 0
    assert first["env"] == {"AWS_LAMBDA_FUNCTION_NAME": "fake-backup-fn", "AWS_REGION": "eu-west-1",
                            "FOO": "bar", "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/fake-backup-fn"}
    assert len({r["request_id"] for r in results}) == 3
    assert stats["cold_start_ms"] > 0
    assert len(stats["invoke_ms"]) == 3 and all(ms >= 0 for ms in stats["invoke_ms"])
    assert stats["cpu_user_ms"] >= 0 and stats["cpu_sys_ms"] >= 0
    assert stats["max_rss_kib"] > 1000  # a Python interpreter
    assert "fake runtime started" in logs.getvalue() and "handling" in logs.getvalue()


def test_invoke_library_reports_function_errors(fake):
    results, _ = invoke(fake, [{"fail": True}, {"n": 2}], logs=io.StringIO())
    assert results[0]["ok"] is False
    assert results[0]["error"] == {"errorType": "BackupError", "errorMessage": "instance not found"}
    assert results[1]["ok"] is True


def test_invoke_library_raises_on_crash(fake):
    with pytest.raises(EmulatorError, match="exited with code 3") as exc:
        invoke(fake, [{"n": 1}, {"crash": True}, {"n": 3}], logs=io.StringIO())
    assert len(exc.value.results) == 1 and exc.value.stats["max_rss_kib"] > 0


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_an_invocation_past_its_deadline_is_killed_reported_as_lambda_does_and_the_next_starts_cold(fake):
    # GIVEN a function with a 1.5 s timeout, WHEN its second event sleeps past the deadline
    started = time.monotonic()
    results, stats = invoke(fake, [{"n": 1}, {"sleep": 30}, {"n": 3}], timeout=1.5, logs=io.StringIO())
    # THEN the emulator did not wait for it,
    assert time.monotonic() - started < 15
    # the invocation is Lambda's timeout error,
    assert results[1] == {"ok": False, "request_id": results[1]["request_id"], "error": {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {results[1]['request_id']} Error: Task timed out after 1.50 seconds"}}
    assert 1500 <= stats["invoke_ms"][1] < 5000
    # its sandbox was killed,
    first, second = stats["sandboxes"]
    assert first["pid"] == results[0]["response"]["pid"]
    assert (first["end"], first["exit"], first["invocations"]) == ("timeout", "killed by signal 9", 2)
    assert _gone(first["pid"])
    # and the next event ran in a new process, a cold start of its own.
    assert results[2]["ok"] is True and results[2]["response"]["echo"] == {"n": 3}
    assert results[2]["response"]["pid"] == second["pid"] != first["pid"]
    assert (second["end"], second["invocations"]) == ("shutdown", 1)
    assert first["cold_start_ms"] > 0 and second["cold_start_ms"] > 0
    assert stats["cold_start_ms"] == first["cold_start_ms"]
    assert stats["max_rss_kib"] == max(first["max_rss_kib"], second["max_rss_kib"])


def test_an_invocation_inside_its_deadline_is_unaffected(fake):
    before_ms = time.time() * 1000
    results, stats = invoke(fake, [{"sleep": 0.5}, {"n": 2}], timeout=3, logs=io.StringIO())
    assert [r["ok"] for r in results] == [True, True]
    # The deadline handed out is the timeout from now.
    assert 3000 <= results[0]["response"]["deadline_ms"] - before_ms < 4000
    # One warm sandbox for both.
    assert results[0]["response"]["pid"] == results[1]["response"]["pid"]
    assert [s["end"] for s in stats["sandboxes"]] == ["shutdown"]


def test_a_function_keeps_its_sandbox_warm_between_events_fed_one_by_one(fake):
    with Function(fake, timeout=1, logs=io.StringIO()) as function:
        first = function.invoke({"n": 1})
        second = function.invoke('{"n": 2}')
        timed_out = function.invoke({"sleep": 30})
        after = function.invoke({"n": 4})
    assert first["response"]["pid"] == second["response"]["pid"] != after["response"]["pid"]
    assert timed_out["error"]["errorType"] == "Sandbox.Timedout"
    stats = function.stats()
    assert [(s["end"], s["invocations"]) for s in stats["sandboxes"]] == [("timeout", 3), ("shutdown", 1)]
    assert len(stats["invoke_ms"]) == 4
    assert all(_gone(s["pid"]) for s in stats["sandboxes"])


def test_cli_success_with_stats_and_log_file(fake, tmp_path):
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"source": "aws.events", "detail": {}}))
    log = tmp_path / "fn.log"
    proc = run_cli(fake, "--event", str(event), "--payload", '{"n": 2}', "--env", "FOO=baz",
                   "--stats", "--logs", str(log))
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert lines[0]["event"] == str(event) and lines[0]["ok"] is True
    assert lines[0]["response"]["echo"] == {"source": "aws.events", "detail": {}}
    assert lines[0]["response"]["env"]["FOO"] == "baz"
    assert lines[1]["event"] == "<payload 2>" and lines[1]["response"]["echo"] == {"n": 2}
    stats = lines[2]["stats"]
    assert set(stats) == {"cold_start_ms", "invoke_ms", "cpu_user_ms", "cpu_sys_ms", "max_rss_kib", "sandboxes"}
    assert [s["end"] for s in stats["sandboxes"]] == ["shutdown"]
    assert len(stats["invoke_ms"]) == 2
    assert "fake runtime started" in log.read_text() and "fake runtime" not in proc.stderr


def test_cli_function_error_exits_1(fake):
    proc = run_cli(fake, "--payload", '{"fail": true}', "--payload", '{"n": 2}')
    assert proc.returncode == 1
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert lines[0]["ok"] is False and lines[0]["error"]["errorType"] == "BackupError"
    assert lines[1]["ok"] is True
    assert "fake runtime started" in proc.stderr  # the binary's logs go to stderr by default


def test_cli_crash_exits_2(fake):
    proc = run_cli(fake, "--payload", '{"crash": true}')
    assert proc.returncode == 2
    assert "exited with code 3" in proc.stderr


def test_cli_timeout_is_a_function_error_reported_as_lambda_does(fake):
    proc = run_cli(fake, "--payload", '{"sleep": 30}', "--payload", '{"n": 2}', "--timeout", "1", timeout=20)
    assert proc.returncode == 1, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert lines[0]["ok"] is False and lines[0]["error"]["errorType"] == "Sandbox.Timedout"
    assert lines[0]["error"]["errorMessage"].endswith(" Error: Task timed out after 1.00 seconds")
    assert lines[1]["ok"] is True  # in a new sandbox
    assert proc.stderr.count("fake runtime started") == 2


def test_cli_start_up_past_the_init_timeout_exits_2(fake):
    proc = run_cli(fake, "--payload", "{}", "--env", "FAKE_INIT_SLEEP=30", "--init-timeout", "1", timeout=20)
    assert proc.returncode == 2
    assert "timed out after 1.0s while starting" in proc.stderr


def test_cli_init_error_exits_2(fake):
    proc = run_cli(fake, "--payload", "{}", "--env", "FAKE_INIT_ERROR=1")
    assert proc.returncode == 2
    assert "init error" in proc.stderr and "no config" in proc.stderr


def test_cli_bad_arguments_exit_2(fake, tmp_path):
    assert run_cli(fake).returncode == 2  # no event
    assert run_cli(fake, "--payload", "{not json").returncode == 2
    assert run_cli(str(tmp_path / "missing"), "--payload", "{}").returncode == 2
