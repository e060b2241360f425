//! AWS Secrets Manager: secrets, their versions and staging labels, tags, resource policies
//! and random passwords — kumori's first awsJson1.1 service.
//!
//! A secret is one record (kind `secretsmanager-secret`) in the request's account and region,
//! kept under its name (`secretsmanager-secret/<name>`: names are case-sensitive and unique
//! per region), so finding a secret by name is one read; by ARN, the name is read out of the
//! ARN and the stored ARN compared (a partial ARN, without the six random characters, finds
//! it too). Its versions, each with its value and staging labels, live in the same document,
//! so one lock covers a secret and every label move. A secret scheduled for deletion keeps
//! its name until its date passes: a write that meets it then purges it, and housekeeping
//! (`sweep`) purges what nobody met; a forced delete frees the name at once.
//!
//! Under `--auth enforce` a secret's resource policy is evaluated with the caller's own
//! policies (`authz::authorize` asks [`held`] for the secret a call names).
//!
//! Other services make and read secrets of their own through [`api`] (RDS's managed master
//! passwords), inside their own write transactions.

pub mod api;
pub mod password;
pub mod policies;
pub mod secrets;

use crate::resource::Resource;
use crate::{Ctx, Error, Result};
use kumori_store::{Scope, Store, StoreError, Tx};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub static SERVICE: crate::kit::Service = crate::kit::Service {
    name: "secretsmanager",
    tables: &[
        secrets::OPERATIONS,
        policies::OPERATIONS,
        password::OPERATIONS,
    ],
    before: None,
    region: None,
    resources: Some(resources),
};

/// The store's kind (also the tags table's resource type).
pub const SECRET: &str = "secretsmanager-secret";

pub const CURRENT: &str = "AWSCURRENT";
pub const PREVIOUS: &str = "AWSPREVIOUS";
pub const PENDING: &str = "AWSPENDING";

/// Versions without a label beyond this many are dropped, oldest first (AWS keeps about 100).
const KEPT_UNLABELED: usize = 100;
/// Staging labels one secret may carry across its versions.
const MAX_LABELS: usize = 20;

/// One secret, as stored. Not a wire shape: outputs are written from it field by field.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Secret {
    /// The store's id: `secretsmanager-secret/<name>`.
    pub id: String,
    pub name: String,
    pub arn: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub kms_key_id: Option<String>,
    /// Seconds since the epoch, to the millisecond (JSON protocols' timestamps).
    pub created: f64,
    pub last_changed: f64,
    #[serde(default)]
    pub last_accessed: Option<f64>,
    /// When DeleteSecret was called, while the deletion is scheduled.
    #[serde(default)]
    pub deleted: Option<f64>,
    /// When the secret goes for good.
    #[serde(default)]
    pub deletion_date: Option<f64>,
    /// Whether a deletion is scheduled: what housekeeping looks secrets up by.
    #[serde(default)]
    pub scheduled: bool,
    #[serde(default)]
    pub rotation_enabled: bool,
    #[serde(default)]
    pub rotation_lambda_arn: Option<String>,
    #[serde(default)]
    pub rotation_rules: Option<Value>,
    #[serde(default)]
    pub last_rotated: Option<f64>,
    /// The service that manages the secret (`rds`), for secrets made through [`api`].
    #[serde(default)]
    pub owning_service: Option<String>,
    #[serde(default)]
    pub resource_policy: Option<String>,
    #[serde(default, rename = "type")]
    pub secret_type: Option<String>,
    #[serde(default)]
    pub versions: BTreeMap<String, Version>,
}

/// One version of a secret's value.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Version {
    #[serde(default)]
    pub string: Option<String>,
    /// Base64, as the JSON protocol carries blobs.
    #[serde(default)]
    pub binary: Option<String>,
    #[serde(default)]
    pub stages: Vec<String>,
    pub created: f64,
    #[serde(default)]
    pub last_accessed: Option<f64>,
    #[serde(default)]
    pub kms_key_id: Option<String>,
}

impl Resource for Secret {
    const KIND: &'static str = SECRET;
    fn id(&self) -> &str {
        &self.id
    }
}

impl Secret {
    /// The version holding `stage`, if any.
    pub fn version_with(&self, stage: &str) -> Option<(&String, &Version)> {
        self.versions
            .iter()
            .find(|(_, v)| v.stages.iter().any(|s| s == stage))
    }

