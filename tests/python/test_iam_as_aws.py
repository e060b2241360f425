"""IAM answering as AWS's IAM does where moto's IAM test suite, run against kumori, found it
did not: tags, their pages, role boundaries, managed-policy validation, the account summary,
the password policy and group errors, partitions, the root user's creation date, and
RoleLastUsed."""
import datetime
import json

import pytest
from support import client, expect_error

ACCOUNT = "000000000000"
DOC = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket",
                                               "Resource": "arn:aws:s3:::example_bucket"}]}
TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                 "Principal": {"Service": "ec2.amazonaws.com"}}]}
DUPLICATE = "Duplicate tag keys found. Please note that Tag keys are case insensitive."
KEY_PATTERN = r"[\p{L}\p{Z}\p{N}_.:/=+\-@]+"
VERSION_2012 = "Policy document must be version 2012-10-17 or greater."
LEGACY = "The policy failed legacy parsing"


@pytest.fixture
def iam(endpoint):
    return client("iam", endpoint)


def message(e) -> str:
    return e.value.response["Error"]["Message"]


def make_policy(iam, name="p", doc=DOC, **kw):
    return iam.create_policy(PolicyName=name, PolicyDocument=json.dumps(doc), **kw)["Policy"]


def make_role(iam, name="r", **kw):
    return iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST), **kw)["Role"]


# --- 1. tags --------------------------------------------------------------------------------


def test_duplicate_tag_keys_in_one_request_are_refused_whatever_their_case(iam):
    iam.create_user(UserName="u")
    policy = make_policy(iam)["Arn"]
    make_role(iam)
    twice = [{"Key": "env", "Value": "a"}, {"Key": "ENV", "Value": "b"}]
    for call in (
        lambda: iam.create_user(UserName="u2", Tags=twice),
        lambda: make_role(iam, "r2", Tags=twice),
        lambda: make_policy(iam, "p2", Tags=twice),
        lambda: iam.tag_user(UserName="u", Tags=twice),
        lambda: iam.tag_role(RoleName="r", Tags=twice),
        lambda: iam.tag_policy(PolicyArn=policy, Tags=[{"Key": "0", "Value": ""}, {"Key": "0", "Value": ""}]),
    ):
        with expect_error("InvalidInput", 400) as e:
            call()
        assert message(e) == DUPLICATE
    # Nothing was made or tagged.
    assert [u["UserName"] for u in iam.list_users()["Users"]] == ["u"]
    assert iam.list_role_tags(RoleName="r")["Tags"] == []
    assert iam.list_policy_tags(PolicyArn=policy)["Tags"] == []


def test_tag_keys_outside_iams_pattern_are_a_validation_error(iam):
    iam.create_user(UserName="u")
    make_role(iam)
    policy = make_policy(iam)["Arn"]
    for call in (
        lambda: iam.create_user(UserName="u2", Tags=[{"Key": "a!", "Value": "x"}]),
        lambda: make_role(iam, "r2", Tags=[{"Key": "ok", "Value": "x"}, {"Key": "a!", "Value": "x"}]),
        lambda: make_policy(iam, "p2", Tags=[{"Key": "a#b", "Value": "x"}]),
        lambda: iam.tag_user(UserName="u", Tags=[{"Key": "a!", "Value": "x"}]),
        lambda: iam.tag_role(RoleName="r", Tags=[{"Key": "a!", "Value": "x"}]),
        lambda: iam.tag_policy(PolicyArn=policy, Tags=[{"Key": "a!", "Value": "x"}]),
    ):
        with expect_error("ValidationError", 400) as e:
            call()
        assert message(e).startswith("1 validation error detected: Value 'a")
        assert message(e).endswith(f"failed to satisfy constraint: Member must satisfy regular expression pattern: {KEY_PATTERN}")
    # Letters of any script, separators, digits and IAM's signs are fine.
    iam.tag_user(UserName="u", Tags=[{"Key": "Ünïcode ключ 9_.:/=+-@", "Value": "v"}])


