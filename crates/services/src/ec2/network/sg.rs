//! Security groups and their rules: CreateSecurityGroup, DescribeSecurityGroups,
//! DeleteSecurityGroup, Authorize/RevokeSecurityGroupIngress/Egress,
//! DescribeSecurityGroupRules, ModifySecurityGroupRules and
//! UpdateSecurityGroupRuleDescriptionsIngress/Egress.
//!
//! EC2 takes rules as `IpPermission`s (a protocol and port range with lists of peers) but keeps
//! them one peer each, every one with its own `sgr-` id. kumori stores them that way, each rule
//! its own record under its group, and regroups them into `IpPermission`s for
//! DescribeSecurityGroups.

use super::common::{
    Filter, Filterable, Tag, TagSpecification, check_filters, dry_run, invalid_value, matches,
    paginate, put_tags, tags_by_resource, tags_from_specs,
};
use super::default_vpc::find as find_default_vpc;
use super::generic::{Ec2Resource, check_id, describe_call};
use super::vpc::{self, Vpc};
use crate::resource::{self, Resource, arn, new_id};
use crate::{Ctx, Error, Result, input, output};
use kumori_net::cidr;
use kumori_protocol::Output;
use kumori_store::Tx;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecurityGroup {
    pub group_id: String,
    pub group_name: String,
    pub description: String,
    pub vpc_id: String,
    pub owner_id: String,
    pub security_group_arn: String,
}

impl SecurityGroup {
    pub fn is_default(&self) -> bool {
        self.group_name == "default"
    }
}

impl Resource for SecurityGroup {
    const KIND: &'static str = "security-group";
    fn id(&self) -> &str {
        &self.group_id
    }
    fn parent(&self) -> Option<&str> {
        Some(&self.vpc_id)
    }
}

impl Ec2Resource for SecurityGroup {
    const ID_PREFIX: &'static str = "sg";
    const ID_ERROR: &'static str = "InvalidGroupId";
    fn not_found(id: &str) -> Error {
        Error::new(
            "InvalidGroup.NotFound",
            format!("The security group '{id}' does not exist"),
        )
    }
}

/// The group's own fields; [`GroupView`] adds the filters over its rules.
impl Filterable for SecurityGroup {
    const FILTERS: &'static [&'static str] = &[
        "description",
        "group-id",
        "group-name",
        "owner-id",
        "vpc-id",
    ];
    fn field(&self, name: &str) -> Vec<String> {
        match name {
            "description" => vec![self.description.clone()],
            "group-id" => vec![self.group_id.clone()],
            "group-name" => vec![self.group_name.clone()],
            "owner-id" => vec![self.owner_id.clone()],
            "vpc-id" => vec![self.vpc_id.clone()],
            _ => vec![],
        }
    }
}

/// One rule: one direction, one protocol and port range, one peer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SgRule {
    pub security_group_rule_id: String,
    pub group_id: String,
    pub group_owner_id: String,
    pub is_egress: bool,
    /// Normalised: `-1`, `tcp`, `udp`, `icmp`, `icmpv6`, or another protocol's number.
    pub ip_protocol: String,
    /// -1 where the protocol has no ports (and for "all ICMP types / codes").
    pub from_port: i64,
    pub to_port: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cidr_ipv4: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cidr_ipv6: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix_list_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referenced_group_info: Option<ReferencedGroup>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub security_group_rule_arn: String,
    /// When the rule was added (microseconds, kept increasing within a process): EC2 lists a
    /// group's rules in the order they were added. 0 in documents stored before it was kept.
    /// Not an output member.
    #[serde(default, rename = "KumoriAdded")]
    pub added: u64,
}

/// A number for a new rule, greater than any this process gave before and, across
/// processes on one store, in the order of the clock.
fn next_added() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(last + 1);
        match LAST.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct ReferencedGroup {
    pub group_id: String,
    pub user_id: String,
}

impl Resource for SgRule {
    const KIND: &'static str = "security-group-rule";
    fn id(&self) -> &str {
        &self.security_group_rule_id
    }
    fn parent(&self) -> Option<&str> {
        Some(&self.group_id)
    }
}

impl Ec2Resource for SgRule {
    const ID_PREFIX: &'static str = "sgr";
    const ID_ERROR: &'static str = "InvalidSecurityGroupRuleId";
    fn not_found(id: &str) -> Error {
        Error::new(
            "InvalidSecurityGroupRuleId.NotFound",
            format!("The security group rule ID '{id}' does not exist"),
        )
    }
}

impl Filterable for SgRule {
    const FILTERS: &'static [&'static str] = &["group-id", "security-group-rule-id"];
    fn field(&self, name: &str) -> Vec<String> {
        match name {
            "group-id" => vec![self.group_id.clone()],
            "security-group-rule-id" => vec![self.security_group_rule_id.clone()],
            _ => vec![],
        }
    }
}

/// Whom a rule lets in (ingress) or out to (egress).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    V4(String),
    V6(String),
    PrefixList(String),
    Group(String),
}

/// A rule as requested, before it has an id: what Authorize adds and Revoke looks for.
#[derive(Debug, Clone)]
struct Spec {
    protocol: String,
    from: i64,
    to: i64,
    peer: Peer,
    description: Option<String>,
}

impl SgRule {
    fn peer(&self) -> Peer {
        if let Some(c) = &self.cidr_ipv4 {
            Peer::V4(c.clone())
        } else if let Some(c) = &self.cidr_ipv6 {
            Peer::V6(c.clone())
        } else if let Some(p) = &self.prefix_list_id {
            Peer::PrefixList(p.clone())
        } else {
            Peer::Group(
                self.referenced_group_info
                    .as_ref()
                    .map(|r| r.group_id.clone())
                    .unwrap_or_default(),
            )
        }
    }

    /// Same rule as `spec` in EC2's sense: descriptions do not count.
    fn same_as(&self, spec: &Spec) -> bool {
        self.ip_protocol == spec.protocol
            && self.from_port == spec.from
            && self.to_port == spec.to
            && self.peer() == spec.peer
    }

    fn new(ctx: &Ctx<'_>, group: &SecurityGroup, egress: bool, spec: Spec) -> SgRule {
        let id = new_id("sgr");
        let mut rule = SgRule {
            security_group_rule_arn: arn(
                "ec2",
                ctx.region,
                ctx.account,
                &format!("security-group-rule/{id}"),
            ),
            security_group_rule_id: id,
            group_id: group.group_id.clone(),
            group_owner_id: group.owner_id.clone(),
            is_egress: egress,
            ip_protocol: spec.protocol,
            from_port: spec.from,
            to_port: spec.to,
            cidr_ipv4: None,
            cidr_ipv6: None,
            prefix_list_id: None,
            referenced_group_info: None,
            description: spec.description,
            added: next_added(),
        };
        rule.set_peer(spec.peer, &group.owner_id);
        rule
    }

