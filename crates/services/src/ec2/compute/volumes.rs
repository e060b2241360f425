//! EBS volumes: CreateVolume, DescribeVolumes, AttachVolume, DetachVolume, DeleteVolume, and
//! the root volumes instances launch with.
//!
//! A volume lives in one zone and attaches to instances of that zone at a device name no other
//! volume of the instance uses. Size, IOPS and throughput are checked per volume type as AWS
//! documents them. Answers show the state a call starts (`creating`, `attaching`,
//! `detaching`); describes show where it ends. A volume may start from one of the account's
//! snapshots or from a public image's root snapshot.

use super::common::{
    Filter, Filterable, TagSpecification, dry_run, invalid_value, put_tags, tags_from_specs,
};
use super::generic::{DescribeArgs, Ec2Resource, check_id, describe};
use super::instances::Instance;
use crate::resource::{self, Resource, new_id};
use crate::{Ctx, Error, Result, input, output};
use kumori_protocol::AwsError;
use kumori_store::Tx;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Volume {
    pub volume_id: String,
    pub size: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    pub availability_zone: String,
    pub state: String,
    pub create_time: String,
    pub attachments: Vec<Attachment>,
    pub volume_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iops: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throughput: Option<i64>,
    pub encrypted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    pub multi_attach_enabled: bool,
}

/// The account's default EBS key (`aws/ebs`), as an encrypted volume without a key shows it.
pub fn default_kms_key(ctx: &Ctx<'_>) -> String {
    let h = kumori_catalog::stable_id("k", ctx.region, &format!("{}/aws/ebs", ctx.account));
    let hex = &h[2..];
    let uuid = format!(
        "{}-{}-4{}-8{}-{:0<12}",
        &hex[..8],
        &hex[8..12],
        &hex[12..15],
        &hex[15..17],
        &hex[..12]
    );
    format!(
        "arn:{}:kms:{}:{}:key/{uuid}",
        crate::resource::partition(ctx.region),
        ctx.region,
        ctx.account
    )
}

/// A KMS key as EBS takes it: a key id, an alias, or either's ARN; a bare key id is shown as
/// the key's ARN, as EC2 shows it.
fn check_kms_key(ctx: &Ctx<'_>, key: &str) -> Result<String> {
    let uuid = |s: &str| {
        s.len() == 36
            && s.char_indices().all(|(i, c)| {
                if [8, 13, 18, 23].contains(&i) {
                    c == '-'
                } else {
                    c.is_ascii_hexdigit()
                }
            })
    };
    if uuid(key) {
        return Ok(format!(
            "arn:{}:kms:{}:{}:key/{key}",
            crate::resource::partition(ctx.region),
            ctx.region,
            ctx.account
        ));
    }
    let arn_ok = key.starts_with("arn:")
        && key.split(':').nth(2) == Some("kms")
        && key.rsplit_once(':').is_some_and(|(_, r)| {
            r.strip_prefix("key/").is_some_and(uuid) || r.starts_with("alias/")
        });
    if arn_ok || (key.starts_with("alias/") && key.len() > 6) {
        return Ok(key.to_string());
    }
    Err(invalid_value(format!(
        "Invalid id: \"{key}\" (expecting a KMS key id, alias, or the ARN of either)"
    )))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Attachment {
    pub attach_time: String,
    pub device: String,
    pub instance_id: String,
    pub state: String,
    pub volume_id: String,
    pub delete_on_termination: bool,
}

impl Resource for Volume {
    const KIND: &'static str = "volume";
    fn id(&self) -> &str {
        &self.volume_id
    }
}

impl Ec2Resource for Volume {
    const ID_PREFIX: &'static str = "vol";
    const ID_ERROR: &'static str = "InvalidVolumeID";
    fn not_found(id: &str) -> Error {
        Error::new(
            "InvalidVolume.NotFound",
            format!("The volume '{id}' does not exist."),
        )
    }
}

impl Filterable for Volume {
    const FILTERS: &'static [&'static str] = &[
        "attachment.attach-time",
        "attachment.delete-on-termination",
        "attachment.device",
        "attachment.instance-id",
        "attachment.status",
        "availability-zone",
        "create-time",
        "encrypted",
        "multi-attach-enabled",
        "size",
        "snapshot-id",
        "status",
        "volume-id",
        "volume-type",
    ];
    fn field(&self, name: &str) -> Vec<String> {
        let a = self.attachments.iter();
        match name {
            "attachment.attach-time" => a.map(|x| x.attach_time.clone()).collect(),
            "attachment.delete-on-termination" => {
                a.map(|x| x.delete_on_termination.to_string()).collect()
            }
            "attachment.device" => a.map(|x| x.device.clone()).collect(),
            "attachment.instance-id" => a.map(|x| x.instance_id.clone()).collect(),
            "attachment.status" => a.map(|x| x.state.clone()).collect(),
            "availability-zone" => vec![self.availability_zone.clone()],
            "create-time" => vec![self.create_time.clone()],
            "encrypted" => vec![self.encrypted.to_string()],
            "multi-attach-enabled" => vec![self.multi_attach_enabled.to_string()],
            "size" => vec![self.size.to_string()],
            "snapshot-id" => self.snapshot_id.clone().into_iter().collect(),
            "status" => vec![self.state.clone()],
            "volume-id" => vec![self.volume_id.clone()],
            "volume-type" => vec![self.volume_type.clone()],
            _ => vec![],
        }
    }
}

