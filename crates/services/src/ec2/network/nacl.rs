//! Network ACLs: CreateNetworkAcl, DescribeNetworkAcls, DeleteNetworkAcl,
//! CreateNetworkAclEntry, ReplaceNetworkAclEntry, DeleteNetworkAclEntry and
//! ReplaceNetworkAclAssociation.
//!
//! Every subnet has exactly one network ACL: a new subnet joins its VPC's default ACL, and
//! ReplaceNetworkAclAssociation moves it. The association lives in the ACL's document, so a
//! move is one update of two ACLs inside one transaction.

use super::common::{
    Filterable, TagSpecification, dry_run, invalid_value, put_tags, tags_from_specs,
};
use super::generic::{Ec2Resource, check_id, describe_call};
use super::vpc::{self, Vpc};
use crate::resource::{self, Resource, new_id};
use crate::{Ctx, Error, Result, input};
use kumori_net::cidr;
use kumori_store::Tx;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkAcl {
    pub network_acl_id: String,
    pub vpc_id: String,
    pub owner_id: String,
    pub is_default: bool,
    pub entries: Vec<Entry>,
    pub associations: Vec<NaclAssociation>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Entry {
    pub rule_number: i64,
    pub egress: bool,
    /// `-1` for all, else the protocol number (`6`, `17`, `1`, `58`, …), as EC2 shows it.
    pub protocol: String,
    pub rule_action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cidr_block: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6_cidr_block: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_range: Option<PortRange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icmp_type_code: Option<IcmpTypeCode>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct PortRange {
    pub from: Option<i64>,
    pub to: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct IcmpTypeCode {
    pub code: Option<i64>,
    #[serde(rename = "Type")]
    pub kind: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NaclAssociation {
    pub network_acl_association_id: String,
    pub network_acl_id: String,
    pub subnet_id: String,
}

/// The `*` rule that ends every ACL in each direction: it cannot be changed or removed.
pub const LAST_RULE: i64 = 32767;

/// AWS's limit on rules per direction (the `*` rule included).
const RULES_PER_DIRECTION: usize = 20;

impl Resource for NetworkAcl {
    const KIND: &'static str = "network-acl";
    fn id(&self) -> &str {
        &self.network_acl_id
    }
    fn parent(&self) -> Option<&str> {
        Some(&self.vpc_id)
    }
}

impl Ec2Resource for NetworkAcl {
    const ID_PREFIX: &'static str = "acl";
    const ID_ERROR: &'static str = "InvalidNetworkAclID";
    fn not_found(id: &str) -> Error {
        Error::new(
            "InvalidNetworkAclID.NotFound",
            format!("The network ACL '{id}' does not exist"),
        )
    }
}

impl Filterable for NetworkAcl {
    const FILTERS: &'static [&'static str] = &[
        "association.association-id",
        "association.network-acl-id",
        "association.subnet-id",
        "default",
        "entry.cidr",
        "entry.egress",
        "entry.icmp.code",
        "entry.icmp.type",
        "entry.ipv6-cidr",
        "entry.port-range.from",
        "entry.port-range.to",
        "entry.protocol",
        "entry.rule-action",
        "entry.rule-number",
        "network-acl-id",
        "owner-id",
        "vpc-id",
    ];
    fn field(&self, name: &str) -> Vec<String> {
        let a = &self.associations;
        let e = self.entries.iter();
        let num = |v: Option<i64>| v.map(|n| n.to_string());
        match name {
            "association.association-id" => a
                .iter()
                .map(|x| x.network_acl_association_id.clone())
                .collect(),
            "association.network-acl-id" => a.iter().map(|x| x.network_acl_id.clone()).collect(),
            "association.subnet-id" => a.iter().map(|x| x.subnet_id.clone()).collect(),
            "default" => vec![self.is_default.to_string()],
            "entry.cidr" => e.filter_map(|x| x.cidr_block.clone()).collect(),
            "entry.egress" => e.map(|x| x.egress.to_string()).collect(),
            "entry.icmp.code" => e
                .filter_map(|x| x.icmp_type_code.as_ref().and_then(|i| num(i.code)))
                .collect(),
            "entry.icmp.type" => e
                .filter_map(|x| x.icmp_type_code.as_ref().and_then(|i| num(i.kind)))
                .collect(),
            "entry.ipv6-cidr" => e.filter_map(|x| x.ipv6_cidr_block.clone()).collect(),
            "entry.port-range.from" => e
                .filter_map(|x| x.port_range.as_ref().and_then(|p| num(p.from)))
                .collect(),
            "entry.port-range.to" => e
                .filter_map(|x| x.port_range.as_ref().and_then(|p| num(p.to)))
                .collect(),
            "entry.protocol" => e.map(|x| x.protocol.clone()).collect(),
            "entry.rule-action" => e.map(|x| x.rule_action.clone()).collect(),
            "entry.rule-number" => e.map(|x| x.rule_number.to_string()).collect(),
            "network-acl-id" => vec![self.network_acl_id.clone()],
            "owner-id" => vec![self.owner_id.clone()],
            "vpc-id" => vec![self.vpc_id.clone()],
            _ => vec![],
        }
    }
}

fn all_traffic(rule_number: i64, egress: bool, action: &str) -> Entry {
    Entry {
        rule_number,
        egress,
        protocol: "-1".into(),
        rule_action: action.into(),
        cidr_block: Some("0.0.0.0/0".into()),
        ipv6_cidr_block: None,
        port_range: None,
        icmp_type_code: None,
    }
}

/// A new ACL for `vpc`. The default one allows everything (rule 100) before the `*` deny; any
/// other starts with only the `*` deny, so it blocks everything.
pub fn new_acl(ctx: &Ctx<'_>, vpc: &Vpc, is_default: bool) -> NetworkAcl {
    let mut entries = Vec::new();
    for egress in [true, false] {
        if is_default {
            entries.push(all_traffic(100, egress, "allow"));
        }
        entries.push(all_traffic(LAST_RULE, egress, "deny"));
    }
    NetworkAcl {
        network_acl_id: new_id("acl"),
        vpc_id: vpc.vpc_id.clone(),
        owner_id: ctx.account.to_string(),
        is_default,
        entries,
        associations: Vec::new(),
    }
}

/// The default ACL of a VPC given an IPv6 block allows all IPv6 traffic too (rule 101), with
/// its own `*` deny, as EC2 adds them; once, however many blocks.
pub async fn allow_ipv6_in_default(ctx: &Ctx<'_>, tx: &mut Tx, vpc_id: &str) -> Result<()> {
    let acl: Option<NetworkAcl> = resource::child_where(ctx, tx, vpc_id, "IsDefault", true).await?;
    let Some(mut acl) = acl else { return Ok(()) };
    if acl.entries.iter().any(|e| e.ipv6_cidr_block.is_some()) {
        return Ok(());
    }
    for egress in [true, false] {
        for (n, action) in [(101, "allow"), (LAST_RULE, "deny")] {
            acl.entries.push(Entry {
                cidr_block: None,
                ipv6_cidr_block: Some("::/0".into()),
                ..all_traffic(n, egress, action)
            });
        }
    }
    resource::update(ctx, tx, &acl).await
}

/// Puts a new subnet in its VPC's default ACL (inside the caller's transaction).
pub async fn join_default(ctx: &Ctx<'_>, tx: &mut Tx, vpc_id: &str, subnet_id: &str) -> Result<()> {
    let acls: Vec<NetworkAcl> = resource::children(ctx, tx, vpc_id).await?;
    if let Some(mut acl) = acls.into_iter().find(|a| a.is_default) {
        acl.associations.push(NaclAssociation {
            network_acl_association_id: new_id("aclassoc"),
            network_acl_id: acl.network_acl_id.clone(),
            subnet_id: subnet_id.to_string(),
        });
        resource::update(ctx, tx, &acl).await?;
    }
    Ok(())
}

/// Drops a deleted subnet's association (inside the caller's transaction).
pub async fn forget_subnet(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    vpc_id: &str,
    subnet_id: &str,
) -> Result<()> {
    for mut acl in resource::children::<NetworkAcl>(ctx, tx, vpc_id).await? {
        let before = acl.associations.len();
        acl.associations.retain(|a| a.subnet_id != subnet_id);
        if acl.associations.len() != before {
            resource::update(ctx, tx, &acl).await?;
        }
    }
    Ok(())
}

async fn lock_acl(ctx: &Ctx<'_>, tx: &mut Tx, id: &str) -> Result<NetworkAcl> {
    check_id::<NetworkAcl>(id)?;
    resource::lock(ctx, tx, id)
        .await?
        .ok_or_else(|| NetworkAcl::not_found(id))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateNetworkAclRequest {
    vpc_id: String,
    #[serde(default)]
    tag_specifications: Vec<TagSpecification>,
    client_token: Option<String>,
    dry_run: Option<bool>,
}

pub async fn create_network_acl(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: CreateNetworkAclRequest = input(raw)?;
    let tags = tags_from_specs(&req.tag_specifications, NetworkAcl::KIND)?;
    check_id::<Vpc>(&req.vpc_id)?;
    let mut tx = ctx.store.write().await?;
    let vpc: Vpc = resource::lock(ctx, &mut tx, &req.vpc_id)
        .await?
        .ok_or_else(|| vpc::not_found(&req.vpc_id))?;
    let count = resource::children::<NetworkAcl>(ctx, &mut tx, &vpc.vpc_id)
        .await?
        .len();
    if count >= 200 {
        return Err(Error::new(
            "NetworkAclLimitExceeded",
            format!(
                "The maximum number of network ACLs (200) for VPC '{}' has been reached.",
                vpc.vpc_id
            ),
        ));
    }
    dry_run(req.dry_run)?;
    let acl = new_acl(ctx, &vpc, false);
    resource::insert(ctx, &mut tx, &acl).await?;
    put_tags(ctx, &mut tx, &acl.network_acl_id, NetworkAcl::KIND, &tags).await?;
    tx.commit().await?;
    let mut out = json!({ "NetworkAcl": acl.shown(&tags)? });
    if let Some(t) = req.client_token {
        out["ClientToken"] = json!(t);
    }
    Ok(out)
}

pub async fn describe_network_acls(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    describe_call::<NetworkAcl>(ctx, raw, "NetworkAclIds", "NetworkAcls").await
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteNetworkAclRequest {
    network_acl_id: String,
    dry_run: Option<bool>,
}

pub async fn delete_network_acl(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DeleteNetworkAclRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let acl = lock_acl(ctx, &mut tx, &req.network_acl_id).await?;
    if acl.is_default {
        return Err(invalid_value(format!(
            "cannot delete default network ACL {}",
            acl.network_acl_id
        )));
    }
    if !acl.associations.is_empty() {
        return Err(Error::new(
            "DependencyViolation",
            format!(
                "The networkAcl '{}' has dependencies and cannot be deleted.",
                acl.network_acl_id
            ),
        ));
    }
    dry_run(req.dry_run)?;
    tx.delete(ctx.scope(), &acl.network_acl_id).await?;
    tx.commit().await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EntryRequest {
    network_acl_id: String,
    rule_number: i64,
    protocol: Option<String>,
    rule_action: Option<String>,
    egress: bool,
    cidr_block: Option<String>,
    ipv6_cidr_block: Option<String>,
    icmp_type_code: Option<IcmpTypeCode>,
    port_range: Option<PortRange>,
    dry_run: Option<bool>,
}

/// EC2's spelling of a protocol in ACL entries: `-1` or the protocol's number.
pub fn protocol_number(p: &str) -> Option<String> {
    let lower = p.trim().to_ascii_lowercase();
    let n = match lower.as_str() {
        "-1" | "all" => return Some("-1".into()),
        "tcp" => 6,
        "udp" => 17,
        "icmp" => 1,
        "icmpv6" => 58,
        other => other
            .parse::<u8>()
            .ok()
            .filter(|_| !other.starts_with('+'))?,
    };
    Some(n.to_string())
}

fn check_rule_number(n: i64) -> Result<()> {
    if !(1..=32766).contains(&n) {
        return Err(invalid_value(format!(
            "Value ({n}) for parameter ruleNumber is invalid. Rule numbers must be between 1 and 32766."
        )));
    }
    Ok(())
}

/// The entry a Create or Replace call describes, checked as EC2 checks it.
fn entry_of(req: &EntryRequest) -> Result<Entry> {
    check_rule_number(req.rule_number)?;
    let missing = |p: &str| {
        Error::new(
            "MissingParameter",
            format!("The request must contain the parameter {p}"),
        )
    };
    let raw = req.protocol.as_deref().ok_or_else(|| missing("protocol"))?;
    let protocol = protocol_number(raw).ok_or_else(|| {
        invalid_value(format!(
            "Invalid value '{raw}' for protocol. Use -1 (all), tcp, udp, icmp, icmpv6 or a protocol number from 0 to 255."
        ))
    })?;
    // EC2 takes the action in any case and shows it lower-case.
    let action = req
        .rule_action
        .as_deref()
        .ok_or_else(|| missing("ruleAction"))?
        .to_ascii_lowercase();
    if action != "allow" && action != "deny" {
        return Err(invalid_value(format!(
            "Value ({}) for parameter ruleAction is invalid. Valid values: allow, deny.",
            req.rule_action.as_deref().unwrap_or_default()
        )));
    }
    let (cidr_block, ipv6_cidr_block) = match (&req.cidr_block, &req.ipv6_cidr_block) {
        // Host bits are cleared, as EC2 does for ACL entries.
        (Some(c), None) => match cidr::parse_v4_canonical(c) {
            Ok(n) => (Some(n.to_string()), None),
            Err(_) => {
                return Err(invalid_value(format!(
                    "Value ({c}) for parameter cidrBlock is invalid. This is not a valid CIDR block."
                )));
            }
        },
        (None, Some(c)) => match c.parse::<ipnet::Ipv6Net>() {
            Ok(n) if n.trunc() == n => (None, Some(n.to_string())),
            _ => {
                return Err(invalid_value(format!(
                    "Value ({c}) for parameter ipv6CidrBlock is invalid. This is not a valid IPv6 CIDR block."
                )));
            }
        },
        (Some(_), Some(_)) => {
            return Err(Error::new(
                "InvalidParameterCombination",
                "Only one of cidrBlock or ipv6CidrBlock can be specified.",
            ));
        }
        (None, None) => return Err(missing("cidrBlock or ipv6CidrBlock")),
    };
    let (port_range, icmp_type_code) = match protocol.as_str() {
        "6" | "17" => {
            let pr = req.port_range.clone().ok_or_else(|| missing("portRange"))?;
            let (Some(from), Some(to)) = (pr.from, pr.to) else {
                return Err(missing("portRange.From and portRange.To"));
            };
            if !(0..=65535).contains(&from) || !(0..=65535).contains(&to) || from > to {
                return Err(invalid_value(format!(
                    "Invalid port range {from}-{to}: ports are 0 to 65535 and From must not exceed To."
                )));
            }
            (Some(pr), None)
        }
        "1" | "58" => {
            let icmp = req
                .icmp_type_code
                .clone()
                .ok_or_else(|| missing("icmpTypeCode"))?;
            (None, Some(icmp))
        }
        _ => (None, None),
    };
    Ok(Entry {
        rule_number: req.rule_number,
        egress: req.egress,
        protocol,
        rule_action: action,
        cidr_block,
        ipv6_cidr_block,
        port_range,
        icmp_type_code,
    })
}

fn direction(egress: bool) -> &'static str {
    if egress { "egress" } else { "ingress" }
}

fn entry_not_found(acl: &str, rule: i64, egress: bool) -> Error {
    Error::new(
        "InvalidNetworkAclEntry.NotFound",
        format!(
            "The network ACL entry identified by {rule} ({}) does not exist in {acl}.",
            direction(egress)
        ),
    )
}

pub async fn create_network_acl_entry(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: EntryRequest = input(raw)?;
    let entry = entry_of(&req)?;
    let mut tx = ctx.store.write().await?;
    let mut acl = lock_acl(ctx, &mut tx, &req.network_acl_id).await?;
    let same_way = acl.entries.iter().filter(|e| e.egress == entry.egress);
    if same_way.clone().any(|e| e.rule_number == entry.rule_number) {
        return Err(Error::new(
            "NetworkAclEntryAlreadyExists",
            format!(
                "The network acl entry identified by {} already exists.",
                entry.rule_number
            ),
        ));
    }
    if same_way.count() >= RULES_PER_DIRECTION {
        return Err(Error::new(
            "NetworkAclEntryLimitExceeded",
            format!(
                "The maximum number of {} entries ({RULES_PER_DIRECTION}) for network ACL '{}' has been reached.",
                direction(entry.egress),
                acl.network_acl_id
            ),
        ));
    }
    dry_run(req.dry_run)?;
    acl.entries.push(entry);
    acl.entries.sort_by_key(|e| (!e.egress, e.rule_number));
    resource::update(ctx, &mut tx, &acl).await?;
    tx.commit().await?;
    Ok(json!({}))
}

pub async fn replace_network_acl_entry(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: EntryRequest = input(raw)?;
    let entry = entry_of(&req)?;
    let mut tx = ctx.store.write().await?;
    let mut acl = lock_acl(ctx, &mut tx, &req.network_acl_id).await?;
    let at = acl
        .entries
        .iter()
        .position(|e| e.egress == entry.egress && e.rule_number == entry.rule_number)
        .ok_or_else(|| entry_not_found(&acl.network_acl_id, entry.rule_number, entry.egress))?;
    dry_run(req.dry_run)?;
    acl.entries[at] = entry;
    resource::update(ctx, &mut tx, &acl).await?;
    tx.commit().await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteEntryRequest {
    network_acl_id: String,
    rule_number: i64,
    egress: bool,
    dry_run: Option<bool>,
}

pub async fn delete_network_acl_entry(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DeleteEntryRequest = input(raw)?;
    check_rule_number(req.rule_number)?;
    let mut tx = ctx.store.write().await?;
    let mut acl = lock_acl(ctx, &mut tx, &req.network_acl_id).await?;
    let at = acl
        .entries
        .iter()
        .position(|e| e.egress == req.egress && e.rule_number == req.rule_number)
        .ok_or_else(|| entry_not_found(&acl.network_acl_id, req.rule_number, req.egress))?;
    dry_run(req.dry_run)?;
    acl.entries.remove(at);
    resource::update(ctx, &mut tx, &acl).await?;
    tx.commit().await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ReplaceAssociationRequest {
    association_id: String,
    network_acl_id: String,
    dry_run: Option<bool>,
}

pub async fn replace_network_acl_association(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ReplaceAssociationRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let mut target = lock_acl(ctx, &mut tx, &req.network_acl_id).await?;
    // The association may be in any ACL of any VPC; find the one that holds it.
    let holder = resource::list::<NetworkAcl>(ctx, &mut tx)
        .await?
        .into_iter()
        .find(|a| {
            a.associations
                .iter()
                .any(|x| x.network_acl_association_id == req.association_id)
        })
        .ok_or_else(|| {
            Error::new(
                "InvalidAssociationID.NotFound",
                format!("The association ID '{}' does not exist", req.association_id),
            )
        })?;
    if holder.vpc_id != target.vpc_id {
        return Err(invalid_value(format!(
            "Network ACL {} and the subnet of association {} belong to different VPCs.",
            target.network_acl_id, req.association_id
        )));
    }
    dry_run(req.dry_run)?;
    let subnet_id = holder
        .associations
        .iter()
        .find(|x| x.network_acl_association_id == req.association_id)
        .map(|x| x.subnet_id.clone())
        .unwrap_or_default();
    let new_association_id = new_id("aclassoc");
    if holder.network_acl_id != target.network_acl_id {
        let mut holder = holder;
        holder
            .associations
            .retain(|x| x.network_acl_association_id != req.association_id);
        resource::update(ctx, &mut tx, &holder).await?;
    } else {
        target
            .associations
            .retain(|x| x.network_acl_association_id != req.association_id);
    }
    target.associations.push(NaclAssociation {
        network_acl_association_id: new_association_id.clone(),
        network_acl_id: target.network_acl_id.clone(),
        subnet_id,
    });
    resource::update(ctx, &mut tx, &target).await?;
    tx.commit().await?;
    Ok(json!({ "NewAssociationId": new_association_id }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_are_numbers() {
        assert_eq!(protocol_number("tcp").as_deref(), Some("6"));
        assert_eq!(protocol_number("UDP").as_deref(), Some("17"));
        assert_eq!(protocol_number("all").as_deref(), Some("-1"));
        assert_eq!(protocol_number("47").as_deref(), Some("47"));
        assert_eq!(protocol_number("300"), None);
        assert_eq!(protocol_number("gre"), None);
    }
}
