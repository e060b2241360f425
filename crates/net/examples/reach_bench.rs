//! Reachability benchmark on a generated network: 10,000 interfaces, 1,000 security groups,
//! 100 subnets (10 VPCs of 10 subnets, half public), with group-referencing rules, a NAT
//! gateway per VPC and a network ACL per subnet.
//!
//!     cargo run --release -p kumori-net --example reach_bench
//!
//! Prints: the time to index the snapshot, one path analysis (median and p99 over random
//! pairs), the sweep "internet -> every interface on tcp/22", and the peak memory of the
//! process. Targets (issue 5): one analysis <= 1 ms, the sweep <= 1 s.

use kumori_net::reach::index::Index;
use kumori_net::reach::model::*;
use kumori_net::reach::trace::{Endpoint, trace_in};
use std::net::Ipv4Addr;
use std::time::Instant;

const VPCS: usize = 10;
const SUBNETS_PER_VPC: usize = 10;
const INTERFACES: usize = 10_000;
const GROUPS: usize = 1_000;

/// A small deterministic generator (xorshift), so that every run measures the same network.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn net(s: &str) -> ipnet::Ipv4Net {
    s.parse().unwrap()
}

fn generate() -> Network {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut n = Network::default();
    for v in 0..VPCS {
        let vpc = format!("vpc-{v}");
        n.vpcs.insert(
            vpc.clone(),
            Vpc {
                id: vpc.clone(),
                cidrs: vec![net(&format!("10.{v}.0.0/16"))],
            },
        );
        n.internet_gateways.insert(
            format!("igw-{v}"),
            InternetGateway {
                id: format!("igw-{v}"),
                vpc_id: Some(vpc.clone()),
            },
        );
        for (table, default) in [
            ("public", Target::InternetGateway(format!("igw-{v}"))),
            ("private", Target::NatGateway(format!("nat-{v}"))),
        ] {
            n.route_tables.insert(
                format!("rtb-{v}-{table}"),
                RouteTable {
                    id: format!("rtb-{v}-{table}"),
                    vpc_id: vpc.clone(),
                    routes: vec![
                        Route {
                            destination: net(&format!("10.{v}.0.0/16")),
                            prefix_list_id: None,
                            target: Target::Local,
                            blackhole: false,
                        },
                        Route {
                            destination: net("0.0.0.0/0"),
                            prefix_list_id: None,
                            target: default,
                            blackhole: false,
                        },
                    ],
                },
            );
        }
        for s in 0..SUBNETS_PER_VPC {
            let id = format!("subnet-{v}-{s}");
            let acl = format!("acl-{v}-{s}");
            let allow = |number| AclRule {
                number,
                protocol: ProtocolMatch::All,
                ports: Ports::ALL,
                cidr: net("0.0.0.0/0"),
                allow: true,
            };
            n.network_acls.insert(
                acl.clone(),
                NetworkAcl {
                    id: acl.clone(),
                    vpc_id: vpc.clone(),
                    ingress: vec![
                        AclRule {
                            number: 50,
                            protocol: ProtocolMatch::Number(6),
                            ports: Ports::one(23),
                            cidr: net("0.0.0.0/0"),
                            allow: false,
                        },
                        allow(100),
                    ],
                    egress: vec![allow(100)],
                },
            );
            let public = s.is_multiple_of(2);
            n.subnets.insert(
                id.clone(),
                Subnet {
                    id,
                    vpc_id: vpc.clone(),
                    cidr: net(&format!("10.{v}.{s}.0/24")),
                    route_table_id: format!(
                        "rtb-{v}-{}",
                        if public { "public" } else { "private" }
                    ),
                    network_acl_id: acl,
                },
            );
        }
        n.nat_gateways.insert(
            format!("nat-{v}"),
            NatGateway {
                id: format!("nat-{v}"),
                subnet_id: format!("subnet-{v}-0"),
                interface_id: format!("eni-nat-{v}"),
                private_ip: Ipv4Addr::new(10, v as u8, 0, 250),
                public_ip: Some(Ipv4Addr::new(198, 18, 100, v as u8)),
            },
        );
    }
    for g in 0..GROUPS {
        let vpc = g % VPCS;
        let mut ingress = vec![SgRule {
            id: format!("sgr-{g}-web"),
            protocol: ProtocolMatch::Number(6),
            ports: Ports::one(443),
            peer: Peer::Cidr(net("0.0.0.0/0")),
        }];
        // One group in ten takes SSH from an office range, the others from another group.
        if g.is_multiple_of(10) {
            ingress.push(SgRule {
                id: format!("sgr-{g}-ssh"),
                protocol: ProtocolMatch::Number(6),
                ports: Ports::one(22),
                peer: Peer::Cidr(net("203.0.113.0/24")),
            });
        } else {
            ingress.push(SgRule {
                id: format!("sgr-{g}-ssh"),
                protocol: ProtocolMatch::Number(6),
                ports: Ports::one(22),
                peer: Peer::Group(format!("sg-{}", (g / 10) * 10)),
            });
        }
        ingress.push(SgRule {
            id: format!("sgr-{g}-db"),
            protocol: ProtocolMatch::Number(6),
            ports: Ports {
                from: 3306,
                to: 3306,
            },
            peer: Peer::Group(format!("sg-{}", (g + VPCS) % GROUPS)),
        });
        n.security_groups.insert(
            format!("sg-{g}"),
            SecurityGroup {
                id: format!("sg-{g}"),
                name: format!("group-{g}"),
                vpc_id: format!("vpc-{vpc}"),
                ingress,
                egress: vec![SgRule {
                    id: format!("sgr-{g}-out"),
                    protocol: ProtocolMatch::All,
                    ports: Ports::ALL,
                    peer: Peer::Cidr(net("0.0.0.0/0")),
                }],
            },
        );
    }
    for i in 0..INTERFACES {
        let vpc = i % VPCS;
        let subnet = (i / VPCS) % SUBNETS_PER_VPC;
        let host = 4 + (i / (VPCS * SUBNETS_PER_VPC));
        let public = subnet.is_multiple_of(2) && rng.below(2) == 0;
        // Groups of the same VPC: two of them.
        let g1 = vpc + VPCS * rng.below(GROUPS / VPCS);
        let g2 = vpc + VPCS * rng.below(GROUPS / VPCS);
        n.interfaces.insert(
            format!("eni-{i}"),
            Interface {
                id: format!("eni-{i}"),
                subnet_id: format!("subnet-{vpc}-{subnet}"),
                vpc_id: format!("vpc-{vpc}"),
                private_ips: vec![Ipv4Addr::new(10, vpc as u8, subnet as u8, host as u8)],
                public_ip: public.then(|| Ipv4Addr::new(198, 19, (i / 256) as u8, (i % 256) as u8)),
                groups: vec![format!("sg-{g1}"), format!("sg-{g2}")],
                source_dest_check: true,
                owner: Owner::Instance(format!("i-{i}")),
            },
        );
    }
    n
}

