//! The engine: every destination port of a protocol at once. Where the reference evaluator
//! (`trace`) walks one packet, the engine walks the path once with the *set* of ports still
//! alive and splits it at every filter: a security group passes the union of its matching
//! rules' ranges, a network ACL hands each range to its first matching rule. Routing and
//! translation depend on addresses only, so one walk serves every port; so does the return
//! path, whose ACLs see the client's ephemeral port.
//!
//! The answer partitions the 65,536 ports: those that get there and back, and for each
//! blocked range the explanation code and the component that stops it, exactly as `trace`
//! would report for any one port of the range (property-tested against it over random
//! networks in `engine_vs_reference`).

use super::index::Index;
use super::model::{EPHEMERAL_PORT, Interface, Ports, Protocol, Target};
use super::portset::PortSet;
use super::rules::{Direction, not_on_the_internet, route_for, sg_rule_matches};
use super::trace::Endpoint;
use std::net::Ipv4Addr;

/// Why a range of ports does not get through: AWS's code and the component responsible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stop {
    pub code: &'static str,
    pub component: String,
    pub direction: Option<Direction>,
}

/// The verdict for every port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortVerdicts {
    pub reachable: PortSet,
    /// Disjoint from each other and from `reachable`; together they hold every port.
    pub blocked: Vec<(PortSet, Stop)>,
}

impl PortVerdicts {
    /// What happens to one port: `Ok` if it gets there and back.
    pub fn at(&self, port: u16) -> Result<(), &Stop> {
        if self.reachable.contains(port) {
            return Ok(());
        }
        Err(self
            .blocked
            .iter()
            .find(|(s, _)| s.contains(port))
            .map(|(_, w)| w)
            .expect("the verdicts cover every port"))
    }
}

/// Ports people ask about first; when several ports get through, an answer names one of
/// these before the lowest.
pub const USUAL_PORTS: &[u16] = &[22, 443, 80, 3389, 3306, 5432];

impl PortVerdicts {
    /// A port of `within` that gets through, the usual ones first.
    pub fn open_port(&self, within: &PortSet) -> Option<u16> {
        let open = self.reachable.intersect(within);
        USUAL_PORTS
            .iter()
            .copied()
            .find(|p| open.contains(*p))
            .or(open.first())
    }
}

/// Every port of `protocol` from `from` to `to`, there and back.
pub fn ports(ix: &Index<'_>, from: &Endpoint, to: &Endpoint, protocol: Protocol) -> PortVerdicts {
    let mut s = Sweep {
        ix,
        protocol,
        live: PortSet::all(),
        blocked: Vec::new(),
        back: Vec::new(),
    };
    if s.start(from, to).is_ok() {
        s.come_back();
    }
    PortVerdicts {
        reachable: s.live,
        blocked: s.blocked,
    }
}

/// Addresses of a packet; its destination port is the set the sweep carries.
#[derive(Debug, Clone, Copy)]
struct Addrs {
    src: Ipv4Addr,
    dst: Ipv4Addr,
}

/// A check the reply must pass, with the reply's addresses.
enum BackCheck {
    Acl(String, Direction),
    Route(String, Target),
}

/// Every live port is decided: nothing further to walk.
struct Done;

type Go = Result<(), Done>;

struct Sweep<'n, 'i> {
    ix: &'i Index<'n>,
    protocol: Protocol,
    live: PortSet,
    blocked: Vec<(PortSet, Stop)>,
    back: Vec<(BackCheck, Addrs)>,
}

fn stop(code: &'static str, component: &str, direction: Option<Direction>) -> Stop {
    Stop {
        code,
        component: component.to_string(),
        direction,
    }
}

