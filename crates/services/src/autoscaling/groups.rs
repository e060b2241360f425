//! Auto Scaling groups: their settings and capacity, their instances (protection, manual
//! termination), the target groups they register with, their tags and suspended processes.

use super::{
    GROUP, Group, GroupTag, PROCESSES, Suspended, TemplateSpec, arn, group_key, no_group, record,
    uuid, validation,
};
use crate::ec2::api;
use crate::resource;
use crate::{Ctx, Error, Result, input};
use kumori_store::Tx;
use serde::Deserialize;
use serde_json::{Value, json};

pub const OPERATIONS: &[crate::kit::Op] = crate::operations![
    "CreateAutoScalingGroup" => create_auto_scaling_group,
    "DescribeAutoScalingGroups" => describe_auto_scaling_groups,
    "UpdateAutoScalingGroup" => update_auto_scaling_group,
    "DeleteAutoScalingGroup" => delete_auto_scaling_group,
    "SetDesiredCapacity" => set_desired_capacity,
    "TerminateInstanceInAutoScalingGroup" => terminate_instance_in_auto_scaling_group,
    "DescribeAutoScalingInstances" => describe_auto_scaling_instances,
    "SetInstanceProtection" => set_instance_protection,
    "SuspendProcesses" => suspend_processes,
    "ResumeProcesses" => resume_processes,
    "AttachLoadBalancerTargetGroups" => attach_load_balancer_target_groups,
    "DetachLoadBalancerTargetGroups" => detach_load_balancer_target_groups,
    "DescribeLoadBalancerTargetGroups" => describe_load_balancer_target_groups,
    "DescribeLoadBalancers" => describe_load_balancers,
    "DescribeTrafficSources" => describe_traffic_sources,
    "CreateOrUpdateTags" => create_or_update_tags,
    "DeleteTags" => delete_tags,
    "DescribeTags" => describe_tags,
    "EnableMetricsCollection" => enable_metrics_collection,
    "DisableMetricsCollection" => disable_metrics_collection,
];

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct GroupRequest {
    auto_scaling_group_name: Option<String>,
    launch_configuration_name: Option<String>,
    launch_template: Option<TemplateSpec>,
    mixed_instances_policy: Option<Value>,
    instance_id: Option<String>,
    min_size: Option<i64>,
    max_size: Option<i64>,
    desired_capacity: Option<i64>,
    default_cooldown: Option<i64>,
    availability_zones: Option<Vec<String>>,
    #[serde(rename = "TargetGroupARNs")]
    target_group_arns: Option<Vec<String>>,
    load_balancer_names: Option<Vec<String>>,
    health_check_type: Option<String>,
    health_check_grace_period: Option<i64>,
    placement_group: Option<String>,
    #[serde(rename = "VPCZoneIdentifier")]
    vpc_zone_identifier: Option<String>,
    termination_policies: Option<Vec<String>>,
    new_instances_protected_from_scale_in: Option<bool>,
    capacity_rebalance: Option<bool>,
    #[serde(default)]
    tags: Vec<TagInput>,
    max_instance_lifetime: Option<i64>,
    default_instance_warmup: Option<i64>,
    desired_capacity_type: Option<String>,
    context: Option<String>,
    #[serde(default)]
    lifecycle_hook_specification_list: Vec<Value>,
    force_delete: Option<bool>,
    #[serde(default)]
    scaling_processes: Vec<String>,
    #[serde(default)]
    metrics: Vec<String>,
    granularity: Option<String>,
    #[serde(default)]
    auto_scaling_group_names: Vec<String>,
    #[serde(default)]
    filters: Vec<Filter>,
    max_records: Option<i64>,
    next_token: Option<String>,
    #[serde(default)]
    instance_ids: Vec<String>,
    protected_from_scale_in: Option<bool>,
    should_decrement_desired_capacity: Option<bool>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct TagInput {
    resource_id: Option<String>,
    resource_type: Option<String>,
    key: String,
    value: Option<String>,
    propagate_at_launch: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Filter {
    name: String,
    #[serde(default)]
    values: Vec<String>,
}

fn check_sizes(min: i64, max: i64, desired: i64) -> Result<()> {
    if min > max {
        return Err(validation(format!(
            "Max bound, {max}, must be greater than or equal to min bound, {min}"
        )));
    }
    if desired < min || desired > max {
        return Err(validation(format!(
            "Desired capacity:{desired} must be between the specified min size:{min} and max size:{max}"
        )));
    }
    Ok(())
}

/// The subnets of `VPCZoneIdentifier`, checked, with their zones.
async fn subnets_of(ctx: &Ctx<'_>, tx: &mut Tx, ids: &str) -> Result<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut vpc: Option<String> = None;
    for id in ids.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let s = api::subnet(ctx, tx, id)
            .await?
            .ok_or_else(|| validation(format!("The subnet ID '{id}' does not exist")))?;
        if vpc.as_ref().is_some_and(|v| *v != s.vpc_id) {
            return Err(validation(
                "The subnets of a group must belong to the same VPC",
            ));
        }
        vpc = Some(s.vpc_id);
        if !out.iter().any(|(i, _)| i == id) {
            out.push((id.to_string(), s.availability_zone));
        }
    }
    Ok(out)
}

/// The launch template as the group shows it: both its id and its name.
async fn template_of(ctx: &Ctx<'_>, tx: &mut Tx, t: &TemplateSpec) -> Result<TemplateSpec> {
    let version = t.version.clone().unwrap_or_else(|| "$Default".into());
    let (id, name) = api::launch_template(
        ctx,
        tx,
        t.launch_template_id.as_deref(),
        t.launch_template_name.as_deref(),
        Some(&version),
    )
    .await
    .map_err(|e| {
        validation(format!(
            "You must use a valid fully-formed launch template. {}",
            e.0.message
        ))
    })?;
    Ok(TemplateSpec {
        launch_template_id: Some(id),
        launch_template_name: Some(name),
        version: Some(version),
    })
}

async fn check_target_groups(ctx: &Ctx<'_>, tx: &mut Tx, arns: &[String]) -> Result<()> {
    for a in arns {
        if !crate::elbv2::api::group_exists(ctx, tx, a).await? {
            return Err(validation(format!(
                "Provided Target Groups may not be valid. Please ensure they exist and try again. ('{a}' was not found)"
            )));
        }
    }
    Ok(())
}

fn group_tags(name: &str, tags: &[TagInput]) -> Vec<GroupTag> {
    tags.iter()
        .map(|t| GroupTag {
            resource_id: t.resource_id.clone().unwrap_or_else(|| name.to_string()),
            resource_type: t
                .resource_type
                .clone()
                .unwrap_or_else(|| "auto-scaling-group".into()),
            key: t.key.clone(),
            value: t.value.clone().unwrap_or_default(),
            propagate_at_launch: t.propagate_at_launch.unwrap_or(false),
        })
        .collect()
}

pub(crate) async fn locked(ctx: &Ctx<'_>, tx: &mut Tx, name: &str) -> Result<Group> {
    resource::lock::<Group>(ctx, tx, &group_key(name))
        .await?
        .ok_or_else(|| no_group(name))
}

fn name_of(req: &GroupRequest) -> Result<String> {
    req.auto_scaling_group_name.clone().ok_or_else(|| {
        Error::new(
            "MissingParameter",
            "The request must contain the parameter AutoScalingGroupName",
        )
    })
}

pub async fn create_auto_scaling_group(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: GroupRequest = input(raw)?;
    let name = name_of(&req)?;
    if name.is_empty() || name.len() > 255 {
        return Err(validation(
            "AutoScalingGroupName must be 1 to 255 characters",
        ));
    }
    if req.mixed_instances_policy.is_some() || req.instance_id.is_some() {
        return Err(Error(kumori_protocol::AwsError::not_implemented(
            "autoscaling",
            "CreateAutoScalingGroup with MixedInstancesPolicy or InstanceId",
        )));
    }
    if req.launch_template.is_some() == req.launch_configuration_name.is_some() {
        return Err(validation(
            "Valid requests must contain either LaunchTemplate, LaunchConfigurationName, InstanceId or MixedInstancesPolicy parameter.",
        ));
    }
    let (min, max) = (req.min_size.unwrap_or(0), req.max_size.unwrap_or(0));
    let desired = req.desired_capacity.unwrap_or(min);
    check_sizes(min, max, desired)?;
    let mut tx = ctx.store.write().await?;
    if resource::lock::<Group>(ctx, &mut tx, &group_key(&name))
        .await?
        .is_some()
    {
        return Err(Error::new(
            "AlreadyExists",
            format!(
                "AutoScalingGroup by this name already exists - A group with the name {name} already exists"
            ),
        ));
    }
    let subnets = subnets_of(
        ctx,
        &mut tx,
        req.vpc_zone_identifier.as_deref().unwrap_or_default(),
    )
    .await?;
    let zones: Vec<String> = if subnets.is_empty() {
        req.availability_zones.clone().unwrap_or_default()
    } else {
        let mut z: Vec<String> = subnets.iter().map(|(_, z)| z.clone()).collect();
        z.sort();
        z.dedup();
        z
    };
    if zones.is_empty() {
        return Err(validation(
            "At least one Availability Zone or VPC Subnet is required.",
        ));
    }
    let template = match &req.launch_template {
        Some(t) => Some(template_of(ctx, &mut tx, t).await?),
        None => None,
    };
    if let Some(lc) = &req.launch_configuration_name
        && resource::get::<super::launch_configs::LaunchConfiguration>(
            ctx,
            &mut tx,
            &super::launch_configs::key(lc),
        )
        .await?
        .is_none()
    {
        return Err(validation(format!(
            "Launch configuration name not found - Launch configuration {lc} not found"
        )));
    }
    let tgs = req.target_group_arns.clone().unwrap_or_default();
    check_target_groups(ctx, &mut tx, &tgs).await?;
    if tx.count(ctx.scope(), GROUP).await? >= 500 {
        return Err(Error::new(
            "LimitExceeded",
            "You have reached your limit of 500 Auto Scaling groups",
        ));
    }
    let health_check_type = req
        .health_check_type
        .clone()
        .unwrap_or_else(|| "EC2".into());
    if !matches!(health_check_type.as_str(), "EC2" | "ELB") {
        return Err(validation(format!(
            "Health check type '{health_check_type}' is not valid: use EC2 or ELB"
        )));
    }
    let mut g = Group {
        auto_scaling_group_arn: arn(
            ctx,
            &format!("autoScalingGroup:{}:autoScalingGroupName/{name}", uuid()),
        ),
        auto_scaling_group_name: name.clone(),
        launch_configuration_name: req.launch_configuration_name.clone(),
        launch_template: template,
        min_size: min,
        max_size: max,
        desired_capacity: 0,
        default_cooldown: req.default_cooldown.unwrap_or(300),
        availability_zones: zones,
        load_balancer_names: req.load_balancer_names.clone().unwrap_or_default(),
        target_group_arns: tgs,
        health_check_type,
        health_check_grace_period: req.health_check_grace_period.unwrap_or(300),
        instances: vec![],
        created_time: kumori_protocol::time::now_iso(),
        suspended_processes: vec![],
        vpc_zone_identifier: subnets
            .iter()
            .map(|(s, _)| s.as_str())
            .collect::<Vec<_>>()
            .join(","),
        enabled_metrics: vec![],
        status: None,
        tags: group_tags(&name, &req.tags),
        termination_policies: req
            .termination_policies
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| vec!["Default".into()]),
        new_instances_protected_from_scale_in: req
            .new_instances_protected_from_scale_in
            .unwrap_or(false),
        service_linked_role_arn: format!(
            "arn:{}:iam::{}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling",
            crate::resource::partition(ctx.region),
            ctx.account
        ),
        max_instance_lifetime: req.max_instance_lifetime,
        capacity_rebalance: req.capacity_rebalance.unwrap_or(false),
        default_instance_warmup: req.default_instance_warmup,
        placement_group: req.placement_group.clone(),
        desired_capacity_type: req.desired_capacity_type.clone(),
        context: req.context.clone(),
        kumori_subnets: subnets,
        kumori_cause: String::new(),
        kumori_retry_at: 0,
        kumori_capacity_before: 0,
        kumori_key: group_key(&name),
    };
    g.set_desired(desired, "a user request created an AutoScalingGroup".into());
    resource::insert(ctx, &mut tx, &g).await?;
    for spec in &req.lifecycle_hook_specification_list {
        super::policies::put_hook(ctx, &mut tx, &name, spec).await?;
    }
    tx.commit().await?;
    Ok(json!({}))
}

