"""The demo's story, told against the moto server at MOTO_URL with the real function binaries.

Run it through scripts/demo, which builds the binaries and starts the server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from esm import deliver  # noqa: E402
from lambda_invoke import invoke  # noqa: E402

MOTO = os.environ["MOTO_URL"]
HOME, DR = "us-east-1", "us-west-2"
ENV = {
    "AWS_ENDPOINT_URL": MOTO,
    "AWS_REGION": HOME,
    "AWS_ACCESS_KEY_ID": "demo",
    "AWS_SECRET_ACCESS_KEY": "demo",
    "COPY_TO_REGIONS": DR,
    # As Lambda sets them with JSON logging: one JSON object per log line.
    "AWS_LAMBDA_LOG_FORMAT": "JSON",
    "AWS_LAMBDA_LOG_LEVEL": "INFO",
}
TARGET = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
BIN = TARGET / "debug"
LOGS = TARGET / "demo-logs.jsonl"


def ec2(region: str = HOME):
    return boto3.client("ec2", region_name=region, endpoint_url=MOTO,
                        aws_access_key_id="demo", aws_secret_access_key="demo")


def tags(pairs: dict[str, str], kind: str):
    return [{"ResourceType": kind, "Tags": [{"Key": k, "Value": v} for k, v in pairs.items()]}] if pairs else []


def instance(name: str, extra: dict[str, str], data_volume: bool = False) -> str:
    out = ec2().run_instances(ImageId="ami-12345678", InstanceType="t3.micro", MinCount=1, MaxCount=1,
                              TagSpecifications=tags({"Name": name, **extra}, "instance"))
    iid = out["Instances"][0]["InstanceId"]
    if data_volume:
        vol = ec2().create_volume(AvailabilityZone=out["Instances"][0]["Placement"]["AvailabilityZone"], Size=20)
        ec2().attach_volume(VolumeId=vol["VolumeId"], InstanceId=iid, Device="/dev/sdf")
    return iid


def volume(name: str, extra: dict[str, str]) -> str:
    return ec2().create_volume(AvailabilityZone=f"{HOME}a", Size=10,
                               TagSpecifications=tags({"Name": name, **extra}, "volume"))["VolumeId"]


def event(name: str, replace: dict[str, str] | None = None):
    text = (ROOT / "events" / name).read_text()
    for old, new in (replace or {}).items():
        text = text.replace(old, new)
    return json.loads(text)


def run(function: str, payload, label: str, names: dict[str, str]) -> dict:
    print(f"\n== {function} <- {label}")
    with open(LOGS, "a") as logs:
        results, stats = invoke(str(BIN / function), [payload], env=ENV, timeout=120, logs=logs)
    result = results[0]
    if not result["ok"]:
        err = result["error"]
        print(f"   invocation failed: {err.get('errorType')}: {err.get('errorMessage')}")
        return {}
    report = result["response"]
    show_report(report, names)
    print(f"   (cold start {stats['cold_start_ms']:.0f} ms, invocation {stats['invoke_ms'][0]:.0f} ms, "
          f"peak RSS {stats['max_rss_kib'] / 1024:.1f} MiB)")
    return report


def show_report(report: dict, names: dict[str, str]) -> None:
    show = lambda rid: f"{names.get(rid, '')} ({rid})" if rid in names else rid  # noqa: E731
    for c in report.get("created", []):
        print(f"   created  {c['id']} of {show(c['source'])}  name={c['name']!r}")
    for s in report.get("skipped", []):
        where = f" -> {s['region']}" if s.get("region") else ""
        print(f"   skipped  {show(s['source'])}{where}: {s['reason']}")
    for c in report.get("copied", []):
        print(f"   copied   {show(c['source'])} -> {c['region']} as {c['id']}")
    for d in report.get("deferred", []):
        print(f"   deferred {show(d['source'])} -> {d['region']}: {d['reason']}")
    for f in report.get("failed", []):
        print(f"   FAILED   {show(f['source'])}: {f['error']}")
    for w in report.get("warnings", []):
        print(f"   warning  {show(w['resource'])}: {w['key']}={w['value']!r}: {w['message']}")


def main() -> None:
    print(f"Local AWS (moto) at {MOTO}; home region {HOME}, DR region {DR}")
    print(f"The functions' JSON logs go to {LOGS}")
    LOGS.unlink(missing_ok=True)
    names: dict[str, str] = {}
    seeds = [
        ("web-01", {"Backup": "true", "CostCenter": "42"}, True),
        ("db-01", {"backup": "yes", "backup:retention": "14d", "backup:interval": "12h"}, False),
        ("batch-01", {"Backup": "true", "backup:retention": "forever"}, False),
        ("scratch", {}, False),
        ("legacy", {"Backup": "false"}, False),
    ]
    for name, extra, data in seeds:
        iid = instance(name, extra, data)
        names[iid] = name
        print(f"instance {name:<9} {iid}  tags={extra}")
    for name, extra in [("db-data", {"Backup": "true", "backup:copy-to": "none"}), ("tmp", {})]:
        vid = volume(name, extra)
        names[vid] = name
        print(f"volume   {name:<9} {vid}  tags={extra}")

    run("create-image", event("scheduled-event.json"), "the nightly schedule", names)
    run("create-snapshot", event("scheduled-event.json"), "the nightly schedule", names)

    api = instance("api-01", {})
    names[api] = "api-01"
    print(f"\nA user tags a new instance api-01 ({api}) Backup=true")
    ec2().create_tags(Resources=[api], Tags=[{"Key": "Backup", "Value": "true"}])
    tag_event = event("tag-change-instance.json", {"i-0123456789abcdef0": api})
    run("create-image", tag_event, "Tag Change on api-01", names)
    run("create-image", tag_event, "the same Tag Change delivered again", names)
    run("create-image", {"instance_ids": ["i-0000000000000dead"]}, "an on-demand backup of a missing instance", names)
    run("create-image", {"instance": "web-01"}, "a malformed payload", names)

    print("\n== The backups in us-east-1, with their tags")
    for image in sorted(ec2().describe_images(Owners=["self"])["Images"], key=lambda i: i["Name"]):
        t = {x["Key"]: x["Value"] for x in image.get("Tags", [])}
        snaps = [m["Ebs"]["SnapshotId"] for m in image.get("BlockDeviceMappings", []) if "Ebs" in m]
        print(f"   AMI {image['ImageId']} {image['Name']}  snapshots={snaps}")
        print(f"       {json.dumps(t, sort_keys=True)}")
    for snap in ec2().describe_snapshots(OwnerIds=["self"])["Snapshots"]:
        t = {x["Key"]: x["Value"] for x in snap.get("Tags", [])}
        if t.get("backup:kind") == "snapshot":
            print(f"   snapshot {snap['SnapshotId']} of {snap['VolumeId']}: {snap.get('Description', '')}")
            print(f"       {json.dumps(t, sort_keys=True)}")

    replicate(names)
    expire(names)
    monitor()
    on_call(names)


def tag_backup(region: str, image_id: str, tags: dict[str, str]) -> None:
    """Moves a backup's clock (or holds it) by writing its tags, as the tests do."""
    image = ec2(region).describe_images(ImageIds=[image_id])["Images"][0]
    snaps = [m["Ebs"]["SnapshotId"] for m in image.get("BlockDeviceMappings", []) if "Ebs" in m]
    ec2(region).create_tags(Resources=[image_id, *snaps], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])


