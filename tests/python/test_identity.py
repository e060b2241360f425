"""Journey 3 of the scenarios: a root account hands out users, groups and keys; the CLI runs
with a low-privilege key; what its policies do not allow is refused. kumori runs with
`--auth enforce`, so every signature is checked and every action evaluated."""
import datetime
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from support import client, expect_error

ROOT_KEY, ROOT_SECRET = "AKIAKUMORIROOTTEST01", "kumori-root-secret-for-tests-only-000000"


@pytest.fixture
def enforced(spawn, tmp_path):
    srv = spawn(state_dir=tmp_path / "state", extra_args=["--auth", "enforce"],
                env={"KUMORI_ROOT_ACCESS_KEY_ID": ROOT_KEY, "KUMORI_ROOT_SECRET_ACCESS_KEY": ROOT_SECRET})
    return srv


def as_root(service, srv):
    return client(service, srv.endpoint, key=ROOT_KEY, secret=ROOT_SECRET)


def developers(srv):
    """Group `developers` with AmazonEC2FullAccess; users developer1..3, each with a key."""
    iam = as_root("iam", srv)
    iam.create_group(GroupName="developers")
    iam.attach_group_policy(GroupName="developers", PolicyArn="arn:aws:iam::aws:policy/AmazonEC2FullAccess")
    keys = {}
    for n in (1, 2, 3):
        name = f"developer{n}"
        iam.create_user(UserName=name)
        iam.add_user_to_group(GroupName="developers", UserName=name)
        k = iam.create_access_key(UserName=name)["AccessKey"]
        assert k["AccessKeyId"].startswith("AKIA") and len(k["AccessKeyId"]) == 20
        assert len(k["SecretAccessKey"]) == 40 and k["Status"] == "Active"
        keys[name] = (k["AccessKeyId"], k["SecretAccessKey"])
    return iam, keys


def cli(srv, tmp_path, key, secret, *args):
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "AWS_ACCESS_KEY_ID": key,
           "AWS_SECRET_ACCESS_KEY": secret, "AWS_EC2_METADATA_DISABLED": "true",
           "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}
    return subprocess.run([sys.executable, "-m", "awscli", *args, "--endpoint-url", srv.endpoint,
                           "--region", "us-east-1", "--output", "json"],
                          env=env, capture_output=True, text=True, timeout=60)


def test_developer_keys_can_use_ec2_and_nothing_else(enforced, tmp_path):
    iam, keys = developers(enforced)
    key, secret = keys["developer3"]
    ok = cli(enforced, tmp_path, key, secret, "ec2", "describe-instances")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["Reservations"] == []
    refused = cli(enforced, tmp_path, key, secret, "iam", "create-user", "--user-name", "intruder")
    assert refused.returncode != 0
    assert "AccessDenied" in refused.stderr
    assert "developer3 is not authorized to perform: iam:CreateUser" in refused.stderr
    with pytest.raises(Exception):
        iam.get_user(UserName="intruder")
    # Who am I: the user, by its unique id.
    me = client("sts", enforced.endpoint, key=key, secret=secret).get_caller_identity()
    assert me["Arn"].endswith(":user/developer3") and me["UserId"].startswith("AIDA")
    # The key's last use is recorded.
    used = iam.get_access_key_last_used(AccessKeyId=key)
    assert used["UserName"] == "developer3"
    assert used["AccessKeyLastUsed"]["ServiceName"] in ("ec2", "sts")


