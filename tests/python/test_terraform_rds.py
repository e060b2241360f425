"""Terraform with the real AWS provider against kumori's RDS: a VPC with private subnets in two
zones, a DB subnet group, a parameter group, a security group, a PostgreSQL instance, a
Multi-AZ MySQL instance, an instance whose master password Secrets Manager keeps, and a read
replica. The configuration applies, then `plan -detailed-exitcode` reports no changes; then
the databases are used with their own clients (psql, mariadb) at the endpoints Terraform
reports — a row written to the primary shows on the replica, the managed password is read
from its secret, a wrong password is refused — and destroy leaves neither instances nor
listening servers behind.

Runs as test_terraform.py does (its Terraform driver, its mirror of hashicorp/aws) and is
skipped, saying why, where terraform, the mirror or the database clients are missing.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time

import pytest
from support import client, free_port
from test_terraform import PROVIDER_VERSION, Terraform, inventory
from test_terraform import pytestmark as terraform_marks  # skips without terraform or the mirror

# Once per suite: this test is the provider waiting (about five minutes of its own delays),
# and what it checks of the store the PostgreSQL pass's RDS and Terraform tests check already.
pytestmark = [*terraform_marks, pytest.mark.skipif(
    bool(os.environ.get("KUMORI_TEST_DATABASE_URL")),
    reason="runs in the suite's SQLite pass only: the provider's five minutes of waiting, once")]

PSQL = shutil.which("psql")
MARIADB = shutil.which("mariadb")

PROVIDER = """
terraform {
  required_providers {
    aws = { source = "hashicorp/aws", version = "%(version)s" }
  }
}
provider "aws" {
  region                      = "us-east-1"
  access_key                  = "%(key)s"
  secret_key                  = "%(secret)s"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  endpoints {
    ec2            = "%(endpoint)s"
    iam            = "%(endpoint)s"
    rds            = "%(endpoint)s"
    secretsmanager = "%(endpoint)s"
    sts            = "%(endpoint)s"
  }
}
"""


class DatabaseTerraform(Terraform):
    """test_terraform's driver, with the provider also pointed at kumori for RDS and Secrets Manager."""

    def write(self, config: str) -> None:
        provider = PROVIDER % {"version": PROVIDER_VERSION, "endpoint": self.endpoint,
                               "key": self.key, "secret": self.secret}
        (self.dir / "main.tf").write_text(provider + config)


@pytest.fixture
def tf(tmp_path, endpoint):
    return DatabaseTerraform(tmp_path, endpoint)


@pytest.fixture
def rds(endpoint):
    return client("rds", endpoint)


@pytest.fixture
def sm(endpoint):
    return client("secretsmanager", endpoint)


PG_PASSWORD = "pg-Secret-1234"
MY_PASSWORD = "my-Secret-1234"

