"""Tags, DescribeTags, Describe* filters (with wildcards), pagination and DryRun."""

import pytest
from botocore.exceptions import ClientError
from support import ACCOUNT, error_of, expect_error, own_subnets, own_vpcs, tag_dict, tag_spec

# --- tags -------------------------------------------------------------------------------------


def tags_of(ec2, resource_id):
    found = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [resource_id]}])["Tags"]
    return {t["Key"]: t["Value"] for t in found}


def test_create_tags_on_several_resources_at_once(ec2, vpc):
    subnet = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.1.0/24")["Subnet"]
    ec2.create_tags(
        Resources=[vpc["VpcId"], subnet["SubnetId"]],
        Tags=[{"Key": "team", "Value": "net"}, {"Key": "cost", "Value": "42"}],
    )
    [v] = ec2.describe_vpcs(VpcIds=[vpc["VpcId"]])["Vpcs"]
    [s] = ec2.describe_subnets(SubnetIds=[subnet["SubnetId"]])["Subnets"]
    assert tag_dict(v) == tag_dict(s) == {"team": "net", "cost": "42"}


def test_create_tags_overwrites_a_key(ec2, vpc):
    ec2.create_tags(Resources=[vpc["VpcId"]], Tags=[{"Key": "env", "Value": "dev"}])
    ec2.create_tags(Resources=[vpc["VpcId"]], Tags=[{"Key": "env", "Value": "prod"}])
    assert tags_of(ec2, vpc["VpcId"]) == {"env": "prod"}


def test_tag_with_empty_value(ec2, vpc):
    ec2.create_tags(Resources=[vpc["VpcId"]], Tags=[{"Key": "flag", "Value": ""}])
    assert tags_of(ec2, vpc["VpcId"]) == {"flag": ""}


@pytest.mark.parametrize(
    "resource, code",
    [("vpc-0123456789abcdef0", "InvalidVpcID.NotFound"), ("subnet-0123456789abcdef0", "InvalidSubnetID.NotFound")],
)
def test_create_tags_on_unknown_resource(ec2, resource, code):
    with expect_error(code, 400):
        ec2.create_tags(Resources=[resource], Tags=[{"Key": "a", "Value": "b"}])


def test_aws_prefixed_keys_are_reserved(ec2, vpc):
    with expect_error("InvalidParameterValue", 400):
        ec2.create_tags(Resources=[vpc["VpcId"]], Tags=[{"Key": "aws:owner", "Value": "me"}])
    assert tags_of(ec2, vpc["VpcId"]) == {}


def test_delete_tags_by_key_and_by_key_and_value(ec2, vpc):
    ec2.create_tags(
        Resources=[vpc["VpcId"]],
        Tags=[{"Key": k, "Value": v} for k, v in {"a": "1", "b": "2", "c": "3", "d": "4"}.items()],
    )
    ec2.delete_tags(Resources=[vpc["VpcId"]], Tags=[{"Key": "a"}])  # any value
    ec2.delete_tags(Resources=[vpc["VpcId"]], Tags=[{"Key": "b", "Value": "2"}])  # value matches
    ec2.delete_tags(Resources=[vpc["VpcId"]], Tags=[{"Key": "c", "Value": "not-3"}])  # does not
    assert tags_of(ec2, vpc["VpcId"]) == {"c": "3", "d": "4"}
    [v] = ec2.describe_vpcs(VpcIds=[vpc["VpcId"]])["Vpcs"]
    assert tag_dict(v) == {"c": "3", "d": "4"}


def test_delete_tags_on_several_resources(ec2, vpc):
    subnet = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.1.0/24")["Subnet"]
    ids = [vpc["VpcId"], subnet["SubnetId"]]
    ec2.create_tags(Resources=ids, Tags=[{"Key": "x", "Value": "1"}, {"Key": "y", "Value": "2"}])
    ec2.delete_tags(Resources=ids, Tags=[{"Key": "x"}])
    assert tags_of(ec2, ids[0]) == tags_of(ec2, ids[1]) == {"y": "2"}


def test_tags_go_away_with_their_resource(ec2, vpc):
    subnet = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.1.0/24")["Subnet"]
    ec2.create_tags(Resources=[subnet["SubnetId"]], Tags=[{"Key": "x", "Value": "1"}])
    ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    assert ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [subnet["SubnetId"]]}])["Tags"] == []


