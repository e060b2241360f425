//! The three kinds of rule a packet meets, each deciding one packet: security groups
//! (allow-only, any rule of any group on the interface), network ACLs (ordered, first match
//! decides) and route tables (longest prefix wins).

use super::index::Index;
use super::model::{AclRule, Peer, Protocol, Route, RouteTable, SgRule};
use std::net::Ipv4Addr;

/// Which way a rule faces, from the interface's or subnet's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }
}

/// Whether security-group rule `r` lets a packet of `protocol` to `port` through with
/// `peer` on the far side (the source going in, the destination going out).
pub fn sg_rule_matches(
    ix: &Index<'_>,
    r: &SgRule,
    protocol: Protocol,
    port: u16,
    peer: Ipv4Addr,
) -> bool {
    if !r.protocol.matches(protocol) {
        return false;
    }
    if r.protocol.has_ports() && !r.ports.contains(port) {
        return false;
    }
    match &r.peer {
        Peer::Cidr(c) => c.contains(&peer),
        Peer::PrefixList(_, entries) => entries.iter().any(|c| c.contains(&peer)),
        // A group names the private addresses of the interfaces that carry it.
        Peer::Group(g) => ix.in_group(g, peer),
    }
}

/// The first rule (group id, rule) among `groups` that lets the packet through, if any.
pub fn sg_allows<'n>(
    ix: &Index<'n>,
    groups: &[String],
    direction: Direction,
    protocol: Protocol,
    port: u16,
    peer: Ipv4Addr,
) -> Option<(&'n str, &'n SgRule)> {
    for g in groups {
        let Some(group) = ix.net.security_groups.get(g) else {
            continue;
        };
        let rules = match direction {
            Direction::Ingress => &group.ingress,
            Direction::Egress => &group.egress,
        };
        if let Some(r) = rules
            .iter()
            .find(|r| sg_rule_matches(ix, r, protocol, port, peer))
        {
            return Some((group.id.as_str(), r));
        }
    }
    None
}

/// The rule that decides a packet at a network ACL: the lowest-numbered one that matches.
/// `None` means no rule matched, which the ACL's catch-all `*` denies.
pub fn acl_decides(
    rules: &[AclRule],
    protocol: Protocol,
    port: u16,
    peer: Ipv4Addr,
) -> Option<&AclRule> {
    rules.iter().find(|r| {
        r.protocol.matches(protocol)
            && (!r.protocol.has_ports() || r.ports.contains(port))
            && r.cidr.contains(&peer)
    })
}

/// Why an internet gateway will not send a packet to `destination` out to the internet:
/// private (RFC 1918) addresses are not on it (Reachability Analyzer's code). AWS says the
/// same of shared addresses (RFC 6598, 100.64.0.0/10), but kumori's AWS-managed prefix
/// lists (S3, DynamoDB) live there, so those are let out as the services' addresses.
pub fn not_on_the_internet(destination: Ipv4Addr) -> Option<&'static str> {
    destination
        .is_private()
        .then_some("IGW_DESTINATION_ADDRESS_NOT_IN_RFC1918_EGRESS")
}

/// The route `table` uses for `destination`: the most specific one that contains it.
pub fn route_for(table: &RouteTable, destination: Ipv4Addr) -> Option<&Route> {
    table
        .routes
        .iter()
        .filter(|r| r.destination.contains(&destination))
        .max_by_key(|r| r.destination.prefix_len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reach::model::{Ports, ProtocolMatch, Target};

    fn net(s: &str) -> ipnet::Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn longest_prefix_wins_and_a_blackhole_is_still_chosen() {
        let table = RouteTable {
            id: "rtb-1".into(),
            vpc_id: "vpc-1".into(),
            routes: vec![
                Route {
                    destination: net("10.0.0.0/16"),
                    prefix_list_id: None,
                    target: Target::Local,
                    blackhole: false,
                },
                Route {
                    destination: net("0.0.0.0/0"),
                    prefix_list_id: None,
                    target: Target::InternetGateway("igw-1".into()),
                    blackhole: false,
                },
                Route {
                    destination: net("203.0.113.0/24"),
                    prefix_list_id: None,
                    target: Target::NatGateway("nat-1".into()),
                    blackhole: true,
                },
            ],
        };
        let r = |ip: &str| route_for(&table, ip.parse().unwrap()).map(|r| r.destination);
        assert_eq!(r("10.0.3.4"), Some(net("10.0.0.0/16")));
        assert_eq!(r("8.8.8.8"), Some(net("0.0.0.0/0")));
        assert_eq!(r("203.0.113.5"), Some(net("203.0.113.0/24")));
    }

    #[test]
    fn acl_first_match_decides() {
        let rule = |number, allow, cidr: &str, ports| AclRule {
            number,
            protocol: ProtocolMatch::Number(6),
            ports,
            cidr: net(cidr),
            allow,
        };
        let rules = vec![
            rule(100, false, "203.0.113.5/32", Ports::ALL),
            rule(200, true, "0.0.0.0/0", Ports::one(22)),
        ];
        let ip = |s: &str| s.parse().unwrap();
        assert!(
            !acl_decides(&rules, Protocol::Tcp, 22, ip("203.0.113.5"))
                .unwrap()
                .allow
        );
        assert!(
            acl_decides(&rules, Protocol::Tcp, 22, ip("198.51.100.1"))
                .unwrap()
                .allow
        );
        assert!(acl_decides(&rules, Protocol::Tcp, 80, ip("198.51.100.1")).is_none());
        assert!(acl_decides(&rules, Protocol::Udp, 22, ip("198.51.100.1")).is_none());
    }

    #[test]
    fn private_and_shared_addresses_are_not_on_the_internet() {
        let code = |a: &str| not_on_the_internet(a.parse().unwrap());
        assert_eq!(
            code("10.0.1.10"),
            Some("IGW_DESTINATION_ADDRESS_NOT_IN_RFC1918_EGRESS")
        );
        assert_eq!(
            code("172.31.0.5"),
            Some("IGW_DESTINATION_ADDRESS_NOT_IN_RFC1918_EGRESS")
        );
        assert_eq!(code("100.64.0.1"), None);
        assert_eq!(code("203.0.113.5"), None);
    }
}
