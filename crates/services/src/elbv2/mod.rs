//! Elastic Load Balancing v2: application and network load balancers, their listeners and
//! rules, target groups and the targets registered in them, one file per family.
//!
//! Everything is kept in the request's account and region under its ARN (the store's id),
//! as ELBv2 names everything by ARN. The records are what the control plane answers; the
//! proxies that carry the traffic (crate `kumori-lb`) are driven from them by the server's
//! reconciler, which also writes back what health checks found (`TargetGroup::health`) and
//! moves new load balancers from `provisioning` to `active` once their listeners are up.

pub mod api;
pub mod listeners;
pub mod load_balancers;
pub mod target_groups;

use crate::kit::Tag;
use crate::{Ctx, Error, Result, input};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub static SERVICE: crate::kit::Service = crate::kit::Service {
    name: "elbv2",
    tables: &[
        load_balancers::OPERATIONS,
        target_groups::OPERATIONS,
        listeners::OPERATIONS,
        OPERATIONS,
    ],
    before: None,
    region: None,
    resources: Some(resources),
};

pub const OPERATIONS: &[crate::kit::Op] = crate::operations![
    "AddTags" => add_tags,
    "RemoveTags" => remove_tags,
    "DescribeTags" => describe_tags,
    "DescribeAccountLimits" => describe_account_limits,
];

/// The store's kinds (also the tags table's resource types).
pub(crate) const LB: &str = "elbv2-load-balancer";
pub(crate) const TG: &str = "elbv2-target-group";
pub(crate) const LISTENER: &str = "elbv2-listener";
pub(crate) const RULE: &str = "elbv2-rule";

/// ELBv2's quotas, as DescribeAccountLimits shows them (AWS's defaults).
const LIMITS: &[(&str, u32)] = &[
    ("application-load-balancers", 50),
    ("listeners-per-application-load-balancer", 50),
    ("listeners-per-network-load-balancer", 50),
    ("network-load-balancers", 50),
    ("rules-per-application-load-balancer", 100),
    ("target-groups", 3000),
    ("targets-per-application-load-balancer", 1000),
    ("targets-per-network-load-balancer", 3000),
    ("certificates-per-application-load-balancer", 25),
];
pub(crate) const MAX_TAGS: usize = 50;

/// The 16 hex digits that end ELBv2's ARNs.
pub(crate) fn suffix() -> String {
    use rand::Rng;
    format!("{:016x}", rand::rng().random::<u64>())
}

pub(crate) fn arn(ctx: &Ctx<'_>, resource: &str) -> String {
    crate::resource::arn("elasticloadbalancing", ctx.region, ctx.account, resource)
}

pub(crate) fn validation(message: impl Into<String>) -> Error {
    Error::new("ValidationError", message)
}

pub(crate) fn invalid_config(message: impl Into<String>) -> Error {
    Error::new("InvalidConfigurationRequest", message)
}

pub(crate) fn lb_not_found() -> Error {
    Error::new(
        "LoadBalancerNotFound",
        "One or more load balancers not found",
    )
}

pub(crate) fn tg_not_found() -> Error {
    Error::new("TargetGroupNotFound", "One or more target groups not found")
}

pub(crate) fn listener_not_found() -> Error {
    Error::new("ListenerNotFound", "One or more listeners not found")
}

pub(crate) fn rule_not_found() -> Error {
    Error::new("RuleNotFound", "One or more rules not found")
}

/// An attribute as ELBv2 lists them.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Attribute {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

/// The attributes shown: the defaults, overridden by what was set.
pub(crate) fn attributes_shown(defaults: &[(&str, &str)], set: &BTreeMap<String, String>) -> Value {
    let mut all: BTreeMap<&str, &str> = defaults.iter().copied().collect();
    for (k, v) in set {
        all.insert(k, v);
    }
    Value::Array(
        all.into_iter()
            .map(|(k, v)| json!({ "Key": k, "Value": v }))
            .collect(),
    )
}

/// Applies `changes` to `set`, refusing keys the resource does not have.
pub(crate) fn apply_attributes(
    what: &str,
    defaults: &[(&str, &str)],
    set: &mut BTreeMap<String, String>,
    changes: &[Attribute],
) -> Result<()> {
    for a in changes {
        if !defaults.iter().any(|(k, _)| *k == a.key) {
            return Err(validation(format!(
                "{what} attribute key '{}' is not recognized",
                a.key
            )));
        }
    }
    for a in changes {
        set.insert(a.key.clone(), a.value.clone());
    }
    Ok(())
}

pub(crate) fn bool_attribute(
    defaults: &[(&str, &str)],
    set: &BTreeMap<String, String>,
    key: &str,
) -> bool {
    let default = defaults.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
    set.get(key).map(String::as_str).or(default) == Some("true")
}

/// The store's kind of the resource an ARN names.
fn kind_of_arn(arn: &str) -> Option<&'static str> {
    let resource = arn.splitn(6, ':').nth(5)?;
    match resource.split('/').next()? {
        "loadbalancer" => Some(LB),
        "targetgroup" => Some(TG),
        "listener" => Some(LISTENER),
        "listener-rule" => Some(RULE),
        _ => None,
    }
}

