//! What the rest of kumori asks of ELBv2: the server's reconciler reads every load balancer
//! as the proxies must run it and writes back what health checks found; Auto Scaling
//! registers its instances and reads their health.

use super::listeners::{Listener, Rule, default_rule};
use super::load_balancers::LoadBalancer;
use super::target_groups::{Health, Target, TargetGroup, health_of};
use crate::resource;
use crate::{Ctx, Result};
use kumori_store::Store;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// One load balancer as its proxies run it.
#[derive(Debug, Clone, PartialEq)]
pub struct Balancer {
    pub account: String,
    pub region: String,
    pub arn: String,
    pub name: String,
    pub application: bool,
    pub active: bool,
    pub idle_timeout_secs: u64,
    pub listeners: Vec<ListenerSpec>,
    /// Its nodes: the managed interfaces in its subnets.
    pub nodes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ListenerSpec {
    pub arn: String,
    pub port: u16,
    pub protocol: String,
    /// In priority order, the default rule last.
    pub rules: Vec<RuleSpec>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    /// As ELBv2 stores them (`Field` and its config).
    pub conditions: Vec<Value>,
    pub actions: Vec<Value>,
}

/// A target group as its health checks and proxies use it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSpec {
    pub account: String,
    pub region: String,
    pub arn: String,
    pub protocol: String,
    pub health_protocol: String,
    /// `None`: the target's own port.
    pub health_port: Option<u16>,
    pub health_path: String,
    pub health_enabled: bool,
    pub interval_secs: u64,
    pub timeout_secs: u64,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
    pub matcher: String,
    pub algorithm: String,
    pub stickiness: bool,
    pub stickiness_secs: u64,
    pub targets: Vec<TargetSpec>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TargetSpec {
    /// `id:port`, the key health is kept under.
    pub key: String,
    /// The address traffic goes to; `None` when an instance target has no running instance.
    pub ip: Option<String>,
    pub port: u16,
    /// Draining: kept for requests under way, sent no new ones.
    pub draining: bool,
}

/// Everything the proxies should run now, across every account and region.
pub async fn desired(
    store: &Store,
    limits: &crate::Limits,
) -> Result<(Vec<Balancer>, Vec<GroupSpec>)> {
    let mut tx = store.read().await?;
    let mut scopes: BTreeSet<(String, String)> = BTreeSet::new();
    scopes.extend(tx.scopes_with(super::LB).await?);
    scopes.extend(tx.scopes_with(super::TG).await?);
    drop(tx);
    let now = kumori_protocol::time::now_unix();
    let mut balancers = Vec::new();
    let mut groups = Vec::new();
    for (account, region) in scopes {
        let ctx = Ctx::root(store, &account, &region, limits);
        let mut tx = store.read().await?;
        let lbs: Vec<LoadBalancer> = resource::list(&ctx, &mut tx).await?;
        let listeners: Vec<Listener> = resource::list(&ctx, &mut tx).await?;
        let rules: Vec<Rule> = resource::list(&ctx, &mut tx).await?;
        let tgs: Vec<TargetGroup> = resource::list(&ctx, &mut tx).await?;
        for lb in &lbs {
            let mut specs = Vec::new();
            for l in listeners
                .iter()
                .filter(|l| l.load_balancer_arn == lb.load_balancer_arn)
            {
                let mut mine: Vec<&Rule> = rules
                    .iter()
                    .filter(|r| r.kumori_listener_arn == l.listener_arn)
                    .collect();
                mine.sort_by_key(|r| r.priority.parse::<u32>().unwrap_or(u32::MAX));
                let mut rs: Vec<RuleSpec> = mine
                    .iter()
                    .map(|r| RuleSpec {
                        conditions: r.conditions.clone(),
                        actions: r.actions.clone(),
                    })
                    .collect();
                let d = default_rule(l);
                rs.push(RuleSpec {
                    conditions: vec![],
                    actions: d.actions,
                });
                specs.push(ListenerSpec {
                    arn: l.listener_arn.clone(),
                    port: l.port,
                    protocol: l.protocol.clone(),
                    rules: rs,
                });
            }
            balancers.push(Balancer {
                account: account.clone(),
                region: region.clone(),
                arn: lb.load_balancer_arn.clone(),
                name: lb.load_balancer_name.clone(),
                application: lb.is_application(),
                active: lb.state.code == "active",
                idle_timeout_secs: lb
                    .attribute("idle_timeout.timeout_seconds")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(60),
                listeners: specs,
                nodes: lb.kumori_interfaces.values().cloned().collect(),
            });
        }
        for tg in &tgs {
            let mut targets = Vec::new();
            for t in tg
                .kumori_targets
                .iter()
                .filter(|t| t.kumori_draining_until.is_none_or(|u| u > now))
            {
                let ip = if tg.target_type == "instance" {
                    crate::ec2::api::placement(&ctx, &mut tx, &t.id)
                        .await?
                        .filter(|p| p.state == "running")
                        .map(|p| p.private_ip)
                } else {
                    Some(t.id.clone())
                };
                targets.push(TargetSpec {
                    key: t.key(),
                    ip,
                    port: t.port,
                    draining: t.kumori_draining_until.is_some(),
                });
            }
            let attr = |k: &str| tg.attribute(k).unwrap_or_default().to_string();
            groups.push(GroupSpec {
                account: account.clone(),
                region: region.clone(),
                arn: tg.target_group_arn.clone(),
                protocol: tg.protocol.clone().unwrap_or_default(),
                health_protocol: tg.health_check_protocol.clone(),
                health_port: tg.health_check_port.parse().ok(),
                health_path: tg.health_check_path.clone().unwrap_or_else(|| "/".into()),
                health_enabled: tg.health_check_enabled,
                interval_secs: tg.health_check_interval_seconds.into(),
                timeout_secs: tg.health_check_timeout_seconds.into(),
                healthy_threshold: tg.healthy_threshold_count,
                unhealthy_threshold: tg.unhealthy_threshold_count,
                matcher: tg
                    .matcher
                    .as_ref()
                    .and_then(|m| m.http_code.clone())
                    .unwrap_or_else(|| "200".into()),
                algorithm: attr("load_balancing.algorithm.type"),
                stickiness: attr("stickiness.enabled") == "true",
                stickiness_secs: attr("stickiness.lb_cookie.duration_seconds")
                    .parse()
                    .unwrap_or(86400),
                targets,
            });
        }
    }
    Ok((balancers, groups))
}

/// What a health check found of one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub account: String,
    pub region: String,
    pub group_arn: String,
    pub target_key: String,
    pub health: Health,
}