DATABASES = """
resource "aws_vpc" "main" {
  cidr_block           = "10.0.0.0/16"
  enable_dns_hostnames = true
  enable_dns_support   = true
  tags                 = { Name = "db" }
}
resource "aws_subnet" "private" {
  count             = 2
  vpc_id            = aws_vpc.main.id
  cidr_block        = "10.0.${count.index + 10}.0/24"
  availability_zone = ["us-east-1a", "us-east-1b"][count.index]
  tags              = { Name = "private-${count.index}" }
}
resource "aws_db_subnet_group" "db" {
  name        = "db"
  description = "private subnets for the databases"
  subnet_ids  = aws_subnet.private[*].id
  tags        = { Name = "db" }
}
resource "aws_db_parameter_group" "pg" {
  name        = "pg16"
  family      = "postgres16"
  description = "slow statements logged"
  parameter {
    name         = "log_min_duration_statement"
    value        = "250"
    apply_method = "immediate"
  }
}
resource "aws_security_group" "db" {
  name        = "db"
  description = "databases from inside the VPC"
  vpc_id      = aws_vpc.main.id
  ingress {
    from_port   = 5432
    to_port     = 5432
    protocol    = "tcp"
    cidr_blocks = [aws_vpc.main.cidr_block]
  }
  ingress {
    from_port   = 3306
    to_port     = 3306
    protocol    = "tcp"
    cidr_blocks = [aws_vpc.main.cidr_block]
  }
}
resource "aws_db_instance" "pg" {
  identifier              = "app-pg"
  engine                  = "postgres"
  engine_version          = "16"
  instance_class          = "db.t3.micro"
  allocated_storage       = 20
  db_name                 = "app"
  username                = "app"
  password                = "%(pg_password)s"
  port                    = %(pg_port)d
  db_subnet_group_name    = aws_db_subnet_group.db.name
  parameter_group_name    = aws_db_parameter_group.pg.name
  vpc_security_group_ids  = [aws_security_group.db.id]
  backup_retention_period = 1
  skip_final_snapshot     = true
  tags                    = { Tier = "data" }
}
resource "aws_db_instance" "replica" {
  identifier             = "app-pg-replica"
  replicate_source_db    = aws_db_instance.pg.identifier
  instance_class         = "db.t3.micro"
  vpc_security_group_ids = [aws_security_group.db.id]
  skip_final_snapshot    = true
}
resource "aws_db_instance" "mysql" {
  identifier             = "app-mysql"
  engine                 = "mysql"
  engine_version         = "8.0"
  instance_class         = "db.t3.micro"
  allocated_storage      = 20
  username               = "admin"
  password               = "%(my_password)s"
  multi_az               = true
  db_subnet_group_name   = aws_db_subnet_group.db.name
  vpc_security_group_ids = [aws_security_group.db.id]
  skip_final_snapshot    = true
}
resource "aws_db_instance" "managed" {
  identifier                  = "app-managed"
  engine                      = "postgres"
  engine_version              = "16"
  instance_class              = "db.t3.micro"
  allocated_storage           = 20
  username                    = "owner"
  manage_master_user_password = true
  db_subnet_group_name        = aws_db_subnet_group.db.name
  vpc_security_group_ids      = [aws_security_group.db.id]
  skip_final_snapshot         = true
}
output "pg_address" { value = aws_db_instance.pg.address }
output "pg_port" { value = aws_db_instance.pg.port }
output "pg_arn" { value = aws_db_instance.pg.arn }
output "replica_address" { value = aws_db_instance.replica.address }
output "replica_port" { value = aws_db_instance.replica.port }
output "mysql_address" { value = aws_db_instance.mysql.address }
output "mysql_port" { value = aws_db_instance.mysql.port }
output "managed_address" { value = aws_db_instance.managed.address }
output "managed_port" { value = aws_db_instance.managed.port }
output "managed_secret" { value = aws_db_instance.managed.master_user_secret[0].secret_arn }
"""


