"""Terraform with the real AWS provider against kumori's load balancing: ELBv2 (application
and network load balancers, target groups, listeners, rules, attachments) and an Auto Scaling
group behind an ALB. Each configuration applies, then `plan -detailed-exitcode` reports no
changes, then destroy leaves nothing behind.

Runs as test_terraform.py does (its Terraform driver, its mirror of hashicorp/aws) and is
skipped, saying why, where terraform or the mirror is missing.
"""
from __future__ import annotations

import pytest
from support import client, free_port, http
from test_elb import listener_address
from test_terraform import PROVIDER_VERSION, Terraform, inventory
from test_terraform import pytestmark  # noqa: F401  (skips without terraform or the mirror)

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
    autoscaling = "%(endpoint)s"
    ec2         = "%(endpoint)s"
    elb         = "%(endpoint)s"
    elbv2       = "%(endpoint)s"
    iam         = "%(endpoint)s"
    sts         = "%(endpoint)s"
  }
}
"""


class LoadBalancingTerraform(Terraform):
    """test_terraform's driver, with the provider also pointed at kumori for ELB and Auto Scaling."""

    def write(self, config: str) -> None:
        provider = PROVIDER % {"version": PROVIDER_VERSION, "endpoint": self.endpoint,
                               "key": self.key, "secret": self.secret}
        (self.dir / "main.tf").write_text(provider + config)


@pytest.fixture
def tf(tmp_path, endpoint):
    return LoadBalancingTerraform(tmp_path, endpoint)


@pytest.fixture
def elb(endpoint):
    return client("elbv2", endpoint)


@pytest.fixture
def autoscaling(endpoint):
    return client("autoscaling", endpoint)


NETWORK = """
resource "aws_vpc" "main" {
  cidr_block           = "10.0.0.0/16"
  enable_dns_hostnames = true
  tags                 = { Name = "lb" }
}
resource "aws_internet_gateway" "gw" {
  vpc_id = aws_vpc.main.id
}
resource "aws_subnet" "public" {
  count                   = 2
  vpc_id                  = aws_vpc.main.id
  cidr_block              = "10.0.${count.index + 1}.0/24"
  availability_zone       = ["us-east-1a", "us-east-1b"][count.index]
  map_public_ip_on_launch = true
  tags                    = { Name = "public-${count.index}" }
}
resource "aws_route_table" "public" {
  vpc_id = aws_vpc.main.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.gw.id
  }
}
resource "aws_route_table_association" "public" {
  count          = 2
  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public.id
}
resource "aws_security_group" "lb" {
  name        = "lb"
  description = "HTTP from anywhere"
  vpc_id      = aws_vpc.main.id
  ingress {
    from_port   = 80
    to_port     = 80
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
  egress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
"""

