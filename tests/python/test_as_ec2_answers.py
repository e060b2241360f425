"""Where EC2 is lenient or exact in ways code meets (issue 15).

Blocks with host bits set: EC2 clears them and shows the canonical block ("if you specify
100.68.0.18/18, we modify it to 100.68.0.0/18", the API reference of CreateVpc, CreateSubnet,
CreateRoute and CreateNetworkAclEntry); prefix-length limits stay."""

import pytest
from support import expect_error


@pytest.mark.parametrize("given, canonical", [("10.0.0.18/16", "10.0.0.0/16"), ("100.68.0.18/18", "100.68.0.0/18")])
def test_vpc_block_is_made_canonical(ec2, given, canonical):
    vpc = ec2.create_vpc(CidrBlock=given)["Vpc"]
    assert vpc["CidrBlock"] == canonical
    [shown] = ec2.describe_vpcs(VpcIds=[vpc["VpcId"]])["Vpcs"]
    assert shown["CidrBlock"] == canonical
    assert [a["CidrBlock"] for a in shown["CidrBlockAssociationSet"]] == [canonical]
    ec2.delete_vpc(VpcId=vpc["VpcId"])


def test_prefix_limits_still_hold_for_non_canonical_blocks(ec2, vpc):
    with expect_error("InvalidVpc.Range", 400):
        ec2.create_vpc(CidrBlock="10.0.0.1/8")
    with expect_error("InvalidSubnet.Range", 400):
        ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.0.9/29")


def test_associated_block_and_subnet_are_made_canonical(ec2, vpc):
    vid = vpc["VpcId"]
    assoc = ec2.associate_vpc_cidr_block(VpcId=vid, CidrBlock="10.1.2.3/16")["CidrBlockAssociation"]
    assert assoc["CidrBlock"] == "10.1.0.0/16"
    subnet = ec2.create_subnet(VpcId=vid, CidrBlock="10.0.1.7/24")["Subnet"]
    assert subnet["CidrBlock"] == "10.0.1.0/24"
    assert subnet["AvailableIpAddressCount"] == 251
    [shown] = ec2.describe_subnets(SubnetIds=[subnet["SubnetId"]])["Subnets"]
    assert shown["CidrBlock"] == "10.0.1.0/24"
    # The canonical block is what overlaps are checked on.
    with expect_error("InvalidSubnet.Conflict", 400):
        ec2.create_subnet(VpcId=vid, CidrBlock="10.0.1.200/24")


def test_route_destination_is_made_canonical(ec2, vpc):
    vid = vpc["VpcId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vid)
    rtb = ec2.create_route_table(VpcId=vid)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=rtb, DestinationCidrBlock="192.0.2.77/24", GatewayId=igw)
    [table] = ec2.describe_route_tables(RouteTableIds=[rtb])["RouteTables"]
    assert "192.0.2.0/24" in [r.get("DestinationCidrBlock") for r in table["Routes"]]
    # The same destination, written either way, is one route.
    with expect_error("RouteAlreadyExists", 400):
        ec2.create_route(RouteTableId=rtb, DestinationCidrBlock="192.0.2.0/24", GatewayId=igw)
    ec2.delete_route(RouteTableId=rtb, DestinationCidrBlock="192.0.2.9/24")
    [table] = ec2.describe_route_tables(RouteTableIds=[rtb])["RouteTables"]
    assert "192.0.2.0/24" not in [r.get("DestinationCidrBlock") for r in table["Routes"]]


def test_acl_entry_is_made_canonical(ec2, vpc):
    acl = ec2.create_network_acl(VpcId=vpc["VpcId"])["NetworkAcl"]["NetworkAclId"]
    ec2.create_network_acl_entry(NetworkAclId=acl, RuleNumber=100, Protocol="-1", RuleAction="allow",
                                 Egress=False, CidrBlock="203.0.113.9/24")
    [shown] = ec2.describe_network_acls(NetworkAclIds=[acl])["NetworkAcls"]
    [entry] = [e for e in shown["Entries"] if e["RuleNumber"] == 100]
    assert entry["CidrBlock"] == "203.0.113.0/24"


def test_security_group_range_is_made_canonical(ec2, vpc):
    gid = ec2.create_security_group(GroupName="canon", Description="d", VpcId=vpc["VpcId"])["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.28/29"}]}])
    [group] = ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"]
    assert [r["CidrIp"] for p in group["IpPermissions"] for r in p["IpRanges"]] == ["10.0.0.24/29"]
    with expect_error("InvalidPermission.Duplicate", 400):
        ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.24/29"}]}])


