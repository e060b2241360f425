//! Random small networks for property tests: one to three VPCs, peerings active or not,
//! internet gateways attached or not, NAT gateways public or private, appliances with their
//! check on or off, random routes including blackholes, random ACLs and security groups,
//! group references. Deterministic from a seed, so a failure prints a seed that rebuilds the
//! same network. The engine is checked against the reference evaluator over them
//! (`engine_vs_reference`), and the data plane's kernel against the engine
//! (`kumori-dataplane`'s differential test).

use super::model::*;
use super::trace::Endpoint;
use std::net::Ipv4Addr;

/// SplitMix64: enough randomness for a test, no dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

fn cidr(s: &str) -> ipnet::Ipv4Net {
    s.parse().unwrap()
}

/// Port ranges people write, and their edges.
const PORTS: &[(u16, u16)] = &[
    (22, 22),
    (80, 80),
    (443, 443),
    (3306, 3306),
    (0, 65535),
    (1024, 65535),
    (20, 30),
    (32768, 65535),
    (0, 1023),
    (1024, 49151),
    (49152, 65535),
];

fn ports(r: &mut Rng) -> Ports {
    let (from, to) = *r.pick(PORTS);
    Ports { from, to }
}

fn protocol(r: &mut Rng) -> ProtocolMatch {
    *r.pick(&[
        ProtocolMatch::All,
        ProtocolMatch::Number(6),
        ProtocolMatch::Number(6),
        ProtocolMatch::Number(17),
        ProtocolMatch::Number(1),
    ])
}

/// Blocks rules and routes name: the internet, documentation ranges, each VPC and subnet.
fn block(r: &mut Rng, vpcs: usize) -> ipnet::Ipv4Net {
    let v = r.below(vpcs);
    match r.below(7) {
        0 | 1 => cidr("0.0.0.0/0"),
        2 => cidr("203.0.113.0/24"),
        3 => cidr("198.51.100.0/24"),
        4 => cidr(&format!("10.{v}.0.0/16")),
        5 => cidr(&format!("10.{v}.{}.0/24", r.below(2))),
        _ => cidr("203.0.113.5/32"),
    }
}

