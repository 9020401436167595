"""Tests for tests/moto_server.py: each EC2 patch answers as the AWS EC2 API
reference documents, and the test-only endpoints (call counters, faults) work.

Run: .venv/bin/python -m pytest tests/ -q
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

sys.path.insert(0, str(Path(__file__).parent))
from moto_process import running_moto, start_moto, stop  # noqa: E402
ACCOUNT = "123456789012"
FOREIGN_OWNER = "099720109477"
# A public image owned by another account, loaded by moto from MOTO_AMIS_PATH,
# so that "owned by self" has something to leave out.
FOREIGN_AMI = {
    "ami_id": "ami-0f0e0d0c0b0a09080",
    "name": "someone-elses-image",
    "description": "public image of another account",
    "owner_id": FOREIGN_OWNER,
    "public": True,
    "state": "available",
    "virtualization_type": "hvm",
    "architecture": "x86_64",
    "root_device_type": "ebs",
    "root_device_name": "/dev/sda1",
    "image_type": "machine",
    "hypervisor": "xen",
}


@pytest.fixture(scope="session")
def moto_url(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("moto")
    amis = workdir / "amis.json"
    amis.write_text(json.dumps([FOREIGN_AMI]))
    with running_moto(workdir, env={"MOTO_AMIS_PATH": str(amis)}) as url:
        yield url


def _http(url: str, method: str = "GET", payload: object | None = None) -> object:
    data = None if payload is None else json.dumps(payload).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as resp:
        body = resp.read()
    try:
        return json.loads(body)
    except ValueError:
        return body


@pytest.fixture(autouse=True)
def reset(moto_url):
    _http(f"{moto_url}/moto-api/reset", "POST")
    _http(f"{moto_url}/_test/buckets", "POST", {"scale": 1})
    yield


@pytest.fixture
def client(moto_url):
    def make(service: str = "ec2", region: str = "us-east-1"):
        return boto3.client(
            service, region_name=region, endpoint_url=moto_url,
            aws_access_key_id="testing", aws_secret_access_key="testing",
            config=Config(retries={"max_attempts": 1, "mode": "standard"}),
        )
    return make


def _instance(ec2, data_volumes=(), tags=None) -> str:
    """An instance with its root volume plus data volumes of the given sizes."""
    kwargs = {}
    if tags:
        kwargs["TagSpecifications"] = [{"ResourceType": "instance",
                                        "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]
    inst = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1, **kwargs)["Instances"][0]
    for n, size in enumerate(data_volumes):
        vol = ec2.create_volume(Size=size, AvailabilityZone=inst["Placement"]["AvailabilityZone"])
        ec2.attach_volume(VolumeId=vol["VolumeId"], InstanceId=inst["InstanceId"], Device=f"/dev/sd{'fghij'[n]}")
    return inst["InstanceId"]


def _image(ec2, image_id: str) -> dict:
    return ec2.describe_images(ImageIds=[image_id])["Images"][0]


def _snapshot_ids(image: dict) -> list[str]:
    return [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if "Ebs" in m]


def _tags(resource: dict) -> dict:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def _code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


# ---------------------------------------------------------------- patch a


def test_create_image_tags_snapshots_from_tag_specification(client):
    ec2 = client()
    iid = _instance(ec2, data_volumes=[20])
    image_id = ec2.create_image(
        InstanceId=iid, Name="backup-a",
        TagSpecifications=[
            {"ResourceType": "image", "Tags": [{"Key": "Backup", "Value": "daily"}]},
            {"ResourceType": "snapshot", "Tags": [{"Key": "Backup", "Value": "daily"},
                                                  {"Key": "Source", "Value": iid}]},
        ],
    )["ImageId"]
    image = _image(ec2, image_id)
    assert _tags(image) == {"Backup": "daily"}
    snaps = ec2.describe_snapshots(SnapshotIds=_snapshot_ids(image))["Snapshots"]
    assert len(snaps) == 2
    for snap in snaps:
        assert _tags(snap) == {"Backup": "daily", "Source": iid}


def test_create_image_rejects_other_resource_types(client):
    ec2 = client()
    iid = _instance(ec2)
    with pytest.raises(ClientError) as exc:
        ec2.create_image(InstanceId=iid, Name="backup-x",
                         TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "a", "Value": "b"}]}])
    assert _code(exc) == "InvalidParameterValue"


# ---------------------------------------------------------------- patch b


def test_create_image_one_snapshot_per_attached_volume(client):
    ec2 = client()
    iid = _instance(ec2, data_volumes=[20, 30])
    image = _image(ec2, ec2.create_image(InstanceId=iid, Name="backup-b")["ImageId"])
    mappings = {m["DeviceName"]: m["Ebs"] for m in image["BlockDeviceMappings"]}
    assert set(mappings) == {"/dev/sda1", "/dev/sdf", "/dev/sdg"}
    assert {d: e["VolumeSize"] for d, e in mappings.items()} == {"/dev/sda1": 8, "/dev/sdf": 20, "/dev/sdg": 30}
    assert image["RootDeviceName"] == "/dev/sda1" and image["RootDeviceType"] == "ebs"
    snap_ids = [e["SnapshotId"] for e in mappings.values()]
    assert len(set(snap_ids)) == 3
    snaps = {s["SnapshotId"]: s for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert set(snaps) == set(snap_ids)  # no stray placeholder snapshot
    for device, ebs in mappings.items():
        snap = snaps[ebs["SnapshotId"]]
        assert snap["VolumeSize"] == ebs["VolumeSize"]
        assert snap["Description"] == f"Created by CreateImage({iid}) for {image['ImageId']}"


def test_create_image_no_device_leaves_volume_out(client):
    ec2 = client()
    iid = _instance(ec2, data_volumes=[20])
    image_id = ec2.create_image(InstanceId=iid, Name="backup-root-only",
                                BlockDeviceMappings=[{"DeviceName": "/dev/sdf", "NoDevice": ""}])["ImageId"]
    assert [m["DeviceName"] for m in _image(ec2, image_id)["BlockDeviceMappings"]] == ["/dev/sda1"]


# ---------------------------------------------------------------- patch c


def test_copy_image_client_token_is_idempotent(client):
    east, west = client(), client(region="us-west-2")
    src = east.create_image(InstanceId=_instance(east), Name="backup-c")["ImageId"]
    args = dict(SourceImageId=src, SourceRegion="us-east-1", Name="backup-c-copy", ClientToken="token-1")
    first = west.copy_image(**args)["ImageId"]
    second = west.copy_image(**args)["ImageId"]
    assert first == second
    assert [i["ImageId"] for i in west.describe_images(Owners=["self"])["Images"]] == [first]
    assert len(west.describe_snapshots(OwnerIds=["self"])["Snapshots"]) == 1
    with pytest.raises(ClientError) as exc:
        west.copy_image(**dict(args, Name="another-name"))
    assert _code(exc) == "IdempotentParameterMismatch"
    # The token is scoped to the destination region; a new token makes a new copy.
    other_region = client(region="eu-west-1").copy_image(**args)["ImageId"]
    new_token = west.copy_image(**dict(args, ClientToken="token-2", Name="backup-c-copy-2"))["ImageId"]
    assert len({first, other_region, new_token}) == 3


def test_copy_image_copies_snapshots_into_destination_region(client):
    east, west = client(), client(region="us-west-2")
    src_id = east.create_image(InstanceId=_instance(east, data_volumes=[20]), Name="backup-c2")["ImageId"]
    src = _image(east, src_id)
    copy_id = west.copy_image(SourceImageId=src_id, SourceRegion="us-east-1", Name="backup-c2-copy")["ImageId"]
    copy = _image(west, copy_id)
    assert [m["DeviceName"] for m in copy["BlockDeviceMappings"]] == [m["DeviceName"] for m in src["BlockDeviceMappings"]]
    assert [m["Ebs"]["VolumeSize"] for m in copy["BlockDeviceMappings"]] == [8, 20]
    copy_snaps = _snapshot_ids(copy)
    assert not set(copy_snaps) & set(_snapshot_ids(src))
    west_snaps = {s["SnapshotId"] for s in west.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert west_snaps == set(copy_snaps)
    # The source's snapshots stay in the source region only.
    assert {s["SnapshotId"] for s in east.describe_snapshots(OwnerIds=["self"])["Snapshots"]} == set(_snapshot_ids(src))
    with pytest.raises(ClientError) as exc:
        west.delete_snapshot(SnapshotId=copy_snaps[0])
    assert _code(exc) == "InvalidSnapshot.InUse"


def test_copy_image_tags(client):
    east, west = client(), client(region="us-west-2")
    src = east.create_image(
        InstanceId=_instance(east), Name="backup-c3",
        TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": "Backup", "Value": "daily"},
                                                              {"Key": "Name", "Value": "web"}]}],
    )["ImageId"]
    plain = west.copy_image(SourceImageId=src, SourceRegion="us-east-1", Name="plain-copy")["ImageId"]
    assert _tags(_image(west, plain)) == {}  # user tags are not copied by default
    copied = west.copy_image(
        SourceImageId=src, SourceRegion="us-east-1", Name="tagged-copy", CopyImageTags=True,
        TagSpecifications=[
            {"ResourceType": "image", "Tags": [{"Key": "CopyOf", "Value": src}, {"Key": "Name", "Value": "web-dr"}]},
            {"ResourceType": "snapshot", "Tags": [{"Key": "CopyOf", "Value": src}]},
        ],
    )["ImageId"]
    image = _image(west, copied)
    assert _tags(image) == {"Backup": "daily", "Name": "web-dr", "CopyOf": src}
    for snap in west.describe_snapshots(SnapshotIds=_snapshot_ids(image))["Snapshots"]:
        assert _tags(snap) == {"CopyOf": src}


def test_copy_image_encryption(client):
    east, west = client(), client(region="us-west-2")
    src = east.create_image(InstanceId=_instance(east, data_volumes=[10]), Name="backup-c4")["ImageId"]
    key = f"arn:aws:kms:us-west-2:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    copy = _image(west, west.copy_image(SourceImageId=src, SourceRegion="us-east-1", Name="enc-copy",
                                        Encrypted=True, KmsKeyId=key)["ImageId"])
    assert all(m["Ebs"]["Encrypted"] for m in copy["BlockDeviceMappings"])
    for snap in west.describe_snapshots(SnapshotIds=_snapshot_ids(copy))["Snapshots"]:
        assert snap["Encrypted"] is True and snap["KmsKeyId"] == key
    default = _image(west, west.copy_image(SourceImageId=src, SourceRegion="us-east-1", Name="enc-default",
                                           Encrypted=True)["ImageId"])
    for snap in west.describe_snapshots(SnapshotIds=_snapshot_ids(default))["Snapshots"]:
        assert snap["Encrypted"] is True and snap["KmsKeyId"].startswith("arn:aws:kms:us-west-2:")
    with pytest.raises(ClientError) as exc:
        west.copy_image(SourceImageId=src, SourceRegion="us-east-1", Name="key-only", KmsKeyId=key)
    assert _code(exc) == "InvalidParameterDependency"


def test_copy_image_unknown_or_deregistered_source(client):
    east, west = client(), client(region="us-west-2")
    with pytest.raises(ClientError) as exc:
        west.copy_image(SourceImageId="ami-00000000000000000", SourceRegion="us-east-1", Name="nothing")
    assert _code(exc) == "InvalidAMIID.NotFound"
    gone = east.create_image(InstanceId=_instance(east), Name="gone")["ImageId"]
    east.deregister_image(ImageId=gone)
    with pytest.raises(ClientError) as exc:
        west.copy_image(SourceImageId=gone, SourceRegion="us-east-1", Name="gone-copy")
    assert _code(exc) == "InvalidAMIID.NotFound"
    with pytest.raises(ClientError) as exc:
        east.create_tags(Resources=[gone], Tags=[{"Key": "a", "Value": "b"}])
    assert _code(exc) == "InvalidAMIID.NotFound"


# ---------------------------------------------------------------- patch d


def test_copy_snapshot_tags_and_encryption(client):
    east, west = client(), client(region="us-west-2")
    vol = east.create_volume(Size=5, AvailabilityZone="us-east-1a")
    src = east.create_snapshot(VolumeId=vol["VolumeId"])["SnapshotId"]
    copy_id = west.copy_snapshot(
        SourceSnapshotId=src, SourceRegion="us-east-1", Encrypted=True,
        TagSpecifications=[{"ResourceType": "snapshot", "Tags": [{"Key": "CopyOf", "Value": src}]}],
    )["SnapshotId"]
    copy = west.describe_snapshots(SnapshotIds=[copy_id])["Snapshots"][0]
    assert _tags(copy) == {"CopyOf": src}
    assert copy["Encrypted"] is True and copy["KmsKeyId"].startswith("arn:aws:kms:us-west-2:")
    assert copy["Description"] == f"[Copied {src} from us-east-1]"
    assert copy["VolumeSize"] == 5
    key = f"arn:aws:kms:us-west-2:{ACCOUNT}:key/abcd"
    keyed = west.copy_snapshot(SourceSnapshotId=src, SourceRegion="us-east-1", Encrypted=True, KmsKeyId=key)
    assert west.describe_snapshots(SnapshotIds=[keyed["SnapshotId"]])["Snapshots"][0]["KmsKeyId"] == key
    plain = west.copy_snapshot(SourceSnapshotId=src, SourceRegion="us-east-1", Description="mine")
    plain = west.describe_snapshots(SnapshotIds=[plain["SnapshotId"]])["Snapshots"][0]
    assert plain["Encrypted"] is False and "KmsKeyId" not in plain and plain["Description"] == "mine"
    with pytest.raises(ClientError) as exc:
        west.copy_snapshot(SourceSnapshotId=src, SourceRegion="us-east-1", KmsKeyId=key)
    assert _code(exc) == "InvalidParameterDependency"
    with pytest.raises(ClientError) as exc:
        west.copy_snapshot(SourceSnapshotId="snap-00000000000000000", SourceRegion="us-east-1")
    assert _code(exc) == "InvalidSnapshot.NotFound"


# ---------------------------------------------------------------- patch e


def test_describe_snapshots_owner_self(client):
    ec2 = client()
    vol = ec2.create_volume(Size=5, AvailabilityZone="us-east-1a")
    mine = ec2.create_snapshot(VolumeId=vol["VolumeId"])["SnapshotId"]
    everything = ec2.describe_snapshots()["Snapshots"]
    assert {s["OwnerId"] for s in everything} == {ACCOUNT, FOREIGN_OWNER}  # the public image's snapshot
    own = ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
    assert [s["SnapshotId"] for s in own] == [mine]
    assert [s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=[ACCOUNT])["Snapshots"]] == [mine]
    foreign = ec2.describe_snapshots(OwnerIds=[FOREIGN_OWNER])["Snapshots"]
    assert foreign and all(s["OwnerId"] == FOREIGN_OWNER for s in foreign)


# ---------------------------------------------------------------- patch f


def _pages(call, key: str, **kwargs) -> list[list[dict]]:
    pages, token = [], None
    while True:
        resp = call(**kwargs, **({"NextToken": token} if token else {}))
        pages.append(resp[key])
        token = resp.get("NextToken")
        if not token:
            return pages


def test_describe_images_pages_with_max_results(client):
    ec2 = client()
    iid = _instance(ec2)
    ids = {ec2.create_image(InstanceId=iid, Name=f"img-{n:02d}")["ImageId"] for n in range(12)}
    pages = _pages(ec2.describe_images, "Images", Owners=["self"], MaxResults=5)
    assert [len(p) for p in pages] == [5, 5, 2]
    seen = [i["ImageId"] for p in pages for i in p]
    assert len(seen) == 12 and set(seen) == ids
    assert len(ec2.describe_images(Owners=["self"])["Images"]) == 12  # no MaxResults: everything
    assert "NextToken" not in ec2.describe_images(Owners=["self"])


def test_paging_errors(client):
    ec2 = client()
    with pytest.raises(ClientError) as exc:
        ec2.describe_images(MaxResults=2)
    assert _code(exc) == "InvalidParameterValue"
    with pytest.raises(ClientError) as exc:
        ec2.describe_snapshots(NextToken="not-a-token")
    assert _code(exc) == "InvalidPaginationToken"
    with pytest.raises(ClientError) as exc:
        ec2.describe_volumes(VolumeIds=["vol-00000000000000000"], MaxResults=5)
    assert _code(exc) == "InvalidParameterCombination"


def test_describe_instances_volumes_snapshots_page(client):
    ec2 = client()
    for _ in range(7):
        _instance(ec2)  # 7 instances, 7 root volumes
    inst_pages = _pages(ec2.describe_instances, "Reservations", MaxResults=5)
    assert [sum(len(r["Instances"]) for r in p) for p in inst_pages] == [5, 2]
    vol_pages = _pages(ec2.describe_volumes, "Volumes", MaxResults=5)
    assert [len(p) for p in vol_pages] == [5, 2]
    vol_ids = [v["VolumeId"] for p in vol_pages for v in p]
    for vid in vol_ids:
        ec2.create_snapshot(VolumeId=vid)
    snap_pages = _pages(ec2.describe_snapshots, "Snapshots", OwnerIds=["self"], MaxResults=5)
    assert [len(p) for p in snap_pages] == [5, 2]
    # botocore's own paginators agree
    paginator = ec2.get_paginator("describe_snapshots")
    assert sum(len(p["Snapshots"]) for p in paginator.paginate(OwnerIds=["self"], PaginationConfig={"PageSize": 5})) == 7


def test_paging_survives_deletions_between_pages(client):
    ec2 = client()
    iid = _instance(ec2)
    for n in range(11):
        ec2.create_image(InstanceId=iid, Name=f"expire-{n:02d}")
    seen, token = [], None
    while True:  # an expiry loop: deregister every image of a page before asking for the next
        resp = ec2.describe_images(Owners=["self"], MaxResults=5, **({"NextToken": token} if token else {}))
        for image in resp["Images"]:
            seen.append(image["ImageId"])
            ec2.deregister_image(ImageId=image["ImageId"])
        token = resp.get("NextToken")
        if not token:
            break
    assert len(seen) == len(set(seen)) == 11


# ---------------------------------------------------------------- g: filters, tags, deletion


def test_tag_filters(client):
    ec2 = client()
    tagged = _instance(ec2, tags={"Backup": "daily", "Team": "web"})
    _instance(ec2, tags={"Backup": "weekly"})
    untagged = _instance(ec2)
    ids = lambda resp: sorted(i["InstanceId"] for r in resp["Reservations"] for i in r["Instances"])  # noqa: E731
    assert ids(ec2.describe_instances(Filters=[{"Name": "tag:Backup", "Values": ["daily"]}])) == [tagged]
    assert len(ids(ec2.describe_instances(Filters=[{"Name": "tag:Backup", "Values": ["*"]}]))) == 2
    assert len(ids(ec2.describe_instances(Filters=[{"Name": "tag-key", "Values": ["Backup"]}]))) == 2
    assert untagged not in ids(ec2.describe_instances(Filters=[{"Name": "tag-key", "Values": ["Backup", "Team"]}]))

    img_daily = ec2.create_image(InstanceId=tagged, Name="img-daily", TagSpecifications=[
        {"ResourceType": "image", "Tags": [{"Key": "Backup", "Value": "daily"}]}])["ImageId"]
    img_keep = ec2.create_image(InstanceId=tagged, Name="img-keep", TagSpecifications=[
        {"ResourceType": "image", "Tags": [{"Key": "Keep", "Value": "yes"}]}])["ImageId"]
    img_none = ec2.create_image(InstanceId=tagged, Name="img-none")["ImageId"]
    found = lambda **kw: sorted(i["ImageId"] for i in ec2.describe_images(Owners=["self"], **kw)["Images"])  # noqa: E731
    assert found(Filters=[{"Name": "tag:Backup", "Values": ["dai*"]}]) == [img_daily]
    # several values of one filter: any of them matches
    assert found(Filters=[{"Name": "tag-key", "Values": ["Backup", "Keep"]}]) == sorted([img_daily, img_keep])
    # filters still apply when ImageIds are given
    assert [i["ImageId"] for i in ec2.describe_images(
        ImageIds=[img_daily, img_none], Filters=[{"Name": "tag-key", "Values": ["Backup"]}])["Images"]] == [img_daily]
    snap = _snapshot_ids(_image(ec2, img_none))[0]
    assert found(Filters=[{"Name": "block-device-mapping.snapshot-id", "Values": [snap]}]) == [img_none]

    vol = ec2.create_volume(Size=3, AvailabilityZone="us-east-1a", TagSpecifications=[
        {"ResourceType": "volume", "Tags": [{"Key": "Backup", "Value": "daily"}]}])["VolumeId"]
    assert [v["VolumeId"] for v in ec2.describe_volumes(
        Filters=[{"Name": "tag:Backup", "Values": ["daily"]}])["Volumes"]] == [vol]
    snap_id = ec2.create_snapshot(VolumeId=vol, TagSpecifications=[
        {"ResourceType": "snapshot", "Tags": [{"Key": "Backup", "Value": "daily"}]}])["SnapshotId"]
    assert [s["SnapshotId"] for s in ec2.describe_snapshots(
        OwnerIds=["self"], Filters=[{"Name": "tag-key", "Values": ["Backup"]}])["Snapshots"]] == [snap_id]


def test_create_snapshot_tags_and_kms_key(client):
    ec2 = client()
    vol = ec2.create_volume(Size=4, AvailabilityZone="us-east-1a", Encrypted=True)
    snap = ec2.create_snapshot(VolumeId=vol["VolumeId"], TagSpecifications=[
        {"ResourceType": "snapshot", "Tags": [{"Key": "Backup", "Value": "daily"}]}])
    assert _tags(snap) == {"Backup": "daily"}
    described = ec2.describe_snapshots(SnapshotIds=[snap["SnapshotId"]])["Snapshots"][0]
    assert described["Encrypted"] is True and described["KmsKeyId"] == vol["KmsKeyId"]
    with pytest.raises(ClientError) as exc:
        ec2.create_snapshot(VolumeId=vol["VolumeId"], TagSpecifications=[
            {"ResourceType": "image", "Tags": [{"Key": "a", "Value": "b"}]}])
    assert _code(exc) == "InvalidParameterValue"


def test_create_tags(client):
    ec2 = client()
    iid = _instance(ec2)
    image_id = ec2.create_image(InstanceId=iid, Name="img-tags")["ImageId"]
    ec2.create_tags(Resources=[image_id], Tags=[{"Key": "Keep"}, {"Key": "Backup", "Value": "daily"}])
    assert _tags(_image(ec2, image_id)) == {"Keep": "", "Backup": "daily"}
    with pytest.raises(ClientError) as exc:
        ec2.create_tags(Resources=[image_id], Tags=[{"Key": "aws:backup", "Value": "x"}])
    assert _code(exc) == "InvalidParameterValue"


def test_a_resource_reads_its_own_tags_in_order_and_a_describe_of_thousands_stays_quick(client):
    ec2 = client()
    ids = [i["InstanceId"] for i in ec2.run_instances(
        ImageId="ami-12345678", MinCount=2000, MaxCount=2000, TagSpecifications=[{
            "ResourceType": "instance", "Tags": [{"Key": f"k{n}", "Value": f"v{n}"} for n in range(8)]}])["Instances"]]
    ec2.create_tags(Resources=[ids[0]], Tags=[{"Key": "speedtest", "Value": "one"}])
    ec2.delete_tags(Resources=[ids[0]], Tags=[{"Key": "k3"}])
    started = time.monotonic()
    found = ec2.describe_instances(Filters=[{"Name": "tag:k0", "Values": ["v0"]}], MaxResults=1000)
    # Reading each resource's tags from every tag of the region took over a minute here.
    assert time.monotonic() - started < 20
    assert sum(len(r["Instances"]) for r in found["Reservations"]) >= 1000
    one = ec2.describe_instances(Filters=[{"Name": "tag:speedtest", "Values": ["one"]}])["Reservations"]
    tags = [(t["Key"], t["Value"]) for t in one[0]["Instances"][0]["Tags"]]
    assert tags == [(f"k{n}", f"v{n}") for n in range(8) if n != 3] + [("speedtest", "one")]


def test_deregister_keeps_snapshots_and_delete_snapshot_errors(client):
    ec2 = client()
    image_id = ec2.create_image(InstanceId=_instance(ec2, data_volumes=[5]), Name="img-dereg")["ImageId"]
    snaps = _snapshot_ids(_image(ec2, image_id))
    with pytest.raises(ClientError) as exc:
        ec2.delete_snapshot(SnapshotId=snaps[0])
    assert _code(exc) == "InvalidSnapshot.InUse"
    assert image_id in exc.value.response["Error"]["Message"]
    ec2.deregister_image(ImageId=image_id)
    assert ec2.describe_images(Owners=["self"])["Images"] == []
    assert len(ec2.describe_snapshots(SnapshotIds=snaps)["Snapshots"]) == 2  # left in place
    for sid in snaps:
        ec2.delete_snapshot(SnapshotId=sid)
    with pytest.raises(ClientError) as exc:
        ec2.delete_snapshot(SnapshotId=snaps[0])
    assert _code(exc) == "InvalidSnapshot.NotFound"
    with pytest.raises(ClientError) as exc:
        ec2.describe_snapshots(SnapshotIds=snaps[:1])
    assert _code(exc) == "InvalidSnapshot.NotFound"


def test_deregister_image_delete_associated_snapshots(client):
    ec2 = client()
    image_id = ec2.create_image(InstanceId=_instance(ec2, data_volumes=[5]), Name="img-dereg2")["ImageId"]
    snaps = _snapshot_ids(_image(ec2, image_id))
    resp = ec2.deregister_image(ImageId=image_id, DeleteAssociatedSnapshots=True)
    assert resp["Return"] is True
    assert sorted((r["SnapshotId"], r["ReturnCode"]) for r in resp["DeleteSnapshotResults"]) == sorted(
        (s, "success") for s in snaps)
    assert ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"] == []
    with pytest.raises(ClientError) as exc:
        ec2.deregister_image(ImageId=image_id, DeleteAssociatedSnapshots=True)
    assert _code(exc) in ("InvalidAMIID.NotFound", "InvalidAMIID.Unavailable")


def test_delete_associated_snapshots_skips_a_snapshot_another_ami_lists(client):
    # "If a snapshot is associated with multiple AMIs, it is not deleted, regardless of this
    # setting", and the AMI is deregistered all the same.
    ec2 = client()
    image_id = ec2.create_image(InstanceId=_instance(ec2, data_volumes=[5]), Name="img-shared")["ImageId"]
    root, data = _snapshot_ids(_image(ec2, image_id))
    other = ec2.register_image(
        Name="img-other", RootDeviceName="/dev/sda1",
        BlockDeviceMappings=[{"DeviceName": "/dev/sda1", "Ebs": {"SnapshotId": data}}],
    )["ImageId"]
    assert _snapshot_ids(_image(ec2, other)) == [data]
    resp = ec2.deregister_image(ImageId=image_id, DeleteAssociatedSnapshots=True)
    assert {r["SnapshotId"]: r["ReturnCode"] for r in resp["DeleteSnapshotResults"]} == {
        root: "success", data: "skipped"}
    assert [i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]] == [other]
    assert [s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]] == [data]
    # Once no other AMI lists it, it goes with the last one.
    resp = ec2.deregister_image(ImageId=other, DeleteAssociatedSnapshots=True)
    assert resp["DeleteSnapshotResults"] == [{"SnapshotId": data, "ReturnCode": "success"}]
    assert ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"] == []


def test_deregister_image_without_the_flag_answers_no_snapshot_results(client):
    ec2 = client()
    image_id = ec2.create_image(InstanceId=_instance(ec2), Name="img-plain")["ImageId"]
    snaps = _snapshot_ids(_image(ec2, image_id))
    resp = ec2.deregister_image(ImageId=image_id)
    assert resp["Return"] is True
    assert resp.get("DeleteSnapshotResults", []) == []
    assert [s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]] == snaps


def test_register_image_lists_the_snapshots_it_is_given(client):
    ec2 = client()
    vol = ec2.create_volume(Size=7, AvailabilityZone="us-east-1a")["VolumeId"]
    snap = ec2.create_snapshot(VolumeId=vol)["SnapshotId"]
    before = {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    image_id = ec2.register_image(
        Name="img-registered", RootDeviceName="/dev/xvda",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snap}}],
        TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": "Name", "Value": "by hand"}]}],
    )["ImageId"]
    image = _image(ec2, image_id)
    assert _tags(image) == {"Name": "by hand"}
    assert image["RootDeviceName"] == "/dev/xvda"
    assert image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"] == snap
    assert image["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"] == 7
    # no placeholder snapshot was left behind
    assert {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]} == before
    with pytest.raises(ClientError) as exc:
        ec2.delete_snapshot(SnapshotId=snap)
    assert _code(exc) == "InvalidSnapshot.InUse"
    with pytest.raises(ClientError) as exc:
        ec2.register_image(Name="img-bad", RootDeviceName="/dev/xvda",
                           BlockDeviceMappings=[{"DeviceName": "/dev/xvda",
                                                 "Ebs": {"SnapshotId": "snap-0123456789abcdef0"}}])
    assert _code(exc) == "InvalidSnapshot.NotFound"
    with pytest.raises(ClientError) as exc:
        ec2.register_image(Name="img-bad-tags", RootDeviceName="/dev/xvda",
                           TagSpecifications=[{"ResourceType": "snapshot", "Tags": [{"Key": "a", "Value": "b"}]}])
    assert _code(exc) == "InvalidParameterValue"


def test_ami_names(client):
    ec2 = client()
    iid = _instance(ec2)
    ec2.create_image(InstanceId=iid, Name="web-2024-01-01T00.00.00Z")
    with pytest.raises(ClientError) as exc:
        ec2.create_image(InstanceId=iid, Name="web-2024-01-01T00.00.00Z")
    assert _code(exc) == "InvalidAMIName.Duplicate"
    with pytest.raises(ClientError) as exc:
        ec2.create_image(InstanceId=iid, Name="web-2024-01-01T00:00:00Z")  # ':' is not allowed
    assert _code(exc) == "InvalidAMIName.Malformed"


# ---------------------------------------------------------------- test endpoints


def test_call_counters(client, moto_url):
    east, west = client(), client(region="us-west-2")
    east.describe_instances()
    east.describe_instances()
    east.describe_images(Owners=["self"])
    west.describe_snapshots(OwnerIds=["self"])
    client("sqs").list_queues()  # not EC2: not counted
    assert _http(f"{moto_url}/_test/calls") == {
        "us-east-1": {"DescribeInstances": 2, "DescribeImages": 1},
        "us-west-2": {"DescribeSnapshots": 1},
    }
    _http(f"{moto_url}/_test/calls/reset", "POST")
    assert _http(f"{moto_url}/_test/calls") == {}
    east.describe_volumes()
    assert _http(f"{moto_url}/_test/calls") == {"us-east-1": {"DescribeVolumes": 1}}


def test_fault_with_count_then_normal_answers(client, moto_url):
    east, west = client(), client(region="us-west-2")
    src = east.create_image(InstanceId=_instance(east), Name="img-fault")["ImageId"]
    _http(f"{moto_url}/_test/faults", "POST", {
        "action": "CopyImage", "region": "us-west-2", "code": "ResourceLimitExceeded",
        "message": "You have reached your limit", "count": 2})
    for _ in range(2):
        with pytest.raises(ClientError) as exc:
            west.copy_image(SourceImageId=src, SourceRegion="us-east-1", Name="copy-fault")
        err = exc.value.response
        assert err["Error"] == {"Code": "ResourceLimitExceeded", "Message": "You have reached your limit"}
        assert err["ResponseMetadata"]["HTTPStatusCode"] == 400
    # Another region is not affected, and after `count` calls answers are normal again.
    client(region="eu-west-1").copy_image(SourceImageId=src, SourceRegion="us-east-1", Name="copy-eu")
    west.copy_image(SourceImageId=src, SourceRegion="us-east-1", Name="copy-fault")
    assert _http(f"{moto_url}/_test/faults") == []
    assert _http(f"{moto_url}/_test/calls")["us-west-2"] == {"CopyImage": 3}


def test_ec2s_buckets_are_the_default_and_throttle_with_503_request_limit_exceeded(client, moto_url):
    table = _http(f"{moto_url}/_test/buckets")["buckets"]
    assert table["CreateImage"] == {"burst": 50, "rate": 5}
    assert table["CopyImage"] == {"burst": 100, "rate": 1}
    assert table["DescribeInstances"] == {"burst": 100, "rate": 20}
    assert "RunInstances" not in table
    # A small bucket: 3 at once, then one every 5 seconds.
    _http(f"{moto_url}/_test/buckets", "POST", {"buckets": {
        "DescribeVolumes": {"burst": 3, "rate": 0.2}, "DescribeSnapshots": {"burst": 1, "rate": 1}}})
    east, west = client(), client(region="us-west-2")
    for _ in range(3):
        east.describe_volumes()
    with pytest.raises(ClientError) as exc:
        east.describe_volumes()
    assert exc.value.response["Error"] == {"Code": "RequestLimitExceeded", "Message": "Request limit exceeded."}
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    # Per region, per action: another region and another action are not affected.
    west.describe_volumes()
    east.describe_instances()
    # A bucket refills at its rate: one token a second here.
    east.describe_snapshots(OwnerIds=["self"])
    with pytest.raises(ClientError):
        east.describe_snapshots(OwnerIds=["self"])
    import time
    time.sleep(1.1)
    east.describe_snapshots(OwnerIds=["self"])
    got = _http(f"{moto_url}/_test/buckets")
    # (each throttled answer is counted, the client's own retries included)
    assert set(got["throttled"]) == {"us-east-1"}
    assert set(got["throttled"]["us-east-1"]) == {"DescribeVolumes", "DescribeSnapshots"}


def test_buckets_scale_refill_on_reset_and_spare_the_uncounted_key(client, moto_url):
    _http(f"{moto_url}/_test/buckets", "POST", {"scale": 0.02})
    table = _http(f"{moto_url}/_test/buckets")["buckets"]
    assert table["DescribeImages"] == {"burst": 2, "rate": 0.4}
    assert table["CreateImage"]["burst"] == 1  # never below one token
    east = client()
    east.describe_images(Owners=["self"])
    east.describe_images(Owners=["self"])
    with pytest.raises(ClientError) as exc:
        east.describe_images(Owners=["self"])
    assert _code(exc) == "RequestLimitExceeded"
    # The tests' own checks are never throttled.
    boto3.client("ec2", region_name="us-east-1", endpoint_url=moto_url,
                 aws_access_key_id="uncounted", aws_secret_access_key="x").describe_images(Owners=["self"])
    # A reset refills the buckets and keeps the figures.
    _http(f"{moto_url}/moto-api/reset", "POST")
    assert _http(f"{moto_url}/_test/buckets")["buckets"]["DescribeImages"] == {"burst": 2, "rate": 0.4}
    east.describe_images(Owners=["self"])
    # No buckets at all.
    _http(f"{moto_url}/_test/buckets", "POST", {"buckets": {}})
    for _ in range(5):
        east.describe_images(Owners=["self"])


def test_bad_buckets_spec(moto_url):
    for spec in ({"scale": 0}, {"buckets": {"CreateImage": {"burst": 0, "rate": 1}}}, {"buckets": 3}, {}):
        with pytest.raises(urllib.error.HTTPError) as exc:
            _http(f"{moto_url}/_test/buckets", "POST", spec)
        assert exc.value.code == 400


def test_an_image_can_be_made_failed(client, moto_url):
    # AWS images can end up failed; moto's are available at once, so the launcher can set it.
    ec2 = client()
    image = ec2.create_image(InstanceId=_instance(ec2), Name="img-to-fail")["ImageId"]
    assert ec2.describe_images(ImageIds=[image])["Images"][0]["State"] == "available"
    _http(f"{moto_url}/_test/image-state", "POST",
          {"region": "us-east-1", "image_id": image, "state": "failed", "reason": "disk error"})
    described = ec2.describe_images(ImageIds=[image])["Images"][0]
    assert described["State"] == "failed"
    with pytest.raises(urllib.error.HTTPError) as exc:
        _http(f"{moto_url}/_test/image-state", "POST",
              {"region": "us-east-1", "image_id": "ami-00000000000000000", "state": "failed"})
    assert exc.value.code == 400


def test_fault_until_cleared_and_status(client, moto_url):
    ec2 = client()
    _http(f"{moto_url}/_test/faults", "POST", {"action": "DescribeImages", "code": "RequestLimitExceeded",
                                               "message": "Request limit exceeded.", "status": 503})
    for region in ("us-east-1", "ap-southeast-2", "us-east-1"):
        with pytest.raises(ClientError) as exc:
            client(region=region).describe_images(Owners=["self"])
        assert _code(exc) == "RequestLimitExceeded"
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    ec2.describe_instances()  # other actions unaffected
    _http(f"{moto_url}/_test/faults", "DELETE")
    assert ec2.describe_images(Owners=["self"])["Images"] == []


def test_moto_reset_clears_counters_and_faults(client, moto_url):
    ec2 = client()
    ec2.describe_instances()
    _http(f"{moto_url}/_test/faults", "POST", {"action": "DescribeVolumes", "code": "Boom"})
    _http(f"{moto_url}/moto-api/reset", "POST")
    assert _http(f"{moto_url}/_test/calls") == {}
    assert _http(f"{moto_url}/_test/faults") == []
    ec2.describe_volumes()


def test_calls_with_the_uncounted_key_are_neither_counted_nor_faulted(client, moto_url):
    ec2 = client()
    observer = boto3.client("ec2", region_name="us-east-1", endpoint_url=moto_url,
                            aws_access_key_id="uncounted", aws_secret_access_key="testing",
                            config=Config(retries={"max_attempts": 1, "mode": "standard"}))
    _instance(ec2)
    _http(f"{moto_url}/_test/calls/reset", "POST")
    _http(f"{moto_url}/_test/faults", "POST", {"action": "DescribeInstances", "code": "Boom"})
    # The same account's resources, seen without a trace in the counters or the faults
    assert len(observer.describe_instances()["Reservations"]) == 1
    assert _http(f"{moto_url}/_test/calls") == {}
    assert len(_http(f"{moto_url}/_test/faults")) == 1
    with pytest.raises(ClientError) as exc:
        ec2.describe_instances()
    assert _code(exc) == "Boom"
    assert _http(f"{moto_url}/_test/calls") == {"us-east-1": {"DescribeInstances": 1}}


def test_the_clock_stamps_what_ec2_creates_until_set_back_or_reset(client, moto_url):
    ec2 = client()
    instance = _instance(ec2)
    _http(f"{moto_url}/_test/clock", "POST", {"now": "2020-02-03T04:05:06Z"})
    ami = ec2.create_image(InstanceId=instance, Name="at-2020")["ImageId"]
    snap = ec2.create_snapshot(VolumeId=ec2.create_volume(Size=1, AvailabilityZone="us-east-1a")["VolumeId"])
    assert _image(ec2, ami)["CreationDate"].startswith("2020-02-03T04:05:06")
    assert snap["StartTime"].isoformat().startswith("2020-02-03T04:05:06")
    # Back to the machine's clock, by hand and by a reset
    assert _http(f"{moto_url}/_test/clock", "POST", {"now": None}) == {"ok": True, "now": None}
    assert not _image(ec2, ec2.create_image(InstanceId=instance, Name="now")["ImageId"])["CreationDate"].startswith("2020")
    _http(f"{moto_url}/_test/clock", "POST", {"now": "2020-02-03T04:05:06Z"})
    _http(f"{moto_url}/moto-api/reset", "POST")
    instance = _instance(ec2)
    assert not _image(ec2, ec2.create_image(InstanceId=instance, Name="now")["ImageId"])["CreationDate"].startswith("2020")
    with pytest.raises(urllib.error.HTTPError) as exc:
        _http(f"{moto_url}/_test/clock", "POST", {"now": "2020-02-03T04:05:06"})
    assert exc.value.code == 400


def test_bad_fault_spec(moto_url):
    with pytest.raises(urllib.error.HTTPError) as exc:
        _http(f"{moto_url}/_test/faults", "POST", {"region": "us-east-1"})
    assert exc.value.code == 400


def test_other_services_are_served(client):
    sqs = client("sqs")
    url = sqs.create_queue(QueueName="backup-events")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="hello")
    assert sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "hello"
    events = client("events")
    events.put_rule(Name="nightly", ScheduleExpression="cron(0 3 * * ? *)")
    assert [r["Name"] for r in events.list_rules()["Rules"]] == ["nightly"]


# ---------------------------------------------------------------- patch h


def test_create_volume_in_an_unknown_zone(client):
    ec2 = client()
    with pytest.raises(ClientError) as exc:
        ec2.create_volume(Size=1, AvailabilityZone="us-east-1z")
    assert _code(exc) == "InvalidZone.NotFound"
    assert ec2.describe_volumes()["Volumes"] == []
    assert ec2.create_volume(Size=1, AvailabilityZone="us-east-1b")["AvailabilityZone"] == "us-east-1b"


def test_attach_volume_in_another_zone(client):
    ec2 = client()
    subnet = ec2.describe_subnets(Filters=[{"Name": "availability-zone", "Values": ["us-east-1b"]},
                                           {"Name": "default-for-az", "Values": ["true"]}])["Subnets"][0]
    inst = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1,
                             SubnetId=subnet["SubnetId"])["Instances"][0]["InstanceId"]
    elsewhere = ec2.create_volume(Size=1, AvailabilityZone="us-east-1a")["VolumeId"]
    with pytest.raises(ClientError) as exc:
        ec2.attach_volume(VolumeId=elsewhere, InstanceId=inst, Device="/dev/sdf")
    assert _code(exc) == "InvalidVolume.ZoneMismatch"
    same = ec2.create_volume(Size=1, AvailabilityZone="us-east-1b")["VolumeId"]
    ec2.attach_volume(VolumeId=same, InstanceId=inst, Device="/dev/sdf")
    assert ec2.describe_volumes(VolumeIds=[same])["Volumes"][0]["Attachments"][0]["InstanceId"] == inst


def test_zone_state_is_reported_and_reset(client, moto_url):
    ec2 = client(region="us-west-2")
    _http(f"{moto_url}/_test/zone-state", "POST",
          {"region": "us-west-2", "zone": "us-west-2a", "state": "impaired"})
    available = ec2.describe_availability_zones(Filters=[{"Name": "state", "Values": ["available"]}])
    names = [z["ZoneName"] for z in available["AvailabilityZones"]]
    assert "us-west-2a" not in names and "us-west-2b" in names
    zone = ec2.describe_availability_zones(ZoneNames=["us-west-2a"])["AvailabilityZones"][0]
    assert zone["State"] == "impaired"
    with pytest.raises(urllib.error.HTTPError) as exc:
        _http(f"{moto_url}/_test/zone-state", "POST",
              {"region": "us-west-2", "zone": "us-west-2z", "state": "impaired"})
    assert exc.value.code == 400
    _http(f"{moto_url}/moto-api/reset", "POST")
    zone = ec2.describe_availability_zones(ZoneNames=["us-west-2a"])["AvailabilityZones"][0]
    assert zone["State"] == "available"



# ---------------------------------------------------------------- j: restores (the drill)


def _drill_tags(resource_id: str) -> list[dict]:
    return [{"Key": "backup:managed-by", "Value": "ec2-backup"}, {"Key": "backup:drill-of", "Value": "x"},
            {"Key": "Name", "Value": f"drill-{resource_id}"}]


def _dr_image(client, data_volumes=(20,)) -> tuple[object, str]:
    """A backup image made in us-east-1 (root 8 GiB + data volumes attached with DeleteOnTermination
    false), copied to us-west-2: (the us-west-2 client, the copy's id)."""
    east, west = client(), client(region="us-west-2")
    src = east.create_image(InstanceId=_instance(east, data_volumes=data_volumes), Name="web-backup")["ImageId"]
    return west, west.copy_image(SourceImageId=src, SourceRegion="us-east-1", Name="web-backup-dr")["ImageId"]


def _default_subnet(ec2, zone: str) -> dict:
    return ec2.describe_subnets(Filters=[{"Name": "availability-zone", "Values": [zone]},
                                         {"Name": "default-for-az", "Values": ["true"]}])["Subnets"][0]


def _statuses(ec2, **kwargs) -> dict:
    return {s["InstanceId"]: s for s in ec2.describe_instance_status(**kwargs)["InstanceStatuses"]}


def test_restore_hold_of_instances_reports_their_status_checks_until_lifted_or_reset(client, moto_url):
    west, eu = client(region="us-west-2"), client(region="eu-west-1")
    running = _instance(west)
    stopped = _instance(west)
    west.stop_instances(InstanceIds=[stopped])
    elsewhere = _instance(eu)
    hold = lambda status: _http(f"{moto_url}/_test/restore-hold", "POST",  # noqa: E731
                                {"region": "us-west-2", "kind": "instance", "status": status})
    assert hold("initializing") == {"ok": True, "holds": [
        {"region": "us-west-2", "kind": "instance", "status": "initializing"}]}
    got = _statuses(west, InstanceIds=[running, stopped], IncludeAllInstances=True)
    for check in ("InstanceStatus", "SystemStatus"):
        assert got[running][check] == {"Status": "initializing",
                                       "Details": [{"Name": "reachability", "Status": "initializing"}]}
        assert got[stopped][check] == {"Status": "not-applicable"}
    assert _statuses(eu, InstanceIds=[elsewhere])[elsewhere]["InstanceStatus"]["Status"] == "ok"
    hold("impaired")
    got = _statuses(west, InstanceIds=[running])[running]
    assert got["SystemStatus"] == {"Status": "impaired", "Details": [{"Name": "reachability", "Status": "failed"}]}
    assert list(_statuses(west, Filters=[{"Name": "instance-status.status", "Values": ["impaired"]}])) == [running]
    assert _http(f"{moto_url}/_test/restore-hold")["holds"][0]["status"] == "impaired"
    assert hold(None) == {"ok": True, "holds": []}
    assert _statuses(west, InstanceIds=[running])[running]["InstanceStatus"] == {
        "Status": "ok", "Details": [{"Name": "reachability", "Status": "passed"}]}
    hold("impaired")
    _http(f"{moto_url}/moto-api/reset", "POST")
    assert _http(f"{moto_url}/_test/restore-hold") == {"ok": True, "holds": []}
    for spec in ({"region": "us-west-2", "kind": "instance", "status": "creating"},
                 {"region": "us-west-2", "kind": "image", "status": "error"},
                 {"region": "xx-nowhere-1", "kind": "volume", "status": "error"},
                 {"region": "us-west-2", "kind": "volume"}):
        with pytest.raises(urllib.error.HTTPError) as exc:
            _http(f"{moto_url}/_test/restore-hold", "POST", spec)
        assert exc.value.code == 400


def test_restore_hold_of_volumes_applies_to_volumes_created_from_a_snapshot(client, moto_url):
    west = client(region="us-west-2")
    snap = west.create_snapshot(VolumeId=west.create_volume(Size=3, AvailabilityZone="us-west-2a")["VolumeId"])
    restored = west.create_volume(SnapshotId=snap["SnapshotId"], AvailabilityZone="us-west-2b")["VolumeId"]
    blank = west.create_volume(Size=1, AvailabilityZone="us-west-2b")["VolumeId"]
    _instance(west)  # its root volume is attached, not a restore
    states = lambda: {v["VolumeId"]: v["State"] for v in west.describe_volumes()["Volumes"]}  # noqa: E731
    hold = lambda status: _http(f"{moto_url}/_test/restore-hold", "POST",  # noqa: E731
                                {"region": "us-west-2", "kind": "volume", "status": status})
    hold("creating")
    # also a volume restored while the hold is on
    later = west.create_volume(SnapshotId=snap["SnapshotId"], AvailabilityZone="us-west-2c")["VolumeId"]
    got = states()
    assert (got[restored], got[later], got[blank]) == ("creating", "creating", "available")
    assert sorted(got.values()).count("in-use") == 1
    assert sorted(v["VolumeId"] for v in west.describe_volumes(
        Filters=[{"Name": "status", "Values": ["creating"]}])["Volumes"]) == sorted([restored, later])
    hold("error")
    assert west.describe_volumes(VolumeIds=[restored])["Volumes"][0]["State"] == "error"
    # another region's restores are not held
    eu = client(region="eu-west-1")
    eu_snap = eu.create_snapshot(VolumeId=eu.create_volume(Size=1, AvailabilityZone="eu-west-1a")["VolumeId"])
    eu_vol = eu.create_volume(SnapshotId=eu_snap["SnapshotId"], AvailabilityZone="eu-west-1a")["VolumeId"]
    assert eu.describe_volumes(VolumeIds=[eu_vol])["Volumes"][0]["State"] == "available"
    hold(None)
    assert states()[restored] == "available"
    hold("error")
    _http(f"{moto_url}/moto-api/reset", "POST")
    snap = west.create_snapshot(VolumeId=west.create_volume(Size=3, AvailabilityZone="us-west-2a")["VolumeId"])
    restored = west.create_volume(SnapshotId=snap["SnapshotId"], AvailabilityZone="us-west-2b")["VolumeId"]
    assert states()[restored] == "available"


def test_describe_instance_status_honours_its_filters(client):
    # moto knew only instance-state-name/-code and returned everything for the others.
    west = client(region="us-west-2")
    in_a = west.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1,
                              SubnetId=_default_subnet(west, "us-west-2a")["SubnetId"])["Instances"][0]["InstanceId"]
    in_b = west.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1,
                              SubnetId=_default_subnet(west, "us-west-2b")["SubnetId"])["Instances"][0]["InstanceId"]
    gone = _instance(west)
    west.terminate_instances(InstanceIds=[gone])
    f = lambda name, *values: [{"Name": name, "Values": list(values)}]  # noqa: E731
    assert list(_statuses(west, Filters=f("availability-zone", "us-west-2b"))) == [in_b]
    assert sorted(_statuses(west, Filters=f("instance-status.status", "ok"))) == sorted([in_a, in_b])
    assert _statuses(west, Filters=f("instance-status.status", "impaired", "initializing")) == {}
    assert _statuses(west, Filters=f("system-status.reachability", "failed")) == {}
    assert sorted(_statuses(west, Filters=f("system-status.status", "o*"))) == sorted([in_a, in_b])
    assert list(_statuses(west, IncludeAllInstances=True, Filters=f("instance-state-name", "terminated"))) == [gone]
    # By id, with IncludeAllInstances: a terminated instance is there, its checks not applicable.
    got = _statuses(west, InstanceIds=[in_a, gone], IncludeAllInstances=True)
    assert got[gone]["InstanceState"] == {"Code": 48, "Name": "terminated"}
    assert got[gone]["InstanceStatus"] == got[gone]["SystemStatus"] == {"Status": "not-applicable"}
    assert got[in_a]["InstanceState"] == {"Code": 16, "Name": "running"}
    assert got[in_a]["InstanceStatus"]["Status"] == got[in_a]["SystemStatus"]["Status"] == "ok"
    assert list(_statuses(west, InstanceIds=[in_a, gone])) == [in_a]  # running only without it
    assert _statuses(west, InstanceIds=[in_a], IncludeAllInstances=True,
                     Filters=f("availability-zone", "us-west-2b")) == {}
    with pytest.raises(ClientError) as exc:
        west.describe_instance_status(InstanceIds=["i-0123456789abcdef0"], IncludeAllInstances=True)
    assert _code(exc) == "InvalidInstanceID.NotFound"


