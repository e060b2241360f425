"""VPC endpoints: gateway endpoints (S3, DynamoDB) as routes from the service's AWS-managed
prefix list, interface endpoints as interfaces in their subnets; the region's services."""

import pytest
from support import expect_error, tag_spec


@pytest.fixture
def net(ec2):
    vid = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    a = ec2.create_subnet(VpcId=vid, CidrBlock="10.40.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    b = ec2.create_subnet(VpcId=vid, CidrBlock="10.40.2.0/24", AvailabilityZone="us-east-1b")["Subnet"]["SubnetId"]
    rtb = ec2.create_route_table(VpcId=vid)["RouteTable"]["RouteTableId"]
    return vid, a, b, rtb


def test_aws_managed_prefix_lists(ec2):
    lists = ec2.describe_prefix_lists()["PrefixLists"]
    names = sorted(p["PrefixListName"] for p in lists)
    assert names == ["com.amazonaws.us-east-1.dynamodb", "com.amazonaws.us-east-1.s3"]
    [s3] = ec2.describe_prefix_lists(Filters=[{"Name": "prefix-list-name", "Values": ["com.amazonaws.us-east-1.s3"]}])["PrefixLists"]
    assert s3["PrefixListId"].startswith("pl-") and s3["Cidrs"]
    [managed] = ec2.describe_managed_prefix_lists(PrefixListIds=[s3["PrefixListId"]])["PrefixLists"]
    assert (managed["OwnerId"], managed["PrefixListName"], managed["State"]) == ("AWS", s3["PrefixListName"], "create-complete")
    entries = ec2.get_managed_prefix_list_entries(PrefixListId=s3["PrefixListId"])["Entries"]
    assert [e["Cidr"] for e in entries] == s3["Cidrs"]
    # Other regions have their own.
    from support import client
    tokyo = client("ec2", ec2.meta.endpoint_url, "ap-northeast-1").describe_prefix_lists()["PrefixLists"]
    assert {p["PrefixListId"] for p in tokyo}.isdisjoint({p["PrefixListId"] for p in lists})


def test_gateway_endpoint_routes_the_service(ec2, net):
    vid, _, _, rtb = net
    [s3] = ec2.describe_prefix_lists(Filters=[{"Name": "prefix-list-name", "Values": ["com.amazonaws.us-east-1.s3"]}])["PrefixLists"]
    ep = ec2.create_vpc_endpoint(VpcId=vid, ServiceName="com.amazonaws.us-east-1.s3", RouteTableIds=[rtb],
                                 TagSpecifications=tag_spec("vpc-endpoint", Name="s3"))["VpcEndpoint"]
    eid = ep["VpcEndpointId"]
    assert (ep["VpcEndpointType"], ep["State"], ep["RouteTableIds"]) == ("Gateway", "available", [rtb])
    assert '"Action":"*"' in ep["PolicyDocument"].replace(" ", "")
    [table] = ec2.describe_route_tables(RouteTableIds=[rtb])["RouteTables"]
    assert {"DestinationPrefixListId": s3["PrefixListId"], "GatewayId": eid, "Origin": "CreateRoute",
            "State": "active"} in table["Routes"]
    [shown] = ec2.describe_vpc_endpoints(Filters=[{"Name": "service-name", "Values": ["com.amazonaws.us-east-1.s3"]},
                                                  {"Name": "vpc-id", "Values": [vid]}])["VpcEndpoints"]
    assert shown["VpcEndpointId"] == eid and {"Key": "Name", "Value": "s3"} in shown["Tags"]
    # A second endpoint for the same service cannot route from the same table.
    with expect_error("RouteAlreadyExists", 400):
        ec2.create_vpc_endpoint(VpcId=vid, ServiceName="com.amazonaws.us-east-1.s3", RouteTableIds=[rtb])
    # The VPC cannot go while the endpoint is there.
    with expect_error("DependencyViolation", 400):
        ec2.delete_vpc(VpcId=vid)
    # Modify: the table leaves, the route goes; back again.
    assert ec2.modify_vpc_endpoint(VpcEndpointId=eid, RemoveRouteTableIds=[rtb])["Return"] is True
    [table] = ec2.describe_route_tables(RouteTableIds=[rtb])["RouteTables"]
    assert not any(r.get("GatewayId") == eid for r in table["Routes"])
    ec2.modify_vpc_endpoint(VpcEndpointId=eid, AddRouteTableIds=[rtb])
    [table] = ec2.describe_route_tables(RouteTableIds=[rtb])["RouteTables"]
    assert any(r.get("GatewayId") == eid for r in table["Routes"])
    out = ec2.delete_vpc_endpoints(VpcEndpointIds=[eid, "vpce-0123456789abcdef0"])
    assert [u["ResourceId"] for u in out["Unsuccessful"]] == ["vpce-0123456789abcdef0"]
    assert out["Unsuccessful"][0]["Error"]["Code"] == "InvalidVpcEndpointId.NotFound"
    [table] = ec2.describe_route_tables(RouteTableIds=[rtb])["RouteTables"]
    assert not any(r.get("GatewayId") == eid for r in table["Routes"])
    assert ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vid]}])["VpcEndpoints"] == []


