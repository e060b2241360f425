#!/usr/bin/env python3
"""What authentication and authorization cost a request, end to end on loopback.

kumori is started twice: with --auth off, and with --auth enforce where the caller is an
IAM user holding 50 policies (10 inline, 10 AWS managed attached to the user, 30 customer
managed attached through three groups). Each server answers the same DescribeVpcs, signed
once and resent on one keep-alive connection; moto_server (which checks nothing) is the
baseline when installed. The CPU part alone is `cargo run --release -p kumori-services
--example auth_bench`.

Usage:
  python3 bench/auth.py [--requests 2000] [--no-moto]
"""
from __future__ import annotations

import argparse
import http.client
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from foundation import REPO, free_port  # noqa: E402

import boto3  # noqa: E402
from botocore.auth import SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

ROOT = ("AKIAKUMORIBENCHROOT1", "kumori-bench-root-secret-000000000000000")
MANAGED = ["ReadOnlyAccess", "AmazonEC2ReadOnlyAccess", "AmazonS3ReadOnlyAccess", "AmazonVPCFullAccess",
           "AmazonRDSFullAccess", "AmazonRoute53FullAccess", "ElasticLoadBalancingFullAccess",
           "AutoScalingFullAccess", "IAMFullAccess", "AmazonS3FullAccess"]


def start(argv, env=None) -> tuple[subprocess.Popen, int]:
    port = free_port()
    flag = "--port" if "kumori" in argv[0] else "-p"
    proc = subprocess.Popen([*argv, flag, str(port)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_kumori/health" if "kumori" in argv[0]
                                   else f"http://127.0.0.1:{port}/moto-api/", timeout=2).read()
            return proc, port
        except Exception:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"{argv[0]} did not start")


def client(service, port, key, secret):
    return boto3.session.Session().client(service, endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                                          aws_access_key_id=key, aws_secret_access_key=secret,
                                          config=Config(retries={"total_max_attempts": 1}))


def doc(i: int) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": f"Team{i}", "Effect": "Allow", "Action": ["ec2:StartInstances", "ec2:StopInstances"],
         "Resource": "arn:aws:ec2:us-east-1:*:instance/*",
         "Condition": {"StringEquals": {f"ec2:ResourceTag/team{i}": "${aws:username}"}}},
        {"Effect": "Deny", "Action": "ec2:TerminateInstances", "Resource": "*",
         "Condition": {"NotIpAddress": {"aws:SourceIp": ["127.0.0.0/8", "10.0.0.0/8"]}}},
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::bucket-{i}/${{aws:username}}/*"}]})


def fifty_policies(port: int) -> tuple[str, str]:
    iam = client("iam", port, *ROOT)
    iam.create_user(UserName="bench")
    for i in range(10):
        iam.put_user_policy(UserName="bench", PolicyName=f"inline{i}", PolicyDocument=doc(i))
    for name in MANAGED:
        iam.attach_user_policy(UserName="bench", PolicyArn=f"arn:aws:iam::aws:policy/{name}")
    for g in range(3):
        iam.create_group(GroupName=f"g{g}")
        iam.add_user_to_group(GroupName=f"g{g}", UserName="bench")
        for i in range(10):
            arn = iam.create_policy(PolicyName=f"p{g}-{i}", PolicyDocument=doc(100 + g * 10 + i))["Policy"]["Arn"]
            iam.attach_group_policy(GroupName=f"g{g}", PolicyArn=arn)
    k = iam.create_access_key(UserName="bench")["AccessKey"]
    return k["AccessKeyId"], k["SecretAccessKey"]


def latency(port: int, key: str, secret: str, n: int) -> list[float]:
    host = f"127.0.0.1:{port}"
    body = urllib.parse.urlencode({"Action": "DescribeVpcs", "Version": "2016-11-15"}).encode()
    req = AWSRequest(method="POST", url=f"http://{host}/", data=body,
                     headers={"Host": host, "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    SigV4Auth(Credentials(key, secret), "ec2", "us-east-1").add_auth(req)
    headers = dict(req.headers.items())
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    out = []
    for i in range(n + 100):
        t0 = time.perf_counter()
        conn.request("POST", "/", body, headers)
        r = conn.getresponse()
        data = r.read()
        if r.status != 200:
            raise SystemExit(f"HTTP {r.status}: {data[:300]!r}")
        if i >= 100:  # warm-up
            out.append((time.perf_counter() - t0) * 1e3)
    return out


def summary(name: str, samples: list[float]) -> str:
    samples = sorted(samples)
    med = statistics.median(samples)
    return f"{name:<34} median {med:7.3f} ms   p90 {samples[len(samples) * 9 // 10]:7.3f} ms   ({1e3 / med:,.0f} req/s, one connection)"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--no-moto", action="store_true")
    args = ap.parse_args()
    binary = REPO / "target" / "release" / "kumori"
    if not binary.exists():
        raise SystemExit("build kumori first: cargo build --release")
    rows = []
    proc, port = start([str(binary), "serve", "--ephemeral"])
    try:
        rows.append(summary("kumori --auth off", latency(port, "test", "test", args.requests)))
    finally:
        proc.terminate()
    proc, port = start([str(binary), "serve", "--ephemeral", "--auth", "enforce"],
                       {"KUMORI_ROOT_ACCESS_KEY_ID": ROOT[0], "KUMORI_ROOT_SECRET_ACCESS_KEY": ROOT[1]})
    try:
        key, secret = fifty_policies(port)
        rows.append(summary("kumori --auth enforce, 50 policies", latency(port, key, secret, args.requests)))
    finally:
        proc.terminate()
    if not args.no_moto and importlib.util.find_spec("moto"):
        proc, port = start([sys.executable, "-m", "moto.server", "-H", "127.0.0.1"])
        try:
            rows.append(summary("moto_server (checks nothing)", latency(port, "test", "test", args.requests)))
        finally:
            proc.terminate()
    print(f"DescribeVpcs, {args.requests} signed requests each, on loopback:")
    for r in rows:
        print("  " + r)


if __name__ == "__main__":
    main()
