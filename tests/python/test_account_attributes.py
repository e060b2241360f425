"""DescribeAccountAttributes answers the limits kumori enforces, as configured."""

from support import client, expect_error


def attributes(ec2) -> dict:
    # Without AttributeNames: the model lets a request name only supported-platforms and
    # default-vpc, so the limits are seen only in the full answer.
    return {
        a["AttributeName"]: [v["AttributeValue"] for v in a["AttributeValues"]]
        for a in ec2.describe_account_attributes()["AccountAttributes"]
    }


def test_default_limits_are_answered_and_enforced_where_they_say(ec2):
    attrs = attributes(ec2)
    assert attrs["max-elastic-ips"] == ["5"], attrs
    assert attrs["vpc-max-elastic-ips"] == ["5"], attrs
    assert attrs["vpc-max-security-groups-per-interface"] == ["5"], attrs
    assert attrs["max-instances"] == ["20"], attrs

    for _ in range(5):
        ec2.allocate_address(Domain="vpc")
    with expect_error("AddressLimitExceeded"):
        ec2.allocate_address(Domain="vpc")

    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    subnet = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"][0]["SubnetId"]
    groups = [
        ec2.create_security_group(GroupName=f"g{i}", Description="d", VpcId=vpc)["GroupId"]
        for i in range(6)
    ]
    ec2.create_network_interface(SubnetId=subnet, Groups=groups[:5])
    with expect_error("SecurityGroupsPerInterfaceLimitExceeded"):
        ec2.create_network_interface(SubnetId=subnet, Groups=groups)


def test_eip_quota_is_answered_as_configured(spawn):
    srv = spawn(extra_args=["--eip-quota", "1"])
    for region in ("us-east-1", "eu-west-1"):  # a quota per region, the same in each
        ec2 = client("ec2", srv.endpoint, region)
        attrs = attributes(ec2)
        assert attrs["max-elastic-ips"] == ["1"], attrs
        assert attrs["vpc-max-elastic-ips"] == ["1"], attrs
        # The other limits are not the quota's business.
        assert attrs["vpc-max-security-groups-per-interface"] == ["5"], attrs
        ec2.allocate_address(Domain="vpc")
        with expect_error("AddressLimitExceeded"):
            ec2.allocate_address(Domain="vpc")
