//! Subnet CIDR reservations: CreateSubnetCidrReservation, GetSubnetCidrReservations,
//! DeleteSubnetCidrReservation.
//!
//! A reservation sets a block of a subnet's IPv4 or IPv6 range aside. An `explicit` one keeps
//! automatic address picks out of it (the subnet records its IPv4 ranges, so a pick reads
//! one document); addresses in it are still handed out when asked for by name. A `prefix`
//! one is for prefix delegation, which kumori records but does not delegate from.
//! Reservations are children of their subnet: the subnet cannot be deleted while one is there.

use super::common::{
    Filter, Filterable, Tag, TagSpecification, dry_run, invalid_value, matches, put_tags,
    tags_by_resource, tags_from_specs,
};
use super::generic::{Ec2Resource, check_id};
use super::subnet::Subnet;
use crate::resource::{self, Resource, new_id};
use crate::{Ctx, Error, Result, input};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SubnetCidrReservation {
    pub subnet_cidr_reservation_id: String,
    pub subnet_id: String,
    pub cidr: String,
    pub reservation_type: String,
    pub owner_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl Resource for SubnetCidrReservation {
    const KIND: &'static str = "subnet-cidr-reservation";
    fn id(&self) -> &str {
        &self.subnet_cidr_reservation_id
    }
    fn parent(&self) -> Option<&str> {
        Some(&self.subnet_id)
    }
}

impl Filterable for SubnetCidrReservation {
    const FILTERS: &'static [&'static str] = &[
        "reservationType",
        "subnet-id",
        "owner-id",
        "subnet-cidr-reservation-id",
    ];
    fn field(&self, name: &str) -> Vec<String> {
        let v = match name {
            "reservationType" => &self.reservation_type,
            "subnet-id" => &self.subnet_id,
            "owner-id" => &self.owner_id,
            "subnet-cidr-reservation-id" => &self.subnet_cidr_reservation_id,
            _ => return vec![],
        };
        vec![v.clone()]
    }
}

impl Ec2Resource for SubnetCidrReservation {
    const ID_PREFIX: &'static str = "scr";
    const ID_ERROR: &'static str = "InvalidSubnetCidrReservationID";
    fn not_found(id: &str) -> Error {
        Error::new(
            "InvalidSubnetCidrReservationID.NotFound",
            format!("The subnet CIDR reservation ID '{id}' does not exist"),
        )
    }
}

