"""Reachability on the classic layout a learner builds: `kumori reach` and `kumori audit`, which
ask a running kumori over HTTP (`POST /_kumori/reach`, `/_kumori/audit`) and never read its
files, and AWS's Reachability Analyzer API through boto3 and the aws CLI."""
import json
import os
import subprocess

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from support import BACKEND, client, expect_error, free_port, http, kumori_bin


@pytest.fixture
def layout(spawn):
    """VPC, public and private subnets, IGW, NAT gateway, a bastion that alone takes SSH from
    "my IP" (203.0.113.5), a private web server that takes SSH from the bastion, a database
    that takes MySQL from the web tier. The server keeps nothing on disk (--ephemeral), on a
    port of its own."""
    srv = spawn()
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
        "server": srv,
        "ec2": ec2,
        "endpoint": srv.endpoint,
        "bastion": run(public, bastion_sg, True),
        "web": run(private, web_sg, False),
        "db": run(private, db_sg, False),
        "nat": nat,
        "igw": igw,
        "web_sg": web_sg,
        "db_sg": db_sg,
    }


def kumori(endpoint, *args, env=None):
    """`kumori ARGS --endpoint-url ENDPOINT` (no flag when `endpoint` is None), with none of the
    environment's AWS region or endpoint settings unless `env` gives them."""
    unset = ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "KUMORI_STATE_DIR", "KUMORI_DEFAULT_REGION")
    base = {k: v for k, v in os.environ.items() if k not in unset}
    cmd = [str(kumori_bin()), *args, *(["--endpoint-url", endpoint] if endpoint else [])]
    return subprocess.run(cmd, env={**base, **(env or {})}, capture_output=True, text=True, timeout=60)


def reach(layout, frm, to, port=None, *extra, env=None):
    return kumori(layout["endpoint"], "reach", "--from", frm, "--to", to,
                  *(["--port", str(port)] if port is not None else []), *extra, env=env)


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
    assert bad.stdout == ""
    odd = reach(layout, layout["web"], layout["db"], 3306, "--protocol", "sctp")
    assert odd.returncode == 1 and "InvalidParameterValue" in odd.stderr and "sctp" in odd.stderr, odd.stderr


