"""Auto Scaling: groups keep their desired count of real EC2 instances across zones, replace
what is terminated, shrink by AWS's default termination policy, register with target groups,
and follow policies, scheduled actions and lifecycle hooks."""
import time
from collections import Counter

import pytest
from support import client, expect_error


@pytest.fixture
def asg(endpoint):
    return client("autoscaling", endpoint)


@pytest.fixture
def elb(endpoint):
    return client("elbv2", endpoint)


@pytest.fixture
def image(ec2):
    return ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "architecture", "Values": ["x86_64"]}])["Images"][0]["ImageId"]


@pytest.fixture
def setup(ec2, image):
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"us-east-1{z}")["Subnet"]["SubnetId"]
        for i, z in ((1, "a"), (2, "b"))
    ]
    lt = ec2.create_launch_template(
        LaunchTemplateName="web", LaunchTemplateData={"ImageId": image, "InstanceType": "t3.micro"}
    )["LaunchTemplate"]
    return {"vpc": vpc, "subnets": subnets, "lt": lt}


def group(asg, name):
    groups = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    return groups[0] if groups else None


def wait_for(what, check, timeout: float = 30.0):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}; last saw {last!r}")


def in_service(asg, name, n):
    """Waits until exactly n instances are InService and none is on its way in or out."""
    def check():
        g = group(asg, name)
        states = [i["LifecycleState"] for i in g["Instances"]]
        return g if states.count("InService") == n and len(states) == n else None
    return wait_for(f"{n} instances in service in {name}", check)


def zones(g):
    return Counter(i["AvailabilityZone"] for i in g["Instances"])