pub fn network(seed: u64) -> Network {
    let mut r = Rng(seed);
    let mut n = Network::default();
    let vpcs = 1 + r.below(3);
    let mut interfaces: Vec<String> = Vec::new();
    let mut public_next = 1u8;
    for v in 0..vpcs {
        let vpc = format!("vpc-{v}");
        n.vpcs.insert(
            vpc.clone(),
            Vpc {
                id: vpc.clone(),
                cidrs: vec![cidr(&format!("10.{v}.0.0/16"))],
            },
        );
        let igw = format!("igw-{v}");
        n.internet_gateways.insert(
            igw.clone(),
            InternetGateway {
                id: igw,
                vpc_id: r.chance(80).then(|| vpc.clone()),
            },
        );
        for g in 0..2 {
            let id = format!("sg-{v}{g}");
            let rules = |r: &mut Rng, tag: &str| -> Vec<SgRule> {
                (0..r.below(4))
                    .map(|i| SgRule {
                        id: format!("sgr-{v}{g}{tag}{i}"),
                        protocol: protocol(r),
                        ports: ports(r),
                        peer: if r.chance(25) {
                            Peer::Group(format!("sg-{}{}", r.below(vpcs), r.below(2)))
                        } else {
                            Peer::Cidr(block(r, vpcs))
                        },
                    })
                    .collect()
            };
            let mut ingress = rules(&mut r, "i");
            if r.chance(50) {
                ingress.push(SgRule {
                    id: format!("sgr-{v}{g}open"),
                    protocol: ProtocolMatch::Number(6),
                    ports: Ports::ALL,
                    peer: Peer::Cidr(cidr("0.0.0.0/0")),
                });
            }
            let egress = if r.chance(70) {
                vec![SgRule {
                    id: format!("sgr-{v}{g}all"),
                    protocol: ProtocolMatch::All,
                    ports: Ports::ALL,
                    peer: Peer::Cidr(cidr("0.0.0.0/0")),
                }]
            } else {
                rules(&mut r, "e")
            };
            n.security_groups.insert(
                id.clone(),
                SecurityGroup {
                    id,
                    name: format!("g{v}{g}"),
                    vpc_id: vpc.clone(),
                    ingress,
                    egress,
                },
            );
        }
        for a in 0..2 {
            let id = format!("acl-{v}{a}");
            let rules = |r: &mut Rng| -> Vec<AclRule> {
                // Most ACLs end in allow-all, as the default one does.
                let mut out: Vec<AclRule> = (0..r.below(4))
                    .map(|i| AclRule {
                        number: 10 * (i as u16 + 1),
                        protocol: protocol(r),
                        ports: ports(r),
                        cidr: block(r, vpcs),
                        allow: r.chance(60),
                    })
                    .collect();
                if r.chance(80) {
                    out.push(AclRule {
                        number: 100,
                        protocol: ProtocolMatch::All,
                        ports: Ports::ALL,
                        cidr: cidr("0.0.0.0/0"),
                        allow: true,
                    });
                }
                out
            };
            let ingress = rules(&mut r);
            let egress = rules(&mut r);
            n.network_acls.insert(
                id.clone(),
                NetworkAcl {
                    id,
                    vpc_id: vpc.clone(),
                    ingress,
                    egress,
                },
            );
        }
        for s in 0..2 {
            let subnet = format!("subnet-{v}{s}");
            n.subnets.insert(
                subnet.clone(),
                Subnet {
                    id: subnet.clone(),
                    vpc_id: vpc.clone(),
                    cidr: cidr(&format!("10.{v}.{s}.0/24")),
                    // Usually subnet 0 public (table 0), subnet 1 private (table 1).
                    route_table_id: format!("rtb-{v}{}", if r.chance(80) { s } else { r.below(2) }),
                    network_acl_id: format!("acl-{v}{}", r.below(2)),
                },
            );
            for k in 0..1 + r.below(2) {
                let id = format!("eni-{v}{s}{k}");
                let public_ip = r.chance(if s == 0 { 80 } else { 20 }).then(|| {
                    public_next += 1;
                    Ipv4Addr::new(198, 51, 100, public_next)
                });
                let groups: Vec<String> = (0..2)
                    .filter(|g| *g == 0 || r.chance(50))
                    .map(|g| format!("sg-{v}{g}"))
                    .collect();
                n.interfaces.insert(
                    id.clone(),
                    Interface {
                        id: id.clone(),
                        subnet_id: subnet.clone(),
                        vpc_id: vpc.clone(),
                        private_ips: vec![Ipv4Addr::new(10, v as u8, s as u8, 10 + k as u8)],
                        public_ip,
                        groups,
                        // The first interface is the one private tables may use as a
                        // NAT instance.
                        source_dest_check: if s == 0 && k == 0 {
                            r.chance(40)
                        } else {
                            r.chance(80)
                        },
                        owner: Owner::Instance(format!("i-{v}{s}{k}")),
                    },
                );
                interfaces.push(id);
            }
        }
        if r.chance(60) {
            let nat = format!("nat-{v}");
            let s = if r.chance(80) { 0 } else { 1 };
            let subnet = format!("subnet-{v}{s}");
            let eni = format!("eni-{v}nat");
            let private_ip = Ipv4Addr::new(10, v as u8, s as u8, 200);
            let public_ip = r.chance(80).then(|| {
                public_next += 1;
                Ipv4Addr::new(198, 51, 100, public_next)
            });
            n.nat_gateways.insert(
                nat.clone(),
                NatGateway {
                    id: nat.clone(),
                    subnet_id: subnet,
                    interface_id: eni,
                    private_ip,
                    public_ip,
                },
            );
        }
    }
    for p in 0..r.below(3) {
        let (a, b) = (r.below(vpcs), r.below(vpcs));
        if a == b {
            continue;
        }
        n.peerings.insert(
            format!("pcx-{p}"),
            Peering {
                id: format!("pcx-{p}"),
                requester_vpc_id: format!("vpc-{a}"),
                accepter_vpc_id: format!("vpc-{b}"),
                active: r.chance(80),
            },
        );
    }
    let peerings: Vec<String> = n.peerings.keys().cloned().collect();
    for v in 0..vpcs {
        for t in 0..2 {
            let id = format!("rtb-{v}{t}");
            let mut routes = vec![Route {
                destination: cidr(&format!("10.{v}.0.0/16")),
                prefix_list_id: None,
                target: Target::Local,
                blackhole: false,
            }];
            // Most tables have a default route: to the VPC's gateway, its NAT gateway or an
            // appliance of the VPC.
            if r.chance(70) {
                let own: Vec<&String> = interfaces
                    .iter()
                    .filter(|e| e.starts_with(&format!("eni-{v}")))
                    .collect();
                // The public table to the gateway; the private one to the NAT gateway or
                // a NAT instance in the public subnet.
                let target = match (t, r.below(10)) {
                    (0, 0..=8) | (1, 0) => Target::InternetGateway(format!("igw-{v}")),
                    (1, 1..=5) => Target::NatGateway(format!("nat-{v}")),
                    (1, 6..=8) => Target::Interface(format!("eni-{v}00")),
                    _ => Target::Interface(r.pick(&own).to_string()),
                };
                routes.push(Route {
                    destination: cidr("0.0.0.0/0"),
                    prefix_list_id: None,
                    target,
                    blackhole: false,
                });
            }
            // Peered VPCs usually route to each other, as a working peering needs.
            for p in n.peerings.values() {
                if let Some(other) = p.other_end(&format!("vpc-{v}"))
                    && r.chance(70)
                {
                    routes.push(Route {
                        destination: n.vpcs[other].cidrs[0],
                        prefix_list_id: None,
                        target: Target::Peering(p.id.clone()),
                        blackhole: false,
                    });
                }
            }
            for _ in 0..r.below(4) {
                let destination = block(&mut r, vpcs);
                if routes.iter().any(|x| x.destination == destination) {
                    continue;
                }
                let target = match r.below(6) {
                    0 | 1 => Target::InternetGateway(format!("igw-{}", r.below(vpcs))),
                    2 => Target::NatGateway(format!("nat-{}", r.below(vpcs))),
                    3 if !peerings.is_empty() => Target::Peering(r.pick(&peerings).clone()),
                    4 => Target::GatewayEndpoint(format!("vpce-{}", r.below(vpcs))),
                    _ => Target::Interface(r.pick(&interfaces).clone()),
                };
                routes.push(Route {
                    destination,
                    prefix_list_id: None,
                    target,
                    blackhole: r.chance(10),
                });
            }
            n.route_tables.insert(
                id.clone(),
                RouteTable {
                    id,
                    vpc_id: format!("vpc-{v}"),
                    routes,
                },
            );
        }
    }
    n
}

/// A question drawn from the network: from an interface or an internet address, to an
/// interface, an internet address, or an interface's public or private address.
pub fn question(r: &mut Rng, n: &Network) -> (Endpoint, Endpoint) {
    let enis: Vec<&Interface> = n.interfaces.values().collect();
    let internet = [
        Ipv4Addr::new(203, 0, 113, 5),
        Ipv4Addr::new(203, 0, 113, 77),
        Ipv4Addr::new(8, 8, 8, 8),
    ];
    let from_internet = r.chance(30);
    let from = if from_internet {
        Endpoint::Address(*r.pick(&internet))
    } else {
        Endpoint::Interface(r.pick(&enis).id.clone())
    };
    let d = r.pick(&enis);
    let to = match r.below(10) {
        0..=4 => Endpoint::Interface(d.id.clone()),
        5..=6 => match d.public_ip {
            Some(p) => Endpoint::Address(p),
            None => Endpoint::Address(Ipv4Addr::new(198, 51, 100, 250)),
        },
        7..=8 if !from_internet => Endpoint::Address(*r.pick(&internet)),
        _ => Endpoint::Address(d.primary_ip()),
    };
    (from, to)
}