@pytest.fixture
def tagged(ec2, vpc):
    """A tagged VPC and two tagged subnets."""
    a = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    b = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.2.0/24")["Subnet"]["SubnetId"]
    ec2.create_tags(Resources=[vpc["VpcId"]], Tags=[{"Key": "Name", "Value": "main"}, {"Key": "env", "Value": "prod"}])
    ec2.create_tags(Resources=[a], Tags=[{"Key": "Name", "Value": "web"}, {"Key": "env", "Value": "prod"}])
    ec2.create_tags(Resources=[b], Tags=[{"Key": "Name", "Value": "db"}])
    return {"vpc": vpc["VpcId"], "a": a, "b": b}


def described(ec2, filters):
    tags = ec2.describe_tags(Filters=filters)["Tags"]
    return sorted((t["ResourceId"], t["ResourceType"], t["Key"], t["Value"]) for t in tags)


def test_describe_tags_lists_every_tag_with_its_resource_type(ec2, tagged):
    v, a, b = tagged["vpc"], tagged["a"], tagged["b"]
    assert described(ec2, []) == sorted(
        [
            (v, "vpc", "Name", "main"),
            (v, "vpc", "env", "prod"),
            (a, "subnet", "Name", "web"),
            (a, "subnet", "env", "prod"),
            (b, "subnet", "Name", "db"),
        ]
    )


@pytest.mark.parametrize(
    "filters, expected",
    [
        ([{"Name": "resource-type", "Values": ["vpc"]}], {("vpc", "Name"), ("vpc", "env")}),
        ([{"Name": "resource-type", "Values": ["subnet"]}], {("a", "Name"), ("a", "env"), ("b", "Name")}),
        ([{"Name": "key", "Values": ["env"]}], {("vpc", "env"), ("a", "env")}),
        ([{"Name": "value", "Values": ["prod"]}], {("vpc", "env"), ("a", "env")}),
        ([{"Name": "value", "Values": ["w*", "d?"]}], {("a", "Name"), ("b", "Name")}),
        (
            [{"Name": "resource-type", "Values": ["subnet"]}, {"Name": "key", "Values": ["Name"]}],
            {("a", "Name"), ("b", "Name")},
        ),
        ([{"Name": "resource-id", "Values": ["<b>"]}], {("b", "Name")}),
        (
            [{"Name": "resource-id", "Values": ["<vpc>", "<b>"]}, {"Name": "key", "Values": ["Name"]}],
            {("vpc", "Name"), ("b", "Name")},
        ),
    ],
)
def test_describe_tags_filters(ec2, tagged, filters, expected):
    by_id = {v: k for k, v in tagged.items()}
    # "<name>" stands for the id of that resource (built anew: the parameters are shared).
    filters = [
        {"Name": f["Name"], "Values": [tagged[x[1:-1]] if x.startswith("<") else x for x in f["Values"]]}
        for f in filters
    ]
    got = {(by_id[rid], key) for rid, _, key, _ in described(ec2, filters)}
    assert got == expected


# --- Describe* filters ------------------------------------------------------------------------


@pytest.fixture
def vpcs(ec2):
    """Three VPCs named alpha, beta, gamma -> their VpcIds."""
    made = {}
    for name, cidr, extra in [
        ("alpha", "10.0.0.0/16", {"env": "prod"}),
        ("beta", "10.1.0.0/16", {"env": "dev"}),
        ("gamma", "172.16.0.0/20", {}),
    ]:
        vpc = ec2.create_vpc(CidrBlock=cidr, TagSpecifications=tag_spec("vpc", Name=name, **extra))["Vpc"]
        made[name] = vpc
    return made


def vpc_names(ec2, filters):
    return sorted(tag_dict(v).get("Name", v["VpcId"]) for v in own_vpcs(ec2, Filters=filters))


