"""ELBv2: load balancers, target groups, listeners and rules as AWS answers them, and the real
proxy behind every listener: requests reach local HTTP servers registered as `ip` targets,
rules route them, health checks take a dead server out of rotation."""
import http.client
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from support import client, expect_error, free_port, http_json


@pytest.fixture
def elb(endpoint):
    return client("elbv2", endpoint)


@pytest.fixture
def net(ec2):
    """A VPC with an internet gateway and a subnet in each of two zones."""
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"us-east-1{z}")["Subnet"]["SubnetId"]
        for i, z in ((1, "a"), (2, "b"))
    ]
    sg = ec2.create_security_group(GroupName="web-lb", Description="lb", VpcId=vpc)["GroupId"]
    return {"vpc": vpc, "subnets": subnets, "sg": sg}


class Backend:
    """A local HTTP server that says who it is and what it was sent."""

    def __init__(self, name: str):
        self.name = name
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                outer.connections.append(self.connection)

            def do_GET(self):
                body = json.dumps({
                    "server": outer.name,
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                }).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.connections: list[socket.socket] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        """Dies as a process does: no more connections, and the open keep-alive ones
        (the load balancer's pooled connections among them) closed too."""
        self.server.shutdown()
        self.server.server_close()
        for c in self.connections:
            try:
                c.shutdown(socket.SHUT_RDWR)
                c.close()
            except OSError:
                pass


@pytest.fixture
def backends():
    started = []

    def make(name):
        b = Backend(name)
        started.append(b)
        return b

    yield make
    for b in started:
        try:
            b.stop()
        except OSError:
            pass


def get(port: int, path: str = "/", headers: dict | None = None):
    """One GET through the proxy, without following redirects."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path, headers=headers or {})
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, body


def listener_address(endpoint: str, listener_arn: str, timeout: float = 15.0) -> int:
    """The port the listener really listens on (its own unless that one was taken)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        shown, _ = http_json(endpoint, "GET", "/_kumori/load-balancers")
        for l in shown["Listeners"]:
            if l["listener"] == listener_arn:
                return int(l["address"].rsplit(":", 1)[1])
        time.sleep(0.2)
    raise AssertionError(f"listener {listener_arn} never started: {shown}")


def wait_for(what, check, timeout: float = 40.0, every: float = 0.5):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}; last saw {last!r}")


def states(elb, tg) -> dict:
    return {
        d["Target"]["Port"]: d["TargetHealth"]["State"]
        for d in elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
    }


