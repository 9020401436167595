"""Tests for tests/esm.py: an SQS queue of the patched moto server delivered to a fake function,
a Python script on the Lambda Runtime API whose answers the message bodies dictate, as Lambda's
event source mapping with ReportBatchItemFailures would deliver it.

The fake's answer is {"batchItemFailures": [...], "seen": [...], "records": [...], "pid": ...}:
the extra fields (what it saw, when, in which process) are ignored by the mapping, as it
ignores the extra fields the real functions return.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from esm import MappingError, batch_item_failures, deliver  # noqa: E402
from moto_process import running_moto  # noqa: E402

SCRIPT = Path(__file__).with_name("esm.py")

# A body is JSON telling the fake what to do with its record, by the record's receive count:
#   {"fail": true}            listed in batchItemFailures, every time
#   {"fail_receives": k}      listed while received k times or fewer
#   {"raise_receives": k}     the invocation fails (an error) while received k times or fewer
#   {"sleep_receives": k}     the invocation sleeps past its deadline while received k times or fewer
#   {"answer_receives": k, "answer": X}   answers X instead while received k times or fewer
# With FAKE_FIFO=1 it lists every record after its first failure, as FIFO consumers must.
FAKE_SQS_FUNCTION = r'''
import http.client, json, os, sys, time

host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
conn = http.client.HTTPConnection(host, int(port))
base = "/2018-06-01/runtime"

def post(path, body):
    conn.request("POST", base + path, body=json.dumps(body).encode())
    resp = conn.getresponse()
    resp.read()

while True:
    conn.request("GET", base + "/invocation/next")
    resp = conn.getresponse()
    event = json.loads(resp.read())
    rid = resp.getheader("Lambda-Runtime-Aws-Request-Id")
    records = event["Records"]
    commands = [json.loads(r["body"]) for r in records]
    receives = [int(r["attributes"]["ApproximateReceiveCount"]) for r in records]
    now = lambda key: any(n <= c.get(key, 0) for c, n in zip(commands, receives))
    if now("raise_receives"):
        post(f"/invocation/{rid}/error", {"errorType": "FakeError", "errorMessage": "told to fail"})
        continue
    if now("sleep_receives"):
        time.sleep(60)
    answer = [c["answer"] for c, n in zip(commands, receives) if n <= c.get("answer_receives", 0)]
    if answer:
        post(f"/invocation/{rid}/response", answer[0])
        continue
    failures, failing = [], False
    for record, command, n in zip(records, commands, receives):
        failing = (failing and os.environ.get("FAKE_FIFO") == "1") or command.get("fail") \
            or n <= command.get("fail_receives", 0)
        if failing:
            failures.append({"itemIdentifier": record["messageId"]})
    post(f"/invocation/{rid}/response", {
        "batchItemFailures": failures,
        "seen": [{"messageId": r["messageId"], "body": r["body"], "receives": n, "at": time.time()}
                 for r, n in zip(records, receives)],
        "records": records,
        "pid": os.getpid(),
    })
'''


@pytest.fixture(scope="session")
def moto_url(tmp_path_factory):
    with running_moto(tmp_path_factory.mktemp("moto")) as url:
        yield url


@pytest.fixture
def sqs(moto_url):
    """A client for us-east-1, once moto has been reset."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST")).read()
    return boto3.client("sqs", region_name="us-east-1", endpoint_url=moto_url,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture
def fake(tmp_path) -> str:
    path = tmp_path / "fake-sqs-fn"
    path.write_text(f"#!{sys.executable}\n{FAKE_SQS_FUNCTION}")
    path.chmod(0o755)
    return str(path)


@pytest.fixture
def run(fake, moto_url):
    """deliver() against the moto server with the fake, quick settings, and `overrides`
    (`env` on top of the credentials)."""
    def go(queue_url: str, **overrides):
        env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", **overrides.pop("env", {})}
        settings = dict(env=env, endpoint_url=moto_url, region="us-east-1", timeout=1, idle=1, max_time=60,
                        logs=io.StringIO())
        settings.update(overrides)
        return deliver(fake, queue_url, **settings)
    return go


def make_queue(sqs, name: str, visibility: int = 1, max_receives: int | None = None,
               **attributes: str) -> tuple[str, str | None]:
    """A queue (FIFO if the name ends in .fifo), with a dead-letter queue if `max_receives`."""
    fifo = {"FifoQueue": "true", "ContentBasedDeduplication": "true"} if name.endswith(".fifo") else {}
    dlq = None
    if max_receives is not None:
        dlq = sqs.create_queue(QueueName=name.replace(".fifo", "") + "-dlq" + (".fifo" if fifo else ""),
                               Attributes=fifo)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        attributes["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": max_receives})
    url = sqs.create_queue(QueueName=name, Attributes={**fifo, "VisibilityTimeout": str(visibility),
                                                       **attributes})["QueueUrl"]
    return url, dlq


