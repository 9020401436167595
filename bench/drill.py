"""Measures a drill of N resources through the release `drill` binary against the moto server at
MOTO_URL.

For each N: reset the server (its throttling buckets off), seed N opted-in instances in us-east-1
(`Backup=true`, `backup:copy-to=us-west-2`) and, for each, a DR copy in us-west-2 (an AMI made
from one helper instance there, tagged as replicate tags its copies, an hour old); make the
evidence bucket and the work queue; run the binary once through the Lambda Runtime API emulator
(tests/lambda_invoke.py) with `{}` and DRILL_BATCH=1000, then deliver its continuations (delayed
30 s) through the event source mapping emulator (tests/esm.py) until the queue stays empty. Print
the wall time and peak RSS of each invocation, the counts of the result, the evidence objects,
the drill resources left in us-west-2 and the EC2 calls by action. moto's restores are ready at
once, so the first invocation judges them all; with --hold they are not (status checks
`initializing`, moto's restore hold) until it has ended, and its continuations judge them.
Exit 1 if a check fails: not
every resource passed, not one evidence object each, a drill resource left, an invocation that
failed, or a peak RSS at or over --max-rss-mib.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from esm import deliver  # noqa: E402
from lambda_invoke import invoke  # noqa: E402

MOTO = os.environ["MOTO_URL"]
HOME = "us-east-1"
DR = "us-west-2"
PREFIX = "backup"
DEPLOYMENT = "ec2-backup"
BUCKET = "drill-evidence"
QUEUE = "drill-work"
TIMEOUT = 300  # the function's timeout, seconds
# The server does not count the calls made with this key (tests/moto_server.py): the seeding and
# the checks stay out of the binary's figures.
UNCOUNTED = "uncounted"

# What the drill calls in EC2. The function paces only the actions of core's EC2_BUCKETS
# (EC2_RATE_LIMITS refuses any other): those of these it paces are lifted.
DRILL_ACTIONS = ("DescribeInstances", "DescribeVolumes", "DescribeImages", "DescribeSnapshots",
                 "DescribeInstanceStatus", "DescribeSubnets", "DescribeAvailabilityZones",
                 "DescribeSecurityGroups", "CreateSecurityGroup", "RunInstances", "CreateVolume",
                 "CreateTags", "TerminateInstances", "DeleteVolume")


def paced_actions() -> list[str]:
    """The actions EC2_RATE_LIMITS may name: core/src/pacing.rs's EC2_BUCKETS."""
    text = (ROOT / "core" / "src" / "pacing.rs").read_text()
    table = re.search(r"EC2_BUCKETS[^=]*=\s*&\[(.*?)\];", text, re.S)
    return re.findall(r'\(\s*"(\w+)"', table.group(1)) if table else []


PACED = [a for a in DRILL_ACTIONS if a in paced_actions()]
NOT_PACED = [a for a in DRILL_ACTIONS if a not in PACED]
UNPACED = ",".join(f"{a}=100000/100000" for a in PACED)


def http(method: str, path: str, payload: object | None = None) -> bytes:
    data = json.dumps(payload).encode() if payload is not None else (b"" if method == "POST" else None)
    req = urllib.request.Request(MOTO + path, method=method, data=data,
                                 headers={"Content-Type": "application/json"} if payload is not None else {})
    with urllib.request.urlopen(req) as resp:
        return resp.read()


def client(service: str, region: str = HOME) -> Any:
    return boto3.client(service, region_name=region, endpoint_url=MOTO,
                        aws_access_key_id=UNCOUNTED, aws_secret_access_key="bench")


def rfc3339(at: datetime) -> str:
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def tags(pairs: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in pairs.items()]


