//! DB parameter groups: a family's engine defaults with the values a user set. A change
//! applied `immediate` to a dynamic parameter reaches the instances using the group at once
//! (PostgreSQL reloads it); `pending-reboot`, and every static parameter, waits for the
//! instance's next reboot, which the instance shows as `ParameterApplyStatus`.

use super::engines::{self, Serves};
use super::{check_identifier, check_tags, combination, invalid, store_tags};
use crate::kit::Tag;
use crate::resource::{self, Resource};
use crate::{Ctx, Error, Result, input};
use kumori_store::Tx;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub const OPERATIONS: &[crate::kit::Op] = crate::operations![
    "CreateDBParameterGroup" => create_db_parameter_group,
    "DescribeDBParameterGroups" => describe_db_parameter_groups,
    "DescribeDBParameters" => describe_db_parameters,
    "DescribeEngineDefaultParameters" => describe_engine_default_parameters,
    "ModifyDBParameterGroup" => modify_db_parameter_group,
    "ResetDBParameterGroup" => reset_db_parameter_group,
    "DeleteDBParameterGroup" => delete_db_parameter_group,
];

pub const KIND: &str = "rds-db-parameter-group";

pub fn key(name: &str) -> String {
    format!("rds-parameter-group/{}", name.to_ascii_lowercase())
}

pub fn not_found(name: &str) -> Error {
    Error::new(
        "DBParameterGroupNotFound",
        format!("DBParameterGroup not found: {name}"),
    )
}

/// One parameter of an engine: name, default, `static` or `dynamic`, type, allowed values,
/// whether a user may set it.
pub struct Param {
    pub name: &'static str,
    pub default: Option<&'static str>,
    pub dynamic: bool,
    pub data_type: &'static str,
    pub allowed: &'static str,
    pub modifiable: bool,
    pub description: &'static str,
}

const fn p(
    name: &'static str,
    default: Option<&'static str>,
    dynamic: bool,
    data_type: &'static str,
    allowed: &'static str,
    description: &'static str,
) -> Param {
    Param {
        name,
        default,
        dynamic,
        data_type,
        allowed,
        modifiable: true,
        description,
    }
}

/// PostgreSQL's parameters most set through RDS (names and types as PostgreSQL's own).
static POSTGRES: &[Param] = &[
    p(
        "application_name",
        None,
        true,
        "string",
        "",
        "Sets the application name to be reported in statistics and logs.",
    ),
    p(
        "idle_in_transaction_session_timeout",
        None,
        true,
        "integer",
        "0-2147483647",
        "Sets the maximum allowed idle time between queries, when in a transaction.",
    ),
    p(
        "log_connections",
        None,
        true,
        "boolean",
        "0,1",
        "Logs each successful connection.",
    ),
    p(
        "log_disconnections",
        None,
        true,
        "boolean",
        "0,1",
        "Logs end of a session, including duration.",
    ),
    p(
        "log_min_duration_statement",
        None,
        true,
        "integer",
        "-1-2147483647",
        "Sets the minimum execution time above which statements will be logged.",
    ),
    p(
        "log_statement",
        None,
        true,
        "string",
        "none,ddl,mod,all",
        "Sets the type of statements logged.",
    ),
    p(
        "maintenance_work_mem",
        None,
        true,
        "integer",
        "1024-2147483647",
        "Sets the maximum memory to be used for maintenance operations.",
    ),
    p(
        "max_connections",
        Some("100"),
        false,
        "integer",
        "6-8388607",
        "Sets the maximum number of concurrent connections.",
    ),
    p(
        "random_page_cost",
        None,
        true,
        "real",
        "0-2147483647",
        "Sets the planner's estimate of the cost of a nonsequentially fetched disk page.",
    ),
    p(
        "rds.force_ssl",
        Some("0"),
        true,
        "boolean",
        "0,1",
        "Force SSL connections.",
    ),
    p(
        "search_path",
        None,
        true,
        "string",
        "",
        "Sets the schema search order for names that are not schema-qualified.",
    ),
    p(
        "shared_preload_libraries",
        Some("pg_stat_statements"),
        false,
        "list",
        "auto_explain,pg_stat_statements,pg_cron,pgaudit",
        "Lists shared libraries to preload into server.",
    ),
    p(
        "statement_timeout",
        None,
        true,
        "integer",
        "0-2147483647",
        "Sets the maximum allowed duration of any statement.",
    ),
    p(
        "timezone",
        Some("UTC"),
        true,
        "string",
        "",
        "Sets the time zone for displaying and interpreting time stamps.",
    ),
    p(
        "work_mem",
        None,
        true,
        "integer",
        "64-2147483647",
        "Sets the maximum memory to be used for query workspaces.",
    ),
];

