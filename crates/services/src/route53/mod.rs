//! Amazon Route 53's API: hosted zones (public and private) and their record sets, changes,
//! tags. Route 53 is global: everything is kept in the account under the region `global`
//! (as IAM's entities are), whatever region a client signs with.
//!
//! A zone is one record (`route53-zone/<Id>`); its record sets are kept one record per DNS
//! name (`route53-name/<Id>/<name with its labels reversed>`), holding every set of that
//! name, so listing in the store's byte order is Route 53's order, a change reads and writes
//! only the names it touches, and the CNAME rules see every type of a name in one read.
//! Not yet: health checks, and the DNS server that answers from these records (issue 21).

pub mod records;
pub mod zones;

use crate::kit::Tag;
use crate::{Ctx, Error, Result, input};
use kumori_store::{Scope, Tx};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub const GLOBAL: &str = "global";

pub static SERVICE: crate::kit::Service = crate::kit::Service {
    name: "route53",
    tables: &[zones::OPERATIONS, records::OPERATIONS, OPERATIONS],
    before: None,
    region: None,
    resources: Some(resources),
};

pub const OPERATIONS: &[crate::kit::Op] = crate::operations![
    "GetChange" => get_change,
    "ChangeTagsForResource" => change_tags_for_resource,
    "ListTagsForResource" => list_tags_for_resource,
    "ListTagsForResources" => list_tags_for_resources,
];

pub(crate) fn scope<'a>(ctx: &'a Ctx<'_>) -> Scope<'a> {
    Scope {
        account: ctx.account,
        region: GLOBAL,
    }
}

pub(crate) fn invalid_input(message: impl Into<String>) -> Error {
    Error::new("InvalidInput", message)
}

/// `count` characters of Route 53's ids (upper-case letters and digits).
pub(crate) fn id_chars(count: usize) -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut r = rand::rng();
    (0..count)
        .map(|_| CHARS[r.random_range(0..CHARS.len())] as char)
        .collect()
}

/// An id without the `/hostedzone/` or `/change/` clients may leave on it.
pub(crate) fn bare(id: &str) -> &str {
    id.rsplit('/').next().unwrap_or(id)
}

/// A change as Route 53 reports it. kumori applies a batch in its transaction, so a change
/// is in sync as soon as it is made.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Change {
    pub id: String,
    pub submitted_at: String,
    pub comment: Option<String>,
}

impl Change {
    pub fn view(&self, status: &str) -> Value {
        let mut v = json!({
            "Id": format!("/change/{}", self.id),
            "Status": status,
            "SubmittedAt": self.submitted_at,
        });
        if let Some(c) = &self.comment {
            v["Comment"] = json!(c);
        }
        v
    }
}

