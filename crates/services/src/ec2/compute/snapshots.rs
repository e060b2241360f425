//! EBS snapshots: CreateSnapshot, CopySnapshot (within and across regions), DeleteSnapshot,
//! DescribeSnapshots, and the `createVolumePermission` attribute.
//!
//! A snapshot keeps what a volume made from it needs: its size. Snapshots are taken at once;
//! the answer to CreateSnapshot says `pending`, as AWS's does, and describes say `completed`.
//! Public images' root snapshots (the catalogue's) can be restored but are not listed, as
//! AWS does not list the snapshots behind Amazon's images either.

use super::common::{
    Filter, Filterable, Tag, TagSpecification, check_filters, dry_run, invalid_value, matches,
    page_output, paginate, put_tags, tags_by_resource, tags_from_specs,
};
use super::generic::{Ec2Resource, check_id};
use super::volumes::Volume;
use crate::resource::{self, Resource, new_id};
use crate::{Ctx, Error, Result, input, output};
use kumori_store::Tx;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Snapshot {
    pub snapshot_id: String,
    pub volume_id: String,
    pub volume_size: i64,
    pub state: String,
    pub start_time: String,
    pub progress: String,
    pub owner_id: String,
    pub description: String,
    pub encrypted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    pub storage_tier: String,
    /// Who besides the owner may make volumes from it: account ids and the group `all`.
    /// Kept, never shown in describes (DescribeSnapshotAttribute shows it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub create_volume_permissions: Vec<Permission>,
}

/// A launch or create-volume permission: an account (`UserId`) or everyone (`Group: all`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Permission {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

impl Permission {
    /// Checks a permission as EC2 does: twelve digits or the group `all`.
    pub fn checked(self, noun: &str) -> Result<Self> {
        if let Some(g) = &self.group
            && g != "all"
        {
            return Err(Error::new(
                format!("Invalid{noun}AttributeItemValue"),
                format!("Invalid attribute item value \"{g}\" for group item type."),
            ));
        }
        if let Some(u) = &self.user_id
            && (u.len() != 12 || !u.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(Error::new(
                format!("Invalid{noun}AttributeItemValue"),
                format!("Invalid attribute item value \"{u}\" for userId item type."),
            ));
        }
        if self.user_id.is_none() == self.group.is_none() {
            return Err(invalid_value(
                "Each permission names either a UserId or a Group.",
            ));
        }
        Ok(self)
    }
}

/// Applies `Add` and `Remove` lists to a permission list.
pub fn apply_permissions(list: &mut Vec<Permission>, add: Vec<Permission>, remove: &[Permission]) {
    list.retain(|p| !remove.contains(p));
    for p in add {
        if !list.contains(&p) {
            list.push(p);
        }
    }
}

impl Resource for Snapshot {
    const KIND: &'static str = "snapshot";
    fn id(&self) -> &str {
        &self.snapshot_id
    }
}

impl Ec2Resource for Snapshot {
    const ID_PREFIX: &'static str = "snap";
    const ID_ERROR: &'static str = "InvalidSnapshotID";
    fn shown(&self, tags: &[Tag]) -> Result<Value> {
        let mut v = output(self)?;
        if let Some(o) = v.as_object_mut() {
            o.remove("CreateVolumePermissions");
        }
        if !tags.is_empty() {
            v["Tags"] = output(&tags)?;
        }
        Ok(v)
    }
    fn not_found(id: &str) -> Error {
        Error::new(
            "InvalidSnapshot.NotFound",
            format!("The snapshot '{id}' does not exist."),
        )
    }
}

impl Filterable for Snapshot {
    const FILTERS: &'static [&'static str] = &[
        "description",
        "encrypted",
        "owner-alias",
        "owner-id",
        "progress",
        "snapshot-id",
        "start-time",
        "status",
        "storage-tier",
        "volume-id",
        "volume-size",
    ];
    fn field(&self, name: &str) -> Vec<String> {
        match name {
            "description" => vec![self.description.clone()],
            "encrypted" => vec![self.encrypted.to_string()],
            "owner-id" => vec![self.owner_id.clone()],
            "progress" => vec![self.progress.clone()],
            "snapshot-id" => vec![self.snapshot_id.clone()],
            "start-time" => vec![self.start_time.clone()],
            "status" => vec![self.state.clone()],
            "storage-tier" => vec![self.storage_tier.clone()],
            "volume-id" => vec![self.volume_id.clone()],
            "volume-size" => vec![self.volume_size.to_string()],
            _ => vec![],
        }
    }
}

