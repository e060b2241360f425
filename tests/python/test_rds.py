"""RDS: the control plane as AWS answers it, and the real database server behind every DB
instance. `psql` and the `mariadb` client connect to the endpoints with the master password;
rows survive a forced failover and a restore; a read replica sees its source's rows; a
deleted instance's port is closed; bad input gets AWS's codes and leaves nothing behind.

Needs PostgreSQL's and MariaDB's servers and clients (scripts/test installs them); skips,
saying so, without them unless KUMORI_REQUIRE_DATABASES=1.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from support import client, expect_error, free_port

PASSWORD = "Secret-pass1"

_missing = [t for t in ("psql", "mariadb", "mariadbd", "initdb") if not shutil.which(t)
            and not Path("/usr/sbin", t).exists()
            and not any(Path(d, t).exists() for d in Path("/usr/lib/postgresql").glob("*/bin"))]
if _missing and os.environ.get("KUMORI_REQUIRE_DATABASES") == "1":
    raise RuntimeError(f"database tools missing: {_missing} (KUMORI_REQUIRE_DATABASES=1)")
pytestmark = pytest.mark.skipif(bool(_missing), reason=f"database tools missing: {_missing}")


@pytest.fixture
def rds(endpoint):
    return client("rds", endpoint)


@pytest.fixture
def net(ec2):
    """A VPC with a private subnet in each of two zones, a web tier's group and the
    database's group that only the web tier reaches."""
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"us-east-1{z}")["Subnet"]["SubnetId"]
        for i, z in ((1, "a"), (2, "b"))
    ]
    web = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc)["GroupId"]
    db = ec2.create_security_group(GroupName="db", Description="db", VpcId=vpc)["GroupId"]
    return {"vpc": vpc, "subnets": subnets, "web": web, "db": db}


@pytest.fixture
def subnet_group(rds, net):
    rds.create_db_subnet_group(DBSubnetGroupName="app-db", DBSubnetGroupDescription="app",
                               SubnetIds=net["subnets"])
    return "app-db"


def wait_for(rds, ident: str, status: str = "available", timeout: float = 90.0) -> dict:
    seen = []
    end = time.time() + timeout
    while time.time() < end:
        i = rds.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]
        if not seen or seen[-1] != i["DBInstanceStatus"]:
            seen.append(i["DBInstanceStatus"])
        if i["DBInstanceStatus"] == status:
            i["_seen"] = seen
            return i
        if i["DBInstanceStatus"] == "failed":
            break
        time.sleep(0.2)
    events = rds.describe_events(SourceType="db-instance", SourceIdentifier=ident)["Events"]
    raise AssertionError(f"{ident} never became {status}: went {seen}; events {[e['Message'] for e in events]}")


def wait_gone(rds, ident: str, timeout: float = 60.0) -> None:
    end = time.time() + timeout
    while time.time() < end:
        try:
            rds.describe_db_instances(DBInstanceIdentifier=ident)
        except rds.exceptions.DBInstanceNotFoundFault:
            return
        time.sleep(0.2)
    raise AssertionError(f"{ident} was never deleted")


def psql(port: int, sql: str, password: str = PASSWORD, user: str = "master", db: str = "app") -> str:
    out = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-p", str(port), "-U", user, "-d", db, "-tA", "-v", "ON_ERROR_STOP=1", "-c", sql],
        env={**os.environ, "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "5"},
        capture_output=True, text=True, timeout=30,
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip())
    return out.stdout.strip()


def mysql(port: int, sql: str, password: str = PASSWORD, user: str = "admin", db: str = "app") -> str:
    out = subprocess.run(
        ["mariadb", "-h", "127.0.0.1", "-P", str(port), "-u", user, "-N", "-B", db, "-e", sql],
        env={**os.environ, "MYSQL_PWD": password},
        capture_output=True, text=True, timeout=30,
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip())
    return out.stdout.strip()


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def databases_root(server) -> Path:
    m = re.search(r"RDS instances' databases in (\S+)", server.output())
    assert m, f"the server did not say where its databases live:\n{server.output()}"
    return Path(m.group(1))


def instance_dirs(server) -> list[str]:
    root = databases_root(server)
    return sorted(p.name for p in root.glob("db-*")) if root.exists() else []


