"""The data plane (`kumori serve --dataplane`): the classic layout built through boto3 becomes
real Linux networking, and real TCP connections between its endpoints behave as AWS says and
as the reachability engine says — SSH open to "my IP" and closed to a stranger, the private
web server out through the NAT gateway (seen from the internet as the NAT's Elastic IP), web
to database on 3306 and not from the bastion, a network ACL's missing ephemeral rule breaking
the return path, peering that does not transit, a blackhole route, live rule changes, and a
host left as it was found.

Needs root, `ip`, `nft` and network namespaces; skipped, saying why, elsewhere — and failing
instead when KUMORI_REQUIRE_DATAPLANE=1 (set by scripts/test when it runs as root)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest
from support import require_data_plane, KumoriServer, client, kumori_bin

pytestmark = pytest.mark.xdist_group("dataplane")

MY_IP, STRANGER, PUBLIC_SERVER = "203.0.113.5", "198.51.100.7", "198.51.100.80"


require_data_plane("ip", "nft")


def namespaces(prefix: str) -> list[str]:
    try:
        return sorted(n for n in os.listdir("/run/netns") if n.startswith(prefix + "-"))
    except FileNotFoundError:
        return []


def host_link_exists(prefix: str) -> bool:
    return os.path.exists(f"/sys/class/net/{prefix}-host")


class Fabric:
    """A kumori server with a data plane of its own prefix, and ways to talk through it."""

    def __init__(self, srv: KumoriServer, prefix: str):
        self.srv, self.prefix = srv, prefix

    @property
    def ec2(self):
        # A restarted server listens on another port.
        return client("ec2", self.srv.endpoint)

    def health(self) -> dict:
        try:
            with urllib.request.urlopen(self.srv.endpoint + "/_kumori/health", timeout=5) as r:
                return json.load(r)
        except OSError as e:
            # A server that stopped answering says why in its output.
            raise AssertionError(f"health: {e}; server alive: {self.srv.alive()}, "
                                 f"exit code {self.srv.proc.poll() if self.srv.proc else None}; "
                                 f"output:\n{self.srv.output()}") from e

    def settle(self, timeout: float = 5.0) -> float:
        """Waits until every acknowledged write is in the kernel; answers how long it took."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            dp = self.health()["dataplane"]
            if dp["in_step"]:
                assert not dp["last"]["errors"], dp["last"]["errors"]
                return time.monotonic() - start
            time.sleep(0.005)
        raise AssertionError(f"the data plane did not catch up in {timeout}s: {self.health()['dataplane']}")

    def ns_of_instance(self, instance: str) -> str:
        i = self.ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]
        return f"{self.prefix}-e-{i['NetworkInterfaces'][0]['NetworkInterfaceId']}"

    def host(self, ip: str) -> str:
        return f"{self.prefix}-h-{ip}"


LISTENER = r"""
import socket, sys
port, seconds = int(sys.argv[1]), float(sys.argv[2])
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", port)); s.listen(8); s.settimeout(seconds)
print("ready", flush=True)
try:
    while True:
        c, peer = s.accept()
        print("from", peer[0], flush=True)
        c.settimeout(seconds)
        try:
            while True:
                data = c.recv(100)
                if not data:
                    break
                c.sendall(data)
        except OSError:
            pass
except OSError:
    pass
"""

CLIENT = r"""
import socket, sys
addr, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
try:
    c = socket.create_connection((addr, port), timeout=seconds)
except OSError as e:
    print("failed", type(e).__name__, flush=True); sys.exit(0)
print("connected", flush=True)
for line in sys.stdin:
    try:
        c.sendall(line.encode()); got = c.recv(100)
        print("echo" if got == line.encode() else "closed", flush=True)
    except OSError as e:
        print("failed", type(e).__name__, flush=True)
"""


class Listener:
    """An echo server in a namespace, printing whom it accepted."""

    def __init__(self, ns: str, port: int, seconds: float = 30):
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-c", LISTENER, str(port), str(seconds)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    def peers(self) -> list[str]:
        self.stop()
        return [line.split()[1] for line in self.proc.stdout.read().splitlines() if line.startswith("from ")]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)


