"""Security groups: the default group, rules as IpPermissions and as sgr- rules, and the
errors EC2 gives for duplicates, missing rules, bad protocols and groups still in use."""
import json

from support import client, expect_error, tag_dict, tag_spec

ALL_OUT = {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}], "Ipv6Ranges": [], "PrefixListIds": [], "UserIdGroupPairs": []}


def groups_of(ec2, vpc_id):
    return ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["SecurityGroups"]


def ssh_from(cidr, description=None):
    r = {"CidrIp": cidr}
    if description:
        r["Description"] = description
    return {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [r]}


def test_every_vpc_has_an_undeletable_default_group(ec2, vpc):
    (default,) = groups_of(ec2, vpc["VpcId"])
    assert default["GroupName"] == "default"
    assert default["Description"] == "default VPC security group"
    assert default["GroupId"].startswith("sg-") and len(default["GroupId"]) == 20
    assert default["OwnerId"] == "000000000000"
    # All traffic in from members of the group itself, all traffic out.
    assert default["IpPermissions"] == [
        {
            "IpProtocol": "-1",
            "IpRanges": [],
            "Ipv6Ranges": [],
            "PrefixListIds": [],
            "UserIdGroupPairs": [{"GroupId": default["GroupId"], "UserId": "000000000000"}],
        }
    ]
    assert default["IpPermissionsEgress"] == [ALL_OUT]
    with expect_error("CannotDelete"):
        ec2.delete_security_group(GroupId=default["GroupId"])
    # It goes with its VPC, rules and all.
    ec2.delete_vpc(VpcId=vpc["VpcId"])
    with expect_error("InvalidGroup.NotFound"):
        ec2.describe_security_groups(GroupIds=[default["GroupId"]])
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [default["GroupId"]]}])
    assert rules["SecurityGroupRules"] == []