def test_role_and_user_tag_keys_are_case_insensitive_policy_ones_are_not(iam):
    make_role(iam, Tags=[{"Key": "team", "Value": "net"}])
    iam.tag_role(RoleName="r", Tags=[{"Key": "env", "Value": "1"}])
    iam.tag_role(RoleName="r", Tags=[{"Key": "ENV", "Value": "2"}])
    # The second replaces the first, key and value, in its place.
    assert iam.list_role_tags(RoleName="r")["Tags"] == [{"Key": "team", "Value": "net"}, {"Key": "ENV", "Value": "2"}]
    assert iam.get_role(RoleName="r")["Role"]["Tags"] == [{"Key": "team", "Value": "net"}, {"Key": "ENV", "Value": "2"}]
    iam.untag_role(RoleName="r", TagKeys=["env"])
    assert iam.list_role_tags(RoleName="r")["Tags"] == [{"Key": "team", "Value": "net"}]

    iam.create_user(UserName="u", Tags=[{"Key": "Department", "Value": "finance"}])
    iam.tag_user(UserName="u", Tags=[{"Key": "department", "Value": "hr"}])
    assert iam.list_user_tags(UserName="u")["Tags"] == [{"Key": "department", "Value": "hr"}]

    # A managed policy's tag keys are case-sensitive ("Tagging IAM resources").
    policy = make_policy(iam, Tags=[{"Key": "Costcenter", "Value": "1234"}])["Arn"]
    iam.tag_policy(PolicyArn=policy, Tags=[{"Key": "costcenter", "Value": "5678"}])
    assert iam.list_policy_tags(PolicyArn=policy)["Tags"] == [
        {"Key": "Costcenter", "Value": "1234"}, {"Key": "costcenter", "Value": "5678"}]


# --- 2. tag pages ---------------------------------------------------------------------------


def all_pages(call, **kw):
    tags, marker, pages = [], None, 0
    while True:
        page = call(**kw, MaxItems=2, **({"Marker": marker} if marker else {}))
        pages += 1
        assert len(page["Tags"]) <= 2
        tags += page["Tags"]
        if not page["IsTruncated"]:
            assert "Marker" not in page
            return tags, pages
        marker = page["Marker"]


def test_list_tags_calls_honour_max_items_and_marker(iam):
    five = [{"Key": f"k{i}", "Value": f"v{i}"} for i in (3, 1, 4, 0, 2)]
    iam.create_user(UserName="u", Tags=five)
    make_role(iam, Tags=five)
    policy = make_policy(iam, Tags=five)["Arn"]
    for call, kw in (
        (iam.list_user_tags, {"UserName": "u"}),
        (iam.list_role_tags, {"RoleName": "r"}),
        (iam.list_policy_tags, {"PolicyArn": policy}),
    ):
        first = call(**kw, MaxItems=2)
        assert first["IsTruncated"] is True and first["Marker"]
        assert first["Tags"] == five[:2]
        tags, pages = all_pages(call, **kw)
        assert tags == five and pages == 3
        whole = call(**kw)
        assert whole["Tags"] == five and whole["IsTruncated"] is False and "Marker" not in whole


# --- 3. CreateRole's permissions boundary --------------------------------------------------


def test_create_role_keeps_its_permissions_boundary(iam):
    boundary = make_policy(iam, "boundary")["Arn"]
    created = make_role(iam, PermissionsBoundary=boundary)
    shown = {"PermissionsBoundaryType": "PermissionsBoundaryPolicy", "PermissionsBoundaryArn": boundary}
    assert created["PermissionsBoundary"] == shown
    assert iam.get_role(RoleName="r")["Role"]["PermissionsBoundary"] == shown
    aws = "arn:aws:iam::aws:policy/ReadOnlyAccess"
    assert make_role(iam, "r2", PermissionsBoundary=aws)["PermissionsBoundary"]["PermissionsBoundaryArn"] == aws
    # A boundary that is no policy leaves no role behind.
    with expect_error("InvalidInput", 400):
        make_role(iam, "r3", PermissionsBoundary=f"arn:aws:iam::{ACCOUNT}:policy/nope")
    with expect_error("NoSuchEntity", 404):
        iam.get_role(RoleName="r3")
    iam.delete_role_permissions_boundary(RoleName="r")
    assert "PermissionsBoundary" not in iam.get_role(RoleName="r")["Role"]


