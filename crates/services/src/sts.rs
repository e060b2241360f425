//! AWS STS: who the caller is, temporary credentials for a role (AssumeRole) or for the
//! caller itself (GetSessionToken), and the decoding of EC2's authorization failure messages.
//!
//! Temporary credentials are records of kind `sts-credential` under the account's IAM
//! scope, keyed by their `ASIA…` id: the metadata service mints them for instance roles the
//! same way, and `auth::identify` finds either kind in one lookup.

use crate::iam::roles::{ROLE, Role};
use crate::iam::{GLOBAL, get};
use crate::resource::partition;
use crate::{Ctx, Error, Principal, Result, input};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use kumori_protocol::AwsError;
use kumori_store::{Record, Scope};
use serde::Deserialize;
use serde_json::{Value, json};

/// The kind of the records temporary credentials are kept in.
pub const CREDENTIAL_KIND: &str = "sts-credential";

pub static SERVICE: crate::kit::Service = crate::kit::Service {
    name: "sts",
    tables: &[OPERATIONS],
    before: None,
    region: None,
    resources: Some(resources),
};

const OPERATIONS: &[crate::kit::Op] = crate::operations![
    "GetCallerIdentity" => get_caller_identity,
    "AssumeRole" => assume_role,
    "GetSessionToken" => get_session_token,
    "DecodeAuthorizationMessage" => decode_authorization_message,
    "GetAccessKeyInfo" => get_access_key_info,
];

pub async fn get_caller_identity(ctx: &Ctx<'_>, _raw: &Value) -> Result<Value> {
    Ok(match ctx.caller {
        Some(c) => json!({ "UserId": c.user_id, "Account": c.account, "Arn": c.arn }),
        None => json!({
            "UserId": ctx.account,
            "Account": ctx.account,
            "Arn": format!("arn:{}:iam::{}:root", partition(ctx.region), ctx.account),
        }),
    })
}

/// A new `ASIA…` key, its secret and a session token.
fn new_session() -> (String, String, String) {
    use rand::Rng;
    let (id, secret) = crate::iam::access_keys::new_key_pair("ASIA");
    let token: [u8; 96] = rand::rng().random();
    (id, secret, STANDARD.encode(token))
}

fn validation(message: String) -> Error {
    Error::new("ValidationError", message)
}

