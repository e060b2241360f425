//! Listeners and their rules. A listener's default actions are its default rule, which
//! DescribeRules shows as `IsDefault` with priority `default`; other rules are records of
//! their own under the listener.

use super::load_balancers::{LoadBalancer, internal};
use super::{
    Attribute, LISTENER, RULE, apply_attributes, attributes_shown, check_tags, invalid_config,
    listener_not_found, page, rule_not_found, store_tags, suffix, validation,
};
use crate::kit::Tag;
use crate::resource::{self, Resource};
use crate::{Ctx, Error, Result, input};
use kumori_store::Tx;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Listener {
    pub listener_arn: String,
    pub load_balancer_arn: String,
    pub port: u16,
    pub protocol: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_policy: Option<String>,
    pub default_actions: Vec<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alpn_policy: Vec<String>,
    /// Certificates added with AddListenerCertificates (beside the default one).
    #[serde(default)]
    pub kumori_extra_certificates: Vec<String>,
    #[serde(default)]
    pub kumori_attributes: BTreeMap<String, String>,
}

impl Resource for Listener {
    const KIND: &'static str = LISTENER;
    fn id(&self) -> &str {
        &self.listener_arn
    }
    fn parent(&self) -> Option<&str> {
        Some(&self.load_balancer_arn)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Rule {
    pub rule_arn: String,
    pub priority: String,
    pub conditions: Vec<Value>,
    pub actions: Vec<Value>,
    pub is_default: bool,
    pub kumori_listener_arn: String,
    pub kumori_load_balancer_arn: String,
}

impl Resource for Rule {
    const KIND: &'static str = RULE;
    fn id(&self) -> &str {
        &self.rule_arn
    }
    fn parent(&self) -> Option<&str> {
        Some(&self.kumori_listener_arn)
    }
}

const HTTP_LISTENER_ATTRIBUTES: &[(&str, &str)] = &[
    (
        "routing.http.request.x_amzn_mtls_clientcert.header_name",
        "",
    ),
    ("routing.http.response.server.enabled", "true"),
    (
        "routing.http.response.strict_transport_security.header_value",
        "",
    ),
    (
        "routing.http.response.x_content_type_options.header_value",
        "",
    ),
    ("routing.http.response.x_frame_options.header_value", ""),
];
const TCP_LISTENER_ATTRIBUTES: &[(&str, &str)] = &[("tcp.idle_timeout.seconds", "350")];

pub const OPERATIONS: &[crate::kit::Op] = crate::operations![
    "CreateListener" => create_listener,
    "DescribeListeners" => describe_listeners,
    "ModifyListener" => modify_listener,
    "DeleteListener" => delete_listener,
    "DescribeListenerAttributes" => describe_listener_attributes,
    "ModifyListenerAttributes" => modify_listener_attributes,
    "DescribeListenerCertificates" => describe_listener_certificates,
    "AddListenerCertificates" => add_listener_certificates,
    "RemoveListenerCertificates" => remove_listener_certificates,
    "CreateRule" => create_rule,
    "DescribeRules" => describe_rules,
    "ModifyRule" => modify_rule,
    "DeleteRule" => delete_rule,
    "SetRulePriorities" => set_rule_priorities,
];

/// Whether `actions` forward to target group `arn`.
pub(crate) fn actions_name(actions: &[Value], arn: &str) -> bool {
    actions
        .iter()
        .any(|a| target_groups_of(a).any(|t| t == arn))
}

/// The target groups an action forwards to.
pub fn target_groups_of(action: &Value) -> impl Iterator<Item = &str> {
    let single = action["TargetGroupArn"].as_str();
    let weighted = action["ForwardConfig"]["TargetGroups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["TargetGroupArn"].as_str());
    single.into_iter().chain(weighted)
}

/// Checks and completes actions as ELBv2 stores them: a forward names its groups both ways
/// (`TargetGroupArn` for one, `ForwardConfig` always), a redirect's parts default to the
/// request's own, actions come in their `Order`.
async fn normalize_actions(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    lb: &LoadBalancer,
    actions: &[Value],
) -> Result<Vec<Value>> {
    if actions.is_empty() {
        return Err(validation("At least one action must be specified"));
    }
    let mut out = Vec::new();
    for (i, a) in actions.iter().enumerate() {
        let mut a = a.clone();
        let kind = a["Type"].as_str().unwrap_or_default().to_string();
        match kind.as_str() {
            "forward" => {
                let mut groups: Vec<(String, i64)> = a["ForwardConfig"]["TargetGroups"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|t| {
                        Some((
                            t["TargetGroupArn"].as_str()?.to_string(),
                            t["Weight"].as_i64().unwrap_or(1),
                        ))
                    })
                    .collect();
                if let Some(single) = a["TargetGroupArn"].as_str() {
                    if groups.is_empty() {
                        groups.push((single.to_string(), 1));
                    } else if groups.len() > 1 || groups[0].0 != single {
                        return Err(validation(
                            "You cannot specify both a target group ARN and a forward config with different target groups",
                        ));
                    }
                }
                if groups.is_empty() {
                    return Err(validation(
                        "A target group ARN must be specified for a forward action",
                    ));
                }
                if groups.len() > 5 {
                    return Err(validation(
                        "A forward action can have at most 5 target groups",
                    ));
                }
                for (g, w) in &groups {
                    if !(0..=999).contains(w) {
                        return Err(validation(format!(
                            "The weight of target group '{g}' must be between 0 and 999"
                        )));
                    }
                    super::target_groups::check_usable(ctx, tx, g, lb).await?;
                }
                let stickiness = a["ForwardConfig"]["TargetGroupStickinessConfig"].clone();
                let stickiness = if stickiness.is_object() {
                    stickiness
                } else {
                    json!({ "Enabled": false })
                };
                if groups.len() == 1 {
                    a["TargetGroupArn"] = json!(groups[0].0);
                } else if let Some(o) = a.as_object_mut() {
                    o.remove("TargetGroupArn");
                }
                a["ForwardConfig"] = json!({
                    "TargetGroups": groups
                        .iter()
                        .map(|(g, w)| json!({ "TargetGroupArn": g, "Weight": w }))
                        .collect::<Vec<_>>(),
                    "TargetGroupStickinessConfig": stickiness,
                });
            }
            "redirect" => {
                if !lb.is_application() {
                    return Err(Error::new(
                        "InvalidLoadBalancerAction",
                        "Redirect actions are only supported by Application Load Balancers",
                    ));
                }
                let r = &mut a["RedirectConfig"];
                if !r.is_object() || r["StatusCode"].as_str().is_none() {
                    return Err(validation(
                        "A redirect action needs a redirect config with a status code",
                    ));
                }
                for (k, d) in [
                    ("Protocol", "#{protocol}"),
                    ("Port", "#{port}"),
                    ("Host", "#{host}"),
                    ("Path", "/#{path}"),
                    ("Query", "#{query}"),
                ] {
                    if r[k].is_null() {
                        r[k] = json!(d);
                    }
                }
            }
            "fixed-response" => {
                if !lb.is_application() {
                    return Err(Error::new(
                        "InvalidLoadBalancerAction",
                        "Fixed-response actions are only supported by Application Load Balancers",
                    ));
                }
                let f = &a["FixedResponseConfig"];
                let code = f["StatusCode"].as_str().unwrap_or_default();
                if !(code.len() == 3
                    && (code.starts_with('2') || code.starts_with('4') || code.starts_with('5')))
                {
                    return Err(validation(format!(
                        "Fixed response status code '{code}' must be 2XX, 4XX or 5XX"
                    )));
                }
                if f["MessageBody"].as_str().is_some_and(|b| b.len() > 1024) {
                    return Err(validation(
                        "A fixed response body can be at most 1024 characters",
                    ));
                }
            }
            "authenticate-oidc" | "authenticate-cognito" | "jwt-validation" => {
                return Err(Error(kumori_protocol::AwsError::not_implemented(
                    "elbv2",
                    &format!("{kind} actions"),
                )));
            }
            other => {
                return Err(validation(format!("Action type '{other}' is not valid")));
            }
        }
        if a["Order"].is_null() {
            a["Order"] = json!(i + 1);
        }
        out.push(a);
    }
    out.sort_by_key(|a| a["Order"].as_i64().unwrap_or(0));
    let terminal = out
        .iter()
        .filter(|a| {
            matches!(
                a["Type"].as_str(),
                Some("forward" | "redirect" | "fixed-response")
            )
        })
        .count();
    if terminal != 1 {
        return Err(Error::new(
            "TooManyActions",
            "A rule or listener must have exactly one forward, redirect or fixed-response action",
        ));
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListenerRequest {
    load_balancer_arn: Option<String>,
    listener_arn: Option<String>,
    protocol: Option<String>,
    port: Option<u16>,
    ssl_policy: Option<String>,
    certificates: Option<Vec<Value>>,
    default_actions: Option<Vec<Value>>,
    alpn_policy: Option<Vec<String>>,
    #[serde(default)]
    tags: Vec<Tag>,
    #[serde(default)]
    listener_arns: Vec<String>,
    #[serde(default)]
    attributes: Vec<Attribute>,
    marker: Option<String>,
    page_size: Option<i64>,
}

fn check_protocol(lb: &LoadBalancer, protocol: &str, certificates: &[Value]) -> Result<()> {
    let ok = if lb.is_application() {
        matches!(protocol, "HTTP" | "HTTPS")
    } else {
        matches!(protocol, "TCP" | "TLS" | "UDP" | "TCP_UDP")
    };
    if !ok {
        return Err(Error::new(
            "UnsupportedProtocol",
            format!(
                "Protocol '{protocol}' is not supported by a load balancer of type '{}'",
                lb.kind
            ),
        ));
    }
    if matches!(protocol, "HTTPS" | "TLS") && certificates.is_empty() {
        return Err(validation(format!(
            "A certificate must be specified for {protocol} listeners"
        )));
    }
    Ok(())
}

pub async fn create_listener(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ListenerRequest = input(raw)?;
    check_tags(&req.tags)?;
    let lb_arn = req.load_balancer_arn.clone().unwrap_or_default();
    let mut tx = ctx.store.write().await?;
    let lb = super::load_balancers::locked(ctx, &mut tx, &lb_arn).await?;
    let protocol = req
        .protocol
        .clone()
        .ok_or_else(|| validation("A listener protocol must be specified"))?;
    let port = req
        .port
        .ok_or_else(|| validation("A listener port must be specified"))?;
    let certificates = req.certificates.clone().unwrap_or_default();
    check_protocol(&lb, &protocol, &certificates)?;
    let actions = normalize_actions(
        ctx,
        &mut tx,
        &lb,
        req.default_actions.as_deref().unwrap_or_default(),
    )
    .await?;
    let siblings: Vec<Listener> = resource::children(ctx, &mut tx, &lb_arn).await?;
    if let Some(same) = siblings.iter().find(|l| l.port == port) {
        if same.protocol == protocol && same.default_actions == actions {
            return Ok(json!({ "Listeners": [same] }));
        }
        return Err(Error::new(
            "DuplicateListener",
            format!("A listener already exists on port {port} of load balancer '{lb_arn}'"),
        ));
    }
    if siblings.len() >= 50 {
        return Err(Error::new(
            "TooManyListeners",
            "You've reached the limit on the number of listeners per load balancer (50)",
        ));
    }
    let tls = matches!(protocol.as_str(), "HTTPS" | "TLS");
    let listener = Listener {
        listener_arn: super::arn(ctx, &format!("listener/{}/{}", lb.path(), suffix())),
        load_balancer_arn: lb_arn,
        port,
        protocol,
        certificates,
        ssl_policy: if tls {
            Some(
                req.ssl_policy
                    .unwrap_or_else(|| "ELBSecurityPolicy-2016-08".into()),
            )
        } else {
            None
        },
        default_actions: actions,
        alpn_policy: req.alpn_policy.unwrap_or_default(),
        kumori_extra_certificates: vec![],
        kumori_attributes: BTreeMap::new(),
    };
    resource::insert(ctx, &mut tx, &listener).await?;
    store_tags(ctx, &mut tx, &listener.listener_arn, LISTENER, &req.tags).await?;
    tx.commit().await?;
    Ok(json!({ "Listeners": [listener] }))
}

pub async fn describe_listeners(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ListenerRequest = input(raw)?;
    let mut tx = ctx.store.read().await?;
    let chosen: Vec<Listener> = if let Some(lb) = &req.load_balancer_arn {
        if resource::get::<LoadBalancer>(ctx, &mut tx, lb)
            .await?
            .is_none()
        {
            return Err(super::lb_not_found());
        }
        resource::children(ctx, &mut tx, lb).await?
    } else if !req.listener_arns.is_empty() {
        let mut out = Vec::new();
        for a in &req.listener_arns {
            out.push(
                resource::get::<Listener>(ctx, &mut tx, a)
                    .await?
                    .ok_or_else(listener_not_found)?,
            );
        }
        out
    } else {
        return Err(validation(
            "You must specify either listener ARNs or a load balancer ARN",
        ));
    };
    let items = chosen
        .into_iter()
        .map(|l| {
            Ok((
                format!("{:05}", l.port),
                serde_json::to_value(&l).map_err(internal)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(page(
        items,
        req.marker.as_deref(),
        req.page_size,
        "Listeners",
    ))
}

async fn locked_listener(ctx: &Ctx<'_>, tx: &mut Tx, arn: Option<&str>) -> Result<Listener> {
    resource::lock(ctx, tx, arn.unwrap_or_default())
        .await?
        .ok_or_else(listener_not_found)
}

pub async fn modify_listener(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ListenerRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let mut l = locked_listener(ctx, &mut tx, req.listener_arn.as_deref()).await?;
    let lb = super::load_balancers::locked(ctx, &mut tx, &l.load_balancer_arn).await?;
    if let Some(p) = req.port
        && p != l.port
    {
        let siblings: Vec<Listener> =
            resource::children(ctx, &mut tx, &lb.load_balancer_arn).await?;
        if siblings.iter().any(|s| s.port == p) {
            return Err(Error::new(
                "DuplicateListener",
                format!(
                    "A listener already exists on port {p} of load balancer '{}'",
                    lb.load_balancer_arn
                ),
            ));
        }
        l.port = p;
    }
    if let Some(p) = req.protocol {
        l.protocol = p;
    }
    if let Some(c) = req.certificates {
        l.certificates = c;
    }
    check_protocol(&lb, &l.protocol, &l.certificates)?;
    let tls = matches!(l.protocol.as_str(), "HTTPS" | "TLS");
    l.ssl_policy = if tls {
        Some(
            req.ssl_policy
                .or(l.ssl_policy)
                .unwrap_or_else(|| "ELBSecurityPolicy-2016-08".into()),
        )
    } else {
        l.certificates.clear();
        None
    };
    if let Some(a) = req.default_actions {
        l.default_actions = normalize_actions(ctx, &mut tx, &lb, &a).await?;
    }
    if let Some(a) = req.alpn_policy {
        l.alpn_policy = a;
    }
    resource::update(ctx, &mut tx, &l).await?;
    tx.commit().await?;
    Ok(json!({ "Listeners": [l] }))
}

/// Removes a listener and its rules, in the caller's transaction.
pub(crate) async fn remove_listener(ctx: &Ctx<'_>, tx: &mut Tx, arn: &str) -> Result<()> {
    for r in tx.children(ctx.scope(), arn, Some(RULE)).await? {
        tx.delete(ctx.scope(), &r.id).await?;
    }
    tx.delete(ctx.scope(), arn).await?;
    Ok(())
}

pub async fn delete_listener(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ListenerRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let l = locked_listener(ctx, &mut tx, req.listener_arn.as_deref()).await?;
    remove_listener(ctx, &mut tx, &l.listener_arn).await?;
    tx.commit().await?;
    Ok(json!({}))
}

fn listener_defaults(l: &Listener) -> &'static [(&'static str, &'static str)] {
    if l.protocol.starts_with("HTTP") {
        HTTP_LISTENER_ATTRIBUTES
    } else {
        TCP_LISTENER_ATTRIBUTES
    }
}

pub async fn describe_listener_attributes(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ListenerRequest = input(raw)?;
    let mut tx = ctx.store.read().await?;
    let l: Listener = resource::get(
        ctx,
        &mut tx,
        req.listener_arn.as_deref().unwrap_or_default(),
    )
    .await?
    .ok_or_else(listener_not_found)?;
    Ok(json!({ "Attributes": attributes_shown(listener_defaults(&l), &l.kumori_attributes) }))
}

pub async fn modify_listener_attributes(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ListenerRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let mut l = locked_listener(ctx, &mut tx, req.listener_arn.as_deref()).await?;
    let defaults = listener_defaults(&l);
    apply_attributes(
        "Listener",
        defaults,
        &mut l.kumori_attributes,
        &req.attributes,
    )?;
    resource::update(ctx, &mut tx, &l).await?;
    tx.commit().await?;
    Ok(json!({ "Attributes": attributes_shown(defaults, &l.kumori_attributes) }))
}

pub async fn describe_listener_certificates(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ListenerRequest = input(raw)?;
    let mut tx = ctx.store.read().await?;
    let l: Listener = resource::get(
        ctx,
        &mut tx,
        req.listener_arn.as_deref().unwrap_or_default(),
    )
    .await?
    .ok_or_else(listener_not_found)?;
    let mut certs: Vec<Value> = l
        .certificates
        .iter()
        .filter_map(|c| c["CertificateArn"].as_str())
        .map(|a| json!({ "CertificateArn": a, "IsDefault": true }))
        .collect();
    certs.extend(
        l.kumori_extra_certificates
            .iter()
            .map(|a| json!({ "CertificateArn": a, "IsDefault": false })),
    );
    Ok(json!({ "Certificates": certs }))
}

async fn change_certificates(ctx: &Ctx<'_>, raw: &Value, add: bool) -> Result<Value> {
    let req: ListenerRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let mut l = locked_listener(ctx, &mut tx, req.listener_arn.as_deref()).await?;
    let given: Vec<String> = req
        .certificates
        .unwrap_or_default()
        .iter()
        .filter_map(|c| c["CertificateArn"].as_str().map(str::to_string))
        .collect();
    for c in &given {
        l.kumori_extra_certificates.retain(|o| o != c);
        if add {
            l.kumori_extra_certificates.push(c.clone());
        }
    }
    resource::update(ctx, &mut tx, &l).await?;
    tx.commit().await?;
    let shown: Vec<Value> = given
        .iter()
        .map(|a| json!({ "CertificateArn": a, "IsDefault": false }))
        .collect();
    Ok(if add {
        json!({ "Certificates": shown })
    } else {
        json!({})
    })
}

pub async fn add_listener_certificates(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    change_certificates(ctx, raw, true).await
}

pub async fn remove_listener_certificates(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    change_certificates(ctx, raw, false).await
}

/// The fields of rule conditions and what each carries.
const FIELDS: &[(&str, Option<&str>)] = &[
    ("path-pattern", Some("PathPatternConfig")),
    ("host-header", Some("HostHeaderConfig")),
    ("http-header", None),
    ("http-request-method", Some("HttpRequestMethodConfig")),
    ("query-string", None),
    ("source-ip", Some("SourceIpConfig")),
];

/// Checks conditions and shows them both ways, as ELBv2 does: a path or host condition's
/// values in `Values` and in its config.
fn normalize_conditions(conditions: &[Value]) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut total = 0;
    for c in conditions {
        let mut c = c.clone();
        let field = c["Field"].as_str().unwrap_or_default().to_string();
        let Some((_, config)) = FIELDS.iter().find(|(f, _)| *f == field) else {
            return Err(validation(format!(
                "Condition field '{field}' is not valid"
            )));
        };
        let values: Vec<Value> = match (field.as_str(), config) {
            ("http-header", _) => {
                let h = &c["HttpHeaderConfig"];
                if h["HttpHeaderName"].as_str().is_none() {
                    return Err(validation("An http-header condition needs a header name"));
                }
                h["Values"].as_array().cloned().unwrap_or_default()
            }
            ("query-string", _) => c["QueryStringConfig"]["Values"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
            (_, Some(config)) => {
                let from_config = c[*config]["Values"].as_array().cloned();
                let plain = c["Values"].as_array().cloned();
                let v = from_config.or(plain.clone()).unwrap_or_default();
                c[*config] = json!({ "Values": v });
                if matches!(field.as_str(), "path-pattern" | "host-header") {
                    c["Values"] = json!(v);
                } else if let Some(o) = c.as_object_mut() {
                    o.remove("Values");
                }
                v
            }
            _ => vec![],
        };
        if values.is_empty() {
            return Err(validation(format!(
                "A condition on '{field}' must have at least one value"
            )));
        }
        if field == "source-ip" {
            for v in &values {
                let s = v.as_str().unwrap_or_default();
                if s.parse::<ipnet::IpNet>().is_err() {
                    return Err(validation(format!("'{s}' is not a valid CIDR block")));
                }
            }
        }
        total += values.len();
        out.push(c);
    }
    if total > 5 {
        return Err(validation(
            "A rule can have at most 5 condition values in all",
        ));
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RuleRequest {
    listener_arn: Option<String>,
    rule_arn: Option<String>,
    #[serde(default)]
    rule_arns: Vec<String>,
    conditions: Option<Vec<Value>>,
    priority: Option<i64>,
    actions: Option<Vec<Value>>,
    #[serde(default)]
    tags: Vec<Tag>,
    marker: Option<String>,
    page_size: Option<i64>,
    #[serde(default)]
    rule_priorities: Vec<RulePriority>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RulePriority {
    rule_arn: String,
    priority: i64,
}

fn priority_in_use(p: i64) -> Error {
    Error::new(
        "PriorityInUse",
        format!("Priority '{p}' is currently in use"),
    )
}

pub async fn create_rule(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: RuleRequest = input(raw)?;
    check_tags(&req.tags)?;
    let priority = req.priority.unwrap_or_default();
    if !(1..=50000).contains(&priority) {
        return Err(validation(format!(
            "Priority '{priority}' must be between 1 and 50000"
        )));
    }
    let conditions = normalize_conditions(req.conditions.as_deref().unwrap_or_default())?;
    let mut tx = ctx.store.write().await?;
    let l = locked_listener(ctx, &mut tx, req.listener_arn.as_deref()).await?;
    let lb = super::load_balancers::locked(ctx, &mut tx, &l.load_balancer_arn).await?;
    if !lb.is_application() {
        return Err(invalid_config(
            "Rules are only supported by Application Load Balancers' listeners",
        ));
    }
    let actions = normalize_actions(
        ctx,
        &mut tx,
        &lb,
        req.actions.as_deref().unwrap_or_default(),
    )
    .await?;
    let siblings: Vec<Rule> = resource::children(ctx, &mut tx, &l.listener_arn).await?;
    if siblings.iter().any(|r| r.priority == priority.to_string()) {
        return Err(priority_in_use(priority));
    }
    if siblings.len() >= 100 {
        return Err(Error::new(
            "TooManyRules",
            "You've reached the limit on the number of rules per load balancer (100)",
        ));
    }
    let listener_id = l.listener_arn.rsplit('/').next().unwrap_or_default();
    let rule = Rule {
        rule_arn: super::arn(
            ctx,
            &format!("listener-rule/{}/{listener_id}/{}", lb.path(), suffix()),
        ),
        priority: priority.to_string(),
        conditions,
        actions,
        is_default: false,
        kumori_listener_arn: l.listener_arn.clone(),
        kumori_load_balancer_arn: lb.load_balancer_arn.clone(),
    };
    resource::insert(ctx, &mut tx, &rule).await?;
    store_tags(ctx, &mut tx, &rule.rule_arn, RULE, &req.tags).await?;
    tx.commit().await?;
    Ok(json!({ "Rules": [rule] }))
}

/// A listener's default rule, as DescribeRules shows it.
pub fn default_rule(l: &Listener) -> Rule {
    let lb_path = l
        .load_balancer_arn
        .split_once(":loadbalancer/")
        .map_or("", |(_, p)| p);
    let listener_id = l.listener_arn.rsplit('/').next().unwrap_or_default();
    // A stable id derived from the listener's, so the default rule keeps its ARN.
    let id: String = listener_id.chars().rev().collect();
    Rule {
        rule_arn: crate::resource::arn(
            "elasticloadbalancing",
            l.listener_arn.split(':').nth(3).unwrap_or_default(),
            l.listener_arn.split(':').nth(4).unwrap_or_default(),
            &format!("listener-rule/{lb_path}/{listener_id}/{id}"),
        ),
        priority: "default".into(),
        conditions: vec![],
        actions: l.default_actions.clone(),
        is_default: true,
        kumori_listener_arn: l.listener_arn.clone(),
        kumori_load_balancer_arn: l.load_balancer_arn.clone(),
    }
}

fn priority_key(r: &Rule) -> String {
    match r.priority.parse::<u32>() {
        Ok(n) => format!("{n:05}"),
        Err(_) => "99999".into(),
    }
}

pub async fn describe_rules(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: RuleRequest = input(raw)?;
    let mut tx = ctx.store.read().await?;
    let rules: Vec<Rule> = if let Some(la) = &req.listener_arn {
        let l: Listener = resource::get(ctx, &mut tx, la)
            .await?
            .ok_or_else(listener_not_found)?;
        let mut rules: Vec<Rule> = resource::children(ctx, &mut tx, la).await?;
        rules.push(default_rule(&l));
        rules
    } else if !req.rule_arns.is_empty() {
        let mut out = Vec::new();
        for a in &req.rule_arns {
            match resource::get::<Rule>(ctx, &mut tx, a).await? {
                Some(r) => out.push(r),
                None => {
                    // The default rule is not stored: found through its listener.
                    let listener = a.replacen(":listener-rule/", ":listener/", 1);
                    let listener = listener.rsplit_once('/').map_or("", |(l, _)| l).to_string();
                    let l: Option<Listener> = resource::get(ctx, &mut tx, &listener).await?;
                    match l.map(|l| default_rule(&l)) {
                        Some(d) if &d.rule_arn == a => out.push(d),
                        _ => return Err(rule_not_found()),
                    }
                }
            }
        }
        out
    } else {
        return Err(validation(
            "You must specify either rule ARNs or a listener ARN",
        ));
    };
    let items = rules
        .iter()
        .map(|r| Ok((priority_key(r), serde_json::to_value(r).map_err(internal)?)))
        .collect::<Result<Vec<_>>>()?;
    Ok(page(items, req.marker.as_deref(), req.page_size, "Rules"))
}

pub async fn modify_rule(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: RuleRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let arn = req.rule_arn.clone().unwrap_or_default();
    let Some(mut rule) = resource::lock::<Rule>(ctx, &mut tx, &arn).await? else {
        // The default rule: its actions are the listener's default actions.
        let listener = arn
            .replacen(":listener-rule/", ":listener/", 1)
            .rsplit_once('/')
            .map_or(String::new(), |(l, _)| l.to_string());
        let mut l = locked_listener(ctx, &mut tx, Some(&listener))
            .await
            .map_err(|_| rule_not_found())?;
        if default_rule(&l).rule_arn != arn {
            return Err(rule_not_found());
        }
        if req.conditions.as_ref().is_some_and(|c| !c.is_empty()) {
            return Err(Error::new(
                "OperationNotPermitted",
                "Conditions cannot be set on a default rule",
            ));
        }
        let lb = super::load_balancers::locked(ctx, &mut tx, &l.load_balancer_arn).await?;
        if let Some(a) = req.actions {
            l.default_actions = normalize_actions(ctx, &mut tx, &lb, &a).await?;
        }
        resource::update(ctx, &mut tx, &l).await?;
        tx.commit().await?;
        return Ok(json!({ "Rules": [default_rule(&l)] }));
    };
    let lb = super::load_balancers::locked(ctx, &mut tx, &rule.kumori_load_balancer_arn).await?;
    if let Some(c) = req.conditions {
        rule.conditions = normalize_conditions(&c)?;
    }
    if let Some(a) = req.actions {
        rule.actions = normalize_actions(ctx, &mut tx, &lb, &a).await?;
    }
    resource::update(ctx, &mut tx, &rule).await?;
    tx.commit().await?;
    Ok(json!({ "Rules": [rule] }))
}

pub async fn delete_rule(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: RuleRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let arn = req.rule_arn.clone().unwrap_or_default();
    if resource::lock::<Rule>(ctx, &mut tx, &arn).await?.is_none() {
        let listener = arn
            .replacen(":listener-rule/", ":listener/", 1)
            .rsplit_once('/')
            .map_or(String::new(), |(l, _)| l.to_string());
        if let Some(l) = resource::get::<Listener>(ctx, &mut tx, &listener).await?
            && default_rule(&l).rule_arn == arn
        {
            return Err(Error::new(
                "OperationNotPermitted",
                "A listener's default rule cannot be deleted",
            ));
        }
        return Err(rule_not_found());
    }
    tx.delete(ctx.scope(), &arn).await?;
    tx.commit().await?;
    Ok(json!({}))
}

pub async fn set_rule_priorities(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: RuleRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let mut changed: Vec<Rule> = Vec::new();
    for p in &req.rule_priorities {
        if !(1..=50000).contains(&p.priority) {
            return Err(validation(format!(
                "Priority '{}' must be between 1 and 50000",
                p.priority
            )));
        }
        let mut r = resource::lock::<Rule>(ctx, &mut tx, &p.rule_arn)
            .await?
            .ok_or_else(rule_not_found)?;
        r.priority = p.priority.to_string();
        changed.push(r);
    }
    // Priorities are unique per listener once every change is made.
    let listeners: std::collections::BTreeSet<String> = changed
        .iter()
        .map(|r| r.kumori_listener_arn.clone())
        .collect();
    for la in listeners {
        let mut rules: Vec<Rule> = resource::children(ctx, &mut tx, &la).await?;
        for r in &mut rules {
            if let Some(c) = changed.iter().find(|c| c.rule_arn == r.rule_arn) {
                *r = c.clone();
            }
        }
        let mut seen = std::collections::HashSet::new();
        for r in &rules {
            if !seen.insert(r.priority.clone()) {
                return Err(priority_in_use(r.priority.parse().unwrap_or_default()));
            }
        }
    }
    for r in &changed {
        resource::update(ctx, &mut tx, r).await?;
    }
    tx.commit().await?;
    Ok(json!({ "Rules": changed }))
}
