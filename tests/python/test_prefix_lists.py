"""Customer-managed prefix lists: versions, entries, limits, and their use by security group
rules (where a list counts as its maximum number of entries) and routes."""
from support import expect_error, tag_dict, tag_spec


def make(ec2, name="office", entries=("203.0.113.0/24",), max_entries=5, family="IPv4", **tags):
    kw = {"TagSpecifications": tag_spec("prefix-list", **tags)} if tags else {}
    return ec2.create_managed_prefix_list(
        PrefixListName=name,
        Entries=[{"Cidr": c, "Description": f"entry {c}"} for c in entries],
        MaxEntries=max_entries,
        AddressFamily=family,
        **kw,
    )["PrefixList"]


def entries(ec2, pl, **kw):
    return [e["Cidr"] for e in ec2.get_managed_prefix_list_entries(PrefixListId=pl, **kw)["Entries"]]


def own(ec2, **kw):
    """The account's lists: describes also show the region's AWS-managed ones (owner AWS)."""
    return [p for p in ec2.describe_managed_prefix_lists(**kw)["PrefixLists"] if p["OwnerId"] != "AWS"]


def test_create_describe_and_versions(ec2):
    pl = make(ec2, entries=["203.0.113.0/24", "198.51.100.0/24"], team="net")
    pid = pl["PrefixListId"]
    assert pid.startswith("pl-")
    assert pl["State"] == "create-complete" and pl["Version"] == 1 and pl["MaxEntries"] == 5
    assert pl["AddressFamily"] == "IPv4" and pl["OwnerId"] == "000000000000"
    assert pl["PrefixListArn"].endswith(f":prefix-list/{pid}")
    assert tag_dict(pl) == {"team": "net"}
    assert entries(ec2, pid) == ["198.51.100.0/24", "203.0.113.0/24"]
    got = ec2.get_managed_prefix_list_entries(PrefixListId=pid)["Entries"]
    assert {"Cidr": "203.0.113.0/24", "Description": "entry 203.0.113.0/24"} in got

    out = ec2.modify_managed_prefix_list(
        PrefixListId=pid, CurrentVersion=1,
        AddEntries=[{"Cidr": "192.0.2.0/24"}], RemoveEntries=[{"Cidr": "198.51.100.0/24"}],
    )["PrefixList"]
    assert out["Version"] == 2 and out["State"] == "modify-complete"
    assert entries(ec2, pid) == ["192.0.2.0/24", "203.0.113.0/24"]
    # Old versions stay readable.
    assert entries(ec2, pid, TargetVersion=1) == ["198.51.100.0/24", "203.0.113.0/24"]
    # A writer with a stale version is refused, as are impossible changes.
    with expect_error("PrefixListVersionMismatch", 400):
        ec2.modify_managed_prefix_list(PrefixListId=pid, CurrentVersion=1, AddEntries=[{"Cidr": "10.0.0.0/8"}])
    with expect_error("InvalidPrefixListModification", 400):
        ec2.modify_managed_prefix_list(PrefixListId=pid, CurrentVersion=2, RemoveEntries=[{"Cidr": "10.9.0.0/16"}])
    with expect_error("PrefixListMaxEntriesExceeded", 400):
        ec2.modify_managed_prefix_list(
            PrefixListId=pid, CurrentVersion=2,
            AddEntries=[{"Cidr": f"10.{i}.0.0/16"} for i in range(4)],
        )
    with expect_error("InvalidParameterValue", 400):
        ec2.modify_managed_prefix_list(PrefixListId=pid, MaxEntries=1)
    assert entries(ec2, pid) == ["192.0.2.0/24", "203.0.113.0/24"], "refused changes leave it alone"
    renamed = ec2.modify_managed_prefix_list(PrefixListId=pid, PrefixListName="office-v2", MaxEntries=10)["PrefixList"]
    assert renamed["PrefixListName"] == "office-v2" and renamed["MaxEntries"] == 10 and renamed["Version"] == 2

    def ids(**kw):
        return [p["PrefixListId"] for p in own(ec2, **kw)]

    other = make(ec2, name="v6", entries=["2001:db8::/32"], family="IPv6")["PrefixListId"]
    assert sorted(ids()) == sorted([pid, other])
    assert ids(Filters=[{"Name": "prefix-list-name", "Values": ["office*"]}]) == [pid]
    assert ids(PrefixListIds=[other]) == [other]
    assert ids(Filters=[{"Name": "tag:team", "Values": ["net"]}]) == [pid]
    with expect_error("InvalidPrefixListID.NotFound", 400):
        ec2.describe_managed_prefix_lists(PrefixListIds=["pl-0123456789abcdef0"])