/// A volume's size, IOPS and throughput, checked for its type as AWS documents them; the
/// IOPS and throughput it gets when they are not given.
pub fn check_spec(
    volume_type: &str,
    size: i64,
    iops: Option<i64>,
    throughput: Option<i64>,
) -> Result<(Option<i64>, Option<i64>)> {
    let (min, max) = match volume_type {
        "gp2" | "gp3" => (1, 16384),
        "io1" | "io2" => (4, 16384),
        "st1" | "sc1" => (125, 16384),
        _ => (1, 1024),
    };
    if !(min..=max).contains(&size) {
        return Err(invalid_value(format!(
            "Volume of {size}GiB is not valid for type {volume_type}: the size must be between {min} and {max} GiB."
        )));
    }
    if throughput.is_some() && volume_type != "gp3" {
        return Err(invalid_value(format!(
            "Throughput can only be set for gp3 volumes, not {volume_type}."
        )));
    }
    match volume_type {
        "gp3" => {
            let iops = iops.unwrap_or(3000);
            if !(3000..=16000).contains(&iops) || iops > 500 * size.max(6) {
                return Err(invalid_value(format!(
                    "The IOPS {iops} is not valid for a gp3 volume of {size} GiB: 3000-16000, at most 500 per GiB."
                )));
            }
            let tp = throughput.unwrap_or(125);
            if !(125..=1000).contains(&tp) {
                return Err(invalid_value(format!(
                    "The throughput {tp} MiB/s is not valid for a gp3 volume: 125-1000."
                )));
            }
            Ok((Some(iops), Some(tp)))
        }
        "io1" | "io2" => {
            let iops = iops.ok_or_else(|| {
                Error::new(
                    "MissingParameter",
                    format!(
                        "The request must contain the parameter iops for {volume_type} volumes."
                    ),
                )
            })?;
            let (top, ratio) = if volume_type == "io1" {
                (64000, 50)
            } else {
                (256000, 1000)
            };
            if !(100..=top).contains(&iops) || iops > ratio * size {
                return Err(invalid_value(format!(
                    "The IOPS {iops} is not valid for an {volume_type} volume of {size} GiB: 100-{top}, at most {ratio} per GiB."
                )));
            }
            Ok((Some(iops), None))
        }
        "gp2" => {
            if iops.is_some() {
                return Err(invalid_value("IOPS cannot be set for gp2 volumes."));
            }
            Ok((Some((3 * size).clamp(100, 16000)), None))
        }
        _ => {
            if iops.is_some() {
                return Err(invalid_value(format!(
                    "IOPS cannot be set for {volume_type} volumes."
                )));
            }
            Ok((None, None))
        }
    }
}

