#!/usr/bin/env python3
"""Scale benchmark: does a write cost the same in a big account as in a small one?

For each server (kumori on disk, kumori --ephemeral, moto_server), in one process whose state
grows in stages: 1,000 security groups, then 100, 1,000 and 10,000 instances in one /17
subnet (launched 100 a call). At each stage, each write below is timed alone, `--runs` times,
on one keep-alive connection with requests signed before the clock starts:
  RunInstances (one), CreateNetworkInterface, AllocateAddress, CreateSecurityGroup +
  AuthorizeSecurityGroupIngress (the pair), CreateSubnet (a /28 beside the instances),
  CreateTags (on an instance);
then DescribeInstances of everything once, and the server's RSS.

Figures: round-trip median per call (ms; loopback, Python http.client's share in every
server's figure alike) and the server's CPU per call (ms, from /proc). moto is measured up to
--moto-max instances (default 1,000): past that its load alone takes many minutes.

Targets (issue 15): each write at 10,000 instances at most 1.5x its figure at 100;
RunInstances <= 3 ms; DescribeInstances of all 10,000 <= 300 ms; RSS at 10,000 <= 200 MB.

Usage:
  python3 bench/scale.py                   # kumori from target/release, moto if installed
  python3 bench/scale.py --no-moto --stages 100,1000 --runs 20
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
    signed_query,
)
from instances import image_id  # noqa: E402
from security_groups import ec2_client, timed  # noqa: E402

GROUPS = 1000
WRITES = ("RunInstances", "CreateNetworkInterface", "AllocateAddress",
          "CreateSecurityGroup+Authorize", "CreateSubnet", "CreateTags")
TARGET_GROWTH = 1.5
TARGET_RUN_MS = 3.0
TARGET_DESCRIBE_MS = 300.0
TARGET_RSS_MB = 200.0


class Env:
    """What the load made: ids the timed writes use, and counters for fresh names."""

    def __init__(self, port: int):
        self.ec2 = ec2_client(port)
        self.vpc = self.ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        self.subnet = self.ec2.create_subnet(
            VpcId=self.vpc, CidrBlock="10.0.0.0/17", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
        self.ami = image_id(self.ec2)
        self.instances = 0
        self.instance = None
        self.serial = 0  # names and /28s of the timed writes

    def grow_to(self, n: int) -> None:
        while self.instances < n:
            batch = min(100, n - self.instances)
            out = self.ec2.run_instances(ImageId=self.ami, InstanceType="t3.micro", MinCount=batch,
                                         MaxCount=batch, SubnetId=self.subnet)
            self.instance = self.instance or out["Instances"][0]["InstanceId"]
            self.instances += batch

    def next(self) -> int:
        self.serial += 1
        return self.serial


def requests_for(op: str, env: Env, port: int) -> list[tuple[bytes, dict]]:
    """The signed request(s) of one timed write; a pair is timed as one."""
    n = env.next()
    if op == "RunInstances":
        params = [{"Action": "RunInstances", "ImageId": env.ami, "InstanceType": "t3.micro",
                   "MinCount": "1", "MaxCount": "1", "SubnetId": env.subnet,
                   # boto3 and Terraform fill in a client token on every launch.
                   "ClientToken": f"scale-{n}"}]
    elif op == "CreateNetworkInterface":
        params = [{"Action": "CreateNetworkInterface", "SubnetId": env.subnet}]
    elif op == "AllocateAddress":
        params = [{"Action": "AllocateAddress", "Domain": "vpc"}]
    elif op == "CreateSecurityGroup+Authorize":
        # The authorize needs the new group's id, so it is signed once the create answers;
        # the pair's figure is the sum of the two round trips (see time_op).
        params = [{"Action": "CreateSecurityGroup", "GroupName": f"timed-{n}",
                   "GroupDescription": "timed", "VpcId": env.vpc}]
    elif op == "CreateSubnet":
        # /28s of 10.0.128.0/17, beside the instances' /17.
        base = (10 << 24) + (128 << 8) + 16 * n
        params = [{"Action": "CreateSubnet", "VpcId": env.vpc, "AvailabilityZone": "us-east-1b",
                   "CidrBlock": f"{base >> 24}.{(base >> 16) & 255}.{(base >> 8) & 255}.{base & 255}/28"}]
    elif op == "CreateTags":
        params = [{"Action": "CreateTags", "ResourceId.1": env.instance, "Tag.1.Key": f"k{n % 40}",  # under the 50-tag limit
                   "Tag.1.Value": "v"}]
    else:
        raise ValueError(op)
    return [signed_query(port, p) for p in params]


def time_op(server: Server, env: Env, op: str, runs: int) -> tuple[float, float]:
    """Median round trip and server CPU per call, in ms."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    samples = []
    cpu0 = server.cpu_s()
    for _ in range(runs):
        reqs = requests_for(op, env, server.port)
        elapsed, data = timed(conn, *reqs[0])
        if op == "CreateSecurityGroup+Authorize":
            gid = data.split(b"<groupId>")[1].split(b"</groupId>")[0].decode()
            body, headers = signed_query(server.port, {
                "Action": "AuthorizeSecurityGroupIngress", "GroupId": gid, "IpPermissions.1.IpProtocol": "tcp",
                "IpPermissions.1.FromPort": "443", "IpPermissions.1.ToPort": "443",
                "IpPermissions.1.IpRanges.1.CidrIp": "0.0.0.0/0"})
            more, data = timed(conn, body, headers)
            elapsed += more
        samples.append(elapsed)
    cpu = server.cpu_s() - cpu0
    conn.close()
    return statistics.median(samples) * 1000, cpu / runs * 1000


