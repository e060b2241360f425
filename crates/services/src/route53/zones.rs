//! Hosted zones: public ones with the four name servers and the SOA Route 53 gives them,
//! private ones associated with VPCs.

use super::records::{self, Node};
use super::{bare, id_chars, invalid_input, new_change, scope};
use crate::{Ctx, Error, Result, input};
use kumori_store::{Record, Tx};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub const OPERATIONS: &[crate::kit::Op] = crate::operations![
    "CreateHostedZone" => create_hosted_zone,
    "GetHostedZone" => get_hosted_zone,
    "ListHostedZones" => list_hosted_zones,
    "ListHostedZonesByName" => list_hosted_zones_by_name,
    "GetHostedZoneCount" => get_hosted_zone_count,
    "UpdateHostedZoneComment" => update_hosted_zone_comment,
    "DeleteHostedZone" => delete_hosted_zone,
    "AssociateVPCWithHostedZone" => associate_vpc_with_hosted_zone,
    "DisassociateVPCFromHostedZone" => disassociate_vpc_from_hosted_zone,
    "GetDNSSEC" => get_dnssec,
];

pub const KIND: &str = "route53-zone";

pub fn key(id: &str) -> String {
    format!("route53-zone/{id}")
}

fn caller_key(reference: &str) -> String {
    format!("route53-caller/{reference}")
}

