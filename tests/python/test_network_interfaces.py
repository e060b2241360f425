"""Network interfaces of the user's own, Elastic IPs associated with them, and routes through
them: addresses are taken as AWS takes them, groups are checked and counted, and the
dependency rules hold both ways."""
import concurrent.futures

import pytest
from support import client, expect_error, tag_spec


@pytest.fixture
def net(ec2, vpc):
    subnet = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.1.0/28")["Subnet"]
    return vpc["VpcId"], subnet["SubnetId"]


def test_create_takes_the_lowest_free_address_and_the_default_group(ec2, net):
    vpc_id, subnet_id = net
    eni = ec2.create_network_interface(
        SubnetId=subnet_id, Description="app", TagSpecifications=tag_spec("network-interface", Name="app")
    )["NetworkInterface"]
    assert eni["NetworkInterfaceId"].startswith("eni-")
    assert eni["PrivateIpAddress"] == "10.0.1.4"  # .0-.3 are AWS's
    assert eni["PrivateDnsName"] == "ip-10-0-1-4.ec2.internal"
    assert eni["Status"] == "available" and eni["InterfaceType"] == "interface"
    assert eni["SourceDestCheck"] is True and eni["RequesterManaged"] is False
    assert eni["VpcId"] == vpc_id and eni["Description"] == "app"
    assert eni["MacAddress"].startswith("02:")
    (default,) = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": ["default"]}]
    )["SecurityGroups"]
    assert eni["Groups"] == [{"GroupId": default["GroupId"], "GroupName": "default"}]
    assert {t["Key"]: t["Value"] for t in eni["TagSet"]} == {"Name": "app"}  # this shape calls them TagSet
    (subnet,) = ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"]
    assert subnet["AvailableIpAddressCount"] == 16 - 5 - 1


def test_fixed_and_secondary_addresses(ec2, net):
    _, subnet_id = net
    eni = ec2.create_network_interface(SubnetId=subnet_id, PrivateIpAddress="10.0.1.10", SecondaryPrivateIpAddressCount=2)["NetworkInterface"]
    assert eni["PrivateIpAddress"] == "10.0.1.10"
    ips = [(p["PrivateIpAddress"], p["Primary"]) for p in eni["PrivateIpAddresses"]]
    assert ips == [("10.0.1.10", True), ("10.0.1.4", False), ("10.0.1.5", False)]
    with expect_error("InvalidIPAddress.InUse", 400):
        ec2.create_network_interface(SubnetId=subnet_id, PrivateIpAddress="10.0.1.5")
    for bad in ("10.0.1.1", "10.0.1.15", "10.0.2.4"):  # reserved, broadcast, outside
        with expect_error("InvalidParameterValue", 400):
            ec2.create_network_interface(SubnetId=subnet_id, PrivateIpAddress=bad)
    two = ec2.create_network_interface(
        SubnetId=subnet_id,
        PrivateIpAddresses=[{"PrivateIpAddress": "10.0.1.12", "Primary": True}, {"PrivateIpAddress": "10.0.1.13", "Primary": False}],
    )["NetworkInterface"]
    assert [p["PrivateIpAddress"] for p in two["PrivateIpAddresses"]] == ["10.0.1.12", "10.0.1.13"]
    (subnet,) = ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"]
    assert subnet["AvailableIpAddressCount"] == 11 - 5
    # Deleting gives the addresses back.
    ec2.delete_network_interface(NetworkInterfaceId=eni["NetworkInterfaceId"])
    (subnet,) = ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"]
    assert subnet["AvailableIpAddressCount"] == 11 - 2
    # ... and the next interface takes the lowest of them again.
    again = ec2.create_network_interface(SubnetId=subnet_id)["NetworkInterface"]
    assert again["PrivateIpAddress"] == "10.0.1.4"
    # An unassigned secondary address is free for the next taker too.
    ec2.unassign_private_ip_addresses(NetworkInterfaceId=two["NetworkInterfaceId"], PrivateIpAddresses=["10.0.1.13"])
    assert ec2.create_network_interface(SubnetId=subnet_id, PrivateIpAddress="10.0.1.13")["NetworkInterface"]["PrivateIpAddress"] == "10.0.1.13"
    (subnet,) = ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"]
    assert subnet["AvailableIpAddressCount"] == 11 - 3  # .4, .12, .13