def send(sqs, queue: str, command: dict, **kwargs) -> str:
    return sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(command), **kwargs)["MessageId"]


def drain(sqs, queue: str) -> list[dict]:
    """Everything a queue still holds (received with a long visibility timeout)."""
    out = []
    while True:
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=60,
                                  WaitTimeSeconds=0).get("Messages", [])
        if not got:
            return out
        out += got


def deliveries(summary: dict) -> dict[str, int]:
    """How many times each messageId was delivered."""
    counts: dict[str, int] = {}
    for result in summary["results"]:
        for message_id in result["records"]:
            counts[message_id] = counts.get(message_id, 0) + 1
    return counts


def seen(summary: dict, succeeded: bool = False) -> list[dict]:
    """Every record the fake saw in an invocation it answered (only those it did not list as
    failed, if `succeeded`), in the order it saw them."""
    out = [s for r in summary["results"] if r["ok"] for s in (r["response"] or {}).get("seen", [])
           if not (succeeded and s["messageId"] in r["failed"])]
    return sorted(out, key=lambda s: s["at"])


# ---------------------------------------------------------------- the records


def test_records_are_built_as_lambda_builds_them(sqs, run):
    queue, _ = make_queue(sqs, "shapes")
    body = json.dumps({"continuation": 1, "deployment": "ec2-backup", "work": {"ids": ["i-1"]}})
    message_id = sqs.send_message(QueueUrl=queue, MessageBody=body, MessageAttributes={
        "kind": {"DataType": "String", "StringValue": "continuation"},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
    })["MessageId"]
    summary = run(queue)
    (record,) = summary["results"][0]["response"]["records"]
    assert list(record) == ["messageId", "receiptHandle", "body", "attributes", "messageAttributes",
                            "md5OfBody", "md5OfMessageAttributes", "eventSource", "eventSourceARN",
                            "awsRegion"]
    assert record["messageId"] == message_id and record["receiptHandle"]
    assert record["body"] == body  # untouched
    assert list(record["attributes"]) == ["ApproximateReceiveCount", "SentTimestamp", "SenderId",
                                          "ApproximateFirstReceiveTimestamp"]
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert int(record["attributes"]["SentTimestamp"]) <= int(record["attributes"]["ApproximateFirstReceiveTimestamp"])
    assert record["messageAttributes"] == {
        "kind": {"stringValue": "continuation", "stringListValues": [], "binaryListValues": [], "dataType": "String"},
        "blob": {"binaryValue": base64.b64encode(b"\x00\x01").decode(), "stringListValues": [],
                 "binaryListValues": [], "dataType": "Binary"},
    }
    assert record["md5OfBody"] == hashlib.md5(body.encode()).hexdigest()
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == "arn:aws:sqs:us-east-1:123456789012:shapes"
    assert record["awsRegion"] == "us-east-1"
    assert (summary["deleted"], summary["failed"], summary["stopped"]) == (1, 0, "idle")
    assert drain(sqs, queue) == []


