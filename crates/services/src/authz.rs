//! Authorization in `--auth enforce`: the caller's policies (its own, its groups', its
//! permissions boundary, its session's) evaluated by `kumori-policy` for the action, each
//! resource ARN and the condition keys AWS puts in the request context. A denial is
//! answered as the service answers it: EC2's `UnauthorizedOperation` with an encoded
//! message that STS's DecodeAuthorizationMessage explains, `AccessDenied` elsewhere.

use crate::auth::Identity;
use crate::iam::groups::{GROUP, Group};
use crate::iam::policies::{CustomerPolicy, POLICY};
use crate::iam::roles::{ROLE, Role};
use crate::iam::users::{USER, User};
use crate::iam::{GLOBAL, get, key, scope};
use crate::{Caller, Ctx, Principal, Result};
use kumori_policy::{Decision, Evaluation, Policy, PolicyKind, PolicySets, Request};
use kumori_protocol::{AwsError, Call};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};

/// Compiled policies by text and kind.
type Cache = Mutex<HashMap<(String, PolicyKind), Arc<Policy>>>;

/// Compiled policies by their text: the same document always compiles the same, so the
/// cache needs no invalidation and is safe across processes sharing a store.
fn compiled(doc: &str, kind: PolicyKind) -> Option<Arc<Policy>> {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let key = (doc.to_string(), kind);
    if let Some(p) = cache.lock().ok()?.get(&key) {
        return Some(p.clone());
    }
    let p = Arc::new(Policy::parse(doc, kind).ok()?);
    let mut c = cache.lock().ok()?;
    if c.len() > 10_000 {
        c.clear();
    }
    c.insert(key, p.clone());
    Some(p)
}

/// One policy that decides, with the name and kind SimulatePrincipalPolicy reports it by.
pub struct Named {
    pub id: String,
    /// `user`, `group`, `role` (inline), `aws-managed` or `user-managed`.
    pub source: &'static str,
    pub policy: Arc<Policy>,
}

/// The policies that decide for a principal.
#[derive(Default)]
pub struct Policies {
    pub identity: Vec<Named>,
    pub boundary: Option<Named>,
    pub session: Vec<Named>,
    /// A resource-based policy (the policy simulator's `ResourcePolicy`).
    pub resource: Option<Named>,
    /// The user's or role's tags: `aws:PrincipalTag/<key>` in the request context.
    pub principal_tags: Vec<(String, String)>,
}

/// AWS's managed policies, compiled once: they never change while kumori runs, and
/// ReadOnlyAccess alone is 130 KB of JSON.
fn aws_compiled(arn: &str) -> Option<Arc<Policy>> {
    static ALL: OnceLock<HashMap<String, Arc<Policy>>> = OnceLock::new();
    ALL.get_or_init(|| {
        crate::iam::managed::all()
            .iter()
            .filter_map(|p| {
                let text = crate::iam::managed::document_text(p);
                Some((
                    p.arn.clone(),
                    Arc::new(Policy::parse(&text, PolicyKind::Identity).ok()?),
                ))
            })
            .collect()
    })
    .get(arn)
    .cloned()
}

