"""Launch templates with versions, and instances launched from them."""
import base64

import pytest
from support import expect_error, tag_spec


@pytest.fixture
def ami(ec2):
    flt = [{"Name": "name", "Values": ["al2023-ami-2023.9.20261110.0-kernel-6.1-x86_64"]}]
    return ec2.describe_images(Owners=["amazon"], Filters=flt)["Images"][0]


def test_versions_default_and_describe(ec2, ami):
    data = {"ImageId": ami["ImageId"], "InstanceType": "t3.micro",
            "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 2},
            "TagSpecifications": tag_spec("instance", Tier="web"),
            "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 20, "VolumeType": "gp3"}}]}
    lt = ec2.create_launch_template(LaunchTemplateName="web", VersionDescription="first", LaunchTemplateData=data,
                                    TagSpecifications=tag_spec("launch-template", Team="platform"))["LaunchTemplate"]
    assert lt["LaunchTemplateId"].startswith("lt-")
    assert (lt["DefaultVersionNumber"], lt["LatestVersionNumber"]) == (1, 1)
    assert lt["CreatedBy"] == "arn:aws:iam::000000000000:root"
    with expect_error("InvalidLaunchTemplateName.AlreadyExistsException", 400):
        ec2.create_launch_template(LaunchTemplateName="web", LaunchTemplateData=data)
    with expect_error("InvalidLaunchTemplateName.MalformedException", 400):
        ec2.create_launch_template(LaunchTemplateName="web server!", LaunchTemplateData=data)
    # A version from the first, changing only the type.
    v2 = ec2.create_launch_template_version(LaunchTemplateName="web", SourceVersion="1",
                                            LaunchTemplateData={"InstanceType": "t3.small"})["LaunchTemplateVersion"]
    assert v2["VersionNumber"] == 2 and v2["DefaultVersion"] is False
    assert v2["LaunchTemplateData"]["InstanceType"] == "t3.small"
    assert v2["LaunchTemplateData"]["MetadataOptions"] == {"HttpTokens": "required", "HttpPutResponseHopLimit": 2}
    v3 = ec2.create_launch_template_version(LaunchTemplateId=lt["LaunchTemplateId"], LaunchTemplateData={"InstanceType": "t3.large"})
    assert v3["LaunchTemplateVersion"]["LaunchTemplateData"] == {"InstanceType": "t3.large"}
    (shown,) = ec2.describe_launch_templates(LaunchTemplateNames=["web"])["LaunchTemplates"]
    assert (shown["DefaultVersionNumber"], shown["LatestVersionNumber"]) == (1, 3)
    assert {"Key": "Team", "Value": "platform"} in shown["Tags"]
    versions = ec2.describe_launch_template_versions(LaunchTemplateId=lt["LaunchTemplateId"])["LaunchTemplateVersions"]
    assert sorted(v["VersionNumber"] for v in versions) == [1, 2, 3]
    (latest,) = ec2.describe_launch_template_versions(LaunchTemplateName="web", Versions=["$Latest"])["LaunchTemplateVersions"]
    assert latest["VersionNumber"] == 3
    assert [v["VersionNumber"] for v in ec2.describe_launch_template_versions(
        LaunchTemplateName="web", Filters=[{"Name": "instance-type", "Values": ["t3.small"]}])["LaunchTemplateVersions"]] == [2]
    assert ec2.describe_launch_template_versions(LaunchTemplateName="web", Versions=["1"])["LaunchTemplateVersions"][0]["LaunchTemplateData"] == data
    # The default moves; the default version cannot be deleted, others can, numbers are not reused.
    ec2.modify_launch_template(LaunchTemplateId=lt["LaunchTemplateId"], DefaultVersion="2")
    with expect_error("InvalidLaunchTemplateId.VersionNotFound", 400):
        ec2.modify_launch_template(LaunchTemplateId=lt["LaunchTemplateId"], DefaultVersion="9")
    out = ec2.delete_launch_template_versions(LaunchTemplateId=lt["LaunchTemplateId"], Versions=["2", "3", "7"])
    assert [v["VersionNumber"] for v in out["SuccessfullyDeletedLaunchTemplateVersions"]] == [3]
    failed = {v["VersionNumber"]: v["ResponseError"]["Code"] for v in out["UnsuccessfullyDeletedLaunchTemplateVersions"]}
    assert failed == {2: "unexpectedError", 7: "launchTemplateVersionDoesNotExist"}
    v4 = ec2.create_launch_template_version(LaunchTemplateName="web", LaunchTemplateData={"InstanceType": "m5.large"})
    assert v4["LaunchTemplateVersion"]["VersionNumber"] == 4
    ec2.delete_launch_template(LaunchTemplateName="web")
    with expect_error("InvalidLaunchTemplateName.NotFoundException", 400):
        ec2.describe_launch_templates(LaunchTemplateNames=["web"])
    with expect_error("InvalidLaunchTemplateId.NotFound", 400):
        ec2.describe_launch_templates(LaunchTemplateIds=[lt["LaunchTemplateId"]])
    with expect_error("InvalidLaunchTemplateId.Malformed", 400):
        ec2.describe_launch_templates(LaunchTemplateIds=["web"])


def test_run_instances_from_a_template(ec2, ami):
    user_data = base64.b64encode(b"#!/bin/sh\necho hi\n").decode()
    lt = ec2.create_launch_template(LaunchTemplateName="app", LaunchTemplateData={
        "ImageId": ami["ImageId"], "InstanceType": "t3.micro", "UserData": user_data,
        "MetadataOptions": {"HttpTokens": "required"},
        "TagSpecifications": tag_spec("instance", Tier="app"),
    })["LaunchTemplate"]
    ec2.create_launch_template_version(LaunchTemplateName="app", SourceVersion="1", LaunchTemplateData={"InstanceType": "t3.small"})
    (i,) = ec2.run_instances(MinCount=1, MaxCount=1, LaunchTemplate={"LaunchTemplateName": "app"})["Instances"]
    assert i["InstanceType"] == "t3.micro" and i["ImageId"] == ami["ImageId"]
    assert i["MetadataOptions"]["HttpTokens"] == "required"
    tags = {t["Key"]: t["Value"] for t in i["Tags"]}
    assert tags == {"Tier": "app", "aws:ec2launchtemplate:id": lt["LaunchTemplateId"], "aws:ec2launchtemplate:version": "1"}
    got = ec2.describe_instance_attribute(InstanceId=i["InstanceId"], Attribute="userData")["UserData"]["Value"]
    assert base64.b64decode(got) == b"#!/bin/sh\necho hi\n"
    # A version by number, with the request overriding the template.
    (j,) = ec2.run_instances(MinCount=1, MaxCount=1, InstanceType="t3.medium",
                             LaunchTemplate={"LaunchTemplateId": lt["LaunchTemplateId"], "Version": "$Latest"})["Instances"]
    assert j["InstanceType"] == "t3.medium"
    assert {"Key": "aws:ec2launchtemplate:version", "Value": "2"} in j["Tags"]
    with expect_error("InvalidLaunchTemplateId.VersionNotFound", 400):
        ec2.run_instances(MinCount=1, MaxCount=1, LaunchTemplate={"LaunchTemplateName": "app", "Version": "5"})
    with expect_error("InvalidLaunchTemplateName.NotFoundException", 400):
        ec2.run_instances(MinCount=1, MaxCount=1, LaunchTemplate={"LaunchTemplateName": "nope"})
    # Template data that RunInstances refuses is refused when used.
    ec2.create_launch_template(LaunchTemplateName="broken", LaunchTemplateData={"ImageId": ami["ImageId"], "InstanceType": "x1.16xlarge"})
    with expect_error("InvalidParameterValue", 400):
        ec2.run_instances(MinCount=1, MaxCount=1, LaunchTemplate={"LaunchTemplateName": "broken"})
    # GetLaunchTemplateData describes an instance as template data.
    data = ec2.get_launch_template_data(InstanceId=i["InstanceId"])["LaunchTemplateData"]
    assert (data["ImageId"], data["InstanceType"], data["MetadataOptions"]["HttpTokens"]) == (ami["ImageId"], "t3.micro", "required")