/// A group as DescribeAutoScalingGroups shows it.
fn shown(g: &Group) -> Value {
    let mut v = serde_json::to_value(g).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.retain(|k, _| !k.starts_with("Kumori"));
        if let Some(Value::Array(members)) = o.get_mut("Instances") {
            for m in members {
                if let Some(m) = m.as_object_mut() {
                    m.retain(|k, _| !k.starts_with("Kumori"));
                }
            }
        }
    }
    v
}

fn tag_filter_matches(g: &Group, f: &Filter) -> bool {
    let any = |pred: &dyn Fn(&GroupTag) -> bool| g.tags.iter().any(pred);
    match f.name.as_str() {
        "tag-key" => any(&|t| f.values.contains(&t.key)),
        "tag-value" => any(&|t| f.values.contains(&t.value)),
        n if n.starts_with("tag:") => {
            let key = &n[4..];
            any(&|t| t.key == key && f.values.contains(&t.value))
        }
        _ => true,
    }
}

pub async fn describe_auto_scaling_groups(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: GroupRequest = input(raw)?;
    let mut tx = ctx.store.read().await?;
    let all: Vec<Group> = resource::list(ctx, &mut tx).await?;
    let items: Vec<(String, Value)> = all
        .iter()
        .filter(|g| {
            req.auto_scaling_group_names.is_empty()
                || req
                    .auto_scaling_group_names
                    .contains(&g.auto_scaling_group_name)
        })
        .filter(|g| req.filters.iter().all(|f| tag_filter_matches(g, f)))
        .map(|g| (g.auto_scaling_group_name.clone(), shown(g)))
        .collect();
    Ok(super::page(
        items,
        "AutoScalingGroups",
        req.next_token.as_deref(),
        req.max_records,
        100,
        50,
    ))
}

