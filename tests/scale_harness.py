"""Scale runs of the real function binaries against the moto server, shared by the scale tests
(tests/test_scale.py, about 1,000 resources each) and the benchmark (bench/scale, up to 10,000).

A run seeds N resources with the uncounted key (tests/moto_server.py: seeding neither counts,
faults nor throttles), sets the server's buckets to EC2's figures times a factor F and the
function's pace (EC2_RATE_LIMITS) to its default share of them times F, then drives the binary
as Lambda would: the first event through a sandbox of the Lambda emulator
(tests/lambda_invoke.py), the continuations through the function's own work queue and the
event source mapping emulator (tests/esm.py), with the template's mapping settings (replicate's
events too: its rules put them on its queue). Then it
reads back what EC2 holds and says what is missing, duplicated, failed or dead-lettered.

    from scale_harness import Server, run_create, run_replicate, run_expire
    server = Server(url)
    run = run_create(server, binary("create-image"), n=1000, factor=4, timeout=20)
    run.problems()   # [] when every resource has exactly one backup and nothing failed

`Run.row()` is what bench/scale prints: the bucket-limited ideal (N - burst) / rate at the
function's pace and at EC2's own figures, the time taken, their ratio, throttled answers,
invocations, peak RSS, failures and duplicates.
"""

from __future__ import annotations

import collections
import concurrent.futures
import json
import math
import os
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import boto3
from botocore.config import Config as BotoConfig

from esm import deliver
from lambda_invoke import Function

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
HOME = "us-east-1"
DR = "us-west-2"
PREFIX = "backup"  # the functions' default TAG_PREFIX
DEPLOYMENT = "ec2-backup"  # and DEPLOYMENT_NAME
# The share of each of EC2's buckets the functions take by default (shared/src/pacing.rs).
DEFAULT_SHARE = 0.8
# The actions the functions pace (shared/src/pacing.rs: EC2_RATE_LIMITS names only these).
PACED = ("CreateImage", "CopySnapshot", "CreateSnapshot", "CopyImage", "DeregisterImage", "DeleteSnapshot",
         "CreateTags", "DescribeInstances", "DescribeVolumes", "DescribeImages", "DescribeSnapshots")
# The action whose bucket bounds each function's run.
PACING_ACTION = {"create-image": "CreateImage", "create-snapshot": "CreateSnapshot",
                 "replicate": "CopyImage", "expire": "DeregisterImage"}
# The event source mappings of infra/template.yaml, and its visibility timeout of six times the
# function's timeout (5,400 s for 900 s), with a redrive after 5 receives.
MAPPINGS = {
    "create-image": dict(batch_size=1, max_concurrency=1),
    "create-snapshot": dict(batch_size=1, max_concurrency=1),
    "replicate": dict(batch_size=100, batching_window=5, max_concurrency=2),
    "expire": dict(batch_size=1, max_concurrency=2),
}
MAX_RECEIVES = 5


def binary(name: str) -> Path:
    """The debug binary of `name` where `cargo test --workspace --all-targets` builds it."""
    target = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
    return target / "debug" / name


