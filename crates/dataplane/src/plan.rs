//! The fabric a network model asks for, as plain data: which namespaces exist, which veth
//! links join them, and inside each namespace its sysctls, its addresses, routes and rules
//! (as iproute2 commands) and its nftables ruleset (as `nft -f` text). Pure: the kernel half
//! (`kernel.rs`) diffs two plans and applies the difference.
//!
//! The shape (see `DESIGN.md` beside this crate for why):
//! - one namespace per VPC, its *router*: every interface's link ends there, the subnets'
//!   gateways (base + 1) sit on its loopback, each subnet's route table is a kernel table
//!   chosen by an `iif` rule, and one nftables table holds the ACLs, security groups,
//!   source/destination checks, the internet gateway's 1:1 NAT and peering's limits;
//! - one namespace per interface (`eth0`, its private addresses, default route to the
//!   gateway), one per NAT gateway (which SNATs what it forwards);
//! - one `inet` namespace for what lies outside AWS: a link to each VPC with an attached
//!   internet gateway, test hosts with chosen public addresses, and optionally a link to the
//!   host that routes only the public pool.
//!
//! Router-to-router links (internet gateway, peering, test hosts, the host) carry IPv4 over
//! IPv6 link-local next hops (`fe80::1` / `fe80::2` on every such link), so no IPv4 address
//! is spent on them and none can clash with a VPC's blocks.

use ipnet::Ipv4Net;
use kumori_net::reach::model::{
    AclRule, Interface, Network, Owner, Peer, Ports, ProtocolMatch, SgRule, Subnet, Target,
};
use kumori_net::reach::rules::route_for;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::Ipv4Addr;

/// The host's own namespace, as a link end.
pub const HOST: &str = "";

/// The address the host has on its link to the internet namespace: how instances see it.
pub const HOST_ADDRESS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

/// The instance metadata service's address, on every VPC's router.
pub const IMDS_ADDRESS: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);

/// The public pool (`ec2::addresses`), the one route the host gets.
pub const PUBLIC_POOL: &str = "198.18.0.0/15";

/// What the fabric is built with besides the model.
#[derive(Debug, Clone)]
pub struct Options {
    /// Every namespace and host link starts with it (`kmr` by default).
    pub prefix: String,
    /// Hosts on the internet: a namespace each, with this public address.
    pub internet_hosts: Vec<Ipv4Addr>,
    /// Whether the host gets a link to the internet namespace and a route to the public pool.
    pub host_link: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            prefix: "kmr".into(),
            internet_hosts: Vec::new(),
            host_link: false,
        }
    }
}

/// One end of a veth link.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct End {
    /// Namespace name, or [`HOST`].
    pub ns: String,
    pub dev: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Link {
    pub a: End,
    pub b: End,
}

/// One iproute2 command that configures a namespace, with the one that undoes it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Item {
    /// Applied in increasing stage (0 links up, 1 addresses, 2 routes, 3 rules), removed in
    /// decreasing stage.
    pub stage: u8,
    /// The device the item lives on: it goes when the device goes.
    pub dev: Option<String>,
    pub add: String,
    /// `None`: nothing to undo (a link set up).
    pub del: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Namespace {
    pub sysctls: BTreeMap<String, String>,
    pub items: BTreeSet<Item>,
    /// The body of `table ip kumori`, or empty for no table.
    pub nft: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fabric {
    pub namespaces: BTreeMap<String, Namespace>,
    pub links: BTreeSet<Link>,
    /// Items in the host's own namespace (its link to the internet namespace).
    pub host: BTreeSet<Item>,
}

/// Namespace and device names. Device names hold at most 15 bytes; they need only be unique
/// inside their namespace.
pub struct Names<'a>(pub &'a str);

impl Names<'_> {
    pub fn vpc(&self, id: &str) -> String {
        format!("{}-v-{id}", self.0)
    }
    pub fn interface(&self, id: &str) -> String {
        format!("{}-e-{id}", self.0)
    }
    pub fn nat(&self, id: &str) -> String {
        format!("{}-n-{id}", self.0)
    }
    pub fn inet(&self) -> String {
        format!("{}-inet", self.0)
    }
    pub fn internet_host(&self, ip: Ipv4Addr) -> String {
        format!("{}-h-{ip}", self.0)
    }
    pub fn host_dev(&self) -> String {
        format!("{}-host", self.0)
    }
}

/// A device name from a letter and the tail of an AWS id (`eni-0a1b…` → `e0a1b…`, at most 15).
pub fn dev(kind: char, id: &str) -> String {
    let tail = id.rsplit('-').next().unwrap_or(id);
    let tail = &tail[tail.len().saturating_sub(14)..];
    format!("{kind}{tail}")
}

