//! DB subnet groups: the subnets, in at least two zones of one VPC, an instance's endpoint
//! may be placed in. `default` is the default VPC's, made when an instance first needs it.

use super::{check_tags, invalid, store_tags};
use crate::kit::Tag;
use crate::resource::{self, Resource};
use crate::{Ctx, Error, Result, input};
use kumori_store::Tx;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub const OPERATIONS: &[crate::kit::Op] = crate::operations![
    "CreateDBSubnetGroup" => create_db_subnet_group,
    "DescribeDBSubnetGroups" => describe_db_subnet_groups,
    "ModifyDBSubnetGroup" => modify_db_subnet_group,
    "DeleteDBSubnetGroup" => delete_db_subnet_group,
];

pub const KIND: &str = "rds-db-subnet-group";

pub fn key(name: &str) -> String {
    format!("rds-subnet-group/{}", name.to_ascii_lowercase())
}

pub fn not_found(name: &str) -> Error {
    Error::new(
        "DBSubnetGroupNotFoundFault",
        format!("DBSubnetGroup {name} not found."),
    )
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Member {
    pub subnet_id: String,
    pub availability_zone: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SubnetGroup {
    pub name: String,
    pub description: String,
    pub vpc_id: String,
    pub subnets: Vec<Member>,
    pub arn: String,
    #[serde(skip)]
    pub kumori_key: String,
}

impl Resource for SubnetGroup {
    const KIND: &'static str = KIND;
    fn id(&self) -> &str {
        &self.kumori_key
    }
}

impl SubnetGroup {
    pub fn view(&self) -> Value {
        let subnets: Vec<Value> = self
            .subnets
            .iter()
            .map(|s| {
                json!({
                    "SubnetIdentifier": s.subnet_id,
                    "SubnetAvailabilityZone": { "Name": s.availability_zone },
                    "SubnetOutpost": {},
                    "SubnetStatus": "Active",
                })
            })
            .collect();
        json!({
            "DBSubnetGroupName": self.name,
            "DBSubnetGroupDescription": self.description,
            "VpcId": self.vpc_id,
            "SubnetGroupStatus": "Complete",
            "Subnets": subnets,
            "DBSubnetGroupArn": self.arn,
            "SupportedNetworkTypes": ["IPV4"],
        })
    }

    /// The zones it covers, in order.
    pub fn zones(&self) -> Vec<String> {
        let mut z: Vec<String> = self
            .subnets
            .iter()
            .map(|s| s.availability_zone.clone())
            .collect();
        z.sort();
        z.dedup();
        z
    }
}

/// The group `name`, read in `tx` (`key` gives its store id).
pub async fn get(ctx: &Ctx<'_>, tx: &mut Tx, name: &str) -> Result<Option<SubnetGroup>> {
    let k = key(name);
    Ok(resource::get::<SubnetGroup>(ctx, tx, &k)
        .await?
        .map(|mut g| {
            g.kumori_key = k;
            g
        }))
}

async fn save(ctx: &Ctx<'_>, tx: &mut Tx, g: &SubnetGroup, new: bool) -> Result<()> {
    let mut g = g.clone();
    g.kumori_key = key(&g.name);
    if new {
        resource::insert(ctx, tx, &g).await
    } else {
        resource::update(ctx, tx, &g).await
    }
}

/// The subnets named, checked: they exist, share one VPC and cover two zones.
async fn members(ctx: &Ctx<'_>, tx: &mut Tx, ids: &[String]) -> Result<(String, Vec<Member>)> {
    if ids.is_empty() {
        return Err(Error::new("InvalidSubnet", "Subnet IDs are required."));
    }
    let mut out: Vec<Member> = Vec::new();
    let mut vpc: Option<String> = None;
    let mut bad = Vec::new();
    for id in ids {
        match crate::ec2::api::subnet(ctx, tx, id).await? {
            Some(s) => {
                if let Some(v) = &vpc
                    && *v != s.vpc_id
                {
                    return Err(Error::new(
                        "InvalidSubnet",
                        format!(
                            "The subnets of a DB subnet group must be in one VPC: {} is in {}, not {v}.",
                            s.subnet_id, s.vpc_id
                        ),
                    ));
                }
                vpc = Some(s.vpc_id.clone());
                if !out.iter().any(|m| m.subnet_id == s.subnet_id) {
                    out.push(Member {
                        subnet_id: s.subnet_id,
                        availability_zone: s.availability_zone,
                    });
                }
            }
            None => bad.push(id.clone()),
        }
    }
    if !bad.is_empty() {
        return Err(Error::new(
            "InvalidSubnet",
            format!("Some input subnets in :[{}] are invalid.", bad.join(", ")),
        ));
    }
    let mut zones: Vec<&str> = out.iter().map(|m| m.availability_zone.as_str()).collect();
    zones.sort();
    zones.dedup();
    if zones.len() < 2 {
        return Err(Error::new(
            "DBSubnetGroupDoesNotCoverEnoughAZs",
            format!(
                "The DB subnet group doesn't meet Availability Zone (AZ) coverage requirement. \
                 Current AZ coverage: {}. Add subnets to cover at least 2 AZs.",
                zones.join(", ")
            ),
        ));
    }
    Ok((vpc.unwrap_or_default(), out))
}

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ' ' | '-'));
    if !ok {
        return Err(invalid(
            "The parameter DBSubnetGroupName is not a valid identifier: it must contain no \
             more than 255 letters, numbers, periods, underscores, spaces, or hyphens.",
        ));
    }
    if name.eq_ignore_ascii_case("default") {
        return Err(invalid("DBSubnetGroupName must not be default."));
    }
    Ok(())
}

