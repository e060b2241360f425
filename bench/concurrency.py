#!/usr/bin/env python3
"""Concurrency benchmark: many writers at once, kumori (on disk and --ephemeral) beside moto.

Each server gets the same mixed EC2 write load from 16 keep-alive connections (spread over
client processes separate from the server). Every connection repeats a cycle of five writes,
each depending on the previous answers:

    CreateSecurityGroup -> AuthorizeSecurityGroupIngress (on that group)
    -> RunInstances (one instance, in a shared /19 subnet, with that group)
    -> CreateTags (on that instance) -> CreateSubnet (a fresh /28 of the VPC)

until a total number of cycles is done or a time limit passes (default: 2,400 cycles, i.e.
12,000 writes, or 10 s per server, whichever comes first; the cycle cap keeps the region under
kumori's 2,500 security groups and the /28s inside one /16 VPC). State grows as the run goes:
every cycle leaves a group, a rule, an instance (with its interface and volume) and a subnet,
all in one VPC and the instances in one subnet, so later writes check against more siblings
than early ones; a faster server ends the run with more resources.

The client is deliberately light: no boto3 anywhere. Requests are form-encoded EC2 query
bodies built from templates, sent over raw asyncio sockets, answers parsed just enough to pick
out the new ids. They are unsigned: they carry an `Authorization` header holding only the
SigV4 credential scope (`Credential=test/…/us-east-1/ec2/aws4_request`), from which both
servers route the request to EC2 in us-east-1; kumori runs with `--auth off` (its default),
where the key `test` costs no lookup, and moto does not check signatures.

What is printed, per server:
  - writes/s: successful writes of all connections / wall time from the first request sent
    to the last answer received (so it is the rate the server sustained);
  - p50 / p99: client-observed round trip of each write, from the first byte sent to the last
    byte of the answer read, over loopback, per request (queueing in the server included);
  - server CPU: the server process's user+system CPU over the timed window, per write;
  - how busy the machine's CPUs were meanwhile, and how much of that was neither the server nor
    the clients (someone else's build makes every figure worse; --wait-quiet waits for a quiet
    machine before each server);
  - setup (one VPC, the instance subnet, an image id) is untimed and warms each server up.

All servers run on this machine, one at a time, with the clients on the same cores: on a
2-core machine client and server compete for CPU, which the figures include. moto's server
closes the connection after each answer, so its figures include a loopback reconnect per call.

Usage:
  python3 bench/concurrency.py                      # kumori from target/release, and moto
  python3 bench/concurrency.py --no-moto --seconds 5
  KUMORI_BIN=target/debug/kumori python3 bench/concurrency.py --targets kumori-ephemeral
  python3 bench/concurrency.py --check              # exit 1 if kumori misses a target
  python3 bench/concurrency.py --attach 4566 --attach-pid PID   # a server you started (profiling)

moto is optional (pip install -r bench/requirements.txt); without it only kumori is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import importlib.util
import multiprocessing
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from xml.etree import ElementTree

REPO = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
TARGET_WRITES_PER_S = 1000.0
TARGET_P99_MS = 50.0
# Security groups per region in kumori (2,500) less the default VPC's and our VPC's default
# groups, rounded down; also well below the 3,584 /28s that fit beside the instance subnet.
MAX_CYCLES = 2400
OPS = ("CreateSecurityGroup", "AuthorizeSecurityGroupIngress", "RunInstances", "CreateTags", "CreateSubnet")
AUTHORIZATION = (
    f"AWS4-HMAC-SHA256 Credential=test/20250101/{REGION}/ec2/aws4_request, "
    "SignedHeaders=host, Signature=0"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def form(params: dict) -> bytes:
    return urllib.parse.urlencode({"Version": "2016-11-15", **params}).encode()


def headers(port: int, body: bytes) -> dict:
    return {
        "Host": f"127.0.0.1:{port}",
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
        "Authorization": AUTHORIZATION,
        "Content-Length": str(len(body)),
    }


def call(port: int, params: dict) -> ElementTree.Element:
    """One request on a fresh connection (setup only); the answer's XML, or SystemExit."""
    body = form(params)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request("POST", "/", body, headers(port, body))
        resp = conn.getresponse()
        data = resp.read()
    finally:
        conn.close()
    if resp.status != 200:
        raise SystemExit(f"{params['Action']} answered HTTP {resp.status}: {data[:400]!r}")
    root = ElementTree.fromstring(data)
    for el in root.iter():  # drop namespaces: find() by local names
        el.tag = el.tag.rsplit("}", 1)[-1]
    return root


