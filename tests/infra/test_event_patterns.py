"""The EventBridge rules of infra/template.yaml against the samples in events/,
through a real matcher: moto's EventBridge (its TestEventPattern is not
implemented, so each rule is created with an SQS queue as its target and every
sample is sent with PutEvents). events/routing.json says which function each
sample is for; a sample must arrive at exactly the rules of that function.

moto, unlike AWS, accepts PutEvents with an `aws.*` source, which is what lets
the AWS-sent samples be replayed here. An event's `account` and `region` are those of
the account that puts it (tests/moto_server.py: a 12-digit access key id is that
account), not the sample's.

The isolated DR account: the rules are deployed as a vault (SourceAccounts) in moto's
default account, and a Backup Shared sample is put where it starts, by the home account
that shares (the sample's `account`), whose copy of the template's forwarding rule sends
it on to the vault's bus, which admits it through the template's bus policy (moto's
stand-in evaluates who the policy admits); it arrives with the home account in `account`,
which the vault's rule looks at.

Run: .venv/bin/python -m pytest tests/infra -q
"""

from __future__ import annotations

import fnmatch
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from cfn_template import PSEUDO, ROOT, Resolver, event_rules, exists, forwarding_rules, functions, load

sys.path.insert(0, str(ROOT / "tests"))
from moto_process import running_moto  # noqa: E402

EVENTS = ROOT / "events"
ROUTING = json.loads((EVENTS / "routing.json").read_text())
REGION = "us-east-1"
# moto's default account (the "testing" key): where the rules under test are deployed.
VAULT_ACCOUNT = PSEUDO["AWS::AccountId"]
# The account that shares in events/backup-shared.json and events/ebs-snapshot-share.json.
HOME_ACCOUNT = "111122223333"
STRANGER = "999988887777"
VAULT = {"SourceAccounts": HOME_ACCOUNT}


@pytest.fixture(scope="module")
def moto_url(tmp_path_factory):
    """A private moto server (never the shared one: other tests reset it)."""
    with running_moto(tmp_path_factory.mktemp("moto-events")) as url:
        yield url