/// An nftables identifier from an AWS id.
fn ident(id: &str) -> String {
    id.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

fn item(stage: u8, dev: Option<&str>, add: String, del: Option<String>) -> Item {
    Item {
        stage,
        dev: dev.map(str::to_string),
        add,
        del,
    }
}

fn link_up(dev: &str) -> Item {
    item(0, Some(dev), format!("link set dev {dev} up"), None)
}

/// Proxy ARP answers after a random delay of up to 0.8 s unless told not to; a namespace
/// has no `neigh.default` sysctl, so it is set per device.
fn answer_at_once(dev: &str) -> Item {
    item(
        0,
        Some(dev),
        format!("ntable change name arp_cache dev {dev} proxy_delay 0"),
        None,
    )
}

fn address(dev: &str, a: &str) -> Item {
    item(
        1,
        Some(dev),
        format!("address add {a} dev {dev}"),
        Some(format!("address del {a} dev {dev}")),
    )
}

fn link_local(dev: &str, n: u8) -> Item {
    item(
        1,
        Some(dev),
        format!("address add fe80::{n}/64 dev {dev} nodad"),
        Some(format!("address del fe80::{n}/64 dev {dev}")),
    )
}

/// A route in `table` (`main` or a number) to `dst`, `spec` being the rest of the command.
fn route(table: &str, dev: Option<&str>, dst: &str, spec: &str) -> Item {
    // `blackhole` and `throw` come before the destination, a next hop after it.
    let add = if spec == "blackhole" || spec == "throw" {
        format!("route add table {table} {spec} {dst}")
    } else {
        format!("route add table {table} {dst} {spec}")
    };
    item(2, dev, add, Some(format!("route del table {table} {dst}")))
}

/// The VPC's DNS server: its primary range's base address + 2, as on EC2. The server
/// listens on it in the router's namespace.
pub fn resolver(vpc: &kumori_net::reach::model::Vpc) -> Option<Ipv4Addr> {
    vpc.cidrs
        .first()
        .map(|c| Ipv4Addr::from(u32::from(c.network()) + 2))
}

fn gateway(subnet: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(subnet.network()) + 1)
}

/// A kernel table number for a route table, stable across plans: a hash of its id, probed
/// past any other table of the same VPC that hashed alike.
fn table_numbers<'a>(ids: impl Iterator<Item = &'a str>) -> BTreeMap<String, u32> {
    let mut taken = BTreeSet::new();
    let mut out = BTreeMap::new();
    for id in ids {
        let mut h: u32 = 0x811c_9dc5;
        for b in id.bytes() {
            h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
        }
        let mut n = 1000 + h % 1_000_000;
        while !taken.insert(n) {
            n += 1;
        }
        out.insert(id.to_string(), n);
    }
    out
}

fn l4(protocol: ProtocolMatch, ports: Ports) -> String {
    match protocol {
        ProtocolMatch::All => String::new(),
        ProtocolMatch::Number(n) => {
            let name = match n {
                6 => "tcp".to_string(),
                17 => "udp".to_string(),
                1 => "icmp".to_string(),
                n => n.to_string(),
            };
            if protocol.has_ports() && ports != Ports::ALL {
                format!(" meta l4proto {name} th dport {}-{}", ports.from, ports.to)
            } else {
                format!(" meta l4proto {name}")
            }
        }
    }
}

fn cidr_match(field: &str, c: Ipv4Net) -> String {
    if c.prefix_len() == 0 {
        String::new()
    } else {
        format!(" ip {field} {c}")
    }
}

fn set_of(xs: impl IntoIterator<Item = String>) -> String {
    let xs: Vec<String> = xs.into_iter().collect();
    format!("{{ {} }}", xs.join(", "))
}

/// Interfaces the fabric gives an endpoint: NAT gateways' own interfaces are the NAT
/// gateway's namespace instead.
fn endpoints(net: &Network) -> impl Iterator<Item = &Interface> {
    net.interfaces.values().filter(move |e| match &e.owner {
        Owner::NatGateway(n) => !net.nat_gateways.contains_key(n),
        _ => true,
    })
}

