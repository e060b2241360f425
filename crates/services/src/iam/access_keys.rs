//! Access keys: an `AKIA…` id and a secret shown once, at creation. Kept under their own ids
//! (not the user's) so that a signed request finds its key, and the key its owner, in one
//! lookup. The secret is stored as issued: SigV4 needs it to check every signature.

use super::users::{USER, User, user_or_caller};
use super::{get, key, no_such, scope};
use crate::{Ctx, Error, Result, input};
use kumori_protocol::AwsError;
use kumori_store::{Record, Tx};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub(crate) const ACCESS_KEY: &str = "iam-access-key";
/// The parent of the root user's keys.
pub(crate) const ROOT: &str = "iam-root";
/// IAM's quota.
const KEYS_PER_USER: usize = 2;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LastUsed {
    pub date: String,
    pub service: String,
    pub region: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccessKey {
    /// `None` for the root user's keys.
    pub user_name: Option<String>,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// `Active` or `Inactive`.
    pub status: String,
    pub create_date: String,
    #[serde(default)]
    pub last_used: Option<LastUsed>,
}

pub const OPERATIONS: &[crate::kit::Op] = crate::operations![
    "CreateAccessKey" => create_access_key,
    "ListAccessKeys" => list_access_keys,
    "UpdateAccessKey" => update_access_key,
    "DeleteAccessKey" => delete_access_key,
    "GetAccessKeyLastUsed" => get_access_key_last_used,
];

fn random(alphabet: &[u8], n: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..n)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
        .collect()
}

/// A new key pair: a 20-character id with `prefix` (`AKIA`, `ASIA`) and a 40-character secret.
pub fn new_key_pair(prefix: &str) -> (String, String) {
    (
        format!(
            "{prefix}{}",
            random(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)
        ),
        random(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
            40,
        ),
    )
}

fn parent_of(user: Option<&str>) -> String {
    match user {
        Some(u) => key(USER, u),
        None => ROOT.to_string(),
    }
}

fn record_of(k: &AccessKey) -> Result<Record> {
    Ok(Record {
        kind: ACCESS_KEY.into(),
        id: k.access_key_id.clone(),
        parent: Some(parent_of(k.user_name.as_deref())),
        body: serde_json::to_string(k).map_err(|e| Error(AwsError::internal(e.to_string())))?,
    })
}

/// The keys of `user` (`None`: the root user's).
pub(crate) async fn keys_of(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    user: Option<&str>,
) -> Result<Vec<AccessKey>> {
    serde_json::from_str(
        &tx.children_json(scope(ctx), &parent_of(user), ACCESS_KEY)
            .await?,
    )
    .map_err(|e| Error(AwsError::internal(e.to_string())))
}

pub(crate) async fn of_user(ctx: &Ctx<'_>, tx: &mut Tx, user: &str) -> Result<Vec<AccessKey>> {
    keys_of(ctx, tx, Some(user)).await
}

/// The key with id `id`, whoever holds it.
pub async fn find(ctx: &Ctx<'_>, tx: &mut Tx, id: &str) -> Result<Option<AccessKey>> {
    match tx.get(scope(ctx), id).await? {
        Some(r) if r.kind == ACCESS_KEY => Ok(Some(
            serde_json::from_str(&r.body).map_err(|e| Error(AwsError::internal(e.to_string())))?,
        )),
        _ => Ok(None),
    }
}

/// Stores a root key (made on first start when authentication is on).
pub async fn insert_root_key(ctx: &Ctx<'_>, tx: &mut Tx, id: &str, secret: &str) -> Result<()> {
    let k = AccessKey {
        user_name: None,
        access_key_id: id.to_string(),
        secret_access_key: secret.to_string(),
        status: "Active".into(),
        create_date: kumori_protocol::time::now_iso(),
        last_used: None,
    };
    tx.insert(scope(ctx), &record_of(&k)?).await?;
    super::account::stamp(ctx, tx).await?;
    Ok(())
}

/// Notes that `id` signed a request for `service` in `region`, at most once a minute per
/// key and place, so that busy keys do not write on every request. `known` is what the
/// caller read of the key already: when it is fresh, nothing is read or written.
pub async fn note_use(
    ctx: &Ctx<'_>,
    id: &str,
    service: &str,
    region: &str,
    known: Option<&LastUsed>,
) -> Result<()> {
    let now = kumori_protocol::time::now_iso();
    let fresh = |l: Option<&LastUsed>| {
        l.is_some_and(|l| {
            l.service == service && l.region == region && l.date.get(..16) == now.get(..16)
        })
    };
    if fresh(known) {
        return Ok(());
    }
    let mut tx = ctx.store.write().await?;
    if let Some(mut k) = find(ctx, &mut tx, id).await?
        && !fresh(k.last_used.as_ref())
    {
        k.last_used = Some(LastUsed {
            date: now,
            service: service.to_string(),
            region: region.to_string(),
        });
        tx.update(scope(ctx), &record_of(&k)?).await?;
        tx.commit().await?;
    }
    Ok(())
}

/// After a user is renamed, its keys follow.
pub(crate) async fn rename_owner(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    old_parent: &str,
    new_name: &str,
) -> Result<()> {
    let keys: Vec<AccessKey> =
        serde_json::from_str(&tx.children_json(scope(ctx), old_parent, ACCESS_KEY).await?)
            .map_err(|e| Error(AwsError::internal(e.to_string())))?;
    for mut k in keys {
        k.user_name = Some(new_name.to_string());
        tx.update(scope(ctx), &record_of(&k)?).await?;
    }
    Ok(())
}