def test_run_instances_refuses_an_instance_type_ec2_does_not_know(client):
    ec2 = client()
    with pytest.raises(ClientError) as exc:
        ec2.run_instances(ImageId="ami-12345678", InstanceType="m99.huge", MinCount=1, MaxCount=1)
    assert exc.value.response["Error"] == {"Code": "InvalidParameterValue",
                                           "Message": "Invalid value 'm99.huge' for InstanceType."}
    assert ec2.describe_instances()["Reservations"] == []
    ec2.run_instances(ImageId="ami-12345678", InstanceType="t3.micro", MinCount=1, MaxCount=1)


def test_run_instances_needs_an_image_of_the_region(client):
    west, dr_image = _dr_image(client, data_volumes=())
    east = client()
    home_image = east.describe_images(Owners=["self"])["Images"][0]["ImageId"]
    gone = west.copy_image(SourceImageId=home_image, SourceRegion="us-east-1", Name="gone")["ImageId"]
    west.deregister_image(ImageId=gone)
    for image in ("ami-0123456789abcdef0", home_image, gone):  # none, another region's, deregistered
        with pytest.raises(ClientError) as exc:
            west.run_instances(ImageId=image, InstanceType="t3.micro", MinCount=1, MaxCount=1)
        assert _code(exc) == "InvalidAMIID.NotFound"
        assert image in exc.value.response["Error"]["Message"]
    assert west.describe_instances()["Reservations"] == []
    west.run_instances(ImageId=dr_image, InstanceType="t3.micro", MinCount=1, MaxCount=1)
    # the tests' stand-in for someone's public image still launches
    west.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)