/// The fabric `net` asks for.
pub fn plan(net: &Network, opts: &Options) -> Fabric {
    let names = Names(&opts.prefix);
    let mut f = Fabric::default();
    let inet = names.inet();
    let mut inet_ns = Namespace::default();
    sysctls(&mut inet_ns, true, false);
    inet_ns.items.insert(link_up("lo"));
    inet_ns
        .items
        .insert(route("main", None, "0.0.0.0/0", "blackhole"));

    // Group members: the private addresses of every interface carrying the group.
    let mut members: BTreeMap<&str, BTreeSet<Ipv4Addr>> = BTreeMap::new();
    for e in net.interfaces.values() {
        for g in &e.groups {
            members
                .entry(g.as_str())
                .or_default()
                .extend(e.private_ips.iter().copied());
        }
    }
    let mut public_routed = BTreeSet::new();

    for vpc in net.vpcs.values() {
        let router = names.vpc(&vpc.id);
        let mut ns = Namespace::default();
        sysctls(&mut ns, true, true);
        ns.items.insert(link_up("lo"));
        ns.items
            .insert(route("main", None, "0.0.0.0/0", "blackhole"));
        for c in &vpc.cidrs {
            ns.items
                .insert(route("main", None, &c.to_string(), "blackhole"));
        }
        let subnets: Vec<_> = net
            .subnets
            .values()
            .filter(|s| s.vpc_id == vpc.id)
            .collect();
        let mark: BTreeMap<&str, usize> = subnets
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.as_str(), i + 1))
            .collect();
        let tables = table_numbers(
            subnets
                .iter()
                .map(|s| s.route_table_id.as_str())
                .collect::<BTreeSet<_>>()
                .into_iter(),
        );
        // The instance metadata service answers here, on the router (the server listens on
        // it in this namespace): reached through the default route, as on EC2.
        ns.items
            .insert(address("lo", &format!("{IMDS_ADDRESS}/32")));
        if let Some(dns) = resolver(vpc) {
            ns.items.insert(address("lo", &format!("{dns}/32")));
        }
        for s in &subnets {
            ns.items
                .insert(address("lo", &format!("{}/32", gateway(s.cidr))));
            subnet_rules(
                &mut ns,
                net,
                s,
                mark[s.id.as_str()],
                tables.get(&s.route_table_id).copied(),
            );
        }
        let igw = net.gateway_of(&vpc.id).map(|g| g.id.clone());
        let peerings: Vec<_> = net
            .peerings
            .values()
            .filter(|p| {
                p.active
                    && p.other_end(&vpc.id)
                        .is_some_and(|o| o != vpc.id && net.vpcs.contains_key(o))
            })
            .collect();
        // The far side of each link: (device, next hop) per target.
        let mut ports: Vec<Port> = Vec::new();
        for e in endpoints(net).filter(|e| e.vpc_id == vpc.id) {
            let Some(s) = net.subnets.get(&e.subnet_id) else {
                continue;
            };
            let d = dev('e', &e.id);
            ports.push(Port {
                dev: d.clone(),
                subnet: e.subnet_id.clone(),
                ips: e.private_ips.clone(),
                check: e.source_dest_check,
                groups: e.groups.clone(),
            });
            let mut ens_ns = Namespace::default();
            sysctls(&mut ens_ns, !e.source_dest_check, false);
            if !e.source_dest_check {
                // An instance that forwards with its check off is a NAT instance: what it
                // sends on beyond its VPC and peers leaves with its own address.
                let mut inside: Vec<String> = vpc.cidrs.iter().map(|c| c.to_string()).collect();
                for p in &peerings {
                    if let Some(o) = p.other_end(&vpc.id).and_then(|o| net.vpcs.get(o)) {
                        inside.extend(o.cidrs.iter().map(|c| c.to_string()));
                    }
                }
                ens_ns.nft = format!(
                    "  chain kpost {{ type nat hook postrouting priority srcnat; policy accept;\n    oifname \"eth0\" ip daddr != {} ip saddr != {} masquerade\n  }}\n",
                    set_of(inside),
                    set_of(e.private_ips.iter().map(|i| i.to_string())),
                );
            }
            attach(
                &mut f,
                (&router, &mut ns, &d),
                (names.interface(&e.id), ens_ns),
                &e.private_ips,
                s.cidr,
            );
        }
        for nat in net.nat_gateways.values() {
            let Some(s) = net
                .subnets
                .get(&nat.subnet_id)
                .filter(|s| s.vpc_id == vpc.id)
            else {
                continue;
            };
            let d = dev('n', &nat.id);
            ports.push(Port {
                dev: d.clone(),
                subnet: s.id.clone(),
                ips: vec![nat.private_ip],
                check: false,
                groups: vec![],
            });
            let own = nat.private_ip;
            let mut n_ns = Namespace::default();
            sysctls(&mut n_ns, true, false);
            n_ns.nft = format!(
                "  chain kfwd {{ type filter hook forward priority filter; policy drop;\n    ct state established,related accept\n    ip saddr {} accept\n  }}\n  chain kpost {{ type nat hook postrouting priority srcnat; policy accept;\n    oifname \"eth0\" ip saddr != {own} meta l4proto {{ tcp, udp }} snat to {own}:1024-65535\n    oifname \"eth0\" ip saddr != {own} snat to {own}\n  }}\n",
                set_of(vpc.cidrs.iter().map(|c| c.to_string())),
            );
            attach(
                &mut f,
                (&router, &mut ns, &d),
                (names.nat(&nat.id), n_ns),
                &[own],
                s.cidr,
            );
        }
        // The internet gateway: a link to the internet namespace, and the public addresses
        // routed back over it.
        let mut nat_map: Vec<(Ipv4Addr, Ipv4Addr)> = Vec::new();
        if igw.is_some() {
            for e in endpoints(net).filter(|e| e.vpc_id == vpc.id) {
                if let Some(p) = e.public_ip {
                    nat_map.push((p, e.primary_ip()));
                }
            }
            for nat in net.nat_gateways.values() {
                if let (Some(p), Some(_)) = (
                    nat.public_ip,
                    net.subnets
                        .get(&nat.subnet_id)
                        .filter(|s| s.vpc_id == vpc.id),
                ) {
                    nat_map.push((p, nat.private_ip));
                }
            }
            nat_map.retain(|(p, _)| public_routed.insert(*p));
            let far = dev('v', &vpc.id);
            f.links.insert(Link {
                a: End {
                    ns: router.clone(),
                    dev: "igw".into(),
                },
                b: End {
                    ns: inet.clone(),
                    dev: far.clone(),
                },
            });
            ns.items.insert(link_up("igw"));
            ns.items.insert(link_local("igw", 1));
            inet_ns.items.insert(link_up(&far));
            inet_ns.items.insert(link_local(&far, 2));
            for (p, _) in &nat_map {
                inet_ns.items.insert(route(
                    "main",
                    Some(&far),
                    &format!("{p}/32"),
                    &format!("via inet6 fe80::1 dev {far}"),
                ));
            }
        }
        let mut peer_links: Vec<(String, Vec<Ipv4Net>)> = Vec::new();
        for p in &peerings {
            let other = p.other_end(&vpc.id).unwrap_or_default();
            let d = dev('p', &p.id);
            let (me, them) = if p.requester_vpc_id == vpc.id {
                (1, 2)
            } else {
                (2, 1)
            };
            if me == 1 {
                f.links.insert(Link {
                    a: End {
                        ns: router.clone(),
                        dev: d.clone(),
                    },
                    b: End {
                        ns: names.vpc(other),
                        dev: d.clone(),
                    },
                });
            }
            ns.items.insert(link_up(&d));
            ns.items.insert(link_local(&d, me));
            let _ = them;
            peer_links.push((d, net.vpcs[other].cidrs.clone()));
        }
        // Each subnet's route table, as the kernel table its interfaces' rule looks up.
        for (rtb, number) in &tables {
            let table = number.to_string();
            let routes = net
                .route_tables
                .get(rtb)
                .map(|t| t.routes.as_slice())
                .unwrap_or_default();
            // One route per destination: the last of equals, as the evaluator picks it.
            let mut by_dst: BTreeMap<Ipv4Net, String> = BTreeMap::new();
            for r in routes {
                let spec = if r.blackhole {
                    "blackhole".to_string()
                } else {
                    match &r.target {
                        Target::Local => "throw".into(),
                        Target::InternetGateway(g) if igw.as_ref() == Some(g) => {
                            "via inet6 fe80::2 dev igw".into()
                        }
                        Target::NatGateway(n) => match net.nat_gateways.get(n).filter(|x| {
                            net.subnets
                                .get(&x.subnet_id)
                                .is_some_and(|s| s.vpc_id == vpc.id)
                        }) {
                            Some(x) => format!("via {} dev {} onlink", x.private_ip, dev('n', n)),
                            None => "blackhole".into(),
                        },
                        Target::Peering(p) => match peerings.iter().find(|x| &x.id == p) {
                            Some(x) => {
                                let them = if x.requester_vpc_id == vpc.id { 2 } else { 1 };
                                format!("via inet6 fe80::{them} dev {}", dev('p', p))
                            }
                            None => "blackhole".into(),
                        },
                        Target::Interface(a) => {
                            match endpoints(net).find(|e| &e.id == a && e.vpc_id == vpc.id) {
                                Some(e) => {
                                    format!("via {} dev {} onlink", e.primary_ip(), dev('e', a))
                                }
                                None => "blackhole".into(),
                            }
                        }
                        _ => "blackhole".into(),
                    }
                };
                by_dst.insert(r.destination, spec);
            }
            // Nothing falls through to the router's own table but what `local` throws.
            by_dst
                .entry("0.0.0.0/0".parse().expect("default"))
                .or_insert_with(|| "blackhole".into());
            for (dst, spec) in by_dst {
                let dst_s = dst.to_string();
                let on = spec
                    .split(" dev ")
                    .nth(1)
                    .map(|d| d.split(' ').next().unwrap_or(d));
                ns.items.insert(route(&table, on, &dst_s, &spec));
            }
        }
        ns.nft = router_rules(
            net,
            vpc,
            &ports,
            &mark,
            igw.is_some(),
            &nat_map,
            &peer_links,
            &members,
        );
        f.namespaces.insert(router, ns);
    }

    for ip in &opts.internet_hosts {
        let hns = names.internet_host(*ip);
        let mut h = Namespace::default();
        sysctls(&mut h, false, false);
        h.items.insert(link_up("lo"));
        h.items.insert(link_up("eth0"));
        h.items.insert(address("eth0", &format!("{ip}/32")));
        h.items.insert(link_local("eth0", 2));
        h.items.insert(route(
            "main",
            Some("eth0"),
            "0.0.0.0/0",
            &format!("via inet6 fe80::1 dev eth0 src {ip}"),
        ));
        f.namespaces.insert(hns.clone(), h);
        let far = format!("h{:08x}", u32::from(*ip));
        f.links.insert(Link {
            a: End {
                ns: inet.clone(),
                dev: far.clone(),
            },
            b: End {
                ns: hns,
                dev: "eth0".into(),
            },
        });
        inet_ns.items.insert(link_up(&far));
        inet_ns.items.insert(link_local(&far, 1));
        inet_ns.items.insert(route(
            "main",
            Some(&far),
            &format!("{ip}/32"),
            &format!("via inet6 fe80::2 dev {far}"),
        ));
    }
    if opts.host_link {
        let hd = names.host_dev();
        f.links.insert(Link {
            a: End {
                ns: inet.clone(),
                dev: "host".into(),
            },
            b: End {
                ns: HOST.into(),
                dev: hd.clone(),
            },
        });
        inet_ns.items.insert(link_up("host"));
        inet_ns.items.insert(link_local("host", 1));
        inet_ns.items.insert(route(
            "main",
            Some("host"),
            &format!("{HOST_ADDRESS}/32"),
            "via inet6 fe80::2 dev host",
        ));
        f.host.insert(link_up(&hd));
        f.host.insert(address(&hd, &format!("{HOST_ADDRESS}/32")));
        f.host.insert(link_local(&hd, 2));
        f.host.insert(route(
            "main",
            Some(&hd),
            PUBLIC_POOL,
            &format!("via inet6 fe80::1 dev {hd} src {HOST_ADDRESS}"),
        ));
    }
    f.namespaces.insert(inet, inet_ns);
    f
}

