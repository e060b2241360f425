#!/usr/bin/env python3
"""Store benchmark: kumori on PostgreSQL beside kumori on SQLite (and moto), on loopback.

Servers: kumori-sqlite (the default: SQLite in a fresh temporary state directory), kumori-pg
(one node on a PostgreSQL server this script starts in a temporary directory with
scripts/postgres and stops at the end) and moto_server when installed. Each is loaded with
1,000 security groups in one VPC and 1,000 instances in one /16 subnet, then:
  - DescribeSecurityGroups of the VPC (1,000 groups) and DescribeInstances (all 1,000): median
    round trip over --runs calls, and server CPU per call;
  - RunInstances (one instance, a client token as boto3 sends): median round trip.
Then aggregate RunInstances throughput on PostgreSQL with one node and with three nodes on one
database: --clients client processes, each on a keep-alive connection of its own (spread over
the nodes in turn), launching for --seconds; launches per second, and the machine's CPU use.

Figures are client round trips on loopback (Python http.client's share is in every figure
alike) and server CPU from /proc (for kumori-pg, kumori's process only: PostgreSQL's own work
is in the round trip, not in that CPU figure).

PostgreSQL runs as scripts/postgres starts it, but with fsync on and synchronous_commit off:
like SQLite's WAL with synchronous=NORMAL (kumori's setting), a commit is not flushed to disk
before it is acknowledged, and a crash of kumori or of the database loses nothing committed.

Target (issue 16): on PostgreSQL, describes within 2x of SQLite.

Usage:
  python3 bench/store.py                  # kumori from target/release, moto if installed
  python3 bench/store.py --no-moto --runs 10 --seconds 5
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from foundation import (  # noqa: E402  (sets up the environment)
    REPO,
    Server,
    kumori_binary,
    moto_missing,
    moto_server,
    signed_query,
)
from instances import image_id  # noqa: E402
from security_groups import ec2_client, timed  # noqa: E402

GROUPS = 1000
INSTANCES = 1000
TARGET_DESCRIBE_RATIO = 2.0
PG_OPTIONS = "-c fsync=on -c synchronous_commit=off"


class Env:
    def __init__(self, port: int):
        self.ec2 = ec2_client(port)
        self.vpc = self.ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        self.subnet = self.ec2.create_subnet(VpcId=self.vpc, CidrBlock="10.0.0.0/16")["Subnet"]["SubnetId"]
        self.ami = image_id(self.ec2)

    def load(self, name: str) -> None:
        t0 = time.perf_counter()
        for i in range(GROUPS):
            self.ec2.create_security_group(GroupName=f"load-{i}", Description="load", VpcId=self.vpc)
        for _ in range(INSTANCES // 100):
            self.ec2.run_instances(ImageId=self.ami, InstanceType="t3.micro", MinCount=100,
                                   MaxCount=100, SubnetId=self.subnet)
        print(f"[{name}] loaded {GROUPS} groups and {INSTANCES} instances in "
              f"{time.perf_counter() - t0:.1f} s", flush=True)

    def run_params(self, token: str) -> dict:
        return {"Action": "RunInstances", "ImageId": self.ami, "InstanceType": "t3.micro",
                "MinCount": "1", "MaxCount": "1", "SubnetId": self.subnet, "ClientToken": token}


def time_calls(server: Server, requests, runs: int, check=None) -> tuple[float, float]:
    """Median round trip and server CPU per call (ms) of the signed requests, one per run."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=300)
    body, headers = requests(0)
    timed(conn, body, headers)  # warm
    samples = []
    cpu0 = server.cpu_s()
    for i in range(runs):
        body, headers = requests(i + 1)
        elapsed, data = timed(conn, body, headers)
        if check:
            check(data)
        samples.append(elapsed)
    cpu = server.cpu_s() - cpu0
    conn.close()
    return statistics.median(samples) * 1000, cpu / runs * 1000


def measure(server: Server, runs: int) -> dict:
    server.start()
    try:
        env = Env(server.port)
        env.load(server.name)
        groups = signed_query(server.port, {"Action": "DescribeSecurityGroups", "Filter.1.Name": "vpc-id",
                                            "Filter.1.Value.1": env.vpc})
        instances = signed_query(server.port, {"Action": "DescribeInstances"})

        def count(tag: bytes, at_least: int):
            def check(data: bytes):
                if data.count(tag) < at_least:
                    raise SystemExit(f"{server.name}: answer shows {data.count(tag)} {tag!r}, expected {at_least}+")
            return check

        return {
            "DescribeSecurityGroups (1,000)": time_calls(server, lambda _: groups, runs,
                                                         count(b"<groupId>", GROUPS)),
            "DescribeInstances (1,000)": time_calls(server, lambda _: instances, runs,
                                                    count(b"<instanceId>", INSTANCES)),
            "RunInstances (one)": time_calls(
                server, lambda i: signed_query(server.port, env.run_params(f"bench-{i}")), runs),
            "rss": server.rss_mb(),
        }
    finally:
        server.stop()
        server.remove_state()


