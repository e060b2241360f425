#!/usr/bin/env python3
"""Foundation benchmark: kumori next to moto_server, on loopback.

Measures, for each server:
  (a) time from process start to the first answered request (a signed DescribeRegions, polled
      in a tight loop), median over several starts;
  (b) resident memory (VmRSS of the process tree) when idle after one request, and again after
      loading one VPC with 500 subnets;
  (c) server latency of DescribeSubnets over those 500 subnets: the signed request is built
      once and resent on one keep-alive connection, so client-side cost is tiny and the same
      for both servers.

Usage:
  python3 bench/foundation.py                     # kumori from target/release, moto if installed
  KUMORI_BIN=target/debug/kumori python3 bench/foundation.py --starts 3
  python3 bench/foundation.py --check             # exit 1 if kumori misses a target

moto is optional (pip install -r bench/requirements.txt); without it only kumori is measured.
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
TARGET_START_MS = 50.0
TARGET_IDLE_RSS_MB = 20.0

# Keep the host's AWS setup and proxies out: everything here talks to loopback only.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_CONFIG_FILE": "/nonexistent/kumori-bench/config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/kumori-bench/credentials",
        "AWS_EC2_METADATA_DISABLED": "true",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
)
for _var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
    os.environ.pop(_var, None)

import boto3  # noqa: E402  (after the environment is fixed)
from botocore.auth import SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def signed_query(port: int, params: dict) -> tuple[bytes, dict]:
    """Body and headers of a SigV4-signed EC2 query request to 127.0.0.1:port.

    The signature covers the Host header, so the request is built per server; it can then be
    resent as is (SigV4 has no nonce, and its date stays valid for minutes)."""
    body = urllib.parse.urlencode({"Version": "2016-11-15", **params}).encode()
    host = f"127.0.0.1:{port}"
    req = AWSRequest(
        method="POST",
        url=f"http://{host}/",
        data=body,
        headers={"Host": host, "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    SigV4Auth(Credentials("test", "test"), "ec2", REGION).add_auth(req)
    return body, dict(req.headers.items())


def rss_kb(pid: int) -> int:
    """VmRSS of pid and all its descendants, in kB (moto may run helpers; be fair to it)."""
    total = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += rss_kb(int(child))
    except FileNotFoundError:
        pass
    return total


class Server:
    def __init__(self, name: str, argv):
        self.name = name
        self.argv = argv  # port -> command line
        self.proc: subprocess.Popen | None = None
        self.port = 0

    def start(self, timeout: float = 60.0) -> float:
        """Starts the server; returns seconds from spawn to the first answered request."""
        self.port = free_port()
        body, headers = signed_query(self.port, {"Action": "DescribeRegions"})
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            self.argv(self.port), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                conn.request("POST", "/", body, headers)
                resp = conn.getresponse()
                resp.read()
                conn.close()
                if resp.status != 200:
                    raise SystemExit(f"{self.name}: DescribeRegions answered HTTP {resp.status}")
                return time.perf_counter() - t0
            except (ConnectionRefusedError, ConnectionResetError, http.client.RemoteDisconnected):
                if self.proc.poll() is not None:
                    raise SystemExit(f"{self.name} exited with {self.proc.returncode} before answering")
                if time.perf_counter() - t0 > timeout:
                    self.stop()
                    raise SystemExit(f"{self.name} did not answer within {timeout}s")
                # A short nap, not a busy spin: on a 2-core machine spinning would steal CPU
                # from the server we are timing. 0.5 ms bounds the added error.
                time.sleep(0.0005)

    def rss_mb(self) -> float:
        return rss_kb(self.proc.pid) / 1024

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def load_subnets(port: int, n: int) -> tuple[str, float]:
    """One 10.0.0.0/16 VPC with n /28 subnets; returns the VPC id and the seconds it took."""
    ec2 = boto3.session.Session().client(
        "ec2",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name=REGION,
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )
    t0 = time.perf_counter()
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    for i in range(n):
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i // 16}.{(i % 16) * 16}/28")
    return vpc, time.perf_counter() - t0


def describe_latency(port: int, vpc: str, n_subnets: int, requests: int) -> tuple[float, float, int]:
    """Median and p90 seconds of DescribeSubnets (filtered to the VPC, so both servers return
    exactly the loaded subnets and not, e.g., moto's default ones); also the reconnect count."""
    body, headers = signed_query(
        port, {"Action": "DescribeSubnets", "Filter.1.Name": "vpc-id", "Filter.1.Value.1": vpc}
    )
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    samples, reconnects = [], 0
    for i in range(requests + 10):  # the first 10 warm caches and the connection
        if conn.sock is None and i >= 10:
            reconnects += 1  # the server closed the connection after the previous answer
        t0 = time.perf_counter()
        conn.request("POST", "/", body, headers)
        resp = conn.getresponse()
        data = resp.read()
        elapsed = time.perf_counter() - t0
        if resp.status != 200:
            raise SystemExit(f"DescribeSubnets answered HTTP {resp.status}: {data[:300]!r}")
        if i == 0:
            got = data.count(b"<subnetId>")
            if got != n_subnets:
                raise SystemExit(f"DescribeSubnets returned {got} subnets, expected {n_subnets}")
        if i >= 10:
            samples.append(elapsed)
    conn.close()
    return statistics.median(samples), statistics.quantiles(samples, n=10)[8], reconnects


def measure(server: Server, starts: int, subnets: int, requests: int) -> dict:
    print(f"[{server.name}] {starts} starts ...", flush=True)
    start_times = []
    for _ in range(starts):
        start_times.append(server.start())
        server.stop()
    print(f"[{server.name}] memory and DescribeSubnets over {subnets} subnets ...", flush=True)
    server.start()  # answered one DescribeRegions already
    time.sleep(0.5)  # let startup work settle before reading "idle" memory
    idle = server.rss_mb()
    try:
        vpc, load_s = load_subnets(server.port, subnets)
        loaded = server.rss_mb()
        median, p90, reconnects = describe_latency(server.port, vpc, subnets, requests)
    finally:
        server.stop()
    return {
        "start_ms": statistics.median(start_times) * 1000,
        "start_all_ms": [round(t * 1000, 1) for t in start_times],
        "idle_mb": idle,
        "loaded_mb": loaded,
        "load_s": load_s,
        "median_ms": median * 1000,
        "p90_ms": p90 * 1000,
        "reconnects": reconnects,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--starts", type=int, default=5, help="process starts to take the median of")
    ap.add_argument("--subnets", type=int, default=500)
    ap.add_argument("--requests", type=int, default=200, help="timed DescribeSubnets calls")
    ap.add_argument("--no-moto", action="store_true", help="measure kumori only")
    ap.add_argument("--check", action="store_true", help="exit 1 if kumori misses a target")
    args = ap.parse_args()

    kumori_bin = Path(os.environ.get("KUMORI_BIN") or REPO / "target" / "release" / "kumori")
    if not kumori_bin.exists():
        print(f"kumori binary not found at {kumori_bin}: cargo build --release, or set KUMORI_BIN", file=sys.stderr)
        return 2
    kumori = Server(
        "kumori", lambda port: [str(kumori_bin), "serve", "--host", "127.0.0.1", "--port", str(port), "--ephemeral"]
    )
    results = {"kumori": measure(kumori, args.starts, args.subnets, args.requests)}

    moto_missing = importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None
    if args.no_moto or moto_missing:
        why = "--no-moto" if args.no_moto else "moto[server] is not installed (pip install -r bench/requirements.txt)"
        print(f"moto skipped: {why}")
    else:
        moto = Server("moto", lambda port: [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)])
        results["moto"] = measure(moto, args.starts, args.subnets, args.requests)

    k, m = results["kumori"], results.get("moto")
    rows = [
        ("start to first answer, median (ms)", "start_ms", f"<= {TARGET_START_MS:.0f} ms"),
        ("idle RSS after one request (MB)", "idle_mb", f"<= {TARGET_IDLE_RSS_MB:.0f} MB"),
        (f"RSS with {args.subnets} subnets (MB)", "loaded_mb", ""),
        (f"create VPC + {args.subnets} subnets via boto3 (s)", "load_s", ""),
        (f"DescribeSubnets x{args.subnets}, median (ms)", "median_ms", ""),
        (f"DescribeSubnets x{args.subnets}, p90 (ms)", "p90_ms", ""),
    ]
    print()
    print(f"kumori: {kumori_bin}")
    print(f"{'metric':<42} {'kumori':>10} {'moto':>10} {'kumori/moto':>12}  target")
    print("-" * 88)
    for label, key, target in rows:
        moto_v = f"{m[key]:10.2f}" if m else f"{'-':>10}"
        ratio = f"{k[key] / m[key]:12.3f}" if m and m[key] else f"{'-':>12}"
        print(f"{label:<42} {k[key]:10.2f} {moto_v} {ratio}  {target}")
    print("-" * 88)
    print(f"kumori starts (ms): {k['start_all_ms']}" + (f"; moto starts (ms): {m['start_all_ms']}" if m else ""))
    for name, r in results.items():
        if r["reconnects"]:
            print(
                f"note: {name} closed the connection after {r['reconnects']} of {args.requests} timed answers;"
                " the reconnects (loopback TCP connect) are inside its figures"
            )

    misses = []
    if k["start_ms"] > TARGET_START_MS:
        misses.append(f"start {k['start_ms']:.1f} ms > {TARGET_START_MS:.0f} ms")
    if k["idle_mb"] > TARGET_IDLE_RSS_MB:
        misses.append(f"idle RSS {k['idle_mb']:.1f} MB > {TARGET_IDLE_RSS_MB:.0f} MB")
    print("kumori targets: " + ("all met" if not misses else "MISSED: " + "; ".join(misses)))
    return 1 if (args.check and misses) else 0


if __name__ == "__main__":
    sys.exit(main())