def test_an_explicit_deny_beats_an_allow(enforced):
    iam, keys = developers(enforced)
    iam.put_user_policy(UserName="developer2", PolicyName="no-terminate", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Action": "ec2:TerminateInstances", "Resource": "*"}]}))
    ec2_root = as_root("ec2", enforced)
    ami = ec2_root.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    i = ec2_root.run_instances(ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    ec2 = client("ec2", enforced.endpoint, key=keys["developer2"][0], secret=keys["developer2"][1])
    with expect_error("UnauthorizedOperation", 403) as err:
        ec2.terminate_instances(InstanceIds=[i])
    message = err.value.response["Error"]["Message"]
    assert "with an explicit deny" in message and "Encoded authorization failure message: " in message
    # STS explains the encoded message.
    encoded = message.split("Encoded authorization failure message: ")[1].strip()
    sts = as_root("sts", enforced)
    decoded = json.loads(sts.decode_authorization_message(EncodedMessage=encoded)["DecodedMessage"])
    assert decoded["allowed"] is False and decoded["explicitDeny"] is True
    assert decoded["context"]["action"] == "ec2:TerminateInstances"
    assert decoded["context"]["resource"].endswith(f":instance/{i}")
    # developer1, without the deny, may.
    ec2_1 = client("ec2", enforced.endpoint, key=keys["developer1"][0], secret=keys["developer1"][1])
    assert ec2_1.terminate_instances(InstanceIds=[i])["TerminatingInstances"][0]["InstanceId"] == i


def signed(srv, key, secret, body, when=None, tamper=False):
    """A raw STS GetCallerIdentity request signed by botocore (at `when`, or now)."""
    req = AWSRequest(method="POST", url=srv.endpoint + "/", data=body,
                     headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    auth = SigV4Auth(Credentials(key, secret), "sts", "us-east-1")
    if when is not None:
        # Sign as of `when`: botocore asks get_current_datetime for the signing time.
        import botocore.auth as ba
        real = ba.get_current_datetime
        ba.get_current_datetime = lambda: when
        try:
            auth.add_auth(req)
        finally:
            ba.get_current_datetime = real
    else:
        auth.add_auth(req)
    data = req.body if not tamper else body.replace("GetCallerIdentity", "GetCallerIdentitx")
    r = urllib.request.Request(srv.endpoint + "/", data=data.encode() if isinstance(data, str) else data,
                               headers=dict(req.headers.items()), method="POST")
    try:
        with urllib.request.urlopen(r, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_tampered_late_and_unknown_requests_are_refused(enforced):
    body = "Action=GetCallerIdentity&Version=2011-06-15"
    status, text = signed(enforced, ROOT_KEY, ROOT_SECRET, body)
    assert status == 200 and ":root</Arn>" in text
    status, text = signed(enforced, ROOT_KEY, ROOT_SECRET, body, tamper=True)
    assert status == 403 and "<Code>SignatureDoesNotMatch</Code>" in text
    late = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) - datetime.timedelta(minutes=20)
    status, text = signed(enforced, ROOT_KEY, ROOT_SECRET, body, when=late)
    assert status == 403 and "Signature expired" in text
    status, text = signed(enforced, "AKIAUNKNOWNKEY000000", ROOT_SECRET, body)
    assert status == 403 and "<Code>InvalidClientTokenId</Code>" in text
    status, text = signed(enforced, ROOT_KEY, "not-the-secret", body)
    assert status == 403 and "<Code>SignatureDoesNotMatch</Code>" in text
    # EC2 says it in its own words and envelope.
    ec2 = client("ec2", enforced.endpoint, key="AKIAUNKNOWNKEY000000", secret="x")
    with expect_error("AuthFailure", 401):
        ec2.describe_vpcs()
    # An unsigned request is refused outright.
    r = urllib.request.Request(enforced.endpoint + "/", data=body.encode(), method="POST",
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(r, timeout=10)
    assert e.value.code == 403 and b"MissingAuthenticationToken" in e.value.read()


def test_inactive_and_deleted_keys_stop_working(enforced):
    iam, keys = developers(enforced)
    key, secret = keys["developer1"]
    sts = client("sts", enforced.endpoint, key=key, secret=secret)
    assert sts.get_caller_identity()["Arn"].endswith("developer1")
    iam.update_access_key(UserName="developer1", AccessKeyId=key, Status="Inactive")
    with expect_error("InvalidClientTokenId", 403):
        sts.get_caller_identity()
    iam.update_access_key(UserName="developer1", AccessKeyId=key, Status="Active")
    assert sts.get_caller_identity()["Account"]
    iam.delete_access_key(UserName="developer1", AccessKeyId=key)
    with expect_error("InvalidClientTokenId", 403):
        sts.get_caller_identity()


def test_assumed_role_credentials_can_do_what_the_role_allows_and_nothing_else(enforced):
    iam, keys = developers(enforced)
    account = as_root("sts", enforced).get_caller_identity()["Account"]
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
             "Principal": {"AWS": f"arn:aws:iam::{account}:user/developer1"}}]}
    iam.create_role(RoleName="vpc-reader", AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(RoleName="vpc-reader", PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ec2:DescribeVpcs", "Resource": "*"}]}))
    # developer1 may assume it (its group policy does not grant sts:AssumeRole: allow it).
    iam.put_user_policy(UserName="developer1", PolicyName="assume", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}))
    iam.put_user_policy(UserName="developer2", PolicyName="assume", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}))
    role_arn = f"arn:aws:iam::{account}:role/vpc-reader"
    sts1 = client("sts", enforced.endpoint, key=keys["developer1"][0], secret=keys["developer1"][1])
    got = sts1.assume_role(RoleArn=role_arn, RoleSessionName="reading")
    c = got["Credentials"]
    assert c["AccessKeyId"].startswith("ASIA") and c["SessionToken"]
    assert got["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{account}:assumed-role/vpc-reader/reading"
    # The trust policy names developer1 only.
    sts2 = client("sts", enforced.endpoint, key=keys["developer2"][0], secret=keys["developer2"][1])
    with expect_error("AccessDenied", 403):
        sts2.assume_role(RoleArn=role_arn, RoleSessionName="nope")
    session = dict(key=c["AccessKeyId"], secret=c["SecretAccessKey"], token=c["SessionToken"])
    me = client("sts", enforced.endpoint, **session).get_caller_identity()
    assert me["Arn"].endswith("assumed-role/vpc-reader/reading") and me["UserId"].endswith(":reading")
    ec2 = client("ec2", enforced.endpoint, **session)
    assert isinstance(ec2.describe_vpcs()["Vpcs"], list)
    with expect_error("UnauthorizedOperation", 403):
        ec2.describe_instances()
    # Without its session token the key is not valid.
    with expect_error("AuthFailure", 401):
        client("ec2", enforced.endpoint, key=c["AccessKeyId"], secret=c["SecretAccessKey"]).describe_vpcs()
    # Durations are bounded by the role's maximum.
    with expect_error("ValidationError", 400):
        sts1.assume_role(RoleArn=role_arn, RoleSessionName="long", DurationSeconds=7200)


def test_instance_role_credentials_from_metadata_are_limited_to_the_role(enforced):
    iam = as_root("iam", enforced)
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
             "Principal": {"Service": "ec2.amazonaws.com"}}]}
    iam.create_role(RoleName="web", AssumeRolePolicyDocument=json.dumps(trust))
    iam.attach_role_policy(RoleName="web", PolicyArn="arn:aws:iam::aws:policy/AmazonEC2ReadOnlyAccess")
    iam.create_instance_profile(InstanceProfileName="web")
    iam.add_role_to_instance_profile(InstanceProfileName="web", RoleName="web")
    ec2_root = as_root("ec2", enforced)
    ami = ec2_root.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    i = ec2_root.run_instances(ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1,
                               IamInstanceProfile={"Name": "web"})["Instances"][0]["InstanceId"]
    # With authentication on, the metadata endpoint carries the instance's secret, which
    # its launcher (here the root) obtains by a signed request.
    req = AWSRequest(method="GET", url=f"{enforced.endpoint}/_kumori/imds-endpoint/{i}")
    SigV4Auth(Credentials(ROOT_KEY, ROOT_SECRET), "ec2", "us-east-1").add_auth(req)
    path = json.loads(urllib.request.urlopen(urllib.request.Request(
        req.url, headers=dict(req.headers.items())), timeout=10).read())["path"]
    base = f"{enforced.endpoint}{path}latest"
    token = urllib.request.urlopen(urllib.request.Request(
        f"{base}/api/token", method="PUT", headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"}), timeout=10).read().decode()
    creds = json.loads(urllib.request.urlopen(urllib.request.Request(
        f"{base}/meta-data/iam/security-credentials/web", headers={"X-aws-ec2-metadata-token": token}), timeout=10).read())
    session = dict(key=creds["AccessKeyId"], secret=creds["SecretAccessKey"], token=creds["Token"])
    ec2 = client("ec2", enforced.endpoint, **session)
    assert [r["Instances"][0]["InstanceId"] for r in ec2.describe_instances()["Reservations"]] == [i]
    with expect_error("UnauthorizedOperation", 403):
        ec2.create_vpc(CidrBlock="10.9.0.0/16")
    with expect_error("AccessDenied", 403):
        client("iam", enforced.endpoint, **session).list_users()


def test_verify_mode_checks_signatures_but_not_policies(spawn, tmp_path):
    srv = spawn(extra_args=["--auth", "verify"],
                env={"KUMORI_ROOT_ACCESS_KEY_ID": ROOT_KEY, "KUMORI_ROOT_SECRET_ACCESS_KEY": ROOT_SECRET})
    iam, keys = developers(srv)
    key, secret = keys["developer3"]
    # No policy lets developer3 create users; verify mode does not evaluate policies.
    client("iam", srv.endpoint, key=key, secret=secret).create_user(UserName="allowed-in-verify")
    with expect_error("SignatureDoesNotMatch", 403):
        client("iam", srv.endpoint, key=key, secret="wrong").list_users()
    with expect_error("InvalidClientTokenId", 403):
        client("iam", srv.endpoint, key="AKIANOSUCHKEY0000000", secret=secret).list_users()


def test_first_start_prints_a_root_credential_once(spawn, tmp_path):
    state = tmp_path / "state"
    srv = spawn(state_dir=state, extra_args=["--auth", "verify"])
    out = srv.output()
    key = out.split("AWS_ACCESS_KEY_ID=")[1].split()[0]
    secret = out.split("AWS_SECRET_ACCESS_KEY=")[1].split()[0]
    assert key.startswith("AKIA") and len(secret) == 40
    assert client("sts", srv.endpoint, key=key, secret=secret).get_caller_identity()["Arn"].endswith(":root")
    srv.stop()
    again = spawn(state_dir=state, extra_args=["--auth", "verify"])
    assert "AWS_SECRET_ACCESS_KEY=" not in again.output()
    assert client("sts", again.endpoint, key=key, secret=secret).get_caller_identity()["Arn"].endswith(":root")


def test_auth_off_still_names_known_keys(spawn):
    srv = spawn()
    iam = client("iam", srv.endpoint)
    iam.create_user(UserName="alice")
    k = iam.create_access_key(UserName="alice")["AccessKey"]
    # With authentication off any secret works, but the key still names its user.
    me = client("sts", srv.endpoint, key=k["AccessKeyId"], secret="anything").get_caller_identity()
    assert me["Arn"].endswith(":user/alice")
    assert client("sts", srv.endpoint).get_caller_identity()["Arn"].endswith(":root")


def test_conditions_on_source_ip_region_and_resource_tags(enforced):
    iam = as_root("iam", enforced)
    iam.create_user(UserName="owner")
    k = iam.create_access_key(UserName="owner")["AccessKey"]
    iam.put_user_policy(UserName="owner", PolicyName="scoped", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*",
             "Condition": {"StringEquals": {"aws:RequestedRegion": "us-east-1"}}},
            {"Effect": "Allow", "Action": "ec2:StopInstances", "Resource": "*",
             "Condition": {"StringEquals": {"ec2:ResourceTag/Owner": "${aws:username}"}}},
            {"Effect": "Deny", "Action": "*", "Resource": "*",
             "Condition": {"NotIpAddress": {"aws:SourceIp": ["127.0.0.0/8", "::1/128"]}}},
        ]}))
    ec2_root = as_root("ec2", enforced)
    ami = ec2_root.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    mine, theirs = [ec2_root.run_instances(
        ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Owner", "Value": owner}]}],
    )["Instances"][0]["InstanceId"] for owner in ("owner", "someone-else")]
    ec2 = client("ec2", enforced.endpoint, key=k["AccessKeyId"], secret=k["SecretAccessKey"])
    assert ec2.describe_instances()["Reservations"]
    with expect_error("UnauthorizedOperation", 403):
        client("ec2", enforced.endpoint, "eu-west-1", key=k["AccessKeyId"], secret=k["SecretAccessKey"]).describe_instances()
    assert ec2.stop_instances(InstanceIds=[mine])["StoppingInstances"][0]["InstanceId"] == mine
    with expect_error("UnauthorizedOperation", 403) as e:
        ec2.stop_instances(InstanceIds=[theirs])
    assert f"instance/{theirs}" in e.value.response["Error"]["Message"]


