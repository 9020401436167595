"""Measures the isolated DR account (docs/dr-account.md) through the release `replicate` binary
against the moto server at MOTO_URL: N AMI backups shared by the home account and copied by the
vault account into two regions, locked there.

Accounts (tests/moto_server.py): the home account is 123456789012 (key `testing`; the seeding
and the checks there use `uncounted`, which the server does not count), the vault 444455556666
(its own key, counted: the counters are reset before each measured invocation).

For each N, in two ways (--ways, default both; each on a fresh server):
- sweep: reset the server (its throttling buckets off, the function's pacing lifted); seed N
  AMI backups at home in us-east-1, tagged as create-image tags them (prefix `backup`,
  deployment `home`, copy-to `none`), all made from one helper instance; wire EventBridge as
  functions/replicate/tests/dr_binary.rs does (the vault's rule -> its queue, its bus admitting
  the home account, the home rule -> the vault's bus); make the vault's default EBS key in
  us-west-2 and eu-west-1 (an encrypted volume each). Run the home deployment's replicate once
  with the scheduled event (DR_ACCOUNT=444455556666): it shares each AMI and its snapshot and
  puts a `Backup Shared` event each; count the events that reach the vault's queue (the server
  counts only EC2's calls, so PutEvents is not among them), then drain it. Run the vault's
  replicate (SOURCE_ACCOUNTS=123456789012, COPY_TO_REGIONS=us-west-2,eu-west-1,
  COPY_RETENTION=30d, LOCK_MODE=governance) with the scheduled event, its reconcile sweep, again
  and again until one copies nothing (a sweep starts at most 100 AMI copies per region: EC2's
  copies in flight). What a sweep hands on to its work queue is delivered before the next sweep,
  as the mapping below delivers it.
- events: the same seed and home run, then the vault's queue delivered to the vault's
  replicate as the template's mapping delivers it (tests/esm.py: batches of up to 100, a 5 s
  window, two invocations at once, EC2_RATE_SHARED_BY=2): each `Backup Shared` event copied
  and locked in its own run.

Print each invocation's wall time, peak RSS, counts (shared, copies started per region, snapshot
locks, deregistration protections, failed, skipped by reason) and the EC2 calls by region and
action; then, read back with the vault's key, the copies in each region, the locked snapshots
(DescribeLockedSnapshots) and the AMIs with deregistration protection. Exit 1 if a check fails:
not N shared, not N events at the vault, not N copies in each region (2N), a copy's snapshot
not locked (or locked short of the copy's expiry), an AMI copy not protected, a failure or
failed invocation, or a peak RSS at or over --max-rss-mib.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import secrets
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from esm import deliver  # noqa: E402
from lambda_invoke import EmulatorError, invoke  # noqa: E402

MOTO = os.environ["MOTO_URL"]
HOME = "us-east-1"
VAULT_REGIONS = ("us-west-2", "eu-west-1")
HOME_ACCOUNT = "123456789012"
VAULT_ACCOUNT = "444455556666"
PREFIX = "backup"
HOME_DEPLOYMENT = "home"
VAULT_DEPLOYMENT = "vault"
QUEUE = "vault-replicate-work"
TIMEOUT = 900  # the function's timeout, seconds (the template's)
RETENTION_DAYS = 30
# The server does not count the calls made with this key (tests/moto_server.py): the home
# account's seeding and checks stay out of the binary's figures. The vault's are made with its
# own key (counted), before the counters are reset.
UNCOUNTED = "uncounted"
SCHEDULED = json.loads((ROOT / "events" / "scheduled-event.json").read_text())

# What replicate calls in EC2 on either side. The function paces only the actions of core's
# EC2_BUCKETS (EC2_RATE_LIMITS refuses any other): those of these it paces are lifted.
DR_ACTIONS = ("DescribeImages", "DescribeSnapshots", "CopyImage", "CopySnapshot", "CreateTags",
              "ModifyImageAttribute", "ModifySnapshotAttribute", "DescribeLockedSnapshots",
              "LockSnapshot", "EnableImageDeregistrationProtection")


def paced_actions() -> list[str]:
    """The actions EC2_RATE_LIMITS may name: core/src/pacing.rs's EC2_BUCKETS."""
    text = (ROOT / "core" / "src" / "pacing.rs").read_text()
    table = re.search(r"EC2_BUCKETS[^=]*=\s*&\[(.*?)\];", text, re.S)
    return re.findall(r'\(\s*"(\w+)"', table.group(1)) if table else []


