"""Route tables: the main table of every VPC, associations, routes to gateways, blackholes."""
from support import expect_error, tag_spec


def tables_of(ec2, vpc_id, *filters):
    flt = [{"Name": "vpc-id", "Values": [vpc_id]}, *filters]
    return ec2.describe_route_tables(Filters=flt)["RouteTables"]


MAIN = {"Name": "association.main", "Values": ["true"]}


def test_every_vpc_has_a_main_table_with_the_local_route(ec2, vpc):
    (main,) = tables_of(ec2, vpc["VpcId"])
    assert main["RouteTableId"].startswith("rtb-")
    assert main["Routes"] == [
        {"DestinationCidrBlock": "10.0.0.0/16", "GatewayId": "local", "Origin": "CreateRouteTable", "State": "active"}
    ]
    (assoc,) = main["Associations"]
    assert assoc["Main"] is True and "SubnetId" not in assoc
    assert assoc["AssociationState"] == {"State": "associated"}
    found = ec2.describe_route_tables(Filters=[MAIN, {"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["RouteTables"]
    assert [t["RouteTableId"] for t in found] == [main["RouteTableId"]]
    # The main table cannot be deleted, nor its local route removed; it goes with its VPC.
    with expect_error("DependencyViolation"):
        ec2.delete_route_table(RouteTableId=main["RouteTableId"])
    with expect_error("InvalidParameterValue"):
        ec2.delete_route(RouteTableId=main["RouteTableId"], DestinationCidrBlock="10.0.0.0/16")
    ec2.delete_vpc(VpcId=vpc["VpcId"])
    assert ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["RouteTables"] == []


def test_a_custom_table_blocks_deleting_its_vpc(ec2, vpc):
    rid = ec2.create_route_table(VpcId=vpc["VpcId"])["RouteTable"]["RouteTableId"]
    with expect_error("DependencyViolation"):
        ec2.delete_vpc(VpcId=vpc["VpcId"])
    ec2.delete_route_table(RouteTableId=rid)
    ec2.delete_vpc(VpcId=vpc["VpcId"])


def test_public_subnet_layout(ec2, vpc):
    """The classic public subnet: its own table with 0.0.0.0/0 to an attached gateway."""
    vid = vpc["VpcId"]
    public = ec2.create_subnet(VpcId=vid, CidrBlock="10.0.0.0/24")["Subnet"]["SubnetId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    rtb = ec2.create_route_table(VpcId=vid, TagSpecifications=tag_spec("route-table", Name="public"))["RouteTable"]
    rid = rtb["RouteTableId"]
    assert rtb.get("Associations", []) == [] and rtb["Routes"][0]["GatewayId"] == "local"
    assert {"Key": "Name", "Value": "public"} in rtb["Tags"]

    # A gateway must be attached to the VPC before routes may use it.
    with expect_error("InvalidParameterValue"):
        ec2.create_route(RouteTableId=rid, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    with expect_error("InvalidGatewayID.NotFound"):
        ec2.create_route(RouteTableId=rid, DestinationCidrBlock="0.0.0.0/0", GatewayId="igw-0123456789abcdef0")
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vid)
    assert ec2.create_route(RouteTableId=rid, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)["Return"] is True
    with expect_error("RouteAlreadyExists"):
        ec2.create_route(RouteTableId=rid, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)

    assoc = ec2.associate_route_table(RouteTableId=rid, SubnetId=public)["AssociationId"]
    assert assoc.startswith("rtbassoc-")
    with expect_error("Resource.AlreadyAssociated"):
        ec2.associate_route_table(RouteTableId=rid, SubnetId=public)
    by_subnet = ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": [public]}])
    assert [t["RouteTableId"] for t in by_subnet["RouteTables"]] == [rid]
    with expect_error("DependencyViolation"):
        ec2.delete_route_table(RouteTableId=rid)

    # Detaching the gateway turns its routes into blackholes; reattaching revives them.
    ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=vid)
    (t,) = ec2.describe_route_tables(RouteTableIds=[rid])["RouteTables"]
    default = [r for r in t["Routes"] if r["DestinationCidrBlock"] == "0.0.0.0/0"][0]
    assert (default["GatewayId"], default["State"], default["Origin"]) == (igw, "blackhole", "CreateRoute")
    black = ec2.describe_route_tables(Filters=[{"Name": "route.state", "Values": ["blackhole"]}])["RouteTables"]
    assert [x["RouteTableId"] for x in black] == [rid]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vid)
    (t,) = ec2.describe_route_tables(RouteTableIds=[rid])["RouteTables"]
    assert all(r["State"] == "active" for r in t["Routes"])

    # Deleting the subnet drops its association; then the table can go.
    ec2.delete_subnet(SubnetId=public)
    (t,) = ec2.describe_route_tables(RouteTableIds=[rid])["RouteTables"]
    assert t.get("Associations", []) == []
    ec2.delete_route(RouteTableId=rid, DestinationCidrBlock="0.0.0.0/0")
    with expect_error("InvalidRoute.NotFound"):
        ec2.delete_route(RouteTableId=rid, DestinationCidrBlock="0.0.0.0/0")
    ec2.delete_route_table(RouteTableId=rid)
    with expect_error("InvalidRouteTableID.NotFound"):
        ec2.describe_route_tables(RouteTableIds=[rid])


def test_replace_route_and_associations(ec2, vpc):
    vid = vpc["VpcId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vid)
    rid = ec2.create_route_table(VpcId=vid)["RouteTable"]["RouteTableId"]
    with expect_error("InvalidParameterValue"):  # nothing to replace yet
        ec2.replace_route(RouteTableId=rid, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    ec2.create_route(RouteTableId=rid, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    ec2.replace_route(RouteTableId=rid, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    with expect_error("InvalidNatGatewayID.NotFound"):
        ec2.replace_route(RouteTableId=rid, DestinationCidrBlock="0.0.0.0/0", NatGatewayId="nat-0123456789abcdef0")

    sid = ec2.create_subnet(VpcId=vid, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    assoc = ec2.associate_route_table(RouteTableId=rid, SubnetId=sid)["AssociationId"]
    (main,) = tables_of(ec2, vid, MAIN)
    # Move the subnet back to the main table, then make the custom table main.
    new = ec2.replace_route_table_association(AssociationId=assoc, RouteTableId=main["RouteTableId"])["NewAssociationId"]
    assert new != assoc
    (main,) = tables_of(ec2, vid, MAIN)
    assert any(a.get("SubnetId") == sid for a in main["Associations"])
    main_assoc = [a for a in main["Associations"] if a["Main"]][0]["RouteTableAssociationId"]
    ec2.replace_route_table_association(AssociationId=main_assoc, RouteTableId=rid)
    (now_main,) = tables_of(ec2, vid, MAIN)
    assert now_main["RouteTableId"] == rid
    with expect_error("InvalidParameterValue"):
        main_now = [a for a in now_main["Associations"] if a["Main"]][0]["RouteTableAssociationId"]
        ec2.disassociate_route_table(AssociationId=main_now)
    ec2.disassociate_route_table(AssociationId=new)
    with expect_error("InvalidAssociationID.NotFound"):
        ec2.disassociate_route_table(AssociationId=new)
    # A subnet of another VPC cannot use this table.
    other = ec2.create_vpc(CidrBlock="10.5.0.0/16")["Vpc"]["VpcId"]
    osub = ec2.create_subnet(VpcId=other, CidrBlock="10.5.0.0/24")["Subnet"]["SubnetId"]
    with expect_error("InvalidParameterValue"):
        ec2.associate_route_table(RouteTableId=rid, SubnetId=osub)
