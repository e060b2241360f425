"""IAM's API as boto3 and the CLI drive it: users, keys, groups, managed and inline policies,
versions, the account's settings, and the errors IAM answers."""
import json

from support import client, expect_error

DOC = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"}]}


def test_users_keys_and_login_profiles(endpoint):
    iam = client("iam", endpoint)
    u = iam.create_user(UserName="alice", Path="/team/", Tags=[{"Key": "team", "Value": "net"}])["User"]
    assert u["UserId"].startswith("AIDA") and len(u["UserId"]) == 21
    assert u["Arn"] == "arn:aws:iam::000000000000:user/team/alice" and u["Path"] == "/team/"
    with expect_error("EntityAlreadyExists", 409):
        iam.create_user(UserName="ALICE")
    with expect_error("ValidationError", 400):
        iam.create_user(UserName="no spaces")
    assert iam.get_user(UserName="alice")["User"]["Tags"] == [{"Key": "team", "Value": "net"}]
    assert [x["UserName"] for x in iam.list_users(PathPrefix="/team/")["Users"]] == ["alice"]
    assert iam.list_users(PathPrefix="/other/")["Users"] == []
    with expect_error("NoSuchEntity", 404) as e:
        iam.get_user(UserName="bob")
    assert e.value.response["Error"]["Message"] == "The user with name bob cannot be found."
    # Keys: two at most, the secret shown once.
    k1 = iam.create_access_key(UserName="alice")["AccessKey"]
    k2 = iam.create_access_key(UserName="alice")["AccessKey"]
    with expect_error("LimitExceeded", 409):
        iam.create_access_key(UserName="alice")
    listed = iam.list_access_keys(UserName="alice")["AccessKeyMetadata"]
    assert {k["AccessKeyId"] for k in listed} == {k1["AccessKeyId"], k2["AccessKeyId"]}
    assert all("SecretAccessKey" not in k for k in listed)
    iam.update_access_key(UserName="alice", AccessKeyId=k1["AccessKeyId"], Status="Inactive")
    status = {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName="alice")["AccessKeyMetadata"]}
    assert status[k1["AccessKeyId"]] == "Inactive"
    never = iam.get_access_key_last_used(AccessKeyId=k2["AccessKeyId"])
    assert never["UserName"] == "alice" and never["AccessKeyLastUsed"]["ServiceName"] == "N/A"
    # Console password: without an account policy, IAM's default rule (three kinds of character).
    with expect_error("PasswordPolicyViolation", 400):
        iam.create_login_profile(UserName="alice", Password="onlylowercaseletters")
    p = iam.create_login_profile(UserName="alice", Password="Correct-Horse-9", PasswordResetRequired=True)["LoginProfile"]
    assert p["PasswordResetRequired"] is True
    with expect_error("EntityAlreadyExists", 409):
        iam.create_login_profile(UserName="alice", Password="Correct-Horse-9")
    # A user with keys or a password cannot go; IAM says what to remove first.
    with expect_error("DeleteConflict", 409) as e:
        iam.delete_user(UserName="alice")
    assert "access keys" in e.value.response["Error"]["Message"]
    for k in (k1, k2):
        iam.delete_access_key(UserName="alice", AccessKeyId=k["AccessKeyId"])
    with expect_error("DeleteConflict", 409):
        iam.delete_user(UserName="alice")
    iam.delete_login_profile(UserName="alice")
    iam.delete_user(UserName="alice")
    with expect_error("NoSuchEntity", 404):
        iam.get_user(UserName="alice")


def test_user_tags_and_permissions_boundaries(endpoint):
    iam = client("iam", endpoint)
    iam.create_user(UserName="tagged", Tags=[{"Key": "team", "Value": "net"}])
    iam.tag_user(UserName="tagged", Tags=[{"Key": "team", "Value": "ops"}, {"Key": "cost", "Value": "42"}])
    assert {t["Key"]: t["Value"] for t in iam.list_user_tags(UserName="tagged")["Tags"]} == {"team": "ops", "cost": "42"}
    iam.untag_user(UserName="tagged", TagKeys=["cost"])
    assert iam.list_user_tags(UserName="tagged")["Tags"] == [{"Key": "team", "Value": "ops"}]
    boundary = "arn:aws:iam::aws:policy/AmazonEC2ReadOnlyAccess"
    iam.put_user_permissions_boundary(UserName="tagged", PermissionsBoundary=boundary)
    assert iam.get_user(UserName="tagged")["User"]["PermissionsBoundary"]["PermissionsBoundaryArn"] == boundary
    with expect_error("InvalidInput", 400):
        iam.put_user_permissions_boundary(UserName="tagged", PermissionsBoundary="arn:aws:iam::aws:policy/Nope")
    iam.delete_user_permissions_boundary(UserName="tagged")
    assert "PermissionsBoundary" not in iam.get_user(UserName="tagged")["User"]
    with expect_error("NoSuchEntity", 404):
        iam.delete_login_profile(UserName="tagged")