def test_create_describe_authorize_revoke_delete(ec2, vpc):
    created = ec2.create_security_group(
        GroupName="web", Description="web tier", VpcId=vpc["VpcId"], TagSpecifications=tag_spec("security-group", Name="web")
    )
    gid = created["GroupId"]
    assert created["SecurityGroupArn"] == f"arn:aws:ec2:us-east-1:000000000000:security-group/{gid}"
    (g,) = ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"]
    assert (g["GroupName"], g["Description"], g["VpcId"]) == ("web", "web tier", vpc["VpcId"])
    assert tag_dict(g) == {"Name": "web"}
    # A new group lets nothing in and everything out.
    assert g["IpPermissions"] == [] and g["IpPermissionsEgress"] == [ALL_OUT]

    out = ec2.authorize_security_group_ingress(
        GroupId=gid,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}, {"CidrIp": "10.0.0.0/8", "Description": "office"}]},
            {"IpProtocol": "6", "FromPort": 80, "ToPort": 80, "Ipv6Ranges": [{"CidrIpv6": "::/0"}]},
        ],
        TagSpecifications=tag_spec("security-group-rule", Team="net"),
    )
    assert out["Return"] is True
    rules = out["SecurityGroupRules"]
    assert len(rules) == 3 and all(r["SecurityGroupRuleId"].startswith("sgr-") for r in rules)
    assert {(r["IpProtocol"], r["FromPort"], r.get("CidrIpv4") or r.get("CidrIpv6")) for r in rules} == {
        ("tcp", 443, "0.0.0.0/0"),
        ("tcp", 443, "10.0.0.0/8"),
        ("tcp", 80, "::/0"),  # protocol 6 is spelled tcp
    }
    assert all(r["IsEgress"] is False and r["GroupId"] == gid and tag_dict(r) == {"Team": "net"} for r in rules)

    (g,) = ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"]
    perms = {(p["IpProtocol"], p["FromPort"], p["ToPort"]): p for p in g["IpPermissions"]}
    assert set(perms) == {("tcp", 443, 443), ("tcp", 80, 80)}
    assert sorted(perms[("tcp", 443, 443)]["IpRanges"], key=lambda r: r["CidrIp"]) == [
        {"CidrIp": "0.0.0.0/0"},
        {"CidrIp": "10.0.0.0/8", "Description": "office"},
    ]
    assert perms[("tcp", 80, 80)]["Ipv6Ranges"] == [{"CidrIpv6": "::/0"}]

    with expect_error("InvalidPermission.Duplicate"):
        ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "other text"}]}])
    # A duplicate inside one request is refused too, and nothing of that request is kept.
    with expect_error("InvalidPermission.Duplicate"):
        ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[ssh_from("1.2.3.4/32"), ssh_from("1.2.3.4/32")])
    assert len(ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [gid]}])["SecurityGroupRules"]) == 4

    with expect_error("InvalidPermission.NotFound"):
        ec2.revoke_security_group_ingress(GroupId=gid, IpPermissions=[ssh_from("1.2.3.4/32")])
    revoked = ec2.revoke_security_group_ingress(GroupId=gid, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    assert revoked["Return"] is True
    assert [r["CidrIpv4"] for r in revoked["RevokedSecurityGroupRules"]] == ["0.0.0.0/0"]
    by_v6 = [r for r in rules if r.get("CidrIpv6")][0]["SecurityGroupRuleId"]
    ec2.revoke_security_group_ingress(GroupId=gid, SecurityGroupRuleIds=[by_v6])
    (g,) = ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"]
    assert [p["IpRanges"] for p in g["IpPermissions"]] == [[{"CidrIp": "10.0.0.0/8", "Description": "office"}]]

    with expect_error("DryRunOperation", 412):
        ec2.delete_security_group(GroupId=gid, DryRun=True)
    # A VPC with a group the user made in it cannot go.
    with expect_error("DependencyViolation"):
        ec2.delete_vpc(VpcId=vpc["VpcId"])
    assert ec2.delete_security_group(GroupId=gid)["GroupId"] == gid
    with expect_error("InvalidGroup.NotFound"):
        ec2.delete_security_group(GroupId=gid)
    ec2.delete_vpc(VpcId=vpc["VpcId"])


def test_names_are_unique_per_vpc_and_follow_ec2_rules(ec2, vpc):
    ec2.create_security_group(GroupName="app", Description="d", VpcId=vpc["VpcId"])
    with expect_error("InvalidGroup.Duplicate"):
        ec2.create_security_group(GroupName="app", Description="d", VpcId=vpc["VpcId"])
    other = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    ec2.create_security_group(GroupName="app", Description="d", VpcId=other)  # another VPC: fine
    with expect_error("InvalidParameterValue"):
        ec2.create_security_group(GroupName="default", Description="d", VpcId=vpc["VpcId"])
    with expect_error("InvalidParameterValue"):
        ec2.create_security_group(GroupName="sg-mine", Description="d", VpcId=vpc["VpcId"])
    with expect_error("InvalidParameterValue"):
        ec2.create_security_group(GroupName="bad<name>", Description="d", VpcId=vpc["VpcId"])
    with expect_error("InvalidParameterValue"):
        ec2.create_security_group(GroupName="ok", Description="é", VpcId=vpc["VpcId"])
    with expect_error("InvalidVpcID.NotFound"):
        ec2.create_security_group(GroupName="x", Description="d", VpcId="vpc-0123456789abcdef0")
    with expect_error("InvalidGroupId.Malformed"):
        ec2.describe_security_groups(GroupIds=["group-1"])
    by_name = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["app"]}])["SecurityGroups"]
    assert sorted(g["VpcId"] for g in by_name) == sorted([vpc["VpcId"], other])