    fn set_peer(&mut self, peer: Peer, owner: &str) {
        self.cidr_ipv4 = None;
        self.cidr_ipv6 = None;
        self.prefix_list_id = None;
        self.referenced_group_info = None;
        match peer {
            Peer::V4(c) => self.cidr_ipv4 = Some(c),
            Peer::V6(c) => self.cidr_ipv6 = Some(c),
            Peer::PrefixList(p) => self.prefix_list_id = Some(p),
            Peer::Group(g) => {
                self.referenced_group_info = Some(ReferencedGroup {
                    group_id: g,
                    user_id: owner.to_string(),
                })
            }
        }
    }
}

/// EC2's spelling of a protocol: names for the four it knows by name, `-1` for all, and the
/// number for any other. `None` when it is neither a known name nor a number 0–255.
pub fn normalize_protocol(p: &str) -> Option<String> {
    let lower = p.trim().to_ascii_lowercase();
    let named = match lower.as_str() {
        "-1" | "all" => "-1",
        "tcp" | "6" => "tcp",
        "udp" | "17" => "udp",
        "icmp" | "1" => "icmp",
        "icmpv6" | "58" => "icmpv6",
        other => {
            return other
                .parse::<u8>()
                .ok()
                .map(|n| n.to_string())
                .filter(|_| !other.starts_with('+'));
        }
    };
    Some(named.to_string())
}

/// Whether rules of this protocol carry ports (or ICMP type/code) in `IpPermission`s.
fn has_ports(protocol: &str) -> bool {
    matches!(protocol, "tcp" | "udp" | "icmp" | "icmpv6")
}

/// The port range a rule keeps, after EC2's rules for each protocol.
fn port_range(protocol: &str, from: Option<i64>, to: Option<i64>) -> Result<(i64, i64)> {
    match protocol {
        "tcp" | "udp" => {
            let (Some(from), Some(to)) = (from, to) else {
                return Err(invalid_value(
                    "Invalid value for portRange. Must specify both from and to ports with TCP/UDP.",
                ));
            };
            for p in [from, to] {
                if !(0..=65535).contains(&p) {
                    return Err(invalid_value(format!(
                        "Invalid value '{p}' for portRange. Ports must be between 0 and 65535."
                    )));
                }
            }
            if from > to {
                return Err(invalid_value(format!(
                    "Invalid value for portRange. The from port ({from}) must not be greater than the to port ({to})."
                )));
            }
            Ok((from, to))
        }
        "icmp" | "icmpv6" => {
            let (kind, code) = (from.unwrap_or(-1), to.unwrap_or(-1));
            for (what, v) in [("type", kind), ("code", code)] {
                if !(-1..=255).contains(&v) {
                    return Err(invalid_value(format!(
                        "Invalid value '{v}' for ICMP {what}. It must be between -1 (all) and 255."
                    )));
                }
            }
            if kind == -1 && code != -1 {
                return Err(invalid_value(
                    "Invalid ICMP code: with ICMP type -1 (all types) the code must also be -1.",
                ));
            }
            Ok((kind, code))
        }
        // All traffic of the protocol; EC2 ignores any ports given.
        _ => Ok((-1, -1)),
    }
}

const NAME_CHARS: &str = "._-:/()#,@[]+=&;{}!$* ";

fn check_text(what: &str, value: &str, allow_empty: bool) -> Result<()> {
    if !value.is_ascii() {
        return Err(invalid_value(format!(
            "Value ({value}) for parameter {what} is invalid. Character sets beyond ASCII are not supported."
        )));
    }
    if value.len() > 255 || (!allow_empty && value.is_empty()) {
        return Err(invalid_value(format!(
            "Value ({value}) for parameter {what} is invalid. It must be 1 to 255 characters long."
        )));
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !c.is_ascii_alphanumeric() && !NAME_CHARS.contains(*c))
    {
        return Err(invalid_value(format!(
            "Invalid {what} '{value}': the character '{bad}' is not allowed. Valid characters: \
             a-z, A-Z, 0-9, spaces, and ._-:/()#,@[]+=&;{{}}!$*"
        )));
    }
    Ok(())
}

