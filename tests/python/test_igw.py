"""Internet gateways: create, attach (one per VPC), detach, delete, and what they block."""
import threading
from collections import Counter

from botocore.exceptions import ClientError
from support import client, expect_error, tag_spec


def test_gateway_lifecycle_and_the_rules_between(ec2, vpc):
    igw = ec2.create_internet_gateway(TagSpecifications=tag_spec("internet-gateway", Name="gw"))["InternetGateway"]
    gid = igw["InternetGatewayId"]
    assert gid.startswith("igw-") and len(gid) == 21
    assert igw.get("Attachments", []) == []
    assert {"Key": "Name", "Value": "gw"} in igw["Tags"]

    ec2.attach_internet_gateway(InternetGatewayId=gid, VpcId=vpc["VpcId"])
    (shown,) = ec2.describe_internet_gateways(InternetGatewayIds=[gid])["InternetGateways"]
    assert shown["Attachments"] == [{"State": "available", "VpcId": vpc["VpcId"]}]
    by_vpc = ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc["VpcId"]]}])
    assert [g["InternetGatewayId"] for g in by_vpc["InternetGateways"]] == [gid]

    # Attached: the gateway and its VPC are each other's dependency.
    with expect_error("DependencyViolation"):
        ec2.delete_internet_gateway(InternetGatewayId=gid)
    with expect_error("DependencyViolation"):
        ec2.delete_vpc(VpcId=vpc["VpcId"])
    # One gateway per VPC, one VPC per gateway.
    other = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    with expect_error("Resource.AlreadyAssociated"):
        ec2.attach_internet_gateway(InternetGatewayId=other, VpcId=vpc["VpcId"])
    vpc2 = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    with expect_error("Resource.AlreadyAssociated"):
        ec2.attach_internet_gateway(InternetGatewayId=gid, VpcId=vpc2)
    with expect_error("Gateway.NotAttached"):
        ec2.detach_internet_gateway(InternetGatewayId=other, VpcId=vpc["VpcId"])

    with expect_error("DryRunOperation", 412):
        ec2.detach_internet_gateway(InternetGatewayId=gid, VpcId=vpc["VpcId"], DryRun=True)
    ec2.detach_internet_gateway(InternetGatewayId=gid, VpcId=vpc["VpcId"])
    assert ec2.describe_internet_gateways(InternetGatewayIds=[gid])["InternetGateways"][0].get("Attachments", []) == []
    ec2.delete_internet_gateway(InternetGatewayId=gid)
    ec2.delete_vpc(VpcId=vpc["VpcId"])
    with expect_error("InvalidInternetGatewayID.NotFound"):
        ec2.describe_internet_gateways(InternetGatewayIds=[gid])


def test_unknown_ids(ec2, vpc):
    with expect_error("InvalidInternetGatewayID.NotFound"):
        ec2.attach_internet_gateway(InternetGatewayId="igw-0123456789abcdef0", VpcId=vpc["VpcId"])
    gid = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    with expect_error("InvalidVpcID.NotFound"):
        ec2.attach_internet_gateway(InternetGatewayId=gid, VpcId="vpc-0123456789abcdef0")
    with expect_error("InvalidInternetGatewayID.Malformed"):
        ec2.delete_internet_gateway(InternetGatewayId="gw-1")


def test_racing_attaches_to_one_vpc_let_exactly_one_gateway_in(endpoint, ec2, vpc):
    gateways = [ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"] for _ in range(8)]
    results = {}

    def attach(gid):
        try:
            client("ec2", endpoint).attach_internet_gateway(InternetGatewayId=gid, VpcId=vpc["VpcId"])
            results[gid] = "ok"
        except ClientError as e:
            results[gid] = e.response["Error"]["Code"]

    threads = [threading.Thread(target=attach, args=(g,)) for g in gateways]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert Counter(results.values()) == {"ok": 1, "Resource.AlreadyAssociated": 7}, results
    attached = ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc["VpcId"]]}])
    assert len(attached["InternetGateways"]) == 1