def test_protocols_ports_and_peers_are_checked(ec2, vpc):
    gid = ec2.create_security_group(GroupName="p", Description="d", VpcId=vpc["VpcId"])["GroupId"]

    def authorize(**perm):
        perm.setdefault("IpRanges", [{"CidrIp": "10.0.0.0/16"}])
        return ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[perm])["SecurityGroupRules"][0]

    with expect_error("InvalidParameterValue"):
        authorize(IpProtocol="gre")
    with expect_error("InvalidParameterValue"):
        authorize(IpProtocol="tcp", FromPort=22)  # TCP needs both ports
    with expect_error("InvalidParameterValue"):
        authorize(IpProtocol="udp", FromPort=100, ToPort=50)
    with expect_error("InvalidParameterValue"):
        authorize(IpProtocol="tcp", FromPort=0, ToPort=70000)
    with expect_error("InvalidParameterValue"):
        authorize(IpProtocol="tcp", FromPort=22, ToPort=22, IpRanges=[{"CidrIp": "10.0.0.1/33"}])
    with expect_error("InvalidParameterValue"):
        authorize(IpProtocol="tcp", FromPort=22, ToPort=22, IpRanges=[{"CidrIp": "not-a-cidr"}])

    icmp = authorize(IpProtocol="icmp", FromPort=8, ToPort=-1)
    assert (icmp["IpProtocol"], icmp["FromPort"], icmp["ToPort"]) == ("icmp", 8, -1)
    esp = authorize(IpProtocol="50", FromPort=1, ToPort=2)  # ports mean nothing for ESP
    assert (esp["IpProtocol"], esp["FromPort"], esp["ToPort"]) == ("50", -1, -1)
    everything = authorize(IpProtocol="-1", IpRanges=[{"CidrIp": "192.168.0.0/24"}])
    assert (everything["FromPort"], everything["ToPort"]) == (-1, -1)
    (g,) = ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"]
    by_proto = {p["IpProtocol"]: p for p in g["IpPermissions"]}
    # Protocols without ports show none in IpPermissions.
    assert "FromPort" not in by_proto["-1"] and "FromPort" not in by_proto["50"]
    assert (by_proto["icmp"]["FromPort"], by_proto["icmp"]["ToPort"]) == (8, -1)
    # Revoking "all traffic" with the ports Terraform sends (0/0) finds the same rule.
    ec2.revoke_security_group_ingress(GroupId=gid, IpPermissions=[{"IpProtocol": "-1", "FromPort": 0, "ToPort": 0, "IpRanges": [{"CidrIp": "192.168.0.0/24"}]}])

    with expect_error("InvalidGroup.NotFound"):
        authorize(IpProtocol="tcp", FromPort=1, ToPort=1, IpRanges=[], UserIdGroupPairs=[{"GroupId": "sg-0123456789abcdef0"}])
    with expect_error("InvalidGroup.NotFound"):
        ec2.authorize_security_group_ingress(GroupId="sg-0123456789abcdef0", IpPermissions=[ssh_from("1.1.1.1/32")])


def test_group_references_hold_the_referenced_group(ec2, vpc):
    web = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc["VpcId"])["GroupId"]
    db = ec2.create_security_group(GroupName="db", Description="db", VpcId=vpc["VpcId"])["GroupId"]
    (rule,) = ec2.authorize_security_group_ingress(
        GroupId=db,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": web, "Description": "from web"}]}],
    )["SecurityGroupRules"]
    assert rule["ReferencedGroupInfo"] == {"GroupId": web, "UserId": "000000000000"}
    (g,) = ec2.describe_security_groups(GroupIds=[db])["SecurityGroups"]
    assert g["IpPermissions"][0]["UserIdGroupPairs"] == [{"Description": "from web", "GroupId": web, "UserId": "000000000000"}]
    found = ec2.describe_security_groups(Filters=[{"Name": "ip-permission.group-id", "Values": [web]}])["SecurityGroups"]
    assert [x["GroupId"] for x in found] == [db]
    found = ec2.describe_security_groups(Filters=[{"Name": "ip-permission.group-name", "Values": ["web"]}])["SecurityGroups"]
    assert [x["GroupId"] for x in found] == [db]
    # A group in another VPC cannot be referenced (no peering).
    other_vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    stranger = ec2.create_security_group(GroupName="x", Description="x", VpcId=other_vpc)["GroupId"]
    with expect_error("InvalidGroup.NotFound"):
        ec2.authorize_security_group_ingress(GroupId=db, IpPermissions=[{"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": stranger}]}])

    with expect_error("DependencyViolation"):
        ec2.delete_security_group(GroupId=web)
    ec2.revoke_security_group_ingress(GroupId=db, SecurityGroupRuleIds=[rule["SecurityGroupRuleId"]])
    ec2.delete_security_group(GroupId=web)


