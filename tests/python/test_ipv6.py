"""IPv6 as Terraform's `assign_generated_ipv6_cidr_block` and the VPC module's `enable_ipv6`
use it: an Amazon-provided /56 per VPC, /64 subnets, addresses on creation, routes."""

import ipaddress

import pytest
from support import expect_error


@pytest.fixture
def vpc6(ec2):
    out = ec2.create_vpc(CidrBlock="10.6.0.0/16", AmazonProvidedIpv6CidrBlock=True)["Vpc"]
    yield out
    # Best effort: tests below delete what they can.


def block_of(vpc):
    [assoc] = vpc["Ipv6CidrBlockAssociationSet"]
    return assoc


def test_vpc_gets_an_amazon_provided_56(ec2, vpc6):
    made = block_of(vpc6)
    assert made["Ipv6CidrBlockState"]["State"] == "associating"
    net = ipaddress.ip_network(made["Ipv6CidrBlock"])
    assert net.prefixlen == 56 and net.version == 6
    [shown] = ec2.describe_vpcs(VpcIds=[vpc6["VpcId"]])["Vpcs"]
    assoc = block_of(shown)
    assert assoc["Ipv6CidrBlock"] == made["Ipv6CidrBlock"]
    assert assoc["Ipv6CidrBlockState"]["State"] == "associated"
    assert (assoc["Ipv6Pool"], assoc["NetworkBorderGroup"]) == ("Amazon", "us-east-1")
    found = ec2.describe_vpcs(Filters=[{"Name": "ipv6-cidr-block-association.ipv6-cidr-block",
                                        "Values": [made["Ipv6CidrBlock"]]}])["Vpcs"]
    assert [v["VpcId"] for v in found] == [vpc6["VpcId"]]
    # Each VPC its own block.
    other = ec2.create_vpc(CidrBlock="10.7.0.0/16", AmazonProvidedIpv6CidrBlock=True)["Vpc"]
    assert block_of(other)["Ipv6CidrBlock"] != made["Ipv6CidrBlock"]
    ec2.delete_vpc(VpcId=other["VpcId"])
    # A VPC without one shows none.
    plain = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]
    assert not plain.get("Ipv6CidrBlockAssociationSet")
    ec2.delete_vpc(VpcId=plain["VpcId"])