# Small differences from EC2 that code meets.


def test_acl_rule_action_in_any_case_is_stored_lower_case(ec2, vpc):
    acl = ec2.create_network_acl(VpcId=vpc["VpcId"])["NetworkAcl"]["NetworkAclId"]
    ec2.create_network_acl_entry(NetworkAclId=acl, RuleNumber=110, Protocol="-1", RuleAction="ALLOW",
                                 Egress=True, CidrBlock="0.0.0.0/0")
    [shown] = ec2.describe_network_acls(NetworkAclIds=[acl])["NetworkAcls"]
    assert [e["RuleAction"] for e in shown["Entries"] if e["RuleNumber"] == 110] == ["allow"]


def test_allocate_address_domain_falls_back_to_vpc(ec2_unchecked):
    for domain in ("", "classic-please", "standard"):
        out = ec2_unchecked.allocate_address(Domain=domain)
        assert out["Domain"] == "vpc", domain
        ec2_unchecked.release_address(AllocationId=out["AllocationId"])


def test_default_vpc_exists_message_is_ec2s(ec2):
    from botocore.exceptions import ClientError

    ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])  # made on first call
    try:
        ec2.create_default_vpc()
    except ClientError as e:
        assert e.response["Error"]["Code"] == "DefaultVpcAlreadyExists"
        assert e.response["Error"]["Message"] == "A Default VPC already exists for this account in this region."
    else:
        raise AssertionError("a second default VPC was made")


def test_security_group_without_description_names_the_wire_member(endpoint):
    from support import signed_form_post

    status, _, body = signed_form_post(endpoint, "ec2", "us-east-1", {
        "Action": "CreateSecurityGroup", "Version": "2016-11-15", "GroupName": "no-description"})
    assert status == 400, body
    assert b"<Code>MissingParameter</Code>" in body
    assert b"The request must contain the parameter GroupDescription" in body


def test_security_group_rules_are_listed_in_the_order_they_were_added(ec2, vpc):
    vid = vpc["VpcId"]
    gid = ec2.create_security_group(GroupName="ordered", Description="d", VpcId=vid)["GroupId"]
    peers = [ec2.create_security_group(GroupName=f"peer-{i}", Description="d", VpcId=vid)["GroupId"] for i in range(4)]
    v4 = ["192.0.2.0/24", "10.9.0.0/16", "203.0.113.7/32", "10.1.0.0/16", "172.16.0.0/12", "10.0.0.0/8"]
    v6 = ["2001:db8:9::/48", "2001:db8:1::/48", "2001:db8:5::/48"]
    tcp = {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443}
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[
        {**tcp, "IpRanges": [{"CidrIp": c} for c in v4[:3]], "Ipv6Ranges": [{"CidrIpv6": c} for c in v6[:2]],
         "UserIdGroupPairs": [{"GroupId": g} for g in (peers[2], peers[0])]}])
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[
        {**tcp, "IpRanges": [{"CidrIp": c} for c in v4[3:]], "Ipv6Ranges": [{"CidrIpv6": v6[2]}],
         "UserIdGroupPairs": [{"GroupId": g} for g in (peers[3], peers[1])]}])
    for _ in range(3):
        [group] = ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"]
        [perm] = group["IpPermissions"]
        assert [r["CidrIp"] for r in perm["IpRanges"]] == v4
        assert [r["CidrIpv6"] for r in perm["Ipv6Ranges"]] == v6
        assert [p["GroupId"] for p in perm["UserIdGroupPairs"]] == [peers[2], peers[0], peers[3], peers[1]]


def test_public_addresses_never_look_like_network_addresses(spawn):
    """A fresh server's first addresses: today's AWS draws them at random; kumori once handed
    out 198.18.0.0 first."""
    from support import client as make_client

    ec2 = make_client("ec2", spawn(extra_args=["--eip-quota", "40"]).endpoint)
    ips = [ec2.allocate_address(Domain="vpc")["PublicIp"] for _ in range(40)]
    assert len(set(ips)) == 40
    assert not [ip for ip in ips if ip.endswith((".0", ".255"))], ips
    assert ips != sorted(ips, key=lambda ip: tuple(map(int, ip.split(".")))), "drawn at random, not in order"


