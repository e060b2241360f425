"""Secrets Manager, kumori's first awsJson1.1 service: secrets, versions and their staging
labels, listing, deletion with a recovery window, resource policies (enforced under
`--auth enforce`), random passwords, and the aws CLI."""
import base64
import json
import re
import string
import time
import uuid

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from support import client, expect_error, http

ARN_RE = re.compile(r"^arn:aws:secretsmanager:us-east-1:000000000000:secret:(.+)-[A-Za-z0-9]{6}$")


@pytest.fixture
def sm(endpoint):
    return client("secretsmanager", endpoint)


def test_create_get_and_describe(sm):
    made = sm.create_secret(Name="app/db", SecretString='{"user":"admin"}', Description="the db",
                            Tags=[{"Key": "team", "Value": "core"}], KmsKeyId="alias/mine")
    assert ARN_RE.match(made["ARN"]).group(1) == "app/db"
    assert made["Name"] == "app/db"
    got = sm.get_secret_value(SecretId="app/db")
    assert got["SecretString"] == '{"user":"admin"}'
    assert got["VersionId"] == made["VersionId"] and got["VersionStages"] == ["AWSCURRENT"]
    assert got["ARN"] == made["ARN"]
    # Found by full ARN and by partial ARN (without the six random characters).
    assert sm.get_secret_value(SecretId=made["ARN"])["Name"] == "app/db"
    partial = made["ARN"][:-7]
    assert sm.describe_secret(SecretId=partial)["ARN"] == made["ARN"]
    d = sm.describe_secret(SecretId="app/db")
    assert d["Description"] == "the db" and d["KmsKeyId"] == "alias/mine"
    assert d["Tags"] == [{"Key": "team", "Value": "core"}]
    assert d["VersionIdsToStages"] == {made["VersionId"]: ["AWSCURRENT"]}
    assert "DeletedDate" not in d and d["CreatedDate"].year >= 2024
    # A secret without a value has no version.
    empty = sm.create_secret(Name="empty")
    assert "VersionId" not in empty
    with expect_error("ResourceNotFoundException", 400) as e:
        sm.get_secret_value(SecretId="empty")
    assert "AWSCURRENT" in e.value.response["Error"]["Message"]


def test_errors_have_aws_codes_and_messages(sm, endpoint):
    with expect_error("ResourceNotFoundException") as e:
        sm.get_secret_value(SecretId="nope")
    assert e.value.response["Error"]["Message"] == "Secrets Manager can't find the specified secret."
    sm.create_secret(Name="dup", SecretString="x")
    with expect_error("ResourceExistsException"):
        sm.create_secret(Name="dup", SecretString="y")
    with expect_error("InvalidParameterException"):
        sm.create_secret(Name="both", SecretString="x", SecretBinary=b"y")
    with expect_error("InvalidParameterException"):
        sm.create_secret(Name="bad name with spaces", SecretString="x")
    # A wrong ARN suffix, another account or region: not found.
    arn = sm.describe_secret(SecretId="dup")["ARN"]
    with expect_error("ResourceNotFoundException"):
        sm.describe_secret(SecretId=arn[:-6] + "ZZZZZZ")
    with expect_error("ResourceNotFoundException"):
        client("secretsmanager", endpoint, "eu-west-1").describe_secret(SecretId="dup")
    with expect_error("ResourceNotFoundException"):
        sm.describe_secret(SecretId=arn.replace("000000000000", "111111111111"))


def test_input_is_checked_against_the_model(endpoint):
    raw = client("secretsmanager", endpoint, validate=False)
    with expect_error("ValidationException", 400) as e:
        raw.list_secrets(MaxResults=0, SortOrder="sideways")
    msg = e.value.response["Error"]["Message"]
    assert msg.startswith("2 validation errors detected") and "'maxResults'" in msg and "'sortOrder'" in msg
    with expect_error("ValidationException"):
        raw.create_secret(Name="x" * 513)
    # A value of the wrong type never reaches a handler.
    req = AWSRequest(method="POST", url=endpoint + "/", data=b'{"SecretId": 5}',
                     headers={"Content-Type": "application/x-amz-json-1.1",
                              "X-Amz-Target": "secretsmanager.GetSecretValue"})
    SigV4Auth(Credentials("test", "test"), "secretsmanager", "us-east-1").add_auth(req)
    status, _, body = http(endpoint, "POST", "/", body=req.body, headers=dict(req.headers.items()))
    assert status == 400 and json.loads(body)["__type"] == "SerializationException", body


