"""The instance metadata service: IMDSv2 tokens and their rules, IMDSv1 where allowed, the
metadata tree, and role credentials read by botocore's own metadata fetcher.

A process on the host acts as an instance through `/_kumori/imds/<instance-id>/`."""
import json
import urllib.error
import urllib.request

import pytest
from botocore.utils import InstanceMetadataFetcher, InstanceMetadataRegionFetcher
from support import client, expect_error, tag_spec

TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


@pytest.fixture
def iam(endpoint):
    return client("iam", endpoint)


@pytest.fixture
def ami(ec2):
    flt = [{"Name": "name", "Values": ["al2023-ami-2023.9.20261110.0-kernel-6.1-x86_64"]}]
    return ec2.describe_images(Owners=["amazon"], Filters=flt)["Images"][0]["ImageId"]


@pytest.fixture
def web(ec2, iam, ami):
    """A running instance with a role, a key pair, user data and tags in its metadata."""
    iam.create_role(RoleName="web-role", AssumeRolePolicyDocument=TRUST)
    iam.create_instance_profile(InstanceProfileName="web-profile")
    iam.add_role_to_instance_profile(InstanceProfileName="web-profile", RoleName="web-role")
    ec2.create_key_pair(KeyName="ops")
    (i,) = ec2.run_instances(
        ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1, KeyName="ops",
        IamInstanceProfile={"Name": "web-profile"},
        UserData="#!/bin/sh\necho web\n",  # boto3 base64-encodes it
        MetadataOptions={"HttpTokens": "required", "InstanceMetadataTags": "enabled"},
        TagSpecifications=tag_spec("instance", Name="web-1", Tier="web"),
    )["Instances"]
    return i


def base(endpoint, instance_id):
    return f"{endpoint}/_kumori/imds/{instance_id}/"


def call(url, method="GET", headers=None):
    req = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read().decode(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), e.headers


def token(endpoint, instance_id, ttl="300"):
    status, body, headers = call(base(endpoint, instance_id) + "latest/api/token", "PUT",
                                 {"X-aws-ec2-metadata-token-ttl-seconds": ttl})
    assert status == 200 and headers.get("X-aws-ec2-metadata-token-ttl-seconds") == ttl
    return body


def test_botocore_reads_role_credentials_and_region(endpoint, web, iam):
    fetcher = InstanceMetadataFetcher(timeout=5, num_attempts=1, base_url=base(endpoint, web["InstanceId"]), env={})
    creds = fetcher.retrieve_iam_role_credentials()
    assert creds["role_name"] == "web-role"
    assert creds["access_key"].startswith("ASIA") and len(creds["access_key"]) == 20
    assert creds["secret_key"] and creds["token"] and creds["expiry_time"].endswith("Z")
    # The same credentials until they near expiry.
    assert fetcher.retrieve_iam_role_credentials()["access_key"] == creds["access_key"]
    region = InstanceMetadataRegionFetcher(timeout=5, num_attempts=1, base_url=base(endpoint, web["InstanceId"]), env={})
    assert region.retrieve_region() == "us-east-1"
    # The instance shows the profile it runs with.
    profile = iam.get_instance_profile(InstanceProfileName="web-profile")["InstanceProfile"]
    assert web["IamInstanceProfile"] == {"Arn": profile["Arn"], "Id": profile["InstanceProfileId"]}


def test_token_rules(endpoint, ec2, web, ami):
    url = base(endpoint, web["InstanceId"])
    # IMDSv1 is refused while tokens are required.
    assert call(url + "latest/meta-data/instance-id")[0] == 401
    for bad in ("0", "21601", "soon"):
        assert call(url + "latest/api/token", "PUT", {"X-aws-ec2-metadata-token-ttl-seconds": bad})[0] == 400
    assert call(url + "latest/api/token", "PUT", {})[0] == 400
    assert call(url + "latest/api/token", "PUT", {"X-aws-ec2-metadata-token-ttl-seconds": "60",
                                                  "X-Forwarded-For": "10.0.0.9"})[0] == 403
    assert call(url + "latest/api/token", "GET", {"X-aws-ec2-metadata-token-ttl-seconds": "60"})[0] == 405
    t = token(endpoint, web["InstanceId"], "21600")
    assert call(url + "latest/meta-data/instance-id", headers={"X-aws-ec2-metadata-token": t})[1] == web["InstanceId"]
    assert call(url + "latest/meta-data/instance-id", headers={"X-aws-ec2-metadata-token": t + "x"})[0] == 401
    # Another instance's token is not this one's.
    (other,) = ec2.run_instances(ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1)["Instances"]
    assert call(base(endpoint, other["InstanceId"]) + "latest/meta-data/instance-id",
                headers={"X-aws-ec2-metadata-token": t})[0] == 401
    # With tokens optional, IMDSv1 works.
    assert call(base(endpoint, other["InstanceId"]) + "latest/meta-data/instance-id")[1] == other["InstanceId"]
    # Turned off, the endpoint refuses everything; a stopped instance has no service.
    ec2.modify_instance_metadata_options(InstanceId=web["InstanceId"], HttpEndpoint="disabled")
    assert call(url + "latest/meta-data/instance-id", headers={"X-aws-ec2-metadata-token": t})[0] == 403
    ec2.stop_instances(InstanceIds=[other["InstanceId"]])
    assert call(base(endpoint, other["InstanceId"]) + "latest/meta-data/")[0] == 503
    assert call(base(endpoint, "i-0123456789abcdef0") + "latest/meta-data/")[0] == 404


