//! The reference evaluator: one concrete packet at a time, walked hop by hop through the
//! network as AWS documents it, there and back. It is meant to be obviously right rather
//! than fast; the engine that answers for whole address and port ranges is checked against
//! it.
//!
//! Forward, from an interface: its security groups (egress), its subnet's network ACL
//! (egress, unless the destination is in the same subnet), the subnet's route table
//! (longest prefix), then the target: the VPC itself (`local`), an internet gateway (1:1
//! translation to the interface's public address), a NAT gateway (source translation, then
//! the NAT subnet's own routes), a peering connection (into the peer VPC only: no transitive
//! or edge-to-edge routing) or an appliance interface (which must have its source/dest
//! check off). Into the destination: its subnet's ACL (ingress) and its groups (ingress).
//! From the internet: the internet gateway maps the public address to the private one.
//! Back: security groups are stateful and let replies through; ACLs are not, so every ACL
//! crossed is asked again for the reply, whose destination port is the client's ephemeral
//! port; and a subnet reached through a gateway needs a route back through it.

use super::index::Index;
use super::model::{EPHEMERAL_PORT, Interface, Network, Owner, Protocol, Route, Target};
use super::rules::{Direction, acl_decides, not_on_the_internet, route_for, sg_allows};
use std::net::Ipv4Addr;

/// Where a path starts or ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A network interface (an instance is asked about through its primary interface).
    Interface(String),
    /// An address: a host on the internet, or a private address inside a VPC.
    Address(Ipv4Addr),
}

/// A packet's header at one hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub source: Ipv4Addr,
    pub destination: Ipv4Addr,
    pub protocol: Protocol,
    pub source_port: u16,
    pub destination_port: u16,
}

impl Header {
    fn reply(self) -> Header {
        Header {
            source: self.destination,
            destination: self.source,
            protocol: self.protocol,
            source_port: self.destination_port,
            destination_port: self.source_port,
        }
    }
}

/// What a hop did with the packet.
#[derive(Debug, Clone, PartialEq)]
pub enum HopKind {
    /// The packet left or reached this interface.
    Interface,
    SecurityGroup {
        rule_id: Option<String>,
        direction: Direction,
    },
    NetworkAcl {
        rule_number: u16,
        egress: bool,
    },
    RouteTable {
        route: Route,
    },
    InternetGateway,
    NatGateway,
    Peering,
    /// A gateway VPC endpoint: the packet reached the service behind it.
    GatewayEndpoint,
    /// The packet left for, or came from, the internet.
    Internet,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Hop {
    /// The AWS id of the component (`sg-…`, `acl-…`, `rtb-…`, `igw-…`, `eni-…`).
    pub component: String,
    pub kind: HopKind,
    /// The header as it leaves the hop (after any translation).
    pub header: Header,
}

/// Why a packet does not get through, with AWS's explanation code.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    pub code: &'static str,
    /// The component that stops the packet.
    pub component: String,
    pub direction: Option<Direction>,
    /// A sentence a person can act on.
    pub message: String,
}

/// The answer for one packet.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub reachable: bool,
    pub forward: Vec<Hop>,
    pub ret: Vec<Hop>,
    /// Empty when reachable.
    pub explanations: Vec<Explanation>,
}

/// What the reply must get through on the way back, noted as the packet goes.
#[derive(Debug, Clone)]
enum Back {
    /// The ACL of `subnet`, crossed by the reply going out or coming in.
    Acl {
        subnet: String,
        direction: Direction,
    },
    /// `subnet` must route the reply (to `to`) through `via`.
    Route { subnet: String, via: Target },
    /// A translation undone on the way back.
    Untranslate { component: String, kind: HopKind },
}

struct Walk<'n, 'i> {
    net: &'n Network,
    ix: &'i Index<'n>,
    forward: Vec<Hop>,
    back: Vec<(Back, Header)>,
}

type Step<T> = Result<T, Explanation>;

fn explain(
    code: &'static str,
    component: &str,
    direction: Option<Direction>,
    message: String,
) -> Explanation {
    Explanation {
        code,
        component: component.to_string(),
        direction,
        message,
    }
}