/// MySQL's and MariaDB's parameters most set through RDS.
static MYSQL: &[Param] = &[
    p(
        "binlog_format",
        Some("ROW"),
        true,
        "string",
        "ROW,STATEMENT,MIXED",
        "What form of binary logging the master will use.",
    ),
    p(
        "character_set_server",
        None,
        true,
        "string",
        "big5,latin1,utf8,utf8mb4",
        "The server's default character set.",
    ),
    p(
        "collation_server",
        None,
        true,
        "string",
        "",
        "The server's default collation.",
    ),
    p(
        "general_log",
        None,
        true,
        "boolean",
        "0,1",
        "Whether the general query log is enabled.",
    ),
    p(
        "innodb_buffer_pool_size",
        None,
        false,
        "integer",
        "5242880-9223372036854775807",
        "The size in bytes of the memory buffer InnoDB uses to cache data and indexes.",
    ),
    p(
        "long_query_time",
        None,
        true,
        "float",
        "0-31536000",
        "Queries taking longer than this are logged to the slow query log.",
    ),
    p(
        "max_allowed_packet",
        None,
        true,
        "integer",
        "1024-1073741824",
        "The maximum size of one packet.",
    ),
    p(
        "max_connections",
        None,
        true,
        "integer",
        "1-100000",
        "The number of simultaneous client connections allowed.",
    ),
    p(
        "slow_query_log",
        None,
        true,
        "boolean",
        "0,1",
        "Whether the slow query log is enabled.",
    ),
    p(
        "sql_mode",
        None,
        true,
        "list",
        "",
        "The current SQL server mode.",
    ),
    p(
        "time_zone",
        None,
        true,
        "string",
        "",
        "The server time zone.",
    ),
    p(
        "wait_timeout",
        None,
        true,
        "integer",
        "1-31536000",
        "Seconds the server waits for activity on a connection before closing it.",
    ),
];

pub fn params_of(serves: Serves) -> &'static [Param] {
    match serves {
        Serves::Postgres => POSTGRES,
        Serves::Mariadb => MYSQL,
    }
}

/// A value a user set, with how it is to be applied.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Set {
    pub value: String,
    pub apply_method: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ParameterGroup {
    pub name: String,
    pub family: String,
    pub description: String,
    pub arn: String,
    #[serde(default)]
    pub values: BTreeMap<String, Set>,
    #[serde(skip)]
    pub kumori_key: String,
}

impl Resource for ParameterGroup {
    const KIND: &'static str = KIND;
    fn id(&self) -> &str {
        &self.kumori_key
    }
}

impl ParameterGroup {
    pub fn view(&self) -> Value {
        json!({
            "DBParameterGroupName": self.name,
            "DBParameterGroupFamily": self.family,
            "Description": self.description,
            "DBParameterGroupArn": self.arn,
        })
    }

    fn serves(&self) -> Serves {
        engines::family_of(&self.family)
            .map(|(e, _)| e.serves)
            .unwrap_or(Serves::Postgres)
    }

    /// What a server started now runs with: the values set.
    pub fn settings(&self) -> Vec<(String, String)> {
        self.values
            .iter()
            .map(|(k, s)| (k.clone(), s.value.clone()))
            .collect()
    }
}

pub fn default_name(family: &str) -> String {
    format!("default.{family}")
}

/// The group `name`: one stored, or a family's default group (made as needed).
pub async fn get(ctx: &Ctx<'_>, tx: &mut Tx, name: &str) -> Result<Option<ParameterGroup>> {
    let name = name.to_ascii_lowercase();
    let k = key(&name);
    if let Some(mut g) = resource::get::<ParameterGroup>(ctx, tx, &k).await? {
        g.kumori_key = k;
        return Ok(Some(g));
    }
    Ok(name
        .strip_prefix("default.")
        .and_then(engines::family_of)
        .map(|(_, m)| ParameterGroup {
            name: name.clone(),
            family: m.family.into(),
            description: format!("Default parameter group for {}", m.family),
            arn: super::arn(ctx, "pg", &name),
            values: BTreeMap::new(),
            kumori_key: k.clone(),
        }))
}