def test_a_group_launches_balances_replaces_and_shrinks_by_the_default_policy(asg, ec2, setup):
    asg.create_auto_scaling_group(
        AutoScalingGroupName="web", MinSize=1, MaxSize=6, DesiredCapacity=3,
        LaunchTemplate={"LaunchTemplateId": setup["lt"]["LaunchTemplateId"], "Version": "$Latest"},
        VPCZoneIdentifier=",".join(setup["subnets"]),
        Tags=[{"Key": "team", "Value": "web", "PropagateAtLaunch": True},
              {"Key": "cost", "Value": "1", "PropagateAtLaunch": False}],
    )
    g = in_service(asg, "web", 3)
    assert g["AutoScalingGroupARN"].startswith("arn:aws:autoscaling:us-east-1:") and ":autoScalingGroupName/web" in g["AutoScalingGroupARN"]
    assert g["LaunchTemplate"] == {"LaunchTemplateId": setup["lt"]["LaunchTemplateId"], "LaunchTemplateName": "web", "Version": "$Latest"}
    assert g["HealthCheckType"] == "EC2" and g["HealthCheckGracePeriod"] == 300
    assert g["TerminationPolicies"] == ["Default"]
    assert sorted(g["AvailabilityZones"]) == ["us-east-1a", "us-east-1b"]
    assert sorted(zones(g).values()) == [1, 2]
    ids = [i["InstanceId"] for i in g["Instances"]]
    # Real EC2 instances, tagged as Auto Scaling tags them.
    reservations = ec2.describe_instances(InstanceIds=ids)["Reservations"]
    instances = [i for r in reservations for i in r["Instances"]]
    assert {i["State"]["Name"] for i in instances} == {"running"}
    for i in instances:
        tags = {t["Key"]: t["Value"] for t in i["Tags"]}
        assert tags["aws:autoscaling:groupName"] == "web" and tags["team"] == "web" and "cost" not in tags
        assert i["SubnetId"] in setup["subnets"]
    activities = asg.describe_scaling_activities(AutoScalingGroupName="web")["Activities"]
    launching = [a for a in activities if a["Description"].startswith("Launching a new EC2 instance: i-")]
    assert len(launching) == 3 and all(a["StatusCode"] == "Successful" for a in launching)
    assert "a user request created an AutoScalingGroup changing the desired capacity from 0 to 3" in launching[0]["Cause"]

    # An instance terminated behind the group's back is replaced, in the zone that lacks one.
    lost = ids[0]
    lost_zone = [i["AvailabilityZone"] for i in g["Instances"] if i["InstanceId"] == lost][0]
    ec2.terminate_instances(InstanceIds=[lost])
    g = wait_for("a replacement", lambda: (lambda g: g if lost not in [i["InstanceId"] for i in g["Instances"]]
                                           and [i["LifecycleState"] for i in g["Instances"]].count("InService") == 3 else None)(group(asg, "web")))
    assert sorted(zones(g).values()) == [1, 2]
    assert zones(g)[lost_zone] >= 1
    causes = [a["Cause"] for a in asg.describe_scaling_activities(AutoScalingGroupName="web")["Activities"]]
    assert any("EC2 health check indicating it has been terminated or stopped" in c for c in causes)

    # Out of bounds, refused; 5, then 2: the zone with the most loses first, so 1 and 1 stay.
    with expect_error("ValidationError", 400):
        asg.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=7)
    asg.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=5)
    g = in_service(asg, "web", 5)
    assert sorted(zones(g).values()) == [2, 3]
    asg.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=2)
    g = in_service(asg, "web", 2)
    assert sorted(zones(g).values()) == [1, 1]
    shrink = [a for a in asg.describe_scaling_activities(AutoScalingGroupName="web")["Activities"]
              if a["Description"].startswith("Terminating EC2 instance")]
    assert any("shrinking the capacity from 5 to 2" in a["Cause"] for a in shrink)

    # Terminating with decrement lowers the desired count and brings no replacement.
    victim = g["Instances"][0]["InstanceId"]
    out = asg.terminate_instance_in_auto_scaling_group(InstanceId=victim, ShouldDecrementDesiredCapacity=True)
    assert out["Activity"]["Description"] == f"Terminating EC2 instance: {victim}"
    g = in_service(asg, "web", 1)
    assert g["DesiredCapacity"] == 1
    with expect_error("ValidationError"):
        asg.terminate_instance_in_auto_scaling_group(InstanceId=g["Instances"][0]["InstanceId"], ShouldDecrementDesiredCapacity=True)

    # A group with instances is deleted only by force, which takes its instances with it.
    with expect_error("ResourceInUse"):
        asg.delete_auto_scaling_group(AutoScalingGroupName="web")
    last = g["Instances"][0]["InstanceId"]
    asg.delete_auto_scaling_group(AutoScalingGroupName="web", ForceDelete=True)
    wait_for("the group to go", lambda: group(asg, "web") is None)
    state = ec2.describe_instances(InstanceIds=[last])["Reservations"][0]["Instances"][0]["State"]["Name"]
    assert state == "terminated"


