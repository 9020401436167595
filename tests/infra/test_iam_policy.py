"""expire's and drill's roles in infra/template.yaml, evaluated request by request with
the small evaluator in iam_policy.py (whose own semantics are tested first): what expire
must be able to do to an AMI of its own and its snapshots, tagged or not, and what it must
never be able to do to anyone else's; what drill must be able to restore, tag, remove and
write, and that it can remove nothing but its own throwaways. Then the isolated DR account:
the home replicate shares only its own backups and only with DrAccount, and announces them
only on its own bus; the forwarding role puts only on the DR account's bus; the vault's bus
admits exactly SourceAccounts; the vault replicate copies only what it or a source account
owns, tagged as its own, and locks and protects only its own copies; the vault expire lifts
only its own protection.

Run: .venv/bin/python -m pytest tests/infra -q
"""

from __future__ import annotations

import pytest

from cfn_template import Resolver, as_list, document_statements, functions, load, policy_statements, role_of
from iam_policy import (
    Request,
    allowed,
    allowed_all,
    allowed_for,
    copy_image,
    copy_snapshot,
    create_security_group,
    create_volume,
    deregister_with_snapshots,
    ec2_arn,
    image_arn,
    run_instances,
    snapshot_arn,
)

TEMPLATE = load()
DEFAULT = {"TagPrefix": "backup", "DeploymentName": "ec2-backup"}
OTHER = {"TagPrefix": "Snap", "DeploymentName": "prod-backup"}
EXPIRY = "2026-11-25T03:00:00Z"


# ---------------------------------------------------------------- the evaluator itself

def stmt(condition: dict | None = None, action="ec2:CreateTags", resource="arn:aws:ec2:*::snapshot/*",
         effect="Allow") -> dict:
    s = {"Effect": effect, "Action": action, "Resource": resource}
    if condition is not None:
        s["Condition"] = condition
    return s


SNAP = snapshot_arn("snap-1")


def test_a_request_no_statement_allows_is_denied_and_a_deny_wins():
    assert not allowed([], Request("ec2:CreateTags", SNAP))
    assert allowed([stmt()], Request("ec2:CreateTags", SNAP))
    assert not allowed([stmt(), stmt(effect="Deny")], Request("ec2:CreateTags", SNAP))


def test_actions_match_in_any_case_and_resources_by_wildcard():
    assert allowed([stmt(action="ec2:createtags")], Request("ec2:CreateTags", SNAP))
    assert not allowed([stmt(action="ec2:CreateTags")], Request("ec2:DeleteTags", SNAP))
    assert allowed([stmt(action="ec2:Create*")], Request("ec2:CreateTags", SNAP))
    assert not allowed([stmt()], Request("ec2:CreateTags", image_arn("ami-1")))
    assert not allowed([stmt(resource="arn:aws:ec2:*::Snapshot/*")], Request("ec2:CreateTags", SNAP))


def test_a_single_valued_operator_on_a_missing_key_is_false_unless_if_exists():
    cond = {"StringEquals": {"aws:ResourceTag/owner": "me"}}
    assert not allowed([stmt(cond)], Request("ec2:CreateTags", SNAP))
    assert allowed([stmt(cond)], Request("ec2:CreateTags", SNAP, {"owner": "me"}))
    assert not allowed([stmt(cond)], Request("ec2:CreateTags", SNAP, {"owner": "Me"}))
    if_exists = {"StringEqualsIfExists": {"aws:ResourceTag/owner": "me"}}
    assert allowed([stmt(if_exists)], Request("ec2:CreateTags", SNAP))
    assert not allowed([stmt(if_exists)], Request("ec2:CreateTags", SNAP, {"owner": "you"}))


def test_condition_key_names_match_in_any_case_values_do_not():
    cond = {"StringEquals": {"aws:ResourceTag/Backup:Managed-By": "ec2-backup"}}
    assert allowed([stmt(cond)], Request("ec2:CreateTags", SNAP, {"backup:managed-by": "ec2-backup"}))
    assert not allowed([stmt(cond)], Request("ec2:CreateTags", SNAP, {"backup:managed-by": "EC2-backup"}))


def test_values_of_a_key_are_or_keys_and_operators_are_and():
    cond = {"StringEquals": {"aws:ResourceTag/a": ["1", "2"], "aws:ResourceTag/b": "3"}}
    assert allowed([stmt(cond)], Request("ec2:CreateTags", SNAP, {"a": "2", "b": "3"}))
    assert not allowed([stmt(cond)], Request("ec2:CreateTags", SNAP, {"a": "2"}))
    both = {"StringEquals": {"aws:ResourceTag/a": "1"}, "Null": {"aws:ResourceTag/b": "true"}}
    assert allowed([stmt(both)], Request("ec2:CreateTags", SNAP, {"a": "1"}))
    assert not allowed([stmt(both)], Request("ec2:CreateTags", SNAP, {"a": "1", "b": ""}))