/// A completed snapshot of `volume_id`'s `size` GiB, owned by the caller.
pub fn new_snapshot(ctx: &Ctx<'_>, volume_id: &str, size: i64, description: String) -> Snapshot {
    Snapshot {
        snapshot_id: new_id("snap"),
        volume_id: volume_id.to_string(),
        volume_size: size,
        state: "completed".into(),
        start_time: kumori_protocol::time::now_iso(),
        progress: "100%".into(),
        owner_id: ctx.account.to_string(),
        description,
        encrypted: false,
        kms_key_id: None,
        storage_tier: "standard".into(),
        create_volume_permissions: vec![],
    }
}

/// The size of snapshot `id`, which a new volume must at least have: one of the account's
/// own snapshots or the root snapshot of a public image.
pub async fn restorable_size(ctx: &Ctx<'_>, tx: &mut Tx, id: &str) -> Result<i64> {
    Ok(restorable(ctx, tx, id).await?.0)
}

/// What a volume made from snapshot `id` starts as: its size, whether it is encrypted, and
/// with which key.
pub async fn restorable(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    id: &str,
) -> Result<(i64, bool, Option<String>)> {
    check_id::<Snapshot>(id)?;
    if let Some(s) = resource::get::<Snapshot>(ctx, tx, id).await? {
        return Ok((s.volume_size, s.encrypted, s.kms_key_id));
    }
    let size = restorable_public_size(ctx, id)?;
    Ok((size, false, None))
}

