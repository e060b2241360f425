//! DB instances: create (new, read replica), describe, modify, reboot (with failover), stop,
//! start, promote and delete. A handler writes what RDS shows at once (`creating`,
//! `rebooting`, `deleting`) and what the server should become (`kumori_*` fields); the
//! reconciler makes the server so and moves the status on through `api`.

use super::engines::{self, Engine};
use super::parameter_groups::{self, ParameterGroup};
use super::subnet_groups::{self, SubnetGroup};
use super::{check_identifier, check_tags, combination, events, invalid, store_tags};
use crate::kit::Tag;
use crate::resource::{self, Resource};
use crate::{Ctx, Error, Result, input};
use kumori_store::Tx;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

pub const OPERATIONS: &[crate::kit::Op] = crate::operations![
    "CreateDBInstance" => create_db_instance,
    "CreateDBInstanceReadReplica" => create_db_instance_read_replica,
    "DescribeDBInstances" => describe_db_instances,
    "ModifyDBInstance" => modify_db_instance,
    "RebootDBInstance" => reboot_db_instance,
    "StopDBInstance" => stop_db_instance,
    "StartDBInstance" => start_db_instance,
    "PromoteReadReplica" => promote_read_replica,
    "DeleteDBInstance" => delete_db_instance,
];

pub const KIND: &str = "rds-db-instance";
/// DB instances per region (RDS's default quota).
const QUOTA: usize = 40;

pub fn key(name: &str) -> String {
    format!("rds-instance/{}", name.to_ascii_lowercase())
}

pub fn not_found(name: &str) -> Error {
    Error::new(
        "DBInstanceNotFound",
        format!("DBInstance {name} not found."),
    )
}

fn not_available(name: &str) -> Error {
    Error::new(
        "InvalidDBInstanceState",
        format!("Instance {name} is not in available state."),
    )
}

/// How a new instance's data begins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Origin {
    Empty,
    /// A snapshot's data (its directory's name under the engine's snapshots).
    Snapshot(String),
    /// A copy of another instance (its `DbiResourceId`) that follows it.
    ReplicaOf(String),
    /// Instance `source`'s snapshot copy `base`, replayed forward through its archived log to
    /// `time` (to the end when `None`).
    PointInTime {
        source: String,
        base: String,
        time: Option<String>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DbInstance {
    pub db_instance_identifier: String,
    pub db_instance_class: String,
    pub engine: String,
    pub engine_version: String,
    pub status: String,
    pub master_username: String,
    pub db_name: Option<String>,
    pub port: u16,
    pub allocated_storage: i64,
    pub max_allocated_storage: Option<i64>,
    pub storage_type: String,
    pub iops: Option<i64>,
    pub storage_throughput: Option<i64>,
    pub instance_create_time: Option<String>,
    pub preferred_backup_window: String,
    pub backup_retention_period: i64,
    pub preferred_maintenance_window: String,
    pub vpc_security_groups: Vec<String>,
    pub db_parameter_group: String,
    pub parameter_apply_status: String,
    pub availability_zone: String,
    pub secondary_availability_zone: Option<String>,
    pub multi_az: bool,
    pub db_subnet_group: String,
    pub vpc_id: String,
    pub publicly_accessible: bool,
    pub deletion_protection: bool,
    pub auto_minor_version_upgrade: bool,
    pub copy_tags_to_snapshot: bool,
    pub storage_encrypted: bool,
    pub kms_key_id: Option<String>,
    pub dbi_resource_id: String,
    pub arn: String,
    pub license_model: String,
    pub ca_certificate_identifier: String,
    pub iam_database_authentication_enabled: bool,
    pub performance_insights_enabled: bool,
    pub monitoring_interval: i64,
    pub enabled_cloudwatch_logs_exports: Vec<String>,
    pub read_replica_source: Option<String>,
    pub read_replicas: Vec<String>,
    pub pending: Map<String, Value>,
    pub master_user_secret: Option<Value>,
    pub network_type: String,
    pub character_set_name: Option<String>,
    pub option_group: String,
    /// The password the server's master user has (kumori's own record of it).
    pub kumori_password: String,
    /// Where the server really listens (the asked port, or another when it was taken).
    pub kumori_port: Option<u16>,
    pub kumori_run: bool,
    pub kumori_failovers: u64,
    pub kumori_reboots: u64,
    pub kumori_origin: Origin,
    pub kumori_final_snapshot: Option<String>,
    pub kumori_restarts: u64,
    pub kumori_interface: Option<String>,
    pub kumori_subnet: Option<String>,
    pub kumori_address: Option<String>,
    /// The parameter group's settings the server runs with.
    pub kumori_parameters: Vec<(String, String)>,
    pub kumori_promote: bool,
    #[serde(default)]
    pub kumori_error: Option<String>,
    #[serde(skip)]
    pub kumori_key: String,
}

impl Resource for DbInstance {
    const KIND: &'static str = KIND;
    fn id(&self) -> &str {
        &self.kumori_key
    }
}

impl DbInstance {
    pub fn engine_def(&self) -> Option<&'static Engine> {
        engines::engine(&self.engine)
    }

    /// The instance as DescribeDBInstances shows it.
    pub fn view(&self, group: Option<&SubnetGroup>, tags: &[Tag]) -> Value {
        let mut v = json!({
            "DBInstanceIdentifier": self.db_instance_identifier,
            "DBInstanceClass": self.db_instance_class,
            "Engine": self.engine,
            "DBInstanceStatus": self.status,
            "MasterUsername": self.master_username,
            "AllocatedStorage": self.allocated_storage,
            "PreferredBackupWindow": self.preferred_backup_window,
            "BackupRetentionPeriod": self.backup_retention_period,
            "DBSecurityGroups": [],
            "VpcSecurityGroups": self.vpc_security_groups.iter().map(|g| json!({ "VpcSecurityGroupId": g, "Status": "active" })).collect::<Vec<_>>(),
            "DBParameterGroups": [{ "DBParameterGroupName": self.db_parameter_group, "ParameterApplyStatus": self.parameter_apply_status }],
            "AvailabilityZone": self.availability_zone,
            "PreferredMaintenanceWindow": self.preferred_maintenance_window,
            "PendingModifiedValues": self.pending,
            "MultiAZ": self.multi_az,
            "EngineVersion": self.engine_version,
            "AutoMinorVersionUpgrade": self.auto_minor_version_upgrade,
            "ReadReplicaDBInstanceIdentifiers": self.read_replicas,
            "ReadReplicaDBClusterIdentifiers": [],
            "LicenseModel": self.license_model,
            "OptionGroupMemberships": [{ "OptionGroupName": self.option_group, "Status": "in-sync" }],
            "PubliclyAccessible": self.publicly_accessible,
            "StorageType": self.storage_type,
            "DbInstancePort": 0,
            "StorageEncrypted": self.storage_encrypted,
        });
        // Two halves: one json! of them all passes the macro's recursion limit.
        let rest = json!({
            "DbiResourceId": self.dbi_resource_id,
            "CACertificateIdentifier": self.ca_certificate_identifier,
            "DomainMemberships": [],
            "CopyTagsToSnapshot": self.copy_tags_to_snapshot,
            "MonitoringInterval": self.monitoring_interval,
            "DBInstanceArn": self.arn,
            "IAMDatabaseAuthenticationEnabled": self.iam_database_authentication_enabled,
            "PerformanceInsightsEnabled": self.performance_insights_enabled,
            "DeletionProtection": self.deletion_protection,
            "AssociatedRoles": [],
            "TagList": tags,
            "CustomerOwnedIpEnabled": false,
            "BackupTarget": "region",
            "NetworkType": self.network_type,
            "StorageThroughput": self.storage_throughput.unwrap_or(0),
            "CertificateDetails": { "CAIdentifier": self.ca_certificate_identifier, "ValidTill": "2061-05-25T23:34:57Z" },
            "DedicatedLogVolume": false,
            "IsStorageConfigUpgradeAvailable": false,
            "EngineLifecycleSupport": "open-source-rds-extended-support",
            "EnabledCloudwatchLogsExports": self.enabled_cloudwatch_logs_exports,
        });
        if let (Some(a), Value::Object(b)) = (v.as_object_mut(), rest) {
            a.extend(b);
        }
        if let Some(t) = &self.instance_create_time {
            v["InstanceCreateTime"] = json!(t);
            v["LatestRestorableTime"] = json!(kumori_protocol::time::now_iso());
        }
        if let Some(d) = &self.db_name {
            v["DBName"] = json!(d);
        }
        // RDS shows no endpoint until the instance has one.
        if self.status != "creating"
            && let Some(port) = self.kumori_port
        {
            v["Endpoint"] = json!({
                "Address": self.kumori_address.as_deref().unwrap_or("127.0.0.1"),
                "Port": port,
                "HostedZoneId": "Z2R2ITUGPM61AM",
            });
        }
        if let Some(g) = group {
            v["DBSubnetGroup"] = g.view();
            v["DBSubnetGroup"]
                .as_object_mut()
                .map(|o| o.remove("DBSubnetGroupArn"));
        }
        if let Some(z) = &self.secondary_availability_zone {
            v["SecondaryAvailabilityZone"] = json!(z);
        }
        if let Some(s) = &self.read_replica_source {
            v["ReadReplicaSourceDBInstanceIdentifier"] = json!(s);
        }
        if let Some(i) = self.iops {
            v["Iops"] = json!(i);
        }
        if let Some(k) = &self.kms_key_id {
            v["KmsKeyId"] = json!(k);
        }
        if let Some(m) = self.max_allocated_storage {
            v["MaxAllocatedStorage"] = json!(m);
        }
        if let Some(c) = &self.character_set_name {
            v["CharacterSetName"] = json!(c);
        }
        if let Some(s) = &self.master_user_secret {
            v["MasterUserSecret"] = s.clone();
        }
        v
    }
}