def test_rules_by_id_modify_and_descriptions(ec2, vpc):
    gid = ec2.create_security_group(GroupName="m", Description="d", VpcId=vpc["VpcId"])["GroupId"]
    (rule,) = ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[ssh_from("203.0.113.0/24")])["SecurityGroupRules"]
    rid = rule["SecurityGroupRuleId"]
    assert rule["SecurityGroupRuleArn"].endswith(f":security-group-rule/{rid}")
    (shown,) = ec2.describe_security_group_rules(SecurityGroupRuleIds=[rid])["SecurityGroupRules"]
    assert shown["CidrIpv4"] == "203.0.113.0/24" and shown["GroupOwnerId"] == "000000000000"
    with expect_error("InvalidSecurityGroupRuleId.NotFound"):
        ec2.describe_security_group_rules(SecurityGroupRuleIds=["sgr-0123456789abcdef0"])

    ec2.modify_security_group_rules(
        GroupId=gid,
        SecurityGroupRules=[{"SecurityGroupRuleId": rid, "SecurityGroupRule": {"IpProtocol": "tcp", "FromPort": 2222, "ToPort": 2222, "CidrIpv4": "198.51.100.0/24", "Description": "alt ssh"}}],
    )
    (shown,) = ec2.describe_security_group_rules(SecurityGroupRuleIds=[rid])["SecurityGroupRules"]
    assert (shown["FromPort"], shown["CidrIpv4"], shown["Description"]) == (2222, "198.51.100.0/24", "alt ssh")

    ec2.update_security_group_rule_descriptions_ingress(
        GroupId=gid,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 2222, "ToPort": 2222, "IpRanges": [{"CidrIp": "198.51.100.0/24", "Description": "bastion"}]}],
    )
    (shown,) = ec2.describe_security_group_rules(SecurityGroupRuleIds=[rid])["SecurityGroupRules"]
    assert shown["Description"] == "bastion"
    ec2.create_tags(Resources=[rid], Tags=[{"Key": "k", "Value": "v"}])
    assert tag_dict(ec2.describe_security_group_rules(SecurityGroupRuleIds=[rid])["SecurityGroupRules"][0]) == {"k": "v"}

    # Egress rules are their own list.
    egress = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [gid]}])["SecurityGroupRules"]
    assert sorted(r["IsEgress"] for r in egress) == [False, True]
    with expect_error("InvalidPermission.NotFound"):
        ec2.revoke_security_group_egress(GroupId=gid, IpPermissions=[ssh_from("198.51.100.0/24")])
    ec2.revoke_security_group_egress(GroupId=gid, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    ec2.authorize_security_group_egress(GroupId=gid, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    (g,) = ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"]
    assert [(p["IpProtocol"], p["FromPort"]) for p in g["IpPermissionsEgress"]] == [("tcp", 443)]


def test_rule_quota(endpoint, ec2, vpc):
    gid = ec2.create_security_group(GroupName="q", Description="d", VpcId=vpc["VpcId"])["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[ssh_from(f"10.{i}.0.0/16") for i in range(60)])
    with expect_error("RulesPerSecurityGroupLimitExceeded"):
        ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[ssh_from("11.0.0.0/8")])
    # Outbound rules are counted apart from inbound ones.
    ec2.authorize_security_group_egress(GroupId=gid, IpPermissions=[ssh_from("11.0.0.0/8")])


def test_filters_and_pages(ec2, vpc):
    ids = {ec2.create_security_group(GroupName=f"g{i}", Description="d", VpcId=vpc["VpcId"])["GroupId"] for i in range(7)}
    ec2.authorize_security_group_ingress(GroupId=sorted(ids)[0], IpPermissions=[ssh_from("198.51.100.7/32")])
    found = ec2.describe_security_groups(Filters=[{"Name": "ip-permission.cidr", "Values": ["198.51.100.*"]}])["SecurityGroups"]
    assert [g["GroupId"] for g in found] == [sorted(ids)[0]]
    found = ec2.describe_security_groups(Filters=[{"Name": "ip-permission.from-port", "Values": ["22"]}, {"Name": "vpc-id", "Values": [vpc["VpcId"]]}])
    assert len(found["SecurityGroups"]) == 1
    with expect_error("InvalidParameterValue"):
        ec2.describe_security_groups(Filters=[{"Name": "no-such-filter", "Values": ["x"]}])
    pages = ec2.get_paginator("describe_security_groups").paginate(
        Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}], PaginationConfig={"PageSize": 5}
    )
    seen = [g["GroupId"] for p in pages for g in p["SecurityGroups"]]
    assert len(seen) == 8 and set(seen) >= ids  # the 7 plus the default group


def test_the_cli_opens_ssh_from_my_ip(aws, ec2, vpc):
    """`aws ec2 authorize-security-group-ingress --protocol tcp --port 22 --cidr …`, as the
    bastion walkthroughs do."""
    gid = ec2.create_security_group(GroupName="bastion", Description="bastion", VpcId=vpc["VpcId"])["GroupId"]
    args = ["ec2", "authorize-security-group-ingress", "--group-id", gid, "--protocol", "tcp", "--port", "22", "--cidr", "203.0.113.9/32"]
    done = aws(*args)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["SecurityGroupRules"][0]["CidrIpv4"] == "203.0.113.9/32"
    again = aws(*args)
    assert again.returncode != 0 and "InvalidPermission.Duplicate" in again.stderr


def test_groups_are_per_region(endpoint, ec2, vpc):
    ec2.create_security_group(GroupName="here", Description="d", VpcId=vpc["VpcId"])
    other = client("ec2", endpoint, "eu-west-1")
    assert other.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["here"]}])["SecurityGroups"] == []
