//! An instance as EC2 shows it, typed and borrowed from the records it is made of, so that
//! DescribeInstances writes a thousand instances straight to XML without building a tree of
//! JSON values (members in the model's order, which the typed writer finds fastest).
//! RunInstances and the other single-instance answers use the same view through JSON.

use crate::ec2::addresses::Address;
use crate::ec2::common::Tag;
use crate::ec2::eni::{GroupIdentifier, NetworkInterface, PrivateIp, private_dns_name};
use crate::ec2::instances::Instance;
use crate::ec2::volumes::Volume;
use serde::Serialize;
use std::net::Ipv4Addr;

/// EC2's state code for a state name.
pub fn state_code(state: &str) -> i64 {
    match state {
        "pending" => 0,
        "running" => 16,
        "shutting-down" => 32,
        "terminated" => 48,
        "stopping" => 64,
        _ => 80,
    }
}

/// `ec2-198-18-0-5.compute-1.amazonaws.com` in us-east-1, `….<region>.compute.amazonaws.com`
/// elsewhere.
pub fn public_dns_name(region: &str, ip: &str) -> String {
    let host = format!("ec2-{}", ip.replace('.', "-"));
    if region == "us-east-1" {
        format!("{host}.compute-1.amazonaws.com")
    } else {
        format!("{host}.{region}.compute.amazonaws.com")
    }
}

/// What an instance is shown from besides its own record.
pub struct Parts<'a> {
    pub region: &'a str,
    pub account: &'a str,
    /// The primary interface (device 0).
    pub eni: Option<&'a NetworkInterface>,
    /// Further attached interfaces, by device index.
    pub others: Vec<&'a NetworkInterface>,
    /// The Elastic IP on the primary interface.
    pub eip: Option<&'a Address>,
    pub volumes: &'a [&'a Volume],
    pub tags: &'a [Tag],
    /// The state to show (answers show where a change starts).
    pub state: &'a str,
}

#[derive(Serialize)]
pub struct StateOut<'a> {
    #[serde(rename = "Code")]
    pub code: i64,
    #[serde(rename = "Name")]
    pub name: &'a str,
}

impl<'a> StateOut<'a> {
    pub fn of(state: &'a str) -> Self {
        StateOut {
            code: state_code(state),
            name: state,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InstanceOut<'a> {
    architecture: &'a str,
    block_device_mappings: Vec<MappingOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_token: Option<&'a str>,
    ebs_optimized: bool,
    ena_support: bool,
    hypervisor: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    iam_instance_profile: Option<ProfileOut<'a>>,
    network_interfaces: Vec<NicOut<'a>>,
    root_device_name: &'a str,
    root_device_type: &'static str,
    security_groups: &'a [GroupIdentifier],
    source_dest_check: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    state_reason: Option<StateReasonOut<'a>>,
    #[serde(skip_serializing_if = "<[Tag]>::is_empty")]
    tags: &'a [Tag],
    virtualization_type: &'a str,
    cpu_options: CpuOut,
    capacity_reservation_specification: ReservationPreference,
    hibernation_options: Configured,
    metadata_options: MetadataOut<'a>,
    enclave_options: Enabled,
    platform_details: &'a str,
    usage_operation: &'a str,
    usage_operation_update_time: &'a str,
    private_dns_name_options: DnsNameOptions,
    maintenance_options: Maintenance,
    instance_id: &'a str,
    image_id: &'a str,
    state: StateOut<'a>,
    private_dns_name: String,
    public_dns_name: String,
    state_transition_reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_name: Option<&'a str>,
    ami_launch_index: i64,
    product_codes: &'static [Nothing],
    instance_type: &'a str,
    launch_time: &'a str,
    placement: PlacementOut<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    platform: Option<&'a str>,
    monitoring: MonitoringOut,
    subnet_id: &'a str,
    vpc_id: &'a str,
    private_ip_address: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    public_ip_address: Option<&'a str>,
}

/// The element of a list that is always empty.
#[derive(Serialize)]
pub struct Nothing {}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct MappingOut<'a> {
    device_name: &'a str,
    ebs: EbsOut<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct EbsOut<'a> {
    attach_time: &'a str,
    delete_on_termination: bool,
    status: &'static str,
    volume_id: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ProfileOut<'a> {
    arn: &'a str,
    id: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct NicOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    association: Option<AssociationOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attachment: Option<AttachmentOut<'a>>,
    description: &'a str,
    groups: &'a [GroupIdentifier],
    ipv6_addresses: &'a [crate::ec2::eni::Ipv6Entry],
    mac_address: &'a str,
    network_interface_id: &'a str,
    owner_id: &'a str,
    private_dns_name: &'a str,
    private_ip_address: &'a str,
    private_ip_addresses: Vec<PrivateIpOut<'a>>,
    source_dest_check: bool,
    status: &'a str,
    subnet_id: &'a str,
    vpc_id: &'a str,
    interface_type: &'a str,
}

#[derive(Serialize, Clone)]
#[serde(rename_all = "PascalCase")]
struct AssociationOut<'a> {
    ip_owner_id: &'a str,
    public_dns_name: String,
    public_ip: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct AttachmentOut<'a> {
    attach_time: &'a str,
    attachment_id: &'a str,
    delete_on_termination: bool,
    device_index: i64,
    status: &'a str,
    network_card_index: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct PrivateIpOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    association: Option<AssociationOut<'a>>,
    primary: bool,
    private_dns_name: &'a str,
    private_ip_address: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct StateReasonOut<'a> {
    code: &'a str,
    message: &'a str,
}

