#!/usr/bin/env python3
"""Foundation benchmark: kumori, on disk and in memory, next to moto_server, on loopback.

kumori runs twice: as it runs by default, on disk (SQLite in a fresh temporary state
directory), and with --ephemeral (an in-memory database). For each server:
  (a) start to first answer: client wall time from spawning the process to the first answered
      request (a signed DescribeRegions, polled in a tight loop), median over several starts,
      each on an empty state directory;
  (b) resident memory of the server (VmRSS of its process tree) when idle after one request,
      and again after loading one VPC with 500 subnets;
  (c) DescribeSubnets over those 500 subnets, as two figures:
      - round trip: client wall time of one request, from sending it to reading the whole
        answer, on one keep-alive loopback connection (the signed request is built once and
        resent, so the client's share is small and the same for every server);
      - server CPU: the server process's user + system CPU time over the timed loop (from
        /proc, in 10 ms ticks), divided by the requests: work done in the server, on any of its
        threads, without the client or the network.

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
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
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


def signed_query(port: int, params: dict, credentials: tuple[str, str] = ("test", "test")) -> tuple[bytes, dict]:
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
    SigV4Auth(Credentials(*credentials), "ec2", REGION).add_auth(req)
    return body, dict(req.headers.items())


def descendants(pid: int) -> list[int]:
    """pid and every process below it (moto may run helpers; be fair to it)."""
    out = [pid]
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                out += descendants(int(child))
    except FileNotFoundError:
        pass
    return out


def rss_kb(pid: int) -> int:
    """VmRSS of pid and all its descendants, in kB."""
    total = 0
    for p in descendants(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time pid and its descendants have used, in seconds."""
    total = 0
    for p in descendants(pid):
        try:
            # After the command name (in parentheses, possibly with spaces): utime and stime
            # are the 12th and 13th fields.
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except FileNotFoundError:
            pass
    return total / CLOCK_TICKS


class Server:
    """A server process on a free loopback port. With `on_disk`, each start (unless told to
    keep it) gets a fresh, empty state directory, passed as `--state-dir`."""

    def __init__(self, name: str, argv, env: dict | None = None, on_disk: bool = False,
                 credentials: tuple[str, str] = ("test", "test")):
        self.name = name
        self.argv = argv  # port -> command line
        self.env = env
        self.on_disk = on_disk
        self.credentials = credentials  # what the start-up probe signs with
        self.state_dir: str | None = None
        self.proc: subprocess.Popen | None = None
        self.port = 0

    def command(self) -> list[str]:
        argv = self.argv(self.port)
        return argv + ["--state-dir", self.state_dir] if self.on_disk else argv

    def start(self, timeout: float = 60.0, keep_state: bool = False) -> float:
        """Starts the server; returns seconds from spawn to the first answered request."""
        if self.on_disk and not (keep_state and self.state_dir):
            self.remove_state()
            self.state_dir = tempfile.mkdtemp(prefix="kumori-bench-")
        self.port = free_port()
        body, headers = signed_query(self.port, {"Action": "DescribeRegions"}, self.credentials)
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, **self.env} if self.env else None,
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

    def cpu_s(self) -> float:
        return cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def remove_state(self) -> None:
        if self.state_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)
            self.state_dir = None


def kumori_servers(binary: Path, extra: list[str] | None = None, env: dict | None = None,
                   credentials: tuple[str, str] = ("test", "test")) -> list[Server]:
    """kumori as it runs by default (on disk, in a fresh temporary state directory) and with
    --ephemeral (in memory)."""
    def argv(port):
        return [str(binary), "serve", "--host", "127.0.0.1", "--port", str(port), *(extra or [])]

    return [
        Server("kumori-disk", argv, env, on_disk=True, credentials=credentials),
        Server("kumori-mem", lambda port: argv(port) + ["--ephemeral"], env, credentials=credentials),
    ]


def moto_server() -> Server:
    return Server("moto", lambda port: [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)])


def moto_missing() -> str | None:
    """Why moto cannot be measured, or None."""
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None:
        return "moto[server] is not installed (pip install -r bench/requirements.txt)"
    return None


def kumori_binary() -> Path | None:
    binary = Path(os.environ.get("KUMORI_BIN") or REPO / "target" / "release" / "kumori")
    if not binary.exists():
        print(f"kumori binary not found at {binary}: cargo build --release, or set KUMORI_BIN", file=sys.stderr)
        return None
    return binary


def timed_loop(server: Server, requests: int, one) -> dict:
    """Calls `one` (which answers the seconds of what it timed) `requests` times; answers the
    median and p90 of those round trips, and the server's CPU per call, in ms."""
    cpu0 = server.cpu_s()
    samples = [one() for _ in range(requests)]
    cpu = server.cpu_s() - cpu0
    return {
        "median": statistics.median(samples) * 1000,
        "p90": statistics.quantiles(samples, n=10)[8] * 1000,
        "cpu": cpu / requests * 1000,
    }


LEGEND = """round trip: client wall time of one request, sent to answer read, on one keep-alive loopback
  connection (Python http.client, whose own share is in every server's figure alike).
server CPU: the server's user + system CPU time over the timed loop per request, from /proc in
  10 ms ticks (so rough below ~50 ms in total); the work done in the server, on all its threads.
client wall: elapsed time the client saw, boto3 included.
kumori-disk: kumori's default, SQLite in a fresh temporary state directory; kumori-mem: --ephemeral.
moto/disk, moto/mem: moto's figure over that kumori's; above 1, kumori is faster or smaller."""


