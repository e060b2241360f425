"""Terraform with the real AWS provider against Route 53's API: a public zone and a private
one in a VPC, A, CNAME, TXT and weighted records and an alias to a record of the zone; apply,
a clean plan, destroy leaving no zone. (Health checks and the DNS server come with the rest of
issue 21.) Runs as test_terraform.py does and is skipped, saying why, without terraform or
its provider mirror; once per suite, as the RDS one."""
from __future__ import annotations

import os

import pytest
from support import client
from test_terraform import PROVIDER_VERSION, Terraform
from test_terraform import pytestmark as terraform_marks  # skips without terraform or the mirror

pytestmark = [*terraform_marks, pytest.mark.skipif(
    bool(os.environ.get("KUMORI_TEST_DATABASE_URL")),
    reason="runs in the suite's SQLite pass only: mostly the provider's own waits, once")]

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
    ec2     = "%(endpoint)s"
    route53 = "%(endpoint)s"
    sts     = "%(endpoint)s"
  }
}
"""

CONFIG = """
resource "aws_vpc" "main" {
  cidr_block           = "10.0.0.0/16"
  enable_dns_hostnames = true
}

resource "aws_route53_zone" "public" {
  name    = "shop.example"
  comment = "the shop"
  tags    = { env = "test" }
}

resource "aws_route53_zone" "private" {
  name = "corp.internal"
  vpc {
    vpc_id = aws_vpc.main.id
  }
}

resource "aws_route53_record" "www" {
  zone_id = aws_route53_zone.public.zone_id
  name    = "www.shop.example"
  type    = "A"
  ttl     = 300
  records = ["192.0.2.10", "192.0.2.11"]
}

resource "aws_route53_record" "blog" {
  zone_id = aws_route53_zone.public.zone_id
  name    = "blog"
  type    = "CNAME"
  ttl     = 60
  records = ["www.shop.example"]
}

resource "aws_route53_record" "txt" {
  zone_id = aws_route53_zone.public.zone_id
  name    = "shop.example"
  type    = "TXT"
  ttl     = 300
  records = ["v=spf1 -all"]
}

resource "aws_route53_record" "apex" {
  zone_id = aws_route53_zone.public.zone_id
  name    = "shop.example"
  type    = "A"
  alias {
    name                   = aws_route53_record.www.fqdn
    zone_id                = aws_route53_zone.public.zone_id
    evaluate_target_health = false
  }
}

resource "aws_route53_record" "blue" {
  zone_id        = aws_route53_zone.public.zone_id
  name           = "app"
  type           = "A"
  ttl            = 60
  records        = ["192.0.2.20"]
  set_identifier = "blue"
  weighted_routing_policy {
    weight = 90
  }
}

resource "aws_route53_record" "green" {
  zone_id        = aws_route53_zone.public.zone_id
  name           = "app"
  type           = "A"
  ttl            = 60
  records        = ["192.0.2.21"]
  set_identifier = "green"
  weighted_routing_policy {
    weight = 10
  }
}

resource "aws_route53_record" "db" {
  zone_id = aws_route53_zone.private.zone_id
  name    = "db.corp.internal"
  type    = "A"
  ttl     = 60
  records = ["10.0.1.5"]
}

output "public_zone" { value = aws_route53_zone.public.zone_id }
output "private_zone" { value = aws_route53_zone.private.zone_id }
output "name_servers" { value = aws_route53_zone.public.name_servers }
"""


class Route53Terraform(Terraform):
    """test_terraform's driver, with the provider also pointed at kumori for Route 53."""

    def write(self, config: str) -> None:
        provider = PROVIDER % {"version": PROVIDER_VERSION, "endpoint": self.endpoint,
                               "key": self.key, "secret": self.secret}
        (self.dir / "main.tf").write_text(provider + config)


def test_zones_and_records_apply_plan_clean_and_destroy(tmp_path, endpoint, ec2):
    tf = Route53Terraform(tmp_path, endpoint)
    r53 = client("route53", endpoint)
    out = tf.cycle(CONFIG, ec2)
    public, private = out["public_zone"], out["private_zone"]
    assert len(out["name_servers"]) == 4
    listed = {(s["Name"], s["Type"], s.get("SetIdentifier")): s
              for s in r53.list_resource_record_sets(HostedZoneId=public)["ResourceRecordSets"]}
    assert sorted(r["Value"] for r in listed[("www.shop.example.", "A", None)]["ResourceRecords"]) == ["192.0.2.10", "192.0.2.11"]
    assert listed[("blog.shop.example.", "CNAME", None)]["ResourceRecords"] == [{"Value": "www.shop.example"}]
    assert listed[("shop.example.", "TXT", None)]["ResourceRecords"] == [{"Value": '"v=spf1 -all"'}]
    assert listed[("shop.example.", "A", None)]["AliasTarget"]["DNSName"] == "www.shop.example."
    assert {listed[("app.shop.example.", "A", c)]["Weight"] for c in ("blue", "green")} == {90, 10}
    zone = r53.get_hosted_zone(Id=public)["HostedZone"]
    assert zone["Config"]["Comment"] == "the shop"
    assert r53.list_tags_for_resource(ResourceType="hostedzone", ResourceId=public)["ResourceTagSet"]["Tags"] == [
        {"Key": "env", "Value": "test"}]
    assert r53.get_hosted_zone(Id=private)["HostedZone"]["Config"]["PrivateZone"] is True
    tf.destroy()
    assert r53.list_hosted_zones()["HostedZones"] == []
