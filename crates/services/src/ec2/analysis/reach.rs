//! Reachability over what the store holds: builds `kumori-net`'s snapshot of one account and
//! region from the EC2 resources, resolves what a person names (an instance, an interface,
//! an address) and asks the engine and the reference evaluator. Used by `kumori reach` and
//! `kumori audit`; the Reachability Analyzer APIs build the same snapshot.

use crate::ec2::addresses::Address;
use crate::ec2::eni::NetworkInterface;
use crate::ec2::igw::InternetGateway;
use crate::ec2::instances::Instance;
use crate::ec2::nacl::NetworkAcl;
use crate::ec2::natgw::NatGateway;
use crate::ec2::peering::VpcPeeringConnection;
use crate::ec2::prefix_list::ManagedPrefixList;
use crate::ec2::routes::RouteTable;
use crate::ec2::sg::{SecurityGroup, SgRule};
use crate::ec2::subnet::Subnet;
use crate::ec2::vpc::Vpc;
use crate::resource;
use crate::{Ctx, Error, Result};
use ipnet::Ipv4Net;
use kumori_net::reach::engine::{self, PortVerdicts};
use kumori_net::reach::index::Index;
use kumori_net::reach::model::{self as m, Network, Owner, Peer, Ports, ProtocolMatch, Target};
use kumori_net::reach::portset::PortSet;
use kumori_net::reach::trace::{Endpoint, Verdict, trace_in};
use std::collections::HashMap;
use std::net::Ipv4Addr;

fn protocol_match(p: &str) -> ProtocolMatch {
    match p {
        "-1" | "all" => ProtocolMatch::All,
        "tcp" => ProtocolMatch::Number(6),
        "udp" => ProtocolMatch::Number(17),
        "icmp" => ProtocolMatch::Number(1),
        n => n
            .parse::<u8>()
            .map(ProtocolMatch::Number)
            .unwrap_or(ProtocolMatch::All),
    }
}

fn ports(from: Option<i64>, to: Option<i64>) -> Ports {
    match (from, to) {
        (Some(f), Some(t)) if f >= 0 && t >= 0 => Ports {
            from: f.clamp(0, 65535) as u16,
            to: t.clamp(0, 65535) as u16,
        },
        _ => Ports::ALL,
    }
}

fn cidr(s: &str) -> Option<Ipv4Net> {
    s.parse().ok()
}