@pytest.mark.parametrize(
    "filters, expected",
    [
        ([{"Name": "cidr", "Values": ["10.1.0.0/16"]}], ["beta"]),
        ([{"Name": "cidr", "Values": ["10.*"]}], ["alpha", "beta"]),
        ([{"Name": "cidr-block-association.cidr-block", "Values": ["172.16.0.0/20"]}], ["gamma"]),
        ([{"Name": "state", "Values": ["available"]}], ["alpha", "beta", "gamma"]),
        ([{"Name": "state", "Values": ["pending"]}], []),
        ([{"Name": "is-default", "Values": ["false"]}], ["alpha", "beta", "gamma"]),
        ([{"Name": "owner-id", "Values": [ACCOUNT]}], ["alpha", "beta", "gamma"]),
        ([{"Name": "owner-id", "Values": ["111111111111"]}], []),
        ([{"Name": "tag:Name", "Values": ["alpha"]}], ["alpha"]),
        ([{"Name": "tag:Name", "Values": ["alpha", "gamma"]}], ["alpha", "gamma"]),
        ([{"Name": "tag:Name", "Values": ["?eta"]}], ["beta"]),
        ([{"Name": "tag:Name", "Values": ["*a"]}], ["alpha", "beta", "gamma"]),
        ([{"Name": "tag:Name", "Values": ["ALPHA"]}], []),
        ([{"Name": "tag:env", "Values": ["*"]}], ["alpha", "beta"]),
        ([{"Name": "tag-key", "Values": ["env"]}], ["alpha", "beta"]),
        ([{"Name": "tag-value", "Values": ["prod", "gamma"]}], ["alpha", "gamma"]),
        ([{"Name": "tag-key", "Values": ["env"]}, {"Name": "cidr", "Values": ["10.1.*"]}], ["beta"]),
        ([{"Name": "tag:env", "Values": ["prod"]}, {"Name": "tag:Name", "Values": ["beta"]}], []),
    ],
)
def test_describe_vpcs_filters(ec2, vpcs, filters, expected):
    assert vpc_names(ec2, filters) == expected


def test_describe_vpcs_filter_by_id_and_dhcp_options(ec2, vpcs):
    alpha, gamma = vpcs["alpha"], vpcs["gamma"]
    assert vpc_names(ec2, [{"Name": "vpc-id", "Values": [alpha["VpcId"], gamma["VpcId"]]}]) == ["alpha", "gamma"]
    assert vpc_names(ec2, [{"Name": "vpc-id", "Values": ["vpc-0123456789abcdef0"]}]) == []
    got = vpc_names(ec2, [{"Name": "dhcp-options-id", "Values": [alpha["DhcpOptionsId"]]}])
    assert "alpha" in got
    assert vpc_names(ec2, [{"Name": "dhcp-options-id", "Values": ["dopt-00000000000000000"]}]) == []


def test_filter_combines_with_ids(ec2, vpcs):
    ids = [vpcs["alpha"]["VpcId"], vpcs["beta"]["VpcId"]]
    got = ec2.describe_vpcs(VpcIds=ids, Filters=[{"Name": "tag:env", "Values": ["dev"]}])["Vpcs"]
    assert [v["VpcId"] for v in got] == [vpcs["beta"]["VpcId"]]


@pytest.mark.parametrize("call", ["describe_vpcs", "describe_subnets"])
def test_unknown_filter_name(ec2, vpcs, call):
    with expect_error("InvalidParameterValue", 400):
        getattr(ec2, call)(Filters=[{"Name": "colour", "Values": ["blue"]}])


@pytest.fixture
def subnets(ec2, zones):
    """Four subnets over two VPCs, by name -> the subnet as created."""
    main = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    other = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    made = {}
    for name, vpc_id, cidr, az, extra in [
        ("web", main, "10.0.0.0/24", "us-east-1a", {}),
        ("app", main, "10.0.1.0/24", "us-east-1b", {"tier": "backend"}),
        ("db", main, "10.0.2.0/28", "us-east-1a", {"tier": "backend"}),
        ("other", other, "10.1.0.0/24", "us-east-1c", {}),
    ]:
        made[name] = ec2.create_subnet(
            VpcId=vpc_id, CidrBlock=cidr, AvailabilityZone=az, TagSpecifications=tag_spec("subnet", Name=name, **extra)
        )["Subnet"]
    return made


def subnet_names(ec2, filters):
    return sorted(tag_dict(s).get("Name", s["SubnetId"]) for s in own_subnets(ec2, Filters=filters))


