"""Terraform with the real AWS provider against kumori: apply, then `plan -detailed-exitcode`
reports no changes, then destroy leaves nothing behind.

Needs the `terraform` binary and a local mirror of hashicorp/aws (these machines carry one
under /opt/tf-plugins); where either is missing the tests are skipped and say why. Set
KUMORI_TF_MIRROR to point at another mirror directory.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from support import client

PROVIDER_VERSION = "5.100.0"
MIRROR_CANDIDATES = [
    os.environ.get("KUMORI_TF_MIRROR", ""),
    "/opt/tf-plugins",
    str(Path.home() / ".terraform.d" / "plugins"),
    "/usr/local/share/terraform/plugins",
    "/usr/share/terraform/plugins",
]


def find_mirror() -> str | None:
    for d in filter(None, MIRROR_CANDIDATES):
        if (Path(d) / "registry.terraform.io" / "hashicorp" / "aws" / PROVIDER_VERSION).is_dir():
            return d
    return None


TERRAFORM = shutil.which("terraform")
MIRROR = find_mirror()
pytestmark = [
    pytest.mark.skipif(TERRAFORM is None, reason="terraform is not installed on this machine"),
    pytest.mark.skipif(
        MIRROR is None,
        reason=f"no local mirror of hashicorp/aws {PROVIDER_VERSION} (looked in {', '.join(filter(None, MIRROR_CANDIDATES))})",
    ),
]

PROVIDER = """
terraform {
  required_providers {
    aws = { source = "hashicorp/aws", version = "%(version)s" }
  }
}
provider "aws" {
  region                      = "us-east-1"
  access_key                  = "%(key)s"
  secret_key                  = "%(secret)s"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  endpoints {
    ec2 = "%(endpoint)s"
    iam = "%(endpoint)s"
    sts = "%(endpoint)s"
  }
}
"""


class Terraform:
    def __init__(self, workdir: Path, endpoint: str, key: str = "test", secret: str = "test"):
        self.dir = workdir
        self.endpoint = endpoint
        self.key, self.secret = key, secret
        (workdir / "cli.tfrc").write_text(
            'provider_installation {\n'
            f'  filesystem_mirror {{\n    path = "{MIRROR}"\n    include = ["registry.terraform.io/hashicorp/aws"]\n  }}\n'
            '  direct {\n    exclude = ["registry.terraform.io/hashicorp/aws"]\n  }\n}\n'
        )
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(workdir),
            "TF_CLI_CONFIG_FILE": str(workdir / "cli.tfrc"),
            "TF_IN_AUTOMATION": "1",
            "CHECKPOINT_DISABLE": "1",
            "NO_PROXY": "127.0.0.1,localhost",
        }

    def write(self, config: str) -> None:
        provider = PROVIDER % {"version": PROVIDER_VERSION, "endpoint": self.endpoint,
                               "key": self.key, "secret": self.secret}
        (self.dir / "main.tf").write_text(provider + config)

    def run(self, *args: str, ok_codes=(0,)) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [TERRAFORM, *args, *([] if args[0] == "output" else ["-input=false"]), "-no-color"],
            cwd=self.dir, env=self.env, capture_output=True, text=True, timeout=600,
        )
        assert done.returncode in ok_codes, f"terraform {args[0]} exited {done.returncode}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        return done

    def cycle(self, config: str, ec2) -> dict:
        """apply; plan must be empty; returns the outputs. The caller destroys."""
        self.write(config)
        self.run("init")
        self.run("apply", "-auto-approve")
        plan = self.run("plan", "-detailed-exitcode", ok_codes=(0, 2))
        assert plan.returncode == 0, f"plan after apply wants changes:\n{plan.stdout[-6000:]}"
        out = json.loads(self.run("output", "-json").stdout)
        return {k: v["value"] for k, v in out.items()}

    def destroy(self) -> None:
        self.run("destroy", "-auto-approve")


def inventory(ec2) -> dict:
    """Every networking resource id in the region, by kind."""
    return {
        "vpcs": {v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]},
        "subnets": {s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]},
        "igws": {g["InternetGatewayId"] for g in ec2.describe_internet_gateways()["InternetGateways"]},
        "route_tables": {t["RouteTableId"] for t in ec2.describe_route_tables()["RouteTables"]},
        "security_groups": {g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]},
        "network_acls": {a["NetworkAclId"] for a in ec2.describe_network_acls()["NetworkAcls"]},
        "addresses": {a["AllocationId"] for a in ec2.describe_addresses()["Addresses"]},
        "interfaces": {e["NetworkInterfaceId"] for e in ec2.describe_network_interfaces()["NetworkInterfaces"]},
        "prefix_lists": {p["PrefixListId"] for p in ec2.describe_managed_prefix_lists()["PrefixLists"]},
        "egress_only_igws": {
            g["EgressOnlyInternetGatewayId"]
            for g in ec2.describe_egress_only_internet_gateways()["EgressOnlyInternetGateways"]
        },
    }


@pytest.fixture
def tf(tmp_path, endpoint):
    return Terraform(tmp_path, endpoint)


CLASSIC = """
resource "aws_vpc" "main" {
  cidr_block           = "10.0.0.0/16"
  enable_dns_hostnames = true
  tags                 = { Name = "classic" }
}
resource "aws_subnet" "public" {
  count                   = 2
  vpc_id                  = aws_vpc.main.id
  cidr_block              = cidrsubnet(aws_vpc.main.cidr_block, 8, count.index)
  availability_zone       = ["us-east-1a", "us-east-1b"][count.index]
  map_public_ip_on_launch = true
  tags                    = { Name = "public-${count.index}" }
}
resource "aws_subnet" "private" {
  count             = 2
  vpc_id            = aws_vpc.main.id
  cidr_block        = cidrsubnet(aws_vpc.main.cidr_block, 8, 10 + count.index)
  availability_zone = ["us-east-1a", "us-east-1b"][count.index]
}
resource "aws_internet_gateway" "gw" {
  vpc_id = aws_vpc.main.id
}
resource "aws_eip" "nat" {
  domain = "vpc"
  tags   = { Name = "nat" }
}
resource "aws_route_table" "public" {
  vpc_id = aws_vpc.main.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.gw.id
  }
}
resource "aws_route_table_association" "public" {
  count          = 2
  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public.id
}
resource "aws_route_table" "private" {
  vpc_id = aws_vpc.main.id
}
resource "aws_nat_gateway" "nat" {
  allocation_id = aws_eip.nat.id
  subnet_id     = aws_subnet.public[0].id
  tags          = { Name = "nat" }
  depends_on    = [aws_internet_gateway.gw]
}
resource "aws_route" "private_out" {
  route_table_id         = aws_route_table.private.id
  destination_cidr_block = "0.0.0.0/0"
  nat_gateway_id         = aws_nat_gateway.nat.id
}
resource "aws_route_table_association" "private" {
  count          = 2
  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private.id
}
resource "aws_security_group" "bastion" {
  name        = "bastion"
  description = "SSH from my IP"
  vpc_id      = aws_vpc.main.id
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["203.0.113.10/32"]
  }
  egress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
