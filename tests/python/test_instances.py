"""Instances, first slice: launch into a subnet or the default VPC, with a fixed address,
groups, key pair, user data and metadata options; describe as reservations with filters;
stop, start and terminate with AWS's address rules; errors as AWS gives them."""
import base64
import concurrent.futures

import pytest
from support import client, expect_error, tag_spec


@pytest.fixture
def ami(ec2):
    def find(arch="x86_64"):
        flt = [{"Name": "name", "Values": [f"al2023-ami-2023.9.20261110.0-kernel-6.1-{arch}"]}]
        return ec2.describe_images(Owners=["amazon"], Filters=flt)["Images"][0]["ImageId"]
    return find


@pytest.fixture
def net(ec2, vpc):
    subnet = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.1.0/28", AvailabilityZone="us-east-1a")["Subnet"]
    return vpc["VpcId"], subnet["SubnetId"]


def one(ec2, instance_id):
    (r,) = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    (i,) = r["Instances"]
    return i


def test_launch_in_the_default_vpc_is_public(ec2, ami):
    key = ec2.create_key_pair(KeyName="laptop", KeyType="ed25519")
    user_data = base64.b64encode(b"#cloud-config\ntimezone: Asia/Tokyo\n").decode()
    r = ec2.run_instances(
        ImageId=ami(), InstanceType="t3.micro", MinCount=1, MaxCount=1, KeyName="laptop",
        UserData=user_data, TagSpecifications=tag_spec("instance", Name="web"),
        MetadataOptions={"HttpTokens": "required", "HttpPutResponseHopLimit": 2},
    )
    assert r["ReservationId"].startswith("r-")
    (launched,) = r["Instances"]
    assert launched["State"] == {"Code": 0, "Name": "pending"}
    i = one(ec2, launched["InstanceId"])
    assert i["State"] == {"Code": 16, "Name": "running"}
    assert i["InstanceType"] == "t3.micro" and i["KeyName"] == "laptop" and i["Architecture"] == "x86_64"
    (default,) = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    assert i["VpcId"] == default["VpcId"] and i["Placement"]["AvailabilityZone"] == "us-east-1a"
    assert i["PrivateIpAddress"] == "172.31.0.4"
    assert i["PublicIpAddress"].startswith("198.1") and i["PublicDnsName"].endswith(".compute-1.amazonaws.com")
    assert [g["GroupName"] for g in i["SecurityGroups"]] == ["default"]
    assert i["MetadataOptions"]["HttpTokens"] == "required" and i["MetadataOptions"]["HttpPutResponseHopLimit"] == 2
    assert {"Key": "Name", "Value": "web"} in i["Tags"]
    assert i["CpuOptions"] == {"CoreCount": 1, "ThreadsPerCore": 2}
    (nic,) = i["NetworkInterfaces"]
    assert nic["Attachment"]["DeviceIndex"] == 0 and nic["Association"]["PublicIp"] == i["PublicIpAddress"]
    eni = ec2.describe_network_interfaces(Filters=[{"Name": "attachment.instance-id", "Values": [i["InstanceId"]]}])["NetworkInterfaces"]
    assert [e["NetworkInterfaceId"] for e in eni] == [nic["NetworkInterfaceId"]]
    assert key["KeyName"] == "laptop"


def test_fixed_address_groups_and_private_subnet(ec2, ami, net):
    vpc_id, subnet_id = net
    sg = ec2.create_security_group(GroupName="db", Description="db", VpcId=vpc_id)["GroupId"]
    r = ec2.run_instances(ImageId=ami(), InstanceType="m5.large", MinCount=1, MaxCount=1,
                          SubnetId=subnet_id, PrivateIpAddress="10.0.1.10", SecurityGroupIds=[sg])
    i = one(ec2, r["Instances"][0]["InstanceId"])
    assert i["PrivateIpAddress"] == "10.0.1.10" and "PublicIpAddress" not in i and i["PublicDnsName"] == ""
    assert [g["GroupId"] for g in i["SecurityGroups"]] == [sg]
    with expect_error("InvalidIPAddress.InUse", 400):
        ec2.run_instances(ImageId=ami(), InstanceType="m5.large", MinCount=1, MaxCount=1, SubnetId=subnet_id, PrivateIpAddress="10.0.1.10")
    with expect_error("DependencyViolation", 400):
        ec2.delete_security_group(GroupId=sg)
    with expect_error("DependencyViolation", 400):
        ec2.delete_subnet(SubnetId=subnet_id)