def test_interface_addresses_without_a_primary_flag(ec2, vpc):
    subnet = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.7.0/28")["Subnet"]
    eni = ec2.create_network_interface(SubnetId=subnet["SubnetId"], PrivateIpAddresses=[
        {"PrivateIpAddress": "10.0.7.9"}, {"PrivateIpAddress": "10.0.7.5"}])["NetworkInterface"]
    assert eni["PrivateIpAddress"] == "10.0.7.9"
    assert [(p["PrivateIpAddress"], p["Primary"]) for p in eni["PrivateIpAddresses"]] == [
        ("10.0.7.9", True), ("10.0.7.5", False)]
    [after] = ec2.describe_subnets(SubnetIds=[subnet["SubnetId"]])["Subnets"]
    assert after["AvailableIpAddressCount"] == subnet["AvailableIpAddressCount"] - 2


def test_imported_key_shows_its_name_as_comment(ec2):
    import subprocess
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "me@laptop", "-f", f"{d}/k"], check=True)
        line = Path(f"{d}/k.pub").read_text().strip()
    ec2.import_key_pair(KeyName="imported-one", PublicKeyMaterial=line.encode())
    [key] = ec2.describe_key_pairs(KeyNames=["imported-one"], IncludePublicKey=True)["KeyPairs"]
    kind, blob, _ = line.split(" ", 2)
    assert key["PublicKey"] == f"{kind} {blob} imported-one"
    ec2.delete_key_pair(KeyName="imported-one")


def test_modify_rule_without_protocol_is_refused(ec2, vpc):
    gid = ec2.create_security_group(GroupName="modify-me", Description="d", VpcId=vpc["VpcId"])["GroupId"]
    [rule] = ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])["SecurityGroupRules"]
    with expect_error("InvalidParameterValue", 400):
        ec2.modify_security_group_rules(GroupId=gid, SecurityGroupRules=[{
            "SecurityGroupRuleId": rule["SecurityGroupRuleId"],
            "SecurityGroupRule": {"FromPort": 81, "ToPort": 81, "CidrIpv4": "0.0.0.0/0"}}])


def test_vpc_with_an_ipv6_block_but_no_pool_is_refused(ec2):
    with expect_error("MissingParameter", 400):
        ec2.create_vpc(CidrBlock="10.0.0.0/16", Ipv6CidrBlock="2001:db8::/56")


def test_malformed_group_id_filter_value(ec2):
    with expect_error("InvalidGroupId.Malformed", 400):
        ec2.describe_security_groups(Filters=[{"Name": "group-id", "Values": ["not-a-group"]}])
    assert ec2.describe_security_groups(Filters=[{"Name": "group-id", "Values": ["sg-*"]}])["SecurityGroups"] is not None


def test_subnet_dns_options_carry_the_aaaa_member(ec2, vpc):
    subnet = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.9.0/28")["Subnet"]
    assert subnet["PrivateDnsNameOptionsOnLaunch"]["EnableResourceNameDnsAAAARecord"] is False


# Compute: messages and members as EC2 gives them.


def _ami(ec2):
    flt = [{"Name": "name", "Values": ["al2023-ami-2023.*-x86_64"]}]
    return max(ec2.describe_images(Owners=["amazon"], Filters=flt)["Images"], key=lambda i: i["CreationDate"])["ImageId"]


def test_unknown_ids_are_named_together(ec2):
    from botocore.exceptions import ClientError

    a, b = "i-0123456789abcdef0", "i-0123456789abcdef1"
    try:
        ec2.describe_instances(InstanceIds=[a, b])
    except ClientError as e:
        assert e.response["Error"]["Message"] == f"The instance IDs '{a}, {b}' do not exist"
    else:
        raise AssertionError("unknown instances were described")
    x, y = "ami-0123456789abcdef0", "ami-0123456789abcdef1"
    try:
        ec2.describe_images(ImageIds=[x, y])
    except ClientError as e:
        assert e.response["Error"]["Message"] == f"The image ids '[{x}, {y}]' do not exist"
    else:
        raise AssertionError("unknown images were described")


def test_escaped_wildcards_in_filter_values_match_literally(ec2, vpc):
    vid = vpc["VpcId"]
    star = ec2.create_security_group(GroupName="web*", Description="d", VpcId=vid)["GroupId"]
    ec2.create_security_group(GroupName="webapp", Description="d", VpcId=vid)
    found = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["web\\*"]}])["SecurityGroups"]
    assert [g["GroupId"] for g in found] == [star]
    both = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["web*"]}])["SecurityGroups"]
    assert len(both) == 2