/// The snapshot of the networks of the caller's account and region.
pub async fn snapshot(ctx: &Ctx<'_>) -> Result<Network> {
    let mut tx = ctx.store.read().await?;
    let vpcs: Vec<Vpc> = resource::list(ctx, &mut tx).await?;
    let subnets: Vec<Subnet> = resource::list(ctx, &mut tx).await?;
    let tables: Vec<RouteTable> = resource::list(ctx, &mut tx).await?;
    let acls: Vec<NetworkAcl> = resource::list(ctx, &mut tx).await?;
    let groups: Vec<SecurityGroup> = resource::list(ctx, &mut tx).await?;
    let rules: Vec<SgRule> = resource::list(ctx, &mut tx).await?;
    // The region's AWS-managed lists too: gateway endpoints route from them.
    let mut lists: Vec<ManagedPrefixList> = resource::list(ctx, &mut tx).await?;
    lists.extend(crate::ec2::prefix_list::aws_managed(ctx.region));
    let enis: Vec<NetworkInterface> = resource::list(ctx, &mut tx).await?;
    let addresses: Vec<Address> = resource::list(ctx, &mut tx).await?;
    let igws: Vec<InternetGateway> = resource::list(ctx, &mut tx).await?;
    let nats: Vec<NatGateway> = resource::list(ctx, &mut tx).await?;
    let peerings: Vec<VpcPeeringConnection> = resource::list(ctx, &mut tx).await?;
    drop(tx);

    let mut n = Network::default();
    for v in &vpcs {
        n.vpcs.insert(
            v.vpc_id.clone(),
            m::Vpc {
                id: v.vpc_id.clone(),
                cidrs: v
                    .cidr_block_association_set
                    .iter()
                    .filter_map(|c| cidr(&c.cidr_block))
                    .collect(),
            },
        );
    }
    let list_entries: HashMap<&str, Vec<Ipv4Net>> = lists
        .iter()
        .map(|l| {
            (
                l.prefix_list_id.as_str(),
                l.current_entries()
                    .iter()
                    .filter_map(|e| cidr(&e.cidr))
                    .collect(),
            )
        })
        .collect();
    // Route tables, with prefix-list routes expanded into one route per entry.
    let mut main_table: HashMap<&str, &str> = HashMap::new();
    let mut table_of: HashMap<&str, &str> = HashMap::new();
    for t in &tables {
        for a in &t.associations {
            if a.main {
                main_table.insert(&t.vpc_id, &t.route_table_id);
            }
            if let Some(s) = &a.subnet_id {
                table_of.insert(s, &t.route_table_id);
            }
        }
        let mut routes = Vec::new();
        for r in &t.routes {
            let target =
                if r.destination_cidr_block.is_empty() && r.destination_prefix_list_id.is_none() {
                    continue;
                } else if r.gateway_id.as_deref() == Some("local") {
                    Target::Local
                } else if let Some(g) = &r.gateway_id {
                    if g.starts_with("igw-") {
                        Target::InternetGateway(g.clone())
                    } else if g.starts_with("vpce-") {
                        Target::GatewayEndpoint(g.clone())
                    } else {
                        Target::Other(g.clone())
                    }
                } else if let Some(x) = &r.nat_gateway_id {
                    Target::NatGateway(x.clone())
                } else if let Some(x) = &r.vpc_peering_connection_id {
                    Target::Peering(x.clone())
                } else if let Some(x) = &r.network_interface_id {
                    Target::Interface(x.clone())
                } else if let Some(x) = &r.egress_only_internet_gateway_id {
                    Target::EgressOnlyInternetGateway(x.clone())
                } else {
                    Target::Other(String::new())
                };
            let destinations: Vec<Ipv4Net> = match &r.destination_prefix_list_id {
                Some(pl) => list_entries.get(pl.as_str()).cloned().unwrap_or_default(),
                None => cidr(&r.destination_cidr_block).into_iter().collect(),
            };
            for d in destinations {
                routes.push(m::Route {
                    destination: d,
                    prefix_list_id: r.destination_prefix_list_id.clone(),
                    target: target.clone(),
                    blackhole: r.state == "blackhole",
                });
            }
        }
        n.route_tables.insert(
            t.route_table_id.clone(),
            m::RouteTable {
                id: t.route_table_id.clone(),
                vpc_id: t.vpc_id.clone(),
                routes,
            },
        );
    }
    let mut acl_of: HashMap<&str, &str> = HashMap::new();
    for a in &acls {
        for assoc in &a.associations {
            acl_of.insert(&assoc.subnet_id, &a.network_acl_id);
        }
        let side = |egress: bool| {
            let mut rules: Vec<m::AclRule> = a
                .entries
                .iter()
                .filter(|e| e.egress == egress)
                .filter_map(|e| {
                    Some(m::AclRule {
                        number: u16::try_from(e.rule_number).ok()?,
                        protocol: protocol_match(&e.protocol),
                        ports: e
                            .port_range
                            .as_ref()
                            .map_or(Ports::ALL, |p| ports(p.from, p.to)),
                        cidr: cidr(e.cidr_block.as_deref()?)?,
                        allow: e.rule_action == "allow",
                    })
                })
                .collect();
            rules.sort_by_key(|r| r.number);
            rules
        };
        n.network_acls.insert(
            a.network_acl_id.clone(),
            m::NetworkAcl {
                id: a.network_acl_id.clone(),
                vpc_id: a.vpc_id.clone(),
                ingress: side(false),
                egress: side(true),
            },
        );
    }
    for s in &subnets {
        let Some(c) = cidr(&s.cidr_block) else {
            continue;
        };
        n.subnets.insert(
            s.subnet_id.clone(),
            m::Subnet {
                id: s.subnet_id.clone(),
                vpc_id: s.vpc_id.clone(),
                cidr: c,
                route_table_id: table_of
                    .get(s.subnet_id.as_str())
                    .or(main_table.get(s.vpc_id.as_str()))
                    .map(|t| t.to_string())
                    .unwrap_or_default(),
                network_acl_id: acl_of
                    .get(s.subnet_id.as_str())
                    .map(|a| a.to_string())
                    .unwrap_or_default(),
            },
        );
    }
    for g in &groups {
        n.security_groups.insert(
            g.group_id.clone(),
            m::SecurityGroup {
                id: g.group_id.clone(),
                name: g.group_name.clone(),
                vpc_id: g.vpc_id.clone(),
                ingress: vec![],
                egress: vec![],
            },
        );
    }
    for r in &rules {
        let peer = if let Some(c) = r.cidr_ipv4.as_deref().and_then(cidr) {
            Peer::Cidr(c)
        } else if let Some(pl) = &r.prefix_list_id {
            Peer::PrefixList(
                pl.clone(),
                list_entries.get(pl.as_str()).cloned().unwrap_or_default(),
            )
        } else if let Some(g) = &r.referenced_group_info {
            Peer::Group(g.group_id.clone())
        } else {
            // IPv6 rules: kumori's reachability is IPv4 only, as AWS's is.
            continue;
        };
        let rule = m::SgRule {
            id: r.security_group_rule_id.clone(),
            protocol: protocol_match(&r.ip_protocol),
            ports: ports(Some(r.from_port), Some(r.to_port)),
            peer,
        };
        if let Some(g) = n.security_groups.get_mut(&r.group_id) {
            if r.is_egress {
                g.egress.push(rule);
            } else {
                g.ingress.push(rule);
            }
        }
    }
    let eip_of: HashMap<&str, &str> = addresses
        .iter()
        .filter_map(|a| {
            Some((
                a.association.as_ref()?.network_interface_id.as_str(),
                a.public_ip.as_str(),
            ))
        })
        .collect();
    let nat_of_eni: HashMap<&str, &str> = nats
        .iter()
        .flat_map(|g| {
            g.nat_gateway_addresses
                .iter()
                .map(move |a| (a.network_interface_id.as_str(), g.nat_gateway_id.as_str()))
        })
        .collect();
    for e in &enis {
        let public = eip_of
            .get(e.network_interface_id.as_str())
            .map(|s| s.to_string())
            .or(e.auto_public_ip.clone())
            .and_then(|s| s.parse::<Ipv4Addr>().ok());
        let owner = match (
            e.attachment.as_ref().and_then(|a| a.instance_id.clone()),
            nat_of_eni.get(e.network_interface_id.as_str()),
        ) {
            (Some(i), _) => Owner::Instance(i),
            (None, Some(g)) => Owner::NatGateway(g.to_string()),
            _ => Owner::Other,
        };
        n.interfaces.insert(
            e.network_interface_id.clone(),
            m::Interface {
                id: e.network_interface_id.clone(),
                subnet_id: e.subnet_id.clone(),
                vpc_id: e.vpc_id.clone(),
                private_ips: e
                    .private_ip_addresses
                    .iter()
                    .filter_map(|p| p.private_ip_address.parse().ok())
                    .collect(),
                public_ip: public,
                groups: e.groups.iter().map(|g| g.group_id.clone()).collect(),
                source_dest_check: e.source_dest_check,
                owner,
            },
        );
    }
    for g in &igws {
        n.internet_gateways.insert(
            g.internet_gateway_id.clone(),
            m::InternetGateway {
                id: g.internet_gateway_id.clone(),
                vpc_id: g
                    .attachments
                    .iter()
                    .find(|a| a.state == "available" || a.state == "attached")
                    .map(|a| a.vpc_id.clone()),
            },
        );
    }
    for g in nats.iter().filter(|g| g.state == "available") {
        let Some(primary) = g.nat_gateway_addresses.iter().find(|a| a.is_primary) else {
            continue;
        };
        n.nat_gateways.insert(
            g.nat_gateway_id.clone(),
            m::NatGateway {
                id: g.nat_gateway_id.clone(),
                subnet_id: g.subnet_id.clone(),
                interface_id: primary.network_interface_id.clone(),
                private_ip: primary.private_ip.parse().unwrap_or(Ipv4Addr::UNSPECIFIED),
                public_ip: primary.public_ip.as_deref().and_then(|p| p.parse().ok()),
            },
        );
    }
    for p in &peerings {
        n.peerings.insert(
            p.vpc_peering_connection_id.clone(),
            m::Peering {
                id: p.vpc_peering_connection_id.clone(),
                requester_vpc_id: p.requester_vpc_info.vpc_id.clone(),
                accepter_vpc_id: p.accepter_vpc_info.vpc_id.clone(),
                active: p.status.code == "active",
            },
        );
    }
    Ok(n)
}

