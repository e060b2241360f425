//! Network Access Analyzer: access scopes (what paths to look for and which to leave out),
//! their analyses and findings. CreateNetworkInsightsAccessScope,
//! GetNetworkInsightsAccessScopeContent, DescribeNetworkInsightsAccessScopes,
//! DeleteNetworkInsightsAccessScope, StartNetworkInsightsAccessScopeAnalysis,
//! DescribeNetworkInsightsAccessScopeAnalyses, GetNetworkInsightsAccessScopeAnalysisFindings,
//! DeleteNetworkInsightsAccessScopeAnalysis.
//!
//! An analysis looks at every interface of the region. Sources and destinations are
//! interfaces (named by interface, instance, subnet, VPC or security group), or the
//! internet (an internet gateway, by id or by the type `AWS::EC2::InternetGateway`); a
//! packet header statement narrows protocols, ports and addresses. A finding is the first
//! packet of a (source, destination) pair that gets through, shown as the forward path;
//! an exclude path drops findings that start, end or pass where it says.

use super::common::{
    Tag, TagSpecification, dry_run, invalid_value, put_tags, tags_by_resource, tags_from_specs,
};
use super::network_insights::{candidate_sources, components};
use crate::resource::{self, Resource, arn, new_id};
use crate::{Ctx, Error, Result, input, output};
use kumori_net::reach::engine;
use kumori_net::reach::index::Index;
use kumori_net::reach::model::{Interface, Network, Owner, Ports, Protocol};
use kumori_net::reach::portset::PortSet;
use kumori_net::reach::trace::{Endpoint, Verdict, trace_in};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::net::Ipv4Addr;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccessScope {
    pub network_insights_access_scope_id: String,
    pub network_insights_access_scope_arn: String,
    pub created_date: String,
    pub updated_date: String,
    pub match_paths: Value,
    pub exclude_paths: Value,
    #[serde(default)]
    pub client_token: Option<String>,
}

