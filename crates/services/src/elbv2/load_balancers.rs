//! Load balancers: application and network ones in a VPC's subnets, one managed network
//! interface per subnet (as AWS makes them), their attributes and security groups.

use super::{
    Attribute, LB, LISTENER, apply_attributes, arn, attributes_shown, bool_attribute, check_tags,
    invalid_config, lb_not_found, page, store_tags, suffix, validation,
};
use crate::ec2::api;
use crate::kit::Tag;
use crate::resource::{self, Resource};
use crate::{Ctx, Error, Result, input};
use kumori_store::Tx;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LoadBalancer {
    pub load_balancer_arn: String,
    #[serde(rename = "DNSName")]
    pub dns_name: String,
    pub canonical_hosted_zone_id: String,
    pub created_time: String,
    pub load_balancer_name: String,
    pub scheme: String,
    pub vpc_id: String,
    pub state: State,
    #[serde(rename = "Type")]
    pub kind: String,
    pub availability_zones: Vec<Zone>,
    #[serde(default)]
    pub security_groups: Vec<String>,
    pub ip_address_type: String,
    #[serde(default)]
    pub kumori_attributes: BTreeMap<String, String>,
    /// The managed interface in each subnet, by subnet id.
    #[serde(default)]
    pub kumori_interfaces: BTreeMap<String, String>,
    /// The capacity reserved with ModifyCapacityReservation (capacity units), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kumori_capacity_units: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct State {
    pub code: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Zone {
    pub zone_name: String,
    pub subnet_id: String,
    #[serde(default)]
    pub load_balancer_addresses: Vec<Value>,
}

impl Resource for LoadBalancer {
    const KIND: &'static str = LB;
    fn id(&self) -> &str {
        &self.load_balancer_arn
    }
}

impl LoadBalancer {
    pub fn is_application(&self) -> bool {
        self.kind == "application"
    }
    pub fn defaults(&self) -> &'static [(&'static str, &'static str)] {
        if self.is_application() {
            ALB_ATTRIBUTES
        } else {
            NLB_ATTRIBUTES
        }
    }
    /// `app/my-lb/50dc6c495c0c9188`: what listener and rule ARNs continue from.
    pub fn path(&self) -> &str {
        self.load_balancer_arn
            .split_once(":loadbalancer/")
            .map_or("", |(_, p)| p)
    }
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.kumori_attributes
            .get(key)
            .map(String::as_str)
            .or_else(|| {
                self.defaults()
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| *v)
            })
    }
}

/// An application load balancer's attributes and their defaults.
pub const ALB_ATTRIBUTES: &[(&str, &str)] = &[
    ("access_logs.s3.enabled", "false"),
    ("access_logs.s3.bucket", ""),
    ("access_logs.s3.prefix", ""),
    ("client_keep_alive.seconds", "3600"),
    ("connection_logs.s3.enabled", "false"),
    ("connection_logs.s3.bucket", ""),
    ("connection_logs.s3.prefix", ""),
    ("deletion_protection.enabled", "false"),
    ("health_check_logs.s3.enabled", "false"),
    ("health_check_logs.s3.bucket", ""),
    ("health_check_logs.s3.prefix", ""),
    ("idle_timeout.timeout_seconds", "60"),
    ("load_balancing.cross_zone.enabled", "true"),
    ("routing.http.desync_mitigation_mode", "defensive"),
    ("routing.http.drop_invalid_header_fields.enabled", "false"),
    ("routing.http.preserve_host_header.enabled", "false"),
    (
        "routing.http.x_amzn_tls_version_and_cipher_suite.enabled",
        "false",
    ),
    ("routing.http.xff_client_port.enabled", "false"),
    ("routing.http.xff_header_processing.mode", "append"),
    ("routing.http2.enabled", "true"),
    ("waf.fail_open.enabled", "false"),
    ("zonal_shift.config.enabled", "false"),
];

/// A network load balancer's attributes and their defaults.
pub const NLB_ATTRIBUTES: &[(&str, &str)] = &[
    ("access_logs.s3.enabled", "false"),
    ("access_logs.s3.bucket", ""),
    ("access_logs.s3.prefix", ""),
    ("deletion_protection.enabled", "false"),
    ("dns_record.client_routing_policy", "any_availability_zone"),
    ("load_balancing.cross_zone.enabled", "false"),
    ("secondary_ips.auto_assign.per_subnet", "0"),
    ("zonal_shift.config.enabled", "false"),
];

