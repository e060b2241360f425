//! Auto Scaling's own work: one round keeps every group at its desired capacity. It
//! replaces instances that stopped, were terminated or failed their load balancer's health
//! checks, moves instances through lifecycle hooks, registers them with the group's target
//! groups once in service (and deregisters them, draining, before they go), runs due
//! scheduled actions, and chooses which instances leave by the group's termination policy.
//!
//! A round runs under the store's `autoscaling` lease (one node at a time among nodes
//! sharing a database). Each step on a group is its own transaction with the group locked;
//! launches and terminations go through EC2's RunInstances and TerminateInstances
//! (`ec2::api`), which commit on their own, and the group records their outcome right after.

use super::launch_configs::{LaunchConfiguration, key as config_key};
use super::policies::Hook;
use super::{Group, HookWait, Member, record, uuid};
use crate::ec2::api;
use crate::kit::Tag;
use crate::resource;
use crate::{Ctx, Result};
use kumori_store::{Store, StoreError};
use std::collections::BTreeMap;
use std::time::Duration;

pub const LEASE: &str = "autoscaling";
pub const LEASE_TTL: Duration = Duration::from_secs(30);
/// How often a round runs.
pub const EVERY: Duration = Duration::from_secs(1);
/// How long a group waits after a failed launch before trying again.
const BACKOFF_SECS: u64 = 10;

/// One round over every group, if `holder` holds the lease. Answers how many instances it
/// launched or terminated.
pub async fn round(
    store: &Store,
    limits: &crate::Limits,
    holder: &str,
) -> std::result::Result<usize, StoreError> {
    if !store.lease(LEASE, holder, LEASE_TTL).await? {
        return Ok(0);
    }
    let scopes = store.read().await?.scopes_with(super::GROUP).await?;
    let mut moved = 0;
    for (account, region) in scopes {
        let ctx = Ctx::root(store, &account, &region, limits);
        let names: Vec<String> = {
            let mut tx = store.read().await?;
            match resource::list::<Group>(&ctx, &mut tx).await {
                Ok(gs) => gs.into_iter().map(|g| g.auto_scaling_group_name).collect(),
                Err(e) => {
                    tracing::warn!("autoscaling: {}", e.0.message);
                    continue;
                }
            }
        };
        for name in names {
            match reconcile_group(&ctx, &name).await {
                Ok(n) => moved += n,
                Err(e) => tracing::warn!("autoscaling: group {name}: {}", e.0.message),
            }
        }
    }
    Ok(moved)
}

fn is_leaving(m: &Member) -> bool {
    m.lifecycle_state.starts_with("Terminating")
}

/// A hook on `transition` of the group, if it has one.
fn hook_for<'a>(hooks: &'a [Hook], transition: &str) -> Option<&'a Hook> {
    hooks.iter().find(|h| h.lifecycle_transition == transition)
}

fn wait_on(h: &Hook, now: u64) -> HookWait {
    HookWait {
        hook: h.lifecycle_hook_name.clone(),
        token: uuid(),
        deadline: now + h.heartbeat_timeout as u64,
        heartbeat_timeout: h.heartbeat_timeout as u64,
        default_result: h.default_result.clone(),
        result: None,
    }
}

/// A hook wait's outcome: `Some(true)` to go on, `Some(false)` to abandon, `None` to wait.
fn outcome(w: &HookWait, now: u64) -> Option<bool> {
    match w.result.as_deref() {
        Some(r) => Some(r == "CONTINUE"),
        None if now >= w.deadline => Some(w.default_result == "CONTINUE"),
        None => None,
    }
}

