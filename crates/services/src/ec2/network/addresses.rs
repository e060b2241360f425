//! Elastic IP addresses: AllocateAddress, DescribeAddresses, DescribeAddressesAttribute,
//! AssociateAddress (with a network interface), DisassociateAddress, ReleaseAddress.
//! (Associating them with instances comes with compute.)
//!
//! Public addresses come from a pool reserved for benchmarking (198.18.0.0/15, RFC 2544), so
//! kumori never names a real host. An address belongs to one allocation in the whole
//! deployment: each allocated address is also a record under a pool scope whose id is the
//! address itself, so the store's unique key refuses a second allocation, whichever process
//! or account tries.

use super::common::{
    Filter, Filterable, TagSpecification, dry_run, invalid_value, page_output, put_tags,
    tags_from_specs,
};
use super::eni::NetworkInterface;
use super::generic::{DescribeArgs, Ec2Resource, describe};
use crate::resource::{self, Resource, new_id};
use crate::{Ctx, Error, Result, input, output};
use kumori_protocol::AwsError;
use kumori_store::{Record, Scope, StoreError, Tx};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::net::Ipv4Addr;

/// The public pool: 198.18.0.0/15, reserved for benchmarking.
const POOL_START: u32 = u32::from_be_bytes([198, 18, 0, 0]);
const POOL_SIZE: u32 = 1 << 17;
/// The scope, beyond any account or region, that records which pool addresses are taken.
const POOL: Scope<'static> = Scope {
    account: "public-ipv4-pool",
    region: "global",
};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Address {
    pub allocation_id: String,
    pub public_ip: String,
    pub domain: String,
    pub public_ipv4_pool: String,
    pub network_border_group: String,
    /// Set while the address is associated with a network interface.
    #[serde(default, flatten, skip_serializing_if = "Option::is_none")]
    pub association: Option<AddressAssociation>,
}

/// Where an associated Elastic IP points: an interface (and the instance it is attached to).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AddressAssociation {
    pub association_id: String,
    pub network_interface_id: String,
    pub network_interface_owner_id: String,
    pub private_ip_address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
}

impl Resource for Address {
    const KIND: &'static str = "elastic-ip";
    fn id(&self) -> &str {
        &self.allocation_id
    }
}

impl Filterable for Address {
    const FILTERS: &'static [&'static str] = &[
        "allocation-id",
        "association-id",
        "domain",
        "instance-id",
        "network-border-group",
        "network-interface-id",
        "network-interface-owner-id",
        "private-ip-address",
        "public-ip",
    ];
    fn field(&self, name: &str) -> Vec<String> {
        match name {
            "allocation-id" => vec![self.allocation_id.clone()],
            "domain" => vec![self.domain.clone()],
            "network-border-group" => vec![self.network_border_group.clone()],
            "public-ip" => vec![self.public_ip.clone()],
            _ => {
                let Some(a) = &self.association else {
                    return vec![];
                };
                match name {
                    "association-id" => vec![a.association_id.clone()],
                    "instance-id" => a.instance_id.clone().into_iter().collect(),
                    "network-interface-id" => vec![a.network_interface_id.clone()],
                    "network-interface-owner-id" => vec![a.network_interface_owner_id.clone()],
                    "private-ip-address" => vec![a.private_ip_address.clone()],
                    _ => vec![],
                }
            }
        }
    }
}

