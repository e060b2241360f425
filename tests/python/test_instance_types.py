"""Instance types: the catalogue answers with real specifications, filters as EC2 documents
them, pages as EC2 pages, and refuses types that do not exist."""
import json

from support import expect_error

FAMILIES = ["t2", "t3", "t3a", "t4g", "m5", "m5a", "m5d", "m5n", "m6i", "m7g", "c5", "c5n", "c6i", "r5", "r6i"]


def all_types(ec2, **kw):
    pages = ec2.get_paginator("describe_instance_types").paginate(**kw)
    return [t for p in pages for t in p["InstanceTypes"]]


def test_well_known_types_have_their_real_specifications(ec2):
    got = {t["InstanceType"]: t for t in ec2.describe_instance_types(
        InstanceTypes=["t2.micro", "t3.micro", "m5.large", "c5n.18xlarge", "t4g.nano", "m5d.large"])["InstanceTypes"]}
    t2 = got["t2.micro"]
    assert (t2["VCpuInfo"]["DefaultVCpus"], t2["MemoryInfo"]["SizeInMiB"]) == (1, 1024)
    assert t2["BurstablePerformanceSupported"] is True and t2["FreeTierEligible"] is True
    assert (t2["NetworkInfo"]["MaximumNetworkInterfaces"], t2["NetworkInfo"]["Ipv4AddressesPerInterface"]) == (2, 2)
    assert t2["Hypervisor"] == "xen"
    m5 = got["m5.large"]
    assert (m5["VCpuInfo"]["DefaultVCpus"], m5["MemoryInfo"]["SizeInMiB"]) == (2, 8192)
    assert (m5["NetworkInfo"]["MaximumNetworkInterfaces"], m5["NetworkInfo"]["Ipv4AddressesPerInterface"]) == (3, 10)
    assert m5["BurstablePerformanceSupported"] is False and m5["Hypervisor"] == "nitro"
    c5n = got["c5n.18xlarge"]
    assert (c5n["VCpuInfo"]["DefaultVCpus"], c5n["NetworkInfo"]["NetworkPerformance"]) == (72, "100 Gigabit")
    assert got["t4g.nano"]["ProcessorInfo"]["SupportedArchitectures"] == ["arm64"]
    m5d = got["m5d.large"]
    assert m5d["InstanceStorageSupported"] is True
    assert m5d["InstanceStorageInfo"]["TotalSizeInGB"] == 75
    assert got["t3.micro"]["VCpuInfo"]["DefaultVCpus"] == 2


def test_every_family_is_there_in_all_sizes(ec2):
    names = [t["InstanceType"] for t in all_types(ec2)]
    assert len(names) == len(set(names))
    for family in FAMILIES:
        assert any(n.startswith(family + ".") for n in names), family
    assert {"m5.metal", "c6i.metal", "r5.24xlarge", "m7g.16xlarge", "t2.2xlarge"} <= set(names)


def test_pages_of_at_most_100(ec2):
    first = ec2.describe_instance_types()
    assert len(first["InstanceTypes"]) == 100 and "NextToken" in first
    small = ec2.describe_instance_types(MaxResults=5)
    assert len(small["InstanceTypes"]) == 5
    rest = ec2.describe_instance_types(MaxResults=5, NextToken=small["NextToken"])
    assert not {t["InstanceType"] for t in rest["InstanceTypes"]} & {t["InstanceType"] for t in small["InstanceTypes"]}


def test_filters(ec2):
    def names(*filters):
        return sorted(t["InstanceType"] for t in all_types(ec2, Filters=[{"Name": n, "Values": v} for n, v in filters]))

    arm = names(("processor-info.supported-architecture", ["arm64"]))
    assert arm and all(n.split(".")[0] in ("t4g", "m7g") for n in arm)
    burstable = names(("burstable-performance-supported", ["true"]))
    assert burstable and all(n.split(".")[0] in ("t2", "t3", "t3a", "t4g") for n in burstable)
    assert names(("instance-type", ["t3.*"]), ("vcpu-info.default-vcpus", ["2"])) == ["t3.large", "t3.medium", "t3.micro", "t3.nano", "t3.small"]
    assert names(("memory-info.size-in-mib", ["1024"]), ("free-tier-eligible", ["true"])) == ["t2.micro", "t3.micro"]
    assert names(("instance-storage-info.disk.type", ["ssd"]))[0].startswith("m5d.")
    with expect_error("InvalidParameterValue", 400):
        ec2.describe_instance_types(Filters=[{"Name": "colour", "Values": ["blue"]}])


def test_unknown_types_are_refused(ec2):
    with expect_error("InvalidInstanceType", 400):
        ec2.describe_instance_types(InstanceTypes=["t2.micro", "p4d.24xlarge"])


def test_offerings_by_region_and_zone(ec2, aws):
    region = ec2.describe_instance_type_offerings(Filters=[{"Name": "instance-type", "Values": ["t3.micro"]}])["InstanceTypeOfferings"]
    assert region == [{"InstanceType": "t3.micro", "LocationType": "region", "Location": "us-east-1"}]
    zoned = ec2.describe_instance_type_offerings(
        LocationType="availability-zone", Filters=[{"Name": "instance-type", "Values": ["m5.large"]}]
    )["InstanceTypeOfferings"]
    zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]]
    assert sorted(o["Location"] for o in zoned) == sorted(zones)
    r = aws("ec2", "describe-instance-type-offerings", "--location-type", "availability-zone-id",
            "--filters", "Name=location,Values=use1-az1", "Name=instance-type,Values=c5.*")
    assert r.returncode == 0, r.stderr
    offers = json.loads(r.stdout)["InstanceTypeOfferings"]
    assert offers and all(o["Location"] == "use1-az1" and o["InstanceType"].startswith("c5.") for o in offers)
