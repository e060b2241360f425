//! Launch templates with versions: CreateLaunchTemplate, CreateLaunchTemplateVersion,
//! DescribeLaunchTemplates, DescribeLaunchTemplateVersions, ModifyLaunchTemplate (the default
//! version), DeleteLaunchTemplateVersions, DeleteLaunchTemplate, GetLaunchTemplateData, and
//! what RunInstances takes from a template.
//!
//! A version's data is kept as the request gave it: EC2's request and response shapes for
//! launch template data have the same members, so showing it back is exact, which is what
//! keeps `terraform plan` clean. RunInstances checks it when it is used, as AWS does.

use super::common::{
    Filter, Filterable, Tag, TagSpecification, check_filters, dry_run, invalid_value, matches,
    page_output, paginate, put_tags, tags_by_resource, tags_from_specs, tags_of,
};
use super::instances::Instance;
use crate::resource::{self, Resource, new_id, partition};
use crate::{Ctx, Error, Result, input, output};
use kumori_store::Tx;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A template holds at most this many versions.
const MAX_VERSIONS: usize = 10_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LaunchTemplate {
    pub launch_template_id: String,
    pub launch_template_name: String,
    pub create_time: String,
    pub created_by: String,
    pub default_version_number: i64,
    /// The highest number given so far; numbers of deleted versions are not given again.
    pub last_number: i64,
    pub versions: Vec<Version>,
    #[serde(default)]
    pub client_token: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Version {
    pub version_number: i64,
    #[serde(default)]
    pub version_description: Option<String>,
    pub create_time: String,
    pub launch_template_data: Value,
    #[serde(default)]
    pub client_token: Option<String>,
}

impl Resource for LaunchTemplate {
    const KIND: &'static str = "launch-template";
    fn id(&self) -> &str {
        &self.launch_template_id
    }
}

impl LaunchTemplate {
    fn latest(&self) -> i64 {
        self.versions
            .iter()
            .map(|v| v.version_number)
            .max()
            .unwrap_or(0)
    }
    fn shown(&self, tags: &[Tag]) -> Result<Value> {
        let mut v = json!({
            "LaunchTemplateId": self.launch_template_id,
            "LaunchTemplateName": self.launch_template_name,
            "CreateTime": self.create_time,
            "CreatedBy": self.created_by,
            "DefaultVersionNumber": self.default_version_number,
            "LatestVersionNumber": self.latest(),
        });
        if !tags.is_empty() {
            v["Tags"] = output(&tags)?;
        }
        Ok(v)
    }
    fn version_shown(&self, v: &Version) -> Value {
        let mut out = json!({
            "LaunchTemplateId": self.launch_template_id,
            "LaunchTemplateName": self.launch_template_name,
            "VersionNumber": v.version_number,
            "CreateTime": v.create_time,
            "CreatedBy": self.created_by,
            "DefaultVersion": v.version_number == self.default_version_number,
            "LaunchTemplateData": v.launch_template_data,
        });
        if let Some(d) = &v.version_description {
            out["VersionDescription"] = json!(d);
        }
        out
    }
    /// The version `spec` names: `$Latest`, `$Default` or a number.
    fn version(&self, spec: &str) -> Result<&Version> {
        let number = match spec {
            "$Latest" => self.latest(),
            "$Default" => self.default_version_number,
            n => n.parse::<i64>().map_err(|_| {
                invalid_value(format!(
                    "Value ({n}) for parameter version is invalid. Expected $Latest, $Default or a version number."
                ))
            })?,
        };
        self.versions
            .iter()
            .find(|v| v.version_number == number)
            .ok_or_else(|| {
                Error::new(
                    "InvalidLaunchTemplateId.VersionNotFound",
                    format!(
                        "Could not find launch template version {spec} for template {}",
                        self.launch_template_id
                    ),
                )
            })
    }
}

/// Launch template names: 3–128 of letters, digits and `().-/_`.
fn check_name(name: &str) -> Result<()> {
    let ok = |c: char| c.is_ascii_alphanumeric() || "().-/_".contains(c);
    if !(3..=128).contains(&name.len()) || !name.chars().all(ok) {
        return Err(Error::new(
            "InvalidLaunchTemplateName.MalformedException",
            format!(
                "Launch template name '{name}' is not valid: 3 to 128 letters, digits and ( ) . - / _."
            ),
        ));
    }
    Ok(())
}

/// Template data's user data must be base64, as RunInstances' is.
fn check_user_data(data: &Value) -> Result<()> {
    use base64::Engine;
    if let Some(u) = data.get("UserData").and_then(Value::as_str)
        && base64::engine::general_purpose::STANDARD
            .decode(u.trim())
            .is_err()
    {
        return Err(Error::new(
            "InvalidUserData.Malformed",
            "Invalid BASE64 encoding of user data.",
        ));
    }
    Ok(())
}

fn check_description(d: Option<&str>) -> Result<()> {
    if d.is_some_and(|d| d.chars().count() > 255) {
        return Err(invalid_value(
            "A launch template version description may be at most 255 characters.",
        ));
    }
    Ok(())
}

pub fn id_not_found(id: &str) -> Error {
    Error::new(
        "InvalidLaunchTemplateId.NotFound",
        format!("The specified launch template, with template ID {id}, does not exist."),
    )
}

fn name_not_found(name: &str) -> Error {
    Error::new(
        "InvalidLaunchTemplateName.NotFoundException",
        format!("The specified launch template, with template name {name}, does not exist."),
    )
}

fn check_template_id(id: &str) -> Result<()> {
    if !id.starts_with("lt-") {
        return Err(Error::new(
            "InvalidLaunchTemplateId.Malformed",
            format!("The specified ID for the launch template ({id}) is not valid."),
        ));
    }
    Ok(())
}

/// The template a call names by id or by name (exactly one of them), read or locked.
async fn named(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    id: Option<&str>,
    name: Option<&str>,
    lock: bool,
) -> Result<LaunchTemplate> {
    let id = match (id, name) {
        (Some(id), None) => {
            check_template_id(id)?;
            id.to_string()
        }
        (None, Some(name)) => resource::list::<LaunchTemplate>(ctx, tx)
            .await?
            .into_iter()
            .find(|t| t.launch_template_name == name)
            .map(|t| t.launch_template_id)
            .ok_or_else(|| name_not_found(name))?,
        _ => {
            return Err(Error::new(
                "InvalidParameterCombination",
                "The request must contain exactly one of LaunchTemplateId or LaunchTemplateName.",
            ));
        }
    };
    let t = if lock {
        resource::lock::<LaunchTemplate>(ctx, tx, &id).await?
    } else {
        resource::get::<LaunchTemplate>(ctx, tx, &id).await?
    };
    t.ok_or_else(|| id_not_found(&id))
}

/// The data of the version a RunInstances `LaunchTemplate` names, with the template's id and
/// the version's number.
pub async fn data_for_launch(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    spec: &Value,
) -> Result<(Value, String, i64)> {
    let t = named(
        ctx,
        tx,
        spec["LaunchTemplateId"].as_str(),
        spec["LaunchTemplateName"].as_str(),
        false,
    )
    .await?;
    let v = t.version(spec["Version"].as_str().unwrap_or("$Default"))?;
    Ok((
        v.launch_template_data.clone(),
        t.launch_template_id.clone(),
        v.version_number,
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateLaunchTemplateRequest {
    launch_template_name: String,
    version_description: Option<String>,
    launch_template_data: Value,
    client_token: Option<String>,
    #[serde(default)]
    tag_specifications: Vec<TagSpecification>,
    dry_run: Option<bool>,
}

pub async fn create_launch_template(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: CreateLaunchTemplateRequest = input(raw)?;
    check_name(&req.launch_template_name)?;
    check_description(req.version_description.as_deref())?;
    check_user_data(&req.launch_template_data)?;
    let tags = tags_from_specs(&req.tag_specifications, LaunchTemplate::KIND)?;
    let mut tx = ctx.store.write().await?;
    let all: Vec<LaunchTemplate> = resource::list(ctx, &mut tx).await?;
    if let Some(token) = &req.client_token
        && let Some(t) = all.iter().find(|t| t.client_token.as_ref() == Some(token))
    {
        let tags = tags_of(ctx, &mut tx, &t.launch_template_id).await?;
        return Ok(json!({ "LaunchTemplate": t.shown(&tags)? }));
    }
    if all
        .iter()
        .any(|t| t.launch_template_name == req.launch_template_name)
    {
        return Err(Error::new(
            "InvalidLaunchTemplateName.AlreadyExistsException",
            "Launch template name already in use.",
        ));
    }
    dry_run(req.dry_run)?;
    let now = kumori_protocol::time::now_iso();
    let t = LaunchTemplate {
        launch_template_id: new_id("lt"),
        launch_template_name: req.launch_template_name,
        create_time: now.clone(),
        created_by: format!("arn:{}:iam::{}:root", partition(ctx.region), ctx.account),
        default_version_number: 1,
        last_number: 1,
        versions: vec![Version {
            version_number: 1,
            version_description: req.version_description,
            create_time: now,
            launch_template_data: req.launch_template_data,
            client_token: None,
        }],
        client_token: req.client_token,
    };
    resource::insert(ctx, &mut tx, &t).await?;
    put_tags(
        ctx,
        &mut tx,
        &t.launch_template_id,
        LaunchTemplate::KIND,
        &tags,
    )
    .await?;
    tx.commit().await?;
    Ok(json!({ "LaunchTemplate": t.shown(&tags)? }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateVersionRequest {
    launch_template_id: Option<String>,
    launch_template_name: Option<String>,
    source_version: Option<String>,
    version_description: Option<String>,
    launch_template_data: Value,
    client_token: Option<String>,
    dry_run: Option<bool>,
}

/// `data` laid over `base`: members `data` gives replace the source version's, whole.
fn overlay(base: &Value, data: &Value) -> Value {
    let mut out = base.clone();
    if let (Some(o), Some(d)) = (out.as_object_mut(), data.as_object()) {
        for (k, v) in d {
            o.insert(k.clone(), v.clone());
        }
    }
    out
}

pub async fn create_launch_template_version(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: CreateVersionRequest = input(raw)?;
    check_description(req.version_description.as_deref())?;
    let mut tx = ctx.store.write().await?;
    let mut t = named(
        ctx,
        &mut tx,
        req.launch_template_id.as_deref(),
        req.launch_template_name.as_deref(),
        true,
    )
    .await?;
    if let Some(token) = &req.client_token
        && let Some(v) = t
            .versions
            .iter()
            .find(|v| v.client_token.as_ref() == Some(token))
    {
        return Ok(json!({ "LaunchTemplateVersion": t.version_shown(v) }));
    }
    let data = match &req.source_version {
        Some(s) => overlay(
            &t.version(s)?.launch_template_data,
            &req.launch_template_data,
        ),
        None => req.launch_template_data,
    };
    check_user_data(&data)?;
    if t.versions.len() >= MAX_VERSIONS {
        return Err(Error::new(
            "LaunchTemplateVersionLimitExceeded",
            format!(
                "Launch template {} already has {MAX_VERSIONS} versions.",
                t.launch_template_id
            ),
        ));
    }
    dry_run(req.dry_run)?;
    t.last_number += 1;
    let v = Version {
        version_number: t.last_number,
        version_description: req.version_description,
        create_time: kumori_protocol::time::now_iso(),
        launch_template_data: data,
        client_token: req.client_token,
    };
    t.versions.push(v.clone());
    resource::update(ctx, &mut tx, &t).await?;
    tx.commit().await?;
    Ok(json!({ "LaunchTemplateVersion": t.version_shown(&v) }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ModifyRequest {
    launch_template_id: Option<String>,
    launch_template_name: Option<String>,
    default_version: Option<String>,
    dry_run: Option<bool>,
}

pub async fn modify_launch_template(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ModifyRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let mut t = named(
        ctx,
        &mut tx,
        req.launch_template_id.as_deref(),
        req.launch_template_name.as_deref(),
        true,
    )
    .await?;
    let default = match &req.default_version {
        Some(d) => Some(t.version(d)?.version_number),
        None => None,
    };
    dry_run(req.dry_run)?;
    if let Some(d) = default {
        t.default_version_number = d;
        resource::update(ctx, &mut tx, &t).await?;
    }
    let tags = tags_of(ctx, &mut tx, &t.launch_template_id).await?;
    tx.commit().await?;
    Ok(json!({ "LaunchTemplate": t.shown(&tags)? }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteRequest {
    launch_template_id: Option<String>,
    launch_template_name: Option<String>,
    dry_run: Option<bool>,
}

pub async fn delete_launch_template(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DeleteRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let t = named(
        ctx,
        &mut tx,
        req.launch_template_id.as_deref(),
        req.launch_template_name.as_deref(),
        true,
    )
    .await?;
    dry_run(req.dry_run)?;
    let tags = tags_of(ctx, &mut tx, &t.launch_template_id).await?;
    tx.delete(ctx.scope(), &t.launch_template_id).await?;
    tx.commit().await?;
    Ok(json!({ "LaunchTemplate": t.shown(&tags)? }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteVersionsRequest {
    launch_template_id: Option<String>,
    launch_template_name: Option<String>,
    versions: Vec<String>,
    dry_run: Option<bool>,
}

pub async fn delete_launch_template_versions(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DeleteVersionsRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let mut t = named(
        ctx,
        &mut tx,
        req.launch_template_id.as_deref(),
        req.launch_template_name.as_deref(),
        true,
    )
    .await?;
    dry_run(req.dry_run)?;
    let mut done = Vec::new();
    let mut failed = Vec::new();
    for spec in &req.versions {
        let item = |number: Value| {
            json!({
                "LaunchTemplateId": t.launch_template_id,
                "LaunchTemplateName": t.launch_template_name,
                "VersionNumber": number,
            })
        };
        let number = spec.parse::<i64>().ok();
        let fail = |code: &str, message: String| {
            let mut i = item(number.map_or(Value::Null, Value::from));
            i["ResponseError"] = json!({ "Code": code, "Message": message });
            i
        };
        match number {
            None => failed.push(fail(
                "launchTemplateVersionDoesNotExist",
                format!("Version {spec} is not a version number."),
            )),
            Some(n) if n == t.default_version_number => failed.push(fail(
                "unexpectedError",
                format!(
                    "Version {n} is the default version; make another version the default or delete the launch template."
                ),
            )),
            Some(n) if !t.versions.iter().any(|v| v.version_number == n) => failed.push(fail(
                "launchTemplateVersionDoesNotExist",
                format!("Version {n} of {} does not exist.", t.launch_template_id),
            )),
            Some(n) => {
                done.push(item(json!(n)));
                t.versions.retain(|v| v.version_number != n);
            }
        }
    }
    if !done.is_empty() {
        resource::update(ctx, &mut tx, &t).await?;
    }
    tx.commit().await?;
    Ok(json!({
        "SuccessfullyDeletedLaunchTemplateVersions": done,
        "UnsuccessfullyDeletedLaunchTemplateVersions": failed,
    }))
}

impl Filterable for LaunchTemplate {
    const FILTERS: &'static [&'static str] = &["create-time", "launch-template-name"];
    fn field(&self, name: &str) -> Vec<String> {
        match name {
            "create-time" => vec![self.create_time.clone()],
            "launch-template-name" => vec![self.launch_template_name.clone()],
            _ => vec![],
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeRequest {
    #[serde(default)]
    launch_template_ids: Vec<String>,
    #[serde(default)]
    launch_template_names: Vec<String>,
    #[serde(default)]
    filters: Vec<Filter>,
    max_results: Option<i64>,
    next_token: Option<String>,
    dry_run: Option<bool>,
}

/// Not `generic::describe`: templates are asked for by LaunchTemplateNames as well as ids, each
/// with its own not-found error, and a malformed id has its own message
/// (`InvalidLaunchTemplateId.Malformed`).
pub async fn describe_launch_templates(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DescribeRequest = input(raw)?;
    check_filters::<LaunchTemplate>(&req.filters)?;
    for id in &req.launch_template_ids {
        check_template_id(id)?;
    }
    let mut tx = ctx.store.read().await?;
    let all: Vec<LaunchTemplate> = resource::list(ctx, &mut tx).await?;
    let tags = tags_by_resource(ctx, &mut tx, LaunchTemplate::KIND).await?;
    drop(tx);
    if let Some(id) = req
        .launch_template_ids
        .iter()
        .find(|id| !all.iter().any(|t| t.launch_template_id == **id))
    {
        return Err(id_not_found(id));
    }
    if req
        .launch_template_names
        .iter()
        .any(|n| !all.iter().any(|t| t.launch_template_name == *n))
    {
        // Describing by names, EC2 does not say which one is missing.
        return Err(Error::new(
            "InvalidLaunchTemplateName.NotFoundException",
            "At least one of the launch templates specified in the request does not exist.",
        ));
    }
    dry_run(req.dry_run)?;
    let none = Vec::new();
    let selected: Vec<&LaunchTemplate> = all
        .iter()
        .filter(|t| {
            req.launch_template_ids.is_empty()
                || req.launch_template_ids.contains(&t.launch_template_id)
        })
        .filter(|t| {
            req.launch_template_names.is_empty()
                || req.launch_template_names.contains(&t.launch_template_name)
        })
        .filter(|t| {
            matches(
                *t,
                tags.get(&t.launch_template_id).unwrap_or(&none),
                &req.filters,
            )
        })
        .collect();
    let (page, next) = paginate(
        selected,
        |t| t.launch_template_id.clone(),
        req.max_results,
        req.next_token.as_deref(),
    )?;
    let shown = page
        .iter()
        .map(|t| t.shown(tags.get(&t.launch_template_id).unwrap_or(&none)))
        .collect::<Result<Vec<_>>>()?;
    Ok(page_output("LaunchTemplates", shown, next))
}

/// A version as DescribeLaunchTemplateVersions' filters see it.
struct VersionRow<'a>(&'a LaunchTemplate, &'a Version);

impl Filterable for VersionRow<'_> {
    const FILTERS: &'static [&'static str] = &[
        "create-time",
        "ebs-optimized",
        "iam-instance-profile",
        "image-id",
        "instance-type",
        "is-default-version",
        "kernel-id",
        "ram-disk-id",
    ];
    fn field(&self, name: &str) -> Vec<String> {
        let d = &self.1.launch_template_data;
        let text = |v: &Value| match v {
            Value::Null => vec![],
            Value::String(s) => vec![s.clone()],
            other => vec![other.to_string()],
        };
        match name {
            "create-time" => vec![self.1.create_time.clone()],
            "ebs-optimized" => text(&d["EbsOptimized"]),
            "iam-instance-profile" => {
                let mut out = text(&d["IamInstanceProfile"]["Arn"]);
                out.extend(text(&d["IamInstanceProfile"]["Name"]));
                out
            }
            "image-id" => text(&d["ImageId"]),
            "instance-type" => text(&d["InstanceType"]),
            "is-default-version" => {
                vec![(self.1.version_number == self.0.default_version_number).to_string()]
            }
            "kernel-id" => text(&d["KernelId"]),
            "ram-disk-id" => text(&d["RamDiskId"]),
            _ => vec![],
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeVersionsRequest {
    launch_template_id: Option<String>,
    launch_template_name: Option<String>,
    #[serde(default)]
    versions: Vec<String>,
    min_version: Option<String>,
    max_version: Option<String>,
    #[serde(default)]
    filters: Vec<Filter>,
    max_results: Option<i64>,
    next_token: Option<String>,
    dry_run: Option<bool>,
}

/// Not `generic::describe`: versions are not stored resources but entries in their template's
/// record, chosen by template, Versions (`$Latest`, `$Default`) and Min/MaxVersion and paged by
/// template and version number; they have no tags.
pub async fn describe_launch_template_versions(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DescribeVersionsRequest = input(raw)?;
    check_filters::<VersionRow>(&req.filters)?;
    let mut tx = ctx.store.read().await?;
    // Without a template, only `$Latest` and `$Default` make sense: across all templates.
    let templates = if req.launch_template_id.is_none() && req.launch_template_name.is_none() {
        if req.versions.is_empty()
            || req
                .versions
                .iter()
                .any(|v| v != "$Latest" && v != "$Default")
        {
            return Err(Error::new(
                "MissingParameter",
                "Without a launch template, Versions may only be $Latest and $Default.",
            ));
        }
        resource::list::<LaunchTemplate>(ctx, &mut tx).await?
    } else {
        vec![
            named(
                ctx,
                &mut tx,
                req.launch_template_id.as_deref(),
                req.launch_template_name.as_deref(),
                false,
            )
            .await?,
        ]
    };
    drop(tx);
    let bound = |b: &Option<String>, t: &LaunchTemplate| -> Result<Option<i64>> {
        b.as_ref()
            .map(|s| t.version(s).map(|v| v.version_number))
            .transpose()
    };
    let mut rows: Vec<(String, Value)> = Vec::new();
    for t in &templates {
        let wanted: Vec<i64> = req
            .versions
            .iter()
            .map(|s| t.version(s).map(|v| v.version_number))
            .collect::<Result<_>>()?;
        let (min, max) = (bound(&req.min_version, t)?, bound(&req.max_version, t)?);
        for v in &t.versions {
            let n = v.version_number;
            if (!wanted.is_empty() && !wanted.contains(&n))
                || min.is_some_and(|m| n < m)
                || max.is_some_and(|m| n > m)
                || !matches(&VersionRow(t, v), &[], &req.filters)
            {
                continue;
            }
            rows.push((
                format!("{}:{n:020}", t.launch_template_id),
                t.version_shown(v),
            ));
        }
    }
    dry_run(req.dry_run)?;
    let (page, next) = paginate(
        rows,
        |(k, _)| k.clone(),
        req.max_results,
        req.next_token.as_deref(),
    )?;
    let shown = page.into_iter().map(|(_, v)| v).collect();
    Ok(page_output("LaunchTemplateVersions", shown, next))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetDataRequest {
    instance_id: String,
    dry_run: Option<bool>,
}

/// Launch template data that would launch an instance like `instance_id`.
pub async fn get_launch_template_data(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: GetDataRequest = input(raw)?;
    let mut tx = ctx.store.read().await?;
    let i: Instance = resource::get(ctx, &mut tx, &req.instance_id)
        .await?
        .filter(|i: &Instance| i.state != "terminated")
        .ok_or_else(|| {
            Error::new(
                "InvalidInstanceID.NotFound",
                format!("The instance ID '{}' does not exist", req.instance_id),
            )
        })?;
    let eni: Option<super::eni::NetworkInterface> =
        resource::get(ctx, &mut tx, &i.network_interface_id).await?;
    drop(tx);
    dry_run(req.dry_run)?;
    let mut data = json!({
        "ImageId": i.image_id,
        "InstanceType": i.instance_type,
        "Placement": { "AvailabilityZone": i.availability_zone, "Tenancy": i.tenancy },
        "Monitoring": { "Enabled": i.monitoring },
        "DisableApiTermination": i.disable_api_termination,
        "DisableApiStop": i.disable_api_stop,
        "InstanceInitiatedShutdownBehavior": i.shutdown_behavior,
        "EbsOptimized": i.ebs_optimized,
        "CpuOptions": { "CoreCount": i.core_count, "ThreadsPerCore": i.threads_per_core },
        "HibernationOptions": { "Configured": i.hibernation },
        "EnclaveOptions": { "Enabled": i.enclave },
        "MetadataOptions": {
            "HttpTokens": i.metadata.http_tokens,
            "HttpPutResponseHopLimit": i.metadata.http_put_response_hop_limit,
            "HttpEndpoint": i.metadata.http_endpoint,
            "InstanceMetadataTags": i.metadata.instance_metadata_tags,
        },
    });
    if let Some(k) = &i.key_name {
        data["KeyName"] = json!(k);
    }
    if let Some(u) = &i.user_data {
        data["UserData"] = json!(u);
    }
    if let Some(c) = &i.cpu_credits {
        data["CreditSpecification"] = json!({ "CpuCredits": c });
    }
    if let Some(eni) = eni {
        data["NetworkInterfaces"] = json!([{
            "DeviceIndex": 0,
            "SubnetId": i.subnet_id,
            "Groups": eni.groups.iter().map(|g| g.group_id.clone()).collect::<Vec<_>>(),
            "DeleteOnTermination": true,
        }]);
    }
    Ok(json!({ "LaunchTemplateData": data }))
}