pub async fn update_auto_scaling_group(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: GroupRequest = input(raw)?;
    let name = name_of(&req)?;
    let mut tx = ctx.store.write().await?;
    let mut g = locked(ctx, &mut tx, &name).await?;
    if g.status.is_some() {
        return Err(Error::new(
            "ScalingActivityInProgress",
            "The AutoScalingGroup is being deleted",
        ));
    }
    let min = req.min_size.unwrap_or(g.min_size);
    let max = req.max_size.unwrap_or(g.max_size);
    // A new bound that leaves the desired capacity outside moves it to the bound.
    let desired = req
        .desired_capacity
        .unwrap_or_else(|| g.desired_capacity.clamp(min.min(max), max.max(min)));
    check_sizes(min, max, desired)?;
    g.min_size = min;
    g.max_size = max;
    g.set_desired(
        desired,
        format!(
            "a user request update of AutoScalingGroup constraints to min: {min}, max: {max}, desired: {desired}"
        ),
    );
    if let Some(t) = &req.launch_template {
        g.launch_template = Some(template_of(ctx, &mut tx, t).await?);
        g.launch_configuration_name = None;
    }
    if let Some(lc) = &req.launch_configuration_name {
        if resource::get::<super::launch_configs::LaunchConfiguration>(
            ctx,
            &mut tx,
            &super::launch_configs::key(lc),
        )
        .await?
        .is_none()
        {
            return Err(validation(format!(
                "Launch configuration name not found - Launch configuration {lc} not found"
            )));
        }
        g.launch_configuration_name = Some(lc.clone());
        g.launch_template = None;
    }
    if let Some(ids) = &req.vpc_zone_identifier {
        let subnets = subnets_of(ctx, &mut tx, ids).await?;
        if !subnets.is_empty() {
            let mut z: Vec<String> = subnets.iter().map(|(_, z)| z.clone()).collect();
            z.sort();
            z.dedup();
            g.availability_zones = z;
            g.vpc_zone_identifier = subnets
                .iter()
                .map(|(s, _)| s.as_str())
                .collect::<Vec<_>>()
                .join(",");
            g.kumori_subnets = subnets;
        }
    } else if let Some(z) = &req.availability_zones
        && g.kumori_subnets.is_empty()
    {
        g.availability_zones = z.clone();
    }
    if let Some(t) = &req.health_check_type {
        g.health_check_type = t.clone();
    }
    if let Some(p) = req.health_check_grace_period {
        g.health_check_grace_period = p;
    }
    if let Some(c) = req.default_cooldown {
        g.default_cooldown = c;
    }
    if let Some(p) = &req.termination_policies {
        g.termination_policies = if p.is_empty() {
            vec!["Default".into()]
        } else {
            p.clone()
        };
    }
    if let Some(p) = req.new_instances_protected_from_scale_in {
        g.new_instances_protected_from_scale_in = p;
    }
    if let Some(c) = req.capacity_rebalance {
        g.capacity_rebalance = c;
    }
    if req.max_instance_lifetime.is_some() {
        g.max_instance_lifetime = req.max_instance_lifetime.filter(|l| *l > 0);
    }
    if req.default_instance_warmup.is_some() {
        g.default_instance_warmup = req.default_instance_warmup;
    }
    if req.placement_group.is_some() {
        g.placement_group = req.placement_group.clone();
    }
    if req.desired_capacity_type.is_some() {
        g.desired_capacity_type = req.desired_capacity_type.clone();
    }
    g.kumori_retry_at = 0;
    resource::update(ctx, &mut tx, &g).await?;
    tx.commit().await?;
    Ok(json!({}))
}

