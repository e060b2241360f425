//! AWS STS: GetCallerIdentity, so that tools which ask "who am I" (Terraform's AWS provider
//! does on start) learn the account they work in. Identities, roles and credentials come with
//! the IAM issue; until then every caller is the deployment's account root.

use crate::resource::partition;
use crate::{Ctx, Result};
use serde_json::{Value, json};

pub async fn dispatch(ctx: &Ctx<'_>, op: &str, input: &Value) -> Option<Result<Value>> {
    Some(match op {
        "GetCallerIdentity" => get_caller_identity(ctx, input).await,
        _ => return None,
    })
}

pub async fn get_caller_identity(ctx: &Ctx<'_>, _raw: &Value) -> Result<Value> {
    Ok(json!({
        "UserId": ctx.account,
        "Account": ctx.account,
        "Arn": format!("arn:{}:iam::{}:root", partition(ctx.region), ctx.account),
    }))
}
