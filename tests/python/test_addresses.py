"""Elastic IPs: allocation from kumori's benchmarking pool, the per-region quota, release."""
import ipaddress
import threading

from botocore.exceptions import ClientError
from support import client, expect_error, tag_spec

POOL = ipaddress.ip_network("198.18.0.0/15")  # RFC 2544: never a real host


def test_allocate_describe_release(ec2):
    a = ec2.allocate_address(Domain="vpc", TagSpecifications=tag_spec("elastic-ip", Name="bastion"))
    assert a["AllocationId"].startswith("eipalloc-") and a["Domain"] == "vpc"
    assert ipaddress.ip_address(a["PublicIp"]) in POOL
    assert a["NetworkBorderGroup"] == "us-east-1" and a["PublicIpv4Pool"] == "amazon"
    (shown,) = ec2.describe_addresses(PublicIps=[a["PublicIp"]])["Addresses"]
    assert shown["AllocationId"] == a["AllocationId"]
    assert {"Key": "Name", "Value": "bastion"} in shown["Tags"]
    assert ec2.describe_addresses(Filters=[{"Name": "tag:Name", "Values": ["bastion"]}])["Addresses"][0]["PublicIp"] == a["PublicIp"]
    with expect_error("InvalidAddress.NotFound"):
        ec2.describe_addresses(PublicIps=["198.18.255.255"])
    with expect_error("DryRunOperation", 412):
        ec2.release_address(AllocationId=a["AllocationId"], DryRun=True)
    ec2.release_address(AllocationId=a["AllocationId"])
    with expect_error("InvalidAllocationID.NotFound"):
        ec2.release_address(AllocationId=a["AllocationId"])
    assert ec2.describe_addresses()["Addresses"] == []


def test_quota_is_five_per_region(ec2, ec2_apne1):
    ips = {ec2.allocate_address()["PublicIp"] for _ in range(5)}
    assert len(ips) == 5
    with expect_error("AddressLimitExceeded"):
        ec2.allocate_address()
    # Another region has its own quota, and its addresses are still distinct.
    other = ec2_apne1.allocate_address()["PublicIp"]
    assert other not in ips
    # A released address frees a slot.
    first = ec2.describe_addresses()["Addresses"][0]
    ec2.release_address(PublicIp=first["PublicIp"])
    ec2.allocate_address()


def test_racing_allocations_never_share_an_address(endpoint):
    regions = ["us-east-1", "us-east-2", "us-west-2", "eu-west-1", "eu-central-1", "ap-northeast-1", "ap-southeast-1", "sa-east-1"]
    got, errors = [], []
    lock = threading.Lock()

    def allocate(region):
        c = client("ec2", endpoint, region)
        for _ in range(5):
            try:
                ip = c.allocate_address()["PublicIp"]
                with lock:
                    got.append(ip)
            except ClientError as e:
                errors.append(e.response["Error"]["Code"])

    threads = [threading.Thread(target=allocate, args=(r,)) for r in regions for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    # Two threads per region ask for 10 addresses against a quota of 5.
    assert len(got) == 5 * len(regions), (len(got), errors[:3])
    assert len(set(got)) == len(got), "an address was handed out twice"
    assert errors == ["AddressLimitExceeded"] * (5 * len(regions))
