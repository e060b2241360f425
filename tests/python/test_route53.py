"""Route 53's API: hosted zones (public and private) with the SOA and NS Route 53 makes,
ChangeResourceRecordSets applied whole or not at all with AWS's InvalidChangeBatch messages,
ListResourceRecordSets in Route 53's order and pages, changes, tags. (The DNS server that
answers from these records is issue 21's next part.)"""
import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from support import client, expect_error


@pytest.fixture
def r53(endpoint):
    return client("route53", endpoint)


def zone(r53, name="example.com", **kw):
    out = r53.create_hosted_zone(Name=name, CallerReference=str(uuid.uuid4()), **kw)
    return out, out["HostedZone"]["Id"].split("/")[-1]


def change(r53, zid, *changes, comment=None):
    batch = {"Changes": [{"Action": a, "ResourceRecordSet": s} for a, s in changes]}
    if comment:
        batch["Comment"] = comment
    return r53.change_resource_record_sets(HostedZoneId=zid, ChangeBatch=batch)["ChangeInfo"]


def a(name, *ips, ttl=300, **extra):
    return {"Name": name, "Type": "A", "TTL": ttl, "ResourceRecords": [{"Value": ip} for ip in ips], **extra}


def sets(r53, zid, **kw):
    return r53.list_resource_record_sets(HostedZoneId=zid, **kw)["ResourceRecordSets"]


def test_a_public_zone_has_route53s_name_servers_soa_and_ns(r53):
    out, zid = zone(r53, "Example.COM", HostedZoneConfig={"Comment": "shop"})
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 201
    hz = out["HostedZone"]
    assert hz["Name"] == "example.com." and hz["Config"] == {"Comment": "shop", "PrivateZone": False}
    assert re.fullmatch(r"/hostedzone/Z[A-Z0-9]{12,31}", hz["Id"])
    assert hz["ResourceRecordSetCount"] == 2
    assert out["ChangeInfo"]["Status"] == "PENDING" and out["ChangeInfo"]["Id"].startswith("/change/C")
    servers = out["DelegationSet"]["NameServers"]
    assert len(servers) == 4
    assert [s.rsplit(".", 1)[-1] if not s.endswith(".co.uk") else "co.uk" for s in servers] == ["com", "net", "org", "co.uk"]
    for s in servers:
        n, nn = re.fullmatch(r"ns-(\d+)\.awsdns-(\d\d)\..*", s).groups()
        assert int(n) // 32 == int(nn)
    listed = sets(r53, zid)
    assert [(s["Name"], s["Type"], s["TTL"]) for s in listed] == [("example.com.", "NS", 172800), ("example.com.", "SOA", 900)]
    assert [r["Value"] for r in listed[0]["ResourceRecords"]] == [s + "." for s in servers]
    assert listed[1]["ResourceRecords"][0]["Value"] == f"{servers[0]}. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400"
    assert r53.get_change(Id=out["ChangeInfo"]["Id"])["ChangeInfo"]["Status"] == "INSYNC"
    got = r53.get_hosted_zone(Id=zid)
    assert got["DelegationSet"]["NameServers"] == servers and "VPCs" not in got
    assert r53.get_dnssec(HostedZoneId=zid)["Status"]["ServeSignature"] == "NOT_SIGNING"
    with expect_error("HostedZoneAlreadyExists", 409):
        r53.create_hosted_zone(Name="other.com", CallerReference=hz["CallerReference"])
    with expect_error("NoSuchHostedZone", 404):
        r53.get_hosted_zone(Id="ZNOSUCHZONE123")
    with expect_error("InvalidDomainName"):
        zone(r53, "bad..name")