/// The `IpPermission` shape as callers send it.
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct IpPermissionIn {
    ip_protocol: Option<String>,
    from_port: Option<i64>,
    to_port: Option<i64>,
    #[serde(default)]
    ip_ranges: Vec<RangeIn>,
    #[serde(default)]
    ipv6_ranges: Vec<RangeIn>,
    #[serde(default)]
    prefix_list_ids: Vec<PrefixListIn>,
    #[serde(default)]
    user_id_group_pairs: Vec<GroupPairIn>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RangeIn {
    #[serde(alias = "CidrIpv6")]
    cidr_ip: Option<String>,
    description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PrefixListIn {
    prefix_list_id: Option<String>,
    description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GroupPairIn {
    group_id: Option<String>,
    group_name: Option<String>,
    description: Option<String>,
}

/// A rule's IPv4 range. EC2 accepts one with host bits set and stores its network
/// (10.0.0.28/29 becomes 10.0.0.24/29): ansible/ansible#25403 and #21956 saw the rule created
/// with the masked block, hashicorp/terraform-provider-aws#4641 the API taking
/// 92.68.201.91/29. The API reference does not say; no source shows a refusal.
fn check_v4(c: &str) -> Result<String> {
    match cidr::parse_v4_canonical(c) {
        Ok(net) => Ok(net.to_string()),
        Err(_) => Err(invalid_value(format!("CIDR block {c} is malformed"))),
    }
}

fn check_v6(c: &str) -> Result<String> {
    match c.parse::<ipnet::Ipv6Net>() {
        Ok(net) if net.trunc() == net => Ok(net.to_string()),
        _ => Err(invalid_value(format!("CIDR block {c} is malformed"))),
    }
}

fn check_description(d: &Option<String>) -> Result<()> {
    match d {
        Some(d) => check_text("description", d, true),
        None => Ok(()),
    }
}

/// A group that a rule of `group` names as its peer: it must exist and be in the same VPC.
async fn referenced_group(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    group: &SecurityGroup,
    id: Option<&str>,
    name: Option<&str>,
) -> Result<String> {
    let found = match (id, name) {
        (Some(id), _) => {
            check_id::<SecurityGroup>(id)?;
            resource::get::<SecurityGroup>(ctx, tx, id)
                .await?
                .ok_or_else(|| SecurityGroup::not_found(id))?
        }
        (None, Some(name)) => {
            resource::child_where::<SecurityGroup>(ctx, tx, &group.vpc_id, "GroupName", name)
                .await?
                .ok_or_else(|| {
                    Error::new(
                        "InvalidGroup.NotFound",
                        format!(
                            "The security group '{name}' does not exist in VPC '{}'",
                            group.vpc_id
                        ),
                    )
                })?
        }
        (None, None) => {
            return Err(Error::new(
                "MissingParameter",
                "A UserIdGroupPair must contain the parameter GroupId or GroupName.",
            ));
        }
    };
    if found.vpc_id != group.vpc_id
        && !super::peering::peered(ctx, tx, &found.vpc_id, &group.vpc_id).await?
    {
        return Err(Error::new(
            "InvalidGroup.NotFound",
            format!(
                "You have specified two resources that belong to different networks: {} is in {}, {} in {}.",
                group.group_id, group.vpc_id, found.group_id, found.vpc_id
            ),
        ));
    }
    Ok(found.group_id)
}

/// The rules that `perms` ask for, one per peer, checked as EC2 checks them.
async fn expand(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    group: &SecurityGroup,
    perms: &[IpPermissionIn],
) -> Result<Vec<Spec>> {
    let mut specs = Vec::new();
    for p in perms {
        let raw = p.ip_protocol.as_deref().ok_or_else(|| {
            Error::new(
                "MissingParameter",
                "The request must contain the parameter ipProtocol",
            )
        })?;
        let protocol = normalize_protocol(raw).ok_or_else(|| {
            invalid_value(format!(
                "Invalid value '{raw}' for IP protocol. Unknown protocol: use tcp, udp, icmp, \
                 icmpv6, -1 (all) or a protocol number from 0 to 255."
            ))
        })?;
        let (from, to) = port_range(&protocol, p.from_port, p.to_port)?;
        let mut peers: Vec<(Peer, Option<String>)> = Vec::new();
        for r in &p.ip_ranges {
            let c = r.cidr_ip.as_deref().ok_or_else(|| {
                Error::new(
                    "MissingParameter",
                    "The request must contain the parameter CidrIp",
                )
            })?;
            peers.push((Peer::V4(check_v4(c)?), r.description.clone()));
        }
        for r in &p.ipv6_ranges {
            let c = r.cidr_ip.as_deref().ok_or_else(|| {
                Error::new(
                    "MissingParameter",
                    "The request must contain the parameter CidrIpv6",
                )
            })?;
            peers.push((Peer::V6(check_v6(c)?), r.description.clone()));
        }
        for pl in &p.prefix_list_ids {
            let id = pl.prefix_list_id.as_deref().unwrap_or_default();
            let list = super::prefix_list::find(ctx, tx, id).await?;
            peers.push((
                Peer::PrefixList(list.prefix_list_id),
                pl.description.clone(),
            ));
        }
        for g in &p.user_id_group_pairs {
            let id = referenced_group(
                ctx,
                tx,
                group,
                g.group_id.as_deref(),
                g.group_name.as_deref(),
            )
            .await?;
            peers.push((Peer::Group(id), g.description.clone()));
        }
        if peers.is_empty() {
            return Err(Error::new(
                "MissingParameter",
                "Each IpPermission needs at least one source or destination: IpRanges, \
                 Ipv6Ranges, PrefixListIds or UserIdGroupPairs.",
            ));
        }
        for (peer, description) in peers {
            check_description(&description)?;
            specs.push(Spec {
                protocol: protocol.clone(),
                from,
                to,
                peer,
                description,
            });
        }
    }
    Ok(specs)
}

fn describe_spec(s: &Spec) -> String {
    let peer = match &s.peer {
        Peer::V4(c) | Peer::V6(c) | Peer::PrefixList(c) | Peer::Group(c) => c.as_str(),
    };
    if has_ports(&s.protocol) {
        format!(
            "peer: {peer}, {}, from port: {}, to port: {}, ALLOW",
            s.protocol.to_ascii_uppercase(),
            s.from,
            s.to
        )
    } else if s.protocol == "-1" {
        format!("peer: {peer}, ALL, ALLOW")
    } else {
        format!("peer: {peer}, {}, ALLOW", s.protocol)
    }
}

/// The default group every VPC is born with: all traffic in from its own members, all out.
pub fn default_group(ctx: &Ctx<'_>, vpc: &Vpc) -> (SecurityGroup, Vec<SgRule>) {
    let group = new_group(ctx, vpc, "default", "default VPC security group");
    let rules = vec![
        SgRule::new(
            ctx,
            &group,
            false,
            Spec {
                protocol: "-1".into(),
                from: -1,
                to: -1,
                peer: Peer::Group(group.group_id.clone()),
                description: None,
            },
        ),
        allow_all_out(ctx, &group),
    ];
    (group, rules)
}

fn allow_all_out(ctx: &Ctx<'_>, group: &SecurityGroup) -> SgRule {
    SgRule::new(
        ctx,
        group,
        true,
        Spec {
            protocol: "-1".into(),
            from: -1,
            to: -1,
            peer: Peer::V4("0.0.0.0/0".into()),
            description: None,
        },
    )
}

fn new_group(ctx: &Ctx<'_>, vpc: &Vpc, name: &str, description: &str) -> SecurityGroup {
    let group_id = new_id("sg");
    SecurityGroup {
        security_group_arn: arn(
            "ec2",
            ctx.region,
            ctx.account,
            &format!("security-group/{group_id}"),
        ),
        group_id,
        group_name: name.to_string(),
        description: description.to_string(),
        vpc_id: vpc.vpc_id.clone(),
        owner_id: ctx.account.to_string(),
    }
}

/// Stores a group with its rules (inside the caller's transaction).
pub async fn insert_group(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    group: &SecurityGroup,
    rules: &[SgRule],
) -> Result<()> {
    resource::insert(ctx, tx, group).await?;
    for r in rules {
        resource::insert(ctx, tx, r).await?;
    }
    Ok(())
}

/// A VPC given an IPv6 block: its default group also lets all IPv6 traffic out, as EC2's
/// does; once, however many blocks.
pub async fn allow_ipv6_out_of_default(ctx: &Ctx<'_>, tx: &mut Tx, vpc_id: &str) -> Result<()> {
    let group: Option<SecurityGroup> =
        resource::child_where(ctx, tx, vpc_id, "GroupName", "default").await?;
    let Some(group) = group else { return Ok(()) };
    let rules: Vec<SgRule> = resource::children(ctx, tx, &group.group_id).await?;
    if rules
        .iter()
        .any(|r| r.is_egress && r.ip_protocol == "-1" && r.cidr_ipv6.as_deref() == Some("::/0"))
    {
        return Ok(());
    }
    let rule = SgRule::new(
        ctx,
        &group,
        true,
        Spec {
            protocol: "-1".into(),
            from: -1,
            to: -1,
            peer: Peer::V6("::/0".into()),
            description: None,
        },
    );
    resource::insert(ctx, tx, &rule).await
}

/// Removes a group and its rules (inside the caller's transaction).
pub async fn remove_group(ctx: &Ctx<'_>, tx: &mut Tx, group_id: &str) -> Result<()> {
    for r in resource::children::<SgRule>(ctx, tx, group_id).await? {
        tx.delete(ctx.scope(), &r.security_group_rule_id).await?;
    }
    tx.delete(ctx.scope(), group_id).await?;
    Ok(())
}

/// The group a call names by `GroupId`, or by `GroupName` in the default VPC; locked.
async fn lock_group(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    id: Option<&str>,
    name: Option<&str>,
) -> Result<SecurityGroup> {
    match (id, name) {
        (Some(id), _) => {
            check_id::<SecurityGroup>(id)?;
            resource::lock(ctx, tx, id)
                .await?
                .ok_or_else(|| SecurityGroup::not_found(id))
        }
        (None, Some(name)) => {
            let vpc = find_default_vpc(ctx, tx)
                .await?
                .ok_or_else(no_default_vpc)?;
            let group: SecurityGroup =
                resource::child_where(ctx, tx, &vpc.vpc_id, "GroupName", name)
                    .await?
                    .ok_or_else(|| not_in_default_vpc(name, &vpc.vpc_id))?;
            Ok(resource::lock(ctx, tx, &group.group_id)
                .await?
                .unwrap_or(group))
        }
        (None, None) => Err(Error::new(
            "MissingParameter",
            "The request must contain the parameter groupId or groupName",
        )),
    }
}

fn no_default_vpc() -> Error {
    Error::new(
        "VPCIdNotSpecified",
        "No default VPC for this user. GroupName is only supported for the default VPC; pass a VpcId or GroupId.",
    )
}

fn not_in_default_vpc(name: &str, vpc_id: &str) -> Error {
    Error::new(
        "InvalidGroup.NotFound",
        format!("The security group '{name}' does not exist in default VPC '{vpc_id}'"),
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateSecurityGroupRequest {
    /// `GroupDescription` on the wire; the model marks it required, but a raw call may leave
    /// it out, and EC2 then names the wire member.
    description: Option<String>,
    group_name: String,
    vpc_id: Option<String>,
    #[serde(default)]
    tag_specifications: Vec<TagSpecification>,
    dry_run: Option<bool>,
}

pub async fn create_security_group(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: CreateSecurityGroupRequest = input(raw)?;
    check_text("GroupName", &req.group_name, false)?;
    let description = req.description.clone().ok_or_else(|| {
        Error::new(
            "MissingParameter",
            "The request must contain the parameter GroupDescription",
        )
    })?;
    check_text("GroupDescription", &description, false)?;
    if req.group_name.to_ascii_lowercase().starts_with("sg-") {
        return Err(invalid_value("Group names may not be in the format sg-*"));
    }
    if req.group_name == "default" {
        return Err(invalid_value(
            "Cannot use reserved security group name: default",
        ));
    }
    let tags = tags_from_specs(&req.tag_specifications, SecurityGroup::KIND)?;
    let mut tx = ctx.store.write().await?;
    let vpc = match &req.vpc_id {
        Some(id) => {
            check_id::<Vpc>(id)?;
            resource::lock::<Vpc>(ctx, &mut tx, id)
                .await?
                .ok_or_else(|| vpc::not_found(id))?
        }
        None => {
            let v = find_default_vpc(ctx, &mut tx)
                .await?
                .ok_or_else(no_default_vpc)?;
            resource::lock(ctx, &mut tx, &v.vpc_id).await?.unwrap_or(v)
        }
    };
    let same_name: Option<SecurityGroup> =
        resource::child_where(ctx, &mut tx, &vpc.vpc_id, "GroupName", &req.group_name).await?;
    if same_name.is_some() {
        return Err(Error::new(
            "InvalidGroup.Duplicate",
            format!(
                "The security group '{}' already exists for VPC '{}'",
                req.group_name, vpc.vpc_id
            ),
        ));
    }
    if tx.count(ctx.scope(), SecurityGroup::KIND).await? >= ctx.limits.security_groups_per_region {
        return Err(Error::new(
            "SecurityGroupLimitExceeded",
            "The maximum number of security groups has been reached.",
        ));
    }
    dry_run(req.dry_run)?;
    let group = new_group(ctx, &vpc, &req.group_name, &description);
    // A new group lets everything out and nothing in, as on AWS.
    let rules = [allow_all_out(ctx, &group)];
    insert_group(ctx, &mut tx, &group, &rules).await?;
    put_tags(ctx, &mut tx, &group.group_id, SecurityGroup::KIND, &tags).await?;
    tx.commit().await?;
    let mut out =
        json!({ "GroupId": group.group_id, "SecurityGroupArn": group.security_group_arn });
    if !tags.is_empty() {
        out["Tags"] = output(&tags)?;
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteSecurityGroupRequest {
    group_id: Option<String>,
    group_name: Option<String>,
    dry_run: Option<bool>,
}

pub async fn delete_security_group(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DeleteSecurityGroupRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let group = lock_group(
        ctx,
        &mut tx,
        req.group_id.as_deref(),
        req.group_name.as_deref(),
    )
    .await?;
    if group.is_default() {
        return Err(Error::new(
            "CannotDelete",
            format!(
                "the specified group: \"{}\" name: \"default\" cannot be deleted by a user",
                group.group_id
            ),
        ));
    }
    // Referenced by another group's rule: EC2 refuses until that rule goes.
    let referenced = resource::list::<SgRule>(ctx, &mut tx)
        .await?
        .into_iter()
        .any(|r| r.group_id != group.group_id && r.peer() == Peer::Group(group.group_id.clone()));
    let used = super::eni::group_in_use(ctx, &mut tx, &group.group_id).await?;
    if referenced || used {
        return Err(Error::new(
            "DependencyViolation",
            format!("resource {} has a dependent object", group.group_id),
        ));
    }
    dry_run(req.dry_run)?;
    remove_group(ctx, &mut tx, &group.group_id).await?;
    tx.commit().await?;
    Ok(json!({ "Return": true, "GroupId": group.group_id }))
}

/// A group with its rules, as DescribeSecurityGroups filters it.
struct GroupView<'a> {
    /// The group's place in the snapshot's id order.
    position: usize,
    group: &'a SecurityGroup,
    /// Looked into only by the `ip-permission.*` filters.
    rules: &'a RulesByGroup,
    names: &'a HashMap<&'a str, &'a str>,
}

impl Filterable for GroupView<'_> {
    const FILTERS: &'static [&'static str] = &[
        "description",
        "egress.ip-permission.cidr",
        "egress.ip-permission.from-port",
        "egress.ip-permission.group-id",
        "egress.ip-permission.group-name",
        "egress.ip-permission.ipv6-cidr",
        "egress.ip-permission.prefix-list-id",
        "egress.ip-permission.protocol",
        "egress.ip-permission.to-port",
        "egress.ip-permission.user-id",
        "group-id",
        "group-name",
        "ip-permission.cidr",
        "ip-permission.from-port",
        "ip-permission.group-id",
        "ip-permission.group-name",
        "ip-permission.ipv6-cidr",
        "ip-permission.prefix-list-id",
        "ip-permission.protocol",
        "ip-permission.to-port",
        "ip-permission.user-id",
        "owner-id",
        "vpc-id",
    ];
    fn field(&self, name: &str) -> Vec<String> {
        let g = self.group;
        let (egress, attr) = match name.strip_prefix("egress.ip-permission.") {
            Some(a) => (true, a),
            None => match name.strip_prefix("ip-permission.") {
                Some(a) => (false, a),
                None => return g.field(name),
            },
        };
        let rules = self.rules.of(&g.group_id).filter(|r| r.is_egress == egress);
        let group_ref = |r: &SgRule| r.referenced_group_info.clone();
        match attr {
            "cidr" => rules.filter_map(|r| r.cidr_ipv4.clone()).collect(),
            "ipv6-cidr" => rules.filter_map(|r| r.cidr_ipv6.clone()).collect(),
            "prefix-list-id" => rules.filter_map(|r| r.prefix_list_id.clone()).collect(),
            "protocol" => rules.map(|r| r.ip_protocol.clone()).collect(),
            "from-port" => rules.map(|r| r.from_port.to_string()).collect(),
            "to-port" => rules.map(|r| r.to_port.to_string()).collect(),
            "group-id" => rules.filter_map(group_ref).map(|x| x.group_id).collect(),
            "user-id" => rules.filter_map(group_ref).map(|x| x.user_id).collect(),
            "group-name" => rules
                .filter_map(group_ref)
                .filter_map(|x| self.names.get(x.group_id.as_str()).map(|n| n.to_string()))
                .collect(),
            _ => vec![],
        }
    }
}

/// Every rule, by group and then by rule id: how DescribeSecurityGroups wants them, kept as
/// a shared snapshot (persistent maps, so a refresh after a rule changes costs that rule).
#[derive(Clone, Default)]
struct RulesByGroup {
    /// Rule id → its group, to find a deleted rule's group.
    group_of: imbl::OrdMap<String, String>,
    by_group: imbl::OrdMap<String, imbl::OrdMap<String, SgRule>>,
}

impl RulesByGroup {
    fn of(&self, group_id: &str) -> impl Iterator<Item = &SgRule> {
        self.by_group
            .get(group_id)
            .into_iter()
            .flat_map(|m| m.values())
    }

    fn remove(&mut self, rule_id: &str) {
        if let Some(g) = self.group_of.remove(rule_id)
            && let Some(rules) = self.by_group.get_mut(&g)
        {
            rules.remove(rule_id);
            if rules.is_empty() {
                self.by_group.remove(&g);
            }
        }
    }

    fn insert(&mut self, r: SgRule) {
        self.remove(&r.security_group_rule_id);
        self.group_of
            .insert(r.security_group_rule_id.clone(), r.group_id.clone());
        self.by_group
            .entry(r.group_id.clone())
            .or_default()
            .insert(r.security_group_rule_id.clone(), r);
    }
}

impl kumori_store::Snapshot for RulesByGroup {
    type Error = Error;
    fn load(all: &str) -> Result<Self> {
        let mut out = RulesByGroup::default();
        for r in resource::decode_all::<SgRule>(all)? {
            out.insert(r);
        }
        Ok(out)
    }
    fn patch(&mut self, deleted: &[String], changed: &str) -> Result<()> {
        for id in deleted {
            self.remove(id);
        }
        for r in resource::decode_all::<SgRule>(changed)? {
            self.insert(r);
        }
        Ok(())
    }
}

/// One page of DescribeSecurityGroups, written straight to the wire from the snapshots it
/// was selected from: a thousand groups never become a tree of JSON values.
struct SecurityGroupPage {
    groups: Arc<resource::Docs<SecurityGroup>>,
    rules: Arc<RulesByGroup>,
    tags: HashMap<String, Vec<Tag>>,
    /// Positions, in the snapshot's id order, of the groups on the page (ascending).
    selected: Vec<usize>,
    next_token: Option<String>,
}

impl Serialize for SecurityGroupPage {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = s.serialize_struct("DescribeSecurityGroupsResult", 2)?;
        out.serialize_field("SecurityGroups", &GroupsOut(self))?;
        if let Some(t) = &self.next_token {
            out.serialize_field("NextToken", t)?;
        }
        out.end()
    }
}

struct GroupsOut<'a>(&'a SecurityGroupPage);

impl Serialize for GroupsOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let page = self.0;
        let mut seq = s.serialize_seq(Some(page.selected.len()))?;
        // Groups and rules are both in group-id order: walk them side by side instead of
        // looking every group up.
        let mut wanted = page.selected.iter().copied().peekable();
        let mut by_group = page.rules.by_group.iter().peekable();
        for (position, g) in page.groups.0.values().enumerate() {
            match wanted.peek() {
                None => break,
                Some(&p) if p != position => continue,
                Some(_) => wanted.next(),
            };
            while by_group
                .peek()
                .is_some_and(|(id, _)| id.as_str() < g.group_id.as_str())
            {
                by_group.next();
            }
            let rules: Vec<&SgRule> = match by_group.peek() {
                Some((id, rules)) if **id == g.group_id => rules.values().collect(),
                _ => Vec::new(),
            };
            seq.serialize_element(&GroupOut {
                group_id: &g.group_id,
                ip_permissions_egress: permissions(&rules, true),
                tags: page.tags.get(&g.group_id).map_or(&[][..], Vec::as_slice),
                vpc_id: &g.vpc_id,
                security_group_arn: &g.security_group_arn,
                owner_id: &g.owner_id,
                group_name: &g.group_name,
                description: &g.description,
                ip_permissions: permissions(&rules, false),
            })?;
        }
        seq.end()
    }
}

