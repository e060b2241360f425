"""Racing writers: the server must decide each conflict exactly once."""

import ipaddress
import random
import threading

from botocore.exceptions import ClientError
from support import client, error_of, overlaps, own_subnets


def race(endpoint, calls):
    """Runs each zero-argument call on its own thread, all released at once by a barrier.

    Each call gets its own client (made beforehand: client creation is the slow part) and
    returns ("ok", answer) or ("error", code)."""
    clients = [client("ec2", endpoint) for _ in calls]
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(i):
        barrier.wait()
        try:
            results[i] = ("ok", calls[i](clients[i]))
        except ClientError as e:
            results[i] = ("error", error_of(e)[0])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(r is not None for r in results), "a racing request never finished"
    return results


def test_same_cidr_sixteen_times_gives_one_subnet(endpoint, ec2, vpc):
    results = race(endpoint, [lambda c: c.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.0.0/24")] * 16)
    wins = [r for kind, r in results if kind == "ok"]
    losses = [r for kind, r in results if kind == "error"]
    assert len(wins) == 1, results
    assert losses == ["InvalidSubnet.Conflict"] * 15, losses
    assert [s["SubnetId"] for s in own_subnets(ec2)] == [wins[0]["Subnet"]["SubnetId"]]


def test_partly_overlapping_cidrs_never_both_win(endpoint, ec2, vpc):
    # Blocks of sizes /22 down to /28 inside 10.0.0.0/22: most pairs overlap, some don't.
    rng = random.Random(7)
    space = ipaddress.ip_network("10.0.0.0/22")
    cidrs = []
    for _ in range(24):
        prefix = rng.choice([22, 23, 24, 25, 26, 27, 28])
        cidrs.append(str(rng.choice(list(space.subnets(new_prefix=prefix)))))
    results = race(
        endpoint, [lambda c, cidr=cidr: c.create_subnet(VpcId=vpc["VpcId"], CidrBlock=cidr) for cidr in cidrs]
    )
    won = [cidr for cidr, (kind, _) in zip(cidrs, results) if kind == "ok"]
    lost = [(cidr, code) for cidr, (kind, code) in zip(cidrs, results) if kind == "error"]
    assert won, results
    for i, a in enumerate(won):
        for b in won[i + 1 :]:
            assert not overlaps(a, b), f"both {a} and {b} were created"
    for cidr, code in lost:
        assert code == "InvalidSubnet.Conflict", (cidr, code)
        # Nothing is ever deleted here, so a refused CIDR must overlap one that was created.
        assert any(overlaps(cidr, w) for w in won), f"{cidr} was refused but overlaps nothing created"
    assert sorted(s["CidrBlock"] for s in own_subnets(ec2)) == sorted(won)


def test_concurrent_tag_writes_all_land(endpoint, ec2, vpc):
    results = race(
        endpoint,
        [
            lambda c, i=i: c.create_tags(Resources=[vpc["VpcId"]], Tags=[{"Key": f"k{i}", "Value": str(i)}])
            for i in range(16)
        ],
    )
    assert all(kind == "ok" for kind, _ in results), results
    [described] = ec2.describe_vpcs(VpcIds=[vpc["VpcId"]])["Vpcs"]
    assert {t["Key"]: t["Value"] for t in described["Tags"]} == {f"k{i}": str(i) for i in range(16)}


def test_concurrent_creates_in_different_vpcs_are_independent(endpoint, ec2):
    vpc_ids = [ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"] for _ in range(4)]
    calls = [
        lambda c, v=v, i=i: c.create_subnet(VpcId=v, CidrBlock=f"10.0.{i}.0/24") for v in vpc_ids for i in range(4)
    ]
    results = race(endpoint, calls)
    assert all(kind == "ok" for kind, _ in results), results
    assert len(own_subnets(ec2)) == 16