/// The instance `name`, read (`lock`: and locked) in `tx`.
pub async fn get(ctx: &Ctx<'_>, tx: &mut Tx, name: &str, lock: bool) -> Result<Option<DbInstance>> {
    let k = key(name);
    let found = if lock {
        resource::lock::<DbInstance>(ctx, tx, &k).await?
    } else {
        resource::get::<DbInstance>(ctx, tx, &k).await?
    };
    Ok(found.map(|mut i| {
        i.kumori_key = k;
        i
    }))
}

pub async fn must(ctx: &Ctx<'_>, tx: &mut Tx, name: &str) -> Result<DbInstance> {
    let name = id_of(name);
    get(ctx, tx, &name, true)
        .await?
        .ok_or_else(|| not_found(&name))
}

/// The instance `name` (or ARN), read in `tx` without locking it.
pub async fn must_read(ctx: &Ctx<'_>, tx: &mut Tx, name: &str) -> Result<DbInstance> {
    let name = id_of(name);
    get(ctx, tx, &name, false)
        .await?
        .ok_or_else(|| not_found(&name))
}

/// An identifier from a name or an ARN (`arn:aws:rds:…:db:name`).
fn id_of(name_or_arn: &str) -> String {
    name_or_arn
        .strip_prefix("arn:")
        .and_then(|_| name_or_arn.rsplit(':').next())
        .unwrap_or(name_or_arn)
        .to_ascii_lowercase()
}

pub async fn save(ctx: &Ctx<'_>, tx: &mut Tx, i: &DbInstance) -> Result<()> {
    let mut i = i.clone();
    i.kumori_key = key(&i.db_instance_identifier);
    match tx.get(ctx.scope(), &i.kumori_key).await? {
        Some(_) => resource::update(ctx, tx, &i).await,
        None => resource::insert(ctx, tx, &i).await,
    }
}

/// Commits `tx` and answers `i` as the write left it (`{"DBInstance": …}`).
async fn answer(ctx: &Ctx<'_>, mut tx: Tx, i: &DbInstance) -> Result<Value> {
    let g = subnet_groups::get(ctx, &mut tx, &i.db_subnet_group).await?;
    let tags = crate::kit::tags_of(&mut tx, ctx.scope(), &i.arn).await?;
    let out = json!({ "DBInstance": i.view(g.as_ref(), &tags) });
    tx.commit().await?;
    Ok(out)
}

/// Saves `i`, records what happened to it, commits and answers it.
async fn saved(
    ctx: &Ctx<'_>,
    mut tx: Tx,
    i: &DbInstance,
    category: &str,
    message: impl Into<String>,
) -> Result<Value> {
    save(ctx, &mut tx, i).await?;
    events::record(
        ctx,
        &mut tx,
        "db-instance",
        &i.db_instance_identifier,
        &i.arn,
        category,
        message,
    )
    .await?;
    answer(ctx, tx, i).await
}

/// Every instance for which `pred` holds.
pub async fn using(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    pred: impl Fn(&DbInstance) -> bool,
) -> Result<Vec<DbInstance>> {
    let all: Vec<DbInstance> = resource::list(ctx, tx).await?;
    Ok(all
        .into_iter()
        .filter(|i| pred(i))
        .map(|mut i| {
            i.kumori_key = key(&i.db_instance_identifier);
            i
        })
        .collect())
}

/// A parameter group changed: its instances take dynamic changes made `immediate` at once,
/// and wait for a reboot for the rest.
pub async fn parameters_changed(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    g: &ParameterGroup,
    now: bool,
) -> Result<()> {
    for mut i in using(ctx, tx, |i| i.db_parameter_group == g.name).await? {
        if now && i.parameter_apply_status != "pending-reboot" {
            i.kumori_parameters = g.settings();
            i.parameter_apply_status = "in-sync".into();
        } else {
            i.parameter_apply_status = "pending-reboot".into();
        }
        save(ctx, tx, &i).await?;
    }
    Ok(())
}

fn check_user(e: &Engine, user: Option<&str>) -> Result<String> {
    let Some(user) = user.filter(|u| !u.is_empty()) else {
        return Err(invalid(
            "The parameter MasterUsername must be provided and must not be blank.",
        ));
    };
    if user.len() > e.max_user {
        return Err(invalid(format!(
            "The parameter MasterUsername is not a valid identifier because it is longer than {} characters.",
            e.max_user
        )));
    }
    if !user.starts_with(|c: char| c.is_ascii_alphabetic())
        || !user.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(invalid(
            "The parameter MasterUsername is not a valid identifier. Identifiers must begin \
             with a letter; must contain only ASCII letters, digits, and underscores.",
        ));
    }
    if ["rdsadmin", "rdsrepladmin"].contains(&user.to_ascii_lowercase().as_str()) {
        return Err(invalid(format!(
            "MasterUsername {user} cannot be used as it is a reserved word used by the engine"
        )));
    }
    Ok(user.to_string())
}

pub(crate) fn check_password(e: &Engine, password: &str) -> Result<()> {
    if password.len() < 8 {
        return Err(invalid(
            "The parameter MasterUserPassword is not a valid password because it is shorter than 8 characters.",
        ));
    }
    if password.len() > e.max_password {
        return Err(invalid(format!(
            "The parameter MasterUserPassword is not a valid password because it is longer than {} characters.",
            e.max_password
        )));
    }
    if !password
        .chars()
        .all(|c| c.is_ascii_graphic() && !matches!(c, '/' | '@' | '"'))
    {
        return Err(invalid(
            "The parameter MasterUserPassword is not a valid password. Only printable ASCII \
             characters besides '/', '@', '\"', ' ' may be used.",
        ));
    }
    Ok(())
}

fn check_db_name(e: &Engine, name: &str) -> Result<()> {
    let max = if e.serves == engines::Serves::Postgres {
        63
    } else {
        64
    };
    if name.is_empty()
        || name.len() > max
        || !name.starts_with(|c: char| c.is_ascii_alphabetic())
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(invalid(format!(
            "The parameter DBName is not a valid identifier. It must begin with a letter and \
             contain 1 to {max} letters, digits or underscores."
        )));
    }
    Ok(())
}

