#!/usr/bin/env python3
"""RDS benchmark: kumori's DB instances, served by real PostgreSQL and MariaDB servers, and
its RDS API next to moto_server's, on loopback.

kumori runs once, with --ephemeral: its instances' databases then live in a temporary
directory it prints at start ("kumori: RDS instances' databases in <dir>") and removes when it
stops. moto_server runs beside it for the API figures only (its instances are records, with
no server behind them). Every figure comes from the same run:
  (a) create to first connection, for engine postgres (PostgreSQL) and mysql (MariaDB), with
      BackupRetentionPeriod 0 and with RDS's default 1: client wall time from sending
      CreateDBInstance to the first authenticated `SELECT 1` answered with the master user and
      password (DescribeDBInstances is polled until it shows an Endpoint, then the engine's
      own CLI client, psql or mariadb, is run in a tight loop against it). Also the time until
      DescribeDBInstances says `available`. One instance at a time; median and max of
      several runs;
  (b) memory per idle instance: with N instances of each engine available and idle, the PSS
      and RSS (from /proc/<pid>/smaps_rollup) summed over each instance's processes: the
      postmaster (first line of <dir>/<DbiResourceId>/<primary>/postmaster.pid) and its
      children, or mariadbd (<dir>/<DbiResourceId>/<primary>.pid), with DbiResourceId from
      DescribeDBInstances. Processes under kumori that belong to no instance are reported;
      kumori's own process is shown apart;
  (c) API latency, kumori and moto: CreateDBInstance's round trip (request sent to answer
      read: the record only, the server comes later), many creates with distinct identifiers,
      in batches that are deleted (SkipFinalSnapshot) before the next, so that kumori is never
      starting more than one batch of servers; then DescribeDBInstances (all instances) with
      the last batch present and, on kumori, available. Requests are signed before the clock
      starts and sent on one keep-alive connection per server.

Targets (the RDS issue): a postgres instance accepts its master user's connection within 5 s
of CreateDBInstance (the median of each BackupRetentionPeriod), and an idle instance of
either engine costs at most 64 MB (PSS, the largest instance of each engine). The run also
checks that nothing is left behind: no process or directory under kumori's databases
directory once kumori has stopped.

Needs psql and the mariadb client on PATH (apt-get install postgresql-client mariadb-client)
and, for kumori to serve the instances, postgresql and mariadb-server.

Usage:
  python3 bench/rds.py                                  # kumori from target/release, moto if installed
  python3 bench/rds.py --kumori target/debug/kumori     # or KUMORI_BIN=...
  python3 bench/rds.py --runs 3 --idle 2 --creates 20 --no-moto
  python3 bench/rds.py --check                          # exit 1 if kumori misses a target
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from foundation import (  # noqa: E402  (sets up the environment)
    REGION,
    Server,
    free_port,
    kumori_binary,
    moto_missing,
    moto_server,
    signed_query,
)

import boto3  # noqa: E402
from botocore.auth import SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

TARGET_CONNECT_S = 5.0  # postgres, create to first connection, median
TARGET_IDLE_MB = 64.0  # PSS per idle instance, either engine
ENGINES = ("postgres", "mysql")
USER = "benchmaster"
PASSWORD = "bench-Passw0rd-1"
INSTANCE_CLASS = "db.t3.micro"


# --- servers ------------------------------------------------------------------------------------


class Kumori(Server):
    """kumori --ephemeral, its output kept in a log file, from which the databases directory
    is read."""

    def __init__(self, binary: Path):
        super().__init__(
            "kumori",
            lambda port: [str(binary), "serve", "--host", "127.0.0.1", "--port", str(port), "--ephemeral"],
        )
        self.log_path: Path | None = None
        self.databases: Path | None = None

    def start(self, timeout: float = 60.0, keep_state: bool = False) -> float:
        fd, name = tempfile.mkstemp(prefix="kumori-bench-rds-", suffix=".log")
        self.log_path = Path(name)
        self.port = free_port()
        body, headers = signed_query(self.port, {"Action": "DescribeRegions"})
        t0 = time.perf_counter()
        with os.fdopen(fd, "wb") as log:
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                conn.request("POST", "/", body, headers)
                resp = conn.getresponse()
                resp.read()
                conn.close()
                if resp.status != 200:
                    raise SystemExit(f"kumori: DescribeRegions answered HTTP {resp.status}")
                break
            except (ConnectionRefusedError, ConnectionResetError, http.client.RemoteDisconnected):
                if self.proc.poll() is not None:
                    raise SystemExit(f"kumori exited with {self.proc.returncode}: {self.log_tail()}")
                if time.perf_counter() - t0 > timeout:
                    self.stop()
                    raise SystemExit(f"kumori did not answer within {timeout}s")
                time.sleep(0.005)
        started = time.perf_counter() - t0
        while self.databases is None:
            m = re.search(r"RDS instances' databases in (.+)", self.log_path.read_text(errors="replace"))
            if m:
                self.databases = Path(m.group(1).strip())
            elif time.perf_counter() - t0 > timeout:
                self.stop()
                raise SystemExit("kumori never printed its databases directory")
            else:
                time.sleep(0.01)
        return started

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        text = re.sub(r"\x1b\[[0-9;]*m", "", self.log_path.read_text(errors="replace"))
        return "\n".join(text.splitlines()[-lines:])

    def warnings(self) -> list[str]:
        if not self.log_path or not self.log_path.exists():
            return []
        text = re.sub(r"\x1b\[[0-9;]*m", "", self.log_path.read_text(errors="replace"))
        return [l for l in text.splitlines() if " WARN " in l or " ERROR " in l]

    def stop(self, timeout: float = 60.0) -> None:
        # SIGTERM: kumori stops its databases' servers and removes the temporary directory,
        # which takes longer than an API-only server's exit.
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def rds_client(port: int):
    return boto3.session.Session().client(
        "rds",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name=REGION,
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )


def signed_rds(port: int, params: dict) -> tuple[bytes, dict]:
    """Body and headers of a SigV4-signed RDS query request to 127.0.0.1:port."""
    body = urllib.parse.urlencode({"Version": "2014-10-31", **params}).encode()
    host = f"127.0.0.1:{port}"
    req = AWSRequest(
        method="POST",
        url=f"http://{host}/",
        data=body,
        headers={"Host": host, "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    SigV4Auth(Credentials("test", "test"), "rds", REGION).add_auth(req)
    return body, dict(req.headers.items())


def create_params(ident: str, engine: str, retention: int) -> dict:
    return {
        "Action": "CreateDBInstance",
        "DBInstanceIdentifier": ident,
        "Engine": engine,
        "DBInstanceClass": INSTANCE_CLASS,
        "MasterUsername": USER,
        "MasterUserPassword": PASSWORD,
        "AllocatedStorage": "20",
        "BackupRetentionPeriod": str(retention),
    }


# --- processes ----------------------------------------------------------------------------------


def all_ppids() -> dict[int, int]:
    """pid -> parent pid of every process."""
    out = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                out[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                pass
    return out


def tree(pid: int, ppids: dict[int, int]) -> list[int]:
    """pid and every process below it."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += [c for c, pp in ppids.items() if pp == p]
    return out


