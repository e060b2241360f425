//! Images: the public catalogue of each region (`kumori-catalog`: Amazon Linux 2023 and 2,
//! Ubuntu LTS, Debian and Windows Server, with AWS's owners, names and attributes) and the
//! account's own images, made by CreateImage from an instance or by CopyImage, each with
//! snapshots of its volumes. DescribeImages, DeregisterImage, image attributes and launch
//! permissions.
//!
//! An own image is kept as EC2's `Image` shape plus what is not shown with it (launch
//! permissions, the client token of the copy that made it), so catalogue and own images
//! are filtered and shown by the same code.

use super::common::{
    Filter, Filterable, Tag, TagSpecification, check_filters, dry_run, filter_names, invalid_value,
    json_values, matches, page_output, paginate, put_tags, tags_by_resource, tags_from_specs,
    tags_of,
};
use super::instances::Instance;
use super::snapshots::{Modifications, Permission, Snapshot, apply_permissions, new_snapshot};
use crate::resource::{self, Resource, new_id};
use crate::{Ctx, Error, Result, input, output};
use kumori_store::Tx;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// An image of the account's own.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OwnImage {
    pub image_id: String,
    /// EC2's `Image` shape, without `Public` and `Tags`, which are worked out when shown.
    pub image: Value,
    #[serde(default)]
    pub launch_permissions: Vec<Permission>,
    #[serde(default)]
    pub client_token: Option<String>,
    /// The captured root-volume layers an instance launched from it runs on, bottom first
    /// (its source image's, then its own): ids of the images that captured them. Kept only
    /// where a data plane runs instances. Internal, never shown.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<String>,
}

impl Resource for OwnImage {
    const KIND: &'static str = "image";
    fn id(&self) -> &str {
        &self.image_id
    }
}

impl OwnImage {
    fn public(&self) -> bool {
        self.launch_permissions
            .iter()
            .any(|p| p.group.as_deref() == Some("all"))
    }
    fn shown(&self, tags: &[Tag]) -> Result<Value> {
        let mut v = self.image.clone();
        v["Public"] = json!(self.public());
        if !tags.is_empty() {
            v["Tags"] = output(&tags)?;
        }
        Ok(v)
    }
    fn snapshot_ids(&self) -> Vec<String> {
        let mut out = Vec::new();
        json_values(
            &self.image,
            &["BlockDeviceMappings", "Ebs", "SnapshotId"],
            &mut out,
        );
        out
    }
}

/// How long a deregistered image's id still describes as empty rather than unknown.
const DEREGISTERED_VISIBLE_SECS: u64 = 3600;

/// The store id of the note that image `id` was deregistered (a kind of its own, so that it
/// never reads as an image).
fn deregistered_marker(id: &str) -> String {
    format!("deregistered/{id}")
}

fn not_found(id: &str) -> Error {
    Error::new(
        "InvalidAMIID.NotFound",
        format!("The image id '[{id}]' does not exist"),
    )
}

fn check_image_id(id: &str) -> Result<()> {
    if !id.starts_with("ami-") {
        return Err(Error::new(
            "InvalidAMIID.Malformed",
            format!("Invalid id: \"{id}\" (expecting \"ami-...\")"),
        ));
    }
    Ok(())
}

/// Image `id` as EC2 shows it, from the catalogue or the account's own images; the error
/// AWS gives when there is none.
pub async fn find(ctx: &Ctx<'_>, tx: &mut Tx, id: &str) -> Result<Value> {
    check_image_id(id)?;
    if let Some(own) = resource::get::<OwnImage>(ctx, tx, id).await? {
        let tags = tags_of(ctx, tx, id).await?;
        return own.shown(&tags);
    }
    kumori_catalog::public_image(ctx.region, id).ok_or_else(|| not_found(id))
}

/// The captured layers an instance of image `id` runs on, bottom first (none for a public
/// image or one made without a data plane).
pub async fn layers_of(ctx: &Ctx<'_>, tx: &mut Tx, id: &str) -> Result<Vec<String>> {
    Ok(resource::get::<OwnImage>(ctx, tx, id)
        .await?
        .map(|i| i.layers)
        .unwrap_or_default())
}