pub const OPERATIONS: &[crate::kit::Op] = crate::operations![
    "CreateLoadBalancer" => create_load_balancer,
    "DescribeLoadBalancers" => describe_load_balancers,
    "DeleteLoadBalancer" => delete_load_balancer,
    "DescribeLoadBalancerAttributes" => describe_load_balancer_attributes,
    "ModifyLoadBalancerAttributes" => modify_load_balancer_attributes,
    "SetSubnets" => set_subnets,
    "SetSecurityGroups" => set_security_groups,
    "SetIpAddressType" => set_ip_address_type,
    "DescribeCapacityReservation" => describe_capacity_reservation,
    "ModifyCapacityReservation" => modify_capacity_reservation,
];

/// A subnet mapping: the subnet, and an Elastic IP (refused for an ALB; for an NLB kept
/// out of the node, see the README).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SubnetMapping {
    subnet_id: String,
    allocation_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateRequest {
    name: String,
    #[serde(default)]
    subnets: Vec<String>,
    #[serde(default)]
    subnet_mappings: Vec<SubnetMapping>,
    security_groups: Option<Vec<String>>,
    scheme: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
    #[serde(rename = "Type")]
    kind: Option<String>,
    ip_address_type: Option<String>,
}

/// ELBv2's names: 1–32 letters, digits and hyphens, no hyphen first or last, and not
/// `internal-` first (the prefix of internal load balancers' DNS names).
pub(crate) fn check_name(what: &str, name: &str) -> Result<()> {
    if name.len() > 32 {
        return Err(validation(format!(
            "{what} name '{name}' cannot be longer than '32' characters"
        )));
    }
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(validation(format!(
            "{what} name '{name}' can only contain characters that are alphanumeric characters or hyphens(-)"
        )));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err(validation(format!(
            "{what} name '{name}' cannot begin or end with '-' character"
        )));
    }
    if what == "Load balancer" && name.starts_with("internal-") {
        return Err(validation(format!(
            "Load balancer name '{name}' cannot begin with 'internal-'"
        )));
    }
    Ok(())
}

/// The hosted zone of a region's load balancers' DNS names (AWS's published ids), for
/// alias records; regions kumori has no table entry for get us-east-1's.
fn hosted_zone(region: &str, application: bool) -> &'static str {
    match (region, application) {
        ("us-east-1", true) => "Z35SXDOTRQ7X7K",
        ("us-east-1", false) => "Z26RNL4JYFTOTI",
        ("us-east-2", true) => "Z3AADJGX6KTTL2",
        ("us-east-2", false) => "ZLMOA37VPKANP",
        ("us-west-1", true) => "Z368ELLRRE2KJ0",
        ("us-west-1", false) => "Z24FKFUX50B4VW",
        ("us-west-2", true) => "Z1H1FL5HABSF5",
        ("us-west-2", false) => "Z18D5FSROUN65G",
        ("eu-west-1", true) => "Z32O12XQLNTSW2",
        ("eu-west-1", false) => "Z2IFOLAFXWLO4F",
        ("eu-central-1", true) => "Z215JYRZR1TBD5",
        ("eu-central-1", false) => "Z3F0SRJ5LGBH90",
        ("ap-northeast-1", true) => "Z14GRHDCWA56QT",
        ("ap-northeast-1", false) => "Z31USIVHYNEOWT",
        (_, true) => "Z35SXDOTRQ7X7K",
        (_, false) => "Z26RNL4JYFTOTI",
    }
}

fn dns_name(region: &str, name: &str, internal: bool, application: bool) -> String {
    use rand::Rng;
    let prefix = if internal { "internal-" } else { "" };
    if application {
        let n: u64 = rand::rng().random_range(1_000_000_000..10_000_000_000);
        format!("{prefix}{name}-{n}.{region}.elb.amazonaws.com")
    } else {
        let n: u64 = rand::rng().random();
        format!("{prefix}{name}-{n:016x}.elb.{region}.amazonaws.com")
    }
}