/// Why an instance is in a state other than running, as EC2 says it: what was recorded
/// with the state (a failed launch), else what the state itself implies.
fn state_reason<'a>(i: &'a Instance, state: &str) -> Option<StateReasonOut<'a>> {
    if let Some(r) = &i.state_reason
        && state == i.state
    {
        return Some(StateReasonOut {
            code: &r.code,
            message: &r.message,
        });
    }
    match state {
        "pending" => Some(StateReasonOut {
            code: "pending",
            message: "pending",
        }),
        "stopping" | "stopped" | "shutting-down" | "terminated" => Some(StateReasonOut {
            code: "Client.UserInitiatedShutdown",
            message: "Client.UserInitiatedShutdown: User initiated shutdown",
        }),
        _ => None,
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct CpuOut {
    core_count: i64,
    threads_per_core: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ReservationPreference {
    capacity_reservation_preference: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Configured {
    configured: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Enabled {
    enabled: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct MetadataOut<'a> {
    state: &'static str,
    http_tokens: &'a str,
    http_put_response_hop_limit: i64,
    http_endpoint: &'a str,
    http_protocol_ipv6: &'a str,
    instance_metadata_tags: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DnsNameOptions {
    hostname_type: &'static str,
    enable_resource_name_dns_a_record: bool,
    #[serde(rename = "EnableResourceNameDnsAAAARecord")]
    enable_resource_name_dns_aaaa_record: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Maintenance {
    auto_recovery: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct PlacementOut<'a> {
    group_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    partition_number: Option<i64>,
    tenancy: &'a str,
    availability_zone: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct MonitoringOut {
    state: &'static str,
}

fn private_ip_out<'a>(
    p: &'a PrivateIp,
    association: Option<&AssociationOut<'a>>,
) -> PrivateIpOut<'a> {
    PrivateIpOut {
        association: association.filter(|_| p.primary).cloned(),
        primary: p.primary,
        private_dns_name: &p.private_dns_name,
        private_ip_address: &p.private_ip_address,
    }
}

/// Instance `i` as EC2 shows it.
pub fn instance_out<'a>(i: &'a Instance, parts: &Parts<'a>) -> InstanceOut<'a> {
    let public_ip: Option<&'a str> = parts
        .eip
        .map(|a| a.public_ip.as_str())
        .or(i.public_ip_address.as_deref());
    let association = public_ip.map(|ip| AssociationOut {
        ip_owner_id: if parts.eip.is_some() {
            parts.account
        } else {
            "amazon"
        },
        public_dns_name: public_dns_name(parts.region, ip),
        public_ip: ip,
    });
    let nics = parts
        .eni
        .into_iter()
        .chain(parts.others.iter().copied())
        .map(|e| {
            let association = association
                .as_ref()
                .filter(|_| e.network_interface_id == i.network_interface_id);
            NicOut {
                association: association.cloned(),
                attachment: e.attachment.as_ref().map(|a| AttachmentOut {
                    attach_time: &i.launch_time,
                    attachment_id: &a.attachment_id,
                    delete_on_termination: a.delete_on_termination,
                    device_index: a.device_index,
                    status: &a.status,
                    network_card_index: 0,
                }),
                description: &e.description,
                groups: &e.groups,
                ipv6_addresses: &e.ipv6_addresses,
                mac_address: &e.mac_address,
                network_interface_id: &e.network_interface_id,
                owner_id: &e.owner_id,
                private_dns_name: &e.private_dns_name,
                private_ip_address: &e.private_ip_address,
                private_ip_addresses: e
                    .private_ip_addresses
                    .iter()
                    .map(|p| private_ip_out(p, association))
                    .collect(),
                source_dest_check: e.source_dest_check,
                status: &e.status,
                subnet_id: &e.subnet_id,
                vpc_id: &e.vpc_id,
                interface_type: &e.interface_type,
            }
        })
        .collect();
    let mappings = parts
        .volumes
        .iter()
        .flat_map(|v| {
            v.attachments
                .iter()
                .filter(|a| a.instance_id == i.instance_id)
                .map(|a| MappingOut {
                    device_name: &a.device,
                    ebs: EbsOut {
                        attach_time: &a.attach_time,
                        delete_on_termination: a.delete_on_termination,
                        status: "attached",
                        volume_id: &a.volume_id,
                    },
                })
        })
        .collect();
    InstanceOut {
        architecture: &i.architecture,
        block_device_mappings: mappings,
        client_token: i.client_token.as_deref(),
        ebs_optimized: i.ebs_optimized,
        ena_support: true,
        hypervisor: "xen",
        iam_instance_profile: i.iam_instance_profile.as_ref().map(|p| ProfileOut {
            arn: &p.arn,
            id: &p.id,
        }),
        network_interfaces: nics,
        root_device_name: &i.root_device_name,
        root_device_type: "ebs",
        security_groups: parts.eni.map_or(&[][..], |e| e.groups.as_slice()),
        source_dest_check: parts.eni.is_none_or(|e| e.source_dest_check),
        state_reason: state_reason(i, parts.state),
        tags: parts.tags,
        virtualization_type: &i.virtualization_type,
        cpu_options: CpuOut {
            core_count: i.core_count,
            threads_per_core: i.threads_per_core,
        },
        capacity_reservation_specification: ReservationPreference {
            capacity_reservation_preference: "open",
        },
        hibernation_options: Configured {
            configured: i.hibernation,
        },
        metadata_options: MetadataOut {
            state: "applied",
            http_tokens: &i.metadata.http_tokens,
            http_put_response_hop_limit: i.metadata.http_put_response_hop_limit,
            http_endpoint: &i.metadata.http_endpoint,
            http_protocol_ipv6: &i.metadata.http_protocol_ipv6,
            instance_metadata_tags: &i.metadata.instance_metadata_tags,
        },
        enclave_options: Enabled { enabled: i.enclave },
        platform_details: &i.platform_details,
        usage_operation: &i.usage_operation,
        usage_operation_update_time: &i.launch_time,
        private_dns_name_options: DnsNameOptions {
            hostname_type: "ip-name",
            enable_resource_name_dns_a_record: false,
            enable_resource_name_dns_aaaa_record: false,
        },
        maintenance_options: Maintenance {
            auto_recovery: "default",
        },
        instance_id: &i.instance_id,
        image_id: &i.image_id,
        state: StateOut::of(parts.state),
        private_dns_name: private_dns_name(
            parts.region,
            i.private_ip_address
                .parse()
                .unwrap_or(Ipv4Addr::UNSPECIFIED),
        ),
        public_dns_name: public_ip
            .map(|ip| public_dns_name(parts.region, ip))
            .unwrap_or_default(),
        state_transition_reason: &i.state_transition_reason,
        key_name: i.key_name.as_deref(),
        ami_launch_index: i.ami_launch_index,
        product_codes: &[],
        instance_type: &i.instance_type,
        launch_time: &i.launch_time,
        placement: PlacementOut {
            group_name: i.placement_group.as_deref().unwrap_or_default(),
            partition_number: i.partition_number,
            tenancy: &i.tenancy,
            availability_zone: &i.availability_zone,
        },
        platform: i.platform.as_deref(),
        monitoring: MonitoringOut {
            state: if i.monitoring { "enabled" } else { "disabled" },
        },
        subnet_id: &i.subnet_id,
        vpc_id: &i.vpc_id,
        private_ip_address: &i.private_ip_address,
        public_ip_address: public_ip,
    }
}
