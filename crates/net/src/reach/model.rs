//! A snapshot of the networks of one account and region, as the reachability rules need it:
//! plain data with ids as AWS names them, built by the services layer from stored resources
//! and never changed while it is read.

use ipnet::Ipv4Net;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// IP protocols the rules speak of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Icmp,
}

impl Protocol {
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Icmp => 1,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Icmp => "icmp",
        }
    }
}

/// What a rule says about protocols: all of them (`-1`), or one by number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolMatch {
    All,
    Number(u8),
}

impl ProtocolMatch {
    pub fn matches(self, p: Protocol) -> bool {
        match self {
            ProtocolMatch::All => true,
            ProtocolMatch::Number(n) => n == p.number(),
        }
    }
    /// Whether ports mean anything for packets this rule matches (TCP and UDP).
    pub fn has_ports(self) -> bool {
        matches!(self, ProtocolMatch::Number(6) | ProtocolMatch::Number(17))
    }
}

/// An inclusive port range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    pub from: u16,
    pub to: u16,
}

impl Ports {
    pub const ALL: Ports = Ports { from: 0, to: 65535 };
    pub fn one(p: u16) -> Ports {
        Ports { from: p, to: p }
    }
    pub fn contains(self, p: u16) -> bool {
        (self.from..=self.to).contains(&p)
    }
}

/// The ephemeral ports clients answer on; a network ACL must let them through for return
/// traffic (AWS recommends 1024-65535).
pub const EPHEMERAL_PORT: u16 = 49152;

#[derive(Debug, Clone)]
pub struct Vpc {
    pub id: String,
    pub cidrs: Vec<Ipv4Net>,
}

#[derive(Debug, Clone)]
pub struct Subnet {
    pub id: String,
    pub vpc_id: String,
    pub cidr: Ipv4Net,
    /// The route table in force: the subnet's own association or the VPC's main table.
    pub route_table_id: String,
    pub network_acl_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Inside the VPC.
    Local,
    InternetGateway(String),
    NatGateway(String),
    Peering(String),
    /// A network interface (an instance's, say), used as an appliance.
    Interface(String),
    EgressOnlyInternetGateway(String),
    /// A gateway VPC endpoint (S3, DynamoDB): its routes come from the service's prefix list,
    /// so a packet that takes one has arrived at the service.
    GatewayEndpoint(String),
    /// Something kumori does not model for reachability (a gateway of another kind).
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub destination: Ipv4Net,
    /// Where a prefix-list route came from (its entries are expanded into destinations).
    pub prefix_list_id: Option<String>,
    pub target: Target,
    /// A route whose target is gone.
    pub blackhole: bool,
}

#[derive(Debug, Clone)]
pub struct RouteTable {
    pub id: String,
    pub vpc_id: String,
    pub routes: Vec<Route>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclRule {
    /// Evaluated in increasing order; the catch-all deny is 32767 (`*`).
    pub number: u16,
    pub protocol: ProtocolMatch,
    pub ports: Ports,
    pub cidr: Ipv4Net,
    pub allow: bool,
}

#[derive(Debug, Clone)]
pub struct NetworkAcl {
    pub id: String,
    pub vpc_id: String,
    /// Sorted by rule number, the catch-all deny last.
    pub ingress: Vec<AclRule>,
    pub egress: Vec<AclRule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    Cidr(Ipv4Net),
    /// Members of a security group (of this VPC or a peered one).
    Group(String),
    /// A prefix list, by id, with its entries.
    PrefixList(String, Vec<Ipv4Net>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SgRule {
    /// The `sgr-` id.
    pub id: String,
    pub protocol: ProtocolMatch,
    pub ports: Ports,
    pub peer: Peer,
}

#[derive(Debug, Clone)]
pub struct SecurityGroup {
    pub id: String,
    pub name: String,
    pub vpc_id: String,
    pub ingress: Vec<SgRule>,
    pub egress: Vec<SgRule>,
}

/// What owns an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Instance(String),
    NatGateway(String),
    Other,
}

#[derive(Debug, Clone)]
pub struct Interface {
    pub id: String,
    pub subnet_id: String,
    pub vpc_id: String,
    /// The primary address first.
    pub private_ips: Vec<Ipv4Addr>,
    /// The public (or Elastic) address the internet gateway maps to the primary address.
    pub public_ip: Option<Ipv4Addr>,
    pub groups: Vec<String>,
    pub source_dest_check: bool,
    pub owner: Owner,
}

impl Interface {
    pub fn primary_ip(&self) -> Ipv4Addr {
        self.private_ips
            .first()
            .copied()
            .unwrap_or(Ipv4Addr::UNSPECIFIED)
    }
}

#[derive(Debug, Clone)]
pub struct InternetGateway {
    pub id: String,
    /// The VPC it is attached to, if any.
    pub vpc_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NatGateway {
    pub id: String,
    pub subnet_id: String,
    pub interface_id: String,
    pub private_ip: Ipv4Addr,
    /// Public NAT gateways have an Elastic IP; private ones do not.
    pub public_ip: Option<Ipv4Addr>,
}

#[derive(Debug, Clone)]
pub struct Peering {
    pub id: String,
    pub requester_vpc_id: String,
    pub accepter_vpc_id: String,
    /// Only an active peering carries traffic.
    pub active: bool,
}

impl Peering {
    /// The VPC at the other end from `vpc_id`.
    pub fn other_end(&self, vpc_id: &str) -> Option<&str> {
        if self.requester_vpc_id == vpc_id {
            Some(&self.accepter_vpc_id)
        } else if self.accepter_vpc_id == vpc_id {
            Some(&self.requester_vpc_id)
        } else {
            None
        }
    }
}

/// Everything, by id.
#[derive(Debug, Clone, Default)]
pub struct Network {
    pub vpcs: BTreeMap<String, Vpc>,
    pub subnets: BTreeMap<String, Subnet>,
    pub route_tables: BTreeMap<String, RouteTable>,
    pub network_acls: BTreeMap<String, NetworkAcl>,
    pub security_groups: BTreeMap<String, SecurityGroup>,
    pub interfaces: BTreeMap<String, Interface>,
    pub internet_gateways: BTreeMap<String, InternetGateway>,
    pub nat_gateways: BTreeMap<String, NatGateway>,
    pub peerings: BTreeMap<String, Peering>,
}

impl Network {
    /// The interface holding private address `ip` in `vpc_id`.
    pub fn interface_at(&self, vpc_id: &str, ip: Ipv4Addr) -> Option<&Interface> {
        self.interfaces
            .values()
            .find(|e| e.vpc_id == vpc_id && e.private_ips.contains(&ip))
    }
    /// The interface whose public address is `ip`.
    pub fn interface_with_public(&self, ip: Ipv4Addr) -> Option<&Interface> {
        self.interfaces.values().find(|e| e.public_ip == Some(ip))
    }
    /// Whether `ip` is inside one of `vpc_id`'s CIDR blocks.
    pub fn in_vpc(&self, vpc_id: &str, ip: Ipv4Addr) -> bool {
        self.vpcs
            .get(vpc_id)
            .is_some_and(|v| v.cidrs.iter().any(|c| c.contains(&ip)))
    }
    /// The internet gateway attached to `vpc_id`.
    pub fn gateway_of(&self, vpc_id: &str) -> Option<&InternetGateway> {
        self.internet_gateways
            .values()
            .find(|g| g.vpc_id.as_deref() == Some(vpc_id))
    }
}
