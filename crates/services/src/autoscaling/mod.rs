//! Amazon EC2 Auto Scaling: groups that keep a desired count of instances from a launch
//! template or configuration, across the zones of their subnets; policies, scheduled
//! actions, lifecycle hooks, and the activities that say what happened.
//!
//! The calls only record what is wanted (a group's capacity, a hook's answer); the
//! instances are launched, replaced and terminated by `reconcile::round`, kumori's
//! background work under the store's `autoscaling` lease, through EC2's own RunInstances
//! and TerminateInstances (`ec2::api`), as Auto Scaling does it asynchronously in AWS.
//!
//! A group's instances are kept in its own document, so that one lock covers the group
//! and its members: a call and the reconciler never disagree on who is in it.

pub mod groups;
pub mod launch_configs;
pub mod policies;
pub mod reconcile;

use crate::resource::{self, Resource};
use crate::{Ctx, Error, Result, input};
use kumori_store::Tx;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub static SERVICE: crate::kit::Service = crate::kit::Service {
    name: "autoscaling",
    tables: &[
        groups::OPERATIONS,
        launch_configs::OPERATIONS,
        policies::OPERATIONS,
        OPERATIONS,
    ],
    before: None,
    region: None,
    resources: None,
};

pub const OPERATIONS: &[crate::kit::Op] = crate::operations![
    "DescribeScalingActivities" => describe_scaling_activities,
    "DescribeAccountLimits" => describe_account_limits,
    "DescribeAdjustmentTypes" => describe_adjustment_types,
    "DescribeScalingProcessTypes" => describe_scaling_process_types,
    "DescribeTerminationPolicyTypes" => describe_termination_policy_types,
    "DescribeLifecycleHookTypes" => describe_lifecycle_hook_types,
    "DescribeAutoScalingNotificationTypes" => describe_notification_types,
    "DescribeNotificationConfigurations" => describe_notification_configurations,
];

pub(crate) const GROUP: &str = "asg-group";
pub(crate) const ACTIVITY: &str = "asg-activity";

/// The processes a group can suspend.
pub const PROCESSES: &[&str] = &[
    "Launch",
    "Terminate",
    "AddToLoadBalancer",
    "AlarmNotification",
    "AZRebalance",
    "HealthCheck",
    "InstanceRefresh",
    "ReplaceUnhealthy",
    "ScheduledActions",
];

pub(crate) fn validation(message: impl Into<String>) -> Error {
    Error::new("ValidationError", message)
}

pub(crate) fn no_group(name: &str) -> Error {
    validation(format!(
        "AutoScalingGroup name not found - AutoScalingGroup '{name}' not found"
    ))
}

pub(crate) fn arn(ctx: &Ctx<'_>, resource: &str) -> String {
    crate::resource::arn("autoscaling", ctx.region, ctx.account, resource)
}

pub(crate) fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct TemplateSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_template_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_template_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// One instance of a group.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Member {
    pub instance_id: String,
    pub instance_type: String,
    pub availability_zone: String,
    pub lifecycle_state: String,
    pub health_status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_template: Option<TemplateSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_configuration_name: Option<String>,
    pub protected_from_scale_in: bool,
    /// When it joined (unix seconds): the health-check grace period runs from here.
    pub kumori_since: u64,
    /// A lifecycle hook's wait: its token and when it times out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kumori_hook: Option<HookWait>,
    /// Why it is leaving, for the activity that terminates it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kumori_cause: Option<String>,
    /// Its leaving was recorded as an activity already (by the call that asked for it).
    #[serde(default)]
    pub kumori_recorded: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct HookWait {
    pub hook: String,
    pub token: String,
    pub deadline: u64,
    pub heartbeat_timeout: u64,
    pub default_result: String,
    /// `CONTINUE` or `ABANDON` once answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct GroupTag {
    pub resource_id: String,
    pub resource_type: String,
    pub key: String,
    #[serde(default)]
    pub value: String,
    pub propagate_at_launch: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Suspended {
    pub process_name: String,
    pub suspension_reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Group {
    pub auto_scaling_group_name: String,
    #[serde(rename = "AutoScalingGroupARN")]
    pub auto_scaling_group_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_configuration_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_template: Option<TemplateSpec>,
    pub min_size: i64,
    pub max_size: i64,
    pub desired_capacity: i64,
    pub default_cooldown: i64,
    pub availability_zones: Vec<String>,
    #[serde(default)]
    pub load_balancer_names: Vec<String>,
    #[serde(rename = "TargetGroupARNs", default)]
    pub target_group_arns: Vec<String>,
    pub health_check_type: String,
    pub health_check_grace_period: i64,
    #[serde(default)]
    pub instances: Vec<Member>,
    pub created_time: String,
    #[serde(default)]
    pub suspended_processes: Vec<Suspended>,
    #[serde(rename = "VPCZoneIdentifier", default)]
    pub vpc_zone_identifier: String,
    #[serde(default)]
    pub enabled_metrics: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default)]
    pub tags: Vec<GroupTag>,
    pub termination_policies: Vec<String>,
    pub new_instances_protected_from_scale_in: bool,
    #[serde(rename = "ServiceLinkedRoleARN")]
    pub service_linked_role_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_instance_lifetime: Option<i64>,
    #[serde(default)]
    pub capacity_rebalance: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_instance_warmup: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement_group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_capacity_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// The subnets of `VPCZoneIdentifier` with their zones, in order.
    #[serde(default)]
    pub kumori_subnets: Vec<(String, String)>,
    /// Why the capacity last changed, the start of the next activities' cause.
    #[serde(default)]
    pub kumori_cause: String,
    /// No launch before this (unix seconds): a failed launch backs off.
    #[serde(default)]
    pub kumori_retry_at: u64,
    /// Capacity before the last change, for the activities' wording.
    #[serde(default)]
    pub kumori_capacity_before: i64,
    /// The store's id ([`group_key`]): names are unique per kind, not across kinds.
    pub kumori_key: String,
}