    /// Whether a deletion is scheduled (and its date has not passed: see [`expired`]).
    pub fn is_deleted(&self) -> bool {
        self.deleted.is_some()
    }

    /// Whether the secret's scheduled deletion is due: it no longer exists.
    pub fn expired(&self, now: f64) -> bool {
        self.deletion_date.is_some_and(|d| now >= d)
    }

    /// Versions, oldest first.
    pub fn versions_by_age(&self) -> Vec<(&String, &Version)> {
        let mut all: Vec<_> = self.versions.iter().collect();
        all.sort_by(|a, b| a.1.created.total_cmp(&b.1.created).then(a.0.cmp(b.0)));
        all
    }

    /// `VersionIdsToStages`: the versions that carry labels.
    pub fn stages_map(&self) -> Value {
        let map: serde_json::Map<String, Value> = self
            .versions
            .iter()
            .filter(|(_, v)| !v.stages.is_empty())
            .map(|(id, v)| (id.clone(), json!(v.stages)))
            .collect();
        Value::Object(map)
    }

    /// Adds version `id` carrying `stages`, moving each label from the version that held it;
    /// a version given AWSCURRENT leaves AWSPREVIOUS on the one that held it, as AWS does.
    pub fn add_version(&mut self, id: &str, mut v: Version, stages: &[String]) {
        v.stages.clear();
        self.versions.insert(id.to_string(), v);
        for s in stages {
            self.move_stage(s, id);
        }
        self.prune();
    }

    /// Moves label `stage` onto version `to` (which must exist).
    pub fn move_stage(&mut self, stage: &str, to: &str) {
        let from = self
            .version_with(stage)
            .map(|(id, _)| id.clone())
            .filter(|f| f != to);
        if let Some(f) = &from {
            if let Some(v) = self.versions.get_mut(f) {
                v.stages.retain(|s| s != stage);
            }
            if stage == CURRENT {
                for v in self.versions.values_mut() {
                    v.stages.retain(|s| s != PREVIOUS);
                }
                if let Some(v) = self.versions.get_mut(f) {
                    v.stages.push(PREVIOUS.to_string());
                }
            }
        }
        if let Some(v) = self.versions.get_mut(to)
            && !v.stages.iter().any(|s| s == stage)
        {
            if stage == CURRENT {
                v.stages.retain(|s| s != PREVIOUS);
            }
            v.stages.push(stage.to_string());
        }
    }

    /// Drops the oldest unlabeled versions beyond what AWS keeps.
    fn prune(&mut self) {
        let unlabeled: Vec<String> = self
            .versions_by_age()
            .into_iter()
            .filter(|(_, v)| v.stages.is_empty())
            .map(|(id, _)| id.clone())
            .collect();
        if unlabeled.len() > KEPT_UNLABELED {
            for id in &unlabeled[..unlabeled.len() - KEPT_UNLABELED] {
                self.versions.remove(id);
            }
        }
    }

    /// The members DescribeSecret and ListSecrets share (`versions_member` names the map:
    /// `VersionIdsToStages` or `SecretVersionsToStages`).
    pub fn described(&self, tags: &[crate::kit::Tag], versions_member: &str) -> Value {
        let mut out = json!({
            "ARN": self.arn,
            "Name": self.name,
            "Description": self.description,
            "KmsKeyId": self.kms_key_id,
            "LastChangedDate": self.last_changed,
            "LastAccessedDate": self.last_accessed.map(day_of),
            "DeletedDate": self.deleted,
            "CreatedDate": self.created,
            "OwningService": self.owning_service,
            "Type": self.secret_type,
        });
        if self.rotation_enabled || self.rotation_lambda_arn.is_some() {
            out["RotationEnabled"] = json!(self.rotation_enabled);
            out["RotationLambdaARN"] = json!(self.rotation_lambda_arn);
            out["RotationRules"] = json!(self.rotation_rules);
            out["LastRotatedDate"] = json!(self.last_rotated);
            if self.rotation_enabled
                && let Some(days) = self
                    .rotation_rules
                    .as_ref()
                    .and_then(|r| r["AutomaticallyAfterDays"].as_f64())
            {
                let from = self.last_rotated.unwrap_or(self.created);
                out["NextRotationDate"] = json!(day_of(from + days * DAY));
            }
        }
        if !tags.is_empty() {
            out["Tags"] = json!(tags);
        }
        out[versions_member] = self.stages_map();
        out
    }
}

