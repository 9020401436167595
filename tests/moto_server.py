#!/usr/bin/env python3
"""Local AWS stand-in for the tests: moto's server, patched to answer EC2 calls
the way the AWS EC2 API reference documents them, and SQS where the event source
mapping emulator (tests/esm.py) met a difference, plus test-only endpoints.

Usage:
    python tests/moto_server.py --port 5055 [--host 127.0.0.1] [--log-requests] [--exit-with-stdin]

Prints ``moto ready on http://HOST:PORT`` (flushed) once the socket accepts
connections (``--port 0`` picks a free port; the line tells which).
``--exit-with-stdin`` stops the server when its standard input closes: a parent
that holds the other end of the pipe (the Rust test harness) takes the server
with it when it exits, however it exits.

Test-only endpoints (served in front of moto by a WSGI middleware):
    GET    /_test/calls         -> {"us-east-1": {"DescribeInstances": 3, ...}, ...}
    POST   /_test/calls/reset   -> zero the EC2 call counters
    GET    /_test/faults        -> the faults still armed
    POST   /_test/faults        <- {"action": "CopyImage", "region": "us-west-2",
                                    "code": "ResourceLimitExceeded", "message": "...",
                                    "status": 400, "count": 3}
                                   (region: any if absent; count: until cleared;
                                    status: 400 if absent)
    DELETE /_test/faults        -> disarm all faults
    GET    /_test/buckets       -> {"buckets": {"CreateImage": {"burst": 50, "rate": 5}, ...},
                                    "throttled": {"us-east-1": {"CreateImage": 3}}}
    POST   /_test/buckets       <- {"scale": 0.1} (EC2's figures times 0.1) or
                                   {"buckets": {"CreateImage": {"burst": 5, "rate": 2}}} (only
                                   these) or {"buckets": {}} (none); full buckets again.
                                   EC2's own figures are the default: a call past an empty
                                   bucket answers RequestLimitExceeded, HTTP 503, as EC2 does.
                                   A reset refills them and keeps the figures.
    POST   /_test/image-state   <- {"region": "us-east-1", "image_id": "ami-...", "state": "failed"}
                                   (moto's images are available at once; AWS's can fail)
    POST   /_test/zone-state    <- {"region": "us-west-2", "zone": "us-west-2a", "state": "impaired"}
                                   (what DescribeAvailabilityZones reports, as during an outage;
                                    moto's zones are always available; reset makes them so again)
    POST   /_test/clock         <- {"now": "2026-11-25T03:00:00Z"} stamps what EC2 creates
                                   from now on (an AMI's CreationDate, a snapshot's
                                   StartTime, ...) with that instant; {"now": null}: the
                                   machine's clock again. The same clock moves snapshot locks
                                   (cool-off, expiry) and deregistration-protection cooldowns
    POST   /_test/restore-hold  <- {"region": "us-west-2", "kind": "instance", "status": "initializing"}
                                   holds a region's restores back, as AWS's take minutes or fail:
                                   kind "instance": DescribeInstanceStatus reports InstanceStatus and
                                   SystemStatus of the region's running instances as "initializing"
                                   (reachability initializing) or "impaired" (reachability failed);
                                   kind "volume": DescribeVolumes reports the region's volumes made by
                                   CreateVolume from a snapshot (not attached) as "creating" or
                                   "error" (the status filter too). Applies to such resources old
                                   and new while it holds; {"region": ..., "kind": ..., "status": null}
                                   lifts it (moto's again: ok / available). Answers
                                   {"ok": true, "holds": [{"region", "kind", "status"}, ...]}
    GET    /_test/restore-hold  -> the same answer: the holds in force
    POST   /moto-api/reset      -> moto's own reset; also clears counters and faults, lifts the
                                   restore holds, and gives the clock back to the machine

Snapshot locks and image protection (l): LockSnapshot, UnlockSnapshot and
DescribeLockedSnapshots with their modes and states (governance, compliance-cooloff,
compliance, expired, moving with the clock); a locked snapshot cannot be deleted, by
DeleteSnapshot nor by DeregisterImage's DeleteAssociatedSnapshots ("client-error");
Enable/DisableImageDeregistrationProtection (WithCooldown: protected 24 hours after
disabling), DescribeImages' DeregistrationProtection, DeregisterImage refused while
protected. Refusals answer OperationNotPermitted (EC2 documents no specific code). EventBridge:
the event a target gets carries "account"; an event bus in another account as a rule's target
gets the event only if its policy admits the sender, as the sender's event, and does not send
it on to a third account.

EC2 calls signed with the access key id ``uncounted`` are neither counted nor
faulted: the tests' own checks of the server's state, which must not change what
a test asserts about the calls of the code under test.

Accounts: a request signed with an access key id of 12 digits is in that account
(``AWS_ACCESS_KEY_ID=111122223333``), a test-only convention like ``uncounted``; any
other key is in the account moto gives it: MOTO_ACCOUNT_ID, else the x-moto-account-id
header, else the account of a key IAM CreateAccessKey or STS AssumeRole made (the role
ARN's account), else 123456789012 (so "testing"). /moto-api/reset forgets the keys
AssumeRole gave (they are the default account again); a 12-digit key stays its account.
The call counters, faults and buckets above count every account of a region together
(EC2 throttles per account and region).

The patches are applied here, at import time, by monkeypatching moto 5.2.5;
site-packages stays untouched. Each patch says what moto did and why it changed.
Cross-account sharing (k): an AMI or snapshot the owner shares with another account
(ModifyImageAttribute launchPermission, ModifySnapshotAttribute createVolumePermission,
both forms) is visible to that account (DescribeImages ExecutableUsers / Owners /
ImageIds, DescribeSnapshots RestorableByUserIds / OwnerIds / SnapshotIds) with none of
the owner's tags, and it copies it (CopyImage, CopySnapshot) into its own region and
key; only the owner reads or changes the permissions; sharing what the AWS managed key
aws/ebs encrypts is refused with EC2's errors (and that key is KeyManager AWS).
KMS (m): CreateKey without KeyUsage makes an ENCRYPT_DECRYPT key, as KMS does.
"""

from __future__ import annotations

import argparse
import base64
import fnmatch
import io
import itertools
import json
import os
import re
import signal
import sys
import threading
import time
import uuid
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape as xml_escape

# Must be set before moto is imported: no public Amazon AMIs in the backends,
# so DescribeImages/DescribeSnapshots only show what the tests create.
os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"

from moto.core.responses import ActionResult, EmptyResult  # noqa: E402
from moto.ec2 import utils as ec2_utils  # noqa: E402
from moto.ec2.exceptions import (  # noqa: E402
    EC2ClientError,
    FilterNotImplementedError,
    InvalidAMIIdError,
    InvalidParameterCombination,
    InvalidParameterDependency,
    InvalidTaggableResourceType,
    MissingParameterError,
)
from moto.ec2.models.amis import Ami, AmiBackend  # noqa: E402
from moto.ec2.models.core import TaggedEC2Resource  # noqa: E402
from moto.ec2.models.elastic_block_store import EBSBackend, Snapshot, Volume  # noqa: E402
from moto.ec2.models.elastic_network_interfaces import NetworkInterface  # noqa: E402
from moto.ec2.models.instance_types import INSTANCE_TYPES  # noqa: E402
from moto.ec2.models.instances import Instance, InstanceBackend  # noqa: E402
from moto.ec2.responses.amis import AmisResponse  # noqa: E402
from moto.ec2.responses.elastic_block_store import ElasticBlockStore  # noqa: E402
from moto.ec2.responses.instances import InstanceResponse  # noqa: E402
from moto.ec2.responses.tags import TagResponse  # noqa: E402
from moto.core.utils import utcnow as _machine_utcnow  # noqa: E402
from moto.sqs.models import Queue as SqsQueue  # noqa: E402
from moto.sqs.models import SQSBackend  # noqa: E402
from moto.ec2.utils import (  # noqa: E402
    format_timestamp,
    random_ami_id,
    random_snapshot_id,
)

_lock = threading.RLock()  # serialises the read-modify-write patches below


# --------------------------------------------------------------------------
# Helpers shared by the patches
# --------------------------------------------------------------------------


def _error(code: str, message: str) -> EC2ClientError:
    return EC2ClientError(code, message)


def _tag_specs(raw: list[dict[str, Any]] | None, allowed: set[str]) -> dict[str, dict[str, str]]:
    """TagSpecifications -> {resource_type: {key: value}}.

    AWS rejects a ResourceType the operation cannot tag, rejects user tag keys
    starting with "aws:", and lets a tag's Value be omitted (empty string).
    """
    out: dict[str, dict[str, str]] = {}
    for spec in raw or []:
        rtype = spec.get("ResourceType")
        if rtype not in allowed:
            raise InvalidTaggableResourceType(str(rtype))
        tags = {t["Key"]: t.get("Value", "") for t in spec.get("Tags", [])}
        _check_user_tag_keys(tags)
        out.setdefault(rtype, {}).update(tags)
    return out


def _check_user_tag_keys(tags: dict[str, str]) -> None:
    for key in tags:
        if key.lower().startswith("aws:"):
            raise _error(
                "InvalidParameterValue",
                f"Value ( {key} ) for parameter key is invalid. "
                "Tag keys starting with 'aws:' are reserved for internal use",
            )


def _user_tags(resource: Any) -> dict[str, str]:
    return {t["key"]: t["value"] for t in resource.get_tags() if not t["key"].startswith("aws:")}


# AMI names: 3-128 characters from this set (CreateImage/CopyImage "Name").
_AMI_NAME_RE = re.compile(r"[A-Za-z0-9()\[\] ./\-'@_]{3,128}")


def _check_ami_name(backend: Any, name: str | None) -> None:
    """Moto accepted any name, twice; AWS answers these errors."""
    if not name:
        raise _error("MissingParameter", "The request must contain the parameter name")
    if not _AMI_NAME_RE.fullmatch(name):
        raise _error(
            "InvalidAMIName.Malformed",
            f"AMI names must be between 3 and 128 characters long, and may contain letters, "
            f"numbers, '(', ')', '.', '-', '/', '_', '[', ']', ' ', '@' and \"'\": {name!r}",
        )
    for ami in backend.amis.values():
        if ami.name == name and ami.owner_id == backend.account_id:
            raise _error(
                "InvalidAMIName.Duplicate",
                f"AMI name {name} is already in use by AMI {ami.id}",
            )


def _default_kms_key(backend: Any) -> str:
    if not backend.default_kms_key_id:
        backend._create_default_encryption_key()
    return backend.default_kms_key_id


def _drop_placeholder_snapshot(backend: Any, ami: Ami) -> None:
    """Ami.__init__ always makes one 15 GiB snapshot of a throwaway volume; the
    patched CreateImage/CopyImage make the real ones, so remove it."""
    backend.snapshots.pop(ami.ebs_snapshot.id, None)


def _set_mappings(ami: Ami, mappings: list[dict[str, Any]], snapshots: list[Snapshot]) -> None:
    ami.__dict__["_aws_block_device_mappings"] = mappings
    if snapshots:
        ami.ebs_snapshot = snapshots[0]


# --------------------------------------------------------------------------
# Paging (patch f): MaxResults / NextToken, opaque tokens
# --------------------------------------------------------------------------