def test_bad_input(ec2):
    with expect_error("InvalidParameterValue", 400):
        make(ec2, entries=["10.0.0.1/24"])  # host bits set
    with expect_error("InvalidParameterValue", 400):
        make(ec2, entries=["2001:db8::/32"])  # wrong family
    with expect_error("PrefixListMaxEntriesExceeded", 400):
        make(ec2, entries=["10.0.0.0/24", "10.0.1.0/24"], max_entries=1)
    with expect_error("InvalidParameterValue", 400):
        make(ec2, name="com.amazonaws.us-east-1.mine")
    with expect_error("InvalidParameterValue", 400):
        make(ec2, max_entries=0)
    with expect_error("InvalidParameterValue", 400):
        make(ec2, family="IPv5")
    assert own(ec2) == []


def test_security_group_rules_name_lists_and_count_their_size(ec2, vpc):
    pid = make(ec2, max_entries=20)["PrefixListId"]
    sg = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc["VpcId"])["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=sg,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
                        "PrefixListIds": [{"PrefixListId": pid, "Description": "office"}]}],
    )
    (group,) = ec2.describe_security_groups(GroupIds=[sg])["SecurityGroups"]
    assert group["IpPermissions"][0]["PrefixListIds"] == [{"PrefixListId": pid, "Description": "office"}]
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [sg]}])["SecurityGroupRules"]
    assert [r["PrefixListId"] for r in rules if not r["IsEgress"]] == [pid]
    found = ec2.describe_security_groups(Filters=[{"Name": "ip-permission.prefix-list-id", "Values": [pid]}])["SecurityGroups"]
    assert [g["GroupId"] for g in found] == [sg]
    with expect_error("InvalidPrefixListID.NotFound", 400):
        ec2.authorize_security_group_ingress(
            GroupId=sg,
            IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
                            "PrefixListIds": [{"PrefixListId": "pl-0123456789abcdef0"}]}],
        )
    # 60 rules a direction: the list of 20 counts 20, so 40 more single rules fit, not 41.
    perms = [{"IpProtocol": "tcp", "FromPort": 1000 + i, "ToPort": 1000 + i, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]} for i in range(41)]
    with expect_error("RulesPerSecurityGroupLimitExceeded", 400):
        ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=perms)
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=perms[:40])

    # A list in use cannot be deleted: the delete is accepted and the list ends delete-failed.
    out = ec2.delete_managed_prefix_list(PrefixListId=pid)["PrefixList"]
    assert out["State"] == "delete-in-progress"
    (pl,) = ec2.describe_managed_prefix_lists(PrefixListIds=[pid])["PrefixLists"]
    assert pl["State"] == "delete-failed" and sg in pl["StateMessage"]
    ec2.revoke_security_group_ingress(
        GroupId=sg,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "PrefixListIds": [{"PrefixListId": pid}]}],
    )
    ec2.delete_managed_prefix_list(PrefixListId=pid)
    assert own(ec2) == []


def test_routes_to_a_list(ec2, vpc):
    pid = make(ec2)["PrefixListId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc["VpcId"])
    rtb = ec2.create_route_table(VpcId=vpc["VpcId"])["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=rtb, DestinationPrefixListId=pid, GatewayId=igw)
    routes = ec2.describe_route_tables(RouteTableIds=[rtb])["RouteTables"][0]["Routes"]
    assert {"DestinationPrefixListId": pid, "GatewayId": igw, "Origin": "CreateRoute", "State": "active"} in routes
    with expect_error("RouteAlreadyExists", 400):
        ec2.create_route(RouteTableId=rtb, DestinationPrefixListId=pid, GatewayId=igw)
    with expect_error("InvalidPrefixListID.NotFound", 400):
        ec2.create_route(RouteTableId=rtb, DestinationPrefixListId="pl-0123456789abcdef0", GatewayId=igw)
    found = ec2.describe_route_tables(Filters=[{"Name": "route.destination-prefix-list-id", "Values": [pid]}])["RouteTables"]
    assert [t["RouteTableId"] for t in found] == [rtb]
    ec2.delete_managed_prefix_list(PrefixListId=pid)
    (pl,) = ec2.describe_managed_prefix_lists(PrefixListIds=[pid])["PrefixLists"]
    assert pl["State"] == "delete-failed" and rtb in pl["StateMessage"]
    with expect_error("IncorrectState", 400):
        ec2.modify_managed_prefix_list(PrefixListId=pid, PrefixListName="x")
    ec2.delete_route(RouteTableId=rtb, DestinationPrefixListId=pid)
    ec2.delete_managed_prefix_list(PrefixListId=pid)
    with expect_error("InvalidPrefixListID.NotFound", 400):
        ec2.get_managed_prefix_list_entries(PrefixListId=pid)
