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

/// What IAM stores. The entities IAM tags (users, roles, instance profiles, customer managed
/// policies) keep their tags in the store's tags table, as every other service does, not in
/// their documents: [`get`] and [`all`] fill them in, [`save`] writes them back. IAM's own
/// rules (keys equal whatever their case, listed in the order they were added) are applied
/// in memory before the whole set is stored (`Tx::set_tags` keeps the order).
pub(crate) trait Entity: for<'de> Deserialize<'de> + Serialize {
    /// The entity's tags, when IAM tags it; `None` for the others.
    fn tags_mut(&mut self) -> Option<&mut Vec<Tag>> {
        None
    }
    fn tags(&self) -> Option<&[Tag]> {
        None
    }
}

/// Implements [`Entity`] for types IAM tags (`tags: field`) and for those it does not.
macro_rules! entities {
    (tagged: $($t:ty),*; plain: $($p:ty),* $(,)?) => {
        $(impl Entity for $t {
            fn tags_mut(&mut self) -> Option<&mut Vec<Tag>> {
                Some(&mut self.tags)
            }
            fn tags(&self) -> Option<&[Tag]> {
                Some(&self.tags)
            }
        })*
        $(impl Entity for $p {})*
    };
}

entities!(
    tagged: users::User, roles::Role, roles::InstanceProfile, policies::CustomerPolicy;
    plain: groups::Group,
);

/// Fills an entity's tags from the store's table.
async fn fill_tags<T: Entity>(ctx: &Ctx<'_>, tx: &mut Tx, id: &str, v: &mut T) -> Result<()> {
    if let Some(tags) = v.tags_mut() {
        *tags = crate::kit::tags_of(tx, scope(ctx), id).await?;
    }
    Ok(())
}

pub(crate) async fn get<T: Entity>(
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
        Some(r) if r.kind == kind => {
            let mut v: T = decode(&r.body)?;
            fill_tags(ctx, tx, &id, &mut v).await?;
            Ok(Some(v))
        }
        _ => Ok(None),
    }
}

fn decode<T: Entity>(body: &str) -> Result<T> {
    serde_json::from_str(body).map_err(|e| Error(AwsError::internal(e.to_string())))
}

pub(crate) async fn all<T: Entity>(ctx: &Ctx<'_>, tx: &mut Tx, kind: &str) -> Result<Vec<T>> {
    let records = tx.list(scope(ctx), kind).await?;
    let mut tags = crate::kit::tags_by_resource(tx, scope(ctx), kind).await?;
    records
        .into_iter()
        .map(|r| {
            let mut v: T = decode(&r.body)?;
            if let Some(slot) = v.tags_mut() {
                *slot = tags.remove(&r.id).unwrap_or_default();
            }
            Ok(v)
        })
        .collect()
}

/// Tags as the store's `set_tags` takes them.
fn pairs(tags: &[Tag]) -> Vec<(String, String)> {
    tags.iter()
        .map(|t| (t.key.clone(), t.value.clone()))
        .collect()
}

/// Writing an entity: `tx.save(ctx, kind, name, &entity, new)` stores it (`new`: inserted,
/// else replaced) and, for one IAM tags, its tags.
pub(crate) trait Save {
    async fn save<T: Entity>(
        &mut self,
        ctx: &Ctx<'_>,
        kind: &str,
        name: &str,
        v: &T,
        new: bool,
    ) -> Result<()>;
}

impl Save for Tx {
    async fn save<T: Entity>(
        &mut self,
        ctx: &Ctx<'_>,
        kind: &str,
        name: &str,
        v: &T,
        new: bool,
    ) -> Result<()> {
        let rec = record(kind, name, v)?;
        if new {
            self.insert(scope(ctx), &rec).await?;
        } else {
            self.update(scope(ctx), &rec).await?;
        }
        if let Some(tags) = v.tags() {
            self.set_tags(scope(ctx), &rec.id, kind, &pairs(tags))
                .await?;
        }
        Ok(())
    }
}

/// Moves tags that documents stored before tags had their table into it: run at start, as
/// often as one likes (a document without tags is left alone).
pub async fn move_tags_out_of_documents(store: &kumori_store::Store) -> Result<usize> {
    let mut moved = 0;
    for kind in [users::USER, roles::ROLE, roles::PROFILE, policies::POLICY] {
        let scopes = store.read().await?.scopes_with(kind).await?;
        for (account, region) in scopes {
            let s = Scope {
                account: &account,
                region: &region,
            };
            // Read first: after the first start nothing is left to move, and a write
            // transaction would hold every node's writers up for nothing.
            let old = store.read().await?.list(s, kind).await?;
            if !old.iter().any(|r| r.body.contains("\"Tags\":")) {
                continue;
            }
            let mut tx = store.write().await?;
            for mut r in tx.list(s, kind).await? {
                let Ok(mut doc) = serde_json::from_str::<Value>(&r.body) else {
                    continue;
                };
                let Some(tags) = doc.as_object_mut().and_then(|o| o.remove("Tags")) else {
                    continue;
                };
                let tags: Vec<Tag> = serde_json::from_value(tags).unwrap_or_default();
                if !tags.is_empty() {
                    tx.set_tags(s, &r.id, kind, &pairs(&tags)).await?;
                }
                r.body = doc.to_string();
                tx.update(s, &r).await?;
                moved += 1;
            }
            tx.commit().await?;
        }
    }
    Ok(moved)
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

#[cfg(test)]
mod tag_tests {
    use super::*;
    use crate::Limits;

    #[tokio::test]
    async fn tags_kept_in_old_documents_move_to_the_table_once() {
        let store = kumori_store::Store::open_memory().await.unwrap();
        let limits = Limits::default();
        let ctx = Ctx::root(&store, "000000000000", "us-east-1", &limits);
        // A user as stored before: tags inside the document, in the order they were added.
        let doc = json!({
            "Path": "/", "UserName": "Alice", "UserId": "AIDAEXAMPLE", "CreateDate": "x",
            "Arn": "arn:aws:iam::000000000000:user/Alice",
            "Tags": [{"Key": "team", "Value": "a"}, {"Key": "Env", "Value": "b"}],
        });
        let mut tx = store.write().await.unwrap();
        let rec = Record {
            kind: users::USER.into(),
            id: key(users::USER, "Alice"),
            parent: None,
            body: doc.to_string(),
        };
        tx.insert(scope(&ctx), &rec).await.unwrap();
        tx.commit().await.unwrap();

        assert_eq!(move_tags_out_of_documents(&store).await.unwrap(), 1);
        assert_eq!(move_tags_out_of_documents(&store).await.unwrap(), 0);
        let mut tx = store.read().await.unwrap();
        let stored = tx.get(scope(&ctx), &rec.id).await.unwrap().unwrap();
        assert!(!stored.body.contains("Tags"), "{}", stored.body);
        let user: users::User = get(&ctx, &mut tx, users::USER, "Alice", false)
            .await
            .unwrap()
            .unwrap();
        let tags: Vec<(&str, &str)> = user
            .tags
            .iter()
            .map(|t| (t.key.as_str(), t.value.as_str()))
            .collect();
        assert_eq!(tags, [("team", "a"), ("Env", "b")]);
    }
}