/// The `default` group: the default VPC's subnets, made in `tx` when first needed.
pub async fn default_group(ctx: &Ctx<'_>, tx: &mut Tx) -> Result<SubnetGroup> {
    if let Some(g) = get(ctx, tx, "default").await? {
        return Ok(g);
    }
    let Some((vpc_id, subnets)) = crate::ec2::api::default_vpc_subnets(ctx, tx).await? else {
        return Err(Error::new(
            "InvalidVPCNetworkStateFault",
            "There is no default VPC in this region: give a DBSubnetGroupName.",
        ));
    };
    let g = SubnetGroup {
        name: "default".into(),
        description: "default".into(),
        vpc_id,
        subnets: subnets
            .into_iter()
            .map(|s| Member {
                subnet_id: s.subnet_id,
                availability_zone: s.availability_zone,
            })
            .collect(),
        arn: super::arn(ctx, "subgrp", "default"),
        kumori_key: key("default"),
    };
    save(ctx, tx, &g, true).await?;
    Ok(g)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateRequest {
    #[serde(rename = "DBSubnetGroupName")]
    db_subnet_group_name: String,
    #[serde(rename = "DBSubnetGroupDescription")]
    db_subnet_group_description: String,
    subnet_ids: Vec<String>,
    #[serde(default)]
    tags: Vec<Tag>,
}

pub async fn create_db_subnet_group(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: CreateRequest = input(raw)?;
    check_name(&req.db_subnet_group_name)?;
    check_tags(&req.tags)?;
    let name = req.db_subnet_group_name.to_ascii_lowercase();
    let mut tx = ctx.store.write().await?;
    if tx.lock(ctx.scope(), &key(&name)).await?.is_some() {
        return Err(Error::new(
            "DBSubnetGroupAlreadyExists",
            format!("The DB subnet group '{name}' already exists."),
        ));
    }
    let (vpc_id, subnets) = members(ctx, &mut tx, &req.subnet_ids).await?;
    let g = SubnetGroup {
        arn: super::arn(ctx, "subgrp", &name),
        name,
        description: req.db_subnet_group_description,
        vpc_id,
        subnets,
        kumori_key: String::new(),
    };
    save(ctx, &mut tx, &g, true).await?;
    store_tags(ctx, &mut tx, &g.arn, KIND, &req.tags).await?;
    tx.commit().await?;
    Ok(json!({ "DBSubnetGroup": g.view() }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeRequest {
    #[serde(rename = "DBSubnetGroupName")]
    db_subnet_group_name: Option<String>,
    #[serde(default)]
    filters: Vec<super::Filter>,
    max_records: Option<i64>,
    marker: Option<String>,
}

pub async fn describe_db_subnet_groups(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DescribeRequest = input(raw)?;
    super::known_filters(&req.filters, &[])?;
    let mut tx = ctx.store.read().await?;
    let groups: Vec<SubnetGroup> = match &req.db_subnet_group_name {
        Some(n) => vec![get(ctx, &mut tx, n).await?.ok_or_else(|| not_found(n))?],
        None => resource::list(ctx, &mut tx).await?,
    };
    let items = groups.iter().map(|g| (g.name.clone(), g.view())).collect();
    super::page(
        items,
        "DBSubnetGroups",
        req.marker.as_deref(),
        req.max_records,
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ModifyRequest {
    #[serde(rename = "DBSubnetGroupName")]
    db_subnet_group_name: String,
    #[serde(rename = "DBSubnetGroupDescription")]
    db_subnet_group_description: Option<String>,
    subnet_ids: Vec<String>,
}

pub async fn modify_db_subnet_group(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ModifyRequest = input(raw)?;
    let name = req.db_subnet_group_name.to_ascii_lowercase();
    let mut tx = ctx.store.write().await?;
    tx.lock(ctx.scope(), &key(&name)).await?;
    let mut g = get(ctx, &mut tx, &name)
        .await?
        .ok_or_else(|| not_found(&name))?;
    let (vpc_id, subnets) = members(ctx, &mut tx, &req.subnet_ids).await?;
    if vpc_id != g.vpc_id {
        return Err(Error::new(
            "InvalidSubnet",
            format!(
                "The new subnets are in {vpc_id}; the group's VPC is {}.",
                g.vpc_id
            ),
        ));
    }
    // Subnets an instance's endpoint is in stay.
    for i in super::instances::using(ctx, &mut tx, |i| i.db_subnet_group == name).await? {
        if let Some(s) = &i.kumori_subnet
            && !subnets.iter().any(|m| &m.subnet_id == s)
        {
            return Err(Error::new(
                "SubnetAlreadyInUse",
                format!("Some of the subnets to be deleted are currently in use: {s}"),
            ));
        }
    }
    g.vpc_id = vpc_id;
    g.subnets = subnets;
    if let Some(d) = req.db_subnet_group_description {
        g.description = d;
    }
    save(ctx, &mut tx, &g, false).await?;
    tx.commit().await?;
    Ok(json!({ "DBSubnetGroup": g.view() }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteRequest {
    #[serde(rename = "DBSubnetGroupName")]
    db_subnet_group_name: String,
}

pub async fn delete_db_subnet_group(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DeleteRequest = input(raw)?;
    let name = req.db_subnet_group_name.to_ascii_lowercase();
    let mut tx = ctx.store.write().await?;
    let g = match tx.lock(ctx.scope(), &key(&name)).await? {
        Some(_) => get(ctx, &mut tx, &name)
            .await?
            .ok_or_else(|| not_found(&name))?,
        None => return Err(not_found(&name)),
    };
    if let Some(i) = super::instances::using(ctx, &mut tx, |i| i.db_subnet_group == name)
        .await?
        .first()
    {
        return Err(Error::new(
            "InvalidDBSubnetGroupStateFault",
            format!(
                "Cannot delete the subnet group '{name}' because at least one database instance: {} is still using it.",
                i.db_instance_identifier
            ),
        ));
    }
    tx.delete(ctx.scope(), &g.kumori_key).await?;
    tx.set_tags(ctx.scope(), &g.arn, KIND, &[]).await?;
    tx.commit().await?;
    Ok(json!({}))
}