type Found = (String, &'static str, Arc<Policy>);

/// Where a principal's policies come from.
pub enum Source<'a> {
    Principal(&'a Principal),
    Group(&'a str),
}

/// Everything that applies to a principal (or a group), plus `session` policies.
pub async fn policies_of(
    ctx: &Ctx<'_>,
    source: Source<'_>,
    session: &[String],
) -> Result<Policies> {
    let ctx = &Ctx {
        region: GLOBAL,
        ..*ctx
    };
    let inline = |n: &String, source: &'static str, d: &String| {
        compiled(d, PolicyKind::Identity).map(|c| (n.clone(), source, c))
    };
    // Three reads whatever the number of policies: the principal, its groups, and the
    // customer managed policies they attach (every store query is a round trip).
    let mut tx = ctx.store.read().await?;
    let mut identity: Vec<Found> = Vec::new();
    let mut attached: Vec<String> = Vec::new();
    let mut boundary_arn: Option<String> = None;
    let mut groups: Vec<String> = Vec::new();
    let mut principal_tags: Vec<(String, String)> = Vec::new();
    match source {
        Source::Principal(Principal::Root) => {}
        Source::Group(g) => groups.push(g.to_string()),
        Source::Principal(Principal::User { name }) => {
            if let Some(u) = get::<User>(ctx, &mut tx, USER, name, false).await? {
                identity.extend(
                    u.inline_policies
                        .iter()
                        .filter_map(|(n, d)| inline(n, "user", d)),
                );
                attached.extend(u.attached_policies);
                principal_tags = u.tags.into_iter().map(|t| (t.key, t.value)).collect();
                groups = u.groups;
                boundary_arn = u.permissions_boundary;
            }
        }
        Source::Principal(Principal::AssumedRole { role, .. }) => {
            if let Some(r) = get::<Role>(ctx, &mut tx, ROLE, role, false).await? {
                identity.extend(
                    r.inline_policies
                        .iter()
                        .filter_map(|(n, d)| inline(n, "role", d)),
                );
                attached.extend(r.attached_policies);
                principal_tags = r.tags.into_iter().map(|t| (t.key, t.value)).collect();
                boundary_arn = r.permissions_boundary;
            }
        }
    }
    let group_ids: Vec<String> = groups.iter().map(|g| key(GROUP, g)).collect();
    for r in tx.get_many(scope(ctx), &group_ids).await? {
        if let Ok(g) = serde_json::from_str::<Group>(&r.body) {
            identity.extend(
                g.inline_policies
                    .iter()
                    .filter_map(|(n, d)| inline(n, "group", d)),
            );
            attached.extend(g.attached_policies);
        }
    }
    let wanted: Vec<String> = attached
        .iter()
        .chain(&boundary_arn)
        .filter(|a| crate::iam::managed::by_arn(a).is_none())
        .filter_map(|a| a.rsplit_once('/').map(|(_, n)| key(POLICY, n)))
        .collect();
    let customer: HashMap<String, CustomerPolicy> = tx
        .get_many(scope(ctx), &wanted)
        .await?
        .into_iter()
        .filter_map(|r| serde_json::from_str::<CustomerPolicy>(&r.body).ok())
        .map(|p| (p.arn.clone(), p))
        .collect();
    drop(tx);
    let resolve = |arn: &String| -> Option<Found> {
        if let Some(p) = crate::iam::managed::by_arn(arn) {
            return aws_compiled(arn).map(|c| (p.policy_name.clone(), "aws-managed", c));
        }
        let p = customer.get(arn)?;
        compiled(p.default_document(), PolicyKind::Identity)
            .map(|c| (p.policy_name.clone(), "user-managed", c))
    };
    identity.extend(attached.iter().filter_map(resolve));
    let named = |(id, source, policy): Found| Named { id, source, policy };
    Ok(Policies {
        identity: identity.into_iter().map(named).collect(),
        boundary: boundary_arn.as_ref().and_then(resolve).map(named),
        session: session
            .iter()
            .enumerate()
            .filter_map(|(i, d)| inline(&format!("session-policy-{}", i + 1), "none", d))
            .map(named)
            .collect(),
        resource: None,
        principal_tags,
    })
}

/// Evaluates `req` against `p` as AWS does.
pub fn evaluate(req: &Request, p: &Policies) -> Evaluation {
    evaluate_with(req, p, p.resource.as_ref())
}

/// Evaluates `req` against `p` with `resource` as the resource-based policy of the resource
/// acted on (a secret's policy): the caller's policies are gathered once per call, the
/// resource's per resource.
pub fn evaluate_with(req: &Request, p: &Policies, resource: Option<&Named>) -> Evaluation {
    let mut sets = PolicySets::new();
    for n in &p.identity {
        sets = sets.with_identity(&n.id, &n.policy);
    }
    if let Some(n) = &p.boundary {
        sets = sets.with_boundary(&n.id, &n.policy);
    }
    for n in &p.session {
        sets = sets.with_session(&n.id, &n.policy);
    }
    if let Some(n) = resource {
        sets = sets.with_resource(&n.id, &n.policy);
    }
    kumori_policy::evaluate(req, &sets)
}

/// Compiles an identity policy document (cached); `None` if it does not parse.
pub fn compile_identity(doc: &str) -> Option<Arc<Policy>> {
    compiled(doc, PolicyKind::Identity)
}

pub(crate) fn principal_of(c: &Caller) -> kumori_policy::Principal {
    match &c.principal {
        Principal::Root => kumori_policy::Principal::root(&c.account),
        Principal::User { .. } => kumori_policy::Principal::user(c.arn.clone()),
        Principal::AssumedRole { role, .. } => {
            let role_arn = format!("arn:aws:iam::{}:role/{role}", c.account);
            kumori_policy::Principal::assumed_role(c.arn.clone(), role_arn)
        }
    }
}

/// Whether `role`'s trust policy lets `caller` assume it.
pub fn trust_allows(role: &Role, caller: &Caller) -> bool {
    let Some(trust) = compiled(&role.assume_role_policy_document, PolicyKind::Trust) else {
        return false;
    };
    let req = Request::new("sts:AssumeRole", role.arn.clone())
        .with_principal(principal_of(caller))
        .with_principal_keys();
    kumori_policy::trust_allows(&trust, &req).decision == Decision::Allowed
}

/// The IAM prefix of a service's actions.
fn action_prefix(call: &Call) -> &'static str {
    match call.service() {
        "elbv2" => "elasticloadbalancing",
        s => s,
    }
}

