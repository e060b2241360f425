//! AWS IAM: users, groups, roles, access keys, managed and inline policies, instance
//! profiles and the account's settings, one file per kind of entity.
//!
//! IAM is global: its entities live in the account under the region `global`, whatever
//! region a request is signed for (`scope`). That region still decides the partition of the
//! ARNs IAM makes and shows: a client in `cn-north-1` sees `arn:aws-cn:iam::…`. Names are
//! unique per account without regard to case, as IAM's are, so the store's id is the
//! lowercased name under a kind prefix (`iam-user/alice`); access keys are kept under their
//! own ids, so that a request's key finds its owner in one lookup.

pub mod access_keys;
pub mod account;
pub mod groups;
pub mod managed;
pub mod policies;
pub mod roles;
pub mod simulate;
pub mod users;

pub use roles::{InstanceProfile, Role, instance_profile};

use crate::{Ctx, Error, Result};
use kumori_protocol::AwsError;
use kumori_store::{Record, Scope, Tx};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The region IAM's entities are kept under.
pub const GLOBAL: &str = "global";

/// IAM's operations, one table per kind of entity. IAM is global, but its handlers see the
/// request's region (no fixed `region`): it decides the partition of ARNs, and every store
/// access goes through `scope`, which is always the region entities are kept under.
pub static SERVICE: crate::kit::Service = crate::kit::Service {
    name: "iam",
    tables: &[
        users::OPERATIONS,
        access_keys::OPERATIONS,
        groups::OPERATIONS,
        policies::OPERATIONS,
        account::OPERATIONS,
        simulate::OPERATIONS,
        roles::OPERATIONS,
    ],
    before: None,
    region: None,
    resources: Some(resources),
};

pub use crate::kit::Tag;

pub(crate) fn key(kind: &str, name: &str) -> String {
    format!("{kind}/{}", name.to_lowercase())
}

pub(crate) fn scope<'a>(ctx: &'a Ctx<'_>) -> Scope<'a> {
    Scope {
        account: ctx.account,
        region: GLOBAL,
    }
}

/// IAM's unique ids: a four-letter prefix naming the kind and 17 uppercase letters and digits.
pub(crate) fn unique_id(prefix: &str) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut rng = rand::rng();
    let tail: String = (0..17)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}{tail}")
}

pub(crate) fn no_such(kind: &str, name: &str) -> Error {
    Error::new(
        "NoSuchEntity",
        format!("The {kind} with name {name} cannot be found."),
    )
}

/// One of IAM's conflicts (`EntityAlreadyExists`, `LimitExceeded`, `DeleteConflict`): its
/// model gives each its status, 409.
pub(crate) fn conflict(code: &str, message: String) -> Error {
    Error::new(code, message)
}

/// Refuses a delete while anything still hangs off the entity, naming the first thing to
/// remove as IAM does (`DeleteConflict`); `blockers` are in IAM's order.
pub(crate) fn refuse_if_held(blockers: &[(bool, &str)]) -> Result<()> {
    match blockers.iter().find(|(held, _)| *held) {
        Some((_, what)) => Err(conflict(
            "DeleteConflict",
            format!("Cannot delete entity, {what}."),
        )),
        None => Ok(()),
    }
}

pub(crate) fn validation(message: String) -> Error {
    Error::new("ValidationError", message)
}

pub(crate) fn check_name(what: &str, name: &str) -> Result<()> {
    let ok = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c);
    if name.is_empty() || name.len() > 64 || !name.chars().all(ok) {
        return Err(validation(format!(
            "The specified value for {what} is invalid. It must contain only alphanumeric characters and/or the following: +=,.@_-"
        )));
    }
    Ok(())
}

/// IAM's `pathType`: `/`, or printable ASCII between two slashes.
pub(crate) fn check_path(path: &str) -> Result<()> {
    let printable = path.chars().all(|c| ('!'..='~').contains(&c));
    if !path.starts_with('/') || !path.ends_with('/') || path.len() > 512 || !printable {
        return Err(validation(
            "The specified value for path is invalid. It must begin and end with / and contain only alphanumeric characters and/or / characters.".into(),
        ));
    }
    Ok(())
}