def test_string_like_wildcards_and_null():
    like = {"StringLike": {"aws:RequestTag/x": "ab*"}}
    assert allowed([stmt(like)], Request("ec2:CreateTags", SNAP, request_tags={"x": "abc"}))
    assert not allowed([stmt(like)], Request("ec2:CreateTags", SNAP, request_tags={"x": "xab"}))
    absent = {"Null": {"aws:ResourceTag/x": "true"}}
    present = {"Null": {"aws:ResourceTag/x": "false"}}
    assert allowed([stmt(absent)], Request("ec2:CreateTags", SNAP))
    assert not allowed([stmt(absent)], Request("ec2:CreateTags", SNAP, {"X": "1"}))
    assert allowed([stmt(present)], Request("ec2:CreateTags", SNAP, {"x": ""}))


def test_for_all_values_is_true_of_no_values_and_for_any_value_false():
    all_ = {"ForAllValues:StringLike": {"aws:TagKeys": ["p:*"]}}
    any_ = {"ForAnyValue:StringEquals": {"aws:TagKeys": ["p:a"]}}
    none = Request("ec2:CreateTags", SNAP)
    assert allowed([stmt(all_)], none), "vacuously true: why it never stands alone"
    assert not allowed([stmt(any_)], none)
    ok = Request("ec2:CreateTags", SNAP, request_tags={"p:a": "1", "p:b": "2"})
    assert allowed([stmt(all_)], ok) and allowed([stmt(any_)], ok)
    mixed = Request("ec2:CreateTags", SNAP, request_tags={"p:a": "1", "Name": "x"})
    assert not allowed([stmt(all_)], mixed) and allowed([stmt(any_)], mixed)


def test_a_call_on_several_resources_needs_every_one_and_set_keys_count():
    instance = ec2_arn("instance", "i-1")
    only_instances = stmt(action="ec2:RunInstances", resource="arn:aws:ec2:*:*:instance/*")
    assert allowed_all([only_instances], [Request("ec2:RunInstances", instance)])
    assert not allowed_all([only_instances], [Request("ec2:RunInstances", instance),
                                              Request("ec2:RunInstances", image_arn("ami-1"))])
    on_create = stmt({"StringEquals": {"ec2:CreateAction": ["RunInstances"]}}, resource="*")
    assert allowed([on_create], Request("ec2:CreateTags", instance, keys={"ec2:CreateAction": "RunInstances"}))
    assert not allowed([on_create], Request("ec2:CreateTags", instance, keys={"ec2:CreateAction": "CreateVolume"}))
    assert not allowed([on_create], Request("ec2:CreateTags", instance))


def test_bool_and_multivalued_request_keys():
    grant = {"Bool": {"kms:GrantIsForAWSResource": "true"}}
    assert allowed([stmt(grant, action="kms:CreateGrant", resource="*")],
                   Request("kms:CreateGrant", "k", keys={"kms:GrantIsForAWSResource": "TRUE"}))
    assert not allowed([stmt(grant, action="kms:CreateGrant", resource="*")],
                       Request("kms:CreateGrant", "k", keys={"kms:GrantIsForAWSResource": "false"}))
    assert not allowed([stmt(grant, action="kms:CreateGrant", resource="*")], Request("kms:CreateGrant", "k"))
    # a request adding two accounts: each must be allowed
    only_a = {"ForAllValues:StringEquals": {"ec2:Add/userId": ["a"]}}
    assert allowed([stmt(only_a)], Request("ec2:CreateTags", SNAP, keys={"ec2:Add/userId": ["a"]}))
    assert not allowed([stmt(only_a)], Request("ec2:CreateTags", SNAP, keys={"ec2:Add/userId": ["a", "b"]}))
    with pytest.raises(NotImplementedError):
        allowed([stmt({"StringEquals": {"ec2:Add/userId": "a"}})],
                Request("ec2:CreateTags", SNAP, keys={"ec2:Add/userId": ["a"]}))


def test_a_resource_policy_counts_for_the_accounts_it_names():
    named = {**stmt(action="events:PutEvents", resource="*"), "Principal": {"AWS": ["111122223333"]}}
    root = {**stmt(action="events:PutEvents", resource="*"),
            "Principal": {"AWS": "arn:aws:iam::111122223333:root"}}
    request = Request("events:PutEvents", "bus")
    for s in (named, root):
        assert allowed_for([s], "111122223333", request)
        assert not allowed_for([s], "999988887777", request)
    assert allowed_for([{**named, "Principal": "*"}], "999988887777", request)


def test_what_it_does_not_know_it_refuses_to_evaluate():
    request = Request("ec2:CreateTags", SNAP, request_tags={"a": "1"})
    for cond in [{"StringNotEquals": {"aws:ResourceTag/a": "1"}},
                 {"ArnLike": {"aws:SourceArn": "*"}},
                 {"StringEquals": {"aws:TagKeys": "a"}}]:
        with pytest.raises(NotImplementedError):
            allowed([stmt(cond)], request)
    with pytest.raises(NotImplementedError):
        allowed([{"Effect": "Allow", "NotAction": "ec2:*", "Resource": "*"}], request)


# ---------------------------------------------------------------- expire's role

def expire_statements(overrides: dict[str, str]) -> list[dict]:
    _, role = role_of(TEMPLATE, functions(TEMPLATE)["expire"][1])
    return policy_statements(Resolver(TEMPLATE, overrides), role)


def names(overrides: dict[str, str]) -> tuple[str, str, str]:
    prefix, name = overrides["TagPrefix"], overrides["DeploymentName"]
    return f"{prefix}:managed-by", f"{prefix}:expires-at", name


