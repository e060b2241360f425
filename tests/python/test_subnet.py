"""Subnets: create, describe, delete, CIDR and zone validation."""

import pytest
from botocore.exceptions import ClientError
from support import ACCOUNT, SUBNET_ID_RE, expect_error, own_subnets, tag_dict, tag_spec


def test_create_subnet_answer(ec2, vpc, zones):
    s = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]
    assert SUBNET_ID_RE.match(s["SubnetId"]), s["SubnetId"]
    assert s["SubnetArn"] == f"arn:aws:ec2:us-east-1:{ACCOUNT}:subnet/{s['SubnetId']}"
    assert s["VpcId"] == vpc["VpcId"]
    assert s["CidrBlock"] == "10.0.1.0/24"
    assert s["OwnerId"] == ACCOUNT
    assert s["AvailableIpAddressCount"] == 251
    assert s["MapPublicIpOnLaunch"] is False
    assert s["DefaultForAz"] is False
    assert s["AvailabilityZone"] == "us-east-1a"
    assert s["AvailabilityZoneId"] == zones["us-east-1a"] and s["AvailabilityZoneId"]
    assert s["State"] in ("pending", "available")


def test_created_subnet_is_described(ec2, vpc):
    created = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.2.0/28", AvailabilityZone="us-east-1b")["Subnet"]
    [listed] = own_subnets(ec2)
    [by_id] = ec2.describe_subnets(SubnetIds=[created["SubnetId"]])["Subnets"]
    for s in (listed, by_id):
        assert s["State"] == "available"
        for key in ("SubnetId", "SubnetArn", "VpcId", "CidrBlock", "AvailabilityZone", "AvailabilityZoneId"):
            assert s[key] == created[key], key
        assert s["AvailableIpAddressCount"] == 11


@pytest.mark.parametrize(
    "cidr, free", [("10.0.0.0/16", 65531), ("10.0.0.0/20", 4091), ("10.0.0.0/24", 251), ("10.0.0.0/28", 11)]
)
def test_available_ip_count_leaves_out_five_reserved(ec2, vpc, cidr, free):
    s = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock=cidr)["Subnet"]
    assert s["AvailableIpAddressCount"] == free


def test_zone_given_by_id(ec2, vpc, zones):
    s = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.1.0/24", AvailabilityZoneId=zones["us-east-1b"])["Subnet"]
    assert (s["AvailabilityZone"], s["AvailabilityZoneId"]) == ("us-east-1b", zones["us-east-1b"])


def test_zone_chosen_when_not_given(ec2, vpc, zones):
    s = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.1.0/24")["Subnet"]
    assert s["AvailabilityZone"] in zones
    assert s["AvailabilityZoneId"] == zones[s["AvailabilityZone"]]


def test_subnet_in_tokyo(ec2_apne1):
    vpc = ec2_apne1.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]
    s = ec2_apne1.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.0.0/24", AvailabilityZone="ap-northeast-1c")[
        "Subnet"
    ]
    assert s["SubnetArn"] == f"arn:aws:ec2:ap-northeast-1:{ACCOUNT}:subnet/{s['SubnetId']}"
    zone_ids = {z["ZoneName"]: z["ZoneId"] for z in ec2_apne1.describe_availability_zones()["AvailabilityZones"]}
    assert s["AvailabilityZoneId"] == zone_ids["ap-northeast-1c"]


def test_adjacent_subnets_do_not_conflict(ec2, vpc):
    for cidr in ("10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/28", "10.0.2.16/28", "10.0.255.240/28"):
        ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock=cidr)
    assert len(own_subnets(ec2)) == 5


def test_unknown_vpc(ec2):
    with expect_error("InvalidVpcID.NotFound", 400):
        ec2.create_subnet(VpcId="vpc-0123456789abcdef0", CidrBlock="10.0.0.0/24")


def test_vpc_of_another_region_is_unknown(ec2, ec2_apne1, vpc):
    with expect_error("InvalidVpcID.NotFound", 400):
        ec2_apne1.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.0.0/24")