/// An endpoint (an interface's or a NAT gateway's namespace, `inner`, already holding its
/// sysctls and ruleset) wired to its VPC's router: `eth0` with `ips` in `subnet` and the
/// gateway as default route inside; on the router, the link `dev`, answering ARP at once,
/// with a /32 route per address.
fn attach(
    f: &mut Fabric,
    (router_name, router, dev): (&str, &mut Namespace, &str),
    (name, mut inner): (String, Namespace),
    ips: &[Ipv4Addr],
    subnet: Ipv4Net,
) {
    inner.items.insert(link_up("lo"));
    inner.items.insert(link_up("eth0"));
    for ip in ips {
        inner
            .items
            .insert(address("eth0", &format!("{ip}/{}", subnet.prefix_len())));
    }
    inner.items.insert(route(
        "main",
        Some("eth0"),
        "0.0.0.0/0",
        &format!("via {} dev eth0", gateway(subnet)),
    ));
    f.links.insert(Link {
        a: End {
            ns: router_name.to_string(),
            dev: dev.to_string(),
        },
        b: End {
            ns: name.clone(),
            dev: "eth0".into(),
        },
    });
    f.namespaces.insert(name, inner);
    router.items.insert(link_up(dev));
    router.items.insert(answer_at_once(dev));
    for ip in ips {
        router.items.insert(route(
            "main",
            Some(dev),
            &format!("{ip}/32"),
            &format!("dev {dev}"),
        ));
    }
}