def test_groups_register_with_target_groups_and_follow_policies(asg, elb, ec2, setup):
    tg = elb.create_target_group(Name="web", Protocol="HTTP", Port=80, VpcId=setup["vpc"])["TargetGroups"][0]["TargetGroupArn"]
    with expect_error("ValidationError"):
        asg.create_auto_scaling_group(AutoScalingGroupName="bad", MinSize=3, MaxSize=2,
                                      LaunchTemplate={"LaunchTemplateName": "web"}, VPCZoneIdentifier=setup["subnets"][0])
    with expect_error("ValidationError"):
        asg.create_auto_scaling_group(AutoScalingGroupName="bad", MinSize=1, MaxSize=2, VPCZoneIdentifier=setup["subnets"][0])
    asg.create_auto_scaling_group(
        AutoScalingGroupName="app", MinSize=0, MaxSize=10, DesiredCapacity=2,
        LaunchTemplate={"LaunchTemplateName": "web"}, VPCZoneIdentifier=",".join(setup["subnets"]),
        TargetGroupARNs=[tg],
    )
    with expect_error("AlreadyExists"):
        asg.create_auto_scaling_group(AutoScalingGroupName="app", MinSize=0, MaxSize=1,
                                      LaunchTemplate={"LaunchTemplateName": "web"}, VPCZoneIdentifier=setup["subnets"][0])
    g = in_service(asg, "app", 2)
    ids = sorted(i["InstanceId"] for i in g["Instances"])
    registered = lambda: sorted(d["Target"]["Id"] for d in elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
                                if d["TargetHealth"]["State"] != "draining")
    assert wait_for("registration", lambda: registered() == ids)
    assert asg.describe_load_balancer_target_groups(AutoScalingGroupName="app")["LoadBalancerTargetGroups"] == [
        {"LoadBalancerTargetGroupARN": tg, "State": "InService"}]

    # Protected instances stay when the group shrinks.
    keep = ids[0]
    asg.set_instance_protection(AutoScalingGroupName="app", InstanceIds=[keep], ProtectedFromScaleIn=True)
    simple = asg.put_scaling_policy(AutoScalingGroupName="app", PolicyName="up", PolicyType="SimpleScaling",
                                    AdjustmentType="ChangeInCapacity", ScalingAdjustment=2)
    assert ":scalingPolicy:" in simple["PolicyARN"] and simple["PolicyARN"].endswith(":autoScalingGroupName/app:policyName/up")
    asg.execute_policy(AutoScalingGroupName="app", PolicyName="up")
    assert group(asg, "app")["DesiredCapacity"] == 4
    asg.put_scaling_policy(AutoScalingGroupName="app", PolicyName="steps", PolicyType="StepScaling",
                           AdjustmentType="ExactCapacity",
                           StepAdjustments=[{"MetricIntervalUpperBound": 10.0, "ScalingAdjustment": 1},
                                            {"MetricIntervalLowerBound": 10.0, "ScalingAdjustment": 3}])
    asg.execute_policy(AutoScalingGroupName="app", PolicyName="steps", MetricValue=55.0, BreachThreshold=50.0)
    assert group(asg, "app")["DesiredCapacity"] == 1
    g = in_service(asg, "app", 1)
    assert [i["InstanceId"] for i in g["Instances"]] == [keep]
    assert g["Instances"][0]["ProtectedFromScaleIn"] is True
    # Those that left were deregistered and drain.
    states = {d["Target"]["Id"]: d["TargetHealth"]["State"] for d in elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]}
    assert states[ids[1]] == "draining"
    policies = {p["PolicyName"]: p for p in asg.describe_policies(AutoScalingGroupName="app")["ScalingPolicies"]}
    assert set(policies) == {"up", "steps"} and policies["up"]["ScalingAdjustment"] == 2


def test_lifecycle_hooks_hold_instances_until_answered(asg, ec2, setup):
    asg.create_auto_scaling_group(
        AutoScalingGroupName="hooked", MinSize=0, MaxSize=2, DesiredCapacity=0,
        LaunchTemplate={"LaunchTemplateName": "web"}, VPCZoneIdentifier=setup["subnets"][0],
    )
    asg.put_lifecycle_hook(AutoScalingGroupName="hooked", LifecycleHookName="warm",
                           LifecycleTransition="autoscaling:EC2_INSTANCE_LAUNCHING", HeartbeatTimeout=300)
    hooks = asg.describe_lifecycle_hooks(AutoScalingGroupName="hooked")["LifecycleHooks"]
    assert hooks[0]["DefaultResult"] == "ABANDON" and hooks[0]["HeartbeatTimeout"] == 300
    asg.set_desired_capacity(AutoScalingGroupName="hooked", DesiredCapacity=1)
    waiting = wait_for("Pending:Wait", lambda: [i for i in group(asg, "hooked")["Instances"] if i["LifecycleState"] == "Pending:Wait"])
    time.sleep(1.5)
    assert group(asg, "hooked")["Instances"][0]["LifecycleState"] == "Pending:Wait"
    asg.complete_lifecycle_action(AutoScalingGroupName="hooked", LifecycleHookName="warm",
                                  InstanceId=waiting[0]["InstanceId"], LifecycleActionResult="CONTINUE")
    in_service(asg, "hooked", 1)
    with expect_error("ValidationError"):
        asg.complete_lifecycle_action(AutoScalingGroupName="hooked", LifecycleHookName="warm",
                                      InstanceId=waiting[0]["InstanceId"], LifecycleActionResult="CONTINUE")


