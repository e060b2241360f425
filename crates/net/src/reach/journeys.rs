//! The journeys of the scenarios as tests of the reference evaluator: the classic layout
//! (bastion in a public subnet, web servers and a database in private ones, a NAT gateway),
//! then the ways it breaks.

use super::model::*;
use super::rules::Direction;
use super::trace::{Endpoint, HopKind, Verdict, trace};
use std::net::Ipv4Addr;

fn net(s: &str) -> ipnet::Ipv4Net {
    s.parse().unwrap()
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn route(dest: &str, target: Target) -> Route {
    Route {
        destination: net(dest),
        prefix_list_id: None,
        target,
        blackhole: false,
    }
}

fn allow_all(number: u16) -> AclRule {
    AclRule {
        number,
        protocol: ProtocolMatch::All,
        ports: Ports::ALL,
        cidr: net("0.0.0.0/0"),
        allow: true,
    }
}

fn tcp(id: &str, ports: Ports, peer: Peer) -> SgRule {
    SgRule {
        id: id.into(),
        protocol: ProtocolMatch::Number(6),
        ports,
        peer,
    }
}

fn all_out(id: &str) -> SgRule {
    SgRule {
        id: id.into(),
        protocol: ProtocolMatch::All,
        ports: Ports::ALL,
        peer: Peer::Cidr(net("0.0.0.0/0")),
    }
}

fn group(id: &str, vpc: &str, ingress: Vec<SgRule>) -> SecurityGroup {
    SecurityGroup {
        id: id.into(),
        name: id.trim_start_matches("sg-").into(),
        vpc_id: vpc.into(),
        ingress,
        egress: vec![all_out(&format!("sgr-{id}-out"))],
    }
}

fn eni(
    id: &str,
    subnet: &str,
    vpc: &str,
    private: &str,
    public: Option<&str>,
    groups: &[&str],
) -> Interface {
    Interface {
        id: id.into(),
        subnet_id: subnet.into(),
        vpc_id: vpc.into(),
        private_ips: vec![ip(private)],
        public_ip: public.map(ip),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        source_dest_check: true,
        owner: Owner::Instance(format!("i-{}", id.trim_start_matches("eni-"))),
    }
}

fn subnet(id: &str, vpc: &str, cidr: &str, rtb: &str, acl: &str) -> Subnet {
    Subnet {
        id: id.into(),
        vpc_id: vpc.into(),
        cidr: net(cidr),
        route_table_id: rtb.into(),
        network_acl_id: acl.into(),
    }
}

/// VPC 10.0.0.0/16 with an internet gateway; a public subnet (bastion, NAT gateway) and
/// private ones for the web server and the database; "my IP" is 203.0.113.5.
fn classic() -> Network {
    let mut n = Network::default();
    n.vpcs.insert(
        "vpc-1".into(),
        Vpc {
            id: "vpc-1".into(),
            cidrs: vec![net("10.0.0.0/16")],
        },
    );
    n.internet_gateways.insert(
        "igw-1".into(),
        InternetGateway {
            id: "igw-1".into(),
            vpc_id: Some("vpc-1".into()),
        },
    );
    for s in [
        subnet(
            "subnet-public",
            "vpc-1",
            "10.0.1.0/24",
            "rtb-public",
            "acl-1",
        ),
        subnet(
            "subnet-web",
            "vpc-1",
            "10.0.11.0/24",
            "rtb-private",
            "acl-1",
        ),
        subnet("subnet-db", "vpc-1", "10.0.21.0/24", "rtb-private", "acl-1"),
    ] {
        n.subnets.insert(s.id.clone(), s);
    }
    n.route_tables.insert(
        "rtb-public".into(),
        RouteTable {
            id: "rtb-public".into(),
            vpc_id: "vpc-1".into(),
            routes: vec![
                route("10.0.0.0/16", Target::Local),
                route("0.0.0.0/0", Target::InternetGateway("igw-1".into())),
            ],
        },
    );
    n.route_tables.insert(
        "rtb-private".into(),
        RouteTable {
            id: "rtb-private".into(),
            vpc_id: "vpc-1".into(),
            routes: vec![
                route("10.0.0.0/16", Target::Local),
                route("0.0.0.0/0", Target::NatGateway("nat-1".into())),
            ],
        },
    );
    n.network_acls.insert(
        "acl-1".into(),
        NetworkAcl {
            id: "acl-1".into(),
            vpc_id: "vpc-1".into(),
            ingress: vec![allow_all(100)],
            egress: vec![allow_all(100)],
        },
    );
    for g in [
        group(
            "sg-bastion",
            "vpc-1",
            vec![tcp(
                "sgr-ssh-me",
                Ports::one(22),
                Peer::Cidr(net("203.0.113.5/32")),
            )],
        ),
        group(
            "sg-web",
            "vpc-1",
            vec![tcp(
                "sgr-ssh-bastion",
                Ports::one(22),
                Peer::Group("sg-bastion".into()),
            )],
        ),
        group(
            "sg-db",
            "vpc-1",
            vec![tcp(
                "sgr-mysql-web",
                Ports::one(3306),
                Peer::Group("sg-web".into()),
            )],
        ),
    ] {
        n.security_groups.insert(g.id.clone(), g);
    }
    for e in [
        eni(
            "eni-bastion",
            "subnet-public",
            "vpc-1",
            "10.0.1.5",
            Some("198.18.0.5"),
            &["sg-bastion"],
        ),
        eni(
            "eni-web",
            "subnet-web",
            "vpc-1",
            "10.0.11.5",
            None,
            &["sg-web"],
        ),
        eni(
            "eni-db",
            "subnet-db",
            "vpc-1",
            "10.0.21.5",
            None,
            &["sg-db"],
        ),
    ] {
        n.interfaces.insert(e.id.clone(), e);
    }
    n.nat_gateways.insert(
        "nat-1".into(),
        NatGateway {
            id: "nat-1".into(),
            subnet_id: "subnet-public".into(),
            interface_id: "eni-nat".into(),
            private_ip: ip("10.0.1.10"),
            public_ip: Some(ip("198.18.0.10")),
        },
    );
    n
}

fn from_eni(id: &str) -> Endpoint {
    Endpoint::Interface(id.into())
}

fn addr(s: &str) -> Endpoint {
    Endpoint::Address(ip(s))
}

fn blocked_by(v: &Verdict) -> (&'static str, &str, Option<Direction>) {
    assert!(!v.reachable, "expected a blocked path, got {v:#?}");
    let e = &v.explanations[0];
    (e.code, e.component.as_str(), e.direction)
}

fn passes(v: &Verdict, component: &str) -> bool {
    v.forward
        .iter()
        .chain(&v.ret)
        .any(|h| h.component == component)
}

#[test]
fn ssh_from_my_ip_reaches_the_bastion_and_comes_back() {
    let n = classic();
    let v = trace(
        &n,
        &addr("203.0.113.5"),
        &from_eni("eni-bastion"),
        Protocol::Tcp,
        22,
    );
    assert!(v.reachable, "{v:#?}");
    // In through the gateway (which maps the public address to the private one), the ACL
    // and the group; back through the ACL, the route to the gateway, and the gateway.
    let kinds: Vec<&HopKind> = v.forward.iter().map(|h| &h.kind).collect();
    assert!(matches!(kinds[0], HopKind::Internet));
    assert!(matches!(kinds[1], HopKind::InternetGateway));
    assert_eq!(v.forward[1].header.destination, ip("10.0.1.5"));
    assert!(passes(&v, "sg-bastion") && passes(&v, "acl-1"));
    assert!(v.ret.iter().any(|h| h.component == "rtb-public"));
    let last = v.ret.last().unwrap();
    assert_eq!(
        (last.component.as_str(), last.header.source),
        ("igw-1", ip("198.18.0.5"))
    );
}

#[test]
fn ssh_from_any_other_address_is_refused_by_the_security_group() {
    let n = classic();
    let v = trace(
        &n,
        &addr("198.51.100.7"),
        &from_eni("eni-bastion"),
        Protocol::Tcp,
        22,
    );
    assert_eq!(
        blocked_by(&v),
        (
            "ENI_SG_RULES_MISMATCH",
            "eni-bastion",
            Some(Direction::Ingress)
        )
    );
}

#[test]
fn a_private_web_server_cannot_be_reached_from_the_internet() {
    let n = classic();
    let v = trace(
        &n,
        &addr("203.0.113.5"),
        &from_eni("eni-web"),
        Protocol::Tcp,
        22,
    );
    assert_eq!(blocked_by(&v).0, "IGW_PRIVATE_IP_ASSOCIATION_FOR_INGRESS");
}

#[test]
fn the_bastion_reaches_the_web_server_and_the_web_server_the_internet_through_nat() {
    let n = classic();
    let v = trace(
        &n,
        &from_eni("eni-bastion"),
        &from_eni("eni-web"),
        Protocol::Tcp,
        22,
    );
    assert!(v.reachable, "{v:#?}");
    let v = trace(
        &n,
        &from_eni("eni-web"),
        &addr("93.184.216.34"),
        Protocol::Tcp,
        443,
    );
    assert!(v.reachable, "{v:#?}");
    assert!(passes(&v, "nat-1") && passes(&v, "igw-1"));
    // Seen from the internet, the packet comes from the NAT gateway's Elastic IP.
    let out = v.forward.iter().find(|h| h.component == "igw-1").unwrap();
    assert_eq!(out.header.source, ip("198.18.0.10"));
}

#[test]
fn only_the_web_tier_reaches_the_database() {
    let n = classic();
    assert!(
        trace(
            &n,
            &from_eni("eni-web"),
            &from_eni("eni-db"),
            Protocol::Tcp,
            3306
        )
        .reachable
    );
    let v = trace(
        &n,
        &from_eni("eni-bastion"),
        &from_eni("eni-db"),
        Protocol::Tcp,
        3306,
    );
    assert_eq!(
        blocked_by(&v),
        ("ENI_SG_RULES_MISMATCH", "eni-db", Some(Direction::Ingress))
    );
}

#[test]
fn an_acl_without_ephemeral_egress_breaks_the_return_path() {
    let mut n = classic();
    // The web subnet gets its own ACL: SSH in from the VPC, and only port 22 out.
    n.network_acls.insert(
        "acl-web".into(),
        NetworkAcl {
            id: "acl-web".into(),
            vpc_id: "vpc-1".into(),
            ingress: vec![AclRule {
                number: 100,
                protocol: ProtocolMatch::Number(6),
                ports: Ports::one(22),
                cidr: net("10.0.0.0/16"),
                allow: true,
            }],
            egress: vec![AclRule {
                number: 100,
                protocol: ProtocolMatch::Number(6),
                ports: Ports::one(22),
                cidr: net("0.0.0.0/0"),
                allow: true,
            }],
        },
    );
    n.subnets.get_mut("subnet-web").unwrap().network_acl_id = "acl-web".into();
    let v = trace(
        &n,
        &from_eni("eni-bastion"),
        &from_eni("eni-web"),
        Protocol::Tcp,
        22,
    );
    assert_eq!(
        blocked_by(&v),
        ("SUBNET_ACL_RESTRICTION", "acl-web", Some(Direction::Egress))
    );
    // The forward path itself got through.
    assert!(v.forward.iter().any(|h| h.component == "eni-web"));
    // Allowing the ephemeral ports out mends it.
    n.network_acls
        .get_mut("acl-web")
        .unwrap()
        .egress
        .push(AclRule {
            number: 200,
            protocol: ProtocolMatch::Number(6),
            ports: Ports {
                from: 1024,
                to: 65535,
            },
            cidr: net("0.0.0.0/0"),
            allow: true,
        });
    assert!(
        trace(
            &n,
            &from_eni("eni-bastion"),
            &from_eni("eni-web"),
            Protocol::Tcp,
            22
        )
        .reachable
    );
}

#[test]
fn a_more_specific_blackhole_route_wins() {
    let mut n = classic();
    n.route_tables
        .get_mut("rtb-private")
        .unwrap()
        .routes
        .push(Route {
            destination: net("93.184.216.0/24"),
            prefix_list_id: None,
            target: Target::NatGateway("nat-gone".into()),
            blackhole: true,
        });
    let v = trace(
        &n,
        &from_eni("eni-web"),
        &addr("93.184.216.34"),
        Protocol::Tcp,
        443,
    );
    assert_eq!(blocked_by(&v).0, "BAD_STATE_ROUTE");
    assert!(
        trace(
            &n,
            &from_eni("eni-web"),
            &addr("8.8.8.8"),
            Protocol::Tcp,
            443
        )
        .reachable
    );
}

/// Three VPCs in a line: A peers with B, B with C.
fn peered() -> Network {
    let mut n = Network::default();
    for (v, cidr) in [
        ("vpc-a", "10.1.0.0/16"),
        ("vpc-b", "10.2.0.0/16"),
        ("vpc-c", "10.3.0.0/16"),
    ] {
        n.vpcs.insert(
            v.into(),
            Vpc {
                id: v.into(),
                cidrs: vec![net(cidr)],
            },
        );
        let s = v.replace("vpc", "subnet");
        let rtb = v.replace("vpc", "rtb");
        let acl = v.replace("vpc", "acl");
        n.subnets.insert(
            s.clone(),
            subnet(&s, v, &cidr.replace(".0.0/16", ".1.0/24"), &rtb, &acl),
        );
        n.route_tables.insert(
            rtb.clone(),
            RouteTable {
                id: rtb,
                vpc_id: v.into(),
                routes: vec![route(cidr, Target::Local)],
            },
        );
        n.network_acls.insert(
            acl.clone(),
            NetworkAcl {
                id: acl,
                vpc_id: v.into(),
                ingress: vec![allow_all(100)],
                egress: vec![allow_all(100)],
            },
        );
        let sg = v.replace("vpc", "sg");
        let mut g = group(&sg, v, vec![]);
        g.ingress.push(SgRule {
            id: format!("sgr-{sg}-in"),
            protocol: ProtocolMatch::All,
            ports: Ports::ALL,
            peer: Peer::Cidr(net("10.0.0.0/8")),
        });
        n.security_groups.insert(sg.clone(), g);
        let e = v.replace("vpc", "eni");
        n.interfaces.insert(
            e.clone(),
            eni(
                &e,
                &s,
                v,
                &cidr.replace(".0.0/16", ".1.5"),
                None,
                &[sg.as_str()],
            ),
        );
    }
    for (p, a, b) in [("pcx-ab", "vpc-a", "vpc-b"), ("pcx-bc", "vpc-b", "vpc-c")] {
        n.peerings.insert(
            p.into(),
            Peering {
                id: p.into(),
                requester_vpc_id: a.into(),
                accepter_vpc_id: b.into(),
                active: true,
            },
        );
    }
    let add = |n: &mut Network, rtb: &str, dest: &str, pcx: &str| {
        n.route_tables
            .get_mut(rtb)
            .unwrap()
            .routes
            .push(route(dest, Target::Peering(pcx.into())));
    };
    add(&mut n, "rtb-a", "10.2.0.0/16", "pcx-ab");
    add(&mut n, "rtb-b", "10.1.0.0/16", "pcx-ab");
    add(&mut n, "rtb-b", "10.3.0.0/16", "pcx-bc");
    add(&mut n, "rtb-c", "10.2.0.0/16", "pcx-bc");
    // A hopes to reach C through B.
    add(&mut n, "rtb-a", "10.3.0.0/16", "pcx-ab");
    n
}

#[test]
fn peering_carries_traffic_between_two_vpcs_only() {
    let n = peered();
    let v = trace(&n, &from_eni("eni-a"), &addr("10.2.1.5"), Protocol::Tcp, 80);
    assert!(v.reachable, "{v:#?}");
    assert!(passes(&v, "pcx-ab"));
    let v = trace(&n, &from_eni("eni-a"), &addr("10.3.1.5"), Protocol::Tcp, 80);
    assert_eq!(
        blocked_by(&v),
        ("PCX_REQUIRES_ADDRESS_IN_VPC_CIDR", "pcx-ab", None)
    );
}

#[test]
fn peering_needs_routes_on_both_sides() {
    let mut n = peered();
    n.route_tables
        .get_mut("rtb-b")
        .unwrap()
        .routes
        .retain(|r| r.target != Target::Peering("pcx-ab".into()));
    let v = trace(&n, &from_eni("eni-a"), &addr("10.2.1.5"), Protocol::Tcp, 80);
    assert_eq!(blocked_by(&v), ("NO_ROUTE_TO_DESTINATION", "rtb-b", None));
}

#[test]
fn an_appliance_forwards_only_with_its_source_dest_check_off() {
    let mut n = classic();
    // A NAT instance in the public subnet replaces the NAT gateway.
    let mut nat = eni(
        "eni-natinst",
        "subnet-public",
        "vpc-1",
        "10.0.1.20",
        Some("198.18.0.20"),
        &["sg-web"],
    );
    n.security_groups
        .get_mut("sg-web")
        .unwrap()
        .ingress
        .push(SgRule {
            id: "sgr-vpc-all".into(),
            protocol: ProtocolMatch::All,
            ports: Ports::ALL,
            peer: Peer::Cidr(net("10.0.0.0/16")),
        });
    nat.source_dest_check = true;
    n.interfaces.insert(nat.id.clone(), nat);
    let rtb = n.route_tables.get_mut("rtb-private").unwrap();
    rtb.routes.retain(|r| r.destination != net("0.0.0.0/0"));
    rtb.routes
        .push(route("0.0.0.0/0", Target::Interface("eni-natinst".into())));
    let v = trace(
        &n,
        &from_eni("eni-web"),
        &addr("93.184.216.34"),
        Protocol::Tcp,
        443,
    );
    assert_eq!(blocked_by(&v).0, "ENI_SOURCE_DEST_CHECK_RESTRICTION");
    n.interfaces
        .get_mut("eni-natinst")
        .unwrap()
        .source_dest_check = false;
    let v = trace(
        &n,
        &from_eni("eni-web"),
        &addr("93.184.216.34"),
        Protocol::Tcp,
        443,
    );
    // The NAT instance forwards the packet and translates it to its own address, which the
    // internet gateway maps to its public one; the reply comes back the same way.
    assert!(v.reachable, "{:?}", v.explanations);
    assert!(passes(&v, "eni-natinst"));
    let out = v
        .forward
        .iter()
        .find(|h| h.kind == HopKind::InternetGateway)
        .unwrap();
    assert_eq!(out.header.source, ip("198.18.0.20"));
    // Without a public address of its own, the NAT instance cannot take it out.
    n.interfaces.get_mut("eni-natinst").unwrap().public_ip = None;
    let v = trace(
        &n,
        &from_eni("eni-web"),
        &addr("93.184.216.34"),
        Protocol::Tcp,
        443,
    );
    assert_eq!(blocked_by(&v).0, "IGW_PUBLIC_IP_ASSOCIATION_FOR_EGRESS");
}

#[test]
fn audit_flags_what_a_reviewer_would() {
    use super::audit::audit;
    let mut n = classic();
    assert!(audit(&n).is_empty(), "{:#?}", audit(&n));
    // SSH and MySQL open to the world, an unused group, a shadowed ACL entry, and a public
    // interface in the private subnet made reachable by a narrow route to the gateway.
    n.security_groups
        .get_mut("sg-web")
        .unwrap()
        .ingress
        .push(SgRule {
            id: "sgr-world".into(),
            protocol: ProtocolMatch::Number(6),
            ports: Ports { from: 0, to: 65535 },
            peer: Peer::Cidr(net("0.0.0.0/0")),
        });
    n.security_groups
        .insert("sg-lonely".into(), group("sg-lonely", "vpc-1", vec![]));
    n.network_acls
        .get_mut("acl-1")
        .unwrap()
        .ingress
        .push(AclRule {
            number: 200,
            protocol: ProtocolMatch::Number(6),
            ports: Ports::one(22),
            cidr: net("203.0.113.0/24"),
            allow: false,
        });
    n.interfaces.get_mut("eni-web").unwrap().public_ip = Some(ip("198.18.0.77"));
    n.route_tables
        .get_mut("rtb-private")
        .unwrap()
        .routes
        .push(route(
            "203.0.113.0/24",
            Target::InternetGateway("igw-1".into()),
        ));
    let found: Vec<(&str, String)> = audit(&n)
        .into_iter()
        .map(|f| (f.code, f.component))
        .collect();
    for expected in [
        ("OPEN_ADMIN_PORT", "sg-web"),
        ("OPEN_DATABASE_PORT", "sg-web"),
        ("UNUSED_SECURITY_GROUP", "sg-lonely"),
        ("SHADOWED_ACL_ENTRY", "acl-1"),
        ("INTERNET_REACHABLE_WITHOUT_DEFAULT_ROUTE", "eni-web"),
    ] {
        assert!(
            found
                .iter()
                .any(|(c, id)| *c == expected.0 && id == expected.1),
            "missing {expected:?} in {found:?}"
        );
    }
}
