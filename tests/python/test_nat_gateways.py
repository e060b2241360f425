"""NAT gateways: public ones with an Elastic IP, private ones without; the interface and
address they hold; routes to them; what deleting one frees."""
from support import expect_error, tag_dict, tag_spec


def layout(ec2, vpc):
    sid = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.0.0/24")["Subnet"]["SubnetId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc["VpcId"])
    return sid, igw


def test_public_nat_gateway_lifecycle(ec2, vpc):
    sid, igw = layout(ec2, vpc)
    eip = ec2.allocate_address(Domain="vpc")
    created = ec2.create_nat_gateway(SubnetId=sid, AllocationId=eip["AllocationId"], TagSpecifications=tag_spec("natgateway", Name="nat"))["NatGateway"]
    nid = created["NatGatewayId"]
    assert nid.startswith("nat-") and created["State"] == "pending"
    assert created["ConnectivityType"] == "public" and created["VpcId"] == vpc["VpcId"]

    (nat,) = ec2.describe_nat_gateways(NatGatewayIds=[nid])["NatGateways"]
    assert nat["State"] == "available" and tag_dict(nat) == {"Name": "nat"}
    (addr,) = nat["NatGatewayAddresses"]
    assert addr["AllocationId"] == eip["AllocationId"] and addr["PublicIp"] == eip["PublicIp"]
    assert addr["PrivateIp"] == "10.0.0.4"  # the subnet's first address after the reserved four
    assert addr["IsPrimary"] is True
    # Its interface is in the subnet, managed by AWS, and holds one address.
    (eni,) = ec2.describe_network_interfaces(NetworkInterfaceIds=[addr["NetworkInterfaceId"]])["NetworkInterfaces"]
    assert (eni["InterfaceType"], eni["RequesterManaged"], eni["SubnetId"]) == ("nat_gateway", True, sid)
    assert eni["Description"] == f"Interface for NAT Gateway {nid}"
    (subnet,) = ec2.describe_subnets(SubnetIds=[sid])["Subnets"]
    assert subnet["AvailableIpAddressCount"] == 250
    # The Elastic IP is now associated with that interface.
    (a,) = ec2.describe_addresses(AllocationIds=[eip["AllocationId"]])["Addresses"]
    assert a["NetworkInterfaceId"] == eni["NetworkInterfaceId"] and a["PrivateIpAddress"] == "10.0.0.4"
    assert a["AssociationId"].startswith("eipassoc-")
    with expect_error("InvalidIPAddress.InUse"):
        ec2.release_address(AllocationId=eip["AllocationId"])
    with expect_error("Resource.AlreadyAssociated"):
        ec2.create_nat_gateway(SubnetId=sid, AllocationId=eip["AllocationId"])
    with expect_error("OperationNotPermitted"):
        ec2.disassociate_address(AssociationId=a["AssociationId"])
    # While its public address is mapped, the VPC's gateway cannot be detached, nor the subnet go.
    with expect_error("DependencyViolation"):
        ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc["VpcId"])
    with expect_error("DependencyViolation"):
        ec2.delete_subnet(SubnetId=sid)

    # A private subnet's default route through it.
    rtb = ec2.create_route_table(VpcId=vpc["VpcId"])["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nid)
    found = ec2.describe_route_tables(Filters=[{"Name": "route.nat-gateway-id", "Values": [nid]}])["RouteTables"]
    assert [t["RouteTableId"] for t in found] == [rtb]

    assert ec2.delete_nat_gateway(NatGatewayId=nid)["NatGatewayId"] == nid
    (nat,) = ec2.describe_nat_gateways(NatGatewayIds=[nid])["NatGateways"]
    assert nat["State"] == "deleted" and "DeleteTime" in nat
    (route,) = [r for r in ec2.describe_route_tables(RouteTableIds=[rtb])["RouteTables"][0]["Routes"] if r.get("NatGatewayId")]
    assert route["State"] == "blackhole"
    (a,) = ec2.describe_addresses(AllocationIds=[eip["AllocationId"]])["Addresses"]
    assert "AssociationId" not in a and "NetworkInterfaceId" not in a
    with expect_error("InvalidAssociationID.NotFound"):
        ec2.disassociate_address(AssociationId=addr["AssociationId"])
    assert ec2.describe_network_interfaces(Filters=[{"Name": "subnet-id", "Values": [sid]}])["NetworkInterfaces"] == []
    assert ec2.describe_subnets(SubnetIds=[sid])["Subnets"][0]["AvailableIpAddressCount"] == 251
    ec2.release_address(AllocationId=eip["AllocationId"])
    ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc["VpcId"])
    ec2.delete_route_table(RouteTableId=rtb)
    ec2.delete_subnet(SubnetId=sid)


def test_private_nat_gateway_and_bad_requests(ec2, vpc):
    sid, _ = layout(ec2, vpc)
    private = ec2.create_nat_gateway(SubnetId=sid, ConnectivityType="private")["NatGateway"]
    assert private["ConnectivityType"] == "private"
    (addr,) = private["NatGatewayAddresses"]
    assert "PublicIp" not in addr and addr["PrivateIp"] == "10.0.0.4"
    second = ec2.create_nat_gateway(SubnetId=sid, ConnectivityType="private")["NatGateway"]
    assert second["NatGatewayAddresses"][0]["PrivateIp"] == "10.0.0.5"

    eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    with expect_error("InvalidParameterCombination"):
        ec2.create_nat_gateway(SubnetId=sid, ConnectivityType="private", AllocationId=eip)
    with expect_error("MissingParameter"):
        ec2.create_nat_gateway(SubnetId=sid)
    with expect_error("InvalidAllocationID.NotFound"):
        ec2.create_nat_gateway(SubnetId=sid, AllocationId="eipalloc-0123456789abcdef0")
    with expect_error("InvalidSubnetID.NotFound"):
        ec2.create_nat_gateway(SubnetId="subnet-0123456789abcdef0", AllocationId=eip)
    with expect_error("NatGatewayNotFound"):
        ec2.describe_nat_gateways(NatGatewayIds=["nat-0123456789abcdef0"])
    with expect_error("InvalidNatGatewayID.NotFound"):
        rtb = ec2.create_route_table(VpcId=vpc["VpcId"])["RouteTable"]["RouteTableId"]
        ec2.create_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", NatGatewayId="nat-0123456789abcdef0")
    with expect_error("DryRunOperation", 412):
        ec2.delete_nat_gateway(NatGatewayId=private["NatGatewayId"], DryRun=True)

    # Filters (named `Filter` in this API).
    found = ec2.describe_nat_gateways(Filters=[{"Name": "subnet-id", "Values": [sid]}, {"Name": "state", "Values": ["available"]}])
    assert {n["NatGatewayId"] for n in found["NatGateways"]} == {private["NatGatewayId"], second["NatGatewayId"]}


def test_five_per_zone(ec2, vpc):
    sid, _ = layout(ec2, vpc)
    ids = [ec2.create_nat_gateway(SubnetId=sid, ConnectivityType="private")["NatGateway"]["NatGatewayId"] for _ in range(5)]
    with expect_error("NatGatewayLimitExceeded"):
        ec2.create_nat_gateway(SubnetId=sid, ConnectivityType="private")
    ec2.delete_nat_gateway(NatGatewayId=ids[0])  # deleted ones do not count
    ec2.create_nat_gateway(SubnetId=sid, ConnectivityType="private")
