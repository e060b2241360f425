//! The catalogue: which engines, versions and instance classes RDS offers, each version
//! list with the AWS page it was taken from. `DescribeDBEngineVersions`,
//! `DescribeOrderableDBInstanceOptions` and the option groups' defaults are read from it,
//! and CreateDBInstance checks against it.
//!
//! What serves a version here is not that version: `postgres` is Debian's PostgreSQL and
//! `mysql`/`mariadb` Debian's MariaDB (see the README). The catalogue is what RDS answers.

use super::{Filter, combination, invalid, known_filters, passes};
use crate::{Ctx, Result, input};
use serde::Deserialize;
use serde_json::{Value, json};

pub const OPERATIONS: &[crate::kit::Op] = crate::operations![
    "DescribeDBEngineVersions" => describe_db_engine_versions,
    "DescribeOrderableDBInstanceOptions" => describe_orderable_db_instance_options,
    "DescribeOptionGroups" => describe_option_groups,
    "DescribeOptionGroupOptions" => describe_option_group_options,
];

/// Which real server runs an engine's instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serves {
    Postgres,
    Mariadb,
}

pub struct Major {
    pub major: &'static str,
    pub family: &'static str,
    /// Oldest first; the last is the newest.
    pub versions: &'static [&'static str],
    pub default: &'static str,
}

pub struct Engine {
    pub name: &'static str,
    pub description: &'static str,
    pub license: &'static str,
    pub port: u16,
    pub serves: Serves,
    pub majors: &'static [Major],
    /// The major version a CreateDBInstance without EngineVersion gets.
    pub default_major: &'static str,
    /// Where the versions were read.
    pub source: &'static str,
    /// Master user names: at most this long.
    pub max_user: usize,
    /// Master passwords: at most this long.
    pub max_password: usize,
    pub log_types: &'static [&'static str],
}

pub static ENGINES: &[Engine] = &[
    Engine {
        name: "postgres",
        description: "PostgreSQL",
        license: "postgresql-license",
        port: 5432,
        serves: Serves::Postgres,
        majors: &[
            Major {
                major: "13",
                family: "postgres13",
                versions: &["13.18", "13.20", "13.21"],
                default: "13.20",
            },
            Major {
                major: "14",
                family: "postgres14",
                versions: &["14.15", "14.17", "14.18"],
                default: "14.17",
            },
            Major {
                major: "15",
                family: "postgres15",
                versions: &["15.10", "15.12", "15.13"],
                default: "15.12",
            },
            Major {
                major: "16",
                family: "postgres16",
                versions: &["16.6", "16.8", "16.9"],
                default: "16.8",
            },
            Major {
                major: "17",
                family: "postgres17",
                versions: &["17.2", "17.4", "17.5"],
                default: "17.4",
            },
        ],
        default_major: "17",
        source: "https://docs.aws.amazon.com/AmazonRDS/latest/PostgreSQLReleaseNotes/postgresql-versions.html",
        max_user: 63,
        max_password: 128,
        log_types: &["postgresql", "upgrade"],
    },
    Engine {
        name: "mysql",
        description: "MySQL Community Edition",
        license: "general-public-license",
        port: 3306,
        serves: Serves::Mariadb,
        majors: &[
            Major {
                major: "8.0",
                family: "mysql8.0",
                versions: &["8.0.39", "8.0.40", "8.0.41", "8.0.42"],
                default: "8.0.41",
            },
            Major {
                major: "8.4",
                family: "mysql8.4",
                versions: &["8.4.3", "8.4.4", "8.4.5"],
                default: "8.4.5",
            },
        ],
        default_major: "8.0",
        source: "https://docs.aws.amazon.com/AmazonRDS/latest/MySQLReleaseNotes/mysql-versions.html",
        max_user: 32,
        max_password: 41,
        log_types: &["audit", "error", "general", "slowquery"],
    },
    Engine {
        name: "mariadb",
        description: "MariaDB Community Edition",
        license: "general-public-license",
        port: 3306,
        serves: Serves::Mariadb,
        majors: &[
            Major {
                major: "10.6",
                family: "mariadb10.6",
                versions: &["10.6.20", "10.6.21"],
                default: "10.6.21",
            },
            Major {
                major: "10.11",
                family: "mariadb10.11",
                versions: &["10.11.10", "10.11.11"],
                default: "10.11.11",
            },
            Major {
                major: "11.4",
                family: "mariadb11.4",
                versions: &["11.4.4", "11.4.5"],
                default: "11.4.5",
            },
        ],
        default_major: "11.4",
        source: "https://docs.aws.amazon.com/AmazonRDS/latest/MariaDBReleaseNotes/mariadb-versions.html",
        max_user: 16,
        max_password: 41,
        log_types: &["audit", "error", "general", "slowquery"],
    },
];

