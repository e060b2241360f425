//! Amazon EC2: the operations kumori implements so far. Every other EC2 operation is still
//! recognised by the protocol layer and answered `NotImplemented`.

pub mod access_scopes;
pub mod addresses;
pub mod common;
pub mod default_vpc;
pub mod dhcp;
pub mod eigw;
pub mod eni;
pub mod generic;
pub mod igw;
pub mod images;
pub mod instance_types;
pub mod instance_view;
pub mod instances;
pub mod keypairs;
pub mod launch_templates;
pub mod nacl;
pub mod natgw;
pub mod network_insights;
pub mod peering;
pub mod placement_groups;
pub mod prefix_list;
pub mod profile_associations;
pub mod regions;
pub mod routes;
pub mod sg;
pub mod snapshots;
pub mod subnet;
pub mod tags;
pub mod volumes;
pub mod vpc;

use crate::{Ctx, Error, Result};
use kumori_protocol::{AwsError, Output};
use serde_json::Value;

/// Runs EC2 operation `op`; `None` when kumori does not implement it.
pub async fn dispatch(ctx: &Ctx<'_>, op: &str, input: &Value) -> Option<Result<Output>> {
    // Every account meets its default VPC on its first EC2 call in a region (those about
    // regions and zones aside, which describe AWS rather than the account).
    if !matches!(op, "DescribeRegions" | "DescribeAvailabilityZones")
        && let Err(e) = default_vpc::ensure(ctx).await
    {
        return Some(Err(e));
    }
    // Large answers are written straight from typed data.
    match op {
        "DescribeSecurityGroups" => return Some(sg::describe_security_groups(ctx, input).await),
        "DescribeInstances" => return Some(instances::describe_instances(ctx, input).await),
        "DescribeInstanceTypes" => {
            return Some(instance_types::describe_instance_types(ctx, input).await);
        }
        "DescribeInstanceTypeOfferings" => {
            return Some(instance_types::describe_instance_type_offerings(ctx, input).await);
        }
        _ => {}
    }
    let value = match op {
        "CreateVpc" => vpc::create_vpc(ctx, input).await,
        "DescribeVpcs" => vpc::describe_vpcs(ctx, input).await,
        "DeleteVpc" => vpc::delete_vpc(ctx, input).await,
        "DescribeVpcAttribute" => vpc::describe_vpc_attribute(ctx, input).await,
        "ModifyVpcAttribute" => vpc::modify_vpc_attribute(ctx, input).await,
        "CreateDefaultVpc" => default_vpc::create_default_vpc(ctx, input).await,
        "CreateDefaultSubnet" => default_vpc::create_default_subnet(ctx, input).await,
        "AssociateVpcCidrBlock" => vpc::associate_vpc_cidr_block(ctx, input).await,
        "DisassociateVpcCidrBlock" => vpc::disassociate_vpc_cidr_block(ctx, input).await,
        "CreateSubnet" => subnet::create_subnet(ctx, input).await,
        "DescribeSubnets" => subnet::describe_subnets(ctx, input).await,
        "DeleteSubnet" => subnet::delete_subnet(ctx, input).await,
        "ModifySubnetAttribute" => subnet::modify_subnet_attribute(ctx, input).await,
        "CreateDhcpOptions" => dhcp::create_dhcp_options(ctx, input).await,
        "DescribeDhcpOptions" => dhcp::describe_dhcp_options(ctx, input).await,
        "DeleteDhcpOptions" => dhcp::delete_dhcp_options(ctx, input).await,
        "AssociateDhcpOptions" => dhcp::associate_dhcp_options(ctx, input).await,
        "CreateInternetGateway" => igw::create_internet_gateway(ctx, input).await,
        "DescribeInternetGateways" => igw::describe_internet_gateways(ctx, input).await,
        "AttachInternetGateway" => igw::attach_internet_gateway(ctx, input).await,
        "DetachInternetGateway" => igw::detach_internet_gateway(ctx, input).await,
        "DeleteInternetGateway" => igw::delete_internet_gateway(ctx, input).await,
        "CreateEgressOnlyInternetGateway" => {
            eigw::create_egress_only_internet_gateway(ctx, input).await
        }
        "DescribeEgressOnlyInternetGateways" => {
            eigw::describe_egress_only_internet_gateways(ctx, input).await
        }
        "DeleteEgressOnlyInternetGateway" => {
            eigw::delete_egress_only_internet_gateway(ctx, input).await
        }
        "CreateRouteTable" => routes::create_route_table(ctx, input).await,
        "DescribeRouteTables" => routes::describe_route_tables(ctx, input).await,
        "DeleteRouteTable" => routes::delete_route_table(ctx, input).await,
        "AssociateRouteTable" => routes::associate_route_table(ctx, input).await,
        "DisassociateRouteTable" => routes::disassociate_route_table(ctx, input).await,
        "ReplaceRouteTableAssociation" => routes::replace_route_table_association(ctx, input).await,
        "CreateRoute" => routes::create_route(ctx, input).await,
        "ReplaceRoute" => routes::replace_route(ctx, input).await,
        "DeleteRoute" => routes::delete_route(ctx, input).await,
        "AllocateAddress" => addresses::allocate_address(ctx, input).await,
        "DescribeAddresses" => addresses::describe_addresses(ctx, input).await,
        "DescribeAddressesAttribute" => addresses::describe_addresses_attribute(ctx, input).await,
        "AssociateAddress" => addresses::associate_address(ctx, input).await,
        "DisassociateAddress" => addresses::disassociate_address(ctx, input).await,
        "ReleaseAddress" => addresses::release_address(ctx, input).await,
        "CreateSecurityGroup" => sg::create_security_group(ctx, input).await,
        "DeleteSecurityGroup" => sg::delete_security_group(ctx, input).await,
        "AuthorizeSecurityGroupIngress" => sg::authorize_security_group_ingress(ctx, input).await,
        "AuthorizeSecurityGroupEgress" => sg::authorize_security_group_egress(ctx, input).await,
        "RevokeSecurityGroupIngress" => sg::revoke_security_group_ingress(ctx, input).await,
        "RevokeSecurityGroupEgress" => sg::revoke_security_group_egress(ctx, input).await,
        "DescribeSecurityGroupRules" => sg::describe_security_group_rules(ctx, input).await,
        "ModifySecurityGroupRules" => sg::modify_security_group_rules(ctx, input).await,
        "UpdateSecurityGroupRuleDescriptionsIngress" => {
            sg::update_security_group_rule_descriptions_ingress(ctx, input).await
        }
        "UpdateSecurityGroupRuleDescriptionsEgress" => {
            sg::update_security_group_rule_descriptions_egress(ctx, input).await
        }
        "CreateNetworkAcl" => nacl::create_network_acl(ctx, input).await,
        "DescribeNetworkAcls" => nacl::describe_network_acls(ctx, input).await,
        "DeleteNetworkAcl" => nacl::delete_network_acl(ctx, input).await,
        "CreateNetworkAclEntry" => nacl::create_network_acl_entry(ctx, input).await,
        "ReplaceNetworkAclEntry" => nacl::replace_network_acl_entry(ctx, input).await,
        "DeleteNetworkAclEntry" => nacl::delete_network_acl_entry(ctx, input).await,
        "ReplaceNetworkAclAssociation" => nacl::replace_network_acl_association(ctx, input).await,
        "DescribeNetworkInterfaces" => eni::describe_network_interfaces(ctx, input).await,
        "CreateNetworkInterface" => eni::create_network_interface(ctx, input).await,
        "AttachNetworkInterface" => eni::attach_network_interface(ctx, input).await,
        "DetachNetworkInterface" => eni::detach_network_interface(ctx, input).await,
        "AssignPrivateIpAddresses" => eni::assign_private_ip_addresses(ctx, input).await,
        "UnassignPrivateIpAddresses" => eni::unassign_private_ip_addresses(ctx, input).await,
        "DeleteNetworkInterface" => eni::delete_network_interface(ctx, input).await,
        "ModifyNetworkInterfaceAttribute" => {
            eni::modify_network_interface_attribute(ctx, input).await
        }
        "DescribeNetworkInterfaceAttribute" => {
            eni::describe_network_interface_attribute(ctx, input).await
        }
        "CreateNatGateway" => natgw::create_nat_gateway(ctx, input).await,
        "DescribeNatGateways" => natgw::describe_nat_gateways(ctx, input).await,
        "DeleteNatGateway" => natgw::delete_nat_gateway(ctx, input).await,
        "CreateVpcPeeringConnection" => peering::create_vpc_peering_connection(ctx, input).await,
        "AcceptVpcPeeringConnection" => peering::accept_vpc_peering_connection(ctx, input).await,
        "RejectVpcPeeringConnection" => peering::reject_vpc_peering_connection(ctx, input).await,
        "DeleteVpcPeeringConnection" => peering::delete_vpc_peering_connection(ctx, input).await,
        "DescribeVpcPeeringConnections" => {
            peering::describe_vpc_peering_connections(ctx, input).await
        }
        "CreateManagedPrefixList" => prefix_list::create_managed_prefix_list(ctx, input).await,
        "DescribeManagedPrefixLists" => {
            prefix_list::describe_managed_prefix_lists(ctx, input).await
        }
        "GetManagedPrefixListEntries" => {
            prefix_list::get_managed_prefix_list_entries(ctx, input).await
        }
        "ModifyManagedPrefixList" => prefix_list::modify_managed_prefix_list(ctx, input).await,
        "DeleteManagedPrefixList" => prefix_list::delete_managed_prefix_list(ctx, input).await,
        "AssociateIamInstanceProfile" => {
            profile_associations::associate_iam_instance_profile(ctx, input).await
        }
        "ReplaceIamInstanceProfileAssociation" => {
            profile_associations::replace_iam_instance_profile_association(ctx, input).await
        }
        "DisassociateIamInstanceProfile" => {
            profile_associations::disassociate_iam_instance_profile(ctx, input).await
        }
        "DescribeIamInstanceProfileAssociations" => {
            profile_associations::describe_iam_instance_profile_associations(ctx, input).await
        }
        "CreateNetworkInsightsAccessScope" => {
            access_scopes::create_network_insights_access_scope(ctx, input).await
        }
        "GetNetworkInsightsAccessScopeContent" => {
            access_scopes::get_network_insights_access_scope_content(ctx, input).await
        }
        "DescribeNetworkInsightsAccessScopes" => {
            access_scopes::describe_network_insights_access_scopes(ctx, input).await
        }
        "DeleteNetworkInsightsAccessScope" => {
            access_scopes::delete_network_insights_access_scope(ctx, input).await
        }
        "StartNetworkInsightsAccessScopeAnalysis" => {
            access_scopes::start_network_insights_access_scope_analysis(ctx, input).await
        }
        "DescribeNetworkInsightsAccessScopeAnalyses" => {
            access_scopes::describe_network_insights_access_scope_analyses(ctx, input).await
        }
        "GetNetworkInsightsAccessScopeAnalysisFindings" => {
            access_scopes::get_network_insights_access_scope_analysis_findings(ctx, input).await
        }
        "DeleteNetworkInsightsAccessScopeAnalysis" => {
            access_scopes::delete_network_insights_access_scope_analysis(ctx, input).await
        }
        "CreateNetworkInsightsPath" => {
            network_insights::create_network_insights_path(ctx, input).await
        }
        "DescribeNetworkInsightsPaths" => {
            network_insights::describe_network_insights_paths(ctx, input).await
        }
        "DeleteNetworkInsightsPath" => {
            network_insights::delete_network_insights_path(ctx, input).await
        }
        "StartNetworkInsightsAnalysis" => {
            network_insights::start_network_insights_analysis(ctx, input).await
        }
        "DescribeNetworkInsightsAnalyses" => {
            network_insights::describe_network_insights_analyses(ctx, input).await
        }
        "DeleteNetworkInsightsAnalysis" => {
            network_insights::delete_network_insights_analysis(ctx, input).await
        }
        "CreatePlacementGroup" => placement_groups::create_placement_group(ctx, input).await,
        "DescribePlacementGroups" => placement_groups::describe_placement_groups(ctx, input).await,
        "DeletePlacementGroup" => placement_groups::delete_placement_group(ctx, input).await,
        "RunInstances" => instances::run_instances(ctx, input).await,
        "StopInstances" => instances::stop_instances(ctx, input).await,
        "StartInstances" => instances::start_instances(ctx, input).await,
        "TerminateInstances" => instances::terminate_instances(ctx, input).await,
        "RebootInstances" => instances::reboot_instances(ctx, input).await,
        "MonitorInstances" => instances::monitor_instances(ctx, input).await,
        "UnmonitorInstances" => instances::unmonitor_instances(ctx, input).await,
        "DescribeInstanceCreditSpecifications" => {
            instances::describe_instance_credit_specifications(ctx, input).await
        }
        "GetPasswordData" => instances::get_password_data(ctx, input).await,
        "DescribeInstanceStatus" => instances::describe_instance_status(ctx, input).await,
        "DescribeInstanceAttribute" => instances::describe_instance_attribute(ctx, input).await,
        "ModifyInstanceAttribute" => instances::modify_instance_attribute(ctx, input).await,
        "ModifyInstanceMetadataOptions" => {
            instances::modify_instance_metadata_options(ctx, input).await
        }
        "CreateVolume" => volumes::create_volume(ctx, input).await,
        "DescribeVolumes" => volumes::describe_volumes(ctx, input).await,
        "AttachVolume" => volumes::attach_volume(ctx, input).await,
        "DetachVolume" => volumes::detach_volume(ctx, input).await,
        "DeleteVolume" => volumes::delete_volume(ctx, input).await,
        "ModifyVolume" => volumes::modify_volume(ctx, input).await,
        "DescribeVolumesModifications" => volumes::describe_volumes_modifications(ctx, input).await,
        "DescribeImages" => images::describe_images(ctx, input).await,
        "CreateImage" => images::create_image(ctx, input).await,
        "CopyImage" => images::copy_image(ctx, input).await,
        "DeregisterImage" => images::deregister_image(ctx, input).await,
        "DescribeImageAttribute" => images::describe_image_attribute(ctx, input).await,
        "ModifyImageAttribute" => images::modify_image_attribute(ctx, input).await,
        "ResetImageAttribute" => images::reset_image_attribute(ctx, input).await,
        "CreateSnapshot" => snapshots::create_snapshot(ctx, input).await,
        "CopySnapshot" => snapshots::copy_snapshot(ctx, input).await,
        "DeleteSnapshot" => snapshots::delete_snapshot(ctx, input).await,
        "DescribeSnapshots" => snapshots::describe_snapshots(ctx, input).await,
        "DescribeSnapshotAttribute" => snapshots::describe_snapshot_attribute(ctx, input).await,
        "ModifySnapshotAttribute" => snapshots::modify_snapshot_attribute(ctx, input).await,
        "ResetSnapshotAttribute" => snapshots::reset_snapshot_attribute(ctx, input).await,
        "CreateLaunchTemplate" => launch_templates::create_launch_template(ctx, input).await,
        "CreateLaunchTemplateVersion" => {
            launch_templates::create_launch_template_version(ctx, input).await
        }
        "ModifyLaunchTemplate" => launch_templates::modify_launch_template(ctx, input).await,
        "DeleteLaunchTemplate" => launch_templates::delete_launch_template(ctx, input).await,
        "DeleteLaunchTemplateVersions" => {
            launch_templates::delete_launch_template_versions(ctx, input).await
        }
        "DescribeLaunchTemplates" => launch_templates::describe_launch_templates(ctx, input).await,
        "DescribeLaunchTemplateVersions" => {
            launch_templates::describe_launch_template_versions(ctx, input).await
        }
        "GetLaunchTemplateData" => launch_templates::get_launch_template_data(ctx, input).await,
        "CreateKeyPair" => keypairs::create_key_pair(ctx, input).await,
        "ImportKeyPair" => keypairs::import_key_pair(ctx, input).await,
        "DescribeKeyPairs" => keypairs::describe_key_pairs(ctx, input).await,
        "DeleteKeyPair" => keypairs::delete_key_pair(ctx, input).await,
        "CreateTags" => tags::create_tags(ctx, input).await,
        "DeleteTags" => tags::delete_tags(ctx, input).await,
        "DescribeTags" => tags::describe_tags(ctx, input).await,
        "DescribeRegions" => regions::describe_regions(ctx, input).await,
        "DescribeAvailabilityZones" => regions::describe_availability_zones(ctx, input).await,
        "DescribeAccountAttributes" => regions::describe_account_attributes(ctx, input).await,
        _ => return None,
    };
    Some(value.map(Output::from))
}

