//! EC2 networking: VPCs and everything that lives in one — subnets, gateways, route tables,
//! security groups, network ACLs, interfaces, addresses, peering.

#[allow(unused_imports)]
use super::*;

pub mod addresses;
pub mod default_vpc;
pub mod dhcp;
pub mod eigw;
pub mod endpoints;
pub mod eni;
pub mod igw;
pub mod nacl;
pub mod natgw;
pub mod peering;
pub mod prefix_list;
pub mod reservations;
pub mod routes;
pub mod sg;
pub mod subnet;
pub mod vpc;
