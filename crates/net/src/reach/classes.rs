//! Equivalence classes of ports and of addresses: every rule matches a port range or an
//! address block, so between two consecutive boundaries all ports (or addresses) meet the
//! same rules and get the same verdict. One per span then answers for all of them, which is
//! how a question that leaves the port or the internet address open is decided with the
//! one-packet evaluator.

use super::model::{Network, Peer};
use std::collections::BTreeSet;
use std::net::Ipv4Addr;

/// The first port of every span over which no rule of `net` changes its verdict.
pub fn port_spans(net: &Network) -> BTreeSet<u16> {
    let mut starts: BTreeSet<u16> = [0u16].into_iter().collect();
    let mut add = |from: u16, to: u16| {
        starts.insert(from);
        if let Some(next) = to.checked_add(1) {
            starts.insert(next);
        }
    };
    for g in net.security_groups.values() {
        for r in g.ingress.iter().chain(&g.egress) {
            add(r.ports.from, r.ports.to);
        }
    }
    for a in net.network_acls.values() {
        for r in a.ingress.iter().chain(&a.egress) {
            add(r.ports.from, r.ports.to);
        }
    }
    // Replies go to the ephemeral port, which rules treat like any other port: it is fixed
    // in the packet, so it needs no span of its own.
    starts
}

/// The port that stands for `port`: the start of its span.
pub fn representative(spans: &BTreeSet<u16>, port: u16) -> u16 {
    spans.range(..=port).next_back().copied().unwrap_or(0)
}

/// The first address of every span of the IPv4 space over which no block the network
/// speaks of (VPCs, routes, security-group peers, ACL rules) begins or ends: two addresses
/// of one span are inside exactly the same blocks, so they meet every rule alike.
pub fn address_spans(net: &Network) -> BTreeSet<Ipv4Addr> {
    let mut starts: BTreeSet<Ipv4Addr> = [Ipv4Addr::UNSPECIFIED].into_iter().collect();
    let mut add = |c: &ipnet::Ipv4Net| {
        starts.insert(c.network());
        if let Some(next) = u32::from(c.broadcast()).checked_add(1) {
            starts.insert(Ipv4Addr::from(next));
        }
    };
    for v in net.vpcs.values() {
        v.cidrs.iter().for_each(&mut add);
    }
    for t in net.route_tables.values() {
        t.routes.iter().for_each(|r| add(&r.destination));
    }
    for g in net.security_groups.values() {
        for r in g.ingress.iter().chain(&g.egress) {
            match &r.peer {
                Peer::Cidr(c) => add(c),
                Peer::PrefixList(_, entries) => entries.iter().for_each(&mut add),
                Peer::Group(_) => {}
            }
        }
    }
    for a in net.network_acls.values() {
        for r in a.ingress.iter().chain(&a.egress) {
            add(&r.cidr);
        }
    }
    starts
}

/// Blocks no packet from the internet comes from: "this network", RFC 1918, shared address
/// space (RFC 6598), loopback, link-local, multicast and reserved.
const NOT_INTERNET: &[(u8, u8, u8, u8, u8)] = &[
    (0, 0, 0, 0, 8),
    (10, 0, 0, 0, 8),
    (100, 64, 0, 0, 10),
    (127, 0, 0, 0, 8),
    (169, 254, 0, 0, 16),
    (172, 16, 0, 0, 12),
    (192, 168, 0, 0, 16),
    (224, 0, 0, 0, 3),
];

/// One internet address per address span that holds any (the first one not in a block
/// the internet does not send from): the sources a question "from the internet" needs.
pub fn internet_representatives(net: &Network) -> Vec<Ipv4Addr> {
    let blocks: Vec<ipnet::Ipv4Net> = NOT_INTERNET
        .iter()
        .map(|(a, b, c, d, len)| {
            ipnet::Ipv4Net::new(Ipv4Addr::new(*a, *b, *c, *d), *len).expect("a valid block")
        })
        .collect();
    let starts: Vec<u32> = address_spans(net).into_iter().map(u32::from).collect();
    let mut out = Vec::new();
    for (i, start) in starts.iter().enumerate() {
        let end = starts
            .get(i + 1)
            .copied()
            .map_or(u64::from(u32::MAX) + 1, u64::from);
        let mut at = u64::from(*start);
        // Step over the blocks the internet does not send from.
        while at < end {
            let ip = Ipv4Addr::from(at as u32);
            match blocks.iter().find(|b| b.contains(&ip)) {
                Some(b) => at = u64::from(u32::from(b.broadcast())) + 1,
                None => {
                    out.push(ip);
                    break;
                }
            }
        }
    }
    out
}