def test_fifo_records_carry_group_deduplication_id_and_sequence_number(sqs, run):
    queue, _ = make_queue(sqs, "shapes.fifo")
    sqs.send_message(QueueUrl=queue, MessageBody="{}", MessageGroupId="create-image")
    summary = run(queue)
    (record,) = summary["results"][0]["response"]["records"]
    attributes = record["attributes"]
    assert attributes["MessageGroupId"] == "create-image"
    assert attributes["MessageDeduplicationId"] == hashlib.sha256(b"{}").hexdigest()
    assert attributes["SequenceNumber"].isdigit()
    assert "messageAttributes" in record and record["messageAttributes"] == {}
    assert "md5OfMessageAttributes" not in record


# ---------------------------------------------------------------- the answers


@pytest.mark.parametrize("answer, failed", [
    (None, []),
    ("", []),
    ({}, []),
    ({"batchItemFailures": None}, []),
    ({"batchItemFailures": []}, []),
    ({"batchItemFailures": [{"itemIdentifier": "b"}], "remaining": 3}, ["b"]),
    ({"batchItemFailures": [{"itemIdentifier": "b"}, {"itemIdentifier": "b"}]}, ["b"]),
])
def test_answers_that_lambda_honours(answer, failed):
    assert batch_item_failures(answer, ["a", "b"]) == failed


@pytest.mark.parametrize("answer", [
    "not json",
    42,
    ["b"],
    {"batchItemFailures": {"itemIdentifier": "b"}},
    {"batchItemFailures": [{"itemIdentifier": ""}]},
    {"batchItemFailures": [{"itemIdentifier": None}]},
    {"batchItemFailures": [{"itemidentifier": "b"}]},
    {"batchItemFailures": [{"itemIdentifier": "unknown"}]},
    {"batchItemFailures": [{"itemIdentifier": 7}]},
    {"batchItemFailures": ["b"]},
])
def test_answers_that_lambda_counts_as_the_whole_batch_failed(answer):
    assert batch_item_failures(answer, ["a", "b"]) is None


# ---------------------------------------------------------------- delivery


def test_listed_failures_come_back_and_reach_the_dead_letter_queue_while_the_others_are_deleted_once(sqs, run):
    # GIVEN a queue that redrives after 3 receives, 6 records the function handles and 2 it
    # always lists as failed
    queue, dlq = make_queue(sqs, "work", visibility=1, max_receives=3)
    good = [send(sqs, queue, {"n": n}) for n in range(6)]
    bad = [send(sqs, queue, {"fail": True}) for _ in range(2)]
    # WHEN the mapping delivers the queue until it stays empty
    summary = run(queue)
    # THEN the good ones were delivered and deleted once,
    counts = deliveries(summary)
    assert {m: counts[m] for m in good} == {m: 1 for m in good}
    assert summary["deleted"] == 6
    # the failed ones came back after the visibility timeout, three times, then went to the
    # dead-letter queue,
    assert {m: counts[m] for m in bad} == {m: 3 for m in bad}
    assert sorted(m["MessageId"] for m in drain(sqs, dlq)) == sorted(bad)
    assert drain(sqs, queue) == []
    assert [s["receives"] for s in seen(summary) if s["messageId"] == bad[0]] == [1, 2, 3]
    assert (summary["records"], summary["failed"], summary["errors"]) == (12, 6, 0)
    assert {r["outcome"] for r in summary["results"]} == {"partial"}
    # and one warm sandbox served every batch.
    assert len(summary["stats"]["sandboxes"]) == 1
    assert {r["response"]["pid"] for r in summary["results"]} == {summary["stats"]["sandboxes"][0]["pid"]}
    assert summary["stopped"] == "idle"


def test_an_invocation_error_leaves_the_whole_batch_which_is_delivered_again(sqs, run):
    queue, _ = make_queue(sqs, "errors", visibility=1)
    ids = [send(sqs, queue, {"n": 0}), send(sqs, queue, {"raise_receives": 1}), send(sqs, queue, {"n": 2})]
    summary = run(queue)
    first, second = summary["results"]
    assert first["outcome"] == "error" and first["error"]["errorType"] == "FakeError"
    assert (sorted(first["records"]), first["failed"] == first["records"], first["deleted"]) == (sorted(ids), True, 0)
    assert second["outcome"] == "success" and sorted(second["records"]) == sorted(ids)
    assert second["deleted"] == 3
    assert (summary["errors"], summary["records"], summary["deleted"], summary["failed"]) == (1, 6, 3, 3)
    assert drain(sqs, queue) == []