pub fn not_found(id: &str) -> Error {
    Error::new(
        "NoSuchHostedZone",
        format!("No hosted zone found with ID: {id}"),
    )
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Vpc {
    #[serde(rename = "VPCRegion")]
    pub vpc_region: String,
    #[serde(rename = "VPCId")]
    pub vpc_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Zone {
    pub id: String,
    /// Lowercase, with its final dot.
    pub name: String,
    pub caller_reference: String,
    pub comment: Option<String>,
    pub private: bool,
    pub vpcs: Vec<Vpc>,
    pub name_servers: Vec<String>,
    pub record_count: i64,
}

impl Zone {
    pub fn view(&self) -> Value {
        let mut config = json!({ "PrivateZone": self.private });
        if let Some(c) = &self.comment {
            config["Comment"] = json!(c);
        }
        json!({
            "Id": format!("/hostedzone/{}", self.id),
            "Name": records::shown(&self.name),
            "CallerReference": self.caller_reference,
            "Config": config,
            "ResourceRecordSetCount": self.record_count,
        })
    }

    fn delegation(&self) -> Value {
        json!({ "NameServers": self.name_servers })
    }
}

pub(crate) async fn get(ctx: &Ctx<'_>, tx: &mut Tx, id: &str, lock: bool) -> Result<Option<Zone>> {
    let k = key(bare(id));
    let rec = if lock {
        tx.lock(scope(ctx), &k).await?
    } else {
        tx.get(scope(ctx), &k).await?
    };
    match rec {
        Some(r) if r.kind == KIND => serde_json::from_str(&r.body)
            .map(Some)
            .map_err(|e| Error(kumori_protocol::AwsError::internal(e.to_string()))),
        _ => Ok(None),
    }
}

/// The zone `id` names, locked for the rest of the write.
pub(crate) async fn must(ctx: &Ctx<'_>, tx: &mut Tx, id: &str) -> Result<Zone> {
    get(ctx, tx, id, true)
        .await?
        .ok_or_else(|| not_found(bare(id)))
}

pub(crate) async fn save(ctx: &Ctx<'_>, tx: &mut Tx, z: &Zone, new: bool) -> Result<()> {
    let rec = Record {
        kind: KIND.into(),
        id: key(&z.id),
        parent: None,
        body: serde_json::to_string(z).unwrap_or_default(),
    };
    if new {
        tx.insert(scope(ctx), &rec).await?;
    } else {
        tx.update(scope(ctx), &rec).await?;
    }
    Ok(())
}

async fn all(ctx: &Ctx<'_>, tx: &mut Tx) -> Result<Vec<Zone>> {
    let json = tx.list_json(scope(ctx), KIND).await?;
    serde_json::from_str(&json)
        .map_err(|e| Error(kumori_protocol::AwsError::internal(e.to_string())))
}

/// A public zone's four name servers, one in each of Route 53's top-level domains, as
/// `ns-<n>.awsdns-<n/32>.<tld>`.
fn public_name_servers() -> Vec<String> {
    use rand::Rng;
    let mut r = rand::rng();
    ["com", "net", "org", "co.uk"]
        .iter()
        .map(|tld| {
            let n: u32 = r.random_range(0..2048);
            format!("ns-{n}.awsdns-{:02}.{tld}", n / 32)
        })
        .collect()
}

/// The name servers Route 53 lists for every private zone.
const PRIVATE_NAME_SERVERS: &[&str] = &[
    "ns-1536.awsdns-00.co.uk.",
    "ns-0.awsdns-00.com.",
    "ns-1024.awsdns-00.org.",
    "ns-512.awsdns-00.net.",
];

async fn check_vpc(ctx: &Ctx<'_>, tx: &mut Tx, vpc: &Vpc) -> Result<()> {
    let there = Ctx {
        region: &vpc.vpc_region,
        ..*ctx
    };
    if !crate::ec2::api::vpc_exists(&there, tx, &vpc.vpc_id).await? {
        return Err(Error::new(
            "InvalidVPCId",
            format!(
                "The VPC ID '{}' is not valid in region {}.",
                vpc.vpc_id, vpc.vpc_region
            ),
        ));
    }
    Ok(())
}

/// Another private zone of this name already in `vpc`.
async fn conflicting(ctx: &Ctx<'_>, tx: &mut Tx, name: &str, vpc: &Vpc, not: &str) -> Result<()> {
    for z in all(ctx, tx).await? {
        if z.private && z.name == name && z.id != not && z.vpcs.contains(vpc) {
            return Err(Error::new(
                "ConflictingDomainExists",
                format!(
                    "The VPC {} is already associated with another hosted zone ({}) that has the same name, {name}.",
                    vpc.vpc_id, z.id
                ),
            ));
        }
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ZoneConfig {
    comment: Option<String>,
    private_zone: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateRequest {
    name: String,
    #[serde(rename = "VPC")]
    vpc: Option<Vpc>,
    caller_reference: String,
    hosted_zone_config: Option<ZoneConfig>,
    delegation_set_id: Option<String>,
}

pub async fn create_hosted_zone(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: CreateRequest = input(raw)?;
    let name = records::normalize(&req.name).ok_or_else(|| {
        Error::new(
            "InvalidDomainName",
            format!("{} is not a valid domain name.", req.name),
        )
    })?;
    if name.contains('*') {
        return Err(Error::new(
            "InvalidDomainName",
            format!(
                "{} is not a valid domain name: a hosted zone's name has no wildcard.",
                req.name
            ),
        ));
    }
    if req.delegation_set_id.is_some() {
        return Err(Error::new(
            "NotImplemented",
            "kumori has no reusable delegation sets",
        ));
    }
    let config = req.hosted_zone_config.unwrap_or(ZoneConfig {
        comment: None,
        private_zone: None,
    });
    if config.private_zone == Some(true) && req.vpc.is_none() {
        return Err(invalid_input(
            "When you're creating a private hosted zone (when you specify true for PrivateZone), you must also specify values for VPCId and VPCRegion.",
        ));
    }
    let mut tx = ctx.store.write().await?;
    if tx
        .lock(scope(ctx), &caller_key(&req.caller_reference))
        .await?
        .is_some()
    {
        return Err(Error::new(
            "HostedZoneAlreadyExists",
            format!(
                "A hosted zone has already been created with the specified caller reference: {}",
                req.caller_reference
            ),
        ));
    }
    let private = req.vpc.is_some();
    if let Some(v) = &req.vpc {
        check_vpc(ctx, &mut tx, v).await?;
        conflicting(ctx, &mut tx, &name, v, "").await?;
    }
    let name_servers: Vec<String> = if private {
        PRIVATE_NAME_SERVERS
            .iter()
            .map(|s| s.trim_end_matches('.').to_string())
            .collect()
    } else {
        public_name_servers()
    };
    let zone = Zone {
        id: format!("Z{}", id_chars(20)),
        name: name.clone(),
        caller_reference: req.caller_reference.clone(),
        comment: config.comment,
        private,
        vpcs: req.vpc.clone().into_iter().collect(),
        name_servers: name_servers.clone(),
        record_count: 2,
    };
    save(ctx, &mut tx, &zone, true).await?;
    tx.insert(
        scope(ctx),
        &Record {
            kind: "route53-caller".into(),
            id: caller_key(&req.caller_reference),
            parent: None,
            body: json!({ "Zone": zone.id }).to_string(),
        },
    )
    .await?;
    // The apex's SOA and NS, as Route 53 makes them.
    let soa = json!({
        "Name": name, "Type": "SOA", "TTL": 900,
        "ResourceRecords": [{ "Value": format!("{}. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400", name_servers[0]) }],
    });
    let ns = json!({
        "Name": name, "Type": "NS", "TTL": 172800,
        "ResourceRecords": name_servers.iter().map(|n| json!({ "Value": format!("{n}.") })).collect::<Vec<_>>(),
    });
    records::save_node(
        ctx,
        &mut tx,
        &Node {
            zone: zone.id.clone(),
            name: name.clone(),
            sets: vec![ns, soa],
        },
        true,
    )
    .await?;
    let change = new_change(ctx, &mut tx, None).await?;
    tx.commit().await?;
    let mut out = json!({ "HostedZone": zone.view(), "ChangeInfo": change });
    if private {
        out["VPC"] = json!(req.vpc);
    } else {
        out["DelegationSet"] = zone.delegation();
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct IdRequest {
    id: String,
}

pub async fn get_hosted_zone(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: IdRequest = input(raw)?;
    let mut tx = ctx.store.read().await?;
    let z = get(ctx, &mut tx, &req.id, false)
        .await?
        .ok_or_else(|| not_found(bare(&req.id)))?;
    let mut out = json!({ "HostedZone": z.view() });
    if z.private {
        out["VPCs"] = json!(z.vpcs);
    } else {
        out["DelegationSet"] = z.delegation();
    }
    Ok(out)
}

fn max_items(raw: Option<&str>, default: usize) -> Result<usize> {
    match raw {
        None => Ok(default),
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| invalid_input(format!("Invalid value for MaxItems: {s}"))),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListRequest {
    marker: Option<String>,
    max_items: Option<String>,
    hosted_zone_type: Option<String>,
}

pub async fn list_hosted_zones(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ListRequest = input(raw)?;
    let max = max_items(req.max_items.as_deref(), 100)?;
    let mut tx = ctx.store.read().await?;
    let zones: Vec<Zone> = all(ctx, &mut tx)
        .await?
        .into_iter()
        .filter(|z| match req.hosted_zone_type.as_deref() {
            Some("PrivateHostedZone") => z.private,
            _ => true,
        })
        .filter(|z| {
            req.marker
                .as_deref()
                .is_none_or(|m| z.id.as_str() >= bare(m))
        })
        .collect();
    let truncated = zones.len() > max;
    let mut out = json!({
        "HostedZones": zones.iter().take(max).map(Zone::view).collect::<Vec<_>>(),
        "IsTruncated": truncated,
        "MaxItems": max.to_string(),
    });
    if let Some(m) = &req.marker {
        out["Marker"] = json!(m);
    }
    if truncated {
        out["NextMarker"] = json!(zones[max].id);
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ByNameRequest {
    #[serde(rename = "DNSName")]
    dns_name: Option<String>,
    hosted_zone_id: Option<String>,
    max_items: Option<String>,
}

pub async fn list_hosted_zones_by_name(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ByNameRequest = input(raw)?;
    if req.hosted_zone_id.is_some() && req.dns_name.is_none() {
        return Err(invalid_input(
            "If you specify HostedZoneId, you must also specify DNSName.",
        ));
    }
    let max = max_items(req.max_items.as_deref(), 100)?;
    let start = match &req.dns_name {
        Some(n) => Some(records::normalize(n).ok_or_else(|| {
            Error::new(
                "InvalidDomainName",
                format!("{n} is not a valid domain name."),
            )
        })?),
        None => None,
    };
    let mut tx = ctx.store.read().await?;
    let mut zones = all(ctx, &mut tx).await?;
    zones.sort_by(|a, b| {
        (records::reversed(&a.name), &a.id).cmp(&(records::reversed(&b.name), &b.id))
    });
    let zones: Vec<Zone> = zones
        .into_iter()
        .filter(|z| {
            let Some(s) = &start else { return true };
            let (zn, sn) = (records::reversed(&z.name), records::reversed(s));
            zn > sn
                || (zn == sn
                    && req
                        .hosted_zone_id
                        .as_deref()
                        .is_none_or(|id| z.id.as_str() >= bare(id)))
        })
        .collect();
    let truncated = zones.len() > max;
    let mut out = json!({
        "HostedZones": zones.iter().take(max).map(Zone::view).collect::<Vec<_>>(),
        "IsTruncated": truncated,
        "MaxItems": max.to_string(),
    });
    if let Some(n) = &req.dns_name {
        out["DNSName"] = json!(n);
    }
    if let Some(i) = &req.hosted_zone_id {
        out["HostedZoneId"] = json!(i);
    }
    if truncated {
        out["NextDNSName"] = json!(records::shown(&zones[max].name));
        out["NextHostedZoneId"] = json!(zones[max].id);
    }
    Ok(out)
}

pub async fn get_hosted_zone_count(ctx: &Ctx<'_>, _raw: &Value) -> Result<Value> {
    let mut tx = ctx.store.read().await?;
    let n = tx.count(scope(ctx), KIND).await?;
    Ok(json!({ "HostedZoneCount": n }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CommentRequest {
    id: String,
    comment: Option<String>,
}

pub async fn update_hosted_zone_comment(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: CommentRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let mut z = must(ctx, &mut tx, &req.id).await?;
    z.comment = req.comment.filter(|c| !c.is_empty());
    save(ctx, &mut tx, &z, false).await?;
    tx.commit().await?;
    Ok(json!({ "HostedZone": z.view() }))
}

pub async fn delete_hosted_zone(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: IdRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let z = must(ctx, &mut tx, &req.id).await?;
    if z.record_count > 2 {
        return Err(Error::new(
            "HostedZoneNotEmpty",
            "The specified hosted zone contains non-required resource record sets and so cannot be deleted.",
        ));
    }
    tx.delete(scope(ctx), &records::node_key(&z.id, &z.name))
        .await?;
    tx.delete(scope(ctx), &key(&z.id)).await?;
    tx.delete(scope(ctx), &caller_key(&z.caller_reference))
        .await?;
    tx.set_tags(
        scope(ctx),
        &format!("hostedzone/{}", z.id),
        "route53-hostedzone",
        &[],
    )
    .await?;
    let change = new_change(ctx, &mut tx, None).await?;
    tx.commit().await?;
    Ok(json!({ "ChangeInfo": change }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct VpcRequest {
    hosted_zone_id: String,
    #[serde(rename = "VPC")]
    vpc: Vpc,
    comment: Option<String>,
}

pub async fn associate_vpc_with_hosted_zone(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: VpcRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let mut z = must(ctx, &mut tx, &req.hosted_zone_id).await?;
    if !z.private {
        return Err(Error::new(
            "PublicZoneVPCAssociation",
            "You're trying to associate a VPC with a public hosted zone. Amazon Route 53 doesn't support associating a VPC with a public hosted zone.",
        ));
    }
    check_vpc(ctx, &mut tx, &req.vpc).await?;
    conflicting(ctx, &mut tx, &z.name, &req.vpc, &z.id).await?;
    if z.vpcs.contains(&req.vpc) {
        return Err(Error::new(
            "ConflictingDomainExists",
            format!(
                "The VPC {} is already associated with the hosted zone {}.",
                req.vpc.vpc_id, z.id
            ),
        ));
    }
    z.vpcs.push(req.vpc);
    save(ctx, &mut tx, &z, false).await?;
    let change = new_change(ctx, &mut tx, req.comment).await?;
    tx.commit().await?;
    Ok(json!({ "ChangeInfo": change }))
}

pub async fn disassociate_vpc_from_hosted_zone(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: VpcRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let mut z = must(ctx, &mut tx, &req.hosted_zone_id).await?;
    if !z.vpcs.contains(&req.vpc) {
        return Err(Error::new(
            "VPCAssociationNotFound",
            format!(
                "The specified VPC {} and hosted zone {} are not currently associated.",
                req.vpc.vpc_id, z.id
            ),
        ));
    }
    if z.vpcs.len() == 1 {
        return Err(Error::new(
            "LastVPCAssociation",
            "The VPC that you're trying to disassociate from the private hosted zone is the last VPC that is associated with the hosted zone. Amazon Route 53 doesn't support disassociating the last VPC from a hosted zone.",
        ));
    }
    z.vpcs.retain(|v| *v != req.vpc);
    save(ctx, &mut tx, &z, false).await?;
    let change = new_change(ctx, &mut tx, req.comment).await?;
    tx.commit().await?;
    Ok(json!({ "ChangeInfo": change }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DnssecRequest {
    hosted_zone_id: String,
}

/// No zone here is signed: public zones say NOT_SIGNING, as Route 53's unsigned ones do.
pub async fn get_dnssec(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DnssecRequest = input(raw)?;
    let mut tx = ctx.store.read().await?;
    let z = get(ctx, &mut tx, &req.hosted_zone_id, false)
        .await?
        .ok_or_else(|| not_found(bare(&req.hosted_zone_id)))?;
    if z.private {
        return Err(Error::new(
            "InvalidArgument",
            "Operation is unsupported for private hosted zones.",
        ));
    }
    Ok(json!({ "Status": { "ServeSignature": "NOT_SIGNING" }, "KeySigningKeys": [] }))
}