def create_postgres(rds, ident: str, **kw) -> dict:
    args = dict(DBInstanceIdentifier=ident, Engine="postgres", DBInstanceClass="db.t3.micro",
                AllocatedStorage=20, MasterUsername="master", MasterUserPassword=PASSWORD, DBName="app")
    args.update(kw)
    return rds.create_db_instance(**args)["DBInstance"]


# --- subnet groups, parameter groups, the catalogue ----------------------------------------


def test_subnet_group_needs_two_zones_and_real_subnets(rds, ec2, net):
    one_zone = ec2.create_subnet(VpcId=net["vpc"], CidrBlock="10.0.9.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    with expect_error("DBSubnetGroupDoesNotCoverEnoughAZs", 400) as e:
        rds.create_db_subnet_group(DBSubnetGroupName="lonely", DBSubnetGroupDescription="x",
                                   SubnetIds=[net["subnets"][0], one_zone])
    assert "us-east-1a" in str(e.value) and "at least 2 AZs" in str(e.value)
    with expect_error("InvalidSubnet"):
        rds.create_db_subnet_group(DBSubnetGroupName="ghost", DBSubnetGroupDescription="x",
                                   SubnetIds=[net["subnets"][0], "subnet-0123456789abcdef0"])
    with expect_error("DBSubnetGroupNotFoundFault", 404):
        rds.describe_db_subnet_groups(DBSubnetGroupName="lonely")
    g = rds.create_db_subnet_group(DBSubnetGroupName="App-DB", DBSubnetGroupDescription="app",
                                   SubnetIds=net["subnets"], Tags=[{"Key": "tier", "Value": "db"}])["DBSubnetGroup"]
    assert g["DBSubnetGroupName"] == "app-db" and g["VpcId"] == net["vpc"]
    assert g["SubnetGroupStatus"] == "Complete"
    assert sorted(s["SubnetAvailabilityZone"]["Name"] for s in g["Subnets"]) == ["us-east-1a", "us-east-1b"]
    assert rds.list_tags_for_resource(ResourceName=g["DBSubnetGroupArn"])["TagList"] == [{"Key": "tier", "Value": "db"}]
    with expect_error("DBSubnetGroupAlreadyExists"):
        rds.create_db_subnet_group(DBSubnetGroupName="app-db", DBSubnetGroupDescription="x", SubnetIds=net["subnets"])
    rds.delete_db_subnet_group(DBSubnetGroupName="app-db")
    assert rds.describe_db_subnet_groups()["DBSubnetGroups"] == []


def test_parameter_groups_follow_apply_types(rds):
    g = rds.create_db_parameter_group(DBParameterGroupName="app-pg", DBParameterGroupFamily="postgres16",
                                      Description="app")["DBParameterGroup"]
    assert g["DBParameterGroupArn"].endswith(":pg:app-pg")
    with expect_error("InvalidParameterValue"):
        rds.create_db_parameter_group(DBParameterGroupName="x", DBParameterGroupFamily="postgres99", Description="x")
    with expect_error("InvalidParameterCombination"):
        rds.modify_db_parameter_group(DBParameterGroupName="app-pg", Parameters=[
            {"ParameterName": "max_connections", "ParameterValue": "50", "ApplyMethod": "immediate"}])
    with expect_error("InvalidParameterValue"):
        rds.modify_db_parameter_group(DBParameterGroupName="app-pg", Parameters=[
            {"ParameterName": "no_such_thing", "ParameterValue": "1", "ApplyMethod": "immediate"}])
    rds.modify_db_parameter_group(DBParameterGroupName="app-pg", Parameters=[
        {"ParameterName": "log_min_duration_statement", "ParameterValue": "250", "ApplyMethod": "immediate"},
        {"ParameterName": "max_connections", "ParameterValue": "50", "ApplyMethod": "pending-reboot"}])
    user = rds.describe_db_parameters(DBParameterGroupName="app-pg", Source="user")["Parameters"]
    assert {p["ParameterName"]: (p["ParameterValue"], p["ApplyMethod"]) for p in user} == {
        "log_min_duration_statement": ("250", "immediate"), "max_connections": ("50", "pending-reboot")}
    rds.reset_db_parameter_group(DBParameterGroupName="app-pg", ResetAllParameters=True)
    assert rds.describe_db_parameters(DBParameterGroupName="app-pg", Source="user")["Parameters"] == []
    with expect_error("InvalidDBParameterGroupState"):
        rds.modify_db_parameter_group(DBParameterGroupName="default.postgres16", Parameters=[
            {"ParameterName": "work_mem", "ParameterValue": "8192", "ApplyMethod": "immediate"}])
    with expect_error("InvalidDBParameterGroupState"):
        rds.delete_db_parameter_group(DBParameterGroupName="default.postgres16")
    rds.delete_db_parameter_group(DBParameterGroupName="app-pg")
    with expect_error("DBParameterGroupNotFound", 404):
        rds.describe_db_parameters(DBParameterGroupName="app-pg")


def test_catalogue_answers_versions_and_orderable_options(rds):
    versions = rds.describe_db_engine_versions(Engine="postgres")["DBEngineVersions"]
    assert {"16", "17"} <= {v["MajorEngineVersion"] for v in versions}
    assert all(v["DBParameterGroupFamily"] == "postgres" + v["MajorEngineVersion"] for v in versions)
    default = rds.describe_db_engine_versions(Engine="mysql", DefaultOnly=True)["DBEngineVersions"]
    assert len(default) == 1 and default[0]["EngineVersion"].startswith("8.")
    opts = rds.describe_orderable_db_instance_options(Engine="postgres", EngineVersion="16.8",
                                                      DBInstanceClass="db.t3.micro")["OrderableDBInstanceOptions"]
    assert {o["StorageType"] for o in opts} >= {"gp2", "gp3", "io1"}
    assert all(o["MultiAZCapable"] and o["ReadReplicaCapable"] for o in opts)
    gp2 = next(o for o in opts if o["StorageType"] == "gp2")
    assert (gp2["MinStorageSize"], gp2["MaxStorageSize"]) == (20, 65536)
    groups = rds.describe_option_groups(EngineName="postgres", MajorEngineVersion="16")["OptionGroupsList"]
    assert [g["OptionGroupName"] for g in groups] == ["default:postgres-16"]
    with expect_error("NotImplemented"):
        rds.create_db_instance(DBInstanceIdentifier="aurora", Engine="aurora-postgresql",
                               DBInstanceClass="db.r6g.large", MasterUsername="m", MasterUserPassword=PASSWORD)


# --- bad input --------------------------------------------------------------------------


def test_bad_input_gets_aws_codes_and_leaves_nothing(rds, server, subnet_group):
    before = instance_dirs(server)
    base = dict(Engine="postgres", DBInstanceClass="db.t3.micro", AllocatedStorage=20,
                MasterUsername="master", MasterUserPassword=PASSWORD, DBSubnetGroupName=subnet_group)
    cases = [
        ({"DBInstanceIdentifier": "1starts-with-digit"}, "InvalidParameterValue", "not a valid identifier"),
        ({"DBInstanceIdentifier": "two--hyphens"}, "InvalidParameterValue", "not a valid identifier"),
        ({"DBInstanceIdentifier": "short-pw", "MasterUserPassword": "abc"}, "InvalidParameterValue", "shorter than 8"),
        ({"DBInstanceIdentifier": "slash-pw", "MasterUserPassword": "abc/defgh1"}, "InvalidParameterValue",
         "Only printable ASCII characters besides '/', '@', '\"', ' '"),
        ({"DBInstanceIdentifier": "space-pw", "MasterUserPassword": "abc defgh1"}, "InvalidParameterValue", "printable"),
        ({"DBInstanceIdentifier": "bad-version", "EngineVersion": "9.9"}, "InvalidParameterCombination",
         "Cannot find version 9.9 for postgres"),
        ({"DBInstanceIdentifier": "bad-class", "DBInstanceClass": "db.x9.huge"}, "InvalidParameterCombination",
         "DBInstanceClass=db.x9.huge"),
        ({"DBInstanceIdentifier": "tiny", "AllocatedStorage": 5}, "InvalidParameterCombination",
         "Invalid storage size for engine name postgres and storage type gp2: 5"),
        ({"DBInstanceIdentifier": "bad-user", "MasterUsername": "9lives"}, "InvalidParameterValue", "MasterUsername"),
        ({"DBInstanceIdentifier": "no-group", "DBSubnetGroupName": "nope"}, "DBSubnetGroupNotFoundFault", "nope"),
        ({"DBInstanceIdentifier": "bad-engine", "Engine": "oracle-xe"}, "InvalidParameterValue", "Invalid DB engine"),
    ]
    for extra, code, words in cases:
        args = {**base, **extra}
        with expect_error(code) as e:
            rds.create_db_instance(**args)
        assert words in str(e.value), f"{extra}: {e.value}"
    assert rds.describe_db_instances()["DBInstances"] == []
    time.sleep(1)
    assert instance_dirs(server) == before, "a refused create left a data directory"


# --- PostgreSQL: connect, snapshot, restore, stop, start, delete ------------------------


def test_postgres_instance_is_a_real_server(rds, ec2, server, net, subnet_group):
    asked = free_port()
    created = create_postgres(rds, "pg1", DBSubnetGroupName=subnet_group, VpcSecurityGroupIds=[net["db"]],
                              BackupRetentionPeriod=1, Tags=[{"Key": "env", "Value": "test"}], Port=asked)
    assert created["DBInstanceStatus"] == "creating" and "Endpoint" not in created
    assert created["Engine"] == "postgres" and created["EngineVersion"].startswith("17.")
    assert created["DBParameterGroups"][0]["DBParameterGroupName"] == "default.postgres17"
    assert created["VpcSecurityGroups"] == [{"VpcSecurityGroupId": net["db"], "Status": "active"}]
    i = wait_for(rds, "pg1")
    assert "backing-up" in i["_seen"], i["_seen"]
    port = i["Endpoint"]["Port"]
    assert port == asked and i["Endpoint"]["Address"] == "127.0.0.1"
    assert i["AvailabilityZone"] in ("us-east-1a", "us-east-1b") and i["InstanceCreateTime"]
    # The endpoint's interface sits in the group's subnet behind the database's group.
    enis = ec2.describe_network_interfaces(Filters=[{"Name": "description", "Values": ["RDSNetworkInterface"]}])["NetworkInterfaces"]
    assert len(enis) == 1 and enis[0]["VpcId"] == net["vpc"]
    assert [g["GroupId"] for g in enis[0]["Groups"]] == [net["db"]]
    assert "PostgreSQL" in psql(port, "SELECT version()")
    psql(port, "CREATE TABLE t (v text); INSERT INTO t VALUES ('kept')")
    with pytest.raises(RuntimeError, match="password authentication failed"):
        psql(port, "SELECT 1", password="wrong-password")
    # The automated snapshot taken while backing up, then a manual one.
    autos = rds.describe_db_snapshots(DBInstanceIdentifier="pg1", SnapshotType="automated")["DBSnapshots"]
    assert len(autos) == 1 and autos[0]["DBSnapshotIdentifier"].startswith("rds:pg1-")
    rds.create_db_snapshot(DBInstanceIdentifier="pg1", DBSnapshotIdentifier="pg1-snap")
    end = time.time() + 60
    while rds.describe_db_snapshots(DBSnapshotIdentifier="pg1-snap")["DBSnapshots"][0]["Status"] != "available":
        assert time.time() < end, "the snapshot never became available"
        time.sleep(0.2)
    psql(port, "INSERT INTO t VALUES ('after the snapshot')")
    with expect_error("DBSnapshotAlreadyExists"):
        rds.create_db_snapshot(DBInstanceIdentifier="pg1", DBSnapshotIdentifier="pg1-snap")
    rds.restore_db_instance_from_db_snapshot(DBInstanceIdentifier="pg1-restored", DBSnapshotIdentifier="pg1-snap",
                                             DBSubnetGroupName=subnet_group)
    r = wait_for(rds, "pg1-restored")
    assert r["Endpoint"]["Port"] != port
    assert psql(r["Endpoint"]["Port"], "SELECT v FROM t") == "kept"
    # Stop closes the port and keeps the data; start brings both back.
    rds.stop_db_instance(DBInstanceIdentifier="pg1")
    wait_for(rds, "pg1", "stopped")
    assert not port_open(port)
    with expect_error("InvalidDBInstanceState"):
        rds.reboot_db_instance(DBInstanceIdentifier="pg1")
    rds.start_db_instance(DBInstanceIdentifier="pg1")
    wait_for(rds, "pg1")
    assert psql(port, "SELECT count(*) FROM t") == "2"
    # Delete: AWS's rules first, then the port closes and the data goes.
    with expect_error("InvalidParameterCombination") as e:
        rds.delete_db_instance(DBInstanceIdentifier="pg1")
    assert "FinalDBSnapshotIdentifier is required unless SkipFinalSnapshot is specified" in str(e.value)
    rds.delete_db_instance(DBInstanceIdentifier="pg1", FinalDBSnapshotIdentifier="pg1-final")
    wait_gone(rds, "pg1")
    assert rds.describe_db_snapshots(DBSnapshotIdentifier="pg1-final")["DBSnapshots"][0]["Status"] == "available"
    assert rds.describe_db_snapshots(DBInstanceIdentifier="pg1", SnapshotType="automated")["DBSnapshots"] == []
    end = time.time() + 20
    while port_open(port):
        assert time.time() < end, "the deleted instance's port is still open"
        time.sleep(0.2)
    assert len(ec2.describe_network_interfaces(Filters=[{"Name": "description", "Values": ["RDSNetworkInterface"]}])["NetworkInterfaces"]) == 1
    events = [e["Message"] for e in rds.describe_events(SourceType="db-instance", SourceIdentifier="pg1")["Events"]]
    assert events[0] == "DB instance created" and "DB instance deleted" in events


def test_deletion_protection_and_modify(rds, subnet_group):
    create_postgres(rds, "guarded", DBSubnetGroupName=subnet_group, DeletionProtection=True, BackupRetentionPeriod=0)
    i = wait_for(rds, "guarded")
    assert i["_seen"] == ["creating", "available"], i["_seen"]
    with expect_error("InvalidParameterCombination") as e:
        rds.delete_db_instance(DBInstanceIdentifier="guarded", SkipFinalSnapshot=True)
    assert "deletion protection" in str(e.value)
    port = i["Endpoint"]["Port"]
    # A new master password works at once; a new class waits for the window unless applied now.
    rds.modify_db_instance(DBInstanceIdentifier="guarded", MasterUserPassword="Another-pass2",
                           DBInstanceClass="db.t3.small")
    m = wait_for(rds, "guarded")
    assert m["DBInstanceClass"] == "db.t3.micro"
    assert m["PendingModifiedValues"] == {"DBInstanceClass": "db.t3.small"}
    end = time.time() + 20
    while True:
        try:
            psql(port, "SELECT 1", password="Another-pass2")
            break
        except RuntimeError:
            assert time.time() < end, "the new master password never worked"
            time.sleep(0.3)
    with pytest.raises(RuntimeError):
        psql(port, "SELECT 1")
    rds.modify_db_instance(DBInstanceIdentifier="guarded", DBInstanceClass="db.t3.small",
                           DeletionProtection=False, ApplyImmediately=True)
    m = wait_for(rds, "guarded")
    assert m["DBInstanceClass"] == "db.t3.small" and m["PendingModifiedValues"] == {}
    with expect_error("InvalidParameterValue"):
        rds.modify_db_instance(DBInstanceIdentifier="guarded", MasterUserPassword="short")
    rds.delete_db_instance(DBInstanceIdentifier="guarded", SkipFinalSnapshot=True)
    wait_gone(rds, "guarded")


# --- MySQL: Multi-AZ failover, read replica ----------------------------------------------


def test_mysql_multi_az_failover_and_replica(rds, subnet_group):
    created = rds.create_db_instance(
        DBInstanceIdentifier="shop", Engine="mysql", EngineVersion="8.0", DBInstanceClass="db.t3.micro",
        AllocatedStorage=20, MasterUsername="admin", MasterUserPassword=PASSWORD, DBName="app",
        MultiAZ=True, DBSubnetGroupName=subnet_group,
        # A port of its own: another worker's instance may take the default once this closes.
        Port=free_port())["DBInstance"]
    assert created["MultiAZ"] and created["EngineVersion"].startswith("8.0.")
    i = wait_for(rds, "shop")
    zone, standby_zone = i["AvailabilityZone"], i["SecondaryAvailabilityZone"]
    assert {zone, standby_zone} == {"us-east-1a", "us-east-1b"}
    port = i["Endpoint"]["Port"]
    mysql(port, "CREATE TABLE t (v VARCHAR(40)); INSERT INTO t VALUES ('before failover')")
    with pytest.raises(RuntimeError, match="Access denied"):
        mysql(port, "SELECT 1", password="wrong-password")

    rds.create_db_instance_read_replica(DBInstanceIdentifier="shop-replica", SourceDBInstanceIdentifier="shop")
    r = wait_for(rds, "shop-replica")
    assert r["ReadReplicaSourceDBInstanceIdentifier"] == "shop"
    assert rds.describe_db_instances(DBInstanceIdentifier="shop")["DBInstances"][0]["ReadReplicaDBInstanceIdentifiers"] == ["shop-replica"]
    rport = r["Endpoint"]["Port"]
    mysql(port, "INSERT INTO t VALUES ('seen by the replica')")
    end = time.time() + 30
    while "seen by the replica" not in mysql(rport, "SELECT v FROM t"):
        assert time.time() < end, "the replica never saw the row"
        time.sleep(0.3)
    with pytest.raises(RuntimeError, match="read-only"):
        mysql(rport, "INSERT INTO t VALUES ('no')")

    rds.reboot_db_instance(DBInstanceIdentifier="shop", ForceFailover=True)
    f = wait_for(rds, "shop")
    assert (f["AvailabilityZone"], f["SecondaryAvailabilityZone"]) == (standby_zone, zone)
    assert f["Endpoint"]["Port"] == port
    assert mysql(port, "SELECT count(*) FROM t") == "2"
    mysql(port, "INSERT INTO t VALUES ('after failover')")
    events = [e["Message"] for e in rds.describe_events(SourceType="db-instance", SourceIdentifier="shop")["Events"]]
    assert "Multi-AZ instance failover completed" in events
    with expect_error("InvalidParameterCombination"):
        rds.reboot_db_instance(DBInstanceIdentifier="shop-replica", ForceFailover=True)

    rds.promote_read_replica(DBInstanceIdentifier="shop-replica")
    p = wait_for(rds, "shop-replica")
    assert "ReadReplicaSourceDBInstanceIdentifier" not in p
    mysql(rport, "INSERT INTO t VALUES ('written on the promoted replica')")
    for ident in ("shop", "shop-replica"):
        rds.delete_db_instance(DBInstanceIdentifier=ident, SkipFinalSnapshot=True)
    for ident in ("shop", "shop-replica"):
        wait_gone(rds, ident)
    end = time.time() + 20
    while port_open(port) or port_open(rport):
        assert time.time() < end, "a deleted instance's port is still open"
        time.sleep(0.2)


def test_postgres_replica_follows(rds, subnet_group):
    create_postgres(rds, "src", DBSubnetGroupName=subnet_group)
    port = wait_for(rds, "src")["Endpoint"]["Port"]
    psql(port, "CREATE TABLE t (v text); INSERT INTO t VALUES ('one')")
    with expect_error("DBInstanceNotFound", 404):
        rds.create_db_instance_read_replica(DBInstanceIdentifier="r", SourceDBInstanceIdentifier="nope")
    rds.create_db_instance_read_replica(DBInstanceIdentifier="src-replica", SourceDBInstanceIdentifier="src")
    rport = wait_for(rds, "src-replica")["Endpoint"]["Port"]
    psql(port, "INSERT INTO t VALUES ('two')")
    end = time.time() + 30
    while psql(rport, "SELECT count(*) FROM t") != "2":
        assert time.time() < end, "the replica never caught up"
        time.sleep(0.3)
    with pytest.raises(RuntimeError, match="read-only"):
        psql(rport, "INSERT INTO t VALUES ('no')")


# --- managed master password --------------------------------------------------------------


def test_managed_master_password_lives_in_secrets_manager(rds, endpoint, subnet_group):
    sm = client("secretsmanager", endpoint)
    with expect_error("InvalidParameterCombination"):
        create_postgres(rds, "managed", DBSubnetGroupName=subnet_group, ManageMasterUserPassword=True)
    args = dict(DBInstanceIdentifier="managed", Engine="postgres", DBInstanceClass="db.t3.micro",
                AllocatedStorage=20, MasterUsername="master", DBName="app", ManageMasterUserPassword=True,
                DBSubnetGroupName=subnet_group, BackupRetentionPeriod=0)
    secret = rds.create_db_instance(**args)["DBInstance"]["MasterUserSecret"]
    assert secret["SecretStatus"] == "active" and ":secret:rds!db-" in secret["SecretArn"]
    port = wait_for(rds, "managed")["Endpoint"]["Port"]
    value = json.loads(sm.get_secret_value(SecretId=secret["SecretArn"])["SecretString"])
    assert value["username"] == "master"
    assert psql(port, "SELECT current_user", password=value["password"]) == "master"
    desc = sm.describe_secret(SecretId=secret["SecretArn"])
    assert desc["OwningService"] == "rds"
    rds.delete_db_instance(DBInstanceIdentifier="managed", SkipFinalSnapshot=True)
    wait_gone(rds, "managed")
    with expect_error("ResourceNotFoundException"):
        sm.get_secret_value(SecretId=secret["SecretArn"])


# --- supervision and restarts ---------------------------------------------------------------


def test_a_dead_server_is_restarted_and_recorded(rds, server, subnet_group):
    # A port of its own, which no other worker's instance takes while this one is down.
    create_postgres(rds, "phoenix", DBSubnetGroupName=subnet_group, BackupRetentionPeriod=0, Port=free_port())
    i = wait_for(rds, "phoenix")
    port = i["Endpoint"]["Port"]
    psql(port, "CREATE TABLE t (v text); INSERT INTO t VALUES ('survives')")
    pidfile = databases_root(server) / i["DbiResourceId"] / "a" / "postmaster.pid"
    pid = int(pidfile.read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    end = time.time() + 30
    while True:
        try:
            if psql(port, "SELECT v FROM t") == "survives":
                break
        except RuntimeError:
            pass
        assert time.time() < end, "the killed server was not started again"
        time.sleep(0.3)
    end = time.time() + 10
    while not any("restarted" in e["Message"] for e in
                  rds.describe_events(SourceType="db-instance", SourceIdentifier="phoenix")["Events"]):
        assert time.time() < end, "no event recorded the restart"
        time.sleep(0.3)


def test_instances_come_back_after_kumori_restarts(spawn, tmp_path):
    state = tmp_path / "state"
    args = ["--databases-dir", str(tmp_path / "databases")]
    srv = spawn(state_dir=state, extra_args=args)
    rds = client("rds", srv.endpoint)
    ec2 = client("ec2", srv.endpoint)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"us-east-1{z}")["Subnet"]["SubnetId"]
               for i, z in ((1, "a"), (2, "b"))]
    rds.create_db_subnet_group(DBSubnetGroupName="g", DBSubnetGroupDescription="g", SubnetIds=subnets)
    create_postgres(rds, "durable", DBSubnetGroupName="g", BackupRetentionPeriod=0, Port=free_port())
    port = wait_for(rds, "durable")["Endpoint"]["Port"]
    psql(port, "CREATE TABLE t (v text); INSERT INTO t VALUES ('durable')")
    srv.kill()  # SIGKILL: the database server dies with kumori
    end = time.time() + 20
    while port_open(port):
        assert time.time() < end, "the database outlived kumori"
        time.sleep(0.2)
    srv = spawn(state_dir=state, extra_args=args)
    rds = client("rds", srv.endpoint)
    assert wait_for(rds, "durable")["Endpoint"]["Port"] == port
    end = time.time() + 30
    while True:
        try:
            assert psql(port, "SELECT v FROM t") == "durable"
            break
        except RuntimeError:
            assert time.time() < end, "the instance did not come back after kumori restarted"
            time.sleep(0.3)
    srv.stop()
    assert not port_open(port), "a stopped kumori left its database running"