BALANCERS = NETWORK + """
resource "aws_lb" "web" {
  name               = "web"
  internal           = false
  load_balancer_type = "application"
  security_groups    = [aws_security_group.lb.id]
  subnets            = aws_subnet.public[*].id
  idle_timeout       = 30
  tags               = { Name = "web" }
  depends_on         = [aws_internet_gateway.gw]
}
resource "aws_lb_target_group" "web" {
  name        = "web"
  port        = 80
  protocol    = "HTTP"
  target_type = "ip"
  vpc_id      = aws_vpc.main.id
  health_check {
    enabled             = true
    path                = "/health"
    interval            = 10
    timeout             = 5
    healthy_threshold   = 3
    unhealthy_threshold = 2
    matcher             = "200-299"
  }
  tags = { Tier = "web" }
}
resource "aws_lb_target_group" "api" {
  name        = "api"
  port        = 8080
  protocol    = "HTTP"
  target_type = "ip"
  vpc_id      = aws_vpc.main.id
  health_check {
    path = "/ready"
  }
}
resource "aws_lb_listener" "web" {
  load_balancer_arn = aws_lb.web.arn
  port              = %(alb_port)d
  protocol          = "HTTP"
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.web.arn
  }
}
resource "aws_lb_listener_rule" "api" {
  listener_arn = aws_lb_listener.web.arn
  priority     = 10
  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.api.arn
  }
  condition {
    path_pattern {
      values = ["/api/*"]
    }
  }
}
resource "aws_lb_listener_rule" "maintenance" {
  listener_arn = aws_lb_listener.web.arn
  priority     = 20
  action {
    type = "fixed-response"
    fixed_response {
      content_type = "text/plain"
      message_body = "back soon"
      status_code  = "503"
    }
  }
  condition {
    path_pattern {
      values = ["/maintenance"]
    }
  }
}
resource "aws_lb_target_group_attachment" "web" {
  target_group_arn = aws_lb_target_group.web.arn
  target_id        = "10.0.1.10"
  port             = 80
}

resource "aws_lb" "tcp" {
  name               = "tcp"
  internal           = false
  load_balancer_type = "network"
  subnets            = [aws_subnet.public[0].id]
  depends_on         = [aws_internet_gateway.gw]
}
resource "aws_lb_target_group" "tcp" {
  name        = "tcp"
  port        = 5432
  protocol    = "TCP"
  target_type = "ip"
  vpc_id      = aws_vpc.main.id
}
resource "aws_lb_listener" "tcp" {
  load_balancer_arn = aws_lb.tcp.arn
  port              = %(nlb_port)d
  protocol          = "TCP"
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.tcp.arn
  }
}
output "alb" { value = aws_lb.web.arn }
output "alb_dns" { value = aws_lb.web.dns_name }
output "nlb" { value = aws_lb.tcp.arn }
output "web_tg" { value = aws_lb_target_group.web.arn }
output "api_tg" { value = aws_lb_target_group.api.arn }
output "tcp_tg" { value = aws_lb_target_group.tcp.arn }
output "listener" { value = aws_lb_listener.web.arn }
output "tcp_listener" { value = aws_lb_listener.tcp.arn }
"""


def test_load_balancers_listeners_and_rules_apply_plan_clean_and_destroy(tf, ec2, elb, endpoint):
    before = inventory(ec2)
    alb_port, nlb_port = free_port(), free_port()
    out = tf.cycle(BALANCERS % {"alb_port": alb_port, "nlb_port": nlb_port}, ec2)

    lbs = {lb["LoadBalancerName"]: lb for lb in elb.describe_load_balancers()["LoadBalancers"]}
    assert set(lbs) == {"web", "tcp"}
    assert lbs["web"]["LoadBalancerArn"] == out["alb"] and lbs["web"]["DNSName"] == out["alb_dns"]
    assert lbs["web"]["Type"] == "application" and lbs["web"]["Scheme"] == "internet-facing"
    assert sorted(z["ZoneName"] for z in lbs["web"]["AvailabilityZones"]) == ["us-east-1a", "us-east-1b"]
    assert lbs["tcp"]["Type"] == "network"

    (web,) = elb.describe_target_groups(TargetGroupArns=[out["web_tg"]])["TargetGroups"]
    assert web["HealthCheckPath"] == "/health" and web["Matcher"] == {"HttpCode": "200-299"}
    assert (web["HealthCheckIntervalSeconds"], web["HealthyThresholdCount"]) == (10, 3)
    assert web["LoadBalancerArns"] == [out["alb"]]
    targets = elb.describe_target_health(TargetGroupArn=out["web_tg"])["TargetHealthDescriptions"]
    assert [(t["Target"]["Id"], t["Target"]["Port"]) for t in targets] == [("10.0.1.10", 80)]

    rules = elb.describe_rules(ListenerArn=out["listener"])["Rules"]
    assert [r["Priority"] for r in rules] == ["10", "20", "default"]
    assert rules[0]["Actions"][0]["TargetGroupArn"] == out["api_tg"]
    assert rules[1]["Actions"][0]["FixedResponseConfig"]["StatusCode"] == "503"

    # The listener is real: the fixed-response rule answers through it.
    port = listener_address(endpoint, out["listener"])
    status, _, body = http(f"http://127.0.0.1:{port}", "GET", "/maintenance")
    assert (status, body) == (503, b"back soon")
    listener_address(endpoint, out["tcp_listener"])

    tf.destroy()
    assert elb.describe_load_balancers()["LoadBalancers"] == []
    assert elb.describe_target_groups()["TargetGroups"] == []
    # The load balancers' network interfaces went with them; the network went too.
    assert inventory(ec2) == before