/// The own image whose volumes come from `snapshot_id`, if one does.
pub async fn using_snapshot(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    snapshot_id: &str,
) -> Result<Option<String>> {
    Ok(resource::list::<OwnImage>(ctx, tx)
        .await?
        .into_iter()
        .find(|i| i.snapshot_ids().iter().any(|s| s == snapshot_id))
        .map(|i| i.image_id))
}

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

/// Not `generic::describe`: the catalogue's images and the account's own, with Owners/ExecutableBy,
/// are not one stored kind; and deprecated images are left out unless asked for by id or
/// IncludeDeprecated.
pub async fn describe_images(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DescribeImagesRequest = input(raw)?;
    check_filters::<ImageRow>(&req.filters)?;
    for id in &req.image_ids {
        check_image_id(id)?;
    }
    let mut tx = ctx.store.read().await?;
    let own: Vec<OwnImage> = resource::list(ctx, &mut tx).await?;
    let tags = tags_by_resource(ctx, &mut tx, OwnImage::KIND).await?;
    // An image deregistered within the hour describes as nothing, not as unknown, as on EC2.
    let mut recently_gone = Vec::new();
    for id in req
        .image_ids
        .iter()
        .filter(|id| !own.iter().any(|o| &o.image_id == *id))
    {
        if let Some(rec) = tx.get(ctx.scope(), &deregistered_marker(id)).await? {
            let at = serde_json::from_str::<Value>(&rec.body)
                .ok()
                .and_then(|v| v["At"].as_u64())
                .unwrap_or(0);
            if kumori_protocol::time::now_unix().saturating_sub(at) < DEREGISTERED_VISIBLE_SECS {
                recently_gone.push(id.clone());
            }
        }
    }
    drop(tx);
    let none = Vec::new();
    // Every image with whom may launch it besides its owner and `all`: accounts named in
    // launch permissions.
    let mut images: Vec<(Value, Vec<String>)> = kumori_catalog::public_images(ctx.region)
        .into_iter()
        .map(|i| (i, Vec::new()))
        .collect();
    for o in &own {
        let users = o
            .launch_permissions
            .iter()
            .filter_map(|p| p.user_id.clone())
            .collect();
        images.push((o.shown(tags.get(&o.image_id).unwrap_or(&none))?, users));
    }
    let missing: Vec<&str> = req
        .image_ids
        .iter()
        .filter(|id| {
            !images
                .iter()
                .any(|(i, _)| str_of(i, "ImageId") == id.as_str())
                && !recently_gone.contains(id)
        })
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        // EC2 names them all: "The image ids '[ami-1, ami-2]' do not exist".
        let (noun, verb) = if missing.len() == 1 {
            ("id", "does")
        } else {
            ("ids", "do")
        };
        return Err(Error::new(
            "InvalidAMIID.NotFound",
            format!(
                "The image {noun} '[{}]' {verb} not exist",
                missing.join(", ")
            ),
        ));
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
    let executable_by = |image: &Value, users: &[String], user: &str| match user {
        "all" => image["Public"] == true,
        "self" => users.iter().any(|u| u == ctx.account),
        id => users.iter().any(|u| u == id),
    };
    let mut selected: Vec<Value> = images
        .into_iter()
        .filter(|(i, _)| {
            req.image_ids.is_empty() || req.image_ids.iter().any(|id| id == str_of(i, "ImageId"))
        })
        .filter(|(i, _)| req.owners.is_empty() || req.owners.iter().any(|o| owned_by(i, o)))
        .filter(|(i, users)| {
            req.executable_users.is_empty()
                || req
                    .executable_users
                    .iter()
                    .any(|u| executable_by(i, users, u))
        })
        // Deprecated images stay out of listings unless asked for, by id or by flag.
        .filter(|(i, _)| {
            !req.image_ids.is_empty()
                || req.include_deprecated == Some(true)
                || i["DeprecationTime"]
                    .as_str()
                    .is_none_or(|t| t > now.as_str())
        })
        .filter(|(i, _)| {
            let tags: Vec<Tag> = serde_json::from_value(i["Tags"].clone()).unwrap_or_default();
            matches(&ImageRow(i), &tags, &req.filters)
        })
        .map(|(i, _)| i)
        .collect();
    selected.sort_by(|a, b| str_of(a, "ImageId").cmp(str_of(b, "ImageId")));
    let (page, next) = paginate(
        selected,
        |i| str_of(i, "ImageId").to_string(),
        req.max_results,
        req.next_token.as_deref(),
    )?;
    Ok(page_output("Images", page, next))
}