impl Resource for AccessScope {
    const KIND: &'static str = "network-insights-access-scope";
    fn id(&self) -> &str {
        &self.network_insights_access_scope_id
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScopeAnalysis {
    pub network_insights_access_scope_analysis_id: String,
    pub network_insights_access_scope_analysis_arn: String,
    pub network_insights_access_scope_id: String,
    pub status: String,
    pub start_date: String,
    pub end_date: String,
    pub findings_found: String,
    pub analyzed_eni_count: i64,
    pub findings: Vec<Value>,
}

impl Resource for ScopeAnalysis {
    const KIND: &'static str = "network-insights-access-scope-analysis";
    fn id(&self) -> &str {
        &self.network_insights_access_scope_analysis_id
    }
    fn parent(&self) -> Option<&str> {
        Some(&self.network_insights_access_scope_id)
    }
}

fn scope_not_found(id: &str) -> Error {
    Error::new(
        "InvalidNetworkInsightsAccessScopeId.NotFound",
        format!("The network insights access scope '{id}' does not exist."),
    )
}

fn analysis_not_found(id: &str) -> Error {
    Error::new(
        "InvalidNetworkInsightsAccessScopeAnalysisId.NotFound",
        format!("The network insights access scope analysis '{id}' does not exist."),
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateRequest {
    #[serde(default)]
    match_paths: Vec<Value>,
    #[serde(default)]
    exclude_paths: Vec<Value>,
    client_token: Option<String>,
    #[serde(default)]
    tag_specifications: Vec<TagSpecification>,
    dry_run: Option<bool>,
}

/// A statement names resources or resource types, not both.
fn check_statement(path: &Value) -> Result<()> {
    for side in ["Source", "Destination"] {
        let r = &path[side]["ResourceStatement"];
        if r["Resources"].as_array().is_some_and(|a| !a.is_empty())
            && r["ResourceTypes"].as_array().is_some_and(|a| !a.is_empty())
        {
            return Err(invalid_value(
                "A resource statement names resources or resource types, not both.",
            ));
        }
    }
    Ok(())
}

fn scope_shown(s: &AccessScope, tags: &[Tag]) -> Result<Value> {
    Ok(json!({
        "NetworkInsightsAccessScopeId": s.network_insights_access_scope_id,
        "NetworkInsightsAccessScopeArn": s.network_insights_access_scope_arn,
        "CreatedDate": s.created_date,
        "UpdatedDate": s.updated_date,
        "Tags": output(&tags)?,
    }))
}

fn content(s: &AccessScope) -> Value {
    let mut c = json!({
        "NetworkInsightsAccessScopeId": s.network_insights_access_scope_id,
        "MatchPaths": s.match_paths,
    });
    if s.exclude_paths.as_array().is_some_and(|a| !a.is_empty()) {
        c["ExcludePaths"] = s.exclude_paths.clone();
    }
    c
}

pub async fn create_network_insights_access_scope(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: CreateRequest = input(raw)?;
    if req.match_paths.is_empty() {
        return Err(Error::new(
            "MissingParameter",
            "The request must contain the parameter MatchPaths",
        ));
    }
    for p in req.match_paths.iter().chain(&req.exclude_paths) {
        check_statement(p)?;
    }
    let tags = tags_from_specs(&req.tag_specifications, AccessScope::KIND)?;
    let mut tx = ctx.store.write().await?;
    if let Some(token) = &req.client_token
        && let Some(s) = resource::list::<AccessScope>(ctx, &mut tx)
            .await?
            .into_iter()
            .find(|s| s.client_token.as_ref() == Some(token))
    {
        return Ok(json!({
            "NetworkInsightsAccessScope": scope_shown(&s, &[])?,
            "NetworkInsightsAccessScopeContent": content(&s),
        }));
    }
    dry_run(req.dry_run)?;
    let id = new_id("nis");
    let now = kumori_protocol::time::now_iso();
    let s = AccessScope {
        network_insights_access_scope_arn: arn(
            "ec2",
            ctx.region,
            ctx.account,
            &format!("network-insights-access-scope/{id}"),
        ),
        network_insights_access_scope_id: id,
        created_date: now.clone(),
        updated_date: now,
        match_paths: Value::Array(req.match_paths),
        exclude_paths: Value::Array(req.exclude_paths),
        client_token: req.client_token,
    };
    resource::insert(ctx, &mut tx, &s).await?;
    put_tags(
        ctx,
        &mut tx,
        &s.network_insights_access_scope_id,
        AccessScope::KIND,
        &tags,
    )
    .await?;
    tx.commit().await?;
    Ok(json!({
        "NetworkInsightsAccessScope": scope_shown(&s, &tags)?,
        "NetworkInsightsAccessScopeContent": content(&s),
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ScopeIdRequest {
    network_insights_access_scope_id: String,
    dry_run: Option<bool>,
}

pub async fn get_network_insights_access_scope_content(
    ctx: &Ctx<'_>,
    raw: &Value,
) -> Result<Value> {
    let req: ScopeIdRequest = input(raw)?;
    let mut tx = ctx.store.read().await?;
    let s: AccessScope = resource::get(ctx, &mut tx, &req.network_insights_access_scope_id)
        .await?
        .ok_or_else(|| scope_not_found(&req.network_insights_access_scope_id))?;
    dry_run(req.dry_run)?;
    Ok(json!({ "NetworkInsightsAccessScopeContent": content(&s) }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeScopesRequest {
    #[serde(default)]
    network_insights_access_scope_ids: Vec<String>,
    dry_run: Option<bool>,
}

/// Not `generic::describe`: ids are not checked for form (unknown ones are `.NotFound`, never
/// `.Malformed`), Filters and paging are not served, and Tags is shown even when empty: the generic
/// describe would change all three.
pub async fn describe_network_insights_access_scopes(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DescribeScopesRequest = input(raw)?;
    let mut tx = ctx.store.read().await?;
    let all: Vec<AccessScope> = resource::list(ctx, &mut tx).await?;
    let tags = tags_by_resource(ctx, &mut tx, AccessScope::KIND).await?;
    drop(tx);
    if let Some(m) = req.network_insights_access_scope_ids.iter().find(|id| {
        !all.iter()
            .any(|s| &s.network_insights_access_scope_id == *id)
    }) {
        return Err(scope_not_found(m));
    }
    dry_run(req.dry_run)?;
    let none = Vec::new();
    let shown = all
        .iter()
        .filter(|s| {
            req.network_insights_access_scope_ids.is_empty()
                || req
                    .network_insights_access_scope_ids
                    .contains(&s.network_insights_access_scope_id)
        })
        .map(|s| {
            scope_shown(
                s,
                tags.get(&s.network_insights_access_scope_id)
                    .unwrap_or(&none),
            )
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(json!({ "NetworkInsightsAccessScopes": shown }))
}

pub async fn delete_network_insights_access_scope(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ScopeIdRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let s: AccessScope = resource::lock(ctx, &mut tx, &req.network_insights_access_scope_id)
        .await?
        .ok_or_else(|| scope_not_found(&req.network_insights_access_scope_id))?;
    dry_run(req.dry_run)?;
    // Its analyses go with it.
    for a in resource::children::<ScopeAnalysis>(ctx, &mut tx, &s.network_insights_access_scope_id)
        .await?
    {
        tx.delete(ctx.scope(), &a.network_insights_access_scope_analysis_id)
            .await?;
    }
    tx.delete(ctx.scope(), &s.network_insights_access_scope_id)
        .await?;
    tx.commit().await?;
    Ok(json!({ "NetworkInsightsAccessScopeId": s.network_insights_access_scope_id }))
}

/// One end of a path as a statement describes it.
enum End {
    Internet,
    Interfaces(Vec<String>),
    Anything,
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether interface `e` is named by resource `id` (itself, its instance, subnet, VPC or
/// one of its groups).
fn names(e: &Interface, id: &str) -> bool {
    let id = id.rsplit('/').next().unwrap_or(id);
    e.id == id
        || e.subnet_id == id
        || e.vpc_id == id
        || e.groups.iter().any(|g| g == id)
        || matches!(&e.owner, Owner::Instance(i) if i == id)
}

fn end(net: &Network, statement: &Value) -> End {
    let r = &statement["ResourceStatement"];
    let resources = strings(&r["Resources"]);
    let types = strings(&r["ResourceTypes"]);
    if types.iter().any(|t| t == "AWS::EC2::InternetGateway")
        || resources
            .iter()
            .any(|x| x.rsplit('/').next().unwrap_or(x).starts_with("igw-"))
    {
        return End::Internet;
    }
    if resources.is_empty() && types.is_empty() {
        return End::Anything;
    }
    End::Interfaces(
        net.interfaces
            .values()
            .filter(|e| resources.iter().any(|id| names(e, id)))
            .map(|e| e.id.clone())
            .collect(),
    )
}

/// Ports a packet header statement allows ("22", "1024-65535"); all when it names none.
/// The destination ports a packet-header statement names (all of them when it names none).
fn ports_of(header: &Value) -> PortSet {
    let given = strings(&header["DestinationPorts"]);
    if given.is_empty() {
        return PortSet::all();
    }
    given.iter().fold(PortSet::empty(), |set, g| {
        let (from, to) = match g.split_once('-') {
            Some((a, b)) => (
                a.trim().parse().unwrap_or(0),
                b.trim().parse().unwrap_or(65535),
            ),
            None => {
                let p = g.trim().parse().unwrap_or(0);
                (p, p)
            }
        };
        set.union(&PortSet::range(Ports { from, to }))
    })
}

fn protocols_of(header: &Value) -> Vec<Protocol> {
    let given = strings(&header["Protocols"]);
    if given.is_empty() {
        return vec![Protocol::Tcp, Protocol::Udp];
    }
    given
        .iter()
        .filter_map(|p| match p.as_str() {
            "tcp" => Some(Protocol::Tcp),
            "udp" => Some(Protocol::Udp),
            _ => None,
        })
        .collect()
}

/// Whether the exclude path `x` covers a finding from `from` to `to` through `hops`.
fn excluded(net: &Network, x: &Value, from: &Endpoint, to: &Endpoint, v: &Verdict) -> bool {
    let side = |statement: &Value, e: &Endpoint| -> bool {
        if statement.is_null() {
            return true;
        }
        match (end(net, statement), e) {
            (End::Anything, _) => true,
            (End::Internet, Endpoint::Address(_)) => true,
            (End::Interfaces(ids), Endpoint::Interface(id)) => ids.contains(id),
            _ => false,
        }
    };
    let through_ok = x["ThroughResources"].as_array().is_none_or(|list| {
        list.iter().all(|t| {
            let r = &t["ResourceStatement"];
            let ids = strings(&r["Resources"]);
            let types = strings(&r["ResourceTypes"]);
            v.forward.iter().any(|h| {
                ids.iter()
                    .any(|i| i.rsplit('/').next() == Some(h.component.as_str()))
                    || (types.iter().any(|t| t == "AWS::EC2::NatGateway")
                        && h.component.starts_with("nat-"))
                    || (types.iter().any(|t| t == "AWS::EC2::VPCPeeringConnection")
                        && h.component.starts_with("pcx-"))
            })
        })
    });
    side(&x["Source"], from) && side(&x["Destination"], to) && through_ok
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StartRequest {
    network_insights_access_scope_id: String,
    #[serde(default)]
    tag_specifications: Vec<TagSpecification>,
    dry_run: Option<bool>,
}

pub async fn start_network_insights_access_scope_analysis(
    ctx: &Ctx<'_>,
    raw: &Value,
) -> Result<Value> {
    let req: StartRequest = input(raw)?;
    let tags = tags_from_specs(&req.tag_specifications, ScopeAnalysis::KIND)?;
    let scope: AccessScope = {
        let mut tx = ctx.store.read().await?;
        resource::get(ctx, &mut tx, &req.network_insights_access_scope_id)
            .await?
            .ok_or_else(|| scope_not_found(&req.network_insights_access_scope_id))?
    };
    dry_run(req.dry_run)?;
    let net = crate::ec2::reach::snapshot(ctx).await?;
    let ix = Index::new(&net);
    let internet_sources = candidate_sources(&net);
    let all_interfaces: Vec<String> = net.interfaces.keys().cloned().collect();
    let excludes = scope.exclude_paths.as_array().cloned().unwrap_or_default();
    let mut findings = Vec::new();
    let mut seen: Vec<(String, String)> = Vec::new();
    for m in scope.match_paths.as_array().into_iter().flatten() {
        let header = {
            let s = &m["Source"]["PacketHeaderStatement"];
            let d = &m["Destination"]["PacketHeaderStatement"];
            if d.is_null() { s.clone() } else { d.clone() }
        };
        let sources: Vec<Endpoint> = match end(&net, &m["Source"]) {
            End::Internet => internet_sources
                .iter()
                .map(|a| Endpoint::Address(*a))
                .collect(),
            End::Interfaces(ids) => ids.into_iter().map(Endpoint::Interface).collect(),
            End::Anything => all_interfaces
                .iter()
                .cloned()
                .map(Endpoint::Interface)
                .collect(),
        };
        let destinations: Vec<Endpoint> = match end(&net, &m["Destination"]) {
            End::Internet => {
                let given: Vec<Ipv4Addr> = strings(&header["DestinationAddresses"])
                    .iter()
                    .filter_map(|a| a.split('/').next()?.parse().ok())
                    .collect();
                if given.is_empty() {
                    vec![Endpoint::Address(Ipv4Addr::new(198, 51, 100, 1))]
                } else {
                    given.into_iter().map(Endpoint::Address).collect()
                }
            }
            End::Interfaces(ids) => ids.into_iter().map(Endpoint::Interface).collect(),
            End::Anything => all_interfaces
                .iter()
                .cloned()
                .map(Endpoint::Interface)
                .collect(),
        };
        let ports = ports_of(&header);
        let protocols = protocols_of(&header);
        for to in &destinations {
            // Internet sources are classes of one source: a finding per destination.
            let from_internet = matches!(sources.first(), Some(Endpoint::Address(_)));
            let mut done_for_internet = false;
            for from in &sources {
                if from == to || (from_internet && done_for_internet) {
                    continue;
                }
                let key = (format!("{from:?}"), format!("{to:?}"));
                if seen.contains(&key) {
                    continue;
                }
                // The engine decides every port in one walk; the reference traces the
                // one that gets through for the finding's components.
                let hit = protocols.iter().find_map(|p| {
                    let port = engine::ports(&ix, from, to, *p).open_port(&ports)?;
                    Some(trace_in(&ix, from, to, *p, port))
                });
                let Some(v) = hit else { continue };
                if excludes.iter().any(|x| excluded(&net, x, from, to, &v)) {
                    continue;
                }
                seen.push(key);
                done_for_internet = from_internet;
                findings.push(json!({
                    "NetworkInsightsAccessScopeId": scope.network_insights_access_scope_id,
                    "FindingId": format!("AnalysisFinding-{}", findings.len() + 1),
                    "FindingComponents": components(ctx, &net, &v.forward),
                }));
            }
        }
    }
    let id = new_id("nisa");
    let now = kumori_protocol::time::now_iso();
    let a = ScopeAnalysis {
        network_insights_access_scope_analysis_arn: arn(
            "ec2",
            ctx.region,
            ctx.account,
            &format!("network-insights-access-scope-analysis/{id}"),
        ),
        network_insights_access_scope_analysis_id: id,
        network_insights_access_scope_id: scope.network_insights_access_scope_id.clone(),
        status: "succeeded".into(),
        start_date: now.clone(),
        end_date: now,
        findings_found: (!findings.is_empty()).to_string(),
        analyzed_eni_count: net.interfaces.len() as i64,
        findings: findings
            .into_iter()
            .map(|mut f| {
                f["NetworkInsightsAccessScopeAnalysisId"] = Value::Null;
                f
            })
            .collect(),
    };
    let mut tx = ctx.store.write().await?;
    if resource::get::<AccessScope>(ctx, &mut tx, &a.network_insights_access_scope_id)
        .await?
        .is_none()
    {
        return Err(scope_not_found(&a.network_insights_access_scope_id));
    }
    resource::insert(ctx, &mut tx, &a).await?;
    put_tags(
        ctx,
        &mut tx,
        &a.network_insights_access_scope_analysis_id,
        ScopeAnalysis::KIND,
        &tags,
    )
    .await?;
    tx.commit().await?;
    Ok(json!({ "NetworkInsightsAccessScopeAnalysis": {
        "NetworkInsightsAccessScopeAnalysisId": a.network_insights_access_scope_analysis_id,
        "NetworkInsightsAccessScopeAnalysisArn": a.network_insights_access_scope_analysis_arn,
        "NetworkInsightsAccessScopeId": a.network_insights_access_scope_id,
        "Status": "running",
        "StartDate": a.start_date,
        "AnalyzedEniCount": 0,
        "Tags": output(&tags)?,
    }}))
}

fn analysis_shown(a: &ScopeAnalysis, tags: &[Tag]) -> Result<Value> {
    Ok(json!({
        "NetworkInsightsAccessScopeAnalysisId": a.network_insights_access_scope_analysis_id,
        "NetworkInsightsAccessScopeAnalysisArn": a.network_insights_access_scope_analysis_arn,
        "NetworkInsightsAccessScopeId": a.network_insights_access_scope_id,
        "Status": a.status,
        "StartDate": a.start_date,
        "EndDate": a.end_date,
        "FindingsFound": a.findings_found,
        "AnalyzedEniCount": a.analyzed_eni_count,
        "Tags": output(&tags)?,
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeAnalysesRequest {
    #[serde(default)]
    network_insights_access_scope_analysis_ids: Vec<String>,
    network_insights_access_scope_id: Option<String>,
    dry_run: Option<bool>,
}

/// Not `generic::describe`: NetworkInsightsAccessScopeId narrows the list besides the ids, ids are
/// not checked for form (unknown ones are `.NotFound`), and Filters and paging are not served: the
/// generic describe would change that.
pub async fn describe_network_insights_access_scope_analyses(
    ctx: &Ctx<'_>,
    raw: &Value,
) -> Result<Value> {
    let req: DescribeAnalysesRequest = input(raw)?;
    let mut tx = ctx.store.read().await?;
    let all: Vec<ScopeAnalysis> = resource::list(ctx, &mut tx).await?;
    let tags = tags_by_resource(ctx, &mut tx, ScopeAnalysis::KIND).await?;
    drop(tx);
    if let Some(m) = req
        .network_insights_access_scope_analysis_ids
        .iter()
        .find(|id| {
            !all.iter()
                .any(|a| &a.network_insights_access_scope_analysis_id == *id)
        })
    {
        return Err(analysis_not_found(m));
    }
    dry_run(req.dry_run)?;
    let none = Vec::new();
    let shown = all
        .iter()
        .filter(|a| {
            req.network_insights_access_scope_analysis_ids.is_empty()
                || req
                    .network_insights_access_scope_analysis_ids
                    .contains(&a.network_insights_access_scope_analysis_id)
        })
        .filter(|a| {
            req.network_insights_access_scope_id
                .as_ref()
                .is_none_or(|s| &a.network_insights_access_scope_id == s)
        })
        .map(|a| {
            analysis_shown(
                a,
                tags.get(&a.network_insights_access_scope_analysis_id)
                    .unwrap_or(&none),
            )
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(json!({ "NetworkInsightsAccessScopeAnalyses": shown }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct FindingsRequest {
    network_insights_access_scope_analysis_id: String,
    max_results: Option<i64>,
    next_token: Option<String>,
    dry_run: Option<bool>,
}

pub async fn get_network_insights_access_scope_analysis_findings(
    ctx: &Ctx<'_>,
    raw: &Value,
) -> Result<Value> {
    let req: FindingsRequest = input(raw)?;
    let mut tx = ctx.store.read().await?;
    let a: ScopeAnalysis =
        resource::get(ctx, &mut tx, &req.network_insights_access_scope_analysis_id)
            .await?
            .ok_or_else(|| analysis_not_found(&req.network_insights_access_scope_analysis_id))?;
    drop(tx);
    dry_run(req.dry_run)?;
    let start: usize = req
        .next_token
        .as_deref()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let size = req.max_results.unwrap_or(100).clamp(1, 1000) as usize;
    let page: Vec<Value> = a
        .findings
        .iter()
        .skip(start)
        .take(size)
        .map(|f| {
            let mut f = f.clone();
            f["NetworkInsightsAccessScopeAnalysisId"] =
                json!(a.network_insights_access_scope_analysis_id);
            f
        })
        .collect();
    let mut out = json!({
        "NetworkInsightsAccessScopeAnalysisId": a.network_insights_access_scope_analysis_id,
        "AnalysisStatus": a.status,
        "AnalysisFindings": page,
    });
    if start + size < a.findings.len() {
        out["NextToken"] = json!((start + size).to_string());
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteAnalysisRequest {
    network_insights_access_scope_analysis_id: String,
    dry_run: Option<bool>,
}

pub async fn delete_network_insights_access_scope_analysis(
    ctx: &Ctx<'_>,
    raw: &Value,
) -> Result<Value> {
    let req: DeleteAnalysisRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let a: ScopeAnalysis =
        resource::lock(ctx, &mut tx, &req.network_insights_access_scope_analysis_id)
            .await?
            .ok_or_else(|| analysis_not_found(&req.network_insights_access_scope_analysis_id))?;
    dry_run(req.dry_run)?;
    tx.delete(ctx.scope(), &a.network_insights_access_scope_analysis_id)
        .await?;
    tx.commit().await?;
    Ok(
        json!({ "NetworkInsightsAccessScopeAnalysisId": a.network_insights_access_scope_analysis_id }),
    )
}