fn not_found_for(arn: &str) -> Error {
    match kind_of_arn(arn) {
        Some(LB) => lb_not_found(),
        Some(TG) => tg_not_found(),
        Some(LISTENER) => listener_not_found(),
        Some(RULE) => rule_not_found(),
        _ => validation(format!("'{arn}' is not a valid resource ARN")),
    }
}

/// Tags given at creation, checked as AddTags checks them.
pub(crate) fn check_tags(tags: &[Tag]) -> Result<()> {
    let mut keys = std::collections::HashSet::new();
    for t in tags {
        if !keys.insert(t.key.as_str()) {
            return Err(Error::new(
                "DuplicateTagKeys",
                format!("Tag key '{}' is duplicated", t.key),
            ));
        }
        if t.key.starts_with("aws:") {
            return Err(validation(
                "Tag keys starting with 'aws:' are reserved for internal use",
            ));
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(Error::new(
            "TooManyTags",
            format!("The number of tags cannot exceed {MAX_TAGS}"),
        ));
    }
    Ok(())
}

pub(crate) async fn store_tags(
    ctx: &Ctx<'_>,
    tx: &mut kumori_store::Tx,
    arn: &str,
    kind: &str,
    tags: &[Tag],
) -> Result<()> {
    let pairs: Vec<(String, String)> = tags
        .iter()
        .map(|t| (t.key.clone(), t.value.clone()))
        .collect();
    tx.set_tags(ctx.scope(), arn, kind, &pairs).await?;
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagsRequest {
    resource_arns: Vec<String>,
    #[serde(default)]
    tags: Vec<Tag>,
    #[serde(default)]
    tag_keys: Vec<String>,
}

async fn existing(ctx: &Ctx<'_>, tx: &mut kumori_store::Tx, arn: &str) -> Result<&'static str> {
    let kind = kind_of_arn(arn).ok_or_else(|| not_found_for(arn))?;
    match tx.get(ctx.scope(), arn).await? {
        Some(r) if r.kind == kind => Ok(kind),
        _ => Err(not_found_for(arn)),
    }
}

pub async fn add_tags(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: TagsRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    for arn in &req.resource_arns {
        let kind = existing(ctx, &mut tx, arn).await?;
        let mut tags = crate::kit::tags_of(&mut tx, ctx.scope(), arn).await?;
        for t in &req.tags {
            match tags.iter_mut().find(|o| o.key == t.key) {
                Some(o) => o.value = t.value.clone(),
                None => tags.push(t.clone()),
            }
        }
        check_tags(&tags)?;
        store_tags(ctx, &mut tx, arn, kind, &tags).await?;
    }
    tx.commit().await?;
    Ok(json!({}))
}

pub async fn remove_tags(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: TagsRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    for arn in &req.resource_arns {
        existing(ctx, &mut tx, arn).await?;
        for key in &req.tag_keys {
            tx.delete_tag(ctx.scope(), arn, key, None).await?;
        }
    }
    tx.commit().await?;
    Ok(json!({}))
}

pub async fn describe_tags(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: TagsRequest = input(raw)?;
    let mut tx = ctx.store.read().await?;
    let mut out = Vec::new();
    for arn in &req.resource_arns {
        existing(ctx, &mut tx, arn).await?;
        let tags = crate::kit::tags_of(&mut tx, ctx.scope(), arn).await?;
        out.push(json!({ "ResourceArn": arn, "Tags": tags }));
    }
    Ok(json!({ "TagDescriptions": out }))
}

pub async fn describe_account_limits(_ctx: &Ctx<'_>, _raw: &Value) -> Result<Value> {
    let limits: Vec<Value> = LIMITS
        .iter()
        .map(|(name, max)| json!({ "Name": name, "Max": max.to_string() }))
        .collect();
    Ok(json!({ "Limits": limits }))
}

/// One page of a describe (`Marker`, `PageSize` up to 400), items in `key` order.
pub(crate) fn page(
    mut items: Vec<(String, Value)>,
    marker: Option<&str>,
    page_size: Option<i64>,
    member: &str,
) -> Value {
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let max = page_size.map(|n| n.clamp(1, 400) as usize);
    let (shown, last) = crate::kit::page(items, |(k, _)| k.clone(), marker, max);
    let shown: Vec<Value> = shown.into_iter().map(|(_, v)| v).collect();
    let mut out = json!({ member: shown });
    if let Some(m) = last {
        out["NextMarker"] = json!(m);
    }
    out
}

/// The ARNs a call acts on, for `--auth enforce`: those it names.
fn resources(_ctx: &Ctx<'_>, _caller: &crate::Caller, call: &kumori_protocol::Call) -> Vec<String> {
    let mut out = Vec::new();
    for key in [
        "LoadBalancerArn",
        "TargetGroupArn",
        "ListenerArn",
        "RuleArn",
    ] {
        if let Some(a) = call.input[key].as_str() {
            out.push(a.to_string());
        }
    }
    for key in [
        "LoadBalancerArns",
        "TargetGroupArns",
        "ResourceArns",
        "RuleArns",
        "ListenerArns",
    ] {
        if let Some(list) = call.input[key].as_array() {
            out.extend(list.iter().filter_map(|v| v.as_str().map(str::to_string)));
        }
    }
    if out.is_empty() {
        out.push("*".into());
    }
    out
}