def claim(overrides: dict[str, str]) -> dict[str, str]:
    """The tags expire writes on a snapshot of an image it is about to delete."""
    managed_by, expires_at, name = names(overrides)
    return {managed_by: name, expires_at: EXPIRY}


@pytest.fixture(params=[DEFAULT, OTHER], ids=["defaults", "other-prefix-and-name"])
def params(request):
    return request.param


def test_every_operator_of_expires_role_is_one_the_evaluator_knows(params):
    # It raises on anything else: a change to the role that it cannot evaluate fails here.
    for s in expire_statements(params):
        for action in as_list(s["Action"]):
            allowed([s], Request(action, SNAP, {"k": "v"}, {"k": "v"}))


def test_an_untagged_snapshot_of_our_ami_is_claimed_then_deleted_with_it(params):
    stmts = expire_statements(params)
    managed_by, _, name = names(params)
    ours = {managed_by: name}
    # Before the claim, the one call could deregister the image but not delete the snapshot.
    assert deregister_with_snapshots(stmts, ours, {"snap-1": {}}) == {"snap-1": "missing-permissions"}
    assert not allowed(stmts, Request("ec2:DeleteSnapshot", snapshot_arn("snap-1")))
    # The claim is allowed on a snapshot without tags, or with tags of no deployment.
    for tags in [{}, {"Name": "root of web"}]:
        assert allowed(stmts, Request("ec2:CreateTags", snapshot_arn("snap-1"), tags, claim(params)))
    # After it, the one call deletes it.
    claimed = claim(params)
    assert deregister_with_snapshots(stmts, ours, {"snap-1": claimed}) == {"snap-1": "success"}
    assert allowed(stmts, Request("ec2:DeleteSnapshot", snapshot_arn("snap-1"), claimed))


def test_a_snapshot_of_our_ami_with_no_readable_expiry_is_retagged(params):
    stmts = expire_statements(params)
    managed_by, expires_at, name = names(params)
    tags = {managed_by: name}
    assert allowed(stmts, Request("ec2:CreateTags", SNAP, tags, claim(params)))
    assert allowed(stmts, Request("ec2:CreateTags", SNAP, {**tags, expires_at: "soon"}, {expires_at: EXPIRY}))
    assert not allowed(stmts, Request("ec2:CreateTags", SNAP, tags, {"Name": "x"}))


@pytest.mark.parametrize("theirs", ["team-b", "", "EC2-BACKUP"])
def test_someone_elses_snapshot_can_be_neither_deleted_nor_claimed(params, theirs):
    stmts = expire_statements(params)
    managed_by, expires_at, name = names(params)
    for key in [managed_by, managed_by.upper()]:  # IAM matches the key in any case
        tags = {key: theirs}
        assert not allowed(stmts, Request("ec2:DeleteSnapshot", SNAP, tags))
        assert not allowed(stmts, Request("ec2:CreateTags", SNAP, tags, claim(params)))
        assert not allowed(stmts, Request("ec2:CreateTags", SNAP, tags, {managed_by: name}))
        assert not allowed(stmts, Request("ec2:CreateTags", SNAP, tags, {expires_at: EXPIRY}))
        # nor deleted in the one call, even behind an image of ours
        assert deregister_with_snapshots(stmts, {managed_by: name}, {"snap-1": tags}) == {
            "snap-1": "missing-permissions"}


def test_a_claim_writes_exactly_our_name_and_an_expiry(params):
    stmts = expire_statements(params)
    managed_by, expires_at, name = names(params)
    prefix = params["TagPrefix"]
    for request_tags in [
        {managed_by: "team-b", expires_at: EXPIRY},  # someone else's name
        {expires_at: EXPIRY},  # no name: an expiry alone would not make it ours
        {managed_by: name},  # no expiry: it would never expire as an orphan
        {managed_by: name, expires_at: EXPIRY, f"{prefix}:hold": "false"},
        {managed_by: name, expires_at: EXPIRY, "Name": "mine now"},
    ]:
        assert not allowed(stmts, Request("ec2:CreateTags", SNAP, {}, request_tags)), request_tags


def test_images_only_ours_are_deregistered_and_none_is_tagged(params):
    stmts = expire_statements(params)
    managed_by, _, name = names(params)
    ami = image_arn("ami-1")
    assert allowed(stmts, Request("ec2:DeregisterImage", ami, {managed_by: name}))
    for tags in [{}, {managed_by: "team-b"}, {"Name": name}]:
        assert not allowed(stmts, Request("ec2:DeregisterImage", ami, tags))
        assert deregister_with_snapshots(stmts, tags, {"snap-1": claim(params)}) is None
    for tags in [{}, {managed_by: name}]:
        assert not allowed(stmts, Request("ec2:CreateTags", ami, tags, claim(params)))


def test_nothing_but_deleting_and_tagging_ours_on_snapshots(params):
    stmts = expire_statements(params)
    managed_by, _, name = names(params)
    for action in ["ec2:DeleteTags", "ec2:ModifySnapshotAttribute", "ec2:CopySnapshot"]:
        assert not allowed(stmts, Request(action, SNAP, {managed_by: name}, claim(params))), action