def test_a_presigned_url_is_checked_too(enforced):
    sts = as_root("sts", enforced)
    url = sts.generate_presigned_url("get_caller_identity", ExpiresIn=60, HttpMethod="GET")
    assert "X-Amz-Signature=" in url
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.status == 200 and b":root</Arn>" in r.read()
    tampered = url.replace("X-Amz-Expires=60", "X-Amz-Expires=6000")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(tampered, timeout=10)
    assert e.value.code == 403 and b"SignatureDoesNotMatch" in e.value.read()


def test_trust_policies_are_checked_as_iam_does(enforced):
    iam = as_root("iam", enforced)
    no_principal = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole"}]}
    with expect_error("MalformedPolicyDocument", 400):
        iam.create_role(RoleName="bad", AssumeRolePolicyDocument=json.dumps(no_principal))
    ok = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
          "Principal": {"Service": "ec2.amazonaws.com"}}]}
    iam.create_role(RoleName="good", AssumeRolePolicyDocument=json.dumps(ok))
    with expect_error("MalformedPolicyDocument", 400):
        iam.update_assume_role_policy(RoleName="good", PolicyDocument=json.dumps(no_principal))
    account = as_root("sts", enforced).get_caller_identity()["Account"]
    root_may = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                "Principal": {"AWS": f"arn:aws:iam::{account}:root"}}]}
    iam.update_assume_role_policy(RoleName="good", PolicyDocument=json.dumps(root_may))
    got = as_root("sts", enforced).assume_role(RoleArn=f"arn:aws:iam::{account}:role/good", RoleSessionName="ses")
    assert got["AssumedRoleUser"]["Arn"].endswith("assumed-role/good/ses")


