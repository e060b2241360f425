//! Regions and availability zones as AWS names them: DescribeRegions,
//! DescribeAvailabilityZones, DescribeAccountAttributes.
//!
//! Zone ids (`apne1-az4`) are the physical zones; AWS maps zone names to them per account.
//! kumori uses one fixed mapping for every account.

use super::common::{Filter, Filterable, check_filters, dry_run, invalid_value, matches};
use crate::{Ctx, Result, input};
use serde::Deserialize;
use serde_json::{Value, json};

/// Region name and its zones as (letter, zone id).
const REGIONS: &[(&str, &[(&str, &str)])] = &[
    (
        "us-east-1",
        &[
            ("a", "use1-az6"),
            ("b", "use1-az1"),
            ("c", "use1-az2"),
            ("d", "use1-az4"),
            ("e", "use1-az3"),
            ("f", "use1-az5"),
        ],
    ),
    (
        "us-east-2",
        &[("a", "use2-az1"), ("b", "use2-az2"), ("c", "use2-az3")],
    ),
    ("us-west-1", &[("b", "usw1-az1"), ("c", "usw1-az3")]),
    (
        "us-west-2",
        &[
            ("a", "usw2-az1"),
            ("b", "usw2-az2"),
            ("c", "usw2-az3"),
            ("d", "usw2-az4"),
        ],
    ),
    (
        "ca-central-1",
        &[("a", "cac1-az1"), ("b", "cac1-az2"), ("d", "cac1-az4")],
    ),
    (
        "sa-east-1",
        &[("a", "sae1-az1"), ("b", "sae1-az2"), ("c", "sae1-az3")],
    ),
    (
        "eu-west-1",
        &[("a", "euw1-az3"), ("b", "euw1-az1"), ("c", "euw1-az2")],
    ),
    (
        "eu-west-2",
        &[("a", "euw2-az2"), ("b", "euw2-az3"), ("c", "euw2-az1")],
    ),
    (
        "eu-west-3",
        &[("a", "euw3-az1"), ("b", "euw3-az2"), ("c", "euw3-az3")],
    ),
    (
        "eu-central-1",
        &[("a", "euc1-az2"), ("b", "euc1-az3"), ("c", "euc1-az1")],
    ),
    (
        "eu-north-1",
        &[("a", "eun1-az1"), ("b", "eun1-az2"), ("c", "eun1-az3")],
    ),
    (
        "ap-northeast-1",
        &[("a", "apne1-az4"), ("c", "apne1-az1"), ("d", "apne1-az2")],
    ),
    (
        "ap-northeast-2",
        &[
            ("a", "apne2-az1"),
            ("b", "apne2-az2"),
            ("c", "apne2-az3"),
            ("d", "apne2-az4"),
        ],
    ),
    (
        "ap-northeast-3",
        &[("a", "apne3-az3"), ("b", "apne3-az1"), ("c", "apne3-az2")],
    ),
    (
        "ap-southeast-1",
        &[("a", "apse1-az2"), ("b", "apse1-az1"), ("c", "apse1-az3")],
    ),
    (
        "ap-southeast-2",
        &[("a", "apse2-az3"), ("b", "apse2-az1"), ("c", "apse2-az2")],
    ),
    (
        "ap-south-1",
        &[("a", "aps1-az1"), ("b", "aps1-az3"), ("c", "aps1-az2")],
    ),
];

/// An availability zone of a region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    pub name: String,
    pub id: String,
}

/// Every region kumori knows, by name.
pub fn region_names() -> impl Iterator<Item = &'static str> {
    REGIONS.iter().map(|(r, _)| *r)
}