impl Resource for Group {
    const KIND: &'static str = GROUP;
    fn id(&self) -> &str {
        &self.kumori_key
    }
}

/// The store's id of group `name`.
pub fn group_key(name: &str) -> String {
    format!("asg-group/{name}")
}

impl Group {
    pub fn suspended(&self, process: &str) -> bool {
        self.suspended_processes
            .iter()
            .any(|p| p.process_name == process)
    }
    /// Members that count toward capacity (not leaving).
    pub fn counted(&self) -> impl Iterator<Item = &Member> {
        self.instances.iter().filter(|m| {
            !m.lifecycle_state.starts_with("Terminating") && m.lifecycle_state != "Standby"
        })
    }
    /// Records a change of desired capacity made by `who` (a user request, a policy).
    pub fn set_desired(&mut self, desired: i64, why: String) {
        if desired != self.desired_capacity {
            self.kumori_capacity_before = self.desired_capacity;
            self.kumori_cause = format!(
                "At {} {why} changing the desired capacity from {} to {desired}.",
                kumori_protocol::time::now_iso(),
                self.desired_capacity
            );
            self.desired_capacity = desired;
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Activity {
    pub activity_id: String,
    pub auto_scaling_group_name: String,
    #[serde(rename = "AutoScalingGroupARN")]
    pub auto_scaling_group_arn: String,
    pub description: String,
    pub cause: String,
    pub start_time: String,
    pub end_time: String,
    pub status_code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    pub progress: i64,
    pub details: String,
    /// Orders a group's activities (unix milliseconds).
    pub kumori_at: u64,
    pub kumori_group_key: String,
}

impl Resource for Activity {
    const KIND: &'static str = ACTIVITY;
    fn id(&self) -> &str {
        &self.activity_id
    }
    fn parent(&self) -> Option<&str> {
        Some(&self.kumori_group_key)
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Records an activity of `g`, finished now.
pub(crate) async fn record(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    g: &Group,
    description: String,
    cause: String,
    failed: Option<String>,
) -> Result<Activity> {
    let now = kumori_protocol::time::now_iso();
    let details = json!({
        "Subnet ID": g.kumori_subnets.first().map(|s| s.0.clone()).unwrap_or_default(),
        "Availability Zone": g.availability_zones.first().cloned().unwrap_or_default(),
    });
    let a = Activity {
        activity_id: uuid(),
        auto_scaling_group_name: g.auto_scaling_group_name.clone(),
        auto_scaling_group_arn: g.auto_scaling_group_arn.clone(),
        description,
        cause,
        start_time: now.clone(),
        end_time: now,
        status_code: if failed.is_some() {
            "Failed"
        } else {
            "Successful"
        }
        .into(),
        status_message: failed,
        progress: 100,
        details: details.to_string(),
        kumori_at: now_ms(),
        kumori_group_key: g.kumori_key.clone(),
    };
    resource::insert(ctx, tx, &a).await?;
    Ok(a)
}

/// One page of a describe as Auto Scaling pages them (`MaxRecords` up to `most`, default
/// `default`; `NextToken`), the items in the order of their keys.
pub(crate) fn page<T: Serialize>(
    mut items: Vec<(String, T)>,
    member: &str,
    token: Option<&str>,
    max_records: Option<i64>,
    most: i64,
    default: usize,
) -> Value {
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let max = max_records
        .map(|m| m.clamp(1, most) as usize)
        .or(Some(default));
    let (shown, next) = crate::kit::page(items, |(k, _)| k.clone(), token, max);
    let shown: Vec<Value> = shown
        .into_iter()
        .map(|(_, v)| serde_json::to_value(v).unwrap_or_default())
        .collect();
    let mut out = json!({ member: shown });
    if let Some(n) = next {
        out["NextToken"] = json!(n);
    }
    out
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ActivitiesRequest {
    #[serde(default)]
    activity_ids: Vec<String>,
    auto_scaling_group_name: Option<String>,
    max_records: Option<i64>,
    next_token: Option<String>,
}

pub async fn describe_scaling_activities(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ActivitiesRequest = input(raw)?;
    let mut tx = ctx.store.read().await?;
    let mut all: Vec<Activity> = match &req.auto_scaling_group_name {
        Some(g) => resource::children(ctx, &mut tx, &group_key(g)).await?,
        None => resource::list(ctx, &mut tx).await?,
    };
    if !req.activity_ids.is_empty() {
        all.retain(|a| req.activity_ids.contains(&a.activity_id));
    }
    // Newest first, as AWS lists them.
    let items: Vec<(String, Activity)> = all
        .into_iter()
        .map(|a| {
            (
                format!("{:020}-{}", u64::MAX - a.kumori_at, a.activity_id),
                a,
            )
        })
        .collect();
    Ok(page(
        items,
        "Activities",
        req.next_token.as_deref(),
        req.max_records,
        100,
        100,
    ))
}

pub async fn describe_account_limits(ctx: &Ctx<'_>, _raw: &Value) -> Result<Value> {
    let mut tx = ctx.store.read().await?;
    let groups = tx.count(ctx.scope(), GROUP).await?;
    let configs = tx.count(ctx.scope(), launch_configs::CONFIG).await?;
    Ok(json!({
        "MaxNumberOfAutoScalingGroups": 500,
        "MaxNumberOfLaunchConfigurations": 200,
        "NumberOfAutoScalingGroups": groups,
        "NumberOfLaunchConfigurations": configs,
    }))
}

pub async fn describe_adjustment_types(_ctx: &Ctx<'_>, _raw: &Value) -> Result<Value> {
    Ok(json!({ "AdjustmentTypes": [
        { "AdjustmentType": "ChangeInCapacity" },
        { "AdjustmentType": "ExactCapacity" },
        { "AdjustmentType": "PercentChangeInCapacity" },
    ]}))
}

pub async fn describe_scaling_process_types(_ctx: &Ctx<'_>, _raw: &Value) -> Result<Value> {
    let p: Vec<Value> = PROCESSES
        .iter()
        .map(|p| json!({ "ProcessName": p }))
        .collect();
    Ok(json!({ "Processes": p }))
}

pub async fn describe_termination_policy_types(_ctx: &Ctx<'_>, _raw: &Value) -> Result<Value> {
    Ok(json!({ "TerminationPolicyTypes": [
        "AllocationStrategy", "ClosestToNextInstanceHour", "Default", "NewestInstance",
        "OldestInstance", "OldestLaunchConfiguration", "OldestLaunchTemplate",
    ]}))
}

pub async fn describe_lifecycle_hook_types(_ctx: &Ctx<'_>, _raw: &Value) -> Result<Value> {
    Ok(json!({ "LifecycleHookTypes": [
        "autoscaling:EC2_INSTANCE_LAUNCHING", "autoscaling:EC2_INSTANCE_TERMINATING",
    ]}))
}

pub async fn describe_notification_types(_ctx: &Ctx<'_>, _raw: &Value) -> Result<Value> {
    Ok(json!({ "AutoScalingNotificationTypes": [
        "autoscaling:EC2_INSTANCE_LAUNCH", "autoscaling:EC2_INSTANCE_LAUNCH_ERROR",
        "autoscaling:EC2_INSTANCE_TERMINATE", "autoscaling:EC2_INSTANCE_TERMINATE_ERROR",
        "autoscaling:TEST_NOTIFICATION",
    ]}))
}

/// No notifications are kept (SNS is not served): none are configured.
pub async fn describe_notification_configurations(_ctx: &Ctx<'_>, _raw: &Value) -> Result<Value> {
    Ok(json!({ "NotificationConfigurations": [] }))
}