/// The subnets a call names, checked: they exist, share one VPC, one per zone, and an
/// application load balancer has at least two zones.
async fn zones_of(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    subnets: &[String],
    application: bool,
) -> Result<(String, Vec<Zone>)> {
    let mut zones: Vec<Zone> = Vec::new();
    let mut vpc: Option<String> = None;
    for id in subnets {
        let s = api::subnet(ctx, tx, id).await?.ok_or_else(|| {
            Error::new(
                "SubnetNotFound",
                format!("The subnet ID '{id}' is not valid"),
            )
        })?;
        match &vpc {
            Some(v) if *v != s.vpc_id => {
                return Err(Error::new(
                    "InvalidSubnet",
                    "All subnets must belong to the same VPC",
                ));
            }
            _ => vpc = Some(s.vpc_id.clone()),
        }
        if zones.iter().any(|z| z.zone_name == s.availability_zone) {
            return Err(invalid_config(
                "A load balancer cannot be attached to multiple subnets in the same Availability Zone",
            ));
        }
        zones.push(Zone {
            zone_name: s.availability_zone,
            subnet_id: s.subnet_id,
            load_balancer_addresses: vec![],
        });
    }
    if application && zones.len() < 2 {
        return Err(validation(
            "At least two subnets in two different Availability Zones must be specified",
        ));
    }
    let vpc = vpc.ok_or_else(|| validation("At least one subnet must be specified"))?;
    zones.sort_by(|a, b| a.zone_name.cmp(&b.zone_name));
    Ok((vpc, zones))
}

async fn check_groups(ctx: &Ctx<'_>, tx: &mut Tx, vpc: &str, groups: &[String]) -> Result<()> {
    for g in groups {
        match api::security_group_vpc(ctx, tx, g).await? {
            Some(v) if v == vpc => {}
            _ => {
                return Err(Error::new(
                    "InvalidSecurityGroup",
                    format!("One or more security groups are invalid: '{g}'"),
                ));
            }
        }
    }
    Ok(())
}

/// Makes or removes managed interfaces so there is one in each of `lb`'s subnets.
async fn sync_interfaces(ctx: &Ctx<'_>, tx: &mut Tx, lb: &mut LoadBalancer) -> Result<()> {
    let wanted: Vec<String> = lb
        .availability_zones
        .iter()
        .map(|z| z.subnet_id.clone())
        .collect();
    let gone: Vec<String> = lb
        .kumori_interfaces
        .keys()
        .filter(|s| !wanted.contains(s))
        .cloned()
        .collect();
    for subnet in gone {
        if let Some(eni) = lb.kumori_interfaces.remove(&subnet) {
            api::delete_managed_interface(ctx, tx, &eni).await?;
        }
    }
    let (interface_type, short) = if lb.is_application() {
        ("interface", "app")
    } else {
        ("network_load_balancer", "net")
    };
    for subnet in wanted {
        if lb.kumori_interfaces.contains_key(&subnet) {
            continue;
        }
        let id = lb.path().rsplit('/').next().unwrap_or_default().to_string();
        let eni = api::create_managed_interface(
            ctx,
            tx,
            &subnet,
            interface_type,
            format!("ELB {short}/{}/{id}", lb.load_balancer_name),
        )
        .await?;
        if !lb.is_application() {
            for z in &mut lb.availability_zones {
                if z.subnet_id == subnet {
                    z.load_balancer_addresses =
                        vec![json!({ "PrivateIPv4Address": eni.private_ip })];
                }
            }
        }
        lb.kumori_interfaces
            .insert(subnet, eni.network_interface_id);
    }
    dress_interfaces(ctx, tx, lb).await
}

/// The nodes carry the load balancer's security groups (what the reachability analysis
/// and a security group's deletion see), and a public address when it faces the internet.
async fn dress_interfaces(ctx: &Ctx<'_>, tx: &mut Tx, lb: &LoadBalancer) -> Result<()> {
    let public = lb.scheme == "internet-facing";
    for eni in lb.kumori_interfaces.values() {
        api::dress_managed_interface(ctx, tx, eni, &lb.security_groups, public).await?;
    }
    Ok(())
}