async fn reconcile_group(ctx: &Ctx<'_>, name: &str) -> Result<usize> {
    let now = kumori_protocol::time::now_unix();
    let now_iso = kumori_protocol::time::now_iso();
    let mut to_terminate: Vec<(String, String)> = Vec::new();
    let mut launches = 0i64;
    {
        let mut tx = ctx.store.write().await?;
        let Some(mut g) = resource::lock::<Group>(ctx, &mut tx, &super::group_key(name)).await?
        else {
            return Ok(0);
        };
        let before = serde_json::to_string(&g).unwrap_or_default();
        let hooks: Vec<Hook> = resource::children(ctx, &mut tx, &g.kumori_key).await?;
        if g.status.is_none() && !g.suspended("ScheduledActions") {
            super::policies::run_scheduled(ctx, &mut tx, &mut g, now).await?;
        }
        let elb_unhealthy = if g.health_check_type == "ELB" && !g.suspended("HealthCheck") {
            crate::elbv2::api::unhealthy_instances(ctx, &mut tx, &g.target_group_arns).await?
        } else {
            Default::default()
        };
        let mut joined: Vec<String> = Vec::new();
        let mut leaving: Vec<String> = Vec::new();
        let checks_off = g.suspended("HealthCheck");
        let replace_off = g.suspended("ReplaceUnhealthy");
        let terminate_off = g.suspended("Terminate");
        let grace = g.health_check_grace_period.max(0) as u64;
        let group_cause = g.kumori_cause.clone();
        for m in g.instances.iter_mut() {
            let placed = api::placement(ctx, &mut tx, &m.instance_id).await?;
            let state = placed.as_ref().map_or("terminated", |p| p.state.as_str());
            let gone = matches!(
                state,
                "terminated" | "shutting-down" | "stopped" | "stopping"
            );
            if !is_leaving(m) && !checks_off {
                if gone {
                    m.health_status = "Unhealthy".into();
                    m.kumori_cause.get_or_insert_with(|| format!(
                        "At {now_iso} an instance was taken out of service in response to an EC2 health check indicating it has been terminated or stopped."
                    ));
                } else if m.lifecycle_state == "InService"
                    && elb_unhealthy.contains(&m.instance_id)
                    && now >= m.kumori_since + grace
                {
                    m.health_status = "Unhealthy".into();
                    m.kumori_cause.get_or_insert_with(|| format!(
                        "At {now_iso} an instance was taken out of service in response to an ELB system health check failure."
                    ));
                }
            }
            if m.health_status == "Unhealthy" && !is_leaving(m) && !replace_off {
                m.lifecycle_state = "Terminating".into();
                m.kumori_hook = None;
            }
            match m.lifecycle_state.as_str() {
                "Pending" => match hook_for(&hooks, "autoscaling:EC2_INSTANCE_LAUNCHING") {
                    Some(h) => {
                        m.lifecycle_state = "Pending:Wait".into();
                        m.kumori_hook = Some(wait_on(h, now));
                    }
                    None => m.lifecycle_state = "Pending:Proceed".into(),
                },
                "Pending:Wait" => match m.kumori_hook.as_ref().and_then(|w| outcome(w, now)) {
                    Some(true) => m.lifecycle_state = "Pending:Proceed".into(),
                    Some(false) => {
                        m.lifecycle_state = "Terminating".into();
                        m.kumori_cause = Some(format!(
                            "At {now_iso} an instance was abandoned by lifecycle hook {}.",
                            m.kumori_hook
                                .as_ref()
                                .map(|w| w.hook.clone())
                                .unwrap_or_default()
                        ));
                        m.kumori_hook = None;
                    }
                    None => {}
                },
                _ => {}
            }
            if m.lifecycle_state == "Pending:Proceed" && state == "running" {
                m.lifecycle_state = "InService".into();
                m.kumori_hook = None;
                m.kumori_since = now;
                joined.push(m.instance_id.clone());
            }
            match m.lifecycle_state.as_str() {
                "Terminating" => {
                    leaving.push(m.instance_id.clone());
                    match hook_for(&hooks, "autoscaling:EC2_INSTANCE_TERMINATING") {
                        Some(h) if !gone => {
                            m.lifecycle_state = "Terminating:Wait".into();
                            m.kumori_hook = Some(wait_on(h, now));
                        }
                        _ => m.lifecycle_state = "Terminating:Proceed".into(),
                    }
                }
                "Terminating:Wait"
                    if gone
                        || m.kumori_hook
                            .as_ref()
                            .and_then(|w| outcome(w, now))
                            .is_some() =>
                {
                    m.lifecycle_state = "Terminating:Proceed".into();
                }
                _ => {}
            }
            if m.lifecycle_state == "Terminating:Proceed" && !terminate_off {
                let cause = m
                    .kumori_cause
                    .clone()
                    .unwrap_or_else(|| group_cause.clone());
                to_terminate.push((m.instance_id.clone(), cause));
            }
        }
        // Capacity: too few, launch; too many, choose who leaves.
        if g.status.is_none() {
            let counted = g.counted().count() as i64;
            if g.desired_capacity > counted && !g.suspended("Launch") && now >= g.kumori_retry_at {
                launches = g.desired_capacity - counted;
            } else if g.desired_capacity < counted && !g.suspended("Terminate") {
                let n = (counted - g.desired_capacity) as usize;
                let victims = choose_victims(&g, n);
                let cause = format!(
                    "{}  At {now_iso} an instance was taken out of service in response to a difference between desired and actual capacity, shrinking the capacity from {counted} to {}.",
                    g.kumori_cause, g.desired_capacity
                );
                for m in g
                    .instances
                    .iter_mut()
                    .filter(|m| victims.contains(&m.instance_id))
                {
                    m.lifecycle_state = "Terminating".into();
                    m.kumori_cause = Some(cause.clone());
                    leaving.push(m.instance_id.clone());
                }
            }
        }
        if !g.suspended("AddToLoadBalancer") && !joined.is_empty() {
            crate::elbv2::api::register_instances(ctx, &mut tx, &g.target_group_arns, &joined)
                .await?;
        }
        if !leaving.is_empty() {
            crate::elbv2::api::deregister_instances(ctx, &mut tx, &g.target_group_arns, &leaving)
                .await?;
        }
        // Deleted with ForceDelete, and nothing left: the group goes.
        if g.status.is_some() && g.instances.is_empty() {
            super::groups::delete_group_records(ctx, &mut tx, name).await?;
            tx.commit().await?;
            return Ok(0);
        }
        if serde_json::to_string(&g).unwrap_or_default() != before {
            resource::update(ctx, &mut tx, &g).await?;
            tx.commit().await?;
        }
    }
    let mut moved = 0;
    if !to_terminate.is_empty() {
        let ids: Vec<String> = to_terminate.iter().map(|(i, _)| i.clone()).collect();
        // Instances already gone are fine: TerminateInstances answers for those it knows.
        let mut live = Vec::new();
        {
            let mut tx = ctx.store.read().await?;
            for id in &ids {
                if api::placement(ctx, &mut tx, id)
                    .await?
                    .is_some_and(|p| p.state != "terminated")
                {
                    live.push(id.clone());
                }
            }
        }
        if !live.is_empty() {
            api::terminate(ctx, &live).await?;
        }
        let mut tx = ctx.store.write().await?;
        if let Some(mut g) = resource::lock::<Group>(ctx, &mut tx, &super::group_key(name)).await? {
            for (id, cause) in &to_terminate {
                let already = g
                    .instances
                    .iter()
                    .find(|m| &m.instance_id == id)
                    .is_some_and(|m| m.kumori_recorded);
                g.instances.retain(|m| &m.instance_id != id);
                if !already {
                    record(
                        ctx,
                        &mut tx,
                        &g,
                        format!("Terminating EC2 instance: {id}"),
                        cause.clone(),
                        None,
                    )
                    .await?;
                }
                moved += 1;
            }
            if g.status.is_some() && g.instances.is_empty() {
                super::groups::delete_group_records(ctx, &mut tx, name).await?;
            } else {
                resource::update(ctx, &mut tx, &g).await?;
            }
            tx.commit().await?;
        }
    }
    for _ in 0..launches {
        match launch_one(ctx, name).await? {
            true => moved += 1,
            false => break,
        }
    }
    Ok(moved)
}

