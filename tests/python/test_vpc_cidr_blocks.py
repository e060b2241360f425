"""Secondary IPv4 blocks: AssociateVpcCidrBlock / DisassociateVpcCidrBlock with AWS's range
rules, the `local` route each block brings, and subnets carved from a secondary block."""
from support import expect_error


def local_routes(ec2, vpc_id):
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["RouteTables"]
    return [sorted(r["DestinationCidrBlock"] for r in t["Routes"] if r.get("GatewayId") == "local") for t in tables]


def test_add_use_and_remove_a_block(ec2, vpc):
    vid = vpc["VpcId"]
    custom = ec2.create_route_table(VpcId=vid)["RouteTable"]["RouteTableId"]
    out = ec2.associate_vpc_cidr_block(VpcId=vid, CidrBlock="10.1.0.0/16")
    assoc = out["CidrBlockAssociation"]
    assert out["VpcId"] == vid and assoc["CidrBlock"] == "10.1.0.0/16"
    assert assoc["CidrBlockState"]["State"] == "associating"
    (v,) = ec2.describe_vpcs(VpcIds=[vid])["Vpcs"]
    assert v["CidrBlock"] == "10.0.0.0/16"  # the primary block stays the VPC's CidrBlock
    assert [(a["CidrBlock"], a["CidrBlockState"]["State"]) for a in v["CidrBlockAssociationSet"]] == [
        ("10.0.0.0/16", "associated"),
        ("10.1.0.0/16", "associated"),
    ]
    # Every table of the VPC, the main one and the custom one, routes the new block locally.
    assert local_routes(ec2, vid) == [["10.0.0.0/16", "10.1.0.0/16"]] * 2
    found = ec2.describe_vpcs(Filters=[{"Name": "cidr-block-association.cidr-block", "Values": ["10.1.0.0/16"]}])["Vpcs"]
    assert [x["VpcId"] for x in found] == [vid]

    sid = ec2.create_subnet(VpcId=vid, CidrBlock="10.1.4.0/24")["Subnet"]["SubnetId"]
    with expect_error("DependencyViolation"):
        ec2.disassociate_vpc_cidr_block(AssociationId=assoc["AssociationId"])
    ec2.delete_subnet(SubnetId=sid)
    out = ec2.disassociate_vpc_cidr_block(AssociationId=assoc["AssociationId"])
    assert out["CidrBlockAssociation"]["CidrBlockState"]["State"] == "disassociating"
    assert local_routes(ec2, vid) == [["10.0.0.0/16"]] * 2
    with expect_error("InvalidSubnet.Range"):
        ec2.create_subnet(VpcId=vid, CidrBlock="10.1.4.0/24")
    with expect_error("InvalidVpcCidrBlockAssociationID.NotFound"):
        ec2.disassociate_vpc_cidr_block(AssociationId=assoc["AssociationId"])
    primary = v["CidrBlockAssociationSet"][0]["AssociationId"]
    with expect_error("OperationNotPermitted"):
        ec2.disassociate_vpc_cidr_block(AssociationId=primary)
    ec2.delete_route_table(RouteTableId=custom)


def test_range_rules_and_quota(ec2, vpc):
    vid = vpc["VpcId"]
    for bad in ["10.0.128.0/17", "172.16.0.0/16", "192.168.0.0/16", "198.19.0.0/16", "169.254.0.0/16", "10.2.0.0/15", "10.3.0.0/29"]:
        with expect_error("InvalidVpc.Range"):
            ec2.associate_vpc_cidr_block(VpcId=vid, CidrBlock=bad)
    with expect_error("InvalidParameterValue"):
        ec2.associate_vpc_cidr_block(VpcId=vid, CidrBlock="10.1.0.0/33")
    with expect_error("InvalidVpcID.NotFound"):
        ec2.associate_vpc_cidr_block(VpcId="vpc-0123456789abcdef0", CidrBlock="10.1.0.0/16")
    # A block may not swallow a route's destination already sent elsewhere.
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vid)
    main = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vid]}])["RouteTables"][0]["RouteTableId"]
    ec2.create_route(RouteTableId=main, DestinationCidrBlock="10.5.1.0/24", GatewayId=igw)
    with expect_error("InvalidVpc.Range"):
        ec2.associate_vpc_cidr_block(VpcId=vid, CidrBlock="10.5.0.0/16")
    ec2.delete_route(RouteTableId=main, DestinationCidrBlock="10.5.1.0/24")
    # Shared address space and public ranges may be added to a 10/8 VPC; five blocks in all.
    for good in ["100.64.0.0/16", "10.1.0.0/16", "10.2.0.0/16", "203.0.113.0/24"]:
        ec2.associate_vpc_cidr_block(VpcId=vid, CidrBlock=good)
    with expect_error("CidrLimitExceeded"):
        ec2.associate_vpc_cidr_block(VpcId=vid, CidrBlock="10.3.0.0/16")