def test_a_timeout_kills_the_sandbox_leaves_the_batch_and_the_next_batch_starts_cold(sqs, run):
    queue, _ = make_queue(sqs, "slow", visibility=2)
    message_id = send(sqs, queue, {"sleep_receives": 1})
    summary = run(queue, timeout=1.5)
    first, second = summary["results"]
    assert first["outcome"] == "timeout" and first["error"] == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {first['request_id']} Error: Task timed out after 1.50 seconds"}
    assert first["deleted"] == 0 and first["failed"] == [message_id]
    assert second["outcome"] == "success" and second["deleted"] == 1
    killed, fresh = summary["stats"]["sandboxes"]
    assert (killed["end"], killed["exit"]) == ("timeout", "killed by signal 9")
    assert second["response"]["pid"] == fresh["pid"] != killed["pid"]
    assert (summary["timeouts"], summary["errors"]) == (1, 1)


def test_an_invalid_answer_counts_as_the_whole_batch_failed(sqs, run):
    queue, _ = make_queue(sqs, "invalid", visibility=1)
    ids = [send(sqs, queue, {"n": 0}),
           send(sqs, queue, {"answer_receives": 1, "answer": {"batchItemFailures": [{"itemIdentifier": "nope"}]}})]
    summary = run(queue)
    # (SQS may hand the two out in one batch or in two: the invalid answer fails its whole batch.)
    invalid = [r for r in summary["results"] if r["outcome"] == "invalid_response"]
    assert len(invalid) == 1 and invalid[0]["deleted"] == 0
    assert ids[1] in invalid[0]["records"]
    assert sorted(invalid[0]["failed"]) == sorted(invalid[0]["records"])
    assert summary["results"][-1]["outcome"] == "success"
    assert summary["deleted"] == 2
    assert summary["invalid_responses"] == 1


def test_fifo_delivers_each_group_in_order_with_one_batch_in_flight_per_group(sqs, run):
    # GIVEN a FIFO queue with two groups, a2 failing on its first receive; two pollers
    queue, _ = make_queue(sqs, "work.fifo", visibility=1)
    numbers = {}
    for n in range(5):
        for group in "ab":
            command = {"fail_receives": 1} if (group, n) == ("a", 2) else {}
            message_id = send(sqs, queue, dict(command, name=f"{group}{n}"), MessageGroupId=group)
            numbers[message_id] = f"{group}{n}"
    # WHEN it is delivered in batches of 3, the fake listing every record after a failure
    summary = run(queue, batch_size=3, max_concurrency=2, env={"FAKE_FIFO": "1"})
    # THEN each group's records were handled successfully exactly once, in order,
    handled = [numbers[s["messageId"]] for s in seen(summary, succeeded=True)]
    assert [h for h in handled if h[0] == "a"] == ["a0", "a1", "a2", "a3", "a4"]
    assert [h for h in handled if h[0] == "b"] == ["b0", "b1", "b2", "b3", "b4"]
    a2 = next(m for m, name in numbers.items() if name == "a2")
    assert [s["receives"] for s in seen(summary) if s["messageId"] == a2] == [1, 2]
    # each batch was in its group's order,
    for result in summary["results"]:
        names = [numbers[m] for m in result["records"]]
        for group in "ab":
            in_group = [int(n[1]) for n in names if n[0] == group]
            assert in_group == sorted(in_group), names
    # and no two batches holding the same group were in flight at once.
    spans = [(r["started"], r["started"] + r["ms"] / 1000, {numbers[m][0] for m in r["records"]})
             for r in summary["results"]]
    for i, (start, end, groups) in enumerate(spans):
        for other_start, other_end, other_groups in spans[i + 1:]:
            if start < other_end and other_start < end:
                assert not groups & other_groups, summary["results"]
    assert summary["deleted"] == 10 and drain(sqs, queue) == []


