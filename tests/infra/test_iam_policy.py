"""expire's role in infra/template.yaml, evaluated request by request with the small
evaluator in iam_policy.py (whose own semantics are tested first): what expire must be
able to do to an AMI of its own and its snapshots, tagged or not, and what it must never
be able to do to anyone else's.

Run: .venv/bin/python -m pytest tests/infra -q
"""

from __future__ import annotations

import pytest

from cfn_template import Resolver, as_list, functions, load, policy_statements, role_of
from iam_policy import Request, allowed, deregister_with_snapshots, image_arn, snapshot_arn

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
