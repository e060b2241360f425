//! Key pairs: CreateKeyPair, ImportKeyPair, DescribeKeyPairs, DeleteKeyPair.
//!
//! The key work (generation, PEM/OpenSSH/PuTTY files, parsing imported public keys, AWS's
//! fingerprints) lives in `kumori-keys`; this module is EC2's rules around it. A created
//! private key is handed back once and never stored: only the public key is kept, for
//! `IncludePublicKey` and, later, for instances' `authorized_keys`.

use super::common::{
    Filter, Filterable, Tag, TagSpecification, check_filters, dry_run, invalid_value, matches,
    put_tags, tags_by_resource, tags_from_specs,
};
use super::generic::Ec2Resource;
use crate::resource::{self, Resource, new_id};
use crate::{Ctx, Error, Result, input, output};
use base64::Engine;
use kumori_keys::{KeyError, KeyFormat, KeyType};
use kumori_protocol::AwsError;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyPair {
    pub key_pair_id: String,
    pub key_name: String,
    pub key_fingerprint: String,
    pub key_type: String,
    /// The OpenSSH one-line public key.
    pub public_key: String,
    pub create_time: String,
}

impl Resource for KeyPair {
    const KIND: &'static str = "key-pair";
    fn id(&self) -> &str {
        &self.key_pair_id
    }
}

impl Ec2Resource for KeyPair {
    const ID_PREFIX: &'static str = "key";
    const ID_ERROR: &'static str = "InvalidKeyPair";
    fn not_found(id: &str) -> Error {
        not_found(id)
    }
}

impl Filterable for KeyPair {
    const FILTERS: &'static [&'static str] =
        &["fingerprint", "key-name", "key-pair-id", "key-type"];
    fn field(&self, name: &str) -> Vec<String> {
        match name {
            "fingerprint" => vec![self.key_fingerprint.clone()],
            "key-name" => vec![self.key_name.clone()],
            "key-pair-id" => vec![self.key_pair_id.clone()],
            "key-type" => vec![self.key_type.clone()],
            _ => vec![],
        }
    }
}

fn not_found(name_or_id: &str) -> Error {
    Error::new(
        "InvalidKeyPair.NotFound",
        format!("The key pair '{name_or_id}' does not exist"),
    )
}

/// EC2's key name rules: 1 to 255 ASCII characters.
fn check_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::new(
            "MissingParameter",
            "The request must contain the parameter KeyName",
        ));
    }
    if !name.is_ascii() || name.chars().any(|c| c.is_ascii_control()) {
        return Err(invalid_value(format!(
            "Value ({name}) for parameter keyName is invalid. Character sets beyond ASCII are not supported."
        )));
    }
    if name.len() > 255 {
        return Err(invalid_value(format!(
            "Value ({name}) for parameter keyName is invalid. Length exceeds maximum of 255."
        )));
    }
    Ok(())
}

/// Stores `key` unless its name is taken in this region.
async fn insert(ctx: &Ctx<'_>, key: &KeyPair, tags: &[Tag]) -> Result<()> {
    let mut tx = ctx.store.write().await?;
    let all: Vec<KeyPair> = resource::list(ctx, &mut tx).await?;
    if all.iter().any(|k| k.key_name == key.key_name) {
        return Err(Error::new(
            "InvalidKeyPair.Duplicate",
            format!("The keypair '{}' already exists.", key.key_name),
        ));
    }
    resource::insert(ctx, &mut tx, key).await?;
    put_tags(ctx, &mut tx, &key.key_pair_id, KeyPair::KIND, tags).await?;
    tx.commit().await?;
    Ok(())
}

