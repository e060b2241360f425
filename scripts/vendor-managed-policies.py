#!/usr/bin/env python3
"""Regenerates the AWS managed policies in data/iam/managed-policies/ from AWS's published
data, as scripts/vendor-models.py does for the service models.

The documents, versions, paths and dates come from the PyPI package moto (pinned below):
its moto/iam/aws_managed_policies.py is AWS's ListPolicies/GetPolicyVersion output. The
policy ids and descriptions, which moto does not carry, are kept from the files as they are
(see SOURCES.md). Only the policies already in the folder are refreshed; add a file with
PolicyName, Arn, PolicyId and Description to carry another.

    python3 scripts/vendor-managed-policies.py            # rewrite the files
    python3 scripts/vendor-managed-policies.py --check    # exit 1 if any would change
    python3 scripts/vendor-managed-policies.py --moto-source path/to/aws_managed_policies.py
"""
from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

MOTO_VERSION = "5.2.5"
ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "data" / "iam" / "managed-policies"
# Key order as IAM shows documents: Version first, then each statement's elements in the
# order policies are usually written.
STATEMENT_ORDER = ["Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource",
                   "NotResource", "Condition"]


def moto_source(path: str | None) -> str:
    if path:
        return Path(path).read_text()
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                        "-d", tmp, f"moto=={MOTO_VERSION}"], check=True)
        (wheel,) = Path(tmp).glob("moto-*.whl")
        with zipfile.ZipFile(wheel) as z:
            return z.read("moto/iam/aws_managed_policies.py").decode()


def published(source: str) -> dict:
    """The policies by name, from moto's module (a JSON text in a Python string)."""
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "aws_managed_policies_data":
            return json.loads(ast.literal_eval(node.value))
    raise SystemExit("aws_managed_policies_data not found in moto's source")


def ordered_document(doc: dict) -> dict:
    out = {"Version": doc["Version"]} if "Version" in doc else {}
    out.update({k: v for k, v in doc.items() if k not in ("Version", "Statement")})
    statements = doc["Statement"] if isinstance(doc["Statement"], list) else [doc["Statement"]]
    ordered = []
    for st in statements:
        o = {k: st[k] for k in STATEMENT_ORDER if k in st}
        o.update({k: v for k, v in st.items() if k not in o})
        ordered.append(o)
    out["Statement"] = ordered if isinstance(doc["Statement"], list) else ordered[0]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="report files that would change, change nothing")
    ap.add_argument("--moto-source", help="moto/iam/aws_managed_policies.py to read instead of downloading moto")
    args = ap.parse_args()
    data = published(moto_source(args.moto_source))
    stale = []
    for f in sorted(FOLDER.glob("*.json")):
        current = json.loads(f.read_text())
        p = data.get(current["PolicyName"])
        if p is None:
            print(f"{f.name}: {current['PolicyName']} is not in moto {MOTO_VERSION}'s data; left as it is")
            continue
        fresh = {
            "PolicyName": current["PolicyName"],
            "Arn": current["Arn"],
            "Path": p["Path"],
            "PolicyId": current.get("PolicyId"),
            "DefaultVersionId": p["DefaultVersionId"],
            "Description": current.get("Description"),
            "CreateDate": p["CreateDate"],
            "UpdateDate": p["UpdateDate"],
            "Document": ordered_document(p["Document"]),
        }
        fresh = {k: v for k, v in fresh.items() if v is not None}
        text = json.dumps(fresh, indent=2, ensure_ascii=False) + "\n"
        if text != f.read_text():
            stale.append(f.name)
            if not args.check:
                f.write_text(text)
    if args.check and stale:
        print("out of date:", ", ".join(stale))
        return 1
    print(f"{'checked' if args.check else 'wrote'} {len(list(FOLDER.glob('*.json')))} policies"
          + (f" ({len(stale)} changed)" if stale and not args.check else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
