//! Secrets and their versions: create, read, put and update values, move staging labels,
//! describe and list, tag, schedule deletion and restore, and rotation's configuration.

use super::{
    CURRENT, MAX_LABELS, PENDING, Secret, Version, check_name, check_tags, find, invalid_parameter,
    invalid_request, key, marked_for_deletion, must_get, must_lock, new_arn, now, store_tags,
};
use crate::kit::Tag;
use crate::{Ctx, Error, Result, input};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

pub const OPERATIONS: &[crate::kit::Op] = crate::operations![
    "CreateSecret" => create_secret,
    "GetSecretValue" => get_secret_value,
    "PutSecretValue" => put_secret_value,
    "UpdateSecret" => update_secret,
    "DescribeSecret" => describe_secret,
    "ListSecrets" => list_secrets,
    "ListSecretVersionIds" => list_secret_version_ids,
    "UpdateSecretVersionStage" => update_secret_version_stage,
    "TagResource" => tag_resource,
    "UntagResource" => untag_resource,
    "DeleteSecret" => delete_secret,
    "RestoreSecret" => restore_secret,
    "RotateSecret" => rotate_secret,
    "CancelRotateSecret" => cancel_rotate_secret,
];

/// A secret value as a request gives it: a string or a base64 blob, never both.
pub(crate) struct NewValue {
    pub string: Option<String>,
    pub binary: Option<String>,
}

pub(crate) fn value_of(string: Option<String>, binary: Option<String>) -> Result<Option<NewValue>> {
    match (string, binary) {
        (Some(_), Some(_)) => Err(invalid_parameter(
            "You can't specify both a binary secret value and a string secret value in the same \
             secret.",
        )),
        (None, None) => Ok(None),
        (string, binary) => {
            if let Some(s) = &string
                && s.len() > 65536
            {
                return Err(invalid_parameter(
                    "SecretString must be at most 65536 characters.",
                ));
            }
            if let Some(b) = &binary {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b)
                    .map_err(|_| invalid_parameter("SecretBinary is not valid base64."))?;
                if bytes.is_empty() || bytes.len() > 65536 {
                    return Err(invalid_parameter("SecretBinary must be 1 to 65536 bytes."));
                }
            }
            Ok(Some(NewValue { string, binary }))
        }
    }
}

/// A version id: the request's ClientRequestToken, else a new UUID.
pub(crate) fn version_id(token: Option<String>) -> Result<String> {
    match token {
        Some(t) if !(32..=64).contains(&t.len()) => Err(invalid_parameter(
            "ClientRequestToken must be 32 to 64 characters.",
        )),
        Some(t) => Ok(t),
        None => Ok(uuid::Uuid::new_v4().to_string()),
    }
}

/// Adds version `id` of `value` to `s` with `stages`; `false` when that version exists
/// with this very value (an idempotent retry: nothing moves). The same token with another
/// value is ResourceExistsException, as AWS answers.
pub(crate) fn put_version(
    s: &mut Secret,
    id: &str,
    value: NewValue,
    stages: &[String],
) -> Result<bool> {
    if let Some(v) = s.versions.get(id) {
        if v.string == value.string && v.binary == value.binary {
            return Ok(false);
        }
        return Err(Error::new(
            "ResourceExistsException",
            "You can't modify an existing version, you can only create a new version.",
        ));
    }
    let t = now();
    s.add_version(
        id,
        Version {
            string: value.string,
            binary: value.binary,
            stages: Vec::new(),
            created: t,
            last_accessed: None,
            kms_key_id: s.kms_key_id.clone(),
        },
        stages,
    );
    check_label_count(s)?;
    s.last_changed = t;
    Ok(true)
}