def test_defaults_learn_ipv6(ec2, vpc6):
    vid = vpc6["VpcId"]
    block = block_of(vpc6)["Ipv6CidrBlock"]
    [main] = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vid]}])["RouteTables"]
    assert {"DestinationIpv6CidrBlock": block, "GatewayId": "local", "Origin": "CreateRouteTable",
            "State": "active"} in main["Routes"]
    [acl] = ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [vid]}])["NetworkAcls"]
    v6 = sorted((e["RuleNumber"], e["Egress"], e["RuleAction"]) for e in acl["Entries"] if e.get("Ipv6CidrBlock") == "::/0")
    assert v6 == [(101, False, "allow"), (101, True, "allow"), (32767, False, "deny"), (32767, True, "deny")]
    [group] = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vid]},
                                                     {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"]
    assert [r["CidrIpv6"] for p in group["IpPermissionsEgress"] for r in p.get("Ipv6Ranges", [])] == ["::/0"]
    # A table made later has the local route too.
    rtb = ec2.create_route_table(VpcId=vid)["RouteTable"]
    assert any(r.get("DestinationIpv6CidrBlock") == block for r in rtb["Routes"])


def test_subnets_take_64s_of_the_vpc_block(ec2, vpc6):
    vid = vpc6["VpcId"]
    net = ipaddress.ip_network(block_of(vpc6)["Ipv6CidrBlock"])
    first, second, third = [str(s) for s in list(net.subnets(new_prefix=64))[:3]]
    subnet = ec2.create_subnet(VpcId=vid, CidrBlock="10.6.1.0/24", Ipv6CidrBlock=first)["Subnet"]
    [assoc] = subnet["Ipv6CidrBlockAssociationSet"]
    assert assoc["Ipv6CidrBlock"] == first and assoc["Ipv6CidrBlockState"]["State"] == "associating"
    [shown] = ec2.describe_subnets(SubnetIds=[subnet["SubnetId"]])["Subnets"]
    assert shown["Ipv6CidrBlockAssociationSet"][0]["Ipv6CidrBlockState"]["State"] == "associated"
    with expect_error("InvalidSubnet.Conflict", 400):
        ec2.create_subnet(VpcId=vid, CidrBlock="10.6.2.0/24", Ipv6CidrBlock=first)
    with expect_error("InvalidSubnet.Range", 400):
        ec2.create_subnet(VpcId=vid, CidrBlock="10.6.2.0/24", Ipv6CidrBlock="2001:db8::/64")
    with expect_error("InvalidSubnet.Range", 400):
        ec2.create_subnet(VpcId=vid, CidrBlock="10.6.2.0/24", Ipv6CidrBlock=str(net))
    # Associate and disassociate later, as Terraform does on update.
    later = ec2.create_subnet(VpcId=vid, CidrBlock="10.6.2.0/24")["Subnet"]["SubnetId"]
    with expect_error("InvalidParameterValue", 400):
        ec2.modify_subnet_attribute(SubnetId=later, AssignIpv6AddressOnCreation={"Value": True})
    out = ec2.associate_subnet_cidr_block(SubnetId=later, Ipv6CidrBlock=second)
    assert out["SubnetId"] == later and out["Ipv6CidrBlockAssociation"]["Ipv6CidrBlock"] == second
    with expect_error("InvalidSubnet.Conflict", 400):
        ec2.create_subnet(VpcId=vid, CidrBlock="10.6.3.0/24", Ipv6CidrBlock=second)
    ec2.disassociate_subnet_cidr_block(AssociationId=out["Ipv6CidrBlockAssociation"]["AssociationId"])
    [shown] = ec2.describe_subnets(SubnetIds=[later])["Subnets"]
    assert not shown.get("Ipv6CidrBlockAssociationSet")
    ec2.create_subnet(VpcId=vid, CidrBlock="10.6.3.0/24", Ipv6CidrBlock=second)
    del third


def test_interfaces_and_instances_get_an_address_on_creation(ec2, vpc6):
    vid = vpc6["VpcId"]
    net = ipaddress.ip_network(block_of(vpc6)["Ipv6CidrBlock"])
    sixty_four = next(net.subnets(new_prefix=64))
    sid = ec2.create_subnet(VpcId=vid, CidrBlock="10.6.9.0/24", Ipv6CidrBlock=str(sixty_four))["Subnet"]["SubnetId"]
    plain = ec2.create_network_interface(SubnetId=sid)["NetworkInterface"]
    assert plain["Ipv6Addresses"] == []
    ec2.modify_subnet_attribute(SubnetId=sid, AssignIpv6AddressOnCreation={"Value": True})
    [shown] = ec2.describe_subnets(SubnetIds=[sid])["Subnets"]
    assert shown["AssignIpv6AddressOnCreation"] is True
    eni = ec2.create_network_interface(SubnetId=sid)["NetworkInterface"]
    [addr] = eni["Ipv6Addresses"]
    assert ipaddress.ip_address(addr["Ipv6Address"]) in sixty_four
    ami = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["al2023-ami-2023.*-x86_64"]}])["Images"][0]["ImageId"]
    [inst] = ec2.run_instances(ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1, SubnetId=sid)["Instances"]
    [nic] = inst["NetworkInterfaces"]
    [addr] = nic["Ipv6Addresses"]
    assert ipaddress.ip_address(addr["Ipv6Address"]) in sixty_four
    found = ec2.describe_instances(Filters=[{"Name": "ipv6-address", "Values": [addr["Ipv6Address"]]}])["Reservations"]
    assert [i["InstanceId"] for r in found for i in r["Instances"]] == [inst["InstanceId"]]
    # The block cannot go while interfaces hold addresses of it.
    assoc = shown["Ipv6CidrBlockAssociationSet"][0]["AssociationId"]
    with expect_error("DependencyViolation", 400):
        ec2.disassociate_subnet_cidr_block(AssociationId=assoc)