def setup(port: int) -> dict:
    """One 10.0.0.0/16 VPC, a /19 for the instances, and an x86_64 image each server knows."""
    vpc = call(port, {"Action": "CreateVpc", "CidrBlock": "10.0.0.0/16"}).find(".//vpcId").text
    subnet = call(
        port,
        {"Action": "CreateSubnet", "VpcId": vpc, "CidrBlock": "10.0.0.0/19", "AvailabilityZone": f"{REGION}a"},
    ).find(".//subnetId").text
    images = call(
        port,
        {"Action": "DescribeImages", "Owner.1": "amazon", "Filter.1.Name": "architecture",
         "Filter.1.Value.1": "x86_64"},
    )
    ids = sorted(
        item.findtext("imageId")
        for item in images.iter("item")
        if item.findtext("imageId") and item.findtext("virtualizationType", "hvm") == "hvm"
    )
    if not ids:
        raise SystemExit("DescribeImages found no x86_64 image owned by amazon")
    return {"vpc": vpc, "subnet": subnet, "ami": ids[0]}


def subnet_cidr(g: int) -> str:
    """The g-th /28 after the instance subnet (10.0.32.0 onwards); distinct for g < 3584."""
    n = 32 * 256 + g * 16
    return f"10.0.{n // 256}.{n % 256}/28"


# --- the client: asyncio raw sockets, run in processes of their own ---------------------


class Conn:
    def __init__(self, port: int):
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.reconnects = 0

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    def close(self) -> None:
        if self.writer:
            self.writer.close()
            self.writer = None

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        """Sends one HTTP/1.1 request; returns the status and body. Handles Content-Length,
        chunked answers, and servers that close the connection after answering."""
        if self.writer is None:
            await self.open()
            self.reconnects += 1
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length, chunked, close = None, False, lines[0].startswith(b"HTTP/1.0")
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection":
                v = value.strip().lower()
                close = v == b"close" or (close and v != b"keep-alive")
        if chunked:
            parts = []
            while True:
                size = int((await self.reader.readline()).split(b";")[0], 16)
                if size == 0:
                    while (await self.reader.readline()) not in (b"\r\n", b""):
                        pass
                    break
                parts.append(await self.reader.readexactly(size + 2))
            body = b"".join(p[:-2] for p in parts)
        elif length is not None:
            body = await self.reader.readexactly(length)
        else:
            body, close = await self.reader.read(), True
        if close:
            self.close()
        return status, body


def raw_request(port: int, params: dict) -> bytes:
    body = form(params)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers(port, body).items())
    return f"POST / HTTP/1.1\r\n{head}\r\n".encode() + body


GROUP_ID = re.compile(rb"<groupId>(sg-[0-9a-f]+)</groupId>")
INSTANCE_ID = re.compile(rb"<instanceId>(i-[0-9a-f]+)</instanceId>")


async def connection_loop(conn: Conn, port: int, env: dict, indexes: list[int], end: float, out: dict) -> None:
    lat = out["latency"]
    for g in indexes:
        if time.monotonic() >= end:
            break
        ips = f"10.{(g >> 8) & 255}.{g & 255}.0/24"
        steps = (
            (0, lambda _: {"Action": "CreateSecurityGroup", "GroupName": f"bench-{g}", "GroupDescription": "bench",
                           "VpcId": env["vpc"]}),
            (1, lambda ids: {"Action": "AuthorizeSecurityGroupIngress", "GroupId": ids["sg"],
                             "IpPermissions.1.IpProtocol": "tcp", "IpPermissions.1.FromPort": "443",
                             "IpPermissions.1.ToPort": "443", "IpPermissions.1.IpRanges.1.CidrIp": ips}),
            (2, lambda ids: {"Action": "RunInstances", "ImageId": env["ami"], "InstanceType": "t3.micro",
                             "MinCount": "1", "MaxCount": "1", "SubnetId": env["subnet"],
                             "SecurityGroupId.1": ids["sg"]}),
            (3, lambda ids: {"Action": "CreateTags", "ResourceId.1": ids["i"], "Tag.1.Key": "Name",
                             "Tag.1.Value": f"bench-{g}"}),
            (4, lambda _: {"Action": "CreateSubnet", "VpcId": env["vpc"], "CidrBlock": subnet_cidr(g)}),
        )
        ids: dict = {}
        for op, build in steps:
            raw = raw_request(port, build(ids))
            t0 = time.monotonic()
            out["first"] = min(out["first"], t0)
            status, body = await conn.request(raw)
            t1 = time.monotonic()
            out["last"] = max(out["last"], t1)
            if status != 200:
                out["errors"][op] = out["errors"].get(op, 0) + 1
                if len(out["error_samples"]) < 3:
                    out["error_samples"].append(f"{OPS[op]} HTTP {status}: {body[:300]!r}")
                break  # the rest of the cycle depends on this answer
            lat[op].append(t1 - t0)
            if op == 0:
                ids["sg"] = GROUP_ID.search(body).group(1).decode()
            elif op == 2:
                ids["i"] = INSTANCE_ID.search(body).group(1).decode()