def expire(names: dict[str, str]) -> None:
    """An expiry pass after time has moved on: what is deleted and what is kept, and why."""
    mine = {i["ImageId"]: {t["Key"]: t["Value"] for t in i.get("Tags", [])}
            for i in ec2().describe_images(Owners=["self"])["Images"]}
    by_name = {names.get(t.get("backup:source"), ""): image_id for image_id, t in mine.items()}
    past = "2026-01-01T00:00:00Z"
    print("\nTime passes. We move the clocks by writing tags:")
    # web-01 gets a second, newer backup; its first one has expired.
    web = next(i for i, n in names.items() if n == "web-01")
    tag_backup(HOME, by_name["web-01"], {"backup:created-at": "2025-12-25T00:00:00Z", "backup:expires-at": past})
    results, _ = invoke(str(BIN / "create-image"), [{"instance_ids": [web]}], env=ENV, timeout=120,
                        logs=open(LOGS, "a"))
    newer = results[0]["response"]["created"][0]["id"]
    print(f"   web-01's first backup {by_name['web-01']} expired; {newer} is its newer one")
    tag_backup(HOME, by_name["batch-01"], {"backup:expires-at": past})
    print(f"   batch-01's only backup {by_name['batch-01']} expired (it is the last good one)")
    tag_backup(HOME, by_name["db-01"], {"backup:expires-at": past, "backup:hold": "true"})
    print(f"   db-01's backup {by_name['db-01']} expired, but is on hold (backup:hold=true)")
    ec2().register_image(Name="hand-made", RootDeviceName="/dev/sda1", TagSpecifications=[
        {"ResourceType": "image", "Tags": [{"Key": "backup:expires-at", "Value": past}]}])
    print("   a hand-made AMI that looks expired, not ours")

    for label, payload in (("a dry run", {"dry_run": True}), ("the nightly expiry", event("scheduled-event.json"))):
        print(f"\n== expire <- {label}")
        results, stats = invoke(str(BIN / "expire"), [payload], env=ENV, timeout=120, logs=open(LOGS, "a"))
        result = results[0]
        if not result["ok"]:
            print(f"   invocation failed: {result['error']}")
            continue
        report = result["response"]
        for region, r in sorted(report.get("regions", {}).items()):
            for d in r.get("deregistered", []):
                print(f"   {region} deregistered {d['id']} ({names.get(d.get('source'), d.get('source'))}): {d.get('reason')}")
            for d in r.get("deleted_snapshots", []):
                print(f"   {region} deleted snapshot {d['id']}: {d.get('reason')}")
            for k in r.get("kept", []):
                print(f"   {region} kept {k['id']} ({names.get(k.get('source'), k.get('source', ''))}): {k['reason']}")
            for f in r.get("failed", []):
                print(f"   {region} FAILED {f}")
        print(f"   (dry run: {report.get('dry_run')}; cold start {stats['cold_start_ms']:.0f} ms, "
              f"invocation {stats['invoke_ms'][0]:.0f} ms, peak RSS {stats['max_rss_kib'] / 1024:.1f} MiB)")