fn check_storage(e: &Engine, storage_type: &str, size: i64, iops: Option<i64>) -> Result<()> {
    let Some((_, min, max)) = engines::STORAGE.iter().find(|(t, _, _)| *t == storage_type) else {
        return Err(invalid(format!("Invalid storage type: {storage_type}")));
    };
    if size < *min || size > *max {
        return Err(combination(format!(
            "Invalid storage size for engine name {} and storage type {storage_type}: {size}",
            e.name
        )));
    }
    if storage_type.starts_with("io") && iops.is_none() {
        return Err(combination(format!(
            "Iops is required for storage type {storage_type}"
        )));
    }
    if storage_type == "gp2" && iops.is_some() {
        return Err(combination(
            "Provisioned IOPS is not supported for storage type gp2",
        ));
    }
    Ok(())
}

fn check_class(e: &Engine, version: &str, class: &str) -> Result<()> {
    if !engines::class_exists(class) {
        return Err(combination(format!(
            "RDS does not support creating a DB instance with the following combination: \
             DBInstanceClass={class}, Engine={}, EngineVersion={version}, LicenseModel={}. \
             For supported combinations of instance class and database engine version, see the documentation.",
            e.name, e.license
        )));
    }
    Ok(())
}

/// Security groups given, checked to be in `vpc_id`; the VPC's default group when none.
async fn security_groups(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    ids: &[String],
    vpc_id: &str,
) -> Result<Vec<String>> {
    if ids.is_empty() {
        return Ok(crate::ec2::api::default_security_group(ctx, tx, vpc_id)
            .await?
            .into_iter()
            .collect());
    }
    for id in ids {
        match crate::ec2::api::security_group_vpc(ctx, tx, id).await? {
            None => {
                return Err(invalid(format!(
                    "Invalid security group , groupId= {id}, groupName=."
                )));
            }
            Some(v) if v != vpc_id => {
                return Err(combination(format!(
                    "The DB instance and EC2 security group are in different VPCs. The DB \
                     instance is in {vpc_id} and the EC2 security group is in {v}"
                )));
            }
            _ => {}
        }
    }
    Ok(ids.to_vec())
}

/// Where a new instance goes: its zone, its standby's zone and its endpoint's subnet.
fn place(
    g: &SubnetGroup,
    asked_zone: Option<&str>,
    multi_az: bool,
) -> Result<(String, Option<String>, String)> {
    let zones = g.zones();
    if multi_az && asked_zone.is_some() {
        return Err(invalid(
            "Requesting a specific availability zone is not valid for Multi-AZ instances.",
        ));
    }
    let zone = match asked_zone {
        Some(z) if zones.iter().any(|x| x == z) => z.to_string(),
        Some(z) => {
            return Err(invalid(format!(
                "DB Subnet Group {} has no subnet in the availability zone {z}.",
                g.name
            )));
        }
        None => {
            use rand::seq::IndexedRandom;
            zones
                .choose(&mut rand::rng())
                .cloned()
                .ok_or_else(|| invalid("The DB subnet group has no subnets"))?
        }
    };
    let secondary = if multi_az {
        zones.iter().find(|z| **z != zone).cloned()
    } else {
        None
    };
    let subnet = g
        .subnets
        .iter()
        .find(|s| s.availability_zone == zone)
        .map(|s| s.subnet_id.clone())
        .unwrap_or_default();
    Ok((zone, secondary, subnet))
}

/// The endpoint's interface in `subnet`, as RDS makes one (requester-managed).
async fn attach_interface(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    i: &mut DbInstance,
    subnet: &str,
) -> Result<()> {
    let eni = crate::ec2::api::create_managed_interface(
        ctx,
        tx,
        subnet,
        "interface",
        "RDSNetworkInterface".into(),
    )
    .await?;
    crate::ec2::api::dress_managed_interface(
        ctx,
        tx,
        &eni.network_interface_id,
        &i.vpc_security_groups,
        i.publicly_accessible,
    )
    .await?;
    i.kumori_interface = Some(eni.network_interface_id);
    i.kumori_subnet = Some(subnet.to_string());
    Ok(())
}

pub(crate) async fn detach_interface(ctx: &Ctx<'_>, tx: &mut Tx, i: &mut DbInstance) -> Result<()> {
    if let Some(eni) = i.kumori_interface.take() {
        crate::ec2::api::delete_managed_interface(ctx, tx, &eni).await?;
    }
    Ok(())
}

fn resource_id() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut r = rand::rng();
    let tail: String = (0..26)
        .map(|_| CHARS[r.random_range(0..CHARS.len())] as char)
        .collect();
    format!("db-{tail}")
}

