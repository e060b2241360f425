"""kumori on a PostgreSQL server that goes away and comes back.

These tests start a PostgreSQL cluster of their own (scripts/postgres, in the test's temporary
directory) so that they can stop it without disturbing the rest of the suite. They run in the
suite's PostgreSQL pass, where scripts/test has made sure PostgreSQL is installed."""

import json
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
from botocore.exceptions import BotoCoreError, ClientError
from support import DATABASE_URL, REPO, client, error_of, http

pytestmark = pytest.mark.skipif(
    DATABASE_URL is None, reason="runs in the suite's PostgreSQL pass (KUMORI_TEST_DATABASE_URL)"
)


def postgres(cmd: str, where) -> str:
    out = subprocess.run([str(REPO / "scripts" / "postgres"), cmd, str(where)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.fixture
def cluster():
    # Under /tmp itself: as root, the cluster belongs to the postgres user, who cannot enter
    # pytest's private directories.
    where = Path(tempfile.mkdtemp(prefix="kumori-test-pg-"))
    try:
        yield where, postgres("start", where)
    finally:
        postgres("stop", where)
        shutil.rmtree(where, ignore_errors=True)


def health(srv):
    status, _, body = http(srv.endpoint, "GET", "/_kumori/health")
    return status, json.loads(body)["state"]


def test_an_outage_answers_503_promptly_and_service_resumes_by_itself(cluster, spawn):
    where, url = cluster
    srv = spawn(extra_args=["--database-url", url, "--database-schema", "outage"])
    ec2 = client("ec2", srv.endpoint)
    before = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=before, CidrBlock="10.0.0.0/20")["Subnet"]["SubnetId"]
    assert health(srv) == (200, {"backend": "postgresql", "database": "answers"})

    # Writers keep going through the outage: each call either succeeds or is refused with
    # ServiceUnavailable, and none waits long.
    stop = threading.Event()
    seen: list[tuple[str, float]] = []
    acked: list[str] = []

    def writer():
        c = client("ec2", srv.endpoint)
        while not stop.is_set():
            started = time.monotonic()
            try:
                eni = c.create_network_interface(SubnetId=subnet)["NetworkInterface"]
                acked.append(eni["NetworkInterfaceId"])
                seen.append(("ok", time.monotonic() - started))
                time.sleep(0.01)
            except ClientError as e:
                seen.append((error_of(e)[0], time.monotonic() - started))
                time.sleep(0.05)
            except BotoCoreError as e:
                seen.append((repr(e), time.monotonic() - started))

    threads = [threading.Thread(target=writer) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    postgres("stop", where)
    time.sleep(2)
    down = health(srv)
    refused = [s for s in seen if s[0] == "ServiceUnavailable"]
    postgres("start", where)
    deadline = time.monotonic() + 20
    while health(srv)[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1)
    stop.set()
    for t in threads:
        t.join(30)

    assert down == (503, {"backend": "postgresql", "database": "unreachable"})
    assert refused, f"no call was refused during the outage: {seen[-10:]}"
    kinds = {k for k, _ in seen}
    assert kinds <= {"ok", "ServiceUnavailable"}, kinds
    assert max(t for _, t in seen) < 10, "a call waited on the dead database"
    assert seen[-1][0] == "ok", f"service did not resume: {seen[-5:]}"
    assert srv.alive()
    # Nothing acknowledged is lost, no address was handed out twice, and what was made
    # before the outage is still there.
    enis = ec2.describe_network_interfaces(
        Filters=[{"Name": "subnet-id", "Values": [subnet]}])["NetworkInterfaces"]
    assert set(acked) <= {e["NetworkInterfaceId"] for e in enis}
    addresses = [e["PrivateIpAddress"] for e in enis]
    assert len(addresses) == len(set(addresses))
    assert before in {v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]}


def test_a_node_that_cannot_reach_its_database_at_start_says_so(tmp_path):
    # A port nobody listens on: the node does not start half-working.
    out = subprocess.run(
        [str(REPO / "target" / "debug" / "kumori"), "serve", "--port", "0",
         "--database-url", "postgres://kumori@127.0.0.1:9/postgres"],
        capture_output=True, text=True, timeout=30,
    )
    assert out.returncode != 0
    assert "database" in out.stderr and "unavailable" in out.stderr, out.stderr