def test_changes_apply_whole_or_not_at_all_with_awss_messages(r53):
    _, zid = zone(r53)
    change(r53, zid, ("CREATE", a("www.example.com", "192.0.2.10")),
           ("CREATE", {"Name": "mail.example.com", "Type": "MX", "TTL": 300, "ResourceRecords": [{"Value": "10 mx.example.com"}]}),
           ("CREATE", {"Name": "*.example.com", "Type": "TXT", "TTL": 60, "ResourceRecords": [{"Value": '"v=spf1 -all"'}]}))
    # One bad change fails the batch: nothing of it is kept, every problem is named.
    with expect_error("InvalidChangeBatch", 400) as e:
        change(r53, zid, ("CREATE", a("api.example.com", "192.0.2.20")),
               ("CREATE", a("www.example.com", "192.0.2.11")),
               ("DELETE", a("gone.example.com", "192.0.2.1")),
               ("CREATE", a("bad.example.com", "1.2.3")),
               ("CREATE", a("www.other.org", "192.0.2.1")))
    msg = e.value.response["Error"]["Message"]
    assert msg.startswith("[") and msg.endswith("]")
    assert "Tried to create resource record set [name='www.example.com.', type='A'] but it already exists" in msg
    assert "Tried to delete resource record set [name='gone.example.com.', type='A'] but it was not found" in msg
    assert "ARRDATAIllegalIPv4Address (Value is not a valid IPv4 address) encountered with '1.2.3'" in msg
    assert "RRSet with DNS name www.other.org. is not permitted in zone example.com." in msg
    assert "api.example.com." not in [s["Name"] for s in sets(r53, zid)]
    # CNAME: not at the apex, and alone at its name.
    with expect_error("InvalidChangeBatch") as e:
        change(r53, zid, ("CREATE", {"Name": "example.com", "Type": "CNAME", "TTL": 60, "ResourceRecords": [{"Value": "x.example.net"}]}))
    assert "is not permitted at apex in zone example.com." in str(e.value)
    with expect_error("InvalidChangeBatch") as e:
        change(r53, zid, ("CREATE", {"Name": "www.example.com", "Type": "CNAME", "TTL": 60, "ResourceRecords": [{"Value": "x.example.net"}]}))
    assert "RRSet of type CNAME with DNS name www.example.com. is not permitted as it conflicts with other records" in str(e.value)
    # DELETE must name the values it deletes; UPSERT replaces.
    with expect_error("InvalidChangeBatch") as e:
        change(r53, zid, ("DELETE", a("www.example.com", "192.0.2.99")))
    assert "but the values provided do not match the current values" in str(e.value)
    change(r53, zid, ("UPSERT", a("www.example.com", "192.0.2.12", "192.0.2.13", ttl=60)))
    www = [s for s in sets(r53, zid) if s["Name"] == "www.example.com."][0]
    assert www["TTL"] == 60 and [r["Value"] for r in www["ResourceRecords"]] == ["192.0.2.12", "192.0.2.13"]
    # The apex's SOA and NS stay.
    soa = [s for s in sets(r53, zid) if s["Type"] == "SOA"][0]
    with expect_error("InvalidChangeBatch"):
        change(r53, zid, ("DELETE", soa))
    # Alias or records, not both.
    with expect_error("InvalidChangeBatch") as e:
        change(r53, zid, ("CREATE", {"Name": "both.example.com", "Type": "A", "TTL": 60,
                                     "ResourceRecords": [{"Value": "192.0.2.1"}],
                                     "AliasTarget": {"HostedZoneId": zid, "DNSName": "www.example.com", "EvaluateTargetHealth": False}}))
    assert "Expected exactly one of [AliasTarget, all of [TTL, and ResourceRecords]" in str(e.value)
    with expect_error("HostedZoneNotEmpty"):
        r53.delete_hosted_zone(Id=zid)
    assert r53.get_hosted_zone(Id=zid)["HostedZone"]["ResourceRecordSetCount"] == 5