def test_put_moves_current_and_previous_and_tokens_are_idempotent(sm):
    v1 = sm.create_secret(Name="s", SecretString="one")["VersionId"]
    token = str(uuid.uuid4())
    v2 = sm.put_secret_value(SecretId="s", SecretString="two", ClientRequestToken=token)
    assert v2["VersionId"] == token and v2["VersionStages"] == ["AWSCURRENT"]
    # The same token and value again: nothing happens; another value: refused.
    again = sm.put_secret_value(SecretId="s", SecretString="two", ClientRequestToken=token)
    assert again["VersionId"] == token
    with expect_error("ResourceExistsException"):
        sm.put_secret_value(SecretId="s", SecretString="other", ClientRequestToken=token)
    stages = sm.describe_secret(SecretId="s")["VersionIdsToStages"]
    assert stages == {v1: ["AWSPREVIOUS"], token: ["AWSCURRENT"]}
    assert sm.get_secret_value(SecretId="s", VersionStage="AWSPREVIOUS")["SecretString"] == "one"
    assert sm.get_secret_value(SecretId="s", VersionId=v1)["SecretString"] == "one"
    v3 = sm.update_secret(SecretId="s", SecretString="three")["VersionId"]
    stages = sm.describe_secret(SecretId="s")["VersionIdsToStages"]
    assert stages == {token: ["AWSPREVIOUS"], v3: ["AWSCURRENT"]}
    # v1 lost every label: only listed with IncludeDeprecated.
    listed = sm.list_secret_version_ids(SecretId="s")["Versions"]
    assert {v["VersionId"] for v in listed} == {token, v3}
    everything = sm.list_secret_version_ids(SecretId="s", IncludeDeprecated=True)["Versions"]
    assert {v["VersionId"] for v in everything} == {v1, token, v3}
    # A pending version keeps current where it is.
    pend = sm.put_secret_value(SecretId="s", SecretString="four", VersionStages=["AWSPENDING"])["VersionId"]
    assert sm.get_secret_value(SecretId="s")["SecretString"] == "three"
    assert sm.get_secret_value(SecretId="s", VersionStage="AWSPENDING")["VersionId"] == pend
    # Promote it by hand, as a rotation's last step does.
    with expect_error("InvalidParameterException"):
        sm.update_secret_version_stage(SecretId="s", VersionStage="AWSCURRENT", MoveToVersionId=pend)
    sm.update_secret_version_stage(SecretId="s", VersionStage="AWSCURRENT", MoveToVersionId=pend,
                                   RemoveFromVersionId=v3)
    stages = sm.describe_secret(SecretId="s")["VersionIdsToStages"]
    assert stages[pend] == ["AWSPENDING", "AWSCURRENT"] or sorted(stages[pend]) == ["AWSCURRENT", "AWSPENDING"]
    assert stages[v3] == ["AWSPREVIOUS"]
    assert sm.get_secret_value(SecretId="s")["SecretString"] == "four"
    # Update without a value changes the description only, and makes no version.
    out = sm.update_secret(SecretId="s", Description="new")
    assert "VersionId" not in out
    assert sm.describe_secret(SecretId="s")["Description"] == "new"


def test_binary_secrets(sm):
    blob = bytes(range(256))
    sm.create_secret(Name="bin", SecretBinary=blob)
    got = sm.get_secret_value(SecretId="bin")
    assert got["SecretBinary"] == blob and "SecretString" not in got
    sm.put_secret_value(SecretId="bin", SecretBinary=b"\x00\x01")
    assert sm.get_secret_value(SecretId="bin")["SecretBinary"] == b"\x00\x01"