/// Which zone and subnet the next instance goes to: the zone with the fewest instances.
fn next_subnet(g: &Group) -> Option<String> {
    if g.kumori_subnets.is_empty() {
        return None;
    }
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, z) in &g.kumori_subnets {
        count.entry(z.as_str()).or_insert(0);
    }
    for m in g.counted() {
        *count.entry(m.availability_zone.as_str()).or_insert(0) += 1;
    }
    let zone = g
        .kumori_subnets
        .iter()
        .map(|(_, z)| z.as_str())
        .min_by_key(|z| count.get(z).copied().unwrap_or(0))?;
    // Several subnets in one zone take turns.
    let in_zone: Vec<&String> = g
        .kumori_subnets
        .iter()
        .filter(|(_, z)| z == zone)
        .map(|(s, _)| s)
        .collect();
    let n = count.get(zone).copied().unwrap_or(0);
    Some(in_zone[n % in_zone.len()].clone())
}

/// Launches one instance for group `name`; `false` when it could not (the failure is an
/// activity, and the group backs off).
async fn launch_one(ctx: &Ctx<'_>, name: &str) -> Result<bool> {
    let g: Group = {
        let mut tx = ctx.store.read().await?;
        match resource::get(ctx, &mut tx, &super::group_key(name)).await? {
            Some(g) => g,
            None => return Ok(false),
        }
    };
    let mut tags: Vec<Tag> = g
        .tags
        .iter()
        .filter(|t| t.propagate_at_launch)
        .map(|t| Tag {
            key: t.key.clone(),
            value: t.value.clone(),
        })
        .collect();
    tags.push(Tag {
        key: "aws:autoscaling:groupName".into(),
        value: name.to_string(),
    });
    let mut plan = api::LaunchPlan {
        count: 1,
        subnet_id: next_subnet(&g),
        tags,
        ..Default::default()
    };
    if let Some(t) = &g.launch_template {
        plan.template = Some(api::TemplateRef {
            id_or_name: t
                .launch_template_id
                .clone()
                .or(t.launch_template_name.clone())
                .unwrap_or_default(),
            version: t.version.clone(),
        });
    } else if let Some(lc) = &g.launch_configuration_name {
        let mut tx = ctx.store.read().await?;
        let c: Option<LaunchConfiguration> = resource::get(ctx, &mut tx, &config_key(lc)).await?;
        if let Some(c) = c {
            plan.image_id = Some(c.image_id);
            plan.instance_type = Some(c.instance_type);
            plan.key_name = Some(c.key_name).filter(|k| !k.is_empty());
            plan.user_data = Some(c.user_data).filter(|u| !u.is_empty());
            plan.security_group_ids = c.security_groups;
            plan.instance_profile = c.iam_instance_profile;
        }
    }
    let launched = api::launch(ctx, &plan).await;
    let now = kumori_protocol::time::now_unix();
    let now_iso = kumori_protocol::time::now_iso();
    let mut tx = ctx.store.write().await?;
    let Some(mut g) = resource::lock::<Group>(ctx, &mut tx, &super::group_key(name)).await? else {
        drop(tx);
        if let Ok(l) = launched {
            api::terminate(ctx, &l.instance_ids).await?;
        }
        return Ok(false);
    };
    match launched {
        Ok(l) => {
            let counted = g.counted().count();
            for id in &l.instance_ids {
                let p = api::placement(ctx, &mut tx, id).await?;
                g.instances.push(Member {
                    instance_id: id.clone(),
                    instance_type: p
                        .as_ref()
                        .map(|p| p.instance_type.clone())
                        .unwrap_or_default(),
                    availability_zone: p
                        .as_ref()
                        .map(|p| p.availability_zone.clone())
                        .unwrap_or_default(),
                    lifecycle_state: "Pending".into(),
                    health_status: "Healthy".into(),
                    launch_template: g.launch_template.clone(),
                    launch_configuration_name: g.launch_configuration_name.clone(),
                    protected_from_scale_in: g.new_instances_protected_from_scale_in,
                    kumori_since: now,
                    kumori_hook: None,
                    kumori_cause: None,
                    kumori_recorded: false,
                });
                let cause = format!(
                    "{}  At {now_iso} an instance was started in response to a difference between desired and actual capacity, increasing the capacity from {counted} to {}.",
                    g.kumori_cause,
                    counted + 1
                );
                record(
                    ctx,
                    &mut tx,
                    &g,
                    format!("Launching a new EC2 instance: {id}"),
                    cause.trim().to_string(),
                    None,
                )
                .await?;
            }
            resource::update(ctx, &mut tx, &g).await?;
            tx.commit().await?;
            Ok(true)
        }
        Err(e) => {
            g.kumori_retry_at = now + BACKOFF_SECS;
            record(
                ctx,
                &mut tx,
                &g,
                format!(
                    "Launching a new EC2 instance.  Status Reason: {}. Launching EC2 instance failed.",
                    e.0.message
                ),
                format!(
                    "At {now_iso} an instance was started in response to a difference between desired and actual capacity, increasing the capacity from {} to {}.",
                    g.counted().count(),
                    g.desired_capacity
                ),
                Some(format!("{}. Launching EC2 instance failed.", e.0.message)),
            )
            .await?;
            resource::update(ctx, &mut tx, &g).await?;
            tx.commit().await?;
            Ok(false)
        }
    }
}

