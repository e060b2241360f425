"""VPC peering: request, accept, reject, delete; overlapping blocks fail; routes through a
connection are live only while it is active; security groups may reference peered groups."""
from support import expect_error, tag_dict, tag_spec


def two_vpcs(ec2, a="10.0.0.0/16", b="10.1.0.0/16"):
    return ec2.create_vpc(CidrBlock=a)["Vpc"]["VpcId"], ec2.create_vpc(CidrBlock=b)["Vpc"]["VpcId"]


def status_of(ec2, pcx):
    return ec2.describe_vpc_peering_connections(VpcPeeringConnectionIds=[pcx])["VpcPeeringConnections"][0]["Status"]["Code"]


def test_request_accept_route_delete(ec2):
    a, b = two_vpcs(ec2)
    created = ec2.create_vpc_peering_connection(VpcId=a, PeerVpcId=b, TagSpecifications=tag_spec("vpc-peering-connection", Name="a-b"))["VpcPeeringConnection"]
    pcx = created["VpcPeeringConnectionId"]
    assert pcx.startswith("pcx-") and created["Status"]["Code"] == "initiating-request"
    assert created["RequesterVpcInfo"]["VpcId"] == a and created["AccepterVpcInfo"]["VpcId"] == b
    (shown,) = ec2.describe_vpc_peering_connections(VpcPeeringConnectionIds=[pcx])["VpcPeeringConnections"]
    assert shown["Status"]["Code"] == "pending-acceptance" and "ExpirationTime" in shown
    assert tag_dict(shown) == {"Name": "a-b"}
    assert shown["AccepterVpcInfo"]["CidrBlockSet"] == [{"CidrBlock": "10.1.0.0/16"}]
    with expect_error("VpcPeeringConnectionAlreadyExists"):
        ec2.create_vpc_peering_connection(VpcId=b, PeerVpcId=a)

    # A route to a pending connection leads nowhere yet.
    rtb = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [a]}])["RouteTables"][0]["RouteTableId"]
    ec2.create_route(RouteTableId=rtb, DestinationCidrBlock="10.1.0.0/16", VpcPeeringConnectionId=pcx)

    def route_state():
        routes = ec2.describe_route_tables(RouteTableIds=[rtb])["RouteTables"][0]["Routes"]
        return [r["State"] for r in routes if r.get("VpcPeeringConnectionId") == pcx]

    assert route_state() == ["blackhole"]
    accepted = ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=pcx)["VpcPeeringConnection"]
    assert accepted["Status"]["Code"] == "active"
    assert route_state() == ["active"]
    with expect_error("InvalidStateTransition"):
        ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=pcx)
    found = ec2.describe_vpc_peering_connections(Filters=[{"Name": "status-code", "Values": ["active"]}, {"Name": "requester-vpc-info.vpc-id", "Values": [a]}])
    assert [p["VpcPeeringConnectionId"] for p in found["VpcPeeringConnections"]] == [pcx]

    # Groups in peered VPCs may reference each other.
    ga = ec2.create_security_group(GroupName="a", Description="a", VpcId=a)["GroupId"]
    gb = ec2.create_security_group(GroupName="b", Description="b", VpcId=b)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=ga, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "UserIdGroupPairs": [{"GroupId": gb}]}])

    assert ec2.delete_vpc_peering_connection(VpcPeeringConnectionId=pcx)["Return"] is True
    assert status_of(ec2, pcx) == "deleted"
    assert route_state() == ["blackhole"]
    with expect_error("InvalidStateTransition"):
        ec2.delete_vpc_peering_connection(VpcPeeringConnectionId=pcx)
    with expect_error("InvalidVpcPeeringConnectionID.NotFound"):
        ec2.create_route(RouteTableId=rtb, DestinationCidrBlock="10.9.0.0/16", VpcPeeringConnectionId=pcx)


def test_overlap_fails_reject_and_bad_ids(ec2):
    a, b = two_vpcs(ec2, "10.0.0.0/16", "10.0.128.0/17")
    failed = ec2.create_vpc_peering_connection(VpcId=a, PeerVpcId=b)["VpcPeeringConnection"]
    assert failed["Status"] == {"Code": "failed", "Message": "Overlapping CIDR blocks"}
    with expect_error("InvalidStateTransition"):
        ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=failed["VpcPeeringConnectionId"])

    c = ec2.create_vpc(CidrBlock="10.2.0.0/16")["Vpc"]["VpcId"]
    pcx = ec2.create_vpc_peering_connection(VpcId=a, PeerVpcId=c)["VpcPeeringConnection"]["VpcPeeringConnectionId"]
    assert ec2.reject_vpc_peering_connection(VpcPeeringConnectionId=pcx)["Return"] is True
    assert status_of(ec2, pcx) == "rejected"
    # Rejected: a new request between the same VPCs may be made.
    ec2.create_vpc_peering_connection(VpcId=a, PeerVpcId=c)

    with expect_error("InvalidParameterValue"):
        ec2.create_vpc_peering_connection(VpcId=a, PeerVpcId=a)
    with expect_error("InvalidVpcID.NotFound"):
        ec2.create_vpc_peering_connection(VpcId=a, PeerVpcId="vpc-0123456789abcdef0")
    with expect_error("InvalidVpcPeeringConnectionID.NotFound"):
        ec2.describe_vpc_peering_connections(VpcPeeringConnectionIds=["pcx-0123456789abcdef0"])
    with expect_error("InvalidVpcPeeringConnectionID.Malformed"):
        ec2.accept_vpc_peering_connection(VpcPeeringConnectionId="peer-1")


def test_unpeered_groups_cannot_reference_each_other_and_vpc_delete_ends_peering(ec2):
    a, b = two_vpcs(ec2)
    ga = ec2.create_security_group(GroupName="a", Description="a", VpcId=a)["GroupId"]
    gb = ec2.create_security_group(GroupName="b", Description="b", VpcId=b)["GroupId"]
    with expect_error("InvalidGroup.NotFound"):
        ec2.authorize_security_group_ingress(GroupId=ga, IpPermissions=[{"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": gb}]}])
    pcx = ec2.create_vpc_peering_connection(VpcId=a, PeerVpcId=b)["VpcPeeringConnection"]["VpcPeeringConnectionId"]
    ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=pcx)
    ec2.delete_security_group(GroupId=gb)
    ec2.delete_vpc(VpcId=b)
    assert status_of(ec2, pcx) == "deleted"