PACED = [a for a in DR_ACTIONS if a in paced_actions()]
NOT_PACED = [a for a in DR_ACTIONS if a not in PACED]
UNPACED = ",".join(f"{a}=100000/100000" for a in PACED)


def http(method: str, path: str, payload: object | None = None) -> bytes:
    data = json.dumps(payload).encode() if payload is not None else (b"" if method == "POST" else None)
    req = urllib.request.Request(MOTO + path, method=method, data=data,
                                 headers={"Content-Type": "application/json"} if payload is not None else {})
    with urllib.request.urlopen(req) as resp:
        return resp.read()


def client(service: str, region: str = HOME, key: str = UNCOUNTED) -> Any:
    return boto3.client(service, region_name=region, endpoint_url=MOTO,
                        aws_access_key_id=key, aws_secret_access_key="bench")


def vault(service: str, region: str = HOME) -> Any:
    return client(service, region, VAULT_ACCOUNT)


def rfc3339(at: datetime) -> str:
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def tags(pairs: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in pairs.items()]


def seed(n: int) -> tuple[list[str], str]:
    """N AMI backups at home as create-image leaves them, the EventBridge wiring of the two
    deployments, the vault's work queue and its default EBS key in its regions. Returns the
    AMI ids and the queue's URL."""
    ec2 = client("ec2", HOME)
    helper = ec2.run_instances(ImageId="ami-12345678", InstanceType="t3.micro", MinCount=1,
                               MaxCount=1)["Instances"][0]["InstanceId"]
    now = datetime.now(timezone.utc)
    created_at, expires_at = rfc3339(now - timedelta(hours=1)), rfc3339(now + timedelta(days=7))
    stamp = now.strftime("%Y%m%d%H%M%S")
    images = []
    for i in range(n):
        source = f"i-{secrets.token_hex(9)[:17]}"  # one instance of N, each with its backup
        backup_tags = tags({
            f"{PREFIX}:managed-by": HOME_DEPLOYMENT,
            f"{PREFIX}:kind": "image",
            f"{PREFIX}:source": source,
            f"{PREFIX}:source-region": HOME,
            f"{PREFIX}:created-at": created_at,
            f"{PREFIX}:expires-at": expires_at,
            f"{PREFIX}:copy-to": "none",
            "Name": f"web-{i}",
        })
        images.append(ec2.create_image(
            InstanceId=helper, Name=f"web-{i}-{stamp}", Description=f"{HOME_DEPLOYMENT} backup of {source}",
            TagSpecifications=[{"ResourceType": "image", "Tags": backup_tags},
                               {"ResourceType": "snapshot", "Tags": backup_tags}])["ImageId"])
    ec2.terminate_instances(InstanceIds=[helper])

    # As the templates wire it: the vault's rule puts the home account's events on replicate's
    # work queue, its bus admits the home account, the home rule forwards to the vault's bus.
    queue_url = vault("sqs").create_queue(QueueName=QUEUE, Attributes={"VisibilityTimeout": "5405"})["QueueUrl"]
    v_events = vault("events")
    v_events.put_rule(Name="vault-backup-shared", EventPattern=json.dumps({
        "source": ["ec2-backup"], "detail-type": ["Backup Shared"], "account": [HOME_ACCOUNT],
        "detail": {"deployment": [HOME_DEPLOYMENT]}}))
    v_events.put_targets(Rule="vault-backup-shared", Targets=[
        {"Id": "work-queue", "Arn": f"arn:aws:sqs:{HOME}:{VAULT_ACCOUNT}:{QUEUE}"}])
    v_events.put_permission(Action="events:PutEvents", Principal=HOME_ACCOUNT, StatementId="home")
    h_events = client("events")
    h_events.put_rule(Name="share-forward", EventPattern=json.dumps({
        "source": ["ec2-backup"], "detail-type": ["Backup Shared"],
        "detail": {"deployment": [HOME_DEPLOYMENT]}}))
    h_events.put_targets(Rule="share-forward", Targets=[{
        "Id": "vault-bus", "Arn": f"arn:aws:events:{HOME}:{VAULT_ACCOUNT}:event-bus/default",
        "RoleArn": f"arn:aws:iam::{HOME_ACCOUNT}:role/share-forward"}])
    for region in VAULT_REGIONS:
        vault("ec2", region).create_volume(AvailabilityZone=f"{region}a", Size=1, Encrypted=True)
    return images, queue_url


