#!/usr/bin/env python3
"""Instance benchmark: kumori, on disk and in memory, next to moto_server, on loopback.

kumori runs on disk (its default: SQLite in a fresh temporary state directory) and with
--ephemeral. For each server, in one fresh process:
  (a) load one VPC and a /16 subnet with N instances (default 1,000), launched 100 at a time;
  (b) DescribeInstances over all of them: the signed request is built once and resent on one
      keep-alive connection, so the client's cost is tiny and the same for all;
  (c) RunInstances of one instance, timed alone (requests signed before the clock starts).
Each figure is a round trip (client wall time, request sent to answer read) or the server's
CPU time per request (from /proc); see the legend printed with the table.

Target (issue 4): DescribeInstances at least 100x faster than moto.

Usage:
  python3 bench/instances.py                  # kumori from target/release, moto if installed
  python3 bench/instances.py --instances 200 --no-moto
"""

from __future__ import annotations

import argparse
import http.client
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
from security_groups import ec2_client, timed  # noqa: E402

TARGET_RATIO = 100.0


def image_id(ec2) -> str:
    """An x86_64 Amazon Linux image each server knows (kumori's catalogue; moto's own)."""
    images = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "architecture", "Values": ["x86_64"]}])["Images"]
    hvm = [i for i in images if i.get("VirtualizationType", "hvm") == "hvm"]
    return sorted(hvm or images, key=lambda i: i["ImageId"])[0]["ImageId"]


def load(port: int, n: int) -> tuple[str, str, float]:
    ec2 = ec2_client(port)
    t0 = time.perf_counter()
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/16", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    ami = image_id(ec2)
    left = n
    while left > 0:
        batch = min(100, left)
        ec2.run_instances(ImageId=ami, InstanceType="t3.micro", MinCount=batch, MaxCount=batch, SubnetId=subnet)
        left -= batch
    return subnet, ami, time.perf_counter() - t0


def describe_latency(server: Server, expected: int, requests: int) -> dict:
    body, headers = signed_query(server.port, {"Action": "DescribeInstances"})
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)

    def one() -> float:
        elapsed, data = timed(conn, body, headers)
        if data.count(b"<instanceId>") != expected:
            raise SystemExit(f"DescribeInstances returned {data.count(b'<instanceId>')} instances, expected {expected}")
        return elapsed

    for _ in range(3):  # warm caches and the connection
        one()
    timing = timed_loop(server, requests, one)
    conn.close()
    return timing


def run_latency(server: Server, subnet: str, ami: str, runs: int) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)

    def one() -> float:
        request = signed_query(
            server.port,
            {"Action": "RunInstances", "ImageId": ami, "InstanceType": "t3.micro", "MinCount": "1",
             "MaxCount": "1", "SubnetId": subnet},
        )
        return timed(conn, *request)[0]

    timing = timed_loop(server, runs, one)
    conn.close()
    return timing


def measure(server: Server, n: int, requests: int, runs: int) -> dict:
    print(f"[{server.name}] launching {n} instances ...", flush=True)
    server.start()
    try:
        subnet, ami, load_s = load(server.port, n)
        print(f"[{server.name}] DescribeInstances x{requests} ...", flush=True)
        d = describe_latency(server, n, requests)
        print(f"[{server.name}] RunInstances x{runs} ...", flush=True)
        r = run_latency(server, subnet, ami, runs)
    finally:
        server.stop()
        server.remove_state()
    return {"load_s": load_s, "describe_ms": d["median"], "describe_p90_ms": d["p90"], "describe_cpu_ms": d["cpu"],
            "run_ms": r["median"], "run_p90_ms": r["p90"], "run_cpu_ms": r["cpu"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--instances", type=int, default=1000)
    ap.add_argument("--requests", type=int, default=20, help="timed DescribeInstances calls")
    ap.add_argument("--runs", type=int, default=50, help="timed RunInstances calls")
    ap.add_argument("--no-moto", action="store_true", help="measure kumori only")
    args = ap.parse_args()

    kumori_bin = kumori_binary()
    if not kumori_bin:
        return 2
    servers = kumori_servers(kumori_bin)
    why_not = "--no-moto" if args.no_moto else moto_missing()
    if why_not:
        print(f"moto skipped: {why_not}")
    else:
        servers.append(moto_server())
    results = {s.name: measure(s, args.instances, args.requests, args.runs) for s in servers}

    rows = [
        (f"launch {args.instances} instances, 100 a call (s, client wall)", "load_s"),
        (f"DescribeInstances x{args.instances}, round trip median (ms)", "describe_ms"),
        (f"DescribeInstances x{args.instances}, round trip p90 (ms)", "describe_p90_ms"),
        (f"DescribeInstances x{args.instances}, server CPU per request (ms)", "describe_cpu_ms"),
        ("RunInstances of one, round trip median (ms)", "run_ms"),
        ("RunInstances of one, round trip p90 (ms)", "run_p90_ms"),
        ("RunInstances of one, server CPU per request (ms)", "run_cpu_ms"),
    ]
    print()
    print_table(rows, results)
    if "moto" in results:
        for name in (n for n in results if n.startswith("kumori")):
            ratio = results["moto"]["describe_ms"] / results[name]["describe_ms"]
            verdict = "met" if ratio >= TARGET_RATIO else "MISSED"
            print(f"target: {name} DescribeInstances >= {TARGET_RATIO:.0f}x moto: {ratio:.1f}x, {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
