#!/usr/bin/env python3
"""Security group benchmark: kumori, on disk and in memory, next to moto_server, on loopback.

kumori runs on disk (its default: SQLite in a fresh temporary state directory) and with
--ephemeral. For each server, in one fresh process:
  (a) load one VPC with N security groups (default 1,000), each with one ingress rule;
  (b) DescribeSecurityGroups over them (filtered to the VPC, so every server returns exactly
      the loaded groups plus the VPC's default group), repeated: the signed request is built
      once and resent on one keep-alive connection, so the client's cost is tiny and the same
      for all;
  (b') the same describe, each one right after an (untimed) write of one rule: kumori keeps
      what it decoded of a kind and, after a commit, brings it up to date from the rows that
      changed, so this times the describe with that one-rule patch, the figure for a workload
      that writes between reads (it is not a cold read: nothing is decoded afresh);
  (b'') on disk only, the same describe as the first request after a restart, when nothing is
      decoded yet: kumori's real cold path, a full decode of every group and rule (median over
      a few restarts);
  (c) CreateSecurityGroup followed by AuthorizeSecurityGroupIngress on the new group, timed as
      a pair; requests are signed before the clock starts.
Each figure is a round trip (client wall time, request sent to answer read) or the server's
CPU time per request (from /proc); see the legend printed with the table.

Target (issue 3): DescribeSecurityGroups at least 100x faster than moto.

Usage:
  python3 bench/security_groups.py                  # kumori from target/release, moto if installed
  python3 bench/security_groups.py --groups 200 --no-moto
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from foundation import (  # noqa: E402  (sets up the environment)
    Server,
    kumori_binary,
    kumori_servers,
    moto_missing,
    moto_server,
    print_table,
    signed_query,
    timed_loop,
)

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


def describe_request(port: int, vpc: str) -> tuple[bytes, dict]:
    return signed_query(
        port, {"Action": "DescribeSecurityGroups", "Filter.1.Name": "vpc-id", "Filter.1.Value.1": vpc}
    )


def describe_latency(server: Server, vpc: str, expected: int, requests: int) -> dict:
    describe = describe_request(server.port, vpc)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)

    def one() -> float:
        elapsed, data = timed(conn, *describe)
        if data.count(b"<groupName>") != expected:
            raise SystemExit(f"DescribeSecurityGroups returned {data.count(b'<groupName>')} groups, expected {expected}")
        return elapsed

    for _ in range(5):  # warm caches and the connection
        one()
    timing = timed_loop(server, requests, one)
    conn.close()
    return timing


def describe_after_write_latency(server: Server, vpc: str, gid: str, requests: int) -> dict:
    """The describe's round trip, each right after a one-rule write; server CPU covers both."""
    describe = describe_request(server.port, vpc)
    rule = {
        "GroupId": gid,
        "IpPermissions.1.IpProtocol": "udp",
        "IpPermissions.1.FromPort": "53",
        "IpPermissions.1.ToPort": "53",
        "IpPermissions.1.IpRanges.1.CidrIp": "198.51.100.0/24",
    }
    authorize = signed_query(server.port, {"Action": "AuthorizeSecurityGroupIngress", **rule})
    revoke = signed_query(server.port, {"Action": "RevokeSecurityGroupIngress", **rule})
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    flip = [False]

    def one() -> float:
        flip[0] = not flip[0]
        timed(conn, *(authorize if flip[0] else revoke))
        return timed(conn, *describe)[0]

    timing = timed_loop(server, requests, one)
    conn.close()
    return timing


def describe_after_restart_latency(server: Server, vpc: str, expected: int, restarts: int) -> float:
    """Median round trip of the first describe after restarting on the same state (ms)."""
    samples = []
    for _ in range(restarts):
        server.stop()
        server.start(keep_state=True)  # answers one DescribeRegions, which decodes no group
        describe = describe_request(server.port, vpc)
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        conn.connect()
        elapsed, data = timed(conn, *describe)
        conn.close()
        if data.count(b"<groupName>") != expected:
            raise SystemExit(f"DescribeSecurityGroups returned {data.count(b'<groupName>')} groups after a restart")
        samples.append(elapsed)
    return statistics.median(samples) * 1000