fn peak_memory_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn main() {
    let t = Instant::now();
    let network = generate();
    let generated = t.elapsed();
    let t = Instant::now();
    let ix = Index::new(&network);
    let indexed = t.elapsed();
    println!(
        "network: {} interfaces, {} security groups, {} subnets, {} VPCs (generated in {:.0} ms, indexed in {:.1} ms)",
        network.interfaces.len(),
        network.security_groups.len(),
        network.subnets.len(),
        network.vpcs.len(),
        generated.as_secs_f64() * 1e3,
        indexed.as_secs_f64() * 1e3
    );

    // One path analysis: random interface pairs within a VPC, and internet -> interface,
    // on the ports the rules speak of.
    let mut rng = Rng(42);
    let ids: Vec<&String> = network.interfaces.keys().collect();
    let ports = [22u16, 443, 3306, 80];
    let mut samples = Vec::new();
    let mut reachable = 0;
    for k in 0..2_000usize {
        let a = ids[rng.below(ids.len())];
        let port = ports[rng.below(ports.len())];
        let from = if k.is_multiple_of(2) {
            Endpoint::Address(Ipv4Addr::new(203, 0, 113, 9))
        } else {
            Endpoint::Interface(a.to_string())
        };
        let vpc = &network.interfaces[a].vpc_id;
        let b = loop {
            let b = ids[rng.below(ids.len())];
            if &network.interfaces[b].vpc_id == vpc && b != a {
                break b;
            }
        };
        let t = Instant::now();
        let v = trace_in(
            &ix,
            &from,
            &Endpoint::Interface(b.to_string()),
            Protocol::Tcp,
            port,
        );
        samples.push(t.elapsed().as_secs_f64() * 1e6);
        reachable += usize::from(v.reachable);
    }
    samples.sort_by(f64::total_cmp);
    let median = samples[samples.len() / 2];
    let p99 = samples[samples.len() * 99 / 100];
    println!(
        "one path analysis: median {median:.1} us, p99 {p99:.1} us over {} paths ({} reachable)  target <= 1000 us: {}",
        samples.len(),
        reachable,
        if median <= 1000.0 { "met" } else { "MISSED" }
    );

    // Internet -> every interface on tcp/22, from one address of every span of internet
    // addresses the rules tell apart.
    let sources = kumori_net::reach::classes::internet_representatives(&network);
    let t = Instant::now();
    let mut open = 0;
    for id in &ids {
        let reached = sources.iter().any(|s| {
            trace_in(
                &ix,
                &Endpoint::Address(*s),
                &Endpoint::Interface(id.to_string()),
                Protocol::Tcp,
                22,
            )
            .reachable
        });
        open += usize::from(reached);
    }
    let sweep = t.elapsed().as_secs_f64();
    println!(
        "internet -> every interface on tcp/22 ({} source classes): {:.0} ms for {} interfaces, {open} reachable  target <= 1000 ms: {}",
        sources.len(),
        sweep * 1e3,
        ids.len(),
        if sweep <= 1.0 { "met" } else { "MISSED" }
    );

    // The engine: every tcp port of one path per walk.
    let mut samples = Vec::new();
    let mut rng = Rng(7);
    for _ in 0..2_000usize {
        let a = ids[rng.below(ids.len())];
        let b = ids[rng.below(ids.len())];
        let t = Instant::now();
        let v = kumori_net::reach::engine::ports(
            &ix,
            &Endpoint::Interface(a.to_string()),
            &Endpoint::Interface(b.to_string()),
            Protocol::Tcp,
        );
        samples.push(t.elapsed().as_secs_f64() * 1e6);
        std::hint::black_box(v);
    }
    samples.sort_by(f64::total_cmp);
    println!(
        "engine, all 65,536 tcp ports of one path: median {:.1} us, p99 {:.1} us",
        samples[samples.len() / 2],
        samples[samples.len() * 99 / 100]
    );
    // Internet -> every interface, every tcp port, with the engine.
    let t = Instant::now();
    let mut exposed = 0;
    for id in &ids {
        let to = Endpoint::Interface(id.to_string());
        exposed += usize::from(sources.iter().any(|s| {
            !kumori_net::reach::engine::ports(&ix, &Endpoint::Address(*s), &to, Protocol::Tcp)
                .reachable
                .is_empty()
        }));
    }
    println!(
        "internet -> every interface on any tcp port (engine): {:.0} ms, {exposed} reachable on some port",
        t.elapsed().as_secs_f64() * 1e3
    );
    match peak_memory_kib() {
        Some(k) => println!("peak memory (VmHWM): {:.1} MiB", k as f64 / 1024.0),
        None => println!("peak memory: not available on this system"),
    }
}
