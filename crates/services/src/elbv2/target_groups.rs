//! Target groups, the targets registered in them, and their health as the load balancer's
//! health checks found it (written by the server's reconciler into `health`).

use super::load_balancers::internal;
use super::{
    Attribute, TG, apply_attributes, arn, attributes_shown, check_tags, page, store_tags, suffix,
    tg_not_found, validation,
};
use crate::ec2::api;
use crate::kit::Tag;
use crate::resource::{self, Resource};
use crate::{Ctx, Error, Result, input};
use kumori_store::Tx;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TargetGroup {
    pub target_group_arn: String,
    pub target_group_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
    pub health_check_protocol: String,
    pub health_check_port: String,
    pub health_check_enabled: bool,
    pub health_check_interval_seconds: u32,
    pub health_check_timeout_seconds: u32,
    pub healthy_threshold_count: u32,
    pub unhealthy_threshold_count: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_check_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matcher: Option<Matcher>,
    pub target_type: String,
    pub ip_address_type: String,
    #[serde(default)]
    pub kumori_attributes: BTreeMap<String, String>,
    #[serde(default)]
    pub kumori_targets: Vec<Target>,
    /// What health checks last found, by target key (`id:port`).
    #[serde(default)]
    pub kumori_health: BTreeMap<String, Health>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Matcher {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc_code: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Target {
    pub id: String,
    pub port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    /// When deregistration ends (unix seconds); `None` while registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kumori_draining_until: Option<u64>,
}

impl Target {
    pub fn key(&self) -> String {
        format!("{}:{}", self.id, self.port)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl Resource for TargetGroup {
    const KIND: &'static str = TG;
    fn id(&self) -> &str {
        &self.target_group_arn
    }
}

impl TargetGroup {
    pub fn defaults(&self) -> &'static [(&'static str, &'static str)] {
        match self.protocol.as_deref() {
            Some("HTTP" | "HTTPS") => HTTP_ATTRIBUTES,
            _ => TCP_ATTRIBUTES,
        }
    }
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.kumori_attributes
            .get(key)
            .map(String::as_str)
            .or_else(|| {
                self.defaults()
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| *v)
            })
    }
    /// Targets registered now (not draining, not drained).
    pub fn registered(&self) -> impl Iterator<Item = &Target> {
        self.kumori_targets
            .iter()
            .filter(|t| t.kumori_draining_until.is_none())
    }
    fn drop_drained(&mut self, now: u64) {
        self.kumori_targets
            .retain(|t| t.kumori_draining_until.is_none_or(|u| u > now));
        let keys: Vec<String> = self.kumori_targets.iter().map(Target::key).collect();
        self.kumori_health.retain(|k, _| keys.contains(k));
    }
}

/// The attributes of an HTTP(S) target group and their defaults.
pub const HTTP_ATTRIBUTES: &[(&str, &str)] = &[
    ("deregistration_delay.timeout_seconds", "300"),
    ("load_balancing.algorithm.anomaly_mitigation", "off"),
    ("load_balancing.algorithm.type", "round_robin"),
    (
        "load_balancing.cross_zone.enabled",
        "use_load_balancer_configuration",
    ),
    ("slow_start.duration_seconds", "0"),
    ("stickiness.app_cookie.cookie_name", ""),
    ("stickiness.app_cookie.duration_seconds", "86400"),
    ("stickiness.enabled", "false"),
    ("stickiness.lb_cookie.duration_seconds", "86400"),
    ("stickiness.type", "lb_cookie"),
    (
        "target_group_health.dns_failover.minimum_healthy_targets.count",
        "1",
    ),
    (
        "target_group_health.dns_failover.minimum_healthy_targets.percentage",
        "off",
    ),
    (
        "target_group_health.unhealthy_state_routing.minimum_healthy_targets.count",
        "1",
    ),
    (
        "target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage",
        "off",
    ),
];

/// The attributes of a TCP, TLS or UDP target group and their defaults.
pub const TCP_ATTRIBUTES: &[(&str, &str)] = &[
    (
        "deregistration_delay.connection_termination.enabled",
        "false",
    ),
    ("deregistration_delay.timeout_seconds", "300"),
    (
        "load_balancing.cross_zone.enabled",
        "use_load_balancer_configuration",
    ),
    ("preserve_client_ip.enabled", "true"),
    ("proxy_protocol_v2.enabled", "false"),
    ("stickiness.enabled", "false"),
    ("stickiness.type", "source_ip"),
    (
        "target_group_health.dns_failover.minimum_healthy_targets.count",
        "1",
    ),
    (
        "target_group_health.dns_failover.minimum_healthy_targets.percentage",
        "off",
    ),
    (
        "target_group_health.unhealthy_state_routing.minimum_healthy_targets.count",
        "1",
    ),
    (
        "target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage",
        "off",
    ),
    (
        "target_health_state.unhealthy.connection_termination.enabled",
        "true",
    ),
    (
        "target_health_state.unhealthy.draining_interval_seconds",
        "0",
    ),
];

pub const OPERATIONS: &[crate::kit::Op] = crate::operations![
    "CreateTargetGroup" => create_target_group,
    "DescribeTargetGroups" => describe_target_groups,
    "ModifyTargetGroup" => modify_target_group,
    "DeleteTargetGroup" => delete_target_group,
    "DescribeTargetGroupAttributes" => describe_target_group_attributes,
    "ModifyTargetGroupAttributes" => modify_target_group_attributes,
    "RegisterTargets" => register_targets,
    "DeregisterTargets" => deregister_targets,
    "DescribeTargetHealth" => describe_target_health,
];

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HealthSettings {
    health_check_protocol: Option<String>,
    health_check_port: Option<String>,
    health_check_enabled: Option<bool>,
    health_check_path: Option<String>,
    health_check_interval_seconds: Option<u32>,
    health_check_timeout_seconds: Option<u32>,
    healthy_threshold_count: Option<u32>,
    unhealthy_threshold_count: Option<u32>,
    matcher: Option<Matcher>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateRequest {
    name: String,
    protocol: Option<String>,
    protocol_version: Option<String>,
    port: Option<u16>,
    vpc_id: Option<String>,
    target_type: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
    ip_address_type: Option<String>,
    #[serde(flatten)]
    health: HealthSettings,
}

fn http_like(protocol: &str) -> bool {
    matches!(protocol, "HTTP" | "HTTPS")
}

/// Applies health-check settings over `tg`'s, with ELBv2's checks of each.
fn apply_health(tg: &mut TargetGroup, h: HealthSettings) -> Result<()> {
    if let Some(p) = h.health_check_protocol {
        if tg.protocol.as_deref().is_some_and(http_like) && p == "TCP" {
            return Err(validation(
                "Health check protocol 'TCP' is not supported for target groups with protocol HTTP or HTTPS",
            ));
        }
        tg.health_check_protocol = p;
    }
    if let Some(p) = h.health_check_port {
        if p != "traffic-port" && !p.parse::<u16>().is_ok_and(|n| n > 0) {
            return Err(validation(format!(
                "Health check port '{p}' must be 'traffic-port' or a port between 1 and 65535"
            )));
        }
        tg.health_check_port = p;
    }
    if let Some(e) = h.health_check_enabled {
        tg.health_check_enabled = e;
    }
    if let Some(p) = h.health_check_path {
        if !p.starts_with('/') {
            return Err(validation(
                "Health check path must begin with a '/' character",
            ));
        }
        tg.health_check_path = Some(p);
    }
    if let Some(i) = h.health_check_interval_seconds {
        tg.health_check_interval_seconds = i;
    }
    if let Some(t) = h.health_check_timeout_seconds {
        tg.health_check_timeout_seconds = t;
    }
    if let Some(n) = h.healthy_threshold_count {
        tg.healthy_threshold_count = n;
    }
    if let Some(n) = h.unhealthy_threshold_count {
        tg.unhealthy_threshold_count = n;
    }
    if let Some(m) = h.matcher {
        tg.matcher = Some(m);
    }
    if tg.health_check_timeout_seconds >= tg.health_check_interval_seconds {
        return Err(validation(format!(
            "Health check interval '{}' must be greater than the timeout '{}'",
            tg.health_check_interval_seconds, tg.health_check_timeout_seconds
        )));
    }
    if !http_like(&tg.health_check_protocol) {
        tg.health_check_path = None;
        tg.matcher = None;
    } else if tg.health_check_path.is_none() {
        tg.health_check_path = Some("/".into());
    }
    Ok(())
}

pub async fn create_target_group(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: CreateRequest = input(raw)?;
    super::load_balancers::check_name("Target group", &req.name)?;
    check_tags(&req.tags)?;
    let target_type = req.target_type.clone().unwrap_or_else(|| "instance".into());
    match target_type.as_str() {
        "instance" | "ip" => {}
        "lambda" | "alb" => {
            return Err(Error(kumori_protocol::AwsError::not_implemented(
                "elbv2",
                &format!("CreateTargetGroup with target type {target_type}"),
            )));
        }
        other => return Err(validation(format!("Target type '{other}' is not valid"))),
    }
    let protocol = req
        .protocol
        .clone()
        .ok_or_else(|| validation("A protocol must be specified"))?;
    let port = req
        .port
        .ok_or_else(|| validation("A port must be specified"))?;
    let vpc_id = req
        .vpc_id
        .clone()
        .ok_or_else(|| validation("A VPC ID must be specified"))?;
    let http = http_like(&protocol);
    let mut tg = TargetGroup {
        target_group_arn: String::new(),
        target_group_name: req.name.clone(),
        protocol: Some(protocol.clone()),
        // An empty version (what Terraform sends when none is set) is the default, HTTP1.
        protocol_version: http.then(|| {
            req.protocol_version
                .clone()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "HTTP1".into())
        }),
        port: Some(port),
        vpc_id: Some(vpc_id.clone()),
        health_check_protocol: if http { protocol.clone() } else { "TCP".into() },
        health_check_port: "traffic-port".into(),
        health_check_enabled: true,
        health_check_interval_seconds: 30,
        health_check_timeout_seconds: if http { 5 } else { 10 },
        healthy_threshold_count: 5,
        unhealthy_threshold_count: 2,
        health_check_path: None,
        matcher: http.then(|| Matcher {
            http_code: Some("200".into()),
            grpc_code: None,
        }),
        target_type,
        ip_address_type: req.ip_address_type.clone().unwrap_or_else(|| "ipv4".into()),
        kumori_attributes: BTreeMap::new(),
        kumori_targets: vec![],
        kumori_health: BTreeMap::new(),
    };
    apply_health(&mut tg, req.health)?;
    if tg.health_check_protocol.starts_with("HTTP") && tg.matcher.is_none() {
        tg.matcher = Some(Matcher {
            http_code: Some("200".into()),
            grpc_code: None,
        });
    }
    let mut tx = ctx.store.write().await?;
    if !api::vpc_exists(ctx, &mut tx, &vpc_id).await? {
        return Err(validation(format!("The VPC ID '{vpc_id}' is not found")));
    }
    let same: Vec<TargetGroup> =
        resource::find_where(ctx, &mut tx, "TargetGroupName", req.name.as_str()).await?;
    if let Some(old) = same.into_iter().next() {
        if old.protocol == tg.protocol
            && old.port == tg.port
            && old.vpc_id == tg.vpc_id
            && old.target_type == tg.target_type
        {
            return Ok(json!({ "TargetGroups": [shown(ctx, &mut tx, &old).await?] }));
        }
        return Err(Error::new(
            "DuplicateTargetGroupName",
            format!(
                "A target group with the same name '{}' exists, but with different settings",
                req.name
            ),
        ));
    }
    if tx.count(ctx.scope(), TG).await? >= 3000 {
        return Err(Error::new(
            "TooManyTargetGroups",
            "The quota of target groups per Region (3000) has been reached",
        ));
    }
    tg.target_group_arn = arn(ctx, &format!("targetgroup/{}/{}", req.name, suffix()));
    resource::insert(ctx, &mut tx, &tg).await?;
    store_tags(ctx, &mut tx, &tg.target_group_arn, TG, &req.tags).await?;
    let out = shown(ctx, &mut tx, &tg).await?;
    tx.commit().await?;
    Ok(json!({ "TargetGroups": [out] }))
}

/// The load balancers whose listeners or rules forward to target group `arn`.
pub(crate) async fn load_balancers_of(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    arn: &str,
) -> Result<Vec<String>> {
    let mut out = std::collections::BTreeSet::new();
    for l in resource::list::<super::listeners::Listener>(ctx, tx).await? {
        if super::listeners::actions_name(&l.default_actions, arn) {
            out.insert(l.load_balancer_arn.clone());
        }
    }
    for r in resource::list::<super::listeners::Rule>(ctx, tx).await? {
        if super::listeners::actions_name(&r.actions, arn) {
            out.insert(r.kumori_load_balancer_arn.clone());
        }
    }
    Ok(out.into_iter().collect())
}

async fn shown(ctx: &Ctx<'_>, tx: &mut Tx, tg: &TargetGroup) -> Result<Value> {
    let mut v = serde_json::to_value(tg).map_err(internal)?;
    v["LoadBalancerArns"] = json!(load_balancers_of(ctx, tx, &tg.target_group_arn).await?);
    Ok(v)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeRequest {
    load_balancer_arn: Option<String>,
    #[serde(default)]
    target_group_arns: Vec<String>,
    #[serde(default)]
    names: Vec<String>,
    marker: Option<String>,
    page_size: Option<i64>,
}

pub async fn describe_target_groups(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DescribeRequest = input(raw)?;
    let mut tx = ctx.store.read().await?;
    let all: Vec<TargetGroup> = resource::list(ctx, &mut tx).await?;
    let mut chosen: Vec<&TargetGroup> = Vec::new();
    if !req.target_group_arns.is_empty() {
        for a in &req.target_group_arns {
            chosen.push(
                all.iter()
                    .find(|t| &t.target_group_arn == a)
                    .ok_or_else(tg_not_found)?,
            );
        }
    } else if !req.names.is_empty() {
        for n in &req.names {
            chosen.push(
                all.iter()
                    .find(|t| &t.target_group_name == n)
                    .ok_or_else(|| {
                        Error::new(
                            "TargetGroupNotFound",
                            format!("Target groups '[{n}]' not found"),
                        )
                    })?,
            );
        }
    } else {
        chosen.extend(all.iter());
    }
    let mut items = Vec::new();
    for tg in chosen {
        let v = shown(ctx, &mut tx, tg).await?;
        if let Some(lb) = &req.load_balancer_arn
            && !v["LoadBalancerArns"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == lb.as_str()))
        {
            continue;
        }
        items.push((tg.target_group_name.clone(), v));
    }
    if let Some(lb) = &req.load_balancer_arn
        && resource::get::<super::load_balancers::LoadBalancer>(ctx, &mut tx, lb)
            .await?
            .is_none()
    {
        return Err(super::lb_not_found());
    }
    Ok(page(
        items,
        req.marker.as_deref(),
        req.page_size,
        "TargetGroups",
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct OneRequest {
    target_group_arn: String,
    #[serde(default)]
    attributes: Vec<Attribute>,
    #[serde(default)]
    targets: Vec<TargetDescription>,
    #[serde(flatten)]
    health: HealthSettings,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TargetDescription {
    id: String,
    port: Option<u16>,
    availability_zone: Option<String>,
}

pub(crate) async fn locked(ctx: &Ctx<'_>, tx: &mut Tx, arn: &str) -> Result<TargetGroup> {
    resource::lock(ctx, tx, arn).await?.ok_or_else(tg_not_found)
}

pub async fn modify_target_group(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: OneRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let mut tg = locked(ctx, &mut tx, &req.target_group_arn).await?;
    apply_health(&mut tg, req.health)?;
    resource::update(ctx, &mut tx, &tg).await?;
    let out = shown(ctx, &mut tx, &tg).await?;
    tx.commit().await?;
    Ok(json!({ "TargetGroups": [out] }))
}

pub async fn delete_target_group(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: OneRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    if resource::lock::<TargetGroup>(ctx, &mut tx, &req.target_group_arn)
        .await?
        .is_none()
    {
        return Ok(json!({}));
    }
    if !load_balancers_of(ctx, &mut tx, &req.target_group_arn)
        .await?
        .is_empty()
    {
        return Err(Error::new(
            "ResourceInUse",
            format!(
                "Target group '{}' is currently in use by a listener or a rule",
                req.target_group_arn
            ),
        ));
    }
    tx.delete(ctx.scope(), &req.target_group_arn).await?;
    tx.commit().await?;
    Ok(json!({}))
}

pub async fn describe_target_group_attributes(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: OneRequest = input(raw)?;
    let mut tx = ctx.store.read().await?;
    let tg: TargetGroup = resource::get(ctx, &mut tx, &req.target_group_arn)
        .await?
        .ok_or_else(tg_not_found)?;
    Ok(json!({ "Attributes": attributes_shown(tg.defaults(), &tg.kumori_attributes) }))
}

pub async fn modify_target_group_attributes(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: OneRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let mut tg = locked(ctx, &mut tx, &req.target_group_arn).await?;
    let defaults = tg.defaults();
    for a in &req.attributes {
        let ok = match a.key.as_str() {
            "deregistration_delay.timeout_seconds" => {
                a.value.parse::<u32>().is_ok_and(|n| n <= 3600)
            }
            "stickiness.lb_cookie.duration_seconds" | "stickiness.app_cookie.duration_seconds" => a
                .value
                .parse::<u32>()
                .is_ok_and(|n| (1..=604800).contains(&n)),
            "load_balancing.algorithm.type" => {
                matches!(
                    a.value.as_str(),
                    "round_robin" | "least_outstanding_requests" | "weighted_random"
                )
            }
            "stickiness.type" => {
                matches!(
                    a.value.as_str(),
                    "lb_cookie"
                        | "app_cookie"
                        | "source_ip"
                        | "source_ip_dest_ip"
                        | "source_ip_dest_ip_proto"
                )
            }
            k if k.ends_with(".enabled") && k != "load_balancing.cross_zone.enabled" => {
                a.value == "true" || a.value == "false"
            }
            _ => true,
        };
        if !ok {
            return Err(validation(format!(
                "'{}' is not a valid value for target group attribute '{}'",
                a.value, a.key
            )));
        }
    }
    apply_attributes(
        "Target group",
        defaults,
        &mut tg.kumori_attributes,
        &req.attributes,
    )?;
    resource::update(ctx, &mut tx, &tg).await?;
    tx.commit().await?;
    Ok(json!({ "Attributes": attributes_shown(defaults, &tg.kumori_attributes) }))
}

/// Addresses AWS accepts as `ip` targets (the VPC's blocks, RFC 1918 and RFC 6598), and
/// kumori's own: loopback, so that a load balancer can front services on this machine.
fn usable_ip(ip: std::net::Ipv4Addr) -> bool {
    let o = ip.octets();
    ip.is_private() || ip.is_loopback() || (o[0] == 100 && (64..128).contains(&o[1]))
}

pub async fn register_targets(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: OneRequest = input(raw)?;
    let now = kumori_protocol::time::now_unix();
    let mut tx = ctx.store.write().await?;
    let mut tg = locked(ctx, &mut tx, &req.target_group_arn).await?;
    tg.drop_drained(now);
    for t in &req.targets {
        let port = t
            .port
            .or(tg.port)
            .ok_or_else(|| validation("A port must be specified"))?;
        let zone = match tg.target_type.as_str() {
            "instance" => {
                let p = api::placement(ctx, &mut tx, &t.id).await?;
                match p {
                    Some(p) if p.state != "terminated" && p.state != "shutting-down" => {
                        if Some(&p.vpc_id) != tg.vpc_id.as_ref() {
                            return Err(Error::new(
                                "InvalidTarget",
                                format!(
                                    "The following targets are not in the target group's VPC '{}': '{}'",
                                    tg.vpc_id.clone().unwrap_or_default(),
                                    t.id
                                ),
                            ));
                        }
                        Some(p.availability_zone)
                    }
                    _ => {
                        return Err(Error::new(
                            "InvalidTarget",
                            format!("The following targets are not valid instances: '{}'", t.id),
                        ));
                    }
                }
            }
            _ => {
                let ip: std::net::Ipv4Addr = t.id.parse().map_err(|_| {
                    validation(format!(
                        "The IP address '{}' is not a valid IPv4 address",
                        t.id
                    ))
                })?;
                if !usable_ip(ip) {
                    return Err(Error::new(
                        "InvalidTarget",
                        format!(
                            "The IP address '{}' is not within a VPC CIDR or private range",
                            t.id
                        ),
                    ));
                }
                t.availability_zone.clone()
            }
        };
        let target = Target {
            id: t.id.clone(),
            port,
            availability_zone: zone,
            kumori_draining_until: None,
        };
        // Registering again a draining target brings it back.
        tg.kumori_targets.retain(|o| o.key() != target.key());
        tg.kumori_health.remove(&target.key());
        tg.kumori_targets.push(target);
    }
    if tg.registered().count() > 1000 {
        return Err(Error::new(
            "TooManyTargets",
            "You've reached the limit on the number of targets per target group (1000)",
        ));
    }
    resource::update(ctx, &mut tx, &tg).await?;
    tx.commit().await?;
    Ok(json!({}))
}

pub async fn deregister_targets(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: OneRequest = input(raw)?;
    let now = kumori_protocol::time::now_unix();
    let mut tx = ctx.store.write().await?;
    let mut tg = locked(ctx, &mut tx, &req.target_group_arn).await?;
    tg.drop_drained(now);
    let in_use = !load_balancers_of(ctx, &mut tx, &tg.target_group_arn)
        .await?
        .is_empty();
    let delay: u64 = tg
        .attribute("deregistration_delay.timeout_seconds")
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    for d in &req.targets {
        let matches = |t: &Target| t.id == d.id && d.port.is_none_or(|p| p == t.port);
        if !tg.registered().any(matches) {
            return Err(Error::new(
                "InvalidTarget",
                format!(
                    "The following targets are not registered in target group '{}': '{}'",
                    tg.target_group_name, d.id
                ),
            ));
        }
        for t in tg.kumori_targets.iter_mut().filter(|t| matches(t)) {
            t.kumori_draining_until = Some(now + delay);
        }
        // A group no load balancer uses lets its targets go at once.
        if !in_use || delay == 0 {
            tg.kumori_targets.retain(|t| !matches(t));
        }
    }
    tg.drop_drained(now);
    resource::update(ctx, &mut tx, &tg).await?;
    tx.commit().await?;
    Ok(json!({}))
}

/// A target's health as DescribeTargetHealth shows it. `running` answers whether an
/// instance target's instance runs (`None` for ip targets).
pub fn health_of(
    tg: &TargetGroup,
    t: &Target,
    in_use: bool,
    running: Option<bool>,
    now: u64,
) -> Health {
    let h = |state: &str, reason: &str, description: &str| Health {
        state: state.into(),
        reason: Some(reason.into()),
        description: Some(description.into()),
    };
    if t.kumori_draining_until.is_some_and(|u| u > now) {
        return h(
            "draining",
            "Target.DeregistrationInProgress",
            "Target deregistration is in progress",
        );
    }
    if !in_use {
        return h(
            "unused",
            "Target.NotInUse",
            "Target group is not configured to receive traffic from the load balancer",
        );
    }
    if running == Some(false) {
        return h(
            "unused",
            "Target.InvalidState",
            "Target is in the stopped state",
        );
    }
    if !tg.health_check_enabled {
        return h(
            "unavailable",
            "Target.HealthCheckDisabled",
            "Health checks are disabled",
        );
    }
    tg.kumori_health.get(&t.key()).cloned().unwrap_or_else(|| {
        h(
            "initial",
            "Elb.RegistrationInProgress",
            "Target registration is in progress",
        )
    })
}

pub async fn describe_target_health(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: OneRequest = input(raw)?;
    let now = kumori_protocol::time::now_unix();
    let mut tx = ctx.store.read().await?;
    let tg: TargetGroup = resource::get(ctx, &mut tx, &req.target_group_arn)
        .await?
        .ok_or_else(tg_not_found)?;
    let in_use = !load_balancers_of(ctx, &mut tx, &tg.target_group_arn)
        .await?
        .is_empty();
    let live: Vec<&Target> = tg
        .kumori_targets
        .iter()
        .filter(|t| t.kumori_draining_until.is_none_or(|u| u > now))
        .collect();
    let mut out = Vec::new();
    let describe = |t: &Target, running: Option<bool>| {
        let port = if tg.health_check_port == "traffic-port" {
            t.port.to_string()
        } else {
            tg.health_check_port.clone()
        };
        let mut target = json!({ "Id": t.id, "Port": t.port });
        if let Some(z) = &t.availability_zone {
            target["AvailabilityZone"] = json!(z);
        }
        json!({
            "Target": target,
            "HealthCheckPort": port,
            "TargetHealth": health_of(&tg, t, in_use, running, now),
        })
    };
    let running = async |tx: &mut Tx, t: &Target| -> Result<Option<bool>> {
        if tg.target_type != "instance" {
            return Ok(None);
        }
        Ok(Some(api::placement(ctx, tx, &t.id).await?.is_some_and(
            |p| p.state == "running" || p.state == "pending",
        )))
    };
    if req.targets.is_empty() {
        for t in live {
            let r = running(&mut tx, t).await?;
            out.push(describe(t, r));
        }
    } else {
        for d in &req.targets {
            let found: Vec<&&Target> = live
                .iter()
                .filter(|t| t.id == d.id && d.port.is_none_or(|p| p == t.port))
                .collect();
            if found.is_empty() {
                let mut target = json!({ "Id": d.id });
                if let Some(p) = d.port.or(tg.port) {
                    target["Port"] = json!(p);
                }
                out.push(json!({
                    "Target": target,
                    "TargetHealth": {
                        "State": "unavailable",
                        "Reason": "Target.NotRegistered",
                        "Description": "Target is not registered to the target group",
                    },
                }));
            }
            for t in found {
                let r = running(&mut tx, t).await?;
                out.push(describe(t, r));
            }
        }
    }
    Ok(json!({ "TargetHealthDescriptions": out }))
}

/// Rules and listeners name target groups; a group they name must exist and be usable by
/// the load balancer: same VPC, and used by no other load balancer if it is an ALB's.
pub(crate) async fn check_usable(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    tg_arn: &str,
    lb: &super::load_balancers::LoadBalancer,
) -> Result<TargetGroup> {
    let tg: TargetGroup = resource::get(ctx, tx, tg_arn)
        .await?
        .ok_or_else(tg_not_found)?;
    if tg.vpc_id.as_deref() != Some(lb.vpc_id.as_str()) {
        return Err(super::invalid_config(format!(
            "The target group '{tg_arn}' is not in the load balancer's VPC '{}'",
            lb.vpc_id
        )));
    }
    let http = tg.protocol.as_deref().is_some_and(http_like);
    if http != lb.is_application() {
        return Err(Error::new(
            "IncompatibleProtocols",
            format!(
                "The protocol of target group '{tg_arn}' is not supported by a load balancer of type '{}'",
                lb.kind
            ),
        ));
    }
    let users = load_balancers_of(ctx, tx, tg_arn).await?;
    if users.iter().any(|u| u != &lb.load_balancer_arn) {
        return Err(Error::new(
            "TargetGroupAssociationLimit",
            format!(
                "The following target groups cannot be associated with more than one load balancer: '{tg_arn}'"
            ),
        ));
    }
    Ok(tg)
}
