//! RunInstances: the request read against images, launch templates, subnets, interfaces,
//! volumes, placement, profiles and CPU options, then the instances planned and written in
//! one transaction.

use super::*;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct PlacementIn {
    pub(super) availability_zone: Option<String>,
    pub(super) tenancy: Option<String>,
    pub(super) group_name: Option<String>,
    pub(super) group_id: Option<String>,
    pub(super) partition_number: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct MonitoringIn {
    pub(super) enabled: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct MetadataIn {
    pub(super) http_tokens: Option<String>,
    pub(super) http_put_response_hop_limit: Option<i64>,
    pub(super) http_endpoint: Option<String>,
    pub(super) instance_metadata_tags: Option<String>,
    pub(super) http_protocol_ipv6: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct NicIn {
    pub(super) device_index: Option<i64>,
    pub(super) subnet_id: Option<String>,
    pub(super) associate_public_ip_address: Option<bool>,
    #[serde(default)]
    pub(super) groups: Vec<String>,
    pub(super) private_ip_address: Option<String>,
    pub(super) network_interface_id: Option<String>,
    pub(super) delete_on_termination: Option<bool>,
    pub(super) ipv6_address_count: Option<i64>,
}

/// The interfaces a launch asks for, checked as EC2 checks them: device indexes unique and
/// one of them 0, no public address asked for with several, no instance-level subnet or
/// groups beside them, existing interfaces only for a single instance, and no more than
/// the type allows. Returns them with their device indexes, the primary first.
pub(super) fn launch_interfaces<'r>(
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
    let combination = |m: &str| Err(Error::new("InvalidParameterCombination", m));
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
pub(super) struct RunInstancesRequest {
    pub(super) ipv6_address_count: Option<i64>,
    pub(super) image_id: Option<String>,
    pub(super) instance_type: Option<String>,
    pub(super) min_count: i64,
    pub(super) max_count: i64,
    pub(super) key_name: Option<String>,
    pub(super) subnet_id: Option<String>,
    #[serde(default)]
    pub(super) security_group_ids: Vec<String>,
    #[serde(default)]
    pub(super) security_groups: Vec<String>,
    pub(super) private_ip_address: Option<String>,
    pub(super) user_data: Option<String>,
    pub(super) placement: Option<PlacementIn>,
    pub(super) monitoring: Option<MonitoringIn>,
    pub(super) metadata_options: Option<MetadataIn>,
    #[serde(default)]
    pub(super) network_interfaces: Vec<NicIn>,
    #[serde(default)]
    pub(super) tag_specifications: Vec<TagSpecification>,
    pub(super) client_token: Option<String>,
    pub(super) disable_api_termination: Option<bool>,
    pub(super) disable_api_stop: Option<bool>,
    pub(super) instance_initiated_shutdown_behavior: Option<String>,
    pub(super) ebs_optimized: Option<bool>,
    pub(super) credit_specification: Option<CreditIn>,
    #[serde(default)]
    pub(super) block_device_mappings: Vec<BdmIn>,
    pub(super) iam_instance_profile: Option<IamProfileIn>,
    pub(super) cpu_options: Option<CpuOptionsIn>,
    pub(super) hibernation_options: Option<HibernationIn>,
    pub(super) enclave_options: Option<EnclaveIn>,
    pub(super) dry_run: Option<bool>,
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
    let mut tx = ctx.store.read().await?;
    launch_profile_in(ctx, &mut tx, given).await
}

/// [`launch_profile`] inside the caller's transaction.
pub(super) async fn launch_profile_in(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
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
    match crate::iam::instance_profile(ctx, tx, arn, name).await? {
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
pub(super) struct CreditIn {
    pub(super) cpu_credits: Option<String>,
}

/// A burstable type's CPU credit option: what was asked, else AWS's default (`standard` for
/// t2, `unlimited` for the later families); `None` for types that do not burst.
pub(super) fn cpu_credits(
    type_info: &Value,
    instance_type: &str,
    asked: Option<&str>,
) -> Result<Option<String>> {
    if type_info["BurstablePerformanceSupported"] != true {
        return match asked {
            None | Some("") => Ok(None),
            Some(_) => Err(Error::new(
                "InvalidParameterCombination",
                format!(
                    "The instance type {instance_type} does not support a credit specification."
                ),
            )),
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
pub(super) struct BdmIn {
    pub(super) device_name: Option<String>,
    pub(super) ebs: Option<EbsIn>,
    pub(super) no_device: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct EbsIn {
    pub(super) volume_size: Option<i64>,
    pub(super) volume_type: Option<String>,
    pub(super) iops: Option<i64>,
    pub(super) throughput: Option<i64>,
    pub(super) delete_on_termination: Option<bool>,
    pub(super) snapshot_id: Option<String>,
    pub(super) encrypted: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct CpuOptionsIn {
    pub(super) core_count: Option<i64>,
    pub(super) threads_per_core: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct HibernationIn {
    pub(super) configured: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct EnclaveIn {
    pub(super) enabled: Option<bool>,
}

/// Cores and threads per core, checked against the type's valid values; the type's
/// defaults where not given.
pub(super) fn cpu_options(
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
pub(super) type LaunchVolume = (
    String,
    (String, i64, Option<i64>, Option<i64>),
    Option<String>,
    bool,
);

/// A volume to make at launch, with the smallest size its snapshot allows.
pub(super) struct Planned {
    pub(super) volume: LaunchVolume,
    pub(super) min_size: i64,
}

/// The volumes a launch makes: the image's (root first), each resized, retyped or left out
/// by a request mapping for its device, then the request's further EBS mappings, empty or
/// from a snapshot (`snapshot_sizes` holds the size of each snapshot the request names).
pub(super) fn launch_volumes(
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
            Error::new(
                "MissingParameter",
                "The request must contain the parameter BlockDeviceMapping.DeviceName",
            )
        })?;
        if m.no_device.is_some() {
            if device == root_device {
                return Err(Error::new(
                    "InvalidBlockDeviceMapping",
                    format!("The root device {device} cannot be left out of a launch."),
                ));
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
                        Error::new(
                            "InvalidSnapshot.NotFound",
                            format!("The snapshot '{id}' does not exist."),
                        )
                    })?,
                    None => 1,
                };
                let size = match (ebs.volume_size, &ebs.snapshot_id) {
                    (Some(s), _) => s,
                    (None, Some(_)) => min_size,
                    (None, None) => {
                        return Err(Error::new(
                            "InvalidBlockDeviceMapping",
                            format!("The mapping for {device} needs a volume size."),
                        ));
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
                return Err(Error::new(
                    "InvalidBlockDeviceMapping",
                    format!(
                        "Volume of size {size}GB is smaller than snapshot '{}', expect size >= {}GB",
                        p.volume.2.as_deref().unwrap_or_default(),
                        p.min_size
                    ),
                ));
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
        crate::ec2::volumes::check_spec(t, *size, *iops, *tp)?;
    }
    Ok(out)
}

/// Tags for the instance, its interface and its volumes from `TagSpecification`s.
pub(super) fn launch_tags(specs: &[TagSpecification]) -> Result<(Vec<Tag>, Vec<Tag>, Vec<Tag>)> {
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

pub(super) fn metadata_options(m: Option<&MetadataIn>) -> Result<MetadataOptions> {
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
        http_protocol_ipv6: m
            .and_then(|m| m.http_protocol_ipv6.clone())
            .unwrap_or_else(|| "disabled".into()),
    })
}

/// The subnet an instance launches into: the one named, or the default VPC's subnet in the
/// requested zone (or the first zone).
pub(super) async fn launch_subnet(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    named: Option<&str>,
    zone: Option<&str>,
) -> Result<Subnet> {
    if let Some(id) = named {
        return resource::lock(ctx, tx, id)
            .await?
            .ok_or_else(|| crate::ec2::subnet::not_found(id));
    }
    let vpc = crate::ec2::default_vpc::find(ctx, tx)
        .await?
        .ok_or_else(|| {
            Error::new(
                "VPCIdNotSpecified",
                "No default VPC for this user. Specify a subnet.",
            )
        })?;
    let mut subnets: Vec<Subnet> =
        resource::children_where(ctx, tx, &vpc.vpc_id, "DefaultForAz", true).await?;
    subnets.sort_by(|a, b| a.availability_zone.cmp(&b.availability_zone));
    let found = match zone {
        Some(z) => subnets.into_iter().find(|s| s.availability_zone == z),
        None => subnets.into_iter().next(),
    }
    .ok_or_else(|| {
        Error::new(
            "MissingInput",
            "No subnets found for the default VPC. Specify a subnet.",
        )
    })?;
    resource::lock(ctx, tx, &found.subnet_id.clone())
        .await?
        .ok_or_else(|| crate::ec2::subnet::not_found(&found.subnet_id))
}

/// Terraform sends empty strings for settings it leaves to AWS: they mean "not given".
pub(super) fn given(s: &mut Option<String>) {
    if s.as_deref() == Some("") {
        *s = None;
    }
}

/// A RunInstances request with its launch template's data filled in: members the request
/// gives win, whole, except tags, which merge; with the template's id and version number.
pub(super) async fn with_template(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    raw: &Value,
) -> Result<(Value, Option<(String, i64)>)> {
    let Some(spec) = raw.get("LaunchTemplate") else {
        return Ok((raw.clone(), None));
    };
    let (mut data, id, version) =
        crate::ec2::launch_templates::data_for_launch(ctx, tx, spec).await?;
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

/// RunInstances, in one write transaction from the template and image it reads to the
/// instances it stores: an image deregistered or a template changed meanwhile cannot slip in.
pub async fn run_instances(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    // What a client token stands for; only a launch with one needs it.
    let digest = raw.get("ClientToken").map(|_| request_digest(raw));
    let mut tx = ctx.store.write().await?;
    let (raw, template) = with_template(ctx, &mut tx, raw).await?;
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
        Error::new(
            "MissingParameter",
            "The request must contain the parameter ImageId",
        )
    })?;
    let image = crate::ec2::images::find(ctx, &mut tx, &image_id).await?;
    if let Some(state) = image["State"].as_str().filter(|s| *s != "available") {
        return Err(Error::new(
            "InvalidAMIID.Unavailable",
            format!("AMI '{image_id}' is {state}, and cannot be run"),
        ));
    }
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
    let ipv6_count = req
        .ipv6_address_count
        .or_else(|| nic.and_then(|s| s.ipv6_address_count));
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
        return Err(Error::new(
            "InvalidParameterCombination",
            format!(
                "Virtualization type 'paravirtual' is not supported for instance type '{instance_type}'."
            ),
        ));
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
    let profile = launch_profile_in(ctx, &mut tx, req.iam_instance_profile.as_ref()).await?;
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
        return Err(Error::new(
            "InvalidParameterCombination",
            "An instance cannot be enabled for both hibernation and Nitro Enclaves.",
        ));
    }
    if enclave && type_info["NitroEnclavesSupport"] != "supported" {
        return Err(Error::new(
            "UnsupportedOperation",
            format!("Nitro Enclaves are not supported by instance type {instance_type}."),
        ));
    }
    if hibernation {
        let memory_gib = type_info["MemoryInfo"]["SizeInMiB"].as_i64().unwrap_or(0) / 1024;
        if type_info["HibernationSupported"] != true || memory_gib > 150 {
            return Err(Error::new(
                "UnsupportedHibernationConfiguration",
                format!("Hibernation is not supported by instance type {instance_type}."),
            ));
        }
        let root = image["RootDeviceName"].as_str().unwrap_or("/dev/xvda");
        let root_encrypted = req.block_device_mappings.iter().any(|m| {
            m.device_name.as_deref() == Some(root)
                && m.ebs.as_ref().and_then(|e| e.encrypted) == Some(true)
        });
        if !root_encrypted {
            return Err(Error::new(
                "UnsupportedHibernationConfiguration",
                "For hibernation, the root device volume must be encrypted: give its block device mapping Encrypted=true.",
            ));
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
    for m in &req.block_device_mappings {
        if let Some(id) = m.ebs.as_ref().and_then(|e| e.snapshot_id.as_ref()) {
            let size = crate::ec2::snapshots::restorable_size(ctx, &mut tx, id).await?;
            snapshot_sizes.insert(id.clone(), size);
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
        return Err(Error::new(
            "InvalidParameterCombination",
            "A private IP address can only be given when launching one instance.",
        ));
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
    // Idempotency: the same client token answers with the same reservation, when asked
    // with the same parameters.
    if let Some(token) = &req.client_token {
        let mine: Vec<Instance> =
            resource::find_where(ctx, &mut tx, "ClientToken", token.as_str()).await?;
        if let Some(first) = mine.first() {
            if first.request_digest.is_some() && first.request_digest != digest {
                return Err(Error::new(
                    "IdempotentParameterMismatch",
                    "Arguments on this idempotent request are inconsistent with arguments \
                     used in previous request(s).",
                ));
            }
            let reservation_id = first.reservation_id.clone();
            drop(tx);
            return describe_reservation(ctx, &reservation_id).await;
        }
    }
    if let Some(key) = &req.key_name {
        let keys: Vec<KeyPair> =
            resource::find_where(ctx, &mut tx, "KeyName", key.as_str()).await?;
        if keys.is_empty() {
            return Err(Error::new(
                "InvalidKeyPair.NotFound",
                format!("The key pair '{key}' does not exist"),
            ));
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
    let existing_primary: Option<NetworkInterface> =
        match nic.and_then(|n| n.network_interface_id.as_ref()) {
            Some(id) => Some(
                resource::get::<NetworkInterface>(ctx, &mut tx, id)
                    .await?
                    .ok_or_else(|| {
                        <NetworkInterface as crate::ec2::generic::Ec2Resource>::not_found(id)
                    })?,
            ),
            None => None,
        };
    let subnet_named = req
        .subnet_id
        .clone()
        .or_else(|| nic.and_then(|n| n.subnet_id.clone()))
        .or_else(|| existing_primary.as_ref().map(|e| e.subnet_id.clone()));
    let mut subnet = launch_subnet(ctx, &mut tx, subnet_named.as_deref(), zone.as_deref()).await?;
    if !crate::ec2::regions::zone_offers(&subnet.availability_zone_id, &instance_type) {
        let z = crate::ec2::regions::Zone {
            name: subnet.availability_zone.clone(),
            id: subnet.availability_zone_id.clone(),
        };
        return Err(crate::ec2::regions::unsupported_in_zone(
            ctx.region,
            &z,
            &instance_type,
        ));
    }
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
        for name in &req.security_groups {
            let g: SecurityGroup =
                resource::child_where(ctx, &mut tx, &subnet.vpc_id, "GroupName", name.as_str())
                    .await?
                    .ok_or_else(|| {
                        Error::new(
                            "InvalidGroup.NotFound",
                            format!(
                                "The security group '{name}' does not exist in VPC '{}'",
                                subnet.vpc_id
                            ),
                        )
                    })?;
            group_ids.push(g.group_id.clone());
        }
    }
    let groups = eni::groups_or_default(ctx, &mut tx, &subnet.vpc_id, &group_ids).await?;
    let placement = req.placement.as_ref();
    let group = crate::ec2::placement_groups::for_launch(
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
            .ok_or_else(|| crate::ec2::subnet::not_found(&subnet_id))?;
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
        // IPv6 addresses asked for beside the subnet's default.
        if let Some(n) = ipv6_count {
            nic.ipv6_addresses = eni::ipv6_for(ctx, &mut tx, &subnet, Some(n), &[], &[]).await?;
            resource::update(ctx, &mut tx, &nic).await?;
        }
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
            state: booting_state().into(),
            state_transition_reason: String::new(),
            state_reason: None,
            reboots: 0,
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
            request_digest: digest.clone(),
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
                        .ok_or_else(|| crate::ec2::subnet::not_found(&sid))?;
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
            let mut v = crate::ec2::volumes::create_attached(
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
                v.kms_key_id = Some(crate::ec2::volumes::default_kms_key(ctx));
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
pub(super) async fn describe_reservation(ctx: &Ctx<'_>, reservation_id: &str) -> Result<Value> {
    let by_reservation = Filter {
        name: "reservation-id".into(),
        values: vec![reservation_id.to_string()],
    };
    let mut out = describe_value(ctx, &[], &[by_reservation]).await?;
    let mut reservation = match out["Reservations"].as_array_mut() {
        Some(r) if !r.is_empty() => r.swap_remove(0),
        _ => Value::Null,
    };
    // In launch order, as the first answer gave them.
    if let Some(instances) = reservation["Instances"].as_array_mut() {
        instances.sort_by_key(|i| i["AmiLaunchIndex"].as_i64());
    }
    Ok(reservation)
}

/// What a client token stands for: the request's parameters but the token and DryRun, as
/// canonical JSON (members sorted) hashed with SHA-256.
fn request_digest(raw: &Value) -> String {
    use sha2::Digest;
    let mut params = raw.clone();
    if let Some(m) = params.as_object_mut() {
        m.remove("ClientToken");
        m.remove("DryRun");
    }
    let digest = sha2::Sha256::digest(params.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
