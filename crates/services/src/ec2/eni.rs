//! Network interfaces: DescribeNetworkInterfaces.
//!
//! Interfaces are what hold addresses in a subnet and security groups on a resource. kumori
//! describes every interface in the store; the calls that make them (CreateNetworkInterface,
//! RunInstances, NAT gateways) arrive with the compute issue, so until then a region has none
//! and DescribeNetworkInterfaces answers, truthfully, with an empty list. Terraform asks it
//! before deleting any subnet or security group.

use super::common::{Filterable, Tag};
use super::generic::{Ec2Resource, describe_call};
use crate::resource::Resource;
use crate::{Ctx, Error, Result, output};
use kumori_protocol::AwsError;
use kumori_store::Tx;
use serde::{Deserialize, Serialize};
use serde_json::Value;

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

/// Whether any interface holds security group `group_id`.
pub async fn group_in_use(ctx: &Ctx<'_>, tx: &mut Tx, group_id: &str) -> Result<bool> {
    Ok(crate::resource::list::<NetworkInterface>(ctx, tx)
        .await?
        .iter()
        .any(|e| e.groups.iter().any(|g| g.group_id == group_id)))
}

pub async fn describe_network_interfaces(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    describe_call::<NetworkInterface>(ctx, raw, "NetworkInterfaceIds", "NetworkInterfaces").await
}