def test_an_instance_from_an_image_gets_the_images_volumes_tagged_and_keeps_a_data_volume_after_termination(client):
    west, image = _dr_image(client, data_volumes=(20,))
    mappings = {m["DeviceName"]: m["Ebs"] for m in _image(west, image)["BlockDeviceMappings"]}
    tags = _drill_tags("i-source")
    inst = west.run_instances(
        ImageId=image, InstanceType="t3.micro", MinCount=1, MaxCount=1,
        InstanceInitiatedShutdownBehavior="terminate",
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}, {"ResourceType": "volume", "Tags": tags}],
    )["Instances"][0]
    iid = inst["InstanceId"]
    assert _tags(inst) == _tags({"Tags": tags})
    assert inst["RootDeviceName"] == "/dev/sda1"
    volumes = {v["Attachments"][0]["Device"]: v for v in west.describe_volumes(
        Filters=[{"Name": "attachment.instance-id", "Values": [iid]}])["Volumes"]}
    assert set(volumes) == {"/dev/sda1", "/dev/sdf"}  # moto: one blank 8 GiB /dev/sda1
    launched = {m["DeviceName"]: m["Ebs"] for m in west.describe_instances(
        InstanceIds=[iid])["Reservations"][0]["Instances"][0]["BlockDeviceMappings"]}
    assert {d: e["DeleteOnTermination"] for d, e in launched.items()} == {"/dev/sda1": True, "/dev/sdf": False}
    for device, volume in volumes.items():
        assert volume["Size"] == mappings[device]["VolumeSize"]
        assert volume["SnapshotId"] == mappings[device]["SnapshotId"]
        assert launched[device]["VolumeId"] == volume["VolumeId"]
        assert launched[device]["DeleteOnTermination"] == mappings[device]["DeleteOnTermination"]
        assert _tags(volume) == _tags({"Tags": tags})
    west.terminate_instances(InstanceIds=[iid])
    described = west.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert described["State"]["Name"] == "terminated"
    # The root volume goes with the instance; the data volume (DeleteOnTermination false) stays.
    left = west.describe_volumes(Filters=[{"Name": "tag:Name", "Values": ["drill-i-source"]}])["Volumes"]
    assert [(v["VolumeId"], v["State"]) for v in left] == [(volumes["/dev/sdf"]["VolumeId"], "available")]
    with pytest.raises(ClientError) as exc:
        west.describe_volumes(VolumeIds=[volumes["/dev/sda1"]["VolumeId"]])
    assert _code(exc) == "InvalidVolume.NotFound"