pub(crate) const DAY: f64 = 86_400.0;

/// A time truncated to its day, as AWS shows `LastAccessedDate`.
fn day_of(t: f64) -> f64 {
    (t / DAY).floor() * DAY
}

/// Now, in seconds since the epoch to the millisecond.
pub fn now() -> f64 {
    let ms = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    ms as f64 / 1000.0
}

pub(crate) fn key(name: &str) -> String {
    format!("{SECRET}/{name}")
}

/// `arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6 random characters>`.
pub(crate) fn new_arn(ctx: &Ctx<'_>, name: &str) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let tail: String = (0..6)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    crate::resource::arn(
        "secretsmanager",
        ctx.region,
        ctx.account,
        &format!("secret:{name}-{tail}"),
    )
}

pub(crate) fn not_found() -> Error {
    Error::new(
        "ResourceNotFoundException",
        "Secrets Manager can't find the specified secret.",
    )
}

pub(crate) fn invalid_parameter(message: impl Into<String>) -> Error {
    Error::new("InvalidParameterException", message)
}

pub(crate) fn invalid_request(message: impl Into<String>) -> Error {
    Error::new("InvalidRequestException", message)
}

pub(crate) fn marked_for_deletion() -> Error {
    invalid_request(
        "You can't perform this operation on the secret because it was marked for deletion.",
    )
}

/// The name a `SecretId` (a name, a full ARN or a partial one) may be kept under, and the ARN
/// the found secret must then have (in full or as its prefix), in the order to try.
fn candidates(ctx: &Ctx<'_>, secret_id: &str) -> Vec<(String, Option<(String, bool)>)> {
    let Some(rest) = secret_id.strip_prefix("arn:") else {
        return vec![(secret_id.to_string(), None)];
    };
    let parts: Vec<&str> = rest.splitn(6, ':').collect();
    // partition, service, region, account, "secret", name-suffix
    if parts.len() != 6
        || parts[1] != "secretsmanager"
        || parts[2] != ctx.region
        || parts[3] != ctx.account
        || parts[4] != "secret"
    {
        return Vec::new();
    }
    let tail = parts[5];
    let mut out = Vec::new();
    // A full ARN: the name, a dash and six characters.
    if tail.len() > 7 && tail.as_bytes()[tail.len() - 7] == b'-' {
        out.push((
            tail[..tail.len() - 7].to_string(),
            Some((secret_id.to_string(), true)),
        ));
    }
    // A partial ARN: the name alone.
    out.push((tail.to_string(), Some((format!("{secret_id}-"), false))));
    out
}

fn matches(s: &Secret, check: &Option<(String, bool)>) -> bool {
    match check {
        None => true,
        Some((arn, true)) => &s.arn == arn,
        Some((prefix, false)) => {
            s.arn.starts_with(prefix.as_str()) && s.arn.len() == prefix.len() + 6
        }
    }
}

/// The secret `secret_id` names, read (and locked, in a write transaction, when `lock`).
/// A secret whose scheduled deletion is due does not exist; a write transaction purges it.
pub(crate) async fn find(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    secret_id: &str,
    lock: bool,
) -> Result<Option<Secret>> {
    for (name, check) in candidates(ctx, secret_id) {
        let id = key(&name);
        let found = if lock {
            crate::resource::lock::<Secret>(ctx, tx, &id).await?
        } else {
            crate::resource::get::<Secret>(ctx, tx, &id).await?
        };
        if let Some(s) = found
            && matches(&s, &check)
        {
            if s.expired(now()) {
                if lock {
                    tx.delete(ctx.scope(), &s.id).await?;
                }
                return Ok(None);
            }
            return Ok(Some(s));
        }
    }
    Ok(None)
}

/// [`find`], locked, or ResourceNotFoundException.
pub(crate) async fn must_lock(ctx: &Ctx<'_>, tx: &mut Tx, secret_id: &str) -> Result<Secret> {
    find(ctx, tx, secret_id, true).await?.ok_or_else(not_found)
}

/// [`find`] in a read, or ResourceNotFoundException.
pub(crate) async fn must_get(ctx: &Ctx<'_>, tx: &mut Tx, secret_id: &str) -> Result<Secret> {
    find(ctx, tx, secret_id, false).await?.ok_or_else(not_found)
}

