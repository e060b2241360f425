"""Fixtures for kumori's end-to-end tests.

One ephemeral `kumori serve` runs for the whole session; every test that uses it starts from
an empty server (POST /_kumori/reset before the test). Tests that need their own process
(restarts, kill -9) start it themselves with the `spawn` fixture.

Environment:
  KUMORI_BIN       the binary to test (default <repo>/target/debug/kumori)
  KUMORI_ENDPOINT  test an already running server instead of starting one; it is reset with
                   POST /moto-api/reset, which kumori also answers. Tests that must start or
                   kill their own server are skipped.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from support import ExternalServer, KumoriServer, client, http

EXTERNAL = os.environ.get("KUMORI_ENDPOINT")


@pytest.fixture(scope="session")
def server():
    if EXTERNAL:
        yield ExternalServer(EXTERNAL)
        return
    srv = KumoriServer().start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def endpoint(server) -> str:
    return server.endpoint


@pytest.fixture(autouse=True)
def _fresh_state(request):
    """Resets the shared server before each test that uses it, so tests never see each other."""
    if "server" in request.fixturenames:
        srv = request.getfixturevalue("server")
        if not srv.alive():
            pytest.fail(f"the kumori server has died; its output:\n{srv.output()}", pytrace=False)
        path = "/moto-api/reset" if EXTERNAL else "/_kumori/reset"
        status, _, body = http(srv.endpoint, "POST", path, body=b"")
        assert status == 200, f"reset failed: HTTP {status} {body[:300]!r}"
    yield


@pytest.fixture
def spawn(tmp_path):
    """Starts kumori processes of the test's own; all are stopped when the test ends."""
    if EXTERNAL:
        pytest.skip("needs to start its own kumori (KUMORI_ENDPOINT is set)")
    started: list[KumoriServer] = []

    def _spawn(state_dir=None, extra_args=None, env=None) -> KumoriServer:
        srv = KumoriServer(state_dir=state_dir, extra_args=extra_args, env=env).start()
        started.append(srv)
        return srv

    yield _spawn
    for srv in started:
        srv.stop()  # SIGTERM, then SIGKILL if it lingers


@pytest.fixture
def ec2(endpoint):
    return client("ec2", endpoint)


@pytest.fixture
def ec2_apne1(endpoint):
    return client("ec2", endpoint, "ap-northeast-1")


@pytest.fixture
def ec2_unchecked(endpoint):
    """An EC2 client that sends out-of-range parameters for the server to reject."""
    return client("ec2", endpoint, validate=False)


@pytest.fixture
def vpc(ec2) -> dict:
    """A fresh 10.0.0.0/16 VPC in us-east-1."""
    return ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]


@pytest.fixture
def zones(ec2) -> dict:
    """us-east-1's zone names -> zone ids, as the server reports them."""
    azs = ec2.describe_availability_zones()["AvailabilityZones"]
    return {z["ZoneName"]: z["ZoneId"] for z in azs}


@pytest.fixture
def aws(endpoint, tmp_path):
    """Runs `aws ...` against the server; returns the CompletedProcess.

    The CLI runs as `python -m awscli` with this interpreter (so it is the pinned awscli), with a
    HOME of its own and config/credentials files that do not exist, so nothing of the host's
    AWS setup can leak in.
    """
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_MAX_ATTEMPTS": "1",
        "NO_PROXY": "127.0.0.1,localhost",
        "LANG": "C.UTF-8",
    }

    def run(*args, region="us-east-1"):
        cmd = [sys.executable, "-m", "awscli", *args]
        cmd += ["--endpoint-url", endpoint, "--region", region, "--output", "json"]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)

    return run


def pytest_collection_modifyitems(config, items):
    """Terraform's tests first: each waits minutes in the provider's own delays, and started
    last they keep a pass running long after the other workers have finished theirs."""
    items.sort(key=lambda item: 0 if item.module.__name__.startswith("test_terraform") else 1)
