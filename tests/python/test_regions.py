"""Regions, availability zones and account attributes."""

import re

import pytest


def test_describe_regions(ec2):
    regions = {r["RegionName"]: r for r in ec2.describe_regions()["Regions"]}
    assert {"us-east-1", "ap-northeast-1", "eu-west-1"} <= set(regions)
    for name, r in regions.items():
        assert re.match(r"^[a-z]{2}(-[a-z]+)+-\d$", name), name
        assert name in r["Endpoint"], r
        assert r["OptInStatus"] in ("opt-in-not-required", "opted-in", "not-opted-in"), r
    assert regions["us-east-1"]["OptInStatus"] == "opt-in-not-required"


def test_describe_regions_is_the_same_from_any_region(ec2, ec2_apne1):
    names = lambda c: sorted(r["RegionName"] for r in c.describe_regions()["Regions"])  # noqa: E731
    assert names(ec2) == names(ec2_apne1)


def test_tokyo_availability_zones(ec2_apne1):
    azs = ec2_apne1.describe_availability_zones()["AvailabilityZones"]
    assert sorted(z["ZoneName"] for z in azs) == ["ap-northeast-1a", "ap-northeast-1c", "ap-northeast-1d"]
    for z in azs:
        assert z["State"] == "available"
        assert z["RegionName"] == "ap-northeast-1"
        assert re.match(r"^apne1-az\d+$", z["ZoneId"]), z
    assert len({z["ZoneId"] for z in azs}) == 3


def test_us_east_1_zones(ec2):
    azs = ec2.describe_availability_zones()["AvailabilityZones"]
    names = {z["ZoneName"] for z in azs}
    assert {"us-east-1a", "us-east-1b", "us-east-1c"} <= names
    assert all(n.startswith("us-east-1") for n in names)
    assert all(re.match(r"^use1-az\d+$", z["ZoneId"]) for z in azs), azs
    assert len({z["ZoneId"] for z in azs}) == len(azs)


@pytest.mark.parametrize("name", ["ap-northeast-1c", "ap-northeast-1d"])
def test_zone_name_filter(ec2_apne1, name):
    azs = ec2_apne1.describe_availability_zones(Filters=[{"Name": "zone-name", "Values": [name]}])["AvailabilityZones"]
    assert [z["ZoneName"] for z in azs] == [name]


def test_zone_name_filter_with_wildcard_and_no_match(ec2_apne1):
    def zones(values):
        return sorted(
            z["ZoneName"]
            for z in ec2_apne1.describe_availability_zones(Filters=[{"Name": "zone-name", "Values": values}])[
                "AvailabilityZones"
            ]
        )

    assert zones(["*-1a", "*-1d"]) == ["ap-northeast-1a", "ap-northeast-1d"]
    assert zones(["us-east-1a"]) == []


def test_zone_names_argument(ec2_apne1):
    azs = ec2_apne1.describe_availability_zones(ZoneNames=["ap-northeast-1a"])["AvailabilityZones"]
    assert [z["ZoneName"] for z in azs] == ["ap-northeast-1a"]


def test_account_attributes(ec2):
    attrs = {
        a["AttributeName"]: [v["AttributeValue"] for v in a["AttributeValues"]]
        for a in ec2.describe_account_attributes()["AccountAttributes"]
    }
    assert "VPC" in attrs["supported-platforms"], attrs
