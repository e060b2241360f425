//! Reachability Analyzer: CreateNetworkInsightsPath, DescribeNetworkInsightsPaths,
//! DeleteNetworkInsightsPath, StartNetworkInsightsAnalysis, DescribeNetworkInsightsAnalyses,
//! DeleteNetworkInsightsAnalysis.
//!
//! An analysis is decided when it starts, over a snapshot of the region (`crate::reach`),
//! by `kumori-net`'s evaluator; its answer says `running`, describes say `succeeded`. Where
//! the path leaves a port or an internet address open, every class of them is tried: rules
//! only change their verdict at their own boundaries, so one port (or address) per span
//! between boundaries stands for the whole span. The first reachable one is reported;
//! when none is, the explanation of the first tried.

use super::common::{
    Filter, Filterable, Tag, TagSpecification, check_filters, dry_run, invalid_value, matches,
    page_output, paginate, put_tags, tags_by_resource, tags_from_specs,
};
use crate::resource::{self, Resource, arn, new_id};
use crate::{Ctx, Error, Result, input, output};
use kumori_net::reach::engine::{self, USUAL_PORTS};
use kumori_net::reach::index::Index;
use kumori_net::reach::model::{Network, Owner, Peer, Protocol, ProtocolMatch, Target};
use kumori_net::reach::portset::PortSet;
use kumori_net::reach::rules::Direction;
use kumori_net::reach::trace::{Endpoint, Hop, HopKind, Verdict, trace_in};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::net::Ipv4Addr;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkInsightsPath {
    pub network_insights_path_id: String,
    pub network_insights_path_arn: String,
    pub created_date: String,
    pub source: String,
    pub source_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_ip: Option<String>,
    pub protocol: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_port: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter_at_source: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter_at_destination: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}