def test_scheduled_actions_and_launch_configurations(asg, ec2, setup, image):
    asg.create_launch_configuration(LaunchConfigurationName="old", ImageId=image, InstanceType="t3.nano")
    with expect_error("AlreadyExists"):
        asg.create_launch_configuration(LaunchConfigurationName="old", ImageId=image, InstanceType="t3.nano")
    asg.create_auto_scaling_group(
        AutoScalingGroupName="batch", MinSize=0, MaxSize=3, DesiredCapacity=0,
        LaunchConfigurationName="old", VPCZoneIdentifier=setup["subnets"][1],
    )
    with expect_error("ResourceInUse"):
        asg.delete_launch_configuration(LaunchConfigurationName="old")
    soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 2))
    asg.put_scheduled_update_group_action(AutoScalingGroupName="batch", ScheduledActionName="morning",
                                          StartTime=soon, DesiredCapacity=2)
    assert [s["ScheduledActionName"] for s in asg.describe_scheduled_actions(AutoScalingGroupName="batch")["ScheduledUpdateGroupActions"]] == ["morning"]
    g = in_service(asg, "batch", 2)
    assert g["LaunchConfigurationName"] == "old"
    types = {i["InstanceType"] for i in g["Instances"]}
    assert types == {"t3.nano"}
    details = asg.describe_auto_scaling_instances(InstanceIds=[g["Instances"][0]["InstanceId"]])["AutoScalingInstances"][0]
    assert details["AutoScalingGroupName"] == "batch" and details["HealthStatus"] == "HEALTHY"
    # One-time actions are gone once run.
    assert asg.describe_scheduled_actions(AutoScalingGroupName="batch")["ScheduledUpdateGroupActions"] == []
    asg.update_auto_scaling_group(AutoScalingGroupName="batch", MinSize=0, MaxSize=0)
    g = wait_for("empty", lambda: (lambda g: g if not g["Instances"] else None)(group(asg, "batch")))
    assert g["DesiredCapacity"] == 0
    asg.delete_auto_scaling_group(AutoScalingGroupName="batch")
    asg.delete_launch_configuration(LaunchConfigurationName="old")
    assert asg.describe_launch_configurations()["LaunchConfigurations"] == []


def test_elb_health_checks_replace_an_instance_after_the_grace_period(asg, elb, ec2, setup):
    """Without a data plane nothing answers at an instance's address, so its load balancer's
    health checks fail: a group that trusts ELB health replaces it."""
    tg = elb.create_target_group(Name="web", Protocol="HTTP", Port=80, VpcId=setup["vpc"],
                                 HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
                                 UnhealthyThresholdCount=2)["TargetGroups"][0]["TargetGroupArn"]
    lb = elb.create_load_balancer(Name="web", Subnets=setup["subnets"])["LoadBalancers"][0]["LoadBalancerArn"]
    from support import free_port
    elb.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=free_port(),
                        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
    asg.create_auto_scaling_group(
        AutoScalingGroupName="trusting", MinSize=1, MaxSize=1, DesiredCapacity=1,
        LaunchTemplate={"LaunchTemplateName": "web"}, VPCZoneIdentifier=setup["subnets"][0],
        TargetGroupARNs=[tg], HealthCheckType="ELB", HealthCheckGracePeriod=0,
    )
    first = in_service(asg, "trusting", 1)["Instances"][0]["InstanceId"]
    wait_for("a replacement", lambda: first not in [i["InstanceId"] for i in group(asg, "trusting")["Instances"]], timeout=40)
    causes = [a["Cause"] for a in asg.describe_scaling_activities(AutoScalingGroupName="trusting")["Activities"]]
    assert any("ELB system health check failure" in c for c in causes), causes
    state = lambda: ec2.describe_instances(InstanceIds=[first])["Reservations"][0]["Instances"][0]["State"]["Name"]  # noqa: E731
    assert wait_for("the old one terminated", lambda: state() == "terminated")