/// Writes what health checks found, each group in one transaction; only what changed is
/// written, so a steady state costs no writes.
pub async fn record_health(
    store: &Store,
    limits: &crate::Limits,
    found: &[Found],
) -> Result<usize> {
    let mut by_group: BTreeMap<(&str, &str, &str), Vec<&Found>> = BTreeMap::new();
    for f in found {
        by_group
            .entry((&f.account, &f.region, &f.group_arn))
            .or_default()
            .push(f);
    }
    let mut written = 0;
    for ((account, region, arn), list) in by_group {
        let ctx = Ctx::root(store, account, region, limits);
        let mut tx = store.write().await?;
        let Some(mut tg) = resource::lock::<TargetGroup>(&ctx, &mut tx, arn).await? else {
            continue;
        };
        let mut changed = false;
        for f in list {
            if !tg.kumori_targets.iter().any(|t| t.key() == f.target_key) {
                continue;
            }
            if tg.kumori_health.get(&f.target_key) != Some(&f.health) {
                tg.kumori_health
                    .insert(f.target_key.clone(), f.health.clone());
                changed = true;
                written += 1;
            }
        }
        if changed {
            resource::update(&ctx, &mut tx, &tg).await?;
            tx.commit().await?;
        }
    }
    Ok(written)
}

/// Moves load balancers whose listeners are up from `provisioning` to `active`.
pub async fn activate(
    store: &Store,
    limits: &crate::Limits,
    arns: &[(String, String, String)],
) -> Result<()> {
    for (account, region, arn) in arns {
        let ctx = Ctx::root(store, account, region, limits);
        let mut tx = store.write().await?;
        if let Some(mut lb) = resource::lock::<LoadBalancer>(&ctx, &mut tx, arn).await?
            && lb.state.code == "provisioning"
        {
            lb.state.code = "active".into();
            resource::update(&ctx, &mut tx, &lb).await?;
            tx.commit().await?;
        }
    }
    Ok(())
}

/// Registers instances in target groups (Auto Scaling's attached groups), in the caller's
/// transaction. Groups that are gone are skipped.
pub async fn register_instances(
    ctx: &Ctx<'_>,
    tx: &mut kumori_store::Tx,
    group_arns: &[String],
    instance_ids: &[String],
) -> Result<()> {
    for arn in group_arns {
        let Some(mut tg) = resource::lock::<TargetGroup>(ctx, tx, arn).await? else {
            continue;
        };
        let Some(port) = tg.port else { continue };
        for id in instance_ids {
            let key = format!("{id}:{port}");
            if tg
                .kumori_targets
                .iter()
                .any(|t| t.key() == key && t.kumori_draining_until.is_none())
            {
                continue;
            }
            let zone = crate::ec2::api::placement(ctx, tx, id)
                .await?
                .map(|p| p.availability_zone);
            tg.kumori_targets.retain(|t| t.key() != key);
            tg.kumori_health.remove(&key);
            tg.kumori_targets.push(Target {
                id: id.clone(),
                port,
                availability_zone: zone,
                kumori_draining_until: None,
            });
        }
        resource::update(ctx, tx, &tg).await?;
    }
    Ok(())
}

