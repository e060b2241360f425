"""Three kumori processes on one store — one SQLite file, or one PostgreSQL schema when the
suite runs on PostgreSQL: racing writers through all three decide each conflict exactly once,
as AWS would, and each process sees what the others wrote.

ARCHITECTURE.md promises this: invariants are checked inside write transactions that hold the
store's one write lock across processes (SQLite's BEGIN IMMEDIATE, PostgreSQL's advisory
lock), and each process's decode cache is keyed by a generation number that any process's
commit moves on."""

import ipaddress
import random
import threading
import time

import pytest
from botocore.exceptions import ClientError
from support import client, error_of, http, overlaps, own_subnets, own_vpcs

# Every race is bounded: a thread that has not finished by then fails the test.
RACE_TIMEOUT = 90.0


@pytest.fixture
def nodes(spawn, tmp_path):
    """Three servers on one store, each with its own port."""
    state = tmp_path / "state"
    args = ["--eip-quota", "40", "--vpc-quota", "20"]
    servers = [spawn(state, extra_args=args) for _ in range(3)]
    assert len({s.port for s in servers}) == 3
    return servers


def race(calls):
    """Runs each (endpoint, call) on its own thread with its own client, all released at
    once; answers ("ok", answer) or ("error", code) for each, in order."""
    clients = [client("ec2", endpoint) for endpoint, _ in calls]
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(i):
        try:
            barrier.wait(30)
            results[i] = ("ok", calls[i][1](clients[i]))
        except ClientError as e:
            results[i] = ("error", error_of(e)[0])
        except Exception as e:  # noqa: BLE001 - reported with the results
            results[i] = ("exception", repr(e))

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(calls))]
    for t in threads:
        t.start()
    deadline = time.monotonic() + RACE_TIMEOUT
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    assert all(r is not None for r in results), f"racing requests never finished: {results}"
    assert not [r for r in results if r[0] == "exception"], results
    return results


def alternate(servers, calls):
    """Sends the calls through the servers in turn."""
    return [(servers[i % len(servers)].endpoint, call) for i, call in enumerate(calls)]


def test_first_calls_from_all_make_one_default_vpc(nodes):
    # The default VPC is made on a region's first EC2 call: both processes make that call at
    # once, several times over.
    results = race(alternate(nodes, [lambda c: c.describe_vpcs()["Vpcs"]] * 8))
    assert all(kind == "ok" for kind, _ in results), results
    seen = {
        tuple(sorted(v["VpcId"] for v in answer if v["IsDefault"])) for _, answer in results
    }
    assert len(seen) == 1 and len(next(iter(seen))) == 1, seen
    for srv in nodes:
        ec2 = client("ec2", srv.endpoint)
        [default] = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
        assert (default["VpcId"],) in seen
        assert len(ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]) == 6


def test_overlapping_subnets_from_several_never_both_win(nodes):
    a = nodes[0]
    vpc = client("ec2", a.endpoint).create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]

    # The same block 16 times, spread over the processes: one subnet.
    results = race(alternate(nodes, [lambda c: c.create_subnet(VpcId=vpc, CidrBlock="10.0.8.0/24")] * 16))
    assert [kind for kind, _ in results].count("ok") == 1, results
    assert sorted(r for kind, r in results if kind == "error") == ["InvalidSubnet.Conflict"] * 15

    # Blocks of /22 down to /28 inside 10.0.0.0/22, so that most pairs overlap.
    rng = random.Random(13)
    space = ipaddress.ip_network("10.0.0.0/22")
    cidrs = [
        str(rng.choice(list(space.subnets(new_prefix=rng.choice(range(22, 29))))))
        for _ in range(24)
    ]
    results = race(alternate(nodes, [
        lambda c, cidr=cidr: c.create_subnet(VpcId=vpc, CidrBlock=cidr) for cidr in cidrs
    ]))
    won = [cidr for cidr, (kind, _) in zip(cidrs, results) if kind == "ok"]
    lost = [(cidr, code) for cidr, (kind, code) in zip(cidrs, results) if kind == "error"]
    assert won and lost, results
    for i, x in enumerate(won):
        for y in won[i + 1:]:
            assert not overlaps(x, y), f"both {x} and {y} were created"
    for cidr, code in lost:
        assert code == "InvalidSubnet.Conflict", (cidr, code)
        assert any(overlaps(cidr, w) for w in won), f"{cidr} was refused but overlaps nothing created"
    # Each process sees every subnet, whichever made it.
    for srv in nodes:
        seen = sorted(s["CidrBlock"] for s in own_subnets(client("ec2", srv.endpoint)))
        assert seen == sorted(won + ["10.0.8.0/24"]), (srv.endpoint, seen)