/// The zones of `region`, in name order; empty for a region kumori does not know.
pub fn zones(region: &str) -> Vec<Zone> {
    REGIONS
        .iter()
        .find(|(r, _)| *r == region)
        .map(|(r, zs)| {
            zs.iter()
                .map(|(l, id)| Zone {
                    name: format!("{r}{l}"),
                    id: id.to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Instance families a zone does not offer, by zone id. Zones differ: an older zone never got
/// some newer families. Only cases seen in EC2's own answers are listed, each with where:
/// - use1-az3 (us-east-1e here) and the t3 family: "Your requested instance type (t3.micro)
///   is not supported in your requested Availability Zone (us-east-1e)"
///   (ned1313/Getting-Started-Terraform#44; t3.small in RedHatGov/redhatgov.workshops#113);
/// - usw2-az4 (us-west-2d here) and the t2 family: "Your requested instance type (t2.micro)
///   is not supported in your requested Availability Zone (us-west-2d)"
///   (pulumi/pulumi-awsx#384, hashicorp/field-workshops-terraform#70).
const MISSING_FAMILIES: &[(&str, &[&str])] = &[("use1-az3", &["t3"]), ("usw2-az4", &["t2"])];

/// Whether zone `zone_id` offers `instance_type` (`t3.micro`).
pub fn zone_offers(zone_id: &str, instance_type: &str) -> bool {
    let family = instance_type.split('.').next().unwrap_or_default();
    !MISSING_FAMILIES
        .iter()
        .any(|(z, families)| *z == zone_id && families.contains(&family))
}

/// EC2's refusal of a launch of `instance_type` in `zone` of `region` that does not offer it,
/// naming the zones that do.
pub fn unsupported_in_zone(region: &str, zone: &Zone, instance_type: &str) -> crate::Error {
    let others: Vec<String> = zones(region)
        .into_iter()
        .filter(|z| zone_offers(&z.id, instance_type))
        .map(|z| z.name)
        .collect();
    crate::Error::new(
        "Unsupported",
        format!(
            "Your requested instance type ({instance_type}) is not supported in your requested Availability Zone ({}). Please retry your request by not specifying an Availability Zone or choosing {}.",
            zone.name,
            others.join(", ")
        ),
    )
}

struct RegionRow(&'static str);

impl Filterable for RegionRow {
    const FILTERS: &'static [&'static str] = &["endpoint", "opt-in-status", "region-name"];
    fn field(&self, name: &str) -> Vec<String> {
        match name {
            "endpoint" => vec![format!("ec2.{}.amazonaws.com", self.0)],
            "opt-in-status" => vec!["opt-in-not-required".into()],
            "region-name" => vec![self.0.into()],
            _ => vec![],
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeRegionsRequest {
    #[serde(default)]
    region_names: Vec<String>,
    #[serde(default)]
    filters: Vec<Filter>,
    dry_run: Option<bool>,
}

/// Not `generic::describe`: regions are AWS's table, not stored resources: asked for by name
/// (`Invalid region`), with no tags and no paging.
pub async fn describe_regions(_ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DescribeRegionsRequest = input(raw)?;
    check_filters::<RegionRow>(&req.filters)?;
    if let Some(bad) = req
        .region_names
        .iter()
        .find(|n| !REGIONS.iter().any(|(r, _)| r == n))
    {
        return Err(invalid_value(format!("Invalid region: {bad}")));
    }
    dry_run(req.dry_run)?;
    let regions: Vec<Value> = REGIONS
        .iter()
        .map(|(r, _)| RegionRow(r))
        .filter(|r| req.region_names.is_empty() || req.region_names.iter().any(|n| n == r.0))
        .filter(|r| matches(r, &[], &req.filters))
        .map(|r| {
            json!({
                "RegionName": r.0,
                "Endpoint": format!("ec2.{}.amazonaws.com", r.0),
                "OptInStatus": "opt-in-not-required",
            })
        })
        .collect();
    Ok(json!({ "Regions": regions }))
}

struct ZoneRow<'a> {
    region: &'a str,
    zone: Zone,
}

impl Filterable for ZoneRow<'_> {
    const FILTERS: &'static [&'static str] = &[
        "group-long-name",
        "group-name",
        "message",
        "opt-in-status",
        "parent-zone-id",
        "parent-zone-name",
        "region-name",
        "state",
        "zone-id",
        "zone-name",
        "zone-type",
    ];
    fn field(&self, name: &str) -> Vec<String> {
        match name {
            "group-name" => vec![self.region.into()],
            "opt-in-status" => vec!["opt-in-not-required".into()],
            "region-name" => vec![self.region.into()],
            "state" => vec!["available".into()],
            "zone-id" => vec![self.zone.id.clone()],
            "zone-name" => vec![self.zone.name.clone()],
            "zone-type" => vec!["availability-zone".into()],
            _ => vec![],
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeAvailabilityZonesRequest {
    #[serde(default)]
    zone_names: Vec<String>,
    #[serde(default)]
    zone_ids: Vec<String>,
    #[serde(default)]
    filters: Vec<Filter>,
    dry_run: Option<bool>,
}

/// Not `generic::describe`: regions and zones are AWS's table, not stored resources: asked for by
/// ZoneNames or ZoneIds (unknown ones are InvalidParameterValue), with no tags and no paging.
pub async fn describe_availability_zones(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DescribeAvailabilityZonesRequest = input(raw)?;
    check_filters::<ZoneRow>(&req.filters)?;
    let all = zones(ctx.region);
    for n in &req.zone_names {
        if !all.iter().any(|z| &z.name == n) {
            return Err(invalid_value(format!("The zone '{n}' does not exist.")));
        }
    }
    for id in &req.zone_ids {
        if !all.iter().any(|z| &z.id == id) {
            return Err(invalid_value(format!("The zone id '{id}' does not exist.")));
        }
    }
    dry_run(req.dry_run)?;
    let shown: Vec<Value> = all
        .into_iter()
        .map(|zone| ZoneRow {
            region: ctx.region,
            zone,
        })
        .filter(|z| req.zone_names.is_empty() || req.zone_names.contains(&z.zone.name))
        .filter(|z| req.zone_ids.is_empty() || req.zone_ids.contains(&z.zone.id))
        .filter(|z| matches(z, &[], &req.filters))
        .map(|z| {
            json!({
                "State": "available",
                "OptInStatus": "opt-in-not-required",
                "Messages": [],
                "RegionName": ctx.region,
                "ZoneName": z.zone.name,
                "ZoneId": z.zone.id,
                "GroupName": ctx.region,
                "GroupLongName": ctx.region,
                "NetworkBorderGroup": ctx.region,
                "ZoneType": "availability-zone",
            })
        })
        .collect();
    Ok(json!({ "AvailabilityZones": shown }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeAccountAttributesRequest {
    #[serde(default)]
    attribute_names: Vec<String>,
    dry_run: Option<bool>,
}

pub async fn describe_account_attributes(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DescribeAccountAttributesRequest = input(raw)?;
    dry_run(req.dry_run)?;
    let mut tx = ctx.store.read().await?;
    let default_vpc = super::default_vpc::find(ctx, &mut tx)
        .await?
        .map(|v| v.vpc_id)
        .unwrap_or_else(|| "none".into());
    drop(tx);
    // The limits kumori enforces, as configured (`--eip-quota`), so a client sizing itself
    // by these is refused exactly where they say. kumori sets no instance limit; 20 is AWS's
    // long-standing answer.
    let eips = ctx.limits.addresses_per_region.to_string();
    let groups = super::eni::GROUPS_PER_INTERFACE.to_string();
    let all: [(&str, &[&str]); 6] = [
        ("supported-platforms", &["VPC"]),
        ("default-vpc", &[default_vpc.as_str()]),
        ("max-instances", &["20"]),
        ("vpc-max-security-groups-per-interface", &[groups.as_str()]),
        ("max-elastic-ips", &[eips.as_str()]),
        ("vpc-max-elastic-ips", &[eips.as_str()]),
    ];
    let attrs: Vec<Value> = all
        .iter()
        .filter(|(n, _)| req.attribute_names.is_empty() || req.attribute_names.iter().any(|a| a == n))
        .map(|(n, vals)| {
            json!({
                "AttributeName": n,
                "AttributeValues": vals.iter().map(|v| json!({ "AttributeValue": v })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(json!({ "AccountAttributes": attrs }))
}
