//! A secret's resource-based policy: put (checked with IAM's rules for resource policies),
//! read, delete and validate. `authz` evaluates it with the caller's own policies.

use super::{invalid_request, must_get, must_lock, now};
use crate::{Ctx, Error, Result, input};
use serde::Deserialize;
use serde_json::{Value, json};

pub const OPERATIONS: &[crate::kit::Op] = crate::operations![
    "PutResourcePolicy" => put_resource_policy,
    "GetResourcePolicy" => get_resource_policy,
    "DeleteResourcePolicy" => delete_resource_policy,
    "ValidateResourcePolicy" => validate_resource_policy,
];

/// Secrets Manager's size limit for a resource policy.
const MAX_POLICY: usize = 20_480;

fn malformed(message: impl Into<String>) -> Error {
    Error::new("MalformedPolicyDocumentException", message)
}

/// `doc` as IAM reads resource-based policies; the reason when it does not parse.
fn check(doc: &str) -> std::result::Result<(), String> {
    if doc.len() > MAX_POLICY {
        return Err(format!(
            "The resource policy is larger than {MAX_POLICY} characters."
        ));
    }
    kumori_policy::Policy::parse(doc, kumori_policy::PolicyKind::Resource)
        .map(|_| ())
        .map_err(|e| e.message)
}

/// Whether a policy grants access to everyone (an `Allow` for principal `*` with no
/// condition), which BlockPublicPolicy refuses.
fn is_public(doc: &str) -> bool {
    let Ok(v) = serde_json::from_str::<Value>(doc) else {
        return false;
    };
    let statements = match &v["Statement"] {
        Value::Array(a) => a.clone(),
        s @ Value::Object(_) => vec![s.clone()],
        _ => Vec::new(),
    };
    let everyone = |p: &Value| match p {
        Value::String(s) => s == "*",
        Value::Array(a) => a.iter().any(|x| x == "*"),
        _ => false,
    };
    statements.iter().any(|st| {
        st["Effect"] == "Allow"
            && st.get("Condition").is_none()
            && match &st["Principal"] {
                Value::String(s) => s == "*",
                Value::Object(m) => m.get("AWS").is_some_and(everyone),
                _ => false,
            }
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutResourcePolicyRequest {
    secret_id: String,
    resource_policy: String,
    block_public_policy: Option<bool>,
}

pub async fn put_resource_policy(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: PutResourcePolicyRequest = input(raw)?;
    check(&req.resource_policy).map_err(malformed)?;
    if req.block_public_policy.unwrap_or(false) && is_public(&req.resource_policy) {
        return Err(Error::new(
            "PublicPolicyException",
            "This resource policy contains a statement that grants public access.",
        ));
    }
    let mut tx = ctx.store.write().await?;
    let mut s = must_lock(ctx, &mut tx, &req.secret_id).await?;
    if s.is_deleted() {
        return Err(super::marked_for_deletion());
    }
    s.resource_policy = Some(req.resource_policy);
    s.last_changed = now();
    crate::resource::update(ctx, &mut tx, &s).await?;
    tx.commit().await?;
    Ok(json!({ "ARN": s.arn, "Name": s.name }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SecretIdRequest {
    secret_id: String,
}

pub async fn get_resource_policy(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: SecretIdRequest = input(raw)?;
    let mut tx = ctx.store.read().await?;
    let s = must_get(ctx, &mut tx, &req.secret_id).await?;
    Ok(json!({ "ARN": s.arn, "Name": s.name, "ResourcePolicy": s.resource_policy }))
}

pub async fn delete_resource_policy(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: SecretIdRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let mut s = must_lock(ctx, &mut tx, &req.secret_id).await?;
    if s.is_deleted() {
        return Err(super::marked_for_deletion());
    }
    if s.resource_policy.take().is_some() {
        s.last_changed = now();
        crate::resource::update(ctx, &mut tx, &s).await?;
    }
    tx.commit().await?;
    Ok(json!({ "ARN": s.arn, "Name": s.name }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ValidateResourcePolicyRequest {
    secret_id: Option<String>,
    resource_policy: String,
}

/// Checks a policy as PutResourcePolicy would, without storing it: a document that is not
/// JSON is MalformedPolicyDocumentException; one IAM's rules refuse is reported in
/// `ValidationErrors`.
pub async fn validate_resource_policy(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ValidateResourcePolicyRequest = input(raw)?;
    if serde_json::from_str::<Value>(&req.resource_policy).is_err() {
        return Err(malformed("The resource policy is not valid JSON."));
    }
    if let Some(id) = &req.secret_id {
        let mut tx = ctx.store.read().await?;
        let s = must_get(ctx, &mut tx, id).await?;
        if s.is_deleted() {
            return Err(invalid_request(
                "You can't perform this operation on the secret because it was marked for \
                 deletion.",
            ));
        }
    }
    Ok(match check(&req.resource_policy) {
        Ok(()) => json!({ "PolicyValidationPassed": true, "ValidationErrors": [] }),
        Err(why) => json!({
            "PolicyValidationPassed": false,
            "ValidationErrors": [{ "CheckName": "IAM_POLICY_VALIDATION", "ErrorMessage": why }],
        }),
    })
}