fn check_label_count(s: &Secret) -> Result<()> {
    let labels: std::collections::HashSet<&str> = s
        .versions
        .values()
        .flat_map(|v| v.stages.iter().map(String::as_str))
        .collect();
    if labels.len() > MAX_LABELS {
        return Err(Error::new(
            "LimitExceededException",
            format!("A secret can have at most {MAX_LABELS} staging labels."),
        ));
    }
    Ok(())
}

/// Refuses a change to a secret that another service manages.
pub(crate) fn not_managed(s: &Secret) -> Result<()> {
    match &s.owning_service {
        Some(owner) => Err(invalid_request(format!(
            "You can't modify secret {} because it's managed by {owner}. Use {owner} to manage \
             it.",
            s.name
        ))),
        None => Ok(()),
    }
}

fn not_deleted(s: &Secret) -> Result<()> {
    if s.is_deleted() {
        return Err(marked_for_deletion());
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateSecretRequest {
    name: String,
    client_request_token: Option<String>,
    description: Option<String>,
    kms_key_id: Option<String>,
    secret_binary: Option<String>,
    secret_string: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
    #[serde(default)]
    add_replica_regions: Vec<Value>,
    #[serde(rename = "Type")]
    secret_type: Option<String>,
}

/// A new secret named `name` (not yet stored), checked against what the name holds now: a
/// live secret is ResourceExistsException, one scheduled for deletion keeps its name.
pub(crate) async fn new_secret(
    ctx: &Ctx<'_>,
    tx: &mut kumori_store::Tx,
    name: &str,
    description: Option<String>,
    kms_key_id: Option<String>,
) -> Result<Secret> {
    check_name(name)?;
    if let Some(old) = find(ctx, tx, name, true).await? {
        if old.is_deleted() {
            return Err(invalid_request(format!(
                "You can't create this secret because a secret with this name is already \
                 scheduled for deletion: {name}"
            )));
        }
        return Err(Error::new(
            "ResourceExistsException",
            format!("The operation failed because the secret {name} already exists."),
        ));
    }
    let t = now();
    Ok(Secret {
        id: key(name),
        name: name.to_string(),
        arn: new_arn(ctx, name),
        description,
        kms_key_id,
        created: t,
        last_changed: t,
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
        versions: Default::default(),
    })
}

pub async fn create_secret(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: CreateSecretRequest = input(raw)?;
    if !req.add_replica_regions.is_empty() {
        return Err(invalid_request(
            "kumori does not replicate secrets to other regions.",
        ));
    }
    check_tags(&req.tags)?;
    let value = value_of(req.secret_string, req.secret_binary)?;
    let version = version_id(req.client_request_token)?;
    let mut tx = ctx.store.write().await?;
    let mut s = new_secret(ctx, &mut tx, &req.name, req.description, req.kms_key_id).await?;
    s.secret_type = req.secret_type;
    let shown_version = match value {
        Some(v) => {
            put_version(&mut s, &version, v, &[CURRENT.to_string()])?;
            Some(version)
        }
        None => None,
    };
    crate::resource::insert(ctx, &mut tx, &s).await?;
    store_tags(ctx, &mut tx, &s.id, &req.tags).await?;
    tx.commit().await?;
    Ok(json!({ "ARN": s.arn, "Name": s.name, "VersionId": shown_version }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetSecretValueRequest {
    secret_id: String,
    version_id: Option<String>,
    version_stage: Option<String>,
}

/// The version a read asks for: by id, by label (AWSCURRENT when neither), or both.
fn chosen<'s>(
    s: &'s Secret,
    version_id: Option<&str>,
    stage: Option<&str>,
) -> Result<(&'s String, &'s Version)> {
    let missing = |what: String| {
        Error::new(
            "ResourceNotFoundException",
            format!("Secrets Manager can't find the specified secret value for {what}"),
        )
    };
    match (version_id, stage) {
        (Some(id), stage) => {
            let (k, v) = s
                .versions
                .get_key_value(id)
                .ok_or_else(|| missing(format!("VersionId: {id}")))?;
            if let Some(st) = stage
                && !v.stages.iter().any(|x| x == st)
            {
                return Err(missing(format!("VersionId: {id} and staging label: {st}")));
            }
            Ok((k, v))
        }
        (None, stage) => {
            let st = stage.unwrap_or(CURRENT);
            s.version_with(st)
                .ok_or_else(|| missing(format!("staging label: {st}")))
        }
    }
}

fn value_out(s: &Secret, id: &str, v: &Version) -> Value {
    json!({
        "ARN": s.arn,
        "Name": s.name,
        "VersionId": id,
        "SecretString": v.string,
        "SecretBinary": v.binary,
        "VersionStages": v.stages,
        "CreatedDate": v.created,
    })
}

pub async fn get_secret_value(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: GetSecretValueRequest = input(raw)?;
    let mut tx = ctx.store.read().await?;
    let s = must_get(ctx, &mut tx, &req.secret_id).await?;
    not_deleted(&s)?;
    let (id, v) = chosen(&s, req.version_id.as_deref(), req.version_stage.as_deref())?;
    Ok(value_out(&s, id, v))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutSecretValueRequest {
    secret_id: String,
    client_request_token: Option<String>,
    secret_binary: Option<String>,
    secret_string: Option<String>,
    version_stages: Option<Vec<String>>,
    rotation_token: Option<String>,
}

pub async fn put_secret_value(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: PutSecretValueRequest = input(raw)?;
    let _ = &req.rotation_token; // only rotation functions send it; nothing to check here
    let value = value_of(req.secret_string, req.secret_binary)?.ok_or_else(|| {
        invalid_parameter("You must provide either SecretString or SecretBinary.")
    })?;
    let stages = req
        .version_stages
        .unwrap_or_else(|| vec![CURRENT.to_string()]);
    if stages.is_empty()
        || stages.len() > 20
        || stages.iter().any(|s| s.is_empty() || s.len() > 256)
    {
        return Err(invalid_parameter("VersionStages must name 1 to 20 labels."));
    }
    let version = version_id(req.client_request_token)?;
    let mut tx = ctx.store.write().await?;
    let mut s = must_lock(ctx, &mut tx, &req.secret_id).await?;
    not_deleted(&s)?;
    not_managed(&s)?;
    if put_version(&mut s, &version, value, &stages)? {
        crate::resource::update(ctx, &mut tx, &s).await?;
    }
    tx.commit().await?;
    Ok(json!({
        "ARN": s.arn,
        "Name": s.name,
        "VersionId": version,
        "VersionStages": s.versions[&version].stages,
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateSecretRequest {
    secret_id: String,
    client_request_token: Option<String>,
    description: Option<String>,
    kms_key_id: Option<String>,
    secret_binary: Option<String>,
    secret_string: Option<String>,
    #[serde(rename = "Type")]
    secret_type: Option<String>,
}

pub async fn update_secret(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: UpdateSecretRequest = input(raw)?;
    let value = value_of(req.secret_string, req.secret_binary)?;
    let version = version_id(req.client_request_token)?;
    let mut tx = ctx.store.write().await?;
    let mut s = must_lock(ctx, &mut tx, &req.secret_id).await?;
    not_deleted(&s)?;
    not_managed(&s)?;
    let t = now();
    if let Some(d) = req.description {
        s.description = Some(d);
        s.last_changed = t;
    }
    if let Some(k) = req.kms_key_id {
        s.kms_key_id = Some(k);
        s.last_changed = t;
    }
    if let Some(ty) = req.secret_type {
        s.secret_type = Some(ty);
        s.last_changed = t;
    }
    let shown_version = match value {
        Some(v) => {
            put_version(&mut s, &version, v, &[CURRENT.to_string()])?;
            Some(version)
        }
        None => None,
    };
    crate::resource::update(ctx, &mut tx, &s).await?;
    tx.commit().await?;
    Ok(json!({ "ARN": s.arn, "Name": s.name, "VersionId": shown_version }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SecretIdRequest {
    secret_id: String,
}

pub async fn describe_secret(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: SecretIdRequest = input(raw)?;
    let mut tx = ctx.store.read().await?;
    let s = must_get(ctx, &mut tx, &req.secret_id).await?;
    let tags = crate::kit::tags_of(&mut tx, ctx.scope(), &s.id).await?;
    Ok(s.described(&tags, "VersionIdsToStages"))
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Filter {
    key: Option<String>,
    #[serde(default)]
    values: Vec<String>,
}

const FILTER_KEYS: &[&str] = &[
    "description",
    "name",
    "tag-key",
    "tag-value",
    "primary-region",
    "owning-service",
    "all",
];

/// Whether `s` passes one filter: any of its values matches (a value starting with `!`
/// matches when nothing it names does); names, descriptions and tags match by prefix, as
/// Secrets Manager's filters do.
fn passes(ctx: &Ctx<'_>, s: &Secret, tags: &[Tag], f: &Filter) -> bool {
    let key = f.key.as_deref().unwrap_or_default();
    let fields: Vec<&str> = match key {
        "name" => vec![s.name.as_str()],
        "description" => s.description.iter().map(String::as_str).collect(),
        "tag-key" => tags.iter().map(|t| t.key.as_str()).collect(),
        "tag-value" => tags.iter().map(|t| t.value.as_str()).collect(),
        "primary-region" => vec![ctx.region],
        "owning-service" => s.owning_service.iter().map(String::as_str).collect(),
        _ => {
            let mut all = vec![s.name.as_str()];
            all.extend(s.description.iter().map(String::as_str));
            all.extend(tags.iter().flat_map(|t| [t.key.as_str(), t.value.as_str()]));
            all
        }
    };
    let exact = matches!(key, "primary-region" | "owning-service");
    let hit = |v: &str| {
        fields.iter().any(|f| {
            if exact {
                *f == v
            } else if key == "all" {
                f.to_lowercase().contains(&v.to_lowercase())
            } else {
                f.starts_with(v)
            }
        })
    };
    f.values.iter().any(|v| match v.strip_prefix('!') {
        Some(neg) => !hit(neg),
        None => hit(v),
    })
}

fn check_filters(filters: &[Filter]) -> Result<()> {
    if filters.len() > 10 {
        return Err(invalid_parameter("At most 10 filters may be given."));
    }
    for f in filters {
        let k = f.key.as_deref().unwrap_or_default();
        if !FILTER_KEYS.contains(&k) {
            return Err(invalid_parameter(format!("Invalid filter key: {k}")));
        }
        if f.values.is_empty() || f.values.len() > 10 {
            return Err(invalid_parameter(format!(
                "The filter {k} needs 1 to 10 values."
            )));
        }
    }
    Ok(())
}

/// The sort key of a secret under `sort_by`, padded so that strings order as the values do.
fn sort_key(s: &Secret, sort_by: &str) -> String {
    let t = |x: f64| format!("{:020.3}", x);
    match sort_by {
        "name" => s.name.clone(),
        "last-changed-date" => t(s.last_changed),
        "last-accessed-date" => t(s.last_accessed.unwrap_or(0.0)),
        _ => t(s.created),
    }
}

/// One page of the secrets `filters` find, in `order` by `sort_by`, after `token`; the
/// next page's token when more remain. The token is the last item's sort key and name.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn listed(
    ctx: &Ctx<'_>,
    tx: &mut kumori_store::Tx,
    filters: &[Filter],
    include_deleted: bool,
    order: &str,
    sort_by: Option<&str>,
    token: Option<&str>,
    max: usize,
) -> Result<(Vec<(Secret, Vec<Tag>)>, Option<String>)> {
    check_filters(filters)?;
    let after = match token {
        Some(t) => Some(decode_token(t)?),
        None => None,
    };
    let sort_by = sort_by.unwrap_or("created-date");
    let all: Vec<Secret> = crate::resource::list(ctx, tx).await?;
    let mut tags = crate::kit::tags_by_resource(tx, ctx.scope(), super::SECRET).await?;
    let t = now();
    let mut items: Vec<((String, String), Secret, Vec<Tag>)> = all
        .into_iter()
        .filter(|s| !s.expired(t) && (include_deleted || !s.is_deleted()))
        .map(|s| {
            let tg = tags.remove(&s.id).unwrap_or_default();
            ((sort_key(&s, sort_by), s.name.clone()), s, tg)
        })
        .filter(|(_, s, tg)| filters.iter().all(|f| passes(ctx, s, tg, f)))
        .collect();
    items.sort_by(|a, b| a.0.cmp(&b.0));
    if order == "desc" {
        items.reverse();
    }
    if let Some(a) = &after {
        items.retain(|(k, _, _)| if order == "desc" { k < a } else { k > a });
    }
    let next = (items.len() > max).then(|| {
        let (k, _, _) = &items[max - 1];
        encode_token(k)
    });
    items.truncate(max);
    Ok((items.into_iter().map(|(_, s, tg)| (s, tg)).collect(), next))
}

fn encode_token(k: &(String, String)) -> String {
    base64::engine::general_purpose::STANDARD.encode(json!([k.0, k.1]).to_string())
}

fn decode_token(t: &str) -> Result<(String, String)> {
    let bad = || {
        Error::new(
            "InvalidNextTokenException",
            "The NextToken value is invalid.",
        )
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(t)
        .map_err(|_| bad())?;
    let v: (String, String) = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    Ok(v)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListSecretsRequest {
    #[serde(default)]
    include_planned_deletion: bool,
    max_results: Option<i64>,
    next_token: Option<String>,
    #[serde(default)]
    filters: Vec<Filter>,
    sort_order: Option<String>,
    sort_by: Option<String>,
}

pub async fn list_secrets(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ListSecretsRequest = input(raw)?;
    let max = match req.max_results {
        Some(n) if !(1..=100).contains(&n) => {
            return Err(invalid_parameter("MaxResults must be between 1 and 100."));
        }
        Some(n) => n as usize,
        None => 100,
    };
    let order = req.sort_order.as_deref().unwrap_or("asc");
    let mut tx = ctx.store.read().await?;
    let (page, next) = listed(
        ctx,
        &mut tx,
        &req.filters,
        req.include_planned_deletion,
        order,
        req.sort_by.as_deref(),
        req.next_token.as_deref(),
        max,
    )
    .await?;
    let list: Vec<Value> = page
        .iter()
        .map(|(s, tags)| s.described(tags, "SecretVersionsToStages"))
        .collect();
    Ok(json!({ "SecretList": list, "NextToken": next }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListSecretVersionIdsRequest {
    secret_id: String,
    max_results: Option<i64>,
    next_token: Option<String>,
    #[serde(default)]
    include_deprecated: bool,
}

pub async fn list_secret_version_ids(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ListSecretVersionIdsRequest = input(raw)?;
    let mut tx = ctx.store.read().await?;
    let s = must_get(ctx, &mut tx, &req.secret_id).await?;
    let items: Vec<(String, Value)> = s
        .versions_by_age()
        .into_iter()
        .filter(|(_, v)| req.include_deprecated || !v.stages.is_empty())
        .enumerate()
        .map(|(i, (id, v))| {
            (
                format!("{i:08}"),
                json!({
                    "VersionId": id,
                    "VersionStages": v.stages,
                    "CreatedDate": v.created,
                    "LastAccessedDate": v.last_accessed,
                    "KmsKeyIds": [v.kms_key_id.clone().unwrap_or_else(|| "DefaultEncryptionKey".into())],
                }),
            )
        })
        .collect();
    let max = req.max_results.map(|n| n.clamp(1, 100) as usize);
    let (page, next) = crate::kit::page(items, |(k, _)| k.clone(), req.next_token.as_deref(), max);
    let versions: Vec<Value> = page.into_iter().map(|(_, v)| v).collect();
    Ok(json!({ "Versions": versions, "NextToken": next, "ARN": s.arn, "Name": s.name }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateSecretVersionStageRequest {
    secret_id: String,
    version_stage: String,
    remove_from_version_id: Option<String>,
    move_to_version_id: Option<String>,
}

pub async fn update_secret_version_stage(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: UpdateSecretVersionStageRequest = input(raw)?;
    let stage = req.version_stage.as_str();
    let mut tx = ctx.store.write().await?;
    let mut s = must_lock(ctx, &mut tx, &req.secret_id).await?;
    not_deleted(&s)?;
    not_managed(&s)?;
    let holder = s.version_with(stage).map(|(id, _)| id.clone());
    for id in [&req.remove_from_version_id, &req.move_to_version_id]
        .into_iter()
        .flatten()
    {
        if !s.versions.contains_key(id) {
            return Err(invalid_parameter(format!(
                "The version {id} doesn't exist in the secret."
            )));
        }
    }
    if let Some(from) = &req.remove_from_version_id
        && holder.as_deref() != Some(from.as_str())
    {
        return Err(invalid_parameter(format!(
            "The staging label {stage} is not attached to version {from}."
        )));
    }
    match (&req.move_to_version_id, &holder) {
        (Some(to), Some(h)) if h != to && req.remove_from_version_id.is_none() => {
            return Err(invalid_parameter(format!(
                "The staging label {stage} is currently attached to version {h}; to move it, \
                 you must also name that version in RemoveFromVersionId."
            )));
        }
        (Some(to), _) => s.move_stage(stage, to),
        (None, _) => {
            if stage == CURRENT {
                return Err(invalid_parameter(
                    "You can't remove the AWSCURRENT staging label; move it to another version \
                     instead.",
                ));
            }
            if let Some(from) = &req.remove_from_version_id
                && let Some(v) = s.versions.get_mut(from)
            {
                v.stages.retain(|x| x != stage);
            }
        }
    }
    check_label_count(&s)?;
    s.last_changed = now();
    crate::resource::update(ctx, &mut tx, &s).await?;
    tx.commit().await?;
    Ok(json!({ "ARN": s.arn, "Name": s.name }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagResourceRequest {
    secret_id: String,
    #[serde(default)]
    tags: Vec<Tag>,
}

pub async fn tag_resource(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: TagResourceRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let s = must_lock(ctx, &mut tx, &req.secret_id).await?;
    let mut tags = crate::kit::tags_of(&mut tx, ctx.scope(), &s.id).await?;
    for t in &req.tags {
        match tags.iter_mut().find(|o| o.key == t.key) {
            Some(o) => o.value = t.value.clone(),
            None => tags.push(t.clone()),
        }
    }
    check_tags(&tags)?;
    store_tags(ctx, &mut tx, &s.id, &tags).await?;
    tx.commit().await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UntagResourceRequest {
    secret_id: String,
    #[serde(default)]
    tag_keys: Vec<String>,
}

pub async fn untag_resource(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: UntagResourceRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let s = must_lock(ctx, &mut tx, &req.secret_id).await?;
    for k in &req.tag_keys {
        tx.delete_tag(ctx.scope(), &s.id, k, None).await?;
    }
    tx.commit().await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteSecretRequest {
    secret_id: String,
    recovery_window_in_days: Option<i64>,
    force_delete_without_recovery: Option<bool>,
}

pub async fn delete_secret(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DeleteSecretRequest = input(raw)?;
    let force = req.force_delete_without_recovery.unwrap_or(false);
    if force && req.recovery_window_in_days.is_some() {
        return Err(invalid_parameter(
            "You can't use ForceDeleteWithoutRecovery in conjunction with \
             RecoveryWindowInDays.",
        ));
    }
    let days = req.recovery_window_in_days.unwrap_or(30);
    if !(7..=30).contains(&days) {
        return Err(invalid_parameter(
            "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).",
        ));
    }
    let mut tx = ctx.store.write().await?;
    let mut s = must_lock(ctx, &mut tx, &req.secret_id).await?;
    not_managed(&s)?;
    let t = now();
    let date = if force {
        tx.delete(ctx.scope(), &s.id).await?;
        t
    } else {
        if s.is_deleted() {
            return Err(invalid_request(
                "You can't perform this operation on the secret because it was already \
                 scheduled for deletion.",
            ));
        }
        let date = t + days as f64 * super::DAY;
        s.deleted = Some(t);
        s.deletion_date = Some(date);
        s.scheduled = true;
        crate::resource::update(ctx, &mut tx, &s).await?;
        date
    };
    tx.commit().await?;
    Ok(json!({ "ARN": s.arn, "Name": s.name, "DeletionDate": date }))
}

pub async fn restore_secret(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: SecretIdRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let mut s = must_lock(ctx, &mut tx, &req.secret_id).await?;
    if s.is_deleted() {
        s.deleted = None;
        s.deletion_date = None;
        s.scheduled = false;
        crate::resource::update(ctx, &mut tx, &s).await?;
    }
    tx.commit().await?;
    Ok(json!({ "ARN": s.arn, "Name": s.name }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RotateSecretRequest {
    secret_id: String,
    client_request_token: Option<String>,
    #[serde(rename = "RotationLambdaARN")]
    rotation_lambda_arn: Option<String>,
    rotation_rules: Option<Value>,
    rotate_immediately: Option<bool>,
}

/// RotateSecret records the rotation's configuration (function, schedule) and turns rotation
/// on, as DescribeSecret then shows it. kumori runs no Lambda functions, so no rotation
/// actually happens: no AWSPENDING version is made and the value does not change. Rotate a
/// secret by hand with PutSecretValue.
pub async fn rotate_secret(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: RotateSecretRequest = input(raw)?;
    let _ = (&req.client_request_token, req.rotate_immediately);
    if let Some(rules) = &req.rotation_rules
        && let Some(days) = rules["AutomaticallyAfterDays"].as_i64()
        && !(1..=1000).contains(&days)
    {
        return Err(invalid_parameter(
            "AutomaticallyAfterDays must be between 1 and 1000.",
        ));
    }
    let mut tx = ctx.store.write().await?;
    let mut s = must_lock(ctx, &mut tx, &req.secret_id).await?;
    not_deleted(&s)?;
    if let Some(arn) = req.rotation_lambda_arn {
        s.rotation_lambda_arn = Some(arn);
    }
    if s.rotation_lambda_arn.is_none() && s.owning_service.is_none() {
        return Err(invalid_request(
            "No Lambda rotation function ARN is associated with this secret.",
        ));
    }
    if let Some(rules) = req.rotation_rules {
        s.rotation_rules = Some(rules);
    }
    s.rotation_enabled = true;
    s.last_changed = now();
    crate::resource::update(ctx, &mut tx, &s).await?;
    tx.commit().await?;
    Ok(json!({ "ARN": s.arn, "Name": s.name }))
}

pub async fn cancel_rotate_secret(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: SecretIdRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let mut s = must_lock(ctx, &mut tx, &req.secret_id).await?;
    not_deleted(&s)?;
    s.rotation_enabled = false;
    let pending = s.version_with(PENDING).map(|(id, _)| id.clone());
    s.last_changed = now();
    crate::resource::update(ctx, &mut tx, &s).await?;
    tx.commit().await?;
    Ok(json!({ "ARN": s.arn, "Name": s.name, "VersionId": pending }))
}