def test_default_routes_to_internet_and_egress_only_gateways(ec2, vpc6):
    vid = vpc6["VpcId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vid)
    eigw = ec2.create_egress_only_internet_gateway(VpcId=vid)["EgressOnlyInternetGateway"]["EgressOnlyInternetGatewayId"]
    public = ec2.create_route_table(VpcId=vid)["RouteTable"]["RouteTableId"]
    private = ec2.create_route_table(VpcId=vid)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=public, DestinationIpv6CidrBlock="::/0", GatewayId=igw)
    ec2.create_route(RouteTableId=private, DestinationIpv6CidrBlock="::/0", EgressOnlyInternetGatewayId=eigw)
    [pub, priv] = ec2.describe_route_tables(RouteTableIds=[public, private])["RouteTables"]
    if pub["RouteTableId"] != public:
        pub, priv = priv, pub
    assert any(r.get("DestinationIpv6CidrBlock") == "::/0" and r.get("GatewayId") == igw for r in pub["Routes"])
    assert any(r.get("DestinationIpv6CidrBlock") == "::/0" and r.get("EgressOnlyInternetGatewayId") == eigw
               for r in priv["Routes"])


def test_associate_and_disassociate_a_vpc_block(ec2):
    vid = ec2.create_vpc(CidrBlock="10.5.0.0/16")["Vpc"]["VpcId"]
    out = ec2.associate_vpc_cidr_block(VpcId=vid, AmazonProvidedIpv6CidrBlock=True)
    assoc = out["Ipv6CidrBlockAssociation"]
    assert assoc["Ipv6CidrBlockState"]["State"] == "associating"
    block = assoc["Ipv6CidrBlock"]
    sixty_four = str(next(ipaddress.ip_network(block).subnets(new_prefix=64)))
    sid = ec2.create_subnet(VpcId=vid, CidrBlock="10.5.1.0/24", Ipv6CidrBlock=sixty_four)["Subnet"]["SubnetId"]
    with expect_error("DependencyViolation", 400):
        ec2.disassociate_vpc_cidr_block(AssociationId=assoc["AssociationId"])
    ec2.delete_subnet(SubnetId=sid)
    gone = ec2.disassociate_vpc_cidr_block(AssociationId=assoc["AssociationId"])
    assert gone["Ipv6CidrBlockAssociation"]["Ipv6CidrBlockState"]["State"] == "disassociating"
    [shown] = ec2.describe_vpcs(VpcIds=[vid])["Vpcs"]
    assert not shown.get("Ipv6CidrBlockAssociationSet")
    [main] = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vid]}])["RouteTables"]
    assert not any(r.get("DestinationIpv6CidrBlock") == block for r in main["Routes"])


def test_reachability_says_plainly_it_does_not_analyse_ipv6(ec2, vpc6):
    from botocore.exceptions import ClientError

    sid = ec2.create_subnet(VpcId=vpc6["VpcId"], CidrBlock="10.6.20.0/24")["Subnet"]["SubnetId"]
    eni = ec2.create_network_interface(SubnetId=sid)["NetworkInterface"]["NetworkInterfaceId"]
    other = ec2.create_network_interface(SubnetId=sid)["NetworkInterface"]["NetworkInterfaceId"]
    try:
        ec2.create_network_insights_path(Source=eni, Destination=other, DestinationIp="2600:1f10::1",
                                         Protocol="tcp", DestinationPort=22)
    except ClientError as e:
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 501
        assert "IPv6" in e.response["Error"]["Message"]
    else:
        raise AssertionError("an IPv6 path was accepted, and would be answered as if IPv4")


