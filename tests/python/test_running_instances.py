"""Instances that really run (`kumori serve --dataplane` with runc and mmdebstrap): the seed
journey with real `ssh` and `curl`. A bastion in the public subnet takes SSH with the key pair
from "my IP" and not from a stranger; `ssh` through it reaches the private web server, whose
user data wrote and serves a page; the web server reaches the internet's public server through
the NAT gateway; terminating an instance leaves no container behind.

Needs root, `ip`, `nft`, `runc`, `mmdebstrap` and `ssh`; skipped, saying why, elsewhere (and
failing instead under KUMORI_REQUIRE_DATAPLANE=1). The image's root filesystem is built once
into KUMORI_IMAGE_CACHE (scripts/test points every server at one) and reused."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from support import require_data_plane, REPO, KumoriServer, client, kumori_bin

pytestmark = pytest.mark.xdist_group("dataplane")

MY_IP, STRANGER, PUBLIC_SERVER = "203.0.113.5", "198.51.100.7", "198.51.100.80"
# The cloud runs with --auth enforce, as a shared deployment does: the test acts as root.
ROOT_KEY, ROOT_SECRET = "AKIAKUMORIROOTTEST02", "kumori-root-secret-for-tests-only-000002"


def as_root(service, srv):
    return client(service, srv.endpoint, key=ROOT_KEY, secret=ROOT_SECRET)


require_data_plane("ip", "nft", "runc", "mmdebstrap", "ssh")

USER_DATA = """#!/bin/sh
mkdir -p /srv/www
echo "hello from $(hostname)" > /srv/www/index.html
cd /srv/www && nohup python3 -m http.server 80 >/dev/null 2>&1 &
"""


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    prefix = "ki" + os.urandom(2).hex()
    cache = os.environ.get("KUMORI_IMAGE_CACHE") or str(REPO / "target" / "kumori-images")
    srv = KumoriServer(
        state_dir=tmp_path_factory.mktemp("instances"),
        extra_args=["--dataplane", "--dataplane-prefix", prefix, "--no-host-link", "--image-cache", cache,
                    "--auth", "enforce"],
        env={**os.environ, "KUMORI_ROOT_ACCESS_KEY_ID": ROOT_KEY, "KUMORI_ROOT_SECRET_ACCESS_KEY": ROOT_SECRET},
    ).start()
    layers = None
    try:
        # The root filesystem is built once (about a minute), then cached.
        deadline = time.monotonic() + 900
        while True:
            with urllib.request.urlopen(srv.endpoint + "/_kumori/health", timeout=10) as r:
                image = json.load(r)["dataplane"]["instances"]["image"]
            if image == "ready":
                break
            assert image == "building", image
            assert time.monotonic() < deadline, "the root filesystem took over 15 minutes"
            time.sleep(1)
        # Where the server keeps instances' layers, volumes and captured images (beside its
        # state on SQLite; under the default data directory on PostgreSQL), as it said.
        layers = Path(re.search(r"layers in (\S+), images in", srv.output()).group(1))
        yield srv, prefix, layers
    finally:
        srv.stop()
        left = subprocess.run(["runc", "list", "-q"], capture_output=True, text=True).stdout.split()
        # Whatever happened, nothing of ours stays in the kernel.
        subprocess.run([str(kumori_bin()), "dataplane", "down", "--prefix", prefix], capture_output=True)
        # Nor on disk, where the layers were not in the test's own directory (PostgreSQL).
        if layers is not None and layers.name == prefix:
            shutil.rmtree(layers, ignore_errors=True)
        assert not [c for c in left if c.startswith(prefix)], left


@pytest.fixture(scope="module")
def seed(cloud, tmp_path_factory):
    srv, prefix, layers = cloud
    ec2 = as_root("ec2", srv)
    key = ec2.create_key_pair(KeyName="seed", KeyType="ed25519")
    key_file = tmp_path_factory.mktemp("key") / "seed.pem"
    key_file.write_text(key["KeyMaterial"])
    key_file.chmod(0o600)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    public = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    private = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.11.0/24")["Subnet"]["SubnetId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    rtb = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    ec2.associate_route_table(RouteTableId=rtb, SubnetId=public)
    eip = ec2.allocate_address(Domain="vpc")
    nat = ec2.create_nat_gateway(SubnetId=public, AllocationId=eip["AllocationId"])["NatGateway"]["NatGatewayId"]
    rtb_private = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=rtb_private, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
    ec2.associate_route_table(RouteTableId=rtb_private, SubnetId=private)
    bastion_sg = ec2.create_security_group(GroupName="bastion", Description="b", VpcId=vpc)["GroupId"]
    web_sg = ec2.create_security_group(GroupName="web", Description="w", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=bastion_sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": f"{MY_IP}/32"}]}])
    ec2.authorize_security_group_ingress(GroupId=web_sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "UserIdGroupPairs": [{"GroupId": bastion_sg}]},
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": [{"GroupId": bastion_sg}]}])
    ami = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["al2023-ami-2023*-x86_64"]}])["Images"][0]["ImageId"]
    bastion = ec2.run_instances(ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1, KeyName="seed",
                                SubnetId=public, SecurityGroupIds=[bastion_sg])["Instances"][0]["InstanceId"]
    ec2.associate_address(AllocationId=ec2.allocate_address(Domain="vpc")["AllocationId"], InstanceId=bastion)
    web = ec2.run_instances(ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1, KeyName="seed",
                            SubnetId=private, SecurityGroupIds=[web_sg],
                            UserData=USER_DATA)["Instances"][0]
    bastion_ip = ec2.describe_instances(InstanceIds=[bastion])["Reservations"][0]["Instances"][0]["PublicIpAddress"]
    return {"ec2": ec2, "srv": srv, "layers": layers, "prefix": prefix, "key": str(key_file), "state_dir": srv.state_dir, "endpoint": srv.endpoint, "bastion": bastion, "bastion_ip": bastion_ip,
            "web": web["InstanceId"], "web_ip": web["PrivateIpAddress"], "nat_ip": eip["PublicIp"]}


def ssh(seed, frm: str, target: str, command: str, jump: bool = False, timeout: int = 4, user: str = "ec2-user"):
    """`ssh -i key <user>@target command` from the internet host `frm` (through the bastion
    with `jump`)."""
    opts = ["-i", seed["key"], "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "BatchMode=yes", "-o", f"ConnectTimeout={timeout}", "-o", "LogLevel=ERROR"]
    cmd = ["ssh", *opts]
    if jump:
        cmd += ["-o", "ProxyCommand=ssh " + " ".join(opts) + f" -W %h:%p ec2-user@{seed['bastion_ip']}"]
    cmd += [f"{user}@{target}", command]
    return subprocess.run(["ip", "netns", "exec", f"{seed['prefix']}-h-{frm}", *cmd],
                          capture_output=True, text=True, timeout=60)


def eventually(f, seconds=60):
    """Retries `f` until it answers something true (an instance boots), then answers that."""
    deadline = time.monotonic() + seconds
    while True:
        got = f()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.5)


def test_an_instance_is_running_once_its_ssh_server_answers(seed):
    ec2 = seed["ec2"]
    # The waiter a user (or Terraform) runs after launching: when it returns, SSH answers at
    # the first try.
    ec2.get_waiter("instance_running").wait(InstanceIds=[seed["bastion"]], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    first = ssh(seed, MY_IP, seed["bastion_ip"], "true")
    assert first.returncode == 0, first.stderr
    status = ec2.describe_instance_status(InstanceIds=[seed["bastion"]])["InstanceStatuses"][0]
    assert status["InstanceStatus"]["Status"] == "ok" and status["SystemStatus"]["Status"] == "ok", status
    # Capped by its type (t3.micro: 2 vCPUs, 1 GiB), within what the host has.
    cgroup = f"kumori/{seed['prefix']}-{seed['bastion']}"
    with open(f"/sys/fs/cgroup/memory/{cgroup}/memory.limit_in_bytes") as f:
        assert int(f.read()) == 1 << 30
    with open(f"/sys/fs/cgroup/cpu/{cgroup}/cpu.cfs_quota_us") as f:
        assert int(f.read()) == 100_000 * min(2, os.cpu_count())


def test_ssh_to_the_bastion_with_the_key_pair_from_my_ip_and_not_from_a_stranger(seed):
    ok = eventually(lambda: (r := ssh(seed, MY_IP, seed["bastion_ip"], "hostname; sudo -n id -u")).returncode == 0 and r)
    assert ok, ssh(seed, MY_IP, seed["bastion_ip"], "hostname").stderr
    host, uid = ok.stdout.split()
    assert host.startswith("ip-10-0-1-") and uid == "0", ok.stdout
    stranger = ssh(seed, STRANGER, seed["bastion_ip"], "hostname", timeout=3)
    assert stranger.returncode == 255 and "timed out" in stranger.stderr, stranger.stderr


def reach(seed, frm, to, port):
    """`kumori reach … --probe`: the engine's verdict beside real packets through the fabric."""
    return subprocess.run([str(kumori_bin()), "reach", "--from", frm, "--to", to, "--port", str(port), "--probe",
                           "--endpoint-url", seed["endpoint"]], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "AWS_ACCESS_KEY_ID": ROOT_KEY, "AWS_SECRET_ACCESS_KEY": ROOT_SECRET})


