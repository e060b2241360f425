//! Placement groups: CreatePlacementGroup, DescribePlacementGroups, DeletePlacementGroup, and
//! the group RunInstances places an instance in.
//!
//! Strategies as AWS has them: `cluster`, `spread` (at most seven running instances per zone,
//! rack or host level) and `partition` (one to seven partitions; an instance may name its
//! partition). A group with instances in it cannot be deleted.

use super::common::{
    Filter, Filterable, Tag, TagSpecification, check_filters, dry_run, invalid_value, matches,
    put_tags, tags_by_resource, tags_from_specs,
};
use super::instances::Instance;
use crate::resource::{self, Resource, arn, new_id};
use crate::{Ctx, Error, Result, input, output};
use kumori_store::Tx;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Running instances a spread group may hold per zone.
const SPREAD_PER_ZONE: usize = 7;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PlacementGroup {
    pub group_name: String,
    pub state: String,
    pub strategy: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition_count: Option<i64>,
    pub group_id: String,
    pub group_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spread_level: Option<String>,
}

impl Resource for PlacementGroup {
    const KIND: &'static str = "placement-group";
    fn id(&self) -> &str {
        &self.group_id
    }
}

impl Filterable for PlacementGroup {
    const FILTERS: &'static [&'static str] = &[
        "group-name",
        "group-arn",
        "spread-level",
        "state",
        "strategy",
    ];
    fn field(&self, name: &str) -> Vec<String> {
        match name {
            "group-name" => vec![self.group_name.clone()],
            "group-arn" => vec![self.group_arn.clone()],
            "spread-level" => self.spread_level.clone().into_iter().collect(),
            "state" => vec![self.state.clone()],
            "strategy" => vec![self.strategy.clone()],
            _ => vec![],
        }
    }
}

fn unknown(name: &str) -> Error {
    Error::new(
        "InvalidPlacementGroup.Unknown",
        format!("The Placement Group '{name}' is unknown."),
    )
}

async fn by_name(ctx: &Ctx<'_>, tx: &mut Tx, name: &str) -> Result<Option<PlacementGroup>> {
    Ok(resource::list::<PlacementGroup>(ctx, tx)
        .await?
        .into_iter()
        .find(|g| g.group_name == name))
}