/// The policy rules of subnet `s` (marked `k` on the way in, see `kmark`): its own block is
/// delivered directly, as AWS delivers within a subnet whatever its route table says (unless
/// that table blackholes the block); everything else is looked up in its route table.
fn subnet_rules(ns: &mut Namespace, net: &Network, s: &Subnet, k: usize, table: Option<u32>) {
    let routed = net
        .route_tables
        .get(&s.route_table_id)
        .and_then(|t| route_for(t, s.cidr.network()));
    let within = match (table, routed) {
        (Some(_), Some(r)) if !r.blackhole => "lookup main",
        _ => "blackhole",
    };
    let action = match table {
        Some(t) => format!("lookup {t}"),
        // A subnet whose route table is unknown routes nothing.
        None => "blackhole".into(),
    };
    for (pref, to, action) in [
        (50, format!(" to {}", s.cidr), within.to_string()),
        (100, String::new(), action),
    ] {
        ns.items.insert(item(
            3,
            None,
            format!("rule add pref {pref} fwmark {k}{to} {action}"),
            Some(format!("rule del pref {pref} fwmark {k}{to} {action}")),
        ));
    }
}

fn sysctls(ns: &mut Namespace, forward: bool, router: bool) {
    let mut set = |k: &str, v: &str| {
        ns.sysctls.insert(k.into(), v.into());
    };
    set("net.ipv4.ip_forward", if forward { "1" } else { "0" });
    set("net.ipv4.conf.all.rp_filter", "0");
    set("net.ipv4.conf.default.rp_filter", "0");
    set("net.ipv4.conf.all.send_redirects", "0");
    set("net.ipv4.conf.default.send_redirects", "0");
    if !router {
        // Clients answer on the IANA ephemeral ports, the ones the reachability engine
        // asks network ACLs about for replies (`EPHEMERAL_PORT`).
        set("net.ipv4.ip_local_port_range", "49152 65535");
    }
    if router {
        // Interfaces of one subnet reach each other through the router (so its rules see
        // them): it answers ARP for every address it routes elsewhere (at once: see
        // `answer_at_once`).
        set("net.ipv4.conf.default.proxy_arp", "1");
    }
}