/// Creates a volume attached to an instance at launch (inside the caller's transaction).
#[allow(clippy::too_many_arguments)]
pub async fn create_attached(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    zone: &str,
    instance_id: &str,
    device: &str,
    spec: (&str, i64, Option<i64>, Option<i64>),
    snapshot_id: Option<String>,
    delete_on_termination: bool,
    now: &str,
) -> Result<Volume> {
    let (volume_type, size, iops, throughput) = spec;
    let (iops, throughput) = check_spec(volume_type, size, iops, throughput)?;
    let volume_id = new_id("vol");
    let v = Volume {
        attachments: vec![Attachment {
            attach_time: now.to_string(),
            device: device.to_string(),
            instance_id: instance_id.to_string(),
            state: "attached".into(),
            volume_id: volume_id.clone(),
            delete_on_termination,
        }],
        volume_id,
        size,
        snapshot_id,
        availability_zone: zone.to_string(),
        state: "in-use".into(),
        create_time: now.to_string(),
        volume_type: volume_type.to_string(),
        iops,
        throughput,
        encrypted: false,
        kms_key_id: None,
        multi_attach_enabled: false,
    };
    resource::insert(ctx, tx, &v).await?;
    Ok(v)
}

/// The volumes attached to `instance_id`.
pub async fn of_instance(ctx: &Ctx<'_>, tx: &mut Tx, instance_id: &str) -> Result<Vec<Volume>> {
    Ok(resource::list::<Volume>(ctx, tx)
        .await?
        .into_iter()
        .filter(|v| v.attachments.iter().any(|a| a.instance_id == instance_id))
        .collect())
}