def test_kumori_reach_agrees_with_what_ssh_found(seed):
    mine = reach(seed, MY_IP, seed["bastion"], 22)
    assert mine.returncode == 0 and "kernel: REACHED" in mine.stdout, mine.stdout + mine.stderr
    stranger = reach(seed, STRANGER, seed["bastion"], 22)
    assert stranger.returncode == 1 and "kernel: NOT REACHED" in stranger.stdout, stranger.stdout + stranger.stderr
    web = reach(seed, MY_IP, seed["web"], 80)
    assert web.returncode == 1 and "DISAGREE" not in web.stdout, web.stdout


def test_ssh_through_the_bastion_reaches_the_web_server_and_its_user_data_page(seed):
    page = eventually(lambda: (r := ssh(seed, MY_IP, seed["web_ip"], "curl -s http://localhost/", jump=True)).returncode == 0
                      and "hello from" in r.stdout and r)
    assert page, ssh(seed, MY_IP, seed["web_ip"], "curl -s http://localhost/", jump=True)
    assert page.stdout.strip() == f"hello from ip-{seed['web_ip'].replace('.', '-')}", page.stdout


def curl_from(seed, frm: str, url: str, timeout: int = 3):
    return subprocess.run(["ip", "netns", "exec", f"{seed['prefix']}-h-{frm}", "curl", "-s", "-m", str(timeout), url],
                          capture_output=True, text=True, timeout=30)


