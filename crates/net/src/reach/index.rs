//! Lookups a walk makes at every hop, built once per snapshot: which interface holds an
//! address, which has a public address, which gateway a VPC has, which addresses a
//! security group's members hold. Scanning for them instead makes a sweep over ten
//! thousand interfaces quadratic.

use super::model::{Interface, InternetGateway, Network};
use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

pub struct Index<'n> {
    pub net: &'n Network,
    private: HashMap<(&'n str, Ipv4Addr), &'n Interface>,
    public: HashMap<Ipv4Addr, &'n Interface>,
    gateways: HashMap<&'n str, &'n InternetGateway>,
    members: HashMap<&'n str, HashSet<Ipv4Addr>>,
}

impl<'n> Index<'n> {
    pub fn new(net: &'n Network) -> Index<'n> {
        let mut ix = Index {
            net,
            private: HashMap::new(),
            public: HashMap::new(),
            gateways: HashMap::new(),
            members: HashMap::new(),
        };
        for e in net.interfaces.values() {
            for ip in &e.private_ips {
                ix.private.insert((e.vpc_id.as_str(), *ip), e);
            }
            if let Some(p) = e.public_ip {
                ix.public.insert(p, e);
            }
            for g in &e.groups {
                ix.members
                    .entry(g.as_str())
                    .or_default()
                    .extend(e.private_ips.iter().copied());
            }
        }
        for g in net.internet_gateways.values() {
            if let Some(v) = &g.vpc_id {
                ix.gateways.insert(v.as_str(), g);
            }
        }
        ix
    }
    /// The interface holding private address `ip` in `vpc_id`.
    pub fn interface_at(&self, vpc_id: &str, ip: Ipv4Addr) -> Option<&'n Interface> {
        self.private.get(&(vpc_id, ip)).copied()
    }
    /// The interface whose public address is `ip`.
    pub fn interface_with_public(&self, ip: Ipv4Addr) -> Option<&'n Interface> {
        self.public.get(&ip).copied()
    }
    /// The internet gateway attached to `vpc_id`.
    pub fn gateway_of(&self, vpc_id: &str) -> Option<&'n InternetGateway> {
        self.gateways.get(vpc_id).copied()
    }
    /// Whether `ip` is a private address of an interface in security group `group`.
    pub fn in_group(&self, group: &str, ip: Ipv4Addr) -> bool {
        self.members.get(group).is_some_and(|m| m.contains(&ip))
    }
}
