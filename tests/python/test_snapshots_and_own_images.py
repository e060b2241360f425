"""Snapshots and the account's own images: CreateSnapshot/CopySnapshot/DeleteSnapshot, then
CreateImage from an instance (name rules, snapshots of every volume), launching from it,
CopyImage across regions, launch permissions, attributes and DeregisterImage."""
import json

import pytest
from support import expect_error, tag_spec

ACCOUNT = "000000000000"


@pytest.fixture
def ami(ec2):
    flt = [{"Name": "name", "Values": ["al2023-ami-2023.9.20261110.0-kernel-6.1-x86_64"]}]
    return ec2.describe_images(Owners=["amazon"], Filters=flt)["Images"][0]


@pytest.fixture
def instance(ec2, ami):
    r = ec2.run_instances(
        ImageId=ami["ImageId"], InstanceType="t3.micro", MinCount=1, MaxCount=1,
        BlockDeviceMappings=[
            {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 12}},
            {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 40, "VolumeType": "gp3", "DeleteOnTermination": False}},
        ],
    )
    return r["Instances"][0]


def test_snapshot_lifecycle_and_volumes_from_it(ec2, ec2_apne1):
    v = ec2.create_volume(AvailabilityZone="us-east-1a", Size=20)
    s = ec2.create_snapshot(VolumeId=v["VolumeId"], Description="nightly", TagSpecifications=tag_spec("snapshot", Name="n1"))
    assert s["State"] == "pending" and s["SnapshotId"].startswith("snap-") and s["VolumeSize"] == 20
    (shown,) = ec2.describe_snapshots(SnapshotIds=[s["SnapshotId"]])["Snapshots"]
    assert (shown["State"], shown["Progress"], shown["OwnerId"], shown["Description"]) == ("completed", "100%", ACCOUNT, "nightly")
    assert {"Key": "Name", "Value": "n1"} in shown["Tags"]
    assert [x["SnapshotId"] for x in ec2.describe_snapshots(OwnerIds=["self"], Filters=[{"Name": "volume-id", "Values": [v["VolumeId"]]}])["Snapshots"]] == [s["SnapshotId"]]
    assert ec2.describe_snapshots(Filters=[{"Name": "tag:Name", "Values": ["n1"]}])["Snapshots"][0]["SnapshotId"] == s["SnapshotId"]
    # A volume from the snapshot takes its size, and may not be smaller.
    restored = ec2.create_volume(AvailabilityZone="us-east-1b", SnapshotId=s["SnapshotId"])
    assert (restored["Size"], restored["SnapshotId"]) == (20, s["SnapshotId"])
    with expect_error("InvalidParameterValue", 400):
        ec2.create_volume(AvailabilityZone="us-east-1b", SnapshotId=s["SnapshotId"], Size=10)
    # Copies go across regions; the copy lives where it was asked for.
    c = ec2_apne1.copy_snapshot(SourceRegion="us-east-1", SourceSnapshotId=s["SnapshotId"], Description="dr copy")
    (copy,) = ec2_apne1.describe_snapshots(SnapshotIds=[c["SnapshotId"]])["Snapshots"]
    assert (copy["VolumeSize"], copy["Description"]) == (20, "dr copy")
    with expect_error("InvalidSnapshot.NotFound", 400):
        ec2.describe_snapshots(SnapshotIds=[c["SnapshotId"]])
    with expect_error("InvalidSnapshot.NotFound", 400):
        ec2_apne1.copy_snapshot(SourceRegion="us-east-1", SourceSnapshotId="snap-0123456789abcdef0")
    with expect_error("InvalidSnapshotID.Malformed", 400):
        ec2.describe_snapshots(SnapshotIds=["vol-1"])
    # createVolumePermission: accounts and `all`, checked.
    ec2.modify_snapshot_attribute(SnapshotId=s["SnapshotId"], Attribute="createVolumePermission",
                                  OperationType="add", UserIds=["111122223333"])
    attr = ec2.describe_snapshot_attribute(SnapshotId=s["SnapshotId"], Attribute="createVolumePermission")
    assert attr["CreateVolumePermissions"] == [{"UserId": "111122223333"}]
    assert [x["SnapshotId"] for x in ec2.describe_snapshots(RestorableByUserIds=["111122223333"])["Snapshots"]] == [s["SnapshotId"]]
    with expect_error("InvalidSnapshotAttributeItemValue", 400):
        ec2.modify_snapshot_attribute(SnapshotId=s["SnapshotId"], CreateVolumePermission={"Add": [{"UserId": "12"}]})
    ec2.reset_snapshot_attribute(SnapshotId=s["SnapshotId"], Attribute="createVolumePermission")
    assert ec2.describe_snapshot_attribute(SnapshotId=s["SnapshotId"], Attribute="createVolumePermission")["CreateVolumePermissions"] == []
    ec2.delete_snapshot(SnapshotId=s["SnapshotId"])
    with expect_error("InvalidSnapshot.NotFound", 400):
        ec2.describe_snapshots(SnapshotIds=[s["SnapshotId"]])
    with expect_error("InvalidVolume.NotFound", 400):
        ec2.create_snapshot(VolumeId="vol-0123456789abcdef0")


