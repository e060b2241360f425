"""Helpers shared by kumori's end-to-end tests.

The tests drive a real `kumori serve` process with real AWS clients (boto3, the aws CLI), so
these helpers launch and stop the server, build clients pointed at it, and send hand-made
signed requests for the cases where boto3 would refuse to send what we want the server to see.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import os
import re
import signal
import socket
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

REPO = Path(__file__).resolve().parents[2]
ACCOUNT = "000000000000"
ACCESS_KEY = SECRET_KEY = "test"

VPC_ID_RE = re.compile(r"^vpc-[0-9a-f]{17}$")
SUBNET_ID_RE = re.compile(r"^subnet-[0-9a-f]{17}$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
LISTENING_RE = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")

# Nothing of the host's AWS setup may leak into the clients, and nothing may go to a proxy:
# every request in this suite is for the server on loopback.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_CONFIG_FILE": "/nonexistent/kumori-tests/config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/kumori-tests/credentials",
        "AWS_EC2_METADATA_DISABLED": "true",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
)
for _var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL"):
    os.environ.pop(_var, None)


# The whole suite runs once on SQLite (the default) and once on PostgreSQL: scripts/test starts
# a server and names it here.
DATABASE_URL = os.environ.get("KUMORI_TEST_DATABASE_URL") or None
BACKEND = "postgresql" if DATABASE_URL else "sqlite"
_SCHEMAS = iter(range(1, 1 << 30))


def pg_schema(state_dir: Path | None) -> str:
    """A schema name for one server: from its state directory when it has one (the same
    directory, the same schema), else new for each server of this test process."""
    if state_dir is not None:
        digest = hashlib.sha1(str(Path(state_dir).resolve()).encode()).hexdigest()[:16]
        return f"t_{digest}"
    return f"t_{os.getpid()}_{next(_SCHEMAS)}_{os.urandom(3).hex()}"


def needs_sqlite(why: str):
    """Skips a test that is about SQLite's own files when the suite runs on PostgreSQL."""
    return pytest.mark.skipif(DATABASE_URL is not None, reason=f"SQLite only: {why}")


def stored_bodies(srv: "KumoriServer") -> bytes:
    """Every stored document of a (stopped) server, read from its database directly."""
    if not DATABASE_URL:
        import sqlite3
        with sqlite3.connect(Path(srv.state_dir) / "kumori.db") as db:
            return "\n".join(row[0] for row in db.execute("SELECT body FROM resources")).encode()
    out = subprocess.run(
        ["psql", DATABASE_URL, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
         "-c", f"SELECT body FROM {srv.schema}.resources"],
        capture_output=True, check=True,
    )
    return out.stdout


def require_data_plane(*tools: str) -> None:
    """Skips the calling test module, saying why, where the data plane cannot run (not Linux,
    not root, one of `tools` missing); under KUMORI_REQUIRE_DATAPLANE=1 (scripts/test as
    root) that is an error instead."""
    import shutil
    import sys
    why = None
    if sys.platform != "linux":
        why = "the data plane needs Linux"
    elif os.geteuid() != 0:
        why = "the data plane needs root"
    else:
        missing = [t for t in tools if shutil.which(t) is None]
        if missing:
            why = f"the data plane needs {', '.join(missing)} (scripts/test installs them)"
    if why and os.environ.get("KUMORI_REQUIRE_DATAPLANE") == "1":
        raise RuntimeError(f"KUMORI_REQUIRE_DATAPLANE=1 but {why}")
    if why:
        pytest.skip(why, allow_module_level=True)