def test_rename_keeps_keys_and_tags(endpoint):
    iam = client("iam", endpoint)
    tags = [{"Key": "team", "Value": "net"}, {"Key": "Cost", "Value": "42"}]
    iam.create_user(UserName="carol", Tags=tags)
    k = iam.create_access_key(UserName="carol")["AccessKey"]["AccessKeyId"]
    iam.update_user(UserName="carol", NewUserName="caroline")
    user = iam.get_user(UserName="caroline")["User"]
    assert user["Arn"].endswith(":user/caroline")
    assert user["Tags"] == tags  # in the order they were given
    assert iam.list_user_tags(UserName="caroline")["Tags"] == tags
    assert [x["AccessKeyId"] for x in iam.list_access_keys(UserName="caroline")["AccessKeyMetadata"]] == [k]
    # A new user of the old name starts with none.
    iam.create_user(UserName="carol")
    assert iam.list_user_tags(UserName="carol")["Tags"] == []


def test_groups_and_membership(endpoint):
    iam = client("iam", endpoint)
    g = iam.create_group(GroupName="developers")["Group"]
    assert g["GroupId"].startswith("AGPA") and g["Arn"].endswith(":group/developers")
    for n in ("d1", "d2"):
        iam.create_user(UserName=n)
        iam.add_user_to_group(GroupName="developers", UserName=n)
    got = iam.get_group(GroupName="developers")
    assert sorted(u["UserName"] for u in got["Users"]) == ["d1", "d2"]
    assert [x["GroupName"] for x in iam.list_groups_for_user(UserName="d1")["Groups"]] == ["developers"]
    with expect_error("DeleteConflict", 409):
        iam.delete_group(GroupName="developers")
    with expect_error("DeleteConflict", 409):
        iam.delete_user(UserName="d1")
    iam.remove_user_from_group(GroupName="developers", UserName="d1")
    iam.remove_user_from_group(GroupName="developers", UserName="d2")
    iam.delete_group(GroupName="developers")
    assert iam.list_groups()["Groups"] == []


