"""EBS volumes: per-type size, IOPS and throughput rules, attach within a zone at a free
device, the root volume every instance launches with, and what termination does to them."""
import pytest
from support import expect_error, tag_spec


@pytest.fixture
def ami(ec2):
    flt = [{"Name": "name", "Values": ["al2023-ami-2023.9.20261110.0-kernel-6.1-x86_64"]}]
    return ec2.describe_images(Owners=["amazon"], Filters=flt)["Images"][0]


def test_create_describe_delete_and_type_rules(ec2):
    v = ec2.create_volume(AvailabilityZone="us-east-1a", Size=20, VolumeType="gp3", TagSpecifications=tag_spec("volume", Name="data"))
    assert v["State"] == "creating" and v["VolumeId"].startswith("vol-")
    assert (v["Size"], v["Iops"], v["Throughput"], v["Encrypted"]) == (20, 3000, 125, False)
    (shown,) = ec2.describe_volumes(VolumeIds=[v["VolumeId"]])["Volumes"]
    assert shown["State"] == "available" and {"Key": "Name", "Value": "data"} in shown["Tags"]
    gp2 = ec2.create_volume(AvailabilityZone="us-east-1b", Size=100)
    assert (gp2["VolumeType"], gp2["Iops"]) == ("gp2", 300)
    io2 = ec2.create_volume(AvailabilityZone="us-east-1a", Size=10, VolumeType="io2", Iops=10000)
    assert io2["Iops"] == 10000
    for bad in (dict(Size=0), dict(Size=20000), dict(Size=10, VolumeType="io1", Iops=1000),
                dict(Size=100, VolumeType="gp3", Throughput=2000), dict(Size=10, VolumeType="st1"),
                dict(Size=10, VolumeType="gp2", Iops=300)):
        with expect_error("InvalidParameterValue", 400):
            ec2.create_volume(AvailabilityZone="us-east-1a", **bad)
    with expect_error("MissingParameter", 400):
        ec2.create_volume(AvailabilityZone="us-east-1a", Size=10, VolumeType="io1")
    with expect_error("InvalidZone.NotFound", 400):
        ec2.create_volume(AvailabilityZone="us-east-1z", Size=10)
    by = lambda n, v: [x["VolumeId"] for x in ec2.describe_volumes(Filters=[{"Name": n, "Values": v}])["Volumes"]]  # noqa: E731
    assert by("volume-type", ["io2"]) == [io2["VolumeId"]]
    assert by("availability-zone", ["us-east-1b"]) == [gp2["VolumeId"]]
    ec2.delete_volume(VolumeId=gp2["VolumeId"])
    with expect_error("InvalidVolume.NotFound", 400):
        ec2.describe_volumes(VolumeIds=[gp2["VolumeId"]])