pub async fn delete_auto_scaling_group(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: GroupRequest = input(raw)?;
    let name = name_of(&req)?;
    let mut tx = ctx.store.write().await?;
    let mut g = locked(ctx, &mut tx, &name).await?;
    if g.instances.is_empty() {
        delete_group_records(ctx, &mut tx, &name).await?;
        tx.commit().await?;
        return Ok(json!({}));
    }
    if !req.force_delete.unwrap_or(false) {
        return Err(Error::new(
            "ResourceInUse",
            "You cannot delete an AutoScalingGroup while there are instances or pending Spot instance request(s) still in the group.",
        ));
    }
    // Its instances are terminated by the reconciler, which then removes the group.
    g.status = Some("Delete in progress".into());
    g.min_size = 0;
    g.max_size = 0;
    g.set_desired(0, "a user request deleted the AutoScalingGroup".into());
    let cause = format!(
        "At {} an instance was taken out of service in response to a user request to delete the group.",
        kumori_protocol::time::now_iso()
    );
    for m in &mut g.instances {
        if !m.lifecycle_state.starts_with("Terminating") {
            m.lifecycle_state = "Terminating".into();
            m.kumori_cause = Some(cause.clone());
        }
    }
    resource::update(ctx, &mut tx, &g).await?;
    tx.commit().await?;
    Ok(json!({}))
}