def test_managed_policies_versions_and_attachments(endpoint):
    iam = client("iam", endpoint)
    p = iam.create_policy(PolicyName="read-ec2", PolicyDocument=json.dumps(DOC), Description="reads")["Policy"]
    arn = p["Arn"]
    assert arn == "arn:aws:iam::000000000000:policy/read-ec2" and p["DefaultVersionId"] == "v1"
    assert p["PolicyId"].startswith("ANPA") and p["AttachmentCount"] == 0
    with expect_error("EntityAlreadyExists", 409):
        iam.create_policy(PolicyName="read-ec2", PolicyDocument=json.dumps(DOC))
    with expect_error("MalformedPolicyDocument", 400):
        iam.create_policy(PolicyName="broken", PolicyDocument="{not json")
    # Versions: up to five, the default cannot be deleted.
    for n in range(2, 6):
        v = iam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(DOC), SetAsDefault=(n == 3))["PolicyVersion"]
        assert v["VersionId"] == f"v{n}"
    with expect_error("LimitExceeded", 409):
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(DOC))
    assert iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"] == "v3"
    with expect_error("DeleteConflict", 409):
        iam.delete_policy_version(PolicyArn=arn, VersionId="v3")
    doc = iam.get_policy_version(PolicyArn=arn, VersionId="v1")["PolicyVersion"]["Document"]
    assert doc == DOC  # boto3 decodes the URL-encoded document
    # Attach to a user, a group and a role; counted and listed.
    iam.create_user(UserName="u")
    iam.create_group(GroupName="g")
    iam.create_role(RoleName="r", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))
    iam.attach_user_policy(UserName="u", PolicyArn=arn)
    iam.attach_group_policy(GroupName="g", PolicyArn=arn)
    iam.attach_role_policy(RoleName="r", PolicyArn=arn)
    iam.attach_role_policy(RoleName="r", PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    assert iam.get_policy(PolicyArn=arn)["Policy"]["AttachmentCount"] == 3
    ents = iam.list_entities_for_policy(PolicyArn=arn)
    assert [x["UserName"] for x in ents["PolicyUsers"]] == ["u"]
    assert [x["GroupName"] for x in ents["PolicyGroups"]] == ["g"]
    assert [x["RoleName"] for x in ents["PolicyRoles"]] == ["r"]
    attached = iam.list_attached_role_policies(RoleName="r")["AttachedPolicies"]
    assert {a["PolicyName"] for a in attached} == {"read-ec2", "ReadOnlyAccess"}
    with expect_error("NoSuchEntity", 404) as e:
        iam.attach_user_policy(UserName="u", PolicyArn="arn:aws:iam::aws:policy/NoSuchPolicy")
    assert "does not exist or is not attachable" in e.value.response["Error"]["Message"]
    with expect_error("DeleteConflict", 409):
        iam.delete_policy(PolicyArn=arn)
    with expect_error("DeleteConflict", 409):
        iam.delete_role(RoleName="r")
    for f in (lambda: iam.detach_user_policy(UserName="u", PolicyArn=arn),
              lambda: iam.detach_group_policy(GroupName="g", PolicyArn=arn),
              lambda: iam.detach_role_policy(RoleName="r", PolicyArn=arn)):
        f()
    assert iam.list_policies(Scope="Local", OnlyAttached=True)["Policies"] == []
    # A policy with several versions must lose them before it goes.
    with expect_error("DeleteConflict", 409):
        iam.delete_policy(PolicyArn=arn)
    for v in ("v1", "v2", "v4", "v5"):
        iam.delete_policy_version(PolicyArn=arn, VersionId=v)
    iam.delete_policy(PolicyArn=arn)


def test_aws_managed_policies_are_shipped_with_their_documents(endpoint):
    iam = client("iam", endpoint)
    names = {p["PolicyName"] for p in iam.list_policies(Scope="AWS", MaxItems=1000)["Policies"]}
    for n in ("AdministratorAccess", "PowerUserAccess", "ReadOnlyAccess", "IAMFullAccess", "AmazonEC2FullAccess",
              "AmazonEC2ReadOnlyAccess", "AmazonVPCFullAccess", "AmazonS3FullAccess", "AmazonS3ReadOnlyAccess",
              "AmazonRDSFullAccess", "AmazonRoute53FullAccess", "ElasticLoadBalancingFullAccess", "AutoScalingFullAccess"):
        assert n in names
    admin = iam.get_policy(PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")["Policy"]
    doc = iam.get_policy_version(PolicyArn=admin["Arn"], VersionId=admin["DefaultVersionId"])["PolicyVersion"]["Document"]
    assert doc["Statement"][0]["Action"] == "*" and doc["Statement"][0]["Effect"] == "Allow"
    with expect_error("AccessDenied", 403):
        iam.create_policy_version(PolicyArn=admin["Arn"], PolicyDocument=json.dumps(DOC))


def test_inline_policies(endpoint):
    iam = client("iam", endpoint)
    iam.create_user(UserName="i")
    iam.put_user_policy(UserName="i", PolicyName="p1", PolicyDocument=json.dumps(DOC))
    assert iam.list_user_policies(UserName="i")["PolicyNames"] == ["p1"]
    got = iam.get_user_policy(UserName="i", PolicyName="p1")
    assert got["PolicyDocument"] == DOC and got["UserName"] == "i"
    with expect_error("MalformedPolicyDocument", 400):
        iam.put_user_policy(UserName="i", PolicyName="p2", PolicyDocument="[]")
    with expect_error("DeleteConflict", 409):
        iam.delete_user(UserName="i")
    iam.delete_user_policy(UserName="i", PolicyName="p1")
    with expect_error("NoSuchEntity", 404):
        iam.get_user_policy(UserName="i", PolicyName="p1")
    iam.delete_user(UserName="i")


def test_account_settings_and_authorization_details(endpoint):
    iam = client("iam", endpoint)
    with expect_error("NoSuchEntity", 404):
        iam.get_account_password_policy()
    iam.update_account_password_policy(MinimumPasswordLength=12, RequireNumbers=True)
    assert iam.get_account_password_policy()["PasswordPolicy"]["MinimumPasswordLength"] == 12
    iam.create_user(UserName="pw")
    with expect_error("PasswordPolicyViolation", 400):
        iam.create_login_profile(UserName="pw", Password="short1")
    iam.create_login_profile(UserName="pw", Password="long-enough-42")
    iam.create_account_alias(AccountAlias="kumori-lab")
    assert iam.list_account_aliases()["AccountAliases"] == ["kumori-lab"]
    iam.put_user_policy(UserName="pw", PolicyName="inline", PolicyDocument=json.dumps(DOC))
    details = iam.get_account_authorization_details(Filter=["User"])
    (u,) = details["UserDetailList"]
    assert u["UserName"] == "pw" and u["UserPolicyList"][0]["PolicyName"] == "inline"
    assert u["UserPolicyList"][0]["PolicyDocument"] == DOC
    assert iam.get_account_summary()["SummaryMap"]["Users"] == 1
    iam.attach_user_policy(UserName="pw", PolicyArn="arn:aws:iam::aws:policy/IAMFullAccess")
    aws = iam.get_account_authorization_details(Filter=["AWSManagedPolicy"])["Policies"]
    assert [p["PolicyName"] for p in aws] == ["IAMFullAccess"]
    assert aws[0]["PolicyVersionList"][0]["Document"]["Statement"]


def test_policy_simulator(endpoint):
    iam = client("iam", endpoint)
    iam.create_group(GroupName="ops")
    iam.attach_group_policy(GroupName="ops", PolicyArn="arn:aws:iam::aws:policy/AmazonEC2ReadOnlyAccess")
    iam.create_user(UserName="sim")
    iam.add_user_to_group(GroupName="ops", UserName="sim")
    iam.put_user_policy(UserName="sim", PolicyName="no-vpc", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "NoVpcs", "Effect": "Deny", "Action": "ec2:DescribeVpcs", "Resource": "*"}]}))
    arn = iam.get_user(UserName="sim")["User"]["Arn"]
    got = iam.simulate_principal_policy(PolicySourceArn=arn,
                                        ActionNames=["ec2:DescribeInstances", "ec2:DescribeVpcs", "ec2:RunInstances"])
    by = {r["EvalActionName"]: r for r in got["EvaluationResults"]}
    assert by["ec2:DescribeInstances"]["EvalDecision"] == "allowed"
    (m,) = by["ec2:DescribeInstances"]["MatchedStatements"]
    assert m["SourcePolicyType"] == "aws-managed" and m["SourcePolicyId"] == "AmazonEC2ReadOnlyAccess"
    assert by["ec2:DescribeVpcs"]["EvalDecision"] == "explicitDeny"
    (d,) = by["ec2:DescribeVpcs"]["MatchedStatements"]
    assert d["SourcePolicyType"] == "user" and d["SourcePolicyId"] == "no-vpc"
    assert d["StartPosition"]["Line"] >= 1
    assert by["ec2:RunInstances"]["EvalDecision"] == "implicitDeny"
    # A custom policy with a condition: the key it needs is reported when missing.
    doc = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
                      "Resource": "*", "Condition": {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}}]})
    missing = iam.simulate_custom_policy(PolicyInputList=[doc], ActionNames=["s3:GetObject"])["EvaluationResults"][0]
    assert missing["EvalDecision"] == "implicitDeny" and missing["MissingContextValues"] == ["aws:SourceIp"]
    inside = iam.simulate_custom_policy(PolicyInputList=[doc], ActionNames=["s3:GetObject"], ContextEntries=[
        {"ContextKeyName": "aws:SourceIp", "ContextKeyValues": ["203.0.113.9"], "ContextKeyType": "ip"}])
    assert inside["EvaluationResults"][0]["EvalDecision"] == "allowed"
    with expect_error("MalformedPolicyDocument", 400):
        iam.simulate_custom_policy(PolicyInputList=['{"Statement": []}'], ActionNames=["s3:GetObject"])
    with expect_error("NoSuchEntity", 404):
        iam.simulate_principal_policy(PolicySourceArn="arn:aws:iam::000000000000:user/ghost", ActionNames=["s3:GetObject"])


def test_simulator_with_a_resource_policy(endpoint):
    iam = client("iam", endpoint)
    iam.create_user(UserName="reader")
    arn = iam.get_user(UserName="reader")["User"]["Arn"]
    bucket = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": arn}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::assets/*"}]})
    # The user has no identity policy; the bucket's policy names it directly, which suffices.
    got = iam.simulate_principal_policy(PolicySourceArn=arn, ActionNames=["s3:GetObject", "s3:PutObject"],
                                        ResourceArns=["arn:aws:s3:::assets/logo.png"],
                                        ResourcePolicy=bucket, CallerArn=arn)["EvaluationResults"]
    by = {r["EvalActionName"]: r for r in got}
    assert by["s3:GetObject"]["EvalDecision"] == "allowed"
    assert by["s3:GetObject"]["MatchedStatements"][0]["SourcePolicyType"] == "resource"
    assert by["s3:PutObject"]["EvalDecision"] == "implicitDeny"
    with expect_error("MalformedPolicyDocument", 400):
        iam.simulate_principal_policy(PolicySourceArn=arn, ActionNames=["s3:GetObject"], CallerArn=arn,
                                      ResourcePolicy=json.dumps({"Version": "2012-10-17", "Statement": [
                                          {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}))