def seed(n: int) -> list[str]:
    """N opted-in instances at home, each with an AMI in the DR region as replicate leaves it."""
    home = client("ec2", HOME)
    instances: list[str] = []
    while len(instances) < n:
        count = min(50, n - len(instances))
        made = home.run_instances(
            ImageId="ami-12345678", InstanceType="t3.micro", MinCount=count, MaxCount=count,
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags({
                "Backup": "true", f"{PREFIX}:copy-to": DR, "Team": "bench"})}])
        instances.extend(i["InstanceId"] for i in made["Instances"])
    dr = client("ec2", DR)
    helper = dr.run_instances(ImageId="ami-12345678", InstanceType="t3.micro", MinCount=1,
                              MaxCount=1)["Instances"][0]["InstanceId"]
    created_at = rfc3339(datetime.now(timezone.utc) - timedelta(hours=1))
    for i, source in enumerate(instances):
        backup_tags = tags({
            f"{PREFIX}:managed-by": DEPLOYMENT,
            f"{PREFIX}:kind": "image",
            f"{PREFIX}:source": source,
            f"{PREFIX}:created-at": created_at,
            f"{PREFIX}:copy-of": f"ami-{secrets.token_hex(9)[:17]}",
        })
        dr.create_image(InstanceId=helper, Name=f"drill-bench-{i}-{source}",
                        TagSpecifications=[{"ResourceType": "image", "Tags": backup_tags},
                                           {"ResourceType": "snapshot", "Tags": backup_tags}])
    dr.terminate_instances(InstanceIds=[helper])
    return instances


def counts_of(answer: Any) -> list[dict[str, int]]:
    """The counts of a drill's answer: one for a payload's run, one per record of an SQS batch."""
    if not isinstance(answer, dict):
        return []
    if "counts" in answer:
        return [answer["counts"]]
    return [r["result"]["counts"] for r in answer.get("records", [])
            if isinstance(r, dict) and isinstance(r.get("result"), dict) and "counts" in r["result"]]


def counts_of_error(error: dict[str, Any]) -> list[dict[str, int]]:
    """The counts in a failed invocation's error message, when it carries the result."""
    message = str(error.get("errorMessage", ""))
    start = message.find("{")
    if start < 0:
        return []
    try:
        return counts_of(json.loads(message[start:]))
    except ValueError:
        return []


def leftovers(region: str) -> tuple[list[str], list[str]]:
    """This deployment's drill resources in the region: instances not terminated, volumes."""
    ec2 = client("ec2", region)
    ours = [{"Name": f"tag:{PREFIX}:managed-by", "Values": [DEPLOYMENT]},
            {"Name": "tag-key", "Values": [f"{PREFIX}:drill-of"]}]
    instances = [i["InstanceId"]
                 for page in ec2.get_paginator("describe_instances").paginate(Filters=ours + [{
                     "Name": "instance-state-name",
                     "Values": ["pending", "running", "shutting-down", "stopping", "stopped"]}])
                 for r in page["Reservations"] for i in r["Instances"]]
    volumes = [f"{v['VolumeId']} ({v['State']})"
               for page in ec2.get_paginator("describe_volumes").paginate(Filters=ours)
               for v in page["Volumes"]]
    return instances, volumes


def marked(region: str, result: str) -> int:
    ec2 = client("ec2", region)
    return sum(len(page["Images"]) for page in ec2.get_paginator("describe_images").paginate(
        Owners=["self"], Filters=[{"Name": f"tag:{PREFIX}:drill-result", "Values": [result]}]))


def evidence_objects() -> int:
    s3 = client("s3")
    return sum(page.get("KeyCount", 0)
               for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="drills/"))