async def client_main(port: int, env: dict, conn_ids: list[int], n_conns: int, cycles: int,
                      start_at: float, seconds: float) -> dict:
    conns = [Conn(port) for _ in conn_ids]
    for c in conns:
        await c.open()
    out = {"latency": [[] for _ in OPS], "errors": {}, "error_samples": [], "first": float("inf"), "last": 0.0}
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    end = start_at + seconds
    await asyncio.gather(*(
        connection_loop(c, port, env, list(range(cid, cycles, n_conns)), end, out)
        for c, cid in zip(conns, conn_ids)
    ))
    out["reconnects"] = sum(c.reconnects for c in conns)
    for c in conns:
        c.close()
    out["cpu"] = time.process_time()
    return out


def client_process(port, env, conn_ids, n_conns, cycles, start_at, seconds, queue) -> None:
    try:
        queue.put(asyncio.run(client_main(port, env, conn_ids, n_conns, cycles, start_at, seconds)))
    except BaseException as e:  # report, don't hang the parent
        queue.put({"crash": repr(e)})


# --- servers ------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User+system CPU of pid and its descendants so far (moto may run helpers)."""
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += cpu_seconds(int(child))
    except FileNotFoundError:
        pass
    return total


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    tck = os.sysconf("SC_CLK_TCK")
    return (sum(fields) - idle) / tck, sum(fields) / tck