impl<'n> Sweep<'n, '_> {
    /// Every live port stops here.
    fn halt(&mut self, why: Stop) -> Done {
        let live = std::mem::take(&mut self.live);
        if !live.is_empty() {
            self.blocked.push((live, why));
        }
        Done
    }

    /// Only the `pass` ports go on; the rest stop for `why`.
    fn narrow(&mut self, pass: &PortSet, why: Stop) -> Go {
        let denied = self.live.minus(pass);
        if !denied.is_empty() {
            self.blocked.push((denied, why));
        }
        self.live = self.live.intersect(pass);
        if self.live.is_empty() {
            Err(Done)
        } else {
            Ok(())
        }
    }

    /// The ports a rule matching `protocol` covers (all of them where ports mean nothing).
    fn span_of(&self, has_ports: bool, p: Ports) -> PortSet {
        if has_ports {
            PortSet::range(p)
        } else {
            PortSet::all()
        }
    }

    fn groups(&mut self, e: &Interface, direction: Direction, peer: Ipv4Addr) -> Go {
        let mut pass = PortSet::empty();
        for g in e
            .groups
            .iter()
            .filter_map(|g| self.ix.net.security_groups.get(g))
        {
            let rules = match direction {
                Direction::Ingress => &g.ingress,
                Direction::Egress => &g.egress,
            };
            for r in rules {
                // Whether the rule matches at all does not depend on the port: ask at a
                // port inside its range.
                let probe = if r.protocol.has_ports() {
                    r.ports.from
                } else {
                    0
                };
                if r.protocol.has_ports() && r.ports.from > r.ports.to {
                    continue;
                }
                if sg_rule_matches(self.ix, r, self.protocol, probe, peer) {
                    pass = pass.union(&self.span_of(r.protocol.has_ports(), r.ports));
                }
            }
        }
        self.narrow(&pass, stop("ENI_SG_RULES_MISMATCH", &e.id, Some(direction)))
    }

    /// The ports subnet `subnet_id`'s ACL lets through one way: each range goes to its first
    /// matching rule, and what no rule takes to the final deny.
    fn acl_pass(&self, subnet_id: &str, direction: Direction, a: Addrs) -> (String, PortSet) {
        let subnet = &self.ix.net.subnets[subnet_id];
        let acl = self.ix.net.network_acls.get(&subnet.network_acl_id);
        let (rules, peer) = match direction {
            Direction::Egress => (acl.map(|x| x.egress.as_slice()), a.dst),
            Direction::Ingress => (acl.map(|x| x.ingress.as_slice()), a.src),
        };
        let mut undecided = PortSet::all();
        let mut pass = PortSet::empty();
        for r in rules.unwrap_or_default() {
            if !r.protocol.matches(self.protocol) || !r.cidr.contains(&peer) {
                continue;
            }
            let taken = undecided.intersect(&self.span_of(r.protocol.has_ports(), r.ports));
            if r.allow {
                pass = pass.union(&taken);
            }
            undecided = undecided.minus(&taken);
        }
        (subnet.network_acl_id.clone(), pass)
    }

    fn acl(&mut self, subnet_id: &str, direction: Direction, a: Addrs) -> Go {
        let (acl_id, pass) = self.acl_pass(subnet_id, direction, a);
        self.narrow(
            &pass,
            stop("SUBNET_ACL_RESTRICTION", &acl_id, Some(direction)),
        )?;
        let reverse = match direction {
            Direction::Egress => Direction::Ingress,
            Direction::Ingress => Direction::Egress,
        };
        self.back.push((
            BackCheck::Acl(subnet_id.to_string(), reverse),
            Addrs {
                src: a.dst,
                dst: a.src,
            },
        ));
        Ok(())
    }

    /// The usable route out of `subnet_id` to `dst`.
    fn route(&mut self, subnet_id: &str, dst: Ipv4Addr) -> Result<Target, Done> {
        let table_id = &self.ix.net.subnets[subnet_id].route_table_id;
        match self
            .ix
            .net
            .route_tables
            .get(table_id)
            .and_then(|t| route_for(t, dst))
        {
            None => Err(self.halt(stop("NO_ROUTE_TO_DESTINATION", table_id, None))),
            Some(r) if r.blackhole => Err(self.halt(stop("BAD_STATE_ROUTE", table_id, None))),
            Some(r) => Ok(r.target.clone()),
        }
    }

    fn start(&mut self, from: &Endpoint, to: &Endpoint) -> Go {
        let net = self.ix.net;
        let missing = |id: &str| stop("NO_SOURCE_OR_DESTINATION", id, None);
        match from {
            Endpoint::Interface(id) => {
                let Some(s) = net.interfaces.get(id) else {
                    return Err(self.halt(missing(id)));
                };
                let dst = match to {
                    Endpoint::Address(ip) => *ip,
                    Endpoint::Interface(d_id) => {
                        let Some(d) = net.interfaces.get(d_id) else {
                            return Err(self.halt(missing(d_id)));
                        };
                        let joined = s.vpc_id == d.vpc_id
                            || net.peerings.values().any(|p| {
                                p.active && p.other_end(&s.vpc_id) == Some(d.vpc_id.as_str())
                            });
                        match (joined, d.public_ip) {
                            (true, _) => d.primary_ip(),
                            (false, Some(public)) => public,
                            (false, None) => {
                                return Err(self.halt(stop("DISCONNECTED_VPCS", &d.id, None)));
                            }
                        }
                    }
                };
                let reached = self.send(
                    s,
                    Addrs {
                        src: s.primary_ip(),
                        dst,
                    },
                    0,
                )?;
                match (to, reached) {
                    (Endpoint::Interface(want), Some(got)) if &got.id != want => {
                        Err(self.halt(stop("UNKNOWN_DESTINATION", want, None)))
                    }
                    _ => Ok(()),
                }
            }
            Endpoint::Address(src) => {
                let d = match to {
                    Endpoint::Interface(id) => match net.interfaces.get(id) {
                        Some(d) => d,
                        None => return Err(self.halt(missing(id))),
                    },
                    Endpoint::Address(ip) => match self.ix.interface_with_public(*ip) {
                        Some(d) => d,
                        None => {
                            return Err(self.halt(stop(
                                "IGW_PRIVATE_IP_ASSOCIATION_FOR_INGRESS",
                                &ip.to_string(),
                                Some(Direction::Ingress),
                            )));
                        }
                    },
                };
                let Some(public) = d.public_ip else {
                    return Err(self.halt(stop(
                        "IGW_PRIVATE_IP_ASSOCIATION_FOR_INGRESS",
                        &d.id,
                        Some(Direction::Ingress),
                    )));
                };
                self.arrive_from_internet(
                    d,
                    Addrs {
                        src: *src,
                        dst: public,
                    },
                )
                .map(|_| ())
            }
        }
    }

    /// Out of interface `e`; the interface reached, or `None` for the internet.
    fn send(
        &mut self,
        e: &'n Interface,
        a: Addrs,
        depth: usize,
    ) -> Result<Option<&'n Interface>, Done> {
        if depth > 8 {
            return Err(self.halt(stop("NO_PATH", &e.id, None)));
        }
        self.groups(e, Direction::Egress, a.dst)?;
        let subnet = &self.ix.net.subnets[&e.subnet_id];
        if subnet.cidr.contains(&a.dst)
            && let Some(d) = self.ix.interface_at(&e.vpc_id, a.dst)
        {
            self.route(&e.subnet_id, a.dst)?;
            self.groups(d, Direction::Ingress, a.src)?;
            return Ok(Some(d));
        }
        let target = self.route(&e.subnet_id, a.dst)?;
        self.acl(&e.subnet_id, Direction::Egress, a)?;
        self.take(&e.subnet_id, &e.vpc_id, target, a, Some(e), depth)
    }

    /// Where a route's target takes the packet.
    fn take(
        &mut self,
        subnet_id: &str,
        vpc_id: &str,
        target: Target,
        a: Addrs,
        sender: Option<&'n Interface>,
        depth: usize,
    ) -> Result<Option<&'n Interface>, Done> {
        let net = self.ix.net;
        match target {
            Target::Local => match self.ix.interface_at(vpc_id, a.dst) {
                Some(d) => {
                    // The reply is routed by the destination's subnet: back locally.
                    self.back.push((
                        BackCheck::Route(d.subnet_id.clone(), Target::Local),
                        Addrs {
                            src: a.dst,
                            dst: a.src,
                        },
                    ));
                    self.enter(d, a).map(Some)
                }
                None => Err(self.halt(stop("UNKNOWN_DESTINATION", vpc_id, None))),
            },
            Target::InternetGateway(g) => {
                let attached = net
                    .internet_gateways
                    .get(&g)
                    .is_some_and(|x| x.vpc_id.as_deref() == Some(vpc_id));
                if !attached {
                    return Err(self.halt(stop("BAD_STATE_ATTACHMENT", &g, None)));
                }
                let public = sender
                    .filter(|s| s.private_ips.first() == Some(&a.src) || !s.source_dest_check)
                    .and_then(|s| s.public_ip);
                if public.is_some()
                    && let Some(code) = not_on_the_internet(a.dst)
                {
                    return Err(self.halt(stop(code, &g, Some(Direction::Egress))));
                }
                match public {
                    Some(p) => self.internet_side(Addrs { src: p, dst: a.dst }),
                    None => Err(self.halt(stop(
                        "IGW_PUBLIC_IP_ASSOCIATION_FOR_EGRESS",
                        &g,
                        Some(Direction::Egress),
                    ))),
                }
            }
            Target::NatGateway(n) => {
                let Some(nat) = net.nat_gateways.get(&n) else {
                    return Err(self.halt(stop("BAD_STATE", &n, None)));
                };
                if depth > 8 {
                    return Err(self.halt(stop("NO_PATH", &n, None)));
                }
                if !net.in_vpc(vpc_id, a.src) {
                    return Err(self.halt(stop("NGW_REQUIRES_SOURCE_IN_VPC", &n, None)));
                }
                if nat.subnet_id != subnet_id {
                    self.acl(&nat.subnet_id, Direction::Ingress, a)?;
                }
                let inner = Addrs {
                    src: nat.private_ip,
                    dst: a.dst,
                };
                let onward = self.route(&nat.subnet_id, inner.dst)?;
                self.acl(&nat.subnet_id, Direction::Egress, inner)?;
                if let Target::InternetGateway(g) = &onward {
                    let nat_vpc = &net.subnets[&nat.subnet_id].vpc_id;
                    if net
                        .internet_gateways
                        .get(g)
                        .is_none_or(|x| x.vpc_id.as_ref() != Some(nat_vpc))
                    {
                        return Err(self.halt(stop("BAD_STATE_ATTACHMENT", g, None)));
                    }
                    if nat.public_ip.is_some()
                        && let Some(code) = not_on_the_internet(a.dst)
                    {
                        return Err(self.halt(stop(code, g, Some(Direction::Egress))));
                    }
                    return match nat.public_ip {
                        Some(p) => self.internet_side(Addrs { src: p, dst: a.dst }),
                        None => Err(self.halt(stop(
                            "IGW_PUBLIC_IP_ASSOCIATION_FOR_EGRESS",
                            g,
                            Some(Direction::Egress),
                        ))),
                    };
                }
                let nat_vpc = net.subnets[&nat.subnet_id].vpc_id.clone();
                self.take(&nat.subnet_id, &nat_vpc, onward, inner, None, depth + 1)
            }
            Target::Peering(p) => {
                let Some(peer_vpc) = net
                    .peerings
                    .get(&p)
                    .filter(|x| x.active)
                    .and_then(|x| x.other_end(vpc_id))
                else {
                    return Err(self.halt(stop("BAD_STATE", &p, None)));
                };
                if !net.in_vpc(peer_vpc, a.dst) || !net.in_vpc(vpc_id, a.src) {
                    return Err(self.halt(stop("PCX_REQUIRES_ADDRESS_IN_VPC_CIDR", &p, None)));
                }
                let Some(d) = self.ix.interface_at(peer_vpc, a.dst) else {
                    return Err(self.halt(stop("UNKNOWN_DESTINATION", peer_vpc, None)));
                };
                self.back.push((
                    BackCheck::Route(d.subnet_id.clone(), Target::Peering(p.clone())),
                    Addrs {
                        src: a.dst,
                        dst: a.src,
                    },
                ));
                self.enter(d, a).map(Some)
            }
            Target::Interface(x) => {
                let Some(appliance) = net.interfaces.get(&x) else {
                    return Err(self.halt(stop("BAD_STATE", &x, None)));
                };
                if appliance.source_dest_check {
                    return Err(self.halt(stop(
                        "ENI_SOURCE_DEST_CHECK_RESTRICTION",
                        &x,
                        Some(Direction::Ingress),
                    )));
                }
                if appliance.subnet_id != subnet_id {
                    self.acl(&appliance.subnet_id, Direction::Ingress, a)?;
                }
                self.groups(appliance, Direction::Ingress, a.src)?;
                self.send(appliance, a, depth + 1)
            }
            // The service is behind the endpoint: arrived, with the return crossing only
            // the subnet's ACL again (already noted) and no translation.
            Target::GatewayEndpoint(_) => Ok(None),
            Target::EgressOnlyInternetGateway(x) | Target::Other(x) => {
                Err(self.halt(stop("NO_PATH", &x, None)))
            }
        }
    }

    /// Past an internet gateway: the internet, or back in through a public address.
    fn internet_side(&mut self, a: Addrs) -> Result<Option<&'n Interface>, Done> {
        match self.ix.interface_with_public(a.dst) {
            Some(d) => self.arrive_from_internet(d, a).map(Some),
            None => Ok(None),
        }
    }

    /// From the internet to `d`'s public address.
    fn arrive_from_internet(&mut self, d: &'n Interface, a: Addrs) -> Result<&'n Interface, Done> {
        let Some(g) = self.ix.gateway_of(&d.vpc_id) else {
            return Err(self.halt(stop(
                "IGW_PRIVATE_IP_ASSOCIATION_FOR_INGRESS",
                &d.vpc_id,
                Some(Direction::Ingress),
            )));
        };
        let inside = Addrs {
            src: a.src,
            dst: d.primary_ip(),
        };
        self.back.push((
            BackCheck::Route(d.subnet_id.clone(), Target::InternetGateway(g.id.clone())),
            Addrs {
                src: inside.dst,
                dst: inside.src,
            },
        ));
        self.enter(d, inside)
    }

    /// Into `d` from outside its subnet.
    fn enter(&mut self, d: &'n Interface, a: Addrs) -> Result<&'n Interface, Done> {
        self.acl(&d.subnet_id, Direction::Ingress, a)?;
        self.groups(d, Direction::Ingress, a.src)?;
        Ok(d)
    }

    /// The reply, last crossing first. Its destination port is the client's ephemeral
    /// port whatever the request's, so every live port passes or none does.
    fn come_back(&mut self) {
        let back = std::mem::take(&mut self.back);
        for (check, a) in back.into_iter().rev() {
            let failed = match check {
                BackCheck::Acl(subnet, direction) => {
                    let (acl_id, pass) = self.acl_pass(&subnet, direction, a);
                    (!pass.contains(EPHEMERAL_PORT))
                        .then(|| stop("SUBNET_ACL_RESTRICTION", &acl_id, Some(direction)))
                }
                BackCheck::Route(subnet, via) => {
                    let table_id = &self.ix.net.subnets[&subnet].route_table_id;
                    let ok = self
                        .ix
                        .net
                        .route_tables
                        .get(table_id)
                        .and_then(|t| route_for(t, a.dst))
                        .is_some_and(|r| r.target == via && !r.blackhole);
                    (!ok).then(|| stop("NO_ROUTE_TO_DESTINATION", table_id, None))
                }
            };
            if let Some(why) = failed {
                self.halt(why);
                return;
            }
        }
    }
}

/// Interfaces that offer a way round a path: `from` reaches them on SSH (tcp/22) and they
/// reach `to` with `protocol` on `port` — the bastion to jump through when the direct
/// path is blocked.
pub fn jump_hosts<'n>(
    ix: &Index<'n>,
    from: &Endpoint,
    to: &Endpoint,
    protocol: Protocol,
    port: u16,
) -> Vec<&'n Interface> {
    use super::trace::trace_in;
    ix.net
        .interfaces
        .values()
        .filter(|b| {
            let hop = Endpoint::Interface(b.id.clone());
            &hop != from
                && &hop != to
                && trace_in(ix, from, &hop, Protocol::Tcp, 22).reachable
                && trace_in(ix, &hop, to, protocol, port).reachable
        })
        .collect()
}