/// The networks of every account and region in the store, as one model: what the data
/// plane builds. Ids are unique across accounts, and public addresses come from one pool,
/// so the snapshots merge without clashes; peerings between accounts of one region meet
/// here too.
pub async fn all_networks(store: &kumori_store::Store, limits: &crate::Limits) -> Result<Network> {
    let scopes = {
        let mut tx = store.read().await?;
        tx.scopes_with(<Vpc as resource::Resource>::KIND).await?
    };
    let mut all = Network::default();
    for (account, region) in &scopes {
        let ctx = Ctx::root(store, account, region, limits);
        let n = snapshot(&ctx).await?;
        all.vpcs.extend(n.vpcs);
        all.subnets.extend(n.subnets);
        all.route_tables.extend(n.route_tables);
        all.network_acls.extend(n.network_acls);
        all.security_groups.extend(n.security_groups);
        all.interfaces.extend(n.interfaces);
        all.internet_gateways.extend(n.internet_gateways);
        all.nat_gateways.extend(n.nat_gateways);
        all.peerings.extend(n.peerings);
    }
    Ok(all)
}

/// What a person names as one end of a path: an instance (its primary interface), an
/// interface, or an address.
pub async fn endpoint(ctx: &Ctx<'_>, name: &str) -> Result<Endpoint> {
    if let Ok(ip) = name.parse::<Ipv4Addr>() {
        return Ok(Endpoint::Address(ip));
    }
    if name.parse::<std::net::Ipv6Addr>().is_ok() {
        return Err(Error(kumori_protocol::AwsError::not_implemented(
            "ec2",
            "Reachability of IPv6 addresses (kumori analyses IPv4 paths only so far)",
        )));
    }
    if name.starts_with("eni-") {
        return Ok(Endpoint::Interface(name.to_string()));
    }
    if name.starts_with("i-") {
        let mut tx = ctx.store.read().await?;
        let i: Instance = resource::get(ctx, &mut tx, name).await?.ok_or_else(|| {
            Error::new(
                "InvalidInstanceID.NotFound",
                format!("The instance ID '{name}' does not exist"),
            )
        })?;
        return Ok(Endpoint::Interface(i.network_interface_id));
    }
    Err(Error::new(
        "InvalidParameterValue",
        format!("'{name}' is not an instance id, an interface id or an IPv4 address."),
    ))
}