class Server:
    def __init__(self, name: str, argv, note: str):
        self.name, self.argv, self.note = name, argv, note
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.tmp: str | None = None
        self.attached_pid: int | None = None

    def start(self, timeout: float = 60.0) -> None:
        if self.argv is None:  # --attach: someone else runs it
            return
        self.port = free_port()
        self.tmp = tempfile.mkdtemp(prefix="kumori-bench-")
        self.proc = subprocess.Popen(
            self.argv(self.port, self.tmp), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        t0 = time.monotonic()
        while True:
            try:
                call(self.port, {"Action": "DescribeRegions"})
                return
            except (ConnectionRefusedError, ConnectionResetError, http.client.RemoteDisconnected):
                if self.proc.poll() is not None:
                    raise SystemExit(f"{self.name} exited with {self.proc.returncode} before answering")
                if time.monotonic() - t0 > timeout:
                    self.stop()
                    raise SystemExit(f"{self.name} did not answer within {timeout}s")
                time.sleep(0.02)

    def pid(self) -> int | None:
        return self.proc.pid if self.proc else self.attached_pid

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None


def wait_quiet(limit_s: float, busy_max: float = 0.15) -> None:
    """Waits (at most limit_s) until the machine's CPUs were less than busy_max busy over 2 s:
    on a shared machine, someone else's build would otherwise be in the figures."""
    t0 = time.monotonic()
    while True:
        b0, t0_ = machine_cpu()
        time.sleep(2)
        b1, t1_ = machine_cpu()
        busy = (b1 - b0) / (t1_ - t0_) if t1_ > t0_ else 0.0
        if busy < busy_max:
            return
        if time.monotonic() - t0 > limit_s:
            print(f"  (machine still {100 * busy:.0f}% busy after {limit_s:g} s; measuring anyway)", flush=True)
            return


def measure(server: Server, conns: int, procs: int, cycles: int, seconds: float, quiet_s: float) -> dict:
    if quiet_s > 0:
        wait_quiet(quiet_s)
    print(f"[{server.name}] start, setup ...", flush=True)
    server.start()
    try:
        env = setup(server.port)
        print(f"[{server.name}] {conns} connections in {procs} client processes, "
              f"up to {cycles} cycles ({cycles * len(OPS)} writes) or {seconds:g} s ...", flush=True)
        ctx = multiprocessing.get_context("spawn")
        queue = ctx.Queue()
        start_at = time.monotonic() + 1.5  # time for the clients to start and connect
        workers = []
        for p in range(procs):
            ids = list(range(p, conns, procs))
            w = ctx.Process(target=client_process,
                            args=(server.port, env, ids, conns, cycles, start_at, seconds, queue))
            w.start()
            workers.append(w)
        time.sleep(max(0.0, start_at - time.monotonic()))
        cpu0 = cpu_seconds(server.pid()) if server.pid() else 0.0
        busy0, total0 = machine_cpu()
        results = [queue.get(timeout=seconds + 120) for _ in workers]
        cpu1 = cpu_seconds(server.pid()) if server.pid() else 0.0
        busy1, total1 = machine_cpu()
        for w in workers:
            w.join(10)
    finally:
        server.stop()
    crashed = [r["crash"] for r in results if "crash" in r]
    if crashed:
        raise SystemExit(f"{server.name}: a client process failed: {crashed[0]}")
    per_op = [sorted(x for r in results for x in r["latency"][op]) for op in range(len(OPS))]
    every = sorted(x for lat in per_op for x in lat)
    wall = max(r["last"] for r in results) - min(r["first"] for r in results)
    errors = sum(sum(r["errors"].values()) for r in results)
    return {
        "writes": len(every),
        "wall": wall,
        "rate": len(every) / wall if wall > 0 else 0.0,
        "p50": pct(every, 50) * 1000,
        "p99": pct(every, 99) * 1000,
        "max": every[-1] * 1000 if every else 0.0,
        "per_op": [(len(lat), pct(lat, 50) * 1000, pct(lat, 99) * 1000) for lat in per_op],
        "errors": errors,
        "error_samples": [s for r in results for s in r["error_samples"]][:3],
        "server_cpu_ms": (cpu1 - cpu0) * 1000,
        "machine_busy": (busy1 - busy0) / (total1 - total0) if total1 > total0 else 0.0,
        "window_s": (total1 - total0) / (os.cpu_count() or 1),
        "client_cpu_s": sum(r["cpu"] for r in results),
        "reconnects": sum(r["reconnects"] for r in results),
    }


def pct(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(round(p / 100 * (len(sorted_values) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--client-procs", type=int, default=2, help="client processes sharing the connections")
    ap.add_argument("--cycles", type=int, default=MAX_CYCLES, help=f"cycles of 5 writes in all (<= {MAX_CYCLES})")
    ap.add_argument("--seconds", type=float, default=10.0, help="time limit per server")
    ap.add_argument("--targets", default="kumori,kumori-ephemeral,moto",
                    help="comma-separated: kumori (on disk), kumori-ephemeral, moto")
    ap.add_argument("--no-moto", action="store_true")
    ap.add_argument("--per-op", action="store_true", help="also print p50/p99 of each operation")
    ap.add_argument("--attach", type=int, metavar="PORT",
                    help="measure a server already listening on 127.0.0.1:PORT instead (e.g. under a profiler)")
    ap.add_argument("--attach-pid", type=int, metavar="PID", help="with --attach: the server's pid, for its CPU time")
    ap.add_argument("--wait-quiet", type=float, default=0.0, metavar="S",
                    help="before each server, wait up to S seconds for the machine to be idle (shared machines)")
    ap.add_argument("--check", action="store_true", help="exit 1 if kumori misses a target")
    args = ap.parse_args()
    cycles = max(1, min(args.cycles, MAX_CYCLES))
    procs = max(1, min(args.client_procs, args.connections))

    kumori_bin = Path(os.environ.get("KUMORI_BIN") or REPO / "target" / "release" / "kumori")
    servers = {
        "kumori": Server(
            "kumori",
            lambda port, tmp: [str(kumori_bin), "serve", "--host", "127.0.0.1", "--port", str(port),
                               "--state-dir", tmp],
            "on-disk state (SQLite, WAL) in a fresh temp dir",
        ),
        "kumori-ephemeral": Server(
            "kumori-ephemeral",
            lambda port, tmp: [str(kumori_bin), "serve", "--host", "127.0.0.1", "--port", str(port), "--ephemeral"],
            "--ephemeral (in-memory SQLite)",
        ),
        "moto": Server(
            "moto",
            lambda port, tmp: [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            "moto_server (in-memory)",
        ),
    }
    if args.attach:
        servers = {"attached": Server("attached", None, f"a server already on port {args.attach}")}
        servers["attached"].port = args.attach
        servers["attached"].attached_pid = args.attach_pid
        args.targets = "attached"
    wanted = [t.strip() for t in args.targets.split(",") if t.strip()]
    for t in wanted:
        if t not in servers:
            ap.error(f"unknown target {t!r}")
    if any(t.startswith("kumori") for t in wanted) and not kumori_bin.exists():
        print(f"kumori binary not found at {kumori_bin}: cargo build --release, or set KUMORI_BIN", file=sys.stderr)
        return 2
    moto_missing = importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None
    if "moto" in wanted and (args.no_moto or moto_missing):
        why = "--no-moto" if args.no_moto else "moto[server] is not installed (pip install -r bench/requirements.txt)"
        print(f"moto skipped: {why}")
        wanted.remove("moto")

    results = {t: measure(servers[t], args.connections, procs, cycles, args.seconds, args.wait_quiet) for t in wanted}

    print()
    print(f"kumori: {kumori_bin}")
    print(f"Mixed EC2 writes from {args.connections} keep-alive connections in {procs} client processes "
          f"(raw HTTP, unsigned), {os.cpu_count()} CPUs shared by clients and server.")
    print("writes/s = successful writes / wall time (first request sent to last answer, all connections);")
    print("p50/p99/max = client-observed round trip per write (request sent to answer read), loopback.")
    print(f"{'server':<18} {'writes':>7} {'wall s':>7} {'writes/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"
          f" {'errors':>6} {'srv CPU ms/write':>17}")
    print("-" * 96)
    for name, r in results.items():
        per_write = r["server_cpu_ms"] / r["writes"] if r["writes"] else 0.0
        print(f"{name:<18} {r['writes']:7d} {r['wall']:7.2f} {r['rate']:9.1f} {r['p50']:8.2f} {r['p99']:8.2f}"
              f" {r['max']:8.1f} {r['errors']:6d} {per_write:17.3f}")
    print("-" * 96)
    for name, r in results.items():
        other = r["machine_busy"] * r["window_s"] * (os.cpu_count() or 1) - r["server_cpu_ms"] / 1000 - r["client_cpu_s"]
        print(f"{name}: {servers[name].note}; machine CPUs {100 * r['machine_busy']:.0f}% busy, server "
              f"{r['server_cpu_ms'] / 1000:.1f} s, clients {r['client_cpu_s']:.1f} s, anything else ~{max(0.0, other):.1f} s"
              + (" (other load: figures are pessimistic)" if other > 0.1 * r["window_s"] else "")
              + (f"; {r['reconnects']} reconnects (server closed connections)" if r["reconnects"] else ""))
        for s in r["error_samples"]:
            print(f"  error: {s}")
    if args.per_op:
        print()
        print(f"{'server':<18} {'operation':<31} {'count':>6} {'p50 ms':>8} {'p99 ms':>8}")
        for name, r in results.items():
            for op, (n, p50, p99) in zip(OPS, r["per_op"]):
                print(f"{name:<18} {op:<31} {n:6d} {p50:8.2f} {p99:8.2f}")
    misses = []
    for name in ("kumori", "kumori-ephemeral"):
        r = results.get(name)
        if not r:
            continue
        if r["rate"] < TARGET_WRITES_PER_S:
            misses.append(f"{name} {r['rate']:.0f} writes/s < {TARGET_WRITES_PER_S:.0f}")
        if r["p99"] > TARGET_P99_MS:
            misses.append(f"{name} p99 {r['p99']:.1f} ms > {TARGET_P99_MS:.0f} ms")
        if r["errors"]:
            misses.append(f"{name} {r['errors']} errors")
    if not any(name.startswith("kumori") for name in results):
        return 0
    print(f"kumori targets (>= {TARGET_WRITES_PER_S:.0f} writes/s, p99 <= {TARGET_P99_MS:.0f} ms): "
          + ("all met" if not misses else "MISSED: " + "; ".join(misses)))
    return 1 if (args.check and misses) else 0


if __name__ == "__main__":
    sys.exit(main())