/// A security group as EC2 shows it. Fields are in the model's member order, which is the
/// order the XML writer finds them fastest in.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct GroupOut<'a> {
    group_id: &'a str,
    ip_permissions_egress: Vec<Permission<'a>>,
    #[serde(skip_serializing_if = "<[Tag]>::is_empty")]
    tags: &'a [Tag],
    vpc_id: &'a str,
    security_group_arn: &'a str,
    owner_id: &'a str,
    group_name: &'a str,
    description: &'a str,
    ip_permissions: Vec<Permission<'a>>,
}

/// Rules sharing a protocol and port range, with their peers, as EC2's `IpPermission`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Permission<'a> {
    ip_protocol: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    from_port: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to_port: Option<i64>,
    user_id_group_pairs: Vec<PeerOut<'a>>,
    ip_ranges: Vec<PeerOut<'a>>,
    ipv6_ranges: Vec<PeerOut<'a>>,
    prefix_list_ids: Vec<PeerOut<'a>>,
}

/// One peer of a permission: `IpRange`, `Ipv6Range`, `PrefixListId` or `UserIdGroupPair`,
/// each with just the members that kind of peer has.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct PeerOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cidr_ip: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cidr_ipv6: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prefix_list_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group_id: Option<&'a str>,
}

/// A group's rules of one direction regrouped into `IpPermission`s, one per protocol and port
/// range, in the order the rules were added (as EC2 lists them).
fn permissions<'a>(rules: &[&'a SgRule], egress: bool) -> Vec<Permission<'a>> {
    let mut perms: Vec<Permission<'a>> = Vec::new();
    let mut mine: Vec<&SgRule> = rules
        .iter()
        .copied()
        .filter(|r| r.is_egress == egress)
        .collect();
    mine.sort_by(|a, b| {
        (a.added, &a.security_group_rule_id).cmp(&(b.added, &b.security_group_rule_id))
    });
    for r in mine {
        let ports = has_ports(&r.ip_protocol);
        let (from, to) = (ports.then_some(r.from_port), ports.then_some(r.to_port));
        let at = match perms
            .iter()
            .position(|p| p.ip_protocol == r.ip_protocol && p.from_port == from && p.to_port == to)
        {
            Some(i) => i,
            None => {
                perms.push(Permission {
                    ip_protocol: &r.ip_protocol,
                    from_port: from,
                    to_port: to,
                    ip_ranges: Vec::new(),
                    ipv6_ranges: Vec::new(),
                    prefix_list_ids: Vec::new(),
                    user_id_group_pairs: Vec::new(),
                });
                perms.len() - 1
            }
        };
        let p = &mut perms[at];
        let mut peer = PeerOut {
            cidr_ip: None,
            cidr_ipv6: None,
            prefix_list_id: None,
            group_id: None,
            user_id: None,
            description: r.description.as_deref(),
        };
        let list = if let Some(c) = &r.cidr_ipv4 {
            peer.cidr_ip = Some(c);
            &mut p.ip_ranges
        } else if let Some(c) = &r.cidr_ipv6 {
            peer.cidr_ipv6 = Some(c);
            &mut p.ipv6_ranges
        } else if let Some(id) = &r.prefix_list_id {
            peer.prefix_list_id = Some(id);
            &mut p.prefix_list_ids
        } else if let Some(g) = &r.referenced_group_info {
            peer.group_id = Some(&g.group_id);
            peer.user_id = Some(&r.group_owner_id);
            &mut p.user_id_group_pairs
        } else {
            continue;
        };
        list.push(peer);
    }
    perms
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeSecurityGroupsRequest {
    #[serde(default)]
    group_ids: Vec<String>,
    #[serde(default)]
    group_names: Vec<String>,
    #[serde(default)]
    filters: Vec<Filter>,
    max_results: Option<i64>,
    next_token: Option<String>,
    dry_run: Option<bool>,
}

