"""Reachability on the classic layout a learner builds: `kumori reach`, which reads the state a
running kumori keeps, and AWS's Reachability Analyzer API through boto3 and the aws CLI."""
import subprocess

import pytest
from support import client, expect_error, kumori_bin


@pytest.fixture
def layout(spawn, tmp_path):
    """VPC, public and private subnets, IGW, NAT gateway, a bastion that alone takes SSH from
    "my IP" (203.0.113.5), a private web server that takes SSH from the bastion, a database
    that takes MySQL from the web tier."""
    srv = spawn(state_dir=tmp_path / "state")
    ec2 = client("ec2", srv.endpoint)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    public = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    private = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.11.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    rtb_public = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=rtb_public, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    ec2.associate_route_table(RouteTableId=rtb_public, SubnetId=public)
    eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=public, AllocationId=eip)["NatGateway"]["NatGatewayId"]
    rtb_private = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=rtb_private, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
    ec2.associate_route_table(RouteTableId=rtb_private, SubnetId=private)
    sg = lambda name: ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc)["GroupId"]  # noqa: E731
    bastion_sg, web_sg, db_sg = sg("bastion"), sg("web"), sg("db")
    ec2.authorize_security_group_ingress(GroupId=bastion_sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "203.0.113.5/32"}]}])
    ec2.authorize_security_group_ingress(GroupId=web_sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "UserIdGroupPairs": [{"GroupId": bastion_sg}]}])
    ec2.authorize_security_group_ingress(GroupId=db_sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 3306, "ToPort": 3306, "UserIdGroupPairs": [{"GroupId": web_sg}]}])
    ami = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["al2023-ami-2023.9.20261110.0-kernel-6.1-x86_64"]}])["Images"][0]["ImageId"]
    run = lambda subnet, group, public_ip: ec2.run_instances(  # noqa: E731
        ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1,
        NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": subnet, "Groups": [group], "AssociatePublicIpAddress": public_ip}],
    )["Instances"][0]["InstanceId"]
    return {
        "ec2": ec2,
        "endpoint": srv.endpoint,
        "state": tmp_path / "state",
        "bastion": run(public, bastion_sg, True),
        "web": run(private, web_sg, False),
        "db": run(private, db_sg, False),
        "nat": nat,
        "igw": igw,
        "web_sg": web_sg,
        "db_sg": db_sg,
    }


def reach(layout, frm, to, port=None):
    return subprocess.run(
        [str(kumori_bin()), "reach", "--state-dir", str(layout["state"]), "--from", frm, "--to", to,
         *(["--port", str(port)] if port is not None else [])],
        capture_output=True, text=True, timeout=30,
    )


def test_the_journeys_of_the_classic_layout(layout):
    ok = reach(layout, "203.0.113.5", layout["bastion"], 22)
    assert ok.returncode == 0 and ok.stdout.startswith("REACHABLE"), ok.stdout + ok.stderr
    assert layout["igw"] in ok.stdout and "return:" in ok.stdout
    other = reach(layout, "198.51.100.7", layout["bastion"], 22)
    assert other.returncode == 1 and "ENI_SG_RULES_MISMATCH (ingress)" in other.stdout
    private = reach(layout, "203.0.113.5", layout["web"], 22)
    assert private.returncode == 1 and "IGW_PRIVATE_IP_ASSOCIATION_FOR_INGRESS" in private.stdout
    assert "bastion" in private.stdout  # the message says what would open it
    # ... and names the bastion that is the way round.
    assert "another way" in private.stdout and layout["bastion"] in private.stdout, private.stdout
    hop = reach(layout, layout["bastion"], layout["web"], 22)
    assert hop.returncode == 0, hop.stdout
    out = reach(layout, layout["web"], "93.184.216.34", 443)
    assert out.returncode == 0 and layout["nat"] in out.stdout, out.stdout
    assert reach(layout, layout["web"], layout["db"], 3306).returncode == 0
    denied = reach(layout, layout["bastion"], layout["db"], 3306)
    assert denied.returncode == 1 and layout["db_sg"] in denied.stdout


