"""The EventBridge rules of infra/template.yaml against the samples in events/,
through a real matcher: moto's EventBridge (its TestEventPattern is not
implemented, so each rule is created with an SQS queue as its target and every
sample is sent with PutEvents). events/routing.json says which function each
sample is for; a sample must arrive at exactly the rules of that function.

moto, unlike AWS, accepts PutEvents with an `aws.*` source, which is what lets
the AWS-sent samples be replayed here. It rewrites `account` and `region` to
its own, which no pattern here looks at.

Run: .venv/bin/python -m pytest tests/infra -q
"""

from __future__ import annotations

import fnmatch
import json
import sys
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from cfn_template import ROOT, Resolver, event_rules, functions, load

sys.path.insert(0, str(ROOT / "tests"))
from moto_process import running_moto  # noqa: E402

EVENTS = ROOT / "events"
ROUTING = json.loads((EVENTS / "routing.json").read_text())
REGION = "us-east-1"


@pytest.fixture(scope="module")
def moto_url(tmp_path_factory):
    """A private moto server (never the shared one: other tests reset it)."""
    with running_moto(tmp_path_factory.mktemp("moto-events")) as url:
        yield url


def client(service: str, url: str):
    return boto3.client(service, region_name=REGION, endpoint_url=url,
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=Config(retries={"max_attempts": 1}))


def samples() -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted(EVENTS.glob("*.json"))
            if p.name != "routing.json"}


def expected_function(name: str) -> str | None:
    """The function a sample is for (None: nobody); every sample is listed once."""
    owners = [fn for fn, globs in ROUTING["functions"].items()
              if any(fnmatch.fnmatch(name, g) for g in globs)]
    nobody = any(fnmatch.fnmatch(name, g) for g in ROUTING["nobody"])
    assert len(owners) + nobody == 1, (
        f"events/{name} must be listed exactly once in events/routing.json "
        f"(functions: {owners}, nobody: {nobody})")
    return owners[0] if owners else None


def pattern_rules(overrides: dict[str, str] | None = None) -> list[tuple[str, str, dict]]:
    """(function, rule name, resolved pattern) for every pattern rule that reaches a function,
    straight or through its work queue."""
    template = load()
    resolver = Resolver(template, overrides)
    return [(binary, name, resolver.resolve(rule["Pattern"]))
            for binary, name, rule in event_rules(template) if rule["Pattern"] is not None]


def as_entry(sample: dict) -> dict:
    if "detail-type" in sample:
        return {"Source": sample["source"], "DetailType": sample["detail-type"],
                "Detail": json.dumps(sample["detail"]), "Resources": sample.get("resources", []),
                "Time": sample["time"]}
    # A direct-invocation payload ({"instance_ids": [...]}) is no event: send it
    # as the detail of a custom one, which must reach no rule either.
    return {"Source": "ec2-backup.test", "DetailType": "direct invocation payload",
            "Detail": json.dumps(sample)}


def deliveries(url: str, rules: list[tuple[str, str, dict]], events: dict[str, dict]) -> dict[str, set[str]]:
    """Creates the rules with one queue each, sends every sample; rule -> samples that arrived."""
    requests = client("events", url)
    sqs = client("sqs", url)
    queues = {}
    for _, rule, pattern in rules:
        queue_url = sqs.create_queue(QueueName=rule)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        requests.put_rule(Name=rule, EventPattern=json.dumps(pattern), State="ENABLED")
        requests.put_targets(Rule=rule, Targets=[{"Id": "queue", "Arn": arn}])
        queues[rule] = queue_url
    # One sample per PutEvents; moto delivers synchronously, and the event id it
    # returns identifies the message that arrives.
    by_id = {}
    for name, sample in events.items():
        out = requests.put_events(Entries=[as_entry(sample)])
        assert out["FailedEntryCount"] == 0, (name, out)
        by_id[out["Entries"][0]["EventId"]] = name
    arrived: dict[str, set[str]] = {}
    for rule, queue_url in queues.items():
        got = set()
        while True:
            msgs = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not msgs:
                break
            for m in msgs:
                got.add(by_id[json.loads(m["Body"])["id"]])
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
        arrived[rule] = got
    for _, rule, _ in rules:
        requests.remove_targets(Rule=rule, Ids=["queue"])
        requests.delete_rule(Name=rule)
        sqs.delete_queue(QueueUrl=queues[rule])
    return arrived


def test_routing_lists_every_sample_once():
    listed = {fn for fn in ROUTING["functions"]}
    assert listed == set(functions(load())), "routing.json names the template's functions"
    for name in samples():
        expected_function(name)
    # and no entry is stale
    for globs in [*ROUTING["functions"].values(), ROUTING["nobody"]]:
        for g in globs:
            assert any(fnmatch.fnmatch(n, g) for n in samples()), f"routing.json: {g} matches no sample"


def test_each_sample_reaches_exactly_the_rules_of_its_function(moto_url):
    events = samples()
    rules = pattern_rules()
    assert rules, "the template has no pattern rules"
    arrived = deliveries(moto_url, rules, events)
    problems = []
    for binary, rule, _ in rules:
        want = {n for n in events if expected_function(n) == binary}
        # A function with several rules: each sample must reach one of them,
        # checked below; here, no rule may take another function's sample.
        stray = arrived[rule] - want
        if stray:
            problems.append(f"{rule} ({binary}) also matches {sorted(stray)}")
    for name in events:
        owner = expected_function(name)
        hit = sorted(rule for binary, rule, _ in rules if name in arrived[rule])
        if owner is None and hit:
            problems.append(f"{name} is for nobody but reaches {hit}")
        if owner is not None:
            own = [r for b, r, _ in rules if b == owner and name in arrived[r]]
            if len(own) != 1:
                problems.append(f"{name} is for {owner} and reaches {len(own)} of its rules: {hit}")
    assert not problems, "\n".join(problems)


def test_the_opt_in_rules_follow_the_tag_prefix(moto_url):
    """With TagPrefix=Snap the Tag Change rules match Snap/SNAP/snap, no longer Backup."""
    base = samples()["tag-change-instance.json"]
    events = {}
    for key in ["Snap", "SNAP", "snap", "Backup", "Snapshot", "snap:retention"]:
        sample = json.loads(json.dumps(base))
        sample["detail"]["changed-tag-keys"] = [key]
        events[key] = sample
    rules = [r for r in pattern_rules({"TagPrefix": "Snap"}) if r[0] == "create-image"]
    arrived = deliveries(moto_url, rules, events)
    got = set().union(*arrived.values())
    assert got == {"Snap", "SNAP", "snap"}