def launcher(port: int, params: dict, start_at: float, seconds: float, queue) -> None:
    """One client: RunInstances on one keep-alive connection until the time is up."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        body, headers = signed_query(port, params)  # no client token: each call launches
        time.sleep(max(0.0, start_at - time.monotonic()))
        done = errors = 0
        end = start_at + seconds
        while time.monotonic() < end:
            conn.request("POST", "/", body, headers)
            resp = conn.getresponse()
            resp.read()
            if resp.status == 200:
                done += 1
            else:
                errors += 1
        queue.put((done, errors))
    except BaseException as e:  # report, don't hang the parent
        queue.put((0, repr(e)))


def machine_cpu() -> tuple[float, float]:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def throughput(nodes: list[Server], clients: int, seconds: float) -> dict:
    env = Env(nodes[0].port)
    params = {k: v for k, v in env.run_params("").items() if k != "ClientToken"}
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    start_at = time.monotonic() + 2.0
    procs = [ctx.Process(target=launcher, args=(nodes[i % len(nodes)].port, params, start_at, seconds, queue))
             for i in range(clients)]
    for p in procs:
        p.start()
    time.sleep(max(0.0, start_at - time.monotonic()))
    busy0, total0 = machine_cpu()
    results = [queue.get(timeout=seconds + 60) for _ in procs]
    busy1, total1 = machine_cpu()
    for p in procs:
        p.join(10)
    bad = [r for r in results if not isinstance(r[1], int) or r[1]]
    if bad:
        raise SystemExit(f"launch clients failed: {bad[:3]}")
    done = sum(r[0] for r in results)
    # Every launch acknowledged is there, seen from the last node.
    seen = sum(len(r["Instances"]) for r in ec2_client(nodes[-1].port).describe_instances(
        Filters=[{"Name": "subnet-id", "Values": [env.subnet]}])["Reservations"])
    if seen != done:
        raise SystemExit(f"{done} launches acknowledged but {seen} instances found")
    return {"rate": done / seconds, "busy": (busy1 - busy0) / (total1 - total0)}


def postgres(cmd: str, where: str) -> str:
    out = subprocess.run([str(REPO / "scripts" / "postgres"), cmd, where], capture_output=True, text=True,
                         env={**os.environ, "KUMORI_PG_OPTIONS": PG_OPTIONS}, timeout=300)
    if out.returncode != 0:
        raise SystemExit(f"scripts/postgres {cmd} failed:\n{out.stderr}")
    return out.stdout.strip()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--clients", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--no-moto", action="store_true")
    args = ap.parse_args()
    binary = kumori_binary()
    if binary is None:
        return 1
    pg_dir = tempfile.mkdtemp(prefix="kumori-bench-pg-")
    url = postgres("start", pg_dir)
    schemas = iter(range(1, 1000))

    def kumori(args_for):
        return lambda port: [str(binary), "serve", "--host", "127.0.0.1", "--port", str(port), *args_for()]

    def pg_node(schema: str) -> Server:
        return Server("kumori-pg", kumori(lambda: ["--database-url", url, "--database-schema", schema]))

    try:
        servers = [Server("kumori-sqlite", kumori(list), on_disk=True), pg_node(f"bench_{next(schemas)}")]
        why = moto_missing()
        if not args.no_moto and why is None:
            servers.append(moto_server())
        results = {s.name: measure(s, args.runs) for s in servers}

        agg = {}
        for n in (1, 3):
            schema = f"bench_{next(schemas)}"
            nodes = [pg_node(schema) for _ in range(n)]
            for node in nodes:
                node.start()
            try:
                print(f"[kumori-pg x{n}] {args.clients} clients launching for {args.seconds:g} s ...", flush=True)
                agg[n] = throughput(nodes, args.clients, args.seconds)
            finally:
                for node in nodes:
                    node.stop()
    finally:
        postgres("stop", pg_dir)
        shutil.rmtree(pg_dir, ignore_errors=True)

    names = list(results)
    print()
    print(f"kumori on PostgreSQL beside SQLite{' and moto' if 'moto' in results else ''}: "
          f"median round trip ms (server CPU ms per call)")
    width = 34
    print(f"{'':<{width}}" + "".join(f"{n:>22}" for n in names) + f"{'pg/sqlite':>11}")
    ok = True
    for op in ("DescribeSecurityGroups (1,000)", "DescribeInstances (1,000)", "RunInstances (one)"):
        line = f"{op:<{width}}"
        for n in names:
            rt, cpu = results[n][op]
            line += f"{rt:>12.2f} ({cpu:6.2f})"
        ratio = results["kumori-pg"][op][0] / results["kumori-sqlite"][op][0]
        line += f"{ratio:>10.2f}x"
        if op.startswith("Describe") and ratio > TARGET_DESCRIBE_RATIO:
            ok = False
        print(line)
    print(f"{'RSS after the load (MB)':<{width}}" + "".join(f"{results[n]['rss']:>22.1f}" for n in names))
    print()
    print(f"RunInstances throughput on PostgreSQL, {args.clients} clients, {args.seconds:g} s:")
    for n, r in agg.items():
        print(f"  {n} node{'s' if n > 1 else ' '}: {r['rate']:8.1f} launches/s   machine CPU busy {r['busy'] * 100:5.1f}%")
    print()
    print(f"target: describes on PostgreSQL within {TARGET_DESCRIBE_RATIO:g}x of SQLite: {'met' if ok else 'NOT met'}")
    if why and not args.no_moto:
        print(f"moto not measured: {why}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