impl Resource for NetworkInsightsPath {
    const KIND: &'static str = "network-insights-path";
    fn id(&self) -> &str {
        &self.network_insights_path_id
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkInsightsAnalysis {
    pub network_insights_analysis_id: String,
    pub network_insights_analysis_arn: String,
    pub network_insights_path_id: String,
    pub start_date: String,
    pub status: String,
    pub network_path_found: bool,
    pub forward_path_components: Value,
    pub return_path_components: Value,
    pub explanations: Value,
    #[serde(default)]
    pub filter_in_arns: Vec<String>,
    #[serde(default)]
    pub filter_out_arns: Vec<String>,
}

impl Resource for NetworkInsightsAnalysis {
    const KIND: &'static str = "network-insights-analysis";
    /// An analysis belongs to its path: the path cannot go while it has analyses.
    fn id(&self) -> &str {
        &self.network_insights_analysis_id
    }
    fn parent(&self) -> Option<&str> {
        Some(&self.network_insights_path_id)
    }
}

/// The ARN of the resource an id names (`igw-…` is an `internet-gateway`).
fn component_arn(ctx: &Ctx<'_>, id: &str) -> String {
    let kind = match id.split_once('-').map(|(p, _)| p) {
        Some("i") => "instance",
        Some("eni") => "network-interface",
        Some("igw") => "internet-gateway",
        Some("sg") => "security-group",
        Some("acl") => "network-acl",
        Some("rtb") => "route-table",
        Some("subnet") => "subnet",
        Some("vpc") => "vpc",
        Some("nat") => "natgateway",
        Some("pcx") => "vpc-peering-connection",
        _ => "resource",
    };
    arn("ec2", ctx.region, ctx.account, &format!("{kind}/{id}"))
}

pub(crate) fn component(ctx: &Ctx<'_>, id: &str) -> Value {
    json!({ "Id": id, "Arn": component_arn(ctx, id) })
}

fn path_not_found(id: &str) -> Error {
    Error::new(
        "InvalidNetworkInsightsPathId.NotFound",
        format!("The network insights path '{id}' does not exist."),
    )
}

fn analysis_not_found(id: &str) -> Error {
    Error::new(
        "InvalidNetworkInsightsAnalysisId.NotFound",
        format!("The network insights analysis '{id}' does not exist."),
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreatePathRequest {
    source: String,
    destination: Option<String>,
    source_ip: Option<String>,
    destination_ip: Option<String>,
    protocol: String,
    destination_port: Option<i64>,
    filter_at_source: Option<Value>,
    filter_at_destination: Option<Value>,
    client_token: Option<String>,
    #[serde(default)]
    tag_specifications: Vec<TagSpecification>,
    dry_run: Option<bool>,
}

/// The id a Source or Destination gives (an ARN's last part).
fn id_of(given: &str) -> String {
    given.rsplit('/').next().unwrap_or(given).to_string()
}

fn combination(message: &str) -> Error {
    Error::new("InvalidParameterCombination", message)
}

/// Checks that `id` names something of the account this kumori analyses paths for.
async fn check_endpoint(ctx: &Ctx<'_>, id: &str) -> Result<()> {
    let supported = ["i-", "eni-", "igw-"];
    if !supported.iter().any(|p| id.starts_with(p)) {
        return Err(invalid_value(format!(
            "'{id}' is not a source or destination kumori analyses: give an instance, a network interface or an internet gateway."
        )));
    }
    let mut tx = ctx.store.read().await?;
    if tx.get(ctx.scope(), id).await?.is_none() {
        return Err(super::not_found_for(id));
    }
    Ok(())
}

pub async fn create_network_insights_path(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: CreatePathRequest = input(raw)?;
    let protocol = req.protocol.to_ascii_lowercase();
    if protocol != "tcp" && protocol != "udp" {
        return Err(invalid_value(format!(
            "Value ({}) for parameter protocol is invalid: tcp or udp.",
            req.protocol
        )));
    }
    if req.filter_at_source.is_some() && (req.source_ip.is_some() || req.destination_port.is_some())
    {
        return Err(combination(
            "FilterAtSource cannot be given with SourceIp or DestinationPort.",
        ));
    }
    if req.filter_at_destination.is_some() && req.destination_ip.is_some() {
        return Err(combination(
            "FilterAtDestination cannot be given with DestinationIp.",
        ));
    }
    let filter_destination = req
        .filter_at_source
        .as_ref()
        .and_then(|f| f["DestinationAddress"].as_str())
        .map(str::to_string);
    if req.destination.is_none() && filter_destination.is_none() {
        return Err(Error::new(
            "MissingParameter",
            "The request must include either the Destination parameter or the FilterAtSource.DestinationAddress parameter. Add the required parameter and retry the request.",
        ));
    }
    for ip in [&req.source_ip, &req.destination_ip, &filter_destination]
        .into_iter()
        .flatten()
    {
        if ip.parse::<std::net::Ipv6Addr>().is_ok() {
            // Said plainly rather than answered wrongly: the engine walks IPv4 only.
            return Err(Error(kumori_protocol::AwsError::not_implemented(
                "ec2",
                "Reachability analysis of IPv6 paths (kumori analyses IPv4 only so far)",
            )));
        }
        if ip.parse::<Ipv4Addr>().is_err() {
            return Err(invalid_value(format!("'{ip}' is not an IPv4 address.")));
        }
    }
    let source = id_of(&req.source);
    check_endpoint(ctx, &source).await?;
    let destination = req.destination.as_deref().map(id_of);
    if let Some(d) = &destination {
        check_endpoint(ctx, d).await?;
    }
    let tags = tags_from_specs(&req.tag_specifications, NetworkInsightsPath::KIND)?;
    let mut tx = ctx.store.write().await?;
    if let Some(token) = &req.client_token
        && let Some(p) = resource::list::<NetworkInsightsPath>(ctx, &mut tx)
            .await?
            .into_iter()
            .find(|p| p.client_token.as_ref() == Some(token))
    {
        return Ok(json!({ "NetworkInsightsPath": shown_path(&p, &[])? }));
    }
    dry_run(req.dry_run)?;
    let id = new_id("nip");
    let p = NetworkInsightsPath {
        network_insights_path_arn: arn(
            "ec2",
            ctx.region,
            ctx.account,
            &format!("network-insights-path/{id}"),
        ),
        network_insights_path_id: id,
        created_date: kumori_protocol::time::now_iso(),
        source_arn: component_arn(ctx, &source),
        source,
        destination_arn: destination.as_deref().map(|d| component_arn(ctx, d)),
        destination,
        source_ip: req.source_ip,
        destination_ip: req.destination_ip,
        protocol,
        destination_port: req.destination_port,
        filter_at_source: req.filter_at_source,
        filter_at_destination: req.filter_at_destination,
        client_token: req.client_token,
    };
    resource::insert(ctx, &mut tx, &p).await?;
    put_tags(
        ctx,
        &mut tx,
        &p.network_insights_path_id,
        NetworkInsightsPath::KIND,
        &tags,
    )
    .await?;
    tx.commit().await?;
    Ok(json!({ "NetworkInsightsPath": shown_path(&p, &tags)? }))
}

fn shown_path(p: &NetworkInsightsPath, tags: &[Tag]) -> Result<Value> {
    let mut v = output(p)?;
    if let Some(o) = v.as_object_mut() {
        o.remove("ClientToken");
    }
    v["Tags"] = output(&tags)?;
    Ok(v)
}

impl Filterable for NetworkInsightsPath {
    const FILTERS: &'static [&'static str] = &["destination", "source", "protocol"];
    fn field(&self, name: &str) -> Vec<String> {
        match name {
            "destination" => self.destination.clone().into_iter().collect(),
            "source" => vec![self.source.clone()],
            "protocol" => vec![self.protocol.clone()],
            _ => vec![],
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribePathsRequest {
    #[serde(default)]
    network_insights_path_ids: Vec<String>,
    #[serde(default)]
    filters: Vec<Filter>,
    max_results: Option<i64>,
    next_token: Option<String>,
    dry_run: Option<bool>,
}

/// Not `generic::describe`: ids are not checked for form (any unknown id is
/// `InvalidNetworkInsightsPathId.NotFound`), where the generic describe answers `.Malformed` for an
/// id without the `nip-` prefix first; and Tags is shown even when empty.
pub async fn describe_network_insights_paths(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DescribePathsRequest = input(raw)?;
    check_filters::<NetworkInsightsPath>(&req.filters)?;
    let mut tx = ctx.store.read().await?;
    let all: Vec<NetworkInsightsPath> = resource::list(ctx, &mut tx).await?;
    let tags = tags_by_resource(ctx, &mut tx, NetworkInsightsPath::KIND).await?;
    drop(tx);
    if let Some(missing) = req
        .network_insights_path_ids
        .iter()
        .find(|id| !all.iter().any(|p| &p.network_insights_path_id == *id))
    {
        return Err(path_not_found(missing));
    }
    dry_run(req.dry_run)?;
    let none = Vec::new();
    let selected: Vec<&NetworkInsightsPath> = all
        .iter()
        .filter(|p| {
            req.network_insights_path_ids.is_empty()
                || req
                    .network_insights_path_ids
                    .contains(&p.network_insights_path_id)
        })
        .filter(|p| {
            matches(
                *p,
                tags.get(&p.network_insights_path_id).unwrap_or(&none),
                &req.filters,
            )
        })
        .collect();
    let (page, next) = paginate(
        selected,
        |p| p.network_insights_path_id.clone(),
        req.max_results,
        req.next_token.as_deref(),
    )?;
    let shown = page
        .iter()
        .map(|p| shown_path(p, tags.get(&p.network_insights_path_id).unwrap_or(&none)))
        .collect::<Result<Vec<_>>>()?;
    Ok(page_output("NetworkInsightsPaths", shown, next))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeletePathRequest {
    network_insights_path_id: String,
    dry_run: Option<bool>,
}

pub async fn delete_network_insights_path(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DeletePathRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let p: NetworkInsightsPath = resource::lock(ctx, &mut tx, &req.network_insights_path_id)
        .await?
        .ok_or_else(|| path_not_found(&req.network_insights_path_id))?;
    let analyses: Vec<NetworkInsightsAnalysis> =
        resource::children(ctx, &mut tx, &p.network_insights_path_id).await?;
    if !analyses.is_empty() {
        return Err(Error::new(
            "AnalysisExistsForNetworkInsightsPath",
            format!(
                "The path {} has {} analyses: delete them first.",
                p.network_insights_path_id,
                analyses.len()
            ),
        ));
    }
    dry_run(req.dry_run)?;
    tx.delete(ctx.scope(), &p.network_insights_path_id).await?;
    tx.commit().await?;
    Ok(json!({ "NetworkInsightsPathId": p.network_insights_path_id }))
}

/// One internet address per span of addresses no rule tells apart (`kumori-net`'s classes).
pub(crate) fn candidate_sources(net: &Network) -> Vec<Ipv4Addr> {
    kumori_net::reach::classes::internet_representatives(net)
}

/// The verdict for a path: every open choice (port, internet address) tried until one
/// gets through.
fn analyse(net: &Network, p: &NetworkInsightsPath, resolved: &[(String, String)]) -> Verdict {
    let protocol = if p.protocol == "udp" {
        Protocol::Udp
    } else {
        Protocol::Tcp
    };
    let filter_port = |f: &Option<Value>| {
        f.as_ref()
            .and_then(|f| f["DestinationPortRange"]["FromPort"].as_u64())
            .map(|p| p as u16)
    };
    let given: Option<u16> = p
        .destination_port
        .map(|x| x as u16)
        .or(filter_port(&p.filter_at_source))
        .or(filter_port(&p.filter_at_destination));
    let address = |s: Option<&str>| s.and_then(|a| a.parse::<Ipv4Addr>().ok());
    let source_address = address(p.source_ip.as_deref()).or(address(
        p.filter_at_source
            .as_ref()
            .and_then(|f| f["SourceAddress"].as_str()),
    ));
    let destination_address = address(p.destination_ip.as_deref()).or(address(
        p.filter_at_source
            .as_ref()
            .and_then(|f| f["DestinationAddress"].as_str()),
    ));
    // Instances were resolved to their primary interfaces by the caller.
    let interface_of = |id: &str| -> Endpoint {
        Endpoint::Interface(
            resolved
                .iter()
                .find(|(name, _)| name == id)
                .map_or(id.to_string(), |(_, eni)| eni.clone()),
        )
    };
    let sources: Vec<Endpoint> = if p.source.starts_with("igw-") {
        match source_address {
            Some(a) => vec![Endpoint::Address(a)],
            None => candidate_sources(net)
                .into_iter()
                .map(Endpoint::Address)
                .collect(),
        }
    } else {
        vec![interface_of(&p.source)]
    };
    let destination = match p.destination.as_deref() {
        Some(d) if d.starts_with("igw-") => Endpoint::Address(
            destination_address.unwrap_or_else(|| "198.51.100.1".parse().expect("an address")),
        ),
        Some(d) => interface_of(d),
        None => Endpoint::Address(destination_address.unwrap_or(Ipv4Addr::UNSPECIFIED)),
    };
    let ix = Index::new(net);
    let mut first: Option<Verdict> = None;
    for s in &sources {
        // With no port given, the engine finds one that gets through (if any) in one walk;
        // the reference then traces it for the hops.
        let port = match given {
            Some(port) => port,
            None => {
                match engine::ports(&ix, s, &destination, protocol).open_port(&PortSet::all()) {
                    Some(port) => port,
                    None => USUAL_PORTS[0],
                }
            }
        };
        let v = trace_in(&ix, s, &destination, protocol, port);
        if v.reachable {
            return v;
        }
        first.get_or_insert(v);
    }
    first.unwrap_or(Verdict {
        reachable: false,
        forward: vec![],
        ret: vec![],
        explanations: vec![],
    })
}

fn header(h: &kumori_net::reach::trace::Header) -> Value {
    json!({
        "DestinationAddresses": [format!("{}/32", h.destination)],
        "DestinationPortRanges": [{ "From": h.destination_port, "To": h.destination_port }],
        "Protocol": h.protocol.number().to_string(),
        "SourceAddresses": [format!("{}/32", h.source)],
        "SourcePortRanges": [{ "From": h.source_port, "To": h.source_port }],
    })
}

/// The hops as AWS's `PathComponent`s, with the rule, route or translation each applied.
pub(crate) fn components(ctx: &Ctx<'_>, net: &Network, hops: &[Hop]) -> Vec<Value> {
    let protocol_name = |m: ProtocolMatch| match m {
        ProtocolMatch::All => "all".to_string(),
        ProtocolMatch::Number(6) => "tcp".into(),
        ProtocolMatch::Number(17) => "udp".into(),
        ProtocolMatch::Number(1) => "icmp".into(),
        ProtocolMatch::Number(n) => n.to_string(),
    };
    hops.iter()
        .filter(|h| h.component != "internet")
        .enumerate()
        .map(|(n, h)| {
            let mut c = json!({
                "SequenceNumber": n + 1,
                "Component": component(ctx, &h.component),
            });
            match &h.kind {
                HopKind::NetworkAcl { rule_number, egress } => {
                    let rule = net.network_acls.get(&h.component).and_then(|a| {
                        let side = if *egress { &a.egress } else { &a.ingress };
                        side.iter().find(|r| r.number == *rule_number)
                    });
                    if let Some(r) = rule {
                        c["AclRule"] = json!({
                            "Cidr": r.cidr.to_string(),
                            "Egress": egress,
                            "PortRange": { "From": r.ports.from, "To": r.ports.to },
                            "Protocol": protocol_name(r.protocol),
                            "RuleAction": "allow",
                            "RuleNumber": r.number,
                        });
                    }
                }
                HopKind::SecurityGroup { rule_id, direction } => {
                    let rule = net.security_groups.get(&h.component).and_then(|g| {
                        g.ingress
                            .iter()
                            .chain(&g.egress)
                            .find(|r| Some(&r.id) == rule_id.as_ref())
                    });
                    if let Some(r) = rule {
                        let mut rule = json!({
                            "Direction": direction.name(),
                            "SecurityGroupId": h.component,
                            "PortRange": { "From": r.ports.from, "To": r.ports.to },
                            "Protocol": protocol_name(r.protocol),
                        });
                        match &r.peer {
                            Peer::Cidr(x) => rule["Cidr"] = json!(x.to_string()),
                            Peer::PrefixList(id, _) => rule["PrefixListId"] = json!(id),
                            Peer::Group(_) => {}
                        }
                        c["SecurityGroupRule"] = rule;
                    }
                }
                HopKind::RouteTable { route } => {
                    let mut r = json!({
                        "DestinationCidr": route.destination.to_string(),
                        "Origin": if route.target == Target::Local { "CreateRouteTable" } else { "CreateRoute" },
                        "State": "active",
                    });
                    match &route.target {
                        Target::Local => r["GatewayId"] = json!("local"),
                        Target::InternetGateway(x) | Target::GatewayEndpoint(x) => {
                            r["GatewayId"] = json!(x)
                        }
                        Target::NatGateway(x) => r["NatGatewayId"] = json!(x),
                        Target::Peering(x) => r["VpcPeeringConnectionId"] = json!(x),
                        Target::Interface(x) => r["NetworkInterfaceId"] = json!(x),
                        Target::EgressOnlyInternetGateway(x) => {
                            r["EgressOnlyInternetGatewayId"] = json!(x)
                        }
                        Target::Other(_) => {}
                    }
                    if let Some(pl) = &route.prefix_list_id {
                        r["DestinationPrefixListId"] = json!(pl);
                    }
                    c["RouteTableRoute"] = r;
                }
                HopKind::InternetGateway | HopKind::NatGateway => {
                    c["OutboundHeader"] = header(&h.header);
                }
                HopKind::Interface => {
                    if let Some(e) = net.interfaces.get(&h.component) {
                        if let Owner::Instance(i) = &e.owner {
                            c["AttachedTo"] = component(ctx, i);
                        }
                        c["Subnet"] = component(ctx, &e.subnet_id);
                        c["Vpc"] = component(ctx, &e.vpc_id);
                    }
                    c["InboundHeader"] = header(&h.header);
                }
                HopKind::Peering | HopKind::Internet | HopKind::GatewayEndpoint => {}
            }
            c
        })
        .collect()
}

/// Explanations as AWS's `Explanation`s: the code, the direction and the components it
/// names.
fn explanations(ctx: &Ctx<'_>, net: &Network, v: &Verdict) -> Vec<Value> {
    v.explanations
        .iter()
        .map(|e| {
            let mut x =
                json!({ "ExplanationCode": e.code, "Component": component(ctx, &e.component) });
            if let Some(d) = e.direction {
                x["Direction"] = json!(match d {
                    Direction::Ingress => "ingress",
                    Direction::Egress => "egress",
                });
            }
            let prefix = e
                .component
                .split_once('-')
                .map(|(p, _)| p)
                .unwrap_or_default();
            match prefix {
                "eni" => {
                    x["NetworkInterface"] = component(ctx, &e.component);
                    if let Some(i) = net.interfaces.get(&e.component) {
                        x["SecurityGroups"] = json!(
                            i.groups
                                .iter()
                                .map(|g| component(ctx, g))
                                .collect::<Vec<_>>()
                        );
                        x["Subnet"] = component(ctx, &i.subnet_id);
                        x["Vpc"] = component(ctx, &i.vpc_id);
                    }
                }
                "acl" => {
                    x["Acl"] = component(ctx, &e.component);
                    if let Some(a) = net.network_acls.get(&e.component) {
                        x["Vpc"] = component(ctx, &a.vpc_id);
                    }
                }
                "rtb" => {
                    x["RouteTable"] = component(ctx, &e.component);
                    if let Some(t) = net.route_tables.get(&e.component) {
                        x["Vpc"] = component(ctx, &t.vpc_id);
                    }
                }
                "igw" => x["InternetGateway"] = component(ctx, &e.component),
                "pcx" => x["VpcPeeringConnection"] = component(ctx, &e.component),
                "nat" => x["NatGateway"] = component(ctx, &e.component),
                _ => {}
            }
            x
        })
        .collect()
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StartRequest {
    network_insights_path_id: String,
    #[serde(default)]
    filter_in_arns: Vec<String>,
    #[serde(default)]
    filter_out_arns: Vec<String>,
    #[serde(default)]
    tag_specifications: Vec<TagSpecification>,
    dry_run: Option<bool>,
}

pub async fn start_network_insights_analysis(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: StartRequest = input(raw)?;
    let tags = tags_from_specs(&req.tag_specifications, NetworkInsightsAnalysis::KIND)?;
    let path: NetworkInsightsPath = {
        let mut tx = ctx.store.read().await?;
        resource::get(ctx, &mut tx, &req.network_insights_path_id)
            .await?
            .ok_or_else(|| path_not_found(&req.network_insights_path_id))?
    };
    dry_run(req.dry_run)?;
    // Instances are analysed through their primary interfaces.
    let mut resolved = Vec::new();
    for id in std::iter::once(&path.source).chain(path.destination.as_ref()) {
        if id.starts_with("i-")
            && let Endpoint::Interface(eni) = crate::ec2::reach::endpoint(ctx, id).await?
        {
            resolved.push((id.clone(), eni));
        }
    }
    let net = crate::ec2::reach::snapshot(ctx).await?;
    let verdict = component_filters(
        analyse(&net, &path, &resolved),
        &req.filter_in_arns,
        &req.filter_out_arns,
    );
    let id = new_id("nia");
    let a = NetworkInsightsAnalysis {
        network_insights_analysis_arn: arn(
            "ec2",
            ctx.region,
            ctx.account,
            &format!("network-insights-analysis/{id}"),
        ),
        network_insights_analysis_id: id,
        network_insights_path_id: path.network_insights_path_id.clone(),
        start_date: kumori_protocol::time::now_iso(),
        status: "succeeded".into(),
        network_path_found: verdict.reachable,
        forward_path_components: json!(components(ctx, &net, &verdict.forward)),
        return_path_components: json!(components(ctx, &net, &verdict.ret)),
        explanations: json!(explanations(ctx, &net, &verdict)),
        filter_in_arns: req.filter_in_arns,
        filter_out_arns: req.filter_out_arns,
    };
    let mut tx = ctx.store.write().await?;
    // The path may have gone while the analysis ran.
    if resource::get::<NetworkInsightsPath>(ctx, &mut tx, &a.network_insights_path_id)
        .await?
        .is_none()
    {
        return Err(path_not_found(&a.network_insights_path_id));
    }
    resource::insert(ctx, &mut tx, &a).await?;
    put_tags(
        ctx,
        &mut tx,
        &a.network_insights_analysis_id,
        NetworkInsightsAnalysis::KIND,
        &tags,
    )
    .await?;
    tx.commit().await?;
    Ok(json!({ "NetworkInsightsAnalysis": {
        "NetworkInsightsAnalysisId": a.network_insights_analysis_id,
        "NetworkInsightsAnalysisArn": a.network_insights_analysis_arn,
        "NetworkInsightsPathId": a.network_insights_path_id,
        "StartDate": a.start_date,
        "Status": "running",
        "Tags": output(&tags)?,
    }}))
}

/// The path found must pass every `FilterInArns` component and none of the `FilterOutArns`
/// ones; kumori's path is the one routing takes, so a path that does not qualify means no
/// qualifying path, with Reachability Analyzer's codes for why.
fn component_filters(v: Verdict, filter_in: &[String], filter_out: &[String]) -> Verdict {
    if !v.reachable {
        return v;
    }
    let id = |arn: &String| arn.rsplit('/').next().unwrap_or(arn).to_string();
    let passes = |c: &str| v.forward.iter().any(|h| h.component == c);
    let failed = filter_in
        .iter()
        .map(id)
        .find(|c| !passes(c))
        .map(|c| ("COMPONENT_FILTER_RESTRICTION", c, "is not on the path"))
        .or_else(|| {
            filter_out.iter().map(id).find(|c| passes(c)).map(|c| {
                (
                    "COMPONENT_FILTER_RESTRICTION_REMOVED_COMPONENT",
                    c,
                    "is on the only path",
                )
            })
        });
    match failed {
        None => v,
        Some((code, component, why)) => Verdict {
            reachable: false,
            forward: v.forward,
            ret: vec![],
            explanations: vec![kumori_net::reach::trace::Explanation {
                code,
                message: format!("{component} {why}."),
                component,
                direction: None,
            }],
        },
    }
}

fn shown_analysis(a: &NetworkInsightsAnalysis, tags: &[Tag]) -> Result<Value> {
    let mut v = output(a)?;
    if let Some(o) = v.as_object_mut() {
        if a.filter_in_arns.is_empty() {
            o.remove("FilterInArns");
        }
        if a.filter_out_arns.is_empty() {
            o.remove("FilterOutArns");
        }
        if !a.network_path_found {
            o.remove("ReturnPathComponents");
        }
    }
    v["Tags"] = output(&tags)?;
    Ok(v)
}

impl Filterable for NetworkInsightsAnalysis {
    const FILTERS: &'static [&'static str] = &["path-found", "status"];
    fn field(&self, name: &str) -> Vec<String> {
        match name {
            "path-found" => vec![self.network_path_found.to_string()],
            "status" => vec![self.status.clone()],
            _ => vec![],
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeAnalysesRequest {
    #[serde(default)]
    network_insights_analysis_ids: Vec<String>,
    network_insights_path_id: Option<String>,
    #[serde(default)]
    filters: Vec<Filter>,
    max_results: Option<i64>,
    next_token: Option<String>,
    dry_run: Option<bool>,
}

/// Not `generic::describe`: NetworkInsightsPathId narrows the list (and must name an existing path,
/// checked before the ids) besides ids and filters, and ids are not checked for form (unknown ones
/// are `.NotFound`, never `.Malformed`).
pub async fn describe_network_insights_analyses(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DescribeAnalysesRequest = input(raw)?;
    check_filters::<NetworkInsightsAnalysis>(&req.filters)?;
    let mut tx = ctx.store.read().await?;
    let all: Vec<NetworkInsightsAnalysis> = resource::list(ctx, &mut tx).await?;
    let tags = tags_by_resource(ctx, &mut tx, NetworkInsightsAnalysis::KIND).await?;
    if let Some(p) = &req.network_insights_path_id
        && resource::get::<NetworkInsightsPath>(ctx, &mut tx, p)
            .await?
            .is_none()
    {
        return Err(path_not_found(p));
    }
    drop(tx);
    if let Some(missing) = req
        .network_insights_analysis_ids
        .iter()
        .find(|id| !all.iter().any(|a| &a.network_insights_analysis_id == *id))
    {
        return Err(analysis_not_found(missing));
    }
    dry_run(req.dry_run)?;
    let none = Vec::new();
    let selected: Vec<&NetworkInsightsAnalysis> = all
        .iter()
        .filter(|a| {
            req.network_insights_analysis_ids.is_empty()
                || req
                    .network_insights_analysis_ids
                    .contains(&a.network_insights_analysis_id)
        })
        .filter(|a| {
            req.network_insights_path_id
                .as_ref()
                .is_none_or(|p| &a.network_insights_path_id == p)
        })
        .filter(|a| {
            matches(
                *a,
                tags.get(&a.network_insights_analysis_id).unwrap_or(&none),
                &req.filters,
            )
        })
        .collect();
    let (page, next) = paginate(
        selected,
        |a| a.network_insights_analysis_id.clone(),
        req.max_results,
        req.next_token.as_deref(),
    )?;
    let shown = page
        .iter()
        .map(|a| {
            shown_analysis(
                a,
                tags.get(&a.network_insights_analysis_id).unwrap_or(&none),
            )
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(page_output("NetworkInsightsAnalyses", shown, next))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteAnalysisRequest {
    network_insights_analysis_id: String,
    dry_run: Option<bool>,
}

pub async fn delete_network_insights_analysis(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DeleteAnalysisRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let a: NetworkInsightsAnalysis =
        resource::lock(ctx, &mut tx, &req.network_insights_analysis_id)
            .await?
            .ok_or_else(|| analysis_not_found(&req.network_insights_analysis_id))?;
    dry_run(req.dry_run)?;
    tx.delete(ctx.scope(), &a.network_insights_analysis_id)
        .await?;
    tx.commit().await?;
    Ok(json!({ "NetworkInsightsAnalysisId": a.network_insights_analysis_id }))
}
