"""Public images: each region's catalogue with AWS's owners, names and attributes, the
lookups people and Terraform make (owners, name wildcards, most recent), and AWS's errors."""
import json

from support import client, expect_error


def names(ec2, **kw):
    return sorted(i["Name"] for i in ec2.describe_images(**kw)["Images"])


def test_the_catalogue_by_owner_and_name(ec2):
    al = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["al2023-ami-2023.*-x86_64"]}])["Images"]
    assert len(al) == 2
    newest = max(al, key=lambda i: i["CreationDate"])
    assert newest["Name"] == "al2023-ami-2023.9.20261110.0-kernel-6.1-x86_64"
    assert newest["OwnerId"] == "137112412989" and newest["ImageOwnerAlias"] == "amazon"
    assert newest["ImageId"].startswith("ami-") and len(newest["ImageId"]) == 21
    assert (newest["Architecture"], newest["VirtualizationType"], newest["RootDeviceType"]) == ("x86_64", "hvm", "ebs")
    assert newest["State"] == "available" and newest["Public"] is True
    (root,) = newest["BlockDeviceMappings"]
    assert root["DeviceName"] == newest["RootDeviceName"] == "/dev/xvda"
    assert root["Ebs"]["SnapshotId"].startswith("snap-") and root["Ebs"]["VolumeSize"] == 8
    ubuntu = names(ec2, Owners=["099720109477"], Filters=[{"Name": "name", "Values": ["ubuntu/images/*ubuntu-noble-24.04-*"]}])
    assert ubuntu == [
        "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20261101",
        "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-20261101",
    ]
    assert names(ec2, Filters=[{"Name": "architecture", "Values": ["arm64"]}, {"Name": "owner-alias", "Values": ["amazon"]}]) == [
        "al2023-ami-2023.9.20261110.0-kernel-6.1-arm64",
        "al2023-ami-minimal-2023.9.20261110.0-kernel-6.1-arm64",
        "amzn2-ami-hvm-2.0.20261105.0-arm64-gp2",
        "amzn2-ami-kernel-5.10-hvm-2.0.20261105.0-arm64-gp2",
        "amzn2-ami-minimal-hvm-2.0.20261105.0-arm64-ebs",
        "amzn2-ami-minimal-kernel-5.10-hvm-2.0.20261105.0-arm64-gp2",
    ]
    windows = ec2.describe_images(Filters=[{"Name": "platform", "Values": ["windows"]}])["Images"]
    assert {i["Name"][:19] for i in windows} == {f"Windows_Server-{y}" for y in (2016, 2019, 2022, 2025)}
    assert all(i["PlatformDetails"] == "Windows" and i["Platform"] == "windows" for i in windows)
    assert names(ec2, Owners=["self"]) == []
    assert len(names(ec2, ExecutableUsers=["all"])) == len(names(ec2))


def test_ids_differ_by_region_and_stay_put(ec2, endpoint):
    name = [{"Name": "name", "Values": ["debian-12-amd64-*"]}]
    (east,) = ec2.describe_images(Filters=name)["Images"]
    (again,) = ec2.describe_images(ImageIds=[east["ImageId"]])["Images"]
    assert again == east
    (tokyo,) = client("ec2", endpoint, "ap-northeast-1").describe_images(Filters=name)["Images"]
    assert tokyo["ImageId"] != east["ImageId"] and tokyo["Name"] == east["Name"]


def test_deprecated_images_only_when_asked(ec2):
    pv = [{"Name": "virtualization-type", "Values": ["paravirtual"]}]
    assert ec2.describe_images(Filters=pv)["Images"] == []
    (old,) = ec2.describe_images(Filters=pv, IncludeDeprecated=True)["Images"]
    assert old["Name"].startswith("amzn-ami-pv-") and old["KernelId"].startswith("aki-")
    assert ec2.describe_images(ImageIds=[old["ImageId"]])["Images"][0]["DeprecationTime"] < "2026"


def test_errors(ec2):
    with expect_error("InvalidAMIID.Malformed", 400):
        ec2.describe_images(ImageIds=["img-0123"])
    with expect_error("InvalidAMIID.NotFound", 400):
        ec2.describe_images(ImageIds=["ami-0123456789abcdef0"])
    with expect_error("InvalidParameterValue", 400):
        ec2.describe_images(Filters=[{"Name": "flavour", "Values": ["x"]}])


