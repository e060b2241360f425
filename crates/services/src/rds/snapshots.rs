//! DB snapshots: manual ones (CreateDBSnapshot, a final snapshot on delete or stop) and the
//! automated one each new instance with backups gets, each a real copy of the server's data
//! taken by the reconciler; RestoreDBInstanceFromDBSnapshot starts a new server from one.

use super::instances::{self, DbInstance, Origin};
use super::{check_identifier, check_tags, events, invalid, store_tags};
use crate::kit::Tag;
use crate::resource::{self, Resource};
use crate::{Ctx, Error, Result, input};
use kumori_store::Tx;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub const OPERATIONS: &[crate::kit::Op] = crate::operations![
    "CreateDBSnapshot" => create_db_snapshot,
    "DescribeDBSnapshots" => describe_db_snapshots,
    "DeleteDBSnapshot" => delete_db_snapshot,
    "RestoreDBInstanceFromDBSnapshot" => restore_db_instance_from_db_snapshot,
    "RestoreDBInstanceToPointInTime" => restore_db_instance_to_point_in_time,
];

pub const KIND: &str = "rds-db-snapshot";

pub fn key(name: &str) -> String {
    format!("rds-snapshot/{}", name.to_ascii_lowercase())
}

pub fn not_found(name: &str) -> Error {
    Error::new(
        "DBSnapshotNotFound",
        format!("DBSnapshot not found: {name}"),
    )
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DbSnapshot {
    pub db_snapshot_identifier: String,
    pub db_instance_identifier: String,
    pub snapshot_create_time: Option<String>,
    pub engine: String,
    pub engine_version: String,
    pub allocated_storage: i64,
    pub status: String,
    pub port: u16,
    pub availability_zone: String,
    pub vpc_id: String,
    pub instance_create_time: Option<String>,
    pub master_username: String,
    pub license_model: String,
    pub snapshot_type: String,
    pub iops: Option<i64>,
    pub storage_type: String,
    pub encrypted: bool,
    pub kms_key_id: Option<String>,
    pub arn: String,
    pub dbi_resource_id: String,
    pub option_group: String,
    pub storage_throughput: Option<i64>,
    pub iam_database_authentication_enabled: bool,
    /// The copy's directory under the engine's snapshots.
    pub kumori_dir: String,
    /// What a restore needs that the wire does not show.
    pub kumori_password: String,
    pub kumori_db_name: Option<String>,
    pub kumori_class: String,
    pub kumori_parameter_group: String,
    #[serde(skip)]
    pub kumori_key: String,
}

impl Resource for DbSnapshot {
    const KIND: &'static str = KIND;
    fn id(&self) -> &str {
        &self.kumori_key
    }
}

impl DbSnapshot {
    pub fn view(&self, tags: &[Tag]) -> Value {
        let mut v = json!({
            "DBSnapshotIdentifier": self.db_snapshot_identifier,
            "DBInstanceIdentifier": self.db_instance_identifier,
            "Engine": self.engine,
            "EngineVersion": self.engine_version,
            "AllocatedStorage": self.allocated_storage,
            "Status": self.status,
            "Port": self.port,
            "AvailabilityZone": self.availability_zone,
            "VpcId": self.vpc_id,
            "MasterUsername": self.master_username,
            "LicenseModel": self.license_model,
            "SnapshotType": self.snapshot_type,
            "OptionGroupName": self.option_group,
            "PercentProgress": if self.status == "available" { 100 } else { 0 },
            "StorageType": self.storage_type,
            "Encrypted": self.encrypted,
            "DBSnapshotArn": self.arn,
            "IAMDatabaseAuthenticationEnabled": self.iam_database_authentication_enabled,
            "ProcessorFeatures": [],
            "DbiResourceId": self.dbi_resource_id,
            "TagList": tags,
            "SnapshotTarget": "region",
            "DedicatedLogVolume": false,
            "MultiTenant": false,
        });
        if let Some(t) = &self.snapshot_create_time {
            v["SnapshotCreateTime"] = json!(t);
            v["OriginalSnapshotCreateTime"] = json!(t);
            v["SnapshotDatabaseTime"] = json!(t);
        }
        if let Some(t) = &self.instance_create_time {
            v["InstanceCreateTime"] = json!(t);
        }
        if let Some(i) = self.iops {
            v["Iops"] = json!(i);
        }
        if let Some(k) = &self.kms_key_id {
            v["KmsKeyId"] = json!(k);
        }
        if let Some(t) = self.storage_throughput {
            v["StorageThroughput"] = json!(t);
        }
        v
    }
}

pub async fn get(ctx: &Ctx<'_>, tx: &mut Tx, name: &str, lock: bool) -> Result<Option<DbSnapshot>> {
    let k = key(name);
    let found = if lock {
        resource::lock::<DbSnapshot>(ctx, tx, &k).await?
    } else {
        resource::get::<DbSnapshot>(ctx, tx, &k).await?
    };
    Ok(found.map(|mut s| {
        s.kumori_key = k;
        s
    }))
}

pub async fn save(ctx: &Ctx<'_>, tx: &mut Tx, s: &DbSnapshot) -> Result<()> {
    let mut s = s.clone();
    s.kumori_key = key(&s.db_snapshot_identifier);
    match tx.get(ctx.scope(), &s.kumori_key).await? {
        Some(_) => resource::update(ctx, tx, &s).await,
        None => resource::insert(ctx, tx, &s).await,
    }
}

/// Sets member `k` of a CreateDBInstance input a restore builds, when the restore gave it.
fn given(create: &mut Value, k: &str, x: Value) {
    if !x.is_null() {
        create[k] = x;
    }
}

/// Starts a snapshot of `i` named `name` (in `tx`): `creating` until the reconciler has
/// copied the server's data.
pub async fn begin(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    i: &DbInstance,
    name: &str,
    kind: &str,
) -> Result<DbSnapshot> {
    let name = if kind == "manual" {
        check_identifier("DBSnapshotIdentifier", name, 255)?
    } else {
        name.to_ascii_lowercase()
    };
    if tx.lock(ctx.scope(), &key(&name)).await?.is_some() {
        return Err(Error::new(
            "DBSnapshotAlreadyExists",
            format!(
                "Cannot create the snapshot because a snapshot with the identifier {name} already exists."
            ),
        ));
    }
    let s = DbSnapshot {
        arn: super::arn(ctx, "snapshot", &name),
        db_snapshot_identifier: name,
        db_instance_identifier: i.db_instance_identifier.clone(),
        snapshot_create_time: None,
        engine: i.engine.clone(),
        engine_version: i.engine_version.clone(),
        allocated_storage: i.allocated_storage,
        status: "creating".into(),
        port: i.port,
        availability_zone: i.availability_zone.clone(),
        vpc_id: i.vpc_id.clone(),
        instance_create_time: i.instance_create_time.clone(),
        master_username: i.master_username.clone(),
        license_model: i.license_model.clone(),
        snapshot_type: kind.into(),
        iops: i.iops,
        storage_type: i.storage_type.clone(),
        encrypted: i.storage_encrypted,
        kms_key_id: i.kms_key_id.clone(),
        dbi_resource_id: i.dbi_resource_id.clone(),
        option_group: i.option_group.clone(),
        storage_throughput: i.storage_throughput,
        iam_database_authentication_enabled: i.iam_database_authentication_enabled,
        kumori_dir: format!("snap-{}", uuid::Uuid::new_v4().simple()),
        kumori_password: i.kumori_password.clone(),
        kumori_db_name: i.db_name.clone(),
        kumori_class: i.db_instance_class.clone(),
        kumori_parameter_group: i.db_parameter_group.clone(),
        kumori_key: String::new(),
    };
    save(ctx, tx, &s).await?;
    if i.copy_tags_to_snapshot {
        let tags = crate::kit::tags_of(tx, ctx.scope(), &i.arn).await?;
        store_tags(ctx, tx, &s.arn, KIND, &tags).await?;
    }
    events::record(
        ctx,
        tx,
        "db-snapshot",
        &s.db_snapshot_identifier,
        &s.arn,
        "creation",
        if kind == "automated" {
            "Creating automated snapshot"
        } else {
            "Creating manual snapshot"
        },
    )
    .await?;
    Ok(s)
}

/// Removes an instance's automated snapshots (DeleteAutomatedBackups).
pub async fn drop_automated(ctx: &Ctx<'_>, tx: &mut Tx, instance: &str) -> Result<()> {
    let all: Vec<DbSnapshot> = resource::list(ctx, tx).await?;
    for s in all {
        if s.snapshot_type == "automated" && s.db_instance_identifier == instance {
            tx.delete(ctx.scope(), &key(&s.db_snapshot_identifier))
                .await?;
            tx.set_tags(ctx.scope(), &s.arn, KIND, &[]).await?;
        }
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateRequest {
    #[serde(rename = "DBSnapshotIdentifier")]
    db_snapshot_identifier: String,
    #[serde(rename = "DBInstanceIdentifier")]
    db_instance_identifier: String,
    #[serde(default)]
    tags: Vec<Tag>,
}

pub async fn create_db_snapshot(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: CreateRequest = input(raw)?;
    check_tags(&req.tags)?;
    let mut tx = ctx.store.write().await?;
    let i = instances::must(ctx, &mut tx, &req.db_instance_identifier).await?;
    if !matches!(i.status.as_str(), "available" | "stopped") {
        return Err(Error::new(
            "InvalidDBInstanceState",
            format!(
                "Cannot create a snapshot because the database instance {} is not currently in the available state.",
                i.db_instance_identifier
            ),
        ));
    }
    let s = begin(ctx, &mut tx, &i, &req.db_snapshot_identifier, "manual").await?;
    if !req.tags.is_empty() {
        store_tags(ctx, &mut tx, &s.arn, KIND, &req.tags).await?;
    }
    let tags = crate::kit::tags_of(&mut tx, ctx.scope(), &s.arn).await?;
    tx.commit().await?;
    Ok(json!({ "DBSnapshot": s.view(&tags) }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeRequest {
    #[serde(rename = "DBInstanceIdentifier")]
    db_instance_identifier: Option<String>,
    #[serde(rename = "DBSnapshotIdentifier")]
    db_snapshot_identifier: Option<String>,
    snapshot_type: Option<String>,
    #[serde(default)]
    filters: Vec<super::Filter>,
    max_records: Option<i64>,
    marker: Option<String>,
    dbi_resource_id: Option<String>,
}

pub async fn describe_db_snapshots(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DescribeRequest = input(raw)?;
    super::known_filters(
        &req.filters,
        &[
            "db-instance-id",
            "db-snapshot-id",
            "dbi-resource-id",
            "snapshot-type",
            "engine",
        ],
    )?;
    let mut tx = ctx.store.read().await?;
    let all: Vec<DbSnapshot> = match &req.db_snapshot_identifier {
        Some(n) => match get(ctx, &mut tx, n, false).await? {
            Some(s) => vec![s],
            None => return Err(not_found(n)),
        },
        None => resource::list(ctx, &mut tx).await?,
    };
    let mut items = Vec::new();
    for s in all {
        if req
            .db_instance_identifier
            .as_deref()
            .is_some_and(|i| !i.eq_ignore_ascii_case(&s.db_instance_identifier))
            || req
                .snapshot_type
                .as_deref()
                .is_some_and(|t| t != s.snapshot_type)
            || req
                .dbi_resource_id
                .as_deref()
                .is_some_and(|d| d != s.dbi_resource_id)
            || !super::passes(&req.filters, "db-instance-id", &s.db_instance_identifier)
            || !super::passes(&req.filters, "db-snapshot-id", &s.db_snapshot_identifier)
            || !super::passes(&req.filters, "dbi-resource-id", &s.dbi_resource_id)
            || !super::passes(&req.filters, "snapshot-type", &s.snapshot_type)
            || !super::passes(&req.filters, "engine", &s.engine)
        {
            continue;
        }
        let tags = crate::kit::tags_of(&mut tx, ctx.scope(), &s.arn).await?;
        items.push((s.db_snapshot_identifier.clone(), s.view(&tags)));
    }
    super::page(items, "DBSnapshots", req.marker.as_deref(), req.max_records)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteRequest {
    #[serde(rename = "DBSnapshotIdentifier")]
    db_snapshot_identifier: String,
}

pub async fn delete_db_snapshot(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DeleteRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let mut s = get(ctx, &mut tx, &req.db_snapshot_identifier, true)
        .await?
        .ok_or_else(|| not_found(&req.db_snapshot_identifier))?;
    if s.snapshot_type == "automated" {
        return Err(Error::new(
            "InvalidDBSnapshotState",
            "Only manual snapshots may be deleted.",
        ));
    }
    if s.status != "available" {
        return Err(Error::new(
            "InvalidDBSnapshotState",
            format!(
                "Cannot delete the snapshot {} because it is not in available state.",
                s.db_snapshot_identifier
            ),
        ));
    }
    tx.delete(ctx.scope(), &s.kumori_key).await?;
    let tags = crate::kit::tags_of(&mut tx, ctx.scope(), &s.arn).await?;
    tx.set_tags(ctx.scope(), &s.arn, KIND, &[]).await?;
    events::record(
        ctx,
        &mut tx,
        "db-snapshot",
        &s.db_snapshot_identifier,
        &s.arn,
        "deletion",
        "Deleted manual snapshot",
    )
    .await?;
    tx.commit().await?;
    s.status = "deleted".into();
    Ok(json!({ "DBSnapshot": s.view(&tags) }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RestoreRequest {
    #[serde(rename = "DBInstanceIdentifier")]
    db_instance_identifier: String,
    #[serde(rename = "DBSnapshotIdentifier")]
    db_snapshot_identifier: Option<String>,
    #[serde(rename = "DBInstanceClass")]
    db_instance_class: Option<String>,
    port: Option<i64>,
    availability_zone: Option<String>,
    #[serde(rename = "DBSubnetGroupName")]
    db_subnet_group_name: Option<String>,
    #[serde(rename = "MultiAZ")]
    multi_az: Option<bool>,
    publicly_accessible: Option<bool>,
    auto_minor_version_upgrade: Option<bool>,
    #[serde(rename = "DBName")]
    db_name: Option<String>,
    engine: Option<String>,
    storage_type: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
    #[serde(default)]
    vpc_security_group_ids: Vec<String>,
    copy_tags_to_snapshot: Option<bool>,
    #[serde(rename = "DBParameterGroupName")]
    db_parameter_group_name: Option<String>,
    deletion_protection: Option<bool>,
    allocated_storage: Option<i64>,
    iops: Option<i64>,
    #[serde(rename = "DBClusterSnapshotIdentifier")]
    db_cluster_snapshot_identifier: Option<String>,
}

pub async fn restore_db_instance_from_db_snapshot(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: RestoreRequest = input(raw)?;
    if req.db_cluster_snapshot_identifier.is_some() {
        return Err(Error::new(
            "NotImplemented",
            "kumori does not serve DB cluster snapshots",
        ));
    }
    let snap_name = req
        .db_snapshot_identifier
        .clone()
        .ok_or_else(|| invalid("The parameter DBSnapshotIdentifier must be provided."))?;
    let mut tx = ctx.store.read().await?;
    let s = get(ctx, &mut tx, &snap_name, false)
        .await?
        .ok_or_else(|| not_found(&snap_name))?;
    drop(tx);
    if s.status != "available" {
        return Err(Error::new(
            "InvalidDBSnapshotState",
            format!(
                "Snapshot {} is not in available state.",
                s.db_snapshot_identifier
            ),
        ));
    }
    if let Some(e) = &req.engine
        && *e != s.engine
    {
        return Err(super::combination(format!(
            "The engine of a restored instance is its snapshot's ({}), not {e}",
            s.engine
        )));
    }
    let mut create = json!({
        "DBInstanceIdentifier": req.db_instance_identifier,
        "DBInstanceClass": req.db_instance_class.clone().unwrap_or(s.kumori_class.clone()),
        "Engine": s.engine,
        "EngineVersion": s.engine_version,
        "AllocatedStorage": req.allocated_storage.unwrap_or(s.allocated_storage),
        "MasterUsername": s.master_username,
        "MasterUserPassword": s.kumori_password,
        "StorageType": req.storage_type.clone().unwrap_or(s.storage_type.clone()),
        "Port": req.port.unwrap_or(s.port as i64),
        "VpcSecurityGroupIds": req.vpc_security_group_ids,
        "Tags": req.tags,
        "DBParameterGroupName": req.db_parameter_group_name.clone().unwrap_or(s.kumori_parameter_group.clone()),
    });
    given(
        &mut create,
        "AvailabilityZone",
        json!(req.availability_zone),
    );
    given(
        &mut create,
        "DBSubnetGroupName",
        json!(req.db_subnet_group_name),
    );
    given(&mut create, "MultiAZ", json!(req.multi_az));
    given(
        &mut create,
        "PubliclyAccessible",
        json!(req.publicly_accessible),
    );
    given(
        &mut create,
        "AutoMinorVersionUpgrade",
        json!(req.auto_minor_version_upgrade),
    );
    given(
        &mut create,
        "CopyTagsToSnapshot",
        json!(req.copy_tags_to_snapshot),
    );
    given(
        &mut create,
        "DeletionProtection",
        json!(req.deletion_protection),
    );
    given(&mut create, "Iops", json!(req.iops.or(s.iops)));
    given(
        &mut create,
        "DBName",
        json!(req.db_name.clone().or(s.kumori_db_name.clone())),
    );
    given(&mut create, "StorageEncrypted", json!(s.encrypted));
    given(&mut create, "KmsKeyId", json!(s.kms_key_id));
    // The same checks and placement as a new instance, starting from the snapshot's data.
    instances::create_from(
        ctx,
        &create,
        Origin::Snapshot(s.kumori_dir.clone()),
        Some(&s),
    )
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PointInTimeRequest {
    #[serde(rename = "SourceDBInstanceIdentifier")]
    source_db_instance_identifier: Option<String>,
    source_dbi_resource_id: Option<String>,
    #[serde(rename = "TargetDBInstanceIdentifier")]
    target_db_instance_identifier: String,
    restore_time: Option<String>,
    #[serde(default)]
    use_latest_restorable_time: bool,
    #[serde(rename = "DBInstanceClass")]
    db_instance_class: Option<String>,
    port: Option<i64>,
    availability_zone: Option<String>,
    #[serde(rename = "DBSubnetGroupName")]
    db_subnet_group_name: Option<String>,
    #[serde(rename = "MultiAZ")]
    multi_az: Option<bool>,
    publicly_accessible: Option<bool>,
    #[serde(default)]
    tags: Vec<Tag>,
    #[serde(default)]
    vpc_security_group_ids: Vec<String>,
    #[serde(rename = "DBParameterGroupName")]
    db_parameter_group_name: Option<String>,
    deletion_protection: Option<bool>,
    backup_retention_period: Option<i64>,
}

/// A new instance holding what the source held at `RestoreTime` (or as late as it can):
/// the latest snapshot of the source taken before then, replayed forward through the
/// source's archived log. PostgreSQL only: MariaDB's binary logs are not replayed here.
pub async fn restore_db_instance_to_point_in_time(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: PointInTimeRequest = input(raw)?;
    if req.restore_time.is_some() == req.use_latest_restorable_time {
        return Err(super::combination(
            "Exactly one of RestoreTime and UseLatestRestorableTime must be given.",
        ));
    }
    let mut tx = ctx.store.read().await?;
    let source: DbInstance = match (
        &req.source_db_instance_identifier,
        &req.source_dbi_resource_id,
    ) {
        (Some(id), _) => instances::must_read(ctx, &mut tx, id).await?,
        (None, Some(dbi)) => instances::using(ctx, &mut tx, |i| i.dbi_resource_id == *dbi)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| instances::not_found(dbi))?,
        (None, None) => {
            return Err(invalid(
                "The parameter SourceDBInstanceIdentifier must be provided.",
            ));
        }
    };
    if source.engine != "postgres" {
        return Err(Error::new(
            "NotImplemented",
            format!(
                "kumori restores {} instances from snapshots only: point-in-time restore replays PostgreSQL's log, not MariaDB's binary logs",
                source.engine
            ),
        ));
    }
    if source.backup_retention_period == 0 {
        return Err(Error::new(
            "PointInTimeRestoreNotEnabled",
            format!(
                "Point-in-time restore is not enabled for DB instance {}: its backup retention period is 0.",
                source.db_instance_identifier
            ),
        ));
    }
    let now = kumori_protocol::time::now_unix();
    let at = match &req.restore_time {
        Some(t) => Some(
            kumori_protocol::time::unix_of_iso(t)
                .ok_or_else(|| invalid(format!("Invalid RestoreTime: {t}")))?,
        ),
        None => None,
    };
    if at.is_some_and(|t| t > now) {
        return Err(Error::new(
            "InvalidRestoreFault",
            "The restore time must be before the latest restorable time.",
        ));
    }
    let snaps: Vec<DbSnapshot> = resource::list(ctx, &mut tx).await?;
    let base = snaps
        .into_iter()
        .filter(|s| s.dbi_resource_id == source.dbi_resource_id && s.status == "available")
        .filter_map(|s| {
            let taken = s
                .snapshot_create_time
                .as_deref()
                .and_then(kumori_protocol::time::unix_of_iso)?;
            at.is_none_or(|t| taken <= t).then_some((taken, s))
        })
        .max_by_key(|(taken, _)| *taken)
        .map(|(_, s)| s)
        .ok_or_else(|| {
            Error::new(
                "InvalidRestoreFault",
                "The restore time is before the earliest restorable time of the source DB instance.",
            )
        })?;
    drop(tx);
    let mut create = json!({
        "DBInstanceIdentifier": req.target_db_instance_identifier,
        "DBInstanceClass": req.db_instance_class.clone().unwrap_or(source.db_instance_class.clone()),
        "Engine": source.engine,
        "EngineVersion": source.engine_version,
        "AllocatedStorage": source.allocated_storage,
        "MasterUsername": source.master_username,
        "MasterUserPassword": source.kumori_password,
        "StorageType": source.storage_type,
        "Port": req.port.unwrap_or(source.port as i64),
        "VpcSecurityGroupIds": req.vpc_security_group_ids,
        "Tags": req.tags,
        "DBParameterGroupName": req.db_parameter_group_name.clone().unwrap_or(source.db_parameter_group.clone()),
        "DBSubnetGroupName": req.db_subnet_group_name.clone().unwrap_or(source.db_subnet_group.clone()),
    });
    given(
        &mut create,
        "AvailabilityZone",
        json!(req.availability_zone),
    );
    given(&mut create, "MultiAZ", json!(req.multi_az));
    given(
        &mut create,
        "PubliclyAccessible",
        json!(req.publicly_accessible),
    );
    given(
        &mut create,
        "DeletionProtection",
        json!(req.deletion_protection),
    );
    given(
        &mut create,
        "BackupRetentionPeriod",
        json!(req.backup_retention_period),
    );
    given(&mut create, "Iops", json!(source.iops));
    given(&mut create, "DBName", json!(source.db_name));
    let origin = Origin::PointInTime {
        source: source.dbi_resource_id.clone(),
        base: base.kumori_dir.clone(),
        time: req.restore_time.clone(),
    };
    instances::create_from(ctx, &create, origin, Some(&base)).await
}