def test_a_mapping_of_an_image_device_overrides_only_what_it_gives(client):
    # AWS: DeviceName=/dev/sdf,Ebs={DeleteOnTermination=true} keeps the image's snapshot and
    # size; moto wanted a size or a snapshot in every mapping, and made only the ones named.
    west, image = _dr_image(client, data_volumes=(20,))
    mappings = {m["DeviceName"]: m["Ebs"] for m in _image(west, image)["BlockDeviceMappings"]}
    tags = _drill_tags("i-source")
    iid = west.run_instances(
        ImageId=image, InstanceType="t3.micro", MinCount=1, MaxCount=1,
        BlockDeviceMappings=[{"DeviceName": "/dev/sdf", "Ebs": {"DeleteOnTermination": True}}],
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}, {"ResourceType": "volume", "Tags": tags}],
    )["Instances"][0]["InstanceId"]
    volumes = {v["Attachments"][0]["Device"]: v for v in west.describe_volumes(
        Filters=[{"Name": "attachment.instance-id", "Values": [iid]}])["Volumes"]}
    assert set(volumes) == {"/dev/sda1", "/dev/sdf"}
    launched = {m["DeviceName"]: m["Ebs"] for m in west.describe_instances(
        InstanceIds=[iid])["Reservations"][0]["Instances"][0]["BlockDeviceMappings"]}
    assert {d: e["DeleteOnTermination"] for d, e in launched.items()} == {"/dev/sda1": True, "/dev/sdf": True}
    for device, volume in volumes.items():
        assert volume["Size"] == mappings[device]["VolumeSize"]
        assert volume["SnapshotId"] == mappings[device]["SnapshotId"]
        assert _tags(volume) == _tags({"Tags": tags})
    west.terminate_instances(InstanceIds=[iid])
    left = west.describe_volumes(Filters=[{"Name": "tag:Name", "Values": ["drill-i-source"]}])["Volumes"]
    assert left == [], "every volume went with the instance"
    # A device the image does not have still needs a size or a snapshot.
    with pytest.raises(ClientError) as exc:
        west.run_instances(ImageId=image, InstanceType="t3.micro", MinCount=1, MaxCount=1,
                           BlockDeviceMappings=[{"DeviceName": "/dev/sdz", "Ebs": {"DeleteOnTermination": True}}])
    assert _code(exc) == "MissingParameter"