def test_addresses_from_all_are_handed_out_once(nodes):
    a = nodes[0]
    ec2 = client("ec2", a.endpoint)
    flt = [{"Name": "name", "Values": ["al2023-ami-2023.9.20261110.0-kernel-6.1-x86_64"]}]
    ami = ec2.describe_images(Owners=["amazon"], Filters=flt)["Images"][0]["ImageId"]
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    # A /28 holds 11 usable addresses: 16 launches into it must leave 5 refused.
    small = ec2.create_subnet(VpcId=vpc, CidrBlock="10.1.0.0/28")["Subnet"]["SubnetId"]

    def run_in(subnet):
        return lambda c: c.run_instances(
            ImageId=ami, InstanceType="t3.nano", MinCount=1, MaxCount=1, SubnetId=subnet
        )["Instances"][0]

    results = race(alternate(nodes, [run_in(small)] * 16))
    launched = [r for kind, r in results if kind == "ok"]
    refused = [r for kind, r in results if kind == "error"]
    assert len(launched) == 11, results
    assert refused == ["InsufficientFreeAddressesInSubnet"] * 5, refused
    private = [i["PrivateIpAddress"] for i in launched]
    assert len(set(private)) == 11, private

    # Elastic IPs and instances' public addresses come from one pool: 45 allocations against a
    # quota of 40 beside 8 public launches (into the default VPC), all at once through both.
    calls = [lambda c: c.allocate_address(Domain="vpc")["PublicIp"]] * 45
    calls += [lambda c: c.run_instances(ImageId=ami, InstanceType="t3.nano", MinCount=1, MaxCount=1)
              ["Instances"][0]["InstanceId"]] * 8
    rng = random.Random(5)
    rng.shuffle(calls)
    results = race(alternate(nodes, calls))
    errors = [r for kind, r in results if kind == "error"]
    assert errors == ["AddressLimitExceeded"] * 5, errors
    for srv in nodes:
        c = client("ec2", srv.endpoint)
        eips = [x["PublicIp"] for x in c.describe_addresses()["Addresses"]]
        instances = [
            i for r in c.describe_instances()["Reservations"] for i in r["Instances"]
        ]
        public = [i["PublicIpAddress"] for i in instances if i.get("PublicIpAddress")]
        assert len(eips) == 40 and len(public) == 8, (srv.endpoint, len(eips), len(public))
        assert len(set(eips + public)) == 48, "a public address was handed out twice"
        assert len(instances) == 19
        assert len({i["PrivateIpAddress"] for i in instances}) == 19


def test_security_group_names_stay_unique_across_all(nodes):
    vpc = client("ec2", nodes[0].endpoint).create_vpc(CidrBlock="10.2.0.0/16")["Vpc"]["VpcId"]
    names = [f"web-{i % 6}" for i in range(24)]  # each name tried 4 times, over the processes
    results = race(alternate(nodes, [
        lambda c, n=n: c.create_security_group(GroupName=n, Description="d", VpcId=vpc)["GroupId"]
        for n in names
    ]))
    created = [(n, r) for n, (kind, r) in zip(names, results) if kind == "ok"]
    assert sorted(n for n, _ in created) == sorted({*names}), results
    assert sorted(r for kind, r in results if kind == "error") == ["InvalidGroup.Duplicate"] * 18
    for srv in nodes:
        groups = client("ec2", srv.endpoint).describe_security_groups(
            Filters=[{"Name": "vpc-id", "Values": [vpc]}]
        )["SecurityGroups"]
        assert sorted((g["GroupName"], g["GroupId"]) for g in groups if g["GroupName"] != "default") \
            == sorted(created)