def smaps_kb(pid: int) -> tuple[int, int]:
    """(Pss, Rss) of one process in kB, from smaps_rollup; (0, 0) if it is gone."""
    pss = rss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
            elif line.startswith("Rss:"):
                rss = int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return pss, rss


def server_pid(databases: Path, dbi: str) -> int | None:
    """The instance's primary server process: the postmaster, or mariadbd."""
    d = databases / dbi
    try:
        primary = json.loads((d / "kumori.json").read_text()).get("primary", "a")
    except (FileNotFoundError, ValueError):
        primary = "a"
    for f in (d / primary / "postmaster.pid", d / f"{primary}.pid"):
        try:
            return int(f.read_text().splitlines()[0].strip())
        except (FileNotFoundError, IndexError, ValueError):
            pass
    return None


def under(pid: int, root: Path) -> bool:
    """Whether pid's command line names something under root."""
    try:
        return str(root) in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return False


# --- (a) create to first connection --------------------------------------------------------------


def client_argv(engine: str, port: int) -> tuple[list[str], dict]:
    if engine == "postgres":
        return (
            ["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(port), "-U", USER, "-d", "postgres", "-tAc", "SELECT 1"],
            {**os.environ, "PGPASSWORD": PASSWORD, "PGCONNECT_TIMEOUT": "3"},
        )
    return (
        ["mariadb", "--no-defaults", "--protocol=TCP", "-h", "127.0.0.1", "-P", str(port), "-u", USER,
         "--connect-timeout=3", "-N", "-B", "-e", "SELECT 1"],
        {**os.environ, "MYSQL_PWD": PASSWORD},
    )


def try_connect(engine: str, port: int) -> bool:
    """One authenticated `SELECT 1` with the master user's password, by the engine's CLI."""
    argv, env = client_argv(engine, port)
    try:
        r = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
    except subprocess.TimeoutExpired:
        return False
    return r.returncode == 0 and r.stdout.strip() == b"1"


def describe_one(rds, ident: str) -> dict | None:
    try:
        return rds.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]
    except rds.exceptions.DBInstanceNotFoundFault:
        return None