/// The instances that leave when a group shrinks by `n`, by its termination policies:
/// each from the zone with the most instances (to keep zones balanced), then by the
/// policies in order (`Default`: those on an older launch template or configuration first,
/// then any), protected instances never.
pub fn choose_victims(g: &Group, n: usize) -> Vec<String> {
    use rand::seq::SliceRandom;
    let mut pool: Vec<&Member> = g.counted().filter(|m| !m.protected_from_scale_in).collect();
    pool.shuffle(&mut rand::rng());
    let mut remaining: Vec<&Member> = g.counted().collect();
    let mut out = Vec::new();
    for _ in 0..n {
        if pool.is_empty() {
            break;
        }
        let mut per_zone: BTreeMap<&str, usize> = BTreeMap::new();
        for m in &remaining {
            *per_zone.entry(m.availability_zone.as_str()).or_insert(0) += 1;
        }
        let zone = pool
            .iter()
            .map(|m| m.availability_zone.as_str())
            .max_by_key(|z| per_zone.get(z).copied().unwrap_or(0))
            .unwrap_or_default()
            .to_string();
        let mut candidates: Vec<&Member> = pool
            .iter()
            .copied()
            .filter(|m| m.availability_zone == zone)
            .collect();
        for policy in g.termination_policies.iter().map(String::as_str) {
            let narrowed: Vec<&Member> = match policy {
                "OldestInstance" => {
                    let oldest = candidates.iter().map(|m| m.kumori_since).min();
                    candidates
                        .iter()
                        .copied()
                        .filter(|m| Some(m.kumori_since) == oldest)
                        .collect()
                }
                "NewestInstance" => {
                    let newest = candidates.iter().map(|m| m.kumori_since).max();
                    candidates
                        .iter()
                        .copied()
                        .filter(|m| Some(m.kumori_since) == newest)
                        .collect()
                }
                "Default" | "OldestLaunchTemplate" | "OldestLaunchConfiguration" => candidates
                    .iter()
                    .copied()
                    .filter(|m| {
                        m.launch_template != g.launch_template
                            || m.launch_configuration_name != g.launch_configuration_name
                    })
                    .collect(),
                _ => vec![],
            };
            if !narrowed.is_empty() {
                candidates = narrowed;
            }
        }
        let Some(victim) = candidates.first().map(|m| m.instance_id.clone()) else {
            break;
        };
        pool.retain(|m| m.instance_id != victim);
        remaining.retain(|m| m.instance_id != victim);
        out.push(victim);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, zone: &str, since: u64, protected: bool) -> Member {
        Member {
            instance_id: id.into(),
            instance_type: "t3.micro".into(),
            availability_zone: zone.into(),
            lifecycle_state: "InService".into(),
            health_status: "Healthy".into(),
            launch_template: None,
            launch_configuration_name: Some("v2".into()),
            protected_from_scale_in: protected,
            kumori_since: since,
            kumori_hook: None,
            kumori_cause: None,
            kumori_recorded: false,
        }
    }

    fn group(members: Vec<Member>, policies: &[&str]) -> Group {
        let mut g: Group = serde_json::from_value(serde_json::json!({
            "AutoScalingGroupName": "g", "AutoScalingGroupARN": "arn", "MinSize": 0, "MaxSize": 9,
            "DesiredCapacity": 0, "DefaultCooldown": 300, "AvailabilityZones": ["a", "b"],
            "HealthCheckType": "EC2", "HealthCheckGracePeriod": 0, "CreatedTime": "t",
            "TerminationPolicies": policies, "NewInstancesProtectedFromScaleIn": false,
            "ServiceLinkedRoleARN": "r", "KumoriKey": "asg-group/g",
            "LaunchConfigurationName": "v2",
        }))
        .unwrap();
        g.instances = members;
        g
    }

    #[test]
    fn the_zone_with_most_loses_first_and_older_configurations_before_newer() {
        let mut old = member("i-old", "a", 5, false);
        old.launch_configuration_name = Some("v1".into());
        let g = group(
            vec![
                member("i-a1", "a", 1, false),
                old,
                member("i-a3", "a", 3, false),
                member("i-b1", "b", 2, false),
            ],
            &["Default"],
        );
        // Zone a has three: its instance on the old configuration goes first.
        assert_eq!(choose_victims(&g, 1), ["i-old"]);
        // Down to 2: one from a, then the zones are even.
        let two = choose_victims(&g, 2);
        assert_eq!(two[0], "i-old");
        assert!(two[1].starts_with("i-a"));
    }

    #[test]
    fn oldest_instance_and_protection() {
        let g = group(
            vec![
                member("i-1", "a", 1, true),
                member("i-2", "a", 2, false),
                member("i-3", "a", 3, false),
            ],
            &["OldestInstance"],
        );
        // The oldest is protected: the next oldest goes.
        assert_eq!(choose_victims(&g, 1), ["i-2"]);
        assert_eq!(choose_victims(&g, 3), ["i-2", "i-3"]);
    }
}