def test_iam_cannot_tell_an_unmanaged_snapshot_behind_our_ami_from_any_other(params):
    # The limit of the rule, stated as a test so it cannot be forgotten: IAM sees a
    # snapshot's tags, not the images that list it. A snapshot that carries no managed-by
    # at all (a person's own, say) can be claimed like one behind an AMI of ours; expire only
    # ever claims the snapshots of an expired AMI of its own (shared/src/expire). Deleting
    # it still takes the claim first (a CreateTags in CloudTrail); any managed-by value at
    # all keeps it out of reach.
    stmts = expire_statements(params)
    managed_by, _, _ = names(params)
    persons = snapshot_arn("snap-mine")
    assert allowed(stmts, Request("ec2:CreateTags", persons, {"Name": "my data"}, claim(params)))
    assert not allowed(stmts, Request("ec2:DeleteSnapshot", persons, {"Name": "my data"}))
    assert not allowed(stmts, Request("ec2:CreateTags", persons, {managed_by: "me"}, claim(params)))


# ---------------------------------------------------------------- drill's role

REGIONS = ["us-east-1", "us-west-2"]  # home, and a DR region where copies are drilled


def drill_statements(overrides: dict[str, str]) -> list[dict]:
    _, role = role_of(TEMPLATE, functions(TEMPLATE)["drill"][1])
    return policy_statements(Resolver(TEMPLATE, overrides), role)


def throwaway(overrides: dict[str, str], backup: str = "ami-0b1") -> dict[str, str]:
    """The tags drill puts on each instance and volume it restores (the design's contract)."""
    prefix, name = overrides["TagPrefix"], overrides["DeploymentName"]
    return {f"{prefix}:managed-by": name, f"{prefix}:drill-of": backup, f"{prefix}:drill-run": "run-1",
            f"{prefix}:drill-started-at": "2026-05-01T03:00:00Z", "Name": "drill-i-0abc"}


def result_tags(overrides: dict[str, str]) -> dict[str, str]:
    prefix = overrides["TagPrefix"]
    return {f"{prefix}:drilled-at": "2026-05-01T03:04:00Z", f"{prefix}:drill-result": "passed",
            f"{prefix}:restore-seconds": "212"}


def removals(region: str = "us-east-1") -> list[tuple[str, str]]:
    return [("ec2:TerminateInstances", ec2_arn("instance", "i-1", region)),
            ("ec2:DeleteVolume", ec2_arn("volume", "vol-1", region))]


def test_every_operator_of_drills_role_is_one_the_evaluator_knows(params):
    for s in drill_statements(params):
        for action in as_list(s["Action"]):
            allowed([s], Request(action, SNAP, {"k": "v"}, {"k": "v"}, {"ec2:CreateAction": "RunInstances"}))


@pytest.mark.parametrize("region", REGIONS)
def test_drill_removes_its_own_throwaways(params, region):
    stmts = drill_statements(params)
    prefix, name = params["TagPrefix"], params["DeploymentName"]
    for action, arn in removals(region):
        assert allowed(stmts, Request(action, arn, throwaway(params))), action
        # what the condition asks, and no more
        minimal = {f"{prefix}:managed-by": name, f"{prefix}:drill-of": ""}
        assert allowed(stmts, Request(action, arn, minimal)), action


def others(overrides: dict[str, str]) -> dict[str, dict[str, str]]:
    prefix, name = overrides["TagPrefix"], overrides["DeploymentName"]
    managed_by, drill_of = f"{prefix}:managed-by", f"{prefix}:drill-of"
    return {
        "untagged": {},
        "a protected instance": {prefix: "true", "Name": "web"},
        "ours without drill-of": {managed_by: name, f"{prefix}:drill-run": "run-1"},
        "another deployment's drill": {managed_by: "team-b", drill_of: "ami-0b1"},
        "drill-of without managed-by": {drill_of: "ami-0b1"},
        "our name in another case": {managed_by: name.upper(), drill_of: "ami-0b1"},
        "blank managed-by": {managed_by: "", drill_of: "ami-0b1"},
        "another prefix's keys": {f"x{prefix}:managed-by": name, f"x{prefix}:drill-of": "ami-0b1"},
    }


@pytest.mark.parametrize("case", ["untagged", "a protected instance", "ours without drill-of",
                                  "another deployment's drill", "drill-of without managed-by",
                                  "our name in another case", "blank managed-by", "another prefix's keys"])
@pytest.mark.parametrize("region", REGIONS)
def test_drill_never_removes_anything_else(params, case, region):
    stmts = drill_statements(params)
    tags = others(params)[case]
    for action, arn in removals(region):
        assert not allowed(stmts, Request(action, arn, tags)), (action, case)


def test_drill_cannot_make_someone_elses_resource_removable(params):
    """The way around the tag condition would be to tag an instance or volume managed-by and
    drill-of first: drill tags only what it is creating (ec2:CreateAction), and backups only
    with the three drill keys."""
    stmts = drill_statements(params)
    for _, arn in removals("us-west-2"):
        for tags in others(params).values():
            assert not allowed(stmts, Request("ec2:CreateTags", arn, tags, throwaway(params))), tags
            assert not allowed(stmts, Request("ec2:CreateTags", arn, tags, result_tags(params))), tags
        # nor with an action that is not drill's own creation
        assert not allowed(stmts, Request("ec2:CreateTags", arn, {}, throwaway(params),
                                          {"ec2:CreateAction": "CreateImage"}))
        for action in ("ec2:DeleteTags", "ec2:StopInstances", "ec2:ModifyInstanceAttribute",
                       "ec2:DetachVolume", "ec2:AttachVolume"):
            assert not allowed(stmts, Request(action, arn, throwaway(params))), action