def test_the_cli_finds_the_latest_amazon_linux(aws):
    r = aws("ec2", "describe-images", "--owners", "amazon",
            "--filters", "Name=name,Values=al2023-ami-2023.*-arm64",
            "--query", "sort_by(Images, &CreationDate)[-1].Name")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == "al2023-ami-2023.9.20261110.0-kernel-6.1-arm64"


# The `aws_ami` lookups of the Terraform registry's examples and of the tutorials that copy
# them: (owners, name pattern, extra filters, the name most_recent must find).
REGISTRY_LOOKUPS = [
    (["amazon"], "amzn2-ami-hvm-*-x86_64-gp2", [], "amzn2-ami-hvm-2.0.20261105.0-x86_64-gp2"),
    (["amazon"], "amzn2-ami-hvm-*-x86_64-ebs", [], "amzn2-ami-hvm-2.0.20261105.0-x86_64-ebs"),
    (["amazon"], "amzn2-ami-kernel-5.10-hvm-*-x86_64-gp2", [], "amzn2-ami-kernel-5.10-hvm-2.0.20261105.0-x86_64-gp2"),
    (["amazon"], "amzn2-ami-minimal-hvm-*", [("architecture", "arm64")], "amzn2-ami-minimal-hvm-2.0.20261105.0-arm64-ebs"),
    (["amazon"], "al2023-ami-2023.*-x86_64", [], "al2023-ami-2023.9.20261110.0-kernel-6.1-x86_64"),
    (["amazon"], "al2023-ami-minimal-*-arm64", [], "al2023-ami-minimal-2023.9.20261110.0-kernel-6.1-arm64"),
    (["099720109477"], "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*", [("virtualization-type", "hvm")],
     "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20261101"),
    (["099720109477"], "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-*", [("virtualization-type", "hvm")],
     "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20261029"),
    (["099720109477"], "ubuntu/images/hvm-ssd-gp3/ubuntu-jammy-22.04-arm64-server-*", [],
     "ubuntu/images/hvm-ssd-gp3/ubuntu-jammy-22.04-arm64-server-20261029"),
    (["099720109477"], "ubuntu/images/hvm-ssd/ubuntu-focal-20.04-amd64-server-*", [],
     "ubuntu/images/hvm-ssd/ubuntu-focal-20.04-amd64-server-20250530"),
    (["136693071363"], "debian-11-amd64-*", [], "debian-11-amd64-20260801-2215"),
    (["136693071363"], "debian-12-arm64-*", [], "debian-12-arm64-20261101-2300"),
    (["309956199498"], "RHEL-9.*_HVM-*-x86_64-*", [], "RHEL-9.6.0_HVM-20261015-x86_64-0-Hourly2-GP3"),
    (["amazon"], "Windows_Server-2025-English-Full-Base-*", [], "Windows_Server-2025-English-Full-Base-2026.11.12"),
    (["801119661308"], "Windows_Server-2016-English-Full-Base-*", [], "Windows_Server-2016-English-Full-Base-2026.11.12"),
]


def test_the_lookups_tutorials_make_find_their_image_in_every_region(endpoint):
    for region in ("us-east-1", "eu-west-1", "ap-northeast-1"):
        ec2 = client("ec2", endpoint, region)
        for owners, pattern, extra, expected in REGISTRY_LOOKUPS:
            filters = [{"Name": "name", "Values": [pattern]}] + [{"Name": k, "Values": [v]} for k, v in extra]
            found = ec2.describe_images(Owners=owners, Filters=filters)["Images"]
            assert found, f"{region}: {owners} {pattern} finds nothing"
            newest = max(found, key=lambda i: i["CreationDate"])
            assert newest["Name"] == expected, (region, pattern)
            assert newest["State"] == "available"
            if owners == ["amazon"]:
                assert newest["ImageOwnerAlias"] == "amazon"
            else:
                assert newest["OwnerId"] == owners[0]


def test_the_catalogue_is_what_its_generator_writes():
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "crates" / "catalog" / "scripts" / "gen_images.py"
    proc = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_rhel_is_billed_as_rhel(ec2):
    (rhel,) = ec2.describe_images(Owners=["309956199498"], Filters=[
        {"Name": "name", "Values": ["RHEL-9.*"]}, {"Name": "architecture", "Values": ["arm64"]}])["Images"]
    assert (rhel["PlatformDetails"], rhel["UsageOperation"]) == ("Red Hat Enterprise Linux", "RunInstances:0010")
    assert "ImageOwnerAlias" not in rhel