def test_load_balancer_lifecycle_and_what_aws_refuses(elb, ec2, net):
    with expect_error("ValidationError", 400):
        elb.create_load_balancer(Name="one-zone", Subnets=net["subnets"][:1])
    other = ec2.create_subnet(VpcId=net["vpc"], CidrBlock="10.0.3.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    with expect_error("InvalidConfigurationRequest"):
        elb.create_load_balancer(Name="same-zone", Subnets=[net["subnets"][0], other])
    with expect_error("ValidationError"):
        elb.create_load_balancer(Name="x" * 33, Subnets=net["subnets"])
    with expect_error("SubnetNotFound"):
        elb.create_load_balancer(Name="ghost", Subnets=["subnet-0123456789abcdef0", net["subnets"][0]])

    lb = elb.create_load_balancer(
        Name="web", Subnets=net["subnets"], SecurityGroups=[net["sg"]],
        Tags=[{"Key": "team", "Value": "web"}],
    )["LoadBalancers"][0]
    arn = lb["LoadBalancerArn"]
    assert arn.startswith("arn:aws:elasticloadbalancing:us-east-1:") and ":loadbalancer/app/web/" in arn
    assert lb["State"]["Code"] == "provisioning"
    assert lb["Type"] == "application" and lb["Scheme"] == "internet-facing"
    assert lb["DNSName"].startswith("web-") and lb["DNSName"].endswith(".us-east-1.elb.amazonaws.com")
    assert lb["CanonicalHostedZoneId"] == "Z35SXDOTRQ7X7K"
    assert sorted(z["ZoneName"] for z in lb["AvailabilityZones"]) == ["us-east-1a", "us-east-1b"]
    assert lb["SecurityGroups"] == [net["sg"]]
    # The waiter AWS's tools use: provisioning, then active.
    elb.get_waiter("load_balancer_available").wait(LoadBalancerArns=[arn], WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    # Its nodes are interfaces in its subnets, as AWS's are.
    enis = ec2.describe_network_interfaces(Filters=[{"Name": "vpc-id", "Values": [net["vpc"]]}])["NetworkInterfaces"]
    mine = [e for e in enis if e["Description"].startswith("ELB app/web/")]
    assert sorted(e["SubnetId"] for e in mine) == sorted(net["subnets"])

    # The same request again is the same load balancer; a different one with its name is refused.
    again = elb.create_load_balancer(Name="web", Subnets=net["subnets"], SecurityGroups=[net["sg"]])
    assert again["LoadBalancers"][0]["LoadBalancerArn"] == arn
    with expect_error("DuplicateLoadBalancerName"):
        elb.create_load_balancer(Name="web", Subnets=net["subnets"], Scheme="internal")

    with expect_error("LoadBalancerNotFound"):
        elb.describe_load_balancers(Names=["nope"])
    assert [l["LoadBalancerName"] for l in elb.describe_load_balancers(Names=["web"])["LoadBalancers"]] == ["web"]
    tags = elb.describe_tags(ResourceArns=[arn])["TagDescriptions"][0]["Tags"]
    assert tags == [{"Key": "team", "Value": "web"}]

    attrs = {a["Key"]: a["Value"] for a in elb.describe_load_balancer_attributes(LoadBalancerArn=arn)["Attributes"]}
    assert attrs["idle_timeout.timeout_seconds"] == "60"
    assert attrs["deletion_protection.enabled"] == "false"
    assert attrs["routing.http2.enabled"] == "true"
    elb.modify_load_balancer_attributes(
        LoadBalancerArn=arn, Attributes=[{"Key": "deletion_protection.enabled", "Value": "true"}]
    )
    with expect_error("OperationNotPermitted"):
        elb.delete_load_balancer(LoadBalancerArn=arn)
    with expect_error("ValidationError"):
        elb.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=[{"Key": "no.such", "Value": "1"}])
    elb.modify_load_balancer_attributes(
        LoadBalancerArn=arn, Attributes=[{"Key": "deletion_protection.enabled", "Value": "false"}]
    )
    elb.delete_load_balancer(LoadBalancerArn=arn)
    assert elb.describe_load_balancers()["LoadBalancers"] == []
    enis = ec2.describe_network_interfaces(Filters=[{"Name": "vpc-id", "Values": [net["vpc"]]}])["NetworkInterfaces"]
    assert not [e for e in enis if e["Description"].startswith("ELB ")]
    # Deleting what is gone succeeds, as AWS's does.
    elb.delete_load_balancer(LoadBalancerArn=arn)


def test_target_group_defaults_follow_the_protocol(elb, net):
    http_tg = elb.create_target_group(Name="web", Protocol="HTTP", Port=80, VpcId=net["vpc"])["TargetGroups"][0]
    assert http_tg["HealthCheckProtocol"] == "HTTP"
    assert http_tg["HealthCheckPort"] == "traffic-port"
    assert http_tg["HealthCheckPath"] == "/"
    assert (http_tg["HealthCheckIntervalSeconds"], http_tg["HealthCheckTimeoutSeconds"]) == (30, 5)
    assert (http_tg["HealthyThresholdCount"], http_tg["UnhealthyThresholdCount"]) == (5, 2)
    assert http_tg["Matcher"] == {"HttpCode": "200"}
    assert http_tg["TargetType"] == "instance" and http_tg["ProtocolVersion"] == "HTTP1"
    assert http_tg["LoadBalancerArns"] == []
    tcp_tg = elb.create_target_group(Name="db", Protocol="TCP", Port=5432, VpcId=net["vpc"], TargetType="ip")["TargetGroups"][0]
    assert tcp_tg["HealthCheckProtocol"] == "TCP" and tcp_tg["HealthCheckTimeoutSeconds"] == 10
    assert "HealthCheckPath" not in tcp_tg and "Matcher" not in tcp_tg

    attrs = {a["Key"]: a["Value"] for a in elb.describe_target_group_attributes(TargetGroupArn=http_tg["TargetGroupArn"])["Attributes"]}
    assert attrs["deregistration_delay.timeout_seconds"] == "300"
    assert attrs["stickiness.type"] == "lb_cookie" and attrs["load_balancing.algorithm.type"] == "round_robin"
    with expect_error("ValidationError"):
        elb.create_target_group(Name="bad-hc", Protocol="HTTP", Port=80, VpcId=net["vpc"],
                                HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=5)
    with expect_error("DuplicateTargetGroupName"):
        elb.create_target_group(Name="web", Protocol="HTTP", Port=8080, VpcId=net["vpc"])
    with expect_error("TargetGroupNotFound"):
        elb.describe_target_groups(Names=["nope"])
    with expect_error("InvalidTarget"):
        elb.register_targets(TargetGroupArn=http_tg["TargetGroupArn"], Targets=[{"Id": "i-0123456789abcdef0"}])

    # In use by a listener, a group cannot go.
    lb = elb.create_load_balancer(Name="web", Subnets=net["subnets"])["LoadBalancers"][0]["LoadBalancerArn"]
    elb.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=free_port(),
                        DefaultActions=[{"Type": "forward", "TargetGroupArn": http_tg["TargetGroupArn"]}])
    with expect_error("ResourceInUse"):
        elb.delete_target_group(TargetGroupArn=http_tg["TargetGroupArn"])
    assert elb.describe_target_groups(LoadBalancerArn=lb)["TargetGroups"][0]["LoadBalancerArns"] == [lb]
    # An ALB cannot forward to a TCP group.
    with expect_error("IncompatibleProtocols"):
        elb.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=free_port(),
                            DefaultActions=[{"Type": "forward", "TargetGroupArn": tcp_tg["TargetGroupArn"]}])
    elb.delete_load_balancer(LoadBalancerArn=lb)
    elb.delete_target_group(TargetGroupArn=http_tg["TargetGroupArn"])