def test_listing_is_in_route53s_order_and_pages(r53):
    _, zid = zone(r53)
    names = ["www", "a.b", "b", "mail", "api", "z.a", "*"]
    change(r53, zid, *[("CREATE", a(f"{n}.example.com", "192.0.2.1")) for n in names],
           ("CREATE", {"Name": "www.example.com", "Type": "TXT", "TTL": 60, "ResourceRecords": [{"Value": '"hello"'}]}),
           ("CREATE", a("w.example.com", "192.0.2.2", SetIdentifier="blue", Weight=10)),
           ("CREATE", a("w.example.com", "192.0.2.3", SetIdentifier="green", Weight=20)),
           ("CREATE", {"Name": "lb.example.com", "Type": "A",
                       "AliasTarget": {"HostedZoneId": "Z35SXDOTRQ7X7K", "DNSName": "Web-1.us-east-1.elb.amazonaws.com", "EvaluateTargetHealth": True}}))
    order = [(s["Name"], s["Type"], s.get("SetIdentifier")) for s in sets(r53, zid)]
    # By name with its labels reversed, byte by byte (com.example.a.z before com.example.api,
    # com.example.b before com.example.b.a), then type, then set identifier.
    assert order == [
        ("example.com.", "NS", None), ("example.com.", "SOA", None),
        ("\\052.example.com.", "A", None),
        ("z.a.example.com.", "A", None),
        ("api.example.com.", "A", None),
        ("b.example.com.", "A", None), ("a.b.example.com.", "A", None),
        ("lb.example.com.", "A", None), ("mail.example.com.", "A", None),
        ("w.example.com.", "A", "blue"), ("w.example.com.", "A", "green"),
        ("www.example.com.", "A", None), ("www.example.com.", "TXT", None),
    ]
    # Pages of 3 cover everything once, in order; the next record is named.
    seen, kw = [], {}
    while True:
        page = r53.list_resource_record_sets(HostedZoneId=zid, MaxItems="3", **kw)
        seen += [(s["Name"], s["Type"], s.get("SetIdentifier")) for s in page["ResourceRecordSets"]]
        if not page["IsTruncated"]:
            break
        kw = {"StartRecordName": page["NextRecordName"], "StartRecordType": page["NextRecordType"]}
        if "NextRecordIdentifier" in page:
            kw["StartRecordIdentifier"] = page["NextRecordIdentifier"]
    assert seen == order
    # Terraform's read: start exactly at (name, type), one item.
    one = r53.list_resource_record_sets(HostedZoneId=zid, StartRecordName="www.example.com", StartRecordType="TXT", MaxItems="1")
    assert [(s["Name"], s["Type"]) for s in one["ResourceRecordSets"]] == [("www.example.com.", "TXT")]
    alias = [s for s in sets(r53, zid) if s["Name"] == "lb.example.com."][0]
    assert "TTL" not in alias and alias["AliasTarget"]["DNSName"] == "web-1.us-east-1.elb.amazonaws.com."
    with expect_error("InvalidChangeBatch") as e:
        change(r53, zid, ("CREATE", a("w.example.com", "192.0.2.4")))
    assert "cannot be created" in str(e.value)
    with expect_error("InvalidInput"):
        r53.list_resource_record_sets(HostedZoneId=zid, StartRecordType="A")