/// Not `generic::describe`: groups are asked for by GroupNames (of the default VPC only) as well as
/// GroupIds, rules are `sgr-` records of their own regrouped per group, and the typed output is
/// written straight to XML from shared snapshots for 1,000 groups (see bench/security_groups.py).
pub async fn describe_security_groups(ctx: &Ctx<'_>, raw: &Value) -> Result<Output> {
    let req: DescribeSecurityGroupsRequest = input(raw)?;
    check_filters::<GroupView>(&req.filters)?;
    for id in &req.group_ids {
        check_id::<SecurityGroup>(id)?;
    }
    // EC2 checks a `group-id` filter's values as ids too (wildcards aside).
    for f in req.filters.iter().filter(|f| f.name == "group-id") {
        for v in f.values.iter().filter(|v| !v.contains(['*', '?'])) {
            check_id::<SecurityGroup>(v)?;
        }
    }
    let mut tx = ctx.store.read().await?;
    let groups: Arc<resource::Docs<SecurityGroup>> = resource::snapshot(ctx, &mut tx).await?;
    let rules: Arc<RulesByGroup> = tx.snapshot(ctx.scope(), SgRule::KIND).await?;
    let tags = tags_by_resource(ctx, &mut tx, SecurityGroup::KIND).await?;
    let default_vpc = if req.group_names.is_empty() {
        None
    } else {
        find_default_vpc(ctx, &mut tx).await?
    };
    drop(tx);
    if let Some(missing) = req.group_ids.iter().find(|id| !groups.0.contains_key(*id)) {
        return Err(SecurityGroup::not_found(missing));
    }
    // Names only name groups of the default VPC.
    let mut by_name: Vec<&str> = Vec::new();
    if !req.group_names.is_empty() {
        let vpc = default_vpc.ok_or_else(no_default_vpc)?;
        for name in &req.group_names {
            let g = groups
                .0
                .values()
                .find(|g| g.vpc_id == vpc.vpc_id && &g.group_name == name)
                .ok_or_else(|| not_in_default_vpc(name, &vpc.vpc_id))?;
            by_name.push(&g.group_id);
        }
    }
    dry_run(req.dry_run)?;
    // Names of referenced groups: only the `*.group-name` filters need them.
    let names: HashMap<&str, &str> = if req.filters.iter().any(|f| f.name.ends_with("group-name")) {
        groups
            .0
            .values()
            .map(|g| (g.group_id.as_str(), g.group_name.as_str()))
            .collect()
    } else {
        HashMap::new()
    };
    let none = Vec::new();
    let explicit = !req.group_ids.is_empty() || !by_name.is_empty();
    let views: Vec<GroupView> = groups
        .0
        .values()
        .enumerate()
        .filter(|(_, g)| {
            !explicit
                || req.group_ids.contains(&g.group_id)
                || by_name.contains(&g.group_id.as_str())
        })
        .map(|(position, g)| GroupView {
            position,
            group: g,
            rules: &rules,
            names: &names,
        })
        .filter(|v| {
            matches(
                v,
                tags.get(&v.group.group_id).unwrap_or(&none),
                &req.filters,
            )
        })
        .collect();
    let (page, next_token) = paginate(
        views,
        |v| v.group.group_id.clone(),
        req.max_results,
        req.next_token.as_deref(),
    )?;
    let selected = page.iter().map(|v| v.position).collect();
    drop(names);
    Ok(Output::Typed(Box::new(SecurityGroupPage {
        groups,
        rules,
        tags,
        selected,
        next_token,
    })))
}