def test_instance_attribute_group_set_and_metadata_ipv6(ec2, vpc):
    sid = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.30.0/24")["Subnet"]["SubnetId"]
    [inst] = ec2.run_instances(ImageId=_ami(ec2), InstanceType="t3.micro", MinCount=1, MaxCount=1, SubnetId=sid,
                               MetadataOptions={"HttpProtocolIpv6": "enabled"})["Instances"]
    iid = inst["InstanceId"]
    assert inst["MetadataOptions"]["HttpProtocolIpv6"] == "enabled"
    groups = ec2.describe_instance_attribute(InstanceId=iid, Attribute="groupSet")["Groups"]
    assert groups and all(set(g) == {"GroupId"} for g in groups)
    out = ec2.modify_instance_metadata_options(InstanceId=iid, HttpTokens="required")
    assert out["InstanceMetadataOptions"]["HttpProtocolIpv6"] == "enabled", "kept across a modify"
    out = ec2.modify_instance_metadata_options(InstanceId=iid, HttpProtocolIpv6="disabled")
    assert out["InstanceMetadataOptions"]["HttpProtocolIpv6"] == "disabled"
    [r] = ec2.describe_instances(InstanceIds=[iid])["Reservations"]
    assert r["Instances"][0]["MetadataOptions"]["HttpProtocolIpv6"] == "disabled"


def test_a_tag_specification_without_tags_is_refused(ec2):
    with expect_error("InvalidParameterValue", 400):
        ec2.create_vpc(CidrBlock="10.0.0.0/16", TagSpecifications=[{"ResourceType": "vpc", "Tags": []}])


def test_dhcp_options_malformed_id_code(ec2):
    with expect_error("InvalidDhcpOptionsId.Malformed", 400):
        ec2.describe_dhcp_options(DhcpOptionsIds=["nope"])


def test_launch_template_messages(ec2):
    from botocore.exceptions import ClientError

    data = {"ImageId": _ami(ec2), "InstanceType": "t3.micro"}
    ec2.create_launch_template(LaunchTemplateName="lt-messages", LaunchTemplateData=data)
    try:
        ec2.create_launch_template(LaunchTemplateName="lt-messages", LaunchTemplateData=data)
    except ClientError as e:
        assert e.response["Error"]["Code"] == "InvalidLaunchTemplateName.AlreadyExistsException"
        assert e.response["Error"]["Message"] == "Launch template name already in use."
    else:
        raise AssertionError("a duplicate name was accepted")
    try:
        ec2.describe_launch_templates(LaunchTemplateNames=["lt-messages", "no-such-template"])
    except ClientError as e:
        assert e.response["Error"]["Message"] == \
            "At least one of the launch templates specified in the request does not exist."
    else:
        raise AssertionError("an unknown name was described")
    with expect_error("InvalidParameterCombination", 400):
        ec2.create_launch_template_version(LaunchTemplateName="lt-messages", LaunchTemplateId="lt-0123456789abcdef0",
                                           LaunchTemplateData=data)
    with expect_error("InvalidUserData.Malformed", 400):
        ec2.create_launch_template(LaunchTemplateName="lt-bad-user-data",
                                   LaunchTemplateData={**data, "UserData": "not base64!!"})


def test_volume_encryption_follows_its_snapshot_and_key(ec2):
    with expect_error("InvalidParameterDependency", 400):
        ec2.create_volume(AvailabilityZone="us-east-1a", Size=8,
                          KmsKeyId="1234abcd-12ab-34cd-56ef-1234567890ab")
    key = "1234abcd-12ab-34cd-56ef-1234567890ab"
    v = ec2.create_volume(AvailabilityZone="us-east-1a", Size=8, Encrypted=True, KmsKeyId=key)
    assert v["Encrypted"] is True and v["KmsKeyId"] == f"arn:aws:kms:us-east-1:000000000000:key/{key}"
    default = ec2.create_volume(AvailabilityZone="us-east-1a", Size=8, Encrypted=True)
    assert default["KmsKeyId"].startswith("arn:aws:kms:us-east-1:000000000000:key/")
    plain = ec2.create_volume(AvailabilityZone="us-east-1a", Size=8)
    assert plain["Encrypted"] is False and "KmsKeyId" not in plain
    snap = ec2.create_snapshot(VolumeId=v["VolumeId"])
    assert snap["Encrypted"] is True
    restored = ec2.create_volume(AvailabilityZone="us-east-1b", SnapshotId=snap["SnapshotId"])
    assert restored["Encrypted"] is True and restored["KmsKeyId"] == v["KmsKeyId"]
    with expect_error("InvalidParameterValue", 400):
        ec2.create_volume(AvailabilityZone="us-east-1a", Size=8, Encrypted=True, KmsKeyId="not a key")