def test_session_tokens_for_a_user(enforced):
    iam, keys = developers(enforced)
    key, secret = keys["developer1"]
    c = client("sts", enforced.endpoint, key=key, secret=secret).get_session_token(DurationSeconds=900)["Credentials"]
    assert c["AccessKeyId"].startswith("ASIA") and c["SessionToken"]
    session = dict(key=c["AccessKeyId"], secret=c["SecretAccessKey"], token=c["SessionToken"])
    # The session acts as the user, with the user's permissions.
    assert client("sts", enforced.endpoint, **session).get_caller_identity()["Arn"].endswith(":user/developer1")
    assert client("ec2", enforced.endpoint, **session).describe_vpcs()["Vpcs"] is not None
    with expect_error("AccessDenied", 403):
        client("iam", enforced.endpoint, **session).list_users()
    # Session credentials cannot make more sessions.
    with expect_error("AccessDenied", 403):
        client("sts", enforced.endpoint, **session).get_session_token()
    with expect_error("ValidationError", 400):
        client("sts", enforced.endpoint, key=key, secret=secret, validate=False).get_session_token(DurationSeconds=60)


def test_run_instances_is_authorized_per_resource(enforced):
    iam = as_root("iam", enforced)
    ec2_root = as_root("ec2", enforced)
    vpc = ec2_root.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    allowed = ec2_root.create_subnet(VpcId=vpc, CidrBlock="10.1.1.0/24")["Subnet"]["SubnetId"]
    other = ec2_root.create_subnet(VpcId=vpc, CidrBlock="10.1.2.0/24")["Subnet"]["SubnetId"]
    iam.create_user(UserName="launcher")
    k = iam.create_access_key(UserName="launcher")["AccessKey"]
    iam.put_user_policy(UserName="launcher", PolicyName="one-subnet", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "ec2:RunInstances", "Resource": [
                f"arn:aws:ec2:us-east-1:*:subnet/{allowed}", "arn:aws:ec2:us-east-1:*:instance/*",
                "arn:aws:ec2:us-east-1::image/*", "arn:aws:ec2:us-east-1:*:network-interface/*",
                "arn:aws:ec2:us-east-1:*:volume/*", "arn:aws:ec2:us-east-1:*:security-group/*"]},
            {"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"},
        ]}))
    ec2 = client("ec2", enforced.endpoint, key=k["AccessKeyId"], secret=k["SecretAccessKey"])
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ok = ec2.run_instances(ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1, SubnetId=allowed)
    assert ok["Instances"][0]["SubnetId"] == allowed
    with expect_error("UnauthorizedOperation", 403) as e:
        ec2.run_instances(ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1, SubnetId=other)
    assert f"subnet/{other}" in e.value.response["Error"]["Message"]