fn key_type_name(t: KeyType) -> &'static str {
    match t {
        KeyType::Rsa => "rsa",
        KeyType::Ed25519 => "ed25519",
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateKeyPairRequest {
    key_name: String,
    key_type: Option<String>,
    key_format: Option<String>,
    #[serde(default)]
    tag_specifications: Vec<TagSpecification>,
    dry_run: Option<bool>,
}

pub async fn create_key_pair(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: CreateKeyPairRequest = input(raw)?;
    check_name(&req.key_name)?;
    // The model has already limited both to their enums.
    let key_type = match req.key_type.as_deref() {
        Some("ed25519") => KeyType::Ed25519,
        _ => KeyType::Rsa,
    };
    let format = match req.key_format.as_deref() {
        Some("ppk") => KeyFormat::Ppk,
        _ => KeyFormat::Pem,
    };
    let tags = tags_from_specs(&req.tag_specifications, KeyPair::KIND)?;
    dry_run(req.dry_run)?;
    // RSA generation takes a fifth of a second: off the request threads, and before the write
    // transaction, which should never wait on it.
    let name = req.key_name.clone();
    let created = tokio::task::spawn_blocking(move || kumori_keys::create(key_type, format, &name))
        .await
        .map_err(|e| Error(AwsError::internal(format!("key generation failed: {e}"))))?
        .map_err(|e| Error(AwsError::internal(format!("key generation failed: {e}"))))?;
    let key = KeyPair {
        key_pair_id: new_id("key"),
        key_name: req.key_name,
        key_fingerprint: created.fingerprint,
        key_type: key_type_name(created.key_type).into(),
        public_key: created.public_openssh,
        create_time: kumori_protocol::time::now_iso(),
    };
    insert(ctx, &key, &tags).await?;
    let mut out = json!({
        "KeyPairId": key.key_pair_id,
        "KeyName": key.key_name,
        "KeyFingerprint": key.key_fingerprint,
        "KeyMaterial": created.private_material,
    });
    if !tags.is_empty() {
        out["Tags"] = output(&tags)?;
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ImportKeyPairRequest {
    key_name: String,
    /// Base64 on the wire (a blob); the bytes of the user's public key file.
    public_key_material: String,
    #[serde(default)]
    tag_specifications: Vec<TagSpecification>,
    dry_run: Option<bool>,
}

/// An OpenSSH public key line with `comment` in place of its own.
fn with_comment(line: &str, comment: &str) -> String {
    let mut fields = line.split_whitespace();
    match (fields.next(), fields.next()) {
        (Some(kind), Some(blob)) => format!("{kind} {blob} {comment}"),
        _ => line.to_string(),
    }
}

pub async fn import_key_pair(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ImportKeyPairRequest = input(raw)?;
    check_name(&req.key_name)?;
    let material = base64::engine::general_purpose::STANDARD
        .decode(req.public_key_material.trim())
        .map_err(|_| {
            invalid_value("Value for parameter publicKeyMaterial is invalid. It must be base64.")
        })?;
    let imported = kumori_keys::import(&material).map_err(|e| match e {
        KeyError::Format(m) => Error::new("InvalidKey.Format", m),
        KeyError::Unsupported(m) => Error::new("InvalidKey.Format", m),
    })?;
    let tags = tags_from_specs(&req.tag_specifications, KeyPair::KIND)?;
    dry_run(req.dry_run)?;
    let key = KeyPair {
        key_pair_id: new_id("key"),
        key_name: req.key_name.clone(),
        key_fingerprint: imported.fingerprint,
        key_type: key_type_name(imported.key_type).into(),
        // EC2 shows an imported key with the key's name as its comment, whatever the
        // material carried.
        public_key: with_comment(&imported.public_openssh, &req.key_name),
        create_time: kumori_protocol::time::now_iso(),
    };
    insert(ctx, &key, &tags).await?;
    let mut out = json!({
        "KeyPairId": key.key_pair_id,
        "KeyName": key.key_name,
        "KeyFingerprint": key.key_fingerprint,
    });
    if !tags.is_empty() {
        out["Tags"] = output(&tags)?;
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeKeyPairsRequest {
    #[serde(default)]
    key_names: Vec<String>,
    #[serde(default)]
    key_pair_ids: Vec<String>,
    #[serde(default)]
    filters: Vec<Filter>,
    include_public_key: Option<bool>,
    dry_run: Option<bool>,
}

/// Not `generic::describe`: ids are names (KeyNames) as well as ids (KeyPairIds), with no
/// `.Malformed` check; IncludePublicKey changes what is shown, and EC2 does not page key pairs.
pub async fn describe_key_pairs(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DescribeKeyPairsRequest = input(raw)?;
    check_filters::<KeyPair>(&req.filters)?;
    let mut tx = ctx.store.read().await?;
    let all: Vec<KeyPair> = resource::list(ctx, &mut tx).await?;
    let tags = tags_by_resource(ctx, &mut tx, KeyPair::KIND).await?;
    drop(tx);
    // Every name and id asked for must exist.
    for name in &req.key_names {
        if !all.iter().any(|k| &k.key_name == name) {
            return Err(not_found(name));
        }
    }
    for id in &req.key_pair_ids {
        if !all.iter().any(|k| &k.key_pair_id == id) {
            return Err(not_found(id));
        }
    }
    dry_run(req.dry_run)?;
    let none = Vec::new();
    let with_key = req.include_public_key == Some(true);
    let shown = all
        .iter()
        .filter(|k| req.key_names.is_empty() || req.key_names.contains(&k.key_name))
        .filter(|k| req.key_pair_ids.is_empty() || req.key_pair_ids.contains(&k.key_pair_id))
        .filter(|k| matches(*k, tags.get(&k.key_pair_id).unwrap_or(&none), &req.filters))
        .map(|k| {
            let mut v = output(k)?;
            if !with_key && let Some(o) = v.as_object_mut() {
                o.remove("PublicKey");
            }
            if let Some(t) = tags.get(&k.key_pair_id) {
                v["Tags"] = output(t)?;
            }
            Ok(v)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(json!({ "KeyPairs": shown }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteKeyPairRequest {
    key_name: Option<String>,
    key_pair_id: Option<String>,
    dry_run: Option<bool>,
}

/// Deleting a key pair that does not exist succeeds, as on EC2: the call is idempotent.
pub async fn delete_key_pair(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DeleteKeyPairRequest = input(raw)?;
    if req.key_name.is_none() && req.key_pair_id.is_none() {
        return Err(Error::new(
            "MissingParameter",
            "The request must contain the parameter KeyName or KeyPairId",
        ));
    }
    let mut tx = ctx.store.write().await?;
    let all: Vec<KeyPair> = resource::list(ctx, &mut tx).await?;
    let found = all.into_iter().find(|k| {
        req.key_pair_id
            .as_ref()
            .is_some_and(|id| &k.key_pair_id == id)
            || req.key_name.as_ref().is_some_and(|n| &k.key_name == n)
    });
    dry_run(req.dry_run)?;
    let Some(key) = found else {
        return Ok(json!({ "Return": true }));
    };
    tx.delete(ctx.scope(), &key.key_pair_id).await?;
    tx.commit().await?;
    Ok(json!({ "Return": true, "KeyPairId": key.key_pair_id }))
}