pub async fn create_load_balancer(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: CreateRequest = input(raw)?;
    check_name("Load balancer", &req.name)?;
    check_tags(&req.tags)?;
    let kind = req.kind.clone().unwrap_or_else(|| "application".into());
    match kind.as_str() {
        "application" | "network" => {}
        _ => {
            return Err(Error(kumori_protocol::AwsError::not_implemented(
                "elbv2",
                "CreateLoadBalancer of type gateway",
            )));
        }
    }
    let application = kind == "application";
    let scheme = req
        .scheme
        .clone()
        .unwrap_or_else(|| "internet-facing".into());
    let mut subnets = req.subnets.clone();
    for m in &req.subnet_mappings {
        if m.allocation_id.is_some() && application {
            return Err(invalid_config(
                "Elastic IP addresses cannot be assigned to an Application Load Balancer",
            ));
        }
        subnets.push(m.subnet_id.clone());
    }
    if !req.subnets.is_empty() && !req.subnet_mappings.is_empty() {
        return Err(validation(
            "You can specify subnets or subnet mappings, not both",
        ));
    }
    let mut tx = ctx.store.write().await?;
    let (vpc_id, zones) = zones_of(ctx, &mut tx, &subnets, application).await?;
    let groups = match req.security_groups.clone() {
        Some(g) => g,
        None if application => api::default_security_group(ctx, &mut tx, &vpc_id)
            .await?
            .into_iter()
            .collect(),
        None => vec![],
    };
    check_groups(ctx, &mut tx, &vpc_id, &groups).await?;
    // The same name again: the same load balancer when asked for the same, as AWS answers.
    let same: Vec<LoadBalancer> =
        resource::find_where(ctx, &mut tx, "LoadBalancerName", req.name.as_str()).await?;
    if let Some(old) = same.into_iter().next() {
        let old_subnets: Vec<&str> = old
            .availability_zones
            .iter()
            .map(|z| z.subnet_id.as_str())
            .collect();
        let mut new_subnets: Vec<&str> = zones.iter().map(|z| z.subnet_id.as_str()).collect();
        new_subnets.sort();
        let mut sorted_old = old_subnets.clone();
        sorted_old.sort();
        if old.kind == kind && old.scheme == scheme && sorted_old == new_subnets {
            return Ok(json!({ "LoadBalancers": [old] }));
        }
        return Err(Error::new(
            "DuplicateLoadBalancerName",
            format!(
                "A load balancer with the same name '{}' exists, but with different settings",
                req.name
            ),
        ));
    }
    let count = tx.count(ctx.scope(), LB).await?;
    if count >= 50 {
        return Err(Error::new(
            "TooManyLoadBalancers",
            "The quota of load balancers per Region (50) has been reached",
        ));
    }
    let short = if application { "app" } else { "net" };
    let mut lb = LoadBalancer {
        load_balancer_arn: arn(
            ctx,
            &format!("loadbalancer/{short}/{}/{}", req.name, suffix()),
        ),
        dns_name: dns_name(ctx.region, &req.name, scheme == "internal", application),
        canonical_hosted_zone_id: hosted_zone(ctx.region, application).into(),
        created_time: kumori_protocol::time::now_iso(),
        load_balancer_name: req.name.clone(),
        scheme,
        vpc_id,
        state: State {
            code: "provisioning".into(),
        },
        kind,
        availability_zones: zones,
        security_groups: groups,
        ip_address_type: req.ip_address_type.unwrap_or_else(|| "ipv4".into()),
        kumori_attributes: BTreeMap::new(),
        kumori_interfaces: BTreeMap::new(),
        kumori_capacity_units: None,
    };
    sync_interfaces(ctx, &mut tx, &mut lb).await?;
    resource::insert(ctx, &mut tx, &lb).await?;
    store_tags(ctx, &mut tx, &lb.load_balancer_arn, LB, &req.tags).await?;
    tx.commit().await?;
    Ok(json!({ "LoadBalancers": [lb] }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeRequest {
    #[serde(default)]
    load_balancer_arns: Vec<String>,
    #[serde(default)]
    names: Vec<String>,
    marker: Option<String>,
    page_size: Option<i64>,
}

pub async fn describe_load_balancers(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DescribeRequest = input(raw)?;
    let mut tx = ctx.store.read().await?;
    let all: Vec<LoadBalancer> = resource::list(ctx, &mut tx).await?;
    let mut shown = Vec::new();
    if !req.load_balancer_arns.is_empty() {
        for a in &req.load_balancer_arns {
            let lb = all
                .iter()
                .find(|l| &l.load_balancer_arn == a)
                .ok_or_else(lb_not_found)?;
            shown.push(lb);
        }
    } else if !req.names.is_empty() {
        let missing: Vec<&String> = req
            .names
            .iter()
            .filter(|n| !all.iter().any(|l| &l.load_balancer_name == *n))
            .collect();
        if !missing.is_empty() {
            return Err(Error::new(
                "LoadBalancerNotFound",
                format!(
                    "Load balancers '[{}]' not found",
                    missing
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        shown.extend(
            all.iter()
                .filter(|l| req.names.contains(&l.load_balancer_name)),
        );
    } else {
        shown.extend(all.iter());
    }
    let items = shown
        .into_iter()
        .map(|l| {
            Ok((
                l.load_balancer_name.clone(),
                serde_json::to_value(l).map_err(internal)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(page(
        items,
        req.marker.as_deref(),
        req.page_size,
        "LoadBalancers",
    ))
}

pub(crate) fn internal(e: serde_json::Error) -> Error {
    Error(kumori_protocol::AwsError::internal(e.to_string()))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct OneRequest {
    load_balancer_arn: String,
    #[serde(default)]
    attributes: Vec<Attribute>,
    #[serde(default)]
    subnets: Vec<String>,
    #[serde(default)]
    subnet_mappings: Vec<SubnetMapping>,
    #[serde(default)]
    security_groups: Vec<String>,
    ip_address_type: Option<String>,
    minimum_load_balancer_capacity: Option<Capacity>,
    reset_capacity_reservation: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Capacity {
    capacity_units: Option<i64>,
}

pub(crate) async fn locked(ctx: &Ctx<'_>, tx: &mut Tx, arn: &str) -> Result<LoadBalancer> {
    resource::lock(ctx, tx, arn).await?.ok_or_else(lb_not_found)
}

pub async fn delete_load_balancer(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: OneRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    // Deleting one that is gone succeeds, as AWS's does.
    let Some(lb) = resource::lock::<LoadBalancer>(ctx, &mut tx, &req.load_balancer_arn).await?
    else {
        return Ok(json!({}));
    };
    if bool_attribute(
        lb.defaults(),
        &lb.kumori_attributes,
        "deletion_protection.enabled",
    ) {
        return Err(Error::new(
            "OperationNotPermitted",
            format!(
                "Load balancer '{}' cannot be deleted because deletion protection is enabled",
                lb.load_balancer_arn
            ),
        ));
    }
    let listeners = tx
        .children(ctx.scope(), &lb.load_balancer_arn, Some(LISTENER))
        .await?;
    for l in listeners {
        super::listeners::remove_listener(ctx, &mut tx, &l.id).await?;
    }
    for eni in lb.kumori_interfaces.values() {
        api::delete_managed_interface(ctx, &mut tx, eni).await?;
    }
    tx.delete(ctx.scope(), &lb.load_balancer_arn).await?;
    tx.commit().await?;
    Ok(json!({}))
}

pub async fn describe_load_balancer_attributes(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: OneRequest = input(raw)?;
    let mut tx = ctx.store.read().await?;
    let lb: LoadBalancer = resource::get(ctx, &mut tx, &req.load_balancer_arn)
        .await?
        .ok_or_else(lb_not_found)?;
    Ok(json!({ "Attributes": attributes_shown(lb.defaults(), &lb.kumori_attributes) }))
}

pub async fn modify_load_balancer_attributes(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: OneRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let mut lb = locked(ctx, &mut tx, &req.load_balancer_arn).await?;
    let defaults = lb.defaults();
    for a in &req.attributes {
        if a.key == "idle_timeout.timeout_seconds"
            && !a
                .value
                .parse::<u32>()
                .is_ok_and(|n| (1..=4000).contains(&n))
        {
            return Err(invalid_config(format!(
                "Idle timeout '{}' must be between 1 and 4000 seconds",
                a.value
            )));
        }
        if a.key.ends_with(".enabled") && a.value != "true" && a.value != "false" {
            return Err(invalid_config(format!(
                "'{}' must be 'true' or 'false', not '{}'",
                a.key, a.value
            )));
        }
    }
    apply_attributes(
        "Load balancer",
        defaults,
        &mut lb.kumori_attributes,
        &req.attributes,
    )?;
    resource::update(ctx, &mut tx, &lb).await?;
    tx.commit().await?;
    Ok(json!({ "Attributes": attributes_shown(defaults, &lb.kumori_attributes) }))
}

pub async fn set_subnets(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: OneRequest = input(raw)?;
    let mut subnets = req.subnets.clone();
    subnets.extend(req.subnet_mappings.iter().map(|m| m.subnet_id.clone()));
    let mut tx = ctx.store.write().await?;
    let mut lb = locked(ctx, &mut tx, &req.load_balancer_arn).await?;
    let (vpc, zones) = zones_of(ctx, &mut tx, &subnets, lb.is_application()).await?;
    if vpc != lb.vpc_id {
        return Err(Error::new(
            "InvalidSubnet",
            format!(
                "The subnets must belong to the load balancer's VPC '{}'",
                lb.vpc_id
            ),
        ));
    }
    lb.availability_zones = zones;
    if let Some(t) = req.ip_address_type {
        lb.ip_address_type = t;
    }
    sync_interfaces(ctx, &mut tx, &mut lb).await?;
    resource::update(ctx, &mut tx, &lb).await?;
    tx.commit().await?;
    Ok(json!({
        "AvailabilityZones": lb.availability_zones,
        "IpAddressType": lb.ip_address_type,
    }))
}

pub async fn set_security_groups(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: OneRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let mut lb = locked(ctx, &mut tx, &req.load_balancer_arn).await?;
    if !lb.is_application() && lb.security_groups.is_empty() {
        return Err(invalid_config(
            "You cannot set security groups for a Network Load Balancer that was created without any",
        ));
    }
    check_groups(ctx, &mut tx, &lb.vpc_id.clone(), &req.security_groups).await?;
    lb.security_groups = req.security_groups;
    dress_interfaces(ctx, &mut tx, &lb).await?;
    resource::update(ctx, &mut tx, &lb).await?;
    tx.commit().await?;
    Ok(json!({ "SecurityGroupIds": lb.security_groups }))
}

pub async fn set_ip_address_type(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: OneRequest = input(raw)?;
    let t = req.ip_address_type.ok_or_else(|| {
        Error::new(
            "MissingParameter",
            "The request must contain the parameter IpAddressType",
        )
    })?;
    let mut tx = ctx.store.write().await?;
    let mut lb = locked(ctx, &mut tx, &req.load_balancer_arn).await?;
    lb.ip_address_type = t;
    resource::update(ctx, &mut tx, &lb).await?;
    tx.commit().await?;
    Ok(json!({ "IpAddressType": lb.ip_address_type }))
}

/// A load balancer's reserved capacity, as AWS shows it: per zone, `provisioned` once
/// reserved (kumori's proxies need no reservation, so it is there at once).
fn capacity_shown(lb: &LoadBalancer) -> Value {
    let mut out = json!({
        "DecreaseRequestsRemaining": 3,
        "LastModifiedTime": lb.created_time,
        "CapacityReservationState": [],
    });
    if let Some(units) = lb.kumori_capacity_units {
        out["MinimumLoadBalancerCapacity"] = json!({ "CapacityUnits": units });
        let zones = lb.availability_zones.len().max(1) as f64;
        out["CapacityReservationState"] = Value::Array(
            lb.availability_zones
                .iter()
                .map(|z| {
                    json!({
                        "State": { "Code": "provisioned" },
                        "AvailabilityZone": z.zone_name,
                        "EffectiveCapacityUnits": units as f64 / zones,
                    })
                })
                .collect(),
        );
    }
    out
}

pub async fn describe_capacity_reservation(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: OneRequest = input(raw)?;
    let mut tx = ctx.store.read().await?;
    let lb: LoadBalancer = resource::get(ctx, &mut tx, &req.load_balancer_arn)
        .await?
        .ok_or_else(lb_not_found)?;
    Ok(capacity_shown(&lb))
}

pub async fn modify_capacity_reservation(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: OneRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let mut lb = locked(ctx, &mut tx, &req.load_balancer_arn).await?;
    if req.reset_capacity_reservation == Some(true) {
        lb.kumori_capacity_units = None;
    } else if let Some(units) = req
        .minimum_load_balancer_capacity
        .and_then(|c| c.capacity_units)
    {
        if units < 100 {
            return Err(validation(format!(
                "The minimum load balancer capacity must be at least 100 capacity units, not {units}"
            )));
        }
        lb.kumori_capacity_units = Some(units);
    } else {
        return Err(validation(
            "Either MinimumLoadBalancerCapacity or ResetCapacityReservation must be specified",
        ));
    }
    resource::update(ctx, &mut tx, &lb).await?;
    tx.commit().await?;
    Ok(capacity_shown(&lb))
}
