//! The default VPC every account has in every region, made on first use with AWS's layout:
//! 172.31.0.0/16, one /20 default subnet per zone in zone order (172.31.0.0/20,
//! 172.31.16.0/20, …) that maps public addresses on launch, an attached internet gateway, a
//! main route table sending 0.0.0.0/0 to it, and the default security group, network ACL and
//! DHCP options every VPC has. CreateDefaultVpc and CreateDefaultSubnet restore it after the
//! user deletes it.
//!
//! "First use" is recorded in the store (a marker record in the account and region), not in
//! process memory: a default VPC the user deleted stays deleted, across restarts and across
//! processes sharing one database.

use super::common::{dry_run, invalid_value};
use super::generic::Ec2Resource;
use super::igw::{Attachment, InternetGateway};
use super::regions::{Zone, zones};
use super::routes::Route;
use super::subnet::{self, Subnet};
use super::vpc::{self, Vpc};
use crate::resource::{self, new_id};
use crate::{Ctx, Error, Result, input};
use ipnet::Ipv4Net;
use kumori_protocol::AwsError;
use kumori_store::{Record, Tx};
use serde::Deserialize;
use serde_json::{Value, json};
use std::net::Ipv4Addr;

const MARKER_KIND: &str = "kumori-setup";
const MARKER_ID: &str = "kumori-setup-default-vpc";

fn block() -> Ipv4Net {
    Ipv4Net::new(Ipv4Addr::new(172, 31, 0, 0), 16).expect("a valid prefix")
}

/// The `i`th /20 of 172.31.0.0/16: where the default subnet of the `i`th zone goes.
fn slot(i: usize) -> Option<Ipv4Net> {
    block().subnets(20).ok()?.nth(i)
}

