"""VPC and subnet attributes, as Terraform reads and sets them on every aws_vpc and aws_subnet."""
from support import client, expect_error


def test_vpc_dns_attributes_default_and_change(ec2, vpc):
    vid = vpc["VpcId"]

    def attr(name, member):
        return ec2.describe_vpc_attribute(VpcId=vid, Attribute=name)[member]["Value"]

    assert attr("enableDnsSupport", "EnableDnsSupport") is True
    assert attr("enableDnsHostnames", "EnableDnsHostnames") is False
    assert attr("enableNetworkAddressUsageMetrics", "EnableNetworkAddressUsageMetrics") is False
    ec2.modify_vpc_attribute(VpcId=vid, EnableDnsHostnames={"Value": True})
    assert attr("enableDnsHostnames", "EnableDnsHostnames") is True
    assert attr("enableDnsSupport", "EnableDnsSupport") is True, "the other attribute is untouched"
    # One attribute per call, as EC2 insists.
    with expect_error("InvalidParameterCombination"):
        ec2.modify_vpc_attribute(VpcId=vid, EnableDnsHostnames={"Value": False}, EnableDnsSupport={"Value": False})
    with expect_error("InvalidVpcID.NotFound"):
        ec2.describe_vpc_attribute(VpcId="vpc-0123456789abcdef0", Attribute="enableDnsSupport")


def test_vpc_attribute_name_comes_from_the_model(endpoint, vpc):
    ec2 = client("ec2", endpoint, validate=False)
    with expect_error("InvalidParameterValue"):
        ec2.describe_vpc_attribute(VpcId=vpc["VpcId"], Attribute="enableTeleport")


def test_subnet_map_public_ip_on_launch(ec2, vpc):
    sid = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    ec2.modify_subnet_attribute(SubnetId=sid, MapPublicIpOnLaunch={"Value": True})
    (s,) = ec2.describe_subnets(SubnetIds=[sid])["Subnets"]
    assert s["MapPublicIpOnLaunch"] is True
    public = ec2.describe_subnets(Filters=[{"Name": "map-public-ip-on-launch", "Values": ["true"]}, {"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"]
    assert [x["SubnetId"] for x in public] == [sid]
    ec2.modify_subnet_attribute(SubnetId=sid, PrivateDnsHostnameTypeOnLaunch="resource-name")
    (s,) = ec2.describe_subnets(SubnetIds=[sid])["Subnets"]
    assert s["PrivateDnsNameOptionsOnLaunch"]["HostnameType"] == "resource-name"
    assert s["MapPublicIpOnLaunch"] is True
    with expect_error("InvalidParameterValue"):
        ec2.modify_subnet_attribute(SubnetId=sid, AssignIpv6AddressOnCreation={"Value": True})
    with expect_error("InvalidSubnetID.NotFound"):
        ec2.modify_subnet_attribute(SubnetId="subnet-0123456789abcdef0", MapPublicIpOnLaunch={"Value": True})
