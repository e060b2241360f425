//! VPC endpoints: CreateVpcEndpoint, DescribeVpcEndpoints, ModifyVpcEndpoint,
//! DeleteVpcEndpoints, DescribeVpcEndpointServices.
//!
//! A gateway endpoint (S3, DynamoDB) is a route in each of its route tables from the
//! service's AWS-managed prefix list (`prefix_list::aws_managed`) to the endpoint. An
//! interface endpoint is a requester-managed interface in each of its subnets, with its
//! groups and DNS names. Endpoints are children of their VPC, so the VPC cannot be deleted
//! while one is there. The reachability engine does not follow an endpoint route yet: it
//! answers NO_PATH at it, naming the endpoint.

use super::common::{
    Filterable, TagSpecification, dry_run, invalid_value, put_tags, tags_from_specs,
};
use super::eni::{GroupIdentifier, NetworkInterface};
use super::generic::{Ec2Resource, check_id, describe_call};
use super::prefix_list::{GATEWAY_SERVICES, aws_managed};
use super::regions::zones;
use super::routes::{Route, RouteTable};
use super::sg::SecurityGroup;
use super::subnet::Subnet;
use super::vpc::{self, Vpc};
use crate::resource::{self, Resource, new_id};
use crate::{Ctx, Error, Result, input};
use kumori_store::Tx;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The services kumori offers interface endpoints for: the ones tutorials and private-subnet
/// setups reach (Systems Manager's three, ECR's two, and the usual APIs).
const INTERFACE_SERVICES: &[&str] = &[
    "autoscaling",
    "dynamodb",
    "ec2",
    "ec2messages",
    "ecr.api",
    "ecr.dkr",
    "elasticloadbalancing",
    "events",
    "execute-api",
    "kms",
    "lambda",
    "logs",
    "monitoring",
    "rds",
    "s3",
    "secretsmanager",
    "sns",
    "sqs",
    "ssm",
    "ssmmessages",
    "sts",
];

/// The policy an endpoint has when none is given: full access, as AWS writes it.
const FULL_ACCESS: &str = r#"{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}]}"#;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VpcEndpoint {
    pub vpc_endpoint_id: String,
    pub vpc_endpoint_type: String,
    pub vpc_id: String,
    pub service_name: String,
    pub state: String,
    pub policy_document: String,
    pub route_table_ids: Vec<String>,
    pub subnet_ids: Vec<String>,
    pub groups: Vec<GroupIdentifier>,
    pub ip_address_type: String,
    pub dns_options: DnsOptions,
    pub private_dns_enabled: bool,
    pub requester_managed: bool,
    pub network_interface_ids: Vec<String>,
    pub dns_entries: Vec<DnsEntry>,
    pub creation_timestamp: String,
    pub owner_id: String,
    /// Not an output member.
    #[serde(
        default,
        rename = "KumoriClientToken",
        skip_serializing_if = "Option::is_none"
    )]
    pub client_token: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DnsOptions {
    pub dns_record_ip_type: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DnsEntry {
    pub dns_name: String,
    pub hosted_zone_id: String,
}

impl Resource for VpcEndpoint {
    const KIND: &'static str = "vpc-endpoint";
    fn id(&self) -> &str {
        &self.vpc_endpoint_id
    }
    fn parent(&self) -> Option<&str> {
        Some(&self.vpc_id)
    }
}

impl Filterable for VpcEndpoint {
    const FILTERS: &'static [&'static str] = &[
        "ip-address-type",
        "service-name",
        "vpc-endpoint-id",
        "vpc-endpoint-state",
        "vpc-endpoint-type",
        "vpc-id",
    ];
    fn field(&self, name: &str) -> Vec<String> {
        let v = match name {
            "ip-address-type" => &self.ip_address_type,
            "service-name" => &self.service_name,
            "vpc-endpoint-id" => &self.vpc_endpoint_id,
            "vpc-endpoint-state" => &self.state,
            "vpc-endpoint-type" => &self.vpc_endpoint_type,
            "vpc-id" => &self.vpc_id,
            _ => return vec![],
        };
        vec![v.clone()]
    }
}