/// A host to go through: its interface, its instance and the address to jump to.
pub struct JumpHost {
    pub interface: String,
    pub instance: Option<String>,
    pub address: Option<Ipv4Addr>,
}

/// What `kumori reach` answers: the verdict for one port (when one is asked), the verdict
/// for every port, and the interfaces a blocked path could go through instead.
pub struct Answer {
    pub verdict: Option<Verdict>,
    pub ports: PortVerdicts,
    pub jump_hosts: Vec<JumpHost>,
}

/// Whether `from` reaches `to` with `protocol` (on `port`, or on any port), and why.
pub async fn reach(
    ctx: &Ctx<'_>,
    from: &str,
    to: &str,
    protocol: m::Protocol,
    port: Option<u16>,
) -> Result<Answer> {
    let from = endpoint(ctx, from).await?;
    let to = endpoint(ctx, to).await?;
    let net = snapshot(ctx).await?;
    let ix = Index::new(&net);
    let verdict = port.map(|p| trace_in(&ix, &from, &to, protocol, p));
    let ports = engine::ports(&ix, &from, &to, protocol);
    let jump_hosts = match (&verdict, port) {
        (Some(v), Some(p)) if !v.reachable => engine::jump_hosts(&ix, &from, &to, protocol, p)
            .into_iter()
            .map(|e| JumpHost {
                interface: e.id.clone(),
                instance: kumori_net::reach::trace::instance_of(e).map(str::to_string),
                address: e.public_ip.or(e.private_ips.first().copied()),
            })
            .collect(),
        _ => vec![],
    };
    Ok(Answer {
        verdict,
        ports,
        jump_hosts,
    })
}