resource "aws_security_group" "web" {
  name   = "web"
  vpc_id = aws_vpc.main.id
  ingress {
    from_port       = 22
    to_port         = 22
    protocol        = "tcp"
    security_groups = [aws_security_group.bastion.id]
  }
  ingress {
    from_port   = 80
    to_port     = 80
    protocol    = "tcp"
    cidr_blocks = ["10.0.0.0/16"]
  }
}
resource "aws_security_group" "db" {
  name   = "db"
  vpc_id = aws_vpc.main.id
  tags   = { Tier = "data" }
}
resource "aws_vpc_security_group_ingress_rule" "db_from_web" {
  security_group_id            = aws_security_group.db.id
  referenced_security_group_id = aws_security_group.web.id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  description                  = "postgres from web"
}
resource "aws_vpc_security_group_egress_rule" "db_out" {
  security_group_id = aws_security_group.db.id
  cidr_ipv4         = "10.0.0.0/16"
  ip_protocol       = "-1"
}
resource "aws_network_acl" "private" {
  vpc_id     = aws_vpc.main.id
  subnet_ids = aws_subnet.private[*].id
  ingress {
    protocol   = "tcp"
    rule_no    = 100
    action     = "allow"
    cidr_block = "10.0.0.0/16"
    from_port  = 0
    to_port    = 65535
  }
  egress {
    protocol   = "-1"
    rule_no    = 100
    action     = "allow"
    cidr_block = "0.0.0.0/0"
    from_port  = 0
    to_port    = 0
  }
}
resource "aws_network_acl" "extra" {
  vpc_id = aws_vpc.main.id
}
resource "aws_network_acl_rule" "deny_telnet" {
  network_acl_id = aws_network_acl.extra.id
  rule_number    = 200
  egress         = false
  protocol       = "tcp"
  rule_action    = "deny"
  cidr_block     = "0.0.0.0/0"
  from_port      = 23
  to_port        = 23
}
resource "aws_network_interface" "bastion" {
  subnet_id       = aws_subnet.public[0].id
  private_ips     = ["10.0.0.10"]
  security_groups = [aws_security_group.bastion.id]
  tags            = { Name = "bastion" }
}
resource "aws_eip" "bastion" {
  domain                    = "vpc"
  network_interface         = aws_network_interface.bastion.id
  associate_with_private_ip = "10.0.0.10"
  depends_on                = [aws_internet_gateway.gw]
}
resource "aws_route" "via_bastion" {
  route_table_id         = aws_route_table.private.id
  destination_cidr_block = "192.168.0.0/16"
  network_interface_id   = aws_network_interface.bastion.id
}
output "vpc_id" { value = aws_vpc.main.id }
output "bastion_eni" { value = aws_network_interface.bastion.id }
output "bastion_ip" { value = aws_eip.bastion.public_ip }
output "public_subnets" { value = aws_subnet.public[*].id }
output "private_subnets" { value = aws_subnet.private[*].id }
output "db_sg" { value = aws_security_group.db.id }
output "web_sg" { value = aws_security_group.web.id }
output "private_acl" { value = aws_network_acl.private.id }
output "eip" { value = aws_eip.nat.public_ip }
output "nat" { value = aws_nat_gateway.nat.id }
"""


def test_classic_layout_applies_plans_clean_and_destroys(tf, ec2):
    before = inventory(ec2)
    out = tf.cycle(CLASSIC, ec2)

    (vpc,) = ec2.describe_vpcs(VpcIds=[out["vpc_id"]])["Vpcs"]
    assert {"Key": "Name", "Value": "classic"} in vpc["Tags"]
    public = ec2.describe_subnets(SubnetIds=out["public_subnets"])["Subnets"]
    assert sorted(s["CidrBlock"] for s in public) == ["10.0.0.0/24", "10.0.1.0/24"]
    assert all(s["MapPublicIpOnLaunch"] for s in public)
    # The database group lets in Postgres from the web group only.
    (db,) = ec2.describe_security_groups(GroupIds=[out["db_sg"]])["SecurityGroups"]
    assert [(p["FromPort"], [g["GroupId"] for g in p["UserIdGroupPairs"]]) for p in db["IpPermissions"]] == [(5432, [out["web_sg"]])]
    # The private subnets moved to their own ACL.
    acl = ec2.describe_network_acls(NetworkAclIds=[out["private_acl"]])["NetworkAcls"][0]
    assert sorted(a["SubnetId"] for a in acl["Associations"]) == sorted(out["private_subnets"])
    assert out["eip"].startswith("198.1")
    (nat,) = ec2.describe_nat_gateways(NatGatewayIds=[out["nat"]])["NatGateways"]
    assert nat["State"] == "available" and nat["NatGatewayAddresses"][0]["PublicIp"] == out["eip"]
    (eni,) = ec2.describe_network_interfaces(NetworkInterfaceIds=[out["bastion_eni"]])["NetworkInterfaces"]
    assert eni["PrivateIpAddress"] == "10.0.0.10" and eni["Association"]["PublicIp"] == out["bastion_ip"]

    tf.destroy()
    assert inventory(ec2) == before


DEFAULTS = """
resource "aws_default_vpc" "default" {
  tags = { Name = "Default VPC" }
}
resource "aws_default_security_group" "default" {
  vpc_id = aws_default_vpc.default.id
  ingress {
    protocol  = -1
    self      = true
    from_port = 0
    to_port   = 0
  }
  egress {
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
resource "aws_vpc" "app" {
  cidr_block = "10.20.0.0/16"
}
resource "aws_internet_gateway" "app" {
  vpc_id = aws_vpc.app.id
}
resource "aws_default_route_table" "app" {
  default_route_table_id = aws_vpc.app.default_route_table_id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.app.id
  }
  tags = { Name = "app-main" }
}
resource "aws_vpc" "peer" {
  cidr_block = "10.30.0.0/16"
}
resource "aws_vpc_peering_connection" "app_peer" {
  vpc_id      = aws_vpc.app.id
  peer_vpc_id = aws_vpc.peer.id
  auto_accept = true
  tags        = { Name = "app-peer" }
}
resource "aws_egress_only_internet_gateway" "app" {
  vpc_id = aws_vpc.app.id
  tags   = { Name = "app-v6" }
}
resource "aws_route_table" "v6_inline" {
  vpc_id = aws_vpc.app.id
  route {
    ipv6_cidr_block        = "::/0"
    egress_only_gateway_id = aws_egress_only_internet_gateway.app.id
  }
}
resource "aws_route_table" "v6" {
  vpc_id = aws_vpc.app.id
}
resource "aws_route" "v6_out" {
  route_table_id              = aws_route_table.v6.id
  destination_ipv6_cidr_block = "::/0"
  egress_only_gateway_id      = aws_egress_only_internet_gateway.app.id
}
resource "aws_ec2_managed_prefix_list" "office" {
  name           = "office"
  address_family = "IPv4"
  max_entries    = 5
  entry {
    cidr        = "203.0.113.0/24"
    description = "Tokyo"
  }
  entry {
    cidr        = "198.51.100.0/24"
    description = "Osaka"
  }
  tags = { Name = "office" }
}
resource "aws_security_group" "admin" {
  name   = "admin"
  vpc_id = aws_vpc.app.id
}
resource "aws_vpc_security_group_ingress_rule" "admin_ssh" {
  security_group_id = aws_security_group.admin.id
  prefix_list_id    = aws_ec2_managed_prefix_list.office.id
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
}
output "default_vpc" { value = aws_default_vpc.default.id }
output "office_list" { value = aws_ec2_managed_prefix_list.office.id }
output "admin_sg" { value = aws_security_group.admin.id }
output "eigw" { value = aws_egress_only_internet_gateway.app.id }
output "v6_tables" { value = [aws_route_table.v6_inline.id, aws_route_table.v6.id] }
output "peering" { value = aws_vpc_peering_connection.app_peer.id }
output "default_sg" { value = aws_default_security_group.default.id }
output "app_main" { value = aws_default_route_table.app.id }
"""


def test_default_resources_are_adopted_not_created(tf, ec2):
    (default,) = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    before = inventory(ec2)
    out = tf.cycle(DEFAULTS, ec2)
    assert out["default_vpc"] == default["VpcId"]
    (sg,) = ec2.describe_security_groups(GroupIds=[out["default_sg"]])["SecurityGroups"]
    assert sg["GroupName"] == "default" and sg["VpcId"] == default["VpcId"]
    assert [(p["IpProtocol"], p.get("FromPort")) for p in sg["IpPermissionsEgress"]] == [("tcp", 443)]
    (main,) = ec2.describe_route_tables(RouteTableIds=[out["app_main"]])["RouteTables"]
    assert any(r.get("GatewayId", "").startswith("igw-") for r in main["Routes"])
    (pcx,) = ec2.describe_vpc_peering_connections(VpcPeeringConnectionIds=[out["peering"]])["VpcPeeringConnections"]
    assert pcx["Status"]["Code"] == "active"
    entries = ec2.get_managed_prefix_list_entries(PrefixListId=out["office_list"])["Entries"]
    assert sorted(e["Cidr"] for e in entries) == ["198.51.100.0/24", "203.0.113.0/24"]
    (admin,) = ec2.describe_security_groups(GroupIds=[out["admin_sg"]])["SecurityGroups"]
    assert [p["PrefixListIds"][0]["PrefixListId"] for p in admin["IpPermissions"]] == [out["office_list"]]
    for table in ec2.describe_route_tables(RouteTableIds=out["v6_tables"])["RouteTables"]:
        assert {"DestinationIpv6CidrBlock": "::/0", "EgressOnlyInternetGatewayId": out["eigw"],
                "Origin": "CreateRoute", "State": "active"} in table["Routes"]

    tf.destroy()
    # The default VPC and its group stay (Terraform only forgets them); the rest is gone.
    assert inventory(ec2) == before



KEYS = """
resource "aws_key_pair" "deployer" {
  key_name   = "deployer"
  public_key = "%(public_key)s"
  tags       = { Team = "ops" }
}
data "aws_ami" "al2023" {
  most_recent = true
  owners      = ["amazon"]
  filter {
    name   = "name"
    values = ["al2023-ami-2023.*-x86_64"]
  }
}
output "key_id" { value = aws_key_pair.deployer.key_pair_id }
output "ami" { value = data.aws_ami.al2023.name }
output "fingerprint" { value = aws_key_pair.deployer.fingerprint }
output "key_type" { value = aws_key_pair.deployer.key_type }
"""


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen to make the key")
def test_key_pair_imports_plans_clean_and_destroys(tf, ec2, tmp_path):
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "deployer@ci", "-f", str(tmp_path / "k")],
        check=True, timeout=60,
    )
    public_key = (tmp_path / "k.pub").read_text().strip()
    out = tf.cycle(KEYS % {"public_key": public_key}, ec2)
    (key,) = ec2.describe_key_pairs(KeyNames=["deployer"])["KeyPairs"]
    assert key["KeyPairId"] == out["key_id"]
    assert key["KeyFingerprint"] == out["fingerprint"]
    assert out["key_type"] == "ed25519"
    assert out["ami"] == "al2023-ami-2023.9.20261110.0-kernel-6.1-x86_64"
    assert {"Key": "Team", "Value": "ops"} in key["Tags"]
    tf.destroy()
    assert ec2.describe_key_pairs()["KeyPairs"] == []


IPV6_AND_ENDPOINT = """
resource "aws_vpc" "main" {
  cidr_block                       = "10.30.0.0/16"
  assign_generated_ipv6_cidr_block = true
  enable_dns_hostnames             = true
  tags                             = { Name = "dual-stack" }
}
resource "aws_subnet" "public" {
  vpc_id                          = aws_vpc.main.id
  cidr_block                      = "10.30.1.0/24"
  ipv6_cidr_block                 = cidrsubnet(aws_vpc.main.ipv6_cidr_block, 8, 1)
  assign_ipv6_address_on_creation = true
  availability_zone               = "us-east-1a"
}
resource "aws_subnet" "private" {
  vpc_id            = aws_vpc.main.id
  cidr_block        = "10.30.2.0/24"
  ipv6_cidr_block   = cidrsubnet(aws_vpc.main.ipv6_cidr_block, 8, 2)
  availability_zone = "us-east-1b"
}
resource "aws_internet_gateway" "gw" {
  vpc_id = aws_vpc.main.id
}
resource "aws_egress_only_internet_gateway" "out" {
  vpc_id = aws_vpc.main.id
}
resource "aws_route_table" "public" {
  vpc_id = aws_vpc.main.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.gw.id
  }
  route {
    ipv6_cidr_block = "::/0"
    gateway_id      = aws_internet_gateway.gw.id
  }
}
resource "aws_route_table" "private" {
  vpc_id = aws_vpc.main.id
  route {
    ipv6_cidr_block        = "::/0"
    egress_only_gateway_id = aws_egress_only_internet_gateway.out.id
  }
}
resource "aws_route_table_association" "public" {
  subnet_id      = aws_subnet.public.id
  route_table_id = aws_route_table.public.id
}
resource "aws_route_table_association" "private" {
  subnet_id      = aws_subnet.private.id
  route_table_id = aws_route_table.private.id
}
resource "aws_vpc_endpoint" "s3" {
  vpc_id          = aws_vpc.main.id
  service_name    = "com.amazonaws.us-east-1.s3"
  route_table_ids = [aws_route_table.private.id]
}
resource "aws_security_group" "web" {
  name   = "web-v6"
  vpc_id = aws_vpc.main.id
  ingress {
    from_port        = 443
    to_port          = 443
    protocol         = "tcp"
    cidr_blocks      = ["0.0.0.0/0"]
    ipv6_cidr_blocks = ["::/0"]
  }
  egress {
    from_port       = 443
    to_port         = 443
    protocol        = "tcp"
    prefix_list_ids = [aws_vpc_endpoint.s3.prefix_list_id]
  }
}
output "vpc" { value = aws_vpc.main.id }
output "vpc_ipv6" { value = aws_vpc.main.ipv6_cidr_block }
output "public_ipv6" { value = aws_subnet.public.ipv6_cidr_block }
output "endpoint" { value = aws_vpc_endpoint.s3.id }
output "prefix_list" { value = aws_vpc_endpoint.s3.prefix_list_id }
output "private_table" { value = aws_route_table.private.id }
"""


def test_ipv6_and_a_gateway_endpoint_apply_plan_clean_and_destroy(tf, ec2):
    import ipaddress

    before = inventory(ec2)
    out = tf.cycle(IPV6_AND_ENDPOINT, ec2)
    vpc_block = ipaddress.ip_network(out["vpc_ipv6"])
    assert vpc_block.prefixlen == 56
    assert ipaddress.ip_network(out["public_ipv6"]).subnet_of(vpc_block)
    [table] = ec2.describe_route_tables(RouteTableIds=[out["private_table"]])["RouteTables"]
    assert any(r.get("DestinationPrefixListId") == out["prefix_list"] and r.get("GatewayId") == out["endpoint"]
               for r in table["Routes"])
    tf.destroy()
    assert inventory(ec2) == before


COMPUTE = """
data "aws_ami" "al2023" {
  most_recent = true
  owners      = ["amazon"]
  filter {
    name   = "name"
    values = ["al2023-ami-2023.*-x86_64"]
  }
}
resource "aws_instance" "web" {
  ami           = data.aws_ami.al2023.id
  instance_type = "t3.micro"
  user_data     = "#!/bin/sh\\necho hello\\n"
  metadata_options {
    http_tokens                 = "required"
    http_put_response_hop_limit = 2
  }
  tags = { Name = "web" }
}
resource "aws_eip" "web" {
  domain   = "vpc"
  instance = aws_instance.web.id
}
resource "aws_ebs_volume" "data" {
  availability_zone = aws_instance.web.availability_zone
  size              = 10
  type              = "gp3"
}
resource "aws_volume_attachment" "data" {
  device_name = "/dev/sdh"
  volume_id   = aws_ebs_volume.data.id
  instance_id = aws_instance.web.id
}
output "instance" { value = aws_instance.web.id }
output "eip" { value = aws_eip.web.public_ip }
output "volume" { value = aws_ebs_volume.data.id }
"""


def test_instance_eip_and_volume_apply_plan_clean_and_destroy(tf, ec2):
    out = tf.cycle(COMPUTE, ec2)
    (r,) = ec2.describe_instances(InstanceIds=[out["instance"]])["Reservations"]
    (i,) = r["Instances"]
    assert i["State"]["Name"] == "running" and i["PublicIpAddress"] == out["eip"]
    assert i["MetadataOptions"]["HttpTokens"] == "required"
    assert "/dev/sdh" in {m["DeviceName"] for m in i["BlockDeviceMappings"]}
    tf.destroy()
    (r,) = ec2.describe_instances(InstanceIds=[out["instance"]])["Reservations"]
    assert r["Instances"][0]["State"]["Name"] == "terminated"
    assert ec2.describe_volumes()["Volumes"] == []
    assert ec2.describe_addresses()["Addresses"] == []


TEMPLATES = """
data "aws_ami" "al2023" {
  most_recent = true
  owners      = ["amazon"]
  filter {
    name   = "name"
    values = ["al2023-ami-2023.*-x86_64"]
  }
}
resource "aws_vpc" "main" {
  cidr_block = "10.20.0.0/16"
}
resource "aws_subnet" "app" {
  vpc_id            = aws_vpc.main.id
  cidr_block        = "10.20.1.0/24"
  availability_zone = "us-east-1a"
}
resource "aws_security_group" "app" {
  name   = "app"
  vpc_id = aws_vpc.main.id
}
resource "aws_launch_template" "app" {
  name                   = "app"
  description            = "app servers"
  image_id               = data.aws_ami.al2023.id
  instance_type          = "t3.micro"
  vpc_security_group_ids = [aws_security_group.app.id]
  user_data              = base64encode("#!/bin/sh\\necho app\\n")
  update_default_version = true
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "enabled"
  }
  block_device_mappings {
    device_name = "/dev/xvda"
    ebs {
      volume_size = 16
      volume_type = "gp3"
    }
  }
  # Volume tags, not instance tags: instance tags from a template would show as drift
  # against the aws_instance's own `tags`, as they do against AWS.
  tag_specifications {
    resource_type = "volume"
    tags          = { Tier = "app" }
  }
  tags = { Team = "platform" }
}
resource "aws_instance" "app" {
  subnet_id = aws_subnet.app.id
  launch_template {
    id      = aws_launch_template.app.id
    version = aws_launch_template.app.latest_version
  }
  tags = { Name = "app-1" }
  # The provider re-hashes its own hash of user data that came from a template and plans a
  # change each time, against AWS too (hashicorp/terraform-provider-aws#30825).
  lifecycle {
    ignore_changes = [user_data]
  }
}
resource "aws_network_interface" "extra" {
  subnet_id       = aws_subnet.app.id
  security_groups = [aws_security_group.app.id]
  attachment {
    instance     = aws_instance.app.id
    device_index = 1
  }
}
resource "aws_ami_from_instance" "golden" {
  name               = "app-golden"
  source_instance_id = aws_instance.app.id
}
output "template" { value = aws_launch_template.app.id }
output "instance" { value = aws_instance.app.id }
output "eni" { value = aws_network_interface.extra.id }
output "ami" { value = aws_ami_from_instance.golden.id }
"""


def test_launch_template_instance_interface_and_image(tf, ec2):
    before = inventory(ec2)
    out = tf.cycle(TEMPLATES, ec2)
    (i,) = ec2.describe_instances(InstanceIds=[out["instance"]])["Reservations"][0]["Instances"]
    assert i["InstanceType"] == "t3.micro" and i["MetadataOptions"]["HttpTokens"] == "required"
    tags = {t["Key"]: t["Value"] for t in i["Tags"]}
    assert tags["aws:ec2launchtemplate:id"] == out["template"] and tags["Name"] == "app-1"
    root = ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [out["instance"]]}])["Volumes"][0]
    assert {"Key": "Tier", "Value": "app"} in root["Tags"] and root["Size"] == 16
    assert {n["NetworkInterfaceId"]: n["Attachment"]["DeviceIndex"] for n in i["NetworkInterfaces"]}[out["eni"]] == 1
    (img,) = ec2.describe_images(ImageIds=[out["ami"]])["Images"]
    assert img["SourceInstanceId"] == out["instance"] and img["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"] == 16
    tf.destroy()
    assert ec2.describe_images(Owners=["self"])["Images"] == []
    assert ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"] == []
    assert ec2.describe_launch_templates()["LaunchTemplates"] == []
    assert inventory(ec2) == before


IDENTITY = """
resource "aws_iam_group" "developers" {
  name = "developers"
  path = "/teams/"
}
resource "aws_iam_user" "dev" {
  name = "developer1"
  tags = { Team = "net" }
}
resource "aws_iam_group_membership" "devs" {
  name  = "devs"
  users = [aws_iam_user.dev.name]
  group = aws_iam_group.developers.name
}
resource "aws_iam_group_policy_attachment" "ec2" {
  group      = aws_iam_group.developers.name
  policy_arn = "arn:aws:iam::aws:policy/AmazonEC2FullAccess"
}
resource "aws_iam_policy" "read" {
  name        = "read-vpcs"
  description = "reads VPCs"
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = ["ec2:DescribeVpcs"], Resource = "*" }]
  })
}
resource "aws_iam_role" "web" {
  name = "web"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ec2.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}