def print_table(rows: list[tuple[str, str]], results: dict, smaller_better: bool = True) -> None:
    """One column per server, then moto's figure over each kumori's (above 1: kumori better)."""
    names = list(results)
    kumoris = [n for n in names if n.startswith("kumori")]
    moto = results.get("moto")
    width = max(len(label) for label, _ in rows) + 2
    header = f"{'metric':<{width}}" + "".join(f"{n:>12}" for n in names)
    if moto:
        header += "".join(f"{'moto/' + n.split('-')[1]:>11}" for n in kumoris)
    print(header)
    print("-" * len(header))
    for label, key in rows:
        line = f"{label:<{width}}"
        for n in names:
            v = results[n].get(key)
            line += f"{v:12.2f}" if v is not None else f"{'-':>12}"
        if moto:
            for n in kumoris:
                k, m = results[n].get(key), moto.get(key)
                line += f"{m / k:10.1f}x" if k and m else f"{'-':>11}"
        print(line)
    print("-" * len(header))
    print(LEGEND)


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


def describe_latency(server: Server, vpc: str, n_subnets: int, requests: int) -> dict:
    """DescribeSubnets (filtered to the VPC, so every server returns exactly the loaded subnets
    and not, e.g., moto's default ones): round trip median and p90, server CPU, reconnects."""
    body, headers = signed_query(
        server.port, {"Action": "DescribeSubnets", "Filter.1.Name": "vpc-id", "Filter.1.Value.1": vpc}
    )
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    reconnects = 0

    def one() -> float:
        nonlocal reconnects
        if conn.sock is None:
            reconnects += 1  # the server closed the connection after the previous answer
        t0 = time.perf_counter()
        conn.request("POST", "/", body, headers)
        resp = conn.getresponse()
        data = resp.read()
        elapsed = time.perf_counter() - t0
        if resp.status != 200:
            raise SystemExit(f"DescribeSubnets answered HTTP {resp.status}: {data[:300]!r}")
        if data.count(b"<subnetId>") != n_subnets:
            raise SystemExit(f"DescribeSubnets returned {data.count(b'<subnetId>')} subnets, expected {n_subnets}")
        return elapsed

    for _ in range(10):  # warm caches and the connection
        one()
    reconnects = 0
    timing = timed_loop(server, requests, one)
    conn.close()
    return {**timing, "reconnects": reconnects}


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
        d = describe_latency(server, vpc, subnets, requests)
    finally:
        server.stop()
        server.remove_state()
    return {
        "start_ms": statistics.median(start_times) * 1000,
        "start_all_ms": [round(t * 1000, 1) for t in start_times],
        "idle_mb": idle,
        "loaded_mb": loaded,
        "load_s": load_s,
        "median_ms": d["median"],
        "p90_ms": d["p90"],
        "cpu_ms": d["cpu"],
        "reconnects": d["reconnects"],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--starts", type=int, default=5, help="process starts to take the median of")
    ap.add_argument("--subnets", type=int, default=500)
    ap.add_argument("--requests", type=int, default=200, help="timed DescribeSubnets calls")
    ap.add_argument("--no-moto", action="store_true", help="measure kumori only")
    ap.add_argument("--check", action="store_true", help="exit 1 if kumori misses a target")
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
    results = {s.name: measure(s, args.starts, args.subnets, args.requests) for s in servers}

    n = args.subnets
    rows = [
        ("start to first answer, median (ms, client wall)", "start_ms"),
        ("idle RSS after one request (MB)", "idle_mb"),
        (f"RSS with {n} subnets (MB)", "loaded_mb"),
        (f"create VPC + {n} subnets via boto3 (s, client wall)", "load_s"),
        (f"DescribeSubnets x{n}, round trip median (ms)", "median_ms"),
        (f"DescribeSubnets x{n}, round trip p90 (ms)", "p90_ms"),
        (f"DescribeSubnets x{n}, server CPU per request (ms)", "cpu_ms"),
    ]
    print()
    print(f"kumori: {kumori_bin}")
    print_table(rows, results)
    for name, r in results.items():
        print(f"{name} starts (ms): {r['start_all_ms']}")
    for name, r in results.items():
        if r["reconnects"]:
            print(
                f"note: {name} closed the connection after {r['reconnects']} of {args.requests} timed answers;"
                " the reconnects (loopback TCP connect) are inside its figures"
            )

    misses = []
    for name in (n for n in results if n.startswith("kumori")):
        k = results[name]
        if k["start_ms"] > TARGET_START_MS:
            misses.append(f"{name} start {k['start_ms']:.1f} ms > {TARGET_START_MS:.0f} ms")
        if k["idle_mb"] > TARGET_IDLE_RSS_MB:
            misses.append(f"{name} idle RSS {k['idle_mb']:.1f} MB > {TARGET_IDLE_RSS_MB:.0f} MB")
    print(
        f"kumori targets (start <= {TARGET_START_MS:.0f} ms, idle RSS <= {TARGET_IDLE_RSS_MB:.0f} MB): "
        + ("all met" if not misses else "MISSED: " + "; ".join(misses))
    )
    return 1 if (args.check and misses) else 0


if __name__ == "__main__":
    sys.exit(main())
