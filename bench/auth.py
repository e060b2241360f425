#!/usr/bin/env python3
"""What authentication and authorization cost a request, end to end on loopback.

kumori is started with --auth off, and with --auth enforce where the caller is an IAM user
holding 50 policies (10 inline, 10 AWS managed attached to the user, 30 customer managed
attached through three groups); each both on disk (its default: SQLite in a fresh temporary
state directory) and with --ephemeral. Each server answers the same DescribeVpcs, signed once
and resent on one keep-alive connection; moto_server (which checks nothing) is the baseline
when installed. Two figures per server:
  - round trip: client wall time of one request, sent to answer read (Python http.client on
    loopback, whose own share is in every figure alike);
  - server CPU: the server's user + system CPU time over the timed requests, per request
    (from /proc, in 10 ms ticks over the whole loop): the work done in the server.
The CPU part of authorization alone, without HTTP or the store, is `cargo run --release -p
kumori-services --example auth_bench`.

Usage:
  python3 bench/auth.py [--requests 2000] [--no-moto]
"""
from __future__ import annotations

import argparse
import http.client
import json
import sys
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from foundation import (  # noqa: E402  (sets up the environment)
    Server,
    kumori_binary,
    kumori_servers,
    moto_missing,
    moto_server,
    timed_loop,
)

import boto3  # noqa: E402
from botocore.auth import SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

ROOT = ("AKIAKUMORIBENCHROOT1", "kumori-bench-root-secret-000000000000000")
MANAGED = ["ReadOnlyAccess", "AmazonEC2ReadOnlyAccess", "AmazonS3ReadOnlyAccess", "AmazonVPCFullAccess",
           "AmazonRDSFullAccess", "AmazonRoute53FullAccess", "ElasticLoadBalancingFullAccess",
           "AutoScalingFullAccess", "IAMFullAccess", "AmazonS3FullAccess"]


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


def latency(server: Server, key: str, secret: str, n: int) -> dict:
    host = f"127.0.0.1:{server.port}"
    body = urllib.parse.urlencode({"Action": "DescribeVpcs", "Version": "2016-11-15"}).encode()
    req = AWSRequest(method="POST", url=f"http://{host}/", data=body,
                     headers={"Host": host, "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    SigV4Auth(Credentials(key, secret), "ec2", "us-east-1").add_auth(req)
    headers = dict(req.headers.items())
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)

    def one() -> float:
        t0 = time.perf_counter()
        conn.request("POST", "/", body, headers)
        r = conn.getresponse()
        data = r.read()
        elapsed = time.perf_counter() - t0
        if r.status != 200:
            raise SystemExit(f"HTTP {r.status}: {data[:300]!r}")
        return elapsed

    for _ in range(100):  # warm-up
        one()
    timing = timed_loop(server, n, one)
    conn.close()
    return timing


def measure(server: Server, label: str, n: int, setup=None) -> str:
    print(f"[{label}] ...", flush=True)
    server.start()
    try:
        key, secret = setup(server.port) if setup else ("test", "test")
        t = latency(server, key, secret, n)
    finally:
        server.stop()
        server.remove_state()
    return (f"{label:<44} round trip median {t['median']:7.3f} ms  p90 {t['p90']:7.3f} ms"
            f"  ({1e3 / t['median']:,.0f} req/s, one connection)   server CPU {t['cpu']:6.3f} ms/request")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--no-moto", action="store_true")
    args = ap.parse_args()
    binary = kumori_binary()
    if not binary:
        return 2
    rows = []
    for server in kumori_servers(binary):
        rows.append(measure(server, f"{server.name} --auth off", args.requests))
    root_env = {"KUMORI_ROOT_ACCESS_KEY_ID": ROOT[0], "KUMORI_ROOT_SECRET_ACCESS_KEY": ROOT[1]}
    for server in kumori_servers(binary, ["--auth", "enforce"], root_env, credentials=ROOT):
        rows.append(measure(server, f"{server.name} --auth enforce, 50 policies", args.requests, fifty_policies))
    why_not = "--no-moto" if args.no_moto else moto_missing()
    if why_not:
        print(f"moto skipped: {why_not}")
    else:
        rows.append(measure(moto_server(), "moto_server (checks nothing)", args.requests))
    print(f"DescribeVpcs, {args.requests} signed requests each, on loopback:")
    for r in rows:
        print("  " + r)
    print("kumori-disk: kumori's default, SQLite in a fresh temporary state directory; kumori-mem: --ephemeral.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