def utc(at: datetime) -> str:
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Server:
    """The moto server at `url`: its test endpoints and clients."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")

    def http(self, method: str, path: str, payload: Any = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        if method == "POST" and data is None:
            data = b""
        req = urllib.request.Request(self.url + path, method=method, data=data,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as resp:
            body = resp.read()
        return json.loads(body) if body.strip().startswith((b"{", b"[")) else body

    def reset(self) -> None:
        self.http("POST", "/moto-api/reset")

    def ec2_buckets(self) -> dict[str, tuple[float, float]]:
        """EC2's own figures, {action: (burst, rate)}, as the server holds them at scale 1."""
        table = self.http("POST", "/_test/buckets", {"scale": 1})["buckets"]
        return {a: (b["burst"], b["rate"]) for a, b in table.items()}

    def scale_buckets(self, factor: float) -> None:
        self.http("POST", "/_test/buckets", {"scale": factor})

    def throttled(self) -> int:
        counts = self.http("GET", "/_test/buckets")["throttled"]
        return sum(n for per_region in counts.values() for n in per_region.values())

    def calls(self) -> dict[str, dict[str, int]]:
        return self.http("GET", "/_test/calls")

    def fault(self, spec: dict[str, Any]) -> None:
        self.http("POST", "/_test/faults", spec)

    def client(self, service: str, region: str = HOME, key: str = "uncounted") -> Any:
        """A client; the access key `uncounted` (the default) is neither counted nor
        throttled: seeding and checking must not change what a run measures."""
        return boto3.client(service, region_name=region, endpoint_url=self.url,
                            aws_access_key_id=key, aws_secret_access_key="testing",
                            config=BotoConfig(read_timeout=300, retries={"max_attempts": 2}))

    def function_env(self, factor: float, **extra: str) -> dict[str, str]:
        """The environment of a function on this server, paced to its default share of EC2's
        buckets times `factor`."""
        return {"AWS_ENDPOINT_URL": self.url, "AWS_REGION": HOME, "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing", "AWS_LAMBDA_LOG_LEVEL": "WARN", "RUST_LOG": "warn",
                "EC2_RATE_LIMITS": rate_limits(self.ec2_buckets(), factor), **extra}


def share(burst: float, rate: float, factor: float) -> tuple[int, float]:
    """The function's default (burst, rate) for one of EC2's buckets, times `factor`."""
    return max(1, math.floor(burst * DEFAULT_SHARE * factor)), rate * DEFAULT_SHARE * factor


def rate_limits(table: dict[str, tuple[float, float]], factor: float) -> str:
    """EC2_RATE_LIMITS (`Action=rate/burst,...`) for the default share times `factor`."""
    items = []
    for action, (burst, rate) in sorted(table.items()):
        if action not in PACED:
            continue
        b, r = share(burst, rate, factor)
        items.append(f"{action}={r:g}/{b}")
    return ",".join(items)


def ideal_seconds(n: int, burst: float, rate: float) -> float:
    """The bucket-limited time of n calls: (n - burst) / rate, never below 0."""
    return max(0.0, n - burst) / rate


