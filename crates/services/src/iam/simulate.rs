//! IAM's policy simulator: SimulatePrincipalPolicy (a user's, group's or role's policies,
//! plus any given) and SimulateCustomPolicy (only the given ones), evaluated by the same
//! code that enforces requests, with the statements that decided and the context keys the
//! policies needed but were not given.

use crate::authz::{Named, Policies, Source, compile_identity, evaluate, policies_of};
use crate::{Ctx, Error, Principal, Result, input};
use kumori_policy::{Evaluation, PolicySource, Request};
use serde::Deserialize;
use serde_json::{Value, json};

pub const OPERATIONS: &[crate::kit::Op] = crate::operations![
    "SimulatePrincipalPolicy" => simulate_principal_policy,
    "SimulateCustomPolicy" => simulate_custom_policy,
];

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ContextEntry {
    context_key_name: Option<String>,
    #[serde(default)]
    context_key_values: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SimulateRequest {
    policy_source_arn: Option<String>,
    #[serde(default)]
    policy_input_list: Vec<String>,
    #[serde(default)]
    permissions_boundary_policy_input_list: Vec<String>,
    #[serde(default)]
    action_names: Vec<String>,
    #[serde(default)]
    resource_arns: Vec<String>,
    resource_policy: Option<String>,
    caller_arn: Option<String>,
    #[serde(default)]
    context_entries: Vec<ContextEntry>,
}

fn malformed(e: String) -> Error {
    Error::new("MalformedPolicyDocument", e)
}

/// Given documents, compiled, named as IAM names them (`PolicyInputList.N`).
fn given(list: &[String], prefix: &str) -> Result<Vec<Named>> {
    list.iter()
        .enumerate()
        .map(|(i, d)| {
            kumori_policy::Policy::parse(d, kumori_policy::PolicyKind::Identity)
                .map_err(|e| malformed(e.to_string()))?;
            Ok(Named {
                id: format!("{prefix}.{}", i + 1),
                source: "none",
                policy: compile_identity(d).expect("parsed above"),
            })
        })
        .collect()
}

fn position(p: kumori_policy::Position) -> Value {
    json!({ "Line": p.line, "Column": p.column })
}

fn result(action: &str, resource: &str, e: &Evaluation, p: &Policies) -> Value {
    let statements: Vec<Value> = e
        .matched
        .iter()
        .map(|m| {
            let source = match m.source {
                PolicySource::Identity => {
                    p.identity.get(m.policy_index).map_or("none", |n| n.source)
                }
                PolicySource::PermissionsBoundary => {
                    p.boundary.as_ref().map_or("none", |n| n.source)
                }
                PolicySource::Resource => "resource",
                _ => "none",
            };
            json!({
                "SourcePolicyId": m.policy_id,
                "SourcePolicyType": source,
                "StartPosition": position(m.start),
                "EndPosition": position(m.end),
            })
        })
        .collect();
    let mut v = json!({
        "EvalActionName": action,
        "EvalResourceName": resource,
        "EvalDecision": e.decision.as_str(),
        "MatchedStatements": statements,
        "MissingContextValues": e.missing_context_keys,
    });
    if let Some(b) = e.layers.boundary_allows {
        v["PermissionsBoundaryDecisionDetail"] = json!({ "AllowedByPermissionsBoundary": b });
    }
    v
}

fn simulate(req: SimulateRequest, mut policies: Policies) -> Result<Value> {
    policies
        .identity
        .extend(given(&req.policy_input_list, "PolicyInputList")?);
    let boundary = given(
        &req.permissions_boundary_policy_input_list,
        "PermissionsBoundaryPolicyInputList",
    )?;
    if let Some(b) = boundary.into_iter().next() {
        policies.boundary = Some(b);
    }
    if let Some(doc) = &req.resource_policy {
        if req.caller_arn.is_none() {
            return Err(Error::new(
                "InvalidInput",
                "CallerArn is required when a ResourcePolicy is given.",
            ));
        }
        let policy = kumori_policy::Policy::parse(doc, kumori_policy::PolicyKind::Resource)
            .map_err(|e| malformed(e.to_string()))?;
        policies.resource = Some(Named {
            id: "ResourcePolicy".into(),
            source: "resource",
            policy: std::sync::Arc::new(policy),
        });
    }
    let resources = if req.resource_arns.is_empty() {
        vec!["*".to_string()]
    } else {
        req.resource_arns.clone()
    };
    let mut results = Vec::new();
    for action in &req.action_names {
        for resource in &resources {
            let mut r = Request::new(action.clone(), resource.clone());
            if let Some(p) = req
                .caller_arn
                .as_deref()
                .and_then(kumori_policy::Principal::from_arn)
            {
                r = r.with_principal(p).with_principal_keys();
            }
            for c in &req.context_entries {
                if let Some(k) = &c.context_key_name {
                    r = r.with_context_values(k, c.context_key_values.clone());
                }
            }
            let e = evaluate(&r, &policies);
            results.push(result(action, resource, &e, &policies));
        }
    }
    Ok(json!({ "EvaluationResults": results, "IsTruncated": false }))
}

pub async fn simulate_principal_policy(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: SimulateRequest = input(raw)?;
    let arn = req.policy_source_arn.clone().unwrap_or_default();
    let invalid = || {
        Error::new(
            "InvalidInput",
            format!("Invalid ARN: {arn} is not a user, group or role ARN of this account."),
        )
    };
    let (kind, name) = arn
        .split_once(":iam::")
        .and_then(|(_, rest)| rest.split_once(':'))
        .and_then(|(_, res)| res.split_once('/'))
        .map(|(k, rest)| {
            (
                k.to_string(),
                rest.rsplit('/').next().unwrap_or_default().to_string(),
            )
        })
        .ok_or_else(invalid)?;
    let exists = {
        let iam = Ctx {
            region: super::GLOBAL,
            ..*ctx
        };
        let mut tx = ctx.store.read().await?;
        let k = match kind.as_str() {
            "user" => super::users::USER,
            "group" => super::groups::GROUP,
            "role" => super::roles::ROLE,
            _ => return Err(invalid()),
        };
        tx.get(super::scope(&iam), &super::key(k, &name))
            .await?
            .is_some()
    };
    if !exists {
        return Err(Error::new(
            "NoSuchEntity",
            format!("The {kind} with name {name} cannot be found."),
        ));
    }
    let principal = match kind.as_str() {
        "user" => Some(Principal::User { name: name.clone() }),
        "role" => Some(Principal::AssumedRole {
            role: name.clone(),
            session: "simulation".into(),
        }),
        _ => None,
    };
    let source = match &principal {
        Some(p) => Source::Principal(p),
        None => Source::Group(&name),
    };
    let policies = policies_of(ctx, source, &[]).await?;
    simulate(req, policies)
}

pub async fn simulate_custom_policy(_ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: SimulateRequest = input(raw)?;
    if req.policy_input_list.is_empty() {
        return Err(Error::new(
            "InvalidInput",
            "PolicyInputList must contain at least one policy.",
        ));
    }
    simulate(req, Policies::default())
}