/// Removes a group and everything kept under it (policies, hooks, scheduled actions;
/// activities stay, as AWS keeps them for a while).
pub(crate) async fn delete_group_records(ctx: &Ctx<'_>, tx: &mut Tx, name: &str) -> Result<()> {
    for kind in [
        super::policies::POLICY,
        super::policies::HOOK,
        super::policies::SCHEDULED,
    ] {
        for r in tx
            .children(ctx.scope(), &group_key(name), Some(kind))
            .await?
        {
            tx.delete(ctx.scope(), &r.id).await?;
        }
    }
    tx.delete(ctx.scope(), &group_key(name)).await?;
    Ok(())
}

pub async fn set_desired_capacity(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: GroupRequest = input(raw)?;
    let name = name_of(&req)?;
    let desired = req.desired_capacity.unwrap_or_default();
    let mut tx = ctx.store.write().await?;
    let mut g = locked(ctx, &mut tx, &name).await?;
    if desired > g.max_size {
        return Err(validation(format!(
            "New SetDesiredCapacity value {desired} is above max value {} for the AutoScalingGroup.",
            g.max_size
        )));
    }
    if desired < g.min_size {
        return Err(validation(format!(
            "New SetDesiredCapacity value {desired} is below min value {} for the AutoScalingGroup.",
            g.min_size
        )));
    }
    g.set_desired(
        desired,
        "a user request explicitly set group desired capacity".into(),
    );
    resource::update(ctx, &mut tx, &g).await?;
    tx.commit().await?;
    Ok(json!({}))
}