@pytest.mark.parametrize("region", REGIONS)
def test_drill_restores_this_deployments_backups_as_tagged_throwaways(params, region):
    stmts = drill_statements(params)
    prefix, name = params["TagPrefix"], params["DeploymentName"]
    ours = {f"{prefix}:managed-by": name}
    tags = throwaway(params)
    assert run_instances(stmts, ours, tags, region)
    # the snapshots behind a copied AMI may carry no tag at all
    assert run_instances(stmts, ours, tags, region, snapshot_tags={})
    assert create_volume(stmts, ours, throwaway(params, "snap-0b1"), region)
    group = {f"{prefix}:managed-by": name, "Name": f"{name}-drill"}
    assert create_security_group(stmts, group, region)


def test_drill_restores_nothing_it_could_not_remove_and_no_one_elses_backup(params):
    stmts = drill_statements(params)
    prefix, name = params["TagPrefix"], params["DeploymentName"]
    ours = {f"{prefix}:managed-by": name}
    tags = throwaway(params)
    without_drill_of = {k: v for k, v in tags.items() if k != f"{prefix}:drill-of"}
    without_name = {k: v for k, v in tags.items() if k != f"{prefix}:managed-by"}
    theirs = {**tags, f"{prefix}:managed-by": "team-b"}
    for request_tags in [{}, without_drill_of, without_name, theirs]:
        assert not run_instances(stmts, ours, request_tags), request_tags
        assert not create_volume(stmts, ours, request_tags), request_tags
    for backup_tags in [{}, {f"{prefix}:managed-by": "team-b"}, {"Name": name}]:
        assert not run_instances(stmts, backup_tags, tags), backup_tags
        assert not create_volume(stmts, backup_tags, tags), backup_tags
    for group_tags in [{}, {"Name": f"{name}-drill"}, {f"{prefix}:managed-by": "team-b"}]:
        assert not create_security_group(stmts, group_tags), group_tags


@pytest.mark.parametrize("region", REGIONS)
def test_drill_records_its_result_on_its_own_backups_with_the_three_keys_only(params, region):
    stmts = drill_statements(params)
    prefix, name = params["TagPrefix"], params["DeploymentName"]
    ours = {f"{prefix}:managed-by": name}
    results = result_tags(params)
    failed = {f"{prefix}:drilled-at": "2026-05-01T03:04:00Z", f"{prefix}:drill-result": "failed"}
    for arn in (image_arn("ami-1", region), snapshot_arn("snap-1", region)):
        assert allowed(stmts, Request("ec2:CreateTags", arn, ours, results))
        assert allowed(stmts, Request("ec2:CreateTags", arn, ours, failed))
        for tags in [{}, {f"{prefix}:managed-by": "team-b"}]:
            assert not allowed(stmts, Request("ec2:CreateTags", arn, tags, results)), tags
        for extra in [f"{prefix}:managed-by", f"{prefix}:expires-at", f"{prefix}:drill-of", f"{prefix}:hold",
                      "Name"]:
            assert not allowed(stmts, Request("ec2:CreateTags", arn, ours, {**results, extra: "x"})), extra
    # and never on an instance or a volume it did not create
    for _, arn in removals(region):
        assert not allowed(stmts, Request("ec2:CreateTags", arn, ours, results))


def test_drill_neither_deletes_nor_copies_a_backup(params):
    stmts = drill_statements(params)
    ours = {f"{params['TagPrefix']}:managed-by": params["DeploymentName"]}
    for action in ("ec2:DeregisterImage", "ec2:DeleteSnapshot", "ec2:CopyImage", "ec2:CopySnapshot",
                   "ec2:ModifyImageAttribute", "ec2:ModifySnapshotAttribute"):
        for arn in (image_arn("ami-1"), snapshot_arn("snap-1")):
            assert not allowed(stmts, Request(action, arn, ours)), action


EVIDENCE = "arn:aws:s3:::<EvidenceBucket>"


def test_drill_puts_evidence_under_drills_and_nowhere_else():
    stmts = drill_statements(DEFAULT)
    key = f"{EVIDENCE}/drills/2026/05/01/run-1/us-west-2/i-0abc.json"
    assert allowed(stmts, Request("s3:PutObject", key))
    for arn in [f"{EVIDENCE}/other/x.json", f"{EVIDENCE}/x/drills/a.json", f"{EVIDENCE}/drills",
                f"{EVIDENCE}/Drills/2026/a.json", f"{EVIDENCE}drills/a.json", EVIDENCE,
                "arn:aws:s3:::another-bucket/drills/2026/a.json"]:
        assert not allowed(stmts, Request("s3:PutObject", arn)), arn
    for action in ("s3:GetObject", "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutObjectAcl",
                   "s3:PutObjectTagging", "s3:ListBucket"):
        assert not allowed(stmts, Request(action, key)), action
    for action in ("s3:PutBucketPolicy", "s3:PutLifecycleConfiguration", "s3:DeleteBucket"):
        assert not allowed(stmts, Request(action, EVIDENCE)), action