def make_group(elb, net, name, *ports):
    tg = elb.create_target_group(
        Name=name, Protocol="HTTP", Port=80, VpcId=net["vpc"], TargetType="ip",
        HealthCheckPath="/health", HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
        HealthyThresholdCount=2, UnhealthyThresholdCount=2,
    )["TargetGroups"][0]["TargetGroupArn"]
    if ports:
        elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": "127.0.0.1", "Port": p} for p in ports])
    return tg


def test_an_alb_in_front_of_local_servers_routes_balances_and_fails_over(elb, endpoint, net, backends):
    a, b, c = backends("a"), backends("b"), backends("c")
    web = make_group(elb, net, "web", a.port, b.port)
    api = make_group(elb, net, "api", c.port)
    empty = make_group(elb, net, "empty")
    # Registered, but no listener uses the group yet.
    assert set(states(elb, web).values()) == {"unused"}

    lb = elb.create_load_balancer(Name="front", Subnets=net["subnets"], SecurityGroups=[net["sg"]])["LoadBalancers"][0]["LoadBalancerArn"]
    listener = elb.create_listener(
        LoadBalancerArn=lb, Protocol="HTTP", Port=free_port(),
        DefaultActions=[{"Type": "forward", "TargetGroupArn": web}],
    )["Listeners"][0]["ListenerArn"]
    rule = lambda prio, conditions, action: elb.create_rule(
        ListenerArn=listener, Priority=prio, Conditions=conditions, Actions=[action])["Rules"][0]
    rule(10, [{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/api/*"]}}],
         {"Type": "forward", "TargetGroupArn": api})
    rule(20, [{"Field": "path-pattern", "Values": ["/maintenance"]}],
         {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "503", "ContentType": "text/plain", "MessageBody": "back soon"}})
    rule(30, [{"Field": "path-pattern", "Values": ["/old/*"]}],
         {"Type": "redirect", "RedirectConfig": {"Path": "/new/#{path}", "StatusCode": "HTTP_301"}})
    rule(40, [{"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-Beta", "Values": ["yes"]}}],
         {"Type": "forward", "TargetGroupArn": empty})
    with expect_error("PriorityInUse"):
        rule(10, [{"Field": "path-pattern", "Values": ["/x"]}], {"Type": "forward", "TargetGroupArn": api})
    rules = elb.describe_rules(ListenerArn=listener)["Rules"]
    assert [r["Priority"] for r in rules] == ["10", "20", "30", "40", "default"]
    assert rules[-1]["IsDefault"] is True

    port = listener_address(endpoint, listener)
    # Health checks bring the targets from initial to healthy.
    wait_for("healthy targets", lambda: set(states(elb, web).values()) == {"healthy"})

    seen = [json.loads(get(port, "/")[2])["server"] for _ in range(6)]
    assert seen == ["a", "b"] * 3 or seen == ["b", "a"] * 3, seen
    status, _, body = get(port, "/api/users?id=3")
    assert status == 200 and json.loads(body)["server"] == "c"
    assert json.loads(body)["path"] == "/api/users?id=3"
    headers = json.loads(body)["headers"]
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-port"] == str(elb.describe_listeners(ListenerArns=[listener])["Listeners"][0]["Port"])
    assert headers["x-amzn-trace-id"].startswith("Root=1-")

    status, h, body = get(port, "/maintenance")
    assert (status, body, h["content-type"]) == (503, b"back soon", "text/plain")
    status, h, _ = get(port, "/old/page?q=1", headers={"Host": "shop.example.com"})
    assert status == 301
    assert h["location"] == "http://shop.example.com:%d/new/old/page?q=1" % elb.describe_listeners(ListenerArns=[listener])["Listeners"][0]["Port"]
    # A group with no targets answers 503, as ALB does.
    status, h, _ = get(port, "/", headers={"X-Beta": "yes"})
    assert status == 503 and h["server"] == "awselb/2.0"

    # A server dies: its health checks fail and all traffic goes to the other.
    a.stop()
    wait_for("a unhealthy", lambda: states(elb, web).get(a.port) == "unhealthy")
    reason = [d["TargetHealth"] for d in elb.describe_target_health(TargetGroupArn=web)["TargetHealthDescriptions"]
              if d["Target"]["Port"] == a.port][0]
    assert reason["Reason"] in ("Target.FailedHealthChecks", "Target.Timeout")
    assert {json.loads(get(port, "/")[2])["server"] for _ in range(6)} == {"b"}

    # Deregistered targets drain.
    elb.deregister_targets(TargetGroupArn=web, Targets=[{"Id": "127.0.0.1", "Port": b.port}])
    assert states(elb, web)[b.port] == "draining"
    elb.delete_load_balancer(LoadBalancerArn=lb)
    # Its listener is gone with it.
    wait_for("listener closed", lambda: not any(
        l["listener"] == listener for l in http_json(endpoint, "GET", "/_kumori/load-balancers")[0]["Listeners"]))


def test_a_failing_target_is_a_502_and_a_wrong_health_code_is_named(elb, endpoint, net, backends):
    ok = backends("ok")
    tg = elb.create_target_group(
        Name="strict", Protocol="HTTP", Port=80, VpcId=net["vpc"], TargetType="ip",
        HealthCheckPath="/health", HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
        HealthyThresholdCount=2, UnhealthyThresholdCount=2, Matcher={"HttpCode": "204"},
    )["TargetGroups"][0]["TargetGroupArn"]
    dead = free_port()
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": "127.0.0.1", "Port": ok.port}, {"Id": "127.0.0.1", "Port": dead}])
    lb = elb.create_load_balancer(Name="strict", Subnets=net["subnets"])["LoadBalancers"][0]["LoadBalancerArn"]
    listener = elb.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=free_port(),
                                   DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])["Listeners"][0]["ListenerArn"]
    port = listener_address(endpoint, listener)
    wait_for("both unhealthy", lambda: set(states(elb, tg).values()) == {"unhealthy"})
    health = {d["Target"]["Port"]: d["TargetHealth"] for d in elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]}
    assert health[ok.port]["Reason"] == "Target.ResponseCodeMismatch"
    assert health[ok.port]["Description"] == "Health checks failed with these codes: [200]"
    assert health[dead]["Reason"] == "Target.FailedHealthChecks"
    # Every target unhealthy: ELB fails open and sends to all of them; the dead one is a 502.
    codes = sorted(get(port, "/")[0] for _ in range(4))
    assert codes == [200, 200, 502, 502]


def test_a_network_load_balancer_forwards_tcp(elb, endpoint, net):
    echo = socket.socket()
    echo.bind(("127.0.0.1", 0))
    echo.listen()

    def serve():
        while True:
            try:
                conn, _ = echo.accept()
            except OSError:
                return
            with conn:
                data = conn.recv(100)
                conn.sendall(b"echo:" + data)

    threading.Thread(target=serve, daemon=True).start()
    try:
        lb = elb.create_load_balancer(Name="tcp", Type="network", Subnets=net["subnets"][:1])["LoadBalancers"][0]
        assert lb["Type"] == "network" and ".elb.us-east-1.amazonaws.com" in lb["DNSName"]
        tg = elb.create_target_group(Name="tcp", Protocol="TCP", Port=9, VpcId=net["vpc"], TargetType="ip",
                                     HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
                                     HealthyThresholdCount=2)["TargetGroups"][0]["TargetGroupArn"]
        elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": "127.0.0.1", "Port": echo.getsockname()[1]}])
        with expect_error("UnsupportedProtocol"):
            elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                                DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
        listener = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="TCP", Port=free_port(),
                                       DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])["Listeners"][0]["ListenerArn"]
        port = listener_address(endpoint, listener)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"hello")
            assert s.recv(100) == b"echo:hello"
        wait_for("tcp target healthy", lambda: set(states(elb, tg).values()) == {"healthy"}, timeout=20)
    finally:
        echo.close()


def test_reachability_follows_the_internet_through_an_alb_to_its_targets(elb, ec2, endpoint, net):
    """internet -> ALB (its security group on the way in) -> targets (theirs on the way on)."""
    vpc, subnets, lb_sg = net["vpc"], net["subnets"], net["sg"]
    igw = ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc]}])["InternetGateways"][0]["InternetGatewayId"]
    rtb = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    for s in subnets:
        ec2.associate_route_table(RouteTableId=rtb, SubnetId=s)
    web_sg = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc)["GroupId"]
    image = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "architecture", "Values": ["x86_64"]}])["Images"][0]["ImageId"]
    web = ec2.run_instances(ImageId=image, InstanceType="t3.micro", MinCount=1, MaxCount=1, SubnetId=subnets[0],
                            SecurityGroupIds=[web_sg])["Instances"][0]["InstanceId"]
    lb = elb.create_load_balancer(Name="front", Subnets=subnets, SecurityGroups=[lb_sg])["LoadBalancers"][0]["LoadBalancerArn"]
    # The load balancer's nodes carry its group and, facing the internet, public addresses.
    nodes = [e for e in ec2.describe_network_interfaces(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["NetworkInterfaces"]
             if e["Description"].startswith("ELB app/front/")]
    assert len(nodes) == 2 and all(n["Groups"][0]["GroupId"] == lb_sg for n in nodes)
    assert all(n.get("Association", {}).get("PublicIp") for n in nodes)
    with expect_error("DependencyViolation"):
        ec2.delete_security_group(GroupId=lb_sg)
    tg = elb.create_target_group(Name="web", Protocol="HTTP", Port=8080, VpcId=vpc)["TargetGroups"][0]["TargetGroupArn"]
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": web}])
    elb.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=80, DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])

    def ask(port=80):
        status, _, body = http_post(endpoint, {"from": "203.0.113.5", "to": "front", "port": port})
        assert status == 200, body
        return json.loads(body)

    # Nothing lets the internet in yet: the ALB's group is empty.
    answer = ask()
    assert answer["reachable"] is False and "no node of the load balancer lets it in" in answer["text"]
    ec2.authorize_security_group_ingress(GroupId=lb_sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    # In, but the web tier does not take traffic from the ALB.
    answer = ask()
    assert answer["reachable"] is False and f"{web}:8080  blocked" in answer["text"], answer["text"]
    ec2.authorize_security_group_ingress(GroupId=web_sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "UserIdGroupPairs": [{"GroupId": lb_sg}]}])
    answer = ask()
    assert answer["reachable"] is True and f"{web}:8080  reachable" in answer["text"], answer["text"]
    # No listener on the port: AWS's explanation code.
    assert "ELBV2_LISTENERS_MISMATCH" in ask(443)["text"]


def http_post(endpoint, question):
    from support import http
    return http(endpoint, "POST", "/_kumori/reach", body=json.dumps(question).encode(),
                headers={"Content-Type": "application/json"})


def test_without_a_data_plane_only_loopback_targets_are_contacted(elb, endpoint, net):
    """A target in the VPC has nothing behind it without --dataplane, and kumori sends
    nothing from this machine to such an address: its checks fail and say why, and a
    request that fails open to it is a 502."""
    tg = make_group(elb, net, "vpc-only")
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": "10.0.1.10", "Port": 80}])
    lb = elb.create_load_balancer(Name="vpc-only", Subnets=net["subnets"])["LoadBalancers"][0]["LoadBalancerArn"]
    listener = elb.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=free_port(),
                                   DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])["Listeners"][0]["ListenerArn"]
    port = listener_address(endpoint, listener)
    wait_for("unhealthy", lambda: states(elb, tg).get(80) == "unhealthy")
    health = elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"][0]["TargetHealth"]
    assert health["Reason"] == "Target.FailedHealthChecks" and "--dataplane" in health["Description"]
    assert get(port, "/")[0] == 502
