"""VPCs: create, describe, delete, validation and region isolation."""

import pytest
from support import ACCOUNT, VPC_ID_RE, client, expect_error, own_vpcs, tag_dict, tag_spec


def check_vpc_shape(vpc, cidr, state):
    assert VPC_ID_RE.match(vpc["VpcId"]), vpc["VpcId"]
    assert vpc["OwnerId"] == ACCOUNT
    assert vpc["CidrBlock"] == cidr
    assert vpc["State"] == state
    assert vpc["InstanceTenancy"] == "default"
    assert vpc["IsDefault"] is False
    assert vpc["DhcpOptionsId"].startswith("dopt-"), vpc["DhcpOptionsId"]
    [assoc] = vpc["CidrBlockAssociationSet"]
    assert assoc["AssociationId"].startswith("vpc-cidr-assoc-"), assoc
    assert assoc["CidrBlock"] == cidr
    assert assoc["CidrBlockState"]["State"] == "associated"


def test_create_vpc_answers_a_pending_vpc(ec2):
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]
    check_vpc_shape(vpc, "10.0.0.0/16", "pending")


def test_created_vpc_is_described_as_available(ec2):
    created = ec2.create_vpc(CidrBlock="172.31.0.0/16")["Vpc"]
    [listed] = own_vpcs(ec2)
    [by_id] = ec2.describe_vpcs(VpcIds=[created["VpcId"]])["Vpcs"]
    for vpc in (listed, by_id):
        check_vpc_shape(vpc, "172.31.0.0/16", "available")
        assert vpc["VpcId"] == created["VpcId"]
        assert vpc["DhcpOptionsId"] == created["DhcpOptionsId"]
        assert (
            vpc["CidrBlockAssociationSet"][0]["AssociationId"]
            == (created["CidrBlockAssociationSet"][0]["AssociationId"])
        )


def test_each_vpc_gets_its_own_id(ec2):
    ids = {ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"] for _ in range(3)}
    assert len(ids) == 3
    assert {v["VpcId"] for v in own_vpcs(ec2)} == ids


@pytest.mark.parametrize("cidr", ["10.0.0.0/16", "10.0.0.0/28", "192.168.0.0/20"])
def test_vpc_prefix_bounds_accepted(ec2, cidr):
    assert ec2.create_vpc(CidrBlock=cidr)["Vpc"]["CidrBlock"] == cidr


@pytest.mark.parametrize(
    "cidr, code",
    [
        ("10.0.0.0/15", "InvalidVpc.Range"),
        ("10.0.0.0/8", "InvalidVpc.Range"),
        ("10.0.0.0/29", "InvalidVpc.Range"),
        ("10.0.0.0/33", "InvalidParameterValue"),
        ("banana", "InvalidParameterValue"),
        ("10.0.0/16", "InvalidParameterValue"),
        ("300.0.0.0/16", "InvalidParameterValue"),
    ],
)
def test_bad_vpc_cidr_is_refused_and_creates_nothing(ec2, cidr, code):
    with expect_error(code, 400):
        ec2.create_vpc(CidrBlock=cidr)
    assert own_vpcs(ec2) == []


def test_vpc_tagged_at_creation(ec2):
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16", TagSpecifications=tag_spec("vpc", Name="main", env="prod"))["Vpc"]
    assert tag_dict(vpc) == {"Name": "main", "env": "prod"}
    [described] = ec2.describe_vpcs(VpcIds=[vpc["VpcId"]])["Vpcs"]
    assert tag_dict(described) == {"Name": "main", "env": "prod"}


def test_tag_specification_for_another_resource_type_is_refused(ec2):
    with expect_error("InvalidParameterValue", 400):
        ec2.create_vpc(CidrBlock="10.0.0.0/16", TagSpecifications=tag_spec("subnet", Name="x"))
    assert own_vpcs(ec2) == []


def test_delete_vpc(ec2):
    keep = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    gone = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    ec2.delete_vpc(VpcId=gone)
    assert [v["VpcId"] for v in own_vpcs(ec2)] == [keep]
    with expect_error("InvalidVpcID.NotFound", 400):
        ec2.describe_vpcs(VpcIds=[gone])
    # Deleting twice: the second time it no longer exists.
    with expect_error("InvalidVpcID.NotFound", 400):
        ec2.delete_vpc(VpcId=gone)


def test_unknown_vpc_ids(ec2, vpc):
    with expect_error("InvalidVpcID.NotFound", 400):
        ec2.delete_vpc(VpcId="vpc-0123456789abcdef0")
    # One known id does not make a list with an unknown one acceptable.
    with expect_error("InvalidVpcID.NotFound", 400):
        ec2.describe_vpcs(VpcIds=[vpc["VpcId"], "vpc-0123456789abcdef0"])


def test_vpc_with_subnets_cannot_be_deleted(ec2, vpc):
    subnet = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.1.0/24")["Subnet"]
    with expect_error("DependencyViolation", 400):
        ec2.delete_vpc(VpcId=vpc["VpcId"])
    # Nothing was deleted by the refused call.
    assert ec2.describe_subnets(SubnetIds=[subnet["SubnetId"]])["Subnets"][0]["VpcId"] == vpc["VpcId"]
    ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    ec2.delete_vpc(VpcId=vpc["VpcId"])
    assert own_vpcs(ec2) == []


def test_vpcs_belong_to_their_region(ec2, ec2_apne1):
    east = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    tokyo = ec2_apne1.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    assert [v["VpcId"] for v in own_vpcs(ec2)] == [east]
    assert [v["VpcId"] for v in own_vpcs(ec2_apne1)] == [tokyo]
    with expect_error("InvalidVpcID.NotFound"):
        ec2_apne1.describe_vpcs(VpcIds=[east])
    with expect_error("InvalidVpcID.NotFound"):
        ec2_apne1.delete_vpc(VpcId=east)
    assert [v["VpcId"] for v in own_vpcs(ec2)] == [east]


def test_vpc_quota_is_five_per_region_by_default(ec2, ec2_apne1):
    # The default VPC counts towards the quota, as on AWS.
    for i in range(4):
        ec2.create_vpc(CidrBlock=f"10.{i}.0.0/16")
    with expect_error("VpcLimitExceeded"):
        ec2.create_vpc(CidrBlock="10.9.0.0/16")
    ec2_apne1.create_vpc(CidrBlock="10.9.0.0/16")  # each region counts its own


def test_vpc_quota_is_configurable(spawn):
    srv = spawn(extra_args=["--vpc-quota", "2", "--eip-quota", "1"])
    ec2 = client("ec2", srv.endpoint)
    ec2.create_vpc(CidrBlock="10.0.0.0/16")  # with the default VPC, two
    with expect_error("VpcLimitExceeded"):
        ec2.create_vpc(CidrBlock="10.2.0.0/16")
    ec2.allocate_address()
    with expect_error("AddressLimitExceeded"):
        ec2.allocate_address()