/// Records a change (in `tx`); its ChangeInfo as the call answers it (`PENDING`, as Route
/// 53 answers; GetChange then says `INSYNC`).
pub(crate) async fn new_change(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    comment: Option<String>,
) -> Result<Value> {
    let id = format!("C{}", id_chars(20));
    let c = Change {
        id,
        submitted_at: kumori_protocol::time::now_iso(),
        comment,
    };
    let rec = kumori_store::Record {
        kind: "route53-change".into(),
        id: format!("route53-change/{}", c.id),
        parent: None,
        body: serde_json::to_string(&c).unwrap_or_default(),
    };
    tx.insert(scope(ctx), &rec).await?;
    Ok(c.view("PENDING"))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct IdRequest {
    id: String,
}

pub async fn get_change(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: IdRequest = input(raw)?;
    let id = bare(&req.id);
    let mut tx = ctx.store.read().await?;
    let rec = tx
        .get(scope(ctx), &format!("route53-change/{id}"))
        .await?
        .ok_or_else(|| {
            Error::new(
                "NoSuchChange",
                format!("A change with the specified change ID does not exist: {id}"),
            )
        })?;
    let c: Change = serde_json::from_str(&rec.body)
        .map_err(|e| Error(kumori_protocol::AwsError::internal(e.to_string())))?;
    Ok(json!({ "ChangeInfo": c.view("INSYNC") }))
}

/// The tags table's resource id of a hosted zone or health check.
fn tag_target(kind: &str, id: &str) -> Result<String> {
    match kind {
        "hostedzone" | "healthcheck" => Ok(format!("{kind}/{}", bare(id))),
        other => Err(invalid_input(format!(
            "Invalid resource type: {other}. Valid values are hostedzone and healthcheck."
        ))),
    }
}

async fn tag_resource_exists(ctx: &Ctx<'_>, tx: &mut Tx, kind: &str, id: &str) -> Result<()> {
    match kind {
        "hostedzone" => zones::must(ctx, tx, id).await.map(|_| ()),
        _ => Err(Error::new(
            "NoSuchHealthCheck",
            format!("No health check exists with the specified ID {id}"),
        )),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ChangeTagsRequest {
    resource_type: String,
    resource_id: String,
    #[serde(default)]
    add_tags: Vec<Tag>,
    #[serde(default)]
    remove_tag_keys: Vec<String>,
}

pub async fn change_tags_for_resource(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ChangeTagsRequest = input(raw)?;
    let target = tag_target(&req.resource_type, &req.resource_id)?;
    let mut tx = ctx.store.write().await?;
    tag_resource_exists(ctx, &mut tx, &req.resource_type, bare(&req.resource_id)).await?;
    let mut tags = crate::kit::tags_of(&mut tx, scope(ctx), &target).await?;
    tags.retain(|t| !req.remove_tag_keys.contains(&t.key));
    for t in req.add_tags {
        match tags.iter_mut().find(|o| o.key == t.key) {
            Some(o) => o.value = t.value,
            None => tags.push(t),
        }
    }
    if tags.len() > 50 {
        return Err(Error::new(
            "ThrottlingException",
            "A resource can have at most 50 tags",
        ));
    }
    let pairs: Vec<(String, String)> = tags.into_iter().map(|t| (t.key, t.value)).collect();
    tx.set_tags(
        scope(ctx),
        &target,
        &format!("route53-{}", req.resource_type),
        &pairs,
    )
    .await?;
    tx.commit().await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListTagsRequest {
    resource_type: String,
    resource_id: String,
}

pub async fn list_tags_for_resource(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ListTagsRequest = input(raw)?;
    let target = tag_target(&req.resource_type, &req.resource_id)?;
    let mut tx = ctx.store.read().await?;
    tag_resource_exists(ctx, &mut tx, &req.resource_type, bare(&req.resource_id)).await?;
    let tags = crate::kit::tags_of(&mut tx, scope(ctx), &target).await?;
    Ok(json!({ "ResourceTagSet": {
        "ResourceType": req.resource_type,
        "ResourceId": bare(&req.resource_id),
        "Tags": tags,
    }}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListTagsManyRequest {
    resource_type: String,
    resource_ids: Vec<String>,
}

pub async fn list_tags_for_resources(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ListTagsManyRequest = input(raw)?;
    let mut tx = ctx.store.read().await?;
    let mut sets = Vec::new();
    for id in &req.resource_ids {
        let target = tag_target(&req.resource_type, id)?;
        tag_resource_exists(ctx, &mut tx, &req.resource_type, bare(id)).await?;
        let tags = crate::kit::tags_of(&mut tx, scope(ctx), &target).await?;
        sets.push(
            json!({ "ResourceType": req.resource_type, "ResourceId": bare(id), "Tags": tags }),
        );
    }
    Ok(json!({ "ResourceTagSets": sets }))
}

/// The ARNs a call acts on, for `--auth enforce`.
fn resources(_ctx: &Ctx<'_>, _caller: &crate::Caller, call: &kumori_protocol::Call) -> Vec<String> {
    let mut out = Vec::new();
    for key in ["Id", "HostedZoneId"] {
        if let Some(id) = call.input[key].as_str() {
            let kind = if call.operation.name == "GetChange" {
                "change"
            } else {
                "hostedzone"
            };
            out.push(format!("arn:aws:route53:::{kind}/{}", bare(id)));
        }
    }
    if out.is_empty() {
        out.push("*".into());
    }
    out
}