def queue_depth(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed"])["Attributes"]
    return sum(int(v) for v in attributes.values())


def drain(sqs: Any, url: str) -> list[dict[str, Any]]:
    """Every message on the queue, received and deleted (the events, parsed)."""
    events = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                       VisibilityTimeout=60).get("Messages", [])
        if not messages:
            if queue_depth(sqs, url) == 0:
                return events
            time.sleep(0.2)
            continue
        events.extend(json.loads(m["Body"]) for m in messages)
        sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])


def calls_now() -> dict[str, dict[str, int]]:
    return json.loads(http("GET", "/_test/calls"))


def print_calls(calls: dict[str, dict[str, int]], indent: str = "    ") -> None:
    for region, by_action in sorted(calls.items()):
        total = sum(by_action.values())
        print(f"{indent}EC2 calls {region} ({total}): {json.dumps(dict(sorted(by_action.items())))}")


def slug(reason: str) -> str:
    """The first word of a skip reason (the vault's all begin with a slug)."""
    return re.split(r":\s|\s", reason.strip(), maxsplit=1)[0][:40] or reason


def summarize(report: dict[str, Any], calls: dict[str, dict[str, int]] | None = None) -> dict[str, Any]:
    """The counts of a replicate result. A result keeps the first 100 entries of each list and
    gives each list's full length under `counts` (core/src/report/mod.rs, `bounded`): the
    totals come from there; what is split by region (copies) or kind (snapshot locks, AMI
    protections) comes from the lists when whole, else from the EC2 calls of the invocation
    (CopyImage, LockSnapshot, EnableImageDeregistrationProtection: one a copy, lock or
    protection, none refused when nothing failed)."""
    full = report.get("counts", {})
    cut = report.get("omitted", {})

    def length(name: str) -> int:
        return int(full.get(name, len(report.get(name, []))))

    if "copied" not in cut:
        copied = dict(sorted(Counter(c.get("region") for c in report.get("copied", [])).items()))
    else:
        copied = {r: c.get("CopyImage", 0) + c.get("CopySnapshot", 0) for r, c in sorted((calls or {}).items())
                  if c.get("CopyImage", 0) + c.get("CopySnapshot", 0)}
    locked = report.get("locked", [])
    if "locked" not in cut:
        locks = len([entry for entry in locked if entry.get("snapshot")])
        protections = len(locked) - locks
    else:
        locks = sum(c.get("LockSnapshot", 0) for c in (calls or {}).values())
        protections = sum(c.get("EnableImageDeregistrationProtection", 0) for c in (calls or {}).values())
    skipped = Counter(slug(s.get("reason", "")) for s in report.get("skipped", []))
    if "skipped" in cut:
        skipped["(not listed)"] = cut["skipped"]
    return {
        "shared": length("shared"),
        "copied": copied,
        "copies": length("copied"),
        "locked": length("locked"),
        "locks": locks,
        "protections": protections,
        "failed": length("failed"),
        "deferred": length("deferred"),
        "skipped": dict(sorted(skipped.items())),
        "continuations": report.get("continuations", 0),
    }


def add(total: dict[str, Any], counts: dict[str, Any]) -> None:
    for k, v in counts.items():
        if isinstance(v, dict):
            bucket = total.setdefault(k, {})
            for kk, vv in v.items():
                bucket[kk] = bucket.get(kk, 0) + vv
        else:
            total[k] = total.get(k, 0) + v


