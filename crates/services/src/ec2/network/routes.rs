//! Route tables: the main table every VPC is born with, explicit subnet associations, and
//! routes to gateways. CreateRouteTable, DescribeRouteTables, DeleteRouteTable,
//! AssociateRouteTable, DisassociateRouteTable, ReplaceRouteTableAssociation, CreateRoute,
//! ReplaceRoute, DeleteRoute.
//!
//! A route's `State` says whether its target can carry traffic now: a route to an internet
//! gateway that is detached from the VPC, or deleted, is a `blackhole`. States are refreshed
//! inside the transaction that changes a target ([`refresh_route_states`]).

use super::common::{
    Filterable, Tag, TagSpecification, dry_run, invalid_value, put_tags, tags_from_specs,
};
use super::eigw::EgressOnlyInternetGateway;
use super::eni::NetworkInterface;
use super::generic::describe_call;
use super::generic::{Ec2Resource, check_id};
use super::igw::InternetGateway;
use super::natgw::NatGateway;
use super::peering::VpcPeeringConnection;
use super::subnet::{self, Subnet};
use super::vpc::{self, Vpc};
use crate::resource::{self, Resource, new_id};
use crate::{Ctx, Error, Result, input, output};
use kumori_net::cidr;
use kumori_protocol::AwsError;
use kumori_store::Tx;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RouteTable {
    pub route_table_id: String,
    pub vpc_id: String,
    pub owner_id: String,
    pub routes: Vec<Route>,
    pub associations: Vec<Association>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Route {
    /// Empty for an IPv6 route, which has `destination_ipv6_cidr_block` instead.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub destination_cidr_block: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_ipv6_cidr_block: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_prefix_list_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nat_gateway_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_interface_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpc_peering_connection_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub egress_only_internet_gateway_id: Option<String>,
    pub origin: String,
    pub state: String,
}

impl Route {
    /// What the route is identified by in its table: its IPv4 or IPv6 block, or prefix list.
    pub fn destination(&self) -> &str {
        self.destination_ipv6_cidr_block
            .as_deref()
            .or(self.destination_prefix_list_id.as_deref())
            .unwrap_or(&self.destination_cidr_block)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Association {
    pub route_table_association_id: String,
    pub route_table_id: String,
    pub main: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnet_id: Option<String>,
    pub association_state: AssociationState,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AssociationState {
    pub state: String,
}

fn associated() -> AssociationState {
    AssociationState {
        state: "associated".into(),
    }
}

impl RouteTable {
    pub fn is_main(&self) -> bool {
        self.associations.iter().any(|a| a.main)
    }
}

impl Resource for RouteTable {
    const KIND: &'static str = "route-table";
    fn id(&self) -> &str {
        &self.route_table_id
    }
    fn parent(&self) -> Option<&str> {
        Some(&self.vpc_id)
    }
}

impl Filterable for RouteTable {
    const FILTERS: &'static [&'static str] = &[
        "association.gateway-id",
        "association.main",
        "association.route-table-association-id",
        "association.route-table-id",
        "association.subnet-id",
        "owner-id",
        "route-table-id",
        "route.destination-cidr-block",
        "route.destination-ipv6-cidr-block",
        "route.destination-prefix-list-id",
        "route.egress-only-internet-gateway-id",
        "route.gateway-id",
        "route.instance-id",
        "route.network-interface-id",
        "route.nat-gateway-id",
        "route.origin",
        "route.state",
        "route.vpc-peering-connection-id",
        "vpc-id",
    ];
    fn field(&self, name: &str) -> Vec<String> {
        let a = &self.associations;
        let r = &self.routes;
        match name {
            "association.main" => a.iter().map(|x| x.main.to_string()).collect(),
            "association.route-table-association-id" => a
                .iter()
                .map(|x| x.route_table_association_id.clone())
                .collect(),
            "association.route-table-id" => a.iter().map(|x| x.route_table_id.clone()).collect(),
            "association.subnet-id" => a.iter().filter_map(|x| x.subnet_id.clone()).collect(),
            "owner-id" => vec![self.owner_id.clone()],
            "route-table-id" => vec![self.route_table_id.clone()],
            "route.destination-cidr-block" => r
                .iter()
                .filter(|x| !x.destination_cidr_block.is_empty())
                .map(|x| x.destination_cidr_block.clone())
                .collect(),
            "route.destination-prefix-list-id" => r
                .iter()
                .filter_map(|x| x.destination_prefix_list_id.clone())
                .collect(),
            "route.destination-ipv6-cidr-block" => r
                .iter()
                .filter_map(|x| x.destination_ipv6_cidr_block.clone())
                .collect(),
            "route.egress-only-internet-gateway-id" => r
                .iter()
                .filter_map(|x| x.egress_only_internet_gateway_id.clone())
                .collect(),
            "route.gateway-id" => r.iter().filter_map(|x| x.gateway_id.clone()).collect(),
            "route.instance-id" => r.iter().filter_map(|x| x.instance_id.clone()).collect(),
            "route.network-interface-id" => r
                .iter()
                .filter_map(|x| x.network_interface_id.clone())
                .collect(),
            "route.nat-gateway-id" => r.iter().filter_map(|x| x.nat_gateway_id.clone()).collect(),
            "route.origin" => r.iter().map(|x| x.origin.clone()).collect(),
            "route.state" => r.iter().map(|x| x.state.clone()).collect(),
            "route.vpc-peering-connection-id" => r
                .iter()
                .filter_map(|x| x.vpc_peering_connection_id.clone())
                .collect(),
            "vpc-id" => vec![self.vpc_id.clone()],
            _ => vec![],
        }
    }
}

impl Ec2Resource for RouteTable {
    const ID_PREFIX: &'static str = "rtb";
    const ID_ERROR: &'static str = "InvalidRouteTableID";
    fn shown(&self, tags: &[Tag]) -> Result<Value> {
        let mut v = output(self)?;
        v["PropagatingVgws"] = json!([]);
        if !tags.is_empty() {
            v["Tags"] = output(&tags)?;
        }
        Ok(v)
    }
    fn not_found(id: &str) -> Error {
        Error::new(
            "InvalidRouteTableID.NotFound",
            format!("The routeTable ID '{id}' does not exist"),
        )
    }
}

/// A new route table for `vpc` with its `local` route; `main` makes it the VPC's main table.
pub fn new_table(ctx: &Ctx<'_>, vpc: &Vpc, main: bool) -> RouteTable {
    let route_table_id = new_id("rtb");
    let routes = vpc
        .ipv4_blocks()
        .iter()
        .map(|b| local_route(&b.to_string()))
        .chain(
            vpc.ipv6_blocks()
                .iter()
                .map(|b| local_route(&b.to_string())),
        )
        .collect();
    let associations = if main {
        vec![Association {
            route_table_association_id: new_id("rtbassoc"),
            route_table_id: route_table_id.clone(),
            main: true,
            subnet_id: None,
            association_state: associated(),
        }]
    } else {
        vec![]
    };
    RouteTable {
        route_table_id,
        vpc_id: vpc.vpc_id.clone(),
        owner_id: ctx.account.to_string(),
        routes,
        associations,
    }
}

/// Recomputes route states in `vpc_id`'s tables: a route to an internet gateway is active only
/// while that gateway exists and is attached to this VPC; one to a NAT gateway while the NAT
/// gateway is not deleted; one through a peering connection while the connection is active.
pub async fn refresh_route_states(ctx: &Ctx<'_>, tx: &mut Tx, vpc_id: &str) -> Result<()> {
    let igws: Vec<InternetGateway> = resource::list(ctx, tx).await?;
    let nats: Vec<NatGateway> = resource::list(ctx, tx).await?;
    let peerings: Vec<VpcPeeringConnection> = resource::list(ctx, tx).await?;
    let eigws: Vec<EgressOnlyInternetGateway> = resource::children(ctx, tx, vpc_id).await?;
    let enis: Vec<NetworkInterface> = resource::list(ctx, tx).await?;
    for mut table in resource::children::<RouteTable>(ctx, tx, vpc_id).await? {
        let mut changed = false;
        for r in table.routes.iter_mut() {
            let live = if let Some(gw) = r.gateway_id.as_deref().filter(|g| g.starts_with("igw-")) {
                igws.iter()
                    .any(|i| i.internet_gateway_id == gw && i.attached_vpc() == Some(vpc_id))
            } else if let Some(nat) = r.nat_gateway_id.as_deref() {
                nats.iter().any(|n| n.nat_gateway_id == nat && n.is_live())
            } else if let Some(pcx) = r.vpc_peering_connection_id.as_deref() {
                peerings
                    .iter()
                    .any(|p| p.vpc_peering_connection_id == pcx && p.is_active())
            } else if let Some(gw) = r.egress_only_internet_gateway_id.as_deref() {
                eigws
                    .iter()
                    .any(|g| g.egress_only_internet_gateway_id == gw)
            } else if let Some(eni) = r.network_interface_id.as_deref() {
                enis.iter().any(|e| e.network_interface_id == eni)
            } else {
                continue;
            };
            let state = if live { "active" } else { "blackhole" };
            if r.state != state {
                r.state = state.into();
                changed = true;
            }
        }
        if changed {
            resource::update(ctx, tx, &table).await?;
        }
    }
    Ok(())
}

/// Adds the `local` route for a VPC's new block to each of its tables.
pub async fn add_local_route(ctx: &Ctx<'_>, tx: &mut Tx, vpc_id: &str, block: &str) -> Result<()> {
    for mut table in resource::children::<RouteTable>(ctx, tx, vpc_id).await? {
        table.routes.push(local_route(block));
        resource::update(ctx, tx, &table).await?;
    }
    Ok(())
}

/// The `local` route of a VPC block, IPv4 or IPv6.
fn local_route(block: &str) -> Route {
    let v6 = block.contains(':');
    Route {
        destination_cidr_block: if v6 { String::new() } else { block.to_string() },
        destination_ipv6_cidr_block: v6.then(|| block.to_string()),
        gateway_id: Some("local".into()),
        origin: "CreateRouteTable".into(),
        state: "active".into(),
        ..Default::default()
    }
}

/// Removes the `local` route of a block the VPC gave up.
pub async fn remove_local_route(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    vpc_id: &str,
    block: &str,
) -> Result<()> {
    for mut table in resource::children::<RouteTable>(ctx, tx, vpc_id).await? {
        table
            .routes
            .retain(|r| !(r.destination() == block && r.gateway_id.as_deref() == Some("local")));
        resource::update(ctx, tx, &table).await?;
    }
    Ok(())
}

/// Drops the explicit association of a deleted subnet: AWS removes it with the subnet.
pub async fn forget_subnet(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    vpc_id: &str,
    subnet_id: &str,
) -> Result<()> {
    for mut table in resource::children::<RouteTable>(ctx, tx, vpc_id).await? {
        let before = table.associations.len();
        table
            .associations
            .retain(|a| a.subnet_id.as_deref() != Some(subnet_id));
        if table.associations.len() != before {
            resource::update(ctx, tx, &table).await?;
        }
    }
    Ok(())
}

async fn lock_table(ctx: &Ctx<'_>, tx: &mut Tx, id: &str) -> Result<RouteTable> {
    check_id::<RouteTable>(id)?;
    resource::lock(ctx, tx, id)
        .await?
        .ok_or_else(|| RouteTable::not_found(id))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateRouteTableRequest {
    vpc_id: String,
    #[serde(default)]
    tag_specifications: Vec<TagSpecification>,
    dry_run: Option<bool>,
}

pub async fn create_route_table(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: CreateRouteTableRequest = input(raw)?;
    let tags = tags_from_specs(&req.tag_specifications, RouteTable::KIND)?;
    let mut tx = ctx.store.write().await?;
    let vpc: Vpc = resource::lock(ctx, &mut tx, &req.vpc_id)
        .await?
        .ok_or_else(|| vpc::not_found(&req.vpc_id))?;
    dry_run(req.dry_run)?;
    let table = new_table(ctx, &vpc, false);
    resource::insert(ctx, &mut tx, &table).await?;
    put_tags(ctx, &mut tx, &table.route_table_id, RouteTable::KIND, &tags).await?;
    tx.commit().await?;
    Ok(json!({ "RouteTable": table.shown(&tags)? }))
}

pub async fn describe_route_tables(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    describe_call::<RouteTable>(ctx, raw, "RouteTableIds", "RouteTables").await
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteRouteTableRequest {
    route_table_id: String,
    dry_run: Option<bool>,
}

pub async fn delete_route_table(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DeleteRouteTableRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let table = lock_table(ctx, &mut tx, &req.route_table_id).await?;
    // The main table goes only with its VPC; a table with subnets must let them go first.
    if !table.associations.is_empty() {
        return Err(Error::new(
            "DependencyViolation",
            format!(
                "The routeTable '{}' has dependencies and cannot be deleted.",
                table.route_table_id
            ),
        ));
    }
    dry_run(req.dry_run)?;
    tx.delete(ctx.scope(), &table.route_table_id).await?;
    tx.commit().await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AssociateRouteTableRequest {
    route_table_id: String,
    subnet_id: Option<String>,
    gateway_id: Option<String>,
    dry_run: Option<bool>,
}

pub async fn associate_route_table(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: AssociateRouteTableRequest = input(raw)?;
    if req.gateway_id.is_some() {
        return Err(Error(AwsError::not_implemented(
            "ec2",
            "AssociateRouteTable with a gateway (edge association)",
        )));
    }
    let subnet_id = req.subnet_id.ok_or_else(|| {
        Error::new(
            "MissingParameter",
            "The request must contain the parameter subnetId",
        )
    })?;
    let mut tx = ctx.store.write().await?;
    let mut table = lock_table(ctx, &mut tx, &req.route_table_id).await?;
    let subnet: Subnet = resource::get(ctx, &mut tx, &subnet_id)
        .await?
        .ok_or_else(|| subnet::not_found(&subnet_id))?;
    if subnet.vpc_id != table.vpc_id {
        return Err(invalid_value(format!(
            "Route table {} and subnet {} belong to different networks",
            table.route_table_id, subnet.subnet_id
        )));
    }
    let tables: Vec<RouteTable> = resource::children(ctx, &mut tx, &table.vpc_id).await?;
    if let Some(other) = tables.iter().find(|t| {
        t.associations
            .iter()
            .any(|a| a.subnet_id.as_deref() == Some(&subnet_id))
    }) {
        return Err(Error::new(
            "Resource.AlreadyAssociated",
            format!(
                "the specified association for route table {} conflicts with an existing association",
                other.route_table_id
            ),
        ));
    }
    dry_run(req.dry_run)?;
    let association_id = new_id("rtbassoc");
    table.associations.push(Association {
        route_table_association_id: association_id.clone(),
        route_table_id: table.route_table_id.clone(),
        main: false,
        subnet_id: Some(subnet_id),
        association_state: associated(),
    });
    resource::update(ctx, &mut tx, &table).await?;
    tx.commit().await?;
    Ok(json!({ "AssociationId": association_id, "AssociationState": associated() }))
}

/// The table holding association `id`, among all tables of the region.
async fn table_of_association(ctx: &Ctx<'_>, tx: &mut Tx, id: &str) -> Result<RouteTable> {
    let tables: Vec<RouteTable> = resource::list(ctx, tx).await?;
    let table = tables
        .into_iter()
        .find(|t| {
            t.associations
                .iter()
                .any(|a| a.route_table_association_id == id)
        })
        .ok_or_else(|| {
            Error::new(
                "InvalidAssociationID.NotFound",
                format!("The association ID '{id}' does not exist"),
            )
        })?;
    // Lock the table before changing it.
    lock_table(ctx, tx, &table.route_table_id).await
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DisassociateRouteTableRequest {
    association_id: String,
    dry_run: Option<bool>,
}

pub async fn disassociate_route_table(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DisassociateRouteTableRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let mut table = table_of_association(ctx, &mut tx, &req.association_id).await?;
    if table
        .associations
        .iter()
        .any(|a| a.main && a.route_table_association_id == req.association_id)
    {
        return Err(invalid_value(format!(
            "cannot disassociate the main route table association {}",
            req.association_id
        )));
    }
    dry_run(req.dry_run)?;
    table
        .associations
        .retain(|a| a.route_table_association_id != req.association_id);
    resource::update(ctx, &mut tx, &table).await?;
    tx.commit().await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ReplaceRouteTableAssociationRequest {
    association_id: String,
    route_table_id: String,
    dry_run: Option<bool>,
}

/// Moves an association to another table; moving the main association makes that table main.
pub async fn replace_route_table_association(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ReplaceRouteTableAssociationRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let mut from = table_of_association(ctx, &mut tx, &req.association_id).await?;
    let mut to = lock_table(ctx, &mut tx, &req.route_table_id).await?;
    if to.vpc_id != from.vpc_id {
        return Err(invalid_value(format!(
            "Route table {} belongs to a different network than association {}",
            to.route_table_id, req.association_id
        )));
    }
    dry_run(req.dry_run)?;
    let pos = from
        .associations
        .iter()
        .position(|a| a.route_table_association_id == req.association_id)
        .expect("found above");
    let old = from.associations.remove(pos);
    let new_id = new_id("rtbassoc");
    let moved = Association {
        route_table_association_id: new_id.clone(),
        route_table_id: to.route_table_id.clone(),
        association_state: associated(),
        ..old
    };
    if from.route_table_id == to.route_table_id {
        to.associations = from.associations;
    } else {
        resource::update(ctx, &mut tx, &from).await?;
    }
    to.associations.push(moved);
    resource::update(ctx, &mut tx, &to).await?;
    tx.commit().await?;
    Ok(json!({ "NewAssociationId": new_id, "AssociationState": associated() }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RouteRequest {
    route_table_id: String,
    destination_cidr_block: Option<String>,
    destination_ipv6_cidr_block: Option<String>,
    destination_prefix_list_id: Option<String>,
    gateway_id: Option<String>,
    nat_gateway_id: Option<String>,
    network_interface_id: Option<String>,
    instance_id: Option<String>,
    vpc_peering_connection_id: Option<String>,
    egress_only_internet_gateway_id: Option<String>,
    transit_gateway_id: Option<String>,
    vpc_endpoint_id: Option<String>,
    dry_run: Option<bool>,
}

/// A route's destination, normalised: an IPv4 or an IPv6 block.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Destination {
    V4(String),
    V6(String),
    PrefixList(String),
}

impl Destination {
    fn text(&self) -> &str {
        match self {
            Destination::V4(s) | Destination::V6(s) | Destination::PrefixList(s) => s,
        }
    }

    fn route(&self) -> Route {
        let mut r = Route::default();
        match self {
            Destination::V4(s) => r.destination_cidr_block = s.clone(),
            Destination::V6(s) => r.destination_ipv6_cidr_block = Some(s.clone()),
            Destination::PrefixList(s) => r.destination_prefix_list_id = Some(s.clone()),
        }
        r
    }
}

impl RouteRequest {
    fn destination(&self) -> Result<Destination> {
        let given = [
            self.destination_cidr_block.is_some(),
            self.destination_ipv6_cidr_block.is_some(),
            self.destination_prefix_list_id.is_some(),
        ];
        if given.iter().filter(|g| **g).count() > 1 {
            return Err(Error::new(
                "InvalidParameterCombination",
                "Only one of destinationCidrBlock, destinationIpv6CidrBlock and destinationPrefixListId may be given.",
            ));
        }
        if let Some(id) = &self.destination_prefix_list_id {
            return Ok(Destination::PrefixList(id.clone()));
        }
        if let Some(v6) = &self.destination_ipv6_cidr_block {
            return match v6.parse::<ipnet::Ipv6Net>() {
                Ok(net) if net.trunc() == net => Ok(Destination::V6(net.to_string())),
                _ => Err(invalid_value(format!(
                    "Value ({v6}) for parameter destinationIpv6CidrBlock is invalid. This is not a valid IPv6 CIDR block."
                ))),
            };
        }
        let text = self.destination_cidr_block.clone().ok_or_else(|| {
            Error::new(
                "MissingParameter",
                "The request must contain the parameter destinationCidrBlock",
            )
        })?;
        // Host bits are cleared, as EC2 does for route destinations.
        let net = cidr::parse_v4_canonical(&text).map_err(|_| {
            invalid_value(format!("Value ({text}) for parameter destinationCidrBlock is invalid. This is not a valid CIDR block."))
        })?;
        Ok(Destination::V4(net.to_string()))
    }
}

/// Checks the request's one target and returns the route it makes; the target must exist, and
/// an internet gateway must be attached to the table's VPC.
async fn target(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    table: &RouteTable,
    req: &RouteRequest,
    dest: &Destination,
) -> Result<Route> {
    if req.transit_gateway_id.is_some() || req.vpc_endpoint_id.is_some() {
        return Err(Error(AwsError::not_implemented(
            "ec2",
            "routes to transit gateways or endpoints",
        )));
    }
    let targets = [
        &req.egress_only_internet_gateway_id,
        &req.gateway_id,
        &req.nat_gateway_id,
        &req.network_interface_id,
        &req.instance_id,
        &req.vpc_peering_connection_id,
    ];
    match targets.iter().filter(|t| t.is_some()).count() {
        0 => {
            return Err(Error::new(
                "MissingParameter",
                "The request must contain a route target (gatewayId, natGatewayId, ...).",
            ));
        }
        1 => {}
        _ => {
            return Err(Error::new(
                "InvalidParameterCombination",
                "More than one target specified for the route.",
            ));
        }
    }
    let mut route = Route {
        origin: "CreateRoute".into(),
        state: "active".into(),
        ..dest.route()
    };
    if let Destination::PrefixList(id) = dest {
        super::prefix_list::find(ctx, tx, id).await?;
    }
    if let Some(id) = &req.egress_only_internet_gateway_id {
        if matches!(dest, Destination::V4(_)) {
            return Err(Error::new(
                "InvalidParameterCombination",
                "An egress-only internet gateway can only be the target of an IPv6 route (destinationIpv6CidrBlock).",
            ));
        }
        let found: Option<EgressOnlyInternetGateway> = match id.starts_with("eigw-") {
            true => resource::get(ctx, tx, id).await?,
            false => None,
        };
        let gw = found.ok_or_else(|| EgressOnlyInternetGateway::not_found(id))?;
        if gw.vpc_id() != table.vpc_id {
            return Err(invalid_value(format!(
                "route table {} and egress-only internet gateway {id} belong to different networks",
                table.route_table_id
            )));
        }
        route.egress_only_internet_gateway_id = Some(id.clone());
        return Ok(route);
    }
    if let Some(gw) = &req.gateway_id {
        let igw: InternetGateway = match gw.starts_with("igw-") {
            true => resource::get(ctx, tx, gw).await?,
            false => None,
        }
        .ok_or_else(|| {
            Error::new(
                "InvalidGatewayID.NotFound",
                format!("The gateway ID '{gw}' does not exist"),
            )
        })?;
        if igw.attached_vpc() != Some(table.vpc_id.as_str()) {
            return Err(invalid_value(format!(
                "route table {} and network gateway {gw} belong to different networks",
                table.route_table_id
            )));
        }
        route.gateway_id = Some(gw.clone());
        return Ok(route);
    }
    if let Some(id) = &req.nat_gateway_id {
        let found: Option<NatGateway> = match id.starts_with("nat-") {
            true => resource::get(ctx, tx, id).await?,
            false => None,
        };
        let nat = found.filter(|n| n.state != "deleted").ok_or_else(|| {
            Error::new(
                "InvalidNatGatewayID.NotFound",
                format!("The natGateway ID '{id}' does not exist"),
            )
        })?;
        if nat.vpc_id != table.vpc_id {
            return Err(invalid_value(format!(
                "route table {} and NAT gateway {id} belong to different networks",
                table.route_table_id
            )));
        }
        route.nat_gateway_id = Some(id.clone());
        return Ok(route);
    }
    if let Some(id) = &req.vpc_peering_connection_id {
        let found: Option<VpcPeeringConnection> = match id.starts_with("pcx-") {
            true => resource::get(ctx, tx, id).await?,
            false => None,
        };
        let pcx = found.filter(|p| p.is_open()).ok_or_else(|| {
            Error::new(
                "InvalidVpcPeeringConnectionID.NotFound",
                format!("The vpcPeeringConnection ID '{id}' does not exist"),
            )
        })?;
        if !pcx.involves(&table.vpc_id) {
            return Err(invalid_value(format!(
                "route table {} and peering connection {id} belong to different networks",
                table.route_table_id
            )));
        }
        if !pcx.is_active() {
            route.state = "blackhole".into();
        }
        route.vpc_peering_connection_id = Some(id.clone());
        return Ok(route);
    }
    if let Some(id) = &req.network_interface_id {
        let found: Option<NetworkInterface> = match id.starts_with("eni-") {
            true => resource::get(ctx, tx, id).await?,
            false => None,
        };
        let eni = found.ok_or_else(|| NetworkInterface::not_found(id))?;
        if eni.vpc_id != table.vpc_id {
            return Err(invalid_value(format!(
                "route table {} and network interface {id} belong to different networks",
                table.route_table_id
            )));
        }
        route.network_interface_id = Some(id.clone());
        route.instance_id = eni.attachment.and_then(|a| a.instance_id);
        return Ok(route);
    }
    // An instance stands for its primary interface.
    let id = req.instance_id.as_ref().expect("one target");
    let found: Option<super::instances::Instance> = match id.starts_with("i-") {
        true => resource::get(ctx, tx, id).await?,
        false => None,
    };
    let instance = found.filter(|i| i.state != "terminated").ok_or_else(|| {
        Error::new(
            "InvalidInstanceID.NotFound",
            format!("The instance ID '{id}' does not exist"),
        )
    })?;
    if instance.vpc_id != table.vpc_id {
        return Err(invalid_value(format!(
            "route table {} and instance {id} belong to different networks",
            table.route_table_id
        )));
    }
    route.instance_id = Some(id.clone());
    route.network_interface_id = Some(instance.network_interface_id);
    Ok(route)
}

pub async fn create_route(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: RouteRequest = input(raw)?;
    let dest = req.destination()?;
    let mut tx = ctx.store.write().await?;
    let mut table = lock_table(ctx, &mut tx, &req.route_table_id).await?;
    if table.routes.iter().any(|r| r.destination() == dest.text()) {
        return Err(Error::new(
            "RouteAlreadyExists",
            format!("The route identified by {} already exists.", dest.text()),
        ));
    }
    let route = target(ctx, &mut tx, &table, &req, &dest).await?;
    dry_run(req.dry_run)?;
    table.routes.push(route);
    resource::update(ctx, &mut tx, &table).await?;
    tx.commit().await?;
    Ok(json!({ "Return": true }))
}

pub async fn replace_route(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: RouteRequest = input(raw)?;
    let dest = req.destination()?;
    let mut tx = ctx.store.write().await?;
    let mut table = lock_table(ctx, &mut tx, &req.route_table_id).await?;
    let dest_text = dest.text();
    let pos = table.routes.iter().position(|r| r.destination() == dest_text).ok_or_else(|| {
        invalid_value(format!("There is no route defined for '{dest_text}' in the route table. Use CreateRoute instead."))
    })?;
    if table.routes[pos].gateway_id.as_deref() == Some("local") {
        return Err(invalid_value(format!(
            "cannot replace local route {dest_text} in route table {}",
            table.route_table_id
        )));
    }
    let route = target(ctx, &mut tx, &table, &req, &dest).await?;
    dry_run(req.dry_run)?;
    table.routes[pos] = route;
    resource::update(ctx, &mut tx, &table).await?;
    tx.commit().await?;
    Ok(json!({}))
}

pub async fn delete_route(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: RouteRequest = input(raw)?;
    let dest = req.destination()?;
    let mut tx = ctx.store.write().await?;
    let mut table = lock_table(ctx, &mut tx, &req.route_table_id).await?;
    let dest = dest.text();
    let pos = table
        .routes
        .iter()
        .position(|r| r.destination() == dest)
        .ok_or_else(|| {
            Error::new(
                "InvalidRoute.NotFound",
                format!(
                    "no route with destination-cidr-block {dest} in route table {}",
                    table.route_table_id
                ),
            )
        })?;
    if table.routes[pos].gateway_id.as_deref() == Some("local") {
        return Err(invalid_value(format!(
            "cannot remove local route {dest} in route table {}",
            table.route_table_id
        )));
    }
    dry_run(req.dry_run)?;
    table.routes.remove(pos);
    resource::update(ctx, &mut tx, &table).await?;
    tx.commit().await?;
    Ok(json!({}))
}