/// The address that stands for `ip`: the start of its span.
pub fn representative_address(spans: &BTreeSet<Ipv4Addr>, ip: Ipv4Addr) -> Ipv4Addr {
    spans
        .range(..=ip)
        .next_back()
        .copied()
        .unwrap_or(Ipv4Addr::UNSPECIFIED)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reach::model::*;
    use crate::reach::trace::{Endpoint, trace};
    use proptest::prelude::*;

    fn cidr(i: u8) -> ipnet::Ipv4Net {
        // A few overlapping blocks: the internet, a /8, a host, the VPC.
        ["0.0.0.0/0", "203.0.0.0/8", "203.0.113.5/32", "10.0.0.0/16"][i as usize % 4]
            .parse()
            .unwrap()
    }

    fn protocol(i: u8) -> ProtocolMatch {
        [
            ProtocolMatch::All,
            ProtocolMatch::Number(6),
            ProtocolMatch::Number(17),
        ][i as usize % 3]
    }

    fn ports(a: u16, b: u16) -> Ports {
        Ports {
            from: a.min(b),
            to: a.max(b),
        }
    }

    prop_compose! {
        fn sg_rule(n: usize)(p in 0u8..3, a in 0u16..2000, b in 0u16..2000, c in 0u8..4) -> SgRule {
            SgRule { id: format!("sgr-{n}"), protocol: protocol(p), ports: ports(a, b), peer: Peer::Cidr(cidr(c)) }
        }
    }

    prop_compose! {
        fn acl_rule()(number in 1u16..200, p in 0u8..3, a in 0u16..2000, b in 0u16..2000,
                      c in 0u8..4, allow in any::<bool>()) -> AclRule {
            AclRule { number, protocol: protocol(p), ports: ports(a, b), cidr: cidr(c), allow }
        }
    }

    /// One VPC, a public and a private subnet, two interfaces, random rules.
    fn network(
        sg_in: Vec<SgRule>,
        sg_out: Vec<SgRule>,
        mut acl_in: Vec<AclRule>,
        mut acl_out: Vec<AclRule>,
    ) -> Network {
        let mut n = Network::default();
        n.vpcs.insert(
            "vpc-1".into(),
            Vpc {
                id: "vpc-1".into(),
                cidrs: vec!["10.0.0.0/16".parse().unwrap()],
            },
        );
        n.internet_gateways.insert(
            "igw-1".into(),
            InternetGateway {
                id: "igw-1".into(),
                vpc_id: Some("vpc-1".into()),
            },
        );
        for (s, c) in [("subnet-a", "10.0.1.0/24"), ("subnet-b", "10.0.2.0/24")] {
            n.subnets.insert(
                s.into(),
                Subnet {
                    id: s.into(),
                    vpc_id: "vpc-1".into(),
                    cidr: c.parse().unwrap(),
                    route_table_id: "rtb-1".into(),
                    network_acl_id: if s == "subnet-a" { "acl-a" } else { "acl-b" }.into(),
                },
            );
        }
        n.route_tables.insert(
            "rtb-1".into(),
            RouteTable {
                id: "rtb-1".into(),
                vpc_id: "vpc-1".into(),
                routes: vec![
                    Route {
                        destination: "10.0.0.0/16".parse().unwrap(),
                        prefix_list_id: None,
                        target: Target::Local,
                        blackhole: false,
                    },
                    Route {
                        destination: "0.0.0.0/0".parse().unwrap(),
                        prefix_list_id: None,
                        target: Target::InternetGateway("igw-1".into()),
                        blackhole: false,
                    },
                ],
            },
        );
        acl_in.sort_by_key(|r| r.number);
        acl_out.sort_by_key(|r| r.number);
        n.network_acls.insert(
            "acl-a".into(),
            NetworkAcl {
                id: "acl-a".into(),
                vpc_id: "vpc-1".into(),
                ingress: acl_in.clone(),
                egress: acl_out.clone(),
            },
        );
        n.network_acls.insert(
            "acl-b".into(),
            NetworkAcl {
                id: "acl-b".into(),
                vpc_id: "vpc-1".into(),
                ingress: acl_in,
                egress: acl_out,
            },
        );
        n.security_groups.insert(
            "sg-1".into(),
            SecurityGroup {
                id: "sg-1".into(),
                name: "one".into(),
                vpc_id: "vpc-1".into(),
                ingress: sg_in,
                egress: sg_out,
            },
        );
        for (e, s, ip, public) in [
            ("eni-a", "subnet-a", "10.0.1.5", Some("198.18.0.5")),
            ("eni-b", "subnet-b", "10.0.2.5", None),
        ] {
            n.interfaces.insert(
                e.into(),
                Interface {
                    id: e.into(),
                    subnet_id: s.into(),
                    vpc_id: "vpc-1".into(),
                    private_ips: vec![ip.parse().unwrap()],
                    public_ip: public.map(|p| p.parse().unwrap()),
                    groups: vec!["sg-1".into()],
                    source_dest_check: true,
                    owner: Owner::Other,
                },
            );
        }
        n
    }

    #[test]
    fn internet_representatives_skip_private_space() {
        let n = network(vec![], vec![], vec![], vec![]);
        let reps = internet_representatives(&n);
        // The VPC's block and the default route split the space; none of the addresses
        // chosen is private or reserved.
        assert!(!reps.is_empty());
        assert!(
            reps.iter()
                .all(|ip| !ip.is_private() && !ip.is_loopback() && !ip.is_unspecified())
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Every internet address gets the verdict of its span's first address.
        #[test]
        fn an_address_span_decides_like_its_first_address(
            sg_in in proptest::collection::vec(sg_rule(1), 0..4),
            acl_in in proptest::collection::vec(acl_rule(), 0..4),
            acl_out in proptest::collection::vec(acl_rule(), 0..4),
            // Anywhere, and often inside or at the edges of the blocks the rules name.
            source in prop_oneof![
                any::<u32>(),
                (0u32..256).prop_map(|x| u32::from(Ipv4Addr::new(203, 0, 113, 0)) + x),
                any::<u16>().prop_map(|x| u32::from(Ipv4Addr::new(203, 0, 0, 0)) + u32::from(x) * 256),
                (0u32..4).prop_map(|x| u32::from(Ipv4Addr::new(204, 0, 0, 0)) - 2 + x),
            ],
            port in 0u16..2100,
            to_public in any::<bool>(),
        ) {
            let n = network(sg_in, vec![], acl_in, acl_out);
            let spans = address_spans(&n);
            let source = Ipv4Addr::from(source);
            let to = if to_public { Endpoint::Interface("eni-a".into()) } else { Endpoint::Interface("eni-b".into()) };
            let here = trace(&n, &Endpoint::Address(source), &to, Protocol::Tcp, port);
            let there = trace(&n, &Endpoint::Address(representative_address(&spans, source)), &to, Protocol::Tcp, port);
            prop_assert_eq!(here.reachable, there.reachable);
            prop_assert_eq!(
                here.explanations.first().map(|e| e.code),
                there.explanations.first().map(|e| e.code)
            );
        }

        /// Every port gets the verdict of its span's first port, whatever the rules.
        #[test]
        fn a_span_decides_like_its_first_port(
            sg_in in proptest::collection::vec(sg_rule(1), 0..4),
            sg_out in proptest::collection::vec(sg_rule(2), 0..3),
            acl_in in proptest::collection::vec(acl_rule(), 0..4),
            acl_out in proptest::collection::vec(acl_rule(), 0..4),
            port in 0u16..2100,
            udp in any::<bool>(),
            path in 0u8..3,
        ) {
            let n = network(sg_in, sg_out, acl_in, acl_out);
            let spans = port_spans(&n);
            let p = if udp { Protocol::Udp } else { Protocol::Tcp };
            let (from, to) = match path {
                0 => (Endpoint::Address("203.0.113.5".parse().unwrap()), Endpoint::Interface("eni-a".into())),
                1 => (Endpoint::Interface("eni-a".into()), Endpoint::Interface("eni-b".into())),
                _ => (Endpoint::Interface("eni-a".into()), Endpoint::Address("203.0.113.5".parse().unwrap())),
            };
            let here = trace(&n, &from, &to, p, port);
            let there = trace(&n, &from, &to, p, representative(&spans, port));
            prop_assert_eq!(here.reachable, there.reachable);
            prop_assert_eq!(
                here.explanations.first().map(|e| (e.code, e.component.clone())),
                there.explanations.first().map(|e| (e.code, e.component.clone()))
            );
        }
    }
}
