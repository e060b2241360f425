//! Amazon RDS: DB instances, their subnet groups, parameter groups, snapshots and events, one
//! file per family. The records are the control plane; a real database server behind each
//! instance (crate `kumori-databases`) is driven from them by the server's reconciler,
//! which writes back through `api` what the servers did (`creating` → `backing-up` →
//! `available`, a failover done, a server restarted).
//!
//! Everything is kept in the account and region under `rds-<kind>/<name>` (names are
//! case-insensitive in RDS and kept lowercase, as RDS shows them).

pub mod api;
pub mod engines;
pub mod events;
pub mod instances;
pub mod parameter_groups;
pub mod snapshots;
pub mod subnet_groups;

use crate::kit::Tag;
use crate::{Ctx, Error, Result, input};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub static SERVICE: crate::kit::Service = crate::kit::Service {
    name: "rds",
    tables: &[
        instances::OPERATIONS,
        snapshots::OPERATIONS,
        subnet_groups::OPERATIONS,
        parameter_groups::OPERATIONS,
        engines::OPERATIONS,
        events::OPERATIONS,
        OPERATIONS,
    ],
    before: None,
    region: None,
    resources: Some(resources),
};

pub const OPERATIONS: &[crate::kit::Op] = crate::operations![
    "AddTagsToResource" => add_tags_to_resource,
    "RemoveTagsFromResource" => remove_tags_from_resource,
    "ListTagsForResource" => list_tags_for_resource,
    "DescribeAccountAttributes" => describe_account_attributes,
    "DescribeCertificates" => describe_certificates,
];

pub(crate) fn invalid(message: impl Into<String>) -> Error {
    Error::new("InvalidParameterValue", message)
}

pub(crate) fn combination(message: impl Into<String>) -> Error {
    Error::new("InvalidParameterCombination", message)
}

pub(crate) fn arn(ctx: &Ctx<'_>, kind: &str, name: &str) -> String {
    crate::resource::arn("rds", ctx.region, ctx.account, &format!("{kind}:{name}"))
}

/// RDS's identifiers (instances, snapshots, parameter groups): 1 to `max` letters, digits
/// and hyphens, a letter first, no hyphen last or two in a row. Kept lowercase.
pub(crate) fn check_identifier(what: &str, id: &str, max: usize) -> Result<String> {
    let ok = !id.is_empty()
        && id.len() <= max
        && id.starts_with(|c: char| c.is_ascii_alphabetic())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !id.ends_with('-')
        && !id.contains("--");
    if !ok {
        return Err(invalid(format!(
            "The parameter {what} is not a valid identifier. Identifiers must begin with a \
             letter; must contain only ASCII letters, digits, and hyphens; and must not end \
             with a hyphen or contain two consecutive hyphens."
        )));
    }
    Ok(id.to_ascii_lowercase())
}

/// An RDS tag as its wire has it.
pub(crate) fn check_tags(tags: &[Tag]) -> Result<()> {
    if tags.len() > 50 {
        return Err(Error::new(
            "TagQuotaPerResourceExceeded",
            "Cannot add more than 50 tags to a resource",
        ));
    }
    for t in tags {
        if t.key.starts_with("aws:") || t.key.starts_with("rds:") {
            return Err(invalid(format!(
                "Tag keys cannot start with aws: or rds: ({})",
                t.key
            )));
        }
    }
    Ok(())
}

pub(crate) async fn store_tags(
    ctx: &Ctx<'_>,
    tx: &mut kumori_store::Tx,
    arn: &str,
    kind: &str,
    tags: &[Tag],
) -> Result<()> {
    let pairs: Vec<(String, String)> = tags
        .iter()
        .map(|t| (t.key.clone(), t.value.clone()))
        .collect();
    tx.set_tags(ctx.scope(), arn, kind, &pairs).await?;
    Ok(())
}

