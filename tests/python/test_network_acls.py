"""Network ACLs: the default ACL every VPC and subnet gets, custom ACLs that deny all,
numbered entries in each direction, and moving a subnet between ACLs."""
from support import expect_error, tag_dict, tag_spec

ALLOW_ALL = {"CidrBlock": "0.0.0.0/0", "Protocol": "-1", "RuleAction": "allow", "RuleNumber": 100}
DENY_REST = {"CidrBlock": "0.0.0.0/0", "Protocol": "-1", "RuleAction": "deny", "RuleNumber": 32767}


def acls_of(ec2, vpc_id):
    return ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["NetworkAcls"]


def entries(acl, egress):
    return [{k: v for k, v in e.items() if k != "Egress"} for e in acl["Entries"] if e["Egress"] == egress]


def acl_of_subnet(ec2, subnet_id):
    (acl,) = ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": [subnet_id]}])["NetworkAcls"]
    (assoc,) = [a for a in acl["Associations"] if a["SubnetId"] == subnet_id]
    return acl, assoc


def test_default_acl_allows_all_and_holds_every_new_subnet(ec2, vpc):
    (acl,) = acls_of(ec2, vpc["VpcId"])
    assert acl["IsDefault"] is True and acl["NetworkAclId"].startswith("acl-")
    assert acl["OwnerId"] == "000000000000"
    for egress in (False, True):
        assert entries(acl, egress) == [ALLOW_ALL, DENY_REST]
    subnet = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    held, assoc = acl_of_subnet(ec2, subnet)
    assert held["NetworkAclId"] == acl["NetworkAclId"]
    assert assoc["NetworkAclAssociationId"].startswith("aclassoc-")
    with expect_error("InvalidParameterValue"):
        ec2.delete_network_acl(NetworkAclId=acl["NetworkAclId"])
    # Subnet and VPC go, and the association and the default ACL with them.
    ec2.delete_subnet(SubnetId=subnet)
    assert acls_of(ec2, vpc["VpcId"])[0]["Associations"] == []
    ec2.delete_vpc(VpcId=vpc["VpcId"])
    with expect_error("InvalidNetworkAclID.NotFound"):
        ec2.describe_network_acls(NetworkAclIds=[acl["NetworkAclId"]])


def test_custom_acl_entries_and_associations(ec2, vpc):
    created = ec2.create_network_acl(VpcId=vpc["VpcId"], TagSpecifications=tag_spec("network-acl", Name="private"))["NetworkAcl"]
    aid = created["NetworkAclId"]
    assert created["IsDefault"] is False and tag_dict(created) == {"Name": "private"}
    # A new ACL denies everything until rules are added.
    assert entries(created, False) == [DENY_REST] and entries(created, True) == [DENY_REST]

    ec2.create_network_acl_entry(NetworkAclId=aid, RuleNumber=110, Protocol="tcp", RuleAction="allow", Egress=False, CidrBlock="10.0.0.0/16", PortRange={"From": 22, "To": 22})
    ec2.create_network_acl_entry(NetworkAclId=aid, RuleNumber=110, Protocol="-1", RuleAction="allow", Egress=True, CidrBlock="0.0.0.0/0")
    with expect_error("NetworkAclEntryAlreadyExists"):
        ec2.create_network_acl_entry(NetworkAclId=aid, RuleNumber=110, Protocol="udp", RuleAction="deny", Egress=False, CidrBlock="1.2.3.0/24", PortRange={"From": 53, "To": 53})
    ec2.create_network_acl_entry(NetworkAclId=aid, RuleNumber=120, Protocol="icmp", RuleAction="allow", Egress=False, CidrBlock="10.0.0.0/16", IcmpTypeCode={"Type": 8, "Code": -1})
    (acl,) = ec2.describe_network_acls(NetworkAclIds=[aid])["NetworkAcls"]
    ingress = entries(acl, False)
    # Protocols are shown as numbers; entries in rule order.
    assert [(e["RuleNumber"], e["Protocol"]) for e in ingress] == [(110, "6"), (120, "1"), (32767, "-1")]
    assert ingress[0]["PortRange"] == {"From": 22, "To": 22}
    assert ingress[1]["IcmpTypeCode"] == {"Type": 8, "Code": -1}

    ec2.replace_network_acl_entry(NetworkAclId=aid, RuleNumber=110, Protocol="6", RuleAction="deny", Egress=False, CidrBlock="10.0.0.0/16", PortRange={"From": 22, "To": 23})
    (acl,) = ec2.describe_network_acls(NetworkAclIds=[aid])["NetworkAcls"]
    assert entries(acl, False)[0]["RuleAction"] == "deny" and entries(acl, False)[0]["PortRange"] == {"From": 22, "To": 23}
    with expect_error("InvalidNetworkAclEntry.NotFound"):
        ec2.replace_network_acl_entry(NetworkAclId=aid, RuleNumber=111, Protocol="-1", RuleAction="deny", Egress=False, CidrBlock="0.0.0.0/0")
    with expect_error("InvalidNetworkAclEntry.NotFound"):
        ec2.delete_network_acl_entry(NetworkAclId=aid, RuleNumber=120, Egress=True)
    ec2.delete_network_acl_entry(NetworkAclId=aid, RuleNumber=120, Egress=False)

    # Moving a subnet: ReplaceNetworkAclAssociation, with a new association id each time.
    subnet = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.2.0/24")["Subnet"]["SubnetId"]
    default, assoc = acl_of_subnet(ec2, subnet)
    new_id = ec2.replace_network_acl_association(AssociationId=assoc["NetworkAclAssociationId"], NetworkAclId=aid)["NewAssociationId"]
    assert new_id != assoc["NetworkAclAssociationId"]
    held, assoc2 = acl_of_subnet(ec2, subnet)
    assert held["NetworkAclId"] == aid and assoc2["NetworkAclAssociationId"] == new_id
    (d,) = ec2.describe_network_acls(NetworkAclIds=[default["NetworkAclId"]])["NetworkAcls"]
    assert d["Associations"] == []
    with expect_error("InvalidAssociationID.NotFound"):
        ec2.replace_network_acl_association(AssociationId=assoc["NetworkAclAssociationId"], NetworkAclId=aid)
    with expect_error("DependencyViolation"):
        ec2.delete_network_acl(NetworkAclId=aid)
    with expect_error("DependencyViolation"):
        ec2.delete_vpc(VpcId=vpc["VpcId"])
    back = ec2.replace_network_acl_association(AssociationId=new_id, NetworkAclId=default["NetworkAclId"])["NewAssociationId"]
    assert acl_of_subnet(ec2, subnet)[1]["NetworkAclAssociationId"] == back
    ec2.delete_network_acl(NetworkAclId=aid)
    with expect_error("InvalidNetworkAclID.NotFound"):
        ec2.delete_network_acl(NetworkAclId=aid)