def test_an_alb_in_the_public_subnets_serves_the_private_web_server(seed):
    """The seed's load balancer on the fabric: its nodes are in the public subnets behind its
    security group, and reach the private web server by its private address, which takes
    port 80 from the load balancer's group only."""
    ec2, elb = seed["ec2"], as_root("elbv2", seed["srv"])
    bastion = ec2.describe_instances(InstanceIds=[seed["bastion"]])["Reservations"][0]["Instances"][0]
    public, vpc = bastion["SubnetId"], bastion["VpcId"]
    zone = bastion["Placement"]["AvailabilityZone"]
    other_zone = "us-east-1b" if zone != "us-east-1b" else "us-east-1a"
    public2 = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.2.0/24", AvailabilityZone=other_zone)["Subnet"]["SubnetId"]
    rtb = ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": [public]}])["RouteTables"][0]["RouteTableId"]
    ec2.associate_route_table(RouteTableId=rtb, SubnetId=public2)
    lb_sg = ec2.create_security_group(GroupName="alb", Description="alb", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=lb_sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": f"{MY_IP}/32"}]}])
    web_sg = ec2.describe_instances(InstanceIds=[seed["web"]])["Reservations"][0]["Instances"][0]["SecurityGroups"][0]["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=web_sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": [{"GroupId": lb_sg}]}])
    lb = elb.create_load_balancer(Name="seed", Subnets=[public, public2], SecurityGroups=[lb_sg])["LoadBalancers"][0]["LoadBalancerArn"]
    tg = elb.create_target_group(Name="web", Protocol="HTTP", Port=80, VpcId=vpc, HealthCheckIntervalSeconds=5,
                                 HealthCheckTimeoutSeconds=2, HealthyThresholdCount=2)["TargetGroups"][0]["TargetGroupArn"]
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": seed["web"]}])
    elb.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=80, DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
    try:
        nodes = [e["Association"]["PublicIp"] for e in ec2.describe_network_interfaces(
            Filters=[{"Name": "vpc-id", "Values": [vpc]}])["NetworkInterfaces"] if e["Description"].startswith("ELB app/seed/")]
        assert len(nodes) == 2
        # Health checks leave from a node, through the web server's group, and find it.
        health = lambda: elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"][0]["TargetHealth"]  # noqa: E731
        assert eventually(lambda: health()["State"] == "healthy"), health()
        for node in nodes:
            page = eventually(lambda: (r := curl_from(seed, MY_IP, f"http://{node}/")).returncode == 0 and r.stdout)
            assert page and page.startswith("hello from ip-10-0-11-"), page
        # The load balancer's group takes port 80 from my address only.
        assert curl_from(seed, STRANGER, f"http://{nodes[0]}/", timeout=2).returncode != 0
    finally:
        elb.delete_load_balancer(LoadBalancerArn=lb)
        eventually(lambda: elb.delete_target_group(TargetGroupArn=tg) or True)


def test_the_database_answers_the_web_tier_and_not_the_bastion(seed):
    """RDS on the fabric: the instance's endpoint interface is in the private subnets behind
    the database's group, which takes 5432 from the web tier's group only; real packets from
    the web server reach the real PostgreSQL behind it, the bastion's do not."""
    ec2, rds = seed["ec2"], as_root("rds", seed["srv"])
    web = ec2.describe_instances(InstanceIds=[seed["web"]])["Reservations"][0]["Instances"][0]
    vpc, private, zone = web["VpcId"], web["SubnetId"], web["Placement"]["AvailabilityZone"]
    other_zone = "us-east-1b" if zone != "us-east-1b" else "us-east-1a"
    private2 = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.12.0/24", AvailabilityZone=other_zone)["Subnet"]["SubnetId"]
    db_sg = ec2.create_security_group(GroupName="db", Description="db", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=db_sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
         "UserIdGroupPairs": [{"GroupId": web["SecurityGroups"][0]["GroupId"]}]}])
    rds.create_db_subnet_group(DBSubnetGroupName="seed-db", DBSubnetGroupDescription="db",
                               SubnetIds=[private, private2])
    rds.create_db_instance(DBInstanceIdentifier="seed-db", Engine="postgres", DBInstanceClass="db.t3.micro",
                           AllocatedStorage=20, MasterUsername="master", MasterUserPassword="Secret-pass1",
                           DBSubnetGroupName="seed-db", VpcSecurityGroupIds=[db_sg], BackupRetentionPeriod=0)
    try:
        status = lambda: rds.describe_db_instances(DBInstanceIdentifier="seed-db")["DBInstances"][0]["DBInstanceStatus"]  # noqa: E731
        assert eventually(lambda: status() == "available"), status()
        eni = ec2.describe_network_interfaces(Filters=[
            {"Name": "vpc-id", "Values": [vpc]}, {"Name": "description", "Values": ["RDSNetworkInterface"]}])["NetworkInterfaces"][0]
        ip = eni["PrivateIpAddress"]
        # PostgreSQL's SSLRequest: a real server answers N (no TLS here).
        probe = ("python3 -c \"import socket;s=socket.create_connection(('%s',5432),3);"
                 "s.sendall(bytes([0,0,0,8,4,210,22,47]));print(s.recv(1))\"" % ip)
        from_web = eventually(lambda: (r := ssh(seed, MY_IP, seed["web_ip"], probe, jump=True)).returncode == 0 and r)
        assert from_web and from_web.stdout.strip() == "b'N'", from_web
        from_bastion = ssh(seed, MY_IP, seed["bastion_ip"], probe)
        assert from_bastion.returncode != 0 and "N" not in from_bastion.stdout, from_bastion
    finally:
        rds.delete_db_instance(DBInstanceIdentifier="seed-db", SkipFinalSnapshot=True)
        assert eventually(lambda: not rds.describe_db_instances()["DBInstances"])
        rds.delete_db_subnet_group(DBSubnetGroupName="seed-db")


def test_the_web_server_reaches_the_internet_through_the_nat_gateway(seed):
    server = subprocess.Popen(["ip", "netns", "exec", f"{seed['prefix']}-h-{PUBLIC_SERVER}", sys.executable, "-c",
                               "import http.server as h\n"
                               "class H(h.BaseHTTPRequestHandler):\n"
                               "    def do_GET(self):\n"
                               "        self.send_response(200); self.end_headers(); self.wfile.write(self.client_address[0].encode())\n"
                               "    def log_message(self, *a): pass\n"
                               "h.HTTPServer(('0.0.0.0', 8080), H).serve_forever()"])
    try:
        got = eventually(lambda: (r := ssh(seed, MY_IP, seed["web_ip"], f"curl -s -m 5 http://{PUBLIC_SERVER}:8080/", jump=True)).returncode == 0
                         and r.stdout and r, seconds=20)
        # The server saw the NAT gateway's Elastic IP.
        assert got and got.stdout == seed["nat_ip"], got
    finally:
        server.kill()


