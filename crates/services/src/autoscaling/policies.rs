//! What changes a group's capacity besides a user: scaling policies (simple and step ones
//! carried out by ExecutePolicy, target tracking kept), scheduled actions (one-time ones
//! carried out by the reconciler), and lifecycle hooks that hold instances in a wait state.

use super::groups::locked;
use super::{Group, arn, group_key, no_group, record, uuid, validation};
use crate::resource::{self, Resource};
use crate::{Ctx, Error, Result, input};
use kumori_store::Tx;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub(crate) const POLICY: &str = "asg-policy";
pub(crate) const HOOK: &str = "asg-lifecycle-hook";
pub(crate) const SCHEDULED: &str = "asg-scheduled-action";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Policy {
    pub auto_scaling_group_name: String,
    pub policy_name: String,
    #[serde(rename = "PolicyARN")]
    pub policy_arn: String,
    pub policy_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adjustment_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_adjustment_magnitude: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling_adjustment: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub step_adjustments: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_aggregation_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_instance_warmup: Option<i64>,
    #[serde(default)]
    pub alarms: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_tracking_configuration: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predictive_scaling_configuration: Option<Value>,
    pub enabled: bool,
    pub kumori_key: String,
    pub kumori_group_key: String,
}

impl Resource for Policy {
    const KIND: &'static str = POLICY;
    fn id(&self) -> &str {
        &self.kumori_key
    }
    fn parent(&self) -> Option<&str> {
        Some(&self.kumori_group_key)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Hook {
    pub lifecycle_hook_name: String,
    pub auto_scaling_group_name: String,
    pub lifecycle_transition: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(rename = "NotificationTargetARN")]
    pub notification_target_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(rename = "RoleARN")]
    pub role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_metadata: Option<String>,
    pub heartbeat_timeout: i64,
    pub global_timeout: i64,
    pub default_result: String,
    pub kumori_key: String,
    pub kumori_group_key: String,
}