def test_run_instances_on_a_network_interface_lists_its_groups_and_no_public_address(client):
    west, image = _dr_image(client, data_volumes=())
    subnet = _default_subnet(west, "us-west-2c")
    assert subnet["MapPublicIpOnLaunch"] is True  # a default subnet: public unless told otherwise
    sg = west.create_security_group(GroupName="ec2-backup-drill", Description="drill", VpcId=subnet["VpcId"])["GroupId"]
    raw: dict = {}
    west.meta.events.register("after-call.ec2.DescribeInstances",
                              lambda http_response, **kw: raw.__setitem__("body", http_response.text))
    iid = west.run_instances(
        ImageId=image, InstanceType="t3.micro", MinCount=1, MaxCount=1,
        NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": subnet["SubnetId"],
                            "AssociatePublicIpAddress": False, "Groups": [sg]}],
    )["Instances"][0]["InstanceId"]
    inst = west.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert inst["SubnetId"] == subnet["SubnetId"] and inst["Placement"]["AvailabilityZone"] == "us-west-2c"
    assert inst["SecurityGroups"] == [{"GroupId": sg, "GroupName": "ec2-backup-drill"}]
    assert [g["GroupId"] for g in inst["NetworkInterfaces"][0]["Groups"]] == [sg]
    assert "PublicIpAddress" not in inst
    # AWS leaves Association out without a public address; moto answered an empty one.
    assert "Association" not in inst["NetworkInterfaces"][0]
    assert "<association" not in raw["body"]


def test_create_volume_from_a_snapshot_tags_it_and_names_a_missing_snapshot(client):
    west = client(region="us-west-2")
    snap = west.create_snapshot(VolumeId=west.create_volume(Size=6, AvailabilityZone="us-west-2a")["VolumeId"])
    tags = _drill_tags("vol-source")
    vol = west.create_volume(SnapshotId=snap["SnapshotId"], AvailabilityZone="us-west-2b",
                             TagSpecifications=[{"ResourceType": "volume", "Tags": tags}])
    described = west.describe_volumes(VolumeIds=[vol["VolumeId"]])["Volumes"][0]
    assert (described["State"], described["Size"], described["SnapshotId"], described["AvailabilityZone"]) == (
        "available", 6, snap["SnapshotId"], "us-west-2b")
    assert _tags(described) == _tags({"Tags": tags})
    with pytest.raises(ClientError) as exc:
        west.create_volume(SnapshotId=snap["SnapshotId"], AvailabilityZone="us-west-2b",
                           TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])
    assert _code(exc) == "InvalidParameterValue"
    with pytest.raises(ClientError) as exc:
        west.create_volume(SnapshotId="snap-0123456789abcdef0", AvailabilityZone="us-west-2b")
    assert exc.value.response["Error"] == {"Code": "InvalidSnapshot.NotFound",
                                           "Message": "The snapshot 'snap-0123456789abcdef0' does not exist."}
    west.delete_volume(VolumeId=vol["VolumeId"])
    assert vol["VolumeId"] not in [v["VolumeId"] for v in west.describe_volumes()["Volumes"]]
    with pytest.raises(ClientError) as exc:
        west.describe_volumes(VolumeIds=[vol["VolumeId"]])
    assert exc.value.response["Error"] == {"Code": "InvalidVolume.NotFound",
                                           "Message": f"The volume '{vol['VolumeId']}' does not exist."}


def test_a_client_token_makes_one_instance_or_volume_and_answers_it_again(client):
    # The EC2 idempotency guide: the same token again answers what the first call made; with any
    # parameter but the Availability Zone changed, IdempotentParameterMismatch. moto made another.
    west, image = _dr_image(client, data_volumes=())
    tags = [{"ResourceType": "instance", "Tags": _drill_tags("i-1")}]
    run = dict(ImageId=image, InstanceType="t3.micro", MinCount=1, MaxCount=1, ClientToken="run-1-i-1",
               TagSpecifications=tags)
    first = west.run_instances(**run)["Instances"][0]["InstanceId"]
    assert west.run_instances(**run)["Instances"][0]["InstanceId"] == first
    assert [i["InstanceId"] for r in west.describe_instances()["Reservations"] for i in r["Instances"]] == [first]
    retagged = [{"ResourceType": "instance", "Tags": _drill_tags("i-1") + [{"Key": "at", "Value": "later"}]}]
    with pytest.raises(ClientError) as exc:
        west.run_instances(**dict(run, TagSpecifications=retagged))
    assert _code(exc) == "IdempotentParameterMismatch"
    west.terminate_instances(InstanceIds=[first])
    assert west.run_instances(**run)["Instances"][0]["InstanceId"] == first  # no new instance
    assert [i["State"]["Name"] for r in west.describe_instances()["Reservations"] for i in r["Instances"]] == [
        "terminated"]
    # scoped to the region
    assert client(region="eu-west-1").run_instances(
        ImageId="ami-12345678", MinCount=1, MaxCount=1, ClientToken="run-1-i-1")["Instances"][0]["InstanceId"] != first

    snap = west.create_snapshot(VolumeId=west.create_volume(Size=2, AvailabilityZone="us-west-2a")["VolumeId"])
    create = dict(SnapshotId=snap["SnapshotId"], AvailabilityZone="us-west-2b", ClientToken="run-1-vol-1",
                  TagSpecifications=[{"ResourceType": "volume", "Tags": _drill_tags("vol-1")}])
    vol = west.create_volume(**create)["VolumeId"]
    assert west.create_volume(**create)["VolumeId"] == vol
    assert west.create_volume(**dict(create, AvailabilityZone="us-west-2c"))["VolumeId"] == vol
    assert len(west.describe_volumes(Filters=[{"Name": "snapshot-id", "Values": [snap["SnapshotId"]]}])["Volumes"]) == 1
    with pytest.raises(ClientError) as exc:
        west.create_volume(**dict(create, TagSpecifications=[{"ResourceType": "volume", "Tags": _drill_tags("vol-2")}]))
    assert _code(exc) == "IdempotentParameterMismatch"
    west.delete_volume(VolumeId=vol)
    gone = west.create_volume(**create)
    assert (gone["VolumeId"], gone["State"]) == (vol, "deleted")
    assert west.describe_volumes(Filters=[{"Name": "snapshot-id", "Values": [snap["SnapshotId"]]}])["Volumes"] == []

def test_drill_security_group_and_default_subnets_as_moto_answers(client):
    # moto's own behaviour, pinned because the drill relies on it: a default subnet per zone in
    # the DR regions, and a security group found again by name within its VPC.
    for region in ("us-west-2", "eu-west-1"):
        ec2 = client(region=region)
        subnets = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
        assert len({s["AvailabilityZone"] for s in subnets}) == len(subnets) >= 3
        vpc = subnets[0]["VpcId"]
        sg = ec2.create_security_group(GroupName="ec2-backup-drill", Description="drill", VpcId=vpc, TagSpecifications=[
            {"ResourceType": "security-group", "Tags": [{"Key": "backup:managed-by", "Value": "ec2-backup"}]}])["GroupId"]
        found = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["ec2-backup-drill"]},
                                                      {"Name": "vpc-id", "Values": [vpc]}])["SecurityGroups"]
        assert [(g["GroupId"], g["IpPermissions"], _tags(g)) for g in found] == [
            (sg, [], {"backup:managed-by": "ec2-backup"})]
        assert ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["ec2-backup-drill"]},
                                                     {"Name": "vpc-id", "Values": ["vpc-0000000"]}])["SecurityGroups"] == []
        with pytest.raises(ClientError) as exc:
            ec2.create_security_group(GroupName="ec2-backup-drill", Description="drill", VpcId=vpc)
        assert _code(exc) == "InvalidGroup.Duplicate"


