//! What a reviewer would flag in a network: admin and database ports open to the whole
//! internet, interfaces the internet reaches although their subnet has no default route to
//! a gateway, network ACL entries that can never match because an earlier one always does,
//! and security groups that nothing uses.

use super::classes::internet_representatives;
use super::engine::ports;
use super::index::Index;
use super::model::{AclRule, Network, Peer, Protocol, ProtocolMatch, Target};
use super::portset::PortSet;
use super::trace::Endpoint;

/// Ports an administrator logs in on.
pub const ADMIN_PORTS: &[(u16, &str)] = &[(22, "SSH"), (3389, "RDP")];
/// Ports databases listen on.
pub const DATABASE_PORTS: &[(u16, &str)] = &[
    (1433, "SQL Server"),
    (1521, "Oracle"),
    (3306, "MySQL"),
    (5432, "PostgreSQL"),
    (6379, "Redis"),
    (9200, "Elasticsearch"),
    (27017, "MongoDB"),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// `OPEN_ADMIN_PORT`, `OPEN_DATABASE_PORT`, `INTERNET_REACHABLE_WITHOUT_DEFAULT_ROUTE`,
    /// `SHADOWED_ACL_ENTRY`, `UNUSED_SECURITY_GROUP`.
    pub code: &'static str,
    /// The component to change.
    pub component: String,
    pub message: String,
}

fn whole_internet(peer: &Peer) -> bool {
    match peer {
        Peer::Cidr(c) => c.prefix_len() == 0,
        Peer::PrefixList(_, entries) => entries.iter().any(|c| c.prefix_len() == 0),
        Peer::Group(_) => false,
    }
}

fn tcp_covers(p: ProtocolMatch, ports: super::model::Ports, port: u16) -> bool {
    p.matches(Protocol::Tcp) && (!p.has_ports() || ports.contains(port))
}

/// Whether `earlier` matches every packet `later` matches.
fn covers(earlier: &AclRule, later: &AclRule) -> bool {
    let protocol = match (earlier.protocol, later.protocol) {
        (ProtocolMatch::All, _) => true,
        (a, b) => a == b,
    };
    let ports = !earlier.protocol.has_ports()
        || (later.protocol.has_ports()
            && earlier.ports.from <= later.ports.from
            && earlier.ports.to >= later.ports.to);
    let cidr = earlier.cidr.contains(&later.cidr);
    protocol && ports && cidr
}

/// Every finding in `net`, in a stable order.
pub fn audit(net: &Network) -> Vec<Finding> {
    let mut out = Vec::new();
    for g in net.security_groups.values() {
        for r in g.ingress.iter().filter(|r| whole_internet(&r.peer)) {
            for (list, code, what) in [
                (ADMIN_PORTS, "OPEN_ADMIN_PORT", "admin"),
                (DATABASE_PORTS, "OPEN_DATABASE_PORT", "database"),
            ] {
                for (port, name) in list {
                    if tcp_covers(r.protocol, r.ports, *port) {
                        out.push(Finding {
                            code,
                            component: g.id.clone(),
                            message: format!(
                                "Security group {} ({}) rule {} lets the whole internet (0.0.0.0/0) reach {what} port {port} ({name}): allow only the addresses that need it, or reach it through a bastion.",
                                g.id, g.name, r.id
                            ),
                        });
                    }
                }
            }
        }
        let used = net.interfaces.values().any(|e| e.groups.contains(&g.id));
        if !used && g.name != "default" {
            out.push(Finding {
                code: "UNUSED_SECURITY_GROUP",
                component: g.id.clone(),
                message: format!(
                    "Security group {} ({}) is on no network interface: delete it or attach it where it was meant to be.",
                    g.id, g.name
                ),
            });
        }
    }
    for a in net.network_acls.values() {
        for (side, rules) in [("inbound", &a.ingress), ("outbound", &a.egress)] {
            // The final `*` entry (32767) is AWS's and cannot be changed: not a finding.
            for (i, later) in rules.iter().enumerate().filter(|(_, r)| r.number < 32767) {
                if let Some(earlier) = rules[..i].iter().find(|e| covers(e, later)) {
                    out.push(Finding {
                        code: "SHADOWED_ACL_ENTRY",
                        component: a.id.clone(),
                        message: format!(
                            "Network ACL {} {side} rule {} ({}) never applies: rule {} ({}) matches everything it does first.",
                            a.id,
                            later.number,
                            if later.allow { "allow" } else { "deny" },
                            earlier.number,
                            if earlier.allow { "allow" } else { "deny" },
                        ),
                    });
                }
            }
        }
    }
    // Interfaces with a public address in a subnet without a default route to an internet
    // gateway ("private" by the usual reading) that the internet reaches anyway.
    let ix = Index::new(net);
    let sources = internet_representatives(net);
    for e in net.interfaces.values().filter(|e| e.public_ip.is_some()) {
        let Some(subnet) = net.subnets.get(&e.subnet_id) else {
            continue;
        };
        let default_to_gateway = net
            .route_tables
            .get(&subnet.route_table_id)
            .is_some_and(|t| {
                t.routes.iter().any(|r| {
                    r.destination.prefix_len() == 0
                        && matches!(r.target, Target::InternetGateway(_))
                        && !r.blackhole
                })
            });
        if default_to_gateway {
            continue;
        }
        let to = Endpoint::Interface(e.id.clone());
        let reached = sources.iter().find_map(|s| {
            let from = Endpoint::Address(*s);
            let port = ports(&ix, &from, &to, Protocol::Tcp).open_port(&PortSet::all())?;
            Some((*s, port))
        });
        if let Some((source, port)) = reached {
            out.push(Finding {
                code: "INTERNET_REACHABLE_WITHOUT_DEFAULT_ROUTE",
                component: e.id.clone(),
                message: format!(
                    "{} is in {}, which has no default route to an internet gateway, yet {source} reaches it on tcp/{port} through its public address: remove the public address or the route that lets the internet in.",
                    e.id, e.subnet_id
                ),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reach::model::*;

    fn rule(number: u16, allow: bool, cidr: &str, ports: Ports) -> AclRule {
        AclRule {
            number,
            protocol: ProtocolMatch::Number(6),
            ports,
            cidr: cidr.parse().unwrap(),
            allow,
        }
    }

    #[test]
    fn an_entry_covered_by_an_earlier_one_is_shadowed() {
        let broad = rule(100, false, "0.0.0.0/0", Ports::ALL);
        let narrow = rule(200, true, "203.0.113.0/24", Ports::one(22));
        assert!(covers(&broad, &narrow));
        assert!(!covers(&narrow, &broad));
        let other_port = rule(300, true, "0.0.0.0/0", Ports::one(80));
        assert!(!covers(&narrow, &other_port));
        let all = AclRule {
            protocol: ProtocolMatch::All,
            ..rule(50, true, "10.0.0.0/8", Ports::ALL)
        };
        assert!(covers(
            &all,
            &rule(60, false, "10.1.0.0/16", Ports::one(443))
        ));
    }
}