/// A secret's name as AWS accepts it.
pub(crate) fn check_name(name: &str) -> Result<()> {
    let ok = |c: char| c.is_ascii_alphanumeric() || "/_+=.@-!".contains(c);
    if name.is_empty() || name.len() > 512 || !name.chars().all(ok) {
        return Err(invalid_parameter(
            "Invalid name. Must be a valid name containing alphanumeric characters, or any of \
             the following: -/_+=.@!",
        ));
    }
    Ok(())
}

/// What `--auth enforce` needs of the secret a call names: its full ARN, its resource policy
/// and its tags (`aws:ResourceTag/…`, `secretsmanager:ResourceTag/…`). `None` when no such
/// secret exists (the call then answers ResourceNotFoundException itself).
pub struct Held {
    pub arn: String,
    pub policy: Option<String>,
    pub tags: Vec<crate::kit::Tag>,
}

pub async fn held(ctx: &Ctx<'_>, region: &str, secret_id: &str) -> Result<Option<Held>> {
    let ctx = Ctx { region, ..*ctx };
    let mut tx = ctx.store.read().await?;
    let Some(s) = find(&ctx, &mut tx, secret_id, false).await? else {
        return Ok(None);
    };
    let tags = crate::kit::tags_of(&mut tx, ctx.scope(), &s.id).await?;
    Ok(Some(Held {
        arn: s.arn,
        policy: s.resource_policy,
        tags,
    }))
}

/// The resources a call acts on, for `--auth enforce`: the secret it names, as an ARN (a
/// name becomes a partial ARN, which `authz` turns into the secret's full one through
/// [`held`]); `*` for calls on no secret.
fn resources(ctx: &Ctx<'_>, _caller: &crate::Caller, call: &kumori_protocol::Call) -> Vec<String> {
    let named = |n: &str| {
        if n.starts_with("arn:") {
            n.to_string()
        } else {
            crate::resource::arn(
                "secretsmanager",
                &call.region,
                ctx.account,
                &format!("secret:{n}"),
            )
        }
    };
    match (
        call.input["SecretId"].as_str(),
        call.input["Name"].as_str(),
        call.operation.name.as_str(),
    ) {
        (Some(id), _, _) => vec![named(id)],
        (None, Some(name), "CreateSecret") => vec![named(name)],
        _ => vec!["*".into()],
    }
}

/// Housekeeping: secrets whose scheduled deletion is due go, in every account and region.
pub async fn sweep(store: &Store, now: f64) -> std::result::Result<usize, StoreError> {
    let scopes = store.read().await?.scopes_with(SECRET).await?;
    let mut gone = 0;
    for (account, region) in scopes {
        let s = Scope {
            account: &account,
            region: &region,
        };
        let mut tx = store.write().await?;
        for r in tx.find_where(s, SECRET, "scheduled", true).await? {
            let Ok(secret) = serde_json::from_str::<Secret>(&r.body) else {
                continue;
            };
            if secret.expired(now) && tx.delete(s, &secret.id).await? {
                gone += 1;
            }
        }
        tx.commit().await?;
    }
    Ok(gone)
}

/// Tags as Secrets Manager checks them: at most 50, keys not `aws:`, unique.
pub(crate) fn check_tags(tags: &[crate::kit::Tag]) -> Result<()> {
    if tags.len() > 50 {
        return Err(invalid_parameter("A secret can have at most 50 tags."));
    }
    for t in tags {
        if t.key.is_empty() || t.key.len() > 128 || t.value.len() > 256 {
            return Err(invalid_parameter(format!(
                "Invalid tag: key '{}' must be 1 to 128 characters and its value at most 256.",
                t.key
            )));
        }
        if t.key.to_ascii_lowercase().starts_with("aws:") {
            return Err(invalid_parameter(
                "Invalid tag key. The 'aws:' prefix is reserved for AWS use.",
            ));
        }
    }
    Ok(())
}