fn metadata(k: &AccessKey) -> Value {
    let mut v = json!({
        "AccessKeyId": k.access_key_id,
        "Status": k.status,
        "CreateDate": k.create_date,
    });
    if let Some(u) = &k.user_name {
        v["UserName"] = json!(u);
    }
    v
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyRequest {
    user_name: Option<String>,
    access_key_id: Option<String>,
    status: Option<String>,
}

/// The user a key call is about (checked to exist), or `None` for the root user.
async fn owner(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    name: Option<String>,
    lock: bool,
) -> Result<Option<String>> {
    match user_or_caller(ctx, name)? {
        Some(n) => {
            let u: User = get(ctx, tx, USER, &n, lock)
                .await?
                .ok_or_else(|| no_such("user", &n))?;
            Ok(Some(u.user_name))
        }
        None => Ok(None),
    }
}

pub async fn create_access_key(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: KeyRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    // Locking the user serializes concurrent creations, so the quota holds.
    let user = owner(ctx, &mut tx, req.user_name, true).await?;
    if keys_of(ctx, &mut tx, user.as_deref()).await?.len() >= KEYS_PER_USER {
        return Err(Error::new(
            "LimitExceeded",
            format!("Cannot exceed quota for AccessKeysPerUser: {KEYS_PER_USER}"),
        ));
    }
    let (id, secret) = new_key_pair("AKIA");
    let k = AccessKey {
        user_name: user,
        access_key_id: id,
        secret_access_key: secret,
        status: "Active".into(),
        create_date: kumori_protocol::time::now_iso(),
        last_used: None,
    };
    tx.insert(scope(ctx), &record_of(&k)?).await?;
    tx.commit().await?;
    let mut shown = metadata(&k);
    shown["SecretAccessKey"] = json!(k.secret_access_key);
    Ok(json!({ "AccessKey": shown }))
}

pub async fn list_access_keys(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: KeyRequest = input(raw)?;
    let mut tx = ctx.store.read().await?;
    let user = owner(ctx, &mut tx, req.user_name, false).await?;
    let keys = keys_of(ctx, &mut tx, user.as_deref()).await?;
    Ok(json!({
        "AccessKeyMetadata": keys.iter().map(metadata).collect::<Vec<_>>(),
        "IsTruncated": false,
    }))
}

fn no_such_key(id: &str) -> Error {
    Error::new(
        "NoSuchEntity",
        format!("The Access Key with id {id} cannot be found."),
    )
}

/// The key `id` of `user`, locked.
async fn held(ctx: &Ctx<'_>, tx: &mut Tx, user: Option<&str>, id: &str) -> Result<AccessKey> {
    match tx.lock(scope(ctx), id).await? {
        Some(r) if r.kind == ACCESS_KEY => {
            let k: AccessKey = serde_json::from_str(&r.body)
                .map_err(|e| Error(AwsError::internal(e.to_string())))?;
            if k.user_name.as_deref().map(str::to_lowercase) != user.map(str::to_lowercase) {
                return Err(no_such_key(id));
            }
            Ok(k)
        }
        _ => Err(no_such_key(id)),
    }
}

pub async fn update_access_key(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: KeyRequest = input(raw)?;
    let id = req.access_key_id.clone().unwrap_or_default();
    let status = req.status.clone().unwrap_or_default();
    if status != "Active" && status != "Inactive" {
        return Err(Error::new(
            "ValidationError",
            format!(
                "1 validation error detected: Value '{status}' at 'status' failed to satisfy constraint: Member must satisfy enum value set: [Active, Inactive]"
            ),
        ));
    }
    let mut tx = ctx.store.write().await?;
    let user = owner(ctx, &mut tx, req.user_name, false).await?;
    let mut k = held(ctx, &mut tx, user.as_deref(), &id).await?;
    k.status = status;
    tx.update(scope(ctx), &record_of(&k)?).await?;
    tx.commit().await?;
    Ok(json!({}))
}

pub async fn delete_access_key(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: KeyRequest = input(raw)?;
    let id = req.access_key_id.clone().unwrap_or_default();
    let mut tx = ctx.store.write().await?;
    let user = owner(ctx, &mut tx, req.user_name, false).await?;
    held(ctx, &mut tx, user.as_deref(), &id).await?;
    tx.delete(scope(ctx), &id).await?;
    tx.commit().await?;
    Ok(json!({}))
}

pub async fn get_access_key_last_used(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: KeyRequest = input(raw)?;
    let id = req.access_key_id.unwrap_or_default();
    let mut tx = ctx.store.read().await?;
    let k = find(ctx, &mut tx, &id)
        .await?
        .ok_or_else(|| no_such_key(&id))?;
    let used = match &k.last_used {
        Some(l) => json!({ "LastUsedDate": l.date, "ServiceName": l.service, "Region": l.region }),
        // IAM's answer for a key never used.
        None => json!({ "ServiceName": "N/A", "Region": "N/A" }),
    };
    let mut out = json!({ "AccessKeyLastUsed": used });
    if let Some(u) = &k.user_name {
        out["UserName"] = json!(u);
    }
    Ok(out)
}
