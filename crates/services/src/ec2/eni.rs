//! Network interfaces: DescribeNetworkInterfaces.
//!
//! Interfaces are what hold addresses in a subnet and security groups on a resource. kumori
//! describes every interface in the store; the calls that make them (CreateNetworkInterface,
//! RunInstances, NAT gateways) arrive with the compute issue, so until then a region has none
//! and DescribeNetworkInterfaces answers, truthfully, with an empty list. Terraform asks it
//! before deleting any subnet or security group.

use super::common::{Filterable, Tag};
use super::generic::{Ec2Resource, describe_call};
use super::subnet::Subnet;
use crate::resource::{self, Resource, new_id};
use crate::{Ctx, Error, Result, output};
use kumori_net::cidr;
use kumori_protocol::AwsError;
use kumori_store::Tx;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::net::Ipv4Addr;

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
    pub source_dest_check: bool,
    pub requester_managed: bool,
    pub groups: Vec<GroupIdentifier>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attachment: Option<EniAttachment>,
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
        if !tags.is_empty() {
            v["TagSet"] = output(&tags)?;
        }
        Ok(v)
    }
    fn not_found(id: &str) -> Error {
        Error(AwsError::new(
            "InvalidNetworkInterfaceID.NotFound",
            format!("The networkInterface ID '{id}' does not exist"),
        ))
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
            "attachment.attachment-id" => a.map(|x| x.attachment_id.clone()).into_iter().collect(),
            "attachment.device-index" => {
                a.map(|x| x.device_index.to_string()).into_iter().collect()
            }
            "attachment.instance-id" => a.and_then(|x| x.instance_id.clone()).into_iter().collect(),
            "attachment.status" => a.map(|x| x.status.clone()).into_iter().collect(),
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
    let used: Vec<Ipv4Addr> = resource::children::<NetworkInterface>(ctx, tx, subnet_id)
        .await?
        .iter()
        .flat_map(|e| e.private_ip_addresses.iter())
        .filter_map(|p| p.private_ip_address.parse().ok())
        .collect();
    let ip = cidr::first_free_host(&subnet.net(), &used).ok_or_else(|| {
        Error(AwsError::new(
            "InsufficientFreeAddressesInSubnet",
            format!("Subnet {subnet_id} has no free addresses left."),
        ))
    })?;
    let dns = private_dns_name(ctx.region, ip);
    let eni = NetworkInterface {
        network_interface_id: new_id("eni"),
        subnet_id: subnet.subnet_id.clone(),
        vpc_id: subnet.vpc_id.clone(),
        availability_zone: subnet.availability_zone.clone(),
        owner_id: ctx.account.to_string(),
        description,
        interface_type: interface_type.to_string(),
        status: "in-use".into(),
        mac_address: new_mac(),
        private_ip_address: ip.to_string(),
        private_dns_name: dns.clone(),
        private_ip_addresses: vec![PrivateIp {
            private_ip_address: ip.to_string(),
            private_dns_name: dns,
            primary: true,
        }],
        source_dest_check: false,
        requester_managed: true,
        groups: vec![],
        attachment: None,
    };
    resource::insert(ctx, tx, &eni).await?;
    subnet.addresses_in_use += 1;
    resource::update(ctx, tx, &subnet).await?;
    Ok(eni)
}

/// Deletes an interface and gives its addresses back to the subnet.
pub async fn remove(ctx: &Ctx<'_>, tx: &mut Tx, eni_id: &str) -> Result<()> {
    let Some(eni) = resource::get::<NetworkInterface>(ctx, tx, eni_id).await? else {
        return Ok(());
    };
    if let Some(mut subnet) = resource::lock::<Subnet>(ctx, tx, &eni.subnet_id).await? {
        let n = eni.private_ip_addresses.len() as u64;
        subnet.addresses_in_use = subnet.addresses_in_use.saturating_sub(n);
        resource::update(ctx, tx, &subnet).await?;
    }
    tx.delete(ctx.scope(), eni_id).await?;
    Ok(())
}

/// Whether any interface holds security group `group_id`.
pub async fn group_in_use(ctx: &Ctx<'_>, tx: &mut Tx, group_id: &str) -> Result<bool> {
    Ok(resource::list::<NetworkInterface>(ctx, tx)
        .await?
        .iter()
        .any(|e| e.groups.iter().any(|g| g.group_id == group_id)))
}

pub async fn describe_network_interfaces(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    describe_call::<NetworkInterface>(ctx, raw, "NetworkInterfaceIds", "NetworkInterfaces").await
}
