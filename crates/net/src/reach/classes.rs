//! Equivalence classes of ports: every rule matches a port range, so between two
//! consecutive rule boundaries all ports meet the same rules and get the same verdict. One
//! port per span then answers for all 65,536, which is how a question that leaves the port
//! open is decided with the one-packet evaluator.

use super::model::Network;
use std::collections::BTreeSet;

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

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

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
