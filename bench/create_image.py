"""Measures create-image's schedule sweep against the moto server at MOTO_URL.

For each N: reset the server, seed N opted-in instances (half in reservations of one instance,
half in reservations of ten, plus N/10 instances that do not opt in), run the release binary
through the Lambda Runtime API (tests/lambda_invoke.py) with the scheduled event, and print cold
start, wall time, client CPU, peak RSS and the EC2 calls by action. Then a second sweep, where
nothing is due, measures the cost of a sweep that only reads.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.request
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from lambda_invoke import invoke  # noqa: E402

MOTO = os.environ["MOTO_URL"]
REGION = "us-east-1"
UNPACED = ",".join(f"{a}=100000/100000" for a in ("CreateImage", "DescribeInstances", "DescribeImages"))


def http(method: str, path: str) -> bytes:
    req = urllib.request.Request(MOTO + path, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(req) as resp:
        return resp.read()


def http_json(method: str, path: str, payload: object) -> bytes:
    req = urllib.request.Request(MOTO + path, method=method, data=json.dumps(payload).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as resp:
        return resp.read()


def seed(n: int) -> None:
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=MOTO,
                       aws_access_key_id="bench", aws_secret_access_key="bench")

    def run(count: int, tags: dict[str, str]) -> None:
        ec2.run_instances(ImageId="ami-12345678", InstanceType="t3.micro", MinCount=count, MaxCount=count,
                          TagSpecifications=[{"ResourceType": "instance",
                                              "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}])

    singles = n // 2
    for i in range(singles):
        run(1, {"Backup": "true", "Name": f"single-{i}", "Team": "bench"})
    for i in range((n - singles) // 10):
        run(10, {"Backup": "true", "Name": f"fleet-{i}", "Team": "bench"})
    for i in range(n - singles - (n - singles) // 10 * 10):
        run(1, {"Backup": "true", "Name": f"extra-{i}"})
    for i in range(n // 10):
        run(1, {"Name": f"untagged-{i}"})


def sweep(binary: str) -> dict:
    http("POST", "/_test/calls/reset")
    event = json.loads((ROOT / "events" / "scheduled-event.json").read_text())
    # This bench measures CPU, memory and cold start, not EC2's pace: the function's pacing is
    # lifted and the server's throttling buckets are off (see seed_buckets).
    env = {"AWS_ENDPOINT_URL": MOTO, "AWS_REGION": REGION, "AWS_ACCESS_KEY_ID": "bench",
           "AWS_SECRET_ACCESS_KEY": "bench", "AWS_LAMBDA_LOG_LEVEL": "WARN", "RUST_LOG": "warn",
           "EC2_RATE_LIMITS": UNPACED}
    with open(os.devnull, "w") as logs:
        results, stats = invoke(binary, [event], env=env, timeout=600, logs=logs)
    if not results[0]["ok"]:
        raise SystemExit(f"the sweep failed: {results[0]['error']}")
    calls = json.loads(http("GET", "/_test/calls")).get(REGION, {})
    report = results[0]["response"]
    total_calls = sum(calls.values())
    cpu_ms = stats["cpu_user_ms"] + stats["cpu_sys_ms"]
    return {
        "created": len(report["created"]),
        "skipped": len(report["skipped"]),
        "failed": len(report["failed"]),
        "cold_start_ms": stats["cold_start_ms"],
        "wall_ms": stats["invoke_ms"][0],
        "cpu_ms": round(cpu_ms, 1),
        "cpu_user_ms": round(stats["cpu_user_ms"], 1),
        "cpu_sys_ms": round(stats["cpu_sys_ms"], 1),
        "cpu_ms_per_call": round(cpu_ms / total_calls, 3) if total_calls else None,
        "peak_rss_mib": round(stats["max_rss_kib"] / 1024, 1),
        "calls": dict(sorted(calls.items())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--binary", required=True)
    parser.add_argument("sizes", nargs="*", type=int, default=[100, 1000])
    args = parser.parse_args()
    size = os.path.getsize(args.binary)
    print(f"binary {args.binary}: {size / 1e6:.2f} MB")
    header = f"{'N':>5} {'sweep':<9} {'created':>7} {'skipped':>7} {'cold ms':>8} {'wall ms':>8} {'cpu ms':>7} {'usr/sys':>11} {'cpu/call':>8} {'RSS MiB':>8}  calls"
    print(header)
    for n in args.sizes:
        http("POST", "/moto-api/reset")
        http_json("POST", "/_test/buckets", {"buckets": {}})
        seed(n)
        for label in ("first", "repeat"):
            r = sweep(args.binary)
            print(f"{n:>5} {label:<9} {r['created']:>7} {r['skipped']:>7} {r['cold_start_ms']:>8.1f} {r['wall_ms']:>8.1f} "
                  f"{r['cpu_ms']:>7.1f} {str(r['cpu_user_ms']) + '/' + str(r['cpu_sys_ms']):>11} {r['cpu_ms_per_call'] or 0:>8.3f} {r['peak_rss_mib']:>8.1f}  "
                  f"{json.dumps(r['calls'])}", flush=True)


if __name__ == "__main__":
    main()