def create_and_connect(rds, ident: str, engine: str, retention: int, timeout: float) -> dict:
    """Creates one instance; answers the seconds from sending CreateDBInstance to the first
    Endpoint shown, the first successful connection and `available`, the statuses seen and
    its DbiResourceId."""
    t0 = time.perf_counter()
    rds.create_db_instance(
        DBInstanceIdentifier=ident, Engine=engine, DBInstanceClass=INSTANCE_CLASS, MasterUsername=USER,
        MasterUserPassword=PASSWORD, AllocatedStorage=20, BackupRetentionPeriod=retention,
    )
    out = {"endpoint": None, "connect": None, "available": None, "statuses": [], "dbi": None, "port": None}
    attempts = 0
    while out["connect"] is None or out["available"] is None:
        now = time.perf_counter() - t0
        if now > timeout:
            raise SystemExit(f"{ident} ({engine}): not connected and available within {timeout:g} s: {out}")
        if out["available"] is None:
            d = describe_one(rds, ident)
            if d is None:
                raise SystemExit(f"{ident} vanished while being created")
            out["dbi"] = d["DbiResourceId"]
            status = d["DBInstanceStatus"]
            if not out["statuses"] or out["statuses"][-1] != status:
                out["statuses"].append(status)
            if status == "failed":
                raise SystemExit(f"{ident} ({engine}): status failed; statuses seen {out['statuses']}")
            if status == "available":
                out["available"] = time.perf_counter() - t0
            if d.get("Endpoint") and out["endpoint"] is None:
                out["endpoint"] = time.perf_counter() - t0
                out["port"] = d["Endpoint"]["Port"]
        if out["port"] is not None and out["connect"] is None:
            attempts += 1
            if try_connect(engine, out["port"]):
                out["connect"] = time.perf_counter() - t0
                continue
        # A short nap, not a busy spin: on a 2-core machine spinning would steal CPU from the
        # servers being started and timed.
        time.sleep(0.005 if out["port"] is not None else 0.01)
    out["attempts"] = attempts
    return out


def delete_and_wait(rds, kumori: Kumori, idents_dbis: list[tuple[str, str]], timeout: float = 60.0) -> float:
    """Deletes instances (SkipFinalSnapshot) and waits until their records, directories and
    server processes are gone; answers the seconds that took."""
    t0 = time.perf_counter()
    pids = set()
    for _, dbi in idents_dbis:
        pid = server_pid(kumori.databases, dbi) if dbi else None
        if pid:
            pids |= set(tree(pid, all_ppids()))
    for ident, _ in idents_dbis:
        rds.delete_db_instance(DBInstanceIdentifier=ident, SkipFinalSnapshot=True)
    while True:
        left_records = [i for i, _ in idents_dbis if describe_one(rds, i) is not None]
        left_dirs = [d for _, d in idents_dbis if d and (kumori.databases / d).exists()]
        left_pids = [p for p in pids if Path(f"/proc/{p}").exists()]
        if not (left_records or left_dirs or left_pids):
            return time.perf_counter() - t0
        if time.perf_counter() - t0 > timeout:
            raise SystemExit(
                f"deletion not done after {timeout:g} s: records {left_records}, dirs {left_dirs}, pids {left_pids}"
            )
        time.sleep(0.05)