class Conversation:
    """A client connection held open from a namespace: `say()` sends a line and answers
    whether it came back."""

    def __init__(self, ns: str | None, addr: str, port: int, seconds: float = 1.0):
        cmd = [sys.executable, "-c", CLIENT, addr, str(port), str(seconds)]
        if ns:
            cmd = ["ip", "netns", "exec", ns, *cmd]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.first = self.proc.stdout.readline().strip()

    @property
    def connected(self) -> bool:
        return self.first == "connected"

    def say(self) -> bool:
        self.proc.stdin.write("hello\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip() == "echo"

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def connects(src: str | None, dst_ns: str, addr: str, port: int, seconds: float = 1.0) -> bool:
    """Whether a TCP connection from namespace `src` (None: the host) to addr:port reaches
    the listener in `dst_ns` and carries a line there and back."""
    listener = Listener(dst_ns, port, seconds=seconds + 2)
    try:
        c = Conversation(src, addr, port, seconds)
        ok = c.connected and c.say()
        c.close()
        return ok
    finally:
        listener.stop()


@pytest.fixture(scope="module")
def fabric(tmp_path_factory):
    prefix = "kt" + os.urandom(2).hex()
    srv = KumoriServer(
        state_dir=tmp_path_factory.mktemp("dataplane"),
        # Instances here are endpoints the test listens in; test_instances.py runs them.
        extra_args=["--dataplane", "--dataplane-prefix", prefix, "--no-instances"],
        env={"KUMORI_LOG": "kumori_server=info,warn"},
    ).start()
    try:
        yield Fabric(srv, prefix)
    finally:
        srv.stop()
        # Whatever happened, nothing of ours stays in the kernel.
        subprocess.run([str(kumori_bin()), "dataplane", "down", "--prefix", prefix], capture_output=True)


@pytest.fixture(scope="module")
def layout(fabric):
    """The classic layout: VPC, public and private subnets, IGW, NAT gateway with an EIP, a
    bastion that alone takes SSH from "my IP", a private web server that takes SSH from the
    bastion, a database that takes MySQL from the web tier."""
    ec2 = fabric.ec2
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    public = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    private = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.11.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    rtb_public = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=rtb_public, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    ec2.associate_route_table(RouteTableId=rtb_public, SubnetId=public)
    alloc = ec2.allocate_address(Domain="vpc")
    nat = ec2.create_nat_gateway(SubnetId=public, AllocationId=alloc["AllocationId"])["NatGateway"]["NatGatewayId"]
    rtb_private = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=rtb_private, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
    ec2.associate_route_table(RouteTableId=rtb_private, SubnetId=private)
    sg = lambda name: ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc)["GroupId"]  # noqa: E731
    bastion_sg, web_sg, db_sg = sg("bastion"), sg("web"), sg("db")
    ec2.authorize_security_group_ingress(GroupId=bastion_sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": f"{MY_IP}/32"}]}])
    ec2.authorize_security_group_ingress(GroupId=web_sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "UserIdGroupPairs": [{"GroupId": bastion_sg}]}])
    ec2.authorize_security_group_ingress(GroupId=db_sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 3306, "ToPort": 3306, "UserIdGroupPairs": [{"GroupId": web_sg}]}])
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    run = lambda subnet, group, public_ip: ec2.run_instances(  # noqa: E731
        ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1,
        NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": subnet, "Groups": [group], "AssociatePublicIpAddress": public_ip}],
    )["Instances"][0]
    bastion, web, db = run(public, bastion_sg, True), run(private, web_sg, False), run(private, db_sg, False)
    fabric.settle()
    return {
        "vpc": vpc, "public": public, "private": private, "igw": igw, "nat": nat,
        "nat_ip": alloc["PublicIp"], "rtb_public": rtb_public,
        "bastion_sg": bastion_sg, "web_sg": web_sg, "db_sg": db_sg,
        "bastion": bastion["InstanceId"], "web": web["InstanceId"], "db": db["InstanceId"],
        "bastion_public": ec2.describe_instances(InstanceIds=[bastion["InstanceId"]])["Reservations"][0]["Instances"][0]["PublicIpAddress"],
        "web_ip": web["PrivateIpAddress"], "db_ip": db["PrivateIpAddress"],
    }