impl Ec2Resource for Address {
    const ID_PREFIX: &'static str = "eipalloc";
    const ID_ERROR: &'static str = "InvalidAllocationID";
    fn not_found(id: &str) -> Error {
        Error::new(
            "InvalidAllocationID.NotFound",
            format!("The allocation ID '{id}' does not exist"),
        )
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AllocateAddressRequest {
    // `Domain` is not read: every address is a VPC one (see below).
    address: Option<String>,
    public_ipv4_pool: Option<String>,
    customer_owned_ipv4_pool: Option<String>,
    ipam_pool_id: Option<String>,
    network_border_group: Option<String>,
    #[serde(default)]
    tag_specifications: Vec<TagSpecification>,
    dry_run: Option<bool>,
}

pub async fn allocate_address(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: AllocateAddressRequest = input(raw)?;
    if req.address.is_some() || req.customer_owned_ipv4_pool.is_some() || req.ipam_pool_id.is_some()
    {
        return Err(Error(AwsError::not_implemented(
            "ec2",
            "AllocateAddress from your own address pools",
        )));
    }
    if let Some(pool) = req.public_ipv4_pool.as_deref().filter(|p| *p != "amazon") {
        return Err(invalid_value(format!(
            "The pool ID '{pool}' does not exist."
        )));
    }
    if let Some(g) = req
        .network_border_group
        .as_deref()
        .filter(|g| *g != ctx.region)
    {
        return Err(invalid_value(format!(
            "Invalid network border group '{g}' for region {}.",
            ctx.region
        )));
    }
    let tags = tags_from_specs(&req.tag_specifications, Address::KIND)?;
    let mut tx = ctx.store.write().await?;
    if tx.count(ctx.scope(), Address::KIND).await? >= ctx.limits.addresses_per_region {
        return Err(Error::new(
            "AddressLimitExceeded",
            "The maximum number of addresses has been reached.",
        ));
    }
    dry_run(req.dry_run)?;
    let public_ip = claim_public_ip(&mut tx).await?;
    let address = Address {
        allocation_id: new_id("eipalloc"),
        public_ip,
        // EC2-Classic is gone: EC2 makes every address a VPC one, whatever `Domain` says
        // (empty and unknown values included).
        domain: "vpc".into(),
        public_ipv4_pool: "amazon".into(),
        network_border_group: ctx.region.to_string(),
        association: None,
    };
    resource::insert(ctx, &mut tx, &address).await?;
    put_tags(ctx, &mut tx, &address.allocation_id, Address::KIND, &tags).await?;
    tx.commit().await?;
    output(&address)
}

/// Takes the pool's lowest free public address, for an Elastic IP or an instance's
/// auto-assigned address, inside the caller's write transaction.
pub async fn claim_public_ip(tx: &mut Tx) -> Result<String> {
    // As EC2 does, an address drawn at random: the one an instance gives up at stop does not
    // come straight back at its start, and a claim costs the same however many are taken.
    // Addresses ending in .0 or .255 are never handed out: they look like network and
    // broadcast addresses to people and to some tools.
    let usable = |ip: u32| !matches!(ip & 0xff, 0 | 255);
    for _ in 0..64 {
        let ip = POOL_START + rand::rng().random_range(0..POOL_SIZE);
        if usable(ip) && try_claim(tx, ip).await? {
            return Ok(Ipv4Addr::from(ip).to_string());
        }
    }
    // Nearly full: the free ones, in order.
    let taken: std::collections::HashSet<u32> = tx
        .list(POOL, "public-ip")
        .await?
        .iter()
        .filter_map(|r| r.id.parse::<Ipv4Addr>().ok())
        .map(u32::from)
        .collect();
    for ip in (POOL_START..POOL_START + POOL_SIZE).filter(|ip| usable(*ip) && !taken.contains(ip)) {
        if try_claim(tx, ip).await? {
            return Ok(Ipv4Addr::from(ip).to_string());
        }
    }
    Err(Error::new(
        "InsufficientAddressCapacity",
        "kumori's public address pool is exhausted.",
    ))
}

/// Records `ip` as taken, unless it already is.
async fn try_claim(tx: &mut Tx, ip: u32) -> Result<bool> {
    claim_in_pool(tx, "public-ip", &Ipv4Addr::from(ip).to_string()).await
}

/// Records `id` (an address or block of Amazon's) as taken in the pool of `kind`, unless it
/// already is: every account and region draws from the same pools, as from AWS's.
pub async fn claim_in_pool(tx: &mut Tx, kind: &str, id: &str) -> Result<bool> {
    let claim = Record {
        kind: kind.into(),
        id: id.into(),
        parent: None,
        body: "{}".into(),
    };
    match tx.insert(POOL, &claim).await {
        Ok(()) => Ok(true),
        Err(StoreError::Exists(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Gives an address or block back to its pool.
pub async fn release_in_pool(tx: &mut Tx, id: &str) -> Result<()> {
    tx.delete(POOL, id).await?;
    Ok(())
}

/// Gives a public address back to the pool.
pub async fn release_public_ip(tx: &mut Tx, ip: &str) -> Result<()> {
    tx.delete(POOL, ip).await?;
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeAddressesRequest {
    #[serde(default)]
    public_ips: Vec<String>,
    #[serde(default)]
    allocation_ids: Vec<String>,
    #[serde(default)]
    filters: Vec<Filter>,
    dry_run: Option<bool>,
}

pub async fn describe_addresses(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DescribeAddressesRequest = input(raw)?;
    let mut filters = req.filters.clone();
    if !req.public_ips.is_empty() {
        filters.push(Filter {
            name: "public-ip".into(),
            values: req.public_ips.clone(),
        });
    }
    let args = DescribeArgs {
        ids: &req.allocation_ids,
        filters: &filters,
        max_results: None,
        next_token: None,
        dry_run: req.dry_run,
    };
    let (addresses, _) = describe::<Address>(ctx, args).await?;
    for ip in &req.public_ips {
        if !addresses.iter().any(|a| a["PublicIp"] == ip.as_str()) {
            return Err(Error::new(
                "InvalidAddress.NotFound",
                format!("Address '{ip}' not found."),
            ));
        }
    }
    Ok(json!({ "Addresses": addresses }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeAddressesAttributeRequest {
    #[serde(default)]
    allocation_ids: Vec<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
    dry_run: Option<bool>,
}

/// The `domain-name` attribute (the only one EC2 has): reverse DNS records. kumori keeps no
/// reverse DNS, so each address is shown without a `PtrRecord`, as AWS shows one never set.
pub async fn describe_addresses_attribute(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DescribeAddressesAttributeRequest = input(raw)?;
    let args = DescribeArgs {
        ids: &req.allocation_ids,
        filters: &[],
        max_results: req.max_results,
        next_token: req.next_token.as_deref(),
        dry_run: req.dry_run,
    };
    let (addresses, next) = describe::<Address>(ctx, args).await?;
    let shown: Vec<Value> = addresses
        .iter()
        .map(|a| json!({ "AllocationId": a["AllocationId"], "PublicIp": a["PublicIp"] }))
        .collect();
    Ok(page_output("Addresses", shown, next))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DisassociateAddressRequest {
    association_id: Option<String>,
    public_ip: Option<String>,
    dry_run: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AssociateAddressRequest {
    allocation_id: Option<String>,
    public_ip: Option<String>,
    instance_id: Option<String>,
    network_interface_id: Option<String>,
    private_ip_address: Option<String>,
    allow_reassociation: Option<bool>,
    dry_run: Option<bool>,
}

/// Points an Elastic IP at a private address of a network interface. The interface's VPC must
/// have an internet gateway. Without `AllowReassociation`, neither an address that is already
/// associated nor a private address that already has one may be given.
pub async fn associate_address(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: AssociateAddressRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    // An instance's address goes to its primary interface; the public address it launched
    // with goes back to the pool.
    let instance: Option<super::instances::Instance> = match &req.instance_id {
        Some(id) => Some(
            resource::lock(ctx, &mut tx, id)
                .await?
                .filter(|i: &super::instances::Instance| i.state != "terminated")
                .ok_or_else(|| {
                    Error::new(
                        "InvalidInstanceID.NotFound",
                        format!("The instance ID '{id}' does not exist"),
                    )
                })?,
        ),
        None => None,
    };
    let eni_id = match (&instance, &req.network_interface_id) {
        (Some(i), _) => &i.network_interface_id,
        (None, Some(id)) => id,
        (None, None) => {
            return Err(Error::new(
                "MissingParameter",
                "Either an instance ID or a network interface ID must be specified.",
            ));
        }
    };
    let mine: Vec<Address> = resource::list(ctx, &mut tx).await?;
    let mut address = match (&req.allocation_id, &req.public_ip) {
        (Some(id), _) => mine
            .iter()
            .find(|a| &a.allocation_id == id)
            .cloned()
            .ok_or_else(|| Address::not_found(id))?,
        (None, Some(ip)) => mine
            .iter()
            .find(|a| &a.public_ip == ip)
            .cloned()
            .ok_or_else(|| {
                Error::new(
                    "InvalidAddress.NotFound",
                    format!("Address '{ip}' not found."),
                )
            })?,
        (None, None) => {
            return Err(Error::new(
                "MissingParameter",
                "The request must contain the parameter AllocationId",
            ));
        }
    };
    let eni: NetworkInterface = resource::lock(ctx, &mut tx, eni_id)
        .await?
        .ok_or_else(|| NetworkInterface::not_found(eni_id))?;
    let private_ip = req
        .private_ip_address
        .clone()
        .unwrap_or_else(|| eni.private_ip_address.clone());
    if !eni
        .private_ip_addresses
        .iter()
        .any(|p| p.private_ip_address == private_ip)
    {
        return Err(invalid_value(format!(
            "The private IP address {private_ip} is not assigned to network interface {eni_id}."
        )));
    }
    let igws: Vec<super::igw::InternetGateway> = resource::list(ctx, &mut tx).await?;
    if !igws
        .iter()
        .any(|g| g.attached_vpc() == Some(eni.vpc_id.as_str()))
    {
        return Err(Error::new(
            "Gateway.NotAttached",
            format!(
                "Network {} is not attached to any internet gateway",
                eni.vpc_id
            ),
        ));
    }
    let reassociate = req.allow_reassociation == Some(true);
    let holder = mine.iter().find(|a| {
        a.allocation_id != address.allocation_id
            && a.association.as_ref().is_some_and(|x| {
                x.network_interface_id == eni.network_interface_id
                    && x.private_ip_address == private_ip
            })
    });
    if let Some(current) = &address.association
        && !reassociate
    {
        return Err(Error::new(
            "Resource.AlreadyAssociated",
            format!(
                "resource {} is already associated with associate-id {}",
                address.allocation_id, current.association_id
            ),
        ));
    }
    if let Some(h) = holder {
        if !reassociate {
            return Err(Error::new(
                "Resource.AlreadyAssociated",
                format!(
                    "The private address {private_ip} of {eni_id} already has Elastic IP {}.",
                    h.public_ip
                ),
            ));
        }
        if eni.requester_managed {
            return Err(Error::new(
                "OperationNotPermitted",
                format!("The address of the AWS-managed interface {eni_id} cannot be replaced."),
            ));
        }
    }
    // An address held by an AWS-managed interface (a NAT gateway's) stays with it.
    if let Some(current) = &address.association {
        let held: Option<NetworkInterface> =
            resource::get(ctx, &mut tx, &current.network_interface_id).await?;
        if held.is_some_and(|e| e.requester_managed) {
            return Err(Error::new(
                "OperationNotPermitted",
                format!(
                    "Address {} is held by an AWS-managed interface; delete that resource instead.",
                    address.public_ip
                ),
            ));
        }
    }
    dry_run(req.dry_run)?;
    if let Some(h) = holder {
        let mut h = h.clone();
        h.association = None;
        resource::update(ctx, &mut tx, &h).await?;
    }
    let association_id = new_id("eipassoc");
    address.association = Some(AddressAssociation {
        association_id: association_id.clone(),
        network_interface_id: eni.network_interface_id.clone(),
        network_interface_owner_id: eni.owner_id.clone(),
        private_ip_address: private_ip,
        instance_id: eni.attachment.as_ref().and_then(|a| a.instance_id.clone()),
    });
    resource::update(ctx, &mut tx, &address).await?;
    if let Some(mut i) = instance
        && let Some(ip) = i.public_ip_address.take()
    {
        release_public_ip(&mut tx, &ip).await?;
        let mut nic = eni.clone();
        nic.auto_public_ip = None;
        resource::update(ctx, &mut tx, &nic).await?;
        resource::update(ctx, &mut tx, &i).await?;
    }
    tx.commit().await?;
    Ok(json!({ "AssociationId": association_id }))
}

pub async fn disassociate_address(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DisassociateAddressRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let mine: Vec<Address> = resource::list(ctx, &mut tx).await?;
    let mut address = match (&req.association_id, &req.public_ip) {
        (Some(id), _) => mine
            .into_iter()
            .find(|a| {
                a.association
                    .as_ref()
                    .is_some_and(|x| &x.association_id == id)
            })
            .ok_or_else(|| {
                Error::new(
                    "InvalidAssociationID.NotFound",
                    format!("The association ID '{id}' does not exist"),
                )
            })?,
        (None, Some(ip)) => mine
            .into_iter()
            .find(|a| &a.public_ip == ip && a.association.is_some())
            .ok_or_else(|| {
                Error::new(
                    "InvalidAddress.NotFound",
                    format!("Address '{ip}' not found or not associated."),
                )
            })?,
        (None, None) => {
            return Err(Error::new(
                "MissingParameter",
                "Either AssociationId or PublicIp must be specified.",
            ));
        }
    };
    let eni_id = address
        .association
        .as_ref()
        .map(|a| a.network_interface_id.clone())
        .unwrap_or_default();
    let eni: Option<NetworkInterface> = resource::get(ctx, &mut tx, &eni_id).await?;
    if let Some(e) = eni.filter(|e| e.requester_managed) {
        return Err(Error::new(
            "OperationNotPermitted",
            format!(
                "Address {} is held by an AWS-managed interface ({}: {}); delete that resource instead.",
                address.public_ip, e.network_interface_id, e.description
            ),
        ));
    }
    dry_run(req.dry_run)?;
    address.association = None;
    resource::update(ctx, &mut tx, &address).await?;
    tx.commit().await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ReleaseAddressRequest {
    allocation_id: Option<String>,
    public_ip: Option<String>,
    dry_run: Option<bool>,
}

pub async fn release_address(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ReleaseAddressRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let mine: Vec<Address> = resource::list(ctx, &mut tx).await?;
    let address = match (&req.allocation_id, &req.public_ip) {
        (Some(id), _) => mine
            .into_iter()
            .find(|a| &a.allocation_id == id)
            .ok_or_else(|| Address::not_found(id))?,
        (None, Some(ip)) => mine
            .into_iter()
            .find(|a| &a.public_ip == ip)
            .ok_or_else(|| {
                Error::new(
                    "InvalidAddress.NotFound",
                    format!("Address '{ip}' not found."),
                )
            })?,
        (None, None) => {
            return Err(Error::new(
                "MissingParameter",
                "Either AllocationId or PublicIp must be specified.",
            ));
        }
    };
    if address.association.is_some() {
        return Err(Error::new(
            "InvalidIPAddress.InUse",
            format!(
                "Address {} ({}) is in use: disassociate it first.",
                address.public_ip, address.allocation_id
            ),
        ));
    }
    dry_run(req.dry_run)?;
    tx.delete(ctx.scope(), &address.allocation_id).await?;
    release_public_ip(&mut tx, &address.public_ip).await?;
    tx.commit().await?;
    Ok(json!({}))
}