def test_create_image_from_an_instance_and_launch_it(ec2, ec2_unchecked, ami, instance):
    iid = instance["InstanceId"]
    # The model bounds the length (botocore checks it too); the characters are EC2's rule.
    for bad in ("ab", "x" * 129):
        with expect_error("InvalidParameterValue", 400):
            ec2_unchecked.create_image(InstanceId=iid, Name=bad)
    for bad in ("ウェブサーバー", "web*server", "web;rm"):
        with expect_error("InvalidAMIName.Malformed", 400):
            ec2.create_image(InstanceId=iid, Name=bad)
    name = "web (v1) [2026-11-23] ./-'@_"
    image_id = ec2.create_image(InstanceId=iid, Name=name, Description="golden web", NoReboot=True,
                                TagSpecifications=tag_spec("image", Role="web") + tag_spec("snapshot", Role="web-disk"))["ImageId"]
    with expect_error("InvalidAMIName.Duplicate", 400):
        ec2.create_image(InstanceId=iid, Name=name)
    (img,) = ec2.describe_images(ImageIds=[image_id])["Images"]
    assert (img["State"], img["OwnerId"], img["Public"], img["Name"], img["Description"]) == ("available", ACCOUNT, False, name, "golden web")
    assert (img["Architecture"], img["RootDeviceName"], img["SourceInstanceId"]) == ("x86_64", "/dev/xvda", iid)
    assert img["ImageLocation"] == f"{ACCOUNT}/{name}" and {"Key": "Role", "Value": "web"} in img["Tags"]
    mappings = {m["DeviceName"]: m["Ebs"] for m in img["BlockDeviceMappings"]}
    assert (mappings["/dev/xvda"]["VolumeSize"], mappings["/dev/sdf"]["VolumeSize"]) == (12, 40)
    assert mappings["/dev/sdf"]["DeleteOnTermination"] is False and mappings["/dev/sdf"]["VolumeType"] == "gp3"
    snaps = ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
    assert {s["SnapshotId"] for s in snaps} == {m["SnapshotId"] for m in mappings.values()}
    assert all(s["Description"] == f"Created by CreateImage({iid}) for {image_id}" for s in snaps)
    assert all({"Key": "Role", "Value": "web-disk"} in s["Tags"] for s in snaps)
    # Listings: own images under `self`, not under amazon; tag and name filters work.
    assert [i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]] == [image_id]
    assert image_id not in [i["ImageId"] for i in ec2.describe_images(Owners=["amazon"])["Images"]]
    assert [i["ImageId"] for i in ec2.describe_images(Filters=[{"Name": "tag:Role", "Values": ["web"]}])["Images"]] == [image_id]
    assert [i["ImageId"] for i in ec2.describe_images(Filters=[{"Name": "source-instance-id", "Values": [iid]}])["Images"]] == [image_id]
    # An instance from it gets both volumes from the image's snapshots.
    (j,) = ec2.run_instances(ImageId=image_id, InstanceType="t3.small", MinCount=1, MaxCount=1)["Instances"]
    vols = ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [j["InstanceId"]]}])["Volumes"]
    got = {v["Attachments"][0]["Device"]: (v["Size"], v["SnapshotId"]) for v in vols}
    assert got == {d: (m["VolumeSize"], m["SnapshotId"]) for d, m in mappings.items()}
    with expect_error("InvalidBlockDeviceMapping", 400):
        ec2.run_instances(ImageId=image_id, InstanceType="t3.small", MinCount=1, MaxCount=1,
                          BlockDeviceMappings=[{"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 10}}])
    # Snapshots behind a registered image cannot go.
    with expect_error("InvalidSnapshot.InUse", 400):
        ec2.delete_snapshot(SnapshotId=mappings["/dev/sdf"]["SnapshotId"])
    # A terminated instance cannot be imaged.
    ec2.terminate_instances(InstanceIds=[j["InstanceId"]])
    with expect_error("InvalidInstanceID.NotFound", 400):
        ec2.create_image(InstanceId=j["InstanceId"], Name="too-late")


def test_launch_permissions_attributes_copy_and_deregister(ec2, ec2_apne1, ami, instance):
    image_id = ec2.create_image(InstanceId=instance["InstanceId"], Name="base-image",
                                BlockDeviceMappings=[{"DeviceName": "/dev/sdf", "NoDevice": ""}])["ImageId"]
    (img,) = ec2.describe_images(ImageIds=[image_id])["Images"]
    assert [m["DeviceName"] for m in img["BlockDeviceMappings"]] == ["/dev/xvda"]
    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": "111122223333"}]})
    ec2.modify_image_attribute(ImageId=image_id, Attribute="launchPermission", OperationType="add", UserGroups=["all"])
    perms = ec2.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")["LaunchPermissions"]
    assert {"UserId": "111122223333"} in perms and {"Group": "all"} in perms
    assert ec2.describe_images(ImageIds=[image_id])["Images"][0]["Public"] is True
    assert image_id in [i["ImageId"] for i in ec2.describe_images(ExecutableUsers=["111122223333"])["Images"]]
    with expect_error("InvalidAMIAttributeItemValue", 400):
        ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": "alice"}]})
    with expect_error("InvalidParameterValue", 400):
        ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"Group": "friends"}]})
    ec2.reset_image_attribute(ImageId=image_id, Attribute="launchPermission")
    assert ec2.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")["LaunchPermissions"] == []
    assert ec2.describe_images(ImageIds=[image_id])["Images"][0]["Public"] is False
    ec2.modify_image_attribute(ImageId=image_id, Description={"Value": "second edition"})
    assert ec2.describe_image_attribute(ImageId=image_id, Attribute="description")["Description"]["Value"] == "second edition"
    assert ec2.describe_image_attribute(ImageId=ami["ImageId"], Attribute="bootMode")["BootMode"]["Value"] == "uefi-preferred"
    # Amazon's images are not the account's to change.
    for call in (lambda: ec2.modify_image_attribute(ImageId=ami["ImageId"], Description={"Value": "mine"}),
                 lambda: ec2.deregister_image(ImageId=ami["ImageId"]),
                 lambda: ec2.describe_image_attribute(ImageId=ami["ImageId"], Attribute="launchPermission")):
        with expect_error("AuthFailure", 400):
            call()
    # CopyImage: into another region, idempotent by client token, with new snapshots.
    c1 = ec2_apne1.copy_image(SourceImageId=image_id, SourceRegion="us-east-1", Name="base-image-dr", ClientToken="t-1")
    c2 = ec2_apne1.copy_image(SourceImageId=image_id, SourceRegion="us-east-1", Name="base-image-dr", ClientToken="t-1")
    assert c1["ImageId"] == c2["ImageId"]
    (copy,) = ec2_apne1.describe_images(ImageIds=[c1["ImageId"]])["Images"]
    assert (copy["SourceImageId"], copy["SourceImageRegion"], copy["OwnerId"]) == (image_id, "us-east-1", ACCOUNT)
    (snap,) = ec2_apne1.describe_snapshots(OwnerIds=["self"])["Snapshots"]
    assert copy["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"] == snap["SnapshotId"]
    assert snap["Description"].startswith(f"Copied for DestinationAmi {c1['ImageId']} from SourceAmi {image_id}")
    # A public Amazon image can be copied too; the copy is the account's.
    own_al = ec2.copy_image(SourceImageId=ami["ImageId"], SourceRegion="us-east-1", Name="my-al2023")["ImageId"]
    assert ec2.describe_images(ImageIds=[own_al])["Images"][0].get("ImageOwnerAlias") is None
    with expect_error("InvalidAMIID.NotFound", 400):
        ec2.copy_image(SourceImageId="ami-0123456789abcdef0", SourceRegion="us-east-1", Name="nothing")
    # Deregistering keeps the snapshots unless asked otherwise.
    (root,) = [m["Ebs"]["SnapshotId"] for m in ec2.describe_images(ImageIds=[image_id])["Images"][0]["BlockDeviceMappings"]]
    assert ec2.deregister_image(ImageId=image_id)["Return"] is True
    # Just deregistered, it describes as nothing rather than as unknown, as on EC2.
    assert ec2.describe_images(ImageIds=[image_id])["Images"] == []
    ec2.describe_snapshots(SnapshotIds=[root])
    ec2.delete_snapshot(SnapshotId=root)
    own_snaps = [m["Ebs"]["SnapshotId"] for m in ec2.describe_images(ImageIds=[own_al])["Images"][0]["BlockDeviceMappings"]]
    out = ec2.deregister_image(ImageId=own_al, DeleteAssociatedSnapshots=True)
    assert [r["SnapshotId"] for r in out["DeleteSnapshotResults"]] == own_snaps
    with expect_error("InvalidSnapshot.NotFound", 400):
        ec2.describe_snapshots(SnapshotIds=own_snaps)
    with expect_error("InvalidAMIID.NotFound", 400):
        ec2.run_instances(ImageId=own_al, InstanceType="t3.micro", MinCount=1, MaxCount=1)


def test_cli_create_image(aws, ami):
    def ok(*args):
        proc = aws(*args)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout) if proc.stdout.strip() else None

    iid = ok("ec2", "run-instances", "--image-id", ami["ImageId"], "--instance-type", "t3.micro")["Instances"][0]["InstanceId"]
    out = ok("ec2", "create-image", "--instance-id", iid, "--name", "cli-image", "--no-reboot")
    assert [i["ImageId"] for i in ok("ec2", "describe-images", "--owners", "self")["Images"]] == [out["ImageId"]]
    bad = aws("ec2", "create-image", "--instance-id", iid, "--name", "日本語の名前")
    assert bad.returncode != 0 and "InvalidAMIName.Malformed" in bad.stderr
    ok("ec2", "deregister-image", "--image-id", out["ImageId"])
    assert ok("ec2", "describe-images", "--owners", "self")["Images"] == []
