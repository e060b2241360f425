"""`kumori reach` on the classic layout a learner builds: it reads the state a running
kumori keeps and answers who can reach whom, hop by hop, and what blocks the rest."""
import subprocess

import pytest
from support import client, kumori_bin


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
        "state": tmp_path / "state",
        "bastion": run(public, bastion_sg, True),
        "web": run(private, web_sg, False),
        "db": run(private, db_sg, False),
        "nat": nat,
        "igw": igw,
        "web_sg": web_sg,
        "db_sg": db_sg,
    }


def reach(layout, frm, to, port):
    return subprocess.run(
        [str(kumori_bin()), "reach", "--state-dir", str(layout["state"]), "--from", frm, "--to", to, "--port", str(port)],
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
    hop = reach(layout, layout["bastion"], layout["web"], 22)
    assert hop.returncode == 0, hop.stdout
    out = reach(layout, layout["web"], "93.184.216.34", 443)
    assert out.returncode == 0 and layout["nat"] in out.stdout, out.stdout
    assert reach(layout, layout["web"], layout["db"], 3306).returncode == 0
    denied = reach(layout, layout["bastion"], layout["db"], 3306)
    assert denied.returncode == 1 and layout["db_sg"] in denied.stdout


def test_unknown_names_are_refused(layout):
    bad = reach(layout, "i-0123456789abcdef0", layout["web"], 22)
    assert bad.returncode == 1 and "InvalidInstanceID.NotFound" in bad.stderr
