//! Instances: RunInstances (images, launch templates, several interfaces, volumes, placement,
//! instance profiles, CPU, hibernation and enclave options), the describes and attributes,
//! and the lifecycle (start, stop, reboot, terminate, monitoring).
//!
//! An instance is a record beside its primary network interface (device 0), which holds its
//! private address and security groups; an address launched public comes from the same pool as
//! Elastic IPs and is released on stop and on termination, as on AWS. Answers show the state a
//! call starts (`pending`, `stopping`, `shutting-down`); describes show where it ends
//! (`running`, `stopped`, `terminated`). A terminated instance stays listed for an hour, as on
//! EC2, and is then unknown.

use super::addresses::{Address, claim_public_ip, release_public_ip};
use super::common::{
    Filter, Filterable, Tag, TagSpecification, check_filters, dry_run, filter_names, invalid_value,
    json_values, matches, paginate, put_tags, tags_by_resource,
};
use super::eni::{self, NetworkInterface};
use super::instance_view::{InstanceOut, Parts, instance_out, state_code};
use super::keypairs::KeyPair;
use super::regions::zones;
use super::sg::SecurityGroup;
use super::subnet::Subnet;
use super::volumes::Volume;
use crate::resource::{self, Resource, new_id};
use crate::{Ctx, Error, Result, input};
use base64::Engine;
use kumori_protocol::{AwsError, Output};
use kumori_store::Tx;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