/// The store's id and kind of the resource an RDS ARN names, when it exists.
async fn resource_of(ctx: &Ctx<'_>, tx: &mut kumori_store::Tx, arn: &str) -> Result<&'static str> {
    let mut parts = arn.splitn(7, ':');
    let (Some("arn"), _, Some("rds"), _, _, Some(kind), Some(name)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(invalid(format!("Invalid resource name: {arn}")));
    };
    let (store_kind, id, missing): (&'static str, String, Error) = match kind {
        "db" => (
            instances::KIND,
            instances::key(name),
            instances::not_found(name),
        ),
        "snapshot" => (
            snapshots::KIND,
            snapshots::key(name),
            snapshots::not_found(name),
        ),
        "subgrp" => (
            subnet_groups::KIND,
            subnet_groups::key(name),
            subnet_groups::not_found(name),
        ),
        "pg" => (
            parameter_groups::KIND,
            parameter_groups::key(name),
            parameter_groups::not_found(name),
        ),
        _ => return Err(invalid(format!("Invalid resource name: {arn}"))),
    };
    match tx.get(ctx.scope(), &id).await? {
        Some(r) if r.kind == store_kind => Ok(store_kind),
        _ => Err(missing),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagsRequest {
    resource_name: String,
    #[serde(default)]
    tags: Vec<Tag>,
    #[serde(default)]
    tag_keys: Vec<String>,
}

pub async fn add_tags_to_resource(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: TagsRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let kind = resource_of(ctx, &mut tx, &req.resource_name).await?;
    let mut tags = crate::kit::tags_of(&mut tx, ctx.scope(), &req.resource_name).await?;
    for t in &req.tags {
        match tags.iter_mut().find(|o| o.key == t.key) {
            Some(o) => o.value = t.value.clone(),
            None => tags.push(t.clone()),
        }
    }
    check_tags(&tags)?;
    store_tags(ctx, &mut tx, &req.resource_name, kind, &tags).await?;
    tx.commit().await?;
    Ok(json!({}))
}

pub async fn remove_tags_from_resource(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: TagsRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    resource_of(ctx, &mut tx, &req.resource_name).await?;
    for key in &req.tag_keys {
        tx.delete_tag(ctx.scope(), &req.resource_name, key, None)
            .await?;
    }
    tx.commit().await?;
    Ok(json!({}))
}

pub async fn list_tags_for_resource(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: TagsRequest = input(raw)?;
    let mut tx = ctx.store.read().await?;
    resource_of(ctx, &mut tx, &req.resource_name).await?;
    let tags = crate::kit::tags_of(&mut tx, ctx.scope(), &req.resource_name).await?;
    Ok(json!({ "TagList": tags }))
}

/// RDS's quotas, as DescribeAccountAttributes shows them (AWS's defaults).
pub async fn describe_account_attributes(ctx: &Ctx<'_>, _raw: &Value) -> Result<Value> {
    let mut tx = ctx.store.read().await?;
    let used = |n: usize| n as i64;
    let quotas = [
        (
            "DBInstances",
            used(tx.count(ctx.scope(), instances::KIND).await?),
            40,
        ),
        (
            "DBSubnetGroups",
            used(tx.count(ctx.scope(), subnet_groups::KIND).await?),
            50,
        ),
        (
            "DBParameterGroups",
            used(tx.count(ctx.scope(), parameter_groups::KIND).await?),
            50,
        ),
        (
            "ManualSnapshots",
            used(tx.count(ctx.scope(), snapshots::KIND).await?),
            100,
        ),
        ("AllocatedStorage", 0, 100_000),
        ("ReadReplicasPerMaster", 0, 15),
        ("SubnetsPerDBSubnetGroup", 0, 20),
    ];
    let list: Vec<Value> = quotas
        .iter()
        .map(|(name, used, max)| json!({ "AccountQuotaName": name, "Used": used, "Max": max }))
        .collect();
    Ok(json!({ "AccountQuotas": list }))
}

/// The certificate authorities RDS offers (their names; kumori's servers speak no TLS).
pub async fn describe_certificates(_ctx: &Ctx<'_>, _raw: &Value) -> Result<Value> {
    let certs: Vec<Value> = [
        ("rds-ca-rsa2048-g1", "RSA2048", true),
        ("rds-ca-rsa4096-g1", "RSA4096", false),
        ("rds-ca-ecc384-g1", "ECC384", false),
    ]
    .iter()
    .map(|(id, kind, default)| {
        json!({
            "CertificateIdentifier": id,
            "CertificateType": format!("CA-{kind}"),
            "CustomerOverride": false,
            "ValidFrom": "2021-05-25T23:34:57Z",
            "ValidTill": "2061-05-25T23:34:57Z",
            "Thumbprint": "",
            "CertificateArn": format!("arn:aws:rds:us-east-1::cert:{id}"),
            "CustomerOverrideValidTill": null,
            "IsDefault": default,
        })
    })
    .collect();
    Ok(json!({ "Certificates": certs, "DefaultCertificateForNewLaunches": "rds-ca-rsa2048-g1" }))
}

/// One page of a describe as RDS pages them (`MaxRecords` 20 to 100, default 100;
/// `Marker`), items in key order.
pub(crate) fn page<T: Serialize>(
    mut items: Vec<(String, T)>,
    member: &str,
    marker: Option<&str>,
    max_records: Option<i64>,
) -> Result<Value> {
    if let Some(m) = max_records
        && !(20..=100).contains(&m)
    {
        return Err(invalid(format!(
            "Invalid value {m} for MaxRecords. Must be between 20 and 100"
        )));
    }
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let max = Some(max_records.unwrap_or(100) as usize);
    let (shown, next) = crate::kit::page(items, |(k, _)| k.clone(), marker, max);
    let shown: Vec<Value> = shown
        .into_iter()
        .map(|(_, v)| serde_json::to_value(v).unwrap_or_default())
        .collect();
    let mut out = json!({ member: shown });
    if let Some(n) = next {
        out["Marker"] = json!(n);
    }
    Ok(out)
}

/// RDS's describe filters: `Filters.Filter.N.Name` with its values.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Filter {
    pub name: String,
    #[serde(default)]
    pub values: Vec<String>,
}

/// Whether `value` passes every filter named `name` (absent filters pass).
pub(crate) fn passes(filters: &[Filter], name: &str, value: &str) -> bool {
    filters
        .iter()
        .filter(|f| f.name == name)
        .all(|f| f.values.iter().any(|v| v == value))
}

/// Refuses filters a describe does not know, as RDS does.
pub(crate) fn known_filters(filters: &[Filter], known: &[&str]) -> Result<()> {
    for f in filters {
        if !known.contains(&f.name.as_str()) {
            return Err(invalid(format!("Unrecognized filter name: {}.", f.name)));
        }
    }
    Ok(())
}

/// The ARNs a call acts on, for `--auth enforce`.
fn resources(ctx: &Ctx<'_>, _caller: &crate::Caller, call: &kumori_protocol::Call) -> Vec<String> {
    let mut out = Vec::new();
    for key in [
        "DBInstanceIdentifier",
        "SourceDBInstanceIdentifier",
        "TargetDBInstanceIdentifier",
    ] {
        if let Some(id) = call.input[key].as_str() {
            out.push(if id.starts_with("arn:") {
                id.to_string()
            } else {
                arn(ctx, "db", &id.to_ascii_lowercase())
            });
        }
    }
    if let Some(id) = call.input["DBSnapshotIdentifier"].as_str() {
        out.push(arn(ctx, "snapshot", &id.to_ascii_lowercase()));
    }
    if let Some(id) = call.input["DBSubnetGroupName"].as_str() {
        out.push(arn(ctx, "subgrp", &id.to_ascii_lowercase()));
    }
    if let Some(id) = call.input["DBParameterGroupName"].as_str() {
        out.push(arn(ctx, "pg", &id.to_ascii_lowercase()));
    }
    if let Some(a) = call.input["ResourceName"].as_str() {
        out.push(a.to_string());
    }
    if out.is_empty() {
        out.push("*".into());
    }
    out
}