def test_list_filters_sorting_and_pages(sm):
    for i in range(7):
        sm.create_secret(Name=f"prod/app{i}", SecretString="x", Description=f"app number {i}",
                         Tags=[{"Key": "env", "Value": "prod" if i % 2 else "dev"}])
        time.sleep(0.01)
    sm.create_secret(Name="other", SecretString="x")
    names = lambda out: [s["Name"] for s in out["SecretList"]]
    assert len(names(sm.list_secrets())) == 8
    assert names(sm.list_secrets(Filters=[{"Key": "name", "Values": ["prod/"]}])) == [f"prod/app{i}" for i in range(7)]
    assert names(sm.list_secrets(Filters=[{"Key": "name", "Values": ["!prod/"]}])) == ["other"]
    assert names(sm.list_secrets(Filters=[{"Key": "description", "Values": ["app number 3"]}])) == ["prod/app3"]
    assert names(sm.list_secrets(Filters=[{"Key": "tag-key", "Values": ["env"]},
                                          {"Key": "tag-value", "Values": ["prod"]}])) == ["prod/app1", "prod/app3", "prod/app5"]
    assert set(names(sm.list_secrets(Filters=[{"Key": "all", "Values": ["dev"]}]))) == {"prod/app0", "prod/app2", "prod/app4", "prod/app6"}
    assert names(sm.list_secrets(SortOrder="desc"))[0] == "other"
    assert names(sm.list_secrets(SortOrder="asc"))[0] == "prod/app0"
    one = sm.list_secrets()["SecretList"][0]
    assert "SecretVersionsToStages" in one and one["Tags"]
    # Pages: three at a time, each secret once.
    seen, token = [], None
    while True:
        page = sm.list_secrets(MaxResults=3, **({"NextToken": token} if token else {}))
        assert len(page["SecretList"]) <= 3
        seen += names(page)
        token = page.get("NextToken")
        if not token:
            break
    assert sorted(seen) == sorted(names(sm.list_secrets())) and len(seen) == 8
    # The paginator follows the same tokens.
    pages = sm.get_paginator("list_secrets").paginate(PaginationConfig={"PageSize": 2})
    assert sum(len(p["SecretList"]) for p in pages) == 8
    with expect_error("InvalidNextTokenException"):
        sm.list_secrets(NextToken="garbage!")


def test_delete_with_recovery_window_and_restore(sm):
    arn = sm.create_secret(Name="gone", SecretString="v")["ARN"]
    with expect_error("InvalidParameterException"):
        sm.delete_secret(SecretId="gone", RecoveryWindowInDays=3)
    with expect_error("InvalidParameterException"):
        sm.delete_secret(SecretId="gone", RecoveryWindowInDays=7, ForceDeleteWithoutRecovery=True)
    out = sm.delete_secret(SecretId="gone", RecoveryWindowInDays=7)
    assert out["ARN"] == arn
    days = (out["DeletionDate"] - sm.describe_secret(SecretId="gone")["DeletedDate"]).total_seconds() / 86400
    assert abs(days - 7) < 0.01
    with expect_error("InvalidRequestException") as e:
        sm.get_secret_value(SecretId="gone")
    assert "because it was marked for deletion" in e.value.response["Error"]["Message"]
    with expect_error("InvalidRequestException"):
        sm.put_secret_value(SecretId="gone", SecretString="w")
    # The name stays taken; the secret is listed only when asked for.
    with expect_error("InvalidRequestException"):
        sm.create_secret(Name="gone", SecretString="again")
    assert [s["Name"] for s in sm.list_secrets()["SecretList"]] == []
    listed = sm.list_secrets(IncludePlannedDeletion=True)["SecretList"]
    assert [s["Name"] for s in listed] == ["gone"] and "DeletedDate" in listed[0]
    sm.restore_secret(SecretId="gone")
    assert sm.get_secret_value(SecretId="gone")["SecretString"] == "v"
    assert "DeletedDate" not in sm.describe_secret(SecretId="gone")
    # Default window: 30 days.
    out = sm.delete_secret(SecretId="gone")
    days = (out["DeletionDate"] - sm.describe_secret(SecretId="gone")["DeletedDate"]).total_seconds() / 86400
    assert abs(days - 30) < 0.01