def monitor() -> None:
    """What the hourly monitor publishes for the alarms: where every region stands."""
    print("\n== monitor <- its hourly schedule")
    with open(LOGS, "a") as logs:
        results, stats = invoke(str(BIN / "monitor"), [event("scheduled-event.json")], env=ENV, timeout=120,
                                logs=logs)
    result = results[0]
    if not result["ok"]:
        print(f"   invocation failed: {result['error']}")
        return
    for region, r in result["response"]["regions"].items():
        print(f"   {region}: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in r.items()))
    print(f"   (cold start {stats['cold_start_ms']:.0f} ms, invocation {stats['invoke_ms'][0]:.0f} ms, "
          f"peak RSS {stats['max_rss_kib'] / 1024:.1f} MiB; the same figures go to CloudWatch as metrics)")


def on_call(names: dict[str, str]) -> None:
    """The on-call view, then a restore of web-01 in the DR region."""
    cli = str(BIN / "ec2-backup")
    env = {**os.environ, **ENV}
    print("\n== ec2-backup status")
    out = subprocess.run([cli, "status"], env=env, capture_output=True, text=True)
    print(out.stdout.rstrip())
    print(f"   (exit code {out.returncode}: non-zero while anything is late or has no backup)")
    web = next(i for i, n in names.items() if n == "web-01")
    print(f"\n== ec2-backup restore instance {web} --region {DR}")
    out = subprocess.run([cli, "restore", "instance", web, "--region", DR], env=env, capture_output=True, text=True)
    print(out.stderr.rstrip())
    if out.returncode == 0:
        new = out.stdout.strip()
        inst = ec2(DR).describe_instances(InstanceIds=[new])["Reservations"][0]["Instances"][0]
        tags = {t["Key"]: t["Value"] for t in inst.get("Tags", [])}
        print(f"   {new} is {inst['State']['Name']} in {DR}, tags {json.dumps(tags, sort_keys=True)}")


def replicate(names: dict[str, str]) -> None:
    """Each backup arriving in the DR region: the events EC2 sends when a backup is ready, put
    on replicate's work queue as its rules do (with one delivered twice) and handed to it in
    batches by the event source mapping, then the reconcile sweep that finds nothing missing."""
    mine = [i for i in ec2().describe_images(Owners=["self"])["Images"]
            if {t["Key"]: t["Value"] for t in i.get("Tags", [])}.get("backup:managed-by")]
    events = []
    for image in sorted(mine, key=lambda i: i["Name"]):
        names[image["ImageId"]] = image["Name"]
        events.append(event("ami-state-change-available.json", {"ami-0a1b2c3d4e5f67890": image["ImageId"]}))
    if mine:
        events.append(events[0])  # EventBridge delivers at least once
    for snap in ec2().describe_snapshots(OwnerIds=["self"])["Snapshots"]:
        t = {x["Key"]: x["Value"] for x in snap.get("Tags", [])}
        if t.get("backup:kind") == "snapshot":
            events.append(event("ebs-snapshot-create-succeeded.json", {"snap-01234567890abcdef": snap["SnapshotId"]}))
    sqs = boto3.client("sqs", region_name=HOME, endpoint_url=MOTO,
                       aws_access_key_id="demo", aws_secret_access_key="demo")
    queue = sqs.create_queue(QueueName="ec2-backup-replicate", Attributes={"VisibilityTimeout": "720"})["QueueUrl"]
    for i in range(0, len(events), 10):
        sqs.send_message_batch(QueueUrl=queue, Entries=[{"Id": str(j), "MessageBody": json.dumps(e)}
                                                        for j, e in enumerate(events[i:i + 10])])
    print(f"\n== replicate <- its work queue: {len(events)} events the rules put there "
          "(the first AMI's twice), in batches of up to 100")
    with open(LOGS, "a") as logs:
        summary = deliver(str(BIN / "replicate"), queue, env={**ENV, "WORK_QUEUE_URL": queue}, timeout=120,
                          batch_size=100, batching_window=1, wait_seconds=1, idle=2, logs=logs)
    for entry in summary["results"]:
        answer = entry.get("response") or {}
        print(f"   one invocation, {len(entry['records'])} records, {entry['ms']:.0f} ms, "
              f"batch item failures: {answer.get('batchItemFailures')}")
        for record in answer.get("records", []):
            print(f"   record {record['messageId'][:8]}:")
            show_report(record.get("result") or {}, names)
    run("replicate", event("scheduled-event.json"), "the reconcile sweep", names)

    print(f"\n== The copies in {DR}, with their tags")
    for image in sorted(ec2(DR).describe_images(Owners=["self"])["Images"], key=lambda i: i["Name"]):
        t = {x["Key"]: x["Value"] for x in image.get("Tags", [])}
        print(f"   AMI {image['ImageId']} {image['Name']}")
        keep = ("backup:copy-of", "backup:source-region", "backup:created-at", "backup:expires-at", "Name")
        print(f"       {json.dumps({k: t[k] for k in keep if k in t}, sort_keys=True)}")
    print(f"\n== What the originals in {HOME} say about their copies (backup:copies)")
    for image in sorted(mine, key=lambda i: i["Name"]):
        tags_now = ec2().describe_images(ImageIds=[image["ImageId"]])["Images"][0].get("Tags", [])
        copies = {t["Key"]: t["Value"] for t in tags_now}.get("backup:copies", "(none)")
        print(f"   {image['ImageId']} {image['Name']}: {copies}")


if __name__ == "__main__":
    main()
