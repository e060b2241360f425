#!/usr/bin/env python3
"""Security group benchmark: kumori next to moto_server, on loopback.

For each server, in one fresh process:
  (a) load one VPC with N security groups (default 1,000), each with one ingress rule;
  (b) DescribeSecurityGroups over them (filtered to the VPC, so both servers return exactly
      the loaded groups plus the VPC's default group): the signed request is built once and
      resent on one keep-alive connection, so the client's cost is tiny and the same for both;
  (b') the same describe, each one right after an (untimed) write to a security group rule:
      kumori reuses what it decoded of a kind until a commit changes that kind, so this is
      its cold path, and the honest figure for a workload that writes between reads;
  (c) CreateSecurityGroup followed by AuthorizeSecurityGroupIngress on the new group, timed as
      a pair; requests are signed before the clock starts.

Target (issue 3): DescribeSecurityGroups at least 100x faster than moto.

Usage:
  python3 bench/security_groups.py                  # kumori from target/release, moto if installed
  python3 bench/security_groups.py --groups 200 --no-moto
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from foundation import REPO, Server, signed_query  # noqa: E402  (sets up the environment)

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

TARGET_RATIO = 100.0


def ec2_client(port: int):
    return boto3.session.Session().client(
        "ec2",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )


def load_groups(port: int, n: int) -> tuple[str, str, float]:
    ec2 = ec2_client(port)
    t0 = time.perf_counter()
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    first = ""
    for i in range(n):
        gid = ec2.create_security_group(GroupName=f"g{i}", Description="bench", VpcId=vpc)["GroupId"]
        ec2.authorize_security_group_ingress(
            GroupId=gid,
            IpPermissions=[{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": f"10.{i // 256}.{i % 256}.0/24"}]}],
        )
        first = first or gid
    return vpc, first, time.perf_counter() - t0


def timed(conn: http.client.HTTPConnection, body: bytes, headers: dict) -> tuple[float, bytes]:
    t0 = time.perf_counter()
    conn.request("POST", "/", body, headers)
    resp = conn.getresponse()
    data = resp.read()
    elapsed = time.perf_counter() - t0
    if resp.status != 200:
        raise SystemExit(f"HTTP {resp.status}: {data[:300]!r}")
    return elapsed, data


def describe_latency(port: int, vpc: str, expected: int, requests: int) -> tuple[float, float]:
    body, headers = signed_query(
        port, {"Action": "DescribeSecurityGroups", "Filter.1.Name": "vpc-id", "Filter.1.Value.1": vpc}
    )
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    samples = []
    for i in range(requests + 5):  # the first 5 warm caches and the connection
        elapsed, data = timed(conn, body, headers)
        if i == 0:
            got = data.count(b"<groupName>")
            if got != expected:
                raise SystemExit(f"DescribeSecurityGroups returned {got} groups, expected {expected}")
        if i >= 5:
            samples.append(elapsed)
    conn.close()
    return statistics.median(samples), statistics.quantiles(samples, n=10)[8]


def describe_after_write_latency(port: int, vpc: str, gid: str, requests: int) -> tuple[float, float]:
    describe = signed_query(
        port, {"Action": "DescribeSecurityGroups", "Filter.1.Name": "vpc-id", "Filter.1.Value.1": vpc}
    )
    rule = {
        "GroupId": gid,
        "IpPermissions.1.IpProtocol": "udp",
        "IpPermissions.1.FromPort": "53",
        "IpPermissions.1.ToPort": "53",
        "IpPermissions.1.IpRanges.1.CidrIp": "198.51.100.0/24",
    }
    authorize = signed_query(port, {"Action": "AuthorizeSecurityGroupIngress", **rule})
    revoke = signed_query(port, {"Action": "RevokeSecurityGroupIngress", **rule})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    samples = []
    for i in range(requests):
        timed(conn, *(authorize if i % 2 == 0 else revoke))
        elapsed, _ = timed(conn, *describe)
        samples.append(elapsed)
    conn.close()
    return statistics.median(samples), statistics.quantiles(samples, n=10)[8]


def create_authorize_latency(port: int, vpc: str, pairs: int) -> tuple[float, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    samples = []
    for i in range(pairs):
        create = signed_query(
            port,
            {"Action": "CreateSecurityGroup", "GroupName": f"pair{i}", "GroupDescription": "bench", "VpcId": vpc},
        )
        t_create, data = timed(conn, *create)
        gid = data.split(b"<groupId>")[1].split(b"</groupId>")[0].decode()
        authorize = signed_query(
            port,
            {
                "Action": "AuthorizeSecurityGroupIngress",
                "GroupId": gid,
                "IpPermissions.1.IpProtocol": "tcp",
                "IpPermissions.1.FromPort": "22",
                "IpPermissions.1.ToPort": "22",
                "IpPermissions.1.IpRanges.1.CidrIp": "203.0.113.0/24",
            },
        )
        t_auth, _ = timed(conn, *authorize)
        samples.append(t_create + t_auth)
    conn.close()
    return statistics.median(samples), statistics.quantiles(samples, n=10)[8]


def measure(server: Server, groups: int, requests: int, pairs: int) -> dict:
    print(f"[{server.name}] loading {groups} groups ...", flush=True)
    server.start()
    try:
        vpc, gid, load_s = load_groups(server.port, groups)
        print(f"[{server.name}] DescribeSecurityGroups x{requests} ...", flush=True)
        d_med, d_p90 = describe_latency(server.port, vpc, groups + 1, requests)
        print(f"[{server.name}] DescribeSecurityGroups after a write x{requests} ...", flush=True)
        w_med, w_p90 = describe_after_write_latency(server.port, vpc, gid, requests)
        print(f"[{server.name}] CreateSecurityGroup + AuthorizeSecurityGroupIngress x{pairs} ...", flush=True)
        c_med, c_p90 = create_authorize_latency(server.port, vpc, pairs)
    finally:
        server.stop()
    return {
        "load_s": load_s,
        "describe_ms": d_med * 1000,
        "describe_p90_ms": d_p90 * 1000,
        "cold_ms": w_med * 1000,
        "cold_p90_ms": w_p90 * 1000,
        "pair_ms": c_med * 1000,
        "pair_p90_ms": c_p90 * 1000,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--groups", type=int, default=1000)
    ap.add_argument("--requests", type=int, default=50, help="timed DescribeSecurityGroups calls")
    ap.add_argument("--pairs", type=int, default=200, help="timed create + authorize pairs")
    ap.add_argument("--no-moto", action="store_true", help="measure kumori only")
    args = ap.parse_args()

    kumori_bin = Path(os.environ.get("KUMORI_BIN") or REPO / "target" / "release" / "kumori")
    if not kumori_bin.exists():
        print(f"kumori binary not found at {kumori_bin}: cargo build --release, or set KUMORI_BIN", file=sys.stderr)
        return 2
    # A quota above the loaded count: AWS's default is 2,500 per region, kumori's too.
    kumori = Server(
        "kumori", lambda port: [str(kumori_bin), "serve", "--host", "127.0.0.1", "--port", str(port), "--ephemeral"]
    )
    results = {"kumori": measure(kumori, args.groups, args.requests, args.pairs)}
    moto_missing = importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None
    if args.no_moto or moto_missing:
        print("moto skipped: " + ("--no-moto" if args.no_moto else "moto[server] is not installed (pip install -r bench/requirements.txt)"))
    else:
        moto = Server("moto", lambda port: [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)])
        results["moto"] = measure(moto, args.groups, args.requests, args.pairs)

    k, m = results["kumori"], results.get("moto")
    rows = [
        (f"load {args.groups} groups + rules via boto3 (s)", "load_s"),
        (f"DescribeSecurityGroups x{args.groups + 1}, median (ms)", "describe_ms"),
        (f"DescribeSecurityGroups x{args.groups + 1}, p90 (ms)", "describe_p90_ms"),
        ("  same, each right after a write, median (ms)", "cold_ms"),
        ("  same, each right after a write, p90 (ms)", "cold_p90_ms"),
        ("CreateSG + AuthorizeIngress, median (ms)", "pair_ms"),
        ("CreateSG + AuthorizeIngress, p90 (ms)", "pair_p90_ms"),
    ]
    print()
    print(f"{'metric':<46} {'kumori':>10} {'moto':>10} {'moto/kumori':>12}")
    print("-" * 82)
    for label, key in rows:
        moto_v = f"{m[key]:10.2f}" if m else f"{'-':>10}"
        speedup = f"{m[key] / k[key]:11.1f}x" if m and k[key] else f"{'-':>12}"
        print(f"{label:<46} {k[key]:10.2f} {moto_v} {speedup}")
    print("-" * 82)
    if m:
        for label, key in (("repeated", "describe_ms"), ("right after a write", "cold_ms")):
            ratio = m[key] / k[key]
            verdict = "met" if ratio >= TARGET_RATIO else "MISSED"
            print(f"target: DescribeSecurityGroups ({label}) >= {TARGET_RATIO:.0f}x moto: {ratio:.1f}x, {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
