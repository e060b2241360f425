#!/usr/bin/env python3
"""Writes data/images.json: the public image families people name in `aws_ami` filters and
`describe-images` calls, as templates that `public_images` makes into each region's AMIs.

Every family carries its source for the naming, owner and description patterns. Release
dates and versions are kumori's own (one current release per family, plus one older
AL2023 release so that `most_recent` has a choice), not AWS's build numbers.

    python3 crates/catalog/scripts/gen_images.py           # rewrite data/images.json
    python3 crates/catalog/scripts/gen_images.py --check   # exit 1 if it is out of date
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "data" / "images.json"

AMAZON = "137112412989"  # Amazon Linux images, alias "amazon"
WINDOWS = "801119661308"  # Amazon's Windows images, alias "amazon"
CANONICAL = "099720109477"  # Ubuntu, no alias
DEBIAN = "136693071363"  # Debian, no alias
REDHAT = "309956199498"  # Red Hat Enterprise Linux, no alias

# Sources, named in each family's first entry:
SOURCES = {
    "al2023": "Amazon Linux 2023 User Guide, 'AL2023 on Amazon EC2' (al2023-ami-<version>-kernel-<k>-<arch>, "
              "al2023-ami-minimal-...); names and descriptions as DescribeImages shows them in moto's "
              "latest_amis data (getmoto/moto, moto/ec2/resources/latest_amis, 2026)",
    "al2": "Amazon Linux 2 User Guide, 'AL2 supported kernels' (kernel 4.14 images amzn2-ami-hvm-*, kernel "
           "5.10 amzn2-ami-kernel-5.10-hvm-*, minimal amzn2-ami-minimal-*); names and descriptions as in "
           "moto's latest_amis data",
    "ubuntu": "Ubuntu on AWS, 'Find Ubuntu images on AWS' (ubuntu/images/hvm-ssd/... up to 22.04, "
              "ubuntu/images/hvm-ssd-gp3/... from 22.04 on; owner 099720109477); the Terraform registry's "
              "aws_instance example filters ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-* "
              "(ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-* in its older versions)",
    "debian": "Debian wiki, Cloud/AmazonEC2Image (debian-<release>-<arch>-<date>-<build>, owner 136693071363)",
    "rhel": "Red Hat, 'Red Hat Enterprise Linux AMIs on AWS' (RHEL-<version>_HVM-<date>-<arch>-<n>-Hourly2-GP3, "
            "owner 309956199498)",
    "windows": "Amazon EC2 Windows AMI reference (Windows_Server-<year>-English-Full-Base-<date>, owner "
               "801119661308, alias amazon)",
}

ARCH_NAME = {"x86_64": {"deb": "amd64", "al": "x86_64"}, "arm64": {"deb": "arm64", "al": "arm64"}}


def image(name, description, owner, alias, arch, boot, imds, root, size, vtype, created, deprecated,
          platform_details="Linux/UNIX", usage="RunInstances", platform=None, virt="hvm", comment=None):
    out = {}
    if comment:
        out["_comment"] = comment
    out.update({
        "Name": name, "Description": description, "OwnerId": owner, "ImageOwnerAlias": alias,
    })
    if platform:
        out["Platform"] = platform
    out.update({
        "Architecture": arch, "VirtualizationType": virt, "BootMode": boot, "ImdsSupport": imds,
        "RootDeviceName": root, "VolumeSize": size, "VolumeType": vtype,
        "PlatformDetails": platform_details, "UsageOperation": usage,
        "CreationDate": created, "DeprecationTime": deprecated,
    })
    return out


def al2023() -> list[dict]:
    out = []
    releases = [("2023.9.20261110.0", "2026-11-10T21:31:0{s}.000Z", "2028-11-10T21:31:00.000Z"),
                ("2023.9.20261020.1", "2026-10-20T18:02:1{s}.000Z", "2028-10-20T18:02:00.000Z")]
    for r, (version, created, deprecated) in enumerate(releases):
        for minimal in (False, True):
            if r and minimal:
                continue  # one older release of the standard image is enough for most_recent
            for i, arch in enumerate(("x86_64", "arm64")):
                if r and arch == "arm64":
                    continue
                kind = "minimal-" if minimal else ""
                label = " Minimal" if minimal else ""
                comment = None
                if not out:
                    comment = f"Amazon Linux 2023. Owner {AMAZON} is Amazon's (alias amazon). Source: {SOURCES['al2023']}"
                elif r:
                    comment = "The release before: most_recent lookups must pick the newer one."
                out.append(image(
                    f"al2023-ami-{kind}{version}-kernel-6.1-{arch}",
                    f"Amazon Linux 2023 AMI {version} {arch}{label} HVM kernel-6.1",
                    AMAZON, "amazon", arch, "uefi-preferred" if arch == "x86_64" else "uefi", "v2.0",
                    "/dev/xvda", 2 if minimal else 8, "gp3",
                    created.format(s=2 * i + (4 if minimal else 0)), deprecated, comment=comment))
    return out


def al2() -> list[dict]:
    out = []
    version, created, deprecated = "2.0.20261105.0", "2026-11-05T19:1{s}:00.000Z", "2027-06-30T23:59:00.000Z"
    # (name middle, description middle, volume types, minimal)
    variants = [
        ("hvm", "Amazon Linux 2 AMI", ("gp2", "ebs"), False),
        ("kernel-5.10-hvm", "Amazon Linux 2 Kernel 5.10 AMI", ("gp2",), False),
        ("minimal-hvm", "Amazon Linux 2 AMI", ("ebs",), True),
        ("minimal-kernel-5.10-hvm", "Amazon Linux 2 Kernel 5.10 AMI", ("gp2",), True),
    ]
    s = 0
    for middle, desc, vtypes, minimal in variants:
        for arch in ("x86_64", "arm64"):
            for vt in vtypes:
                if vt == "ebs" and arch == "arm64" and not minimal:
                    continue  # AL2's arm64 images come as gp2 only
                label = " Minimal" if minimal else ""
                comment = f"Amazon Linux 2. Source: {SOURCES['al2']}" if not out else None
                out.append(image(
                    f"amzn2-ami-{middle}-{version}-{arch}-{vt}",
                    f"{desc} {version} {arch}{label} HVM {vt}",
                    AMAZON, "amazon", arch, None if arch == "x86_64" else "uefi", None,
                    "/dev/xvda", 2 if minimal else 8, "gp2" if vt == "gp2" else "standard",
                    created.format(s=s % 6), deprecated, comment=comment))
                s += 1
    return out


def ubuntu() -> list[dict]:
    out = []
    # (codename, version, prefixes it is published under, date)
    releases = [
        ("noble", "24.04", ("hvm-ssd-gp3",), "20261101"),
        ("jammy", "22.04", ("hvm-ssd", "hvm-ssd-gp3"), "20261029"),
        ("focal", "20.04", ("hvm-ssd",), "20250530"),
    ]
    for codename, version, prefixes, date in releases:
        for prefix in prefixes:
            for arch in ("x86_64", "arm64"):
                deb = ARCH_NAME[arch]["deb"]
                gp3 = prefix.endswith("gp3")
                comment = f"Canonical's images: owner {CANONICAL}, no owner alias. Source: {SOURCES['ubuntu']}" if not out else None
                created = f"{date[:4]}-{date[4:6]}-{date[6:]}T08:16:{len(out):02d}.000Z"
                lts = " LTS" if version != "24.04" else ""
                out.append(image(
                    f"ubuntu/images/{prefix}/ubuntu-{codename}-{version}-{deb}-server-{date}",
                    f"Canonical, Ubuntu, {version}{lts}, {deb} {codename} image",
                    CANONICAL, None, arch,
                    "uefi" if arch == "arm64" else "uefi-preferred" if gp3 else "legacy-bios",
                    "v2.0" if gp3 else None, "/dev/sda1", 8, "gp3" if gp3 else "gp2",
                    created, f"{int(date[:4]) + 2}{created[4:]}", comment=comment))
    return out


def debian() -> list[dict]:
    out = []
    for release, date, build in (("12", "20261101", "2300"), ("11", "20260801", "2215")):
        for arch in ("x86_64", "arm64"):
            deb = ARCH_NAME[arch]["deb"]
            comment = f"Debian's images: owner {DEBIAN}. Source: {SOURCES['debian']}" if not out else None
            created = f"{date[:4]}-{date[4:6]}-{date[6:]}T23:52:{len(out) * 8:02d}.000Z"
            out.append(image(
                f"debian-{release}-{deb}-{date}-{build}", f"Debian {release} ({date}-{build})",
                DEBIAN, None, arch, "uefi-preferred" if arch == "x86_64" else "uefi", "v2.0",
                "/dev/xvda", 8, "gp2", created, f"{int(date[:4]) + 2}{created[4:16]}:00.000Z", comment=comment))
    return out


def rhel() -> list[dict]:
    out = []
    for arch in ("x86_64", "arm64"):
        comment = f"Red Hat's images: owner {REDHAT}, billed as RHEL. Source: {SOURCES['rhel']}" if not out else None
        out.append(image(
            f"RHEL-9.6.0_HVM-20261015-{arch}-0-Hourly2-GP3", "Provided by Red Hat, Inc.",
            REDHAT, None, arch, "uefi-preferred" if arch == "x86_64" else "uefi", "v2.0",
            "/dev/sda1", 10, "gp3", f"2026-10-15T12:0{len(out)}:00.000Z", "2028-10-15T12:00:00.000Z",
            platform_details="Red Hat Enterprise Linux", usage="RunInstances:0010", comment=comment))
    return out


def windows() -> list[dict]:
    out = []
    descriptions = {
        "2025": "Microsoft Windows Server 2025 Full Locale English AMI provided by Amazon",
        "2022": "Microsoft Windows Server 2022 Full Locale English AMI provided by Amazon",
        "2019": "Microsoft Windows Server 2019 with Desktop Experience Locale English AMI provided by Amazon",
        "2016": "Microsoft Windows Server 2016 with Desktop Experience Locale English AMI provided by Amazon",
    }
    for n, (year, desc) in enumerate(descriptions.items()):
        comment = f"Windows Server: Amazon's Windows owner {WINDOWS} (alias amazon). Source: {SOURCES['windows']}" if not out else None
        out.append(image(
            f"Windows_Server-{year}-English-Full-Base-2026.11.12", desc, WINDOWS, "amazon", "x86_64",
            "uefi" if year == "2025" else None, "v2.0" if year == "2025" else None, "/dev/sda1", 30, "gp2",
            f"2026-11-12T07:4{n}:36.000Z", "2027-02-10T07:43:36.000Z",
            platform_details="Windows", usage="RunInstances:0002", platform="windows", comment=comment))
    return out


def paravirtual() -> list[dict]:
    return [image(
        "amzn-ami-pv-2018.03.0.20231218.0-x86_64-ebs", "Amazon Linux AMI 2018.03.0.20231218.0 x86_64 PV EBS",
        AMAZON, "amazon", "x86_64", None, None, "/dev/sda1", 8, "standard",
        "2023-12-18T22:38:22.000Z", "2024-12-31T23:59:00.000Z", virt="paravirtual",
        comment="An old paravirtual image, long deprecated: shown only when asked for.")]


def main() -> int:
    images = al2023() + al2() + ubuntu() + debian() + rhel() + windows() + paravirtual()
    names = [i["Name"] for i in images]
    assert len(names) == len(set(names)), "image names are unique"
    text = "[\n" + ",\n".join("  " + json.dumps(i) for i in images) + "\n]\n"
    if "--check" in sys.argv:
        if OUT.read_text() != text:
            print(f"{OUT} is out of date: run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"{len(images)} images written to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
