"""DHCP options sets: the region's default set, custom sets, association and deletion rules."""
from support import expect_error, tag_spec


def options(dopt: dict) -> dict:
    return {c["Key"]: [v["Value"] for v in c["Values"]] for c in dopt["DhcpConfigurations"]}


def test_new_vpcs_share_the_regions_default_options(ec2, ec2_apne1):
    a = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]
    b = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]
    assert a["DhcpOptionsId"] == b["DhcpOptionsId"]
    (dopt,) = ec2.describe_dhcp_options(DhcpOptionsIds=[a["DhcpOptionsId"]])["DhcpOptions"]
    assert options(dopt) == {"domain-name": ["ec2.internal"], "domain-name-servers": ["AmazonProvidedDNS"]}
    assert dopt["OwnerId"] == "000000000000"
    # Each region has its own default set, with its own domain name.
    tokyo = ec2_apne1.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]
    (tdopt,) = ec2_apne1.describe_dhcp_options(DhcpOptionsIds=[tokyo["DhcpOptionsId"]])["DhcpOptions"]
    assert options(tdopt)["domain-name"] == ["ap-northeast-1.compute.internal"]
    assert ec2.describe_dhcp_options(Filters=[{"Name": "dhcp-options-id", "Values": [tokyo["DhcpOptionsId"]]}])["DhcpOptions"] == []


def test_custom_set_is_created_tagged_filtered_and_associated(ec2, vpc):
    dopt = ec2.create_dhcp_options(
        DhcpConfigurations=[
            {"Key": "domain-name", "Values": ["corp.example"]},
            {"Key": "domain-name-servers", "Values": ["10.0.0.2", "AmazonProvidedDNS"]},
        ],
        TagSpecifications=tag_spec("dhcp-options", Name="corp"),
    )["DhcpOptions"]
    assert dopt["DhcpOptionsId"].startswith("dopt-")
    assert options(dopt)["domain-name-servers"] == ["10.0.0.2", "AmazonProvidedDNS"]
    assert {"Key": "Name", "Value": "corp"} in dopt["Tags"]
    found = ec2.describe_dhcp_options(Filters=[{"Name": "value", "Values": ["corp.*"]}])["DhcpOptions"]
    assert [d["DhcpOptionsId"] for d in found] == [dopt["DhcpOptionsId"]]

    ec2.associate_dhcp_options(DhcpOptionsId=dopt["DhcpOptionsId"], VpcId=vpc["VpcId"])
    (shown,) = ec2.describe_vpcs(VpcIds=[vpc["VpcId"]])["Vpcs"]
    assert shown["DhcpOptionsId"] == dopt["DhcpOptionsId"]
    # In use: it cannot be deleted until the VPC lets go of it ("default" = no options).
    with expect_error("DependencyViolation", 400):
        ec2.delete_dhcp_options(DhcpOptionsId=dopt["DhcpOptionsId"])
    ec2.associate_dhcp_options(DhcpOptionsId="default", VpcId=vpc["VpcId"])
    assert ec2.describe_vpcs(VpcIds=[vpc["VpcId"]])["Vpcs"][0]["DhcpOptionsId"] == "default"
    ec2.delete_dhcp_options(DhcpOptionsId=dopt["DhcpOptionsId"])
    with expect_error("InvalidDhcpOptionID.NotFound"):
        ec2.describe_dhcp_options(DhcpOptionsIds=[dopt["DhcpOptionsId"]])


def test_bad_options_and_unknown_ids_are_refused(ec2, vpc):
    with expect_error("InvalidParameterValue"):
        ec2.create_dhcp_options(DhcpConfigurations=[{"Key": "bogus-option", "Values": ["x"]}])
    with expect_error("InvalidParameterValue"):
        ec2.create_dhcp_options(DhcpConfigurations=[{"Key": "ntp-servers", "Values": ["not-an-ip"]}])
    with expect_error("InvalidParameterValue"):
        ec2.create_dhcp_options(
            DhcpConfigurations=[{"Key": "domain-name-servers", "Values": ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"]}]
        )
    with expect_error("InvalidDhcpOptionID.NotFound"):
        ec2.associate_dhcp_options(DhcpOptionsId="dopt-0123456789abcdef0", VpcId=vpc["VpcId"])
    with expect_error("InvalidVpcID.NotFound"):
        ec2.associate_dhcp_options(DhcpOptionsId="default", VpcId="vpc-0123456789abcdef0")
    with expect_error("InvalidDhcpOptionID.NotFound"):
        ec2.delete_dhcp_options(DhcpOptionsId="dopt-0123456789abcdef0")
    with expect_error("DryRunOperation", 412):
        ec2.create_dhcp_options(DhcpConfigurations=[{"Key": "domain-name", "Values": ["x.example"]}], DryRun=True)
    assert len(ec2.describe_dhcp_options()["DhcpOptions"]) == 1, "only the default set (made for the vpc fixture)"