def test_every_port_at_once(layout):
    # Without a port: which ports are open from "my IP" to the bastion, and what stops the rest.
    mine = reach(layout, "203.0.113.5", layout["bastion"])
    assert mine.returncode == 0 and mine.stdout.startswith("REACHABLE"), mine.stdout + mine.stderr
    lines = mine.stdout.splitlines()
    assert "  open      22" in lines
    blocked = next(line for line in lines if line.startswith("  blocked"))
    assert "0-21, 23-65535" in blocked and "ENI_SG_RULES_MISMATCH (ingress)" in blocked
    # The bastion reaches no port of the database; the web tier only MySQL.
    none = reach(layout, layout["bastion"], layout["db"])
    assert none.returncode == 1 and "  open      none" in none.stdout.splitlines(), none.stdout
    web = reach(layout, layout["web"], layout["db"])
    assert web.returncode == 0 and "  open      3306" in web.stdout.splitlines(), web.stdout


def test_unknown_names_are_refused(layout):
    bad = reach(layout, "i-0123456789abcdef0", layout["web"], 22)
    assert bad.returncode == 1 and "InvalidInstanceID.NotFound" in bad.stderr


def analyse(ec2, **path):
    p = ec2.create_network_insights_path(**path)["NetworkInsightsPath"]
    started = ec2.start_network_insights_analysis(NetworkInsightsPathId=p["NetworkInsightsPathId"])["NetworkInsightsAnalysis"]
    assert started["Status"] == "running"
    (a,) = ec2.describe_network_insights_analyses(NetworkInsightsAnalysisIds=[started["NetworkInsightsAnalysisId"]])["NetworkInsightsAnalyses"]
    assert a["Status"] == "succeeded"
    return p, a


def test_reachability_analyzer_api(layout):
    ec2 = layout["ec2"]
    # Internet (through the gateway) to the bastion on SSH: found, hop by hop, both ways.
    p, a = analyse(ec2, Source=layout["igw"], Destination=layout["bastion"], Protocol="tcp",
                   FilterAtSource={"SourceAddress": "203.0.113.5", "DestinationPortRange": {"FromPort": 22, "ToPort": 22}})
    assert p["SourceArn"].endswith(f":internet-gateway/{layout['igw']}") and p["Protocol"] == "tcp"
    assert a["NetworkPathFound"] is True and a["Explanations"] == []
    forward = [c["Component"]["Id"] for c in a["ForwardPathComponents"]]
    assert forward[0] == layout["igw"]
    acl = next(c for c in a["ForwardPathComponents"] if "AclRule" in c)
    assert acl["AclRule"]["RuleAction"] == "allow" and acl["AclRule"]["Egress"] is False
    sg = next(c for c in a["ForwardPathComponents"] if "SecurityGroupRule" in c)
    assert sg["SecurityGroupRule"]["Cidr"] == "203.0.113.5/32" and sg["SecurityGroupRule"]["PortRange"] == {"From": 22, "To": 22}
    eni = a["ForwardPathComponents"][-1]
    assert eni["AttachedTo"]["Id"] == layout["bastion"]
    assert any("RouteTableRoute" in c for c in a["ReturnPathComponents"])
    # From another address the security group stops it, and says so.
    _, a = analyse(ec2, Source=layout["igw"], Destination=layout["bastion"], Protocol="tcp",
                   SourceIp="198.51.100.7", DestinationPort=22)
    assert a["NetworkPathFound"] is False
    (e,) = a["Explanations"]
    assert (e["ExplanationCode"], e["Direction"]) == ("ENI_SG_RULES_MISMATCH", "ingress")
    assert e["SecurityGroups"][0]["Id"] and e["NetworkInterface"]["Id"].startswith("eni-")
    # With no port given, some port of the bastion is open to the internet: SSH.
    _, a = analyse(ec2, Source=layout["igw"], Destination=layout["bastion"], Protocol="tcp")
    assert a["NetworkPathFound"] is True
    # The database is not reachable from the bastion on 3306; the web tier is.
    _, a = analyse(ec2, Source=layout["bastion"], Destination=layout["db"], Protocol="tcp", DestinationPort=3306)
    assert a["NetworkPathFound"] is False and a["Explanations"][0]["ExplanationCode"] == "ENI_SG_RULES_MISMATCH"
    _, a = analyse(ec2, Source=layout["web"], Destination=layout["db"], Protocol="tcp", DestinationPort=3306)
    assert a["NetworkPathFound"] is True
    # The web server reaches the internet through the NAT gateway.
    p, a = analyse(ec2, Source=layout["web"], Destination=layout["igw"], Protocol="tcp", DestinationPort=443)
    assert a["NetworkPathFound"] is True
    assert layout["nat"] in [c["Component"]["Id"] for c in a["ForwardPathComponents"]]
    # Listing, filters, and the order of deletion.
    assert [x["NetworkInsightsPathId"] for x in ec2.describe_network_insights_paths(
        Filters=[{"Name": "destination", "Values": [layout["igw"]]}])["NetworkInsightsPaths"]] == [p["NetworkInsightsPathId"]]
    found = ec2.describe_network_insights_analyses(NetworkInsightsPathId=p["NetworkInsightsPathId"],
                                                   Filters=[{"Name": "path-found", "Values": ["true"]}])["NetworkInsightsAnalyses"]
    assert [x["NetworkInsightsAnalysisId"] for x in found] == [a["NetworkInsightsAnalysisId"]]
    with expect_error("AnalysisExistsForNetworkInsightsPath", 400):
        ec2.delete_network_insights_path(NetworkInsightsPathId=p["NetworkInsightsPathId"])
    ec2.delete_network_insights_analysis(NetworkInsightsAnalysisId=a["NetworkInsightsAnalysisId"])
    ec2.delete_network_insights_path(NetworkInsightsPathId=p["NetworkInsightsPathId"])
    with expect_error("InvalidNetworkInsightsPathId.NotFound", 400):
        ec2.start_network_insights_analysis(NetworkInsightsPathId=p["NetworkInsightsPathId"])
    # What a path needs.
    with expect_error("MissingParameter", 400):
        ec2.create_network_insights_path(Source=layout["bastion"], Protocol="tcp")
    with expect_error("InvalidParameterCombination", 400):
        ec2.create_network_insights_path(Source=layout["bastion"], Destination=layout["web"], Protocol="tcp",
                                         DestinationPort=22, FilterAtSource={"SourceAddress": "10.0.1.5"})
    with expect_error("InvalidInstanceID.NotFound", 400):
        ec2.create_network_insights_path(Source="i-0123456789abcdef0", Destination=layout["web"], Protocol="tcp")


