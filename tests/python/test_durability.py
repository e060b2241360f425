"""State on disk (--state-dir): it survives a clean stop and a kill -9 in the middle of writes."""

import itertools
import threading
import time

import pytest
from botocore.exceptions import BotoCoreError, ClientError
from support import client, expect_error, http, needs_sqlite, tag_spec


@pytest.fixture
def state_dir(tmp_path):
    d = tmp_path / "state"
    d.mkdir()
    return d


def snapshot(endpoint):
    """Everything the EC2 slice can show, per region, in a stable order."""
    out = {}
    for region in ("us-east-1", "ap-northeast-1"):
        ec2 = client("ec2", endpoint, region)
        vpcs = sorted(ec2.describe_vpcs()["Vpcs"], key=lambda v: v["VpcId"])
        subnets = sorted(ec2.describe_subnets()["Subnets"], key=lambda s: s["SubnetId"])
        tags = sorted((t["ResourceId"], t["Key"], t["Value"]) for t in ec2.describe_tags()["Tags"])
        for item in vpcs + subnets:
            item["Tags"] = sorted(item.get("Tags", []), key=lambda t: t["Key"])
        out[region] = {"vpcs": vpcs, "subnets": subnets, "tags": tags}
    return out


def test_state_survives_a_clean_restart(spawn, state_dir):
    first = spawn(state_dir)
    ec2 = client("ec2", first.endpoint)
    tokyo = client("ec2", first.endpoint, "ap-northeast-1")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16", TagSpecifications=tag_spec("vpc", Name="kept"))["Vpc"]["VpcId"]
    kept = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone="us-east-1b")["Subnet"]
    dropped = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.2.0/24")["Subnet"]["SubnetId"]
    ec2.create_tags(Resources=[vpc, kept["SubnetId"]], Tags=[{"Key": "env", "Value": "prod"}])
    ec2.delete_tags(Resources=[vpc], Tags=[{"Key": "Name"}])
    ec2.delete_subnet(SubnetId=dropped)
    tokyo_vpc = tokyo.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    tokyo.create_subnet(VpcId=tokyo_vpc, CidrBlock="10.9.0.0/28", AvailabilityZone="ap-northeast-1d")
    before = snapshot(first.endpoint)

    t0 = time.monotonic()
    code = first.stop()
    assert code == 0, f"SIGTERM should stop kumori cleanly, got exit code {code}:\n{first.output()}"
    assert time.monotonic() - t0 < 5

    second = spawn(state_dir)
    after = snapshot(second.endpoint)
    for region in before:
        for kind in before[region]:
            assert after[region][kind] == before[region][kind], f"{region} {kind} changed across the restart"
    ec2 = client("ec2", second.endpoint)
    # The restored state is live, not just readable: rules still hold against it...
    with expect_error("InvalidSubnet.Conflict"):
        ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.128/25")
    with expect_error("DependencyViolation"):
        ec2.delete_vpc(VpcId=vpc)
    with expect_error("InvalidSubnetID.NotFound"):
        ec2.describe_subnets(SubnetIds=[dropped])
    # ...and it accepts new writes, with fresh ids.
    new = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.2.0/24")["Subnet"]["SubnetId"]
    assert new not in (kept["SubnetId"], dropped)


def test_reset_is_durable(spawn, state_dir):
    first = spawn(state_dir)
    client("ec2", first.endpoint).create_vpc(CidrBlock="10.0.0.0/16")
    status, _, _ = http(first.endpoint, "POST", "/_kumori/reset", body=b"")
    assert status == 200
    assert first.stop() == 0
    second = spawn(state_dir)
    vpcs = client("ec2", second.endpoint).describe_vpcs()["Vpcs"]
    assert [v for v in vpcs if not v["IsDefault"]] == []


def test_ephemeral_state_does_not_outlive_the_process(spawn):
    first = spawn()
    client("ec2", first.endpoint).create_vpc(CidrBlock="10.0.0.0/16")
    first.stop()
    second = spawn()
    vpcs = client("ec2", second.endpoint).describe_vpcs()["Vpcs"]
    assert [v for v in vpcs if not v["IsDefault"]] == []