def test_s3_conditional_put_writes_an_evidence_record_once(client):
    # moto's own behaviour, pinned because the drill's evidence relies on it: PutObject with
    # If-None-Match: * answers 412 PreconditionFailed when the key exists, and leaves it as it was.
    s3 = client("s3")
    s3.create_bucket(Bucket="evidence")
    key = "drills/2026/12/06/run-1/us-west-2/i-1.json"
    s3.put_object(Bucket="evidence", Key=key, Body=b'{"result": "passed"}', IfNoneMatch="*")
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket="evidence", Key=key, Body=b'{"result": "failed"}', IfNoneMatch="*")
    assert _code(exc) == "PreconditionFailed"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert s3.get_object(Bucket="evidence", Key=key)["Body"].read() == b'{"result": "passed"}'
    for day in ("05", "07"):
        s3.put_object(Bucket="evidence", Key=f"drills/2026/12/{day}/run-{day}/eu-west-1/vol-1.json", Body=b"{}")
    s3.put_object(Bucket="evidence", Key="elsewhere/x.json", Body=b"{}")
    listed = s3.list_objects_v2(Bucket="evidence", Prefix="drills/", StartAfter="drills/2026/12/06")
    assert [o["Key"] for o in listed["Contents"]] == [key, "drills/2026/12/07/run-07/eu-west-1/vol-1.json"]
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket="evidence", Key="drills/none.json")
    assert _code(exc) == "NoSuchKey"

# ---------------------------------------------------------------- SQS


def _sqs_queues(sqs, name: str, max_receives: int, **attributes: str) -> tuple[str, str]:
    """A queue that redrives to a dead-letter queue of its own after `max_receives` receives."""
    fifo = name.endswith(".fifo")
    extra = {"FifoQueue": "true"} if fifo else {}
    dlq = sqs.create_queue(QueueName=f"{name[:-5]}-dlq.fifo" if fifo else f"{name}-dlq", Attributes=extra)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives})
    url = sqs.create_queue(QueueName=name, Attributes={**extra, **attributes, "RedrivePolicy": policy})["QueueUrl"]
    return url, dlq


def test_sqs_redrive_moves_a_message_to_the_dead_letter_queue_once_its_receives_reach_max_receive_count(client):
    # moto's own behaviour, pinned because tests/esm.py relies on it: as SQS, the receive after
    # the maxReceiveCount-th moves the message instead of delivering it.
    sqs = client("sqs")
    url, dlq = _sqs_queues(sqs, "redriven", 2, VisibilityTimeout="1")
    sent = sqs.send_message(QueueUrl=url, MessageBody="poison")["MessageId"]
    counts = []
    for _ in range(3):
        got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2, MessageSystemAttributeNames=["All"])
        counts += [m["Attributes"]["ApproximateReceiveCount"] for m in got.get("Messages", [])]
    assert counts == ["1", "2"]
    moved = sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=1)["Messages"]
    assert [(m["MessageId"], m["Body"]) for m in moved] == [(sent, "poison")]
    assert "Messages" not in sqs.receive_message(QueueUrl=url)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_sqs_long_poll_on_a_fifo_group_in_flight_neither_spins_nor_answers_late(tmp_path):
    proc, url = start_moto(tmp_path)
    try:
        sqs = boto3.client("sqs", region_name="us-east-1", endpoint_url=url,
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        queue = sqs.create_queue(QueueName="work.fifo", Attributes={
            "FifoQueue": "true", "ContentBasedDeduplication": "true", "VisibilityTimeout": "30"})["QueueUrl"]
        for body in ("a0", "a1"):
            sqs.send_message(QueueUrl=queue, MessageBody=body, MessageGroupId="a")
        first = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1)["Messages"][0]
        # a1 is visible but not deliverable while a0 is in flight: moto used to spin here.
        cpu, started = _cpu_seconds(proc.pid), time.monotonic()
        assert "Messages" not in sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=2)
        assert time.monotonic() - started >= 1.9
        assert _cpu_seconds(proc.pid) - cpu < 0.5
        # Once a0 is deleted, a waiting long poll answers with a1 at once, as SQS does.
        threading.Timer(0.5, sqs.delete_message, kwargs={
            "QueueUrl": queue, "ReceiptHandle": first["ReceiptHandle"]}).start()
        started = time.monotonic()
        got = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=10)["Messages"]
        assert [m["Body"] for m in got] == ["a1"]
        assert time.monotonic() - started < 2
    finally:
        stop(proc)


def test_sqs_fifo_messages_carry_increasing_sequence_numbers(client):
    sqs = client("sqs")
    queue = sqs.create_queue(QueueName="numbered.fifo", Attributes={
        "FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
    sent = [sqs.send_message(QueueUrl=queue, MessageBody=f"m{i}", MessageGroupId="g")["SequenceNumber"]
            for i in range(3)]
    sent.append(sqs.send_message(QueueUrl=queue, MessageBody="m3", MessageGroupId="g",
                                 MessageDeduplicationId="explicit")["SequenceNumber"])
    got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10,
                              MessageSystemAttributeNames=["All"])["Messages"]
    assert [m["Body"] for m in got] == ["m0", "m1", "m2", "m3"]
    assert [m["Attributes"]["SequenceNumber"] for m in got] == sent
    assert all(len(n) == 20 for n in sent)
    assert [int(n) for n in sent] == sorted(int(n) for n in sent) and len(set(sent)) == 4


# ---------------------------------------------------------------- --exit-with-stdin


def test_exit_with_stdin_stops_the_server_when_the_parent_closes_the_pipe(tmp_path):
    # The Rust harness holds the pipe; its exit (however it exits) closes it.
    proc, url = start_moto(tmp_path, args=["--exit-with-stdin"], stdin=subprocess.PIPE)
    try:
        assert _http(f"{url}/_test/calls") == {}
        proc.stdin.close()
        assert proc.wait(timeout=15) == 0
        with pytest.raises(urllib.error.URLError):
            _http(f"{url}/_test/calls")
    finally:
        stop(proc)


def test_without_exit_with_stdin_the_server_outlives_its_stdin(tmp_path):
    # scripts/moto starts it in the background, where stdin is /dev/null: already at its end.
    proc, url = start_moto(tmp_path, stdin=subprocess.DEVNULL)
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=2)
        assert _http(f"{url}/_test/calls") == {}
    finally:
        stop(proc)


def test_a_receive_from_a_queue_of_thousands_stays_quick_and_delivers_what_is_retained(client):
    # Patch (i): moto computed all the queue's attributes (a pass over the queue each) for
    # every message it looked at, so one receive cost the queue's length squared.
    sqs = client("sqs")
    url = sqs.create_queue(QueueName="long-queue", Attributes={"MessageRetentionPeriod": "600"})["QueueUrl"]
    for start in range(0, 3000, 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "MessageBody": f"m{start + i}"} for i in range(10)])
    started = time.monotonic()
    got = []
    for _ in range(5):
        got += sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60)["Messages"]
    # Each of these took tens of seconds before.
    assert time.monotonic() - started < 10
    assert len({m["Body"] for m in got}) == 50
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (attributes["ApproximateNumberOfMessages"], attributes["ApproximateNumberOfMessagesNotVisible"]) == ("2950", "50")


# ---------------------------------------------------------------- (l) snapshot locks, image protection


def _utc(text: str):
    import datetime
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _at(moto_url: str, when: str) -> None:
    _http(f"{moto_url}/_test/clock", "POST", {"now": when})


def _new_snapshot(ec2) -> str:
    vol = ec2.create_volume(Size=1, AvailabilityZone="us-east-1a")["VolumeId"]
    return ec2.create_snapshot(VolumeId=vol)["SnapshotId"]


def _lock_fields(answer: dict) -> dict:
    return {k: v for k, v in answer.items() if k != "ResponseMetadata"}


def test_a_governance_lock_answers_its_fields_and_refuses_delete_until_unlocked(client, moto_url):
    ec2 = client()
    _at(moto_url, "2030-01-01T00:00:00Z")
    sid = _new_snapshot(ec2)
    got = _lock_fields(ec2.lock_snapshot(SnapshotId=sid, LockMode="governance", LockDuration=30))
    t0 = _utc("2030-01-01T00:00:00Z")
    assert got == {"SnapshotId": sid, "LockState": "governance", "LockDuration": 30,
                   "LockCreatedOn": t0, "LockDurationStartTime": t0,
                   "LockExpiresOn": _utc("2030-01-31T00:00:00Z")}
    with pytest.raises(ClientError) as exc:
        ec2.delete_snapshot(SnapshotId=sid)
    assert _code(exc) == "OperationNotPermitted" and sid in str(exc.value)
    assert [s["SnapshotId"] for s in ec2.describe_snapshots(SnapshotIds=[sid])["Snapshots"]] == [sid]
    assert ec2.unlock_snapshot(SnapshotId=sid)["SnapshotId"] == sid
    assert ec2.describe_locked_snapshots(SnapshotIds=[sid])["Snapshots"] == []
    ec2.delete_snapshot(SnapshotId=sid)


def test_a_compliance_lock_moves_from_cooloff_to_compliance_to_expired_with_the_clock(client, moto_url):
    ec2 = client()
    _at(moto_url, "2030-01-01T00:00:00Z")
    sid, other = _new_snapshot(ec2), _new_snapshot(ec2)
    got = ec2.lock_snapshot(SnapshotId=sid, LockMode="compliance", CoolOffPeriod=24, LockDuration=3)
    assert (got["LockState"], got["CoolOffPeriod"]) == ("compliance-cooloff", 24)
    assert got["CoolOffPeriodExpiresOn"] == _utc("2030-01-02T00:00:00Z")
    assert got["LockExpiresOn"] == _utc("2030-01-04T00:00:00Z")
    # In its cooling-off period a compliance lock can still be unlocked.
    ec2.lock_snapshot(SnapshotId=other, LockMode="compliance", CoolOffPeriod=1, LockDuration=3)
    ec2.unlock_snapshot(SnapshotId=other)
    ec2.delete_snapshot(SnapshotId=other)

    _at(moto_url, "2030-01-02T01:00:00Z")
    state = lambda: ec2.describe_locked_snapshots(SnapshotIds=[sid])["Snapshots"][0]["LockState"]  # noqa: E731
    assert state() == "compliance"
    for call in (lambda: ec2.unlock_snapshot(SnapshotId=sid),
                 lambda: ec2.delete_snapshot(SnapshotId=sid),
                 lambda: ec2.lock_snapshot(SnapshotId=sid, LockMode="compliance", LockDuration=2),
                 lambda: ec2.lock_snapshot(SnapshotId=sid, LockMode="governance", LockDuration=9),
                 lambda: ec2.lock_snapshot(SnapshotId=sid, LockMode="compliance", LockDuration=9,
                                           CoolOffPeriod=1)):
        with pytest.raises(ClientError) as exc:
            call()
        assert _code(exc) == "OperationNotPermitted"
    # Only a later expiry is accepted; the same one again changes nothing.
    assert ec2.lock_snapshot(SnapshotId=sid, LockMode="compliance",
                             ExpirationDate=_utc("2030-01-04T00:00:00Z"))["LockState"] == "compliance"
    assert ec2.lock_snapshot(SnapshotId=sid, LockMode="compliance",
                             LockDuration=5)["LockExpiresOn"] == _utc("2030-01-06T00:00:00Z")

    _at(moto_url, "2030-01-06T00:00:01Z")
    assert state() == "expired"
    ec2.delete_snapshot(SnapshotId=sid)


def test_lock_snapshot_parameters_as_the_api_reference_gives_them(client, moto_url):
    # botocore checks the ranges before sending; the Rust SDK does not, so the server must.
    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=moto_url,
                       aws_access_key_id="testing", aws_secret_access_key="testing",
                       config=Config(parameter_validation=False, retries={"max_attempts": 1}))
    _at(moto_url, "2030-01-01T00:00:00Z")
    sid = _new_snapshot(ec2)
    bad = [
        ({"LockMode": "governance"}, "MissingParameter"),
        ({"LockMode": "governance", "LockDuration": 1,
          "ExpirationDate": _utc("2030-02-01T00:00:00Z")}, "InvalidParameterCombination"),
        ({"LockMode": "governance", "LockDuration": 1, "CoolOffPeriod": 2}, "InvalidParameterCombination"),
        ({"LockMode": "compliance", "LockDuration": 1, "CoolOffPeriod": 73}, "InvalidParameterValue"),
        ({"LockMode": "governance", "LockDuration": 0}, "InvalidParameterValue"),
        ({"LockMode": "governance", "LockDuration": 36501}, "InvalidParameterValue"),
        ({"LockMode": "governance", "ExpirationDate": _utc("2029-12-31T00:00:00Z")}, "InvalidParameterValue"),
        ({"LockMode": "sealed", "LockDuration": 1}, "InvalidParameterValue"),
    ]
    for kwargs, code in bad:
        with pytest.raises(ClientError) as exc:
            ec2.lock_snapshot(SnapshotId=sid, **kwargs)
        assert _code(exc) == code, kwargs
    with pytest.raises(ClientError) as exc:
        ec2.lock_snapshot(SnapshotId="snap-00000000000000000", LockMode="governance", LockDuration=1)
    assert _code(exc) == "InvalidSnapshot.NotFound"
    assert ec2.describe_locked_snapshots()["Snapshots"] == []
    # Locked until a date: no LockDuration in the answer; compliance without a cool-off is at once
    # "compliance".
    got = ec2.lock_snapshot(SnapshotId=sid, LockMode="compliance",
                            ExpirationDate=_utc("2030-03-01T12:00:00Z"))
    assert "LockDuration" not in got and "CoolOffPeriod" not in got
    assert (got["LockState"], got["LockExpiresOn"]) == ("compliance", _utc("2030-03-01T12:00:00Z"))


