//! NAT gateways: CreateNatGateway, DescribeNatGateways, DeleteNatGateway.
//!
//! A NAT gateway is an AWS-managed network interface in its subnet (holding one of the
//! subnet's addresses) and, when public, an Elastic IP associated with that interface. The
//! gateway, its interface and the address association are made or undone in one transaction.
//!
//! States: CreateNatGateway answers `pending` and describes show `available`; DeleteNatGateway
//! answers `deleting` and describes show `deleted` for an hour, as AWS keeps a deleted gateway
//! visible for a while. A deleted gateway no longer holds its subnet.

use super::addresses::{Address, AddressAssociation};
use super::common::{
    Filter, Filterable, TagSpecification, dry_run, invalid_value, page_output, put_tags,
    tags_from_specs,
};
use super::generic::{DescribeArgs, Ec2Resource, check_id, describe};
use super::subnet::{self, Subnet};
use crate::resource::{self, Resource, new_id};
use crate::{Ctx, Error, Result, input};
use kumori_protocol::AwsError;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NatGateway {
    pub nat_gateway_id: String,
    pub subnet_id: String,
    pub vpc_id: String,
    pub state: String,
    pub connectivity_type: String,
    pub create_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete_time: Option<String>,
    pub nat_gateway_addresses: Vec<NatGatewayAddress>,
    /// The zone of its subnet, for the per-zone quota. Not an output member.
    pub availability_zone: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NatGatewayAddress {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allocation_id: Option<String>,
    pub network_interface_id: String,
    pub private_ip: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub association_id: Option<String>,
    pub is_primary: bool,
    pub status: String,
}

impl NatGateway {
    /// Whether the gateway can carry traffic (routes to it are active).
    pub fn is_live(&self) -> bool {
        matches!(self.state.as_str(), "pending" | "available")
    }
}

impl Resource for NatGateway {
    const KIND: &'static str = "natgateway";
    fn id(&self) -> &str {
        &self.nat_gateway_id
    }
    /// A gateway holds its subnet until it is deleted.
    fn parent(&self) -> Option<&str> {
        (self.state != "deleted").then_some(self.subnet_id.as_str())
    }
}

/// How long a deleted NAT gateway stays listed (AWS: "about an hour").
const DELETED_VISIBLE: time::Duration = time::Duration::hours(1);

impl Ec2Resource for NatGateway {
    const ID_PREFIX: &'static str = "nat";
    const ID_ERROR: &'static str = "InvalidNatGatewayID";
    fn not_found(id: &str) -> Error {
        Error::new(
            "NatGatewayNotFound",
            format!("The Nat Gateway {id} was not found"),
        )
    }
    fn gone(&self, now: time::OffsetDateTime) -> bool {
        self.state == "deleted"
            && self
                .delete_time
                .as_deref()
                .and_then(|t| {
                    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .is_some_and(|t| now >= t + DELETED_VISIBLE)
    }
}

impl Filterable for NatGateway {
    const FILTERS: &'static [&'static str] = &["nat-gateway-id", "state", "subnet-id", "vpc-id"];
    fn field(&self, name: &str) -> Vec<String> {
        match name {
            "nat-gateway-id" => vec![self.nat_gateway_id.clone()],
            "state" => vec![self.state.clone()],
            "subnet-id" => vec![self.subnet_id.clone()],
            "vpc-id" => vec![self.vpc_id.clone()],
            _ => vec![],
        }
    }
}

/// AWS's default quota: NAT gateways per availability zone.
const PER_ZONE: usize = 5;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateNatGatewayRequest {
    subnet_id: Option<String>,
    allocation_id: Option<String>,
    connectivity_type: Option<String>,
    private_ip_address: Option<String>,
    #[serde(default)]
    secondary_allocation_ids: Vec<String>,
    #[serde(default)]
    secondary_private_ip_addresses: Vec<String>,
    secondary_private_ip_address_count: Option<i64>,
    availability_mode: Option<String>,
    client_token: Option<String>,
    #[serde(default)]
    tag_specifications: Vec<TagSpecification>,
    dry_run: Option<bool>,
}

pub async fn create_nat_gateway(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: CreateNatGatewayRequest = input(raw)?;
    if !req.secondary_allocation_ids.is_empty()
        || !req.secondary_private_ip_addresses.is_empty()
        || req.secondary_private_ip_address_count.is_some()
        || req.private_ip_address.is_some()
        || req.availability_mode.as_deref() == Some("regional")
    {
        return Err(Error(AwsError::not_implemented(
            "ec2",
            "CreateNatGateway with chosen or secondary addresses, or regional availability",
        )));
    }
    let subnet_id = req.subnet_id.clone().ok_or_else(|| {
        Error::new(
            "MissingParameter",
            "The request must contain the parameter SubnetId",
        )
    })?;
    check_id::<Subnet>(&subnet_id)?;
    let public = req.connectivity_type.as_deref() != Some("private");
    match (public, &req.allocation_id) {
        (true, None) => {
            return Err(Error::new(
                "MissingParameter",
                "A public NAT gateway needs an Elastic IP: the request must contain the parameter AllocationId",
            ));
        }
        (false, Some(_)) => {
            return Err(Error::new(
                "InvalidParameterCombination",
                "A private NAT gateway cannot have an Elastic IP address (AllocationId).",
            ));
        }
        _ => {}
    }
    let tags = tags_from_specs(&req.tag_specifications, NatGateway::KIND)?;
    let mut tx = ctx.store.write().await?;
    let subnet: Subnet = resource::lock(ctx, &mut tx, &subnet_id)
        .await?
        .ok_or_else(|| subnet::not_found(&subnet_id))?;
    let mut address: Option<Address> = match &req.allocation_id {
        Some(id) => {
            check_id::<Address>(id)?;
            let a: Address = resource::lock(ctx, &mut tx, id)
                .await?
                .ok_or_else(|| Address::not_found(id))?;
            if a.association.is_some() {
                return Err(Error::new(
                    "Resource.AlreadyAssociated",
                    format!("Elastic IP address [{id}] is already associated"),
                ));
            }
            Some(a)
        }
        None => None,
    };
    let in_zone = resource::list::<NatGateway>(ctx, &mut tx)
        .await?
        .iter()
        .filter(|n| n.availability_zone == subnet.availability_zone && n.state != "deleted")
        .count();
    if in_zone >= PER_ZONE {
        return Err(Error::new(
            "NatGatewayLimitExceeded",
            format!(
                "The maximum number of NAT gateways ({PER_ZONE}) in {} has been reached.",
                subnet.availability_zone
            ),
        ));
    }
    dry_run(req.dry_run)?;

    let nat_gateway_id = new_id("nat");
    let eni = super::eni::create_managed(
        ctx,
        &mut tx,
        &subnet.subnet_id,
        "nat_gateway",
        format!("Interface for NAT Gateway {nat_gateway_id}"),
    )
    .await?;
    let mut nat_address = NatGatewayAddress {
        allocation_id: None,
        network_interface_id: eni.network_interface_id.clone(),
        private_ip: eni.private_ip_address.clone(),
        public_ip: None,
        association_id: None,
        is_primary: true,
        status: "succeeded".into(),
    };
    if let Some(a) = address.as_mut() {
        let association_id = new_id("eipassoc");
        a.association = Some(AddressAssociation {
            association_id: association_id.clone(),
            network_interface_id: eni.network_interface_id.clone(),
            network_interface_owner_id: ctx.account.to_string(),
            private_ip_address: eni.private_ip_address.clone(),
            instance_id: None,
        });
        resource::update(ctx, &mut tx, &*a).await?;
        nat_address.allocation_id = Some(a.allocation_id.clone());
        nat_address.public_ip = Some(a.public_ip.clone());
        nat_address.association_id = Some(association_id);
    }
    let nat = NatGateway {
        nat_gateway_id,
        subnet_id: subnet.subnet_id.clone(),
        vpc_id: subnet.vpc_id.clone(),
        state: "available".into(),
        connectivity_type: if public { "public" } else { "private" }.into(),
        create_time: kumori_protocol::time::now_iso(),
        delete_time: None,
        nat_gateway_addresses: vec![nat_address],
        availability_zone: subnet.availability_zone.clone(),
    };
    resource::insert(ctx, &mut tx, &nat).await?;
    put_tags(ctx, &mut tx, &nat.nat_gateway_id, NatGateway::KIND, &tags).await?;
    tx.commit().await?;
    let shown = NatGateway {
        state: "pending".into(),
        ..nat
    };
    let mut out = json!({ "NatGateway": shown.shown(&tags)? });
    if let Some(t) = req.client_token {
        out["ClientToken"] = json!(t);
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeNatGatewaysRequest {
    #[serde(default)]
    nat_gateway_ids: Vec<String>,
    /// EC2 calls this list `Filter`, not `Filters`, for NAT gateways.
    #[serde(default)]
    filter: Vec<Filter>,
    max_results: Option<i64>,
    next_token: Option<String>,
    dry_run: Option<bool>,
}

pub async fn describe_nat_gateways(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DescribeNatGatewaysRequest = input(raw)?;
    let args = DescribeArgs {
        ids: &req.nat_gateway_ids,
        filters: &req.filter,
        max_results: req.max_results,
        next_token: req.next_token.as_deref(),
        dry_run: req.dry_run,
    };
    let (gateways, next) = describe::<NatGateway>(ctx, args).await?;
    Ok(page_output("NatGateways", gateways, next))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteNatGatewayRequest {
    nat_gateway_id: String,
    dry_run: Option<bool>,
}

pub async fn delete_nat_gateway(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DeleteNatGatewayRequest = input(raw)?;
    check_id::<NatGateway>(&req.nat_gateway_id)?;
    let mut tx = ctx.store.write().await?;
    let mut nat: NatGateway = resource::lock(ctx, &mut tx, &req.nat_gateway_id)
        .await?
        .filter(|n: &NatGateway| !n.gone(time::OffsetDateTime::now_utc()))
        .ok_or_else(|| NatGateway::not_found(&req.nat_gateway_id))?;
    if nat.state == "deleted" {
        return Err(invalid_value(format!(
            "NAT gateway {} is already deleted.",
            nat.nat_gateway_id
        )));
    }
    dry_run(req.dry_run)?;
    for a in &mut nat.nat_gateway_addresses {
        // The Elastic IP stays allocated, no longer associated.
        if let Some(id) = &a.allocation_id
            && let Some(mut address) = resource::lock::<Address>(ctx, &mut tx, id).await?
        {
            address.association = None;
            resource::update(ctx, &mut tx, &address).await?;
        }
        a.association_id = None;
        super::eni::remove(ctx, &mut tx, &a.network_interface_id).await?;
    }
    nat.state = "deleted".into();
    nat.delete_time = Some(kumori_protocol::time::now_iso());
    resource::update(ctx, &mut tx, &nat).await?;
    super::routes::refresh_route_states(ctx, &mut tx, &nat.vpc_id).await?;
    tx.commit().await?;
    Ok(json!({ "NatGatewayId": nat.nat_gateway_id }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deleted_gateway_is_listed_for_an_hour() {
        let at = time::macros::datetime!(2026-11-23 10:00:00 UTC);
        let nat: NatGateway = serde_json::from_value(serde_json::json!({
            "NatGatewayId": "nat-0123456789abcdef0",
            "SubnetId": "subnet-1",
            "VpcId": "vpc-1",
            "State": "deleted",
            "ConnectivityType": "public",
            "CreateTime": "2026-11-23T09:00:00.000Z",
            "DeleteTime": "2026-11-23T10:00:00.000Z",
            "NatGatewayAddresses": [],
            "AvailabilityZone": "us-east-1a",
        }))
        .unwrap();
        assert!(!nat.gone(at + time::Duration::minutes(59)));
        assert!(nat.gone(at + time::Duration::hours(1)));
        let live = NatGateway {
            state: "available".into(),
            ..nat
        };
        assert!(!live.gone(at + time::Duration::days(1)));
    }
}