def test_kumori_reach_agrees_with_the_rest_of_the_journey(seed):
    # The web server's page from the bastion (its user data serves it), not from a stranger's
    # SSH; the web server out to the internet through the NAT gateway.
    page = reach(seed, seed["bastion"], seed["web"], 80)
    assert page.returncode == 0 and "kernel: REACHED" in page.stdout, page.stdout + page.stderr
    stranger = reach(seed, STRANGER, seed["web"], 22)
    assert stranger.returncode == 1 and "kernel: NOT REACHED" in stranger.stdout, stranger.stdout + stranger.stderr
    out = reach(seed, seed["web"], PUBLIC_SERVER, 8080)
    assert out.returncode == 0 and "kernel: REACHED" in out.stdout, out.stdout + out.stderr
    assert "DISAGREE" not in page.stdout + stranger.stdout + out.stdout


def test_the_metadata_service_answers_inside_the_instance_with_and_without_a_token(seed):
    v1 = ssh(seed, MY_IP, seed["bastion_ip"], "curl -s -m 5 http://169.254.169.254/latest/meta-data/instance-id")
    assert v1.returncode == 0 and v1.stdout == seed["bastion"], v1.stdout + v1.stderr
    v2 = ssh(seed, MY_IP, seed["bastion_ip"],
             "T=$(curl -s -m 5 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' http://169.254.169.254/latest/api/token)"
             " && curl -s -m 5 -H \"X-aws-ec2-metadata-token: $T\" http://169.254.169.254/latest/meta-data/public-ipv4")
    assert v2.returncode == 0 and v2.stdout == seed["bastion_ip"], v2.stdout + v2.stderr
    # Tokens required: a call without one is refused with 401, as on EC2.
    seed["ec2"].modify_instance_metadata_options(InstanceId=seed["bastion"], HttpTokens="required")
    try:
        refused = ssh(seed, MY_IP, seed["bastion_ip"],
                      "curl -s -m 5 -o /dev/null -w '%{http_code}' http://169.254.169.254/latest/meta-data/instance-id")
        assert refused.stdout == "401", refused.stdout + refused.stderr
    finally:
        seed["ec2"].modify_instance_metadata_options(InstanceId=seed["bastion"], HttpTokens="optional")


CLOUD_CONFIG = """#cloud-config
timezone: Asia/Tokyo
users:
  - default
  - name: alice
    sudo: ALL=(ALL) NOPASSWD:ALL
    shell: /bin/bash
    ssh_authorized_keys: [%s]
write_files:
  - path: /etc/kumori-written
    content: written by cloud-init
runcmd:
  - [sh, -c, "echo ran > /var/tmp/runcmd"]
packages: [curl, no-such-package-xyz]
"""