/// AMI names: 3–128 characters of letters, digits, spaces and `()[]./-'@_`.
fn check_name(name: &str) -> Result<()> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || " ()[]./-'@_".contains(c);
    let n = name.chars().count();
    if !(3..=128).contains(&n) || !name.chars().all(ok_char) {
        return Err(Error::new(
            "InvalidAMIName.Malformed",
            format!(
                "AMI name '{name}' is not valid: AMI names must be between 3 and 128 characters long, and may contain letters, numbers, spaces, '(', ')', '[', ']', '.', '/', '-', ''', '@' and '_'."
            ),
        ));
    }
    Ok(())
}

fn check_description(d: &str) -> Result<()> {
    if d.chars().count() > 255 {
        return Err(invalid_value(
            "The description of an image may be at most 255 characters.",
        ));
    }
    Ok(())
}

/// `InvalidAMIName.Duplicate` when the account already has an image called `name` here.
async fn check_unique_name(ctx: &Ctx<'_>, tx: &mut Tx, name: &str) -> Result<()> {
    if let Some(other) = resource::list::<OwnImage>(ctx, tx)
        .await?
        .into_iter()
        .find(|i| i.image["Name"] == name)
    {
        return Err(Error::new(
            "InvalidAMIName.Duplicate",
            format!(
                "AMI name {name} is already in use by AMI {}",
                other.image_id
            ),
        ));
    }
    Ok(())
}

/// The refusal for changing an image the account does not own.
fn not_owner(id: &str) -> Error {
    Error::new("AuthFailure", format!("Not authorized for image:{id}"))
}