/// IAM's `roleDescriptionType` pattern: tab, newlines and Latin-1's printable characters.
pub(crate) fn check_role_description(description: Option<&str>) -> Result<()> {
    let ok = |c: char| matches!(c, '\t' | '\n' | '\r' | ' '..='~' | '\u{A1}'..='\u{FF}');
    if description.is_some_and(|d| !d.chars().all(ok)) {
        return Err(validation(
            "1 validation error detected: Value at 'description' failed to satisfy constraint: \
             Member must satisfy regular expression pattern: \
             [\\u0009\\u000A\\u000D\\u0020-\\u007E\\u00A1-\\u00FF]*"
                .into(),
        ));
    }
    Ok(())
}

/// IAM shows policy documents URL-encoded (RFC 3986); the SDKs decode them.
pub(crate) fn url_encoded(doc: &str) -> String {
    const KEEP: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    utf8_percent_encode(doc, KEEP).to_string()
}

pub(crate) async fn get<T: for<'de> Deserialize<'de>>(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    kind: &str,
    name: &str,
    lock: bool,
) -> Result<Option<T>> {
    let id = key(kind, name);
    let rec = if lock {
        tx.lock(scope(ctx), &id).await?
    } else {
        tx.get(scope(ctx), &id).await?
    };
    match rec {
        Some(r) if r.kind == kind => Ok(Some(
            serde_json::from_str(&r.body).map_err(|e| Error(AwsError::internal(e.to_string())))?,
        )),
        _ => Ok(None),
    }
}

pub(crate) async fn all<T: for<'de> Deserialize<'de>>(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    kind: &str,
) -> Result<Vec<T>> {
    serde_json::from_str(&tx.list_json(scope(ctx), kind).await?)
        .map_err(|e| Error(AwsError::internal(e.to_string())))
}

pub(crate) fn record<T: Serialize>(kind: &str, name: &str, v: &T) -> Result<Record> {
    Ok(Record {
        kind: kind.into(),
        id: key(kind, name),
        parent: None,
        body: serde_json::to_string(v).map_err(|e| Error(AwsError::internal(e.to_string())))?,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListRequest {
    pub path_prefix: Option<String>,
    pub marker: Option<String>,
    pub max_items: Option<i64>,
}

/// One page of `items` (by name) as IAM's List calls give it: `IsTruncated` and `Marker`.
pub(crate) fn page(mut items: Vec<(String, Value)>, req: &ListRequest, member: &str) -> Value {
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let max = req.max_items.unwrap_or(100).clamp(1, 1000) as usize;
    let (shown, last) =
        crate::kit::page(items, |(k, _)| k.clone(), req.marker.as_deref(), Some(max));
    let shown: Vec<Value> = shown.into_iter().map(|(_, v)| v).collect();
    let mut out = json!({ member: shown, "IsTruncated": last.is_some() });
    if let Some(marker) = last {
        out["Marker"] = json!(marker);
    }
    out
}

/// The resource ARNs IAM authorizes `call` against (AWS's service authorization reference).
pub(crate) fn resources(
    ctx: &Ctx<'_>,
    caller: &crate::Caller,
    call: &kumori_protocol::Call,
) -> Vec<String> {
    use crate::Principal;
    use crate::authz::arn;
    let op = call.operation.name.as_str();
    let input = &call.input;
    let s = |k: &str| input[k].as_str().map(str::to_string);
    {
        let iam = |r: String| arn(ctx, "iam", "", &r);
        let path = s("Path").unwrap_or_else(|| "/".into());
        if let Some(a) = s("PolicyArn") {
            return vec![a];
        }
        if op == "CreatePolicy" {
            return vec![iam(format!(
                "policy{path}{}",
                s("PolicyName").unwrap_or_default()
            ))];
        }
        if op.contains("Group")
            && let Some(g) = s("GroupName")
        {
            return vec![iam(format!("group{path}{g}"))];
        }
        if op.contains("InstanceProfile")
            && let Some(p) = s("InstanceProfileName")
        {
            return vec![iam(format!("instance-profile{path}{p}"))];
        }
        if let Some(r) = s("RoleName") {
            return vec![iam(format!("role{path}{r}"))];
        }
        let user = s("UserName").or(match &caller.principal {
            Principal::User { name }
                if op.contains("AccessKey") || op.contains("LoginProfile") || op == "GetUser" =>
            {
                Some(name.clone())
            }
            _ => None,
        });
        match user {
            Some(u) => vec![iam(format!("user{path}{u}"))],
            None => vec!["*".into()],
        }
    }
}