/// What Authorize and Revoke take besides the direction.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RuleChangeRequest {
    group_id: Option<String>,
    group_name: Option<String>,
    #[serde(default)]
    ip_permissions: Vec<IpPermissionIn>,
    // The older single-rule form.
    ip_protocol: Option<String>,
    from_port: Option<i64>,
    to_port: Option<i64>,
    cidr_ip: Option<String>,
    source_security_group_name: Option<String>,
    #[serde(default)]
    security_group_rule_ids: Vec<String>,
    #[serde(default)]
    tag_specifications: Vec<TagSpecification>,
    dry_run: Option<bool>,
}

impl RuleChangeRequest {
    /// `IpPermissions`, plus the rule the older top-level members describe.
    fn permissions(self) -> Vec<IpPermissionIn> {
        let mut perms = self.ip_permissions;
        if self.cidr_ip.is_some() || self.source_security_group_name.is_some() {
            perms.push(IpPermissionIn {
                // A bare source group means all traffic from it.
                ip_protocol: Some(self.ip_protocol.unwrap_or_else(|| "-1".into())),
                from_port: self.from_port,
                to_port: self.to_port,
                ip_ranges: self
                    .cidr_ip
                    .map(|c| {
                        vec![RangeIn {
                            cidr_ip: Some(c),
                            description: None,
                        }]
                    })
                    .unwrap_or_default(),
                user_id_group_pairs: self
                    .source_security_group_name
                    .map(|n| {
                        vec![GroupPairIn {
                            group_id: None,
                            group_name: Some(n),
                            description: None,
                        }]
                    })
                    .unwrap_or_default(),
                ..Default::default()
            });
        }
        perms
    }
}