def connect_runs(kumori: Kumori, args) -> tuple[dict, list[tuple[str, str, str]]]:
    """(a): answers results per (engine, retention) and the idle instances kept for (b):
    (engine, identifier, DbiResourceId)."""
    rds = rds_client(kumori.port)
    results, kept = {}, []
    for engine in ENGINES:
        for retention in (0, 1):
            print(f"[kumori] {engine}, BackupRetentionPeriod={retention}: {args.runs} creates to first connection ...",
                  flush=True)
            runs = []
            for i in range(args.runs):
                ident = f"bench-{engine}-r{retention}-{i}"
                r = create_and_connect(rds, ident, engine, retention, args.timeout)
                runs.append(r)
                keep = retention == 0 and len([k for k in kept if k[0] == engine]) < args.idle
                if keep:
                    kept.append((engine, ident, r["dbi"]))
                else:
                    r["delete_s"] = delete_and_wait(rds, kumori, [(ident, r["dbi"])])
            results[(engine, retention)] = runs
        # Idle instances the runs did not give (fewer runs than --idle): made untimed.
        for i in range(len([k for k in kept if k[0] == engine]), args.idle):
            ident = f"bench-{engine}-idle-{i}"
            r = create_and_connect(rds, ident, engine, 0, args.timeout)
            kept.append((engine, ident, r["dbi"]))
    return results, kept


def client_cost(engine: str, port: int, n: int = 5) -> float:
    """Median seconds of one CLI connect + SELECT 1 to a server already up: the client's own
    share of each figure in (a)."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        if not try_connect(engine, port):
            raise SystemExit(f"{engine}: the client could not connect to a server that was available")
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# --- (b) memory ------------------------------------------------------------------------------


def idle_memory(kumori: Kumori, kept: list[tuple[str, str, str]], settle: float) -> dict:
    """(b): per instance, its processes' PSS and RSS; and what under kumori belongs to none."""
    rds = rds_client(kumori.port)
    dbis = {d["DBInstanceIdentifier"]: d["DbiResourceId"] for d in rds.describe_db_instances()["DBInstances"]}
    for engine, ident, dbi in kept:
        if dbis.get(ident) != dbi:
            raise SystemExit(f"{ident}: DescribeDBInstances says DbiResourceId {dbis.get(ident)}, expected {dbi}")
    print(f"[kumori] memory of {len(kept)} idle instances, after {settle:g} s idle ...", flush=True)
    time.sleep(settle)
    ppids = all_ppids()
    below_kumori = set(tree(kumori.proc.pid, ppids)) - {kumori.proc.pid}
    per = []
    claimed = set()
    for engine, ident, dbi in kept:
        pid = server_pid(kumori.databases, dbi)
        if pid is None or not Path(f"/proc/{pid}").exists():
            raise SystemExit(f"{ident} ({dbi}): no running server process found under {kumori.databases / dbi}")
        procs = tree(pid, ppids)
        claimed |= set(procs)
        pss = rss = 0
        for p in procs:
            a, b = smaps_kb(p)
            pss, rss = pss + a, rss + b
        names = []
        for p in procs:
            try:
                cmd = Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
            except FileNotFoundError:
                continue
            names.append(cmd.removeprefix("postgres: ").strip() if cmd.startswith("postgres: ") else Path(cmd).name)
        per.append({"engine": engine, "ident": ident, "dbi": dbi, "procs": len(procs), "names": names,
                    "pss_mb": pss / 1024, "rss_mb": rss / 1024, "kumori_child": pid in below_kumori})
    unclaimed = sorted(below_kumori - claimed)
    k_pss, k_rss = smaps_kb(kumori.proc.pid)
    return {"instances": per, "unclaimed": unclaimed, "kumori_pss_mb": k_pss / 1024, "kumori_rss_mb": k_rss / 1024}


