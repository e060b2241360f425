//! DHCP options sets: CreateDhcpOptions, DescribeDhcpOptions, DeleteDhcpOptions,
//! AssociateDhcpOptions, and the region's default set that every new VPC gets.

use super::common::{
    Filterable, TagSpecification, dry_run, invalid_value, put_tags, tags_from_specs,
};
use super::generic::describe_call;
use super::generic::{Ec2Resource, check_id};
use super::vpc::{self, Vpc};
use crate::resource::{self, Resource, new_id};
use crate::{Ctx, Error, Result, input};
use kumori_store::Tx;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::net::IpAddr;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DhcpOptions {
    pub dhcp_options_id: String,
    pub owner_id: String,
    pub dhcp_configurations: Vec<DhcpConfiguration>,
    /// The region's default set, which new VPCs get. Kept in the document only: the output
    /// shape has no such member, so it never reaches the wire.
    #[serde(default, rename = "KumoriRegionDefault")]
    pub region_default: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DhcpConfiguration {
    pub key: String,
    pub values: Vec<AttributeValue>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttributeValue {
    pub value: String,
}

impl Resource for DhcpOptions {
    const KIND: &'static str = "dhcp-options";
    fn id(&self) -> &str {
        &self.dhcp_options_id
    }
}

impl Filterable for DhcpOptions {
    const FILTERS: &'static [&'static str] = &["dhcp-options-id", "key", "value", "owner-id"];
    fn field(&self, name: &str) -> Vec<String> {
        let confs = &self.dhcp_configurations;
        match name {
            "dhcp-options-id" => vec![self.dhcp_options_id.clone()],
            "key" => confs.iter().map(|c| c.key.clone()).collect(),
            "value" => confs
                .iter()
                .flat_map(|c| c.values.iter().map(|v| v.value.clone()))
                .collect(),
            "owner-id" => vec![self.owner_id.clone()],
            _ => vec![],
        }
    }
}

impl Ec2Resource for DhcpOptions {
    const ID_PREFIX: &'static str = "dopt";
    const ID_ERROR: &'static str = "InvalidDhcpOptionID";
    /// EC2's error list spells this one differently from its NotFound.
    fn malformed_code() -> String {
        "InvalidDhcpOptionsId.Malformed".into()
    }
    fn not_found(id: &str) -> Error {
        Error::new(
            "InvalidDhcpOptionID.NotFound",
            format!("The dhcpOption ID '{id}' does not exist"),
        )
    }
}

/// The id of the region's default DHCP options set, created inside `tx` on first use (the
/// write transaction makes concurrent first uses create it once).
pub async fn ensure_default(ctx: &Ctx<'_>, tx: &mut Tx) -> Result<String> {
    let all: Vec<DhcpOptions> = resource::list(ctx, tx).await?;
    if let Some(d) = all.iter().find(|d| d.region_default) {
        return Ok(d.dhcp_options_id.clone());
    }
    // AWS names hosts `ec2.internal` in us-east-1 and `<region>.compute.internal` elsewhere.
    let domain = if ctx.region == "us-east-1" {
        "ec2.internal".to_string()
    } else {
        format!("{}.compute.internal", ctx.region)
    };
    let d = DhcpOptions {
        dhcp_options_id: new_id("dopt"),
        owner_id: ctx.account.to_string(),
        dhcp_configurations: vec![
            DhcpConfiguration {
                key: "domain-name".into(),
                values: vec![AttributeValue { value: domain }],
            },
            DhcpConfiguration {
                key: "domain-name-servers".into(),
                values: vec![AttributeValue {
                    value: "AmazonProvidedDNS".into(),
                }],
            },
        ],
        region_default: true,
    };
    resource::insert(ctx, tx, &d).await?;
    Ok(d.dhcp_options_id)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NewDhcpConfiguration {
    key: Option<String>,
    #[serde(default)]
    values: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateDhcpOptionsRequest {
    dhcp_configurations: Vec<NewDhcpConfiguration>,
    #[serde(default)]
    tag_specifications: Vec<TagSpecification>,
    dry_run: Option<bool>,
}

/// Checks one option as EC2 does: known keys, at most four servers, addresses that parse.
fn validate(key: &str, values: &[String]) -> Result<()> {
    let servers = matches!(
        key,
        "domain-name-servers" | "ntp-servers" | "netbios-name-servers"
    );
    let known = servers
        || matches!(
            key,
            "domain-name" | "netbios-node-type" | "ipv6-address-preferred-lease-time"
        );
    if !known {
        return Err(invalid_value(format!(
            "Value ({key}) for parameter name is invalid. Unknown DHCP option"
        )));
    }
    if values.is_empty() {
        return Err(invalid_value(format!(
            "Value for parameter {key} is missing."
        )));
    }
    if servers {
        if values.len() > 4 {
            return Err(invalid_value(format!(
                "Value for parameter {key} is invalid: at most 4 servers are allowed."
            )));
        }
        for v in values {
            let amazon = key == "domain-name-servers" && v == "AmazonProvidedDNS";
            if !amazon && v.parse::<IpAddr>().is_err() {
                return Err(invalid_value(format!(
                    "Value ({v}) for parameter {key} is invalid. It must be an IP address."
                )));
            }
        }
    }
    if key == "netbios-node-type"
        && !values
            .iter()
            .all(|v| matches!(v.as_str(), "1" | "2" | "4" | "8"))
    {
        return Err(invalid_value(
            "Value for parameter netbios-node-type is invalid. Valid values: 1, 2, 4, 8.",
        ));
    }
    Ok(())
}

pub async fn create_dhcp_options(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: CreateDhcpOptionsRequest = input(raw)?;
    let mut confs: Vec<DhcpConfiguration> = Vec::new();
    for c in &req.dhcp_configurations {
        let key = c
            .key
            .clone()
            .ok_or_else(|| invalid_value("Value for parameter name is missing."))?;
        validate(&key, &c.values)?;
        if confs.iter().any(|x| x.key == key) {
            return Err(invalid_value(format!("Duplicate DHCP option: {key}")));
        }
        let values = c
            .values
            .iter()
            .map(|v| AttributeValue { value: v.clone() })
            .collect();
        confs.push(DhcpConfiguration { key, values });
    }
    let tags = tags_from_specs(&req.tag_specifications, DhcpOptions::KIND)?;
    dry_run(req.dry_run)?;
    let d = DhcpOptions {
        dhcp_options_id: new_id("dopt"),
        owner_id: ctx.account.to_string(),
        dhcp_configurations: confs,
        region_default: false,
    };
    let mut tx = ctx.store.write().await?;
    resource::insert(ctx, &mut tx, &d).await?;
    put_tags(ctx, &mut tx, &d.dhcp_options_id, DhcpOptions::KIND, &tags).await?;
    tx.commit().await?;
    Ok(json!({ "DhcpOptions": d.shown(&tags)? }))
}

pub async fn describe_dhcp_options(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    describe_call::<DhcpOptions>(ctx, raw, "DhcpOptionsIds", "DhcpOptions").await
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteDhcpOptionsRequest {
    dhcp_options_id: String,
    dry_run: Option<bool>,
}

pub async fn delete_dhcp_options(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DeleteDhcpOptionsRequest = input(raw)?;
    let id = req.dhcp_options_id.as_str();
    check_id::<DhcpOptions>(id)?;
    let mut tx = ctx.store.write().await?;
    let _: DhcpOptions = resource::lock(ctx, &mut tx, id)
        .await?
        .ok_or_else(|| DhcpOptions::not_found(id))?;
    // VPCs point at their options set rather than living in it, so look at every VPC.
    let vpcs: Vec<Vpc> = resource::list(ctx, &mut tx).await?;
    if vpcs.iter().any(|v| v.dhcp_options_id == id) {
        return Err(Error::new(
            "DependencyViolation",
            format!("The dhcpOptions '{id}' has dependencies and cannot be deleted."),
        ));
    }
    dry_run(req.dry_run)?;
    tx.delete(ctx.scope(), id).await?;
    tx.commit().await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AssociateDhcpOptionsRequest {
    dhcp_options_id: String,
    vpc_id: String,
    dry_run: Option<bool>,
}

pub async fn associate_dhcp_options(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: AssociateDhcpOptionsRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let mut vpc: Vpc = resource::lock(ctx, &mut tx, &req.vpc_id)
        .await?
        .ok_or_else(|| vpc::not_found(&req.vpc_id))?;
    // `default` is AWS's word for "no options set".
    if req.dhcp_options_id != "default" {
        check_id::<DhcpOptions>(&req.dhcp_options_id)?;
        let _: DhcpOptions = resource::get(ctx, &mut tx, &req.dhcp_options_id)
            .await?
            .ok_or_else(|| DhcpOptions::not_found(&req.dhcp_options_id))?;
    }
    dry_run(req.dry_run)?;
    vpc.dhcp_options_id = req.dhcp_options_id;
    resource::update(ctx, &mut tx, &vpc).await?;
    tx.commit().await?;
    Ok(json!({}))
}