impl<'n> Walk<'n, '_> {
    fn hop(&mut self, component: &str, kind: HopKind, header: Header) {
        self.forward.push(Hop {
            component: component.to_string(),
            kind,
            header,
        });
    }

    /// The packet leaves interface `e` through its security groups.
    fn sg_egress(&mut self, e: &Interface, h: Header) -> Step<()> {
        match sg_allows(
            self.ix,
            &e.groups,
            Direction::Egress,
            h.protocol,
            h.destination_port,
            h.destination,
        ) {
            Some((group, rule)) => {
                self.hop(
                    group,
                    HopKind::SecurityGroup {
                        rule_id: Some(rule.id.clone()),
                        direction: Direction::Egress,
                    },
                    h,
                );
                Ok(())
            }
            None => Err(explain(
                "ENI_SG_RULES_MISMATCH",
                &e.id,
                Some(Direction::Egress),
                format!(
                    "No outbound rule of the security groups of {} ({}) allows {} to {} port {}.",
                    e.id,
                    e.groups.join(", "),
                    h.protocol.name(),
                    h.destination,
                    h.destination_port
                ),
            )),
        }
    }

    /// The packet reaches interface `e` through its security groups.
    fn sg_ingress(&mut self, e: &Interface, h: Header) -> Step<()> {
        match sg_allows(
            self.ix,
            &e.groups,
            Direction::Ingress,
            h.protocol,
            h.destination_port,
            h.source,
        ) {
            Some((group, rule)) => {
                self.hop(
                    group,
                    HopKind::SecurityGroup {
                        rule_id: Some(rule.id.clone()),
                        direction: Direction::Ingress,
                    },
                    h,
                );
                Ok(())
            }
            None => Err(explain(
                "ENI_SG_RULES_MISMATCH",
                &e.id,
                Some(Direction::Ingress),
                format!(
                    "No inbound rule of the security groups of {} ({}) allows {} port {} from {}: add one to a group of the interface.",
                    e.id,
                    e.groups.join(", "),
                    h.protocol.name(),
                    h.destination_port,
                    h.source
                ),
            )),
        }
    }

    /// The subnet's network ACL, one way; notes the reply's crossing of it.
    fn acl(&mut self, subnet_id: &str, direction: Direction, h: Header) -> Step<()> {
        let Some(subnet) = self.net.subnets.get(subnet_id) else {
            return Err(explain(
                "UNKNOWN_RESOURCE",
                subnet_id,
                None,
                format!("Subnet {subnet_id} is not known."),
            ));
        };
        let acl_id = subnet.network_acl_id.clone();
        let acl = self.net.network_acls.get(&acl_id);
        let (rules, peer) = match direction {
            Direction::Egress => (acl.map(|a| a.egress.as_slice()), h.destination),
            Direction::Ingress => (acl.map(|a| a.ingress.as_slice()), h.source),
        };
        let decided = rules.and_then(|r| acl_decides(r, h.protocol, h.destination_port, peer));
        match decided {
            Some(rule) if rule.allow => {
                let number = rule.number;
                self.hop(
                    &acl_id,
                    HopKind::NetworkAcl {
                        rule_number: number,
                        egress: direction == Direction::Egress,
                    },
                    h,
                );
                // The reply crosses this ACL the other way.
                let back = Back::Acl {
                    subnet: subnet_id.to_string(),
                    direction: match direction {
                        Direction::Egress => Direction::Ingress,
                        Direction::Ingress => Direction::Egress,
                    },
                };
                self.back.push((back, h.reply()));
                Ok(())
            }
            other => Err(explain(
                "SUBNET_ACL_RESTRICTION",
                &acl_id,
                Some(direction),
                format!(
                    "Network ACL {acl_id} of {subnet_id} does not allow {} {} port {} {} {peer}{}.",
                    direction.name(),
                    h.protocol.name(),
                    h.destination_port,
                    if direction == Direction::Egress {
                        "to"
                    } else {
                        "from"
                    },
                    match other {
                        Some(r) => format!(" (rule {} denies it)", r.number),
                        None => " (no rule allows it; the final * rule denies it)".into(),
                    }
                ),
            )),
        }
    }

    /// The route `subnet_id`'s table picks for the packet.
    fn route(&mut self, subnet_id: &str, h: Header) -> Step<Route> {
        let subnet = &self.net.subnets[subnet_id];
        let table_id = subnet.route_table_id.clone();
        let route = self
            .net
            .route_tables
            .get(&table_id)
            .and_then(|t| route_for(t, h.destination))
            .cloned();
        let Some(route) = route else {
            return Err(explain(
                "NO_ROUTE_TO_DESTINATION",
                &table_id,
                None,
                format!(
                    "Route table {table_id} of {subnet_id} has no route to {}.",
                    h.destination
                ),
            ));
        };
        if route.blackhole {
            return Err(explain(
                "BAD_STATE_ROUTE",
                &table_id,
                None,
                format!(
                    "The route to {} in {table_id} is a blackhole: its target no longer exists.",
                    route.destination
                ),
            ));
        }
        self.hop(
            &table_id,
            HopKind::RouteTable {
                route: route.clone(),
            },
            h,
        );
        Ok(route)
    }

    /// From interface `e` (the sender, or an appliance forwarding) toward `h.destination`.
    /// `via_peering` says the packet arrived in this VPC over a peering connection.
    fn send(&mut self, e: &'n Interface, h: Header, depth: usize) -> Step<Arrival<'n>> {
        if depth > 8 {
            return Err(explain(
                "NO_PATH",
                &e.id,
                None,
                "The path loops through appliances.".into(),
            ));
        }
        self.sg_egress(e, h)?;
        let subnet = &self.net.subnets[&e.subnet_id];
        // Within a subnet nothing but the groups stands between two interfaces.
        if subnet.cidr.contains(&h.destination)
            && let Some(d) = self.ix.interface_at(&e.vpc_id, h.destination)
        {
            self.route(&e.subnet_id, h)?;
            return self.deliver(d, h, &e.subnet_id);
        }
        let route = self.route(&e.subnet_id, h)?;
        self.acl(&e.subnet_id, Direction::Egress, h)?;
        self.follow(&e.subnet_id, &e.vpc_id, route, h, Some(e), depth)
    }

    /// Where `route` (chosen in `subnet_id`) takes the packet.
    fn follow(
        &mut self,
        subnet_id: &str,
        vpc_id: &str,
        route: Route,
        h: Header,
        sender: Option<&'n Interface>,
        depth: usize,
    ) -> Step<Arrival<'n>> {
        match &route.target {
            Target::Local => {
                let Some(d) = self.ix.interface_at(vpc_id, h.destination) else {
                    return Err(explain(
                        "UNKNOWN_DESTINATION",
                        vpc_id,
                        None,
                        format!(
                            "No interface in {vpc_id} has the address {}.",
                            h.destination
                        ),
                    ));
                };
                // The reply is routed by the destination's subnet: back locally.
                self.back.push((
                    Back::Route {
                        subnet: d.subnet_id.clone(),
                        via: Target::Local,
                    },
                    h.reply(),
                ));
                self.enter(d, h)
            }
            Target::InternetGateway(g) => {
                let attached = self
                    .net
                    .internet_gateways
                    .get(g)
                    .is_some_and(|x| x.vpc_id.as_deref() == Some(vpc_id));
                if !attached {
                    return Err(explain(
                        "BAD_STATE_ATTACHMENT",
                        g,
                        None,
                        format!("Internet gateway {g} is not attached to {vpc_id}."),
                    ));
                }
                // The gateway maps a private address to its public one; without one the
                // packet cannot leave. An instance forwarding with its check off is a NAT
                // instance: it translates what it forwards to its own address first.
                let public = sender
                    .filter(|s| s.private_ips.first() == Some(&h.source) || !s.source_dest_check)
                    .and_then(|s| s.public_ip);
                let Some(public) = public else {
                    return Err(explain(
                        "IGW_PUBLIC_IP_ASSOCIATION_FOR_EGRESS",
                        g,
                        Some(Direction::Egress),
                        format!(
                            "{} has no public IPv4 address, so internet gateway {g} drops its traffic: give it a public or Elastic IP, or route it through a NAT gateway.",
                            sender.map_or("The source".to_string(), |s| s.id.clone())
                        ),
                    ));
                };
                self.leaves_for_the_internet(g, h)?;
                let out = Header {
                    source: public,
                    ..h
                };
                self.hop(g, HopKind::InternetGateway, out);
                self.back.push((
                    Back::Untranslate {
                        component: g.clone(),
                        kind: HopKind::InternetGateway,
                    },
                    h.reply(),
                ));
                self.internet_or_public(out, depth)
            }
            Target::NatGateway(n) => {
                let Some(nat) = self.net.nat_gateways.get(n) else {
                    return Err(explain(
                        "BAD_STATE",
                        n,
                        None,
                        format!("NAT gateway {n} does not exist."),
                    ));
                };
                if depth > 8 {
                    return Err(explain(
                        "NO_PATH",
                        n,
                        None,
                        "The path loops through NAT gateways.".into(),
                    ));
                }
                if !self.net.in_vpc(vpc_id, h.source) {
                    return Err(explain(
                        "NGW_REQUIRES_SOURCE_IN_VPC",
                        n,
                        None,
                        format!("NAT gateway {n} only forwards traffic from its own VPC."),
                    ));
                }
                if nat.subnet_id != subnet_id {
                    self.acl(&nat.subnet_id, Direction::Ingress, h)?;
                }
                let translated = Header {
                    source: nat.private_ip,
                    ..h
                };
                self.hop(n, HopKind::NatGateway, translated);
                self.back.push((
                    Back::Untranslate {
                        component: n.clone(),
                        kind: HopKind::NatGateway,
                    },
                    h.reply(),
                ));
                let route = self.route(&nat.subnet_id, translated)?;
                self.acl(&nat.subnet_id, Direction::Egress, translated)?;
                if let Target::InternetGateway(g) = &route.target {
                    let nat_vpc = &self.net.subnets[&nat.subnet_id].vpc_id;
                    if self
                        .net
                        .internet_gateways
                        .get(g)
                        .is_none_or(|x| x.vpc_id.as_ref() != Some(nat_vpc))
                    {
                        return Err(explain(
                            "BAD_STATE_ATTACHMENT",
                            g,
                            None,
                            format!("Internet gateway {g} is not attached to {nat_vpc}."),
                        ));
                    }
                    let Some(public) = nat.public_ip else {
                        return Err(explain(
                            "IGW_PUBLIC_IP_ASSOCIATION_FOR_EGRESS",
                            g,
                            Some(Direction::Egress),
                            format!(
                                "NAT gateway {n} is private: it has no Elastic IP to reach the internet with."
                            ),
                        ));
                    };
                    self.leaves_for_the_internet(g, translated)?;
                    let out = Header {
                        source: public,
                        ..translated
                    };
                    self.hop(g, HopKind::InternetGateway, out);
                    self.back.push((
                        Back::Untranslate {
                            component: g.clone(),
                            kind: HopKind::InternetGateway,
                        },
                        translated.reply(),
                    ));
                    return self.internet_or_public(out, depth);
                }
                let nat_vpc = self.net.subnets[&nat.subnet_id].vpc_id.clone();
                self.follow(&nat.subnet_id, &nat_vpc, route, translated, None, depth + 1)
            }
            Target::Peering(p) => {
                let Some(peering) = self.net.peerings.get(p).filter(|x| x.active) else {
                    return Err(explain(
                        "BAD_STATE",
                        p,
                        None,
                        format!("Peering connection {p} is not active."),
                    ));
                };
                let Some(peer_vpc) = peering.other_end(vpc_id).map(str::to_string) else {
                    return Err(explain(
                        "BAD_STATE",
                        p,
                        None,
                        format!("Peering connection {p} does not connect {vpc_id}."),
                    ));
                };
                // A peering carries traffic between the two VPCs only: not on to a third
                // VPC, nor out of the peer's gateways.
                if !self.net.in_vpc(&peer_vpc, h.destination) || !self.net.in_vpc(vpc_id, h.source)
                {
                    return Err(explain(
                        "PCX_REQUIRES_ADDRESS_IN_VPC_CIDR",
                        p,
                        None,
                        format!(
                            "Peering connection {p} only carries traffic between addresses of {vpc_id} and {peer_vpc}; {} -> {} is not (peering is not transitive).",
                            h.source, h.destination
                        ),
                    ));
                }
                self.hop(p, HopKind::Peering, h);
                let Some(d) = self.ix.interface_at(&peer_vpc, h.destination) else {
                    return Err(explain(
                        "UNKNOWN_DESTINATION",
                        &peer_vpc,
                        None,
                        format!(
                            "No interface in {peer_vpc} has the address {}.",
                            h.destination
                        ),
                    ));
                };
                self.back.push((
                    Back::Route {
                        subnet: d.subnet_id.clone(),
                        via: Target::Peering(p.clone()),
                    },
                    h.reply(),
                ));
                self.enter(d, h)
            }
            Target::Interface(a) => {
                let Some(appliance) = self.net.interfaces.get(a) else {
                    return Err(explain(
                        "BAD_STATE",
                        a,
                        None,
                        format!("Interface {a} does not exist."),
                    ));
                };
                if appliance.source_dest_check {
                    return Err(explain(
                        "ENI_SOURCE_DEST_CHECK_RESTRICTION",
                        a,
                        Some(Direction::Ingress),
                        format!(
                            "{a} drops traffic not addressed to it while its source/destination check is on; turn the check off for it to forward."
                        ),
                    ));
                }
                if appliance.subnet_id != subnet_id {
                    self.acl(&appliance.subnet_id, Direction::Ingress, h)?;
                }
                self.sg_ingress(appliance, h)?;
                self.hop(a, HopKind::Interface, h);
                self.send(appliance, h, depth + 1)
            }
            Target::GatewayEndpoint(x) => {
                self.hop(x, HopKind::GatewayEndpoint, h);
                Ok(Arrival::Internet)
            }
            Target::EgressOnlyInternetGateway(x) | Target::Other(x) => Err(explain(
                "NO_PATH",
                x,
                None,
                format!("{x} does not carry IPv4 traffic kumori can follow."),
            )),
        }
    }

    /// An internet gateway sends nothing to private or shared addresses.
    fn leaves_for_the_internet(&self, g: &str, h: Header) -> Step<()> {
        match not_on_the_internet(h.destination) {
            None => Ok(()),
            Some(code) => Err(explain(
                code,
                g,
                Some(Direction::Egress),
                format!(
                    "Internet gateway {g} does not send packets to {}: it is a private address, not on the internet (to reach another VPC, peer with it).",
                    h.destination
                ),
            )),
        }
    }

    /// The packet is on the internet side of a gateway: it has arrived, unless it is
    /// addressed to a public address of an interface (another VPC's, say).
    fn internet_or_public(&mut self, h: Header, _depth: usize) -> Step<Arrival<'n>> {
        match self.ix.interface_with_public(h.destination) {
            Some(d) => self.arrive_from_internet(d, h),
            None => {
                self.hop("internet", HopKind::Internet, h);
                Ok(Arrival::Internet)
            }
        }
    }

    /// A packet from the internet to public address `h.destination` of interface `d`.
    fn arrive_from_internet(&mut self, d: &'n Interface, h: Header) -> Step<Arrival<'n>> {
        let Some(g) = self.ix.gateway_of(&d.vpc_id) else {
            return Err(explain(
                "IGW_PRIVATE_IP_ASSOCIATION_FOR_INGRESS",
                &d.vpc_id,
                Some(Direction::Ingress),
                format!("{} has no internet gateway attached.", d.vpc_id),
            ));
        };
        let g = g.id.clone();
        let inside = Header {
            destination: d.primary_ip(),
            ..h
        };
        self.hop(&g, HopKind::InternetGateway, inside);
        // Back (in reverse): the subnet's route to the gateway, then the gateway mapping
        // the private source back to the public address.
        self.back.push((
            Back::Untranslate {
                component: g.clone(),
                kind: HopKind::InternetGateway,
            },
            h.reply(),
        ));
        self.back.push((
            Back::Route {
                subnet: d.subnet_id.clone(),
                via: Target::InternetGateway(g),
            },
            inside.reply(),
        ));
        self.enter(d, inside)
    }

    /// Into interface `d` from outside its subnet.
    fn enter(&mut self, d: &'n Interface, h: Header) -> Step<Arrival<'n>> {
        self.acl(&d.subnet_id, Direction::Ingress, h)?;
        self.sg_ingress(d, h)?;
        self.hop(&d.id, HopKind::Interface, h);
        Ok(Arrival::Interface(d))
    }

    /// Into interface `d` from its own subnet.
    fn deliver(&mut self, d: &'n Interface, h: Header, _subnet: &str) -> Step<Arrival<'n>> {
        self.sg_ingress(d, h)?;
        self.hop(&d.id, HopKind::Interface, h);
        Ok(Arrival::Interface(d))
    }

    /// The reply, back through everything noted on the way.
    fn come_back(&mut self) -> Step<Vec<Hop>> {
        let mut hops = Vec::new();
        let back = std::mem::take(&mut self.back);
        for (b, reply) in back.into_iter().rev() {
            match b {
                Back::Acl { subnet, direction } => {
                    let acl_id = self.net.subnets[&subnet].network_acl_id.clone();
                    let acl = self.net.network_acls.get(&acl_id);
                    let (rules, peer) = match direction {
                        Direction::Egress => (acl.map(|a| a.egress.as_slice()), reply.destination),
                        Direction::Ingress => (acl.map(|a| a.ingress.as_slice()), reply.source),
                    };
                    match rules
                        .and_then(|r| acl_decides(r, reply.protocol, reply.destination_port, peer))
                    {
                        Some(rule) if rule.allow => hops.push(Hop {
                            component: acl_id,
                            kind: HopKind::NetworkAcl {
                                rule_number: rule.number,
                                egress: direction == Direction::Egress,
                            },
                            header: reply,
                        }),
                        _ => {
                            return Err(explain(
                                "SUBNET_ACL_RESTRICTION",
                                &acl_id,
                                Some(direction),
                                format!(
                                    "Network ACL {acl_id} of {subnet} does not allow the reply: {} {} port {} {} {peer}. ACLs are stateless: allow the ephemeral ports (1024-65535) for return traffic.",
                                    direction.name(),
                                    reply.protocol.name(),
                                    reply.destination_port,
                                    if direction == Direction::Egress {
                                        "to"
                                    } else {
                                        "from"
                                    },
                                ),
                            ));
                        }
                    }
                }
                Back::Route { subnet, via } => {
                    let table_id = self.net.subnets[&subnet].route_table_id.clone();
                    let route = self
                        .net
                        .route_tables
                        .get(&table_id)
                        .and_then(|t| route_for(t, reply.destination))
                        .cloned();
                    match route {
                        Some(r) if r.target == via && !r.blackhole => hops.push(Hop {
                            component: table_id,
                            kind: HopKind::RouteTable { route: r },
                            header: reply,
                        }),
                        _ => {
                            let via_id = match &via {
                                Target::InternetGateway(x) | Target::Peering(x) => x.clone(),
                                _ => "the local route".into(),
                            };
                            return Err(explain(
                                "NO_ROUTE_TO_DESTINATION",
                                &table_id,
                                None,
                                format!(
                                    "Route table {table_id} does not have an applicable route to {via_id} for the reply to {}: the return path needs one.",
                                    reply.destination
                                ),
                            ));
                        }
                    }
                }
                Back::Untranslate { component, kind } => hops.push(Hop {
                    component,
                    kind,
                    header: reply,
                }),
            }
        }
        Ok(hops)
    }
}

enum Arrival<'n> {
    Interface(&'n Interface),
    Internet,
}

/// Decides one packet of `protocol` to port `port`, from `from` to `to`, there and back.
pub fn trace(
    net: &Network,
    from: &Endpoint,
    to: &Endpoint,
    protocol: Protocol,
    port: u16,
) -> Verdict {
    trace_in(&Index::new(net), from, to, protocol, port)
}

/// [`trace`] over an index built once, for callers that ask many questions of one snapshot.
pub fn trace_in(
    ix: &Index<'_>,
    from: &Endpoint,
    to: &Endpoint,
    protocol: Protocol,
    port: u16,
) -> Verdict {
    let mut walk = Walk {
        net: ix.net,
        ix,
        forward: Vec::new(),
        back: Vec::new(),
    };
    let result = run(&mut walk, from, to, protocol, port).and_then(|()| walk.come_back());
    match result {
        Ok(ret) => Verdict {
            reachable: true,
            forward: walk.forward,
            ret,
            explanations: vec![],
        },
        Err(e) => Verdict {
            reachable: false,
            forward: walk.forward,
            ret: vec![],
            explanations: vec![e],
        },
    }
}

fn run(
    walk: &mut Walk<'_, '_>,
    from: &Endpoint,
    to: &Endpoint,
    protocol: Protocol,
    port: u16,
) -> Step<()> {
    let net = walk.net;
    let missing = |id: &str| {
        explain(
            "NO_SOURCE_OR_DESTINATION",
            id,
            None,
            format!("{id} does not exist."),
        )
    };
    match from {
        Endpoint::Interface(id) => {
            let s = net.interfaces.get(id).ok_or_else(|| missing(id))?;
            let destination = match to {
                Endpoint::Address(ip) => *ip,
                Endpoint::Interface(d) => {
                    let d = net.interfaces.get(d).ok_or_else(|| missing(d))?;
                    connected_address(net, s, d)?
                }
            };
            let h = Header {
                source: s.primary_ip(),
                destination,
                protocol,
                source_port: EPHEMERAL_PORT,
                destination_port: port,
            };
            walk.hop(&s.id, HopKind::Interface, h);
            let arrival = walk.send(s, h, 0)?;
            if let (Endpoint::Interface(want), Arrival::Interface(got)) = (to, &arrival)
                && &got.id != want
            {
                return Err(explain(
                    "UNKNOWN_DESTINATION",
                    want,
                    None,
                    format!("The packet reached {} instead of {want}.", got.id),
                ));
            }
            Ok(())
        }
        Endpoint::Address(source) => {
            // From the internet: to an interface's public address.
            let d = match to {
                Endpoint::Interface(id) => net.interfaces.get(id).ok_or_else(|| missing(id))?,
                Endpoint::Address(ip) => walk.ix.interface_with_public(*ip).ok_or_else(|| {
                    explain(
                        "IGW_PRIVATE_IP_ASSOCIATION_FOR_INGRESS",
                        &ip.to_string(),
                        Some(Direction::Ingress),
                        format!("No interface has the public address {ip}."),
                    )
                })?,
            };
            let Some(public) = d.public_ip else {
                return Err(explain(
                    "IGW_PRIVATE_IP_ASSOCIATION_FOR_INGRESS",
                    &d.id,
                    Some(Direction::Ingress),
                    format!(
                        "{} has no public IPv4 address, so nothing on the internet can reach it: give it a public or Elastic IP, or reach it through a bastion in a public subnet.",
                        d.id
                    ),
                ));
            };
            let h = Header {
                source: *source,
                destination: public,
                protocol,
                source_port: EPHEMERAL_PORT,
                destination_port: port,
            };
            walk.hop("internet", HopKind::Internet, h);
            walk.arrive_from_internet(d, h).map(|_| ())
        }
    }
}

/// The address a packet from `s` to `d` is sent to: `d`'s private address when the two
/// VPCs are one or peered, its public address otherwise.
fn connected_address(net: &Network, s: &Interface, d: &Interface) -> Step<Ipv4Addr> {
    let peered = net
        .peerings
        .values()
        .any(|p| p.active && p.other_end(&s.vpc_id) == Some(d.vpc_id.as_str()));
    if s.vpc_id == d.vpc_id || peered {
        return Ok(d.primary_ip());
    }
    d.public_ip.ok_or_else(|| {
        explain(
            "DISCONNECTED_VPCS",
            &d.id,
            None,
            format!(
                "{} and {} are in VPCs that are not connected, and {} has no public address.",
                s.id, d.id, d.id
            ),
        )
    })
}

/// Whether an interface belongs to an instance (for messages and callers that start from
/// instances).
pub fn instance_of(e: &Interface) -> Option<&str> {
    match &e.owner {
        Owner::Instance(i) => Some(i),
        _ => None,
    }
}