pub async fn authorize_security_group_ingress(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    authorize(ctx, raw, false).await
}

pub async fn authorize_security_group_egress(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    authorize(ctx, raw, true).await
}

async fn authorize(ctx: &Ctx<'_>, raw: &Value, egress: bool) -> Result<Value> {
    let req: RuleChangeRequest = input(raw)?;
    let tags = tags_from_specs(&req.tag_specifications, SgRule::KIND)?;
    let dry = req.dry_run;
    let mut tx = ctx.store.write().await?;
    let group = lock_group(
        ctx,
        &mut tx,
        req.group_id.as_deref(),
        req.group_name.as_deref(),
    )
    .await?;
    let perms = req.permissions();
    if perms.is_empty() {
        return Err(Error::new(
            "MissingParameter",
            "The request must contain the parameter IpPermissions",
        ));
    }
    let specs = expand(ctx, &mut tx, &group, &perms).await?;
    let existing: Vec<SgRule> = resource::children(ctx, &mut tx, &group.group_id).await?;
    let mut new_rules: Vec<SgRule> = Vec::new();
    for spec in specs {
        let clash = existing
            .iter()
            .chain(new_rules.iter())
            .any(|r| r.is_egress == egress && r.same_as(&spec));
        if clash {
            return Err(Error::new(
                "InvalidPermission.Duplicate",
                format!(
                    "the specified rule \"{}\" already exists",
                    describe_spec(&spec)
                ),
            ));
        }
        new_rules.push(SgRule::new(ctx, &group, egress, spec));
    }
    // A rule naming a prefix list counts as many rules as the list may hold entries.
    let mut count = 0;
    for r in existing
        .iter()
        .chain(new_rules.iter())
        .filter(|r| r.is_egress == egress)
    {
        count += match &r.prefix_list_id {
            Some(id) => super::prefix_list::rule_weight(ctx, &mut tx, id).await?,
            None => 1,
        };
    }
    if count > ctx.limits.rules_per_group {
        return Err(Error::new(
            "RulesPerSecurityGroupLimitExceeded",
            "The maximum number of rules per security group has been reached.",
        ));
    }
    dry_run(dry)?;
    for r in &new_rules {
        resource::insert(ctx, &mut tx, r).await?;
        put_tags(ctx, &mut tx, &r.security_group_rule_id, SgRule::KIND, &tags).await?;
    }
    tx.commit().await?;
    let shown = new_rules
        .iter()
        .map(|r| r.shown(&tags))
        .collect::<Result<Vec<_>>>()?;
    Ok(json!({ "Return": true, "SecurityGroupRules": shown }))
}

pub async fn revoke_security_group_ingress(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    revoke(ctx, raw, false).await
}

pub async fn revoke_security_group_egress(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    revoke(ctx, raw, true).await
}

async fn revoke(ctx: &Ctx<'_>, raw: &Value, egress: bool) -> Result<Value> {
    let req: RuleChangeRequest = input(raw)?;
    let dry = req.dry_run;
    let mut tx = ctx.store.write().await?;
    let group = lock_group(
        ctx,
        &mut tx,
        req.group_id.as_deref(),
        req.group_name.as_deref(),
    )
    .await?;
    let rule_ids = req.security_group_rule_ids.clone();
    let perms = req.permissions();
    if perms.is_empty() && rule_ids.is_empty() {
        return Err(Error::new(
            "MissingParameter",
            "The request must contain the parameter IpPermissions or SecurityGroupRuleIds",
        ));
    }
    let existing: Vec<SgRule> = resource::children(ctx, &mut tx, &group.group_id).await?;
    let mine = |r: &&SgRule| r.is_egress == egress;
    let mut gone: Vec<&SgRule> = Vec::new();
    for id in &rule_ids {
        check_id::<SgRule>(id)?;
        let r = existing
            .iter()
            .filter(mine)
            .find(|r| &r.security_group_rule_id == id)
            .ok_or_else(|| SgRule::not_found(id))?;
        gone.push(r);
    }
    for spec in expand(ctx, &mut tx, &group, &perms).await? {
        let r = existing
            .iter()
            .filter(mine)
            .find(|r| r.same_as(&spec))
            .ok_or_else(|| {
                Error::new(
                    "InvalidPermission.NotFound",
                    format!(
                        "The specified rule does not exist in this security group: \"{}\".",
                        describe_spec(&spec)
                    ),
                )
            })?;
        gone.push(r);
    }
    dry_run(dry)?;
    gone.dedup_by(|a, b| a.security_group_rule_id == b.security_group_rule_id);
    let mut revoked = Vec::new();
    for r in gone {
        tx.delete(ctx.scope(), &r.security_group_rule_id).await?;
        let mut v = json!({
            "SecurityGroupRuleId": r.security_group_rule_id,
            "GroupId": r.group_id,
            "IsEgress": r.is_egress,
            "IpProtocol": r.ip_protocol,
            "FromPort": r.from_port,
            "ToPort": r.to_port,
        });
        for (k, val) in [
            ("CidrIpv4", &r.cidr_ipv4),
            ("CidrIpv6", &r.cidr_ipv6),
            ("PrefixListId", &r.prefix_list_id),
            ("Description", &r.description),
        ] {
            if let Some(x) = val {
                v[k] = json!(x);
            }
        }
        if let Some(g) = &r.referenced_group_info {
            v["ReferencedGroupId"] = json!(g.group_id);
        }
        revoked.push(v);
    }
    tx.commit().await?;
    Ok(json!({ "Return": true, "RevokedSecurityGroupRules": revoked }))
}