def psql(host: str, port: int, user: str, password: str, sql: str, db: str = "postgres"):
    return subprocess.run(
        [PSQL, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", host, "-p", str(port), "-U", user,
         "-d", db, "-c", sql],
        env={**os.environ, "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "5"},
        capture_output=True, text=True, timeout=30,
    )


def mariadb(host: str, port: int, user: str, password: str, sql: str):
    return subprocess.run(
        [MARIADB, "-h", host, "-P", str(port), "-u", user, "--protocol=TCP", "--connect-timeout=5",
         "-N", "-B", "-e", sql],
        env={**os.environ, "MYSQL_PWD": password},
        capture_output=True, text=True, timeout=30,
    )


def ok(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 0, f"{done.args[0]} exited {done.returncode}: {done.stderr.strip()}"
    return done.stdout.strip()


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_databases_apply_plan_clean_serve_their_clients_and_destroy(tf, ec2, rds, sm):
    missing = [name for name, path in (("psql", PSQL), ("mariadb", MARIADB)) if path is None]
    if missing:
        pytest.skip(f"needs the database clients {', '.join(missing)} (scripts/test installs them)")
    before = inventory(ec2)
    pg_port = free_port()
    out = tf.cycle(DATABASES % {"pg_port": pg_port, "pg_password": PG_PASSWORD,
                                "my_password": MY_PASSWORD}, ec2)

    shown = {d["DBInstanceIdentifier"]: d for d in rds.describe_db_instances()["DBInstances"]}
    assert set(shown) == {"app-pg", "app-pg-replica", "app-mysql", "app-managed"}
    assert all(d["DBInstanceStatus"] == "available" for d in shown.values())
    pg, replica, my = shown["app-pg"], shown["app-pg-replica"], shown["app-mysql"]
    assert pg["DBInstanceArn"] == out["pg_arn"] and pg["Endpoint"]["Port"] == pg_port == out["pg_port"]
    assert pg["DBSubnetGroup"]["DBSubnetGroupName"] == "db"
    assert [g["DBParameterGroupName"] for g in pg["DBParameterGroups"]] == ["pg16"]
    assert replica["ReadReplicaSourceDBInstanceIdentifier"] == "app-pg"
    assert pg["ReadReplicaDBInstanceIdentifiers"] == ["app-pg-replica"]
    assert my["MultiAZ"] is True and my["SecondaryAvailabilityZone"] != my["AvailabilityZone"]
    ports = {out[f"{n}_port"] for n in ("pg", "replica", "mysql", "managed")}
    assert len(ports) == 4 and all(out[f"{n}_address"] == "127.0.0.1" for n in ("pg", "replica", "mysql", "managed"))

    # PostgreSQL: the master user writes, the parameter group's setting is live, the replica
    # follows.
    host = out["pg_address"]
    ok(psql(host, pg_port, "app", PG_PASSWORD,
            "CREATE TABLE notes (id int PRIMARY KEY, body text); INSERT INTO notes VALUES (1, 'hello')",
            db="app"))
    assert ok(psql(host, pg_port, "app", PG_PASSWORD, "SHOW log_min_duration_statement", db="app")) == "250ms"
    deadline, seen = time.time() + 30, None
    while time.time() < deadline:
        seen = psql(out["replica_address"], out["replica_port"], "app", PG_PASSWORD,
                    "SELECT body FROM notes WHERE id = 1", db="app")
        if seen.returncode == 0 and seen.stdout.strip() == "hello":
            break
        time.sleep(1)
    assert seen.returncode == 0 and seen.stdout.strip() == "hello", f"the replica never saw the row: {seen.stderr}"
    # The replica is read-only; a wrong password is refused.
    assert psql(out["replica_address"], out["replica_port"], "app", PG_PASSWORD,
                "INSERT INTO notes VALUES (2, 'no')", db="app").returncode != 0
    wrong = psql(host, pg_port, "app", "not-the-password", "SELECT 1", db="app")
    assert wrong.returncode != 0 and "password authentication failed" in wrong.stderr

    # MySQL (served by MariaDB) answers its own client as the master user.
    my_port = out["mysql_port"]
    ok(mariadb("127.0.0.1", my_port, "admin", MY_PASSWORD,
               "CREATE DATABASE shop; CREATE TABLE shop.items (id int PRIMARY KEY, name varchar(20));"
               "INSERT INTO shop.items VALUES (1, 'apple')"))
    assert ok(mariadb("127.0.0.1", my_port, "admin", MY_PASSWORD, "SELECT name FROM shop.items")) == "apple"
    wrong = mariadb("127.0.0.1", my_port, "admin", "not-the-password", "SELECT 1")
    assert wrong.returncode != 0 and "Access denied" in wrong.stderr

    # The managed instance's password is in its Secrets Manager secret, and it works.
    secret = json.loads(sm.get_secret_value(SecretId=out["managed_secret"])["SecretString"])
    assert secret["username"] == "owner" and secret["password"]
    assert shown["app-managed"]["MasterUserSecret"]["SecretArn"] == out["managed_secret"]
    assert ok(psql(out["managed_address"], out["managed_port"], "owner", secret["password"],
                   "SELECT current_user")) == "owner"
    assert psql(out["managed_address"], out["managed_port"], "owner", secret["password"] + "x",
                "SELECT 1").returncode != 0

    tf.destroy()
    assert rds.describe_db_instances()["DBInstances"] == []
    assert rds.describe_db_subnet_groups()["DBSubnetGroups"] == []
    # The managed password's secret went with its instance.
    assert sm.list_secrets()["SecretList"] == []
    assert [g["DBParameterGroupName"] for g in rds.describe_db_parameter_groups()["DBParameterGroups"]
            if g["DBParameterGroupName"] == "pg16"] == []
    still = [p for p in ports if listening(p)]
    assert still == [], f"ports still accept connections after destroy: {still}"
    assert inventory(ec2) == before