fn restorable_public_size(ctx: &Ctx<'_>, id: &str) -> Result<i64> {
    kumori_catalog::public_images(ctx.region)
        .iter()
        .flat_map(|i| {
            i["BlockDeviceMappings"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .find(|m| m["Ebs"]["SnapshotId"] == id)
        .and_then(|m| m["Ebs"]["VolumeSize"].as_i64())
        .ok_or_else(|| Snapshot::not_found(id))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateSnapshotRequest {
    volume_id: String,
    description: Option<String>,
    #[serde(default)]
    tag_specifications: Vec<TagSpecification>,
    dry_run: Option<bool>,
}

/// A snapshot description is at most 255 characters.
fn check_description(d: &str) -> Result<()> {
    if d.chars().count() > 255 {
        return Err(invalid_value(
            "The description of a snapshot may be at most 255 characters.",
        ));
    }
    Ok(())
}

pub async fn create_snapshot(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: CreateSnapshotRequest = input(raw)?;
    check_id::<Volume>(&req.volume_id)?;
    let description = req.description.unwrap_or_default();
    check_description(&description)?;
    let tags = tags_from_specs(&req.tag_specifications, Snapshot::KIND)?;
    let mut tx = ctx.store.write().await?;
    let volume: Volume = resource::get(ctx, &mut tx, &req.volume_id)
        .await?
        .ok_or_else(|| Volume::not_found(&req.volume_id))?;
    dry_run(req.dry_run)?;
    let mut s = new_snapshot(ctx, &volume.volume_id, volume.size, description);
    s.encrypted = volume.encrypted;
    s.kms_key_id = volume.kms_key_id.clone();
    resource::insert(ctx, &mut tx, &s).await?;
    put_tags(ctx, &mut tx, &s.snapshot_id, Snapshot::KIND, &tags).await?;
    tx.commit().await?;
    let mut out = s.shown(&tags)?;
    out["State"] = json!("pending");
    out["Progress"] = json!("0%");
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CopySnapshotRequest {
    source_region: String,
    source_snapshot_id: String,
    description: Option<String>,
    encrypted: Option<bool>,
    #[serde(default)]
    tag_specifications: Vec<TagSpecification>,
    dry_run: Option<bool>,
}

pub async fn copy_snapshot(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: CopySnapshotRequest = input(raw)?;
    check_id::<Snapshot>(&req.source_snapshot_id)?;
    if super::regions::zones(&req.source_region).is_empty() {
        return Err(invalid_value(format!(
            "Value ({}) for parameter sourceRegion is invalid. The region does not exist.",
            req.source_region
        )));
    }
    let description = req.description.unwrap_or_default();
    check_description(&description)?;
    let tags = tags_from_specs(&req.tag_specifications, Snapshot::KIND)?;
    let source_ctx = Ctx {
        region: &req.source_region,
        ..*ctx
    };
    let mut tx = ctx.store.write().await?;
    let source: Snapshot = resource::get(&source_ctx, &mut tx, &req.source_snapshot_id)
        .await?
        .ok_or_else(|| Snapshot::not_found(&req.source_snapshot_id))?;
    dry_run(req.dry_run)?;
    let mut s = new_snapshot(ctx, &source.volume_id, source.volume_size, description);
    s.encrypted = source.encrypted || req.encrypted == Some(true);
    s.kms_key_id = source
        .kms_key_id
        .clone()
        .or_else(|| s.encrypted.then(|| super::volumes::default_kms_key(ctx)));
    resource::insert(ctx, &mut tx, &s).await?;
    put_tags(ctx, &mut tx, &s.snapshot_id, Snapshot::KIND, &tags).await?;
    tx.commit().await?;
    let mut out = json!({ "SnapshotId": s.snapshot_id });
    if !tags.is_empty() {
        out["Tags"] = output(&tags)?;
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteSnapshotRequest {
    snapshot_id: String,
    dry_run: Option<bool>,
}

pub async fn delete_snapshot(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DeleteSnapshotRequest = input(raw)?;
    check_id::<Snapshot>(&req.snapshot_id)?;
    let mut tx = ctx.store.write().await?;
    let s: Snapshot = resource::lock(ctx, &mut tx, &req.snapshot_id)
        .await?
        .ok_or_else(|| Snapshot::not_found(&req.snapshot_id))?;
    if let Some(image) = super::images::using_snapshot(ctx, &mut tx, &s.snapshot_id).await? {
        return Err(Error::new(
            "InvalidSnapshot.InUse",
            format!(
                "The snapshot {} is currently in use by {image}",
                s.snapshot_id
            ),
        ));
    }
    dry_run(req.dry_run)?;
    tx.delete(ctx.scope(), &s.snapshot_id).await?;
    tx.commit().await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeSnapshotsRequest {
    #[serde(default)]
    snapshot_ids: Vec<String>,
    #[serde(default)]
    owner_ids: Vec<String>,
    #[serde(default)]
    restorable_by_user_ids: Vec<String>,
    #[serde(default)]
    filters: Vec<Filter>,
    max_results: Option<i64>,
    next_token: Option<String>,
    dry_run: Option<bool>,
}

/// Not `generic::describe`: OwnerIds and RestorableByUserIds (the owner, or create-volume
/// permissions) narrow the list besides ids and filters, and the generic describe has no place for
/// them.
pub async fn describe_snapshots(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DescribeSnapshotsRequest = input(raw)?;
    check_filters::<Snapshot>(&req.filters)?;
    for id in &req.snapshot_ids {
        check_id::<Snapshot>(id)?;
    }
    let mut tx = ctx.store.read().await?;
    let all: Vec<Snapshot> = resource::list(ctx, &mut tx).await?;
    let tags = tags_by_resource(ctx, &mut tx, Snapshot::KIND).await?;
    drop(tx);
    if let Some(missing) = req
        .snapshot_ids
        .iter()
        .find(|id| !all.iter().any(|s| s.snapshot_id == **id))
    {
        return Err(Snapshot::not_found(missing));
    }
    dry_run(req.dry_run)?;
    let owned_by = |s: &Snapshot, o: &str| o == "self" || o == s.owner_id;
    let restorable_by = |s: &Snapshot, u: &str| {
        (u == "self" || u == s.owner_id)
            || s.create_volume_permissions
                .iter()
                .any(|p| p.group.as_deref() == Some("all") || p.user_id.as_deref() == Some(u))
    };
    let none = Vec::new();
    let selected: Vec<&Snapshot> = all
        .iter()
        .filter(|s| req.snapshot_ids.is_empty() || req.snapshot_ids.contains(&s.snapshot_id))
        .filter(|s| req.owner_ids.is_empty() || req.owner_ids.iter().any(|o| owned_by(s, o)))
        .filter(|s| {
            req.restorable_by_user_ids.is_empty()
                || req
                    .restorable_by_user_ids
                    .iter()
                    .any(|u| restorable_by(s, u))
        })
        .filter(|s| matches(*s, tags.get(&s.snapshot_id).unwrap_or(&none), &req.filters))
        .collect();
    let (page, next) = paginate(
        selected,
        |s| s.snapshot_id.clone(),
        req.max_results,
        req.next_token.as_deref(),
    )?;
    let shown = page
        .iter()
        .map(|s| s.shown(tags.get(&s.snapshot_id).unwrap_or(&none)))
        .collect::<Result<Vec<_>>>()?;
    Ok(page_output("Snapshots", shown, next))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SnapshotAttributeRequest {
    attribute: String,
    snapshot_id: String,
    dry_run: Option<bool>,
}

pub async fn describe_snapshot_attribute(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: SnapshotAttributeRequest = input(raw)?;
    check_id::<Snapshot>(&req.snapshot_id)?;
    let mut tx = ctx.store.read().await?;
    let s: Snapshot = resource::get(ctx, &mut tx, &req.snapshot_id)
        .await?
        .ok_or_else(|| Snapshot::not_found(&req.snapshot_id))?;
    dry_run(req.dry_run)?;
    match req.attribute.as_str() {
        "createVolumePermission" => Ok(json!({
            "SnapshotId": s.snapshot_id,
            "CreateVolumePermissions": output(&s.create_volume_permissions)?,
        })),
        "productCodes" => Ok(json!({ "SnapshotId": s.snapshot_id, "ProductCodes": [] })),
        other => Err(invalid_value(format!(
            "Value ({other}) for parameter attribute is invalid. Unknown attribute."
        ))),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ModifySnapshotAttributeRequest {
    snapshot_id: String,
    attribute: Option<String>,
    create_volume_permission: Option<Modifications>,
    operation_type: Option<String>,
    #[serde(default)]
    user_ids: Vec<String>,
    #[serde(default)]
    group_names: Vec<String>,
    dry_run: Option<bool>,
}

/// `{ Add: [...], Remove: [...] }`, as launch and create-volume permissions change.
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Modifications {
    #[serde(default)]
    pub add: Vec<Permission>,
    #[serde(default)]
    pub remove: Vec<Permission>,
}

impl Modifications {
    /// The modifications a request gives either as `{Add, Remove}` or as an `OperationType`
    /// with user ids and groups; each permission checked.
    pub fn from_request(
        given: Option<Modifications>,
        operation: Option<&str>,
        users: &[String],
        groups: &[String],
        noun: &str,
    ) -> Result<Modifications> {
        let mut m = given.unwrap_or_default();
        let listed: Vec<Permission> = users
            .iter()
            .map(|u| Permission {
                user_id: Some(u.clone()),
                group: None,
            })
            .chain(groups.iter().map(|g| Permission {
                user_id: None,
                group: Some(g.clone()),
            }))
            .collect();
        match operation {
            Some("add") => m.add.extend(listed),
            Some("remove") => m.remove.extend(listed),
            None if listed.is_empty() => {}
            other => {
                return Err(invalid_value(format!(
                    "Value ({}) for parameter operationType is invalid. Expected 'add' or 'remove'.",
                    other.unwrap_or_default()
                )));
            }
        }
        let check = |v: Vec<Permission>| {
            v.into_iter()
                .map(|p| p.checked(noun))
                .collect::<Result<Vec<_>>>()
        };
        Ok(Modifications {
            add: check(m.add)?,
            remove: check(m.remove)?,
        })
    }
}

pub async fn modify_snapshot_attribute(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ModifySnapshotAttributeRequest = input(raw)?;
    check_id::<Snapshot>(&req.snapshot_id)?;
    if let Some(a) = &req.attribute
        && a != "createVolumePermission"
    {
        return Err(invalid_value(format!(
            "Value ({a}) for parameter attribute is invalid. Only createVolumePermission can be modified."
        )));
    }
    let m = Modifications::from_request(
        req.create_volume_permission,
        req.operation_type.as_deref(),
        &req.user_ids,
        &req.group_names,
        "Snapshot",
    )?;
    let mut tx = ctx.store.write().await?;
    let mut s: Snapshot = resource::lock(ctx, &mut tx, &req.snapshot_id)
        .await?
        .ok_or_else(|| Snapshot::not_found(&req.snapshot_id))?;
    dry_run(req.dry_run)?;
    apply_permissions(&mut s.create_volume_permissions, m.add, &m.remove);
    resource::update(ctx, &mut tx, &s).await?;
    tx.commit().await?;
    Ok(json!({}))
}

pub async fn reset_snapshot_attribute(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: SnapshotAttributeRequest = input(raw)?;
    check_id::<Snapshot>(&req.snapshot_id)?;
    if req.attribute != "createVolumePermission" {
        return Err(invalid_value(format!(
            "Value ({}) for parameter attribute is invalid. Only createVolumePermission can be reset.",
            req.attribute
        )));
    }
    let mut tx = ctx.store.write().await?;
    let mut s: Snapshot = resource::lock(ctx, &mut tx, &req.snapshot_id)
        .await?
        .ok_or_else(|| Snapshot::not_found(&req.snapshot_id))?;
    dry_run(req.dry_run)?;
    s.create_volume_permissions.clear();
    resource::update(ctx, &mut tx, &s).await?;
    tx.commit().await?;
    Ok(json!({}))
}