def test_describe_locked_snapshots_by_ids_by_lock_state_and_in_pages(client, moto_url):
    ec2 = client()
    _at(moto_url, "2030-01-01T00:00:00Z")
    governance = [_new_snapshot(ec2) for _ in range(4)]
    cooloff = [_new_snapshot(ec2) for _ in range(3)]
    plain = _new_snapshot(ec2)
    for sid in governance:
        ec2.lock_snapshot(SnapshotId=sid, LockMode="governance", LockDuration=7)
    for sid in cooloff:
        ec2.lock_snapshot(SnapshotId=sid, LockMode="compliance", CoolOffPeriod=72, LockDuration=7)
    every = ec2.describe_locked_snapshots()["Snapshots"]
    assert sorted(s["SnapshotId"] for s in every) == sorted(governance + cooloff)
    assert {s["OwnerId"] for s in every} == {ACCOUNT}
    by_state = ec2.describe_locked_snapshots(
        Filters=[{"Name": "lock-state", "Values": ["compliance-cooloff"]}])["Snapshots"]
    assert sorted(s["SnapshotId"] for s in by_state) == sorted(cooloff)
    assert ec2.describe_locked_snapshots(SnapshotIds=[plain, cooloff[0]])["Snapshots"][0]["SnapshotId"] == cooloff[0]
    pages = _pages(ec2.describe_locked_snapshots, "Snapshots", MaxResults=5)
    assert [len(p) for p in pages] == [5, 2]
    assert sorted(s["SnapshotId"] for p in pages for s in p) == sorted(governance + cooloff)
    with pytest.raises(ClientError) as exc:
        ec2.describe_locked_snapshots(SnapshotIds=["snap-00000000000000000"])
    assert _code(exc) == "InvalidSnapshot.NotFound"


def test_deregister_image_deleting_its_snapshots_leaves_a_locked_one_in_place(client):
    ec2 = client()
    image_id = ec2.create_image(InstanceId=_instance(ec2, data_volumes=[20]), Name="locked-one")["ImageId"]
    root, data = _snapshot_ids(_image(ec2, image_id))
    ec2.lock_snapshot(SnapshotId=data, LockMode="governance", LockDuration=1)
    got = ec2.deregister_image(ImageId=image_id, DeleteAssociatedSnapshots=True)
    assert sorted((r["SnapshotId"], r["ReturnCode"]) for r in got["DeleteSnapshotResults"]) == sorted(
        [(root, "success"), (data, "client-error")])
    assert ec2.describe_images(Owners=["self"])["Images"] == []
    assert [s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]] == [data]


def test_deregistration_protection_without_cooldown(client):
    ec2 = client()
    image_id = ec2.create_image(InstanceId=_instance(ec2), Name="protected")["ImageId"]
    assert _image(ec2, image_id)["DeregistrationProtection"] == "disabled"
    assert ec2.enable_image_deregistration_protection(ImageId=image_id)["Return"] == "enabled-without-cooldown"
    assert _image(ec2, image_id)["DeregistrationProtection"] == "enabled-without-cooldown"
    with pytest.raises(ClientError) as exc:
        ec2.deregister_image(ImageId=image_id, DeleteAssociatedSnapshots=True)
    assert _code(exc) == "OperationNotPermitted" and image_id in str(exc.value)
    assert len(_snapshot_ids(_image(ec2, image_id))) == 1
    assert ec2.disable_image_deregistration_protection(ImageId=image_id)["Return"] == "disabled"
    ec2.deregister_image(ImageId=image_id)
    with pytest.raises(ClientError) as exc:
        ec2.enable_image_deregistration_protection(ImageId=image_id)
    assert _code(exc) == "InvalidAMIID.NotFound"


def test_deregistration_protection_with_cooldown_holds_24_hours_after_it_is_disabled(client, moto_url):
    ec2 = client()
    _at(moto_url, "2030-01-01T00:00:00Z")
    image_id = ec2.create_image(InstanceId=_instance(ec2), Name="cooled")["ImageId"]
    assert ec2.enable_image_deregistration_protection(
        ImageId=image_id, WithCooldown=True)["Return"] == "enabled-with-cooldown"
    _at(moto_url, "2030-01-05T06:00:00Z")
    until = "disabled after 2030-01-06T06:00:00.000Z"
    assert ec2.disable_image_deregistration_protection(ImageId=image_id)["Return"] == until
    _at(moto_url, "2030-01-06T05:59:59Z")
    assert _image(ec2, image_id)["DeregistrationProtection"] == until
    with pytest.raises(ClientError) as exc:
        ec2.deregister_image(ImageId=image_id)
    assert _code(exc) == "OperationNotPermitted"
    _at(moto_url, "2030-01-06T06:00:00Z")
    assert _image(ec2, image_id)["DeregistrationProtection"] == "disabled"
    ec2.deregister_image(ImageId=image_id)


def _other_account(client, account: str) -> dict:
    """Credentials of `account`: moto's STS answers AssumeRole with keys of the role's account."""
    creds = client("sts").assume_role(RoleArn=f"arn:aws:iam::{account}:role/vault",
                                      RoleSessionName="other-account")["Credentials"]
    return {"aws_access_key_id": creds["AccessKeyId"], "aws_secret_access_key": creds["SecretAccessKey"],
            "aws_session_token": creds["SessionToken"]}


def _queue_target(events, sqs, name: str, pattern: dict) -> str:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=name, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=name, Targets=[{"Id": "q", "Arn": arn}])
    return url


def _bodies(sqs, url: str) -> list[dict]:
    return [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])]


def test_an_event_a_target_gets_carries_its_account(client):
    events, sqs = client("events"), client("sqs")
    url = _queue_target(events, sqs, "own", {"source": ["ec2-backup"]})
    events.put_events(Entries=[{"Source": "ec2-backup", "DetailType": "Backup Shared", "Detail": "{}"}])
    assert [b["account"] for b in _bodies(sqs, url)] == [ACCOUNT]


def test_an_event_reaches_another_accounts_bus_as_the_senders_only_when_its_policy_admits_the_sender(client, moto_url):
    from botocore.config import Config as _Config
    vault, third = "210987654321", "333344445555"

    def clients(account):
        kw = _other_account(client, account)
        make = lambda svc: boto3.client(svc, region_name="us-east-1", endpoint_url=moto_url,  # noqa: E731
                                        config=_Config(retries={"max_attempts": 1}), **kw)
        return make("events"), make("sqs")

    home = client("events")
    v_events, v_sqs = clients(vault)
    t_events, t_sqs = clients(third)
    inbox = _queue_target(v_events, v_sqs, "inbox", {"source": ["ec2-backup"], "account": [ACCOUNT]})
    t_inbox = _queue_target(t_events, t_sqs, "t-inbox", {"source": ["ec2-backup"]})
    # The vault forwards what it gets on to a third account, which admits everyone.
    v_events.put_rule(Name="onward", EventPattern=json.dumps({"source": ["ec2-backup"]}))
    v_events.put_targets(Rule="onward", Targets=[{"Id": "t", "Arn": f"arn:aws:events:us-east-1:{third}:event-bus/default"}])
    t_events.put_permission(Action="events:PutEvents", Principal="*", StatementId="all")
    home.put_rule(Name="to-vault", EventPattern=json.dumps({"source": ["ec2-backup"]}))
    home.put_targets(Rule="to-vault", Targets=[{
        "Id": "v", "Arn": f"arn:aws:events:us-east-1:{vault}:event-bus/default",
        "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/forward"}])
    entry = {"Source": "ec2-backup", "DetailType": "Backup Shared", "Detail": json.dumps({"backup": "ami-1"}),
             "Resources": ["arn:aws:ec2:us-east-1::image/ami-1"]}

    home.put_events(Entries=[entry])  # the vault's bus admits nobody yet
    assert _bodies(v_sqs, inbox) == []
    v_events.put_permission(Action="events:PutEvents", Principal=ACCOUNT, StatementId="home")
    home.put_events(Entries=[entry])
    got = _bodies(v_sqs, inbox)
    assert [(b["account"], b["source"], b["detail"], b["resources"]) for b in got] == [
        (ACCOUNT, "ec2-backup", {"backup": "ami-1"}, entry["Resources"])]
    assert _bodies(t_sqs, t_inbox) == []  # not sent on to a third account

# ---------------------------------------------------------------- cross-account sharing (k)

HOME_ACCOUNT = ACCOUNT  # what the key "testing" is, in moto
DR_ACCOUNT = "111122223333"
STRANGER_ACCOUNT = "444455556666"


@pytest.fixture
def account(moto_url):
    """A client in another account: moto_server takes a 12-digit access key id for that account."""
    def make(account_id: str, service: str = "ec2", region: str = "us-east-1"):
        return boto3.client(
            service, region_name=region, endpoint_url=moto_url,
            aws_access_key_id=account_id, aws_secret_access_key="testing",
            config=Config(retries={"max_attempts": 1, "mode": "standard"}),
        )
    return make


def _shared_backup(ec2, name: str = "backup-shared", kms_key: str | None = None,
                   encrypted: bool = False) -> tuple[str, list[str]]:
    """An image of an instance with an 8 GiB root and a 20 GiB data volume (encrypted as asked),
    tagged; (image id, its snapshot ids)."""
    inst = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)["Instances"][0]
    extra = {"KmsKeyId": kms_key} if kms_key else {}
    vol = ec2.create_volume(Size=20, AvailabilityZone=inst["Placement"]["AvailabilityZone"],
                            Encrypted=encrypted or bool(kms_key), **extra)
    ec2.attach_volume(VolumeId=vol["VolumeId"], InstanceId=inst["InstanceId"], Device="/dev/sdf")
    image_id = ec2.create_image(InstanceId=inst["InstanceId"], Name=name, TagSpecifications=[
        {"ResourceType": "image", "Tags": [{"Key": "P:secret", "Value": "home-only"}]},
        {"ResourceType": "snapshot", "Tags": [{"Key": "P:secret", "Value": "home-only"}]},
    ])["ImageId"]
    return image_id, _snapshot_ids(_image(ec2, image_id))


def _share(ec2, image_id: str, snapshot_ids: list[str], with_account: str = DR_ACCOUNT) -> None:
    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": with_account}]})
    for sid in snapshot_ids:
        ec2.modify_snapshot_attribute(SnapshotId=sid, Attribute="createVolumePermission",
                                      CreateVolumePermission={"Add": [{"UserId": with_account}]})


def test_share_a_12_digit_access_key_is_that_accounts_and_assume_role_gives_the_roles(client, account):
    # moto took any access key it did not know for the default account.
    assert account(DR_ACCOUNT, "sts").get_caller_identity()["Account"] == DR_ACCOUNT
    assert client("sts").get_caller_identity()["Account"] == HOME_ACCOUNT
    creds = client("sts").assume_role(RoleArn=f"arn:aws:iam::{STRANGER_ACCOUNT}:role/vault",
                                      RoleSessionName="vault")["Credentials"]
    assumed = boto3.client("sts", region_name="us-east-1", endpoint_url=client("sts").meta.endpoint_url,
                           aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                           aws_session_token=creds["SessionToken"])
    assert assumed.get_caller_identity()["Account"] == STRANGER_ACCOUNT
    # Each account has its own EC2.
    vol = account(DR_ACCOUNT).create_volume(Size=1, AvailabilityZone="us-east-1a")["VolumeId"]
    assert [v["VolumeId"] for v in account(DR_ACCOUNT).describe_volumes()["Volumes"]] == [vol]
    assert vol not in [v["VolumeId"] for v in client().describe_volumes()["Volumes"]]


def test_share_an_image_shared_with_an_account_is_visible_to_it_without_the_owners_tags(client, account):
    home, dr = client(), account(DR_ACCOUNT)
    image_id, snaps = _shared_backup(home)
    assert dr.describe_images(ExecutableUsers=["self"])["Images"] == []
    home.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": DR_ACCOUNT}]})
    assert home.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")[
        "LaunchPermissions"] == [{"UserId": DR_ACCOUNT}]

    for seen in (dr.describe_images(ExecutableUsers=["self"])["Images"],
                 dr.describe_images(ExecutableUsers=["self"], Owners=[HOME_ACCOUNT])["Images"],
                 dr.describe_images(Owners=[HOME_ACCOUNT])["Images"],
                 dr.describe_images(ImageIds=[image_id])["Images"]):
        assert [i["ImageId"] for i in seen] == [image_id]
        # AWS shares no user tags: the DR account sees the owner, the mappings, no tags.
        assert seen[0]["OwnerId"] == HOME_ACCOUNT and seen[0].get("Tags", []) == []
        assert _snapshot_ids(seen[0]) == snaps
    assert dr.describe_images(Owners=["self"])["Images"] == []
    assert _tags(_image(home, image_id)) == {"P:secret": "home-only"}
    # A public image is "all"'s, not "self"'s (moto returned it for any ExecutableUsers).
    assert FOREIGN_AMI["ami_id"] not in [i["ImageId"] for i in dr.describe_images(ExecutableUsers=["self"])["Images"]]
    assert FOREIGN_AMI["ami_id"] in [i["ImageId"] for i in dr.describe_images(ExecutableUsers=["all"])["Images"]]
    # Not shared with a third account.
    stranger = account(STRANGER_ACCOUNT)
    assert stranger.describe_images(ExecutableUsers=["self"])["Images"] == []
    with pytest.raises(ClientError) as exc:
        stranger.describe_images(ImageIds=[image_id])
    assert _code(exc) == "InvalidAMIID.NotFound"

    home.modify_image_attribute(ImageId=image_id, LaunchPermission={"Remove": [{"UserId": DR_ACCOUNT}]})
    assert home.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")["LaunchPermissions"] == []
    assert dr.describe_images(ExecutableUsers=["self"])["Images"] == []
    with pytest.raises(ClientError) as exc:
        dr.describe_images(ImageIds=[image_id])
    assert _code(exc) == "InvalidAMIID.NotFound"