def test_cloud_config_user_data_runs_through_cloud_init(seed):
    ec2 = seed["ec2"]
    web = ec2.describe_instances(InstanceIds=[seed["web"]])["Reservations"][0]["Instances"][0]
    key = ec2.describe_key_pairs(KeyNames=["seed"], IncludePublicKey=True)["KeyPairs"][0]["PublicKey"].strip()
    i = ec2.run_instances(ImageId=web["ImageId"], InstanceType="t3.micro", MinCount=1, MaxCount=1, KeyName="seed",
                          SubnetId=web["SubnetId"], SecurityGroupIds=[web["SecurityGroups"][0]["GroupId"]],
                          UserData=CLOUD_CONFIG % key)["Instances"][0]
    try:
        ec2.get_waiter("instance_running").wait(InstanceIds=[i["InstanceId"]], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        # cloud-init finishes after SSH is up; `cloud-init status --wait` is how a user waits.
        done = eventually(lambda: (r := ssh(seed, MY_IP, i["PrivateIpAddress"], "cloud-init status --wait >/dev/null; "
                                            "cat /etc/kumori-written; echo; cat /var/tmp/runcmd; date +%Z; id -un",
                                            jump=True, user="alice", timeout=10)).returncode == 0 and r, seconds=60)
        assert done, ssh(seed, MY_IP, i["PrivateIpAddress"], "true", jump=True, user="alice")
        assert done.stdout.split("\n")[:4] == ["written by cloud-init", "ran", "JST", "alice"], done.stdout
        log = ssh(seed, MY_IP, i["PrivateIpAddress"], "sudo cat /var/log/cloud-init-output.log", jump=True)
        # curl is in the image; the other package is not, and the log says so.
        assert "no-such-package-xyz not in the image" in log.stdout, log.stdout
        assert "Cloud-init v." in ec2.get_console_output(InstanceId=i["InstanceId"])["Output"]
    finally:
        ec2.terminate_instances(InstanceIds=[i["InstanceId"]])


def test_the_vpc_resolver_answers_instance_names_and_nothing_else(seed):
    web_ip = seed["web_ip"]
    short = f"ip-{web_ip.replace('.', '-')}"
    got = ssh(seed, MY_IP, seed["bastion_ip"], f"cat /etc/resolv.conf; getent hosts {short}.ec2.internal; getent hosts {short}; "
              f"getent hosts {web_ip}; start=$(date +%s%N); getent hosts does-not-exist.example.com; echo nx=$?; "
              "echo ms=$(( ($(date +%s%N) - start) / 1000000 ))")
    assert got.returncode == 0, got.stderr
    out = got.stdout
    assert "nameserver 10.0.0.2" in out and "search ec2.internal" in out, out
    assert f"{web_ip}       {short}.ec2.internal" in out or f"{web_ip} {short}.ec2.internal" in out.replace("  ", " "), out
    assert out.count(web_ip) >= 3, out
    assert "nx=2" in out, out
    # NXDOMAIN at once: no timeout for a program probing the resolver.
    assert int(out.split("ms=")[1].split()[0]) < 1000, out


def test_the_aws_cli_inside_an_instance_uses_its_role_and_only_what_the_role_allows(seed):
    """Under --auth enforce: the instance's role may describe VPCs and nothing else; the aws
    CLI on the instance finds the role's credentials at the metadata service by itself."""
    iam = as_root("iam", seed["srv"])
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                                                      "Action": "sts:AssumeRole"}]}
    iam.create_role(RoleName="web-reader", AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(RoleName="web-reader", PolicyName="describe-vpcs", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ec2:DescribeVpcs", "Resource": "*"}]}))
    iam.create_instance_profile(InstanceProfileName="web-reader")
    iam.add_role_to_instance_profile(InstanceProfileName="web-reader", RoleName="web-reader")
    seed["ec2"].associate_iam_instance_profile(InstanceId=seed["web"], IamInstanceProfile={"Name": "web-reader"})
    aws = "aws --endpoint-url http://169.254.169.254:4566 --region us-east-1 --output text"
    who = eventually(lambda: (r := ssh(seed, MY_IP, seed["web_ip"], f"{aws} sts get-caller-identity --query Arn", jump=True, timeout=10)).returncode == 0 and r, seconds=30)
    assert who, ssh(seed, MY_IP, seed["web_ip"], f"{aws} sts get-caller-identity", jump=True, timeout=10)
    assert who.stdout.strip().endswith(f":assumed-role/web-reader/{seed['web']}"), who.stdout
    vpcs = ssh(seed, MY_IP, seed["web_ip"], f"{aws} ec2 describe-vpcs --query 'Vpcs[].CidrBlock'", jump=True, timeout=10)
    assert vpcs.returncode == 0 and "10.0.0.0/16" in vpcs.stdout, vpcs.stdout + vpcs.stderr
    denied = ssh(seed, MY_IP, seed["web_ip"], f"{aws} ec2 create-vpc --cidr-block 10.9.0.0/16", jump=True, timeout=10)
    assert denied.returncode != 0 and "UnauthorizedOperation" in denied.stderr, denied.stdout + denied.stderr


def test_the_token_answer_leaves_with_the_hop_limit_as_its_ttl(seed):
    """A container inside the instance is one more hop: with hop limit 1 the token answer dies
    on its way there (as on EC2), with 2 it arrives. The "container" is a namespace this test
    makes behind the instance's own, forwarding and masquerading as Docker's bridge does."""
    ec2, prefix = seed["ec2"], seed["prefix"]
    eni = ec2.describe_instances(InstanceIds=[seed["bastion"]])["Reservations"][0]["Instances"][0]["NetworkInterfaces"][0]["NetworkInterfaceId"]
    instance_ns, nest = f"{prefix}-e-{eni}", f"{prefix}t-nest"
    outer, inner = f"{prefix}tho", f"{prefix}thi"
    run = lambda *a: subprocess.run(list(a), check=True, capture_output=True)  # noqa: E731
    get_token = ["ip", "netns", "exec", nest, "curl", "-s", "-m", "3", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT",
                 "-H", "X-aws-ec2-metadata-token-ttl-seconds: 60", "http://169.254.169.254/latest/api/token"]
    # From the instance itself, hop limit 1 is enough.
    direct = eventually(lambda: (r := ssh(seed, MY_IP, seed["bastion_ip"], "curl -s -m 3 -o /dev/null -w '%{http_code}' -X PUT "
                        "-H 'X-aws-ec2-metadata-token-ttl-seconds: 60' http://169.254.169.254/latest/api/token")).stdout == "200" and r)
    assert direct, "the instance itself got no token"
    try:
        run("ip", "netns", "add", nest)
        run("ip", "link", "add", outer, "netns", instance_ns, "type", "veth", "peer", "name", inner, "netns", nest)
        run("ip", "-n", instance_ns, "addr", "add", "192.168.77.1/30", "dev", outer)
        run("ip", "-n", instance_ns, "link", "set", outer, "up")
        run("ip", "-n", nest, "addr", "add", "192.168.77.2/30", "dev", inner)
        run("ip", "-n", nest, "link", "set", inner, "up")
        run("ip", "-n", nest, "route", "add", "default", "via", "192.168.77.1")
        run("ip", "netns", "exec", instance_ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        run("ip", "netns", "exec", instance_ns, "nft", "add table ip kumori_test_nest; "
            "add chain ip kumori_test_nest post { type nat hook postrouting priority 100; }; "
            "add rule ip kumori_test_nest post ip saddr 192.168.77.0/30 masquerade")
        one = subprocess.run(get_token, capture_output=True, text=True)
        assert one.stdout == "000", f"hop limit 1 reached a nested container: {one.stdout}"
        # IMDSv1 is not a token answer: it still reaches the nested container.
        v1 = subprocess.run(["ip", "netns", "exec", nest, "curl", "-s", "-m", "3",
                             "http://169.254.169.254/latest/meta-data/instance-id"], capture_output=True, text=True)
        assert v1.stdout == seed["bastion"], v1
        ec2.modify_instance_metadata_options(InstanceId=seed["bastion"], HttpPutResponseHopLimit=2)
        two = eventually(lambda: (r := subprocess.run(get_token, capture_output=True, text=True)).stdout == "200" and r, seconds=10)
        assert two, "hop limit 2 did not reach a nested container"
    finally:
        ec2.modify_instance_metadata_options(InstanceId=seed["bastion"], HttpPutResponseHopLimit=1)
        subprocess.run(["ip", "netns", "exec", instance_ns, "nft", "delete", "table", "ip", "kumori_test_nest"], capture_output=True)
        subprocess.run(["ip", "netns", "exec", instance_ns, "sysctl", "-qw", "net.ipv4.ip_forward=0"], capture_output=True)
        subprocess.run(["ip", "-n", instance_ns, "link", "del", outer], capture_output=True)
        subprocess.run(["ip", "netns", "del", nest], capture_output=True)


def test_the_console_shows_the_host_keys_made_at_first_boot(seed):
    out = seed["ec2"].get_console_output(InstanceId=seed["bastion"])
    assert out["InstanceId"] == seed["bastion"]
    console = out["Output"]  # boto3 decodes it
    assert "-----BEGIN SSH HOST KEY FINGERPRINTS-----" in console and "(ED25519)" in console, console
    # The fingerprint printed is the key the SSH server presents.
    keys = subprocess.run(["ip", "netns", "exec", f"{seed['prefix']}-h-{MY_IP}", "ssh-keyscan", "-t", "ed25519",
                           seed["bastion_ip"]], capture_output=True, text=True).stdout.split()
    assert keys and keys[-1] in console, (keys, console)


def test_stop_and_start_keep_what_was_written_to_the_root_volume(seed):
    ec2, name = seed["ec2"], f"{seed['prefix']}-{seed['bastion']}"
    wrote = ssh(seed, MY_IP, seed["bastion_ip"], "echo kept > ~/note && sudo sh -c 'echo root-kept > /etc/kumori-note'")
    assert wrote.returncode == 0, wrote.stderr
    stopping = ec2.stop_instances(InstanceIds=[seed["bastion"]])["StoppingInstances"][0]
    assert stopping["CurrentState"]["Name"] == "stopping", stopping
    # Stopped means its processes are gone, as the waiter a user runs expects.
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[seed["bastion"]], WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    assert name not in subprocess.run(["runc", "list", "-q"], capture_output=True, text=True).stdout.split()
    assert ssh(seed, MY_IP, seed["bastion_ip"], "true", timeout=2).returncode == 255
    ec2.start_instances(InstanceIds=[seed["bastion"]])
    ec2.get_waiter("instance_running").wait(InstanceIds=[seed["bastion"]], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    back = ssh(seed, MY_IP, seed["bastion_ip"], "cat ~/note /etc/kumori-note")
    assert back.returncode == 0 and back.stdout.split() == ["kept", "root-kept"], back


def test_stop_and_start_give_an_instance_without_an_elastic_ip_a_new_public_address(seed):
    ec2 = seed["ec2"]
    b = ec2.describe_instances(InstanceIds=[seed["bastion"]])["Reservations"][0]["Instances"][0]
    i = ec2.run_instances(ImageId=b["ImageId"], InstanceType="t3.micro", MinCount=1, MaxCount=1, KeyName="seed",
                          NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": b["SubnetId"], "AssociatePublicIpAddress": True,
                                              "Groups": [b["SecurityGroups"][0]["GroupId"]]}])["Instances"][0]["InstanceId"]
    try:
        waiter = {"Delay": 1, "MaxAttempts": 60}
        ec2.get_waiter("instance_running").wait(InstanceIds=[i], WaiterConfig=waiter)
        first = ec2.describe_instances(InstanceIds=[i])["Reservations"][0]["Instances"][0]["PublicIpAddress"]
        assert ssh(seed, MY_IP, first, "echo kept > ~/kept").returncode == 0
        ec2.stop_instances(InstanceIds=[i])
        ec2.get_waiter("instance_stopped").wait(InstanceIds=[i], WaiterConfig=waiter)
        ec2.start_instances(InstanceIds=[i])
        ec2.get_waiter("instance_running").wait(InstanceIds=[i], WaiterConfig=waiter)
        second = ec2.describe_instances(InstanceIds=[i])["Reservations"][0]["Instances"][0]["PublicIpAddress"]
        assert second != first
        back = ssh(seed, MY_IP, second, "cat ~/kept")
        assert back.returncode == 0 and back.stdout.strip() == "kept", back
        # The old address leads nowhere now.
        assert ssh(seed, MY_IP, first, "true", timeout=2).returncode == 255
    finally:
        ec2.terminate_instances(InstanceIds=[i])


def test_an_image_made_from_an_instance_carries_the_files_its_user_wrote(seed):
    ec2 = seed["ec2"]
    ec2.get_waiter("instance_running").wait(InstanceIds=[seed["bastion"]], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    wrote = ssh(seed, MY_IP, seed["bastion_ip"], "echo baked > ~/baked && sudo sh -c 'echo baked-root > /etc/baked' && rm -f ~/.bashrc")
    assert wrote.returncode == 0, wrote.stderr
    image = ec2.create_image(InstanceId=seed["bastion"], Name="baked-bastion")["ImageId"]
    ec2.get_waiter("image_available").wait(ImageIds=[image], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    layer = seed["layers"] / "images" / image
    assert (layer / "home" / "ec2-user" / "baked").is_file(), "the captured layer is not where kumori keeps it"
    web_sg = ec2.describe_instances(InstanceIds=[seed["web"]])["Reservations"][0]["Instances"][0]["SecurityGroups"][0]["GroupId"]
    private = ec2.describe_instances(InstanceIds=[seed["web"]])["Reservations"][0]["Instances"][0]["SubnetId"]
    child = ec2.run_instances(ImageId=image, InstanceType="t3.micro", MinCount=1, MaxCount=1, KeyName="seed",
                              SubnetId=private, SecurityGroupIds=[web_sg])["Instances"][0]
    try:
        ec2.get_waiter("instance_running").wait(InstanceIds=[child["InstanceId"]], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        got = ssh(seed, MY_IP, child["PrivateIpAddress"], "cat ~/baked /etc/baked; test -e ~/.bashrc || echo no-bashrc; hostname", jump=True)
        assert got.returncode == 0, got.stderr
        assert got.stdout.split() == ["baked", "baked-root", "no-bashrc", f"ip-{child['PrivateIpAddress'].replace('.', '-')}"], got.stdout
        # Host keys are the new instance's own, not the image's.
        console = lambda i: ec2.get_console_output(InstanceId=i)["Output"]  # noqa: E731
        key = lambda text: [line for line in text.splitlines() if line.startswith("ssh-ed25519")][-1]  # noqa: E731
        assert key(console(child["InstanceId"])) != key(console(seed["bastion"]))
    finally:
        ec2.terminate_instances(InstanceIds=[child["InstanceId"]])
        ec2.deregister_image(ImageId=image)
    assert eventually(lambda: not layer.exists(), seconds=20), "a deregistered image's layer stayed on disk"


def test_a_volume_formatted_and_mounted_keeps_its_data_across_detach_and_attach_to_another_instance(seed):
    ec2 = seed["ec2"]
    web = ec2.describe_instances(InstanceIds=[seed["web"]])["Reservations"][0]["Instances"][0]
    other = ec2.run_instances(ImageId=web["ImageId"], InstanceType="t3.micro", MinCount=1, MaxCount=1, KeyName="seed",
                              SubnetId=web["SubnetId"], SecurityGroupIds=[web["SecurityGroups"][0]["GroupId"]])["Instances"][0]
    volume = ec2.create_volume(AvailabilityZone=web["Placement"]["AvailabilityZone"], Size=1, VolumeType="gp3")["VolumeId"]
    try:
        ec2.get_waiter("volume_available").wait(VolumeIds=[volume], WaiterConfig={"Delay": 1})
        ec2.attach_volume(VolumeId=volume, InstanceId=seed["web"], Device="/dev/sdf")
        ec2.get_waiter("volume_in_use").wait(VolumeIds=[volume], WaiterConfig={"Delay": 1})
        # As AWS's guide has it: look, format, mount, write, unmount.
        made = eventually(lambda: (r := ssh(seed, MY_IP, web["PrivateIpAddress"],
                                            "lsblk -bno SIZE /dev/xvdf && test -b /dev/sdf && sudo mkfs -t ext4 -q /dev/xvdf && sudo mkdir -p /data"
                                            " && sudo mount /dev/xvdf /data && echo persisted | sudo tee /data/f >/dev/null && sudo umount /data",
                                            jump=True)).returncode == 0 and r, seconds=20)
        assert made and made.stdout.split()[0] == str(1 << 30), made
        assert (seed["layers"] / "volumes" / f"{volume}.img").is_file()
        ec2.detach_volume(VolumeId=volume)
        ec2.get_waiter("volume_available").wait(VolumeIds=[volume], WaiterConfig={"Delay": 1})
        gone = eventually(lambda: (r := ssh(seed, MY_IP, web["PrivateIpAddress"], "test ! -e /dev/xvdf", jump=True)).returncode == 0 and r, seconds=10)
        assert gone, "a detached volume stayed in the instance"
        ec2.get_waiter("instance_running").wait(InstanceIds=[other["InstanceId"]], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        ec2.attach_volume(VolumeId=volume, InstanceId=other["InstanceId"], Device="/dev/sdg")
        read = eventually(lambda: (r := ssh(seed, MY_IP, other["PrivateIpAddress"],
                                            "sudo mkdir -p /data && sudo mount /dev/xvdg /data && cat /data/f && sudo umount /data",
                                            jump=True)).returncode == 0 and r, seconds=20)
        assert read and read.stdout.strip() == "persisted", read
    finally:
        ec2.terminate_instances(InstanceIds=[other["InstanceId"]])
        try:
            ec2.detach_volume(VolumeId=volume)
        except ec2.exceptions.ClientError:
            pass  # already detached (the test got that far) or by the termination
        eventually(lambda: ec2.describe_volumes(VolumeIds=[volume])["Volumes"][0]["State"] == "available", seconds=20)
        ec2.delete_volume(VolumeId=volume)
    files = seed["layers"] / "volumes"
    assert eventually(lambda: not (files / f"{volume}.img").exists(), seconds=20), "a deleted volume's file stayed"
    loops = subprocess.run(["losetup", "-j", str(files / f"{volume}.img")], capture_output=True, text=True).stdout
    assert loops == "", loops


def test_a_reboot_restarts_the_processes_and_keeps_the_root_volume(seed):
    ec2 = seed["ec2"]
    ec2.get_waiter("instance_running").wait(InstanceIds=[seed["bastion"]], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    before = ssh(seed, MY_IP, seed["bastion_ip"], "touch /tmp/gone-after-reboot && echo kept > ~/reboot-note")
    assert before.returncode == 0, before.stderr
    ec2.reboot_instances(InstanceIds=[seed["bastion"]])
    after = eventually(lambda: (r := ssh(seed, MY_IP, seed["bastion_ip"], "test ! -e /tmp/gone-after-reboot && cat ~/reboot-note")).returncode == 0 and r)
    assert after and after.stdout.strip() == "kept", after


def test_an_instance_whose_processes_died_fails_its_instance_check(seed):
    ec2, name = seed["ec2"], f"{seed['prefix']}-{seed['bastion']}"
    subprocess.run(["runc", "kill", name, "KILL"], check=True)
    assert eventually(lambda: name not in subprocess.run(["runc", "list", "-q"], capture_output=True, text=True).stdout.split()
                      or subprocess.run(["runc", "state", name], capture_output=True, text=True).stdout.count('"stopped"'), seconds=10)
    status = ec2.describe_instance_status(InstanceIds=[seed["bastion"]])["InstanceStatuses"][0]
    assert status["InstanceState"]["Name"] == "running", status
    assert status["InstanceStatus"]["Status"] == "impaired", status
    assert status["InstanceStatus"]["Details"] == [{"Name": "reachability", "Status": "failed"}], status
    assert status["SystemStatus"]["Status"] == "ok", status
    impaired = ec2.describe_instance_status(Filters=[{"Name": "instance-status.status", "Values": ["impaired"]}])["InstanceStatuses"]
    assert [s["InstanceId"] for s in impaired] == [seed["bastion"]]
    # A reboot brings it back, as on EC2.
    ec2.reboot_instances(InstanceIds=[seed["bastion"]])
    back = eventually(lambda: (r := ssh(seed, MY_IP, seed["bastion_ip"], "cat ~/note")).returncode == 0 and r)
    assert back, "a reboot did not bring a dead instance back"
    status = ec2.describe_instance_status(InstanceIds=[seed["bastion"]])["InstanceStatuses"][0]
    assert status["InstanceStatus"]["Status"] == "ok", status


def test_a_restart_of_kumori_brings_running_instances_back(cloud, seed):
    srv, _, _ = cloud
    srv.kill()  # no clean shutdown: the container and its namespace outlive the process
    prefix = seed["prefix"]
    assert f"{prefix}-{seed['bastion']}" in subprocess.run(["runc", "list", "-q"], capture_output=True, text=True).stdout.split()
    # What a crash left, `kumori dataplane down` removes: containers, their root mounts,
    # namespaces; the root volumes stay on disk for the next start.
    down = subprocess.run([str(kumori_bin()), "dataplane", "down", "--prefix", prefix], capture_output=True, text=True)
    assert down.returncode == 0 and "removed 2 instance containers" in down.stdout, down.stdout + down.stderr
    assert not [c for c in subprocess.run(["runc", "list", "-q"], capture_output=True, text=True).stdout.split() if c.startswith(prefix)]
    with open("/proc/mounts") as f:
        assert not [line for line in f if f"/{prefix}-i-" in line]
    assert not [n for n in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split() if n.startswith(prefix)]
    srv.start()
    seed["ec2"] = as_root("ec2", srv)  # another port
    back = eventually(lambda: (r := ssh(seed, MY_IP, seed["bastion_ip"], "cat ~/note")).returncode == 0 and r)
    assert back and back.stdout.strip() == "kept", back
    # Every running instance, not only the one logged into.
    page = eventually(lambda: (r := ssh(seed, MY_IP, seed["web_ip"], "cat /srv/www/index.html", jump=True)).returncode == 0 and r)
    assert page and "hello from" in page.stdout, page


def test_terminating_an_instance_removes_its_container(seed):
    ec2, prefix = seed["ec2"], seed["prefix"]
    name = f"{prefix}-{seed['web']}"
    assert name in subprocess.run(["runc", "list", "-q"], capture_output=True, text=True).stdout.split()
    ec2.terminate_instances(InstanceIds=[seed["web"]])
    gone = eventually(lambda: name not in subprocess.run(["runc", "list", "-q"], capture_output=True, text=True).stdout.split(), seconds=20)
    assert gone
    # Nothing of it is left: no mount of its root, no layers on disk.
    with open("/proc/mounts") as f:
        assert not [line for line in f if name in line]
    assert seed["layers"].is_dir(), "layers are not where the server said"
    assert not (seed["layers"] / name).exists()


def test_an_image_whose_root_filesystem_cannot_be_built_leaves_the_instance_terminated(tmp_path):
    """No mirror answers and nothing is cached: the launch is accepted (as RunInstances is),
    and the instance ends terminated with EC2's state reason, saying why; nothing runs."""
    prefix = "kb" + os.urandom(2).hex()
    srv = KumoriServer(
        state_dir=tmp_path / "state",
        extra_args=["--dataplane", "--dataplane-prefix", prefix, "--no-host-link", "--image-cache", str(tmp_path / "images")],
        env={**os.environ, "KUMORI_DEBIAN_MIRROR": "http://127.0.0.1:9/debian"},
    ).start()
    try:
        ec2 = client("ec2", srv.endpoint)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
        ami = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["al2023-ami-2023*-x86_64"]}])["Images"][0]["ImageId"]
        launched = ec2.run_instances(ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1, SubnetId=subnet)["Instances"][0]
        assert launched["State"]["Name"] == "pending"
        state = lambda: ec2.describe_instances(InstanceIds=[launched["InstanceId"]])["Reservations"][0]["Instances"][0]  # noqa: E731
        i = eventually(lambda: (i := state())["State"]["Name"] != "pending" and i, seconds=120)
        assert i and i["State"]["Name"] == "terminated", i
        assert i["StateReason"]["Code"] == "Server.InternalError", i["StateReason"]
        assert i["StateReason"]["Message"].startswith("Server.InternalError: Internal error on launch"), i["StateReason"]
        assert "root filesystem" in i["StateReason"]["Message"], i["StateReason"]
        assert "PrivateIpAddress" not in i or ec2.describe_network_interfaces(
            Filters=[{"Name": "attachment.instance-id", "Values": [launched["InstanceId"]]}])["NetworkInterfaces"] == []
        assert not [c for c in subprocess.run(["runc", "list", "-q"], capture_output=True, text=True).stdout.split() if c.startswith(prefix)]
        health = json.load(urllib.request.urlopen(srv.endpoint + "/_kumori/health", timeout=10))
        assert "building the root filesystem failed" in health["dataplane"]["instances"]["image"], health
    finally:
        srv.stop()
        subprocess.run([str(kumori_bin()), "dataplane", "down", "--prefix", prefix], capture_output=True)