def _encode_token(action: str, last_key: str) -> str:
    raw = json.dumps({"a": action, "k": last_key}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(action: str, token: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        if data["a"] == action:
            return str(data["k"])
    except Exception:
        pass
    raise _error("InvalidPaginationToken", f"The pagination token {token!r} is invalid.")


def _paging_params(resp: Any, action: str, ids_param: str, ids_name: str, cap: int) -> tuple[int | None, str | None]:
    """Read and validate MaxResults/NextToken the way EC2 does.

    MaxResults must be >= 5, is capped at `cap`, and cannot be combined with
    an explicit list of ids. Returns (page size or None for "all", last key).
    """
    max_results = resp._get_param("MaxResults")
    token = resp._get_param("NextToken")
    if max_results is not None:
        max_results = int(max_results)
        if resp._get_param(ids_param):
            raise InvalidParameterCombination(
                f"The parameter {ids_name} cannot be used with the parameter maxResults"
            )
        if max_results < 5:
            raise _error(
                "InvalidParameterValue",
                f"Value ( {max_results} ) for parameter maxResults is invalid. "
                "Expecting a value greater than 5.",
            )
        max_results = min(max_results, cap)
    after = _decode_token(action, token) if token else None
    if after is not None and max_results is None:
        max_results = cap
    return max_results, after


def _paginate(items: list[Any], action: str, size: int | None, after: str | None,
              key=lambda o: o.id, weight=lambda o: 1) -> tuple[list[Any], str | None]:
    """One page of `items`, ordered by id so a token stays valid when items are
    deleted between pages (as an expiry loop does). `weight` lets a reservation
    count as its number of instances."""
    if size is None:
        return items, None
    items = sorted(items, key=key)
    if after is not None:
        items = [o for o in items if key(o) > after]
    page: list[Any] = []
    used = 0
    for obj in items:
        w = weight(obj)
        if page and used + w > size:
            break
        page.append(obj)
        used += w
    more = len(page) < len(items)
    return page, (_encode_token(action, key(page[-1])) if more and page else None)


# --------------------------------------------------------------------------
# Patch a + b: CreateImage
# --------------------------------------------------------------------------
# Before: a TagSpecification with ResourceType "snapshot" raised
# NotImplementedError (HTTP 500), and every image got exactly one 15 GiB
# snapshot of a throwaway volume whatever the instance had attached.
# After: one snapshot per EBS volume attached to the instance (minus devices
# given as NoDevice in BlockDeviceMappings), each tagged with the "snapshot"
# tags and listed in the image's BlockDeviceMappings with its real size/type;
# the image is EBS-backed with the instance's root device name. Also
# InvalidAMIName.Malformed / InvalidAMIName.Duplicate, as AWS answers.


def _create_image(self: Any, instance_id: str, name: str, description: str,
                  tag_specifications: list[dict[str, Any]],
                  block_device_mappings: list[dict[str, Any]] | None = None) -> Ami:
    instance = self.get_instance(instance_id)
    tags = _tag_specs(tag_specifications, {"image", "snapshot"})
    with _lock:
        _check_ami_name(self, name)
        ami_id = random_ami_id()
        ami = Ami(self, ami_id, instance=instance, name=name, description=description)
        _drop_placeholder_snapshot(self, ami)
        ami.root_device_type = "ebs"
        ami.root_device_name = instance.root_device_name
        excluded = {m.get("DeviceName") for m in block_device_mappings or [] if "NoDevice" in m}
        mappings, snapshots = [], []
        for device, bdt in instance.get_block_device_mapping:
            if device in excluded or not bdt.volume_id:
                continue
            volume = self.get_volume(bdt.volume_id)
            snap = self.create_snapshot(
                volume.id, f"Created by CreateImage({instance_id}) for {ami_id}", from_ami=ami_id
            )
            snap.add_tags(tags.get("snapshot", {}))
            snapshots.append(snap)
            ebs: dict[str, Any] = {
                "DeleteOnTermination": bool(bdt.delete_on_termination),
                "SnapshotId": snap.id,
                "VolumeSize": volume.size,
                "VolumeType": volume.volume_type,
                "Encrypted": bool(volume.encrypted),
            }
            if volume.iops:
                ebs["Iops"] = volume.iops
            if volume.throughput:
                ebs["Throughput"] = volume.throughput
            mappings.append({"DeviceName": device, "Ebs": ebs})
        _set_mappings(ami, mappings, snapshots)
        ami.add_tags(tags.get("image", {}))
        self.amis[ami_id] = ami
    return ami


def _create_image_response(self: Any) -> ActionResult:
    name = self._get_param("Name")
    description = self._get_param("Description", "")
    instance_id = self._get_param("InstanceId")
    tag_specifications = self._get_param("TagSpecifications", [])
    block_device_mappings = self._get_param("BlockDeviceMappings", [])
    self.error_on_dryrun()
    image = self.ec2_backend.create_image(
        instance_id, name, description, tag_specifications=tag_specifications,
        block_device_mappings=block_device_mappings,
    )
    return ActionResult({"ImageId": image.id})


# Images made by the patched calls carry their own mapping list.
_orig_ami_bdm = Ami.block_device_mappings


def _ami_block_device_mappings(self: Ami) -> list[dict[str, Any]]:
    mappings = self.__dict__.get("_aws_block_device_mappings")
    return mappings if mappings is not None else _orig_ami_bdm.fget(self)


# --------------------------------------------------------------------------
# Patch c: CopyImage
# --------------------------------------------------------------------------
# Before: ClientToken, CopyImageTags, TagSpecifications, Encrypted and KmsKeyId
# were ignored (every call made a new image), the copy got one 15 GiB
# placeholder snapshot instead of copies of the source's snapshots, a
# deregistered source answered HTTP 500 (IndexError), and Name was optional.
# After: same ClientToken in the destination region -> same ImageId, no new
# image (IdempotentParameterMismatch if other parameters differ); one snapshot
# per source EBS mapping, created in the destination region, encrypted as asked;
# CopyImageTags copies the user tags; TagSpecifications image/snapshot apply;
# Name is required (MissingParameter) and checked like CreateImage's.


def _copy_image(self: Any, source_image_id: str, source_region: str, name: str | None = None,
                description: str | None = None, *, client_token: str | None = None,
                copy_image_tags: bool = False,
                tag_specifications: list[dict[str, Any]] | None = None,
                encrypted: bool | None = None, kms_key_id: str | None = None) -> Ami:
    from moto.ec2.models import ec2_backends

    tags = _tag_specs(tag_specifications, {"image", "snapshot"})
    if kms_key_id and not encrypted:
        raise InvalidParameterDependency("KmsKeyId", "Encrypted")
    fingerprint = json.dumps(
        [source_image_id, source_region, name, description, bool(copy_image_tags),
         tags, bool(encrypted), kms_key_id], sort_keys=True)
    with _lock:
        tokens = self.__dict__.setdefault("_copy_image_tokens", {})
        if client_token and client_token in tokens:
            ami_id, first = tokens[client_token]
            if first != fingerprint:
                raise _error(
                    "IdempotentParameterMismatch",
                    f"Client token {client_token} was used with different parameters.",
                )
            return self.amis.get(ami_id) or _DeregisteredAmi(ami_id)

        try:
            source_backend = ec2_backends[self.account_id][source_region]
        except KeyError:
            raise _error("InvalidParameterValue", f"Invalid source region: {source_region}")
        # Cross-account sharing (k): an image of another account, shared with the caller
        source, owner_backend, owned = _copy_source_image(self, source_backend, source_image_id)
        _check_ami_name(self, name)

        ami_id = random_ami_id()
        ami = Ami(self, ami_id, source_ami=source, name=name, description=description)
        _drop_placeholder_snapshot(self, ami)
        ami.root_device_name = source.root_device_name
        ami.root_device_type = source.root_device_type
        same_region = source_region == self.region_name
        mappings, snapshots = [], []
        for mapping in source.block_device_mappings:
            ebs = dict(mapping.get("Ebs") or {})
            if not ebs.get("SnapshotId"):
                mappings.append(dict(mapping))
                continue
            src_snap = owner_backend.snapshots.get(ebs["SnapshotId"])
            if src_snap is None:  # e.g. an AMI loaded from a JSON file: make a stand-in volume
                src_volume = self.create_volume(size=ebs.get("VolumeSize") or 8,
                                                zone_name=f"{self.region_name}a")
                self.delete_volume(src_volume.id)
                src_encrypted, src_key = False, None
            else:
                src_volume, src_encrypted, src_key = src_snap.volume, src_snap.encrypted, src_snap.kms_key_id
            enc = bool(encrypted) or src_encrypted
            if kms_key_id:
                key = kms_key_id
            elif enc:
                key = src_key if (same_region and owned and src_encrypted and src_key) else _default_kms_key(self)
            else:
                key = None
            snap = Snapshot(
                self, random_snapshot_id(), volume=src_volume,
                description=(f"Copied for DestinationAmi {ami_id} from SourceAmi "
                             f"{source.id} for SourceSnapshot {ebs['SnapshotId']}"),
                encrypted=enc, kms_key_id=key, from_ami=ami_id,
            )
            self.snapshots[snap.id] = snap
            snap.add_tags(tags.get("snapshot", {}))
            snapshots.append(snap)
            ebs["SnapshotId"] = snap.id
            ebs["Encrypted"] = enc
            mappings.append({"DeviceName": mapping["DeviceName"], "Ebs": ebs})
        _set_mappings(ami, mappings, snapshots)
        if copy_image_tags:
            ami.add_tags(_user_tags(source))
        ami.add_tags(tags.get("image", {}))
        self.amis[ami_id] = ami
        if client_token:
            tokens[client_token] = (ami_id, fingerprint)
    return ami


class _DeregisteredAmi:
    """What a repeated ClientToken returns once the first copy was deregistered:
    AWS still answers the first copy's ImageId."""

    def __init__(self, ami_id: str):
        self.id = ami_id


def _copy_image_response(self: Any) -> ActionResult:
    source_image_id = self._get_param("SourceImageId")
    source_region = self._get_param("SourceRegion")
    name = self._get_param("Name")
    description = self._get_param("Description")
    self.error_on_dryrun()
    image = self.ec2_backend.copy_image(
        source_image_id, source_region, name, description,
        client_token=self._get_param("ClientToken"),
        copy_image_tags=self._get_bool_param("CopyImageTags", False),
        tag_specifications=self._get_param("TagSpecifications", []),
        encrypted=self._get_bool_param("Encrypted", False),
        kms_key_id=self._get_param("KmsKeyId"),
    )
    return ActionResult({"ImageId": image.id})


# --------------------------------------------------------------------------
# Patch d: CopySnapshot
# --------------------------------------------------------------------------
# Before: TagSpecifications were applied (only the first spec's type was
# checked), but Encrypted was ignored (Encrypted=true on an unencrypted source
# gave an unencrypted copy), an encrypted source copied without KmsKeyId lost
# its key, KmsKeyId alone silently meant "encrypted", and Description defaulted
# to nothing. After: Encrypted/KmsKeyId as AWS documents (KmsKeyId needs
# Encrypted=true; encrypted with no key -> the region's default EBS key, or the
# source's key within a region), default description
# "[Copied snap-... from REGION]", and every tag spec must be "snapshot".


def _copy_snapshot(self: Any, source_snapshot_id: str, source_region: str, description: str | None,
                   kms_key_id: str | None, encrypted: bool = False,
                   tags: dict[str, str] | None = None) -> Snapshot:
    from moto.ec2.models import ec2_backends

    if kms_key_id and not encrypted:
        raise InvalidParameterDependency("KmsKeyId", "Encrypted")
    try:
        source_backend = ec2_backends[self.account_id][source_region]
    except KeyError:
        raise _error("InvalidParameterValue", f"Invalid source region: {source_region}")
    source, owned = _copy_source_snapshot(source_backend, source_snapshot_id)  # (k): or shared
    enc = bool(encrypted) or source.encrypted
    if kms_key_id:
        key = kms_key_id
    elif enc:
        same_region = source_region == self.region_name
        key = (source.kms_key_id if (same_region and owned and source.encrypted and source.kms_key_id)
               else _default_kms_key(self))
    else:
        key = None
    snap = Snapshot(
        self, random_snapshot_id(), volume=source.volume,
        description=description if description is not None else f"[Copied {source.id} from {source_region}]",
        encrypted=enc, kms_key_id=key,
    )
    self.snapshots[snap.id] = snap
    snap.add_tags(tags or {})
    return snap


def _copy_snapshot_response(self: Any) -> ActionResult:
    tags = _tag_specs(self._get_param("TagSpecifications", []), {"snapshot"})
    self.error_on_dryrun()
    snapshot = self.ec2_backend.copy_snapshot(
        source_snapshot_id=self._get_param("SourceSnapshotId"),
        source_region=self._get_param("SourceRegion"),
        description=self._get_param("Description"),
        kms_key_id=self._get_param("KmsKeyId"),
        encrypted=self._get_bool_param("Encrypted", False),
        tags=tags.get("snapshot", {}),
    )
    return ActionResult({"SnapshotId": snapshot.id, "Tags": snapshot.tag_set})


# --------------------------------------------------------------------------
# CreateSnapshot (g)
# --------------------------------------------------------------------------
# Before: a snapshot of an encrypted volume was Encrypted=true but had no
# KmsKeyId; tag specs of another ResourceType were silently ignored.
# After: the snapshot inherits the volume's KMS key, as on AWS; only
# ResourceType "snapshot" is accepted.

_orig_create_snapshot = EBSBackend.create_snapshot


def _create_snapshot(self: Any, volume_id: str, description: str, owner_id: str | None = None,
                     from_ami: str | None = None) -> Snapshot:
    snap = _orig_create_snapshot(self, volume_id, description, owner_id=owner_id, from_ami=from_ami)
    if snap.encrypted and not snap.kms_key_id:
        snap.kms_key_id = snap.volume.kms_key_id
    return snap


def _create_snapshot_response(self: Any) -> ActionResult:
    tags = _tag_specs(self._get_param("TagSpecifications", []), {"snapshot"})
    volume_id = self._get_param("VolumeId")
    description = self._get_param("Description") or ""
    self.error_on_dryrun()
    snapshot = self.ec2_backend.create_snapshot(volume_id, description)
    snapshot.add_tags(tags.get("snapshot", {}))
    return ActionResult(snapshot)


# --------------------------------------------------------------------------
# Patch e + f: DescribeSnapshots (OwnerIds, paging), DeleteSnapshot messages
# --------------------------------------------------------------------------
# Before: OwnerIds (Owner.N, e.g. "self") and MaxResults/NextToken were
# ignored, and InvalidSnapshot.NotFound came with an empty message.


def _snapshot_not_found(snapshot_id: str) -> EC2ClientError:
    return _error("InvalidSnapshot.NotFound", f"The snapshot '{snapshot_id}' does not exist.")


def _describe_snapshots_response(self: Any) -> ActionResult:
    self.error_on_dryrun()
    size, after = _paging_params(self, "DescribeSnapshots", "SnapshotIds", "snapshotSet", 1000)
    filters = self._filters_from_querystring()
    snapshot_ids = self._get_param("SnapshotIds", [])
    backend = self.ec2_backend
    for sid in snapshot_ids:
        if sid not in backend.snapshots:
            raise _snapshot_not_found(sid)
    snapshots = backend.describe_snapshots(snapshot_ids=snapshot_ids, filters=filters)
    owner_ids = self._get_param("OwnerIds", [])
    if owner_ids:
        owners = {backend.account_id if o == "self" else o for o in owner_ids}
        snapshots = [s for s in snapshots if s.owner_id in owners]
    page, token = _paginate(snapshots, "DescribeSnapshots", size, after)
    return ActionResult({"Snapshots": page, "NextToken": token})


def _delete_snapshot(self: Any, snapshot_id: str) -> Snapshot:
    # Under the lock: a DeregisterImage in another thread changing the images while this
    # looks through them answered HTTP 500 ("dictionary changed size during iteration").
    with _lock:
        snapshot = self.snapshots.get(snapshot_id)
        if snapshot is None:
            raise _snapshot_not_found(snapshot_id)
        # In use while a registered image lists it (moto only knew the image that made it).
        for ami in self.amis.values():
            for mapping in ami.block_device_mappings:
                if (mapping.get("Ebs") or {}).get("SnapshotId") == snapshot_id:
                    raise _error("InvalidSnapshot.InUse",
                                 f"The snapshot {snapshot_id} is currently in use by {ami.id}")
        return self.snapshots.pop(snapshot_id)


# --------------------------------------------------------------------------
# Patch f: DescribeImages / DescribeVolumes / DescribeInstances paging
# --------------------------------------------------------------------------
# Before: DescribeImages and DescribeVolumes ignored MaxResults/NextToken and
# returned everything; DescribeInstances paged by reservation with the raw
# reservation id as token (an unknown token -> HTTP 500) and a default page of
# 100 when MaxResults was absent. DescribeImages also ignored Filters when
# ImageIds were given and returned disabled images without IncludeDisabled.
# After: all four honour MaxResults (>= 5, capped) and an opaque NextToken,
# return everything when MaxResults is absent, and reject MaxResults together
# with explicit ids (InvalidParameterCombination).


def _describe_images_response(self: Any) -> ActionResult:
    self.error_on_dryrun()
    size, after = _paging_params(self, "DescribeImages", "ImageIds", "imagesSet", 1000)
    ami_ids = self._get_param("ImageIds", [])
    filters = self._filters_from_querystring()
    images = self.ec2_backend.describe_images(
        ami_ids=ami_ids, filters=filters,
        exec_users=self._get_param("ExecutableUsers", []),
        owners=self._get_param("Owners", []),
    )
    if ami_ids and filters:  # moto skipped the filters when ids were given
        images = ec2_utils.generic_filter(filters, images)
    if not ami_ids and not self._get_bool_param("IncludeDisabled", False):
        images = [i for i in images if i.state != "disabled"]
    page, token = _paginate(images, "DescribeImages", size, after)
    return ActionResult({"Images": page, "NextToken": token})


def _describe_volumes_response(self: Any) -> ActionResult:
    self.error_on_dryrun()
    size, after = _paging_params(self, "DescribeVolumes", "VolumeIds", "volumeSet", 500)
    for vid in self._get_param("VolumeIds", []):  # Restores (j): the id, not a Python set
        if vid not in self.ec2_backend.volumes:
            raise _error("InvalidVolume.NotFound", f"The volume '{vid}' does not exist.")
    volumes = self.ec2_backend.describe_volumes(
        volume_ids=self._get_param("VolumeIds", []), filters=self._filters_from_querystring()
    )
    page, token = _paginate(volumes, "DescribeVolumes", size, after)
    return ActionResult({"Volumes": page, "NextToken": token})


def _describe_instances_response(self: Any) -> ActionResult:
    self.error_on_dryrun()
    size, after = _paging_params(self, "DescribeInstances", "InstanceIds", "instancesSet", 1000)
    filters = self._filters_from_querystring()
    instance_ids = self._get_param("InstanceIds", [])
    if instance_ids:
        reservations = self.ec2_backend.get_reservations_by_instance_ids(instance_ids, filters=filters)
    else:
        reservations = self.ec2_backend.describe_instances(filters=filters)
    # MaxResults counts instances; a page holds whole reservations.
    page, token = _paginate(reservations, "DescribeInstances", size, after,
                            weight=lambda r: max(1, len(r.instances)))
    return ActionResult({"Reservations": page, "NextToken": token})


# --------------------------------------------------------------------------
# DeregisterImage (g): DeleteAssociatedSnapshots; RegisterImage: BlockDeviceMappings
# --------------------------------------------------------------------------
# Before: the DeleteAssociatedSnapshots flag was ignored, and RegisterImage ignored
# BlockDeviceMappings and RootDeviceName (every image got one 15 GiB placeholder
# snapshot), so no two images could list the same snapshot.
# After, as the API reference documents: snapshots stay in place by default;
# with DeleteAssociatedSnapshots=true the image is deregistered and each snapshot
# it lists is deleted, except one that another AMI still lists, which stays
# ("skipped", "regardless of this setting"); DeleteSnapshotResults has one
# entry per snapshot (SnapshotId, ReturnCode success | skipped | client-error),
# and the image is deregistered whatever happens to its snapshots. moto knows
# no IAM, so "missing-permissions" never comes back here. RegisterImage lists
# the given EBS mappings (a snapshot that does not exist is
# InvalidSnapshot.NotFound) and applies TagSpecifications of ResourceType
# "image" (moto dropped them; another type is rejected).


def _listed_snapshots(ami: Ami) -> list[str]:
    """The snapshots an image lists, each once, in mapping order."""
    ids = ((m.get("Ebs") or {}).get("SnapshotId") for m in ami.block_device_mappings)
    return list(dict.fromkeys(sid for sid in ids if sid))


def _deregister_image_response(self: Any) -> ActionResult:
    ami_id = self._get_param("ImageId")
    delete_snapshots = self._get_bool_param("DeleteAssociatedSnapshots", False)
    self.error_on_dryrun()
    backend = self.ec2_backend
    with _lock:
        ami = backend.amis.get(ami_id)
        listed = _listed_snapshots(ami) if ami else []
        backend.deregister_image(ami_id)  # InvalidAMIID.NotFound / .Unavailable
        results = []
        if delete_snapshots:
            still_listed = {sid for other in backend.amis.values() for sid in _listed_snapshots(other)}
            for sid in listed:
                if sid in still_listed:
                    code = "skipped"
                elif backend.snapshots.pop(sid, None) is not None:
                    code = "success"
                else:
                    code = "client-error"  # moto-only: a listed snapshot deleted behind its back
                results.append({"SnapshotId": sid, "ReturnCode": code})
    result: dict[str, Any] = {"Return": True}
    if delete_snapshots:
        result["DeleteSnapshotResults"] = results
    return ActionResult(result)


def _register_image_response(self: Any) -> ActionResult:
    name = self._get_param("Name")
    description = self._get_param("Description", "")
    mappings = self._get_param("BlockDeviceMappings", [])
    root_device_name = self._get_param("RootDeviceName")
    tags = _tag_specs(self._get_param("TagSpecifications", []), {"image"})
    self.error_on_dryrun()
    backend = self.ec2_backend
    with _lock:
        snapshots = []
        for m in mappings:
            sid = (m.get("Ebs") or {}).get("SnapshotId")
            if sid:
                if sid not in backend.snapshots:
                    raise _snapshot_not_found(sid)
                snapshots.append(backend.snapshots[sid])
        image = backend.register_image(name, description)
        if snapshots:
            _drop_placeholder_snapshot(backend, image)
            image.root_device_type = "ebs"
            image.root_device_name = root_device_name or mappings[0].get("DeviceName")
            out = []
            for m in mappings:
                ebs = dict(m.get("Ebs") or {})
                snap = backend.snapshots.get(ebs.get("SnapshotId", ""))
                if snap is not None:
                    ebs.setdefault("VolumeSize", snap.volume.size)
                    ebs.setdefault("Encrypted", bool(snap.encrypted))
                    ebs.setdefault("DeleteOnTermination", True)
                    ebs.setdefault("VolumeType", "gp2")
                out.append({"DeviceName": m.get("DeviceName"), "Ebs": ebs})
            _set_mappings(image, out, snapshots)
        image.add_tags(tags.get("image", {}))
    return ActionResult({"ImageId": image.id})


# --------------------------------------------------------------------------
# Filters and tags (g)
# --------------------------------------------------------------------------
# Before: a list-valued filter (tag-key, tag-value) with two or more values
# matched only if the resource's set was a subset/superset of the values,
# not "any value matches" as EC2 filters do; DescribeImages knew no
# block-device-mapping.* filters (HTTP 500 FilterNotImplementedError) and
# matched creation-date without wildcards. CreateTags answered HTTP 500 for a
# tag without Value, accepted reserved "aws:" keys, and tagged a deregistered
# image without complaint (AWS: InvalidAMIID.NotFound).

_orig_is_filter_matching = ec2_utils.is_filter_matching
_ANY_OF_FILTERS = ("tag-key", "tag-value")


def _is_filter_matching(obj: Any, name: str, values: Any) -> bool:
    if values is not None and (name in _ANY_OF_FILTERS or name.startswith("block-device-mapping.")):
        actual = obj.get_filter_value(name) or []
        if isinstance(actual, str):
            actual = [actual]
        return any(fnmatch.fnmatchcase(str(a), str(p)) for a in actual for p in values)
    return _orig_is_filter_matching(obj, name, values)


_orig_ami_get_filter_value = Ami.get_filter_value
_BDM_FILTERS = {
    "device-name": (None, "DeviceName"),
    "snapshot-id": ("Ebs", "SnapshotId"),
    "volume-size": ("Ebs", "VolumeSize"),
    "volume-type": ("Ebs", "VolumeType"),
    "encrypted": ("Ebs", "Encrypted"),
    "delete-on-termination": ("Ebs", "DeleteOnTermination"),
}


def _ami_get_filter_value(self: Ami, name: str, method_name: str | None = None) -> Any:
    if name.startswith("block-device-mapping.") and name[21:] in _BDM_FILTERS:
        section, field = _BDM_FILTERS[name[21:]]
        out = []
        for m in self.block_device_mappings:
            value = (m.get(section) or {}).get(field) if section else m.get(field)
            if value is not None:
                out.append(str(value).lower() if isinstance(value, bool) else str(value))
        return out
    if name == "creation-date":
        return format_timestamp(self.creation_date)
    return _orig_ami_get_filter_value(self, name, method_name)


def _create_tags_response(self: Any) -> ActionResult:
    from moto.ec2.responses.tags import validate_resource_ids

    resource_ids = self._get_param("Resources", [])
    validate_resource_ids(resource_ids)
    self.ec2_backend.do_resources_exist(resource_ids)
    for rid in resource_ids:  # moto let a deregistered image through
        if rid.startswith("ami-") and rid not in self.ec2_backend.amis:
            raise InvalidAMIIdError(rid)
    tags = {t["Key"]: t.get("Value", "") for t in self._get_param("Tags", [])}
    _check_user_tag_keys(tags)
    self.error_on_dryrun()
    self.ec2_backend.create_tags(resource_ids, tags)
    return EmptyResult()


# --------------------------------------------------------------------------
# Zones (h): CreateVolume and AttachVolume check the availability zone
# --------------------------------------------------------------------------
# Before: CreateVolume accepted any AvailabilityZone (the volume then had none),
# and AttachVolume attached a volume to an instance in another zone.
# After: an unknown zone is InvalidZone.NotFound, and a volume in another zone
# than the instance is InvalidVolume.ZoneMismatch, as AWS answers.


def _create_volume_response(self: Any) -> ActionResult:
    zone = self._get_param("AvailabilityZone")
    if zone and self.ec2_backend.get_zone_by_name(zone) is None:
        raise _error("InvalidZone.NotFound", f"The zone '{zone}' does not exist.")
    # Restores (j): a ClientToken answers what it made; only "volume" can be tagged here; an
    # unknown snapshot is named.
    backend = self.ec2_backend
    token = self._get_param("ClientToken")
    fingerprint = _request_fingerprint(self, "AvailabilityZone")
    with _lock:
        volume = _replay(backend, "CreateVolume", token, fingerprint)
        if volume is not None:
            if volume.id not in backend.volumes:
                volume.__dict__["_deleted"] = True
            return ActionResult(volume)
        _tag_specs(self._get_param("TagSpecifications", []), {"volume"})
        snapshot_id = self._get_param("SnapshotId")
        if snapshot_id and snapshot_id not in backend.snapshots:
            raise _snapshot_not_found(snapshot_id)
        result = _orig_create_volume_response(self)
        if snapshot_id:  # what the restore hold of kind "volume" applies to
            result.result.__dict__["_restored_from_snapshot"] = True  # the new Volume
        _remember(backend, "CreateVolume", token, fingerprint, result.result)
    return result


def _attach_volume_response(self: Any) -> ActionResult:
    backend = self.ec2_backend
    volume = backend.get_volume(self._get_param("VolumeId"))
    instance = backend.get_instance(self._get_param("InstanceId"))
    if volume.zone is not None and volume.zone.name != instance.placement.zone:
        raise _error(
            "InvalidVolume.ZoneMismatch",
            f"The volume '{volume.id}' is not in the same availability zone as instance "
            f"'{instance.id}'",
        )
    return _orig_attach_volume_response(self)


_orig_create_volume_response = ElasticBlockStore.create_volume
_orig_attach_volume_response = ElasticBlockStore.attach_volume


def _set_zone_state(region: str, zone_name: str, state: str) -> None:
    from moto.ec2.models.availability_zones_and_regions import RegionsAndZonesBackend

    for zone in RegionsAndZonesBackend.zones.get(region, []):
        if zone.name == zone_name:
            zone.state = state
            return
    raise KeyError(f"no zone {zone_name} in {region}")


def _reset_zone_states() -> None:
    from moto.ec2.models.availability_zones_and_regions import RegionsAndZonesBackend

    for zones in RegionsAndZonesBackend.zones.values():
        for zone in zones:
            zone.state = "available"


# --------------------------------------------------------------------------
# Restores (j): what a restore drill calls
# --------------------------------------------------------------------------
# Before: RunInstances launched whatever it was given: an instance type EC2 does
# not know (AWS: InvalidParameterValue "Invalid value 'x' for InstanceType."), an
# ImageId that is not an image of the region (AWS: InvalidAMIID.NotFound: one of
# another region, one deregistered, one never made); and an instance launched from
# an image got one blank 8 GiB /dev/sda1 whatever the image listed. Groups given in
# NetworkInterfaces were on the interface but not in the instance's SecurityGroups,
# and an interface without a public address answered an empty Association (AWS
# leaves it out: a client reading "has an association" saw a public address).
# DescribeInstanceStatus ignored every filter but instance-state-name/-code
# (availability-zone, instance-status.status, system-status.status and the
# .reachability ones returned everything). CreateVolume accepted TagSpecifications
# of any ResourceType, and a SnapshotId that does not exist answered
# InvalidSnapshot.NotFound with no message; DescribeVolumes' InvalidVolume.NotFound
# named the volume as a Python set ("The volume '{'vol-...'}' does not exist.").
# After: as AWS answers. Image ids of the form AWS issues (ami- and 17 hex digits)
# must be an image of the region; the old 8-digit form that no image of the region
# has (the tests' "ami-12345678") still launches, as moto's stand-in for someone's
# public image. An instance launched from an image the patched CreateImage /
# CopyImage / RegisterImage made gets one volume per EBS mapping of the image (its
# size, type, snapshot, encryption and DeleteOnTermination; a data volume attached
# with DeleteOnTermination false stays, available, after TerminateInstances, as on
# AWS), each tagged with the "volume" TagSpecifications.
# RunInstances and CreateVolume ignored ClientToken: a retry made a second instance or volume.
# After, as the EC2 idempotency guide says: the same token in the same region answers what the
# first call made (its state now), and IdempotentParameterMismatch when any parameter other
# than the Availability Zone differs (the TagSpecifications too). A token repeated after its
# volume was deleted answers the volume with State "deleted": the guide does not say; chosen
# here, not observed on AWS.
# The restore holds (POST /_test/restore-hold) make a region's restores slow or
# broken on demand: instance status checks initializing/impaired, volumes made by
# CreateVolume from a snapshot creating/error.

# AMI ids as EC2 issues them today; moto's random_ami_id makes the same form.
_AWS_AMI_ID_RE = re.compile(r"ami-[0-9a-f]{17}")

# (region, "instance" | "volume") -> the status held; absent: moto's own (ok / available)
_restore_holds: dict[tuple[str, str], str] = {}
RESTORE_HOLD_STATES = {"instance": ("initializing", "impaired"), "volume": ("creating", "error")}
# What DescribeInstanceStatus' reachability detail says under each held status.
_REACHABILITY = {"ok": "passed", "initializing": "initializing", "impaired": "failed"}


def _set_restore_hold(spec: Any) -> None:
    """{"region", "kind", "status"}; status null lifts the hold. ValueError/KeyError/TypeError when bad."""
    from moto.ec2.models.availability_zones_and_regions import RegionsAndZonesBackend

    region, kind, status = str(spec["region"]), str(spec["kind"]), spec["status"]
    if region not in RegionsAndZonesBackend.zones:
        raise ValueError(f"no region {region!r}")
    if kind not in RESTORE_HOLD_STATES:
        raise ValueError(f"kind {kind!r} is not one of {sorted(RESTORE_HOLD_STATES)}")
    if status is None:
        _restore_holds.pop((region, kind), None)
        return
    if status not in RESTORE_HOLD_STATES[kind]:
        raise ValueError(f"status {status!r} is not one of {RESTORE_HOLD_STATES[kind]} for kind {kind!r}")
    _restore_holds[(region, kind)] = str(status)


def _held(region: str, kind: str) -> str | None:
    return _restore_holds.get((region, kind))


def _status_check(self: Instance) -> dict[str, Any]:
    """InstanceStatus and SystemStatus: not-applicable unless running (moto's); running: ok,
    or what the region's instance hold says."""
    if self.state_code != 16:
        return {"Status": "not-applicable"}
    status = _held(self.ec2_backend.region_name, "instance") or "ok"
    return {"Details": [{"Name": "reachability", "Status": _REACHABILITY[status]}], "Status": status}


def _volume_status(self: Volume) -> str:
    if self.__dict__.get("_deleted"):  # only ever answered to a repeated ClientToken
        return "deleted"
    if self.attachment:
        return "in-use"
    if self.__dict__.get("_restored_from_snapshot"):
        return _held(self.ec2_backend.region_name, "volume") or "available"
    return "available"


_INSTANCE_STATUS_FILTERS = {
    "availability-zone": lambda i: [i.placement.zone],
    "instance-state-name": lambda i: [i.state],
    "instance-state-code": lambda i: [str(i.state_code)],
    "instance-status.status": lambda i: [i.instance_status["Status"]],
    "instance-status.reachability": lambda i: [d["Status"] for d in i.instance_status.get("Details", [])],
    "system-status.status": lambda i: [i.system_status["Status"]],
    "system-status.reachability": lambda i: [d["Status"] for d in i.system_status.get("Details", [])],
}


def _describe_instance_status_response(self: Any) -> ActionResult:
    self.error_on_dryrun()
    instance_ids = self._get_param("InstanceIds", [])
    filters = self._filters_from_querystring()
    for name in filters:
        if name not in _INSTANCE_STATUS_FILTERS:
            raise FilterNotImplementedError(name, "DescribeInstanceStatus")
    backend = self.ec2_backend
    # InvalidInstanceID.NotFound for an unknown id, as AWS
    instances = backend.get_multi_instances_by_id(instance_ids) if instance_ids else backend.all_instances()
    if not self._get_bool_param("IncludeAllInstances", False):
        instances = [i for i in instances if i.state_code == 16]
    instances = [
        i for i in instances
        if all(any(fnmatch.fnmatchcase(str(v), str(p)) for v in _INSTANCE_STATUS_FILTERS[name](i) for p in values)
               for name, values in filters.items())
    ]
    return ActionResult({"InstanceStatuses": instances})


def _request_fingerprint(resp: Any, zone_param: str) -> str:
    """The request's parameters, as a client token compares them: all but the token itself
    and the Availability Zone ("other than the Region or Availability Zone")."""
    skip = {"Action", "Version", "ClientToken", zone_param}
    return json.dumps(sorted((k, v) for k, v in resp.querystring.items() if k not in skip))


def _replay(backend: Any, action: str, token: str | None, fingerprint: str) -> Any:
    """What `token` made before in this region (None: nothing); IdempotentParameterMismatch when
    it came with other parameters."""
    if not token:
        return None
    made = backend.__dict__.setdefault("_client_tokens", {}).get((action, token))
    if made is None:
        return None
    if made[1] != fingerprint:
        raise _error("IdempotentParameterMismatch", f"Client token {token} was used with different parameters.")
    return made[0]


def _remember(backend: Any, action: str, token: str | None, fingerprint: str, made: Any) -> None:
    if token:
        backend.__dict__.setdefault("_client_tokens", {})[(action, token)] = (made, fingerprint)


def _run_instances_response(self: Any) -> ActionResult:
    backend = self.ec2_backend
    token = self._get_param("ClientToken")
    fingerprint = _request_fingerprint(self, "Placement.AvailabilityZone")
    with _lock:
        reservation = _replay(backend, "RunInstances", token, fingerprint)
        if reservation is not None:  # the same instances, as they are now
            return ActionResult(reservation)
        instance_type = self._get_param("InstanceType")
        if instance_type is not None and instance_type not in INSTANCE_TYPES:
            raise _error("InvalidParameterValue", f"Invalid value '{instance_type}' for InstanceType.")
        image_id = self._get_param("ImageId")
        if image_id and image_id not in backend.amis and _AWS_AMI_ID_RE.fullmatch(image_id):
            raise InvalidAMIIdError(image_id)
        result = _orig_run_instances_response(self)
        _remember(backend, "RunInstances", token, fingerprint, result.result)
    return result


_orig_run_instances_response = InstanceResponse.run_instances
_orig_run_instances = InstanceBackend.run_instances
_orig_parse_block_device_mapping = InstanceResponse._parse_block_device_mapping


def _no_size_check(device_mapping: dict[str, Any]) -> None:
    """The size-or-snapshot check moves to `_parse_block_device_mapping`, which knows the image."""
    if "NoDevice" in device_mapping or "Ebs" in device_mapping:
        return
    raise MissingParameterError("ebs")


def _parse_block_device_mapping(self: Any) -> list[dict[str, Any]]:
    """Restores (j): a mapping RunInstances names for a device of its image overrides only what
    it gives (AWS: `DeviceName=/dev/sdf,Ebs={DeleteOnTermination=true}` keeps the image's
    snapshot and size); the image's other EBS devices are still made. moto wanted a size or a
    snapshot in each mapping, and made only the mappings named."""
    given = self._get_param("BlockDeviceMappings", [])
    parsed = _orig_parse_block_device_mapping(self)
    if not parsed:
        return parsed
    ami = self.ec2_backend.amis.get(self._get_param("ImageId") or "")
    image = {m["DeviceName"]: m for m in (ami.__dict__.get("_aws_block_device_mappings") or [])
             if m.get("Ebs")} if ami else {}
    for mapping, raw in zip(parsed, given):
        ebs, raw_ebs = mapping["Ebs"], raw.get("Ebs") or {}
        base = (image.get(mapping["DeviceName"]) or {}).get("Ebs") or {}
        for key in ("SnapshotId", "VolumeSize", "VolumeType", "Iops", "KmsKeyId"):
            if ebs.get(key) is None and base.get(key) is not None:
                ebs[key] = base[key]
        if "Encrypted" not in raw_ebs and base.get("Encrypted"):
            ebs["Encrypted"] = True
        if "DeleteOnTermination" not in raw_ebs:
            ebs["DeleteOnTermination"] = bool(base.get("DeleteOnTermination"))
        if mapping.get("NoDevice") != "" and not ebs.get("VolumeSize") and not ebs.get("SnapshotId"):
            raise MissingParameterError("size or snapshotId")
    named = {m["DeviceName"] for m in parsed}
    for device, m in image.items():
        if device not in named:
            parsed.append({"DeviceName": device, "VirtualName": None, "NoDevice": None,
                           "Ebs": dict(m["Ebs"], DeleteOnTermination=bool(m["Ebs"].get("DeleteOnTermination")))})
    return parsed


def _run_instances(self: Any, image_id: str, count: int, user_data: Any,
                   security_group_names: list[str], **kwargs: Any) -> Any:
    reservation = _orig_run_instances(self, image_id, count, user_data, security_group_names, **kwargs)
    for instance in reservation.instances:
        primary = instance.nics.get(0)
        # The instance's groups are its primary interface's, also when given there only.
        if not instance.security_groups and primary is not None and primary._group_set:
            instance.security_groups = list(primary._group_set)
    return reservation


_orig_setup_defaults = Instance.setup_defaults


def _setup_defaults(self: Instance) -> None:
    """An instance's volumes are its image's EBS mappings (moto: one blank 8 GiB root)."""
    backend = self.ec2_backend
    ami = backend.amis.get(self.image_id)
    mappings = [m for m in (ami.__dict__.get("_aws_block_device_mappings") or []) if m.get("Ebs")] if ami else []
    if not mappings:
        _orig_setup_defaults(self)
        return
    for mapping in mappings:
        ebs = mapping["Ebs"]
        snap = backend.snapshots.get(ebs.get("SnapshotId") or "")
        encrypted = bool(ebs.get("Encrypted")) or bool(snap and snap.encrypted)
        volume = backend.create_volume(
            size=ebs.get("VolumeSize") or (snap.volume.size if snap else 8),
            zone_name=self.placement.zone,
            snapshot_id=snap.id if snap else None,
            encrypted=encrypted,
            kms_key_id=snap.kms_key_id if snap is not None and snap.encrypted else None,
            volume_type=ebs.get("VolumeType"),
            iops=ebs.get("Iops"),
            throughput=ebs.get("Throughput"),
        )
        backend.attach_volume(volume.id, self.id, mapping["DeviceName"], bool(ebs.get("DeleteOnTermination")))


def _eni_association(self: NetworkInterface) -> dict[str, Any] | None:
    """None (left out of the answer) without a public address."""
    return _orig_eni_association.fget(self) if self.public_ip else None


_orig_eni_association = NetworkInterface.association


# --------------------------------------------------------------------------
# Snapshot locks and image protection (l)
# --------------------------------------------------------------------------
# Before: moto 5.2.5 knew none of LockSnapshot, UnlockSnapshot, DescribeLockedSnapshots,
# EnableImageDeregistrationProtection, DisableImageDeregistrationProtection (each HTTP 500),
# DescribeImages had no DeregistrationProtection, and nothing stopped a deletion.
# After, as the EC2 API reference (LockSnapshot, UnlockSnapshot, DescribeLockedSnapshots,
# LockedSnapshotsInfo, Enable/DisableImageDeregistrationProtection) and the EBS / EC2 user
# guides (snapshot lock concepts, considerations, update lock settings; protect an AMI from
# deregistration) document them:
# - LockSnapshot: LockMode governance | compliance; LockDuration (days, 1-36500) or
#   ExpirationDate, exactly one; CoolOffPeriod (hours, 1-72) in compliance mode only. The
#   answer: SnapshotId, LockState, LockDuration (when given), CoolOffPeriod and
#   CoolOffPeriodExpiresOn (when given), LockCreatedOn, LockDurationStartTime, LockExpiresOn.
#   Locking again changes the lock: in governance and compliance-cooloff anything; in
#   compliance only a later expiry (same mode, no CoolOffPeriod); an expired lock is replaced.
# - The state moves with the clock (/_test/clock): compliance-cooloff until the cool-off
#   ends, then compliance; governance; expired once LockExpiresOn has passed.
# - UnlockSnapshot: in governance and compliance-cooloff; refused in compliance.
# - DescribeLockedSnapshots: SnapshotIds, Filters lock-state, MaxResults (5-1000)/NextToken.
#   A snapshot never locked (or unlocked) is not listed; an expired lock is, as "expired".
# - A locked snapshot (any state but expired) cannot leave its region: DeleteSnapshot is
#   refused, and DeregisterImage with DeleteAssociatedSnapshots deregisters the image ("You
#   can deregister an AMI that has associated snapshots that are locked") and reports the
#   locked snapshot "client-error" (not deleted), the snapshot staying.
# - Deregistration protection: Enable (WithCooldown) answers Return "enabled-without-cooldown"
#   / "enabled-with-cooldown", Disable answers "disabled" (the aws-cli examples); DescribeImages
#   shows the same in DeregistrationProtection. Disabling protection enabled with cooldown
#   keeps the image protected 24 hours; meanwhile DeregistrationProtection reads
#   "disabled after <instant>" (the form aws-nuke matches on; the API reference lists no
#   values), then "disabled". DeregisterImage of a protected image is refused.
# Not documented, chosen here: the error codes. The API reference gives none for a refusal
# by lock or protection (errors-overview lists no lock code), so each answers the generic
# documented OperationNotPermitted ("The specified operation is not allowed", the
# termination-protection case); parameter errors answer InvalidParameterValue /
# InvalidParameterCombination / MissingParameter. A client should not branch on these codes.
# UnlockSnapshot of a snapshot without a lock answers success. Not modelled: a pending
# snapshot (moto's complete at once), IAM condition keys, ownership checks.

import datetime as _dt  # noqa: E402

LOCK_REFUSED = "OperationNotPermitted"
_LOCKED_STATES = ("governance", "compliance-cooloff", "compliance")
_PROTECTION_COOLDOWN = _dt.timedelta(hours=24)


def _naive_utc(value: Any, name: str) -> _dt.datetime:
    """A timestamp parameter (botocore sends ISO 8601) as naive UTC, as moto stamps."""
    if isinstance(value, _dt.datetime):
        at = value
    else:
        try:
            at = _dt.datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            raise _error("InvalidParameterValue",
                         f"Value ({value}) for parameter {name} is invalid. Expected a timestamp.")
    if at.tzinfo is not None:
        at = at.astimezone(_dt.timezone.utc).replace(tzinfo=None)
    return at


def _int_param(resp: Any, name: str, low: int, high: int) -> int | None:
    raw = resp._get_param(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except (TypeError, ValueError):
        value = None
    if value is None or not low <= value <= high:
        raise _error("InvalidParameterValue",
                     f"Value ({raw}) for parameter {name} is invalid. "
                     f"Expected an integer from {low} to {high}.")
    return value


def _lock_state(snapshot: Snapshot, now: _dt.datetime | None = None) -> str | None:
    lock = getattr(snapshot, "_lock", None)
    if lock is None:
        return None
    now = now or _ec2_utcnow()
    if now >= lock["expires_on"]:
        return "expired"
    if lock["mode"] == "governance":
        return "governance"
    if lock["cool_off_expires_on"] is not None and now < lock["cool_off_expires_on"]:
        return "compliance-cooloff"
    return "compliance"


def _stamp(at: _dt.datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def _lock_info(snapshot: Snapshot, owner: bool = False) -> dict[str, Any]:
    lock = snapshot._lock
    info: dict[str, Any] = {}
    if owner:
        info["OwnerId"] = snapshot.owner_id
    info.update({
        "SnapshotId": snapshot.id,
        "LockState": _lock_state(snapshot),
        "LockDuration": lock["duration"],
        "CoolOffPeriod": lock["cool_off"],
        "CoolOffPeriodExpiresOn": lock["cool_off_expires_on"],
        "LockCreatedOn": lock["created_on"],
        "LockDurationStartTime": lock["start"],
        "LockExpiresOn": lock["expires_on"],
    })
    return {k: v for k, v in info.items() if v is not None}


def _locked_error(snapshot: Snapshot, doing: str) -> EC2ClientError:
    state = _lock_state(snapshot)
    return _error(LOCK_REFUSED,
                  f"The snapshot {snapshot.id} is locked ({state}) until "
                  f"{_stamp(snapshot._lock['expires_on'])}; it can't be {doing}.")


class _SnapshotTable(dict):
    """A region's snapshots, from which a locked snapshot cannot be removed: whatever path
    deletes it (DeleteSnapshot, DeregisterImage's DeleteAssociatedSnapshots) finds it stays.
    pop(id, default) answers the default, as for a snapshot not there; pop(id) raises."""

    def pop(self, key: Any, *default: Any) -> Any:
        snapshot = dict.get(self, key)
        if snapshot is not None and _lock_state(snapshot) in _LOCKED_STATES:
            if default:
                return default[0]
            raise _locked_error(snapshot, "deleted")
        return dict.pop(self, key, *default)

    def __delitem__(self, key: Any) -> None:
        self.pop(key)


_prev_ebs_init = EBSBackend.__init__


def _ebs_backend_init(self: Any, *args: Any, **kwargs: Any) -> None:
    _prev_ebs_init(self, *args, **kwargs)
    self.snapshots = _SnapshotTable(self.snapshots)


def _lock_snapshot_response(self: Any) -> ActionResult:
    snapshot_id = self._get_param("SnapshotId")
    mode = self._get_param("LockMode")
    if not snapshot_id:
        raise MissingParameterError("SnapshotId")
    if not mode:
        raise MissingParameterError("LockMode")
    if mode not in ("governance", "compliance"):
        raise _error("InvalidParameterValue",
                     f"Value ({mode}) for parameter LockMode is invalid. "
                     "Valid values: compliance | governance.")
    duration = _int_param(self, "LockDuration", 1, 36500)
    raw_expiry = self._get_param("ExpirationDate")
    if duration is not None and raw_expiry:
        raise InvalidParameterCombination(
            "Specify either LockDuration or ExpirationDate, but not both.")
    if duration is None and not raw_expiry:
        raise _error("MissingParameter",
                     "The request must contain the parameter LockDuration or ExpirationDate")
    cool_off = _int_param(self, "CoolOffPeriod", 1, 72)
    if cool_off is not None and mode == "governance":
        raise InvalidParameterCombination(
            "CoolOffPeriod applies to compliance mode only; omit it in governance mode.")
    self.error_on_dryrun()
    now = _ec2_utcnow()
    expiry = None
    if raw_expiry:
        expiry = _naive_utc(raw_expiry, "ExpirationDate")
        if expiry <= now:
            raise _error("InvalidParameterValue",
                         f"Value ({raw_expiry}) for parameter ExpirationDate is invalid. "
                         "The expiration date must be in the future.")
    backend = self.ec2_backend
    with _lock:
        snapshot = backend.snapshots.get(snapshot_id)
        if snapshot is None:
            raise _snapshot_not_found(snapshot_id)
        state = _lock_state(snapshot, now)
        old = snapshot._lock if state in _LOCKED_STATES else None
        created = old["created_on"] if old else now
        start = old["start"] if old else now
        new_expiry = expiry or start + _dt.timedelta(days=duration)
        if state == "compliance":
            if mode != "compliance" or cool_off is not None or new_expiry < old["expires_on"]:
                raise _error(LOCK_REFUSED,
                             f"The snapshot {snapshot_id} is locked in compliance mode and its "
                             "cooling-off period has ended: its lock can only be extended "
                             "(same mode, a later expiry, no CoolOffPeriod).")
            cool_off, cool_start = old["cool_off"], old["cool_off_start"]
        elif cool_off is not None:
            # The cooling-off period starts when the snapshot is locked in compliance mode; one
            # still running can be made longer or shorter from the same start.
            cool_start = old["cool_off_start"] if state == "compliance-cooloff" else now
        else:
            cool_start = None
        snapshot._lock = {
            "mode": mode, "created_on": created, "start": start,
            "duration": duration, "expires_on": new_expiry,
            "cool_off": cool_off, "cool_off_start": cool_start,
            "cool_off_expires_on": (cool_start + _dt.timedelta(hours=cool_off)
                                    if cool_off is not None else None),
        }
        return ActionResult(_lock_info(snapshot))


def _unlock_snapshot_response(self: Any) -> ActionResult:
    snapshot_id = self._get_param("SnapshotId")
    if not snapshot_id:
        raise MissingParameterError("SnapshotId")
    self.error_on_dryrun()
    with _lock:
        snapshot = self.ec2_backend.snapshots.get(snapshot_id)
        if snapshot is None:
            raise _snapshot_not_found(snapshot_id)
        if _lock_state(snapshot) == "compliance":
            raise _error(LOCK_REFUSED,
                         f"The snapshot {snapshot_id} is locked in compliance mode and its "
                         "cooling-off period has ended; it can't be unlocked before "
                         f"{_stamp(snapshot._lock['expires_on'])}.")
        snapshot.__dict__.pop("_lock", None)
    return ActionResult({"SnapshotId": snapshot_id})


def _describe_locked_snapshots_response(self: Any) -> ActionResult:
    self.error_on_dryrun()
    # MaxResults 5-1000 (the model's range); SnapshotIds with MaxResults is not forbidden here.
    size, after = _paging_params(self, "DescribeLockedSnapshots", "-", "snapshotSet", 1000)
    ids = self._get_param("SnapshotIds", [])
    filters = self._filters_from_querystring()
    for name in filters:
        if name != "lock-state":
            raise _error("InvalidParameterValue", f"The filter '{name}' is invalid")
    states = set(filters.get("lock-state", []))
    backend = self.ec2_backend
    with _lock:
        for sid in ids:
            if sid not in backend.snapshots:
                raise _snapshot_not_found(sid)
        chosen = [backend.snapshots[s] for s in dict.fromkeys(ids)] if ids else list(backend.snapshots.values())
        locked = [s for s in chosen if getattr(s, "_lock", None) is not None
                  and (not states or _lock_state(s) in states)]
        page, token = _paginate(locked, "DescribeLockedSnapshots", size, after)
        infos = [_lock_info(s, owner=True) for s in page]
    return ActionResult({"Snapshots": infos, "NextToken": token})


def _deregistration_protection(self: Ami) -> str:
    p = getattr(self, "_protection", None)
    if p is None:
        return "disabled"
    if p["enabled"]:
        return "enabled-with-cooldown" if p["cooldown"] else "enabled-without-cooldown"
    if p["until"] is not None and _ec2_utcnow() < p["until"]:
        return f"disabled after {_stamp(p['until'])}"
    return "disabled"


def _owned_image(resp: Any) -> Ami:
    image_id = resp._get_param("ImageId")
    if not image_id:
        raise MissingParameterError("ImageId")
    image = resp.ec2_backend.amis.get(image_id)
    if image is None:
        raise InvalidAMIIdError(image_id)
    return image


def _enable_image_deregistration_protection_response(self: Any) -> ActionResult:
    with_cooldown = self._get_bool_param("WithCooldown", False)
    with _lock:
        image = _owned_image(self)
        self.error_on_dryrun()
        image._protection = {"enabled": True, "cooldown": with_cooldown, "until": None}
        return ActionResult({"Return": _deregistration_protection(image)})


def _disable_image_deregistration_protection_response(self: Any) -> ActionResult:
    with _lock:
        image = _owned_image(self)
        self.error_on_dryrun()
        p = getattr(image, "_protection", None)
        if p is not None and p["enabled"]:
            until = _ec2_utcnow() + _PROTECTION_COOLDOWN if p["cooldown"] else None
            image._protection = {"enabled": False, "cooldown": False, "until": until}
        return ActionResult({"Return": _deregistration_protection(image)})


def _deregister_image_unless_protected(prev: Any) -> Any:
    def deregister_image(self: Any) -> ActionResult:
        image_id = self._get_param("ImageId")
        with _lock:
            image = self.ec2_backend.amis.get(image_id)
            protection = _deregistration_protection(image) if image is not None else "disabled"
            if protection != "disabled":
                raise _error(LOCK_REFUSED,
                             f"The image {image_id} has deregistration protection "
                             f"({protection}); disable it before deregistering the image.")
            return prev(self)
    return deregister_image


# EventBridge: the event's account, and an event bus in another account as a target.
# Before: a rule's target got the event without its "account" field (moto's default input
# template leaves it out), and a rule whose target is an event bus in another account put
# the event on that bus whatever the bus's permissions, as an event of the receiving
# account (account = the receiver), so a receiver's rule matching "account": [sender]
# never fired; and the receiver's rules forwarded it again to a third account.
# After, as the EventBridge user guide (Events in Amazon EventBridge; Sending and receiving
# events between AWS accounts) documents: the event a target gets carries "account"; an
# event reaches another account's bus only when that bus's resource policy allows the
# sending account (Allow, events:PutEvents or events:*, Principal "*", the account id or
# its root ARN; a matching Deny wins; Conditions are not evaluated); it arrives as the
# sender's event (account, time and resources kept); and an event received from another
# account is not sent on to a bus in yet another account. An event the policy refuses is
# dropped, as AWS counts a failed invocation of the sender's rule.

import copy as _copy  # noqa: E402
import threading as _threading  # noqa: E402

from moto.events import models as _events_models  # noqa: E402
from moto.events.utils import EventTemplateParser  # noqa: E402
from moto.utilities.arns import parse_arn as _parse_arn  # noqa: E402

_forwarded = _threading.local()  # .account: the sender of the event being put, if forwarded
_prev_send_to_targets = _events_models.Rule.send_to_targets


def _bus_admits(bus: Any, sender: str) -> bool:
    def matches(stmt: dict[str, Any]) -> bool:
        actions = stmt.get("Action") or []
        actions = [actions] if isinstance(actions, str) else actions
        if not any(a in ("events:PutEvents", "events:*", "*") for a in actions):
            return False
        principal = stmt.get("Principal")
        if principal == "*":
            return True
        aws = principal.get("AWS") if isinstance(principal, dict) else None
        aws = [aws] if isinstance(aws, str) else (aws or [])
        # moto records PutPermission's Principal "*" as arn:aws:iam::*:root
        return any(p in ("*", sender) or re.fullmatch(rf"arn:[^:]+:iam::({sender}|\*):root", p or "")
                   for p in aws)

    policy = json.loads(bus.policy) if bus.policy else {"Statement": []}
    statements = [s for s in policy["Statement"] if matches(s)]
    if any(s.get("Effect") == "Deny" for s in statements):
        return False
    return any(s.get("Effect", "Allow") == "Allow" for s in statements)


def _send_to_targets(self: Any, original_event: Any, transform_input: bool = True) -> None:
    sender = getattr(_forwarded, "account", None)
    if sender is not None:  # this bus received the event from another account
        original_event["account"] = sender
    if not self.event_pattern.matches_event(original_event):
        return
    buses = [t for t in self.targets
             if _parse_arn(t["Arn"]).service == "events" and _parse_arn(t["Arn"]).resource_type == "event-bus"]
    if len(buses) < len(self.targets):
        rest = _copy.copy(self)
        rest.targets = [t for t in self.targets if t not in buses]
        _prev_send_to_targets(rest, original_event, transform_input)
    origin = original_event.get("account") or self.account_id
    for target in buses:
        arn = _parse_arn(target["Arn"])
        if arn.account != self.account_id and origin != self.account_id:
            continue  # received from another account: not sent on to a third
        backend = _events_models.events_backends[arn.account][arn.region]
        try:
            bus = backend.describe_event_bus(arn.resource_id)
        except Exception:
            continue  # no such bus: the sender's rule fails to invoke its target
        if arn.account != origin and not _bus_admits(bus, origin):
            continue
        if transform_input:
            input_transformer = target.get("InputTransformer", {})
            event = EventTemplateParser.parse(
                input_template=input_transformer.get("InputTemplate"),
                input_paths_map=input_transformer.get("InputPathsMap", {}),
                event=original_event,
            )
        else:
            event = dict(original_event)
        entry = {"Source": event["source"], "DetailType": event["detail-type"],
                 "Detail": json.dumps(event["detail"]), "EventBusName": arn.resource_id,
                 "Resources": original_event.get("resources", []),
                 "Time": original_event.get("time")}
        previous = getattr(_forwarded, "account", None)
        _forwarded.account = origin if arn.account != origin else None
        try:
            backend.put_events([{k: v for k, v in entry.items() if v is not None}])
        finally:
            _forwarded.account = previous


# The event as a target gets it (no InputTransformer): moto's template, plus "account".
_EVENT_TEMPLATE_WITH_ACCOUNT = EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE.replace(
    '"version": "0",', '"version": "0", "account": "<account>",')

# Cross-account sharing (k)
# --------------------------------------------------------------------------
# moto serves several accounts, each with its own backends (ec2_backends[account][region]);
# a request's account comes from MOTO_ACCOUNT_ID, else the x-moto-account-id header, else an
# access key IAM knows (IAM CreateAccessKey, or the temporary key of an STS AssumeRole: the
# account of the role's ARN), else 123456789012. Test-only convention added here: an access
# key id of 12 digits is that account (moto read only 20-character keys: any other was the
# default account), so a process is put in an account by its environment alone, and still
# after /moto-api/reset (which forgets the keys AssumeRole gave, silently turning them into
# the default account).
#
# Before: an account saw only its own backends. ModifyImageAttribute / ModifySnapshotAttribute
# recorded a launch or create-volume permission, and nothing read it: the account it was
# given to saw nothing (DescribeImages ExecutableUsers=self / Owners=[owner] / ImageIds: empty
# or InvalidAMIID.NotFound; DescribeSnapshots ignored RestorableByUserIds and showed only the
# caller's own) and could copy nothing (CopyImage / CopySnapshot looked only in the caller's
# own account). ModifySnapshotAttribute ignored the CreateVolumePermission={Add|Remove}
# structure (only OperationType + UserIds worked; the structured call was a silent no-op).
# Nothing refused sharing a snapshot, or an AMI whose snapshots are, encrypted with the AWS
# managed key aws/ebs (moto made that key a KeyManager CUSTOMER key). Another account's
# ModifyImageAttribute answered InvalidAMIID.NotFound, DescribeImageAttribute of an image not
# in the caller's own region backend answered HTTP 500 (KeyError). ExecutableUsers returned
# public images whatever the users named.
# After, as documented:
# - DescribeImages (API reference): the images available to the caller are its own, public
#   ones and those with an explicit launch permission for it; ExecutableUsers "self" (or the
#   caller's id): those shared with it, another id: those shared with that id, "all": public
#   ones; Owners scopes any of these. DescribeSnapshots (API reference): no option -> every
#   snapshot the caller has create volume permission for (own, explicitly shared, public);
#   RestorableByUserIds "self": own or explicitly shared, an account id: the caller's own
#   shared with it, "all": public; a snapshot id the caller has no access to "is not included
#   in the returned results" (one that does not exist: InvalidSnapshot.NotFound). Left as
#   moto has it: the snapshot moto makes for each image loaded from MOTO_AMIS_PATH (owned by
#   the image's owner, in every account) is in every account's answer without options.
# - User tags are not shared (EC2 guide, "Share an AMI with specific AWS accounts"; "Tag your
#   resources": tags put on a shared resource are available only to the account that put
#   them): another account sees a shared image or snapshot with no tags but its own.
# - Sharing (EBS guide "Share an Amazon EBS snapshot"; EC2 guide "Share an AMI"): only the
#   owner shares; a snapshot encrypted with the AWS managed key can't be shared, nor an AMI
#   backed by one. The errors are those EC2 answers (logged by hashicorp/packer#7499 and in
#   DataDog/stratus-red-team v2/internal/utils/aws_utils.go): ModifySnapshotAttribute
#   OperationNotPermitted "Encrypted snapshots with EBS default key cannot be shared",
#   ModifyImageAttribute InvalidParameter "Snapshots encrypted with the AWS Managed CMK can't
#   be shared. Specify another snapshot." Refused: the key aws/ebs (KeyManager AWS), by
#   ARN, id or alias; an account default set to a customer managed key by
#   ModifyEbsDefaultKmsKeyId is shared. A customer managed key is shared: whether its key
#   policy lets the other account use it is that account's problem and is not checked here
#   (moto models no key policies), neither when sharing nor when copying.
# - Copying (EC2 guide "Copy an AMI", cross-account copying; EBS guide "Copy a snapshot"): an
#   AMI shared with the caller is copied when each of its snapshots is shared too, else
#   InvalidRequest "You do not have permission to access the storage of this ami" (as EC2
#   answers, logged by its users); a snapshot shared with the caller is copied. The copy is
#   the caller's, in the caller's region; encrypted source snapshots the caller does not own
#   are encrypted with the caller's default EBS key unless KmsKeyId is given ("an encrypted
#   snapshot that you do not own ... is copied to a snapshot that is encrypted by your AWS
#   account's default KMS key"); CopyImageTags copies only the tags the caller put on the
#   source ("user-defined tags that are attached by other AWS accounts will not be copied").
# Chosen here, not documented: an image or snapshot that exists but is not shared with the
# caller answers as one that does not exist (InvalidAMIID.NotFound / InvalidSnapshot.NotFound;
# DescribeSnapshots by id leaves it out, as documented). A modify or describe of the
# launchPermission / createVolumePermission attribute by an account that sees but does not own
# the resource answers AuthFailure "Not authorized for image:ami-..." (EC2's observed answer
# to DescribeImageAttribute by a non-owner, cloudquery/cloudquery#9406; the EC2 guide says
# only that such accounts "can't delete, share, or modify it") and likewise for a snapshot.
# Not modelled: deleting, deregistering, tagging, launching from or creating a volume from a
# resource of another account (each answers as for a resource that does not exist).

from moto.core.responses import BaseResponse  # noqa: E402

_ACCOUNT_ID_RE = re.compile(r"\d{12}")
_CREDENTIAL_RE = re.compile(r"Credential=([^/,\s]+)/")
AWS_MANAGED_EBS_ALIAS = "alias/aws/ebs"


def _get_current_account(self: Any) -> str:
    """MOTO_ACCOUNT_ID and x-moto-account-id first, as moto; then a 12-digit access key id is
    that account; then moto's own lookup (keys IAM knows, else the default account)."""
    if "MOTO_ACCOUNT_ID" not in os.environ and "x-moto-account-id" not in self.headers:
        # moto's own reading of the key (get_access_key) knows only 20-character keys
        signed = _CREDENTIAL_RE.search(self.headers.get("Authorization") or "")
        if signed and _ACCOUNT_ID_RE.fullmatch(signed.group(1)):
            return signed.group(1)
    return _orig_get_current_account(self)


_orig_get_current_account = BaseResponse.get_current_account


def _create_default_encryption_key(self: Any) -> str:
    """moto's aws/ebs key, as AWS's: KeyManager AWS (moto: CUSTOMER)."""
    from moto.kms import kms_backends

    arn = _orig_create_default_encryption_key(self)
    kms_backends[self.account_id][self.region_name].describe_key(arn).key_manager = "AWS"
    return arn


_orig_create_default_encryption_key = EBSBackend._create_default_encryption_key


def _is_aws_managed_ebs_key(backend: Any, key_id: str | None) -> bool:
    """Whether `key_id` (key id, key ARN, alias or alias ARN) names the AWS managed EBS key of
    the key's account and region (the backend's when not an ARN)."""
    from moto.kms import kms_backends

    if not key_id:
        return False
    if key_id == AWS_MANAGED_EBS_ALIAS or key_id.endswith(":" + AWS_MANAGED_EBS_ALIAS):
        return True
    account, region = backend.account_id, backend.region_name
    parts = key_id.split(":")
    if key_id.startswith("arn:") and len(parts) > 5:
        region, account = parts[3], parts[4]
    try:
        return kms_backends[account][region].describe_key(key_id).key_manager == "AWS"
    except Exception:  # a key moto does not know (given by id to CopySnapshot, say): not aws/ebs
        return False


def _other_accounts(backend: Any) -> list[Any]:
    """The EC2 backends of the other accounts in the backend's region, those that exist."""
    from moto.ec2.models import ec2_backends

    out = []
    for account, per_region in list(dict.items(ec2_backends)):
        other = dict.get(per_region, backend.region_name)
        if account != backend.account_id and other is not None:
            out.append(other)
    return out


def _viewed(resource: Any, viewer: Any) -> Any:
    """A resource of another account as `viewer`'s account sees it: the same resource with the
    viewer's tags on it, none of the owner's."""
    import copy

    view = copy.copy(resource)
    view.ec2_backend = viewer
    return view


def _launchable_by(ami: Ami, account: str) -> bool:
    return ami.is_public or {"UserId": account} in ami.launch_permissions


def _restorable_by(snapshot: Snapshot, account: str) -> bool:
    return "all" in snapshot.create_volume_permission_groups or account in snapshot.create_volume_permission_userids


def _foreign_images(backend: Any) -> list[tuple[Ami, Any]]:
    """(image, owner's backend) for each image of another account in the region that the
    backend's account may launch. Images loaded from MOTO_AMIS_PATH are in every account's
    backend, owned by none of them: each account sees its own copy of those."""
    return [(ami, other) for other in _other_accounts(backend) for ami in list(other.amis.values())
            if ami.owner_id == other.account_id and _launchable_by(ami, backend.account_id)]


def _foreign_snapshots(backend: Any) -> list[tuple[Snapshot, Any]]:
    return [(snap, other) for other in _other_accounts(backend) for snap in list(other.snapshots.values())
            if snap.owner_id == other.account_id and _restorable_by(snap, backend.account_id)]


def _not_authorized(kind: str, resource_id: str) -> EC2ClientError:
    return _error("AuthFailure", f"Not authorized for {kind}:{resource_id}")


def _share_describe_images(self: Any, ami_ids: list[str] | None = None, filters: Any = None,
                           exec_users: list[str] | None = None, owners: list[str] | None = None) -> list[Ami]:
    from moto.ec2.exceptions import MalformedAMIIdError

    me = self.account_id
    images = list(self.amis.copy().values()) + [_viewed(a, self) for a, _ in _foreign_images(self)]
    if ami_ids:
        malformed = [i for i in ami_ids if not i.startswith("ami-")]
        if malformed:
            raise MalformedAMIIdError(malformed)
        images = [a for a in images if a.id in ami_ids]
        if not images and not [i for i in ami_ids if i in self.deleted_amis]:
            raise InvalidAMIIdError(ami_ids)
        return images  # the response applies the filters (patch f)
    if exec_users:
        users = {me if u == "self" else u for u in exec_users}
        images = [a for a in images
                  if ("all" in users and a.is_public)
                  or any(p.get("UserId") in users for p in a.launch_permissions)]
    if owners:
        wanted = {me if o == "self" else o for o in owners}
        images = [a for a in images if a.owner_id in wanted or a.owner_alias in wanted]
    return ec2_utils.generic_filter(filters, images) if filters else images


def _share_describe_snapshots_response(self: Any) -> ActionResult:
    """DescribeSnapshots with what the caller may restore from; supersedes patch e's answer
    (OwnerIds, paging, the message of InvalidSnapshot.NotFound stay as it made them)."""
    self.error_on_dryrun()
    size, after = _paging_params(self, "DescribeSnapshots", "SnapshotIds", "snapshotSet", 1000)
    filters = self._filters_from_querystring()
    snapshot_ids = self._get_param("SnapshotIds", [])
    backend = self.ec2_backend
    me = backend.account_id
    foreign = _foreign_snapshots(backend)
    snapshots = list(backend.snapshots.values()) + [_viewed(s, backend) for s, _ in foreign]
    if snapshot_ids:
        everyone = {sid for other in _other_accounts(backend) for sid in list(other.snapshots)}
        for sid in snapshot_ids:
            if sid not in backend.snapshots and sid not in everyone:
                raise _snapshot_not_found(sid)
        snapshots = [s for s in snapshots if s.id in snapshot_ids]  # not shared: left out
    owner_ids = self._get_param("OwnerIds", [])
    if owner_ids:
        owners = {me if o == "self" else o for o in owner_ids}
        snapshots = [s for s in snapshots if s.owner_id in owners]
    restorable_by = self._get_param("RestorableByUserIds", [])
    if restorable_by:
        users = {me if u == "self" else u for u in restorable_by}
        snapshots = [s for s in snapshots
                     if ("all" in users and "all" in s.create_volume_permission_groups)
                     or (me in users and s.owner_id == me)
                     or (s.owner_id == me and users & s.create_volume_permission_userids)
                     or (me in users and me in s.create_volume_permission_userids)]
    if filters:
        snapshots = ec2_utils.generic_filter(filters, snapshots)
    page, token = _paginate(snapshots, "DescribeSnapshots", size, after)
    return ActionResult({"Snapshots": page, "NextToken": token})


def _own_image(resp: Any, ami_id: str) -> Ami:
    """The caller's own image `ami_id`; AuthFailure for one it sees but does not own,
    InvalidAMIID.NotFound for one it does not see."""
    backend = resp.ec2_backend
    ami = backend.amis.get(ami_id)
    if ami is not None and ami.owner_id == backend.account_id:
        return ami
    if ami is not None or any(a.id == ami_id for a, _ in _foreign_images(backend)):
        raise _not_authorized("image", ami_id)
    raise InvalidAMIIdError(ami_id)


def _own_snapshot(resp: Any, snapshot_id: str) -> Snapshot:
    backend = resp.ec2_backend
    snap = backend.snapshots.get(snapshot_id)
    if snap is not None and snap.owner_id == backend.account_id:
        return snap
    if snap is not None or any(s.id == snapshot_id for s, _ in _foreign_snapshots(backend)):
        raise _not_authorized("snapshot", snapshot_id)
    raise _snapshot_not_found(snapshot_id)


def _share_describe_image_attribute_response(self: Any) -> ActionResult:
    _own_image(self, self._get_param("ImageId"))
    return _orig_describe_image_attribute_response(self)


def _share_modify_image_attribute_response(self: Any) -> ActionResult:
    ami = _own_image(self, self._get_param("ImageId"))
    adds = list((self._get_param("LaunchPermission") or {}).get("Add") or [])
    if self._get_param("OperationType") == "add":
        adds += self._get_param("UserIds", []) + self._get_param("UserGroups", [])
        adds += self._get_param("OrganizationArns", []) + self._get_param("OrganizationalUnitArns", [])
    if adds:
        backend = self.ec2_backend
        for sid in _listed_snapshots(ami):
            snap = backend.snapshots.get(sid)
            if snap is not None and snap.encrypted and _is_aws_managed_ebs_key(backend, snap.kms_key_id):
                raise _error("InvalidParameter",
                             "Snapshots encrypted with the AWS Managed CMK can't be shared. Specify another snapshot.")
    return _orig_modify_image_attribute_response(self)


def _share_describe_snapshot_attribute_response(self: Any) -> ActionResult:
    _own_snapshot(self, self._get_param("SnapshotId"))
    return _orig_describe_snapshot_attribute_response(self)


def _share_modify_snapshot_attribute_response(self: Any) -> ActionResult:
    snapshot = _own_snapshot(self, self._get_param("SnapshotId"))
    changes = self._get_param("CreateVolumePermission") or {}
    add = [p for p in changes.get("Add") or []]
    remove = [p for p in changes.get("Remove") or []]
    listed = ([{"UserId": u} for u in self._get_param("UserIds", [])]
              + [{"Group": g} for g in self._get_param("GroupNames", [])])
    operation = self._get_param("OperationType")
    if operation == "add":
        add += listed
    elif operation == "remove":
        remove += listed
    self.error_on_dryrun()
    backend = self.ec2_backend
    if add and snapshot.encrypted and _is_aws_managed_ebs_key(backend, snapshot.kms_key_id):
        raise _error("OperationNotPermitted", "Encrypted snapshots with EBS default key cannot be shared")
    for changed, apply in ((add, backend.add_create_volume_permission),
                           (remove, backend.remove_create_volume_permission)):
        users = [p["UserId"] for p in changed if p.get("UserId")]
        groups = [p["Group"] for p in changed if p.get("Group")]
        if users or groups:
            apply(snapshot.id, user_ids=users, groups=groups)
    return EmptyResult()


_orig_describe_image_attribute_response = AmisResponse.describe_image_attribute
_orig_modify_image_attribute_response = AmisResponse.modify_image_attribute
_orig_describe_snapshot_attribute_response = ElasticBlockStore.describe_snapshot_attribute


def _copy_source_image(backend: Any, source_backend: Any, image_id: str) -> tuple[Ami, Any, bool]:
    """CopyImage's source as the caller sees it: (image, its owner's backend, owned). An image
    of another account must be shared with the caller, and so must each of its snapshots."""
    source = source_backend.amis.get(image_id)
    if source is not None:
        return source, source_backend, True
    for ami, owner in _foreign_images(source_backend):
        if ami.id == image_id:
            for sid in _listed_snapshots(ami):
                snap = owner.snapshots.get(sid)
                if snap is None or not _restorable_by(snap, backend.account_id):
                    raise _error("InvalidRequest", "You do not have permission to access the storage of this ami")
            return _viewed(ami, source_backend), owner, False
    raise InvalidAMIIdError(image_id)


def _copy_source_snapshot(source_backend: Any, snapshot_id: str) -> tuple[Snapshot, bool]:
    """CopySnapshot's source: (snapshot, owned); one of another account must be shared with the caller."""
    source = source_backend.snapshots.get(snapshot_id)
    if source is not None:
        return source, True
    for snap, _owner in _foreign_snapshots(source_backend):
        if snap.id == snapshot_id:
            return snap, False
    raise _snapshot_not_found(snapshot_id)


# --------------------------------------------------------------------------
# KMS (m): what the DR pre-flight (ec2-backup check-dr) reads
# --------------------------------------------------------------------------
# Before: CreateKey without KeyUsage made a key with no KeyUsage at all (DescribeKey left it
# out). After, as the KMS API reference documents CreateKey ("KeyUsage ... Default:
# ENCRYPT_DECRYPT"): ENCRYPT_DECRYPT. (KeySpec already defaulted to SYMMETRIC_DEFAULT.)

def _kms_create_key(self: Any, policy: str | None, key_usage: str | None, key_spec: str | None,
                    *args: Any, **kwargs: Any) -> Any:
    return _orig_kms_create_key(self, policy, key_usage or "ENCRYPT_DECRYPT", key_spec, *args, **kwargs)


from moto.kms.models import KmsBackend  # noqa: E402

_orig_kms_create_key = KmsBackend.create_key


# --------------------------------------------------------------------------
# SQS
# --------------------------------------------------------------------------

# How often a long poll looks again for a deliverable message.
LONG_POLL_RECHECK_SECONDS = 0.05


def _sqs_receive_message(self: SQSBackend, queue_name: str, count: int, wait_seconds_timeout: int,
                         visibility_timeout: int, message_attribute_names: list[str] | None = None) -> list[Any]:
    """moto's long poll had two faults, both met with FIFO queues. It waited with
    Condition.wait_for(lambda: self.messages), which any visible message ends at once, also one
    it cannot deliver because its message group has a message in flight: such a poll spun a CPU
    until WaitTimeSeconds ran out. And it decided once, at the start, which groups were in
    flight: a group whose message was deleted during the poll stayed blocked until the poll
    ended. Here the long poll is a series of moto's own short polls (each deciding afresh), a
    short wait apart, ending at the first that delivers: as SQS, which answers as soon as a
    message can be delivered (new, or deliverable by time: a delay or visibility timeout run
    out, its group's message deleted)."""
    queue = self.get_queue(queue_name)
    deadline = time.monotonic() + int(wait_seconds_timeout or 0)
    while True:
        messages = _orig_sqs_receive_message(self, queue_name, count, 0, visibility_timeout,
                                             message_attribute_names)
        remaining = deadline - time.monotonic()
        if messages or remaining <= 0:
            return messages
        with queue._messages_lock:  # a message sent meanwhile ends the wait early
            queue._messages_lock.wait(min(remaining, LONG_POLL_RECHECK_SECONDS))


_orig_sqs_receive_message = SQSBackend.receive_message


# SQS gives every message of a FIFO queue a SequenceNumber, increasing (not consecutive)
# within its group; moto gave a random one, and only with an explicit MessageDeduplicationId.
_fifo_sequence = itertools.count(10**19)  # 20 digits, as SQS's


def _sqs_add_message(self: SqsQueue, message: Any) -> None:
    if self.fifo_queue and not getattr(message, "sequenced", False):
        # Numbered once, when sent: a message moved to the dead-letter queue keeps its number.
        message.sequence_number = str(next(_fifo_sequence))
        message.sequenced = True
    _orig_sqs_add_message(self, message)


_orig_sqs_add_message = SqsQueue.add_message


# --------------------------------------------------------------------------
# Speed (i): a receive from a long queue
# --------------------------------------------------------------------------
# Before: ReceiveMessage checked each message's retention by computing all the queue's
# attributes (GetQueueAttributes' answer, which counts the visible, in-flight and delayed
# messages, each a pass over the queue): a receive cost the queue's length squared, seconds a
# call with 5,000 messages queued, and an SQS consumer at scale measured moto instead of
# itself. After: the queue's retention period itself, the same value (SQS holds messages up to
# it; a message older is dropped, not delivered).

def _sqs_message_retained(self: SQSBackend, queue_name: str, message: Any) -> bool:
    from moto.core.utils import unix_time

    retention = int(self.get_queue(queue_name).message_retention_period)
    return retention + message.sent_timestamp / 1000 > unix_time()


# --------------------------------------------------------------------------
# Speed (h): a resource's own tags
# --------------------------------------------------------------------------
# Before: a resource's tags (read for every tag filter and every resource a describe
# returns) were found by DescribeTags over every tag of the region, a regular expression per
# tag: a describe of N resources cost N times all the region's tags, minutes at 10,000
# instances. After: the resource's own entry of the tag table, the same list in the same order.


def _get_tags(self: Any) -> list[dict[str, str]]:
    if not self.id:
        return []
    resource_type = ec2_utils.EC2_PREFIX_TO_RESOURCE.get(ec2_utils.get_prefix(self.id), "")
    return [{"resource_id": self.id, "key": k, "value": v, "resource_type": resource_type}
            for k, v in dict(self.ec2_backend.tags.get(self.id, {})).items()]


def apply_patches() -> None:
    TaggedEC2Resource.get_tags = _get_tags
    AmiBackend.create_image = _create_image
    AmiBackend.copy_image = _copy_image
    Ami.block_device_mappings = property(_ami_block_device_mappings)
    Ami.get_filter_value = _ami_get_filter_value
    EBSBackend.copy_snapshot = _copy_snapshot
    EBSBackend.create_snapshot = _create_snapshot
    EBSBackend.delete_snapshot = _delete_snapshot
    ec2_utils.is_filter_matching = _is_filter_matching
    AmisResponse.create_image = _create_image_response
    AmisResponse.copy_image = _copy_image_response
    AmisResponse.describe_images = _describe_images_response
    AmisResponse.deregister_image = _deregister_image_response
    AmisResponse.register_image = _register_image_response
    ElasticBlockStore.copy_snapshot = _copy_snapshot_response
    ElasticBlockStore.create_snapshot = _create_snapshot_response
    ElasticBlockStore.describe_snapshots = _describe_snapshots_response
    ElasticBlockStore.describe_volumes = _describe_volumes_response
    ElasticBlockStore.create_volume = _create_volume_response
    ElasticBlockStore.attach_volume = _attach_volume_response
    InstanceResponse.describe_instances = _describe_instances_response
    TagResponse.create_tags = _create_tags_response
    InstanceResponse.run_instances = _run_instances_response
    InstanceResponse.describe_instance_status = _describe_instance_status_response
    InstanceBackend.run_instances = _run_instances
    Instance.setup_defaults = _setup_defaults
    InstanceResponse._parse_block_device_mapping = _parse_block_device_mapping
    InstanceResponse._validate_block_device_mapping = staticmethod(_no_size_check)
    Instance.instance_status = property(_status_check)
    Instance.system_status = property(_status_check)
    Volume.status = property(_volume_status)
    NetworkInterface.association = property(_eni_association)
    SQSBackend.receive_message = _sqs_receive_message
    SQSBackend.is_message_valid_based_on_retention_period = _sqs_message_retained
    SqsQueue.add_message = _sqs_add_message
    # (l) snapshot locks, image deregistration protection, events across accounts
    EBSBackend.__init__ = _ebs_backend_init
    ElasticBlockStore.lock_snapshot = _lock_snapshot_response
    ElasticBlockStore.unlock_snapshot = _unlock_snapshot_response
    ElasticBlockStore.describe_locked_snapshots = _describe_locked_snapshots_response
    Ami.deregistration_protection = property(_deregistration_protection)
    AmisResponse.enable_image_deregistration_protection = _enable_image_deregistration_protection_response
    AmisResponse.disable_image_deregistration_protection = _disable_image_deregistration_protection_response
    AmisResponse.deregister_image = _deregister_image_unless_protected(AmisResponse.deregister_image)
    _events_models.Rule.send_to_targets = _send_to_targets
    EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE = _EVENT_TEMPLATE_WITH_ACCOUNT

    # (k) cross-account sharing
    BaseResponse.get_current_account = _get_current_account
    EBSBackend._create_default_encryption_key = _create_default_encryption_key
    AmiBackend.describe_images = _share_describe_images
    AmisResponse.describe_image_attribute = _share_describe_image_attribute_response
    AmisResponse.modify_image_attribute = _share_modify_image_attribute_response
    ElasticBlockStore.describe_snapshots = _share_describe_snapshots_response
    ElasticBlockStore.describe_snapshot_attribute = _share_describe_snapshot_attribute_response
    ElasticBlockStore.modify_snapshot_attribute = _share_modify_snapshot_attribute_response

    # (m) KMS
    KmsBackend.create_key = _kms_create_key


apply_patches()


# --------------------------------------------------------------------------
# Test-only endpoints: call counting and fault injection
# --------------------------------------------------------------------------

# moto stamps what it creates with the machine's clock. The functions read those stamps (a
# backup was made at its P:created-at tag, unless AWS's own record is earlier), so a test that
# makes backups "at" instants of its own timeline sets the clock they are stamped with too;
# otherwise it would pass only while the machine's clock is later than that timeline.
_clock: dict[str, Any] = {"now": None}


def _ec2_utcnow() -> Any:
    return _clock["now"] or _machine_utcnow()


def _install_clock() -> None:
    from moto.ec2.models import amis, elastic_block_store, instances

    for module in (amis, elastic_block_store, instances):
        module.utcnow = _ec2_utcnow


_install_clock()


def _set_clock(spec: Any) -> None:
    """{"now": RFC 3339 or null}; raises ValueError/KeyError/TypeError on a bad spec."""
    import datetime

    now = spec["now"]
    if now is None:
        _clock["now"] = None
        return
    at = datetime.datetime.fromisoformat(str(now).replace("Z", "+00:00"))
    if at.tzinfo is None:
        raise ValueError(f"{now!r} has no time zone")
    # moto's own stamps are naive UTC
    _clock["now"] = at.astimezone(datetime.timezone.utc).replace(tzinfo=None)


# EC2's throttling: a token bucket per action, per account and region (the EC2 API throttling
# guide): (burst, refill per second). A call past an empty bucket answers RequestLimitExceeded
# with HTTP 503, as EC2 does. Actions not listed are not throttled here.
EC2_BUCKETS: dict[str, tuple[float, float]] = {
    "CreateImage": (50, 5),
    "CopySnapshot": (50, 5),
    "CreateSnapshot": (100, 5),
    "CreateSnapshots": (100, 5),
    "CopyImage": (100, 1),
    "DeregisterImage": (100, 5),
    "DeleteSnapshot": (100, 5),
    "CreateTags": (100, 10),
    "DescribeInstances": (100, 20),
    "DescribeVolumes": (100, 20),
    "DescribeImages": (100, 20),
    "DescribeSnapshots": (100, 20),
}


class Buckets:
    """The buckets of every region and action; `table` is {action: (burst, rate)}."""

    def __init__(self, table: dict[str, tuple[float, float]], clock: Any = time.monotonic):
        self.table = dict(table)
        self.clock = clock
        self.state: dict[tuple[str, str], tuple[float, float]] = {}
        self.throttled: dict[str, dict[str, int]] = {}

    def take(self, region: str, action: str) -> bool:
        """Takes a token; False (and counted) when the bucket is empty."""
        limit = self.table.get(action)
        if limit is None:
            return True
        burst, rate = limit
        now = self.clock()
        tokens, last = self.state.get((region, action), (burst, now))
        tokens = min(burst, tokens + (now - last) * rate)
        if tokens < 1:
            self.state[(region, action)] = (tokens, now)
            per_region = self.throttled.setdefault(region, {})
            per_region[action] = per_region.get(action, 0) + 1
            return False
        self.state[(region, action)] = (tokens - 1, now)
        return True


def bucket_table(spec: Any) -> dict[str, tuple[float, float]]:
    """{"scale": F}: EC2's figures, burst and rate times F; {"buckets": {"CreateImage":
    {"burst": 5, "rate": 2}, ...}}: exactly these; {"buckets": {}}: no throttling."""
    if "scale" in spec:
        f = float(spec["scale"])
        if not f > 0:
            raise ValueError("scale must be above 0")
        return {a: (max(1.0, b * f), r * f) for a, (b, r) in EC2_BUCKETS.items()}
    table = {}
    for action, limit in dict(spec["buckets"]).items():
        burst, rate = float(limit["burst"]), float(limit["rate"])
        if burst < 1 or rate <= 0:
            raise ValueError(f"{action}: burst must be 1 or more and rate above 0")
        table[str(action)] = (burst, rate)
    return table


_SCOPE_RE = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")
UNCOUNTED_ACCESS_KEY = "uncounted"


class TestHooks:
    """WSGI middleware in front of moto's app."""

    def __init__(self, app: Any):
        self.app = app
        self.lock = threading.Lock()
        self.calls: dict[str, dict[str, int]] = {}
        self.faults: list[dict[str, Any]] = []
        self.buckets = Buckets(EC2_BUCKETS)

    def clear(self) -> None:
        with self.lock:
            self.calls = {}
            self.faults = []
            # Full buckets again, with the figures set last (a test that changes them sets
            # them back; a reset is between tests, not a change of EC2).
            self.buckets = Buckets(self.buckets.table)
            _clock["now"] = None
        _reset_zone_states()
        _restore_holds.clear()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path.startswith("/_test/"):
            return self._test_endpoint(method, path, environ, start_response)
        if path.rstrip("/") == "/moto-api/reset" and method == "POST":
            self.clear()
            return self.app(environ, start_response)

        scope = _SCOPE_RE.search(environ.get("HTTP_AUTHORIZATION", ""))
        if scope and scope.group(3) == "ec2" and scope.group(1) != UNCOUNTED_ACCESS_KEY:
            region = scope.group(2)
            body = self._read_body(environ)
            params = parse_qs(body.decode("utf-8", "replace"))
            action = (params.get("Action") or parse_qs(environ.get("QUERY_STRING", "")).get("Action") or [None])[0]
            if action:
                fault = self._count_and_match(region, action)
                if fault is not None:
                    return self._fault_response(fault, start_response)
                with self.lock:
                    allowed = self.buckets.take(region, action)
                if not allowed:
                    return self._fault_response(
                        {"code": "RequestLimitExceeded", "message": "Request limit exceeded.", "status": 503},
                        start_response)
        return self.app(environ, start_response)

    @staticmethod
    def _read_body(environ: dict[str, Any]) -> bytes:
        """Read the request body and put an equivalent stream back for moto."""
        stream = environ["wsgi.input"]
        length = environ.get("CONTENT_LENGTH") or ""
        if length.isdigit():
            body = stream.read(int(length))
        elif environ.get("wsgi.input_terminated"):
            body = stream.read()
        else:
            body = b""
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return body

    def _count_and_match(self, region: str, action: str) -> dict[str, Any] | None:
        with self.lock:
            per_region = self.calls.setdefault(region, {})
            per_region[action] = per_region.get(action, 0) + 1
            for fault in self.faults:
                if fault["action"] != action or fault.get("region") not in (None, region):
                    continue
                if fault.get("count") is not None:
                    fault["count"] -= 1
                    if fault["count"] <= 0:
                        self.faults.remove(fault)
                return dict(fault)
        return None

    @staticmethod
    def _fault_response(fault: dict[str, Any], start_response: Any) -> list[bytes]:
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f"<Response><Errors><Error><Code>{xml_escape(fault['code'])}</Code>"
            f"<Message>{xml_escape(fault.get('message') or '')}</Message></Error></Errors>"
            f"<RequestID>{uuid.uuid4()}</RequestID></Response>"
        ).encode()
        status = int(fault.get("status") or 400)
        start_response(f"{status} {_REASONS.get(status, 'Error')}",
                       [("Content-Type", "text/xml;charset=UTF-8"),
                        ("Content-Length", str(len(body)))])
        return [body]

    def _test_endpoint(self, method: str, path: str, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        path = path.rstrip("/")
        if path == "/_test/calls" and method == "GET":
            with self.lock:
                return _json(start_response, 200, self.calls)
        if path == "/_test/calls/reset" and method == "POST":
            with self.lock:
                self.calls = {}
            return _json(start_response, 200, {"ok": True})
        if path == "/_test/faults":
            if method == "GET":
                with self.lock:
                    return _json(start_response, 200, self.faults)
            if method == "DELETE":
                with self.lock:
                    self.faults = []
                return _json(start_response, 200, {"ok": True})
            if method == "POST":
                try:
                    spec = json.loads(self._read_body(environ) or b"{}")
                    fault = {
                        "action": str(spec["action"]),
                        "region": spec.get("region"),
                        "code": str(spec["code"]),
                        "message": str(spec.get("message") or ""),
                        "status": int(spec.get("status") or 400),
                        "count": None if spec.get("count") is None else int(spec["count"]),
                    }
                except (ValueError, KeyError, TypeError) as err:
                    return _json(start_response, 400, {"error": f"bad fault spec: {err!r}"})
                with self.lock:
                    self.faults.append(fault)
                return _json(start_response, 200, {"ok": True, "fault": fault})
        if path == "/_test/buckets":
            if method == "POST":
                try:
                    table = bucket_table(json.loads(self._read_body(environ) or b"{}"))
                except (ValueError, KeyError, TypeError, AttributeError) as err:
                    return _json(start_response, 400, {"error": f"bad buckets spec: {err!r}"})
                with self.lock:
                    self.buckets = Buckets(table)
            if method in ("GET", "POST"):
                with self.lock:
                    return _json(start_response, 200, {
                        "buckets": {a: {"burst": b, "rate": r} for a, (b, r) in self.buckets.table.items()},
                        "throttled": self.buckets.throttled,
                    })
        if path == "/_test/clock" and method == "POST":
            try:
                _set_clock(json.loads(self._read_body(environ) or b"{}"))
            except (ValueError, KeyError, TypeError) as err:
                return _json(start_response, 400, {"error": f"bad clock spec: {err!r}"})
            now = _clock["now"]
            return _json(start_response, 200, {"ok": True, "now": None if now is None else now.isoformat() + "Z"})
        if path == "/_test/image-state" and method == "POST":
            # AWS images go pending -> available or failed on their own; moto's are available at
            # once. This sets the state (and reason) so a test can have a failed AMI.
            try:
                spec = json.loads(self._read_body(environ) or b"{}")
                from moto.core import DEFAULT_ACCOUNT_ID
                from moto.ec2.models import ec2_backends
                image = ec2_backends[DEFAULT_ACCOUNT_ID][spec["region"]].amis[spec["image_id"]]
            except (ValueError, KeyError, TypeError) as err:
                return _json(start_response, 400, {"error": f"bad image-state spec or no such image: {err!r}"})
            image.state = str(spec["state"])
            if spec.get("reason"):
                image.state_reason = {"Code": "Client.Failed", "Message": str(spec["reason"])}
            return _json(start_response, 200, {"ok": True, "image_id": spec["image_id"], "state": image.state})
        if path == "/_test/zone-state" and method == "POST":
            # AWS reports a zone impaired or unavailable during an outage; moto's never are.
            try:
                spec = json.loads(self._read_body(environ) or b"{}")
                state = str(spec["state"])
                if state not in ("available", "information", "impaired", "unavailable", "constrained"):
                    raise ValueError(f"state {state!r} is not one DescribeAvailabilityZones reports")
                _set_zone_state(str(spec["region"]), str(spec["zone"]), state)
            except (ValueError, KeyError, TypeError) as err:
                return _json(start_response, 400, {"error": f"bad zone-state spec or no such zone: {err!r}"})
            return _json(start_response, 200, {"ok": True, "zone": spec["zone"], "state": state})
        if path == "/_test/restore-hold":
            # AWS restores take minutes and can fail; moto's are ok / available at once.
            if method == "POST":
                try:
                    _set_restore_hold(json.loads(self._read_body(environ) or b"{}"))
                except (ValueError, KeyError, TypeError, AttributeError) as err:
                    return _json(start_response, 400, {"error": f"bad restore-hold spec: {err!r}"})
            if method in ("GET", "POST"):
                return _json(start_response, 200, {"ok": True, "holds": [
                    {"region": r, "kind": k, "status": v} for (r, k), v in sorted(_restore_holds.items())]})
        return _json(start_response, 404, {"error": f"no test endpoint {method} {path}"})


_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            409: "Conflict", 429: "Too Many Requests", 500: "Internal Server Error",
            503: "Service Unavailable"}


def _json(start_response: Any, status: int, payload: Any) -> list[bytes]:
    body = json.dumps(payload).encode()
    start_response(f"{status} {_REASONS.get(status, 'OK')}",
                   [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def build_app() -> TestHooks:
    """moto's full multi-service server app (as `moto_server` builds it), wrapped."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    return TestHooks(DomainDispatcherApplication(create_backend_app))


def _shutdown_at_eof(server: Any) -> None:
    """Reads standard input to its end, then stops the server. The end comes when every
    holder of the pipe's write end has closed it: the parent exited, even by SIGKILL."""
    if sys.stdin is not None:  # None: started with no standard input at all
        while sys.stdin.buffer.read(65536):
            pass
    server.shutdown()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5055, help="port (0 = any free port)")
    parser.add_argument("--log-requests", action="store_true",
                        help="log every request to stderr (off by default so an unread pipe never fills)")
    parser.add_argument("--exit-with-stdin", action="store_true",
                        help="stop when standard input closes (the parent holding the pipe exited)")
    args = parser.parse_args(argv)

    import logging

    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    if not args.log_requests:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = make_server(args.host, args.port, build_app(), threaded=True,
                         request_handler=MotoRequestHandler)
    os.environ.setdefault("MOTO_PORT", str(server.server_port))

    def stop(signum: int, frame: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.exit_with_stdin:
        threading.Thread(target=_shutdown_at_eof, args=(server,), daemon=True).start()
    # make_server has bound and is listening: connections queue from now on.
    print(f"moto ready on http://{args.host}:{server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
