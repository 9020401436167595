"""A small IAM policy evaluator for the template's identity policies: enough to ask
"would this role be allowed this request?" without AWS.

It evaluates what the template's policies use, as the IAM User Guide's policy
evaluation logic and condition operator pages describe it, and refuses the rest:

- an explicit Deny wins; otherwise an Allow whose Action, Resource and every
  Condition match; otherwise the request is denied (implicit deny);
- Action: case-insensitive, `*` and `?` wildcards; Resource: case-sensitive, same
  wildcards;
- Condition: every operator must hold (AND), every key within an operator must hold
  (AND), and a key holds when any of its policy values matches (OR);
- operators StringEquals, StringLike (case-sensitive values; StringLike with `*` and
  `?`), Bool ("true" / "false", in any case), Null ("true": the key is absent,
  "false": present), each with the ForAllValues: / ForAnyValue: qualifiers for
  multivalued keys and the IfExists suffix;
- a single-valued operator on a missing key is false (true with IfExists);
  ForAllValues on a missing or empty key is true (vacuously), ForAnyValue false;
- condition key names are case-insensitive (aws:ResourceTag/Backup:Managed-By is
  aws:resourcetag/backup:managed-by); their values are not.

Anything else (another operator, a single-valued operator on a multivalued key,
NotAction, NotResource, NotPrincipal, a statement without Resource) raises, so that a
policy change cannot be evaluated silently wrong. Multivalued here: aws:TagKeys, and the
keys a request can carry several values of: the accounts and groups a ModifyImageAttribute
or ModifySnapshotAttribute adds or removes (ec2:Add/userId, ...: one request can add
several), and the sources of a PutEvents (events:source: one per entry, which is why the
EventBridge guide's bus policies hold it with ForAllValues).

A resource-based policy (an event bus's) is evaluated for a principal account with
allowed_for: a statement counts only when its Principal names that account (its id or its
root ARN) or is "*".

The request context is built the way EC2 builds it for tag conditions:
aws:ResourceTag/<key> for each tag the resource carries, aws:RequestTag/<key> for
each tag the request writes, and aws:TagKeys (multivalued) for the keys it writes;
other single-valued keys a request sets (ec2:CreateAction when EC2 authorizes the
tags of a resource-creating call) are given as they are.

A call on several resources (RunInstances, CreateVolume, CreateSecurityGroup) is
allowed only when every resource it uses or creates is (EC2 authorizes each ARN of
the request), and, when it tags on creation, ec2:CreateTags with ec2:CreateAction
on each resource it tags: run_instances, create_volume, create_security_group.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

OPERATORS = {"StringEquals", "StringLike", "Bool", "Null"}
QUALIFIERS = {"ForAllValues", "ForAnyValue"}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _glob(pattern: str, text: str, case_sensitive: bool = True) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    flags = 0 if case_sensitive else re.IGNORECASE
    return re.fullmatch(regex, text, flags | re.DOTALL) is not None


@dataclass
class Request:
    action: str
    resource: str
    resource_tags: dict[str, str] = field(default_factory=dict)
    request_tags: dict[str, str] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)

    def context(self) -> dict[str, Any]:
        """Condition key (lower case) -> value, or list of values for a multivalued key."""
        ctx: dict[str, Any] = {k.lower(): v for k, v in self.keys.items()}
        for k, v in self.resource_tags.items():
            ctx[f"aws:resourcetag/{k}".lower()] = v
        for k, v in self.request_tags.items():
            ctx[f"aws:requesttag/{k}".lower()] = v
        if self.request_tags:
            ctx["aws:tagkeys"] = list(self.request_tags)
        return ctx


def _value_matches(operator: str, policy_value: str, actual: str) -> bool:
    if operator == "StringEquals":
        return actual == policy_value
    if operator == "StringLike":
        return _glob(policy_value, actual)
    if operator == "Bool":
        if policy_value.lower() not in ("true", "false"):
            raise ValueError(f"Bool takes true or false, got {policy_value}")
        return actual.lower() == policy_value.lower()
    raise NotImplementedError(operator)


MULTIVALUED = {"aws:tagkeys", "ec2:add/userid", "ec2:add/group", "ec2:remove/userid", "ec2:remove/group",
               "events:source"}


def _condition_holds(operator_spec: str, key: str, policy_values: list[Any], ctx: dict[str, Any]) -> bool:
    qualifier, _, operator = operator_spec.rpartition(":")
    if_exists = operator.endswith("IfExists")
    if if_exists:
        operator = operator[: -len("IfExists")]
    if operator not in OPERATORS or (qualifier and qualifier not in QUALIFIERS):
        raise NotImplementedError(f"condition operator {operator_spec}")
    key = key.lower()
    present = key in ctx and ctx[key] not in (None, [])
    if operator == "Null":
        if qualifier or if_exists:
            raise NotImplementedError(f"condition operator {operator_spec}")
        wanted = {str(v).lower() for v in policy_values}
        if wanted - {"true", "false"} or len(wanted) != 1:
            raise ValueError(f"Null takes true or false, got {policy_values}")
        return (not present) if wanted == {"true"} else present
    values = [str(v) for v in policy_values]
    if qualifier == "ForAllValues":
        if not present:
            return True
        return all(any(_value_matches(operator, p, a) for p in values) for a in _as_list(ctx[key]))
    if qualifier == "ForAnyValue":
        if not present:
            return False
        return any(_value_matches(operator, p, a) for p in values for a in _as_list(ctx[key]))
    if key in MULTIVALUED:
        raise NotImplementedError(f"{operator_spec} on the multivalued key {key} needs a qualifier")
    if not present:
        return if_exists
    return any(_value_matches(operator, p, ctx[key]) for p in values)


def _statement_matches(statement: dict[str, Any], request: Request) -> bool:
    for unsupported in ("NotAction", "NotResource", "NotPrincipal"):
        if unsupported in statement:
            raise NotImplementedError(unsupported)
    if "Resource" not in statement:
        raise NotImplementedError("a statement without Resource")
    if not any(_glob(a, request.action, case_sensitive=False) for a in _as_list(statement["Action"])):
        return False
    if not any(_glob(r, request.resource) for r in _as_list(statement["Resource"])):
        return False
    ctx = request.context()
    for operator_spec, keys in statement.get("Condition", {}).items():
        for key, policy_values in keys.items():
            if not _condition_holds(operator_spec, key, _as_list(policy_values), ctx):
                return False
    return True


def allowed(statements: list[dict[str, Any]], request: Request) -> bool:
    """Whether an identity whose only policies are `statements` may make `request`."""
    matching = [s for s in statements if _statement_matches(s, request)]
    if any(s["Effect"] == "Deny" for s in matching):
        return False
    return any(s["Effect"] == "Allow" for s in matching)


def _names_principal(statement: dict[str, Any], account: str) -> bool:
    principal = statement.get("Principal")
    if principal == "*":
        return True
    if not isinstance(principal, dict) or set(principal) != {"AWS"}:
        raise NotImplementedError(f"principal {principal}")
    return any(p in ("*", account) or re.fullmatch(rf"arn:aws[a-z-]*:iam::{account}:root", p)
               for p in _as_list(principal["AWS"]))


def allowed_for(statements: list[dict[str, Any]], account: str, request: Request) -> bool:
    """Whether a resource-based policy of `statements` lets a principal of `account` make
    `request` (cross-account: the caller's own policies must allow it too)."""
    return allowed([s for s in statements if _names_principal(s, account)], request)


def allowed_all(statements: list[dict[str, Any]], requests: list[Request]) -> bool:
    """Whether a call that EC2 authorizes as all of `requests` (one per resource) is allowed."""
    return all(allowed(statements, r) for r in requests)


def snapshot_arn(snapshot_id: str, region: str = "us-east-1", partition: str = "aws") -> str:
    return f"arn:{partition}:ec2:{region}::snapshot/{snapshot_id}"


def image_arn(image_id: str, region: str = "us-east-1", partition: str = "aws") -> str:
    return f"arn:{partition}:ec2:{region}::image/{image_id}"


def deregister_with_snapshots(statements: list[dict[str, Any]], image_tags: dict[str, str],
                              snapshots: dict[str, dict[str, str]]) -> dict[str, str] | None:
    """DeregisterImage with DeleteAssociatedSnapshots as the EC2 API reference describes it:
    the call needs ec2:DeregisterImage on the image; each snapshot is then deleted only if
    ec2:DeleteSnapshot is allowed on it ("missing-permissions: the role lacks DeleteSnapshot
    permissions"). None when the call itself is refused; else each snapshot's return code.
    (Snapshots another AMI lists, "skipped", are outside what IAM decides.)"""
    if not allowed(statements, Request("ec2:DeregisterImage", image_arn("ami-0a1"), image_tags)):
        return None
    return {
        sid: "success" if allowed(statements, Request("ec2:DeleteSnapshot", snapshot_arn(sid), tags))
        else "missing-permissions"
        for sid, tags in snapshots.items()
    }


ACCOUNT = "123456789012"


def ec2_arn(resource_type: str, resource_id: str, region: str = "us-east-1", account: str = ACCOUNT,
            partition: str = "aws") -> str:
    """An account's EC2 resource: instance, volume, subnet, network-interface, security-group, vpc."""
    return f"arn:{partition}:ec2:{region}:{account}:{resource_type}/{resource_id}"


def _tag_on_create(action: str, arns: list[str], request_tags: dict[str, str]) -> list[Request]:
    if not request_tags:
        return []
    return [Request("ec2:CreateTags", arn, {}, request_tags, {"ec2:CreateAction": action.split(":")[1]})
            for arn in arns]


def run_instances(statements: list[dict[str, Any]], image_tags: dict[str, str],
                  request_tags: dict[str, str], region: str = "us-east-1",
                  snapshot_tags: dict[str, str] | None = None) -> bool:
    """RunInstances of one instance from an EBS-backed AMI into a subnet, with a network
    interface and a security group given, TagSpecifications for the instance and its volume
    (`request_tags`): RunInstances on the image, its snapshot, the subnet, the security group,
    and on the network interface, instance and volume it creates; CreateTags
    (ec2:CreateAction RunInstances) on the instance and the volume it tags."""
    action = "ec2:RunInstances"
    made = [ec2_arn("instance", "*", region), ec2_arn("volume", "*", region)]
    requests = [
        Request(action, image_arn("ami-1", region), image_tags, request_tags),
        Request(action, snapshot_arn("snap-1", region), snapshot_tags or {}, request_tags),
        Request(action, ec2_arn("subnet", "subnet-1", region), {}, request_tags),
        Request(action, ec2_arn("security-group", "sg-1", region), {}, request_tags),
        Request(action, ec2_arn("network-interface", "*", region), {}, request_tags),
        *[Request(action, arn, {}, request_tags) for arn in made],
    ]
    return allowed_all(statements, requests + _tag_on_create(action, made, request_tags))


def create_volume(statements: list[dict[str, Any]], snapshot_tags: dict[str, str],
                  request_tags: dict[str, str], region: str = "us-east-1") -> bool:
    """CreateVolume from a snapshot with TagSpecifications: CreateVolume on the snapshot and on
    the volume it creates; CreateTags (ec2:CreateAction CreateVolume) on the volume."""
    action = "ec2:CreateVolume"
    volume = ec2_arn("volume", "*", region)
    requests = [Request(action, snapshot_arn("snap-1", region), snapshot_tags, request_tags),
                Request(action, volume, {}, request_tags)]
    return allowed_all(statements, requests + _tag_on_create(action, [volume], request_tags))


def create_security_group(statements: list[dict[str, Any]], request_tags: dict[str, str],
                          region: str = "us-east-1") -> bool:
    """CreateSecurityGroup in a VPC with TagSpecifications: CreateSecurityGroup on the VPC and
    on the group it creates; CreateTags (ec2:CreateAction CreateSecurityGroup) on the group."""
    action = "ec2:CreateSecurityGroup"
    group = ec2_arn("security-group", "*", region)
    requests = [Request(action, ec2_arn("vpc", "vpc-1", region), {}, request_tags),
                Request(action, group, {}, request_tags)]
    return allowed_all(statements, requests + _tag_on_create(action, [group], request_tags))


def copy_snapshot(statements: list[dict[str, Any]], source_owner: str, request_tags: dict[str, str],
                  source_region: str = "us-east-1", region: str = "us-west-2") -> bool:
    """CopySnapshot of a snapshot owned by `source_owner` into `region`, tagged on creation: the
    Service Authorization Reference applies its resource-level permissions "to both the snapshot
    copy and the source snapshot" (ec2:Owner is the source's owner; the copy, not yet made, has
    none), and CreateTags (ec2:CreateAction CopySnapshot) on the copy."""
    action = "ec2:CopySnapshot"
    copy = snapshot_arn("*", region)
    requests = [Request(action, snapshot_arn("snap-src", source_region), {}, request_tags,
                        {"ec2:Owner": source_owner}),
                Request(action, copy, {}, request_tags)]
    return allowed_all(statements, requests + _tag_on_create(action, [copy], request_tags))


def copy_image(statements: list[dict[str, Any]], source_owner: str, request_tags: dict[str, str],
               source_region: str = "us-east-1", region: str = "us-west-2") -> bool:
    """CopyImage of an AMI owned by `source_owner` into `region`, the image and its snapshots
    tagged on creation: CopyImage on the source image (ec2:Owner, ec2:ImageID), on the new image
    and its new snapshots (the request's tags), and CreateTags (ec2:CreateAction CopyImage) on
    the new image and snapshots."""
    action = "ec2:CopyImage"
    made = [image_arn("*", region), snapshot_arn("*", region)]
    requests = [Request(action, image_arn("ami-src", source_region), {}, request_tags,
                        {"ec2:Owner": source_owner, "ec2:ImageID": "ami-src"}),
                *[Request(action, arn, {}, request_tags) for arn in made]]
    return allowed_all(statements, requests + _tag_on_create(action, made, request_tags))