# ---------------------------------------------------------------- the isolated DR account
# The stack is in 123456789012 (cfn_template.PSEUDO), us-east-1. At home it shares with
# DR; as a vault it copies what SOURCES share. A stranger is any other account.

HOME_ACCOUNT = "123456789012"
DR = "444455556666"
SOURCES = ["111122223333", "777788889999"]
STRANGER = "999988887777"
HOME = {"DrAccount": DR}
VAULT = {"SourceAccounts": ",".join(SOURCES)}
OWN_BUS = f"arn:aws:events:us-east-1:{HOME_ACCOUNT}:event-bus/default"
DR_BUS = f"arn:aws:events:us-east-1:{DR}:event-bus/default"


def role_statements(function: str, overrides: dict[str, str]) -> list[dict]:
    _, role = role_of(TEMPLATE, functions(TEMPLATE)[function][1])
    return policy_statements(Resolver(TEMPLATE, overrides), role)


def ours(overrides: dict[str, str]) -> dict[str, str]:
    return {f"{overrides['TagPrefix']}:managed-by": overrides["DeploymentName"]}


def not_ours(overrides: dict[str, str]) -> dict[str, dict[str, str]]:
    """Backups that are not this deployment's, as tags IAM would see."""
    managed_by, name = f"{overrides['TagPrefix']}:managed-by", overrides["DeploymentName"]
    return {"untagged": {}, "another deployment's": {managed_by: "team-b"},
            "our name in another case": {managed_by: name.upper()}, "only a Name": {"Name": name}}


def share(action: str, tags: dict[str, str], region: str = "us-east-1", **keys) -> Request:
    """ModifyImageAttribute (launchPermission) or ModifySnapshotAttribute (createVolumePermission)
    with the keys EC2 sets for what it adds or removes: ec2:Add/userId=[...], ec2:Add/group=[...]."""
    arn = image_arn("ami-1", region) if action == "ec2:ModifyImageAttribute" else snapshot_arn("snap-1", region)
    return Request(action, arn, tags, keys={"ec2:" + k.replace("_", "/"): v for k, v in keys.items()})


SHARES = ["ec2:ModifyImageAttribute", "ec2:ModifySnapshotAttribute"]


def test_every_operator_of_replicates_role_is_one_the_evaluator_knows(params):
    for s in role_statements("replicate", {**params, **HOME, **VAULT,
                                           "ShareKmsKeys": f"us-east-1=arn:aws:kms:us-east-1:{HOME_ACCOUNT}:key/k",
                                           "CopyKmsKeys": f"us-west-2=arn:aws:kms:us-west-2:{HOME_ACCOUNT}:key/c"}):
        for action in as_list(s["Action"]):
            allowed([s], Request(action, SNAP, {"k": "v"}, {"k": "v"},
                                 {"ec2:CreateAction": "CopyImage", "kms:GrantIsForAWSResource": "true",
                                  "events:source": ["x"], "ec2:Add/userId": ["x"]}))


@pytest.mark.parametrize("action", SHARES)
def test_home_replicate_shares_its_own_backups_with_the_dr_account(params, action):
    stmts = role_statements("replicate", {**params, **HOME})
    assert allowed(stmts, share(action, ours(params), Add_userId=[DR]))


@pytest.mark.parametrize("action", SHARES)
def test_home_replicate_shares_with_no_one_else(params, action):
    """Not another account, not several with it, never the group all (public), not an unshare."""
    stmts = role_statements("replicate", {**params, **HOME})
    tags = ours(params)
    for keys in [{"Add_userId": [STRANGER]}, {"Add_userId": [DR, STRANGER]}, {"Add_group": ["all"]},
                 {"Add_userId": [DR], "Add_group": ["all"]}, {"Add_userId": [HOME_ACCOUNT]}]:
        assert not allowed(stmts, share(action, tags, **keys)), keys


@pytest.mark.parametrize("action", SHARES)
def test_home_replicate_shares_nothing_that_is_not_its_own_and_only_here(params, action):
    stmts = role_statements("replicate", {**params, **HOME})
    for case, tags in not_ours(params).items():
        assert not allowed(stmts, share(action, tags, Add_userId=[DR])), case
    # originals are made in the stack's region only; copies elsewhere are never shared
    assert not allowed(stmts, share(action, ours(params), "us-west-2", Add_userId=[DR]))


@pytest.mark.parametrize("action", SHARES)
def test_sharing_needs_a_dr_account(params, action):
    for overrides in [{}, VAULT]:
        stmts = role_statements("replicate", {**params, **overrides})
        assert not allowed(stmts, share(action, ours(params), Add_userId=[DR]))


def test_what_iam_cannot_check_of_an_ami_share(params):
    """The limit, stated so that it cannot be forgotten: the Service Authorization Reference
    lists ec2:Add/userId and ec2:Add/group for ModifySnapshotAttribute only. Where EC2 gives a
    ModifyImageAttribute no such key, the role may change the launch permission of its own AMIs
    however the request says (replicate only ever adds DrAccount; EC2's block public access for
    AMIs refuses a public share). A snapshot share must name the DR account."""
    stmts = role_statements("replicate", {**params, **HOME})
    assert allowed(stmts, share("ec2:ModifyImageAttribute", ours(params)))
    assert not allowed(stmts, share("ec2:ModifyImageAttribute", {}))
    assert not allowed(stmts, share("ec2:ModifySnapshotAttribute", ours(params)))
    assert not allowed(stmts, share("ec2:ModifySnapshotAttribute", ours(params), Remove_userId=[DR]))


