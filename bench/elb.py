#!/usr/bin/env python3
"""ELB benchmark: what kumori's ALB proxy adds to an HTTP request, on loopback.

One small HTTP target runs on loopback. It is measured twice, with the same client:
  (a) direct: the client talks to the target itself;
  (b) through kumori: an application load balancer with an HTTP listener whose default action
      forwards to an `ip` target group holding that target (127.0.0.1:its port); the client
      talks to the port the listener really listens on (GET /_kumori/load-balancers). The
      target is healthy before anything is timed.
For each path:
  - throughput: N keep-alive connections (default 32), spread over P client processes, each
    sending its next request as soon as the previous answer is read, for a fixed time after
    a warm-up; requests answered in that time over its length;
  - latency: round trip of one request, sent to answer read, on one keep-alive connection with
    nothing else running, many sequential samples; p50 and p99. The two paths take turns in
    blocks of samples, so that whatever else the machine does at a moment weighs on both;
  - added by kumori: (b) minus (a), at p50 and p99;
  - kumori's CPU time (user + system, from /proc) per request it forwarded under load.

The target answers every request a fixed 200 with Content-Length (a few bytes of body), from
an asyncio server in a process of its own. The client is Python too: raw non-blocking sockets
sending one fixed request and parsing just the status line and Content-Length, under epoll, in
processes of their own so that none shares a GIL with the target. Both are as cheap as Python
gets, but on a 2-core machine client, target and kumori share the same two cores: the direct
figure is then the most this machine and this client can do at all, the ceiling for (b).

Targets (the ELB issue): kumori adds at most 1 ms at p99, and forwards at least 10,000
requests/s on 2 cores.

Usage:
  python3 bench/elb.py                              # kumori from target/release
  python3 bench/elb.py --kumori target/debug/kumori # or KUMORI_BIN=...
  python3 bench/elb.py --connections 64 --duration 10 --samples 20000
  python3 bench/elb.py --check                      # exit 1 if kumori misses a target
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import select
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from foundation import Server, free_port, kumori_binary  # noqa: E402  (sets up the environment)

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

TARGET_ADDED_P99_MS = 1.0
TARGET_RPS = 10_000
REQUEST = b"GET /bench HTTP/1.1\r\nHost: bench\r\nUser-Agent: kumori-bench\r\n\r\n"
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n"


# --- the target ---------------------------------------------------------------------------------


class _Fixed(asyncio.Protocol):
    """Answers every request head it reads with RESPONSE, keeping the connection open (bodies
    are not expected: the bench and ELB's health checks send GETs)."""

    def connection_made(self, transport):
        self.transport = transport
        self.pending = b""

    def data_received(self, data):
        buf = self.pending + data if self.pending else data
        n = buf.count(b"\r\n\r\n")
        if n:
            self.transport.write(RESPONSE * n)
            buf = buf[buf.rfind(b"\r\n\r\n") + 4:]
        self.pending = buf


def serve_target(port: int) -> None:
    async def main():
        server = await asyncio.get_running_loop().create_server(_Fixed, "127.0.0.1", port, backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


class Target:
    """The target in a process of its own (this script, with --serve-target)."""

    def __init__(self):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve-target", str(self.port)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise SystemExit("the bench's HTTP target did not start")
                time.sleep(0.01)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --- the client ---------------------------------------------------------------------------------


def take_response(buf: bytes) -> tuple[int, bool] | None:
    """(length, status is 200) of the complete response at the start of buf, or None."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = buf[:end].lower()
    at = head.find(b"\r\ncontent-length:")
    if at < 0:
        raise RuntimeError(f"response without Content-Length: {bytes(buf[:end])!r}")
    eol = head.find(b"\r\n", at + 2)
    length = end + 4 + int(head[at + 17: eol if eol >= 0 else None])
    if len(buf) < length:
        return None
    return length, buf[9:12] == b"200"


def connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def load_worker(port: int, conns: int, start_at: float, count_from: float, stop_at: float, out) -> None:
    """Keeps `conns` connections busy from start_at to stop_at (time.monotonic, the same clock
    in every process); sends (answered from count_from to stop_at, of those not 200,
    connections the server closed) to out."""
    socks = {}
    try:
        for _ in range(conns):
            s = connect(port)
            s.setblocking(False)
            socks[s.fileno()] = s
        ep = select.epoll()
        bufs = {fd: b"" for fd in socks}
        for fd in socks:
            ep.register(fd, select.EPOLLIN)
        time.sleep(max(0.0, start_at - time.monotonic()))
        for s in socks.values():
            s.send(REQUEST)
        done = bad = lost = 0
        busy = len(socks)
        now = time.monotonic()
        while busy and now < stop_at + 5:
            events = ep.poll(0.2)
            now = time.monotonic()
            for fd, _ in events:
                s = socks[fd]
                data = s.recv(65536)
                if not data:
                    lost += 1
                    busy -= 1
                    ep.unregister(fd)
                    continue
                buf = bufs[fd] + data if bufs[fd] else data
                got = take_response(buf)
                if got is None:
                    bufs[fd] = buf
                    continue
                length, ok = got
                bufs[fd] = buf[length:]
                if now < stop_at:
                    if now >= count_from:
                        done += 1
                        bad += not ok
                    s.send(REQUEST)
                else:
                    busy -= 1
                    ep.unregister(fd)
        out.send((done, bad, lost))
    except Exception as e:  # noqa: BLE001  (reported by the parent)
        out.send(repr(e))
    finally:
        for s in socks.values():
            s.close()
        out.close()


def throughput(port: int, connections: int, procs: int, duration: float, warmup: float) -> dict:
    """Requests/s over `duration` seconds, after `warmup` seconds of the same load, with
    `connections` connections spread over `procs` client processes."""
    ctx = multiprocessing.get_context("fork")
    start_at = time.monotonic() + 1.0  # every process connected by then
    count_from = start_at + warmup
    stop_at = count_from + duration
    shares = [connections // procs + (i < connections % procs) for i in range(procs)]
    runs = []
    for share in filter(None, shares):
        recv, send = ctx.Pipe(duplex=False)
        p = ctx.Process(target=load_worker, args=(port, share, start_at, count_from, stop_at, send))
        p.start()
        send.close()
        runs.append((p, recv))
    done = bad = lost = 0
    errors = []
    for p, recv in runs:
        r = recv.recv() if recv.poll(stop_at - time.monotonic() + 30) else "no answer from a client process"
        p.join(10)
        if p.is_alive():
            p.kill()
            p.join()
        if isinstance(r, str):
            errors.append(r)
        else:
            done, bad, lost = done + r[0], bad + r[1], lost + r[2]
    if errors:
        raise SystemExit(f"load generator failed: {errors}")
    return {"rps": done / duration, "requests": done, "tp_not_200": bad, "lost": lost}


def round_trip(s: socket.socket) -> tuple[float, bool]:
    """One request on s: (seconds from send to the whole answer read, status is 200)."""
    t0 = time.perf_counter()
    s.sendall(REQUEST)
    buf = b""
    while (got := take_response(buf)) is None:
        data = s.recv(65536)
        if not data:
            raise SystemExit("the connection closed during the latency run")
        buf += data
    return time.perf_counter() - t0, got[1]


def latency(ports: dict, samples: int, rounds: int = 20) -> dict:
    """p50 and p99 round trip (ms) of sequential requests on one keep-alive connection per
    port. The ports take turns, in `rounds` blocks each, so that a passing disturbance on the
    machine falls on all of them alike rather than on whichever ran at that moment."""
    conns = {name: connect(port) for name, port in ports.items()}
    times = {name: [] for name in ports}
    bad = dict.fromkeys(ports, 0)
    try:
        for s in conns.values():  # warm the connections and caches
            for _ in range(200):
                round_trip(s)
        for r in range(rounds):
            for name, s in conns.items():
                for _ in range(samples // rounds):
                    elapsed, ok = round_trip(s)
                    times[name].append(elapsed)
                    bad[name] += not ok
    finally:
        for s in conns.values():
            s.close()
    return {
        name: {
            "p50": statistics.median(t) * 1000,
            "p99": statistics.quantiles(t, n=100)[98] * 1000,
            "not_200": bad[name],
        }
        for name, t in times.items()
    }


def measure(name: str, port: int, args, kumori: Server | None = None) -> dict:
    print(f"[{name}] throughput, {args.connections} connections x {args.duration:g} s ...", flush=True)
    cpu0 = kumori.cpu_s() if kumori else 0.0
    tp = throughput(port, args.connections, args.procs, args.duration, args.warmup)
    if kumori:
        # Over warm-up and timed part alike (only the timed part is counted, so scale by its
        # rate): kumori's CPU per forwarded request, in microseconds.
        cpu = kumori.cpu_s() - cpu0
        tp["cpu_us"] = cpu / (tp["rps"] * (args.duration + args.warmup)) * 1e6 if tp["rps"] else None
    return tp


# --- kumori's side ------------------------------------------------------------------------------


def kumori_listener(kumori: Server, target_port: int) -> int:
    """An ALB whose HTTP listener forwards to an ip group holding the target; once the target
    is healthy, answers the port the listener listens on."""
    endpoint = f"http://127.0.0.1:{kumori.port}"
    cfg = Config(retries={"mode": "standard", "total_max_attempts": 1})
    ec2 = boto3.session.Session().client("ec2", endpoint_url=endpoint, region_name="us-east-1", config=cfg)
    elb = boto3.session.Session().client("elbv2", endpoint_url=endpoint, region_name="us-east-1", config=cfg)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"us-east-1{z}")["Subnet"]["SubnetId"]
        for i, z in ((1, "a"), (2, "b"))
    ]
    lb = elb.create_load_balancer(Name="bench", Subnets=subnets)["LoadBalancers"][0]["LoadBalancerArn"]
    tg = elb.create_target_group(
        Name="bench", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip",
        HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2, HealthyThresholdCount=2,
    )["TargetGroups"][0]["TargetGroupArn"]
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": "127.0.0.1", "Port": target_port}])
    listener = elb.create_listener(
        LoadBalancerArn=lb, Protocol="HTTP", Port=free_port(),
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}],
    )["Listeners"][0]["ListenerArn"]

    deadline = time.monotonic() + 60
    port = None
    state = None
    while time.monotonic() < deadline:
        if port is None:
            with urllib.request.urlopen(f"{endpoint}/_kumori/load-balancers", timeout=10) as r:
                shown = json.load(r)["Listeners"]
            port = next((int(l["address"].rsplit(":", 1)[1]) for l in shown if l["listener"] == listener), None)
        state = elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"][0]["TargetHealth"]["State"]
        if port is not None and state == "healthy":
            return port
        time.sleep(0.5)
    raise SystemExit(f"listener never ready: port {port}, target {state}")


def machine_busy(seconds: float = 1.0) -> float:
    """How busy all CPUs together were over `seconds`, 0 to 1 (from /proc/stat)."""
    def sample():
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]  # total, idle + iowait

    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


# --- report -------------------------------------------------------------------------------------


def report(results: dict, args) -> list[str]:
    direct, lb = results["direct"], results["kumori"]
    added = {k: lb[k] - direct[k] for k in ("p50", "p99")}
    rows = [
        ("latency p50 (ms, round trip)", "p50", "{:12.3f}", None),
        ("latency p99 (ms, round trip)", "p99", "{:12.3f}", f"added <= {TARGET_ADDED_P99_MS:g} ms"),
        (f"throughput (requests/s, {args.connections} connections)", "rps", "{:12.0f}", f">= {TARGET_RPS:,}"),
    ]
    width = max(len(r[0]) for r in rows) + 2
    header = f"{'metric':<{width}}{'direct':>12}{'via kumori':>12}{'added':>12}   target"
    print(header)
    print("-" * len(header))
    for label, key, fmt, target in rows:
        line = f"{label:<{width}}" + fmt.format(direct[key]) + fmt.format(lb[key])
        line += fmt.format(added[key]) if key in added else f"{'-':>12}"
        print(line + (f"   {target}" if target else ""))
    if lb.get("cpu_us") is not None:
        print(f"{'kumori CPU per forwarded request (us)':<{width}}{'-':>12}{lb['cpu_us']:12.1f}{'-':>12}")
    print("-" * len(header))
    print(
        "direct: client to the target on loopback; via kumori: client to the ALB listener, which\n"
        "  forwards to the same target (an ip target 127.0.0.1:port); added: via kumori minus direct.\n"
        "latency: one keep-alive connection each, sequential requests, nothing else running; direct\n"
        "  and via kumori take turns in blocks, so a passing disturbance weighs on both alike.\n"
        f"throughput: {args.connections} keep-alive connections over {args.procs} client processes,"
        f" {args.duration:g} s after a {args.warmup:g} s warm-up.\n"
        "kumori CPU: its user + system CPU time under the throughput load (warm-up included) per\n"
        "  request, from /proc: what it spends forwarding, whatever the machine's other load.\n"
        f"client, target and kumori share this machine's {os.cpu_count()} cores."
    )
    if direct["rps"] < TARGET_RPS:
        print(
            f"note: direct is below {TARGET_RPS:,} requests/s: that is the limit of this machine with this\n"
            "  Python client and target, not kumori's; kumori cannot reach the target here, and its figure\n"
            "  is best read against direct."
        )
    for name, r in results.items():
        if r["not_200"] or r["lost"]:
            print(f"note: {name}: {r['not_200']} answers were not 200, {r['lost']} connections closed under load")

    misses = []
    if added["p99"] > TARGET_ADDED_P99_MS:
        misses.append(f"added p99 {added['p99']:.3f} ms > {TARGET_ADDED_P99_MS:g} ms")
    if lb["rps"] < TARGET_RPS:
        misses.append(f"{lb['rps']:.0f} requests/s < {TARGET_RPS:,}")
    print(
        f"kumori targets (added p99 <= {TARGET_ADDED_P99_MS:g} ms, >= {TARGET_RPS:,} requests/s): "
        + ("all met" if not misses else "MISSED: " + "; ".join(misses))
    )
    return misses


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kumori", help="kumori binary (default: KUMORI_BIN, else target/release/kumori)")
    ap.add_argument("--connections", type=int, default=32, help="concurrent connections for throughput")
    ap.add_argument("--procs", type=int, default=os.cpu_count() or 2, help="client processes for throughput")
    ap.add_argument("--duration", type=float, default=8.0, help="seconds timed for throughput")
    ap.add_argument("--warmup", type=float, default=2.0, help="seconds of load before the timed part")
    ap.add_argument("--samples", type=int, default=10_000, help="sequential requests for latency")
    ap.add_argument("--check", action="store_true", help="exit 1 if kumori misses a target")
    ap.add_argument("--serve-target", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_target:
        serve_target(args.serve_target)
        return 0

    if args.kumori:
        os.environ["KUMORI_BIN"] = args.kumori
    kumori_bin = kumori_binary()
    if not kumori_bin:
        return 2
    kumori = Server(
        "kumori",
        lambda port: [str(kumori_bin), "serve", "--host", "127.0.0.1", "--port", str(port), "--ephemeral"],
    )
    busy_before = machine_busy()
    target = Target()
    results = {}
    try:
        kumori.start()
        print("[kumori] load balancer, listener and target group; waiting for a healthy target ...", flush=True)
        lb_port = kumori_listener(kumori, target.port)
        print(f"[direct, via kumori] latency, {args.samples} sequential requests each, taking turns ...", flush=True)
        lat = latency({"direct": target.port, "kumori": lb_port}, args.samples)
        for name, port, server in (("direct", target.port, None), ("kumori", lb_port, kumori)):
            tp = measure("direct" if server is None else "via kumori", port, args, server)
            results[name] = {**lat[name], **tp, "not_200": lat[name]["not_200"] + tp.pop("tp_not_200")}
    finally:
        kumori.stop()
        target.stop()

    print()
    print(f"kumori: {kumori_bin}")
    misses = report(results, args)
    if busy_before > 0.1:
        print(f"note: the machine was {busy_before:.0%} busy before the bench started: that other work is in\n"
              "  every figure (most in p99 and throughput); rerun on a quiet machine")
    return 1 if (args.check and misses) else 0


if __name__ == "__main__":
    sys.exit(main())
