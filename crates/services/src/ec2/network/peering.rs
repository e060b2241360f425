//! VPC peering: CreateVpcPeeringConnection, AcceptVpcPeeringConnection,
//! RejectVpcPeeringConnection, DeleteVpcPeeringConnection, DescribeVpcPeeringConnections.
//!
//! States as AWS has them: a request answers `initiating-request` and is then
//! `pending-acceptance` (for 7 days); accepting makes it `active`; it can be `rejected` or
//! `deleted`. VPCs whose IPv4 blocks overlap cannot peer: the request is made but `failed`, as on
//! AWS. Routes through a connection are active only while it is.
//!
//! Not yet: peering across accounts or regions (both VPCs must be the caller's, in one region).

use super::common::{
    Filterable, TagSpecification, dry_run, invalid_value, put_tags, tags_from_specs,
};
use super::generic::{Ec2Resource, check_id, describe_call};
use super::vpc::{self, Vpc};
use crate::resource::{self, Resource, new_id};
use crate::{Ctx, Error, Result, input};
use kumori_net::cidr;
use kumori_protocol::AwsError;
use kumori_store::Tx;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VpcPeeringConnection {
    pub vpc_peering_connection_id: String,
    pub requester_vpc_info: VpcInfo,
    pub accepter_vpc_info: VpcInfo,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration_time: Option<String>,
    /// When it was deleted, rejected or failed (seconds since the epoch): it stays listed a
    /// while after. Not an output member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VpcInfo {
    pub vpc_id: String,
    pub owner_id: String,
    pub region: String,
    pub cidr_block: String,
    pub cidr_block_set: Vec<CidrBlock>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peering_options: Option<PeeringOptions>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CidrBlock {
    pub cidr_block: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PeeringOptions {
    pub allow_dns_resolution_from_remote_vpc: bool,
    pub allow_egress_from_local_classic_link_to_remote_vpc: bool,
    pub allow_egress_from_local_vpc_to_remote_classic_link: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Status {
    pub code: String,
    pub message: String,
}

fn status(code: &str, message: &str) -> Status {
    Status {
        code: code.into(),
        message: message.into(),
    }
}

impl VpcPeeringConnection {
    pub fn code(&self) -> &str {
        &self.status.code
    }
    pub fn is_active(&self) -> bool {
        self.code() == "active"
    }
    /// Still a connection (or the request for one) rather than a past one.
    pub fn is_open(&self) -> bool {
        matches!(
            self.code(),
            "pending-acceptance" | "active" | "provisioning"
        )
    }
    pub fn joins(&self, a: &str, b: &str) -> bool {
        let (r, x) = (
            &self.requester_vpc_info.vpc_id,
            &self.accepter_vpc_info.vpc_id,
        );
        (r == a && x == b) || (r == b && x == a)
    }
    pub fn involves(&self, vpc_id: &str) -> bool {
        self.requester_vpc_info.vpc_id == vpc_id || self.accepter_vpc_info.vpc_id == vpc_id
    }
}

impl Resource for VpcPeeringConnection {
    const KIND: &'static str = "vpc-peering-connection";
    fn id(&self) -> &str {
        &self.vpc_peering_connection_id
    }
}

/// How long an ended connection stays listed, by how it ended (AWS's VPC Peering guide:
/// deleted and failed ones for 2 hours, rejected ones for 2 days to the requester).
fn visible_for(code: &str) -> Option<u64> {
    match code {
        "deleted" | "failed" => Some(2 * 3600),
        "rejected" => Some(2 * 24 * 3600),
        _ => None,
    }
}

impl Ec2Resource for VpcPeeringConnection {
    const ID_PREFIX: &'static str = "pcx";
    const ID_ERROR: &'static str = "InvalidVpcPeeringConnectionID";
    fn gone(&self, now: time::OffsetDateTime) -> bool {
        match (visible_for(&self.status.code), self.ended_at) {
            (Some(d), Some(t)) => now.unix_timestamp() as u64 >= t + d,
            _ => false,
        }
    }
    fn not_found(id: &str) -> Error {
        Error::new(
            "InvalidVpcPeeringConnectionID.NotFound",
            format!("The vpcPeeringConnection ID '{id}' does not exist"),
        )
    }
}

impl Filterable for VpcPeeringConnection {
    const FILTERS: &'static [&'static str] = &[
        "accepter-vpc-info.cidr-block",
        "accepter-vpc-info.owner-id",
        "accepter-vpc-info.vpc-id",
        "expiration-time",
        "requester-vpc-info.cidr-block",
        "requester-vpc-info.owner-id",
        "requester-vpc-info.vpc-id",
        "status-code",
        "status-message",
        "vpc-peering-connection-id",
    ];
    fn field(&self, name: &str) -> Vec<String> {
        let (info, attr) = match name.split_once('.') {
            Some(("accepter-vpc-info", a)) => (&self.accepter_vpc_info, a),
            Some(("requester-vpc-info", a)) => (&self.requester_vpc_info, a),
            _ => {
                return match name {
                    "expiration-time" => self.expiration_time.clone().into_iter().collect(),
                    "status-code" => vec![self.status.code.clone()],
                    "status-message" => vec![self.status.message.clone()],
                    "vpc-peering-connection-id" => vec![self.vpc_peering_connection_id.clone()],
                    _ => vec![],
                };
            }
        };
        match attr {
            "cidr-block" => info
                .cidr_block_set
                .iter()
                .map(|c| c.cidr_block.clone())
                .collect(),
            "owner-id" => vec![info.owner_id.clone()],
            "vpc-id" => vec![info.vpc_id.clone()],
            _ => vec![],
        }
    }
}

fn info(ctx: &Ctx<'_>, v: &Vpc, with_options: bool) -> VpcInfo {
    VpcInfo {
        vpc_id: v.vpc_id.clone(),
        owner_id: v.owner_id.clone(),
        region: ctx.region.to_string(),
        cidr_block: v.cidr_block.clone(),
        cidr_block_set: v
            .ipv4_blocks()
            .iter()
            .map(|b| CidrBlock {
                cidr_block: b.to_string(),
            })
            .collect(),
        peering_options: with_options.then(PeeringOptions::default),
    }
}

/// Whether `a` and `b` are joined by an active peering connection.
pub async fn peered(ctx: &Ctx<'_>, tx: &mut Tx, a: &str, b: &str) -> Result<bool> {
    Ok(resource::list::<VpcPeeringConnection>(ctx, tx)
        .await?
        .iter()
        .any(|p| p.is_active() && p.joins(a, b)))
}

/// Ends every open connection of a VPC that is being deleted (inside the caller's
/// transaction); routes to them in the peer VPC become blackholes.
pub async fn close_for_vpc(ctx: &Ctx<'_>, tx: &mut Tx, vpc_id: &str) -> Result<()> {
    for mut p in resource::list::<VpcPeeringConnection>(ctx, tx).await? {
        if p.is_open() && p.involves(vpc_id) {
            p.status = status("deleted", &format!("Deleted with {vpc_id}"));
            p.expiration_time = None;
            p.ended_at = Some(kumori_protocol::time::now_unix());
            resource::update(ctx, tx, &p).await?;
            for side in [&p.requester_vpc_info.vpc_id, &p.accepter_vpc_info.vpc_id] {
                if side != vpc_id {
                    super::routes::refresh_route_states(ctx, tx, side).await?;
                }
            }
        }
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateRequest {
    vpc_id: String,
    peer_vpc_id: Option<String>,
    peer_owner_id: Option<String>,
    peer_region: Option<String>,
    #[serde(default)]
    tag_specifications: Vec<TagSpecification>,
    dry_run: Option<bool>,
}

pub async fn create_vpc_peering_connection(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: CreateRequest = input(raw)?;
    if req
        .peer_owner_id
        .as_deref()
        .is_some_and(|o| o != ctx.account)
        || req.peer_region.as_deref().is_some_and(|r| r != ctx.region)
    {
        return Err(Error(AwsError::not_implemented(
            "ec2",
            "CreateVpcPeeringConnection across accounts or regions",
        )));
    }
    let peer_id = req.peer_vpc_id.clone().ok_or_else(|| {
        Error::new(
            "MissingParameter",
            "The request must contain the parameter peerVpcId",
        )
    })?;
    check_id::<Vpc>(&req.vpc_id)?;
    check_id::<Vpc>(&peer_id)?;
    if peer_id == req.vpc_id {
        return Err(invalid_value(format!(
            "A VPC cannot be peered with itself ({peer_id})."
        )));
    }
    let tags = tags_from_specs(&req.tag_specifications, VpcPeeringConnection::KIND)?;
    let mut tx = ctx.store.write().await?;
    let requester: Vpc = resource::lock(ctx, &mut tx, &req.vpc_id)
        .await?
        .ok_or_else(|| vpc::not_found(&req.vpc_id))?;
    let accepter: Vpc = resource::lock(ctx, &mut tx, &peer_id)
        .await?
        .ok_or_else(|| vpc::not_found(&peer_id))?;
    let existing: Vec<VpcPeeringConnection> = resource::list(ctx, &mut tx).await?;
    if let Some(p) = existing
        .iter()
        .find(|p| p.is_open() && p.joins(&requester.vpc_id, &accepter.vpc_id))
    {
        return Err(Error::new(
            "VpcPeeringConnectionAlreadyExists",
            format!(
                "A peering connection between {} and {} already exists: {}.",
                requester.vpc_id, accepter.vpc_id, p.vpc_peering_connection_id
            ),
        ));
    }
    dry_run(req.dry_run)?;
    let overlap = requester
        .ipv4_blocks()
        .iter()
        .any(|a| accepter.ipv4_blocks().iter().any(|b| cidr::overlaps(a, b)));
    let (state, expiration) = if overlap {
        (status("failed", "Overlapping CIDR blocks"), None)
    } else {
        (
            status(
                "pending-acceptance",
                &format!("Pending Acceptance by {}", accepter.owner_id),
            ),
            Some(kumori_protocol::time::later_iso(7 * 24 * 3600)),
        )
    };
    let pcx = VpcPeeringConnection {
        vpc_peering_connection_id: new_id("pcx"),
        requester_vpc_info: info(ctx, &requester, false),
        accepter_vpc_info: info(ctx, &accepter, false),
        ended_at: (state.code == "failed").then(kumori_protocol::time::now_unix),
        status: state,
        expiration_time: expiration,
    };
    resource::insert(ctx, &mut tx, &pcx).await?;
    put_tags(
        ctx,
        &mut tx,
        &pcx.vpc_peering_connection_id,
        VpcPeeringConnection::KIND,
        &tags,
    )
    .await?;
    tx.commit().await?;
    let shown = VpcPeeringConnection {
        status: if overlap {
            pcx.status.clone()
        } else {
            status(
                "initiating-request",
                &format!("Initiating Request to {}", accepter.owner_id),
            )
        },
        ..pcx
    };
    Ok(json!({ "VpcPeeringConnection": shown.shown(&tags)? }))
}

pub async fn describe_vpc_peering_connections(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    describe_call::<VpcPeeringConnection>(
        ctx,
        raw,
        "VpcPeeringConnectionIds",
        "VpcPeeringConnections",
    )
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct IdRequest {
    vpc_peering_connection_id: String,
    dry_run: Option<bool>,
}

fn bad_transition(p: &VpcPeeringConnection, to: &str) -> Error {
    Error::new(
        "InvalidStateTransition",
        format!(
            "Invalid state transition for {}, attempted to transition from {} to {to}",
            p.vpc_peering_connection_id,
            p.code()
        ),
    )
}

async fn lock_pcx(ctx: &Ctx<'_>, tx: &mut Tx, id: &str) -> Result<VpcPeeringConnection> {
    check_id::<VpcPeeringConnection>(id)?;
    resource::lock(ctx, tx, id)
        .await?
        .filter(|p: &VpcPeeringConnection| !p.gone(time::OffsetDateTime::now_utc()))
        .ok_or_else(|| VpcPeeringConnection::not_found(id))
}

async fn refresh_both(ctx: &Ctx<'_>, tx: &mut Tx, p: &VpcPeeringConnection) -> Result<()> {
    super::routes::refresh_route_states(ctx, tx, &p.requester_vpc_info.vpc_id).await?;
    super::routes::refresh_route_states(ctx, tx, &p.accepter_vpc_info.vpc_id).await
}

pub async fn accept_vpc_peering_connection(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: IdRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let mut p = lock_pcx(ctx, &mut tx, &req.vpc_peering_connection_id).await?;
    if p.code() != "pending-acceptance" {
        return Err(bad_transition(&p, "active"));
    }
    dry_run(req.dry_run)?;
    p.status = status("active", "Active");
    p.expiration_time = None;
    p.requester_vpc_info.peering_options = Some(PeeringOptions::default());
    p.accepter_vpc_info.peering_options = Some(PeeringOptions::default());
    resource::update(ctx, &mut tx, &p).await?;
    refresh_both(ctx, &mut tx, &p).await?;
    let tags = super::common::tags_of(ctx, &mut tx, &p.vpc_peering_connection_id).await?;
    tx.commit().await?;
    Ok(json!({ "VpcPeeringConnection": p.shown(&tags)? }))
}

pub async fn reject_vpc_peering_connection(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: IdRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let mut p = lock_pcx(ctx, &mut tx, &req.vpc_peering_connection_id).await?;
    if p.code() != "pending-acceptance" {
        return Err(bad_transition(&p, "rejected"));
    }
    dry_run(req.dry_run)?;
    p.status = status(
        "rejected",
        &format!("Rejected by {}", p.accepter_vpc_info.owner_id),
    );
    p.expiration_time = None;
    p.ended_at = Some(kumori_protocol::time::now_unix());
    resource::update(ctx, &mut tx, &p).await?;
    tx.commit().await?;
    Ok(json!({ "Return": true }))
}

pub async fn delete_vpc_peering_connection(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: IdRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let mut p = lock_pcx(ctx, &mut tx, &req.vpc_peering_connection_id).await?;
    if !p.is_open() {
        return Err(bad_transition(&p, "deleted"));
    }
    dry_run(req.dry_run)?;
    p.status = status("deleted", &format!("Deleted by {}", ctx.account));
    p.expiration_time = None;
    p.ended_at = Some(kumori_protocol::time::now_unix());
    resource::update(ctx, &mut tx, &p).await?;
    refresh_both(ctx, &mut tx, &p).await?;
    tx.commit().await?;
    Ok(json!({ "Return": true }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ended_connections_stay_listed_as_long_as_aws_shows_them() {
        let at: u64 = 1_800_000_000;
        let p = |code: &str, ended_at: Option<u64>| VpcPeeringConnection {
            vpc_peering_connection_id: "pcx-1".into(),
            requester_vpc_info: serde_json::from_value(serde_json::json!({
                "VpcId": "vpc-1", "OwnerId": "0", "Region": "us-east-1", "CidrBlock": "10.0.0.0/16",
                "CidrBlockSet": [],
            }))
            .unwrap(),
            accepter_vpc_info: serde_json::from_value(serde_json::json!({
                "VpcId": "vpc-2", "OwnerId": "0", "Region": "us-east-1", "CidrBlock": "10.1.0.0/16",
                "CidrBlockSet": [],
            }))
            .unwrap(),
            status: status(code, ""),
            expiration_time: None,
            ended_at,
        };
        let when = |secs: u64| time::OffsetDateTime::from_unix_timestamp(secs as i64).unwrap();
        assert!(!p("deleted", Some(at)).gone(when(at + 2 * 3600 - 1)));
        assert!(p("deleted", Some(at)).gone(when(at + 2 * 3600)));
        assert!(!p("rejected", Some(at)).gone(when(at + 2 * 3600)));
        assert!(p("rejected", Some(at)).gone(when(at + 2 * 24 * 3600)));
        assert!(!p("active", Some(at)).gone(when(at + 30 * 24 * 3600)));
        // Ended before the time was kept: stays.
        assert!(!p("deleted", None).gone(when(at + 30 * 24 * 3600)));
    }
}