# --- (c) API latency ---------------------------------------------------------------------------


def round_trip(conn: http.client.HTTPConnection, body: bytes, headers: dict) -> tuple[float, bytes]:
    t0 = time.perf_counter()
    conn.request("POST", "/", body, headers)
    resp = conn.getresponse()
    data = resp.read()
    elapsed = time.perf_counter() - t0
    if resp.status != 200:
        raise SystemExit(f"HTTP {resp.status}: {data[:300]!r}")
    return elapsed, data


def api_latency(server: Server, args, kumori: Kumori | None) -> dict:
    """(c) on one server: CreateDBInstance round trips in batches (each deleted before the
    next, but the last), then DescribeDBInstances round trips with the last batch present."""
    name = server.name
    rds = rds_client(server.port)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    creates: list[float] = []
    batches = -(-args.creates // args.batch)
    print(f"[{name}] {args.creates} CreateDBInstance in {batches} batches of {args.batch}, "
          f"then DescribeDBInstances x{args.describes} ...", flush=True)
    # Warm the connection (and the server's code paths) with a request that changes nothing.
    round_trip(conn, *signed_rds(server.port, {"Action": "DescribeDBInstances"}))
    left = args.creates
    batch_no = 0
    last: list[str] = []
    while left > 0:
        n = min(args.batch, left)
        idents = [f"bench-api-{batch_no}-{i}" for i in range(n)]
        signed = [signed_rds(server.port, create_params(i, "postgres", 0)) for i in idents]
        for ident, (body, headers) in zip(idents, signed):
            elapsed, data = round_trip(conn, body, headers)
            if f"<DBInstanceIdentifier>{ident}</DBInstanceIdentifier>".encode() not in data:
                raise SystemExit(f"{name}: CreateDBInstance answer without {ident}: {data[:300]!r}")
            creates.append(elapsed)
        left -= n
        batch_no += 1
        if left > 0:
            if kumori is not None:
                dbis = [(d["DBInstanceIdentifier"], d["DbiResourceId"]) for d in rds.describe_db_instances()["DBInstances"]]
                delete_and_wait(rds, kumori, dbis, timeout=120)
            else:
                for ident in idents:
                    rds.delete_db_instance(DBInstanceIdentifier=ident, SkipFinalSnapshot=True)
        else:
            last = idents
    if kumori is not None:
        # Describe the records at rest: every server of the batch up, nothing changing.
        deadline = time.perf_counter() + 120
        while True:
            statuses = [d["DBInstanceStatus"] for d in rds.describe_db_instances()["DBInstances"]]
            # "failed" is final for the record (kumori does not move it on), so it counts as
            # at rest too; it is reported.
            if all(s in ("available", "failed") for s in statuses):
                failed = statuses.count("failed")
                break
            if time.perf_counter() > deadline:
                raise SystemExit(f"kumori: the last batch did not come up: {statuses}")
            time.sleep(0.2)
    else:
        failed = 0
    body, headers = signed_rds(server.port, {"Action": "DescribeDBInstances"})
    for _ in range(10):
        round_trip(conn, body, headers)
    describes, shown = [], 0
    cpu0 = server.cpu_s()
    for _ in range(args.describes):
        elapsed, data = round_trip(conn, body, headers)
        describes.append(elapsed)
        shown = len(re.findall(rb"<DBInstanceIdentifier>bench-api-", data))
    cpu = server.cpu_s() - cpu0
    conn.close()
    if shown != len(last):
        print(f"note: {name}: DescribeDBInstances listed {shown} instances, expected {len(last)}")
    out = {
        "create": creates,
        "describe": describes,
        "describe_n": shown,
        "describe_cpu_ms": cpu / args.describes * 1000,
        "failed": failed,
    }
    if kumori is not None:
        dbis = [(d["DBInstanceIdentifier"], d["DbiResourceId"]) for d in rds.describe_db_instances()["DBInstances"]]
        delete_and_wait(rds, kumori, dbis, timeout=120)
    return out


def pct(samples: list[float], p: int) -> float:
    if len(samples) < 2:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[p - 1]


# --- leftovers -----------------------------------------------------------------------------------


def leftovers(kumori: Kumori, pids_seen: set[int]) -> list[str]:
    """What is left after kumori stopped: its databases directory, processes naming it, or
    processes seen serving an instance."""
    out = []
    if kumori.databases and kumori.databases.exists():
        out.append(f"directory {kumori.databases} still exists: {sorted(os.listdir(kumori.databases))}")
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and kumori.databases and under(int(d.name), kumori.databases):
            out.append(f"process {d.name} names {kumori.databases}")
    for p in sorted(pids_seen):
        if Path(f"/proc/{p}").exists():
            try:
                cmd = Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:120]
            except FileNotFoundError:
                continue
            if "postgres" in cmd or "mariadb" in cmd:
                out.append(f"process {p} still running: {cmd}")
    return sorted(set(out))