def test_ssh_to_the_bastion_is_open_to_my_ip_and_closed_to_a_stranger(fabric, layout):
    bastion = fabric.ns_of_instance(layout["bastion"])
    assert connects(fabric.host(MY_IP), bastion, layout["bastion_public"], 22)
    assert not connects(fabric.host(STRANGER), bastion, layout["bastion_public"], 22)
    # Only port 22 is open to me.
    assert not connects(fabric.host(MY_IP), bastion, layout["bastion_public"], 80)


def test_the_private_web_server_is_out_of_the_internets_reach_but_the_bastion_hops_to_it(fabric, layout):
    web = fabric.ns_of_instance(layout["web"])
    assert not connects(fabric.host(MY_IP), web, layout["web_ip"], 22)
    assert connects(fabric.ns_of_instance(layout["bastion"]), web, layout["web_ip"], 22)


def test_the_private_subnet_goes_out_through_the_nat_gateway_as_its_elastic_ip(fabric, layout):
    web = fabric.ns_of_instance(layout["web"])
    listener = Listener(fabric.host(PUBLIC_SERVER), 443)
    c = Conversation(web, PUBLIC_SERVER, 443)
    assert c.connected and c.say()
    c.close()
    assert listener.peers() == [layout["nat_ip"]]


def test_web_reaches_the_database_and_the_bastion_does_not(fabric, layout):
    db = fabric.ns_of_instance(layout["db"])
    assert connects(fabric.ns_of_instance(layout["web"]), db, layout["db_ip"], 3306)
    assert not connects(fabric.ns_of_instance(layout["bastion"]), db, layout["db_ip"], 3306)


def test_kumori_reach_probe_prints_the_kernel_beside_the_engine(fabric, layout):
    def reach(*args):
        return subprocess.run([str(kumori_bin()), "reach", *args, "--probe", "--endpoint-url", fabric.srv.endpoint],
                              capture_output=True, text=True, timeout=60)
    ok = reach("--from", MY_IP, "--to", layout["bastion"], "--port", "22")
    assert ok.returncode == 0 and "kernel: REACHED (connected); the engine says reachable" in ok.stdout, ok.stdout + ok.stderr
    no = reach("--from", layout["bastion"], "--to", layout["db"], "--port", "3306")
    assert no.returncode == 1 and "kernel: NOT REACHED (timed out); the engine says not reachable" in no.stdout, no.stdout + no.stderr
    assert "DISAGREE" not in ok.stdout + no.stdout