/// The reservation's block as a range of numbers, and whether it is IPv6.
fn range(cidr: &str) -> Option<(u128, u128, bool)> {
    if let Ok(n) = cidr.parse::<ipnet::Ipv4Net>() {
        return Some((
            u128::from(u32::from(n.network())),
            u128::from(u32::from(n.broadcast())),
            false,
        ));
    }
    let n = cidr.parse::<ipnet::Ipv6Net>().ok()?;
    Some((u128::from(n.network()), u128::from(n.broadcast()), true))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateRequest {
    subnet_id: String,
    cidr: String,
    reservation_type: String,
    description: Option<String>,
    #[serde(default)]
    tag_specifications: Vec<TagSpecification>,
    dry_run: Option<bool>,
}

pub async fn create_subnet_cidr_reservation(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: CreateRequest = input(raw)?;
    check_id::<Subnet>(&req.subnet_id)?;
    let kind = req.reservation_type.to_ascii_lowercase();
    if kind != "prefix" && kind != "explicit" {
        return Err(invalid_value(format!(
            "Value ({}) for parameter reservationType is invalid. Valid values: prefix, explicit.",
            req.reservation_type
        )));
    }
    // Host bits cleared, as for every block EC2 takes.
    let cidr = match (
        kumori_net::cidr::parse_v4_canonical(&req.cidr),
        req.cidr.parse::<ipnet::Ipv6Net>(),
    ) {
        (Ok(n), _) => n.to_string(),
        (_, Ok(n)) => n.trunc().to_string(),
        _ => {
            return Err(invalid_value(format!(
                "Value ({}) for parameter cidr is invalid. This is not a valid CIDR block.",
                req.cidr
            )));
        }
    };
    let tags = tags_from_specs(&req.tag_specifications, SubnetCidrReservation::KIND)?;
    let mut tx = ctx.store.write().await?;
    let mut subnet: Subnet = resource::lock(ctx, &mut tx, &req.subnet_id)
        .await?
        .ok_or_else(|| super::subnet::not_found(&req.subnet_id))?;
    let (lo, hi, v6) = range(&cidr).ok_or_else(|| invalid_value("unreadable block"))?;
    let inside = if v6 {
        subnet
            .ipv6_nets()
            .iter()
            .any(|n| u128::from(n.network()) <= lo && hi <= u128::from(n.broadcast()))
    } else {
        let n = subnet.net();
        u128::from(u32::from(n.network())) <= lo && hi <= u128::from(u32::from(n.broadcast()))
    };
    if !inside {
        return Err(Error::new(
            "InvalidSubnet.Range",
            format!(
                "The CIDR '{cidr}' is not within the ranges of subnet {}.",
                subnet.subnet_id
            ),
        ));
    }
    let siblings: Vec<SubnetCidrReservation> =
        resource::children(ctx, &mut tx, &subnet.subnet_id).await?;
    if let Some(other) = siblings
        .iter()
        .find(|r| range(&r.cidr).is_some_and(|(l, h, six)| six == v6 && l <= hi && lo <= h))
    {
        return Err(Error::new(
            "InvalidSubnetCidrReservation.Conflict",
            format!(
                "The CIDR '{cidr}' overlaps reservation {} ({}).",
                other.subnet_cidr_reservation_id, other.cidr
            ),
        ));
    }
    dry_run(req.dry_run)?;
    let reservation = SubnetCidrReservation {
        subnet_cidr_reservation_id: new_id("scr"),
        subnet_id: subnet.subnet_id.clone(),
        cidr,
        reservation_type: kind.clone(),
        owner_id: ctx.account.to_string(),
        description: req.description,
    };
    if kind == "explicit" && !v6 {
        subnet.explicit_reservations.push([lo as u32, hi as u32]);
        resource::update(ctx, &mut tx, &subnet).await?;
    }
    resource::insert(ctx, &mut tx, &reservation).await?;
    put_tags(
        ctx,
        &mut tx,
        &reservation.subnet_cidr_reservation_id,
        SubnetCidrReservation::KIND,
        &tags,
    )
    .await?;
    tx.commit().await?;
    Ok(json!({ "SubnetCidrReservation": reservation.shown(&tags)? }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetRequest {
    subnet_id: String,
    #[serde(default)]
    filters: Vec<Filter>,
    dry_run: Option<bool>,
}

pub async fn get_subnet_cidr_reservations(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: GetRequest = input(raw)?;
    check_id::<Subnet>(&req.subnet_id)?;
    super::common::check_filters::<SubnetCidrReservation>(&req.filters)?;
    let mut tx = ctx.store.read().await?;
    let _: Subnet = resource::get(ctx, &mut tx, &req.subnet_id)
        .await?
        .ok_or_else(|| super::subnet::not_found(&req.subnet_id))?;
    let all: Vec<SubnetCidrReservation> = resource::children(ctx, &mut tx, &req.subnet_id).await?;
    let tags = tags_by_resource(ctx, &mut tx, SubnetCidrReservation::KIND).await?;
    drop(tx);
    dry_run(req.dry_run)?;
    let none: Vec<Tag> = Vec::new();
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    for r in &all {
        let t = tags.get(&r.subnet_cidr_reservation_id).unwrap_or(&none);
        if !matches(r, t, &req.filters) {
            continue;
        }
        let shown = r.shown(t)?;
        if r.cidr.contains(':') {
            v6.push(shown);
        } else {
            v4.push(shown);
        }
    }
    Ok(json!({
        "SubnetIpv4CidrReservations": v4,
        "SubnetIpv6CidrReservations": v6,
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteRequest {
    subnet_cidr_reservation_id: String,
    dry_run: Option<bool>,
}

pub async fn delete_subnet_cidr_reservation(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DeleteRequest = input(raw)?;
    let id = &req.subnet_cidr_reservation_id;
    check_id::<SubnetCidrReservation>(id)?;
    let mut tx = ctx.store.write().await?;
    let found: SubnetCidrReservation = resource::get(ctx, &mut tx, id)
        .await?
        .ok_or_else(|| SubnetCidrReservation::not_found(id))?;
    let mut subnet: Subnet = resource::lock(ctx, &mut tx, &found.subnet_id)
        .await?
        .ok_or_else(|| SubnetCidrReservation::not_found(id))?;
    dry_run(req.dry_run)?;
    if let Some((lo, hi, false)) = range(&found.cidr) {
        subnet
            .explicit_reservations
            .retain(|r| *r != [lo as u32, hi as u32]);
        resource::update(ctx, &mut tx, &subnet).await?;
    }
    tx.delete(ctx.scope(), id).await?;
    tx.commit().await?;
    Ok(json!({ "DeletedSubnetCidrReservation": found.shown(&[])? }))
}