def test_instances_launch_with_their_root_volume(ec2, ami):
    r = ec2.run_instances(
        ImageId=ami["ImageId"], InstanceType="t3.micro", MinCount=1, MaxCount=1,
        BlockDeviceMappings=[
            {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 30, "VolumeType": "gp3"}},
            {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 50, "DeleteOnTermination": False}},
        ],
        TagSpecifications=tag_spec("volume", Owner="web"),
    )
    (i,) = r["Instances"]
    devices = {m["DeviceName"]: m["Ebs"] for m in i["BlockDeviceMappings"]}
    assert set(devices) == {"/dev/xvda", "/dev/sdf"}
    root = ec2.describe_volumes(VolumeIds=[devices["/dev/xvda"]["VolumeId"]])["Volumes"][0]
    assert (root["Size"], root["VolumeType"], root["State"]) == (30, "gp3", "in-use")
    assert root["SnapshotId"] == ami["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    assert root["Attachments"][0]["InstanceId"] == i["InstanceId"] and root["Attachments"][0]["DeleteOnTermination"]
    assert {"Key": "Owner", "Value": "web"} in root["Tags"]
    attr = ec2.describe_instance_attribute(InstanceId=i["InstanceId"], Attribute="blockDeviceMapping")
    assert {m["DeviceName"] for m in attr["BlockDeviceMappings"]} == {"/dev/xvda", "/dev/sdf"}
    with expect_error("InvalidBlockDeviceMapping", 400):
        ec2.run_instances(ImageId=ami["ImageId"], InstanceType="t3.micro", MinCount=1, MaxCount=1,
                          BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 4}}])

    # Attach one more in the same zone, at a free device.
    extra = ec2.create_volume(AvailabilityZone=i["Placement"]["AvailabilityZone"], Size=10)["VolumeId"]
    elsewhere = ec2.create_volume(AvailabilityZone="us-east-1c", Size=10)["VolumeId"]
    with expect_error("InvalidVolume.ZoneMismatch", 400):
        ec2.attach_volume(VolumeId=elsewhere, InstanceId=i["InstanceId"], Device="/dev/sdg")
    with expect_error("InvalidParameterValue", 400):
        ec2.attach_volume(VolumeId=extra, InstanceId=i["InstanceId"], Device="/dev/sdf")
    out = ec2.attach_volume(VolumeId=extra, InstanceId=i["InstanceId"], Device="/dev/sdg")
    assert out["State"] == "attaching"
    with expect_error("VolumeInUse", 400):
        ec2.delete_volume(VolumeId=extra)
    with expect_error("OperationNotPermitted", 400):
        ec2.detach_volume(VolumeId=devices["/dev/xvda"]["VolumeId"])
    assert ec2.detach_volume(VolumeId=extra)["State"] == "detaching"
    ec2.attach_volume(VolumeId=extra, InstanceId=i["InstanceId"], Device="/dev/sdg")

    # Termination deletes what was marked so and detaches the rest.
    ec2.terminate_instances(InstanceIds=[i["InstanceId"]])
    left = {v["VolumeId"]: v for v in ec2.describe_volumes()["Volumes"]}
    assert devices["/dev/xvda"]["VolumeId"] not in left
    assert left[devices["/dev/sdf"]["VolumeId"]]["State"] == "available"
    assert left[extra]["State"] == "available" and left[extra]["Attachments"] == []


def test_modify_volume_grows_and_retypes(ec2):
    v = ec2.create_volume(AvailabilityZone="us-east-1a", Size=20, VolumeType="gp2")["VolumeId"]
    m = ec2.modify_volume(VolumeId=v, Size=50, VolumeType="gp3", Iops=4000)["VolumeModification"]
    assert m["ModificationState"] == "modifying"
    assert (m["OriginalSize"], m["OriginalVolumeType"], m["TargetSize"], m["TargetVolumeType"], m["TargetIops"]) == (20, "gp2", 50, "gp3", 4000)
    (shown,) = ec2.describe_volumes(VolumeIds=[v])["Volumes"]
    assert (shown["Size"], shown["VolumeType"], shown["Iops"], shown["Throughput"]) == (50, "gp3", 4000, 125)
    (done,) = ec2.describe_volumes_modifications(VolumeIds=[v])["VolumesModifications"]
    assert (done["ModificationState"], done["Progress"], done["TargetSize"]) == ("completed", 100, 50)
    assert ec2.describe_volumes_modifications(Filters=[{"Name": "target-volume-type", "Values": ["gp3"]}])["VolumesModifications"][0]["VolumeId"] == v
    with expect_error("InvalidParameterValue", 400):
        ec2.modify_volume(VolumeId=v, Size=10)  # volumes only grow
    with expect_error("InvalidParameterValue", 400):
        ec2.modify_volume(VolumeId=v, Size=50)  # no change at all
    with expect_error("InvalidParameterValue", 400):
        ec2.modify_volume(VolumeId=v, Iops=40000)  # beyond gp3's 16,000
    with expect_error("InvalidVolume.NotFound", 400):
        ec2.modify_volume(VolumeId="vol-0123456789abcdef0", Size=100)
    ec2.delete_volume(VolumeId=v)
    assert ec2.describe_volumes_modifications()["VolumesModifications"] == []