def test_force_delete_frees_the_name(sm):
    old = sm.create_secret(Name="temp", SecretString="a")["ARN"]
    sm.delete_secret(SecretId="temp", RecoveryWindowInDays=7)
    sm.delete_secret(SecretId="temp", ForceDeleteWithoutRecovery=True)
    with expect_error("ResourceNotFoundException"):
        sm.describe_secret(SecretId="temp")
    new = sm.create_secret(Name="temp", SecretString="b")["ARN"]
    assert new != old
    assert sm.get_secret_value(SecretId="temp")["SecretString"] == "b"
    # The old ARN names nothing.
    with expect_error("ResourceNotFoundException"):
        sm.get_secret_value(SecretId=old)


def test_tags(sm):
    sm.create_secret(Name="t", SecretString="x", Tags=[{"Key": "a", "Value": "1"}])
    sm.tag_resource(SecretId="t", Tags=[{"Key": "b", "Value": "2"}, {"Key": "a", "Value": "9"}])
    assert sm.describe_secret(SecretId="t")["Tags"] == [{"Key": "a", "Value": "9"}, {"Key": "b", "Value": "2"}]
    sm.untag_resource(SecretId="t", TagKeys=["a"])
    assert sm.describe_secret(SecretId="t")["Tags"] == [{"Key": "b", "Value": "2"}]
    with expect_error("InvalidParameterException"):
        sm.tag_resource(SecretId="t", Tags=[{"Key": "aws:x", "Value": "1"}])
    with expect_error("ResourceNotFoundException"):
        sm.tag_resource(SecretId="nope", Tags=[{"Key": "a", "Value": "1"}])


def test_rotation_is_recorded_not_run(sm):
    sm.create_secret(Name="rot", SecretString="x")
    with expect_error("InvalidRequestException"):
        sm.rotate_secret(SecretId="rot")
    fn = "arn:aws:lambda:us-east-1:000000000000:function:rotate"
    sm.rotate_secret(SecretId="rot", RotationLambdaARN=fn, RotationRules={"AutomaticallyAfterDays": 30})
    d = sm.describe_secret(SecretId="rot")
    assert d["RotationEnabled"] is True and d["RotationLambdaARN"] == fn
    assert d["RotationRules"]["AutomaticallyAfterDays"] == 30 and "NextRotationDate" in d
    assert sm.get_secret_value(SecretId="rot")["SecretString"] == "x"
    sm.cancel_rotate_secret(SecretId="rot")
    assert sm.describe_secret(SecretId="rot")["RotationEnabled"] is False


def test_random_passwords(sm):
    p = sm.get_random_password()["RandomPassword"]
    assert len(p) == 32
    p = sm.get_random_password(PasswordLength=20, ExcludePunctuation=True, ExcludeCharacters="aeiou")["RandomPassword"]
    assert len(p) == 20 and not set(p) & set(string.punctuation + "aeiou")
    assert any(c.isdigit() for c in p) and any(c.isupper() for c in p) and any(c.islower() for c in p)
    p = sm.get_random_password(PasswordLength=12, ExcludeUppercase=True, ExcludeLowercase=True,
                               ExcludePunctuation=True)["RandomPassword"]
    assert p.isdigit() and len(p) == 12
    p = sm.get_random_password(PasswordLength=64, IncludeSpace=True, RequireEachIncludedType=True)["RandomPassword"]
    assert " " in p
    with expect_error("InvalidParameterException"):
        sm.get_random_password(ExcludeUppercase=True, ExcludeLowercase=True, ExcludeNumbers=True,
                               ExcludePunctuation=True)


