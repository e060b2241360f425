"""The default VPC: AWS's layout on first use in every account and region, and
CreateDefaultVpc / CreateDefaultSubnet to restore it."""
from support import client, expect_error


def default_vpc(ec2):
    (vpc,) = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    return vpc


def by_vpc(vpc_id):
    return [{"Name": "vpc-id", "Values": [vpc_id]}]


def test_layout_matches_aws(ec2, zones):
    vpc = default_vpc(ec2)
    vid = vpc["VpcId"]
    assert vpc["CidrBlock"] == "172.31.0.0/16" and vpc["IsDefault"] is True
    assert vpc["InstanceTenancy"] == "default"
    assert ec2.describe_vpc_attribute(VpcId=vid, Attribute="enableDnsHostnames")["EnableDnsHostnames"]["Value"] is True
    assert ec2.describe_vpc_attribute(VpcId=vid, Attribute="enableDnsSupport")["EnableDnsSupport"]["Value"] is True
    (dopt,) = ec2.describe_dhcp_options(DhcpOptionsIds=[vpc["DhcpOptionsId"]])["DhcpOptions"]
    assert dopt["DhcpOptionsId"] == vpc["DhcpOptionsId"]

    # One /20 per zone, in zone order, public on launch.
    subnets = sorted(ec2.describe_subnets(Filters=by_vpc(vid))["Subnets"], key=lambda s: s["AvailabilityZone"])
    assert [s["AvailabilityZone"] for s in subnets] == sorted(zones)
    assert [s["CidrBlock"] for s in subnets] == [f"172.31.{16 * i}.0/20" for i in range(len(zones))]
    assert all(s["DefaultForAz"] and s["MapPublicIpOnLaunch"] for s in subnets)
    assert all(s["AvailableIpAddressCount"] == 4091 for s in subnets)

    (igw,) = ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vid]}])["InternetGateways"]
    (main,) = ec2.describe_route_tables(Filters=by_vpc(vid) + [{"Name": "association.main", "Values": ["true"]}])["RouteTables"]
    routes = {r["DestinationCidrBlock"]: r for r in main["Routes"]}
    assert routes["172.31.0.0/16"]["GatewayId"] == "local"
    assert routes["0.0.0.0/0"]["GatewayId"] == igw["InternetGatewayId"] and routes["0.0.0.0/0"]["State"] == "active"

    (sg,) = ec2.describe_security_groups(Filters=by_vpc(vid))["SecurityGroups"]
    assert sg["GroupName"] == "default"
    (acl,) = ec2.describe_network_acls(Filters=by_vpc(vid))["NetworkAcls"]
    assert acl["IsDefault"] and sorted(a["SubnetId"] for a in acl["Associations"]) == sorted(s["SubnetId"] for s in subnets)

    (attr,) = ec2.describe_account_attributes(AttributeNames=["default-vpc"])["AccountAttributes"]
    assert attr["AttributeValues"] == [{"AttributeValue": vid}]
    # A security group by name alone lands in the default VPC.
    gid = ec2.create_security_group(GroupName="by-name", Description="d")["GroupId"]
    (g,) = ec2.describe_security_groups(GroupNames=["by-name"])["SecurityGroups"]
    assert g["GroupId"] == gid and g["VpcId"] == vid


def test_each_region_has_its_own(ec2, endpoint):
    tokyo = client("ec2", endpoint, "ap-northeast-1")
    a, b = default_vpc(ec2), default_vpc(tokyo)
    assert a["VpcId"] != b["VpcId"] and b["CidrBlock"] == "172.31.0.0/16"
    tokyo_zones = {z["ZoneName"] for z in tokyo.describe_availability_zones()["AvailabilityZones"]}
    subnets = tokyo.describe_subnets(Filters=by_vpc(b["VpcId"]))["Subnets"]
    assert {s["AvailabilityZone"] for s in subnets} == tokyo_zones


def delete_default_vpc(ec2, vpc_id):
    """What `aws ec2 delete-vpc` needs first, as on AWS: subnets, the gateway."""
    for s in ec2.describe_subnets(Filters=by_vpc(vpc_id))["Subnets"]:
        ec2.delete_subnet(SubnetId=s["SubnetId"])
    for g in ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc_id]}])["InternetGateways"]:
        ec2.detach_internet_gateway(InternetGatewayId=g["InternetGatewayId"], VpcId=vpc_id)
        ec2.delete_internet_gateway(InternetGatewayId=g["InternetGatewayId"])
    ec2.delete_vpc(VpcId=vpc_id)


def test_deleted_stays_deleted_until_recreated(ec2, zones):
    old = default_vpc(ec2)["VpcId"]
    with expect_error("DefaultVpcAlreadyExists"):
        ec2.create_default_vpc()
    with expect_error("DependencyViolation"):
        ec2.delete_vpc(VpcId=old)
    delete_default_vpc(ec2, old)
    # Gone for good: later calls do not bring it back by themselves.
    assert ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"] == []
    (attr,) = ec2.describe_account_attributes(AttributeNames=["default-vpc"])["AccountAttributes"]
    assert attr["AttributeValues"] == [{"AttributeValue": "none"}]
    with expect_error("VPCIdNotSpecified"):
        ec2.create_security_group(GroupName="x", Description="d")
    with expect_error("DefaultVpcDoesNotExist"):
        ec2.create_default_subnet(AvailabilityZone=sorted(zones)[0])

    new = ec2.create_default_vpc()["Vpc"]
    assert new["IsDefault"] and new["CidrBlock"] == "172.31.0.0/16" and new["VpcId"] != old
    assert len(ec2.describe_subnets(Filters=by_vpc(new["VpcId"]))["Subnets"]) == len(zones)


def test_default_subnet_restored_in_its_zone(ec2, zones):
    vid = default_vpc(ec2)["VpcId"]
    first = sorted(zones)[0]
    (s,) = ec2.describe_subnets(Filters=by_vpc(vid) + [{"Name": "availability-zone", "Values": [first]}])["Subnets"]
    with expect_error("DefaultSubnetAlreadyExistsInAvailabilityZone"):
        ec2.create_default_subnet(AvailabilityZone=first)
    ec2.delete_subnet(SubnetId=s["SubnetId"])
    again = ec2.create_default_subnet(AvailabilityZoneId=zones[first])["Subnet"]
    assert again["CidrBlock"] == "172.31.0.0/20" and again["DefaultForAz"] and again["MapPublicIpOnLaunch"]
    assert again["AvailabilityZone"] == first
    # A subnet the user makes in the default VPC is not a default subnet.
    mine = ec2.create_subnet(VpcId=vid, CidrBlock="172.31.200.0/24")["Subnet"]
    assert mine["DefaultForAz"] is False and mine["MapPublicIpOnLaunch"] is False


def test_the_first_call_races_make_one_default_vpc(endpoint):
    import threading

    clients = [client("ec2", endpoint, "eu-west-2") for _ in range(8)]
    results = []

    def call(c):
        results.append(len(c.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]))

    threads = [threading.Thread(target=call, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [1] * 8
    assert len(clients[0].describe_vpcs()["Vpcs"]) == 1