/// The group a launch names (by name or id), checked for the instance about to join it:
/// a partition number only for partition groups and within their count, and room in a
/// spread group's zone.
pub async fn for_launch(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    name: Option<&str>,
    id: Option<&str>,
    partition: Option<i64>,
    zone: &str,
    count: i64,
) -> Result<Option<PlacementGroup>> {
    let group = match (name, id) {
        (Some(n), _) => by_name(ctx, tx, n).await?.ok_or_else(|| unknown(n))?,
        (None, Some(i)) => resource::get::<PlacementGroup>(ctx, tx, i)
            .await?
            .ok_or_else(|| {
                Error::new(
                    "InvalidPlacementGroup.Unknown",
                    format!("The Placement Group '{i}' is unknown."),
                )
            })?,
        (None, None) => {
            if partition.is_some() {
                return Err(invalid_value(
                    "A partition number needs a partition placement group.",
                ));
            }
            return Ok(None);
        }
    };
    if let Some(p) = partition {
        let count = group.partition_count.unwrap_or(0);
        if group.strategy != "partition" || !(1..=count).contains(&p) {
            return Err(invalid_value(format!(
                "Partition number {p} is not valid for placement group {}.",
                group.group_name
            )));
        }
    }
    if group.strategy == "spread" {
        let members = resource::list::<Instance>(ctx, tx)
            .await?
            .into_iter()
            .filter(|i| {
                i.placement_group.as_deref() == Some(group.group_name.as_str())
                    && i.availability_zone == zone
                    && i.state != "terminated"
            })
            .count();
        if members + count as usize > SPREAD_PER_ZONE {
            return Err(Error::new(
                "InsufficientInstanceCapacity",
                format!(
                    "A spread placement group holds at most {SPREAD_PER_ZONE} instances per Availability Zone; {} already has {members} in {zone}.",
                    group.group_name
                ),
            ));
        }
    }
    Ok(Some(group))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateRequest {
    group_name: Option<String>,
    strategy: Option<String>,
    partition_count: Option<i64>,
    spread_level: Option<String>,
    #[serde(default)]
    tag_specifications: Vec<TagSpecification>,
    dry_run: Option<bool>,
}

pub async fn create_placement_group(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: CreateRequest = input(raw)?;
    let name = req.group_name.clone().ok_or_else(|| {
        Error::new(
            "MissingParameter",
            "The request must contain the parameter groupName",
        )
    })?;
    if name.is_empty() || name.len() > 255 {
        return Err(invalid_value(
            "A placement group name must be 1 to 255 characters.",
        ));
    }
    let strategy = req.strategy.clone().ok_or_else(|| {
        Error::new(
            "MissingParameter",
            "The request must contain the parameter strategy",
        )
    })?;
    let partition_count = match (strategy.as_str(), req.partition_count) {
        ("partition", n) => {
            let n = n.unwrap_or(2);
            if !(1..=7).contains(&n) {
                return Err(invalid_value(format!(
                    "Partition count {n} is not valid: 1 to 7."
                )));
            }
            Some(n)
        }
        (_, Some(_)) => {
            return Err(Error::new(
                "InvalidParameterCombination",
                "A partition count can only be given for a partition placement group.",
            ));
        }
        (_, None) => None,
    };
    let spread_level = match (strategy.as_str(), req.spread_level.clone()) {
        ("spread", level) => Some(level.unwrap_or_else(|| "rack".into())),
        (_, Some(_)) => {
            return Err(Error::new(
                "InvalidParameterCombination",
                "A spread level can only be given for a spread placement group.",
            ));
        }
        (_, None) => None,
    };
    let tags = tags_from_specs(&req.tag_specifications, PlacementGroup::KIND)?;
    let mut tx = ctx.store.write().await?;
    if by_name(ctx, &mut tx, &name).await?.is_some() {
        return Err(Error::new(
            "InvalidPlacementGroup.Duplicate",
            format!("The placement group '{name}' already exists."),
        ));
    }
    dry_run(req.dry_run)?;
    let g = PlacementGroup {
        group_arn: arn(
            "ec2",
            ctx.region,
            ctx.account,
            &format!("placement-group/{name}"),
        ),
        group_name: name,
        state: "available".into(),
        strategy,
        partition_count,
        group_id: new_id("pg"),
        spread_level,
    };
    resource::insert(ctx, &mut tx, &g).await?;
    put_tags(ctx, &mut tx, &g.group_id, PlacementGroup::KIND, &tags).await?;
    tx.commit().await?;
    Ok(json!({ "PlacementGroup": shown(&g, &tags)? }))
}

fn shown(g: &PlacementGroup, tags: &[Tag]) -> Result<Value> {
    let mut v = output(g)?;
    if !tags.is_empty() {
        v["Tags"] = output(&tags)?;
    }
    Ok(v)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeRequest {
    #[serde(default)]
    group_ids: Vec<String>,
    #[serde(default)]
    group_names: Vec<String>,
    #[serde(default)]
    filters: Vec<Filter>,
    dry_run: Option<bool>,
}

/// Not `generic::describe`: groups are asked for by GroupNames as well as GroupIds, any unknown one
/// is `InvalidPlacementGroup.Unknown` (never `.Malformed`), and EC2 does not page them.
pub async fn describe_placement_groups(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DescribeRequest = input(raw)?;
    check_filters::<PlacementGroup>(&req.filters)?;
    let mut tx = ctx.store.read().await?;
    let all: Vec<PlacementGroup> = resource::list(ctx, &mut tx).await?;
    let tags = tags_by_resource(ctx, &mut tx, PlacementGroup::KIND).await?;
    drop(tx);
    if let Some(n) = req
        .group_names
        .iter()
        .find(|n| !all.iter().any(|g| &g.group_name == *n))
    {
        return Err(unknown(n));
    }
    if let Some(i) = req
        .group_ids
        .iter()
        .find(|i| !all.iter().any(|g| &g.group_id == *i))
    {
        return Err(Error::new(
            "InvalidPlacementGroup.Unknown",
            format!("The Placement Group '{i}' is unknown."),
        ));
    }
    dry_run(req.dry_run)?;
    let none = Vec::new();
    let groups = all
        .iter()
        .filter(|g| req.group_names.is_empty() || req.group_names.contains(&g.group_name))
        .filter(|g| req.group_ids.is_empty() || req.group_ids.contains(&g.group_id))
        .filter(|g| matches(*g, tags.get(&g.group_id).unwrap_or(&none), &req.filters))
        .map(|g| shown(g, tags.get(&g.group_id).unwrap_or(&none)))
        .collect::<Result<Vec<_>>>()?;
    Ok(json!({ "PlacementGroups": groups }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteRequest {
    group_name: String,
    dry_run: Option<bool>,
}

pub async fn delete_placement_group(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DeleteRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let g = by_name(ctx, &mut tx, &req.group_name)
        .await?
        .ok_or_else(|| unknown(&req.group_name))?;
    let in_use = resource::list::<Instance>(ctx, &mut tx)
        .await?
        .iter()
        .any(|i| {
            i.placement_group.as_deref() == Some(g.group_name.as_str()) && i.state != "terminated"
        });
    if in_use {
        return Err(Error::new(
            "InvalidPlacementGroup.InUse",
            format!(
                "The placement group '{}' is in use and may not be deleted.",
                g.group_name
            ),
        ));
    }
    dry_run(req.dry_run)?;
    tx.delete(ctx.scope(), &g.group_id).await?;
    tx.commit().await?;
    Ok(json!({}))
}
