//! Instance attributes and metadata options.

use super::*;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct DescribeAttributeRequest {
    pub(super) instance_id: String,
    pub(super) attribute: String,
    pub(super) dry_run: Option<bool>,
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
    let block_devices: Vec<Value> = crate::ec2::volumes::of_instance(ctx, &mut tx, &i.instance_id)
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
                    // EC2 shows only the ids here.
                    .map(|g| json!({ "GroupId": g.group_id }))
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
pub(super) struct AttrValue {
    pub(super) value: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct BoolAttr {
    pub(super) value: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ModifyAttributeRequest {
    pub(super) instance_id: String,
    pub(super) attribute: Option<String>,
    pub(super) value: Option<String>,
    pub(super) instance_type: Option<AttrValue>,
    pub(super) user_data: Option<AttrValue>,
    pub(super) disable_api_termination: Option<BoolAttr>,
    pub(super) disable_api_stop: Option<BoolAttr>,
    pub(super) instance_initiated_shutdown_behavior: Option<AttrValue>,
    pub(super) source_dest_check: Option<BoolAttr>,
    pub(super) ebs_optimized: Option<BoolAttr>,
    #[serde(default)]
    pub(super) groups: Vec<String>,
    #[serde(default)]
    pub(super) block_device_mappings: Vec<MappingChange>,
    pub(super) dry_run: Option<bool>,
}

/// A change to an attached volume's mapping: only `DeleteOnTermination` can change.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct MappingChange {
    pub(super) device_name: Option<String>,
    pub(super) ebs: Option<EbsChange>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct EbsChange {
    pub(super) delete_on_termination: Option<bool>,
    pub(super) volume_id: Option<String>,
}

pub(super) fn not_stopped(id: &str) -> Error {
    Error::new(
        "IncorrectInstanceState",
        format!("The instance '{id}' is not in the 'stopped' state."),
    )
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
    let mappings = !req.block_device_mappings.is_empty();
    let given = [
        mappings,
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
            return Err(Error::new(
                "InvalidParameterCombination",
                "Specify exactly one attribute to modify.",
            ));
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
    for m in &req.block_device_mappings {
        let device = m.device_name.as_deref().ok_or_else(|| {
            Error::new(
                "MissingParameter",
                "The request must contain the parameter BlockDeviceMapping.DeviceName",
            )
        })?;
        let Some(delete) = m.ebs.as_ref().and_then(|e| e.delete_on_termination) else {
            continue;
        };
        let wanted = m.ebs.as_ref().and_then(|e| e.volume_id.as_deref());
        let attached = resource::list::<crate::ec2::volumes::Volume>(ctx, &mut tx)
            .await?
            .into_iter()
            .find(|v| {
                v.attachments
                    .iter()
                    .any(|a| a.instance_id == i.instance_id && a.device == device)
                    && wanted.is_none_or(|w| w == v.volume_id)
            });
        let mut v = attached.ok_or_else(|| {
            invalid_value(format!(
                "The device '{device}' is not mapped on instance {}.",
                i.instance_id
            ))
        })?;
        for a in v.attachments.iter_mut().filter(|a| a.device == device) {
            a.delete_on_termination = delete;
        }
        resource::update(ctx, &mut tx, &v).await?;
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
pub(super) struct ModifyMetadataRequest {
    pub(super) instance_id: String,
    pub(super) http_tokens: Option<String>,
    pub(super) http_put_response_hop_limit: Option<i64>,
    pub(super) http_endpoint: Option<String>,
    pub(super) instance_metadata_tags: Option<String>,
    pub(super) http_protocol_ipv6: Option<String>,
    pub(super) dry_run: Option<bool>,
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
        http_protocol_ipv6: req
            .http_protocol_ipv6
            .or(Some(i.metadata.http_protocol_ipv6.clone())),
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
            "HttpProtocolIpv6": m.http_protocol_ipv6,
            "InstanceMetadataTags": m.instance_metadata_tags,
        },
    }))
}
