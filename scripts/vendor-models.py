#!/usr/bin/env python3
"""Regenerate models/ from a pinned botocore: the official AWS service models, minus docs.

Usage: python3 scripts/vendor-models.py            # rewrite models/
       python3 scripts/vendor-models.py --check    # exit 1 if models/ would change

The pinned version lives in models/BOTOCORE_VERSION. Install it first
(pip install botocore==$(cat models/BOTOCORE_VERSION)); the script refuses any other.
"""
import gzip, json, os, shutil, sys

# kumori service name -> botocore directory and API version.
SERVICES = {
    "ec2": ("ec2", "2016-11-15"),
    "iam": ("iam", "2010-05-08"),
    "sts": ("sts", "2011-06-15"),
    "elbv2": ("elbv2", "2015-12-01"),
    "autoscaling": ("autoscaling", "2011-01-01"),
    "rds": ("rds", "2014-10-31"),
    "route53": ("route53", "2013-04-01"),
    "s3": ("s3", "2006-03-01"),
    "secretsmanager": ("secretsmanager", "2017-10-17"),
}
# Keys that carry prose only; nothing on the wire depends on them.
DROP = {"documentation", "documentationUrl", "examples", "deprecatedMessage"}


def strip(node):
    if isinstance(node, dict):
        return {k: strip(v) for k, v in node.items() if k not in DROP}
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


def main():
    import botocore

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = os.path.join(root, "models")
    pinned = open(os.path.join(out, "BOTOCORE_VERSION")).read().strip()
    if botocore.__version__ != pinned:
        sys.exit(f"botocore {botocore.__version__} installed, models pinned to {pinned}")
    data = os.path.join(os.path.dirname(botocore.__file__), "data")
    check = "--check" in sys.argv
    changed = []
    for name, (bdir, version) in SERVICES.items():
        with gzip.open(os.path.join(data, bdir, version, "service-2.json.gz")) as f:
            model = strip(json.load(f))
        text = json.dumps(model, separators=(",", ":")) + "\n"
        path = os.path.join(out, f"{name}.json")
        old = open(path).read() if os.path.exists(path) else None
        if old != text:
            changed.append(name)
            if not check:
                with open(path, "w") as f:
                    f.write(text)
    if not check:
        dist = os.path.dirname(os.path.dirname(botocore.__file__))
        info = [d for d in os.listdir(dist) if d.startswith(f"botocore-{pinned}.dist-info")]
        for fname in ("LICENSE.txt", "NOTICE"):
            shutil.copy(os.path.join(dist, info[0], fname), os.path.join(out, fname))
    if check and changed:
        sys.exit(f"models out of date: {', '.join(changed)}")
    print(f"models: {len(SERVICES)} services from botocore {pinned}; changed: {changed or 'none'}")


if __name__ == "__main__":
    main()