def test_the_cli_asks_the_analyzer_too(layout, tmp_path):
    import json
    import os
    import sys
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "AWS_ACCESS_KEY_ID": "test",
           "AWS_SECRET_ACCESS_KEY": "test", "AWS_EC2_METADATA_DISABLED": "true",
           "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}
    cli = lambda *a: subprocess.run([sys.executable, "-m", "awscli", *a, "--endpoint-url", layout["endpoint"],  # noqa: E731
                                     "--region", "us-east-1", "--output", "json"], env=env, capture_output=True, text=True, timeout=60)
    made = cli("ec2", "create-network-insights-path", "--source", layout["bastion"], "--destination", layout["web"],
               "--protocol", "tcp", "--destination-port", "22")
    assert made.returncode == 0, made.stderr
    path = json.loads(made.stdout)["NetworkInsightsPath"]
    assert path["Protocol"] == "tcp"
    started = cli("ec2", "start-network-insights-analysis", "--network-insights-path-id", path["NetworkInsightsPathId"])
    assert started.returncode == 0, started.stderr
    analysis_id = json.loads(started.stdout)["NetworkInsightsAnalysis"]["NetworkInsightsAnalysisId"]
    shown = cli("ec2", "describe-network-insights-analyses", "--network-insights-analysis-ids", analysis_id)
    (a,) = json.loads(shown.stdout)["NetworkInsightsAnalyses"]
    assert a["NetworkPathFound"] is True and a["Status"] == "succeeded"