# --- 4. policy documents ---------------------------------------------------------------------


def test_managed_policies_must_be_in_the_2012_language(iam):
    statement = DOC["Statement"]
    for doc in ({"Statement": statement}, {"Version": "2008-10-17", "Statement": statement},
                # The version is checked before the legacy parsing `denY` would fail.
                {"Statement": {"Effect": "denY", "Action": "s3:ListBucket", "Resource": "*"}}):
        with expect_error("MalformedPolicyDocument", 400) as e:
            make_policy(iam, doc=doc)
        assert message(e) == VERSION_2012
    arn = make_policy(iam)["Arn"]
    with expect_error("MalformedPolicyDocument", 400) as e:
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps({"Version": "2008-10-17", "Statement": statement}))
    assert message(e) == VERSION_2012
    assert len(iam.list_policy_versions(PolicyArn=arn)["Versions"]) == 1
    # Inline policies and trust policies may still be in the old language, or name none.
    iam.create_user(UserName="u")
    iam.put_user_policy(UserName="u", PolicyName="old", PolicyDocument=json.dumps({"Statement": statement}))
    assert iam.list_user_policies(UserName="u")["PolicyNames"] == ["old"]
    iam.create_role(RoleName="old", AssumeRolePolicyDocument=json.dumps({**TRUST, "Version": "2008-10-17"}))


@pytest.mark.parametrize("condition", [
    {"DateGreaterThan": {"a": "01T"}},
    {"DateLessThanEquals": {"a": "2019-07-01T13:20:15Z"}},
    {"DateLessThanEquals": {"a": "2016-12-13T21:20:37.593194+00:00"}},
    {"DateLessThanEquals": {"a": "2016-12-13t2:00:00.593194+23"}},
    {"DateLessThan": {"a": "-292275054"}},
    {"DateGreaterThan": {"aws:CurrentTime": "2017-07-01T00:00:00Z"}},
    {"StringEqualsIfExists": {"a": "asf"}},
    {"ForAnyValue:StringEqualsIfExists": {"a": "asf"}},
    {"StringEqualsIfExists": {"aws:RequestedRegion": "us-east-1"}},
])
def test_conditions_iam_accepts_are_accepted(iam, condition):
    doc = {"Version": "2012-10-17", "Statement": {**DOC["Statement"][0], "Condition": condition}}
    make_policy(iam, doc=doc)
    iam.create_user(UserName="u")
    iam.put_user_policy(UserName="u", PolicyName="inline", PolicyDocument=json.dumps(doc))


@pytest.mark.parametrize("date", ["sdfdsf", "234-13", "2016-12-13t2:00:00.593194+1",
                                  "2016-12-13t2:00:00.1999999999+10:59", "9223372036854775808"])
def test_dates_iams_legacy_parser_cannot_read_are_refused(iam, date):
    doc = {"Version": "2012-10-17",
           "Statement": {**DOC["Statement"][0], "Condition": {"DateLessThanEquals": {"a": date}}}}
    with expect_error("MalformedPolicyDocument", 400) as e:
        make_policy(iam, doc=doc)
    assert message(e) == LEGACY


def test_s3_access_point_arns_carry_a_region(iam):
    doc = {"Version": "2012-10-17", "Statement": [{"Sid": "", "Effect": "Allow", "Action": ["s3:*"], "Resource": [
        "arn:aws:s3:us-east-1:123456789012:accesspoint/x",
        "arn:aws:s3:us-west-2:123456789012:accesspoint/my-access-point/object/*"]}]}
    make_policy(iam, doc=doc)
    bucket = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*",
                                                      "Resource": "arn:aws:s3:us-east-1::bucket"}]}
    with expect_error("MalformedPolicyDocument", 400) as e:
        make_policy(iam, "p2", doc=bucket)
    assert message(e) == "Resource arn:aws:s3:us-east-1::bucket can not contain region information."