def put_events(bus: str = OWN_BUS, sources: list[str] | None = None, detail_type: str | None = "Backup Shared"):
    keys: dict = {"events:source": ["ec2-backup"] if sources is None else sources}
    if detail_type is not None:
        keys["events:detail-type"] = detail_type
    return Request("events:PutEvents", bus, keys=keys)


def test_home_replicate_announces_shares_on_its_own_bus_only(params):
    stmts = role_statements("replicate", {**params, **HOME})
    assert allowed(stmts, put_events())
    for request in [put_events(sources=["aws.ec2"]), put_events(sources=["ec2-backup", "aws.ec2"]),
                    put_events(sources=[]), put_events(detail_type="EC2 AMI State Change"),
                    put_events(detail_type=None),
                    # not straight onto the DR account's bus (the rule forwards), nor any other
                    put_events(DR_BUS), put_events(OWN_BUS.replace("us-east-1", "us-west-2")),
                    put_events(OWN_BUS.replace("default", "custom"))]:
        assert not allowed(stmts, request), request
    # and not at all without a DR account
    assert not allowed(role_statements("replicate", {**params, **VAULT}), put_events())


def forward_role(overrides: dict[str, str]) -> dict:
    return Resolver(TEMPLATE, overrides).resolve(TEMPLATE["Resources"]["ShareForwardRole"]["Properties"])


def test_the_forwarding_role_puts_only_on_the_dr_accounts_bus():
    role = forward_role(HOME)
    trust, = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "events.amazonaws.com"} and trust["Action"] == "sts:AssumeRole"
    # only this account's rules (the confused deputy: another account's rule cannot use it)
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": HOME_ACCOUNT}}
    stmts = [s for p in role["Policies"] for s in document_statements(p["PolicyDocument"])]
    assert allowed(stmts, Request("events:PutEvents", DR_BUS))
    for bus in [OWN_BUS, DR_BUS.replace(DR, STRANGER), DR_BUS.replace("us-east-1", "us-west-2"),
                DR_BUS.replace("default", "custom")]:
        assert not allowed(stmts, Request("events:PutEvents", bus)), bus
    for action in ["events:PutRule", "events:PutTargets", "events:PutPermission", "sts:AssumeRole"]:
        assert not allowed(stmts, Request(action, DR_BUS)), action


def bus_policy(overrides: dict[str, str]) -> list[dict]:
    props = Resolver(TEMPLATE, overrides).resolve(TEMPLATE["Resources"]["VaultEventBusPolicy"]["Properties"])
    assert props["EventBusName"] == "default"
    return [props["Statement"]]


def test_the_vault_bus_admits_exactly_the_source_accounts():
    stmts = bus_policy(VAULT)
    for account in SOURCES:
        assert allowed_for(stmts, account, put_events(OWN_BUS)), account
    for account in [STRANGER, DR]:
        assert not allowed_for(stmts, account, put_events(OWN_BUS)), account
    # and from them only Backup Shared events of ec2-backup, onto this bus
    for request in [put_events(OWN_BUS, sources=["aws.ec2"]), put_events(OWN_BUS, sources=["ec2-backup", "x"]),
                    put_events(OWN_BUS, detail_type="EBS Snapshot Notification"),
                    put_events(OWN_BUS.replace("default", "custom"))]:
        assert not allowed_for(stmts, SOURCES[0], request), request


def test_vault_replicate_copies_what_a_source_account_shared_and_not_a_strangers(params):
    stmts = role_statements("replicate", {**params, **VAULT})
    tags = {**ours(params), f"{params['TagPrefix']}:source-account": SOURCES[0]}
    for copy in (copy_image, copy_snapshot):
        for owner in SOURCES:
            assert copy(stmts, owner, tags), (copy.__name__, owner)
            # into the home region of the source too
            assert copy(stmts, owner, tags, region="us-east-1"), (copy.__name__, owner)
        for owner in [STRANGER, DR, "amazon", "aws-marketplace"]:
            assert not copy(stmts, owner, tags), (copy.__name__, owner)


def test_replicate_copies_its_own_backups_in_every_deployment(params):
    """Today's DR copies, and the home's re-encrypting copy in the same region."""
    for overrides in [{}, HOME, VAULT]:
        stmts = role_statements("replicate", {**params, **overrides})
        for copy in (copy_image, copy_snapshot):
            assert copy(stmts, HOME_ACCOUNT, ours(params))
            assert copy(stmts, HOME_ACCOUNT, ours(params), region="us-east-1")
            # outside a vault, a source account is a stranger
            if overrides is not VAULT:
                assert not copy(stmts, SOURCES[0], ours(params))