SCALING = NETWORK + """
data "aws_ami" "al2023" {
  most_recent = true
  owners      = ["amazon"]
  filter {
    name   = "name"
    values = ["al2023-ami-2023.*-x86_64"]
  }
}
resource "aws_security_group" "app" {
  name        = "app"
  description = "HTTP from the load balancer"
  vpc_id      = aws_vpc.main.id
  ingress {
    from_port       = 80
    to_port         = 80
    protocol        = "tcp"
    security_groups = [aws_security_group.lb.id]
  }
}
resource "aws_lb" "web" {
  name               = "web"
  load_balancer_type = "application"
  security_groups    = [aws_security_group.lb.id]
  subnets            = aws_subnet.public[*].id
  depends_on         = [aws_internet_gateway.gw]
}
resource "aws_lb_target_group" "app" {
  name     = "app"
  port     = 80
  protocol = "HTTP"
  vpc_id   = aws_vpc.main.id
  health_check {
    path = "/"
  }
}
resource "aws_lb_listener" "web" {
  load_balancer_arn = aws_lb.web.arn
  port              = %(alb_port)d
  protocol          = "HTTP"
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.app.arn
  }
}
resource "aws_launch_template" "app" {
  name                   = "app"
  image_id               = data.aws_ami.al2023.id
  instance_type          = "t3.micro"
  vpc_security_group_ids = [aws_security_group.app.id]
}
resource "aws_autoscaling_group" "app" {
  name                      = "app"
  min_size                  = 2
  max_size                  = 4
  desired_capacity          = 2
  vpc_zone_identifier       = aws_subnet.public[*].id
  target_group_arns         = [aws_lb_target_group.app.arn]
  health_check_type         = "EC2"
  health_check_grace_period = 60
  wait_for_capacity_timeout = "5m"
  launch_template {
    id      = aws_launch_template.app.id
    version = "$Latest"
  }
  tag {
    key                 = "Name"
    value               = "app"
    propagate_at_launch = true
  }
}
output "group" { value = aws_autoscaling_group.app.name }
output "tg" { value = aws_lb_target_group.app.arn }
output "template" { value = aws_launch_template.app.id }
"""


def test_autoscaling_group_behind_an_alb_applies_plans_clean_and_destroys(tf, ec2, elb, autoscaling):
    before = inventory(ec2)
    out = tf.cycle(SCALING % {"alb_port": free_port()}, ec2)

    (group,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[out["group"]])["AutoScalingGroups"]
    assert (group["MinSize"], group["MaxSize"], group["DesiredCapacity"]) == (2, 4, 2)
    assert group["TargetGroupARNs"] == [out["tg"]]
    assert group["LaunchTemplate"]["LaunchTemplateId"] == out["template"]
    instances = sorted(i["InstanceId"] for i in group["Instances"])
    assert len(instances) == 2 and all(i["LifecycleState"] == "InService" for i in group["Instances"])
    # Spread over both zones, each instance tagged and registered with the target group.
    assert sorted(i["AvailabilityZone"] for i in group["Instances"]) == ["us-east-1a", "us-east-1b"]
    reservations = ec2.describe_instances(InstanceIds=instances)["Reservations"]
    for i in (i for r in reservations for i in r["Instances"]):
        tags = {t["Key"]: t["Value"] for t in i["Tags"]}
        assert tags["Name"] == "app" and tags["aws:autoscaling:groupName"] == "app"
    registered = elb.describe_target_health(TargetGroupArn=out["tg"])["TargetHealthDescriptions"]
    assert sorted(t["Target"]["Id"] for t in registered) == instances

    tf.destroy()
    assert autoscaling.describe_auto_scaling_groups()["AutoScalingGroups"] == []
    states = {i["State"]["Name"] for r in ec2.describe_instances(InstanceIds=instances)["Reservations"] for i in r["Instances"]}
    assert states == {"terminated"}
    assert elb.describe_load_balancers()["LoadBalancers"] == []
    assert elb.describe_target_groups()["TargetGroups"] == []
    assert ec2.describe_launch_templates()["LaunchTemplates"] == []
    assert inventory(ec2) == before