# --- report -------------------------------------------------------------------------------------


def table(header: list[str], rows: list[list[str]], first: int) -> None:
    widths = [first] + [max(12, len(h) + 2) for h in header[1:]]
    line = "".join(f"{h:<{w}}" if i == 0 else f"{h:>{w}}" for i, (h, w) in enumerate(zip(header, widths)))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("".join(f"{c:<{w}}" if i == 0 else f"{c:>{w}}" for i, (c, w) in enumerate(zip(r, widths))))
    print("-" * len(line))


def report(conn_res: dict, costs: dict, mem: dict, api: dict, args) -> list[str]:
    misses = []

    print(f"(a) create to first connection, seconds ({args.runs} runs each, one instance at a time)")
    cols = [(e, r) for e in ENGINES for r in (0, 1)]
    header = ["metric"] + [f"{e} br={r}" for e, r in cols]
    rows = []

    def fig(key: str, f) -> list[str]:
        return [f"{f([x[key] for x in conn_res[c]]):.2f}" for c in cols]

    rows.append(["first connection, median"] + fig("connect", statistics.median))
    rows.append(["first connection, max"] + fig("connect", max))
    rows.append(["Endpoint shown, median"] + fig("endpoint", statistics.median))
    rows.append(["available, median"] + fig("available", statistics.median))
    rows.append(["available, max"] + fig("available", max))
    rows.append(["client connect+query alone"] + [f"{costs[e]:.3f}" for e, _ in cols])
    table(header, rows, 30)
    for c in cols:
        seen = {" -> ".join(x["statuses"]) for x in conn_res[c]}
        print(f"  {c[0]} br={c[1]}: statuses seen {' | '.join(sorted(seen))}; "
              f"first connection (s): {[round(x['connect'], 2) for x in conn_res[c]]}")
    print("  br: BackupRetentionPeriod. first connection: CreateDBInstance sent -> psql/mariadb CLI answered\n"
          "  SELECT 1 as the master user; polls DescribeDBInstances every ~10 ms for the Endpoint, then\n"
          "  the client every ~5 ms. client connect+query alone: one such CLI run against a server\n"
          "  already up (its share in the first figure). available: DescribeDBInstances said so.")
    for retention in (0, 1):
        med = statistics.median(x["connect"] for x in conn_res[("postgres", retention)])
        if med > TARGET_CONNECT_S:
            misses.append(f"postgres br={retention} first connection median {med:.2f} s > {TARGET_CONNECT_S:g} s")

    print()
    print(f"(b) memory per idle instance, MB ({args.idle} of each engine, all available, idle {args.settle:g} s)")
    header = ["metric"] + list(ENGINES)
    by = {e: [x for x in mem["instances"] if x["engine"] == e] for e in ENGINES}
    rows = [
        ["PSS per instance, mean"] + [f"{statistics.mean(x['pss_mb'] for x in by[e]):.1f}" for e in ENGINES],
        ["PSS per instance, max"] + [f"{max(x['pss_mb'] for x in by[e]):.1f}" for e in ENGINES],
        ["RSS per instance, mean"] + [f"{statistics.mean(x['rss_mb'] for x in by[e]):.1f}" for e in ENGINES],
        ["RSS per instance, max"] + [f"{max(x['rss_mb'] for x in by[e]):.1f}" for e in ENGINES],
        ["processes per instance"] + ["/".join(sorted({str(x['procs']) for x in by[e]})) for e in ENGINES],
    ]
    table(header, rows, 30)
    for x in mem["instances"]:
        print(f"  {x['ident']:<24} {x['dbi']}  {x['procs']} processes  PSS {x['pss_mb']:6.1f}  RSS {x['rss_mb']:6.1f}"
              + ("" if x["kumori_child"] else "  (NOT a child of kumori)"))
    for e in ENGINES:
        if by[e]:
            print(f"  {e} processes: {', '.join(by[e][0]['names'])}")
    print(f"  kumori's own process: PSS {mem['kumori_pss_mb']:.1f}, RSS {mem['kumori_rss_mb']:.1f}")
    print("  PSS: each process's share of the pages it maps (shared pages split among their users), summed\n"
          "  over the instance's server and its children; RSS counts shared pages in full for each.")
    if mem["unclaimed"]:
        print(f"note: processes under kumori that belong to no instance: {mem['unclaimed']}")
    for e in ENGINES:
        worst = max(x["pss_mb"] for x in by[e])
        if worst > TARGET_IDLE_MB:
            misses.append(f"{e} idle instance PSS {worst:.1f} MB > {TARGET_IDLE_MB:g} MB")

    print()
    names = list(api)
    print(f"(c) RDS API round trip, ms ({args.creates} CreateDBInstance in batches of {args.batch}; "
          f"DescribeDBInstances x{args.describes})")
    header = ["metric"] + names + (["moto/kumori"] if "moto" in api else [])

    def row(label, key, f):
        vals = [f(api[n][key]) * 1000 for n in names]
        r = [label] + [f"{v:.2f}" for v in vals]
        if "moto" in api:
            r.append(f"{vals[names.index('moto')] / vals[0]:.1f}x" if vals[0] else "-")
        return r

    n_desc = api[names[0]]["describe_n"]
    rows = [
        row("CreateDBInstance p50", "create", statistics.median),
        row("CreateDBInstance p99", "create", lambda s: pct(s, 99)),
        row("CreateDBInstance max", "create", max),
        row(f"DescribeDBInstances ({n_desc}) p50", "describe", statistics.median),
        row(f"DescribeDBInstances ({n_desc}) p99", "describe", lambda s: pct(s, 99)),
    ]
    cpu = ["DescribeDBInstances server CPU"] + [f"{api[n]['describe_cpu_ms']:.2f}" for n in names]
    if "moto" in api:
        k = api[names[0]]["describe_cpu_ms"]
        cpu.append(f"{api['moto']['describe_cpu_ms'] / k:.1f}x" if k else "-")
    rows.append(cpu)
    table(header, rows, 36)
    print("  round trip: request sent to answer read, signed beforehand, one keep-alive connection.\n"
          "  Creates are postgres, BackupRetentionPeriod 0; on kumori each starts a real server in the\n"
          "  background, so a batch's creates run beside its servers' initdb (moto: records only).\n"
          "  Describe: all instances, with the last batch present (on kumori: available).\n"
          "  server CPU: user + system per request, from /proc in 10 ms ticks. moto/kumori: above 1,\n"
          "  kumori is faster.")
    for n in names:
        if api[n]["failed"]:
            print(f"note: {n}: {api[n]['failed']} of the last batch's {api[n]['describe_n']} instances ended in status"
                  " 'failed' (see kumori's warnings below)")
    return misses


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kumori", help="kumori binary (default: KUMORI_BIN, else target/release/kumori)")
    ap.add_argument("--runs", type=int, default=5, help="creates to first connection per engine and retention")
    ap.add_argument("--idle", type=int, default=3, help="idle instances per engine for memory")
    ap.add_argument("--settle", type=float, default=5.0, help="seconds idle before memory is read")
    ap.add_argument("--creates", type=int, default=50, help="timed CreateDBInstance calls per server")
    ap.add_argument("--batch", type=int, default=10, help="creates between deletions (kumori starts them all)")
    ap.add_argument("--describes", type=int, default=200, help="timed DescribeDBInstances calls per server")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds one instance may take to come up")
    ap.add_argument("--no-moto", action="store_true", help="measure kumori only")
    ap.add_argument("--check", action="store_true", help="exit 1 if kumori misses a target")
    args = ap.parse_args()
    args.idle = max(1, args.idle)
    args.runs = max(1, args.runs)

    if args.kumori:
        os.environ["KUMORI_BIN"] = args.kumori
    kumori_bin = kumori_binary()
    if not kumori_bin:
        return 2
    missing = [c for c in ("psql", "mariadb") if shutil.which(c) is None]
    if missing:
        print(f"missing client programs: {missing} (apt-get install postgresql-client mariadb-client)", file=sys.stderr)
        return 2
    why_not = "--no-moto" if args.no_moto else moto_missing()
    if why_not:
        print(f"moto skipped: {why_not}")

    t_start = time.perf_counter()
    kumori = Kumori(kumori_bin)
    moto = None if why_not else moto_server()
    pids_seen: set[int] = set()
    api = {}
    warned_before_api = 0
    try:
        kumori.start()
        print(f"[kumori] databases in {kumori.databases}", flush=True)
        conn_res, kept = connect_runs(kumori, args)
        costs = {}
        rds = rds_client(kumori.port)
        ports = {}
        for engine, ident, _ in kept:
            ports.setdefault(engine, rds.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]["Endpoint"]["Port"])
        mem = idle_memory(kumori, kept, args.settle)
        for engine in ENGINES:
            costs[engine] = client_cost(engine, ports[engine])
        ppids = all_ppids()
        for x in mem["instances"]:
            pid = server_pid(kumori.databases, x["dbi"])
            if pid:
                pids_seen |= set(tree(pid, ppids))
        warned_before_api = len(kumori.warnings())
        print(f"[kumori] deleting the {len(kept)} idle instances ...", flush=True)
        delete_and_wait(rds, kumori, [(i, d) for _, i, d in kept], timeout=120)
        api["kumori"] = api_latency(kumori, args, kumori)
        if moto:
            moto.start()
            api["moto"] = api_latency(moto, args, None)
    except BaseException:
        print(f"kumori's log: {kumori.log_path}", file=sys.stderr)
        raise
    finally:
        if moto:
            moto.stop()
        if kumori.proc:
            ppids = all_ppids()
            pids_seen |= set(tree(kumori.proc.pid, ppids)) - {kumori.proc.pid}
        kumori.stop()
    left = leftovers(kumori, pids_seen)
    elapsed = time.perf_counter() - t_start

    print()
    print(f"kumori: {kumori_bin}")
    misses = report(conn_res, costs, mem, api, args)
    print()
    warns = kumori.warnings()
    early, late = warns[:warned_before_api], warns[warned_before_api:]
    if early:
        # One instance at a time, nothing deleted while being made: a warning here is news.
        print(f"kumori logged {len(early)} warnings during (a) and (b):")
        for w in early:
            print(f"  {w[:300]}")
    if late:
        print(f"kumori logged {len(late)} warnings during (c), where batches of instances are made at once and\n"
              "  deleted while their servers are still being made; the last ones:")
        for w in late[-3:]:
            print(f"  {w[:300]}")
    if left:
        print("LEFT BEHIND after kumori stopped:")
        for l in left:
            print(f"  {l}")
        misses.append("processes or directories left behind")
    else:
        print(f"left behind: nothing (no {kumori.databases}, no process naming it, none of the {len(pids_seen)} "
              "server processes seen)")
    if kumori.log_path:
        kumori.log_path.unlink(missing_ok=True)
    print(f"whole run: {elapsed:.0f} s; machine: {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.2f} at the end")
    print(
        f"kumori targets (postgres first connection median <= {TARGET_CONNECT_S:g} s, idle instance PSS <= "
        f"{TARGET_IDLE_MB:g} MB): " + ("all met" if not misses else "MISSED: " + "; ".join(misses))
    )
    return 1 if (args.check and misses) else 0


if __name__ == "__main__":
    sys.exit(main())