/// The group an instance belongs to, locked.
async fn group_of_instance(ctx: &Ctx<'_>, tx: &mut Tx, id: &str) -> Result<Option<Group>> {
    let groups: Vec<Group> = resource::list(ctx, tx).await?;
    match groups
        .into_iter()
        .find(|g| g.instances.iter().any(|m| m.instance_id == id))
    {
        Some(g) => Ok(resource::lock(ctx, tx, &g.kumori_key).await?),
        None => Ok(None),
    }
}

pub async fn terminate_instance_in_auto_scaling_group(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: GroupRequest = input(raw)?;
    let id = req.instance_id.clone().unwrap_or_default();
    let decrement = req.should_decrement_desired_capacity.unwrap_or(false);
    let mut tx = ctx.store.write().await?;
    let mut g = group_of_instance(ctx, &mut tx, &id).await?.ok_or_else(|| {
        validation(format!(
            "Instance Id not found - No managed instance found for instance ID: {id}"
        ))
    })?;
    if decrement && g.desired_capacity - 1 < g.min_size {
        return Err(validation(format!(
            "Currently, desiredSize equals minSize ({}). Terminating instance without replacement will violate group's min size constraint. Either set shouldDecrementDesiredCapacity flag to false or lower group's min size.",
            g.min_size
        )));
    }
    let now = kumori_protocol::time::now_iso();
    let cause = if decrement {
        g.set_desired(g.desired_capacity - 1, "a user request".into());
        format!(
            "At {now} instance {id} was taken out of service in response to a user request, shrinking the capacity from {} to {}.",
            g.desired_capacity + 1,
            g.desired_capacity
        )
    } else {
        format!("At {now} instance {id} was taken out of service in response to a user request.")
    };
    if let Some(m) = g.instances.iter_mut().find(|m| m.instance_id == id)
        && !m.lifecycle_state.starts_with("Terminating")
    {
        m.lifecycle_state = "Terminating".into();
        m.kumori_cause = Some(cause.clone());
        m.kumori_recorded = true;
    }
    resource::update(ctx, &mut tx, &g).await?;
    let activity = record(
        ctx,
        &mut tx,
        &g,
        format!("Terminating EC2 instance: {id}"),
        cause,
        None,
    )
    .await?;
    tx.commit().await?;
    let mut a = serde_json::to_value(&activity).unwrap_or_default();
    a["StatusCode"] = json!("InProgress");
    a["Progress"] = json!(0);
    if let Some(o) = a.as_object_mut() {
        o.remove("EndTime");
    }
    Ok(json!({ "Activity": a }))
}

pub async fn describe_auto_scaling_instances(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: GroupRequest = input(raw)?;
    let mut tx = ctx.store.read().await?;
    let groups: Vec<Group> = resource::list(ctx, &mut tx).await?;
    let mut items = Vec::new();
    for g in &groups {
        for m in &g.instances {
            if !req.instance_ids.is_empty() && !req.instance_ids.contains(&m.instance_id) {
                continue;
            }
            let mut v = serde_json::to_value(m).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.retain(|k, _| !k.starts_with("Kumori"));
            }
            v["AutoScalingGroupName"] = json!(g.auto_scaling_group_name);
            // DescribeAutoScalingInstances words health in capitals.
            v["HealthStatus"] = json!(m.health_status.to_uppercase());
            items.push((m.instance_id.clone(), v));
        }
    }
    Ok(super::page(
        items,
        "AutoScalingInstances",
        req.next_token.as_deref(),
        req.max_records,
        50,
        50,
    ))
}

pub async fn set_instance_protection(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: GroupRequest = input(raw)?;
    let name = name_of(&req)?;
    let protect = req.protected_from_scale_in.unwrap_or(false);
    let mut tx = ctx.store.write().await?;
    let mut g = locked(ctx, &mut tx, &name).await?;
    for id in &req.instance_ids {
        let m = g
            .instances
            .iter_mut()
            .find(|m| &m.instance_id == id)
            .ok_or_else(|| {
                validation(format!(
                    "The instance {id} is not part of Auto Scaling group {name}."
                ))
            })?;
        m.protected_from_scale_in = protect;
    }
    resource::update(ctx, &mut tx, &g).await?;
    tx.commit().await?;
    Ok(json!({}))
}