def test_bad_endpoint_requests(ec2, net):
    vid, a, _, rtb = net
    with expect_error("InvalidServiceName", 400):
        ec2.create_vpc_endpoint(VpcId=vid, ServiceName="com.amazonaws.us-east-1.nope", RouteTableIds=[rtb])
    with expect_error("InvalidParameterValue", 400):
        ec2.create_vpc_endpoint(VpcId=vid, ServiceName="com.amazonaws.us-east-1.ssm", VpcEndpointType="Gateway")
    with expect_error("InvalidVpcID.NotFound", 400):
        ec2.create_vpc_endpoint(VpcId="vpc-0123456789abcdef0", ServiceName="com.amazonaws.us-east-1.s3")
    with expect_error("InvalidVpcEndpointId.Malformed", 400):
        ec2.describe_vpc_endpoints(VpcEndpointIds=["nope"])
    # Private DNS (the default for interface endpoints) needs the VPC's DNS hostnames on.
    with expect_error("InvalidParameterValue", 400):
        ec2.create_vpc_endpoint(VpcId=vid, ServiceName="com.amazonaws.us-east-1.ssm",
                                VpcEndpointType="Interface", SubnetIds=[a])


def test_interface_endpoint_has_an_interface_per_subnet(ec2, net):
    vid, a, b, _ = net
    ec2.modify_vpc_attribute(VpcId=vid, EnableDnsHostnames={"Value": True})
    sg = ec2.create_security_group(GroupName="endpoints", Description="d", VpcId=vid)["GroupId"]
    ep = ec2.create_vpc_endpoint(VpcId=vid, ServiceName="com.amazonaws.us-east-1.ssm", VpcEndpointType="Interface",
                                 SubnetIds=[a, b], SecurityGroupIds=[sg])["VpcEndpoint"]
    assert ep["PrivateDnsEnabled"] is True and ep["SubnetIds"] == [a, b]
    assert [g["GroupId"] for g in ep["Groups"]] == [sg]
    enis = ec2.describe_network_interfaces(NetworkInterfaceIds=ep["NetworkInterfaceIds"])["NetworkInterfaces"]
    assert sorted(e["SubnetId"] for e in enis) == sorted([a, b])
    assert all(e["InterfaceType"] == "vpc_endpoint" and e["RequesterManaged"] for e in enis)
    names = [d["DnsName"] for d in ep["DnsEntries"]]
    assert "ssm.us-east-1.amazonaws.com" in names
    assert any(n.endswith(".ssm.us-east-1.vpce.amazonaws.com") for n in names)
    # Its subnets cannot be deleted while it has interfaces there.
    with expect_error("DependencyViolation", 400):
        ec2.delete_subnet(SubnetId=a)
    ec2.modify_vpc_endpoint(VpcEndpointId=ep["VpcEndpointId"], RemoveSubnetIds=[a])
    ec2.delete_subnet(SubnetId=a)
    ec2.delete_vpc_endpoints(VpcEndpointIds=[ep["VpcEndpointId"]])
    assert ec2.describe_network_interfaces(Filters=[{"Name": "subnet-id", "Values": [b]}])["NetworkInterfaces"] == []


def test_endpoint_services(ec2):
    out = ec2.describe_vpc_endpoint_services()
    assert "com.amazonaws.us-east-1.s3" in out["ServiceNames"]
    gateways = ec2.describe_vpc_endpoint_services(Filters=[{"Name": "service-type", "Values": ["Gateway"]}])
    assert sorted(d["ServiceName"] for d in gateways["ServiceDetails"]) == [
        "com.amazonaws.us-east-1.dynamodb", "com.amazonaws.us-east-1.s3"]
    with expect_error("InvalidServiceName", 400):
        ec2.describe_vpc_endpoint_services(ServiceNames=["com.amazonaws.us-east-1.nope"])