async fn save(ctx: &Ctx<'_>, tx: &mut Tx, g: &ParameterGroup) -> Result<()> {
    let mut g = g.clone();
    g.kumori_key = key(&g.name);
    match tx.get(ctx.scope(), &g.kumori_key).await? {
        Some(_) => resource::update(ctx, tx, &g).await,
        None => resource::insert(ctx, tx, &g).await,
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateRequest {
    #[serde(rename = "DBParameterGroupName")]
    db_parameter_group_name: String,
    #[serde(rename = "DBParameterGroupFamily")]
    db_parameter_group_family: String,
    description: String,
    #[serde(default)]
    tags: Vec<Tag>,
}

pub async fn create_db_parameter_group(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: CreateRequest = input(raw)?;
    let name = check_identifier("DBParameterGroupName", &req.db_parameter_group_name, 255)?;
    check_tags(&req.tags)?;
    if engines::family_of(&req.db_parameter_group_family).is_none() {
        return Err(invalid(format!(
            "ParameterGroupFamily {} is not a valid parameter group family",
            req.db_parameter_group_family
        )));
    }
    let mut tx = ctx.store.write().await?;
    if tx.lock(ctx.scope(), &key(&name)).await?.is_some() || name.starts_with("default.") {
        return Err(Error::new(
            "DBParameterGroupAlreadyExists",
            format!("Parameter group {name} already exists"),
        ));
    }
    let g = ParameterGroup {
        arn: super::arn(ctx, "pg", &name),
        name,
        family: req.db_parameter_group_family,
        description: req.description,
        values: BTreeMap::new(),
        kumori_key: String::new(),
    };
    save(ctx, &mut tx, &g).await?;
    store_tags(ctx, &mut tx, &g.arn, KIND, &req.tags).await?;
    tx.commit().await?;
    Ok(json!({ "DBParameterGroup": g.view() }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeRequest {
    #[serde(rename = "DBParameterGroupName")]
    db_parameter_group_name: Option<String>,
    #[serde(default)]
    filters: Vec<super::Filter>,
    max_records: Option<i64>,
    marker: Option<String>,
}

pub async fn describe_db_parameter_groups(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DescribeRequest = input(raw)?;
    super::known_filters(&req.filters, &[])?;
    let mut tx = ctx.store.read().await?;
    let groups: Vec<ParameterGroup> = match &req.db_parameter_group_name {
        Some(n) => vec![get(ctx, &mut tx, n).await?.ok_or_else(|| not_found(n))?],
        None => resource::list(ctx, &mut tx).await?,
    };
    let items = groups.iter().map(|g| (g.name.clone(), g.view())).collect();
    super::page(
        items,
        "DBParameterGroups",
        req.marker.as_deref(),
        req.max_records,
    )
}

fn param_view(p: &Param, set: Option<&Set>) -> Value {
    let mut v = json!({
        "ParameterName": p.name,
        "Description": p.description,
        "Source": if set.is_some() { "user" } else if p.default.is_some() { "system" } else { "engine-default" },
        "ApplyType": if p.dynamic { "dynamic" } else { "static" },
        "DataType": p.data_type,
        "IsModifiable": p.modifiable,
        "ApplyMethod": set.map(|s| s.apply_method.as_str()).unwrap_or("pending-reboot"),
    });
    if !p.allowed.is_empty() {
        v["AllowedValues"] = json!(p.allowed);
    }
    if let Some(value) = set.map(|s| s.value.as_str()).or(p.default) {
        v["ParameterValue"] = json!(value);
    }
    v
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ParametersRequest {
    #[serde(rename = "DBParameterGroupName")]
    db_parameter_group_name: String,
    source: Option<String>,
    #[serde(default)]
    filters: Vec<super::Filter>,
    max_records: Option<i64>,
    marker: Option<String>,
}

pub async fn describe_db_parameters(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ParametersRequest = input(raw)?;
    super::known_filters(&req.filters, &[])?;
    let mut tx = ctx.store.read().await?;
    let g = get(ctx, &mut tx, &req.db_parameter_group_name)
        .await?
        .ok_or_else(|| not_found(&req.db_parameter_group_name))?;
    let items: Vec<(String, Value)> = params_of(g.serves())
        .iter()
        .map(|p| (p.name.to_string(), param_view(p, g.values.get(p.name))))
        .filter(|(_, v)| req.source.as_deref().is_none_or(|s| v["Source"] == s))
        .collect();
    super::page(items, "Parameters", req.marker.as_deref(), req.max_records)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DefaultsRequest {
    #[serde(rename = "DBParameterGroupFamily")]
    db_parameter_group_family: String,
    #[serde(default)]
    filters: Vec<super::Filter>,
    max_records: Option<i64>,
    marker: Option<String>,
}

pub async fn describe_engine_default_parameters(_ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DefaultsRequest = input(raw)?;
    super::known_filters(&req.filters, &[])?;
    let (e, _) = engines::family_of(&req.db_parameter_group_family).ok_or_else(|| {
        invalid(format!(
            "ParameterGroupFamily {} is not a valid parameter group family",
            req.db_parameter_group_family
        ))
    })?;
    let items: Vec<(String, Value)> = params_of(e.serves)
        .iter()
        .map(|p| (p.name.to_string(), param_view(p, None)))
        .collect();
    let mut page = super::page(items, "Parameters", req.marker.as_deref(), req.max_records)?;
    page["DBParameterGroupFamily"] = json!(req.db_parameter_group_family);
    Ok(json!({ "EngineDefaults": page }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ParameterInput {
    parameter_name: Option<String>,
    parameter_value: Option<String>,
    apply_method: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ModifyRequest {
    #[serde(rename = "DBParameterGroupName")]
    db_parameter_group_name: String,
    #[serde(default)]
    parameters: Vec<ParameterInput>,
    #[serde(default)]
    reset_all_parameters: bool,
}

fn check_value(p: &Param, value: &str) -> Result<()> {
    let bad = || {
        invalid(format!(
            "Value: {value} is not a valid value for parameter: {} (allowed: {})",
            p.name,
            if p.allowed.is_empty() {
                "any"
            } else {
                p.allowed
            }
        ))
    };
    match p.data_type {
        "integer" => {
            let n: i128 = value.parse().map_err(|_| bad())?;
            if let Some((lo, hi)) = range(p.allowed)
                && (n < lo || n > hi)
            {
                return Err(bad());
            }
        }
        "boolean" if !matches!(value, "0" | "1") => {
            return Err(bad());
        }
        "real" | "float" => {
            value.parse::<f64>().map_err(|_| bad())?;
        }
        "string"
            if !p.allowed.is_empty()
                && !p.allowed.split(',').any(|a| a.eq_ignore_ascii_case(value)) =>
        {
            return Err(bad());
        }
        _ => {}
    }
    Ok(())
}

/// `lo-hi` (either may be negative: `-1-2147483647`).
fn range(allowed: &str) -> Option<(i128, i128)> {
    let split = allowed.char_indices().skip(1).find(|(_, c)| *c == '-')?.0;
    Some((
        allowed[..split].parse().ok()?,
        allowed[split + 1..].parse().ok()?,
    ))
}

/// Writes a group's change, and tells the instances using it: an immediate change of a
/// dynamic parameter reaches their servers now; anything else waits for a reboot.
async fn changed(ctx: &Ctx<'_>, tx: &mut Tx, g: &ParameterGroup, now: bool) -> Result<()> {
    save(ctx, tx, g).await?;
    super::instances::parameters_changed(ctx, tx, g, now).await
}

/// The group `name`, locked, when a user may change it (not a default group).
async fn modifiable(ctx: &Ctx<'_>, tx: &mut Tx, name: &str) -> Result<ParameterGroup> {
    tx.lock(ctx.scope(), &key(name)).await?;
    let g = get(ctx, tx, name).await?.ok_or_else(|| not_found(name))?;
    if name.starts_with("default.") {
        return Err(Error::new(
            "InvalidDBParameterGroupState",
            format!("Cannot modify a default parameter group: {name}"),
        ));
    }
    Ok(g)
}

/// The parameter a change names and how it is to be applied, checked: it exists, the
/// method is one of RDS's, and a static parameter is never applied `immediate`.
fn change_of<'p>(params: &'p [Param], pi: &ParameterInput) -> Result<(&'p Param, &'static str)> {
    let pname = pi.parameter_name.as_deref().unwrap_or_default();
    let p = params
        .iter()
        .find(|p| p.name == pname)
        .ok_or_else(|| invalid(format!("Could not find parameter with name: {pname}")))?;
    let method = match pi.apply_method.as_deref().unwrap_or("pending-reboot") {
        "immediate" => "immediate",
        "pending-reboot" => "pending-reboot",
        other => return Err(invalid(format!("Invalid apply method: {other}"))),
    };
    if method == "immediate" && !p.dynamic {
        return Err(combination(format!(
            "cannot use immediate apply method for static parameter {pname}"
        )));
    }
    Ok((p, method))
}

pub async fn modify_db_parameter_group(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ModifyRequest = input(raw)?;
    let name = req.db_parameter_group_name.to_ascii_lowercase();
    if req.parameters.is_empty() {
        return Err(invalid("Parameters must not be empty"));
    }
    if req.parameters.len() > 20 {
        return Err(invalid(
            "A maximum of 20 parameters can be modified in a single request",
        ));
    }
    let mut tx = ctx.store.write().await?;
    let mut g = modifiable(ctx, &mut tx, &name).await?;
    let params = params_of(g.serves());
    let mut all_now = true;
    for pi in &req.parameters {
        let (p, method) = change_of(params, pi)?;
        let pname = p.name;
        if !p.modifiable {
            return Err(invalid(format!(
                "The parameter {pname} cannot be modified."
            )));
        }
        let value = pi
            .parameter_value
            .clone()
            .ok_or_else(|| invalid(format!("A value is required for parameter {pname}")))?;
        check_value(p, &value)?;
        all_now &= method == "immediate";
        g.values.insert(
            pname.to_string(),
            Set {
                value,
                apply_method: method.into(),
            },
        );
    }
    changed(ctx, &mut tx, &g, all_now).await?;
    tx.commit().await?;
    Ok(json!({ "DBParameterGroupName": g.name }))
}

pub async fn reset_db_parameter_group(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ModifyRequest = input(raw)?;
    let name = req.db_parameter_group_name.to_ascii_lowercase();
    if req.reset_all_parameters != req.parameters.is_empty() {
        return Err(combination(
            "Either ResetAllParameters or Parameters must be given, not both",
        ));
    }
    let mut tx = ctx.store.write().await?;
    let mut g = modifiable(ctx, &mut tx, &name).await?;
    let params = params_of(g.serves());
    let mut now = true;
    if req.reset_all_parameters {
        now = g
            .values
            .keys()
            .all(|k| params.iter().any(|p| p.name == k && p.dynamic));
        g.values.clear();
    } else {
        for pi in &req.parameters {
            let (p, method) = change_of(params, pi)?;
            now &= method == "immediate";
            g.values.remove(p.name);
        }
    }
    changed(ctx, &mut tx, &g, now).await?;
    tx.commit().await?;
    Ok(json!({ "DBParameterGroupName": g.name }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteRequest {
    #[serde(rename = "DBParameterGroupName")]
    db_parameter_group_name: String,
}

pub async fn delete_db_parameter_group(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DeleteRequest = input(raw)?;
    let name = req.db_parameter_group_name.to_ascii_lowercase();
    if name.starts_with("default.") {
        return Err(Error::new(
            "InvalidDBParameterGroupState",
            format!("Default DBParameterGroup cannot be deleted: {name}"),
        ));
    }
    let mut tx = ctx.store.write().await?;
    if tx.lock(ctx.scope(), &key(&name)).await?.is_none() {
        return Err(not_found(&name));
    }
    let g = get(ctx, &mut tx, &name)
        .await?
        .ok_or_else(|| not_found(&name))?;
    if !super::instances::using(ctx, &mut tx, |i| i.db_parameter_group == name)
        .await?
        .is_empty()
    {
        return Err(Error::new(
            "InvalidDBParameterGroupState",
            format!(
                "One or more database instances are still members of this parameter group {name}, so the group cannot be deleted"
            ),
        ));
    }
    tx.delete(ctx.scope(), &g.kumori_key).await?;
    tx.set_tags(ctx.scope(), &g.arn, KIND, &[]).await?;
    tx.commit().await?;
    Ok(json!({}))
}