impl Resource for Hook {
    const KIND: &'static str = HOOK;
    fn id(&self) -> &str {
        &self.kumori_key
    }
    fn parent(&self) -> Option<&str> {
        Some(&self.kumori_group_key)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Scheduled {
    pub auto_scaling_group_name: String,
    pub scheduled_action_name: String,
    #[serde(rename = "ScheduledActionARN")]
    pub scheduled_action_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurrence: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_size: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_capacity: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    pub kumori_key: String,
    pub kumori_group_key: String,
}

impl Resource for Scheduled {
    const KIND: &'static str = SCHEDULED;
    fn id(&self) -> &str {
        &self.kumori_key
    }
    fn parent(&self) -> Option<&str> {
        Some(&self.kumori_group_key)
    }
}

pub const OPERATIONS: &[crate::kit::Op] = crate::operations![
    "PutScalingPolicy" => put_scaling_policy,
    "DescribePolicies" => describe_policies,
    "DeletePolicy" => delete_policy,
    "ExecutePolicy" => execute_policy,
    "PutLifecycleHook" => put_lifecycle_hook,
    "DescribeLifecycleHooks" => describe_lifecycle_hooks,
    "DeleteLifecycleHook" => delete_lifecycle_hook,
    "CompleteLifecycleAction" => complete_lifecycle_action,
    "RecordLifecycleActionHeartbeat" => record_lifecycle_action_heartbeat,
    "PutScheduledUpdateGroupAction" => put_scheduled_update_group_action,
    "DescribeScheduledActions" => describe_scheduled_actions,
    "DeleteScheduledAction" => delete_scheduled_action,
];

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Request {
    auto_scaling_group_name: Option<String>,
    policy_name: Option<String>,
    policy_type: Option<String>,
    adjustment_type: Option<String>,
    min_adjustment_magnitude: Option<i64>,
    scaling_adjustment: Option<i64>,
    cooldown: Option<i64>,
    metric_aggregation_type: Option<String>,
    #[serde(default)]
    step_adjustments: Vec<Value>,
    estimated_instance_warmup: Option<i64>,
    target_tracking_configuration: Option<Value>,
    predictive_scaling_configuration: Option<Value>,
    enabled: Option<bool>,
    #[serde(default)]
    policy_names: Vec<String>,
    #[serde(default)]
    policy_types: Vec<String>,
    metric_value: Option<f64>,
    breach_threshold: Option<f64>,
    lifecycle_hook_name: Option<String>,
    #[serde(default)]
    lifecycle_hook_names: Vec<String>,
    lifecycle_action_token: Option<String>,
    lifecycle_action_result: Option<String>,
    instance_id: Option<String>,
    scheduled_action_name: Option<String>,
    #[serde(default)]
    scheduled_action_names: Vec<String>,
    time: Option<String>,
    start_time: Option<String>,
    end_time: Option<String>,
    recurrence: Option<String>,
    min_size: Option<i64>,
    max_size: Option<i64>,
    desired_capacity: Option<i64>,
    time_zone: Option<String>,
}

fn group_name(req: &Request) -> Result<String> {
    req.auto_scaling_group_name.clone().ok_or_else(|| {
        Error::new(
            "MissingParameter",
            "The request must contain the parameter AutoScalingGroupName",
        )
    })
}

fn policy_key(group: &str, name: &str) -> String {
    format!("asg-policy/{group}/{name}")
}

pub async fn put_scaling_policy(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: Request = input(raw)?;
    let group = group_name(&req)?;
    let name = req.policy_name.clone().unwrap_or_default();
    let policy_type = req
        .policy_type
        .clone()
        .unwrap_or_else(|| "SimpleScaling".into());
    match policy_type.as_str() {
        "SimpleScaling" => {
            if req.scaling_adjustment.is_none() {
                return Err(validation(
                    "ScalingAdjustment is required for a SimpleScaling policy",
                ));
            }
        }
        "StepScaling" => {
            if req.step_adjustments.is_empty() {
                return Err(validation(
                    "StepAdjustments are required for a StepScaling policy",
                ));
            }
        }
        "TargetTrackingScaling" => {
            if req.target_tracking_configuration.is_none() {
                return Err(validation(
                    "TargetTrackingConfiguration is required for a TargetTrackingScaling policy",
                ));
            }
        }
        "PredictiveScaling" => {}
        other => return Err(validation(format!("Policy type '{other}' is not valid"))),
    }
    if matches!(policy_type.as_str(), "SimpleScaling" | "StepScaling") {
        let t = req.adjustment_type.as_deref().unwrap_or_default();
        if !matches!(
            t,
            "ChangeInCapacity" | "ExactCapacity" | "PercentChangeInCapacity"
        ) {
            return Err(validation(format!("Adjustment type '{t}' is not valid")));
        }
    }
    let mut tx = ctx.store.write().await?;
    let g = locked(ctx, &mut tx, &group).await?;
    let key = policy_key(&group, &name);
    let existing: Option<Policy> = resource::lock(ctx, &mut tx, &key).await?;
    let policy = Policy {
        auto_scaling_group_name: group.clone(),
        policy_arn: existing
            .as_ref()
            .map(|p| p.policy_arn.clone())
            .unwrap_or_else(|| {
                arn(
                    ctx,
                    &format!(
                        "scalingPolicy:{}:autoScalingGroupName/{group}:policyName/{name}",
                        uuid()
                    ),
                )
            }),
        policy_name: name,
        policy_type,
        adjustment_type: req.adjustment_type,
        min_adjustment_magnitude: req.min_adjustment_magnitude,
        scaling_adjustment: req.scaling_adjustment,
        cooldown: req.cooldown,
        step_adjustments: req.step_adjustments,
        metric_aggregation_type: req.metric_aggregation_type,
        estimated_instance_warmup: req.estimated_instance_warmup,
        alarms: vec![],
        target_tracking_configuration: req.target_tracking_configuration,
        predictive_scaling_configuration: req.predictive_scaling_configuration,
        enabled: req.enabled.unwrap_or(true),
        kumori_key: key,
        kumori_group_key: g.kumori_key.clone(),
    };
    if existing.is_some() {
        resource::update(ctx, &mut tx, &policy).await?;
    } else {
        resource::insert(ctx, &mut tx, &policy).await?;
    }
    tx.commit().await?;
    Ok(json!({ "PolicyARN": policy.policy_arn, "Alarms": [] }))
}

pub async fn describe_policies(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: Request = input(raw)?;
    let mut tx = ctx.store.read().await?;
    let all: Vec<Policy> = match &req.auto_scaling_group_name {
        Some(g) => resource::children(ctx, &mut tx, &group_key(g)).await?,
        None => resource::list(ctx, &mut tx).await?,
    };
    let shown: Vec<Policy> = all
        .into_iter()
        .filter(|p| {
            req.policy_names.is_empty()
                || req.policy_names.contains(&p.policy_name)
                || req.policy_names.contains(&p.policy_arn)
        })
        .filter(|p| req.policy_types.is_empty() || req.policy_types.contains(&p.policy_type))
        .collect();
    Ok(json!({ "ScalingPolicies": shown }))
}

/// The policy a call names by name (in its group) or by ARN.
async fn find_policy(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    group: Option<&str>,
    name: &str,
) -> Result<Policy> {
    let found = if name.starts_with("arn:") {
        resource::list::<Policy>(ctx, tx)
            .await?
            .into_iter()
            .find(|p| p.policy_arn == name)
    } else {
        match group {
            Some(g) => resource::get(ctx, tx, &policy_key(g, name)).await?,
            None => None,
        }
    };
    found.ok_or_else(|| validation(format!("Policy not found - Policy {name} not found")))
}

pub async fn delete_policy(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: Request = input(raw)?;
    let name = req.policy_name.clone().unwrap_or_default();
    let mut tx = ctx.store.write().await?;
    let p = find_policy(ctx, &mut tx, req.auto_scaling_group_name.as_deref(), &name).await?;
    tx.delete(ctx.scope(), &p.kumori_key).await?;
    tx.commit().await?;
    Ok(json!({}))
}

/// The new desired capacity an adjustment gives, within the group's bounds.
fn adjusted(g: &Group, kind: &str, adjustment: i64, min_magnitude: Option<i64>) -> i64 {
    let current = g.desired_capacity;
    let target = match kind {
        "ExactCapacity" => adjustment,
        "PercentChangeInCapacity" => {
            let mut change = (current as f64 * adjustment as f64 / 100.0).trunc() as i64;
            if change == 0 && adjustment != 0 {
                change = adjustment.signum();
            }
            if let Some(m) = min_magnitude
                && change.abs() < m
            {
                change = m * change.signum();
            }
            current + change
        }
        _ => current + adjustment,
    };
    target.clamp(g.min_size, g.max_size)
}

/// The step whose bounds hold `metric - threshold`.
fn step_for(steps: &[Value], difference: f64) -> Option<i64> {
    steps.iter().find_map(|s| {
        let lower = s["MetricIntervalLowerBound"].as_f64();
        let upper = s["MetricIntervalUpperBound"].as_f64();
        let above = lower.is_none_or(|l| difference >= l);
        let below = upper.is_none_or(|u| difference < u);
        (above && below)
            .then(|| s["ScalingAdjustment"].as_i64())
            .flatten()
    })
}

pub async fn execute_policy(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: Request = input(raw)?;
    let name = req.policy_name.clone().unwrap_or_default();
    let mut tx = ctx.store.write().await?;
    let p = find_policy(ctx, &mut tx, req.auto_scaling_group_name.as_deref(), &name).await?;
    let mut g = locked(ctx, &mut tx, &p.auto_scaling_group_name).await?;
    let adjustment = match p.policy_type.as_str() {
        "SimpleScaling" => p.scaling_adjustment.unwrap_or_default(),
        "StepScaling" => {
            let (Some(metric), Some(threshold)) = (req.metric_value, req.breach_threshold) else {
                return Err(validation(
                    "MetricValue and BreachThreshold are required to execute a StepScaling policy",
                ));
            };
            step_for(&p.step_adjustments, metric - threshold).ok_or_else(|| {
                validation(format!(
                    "No step adjustment of policy {} covers the difference {}",
                    p.policy_name,
                    metric - threshold
                ))
            })?
        }
        other => {
            return Err(validation(format!(
                "ExecutePolicy is only supported for SimpleScaling and StepScaling policies, not {other}"
            )));
        }
    };
    let desired = adjusted(
        &g,
        p.adjustment_type.as_deref().unwrap_or("ChangeInCapacity"),
        adjustment,
        p.min_adjustment_magnitude,
    );
    g.set_desired(desired, format!("policy {} was executed", p.policy_name));
    resource::update(ctx, &mut tx, &g).await?;
    tx.commit().await?;
    Ok(json!({}))
}

fn hook_key(group: &str, name: &str) -> String {
    format!("asg-lifecycle-hook/{group}/{name}")
}

/// Puts a lifecycle hook from its fields (`PutLifecycleHook`'s, or one of
/// CreateAutoScalingGroup's `LifecycleHookSpecificationList`).
pub(crate) async fn put_hook(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    group: &str,
    spec: &Value,
) -> Result<Hook> {
    let g: Group = resource::get(ctx, tx, &group_key(group))
        .await?
        .ok_or_else(|| no_group(group))?;
    let name = spec["LifecycleHookName"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let key = hook_key(group, &name);
    let existing: Option<Hook> = resource::lock(ctx, tx, &key).await?;
    let transition = spec["LifecycleTransition"]
        .as_str()
        .map(str::to_string)
        .or(existing.as_ref().map(|h| h.lifecycle_transition.clone()))
        .ok_or_else(|| validation("LifecycleTransition is required for a new lifecycle hook"))?;
    if !matches!(
        transition.as_str(),
        "autoscaling:EC2_INSTANCE_LAUNCHING" | "autoscaling:EC2_INSTANCE_TERMINATING"
    ) {
        return Err(validation(format!(
            "Lifecycle transition '{transition}' is not valid"
        )));
    }
    let heartbeat = spec["HeartbeatTimeout"]
        .as_i64()
        .or(existing.as_ref().map(|h| h.heartbeat_timeout))
        .unwrap_or(3600);
    if !(30..=7200).contains(&heartbeat) {
        return Err(validation(
            "HeartbeatTimeout must be between 30 and 7200 seconds",
        ));
    }
    let default_result = spec["DefaultResult"]
        .as_str()
        .map(str::to_string)
        .or(existing.as_ref().map(|h| h.default_result.clone()))
        .unwrap_or_else(|| "ABANDON".into());
    let hook = Hook {
        lifecycle_hook_name: name,
        auto_scaling_group_name: group.to_string(),
        lifecycle_transition: transition,
        notification_target_arn: spec["NotificationTargetARN"].as_str().map(str::to_string),
        role_arn: spec["RoleARN"].as_str().map(str::to_string),
        notification_metadata: spec["NotificationMetadata"].as_str().map(str::to_string),
        heartbeat_timeout: heartbeat,
        global_timeout: (heartbeat * 100).min(172800),
        default_result,
        kumori_key: key,
        kumori_group_key: g.kumori_key.clone(),
    };
    if existing.is_some() {
        resource::update(ctx, tx, &hook).await?;
    } else {
        resource::insert(ctx, tx, &hook).await?;
    }
    Ok(hook)
}

pub async fn put_lifecycle_hook(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: Request = input(raw)?;
    let group = group_name(&req)?;
    let mut tx = ctx.store.write().await?;
    locked(ctx, &mut tx, &group).await?;
    put_hook(ctx, &mut tx, &group, raw).await?;
    tx.commit().await?;
    Ok(json!({}))
}

pub async fn describe_lifecycle_hooks(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: Request = input(raw)?;
    let group = group_name(&req)?;
    let mut tx = ctx.store.read().await?;
    if resource::get::<Group>(ctx, &mut tx, &group_key(&group))
        .await?
        .is_none()
    {
        return Err(no_group(&group));
    }
    let hooks: Vec<Hook> = resource::children(ctx, &mut tx, &group_key(&group)).await?;
    let shown: Vec<Hook> = hooks
        .into_iter()
        .filter(|h| {
            req.lifecycle_hook_names.is_empty()
                || req.lifecycle_hook_names.contains(&h.lifecycle_hook_name)
        })
        .collect();
    Ok(json!({ "LifecycleHooks": shown }))
}

pub async fn delete_lifecycle_hook(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: Request = input(raw)?;
    let group = group_name(&req)?;
    let name = req.lifecycle_hook_name.clone().unwrap_or_default();
    let mut tx = ctx.store.write().await?;
    if !tx.delete(ctx.scope(), &hook_key(&group, &name)).await? {
        return Err(validation(format!(
            "No Lifecycle Hook found for name: {name} and group: {group}"
        )));
    }
    tx.commit().await?;
    Ok(json!({}))
}

/// The instance of `group` waiting on hook `hook`, named by id or by the action's token.
async fn answer_hook(
    ctx: &Ctx<'_>,
    raw: &Value,
    change: impl Fn(&mut super::HookWait, &Request),
) -> Result<Value> {
    let req: Request = input(raw)?;
    let group = group_name(&req)?;
    let hook = req.lifecycle_hook_name.clone().unwrap_or_default();
    let mut tx = ctx.store.write().await?;
    let mut g = locked(ctx, &mut tx, &group).await?;
    let waiting = g.instances.iter_mut().find(|m| {
        m.kumori_hook.as_ref().is_some_and(|w| {
            w.hook == hook
                && (req.instance_id.as_deref() == Some(m.instance_id.as_str())
                    || req.lifecycle_action_token.as_deref() == Some(w.token.as_str()))
        })
    });
    let Some(m) = waiting else {
        return Err(validation(format!(
            "No active Lifecycle Action found with instance ID {}",
            req.instance_id.clone().unwrap_or_default()
        )));
    };
    if let Some(w) = m.kumori_hook.as_mut() {
        change(w, &req);
    }
    resource::update(ctx, &mut tx, &g).await?;
    tx.commit().await?;
    Ok(json!({}))
}

pub async fn complete_lifecycle_action(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: Request = input(raw)?;
    let result = req.lifecycle_action_result.clone().unwrap_or_default();
    if !matches!(result.as_str(), "CONTINUE" | "ABANDON") {
        return Err(validation(format!(
            "LifecycleActionResult must be CONTINUE or ABANDON, not '{result}'"
        )));
    }
    answer_hook(ctx, raw, |w, r| {
        w.result = r.lifecycle_action_result.clone();
    })
    .await
}

pub async fn record_lifecycle_action_heartbeat(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let now = kumori_protocol::time::now_unix();
    answer_hook(ctx, raw, |w, _| {
        w.deadline = now + w.heartbeat_timeout;
    })
    .await
}

fn scheduled_key(group: &str, name: &str) -> String {
    format!("asg-scheduled-action/{group}/{name}")
}

pub async fn put_scheduled_update_group_action(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: Request = input(raw)?;
    let group = group_name(&req)?;
    let name = req.scheduled_action_name.clone().unwrap_or_default();
    if req.min_size.is_none() && req.max_size.is_none() && req.desired_capacity.is_none() {
        return Err(validation(
            "At least one of MinSize, MaxSize or DesiredCapacity must be specified",
        ));
    }
    let start = req.start_time.clone().or(req.time.clone());
    if start.is_none() && req.recurrence.is_none() {
        return Err(validation(
            "A scheduled action needs a StartTime or a Recurrence",
        ));
    }
    let mut tx = ctx.store.write().await?;
    let g = locked(ctx, &mut tx, &group).await?;
    let key = scheduled_key(&group, &name);
    let existing: Option<Scheduled> = resource::lock(ctx, &mut tx, &key).await?;
    let fmt = |t: &Option<String>| {
        t.as_deref()
            .and_then(kumori_protocol::time::parse_timestamp)
    };
    let s = Scheduled {
        auto_scaling_group_name: group.clone(),
        scheduled_action_arn: existing.as_ref().map(|s| s.scheduled_action_arn.clone()).unwrap_or_else(|| {
            arn(
                ctx,
                &format!("scheduledUpdateGroupAction:{}:autoScalingGroupName/{group}:scheduledActionName/{name}", uuid()),
            )
        }),
        scheduled_action_name: name,
        time: fmt(&start),
        start_time: fmt(&start),
        end_time: fmt(&req.end_time),
        recurrence: req.recurrence,
        min_size: req.min_size,
        max_size: req.max_size,
        desired_capacity: req.desired_capacity,
        time_zone: req.time_zone,
        kumori_key: key,
        kumori_group_key: g.kumori_key.clone(),
    };
    if existing.is_some() {
        resource::update(ctx, &mut tx, &s).await?;
    } else {
        resource::insert(ctx, &mut tx, &s).await?;
    }
    tx.commit().await?;
    Ok(json!({}))
}

pub async fn describe_scheduled_actions(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: Request = input(raw)?;
    let mut tx = ctx.store.read().await?;
    let all: Vec<Scheduled> = match &req.auto_scaling_group_name {
        Some(g) => resource::children(ctx, &mut tx, &group_key(g)).await?,
        None => resource::list(ctx, &mut tx).await?,
    };
    let shown: Vec<Scheduled> = all
        .into_iter()
        .filter(|s| {
            req.scheduled_action_names.is_empty()
                || req
                    .scheduled_action_names
                    .contains(&s.scheduled_action_name)
        })
        .collect();
    Ok(json!({ "ScheduledUpdateGroupActions": shown }))
}

pub async fn delete_scheduled_action(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: Request = input(raw)?;
    let group = group_name(&req)?;
    let name = req.scheduled_action_name.clone().unwrap_or_default();
    let mut tx = ctx.store.write().await?;
    if !tx
        .delete(ctx.scope(), &scheduled_key(&group, &name))
        .await?
    {
        return Err(validation(format!(
            "Scheduled action name not found - Could not find scheduled action {name}"
        )));
    }
    tx.commit().await?;
    Ok(json!({}))
}

/// Carries out one-time scheduled actions whose time has come, in the caller's transaction;
/// answers whether the group changed. Recurring ones are kept, not run (see the README).
pub(crate) async fn run_scheduled(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    g: &mut Group,
    now: u64,
) -> Result<bool> {
    let actions: Vec<Scheduled> = resource::children(ctx, tx, &g.kumori_key).await?;
    let mut changed = false;
    for s in actions {
        if s.recurrence.is_some() {
            continue;
        }
        let due = s
            .start_time
            .as_deref()
            .and_then(kumori_protocol::time::unix_of_iso)
            .is_some_and(|t| t <= now);
        if !due {
            continue;
        }
        let min = s.min_size.unwrap_or(g.min_size);
        let max = s.max_size.unwrap_or(g.max_size);
        let desired = s
            .desired_capacity
            .unwrap_or(g.desired_capacity)
            .clamp(min.min(max), max.max(min));
        g.min_size = min;
        g.max_size = max;
        g.set_desired(
            desired,
            format!(
                "the scheduled action {} was executed",
                s.scheduled_action_name
            ),
        );
        record(
            ctx,
            tx,
            g,
            format!("Executing scheduled action {}", s.scheduled_action_name),
            g.kumori_cause.clone(),
            None,
        )
        .await?;
        tx.delete(ctx.scope(), &s.kumori_key).await?;
        changed = true;
    }
    Ok(changed)
}