resource "aws_iam_role_policy" "inline" {
  name = "inline"
  role = aws_iam_role.web.id
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = "s3:GetObject", Resource = "arn:aws:s3:::assets/*" }]
  })
}
resource "aws_iam_role_policy_attachment" "read" {
  role       = aws_iam_role.web.name
  policy_arn = aws_iam_policy.read.arn
}
resource "aws_iam_instance_profile" "web" {
  name = "web"
  role = aws_iam_role.web.name
}
resource "aws_iam_access_key" "dev" {
  user = aws_iam_user.dev.name
}
output "user_arn" { value = aws_iam_user.dev.arn }
output "policy_arn" { value = aws_iam_policy.read.arn }
output "key_id" { value = aws_iam_access_key.dev.id }
output "profile_arn" { value = aws_iam_instance_profile.web.arn }
"""


def test_identity_resources_apply_plan_clean_and_destroy(tf, ec2, endpoint):
    out = tf.cycle(IDENTITY, ec2)
    iam = client("iam", endpoint)
    assert out["user_arn"] == "arn:aws:iam::000000000000:user/developer1"
    assert [u["UserName"] for u in iam.get_group(GroupName="developers")["Users"]] == ["developer1"]
    assert [k["AccessKeyId"] for k in iam.list_access_keys(UserName="developer1")["AccessKeyMetadata"]] == [out["key_id"]]
    attached = {a["PolicyArn"] for a in iam.list_attached_role_policies(RoleName="web")["AttachedPolicies"]}
    assert attached == {out["policy_arn"]}
    assert iam.list_role_policies(RoleName="web")["PolicyNames"] == ["inline"]
    assert iam.get_instance_profile(InstanceProfileName="web")["InstanceProfile"]["Roles"][0]["RoleName"] == "web"
    tf.destroy()
    assert iam.list_users()["Users"] == []
    assert iam.list_groups()["Groups"] == []
    assert iam.list_roles()["Roles"] == []
    assert iam.list_policies(Scope="Local")["Policies"] == []


SIGNED = """
resource "aws_vpc" "signed" {
  cidr_block = "10.42.0.0/16"
  tags       = { Name = "signed" }
}
resource "aws_iam_user" "signed" {
  name = "signed-by-terraform"
}
output "vpc" { value = aws_vpc.signed.id }
"""


def test_terraform_signs_requests_kumori_verifies(spawn, tmp_path):
    """The provider's own SigV4 (the Go SDK's) against --auth enforce, with a root key."""
    key, secret = "AKIAKUMORITFROOT0001", "terraform-root-secret-for-tests-0000000"
    srv = spawn(extra_args=["--auth", "enforce"],
                env={"KUMORI_ROOT_ACCESS_KEY_ID": key, "KUMORI_ROOT_SECRET_ACCESS_KEY": secret})
    tf = Terraform(tmp_path, srv.endpoint, key, secret)
    ec2 = client("ec2", srv.endpoint, key=key, secret=secret)
    out = tf.cycle(SIGNED, ec2)
    assert [v["VpcId"] for v in ec2.describe_vpcs(VpcIds=[out["vpc"]])["Vpcs"]] == [out["vpc"]]
    tf.destroy()
    assert client("iam", srv.endpoint, key=key, secret=secret).list_users()["Users"] == []
    # With a key kumori does not know, the provider is refused.
    (tmp_path / "bad").mkdir()
    bad = Terraform(tmp_path / "bad", srv.endpoint, "AKIANOTAKUMORIKEY000", secret)
    bad.write(SIGNED)
    bad.run("init")
    refused = bad.run("plan", ok_codes=(1,))
    assert "InvalidClientTokenId" in refused.stderr or "AuthFailure" in refused.stderr, refused.stderr[-2000:]