def test_a_revoked_rule_stops_new_connections_and_an_established_one_survives(fabric, layout):
    ec2, bastion = fabric.ec2, fabric.ns_of_instance(layout["bastion"])
    listener = Listener(bastion, 22)
    held = Conversation(fabric.host(MY_IP), layout["bastion_public"], 22)
    assert held.connected and held.say()
    perm = [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": f"{MY_IP}/32"}]}]
    ec2.revoke_security_group_ingress(GroupId=layout["bastion_sg"], IpPermissions=perm)
    try:
        fabric.settle()
        assert held.say(), "a group change cut an established connection (AWS tracks it)"
        fresh = Conversation(fabric.host(MY_IP), layout["bastion_public"], 22)
        assert not fresh.connected, "a revoked rule still let a new connection in"
        fresh.close()
    finally:
        held.close()
        listener.stop()
        ec2.authorize_security_group_ingress(GroupId=layout["bastion_sg"], IpPermissions=perm)
        fabric.settle()
    assert connects(fabric.host(MY_IP), bastion, layout["bastion_public"], 22)


def test_an_acl_without_ephemeral_egress_breaks_the_return_path_and_cuts_live_connections(fabric, layout):
    ec2, bastion = fabric.ec2, fabric.ns_of_instance(layout["bastion"])
    acl = ec2.create_network_acl(VpcId=layout["vpc"])["NetworkAcl"]["NetworkAclId"]
    for egress, ports in ((False, (22, 22)), (True, (1024, 65535))):
        ec2.create_network_acl_entry(NetworkAclId=acl, RuleNumber=100, Protocol="6", RuleAction="allow",
                                     Egress=egress, CidrBlock="0.0.0.0/0", PortRange={"From": ports[0], "To": ports[1]})
    assoc = ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": [layout["public"]]}])
    old = next(a for a in assoc["NetworkAcls"][0]["Associations"] if a["SubnetId"] == layout["public"])
    new_assoc = ec2.replace_network_acl_association(AssociationId=old["NetworkAclAssociationId"], NetworkAclId=acl)
    try:
        fabric.settle()
        listener = Listener(bastion, 22)
        held = Conversation(fabric.host(MY_IP), layout["bastion_public"], 22)
        assert held.connected and held.say()
        ec2.delete_network_acl_entry(NetworkAclId=acl, RuleNumber=100, Egress=True)
        fabric.settle()
        assert not held.say(), "an ACL change left a live connection standing (ACLs are stateless)"
        held.close()
        listener.stop()
        assert not connects(fabric.host(MY_IP), bastion, layout["bastion_public"], 22)
    finally:
        ec2.replace_network_acl_association(AssociationId=new_assoc["NewAssociationId"], NetworkAclId=old["NetworkAclId"])
        fabric.settle()
    assert connects(fabric.host(MY_IP), bastion, layout["bastion_public"], 22)


def test_peering_does_not_transit_and_a_route_to_a_deleted_peering_is_a_blackhole(fabric, layout):
    ec2 = fabric.ec2
    vpcs, enis = [], []
    for i in (1, 2, 3):
        v = ec2.create_vpc(CidrBlock=f"10.{i}0.0.0/16")["Vpc"]["VpcId"]
        s = ec2.create_subnet(VpcId=v, CidrBlock=f"10.{i}0.1.0/24")["Subnet"]["SubnetId"]
        g = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [v]}])["SecurityGroups"][0]["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=g, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 5000, "ToPort": 5000, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}])
        e = ec2.create_network_interface(SubnetId=s, Groups=[g])["NetworkInterface"]
        vpcs.append(v)
        enis.append((f"{fabric.prefix}-e-{e['NetworkInterfaceId']}", e["PrivateIpAddress"]))
    a, b, c = vpcs
    ab = ec2.create_vpc_peering_connection(VpcId=a, PeerVpcId=b)["VpcPeeringConnection"]["VpcPeeringConnectionId"]
    bc = ec2.create_vpc_peering_connection(VpcId=b, PeerVpcId=c)["VpcPeeringConnection"]["VpcPeeringConnectionId"]
    for p in (ab, bc):
        ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=p)
    main = lambda v: ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [v]}, {"Name": "association.main", "Values": ["true"]}])["RouteTables"][0]["RouteTableId"]  # noqa: E731
    ec2.create_route(RouteTableId=main(a), DestinationCidrBlock="10.20.0.0/16", VpcPeeringConnectionId=ab)
    # A tries to reach C through B: the route exists, the peering will not carry it.
    ec2.create_route(RouteTableId=main(a), DestinationCidrBlock="10.30.0.0/16", VpcPeeringConnectionId=ab)
    ec2.create_route(RouteTableId=main(b), DestinationCidrBlock="10.10.0.0/16", VpcPeeringConnectionId=ab)
    ec2.create_route(RouteTableId=main(b), DestinationCidrBlock="10.30.0.0/16", VpcPeeringConnectionId=bc)
    ec2.create_route(RouteTableId=main(c), DestinationCidrBlock="10.10.0.0/16", VpcPeeringConnectionId=bc)
    ec2.create_route(RouteTableId=main(c), DestinationCidrBlock="10.20.0.0/16", VpcPeeringConnectionId=bc)
    fabric.settle()
    (na, ipa), (nb, ipb), (nc, ipc) = enis
    assert connects(na, nb, ipb, 5000)
    assert connects(nb, nc, ipc, 5000)
    assert not connects(na, nc, ipc, 5000), "peering carried traffic on to a third VPC"
    ec2.delete_vpc_peering_connection(VpcPeeringConnectionId=ab)
    fabric.settle()
    routes = ec2.describe_route_tables(RouteTableIds=[main(a)])["RouteTables"][0]["Routes"]
    assert any(r.get("VpcPeeringConnectionId") == ab and r["State"] == "blackhole" for r in routes)
    assert not connects(na, nb, ipb, 5000), "a blackhole route still carried traffic"