fn access_denied(message: String) -> Error {
    Error(AwsError::new("AccessDenied", message).with_status(403))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PolicyArn {
    arn: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AssumeRoleRequest {
    role_arn: String,
    role_session_name: String,
    duration_seconds: Option<i64>,
    policy: Option<String>,
    #[serde(default)]
    policy_arns: Vec<PolicyArn>,
}

pub async fn assume_role(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: AssumeRoleRequest = input(raw)?;
    let name = &req.role_session_name;
    if name.len() < 2
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
    {
        return Err(validation(format!(
            "1 validation error detected: Value '{name}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*"
        )));
    }
    let duration = req.duration_seconds.unwrap_or(3600);
    if duration < 900 {
        return Err(validation(format!(
            "1 validation error detected: Value '{duration}' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900"
        )));
    }
    if duration > 43200 {
        return Err(validation(format!(
            "1 validation error detected: Value '{duration}' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to 43200"
        )));
    }
    let caller_arn = ctx.caller.map_or_else(
        || format!("arn:{}:iam::{}:root", partition(ctx.region), ctx.account),
        |c| c.arn.clone(),
    );
    let refused = || {
        access_denied(format!(
            "User: {caller_arn} is not authorized to perform: sts:AssumeRole on resource: {}",
            req.role_arn
        ))
    };
    let iam = Ctx {
        region: GLOBAL,
        ..*ctx
    };
    let role_name = req.role_arn.rsplit('/').next().unwrap_or_default();
    let mut tx = ctx.store.write().await?;
    let role: Role = get::<Role>(&iam, &mut tx, ROLE, role_name, false)
        .await?
        .filter(|r| r.arn == req.role_arn)
        .ok_or_else(refused)?;
    // Only a caller whose signature was checked is held to the trust policy: with
    // authentication off, any key may assume any role, as in other emulators.
    if let Some(c) = ctx.caller.filter(|c| c.verified) {
        if !crate::authz::trust_allows(&role, c) {
            return Err(refused());
        }
        if matches!(c.principal, Principal::AssumedRole { .. }) && duration > 3600 {
            return Err(validation(
                "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.".into(),
            ));
        }
    }
    if duration > role.max_session_duration {
        return Err(validation(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
                .into(),
        ));
    }
    let mut session_policies: Vec<String> = Vec::new();
    if let Some(p) = &req.policy {
        kumori_policy::Policy::parse(p, kumori_policy::PolicyKind::Identity)
            .map_err(|e| Error::new("MalformedPolicyDocument", e.to_string()))?;
        session_policies.push(p.clone());
    }
    for pa in &req.policy_arns {
        let arn = pa.arn.clone().unwrap_or_default();
        let found = crate::iam::policies::find(&iam, &mut tx, &arn)
            .await?
            .ok_or_else(|| {
                Error::new(
                    "InvalidParameterValue",
                    format!("Policy {arn} does not exist or is not attachable."),
                )
            })?;
        session_policies.push(found.document());
    }
    let (id, secret, token) = new_session();
    let expires = kumori_protocol::time::now_unix() + duration as u64;
    let assumed_arn = format!(
        "arn:{}:sts::{}:assumed-role/{}/{name}",
        partition(ctx.region),
        ctx.account,
        role.role_name
    );
    let body = json!({
        "AccessKeyId": id,
        "SecretAccessKey": secret,
        "SessionToken": token,
        "Expiration": kumori_protocol::time::iso_at_unix(expires),
        "ExpiresAt": expires,
        "Issued": kumori_protocol::time::now_iso(),
        "RoleArn": role.arn,
        "RoleSessionName": name,
        "AssumedRoleArn": assumed_arn,
        "SessionPolicies": session_policies,
    });
    tx.insert(
        Scope {
            account: ctx.account,
            region: GLOBAL,
        },
        &Record {
            kind: CREDENTIAL_KIND.into(),
            id: id.clone(),
            parent: Some(crate::iam::key(ROLE, &role.role_name)),
            body: body.to_string(),
        },
    )
    .await?;
    tx.commit().await?;
    let mut out = json!({
        "Credentials": {
            "AccessKeyId": id,
            "SecretAccessKey": secret,
            "SessionToken": token,
            "Expiration": kumori_protocol::time::iso_at_unix(expires),
        },
        "AssumedRoleUser": {
            "AssumedRoleId": format!("{}:{name}", role.role_id),
            "Arn": assumed_arn,
        },
    });
    if !session_policies.is_empty() {
        // How much of the packed-policy allowance the session policies take, in percent.
        let size: usize = session_policies.iter().map(String::len).sum();
        out["PackedPolicySize"] = json!((size * 100 / 2048).min(100));
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SessionTokenRequest {
    duration_seconds: Option<i64>,
}

pub async fn get_session_token(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: SessionTokenRequest = input(raw)?;
    if ctx.caller.is_some_and(|c| c.temporary) {
        return Err(access_denied(
            "Cannot call GetSessionToken with session credentials".into(),
        ));
    }
    let mut duration = req.duration_seconds.unwrap_or(43200);
    if !(900..=129600).contains(&duration) {
        return Err(validation(format!(
            "1 validation error detected: Value '{duration}' at 'durationSeconds' failed to satisfy constraint: Member must have value {} 900 and 129600",
            "between"
        )));
    }
    let user = match ctx.caller.map(|c| &c.principal) {
        Some(Principal::User { name }) => Some(name.clone()),
        _ => None,
    };
    // The root user's sessions last an hour at most; longer asks get an hour.
    if user.is_none() {
        duration = duration.min(3600);
    }
    let (id, secret, token) = new_session();
    let expires = kumori_protocol::time::now_unix() + duration as u64;
    let mut body = json!({
        "AccessKeyId": id,
        "SecretAccessKey": secret,
        "SessionToken": token,
        "Expiration": kumori_protocol::time::iso_at_unix(expires),
        "ExpiresAt": expires,
        "Issued": kumori_protocol::time::now_iso(),
    });
    match &user {
        Some(u) => body["ParentUser"] = json!(u),
        None => body["ParentRoot"] = json!(true),
    }
    let mut tx = ctx.store.write().await?;
    tx.insert(
        Scope {
            account: ctx.account,
            region: GLOBAL,
        },
        &Record {
            kind: CREDENTIAL_KIND.into(),
            id: id.clone(),
            parent: None,
            body: body.to_string(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(json!({ "Credentials": {
        "AccessKeyId": id,
        "SecretAccessKey": secret,
        "SessionToken": token,
        "Expiration": kumori_protocol::time::iso_at_unix(expires),
    }}))
}

/// The prefix of kumori's encoded authorization messages. AWS encrypts them; kumori only
/// encodes, which is enough for a local deployment and keeps them decodable offline.
const MESSAGE_PREFIX: &str = "kumori1.";

/// An authorization failure as EC2 hands it out encoded, for DecodeAuthorizationMessage.
pub fn encode_authorization_message(decoded: &Value) -> String {
    format!(
        "{MESSAGE_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(decoded.to_string())
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DecodeRequest {
    encoded_message: String,
}

pub async fn decode_authorization_message(_ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DecodeRequest = input(raw)?;
    let decoded = req
        .encoded_message
        .strip_prefix(MESSAGE_PREFIX)
        .and_then(|m| URL_SAFE_NO_PAD.decode(m.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            Error::new(
                "InvalidAuthorizationMessageException",
                "The encoded authorization message is invalid.",
            )
        })?;
    Ok(json!({ "DecodedMessage": decoded }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyInfoRequest {
    access_key_id: String,
}

pub async fn get_access_key_info(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: KeyInfoRequest = input(raw)?;
    if req.access_key_id.len() < 16 {
        return Err(validation(format!(
            "1 validation error detected: Value '{}' at 'accessKeyId' failed to satisfy constraint: Member must have length greater than or equal to 16",
            req.access_key_id
        )));
    }
    // Every key kumori issues belongs to the deployment's account.
    Ok(json!({ "Account": ctx.account }))
}

/// The resource ARNs STS authorizes `call` against: the role assumed, or none in particular.
fn resources(_ctx: &Ctx<'_>, _caller: &crate::Caller, call: &kumori_protocol::Call) -> Vec<String> {
    let s = |k: &str| call.input[k].as_str().map(str::to_string);
    match s("RoleArn") {
        Some(r) => vec![r],
        None => vec!["*".into()],
    }
}