def test_a_copy_is_made_only_as_this_deployments(params):
    stmts = role_statements("replicate", {**params, **VAULT})
    managed_by = f"{params['TagPrefix']}:managed-by"
    for tags in [{managed_by: "team-b"}, {"Name": "copy"}, {managed_by: params["DeploymentName"].upper()}]:
        for copy in (copy_image, copy_snapshot):
            assert not copy(stmts, SOURCES[0], tags), tags
            assert not copy(stmts, HOME_ACCOUNT, tags), tags


def test_iam_cannot_require_tags_on_a_copy_made_without_any(params):
    """The limit: the managed-by condition binds the tags a copy is created with
    (TagCopiesOnCreate); a CopySnapshot or CopyImage with no tag specifications at all writes no
    tags, so IAM has nothing to check (aws:RequestTag on the copy call itself is not relied on:
    EC2 authorizes the source with the same call). replicate always tags its copies."""
    stmts = role_statements("replicate", {**params, **VAULT})
    assert copy_snapshot(stmts, SOURCES[0], {})


LOCKS = [("ec2:LockSnapshot", snapshot_arn), ("ec2:EnableImageDeregistrationProtection", image_arn)]


@pytest.mark.parametrize("action,arn", LOCKS)
def test_vault_replicate_locks_and_protects_its_own_copies_only(params, action, arn):
    stmts = role_statements("replicate", {**params, **VAULT})
    for region in ["us-west-2", "us-east-1"]:
        assert allowed(stmts, Request(action, arn("x-1", region), ours(params))), region
    for case, tags in not_ours(params).items():
        assert not allowed(stmts, Request(action, arn("x-1", "us-west-2"), tags)), case
    # a home deployment locks nothing
    assert not allowed(role_statements("replicate", {**params, **HOME}), Request(action, arn("x-1"), ours(params)))


def test_vault_replicate_reads_locks_and_unlocks_nothing(params):
    stmts = role_statements("replicate", {**params, **VAULT})
    assert allowed(stmts, Request("ec2:DescribeLockedSnapshots", "*"))
    for action in ["ec2:UnlockSnapshot", "ec2:DisableImageDeregistrationProtection", "ec2:DeleteSnapshot",
                   "ec2:DeregisterImage", "ec2:ModifySnapshotAttribute"]:
        for arn in (image_arn("ami-1"), snapshot_arn("snap-1")):
            assert not allowed(stmts, Request(action, arn, ours(params))), action


def test_vault_expire_lifts_protection_from_its_own_images_only(params):
    action = "ec2:DisableImageDeregistrationProtection"
    stmts = expire_statements({**params, **VAULT})
    assert allowed(stmts, Request(action, image_arn("ami-1", "us-west-2"), ours(params)))
    for case, tags in not_ours(params).items():
        assert not allowed(stmts, Request(action, image_arn("ami-1", "us-west-2"), tags)), case
    assert not allowed(expire_statements(params), Request(action, image_arn("ami-1"), ours(params)))
    # it never locks, protects or unlocks
    for other in ["ec2:LockSnapshot", "ec2:UnlockSnapshot", "ec2:EnableImageDeregistrationProtection"]:
        for arn in (image_arn("ami-1"), snapshot_arn("snap-1")):
            assert not allowed(stmts, Request(other, arn, ours(params))), other


def test_iam_cannot_see_a_snapshot_lock(params):
    """The limit: no condition key carries whether a snapshot is locked, so IAM lets expire
    delete any snapshot of its own; EC2 itself refuses DeleteSnapshot on a locked snapshot
    (the moto stand-in too, tests/test_moto_server.py), whoever asks. expire reads the locks
    first (DescribeLockedSnapshots) to keep a locked copy with its reason."""
    stmts = expire_statements({**params, **VAULT})
    assert allowed(stmts, Request("ec2:DeleteSnapshot", snapshot_arn("snap-locked"), ours(params)))
    assert allowed(stmts, Request("ec2:DescribeLockedSnapshots", "*"))


def kms_request(action: str, key_account: str, via: str | None = "ec2.us-west-2.amazonaws.com",
                for_aws_resource: str = "true") -> Request:
    keys = {"aws:ResourceAccount": key_account, "kms:GrantIsForAWSResource": for_aws_resource}
    if via:
        keys["kms:ViaService"] = via
    return Request(action, f"arn:aws:kms:us-east-1:{key_account}:key/k-1", keys=keys)


def test_vault_replicate_uses_a_source_accounts_key_through_ec2_only(params):
    stmts = role_statements("replicate", {**params, **VAULT})
    for action in ["kms:Decrypt", "kms:DescribeKey", "kms:ReEncryptFrom", "kms:CreateGrant"]:
        assert allowed(stmts, kms_request(action, SOURCES[1])), action
        assert not allowed(stmts, kms_request(action, STRANGER)), action
        assert not allowed(stmts, kms_request(action, SOURCES[1], via=None)), action
        assert not allowed(stmts, kms_request(action, SOURCES[1], via="s3.us-west-2.amazonaws.com")), action
    assert not allowed(stmts, kms_request("kms:CreateGrant", SOURCES[1], for_aws_resource="false"))
    # it never encrypts with their keys, nor manages them
    for action in ["kms:Encrypt", "kms:GenerateDataKey", "kms:PutKeyPolicy", "kms:ScheduleKeyDeletion"]:
        assert not allowed(stmts, kms_request(action, SOURCES[1])), action