def queue_depth(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed"])["Attributes"]
    return sum(int(v) for v in attributes.values())


def log_lines(path: Path, limit: int = 20) -> list[str]:
    """The binary's WARN and ERROR lines (the first `limit`)."""
    out = []
    with open(path, errors="replace") as f:
        for line in f:
            if re.search(r'"level"\s*:\s*"(WARN|ERROR)"|\b(WARN|ERROR)\b', line):
                out.append(line.rstrip())
                if len(out) >= limit:
                    break
    return out


def drill(binary: str, n: int, logs_dir: Path, max_rss_mib: float, hold: bool) -> bool:
    http("POST", "/moto-api/reset")
    # This bench measures the run and its memory, not EC2's pace: the server's throttling is
    # off and the function's pacing lifted.
    http("POST", "/_test/buckets", {"buckets": {}})
    started = time.monotonic()
    seed(n)
    client("s3").create_bucket(Bucket=BUCKET)
    sqs = client("sqs")
    queue_url = sqs.create_queue(QueueName=QUEUE, Attributes={"VisibilityTimeout": "1800"})["QueueUrl"]
    print(f"N={n}: seeded {n} instances in {HOME} and {n} AMIs in {DR} in {time.monotonic() - started:.1f} s",
          flush=True)

    http("POST", "/_test/calls/reset")
    env = {"AWS_ENDPOINT_URL": MOTO, "AWS_REGION": HOME, "AWS_ACCESS_KEY_ID": "bench",
           "AWS_SECRET_ACCESS_KEY": "bench", "AWS_LAMBDA_LOG_LEVEL": "WARN", "RUST_LOG": "warn",
           "EC2_RATE_LIMITS": UNPACED, "TAG_PREFIX": PREFIX, "DEPLOYMENT_NAME": DEPLOYMENT,
           "EVIDENCE_BUCKET": BUCKET, "DRILL_BATCH": "1000", "WORK_QUEUE_URL": queue_url}
    log_path = logs_dir / f"drill-{n}.log"
    ok = True
    counts: list[dict[str, int]] = []
    peaks: list[float] = []
    hold_spec = {"region": DR, "kind": "instance", "status": "initializing"}
    with open(log_path, "wb") as logs:
        if hold:
            http("POST", "/_test/restore-hold", hold_spec)
        t0 = time.monotonic()
        results, stats = invoke(binary, [{}], env=env, timeout=TIMEOUT, logs=logs)
        if hold:
            http("POST", "/_test/restore-hold", dict(hold_spec, status=None))
        first = results[0]
        rss = stats["max_rss_kib"] / 1024
        peaks.append(rss)
        print(f"  invocation 1 ({{}}{', restores held' if hold else ''}): wall {stats['invoke_ms'][0]:.1f} ms, peak RSS {rss:.1f} MiB, "
              f"cold start {stats['cold_start_ms']:.1f} ms, CPU {stats['cpu_user_ms'] + stats['cpu_sys_ms']:.0f} ms",
              flush=True)
        if first["ok"]:
            counts += counts_of(first["response"])
            print(f"    answer: counts {json.dumps(first['response'].get('counts'))}, "
                  f"continuations {first['response'].get('continuations', 0)}")
        else:
            ok = False
            counts += counts_of_error(first["error"])
            print(f"    FAILED: {json.dumps(first['error'])[:2000]}")

        depth = queue_depth(sqs, queue_url)
        delivered = None
        if depth:
            print(f"  queue: {depth} message(s) (continuations, delayed {30} s): delivering", flush=True)
            delivered = deliver(binary, queue_url, env=env, timeout=TIMEOUT, wait_seconds=1, idle=2,
                                max_time=3600, endpoint_url=MOTO, region=HOME, logs=logs)
            for i, r in enumerate(delivered["results"], 1):
                line = (f"  continuation {i}: {len(r['records'])} record(s), wall {r['ms']:.1f} ms, "
                        f"outcome {r['outcome']}")
                if r.get("ok"):
                    got = counts_of(r.get("response"))
                    counts += got
                    line += f", counts {json.dumps(got)}"
                    refused = [x for x in (r.get("response") or {}).get("records", []) if not x.get("ok")]
                    if refused or r["failed"]:
                        ok = False
                        line += f", records failed {json.dumps(refused)[:1000]}"
                else:
                    ok = False
                    line += f", error {json.dumps(r.get('error'))[:1000]}"
                print(line)
            for s in delivered["stats"]["sandboxes"]:
                peak = (s["max_rss_kib"] or 0) / 1024
                peaks.append(peak)
                print(f"  continuation sandbox {s['pid']}: {s['invocations']} invocation(s), peak RSS {peak:.1f} MiB, "
                      f"cold start {s['cold_start_ms']:.1f} ms, end {s['end']}")
            summary = {k: v for k, v in delivered.items() if k not in ("results", "stats")}
            print(f"  mapping: {json.dumps(summary)}")
            if delivered["failed"] or delivered["errors"]:
                ok = False
            depth = queue_depth(sqs, queue_url)
            if depth:
                ok = False
                print(f"  FAILED: {depth} message(s) still on the queue")
        elapsed = time.monotonic() - t0

    calls = json.loads(http("GET", "/_test/calls"))
    total = {k: sum(c.get(k, 0) for c in counts)
             for k in ("passed", "failed", "timed_out", "cleaned_up")}
    # Pending handed on by each run, less those a continuation judged: what was never judged.
    handed_on = sum(c.get("pending", 0) for c in counts)
    judged_later = sum(c.get("passed", 0) + c.get("failed", 0) + c.get("timed_out", 0) for c in counts[1:])
    total["pending"] = handed_on - judged_later
    total = {k: total[k] for k in ("passed", "failed", "timed_out", "pending", "cleaned_up")}
    invocations = 1 + (delivered["invocations"] if delivered else 0)
    max_rss = max(peaks)
    objects = evidence_objects()
    dr_instances, dr_volumes = leftovers(DR)
    home_instances, home_volumes = leftovers(HOME)
    passed_marks = marked(DR, "passed")

    print(f"  invocations: {invocations}, {elapsed:.1f} s from the first event to the queue's end, "
          f"max peak RSS {max_rss:.1f} MiB")
    print(f"  counts: {json.dumps(total)}")
    print(f"  evidence objects in s3://{BUCKET}/drills/: {objects} (want {n})")
    print(f"  AMIs in {DR} tagged {PREFIX}:drill-result=passed: {passed_marks}")
    print(f"  drill resources of {DEPLOYMENT} left in {DR}: {len(dr_instances)} instances, {len(dr_volumes)} volumes"
          + (f" {dr_instances[:5] + dr_volumes[:5]}" if dr_instances or dr_volumes else ""))
    print(f"  drill resources of {DEPLOYMENT} left in {HOME}: {len(home_instances)} instances, {len(home_volumes)} volumes")
    for region, by_action in sorted(calls.items()):
        print(f"  EC2 calls {region}: {json.dumps(dict(sorted(by_action.items())))}")

    checks = {
        f"all {n} passed": total["passed"] == n and total["failed"] == total["timed_out"] == total["pending"] == 0,
        f"{n} cleaned up": total["cleaned_up"] == n,
        f"{n} evidence objects": objects == n,
        "no leftovers": not (dr_instances or dr_volumes or home_instances or home_volumes),
        "every invocation succeeded": ok,
        f"peak RSS under {max_rss_mib:g} MiB": max_rss < max_rss_mib,
    }
    failed = [name for name, good in checks.items() if not good]
    print(f"  checks: {'ok' if not failed else 'FAILED: ' + ', '.join(failed)}")
    warnings = log_lines(log_path)
    if warnings:
        print(f"  the binary's WARN/ERROR lines ({log_path}, first {len(warnings)}):")
        for line in warnings:
            print(f"    {line[:600]}")
    sys.stdout.flush()
    return not failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--logs", help="directory for the binary's logs (default: a temporary one)")
    parser.add_argument("--max-rss-mib", type=float, default=32)
    parser.add_argument("--hold", action="store_true",
                        help="restores not ready until the first invocation ends: judged by its continuations")
    parser.add_argument("sizes", nargs="*", type=int, default=[100, 1000])
    args = parser.parse_args()
    print(f"binary {args.binary}: {os.path.getsize(args.binary) / 1e6:.2f} MB")
    print(f"EC2_RATE_LIMITS lifted: {', '.join(PACED)}; not paced by the function: {', '.join(NOT_PACED)}")
    logs_dir = Path(args.logs) if args.logs else Path(tempfile.mkdtemp(prefix="bench-drill-"))
    logs_dir.mkdir(parents=True, exist_ok=True)
    good = True
    for n in args.sizes:
        good = drill(args.binary, n, logs_dir, args.max_rss_mib, args.hold) and good
    sys.exit(0 if good else 1)


if __name__ == "__main__":
    main()