def test_principal_tags_decide_attribute_based_access(enforced):
    iam = as_root("iam", enforced)
    ec2_root = as_root("ec2", enforced)
    ami = ec2_root.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    i = ec2_root.run_instances(ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1, TagSpecifications=[
        {"ResourceType": "instance", "Tags": [{"Key": "team", "Value": "blue"}]}])["Instances"][0]["InstanceId"]
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "ec2:RebootInstances", "Resource": "*",
        "Condition": {"StringEquals": {"ec2:ResourceTag/team": "${aws:PrincipalTag/team}"}}}]})
    keys = {}
    for name, team in (("blue-dev", "blue"), ("red-dev", "red")):
        iam.create_user(UserName=name, Tags=[{"Key": "team", "Value": team}])
        iam.put_user_policy(UserName=name, PolicyName="abac", PolicyDocument=policy)
        k = iam.create_access_key(UserName=name)["AccessKey"]
        keys[name] = client("ec2", enforced.endpoint, key=k["AccessKeyId"], secret=k["SecretAccessKey"])
    keys["blue-dev"].reboot_instances(InstanceIds=[i])
    with expect_error("UnauthorizedOperation", 403):
        keys["red-dev"].reboot_instances(InstanceIds=[i])


def test_boundaries_and_session_policies_narrow_and_say_so(enforced):
    iam = as_root("iam", enforced)
    account = as_root("sts", enforced).get_caller_identity()["Account"]
    iam.create_user(UserName="bounded")
    iam.attach_user_policy(UserName="bounded", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    iam.put_user_permissions_boundary(UserName="bounded",
                                      PermissionsBoundary="arn:aws:iam::aws:policy/AmazonEC2ReadOnlyAccess")
    k = iam.create_access_key(UserName="bounded")["AccessKey"]
    me = dict(key=k["AccessKeyId"], secret=k["SecretAccessKey"])
    assert client("ec2", enforced.endpoint, **me).describe_vpcs()["Vpcs"] is not None
    with expect_error("AccessDenied", 403) as e:
        client("iam", enforced.endpoint, **me).list_users()
    assert "because no permissions boundary allows the iam:ListUsers action" in e.value.response["Error"]["Message"]
    # A session policy narrows an assumed role the same way.
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
             "Principal": {"AWS": f"arn:aws:iam::{account}:root"}}]}
    iam.create_role(RoleName="admin", AssumeRolePolicyDocument=json.dumps(trust))
    iam.attach_role_policy(RoleName="admin", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    only_vpcs = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ec2:DescribeVpcs", "Resource": "*"}]})
    c = as_root("sts", enforced).assume_role(RoleArn=f"arn:aws:iam::{account}:role/admin", RoleSessionName="narrow",
                                             Policy=only_vpcs)["Credentials"]
    session = dict(key=c["AccessKeyId"], secret=c["SecretAccessKey"], token=c["SessionToken"])
    assert client("ec2", enforced.endpoint, **session).describe_vpcs()["Vpcs"] is not None
    with expect_error("UnauthorizedOperation", 403) as e:
        client("ec2", enforced.endpoint, **session).describe_instances()
    assert "because no session policy allows the ec2:DescribeInstances action" in e.value.response["Error"]["Message"]


def test_token_issue_time_is_in_the_context_of_temporary_credentials(enforced):
    iam = as_root("iam", enforced)
    iam.create_user(UserName="temp-only")
    iam.put_user_policy(UserName="temp-only", PolicyName="sessions", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "ec2:DescribeVpcs", "Resource": "*",
            "Condition": {"Null": {"aws:TokenIssueTime": "false"},
                          "DateGreaterThan": {"aws:TokenIssueTime": "2020-01-01T00:00:00Z"}}}]}))
    k = iam.create_access_key(UserName="temp-only")["AccessKey"]
    long_term = dict(key=k["AccessKeyId"], secret=k["SecretAccessKey"])
    with expect_error("UnauthorizedOperation", 403):
        client("ec2", enforced.endpoint, **long_term).describe_vpcs()
    c = client("sts", enforced.endpoint, **long_term).get_session_token(DurationSeconds=900)["Credentials"]
    session = dict(key=c["AccessKeyId"], secret=c["SecretAccessKey"], token=c["SessionToken"])
    assert client("ec2", enforced.endpoint, **session).describe_vpcs()["Vpcs"] is not None