def test_metadata_tree(endpoint, ec2, web):
    iid = web["InstanceId"]
    h = {"X-aws-ec2-metadata-token": token(endpoint, iid)}
    get = lambda p: call(base(endpoint, iid) + p, headers=h)  # noqa: E731
    status, listing, _ = get("latest/meta-data/")
    assert status == 200
    for entry in ("ami-id", "instance-id", "instance-type", "local-ipv4", "mac", "placement/",
                  "network/", "iam/", "public-keys/", "security-groups", "tags/"):
        assert entry in listing.split("\n"), entry
    assert get("latest/meta-data/instance-type")[1] == "t3.micro"
    assert get("latest/meta-data/local-ipv4")[1] == web["PrivateIpAddress"]
    assert get("latest/meta-data/placement/availability-zone")[1] == web["Placement"]["AvailabilityZone"]
    assert get("latest/meta-data/security-groups")[1] == "default"
    mac = get("latest/meta-data/mac")[1]
    assert mac == web["NetworkInterfaces"][0]["MacAddress"]
    subnet = ec2.describe_subnets(SubnetIds=[web["SubnetId"]])["Subnets"][0]
    assert get(f"latest/meta-data/network/interfaces/macs/{mac}/subnet-ipv4-cidr-block")[1] == subnet["CidrBlock"]
    assert get(f"latest/meta-data/network/interfaces/macs/{mac}/interface-id")[1] == web["NetworkInterfaces"][0]["NetworkInterfaceId"]
    assert get("latest/meta-data/public-keys/")[1] == "0=ops"
    key = ec2.describe_key_pairs(KeyNames=["ops"], IncludePublicKey=True)["KeyPairs"][0]["PublicKey"]
    assert get("latest/meta-data/public-keys/0/openssh-key")[1].split()[:2] == key.split()[:2]
    assert sorted(get("latest/meta-data/tags/instance/")[1].split("\n")) == ["Name", "Tier"]
    assert get("latest/meta-data/tags/instance/Tier")[1] == "web"
    assert get("latest/user-data")[1] == "#!/bin/sh\necho web\n"
    info = json.loads(get("latest/meta-data/iam/info")[1])
    assert info["Code"] == "Success" and info["InstanceProfileArn"].endswith(":instance-profile/web-profile")
    doc = json.loads(get("latest/dynamic/instance-identity/document")[1])
    assert (doc["instanceId"], doc["region"], doc["accountId"], doc["privateIp"]) == (
        iid, "us-east-1", "000000000000", web["PrivateIpAddress"])
    assert get("latest/meta-data/no-such-thing")[0] == 404
    # Tags leave the metadata when turned off.
    ec2.modify_instance_metadata_options(InstanceId=iid, InstanceMetadataTags="disabled")
    assert get("latest/meta-data/tags/instance/")[0] == 404