/// Every port's verdict as a person reads it: the open ports, then each blocked range with
/// the component that stops it.
pub fn render_ports(a: &Answer, protocol: m::Protocol) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    if protocol == m::Protocol::Icmp {
        let _ = match a.ports.at(0) {
            Ok(()) => writeln!(out, "icmp: reachable"),
            Err(s) => writeln!(out, "icmp: blocked at {}: {}", s.component, s.code),
        };
        return out;
    }
    let _ = writeln!(out, "every {} port:", protocol.name());
    let _ = writeln!(out, "  open      {}", a.ports.reachable);
    // One line per component and reason, however many ranges it stops.
    let mut merged: Vec<(PortSet, &engine::Stop)> = Vec::new();
    for (set, stop) in &a.ports.blocked {
        match merged.iter_mut().find(|(_, s)| *s == stop) {
            Some((m, _)) => *m = m.union(set),
            None => merged.push((set.clone(), stop)),
        }
    }
    for (set, stop) in merged {
        let direction = stop
            .direction
            .map(|d| format!(" ({})", d.name()))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  blocked   {set}  at {}: {}{direction}",
            stop.component, stop.code
        );
    }
    if !a.jump_hosts.is_empty() {
        let _ = writeln!(
            out,
            "another way: through a host that takes SSH from the source and reaches the destination:"
        );
        for j in &a.jump_hosts {
            let name = match &j.instance {
                Some(i) => format!("{i} ({})", j.interface),
                None => j.interface.clone(),
            };
            let _ = match j.address {
                Some(ip) => writeln!(out, "  {name}: ssh -J <user>@{ip} ..."),
                None => writeln!(out, "  {name}"),
            };
        }
    }
    out
}

/// A verdict as a person reads it: the answer, the hops there and back, and for a blocked
/// path the component responsible and what to change.
pub fn render(v: &Verdict, from: &str, to: &str, protocol: m::Protocol, port: u16) -> String {
    use kumori_net::reach::trace::HopKind;
    use std::fmt::Write;
    let mut out = String::new();
    let what = format!("{from} -> {to} {}/{port}", protocol.name());
    if v.reachable {
        let _ = writeln!(out, "REACHABLE      {what}");
    } else {
        let _ = writeln!(out, "NOT REACHABLE  {what}");
        for e in &v.explanations {
            let direction = e
                .direction
                .map(|d| format!(" ({})", d.name()))
                .unwrap_or_default();
            let _ = writeln!(out, "  blocked at {}: {}{direction}", e.component, e.code);
            let _ = writeln!(out, "  {}", e.message);
        }
    }
    let hop_line = |h: &kumori_net::reach::trace::Hop| -> String {
        let what = match &h.kind {
            HopKind::Interface => "interface".to_string(),
            HopKind::Internet => "internet".to_string(),
            HopKind::SecurityGroup { rule_id, direction } => format!(
                "security group, {} rule {} allows",
                direction.name(),
                rule_id.as_deref().unwrap_or("-")
            ),
            HopKind::NetworkAcl {
                rule_number,
                egress,
            } => format!(
                "network ACL, {} rule {rule_number} allows",
                if *egress { "outbound" } else { "inbound" }
            ),
            HopKind::RouteTable { route } => format!(
                "route table, {} -> {}",
                route.destination,
                match &route.target {
                    Target::Local => "local".to_string(),
                    Target::InternetGateway(x)
                    | Target::NatGateway(x)
                    | Target::Peering(x)
                    | Target::Interface(x)
                    | Target::EgressOnlyInternetGateway(x)
                    | Target::GatewayEndpoint(x)
                    | Target::Other(x) => x.clone(),
                }
            ),
            HopKind::InternetGateway => "internet gateway".to_string(),
            HopKind::GatewayEndpoint => "gateway endpoint (the service behind it)".to_string(),
            HopKind::NatGateway => "NAT gateway".to_string(),
            HopKind::Peering => "peering connection".to_string(),
        };
        format!(
            "{:<24} {:<44} {}:{} -> {}:{}",
            h.component,
            what,
            h.header.source,
            h.header.source_port,
            h.header.destination,
            h.header.destination_port
        )
    };
    let _ = writeln!(
        out,
        "forward{}:",
        if v.reachable { "" } else { ", up to the block" }
    );
    if v.forward.is_empty() {
        let _ = writeln!(out, "  (stopped before the first hop)");
    }
    for (n, h) in v.forward.iter().enumerate() {
        let _ = writeln!(out, "  {:>2}. {}", n + 1, hop_line(h));
    }
    if v.reachable {
        let _ = writeln!(out, "return:");
        for (n, h) in v.ret.iter().enumerate() {
            let _ = writeln!(out, "  {:>2}. {}", n + 1, hop_line(h));
        }
    }
    out
}

/// The findings of `kumori-net`'s audit over the caller's region.
pub async fn audit(ctx: &Ctx<'_>) -> Result<Vec<kumori_net::reach::audit::Finding>> {
    Ok(kumori_net::reach::audit::audit(&snapshot(ctx).await?))
}