/// A link of the router toward an interface or NAT gateway.
struct Port {
    dev: String,
    subnet: String,
    ips: Vec<Ipv4Addr>,
    /// Source/destination check.
    check: bool,
    groups: Vec<String>,
}

fn acl_chain(out: &mut String, name: &str, rules: &[AclRule], field: &str) {
    let _ = writeln!(out, "  chain {name} {{");
    for r in rules {
        let verdict = if r.allow { "return" } else { "drop" };
        let _ = writeln!(
            out,
            "   {}{} {verdict}",
            cidr_match(field, r.cidr),
            l4(r.protocol, r.ports)
        );
    }
    let _ = writeln!(out, "    drop\n  }}");
}

fn sg_rule(r: &SgRule, field: &str) -> Option<String> {
    let peer = match &r.peer {
        Peer::Cidr(c) => cidr_match(field, *c),
        Peer::PrefixList(_, entries) if entries.is_empty() => return None,
        Peer::PrefixList(_, entries) => {
            format!(
                " ip {field} {}",
                set_of(entries.iter().map(|c| c.to_string()))
            )
        }
        Peer::Group(g) => format!(" ip {field} @g_{}", ident(g)),
    };
    Some(format!("   {peer}{} return", l4(r.protocol, r.ports)))
}

/// Writes `map NAME { type TYPE; elements = { … } }` (no elements clause when empty).
fn declare(o: &mut String, kind: &str, name: &str, ty: &str, elements: &[String]) {
    let _ = write!(o, "  {kind} {name} {{ type {ty};");
    if !elements.is_empty() {
        let _ = write!(o, " elements = {}", set_of(elements.iter().cloned()));
    }
    let _ = writeln!(o, " }}");
}