def test_the_host_reaches_public_addresses_through_one_link(fabric, layout):
    ec2, bastion = fabric.ec2, fabric.ns_of_instance(layout["bastion"])
    perm = [{"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "IpRanges": [{"CidrIp": "192.0.2.1/32"}]}]
    ec2.authorize_security_group_ingress(GroupId=layout["bastion_sg"], IpPermissions=perm)
    fabric.settle()
    listener = Listener(bastion, 8080)
    c = Conversation(None, layout["bastion_public"], 8080)
    assert c.connected and c.say()
    c.close()
    assert listener.peers() == ["192.0.2.1"]
    # One route on the host: the public pool, through kumori's link, and nothing else.
    routes = subprocess.run(["ip", "-4", "route", "show", "dev", f"{fabric.prefix}-host"], capture_output=True, text=True).stdout
    assert routes.split() [:1] == ["198.18.0.0/15"] and len(routes.strip().splitlines()) == 1, routes


def test_first_server_in_the_default_vpc_times_out_until_its_group_allows_my_ip(fabric):
    ec2 = fabric.ec2
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    # No subnet named: the default VPC, a public address by its subnet's default, the
    # default group.
    first, second = (ec2.run_instances(ImageId=ami, InstanceType="t2.micro", MinCount=1, MaxCount=1)["Instances"][0]
                     for _ in range(2))
    described = ec2.describe_instances(InstanceIds=[first["InstanceId"]])["Reservations"][0]["Instances"][0]
    public, group = described["PublicIpAddress"], described["SecurityGroups"][0]["GroupId"]
    fabric.settle()
    ns = fabric.ns_of_instance(first["InstanceId"])
    assert not connects(fabric.host(MY_IP), ns, public, 22), "ssh got in with no rule allowing it"
    # The default group lets its members talk to each other, on any port.
    assert connects(fabric.ns_of_instance(second["InstanceId"]), ns, first["PrivateIpAddress"], 22)
    mine = ec2.create_security_group(GroupName="ssh-from-me", Description="ssh from my IP",
                                     VpcId=described["VpcId"])["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=mine, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": f"{MY_IP}/32"}]}])
    # A running instance's groups change at once.
    ec2.modify_instance_attribute(InstanceId=first["InstanceId"], Groups=[group, mine])
    fabric.settle()
    assert connects(fabric.host(MY_IP), ns, public, 22)
    assert not connects(fabric.host(STRANGER), ns, public, 22)


def test_a_restart_rebuilds_the_fabric_and_a_clean_stop_leaves_nothing(fabric, layout):
    prefix = fabric.prefix
    before = namespaces(prefix)
    assert before and host_link_exists(prefix)
    fabric.srv.kill()  # no clean shutdown: the kernel keeps what it had
    assert namespaces(prefix) == before
    fabric.srv.start()
    fabric.settle(timeout=20)
    assert namespaces(prefix) == before
    assert connects(fabric.host(MY_IP), fabric.ns_of_instance(layout["bastion"]), layout["bastion_public"], 22)
    assert fabric.srv.stop() == 0
    assert namespaces(prefix) == [] and not host_link_exists(prefix)
    fabric.srv.start()  # for the module's teardown