/// Makes the region's default VPC if this account has never had one here.
pub async fn ensure(ctx: &Ctx<'_>) -> Result<()> {
    let mut tx = ctx.store.read().await?;
    if tx.get(ctx.scope(), MARKER_ID).await?.is_some() {
        return Ok(());
    }
    drop(tx);
    let mut tx = ctx.store.write().await?;
    // Another request (or process) may have made it meanwhile.
    if tx.get(ctx.scope(), MARKER_ID).await?.is_some() {
        return Ok(());
    }
    let marker = Record {
        kind: MARKER_KIND.into(),
        id: MARKER_ID.into(),
        parent: None,
        body: "{}".into(),
    };
    tx.insert(ctx.scope(), &marker).await?;
    // A region kumori has no zones for gets no default VPC.
    if !zones(ctx.region).is_empty() {
        create(ctx, &mut tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The region's default VPC, if it has one.
pub async fn find(ctx: &Ctx<'_>, tx: &mut Tx) -> Result<Option<Vpc>> {
    Ok(resource::list::<Vpc>(ctx, tx)
        .await?
        .into_iter()
        .find(|v| v.is_default))
}

async fn create(ctx: &Ctx<'_>, tx: &mut Tx) -> Result<Vpc> {
    let vpc = vpc::new_vpc(ctx, block(), "default".into(), true);
    let (vpc, mut main) = vpc::insert_with_defaults(ctx, tx, vpc).await?;
    let igw = InternetGateway {
        internet_gateway_id: new_id("igw"),
        owner_id: ctx.account.to_string(),
        attachments: vec![Attachment {
            state: "available".into(),
            vpc_id: vpc.vpc_id.clone(),
        }],
    };
    resource::insert(ctx, tx, &igw).await?;
    main.routes.push(Route {
        destination_cidr_block: "0.0.0.0/0".into(),
        gateway_id: Some(igw.internet_gateway_id.clone()),
        origin: "CreateRoute".into(),
        state: "active".into(),
        ..Default::default()
    });
    resource::update(ctx, tx, &main).await?;
    for (i, zone) in zones(ctx.region).into_iter().enumerate() {
        if let Some(net) = slot(i) {
            subnet::insert(
                ctx,
                tx,
                &subnet::new_subnet(ctx, &vpc.vpc_id, net, zone, true),
            )
            .await?;
        }
    }
    Ok(vpc)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateDefaultVpcRequest {
    dry_run: Option<bool>,
}

pub async fn create_default_vpc(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: CreateDefaultVpcRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    if find(ctx, &mut tx).await?.is_some() {
        return Err(Error::new(
            "DefaultVpcAlreadyExists",
            "A Default VPC already exists for this account in this region.",
        ));
    }
    if zones(ctx.region).is_empty() {
        return Err(invalid_value(format!(
            "kumori knows no availability zones in region {}.",
            ctx.region
        )));
    }
    vpc::check_quota(ctx, &mut tx).await?;
    dry_run(req.dry_run)?;
    let vpc = create(ctx, &mut tx).await?;
    tx.commit().await?;
    Ok(json!({ "Vpc": vpc.shown(&[])? }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateDefaultSubnetRequest {
    availability_zone: Option<String>,
    availability_zone_id: Option<String>,
    ipv6_native: Option<bool>,
    dry_run: Option<bool>,
}

pub async fn create_default_subnet(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: CreateDefaultSubnetRequest = input(raw)?;
    if req.ipv6_native == Some(true) {
        return Err(Error(AwsError::not_implemented(
            "ec2",
            "CreateDefaultSubnet with Ipv6Native",
        )));
    }
    let all = zones(ctx.region);
    let (index, zone): (usize, Zone) = match (&req.availability_zone, &req.availability_zone_id) {
        (Some(name), None) => all.into_iter().enumerate().find(|(_, z)| &z.name == name),
        (None, Some(id)) => all.into_iter().enumerate().find(|(_, z)| &z.id == id),
        (Some(_), Some(_)) => {
            return Err(Error::new(
                "InvalidParameterCombination",
                "Only one of availabilityZone or availabilityZoneId can be specified.",
            ));
        }
        (None, None) => {
            return Err(Error::new(
                "MissingParameter",
                "The request must contain the parameter availabilityZone or availabilityZoneId",
            ));
        }
    }
    .ok_or_else(|| {
        invalid_value(format!(
            "Value ({}) for parameter availabilityZone is invalid. No such zone in {}.",
            req.availability_zone
                .as_deref()
                .or(req.availability_zone_id.as_deref())
                .unwrap_or_default(),
            ctx.region
        ))
    })?;
    let mut tx = ctx.store.write().await?;
    let vpc = find(ctx, &mut tx).await?.ok_or_else(|| {
        Error::new(
            "DefaultVpcDoesNotExist",
            "No default VPC exists for this account in this region. Create one with CreateDefaultVpc.",
        )
    })?;
    let vpc: Vpc = resource::lock(ctx, &mut tx, &vpc.vpc_id)
        .await?
        .unwrap_or(vpc);
    let siblings: Vec<Subnet> = resource::children(ctx, &mut tx, &vpc.vpc_id).await?;
    if siblings
        .iter()
        .any(|s| s.default_for_az && s.availability_zone == zone.name)
    {
        return Err(Error::new(
            "DefaultSubnetAlreadyExistsInAvailabilityZone",
            format!(
                "A default subnet already exists in availability zone {}.",
                zone.name
            ),
        ));
    }
    let taken: Vec<Ipv4Net> = siblings
        .iter()
        .filter_map(|s| s.cidr_block.parse().ok())
        .collect();
    let free = |n: &Ipv4Net| !taken.iter().any(|t| kumori_net::cidr::overlaps(t, n));
    // The zone's own slot if it is free, else the first free /20.
    let net = slot(index)
        .filter(free)
        .or_else(|| block().subnets(20).ok()?.find(free))
        .ok_or_else(|| {
            Error::new(
                "InsufficientFreeAddressesInSubnet",
                format!(
                    "No /20 of {} is free for a default subnet in {}.",
                    vpc.cidr_block, zone.name
                ),
            )
        })?;
    dry_run(req.dry_run)?;
    let subnet = subnet::new_subnet(ctx, &vpc.vpc_id, net, zone, true);
    subnet::insert(ctx, &mut tx, &subnet).await?;
    tx.commit().await?;
    Ok(json!({ "Subnet": subnet.shown(&[])? }))
}