/// The error EC2 gives for an id that names no resource, by the id's prefix.
pub fn not_found_for(id: &str) -> Error {
    match id.split_once('-').map(|(p, _)| p) {
        Some("vpc") => vpc::not_found(id),
        Some("subnet") => subnet::not_found(id),
        Some("eigw") => <eigw::EgressOnlyInternetGateway as generic::Ec2Resource>::not_found(id),
        Some("pl") => <prefix_list::ManagedPrefixList as generic::Ec2Resource>::not_found(id),
        Some("igw") => <igw::InternetGateway as generic::Ec2Resource>::not_found(id),
        Some("rtb") => <routes::RouteTable as generic::Ec2Resource>::not_found(id),
        Some("eipalloc") => <addresses::Address as generic::Ec2Resource>::not_found(id),
        Some("sg") => <sg::SecurityGroup as generic::Ec2Resource>::not_found(id),
        Some("sgr") => <sg::SgRule as generic::Ec2Resource>::not_found(id),
        Some("acl") => <nacl::NetworkAcl as generic::Ec2Resource>::not_found(id),
        Some("eni") => <eni::NetworkInterface as generic::Ec2Resource>::not_found(id),
        Some("nat") => <natgw::NatGateway as generic::Ec2Resource>::not_found(id),
        Some("pcx") => <peering::VpcPeeringConnection as generic::Ec2Resource>::not_found(id),
        Some("dopt") => <dhcp::DhcpOptions as generic::Ec2Resource>::not_found(id),
        Some("ami") => Error(AwsError::new(
            "InvalidAMIID.NotFound",
            format!("The image id '[{id}]' does not exist"),
        )),
        Some("i") => Error(AwsError::new(
            "InvalidInstanceID.NotFound",
            format!("The instance ID '{id}' does not exist"),
        )),
        Some("lt") => launch_templates::id_not_found(id),
        Some("pg") => Error(AwsError::new(
            "InvalidPlacementGroup.Unknown",
            format!("The Placement Group '{id}' is unknown."),
        )),
        Some("snap") => <snapshots::Snapshot as generic::Ec2Resource>::not_found(id),
        Some("vol") => <volumes::Volume as generic::Ec2Resource>::not_found(id),
        Some("key") => <keypairs::KeyPair as generic::Ec2Resource>::not_found(id),
        _ => Error(AwsError::new(
            "InvalidID",
            format!("The ID '{id}' is not valid"),
        )),
    }
}
