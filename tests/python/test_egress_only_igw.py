"""Egress-only internet gateways and IPv6 routes: the gateway is born attached to its VPC,
takes only IPv6 destinations, keeps its VPC from being deleted, and leaves its routes
`blackhole` when it goes."""
from support import expect_error, tag_dict, tag_spec


def gateway(ec2, vpc_id, **tags):
    kw = {"TagSpecifications": tag_spec("egress-only-internet-gateway", **tags)} if tags else {}
    out = ec2.create_egress_only_internet_gateway(VpcId=vpc_id, ClientToken="tok-1", **kw)
    assert out["ClientToken"] == "tok-1"
    return out["EgressOnlyInternetGateway"]


def routes_of(ec2, table_id):
    return ec2.describe_route_tables(RouteTableIds=[table_id])["RouteTables"][0]["Routes"]


def test_create_describe_and_delete(ec2, vpc):
    gw = gateway(ec2, vpc["VpcId"], Name="v6-out")
    gid = gw["EgressOnlyInternetGatewayId"]
    assert gid.startswith("eigw-")
    assert gw["Attachments"] == [{"State": "attached", "VpcId": vpc["VpcId"]}]
    assert tag_dict(gw) == {"Name": "v6-out"}
    other = gateway(ec2, vpc["VpcId"])["EgressOnlyInternetGatewayId"]

    def ids(**kw):
        return sorted(g["EgressOnlyInternetGatewayId"] for g in ec2.describe_egress_only_internet_gateways(**kw)["EgressOnlyInternetGateways"])

    assert ids() == sorted([gid, other])
    assert ids(EgressOnlyInternetGatewayIds=[gid]) == [gid]
    assert ids(Filters=[{"Name": "tag:Name", "Values": ["v6-*"]}]) == [gid]
    with expect_error("InvalidEgressOnlyInternetGatewayId.NotFound", 400):
        ec2.describe_egress_only_internet_gateways(EgressOnlyInternetGatewayIds=["eigw-0123456789abcdef0"])
    with expect_error("InvalidEgressOnlyInternetGatewayId.Malformed", 400):
        ec2.delete_egress_only_internet_gateway(EgressOnlyInternetGatewayId="igw-0123456789abcdef0")
    with expect_error("InvalidVpcID.NotFound", 400):
        ec2.create_egress_only_internet_gateway(VpcId="vpc-0123456789abcdef0")

    # The VPC cannot go while a gateway is attached to it.
    with expect_error("DependencyViolation", 400):
        ec2.delete_vpc(VpcId=vpc["VpcId"])
    assert ec2.delete_egress_only_internet_gateway(EgressOnlyInternetGatewayId=gid)["ReturnCode"] is True
    ec2.delete_egress_only_internet_gateway(EgressOnlyInternetGatewayId=other)
    with expect_error("InvalidEgressOnlyInternetGatewayId.NotFound", 400):
        ec2.delete_egress_only_internet_gateway(EgressOnlyInternetGatewayId=gid)
    assert ids() == []
    ec2.delete_vpc(VpcId=vpc["VpcId"])


def test_ipv6_routes_to_the_gateway(ec2, vpc):
    gid = gateway(ec2, vpc["VpcId"])["EgressOnlyInternetGatewayId"]
    rtb = ec2.create_route_table(VpcId=vpc["VpcId"])["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=rtb, DestinationIpv6CidrBlock="::/0", EgressOnlyInternetGatewayId=gid)
    route = [r for r in routes_of(ec2, rtb) if r.get("DestinationIpv6CidrBlock") == "::/0"]
    assert route == [{"DestinationIpv6CidrBlock": "::/0", "EgressOnlyInternetGatewayId": gid, "Origin": "CreateRoute", "State": "active"}]
    with expect_error("RouteAlreadyExists", 400):
        ec2.create_route(RouteTableId=rtb, DestinationIpv6CidrBlock="::/0", EgressOnlyInternetGatewayId=gid)
    # Only IPv6 destinations; blocks are normalised and must be blocks.
    with expect_error("InvalidParameterCombination", 400):
        ec2.create_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", EgressOnlyInternetGatewayId=gid)
    with expect_error("InvalidParameterValue", 400):
        ec2.create_route(RouteTableId=rtb, DestinationIpv6CidrBlock="2001:db8::1/32", EgressOnlyInternetGatewayId=gid)
    with expect_error("InvalidEgressOnlyInternetGatewayId.NotFound", 400):
        ec2.create_route(RouteTableId=rtb, DestinationIpv6CidrBlock="2001:db8::/32", EgressOnlyInternetGatewayId="eigw-0123456789abcdef0")
    # An IPv6 route may also go to the VPC's internet gateway.
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc["VpcId"])
    ec2.create_route(RouteTableId=rtb, DestinationIpv6CidrBlock="2001:DB8::/32", GatewayId=igw)
    assert {"DestinationIpv6CidrBlock": "2001:db8::/32", "GatewayId": igw, "Origin": "CreateRoute", "State": "active"} in routes_of(ec2, rtb)
    ec2.replace_route(RouteTableId=rtb, DestinationIpv6CidrBlock="2001:db8::/32", EgressOnlyInternetGatewayId=gid)
    assert {"DestinationIpv6CidrBlock": "2001:db8::/32", "EgressOnlyInternetGatewayId": gid, "Origin": "CreateRoute", "State": "active"} in routes_of(ec2, rtb)

    flt = lambda name, value: ec2.describe_route_tables(Filters=[{"Name": name, "Values": [value]}])["RouteTables"]  # noqa: E731
    assert [t["RouteTableId"] for t in flt("route.egress-only-internet-gateway-id", gid)] == [rtb]
    assert [t["RouteTableId"] for t in flt("route.destination-ipv6-cidr-block", "::/0")] == [rtb]

    # The gateway's routes go blackhole when it is deleted, and can then be deleted.
    ec2.delete_egress_only_internet_gateway(EgressOnlyInternetGatewayId=gid)
    states = {r.get("DestinationIpv6CidrBlock"): r["State"] for r in routes_of(ec2, rtb)}
    assert states["::/0"] == "blackhole" and states["2001:db8::/32"] == "blackhole"
    ec2.delete_route(RouteTableId=rtb, DestinationIpv6CidrBlock="::/0")
    ec2.delete_route(RouteTableId=rtb, DestinationIpv6CidrBlock="2001:db8::/32")
    assert [r.get("GatewayId") for r in routes_of(ec2, rtb)] == ["local"]


def test_a_gateway_of_another_vpc_is_refused(ec2, vpc):
    other = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    gid = gateway(ec2, other)["EgressOnlyInternetGatewayId"]
    rtb = ec2.create_route_table(VpcId=vpc["VpcId"])["RouteTable"]["RouteTableId"]
    with expect_error("InvalidParameterValue", 400):
        ec2.create_route(RouteTableId=rtb, DestinationIpv6CidrBlock="::/0", EgressOnlyInternetGatewayId=gid)