/// `arn:<partition>:<service>:<region>:<account>:<resource>` for the caller's account.
pub(crate) fn arn(ctx: &Ctx<'_>, service: &str, region: &str, resource: &str) -> String {
    format!(
        "arn:{}:{service}:{region}:{}:{resource}",
        crate::resource::partition(ctx.region),
        ctx.account
    )
}

/// The strings of a JSON list (empty when it is none).
pub(crate) fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect()
}

/// The resource ARNs AWS authorizes `call` against (`*` for actions on no particular one),
/// as the call's service declares them beside its operations.
fn resources(ctx: &Ctx<'_>, caller: &Caller, call: &Call) -> Vec<String> {
    crate::kit::SERVICES
        .iter()
        .find(|s| s.name == call.service())
        .and_then(|s| s.resources)
        .map_or_else(|| vec!["*".into()], |r| r(ctx, caller, call))
}

fn now_iso_and_epoch() -> (String, String) {
    let now = time::OffsetDateTime::now_utc();
    (
        now.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        now.unix_timestamp().to_string(),
    )
}

/// The request context: the global keys every request carries, and the service's own.
pub fn context(caller: &Caller, call: &Call, source_ip: Option<IpAddr>) -> Request {
    let (now, epoch) = now_iso_and_epoch();
    let mut r = Request::new(
        format!("{}:{}", action_prefix(call), call.operation.name),
        "*",
    )
    .with_principal(principal_of(caller))
    .with_principal_keys()
    .with_context("aws:RequestedRegion", call.region.clone())
    .with_context("aws:CurrentTime", now)
    .with_context("aws:EpochTime", epoch)
    .with_context("aws:SecureTransport", "false")
    .with_context("aws:userid", caller.user_id.clone());
    if let Some(ip) = source_ip {
        r.insert_context("aws:SourceIp", ip.to_string());
    }
    if caller.temporary {
        r.insert_context("aws:MultiFactorAuthPresent", "false");
        if let Some(t) = &caller.token_issued {
            r.insert_context("aws:TokenIssueTime", t.clone());
        }
    }
    if call.service() == "ec2" {
        r.insert_context("ec2:Region", call.region.clone());
        if matches!(
            call.operation.name.as_str(),
            "RunInstances" | "ModifyInstanceMetadataOptions"
        ) {
            let tokens = call.input["MetadataOptions"]["HttpTokens"]
                .as_str()
                .or(call.input["HttpTokens"].as_str())
                .unwrap_or("optional");
            r.insert_context("ec2:MetadataHttpTokens", tokens);
        }
    }
    r
}

/// Why a request was refused, in the words AWS's messages use: which kind of policy denied
/// it explicitly, or which kind did not allow it.
fn denial_reason(e: &Evaluation, action: &str) -> String {
    use kumori_policy::PolicySource;
    let kind = |s: PolicySource| match s {
        PolicySource::PermissionsBoundary => "a permissions boundary",
        PolicySource::Session => "a session policy",
        PolicySource::Resource => "a resource-based policy",
        _ => "an identity-based policy",
    };
    match e.decision {
        Decision::ExplicitDeny => {
            let source = e
                .matched
                .first()
                .map_or(PolicySource::Identity, |m| m.source);
            format!("with an explicit deny in {}", kind(source))
        }
        _ => {
            let l = &e.layers;
            let missing = if !l.identity_allows {
                "identity-based policy"
            } else if l.boundary_allows == Some(false) {
                "permissions boundary"
            } else if l.session_allows == Some(false) {
                "session policy"
            } else {
                "identity-based policy"
            };
            format!("because no {missing} allows the {action} action")
        }
    }
}

/// The decoded form of an EC2 authorization failure (what DecodeAuthorizationMessage shows).
fn decoded_message(caller: &Caller, req: &Request, e: &Evaluation) -> Value {
    let items = |vals: &[String]| json!({ "items": vals.iter().map(|v| json!({ "value": v })).collect::<Vec<_>>() });
    json!({
        "allowed": false,
        "explicitDeny": e.decision == Decision::ExplicitDeny,
        "matchedStatements": { "items": e.matched.iter().map(|m| json!({
            "statementId": m.sid.clone().unwrap_or_default(),
            "effect": if e.decision == Decision::ExplicitDeny { "DENY" } else { "ALLOW" },
            "sourcePolicyId": m.policy_id,
        })).collect::<Vec<_>>() },
        "failures": { "items": [] },
        "context": {
            "principal": { "id": caller.user_id, "arn": caller.arn },
            "action": req.action,
            "resource": req.resource,
            "conditions": { "items": req.context.iter().map(|(k, v)| json!({
                "key": k, "values": items(v),
            })).collect::<Vec<_>>() },
        },
    })
}