def work_queue(server: Server, name: str, timeout: float, fifo: bool) -> tuple[str, str]:
    """A function's work queue as the template makes it (FIFO with content-based deduplication
    for the create functions; a visibility timeout of six times the function's timeout; a
    redrive to a dead-letter queue after MAX_RECEIVES): (its URL, the dead-letter queue's)."""
    sqs = server.client("sqs", key="testing")
    suffix = ".fifo" if fifo else ""
    dlq_attributes = {"FifoQueue": "true"} if fifo else {}
    dlq = sqs.create_queue(QueueName=f"{name}-dlq{suffix}", Attributes=dlq_attributes)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    attributes = {"VisibilityTimeout": str(math.ceil(timeout * 6)),
                  "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVES})}
    if fifo:
        attributes.update({"FifoQueue": "true", "ContentBasedDeduplication": "true"})
    url = sqs.create_queue(QueueName=name + suffix, Attributes=attributes)["QueueUrl"]
    return url, dlq


def queue_depth(server: Server, url: str) -> int:
    attributes = server.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed"])["Attributes"]
    return sum(int(v) for v in attributes.values())


# ---------------------------------------------------------------- seeding


def seed_instances(server: Server, n: int, tags: dict[str, str] | None = None) -> list[str]:
    """n running instances that opt in (`Backup=true`), in reservations of up to 500."""
    ec2 = server.client("ec2")
    tags = {"Backup": "true", **(tags or {})}
    ids: list[str] = []
    while len(ids) < n:
        count = min(500, n - len(ids))
        out = ec2.run_instances(ImageId="ami-12345678", InstanceType="t3.micro", MinCount=count, MaxCount=count,
                                TagSpecifications=[{"ResourceType": "instance",
                                                    "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}])
        ids += [i["InstanceId"] for i in out["Instances"]]
    return ids


def _parallel(n: int, one: Callable[[int], str], workers: int = 4) -> list[str]:
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, range(n)))


def seed_volumes(server: Server, n: int) -> list[str]:
    """n available volumes that opt in."""
    local = threading.local()

    def one(i: int) -> str:
        if not hasattr(local, "ec2"):
            local.ec2 = server.client("ec2")
        return local.ec2.create_volume(AvailabilityZone=f"{HOME}a", Size=8, TagSpecifications=[{
            "ResourceType": "volume", "Tags": [{"Key": "Backup", "Value": "true"}, {"Key": "Name", "Value": f"v{i}"}]}])["VolumeId"]

    return _parallel(n, one)


def backup_tags(source: str, created: datetime, expires: datetime, copy_to: str = "") -> dict[str, str]:
    """The tags create-image writes on an AMI and its snapshots (docs/tags.md)."""
    return {f"{PREFIX}:managed-by": DEPLOYMENT, f"{PREFIX}:kind": "image", f"{PREFIX}:source": source,
            f"{PREFIX}:source-region": HOME, f"{PREFIX}:created-at": utc(created),
            f"{PREFIX}:expires-at": utc(expires), f"{PREFIX}:copy-to": copy_to,
            f"{PREFIX}:copy-retention": "7d", "Name": f"web-{source}"}


def seed_images(server: Server, n: int, created: datetime, expires: datetime, copy_to: str = "") -> list[str]:
    """n AMIs of ours (one per instance, each with its root snapshot), tagged as create-image
    tags them, the snapshots too."""
    instances = seed_instances(server, n, {"Backup": "false"})
    local = threading.local()

    def one(i: int) -> str:
        if not hasattr(local, "ec2"):
            local.ec2 = server.client("ec2")
        tags = [{"Key": k, "Value": v} for k, v in backup_tags(instances[i], created, expires, copy_to).items()]
        return local.ec2.create_image(InstanceId=instances[i], Name=f"web-{instances[i]}-seed",
                                      TagSpecifications=[{"ResourceType": "image", "Tags": tags},
                                                         {"ResourceType": "snapshot", "Tags": tags}])["ImageId"]

    return _parallel(n, one)


# ---------------------------------------------------------------- reading back


def pages(client: Any, operation: str, key: str, **params: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for page in client.get_paginator(operation).paginate(**params, PaginationConfig={"PageSize": 1000}):
        out += page[key]
    return out


def tag(resource: dict[str, Any], key: str) -> str | None:
    return next((t["Value"] for t in resource.get("Tags", []) if t["Key"] == key), None)


def our_images(server: Server, region: str = HOME) -> list[dict[str, Any]]:
    return pages(server.client("ec2", region), "describe_images", "Images", Owners=["self"],
                 Filters=[{"Name": f"tag:{PREFIX}:managed-by", "Values": [DEPLOYMENT]}])


def our_snapshots(server: Server, region: str = HOME) -> list[dict[str, Any]]:
    return pages(server.client("ec2", region), "describe_snapshots", "Snapshots", OwnerIds=["self"],
                 Filters=[{"Name": f"tag:{PREFIX}:managed-by", "Values": [DEPLOYMENT]}])


def per_key(resources: list[dict[str, Any]], key: str) -> collections.Counter:
    return collections.Counter(tag(r, key) for r in resources)


# ---------------------------------------------------------------- a run


@dataclass
class Run:
    """What one run did and what EC2 holds after it."""
    function: str
    n: int
    factor: float
    timeout: float
    ideal_s: float  # (n - burst) / rate at the function's pace
    ec2_ideal_s: float  # the same at EC2's own figures, scaled
    seconds: float = 0.0  # from the first event to the end of the last invocation
    throttled: int = 0
    invocations: int = 0
    errors: int = 0  # invocations that failed or timed out
    timeouts: int = 0
    peak_rss_mib: float = 0.0
    failed: int = 0  # resources reported failed, records listed as batch item failures
    dead_lettered: int = 0
    missing: int = 0  # resources without their one backup, copy or deletion
    duplicates: int = 0
    continuations: int = 0
    deferred: int = 0
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        """The ideal at the function's pace over the time taken."""
        return self.ideal_s / self.seconds if self.seconds else 0.0

    @property
    def ec2_ratio(self) -> float:
        """The ideal at EC2's own (scaled) figures over the time taken: never above 1."""
        return self.ec2_ideal_s / self.seconds if self.seconds else 0.0

    def problems(self) -> list[str]:
        """What is wrong, in words; empty when the run did its work exactly once."""
        wrong = [f"{name}: {value}" for name, value in (
            ("failed", self.failed), ("invocation errors", self.errors), ("timeouts", self.timeouts),
            ("dead-lettered", self.dead_lettered), ("missing", self.missing),
            ("duplicates", self.duplicates)) if value]
        return wrong + self.notes

    def row(self) -> str:
        return (f"{self.function:<15} {self.n:>6} {self.factor:>4g} {self.timeout:>6.0f} {self.ideal_s:>8.1f} "
                f"{self.ec2_ideal_s:>8.1f} {self.seconds:>8.1f} {self.ratio:>6.2f} {self.ec2_ratio:>6.2f} {self.throttled:>6} "
                f"{self.invocations:>5} {self.peak_rss_mib:>7.1f} {self.failed:>6} {self.duplicates:>5}  "
                f"{'; '.join(self.problems()) or 'ok'}")

    HEADER = (f"{'function':<15} {'N':>6} {'F':>4} {'tmo s':>6} {'ideal s':>8} {'EC2 s':>8} {'took s':>8} "
              f"{'ratio':>6} {'vsEC2':>6} {'thrtl':>6} {'invs':>5} {'RSS MiB':>7} {'failed':>6} {'dups':>5}  problems")


def _new_run(server: Server, function: str, n: int, factor: float, timeout: float) -> Run:
    table = server.ec2_buckets()
    burst, rate = table[PACING_ACTION[function]]
    own_burst, own_rate = share(burst, rate, factor)
    return Run(function, n, factor, timeout, ideal_seconds(n, own_burst, own_rate),
               ideal_seconds(n, max(1.0, burst * factor), rate * factor))


def _sample(name: str, replacements: dict[str, str]) -> dict[str, Any]:
    text = (EVENTS / name).read_text()
    for old, new in replacements.items():
        text = text.replace(old, new)
    return json.loads(text)


def _record_counts(response: Any) -> list[dict[str, Any]]:
    """Each SQS record's result of an answer."""
    if not isinstance(response, dict):
        return []
    return [r for r in response.get("records", [])]


def _first_results(first: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The results of the directly invoked events: a success's response, or the result that
    a partial failure's error message carries (`...; result: {...}`)."""
    out = []
    for r in first:
        if r["ok"]:
            out.append(r["response"])
            continue
        message = str(r["error"].get("errorMessage", ""))
        _, found, rest = message.partition("result: ")
        if found:
            try:
                out.append(json.loads(rest))
            except ValueError:
                pass
    return out


def _mib(kib: int | None) -> float:
    return round((kib or 0) / 1024, 1)


class _Clock:
    """The end of the last invocation seen (epoch seconds)."""

    def __init__(self) -> None:
        self.last = time.time()

    def saw(self, started: float, ms: float) -> None:
        self.last = max(self.last, started + ms / 1000)


def _deliver(server: Server, function: str, binary_path: Path, queue: str, env: dict[str, str],
             timeout: float, max_time: float, clock: _Clock, logs: Any, idle: float = 3) -> dict[str, Any]:
    def seen(entry: dict[str, Any]) -> None:
        clock.saw(entry["started"], entry["ms"])

    return deliver(str(binary_path), queue, env=env, timeout=timeout, wait_seconds=1, idle=idle,
                   max_time=max_time, endpoint_url=server.url, region=HOME, logs=logs,
                   on_result=seen, **MAPPINGS[function])


def _settle(run: Run, server: Server, summary: dict[str, Any], dlq: str, first: list[dict[str, Any]],
            peaks: list[int | None]) -> list[dict[str, Any]]:
    """Counts what the mapping's summary and the first invocations say; returns every record
    result."""
    run.throttled = server.throttled()
    run.invocations = len(first) + summary["invocations"]
    run.errors = summary["errors"] + sum(not r["ok"] for r in first)
    run.timeouts = summary["timeouts"] + sum(r.get("error", {}).get("errorType") == "Sandbox.Timedout" for r in first)
    run.failed += summary["failed"]
    run.dead_lettered = queue_depth(server, dlq)
    run.peak_rss_mib = _mib(max([p for p in peaks + [summary["stats"]["max_rss_kib"]] if p] or [0]))
    records = [rec for entry in summary["results"] for rec in _record_counts(entry.get("response"))]
    # Each invocation through the queue: how long it took, and the sandbox it ran in.
    run.extra["invocations"] = [(entry["poller"], round(entry["ms"] / 1000, 1)) for entry in summary["results"]]
    run.extra["sandboxes"] = [(s["cold_start_ms"], _mib(s["max_rss_kib"]), s["invocations"], s["end"])
                              for s in summary["stats"]["sandboxes"]]
    for r in first:
        if not r["ok"]:
            run.notes.append(f"first invocation: {r['error'].get('errorType')}: {str(r['error'].get('errorMessage'))[:300]}")
    for rec in records:
        if not rec.get("ok"):
            run.notes.append(f"record {rec.get('messageId')}: {str(rec.get('error'))[:300]}")
    return records


def run_create(server: Server, binary_path: Path, n: int, factor: float, timeout: float,
               logs: Any = None, tag_change_after: float | None = None, max_time: float = 3600) -> Run:
    """create-image (instances) or create-snapshot (volumes, by the binary's name): n due
    resources, a scheduled event that hands the sweep to the FIFO work queue, the queue
    delivered until the sweep is done. With `tag_change_after`, that many seconds into the
    sweep a new instance opts in and its Tag Change event is invoked in a sandbox of its own;
    run.extra["tag_change"] says how long its backup took."""
    function = binary_path.name
    images = function == "create-image"
    server.reset()
    seeded = seed_instances(server, n, {"Name": "web"}) if images else seed_volumes(server, n)
    run = _new_run(server, function, n, factor, timeout)
    queue, dlq = work_queue(server, f"scale-{function}", timeout, fifo=True)
    env = server.function_env(factor, WORK_QUEUE_URL=queue)
    server.scale_buckets(factor)
    clock = _Clock()
    started = time.time()
    with Function(str(binary_path), env=env, timeout=timeout, logs=logs) as schedule:
        first = [schedule.invoke(_sample("scheduled-event.json", {}))]
    peaks = [schedule.stats()["max_rss_kib"]]
    clock.saw(started, schedule.invoke_ms[-1])
    tag_change: dict[str, Any] = {}
    thread = None
    if tag_change_after is not None:
        thread = threading.Thread(target=_tag_change, daemon=True,
                                  args=(server, binary_path, env, timeout, logs, started + tag_change_after, tag_change))
        thread.start()
    summary = _deliver(server, function, binary_path, queue, env, timeout, max_time, clock, logs)
    if thread is not None:
        thread.join()
        run.extra["tag_change"] = tag_change
        peaks.append(tag_change.get("rss_kib"))
        if tag_change.get("error"):
            run.notes.append(f"tag change: {tag_change['error']}")
    run.seconds = clock.last - started
    if "done_at" in tag_change:
        # How long the sweep still ran after the Tag Change's backup was made.
        tag_change["sweep_left_s"] = round(clock.last - tag_change.pop("done_at"), 1)
    records = _settle(run, server, summary, dlq, first, peaks)
    for result in _first_results(first):
        run.continuations += result.get("continuations", 0)
        run.failed += result.get("counts", {}).get("failed", 0)
    made = 0
    for rec in records:
        result = rec.get("result") or {}
        made += result.get("counts", {}).get("created", 0)
        run.failed += result.get("counts", {}).get("failed", 0)
        run.continuations += result.get("continuations", 0)
    backups = our_images(server) if images else our_snapshots(server)
    per_source = per_key(backups, f"{PREFIX}:source")
    expected = set(seeded) | ({tag_change["id"]} if tag_change.get("id") else set())
    run.missing = sum(1 for s in expected if per_source.get(s, 0) == 0)
    run.duplicates = sum(c - 1 for c in per_source.values() if c > 1)
    strangers = set(per_source) - expected
    if strangers:
        run.notes.append(f"{len(strangers)} backups of resources not seeded")
    run.extra.update(created_reported=made, backups=len(backups))
    return run


def _tag_change(server: Server, binary_path: Path, env: dict[str, str], timeout: float, logs: Any,
                at: float, out: dict[str, Any]) -> None:
    """At `at`, an instance opts in and Lambda invokes its Tag Change event (a sandbox of its
    own, beside the sweep's). With a work queue the event is queued behind the sweep's current
    record (one message group: never racing the sweep), so what counts is how long until its AMI
    exists: `seconds`."""
    try:
        time.sleep(max(0.0, at - time.time()))
        instance = seed_instances(server, 1, {"Name": "late"})[0]
        event = _sample("tag-change-instance.json", {"i-0123456789abcdef0": instance})
        out["id"] = instance
        t0 = time.time()
        with Function(str(binary_path), env=env, timeout=timeout, logs=logs) as function:
            result = function.invoke(event)
            out["rss_kib"] = function.stats()["max_rss_kib"]
        if not result["ok"]:
            out["error"] = result["error"]
            return
        out["queued"] = result["response"].get("continuations", 0) == 1
        ec2 = server.client("ec2", HOME)
        while time.time() - t0 < 600:
            made = ec2.describe_images(Owners=["self"], Filters=[
                {"Name": f"tag:{PREFIX}:source", "Values": [instance]}])["Images"]
            if made:
                out["created"] = [i["ImageId"] for i in made]
                out["seconds"] = round(time.time() - t0, 2)
                out["done_at"] = time.time()
                return
            time.sleep(0.5)
        out["error"] = f"no backup of {instance} after 600 s: {json.dumps(result['response'])[:500]}"
    except Exception as err:  # reported, not raised from the thread
        out["error"] = repr(err)


def run_replicate(server: Server, binary_path: Path, n: int, factor: float, timeout: float,
                  logs: Any = None, limit_faults: int = 0, max_time: float = 3600) -> Run:
    """replicate: n AMIs of ours that want a copy in DR, one `available` event each, put on its
    standard work queue as its EventBridge rule does (the event itself is the body), then the
    queue delivered as the template's mapping does (batches of 100, two invocations at once)
    until empty. The clock starts once the events are on the queue (`events_s` says how long
    putting them there took). `limit_faults`: that many of the first CopyImage calls answer
    ResourceLimitExceeded (a full in-flight limit), so those copies come back through the
    queue, delayed."""
    server.reset()
    now = datetime.now(timezone.utc)
    images = seed_images(server, n, now - timedelta(hours=1), now + timedelta(days=30), copy_to=DR)
    run = _new_run(server, "replicate", n, factor, timeout)
    queue, dlq = work_queue(server, "scale-replicate", timeout, fifo=False)
    # As the template: the two invocations at once share the pace (EC2_RATE_SHARED_BY is the
    # mapping's MaximumConcurrency, which a template test checks).
    env = server.function_env(factor, WORK_QUEUE_URL=queue,
                              EC2_RATE_SHARED_BY=str(MAPPINGS["replicate"]["max_concurrency"]))
    server.scale_buckets(factor)
    if limit_faults:
        server.fault({"action": "CopyImage", "region": DR, "code": "ResourceLimitExceeded", "count": limit_faults,
                      "message": "You have reached the maximum number of concurrent AMI copies."})
    put = time.time()
    send_events(server, queue, [_sample("ami-state-change-available.json", {"ami-0a1b2c3d4e5f67890": image})
                                for image in images])
    clock = _Clock()
    started = time.time()
    run.extra["events_s"] = round(started - put, 1)
    summary = _deliver(server, "replicate", binary_path, queue, env, timeout, max_time, clock, logs)
    run.seconds = clock.last - started
    records = _settle(run, server, summary, dlq, [], [])
    for result in (rec.get("result") or {} for rec in records):
        counts = result.get("counts", {})
        run.failed += counts.get("failed", 0)
        run.deferred += counts.get("deferred", 0)
        run.continuations += result.get("continuations", 0)
    # The messages a batch's run sent are on the answer, not on its records.
    run.continuations += sum((entry.get("response") or {}).get("continuations", 0)
                             for entry in summary["results"] if isinstance(entry.get("response"), dict))
    copies = pages(server.client("ec2", DR), "describe_images", "Images", Owners=["self"])
    per_source = per_key(copies, f"{PREFIX}:copy-of")
    run.missing = sum(1 for i in images if per_source.get(i, 0) == 0)
    run.duplicates = sum(c - 1 for c in per_source.values() if c > 1)
    run.extra.update(copies=len(copies), limit_faults=limit_faults)
    return run


def send_events(server: Server, queue: str, events: list[dict[str, Any]]) -> None:
    """Puts `events` on `queue` as an EventBridge rule targeting it does: each event's JSON is a
    message's body (SendMessageBatch, ten a call)."""
    sqs = server.client("sqs", key="testing")
    for i in range(0, len(events), 10):
        entries = [{"Id": str(j), "MessageBody": json.dumps(e)} for j, e in enumerate(events[i:i + 10])]
        out = sqs.send_message_batch(QueueUrl=queue, Entries=entries)
        assert not out.get("Failed"), out["Failed"]


def run_expire(server: Server, binary_path: Path, n: int, factor: float, timeout: float,
               logs: Any = None, max_time: float = 3600) -> Run:
    """expire: n AMIs of ours, each with its snapshot, expired a day ago (seeded with
    `backup:expires-at` in the past: expire reads the machine's clock); KEEP_LAST=0, since
    each AMI is the last of its instance. A scheduled event sweeps; the region it could not
    finish goes through the standard work queue until done."""
    server.reset()
    now = datetime.now(timezone.utc)
    seed_images(server, n, now - timedelta(days=8), now - timedelta(days=1))
    snapshots_seeded = len(our_snapshots(server))
    run = _new_run(server, "expire", n, factor, timeout)
    queue, dlq = work_queue(server, "scale-expire", timeout, fifo=False)
    env = server.function_env(factor, WORK_QUEUE_URL=queue, KEEP_LAST="0")
    server.scale_buckets(factor)
    clock = _Clock()
    started = time.time()
    with Function(str(binary_path), env=env, timeout=timeout, logs=logs) as function:
        first = [function.invoke(_sample("scheduled-event.json", {}))]
    clock.saw(started, function.invoke_ms[-1])
    summary = _deliver(server, "expire", binary_path, queue, env, timeout, max_time, clock, logs)
    run.seconds = clock.last - started
    records = _settle(run, server, summary, dlq, first, [function.stats()["max_rss_kib"]])
    results = _first_results(first) + [rec.get("result") or {} for rec in records]
    deregistered = deleted = 0
    for result in results:
        run.continuations += result.get("continuations", 0)
        for region in (result.get("regions") or {}).values():
            counts = region.get("counts", {})
            run.failed += counts.get("failed", 0)
            deregistered += counts.get("deregistered", 0)
            deleted += counts.get("deleted_snapshots", 0)
    images_left = our_images(server)
    snapshots_left = pages(server.client("ec2"), "describe_snapshots", "Snapshots", OwnerIds=["self"])
    run.missing = len(images_left) + len(snapshots_left)
    # A deletion reported twice: the same AMI deregistered by two invocations.
    run.duplicates = max(0, deregistered - n)
    run.extra.update(deregistered=deregistered, deleted_snapshots=deleted, snapshots_seeded=snapshots_seeded,
                     images_left=len(images_left), snapshots_left=len(snapshots_left))
    return run