/// The own image `id`, locked; for an image of the catalogue, the refusal to change it.
async fn lock_own(ctx: &Ctx<'_>, tx: &mut Tx, id: &str) -> Result<OwnImage> {
    check_image_id(id)?;
    if let Some(own) = resource::lock::<OwnImage>(ctx, tx, id).await? {
        return Ok(own);
    }
    if kumori_catalog::public_images(ctx.region)
        .iter()
        .any(|i| i["ImageId"] == id)
    {
        return Err(not_owner(id));
    }
    Err(not_found(id))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MappingIn {
    device_name: Option<String>,
    no_device: Option<String>,
    ebs: Option<EbsIn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EbsIn {
    volume_size: Option<i64>,
    volume_type: Option<String>,
    delete_on_termination: Option<bool>,
    iops: Option<i64>,
    throughput: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateImageRequest {
    instance_id: String,
    name: String,
    description: Option<String>,
    no_reboot: Option<bool>,
    #[serde(default)]
    block_device_mappings: Vec<MappingIn>,
    #[serde(default)]
    tag_specifications: Vec<TagSpecification>,
    dry_run: Option<bool>,
}

pub async fn create_image(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: CreateImageRequest = input(raw)?;
    // Without NoReboot AWS reboots a running instance to image it consistently; kumori's
    // instances have nothing to flush, so the flag changes nothing visible.
    let _ = req.no_reboot;
    check_name(&req.name)?;
    if let Some(d) = &req.description {
        check_description(d)?;
    }
    // Tags may go to the image and to the snapshots it makes.
    let (for_snapshots, for_image): (Vec<TagSpecification>, Vec<TagSpecification>) = req
        .tag_specifications
        .iter()
        .cloned()
        .partition(|s| s.resource_type.as_deref() == Some(Snapshot::KIND));
    let image_tags = tags_from_specs(&for_image, OwnImage::KIND)?;
    let snapshot_tags = tags_from_specs(&for_snapshots, Snapshot::KIND)?;
    let mut tx = ctx.store.write().await?;
    let instance: Instance = resource::lock(ctx, &mut tx, &req.instance_id)
        .await?
        .filter(|i: &Instance| i.state != "terminated")
        .ok_or_else(|| {
            Error::new(
                "InvalidInstanceID.NotFound",
                format!("The instance ID '{}' does not exist", req.instance_id),
            )
        })?;
    if !matches!(instance.state.as_str(), "running" | "stopped") {
        return Err(Error::new(
            "IncorrectInstanceState",
            format!(
                "Instance '{}' is {}; an image can be made only of a running or stopped instance.",
                instance.instance_id, instance.state
            ),
        ));
    }
    check_unique_name(ctx, &mut tx, &req.name).await?;
    dry_run(req.dry_run)?;
    let image_id = new_id("ami");
    let source = find(ctx, &mut tx, &instance.image_id).await.ok();
    let mut volumes = super::volumes::of_instance(ctx, &mut tx, &instance.instance_id).await?;
    // The root device first, then the others by device name.
    volumes.sort_by_key(|v| {
        let device = v.attachments[0].device.clone();
        (device != instance.root_device_name, device)
    });
    let asked = |device: &str| {
        req.block_device_mappings
            .iter()
            .find(|m| m.device_name.as_deref() == Some(device))
    };
    let mut mappings = Vec::new();
    let mut snapshots = Vec::new();
    for v in &volumes {
        let a = &v.attachments[0];
        let m = asked(&a.device);
        if m.is_some_and(|m| m.no_device.is_some()) {
            continue;
        }
        let ebs = m.and_then(|m| m.ebs.as_ref());
        let s = new_snapshot(
            ctx,
            &v.volume_id,
            v.size,
            format!(
                "Created by CreateImage({}) for {image_id}",
                instance.instance_id
            ),
        );
        let size = ebs.and_then(|e| e.volume_size).unwrap_or(v.size);
        if size < v.size {
            return Err(Error::new(
                "InvalidBlockDeviceMapping",
                format!(
                    "Volume of size {size}GB is smaller than snapshot '{}', expect size >= {}GB",
                    s.snapshot_id, v.size
                ),
            ));
        }
        let mut e = json!({
            "DeleteOnTermination": ebs
                .and_then(|e| e.delete_on_termination)
                .unwrap_or(a.delete_on_termination),
            "SnapshotId": s.snapshot_id,
            "VolumeSize": size,
            "VolumeType": ebs.and_then(|e| e.volume_type.clone()).unwrap_or_else(|| v.volume_type.clone()),
            "Encrypted": v.encrypted,
        });
        if let Some(iops) = ebs.and_then(|e| e.iops).or(v.iops)
            && e["VolumeType"] != "gp2"
        {
            e["Iops"] = json!(iops);
        }
        if let Some(tp) = ebs.and_then(|e| e.throughput).or(v.throughput) {
            e["Throughput"] = json!(tp);
        }
        mappings.push(json!({ "DeviceName": a.device, "Ebs": e }));
        snapshots.push(s);
    }
    // Mappings for devices the instance has no volume at: empty volumes of a given size.
    for m in &req.block_device_mappings {
        let Some(device) = &m.device_name else {
            continue;
        };
        if volumes.iter().any(|v| v.attachments[0].device == *device) || m.no_device.is_some() {
            continue;
        }
        let Some(ebs) = &m.ebs else { continue };
        let size = ebs.volume_size.ok_or_else(|| {
            Error::new(
                "InvalidBlockDeviceMapping",
                format!("The mapping for {device} needs a volume size."),
            )
        })?;
        let volume_type = ebs.volume_type.clone().unwrap_or_else(|| "gp2".into());
        super::volumes::check_spec(&volume_type, size, ebs.iops, ebs.throughput)?;
        mappings.push(json!({
            "DeviceName": device,
            "Ebs": {
                "DeleteOnTermination": ebs.delete_on_termination.unwrap_or(true),
                "VolumeSize": size,
                "VolumeType": volume_type,
                "Encrypted": false,
            },
        }));
    }
    // Where a data plane runs the instance, the image is pending until it has captured the
    // root volume's files; instances launched from it start with them.
    let real = crate::ec2::instances::real_boots();
    let mut layers = Vec::new();
    if real {
        layers = layers_of(ctx, &mut tx, &instance.image_id).await?;
        layers.push(image_id.clone());
    }
    let mut image = json!({
        "ImageId": image_id,
        "ImageLocation": format!("{}/{}", ctx.account, req.name),
        "State": if real { "pending" } else { "available" },
        "OwnerId": ctx.account,
        "CreationDate": kumori_protocol::time::now_iso(),
        "Architecture": instance.architecture,
        "ImageType": "machine",
        "Name": req.name,
        "RootDeviceName": instance.root_device_name,
        "RootDeviceType": "ebs",
        "VirtualizationType": instance.virtualization_type,
        "Hypervisor": "xen",
        "EnaSupport": true,
        "SriovNetSupport": "simple",
        "PlatformDetails": instance.platform_details,
        "UsageOperation": instance.usage_operation,
        "BlockDeviceMappings": mappings,
        "SourceInstanceId": instance.instance_id,
    });
    if let Some(d) = &req.description {
        image["Description"] = json!(d);
    }
    if let Some(p) = &instance.platform {
        image["Platform"] = json!(p);
    }
    for key in ["BootMode", "ImdsSupport", "TpmSupport"] {
        if let Some(v) = source.as_ref().map(|s| &s[key]).filter(|v| !v.is_null()) {
            image[key] = v.clone();
        }
    }
    let own = OwnImage {
        image_id: image_id.clone(),
        image,
        launch_permissions: vec![],
        client_token: None,
        layers,
    };
    for s in &snapshots {
        resource::insert(ctx, &mut tx, s).await?;
        put_tags(ctx, &mut tx, &s.snapshot_id, Snapshot::KIND, &snapshot_tags).await?;
    }
    resource::insert(ctx, &mut tx, &own).await?;
    put_tags(ctx, &mut tx, &image_id, OwnImage::KIND, &image_tags).await?;
    tx.commit().await?;
    Ok(json!({ "ImageId": image_id }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CopyImageRequest {
    source_image_id: String,
    source_region: String,
    name: String,
    description: Option<String>,
    client_token: Option<String>,
    encrypted: Option<bool>,
    copy_image_tags: Option<bool>,
    #[serde(default)]
    tag_specifications: Vec<TagSpecification>,
    dry_run: Option<bool>,
}

pub async fn copy_image(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: CopyImageRequest = input(raw)?;
    check_image_id(&req.source_image_id)?;
    if super::regions::zones(&req.source_region).is_empty() {
        return Err(invalid_value(format!(
            "Value ({}) for parameter sourceRegion is invalid. The region does not exist.",
            req.source_region
        )));
    }
    check_name(&req.name)?;
    if let Some(d) = &req.description {
        check_description(d)?;
    }
    let mut tags = tags_from_specs(&req.tag_specifications, OwnImage::KIND)?;
    let source_ctx = Ctx {
        region: &req.source_region,
        ..*ctx
    };
    let mut tx = ctx.store.write().await?;
    if let Some(token) = &req.client_token
        && let Some(done) = resource::list::<OwnImage>(ctx, &mut tx)
            .await?
            .into_iter()
            .find(|i| i.client_token.as_ref() == Some(token))
    {
        return Ok(json!({ "ImageId": done.image_id }));
    }
    let source = find(&source_ctx, &mut tx, &req.source_image_id).await?;
    if source["OwnerId"] != ctx.account && source["Public"] != true {
        return Err(not_found(&req.source_image_id));
    }
    check_unique_name(ctx, &mut tx, &req.name).await?;
    dry_run(req.dry_run)?;
    let image_id = new_id("ami");
    let mut image = source.clone();
    let mut snapshots = Vec::new();
    let encrypt = req.encrypted == Some(true);
    for m in image["BlockDeviceMappings"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        let e = &mut m["Ebs"];
        let Some(from) = e["SnapshotId"].as_str().map(str::to_string) else {
            continue;
        };
        let mut s = new_snapshot(
            ctx,
            "vol-ffffffff",
            e["VolumeSize"].as_i64().unwrap_or(8),
            format!(
                "Copied for DestinationAmi {image_id} from SourceAmi {} for SourceSnapshot {from}. Task created on {}.",
                req.source_image_id,
                kumori_protocol::time::now_iso()
            ),
        );
        s.encrypted = encrypt || e["Encrypted"] == true;
        e["SnapshotId"] = json!(s.snapshot_id);
        e["Encrypted"] = json!(s.encrypted);
        snapshots.push(s);
    }
    if let Some(o) = image.as_object_mut() {
        for key in [
            "ImageOwnerAlias",
            "DeprecationTime",
            "Public",
            "Tags",
            "SourceInstanceId",
            "LastLaunchedTime",
        ] {
            o.remove(key);
        }
    }
    image["ImageId"] = json!(image_id);
    image["OwnerId"] = json!(ctx.account);
    image["Name"] = json!(req.name);
    image["ImageLocation"] = json!(format!("{}/{}", ctx.account, req.name));
    image["CreationDate"] = json!(kumori_protocol::time::now_iso());
    image["State"] = json!("available");
    image["SourceImageId"] = json!(req.source_image_id);
    image["SourceImageRegion"] = json!(req.source_region);
    match &req.description {
        Some(d) => image["Description"] = json!(d),
        None => {
            if let Some(o) = image.as_object_mut() {
                o.remove("Description");
            }
        }
    }
    if req.copy_image_tags == Some(true) {
        let source_tags: Vec<Tag> =
            serde_json::from_value(source["Tags"].clone()).unwrap_or_default();
        for t in source_tags {
            if !tags.iter().any(|x| x.key == t.key) {
                tags.push(t);
            }
        }
    }
    // A copy runs on the same captured files.
    let layers = layers_of(&source_ctx, &mut tx, &req.source_image_id).await?;
    let own = OwnImage {
        image_id: image_id.clone(),
        image,
        launch_permissions: vec![],
        client_token: req.client_token.clone(),
        layers,
    };
    for s in &snapshots {
        resource::insert(ctx, &mut tx, s).await?;
    }
    resource::insert(ctx, &mut tx, &own).await?;
    put_tags(ctx, &mut tx, &image_id, OwnImage::KIND, &tags).await?;
    tx.commit().await?;
    Ok(json!({ "ImageId": image_id }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeregisterImageRequest {
    image_id: String,
    delete_associated_snapshots: Option<bool>,
    dry_run: Option<bool>,
}

pub async fn deregister_image(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DeregisterImageRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let own = lock_own(ctx, &mut tx, &req.image_id).await?;
    if own.image["DeregistrationProtection"]
        .as_str()
        .is_some_and(|p| p.starts_with("enabled"))
    {
        return Err(Error::new(
            "InvalidParameterValue",
            format!(
                "Image {} has deregistration protection enabled; disable it first.",
                own.image_id
            ),
        ));
    }
    dry_run(req.dry_run)?;
    tx.delete(ctx.scope(), &own.image_id).await?;
    let marker = kumori_store::Record {
        kind: "deregistered-image".into(),
        id: deregistered_marker(&own.image_id),
        parent: None,
        body: json!({ "At": kumori_protocol::time::now_unix() }).to_string(),
    };
    tx.insert(ctx.scope(), &marker).await?;
    let mut out = json!({ "Return": true });
    if req.delete_associated_snapshots == Some(true) {
        let mut results = Vec::new();
        for id in own.snapshot_ids() {
            if resource::lock::<Snapshot>(ctx, &mut tx, &id)
                .await?
                .is_some()
            {
                tx.delete(ctx.scope(), &id).await?;
                results.push(json!({ "SnapshotId": id, "ReturnCode": "success" }));
            }
        }
        out["DeleteSnapshotResults"] = json!(results);
    }
    tx.commit().await?;
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ImageAttributeRequest {
    attribute: String,
    image_id: String,
    dry_run: Option<bool>,
}

/// `{ Value: … }`, or nothing when the image has no such member.
fn attribute_value(v: &Value) -> Value {
    if v.is_null() {
        json!({})
    } else {
        json!({ "Value": v })
    }
}

pub async fn describe_image_attribute(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ImageAttributeRequest = input(raw)?;
    let mut tx = ctx.store.read().await?;
    let image = find(ctx, &mut tx, &req.image_id).await?;
    let own: Option<OwnImage> = resource::get(ctx, &mut tx, &req.image_id).await?;
    drop(tx);
    dry_run(req.dry_run)?;
    let mut out = json!({ "ImageId": req.image_id });
    match req.attribute.as_str() {
        "description" => out["Description"] = attribute_value(&image["Description"]),
        "kernel" => out["KernelId"] = attribute_value(&image["KernelId"]),
        "ramdisk" => out["RamdiskId"] = attribute_value(&image["RamdiskId"]),
        "sriovNetSupport" => out["SriovNetSupport"] = attribute_value(&image["SriovNetSupport"]),
        "bootMode" => out["BootMode"] = attribute_value(&image["BootMode"]),
        "tpmSupport" => out["TpmSupport"] = attribute_value(&image["TpmSupport"]),
        "imdsSupport" => out["ImdsSupport"] = attribute_value(&image["ImdsSupport"]),
        "lastLaunchedTime" => {
            out["LastLaunchedTime"] = attribute_value(&image["LastLaunchedTime"]);
        }
        "deregistrationProtection" => {
            let p = image["DeregistrationProtection"]
                .as_str()
                .unwrap_or("disabled");
            out["DeregistrationProtection"] = json!({ "Value": p });
        }
        "uefiData" => out["UefiData"] = json!({}),
        "productCodes" => out["ProductCodes"] = json!([]),
        "blockDeviceMapping" => out["BlockDeviceMappings"] = image["BlockDeviceMappings"].clone(),
        "launchPermission" => {
            let own = own.ok_or_else(|| not_owner(&req.image_id))?;
            out["LaunchPermissions"] = output(&own.launch_permissions)?;
        }
        other => {
            return Err(invalid_value(format!(
                "Value ({other}) for parameter attribute is invalid. Unknown attribute."
            )));
        }
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ModifyImageAttributeRequest {
    image_id: String,
    attribute: Option<String>,
    description: Option<StringValue>,
    launch_permission: Option<Modifications>,
    operation_type: Option<String>,
    #[serde(default)]
    user_ids: Vec<String>,
    #[serde(default)]
    user_groups: Vec<String>,
    value: Option<String>,
    imds_support: Option<StringValue>,
    dry_run: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StringValue {
    value: Option<String>,
}

pub async fn modify_image_attribute(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ModifyImageAttributeRequest = input(raw)?;
    let attribute = req.attribute.as_deref();
    let description = req.description.and_then(|d| d.value).or_else(|| {
        (attribute == Some("description"))
            .then(|| req.value.clone())
            .flatten()
    });
    if let Some(d) = &description {
        check_description(d)?;
    }
    let imds = req.imds_support.and_then(|d| d.value).or_else(|| {
        (attribute == Some("imdsSupport"))
            .then(|| req.value.clone())
            .flatten()
    });
    if let Some(v) = &imds
        && v != "v2.0"
    {
        return Err(invalid_value(format!(
            "Value ({v}) for parameter imdsSupport is invalid. The only value is v2.0."
        )));
    }
    if let Some(a) = attribute
        && !matches!(a, "launchPermission" | "description" | "imdsSupport")
    {
        return Err(invalid_value(format!(
            "Value ({a}) for parameter attribute is invalid. kumori changes launchPermission, description and imdsSupport."
        )));
    }
    let permissions = Modifications::from_request(
        req.launch_permission,
        req.operation_type.as_deref(),
        &req.user_ids,
        &req.user_groups,
        "AMI",
    )?;
    let mut tx = ctx.store.write().await?;
    let mut own = lock_own(ctx, &mut tx, &req.image_id).await?;
    dry_run(req.dry_run)?;
    if let Some(d) = description {
        own.image["Description"] = json!(d);
    }
    if let Some(v) = imds {
        // Once set to v2.0, an image's IMDS support cannot be changed back (AWS documents it).
        own.image["ImdsSupport"] = json!(v);
    }
    apply_permissions(
        &mut own.launch_permissions,
        permissions.add,
        &permissions.remove,
    );
    resource::update(ctx, &mut tx, &own).await?;
    tx.commit().await?;
    Ok(json!({}))
}

pub async fn reset_image_attribute(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ImageAttributeRequest = input(raw)?;
    if req.attribute != "launchPermission" {
        return Err(invalid_value(format!(
            "Value ({}) for parameter attribute is invalid. Only launchPermission can be reset.",
            req.attribute
        )));
    }
    let mut tx = ctx.store.write().await?;
    let mut own = lock_own(ctx, &mut tx, &req.image_id).await?;
    dry_run(req.dry_run)?;
    own.launch_permissions.clear();
    resource::update(ctx, &mut tx, &own).await?;
    tx.commit().await?;
    Ok(json!({}))
}