/// Instance classes and their memory in GiB (from RDS's instance class table:
/// https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/Concepts.DBInstanceClass.Summary.html).
pub static CLASSES: &[(&str, f64)] = &[
    ("db.t3.micro", 1.0),
    ("db.t3.small", 2.0),
    ("db.t3.medium", 4.0),
    ("db.t3.large", 8.0),
    ("db.t4g.micro", 1.0),
    ("db.t4g.small", 2.0),
    ("db.t4g.medium", 4.0),
    ("db.t4g.large", 8.0),
    ("db.m5.large", 8.0),
    ("db.m5.xlarge", 16.0),
    ("db.m6g.large", 8.0),
    ("db.m6i.large", 8.0),
    ("db.m7g.large", 8.0),
    ("db.r5.large", 16.0),
    ("db.r6g.large", 16.0),
    ("db.r6i.large", 16.0),
    ("db.r7g.large", 16.0),
];

/// Storage types with their size limits in GiB.
pub static STORAGE: &[(&str, i64, i64)] = &[
    ("gp2", 20, 65536),
    ("gp3", 20, 65536),
    ("io1", 100, 65536),
    ("io2", 100, 65536),
    ("standard", 20, 3072),
];

/// Why instances of `serves` cannot run on this machine (its server is not installed),
/// naming the Debian package that brings it.
pub fn missing(serves: Serves) -> Option<String> {
    static PROGRAMS: std::sync::OnceLock<kumori_databases::Programs> = std::sync::OnceLock::new();
    let programs = PROGRAMS.get_or_init(kumori_databases::Programs::find);
    programs.missing(match serves {
        Serves::Postgres => kumori_databases::Kind::Postgres,
        Serves::Mariadb => kumori_databases::Kind::Mariadb,
    })
}

pub fn engine(name: &str) -> Option<&'static Engine> {
    ENGINES.iter().find(|e| e.name == name)
}

/// The engine named, or RDS's refusal (Aurora is not served here).
pub fn engine_or_error(name: &str) -> Result<&'static Engine> {
    if name.starts_with("aurora") {
        return Err(crate::Error::new(
            "NotImplemented",
            format!("kumori does not serve Aurora (engine {name}): use postgres, mysql or mariadb"),
        ));
    }
    engine(name).ok_or_else(|| invalid("Invalid DB engine"))
}

/// The full version and family a requested version means: a full version as listed, or a
/// major version alone (its default minor), or nothing (the engine's default).
pub fn resolve(e: &'static Engine, asked: Option<&str>) -> Result<(&'static str, &'static Major)> {
    let asked = asked.unwrap_or(e.default_major);
    for m in e.majors {
        if m.major == asked {
            return Ok((m.default, m));
        }
        if let Some(v) = m.versions.iter().find(|v| **v == asked) {
            return Ok((v, m));
        }
    }
    Err(combination(format!(
        "Cannot find version {asked} for {}",
        e.name
    )))
}

pub fn family_of(family: &str) -> Option<(&'static Engine, &'static Major)> {
    ENGINES
        .iter()
        .flat_map(|e| e.majors.iter().map(move |m| (e, m)))
        .find(|(_, m)| m.family == family)
}