def fmt(counts: dict[str, Any]) -> str:
    parts = [f"shared {counts.get('shared', 0)}",
             f"copies {counts.get('copies', 0)} {json.dumps(counts.get('copied', {}))}",
             f"locked entries {counts.get('locked', 0)} ({counts.get('locks', 0)} snapshot locks, "
             f"{counts.get('protections', 0)} AMI protections)",
             f"failed {counts.get('failed', 0)}"]
    if counts.get("deferred"):
        parts.append(f"deferred {counts['deferred']}")
    if counts.get("continuations"):
        parts.append(f"continuations {counts['continuations']}")
    if counts.get("skipped"):
        parts.append(f"skipped {json.dumps(counts['skipped'])}")
    return ", ".join(parts)


def first_failures(report: dict[str, Any], limit: int = 3) -> str:
    return json.dumps(report.get("failed", [])[:limit])[:1500]


class Bench:
    def __init__(self, binary: str, logs_dir: Path, max_rss_mib: float):
        self.binary, self.logs_dir, self.max_rss_mib = binary, logs_dir, max_rss_mib
        self.base_env = {"AWS_ENDPOINT_URL": MOTO, "AWS_REGION": HOME, "AWS_SECRET_ACCESS_KEY": "bench",
                         "AWS_LAMBDA_LOG_LEVEL": "WARN", "RUST_LOG": "warn", "EC2_RATE_LIMITS": UNPACED,
                         "TAG_PREFIX": PREFIX}

    def home_env(self) -> dict[str, str]:
        return dict(self.base_env, AWS_ACCESS_KEY_ID="testing", DEPLOYMENT_NAME=HOME_DEPLOYMENT,
                    DR_ACCOUNT=VAULT_ACCOUNT)

    def vault_env(self, queue_url: str) -> dict[str, str]:
        return dict(self.base_env, AWS_ACCESS_KEY_ID=VAULT_ACCOUNT, DEPLOYMENT_NAME=VAULT_DEPLOYMENT,
                    SOURCE_ACCOUNTS=HOME_ACCOUNT, COPY_TO_REGIONS=",".join(VAULT_REGIONS),
                    COPY_RETENTION=f"{RETENTION_DAYS}d", LOCK_MODE="governance",
                    WORK_QUEUE_URL=queue_url, EC2_RATE_SHARED_BY="2")

    def once(self, label: str, env: dict[str, str], log_name: str) -> tuple[dict[str, Any] | None, float, str]:
        """One invocation with the scheduled event. Returns (the result or None, peak RSS MiB,
        a line to print)."""
        http("POST", "/_test/calls/reset")
        with open(self.logs_dir / log_name, "ab") as logs:
            try:
                results, stats = invoke(self.binary, [SCHEDULED], env=env, timeout=TIMEOUT, logs=logs)
            except EmulatorError as err:
                stats = err.stats or {"invoke_ms": [0], "max_rss_kib": 0, "cold_start_ms": 0,
                                      "cpu_user_ms": 0, "cpu_sys_ms": 0}
                results = [{"ok": False, "error": {"errorType": "EmulatorError", "errorMessage": str(err)}}]
        rss = (stats.get("max_rss_kib") or 0) / 1024
        wall = (stats["invoke_ms"] or [0])[0] / 1000
        line = (f"  {label}: wall {wall:.2f} s, peak RSS {rss:.1f} MiB, cold start {stats.get('cold_start_ms', 0):.1f} ms, "
                f"CPU {stats.get('cpu_user_ms', 0) + stats.get('cpu_sys_ms', 0):.0f} ms")
        first = results[0]
        return (first["response"] if first["ok"] else None), rss, line + ("" if first["ok"] else
                                                                            f"\n    FAILED: {json.dumps(first['error'])[:2000]}")

    def prepare(self, n: int) -> tuple[list[str], str, dict[str, Any]]:
        """A fresh server, the seed, and the home deployment's run. Returns the AMIs, the
        vault's queue and what the home run gave."""
        http("POST", "/moto-api/reset")
        # This bench measures the calls, the time and the memory, not EC2's pace: the server's
        # throttling buckets are off and the function's pacing lifted.
        http("POST", "/_test/buckets", {"buckets": {}})
        started = time.monotonic()
        images, queue_url = seed(n)
        print(f"  seeded {n} AMI backups in {HOME} (home), the EventBridge wiring and the vault's keys "
              f"in {time.monotonic() - started:.1f} s", flush=True)
        report, rss, line = self.once("home replicate, scheduled sweep", self.home_env(), f"dr-{n}-home.log")
        calls = calls_now()
        print(line)
        counts = summarize(report or {}, calls)
        if report is not None:
            print(f"    {fmt(counts)}")
            if counts["failed"]:
                print(f"    failed: {first_failures(report)}")
        print_calls(calls)
        sqs = vault("sqs")
        depth, deadline = queue_depth(sqs, queue_url), time.monotonic() + 10
        while depth < n and time.monotonic() < deadline:  # EventBridge delivers asynchronously at worst
            time.sleep(0.5)
            depth = queue_depth(sqs, queue_url)
        print(f"    Backup Shared events on the vault's queue: {depth} (PutEvents is not counted by the "
              f"server; {math.ceil(counts['shared'] / 10)} call(s) at 10 entries each)", flush=True)
        home = {"ok": report is not None, "rss": rss, "counts": counts, "events": depth}
        return images, queue_url, home

    def sweeps(self, n: int) -> tuple[bool, list[float], dict[str, Any]]:
        """The vault's reconcile sweep until one copies nothing."""
        images, queue_url, home = self.prepare(n)
        sqs = vault("sqs")
        events = drain(sqs, queue_url)
        named = {e.get("detail", {}).get("backup") for e in events}
        print(f"    drained {len(events)} events ({len(named & set(images))} naming a seeded AMI)", flush=True)
        ok, peaks, total = home["ok"], [home["rss"]], {}
        env = self.vault_env(queue_url)
        limit = math.ceil(n / 100) + 3
        all_calls: dict[str, Counter] = {}
        started = time.monotonic()
        for i in range(1, limit + 1):
            report, rss, line = self.once(f"vault sweep {i}", env, f"dr-{n}-vault-sweep.log")
            calls = calls_now()
            peaks.append(rss)
            print(line)
            if report is None:
                ok = False
                print_calls(calls)
                break
            counts = summarize(report, calls)
            add(total, counts)
            print(f"    {fmt(counts)}")
            if counts["failed"]:
                ok = False
                print(f"    failed: {first_failures(report)}")
            print_calls(calls)
            for region, by_action in calls.items():
                all_calls.setdefault(region, Counter()).update(by_action)
            sys.stdout.flush()
            handed_on = queue_depth(sqs, queue_url)
            if handed_on:
                # What the sweep handed on to its work queue: delivered as the mapping would,
                # long before the next scheduled sweep.
                print(f"    handed on to the work queue: {handed_on} message(s): delivering", flush=True)
                good, sandbox_peaks, delivered, delivered_calls = self.deliver(n, queue_url, f"continuations-{i}")
                ok, copies = ok and good, counts["copies"] + delivered.get("copies", 0)
                peaks.extend(sandbox_peaks)
                add(total, delivered)
                for region, by_action in delivered_calls.items():
                    all_calls.setdefault(region, Counter()).update(by_action)
            else:
                copies = counts["copies"]
            if copies == 0:
                break
        else:
            ok = False
            print(f"  FAILED: the sweeps were still copying after {limit} invocations")
        elapsed = time.monotonic() - started
        print(f"  vault sweeps: {i} invocations, {elapsed:.1f} s in all (with any continuations)")
        print(f"    in all: {fmt(total)}")
        print_calls({r: dict(c) for r, c in all_calls.items()}, "    in all: ")
        return ok, peaks, dict(home=home, vault=total)

    def deliver(self, n: int, queue_url: str, label: str) -> tuple[bool, list[float], dict[str, Any],
                                                                   dict[str, dict[str, int]]]:
        """The vault's queue delivered to the vault's replicate as the template's mapping does
        (batches of up to 100, a 5 s window, two at once), until it stays empty. Returns (no
        failure, the sandboxes' peaks, the counts, the EC2 calls)."""
        ok, peaks, total = True, [], {}
        http("POST", "/_test/calls/reset")
        with open(self.logs_dir / f"dr-{n}-vault-{label}.log", "ab") as logs:
            delivered = deliver(self.binary, queue_url, env=self.vault_env(queue_url), timeout=TIMEOUT,
                                batch_size=100, batching_window=5, max_concurrency=2, wait_seconds=1,
                                idle=3, max_time=3600, endpoint_url=MOTO, region=HOME, logs=logs)
        calls = calls_now()
        for r in delivered["results"]:
            line = (f"  vault {label} invocation {r['invocation']} (poller {r['poller']}): {len(r['records'])} "
                    f"record(s), wall {r['ms'] / 1000:.2f} s, outcome {r['outcome']}")
            if not r.get("ok"):
                ok = False
                line += f", error {json.dumps(r.get('error'))[:1000]}"
            else:
                counts: dict[str, Any] = {}
                for rec in (r.get("response") or {}).get("records", []):
                    if not rec.get("ok"):
                        ok = False
                        line += f"\n    record refused: {json.dumps(rec)[:600]}"
                        continue
                    add(counts, summarize(rec.get("result") or {}))
                    if rec.get("failed"):
                        ok = False
                        line += f"\n    record failed: {first_failures(rec.get('result') or {})}"
                add(total, counts)
                line += f"\n    {fmt(counts)}"
            print(line)
        if delivered["failed"] or delivered["errors"]:
            ok = False
        for s in delivered["stats"]["sandboxes"]:
            peak = (s["max_rss_kib"] or 0) / 1024
            peaks.append(peak)
            print(f"  vault sandbox {s['pid']}: {s['invocations']} invocation(s), peak RSS {peak:.1f} MiB, "
                  f"cold start {s['cold_start_ms']:.1f} ms, CPU {s['cpu_user_ms'] + s['cpu_sys_ms']:.0f} ms, end {s['end']}")
        summary = {k: v for k, v in delivered.items() if k not in ("results", "stats")}
        print(f"  mapping: {json.dumps(summary)}")
        if delivered["results"]:
            first = min(r["started"] for r in delivered["results"])
            last = max(r["started"] + r["ms"] / 1000 for r in delivered["results"])
            print(f"    from the first invocation's start to the last one's end: {last - first:.1f} s")
        print(f"    in all: {fmt(total)}")
        print_calls(calls, "    in all: ")
        left = queue_depth(vault("sqs"), queue_url)
        if left:
            ok = False
            print(f"  FAILED: {left} message(s) still on the vault's queue")
        sys.stdout.flush()
        return ok, peaks, total, calls

    def events(self, n: int) -> tuple[bool, list[float], dict[str, Any]]:
        """The home run's events delivered to the vault's replicate through its work queue."""
        _, queue_url, home = self.prepare(n)
        ok, peaks, total, calls = self.deliver(n, queue_url, "events")
        per_event = sum(sum(c.values()) for c in calls.values()) / max(n, 1)
        print(f"    EC2 calls per event: {per_event:.1f}")
        return ok and home["ok"], [home["rss"]] + peaks, dict(home=home, vault=total)

    def vault_state(self) -> dict[str, Any]:
        """The vault's copies, locks and protections, read with its key."""
        state: dict[str, Any] = {}
        for region in VAULT_REGIONS:
            ec2 = vault("ec2", region)
            copies = [i for page in ec2.get_paginator("describe_images").paginate(
                Owners=["self"], Filters=[{"Name": f"tag:{PREFIX}:source-account", "Values": [HOME_ACCOUNT]}])
                for i in page["Images"]]
            locks: dict[str, dict[str, Any]] = {}
            token = None
            while True:
                page = ec2.describe_locked_snapshots(MaxResults=1000, **({"NextToken": token} if token else {}))
                locks.update({s["SnapshotId"]: s for s in page.get("Snapshots", [])})
                token = page.get("NextToken")
                if not token:
                    break
            unlocked, short, snapshots = [], [], 0
            for image in copies:
                image_tags = {t["Key"]: t["Value"] for t in image.get("Tags", [])}
                expires = image_tags.get(f"{PREFIX}:expires-at")
                for mapping in image.get("BlockDeviceMappings", []):
                    sid = mapping.get("Ebs", {}).get("SnapshotId")
                    if not sid:
                        continue
                    snapshots += 1
                    lock = locks.get(sid)
                    if lock is None or lock.get("LockState") != "governance":
                        unlocked.append(sid)
                    elif expires and rfc3339(lock["LockExpiresOn"]) < expires:
                        short.append(sid)
            state[region] = {
                "copies": len(copies),
                "distinct": len({next((t["Value"] for t in i.get("Tags", []) if t["Key"] == f"{PREFIX}:copy-of"), i["ImageId"])
                                 for i in copies}),
                "snapshots": snapshots,
                "locked": len(locks),
                "unlocked": unlocked,
                "short": short,
                "protected": sum(1 for i in copies if str(i.get("DeregistrationProtection", "")).startswith("enabled")),
            }
        return state

    def run(self, n: int, way: str) -> bool:
        print(f"N={n}, {way}:", flush=True)
        ok, peaks, result = self.sweeps(n) if way == "sweep" else self.events(n)
        state = self.vault_state()
        home = result["home"]
        for region, s in state.items():
            print(f"  vault {region}: {s['copies']} AMI copies ({s['distinct']} distinct sources), "
                  f"{s['snapshots']} snapshots, {s['locked']} locked (DescribeLockedSnapshots), "
                  f"{len(s['unlocked'])} unlocked, {len(s['short'])} locked short of the expiry, "
                  f"{s['protected']} AMIs with deregistration protection")
        max_rss = max(peaks)
        print(f"  max peak RSS {max_rss:.1f} MiB")
        copies = sum(s["copies"] for s in state.values())
        checks = {
            f"{n} shared": home["counts"]["shared"] == n,
            f"{n} events at the vault": home["events"] == n,
            f"{2 * n} copies": copies == 2 * n and all(s["copies"] == s["distinct"] == n for s in state.values()),
            "every copy's snapshots locked": all(not s["unlocked"] and not s["short"] and s["snapshots"] == s["copies"]
                                                for s in state.values()),
            "every AMI copy protected": all(s["protected"] == s["copies"] for s in state.values()),
            "no failure": ok and home["counts"]["failed"] == 0 and result["vault"].get("failed", 0) == 0,
            f"peak RSS under {self.max_rss_mib:g} MiB": max_rss < self.max_rss_mib,
        }
        failed = [name for name, good in checks.items() if not good]
        print(f"  checks: {'ok' if not failed else 'FAILED: ' + ', '.join(failed)}")
        warnings = log_lines(self.logs_dir, n)
        if warnings:
            print(f"  the binary's WARN/ERROR lines ({self.logs_dir}, first {len(warnings)}):")
            for line in warnings:
                print(f"    {line[:600]}")
        sys.stdout.flush()
        return not failed