def test_private_zones_live_in_their_vpcs(r53, ec2):
    vpc1 = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    vpc2 = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    out, zid = zone(r53, "corp.internal", VPC={"VPCRegion": "us-east-1", "VPCId": vpc1},
                    HostedZoneConfig={"PrivateZone": True})
    assert out["HostedZone"]["Config"]["PrivateZone"] is True and "DelegationSet" not in out
    ns = [s for s in sets(r53, zid) if s["Type"] == "NS"][0]
    assert sorted(r["Value"] for r in ns["ResourceRecords"]) == sorted(
        ["ns-1536.awsdns-00.co.uk.", "ns-0.awsdns-00.com.", "ns-1024.awsdns-00.org.", "ns-512.awsdns-00.net."])
    with expect_error("ConflictingDomainExists"):
        zone(r53, "corp.internal", VPC={"VPCRegion": "us-east-1", "VPCId": vpc1})
    with expect_error("InvalidVPCId"):
        zone(r53, "x.internal", VPC={"VPCRegion": "us-east-1", "VPCId": "vpc-0123456789abcdef0"})
    with expect_error("LastVPCAssociation"):
        r53.disassociate_vpc_from_hosted_zone(HostedZoneId=zid, VPC={"VPCRegion": "us-east-1", "VPCId": vpc1})
    r53.associate_vpc_with_hosted_zone(HostedZoneId=zid, VPC={"VPCRegion": "us-east-1", "VPCId": vpc2})
    assert sorted(v["VPCId"] for v in r53.get_hosted_zone(Id=zid)["VPCs"]) == sorted([vpc1, vpc2])
    r53.disassociate_vpc_from_hosted_zone(HostedZoneId=zid, VPC={"VPCRegion": "us-east-1", "VPCId": vpc1})
    assert [v["VPCId"] for v in r53.get_hosted_zone(Id=zid)["VPCs"]] == [vpc2]
    with expect_error("InvalidArgument"):
        r53.get_dnssec(HostedZoneId=zid)
    _, public = zone(r53, "public.example")
    with expect_error("PublicZoneVPCAssociation"):
        r53.associate_vpc_with_hosted_zone(HostedZoneId=public, VPC={"VPCRegion": "us-east-1", "VPCId": vpc1})
    private = r53.list_hosted_zones(HostedZoneType="PrivateHostedZone")["HostedZones"]
    assert [z["Name"] for z in private] == ["corp.internal."]
    assert r53.get_hosted_zone_count()["HostedZoneCount"] == 2


def test_zones_are_global_tagged_listed_and_deleted(endpoint, r53):
    _, zid = zone(r53, "b.example")
    zone(r53, "a.example")
    # Whatever region a client signs with, it sees the same zones.
    other = client("route53", endpoint, "eu-west-1")
    assert {z["Name"] for z in other.list_hosted_zones()["HostedZones"]} == {"a.example.", "b.example."}
    by_name = r53.list_hosted_zones_by_name()["HostedZones"]
    assert [z["Name"] for z in by_name] == ["a.example.", "b.example."]
    r53.change_tags_for_resource(ResourceType="hostedzone", ResourceId=zid,
                                 AddTags=[{"Key": "env", "Value": "test"}, {"Key": "team", "Value": "web"}])
    r53.change_tags_for_resource(ResourceType="hostedzone", ResourceId=zid, RemoveTagKeys=["team"])
    tags = r53.list_tags_for_resource(ResourceType="hostedzone", ResourceId=zid)["ResourceTagSet"]
    assert tags["Tags"] == [{"Key": "env", "Value": "test"}]
    r53.update_hosted_zone_comment(Id=zid, Comment="renamed")
    assert r53.get_hosted_zone(Id=zid)["HostedZone"]["Config"]["Comment"] == "renamed"
    info = r53.delete_hosted_zone(Id=zid)["ChangeInfo"]
    assert r53.get_change(Id=info["Id"])["ChangeInfo"]["Status"] == "INSYNC"
    with expect_error("NoSuchHostedZone"):
        r53.get_hosted_zone(Id=zid)
    with expect_error("NoSuchChange"):
        r53.get_change(Id="CNOSUCHCHANGE")


def test_the_aws_cli_drives_it(endpoint):
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    aws = [str(Path(sys.executable).parent / "aws"), "--endpoint-url", endpoint, "route53"]
    out = subprocess.run(aws + ["create-hosted-zone", "--name", "cli.example", "--caller-reference", "cli-1"],
                         env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    zid = json.loads(out.stdout)["HostedZone"]["Id"]
    batch = json.dumps({"Changes": [{"Action": "CREATE", "ResourceRecordSet": {
        "Name": "www.cli.example", "Type": "A", "TTL": 300, "ResourceRecords": [{"Value": "192.0.2.7"}]}}]})
    out = subprocess.run(aws + ["change-resource-record-sets", "--hosted-zone-id", zid, "--change-batch", batch],
                         env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    out = subprocess.run(aws + ["list-resource-record-sets", "--hosted-zone-id", zid, "--query",
                                "ResourceRecordSets[?Type=='A'].ResourceRecords[0].Value", "--output", "text"],
                         env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "192.0.2.7", out.stderr