def test_count_fills_a_small_subnet_and_never_shares_an_address(endpoint, ec2, ami, net):
    _, subnet_id = net
    r = ec2.run_instances(ImageId=ami(), InstanceType="t3.nano", MinCount=2, MaxCount=8, SubnetId=subnet_id)
    assert len(r["Instances"]) == 8
    assert [i["AmiLaunchIndex"] for i in r["Instances"]] == list(range(8))

    def launch(_):
        c = client("ec2", endpoint)
        try:
            return len(c.run_instances(ImageId=ami(), InstanceType="t3.nano", MinCount=1, MaxCount=1, SubnetId=subnet_id)["Instances"])
        except c.exceptions.ClientError as e:
            return e.response["Error"]["Code"]

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        got = list(pool.map(launch, range(6)))
    assert sorted(map(str, got)) == ["1", "1", "1"] + ["InsufficientFreeAddressesInSubnet"] * 3
    ips = [i["PrivateIpAddress"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]
    assert len(ips) == len(set(ips)) == 11


def test_stop_start_terminate(ec2, ami):
    iid = ec2.run_instances(ImageId=ami(), InstanceType="t3.micro", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    before = one(ec2, iid)
    out = ec2.stop_instances(InstanceIds=[iid])["StoppingInstances"]
    assert out == [{"InstanceId": iid, "PreviousState": {"Code": 16, "Name": "running"}, "CurrentState": {"Code": 64, "Name": "stopping"}}]
    stopped = one(ec2, iid)
    assert stopped["State"]["Name"] == "stopped" and "PublicIpAddress" not in stopped
    assert stopped["PrivateIpAddress"] == before["PrivateIpAddress"]
    ec2.start_instances(InstanceIds=[iid])
    started = one(ec2, iid)
    assert started["State"]["Name"] == "running" and started["PrivateIpAddress"] == before["PrivateIpAddress"]
    # A public address again, but not the one it had: "the public IP changes unless you use
    # an Elastic IP". Drawn at random from 131,072, it comes back with odds of 1 in ~10^5.
    assert started["PublicIpAddress"] and started["PublicIpAddress"] != before["PublicIpAddress"]

    # An Elastic IP replaces the launch address and survives stop and start.
    eip = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(AllocationId=eip["AllocationId"], InstanceId=iid)
    assert one(ec2, iid)["PublicIpAddress"] == eip["PublicIp"]
    ec2.stop_instances(InstanceIds=[iid])
    ec2.start_instances(InstanceIds=[iid])
    assert one(ec2, iid)["PublicIpAddress"] == eip["PublicIp"]

    out = ec2.terminate_instances(InstanceIds=[iid])["TerminatingInstances"]
    assert out[0]["CurrentState"]["Name"] == "shutting-down"
    gone = one(ec2, iid)
    assert gone["State"] == {"Code": 48, "Name": "terminated"} and gone["StateTransitionReason"].startswith("User initiated")
    (addr,) = ec2.describe_addresses(AllocationIds=[eip["AllocationId"]])["Addresses"]
    assert "AssociationId" not in addr, "termination lets the Elastic IP go"
    with expect_error("IncorrectInstanceState", 400):
        ec2.start_instances(InstanceIds=[iid])
    names = lambda state: [i["InstanceId"] for r in ec2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": [state]}])["Reservations"] for i in r["Instances"]]  # noqa: E731
    assert iid in names("terminated") and iid not in names("running")


def test_termination_protection(ec2, ami):
    iid = ec2.run_instances(ImageId=ami(), InstanceType="t3.micro", MinCount=1, MaxCount=1, DisableApiTermination=True)["Instances"][0]["InstanceId"]
    with expect_error("OperationNotPermitted", 400):
        ec2.terminate_instances(InstanceIds=[iid])
    assert one(ec2, iid)["State"]["Name"] == "running"


def test_bad_launches(ec2, ami, net):
    _, subnet_id = net
    with expect_error("InvalidAMIID.NotFound", 400):
        ec2.run_instances(ImageId="ami-0123456789abcdef0", InstanceType="t3.micro", MinCount=1, MaxCount=1)
    with expect_error("InvalidParameterValue", 400):
        ec2.run_instances(ImageId=ami("arm64"), InstanceType="t3.micro", MinCount=1, MaxCount=1)
    with expect_error("InvalidKeyPair.NotFound", 400):
        ec2.run_instances(ImageId=ami(), InstanceType="t3.micro", MinCount=1, MaxCount=1, KeyName="nope")
    with expect_error("InvalidParameterValue", 400):
        ec2.run_instances(ImageId=ami(), InstanceType="t3.micro", MinCount=1, MaxCount=1,
                          UserData=base64.b64encode(b"x" * 16385).decode())
    with expect_error("InvalidParameterValue", 400):
        ec2.run_instances(ImageId=ami(), InstanceType="t3.micro", MinCount=1, MaxCount=1,
                          MetadataOptions={"HttpPutResponseHopLimit": 65})
    with expect_error("InvalidSubnetID.NotFound", 400):
        ec2.run_instances(ImageId=ami(), InstanceType="t3.micro", MinCount=1, MaxCount=1, SubnetId="subnet-0123456789abcdef0")
    with expect_error("InvalidInstanceID.NotFound", 400):
        ec2.describe_instances(InstanceIds=["i-0123456789abcdef0"])
    assert ec2.describe_instances()["Reservations"] == []


def test_filters_and_client_token(ec2, ami):
    a = ec2.run_instances(ImageId=ami("arm64"), InstanceType="t4g.small", MinCount=1, MaxCount=1, ClientToken="once")
    again = ec2.run_instances(ImageId=ami("arm64"), InstanceType="t4g.small", MinCount=1, MaxCount=1, ClientToken="once")
    assert again["ReservationId"] == a["ReservationId"]
    ec2.run_instances(ImageId=ami(), InstanceType="t3.micro", MinCount=2, MaxCount=2)

    def ids(*filters):
        return sorted(i["InstanceId"] for r in ec2.describe_instances(Filters=[{"Name": n, "Values": v} for n, v in filters])["Reservations"] for i in r["Instances"])

    assert ids(("architecture", ["arm64"])) == [a["Instances"][0]["InstanceId"]]
    assert len(ids(("instance-type", ["t3.*"]))) == 2
    assert len(ids(("reservation-id", [a["ReservationId"]]))) == 1
    assert len(ec2.describe_instances()["Reservations"]) == 2


def test_attributes_groups_any_time_type_only_when_stopped(ec2, ami, net):
    vpc_id, subnet_id = net
    web = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc_id)["GroupId"]
    ssh = ec2.create_security_group(GroupName="ssh", Description="ssh", VpcId=vpc_id)["GroupId"]
    iid = ec2.run_instances(ImageId=ami(), InstanceType="t3.micro", MinCount=1, MaxCount=1, SubnetId=subnet_id,
                            UserData="#!/bin/sh\necho hi\n")["Instances"][0]["InstanceId"]
    # Security groups change while it runs.
    ec2.modify_instance_attribute(InstanceId=iid, Groups=[web, ssh])
    assert [g["GroupId"] for g in one(ec2, iid)["SecurityGroups"]] == [web, ssh]
    got = ec2.describe_instance_attribute(InstanceId=iid, Attribute="groupSet")["Groups"]
    assert [g["GroupId"] for g in got] == [web, ssh]
    with expect_error("SecurityGroupsPerInterfaceLimitExceeded", 400):
        ec2.modify_instance_attribute(InstanceId=iid, Groups=[web] * 3 + [ssh] * 3)
    ec2.modify_instance_attribute(InstanceId=iid, SourceDestCheck={"Value": False})
    assert one(ec2, iid)["SourceDestCheck"] is False
    ec2.modify_instance_attribute(InstanceId=iid, DisableApiTermination={"Value": True})
    assert ec2.describe_instance_attribute(InstanceId=iid, Attribute="disableApiTermination")["DisableApiTermination"]["Value"] is True
    # The type and the user data only change while stopped.
    with expect_error("IncorrectInstanceState", 400):
        ec2.modify_instance_attribute(InstanceId=iid, InstanceType={"Value": "t3.large"})
    with expect_error("IncorrectInstanceState", 400):
        ec2.modify_instance_attribute(InstanceId=iid, UserData={"Value": b"#!/bin/sh\n"})
    ec2.stop_instances(InstanceIds=[iid])
    ec2.modify_instance_attribute(InstanceId=iid, InstanceType={"Value": "t3.large"})
    with expect_error("InvalidParameterValue", 400):
        ec2.modify_instance_attribute(InstanceId=iid, InstanceType={"Value": "t4g.large"})  # arm64
    ec2.modify_instance_attribute(InstanceId=iid, UserData={"Value": b"#!/bin/sh\necho bye\n"})
    assert one(ec2, iid)["InstanceType"] == "t3.large"
    data = ec2.describe_instance_attribute(InstanceId=iid, Attribute="userData")["UserData"]["Value"]
    assert base64.b64decode(data) == b"#!/bin/sh\necho bye\n"
    with expect_error("InvalidParameterCombination", 400):
        ec2.modify_instance_attribute(InstanceId=iid, SourceDestCheck={"Value": True}, DisableApiStop={"Value": True})


def test_metadata_options_change(ec2, ami):
    iid = ec2.run_instances(ImageId=ami(), InstanceType="t3.micro", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    assert one(ec2, iid)["MetadataOptions"]["HttpTokens"] == "optional"
    out = ec2.modify_instance_metadata_options(InstanceId=iid, HttpTokens="required", HttpPutResponseHopLimit=3)
    assert out["InstanceMetadataOptions"]["HttpTokens"] == "required"
    m = one(ec2, iid)["MetadataOptions"]
    assert (m["HttpTokens"], m["HttpPutResponseHopLimit"], m["HttpEndpoint"]) == ("required", 3, "enabled")
    with expect_error("InvalidParameterValue", 400):
        ec2.modify_instance_metadata_options(InstanceId=iid, HttpPutResponseHopLimit=0)
    found = ec2.describe_instances(Filters=[{"Name": "metadata-options.http-tokens", "Values": ["required"]}])["Reservations"]
    assert [i["InstanceId"] for r in found for i in r["Instances"]] == [iid]


def test_credit_specifications_of_burstable_types(ec2, ami):
    t3 = ec2.run_instances(ImageId=ami(), InstanceType="t3.micro", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    t2 = ec2.run_instances(ImageId=ami(), InstanceType="t2.micro", MinCount=1, MaxCount=1,
                           CreditSpecification={"CpuCredits": "unlimited"})["Instances"][0]["InstanceId"]
    ec2.run_instances(ImageId=ami(), InstanceType="m5.large", MinCount=1, MaxCount=1)
    got = {c["InstanceId"]: c["CpuCredits"] for c in ec2.describe_instance_credit_specifications()["InstanceCreditSpecifications"]}
    assert got == {t3: "unlimited", t2: "unlimited"}
    t2b = ec2.run_instances(ImageId=ami(), InstanceType="t2.micro", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    (spec,) = ec2.describe_instance_credit_specifications(InstanceIds=[t2b])["InstanceCreditSpecifications"]
    assert spec["CpuCredits"] == "standard"
    with expect_error("InvalidParameterCombination", 400):
        ec2.run_instances(ImageId=ami(), InstanceType="m5.large", MinCount=1, MaxCount=1, CreditSpecification={"CpuCredits": "unlimited"})


def test_second_interfaces_and_secondary_addresses_within_type_limits(ec2, ami, net):
    vpc_id, subnet_id = net
    iid = ec2.run_instances(ImageId=ami(), InstanceType="t2.micro", MinCount=1, MaxCount=1, SubnetId=subnet_id)["Instances"][0]["InstanceId"]
    primary = one(ec2, iid)["NetworkInterfaces"][0]["NetworkInterfaceId"]
    # t2.micro: 2 interfaces, 2 private addresses each.
    ec2.assign_private_ip_addresses(NetworkInterfaceId=primary, SecondaryPrivateIpAddressCount=1)
    with expect_error("PrivateIpAddressLimitExceeded", 400):
        ec2.assign_private_ip_addresses(NetworkInterfaceId=primary, SecondaryPrivateIpAddressCount=1)
    second = ec2.create_network_interface(SubnetId=subnet_id)["NetworkInterface"]["NetworkInterfaceId"]
    third = ec2.create_network_interface(SubnetId=subnet_id)["NetworkInterface"]["NetworkInterfaceId"]
    with expect_error("InvalidParameterValue", 400):
        ec2.attach_network_interface(NetworkInterfaceId=second, InstanceId=iid, DeviceIndex=0)
    attachment = ec2.attach_network_interface(NetworkInterfaceId=second, InstanceId=iid, DeviceIndex=1)["AttachmentId"]
    with expect_error("AttachmentLimitExceeded", 400):
        ec2.attach_network_interface(NetworkInterfaceId=third, InstanceId=iid, DeviceIndex=2)
    with expect_error("InvalidNetworkInterface.InUse", 400):
        ec2.attach_network_interface(NetworkInterfaceId=second, InstanceId=iid, DeviceIndex=3)
    nics = one(ec2, iid)["NetworkInterfaces"]
    assert [n["Attachment"]["DeviceIndex"] for n in nics] == [0, 1]
    assert len(nics[0]["PrivateIpAddresses"]) == 2
    with expect_error("InvalidNetworkInterface.InUse", 400):
        ec2.delete_network_interface(NetworkInterfaceId=second)
    primary_attachment = nics[0]["Attachment"]["AttachmentId"]
    with expect_error("OperationNotPermitted", 400):
        ec2.detach_network_interface(AttachmentId=primary_attachment)
    ec2.detach_network_interface(AttachmentId=attachment)
    assert len(one(ec2, iid)["NetworkInterfaces"]) == 1
    # The interface shows its last attachment as detached (what a tool waiting on the detach
    # polls for, by attachment id), and the attachment id is spent.
    by_attachment = [{"Name": "attachment.attachment-id", "Values": [attachment]}]
    (gone,) = ec2.describe_network_interfaces(Filters=by_attachment)["NetworkInterfaces"]
    assert (gone["Status"], gone["Attachment"]["Status"]) == ("available", "detached")
    with expect_error("InvalidAttachmentID.NotFound", 400):
        ec2.detach_network_interface(AttachmentId=attachment)
    # Unassigning gives the address back; the primary address stays.
    secondary = [p["PrivateIpAddress"] for p in nics[0]["PrivateIpAddresses"] if not p["Primary"]]
    with expect_error("InvalidParameterValue", 400):
        ec2.unassign_private_ip_addresses(NetworkInterfaceId=primary, PrivateIpAddresses=[nics[0]["PrivateIpAddress"]])
    ec2.unassign_private_ip_addresses(NetworkInterfaceId=primary, PrivateIpAddresses=secondary)
    assert len(one(ec2, iid)["NetworkInterfaces"][0]["PrivateIpAddresses"]) == 1
    # An interface attached at termination is left behind, detached.
    ec2.attach_network_interface(NetworkInterfaceId=second, InstanceId=iid, DeviceIndex=1)
    ec2.terminate_instances(InstanceIds=[iid])
    (left,) = ec2.describe_network_interfaces(NetworkInterfaceIds=[second])["NetworkInterfaces"]
    assert left["Status"] == "available" and left["Attachment"]["Status"] == "detached"
    # Attaching again replaces the detached record.
    iid2 = ec2.run_instances(ImageId=ami(), InstanceType="t3.micro", MinCount=1, MaxCount=1,
                             SubnetId=left["SubnetId"])["Instances"][0]["InstanceId"]
    ec2.attach_network_interface(NetworkInterfaceId=second, InstanceId=iid2, DeviceIndex=1)
    (again,) = ec2.describe_network_interfaces(NetworkInterfaceIds=[second])["NetworkInterfaces"]
    assert (again["Attachment"]["Status"], again["Attachment"]["InstanceId"]) == ("attached", iid2)


def test_instance_status(ec2, ami):
    a = ec2.run_instances(ImageId=ami(), InstanceType="t3.micro", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    b = ec2.run_instances(ImageId=ami(), InstanceType="t3.micro", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    ec2.stop_instances(InstanceIds=[b])
    (s,) = ec2.describe_instance_status()["InstanceStatuses"]
    assert s["InstanceId"] == a and s["InstanceStatus"]["Status"] == "ok" and s["SystemStatus"]["Details"][0]["Status"] == "passed"
    every = {x["InstanceId"]: x["InstanceStatus"]["Status"] for x in ec2.describe_instance_status(IncludeAllInstances=True)["InstanceStatuses"]}
    assert every == {a: "ok", b: "not-applicable"}
    waiter = ec2.get_waiter("instance_status_ok")
    waiter.wait(InstanceIds=[a], WaiterConfig={"Delay": 1, "MaxAttempts": 3})


@pytest.mark.skipif(__import__("shutil").which("openssl") is None, reason="needs openssl to decrypt")
def test_windows_password_is_encrypted_for_the_key_pair(ec2, tmp_path):
    import subprocess

    key = ec2.create_key_pair(KeyName="admin")  # RSA, PEM
    (tmp_path / "admin.pem").write_text(key["KeyMaterial"])
    win = ec2.describe_images(Filters=[{"Name": "name", "Values": ["Windows_Server-2022-*"]}])["Images"][0]["ImageId"]
    iid = ec2.run_instances(ImageId=win, InstanceType="t3.large", MinCount=1, MaxCount=1, KeyName="admin")["Instances"][0]["InstanceId"]
    assert one(ec2, iid)["Platform"] == "windows"
    data = ec2.get_password_data(InstanceId=iid)["PasswordData"]
    assert data and ec2.get_password_data(InstanceId=iid)["PasswordData"] == data, "made once"
    password = subprocess.run(
        ["openssl", "pkeyutl", "-decrypt", "-inkey", str(tmp_path / "admin.pem"), "-pkeyopt", "rsa_padding_mode:pkcs1"],
        input=base64.b64decode(data), capture_output=True, check=True,
    ).stdout.decode()
    assert len(password) == 32
    # Linux instances have no password.
    linux = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["al2023-ami-2023.9.20261110.0-kernel-6.1-x86_64"]}])["Images"][0]["ImageId"]
    lid = ec2.run_instances(ImageId=linux, InstanceType="t3.micro", MinCount=1, MaxCount=1, KeyName="admin")["Instances"][0]["InstanceId"]
    assert ec2.get_password_data(InstanceId=lid)["PasswordData"] == ""


def test_every_documented_filter_kind(ec2, ami):
    """Common filters come from the record; the rest from the instance as shown."""
    a = ec2.run_instances(ImageId=ami(), InstanceType="t3.micro", MinCount=1, MaxCount=1,
                          Monitoring={"Enabled": True},
                          InstanceInitiatedShutdownBehavior="terminate")["Instances"][0]
    b = ec2.run_instances(ImageId=ami(), InstanceType="t3.small", MinCount=1, MaxCount=1)["Instances"][0]
    ec2.stop_instances(InstanceIds=[b["InstanceId"]])

    def ids(name, *values):
        got = ec2.describe_instances(Filters=[{"Name": name, "Values": list(values)}])["Reservations"]
        return sorted(i["InstanceId"] for r in got for i in r["Instances"])

    a_id, b_id = a["InstanceId"], b["InstanceId"]
    a_shown = one(ec2, a_id)
    root_volume = a_shown["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
    assert ids("block-device-mapping.volume-id", root_volume) == [a_id]
    assert ids("monitoring-state", "enabled") == [a_id]
    assert ids("network-interface.mac-address", a_shown["NetworkInterfaces"][0]["MacAddress"]) == [a_id]
    assert ids("dns-name", a_shown["PublicDnsName"]) == [a_id]
    assert ids("instance-initiated-shutdown-behavior", "terminate") == [a_id]
    assert ids("state-reason-code", "Client.UserInitiatedShutdown") == [b_id]
    assert ids("root-device-name", "/dev/xvda") == sorted([a_id, b_id])
    assert ids("availability-zone-id", "use1-az6") == sorted([a_id, b_id])  # us-east-1a
    assert ids("network-interface.addresses.private-ip-address", a["PrivateIpAddress"]) == [a_id]
    assert ids("spot-instance-request-id", "*") == []
    assert ids("virtualization-type", "hvm") == sorted([a_id, b_id])
    stopped = one(ec2, b_id)
    assert stopped["StateReason"] == {"Code": "Client.UserInitiatedShutdown",
                                      "Message": "Client.UserInitiatedShutdown: User initiated shutdown"}
    assert "StateReason" not in a_shown
    with expect_error("InvalidParameterValue", 400):
        ec2.describe_instances(Filters=[{"Name": "no-such-filter", "Values": ["x"]}])


def test_reboot_and_monitoring(ec2, ami):
    i = ec2.run_instances(ImageId=ami(), InstanceType="t3.micro", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    before = one(ec2, i)
    ec2.reboot_instances(InstanceIds=[i])
    after = one(ec2, i)
    assert after["State"]["Name"] == "running" and after["PublicIpAddress"] == before["PublicIpAddress"]
    out = ec2.monitor_instances(InstanceIds=[i])["InstanceMonitorings"]
    assert out == [{"InstanceId": i, "Monitoring": {"State": "pending"}}]
    assert one(ec2, i)["Monitoring"]["State"] == "enabled"
    ec2.unmonitor_instances(InstanceIds=[i])
    assert one(ec2, i)["Monitoring"]["State"] == "disabled"
    ec2.stop_instances(InstanceIds=[i])
    with expect_error("IncorrectInstanceState", 400):
        ec2.reboot_instances(InstanceIds=[i])
    with expect_error("InvalidInstanceID.NotFound", 400):
        ec2.reboot_instances(InstanceIds=["i-0123456789abcdef0"])


def test_launch_with_several_interfaces(ec2, ami, vpc):
    a = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    a2 = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.2.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    b = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.3.0/24", AvailabilityZone="us-east-1b")["Subnet"]["SubnetId"]
    run = lambda **kw: ec2.run_instances(ImageId=ami(), MinCount=1, MaxCount=1, **{"InstanceType": "t3.micro", **kw})  # noqa: E731
    # Two new interfaces in two subnets of one zone; both go with the instance.
    i = run(NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": a}, {"DeviceIndex": 1, "SubnetId": a2}])["Instances"][0]
    nics = sorted(one(ec2, i["InstanceId"])["NetworkInterfaces"], key=lambda n: n["Attachment"]["DeviceIndex"])
    assert [(n["Attachment"]["DeviceIndex"], n["SubnetId"]) for n in nics] == [(0, a), (1, a2)]
    assert all(n["Attachment"]["DeleteOnTermination"] for n in nics)
    ec2.terminate_instances(InstanceIds=[i["InstanceId"]])
    ids = [n["NetworkInterfaceId"] for n in nics]
    assert ec2.describe_network_interfaces(Filters=[{"Name": "network-interface-id", "Values": ids}])["NetworkInterfaces"] == []
    # Existing interfaces, as primary and second: they stay when the instance goes.
    p = ec2.create_network_interface(SubnetId=a, PrivateIpAddress="10.0.1.50")["NetworkInterface"]["NetworkInterfaceId"]
    q = ec2.create_network_interface(SubnetId=a2)["NetworkInterface"]["NetworkInterfaceId"]
    j = run(NetworkInterfaces=[{"DeviceIndex": 0, "NetworkInterfaceId": p}, {"DeviceIndex": 1, "NetworkInterfaceId": q}])["Instances"][0]
    assert (j["PrivateIpAddress"], j["SubnetId"]) == ("10.0.1.50", a)
    with expect_error("InvalidNetworkInterface.InUse", 400):
        run(NetworkInterfaces=[{"DeviceIndex": 0, "NetworkInterfaceId": p}])
    ec2.terminate_instances(InstanceIds=[j["InstanceId"]])
    left = ec2.describe_network_interfaces(NetworkInterfaceIds=[p, q])["NetworkInterfaces"]
    assert [n["Status"] for n in left] == ["available", "available"]
    # What EC2 refuses.
    for bad, code in (
        (dict(NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": a}, {"DeviceIndex": 0, "SubnetId": a2}]), "InvalidParameterValue"),
        (dict(NetworkInterfaces=[{"DeviceIndex": 1, "SubnetId": a}]), "InvalidParameterValue"),
        (dict(NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": a, "AssociatePublicIpAddress": True},
                                 {"DeviceIndex": 1, "SubnetId": a2}]), "InvalidParameterCombination"),
        (dict(SubnetId=a, NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": a}]), "InvalidParameterCombination"),
        (dict(NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": a}, {"DeviceIndex": 1, "SubnetId": b}]), "InvalidParameterValue"),
        (dict(NetworkInterfaces=[{"DeviceIndex": d, "SubnetId": a} for d in range(3)]), "InvalidParameterValue"),
    ):
        with expect_error(code, 400):
            run(**bad)
    with expect_error("InvalidParameterCombination", 400):
        ec2.run_instances(ImageId=ami(), InstanceType="t3.micro", MinCount=2, MaxCount=2,
                          NetworkInterfaces=[{"DeviceIndex": 0, "NetworkInterfaceId": p}])


def test_cpu_hibernation_and_enclave_options(ec2, ami):
    run = lambda itype, **kw: ec2.run_instances(ImageId=ami(), InstanceType=itype, MinCount=1, MaxCount=1, **kw)["Instances"][0]  # noqa: E731
    i = run("m5.xlarge", CpuOptions={"CoreCount": 2, "ThreadsPerCore": 1}, EnclaveOptions={"Enabled": True})
    shown = one(ec2, i["InstanceId"])
    assert shown["CpuOptions"] == {"CoreCount": 2, "ThreadsPerCore": 1}
    assert shown["EnclaveOptions"] == {"Enabled": True}
    h = run("t3.micro", HibernationOptions={"Configured": True},
            BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"Encrypted": True}}])
    assert one(ec2, h["InstanceId"])["HibernationOptions"] == {"Configured": True}
    root = one(ec2, h["InstanceId"])["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
    assert ec2.describe_volumes(VolumeIds=[root])["Volumes"][0]["Encrypted"] is True
    with expect_error("InvalidParameterValue", 400):
        run("t3.micro", CpuOptions={"CoreCount": 4, "ThreadsPerCore": 2})
    with expect_error("UnsupportedHibernationConfiguration", 400):
        run("t3.micro", HibernationOptions={"Configured": True})  # root not encrypted
    with expect_error("UnsupportedOperation", 400):
        run("t3.micro", EnclaveOptions={"Enabled": True})
    with expect_error("InvalidParameterCombination", 400):
        run("m5.xlarge", EnclaveOptions={"Enabled": True}, HibernationOptions={"Configured": True},
            BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"Encrypted": True}}])


def test_placement_groups(ec2, ami):
    cluster = ec2.create_placement_group(GroupName="hpc", Strategy="cluster", TagSpecifications=tag_spec("placement-group", Team="hpc"))
    assert cluster["PlacementGroup"]["GroupId"].startswith("pg-") and cluster["PlacementGroup"]["State"] == "available"
    ec2.create_placement_group(GroupName="kafka", Strategy="partition", PartitionCount=3)
    ec2.create_placement_group(GroupName="spread", Strategy="spread")
    with expect_error("InvalidPlacementGroup.Duplicate", 400):
        ec2.create_placement_group(GroupName="hpc", Strategy="cluster")
    with expect_error("InvalidParameterValue", 400):
        ec2.create_placement_group(GroupName="wide", Strategy="partition", PartitionCount=8)
    with expect_error("InvalidParameterCombination", 400):
        ec2.create_placement_group(GroupName="odd", Strategy="cluster", PartitionCount=2)
    groups = {g["GroupName"]: g for g in ec2.describe_placement_groups()["PlacementGroups"]}
    assert (groups["kafka"]["PartitionCount"], groups["spread"]["SpreadLevel"]) == (3, "rack")
    assert [g["GroupName"] for g in ec2.describe_placement_groups(Filters=[{"Name": "strategy", "Values": ["partition"]}])["PlacementGroups"]] == ["kafka"]
    # Instances land in a group, and a partition.
    run = lambda **kw: ec2.run_instances(ImageId=ami(), InstanceType="m5.large", **kw)["Instances"]  # noqa: E731
    (i,) = run(MinCount=1, MaxCount=1, Placement={"GroupName": "hpc"})
    assert one(ec2, i["InstanceId"])["Placement"]["GroupName"] == "hpc"
    (k,) = run(MinCount=1, MaxCount=1, Placement={"GroupName": "kafka", "PartitionNumber": 2})
    assert one(ec2, k["InstanceId"])["Placement"]["PartitionNumber"] == 2
    assert [x["InstanceId"] for r in ec2.describe_instances(Filters=[{"Name": "placement-group-name", "Values": ["hpc"]}])["Reservations"] for x in r["Instances"]] == [i["InstanceId"]]
    with expect_error("InvalidParameterValue", 400):
        run(MinCount=1, MaxCount=1, Placement={"GroupName": "kafka", "PartitionNumber": 4})
    with expect_error("InvalidPlacementGroup.Unknown", 400):
        run(MinCount=1, MaxCount=1, Placement={"GroupName": "nowhere"})
    # A spread group holds seven instances per zone.
    run(MinCount=7, MaxCount=7, Placement={"GroupName": "spread", "AvailabilityZone": "us-east-1a"})
    with expect_error("InsufficientInstanceCapacity", 400):
        run(MinCount=1, MaxCount=1, Placement={"GroupName": "spread", "AvailabilityZone": "us-east-1a"})
    # A group with instances cannot go until they do.
    with expect_error("InvalidPlacementGroup.InUse", 400):
        ec2.delete_placement_group(GroupName="hpc")
    ec2.terminate_instances(InstanceIds=[i["InstanceId"]])
    ec2.delete_placement_group(GroupName="hpc")
    with expect_error("InvalidPlacementGroup.Unknown", 400):
        ec2.describe_placement_groups(GroupNames=["hpc"])


def test_console_output_of_an_instance_that_runs_no_userland_is_empty(ec2, ami):
    # Without the data plane an instance prints nothing; EC2 answers the same before the
    # first boot messages arrive. An unknown id is refused.
    i = ec2.run_instances(ImageId=ami(), InstanceType="t3.micro", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    out = ec2.get_console_output(InstanceId=i, Latest=True)
    assert out["InstanceId"] == i and out.get("Output", "") == "" and out["Timestamp"]
    with expect_error("InvalidInstanceID.NotFound"):
        ec2.get_console_output(InstanceId="i-0123456789abcdef0")