def client(service: str, url: str, account: str | None = None):
    """A client in `account` (moto's stand-in reads a 12-digit key id as the account), else in
    moto's default account."""
    return boto3.client(service, region_name=REGION, endpoint_url=url,
                        aws_access_key_id=account or "testing", aws_secret_access_key="testing",
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
    straight or through its work queue, in a stack deployed with `overrides`."""
    template = load()
    resolver = Resolver(template, overrides)
    return [(binary, name, resolver.resolve(rule["Pattern"]))
            for binary, name, rule in event_rules(template)
            if rule["Pattern"] is not None and exists(resolver, rule)]


def forwarding_rule(account: str, dr_account: str) -> tuple[dict, dict]:
    """The home stack's forwarding rule as `account` deploys it with DrAccount=`dr_account`:
    (pattern, target)."""
    template = load()
    resolver = Resolver(template, {"DrAccount": dr_account}, pseudo={"AWS::AccountId": account})
    (_, rule), = forwarding_rules(template)
    return resolver.resolve(rule["Pattern"]), resolver.resolve(rule["Target"])


@contextmanager
def homes_forwarding(url: str, accounts: set[str], dr_account: str = VAULT_ACCOUNT) -> Iterator[None]:
    """Each of `accounts` deploys the home stack with DrAccount=`dr_account`: its forwarding
    rule on its own default bus (moto ignores the role)."""
    made = []
    try:
        for account in sorted(accounts):
            pattern, target = forwarding_rule(account, dr_account)
            events = client("events", url, account)
            events.put_rule(Name="ShareForwardRule", EventPattern=json.dumps(pattern), State="ENABLED")
            made.append(events)
            events.put_targets(Rule="ShareForwardRule", Targets=[
                {"Id": target["Id"], "Arn": target["Arn"], "RoleArn": f"arn:aws:iam::{account}:role/forward"}])
        yield
    finally:
        for events in made:
            events.remove_targets(Rule="ShareForwardRule", Ids=["dr-account-event-bus"])
            events.delete_rule(Name="ShareForwardRule")


@contextmanager
def vault_bus_policy(url: str, overrides: dict[str, str] = VAULT, statement: dict | None = None) -> Iterator[None]:
    """The vault stack's policy on the default bus of moto's default account (or `statement`
    instead of the template's)."""
    if statement is None:
        props = Resolver(load(), overrides).resolve(load()["Resources"]["VaultEventBusPolicy"]["Properties"])
        statement = {"Sid": props["StatementId"], **props["Statement"]}
    events = client("events", url)
    events.put_permission(EventBusName="default", Policy=json.dumps({"Version": "2012-10-17",
                                                                      "Statement": [statement]}))
    try:
        yield
    finally:
        events.remove_permission(EventBusName="default", RemoveAllPermissions=True)


def shared_by_a_home(sample: dict) -> bool:
    """A sample that a home deployment puts on its own bus (ours, not AWS's): it starts in the
    sample's account and reaches the vault only through the forwarding rule."""
    return sample.get("source") == "ec2-backup"


def as_entry(sample: dict) -> dict:
    if "detail-type" in sample:
        return {"Source": sample["source"], "DetailType": sample["detail-type"],
                "Detail": json.dumps(sample["detail"]), "Resources": sample.get("resources", []),
                "Time": sample["time"]}
    # A direct-invocation payload ({"instance_ids": [...]}) is no event: send it
    # as the detail of a custom one, which must reach no rule either.
    return {"Source": "ec2-backup.test", "DetailType": "direct invocation payload",
            "Detail": json.dumps(sample)}


def content(event: dict) -> str:
    return json.dumps([event["source"], event["detail-type"], event["detail"]], sort_keys=True)


def deliveries(url: str, rules: list[tuple[str, str, dict]], events: dict[str, dict],
               senders: dict[str, str] | None = None) -> dict[str, set[str]]:
    """Creates the rules with one queue each in moto's default account, sends every sample (by
    the account `senders` names for it, else by that account); rule -> samples that arrived. A
    sample that arrives forwarded from another account has a new id there: it is known by its
    source, detail-type and detail."""
    senders = senders or {}
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
    by_id, by_content = {}, {}
    for name, sample in events.items():
        sender = client("events", url, senders[name]) if name in senders else requests
        out = sender.put_events(Entries=[as_entry(sample)])
        assert out["FailedEntryCount"] == 0, (name, out)
        by_id[out["Entries"][0]["EventId"]] = name
        if name in senders:
            assert content(sample) not in by_content, f"{name}: two forwarded samples alike"
            by_content[content(sample)] = name
    arrived: dict[str, set[str]] = {}
    for rule, queue_url in queues.items():
        got = set()
        while True:
            msgs = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not msgs:
                break
            for m in msgs:
                body = json.loads(m["Body"])
                got.add(by_id.get(body["id"]) or by_content[content(body)])
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
    rules = pattern_rules(VAULT)
    assert rules, "the template has no pattern rules"
    senders = {name: sample["account"] for name, sample in events.items() if shared_by_a_home(sample)}
    assert set(senders.values()) == {HOME_ACCOUNT}
    with homes_forwarding(moto_url, set(senders.values())), vault_bus_policy(moto_url):
        arrived = deliveries(moto_url, rules, events, senders)
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


def backup_shared(backup: str) -> dict:
    """events/backup-shared.json for another backup (forwarded samples are known by content)."""
    sample = json.loads(json.dumps(samples()["backup-shared.json"]))
    sample["detail"]["backup"] = backup
    return sample


def replicate_arrivals(arrived: dict[str, set[str]], rules: list[tuple[str, str, dict]]) -> set[str]:
    return set().union(*(arrived[name] for binary, name, _ in rules if binary == "replicate"))


def test_a_share_from_a_stranger_reaches_no_rule(moto_url):
    """A Backup Shared event from an account not in SourceAccounts: the vault's bus refuses it
    (its policy admits SourceAccounts only), and were the bus opened to everyone (a wider policy
    added by hand), the rule's account filter would still keep it from replicate. A shareSnapshot
    from a stranger (detail.source) reaches no rule either. The home account's share, sent
    alongside, arrives: the refusals are the stranger's only."""
    rules = pattern_rules(VAULT)
    events = {"home": backup_shared("ami-0home"), "stranger": backup_shared("ami-0stranger")}
    senders = {"home": HOME_ACCOUNT, "stranger": STRANGER}
    snapshot = json.loads(json.dumps(samples()["ebs-snapshot-share.json"]))
    snapshot["detail"]["source"] = STRANGER
    events["stranger's snapshot"] = snapshot
    with homes_forwarding(moto_url, {HOME_ACCOUNT, STRANGER}):
        with vault_bus_policy(moto_url):
            arrived = deliveries(moto_url, rules, events, senders)
        assert replicate_arrivals(arrived, rules) == {"home"}
        assert set().union(*arrived.values()) == {"home"}
        everyone = {"Sid": "everyone", "Effect": "Allow", "Principal": "*", "Action": "events:PutEvents",
                    "Resource": f"arn:aws:events:{REGION}:{VAULT_ACCOUNT}:event-bus/default"}
        with vault_bus_policy(moto_url, statement=everyone):
            arrived = deliveries(moto_url, rules, events, senders)
        assert set().union(*arrived.values()) == {"home"}


def test_without_a_bus_policy_no_share_arrives(moto_url):
    """A vault whose bus admits nobody (the policy missing) hears of no Backup Shared event:
    the forwarded event is dropped at the bus (the sender's rule counts a failed invocation)."""
    rules = pattern_rules(VAULT)
    with homes_forwarding(moto_url, {HOME_ACCOUNT}):
        arrived = deliveries(moto_url, rules, {"home": backup_shared("ami-0home")}, {"home": HOME_ACCOUNT})
    assert set().union(*arrived.values()) == set()


def test_a_home_only_deployment_sends_no_share_to_replicate(moto_url):
    """Deployed as a home (DrAccount) and not as a vault, the stack has no rule for shares: its
    own Backup Shared event and a shareSnapshot notification reach no function's rule."""
    rules = pattern_rules({"DrAccount": "444455556666"})
    names = {"backup-shared.json", "ebs-snapshot-share.json"}
    assert not {name for _, name, _ in rules} & {"ReplicateBackupSharedRule", "ReplicateSnapshotSharedRule"}
    arrived = deliveries(moto_url, rules, {n: s for n, s in samples().items() if n in names})
    assert set().union(*arrived.values()) == set()


def test_the_home_forwards_its_own_backup_shared_events_and_nothing_else(moto_url):
    """The forwarding rule, as the home account deploys it, against every sample put by that
    account: only the Backup Shared event (AWS's events and the samples of other kinds stay home)."""
    pattern, _ = forwarding_rule(VAULT_ACCOUNT, "444455556666")
    arrived = deliveries(moto_url, [("home", "ShareForwardRule", pattern)], samples())
    assert arrived["ShareForwardRule"] == {"backup-shared.json"}