/// Deregisters instances from target groups, draining them for the group's delay.
pub async fn deregister_instances(
    ctx: &Ctx<'_>,
    tx: &mut kumori_store::Tx,
    group_arns: &[String],
    instance_ids: &[String],
) -> Result<()> {
    let now = kumori_protocol::time::now_unix();
    for arn in group_arns {
        let Some(mut tg) = resource::lock::<TargetGroup>(ctx, tx, arn).await? else {
            continue;
        };
        let delay: u64 = tg
            .attribute("deregistration_delay.timeout_seconds")
            .and_then(|v| v.parse().ok())
            .unwrap_or(300);
        let mut changed = false;
        for t in tg.kumori_targets.iter_mut() {
            if instance_ids.contains(&t.id) && t.kumori_draining_until.is_none() {
                t.kumori_draining_until = Some(now + delay);
                changed = true;
            }
        }
        if delay == 0 {
            tg.kumori_targets.retain(|t| !instance_ids.contains(&t.id));
        }
        if changed {
            resource::update(ctx, tx, &tg).await?;
        }
    }
    Ok(())
}

/// Whether a target group exists (Auto Scaling checks the groups it is given).
pub async fn group_exists(ctx: &Ctx<'_>, tx: &mut kumori_store::Tx, arn: &str) -> Result<bool> {
    Ok(resource::get::<TargetGroup>(ctx, tx, arn).await?.is_some())
}

/// The instances that target groups' health checks found unhealthy.
pub async fn unhealthy_instances(
    ctx: &Ctx<'_>,
    tx: &mut kumori_store::Tx,
    group_arns: &[String],
) -> Result<BTreeSet<String>> {
    let now = kumori_protocol::time::now_unix();
    let mut out = BTreeSet::new();
    for arn in group_arns {
        let Some(tg) = resource::get::<TargetGroup>(ctx, tx, arn).await? else {
            continue;
        };
        for t in tg.registered() {
            if health_of(&tg, t, true, None, now).state == "unhealthy" {
                out.insert(t.id.clone());
            }
        }
    }
    Ok(out)
}

/// A load balancer as the reachability analysis follows it: its nodes (interfaces), and
/// for one listener port the targets its rules forward to.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub arn: String,
    pub name: String,
    pub nodes: Vec<String>,
    /// Whether a listener takes the port.
    pub listening: bool,
    /// `(instance id or address, port)` of every registered target the listener can send to.
    pub targets: Vec<(String, u16)>,
}

/// The load balancer `name_or_arn` in the caller's region, followed from `port`.
pub async fn route(ctx: &Ctx<'_>, name_or_arn: &str, port: u16) -> Result<Option<Route>> {
    let mut tx = ctx.store.read().await?;
    let lbs: Vec<LoadBalancer> = resource::list(ctx, &mut tx).await?;
    let Some(lb) = lbs
        .into_iter()
        .find(|l| l.load_balancer_arn == name_or_arn || l.load_balancer_name == name_or_arn)
    else {
        return Ok(None);
    };
    let listeners: Vec<Listener> = resource::children(ctx, &mut tx, &lb.load_balancer_arn).await?;
    let listener = listeners.iter().find(|l| l.port == port);
    let mut groups: BTreeSet<String> = BTreeSet::new();
    if let Some(l) = listener {
        let rules: Vec<Rule> = resource::children(ctx, &mut tx, &l.listener_arn).await?;
        for actions in rules.iter().map(|r| &r.actions).chain([&l.default_actions]) {
            for a in actions {
                groups.extend(super::listeners::target_groups_of(a).map(str::to_string));
            }
        }
    }
    let mut targets = Vec::new();
    for g in groups {
        if let Some(tg) = resource::get::<TargetGroup>(ctx, &mut tx, &g).await? {
            targets.extend(tg.registered().map(|t| (t.id.clone(), t.port)));
        }
    }
    Ok(Some(Route {
        arn: lb.load_balancer_arn.clone(),
        name: lb.load_balancer_name.clone(),
        nodes: lb.kumori_interfaces.values().cloned().collect(),
        listening: listener.is_some(),
        targets,
    }))
}