def test_a_delayed_message_is_delivered_only_after_its_delay(sqs, run):
    queue, _ = make_queue(sqs, "delayed")
    sent = time.time()
    now_id = send(sqs, queue, {"n": 0})
    later_id = send(sqs, queue, {"n": 1}, DelaySeconds=3)
    summary = run(queue)
    at = {s["messageId"]: s["at"] for s in seen(summary)}
    assert at[later_id] - sent >= 3
    assert at[now_id] - sent < 3  # the other one did not wait for it
    assert [r["records"] for r in summary["results"]] == [[now_id], [later_id]]
    assert (summary["deleted"], summary["stopped"]) == (2, "idle")


def test_a_queue_that_never_drains_stops_at_max_time(sqs, run):
    queue, _ = make_queue(sqs, "forever", visibility=1)
    send(sqs, queue, {"fail": True})
    started = time.monotonic()
    summary = run(queue, max_time=3)
    assert summary["stopped"] == "max_time"
    assert time.monotonic() - started < 3 + 2 + 1  # at most one invocation's timeout past it
    assert summary["deleted"] == 0 and summary["failed"] == summary["records"] >= 2


def test_settings_lambda_refuses_are_refused(sqs, run):
    queue, _ = make_queue(sqs, "settings", visibility=30)
    with pytest.raises(ValueError, match="visibility timeout: 30 seconds is less than Function timeout: 60"):
        run(queue, timeout=60)
    with pytest.raises(ValueError, match="batching window"):
        run(queue, batch_size=100)
    fifo, _ = make_queue(sqs, "settings.fifo", visibility=30)
    with pytest.raises(ValueError, match="1 to 10"):
        run(fifo, batch_size=11, batching_window=1)


def test_a_crash_raises_with_the_summary_so_far(sqs, run, tmp_path):
    queue, _ = make_queue(sqs, "crash")
    send(sqs, queue, {"n": 0})
    crasher = tmp_path / "crasher"
    crasher.write_text(f"#!{sys.executable}\nimport sys\nsys.exit(3)\n")
    crasher.chmod(0o755)
    with pytest.raises(MappingError, match="exited with code 3") as exc:
        deliver(str(crasher), queue, endpoint_url=sqs.meta.endpoint_url, region="us-east-1",
                env={"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"},
                timeout=1, idle=1, logs=io.StringIO())
    assert exc.value.summary["invocations"] == 0


# ---------------------------------------------------------------- the CLI


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "AWS_ACCESS_KEY_ID": "testing",
                               "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"})


def test_cli_prints_one_line_per_invocation_then_the_summary(sqs, fake, moto_url):
    queue, _ = make_queue(sqs, "cli", visibility=1)
    send(sqs, queue, {"n": 0})
    proc = run_cli(fake, "--queue-url", queue, "--endpoint-url", moto_url, "--timeout", "1", "--idle", "1")
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert lines[0]["invocation"] == 0 and lines[0]["outcome"] == "success"
    summary = lines[-1]["summary"]
    assert (summary["invocations"], summary["deleted"], summary["failed"]) == (1, 1, 0)
    assert "results" not in summary and summary["stats"]["max_rss_kib"] > 0


def test_cli_exits_1_when_records_failed_and_2_on_bad_arguments(sqs, fake, moto_url):
    queue, _ = make_queue(sqs, "cli-fail", visibility=1, max_receives=1)
    send(sqs, queue, {"fail": True})
    proc = run_cli(fake, "--queue-url", queue, "--endpoint-url", moto_url, "--timeout", "1", "--idle", "1")
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1])["summary"]["failed"] == 1
    assert run_cli(fake).returncode == 2  # no queue
    assert run_cli(fake, "--queue-url", queue, "--endpoint-url", moto_url, "--timeout", "5").returncode == 2
    assert run_cli(fake, "--queue-url", queue, "--endpoint-url", moto_url, "--env", "NOEQUALS").returncode == 2