def test_acknowledged_writes_survive_kill_9(spawn, state_dir):
    """Writers create /28 subnets and tag each one; kill -9 lands while they are still writing.
    Every create and tag the server acknowledged must be there after a restart."""
    srv = spawn(state_dir)
    setup = client("ec2", srv.endpoint)
    vpc = setup.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]

    cidrs = (f"10.0.{i // 16}.{(i % 16) * 16}/28" for i in itertools.count())
    lock = threading.Lock()
    acked_subnets: dict[str, str] = {}  # subnet id -> cidr
    acked_tags: dict[str, str] = {}  # subnet id -> tag value
    attempted: set[str] = set()
    unexpected: list[str] = []
    stop = threading.Event()

    def writer(ec2):
        while not stop.is_set():
            with lock:
                cidr = next(cidrs)
                attempted.add(cidr)
            try:
                sid = ec2.create_subnet(VpcId=vpc, CidrBlock=cidr)["Subnet"]["SubnetId"]
                with lock:
                    acked_subnets[sid] = cidr
                ec2.create_tags(Resources=[sid], Tags=[{"Key": "seq", "Value": cidr}])
                with lock:
                    acked_tags[sid] = cidr
            except ClientError as e:  # the server answered, but not as it should
                unexpected.append(repr(e))
                return
            except BotoCoreError:  # the server is gone: the kill happened
                return

    clients = [client("ec2", srv.endpoint) for _ in range(4)]
    threads = [threading.Thread(target=writer, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(acked_tags) < 120 and time.monotonic() < deadline and not unexpected:
        time.sleep(0.005)
    srv.kill()  # SIGKILL while the writers are mid-request
    stop.set()
    for t in threads:
        t.join(30)
    assert not unexpected, unexpected[:3]
    assert len(acked_tags) >= 120, f"only {len(acked_tags)} writes acknowledged in 30 s"

    again = spawn(state_dir)
    ec2 = client("ec2", again.endpoint)
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]
    found = {s["SubnetId"]: s for s in subnets}
    assert len(found) == len(subnets), "a subnet is listed twice"
    missing = [sid for sid in acked_subnets if sid not in found]
    assert not missing, f"{len(missing)} of {len(acked_subnets)} acknowledged subnets lost, e.g. {missing[:3]}"
    for sid, cidr in acked_subnets.items():
        assert found[sid]["CidrBlock"] == cidr
    lost_tags = [
        sid for sid, value in acked_tags.items() if {"Key": "seq", "Value": value} not in found[sid].get("Tags", [])
    ]
    assert not lost_tags, f"{len(lost_tags)} acknowledged tags lost, e.g. {lost_tags[:3]}"
    # At most the in-flight requests may have landed without an answer; nothing else.
    assert {s["CidrBlock"] for s in subnets} <= attempted
    assert len(subnets) - len(acked_subnets) <= len(clients)
    # The recovered database is consistent: its subnets still block overlapping ones.
    some = next(iter(acked_subnets.values()))
    with expect_error("InvalidSubnet.Conflict"):
        ec2.create_subnet(VpcId=vpc, CidrBlock=some)


@needs_sqlite("it edits stored documents with SQLite's JSON functions to make old ones")
def test_subnets_stored_before_their_index_members_still_hold_their_rules(spawn, state_dir):
    """A state directory from before subnets kept `FirstAddress` (the overlap index) and
    `HeldAddresses` (their addresses in use): the next writes fill both in, and neither an
    overlapping subnet nor a duplicate address gets through meanwhile."""
    import sqlite3

    first = spawn(state_dir)
    ec2 = client("ec2", first.endpoint)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    old = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.4.0/24")["Subnet"]["SubnetId"]
    eni = ec2.create_network_interface(SubnetId=old)["NetworkInterface"]["PrivateIpAddress"]
    assert first.stop() == 0
    with sqlite3.connect(state_dir / "kumori.db") as db:
        changed = db.execute(
            "UPDATE resources SET body = json_remove(body, '$.FirstAddress', '$.HeldAddresses') "
            "WHERE kind = 'subnet' AND id = ?",
            (old,),
        ).rowcount
    assert changed == 1

    second = spawn(state_dir)
    ec2 = client("ec2", second.endpoint)
    for overlapping in ("10.0.4.128/25", "10.0.0.0/21", "10.0.4.0/28"):
        with expect_error("InvalidSubnet.Conflict"):
            ec2.create_subnet(VpcId=vpc, CidrBlock=overlapping)
    ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.5.0/24")
    ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.3.0/24")
    again = ec2.create_network_interface(SubnetId=old)["NetworkInterface"]["PrivateIpAddress"]
    assert again != eni
    with sqlite3.connect(state_dir / "kumori.db") as db:
        (body,) = db.execute("SELECT body FROM resources WHERE id = ?", (old,)).fetchone()
    assert '"FirstAddress":167773184' in body, body
