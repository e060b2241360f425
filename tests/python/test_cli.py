"""The aws CLI (v1) against kumori, as a user would type it."""

import json
import os
import subprocess
import sys

import pytest


def ok(proc):
    assert proc.returncode == 0, f"aws exited {proc.returncode}: {proc.stderr}"
    return json.loads(proc.stdout) if proc.stdout.strip() else None


def test_cli_vpc_and_subnet_lifecycle(aws):
    tags = "ResourceType=vpc,Tags=[{Key=Name,Value=cli}]"
    vpc = ok(aws("ec2", "create-vpc", "--cidr-block", "10.0.0.0/16", "--tag-specifications", tags))["Vpc"]
    vpc_id = vpc["VpcId"]
    assert vpc["CidrBlock"] == "10.0.0.0/16"
    assert vpc["Tags"] == [{"Key": "Name", "Value": "cli"}]

    [described] = ok(aws("ec2", "describe-vpcs", "--vpc-ids", vpc_id))["Vpcs"]
    assert described["State"] == "available"

    subnet = ok(
        aws(
            "ec2",
            "create-subnet",
            "--vpc-id",
            vpc_id,
            "--cidr-block",
            "10.0.1.0/24",
            "--availability-zone",
            "us-east-1a",
        )
    )["Subnet"]
    assert subnet["AvailableIpAddressCount"] == 251
    assert subnet["AvailabilityZone"] == "us-east-1a"

    listed = ok(aws("ec2", "describe-subnets", "--filters", f"Name=vpc-id,Values={vpc_id}"))["Subnets"]
    assert [s["SubnetId"] for s in listed] == [subnet["SubnetId"]]

    # --query runs client-side over the parsed answer: it needs a well-formed response.
    proc = aws("ec2", "describe-vpcs", "--filters", "Name=tag:Name,Values=cli", "--query", "Vpcs[].VpcId")
    assert ok(proc) == [vpc_id]

    assert ok(aws("ec2", "delete-subnet", "--subnet-id", subnet["SubnetId"])) is None
    assert ok(aws("ec2", "delete-vpc", "--vpc-id", vpc_id)) is None

    gone = aws("ec2", "describe-vpcs", "--vpc-ids", vpc_id)
    assert gone.returncode != 0
    assert "InvalidVpcID.NotFound" in gone.stderr, gone.stderr


def test_cli_reports_errors(aws):
    proc = aws("ec2", "create-vpc", "--cidr-block", "10.0.0.0/8")
    assert proc.returncode != 0
    assert "(InvalidVpc.Range)" in proc.stderr, proc.stderr
    assert proc.stdout.strip() == ""


def test_cli_other_region(aws):
    zones = ok(aws("ec2", "describe-availability-zones", region="ap-northeast-1"))["AvailabilityZones"]
    assert sorted(z["ZoneName"] for z in zones) == ["ap-northeast-1a", "ap-northeast-1c", "ap-northeast-1d"]


def test_cli_issue_15_items(aws):
    """What issue 15 changed, typed as a user types it."""
    # A block with host bits set is made canonical.
    vpc = ok(aws("ec2", "create-vpc", "--cidr-block", "10.61.7.9/16", "--amazon-provided-ipv6-cidr-block"))["Vpc"]
    assert vpc["CidrBlock"] == "10.61.0.0/16"
    [described] = ok(aws("ec2", "describe-vpcs", "--vpc-ids", vpc["VpcId"]))["Vpcs"]
    block = described["Ipv6CidrBlockAssociationSet"][0]["Ipv6CidrBlock"]
    assert block.endswith("/56")
    # The image tutorials name.
    found = ok(aws("ec2", "describe-images", "--owners", "amazon", "--filters",
                   "Name=name,Values=amzn2-ami-hvm-*-x86_64-gp2", "--query", "Images[].Name"))
    assert found == ["amzn2-ami-hvm-2.0.20261105.0-x86_64-gp2"]
    # A gateway endpoint on a new route table, and the prefix list it routes.
    rtb = ok(aws("ec2", "create-route-table", "--vpc-id", vpc["VpcId"]))["RouteTable"]["RouteTableId"]
    ep = ok(aws("ec2", "create-vpc-endpoint", "--vpc-id", vpc["VpcId"], "--service-name",
                "com.amazonaws.us-east-1.s3", "--route-table-ids", rtb))["VpcEndpoint"]
    lists = ok(aws("ec2", "describe-prefix-lists", "--filters",
                   "Name=prefix-list-name,Values=com.amazonaws.us-east-1.s3"))["PrefixLists"]
    [table] = ok(aws("ec2", "describe-route-tables", "--route-table-ids", rtb))["RouteTables"]
    assert {"DestinationPrefixListId": lists[0]["PrefixListId"], "GatewayId": ep["VpcEndpointId"],
            "Origin": "CreateRoute", "State": "active"} in table["Routes"]
    assert ok(aws("ec2", "delete-vpc-endpoints", "--vpc-endpoint-ids", ep["VpcEndpointId"]))["Unsuccessful"] == []