@pytest.mark.parametrize(
    "filters, expected",
    [
        ([{"Name": "cidr-block", "Values": ["10.0.1.0/24"]}], ["app"]),
        ([{"Name": "cidr-block", "Values": ["10.0.*"]}], ["app", "db", "web"]),
        ([{"Name": "availability-zone", "Values": ["us-east-1a"]}], ["db", "web"]),
        ([{"Name": "availability-zone", "Values": ["us-east-1b", "us-east-1c"]}], ["app", "other"]),
        ([{"Name": "state", "Values": ["available"]}], ["app", "db", "other", "web"]),
        ([{"Name": "default-for-az", "Values": ["false"]}], ["app", "db", "other", "web"]),
        ([{"Name": "map-public-ip-on-launch", "Values": ["false"]}], ["app", "db", "other", "web"]),
        ([{"Name": "map-public-ip-on-launch", "Values": ["true"]}], []),
        ([{"Name": "available-ip-address-count", "Values": ["11"]}], ["db"]),
        ([{"Name": "available-ip-address-count", "Values": ["251"]}], ["app", "other", "web"]),
        ([{"Name": "owner-id", "Values": [ACCOUNT]}], ["app", "db", "other", "web"]),
        ([{"Name": "subnet-arn", "Values": ["arn:aws:ec2:us-east-1:*"]}], ["app", "db", "other", "web"]),
        ([{"Name": "subnet-arn", "Values": ["arn:aws:ec2:eu-west-1:*"]}], []),
        ([{"Name": "tag:tier", "Values": ["backend"]}], ["app", "db"]),
        ([{"Name": "tag:Name", "Values": ["?b", "w*"]}], ["db", "web"]),
        ([{"Name": "tag-key", "Values": ["tier"]}], ["app", "db"]),
        ([{"Name": "tag-value", "Values": ["other"]}], ["other"]),
        (
            [{"Name": "tag:tier", "Values": ["backend"]}, {"Name": "availability-zone", "Values": ["us-east-1a"]}],
            ["db"],
        ),
    ],
)
def test_describe_subnets_filters(ec2, subnets, filters, expected):
    assert subnet_names(ec2, filters) == expected


def test_describe_subnets_filters_by_ids(ec2, subnets, zones):
    web, other = subnets["web"], subnets["other"]
    assert subnet_names(ec2, [{"Name": "vpc-id", "Values": [web["VpcId"]]}]) == ["app", "db", "web"]
    assert subnet_names(ec2, [{"Name": "subnet-id", "Values": [web["SubnetId"], other["SubnetId"]]}]) == [
        "other",
        "web",
    ]
    assert subnet_names(ec2, [{"Name": "subnet-arn", "Values": [other["SubnetArn"]]}]) == ["other"]
    assert subnet_names(ec2, [{"Name": "availability-zone-id", "Values": [zones["us-east-1a"]]}]) == ["db", "web"]
    assert subnet_names(ec2, [{"Name": "vpc-id", "Values": ["vpc-0123456789abcdef0"]}]) == []


# --- pagination -------------------------------------------------------------------------------


def many_subnets(ec2, vpc_id, n):
    return [ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.0.{i}.0/28")["Subnet"]["SubnetId"] for i in range(n)]


def test_describe_subnets_pages_with_next_token(ec2, vpc):
    made = many_subnets(ec2, vpc["VpcId"], 23)
    seen, token, pages = [], None, 0
    while True:
        page = ec2.describe_subnets(
            MaxResults=5,
            Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}],
            **({"NextToken": token} if token else {}),
        )
        pages += 1
        assert len(page["Subnets"]) <= 5
        seen += [s["SubnetId"] for s in page["Subnets"]]
        token = page.get("NextToken")
        if not token:
            break
        assert pages < 50, "NextToken never runs out"
    assert sorted(seen) == sorted(made)  # every subnet exactly once
    assert pages >= 5


def test_filtered_pages_hold_only_matches(ec2, vpc):
    made = many_subnets(ec2, vpc["VpcId"], 12)
    chosen = made[::2] + made[7:8]  # 7 of 12
    ec2.create_tags(Resources=chosen, Tags=[{"Key": "pick", "Value": "yes"}])
    seen = []
    for page in ec2.get_paginator("describe_subnets").paginate(
        Filters=[{"Name": "tag:pick", "Values": ["yes"]}], PaginationConfig={"PageSize": 5}
    ):
        assert len(page["Subnets"]) <= 5
        seen += [s["SubnetId"] for s in page["Subnets"]]
    assert sorted(seen) == sorted(chosen)