def test_missing_vpc_id_is_refused(ec2_unchecked):
    # botocore would not send this; the server must still refuse it.
    with pytest.raises(ClientError) as info:
        ec2_unchecked.create_subnet(CidrBlock="10.0.0.0/24")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400, info.value


@pytest.mark.parametrize(
    "cidr",
    [
        "10.1.0.0/24",  # outside the VPC
        "10.0.0.0/15",  # larger than the VPC
        "10.0.0.0/29",  # smaller than /28
        "10.0.0.0/30",
        "9.255.255.240/28",  # just below the VPC
    ],
)
def test_subnet_range(ec2, vpc, cidr):
    with expect_error("InvalidSubnet.Range", 400):
        ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock=cidr)
    assert own_subnets(ec2) == []


@pytest.mark.parametrize("cidr", ["10.0.0.0/33", "banana"])
def test_malformed_subnet_cidr(ec2, vpc, cidr):
    with expect_error("InvalidParameterValue", 400):
        ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock=cidr)


@pytest.mark.parametrize("second", ["10.0.1.0/24", "10.0.0.0/20", "10.0.1.128/25", "10.0.1.240/28"])
def test_overlapping_subnet_conflicts(ec2, vpc, second):
    ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.1.0/24")
    with expect_error("InvalidSubnet.Conflict", 400):
        ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock=second)
    assert [s["CidrBlock"] for s in own_subnets(ec2)] == ["10.0.1.0/24"]


def test_same_cidr_in_two_vpcs_is_fine(ec2, vpc):
    other = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]
    ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.1.0/24")
    ec2.create_subnet(VpcId=other["VpcId"], CidrBlock="10.0.1.0/24")
    assert len(own_subnets(ec2)) == 2


@pytest.mark.parametrize(
    "kwargs",
    [{"AvailabilityZone": "us-east-1z"}, {"AvailabilityZone": "ap-northeast-1a"}, {"AvailabilityZoneId": "use1-az99"}],
)
def test_bad_zone(ec2, vpc, kwargs):
    with expect_error("InvalidParameterValue", 400):
        ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.1.0/24", **kwargs)
    assert own_subnets(ec2) == []


def test_subnet_tagged_at_creation(ec2, vpc):
    s = ec2.create_subnet(
        VpcId=vpc["VpcId"], CidrBlock="10.0.1.0/24", TagSpecifications=tag_spec("subnet", Name="web")
    )["Subnet"]
    assert tag_dict(s) == {"Name": "web"}
    assert tag_dict(ec2.describe_subnets(SubnetIds=[s["SubnetId"]])["Subnets"][0]) == {"Name": "web"}


def test_delete_subnet_frees_its_range(ec2, vpc):
    s = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.1.0/24")["Subnet"]
    ec2.delete_subnet(SubnetId=s["SubnetId"])
    assert own_subnets(ec2) == []
    with expect_error("InvalidSubnetID.NotFound", 400):
        ec2.describe_subnets(SubnetIds=[s["SubnetId"]])
    with expect_error("InvalidSubnetID.NotFound", 400):
        ec2.delete_subnet(SubnetId=s["SubnetId"])
    again = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.1.0/24")["Subnet"]
    assert again["SubnetId"] != s["SubnetId"]


def test_unknown_subnet_ids(ec2, vpc):
    s = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.1.0/24")["Subnet"]
    with expect_error("InvalidSubnetID.NotFound", 400):
        ec2.delete_subnet(SubnetId="subnet-0123456789abcdef0")
    with expect_error("InvalidSubnetID.NotFound", 400):
        ec2.describe_subnets(SubnetIds=[s["SubnetId"], "subnet-0123456789abcdef0"])


def test_aaaa_record_option_is_kept_and_shown(ec2, vpc):
    # The model spells it AAAA; a handler that read `Aaaa` ignored the request silently.
    sid = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.7.0/24")["Subnet"]["SubnetId"]
    ec2.modify_subnet_attribute(SubnetId=sid, EnableResourceNameDnsAAAARecordOnLaunch={"Value": True})
    (s,) = ec2.describe_subnets(SubnetIds=[sid])["Subnets"]
    assert s["PrivateDnsNameOptionsOnLaunch"]["EnableResourceNameDnsAAAARecord"] is True