def test_each_process_sees_the_others_writes(nodes):
    a, b = (client("ec2", s.endpoint) for s in nodes[:2])
    vpc = a.create_vpc(CidrBlock="10.3.0.0/16")["Vpc"]["VpcId"]
    # Each round: B reads (and so caches what it decoded), A writes, B must see the write; and
    # the other way round. Creates, tags and deletes, each a few times.
    made = []
    for i in range(6):
        writer, reader = (a, b) if i % 2 == 0 else (b, a)
        assert sorted(s["SubnetId"] for s in own_subnets(reader)) == sorted(made)
        subnet = writer.create_subnet(VpcId=vpc, CidrBlock=f"10.3.{i}.0/24")["Subnet"]["SubnetId"]
        made.append(subnet)
        assert sorted(s["SubnetId"] for s in own_subnets(reader)) == sorted(made), i
        writer.create_tags(Resources=[subnet], Tags=[{"Key": "round", "Value": str(i)}])
        [tagged] = reader.describe_subnets(SubnetIds=[subnet])["Subnets"]
        assert {t["Key"]: t["Value"] for t in tagged.get("Tags", [])} == {"round": str(i)}
    for i, subnet in enumerate(list(made)):
        writer, reader = (b, a) if i % 2 == 0 else (a, b)
        writer.delete_subnet(SubnetId=subnet)
        made.remove(subnet)
        assert sorted(s["SubnetId"] for s in own_subnets(reader)) == sorted(made), i
    a.delete_vpc(VpcId=vpc)
    assert vpc not in [v["VpcId"] for v in b.describe_vpcs()["Vpcs"]]

    # A reset through one process empties what the other shows, though it had decoded it.
    kept = b.create_vpc(CidrBlock="10.4.0.0/16")["Vpc"]["VpcId"]
    assert [v["VpcId"] for v in own_vpcs(b)] == [kept]
    [old_default] = [v["VpcId"] for v in b.describe_vpcs()["Vpcs"] if v["IsDefault"]]
    status, _, body = http(nodes[0].endpoint, "POST", "/_kumori/reset", body=b"")
    assert status == 200, body
    assert own_vpcs(b) == []
    # ...and the region's next call makes a new default VPC, once, whichever process sees it.
    [new_default] = [v["VpcId"] for v in b.describe_vpcs()["Vpcs"] if v["IsDefault"]]
    assert new_default != old_default
    assert [v["VpcId"] for v in a.describe_vpcs()["Vpcs"]] == [new_default]


def test_a_vpc_takes_one_internet_gateway_and_a_gateway_one_vpc(nodes):
    ec2 = client("ec2", nodes[0].endpoint)
    vpc = ec2.create_vpc(CidrBlock="10.5.0.0/16")["Vpc"]["VpcId"]
    igws = [ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"] for _ in range(9)]
    results = race(alternate(nodes, [
        lambda c, g=g: c.attach_internet_gateway(InternetGatewayId=g, VpcId=vpc) for g in igws
    ]))
    assert [kind for kind, _ in results].count("ok") == 1, results
    assert sorted(r for kind, r in results if kind == "error") == ["Resource.AlreadyAssociated"] * 8
    [winner] = [g for g, (kind, _) in zip(igws, results) if kind == "ok"]
    for srv in nodes:
        attached = client("ec2", srv.endpoint).describe_internet_gateways(
            Filters=[{"Name": "attachment.vpc-id", "Values": [vpc]}]
        )["InternetGateways"]
        assert [g["InternetGatewayId"] for g in attached] == [winner]

    # One gateway raced onto nine VPCs: it ends attached to exactly one.
    vpcs = [ec2.create_vpc(CidrBlock=f"10.6.{i}.0/24")["Vpc"]["VpcId"] for i in range(9)]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    results = race(alternate(nodes, [
        lambda c, v=v: c.attach_internet_gateway(InternetGatewayId=igw, VpcId=v) for v in vpcs
    ]))
    assert [kind for kind, _ in results].count("ok") == 1, results
    [gw] = client("ec2", nodes[2].endpoint).describe_internet_gateways(
        InternetGatewayIds=[igw])["InternetGateways"]
    [won] = [v for v, (kind, _) in zip(vpcs, results) if kind == "ok"]
    assert gw["Attachments"] == [{"State": "available", "VpcId": won}]


def test_one_client_token_launches_once_whichever_process_is_asked(nodes):
    ec2 = client("ec2", nodes[0].endpoint)
    flt = [{"Name": "name", "Values": ["al2023-ami-2023.9.20261110.0-kernel-6.1-x86_64"]}]
    ami = ec2.describe_images(Owners=["amazon"], Filters=flt)["Images"][0]["ImageId"]
    launch = lambda c: c.run_instances(  # noqa: E731
        ImageId=ami, InstanceType="t3.nano", MinCount=2, MaxCount=2, ClientToken="same-token-1"
    )
    results = race(alternate(nodes, [launch] * 12))
    assert all(kind == "ok" for kind, _ in results), results
    reservations = {r["ReservationId"] for _, r in results}
    instances = {tuple(sorted(i["InstanceId"] for i in r["Instances"])) for _, r in results}
    assert len(reservations) == 1 and len(instances) == 1, (reservations, instances)
    for srv in nodes:
        running = [
            i["InstanceId"]
            for r in client("ec2", srv.endpoint).describe_instances()["Reservations"]
            for i in r["Instances"]
        ]
        assert sorted(running) == list(next(iter(instances)))
    # The same token with other parameters is refused, as AWS does.
    _, code = race([(nodes[1].endpoint, lambda c: c.run_instances(
        ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1, ClientToken="same-token-1"
    ))])[0]
    assert code == "IdempotentParameterMismatch"