# --- 5. the account summary ------------------------------------------------------------------

SUMMARY_KEYS = {
    "Users", "UsersQuota", "Groups", "GroupsQuota", "ServerCertificates", "ServerCertificatesQuota",
    "UserPolicySizeQuota", "GroupPolicySizeQuota", "GroupsPerUserQuota", "SigningCertificatesPerUserQuota",
    "AccessKeysPerUserQuota", "MFADevices", "MFADevicesInUse", "AccountMFAEnabled", "AccountAccessKeysPresent",
    "AccountSigningCertificatesPresent", "AttachedPoliciesPerGroupQuota", "AttachedPoliciesPerRoleQuota",
    "AttachedPoliciesPerUserQuota", "Policies", "PoliciesQuota", "PolicySizeQuota", "PolicyVersionsInUse",
    "PolicyVersionsInUseQuota", "VersionsPerPolicyQuota", "GlobalEndpointTokenVersion", "Roles", "RolesQuota",
    "RolePolicySizeQuota", "AssumeRolePolicySizeQuota", "InstanceProfiles", "InstanceProfilesQuota", "Providers",
}


def test_account_summary_has_exactly_iams_keys(iam):
    summary = iam.get_account_summary()["SummaryMap"]
    assert set(summary) == SUMMARY_KEYS
    assert "ProvidersQuota" not in summary
    assert summary["Providers"] == 0 and summary["AccountSigningCertificatesPresent"] == 0
    assert summary["AssumeRolePolicySizeQuota"] == 2048 and summary["SigningCertificatesPerUserQuota"] == 2
    assert summary["Policies"] == 0 and summary["PolicyVersionsInUse"] == 0
    arn = make_policy(iam)["Arn"]
    iam.create_user(UserName="u")
    iam.create_group(GroupName="g")
    make_role(iam)
    iam.create_instance_profile(InstanceProfileName="ip")
    for attach, kw in ((iam.attach_user_policy, {"UserName": "u"}), (iam.attach_group_policy, {"GroupName": "g"}),
                       (iam.attach_role_policy, {"RoleName": "r"})):
        attach(PolicyArn=arn, **kw)
    summary = iam.get_account_summary()["SummaryMap"]
    assert set(summary) == SUMMARY_KEYS
    # Policy versions in use: one for each attachment, as IAM counts them.
    assert {k: summary[k] for k in ("Users", "Groups", "Roles", "Policies", "InstanceProfiles", "PolicyVersionsInUse")} \
        == {"Users": 1, "Groups": 1, "Roles": 1, "Policies": 1, "InstanceProfiles": 1, "PolicyVersionsInUse": 3}


# --- 6. password policy and group errors ---------------------------------------------------


def test_deleting_a_missing_password_policy_says_so_as_iam_does(iam):
    with expect_error("NoSuchEntity", 404) as e:
        iam.delete_account_password_policy()
    assert message(e) == "The account policy with name PasswordPolicy cannot be found."
    iam.update_account_password_policy(MinimumPasswordLength=12)
    iam.delete_account_password_policy()
    with expect_error("NoSuchEntity", 404):
        iam.get_account_password_policy()


def test_update_password_policy_lists_every_violation(iam):
    with expect_error("ValidationError", 400) as e:
        iam.update_account_password_policy(MaxPasswordAge=1096, MinimumPasswordLength=129, PasswordReusePrevention=25)
    text = message(e)
    assert text.startswith("3 validation errors detected: ")
    for member, limit in (("minimumPasswordLength", 128), ("passwordReusePrevention", 24), ("maxPasswordAge", 1095)):
        assert member in text and f"less than or equal to {limit}" in text


def test_add_user_to_group_names_the_missing_user_first(iam):
    with expect_error("NoSuchEntity", 404) as e:
        iam.add_user_to_group(GroupName="no-group", UserName="no-user")
    assert message(e) == "The user with name no-user cannot be found."
    iam.create_user(UserName="u")
    with expect_error("NoSuchEntity", 404) as e:
        iam.add_user_to_group(GroupName="no-group", UserName="u")
    assert message(e) == "The group with name no-group cannot be found."