impl Ec2Resource for VpcEndpoint {
    const ID_PREFIX: &'static str = "vpce";
    const ID_ERROR: &'static str = "InvalidVpcEndpointId";
    fn not_found(id: &str) -> Error {
        Error::new(
            "InvalidVpcEndpointId.NotFound",
            format!("The Vpc Endpoint Id '{id}' does not exist"),
        )
    }
}

/// What a service offers: `Gateway` for S3 and DynamoDB (which also have interface
/// endpoints), `Interface` for the rest.
fn service_types(region: &str, name: &str) -> Vec<&'static str> {
    let Some(short) = name.strip_prefix(&format!("com.amazonaws.{region}.")) else {
        return vec![];
    };
    let mut types = Vec::new();
    if GATEWAY_SERVICES.contains(&short) {
        types.push("Gateway");
    }
    if INTERFACE_SERVICES.contains(&short) {
        types.push("Interface");
    }
    types
}

fn unknown_service(name: &str) -> Error {
    Error::new(
        "InvalidServiceName",
        format!("The Vpc Endpoint Service '{name}' does not exist"),
    )
}

/// A stable stand-in for the Route 53 zone of a region's endpoint names.
fn hosted_zone(region: &str) -> String {
    let id = kumori_catalog::stable_id("z", region, "vpce");
    format!("Z{}", id[2..].to_ascii_uppercase())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateRequest {
    vpc_id: String,
    service_name: String,
    vpc_endpoint_type: Option<String>,
    policy_document: Option<String>,
    #[serde(default)]
    route_table_ids: Vec<String>,
    #[serde(default)]
    subnet_ids: Vec<String>,
    #[serde(default)]
    security_group_ids: Vec<String>,
    ip_address_type: Option<String>,
    private_dns_enabled: Option<bool>,
    #[serde(default)]
    tag_specifications: Vec<TagSpecification>,
    client_token: Option<String>,
    dry_run: Option<bool>,
}

pub async fn create_vpc_endpoint(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: CreateRequest = input(raw)?;
    check_id::<Vpc>(&req.vpc_id)?;
    let kind = req.vpc_endpoint_type.as_deref().unwrap_or("Gateway");
    let offered = service_types(ctx.region, &req.service_name);
    if offered.is_empty() {
        return Err(unknown_service(&req.service_name));
    }
    if !offered.contains(&kind) {
        return Err(invalid_value(format!(
            "The Vpc Endpoint Service '{}' does not support endpoint type {kind}.",
            req.service_name
        )));
    }
    if req.ip_address_type.as_deref().is_some_and(|t| t != "ipv4") {
        return Err(Error(kumori_protocol::AwsError::not_implemented(
            "ec2",
            "VPC endpoints with IPv6 or dual-stack addresses",
        )));
    }
    let policy = match &req.policy_document {
        Some(p) => {
            serde_json::from_str::<Value>(p)
                .map_err(|_| invalid_value("The policy document is not valid JSON."))?;
            p.clone()
        }
        None => FULL_ACCESS.to_string(),
    };
    let tags = tags_from_specs(&req.tag_specifications, VpcEndpoint::KIND)?;
    let mut tx = ctx.store.write().await?;
    // Idempotency: the same client token answers with the endpoint it made.
    if let Some(token) = &req.client_token {
        let same: Vec<VpcEndpoint> =
            resource::find_where(ctx, &mut tx, "KumoriClientToken", token.as_str()).await?;
        if let Some(e) = same.into_iter().next() {
            let tags = tx.tags_of(ctx.scope(), &e.vpc_endpoint_id).await?;
            let tags: Vec<super::common::Tag> = tags
                .into_iter()
                .map(|t| super::common::Tag {
                    key: t.key,
                    value: t.value,
                })
                .collect();
            return Ok(json!({ "VpcEndpoint": e.shown(&tags)?, "ClientToken": token }));
        }
    }
    let vpc: Vpc = resource::lock(ctx, &mut tx, &req.vpc_id)
        .await?
        .ok_or_else(|| vpc::not_found(&req.vpc_id))?;
    let id = new_id("vpce");
    let mut endpoint = VpcEndpoint {
        vpc_endpoint_id: id.clone(),
        vpc_endpoint_type: kind.to_string(),
        vpc_id: vpc.vpc_id.clone(),
        service_name: req.service_name.clone(),
        state: "available".into(),
        policy_document: policy,
        route_table_ids: vec![],
        subnet_ids: vec![],
        groups: vec![],
        ip_address_type: "ipv4".into(),
        dns_options: DnsOptions {
            dns_record_ip_type: "ipv4".into(),
        },
        private_dns_enabled: false,
        requester_managed: false,
        network_interface_ids: vec![],
        dns_entries: vec![],
        creation_timestamp: kumori_protocol::time::now_iso(),
        owner_id: ctx.account.to_string(),
        client_token: req.client_token.clone(),
    };
    if kind == "Gateway" {
        if !req.subnet_ids.is_empty() || !req.security_group_ids.is_empty() {
            return Err(invalid_value(
                "Gateway endpoints take route tables, not subnets or security groups.",
            ));
        }
        dry_run(req.dry_run)?;
        for table in &req.route_table_ids {
            add_route(ctx, &mut tx, &endpoint, table).await?;
        }
        endpoint.route_table_ids = req.route_table_ids.clone();
    } else {
        if !req.route_table_ids.is_empty() {
            return Err(invalid_value(
                "Interface endpoints take subnets and security groups, not route tables.",
            ));
        }
        // AWS's default for AWS services is private DNS on, which needs both VPC DNS settings.
        let private_dns = req.private_dns_enabled.unwrap_or(true);
        if private_dns
            && !(vpc.attributes.enable_dns_support && vpc.attributes.enable_dns_hostnames)
        {
            return Err(invalid_value(format!(
                "Enabling private DNS requires both enableDnsSupport and enableDnsHostnames VPC attributes set to true for {}",
                vpc.vpc_id
            )));
        }
        endpoint.private_dns_enabled = private_dns;
        endpoint.requester_managed = false;
        endpoint.groups = groups(ctx, &mut tx, &vpc.vpc_id, &req.security_group_ids).await?;
        dry_run(req.dry_run)?;
        for subnet in &req.subnet_ids {
            add_subnet(ctx, &mut tx, &mut endpoint, subnet).await?;
        }
        endpoint.dns_entries = dns_entries(ctx, &endpoint);
    }
    resource::insert(ctx, &mut tx, &endpoint).await?;
    put_tags(ctx, &mut tx, &id, VpcEndpoint::KIND, &tags).await?;
    tx.commit().await?;
    let mut out = json!({ "VpcEndpoint": endpoint.shown(&tags)? });
    if let Some(t) = req.client_token {
        out["ClientToken"] = json!(t);
    }
    Ok(out)
}

/// The groups `ids` of `vpc_id` (the VPC's default group when none), as the endpoint shows them.
async fn groups(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    vpc_id: &str,
    ids: &[String],
) -> Result<Vec<GroupIdentifier>> {
    super::eni::groups_or_default(ctx, tx, vpc_id, ids).await
}

/// The service's route in `table_id`, which must be a table of the endpoint's VPC.
async fn add_route(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    endpoint: &VpcEndpoint,
    table_id: &str,
) -> Result<()> {
    let mut table: RouteTable = resource::lock(ctx, tx, table_id)
        .await?
        .ok_or_else(|| RouteTable::not_found(table_id))?;
    if table.vpc_id != endpoint.vpc_id {
        return Err(invalid_value(format!(
            "The route table {table_id} is not in {}.",
            endpoint.vpc_id
        )));
    }
    let list = aws_managed(ctx.region)
        .into_iter()
        .find(|p| p.prefix_list_name == endpoint.service_name)
        .ok_or_else(|| unknown_service(&endpoint.service_name))?;
    if table
        .routes
        .iter()
        .any(|r| r.destination_prefix_list_id.as_deref() == Some(&list.prefix_list_id))
    {
        return Err(Error::new(
            "RouteAlreadyExists",
            format!(
                "route table {table_id} already has a route with destination-prefix-list-id {}",
                list.prefix_list_id
            ),
        ));
    }
    table.routes.push(Route {
        destination_prefix_list_id: Some(list.prefix_list_id),
        gateway_id: Some(endpoint.vpc_endpoint_id.clone()),
        origin: "CreateRoute".into(),
        state: "active".into(),
        ..Default::default()
    });
    resource::update(ctx, tx, &table).await
}

/// Takes the endpoint's route out of `table_id` (gone tables are skipped).
async fn remove_route(ctx: &Ctx<'_>, tx: &mut Tx, endpoint_id: &str, table_id: &str) -> Result<()> {
    if let Some(mut table) = resource::lock::<RouteTable>(ctx, tx, table_id).await? {
        table
            .routes
            .retain(|r| r.gateway_id.as_deref() != Some(endpoint_id));
        resource::update(ctx, tx, &table).await?;
    }
    Ok(())
}

/// The endpoint's interface in `subnet_id`: one per zone, as AWS allows.
async fn add_subnet(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    endpoint: &mut VpcEndpoint,
    subnet_id: &str,
) -> Result<()> {
    check_id::<Subnet>(subnet_id)?;
    let subnet: Subnet = resource::get(ctx, tx, subnet_id)
        .await?
        .ok_or_else(|| super::subnet::not_found(subnet_id))?;
    if subnet.vpc_id != endpoint.vpc_id {
        return Err(invalid_value(format!(
            "The subnet {subnet_id} is not in {}.",
            endpoint.vpc_id
        )));
    }
    for other in &endpoint.subnet_ids {
        let o: Option<Subnet> = resource::get(ctx, tx, other).await?;
        if o.is_some_and(|o| o.availability_zone == subnet.availability_zone) {
            return Err(Error::new(
                "DuplicateSubnetsInSameZone",
                format!(
                    "Found another VPC endpoint subnet in the availability zone of {subnet_id}. VPC endpoint subnets should be in different availability zones supported by the VPC endpoint service."
                ),
            ));
        }
    }
    let mut eni = super::eni::create_managed(
        ctx,
        tx,
        subnet_id,
        "vpc_endpoint",
        format!("VPC Endpoint Interface {}", endpoint.vpc_endpoint_id),
    )
    .await?;
    eni.groups = endpoint.groups.clone();
    resource::update(ctx, tx, &eni).await?;
    endpoint.subnet_ids.push(subnet_id.to_string());
    endpoint
        .network_interface_ids
        .push(eni.network_interface_id);
    Ok(())
}

/// The endpoint's regional name, one per zone it is in, and the service's own name when
/// private DNS is on, as AWS lists them.
fn dns_entries(ctx: &Ctx<'_>, endpoint: &VpcEndpoint) -> Vec<DnsEntry> {
    let short = endpoint
        .service_name
        .rsplit_once(&format!("{}.", ctx.region))
        .map_or(endpoint.service_name.as_str(), |(_, s)| s);
    let suffix = &endpoint.vpc_endpoint_id[5..];
    let base = format!("{}.{}.vpce.amazonaws.com", short, ctx.region);
    let zone = hosted_zone(ctx.region);
    let entry = |name: String| DnsEntry {
        dns_name: name,
        hosted_zone_id: zone.clone(),
    };
    let mut out = vec![entry(format!("vpce-{suffix}.{base}"))];
    let all_zones = zones(ctx.region);
    for (i, _) in endpoint.subnet_ids.iter().enumerate() {
        if let Some(z) = all_zones.get(i) {
            out.push(entry(format!("vpce-{suffix}-{}.{base}", z.name)));
        }
    }
    if endpoint.private_dns_enabled {
        out.push(entry(format!("{short}.{}.amazonaws.com", ctx.region)));
    }
    out
}

pub async fn describe_vpc_endpoints(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    describe_call::<VpcEndpoint>(ctx, raw, "VpcEndpointIds", "VpcEndpoints").await
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ModifyRequest {
    vpc_endpoint_id: String,
    policy_document: Option<String>,
    reset_policy: Option<bool>,
    #[serde(default)]
    add_route_table_ids: Vec<String>,
    #[serde(default)]
    remove_route_table_ids: Vec<String>,
    #[serde(default)]
    add_subnet_ids: Vec<String>,
    #[serde(default)]
    remove_subnet_ids: Vec<String>,
    #[serde(default)]
    add_security_group_ids: Vec<String>,
    #[serde(default)]
    remove_security_group_ids: Vec<String>,
    private_dns_enabled: Option<bool>,
    dry_run: Option<bool>,
}

pub async fn modify_vpc_endpoint(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ModifyRequest = input(raw)?;
    check_id::<VpcEndpoint>(&req.vpc_endpoint_id)?;
    let mut tx = ctx.store.write().await?;
    let mut e: VpcEndpoint = resource::lock(ctx, &mut tx, &req.vpc_endpoint_id)
        .await?
        .ok_or_else(|| VpcEndpoint::not_found(&req.vpc_endpoint_id))?;
    let gateway = e.vpc_endpoint_type == "Gateway";
    if gateway
        && (!req.add_subnet_ids.is_empty()
            || !req.add_security_group_ids.is_empty()
            || req.private_dns_enabled.is_some())
    {
        return Err(invalid_value(
            "Gateway endpoints take route tables, not subnets, security groups or private DNS.",
        ));
    }
    if !gateway && !req.add_route_table_ids.is_empty() {
        return Err(invalid_value(
            "Interface endpoints take subnets and security groups, not route tables.",
        ));
    }
    dry_run(req.dry_run)?;
    if req.reset_policy == Some(true) {
        e.policy_document = FULL_ACCESS.to_string();
    } else if let Some(p) = &req.policy_document {
        serde_json::from_str::<Value>(p)
            .map_err(|_| invalid_value("The policy document is not valid JSON."))?;
        e.policy_document = p.clone();
    }
    for t in &req.remove_route_table_ids {
        remove_route(ctx, &mut tx, &e.vpc_endpoint_id, t).await?;
        e.route_table_ids.retain(|x| x != t);
    }
    for t in &req.add_route_table_ids {
        if !e.route_table_ids.contains(t) {
            add_route(ctx, &mut tx, &e, t).await?;
            e.route_table_ids.push(t.clone());
        }
    }
    for s in &req.remove_subnet_ids {
        if let Some(at) = e.subnet_ids.iter().position(|x| x == s) {
            let eni = e.network_interface_ids.remove(at);
            e.subnet_ids.remove(at);
            super::eni::remove(ctx, &mut tx, &eni).await?;
        }
    }
    if !req.add_security_group_ids.is_empty() || !req.remove_security_group_ids.is_empty() {
        let mut ids: Vec<String> = e
            .groups
            .iter()
            .map(|g| g.group_id.clone())
            .filter(|g| !req.remove_security_group_ids.contains(g))
            .collect();
        for g in &req.add_security_group_ids {
            check_id::<SecurityGroup>(g)?;
            if !ids.contains(g) {
                ids.push(g.clone());
            }
        }
        e.groups = groups(ctx, &mut tx, &e.vpc_id.clone(), &ids).await?;
        for id in &e.network_interface_ids {
            if let Some(mut eni) = resource::lock::<NetworkInterface>(ctx, &mut tx, id).await? {
                eni.groups = e.groups.clone();
                resource::update(ctx, &mut tx, &eni).await?;
            }
        }
    }
    for s in &req.add_subnet_ids {
        if !e.subnet_ids.contains(s) {
            add_subnet(ctx, &mut tx, &mut e, s).await?;
        }
    }
    if let Some(p) = req.private_dns_enabled {
        e.private_dns_enabled = p;
    }
    if !gateway {
        e.dns_entries = dns_entries(ctx, &e);
    }
    resource::update(ctx, &mut tx, &e).await?;
    tx.commit().await?;
    Ok(json!({ "Return": true }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteRequest {
    #[serde(default)]
    vpc_endpoint_ids: Vec<String>,
    dry_run: Option<bool>,
}

/// DeleteVpcEndpoints: each one with its routes or interfaces; ids that are not found are
/// listed as unsuccessful, as AWS answers, and the rest are deleted.
pub async fn delete_vpc_endpoints(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DeleteRequest = input(raw)?;
    for id in &req.vpc_endpoint_ids {
        check_id::<VpcEndpoint>(id)?;
    }
    let mut tx = ctx.store.write().await?;
    dry_run(req.dry_run)?;
    let mut unsuccessful = Vec::new();
    for id in &req.vpc_endpoint_ids {
        let Some(e) = resource::lock::<VpcEndpoint>(ctx, &mut tx, id).await? else {
            let err = VpcEndpoint::not_found(id);
            unsuccessful.push(json!({
                "Error": { "Code": err.0.code, "Message": err.0.message },
                "ResourceId": id,
            }));
            continue;
        };
        for t in &e.route_table_ids {
            remove_route(ctx, &mut tx, &e.vpc_endpoint_id, t).await?;
        }
        for eni in &e.network_interface_ids {
            super::eni::remove(ctx, &mut tx, eni).await?;
        }
        tx.delete(ctx.scope(), &e.vpc_endpoint_id).await?;
    }
    tx.commit().await?;
    Ok(json!({ "Unsuccessful": unsuccessful }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ServicesRequest {
    #[serde(default)]
    service_names: Vec<String>,
    #[serde(default)]
    filters: Vec<super::common::Filter>,
    dry_run: Option<bool>,
}

/// DescribeVpcEndpointServices: the AWS services of the region kumori has endpoints for.
pub async fn describe_vpc_endpoint_services(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ServicesRequest = input(raw)?;
    let region = ctx.region;
    let mut names: Vec<String> = INTERFACE_SERVICES
        .iter()
        .map(|s| format!("com.amazonaws.{region}.{s}"))
        .collect();
    names.sort();
    if let Some(missing) = req.service_names.iter().find(|n| !names.contains(n)) {
        return Err(unknown_service(missing));
    }
    for f in &req.filters {
        if !["service-name", "service-type", "owner"].contains(&f.name.as_str())
            && !f.name.starts_with("tag")
        {
            return Err(invalid_value(format!("The filter '{}' is invalid", f.name)));
        }
    }
    dry_run(req.dry_run)?;
    let zone_names: Vec<String> = zones(region).into_iter().map(|z| z.name).collect();
    let mut details = Vec::new();
    let mut shown = Vec::new();
    for name in &names {
        if !req.service_names.is_empty() && !req.service_names.contains(name) {
            continue;
        }
        let short = &name[format!("com.amazonaws.{region}.").len()..];
        for kind in service_types(region, name) {
            let wanted = |filter: &str, value: &str| {
                req.filters
                    .iter()
                    .filter(|f| f.name == filter)
                    .all(|f| f.values.iter().any(|v| v == value))
            };
            if !wanted("service-name", name)
                || !wanted("service-type", kind)
                || !wanted("owner", "amazon")
            {
                continue;
            }
            let interface = kind == "Interface";
            let mut d = json!({
                "ServiceName": name,
                "ServiceId": kumori_catalog::stable_id("vpce-svc", region, &format!("{name}/{kind}")),
                "ServiceType": [{ "ServiceType": kind }],
                "AvailabilityZones": zone_names,
                "Owner": "amazon",
                "BaseEndpointDnsNames": [format!("{short}.{region}.{}", if interface { "vpce.amazonaws.com" } else { "amazonaws.com" })],
                "VpcEndpointPolicySupported": true,
                "AcceptanceRequired": false,
                "ManagesVpcEndpoints": false,
                "SupportedIpAddressTypes": ["ipv4"],
                "PrivateDnsNameVerificationState": "verified",
            });
            if interface && short != "s3" {
                d["PrivateDnsName"] = json!(format!("{short}.{region}.amazonaws.com"));
                d["PrivateDnsNames"] =
                    json!([{ "PrivateDnsName": format!("{short}.{region}.amazonaws.com") }]);
            }
            details.push(d);
            if !shown.contains(name) {
                shown.push(name.clone());
            }
        }
    }
    Ok(json!({ "ServiceNames": shown, "ServiceDetails": details }))
}