/// User data may be at most 16 KB, before base64.
const USER_DATA_LIMIT: usize = 16 * 1024;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Instance {
    pub instance_id: String,
    pub reservation_id: String,
    pub owner_id: String,
    pub image_id: String,
    pub instance_type: String,
    pub state: String,
    pub state_transition_reason: String,
    /// When it was terminated (seconds since the epoch): an hour later it is gone.
    #[serde(default)]
    pub terminated_at: Option<u64>,
    /// The ARN of the principal that launched it (none when the caller was unknown): who
    /// may have its metadata endpoint besides the account's root. Internal, never shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launched_by: Option<String>,
    pub launch_time: String,
    pub ami_launch_index: i64,
    pub key_name: Option<String>,
    pub subnet_id: String,
    pub vpc_id: String,
    pub availability_zone: String,
    pub private_ip_address: String,
    pub network_interface_id: String,
    /// The public address from the pool, while running; `public_ip_on_launch` says whether a
    /// start gives it a new one.
    pub public_ip_address: Option<String>,
    pub public_ip_on_launch: bool,
    pub architecture: String,
    pub root_device_name: String,
    pub virtualization_type: String,
    pub platform: Option<String>,
    pub platform_details: String,
    pub usage_operation: String,
    pub client_token: Option<String>,
    pub user_data: Option<String>,
    pub metadata: MetadataOptions,
    pub disable_api_termination: bool,
    pub disable_api_stop: bool,
    pub shutdown_behavior: String,
    pub monitoring: bool,
    pub ebs_optimized: bool,
    pub tenancy: String,
    pub core_count: i64,
    pub threads_per_core: i64,
    /// `standard` or `unlimited` for burstable types; none for the others.
    #[serde(default)]
    pub cpu_credits: Option<String>,
    /// A Windows instance's administrator password, encrypted for its key pair (base64) the
    /// first time it is asked for; the password itself is never kept.
    #[serde(default)]
    pub password_data: Option<String>,
    /// The IAM instance profile the instance runs with, whose role's credentials its
    /// metadata service hands out.
    #[serde(default)]
    pub iam_instance_profile: Option<IamProfileRef>,
    /// Whether the instance was launched able to hibernate.
    #[serde(default)]
    pub hibernation: bool,
    /// Whether Nitro Enclaves are enabled.
    #[serde(default)]
    pub enclave: bool,
    /// The placement group (by name) and partition the instance was launched into.
    #[serde(default)]
    pub placement_group: Option<String>,
    #[serde(default)]
    pub partition_number: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IamProfileRef {
    pub arn: String,
    pub id: String,
    /// The association (`iip-assoc-…`) that put the profile on the instance.
    #[serde(default)]
    pub association_id: String,
    #[serde(default)]
    pub associated_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetadataOptions {
    pub http_tokens: String,
    pub http_put_response_hop_limit: i64,
    pub http_endpoint: String,
    pub instance_metadata_tags: String,
}

/// How long a terminated instance stays listed (AWS: "about an hour").
pub const TERMINATED_VISIBLE_SECS: u64 = 3600;

impl Instance {
    fn terminated(&self) -> bool {
        self.state == "terminated"
    }
    /// Terminated long enough ago that EC2 no longer knows it: not listed, not found.
    fn gone(&self, now: u64) -> bool {
        gone_at(&self.state, self.terminated_at, now)
    }
}

fn gone_at(state: &str, terminated_at: Option<u64>, now: u64) -> bool {
    state == "terminated" && terminated_at.is_some_and(|t| now >= t + TERMINATED_VISIBLE_SECS)
}

impl Resource for Instance {
    const KIND: &'static str = "instance";
    fn id(&self) -> &str {
        &self.instance_id
    }
    /// A live instance lives in its subnet; a terminated one only lingers in listings.
    fn parent(&self) -> Option<&str> {
        (!self.terminated()).then_some(self.subnet_id.as_str())
    }
}

fn state_shown(state: &str) -> Value {
    json!({ "Code": state_code(state), "Name": state })
}

fn not_found(id: &str) -> Error {
    Error(AwsError::new(
        "InvalidInstanceID.NotFound",
        format!("The instance ID '{id}' does not exist"),
    ))
}

fn check_instance_id(id: &str) -> Result<()> {
    if !id.starts_with("i-") {
        return Err(Error(AwsError::new(
            "InvalidInstanceID.Malformed",
            format!("Invalid id: \"{id}\""),
        )));
    }
    Ok(())
}

/// An instance as EC2 shows it, with its interfaces (and what addresses point at the
/// primary), volumes and tags ([`instance_view`](super::instance_view)).
#[allow(clippy::too_many_arguments)]
fn shown(
    ctx: &Ctx<'_>,
    i: &Instance,
    eni: Option<&NetworkInterface>,
    others: &[&NetworkInterface],
    eip: Option<&Address>,
    volumes: &[&Volume],
    tags: &[Tag],
    state: &str,
) -> Value {
    let parts = Parts {
        region: ctx.region,
        account: ctx.account,
        eni,
        others: others.to_vec(),
        eip,
        volumes,
        tags,
        state,
    };
    serde_json::to_value(instance_out(i, &parts)).unwrap_or(Value::Null)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PlacementIn {
    availability_zone: Option<String>,
    tenancy: Option<String>,
    group_name: Option<String>,
    group_id: Option<String>,
    partition_number: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MonitoringIn {
    enabled: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MetadataIn {
    http_tokens: Option<String>,
    http_put_response_hop_limit: Option<i64>,
    http_endpoint: Option<String>,
    instance_metadata_tags: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NicIn {
    device_index: Option<i64>,
    subnet_id: Option<String>,
    associate_public_ip_address: Option<bool>,
    #[serde(default)]
    groups: Vec<String>,
    private_ip_address: Option<String>,
    network_interface_id: Option<String>,
    delete_on_termination: Option<bool>,
}

/// The interfaces a launch asks for, checked as EC2 checks them: device indexes unique and
/// one of them 0, no public address asked for with several, no instance-level subnet or
/// groups beside them, existing interfaces only for a single instance, and no more than
/// the type allows. Returns them with their device indexes, the primary first.
fn launch_interfaces<'r>(
    req: &'r RunInstancesRequest,
    max_interfaces: Option<u32>,
    instance_type: &str,
) -> Result<Vec<(i64, &'r NicIn)>> {
    let mut specs: Vec<(i64, &NicIn)> = req
        .network_interfaces
        .iter()
        .enumerate()
        .map(|(n, s)| (s.device_index.unwrap_or(n as i64), s))
        .collect();
    if specs.is_empty() {
        return Ok(specs);
    }
    specs.sort_by_key(|(d, _)| *d);
    if specs.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(invalid_value(
            "Each network interface requires a unique device index.",
        ));
    }
    if specs[0].0 != 0 {
        return Err(invalid_value(
            "When specifying network interfaces, you must include a device at index 0.",
        ));
    }
    let combination = |m: &str| Err(Error(AwsError::new("InvalidParameterCombination", m)));
    if specs.len() > 1
        && specs
            .iter()
            .any(|(_, s)| s.associate_public_ip_address == Some(true))
    {
        return combination(
            "The associatePublicIPAddress parameter cannot be specified when launching with multiple network interfaces.",
        );
    }
    if req.subnet_id.is_some()
        || !req.security_group_ids.is_empty()
        || !req.security_groups.is_empty()
    {
        return combination(
            "Network interfaces and an instance-level subnet ID or security groups may not be specified on the same request",
        );
    }
    if req.max_count > 1 && specs.iter().any(|(_, s)| s.network_interface_id.is_some()) {
        return combination(
            "An existing network interface can only be given when launching one instance.",
        );
    }
    if let Some(max) = max_interfaces
        && specs.len() as u32 > max
    {
        return Err(invalid_value(format!(
            "The instance type {instance_type} supports at most {max} network interfaces."
        )));
    }
    Ok(specs)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RunInstancesRequest {
    image_id: Option<String>,
    instance_type: Option<String>,
    min_count: i64,
    max_count: i64,
    key_name: Option<String>,
    subnet_id: Option<String>,
    #[serde(default)]
    security_group_ids: Vec<String>,
    #[serde(default)]
    security_groups: Vec<String>,
    private_ip_address: Option<String>,
    user_data: Option<String>,
    placement: Option<PlacementIn>,
    monitoring: Option<MonitoringIn>,
    metadata_options: Option<MetadataIn>,
    #[serde(default)]
    network_interfaces: Vec<NicIn>,
    #[serde(default)]
    tag_specifications: Vec<TagSpecification>,
    client_token: Option<String>,
    disable_api_termination: Option<bool>,
    disable_api_stop: Option<bool>,
    instance_initiated_shutdown_behavior: Option<String>,
    ebs_optimized: Option<bool>,
    credit_specification: Option<CreditIn>,
    #[serde(default)]
    block_device_mappings: Vec<BdmIn>,
    iam_instance_profile: Option<IamProfileIn>,
    cpu_options: Option<CpuOptionsIn>,
    hibernation_options: Option<HibernationIn>,
    enclave_options: Option<EnclaveIn>,
    dry_run: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IamProfileIn {
    arn: Option<String>,
    name: Option<String>,
}

/// The instance profile a launch or an association names, by ARN or name, as IAM holds it,
/// with a new association id.
pub async fn launch_profile(
    ctx: &Ctx<'_>,
    given: Option<&IamProfileIn>,
) -> Result<Option<IamProfileRef>> {
    let Some(given) = given else { return Ok(None) };
    let (arn, name) = (
        given.arn.as_deref().filter(|a| !a.is_empty()),
        given.name.as_deref().filter(|n| !n.is_empty()),
    );
    if arn.is_none() && name.is_none() {
        return Ok(None);
    }
    let mut tx = ctx.store.read().await?;
    match crate::iam::instance_profile(ctx, &mut tx, arn, name).await? {
        Some((p, _)) => Ok(Some(IamProfileRef {
            arn: p.arn,
            id: p.instance_profile_id,
            association_id: new_id("iip-assoc"),
            associated_at: kumori_protocol::time::now_iso(),
        })),
        None => Err(invalid_value(match arn {
            Some(a) => format!(
                "Value ({a}) for parameter iamInstanceProfile.arn is invalid. Invalid IAM Instance Profile ARN"
            ),
            None => format!(
                "Value ({}) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name",
                name.unwrap_or_default()
            ),
        })),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreditIn {
    cpu_credits: Option<String>,
}

/// A burstable type's CPU credit option: what was asked, else AWS's default (`standard` for
/// t2, `unlimited` for the later families); `None` for types that do not burst.
fn cpu_credits(
    type_info: &Value,
    instance_type: &str,
    asked: Option<&str>,
) -> Result<Option<String>> {
    if type_info["BurstablePerformanceSupported"] != true {
        return match asked {
            None | Some("") => Ok(None),
            Some(_) => Err(Error(AwsError::new(
                "InvalidParameterCombination",
                format!(
                    "The instance type {instance_type} does not support a credit specification."
                ),
            ))),
        };
    }
    match asked {
        None | Some("") => Ok(Some(
            if instance_type.starts_with("t2.") {
                "standard"
            } else {
                "unlimited"
            }
            .into(),
        )),
        Some(c @ ("standard" | "unlimited")) => Ok(Some(c.into())),
        Some(other) => Err(invalid_value(format!(
            "Value ({other}) for parameter cpuCredits is invalid: standard or unlimited."
        ))),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BdmIn {
    device_name: Option<String>,
    ebs: Option<EbsIn>,
    no_device: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EbsIn {
    volume_size: Option<i64>,
    volume_type: Option<String>,
    iops: Option<i64>,
    throughput: Option<i64>,
    delete_on_termination: Option<bool>,
    snapshot_id: Option<String>,
    encrypted: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CpuOptionsIn {
    core_count: Option<i64>,
    threads_per_core: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HibernationIn {
    configured: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EnclaveIn {
    enabled: Option<bool>,
}

/// Cores and threads per core, checked against the type's valid values; the type's
/// defaults where not given.
fn cpu_options(
    type_info: &Value,
    instance_type: &str,
    given: Option<&CpuOptionsIn>,
) -> Result<(i64, i64)> {
    let cpu = &type_info["VCpuInfo"];
    let valid = |member: &str| -> Vec<i64> {
        cpu[member]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default()
    };
    let cores = given
        .and_then(|c| c.core_count)
        .unwrap_or(cpu["DefaultCores"].as_i64().unwrap_or(1));
    let threads = given
        .and_then(|c| c.threads_per_core)
        .unwrap_or(cpu["DefaultThreadsPerCore"].as_i64().unwrap_or(1));
    let (valid_cores, valid_threads) = (valid("ValidCores"), valid("ValidThreadsPerCore"));
    if (!valid_cores.is_empty() && !valid_cores.contains(&cores))
        || (!valid_threads.is_empty() && !valid_threads.contains(&threads))
    {
        return Err(invalid_value(format!(
            "CPU options are not valid for instance type {instance_type}: the core count must be one of {valid_cores:?} and the threads per core one of {valid_threads:?}."
        )));
    }
    Ok((cores, threads))
}

/// A volume to make at launch: device, (type, size, IOPS, throughput), snapshot, and
/// whether it goes with the instance.
type LaunchVolume = (
    String,
    (String, i64, Option<i64>, Option<i64>),
    Option<String>,
    bool,
);

/// A volume to make at launch, with the smallest size its snapshot allows.
struct Planned {
    volume: LaunchVolume,
    min_size: i64,
}

/// The volumes a launch makes: the image's (root first), each resized, retyped or left out
/// by a request mapping for its device, then the request's further EBS mappings, empty or
/// from a snapshot (`snapshot_sizes` holds the size of each snapshot the request names).
fn launch_volumes(
    image: &Value,
    mappings: &[BdmIn],
    snapshot_sizes: &HashMap<String, i64>,
) -> Result<Vec<LaunchVolume>> {
    let root_device = image["RootDeviceName"]
        .as_str()
        .or(image["BlockDeviceMappings"][0]["DeviceName"].as_str())
        .unwrap_or("/dev/xvda")
        .to_string();
    let mut planned: Vec<Planned> = Vec::new();
    for m in image["BlockDeviceMappings"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let (Some(device), Some(ebs)) = (m["DeviceName"].as_str(), m.get("Ebs")) else {
            continue;
        };
        let size = ebs["VolumeSize"].as_i64().unwrap_or(8);
        planned.push(Planned {
            volume: (
                device.to_string(),
                (
                    ebs["VolumeType"].as_str().unwrap_or("gp2").to_string(),
                    size,
                    ebs["Iops"].as_i64().filter(|_| ebs["VolumeType"] != "gp2"),
                    ebs["Throughput"].as_i64(),
                ),
                ebs["SnapshotId"].as_str().map(str::to_string),
                ebs["DeleteOnTermination"].as_bool().unwrap_or(true),
            ),
            min_size: if ebs["SnapshotId"].is_string() {
                size
            } else {
                1
            },
        });
    }
    planned.sort_by_key(|p| p.volume.0 != root_device);
    for m in mappings {
        let device = m.device_name.clone().ok_or_else(|| {
            Error(AwsError::new(
                "MissingParameter",
                "The request must contain the parameter BlockDeviceMapping.DeviceName",
            ))
        })?;
        if m.no_device.is_some() {
            if device == root_device {
                return Err(Error(AwsError::new(
                    "InvalidBlockDeviceMapping",
                    format!("The root device {device} cannot be left out of a launch."),
                )));
            }
            planned.retain(|p| p.volume.0 != device);
            continue;
        }
        let Some(ebs) = &m.ebs else { continue };
        let at = match planned.iter().position(|p| p.volume.0 == device) {
            Some(at) if ebs.snapshot_id.is_none() => at,
            found => {
                // A new volume, or one the request replaces with another snapshot.
                if let Some(at) = found {
                    planned.remove(at);
                }
                let min_size = match &ebs.snapshot_id {
                    Some(id) => *snapshot_sizes.get(id).ok_or_else(|| {
                        Error(AwsError::new(
                            "InvalidSnapshot.NotFound",
                            format!("The snapshot '{id}' does not exist."),
                        ))
                    })?,
                    None => 1,
                };
                let size = match (ebs.volume_size, &ebs.snapshot_id) {
                    (Some(s), _) => s,
                    (None, Some(_)) => min_size,
                    (None, None) => {
                        return Err(Error(AwsError::new(
                            "InvalidBlockDeviceMapping",
                            format!("The mapping for {device} needs a volume size."),
                        )));
                    }
                };
                planned.push(Planned {
                    volume: (
                        device.clone(),
                        ("gp2".into(), size, None, None),
                        ebs.snapshot_id.clone(),
                        true,
                    ),
                    min_size,
                });
                planned.len() - 1
            }
        };
        let p = &mut planned[at];
        if let Some(size) = ebs.volume_size {
            if size < p.min_size {
                return Err(Error(AwsError::new(
                    "InvalidBlockDeviceMapping",
                    format!(
                        "Volume of size {size}GB is smaller than snapshot '{}', expect size >= {}GB",
                        p.volume.2.as_deref().unwrap_or_default(),
                        p.min_size
                    ),
                )));
            }
            p.volume.1.1 = size;
        }
        if let Some(t) = &ebs.volume_type {
            p.volume.1.0 = t.clone();
            p.volume.1.2 = None;
            p.volume.1.3 = None;
        }
        if ebs.iops.is_some() {
            p.volume.1.2 = ebs.iops;
        }
        if ebs.throughput.is_some() {
            p.volume.1.3 = ebs.throughput;
        }
        if let Some(d) = ebs.delete_on_termination {
            p.volume.3 = d;
        }
    }
    let out: Vec<LaunchVolume> = planned.into_iter().map(|p| p.volume).collect();
    for (_, (t, size, iops, tp), _, _) in &out {
        super::volumes::check_spec(t, *size, *iops, *tp)?;
    }
    Ok(out)
}

/// Tags for the instance, its interface and its volumes from `TagSpecification`s.
fn launch_tags(specs: &[TagSpecification]) -> Result<(Vec<Tag>, Vec<Tag>, Vec<Tag>)> {
    let mut instance = Vec::new();
    let mut interface = Vec::new();
    let mut volume = Vec::new();
    for spec in specs {
        let tags = spec.tags.clone();
        match spec.resource_type.as_deref() {
            Some("instance") => instance.extend(tags),
            Some("network-interface") => interface.extend(tags),
            Some("volume") => volume.extend(tags),
            other => {
                return Err(invalid_value(format!(
                    "'{}' is not a valid taggable resource type for this operation.",
                    other.unwrap_or_default()
                )));
            }
        }
    }
    Ok((instance, interface, volume))
}

fn metadata_options(m: Option<&MetadataIn>) -> Result<MetadataOptions> {
    let hop = m.and_then(|m| m.http_put_response_hop_limit).unwrap_or(1);
    if !(1..=64).contains(&hop) {
        return Err(invalid_value(format!(
            "The HttpPutResponseHopLimit {hop} is not valid: it must be between 1 and 64."
        )));
    }
    Ok(MetadataOptions {
        http_tokens: m
            .and_then(|m| m.http_tokens.clone())
            .unwrap_or_else(|| "optional".into()),
        http_put_response_hop_limit: hop,
        http_endpoint: m
            .and_then(|m| m.http_endpoint.clone())
            .unwrap_or_else(|| "enabled".into()),
        instance_metadata_tags: m
            .and_then(|m| m.instance_metadata_tags.clone())
            .unwrap_or_else(|| "disabled".into()),
    })
}

/// The subnet an instance launches into: the one named, or the default VPC's subnet in the
/// requested zone (or the first zone).
async fn launch_subnet(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    named: Option<&str>,
    zone: Option<&str>,
) -> Result<Subnet> {
    if let Some(id) = named {
        return resource::lock(ctx, tx, id)
            .await?
            .ok_or_else(|| super::subnet::not_found(id));
    }
    let vpc = super::default_vpc::find(ctx, tx).await?.ok_or_else(|| {
        Error(AwsError::new(
            "VPCIdNotSpecified",
            "No default VPC for this user. Specify a subnet.",
        ))
    })?;
    let mut subnets: Vec<Subnet> = resource::children(ctx, tx, &vpc.vpc_id).await?;
    subnets.retain(|s| s.default_for_az);
    subnets.sort_by(|a, b| a.availability_zone.cmp(&b.availability_zone));
    let found = match zone {
        Some(z) => subnets.into_iter().find(|s| s.availability_zone == z),
        None => subnets.into_iter().next(),
    }
    .ok_or_else(|| {
        Error(AwsError::new(
            "MissingInput",
            "No subnets found for the default VPC. Specify a subnet.",
        ))
    })?;
    resource::lock(ctx, tx, &found.subnet_id.clone())
        .await?
        .ok_or_else(|| super::subnet::not_found(&found.subnet_id))
}

/// Terraform sends empty strings for settings it leaves to AWS: they mean "not given".
fn given(s: &mut Option<String>) {
    if s.as_deref() == Some("") {
        *s = None;
    }
}

/// A RunInstances request with its launch template's data filled in: members the request
/// gives win, whole, except tags, which merge; with the template's id and version number.
async fn with_template(ctx: &Ctx<'_>, raw: &Value) -> Result<(Value, Option<(String, i64)>)> {
    let Some(spec) = raw.get("LaunchTemplate") else {
        return Ok((raw.clone(), None));
    };
    let mut tx = ctx.store.read().await?;
    let (mut data, id, version) =
        super::launch_templates::data_for_launch(ctx, &mut tx, spec).await?;
    drop(tx);
    if let Some(o) = data.as_object_mut() {
        // The one member the two shapes spell differently.
        if let Some(r) = o.remove("RamDiskId") {
            o.insert("RamdiskId".into(), r);
        }
        for (k, v) in raw.as_object().into_iter().flatten() {
            match k.as_str() {
                "LaunchTemplate" => {}
                // Tags merge: the request's win over the template's for the same key.
                "TagSpecifications" => {
                    let mut all = o
                        .remove(k)
                        .and_then(|t| t.as_array().cloned())
                        .unwrap_or_default();
                    all.extend(v.as_array().cloned().unwrap_or_default());
                    o.insert(k.clone(), Value::Array(all));
                }
                _ => {
                    o.insert(k.clone(), v.clone());
                }
            }
        }
    }
    Ok((data, Some((id, version))))
}

pub async fn run_instances(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let (raw, template) = with_template(ctx, raw).await?;
    let raw = &raw;
    let mut req: RunInstancesRequest = input(raw)?;
    given(&mut req.key_name);
    given(&mut req.subnet_id);
    given(&mut req.private_ip_address);
    given(&mut req.instance_initiated_shutdown_behavior);
    if let Some(p) = req.placement.as_mut() {
        given(&mut p.availability_zone);
        given(&mut p.tenancy);
        given(&mut p.group_name);
        given(&mut p.group_id);
    }
    if req.min_count < 1 || req.max_count < req.min_count {
        return Err(invalid_value(format!(
            "MinCount ({}) must be at least 1 and MaxCount ({}) at least MinCount.",
            req.min_count, req.max_count
        )));
    }
    let image_id = req.image_id.clone().ok_or_else(|| {
        Error(AwsError::new(
            "MissingParameter",
            "The request must contain the parameter ImageId",
        ))
    })?;
    let image = {
        let mut tx = ctx.store.read().await?;
        super::images::find(ctx, &mut tx, &image_id).await?
    };
    // EC2's default type is m1.small, a previous generation the catalogue carries for it.
    let instance_type = req
        .instance_type
        .clone()
        .unwrap_or_else(|| "m1.small".into());
    let type_info = kumori_catalog::instance_type(&instance_type).ok_or_else(|| {
        invalid_value(format!(
            "The instance type '{instance_type}' is not supported (kumori's catalogue: t2-t4g, m5-m7g, c5-c6i, r5-r6i)."
        ))
    })?;
    let nic_specs = launch_interfaces(
        &req,
        kumori_catalog::network_limits(&instance_type).map(|l| l.max_interfaces),
        &instance_type,
    )?;
    let nic = nic_specs.first().map(|(_, s)| *s);
    let arch = image["Architecture"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if !kumori_catalog::architectures(&instance_type).contains(&arch.as_str()) {
        return Err(invalid_value(format!(
            "The architecture '{}' of the specified instance type does not match the architecture '{arch}' of the specified AMI. Specify an instance type and an AMI that have matching architectures, and try again.",
            kumori_catalog::architectures(&instance_type).join(",")
        )));
    }
    if image["VirtualizationType"] == "paravirtual" {
        return Err(Error(AwsError::new(
            "InvalidParameterCombination",
            format!(
                "Virtualization type 'paravirtual' is not supported for instance type '{instance_type}'."
            ),
        )));
    }
    let user_data = match &req.user_data {
        None => None,
        Some(text) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|_| invalid_value("Invalid BASE64 encoding of user data."))?;
            if bytes.len() > USER_DATA_LIMIT {
                return Err(invalid_value(format!(
                    "User data is limited to {USER_DATA_LIMIT} bytes."
                )));
            }
            Some(text.trim().to_string())
        }
    };
    let metadata = metadata_options(req.metadata_options.as_ref())?;
    let profile = launch_profile(ctx, req.iam_instance_profile.as_ref()).await?;
    let (core_count, threads_per_core) =
        cpu_options(type_info, &instance_type, req.cpu_options.as_ref())?;
    let hibernation = req
        .hibernation_options
        .as_ref()
        .and_then(|h| h.configured)
        .unwrap_or(false);
    let enclave = req
        .enclave_options
        .as_ref()
        .and_then(|e| e.enabled)
        .unwrap_or(false);
    if hibernation && enclave {
        return Err(Error(AwsError::new(
            "InvalidParameterCombination",
            "An instance cannot be enabled for both hibernation and Nitro Enclaves.",
        )));
    }
    if enclave && type_info["NitroEnclavesSupport"] != "supported" {
        return Err(Error(AwsError::new(
            "UnsupportedOperation",
            format!("Nitro Enclaves are not supported by instance type {instance_type}."),
        )));
    }
    if hibernation {
        let memory_gib = type_info["MemoryInfo"]["SizeInMiB"].as_i64().unwrap_or(0) / 1024;
        if type_info["HibernationSupported"] != true || memory_gib > 150 {
            return Err(Error(AwsError::new(
                "UnsupportedHibernationConfiguration",
                format!("Hibernation is not supported by instance type {instance_type}."),
            )));
        }
        let root = image["RootDeviceName"].as_str().unwrap_or("/dev/xvda");
        let root_encrypted = req.block_device_mappings.iter().any(|m| {
            m.device_name.as_deref() == Some(root)
                && m.ebs.as_ref().and_then(|e| e.encrypted) == Some(true)
        });
        if !root_encrypted {
            return Err(Error(AwsError::new(
                "UnsupportedHibernationConfiguration",
                "For hibernation, the root device volume must be encrypted: give its block device mapping Encrypted=true.",
            )));
        }
    }
    let credits = cpu_credits(
        type_info,
        &instance_type,
        req.credit_specification
            .as_ref()
            .and_then(|c| c.cpu_credits.as_deref()),
    )?;
    let mut snapshot_sizes = HashMap::new();
    {
        let mut tx = ctx.store.read().await?;
        for m in &req.block_device_mappings {
            if let Some(id) = m.ebs.as_ref().and_then(|e| e.snapshot_id.as_ref()) {
                let size = super::snapshots::restorable_size(ctx, &mut tx, id).await?;
                snapshot_sizes.insert(id.clone(), size);
            }
        }
    }
    let volumes_to_make = launch_volumes(&image, &req.block_device_mappings, &snapshot_sizes)?;
    // Devices whose volumes are encrypted: by the request, or by the image's snapshot.
    let mut encrypted_devices: std::collections::HashSet<String> = req
        .block_device_mappings
        .iter()
        .filter(|m| m.ebs.as_ref().and_then(|e| e.encrypted) == Some(true))
        .filter_map(|m| m.device_name.clone())
        .collect();
    for m in image["BlockDeviceMappings"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if m["Ebs"]["Encrypted"] == true
            && let Some(d) = m["DeviceName"].as_str()
        {
            encrypted_devices.insert(d.to_string());
        }
    }
    let fixed_ip = req
        .private_ip_address
        .clone()
        .or_else(|| nic.and_then(|n| n.private_ip_address.clone()));
    if fixed_ip.is_some() && req.max_count > 1 {
        return Err(Error(AwsError::new(
            "InvalidParameterCombination",
            "A private IP address can only be given when launching one instance.",
        )));
    }
    let fixed_ip: Option<Ipv4Addr> = fixed_ip
        .map(|t| {
            t.parse().map_err(|_| {
                invalid_value(format!(
                    "Value ({t}) for parameter privateIpAddress is invalid."
                ))
            })
        })
        .transpose()?;
    let (mut instance_tags, interface_tags, volume_tags) = launch_tags(&req.tag_specifications)?;
    // AWS marks an instance launched from a template with the template and version.
    if let Some((id, version)) = &template {
        instance_tags.push(Tag {
            key: "aws:ec2launchtemplate:id".into(),
            value: id.clone(),
        });
        instance_tags.push(Tag {
            key: "aws:ec2launchtemplate:version".into(),
            value: version.to_string(),
        });
    }
    let mut tx = ctx.store.write().await?;
    // Idempotency: the same client token answers with the same reservation.
    if let Some(token) = &req.client_token {
        let all: Vec<Instance> = resource::list(ctx, &mut tx).await?;
        let mine: Vec<&Instance> = all
            .iter()
            .filter(|i| i.client_token.as_deref() == Some(token))
            .collect();
        if let Some(first) = mine.first() {
            let reservation_id = first.reservation_id.clone();
            drop(tx);
            return describe_reservation(ctx, &reservation_id).await;
        }
    }
    if let Some(key) = &req.key_name {
        let keys: Vec<KeyPair> = resource::list(ctx, &mut tx).await?;
        if !keys.iter().any(|k| &k.key_name == key) {
            return Err(Error(AwsError::new(
                "InvalidKeyPair.NotFound",
                format!("The key pair '{key}' does not exist"),
            )));
        }
    }
    let zone = req
        .placement
        .as_ref()
        .and_then(|p| p.availability_zone.clone());
    if let Some(z) = &zone
        && !zones(ctx.region).iter().any(|x| &x.name == z)
    {
        return Err(invalid_value(format!("Invalid availability zone: [{z}]")));
    }
    // An existing primary interface brings its subnet and groups.
    let existing_primary: Option<NetworkInterface> = match nic
        .and_then(|n| n.network_interface_id.as_ref())
    {
        Some(id) => Some(
            resource::get::<NetworkInterface>(ctx, &mut tx, id)
                .await?
                .ok_or_else(|| <NetworkInterface as super::generic::Ec2Resource>::not_found(id))?,
        ),
        None => None,
    };
    let subnet_named = req
        .subnet_id
        .clone()
        .or_else(|| nic.and_then(|n| n.subnet_id.clone()))
        .or_else(|| existing_primary.as_ref().map(|e| e.subnet_id.clone()));
    let mut subnet = launch_subnet(ctx, &mut tx, subnet_named.as_deref(), zone.as_deref()).await?;
    if let Some(z) = &zone
        && &subnet.availability_zone != z
    {
        return Err(invalid_value(format!(
            "The subnet {} is in {}, not in the requested zone {z}.",
            subnet.subnet_id, subnet.availability_zone
        )));
    }
    // Groups by id, or by name (names only name groups of the default VPC, or of the
    // subnet's VPC).
    let mut group_ids = req.security_group_ids.clone();
    group_ids.extend(nic.map(|n| n.groups.clone()).unwrap_or_default());
    if !req.security_groups.is_empty() {
        let groups: Vec<SecurityGroup> = resource::children(ctx, &mut tx, &subnet.vpc_id).await?;
        for name in &req.security_groups {
            let g = groups
                .iter()
                .find(|g| &g.group_name == name)
                .ok_or_else(|| {
                    Error(AwsError::new(
                        "InvalidGroup.NotFound",
                        format!(
                            "The security group '{name}' does not exist in VPC '{}'",
                            subnet.vpc_id
                        ),
                    ))
                })?;
            group_ids.push(g.group_id.clone());
        }
    }
    let groups = eni::groups_or_default(ctx, &mut tx, &subnet.vpc_id, &group_ids).await?;
    let placement = req.placement.as_ref();
    let group = super::placement_groups::for_launch(
        ctx,
        &mut tx,
        placement.and_then(|p| p.group_name.as_deref()),
        placement.and_then(|p| p.group_id.as_deref()),
        placement.and_then(|p| p.partition_number),
        &subnet.availability_zone,
        req.max_count,
    )
    .await?;
    // A public address goes only to a new primary interface of a launch with one interface.
    let public = existing_primary.is_none()
        && nic_specs.len() <= 1
        && nic
            .and_then(|n| n.associate_public_ip_address)
            .unwrap_or(subnet.map_public_ip_on_launch);
    // Further interfaces: their subnets (the primary's by default, in its zone) and groups.
    let mut secondaries = Vec::new();
    for (device, spec) in nic_specs.iter().skip(1) {
        if spec.network_interface_id.is_some() {
            secondaries.push((*device, *spec, None, Vec::new()));
            continue;
        }
        let subnet_id = spec
            .subnet_id
            .clone()
            .unwrap_or_else(|| subnet.subnet_id.clone());
        let other: Subnet = resource::get(ctx, &mut tx, &subnet_id)
            .await?
            .ok_or_else(|| super::subnet::not_found(&subnet_id))?;
        if other.availability_zone != subnet.availability_zone {
            return Err(invalid_value(format!(
                "The subnet {subnet_id} of the interface at device index {device} is not in the instance's zone {}.",
                subnet.availability_zone
            )));
        }
        let groups = eni::groups_or_default(ctx, &mut tx, &other.vpc_id, &spec.groups).await?;
        secondaries.push((*device, *spec, Some(subnet_id), groups));
    }
    dry_run(req.dry_run)?;
    let reservation_id = new_id("r");
    let launch_time = kumori_protocol::time::now_iso();
    #[allow(clippy::type_complexity)]
    let mut launched: Vec<(
        Instance,
        NetworkInterface,
        Vec<NetworkInterface>,
        Vec<Volume>,
    )> = Vec::new();
    for index in 0..req.max_count {
        let instance_id = new_id("i");
        let delete_primary = nic.and_then(|n| n.delete_on_termination);
        let made = match &existing_primary {
            Some(e) => {
                eni::attach_at_launch(
                    ctx,
                    &mut tx,
                    &e.network_interface_id,
                    &instance_id,
                    0,
                    delete_primary.unwrap_or(false),
                )
                .await
            }
            None => {
                eni::create_attached(
                    ctx,
                    &mut tx,
                    &mut subnet,
                    fixed_ip,
                    groups.clone(),
                    &instance_id,
                    0,
                    delete_primary.unwrap_or(true),
                )
                .await
            }
        };
        let mut nic = match made {
            Ok(n) => n,
            // Launch as many as fit, as long as that is at least MinCount.
            Err(e) if index >= req.min_count && e.0.code == "InsufficientFreeAddressesInSubnet" => {
                break;
            }
            Err(e) => return Err(e),
        };
        let public_ip = match public {
            true => Some(claim_public_ip(&mut tx).await?),
            false => None,
        };
        nic.auto_public_ip = public_ip.clone();
        resource::update(ctx, &mut tx, &nic).await?;
        put_tags(
            ctx,
            &mut tx,
            &nic.network_interface_id,
            NetworkInterface::KIND,
            &interface_tags,
        )
        .await?;
        let instance = Instance {
            instance_id,
            reservation_id: reservation_id.clone(),
            owner_id: ctx.account.to_string(),
            image_id: image_id.clone(),
            instance_type: instance_type.clone(),
            state: "running".into(),
            state_transition_reason: String::new(),
            terminated_at: None,
            launched_by: ctx.caller.map(|c| c.arn.clone()),
            launch_time: launch_time.clone(),
            ami_launch_index: index,
            key_name: req.key_name.clone(),
            subnet_id: subnet.subnet_id.clone(),
            vpc_id: subnet.vpc_id.clone(),
            availability_zone: subnet.availability_zone.clone(),
            private_ip_address: nic.private_ip_address.clone(),
            network_interface_id: nic.network_interface_id.clone(),
            public_ip_address: public_ip,
            public_ip_on_launch: public,
            architecture: arch.clone(),
            root_device_name: image["RootDeviceName"]
                .as_str()
                .unwrap_or("/dev/xvda")
                .to_string(),
            virtualization_type: "hvm".into(),
            platform: image["Platform"].as_str().map(str::to_string),
            platform_details: image["PlatformDetails"]
                .as_str()
                .unwrap_or("Linux/UNIX")
                .to_string(),
            usage_operation: image["UsageOperation"]
                .as_str()
                .unwrap_or("RunInstances")
                .to_string(),
            client_token: req.client_token.clone(),
            user_data: user_data.clone(),
            metadata: metadata.clone(),
            disable_api_termination: req.disable_api_termination.unwrap_or(false),
            disable_api_stop: req.disable_api_stop.unwrap_or(false),
            shutdown_behavior: req
                .instance_initiated_shutdown_behavior
                .clone()
                .unwrap_or_else(|| "stop".into()),
            monitoring: req
                .monitoring
                .as_ref()
                .and_then(|m| m.enabled)
                .unwrap_or(false),
            ebs_optimized: req.ebs_optimized.unwrap_or(false),
            tenancy: req
                .placement
                .as_ref()
                .and_then(|p| p.tenancy.clone())
                .unwrap_or_else(|| "default".into()),
            core_count,
            threads_per_core,
            cpu_credits: credits.clone(),
            password_data: None,
            iam_instance_profile: profile.clone(),
            hibernation,
            enclave,
            placement_group: group.as_ref().map(|g| g.group_name.clone()),
            partition_number: group.as_ref().and_then(|g| {
                (g.strategy == "partition").then(|| {
                    placement
                        .and_then(|p| p.partition_number)
                        // Unnamed partitions are dealt out in turn.
                        .unwrap_or(1 + index % g.partition_count.unwrap_or(1))
                })
            }),
        };
        let mut extra = Vec::new();
        for (device, spec, subnet_id, groups) in &secondaries {
            let delete = spec.delete_on_termination;
            let e = match (&spec.network_interface_id, subnet_id) {
                (Some(id), _) => {
                    eni::attach_at_launch(
                        ctx,
                        &mut tx,
                        id,
                        &instance.instance_id,
                        *device,
                        delete.unwrap_or(false),
                    )
                    .await?
                }
                (None, Some(sid)) if *sid == subnet.subnet_id => {
                    eni::create_attached(
                        ctx,
                        &mut tx,
                        &mut subnet,
                        None,
                        groups.clone(),
                        &instance.instance_id,
                        *device,
                        delete.unwrap_or(true),
                    )
                    .await?
                }
                (None, sid) => {
                    let sid = sid.clone().unwrap_or_default();
                    let mut other: Subnet = resource::lock(ctx, &mut tx, &sid)
                        .await?
                        .ok_or_else(|| super::subnet::not_found(&sid))?;
                    eni::create_attached(
                        ctx,
                        &mut tx,
                        &mut other,
                        None,
                        groups.clone(),
                        &instance.instance_id,
                        *device,
                        delete.unwrap_or(true),
                    )
                    .await?
                }
            };
            put_tags(
                ctx,
                &mut tx,
                &e.network_interface_id,
                NetworkInterface::KIND,
                &interface_tags,
            )
            .await?;
            extra.push(e);
        }
        let mut volumes = Vec::new();
        for (device, (t, size, iops, tp), snapshot, delete) in &volumes_to_make {
            let mut v = super::volumes::create_attached(
                ctx,
                &mut tx,
                &instance.availability_zone,
                &instance.instance_id,
                device,
                (t, *size, *iops, *tp),
                snapshot.clone(),
                *delete,
                &launch_time,
            )
            .await?;
            if encrypted_devices.contains(device) {
                v.encrypted = true;
                resource::update(ctx, &mut tx, &v).await?;
            }
            put_tags(ctx, &mut tx, &v.volume_id, Volume::KIND, &volume_tags).await?;
            volumes.push(v);
        }
        resource::insert(ctx, &mut tx, &instance).await?;
        put_tags(
            ctx,
            &mut tx,
            &instance.instance_id,
            Instance::KIND,
            &instance_tags,
        )
        .await?;
        launched.push((instance, nic, extra, volumes));
    }
    tx.commit().await?;
    let instances: Vec<Value> = launched
        .iter()
        .map(|(i, n, extra, v)| {
            let v: Vec<&Volume> = v.iter().collect();
            let extra: Vec<&NetworkInterface> = extra.iter().collect();
            shown(ctx, i, Some(n), &extra, None, &v, &instance_tags, "pending")
        })
        .collect();
    Ok(json!({
        "ReservationId": reservation_id,
        "OwnerId": ctx.account,
        "Groups": [],
        "Instances": instances,
    }))
}

/// RunInstances' answer for a reservation that already exists (a repeated client token).
async fn describe_reservation(ctx: &Ctx<'_>, reservation_id: &str) -> Result<Value> {
    let by_reservation = Filter {
        name: "reservation-id".into(),
        values: vec![reservation_id.to_string()],
    };
    let mut out = describe_value(ctx, &[], &[by_reservation]).await?;
    let reservations = out["Reservations"].take();
    Ok(reservations.get(0).cloned().unwrap_or(Value::Null))
}

/// An instance with what the filters look at: its own record for the common filters, and
/// for the rest its shown form, made only when such a filter is used.
struct Row<'a> {
    i: &'a Instance,
    eni: Option<&'a NetworkInterface>,
    public_ip: Option<String>,
    shown: Option<Value>,
}

/// Every filter EC2 documents for DescribeInstances, and where in the shown instance its
/// values live (lists flattened). Filters on things kumori's instances never have (Dedicated
/// Hosts, Spot, Outposts, Capacity Reservations, IPv6) are accepted and match nothing.
const FILTER_PATHS: &[(&str, &[&str])] = &[
    ("affinity", &["Placement", "Affinity"]),
    ("architecture", &["Architecture"]),
    ("availability-zone", &["Placement", "AvailabilityZone"]),
    ("availability-zone-id", &[]),
    (
        "block-device-mapping.attach-time",
        &["BlockDeviceMappings", "Ebs", "AttachTime"],
    ),
    (
        "block-device-mapping.delete-on-termination",
        &["BlockDeviceMappings", "Ebs", "DeleteOnTermination"],
    ),
    (
        "block-device-mapping.device-name",
        &["BlockDeviceMappings", "DeviceName"],
    ),
    (
        "block-device-mapping.status",
        &["BlockDeviceMappings", "Ebs", "Status"],
    ),
    (
        "block-device-mapping.volume-id",
        &["BlockDeviceMappings", "Ebs", "VolumeId"],
    ),
    ("boot-mode", &["BootMode"]),
    ("capacity-reservation-id", &["CapacityReservationId"]),
    (
        "capacity-reservation-specification.capacity-reservation-preference",
        &[
            "CapacityReservationSpecification",
            "CapacityReservationPreference",
        ],
    ),
    (
        "capacity-reservation-specification.capacity-reservation-target.capacity-reservation-id",
        &[
            "CapacityReservationSpecification",
            "CapacityReservationTarget",
            "CapacityReservationId",
        ],
    ),
    (
        "capacity-reservation-specification.capacity-reservation-target.capacity-reservation-resource-group-arn",
        &[
            "CapacityReservationSpecification",
            "CapacityReservationTarget",
            "CapacityReservationResourceGroupArn",
        ],
    ),
    ("client-token", &["ClientToken"]),
    ("current-instance-boot-mode", &["CurrentInstanceBootMode"]),
    ("dns-name", &["PublicDnsName"]),
    ("ebs-optimized", &["EbsOptimized"]),
    ("ena-support", &["EnaSupport"]),
    ("enclave-options.enabled", &["EnclaveOptions", "Enabled"]),
    (
        "hibernation-options.configured",
        &["HibernationOptions", "Configured"],
    ),
    ("host-id", &["Placement", "HostId"]),
    ("hypervisor", &["Hypervisor"]),
    ("iam-instance-profile.arn", &["IamInstanceProfile", "Arn"]),
    ("iam-instance-profile.id", &["IamInstanceProfile", "Id"]),
    ("image-id", &["ImageId"]),
    ("instance-id", &["InstanceId"]),
    ("instance-initiated-shutdown-behavior", &[]),
    ("instance-lifecycle", &["InstanceLifecycle"]),
    ("instance-state-code", &["State", "Code"]),
    ("instance-state-name", &["State", "Name"]),
    ("instance-type", &["InstanceType"]),
    ("instance.group-id", &["SecurityGroups", "GroupId"]),
    ("instance.group-name", &["SecurityGroups", "GroupName"]),
    ("group-id", &["SecurityGroups", "GroupId"]),
    ("group-name", &["SecurityGroups", "GroupName"]),
    ("ip-address", &["PublicIpAddress"]),
    (
        "ipv6-address",
        &["NetworkInterfaces", "Ipv6Addresses", "Ipv6Address"],
    ),
    ("kernel-id", &["KernelId"]),
    ("key-name", &["KeyName"]),
    ("launch-index", &["AmiLaunchIndex"]),
    ("launch-time", &["LaunchTime"]),
    (
        "maintenance-options.auto-recovery",
        &["MaintenanceOptions", "AutoRecovery"],
    ),
    (
        "metadata-options.http-endpoint",
        &["MetadataOptions", "HttpEndpoint"],
    ),
    ("metadata-options.http-protocol-ipv4", &[]),
    (
        "metadata-options.http-protocol-ipv6",
        &["MetadataOptions", "HttpProtocolIpv6"],
    ),
    (
        "metadata-options.http-put-response-hop-limit",
        &["MetadataOptions", "HttpPutResponseHopLimit"],
    ),
    (
        "metadata-options.http-tokens",
        &["MetadataOptions", "HttpTokens"],
    ),
    (
        "metadata-options.instance-metadata-tags",
        &["MetadataOptions", "InstanceMetadataTags"],
    ),
    ("metadata-options.state", &["MetadataOptions", "State"]),
    ("monitoring-state", &["Monitoring", "State"]),
    (
        "network-interface.addresses.association.ip-owner-id",
        &[
            "NetworkInterfaces",
            "PrivateIpAddresses",
            "Association",
            "IpOwnerId",
        ],
    ),
    (
        "network-interface.addresses.association.public-dns-name",
        &[
            "NetworkInterfaces",
            "PrivateIpAddresses",
            "Association",
            "PublicDnsName",
        ],
    ),
    (
        "network-interface.addresses.association.public-ip",
        &[
            "NetworkInterfaces",
            "PrivateIpAddresses",
            "Association",
            "PublicIp",
        ],
    ),
    (
        "network-interface.addresses.primary",
        &["NetworkInterfaces", "PrivateIpAddresses", "Primary"],
    ),
    (
        "network-interface.addresses.private-dns-name",
        &["NetworkInterfaces", "PrivateIpAddresses", "PrivateDnsName"],
    ),
    (
        "network-interface.addresses.private-ip-address",
        &[
            "NetworkInterfaces",
            "PrivateIpAddresses",
            "PrivateIpAddress",
        ],
    ),
    (
        "network-interface.association.ip-owner-id",
        &["NetworkInterfaces", "Association", "IpOwnerId"],
    ),
    (
        "network-interface.association.public-dns-name",
        &["NetworkInterfaces", "Association", "PublicDnsName"],
    ),
    (
        "network-interface.association.public-ip",
        &["NetworkInterfaces", "Association", "PublicIp"],
    ),
    (
        "network-interface.attachment.attach-time",
        &["NetworkInterfaces", "Attachment", "AttachTime"],
    ),
    (
        "network-interface.attachment.attachment-id",
        &["NetworkInterfaces", "Attachment", "AttachmentId"],
    ),
    (
        "network-interface.attachment.delete-on-termination",
        &["NetworkInterfaces", "Attachment", "DeleteOnTermination"],
    ),
    (
        "network-interface.attachment.device-index",
        &["NetworkInterfaces", "Attachment", "DeviceIndex"],
    ),
    ("network-interface.attachment.instance-id", &["InstanceId"]),
    (
        "network-interface.attachment.instance-owner-id",
        &["NetworkInterfaces", "OwnerId"],
    ),
    (
        "network-interface.attachment.network-card-index",
        &["NetworkInterfaces", "Attachment", "NetworkCardIndex"],
    ),
    (
        "network-interface.attachment.status",
        &["NetworkInterfaces", "Attachment", "Status"],
    ),
    (
        "network-interface.availability-zone",
        &["Placement", "AvailabilityZone"],
    ),
    (
        "network-interface.description",
        &["NetworkInterfaces", "Description"],
    ),
    (
        "network-interface.group-id",
        &["NetworkInterfaces", "Groups", "GroupId"],
    ),
    (
        "network-interface.group-name",
        &["NetworkInterfaces", "Groups", "GroupName"],
    ),
    (
        "network-interface.ipv6-addresses.ipv6-address",
        &["NetworkInterfaces", "Ipv6Addresses", "Ipv6Address"],
    ),
    (
        "network-interface.mac-address",
        &["NetworkInterfaces", "MacAddress"],
    ),
    (
        "network-interface.network-interface-id",
        &["NetworkInterfaces", "NetworkInterfaceId"],
    ),
    (
        "network-interface.owner-id",
        &["NetworkInterfaces", "OwnerId"],
    ),
    (
        "network-interface.private-dns-name",
        &["NetworkInterfaces", "PrivateDnsName"],
    ),
    (
        "network-interface.private-ip-address",
        &["NetworkInterfaces", "PrivateIpAddress"],
    ),
    (
        "network-interface.public-dns-name",
        &["NetworkInterfaces", "Association", "PublicDnsName"],
    ),
    ("network-interface.requester-managed", &[]),
    (
        "network-interface.source-dest-check",
        &["NetworkInterfaces", "SourceDestCheck"],
    ),
    ("network-interface.status", &["NetworkInterfaces", "Status"]),
    (
        "network-interface.subnet-id",
        &["NetworkInterfaces", "SubnetId"],
    ),
    ("network-interface.vpc-id", &["NetworkInterfaces", "VpcId"]),
    ("outpost-arn", &["OutpostArn"]),
    ("owner-id", &[]),
    ("placement-group-name", &["Placement", "GroupName"]),
    (
        "placement-partition-number",
        &["Placement", "PartitionNumber"],
    ),
    ("platform", &["Platform"]),
    ("platform-details", &["PlatformDetails"]),
    ("private-dns-name", &["PrivateDnsName"]),
    (
        "private-dns-name-options.enable-resource-name-dns-a-record",
        &["PrivateDnsNameOptions", "EnableResourceNameDnsARecord"],
    ),
    (
        "private-dns-name-options.enable-resource-name-dns-aaaa-record",
        &["PrivateDnsNameOptions", "EnableResourceNameDnsAAAARecord"],
    ),
    (
        "private-dns-name-options.hostname-type",
        &["PrivateDnsNameOptions", "HostnameType"],
    ),
    ("private-ip-address", &["PrivateIpAddress"]),
    ("product-code", &["ProductCodes", "ProductCodeId"]),
    ("product-code.type", &["ProductCodes", "ProductCodeType"]),
    ("ramdisk-id", &["RamdiskId"]),
    ("reason", &["StateTransitionReason"]),
    ("requester-id", &[]),
    ("reservation-id", &[]),
    ("root-device-name", &["RootDeviceName"]),
    ("root-device-type", &["RootDeviceType"]),
    ("source-dest-check", &["SourceDestCheck"]),
    ("spot-instance-request-id", &["SpotInstanceRequestId"]),
    ("state-reason-code", &["StateReason", "Code"]),
    ("state-reason-message", &["StateReason", "Message"]),
    ("subnet-id", &["SubnetId"]),
    ("tenancy", &["Placement", "Tenancy"]),
    ("tpm-support", &["TpmSupport"]),
    ("usage-operation", &["UsageOperation"]),
    ("usage-operation-update-time", &["UsageOperationUpdateTime"]),
    ("virtualization-type", &["VirtualizationType"]),
    ("vpc-id", &["VpcId"]),
];

const FILTER_NAMES: &[&str] = filter_names!(FILTER_PATHS);

/// The filters answered from the instance's own record, without showing it.
const FAST_FILTERS: &[&str] = &[
    "architecture",
    "availability-zone",
    "image-id",
    "instance-id",
    "instance-state-code",
    "instance-state-name",
    "instance-type",
    "instance.group-id",
    "instance.group-name",
    "group-id",
    "group-name",
    "ip-address",
    "key-name",
    "launch-index",
    "launch-time",
    "metadata-options.http-tokens",
    "metadata-options.http-endpoint",
    "metadata-options.http-put-response-hop-limit",
    "owner-id",
    "platform",
    "private-ip-address",
    "reservation-id",
    "requester-id",
    "subnet-id",
    "tenancy",
    "vpc-id",
    "availability-zone-id",
    "instance-initiated-shutdown-behavior",
    "metadata-options.http-protocol-ipv4",
    "network-interface.requester-managed",
];

impl Filterable for Row<'_> {
    const FILTERS: &'static [&'static str] = FILTER_NAMES;
    fn field(&self, name: &str) -> Vec<String> {
        let i = self.i;
        let groups = || self.eni.map(|e| e.groups.clone()).unwrap_or_default();
        match name {
            "architecture" => vec![i.architecture.clone()],
            "availability-zone" => vec![i.availability_zone.clone()],
            "availability-zone-id" => zones_id(&i.availability_zone).into_iter().collect(),
            "image-id" => vec![i.image_id.clone()],
            "instance-id" => vec![i.instance_id.clone()],
            "instance-initiated-shutdown-behavior" => vec![i.shutdown_behavior.clone()],
            "instance-state-code" => vec![state_code(&i.state).to_string()],
            "instance-state-name" => vec![i.state.clone()],
            "instance-type" => vec![i.instance_type.clone()],
            "instance.group-id" | "group-id" => groups().into_iter().map(|g| g.group_id).collect(),
            "instance.group-name" | "group-name" => {
                groups().into_iter().map(|g| g.group_name).collect()
            }
            "ip-address" => self.public_ip.clone().into_iter().collect(),
            "key-name" => i.key_name.clone().into_iter().collect(),
            "launch-index" => vec![i.ami_launch_index.to_string()],
            "launch-time" => vec![i.launch_time.clone()],
            "metadata-options.http-tokens" => vec![i.metadata.http_tokens.clone()],
            "metadata-options.http-endpoint" => vec![i.metadata.http_endpoint.clone()],
            "metadata-options.http-protocol-ipv4" => vec!["enabled".into()],
            "metadata-options.http-put-response-hop-limit" => {
                vec![i.metadata.http_put_response_hop_limit.to_string()]
            }
            "network-interface.requester-managed" => self
                .eni
                .map(|e| e.requester_managed.to_string())
                .into_iter()
                .collect(),
            "owner-id" => vec![i.owner_id.clone()],
            "platform" => i.platform.clone().into_iter().collect(),
            "private-ip-address" => vec![i.private_ip_address.clone()],
            "requester-id" => vec![],
            "reservation-id" => vec![i.reservation_id.clone()],
            "subnet-id" => vec![i.subnet_id.clone()],
            "tenancy" => vec![i.tenancy.clone()],
            "vpc-id" => vec![i.vpc_id.clone()],
            other => {
                let mut out = Vec::new();
                if let (Some(shown), Some((_, path))) =
                    (&self.shown, FILTER_PATHS.iter().find(|(n, _)| *n == other))
                {
                    json_values(shown, path, &mut out);
                }
                out
            }
        }
    }
}

/// The zone id of a zone name (`use1-az6` for `us-east-1a`).
fn zones_id(zone: &str) -> Option<String> {
    let region = zone.trim_end_matches(|c: char| c.is_ascii_lowercase());
    zones(region)
        .into_iter()
        .find(|z| z.name == zone)
        .map(|z| z.id)
}

/// One page of DescribeInstances, written straight to the wire from the snapshots it was
/// selected from.
pub struct InstancesPage {
    instances: Arc<resource::Docs<Instance>>,
    enis: Arc<resource::Docs<NetworkInterface>>,
    addresses: Arc<resource::Docs<Address>>,
    volumes: Arc<resource::Docs<Volume>>,
    tags: HashMap<String, Vec<Tag>>,
    /// Each reservation on the page with its instances' ids, in page order.
    reservations: Vec<(String, Vec<String>)>,
    /// Interface id to the allocation id of the Elastic IP on it.
    eip_by_eni: HashMap<String, String>,
    volumes_by_instance: HashMap<String, Vec<String>>,
    /// Interfaces other than the primary, by instance, in device order.
    others_by_instance: HashMap<String, Vec<String>>,
    region: String,
    account: String,
    next_token: Option<String>,
}

impl Serialize for InstancesPage {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = s.serialize_struct("DescribeInstancesResult", 2)?;
        if let Some(t) = &self.next_token {
            out.serialize_field("NextToken", t)?;
        }
        out.serialize_field("Reservations", &ReservationsShown(self))?;
        out.end()
    }
}

struct ReservationsShown<'p>(&'p InstancesPage);

impl Serialize for ReservationsShown<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::{SerializeSeq, SerializeStruct};
        struct Reservation<'p>(&'p InstancesPage, &'p str, &'p [String]);
        impl Serialize for Reservation<'_> {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                let mut r = s.serialize_struct("Reservation", 4)?;
                r.serialize_field("ReservationId", self.1)?;
                r.serialize_field("OwnerId", &self.0.account)?;
                r.serialize_field("Groups", &[] as &[()])?;
                r.serialize_field("Instances", &InstancesShown(self.0, self.2))?;
                r.end()
            }
        }
        let mut seq = s.serialize_seq(Some(self.0.reservations.len()))?;
        for (id, instances) in &self.0.reservations {
            seq.serialize_element(&Reservation(self.0, id, instances))?;
        }
        seq.end()
    }
}

struct InstancesShown<'p>(&'p InstancesPage, &'p [String]);

impl Serialize for InstancesShown<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let page = self.0;
        let mut seq = s.serialize_seq(Some(self.1.len()))?;
        for id in self.1 {
            let Some(i) = page.instances.0.get(id) else {
                continue;
            };
            let volumes: Vec<&Volume> = page
                .volumes_by_instance
                .get(id)
                .into_iter()
                .flatten()
                .filter_map(|v| page.volumes.0.get(v))
                .collect();
            let parts = Parts {
                region: &page.region,
                account: &page.account,
                eni: page.enis.0.get(&i.network_interface_id),
                others: page
                    .others_by_instance
                    .get(id)
                    .into_iter()
                    .flatten()
                    .filter_map(|e| page.enis.0.get(e))
                    .collect(),
                eip: page
                    .eip_by_eni
                    .get(&i.network_interface_id)
                    .and_then(|a| page.addresses.0.get(a)),
                volumes: &volumes,
                tags: page.tags.get(id).map_or(&[][..], Vec::as_slice),
                state: &i.state,
            };
            let out: InstanceOut = instance_out(i, &parts);
            seq.serialize_element(&out)?;
        }
        seq.end()
    }
}

/// The reservations holding the instances that match.
async fn describe(
    ctx: &Ctx<'_>,
    ids: &[String],
    filters: &[Filter],
    max_results: Option<i64>,
    next_token: Option<&str>,
) -> Result<InstancesPage> {
    check_filters::<Row>(filters)?;
    for id in ids {
        check_instance_id(id)?;
    }
    let mut tx = ctx.store.read().await?;
    let instances: Arc<resource::Docs<Instance>> = resource::snapshot(ctx, &mut tx).await?;
    let enis: Arc<resource::Docs<NetworkInterface>> = resource::snapshot(ctx, &mut tx).await?;
    let addresses: Arc<resource::Docs<Address>> = resource::snapshot(ctx, &mut tx).await?;
    let volumes: Arc<resource::Docs<Volume>> = resource::snapshot(ctx, &mut tx).await?;
    let tags = tags_by_resource(ctx, &mut tx, Instance::KIND).await?;
    drop(tx);
    let now = kumori_protocol::time::now_unix();
    if let Some(missing) = ids
        .iter()
        .find(|id| instances.0.get(*id).is_none_or(|i| i.gone(now)))
    {
        return Err(not_found(missing));
    }
    let none = Vec::new();
    let eip_by_eni: HashMap<String, String> = addresses
        .0
        .values()
        .filter_map(|a| {
            Some((
                a.association.as_ref()?.network_interface_id.clone(),
                a.allocation_id.clone(),
            ))
        })
        .collect();
    let mut volumes_by_instance: HashMap<String, Vec<String>> = HashMap::new();
    for v in volumes.0.values() {
        for a in &v.attachments {
            volumes_by_instance
                .entry(a.instance_id.clone())
                .or_default()
                .push(v.volume_id.clone());
        }
    }
    let mut others: HashMap<String, Vec<(i64, String)>> = HashMap::new();
    for e in enis.0.values() {
        if let Some(a) = &e.attachment
            && a.device_index != 0
            && let Some(id) = a.instance_id.as_deref()
        {
            others
                .entry(id.to_string())
                .or_default()
                .push((a.device_index, e.network_interface_id.clone()));
        }
    }
    let others_by_instance: HashMap<String, Vec<String>> = others
        .into_iter()
        .map(|(k, mut v)| {
            v.sort();
            (k, v.into_iter().map(|(_, e)| e).collect())
        })
        .collect();
    // Filters other than the common ones look at the instance as shown.
    let slow = filters
        .iter()
        .any(|f| !FAST_FILTERS.contains(&f.name.as_str()) && !f.name.starts_with("tag"));
    let heavy = !filters.is_empty() && instances.0.len() > 256;
    let rows: Vec<Row> = crate::cpu_bound(heavy, || {
        instances
            .0
            .values()
            .filter(|i| !i.gone(now) && (ids.is_empty() || ids.contains(&i.instance_id)))
            .map(|i| {
                let eni = enis.0.get(&i.network_interface_id);
                let eip = eip_by_eni
                    .get(&i.network_interface_id)
                    .and_then(|a| addresses.0.get(a));
                let public_ip = eip
                    .map(|a| a.public_ip.clone())
                    .or(i.public_ip_address.clone());
                let shown = slow.then(|| {
                    let attached: Vec<&Volume> = volumes_by_instance
                        .get(&i.instance_id)
                        .into_iter()
                        .flatten()
                        .filter_map(|v| volumes.0.get(v))
                        .collect();
                    let parts = Parts {
                        region: ctx.region,
                        account: ctx.account,
                        eni,
                        others: others_by_instance
                            .get(&i.instance_id)
                            .into_iter()
                            .flatten()
                            .filter_map(|e| enis.0.get(e))
                            .collect(),
                        eip,
                        volumes: &attached,
                        tags: tags.get(&i.instance_id).map_or(&[][..], Vec::as_slice),
                        state: &i.state,
                    };
                    serde_json::to_value(instance_out(i, &parts)).unwrap_or(Value::Null)
                });
                Row {
                    i,
                    eni,
                    public_ip,
                    shown,
                }
            })
            .filter(|r| matches(r, tags.get(&r.i.instance_id).unwrap_or(&none), filters))
            .collect()
    });
    let (page, next) = paginate(rows, |r| r.i.instance_id.clone(), max_results, next_token)?;
    // Reservations in the order their first instance appears.
    let mut reservations: Vec<(String, Vec<String>)> = Vec::new();
    let mut reservation_at: HashMap<&str, usize> = HashMap::new();
    for r in &page {
        let id = r.i.instance_id.clone();
        match reservation_at.get(r.i.reservation_id.as_str()) {
            Some(&at) => reservations[at].1.push(id),
            None => {
                reservation_at.insert(r.i.reservation_id.as_str(), reservations.len());
                reservations.push((r.i.reservation_id.clone(), vec![id]));
            }
        }
    }
    drop(page);
    Ok(InstancesPage {
        reservations,
        eip_by_eni,
        volumes_by_instance,
        others_by_instance,
        tags,
        instances,
        enis,
        addresses,
        volumes,
        region: ctx.region.to_string(),
        account: ctx.account.to_string(),
        next_token: next,
    })
}

/// Instances as DescribeInstances shows them, as JSON (for answers other than the describe).
pub async fn describe_value(ctx: &Ctx<'_>, ids: &[String], filters: &[Filter]) -> Result<Value> {
    let page = describe(ctx, ids, filters, None, None).await?;
    crate::output(&page)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeInstancesRequest {
    #[serde(default)]
    instance_ids: Vec<String>,
    #[serde(default)]
    filters: Vec<Filter>,
    max_results: Option<i64>,
    next_token: Option<String>,
    dry_run: Option<bool>,
}

pub async fn describe_instances(ctx: &Ctx<'_>, raw: &Value) -> Result<Output> {
    let req: DescribeInstancesRequest = input(raw)?;
    // EC2 pages instances 5 to 1000 at a time (the model leaves the range unsaid), and a
    // page size makes no sense beside explicit ids.
    if let Some(max) = req.max_results {
        if !req.instance_ids.is_empty() {
            return Err(Error(AwsError::new(
                "InvalidParameterCombination",
                "The parameter instancesSet cannot be used with the parameter maxResults",
            )));
        }
        if !(5..=1000).contains(&max) {
            let bound = if max < 5 {
                "Expecting a value greater than or equal to 5."
            } else {
                "Expecting a value less than or equal to 1000."
            };
            return Err(invalid_value(format!(
                "Value ( {max} ) for parameter maxResults is invalid. {bound}"
            )));
        }
    }
    dry_run(req.dry_run)?;
    let page = describe(
        ctx,
        &req.instance_ids,
        &req.filters,
        req.max_results,
        req.next_token.as_deref(),
    )
    .await?;
    Ok(Output::Typed(Box::new(page)))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StateChangeRequest {
    instance_ids: Vec<String>,
    force: Option<bool>,
    dry_run: Option<bool>,
}

/// Locks every instance named, refusing unknown ids before anything changes.
async fn lock_all(ctx: &Ctx<'_>, tx: &mut Tx, ids: &[String]) -> Result<Vec<Instance>> {
    let mut out = Vec::new();
    for id in ids {
        check_instance_id(id)?;
        let i: Instance = resource::lock(ctx, tx, id)
            .await?
            .filter(|i: &Instance| !i.gone(kumori_protocol::time::now_unix()))
            .ok_or_else(|| not_found(id))?;
        out.push(i);
    }
    Ok(out)
}

fn change(i: &Instance, previous: &str, current: &str) -> Value {
    json!({
        "InstanceId": i.instance_id,
        "PreviousState": state_shown(previous),
        "CurrentState": state_shown(current),
    })
}

pub async fn terminate_instances(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: StateChangeRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let instances = lock_all(ctx, &mut tx, &req.instance_ids).await?;
    if let Some(i) = instances
        .iter()
        .find(|i| i.disable_api_termination && !i.terminated())
    {
        return Err(Error(AwsError::new(
            "OperationNotPermitted",
            format!(
                "The instance '{}' may not be terminated. Modify its 'disableApiTermination' instance attribute and try again.",
                i.instance_id
            ),
        )));
    }
    dry_run(req.dry_run)?;
    let mut changes = Vec::new();
    for mut i in instances {
        let previous = i.state.clone();
        if i.terminated() {
            changes.push(change(&i, &previous, "terminated"));
            continue;
        }
        if let Some(ip) = i.public_ip_address.take() {
            release_public_ip(&mut tx, &ip).await?;
        }
        eni::detach_all(ctx, &mut tx, &i.instance_id).await?;
        super::volumes::release_for_terminated(ctx, &mut tx, &i.instance_id).await?;
        i.state = "terminated".into();
        i.terminated_at = Some(kumori_protocol::time::now_unix());
        i.state_transition_reason = format!(
            "User initiated ({})",
            kumori_protocol::time::now_iso()
                .replace('T', " ")
                .replace(".000Z", " GMT")
        );
        resource::update(ctx, &mut tx, &i).await?;
        changes.push(change(&i, &previous, "shutting-down"));
    }
    tx.commit().await?;
    Ok(json!({ "TerminatingInstances": changes }))
}

pub async fn stop_instances(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: StateChangeRequest = input(raw)?;
    let _ = req.force;
    let mut tx = ctx.store.write().await?;
    let instances = lock_all(ctx, &mut tx, &req.instance_ids).await?;
    for i in &instances {
        if i.disable_api_stop && i.state == "running" {
            return Err(Error(AwsError::new(
                "OperationNotPermitted",
                format!(
                    "The instance '{}' may not be stopped. Modify its 'disableApiStop' instance attribute and try again.",
                    i.instance_id
                ),
            )));
        }
        if i.terminated() {
            return Err(Error(AwsError::new(
                "IncorrectInstanceState",
                format!(
                    "This instance '{}' is not in a state from which it can be stopped.",
                    i.instance_id
                ),
            )));
        }
    }
    dry_run(req.dry_run)?;
    let mut changes = Vec::new();
    for mut i in instances {
        let previous = i.state.clone();
        if previous == "stopped" {
            changes.push(change(&i, &previous, "stopped"));
            continue;
        }
        // The launch-time public address goes back to the pool; an Elastic IP stays.
        if let Some(ip) = i.public_ip_address.take() {
            release_public_ip(&mut tx, &ip).await?;
            set_auto_ip(ctx, &mut tx, &i.network_interface_id, None).await?;
        }
        i.state = "stopped".into();
        i.state_transition_reason = "User initiated".into();
        resource::update(ctx, &mut tx, &i).await?;
        changes.push(change(&i, &previous, "stopping"));
    }
    tx.commit().await?;
    Ok(json!({ "StoppingInstances": changes }))
}

/// RebootInstances: a running instance restarts in place and keeps everything (addresses
/// included); anything not running cannot be rebooted.
pub async fn reboot_instances(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: StateChangeRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let instances = lock_all(ctx, &mut tx, &req.instance_ids).await?;
    drop(tx);
    if let Some(i) = instances.iter().find(|i| i.state != "running") {
        return Err(Error(AwsError::new(
            "IncorrectInstanceState",
            format!(
                "The instance '{}' is not in a state from which it can be rebooted.",
                i.instance_id
            ),
        )));
    }
    dry_run(req.dry_run)?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MonitorRequest {
    instance_ids: Vec<String>,
    dry_run: Option<bool>,
}

/// MonitorInstances and UnmonitorInstances: detailed monitoring on or off. The answer shows
/// where the change starts (`pending`, `disabling`); describes show where it ends.
async fn set_monitoring(ctx: &Ctx<'_>, raw: &Value, on: bool) -> Result<Value> {
    let req: MonitorRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let instances = lock_all(ctx, &mut tx, &req.instance_ids).await?;
    if let Some(i) = instances.iter().find(|i| i.terminated()) {
        return Err(Error(AwsError::new(
            "IncorrectInstanceState",
            format!("The instance '{}' is terminated.", i.instance_id),
        )));
    }
    dry_run(req.dry_run)?;
    let mut out = Vec::new();
    for mut i in instances {
        i.monitoring = on;
        resource::update(ctx, &mut tx, &i).await?;
        out.push(json!({
            "InstanceId": i.instance_id,
            "Monitoring": { "State": if on { "pending" } else { "disabling" } },
        }));
    }
    tx.commit().await?;
    Ok(json!({ "InstanceMonitorings": out }))
}

pub async fn monitor_instances(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    set_monitoring(ctx, raw, true).await
}

pub async fn unmonitor_instances(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    set_monitoring(ctx, raw, false).await
}

pub async fn start_instances(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: StateChangeRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let instances = lock_all(ctx, &mut tx, &req.instance_ids).await?;
    if let Some(i) = instances.iter().find(|i| i.terminated()) {
        return Err(Error(AwsError::new(
            "IncorrectInstanceState",
            format!(
                "The instance '{}' is not in a state from which it can be started.",
                i.instance_id
            ),
        )));
    }
    dry_run(req.dry_run)?;
    let mut changes = Vec::new();
    for mut i in instances {
        let previous = i.state.clone();
        if previous == "running" {
            changes.push(change(&i, &previous, "running"));
            continue;
        }
        // A new public address, unless an Elastic IP holds the interface.
        let addresses: Vec<Address> = resource::list(ctx, &mut tx).await?;
        let has_eip = addresses.iter().any(|a| {
            a.association
                .as_ref()
                .is_some_and(|x| x.network_interface_id == i.network_interface_id)
        });
        if i.public_ip_on_launch && !has_eip {
            let ip = claim_public_ip(&mut tx).await?;
            set_auto_ip(ctx, &mut tx, &i.network_interface_id, Some(ip.clone())).await?;
            i.public_ip_address = Some(ip);
        }
        i.state = "running".into();
        i.state_transition_reason = String::new();
        resource::update(ctx, &mut tx, &i).await?;
        changes.push(change(&i, &previous, "pending"));
    }
    tx.commit().await?;
    Ok(json!({ "StartingInstances": changes }))
}

async fn set_auto_ip(ctx: &Ctx<'_>, tx: &mut Tx, eni_id: &str, ip: Option<String>) -> Result<()> {
    if let Some(mut e) = resource::get::<NetworkInterface>(ctx, tx, eni_id).await? {
        e.auto_public_ip = ip;
        resource::update(ctx, tx, &e).await?;
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeAttributeRequest {
    instance_id: String,
    attribute: String,
    dry_run: Option<bool>,
}

pub async fn describe_instance_attribute(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DescribeAttributeRequest = input(raw)?;
    check_instance_id(&req.instance_id)?;
    let mut tx = ctx.store.read().await?;
    let i: Instance = resource::get(ctx, &mut tx, &req.instance_id)
        .await?
        .filter(|i: &Instance| !i.gone(kumori_protocol::time::now_unix()))
        .ok_or_else(|| not_found(&req.instance_id))?;
    let eni: Option<NetworkInterface> =
        resource::get(ctx, &mut tx, &i.network_interface_id).await?;
    let block_devices: Vec<Value> = super::volumes::of_instance(ctx, &mut tx, &i.instance_id)
        .await?
        .iter()
        .flat_map(|v| v.attachments.iter())
        .map(|a| {
            json!({
                "DeviceName": a.device,
                "Ebs": {
                    "AttachTime": a.attach_time,
                    "DeleteOnTermination": a.delete_on_termination,
                    "Status": "attached",
                    "VolumeId": a.volume_id,
                },
            })
        })
        .collect();
    drop(tx);
    dry_run(req.dry_run)?;
    let value = |v: Value| json!({ "Value": v });
    let mut out = json!({ "InstanceId": i.instance_id });
    // The model's enum has already refused any other name.
    let (member, shown) = match req.attribute.as_str() {
        "instanceType" => ("InstanceType", value(json!(i.instance_type))),
        "userData" => (
            "UserData",
            i.user_data.as_ref().map_or(json!({}), |u| value(json!(u))),
        ),
        "disableApiTermination" => (
            "DisableApiTermination",
            value(json!(i.disable_api_termination)),
        ),
        "disableApiStop" => ("DisableApiStop", value(json!(i.disable_api_stop))),
        "instanceInitiatedShutdownBehavior" => (
            "InstanceInitiatedShutdownBehavior",
            value(json!(i.shutdown_behavior)),
        ),
        "rootDeviceName" => ("RootDeviceName", value(json!(i.root_device_name))),
        "sourceDestCheck" => (
            "SourceDestCheck",
            value(json!(eni.as_ref().is_none_or(|e| e.source_dest_check))),
        ),
        "groupSet" => (
            "Groups",
            json!(
                eni.map(|e| e.groups)
                    .unwrap_or_default()
                    .iter()
                    .map(|g| json!({ "GroupId": g.group_id, "GroupName": g.group_name }))
                    .collect::<Vec<_>>()
            ),
        ),
        "ebsOptimized" => ("EbsOptimized", value(json!(i.ebs_optimized))),
        "enaSupport" => ("EnaSupport", value(json!(true))),
        "sriovNetSupport" => ("SriovNetSupport", value(json!("simple"))),
        "enclaveOptions" => ("EnclaveOptions", json!({ "Enabled": false })),
        "productCodes" => ("ProductCodes", json!([])),
        "blockDeviceMapping" => ("BlockDeviceMappings", json!(block_devices)),
        // Kernel and ramdisk ids belong to paravirtual instances, which kumori does not launch.
        "kernel" => ("KernelId", json!({})),
        _ => ("RamdiskId", json!({})),
    };
    out[member] = shown;
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AttrValue {
    value: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BoolAttr {
    value: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ModifyAttributeRequest {
    instance_id: String,
    attribute: Option<String>,
    value: Option<String>,
    instance_type: Option<AttrValue>,
    user_data: Option<AttrValue>,
    disable_api_termination: Option<BoolAttr>,
    disable_api_stop: Option<BoolAttr>,
    instance_initiated_shutdown_behavior: Option<AttrValue>,
    source_dest_check: Option<BoolAttr>,
    ebs_optimized: Option<BoolAttr>,
    #[serde(default)]
    groups: Vec<String>,
    dry_run: Option<bool>,
}

fn not_stopped(id: &str) -> Error {
    Error(AwsError::new(
        "IncorrectInstanceState",
        format!("The instance '{id}' is not in the 'stopped' state."),
    ))
}

/// One attribute a call. Security groups and protections change at any time; the type and
/// user data only while the instance is stopped.
pub async fn modify_instance_attribute(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ModifyAttributeRequest = input(raw)?;
    check_instance_id(&req.instance_id)?;
    // The older form: Attribute=name, Value=text.
    let text = |specific: &Option<AttrValue>, name: &str| {
        specific.as_ref().and_then(|v| v.value.clone()).or_else(|| {
            (req.attribute.as_deref() == Some(name))
                .then(|| req.value.clone())
                .flatten()
        })
    };
    let flag = |specific: &Option<BoolAttr>, name: &str| {
        specific.as_ref().and_then(|v| v.value).or_else(|| {
            (req.attribute.as_deref() == Some(name))
                .then(|| req.value.as_deref().map(|v| v == "true"))
                .flatten()
        })
    };
    let instance_type = text(&req.instance_type, "instanceType");
    let user_data = text(&req.user_data, "userData");
    let shutdown = text(
        &req.instance_initiated_shutdown_behavior,
        "instanceInitiatedShutdownBehavior",
    );
    let termination = flag(&req.disable_api_termination, "disableApiTermination");
    let stop = flag(&req.disable_api_stop, "disableApiStop");
    let source_dest = flag(&req.source_dest_check, "sourceDestCheck");
    let ebs = flag(&req.ebs_optimized, "ebsOptimized");
    let groups = !req.groups.is_empty();
    let given = [
        instance_type.is_some(),
        user_data.is_some(),
        shutdown.is_some(),
        termination.is_some(),
        stop.is_some(),
        source_dest.is_some(),
        ebs.is_some(),
        groups,
    ];
    match given.iter().filter(|g| **g).count() {
        1 => {}
        0 if req.attribute.is_some() => {
            return Err(Error(AwsError::not_implemented(
                "ec2",
                &format!(
                    "ModifyInstanceAttribute of {}",
                    req.attribute.as_deref().unwrap_or_default()
                ),
            )));
        }
        _ => {
            return Err(Error(AwsError::new(
                "InvalidParameterCombination",
                "Specify exactly one attribute to modify.",
            )));
        }
    }
    let mut tx = ctx.store.write().await?;
    let mut i: Instance = resource::lock(ctx, &mut tx, &req.instance_id)
        .await?
        .filter(|i: &Instance| !i.terminated())
        .ok_or_else(|| not_found(&req.instance_id))?;
    if let Some(t) = instance_type {
        if i.state != "stopped" {
            return Err(not_stopped(&i.instance_id));
        }
        if kumori_catalog::instance_type(&t).is_none() {
            return Err(invalid_value(format!(
                "The instance type '{t}' is not supported."
            )));
        }
        if !kumori_catalog::architectures(&t).contains(&i.architecture.as_str()) {
            return Err(invalid_value(format!(
                "The instance type '{t}' does not run the instance's architecture '{}'.",
                i.architecture
            )));
        }
        i.instance_type = t;
    }
    if let Some(u) = user_data {
        if i.state != "stopped" {
            return Err(not_stopped(&i.instance_id));
        }
        // The blob arrives base64 on the wire, as the instance keeps it.
        let size = base64::engine::general_purpose::STANDARD
            .decode(u.trim())
            .map(|b| b.len())
            .unwrap_or(u.len());
        if size > USER_DATA_LIMIT {
            return Err(invalid_value(format!(
                "User data is limited to {USER_DATA_LIMIT} bytes."
            )));
        }
        i.user_data = Some(u);
    }
    if let Some(s) = shutdown {
        if !matches!(s.as_str(), "stop" | "terminate") {
            return Err(invalid_value(format!(
                "Value ({s}) for parameter instanceInitiatedShutdownBehavior is invalid: stop or terminate."
            )));
        }
        i.shutdown_behavior = s;
    }
    if let Some(t) = termination {
        i.disable_api_termination = t;
    }
    if let Some(s) = stop {
        i.disable_api_stop = s;
    }
    if let Some(e) = ebs {
        i.ebs_optimized = e;
    }
    if source_dest.is_some() || groups {
        let mut nic: NetworkInterface = resource::lock(ctx, &mut tx, &i.network_interface_id)
            .await?
            .ok_or_else(|| not_found(&i.instance_id))?;
        if let Some(s) = source_dest {
            nic.source_dest_check = s;
        }
        if groups {
            nic.groups = eni::groups_for(ctx, &mut tx, &i.vpc_id, &req.groups).await?;
        }
        resource::update(ctx, &mut tx, &nic).await?;
    }
    dry_run(req.dry_run)?;
    resource::update(ctx, &mut tx, &i).await?;
    tx.commit().await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ModifyMetadataRequest {
    instance_id: String,
    http_tokens: Option<String>,
    http_put_response_hop_limit: Option<i64>,
    http_endpoint: Option<String>,
    instance_metadata_tags: Option<String>,
    dry_run: Option<bool>,
}

pub async fn modify_instance_metadata_options(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ModifyMetadataRequest = input(raw)?;
    check_instance_id(&req.instance_id)?;
    let mut tx = ctx.store.write().await?;
    let mut i: Instance = resource::lock(ctx, &mut tx, &req.instance_id)
        .await?
        .filter(|i: &Instance| !i.terminated())
        .ok_or_else(|| not_found(&req.instance_id))?;
    let current = MetadataIn {
        http_tokens: req.http_tokens.or(Some(i.metadata.http_tokens.clone())),
        http_put_response_hop_limit: req
            .http_put_response_hop_limit
            .or(Some(i.metadata.http_put_response_hop_limit)),
        http_endpoint: req.http_endpoint.or(Some(i.metadata.http_endpoint.clone())),
        instance_metadata_tags: req
            .instance_metadata_tags
            .or(Some(i.metadata.instance_metadata_tags.clone())),
    };
    i.metadata = metadata_options(Some(&current))?;
    dry_run(req.dry_run)?;
    resource::update(ctx, &mut tx, &i).await?;
    tx.commit().await?;
    let m = &i.metadata;
    Ok(json!({
        "InstanceId": i.instance_id,
        "InstanceMetadataOptions": {
            "State": "pending",
            "HttpTokens": m.http_tokens,
            "HttpPutResponseHopLimit": m.http_put_response_hop_limit,
            "HttpEndpoint": m.http_endpoint,
            "HttpProtocolIpv6": "disabled",
            "InstanceMetadataTags": m.instance_metadata_tags,
        },
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreditSpecsRequest {
    #[serde(default)]
    instance_ids: Vec<String>,
    #[serde(default)]
    filters: Vec<Filter>,
    max_results: Option<i64>,
    next_token: Option<String>,
    dry_run: Option<bool>,
}

struct CreditRow<'a>(&'a Instance);

impl Filterable for CreditRow<'_> {
    const FILTERS: &'static [&'static str] = &["instance-id"];
    fn field(&self, name: &str) -> Vec<String> {
        match name {
            "instance-id" => vec![self.0.instance_id.clone()],
            _ => vec![],
        }
    }
}

/// The CPU credit option of burstable instances (others have none and are not listed).
pub async fn describe_instance_credit_specifications(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: CreditSpecsRequest = input(raw)?;
    check_filters::<CreditRow>(&req.filters)?;
    let all = every_instance(ctx, &req.instance_ids, true).await?;
    dry_run(req.dry_run)?;
    let rows: Vec<&Instance> = all
        .iter()
        .filter(|i| !i.terminated() && i.cpu_credits.is_some())
        .filter(|i| req.instance_ids.is_empty() || req.instance_ids.contains(&i.instance_id))
        .filter(|i| matches(&CreditRow(i), &[], &req.filters))
        .collect();
    let (page, next) = paginate(
        rows,
        |i| i.instance_id.clone(),
        req.max_results,
        req.next_token.as_deref(),
    )?;
    let specs: Vec<Value> = page
        .iter()
        .map(|i| json!({ "InstanceId": i.instance_id, "CpuCredits": i.cpu_credits }))
        .collect();
    Ok(super::common::page_output(
        "InstanceCreditSpecifications",
        specs,
        next,
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StatusRequest {
    #[serde(default)]
    instance_ids: Vec<String>,
    #[serde(default)]
    filters: Vec<Filter>,
    include_all_instances: Option<bool>,
    max_results: Option<i64>,
    next_token: Option<String>,
    dry_run: Option<bool>,
}

struct StatusRow<'a>(&'a Instance);

impl Filterable for StatusRow<'_> {
    const FILTERS: &'static [&'static str] = &[
        "availability-zone",
        "instance-state-code",
        "instance-state-name",
        "instance-status.reachability",
        "instance-status.status",
        "system-status.reachability",
        "system-status.status",
    ];
    fn field(&self, name: &str) -> Vec<String> {
        let running = self.0.state == "running";
        match name {
            "availability-zone" => vec![self.0.availability_zone.clone()],
            "instance-state-code" => vec![state_code(&self.0.state).to_string()],
            "instance-state-name" => vec![self.0.state.clone()],
            "instance-status.reachability" | "system-status.reachability" => {
                vec![if running { "passed" } else { "not-applicable" }.into()]
            }
            "instance-status.status" | "system-status.status" => {
                vec![if running { "ok" } else { "not-applicable" }.into()]
            }
            _ => vec![],
        }
    }
}

/// Status checks: a running instance passes both; others are listed only with
/// IncludeAllInstances, as not applicable. (kumori has no hardware to fail.)
pub async fn describe_instance_status(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: StatusRequest = input(raw)?;
    check_filters::<StatusRow>(&req.filters)?;
    let all = every_instance(ctx, &req.instance_ids, false).await?;
    dry_run(req.dry_run)?;
    let every = req.include_all_instances == Some(true);
    let rows: Vec<&Instance> = all
        .iter()
        .filter(|i| req.instance_ids.is_empty() || req.instance_ids.contains(&i.instance_id))
        .filter(|i| every || i.state == "running")
        .filter(|i| matches(&StatusRow(i), &[], &req.filters))
        .collect();
    let (page, next) = paginate(
        rows,
        |i| i.instance_id.clone(),
        req.max_results,
        req.next_token.as_deref(),
    )?;
    let statuses: Vec<Value> = page
        .iter()
        .map(|i| {
            let (status, reach) = if i.state == "running" {
                ("ok", "passed")
            } else {
                ("not-applicable", "not-applicable")
            };
            let check = json!({ "Status": status, "Details": [{ "Name": "reachability", "Status": reach }] });
            json!({
                "InstanceId": i.instance_id,
                "AvailabilityZone": i.availability_zone,
                "InstanceState": state_shown(&i.state),
                "InstanceStatus": check,
                "SystemStatus": check,
            })
        })
        .collect();
    Ok(super::common::page_output(
        "InstanceStatuses",
        statuses,
        next,
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PasswordRequest {
    instance_id: String,
    dry_run: Option<bool>,
}

/// A Windows instance's administrator password, encrypted with its RSA key pair's public key
/// as EC2 does (PKCS#1 v1.5, base64); made once, on first request, and only the encrypted
/// form kept. Other instances have none (an empty `PasswordData`).
pub async fn get_password_data(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: PasswordRequest = input(raw)?;
    check_instance_id(&req.instance_id)?;
    let mut tx = ctx.store.write().await?;
    let mut i: Instance = resource::lock(ctx, &mut tx, &req.instance_id)
        .await?
        .ok_or_else(|| not_found(&req.instance_id))?;
    dry_run(req.dry_run)?;
    if i.password_data.is_none()
        && i.platform.as_deref() == Some("windows")
        && let Some(name) = &i.key_name
    {
        let keys: Vec<KeyPair> = resource::list(ctx, &mut tx).await?;
        if let Some(key) = keys
            .iter()
            .find(|k| &k.key_name == name && k.key_type == "rsa")
        {
            let password = new_password();
            let sealed =
                kumori_keys::encrypt_for(&key.public_key, password.as_bytes()).map_err(|e| {
                    Error(AwsError::internal(format!(
                        "password encryption failed: {e}"
                    )))
                })?;
            i.password_data = Some(base64::engine::general_purpose::STANDARD.encode(sealed));
            resource::update(ctx, &mut tx, &i).await?;
        }
    }
    tx.commit().await?;
    Ok(json!({
        "InstanceId": i.instance_id,
        "Timestamp": i.launch_time,
        "PasswordData": i.password_data.unwrap_or_default(),
    }))
}

/// 32 characters of letters, digits and Windows-friendly symbols.
fn new_password() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789!@$%&*()-=+?";
    let mut rng = rand::rng();
    (0..32)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

/// Every instance of the region, after checking that each id in `ids` is well formed and
/// names one (a live one, when `live`).
async fn every_instance(ctx: &Ctx<'_>, ids: &[String], live: bool) -> Result<Vec<Instance>> {
    for id in ids {
        check_instance_id(id)?;
    }
    let mut tx = ctx.store.read().await?;
    let all: Vec<Instance> = resource::list(ctx, &mut tx).await?;
    drop(tx);
    if let Some(missing) = ids.iter().find(|id| {
        !all.iter()
            .any(|i| &i.instance_id == *id && !(live && i.terminated()))
    }) {
        return Err(not_found(missing));
    }
    Ok(all)
}

#[cfg(test)]
mod expiry_tests {
    use super::*;

    #[test]
    fn a_terminated_instance_is_listed_for_an_hour_then_gone() {
        let at = 1_800_000_000;
        assert!(!gone_at("terminated", Some(at), at));
        assert!(!gone_at(
            "terminated",
            Some(at),
            at + TERMINATED_VISIBLE_SECS - 1
        ));
        assert!(gone_at(
            "terminated",
            Some(at),
            at + TERMINATED_VISIBLE_SECS
        ));
        // Records from before the time was kept, and live instances, never go.
        assert!(!gone_at(
            "terminated",
            None,
            at + 10 * TERMINATED_VISIBLE_SECS
        ));
        assert!(!gone_at(
            "running",
            Some(at),
            at + 10 * TERMINATED_VISIBLE_SECS
        ));
    }
}