pub fn class_exists(class: &str) -> bool {
    CLASSES.iter().any(|(c, _)| *c == class)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct VersionsRequest {
    engine: Option<String>,
    engine_version: Option<String>,
    #[serde(rename = "DBParameterGroupFamily")]
    db_parameter_group_family: Option<String>,
    #[serde(default)]
    filters: Vec<Filter>,
    max_records: Option<i64>,
    marker: Option<String>,
    #[serde(default)]
    default_only: bool,
}

fn version_view(e: &Engine, m: &Major, v: &str) -> Value {
    json!({
        "Engine": e.name,
        "EngineVersion": v,
        "MajorEngineVersion": m.major,
        "DBParameterGroupFamily": m.family,
        "DBEngineDescription": e.description,
        "DBEngineVersionDescription": format!("{} {v}", e.description),
        "ValidUpgradeTarget": [],
        "ExportableLogTypes": e.log_types,
        "SupportsLogExportsToCloudwatchLogs": true,
        "SupportsReadReplica": true,
        "SupportedEngineModes": ["provisioned"],
        "SupportedFeatureNames": [],
        "Status": "available",
        "SupportsParallelQuery": false,
        "SupportsGlobalDatabases": false,
        "SupportsBabelfish": false,
        "SupportsLimitlessDatabase": false,
        "SupportsCertificateRotationWithoutRestart": true,
        "SupportedCACertificateIdentifiers": ["rds-ca-ecc384-g1", "rds-ca-rsa2048-g1", "rds-ca-rsa4096-g1"],
        "SupportsLocalWriteForwarding": false,
        "SupportsIntegrations": false,
    })
}

pub async fn describe_db_engine_versions(_ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: VersionsRequest = input(raw)?;
    known_filters(
        &req.filters,
        &[
            "db-parameter-group-family",
            "engine",
            "engine-version",
            "engine-mode",
            "status",
        ],
    )?;
    if let Some(name) = &req.engine
        && engine(name).is_none()
    {
        return Err(invalid(format!("Unrecognized engine name: {name}")));
    }
    let mut items = Vec::new();
    for e in ENGINES {
        if req.engine.as_deref().is_some_and(|n| n != e.name)
            || !passes(&req.filters, "engine", e.name)
        {
            continue;
        }
        for m in e.majors {
            if req
                .db_parameter_group_family
                .as_deref()
                .is_some_and(|f| f != m.family)
                || !passes(&req.filters, "db-parameter-group-family", m.family)
            {
                continue;
            }
            for v in m.versions {
                let asked = req.engine_version.as_deref();
                if asked.is_some_and(|a| a != *v && a != m.major) {
                    continue;
                }
                if !passes(&req.filters, "engine-version", v)
                    || !passes(&req.filters, "status", "available")
                {
                    continue;
                }
                if req.default_only && *v != m.default {
                    continue;
                }
                if req.default_only && req.engine_version.is_none() && m.major != e.default_major {
                    continue;
                }
                items.push((
                    format!("{}/{:>8}/{v:>10}", e.name, m.major),
                    version_view(e, m, v),
                ));
            }
        }
    }
    super::page(
        items,
        "DBEngineVersions",
        req.marker.as_deref(),
        req.max_records,
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct OrderableRequest {
    engine: String,
    engine_version: Option<String>,
    #[serde(rename = "DBInstanceClass")]
    db_instance_class: Option<String>,
    license_model: Option<String>,
    vpc: Option<bool>,
    #[serde(default)]
    filters: Vec<Filter>,
    max_records: Option<i64>,
    marker: Option<String>,
}

pub async fn describe_orderable_db_instance_options(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: OrderableRequest = input(raw)?;
    let e = engine_or_error(&req.engine)?;
    known_filters(&req.filters, &[])?;
    let zones: Vec<Value> = crate::ec2::api::zones(ctx.region)
        .into_iter()
        .map(|z| json!({ "Name": z }))
        .collect();
    let mut items = Vec::new();
    if req.vpc == Some(false) || req.license_model.as_deref().is_some_and(|l| l != e.license) {
        return super::page(items, "OrderableDBInstanceOptions", None, req.max_records);
    }
    for m in e.majors {
        for v in m.versions {
            if req
                .engine_version
                .as_deref()
                .is_some_and(|a| a != *v && a != m.major)
            {
                continue;
            }
            for (class, _) in CLASSES {
                if req
                    .db_instance_class
                    .as_deref()
                    .is_some_and(|c| c != *class)
                {
                    continue;
                }
                for (storage, min, max) in STORAGE {
                    let iops = storage.starts_with("io");
                    let mut o = json!({
                        "Engine": e.name,
                        "EngineVersion": v,
                        "DBInstanceClass": class,
                        "LicenseModel": e.license,
                        "AvailabilityZones": zones,
                        "MultiAZCapable": true,
                        "ReadReplicaCapable": true,
                        "Vpc": true,
                        "SupportsStorageEncryption": true,
                        "StorageType": storage,
                        "SupportsIops": iops || *storage == "gp3",
                        "SupportsStorageThroughput": *storage == "gp3",
                        "SupportsEnhancedMonitoring": true,
                        "SupportsIAMDatabaseAuthentication": true,
                        "SupportsPerformanceInsights": true,
                        "MinStorageSize": min,
                        "MaxStorageSize": max,
                        "SupportedEngineModes": ["provisioned"],
                        "SupportsStorageAutoscaling": true,
                        "SupportsKerberosAuthentication": false,
                        "OutpostCapable": false,
                        "SupportsGlobalDatabases": false,
                        "SupportedNetworkTypes": ["IPV4", "DUAL"],
                        "SupportsClusters": false,
                        "SupportsDedicatedLogVolume": false,
                        "AvailableProcessorFeatures": [],
                    });
                    if iops {
                        o["MinIopsPerDbInstance"] = json!(1000);
                        o["MaxIopsPerDbInstance"] = json!(256000);
                        o["MinIopsPerGib"] = json!(1.0);
                        o["MaxIopsPerGib"] = json!(50.0);
                    }
                    items.push((format!("{:>10}/{class:>16}/{storage:>8}", v), o));
                }
            }
        }
    }
    super::page(
        items,
        "OrderableDBInstanceOptions",
        req.marker.as_deref(),
        req.max_records,
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct OptionGroupsRequest {
    option_group_name: Option<String>,
    engine_name: Option<String>,
    major_engine_version: Option<String>,
    #[serde(default)]
    filters: Vec<Filter>,
    max_records: Option<i64>,
    marker: Option<String>,
}

/// The default option group of an engine's major version (`default:postgres-16`).
pub fn default_option_group(e: &Engine, m: &Major) -> String {
    format!("default:{}-{}", e.name, m.major.replace('.', "-"))
}

/// Only the default option groups exist here (CreateOptionGroup answers NotImplemented).
pub async fn describe_option_groups(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: OptionGroupsRequest = input(raw)?;
    known_filters(&req.filters, &[])?;
    let mut items = Vec::new();
    for e in ENGINES {
        if req.engine_name.as_deref().is_some_and(|n| n != e.name) {
            continue;
        }
        for m in e.majors {
            if req
                .major_engine_version
                .as_deref()
                .is_some_and(|v| v != m.major)
            {
                continue;
            }
            let name = default_option_group(e, m);
            if req.option_group_name.as_deref().is_some_and(|n| n != name) {
                continue;
            }
            items.push((
                name.clone(),
                json!({
                    "OptionGroupName": name,
                    "OptionGroupDescription": format!("Default option group for {} {}", e.name, m.major),
                    "EngineName": e.name,
                    "MajorEngineVersion": m.major,
                    "Options": [],
                    "AllowsVpcAndNonVpcInstanceMemberships": true,
                    "OptionGroupArn": super::arn(ctx, "og", &name),
                }),
            ));
        }
    }
    if let Some(n) = &req.option_group_name
        && items.is_empty()
    {
        return Err(crate::Error::new(
            "OptionGroupNotFoundFault",
            format!("Specified OptionGroupName: {n} not found."),
        ));
    }
    super::page(
        items,
        "OptionGroupsList",
        req.marker.as_deref(),
        req.max_records,
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct OptionGroupOptionsRequest {
    engine_name: String,
}

pub async fn describe_option_group_options(_ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: OptionGroupOptionsRequest = input(raw)?;
    engine_or_error(&req.engine_name)?;
    Ok(json!({ "OptionGroupOptions": [] }))
}