def test_entries_are_checked(ec2, vpc):
    aid = ec2.create_network_acl(VpcId=vpc["VpcId"])["NetworkAcl"]["NetworkAclId"]

    def entry(**kw):
        args = {"NetworkAclId": aid, "RuleNumber": 100, "Protocol": "-1", "RuleAction": "allow", "Egress": False, "CidrBlock": "0.0.0.0/0"}
        args.update(kw)
        ec2.create_network_acl_entry(**{k: v for k, v in args.items() if v is not None})

    with expect_error("InvalidParameterValue"):
        entry(RuleNumber=32767)  # the `*` rule is not yours
    with expect_error("InvalidParameterValue"):
        entry(RuleNumber=0)
    with expect_error("InvalidParameterValue"):
        entry(Protocol="gre")
    with expect_error("MissingParameter"):
        entry(Protocol="tcp")  # TCP needs a port range
    with expect_error("InvalidParameterValue"):
        entry(Protocol="tcp", PortRange={"From": 80, "To": 22})
    with expect_error("InvalidParameterValue"):
        entry(CidrBlock="10.0.0.1/33")
    with expect_error("InvalidNetworkAclID.NotFound"):
        entry(NetworkAclId="acl-0123456789abcdef0")
    with expect_error("InvalidNetworkAclID.Malformed"):
        entry(NetworkAclId="nacl-1")
    for n in range(1, 20):  # 19 rules plus the `*` rule: the limit of 20
        entry(RuleNumber=n)
    with expect_error("NetworkAclEntryLimitExceeded"):
        entry(RuleNumber=50)
    entry(RuleNumber=50, Egress=True)  # each direction has its own limit


def test_filters(ec2, vpc):
    custom = ec2.create_network_acl(VpcId=vpc["VpcId"])["NetworkAcl"]["NetworkAclId"]
    found = ec2.describe_network_acls(Filters=[{"Name": "default", "Values": ["false"]}, {"Name": "vpc-id", "Values": [vpc["VpcId"]]}])
    assert [a["NetworkAclId"] for a in found["NetworkAcls"]] == [custom]
    found = ec2.describe_network_acls(Filters=[{"Name": "entry.rule-number", "Values": ["100"]}, {"Name": "vpc-id", "Values": [vpc["VpcId"]]}])
    assert [a["IsDefault"] for a in found["NetworkAcls"]] == [True]
    with expect_error("InvalidParameterValue"):
        ec2.describe_network_acls(Filters=[{"Name": "bogus", "Values": ["1"]}])