def test_a_full_subnet_refuses_and_racing_creates_never_share_an_address(endpoint, ec2, net):
    _, subnet_id = net

    def create(_):
        c = client("ec2", endpoint)
        try:
            return c.create_network_interface(SubnetId=subnet_id)["NetworkInterface"]["PrivateIpAddress"]
        except c.exceptions.ClientError as e:
            return e.response["Error"]["Code"]

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        got = list(pool.map(create, range(16)))
    ips = [g for g in got if g.startswith("10.")]
    assert len(ips) == 11 and len(set(ips)) == 11, got
    assert sorted(g for g in got if not g.startswith("10.")) == ["InsufficientFreeAddressesInSubnet"] * 5


def test_groups_are_checked_counted_and_changeable(ec2, net):
    vpc_id, subnet_id = net
    groups = [ec2.create_security_group(GroupName=f"g{i}", Description="g", VpcId=vpc_id)["GroupId"] for i in range(6)]
    with expect_error("SecurityGroupsPerInterfaceLimitExceeded", 400):
        ec2.create_network_interface(SubnetId=subnet_id, Groups=groups)
    other_vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    foreign = ec2.create_security_group(GroupName="x", Description="x", VpcId=other_vpc)["GroupId"]
    with expect_error("InvalidParameterValue", 400):
        ec2.create_network_interface(SubnetId=subnet_id, Groups=[foreign])
    with expect_error("InvalidGroup.NotFound", 400):
        ec2.create_network_interface(SubnetId=subnet_id, Groups=["sg-0123456789abcdef0"])
    eni = ec2.create_network_interface(SubnetId=subnet_id, Groups=groups[:2])["NetworkInterface"]["NetworkInterfaceId"]
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, Groups=groups[2:5])
    attr = ec2.describe_network_interface_attribute(NetworkInterfaceId=eni, Attribute="groupSet")
    assert [g["GroupId"] for g in attr["Groups"]] == groups[2:5]
    with expect_error("SecurityGroupsPerInterfaceLimitExceeded", 400):
        ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, Groups=groups)
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, SourceDestCheck={"Value": False})
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, Description={"Value": "router"})
    (shown,) = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"]
    assert shown["SourceDestCheck"] is False and shown["Description"] == "router"
    with expect_error("InvalidParameterCombination", 400):
        ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, SourceDestCheck={"Value": True}, Description={"Value": "x"})
    found = ec2.describe_network_interfaces(Filters=[{"Name": "group-id", "Values": [groups[3]]}])["NetworkInterfaces"]
    assert [f["NetworkInterfaceId"] for f in found] == [eni]
    # A group an interface holds cannot be deleted; neither can the interface's subnet.
    with expect_error("DependencyViolation", 400):
        ec2.delete_security_group(GroupId=groups[2])
    with expect_error("DependencyViolation", 400):
        ec2.delete_subnet(SubnetId=subnet_id)
    ec2.delete_network_interface(NetworkInterfaceId=eni)
    ec2.delete_security_group(GroupId=groups[2])
    with expect_error("InvalidNetworkInterfaceID.NotFound", 400):
        ec2.delete_network_interface(NetworkInterfaceId=eni)