def test_share_only_the_owner_reads_or_changes_an_images_launch_permissions(client, account):
    home, dr = client(), account(DR_ACCOUNT)
    image_id, _ = _shared_backup(home)
    home.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": DR_ACCOUNT}]})
    for call in (lambda: dr.modify_image_attribute(ImageId=image_id,
                                                   LaunchPermission={"Add": [{"UserId": STRANGER_ACCOUNT}]}),
                 lambda: dr.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")):
        with pytest.raises(ClientError) as exc:
            call()
        assert _code(exc) == "AuthFailure"
        assert image_id in exc.value.response["Error"]["Message"]
    # One it does not see does not exist for it; one nobody has either (moto: HTTP 500).
    for ec2, ami in ((account(STRANGER_ACCOUNT), image_id), (home, "ami-0123456789abcdef0")):
        with pytest.raises(ClientError) as exc:
            ec2.describe_image_attribute(ImageId=ami, Attribute="launchPermission")
        assert _code(exc) == "InvalidAMIID.NotFound"
    assert home.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")[
        "LaunchPermissions"] == [{"UserId": DR_ACCOUNT}]


def test_share_a_snapshot_shared_with_an_account_is_restorable_by_it_without_the_owners_tags(client, account):
    home, dr = client(), account(DR_ACCOUNT)
    vol = home.create_volume(Size=4, AvailabilityZone="us-east-1a")["VolumeId"]
    snap = home.create_snapshot(VolumeId=vol, TagSpecifications=[
        {"ResourceType": "snapshot", "Tags": [{"Key": "P:secret", "Value": "home-only"}]}])["SnapshotId"]
    own = dr.create_snapshot(VolumeId=dr.create_volume(Size=1, AvailabilityZone="us-east-1a")["VolumeId"])["SnapshotId"]
    # The structured form, as the SDKs send it (moto ignored it: only OperationType + UserIds worked).
    home.modify_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission",
                                   CreateVolumePermission={"Add": [{"UserId": DR_ACCOUNT}]})
    assert home.describe_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission")[
        "CreateVolumePermissions"] == [{"UserId": DR_ACCOUNT}]

    def ids(**kwargs) -> list[str]:
        return sorted(s["SnapshotId"] for s in dr.describe_snapshots(**kwargs)["Snapshots"])

    # "self": own or explicitly shared; no option: all it may restore from (and, as moto has it,
    # the snapshot of the public image loaded from MOTO_AMIS_PATH).
    assert ids(RestorableByUserIds=["self"]) == sorted([snap, own])
    assert {snap, own} <= set(ids())
    assert ids(RestorableByUserIds=["self"], OwnerIds=[HOME_ACCOUNT]) == ids(OwnerIds=[HOME_ACCOUNT]) == [snap]
    assert ids(OwnerIds=["self"]) == [own]
    shared, = dr.describe_snapshots(SnapshotIds=[snap])["Snapshots"]
    assert shared["OwnerId"] == HOME_ACCOUNT and shared.get("Tags", []) == []
    # The owner: an account id it shared with.
    assert [s["SnapshotId"] for s in home.describe_snapshots(RestorableByUserIds=[DR_ACCOUNT])["Snapshots"]] == [snap]
    # Only the owner reads or changes who may (moto: InvalidSnapshot.NotFound, no message).
    for call in (lambda: dr.modify_snapshot_attribute(
                     SnapshotId=snap, Attribute="createVolumePermission",
                     CreateVolumePermission={"Add": [{"UserId": STRANGER_ACCOUNT}]}),
                 lambda: dr.describe_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission")):
        with pytest.raises(ClientError) as exc:
            call()
        assert exc.value.response["Error"] == {"Code": "AuthFailure", "Message": f"Not authorized for snapshot:{snap}"}
    with pytest.raises(ClientError) as exc:
        account(STRANGER_ACCOUNT).describe_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission")
    assert exc.value.response["Error"] == {"Code": "InvalidSnapshot.NotFound",
                                           "Message": f"The snapshot '{snap}' does not exist."}

    home.modify_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission",
                                   CreateVolumePermission={"Remove": [{"UserId": DR_ACCOUNT}]})
    assert home.describe_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission")[
        "CreateVolumePermissions"] == []
    assert ids(RestorableByUserIds=["self"]) == [own]
    # By id: one it may not restore from is left out; one that does not exist is an error.
    assert ids(SnapshotIds=[snap]) == []
    with pytest.raises(ClientError) as exc:
        dr.describe_snapshots(SnapshotIds=["snap-0123456789abcdef0"])
    assert _code(exc) == "InvalidSnapshot.NotFound"


def test_share_refuses_what_the_aws_managed_ebs_key_encrypts_and_shares_a_customer_keys(client, account):
    home = client()
    kms = client("kms")
    # aws/ebs, made by moto at the first encrypted volume, is AWS managed (moto: CUSTOMER).
    image_id, snaps = _shared_backup(home, name="backup-default-key", encrypted=True)
    assert kms.describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]["KeyManager"] == "AWS"
    data_snap = [s for s in home.describe_snapshots(SnapshotIds=snaps)["Snapshots"] if s["Encrypted"]]
    assert len(data_snap) == 1
    with pytest.raises(ClientError) as exc:
        home.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": DR_ACCOUNT}]})
    assert exc.value.response["Error"] == {
        "Code": "InvalidParameter",
        "Message": "Snapshots encrypted with the AWS Managed CMK can't be shared. Specify another snapshot."}
    for kwargs in ({"CreateVolumePermission": {"Add": [{"UserId": DR_ACCOUNT}]}},
                   {"OperationType": "add", "UserIds": [DR_ACCOUNT]}):
        with pytest.raises(ClientError) as exc:
            home.modify_snapshot_attribute(SnapshotId=data_snap[0]["SnapshotId"],
                                           Attribute="createVolumePermission", **kwargs)
        assert exc.value.response["Error"] == {
            "Code": "OperationNotPermitted", "Message": "Encrypted snapshots with EBS default key cannot be shared"}
    assert account(DR_ACCOUNT).describe_images(ExecutableUsers=["self"])["Images"] == []

    cmk = kms.create_key(Description="share key")["KeyMetadata"]["Arn"]
    image_id, snaps = _shared_backup(home, name="backup-share-key", kms_key=cmk)
    _share(home, image_id, snaps)
    assert [i["ImageId"] for i in account(DR_ACCOUNT).describe_images(ExecutableUsers=["self"])["Images"]] == [image_id]


def test_share_the_dr_account_copies_a_shared_image_into_its_own_region_and_key(client, account):
    home = client()
    share_key = client("kms").create_key(Description="share key")["KeyMetadata"]["Arn"]
    image_id, snaps = _shared_backup(home, kms_key=share_key)
    dr_west = account(DR_ACCOUNT, region="us-west-2")
    dr_key = account(DR_ACCOUNT, "kms", "us-west-2").create_key(Description="vault key")["KeyMetadata"]["Arn"]

    def copy(**kwargs):
        return dr_west.copy_image(SourceImageId=image_id, SourceRegion="us-east-1", Name="dr-copy",
                                  Encrypted=True, KmsKeyId=dr_key, **kwargs)["ImageId"]

    # Not shared: it does not exist for the DR account.
    with pytest.raises(ClientError) as exc:
        copy()
    assert _code(exc) == "InvalidAMIID.NotFound"
    # The image shared, its snapshots not: no access to its storage.
    home.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": DR_ACCOUNT}]})
    with pytest.raises(ClientError) as exc:
        copy()
    assert exc.value.response["Error"] == {
        "Code": "InvalidRequest", "Message": "You do not have permission to access the storage of this ami"}

    _share(home, image_id, snaps)
    copy_id = copy(CopyImageTags=True, TagSpecifications=[
        {"ResourceType": "image", "Tags": [{"Key": "P:copy-of", "Value": image_id}]}])
    copied = _image(dr_west, copy_id)
    assert copied["OwnerId"] == DR_ACCOUNT
    # CopyImageTags copies the caller's own tags on the source, none of the owner's.
    assert _tags(copied) == {"P:copy-of": image_id}
    copied_snaps = dr_west.describe_snapshots(SnapshotIds=_snapshot_ids(copied))["Snapshots"]
    assert len(copied_snaps) == 2
    assert {(s["OwnerId"], s["Encrypted"], s["KmsKeyId"]) for s in copied_snaps} == {(DR_ACCOUNT, True, dr_key)}
    assert copy_id not in [i["ImageId"] for i in client(region="us-west-2").describe_images()["Images"]]

    # Without a key, in the source's region: the DR account's default key, not the owner's.
    dr_east = account(DR_ACCOUNT)
    plain = dr_east.copy_image(SourceImageId=image_id, SourceRegion="us-east-1", Name="dr-copy-east")["ImageId"]
    dr_default = account(DR_ACCOUNT, "kms").describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]["Arn"]
    keys = {s["SnapshotId"]: s.get("KmsKeyId") for s in dr_east.describe_snapshots(
        SnapshotIds=_snapshot_ids(_image(dr_east, plain)))["Snapshots"]}
    assert sorted(keys.values(), key=str) == sorted([None, dr_default], key=str)


def test_share_the_dr_account_copies_a_shared_snapshot_and_not_one_unshared(client, account):
    home = client()
    share_key = client("kms").create_key(Description="share key")["KeyMetadata"]["Arn"]
    vol = home.create_volume(Size=4, AvailabilityZone="us-east-1a", Encrypted=True, KmsKeyId=share_key)["VolumeId"]
    snap = home.create_snapshot(VolumeId=vol)["SnapshotId"]
    dr_west, dr_east = account(DR_ACCOUNT, region="us-west-2"), account(DR_ACCOUNT)
    dr_key = account(DR_ACCOUNT, "kms", "us-west-2").create_key(Description="vault key")["KeyMetadata"]["Arn"]
    with pytest.raises(ClientError) as exc:
        dr_west.copy_snapshot(SourceSnapshotId=snap, SourceRegion="us-east-1", Encrypted=True, KmsKeyId=dr_key)
    assert _code(exc) == "InvalidSnapshot.NotFound"

    home.modify_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission",
                                   CreateVolumePermission={"Add": [{"UserId": DR_ACCOUNT}]})
    copy_id = dr_west.copy_snapshot(SourceSnapshotId=snap, SourceRegion="us-east-1", Encrypted=True,
                                    KmsKeyId=dr_key)["SnapshotId"]
    copied, = dr_west.describe_snapshots(SnapshotIds=[copy_id])["Snapshots"]
    assert (copied["OwnerId"], copied["Encrypted"], copied["KmsKeyId"]) == (DR_ACCOUNT, True, dr_key)
    # Without a key, in the source's region: the DR account's default key, not the owner's.
    east_id = dr_east.copy_snapshot(SourceSnapshotId=snap, SourceRegion="us-east-1")["SnapshotId"]
    east, = dr_east.describe_snapshots(SnapshotIds=[east_id])["Snapshots"]
    assert east["KmsKeyId"] == account(DR_ACCOUNT, "kms").describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]["Arn"]
    assert east["KmsKeyId"] != share_key


def test_kms_a_key_made_without_key_usage_is_encrypt_decrypt_symmetric(client, account):
    # moto left KeyUsage out when CreateKey did not give it; KMS defaults it to ENCRYPT_DECRYPT.
    for kms in (client("kms"), account(DR_ACCOUNT, "kms", "us-west-2")):
        arn = kms.create_key(Description="share key")["KeyMetadata"]["Arn"]
        meta = kms.describe_key(KeyId=arn)["KeyMetadata"]
        assert (meta["KeyUsage"], meta["KeySpec"], meta["KeyManager"], meta["KeyState"]) == (
            "ENCRYPT_DECRYPT", "SYMMETRIC_DEFAULT", "CUSTOMER", "Enabled")
    # One given is kept.
    signing = client("kms").create_key(KeyUsage="SIGN_VERIFY", KeySpec="ECC_NIST_P256")["KeyMetadata"]
    assert (signing["KeyUsage"], signing["KeySpec"]) == ("SIGN_VERIFY", "ECC_NIST_P256")