/// A window of `len` minutes on a random day and half hour, as RDS picks them.
fn window(weekly: bool, from_hour: u32) -> String {
    use rand::Rng;
    let mut r = rand::rng();
    let h = (from_hour + r.random_range(0..8)) % 24;
    let m = [0, 30][r.random_range(0..2)];
    let (h2, m2) = if m == 30 { ((h + 1) % 24, 0) } else { (h, 30) };
    if weekly {
        let d = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"][r.random_range(0..7)];
        format!("{d}:{h:02}:{m:02}-{d}:{h2:02}:{m2:02}")
    } else {
        format!("{h:02}:{m:02}-{h2:02}:{m2:02}")
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct CreateRequest {
    #[serde(rename = "DBName")]
    db_name: Option<String>,
    #[serde(rename = "DBInstanceIdentifier")]
    db_instance_identifier: String,
    allocated_storage: Option<i64>,
    #[serde(rename = "DBInstanceClass")]
    db_instance_class: String,
    engine: String,
    master_username: Option<String>,
    master_user_password: Option<String>,
    #[serde(default)]
    vpc_security_group_ids: Vec<String>,
    availability_zone: Option<String>,
    #[serde(rename = "DBSubnetGroupName")]
    db_subnet_group_name: Option<String>,
    preferred_maintenance_window: Option<String>,
    #[serde(rename = "DBParameterGroupName")]
    db_parameter_group_name: Option<String>,
    backup_retention_period: Option<i64>,
    preferred_backup_window: Option<String>,
    port: Option<i64>,
    #[serde(rename = "MultiAZ")]
    multi_az: Option<bool>,
    engine_version: Option<String>,
    auto_minor_version_upgrade: Option<bool>,
    license_model: Option<String>,
    iops: Option<i64>,
    storage_throughput: Option<i64>,
    option_group_name: Option<String>,
    character_set_name: Option<String>,
    publicly_accessible: Option<bool>,
    #[serde(default)]
    tags: Vec<Tag>,
    #[serde(rename = "DBClusterIdentifier")]
    db_cluster_identifier: Option<String>,
    storage_type: Option<String>,
    storage_encrypted: Option<bool>,
    kms_key_id: Option<String>,
    copy_tags_to_snapshot: Option<bool>,
    monitoring_interval: Option<i64>,
    #[serde(rename = "EnableIAMDatabaseAuthentication")]
    enable_iam_database_authentication: Option<bool>,
    enable_performance_insights: Option<bool>,
    #[serde(default)]
    enable_cloudwatch_logs_exports: Vec<String>,
    deletion_protection: Option<bool>,
    max_allocated_storage: Option<i64>,
    network_type: Option<String>,
    #[serde(rename = "CACertificateIdentifier")]
    ca_certificate_identifier: Option<String>,
    manage_master_user_password: Option<bool>,
    master_user_secret_kms_key_id: Option<String>,
}

/// What CreateDBInstance, the read replica and the restores share once their own checks
/// passed: placement in a subnet group, security groups, the record, its interface, tags,
/// the event.
struct Placement<'a> {
    subnet_group: Option<&'a str>,
    zone: Option<&'a str>,
    multi_az: bool,
    security_groups: &'a [String],
}

async fn placed(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    p: &Placement<'_>,
    i: &mut DbInstance,
) -> Result<SubnetGroup> {
    let g = match p.subnet_group {
        Some(name) => subnet_groups::get(ctx, tx, name)
            .await?
            .ok_or_else(|| subnet_groups::not_found(name))?,
        None => subnet_groups::default_group(ctx, tx).await?,
    };
    let (zone, secondary, subnet) = place(&g, p.zone, p.multi_az)?;
    i.vpc_security_groups = security_groups(ctx, tx, p.security_groups, &g.vpc_id).await?;
    i.db_subnet_group = g.name.clone();
    i.vpc_id = g.vpc_id.clone();
    i.availability_zone = zone;
    i.secondary_availability_zone = secondary;
    i.multi_az = p.multi_az;
    attach_interface(ctx, tx, i, &subnet).await?;
    Ok(g)
}

async fn quota(ctx: &Ctx<'_>, tx: &mut Tx) -> Result<()> {
    if tx.count(ctx.scope(), KIND).await? >= QUOTA {
        return Err(Error::new(
            "InstanceQuotaExceeded",
            format!("The request would exceed the quota of {QUOTA} DB instances in this region."),
        ));
    }
    Ok(())
}

async fn created(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    i: &DbInstance,
    tags: &[Tag],
    g: &SubnetGroup,
    message: &str,
) -> Result<Value> {
    save(ctx, tx, i).await?;
    store_tags(ctx, tx, &i.arn, KIND, tags).await?;
    events::record(
        ctx,
        tx,
        "db-instance",
        &i.db_instance_identifier,
        &i.arn,
        "creation",
        message,
    )
    .await?;
    Ok(json!({ "DBInstance": i.view(Some(g), tags) }))
}

/// A new record with RDS's defaults for engine `e`.
fn new_instance(ctx: &Ctx<'_>, id: String, e: &Engine, version: &str, family: &str) -> DbInstance {
    DbInstance {
        arn: super::arn(ctx, "db", &id),
        db_instance_identifier: id,
        db_instance_class: String::new(),
        engine: e.name.into(),
        engine_version: version.into(),
        status: "creating".into(),
        master_username: String::new(),
        db_name: None,
        port: e.port,
        allocated_storage: 20,
        max_allocated_storage: None,
        storage_type: "gp2".into(),
        iops: None,
        storage_throughput: None,
        instance_create_time: None,
        preferred_backup_window: window(false, 3),
        backup_retention_period: 1,
        preferred_maintenance_window: window(true, 5),
        vpc_security_groups: vec![],
        db_parameter_group: parameter_groups::default_name(family),
        parameter_apply_status: "in-sync".into(),
        availability_zone: String::new(),
        secondary_availability_zone: None,
        multi_az: false,
        db_subnet_group: String::new(),
        vpc_id: String::new(),
        publicly_accessible: false,
        deletion_protection: false,
        auto_minor_version_upgrade: true,
        copy_tags_to_snapshot: false,
        storage_encrypted: false,
        kms_key_id: None,
        dbi_resource_id: resource_id(),
        license_model: e.license.into(),
        ca_certificate_identifier: "rds-ca-rsa2048-g1".into(),
        iam_database_authentication_enabled: false,
        performance_insights_enabled: false,
        monitoring_interval: 0,
        enabled_cloudwatch_logs_exports: vec![],
        read_replica_source: None,
        read_replicas: vec![],
        pending: Map::new(),
        master_user_secret: None,
        network_type: "IPV4".into(),
        character_set_name: None,
        option_group: String::new(),
        kumori_password: String::new(),
        kumori_port: None,
        kumori_run: true,
        kumori_failovers: 0,
        kumori_reboots: 0,
        kumori_origin: Origin::Empty,
        kumori_final_snapshot: None,
        kumori_restarts: 0,
        kumori_interface: None,
        kumori_subnet: None,
        kumori_address: None,
        kumori_parameters: vec![],
        kumori_promote: false,
        kumori_error: None,
        kumori_key: String::new(),
    }
}

fn check_port(port: Option<i64>) -> Result<Option<u16>> {
    match port {
        None => Ok(None),
        Some(p) if (1150..=65535).contains(&p) => Ok(Some(p as u16)),
        Some(p) => Err(invalid(format!(
            "Invalid port {p}: the port must be between 1150 and 65535."
        ))),
    }
}

fn check_retention(r: Option<i64>) -> Result<Option<i64>> {
    match r {
        Some(r) if !(0..=35).contains(&r) => Err(invalid(format!(
            "Invalid backup retention period {r}: it must be between 0 and 35 days."
        ))),
        r => Ok(r),
    }
}

/// The parameter group named for engine family `family`, or the family's default.
async fn parameter_group(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    name: Option<&str>,
    family: &str,
) -> Result<ParameterGroup> {
    let name = name
        .map(str::to_string)
        .unwrap_or_else(|| parameter_groups::default_name(family));
    let g = parameter_groups::get(ctx, tx, &name)
        .await?
        .ok_or_else(|| parameter_groups::not_found(&name))?;
    if g.family != family {
        return Err(combination(format!(
            "The parameter group {name} with DBParameterGroupFamily {} cannot be used for this instance. Please use a Parameter Group with DBParameterGroupFamily {family}",
            g.family
        )));
    }
    Ok(g)
}

pub async fn create_db_instance(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    create_from(ctx, raw, Origin::Empty, None).await
}

/// CreateDBInstance, and a restore (`origin` a snapshot's data) through the same checks.
pub(crate) async fn create_from(
    ctx: &Ctx<'_>,
    raw: &Value,
    origin: Origin,
    snapshot: Option<&super::snapshots::DbSnapshot>,
) -> Result<Value> {
    let req: CreateRequest = input(raw)?;
    let id = check_identifier("DBInstanceIdentifier", &req.db_instance_identifier, 63)?;
    let e = engines::engine_or_error(&req.engine)?;
    if req.db_cluster_identifier.is_some() {
        return Err(Error::new(
            "NotImplemented",
            "kumori does not serve DB clusters (Aurora, Multi-AZ clusters)",
        ));
    }
    let (version, major) = engines::resolve(e, req.engine_version.as_deref())?;
    check_class(e, version, &req.db_instance_class)?;
    if let Some(why) = engines::missing(e.serves) {
        // RDS's word for "cannot give you this instance now", with what to install.
        return Err(Error::new(
            "InsufficientDBInstanceCapacity",
            format!("Cannot create a {} instance here: {why}", e.name),
        ));
    }
    let user = check_user(e, req.master_username.as_deref())?;
    let managed = req.manage_master_user_password.unwrap_or(false);
    let password = match (&req.master_user_password, managed) {
        (Some(_), true) => {
            return Err(combination(
                "You can't specify MasterUserPassword and ManageMasterUserPassword together.",
            ));
        }
        (Some(p), false) => {
            check_password(e, p)?;
            p.clone()
        }
        (None, true) => super::api::generated_password(),
        (None, false) => {
            return Err(invalid(
                "The parameter MasterUserPassword must be provided and must not be blank.",
            ));
        }
    };
    // An empty DBName is no database (Terraform's provider sends one for no db_name).
    let db_name = req.db_name.clone().filter(|d| !d.is_empty());
    if let Some(d) = &db_name {
        check_db_name(e, d)?;
    }
    let storage_type = req
        .storage_type
        .clone()
        .unwrap_or_else(|| if req.iops.is_some() { "io1" } else { "gp2" }.to_string());
    let size = req
        .allocated_storage
        .ok_or_else(|| invalid("The parameter AllocatedStorage must be provided."))?;
    check_storage(e, &storage_type, size, req.iops)?;
    if let Some(m) = req.max_allocated_storage
        && m < size
    {
        return Err(invalid(
            "Max storage size must be greater than storage size",
        ));
    }
    if let Some(l) = &req.license_model
        && l != e.license
    {
        return Err(combination(format!(
            "License model {l} is not supported for engine {}",
            e.name
        )));
    }
    if let Some(o) = &req.option_group_name
        && *o != engines::default_option_group(e, major)
    {
        return Err(Error::new(
            "OptionGroupNotFoundFault",
            format!("Specified OptionGroupName: {o} not found."),
        ));
    }
    let port = check_port(req.port)?;
    let retention = check_retention(req.backup_retention_period)?;
    check_tags(&req.tags)?;
    if req.db_subnet_group_name.is_none() {
        crate::ec2::api::ensure_default_vpc(ctx).await?;
    }
    let mut tx = ctx.store.write().await?;
    if tx.lock(ctx.scope(), &key(&id)).await?.is_some() {
        return Err(Error::new(
            "DBInstanceAlreadyExists",
            "DB instance already exists",
        ));
    }
    quota(ctx, &mut tx).await?;
    if let Some(s) = snapshot {
        // Deleted meanwhile?
        if super::snapshots::get(ctx, &mut tx, &s.db_snapshot_identifier, true)
            .await?
            .is_none()
        {
            return Err(super::snapshots::not_found(&s.db_snapshot_identifier));
        }
    }
    let pg = parameter_group(
        ctx,
        &mut tx,
        req.db_parameter_group_name.as_deref(),
        major.family,
    )
    .await?;
    let mut i = new_instance(ctx, id, e, version, major.family);
    i.kumori_origin = origin;
    i.db_instance_class = req.db_instance_class.clone();
    i.master_username = user;
    i.db_name = db_name;
    i.port = port.unwrap_or(e.port);
    i.allocated_storage = size;
    i.max_allocated_storage = req.max_allocated_storage;
    i.storage_type = storage_type.clone();
    i.iops = req.iops;
    i.storage_throughput = req
        .storage_throughput
        .or((storage_type == "gp3").then_some(125));
    if let Some(w) = &req.preferred_backup_window {
        i.preferred_backup_window = w.clone();
    }
    if let Some(w) = &req.preferred_maintenance_window {
        i.preferred_maintenance_window = w.to_ascii_lowercase();
    }
    i.backup_retention_period = retention.unwrap_or(1);
    i.db_parameter_group = pg.name.clone();
    i.kumori_parameters = pg.settings();
    i.publicly_accessible = req.publicly_accessible.unwrap_or(false);
    i.deletion_protection = req.deletion_protection.unwrap_or(false);
    i.auto_minor_version_upgrade = req.auto_minor_version_upgrade.unwrap_or(true);
    i.copy_tags_to_snapshot = req.copy_tags_to_snapshot.unwrap_or(false);
    i.storage_encrypted = req.storage_encrypted.unwrap_or(false) || req.kms_key_id.is_some();
    if i.storage_encrypted {
        i.kms_key_id = Some(req.kms_key_id.clone().unwrap_or_else(|| {
            format!(
                "arn:aws:kms:{}:{}:key/aws-rds-default",
                ctx.region, ctx.account
            )
        }));
    }
    i.iam_database_authentication_enabled = req.enable_iam_database_authentication.unwrap_or(false);
    i.performance_insights_enabled = req.enable_performance_insights.unwrap_or(false);
    i.monitoring_interval = req.monitoring_interval.unwrap_or(0);
    i.enabled_cloudwatch_logs_exports = req.enable_cloudwatch_logs_exports.clone();
    i.network_type = req.network_type.clone().unwrap_or_else(|| "IPV4".into());
    i.character_set_name = req.character_set_name.clone();
    if let Some(c) = &req.ca_certificate_identifier {
        i.ca_certificate_identifier = c.clone();
    }
    i.option_group = engines::default_option_group(e, major);
    i.kumori_password = password.clone();
    let g = placed(
        ctx,
        &mut tx,
        &Placement {
            subnet_group: req.db_subnet_group_name.as_deref(),
            zone: req.availability_zone.as_deref(),
            multi_az: req.multi_az.unwrap_or(false),
            security_groups: &req.vpc_security_group_ids,
        },
        &mut i,
    )
    .await?;
    if managed {
        i.master_user_secret = Some(
            super::api::managed_secret(
                ctx,
                &mut tx,
                &i,
                &password,
                req.master_user_secret_kms_key_id.as_deref(),
            )
            .await?,
        );
    }
    let message = match (snapshot, &i.kumori_origin) {
        (Some(_), Origin::PointInTime { time, .. }) => format!(
            "Restored from DB instance {} to {}",
            snapshot
                .map(|s| s.db_instance_identifier.as_str())
                .unwrap_or_default(),
            time.as_deref().unwrap_or("the latest restorable time")
        ),
        (Some(s), _) => format!("Restored from snapshot {}", s.db_snapshot_identifier),
        (None, _) => "DB instance created".to_string(),
    };
    let out = created(ctx, &mut tx, &i, &req.tags, &g, &message).await?;
    tx.commit().await?;
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ReplicaRequest {
    #[serde(rename = "DBInstanceIdentifier")]
    db_instance_identifier: String,
    #[serde(rename = "SourceDBInstanceIdentifier")]
    source_db_instance_identifier: String,
    #[serde(rename = "DBInstanceClass")]
    db_instance_class: Option<String>,
    availability_zone: Option<String>,
    port: Option<i64>,
    #[serde(rename = "MultiAZ")]
    multi_az: Option<bool>,
    auto_minor_version_upgrade: Option<bool>,
    publicly_accessible: Option<bool>,
    #[serde(default)]
    tags: Vec<Tag>,
    #[serde(rename = "DBSubnetGroupName")]
    db_subnet_group_name: Option<String>,
    #[serde(default)]
    vpc_security_group_ids: Vec<String>,
    storage_type: Option<String>,
    copy_tags_to_snapshot: Option<bool>,
    #[serde(rename = "DBParameterGroupName")]
    db_parameter_group_name: Option<String>,
    deletion_protection: Option<bool>,
    allocated_storage: Option<i64>,
    max_allocated_storage: Option<i64>,
    iops: Option<i64>,
    kms_key_id: Option<String>,
}

pub async fn create_db_instance_read_replica(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ReplicaRequest = input(raw)?;
    let id = check_identifier("DBInstanceIdentifier", &req.db_instance_identifier, 63)?;
    let port = check_port(req.port)?;
    check_tags(&req.tags)?;
    let mut tx = ctx.store.write().await?;
    if tx.lock(ctx.scope(), &key(&id)).await?.is_some() {
        return Err(Error::new(
            "DBInstanceAlreadyExists",
            "DB instance already exists",
        ));
    }
    let mut source = must(ctx, &mut tx, &req.source_db_instance_identifier).await?;
    if source.read_replica_source.is_some() {
        return Err(Error::new(
            "InvalidDBInstanceState",
            "Cannot create a read replica of a read replica here: kumori's replicas follow their source directly.",
        ));
    }
    if source.status != "available" {
        return Err(not_available(&source.db_instance_identifier));
    }
    if source.backup_retention_period == 0 {
        return Err(Error::new(
            "InvalidDBInstanceState",
            "Automated backups are not enabled for this database instance. To enable automated \
             backups, use ModifyDBInstance to set the backup retention period to a non-zero value.",
        ));
    }
    if source.read_replicas.len() >= 15 {
        return Err(Error::new(
            "InvalidDBInstanceState",
            "The source has the most read replicas RDS allows (15).",
        ));
    }
    quota(ctx, &mut tx).await?;
    let e = source
        .engine_def()
        .ok_or_else(|| invalid("Invalid DB engine"))?;
    let (_, major) = engines::resolve(e, Some(&source.engine_version))?;
    let class = req
        .db_instance_class
        .clone()
        .unwrap_or_else(|| source.db_instance_class.clone());
    check_class(e, &source.engine_version, &class)?;
    let pg = parameter_group(
        ctx,
        &mut tx,
        req.db_parameter_group_name.as_deref(),
        major.family,
    )
    .await?;
    let mut i = new_instance(ctx, id, e, &source.engine_version, major.family);
    i.db_instance_class = class;
    i.master_username = source.master_username.clone();
    i.db_name = source.db_name.clone();
    i.port = port.unwrap_or(source.port);
    i.allocated_storage = req.allocated_storage.unwrap_or(source.allocated_storage);
    i.max_allocated_storage = req.max_allocated_storage.or(source.max_allocated_storage);
    i.storage_type = req
        .storage_type
        .clone()
        .unwrap_or_else(|| source.storage_type.clone());
    i.iops = req.iops.or(source.iops);
    i.storage_throughput = source.storage_throughput;
    i.backup_retention_period = 0;
    i.db_parameter_group = pg.name.clone();
    i.kumori_parameters = pg.settings();
    i.publicly_accessible = req
        .publicly_accessible
        .unwrap_or(source.publicly_accessible);
    i.deletion_protection = req.deletion_protection.unwrap_or(false);
    i.auto_minor_version_upgrade = req.auto_minor_version_upgrade.unwrap_or(true);
    i.copy_tags_to_snapshot = req.copy_tags_to_snapshot.unwrap_or(false);
    i.storage_encrypted = source.storage_encrypted;
    i.kms_key_id = req.kms_key_id.clone().or(source.kms_key_id.clone());
    i.option_group = source.option_group.clone();
    i.kumori_password = source.kumori_password.clone();
    i.read_replica_source = Some(source.db_instance_identifier.clone());
    i.kumori_origin = Origin::ReplicaOf(source.dbi_resource_id.clone());
    let subnet_group = req
        .db_subnet_group_name
        .clone()
        .unwrap_or_else(|| source.db_subnet_group.clone());
    let groups = if req.vpc_security_group_ids.is_empty() && req.db_subnet_group_name.is_none() {
        source.vpc_security_groups.clone()
    } else {
        req.vpc_security_group_ids.clone()
    };
    let g = placed(
        ctx,
        &mut tx,
        &Placement {
            subnet_group: Some(&subnet_group),
            zone: req.availability_zone.as_deref(),
            multi_az: req.multi_az.unwrap_or(false),
            security_groups: &groups,
        },
        &mut i,
    )
    .await?;
    source.read_replicas.push(i.db_instance_identifier.clone());
    save(ctx, &mut tx, &source).await?;
    events::record(
        ctx,
        &mut tx,
        "db-instance",
        &source.db_instance_identifier,
        &source.arn,
        "read replica",
        format!("Started creating read replica {}", i.db_instance_identifier),
    )
    .await?;
    let out = created(ctx, &mut tx, &i, &req.tags, &g, "DB instance created").await?;
    tx.commit().await?;
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeRequest {
    #[serde(rename = "DBInstanceIdentifier")]
    db_instance_identifier: Option<String>,
    #[serde(default)]
    filters: Vec<super::Filter>,
    max_records: Option<i64>,
    marker: Option<String>,
}

pub async fn describe_db_instances(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DescribeRequest = input(raw)?;
    super::known_filters(
        &req.filters,
        &[
            "db-instance-id",
            "dbi-resource-id",
            "engine",
            "domain",
            "db-cluster-id",
        ],
    )?;
    let mut tx = ctx.store.read().await?;
    let all: Vec<DbInstance> = match &req.db_instance_identifier {
        Some(n) => {
            let n = id_of(n);
            vec![
                get(ctx, &mut tx, &n, false)
                    .await?
                    .ok_or_else(|| not_found(&n))?,
            ]
        }
        None => resource::list(ctx, &mut tx).await?,
    };
    let mut items = Vec::new();
    for i in all {
        let ok = req.filters.iter().all(|f| match f.name.as_str() {
            "db-instance-id" => f
                .values
                .iter()
                .any(|v| id_of(v) == i.db_instance_identifier),
            "dbi-resource-id" => f.values.contains(&i.dbi_resource_id),
            "engine" => f.values.contains(&i.engine),
            _ => false,
        });
        if !ok {
            continue;
        }
        let g = subnet_groups::get(ctx, &mut tx, &i.db_subnet_group).await?;
        let tags = crate::kit::tags_of(&mut tx, ctx.scope(), &i.arn).await?;
        items.push((i.db_instance_identifier.clone(), i.view(g.as_ref(), &tags)));
    }
    super::page(items, "DBInstances", req.marker.as_deref(), req.max_records)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ModifyRequest {
    #[serde(rename = "DBInstanceIdentifier")]
    db_instance_identifier: String,
    allocated_storage: Option<i64>,
    #[serde(rename = "DBInstanceClass")]
    db_instance_class: Option<String>,
    #[serde(rename = "DBSubnetGroupName")]
    db_subnet_group_name: Option<String>,
    vpc_security_group_ids: Option<Vec<String>>,
    #[serde(default)]
    apply_immediately: bool,
    master_user_password: Option<String>,
    #[serde(rename = "DBParameterGroupName")]
    db_parameter_group_name: Option<String>,
    backup_retention_period: Option<i64>,
    preferred_backup_window: Option<String>,
    preferred_maintenance_window: Option<String>,
    #[serde(rename = "MultiAZ")]
    multi_az: Option<bool>,
    engine_version: Option<String>,
    #[serde(default)]
    allow_major_version_upgrade: bool,
    auto_minor_version_upgrade: Option<bool>,
    iops: Option<i64>,
    storage_throughput: Option<i64>,
    option_group_name: Option<String>,
    #[serde(rename = "NewDBInstanceIdentifier")]
    new_db_instance_identifier: Option<String>,
    storage_type: Option<String>,
    #[serde(rename = "CACertificateIdentifier")]
    ca_certificate_identifier: Option<String>,
    copy_tags_to_snapshot: Option<bool>,
    monitoring_interval: Option<i64>,
    #[serde(rename = "DBPortNumber")]
    db_port_number: Option<i64>,
    publicly_accessible: Option<bool>,
    #[serde(rename = "EnableIAMDatabaseAuthentication")]
    enable_iam_database_authentication: Option<bool>,
    enable_performance_insights: Option<bool>,
    deletion_protection: Option<bool>,
    max_allocated_storage: Option<i64>,
    network_type: Option<String>,
    manage_master_user_password: Option<bool>,
    rotate_master_user_password: Option<bool>,
    master_user_secret_kms_key_id: Option<String>,
}

/// Applies a change now, or keeps it in `PendingModifiedValues` for the maintenance window.
fn change<T: Serialize>(
    i: &mut DbInstance,
    now: bool,
    member: &str,
    value: T,
    apply: impl FnOnce(&mut DbInstance, T),
) -> bool {
    if now {
        apply(i, value);
        i.pending.remove(member);
        true
    } else {
        i.pending.insert(
            member.into(),
            serde_json::to_value(&value).unwrap_or_default(),
        );
        false
    }
}

pub async fn modify_db_instance(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ModifyRequest = input(raw)?;
    let name = id_of(&req.db_instance_identifier);
    let new_name = req
        .new_db_instance_identifier
        .as_deref()
        .map(|n| check_identifier("NewDBInstanceIdentifier", n, 63))
        .transpose()?;
    let port = check_port(req.db_port_number)?;
    let retention = check_retention(req.backup_retention_period)?;
    let mut tx = ctx.store.write().await?;
    let mut i = must(ctx, &mut tx, &name).await?;
    if !matches!(i.status.as_str(), "available" | "storage-optimization") {
        return Err(not_available(&name));
    }
    let e = i.engine_def().ok_or_else(|| invalid("Invalid DB engine"))?;
    let now = req.apply_immediately;
    let mut busy = false;
    let mut message = Vec::new();
    if let Some(class) = req.db_instance_class.clone() {
        check_class(e, &i.engine_version, &class)?;
        if class != i.db_instance_class {
            busy |= change(&mut i, now, "DBInstanceClass", class, |i, v| {
                i.db_instance_class = v
            });
        }
    }
    if req.allocated_storage.is_some() || req.storage_type.is_some() || req.iops.is_some() {
        let size = req.allocated_storage.unwrap_or(i.allocated_storage);
        if size < i.allocated_storage {
            return Err(invalid(
                "Invalid storage size: allocated storage can only grow",
            ));
        }
        let st = req
            .storage_type
            .clone()
            .unwrap_or_else(|| i.storage_type.clone());
        let iops = req
            .iops
            .or(if st.starts_with("io") { i.iops } else { None });
        check_storage(e, &st, size, iops)?;
        if size != i.allocated_storage {
            busy |= change(&mut i, now, "AllocatedStorage", size, |i, v| {
                i.allocated_storage = v
            });
        }
        if st != i.storage_type {
            busy |= change(&mut i, now, "StorageType", st, |i, v| i.storage_type = v);
        }
        i.iops = iops;
    }
    if let Some(t) = req.storage_throughput {
        i.storage_throughput = Some(t);
    }
    if let Some(m) = req.max_allocated_storage {
        i.max_allocated_storage = Some(m);
    }
    if let Some(p) = &req.master_user_password {
        if i.read_replica_source.is_some() {
            return Err(combination(
                "A read replica's master password is its source's.",
            ));
        }
        check_password(e, p)?;
        // Always at once, as in RDS.
        i.kumori_password = p.clone();
        i.status = "resetting-master-credentials".into();
        message.push("Reset master credentials".to_string());
    }
    if let Some(r) = retention {
        if r == 0 && !i.read_replicas.is_empty() {
            return Err(combination(
                "Cannot set backup retention period to 0 on a DB instance with read replicas.",
            ));
        }
        i.backup_retention_period = r;
    }
    if let Some(w) = &req.preferred_backup_window {
        i.preferred_backup_window = w.clone();
    }
    if let Some(w) = &req.preferred_maintenance_window {
        i.preferred_maintenance_window = w.to_ascii_lowercase();
    }
    if let Some(m) = req.multi_az
        && m != i.multi_az
    {
        if m && i.read_replica_source.is_some() {
            // RDS allows Multi-AZ replicas; kumori's replicas have no standby.
            return Err(combination("kumori keeps no standby for a read replica"));
        }
        busy |= change(&mut i, now, "MultiAZ", m, |i, v| {
            i.multi_az = v;
            i.secondary_availability_zone = None;
        });
        if i.multi_az && i.secondary_availability_zone.is_none() {
            let g = subnet_groups::get(ctx, &mut tx, &i.db_subnet_group).await?;
            i.secondary_availability_zone =
                g.and_then(|g| g.zones().into_iter().find(|z| *z != i.availability_zone));
        }
    }
    if let Some(v) = &req.engine_version {
        let (version, major) = engines::resolve(e, Some(v))?;
        let (_, current) = engines::resolve(e, Some(&i.engine_version))?;
        if major.major != current.major && !req.allow_major_version_upgrade {
            return Err(combination(
                "The AllowMajorVersionUpgrade flag must be present when upgrading to a new major version.",
            ));
        }
        if version != i.engine_version {
            let version = version.to_string();
            busy |= change(&mut i, now, "EngineVersion", version, |i, v| {
                i.engine_version = v
            });
        }
    }
    if let Some(a) = req.auto_minor_version_upgrade {
        i.auto_minor_version_upgrade = a;
    }
    if let Some(o) = &req.option_group_name {
        let (_, major) = engines::resolve(e, Some(&i.engine_version))?;
        if *o != engines::default_option_group(e, major) {
            return Err(Error::new(
                "OptionGroupNotFoundFault",
                format!("Specified OptionGroupName: {o} not found."),
            ));
        }
    }
    if let Some(c) = &req.ca_certificate_identifier {
        i.ca_certificate_identifier = c.clone();
    }
    if let Some(c) = req.copy_tags_to_snapshot {
        i.copy_tags_to_snapshot = c;
    }
    if let Some(m) = req.monitoring_interval {
        i.monitoring_interval = m;
    }
    if let Some(p) = req.publicly_accessible {
        i.publicly_accessible = p;
    }
    if let Some(a) = req.enable_iam_database_authentication {
        i.iam_database_authentication_enabled = a;
    }
    if let Some(a) = req.enable_performance_insights {
        i.performance_insights_enabled = a;
    }
    if let Some(d) = req.deletion_protection {
        i.deletion_protection = d;
    }
    if let Some(n) = &req.network_type {
        i.network_type = n.clone();
    }
    if let Some(p) = port
        && p != i.port
    {
        // The port changes at once whatever ApplyImmediately says, as in RDS.
        i.port = p;
        busy = true;
    }
    if let Some(groups) = &req.vpc_security_group_ids {
        i.vpc_security_groups = security_groups(ctx, &mut tx, groups, &i.vpc_id).await?;
        if let Some(eni) = &i.kumori_interface {
            crate::ec2::api::dress_managed_interface(
                ctx,
                &mut tx,
                eni,
                &i.vpc_security_groups,
                i.publicly_accessible,
            )
            .await?;
        }
    }
    if let Some(sg) = &req.db_subnet_group_name
        && !sg.eq_ignore_ascii_case(&i.db_subnet_group)
    {
        return Err(Error::new(
            "NotImplemented",
            "kumori does not move a DB instance to another DB subnet group",
        ));
    }
    if let Some(pg_name) = &req.db_parameter_group_name {
        let (_, major) = engines::resolve(e, Some(&i.engine_version))?;
        let pg = parameter_group(ctx, &mut tx, Some(pg_name), major.family).await?;
        if pg.name != i.db_parameter_group {
            // A new parameter group takes effect at the next reboot.
            i.db_parameter_group = pg.name;
            i.parameter_apply_status = "pending-reboot".into();
        }
    }
    match (req.manage_master_user_password, &i.master_user_secret) {
        (Some(true), None) => {
            if req.master_user_password.is_some() {
                return Err(combination(
                    "You can't specify MasterUserPassword and ManageMasterUserPassword together.",
                ));
            }
            let password = super::api::generated_password();
            i.kumori_password = password.clone();
            i.master_user_secret = Some(
                super::api::managed_secret(
                    ctx,
                    &mut tx,
                    &i,
                    &password,
                    req.master_user_secret_kms_key_id.as_deref(),
                )
                .await?,
            );
            i.status = "resetting-master-credentials".into();
        }
        (Some(false), Some(s)) => {
            if req.master_user_password.is_none() {
                return Err(combination(
                    "You must specify MasterUserPassword when turning ManageMasterUserPassword off.",
                ));
            }
            let arn = s["SecretArn"].as_str().unwrap_or_default().to_string();
            super::api::forget_secret(ctx, &mut tx, &arn).await?;
            i.master_user_secret = None;
        }
        _ => {}
    }
    if req.rotate_master_user_password == Some(true) {
        if i.master_user_secret.is_none() {
            return Err(combination(
                "RotateMasterUserPassword needs ManageMasterUserPassword on.",
            ));
        }
        let password = super::api::generated_password();
        i.kumori_password = password.clone();
        super::api::rotate_secret(ctx, &mut tx, &i, &password).await?;
        i.status = "resetting-master-credentials".into();
    }
    if busy && i.status == "available" {
        i.status = "modifying".into();
    }
    if let Some(n) = new_name
        && n != i.db_instance_identifier
    {
        if tx.lock(ctx.scope(), &key(&n)).await?.is_some() {
            return Err(Error::new(
                "DBInstanceAlreadyExists",
                "DB instance already exists",
            ));
        }
        tx.delete(ctx.scope(), &i.kumori_key).await?;
        let tags = crate::kit::tags_of(&mut tx, ctx.scope(), &i.arn).await?;
        tx.set_tags(ctx.scope(), &i.arn, KIND, &[]).await?;
        i.db_instance_identifier = n.clone();
        i.arn = super::arn(ctx, "db", &n);
        store_tags(ctx, &mut tx, &i.arn, KIND, &tags).await?;
        message.push(format!("Renamed instance from {name} to {n}"));
    }
    save(ctx, &mut tx, &i).await?;
    events::record(
        ctx,
        &mut tx,
        "db-instance",
        &i.db_instance_identifier,
        &i.arn,
        "configuration change",
        if message.is_empty() {
            "Applied modifications to the DB instance".to_string()
        } else {
            message.join("; ")
        },
    )
    .await?;
    answer(ctx, tx, &i).await
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RebootRequest {
    #[serde(rename = "DBInstanceIdentifier")]
    db_instance_identifier: String,
    #[serde(default)]
    force_failover: bool,
}

pub async fn reboot_db_instance(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: RebootRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let mut i = must(ctx, &mut tx, &req.db_instance_identifier).await?;
    if i.status != "available" {
        return Err(not_available(&i.db_instance_identifier));
    }
    // A reboot applies a new parameter group and pending-reboot changes.
    let pg = parameter_groups::get(ctx, &mut tx, &i.db_parameter_group).await?;
    if let Some(pg) = pg {
        i.kumori_parameters = pg.settings();
    }
    i.parameter_apply_status = "in-sync".into();
    let message;
    if req.force_failover {
        if !i.multi_az {
            return Err(combination(
                "Cannot force a failover on a DB instance that is not Multi-AZ.",
            ));
        }
        let Some(other) = i.secondary_availability_zone.clone() else {
            return Err(not_available(&i.db_instance_identifier));
        };
        // The standby's zone becomes the instance's, and its endpoint moves there.
        let g = subnet_groups::get(ctx, &mut tx, &i.db_subnet_group)
            .await?
            .ok_or_else(|| subnet_groups::not_found(&i.db_subnet_group))?;
        let subnet = g
            .subnets
            .iter()
            .find(|s| s.availability_zone == other)
            .map(|s| s.subnet_id.clone())
            .ok_or_else(|| not_available(&i.db_instance_identifier))?;
        detach_interface(ctx, &mut tx, &mut i).await?;
        attach_interface(ctx, &mut tx, &mut i, &subnet).await?;
        i.secondary_availability_zone = Some(std::mem::replace(&mut i.availability_zone, other));
        i.kumori_failovers += 1;
        message = "Multi-AZ instance failover started.";
    } else {
        i.kumori_reboots += 1;
        message = "DB instance restarted";
    }
    i.status = "rebooting".into();
    save(ctx, &mut tx, &i).await?;
    events::record(
        ctx,
        &mut tx,
        "db-instance",
        &i.db_instance_identifier,
        &i.arn,
        if req.force_failover {
            "failover"
        } else {
            "availability"
        },
        message,
    )
    .await?;
    answer(ctx, tx, &i).await
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StopRequest {
    #[serde(rename = "DBInstanceIdentifier")]
    db_instance_identifier: String,
    #[serde(rename = "DBSnapshotIdentifier")]
    db_snapshot_identifier: Option<String>,
}

pub async fn stop_db_instance(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: StopRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let mut i = must(ctx, &mut tx, &req.db_instance_identifier).await?;
    if i.read_replica_source.is_some() || !i.read_replicas.is_empty() {
        return Err(Error::new(
            "InvalidDBInstanceState",
            "Cannot stop or start a Read Replica instance, or a source instance with read replicas.",
        ));
    }
    if i.status != "available" {
        return Err(not_available(&i.db_instance_identifier));
    }
    if let Some(s) = &req.db_snapshot_identifier {
        super::snapshots::begin(ctx, &mut tx, &i, s, "manual").await?;
    }
    i.status = "stopping".into();
    i.kumori_run = false;
    saved(ctx, tx, &i, "notification", "DB instance is being stopped").await
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StartRequest {
    #[serde(rename = "DBInstanceIdentifier")]
    db_instance_identifier: String,
}

pub async fn start_db_instance(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: StartRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let mut i = must(ctx, &mut tx, &req.db_instance_identifier).await?;
    if i.status != "stopped" {
        return Err(Error::new(
            "InvalidDBInstanceState",
            format!(
                "Instance {} is not stopped, cannot be started.",
                i.db_instance_identifier
            ),
        ));
    }
    i.status = "starting".into();
    i.kumori_run = true;
    saved(ctx, tx, &i, "notification", "DB instance is being started").await
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PromoteRequest {
    #[serde(rename = "DBInstanceIdentifier")]
    db_instance_identifier: String,
    backup_retention_period: Option<i64>,
    preferred_backup_window: Option<String>,
}

/// Stops a replica following its source (in `tx`): it becomes an instance of its own.
async fn detach_replica(ctx: &Ctx<'_>, tx: &mut Tx, i: &mut DbInstance) -> Result<()> {
    if let Some(src) = i.read_replica_source.take()
        && let Some(mut s) = get(ctx, tx, &src, true).await?
    {
        s.read_replicas.retain(|r| *r != i.db_instance_identifier);
        save(ctx, tx, &s).await?;
    }
    i.kumori_promote = true;
    Ok(())
}

pub async fn promote_read_replica(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: PromoteRequest = input(raw)?;
    let retention = check_retention(req.backup_retention_period)?;
    let mut tx = ctx.store.write().await?;
    let mut i = must(ctx, &mut tx, &req.db_instance_identifier).await?;
    if i.read_replica_source.is_none() {
        return Err(Error::new(
            "InvalidDBInstanceState",
            format!(
                "DB Instance {} is not a read replica.",
                i.db_instance_identifier
            ),
        ));
    }
    if i.status != "available" {
        return Err(not_available(&i.db_instance_identifier));
    }
    detach_replica(ctx, &mut tx, &mut i).await?;
    i.backup_retention_period = retention.unwrap_or(1);
    if let Some(w) = req.preferred_backup_window {
        i.preferred_backup_window = w;
    }
    i.status = "modifying".into();
    saved(
        ctx,
        tx,
        &i,
        "read replica",
        "Promoted Read Replica to a stand-alone database instance",
    )
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteRequest {
    #[serde(rename = "DBInstanceIdentifier")]
    db_instance_identifier: String,
    #[serde(default)]
    skip_final_snapshot: bool,
    #[serde(rename = "FinalDBSnapshotIdentifier")]
    final_db_snapshot_identifier: Option<String>,
    delete_automated_backups: Option<bool>,
}

pub async fn delete_db_instance(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DeleteRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let mut i = must(ctx, &mut tx, &req.db_instance_identifier).await?;
    match (&req.final_db_snapshot_identifier, req.skip_final_snapshot) {
        (Some(_), true) => {
            return Err(combination(
                "FinalDBSnapshotIdentifier can not be specified when deleting a database instance with SkipFinalSnapshot enabled.",
            ));
        }
        (None, false) if i.read_replica_source.is_none() => {
            return Err(combination(
                "FinalDBSnapshotIdentifier is required unless SkipFinalSnapshot is specified.",
            ));
        }
        (Some(_), false) if i.read_replica_source.is_some() => {
            return Err(combination(
                "FinalDBSnapshotIdentifier can not be specified when deleting a replica instance",
            ));
        }
        _ => {}
    }
    if i.deletion_protection {
        return Err(combination(
            "Cannot delete protected DB Instance, please disable deletion protection and try again.",
        ));
    }
    if i.status == "deleting" {
        return Err(Error::new(
            "InvalidDBInstanceState",
            format!(
                "Instance {} is already being deleted.",
                i.db_instance_identifier
            ),
        ));
    }
    if let Some(s) = &req.final_db_snapshot_identifier {
        if i.status != "available" && i.status != "stopped" {
            return Err(not_available(&i.db_instance_identifier));
        }
        super::snapshots::begin(ctx, &mut tx, &i, s, "manual").await?;
        i.kumori_final_snapshot = Some(s.to_ascii_lowercase());
    }
    // A deleted source's replicas become instances of their own, as in RDS.
    for r in std::mem::take(&mut i.read_replicas) {
        if let Some(mut rep) = get(ctx, &mut tx, &r, true).await? {
            rep.read_replica_source = None;
            rep.kumori_promote = true;
            save(ctx, &mut tx, &rep).await?;
        }
    }
    detach_replica(ctx, &mut tx, &mut i).await?;
    i.kumori_promote = false;
    if req.delete_automated_backups.unwrap_or(true) {
        super::snapshots::drop_automated(ctx, &mut tx, &i.db_instance_identifier).await?;
    }
    i.status = "deleting".into();
    saved(ctx, tx, &i, "deletion", "DB instance deleted").await
}
