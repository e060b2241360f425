//! Images: DescribeImages over each region's public catalogue (`kumori-catalog`): Amazon
//! Linux 2023 and 2, Ubuntu LTS, Debian and Windows Server images with AWS's owners, names and
//! attributes, each EBS-backed with its root snapshot. Images of the account's own
//! (CreateImage, CopyImage) come with instances.

use super::common::{
    Filter, Filterable, check_filters, dry_run, filter_names, json_values, matches, page_output,
    paginate,
};
use crate::{Ctx, Error, Result, input};
use kumori_protocol::AwsError;
use serde::Deserialize;
use serde_json::Value;

/// A catalogue image as the filters see it.
struct ImageRow<'a>(&'a Value);

/// Each documented filter and where in `Image` its values live (lists flattened).
const FILTER_PATHS: &[(&str, &[&str])] = &[
    ("architecture", &["Architecture"]),
    (
        "block-device-mapping.delete-on-termination",
        &["BlockDeviceMappings", "Ebs", "DeleteOnTermination"],
    ),
    (
        "block-device-mapping.device-name",
        &["BlockDeviceMappings", "DeviceName"],
    ),
    (
        "block-device-mapping.encrypted",
        &["BlockDeviceMappings", "Ebs", "Encrypted"],
    ),
    (
        "block-device-mapping.snapshot-id",
        &["BlockDeviceMappings", "Ebs", "SnapshotId"],
    ),
    (
        "block-device-mapping.volume-size",
        &["BlockDeviceMappings", "Ebs", "VolumeSize"],
    ),
    (
        "block-device-mapping.volume-type",
        &["BlockDeviceMappings", "Ebs", "VolumeType"],
    ),
    ("creation-date", &["CreationDate"]),
    ("description", &["Description"]),
    ("ena-support", &["EnaSupport"]),
    ("hypervisor", &["Hypervisor"]),
    ("image-id", &["ImageId"]),
    ("image-type", &["ImageType"]),
    ("imds-support", &["ImdsSupport"]),
    ("is-public", &["Public"]),
    ("kernel-id", &["KernelId"]),
    ("manifest-location", &["ImageLocation"]),
    ("name", &["Name"]),
    ("owner-alias", &["ImageOwnerAlias"]),
    ("owner-id", &["OwnerId"]),
    ("platform", &["Platform"]),
    ("platform-details", &["PlatformDetails"]),
    ("product-code", &["ProductCodes", "ProductCodeId"]),
    ("product-code.type", &["ProductCodes", "ProductCodeType"]),
    ("ramdisk-id", &["RamdiskId"]),
    ("root-device-name", &["RootDeviceName"]),
    ("root-device-type", &["RootDeviceType"]),
    ("source-image-id", &["SourceImageId"]),
    ("source-image-region", &["SourceImageRegion"]),
    ("source-instance-id", &["SourceInstanceId"]),
    ("sriov-net-support", &["SriovNetSupport"]),
    ("state", &["State"]),
    ("state-reason-code", &["StateReason", "Code"]),
    ("state-reason-message", &["StateReason", "Message"]),
    ("usage-operation", &["UsageOperation"]),
    ("virtualization-type", &["VirtualizationType"]),
];

const FILTER_NAMES: &[&str] = filter_names!(FILTER_PATHS);

impl Filterable for ImageRow<'_> {
    const FILTERS: &'static [&'static str] = FILTER_NAMES;
    fn field(&self, name: &str) -> Vec<String> {
        let mut out = Vec::new();
        if let Some((_, path)) = FILTER_PATHS.iter().find(|(n, _)| *n == name) {
            json_values(self.0, path, &mut out);
        }
        out
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeImagesRequest {
    #[serde(default)]
    image_ids: Vec<String>,
    #[serde(default)]
    owners: Vec<String>,
    #[serde(default)]
    executable_users: Vec<String>,
    #[serde(default)]
    filters: Vec<Filter>,
    include_deprecated: Option<bool>,
    max_results: Option<i64>,
    next_token: Option<String>,
    dry_run: Option<bool>,
}

fn str_of<'a>(v: &'a Value, member: &str) -> &'a str {
    v[member].as_str().unwrap_or_default()
}

pub async fn describe_images(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DescribeImagesRequest = input(raw)?;
    check_filters::<ImageRow>(&req.filters)?;
    for id in &req.image_ids {
        if !id.starts_with("ami-") {
            return Err(Error(AwsError::new(
                "InvalidAMIID.Malformed",
                format!("Invalid id: \"{id}\" (expecting \"ami-...\")"),
            )));
        }
    }
    let images = kumori_catalog::public_images(ctx.region);
    if let Some(missing) = req
        .image_ids
        .iter()
        .find(|id| !images.iter().any(|i| str_of(i, "ImageId") == id.as_str()))
    {
        return Err(Error(AwsError::new(
            "InvalidAMIID.NotFound",
            format!("The image id '[{missing}]' does not exist"),
        )));
    }
    dry_run(req.dry_run)?;
    let now = kumori_protocol::time::now_iso();
    let owned_by = |image: &Value, owner: &str| match owner {
        "self" => str_of(image, "OwnerId") == ctx.account,
        "amazon" | "aws-marketplace" | "aws-backup-vault" => {
            str_of(image, "ImageOwnerAlias") == owner
        }
        id => str_of(image, "OwnerId") == id,
    };
    // Catalogue images are public: `all` may launch them; no account holds an explicit
    // launch permission on them.
    let executable_by = |image: &Value, user: &str| user == "all" && image["Public"] == true;
    let selected: Vec<Value> = images
        .into_iter()
        .filter(|i| {
            req.image_ids.is_empty() || req.image_ids.iter().any(|id| id == str_of(i, "ImageId"))
        })
        .filter(|i| req.owners.is_empty() || req.owners.iter().any(|o| owned_by(i, o)))
        .filter(|i| {
            req.executable_users.is_empty()
                || req.executable_users.iter().any(|u| executable_by(i, u))
        })
        // Deprecated images stay out of listings unless asked for, by id or by flag.
        .filter(|i| {
            !req.image_ids.is_empty()
                || req.include_deprecated == Some(true)
                || i["DeprecationTime"]
                    .as_str()
                    .is_none_or(|t| t > now.as_str())
        })
        .filter(|i| matches(&ImageRow(i), &[], &req.filters))
        .collect();
    let mut sorted = selected;
    sorted.sort_by(|a, b| str_of(a, "ImageId").cmp(str_of(b, "ImageId")));
    let (page, next) = paginate(
        sorted,
        |i| str_of(i, "ImageId").to_string(),
        req.max_results,
        req.next_token.as_deref(),
    )?;
    Ok(page_output("Images", page, next))
}
