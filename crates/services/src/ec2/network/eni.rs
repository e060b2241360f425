//! Network interfaces: CreateNetworkInterface, DescribeNetworkInterfaces,
//! DeleteNetworkInterface, Describe/ModifyNetworkInterfaceAttribute.
//!
//! Interfaces are what hold addresses in a subnet and security groups on a resource: a user's
//! own, and those AWS makes for a service (a NAT gateway's, `requester_managed`). Addresses
//! are taken inside the write transaction with the subnet locked, so racing creates never get
//! one address twice. An Elastic IP's association is kept on the address only; describes
//! show it on the interface too.

use super::addresses::Address;
use super::common::{
    BoolValue, Filterable, Tag, TagSpecification, dry_run, invalid_value, put_tags, tags_from_specs,
};
use super::generic::{DescribeArgs, Ec2Resource, check_id, describe};
use super::sg::SecurityGroup;
use super::subnet::Subnet;
use crate::resource::{self, Resource, new_id};
use crate::{Ctx, Error, Result, input, output};
use kumori_net::held::Held;
use kumori_protocol::AwsError;
use kumori_store::Tx;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::net::Ipv4Addr;

/// Security groups one interface may hold (`SecurityGroupsPerInterfaceLimitExceeded`).
pub const GROUPS_PER_INTERFACE: usize = 5;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkInterface {
    pub network_interface_id: String,
    pub subnet_id: String,
    pub vpc_id: String,
    pub availability_zone: String,
    pub owner_id: String,
    pub description: String,
    pub interface_type: String,
    pub status: String,
    pub mac_address: String,
    pub private_ip_address: String,
    pub private_dns_name: String,
    pub private_ip_addresses: Vec<PrivateIp>,
    #[serde(default)]
    pub ipv6_addresses: Vec<Ipv6Entry>,
    pub source_dest_check: bool,
    pub requester_managed: bool,
    pub groups: Vec<GroupIdentifier>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attachment: Option<EniAttachment>,
    /// The public address an instance got at launch (not an Elastic IP); not a member of the
    /// interface shape, so describes show it as the `Association`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_public_ip: Option<String>,
    /// The attachment an interface last had, kept after a detach so that describes show it
    /// as `detached` (what tools waiting on a detach look for) until the next attach.
    #[serde(
        default,
        rename = "KumoriLastAttachment",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_attachment: Option<EniAttachment>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PrivateIp {
    pub private_ip_address: String,
    pub private_dns_name: String,
    pub primary: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Ipv6Entry {
    pub ipv6_address: String,
    pub is_primary_ipv6: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GroupIdentifier {
    pub group_id: String,
    pub group_name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EniAttachment {
    pub attachment_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    pub device_index: i64,
    pub status: String,
    pub delete_on_termination: bool,
}

impl Resource for NetworkInterface {
    const KIND: &'static str = "network-interface";
    fn id(&self) -> &str {
        &self.network_interface_id
    }
    /// An interface lives in its subnet: the subnet cannot go while it is there.
    fn parent(&self) -> Option<&str> {
        Some(&self.subnet_id)
    }
}

impl Ec2Resource for NetworkInterface {
    const ID_PREFIX: &'static str = "eni";
    const ID_ERROR: &'static str = "InvalidNetworkInterfaceID";
    /// The interface shape calls its tags `TagSet`.
    fn shown(&self, tags: &[Tag]) -> Result<Value> {
        let mut v = output(self)?;
        if let Some(o) = v.as_object_mut() {
            o.remove("KumoriLastAttachment");
        }
        if let (None, Some(last)) = (&self.attachment, &self.last_attachment) {
            v["Attachment"] = output(last)?;
        }
        if !tags.is_empty() {
            v["TagSet"] = output(&tags)?;
        }
        Ok(v)
    }
    fn not_found(id: &str) -> Error {
        Error::new(
            "InvalidNetworkInterfaceID.NotFound",
            format!("The networkInterface ID '{id}' does not exist"),
        )
    }
}

impl Filterable for NetworkInterface {
    const FILTERS: &'static [&'static str] = &[
        "addresses.private-ip-address",
        "addresses.primary",
        "attachment.attachment-id",
        "attachment.device-index",
        "attachment.instance-id",
        "attachment.status",
        "availability-zone",
        "description",
        "group-id",
        "group-name",
        "interface-type",
        "mac-address",
        "network-interface-id",
        "owner-id",
        "private-dns-name",
        "private-ip-address",
        "requester-managed",
        "source-dest-check",
        "status",
        "subnet-id",
        "vpc-id",
    ];
    fn field(&self, name: &str) -> Vec<String> {
        let a = self.attachment.as_ref();
        let ips = self.private_ip_addresses.iter();
        match name {
            "addresses.private-ip-address" => ips.map(|p| p.private_ip_address.clone()).collect(),
            "addresses.primary" => ips.map(|p| p.primary.to_string()).collect(),
            // A detached interface still answers to its last attachment, as `detached`.
            "attachment.attachment-id" => a
                .or(self.last_attachment.as_ref())
                .map(|x| x.attachment_id.clone())
                .into_iter()
                .collect(),
            "attachment.device-index" => {
                a.map(|x| x.device_index.to_string()).into_iter().collect()
            }
            "attachment.instance-id" => a.and_then(|x| x.instance_id.clone()).into_iter().collect(),
            "attachment.status" => a
                .or(self.last_attachment.as_ref())
                .map(|x| x.status.clone())
                .into_iter()
                .collect(),
            "availability-zone" => vec![self.availability_zone.clone()],
            "description" => vec![self.description.clone()],
            "group-id" => self.groups.iter().map(|g| g.group_id.clone()).collect(),
            "group-name" => self.groups.iter().map(|g| g.group_name.clone()).collect(),
            "interface-type" => vec![self.interface_type.clone()],
            "mac-address" => vec![self.mac_address.clone()],
            "network-interface-id" => vec![self.network_interface_id.clone()],
            "owner-id" => vec![self.owner_id.clone()],
            "private-dns-name" => vec![self.private_dns_name.clone()],
            "private-ip-address" => vec![self.private_ip_address.clone()],
            "requester-managed" => vec![self.requester_managed.to_string()],
            "source-dest-check" => vec![self.source_dest_check.to_string()],
            "status" => vec![self.status.clone()],
            "subnet-id" => vec![self.subnet_id.clone()],
            "vpc-id" => vec![self.vpc_id.clone()],
            _ => vec![],
        }
    }
}

/// The private DNS name EC2 gives an address: `ip-10-0-1-4.ec2.internal` in us-east-1,
/// `ip-10-0-1-4.eu-west-1.compute.internal` elsewhere.
pub fn private_dns_name(region: &str, ip: Ipv4Addr) -> String {
    let host = format!("ip-{}", ip.to_string().replace('.', "-"));
    if region == "us-east-1" {
        format!("{host}.ec2.internal")
    } else {
        format!("{host}.{region}.compute.internal")
    }
}

/// A locally administered unicast MAC, as EC2 gives interfaces (`02:…`).
fn new_mac() -> String {
    let b: [u8; 5] = rand::random();
    format!(
        "02:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        b[0], b[1], b[2], b[3], b[4]
    )
}

/// Creates an interface that AWS manages for a service (a NAT gateway's, say) in `subnet_id`,
/// on the subnet's lowest free address, and counts the address as in use. Inside the caller's
/// write transaction; the subnet is locked, so racing creates cannot take one address twice.
pub async fn create_managed(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    subnet_id: &str,
    interface_type: &str,
    description: String,
) -> Result<NetworkInterface> {
    let mut subnet: Subnet = resource::lock(ctx, tx, subnet_id)
        .await?
        .ok_or_else(|| super::subnet::not_found(subnet_id))?;
    let ips = take_addresses(ctx, tx, &mut subnet, None, 0).await?;
    let mut eni = new_interface(ctx, &subnet, &ips, description);
    eni.interface_type = interface_type.to_string();
    eni.status = "in-use".into();
    eni.source_dest_check = false;
    eni.requester_managed = true;
    resource::insert(ctx, tx, &eni).await?;
    Ok(eni)
}

/// An interface in `subnet` on `ips` (the first is the primary address).
fn new_interface(
    ctx: &Ctx<'_>,
    subnet: &Subnet,
    ips: &[Ipv4Addr],
    description: String,
) -> NetworkInterface {
    let private_ip_addresses: Vec<PrivateIp> = ips
        .iter()
        .enumerate()
        .map(|(i, ip)| PrivateIp {
            private_ip_address: ip.to_string(),
            private_dns_name: private_dns_name(ctx.region, *ip),
            primary: i == 0,
        })
        .collect();
    NetworkInterface {
        network_interface_id: new_id("eni"),
        subnet_id: subnet.subnet_id.clone(),
        vpc_id: subnet.vpc_id.clone(),
        availability_zone: subnet.availability_zone.clone(),
        owner_id: ctx.account.to_string(),
        description,
        interface_type: "interface".into(),
        status: "available".into(),
        mac_address: new_mac(),
        private_ip_address: private_ip_addresses[0].private_ip_address.clone(),
        private_dns_name: private_ip_addresses[0].private_dns_name.clone(),
        private_ip_addresses,
        source_dest_check: true,
        requester_managed: false,
        groups: vec![],
        attachment: None,
        auto_public_ip: None,
        last_attachment: None,
        ipv6_addresses: if subnet.assign_ipv6_address_on_creation {
            random_ipv6(subnet, 1)
        } else {
            Vec::new()
        },
    }
}

/// `n` addresses of the subnet's IPv6 /64, drawn at random as EC2 draws them: 2^64 of them
/// make a clash less likely than a cosmic ray, so none is checked.
pub fn random_ipv6(subnet: &Subnet, n: usize) -> Vec<Ipv6Entry> {
    use rand::Rng;
    let Some(net) = subnet.ipv6_nets().into_iter().next() else {
        return Vec::new();
    };
    (0..n)
        .map(|_| {
            let host: u64 = rand::rng().random_range(1..u64::MAX);
            let ip = std::net::Ipv6Addr::from(u128::from(net.network()) | u128::from(host));
            Ipv6Entry {
                ipv6_address: ip.to_string(),
                is_primary_ipv6: false,
            }
        })
        .collect()
}

/// Takes addresses of `subnet` (locked by the caller) for a new interface: `primary` if given
/// (it must be usable and free), else the lowest free one, then `extra` more, lowest first;
/// and counts them as in use.
async fn take_addresses(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    subnet: &mut Subnet,
    primary: Option<Ipv4Addr>,
    extra: usize,
) -> Result<Vec<Ipv4Addr>> {
    let mut held = match subnet.held_addresses.take() {
        Some(runs) => Held::from_runs(runs),
        // A subnet stored before it kept its addresses: once, from its interfaces.
        None => resource::children::<NetworkInterface>(ctx, tx, &subnet.subnet_id)
            .await?
            .iter()
            .flat_map(|e| e.private_ip_addresses.iter())
            .filter_map(|p| p.private_ip_address.parse().ok())
            .collect(),
    };
    let net = subnet.net();
    let mut taken = Vec::with_capacity(1 + extra);
    if let Some(ip) = primary {
        if !net.contains(&ip) {
            return Err(invalid_value(format!(
                "Address {ip} does not fall within the subnet's address range ({net})."
            )));
        }
        let offset = u32::from(ip) - u32::from(net.network());
        if offset < 4 || ip == net.broadcast() {
            return Err(invalid_value(format!(
                "Address {ip} is reserved: AWS keeps the first four addresses and the last of subnet {} ({net}).",
                subnet.subnet_id
            )));
        }
        if !held.take(ip) {
            return Err(Error::new(
                "InvalidIPAddress.InUse",
                format!("Address {ip} is in use."),
            ));
        }
        taken.push(ip);
    }
    // Addresses the subnet reserves explicitly are handed out only when asked for by name.
    let mut avoid = held.clone();
    for [lo, hi] in &subnet.explicit_reservations {
        for ip in *lo..=*hi {
            avoid.take(Ipv4Addr::from(ip));
        }
    }
    while taken.len() < 1 + extra {
        let ip = avoid.first_free(&net).ok_or_else(|| {
            Error::new(
                "InsufficientFreeAddressesInSubnet",
                format!("Subnet {} has no free addresses left.", subnet.subnet_id),
            )
        })?;
        held.take(ip);
        avoid.take(ip);
        taken.push(ip);
    }
    subnet.addresses_in_use = held.len();
    subnet.held_addresses = Some(held.runs().to_vec());
    resource::update(ctx, tx, &*subnet).await?;
    Ok(taken)
}

/// Gives `ips` back to `subnet` (the caller writes the subnet).
fn release_addresses<'a>(subnet: &mut Subnet, ips: impl IntoIterator<Item = &'a str>) {
    let ips: Vec<Ipv4Addr> = ips.into_iter().filter_map(|ip| ip.parse().ok()).collect();
    match subnet.held_addresses.take() {
        Some(runs) => {
            let mut held = Held::from_runs(runs);
            for ip in ips {
                held.release(ip);
            }
            subnet.addresses_in_use = held.len();
            subnet.held_addresses = Some(held.runs().to_vec());
        }
        // Rebuilt from the interfaces when next needed.
        None => subnet.addresses_in_use = subnet.addresses_in_use.saturating_sub(ips.len() as u64),
    }
}

/// The groups `ids` name (see [`groups_for`]), or the VPC's default group when there are none.
pub async fn groups_or_default(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    vpc_id: &str,
    ids: &[String],
) -> Result<Vec<GroupIdentifier>> {
    let mut groups = groups_for(ctx, tx, vpc_id, ids).await?;
    if groups.is_empty() {
        let default: Option<SecurityGroup> =
            resource::child_where(ctx, tx, vpc_id, "GroupName", "default").await?;
        groups.extend(default.map(|g| GroupIdentifier {
            group_id: g.group_id,
            group_name: g.group_name,
        }));
    }
    Ok(groups)
}

/// Creates an instance's primary interface (device 0) in `subnet` (locked by the caller) on
/// `primary` or the lowest free address, attached to `instance_id`.
pub async fn create_for_instance(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    subnet: &mut Subnet,
    primary: Option<Ipv4Addr>,
    groups: Vec<GroupIdentifier>,
    instance_id: &str,
) -> Result<NetworkInterface> {
    create_attached(ctx, tx, subnet, primary, groups, instance_id, 0, true).await
}

/// A new interface attached to a launching instance at `device_index` (inside the
/// caller's transaction).
#[allow(clippy::too_many_arguments)]
pub async fn create_attached(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    subnet: &mut Subnet,
    primary: Option<Ipv4Addr>,
    groups: Vec<GroupIdentifier>,
    instance_id: &str,
    device_index: i64,
    delete_on_termination: bool,
) -> Result<NetworkInterface> {
    let ips = take_addresses(ctx, tx, subnet, primary, 0).await?;
    let mut eni = new_interface(ctx, subnet, &ips, String::new());
    eni.groups = groups;
    attach(&mut eni, instance_id, device_index, delete_on_termination);
    resource::insert(ctx, tx, &eni).await?;
    Ok(eni)
}

/// Attaches `eni` to `instance_id` at `device_index`: a new attachment id, `in-use`, and
/// no detached record left. Returns the attachment id.
fn attach(
    eni: &mut NetworkInterface,
    instance_id: &str,
    device_index: i64,
    delete_on_termination: bool,
) -> String {
    let attachment_id = new_id("eni-attach");
    eni.last_attachment = None;
    eni.status = "in-use".into();
    eni.attachment = Some(EniAttachment {
        attachment_id: attachment_id.clone(),
        instance_id: Some(instance_id.to_string()),
        device_index,
        status: "attached".into(),
        delete_on_termination,
    });
    attachment_id
}

/// Attaches an existing, available interface to a launching instance at `device_index`
/// (inside the caller's transaction).
pub async fn attach_at_launch(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    eni_id: &str,
    instance_id: &str,
    device_index: i64,
    delete_on_termination: bool,
) -> Result<NetworkInterface> {
    let mut eni: NetworkInterface = resource::lock(ctx, tx, eni_id)
        .await?
        .ok_or_else(|| NetworkInterface::not_found(eni_id))?;
    if eni.attachment.is_some() || eni.requester_managed {
        return Err(Error::new(
            "InvalidNetworkInterface.InUse",
            format!("Interface: [{eni_id}] in use."),
        ));
    }
    attach(&mut eni, instance_id, device_index, delete_on_termination);
    resource::update(ctx, tx, &eni).await?;
    Ok(eni)
}

/// The security groups `ids` name, as an interface in `vpc_id` holds them: they must exist,
/// be in that VPC, and be at most five.
pub async fn groups_for(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    vpc_id: &str,
    ids: &[String],
) -> Result<Vec<GroupIdentifier>> {
    if ids.len() > GROUPS_PER_INTERFACE {
        return Err(Error::new(
            "SecurityGroupsPerInterfaceLimitExceeded",
            format!(
                "The maximum number of security groups per interface ({GROUPS_PER_INTERFACE}) has been reached."
            ),
        ));
    }
    let mut out: Vec<GroupIdentifier> = Vec::new();
    for id in ids {
        check_id::<SecurityGroup>(id)?;
        let g: SecurityGroup = resource::get(ctx, tx, id)
            .await?
            .ok_or_else(|| SecurityGroup::not_found(id))?;
        if g.vpc_id != vpc_id {
            return Err(invalid_value(format!(
                "Security group {id} and the interface's subnet belong to different networks ({} and {vpc_id}).",
                g.vpc_id
            )));
        }
        if !out.iter().any(|x| x.group_id == g.group_id) {
            out.push(GroupIdentifier {
                group_id: g.group_id,
                group_name: g.group_name,
            });
        }
    }
    Ok(out)
}

/// Deletes an interface, gives its addresses back to the subnet, lets go of any Elastic IP
/// associated with it, and leaves routes through it `blackhole`.
pub async fn remove(ctx: &Ctx<'_>, tx: &mut Tx, eni_id: &str) -> Result<()> {
    let Some(eni) = resource::get::<NetworkInterface>(ctx, tx, eni_id).await? else {
        return Ok(());
    };
    for mut a in resource::find_where::<Address>(ctx, tx, "NetworkInterfaceId", eni_id).await? {
        a.association = None;
        resource::update(ctx, tx, &a).await?;
    }
    if let Some(mut subnet) = resource::lock::<Subnet>(ctx, tx, &eni.subnet_id).await? {
        release_addresses(
            &mut subnet,
            eni.private_ip_addresses
                .iter()
                .map(|p| p.private_ip_address.as_str()),
        );
        resource::update(ctx, tx, &subnet).await?;
    }
    // A service's node (a load balancer's) gives its public address back with it; an
    // instance's is given back when the instance stops or ends.
    if eni.requester_managed
        && let Some(ip) = &eni.auto_public_ip
    {
        super::addresses::release_public_ip(tx, ip).await?;
    }
    tx.delete(ctx.scope(), eni_id).await?;
    super::routes::refresh_route_states(ctx, tx, &eni.vpc_id).await?;
    Ok(())
}

/// Gives a managed interface `groups` (ids) and, when `public`, an address of the public
/// pool (an internet-facing load balancer's node has one), in the caller's transaction.
pub async fn dress_managed(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    eni_id: &str,
    groups: &[String],
    public: bool,
) -> Result<Option<String>> {
    let Some(mut eni) = resource::lock::<NetworkInterface>(ctx, tx, eni_id).await? else {
        return Ok(None);
    };
    let mut named = Vec::new();
    for g in groups {
        if let Some(sg) = resource::get::<super::sg::SecurityGroup>(ctx, tx, g).await? {
            named.push(GroupIdentifier {
                group_id: sg.group_id,
                group_name: sg.group_name,
            });
        }
    }
    eni.groups = named;
    if public && eni.auto_public_ip.is_none() {
        eni.auto_public_ip = Some(super::addresses::claim_public_ip(tx).await?);
    }
    resource::update(ctx, tx, &eni).await?;
    Ok(eni.auto_public_ip)
}

/// Whether any interface holds security group `group_id`.
pub async fn group_in_use(ctx: &Ctx<'_>, tx: &mut Tx, group_id: &str) -> Result<bool> {
    Ok(resource::list::<NetworkInterface>(ctx, tx)
        .await?
        .iter()
        .any(|e| e.groups.iter().any(|g| g.group_id == group_id)))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeRequest {
    #[serde(default)]
    network_interface_ids: Vec<String>,
    #[serde(default)]
    filters: Vec<super::common::Filter>,
    max_results: Option<i64>,
    next_token: Option<String>,
    dry_run: Option<bool>,
}

/// The `Association` EC2 shows on an interface and on its address for an Elastic IP.
fn association_shown(ctx: &Ctx<'_>, a: &Address) -> Value {
    json!({
        "AllocationId": a.allocation_id,
        "AssociationId": a.association.as_ref().map(|x| x.association_id.clone()),
        "IpOwnerId": ctx.account,
        "PublicIp": a.public_ip,
    })
}

pub async fn describe_network_interfaces(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DescribeRequest = input(raw)?;
    let args = DescribeArgs {
        ids: &req.network_interface_ids,
        filters: &req.filters,
        max_results: req.max_results,
        next_token: req.next_token.as_deref(),
        dry_run: req.dry_run,
    };
    let (mut items, next) = describe::<NetworkInterface>(ctx, args).await?;
    let mut tx = ctx.store.read().await?;
    let addresses: Vec<Address> = resource::list(ctx, &mut tx).await?;
    drop(tx);
    for item in &mut items {
        // An instance's launch-time public address, unless an Elastic IP replaces it below.
        if let Some(ip) = item["AutoPublicIp"].as_str().map(str::to_string) {
            let shown = json!({ "IpOwnerId": "amazon", "PublicIp": ip });
            item["Association"] = shown.clone();
            if let Some(first) = item["PrivateIpAddresses"].get_mut(0) {
                first["Association"] = shown;
            }
        }
        let eni_id = item["NetworkInterfaceId"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        for a in &addresses {
            let Some(x) = a
                .association
                .as_ref()
                .filter(|x| x.network_interface_id == eni_id)
            else {
                continue;
            };
            let shown = association_shown(ctx, a);
            if item["PrivateIpAddress"] == x.private_ip_address.as_str() {
                item["Association"] = shown.clone();
            }
            if let Some(ips) = item["PrivateIpAddresses"].as_array_mut() {
                for ip in ips {
                    if ip["PrivateIpAddress"] == x.private_ip_address.as_str() {
                        ip["Association"] = shown.clone();
                    }
                }
            }
        }
    }
    Ok(super::common::page_output("NetworkInterfaces", items, next))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PrivateIpSpec {
    private_ip_address: Option<String>,
    primary: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateRequest {
    subnet_id: String,
    description: Option<String>,
    private_ip_address: Option<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    private_ip_addresses: Vec<PrivateIpSpec>,
    secondary_private_ip_address_count: Option<i64>,
    ipv6_address_count: Option<i64>,
    #[serde(default)]
    ipv6_addresses: Vec<Ipv6Spec>,
    interface_type: Option<String>,
    client_token: Option<String>,
    #[serde(default)]
    tag_specifications: Vec<TagSpecification>,
    dry_run: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Ipv6Spec {
    pub(crate) ipv6_address: Option<String>,
}

/// The IPv6 addresses a request asks of `subnet` for one interface (`count` drawn at random,
/// or the `given` ones, which must be in the subnet's block and free), beside `held` ones.
pub(crate) async fn ipv6_for(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    subnet: &Subnet,
    count: Option<i64>,
    given: &[String],
    held: &[Ipv6Entry],
) -> Result<Vec<Ipv6Entry>> {
    if count.is_some() && !given.is_empty() {
        return Err(Error::new(
            "InvalidParameterCombination",
            "Specify either Ipv6AddressCount or Ipv6Addresses, not both.",
        ));
    }
    let n = count.unwrap_or(0);
    if n < 0 {
        return Err(invalid_value(format!(
            "Value ({n}) for parameter ipv6AddressCount is invalid."
        )));
    }
    if n == 0 && given.is_empty() {
        return Ok(Vec::new());
    }
    let Some(block) = subnet.ipv6_nets().into_iter().next() else {
        return Err(invalid_value(format!(
            "Subnet {} has no IPv6 CIDR block, so interfaces in it cannot have IPv6 addresses.",
            subnet.subnet_id
        )));
    };
    if !given.is_empty() {
        let neighbours: Vec<NetworkInterface> =
            resource::children(ctx, tx, &subnet.subnet_id).await?;
        let mut out = Vec::new();
        for text in given {
            let ip: std::net::Ipv6Addr = text.parse().map_err(|_| {
                invalid_value(format!(
                    "Value ({text}) for parameter ipv6Address is invalid."
                ))
            })?;
            if !block.contains(&ip) {
                return Err(invalid_value(format!(
                    "Address {ip} does not fall within the subnet's IPv6 range ({block})."
                )));
            }
            let shown = ip.to_string();
            let taken = held
                .iter()
                .chain(out.iter())
                .any(|e: &Ipv6Entry| e.ipv6_address == shown)
                || neighbours
                    .iter()
                    .any(|e| e.ipv6_addresses.iter().any(|a| a.ipv6_address == shown));
            if taken {
                return Err(Error::new(
                    "InvalidParameterValue",
                    format!("Address {shown} is in use."),
                ));
            }
            out.push(Ipv6Entry {
                ipv6_address: shown,
                is_primary_ipv6: false,
            });
        }
        return Ok(out);
    }
    Ok(random_ipv6(subnet, n as usize))
}

fn parse_ip(text: &str) -> Result<Ipv4Addr> {
    text.parse().map_err(|_| {
        invalid_value(format!(
            "Value ({text}) for parameter privateIpAddress is invalid. It is not an IPv4 address."
        ))
    })
}

pub async fn create_network_interface(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: CreateRequest = input(raw)?;
    check_id::<Subnet>(&req.subnet_id)?;
    if req.interface_type.is_some() {
        return Err(Error(AwsError::not_implemented(
            "ec2",
            "CreateNetworkInterface with an InterfaceType (efa, trunk, ...)",
        )));
    }
    // The primary address: PrivateIpAddress, or the one PrivateIpAddresses marks primary; the
    // others listed there are secondaries, as are SecondaryPrivateIpAddressCount more.
    let mut primary = req
        .private_ip_address
        .as_deref()
        .map(parse_ip)
        .transpose()?;
    let mut secondaries: Vec<Ipv4Addr> = Vec::new();
    for spec in &req.private_ip_addresses {
        let Some(text) = &spec.private_ip_address else {
            continue;
        };
        let ip = parse_ip(text)?;
        if spec.primary == Some(true) && primary.is_none_or(|p| p == ip) {
            primary = Some(ip);
        } else if Some(ip) != primary && !secondaries.contains(&ip) {
            secondaries.push(ip);
        }
    }
    // With none marked primary, EC2 makes the first listed the primary one.
    secondaries.retain(|ip| Some(*ip) != primary);
    if primary.is_none() && !secondaries.is_empty() {
        primary = Some(secondaries.remove(0));
    }
    let count = req.secondary_private_ip_address_count.unwrap_or(0);
    if count < 0 || (count > 0 && !secondaries.is_empty()) {
        return Err(Error::new(
            "InvalidParameterCombination",
            "Specify secondary addresses either by PrivateIpAddresses or by SecondaryPrivateIpAddressCount, not both.",
        ));
    }
    let tags = tags_from_specs(&req.tag_specifications, NetworkInterface::KIND)?;
    let mut tx = ctx.store.write().await?;
    let mut subnet: Subnet = resource::lock(ctx, &mut tx, &req.subnet_id)
        .await?
        .ok_or_else(|| super::subnet::not_found(&req.subnet_id))?;
    let groups = groups_or_default(ctx, &mut tx, &subnet.vpc_id, &req.groups).await?;
    dry_run(req.dry_run)?;
    let mut ips = take_addresses(ctx, &mut tx, &mut subnet, primary, count as usize).await?;
    for ip in secondaries {
        let more = take_addresses(ctx, &mut tx, &mut subnet, Some(ip), 0).await?;
        ips.extend(more);
    }
    let mut eni = new_interface(
        ctx,
        &subnet,
        &ips,
        req.description.clone().unwrap_or_default(),
    );
    eni.groups = groups;
    let given: Vec<String> = req
        .ipv6_addresses
        .iter()
        .filter_map(|a| a.ipv6_address.clone())
        .collect();
    if req.ipv6_address_count.is_some() || !given.is_empty() {
        eni.ipv6_addresses =
            ipv6_for(ctx, &mut tx, &subnet, req.ipv6_address_count, &given, &[]).await?;
    }
    resource::insert(ctx, &mut tx, &eni).await?;
    put_tags(
        ctx,
        &mut tx,
        &eni.network_interface_id,
        NetworkInterface::KIND,
        &tags,
    )
    .await?;
    tx.commit().await?;
    let mut out = json!({ "NetworkInterface": eni.shown(&tags)? });
    if let Some(t) = req.client_token {
        out["ClientToken"] = json!(t);
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteRequest {
    network_interface_id: String,
    dry_run: Option<bool>,
}

pub async fn delete_network_interface(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DeleteRequest = input(raw)?;
    let id = &req.network_interface_id;
    check_id::<NetworkInterface>(id)?;
    let mut tx = ctx.store.write().await?;
    let eni: NetworkInterface = resource::lock(ctx, &mut tx, id)
        .await?
        .ok_or_else(|| NetworkInterface::not_found(id))?;
    if eni.requester_managed {
        return Err(Error::new(
            "OperationNotPermitted",
            format!(
                "The network interface {id} is managed by AWS ({}); delete the resource that made it.",
                eni.description
            ),
        ));
    }
    if eni.attachment.is_some() {
        return Err(Error::new(
            "InvalidNetworkInterface.InUse",
            format!("The network interface {id} is currently in use."),
        ));
    }
    dry_run(req.dry_run)?;
    remove(ctx, &mut tx, id).await?;
    tx.commit().await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AttributeValue {
    value: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ModifyRequest {
    network_interface_id: String,
    description: Option<AttributeValue>,
    source_dest_check: Option<BoolValue>,
    groups: Option<Vec<String>>,
    attachment: Option<Value>,
    dry_run: Option<bool>,
}

pub async fn modify_network_interface_attribute(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ModifyRequest = input(raw)?;
    let id = &req.network_interface_id;
    check_id::<NetworkInterface>(id)?;
    let given = [
        req.description.is_some(),
        req.source_dest_check.is_some(),
        req.groups.is_some(),
        req.attachment.is_some(),
    ];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err(Error::new(
            "InvalidParameterCombination",
            "Specify exactly one attribute to modify: description, sourceDestCheck, groupSet or attachment.",
        ));
    }
    if req.attachment.is_some() {
        return Err(Error(AwsError::not_implemented(
            "ec2",
            "ModifyNetworkInterfaceAttribute of an attachment (instances come later)",
        )));
    }
    let mut tx = ctx.store.write().await?;
    let mut eni: NetworkInterface = resource::lock(ctx, &mut tx, id)
        .await?
        .ok_or_else(|| NetworkInterface::not_found(id))?;
    if let Some(d) = &req.description {
        eni.description = d.value.clone().unwrap_or_default();
    }
    if let Some(b) = &req.source_dest_check {
        eni.source_dest_check = b.value.unwrap_or(true);
    }
    if let Some(ids) = &req.groups {
        if ids.is_empty() {
            return Err(Error::new(
                "MissingParameter",
                "The request must contain at least one security group for groupSet.",
            ));
        }
        eni.groups = groups_for(ctx, &mut tx, &eni.vpc_id, ids).await?;
    }
    dry_run(req.dry_run)?;
    resource::update(ctx, &mut tx, &eni).await?;
    tx.commit().await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeAttributeRequest {
    network_interface_id: String,
    attribute: Option<String>,
    dry_run: Option<bool>,
}

pub async fn describe_network_interface_attribute(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DescribeAttributeRequest = input(raw)?;
    let id = &req.network_interface_id;
    check_id::<NetworkInterface>(id)?;
    let mut tx = ctx.store.read().await?;
    let eni: NetworkInterface = resource::get(ctx, &mut tx, id)
        .await?
        .ok_or_else(|| NetworkInterface::not_found(id))?;
    drop(tx);
    dry_run(req.dry_run)?;
    let mut out = json!({ "NetworkInterfaceId": eni.network_interface_id });
    // The model's enum has already refused other names.
    match req.attribute.as_deref() {
        Some("description") => out["Description"] = json!({ "Value": eni.description }),
        Some("groupSet") => out["Groups"] = output(&eni.groups)?,
        Some("sourceDestCheck") => {
            out["SourceDestCheck"] = json!({ "Value": eni.source_dest_check })
        }
        Some("attachment") => {
            if let Some(a) = &eni.attachment {
                out["Attachment"] = output(a)?;
            }
        }
        _ => {
            return Err(Error::new(
                "MissingParameter",
                "The request must contain the parameter attribute",
            ));
        }
    }
    Ok(out)
}

/// The interface holding attachment `attachment_id`.
async fn by_attachment(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    attachment_id: &str,
) -> Result<NetworkInterface> {
    resource::find_where::<NetworkInterface>(ctx, tx, "Attachment.AttachmentId", attachment_id)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| {
            Error::new(
                "InvalidAttachmentID.NotFound",
                format!("The attachment ID '{attachment_id}' does not exist"),
            )
        })
}

/// The interfaces attached to `instance_id`, by device index.
pub async fn of_instance(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    instance_id: &str,
) -> Result<Vec<NetworkInterface>> {
    let mut out: Vec<NetworkInterface> =
        resource::find_where(ctx, tx, "Attachment.InstanceId", instance_id).await?;
    out.sort_by_key(|e| e.attachment.as_ref().map_or(0, |a| a.device_index));
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AttachRequest {
    network_interface_id: String,
    instance_id: String,
    device_index: i64,
    dry_run: Option<bool>,
}

/// Attaches an interface to an instance of its zone and VPC, at a free device index, within
/// the interfaces the instance type allows.
pub async fn attach_network_interface(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: AttachRequest = input(raw)?;
    check_id::<NetworkInterface>(&req.network_interface_id)?;
    let mut tx = ctx.store.write().await?;
    let mut eni: NetworkInterface = resource::lock(ctx, &mut tx, &req.network_interface_id)
        .await?
        .ok_or_else(|| NetworkInterface::not_found(&req.network_interface_id))?;
    let instance: super::instances::Instance = resource::lock(ctx, &mut tx, &req.instance_id)
        .await?
        .filter(|i: &super::instances::Instance| i.state != "terminated")
        .ok_or_else(|| {
            Error::new(
                "InvalidInstanceID.NotFound",
                format!("The instance ID '{}' does not exist", req.instance_id),
            )
        })?;
    if eni.attachment.is_some() || eni.requester_managed {
        return Err(Error::new(
            "InvalidNetworkInterface.InUse",
            format!("Interface: [{}] in use.", eni.network_interface_id),
        ));
    }
    if eni.availability_zone != instance.availability_zone || eni.vpc_id != instance.vpc_id {
        return Err(invalid_value(format!(
            "The network interface {} and instance {} are not in the same availability zone and VPC.",
            eni.network_interface_id, instance.instance_id
        )));
    }
    let attached = of_instance(ctx, &mut tx, &instance.instance_id).await?;
    if attached.iter().any(|e| {
        e.attachment
            .as_ref()
            .is_some_and(|a| a.device_index == req.device_index)
    }) {
        return Err(invalid_value(format!(
            "Instance '{}' already has an interface attached at device index '{}'.",
            instance.instance_id, req.device_index
        )));
    }
    if let Some(limits) = kumori_catalog::network_limits(&instance.instance_type)
        && attached.len() as u32 >= limits.max_interfaces
    {
        return Err(Error::new(
            "AttachmentLimitExceeded",
            format!(
                "Interface count {} exceeds the limit for {}",
                attached.len() + 1,
                instance.instance_type
            ),
        ));
    }
    if let Some(limits) = kumori_catalog::network_limits(&instance.instance_type)
        && eni.private_ip_addresses.len() as u32 > limits.ipv4_per_interface
    {
        return Err(Error::new(
            "PrivateIpAddressLimitExceeded",
            format!(
                "The interface has more private addresses than {} allows per interface ({}).",
                instance.instance_type, limits.ipv4_per_interface
            ),
        ));
    }
    dry_run(req.dry_run)?;
    let attachment_id = attach(&mut eni, &instance.instance_id, req.device_index, false);
    resource::update(ctx, &mut tx, &eni).await?;
    tx.commit().await?;
    Ok(json!({ "AttachmentId": attachment_id, "NetworkCardIndex": 0 }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DetachRequest {
    attachment_id: String,
    force: Option<bool>,
    dry_run: Option<bool>,
}

pub async fn detach_network_interface(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DetachRequest = input(raw)?;
    let _ = req.force;
    let mut tx = ctx.store.write().await?;
    let mut eni = by_attachment(ctx, &mut tx, &req.attachment_id).await?;
    if eni.attachment.as_ref().is_some_and(|a| a.device_index == 0) {
        return Err(Error::new(
            "OperationNotPermitted",
            "The network interface at device index 0 cannot be detached.",
        ));
    }
    dry_run(req.dry_run)?;
    eni.last_attachment = eni.attachment.take().map(|mut a| {
        a.status = "detached".into();
        a
    });
    eni.status = "available".into();
    resource::update(ctx, &mut tx, &eni).await?;
    tx.commit().await?;
    Ok(json!({}))
}

/// At termination: interfaces marked to go with the instance (the ones a launch made, by
/// default) go, the others are detached and left behind.
pub async fn detach_all(ctx: &Ctx<'_>, tx: &mut Tx, instance_id: &str) -> Result<()> {
    for mut e in of_instance(ctx, tx, instance_id).await? {
        // Interfaces made to go with the instance go with it.
        if e.attachment
            .as_ref()
            .is_some_and(|a| a.delete_on_termination)
        {
            remove(ctx, tx, &e.network_interface_id).await?;
            continue;
        }
        if e.attachment.is_some() {
            e.last_attachment = e.attachment.take().map(|mut a| {
                a.status = "detached".into();
                a
            });
            e.status = "available".into();
            resource::update(ctx, tx, &e).await?;
        }
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AssignRequest {
    network_interface_id: String,
    #[serde(default)]
    private_ip_addresses: Vec<String>,
    secondary_private_ip_address_count: Option<i64>,
    allow_reassignment: Option<bool>,
}

/// Adds secondary private addresses: those named (free, in the subnet) or as many of the
/// lowest free ones; an attached interface stays within its instance type's limit.
pub async fn assign_private_ip_addresses(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: AssignRequest = input(raw)?;
    check_id::<NetworkInterface>(&req.network_interface_id)?;
    if req.allow_reassignment == Some(true) {
        return Err(Error(AwsError::not_implemented(
            "ec2",
            "AssignPrivateIpAddresses with AllowReassignment",
        )));
    }
    let count = req.secondary_private_ip_address_count.unwrap_or(0);
    if (count > 0) != req.private_ip_addresses.is_empty() || count < 0 {
        return Err(Error::new(
            "InvalidParameterCombination",
            "Specify either PrivateIpAddresses or SecondaryPrivateIpAddressCount.",
        ));
    }
    let mut tx = ctx.store.write().await?;
    let mut eni: NetworkInterface = resource::lock(ctx, &mut tx, &req.network_interface_id)
        .await?
        .ok_or_else(|| NetworkInterface::not_found(&req.network_interface_id))?;
    let adding = req.private_ip_addresses.len().max(count as usize);
    if let Some(instance_id) = eni.attachment.as_ref().and_then(|a| a.instance_id.clone())
        && let Some(i) =
            resource::get::<super::instances::Instance>(ctx, &mut tx, &instance_id).await?
        && let Some(limits) = kumori_catalog::network_limits(&i.instance_type)
        && eni.private_ip_addresses.len() + adding > limits.ipv4_per_interface as usize
    {
        return Err(Error::new(
            "PrivateIpAddressLimitExceeded",
            "Number of private addresses will exceed limit.",
        ));
    }
    let mut subnet: Subnet = resource::lock(ctx, &mut tx, &eni.subnet_id)
        .await?
        .ok_or_else(|| super::subnet::not_found(&eni.subnet_id))?;
    let mut new_ips: Vec<Ipv4Addr> = Vec::new();
    for text in &req.private_ip_addresses {
        let ip = parse_ip(text)?;
        new_ips.extend(take_addresses(ctx, &mut tx, &mut subnet, Some(ip), 0).await?);
    }
    if count > 0 {
        let first = take_addresses(ctx, &mut tx, &mut subnet, None, count as usize - 1).await?;
        new_ips.extend(first);
    }
    for ip in &new_ips {
        eni.private_ip_addresses.push(PrivateIp {
            private_ip_address: ip.to_string(),
            private_dns_name: private_dns_name(ctx.region, *ip),
            primary: false,
        });
    }
    resource::update(ctx, &mut tx, &eni).await?;
    tx.commit().await?;
    let assigned: Vec<Value> = new_ips
        .iter()
        .map(|ip| json!({ "PrivateIpAddress": ip.to_string() }))
        .collect();
    Ok(
        json!({ "NetworkInterfaceId": eni.network_interface_id, "AssignedPrivateIpAddresses": assigned }),
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UnassignRequest {
    network_interface_id: String,
    #[serde(default)]
    private_ip_addresses: Vec<String>,
}

/// Gives secondary addresses back to the subnet, letting go of any Elastic IP on them.
pub async fn unassign_private_ip_addresses(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: UnassignRequest = input(raw)?;
    check_id::<NetworkInterface>(&req.network_interface_id)?;
    let mut tx = ctx.store.write().await?;
    let mut eni: NetworkInterface = resource::lock(ctx, &mut tx, &req.network_interface_id)
        .await?
        .ok_or_else(|| NetworkInterface::not_found(&req.network_interface_id))?;
    for ip in &req.private_ip_addresses {
        match eni
            .private_ip_addresses
            .iter()
            .find(|p| &p.private_ip_address == ip)
        {
            None => {
                return Err(invalid_value(format!(
                    "Some of the specified addresses are not assigned to interface {}",
                    eni.network_interface_id
                )));
            }
            Some(p) if p.primary => {
                return Err(invalid_value(format!(
                    "The primary address {ip} of {} cannot be unassigned.",
                    eni.network_interface_id
                )));
            }
            Some(_) => {}
        }
    }
    eni.private_ip_addresses
        .retain(|p| !req.private_ip_addresses.contains(&p.private_ip_address));
    let associated: Vec<Address> = resource::find_where(
        ctx,
        &mut tx,
        "NetworkInterfaceId",
        eni.network_interface_id.as_str(),
    )
    .await?;
    for mut a in associated {
        if a.association
            .as_ref()
            .is_some_and(|x| req.private_ip_addresses.contains(&x.private_ip_address))
        {
            a.association = None;
            resource::update(ctx, &mut tx, &a).await?;
        }
    }
    if let Some(mut subnet) = resource::lock::<Subnet>(ctx, &mut tx, &eni.subnet_id).await? {
        release_addresses(
            &mut subnet,
            req.private_ip_addresses.iter().map(String::as_str),
        );
        resource::update(ctx, &mut tx, &subnet).await?;
    }
    resource::update(ctx, &mut tx, &eni).await?;
    tx.commit().await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AssignIpv6Request {
    network_interface_id: String,
    ipv6_address_count: Option<i64>,
    #[serde(default)]
    ipv6_addresses: Vec<String>,
}

/// AssignIpv6Addresses: more IPv6 addresses of its subnet for an interface.
pub async fn assign_ipv6_addresses(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: AssignIpv6Request = input(raw)?;
    check_id::<NetworkInterface>(&req.network_interface_id)?;
    if req.ipv6_address_count.is_none() && req.ipv6_addresses.is_empty() {
        return Err(Error::new(
            "MissingParameter",
            "The request must contain the parameter Ipv6AddressCount or Ipv6Addresses",
        ));
    }
    let mut tx = ctx.store.write().await?;
    let mut eni: NetworkInterface = resource::lock(ctx, &mut tx, &req.network_interface_id)
        .await?
        .ok_or_else(|| NetworkInterface::not_found(&req.network_interface_id))?;
    // The subnet's lock serializes address choices in it.
    let subnet: Subnet = resource::lock(ctx, &mut tx, &eni.subnet_id)
        .await?
        .ok_or_else(|| super::subnet::not_found(&eni.subnet_id))?;
    let added = ipv6_for(
        ctx,
        &mut tx,
        &subnet,
        req.ipv6_address_count,
        &req.ipv6_addresses,
        &eni.ipv6_addresses,
    )
    .await?;
    eni.ipv6_addresses.extend(added.iter().cloned());
    resource::update(ctx, &mut tx, &eni).await?;
    tx.commit().await?;
    Ok(json!({
        "NetworkInterfaceId": eni.network_interface_id,
        "AssignedIpv6Addresses": added.into_iter().map(|a| a.ipv6_address).collect::<Vec<_>>(),
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UnassignIpv6Request {
    network_interface_id: String,
    #[serde(default)]
    ipv6_addresses: Vec<String>,
}

/// UnassignIpv6Addresses: the named addresses leave the interface.
pub async fn unassign_ipv6_addresses(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: UnassignIpv6Request = input(raw)?;
    check_id::<NetworkInterface>(&req.network_interface_id)?;
    let mut tx = ctx.store.write().await?;
    let mut eni: NetworkInterface = resource::lock(ctx, &mut tx, &req.network_interface_id)
        .await?
        .ok_or_else(|| NetworkInterface::not_found(&req.network_interface_id))?;
    let wanted: Vec<String> = req
        .ipv6_addresses
        .iter()
        .map(|a| {
            a.parse::<std::net::Ipv6Addr>()
                .map_or(a.clone(), |ip| ip.to_string())
        })
        .collect();
    if let Some(missing) = wanted
        .iter()
        .find(|a| !eni.ipv6_addresses.iter().any(|e| &e.ipv6_address == *a))
    {
        return Err(invalid_value(format!(
            "Address {missing} is not assigned to {}.",
            eni.network_interface_id
        )));
    }
    eni.ipv6_addresses
        .retain(|e| !wanted.contains(&e.ipv6_address));
    resource::update(ctx, &mut tx, &eni).await?;
    tx.commit().await?;
    Ok(json!({
        "NetworkInterfaceId": eni.network_interface_id,
        "UnassignedIpv6Addresses": wanted,
    }))
}