def create_authorize_latency(server: Server, vpc: str, pairs: int) -> dict:
    port = server.port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    count = [0]

    def one() -> float:
        i = count[0]
        count[0] += 1
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
        return t_create + t_auth

    timing = timed_loop(server, pairs, one)
    conn.close()
    return timing


def measure(server: Server, groups: int, requests: int, pairs: int, restarts: int) -> dict:
    print(f"[{server.name}] loading {groups} groups ...", flush=True)
    server.start()
    out = {}
    try:
        vpc, gid, out["load_s"] = load_groups(server.port, groups)
        print(f"[{server.name}] DescribeSecurityGroups x{requests} ...", flush=True)
        d = describe_latency(server, vpc, groups + 1, requests)
        print(f"[{server.name}] DescribeSecurityGroups after a one-rule write x{requests} ...", flush=True)
        w = describe_after_write_latency(server, vpc, gid, requests)
        if server.on_disk:
            print(f"[{server.name}] DescribeSecurityGroups first after a restart x{restarts} ...", flush=True)
            out["restart_ms"] = describe_after_restart_latency(server, vpc, groups + 1, restarts)
        print(f"[{server.name}] CreateSecurityGroup + AuthorizeSecurityGroupIngress x{pairs} ...", flush=True)
        c = create_authorize_latency(server, vpc, pairs)
    finally:
        server.stop()
        server.remove_state()
    for prefix, t in (("describe", d), ("after_write", w), ("pair", c)):
        out[f"{prefix}_ms"], out[f"{prefix}_p90_ms"], out[f"{prefix}_cpu_ms"] = t["median"], t["p90"], t["cpu"]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--groups", type=int, default=1000)
    ap.add_argument("--requests", type=int, default=50, help="timed DescribeSecurityGroups calls")
    ap.add_argument("--pairs", type=int, default=200, help="timed create + authorize pairs")
    ap.add_argument("--restarts", type=int, default=5, help="restarts for the first-describe figure (on disk)")
    ap.add_argument("--no-moto", action="store_true", help="measure kumori only")
    args = ap.parse_args()

    kumori_bin = kumori_binary()
    if not kumori_bin:
        return 2
    # The loaded count stays under the quota: AWS's default is 2,500 per region, kumori's too.
    servers = kumori_servers(kumori_bin)
    why_not = "--no-moto" if args.no_moto else moto_missing()
    if why_not:
        print(f"moto skipped: {why_not}")
    else:
        servers.append(moto_server())
    results = {s.name: measure(s, args.groups, args.requests, args.pairs, args.restarts) for s in servers}

    n = args.groups + 1
    rows = [
        (f"load {args.groups} groups + rules via boto3 (s, client wall)", "load_s"),
        (f"DescribeSecurityGroups x{n}, round trip median (ms)", "describe_ms"),
        (f"DescribeSecurityGroups x{n}, round trip p90 (ms)", "describe_p90_ms"),
        (f"DescribeSecurityGroups x{n}, server CPU per request (ms)", "describe_cpu_ms"),
        ("  right after a one-rule write, round trip median (ms)", "after_write_ms"),
        ("  right after a one-rule write, round trip p90 (ms)", "after_write_p90_ms"),
        ("  right after a one-rule write, server CPU per write+describe (ms)", "after_write_cpu_ms"),
        ("  first after a restart (cold), round trip median (ms)", "restart_ms"),
        ("CreateSG + AuthorizeIngress, round trip median (ms)", "pair_ms"),
        ("CreateSG + AuthorizeIngress, round trip p90 (ms)", "pair_p90_ms"),
        ("CreateSG + AuthorizeIngress, server CPU per pair (ms)", "pair_cpu_ms"),
    ]
    print()
    print_table(rows, results)
    if "moto" in results:
        m = results["moto"]
        for name in (n for n in results if n.startswith("kumori")):
            k = results[name]
            for label, key in (("repeated", "describe_ms"), ("right after a one-rule write", "after_write_ms")):
                ratio = m[key] / k[key]
                verdict = "met" if ratio >= TARGET_RATIO else "MISSED"
                print(f"target: {name} DescribeSecurityGroups ({label}) >= {TARGET_RATIO:.0f}x moto: {ratio:.1f}x, {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
