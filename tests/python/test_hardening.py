"""What an attacker on the same machine tries, and what must not happen: a request that
crashes the server, a reset from a web page or an unauthenticated caller, an instance's role
credentials read by someone who did not launch it, slow clients holding the server, a filter
that starves it — and the AWS answers found on the way (400s instead of 500s, bounds)."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from support import BACKEND, client, expect_error, http

ROOT_KEY, ROOT_SECRET = "AKIAKUMORIROOTHARDEN", "kumori-root-secret-for-hardening-tests-00"
ROOT_ENV = {"KUMORI_ROOT_ACCESS_KEY_ID": ROOT_KEY, "KUMORI_ROOT_SECRET_ACCESS_KEY": ROOT_SECRET}


def raw(endpoint, method, path, body=None, headers=None, timeout=10):
    req = urllib.request.Request(endpoint + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def signed(endpoint, method, path, key, secret, body=b"", service="ec2"):
    req = AWSRequest(method=method, url=endpoint + path, data=body,
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    SigV4Auth(Credentials(key, secret), service, "us-east-1").add_auth(req)
    return raw(endpoint, method, path, body or None, dict(req.headers.items()))


def alive(endpoint):
    status, body = raw(endpoint, "GET", "/_kumori/health")
    return status == 200 and '"ec2"' in body


@pytest.fixture(scope="module")
def enforced(tmp_path_factory):
    from support import KumoriServer
    srv = KumoriServer(state_dir=tmp_path_factory.mktemp("hardening") / "state",
                       extra_args=["--auth", "enforce"], env=ROOT_ENV).start()
    yield srv
    srv.stop()


# --- one request must never take the process down ---------------------------------------

def deep_query_key():
    return ".".join(["A"] * 15000) + "=x"


def deep_xml():
    return b"<a>" * 50000 + b"</a>" * 50000


def test_deeply_nested_query_keys_and_xml_are_refused_not_fatal(endpoint):
    status, body = raw(endpoint, "GET", "/?Action=DescribeVpcs&Version=2016-11-15&" + deep_query_key())
    assert status == 404 and "<Code>MalformedQueryString</Code>" in body, body[:300]
    status, body = raw(endpoint, "POST", "/", body=("Action=DescribeVpcs&Version=2016-11-15&" + deep_query_key()).encode(),
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 404 and "nests deeper than 32 levels" in body
    status, body = raw(endpoint, "POST", "/2013-04-01/hostedzone", body=deep_xml())
    assert status == 400 and "<Code>MalformedXML</Code>" in body, body[:300]
    assert alive(endpoint)


def test_hostile_requests_before_authentication_leave_an_enforcing_server_up(enforced):
    ep = enforced.endpoint
    status, _ = raw(ep, "GET", "/?Action=DescribeVpcs&Version=2016-11-15&" + deep_query_key())
    assert status in (400, 401, 403, 404)
    status, _ = raw(ep, "POST", "/2013-04-01/hostedzone", body=deep_xml())
    assert 400 <= status < 500
    assert alive(ep)


def test_an_oversized_body_gets_413_in_aws_envelope(endpoint):
    body = b"Action=DescribeVpcs&Version=2016-11-15&Junk=" + b"a" * (3 * 1024 * 1024)
    status, text = raw(endpoint, "POST", "/", body=body,
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 413
    assert "<Code>RequestEntityTooLarge</Code>" in text and "2097152" in text


# --- kumori's own endpoints ------------------------------------------------------------------

def test_reset_refuses_other_origins_and_foreign_hosts_in_every_mode(endpoint, ec2):
    ec2.create_vpc(CidrBlock="10.1.0.0/16")
    # What a page on another site can send without a preflight.
    status, text = raw(endpoint, "POST", "/_kumori/reset", body=b"x",
                       headers={"Origin": "http://evil.example", "Content-Type": "text/plain"})
    assert status == 403 and "evil.example" in text
    status, _ = raw(endpoint, "POST", "/moto-api/reset", body=b"x",
                    headers={"Origin": "null", "Content-Type": "text/plain"})
    assert status == 403
    # DNS rebinding: the page's host name now points at 127.0.0.1.
    status, text = raw(endpoint, "GET", "/_kumori/health", headers={"Host": "evil.example:4566"})
    assert status == 403 and "--allowed-host" in text
    status, _ = raw(endpoint, "POST", "/_kumori/reset", body=b"", headers={"Host": "rebound.example"})
    assert status == 403
    assert [v for v in ec2.describe_vpcs()["Vpcs"] if v["CidrBlock"] == "10.1.0.0/16"], "nothing may be reset"
    # Loopback names and a same-origin console still work.
    status, _ = raw(endpoint, "GET", "/_kumori/health", headers={"Host": "localhost:4566"})
    assert status == 200
    status, _ = raw(endpoint, "POST", "/_kumori/reset", body=b"",
                    headers={"Origin": "http://localhost:8080"})
    assert status == 200


def test_allowed_host_serves_own_endpoints_under_that_name(spawn):
    srv = spawn(extra_args=["--allowed-host", "kumori.internal"])
    status, _ = raw(srv.endpoint, "GET", "/_kumori/health", headers={"Host": "kumori.internal:4566"})
    assert status == 200
    status, _ = raw(srv.endpoint, "GET", "/_kumori/health", headers={"Host": "other.internal"})
    assert status == 403


def test_health_does_not_say_where_state_lives(spawn, tmp_path):
    srv = spawn(state_dir=tmp_path / "secret-place")
    status, body = raw(srv.endpoint, "GET", "/_kumori/health")
    assert status == 200 and "secret-place" not in body and json.loads(body)["state"]["backend"] == BACKEND


def test_reset_under_enforce_needs_the_roots_signature(enforced):
    ep = enforced.endpoint
    root_ec2 = client("ec2", ep, key=ROOT_KEY, secret=ROOT_SECRET)
    vpc = root_ec2.create_vpc(CidrBlock="10.2.0.0/16")["Vpc"]["VpcId"]
    status, text = raw(ep, "POST", "/_kumori/reset", body=b"")
    assert status == 403 and "signed" in text
    status, _ = raw(ep, "POST", "/moto-api/reset", body=b"")
    assert status == 403
    # A signed request by a user who is not root.
    iam = client("iam", ep, key=ROOT_KEY, secret=ROOT_SECRET)
    iam.create_user(UserName="admin-not-root")
    iam.attach_user_policy(UserName="admin-not-root", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    k = iam.create_access_key(UserName="admin-not-root")["AccessKey"]
    status, text = signed(ep, "POST", "/_kumori/reset", k["AccessKeyId"], k["SecretAccessKey"])
    assert status == 403 and "admin-not-root" in text
    status, _ = signed(ep, "POST", "/_kumori/reset", ROOT_KEY, "wrong-secret")
    assert status == 403
    assert any(v["VpcId"] == vpc for v in root_ec2.describe_vpcs()["Vpcs"])
    # The root may; the root key survives (it is recreated from the environment at start,
    # and a reset keeps the deployment usable by its operator).
    status, text = signed(ep, "POST", "/_kumori/reset", ROOT_KEY, ROOT_SECRET)
    assert status == 200, text


# --- instance role credentials --------------------------------------------------------------

def imds_get(url, token=None):
    headers = {"X-aws-ec2-metadata-token": token} if token else {}
    return raw(url, "GET", "", headers=headers)


def test_only_the_launcher_can_act_as_an_instance(spawn, tmp_path):
    srv = spawn(state_dir=tmp_path / "state", extra_args=["--auth", "enforce"], env=ROOT_ENV)
    ep = srv.endpoint
    iam = client("iam", ep, key=ROOT_KEY, secret=ROOT_SECRET)
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
             "Principal": {"Service": "ec2.amazonaws.com"}}]}
    iam.create_role(RoleName="admin-role", AssumeRolePolicyDocument=json.dumps(trust))
    iam.attach_role_policy(RoleName="admin-role", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    iam.create_instance_profile(InstanceProfileName="admin-role")
    iam.add_role_to_instance_profile(InstanceProfileName="admin-role", RoleName="admin-role")
    keys = {}
    for name, policy in (("launcher", "AdministratorAccess"), ("reader", "AmazonEC2ReadOnlyAccess")):
        iam.create_user(UserName=name)
        iam.attach_user_policy(UserName=name, PolicyArn=f"arn:aws:iam::aws:policy/{policy}")
        k = iam.create_access_key(UserName=name)["AccessKey"]
        keys[name] = (k["AccessKeyId"], k["SecretAccessKey"])
    ec2 = client("ec2", ep, key=keys["launcher"][0], secret=keys["launcher"][1])
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    iid = ec2.run_instances(ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1,
                            IamInstanceProfile={"Name": "admin-role"})["Instances"][0]["InstanceId"]
    creds_path = "latest/meta-data/iam/security-credentials/admin-role"

    # Knowing the instance id is not enough, with or without a made-up secret.
    status, _ = imds_get(f"{ep}/_kumori/imds/{iid}/{creds_path}")
    assert status == 403
    status, _ = imds_get(f"{ep}/_kumori/imds/{iid}/{'0' * 64}/{creds_path}")
    assert status == 403
    # The read-only user can describe the instance but not obtain its endpoint.
    status, _ = signed(ep, "GET", f"/_kumori/imds-endpoint/{iid}", *keys["reader"])
    assert status == 404
    status, _ = raw(ep, "GET", f"/_kumori/imds-endpoint/{iid}")
    assert status == 403
    # The launcher can, and so can the root; both get the same endpoint.
    status, text = signed(ep, "GET", f"/_kumori/imds-endpoint/{iid}", *keys["launcher"])
    assert status == 200, text
    path = json.loads(text)["path"]
    status, text = signed(ep, "GET", f"/_kumori/imds-endpoint/{iid}", ROOT_KEY, ROOT_SECRET)
    assert json.loads(text)["path"] == path
    assert path.startswith(f"/_kumori/imds/{iid}/") and len(path.split("/")[4]) == 64
    # The operator's command prints it too, from the state the server keeps.
    import subprocess
    from support import kumori_bin
    out = subprocess.run([str(kumori_bin()), "imds-endpoint", iid, "--auth", "enforce",
                          "--endpoint", ep, *srv.state_args()],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and out.stdout.strip() == ep + path, out.stderr
    # Through it, IMDSv2 works as on AWS and the credentials are the role's.
    status, token = raw(ep, "PUT", path + "latest/api/token",
                        headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"})
    assert status == 200
    status, text = imds_get(ep + path + creds_path, token)
    assert status == 200 and json.loads(text)["AccessKeyId"].startswith("ASIA")


def test_imds_tokens_work_on_every_process_sharing_the_store(spawn, tmp_path, ):
    state = tmp_path / "state"
    a = spawn(state_dir=state)
    b = spawn(state_dir=state)
    ec2 = client("ec2", a.endpoint)
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    iid = ec2.run_instances(ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1,
                            MetadataOptions={"HttpTokens": "required"})["Instances"][0]["InstanceId"]
    status, token = raw(a.endpoint, "PUT", f"/_kumori/imds/{iid}/latest/api/token",
                        headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"})
    assert status == 200
    status, text = imds_get(f"{b.endpoint}/_kumori/imds/{iid}/latest/meta-data/instance-id", token)
    assert (status, text) == (200, iid)
    status, _ = imds_get(f"{b.endpoint}/_kumori/imds/{iid}/latest/meta-data/instance-id", token + "x")
    assert status == 401


# --- slow clients -------------------------------------------------------------------------------

def half_open(port, n):
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET /_kumori/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # never finished
        socks.append(s)
    return socks


def closed_by_server(s, within):
    """Whether the server let go within `within` s: EOF, an error page, or a reset."""
    s.settimeout(within)
    try:
        s.recv(4096)
        return True
    except socket.timeout:
        return False
    except OSError:
        return True


def test_half_open_connections_neither_block_others_nor_last(spawn):
    srv = spawn(extra_args=["--header-timeout", "2"])
    socks = half_open(srv.port, 300)
    try:
        t0 = time.monotonic()
        assert alive(srv.endpoint)
        assert time.monotonic() - t0 < 5, "a health check waited behind 300 slow clients"
        # Past the header deadline, the server has closed every one of them.
        time.sleep(2.5)
        assert all(closed_by_server(s, 3) for s in socks)
    finally:
        for s in socks:
            s.close()


def test_past_the_connection_cap_clients_get_a_clear_503(spawn):
    srv = spawn(extra_args=["--max-connections", "20", "--header-timeout", "30"])
    socks = half_open(srv.port, 20)
    try:
        time.sleep(0.3)
        status, text = raw(srv.endpoint, "GET", "/_kumori/health")
        assert status == 503 and "<Code>ServiceUnavailable</Code>" in text and "20 open connections" in text
    finally:
        for s in socks:
            s.close()
    time.sleep(0.5)
    assert alive(srv.endpoint)


# --- filters ---------------------------------------------------------------------------------------

def test_filters_are_capped_as_ec2_caps_them(endpoint, ec2):
    with expect_error("FilterLimitExceeded", 400):
        ec2.describe_instances(Filters=[{"Name": "private-ip-address", "Values": [f"10.0.0.{i}" for i in range(201)]}])
    with expect_error("FilterLimitExceeded", 400):
        ec2.describe_vpcs(Filters=[{"Name": "cidr", "Values": ["a"] * 150}, {"Name": "state", "Values": ["b"] * 51}])
    # A 1.8 MB filter value is refused at once rather than matched.
    body = urllib.parse.urlencode({"Action": "DescribeInstances", "Version": "2016-11-15",
                                   "Filter.1.Name": "private-ip-address", "Filter.1.Value.1": "1" * 1_800_000}).encode()
    t0 = time.monotonic()
    status, text = raw(endpoint, "POST", "/", body=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 400 and "<Code>InvalidParameterValue</Code>" in text and "1024" in text
    assert time.monotonic() - t0 < 10
    # 200 values still work.
    ec2.describe_instances(Filters=[{"Name": "private-ip-address", "Values": [f"10.0.0.{i}" for i in range(200)]}])


# --- AWS's answers -------------------------------------------------------------------------------

def form(endpoint, **params):
    body = urllib.parse.urlencode({"Version": "2016-11-15", **params}).encode()
    return raw(endpoint, "POST", "/", body=body, headers={"Content-Type": "application/x-www-form-urlencoded"})


def test_members_the_model_leaves_optional_but_ec2_needs_are_400s(endpoint):
    status, text = form(endpoint, Action="DescribeVpcs", **{"Filter.1.Value.1": "x"})
    assert status == 400 and "<Code>MissingParameter</Code>" in text and "Name" in text
    status, text = form(endpoint, Action="DescribeSubnets", **{"Filter.1.Name": "vpc-id"})
    assert status < 500, text
    status, text = form(endpoint, Action="CreateTags", **{"ResourceId.1": "vpc-12345678", "Tag.1.Value": "v"})
    assert 400 <= status < 500 and "InternalError" not in text, text


def test_describe_instances_pages_5_to_1000(ec2):
    for bad in (-1, 4, 1001, 10**9):
        with expect_error("InvalidParameterValue", 400):
            ec2.describe_instances(MaxResults=bad)
    ec2.describe_instances(MaxResults=5)
    with expect_error("InvalidParameterCombination", 400):
        ec2.describe_instances(InstanceIds=["i-0123456789abcdef0"], MaxResults=10)


def test_run_instances_defaults_to_m1_small(ec2):
    ami = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "architecture", "Values": ["x86_64"]}])["Images"][0]["ImageId"]
    i = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1)["Instances"][0]
    assert i["InstanceType"] == "m1.small"
    (t,) = ec2.describe_instance_types(InstanceTypes=["m1.small"])["InstanceTypes"]
    assert t["CurrentGeneration"] is False and t["MemoryInfo"]["SizeInMiB"] == 1740


def test_presigned_urls_live_at_most_a_week(enforced):
    ep = enforced.endpoint
    for expires, ok in ((604800, True), (604801, False)):
        req = AWSRequest(method="GET", url=f"{ep}/?Action=GetCallerIdentity&Version=2011-06-15")
        SigV4QueryAuth(Credentials(ROOT_KEY, ROOT_SECRET), "sts", "us-east-1", expires=expires).add_auth(req)
        status, text = raw(req.url, "GET", "")
        if ok:
            assert status == 200, text
        else:
            assert status in (400, 403) and "604800" in text, text