def test_the_cli_asks_a_server_that_keeps_nothing_on_disk(layout, tmp_path):
    # The layout's server keeps no database file the CLI could read (--ephemeral, or a
    # PostgreSQL schema the CLI is not told of), and the CLI is given a home and a state
    # directory with none in them either.
    assert ("state in memory" if BACKEND == "sqlite" else "state in PostgreSQL") in layout["server"].output()
    empty = {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data"), "KUMORI_STATE_DIR": str(tmp_path / "state")}
    ok = reach(layout, "203.0.113.5", layout["bastion"], 22, env=empty)
    assert ok.returncode == 0 and ok.stdout.startswith("REACHABLE"), ok.stdout + ok.stderr
    audit = kumori(layout["endpoint"], "audit", env=empty)
    assert audit.returncode == 0 and audit.stdout == "no findings in us-east-1\n", audit.stdout + audit.stderr
    assert not (tmp_path / "state").exists() and not (tmp_path / "data").exists()


@pytest.fixture
def in_ireland(layout):
    """Two interfaces in a VPC of eu-west-1, behind its default group: each reaches the other."""
    ec2 = client("ec2", layout["endpoint"], "eu-west-1")
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.1.1.0/24", AvailabilityZone="eu-west-1a")["Subnet"]["SubnetId"]
    eni = lambda: ec2.create_network_interface(SubnetId=subnet)["NetworkInterface"]["NetworkInterfaceId"]  # noqa: E731
    return eni(), eni()


def test_the_region_comes_from_aws_region(layout, in_ireland):
    a, b = in_ireland
    for var in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        ok = reach(layout, a, b, 22, env={var: "eu-west-1"})
        assert ok.returncode == 0 and ok.stdout.startswith("REACHABLE") and b in ok.stdout, (var, ok.stdout + ok.stderr)
    # AWS_REGION wins over AWS_DEFAULT_REGION, as in every AWS tool.
    both = reach(layout, a, b, 22, env={"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-east-1"})
    assert both.returncode == 0, both.stdout + both.stderr
    # With neither, the server's default region (us-east-1) is asked, where they are not.
    elsewhere = reach(layout, a, b, 22)
    assert elsewhere.returncode == 1 and f"{a} does not exist" in elsewhere.stdout, elsewhere.stdout + elsewhere.stderr
    assert kumori(layout["endpoint"], "audit", env={"AWS_REGION": "ap-southeast-2"}).stdout == "no findings in ap-southeast-2\n"


def test_the_region_flag_wins(layout, in_ireland):
    a, b = in_ireland
    ok = reach(layout, a, b, 22, "--region", "eu-west-1", env={"AWS_REGION": "us-east-1"})
    assert ok.returncode == 0 and ok.stdout.startswith("REACHABLE"), ok.stdout + ok.stderr
    # Every port at once, in the region named.
    ports = reach(layout, a, b, None, "--region", "eu-west-1")
    assert ports.returncode == 0 and "  open      0-65535" in ports.stdout.splitlines(), ports.stdout + ports.stderr
    no = reach(layout, a, b, 22, "--region", "us-east-1", env={"AWS_REGION": "eu-west-1"})
    assert no.returncode == 1 and f"{a} does not exist" in no.stdout, no.stdout + no.stderr
    audit = kumori(layout["endpoint"], "audit", "--region", "ap-southeast-2", env={"AWS_REGION": "eu-west-1"})
    assert audit.returncode == 0 and audit.stdout == "no findings in ap-southeast-2\n", audit.stdout + audit.stderr


def test_the_endpoint_comes_from_aws_endpoint_url(layout):
    ok = kumori(None, "reach", "--from", "203.0.113.5", "--to", layout["bastion"], "--port", "22",
                env={"AWS_ENDPOINT_URL": layout["endpoint"]})
    assert ok.returncode == 0 and ok.stdout.startswith("REACHABLE"), ok.stdout + ok.stderr


def test_no_server_is_a_clear_failure_of_its_own():
    nowhere = f"http://127.0.0.1:{free_port()}"
    for args in (["reach", "--from", "203.0.113.5", "--to", "10.0.0.5", "--port", "22"], ["audit"]):
        out = kumori(nowhere, *args)
        assert out.returncode == 2 and nowhere in out.stderr and out.stdout == "", out.stderr
    bad = kumori("https://127.0.0.1:4566", "audit")
    assert bad.returncode == 2 and "http://" in bad.stderr


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
    run = lambda: kumori(layout["endpoint"], "audit")  # noqa: E731
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


# --- who may ask ------------------------------------------------------------------------------

def test_the_endpoints_are_guarded_as_kumoris_own(spawn):
    ep = spawn().endpoint
    body = json.dumps({"from": "10.0.0.5", "to": "10.0.0.6"}).encode()
    for path in ("/_kumori/reach", "/_kumori/audit"):
        # A page of another origin, or a name that is not this machine's (DNS rebinding): refused.
        status, _, _ = http(ep, "POST", path, body=body, headers={"Origin": "http://evil.example"})
        assert status == 403
        status, _, _ = http(ep, "POST", path, body=body, headers={"Host": "evil.example"})
        assert status == 403
        status, _, _ = http(ep, "GET", path)
        assert status == 405
    # A question kumori does not know is refused with AWS's words, not guessed at.
    status, answer = ask(ep, "/_kumori/audit", {"regoin": "eu-west-1"})
    assert status == 400 and answer["code"] == "InvalidParameterValue" and "regoin" in answer["error"]
    status, answer = ask(ep, "/_kumori/reach", {"from": "10.0.0.5"})
    assert status == 400 and answer["code"] == "MissingParameter"
    status, _, raw = http(ep, "POST", "/_kumori/reach", body=b"{not json")
    assert status == 400 and json.loads(raw)["code"] == "MalformedInput"


ROOT_KEY, ROOT_SECRET = "AKIAKUMORIREACHROOT01", "kumori-root-secret-for-the-reach-tests-0"
ROOT_ENV = {"KUMORI_ROOT_ACCESS_KEY_ID": ROOT_KEY, "KUMORI_ROOT_SECRET_ACCESS_KEY": ROOT_SECRET}


def keys(key, secret, token=None):
    return {"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret, **({"AWS_SESSION_TOKEN": token} if token else {})}


def ask(endpoint, path, question, signer=None):
    """POSTs a question to one of kumori's endpoints, SigV4-signed as `signer` (key, secret)
    when given; returns (status, JSON answer)."""
    body = json.dumps(question).encode()
    headers = {"Content-Type": "application/json"}
    if signer:
        req = AWSRequest(method="POST", url=endpoint + path, data=body, headers=headers)
        SigV4Auth(Credentials(*signer), "ec2", "us-east-1").add_auth(req)
        headers = dict(req.headers.items())
    status, _, answer = http(endpoint, "POST", path, body=body, headers=headers)
    return status, json.loads(answer)


def two_interfaces(endpoint):
    """Two interfaces behind their VPC's default group, made by the root: each reaches the other."""
    ec2 = client("ec2", endpoint, key=ROOT_KEY, secret=ROOT_SECRET)
    vpc = ec2.create_vpc(CidrBlock="10.2.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.2.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    eni = lambda: ec2.create_network_interface(SubnetId=subnet)["NetworkInterface"]["NetworkInterfaceId"]  # noqa: E731
    return eni(), eni()


def test_under_verify_only_a_signed_question_is_answered(spawn):
    ep = spawn(extra_args=["--auth", "verify"], env=ROOT_ENV).endpoint
    a, b = two_interfaces(ep)
    question = {"from": a, "to": b, "port": 22}
    # Unsigned, signed with the wrong secret, signed with a key IAM does not know: refused.
    status, answer = ask(ep, "/_kumori/reach", question)
    assert status == 403 and "signed with SigV4" in answer["error"], answer
    status, answer = ask(ep, "/_kumori/reach", question, (ROOT_KEY, "not-the-secret"))
    assert status == 403 and "SignatureDoesNotMatch" in answer["error"], answer
    status, answer = ask(ep, "/_kumori/audit", {}, ("AKIAKUMORINOSUCHKEY1", ROOT_SECRET))
    assert status == 403 and "text" not in answer, answer
    # Signed by a key IAM knows: answered.
    status, answer = ask(ep, "/_kumori/reach", question, (ROOT_KEY, ROOT_SECRET))
    assert status == 200 and answer["reachable"] is True and answer["text"].startswith("REACHABLE"), answer
    # The CLI signs with the environment's keys, as every AWS tool does.
    ok = kumori(ep, "reach", "--from", a, "--to", b, "--port", "22", env=keys(ROOT_KEY, ROOT_SECRET))
    assert ok.returncode == 0 and ok.stdout == answer["text"], ok.stdout + ok.stderr
    audit = kumori(ep, "audit", env=keys(ROOT_KEY, ROOT_SECRET))
    assert audit.returncode == 0 and audit.stdout == "no findings in us-east-1\n", audit.stdout + audit.stderr
    wrong = kumori(ep, "reach", "--from", a, "--to", b, "--port", "22", env=keys(ROOT_KEY, "not-the-secret"))
    assert wrong.returncode == 1 and "SignatureDoesNotMatch" in wrong.stderr and wrong.stdout == "", wrong.stderr
    unknown = kumori(ep, "audit")  # the suite's `test` key, which IAM does not know
    assert unknown.returncode == 1 and unknown.stdout == "", unknown.stderr
    # Temporary credentials sign with their session token.
    creds = client("sts", ep, key=ROOT_KEY, secret=ROOT_SECRET).get_session_token()["Credentials"]
    temporary = kumori(ep, "audit", env=keys(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]))
    assert temporary.returncode == 0, temporary.stderr
    no_token = kumori(ep, "audit", env=keys(creds["AccessKeyId"], creds["SecretAccessKey"]))
    assert no_token.returncode == 1, no_token.stderr


def test_under_enforce_the_asker_needs_ec2_reads(spawn):
    ep = spawn(extra_args=["--auth", "enforce"], env=ROOT_ENV).endpoint
    a, b = two_interfaces(ep)
    iam = client("iam", ep, key=ROOT_KEY, secret=ROOT_SECRET)
    made = {}
    for name, policy in (("reader", "AmazonEC2ReadOnlyAccess"), ("nobody", None)):
        iam.create_user(UserName=name)
        if policy:
            iam.attach_user_policy(UserName=name, PolicyArn=f"arn:aws:iam::aws:policy/{policy}")
        k = iam.create_access_key(UserName=name)["AccessKey"]
        made[name] = (k["AccessKeyId"], k["SecretAccessKey"])
    ok = kumori(ep, "reach", "--from", a, "--to", b, "--port", "22", env=keys(*made["reader"]))
    assert ok.returncode == 0 and ok.stdout.startswith("REACHABLE"), ok.stdout + ok.stderr
    assert kumori(ep, "audit", env=keys(*made["reader"])).returncode == 0
    denied = kumori(ep, "reach", "--from", a, "--to", b, "--port", "22", env=keys(*made["nobody"]))
    assert denied.returncode == 1 and "UnauthorizedOperation" in denied.stderr and denied.stdout == "", denied.stderr
    assert "ec2:Describe" in denied.stderr
    status, answer = ask(ep, "/_kumori/audit", {}, made["nobody"])
    assert status == 403 and answer["code"] == "UnauthorizedOperation", answer
    # A deny on one of the reads is enough to refuse.
    iam.put_user_policy(UserName="reader", PolicyName="no-acls", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Action": "ec2:DescribeNetworkAcls", "Resource": "*"}]}))
    status, answer = ask(ep, "/_kumori/reach", {"from": a, "to": b}, made["reader"])
    assert status == 403 and "ec2:DescribeNetworkAcls" in answer["error"], answer


def test_a_gateway_endpoint_is_a_path_to_its_service(layout):
    """The private web server reaches S3 through a gateway endpoint, not through the NAT
    gateway; without the endpoint the same address goes out through the NAT."""
    ec2 = layout["ec2"]
    [web] = ec2.describe_instances(InstanceIds=[layout["web"]])["Reservations"][0]["Instances"]
    vpc, subnet = web["VpcId"], web["SubnetId"]
    [table] = ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": [subnet]}])["RouteTables"]
    [s3] = ec2.describe_prefix_lists(Filters=[{"Name": "prefix-list-name", "Values": ["com.amazonaws.us-east-1.s3"]}])["PrefixLists"]
    service_ip = s3["Cidrs"][0].split("/")[0].rsplit(".", 1)[0] + ".10"
    via_nat = reach(layout, layout["web"], service_ip, 443)
    assert via_nat.returncode == 0 and layout["nat"] in via_nat.stdout, via_nat.stdout + via_nat.stderr
    ep = ec2.create_vpc_endpoint(VpcId=vpc, ServiceName="com.amazonaws.us-east-1.s3",
                                 RouteTableIds=[table["RouteTableId"]])["VpcEndpoint"]["VpcEndpointId"]
    via_endpoint = reach(layout, layout["web"], service_ip, 443)
    assert via_endpoint.returncode == 0, via_endpoint.stdout + via_endpoint.stderr
    assert ep in via_endpoint.stdout and layout["nat"] not in via_endpoint.stdout, via_endpoint.stdout
    ec2.delete_vpc_endpoints(VpcEndpointIds=[ep])
