#!/usr/bin/env python3
"""Instances on the data plane (`kumori serve --dataplane` with runc and mmdebstrap, as root):

  (a) seconds from RunInstances' acknowledgement to `running` (kumori records it when the
      instance's SSH server greets), and to an accepted SSH login with the key pair by a
      client that connects once DescribeInstances says `running`, as a user's waiter does
      (p50, p90), the root filesystem already cached; target <= 1 s. (A client that sends
      its SYN before the instance's address exists is dropped, as on EC2, and its kernel
      retries after 1 s: polling with ssh from the first millisecond measures that.)
  (b) seconds from RunInstances to a shell user-data script's completion (p50, p90);
      target <= 5 s;
  (c) memory per idle instance: the container's cgroup usage once booted; target <= 20 MB;
  (d) many at once: t3.nano instances launched in batches until --max, and how many run.

Usage (as root, with a release build): python3 bench/instances_dataplane.py [--count 10] [--max 100]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import boto3
from botocore.config import Config

REPO = Path(__file__).resolve().parents[1]
os.environ.update({
    "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_CONFIG_FILE": "/nonexistent/kumori-bench/config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/kumori-bench/credentials",
    "AWS_EC2_METADATA_DISABLED": "true", "NO_PROXY": "127.0.0.1,localhost",
})
USER_DATA = "#!/bin/sh\ntouch /var/lib/kumori/bench-done\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=10)
    ap.add_argument("--max", type=int, default=100)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root")
    binary = os.environ.get("KUMORI_BIN") or str(REPO / "target" / "release" / "kumori")
    cache = os.environ.get("KUMORI_IMAGE_CACHE") or str(REPO / "target" / "kumori-images")
    prefix = "kn" + os.urandom(2).hex()
    port = free_port()
    state = tempfile.mkdtemp(prefix="kumori-bench-")
    proc = subprocess.Popen([binary, "serve", "--port", str(port), "--state-dir", state, "--dataplane",
                             "--dataplane-prefix", prefix, "--no-host-link", "--image-cache", cache],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        if "listening on" in line:
            break
    endpoint = f"http://127.0.0.1:{port}"
    try:
        while True:
            with urllib.request.urlopen(endpoint + "/_kumori/health", timeout=10) as r:
                image = json.load(r)["dataplane"]["instances"]["image"]
            if image == "ready":
                break
            time.sleep(1)
        ec2 = boto3.client("ec2", endpoint_url=endpoint, region_name="us-east-1", config=Config(retries={"max_attempts": 1}))
        key = ec2.create_key_pair(KeyName="bench", KeyType="ed25519")
        key_file = Path(state) / "bench.pem"
        key_file.write_text(key["KeyMaterial"])
        key_file.chmod(0o600)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/20")["Subnet"]["SubnetId"]
        sg = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["SecurityGroups"][0]["GroupId"]
        ami = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["al2023-ami-2023*-x86_64"]}])["Images"][0]["ImageId"]
        # A client inside the VPC: an interface in the same group, whose namespace ssh runs in.
        client_eni = ec2.create_network_interface(SubnetId=subnet, Groups=[sg])["NetworkInterface"]["NetworkInterfaceId"]
        client_ns = f"{prefix}-e-{client_eni}"
        ssh_ok, ud_done, mem, up = [], [], [], []
        for _ in range(args.count):
            t = time.monotonic()
            i = ec2.run_instances(ImageId=ami, InstanceType="t3.nano", MinCount=1, MaxCount=1, KeyName="bench",
                                  SubnetId=subnet, UserData=USER_DATA)["Instances"][0]
            acked = time.monotonic()
            ip, name = i["PrivateIpAddress"], f"{prefix}-{i['InstanceId']}"
            while ec2.describe_instances(InstanceIds=[i["InstanceId"]])["Reservations"][0]["Instances"][0]["State"]["Name"] != "running":
                if time.monotonic() - t > 60:
                    sys.exit(f"{i['InstanceId']} not running in 60 s")
                time.sleep(0.01)
            up.append(time.monotonic() - acked)
            while True:
                r = subprocess.run(["ip", "netns", "exec", client_ns, "ssh", "-i", str(key_file), "-o", "StrictHostKeyChecking=no",
                                    "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "ConnectTimeout=2",
                                    "-o", "LogLevel=ERROR", f"ec2-user@{ip}", "true"], capture_output=True)
                if r.returncode == 0:
                    ssh_ok.append(time.monotonic() - acked)
                    break
                if time.monotonic() - t > 60:
                    sys.exit(f"no ssh to {ip} in 60 s: {r.stderr.decode()}")
                time.sleep(0.02)
            upper = Path(state) / "instances" / name / "upper" / "var/lib/kumori/bench-done"
            while not upper.exists():
                time.sleep(0.01)
            ud_done.append(time.monotonic() - acked)
            time.sleep(1)
            usage = Path(f"/sys/fs/cgroup/memory/kumori/{name}/memory.usage_in_bytes")
            if usage.exists():
                mem.append(int(usage.read_text()) / 2**20)
        print(f"(a) RunInstances -> running (SSH server up): p50 {statistics.median(up):.2f} s, p90 {pct(up, 0.9):.2f} s over {len(up)}")
        print(f"    RunInstances -> SSH login accepted: p50 {statistics.median(ssh_ok):.2f} s, p90 {pct(ssh_ok, 0.9):.2f} s (target <= 1 s)")
        print(f"(b) RunInstances -> user data done: p50 {statistics.median(ud_done):.2f} s, p90 {pct(ud_done, 0.9):.2f} s (target <= 5 s)")
        if mem:
            print(f"(c) memory per idle instance (cgroup usage, page cache included): median {statistics.median(mem):.1f} MB (target <= 20 MB)")
        running = args.count
        while running < args.max:
            n = min(10, args.max - running)
            ec2.run_instances(ImageId=ami, InstanceType="t3.nano", MinCount=n, MaxCount=n, SubnetId=subnet)
            running += n
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            up = sum(1 for c in subprocess.run(["runc", "list", "-q"], capture_output=True, text=True).stdout.split() if c.startswith(prefix))
            if up >= args.max:
                break
            time.sleep(1)
        avail = int(next(l for l in open("/proc/meminfo") if l.startswith("MemAvailable")).split()[1]) / 2**20
        print(f"(d) {up} of {args.max} t3.nano instances running at once; {avail:.1f} GB of memory still available")
    finally:
        proc.terminate()
        proc.wait(120)
        left = [c for c in subprocess.run(["runc", "list", "-q"], capture_output=True, text=True).stdout.split() if c.startswith(prefix)]
        print(f"teardown: {len(left)} containers left")
        subprocess.run(["rm", "-rf", state])


if __name__ == "__main__":
    main()