def describe_all(server: Server, expected: int) -> tuple[float, float]:
    body, headers = signed_query(server.port, {"Action": "DescribeInstances"})
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=300)
    timed(conn, body, headers)  # warm
    samples = []
    cpu0 = server.cpu_s()
    for _ in range(3):
        elapsed, data = timed(conn, body, headers)
        found = data.count(b"<instanceId>")
        if found < expected:
            raise SystemExit(f"{server.name}: DescribeInstances showed {found} instances, expected {expected}+")
        samples.append(elapsed)
    cpu = (server.cpu_s() - cpu0) / 3
    conn.close()
    return statistics.median(samples) * 1000, cpu * 1000


def measure(server: Server, stages: list[int], runs: int) -> dict:
    server.start()
    out = {}
    try:
        env = Env(server.port)
        print(f"[{server.name}] {GROUPS} security groups ...", flush=True)
        for i in range(GROUPS):
            env.ec2.create_security_group(GroupName=f"load-{i}", Description="load", VpcId=env.vpc)
        for n in stages:
            t0 = time.perf_counter()
            env.grow_to(n)
            print(f"[{server.name}] {n} instances (loaded in {time.perf_counter() - t0:.0f} s), timing ...",
                  flush=True)
            row = {op: time_op(server, env, op, runs) for op in WRITES}
            # The timed writes added instances; describe shows them all.
            row["DescribeInstances (all)"] = describe_all(server, n)
            row["rss"] = server.rss_mb()
            out[n] = row
    finally:
        server.stop()
        server.remove_state()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stages", default="100,1000,10000", help="instances present at each stage")
    ap.add_argument("--runs", type=int, default=30, help="timed calls of each write per stage")
    ap.add_argument("--moto-max", type=int, default=1000, help="largest stage moto is loaded to")
    ap.add_argument("--no-moto", action="store_true")
    ap.add_argument("--targets", default="kumori-disk,kumori-mem,moto")
    args = ap.parse_args()
    stages = [int(s) for s in args.stages.split(",")]

    binary = kumori_binary()
    if not binary:
        return 2
    # Enough Elastic IPs for every timed AllocateAddress.
    servers = kumori_servers(binary, ["--eip-quota", str(args.runs * len(stages) + 10)])
    why_not = "--no-moto" if args.no_moto else moto_missing()
    if why_not:
        print(f"moto skipped: {why_not}")
    else:
        servers.append(moto_server())
    wanted = args.targets.split(",")
    results = {}
    for s in servers:
        if s.name not in wanted:
            continue
        mine = [n for n in stages if s.name != "moto" or n <= args.moto_max]
        results[s.name] = measure(s, mine, args.runs)

    print()
    print("Each write timed alone on one keep-alive connection: round-trip median / server CPU per call, ms.")
    names = list(results)
    header = f"{'operation':<32}{'instances':>10}" + "".join(f"{n:>22}" for n in names)
    print(header)
    print("-" * len(header))
    for op in (*WRITES, "DescribeInstances (all)"):
        for n in stages:
            line = f"{op:<32}{n:>10}"
            for name in names:
                v = results[name].get(n, {}).get(op)
                line += f"{v[0]:>13.2f} /{v[1]:>6.2f}" if v else f"{'-':>22}"
            print(line)
    for n in stages:
        line = f"{'server RSS (MB)':<32}{n:>10}"
        for name in names:
            v = results[name].get(n, {}).get("rss")
            line += f"{v:>22.1f}" if v else f"{'-':>22}"
        print(line)
    print("-" * len(header))

    missed = []
    lo, hi = stages[0], stages[-1]
    for name in (n for n in names if n.startswith("kumori")):
        r = results[name]
        for op in WRITES:
            growth = r[hi][op][0] / r[lo][op][0]
            if growth > TARGET_GROWTH:
                missed.append(f"{name} {op} {growth:.2f}x from {lo} to {hi}")
        if r[hi]["RunInstances"][0] > TARGET_RUN_MS:
            missed.append(f"{name} RunInstances {r[hi]['RunInstances'][0]:.2f} ms at {hi}")
        if r[hi]["DescribeInstances (all)"][0] > TARGET_DESCRIBE_MS:
            missed.append(f"{name} DescribeInstances {r[hi]['DescribeInstances (all)'][0]:.0f} ms at {hi}")
        if r[hi]["rss"] > TARGET_RSS_MB:
            missed.append(f"{name} RSS {r[hi]['rss']:.0f} MB at {hi}")
    print(f"targets (each write at {hi} <= {TARGET_GROWTH}x at {lo}; RunInstances <= {TARGET_RUN_MS} ms; "
          f"DescribeInstances <= {TARGET_DESCRIBE_MS:.0f} ms; RSS <= {TARGET_RSS_MB:.0f} MB): "
          + ("all met" if not missed else "MISSED: " + "; ".join(missed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
