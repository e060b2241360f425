//! Launch configurations: the older, immutable way to say what a group launches.

use super::{arn, uuid, validation};
use crate::resource::{self, Resource};
use crate::{Ctx, Error, Result, input};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub(crate) const CONFIG: &str = "asg-launch-configuration";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LaunchConfiguration {
    pub launch_configuration_name: String,
    #[serde(rename = "LaunchConfigurationARN")]
    pub launch_configuration_arn: String,
    pub image_id: String,
    #[serde(default)]
    pub key_name: String,
    #[serde(default)]
    pub security_groups: Vec<String>,
    #[serde(default)]
    pub user_data: String,
    pub instance_type: String,
    #[serde(default)]
    pub kernel_id: String,
    #[serde(default)]
    pub ramdisk_id: String,
    #[serde(default)]
    pub block_device_mappings: Vec<Value>,
    pub instance_monitoring: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam_instance_profile: Option<String>,
    pub created_time: String,
    pub ebs_optimized: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub associate_public_ip_address: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_options: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement_tenancy: Option<String>,
    pub kumori_key: String,
}

impl Resource for LaunchConfiguration {
    const KIND: &'static str = CONFIG;
    fn id(&self) -> &str {
        &self.kumori_key
    }
}

/// The store's id of launch configuration `name`.
pub fn key(name: &str) -> String {
    format!("asg-launch-configuration/{name}")
}

pub const OPERATIONS: &[crate::kit::Op] = crate::operations![
    "CreateLaunchConfiguration" => create_launch_configuration,
    "DescribeLaunchConfigurations" => describe_launch_configurations,
    "DeleteLaunchConfiguration" => delete_launch_configuration,
];

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Request {
    launch_configuration_name: Option<String>,
    image_id: Option<String>,
    key_name: Option<String>,
    #[serde(default)]
    security_groups: Vec<String>,
    user_data: Option<String>,
    instance_id: Option<String>,
    instance_type: Option<String>,
    #[serde(default)]
    block_device_mappings: Vec<Value>,
    instance_monitoring: Option<Value>,
    iam_instance_profile: Option<String>,
    ebs_optimized: Option<bool>,
    associate_public_ip_address: Option<bool>,
    placement_tenancy: Option<String>,
    metadata_options: Option<Value>,
    #[serde(default)]
    launch_configuration_names: Vec<String>,
    max_records: Option<i64>,
    next_token: Option<String>,
}

pub async fn create_launch_configuration(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: Request = input(raw)?;
    let name = req.launch_configuration_name.clone().unwrap_or_default();
    if req.instance_id.is_some() {
        return Err(Error(kumori_protocol::AwsError::not_implemented(
            "autoscaling",
            "CreateLaunchConfiguration from an InstanceId",
        )));
    }
    let image_id = req
        .image_id
        .clone()
        .ok_or_else(|| validation("ImageId is required when creating a launch configuration"))?;
    let instance_type = req.instance_type.clone().ok_or_else(|| {
        validation("InstanceType is required when creating a launch configuration")
    })?;
    let mut tx = ctx.store.write().await?;
    if resource::lock::<LaunchConfiguration>(ctx, &mut tx, &key(&name))
        .await?
        .is_some()
    {
        return Err(Error::new(
            "AlreadyExists",
            format!(
                "Launch Configuration by this name already exists - A launch configuration already exists with the name {name}"
            ),
        ));
    }
    if tx.count(ctx.scope(), CONFIG).await? >= 200 {
        return Err(Error::new(
            "LimitExceeded",
            "You have reached your limit of 200 launch configurations",
        ));
    }
    let lc = LaunchConfiguration {
        launch_configuration_arn: arn(
            ctx,
            &format!(
                "launchConfiguration:{}:launchConfigurationName/{name}",
                uuid()
            ),
        ),
        launch_configuration_name: name.clone(),
        image_id,
        key_name: req.key_name.unwrap_or_default(),
        security_groups: req.security_groups,
        user_data: req.user_data.unwrap_or_default(),
        instance_type,
        kernel_id: String::new(),
        ramdisk_id: String::new(),
        block_device_mappings: req.block_device_mappings,
        instance_monitoring: req
            .instance_monitoring
            .unwrap_or_else(|| json!({ "Enabled": true })),
        iam_instance_profile: req.iam_instance_profile,
        created_time: kumori_protocol::time::now_iso(),
        ebs_optimized: req.ebs_optimized.unwrap_or(false),
        associate_public_ip_address: req.associate_public_ip_address,
        metadata_options: req.metadata_options,
        placement_tenancy: req.placement_tenancy,
        kumori_key: key(&name),
    };
    resource::insert(ctx, &mut tx, &lc).await?;
    tx.commit().await?;
    Ok(json!({}))
}

pub async fn describe_launch_configurations(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: Request = input(raw)?;
    let mut tx = ctx.store.read().await?;
    let all: Vec<LaunchConfiguration> = resource::list(ctx, &mut tx).await?;
    let items: Vec<(String, LaunchConfiguration)> = all
        .into_iter()
        .filter(|l| {
            req.launch_configuration_names.is_empty()
                || req
                    .launch_configuration_names
                    .contains(&l.launch_configuration_name)
        })
        .map(|l| (l.launch_configuration_name.clone(), l))
        .collect();
    Ok(super::page(
        items,
        "LaunchConfigurations",
        req.next_token.as_deref(),
        req.max_records,
        100,
        50,
    ))
}

pub async fn delete_launch_configuration(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: Request = input(raw)?;
    let name = req.launch_configuration_name.clone().unwrap_or_default();
    let mut tx = ctx.store.write().await?;
    if resource::lock::<LaunchConfiguration>(ctx, &mut tx, &key(&name))
        .await?
        .is_none()
    {
        return Err(validation(format!(
            "Launch configuration name not found - Launch configuration {name} not found"
        )));
    }
    let groups: Vec<super::Group> = resource::list(ctx, &mut tx).await?;
    if groups
        .iter()
        .any(|g| g.launch_configuration_name.as_deref() == Some(name.as_str()))
    {
        return Err(Error::new(
            "ResourceInUse",
            format!(
                "Cannot delete launch configuration {name} because it is attached to AutoScalingGroup"
            ),
        ));
    }
    tx.delete(ctx.scope(), &key(&name)).await?;
    tx.commit().await?;
    Ok(json!({}))
}