# --- 7. partitions ---------------------------------------------------------------------------


@pytest.mark.parametrize("region,partition", [("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov"),
                                              ("eu-west-1", "aws")])
def test_arns_are_in_the_partition_of_the_clients_region(endpoint, region, partition):
    iam = client("iam", endpoint, region)
    prefix = f"arn:{partition}:iam::{ACCOUNT}:"
    assert iam.create_user(UserName="u")["User"]["Arn"] == prefix + "user/u"
    assert iam.create_group(GroupName="g")["Group"]["Arn"] == prefix + "group/g"
    assert make_role(iam)["Arn"] == prefix + "role/r"
    arn = make_policy(iam)["Arn"]
    assert arn == prefix + "policy/p"
    assert iam.get_policy(PolicyArn=arn)["Policy"]["Arn"] == arn
    assert iam.create_instance_profile(InstanceProfileName="ip")["InstanceProfile"]["Arn"] == prefix + "instance-profile/ip"
    assert iam.get_user()["User"]["Arn"] == prefix + "root"
    assert iam.get_user(UserName="u")["User"]["Arn"] == prefix + "user/u"


# --- 8. the root user's creation date ------------------------------------------------------


def test_the_root_users_create_date_is_when_the_account_was_made(spawn, tmp_path):
    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    srv = spawn(state_dir=tmp_path / "state")
    iam = client("iam", srv.endpoint)
    root = iam.get_user()["User"]
    assert root["Arn"] == f"arn:aws:iam::{ACCOUNT}:root"
    made = root["CreateDate"]
    after = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=1)
    assert before <= made <= after, made
    # Stored once: asked again, or after a restart, it is the same.
    user = iam.create_user(UserName="u")["User"]
    assert user["CreateDate"] >= made
    srv.stop()
    again = spawn(state_dir=tmp_path / "state")
    assert client("iam", again.endpoint).get_user()["User"]["CreateDate"] == made


def test_the_account_is_made_with_its_first_entity(iam):
    user = iam.create_user(UserName="first")["User"]
    # Made with the user, in the same transaction: asked later, the account is not younger.
    made = iam.get_user()["User"]["CreateDate"]
    assert made <= user["CreateDate"] < made + datetime.timedelta(seconds=5)


# --- 9. RoleLastUsed -------------------------------------------------------------------------

ROOT_KEY, ROOT_SECRET = "AKIAKUMORIROOTTEST02", "kumori-root-secret-for-tests-only-000002"


def test_role_last_used_is_filled_when_role_credentials_sign(spawn):
    srv = spawn(extra_args=["--auth", "verify"],
                env={"KUMORI_ROOT_ACCESS_KEY_ID": ROOT_KEY, "KUMORI_ROOT_SECRET_ACCESS_KEY": ROOT_SECRET})
    iam = client("iam", srv.endpoint, key=ROOT_KEY, secret=ROOT_SECRET)
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}}]}
    iam.create_role(RoleName="worker", AssumeRolePolicyDocument=json.dumps(trust))
    assert iam.get_role(RoleName="worker")["Role"]["RoleLastUsed"] == {}
    sts = client("sts", srv.endpoint, key=ROOT_KEY, secret=ROOT_SECRET)
    c = sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/worker", RoleSessionName="session")["Credentials"]
    # Assuming the role is not using it.
    assert iam.get_role(RoleName="worker")["Role"]["RoleLastUsed"] == {}
    before = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=1)
    session = dict(key=c["AccessKeyId"], secret=c["SecretAccessKey"], token=c["SessionToken"])
    client("ec2", srv.endpoint, "eu-west-1", **session).describe_vpcs()
    used = iam.get_role(RoleName="worker")["Role"]["RoleLastUsed"]
    assert used["Region"] == "eu-west-1"
    assert before <= used["LastUsedDate"] <= datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=1)