def test_resource_policies_are_stored_and_checked(sm):
    arn = sm.create_secret(Name="p", SecretString="x")["ARN"]
    doc = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:root"},
        "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]})
    sm.put_resource_policy(SecretId="p", ResourcePolicy=doc)
    got = sm.get_resource_policy(SecretId="p")
    assert got["ARN"] == arn and json.loads(got["ResourcePolicy"]) == json.loads(doc)
    with expect_error("MalformedPolicyDocumentException"):
        sm.put_resource_policy(SecretId="p", ResourcePolicy='{"Statement": [{"Effect": "Allow"}]}')
    public = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "secretsmanager:*", "Resource": "*"}]})
    with expect_error("PublicPolicyException"):
        sm.put_resource_policy(SecretId="p", ResourcePolicy=public, BlockPublicPolicy=True)
    ok = sm.validate_resource_policy(ResourcePolicy=doc)
    assert ok["PolicyValidationPassed"] is True
    bad = sm.validate_resource_policy(ResourcePolicy=json.dumps({"Statement": [{"Effect": "Allow", "Action": "x:y"}]}))
    assert bad["PolicyValidationPassed"] is False and bad["ValidationErrors"]
    sm.delete_resource_policy(SecretId="p")
    assert "ResourcePolicy" not in sm.get_resource_policy(SecretId="p")


def test_the_cli_reads_a_secret(sm, aws):
    sm.create_secret(Name="cli/secret", SecretString="hunter2")
    out = aws("secretsmanager", "get-secret-value", "--secret-id", "cli/secret")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["SecretString"] == "hunter2"
    missing = aws("secretsmanager", "get-secret-value", "--secret-id", "nope")
    assert missing.returncode != 0 and "ResourceNotFoundException" in missing.stderr


# --- under --auth enforce ---------------------------------------------------------------

ROOT_KEY, ROOT_SECRET = "AKIAKUMORIROOTTEST01", "kumori-root-secret-for-tests-only-000000"


@pytest.fixture
def enforced(spawn, tmp_path):
    return spawn(state_dir=tmp_path / "state", extra_args=["--auth", "enforce"],
                 env={"KUMORI_ROOT_ACCESS_KEY_ID": ROOT_KEY, "KUMORI_ROOT_SECRET_ACCESS_KEY": ROOT_SECRET})


def user_with_key(iam, name, policy=None):
    iam.create_user(UserName=name)
    if policy:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
    k = iam.create_access_key(UserName=name)["AccessKey"]
    return k["AccessKeyId"], k["SecretAccessKey"]


def test_resource_policy_deny_and_same_account_grant_under_enforce(enforced):
    ep = enforced.endpoint
    iam = client("iam", ep, key=ROOT_KEY, secret=ROOT_SECRET)
    root_sm = client("secretsmanager", ep, key=ROOT_KEY, secret=ROOT_SECRET)
    reader = user_with_key(iam, "reader", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"}]})
    stranger = user_with_key(iam, "stranger")
    for name in ("open", "closed", "shared"):
        root_sm.create_secret(Name=name, SecretString=f"{name}-value")
    account = "000000000000"
    user_arn = lambda u: f"arn:aws:iam::{account}:user/{u}"
    root_sm.put_resource_policy(SecretId="closed", ResourcePolicy=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Deny", "Principal": {"AWS": user_arn("reader")},
            "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]}))
    root_sm.put_resource_policy(SecretId="shared", ResourcePolicy=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": user_arn("stranger")},
            "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]}))
    as_reader = client("secretsmanager", ep, key=reader[0], secret=reader[1])
    as_stranger = client("secretsmanager", ep, key=stranger[0], secret=stranger[1])
    # The identity policy allows; the resource policy's deny wins where it applies.
    assert as_reader.get_secret_value(SecretId="open")["SecretString"] == "open-value"
    with expect_error("AccessDeniedException") as e:
        as_reader.get_secret_value(SecretId="closed")
    msg = e.value.response["Error"]["Message"]
    assert "explicit deny in a resource-based policy" in msg and ":secret:closed-" in msg
    # Other actions on it are not denied.
    assert as_reader.describe_secret(SecretId="closed")["Name"] == "closed"
    # A user with no policy of its own: the secret's policy naming it grants, nothing else does.
    assert as_stranger.get_secret_value(SecretId="shared")["SecretString"] == "shared-value"
    with expect_error("AccessDeniedException"):
        as_stranger.get_secret_value(SecretId="open")
    with expect_error("AccessDeniedException"):
        as_stranger.describe_secret(SecretId="shared")
    # By ARN as by name.
    arn = root_sm.describe_secret(SecretId="closed")["ARN"]
    with expect_error("AccessDeniedException"):
        as_reader.get_secret_value(SecretId=arn)