def test_launch_permission_groups_other_than_all(ec2, vpc):
    sid = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.31.0/24")["Subnet"]["SubnetId"]
    [inst] = ec2.run_instances(ImageId=_ami(ec2), InstanceType="t3.micro", MinCount=1, MaxCount=1,
                               SubnetId=sid)["Instances"]
    image = ec2.create_image(InstanceId=inst["InstanceId"], Name="perm-test")["ImageId"]
    with expect_error("InvalidAMIAttributeItemValue", 400):
        ec2.modify_image_attribute(ImageId=image, Attribute="launchPermission", OperationType="add",
                                   UserGroups=["friends"])
    # Deregistered, it describes as nothing (for an hour), not as unknown.
    ec2.deregister_image(ImageId=image)
    assert ec2.describe_images(ImageIds=[image])["Images"] == []
    with expect_error("InvalidAMIID.NotFound", 400):
        ec2.describe_images(ImageIds=["ami-0123456789abcdef0"])


def test_modify_instance_attribute_changes_delete_on_termination(ec2, vpc):
    sid = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.32.0/24")["Subnet"]["SubnetId"]
    [inst] = ec2.run_instances(ImageId=_ami(ec2), InstanceType="t3.micro", MinCount=1, MaxCount=1,
                               SubnetId=sid)["Instances"]
    iid = inst["InstanceId"]
    root = inst["RootDeviceName"]
    ec2.modify_instance_attribute(InstanceId=iid, BlockDeviceMappings=[
        {"DeviceName": root, "Ebs": {"DeleteOnTermination": False}}])
    [r] = ec2.describe_instances(InstanceIds=[iid])["Reservations"]
    [m] = [m for m in r["Instances"][0]["BlockDeviceMappings"] if m["DeviceName"] == root]
    assert m["Ebs"]["DeleteOnTermination"] is False
    with expect_error("InvalidParameterValue", 400):
        ec2.modify_instance_attribute(InstanceId=iid, BlockDeviceMappings=[
            {"DeviceName": "/dev/sdz", "Ebs": {"DeleteOnTermination": False}}])
    ec2.terminate_instances(InstanceIds=[iid])
    [vol] = ec2.describe_volumes(VolumeIds=[m["Ebs"]["VolumeId"]])["Volumes"]
    assert vol["State"] == "available", "the root volume outlives the instance"


def test_zones_offer_what_ec2_offers_there(ec2, vpc):
    """use1-az3 (us-east-1e) has no t3: EC2's answer, quoted in the sources in regions.rs."""
    def zones_with(t):
        out = ec2.describe_instance_type_offerings(LocationType="availability-zone",
                                                   Filters=[{"Name": "instance-type", "Values": [t]}])
        return sorted(o["Location"] for o in out["InstanceTypeOfferings"])

    assert "us-east-1e" not in zones_with("t3.micro")
    assert "us-east-1e" in zones_with("t2.micro") and "us-east-1a" in zones_with("t3.micro")
    ids = ec2.describe_instance_type_offerings(LocationType="availability-zone-id",
                                               Filters=[{"Name": "instance-type", "Values": ["t3.micro"]}])
    assert "use1-az3" not in {o["Location"] for o in ids["InstanceTypeOfferings"]}
    sid = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.33.0/24", AvailabilityZone="us-east-1e")["Subnet"]["SubnetId"]
    from botocore.exceptions import ClientError
    try:
        ec2.run_instances(ImageId=_ami(ec2), InstanceType="t3.micro", MinCount=1, MaxCount=1, SubnetId=sid)
    except ClientError as e:
        assert e.response["Error"]["Code"] == "Unsupported"
        assert e.response["Error"]["Message"] == (
            "Your requested instance type (t3.micro) is not supported in your requested Availability Zone "
            "(us-east-1e). Please retry your request by not specifying an Availability Zone or choosing "
            "us-east-1a, us-east-1b, us-east-1c, us-east-1d, us-east-1f.")
    else:
        raise AssertionError("t3.micro launched in us-east-1e")
    ec2.run_instances(ImageId=_ami(ec2), InstanceType="t2.micro", MinCount=1, MaxCount=1, SubnetId=sid)