pub async fn describe_security_group_rules(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    describe_call::<SgRule>(ctx, raw, "SecurityGroupRuleIds", "SecurityGroupRules").await
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ModifySecurityGroupRulesRequest {
    group_id: String,
    security_group_rules: Vec<RuleUpdate>,
    dry_run: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RuleUpdate {
    security_group_rule_id: String,
    security_group_rule: Option<RuleRequest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RuleRequest {
    ip_protocol: Option<String>,
    from_port: Option<i64>,
    to_port: Option<i64>,
    cidr_ipv4: Option<String>,
    cidr_ipv6: Option<String>,
    prefix_list_id: Option<String>,
    referenced_group_id: Option<String>,
    description: Option<String>,
}

pub async fn modify_security_group_rules(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ModifySecurityGroupRulesRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let group = lock_group(ctx, &mut tx, Some(&req.group_id), None).await?;
    let mut rules: Vec<SgRule> = resource::children(ctx, &mut tx, &group.group_id).await?;
    let mut changed = Vec::new();
    for u in &req.security_group_rules {
        check_id::<SgRule>(&u.security_group_rule_id)?;
        let at = rules
            .iter()
            .position(|r| r.security_group_rule_id == u.security_group_rule_id)
            .ok_or_else(|| SgRule::not_found(&u.security_group_rule_id))?;
        let Some(want) = &u.security_group_rule else {
            return Err(Error::new(
                "MissingParameter",
                "The request must contain the parameter SecurityGroupRule",
            ));
        };
        if want.ip_protocol.as_deref().is_none_or(str::is_empty) {
            return Err(invalid_value(format!(
                "The rule {} must name its IpProtocol (tcp, udp, icmp, icmpv6, -1 or a protocol number).",
                u.security_group_rule_id
            )));
        }
        let one = |c: &Option<String>| {
            c.as_ref().map(|x| RangeIn {
                cidr_ip: Some(x.clone()),
                description: want.description.clone(),
            })
        };
        let perm = IpPermissionIn {
            ip_protocol: want.ip_protocol.clone(),
            from_port: want.from_port,
            to_port: want.to_port,
            ip_ranges: one(&want.cidr_ipv4).into_iter().collect(),
            ipv6_ranges: one(&want.cidr_ipv6).into_iter().collect(),
            prefix_list_ids: want
                .prefix_list_id
                .iter()
                .map(|p| PrefixListIn {
                    prefix_list_id: Some(p.clone()),
                    description: want.description.clone(),
                })
                .collect(),
            user_id_group_pairs: want
                .referenced_group_id
                .iter()
                .map(|g| GroupPairIn {
                    group_id: Some(g.clone()),
                    group_name: None,
                    description: want.description.clone(),
                })
                .collect(),
        };
        let mut specs = expand(ctx, &mut tx, &group, &[perm]).await?;
        if specs.len() != 1 {
            return Err(invalid_value(
                "A security group rule has exactly one of CidrIpv4, CidrIpv6, PrefixListId or ReferencedGroupId.",
            ));
        }
        let spec = specs.remove(0);
        let egress = rules[at].is_egress;
        if rules
            .iter()
            .enumerate()
            .any(|(i, r)| i != at && r.is_egress == egress && r.same_as(&spec))
        {
            return Err(Error::new(
                "InvalidPermission.Duplicate",
                format!(
                    "the specified rule \"{}\" already exists",
                    describe_spec(&spec)
                ),
            ));
        }
        let r = &mut rules[at];
        r.ip_protocol = spec.protocol;
        r.from_port = spec.from;
        r.to_port = spec.to;
        r.description = spec.description;
        r.set_peer(spec.peer, &group.owner_id);
        changed.push(at);
    }
    dry_run(req.dry_run)?;
    for at in changed {
        resource::update(ctx, &mut tx, &rules[at]).await?;
    }
    tx.commit().await?;
    Ok(json!({ "Return": true }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateDescriptionsRequest {
    group_id: Option<String>,
    group_name: Option<String>,
    #[serde(default)]
    ip_permissions: Vec<IpPermissionIn>,
    #[serde(default)]
    security_group_rule_descriptions: Vec<RuleDescription>,
    dry_run: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RuleDescription {
    security_group_rule_id: Option<String>,
    description: Option<String>,
}

pub async fn update_security_group_rule_descriptions_ingress(
    ctx: &Ctx<'_>,
    raw: &Value,
) -> Result<Value> {
    update_descriptions(ctx, raw, false).await
}

pub async fn update_security_group_rule_descriptions_egress(
    ctx: &Ctx<'_>,
    raw: &Value,
) -> Result<Value> {
    update_descriptions(ctx, raw, true).await
}

async fn update_descriptions(ctx: &Ctx<'_>, raw: &Value, egress: bool) -> Result<Value> {
    let req: UpdateDescriptionsRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let group = lock_group(
        ctx,
        &mut tx,
        req.group_id.as_deref(),
        req.group_name.as_deref(),
    )
    .await?;
    let mut rules: Vec<SgRule> = resource::children(ctx, &mut tx, &group.group_id).await?;
    let mut changed: Vec<usize> = Vec::new();
    for d in &req.security_group_rule_descriptions {
        let id = d.security_group_rule_id.as_deref().unwrap_or_default();
        check_description(&d.description)?;
        let at = rules
            .iter()
            .position(|r| r.is_egress == egress && r.security_group_rule_id == id)
            .ok_or_else(|| SgRule::not_found(id))?;
        rules[at].description = d.description.clone().filter(|s| !s.is_empty());
        changed.push(at);
    }
    for spec in expand(ctx, &mut tx, &group, &req.ip_permissions).await? {
        let at = rules
            .iter()
            .position(|r| r.is_egress == egress && r.same_as(&spec))
            .ok_or_else(|| {
                Error::new(
                    "InvalidPermission.NotFound",
                    format!(
                        "The specified rule does not exist in this security group: \"{}\".",
                        describe_spec(&spec)
                    ),
                )
            })?;
        rules[at].description = spec.description.filter(|s| !s.is_empty());
        changed.push(at);
    }
    dry_run(req.dry_run)?;
    for at in changed {
        resource::update(ctx, &mut tx, &rules[at]).await?;
    }
    tx.commit().await?;
    Ok(json!({ "Return": true }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_normalise_as_ec2_does() {
        assert_eq!(normalize_protocol("TCP").as_deref(), Some("tcp"));
        assert_eq!(normalize_protocol("6").as_deref(), Some("tcp"));
        assert_eq!(normalize_protocol("17").as_deref(), Some("udp"));
        assert_eq!(normalize_protocol("1").as_deref(), Some("icmp"));
        assert_eq!(normalize_protocol("58").as_deref(), Some("icmpv6"));
        assert_eq!(normalize_protocol("all").as_deref(), Some("-1"));
        assert_eq!(normalize_protocol("50").as_deref(), Some("50"));
        assert_eq!(normalize_protocol("256"), None);
        assert_eq!(normalize_protocol("gre"), None);
    }

    #[test]
    fn port_rules() {
        assert_eq!(port_range("tcp", Some(22), Some(22)).unwrap(), (22, 22));
        assert!(port_range("tcp", Some(22), None).is_err());
        assert!(port_range("udp", Some(100), Some(50)).is_err());
        assert!(port_range("tcp", Some(0), Some(65536)).is_err());
        assert_eq!(port_range("-1", Some(0), Some(0)).unwrap(), (-1, -1));
        assert_eq!(port_range("50", Some(1), Some(2)).unwrap(), (-1, -1));
        assert_eq!(port_range("icmp", Some(8), Some(-1)).unwrap(), (8, -1));
        assert!(port_range("icmp", Some(-1), Some(0)).is_err());
    }

    #[test]
    fn names_and_descriptions() {
        assert!(check_text("GroupName", "web tier (prod) #1", false).is_ok());
        assert!(check_text("GroupName", "", false).is_err());
        assert!(check_text("GroupName", "naïve", false).is_err());
        assert!(check_text("GroupName", "a<b", false).is_err());
        assert!(check_text("GroupName", &"x".repeat(256), false).is_err());
    }
}