def test_ipv6_addresses_asked_for_assigned_and_unassigned(ec2, vpc6):
    vid = vpc6["VpcId"]
    net = ipaddress.ip_network(block_of(vpc6)["Ipv6CidrBlock"])
    sixty_four = list(net.subnets(new_prefix=64))[5]
    sid = ec2.create_subnet(VpcId=vid, CidrBlock="10.6.40.0/24", Ipv6CidrBlock=str(sixty_four))["Subnet"]["SubnetId"]
    two = ec2.create_network_interface(SubnetId=sid, Ipv6AddressCount=2)["NetworkInterface"]
    assert len({a["Ipv6Address"] for a in two["Ipv6Addresses"]}) == 2
    chosen = str(sixty_four[0x1234])
    named = ec2.create_network_interface(SubnetId=sid, Ipv6Addresses=[{"Ipv6Address": chosen}])["NetworkInterface"]
    assert [a["Ipv6Address"] for a in named["Ipv6Addresses"]] == [chosen]
    with expect_error("InvalidParameterValue", 400):
        ec2.create_network_interface(SubnetId=sid, Ipv6Addresses=[{"Ipv6Address": chosen}])  # taken
    with expect_error("InvalidParameterValue", 400):
        ec2.create_network_interface(SubnetId=sid, Ipv6Addresses=[{"Ipv6Address": "2001:db8::1"}])  # outside
    out = ec2.assign_ipv6_addresses(NetworkInterfaceId=named["NetworkInterfaceId"], Ipv6AddressCount=1)
    [extra] = out["AssignedIpv6Addresses"]
    assert ipaddress.ip_address(extra) in sixty_four
    ec2.unassign_ipv6_addresses(NetworkInterfaceId=named["NetworkInterfaceId"], Ipv6Addresses=[chosen])
    [shown] = ec2.describe_network_interfaces(NetworkInterfaceIds=[named["NetworkInterfaceId"]])["NetworkInterfaces"]
    assert [a["Ipv6Address"] for a in shown["Ipv6Addresses"]] == [extra]
    ami = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["al2023-ami-2023.*-x86_64"]}])["Images"][0]["ImageId"]
    [inst] = ec2.run_instances(ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1, SubnetId=sid,
                               Ipv6AddressCount=3)["Instances"]
    assert len(inst["NetworkInterfaces"][0]["Ipv6Addresses"]) == 3
    # A subnet without a block gives none.
    plain = ec2.create_subnet(VpcId=vid, CidrBlock="10.6.41.0/24")["Subnet"]["SubnetId"]
    with expect_error("InvalidParameterValue", 400):
        ec2.create_network_interface(SubnetId=plain, Ipv6AddressCount=1)


def test_subnet_cidr_reservations(ec2, vpc6):
    vid = vpc6["VpcId"]
    net = ipaddress.ip_network(block_of(vpc6)["Ipv6CidrBlock"])
    sixty_four = list(net.subnets(new_prefix=64))[7]
    sid = ec2.create_subnet(VpcId=vid, CidrBlock="10.6.50.0/24", Ipv6CidrBlock=str(sixty_four))["Subnet"]["SubnetId"]
    # The first usable addresses are reserved: automatic picks go past them.
    r4 = ec2.create_subnet_cidr_reservation(SubnetId=sid, Cidr="10.6.50.0/27", ReservationType="explicit",
                                            Description="appliances")["SubnetCidrReservation"]
    assert (r4["Cidr"], r4["ReservationType"], r4["Description"]) == ("10.6.50.0/27", "explicit", "appliances")
    auto = ec2.create_network_interface(SubnetId=sid)["NetworkInterface"]["PrivateIpAddress"]
    assert ipaddress.ip_address(auto) not in ipaddress.ip_network("10.6.50.0/27")
    named = ec2.create_network_interface(SubnetId=sid, PrivateIpAddress="10.6.50.9")["NetworkInterface"]
    assert named["PrivateIpAddress"] == "10.6.50.9", "asked for by name, a reserved address is given"
    with expect_error("InvalidSubnetCidrReservation.Conflict", 400):
        ec2.create_subnet_cidr_reservation(SubnetId=sid, Cidr="10.6.50.16/28", ReservationType="prefix")
    with expect_error("InvalidSubnet.Range", 400):
        ec2.create_subnet_cidr_reservation(SubnetId=sid, Cidr="10.6.51.0/28", ReservationType="prefix")
    r6 = ec2.create_subnet_cidr_reservation(SubnetId=sid, Cidr=str(next(sixty_four.subnets(new_prefix=80))),
                                            ReservationType="prefix")["SubnetCidrReservation"]
    got = ec2.get_subnet_cidr_reservations(SubnetId=sid)
    assert [r["SubnetCidrReservationId"] for r in got["SubnetIpv4CidrReservations"]] == [r4["SubnetCidrReservationId"]]
    assert [r["SubnetCidrReservationId"] for r in got["SubnetIpv6CidrReservations"]] == [r6["SubnetCidrReservationId"]]
    with expect_error("DependencyViolation", 400):
        ec2.delete_subnet(SubnetId=sid)
    ec2.delete_subnet_cidr_reservation(SubnetCidrReservationId=r4["SubnetCidrReservationId"])
    ec2.delete_network_interface(NetworkInterfaceId=named["NetworkInterfaceId"])
    low = ec2.create_network_interface(SubnetId=sid)["NetworkInterface"]["PrivateIpAddress"]
    assert low == "10.6.50.4", "the range is free for automatic picks again"