def test_boto3_paginator_for_subnets(ec2, vpc):
    made = many_subnets(ec2, vpc["VpcId"], 11)
    paginator = ec2.get_paginator("describe_subnets")
    pages = list(paginator.paginate(PaginationConfig={"PageSize": 5}))
    seen = [s["SubnetId"] for p in pages for s in p["Subnets"] if not s["DefaultForAz"]]
    assert sorted(seen) == sorted(made)
    assert len(pages) >= 3
    # The paginator's own item cap (MaxItems) works on top of the server's tokens.
    capped = paginator.paginate(
        Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}], PaginationConfig={"PageSize": 5, "MaxItems": 7}
    ).build_full_result()
    assert len(capped["Subnets"]) == 7 and "NextToken" in capped


def test_boto3_paginator_for_vpcs(ec2):
    made = [ec2.create_vpc(CidrBlock=f"10.{i}.0.0/16")["Vpc"]["VpcId"] for i in range(4)]  # + the default VPC
    pages = list(ec2.get_paginator("describe_vpcs").paginate(PaginationConfig={"PageSize": 5}))
    seen = [v["VpcId"] for p in pages for v in p["Vpcs"] if not v["IsDefault"]]
    assert sorted(seen) == sorted(made)
    assert all(len(p["Vpcs"]) <= 5 for p in pages)


@pytest.mark.parametrize("call", ["describe_vpcs", "describe_subnets"])
@pytest.mark.parametrize("max_results", [4, 0, 1001])
def test_max_results_out_of_bounds(ec2_unchecked, call, max_results):
    with expect_error("InvalidParameterValue", 400):
        getattr(ec2_unchecked, call)(MaxResults=max_results)


# --- DryRun -----------------------------------------------------------------------------------


def dry_run_error(call, **kwargs):
    with pytest.raises(ClientError) as info:
        call(DryRun=True, **kwargs)
    return error_of(info.value)[:2]


def test_dry_run_of_successful_calls(ec2, vpc):
    subnet = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    ok = ("DryRunOperation", 412)
    assert dry_run_error(ec2.create_vpc, CidrBlock="10.1.0.0/16") == ok
    assert dry_run_error(ec2.describe_vpcs) == ok
    assert dry_run_error(ec2.create_subnet, VpcId=vpc["VpcId"], CidrBlock="10.0.2.0/24") == ok
    assert dry_run_error(ec2.describe_subnets) == ok
    assert dry_run_error(ec2.create_tags, Resources=[vpc["VpcId"]], Tags=[{"Key": "k", "Value": "v"}]) == ok
    assert dry_run_error(ec2.delete_subnet, SubnetId=subnet) == ok
    assert dry_run_error(ec2.delete_tags, Resources=[vpc["VpcId"]], Tags=[{"Key": "k"}]) == ok
    assert dry_run_error(ec2.describe_tags) == ok
    # None of the dry runs changed anything.
    assert [v["VpcId"] for v in own_vpcs(ec2)] == [vpc["VpcId"]]
    assert [s["SubnetId"] for s in own_subnets(ec2)] == [subnet]
    assert tag_dict(ec2.describe_vpcs(VpcIds=[vpc["VpcId"]])["Vpcs"][0]) == {}


def test_dry_run_of_failing_calls_reports_the_failure(ec2, vpc):
    ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.1.0/24")
    assert dry_run_error(ec2.create_vpc, CidrBlock="10.0.0.0/8") == ("InvalidVpc.Range", 400)
    assert dry_run_error(ec2.create_subnet, VpcId=vpc["VpcId"], CidrBlock="10.0.1.0/25") == (
        "InvalidSubnet.Conflict",
        400,
    )
    assert dry_run_error(ec2.delete_vpc, VpcId=vpc["VpcId"]) == ("DependencyViolation", 400)
    assert dry_run_error(ec2.delete_vpc, VpcId="vpc-0123456789abcdef0") == ("InvalidVpcID.NotFound", 400)
    assert dry_run_error(
        ec2.create_tags, Resources=["subnet-0123456789abcdef0"], Tags=[{"Key": "k", "Value": "v"}]
    ) == ("InvalidSubnetID.NotFound", 400)