pub(crate) async fn store_tags(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    id: &str,
    tags: &[crate::kit::Tag],
) -> Result<()> {
    let pairs: Vec<(String, String)> = tags
        .iter()
        .map(|t| (t.key.clone(), t.value.clone()))
        .collect();
    tx.set_tags(ctx.scope(), id, SECRET, &pairs).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Secret {
        Secret {
            id: key("s"),
            name: "s".into(),
            arn: "arn:aws:secretsmanager:us-east-1:000000000000:secret:s-AbCdEf".into(),
            description: None,
            kms_key_id: None,
            created: 1.0,
            last_changed: 1.0,
            last_accessed: None,
            deleted: None,
            deletion_date: None,
            scheduled: false,
            rotation_enabled: false,
            rotation_lambda_arn: None,
            rotation_rules: None,
            last_rotated: None,
            owning_service: None,
            resource_policy: None,
            secret_type: None,
            versions: BTreeMap::new(),
        }
    }

    fn v(t: f64) -> Version {
        Version {
            string: Some(format!("{t}")),
            binary: None,
            stages: vec![],
            created: t,
            last_accessed: None,
            kms_key_id: None,
        }
    }

    fn stages(s: &Secret, id: &str) -> Vec<String> {
        let mut st = s.versions[id].stages.clone();
        st.sort();
        st
    }

    #[test]
    fn current_moves_and_leaves_previous_behind() {
        let mut s = secret();
        let cur = vec![CURRENT.to_string()];
        s.add_version("a", v(1.0), &cur);
        assert_eq!(stages(&s, "a"), [CURRENT]);
        s.add_version("b", v(2.0), &cur);
        assert_eq!(stages(&s, "a"), [PREVIOUS]);
        assert_eq!(stages(&s, "b"), [CURRENT]);
        s.add_version("c", v(3.0), &cur);
        assert!(stages(&s, "a").is_empty());
        assert_eq!(stages(&s, "b"), [PREVIOUS]);
        assert_eq!(stages(&s, "c"), [CURRENT]);
        s.add_version("d", v(4.0), &[PENDING.to_string()]);
        assert_eq!(stages(&s, "d"), [PENDING]);
        assert_eq!(stages(&s, "c"), [CURRENT]);
        // Back to an older version: the one that was current becomes previous.
        s.move_stage(CURRENT, "b");
        assert_eq!(stages(&s, "b"), [CURRENT]);
        assert_eq!(stages(&s, "c"), [PREVIOUS]);
    }

    /// A deletion whose date has passed: the secret is gone for reads, a create takes its
    /// name back, and housekeeping purges what no call met.
    #[tokio::test]
    async fn due_deletions_free_the_name_on_write_and_go_in_housekeeping() {
        let store = kumori_store::Store::open_memory().await.unwrap();
        let limits = crate::Limits::default();
        let ctx = Ctx::root(&store, "000000000000", "us-east-1", &limits);
        for name in ["a", "b"] {
            secrets::create_secret(&ctx, &json!({ "Name": name, "SecretString": "v" }))
                .await
                .unwrap();
            secrets::delete_secret(
                &ctx,
                &json!({ "SecretId": name, "RecoveryWindowInDays": 7 }),
            )
            .await
            .unwrap();
        }
        // Not yet due: the name stays taken.
        let again = secrets::create_secret(&ctx, &json!({ "Name": "a" })).await;
        assert_eq!(again.unwrap_err().0.code, "InvalidRequestException");
        // Make both due.
        let mut tx = store.write().await.unwrap();
        for name in ["a", "b"] {
            let mut s: Secret = crate::resource::get(&ctx, &mut tx, &key(name))
                .await
                .unwrap()
                .unwrap();
            s.deletion_date = Some(now() - 1.0);
            crate::resource::update(&ctx, &mut tx, &s).await.unwrap();
        }
        tx.commit().await.unwrap();
        let described = secrets::describe_secret(&ctx, &json!({ "SecretId": "a" })).await;
        assert_eq!(described.unwrap_err().0.code, "ResourceNotFoundException");
        secrets::create_secret(&ctx, &json!({ "Name": "a", "SecretString": "new" }))
            .await
            .unwrap();
        assert_eq!(
            sweep(&store, now()).await.unwrap(),
            1,
            "only b was left to purge"
        );
        let mut tx = store.read().await.unwrap();
        assert!(tx.get(ctx.scope(), &key("b")).await.unwrap().is_none());
        assert!(tx.get(ctx.scope(), &key("a")).await.unwrap().is_some());
    }

    #[test]
    fn unlabeled_versions_are_pruned_oldest_first() {
        let mut s = secret();
        let cur = vec![CURRENT.to_string()];
        for i in 0..(KEPT_UNLABELED + 10) {
            s.add_version(&format!("v{i:04}"), v(i as f64), &cur);
        }
        assert_eq!(s.versions.len(), KEPT_UNLABELED + 2);
        assert!(!s.versions.contains_key("v0000"));
    }
}