def test_elastic_ip_association(ec2, net):
    vpc_id, subnet_id = net
    eni = ec2.create_network_interface(SubnetId=subnet_id, SecondaryPrivateIpAddressCount=1)["NetworkInterface"]
    eid = eni["NetworkInterfaceId"]
    primary, secondary = (p["PrivateIpAddress"] for p in eni["PrivateIpAddresses"])
    a = ec2.allocate_address(Domain="vpc")
    b = ec2.allocate_address(Domain="vpc")
    # No internet gateway, no public address.
    with expect_error("Gateway.NotAttached", 400):
        ec2.associate_address(AllocationId=a["AllocationId"], NetworkInterfaceId=eid)
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc_id)
    assoc = ec2.associate_address(AllocationId=a["AllocationId"], NetworkInterfaceId=eid)["AssociationId"]
    assert assoc.startswith("eipassoc-")
    (addr,) = ec2.describe_addresses(AllocationIds=[a["AllocationId"]])["Addresses"]
    assert addr["NetworkInterfaceId"] == eid and addr["PrivateIpAddress"] == primary and addr["AssociationId"] == assoc
    (shown,) = ec2.describe_network_interfaces(NetworkInterfaceIds=[eid])["NetworkInterfaces"]
    assert shown["Association"]["PublicIp"] == a["PublicIp"]
    assert shown["PrivateIpAddresses"][0]["Association"]["AllocationId"] == a["AllocationId"]
    assert "Association" not in shown["PrivateIpAddresses"][1]

    # The same address again, or another address on the same private IP: only when allowed.
    with expect_error("Resource.AlreadyAssociated", 400):
        ec2.associate_address(AllocationId=a["AllocationId"], NetworkInterfaceId=eid, PrivateIpAddress=secondary)
    with expect_error("Resource.AlreadyAssociated", 400):
        ec2.associate_address(AllocationId=b["AllocationId"], NetworkInterfaceId=eid)
    with expect_error("InvalidParameterValue", 400):
        ec2.associate_address(AllocationId=b["AllocationId"], NetworkInterfaceId=eid, PrivateIpAddress="10.0.1.9")
    ec2.associate_address(AllocationId=a["AllocationId"], NetworkInterfaceId=eid, PrivateIpAddress=secondary, AllowReassociation=True)
    ec2.associate_address(AllocationId=b["AllocationId"], NetworkInterfaceId=eid)
    by_ip = {x["PublicIp"]: x.get("PrivateIpAddress") for x in ec2.describe_addresses()["Addresses"]}
    assert by_ip == {a["PublicIp"]: secondary, b["PublicIp"]: primary}

    # Mapped addresses hold the internet gateway and the address itself.
    with expect_error("DependencyViolation", 400):
        ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc_id)
    with expect_error("InvalidIPAddress.InUse", 400):
        ec2.release_address(AllocationId=b["AllocationId"])
    # Deleting the interface lets its addresses go.
    ec2.delete_network_interface(NetworkInterfaceId=eid)
    assert all("AssociationId" not in x for x in ec2.describe_addresses()["Addresses"])
    ec2.release_address(AllocationId=b["AllocationId"])
    ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc_id)
    with expect_error("InvalidInstanceID.NotFound", 400):
        ec2.associate_address(AllocationId=a["AllocationId"], InstanceId="i-0123456789abcdef0")


def test_routes_through_an_interface(ec2, net):
    vpc_id, subnet_id = net
    eni = ec2.create_network_interface(SubnetId=subnet_id)["NetworkInterface"]["NetworkInterfaceId"]
    rtb = ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", NetworkInterfaceId=eni)
    routes = ec2.describe_route_tables(RouteTableIds=[rtb])["RouteTables"][0]["Routes"]
    assert {"DestinationCidrBlock": "0.0.0.0/0", "NetworkInterfaceId": eni, "Origin": "CreateRoute", "State": "active"} in routes
    found = ec2.describe_route_tables(Filters=[{"Name": "route.network-interface-id", "Values": [eni]}])["RouteTables"]
    assert [t["RouteTableId"] for t in found] == [rtb]
    with expect_error("InvalidNetworkInterfaceID.NotFound", 400):
        ec2.create_route(RouteTableId=rtb, DestinationCidrBlock="10.8.0.0/16", NetworkInterfaceId="eni-0123456789abcdef0")
    ec2.delete_network_interface(NetworkInterfaceId=eni)
    routes = ec2.describe_route_tables(RouteTableIds=[rtb])["RouteTables"][0]["Routes"]
    assert [r["State"] for r in routes if r.get("NetworkInterfaceId") == eni] == ["blackhole"]


def test_nat_gateway_interfaces_are_aws_managed(ec2, net):
    vpc_id, subnet_id = net
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc_id)
    alloc = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=subnet_id, AllocationId=alloc)["NatGateway"]
    (eni,) = ec2.describe_network_interfaces(Filters=[{"Name": "interface-type", "Values": ["nat_gateway"]}])["NetworkInterfaces"]
    assert eni["RequesterManaged"] is True
    assert eni["Association"]["AllocationId"] == alloc
    with expect_error("OperationNotPermitted", 400):
        ec2.delete_network_interface(NetworkInterfaceId=eni["NetworkInterfaceId"])
    other = ec2.allocate_address(Domain="vpc")["AllocationId"]
    with expect_error("Resource.AlreadyAssociated", 400):
        ec2.associate_address(AllocationId=other, NetworkInterfaceId=eni["NetworkInterfaceId"])
    assert nat["NatGatewayId"]