def test_roles_and_instance_profiles(iam, ec2, ami):
    role = iam.create_role(RoleName="app", Path="/svc/", AssumeRolePolicyDocument=TRUST, Description="app servers")["Role"]
    assert role["Arn"] == "arn:aws:iam::000000000000:role/svc/app" and role["RoleId"].startswith("AROA")
    assert iam.get_role(RoleName="APP")["Role"]["AssumeRolePolicyDocument"] == json.loads(TRUST)
    with expect_error("EntityAlreadyExists", 409):
        iam.create_role(RoleName="App", AssumeRolePolicyDocument=TRUST)
    with expect_error("MalformedPolicyDocument", 400):
        iam.create_role(RoleName="broken", AssumeRolePolicyDocument="{not json")
    p = iam.create_instance_profile(InstanceProfileName="app")["InstanceProfile"]
    assert p["InstanceProfileId"].startswith("AIPA") and p["Roles"] == []
    iam.add_role_to_instance_profile(InstanceProfileName="app", RoleName="app")
    iam.create_role(RoleName="other", AssumeRolePolicyDocument=TRUST)
    with expect_error("LimitExceeded", 409):
        iam.add_role_to_instance_profile(InstanceProfileName="app", RoleName="other")
    assert [r["RoleName"] for r in iam.get_instance_profile(InstanceProfileName="app")["InstanceProfile"]["Roles"]] == ["app"]
    assert [x["InstanceProfileName"] for x in iam.list_instance_profiles_for_role(RoleName="app")["InstanceProfiles"]] == ["app"]
    assert [r["RoleName"] for r in iam.list_roles(PathPrefix="/svc/")["Roles"]] == ["app"]
    with expect_error("DeleteConflict", 409):
        iam.delete_role(RoleName="app")
    with expect_error("DeleteConflict", 409):
        iam.delete_instance_profile(InstanceProfileName="app")
    with expect_error("NoSuchEntity", 404):
        iam.get_role(RoleName="nobody")
    with expect_error("InvalidParameterValue", 400):
        ec2.run_instances(ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1,
                          IamInstanceProfile={"Name": "nothing"})
    iam.remove_role_from_instance_profile(InstanceProfileName="app", RoleName="app")
    iam.delete_instance_profile(InstanceProfileName="app")
    iam.delete_role(RoleName="app")
    assert [r["RoleName"] for r in iam.list_roles()["Roles"]] == ["other"]


def test_instance_profile_associations(endpoint, ec2, iam, ami):
    iam.create_role(RoleName="r1", AssumeRolePolicyDocument=TRUST)
    iam.create_role(RoleName="r2", AssumeRolePolicyDocument=TRUST)
    for p, r in (("p1", "r1"), ("p2", "r2")):
        iam.create_instance_profile(InstanceProfileName=p)
        iam.add_role_to_instance_profile(InstanceProfileName=p, RoleName=r)
    (i,) = ec2.run_instances(ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1)["Instances"]
    iid = i["InstanceId"]
    a = ec2.associate_iam_instance_profile(InstanceId=iid, IamInstanceProfile={"Name": "p1"})["IamInstanceProfileAssociation"]
    assert a["AssociationId"].startswith("iip-assoc-") and a["State"] == "associating"
    with expect_error("IncorrectState", 400):
        ec2.associate_iam_instance_profile(InstanceId=iid, IamInstanceProfile={"Name": "p2"})
    (listed,) = ec2.describe_iam_instance_profile_associations(Filters=[{"Name": "instance-id", "Values": [iid]}])["IamInstanceProfileAssociations"]
    assert (listed["AssociationId"], listed["State"]) == (a["AssociationId"], "associated")
    # The metadata service follows the association: role credentials of the current role.
    fetcher = InstanceMetadataFetcher(timeout=5, num_attempts=1, base_url=base(endpoint, iid), env={})
    assert fetcher.retrieve_iam_role_credentials()["role_name"] == "r1"
    b = ec2.replace_iam_instance_profile_association(AssociationId=a["AssociationId"], IamInstanceProfile={"Name": "p2"})["IamInstanceProfileAssociation"]
    assert b["AssociationId"] != a["AssociationId"]
    assert fetcher.retrieve_iam_role_credentials()["role_name"] == "r2"
    with expect_error("InvalidAssociationID.NotFound", 400):
        ec2.disassociate_iam_instance_profile(AssociationId=a["AssociationId"])
    ec2.disassociate_iam_instance_profile(AssociationId=b["AssociationId"])
    assert ec2.describe_iam_instance_profile_associations()["IamInstanceProfileAssociations"] == []
    assert "IamInstanceProfile" not in ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    with expect_error("InvalidParameterValue", 400):
        ec2.associate_iam_instance_profile(InstanceId=iid, IamInstanceProfile={"Name": "missing"})


def test_cli_takes_its_credentials_from_the_metadata_service(endpoint, web, tmp_path):
    import os
    import subprocess
    import sys
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_EC2_METADATA_SERVICE_ENDPOINT": base(endpoint, web["InstanceId"]),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_MAX_ATTEMPTS": "1",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    cli = lambda *a: subprocess.run([sys.executable, "-m", "awscli", *a], env=env, capture_output=True, text=True, timeout=60)  # noqa: E731
    listed = cli("configure", "list")
    assert listed.returncode == 0, listed.stderr
    key_line = next(line for line in listed.stdout.splitlines() if line.strip().startswith("access_key"))
    assert "iam-role" in key_line
    fetched = InstanceMetadataFetcher(timeout=5, num_attempts=1, base_url=base(endpoint, web["InstanceId"]), env={})
    assert key_line.split()[1].endswith(fetched.retrieve_iam_role_credentials()["access_key"][-4:])
    out = cli("ec2", "describe-instances", "--endpoint-url", endpoint, "--instance-ids", web["InstanceId"])
    assert out.returncode == 0, out.stderr
