#!/usr/bin/env python3
"""Instance benchmark: kumori next to moto_server, on loopback.

For each server, in one fresh process:
  (a) load one VPC and a /16 subnet with N instances (default 1,000), launched 100 at a time;
  (b) DescribeInstances over all of them: the signed request is built once and resent on one
      keep-alive connection, so the client's cost is tiny and the same for both;
  (c) RunInstances of one instance, timed alone (requests signed before the clock starts).

Target (issue 4): DescribeInstances at least 100x faster than moto.

Usage:
  python3 bench/instances.py                  # kumori from target/release, moto if installed
  python3 bench/instances.py --instances 200 --no-moto
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


def describe_latency(port: int, expected: int, requests: int) -> tuple[float, float]:
    body, headers = signed_query(port, {"Action": "DescribeInstances"})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    samples = []
    for i in range(requests + 3):  # the first 3 warm caches and the connection
        elapsed, data = timed(conn, body, headers)
        if i == 0:
            got = data.count(b"<instanceId>")
            if got != expected:
                raise SystemExit(f"DescribeInstances returned {got} instances, expected {expected}")
        if i >= 3:
            samples.append(elapsed)
    conn.close()
    return statistics.median(samples), statistics.quantiles(samples, n=10)[8]


def run_latency(port: int, subnet: str, ami: str, runs: int) -> tuple[float, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    samples = []
    for _ in range(runs):
        request = signed_query(
            port,
            {"Action": "RunInstances", "ImageId": ami, "InstanceType": "t3.micro", "MinCount": "1",
             "MaxCount": "1", "SubnetId": subnet},
        )
        elapsed, _ = timed(conn, *request)
        samples.append(elapsed)
    conn.close()
    return statistics.median(samples), statistics.quantiles(samples, n=10)[8]


def measure(server: Server, n: int, requests: int, runs: int) -> dict:
    print(f"[{server.name}] launching {n} instances ...", flush=True)
    server.start()
    try:
        subnet, ami, load_s = load(server.port, n)
        print(f"[{server.name}] DescribeInstances x{requests} ...", flush=True)
        d_med, d_p90 = describe_latency(server.port, n, requests)
        print(f"[{server.name}] RunInstances x{runs} ...", flush=True)
        r_med, r_p90 = run_latency(server.port, subnet, ami, runs)
    finally:
        server.stop()
    return {"load_s": load_s, "describe_ms": d_med * 1000, "describe_p90_ms": d_p90 * 1000,
            "run_ms": r_med * 1000, "run_p90_ms": r_p90 * 1000}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--instances", type=int, default=1000)
    ap.add_argument("--requests", type=int, default=20, help="timed DescribeInstances calls")
    ap.add_argument("--runs", type=int, default=50, help="timed RunInstances calls")
    ap.add_argument("--no-moto", action="store_true", help="measure kumori only")
    args = ap.parse_args()

    kumori_bin = Path(os.environ.get("KUMORI_BIN") or REPO / "target" / "release" / "kumori")
    if not kumori_bin.exists():
        print(f"kumori binary not found at {kumori_bin}: cargo build --release, or set KUMORI_BIN", file=sys.stderr)
        return 2
    kumori = Server("kumori", lambda port: [str(kumori_bin), "serve", "--host", "127.0.0.1", "--port", str(port), "--ephemeral"])
    results = {"kumori": measure(kumori, args.instances, args.requests, args.runs)}
    moto_missing = importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None
    if args.no_moto or moto_missing:
        print("moto skipped: " + ("--no-moto" if args.no_moto else "moto[server] is not installed (pip install -r bench/requirements.txt)"))
    else:
        moto = Server("moto", lambda port: [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)])
        results["moto"] = measure(moto, args.instances, args.requests, args.runs)

    k, m = results["kumori"], results.get("moto")
    rows = [
        (f"launch {args.instances} instances, 100 a call (s)", "load_s"),
        (f"DescribeInstances x{args.instances}, median (ms)", "describe_ms"),
        (f"DescribeInstances x{args.instances}, p90 (ms)", "describe_p90_ms"),
        ("RunInstances of one, median (ms)", "run_ms"),
        ("RunInstances of one, p90 (ms)", "run_p90_ms"),
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
        ratio = m["describe_ms"] / k["describe_ms"]
        verdict = "met" if ratio >= TARGET_RATIO else "MISSED"
        print(f"target: DescribeInstances >= {TARGET_RATIO:.0f}x moto: {ratio:.1f}x, {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