def test_cli_creates_and_describes(endpoint, subnet_group):
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    aws = [str(Path(os.sys.executable).parent / "aws"), "--endpoint-url", endpoint, "rds"]
    out = subprocess.run(aws + ["create-db-instance", "--db-instance-identifier", "cli-db", "--engine", "mariadb",
                                "--db-instance-class", "db.t3.micro", "--allocated-storage", "20",
                                "--master-username", "admin", "--master-user-password", PASSWORD,
                                "--db-subnet-group-name", subnet_group, "--backup-retention-period", "0"],
                         env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["DBInstance"]["Engine"] == "mariadb"
    rds = client("rds", endpoint)
    port = wait_for(rds, "cli-db")["Endpoint"]["Port"]
    assert "MariaDB" in mysql(port, "SELECT version()", db="mysql")
    out = subprocess.run(aws + ["delete-db-instance", "--db-instance-identifier", "cli-db"],
                         env=env, capture_output=True, text=True)
    assert out.returncode != 0 and "InvalidParameterCombination" in out.stderr


def test_point_in_time_restore_replays_the_log(rds, subnet_group):
    create_postgres(rds, "ledger", DBSubnetGroupName=subnet_group, BackupRetentionPeriod=1)
    port = wait_for(rds, "ledger")["Endpoint"]["Port"]
    psql(port, "CREATE TABLE t (v text); INSERT INTO t VALUES ('before')")
    time.sleep(1.1)
    at = psql(port, "SELECT to_char(now() AT TIME ZONE 'utc', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
    time.sleep(1.1)
    psql(port, "INSERT INTO t VALUES ('after')")
    with expect_error("InvalidParameterCombination"):
        rds.restore_db_instance_to_point_in_time(SourceDBInstanceIdentifier="ledger", TargetDBInstanceIdentifier="x")
    rds.restore_db_instance_to_point_in_time(SourceDBInstanceIdentifier="ledger", TargetDBInstanceIdentifier="ledger-then",
                                             RestoreTime=at, DBSubnetGroupName=subnet_group)
    rds.restore_db_instance_to_point_in_time(SourceDBInstanceIdentifier="ledger", TargetDBInstanceIdentifier="ledger-now",
                                             UseLatestRestorableTime=True)
    then = wait_for(rds, "ledger-then")["Endpoint"]["Port"]
    now = wait_for(rds, "ledger-now")["Endpoint"]["Port"]
    assert psql(then, "SELECT string_agg(v, ',' ORDER BY v) FROM t") == "before"
    assert psql(now, "SELECT string_agg(v, ',' ORDER BY v) FROM t") == "after,before"
    psql(then, "INSERT INTO t VALUES ('a restored instance takes writes')")
    create_postgres(rds, "no-backups", DBSubnetGroupName=subnet_group, BackupRetentionPeriod=0)
    with expect_error("PointInTimeRestoreNotEnabled"):
        rds.restore_db_instance_to_point_in_time(SourceDBInstanceIdentifier="no-backups",
                                                 TargetDBInstanceIdentifier="y", UseLatestRestorableTime=True)


def test_an_empty_db_name_means_no_database(rds, subnet_group):
    # Terraform's provider sends DBName= when the configuration names no database.
    i = create_postgres(rds, "nodb", DBSubnetGroupName=subnet_group, DBName="", BackupRetentionPeriod=0)
    assert "DBName" not in i
    port = wait_for(rds, "nodb")["Endpoint"]["Port"]
    assert psql(port, "SELECT current_database()", db="postgres") == "postgres"


def test_policies_decide_who_may_create_and_delete_under_enforce(spawn, tmp_path):
    from test_secretsmanager import ROOT_KEY, ROOT_SECRET, user_with_key
    srv = spawn(state_dir=tmp_path / "state", extra_args=["--auth", "enforce"],
                env={"KUMORI_ROOT_ACCESS_KEY_ID": ROOT_KEY, "KUMORI_ROOT_SECRET_ACCESS_KEY": ROOT_SECRET})
    iam = client("iam", srv.endpoint, key=ROOT_KEY, secret=ROOT_SECRET)
    viewer = user_with_key(iam, "viewer", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "rds:Describe*", "Resource": "*"}]})
    owner = user_with_key(iam, "owner", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "rds:*", "Resource": "*"},
        {"Effect": "Allow", "Action": "ec2:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "rds:DeleteDBInstance",
         "Resource": "arn:aws:rds:us-east-1:000000000000:db:prod-*"}]})
    as_viewer = client("rds", srv.endpoint, key=viewer[0], secret=viewer[1])
    as_owner = client("rds", srv.endpoint, key=owner[0], secret=owner[1])
    assert as_viewer.describe_db_instances()["DBInstances"] == []
    with expect_error("AccessDenied", 403):
        create_postgres(as_viewer, "nope")
    create_postgres(as_owner, "prod-db", BackupRetentionPeriod=0)
    with expect_error("AccessDenied", 403):
        as_owner.delete_db_instance(DBInstanceIdentifier="prod-db", SkipFinalSnapshot=True)
    assert [i["DBInstanceIdentifier"] for i in as_viewer.describe_db_instances()["DBInstances"]] == ["prod-db"]


def test_instances_made_at_once_each_get_a_server_of_their_own(rds, subnet_group):
    # All ask for 5432: one may have it, the others get ports of their own, and each
    # endpoint answers with its own instance's password.
    names = [f"burst-{n}" for n in range(4)]
    for n in names:
        create_postgres(rds, n, DBSubnetGroupName=subnet_group, BackupRetentionPeriod=0,
                        MasterUserPassword=f"Secret-{n}")
    ports = {n: wait_for(rds, n)["Endpoint"]["Port"] for n in names}
    assert len(set(ports.values())) == len(names), ports
    for n, port in ports.items():
        assert psql(port, "SELECT current_user", password=f"Secret-{n}") == "master"
    events = [e["Message"] for n in names
              for e in rds.describe_events(SourceType="db-instance", SourceIdentifier=n)["Events"]]
    assert not [m for m in events if "failed" in m], events