def kumori_bin() -> Path:
    return Path(os.environ.get("KUMORI_BIN") or REPO / "target" / "debug" / "kumori")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class KumoriServer:
    """One `kumori serve` process on a free loopback port.

    stdout and stderr are merged and kept (a reader thread drains them so the server never
    blocks on a full pipe); `output()` gives them for failure messages.
    """

    def __init__(self, state_dir: Path | None = None, extra_args: list[str] | None = None,
                 env: dict[str, str] | None = None):
        self.state_dir = state_dir
        self.extra_args = list(extra_args or [])
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.schema: str | None = None
        self.port: int | None = None
        self._log: list[str] = []
        self._ready = threading.Event()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> "KumoriServer":
        binary = kumori_bin()
        if not binary.exists():
            pytest.fail(
                f"kumori binary not found at {binary}: build it (cargo build) or set KUMORI_BIN",
                pytrace=False,
            )
        self.port = free_port()
        self._log, self._ready = [], threading.Event()
        args = [str(binary), "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        args += self.state_args()
        args += self.extra_args
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            env={**os.environ, **self.env} if self.env else None,
        )
        # The thread gets this start's own log, event and port: a previous process's thread,
        # still draining after a kill, must not wake this start() before its server listens.
        threading.Thread(target=self._drain, args=(self.proc, self._log, self._ready, self.port),
                         daemon=True).start()
        if not self._ready.wait(timeout):
            self.kill()
            raise RuntimeError(f"kumori did not say it was listening within {timeout}s:\n{self.output()}")
        if self.proc.poll() is not None:
            raise RuntimeError(f"kumori exited with {self.proc.returncode} at start:\n{self.output()}")
        return self

    def state_args(self) -> list[str]:
        """Where this server keeps state: its directory (SQLite), or memory; on PostgreSQL
        (KUMORI_TEST_DATABASE_URL), a schema of its own, named after its directory so that a
        restarted or second process on the same directory shares it as it would the file."""
        if "--database-url" in self.extra_args:
            return []  # the test names a database of its own
        if not DATABASE_URL:
            return ["--state-dir", str(self.state_dir)] if self.state_dir else ["--ephemeral"]
        if self.schema is None:
            self.schema = pg_schema(self.state_dir)
        return ["--database-url", DATABASE_URL, "--database-schema", self.schema]

    @staticmethod
    def _drain(proc: subprocess.Popen, log: list[str], ready: threading.Event, port: int) -> None:
        for line in proc.stdout:
            log.append(line)
            m = LISTENING_RE.search(line)
            if m and int(m.group(1)) == port:
                ready.set()
        # EOF: the process is gone; wake a start() that is still waiting.
        ready.set()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def output(self) -> str:
        return "".join(self._log)[-8000:]

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM and wait; returns the exit code (None if it had to be killed)."""
        if not self.alive():
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


class ExternalServer:
    """An already running server named by KUMORI_ENDPOINT (e.g. one under a debugger)."""

    def __init__(self, endpoint: str):
        self.endpoint = endpoint.rstrip("/")

    def alive(self) -> bool:
        return True

    def output(self) -> str:
        return "(external server: no output captured)"


# One session for every client: it caches the (large) service models, which keeps client
# creation cheap. Creating clients is not thread-safe, so it is done under a lock.
_SESSION = boto3.session.Session()
_SESSION_LOCK = threading.Lock()


def client(service: str, endpoint: str, region: str = "us-east-1", *, validate: bool = True,
           key: str = ACCESS_KEY, secret: str = SECRET_KEY, token: str | None = None, **config):
    """A boto3 client for `service` on the test server.

    Retries are off so a test sees exactly what the server answered; `validate=False` lets
    out-of-range parameters through botocore so the server is the one that judges them.
    """
    cfg = Config(
        region_name=region,
        retries={"mode": "standard", "total_max_attempts": 1},
        parameter_validation=validate,
        connect_timeout=5,
        read_timeout=60,
        max_pool_connections=64,
        **config,
    )
    with _SESSION_LOCK:
        return _SESSION.client(
            service,
            endpoint_url=endpoint,
            region_name=region,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            aws_session_token=token,
            config=cfg,
        )


@contextlib.contextmanager
def expect_error(code: str, status: int | None = None):
    """Asserts the block raises a ClientError with this error code (and HTTP status)."""
    with pytest.raises(ClientError) as info:
        yield info
    err = info.value.response.get("Error", {})
    got_status = info.value.response["ResponseMetadata"]["HTTPStatusCode"]
    assert err.get("Code") == code, f"expected error {code}, got {err} (HTTP {got_status})"
    if status is not None:
        assert got_status == status, f"{code}: expected HTTP {status}, got {got_status}"


def error_of(exc: ClientError) -> tuple[str, int, str]:
    r = exc.response
    return r["Error"].get("Code"), r["ResponseMetadata"]["HTTPStatusCode"], r["Error"].get("Message", "")


# --- raw HTTP ---------------------------------------------------------------------------------

# A plain opener that ignores proxy settings: requests must stay on loopback.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http(endpoint: str, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    """Sends one request; returns (status, headers with lowercase names, body bytes)."""
    req = urllib.request.Request(endpoint + path, data=body, headers=headers or {}, method=method)
    try:
        with _OPENER.open(req, timeout=30) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def http_json(endpoint: str, method: str, path: str):
    status, headers, body = http(endpoint, method, path, body=b"" if method == "POST" else None)
    assert status == 200, f"{method} {path}: HTTP {status}: {body[:500]!r}"
    return json.loads(body), headers


def signed_form_post(endpoint: str, service: str, region: str, params: dict):
    """A SigV4-signed query-protocol POST (Action=..., Version=...), as an SDK would send it."""
    body = urllib.parse.urlencode(params).encode()
    req = AWSRequest(
        method="POST",
        url=endpoint + "/",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), service, region).add_auth(req)
    return http(endpoint, "POST", "/", body=body, headers=dict(req.headers.items()))


# --- small data helpers -----------------------------------------------------------------------


def tag_dict(resource: dict) -> dict:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def tag_spec(resource_type: str, **tags) -> list:
    return [{"ResourceType": resource_type, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]


def overlaps(a: str, b: str) -> bool:
    return ipaddress.ip_network(a).overlaps(ipaddress.ip_network(b))


def all_subnets(ec2, **kwargs) -> list:
    """Every subnet DescribeSubnets returns for these arguments, following NextToken."""
    out, token = [], None
    while True:
        page = ec2.describe_subnets(**kwargs, **({"NextToken": token} if token else {}))
        out += page["Subnets"]
        token = page.get("NextToken")
        if not token:
            return out


def own_vpcs(ec2, **kwargs) -> list:
    """VPCs the test made: a default VPC, should the server have one, is left out."""
    return [v for v in ec2.describe_vpcs(**kwargs)["Vpcs"] if not v["IsDefault"]]


def own_subnets(ec2, **kwargs) -> list:
    """Subnets the test made: default subnets, should the server have any, are left out."""
    return [s for s in all_subnets(ec2, **kwargs) if not s["DefaultForAz"]]