fn denied(caller: &Caller, call: &Call, req: &Request, e: &Evaluation) -> AwsError {
    let action = &req.action;
    let reason = denial_reason(e, action);
    let on = if req.resource == "*" {
        String::new()
    } else {
        format!(" on resource: {}", req.resource)
    };
    let core = format!(
        "User: {} is not authorized to perform: {action}{on} {reason}",
        caller.arn
    );
    if call.model.protocol == kumori_protocol::Protocol::Json {
        // The JSON protocols' services name it so, with a client error's 400.
        AwsError::new("AccessDeniedException", core).with_status(400)
    } else if call.service() == "ec2" {
        let mut message = format!("You are not authorized to perform this operation. {core}");
        if req.resource != "*" {
            message.push_str(&format!(
                ". Encoded authorization failure message: {}",
                crate::sts::encode_authorization_message(&decoded_message(caller, req, e))
            ));
        }
        AwsError::new("UnauthorizedOperation", message).with_status(403)
    } else {
        AwsError::new("AccessDenied", core).with_status(403)
    }
}

async fn resource_tags(ctx: &Ctx<'_>, region: &str, id: &str) -> Result<Vec<kumori_store::TagRow>> {
    let mut tx = ctx.store.read().await?;
    Ok(tx
        .tags_of(
            kumori_store::Scope {
                account: ctx.account,
                region,
            },
            id,
        )
        .await?)
}

/// Whether `identity` may make `call`; the error to answer if not.
pub async fn authorize(
    ctx: &Ctx<'_>,
    identity: &Identity,
    call: &Call,
    source_ip: Option<IpAddr>,
) -> std::result::Result<(), AwsError> {
    let caller = &identity.caller;
    if caller.principal == Principal::Root {
        return Ok(());
    }
    // Asking who one is needs no permission, even under an explicit deny; nor does
    // GetSessionToken, which authenticates rather than acts (AWS's API reference says so).
    if call.service() == "sts"
        && matches!(
            call.operation.name.as_str(),
            "GetCallerIdentity" | "GetSessionToken"
        )
    {
        return Ok(());
    }
    let policies = policies_of(
        ctx,
        Source::Principal(&caller.principal),
        &identity.session_policies,
    )
    .await
    .map_err(|e| e.0)?;
    let mut base = context(caller, call, source_ip);
    for (k, v) in &policies.principal_tags {
        base.insert_context(&format!("aws:PrincipalTag/{k}"), v.clone());
    }
    for resource in resources(ctx, caller, call) {
        let mut req = base.clone();
        // The tags of the resource acted on: `ec2:ResourceTag/<key>` and `aws:ResourceTag/…`.
        if call.service() == "ec2"
            && let Some(id) = resource
                .rsplit('/')
                .next()
                .filter(|id| *id != "*" && resource.contains('/'))
        {
            for t in resource_tags(ctx, &call.region, id)
                .await
                .map_err(|e| e.0)?
            {
                req.insert_context(&format!("ec2:ResourceTag/{}", t.key), t.value.clone());
                req.insert_context(&format!("aws:ResourceTag/{}", t.key), t.value);
            }
        }
        // A resource with a policy of its own (a secret): its full ARN, tags and policy.
        let mut resource_policy = None;
        if call.service() == "secretsmanager"
            && resource != "*"
            && let Some(held) = crate::secretsmanager::held(ctx, &call.region, &resource)
                .await
                .map_err(|e| e.0)?
        {
            for t in held.tags {
                req.insert_context(
                    &format!("secretsmanager:ResourceTag/{}", t.key),
                    t.value.clone(),
                );
                req.insert_context(&format!("aws:ResourceTag/{}", t.key), t.value);
            }
            resource_policy = held
                .policy
                .as_deref()
                .and_then(|d| compiled(d, PolicyKind::Resource))
                .map(|policy| Named {
                    id: held.arn.clone(),
                    source: "resource",
                    policy,
                });
            req.resource = held.arn;
        } else {
            req.resource = resource;
        }
        let e = evaluate_with(&req, &policies, resource_policy.as_ref());
        if e.decision != Decision::Allowed {
            return Err(denied(caller, call, &req, &e));
        }
    }
    Ok(())
}