async fn change_processes(ctx: &Ctx<'_>, raw: &Value, suspend: bool) -> Result<Value> {
    let req: GroupRequest = input(raw)?;
    let name = name_of(&req)?;
    for p in &req.scaling_processes {
        if !PROCESSES.contains(&p.as_str()) {
            return Err(validation(format!("Process '{p}' is not a valid process")));
        }
    }
    let chosen: Vec<&str> = if req.scaling_processes.is_empty() {
        PROCESSES.to_vec()
    } else {
        req.scaling_processes.iter().map(String::as_str).collect()
    };
    let mut tx = ctx.store.write().await?;
    let mut g = locked(ctx, &mut tx, &name).await?;
    for p in chosen {
        g.suspended_processes.retain(|s| s.process_name != p);
        if suspend {
            g.suspended_processes.push(Suspended {
                process_name: p.to_string(),
                suspension_reason: format!(
                    "User suspended at {}",
                    kumori_protocol::time::now_iso()
                ),
            });
        }
    }
    resource::update(ctx, &mut tx, &g).await?;
    tx.commit().await?;
    Ok(json!({}))
}

pub async fn suspend_processes(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    change_processes(ctx, raw, true).await
}

pub async fn resume_processes(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    change_processes(ctx, raw, false).await
}

pub async fn attach_load_balancer_target_groups(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: GroupRequest = input(raw)?;
    let name = name_of(&req)?;
    let arns = req.target_group_arns.clone().unwrap_or_default();
    let mut tx = ctx.store.write().await?;
    let mut g = locked(ctx, &mut tx, &name).await?;
    check_target_groups(ctx, &mut tx, &arns).await?;
    for a in &arns {
        if !g.target_group_arns.contains(a) {
            g.target_group_arns.push(a.clone());
        }
    }
    // Instances already in service join the new groups now.
    let in_service: Vec<String> = g
        .instances
        .iter()
        .filter(|m| m.lifecycle_state == "InService")
        .map(|m| m.instance_id.clone())
        .collect();
    if !g.suspended("AddToLoadBalancer") {
        crate::elbv2::api::register_instances(ctx, &mut tx, &arns, &in_service).await?;
    }
    resource::update(ctx, &mut tx, &g).await?;
    tx.commit().await?;
    Ok(json!({}))
}

pub async fn detach_load_balancer_target_groups(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: GroupRequest = input(raw)?;
    let name = name_of(&req)?;
    let arns = req.target_group_arns.clone().unwrap_or_default();
    let mut tx = ctx.store.write().await?;
    let mut g = locked(ctx, &mut tx, &name).await?;
    g.target_group_arns.retain(|a| !arns.contains(a));
    let ids: Vec<String> = g.instances.iter().map(|m| m.instance_id.clone()).collect();
    crate::elbv2::api::deregister_instances(ctx, &mut tx, &arns, &ids).await?;
    resource::update(ctx, &mut tx, &g).await?;
    tx.commit().await?;
    Ok(json!({}))
}

/// The group a read names (`AutoScalingGroupName`).
async fn read_group(ctx: &Ctx<'_>, raw: &Value) -> Result<Group> {
    let req: GroupRequest = input(raw)?;
    let name = name_of(&req)?;
    let mut tx = ctx.store.read().await?;
    resource::get(ctx, &mut tx, &group_key(&name))
        .await?
        .ok_or_else(|| no_group(&name))
}

pub async fn describe_load_balancer_target_groups(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let g = read_group(ctx, raw).await?;
    let shown: Vec<Value> = g
        .target_group_arns
        .iter()
        .map(|a| json!({ "LoadBalancerTargetGroupARN": a, "State": "InService" }))
        .collect();
    Ok(json!({ "LoadBalancerTargetGroups": shown }))
}