/// At termination: volumes marked DeleteOnTermination go, the others are detached.
pub async fn release_for_terminated(ctx: &Ctx<'_>, tx: &mut Tx, instance_id: &str) -> Result<()> {
    for mut v in of_instance(ctx, tx, instance_id).await? {
        if v.attachments.iter().any(|a| a.delete_on_termination) {
            tx.delete(ctx.scope(), &v.volume_id).await?;
            tx.delete(ctx.scope(), &modification_key(&v.volume_id))
                .await?;
        } else {
            v.attachments.clear();
            v.state = "available".into();
            resource::update(ctx, tx, &v).await?;
        }
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateVolumeRequest {
    availability_zone: Option<String>,
    size: Option<i64>,
    snapshot_id: Option<String>,
    volume_type: Option<String>,
    iops: Option<i64>,
    throughput: Option<i64>,
    encrypted: Option<bool>,
    kms_key_id: Option<String>,
    multi_attach_enabled: Option<bool>,
    #[serde(default)]
    tag_specifications: Vec<TagSpecification>,
    dry_run: Option<bool>,
}

pub async fn create_volume(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: CreateVolumeRequest = input(raw)?;
    let zone = req.availability_zone.clone().ok_or_else(|| {
        Error::new(
            "MissingParameter",
            "The request must contain the parameter AvailabilityZone",
        )
    })?;
    if !super::regions::zones(ctx.region)
        .iter()
        .any(|z| z.name == zone)
    {
        return Err(Error::new(
            "InvalidZone.NotFound",
            format!("The zone '{zone}' does not exist."),
        ));
    }
    let kms_key = match &req.kms_key_id {
        Some(_) if req.encrypted != Some(true) => {
            return Err(Error::new(
                "InvalidParameterDependency",
                "The parameter KmsKeyId requires the parameter Encrypted to be set.",
            ));
        }
        Some(k) => Some(check_kms_key(ctx, k)?),
        None => None,
    };
    let (snapshot_size, snapshot_encrypted, snapshot_key) = match &req.snapshot_id {
        None => (None, false, None),
        Some(id) => {
            let mut tx = ctx.store.read().await?;
            let (size, encrypted, key) = super::snapshots::restorable(ctx, &mut tx, id).await?;
            (Some(size), encrypted, key)
        }
    };
    // A volume from an encrypted snapshot is encrypted, as EBS makes it, with the
    // snapshot's key unless another is given.
    let encrypted = req.encrypted == Some(true) || snapshot_encrypted;
    let kms_key = kms_key
        .or(snapshot_key)
        .or_else(|| encrypted.then(|| default_kms_key(ctx)));
    let size = match (req.size, snapshot_size) {
        (Some(s), Some(min)) if s < min => {
            return Err(invalid_value(format!(
                "Volume of {s}GiB is smaller than snapshot '{}', expect size >= {min}GiB",
                req.snapshot_id.as_deref().unwrap_or_default()
            )));
        }
        (Some(s), _) => s,
        (None, Some(min)) => min,
        (None, None) => {
            return Err(Error::new(
                "MissingParameter",
                "The request must contain the parameter size or snapshotId",
            ));
        }
    };
    let volume_type = req.volume_type.clone().unwrap_or_else(|| "gp2".into());
    let (iops, throughput) = check_spec(&volume_type, size, req.iops, req.throughput)?;
    if req.multi_attach_enabled == Some(true) {
        return Err(Error(AwsError::not_implemented(
            "ec2",
            "Multi-Attach volumes",
        )));
    }
    let tags = tags_from_specs(&req.tag_specifications, Volume::KIND)?;
    dry_run(req.dry_run)?;
    let v = Volume {
        volume_id: new_id("vol"),
        size,
        snapshot_id: req.snapshot_id.clone(),
        availability_zone: zone,
        state: "available".into(),
        create_time: kumori_protocol::time::now_iso(),
        attachments: vec![],
        volume_type,
        iops,
        throughput,
        encrypted,
        kms_key_id: kms_key,
        multi_attach_enabled: false,
    };
    let mut tx = ctx.store.write().await?;
    resource::insert(ctx, &mut tx, &v).await?;
    put_tags(ctx, &mut tx, &v.volume_id, Volume::KIND, &tags).await?;
    tx.commit().await?;
    let mut out = v.shown(&tags)?;
    out["State"] = json!("creating");
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeVolumesRequest {
    #[serde(default)]
    volume_ids: Vec<String>,
    #[serde(default)]
    filters: Vec<Filter>,
    max_results: Option<i64>,
    next_token: Option<String>,
    dry_run: Option<bool>,
}

pub async fn describe_volumes(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DescribeVolumesRequest = input(raw)?;
    let args = DescribeArgs {
        ids: &req.volume_ids,
        filters: &req.filters,
        max_results: req.max_results,
        next_token: req.next_token.as_deref(),
        dry_run: req.dry_run,
    };
    let (items, next) = describe::<Volume>(ctx, args).await?;
    Ok(super::common::page_output("Volumes", items, next))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AttachRequest {
    device: String,
    instance_id: String,
    volume_id: String,
    dry_run: Option<bool>,
}

pub async fn attach_volume(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: AttachRequest = input(raw)?;
    check_id::<Volume>(&req.volume_id)?;
    if !req.device.starts_with("/dev/") && !req.device.starts_with("xvd") {
        return Err(invalid_value(format!(
            "Value ({}) for parameter device is invalid. {} is not a valid EBS device name.",
            req.device, req.device
        )));
    }
    let mut tx = ctx.store.write().await?;
    let mut v: Volume = resource::lock(ctx, &mut tx, &req.volume_id)
        .await?
        .ok_or_else(|| Volume::not_found(&req.volume_id))?;
    let instance: Instance = resource::lock(ctx, &mut tx, &req.instance_id)
        .await?
        .filter(|i: &Instance| i.state != "terminated")
        .ok_or_else(|| {
            Error::new(
                "InvalidInstanceID.NotFound",
                format!("The instance ID '{}' does not exist", req.instance_id),
            )
        })?;
    if let Some(a) = v.attachments.first() {
        return Err(Error::new(
            "VolumeInUse",
            format!(
                "{} is already attached to an instance ({})",
                v.volume_id, a.instance_id
            ),
        ));
    }
    if v.availability_zone != instance.availability_zone {
        return Err(Error::new(
            "InvalidVolume.ZoneMismatch",
            format!(
                "The volume '{}' is not in the same availability zone as instance '{}'",
                v.volume_id, instance.instance_id
            ),
        ));
    }
    let attached = of_instance(ctx, &mut tx, &instance.instance_id).await?;
    if attached
        .iter()
        .flat_map(|x| x.attachments.iter())
        .any(|a| a.device == req.device)
    {
        return Err(invalid_value(format!(
            "Invalid value '{}' for unixDevice. Attachment point {} is already in use",
            req.device, req.device
        )));
    }
    dry_run(req.dry_run)?;
    let attachment = Attachment {
        attach_time: kumori_protocol::time::now_iso(),
        device: req.device.clone(),
        instance_id: instance.instance_id.clone(),
        state: "attached".into(),
        volume_id: v.volume_id.clone(),
        delete_on_termination: false,
    };
    v.attachments = vec![attachment.clone()];
    v.state = "in-use".into();
    resource::update(ctx, &mut tx, &v).await?;
    tx.commit().await?;
    let mut out = output(&attachment)?;
    out["State"] = json!("attaching");
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DetachRequest {
    volume_id: String,
    instance_id: Option<String>,
    device: Option<String>,
    force: Option<bool>,
    dry_run: Option<bool>,
}

pub async fn detach_volume(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DetachRequest = input(raw)?;
    let _ = req.force;
    check_id::<Volume>(&req.volume_id)?;
    let mut tx = ctx.store.write().await?;
    let mut v: Volume = resource::lock(ctx, &mut tx, &req.volume_id)
        .await?
        .ok_or_else(|| Volume::not_found(&req.volume_id))?;
    let Some(a) = v.attachments.first().cloned() else {
        return Err(Error::new(
            "IncorrectState",
            format!("Volume '{}' is in the 'available' state.", v.volume_id),
        ));
    };
    if req
        .instance_id
        .as_ref()
        .is_some_and(|i| *i != a.instance_id)
        || req.device.as_ref().is_some_and(|d| *d != a.device)
    {
        return Err(Error::new(
            "InvalidAttachment.NotFound",
            format!("Volume '{}' is not attached as asked.", v.volume_id),
        ));
    }
    // A running instance keeps its root volume.
    if let Some(i) = resource::get::<Instance>(ctx, &mut tx, &a.instance_id).await?
        && i.root_device_name == a.device
        && i.state != "stopped"
    {
        return Err(Error::new(
            "OperationNotPermitted",
            format!(
                "The volume {} is the root device of instance {}, which must be stopped to detach it.",
                v.volume_id, i.instance_id
            ),
        ));
    }
    dry_run(req.dry_run)?;
    v.attachments.clear();
    v.state = "available".into();
    resource::update(ctx, &mut tx, &v).await?;
    tx.commit().await?;
    let mut out = output(&a)?;
    out["State"] = json!("detaching");
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteRequest {
    volume_id: String,
    dry_run: Option<bool>,
}

pub async fn delete_volume(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DeleteRequest = input(raw)?;
    check_id::<Volume>(&req.volume_id)?;
    let mut tx = ctx.store.write().await?;
    let v: Volume = resource::lock(ctx, &mut tx, &req.volume_id)
        .await?
        .ok_or_else(|| Volume::not_found(&req.volume_id))?;
    if let Some(a) = v.attachments.first() {
        return Err(Error::new(
            "VolumeInUse",
            format!(
                "Volume {} is currently attached to {}",
                v.volume_id, a.instance_id
            ),
        ));
    }
    dry_run(req.dry_run)?;
    tx.delete(ctx.scope(), &v.volume_id).await?;
    tx.delete(ctx.scope(), &modification_key(&v.volume_id))
        .await?;
    tx.commit().await?;
    Ok(json!({}))
}

/// A volume's last modification (ModifyVolume), kept beside it as `<volume-id>/modification`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeModification {
    pub volume_id: String,
    pub modification_state: String,
    pub target_size: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_iops: Option<i64>,
    pub target_volume_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_throughput: Option<i64>,
    pub target_multi_attach_enabled: bool,
    pub original_size: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_iops: Option<i64>,
    pub original_volume_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_throughput: Option<i64>,
    pub original_multi_attach_enabled: bool,
    pub progress: i64,
    pub start_time: String,
    pub end_time: String,
    /// The store's id: one modification per volume, the last.
    #[serde(skip)]
    pub key: String,
}

impl Resource for VolumeModification {
    const KIND: &'static str = "volume-modification";
    fn id(&self) -> &str {
        &self.key
    }
}

fn modification_key(volume_id: &str) -> String {
    format!("{volume_id}/modification")
}

impl Filterable for VolumeModification {
    const FILTERS: &'static [&'static str] = &[
        "modification-state",
        "original-iops",
        "original-multi-attach-enabled",
        "original-size",
        "original-throughput",
        "original-volume-type",
        "start-time",
        "target-iops",
        "target-multi-attach-enabled",
        "target-size",
        "target-throughput",
        "target-volume-type",
        "volume-id",
    ];
    fn field(&self, name: &str) -> Vec<String> {
        let opt = |v: Option<i64>| v.map(|x| x.to_string()).into_iter().collect();
        match name {
            "modification-state" => vec![self.modification_state.clone()],
            "original-iops" => opt(self.original_iops),
            "original-multi-attach-enabled" => vec![self.original_multi_attach_enabled.to_string()],
            "original-size" => vec![self.original_size.to_string()],
            "original-throughput" => opt(self.original_throughput),
            "original-volume-type" => vec![self.original_volume_type.clone()],
            "start-time" => vec![self.start_time.clone()],
            "target-iops" => opt(self.target_iops),
            "target-multi-attach-enabled" => vec![self.target_multi_attach_enabled.to_string()],
            "target-size" => vec![self.target_size.to_string()],
            "target-throughput" => opt(self.target_throughput),
            "target-volume-type" => vec![self.target_volume_type.clone()],
            "volume-id" => vec![self.volume_id.clone()],
            _ => vec![],
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ModifyVolumeRequest {
    volume_id: String,
    size: Option<i64>,
    volume_type: Option<String>,
    iops: Option<i64>,
    throughput: Option<i64>,
    multi_attach_enabled: Option<bool>,
    dry_run: Option<bool>,
}

/// ModifyVolume: a bigger size, another type, IOPS or throughput, checked as CreateVolume
/// checks them. Volumes only grow. The change applies at once; the answer says
/// `modifying`, DescribeVolumesModifications `completed`.
pub async fn modify_volume(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ModifyVolumeRequest = input(raw)?;
    check_id::<Volume>(&req.volume_id)?;
    if req.multi_attach_enabled == Some(true) {
        return Err(Error(AwsError::not_implemented(
            "ec2",
            "Multi-Attach volumes",
        )));
    }
    let mut tx = ctx.store.write().await?;
    let mut v: Volume = resource::lock(ctx, &mut tx, &req.volume_id)
        .await?
        .ok_or_else(|| Volume::not_found(&req.volume_id))?;
    let size = req.size.unwrap_or(v.size);
    if size < v.size {
        return Err(invalid_value(format!(
            "New size cannot be smaller than existing size: the volume {} is {} GiB.",
            v.volume_id, v.size
        )));
    }
    let volume_type = req
        .volume_type
        .clone()
        .unwrap_or_else(|| v.volume_type.clone());
    let same_type = volume_type == v.volume_type;
    // IOPS and throughput carry over within a type that has them; a new type starts from
    // its own defaults unless given.
    let iops = req.iops.or(if same_type && volume_type != "gp2" {
        v.iops
    } else {
        None
    });
    let throughput = req
        .throughput
        .or(if same_type { v.throughput } else { None });
    let (iops, throughput) = check_spec(&volume_type, size, iops, throughput)?;
    if size == v.size
        && volume_type == v.volume_type
        && iops == v.iops
        && throughput == v.throughput
    {
        return Err(invalid_value(format!(
            "Modification of volume {} would not change it: the requested configuration is its current one.",
            v.volume_id
        )));
    }
    dry_run(req.dry_run)?;
    let now = kumori_protocol::time::now_iso();
    let m = VolumeModification {
        volume_id: v.volume_id.clone(),
        modification_state: "completed".into(),
        target_size: size,
        target_iops: iops,
        target_volume_type: volume_type.clone(),
        target_throughput: throughput,
        target_multi_attach_enabled: false,
        original_size: v.size,
        original_iops: v.iops,
        original_volume_type: v.volume_type.clone(),
        original_throughput: v.throughput,
        original_multi_attach_enabled: v.multi_attach_enabled,
        progress: 100,
        start_time: now.clone(),
        end_time: now,
        key: modification_key(&v.volume_id),
    };
    v.size = size;
    v.volume_type = volume_type;
    v.iops = iops;
    v.throughput = throughput;
    resource::update(ctx, &mut tx, &v).await?;
    let key = modification_key(&v.volume_id);
    if resource::lock::<VolumeModification>(ctx, &mut tx, &key)
        .await?
        .is_some()
    {
        resource::update(ctx, &mut tx, &m).await?;
    } else {
        resource::insert(ctx, &mut tx, &m).await?;
    }
    tx.commit().await?;
    let mut out = output(&m)?;
    out["ModificationState"] = json!("modifying");
    out["Progress"] = json!(0);
    if let Some(o) = out.as_object_mut() {
        o.remove("EndTime");
    }
    Ok(json!({ "VolumeModification": out }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeModificationsRequest {
    #[serde(default)]
    volume_ids: Vec<String>,
    #[serde(default)]
    filters: Vec<Filter>,
    max_results: Option<i64>,
    next_token: Option<String>,
    dry_run: Option<bool>,
}

/// Not `generic::describe`: modifications are keyed by their volume: VolumeIds name volumes, each
/// checked against the volumes (`InvalidVolume.NotFound`) though a volume never modified is no
/// error; modifications have no tags.
pub async fn describe_volumes_modifications(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DescribeModificationsRequest = input(raw)?;
    super::common::check_filters::<VolumeModification>(&req.filters)?;
    for id in &req.volume_ids {
        check_id::<Volume>(id)?;
    }
    let mut tx = ctx.store.read().await?;
    for id in &req.volume_ids {
        resource::get::<Volume>(ctx, &mut tx, id)
            .await?
            .ok_or_else(|| Volume::not_found(id))?;
    }
    let all: Vec<VolumeModification> = resource::list::<VolumeModification>(ctx, &mut tx)
        .await?
        .into_iter()
        .map(|mut m| {
            m.key = modification_key(&m.volume_id);
            m
        })
        .collect();
    drop(tx);
    dry_run(req.dry_run)?;
    let selected: Vec<&VolumeModification> = all
        .iter()
        .filter(|m| req.volume_ids.is_empty() || req.volume_ids.contains(&m.volume_id))
        .filter(|m| super::common::matches(*m, &[], &req.filters))
        .collect();
    let (page, next) = super::common::paginate(
        selected,
        |m| m.volume_id.clone(),
        req.max_results,
        req.next_token.as_deref(),
    )?;
    let shown = page.iter().map(output).collect::<Result<Vec<_>>>()?;
    Ok(super::common::page_output(
        "VolumesModifications",
        shown,
        next,
    ))
}