/// The router's ruleset. Per-interface facts are elements of sets and maps, not chains: a
/// ruleset for a thousand interfaces is a few dozen chains, so `nft` loads it in
/// milliseconds. Chains exist per subnet pair (the ACLs a crossing meets), per distinct
/// combination of security groups, and per peering.
#[allow(clippy::too_many_arguments)]
fn router_rules(
    net: &Network,
    vpc: &kumori_net::reach::model::Vpc,
    ports: &[Port],
    mark: &BTreeMap<&str, usize>,
    igw: bool,
    nat_map: &[(Ipv4Addr, Ipv4Addr)],
    peers: &[(String, Vec<Ipv4Net>)],
    members: &BTreeMap<&str, BTreeSet<Ipv4Addr>>,
) -> String {
    let mut o = String::new();
    let own = set_of(vpc.cidrs.iter().map(|c| c.to_string()));
    // Group sets for every group a rule here names.
    let mut named = BTreeSet::new();
    for p in ports {
        for g in &p.groups {
            if let Some(sg) = net.security_groups.get(g) {
                for r in sg.ingress.iter().chain(&sg.egress) {
                    if let Peer::Group(x) = &r.peer {
                        named.insert(x.as_str());
                    }
                }
            }
        }
    }
    for g in named {
        let m: Vec<String> = members
            .get(g)
            .map(|m| m.iter().map(|i| i.to_string()).collect())
            .unwrap_or_default();
        declare(&mut o, "set", &format!("g_{}", ident(g)), "ipv4_addr", &m);
    }
    if igw {
        let pub2priv: Vec<String> = nat_map.iter().map(|(p, i)| format!("{p} : {i}")).collect();
        let priv2pub: Vec<String> = nat_map.iter().map(|(p, i)| format!("{i} : {p}")).collect();
        let mapped: Vec<String> = nat_map.iter().map(|(_, i)| i.to_string()).collect();
        declare(
            &mut o,
            "map",
            "pub2priv",
            "ipv4_addr : ipv4_addr",
            &pub2priv,
        );
        declare(
            &mut o,
            "map",
            "priv2pub",
            "ipv4_addr : ipv4_addr",
            &priv2pub,
        );
        declare(&mut o, "set", "mapped", "ipv4_addr", &mapped);
        o.push_str("  chain kpre { type nat hook prerouting priority dstnat; policy accept;\n    iifname \"igw\" dnat to ip daddr map @pub2priv\n  }\n");
        o.push_str("  chain kpost { type nat hook postrouting priority srcnat; policy accept;\n    oifname \"igw\" snat to ip saddr map @priv2pub\n  }\n");
    }
    // Source/destination check: the links whose interface has it on, and the addresses
    // each may use.
    let checked: Vec<String> = ports
        .iter()
        .filter(|p| p.check)
        .map(|p| format!("\"{}\"", p.dev))
        .collect();
    let owned: Vec<String> = ports
        .iter()
        .filter(|p| p.check)
        .flat_map(|p| p.ips.iter().map(move |i| format!("\"{}\" . {i}", p.dev)))
        .collect();
    declare(&mut o, "set", "checked", "ifname", &checked);
    declare(&mut o, "set", "owned", "ifname . ipv4_addr", &owned);
    // Which subnet each link is in (its mark).
    let subnet_of: Vec<String> = ports
        .iter()
        .map(|p| {
            format!(
                "\"{}\" : {}",
                p.dev,
                mark.get(p.subnet.as_str()).copied().unwrap_or(0)
            )
        })
        .collect();
    declare(&mut o, "map", "subnet_of", "ifname : mark", &subnet_of);
    // Network ACLs, one chain per subnet and direction: stateless, first match decides.
    let subnet_acl = |s: &str| {
        net.subnets
            .get(s)
            .and_then(|s| net.network_acls.get(&s.network_acl_id))
    };
    for (s, k) in mark {
        let (ingress, egress) = match subnet_acl(s) {
            Some(a) => (a.ingress.as_slice(), a.egress.as_slice()),
            None => (&[][..], &[][..]),
        };
        acl_chain(&mut o, &format!("acl_in_{k}"), ingress, "saddr");
        acl_chain(&mut o, &format!("acl_out_{k}"), egress, "daddr");
    }
    // A packet entering subnet m from subnet k (0: from outside the VPC) meets k's egress
    // ACL and m's ingress ACL; one leaving the VPC meets k's egress ACL. The link a packet
    // leaves by names m (`into`), the mark it came with names k.
    let out_of: Vec<String> = mark
        .values()
        .map(|k| format!("{k} : jump acl_out_{k}"))
        .collect();
    declare(&mut o, "map", "out_of", "mark : verdict", &out_of);
    for m in mark.values() {
        let _ = writeln!(
            o,
            "  chain into_{m} {{\n    meta mark != {m} meta mark vmap @out_of\n    meta mark != {m} jump acl_in_{m}\n  }}"
        );
    }
    let mut into: Vec<String> = ports
        .iter()
        .filter_map(|p| {
            let m = mark.get(p.subnet.as_str())?;
            Some(format!("\"{}\" : jump into_{m}", p.dev))
        })
        .collect();
    let _ = writeln!(o, "  chain leaving {{\n    meta mark vmap @out_of\n  }}");
    if igw {
        into.push("\"igw\" : jump leaving".into());
    }
    for (d, _) in peers {
        into.push(format!("\"{d}\" : jump leaving"));
    }
    declare(&mut o, "map", "into", "ifname : verdict", &into);
    // Security groups: one chain pair per distinct combination of groups.
    let mut combos: BTreeMap<&[String], usize> = BTreeMap::new();
    for p in ports.iter().filter(|p| p.dev.starts_with('e')) {
        let next = combos.len();
        combos.entry(p.groups.as_slice()).or_insert(next);
    }
    for (groups, c) in &combos {
        for (dir, egress, field) in [("out", true, "daddr"), ("in", false, "saddr")] {
            let _ = writeln!(o, "  chain sg{dir}_{c} {{");
            for g in groups.iter() {
                let Some(sg) = net.security_groups.get(g) else {
                    continue;
                };
                let rules = if egress { &sg.egress } else { &sg.ingress };
                for r in rules {
                    if let Some(line) = sg_rule(r, field) {
                        let _ = writeln!(o, "{line}");
                    }
                }
            }
            let _ = writeln!(o, "    drop\n  }}");
        }
    }
    let sg_of = |dir: &str| -> Vec<String> {
        ports
            .iter()
            .filter(|p| p.dev.starts_with('e'))
            .map(|p| {
                format!(
                    "\"{}\" : jump sg{dir}_{}",
                    p.dev,
                    combos[p.groups.as_slice()]
                )
            })
            .collect()
    };
    declare(&mut o, "map", "sg_out", "ifname : verdict", &sg_of("out"));
    declare(&mut o, "map", "sg_in", "ifname : verdict", &sg_of("in"));
    if igw {
        let _ = writeln!(o, "  chain to_igw {{\n    ip saddr != @mapped drop\n  }}");
    }
    for (d, cidrs) in peers {
        let theirs = set_of(cidrs.iter().map(|c| c.to_string()));
        // A peering carries traffic between the two VPCs' addresses only: nothing transits.
        let _ = writeln!(
            o,
            "  chain from_{d} {{\n    ip saddr != {theirs} drop\n    ip daddr != {own} drop\n  }}"
        );
        let _ = writeln!(
            o,
            "  chain to_{d} {{\n    ip saddr != {own} drop\n    ip daddr != {theirs} drop\n  }}"
        );
    }
    // The subnet a packet comes from, as its mark, before routing: the policy rules choose
    // the subnet's route table by it, and the forward chain's ACL crossings read it.
    o.push_str("  chain kmark { type filter hook prerouting priority mangle; policy accept;\n    meta mark set 0\n    meta mark set iifname map @subnet_of\n  }\n");
    o.push_str("  chain kfwd { type filter hook forward priority filter; policy drop;\n");
    o.push_str("    iifname @checked iifname . ip saddr != @owned drop\n");
    o.push_str("    oifname @checked oifname . ip daddr != @owned drop\n");
    o.push_str("    oifname vmap @into\n");
    let from: Vec<String> = peers
        .iter()
        .map(|(d, _)| format!("\"{d}\" : jump from_{d}"))
        .collect();
    let mut to: Vec<String> = peers
        .iter()
        .map(|(d, _)| format!("\"{d}\" : jump to_{d}"))
        .collect();
    if igw {
        to.push("\"igw\" : jump to_igw".into());
    }
    if !from.is_empty() {
        let _ = writeln!(o, "    iifname vmap {}", set_of(from));
    }
    if !to.is_empty() {
        let _ = writeln!(o, "    oifname vmap {}", set_of(to));
    }
    // Security groups are stateful: what they let start may go on, and its replies come back.
    o.push_str("    ct state established,related accept\n");
    o.push_str("    iifname vmap @sg_out\n    oifname vmap @sg_in\n");
    o.push_str("    accept\n  }\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use kumori_net::reach::random::network;

    #[test]
    fn every_device_name_fits_and_is_unique_in_its_namespace() {
        for seed in 0..200 {
            let f = plan(&network(seed), &Options::default());
            let mut seen = BTreeSet::new();
            for l in &f.links {
                for e in [&l.a, &l.b] {
                    assert!(e.dev.len() <= 15, "{}", e.dev);
                    assert!(seen.insert((e.ns.clone(), e.dev.clone())), "{e:?} twice");
                    assert!(e.ns == HOST || f.namespaces.contains_key(&e.ns), "{e:?}");
                }
            }
        }
    }

    #[test]
    fn a_plan_is_the_same_plan_twice() {
        let n = network(7);
        assert_eq!(plan(&n, &Options::default()), plan(&n, &Options::default()));
    }

    #[test]
    fn the_local_route_throws_to_the_router_and_a_table_without_default_drops() {
        let n = network(3);
        let f = plan(&n, &Options::default());
        let router = &f.namespaces["kmr-v-vpc-0"];
        assert!(
            router
                .items
                .iter()
                .any(|i| i.add.contains("throw 10.0.0.0/16"))
        );
        assert!(
            router
                .items
                .iter()
                .any(|i| i.add == "route add table main blackhole 10.0.0.0/16")
        );
    }
}