/// Classic load balancers are not served: a group has none.
pub async fn describe_load_balancers(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let g = read_group(ctx, raw).await?;
    let shown: Vec<Value> = g
        .load_balancer_names
        .iter()
        .map(|n| json!({ "LoadBalancerName": n, "State": "InService" }))
        .collect();
    Ok(json!({ "LoadBalancers": shown }))
}

pub async fn describe_traffic_sources(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let g = read_group(ctx, raw).await?;
    let shown: Vec<Value> = g
        .target_group_arns
        .iter()
        .map(|a| json!({ "TrafficSource": a, "Identifier": a, "Type": "elbv2", "State": "InService" }))
        .collect();
    Ok(json!({ "TrafficSources": shown }))
}

pub async fn create_or_update_tags(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: GroupRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    for t in &req.tags {
        let name = t.resource_id.clone().unwrap_or_default();
        let mut g = locked(ctx, &mut tx, &name).await?;
        let new = group_tags(&name, std::slice::from_ref(t)).remove(0);
        match g.tags.iter_mut().find(|o| o.key == new.key) {
            Some(o) => *o = new,
            None => g.tags.push(new),
        }
        if g.tags.len() > 50 {
            return Err(Error::new(
                "LimitExceeded",
                "A group can have at most 50 tags",
            ));
        }
        resource::update(ctx, &mut tx, &g).await?;
    }
    tx.commit().await?;
    Ok(json!({}))
}

pub async fn delete_tags(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: GroupRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    for t in &req.tags {
        let name = t.resource_id.clone().unwrap_or_default();
        let mut g = locked(ctx, &mut tx, &name).await?;
        g.tags.retain(|o| o.key != t.key);
        resource::update(ctx, &mut tx, &g).await?;
    }
    tx.commit().await?;
    Ok(json!({}))
}

pub async fn describe_tags(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: GroupRequest = input(raw)?;
    let mut tx = ctx.store.read().await?;
    let groups: Vec<Group> = resource::list(ctx, &mut tx).await?;
    let mut items = Vec::new();
    for g in &groups {
        for t in &g.tags {
            let ok = req.filters.iter().all(|f| match f.name.as_str() {
                "auto-scaling-group" => f.values.contains(&g.auto_scaling_group_name),
                "key" => f.values.contains(&t.key),
                "value" => f.values.contains(&t.value),
                "propagate-at-launch" => f.values.contains(&t.propagate_at_launch.to_string()),
                _ => true,
            });
            if ok {
                items.push((
                    format!("{}\u{0}{}", g.auto_scaling_group_name, t.key),
                    json!(t),
                ));
            }
        }
    }
    Ok(super::page(
        items,
        "Tags",
        req.next_token.as_deref(),
        req.max_records,
        100,
        50,
    ))
}

async fn change_metrics(ctx: &Ctx<'_>, raw: &Value, enable: bool) -> Result<Value> {
    let req: GroupRequest = input(raw)?;
    let name = name_of(&req)?;
    let mut tx = ctx.store.write().await?;
    let mut g = locked(ctx, &mut tx, &name).await?;
    let all = [
        "GroupMinSize",
        "GroupMaxSize",
        "GroupDesiredCapacity",
        "GroupInServiceInstances",
        "GroupPendingInstances",
        "GroupStandbyInstances",
        "GroupTerminatingInstances",
        "GroupTotalInstances",
    ];
    let chosen: Vec<String> = if req.metrics.is_empty() {
        all.iter().map(|s| s.to_string()).collect()
    } else {
        req.metrics.clone()
    };
    g.enabled_metrics
        .retain(|m| !chosen.iter().any(|c| m["Metric"] == c.as_str()));
    if enable {
        let granularity = req.granularity.clone().unwrap_or_else(|| "1Minute".into());
        g.enabled_metrics.extend(
            chosen
                .iter()
                .map(|m| json!({ "Metric": m, "Granularity": granularity })),
        );
    }
    resource::update(ctx, &mut tx, &g).await?;
    tx.commit().await?;
    Ok(json!({}))
}

pub async fn enable_metrics_collection(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    change_metrics(ctx, raw, true).await
}

pub async fn disable_metrics_collection(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    change_metrics(ctx, raw, false).await
}