def log_lines(logs_dir: Path, n: int, limit: int = 10) -> list[str]:
    """The binary's WARN and ERROR lines of this N's logs (the first `limit`)."""
    out = []
    for path in sorted(logs_dir.glob(f"dr-{n}-*.log")):
        with open(path, errors="replace") as f:
            for line in f:
                if re.search(r'"level"\s*:\s*"(WARN|ERROR)"|\b(WARN|ERROR)\b', line):
                    out.append(f"{path.name}: {line.rstrip()}")
                    if len(out) >= limit:
                        return out
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--logs", help="directory for the binary's logs (default: a temporary one)")
    parser.add_argument("--max-rss-mib", type=float, default=64)
    parser.add_argument("--ways", default="sweep,events",
                        help="how the vault copies: sweep (its reconcile sweep), events (its work queue), or both")
    parser.add_argument("sizes", nargs="*", type=int, default=[100, 1000])
    args = parser.parse_args()
    ways = [w.strip() for w in args.ways.split(",") if w.strip()]
    if not ways or any(w not in ("sweep", "events") for w in ways):
        parser.error("--ways takes sweep, events or both")
    print(f"binary {args.binary}: {os.path.getsize(args.binary) / 1e6:.2f} MB")
    print(f"EC2_RATE_LIMITS lifted: {', '.join(PACED)}; not paced by the function: {', '.join(NOT_PACED)}; "
          f"the server's throttling buckets off")
    logs_dir = Path(args.logs) if args.logs else Path(tempfile.mkdtemp(prefix="bench-dr-"))
    logs_dir.mkdir(parents=True, exist_ok=True)
    bench = Bench(args.binary, logs_dir, args.max_rss_mib)
    good = True
    for n in args.sizes:
        for way in ways:
            good = bench.run(n, way) and good
    sys.exit(0 if good else 1)


if __name__ == "__main__":
    main()