def test_audit_flags_exposures(layout):
    run = lambda: subprocess.run([str(kumori_bin()), "audit", "--state-dir", str(layout["state"])],  # noqa: E731
                                 capture_output=True, text=True, timeout=30)
    clean = run()
    # The layout as built is clean: every group is in use, nothing open to the world.
    assert clean.returncode == 0, clean.stdout + clean.stderr
    ec2 = layout["ec2"]
    ec2.authorize_security_group_ingress(GroupId=layout["db_sg"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 3306, "ToPort": 3306, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    flagged = run()
    assert flagged.returncode == 1
    assert "OPEN_DATABASE_PORT" in flagged.stdout and layout["db_sg"] in flagged.stdout


def test_network_access_analyzer_finds_ssh_from_the_internet(layout):
    ec2 = layout["ec2"]
    internet_ssh = [{"Source": {"ResourceStatement": {"ResourceTypes": ["AWS::EC2::InternetGateway"]}},
                     "Destination": {"PacketHeaderStatement": {"DestinationPorts": ["22"], "Protocols": ["tcp"]}}}]

    def findings(match, exclude=()):
        made = ec2.create_network_insights_access_scope(MatchPaths=match, ExcludePaths=list(exclude))
        scope = made["NetworkInsightsAccessScope"]["NetworkInsightsAccessScopeId"]
        assert made["NetworkInsightsAccessScopeContent"]["MatchPaths"] == match
        started = ec2.start_network_insights_access_scope_analysis(NetworkInsightsAccessScopeId=scope)
        analysis = started["NetworkInsightsAccessScopeAnalysis"]
        assert analysis["Status"] == "running"
        (done,) = ec2.describe_network_insights_access_scope_analyses(
            NetworkInsightsAccessScopeAnalysisIds=[analysis["NetworkInsightsAccessScopeAnalysisId"]])["NetworkInsightsAccessScopeAnalyses"]
        assert done["Status"] == "succeeded" and done["AnalyzedEniCount"] >= 3
        got = ec2.get_network_insights_access_scope_analysis_findings(
            NetworkInsightsAccessScopeAnalysisId=analysis["NetworkInsightsAccessScopeAnalysisId"])
        return done["FindingsFound"], got["AnalysisFindings"]

    # Every path from the internet to any interface on tcp/22: the bastion, only.
    found, items = findings(internet_ssh)
    assert found == "true" and len(items) == 1
    components = items[0]["FindingComponents"]
    assert components[0]["Component"]["Id"] == layout["igw"]
    assert components[-1]["AttachedTo"]["Id"] == layout["bastion"]
    # Excluding the bastion leaves nothing.
    found, items = findings(internet_ssh, [{"Destination": {"ResourceStatement": {"Resources": [layout["bastion"]]}}}])
    assert (found, items) == ("false", [])
    # The web tier reaches the internet, but only through the NAT gateway.
    web_out = [{"Source": {"ResourceStatement": {"Resources": [layout["web"]]}},
                "Destination": {"ResourceStatement": {"ResourceTypes": ["AWS::EC2::InternetGateway"]}}}]
    found, items = findings(web_out)
    assert found == "true" and layout["nat"] in [c["Component"]["Id"] for c in items[0]["FindingComponents"]]
    found, _ = findings(web_out, [{"ThroughResources": [{"ResourceStatement": {"ResourceTypes": ["AWS::EC2::NatGateway"]}}]}])
    assert found == "false"
    with expect_error("InvalidNetworkInsightsAccessScopeId.NotFound", 400):
        ec2.start_network_insights_access_scope_analysis(NetworkInsightsAccessScopeId="nis-0123456789abcdef0")


def test_analyses_with_component_filters(layout):
    ec2 = layout["ec2"]
    nat_arn = f"arn:aws:ec2:us-east-1:000000000000:natgateway/{layout['nat']}"
    p = ec2.create_network_insights_path(Source=layout["web"], Destination=layout["igw"], Protocol="tcp",
                                         DestinationPort=443)["NetworkInsightsPath"]["NetworkInsightsPathId"]

    def run(**filters):
        started = ec2.start_network_insights_analysis(NetworkInsightsPathId=p, **filters)["NetworkInsightsAnalysis"]
        (a,) = ec2.describe_network_insights_analyses(
            NetworkInsightsAnalysisIds=[started["NetworkInsightsAnalysisId"]])["NetworkInsightsAnalyses"]
        return a

    through = run(FilterInArns=[nat_arn])
    assert through["NetworkPathFound"] is True and through["FilterInArns"] == [nat_arn]
    avoiding = run(FilterOutArns=[nat_arn])
    assert avoiding["NetworkPathFound"] is False
    (e,) = avoiding["Explanations"]
    assert e["ExplanationCode"] == "COMPONENT_FILTER_RESTRICTION_REMOVED_COMPONENT"
    assert e["Component"]["Id"] == layout["nat"]
    elsewhere = run(FilterInArns=["arn:aws:ec2:us-east-1:000000000000:vpc-peering-connection/pcx-0123456789abcdef0"])
    assert elsewhere["NetworkPathFound"] is False
    assert elsewhere["Explanations"][0]["ExplanationCode"] == "COMPONENT_FILTER_RESTRICTION"
