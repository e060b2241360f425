//! IAM roles with their trust policies, and the instance profiles that carry them to EC2.

use super::Save;
use super::users::{TagKeys, check_tags, merge_tags, remove_tags, tags_page};
use super::{
    ListRequest, Tag, all, check_name, check_path, check_role_description, conflict, get, key,
    no_such, page, scope, unique_id, url_encoded, validation,
};
use crate::{Ctx, Error, Result, input, output};
use kumori_store::Tx;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// An instance profile holds at most one role.
const ROLES_PER_PROFILE: usize = 1;

pub(crate) const ROLE: &str = "iam-role";
pub(crate) const PROFILE: &str = "iam-instance-profile";

pub const OPERATIONS: &[crate::kit::Op] = crate::operations![
    "CreateRole" => create_role,
    "GetRole" => get_role,
    "ListRoles" => list_roles,
    "DeleteRole" => delete_role,
    "CreateInstanceProfile" => create_instance_profile,
    "GetInstanceProfile" => get_instance_profile,
    "ListInstanceProfiles" => list_instance_profiles,
    "ListInstanceProfilesForRole" => list_instance_profiles_for_role,
    "DeleteInstanceProfile" => delete_instance_profile,
    "AddRoleToInstanceProfile" => add_role_to_instance_profile,
    "RemoveRoleFromInstanceProfile" => remove_role_from_instance_profile,
    "UpdateAssumeRolePolicy" => update_assume_role_policy,
    "UpdateRole" => update_role,
    "UpdateRoleDescription" => update_role_description,
    "TagRole" => tag_role,
    "UntagRole" => untag_role,
    "ListRoleTags" => list_role_tags,
    "PutRolePermissionsBoundary" => put_role_permissions_boundary,
    "DeleteRolePermissionsBoundary" => delete_role_permissions_boundary,
];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Role {
    pub path: String,
    pub role_name: String,
    pub role_id: String,
    pub arn: String,
    pub create_date: String,
    /// The trust policy as given (IAM shows it URL-encoded).
    pub assume_role_policy_document: String,
    #[serde(default)]
    pub description: Option<String>,
    pub max_session_duration: i64,
    /// In the store's tags table, not the document (see `iam::Entity`).
    #[serde(skip)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub permissions_boundary: Option<String>,
    #[serde(default)]
    pub inline_policies: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub attached_policies: Vec<String>,
    /// When and where the role's credentials last signed a request.
    #[serde(default)]
    pub role_last_used: Option<RoleLastUsed>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RoleLastUsed {
    pub last_used_date: String,
    pub region: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InstanceProfile {
    pub path: String,
    pub instance_profile_name: String,
    pub instance_profile_id: String,
    pub arn: String,
    pub create_date: String,
    /// Names of its roles (at most one).
    pub roles: Vec<String>,
    /// In the store's tags table, not the document (see `iam::Entity`).
    #[serde(skip)]
    pub tags: Vec<Tag>,
}

pub(crate) fn role_shown(r: &Role) -> Result<Value> {
    let mut v = json!({
        "Path": r.path,
        "RoleName": r.role_name,
        "RoleId": r.role_id,
        "Arn": r.arn,
        "CreateDate": r.create_date,
        "AssumeRolePolicyDocument": url_encoded(&r.assume_role_policy_document),
        "MaxSessionDuration": r.max_session_duration,
        "RoleLastUsed": match &r.role_last_used {
            Some(u) => json!({ "LastUsedDate": u.last_used_date, "Region": u.region }),
            None => json!({}),
        },
    });
    if let Some(b) = &r.permissions_boundary {
        v["PermissionsBoundary"] = json!({
            "PermissionsBoundaryType": "PermissionsBoundaryPolicy",
            "PermissionsBoundaryArn": b,
        });
    }
    if let Some(d) = &r.description {
        v["Description"] = json!(d);
    }
    if !r.tags.is_empty() {
        v["Tags"] = output(&r.tags)?;
    }
    Ok(v)
}

/// The role an instance profile holds, looked up by the profile's ARN or name, for EC2:
/// the profile, and its role if it has one.
pub async fn instance_profile(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    arn: Option<&str>,
    name: Option<&str>,
) -> Result<Option<(InstanceProfile, Option<Role>)>> {
    let ctx = &Ctx {
        region: super::GLOBAL,
        ..*ctx
    };
    let name = match (arn, name) {
        (Some(arn), _) => match arn.rsplit_once('/') {
            Some((_, n)) => n.to_string(),
            None => return Ok(None),
        },
        (None, Some(n)) => n.to_string(),
        (None, None) => return Ok(None),
    };
    let Some(p) = get::<InstanceProfile>(ctx, tx, PROFILE, &name, false).await? else {
        return Ok(None);
    };
    if arn.is_some_and(|a| a != p.arn) {
        return Ok(None);
    }
    let role = match p.roles.first() {
        Some(r) => get::<Role>(ctx, tx, ROLE, r, false).await?,
        None => None,
    };
    Ok(Some((p, role)))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateRoleRequest {
    role_name: String,
    assume_role_policy_document: String,
    path: Option<String>,
    description: Option<String>,
    max_session_duration: Option<i64>,
    permissions_boundary: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
}

pub async fn create_role(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: CreateRoleRequest = input(raw)?;
    check_name("roleName", &req.role_name)?;
    let path = req.path.unwrap_or_else(|| "/".into());
    check_path(&path)?;
    check_role_description(req.description.as_deref())?;
    check_tags(&req.tags)?;
    check_trust(&req.assume_role_policy_document)?;
    let max = req.max_session_duration.unwrap_or(3600);
    if !(3600..=43200).contains(&max) {
        return Err(validation(format!(
            "The requested MaxSessionDuration ({max}) must be between 3600 and 43200 seconds."
        )));
    }
    let mut tx = ctx.store.write().await?;
    super::account::stamp(ctx, &mut tx).await?;
    if get::<Role>(ctx, &mut tx, ROLE, &req.role_name, true)
        .await?
        .is_some()
    {
        return Err(conflict(
            "EntityAlreadyExists",
            format!("Role with name {} already exists.", req.role_name),
        ));
    }
    if let Some(b) = &req.permissions_boundary {
        super::users::check_boundary(ctx, &mut tx, b).await?;
    }
    let role = Role {
        arn: format!(
            "arn:{}:iam::{}:role{path}{}",
            crate::resource::partition(ctx.region),
            ctx.account,
            req.role_name
        ),
        path,
        role_id: unique_id("AROA"),
        create_date: kumori_protocol::time::now_iso(),
        assume_role_policy_document: req.assume_role_policy_document,
        description: req.description,
        max_session_duration: max,
        tags: req.tags,
        permissions_boundary: req.permissions_boundary,
        inline_policies: Default::default(),
        attached_policies: vec![],
        role_last_used: None,
        role_name: req.role_name,
    };
    tx.save(ctx, ROLE, &role.role_name, &role, true).await?;
    tx.commit().await?;
    Ok(json!({ "Role": role_shown(&role)? }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RoleNameRequest {
    role_name: String,
}

pub async fn get_role(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: RoleNameRequest = input(raw)?;
    let mut tx = ctx.store.read().await?;
    let role: Role = get(ctx, &mut tx, ROLE, &req.role_name, false)
        .await?
        .ok_or_else(|| no_such("role", &req.role_name))?;
    Ok(json!({ "Role": role_shown(&role)? }))
}

pub async fn list_roles(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ListRequest = input(raw)?;
    let mut tx = ctx.store.read().await?;
    let roles: Vec<Role> = all(ctx, &mut tx, ROLE).await?;
    let prefix = req.path_prefix.clone().unwrap_or_else(|| "/".into());
    let items = roles
        .iter()
        .filter(|r| r.path.starts_with(&prefix))
        .map(|r| Ok((r.role_name.to_lowercase(), role_shown(r)?)))
        .collect::<Result<Vec<_>>>()?;
    Ok(page(items, &req, "Roles"))
}

pub async fn delete_role(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: RoleNameRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let role: Role = get(ctx, &mut tx, ROLE, &req.role_name, true)
        .await?
        .ok_or_else(|| no_such("role", &req.role_name))?;
    let profiles: Vec<InstanceProfile> = all(ctx, &mut tx, PROFILE).await?;
    let in_profile = profiles.iter().any(|p| {
        p.roles
            .iter()
            .any(|r| r.eq_ignore_ascii_case(&role.role_name))
    });
    super::refuse_if_held(&[
        (in_profile, "must remove roles from instance profile first"),
        (
            !role.inline_policies.is_empty(),
            "must delete policies first",
        ),
        (
            !role.attached_policies.is_empty(),
            "must detach all policies first",
        ),
    ])?;
    tx.delete(scope(ctx), &key(ROLE, &role.role_name)).await?;
    tx.commit().await?;
    Ok(json!({}))
}

async fn profile_shown(ctx: &Ctx<'_>, tx: &mut Tx, p: &InstanceProfile) -> Result<Value> {
    let mut roles = Vec::new();
    for name in &p.roles {
        if let Some(r) = get::<Role>(ctx, tx, ROLE, name, false).await? {
            roles.push(role_shown(&r)?);
        }
    }
    let mut v = json!({
        "Path": p.path,
        "InstanceProfileName": p.instance_profile_name,
        "InstanceProfileId": p.instance_profile_id,
        "Arn": p.arn,
        "CreateDate": p.create_date,
        "Roles": roles,
    });
    if !p.tags.is_empty() {
        v["Tags"] = output(&p.tags)?;
    }
    Ok(v)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateProfileRequest {
    instance_profile_name: String,
    path: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
}

pub async fn create_instance_profile(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: CreateProfileRequest = input(raw)?;
    check_name("instanceProfileName", &req.instance_profile_name)?;
    let path = req.path.unwrap_or_else(|| "/".into());
    check_path(&path)?;
    check_tags(&req.tags)?;
    let mut tx = ctx.store.write().await?;
    if get::<InstanceProfile>(ctx, &mut tx, PROFILE, &req.instance_profile_name, true)
        .await?
        .is_some()
    {
        return Err(conflict(
            "EntityAlreadyExists",
            format!(
                "Instance Profile {} already exists.",
                req.instance_profile_name
            ),
        ));
    }
    let p = InstanceProfile {
        arn: format!(
            "arn:{}:iam::{}:instance-profile{path}{}",
            crate::resource::partition(ctx.region),
            ctx.account,
            req.instance_profile_name
        ),
        path,
        instance_profile_id: unique_id("AIPA"),
        create_date: kumori_protocol::time::now_iso(),
        roles: vec![],
        tags: req.tags,
        instance_profile_name: req.instance_profile_name,
    };
    tx.save(ctx, PROFILE, &p.instance_profile_name, &p, true)
        .await?;
    let shown = profile_shown(ctx, &mut tx, &p).await?;
    tx.commit().await?;
    Ok(json!({ "InstanceProfile": shown }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ProfileNameRequest {
    instance_profile_name: String,
}

pub async fn get_instance_profile(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ProfileNameRequest = input(raw)?;
    let mut tx = ctx.store.read().await?;
    let p: InstanceProfile = get(ctx, &mut tx, PROFILE, &req.instance_profile_name, false)
        .await?
        .ok_or_else(|| no_such("instance profile", &req.instance_profile_name))?;
    Ok(json!({ "InstanceProfile": profile_shown(ctx, &mut tx, &p).await? }))
}

pub async fn list_instance_profiles(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ListRequest = input(raw)?;
    let mut tx = ctx.store.read().await?;
    let profiles: Vec<InstanceProfile> = all(ctx, &mut tx, PROFILE).await?;
    let prefix = req.path_prefix.clone().unwrap_or_else(|| "/".into());
    let mut items = Vec::new();
    for p in profiles.iter().filter(|p| p.path.starts_with(&prefix)) {
        items.push((
            p.instance_profile_name.to_lowercase(),
            profile_shown(ctx, &mut tx, p).await?,
        ));
    }
    Ok(page(items, &req, "InstanceProfiles"))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ForRoleRequest {
    role_name: String,
    marker: Option<String>,
    max_items: Option<i64>,
}

pub async fn list_instance_profiles_for_role(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ForRoleRequest = input(raw)?;
    let mut tx = ctx.store.read().await?;
    get::<Role>(ctx, &mut tx, ROLE, &req.role_name, false)
        .await?
        .ok_or_else(|| no_such("role", &req.role_name))?;
    let profiles: Vec<InstanceProfile> = all(ctx, &mut tx, PROFILE).await?;
    let mut items = Vec::new();
    for p in profiles.iter().filter(|p| {
        p.roles
            .iter()
            .any(|r| r.eq_ignore_ascii_case(&req.role_name))
    }) {
        items.push((
            p.instance_profile_name.to_lowercase(),
            profile_shown(ctx, &mut tx, p).await?,
        ));
    }
    let list = ListRequest {
        path_prefix: None,
        marker: req.marker,
        max_items: req.max_items,
    };
    Ok(page(items, &list, "InstanceProfiles"))
}

pub async fn delete_instance_profile(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ProfileNameRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let p: InstanceProfile = get(ctx, &mut tx, PROFILE, &req.instance_profile_name, true)
        .await?
        .ok_or_else(|| no_such("instance profile", &req.instance_profile_name))?;
    if !p.roles.is_empty() {
        return Err(conflict(
            "DeleteConflict",
            "Cannot delete entity, must remove roles from instance profile first.".into(),
        ));
    }
    tx.delete(scope(ctx), &key(PROFILE, &p.instance_profile_name))
        .await?;
    tx.commit().await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ProfileRoleRequest {
    instance_profile_name: String,
    role_name: String,
}

pub async fn add_role_to_instance_profile(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ProfileRoleRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let mut p: InstanceProfile = get(ctx, &mut tx, PROFILE, &req.instance_profile_name, true)
        .await?
        .ok_or_else(|| no_such("instance profile", &req.instance_profile_name))?;
    let role: Role = get(ctx, &mut tx, ROLE, &req.role_name, false)
        .await?
        .ok_or_else(|| no_such("role", &req.role_name))?;
    if p.roles.len() >= ROLES_PER_PROFILE {
        return Err(conflict(
            "LimitExceeded",
            "Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1".into(),
        ));
    }
    p.roles.push(role.role_name);
    tx.save(ctx, PROFILE, &p.instance_profile_name, &p, false)
        .await?;
    tx.commit().await?;
    Ok(json!({}))
}

pub async fn remove_role_from_instance_profile(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ProfileRoleRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let mut p: InstanceProfile = get(ctx, &mut tx, PROFILE, &req.instance_profile_name, true)
        .await?
        .ok_or_else(|| no_such("instance profile", &req.instance_profile_name))?;
    let before = p.roles.len();
    p.roles.retain(|r| !r.eq_ignore_ascii_case(&req.role_name));
    if p.roles.len() == before {
        return Err(no_such("role", &req.role_name));
    }
    tx.save(ctx, PROFILE, &p.instance_profile_name, &p, false)
        .await?;
    tx.commit().await?;
    Ok(json!({}))
}

/// Notes that the credentials of role `name` (from AssumeRole, or an instance's metadata
/// service) signed a request in `region`, as GetRole's `RoleLastUsed` shows it: at most once
/// a minute per role and region, so that busy sessions do not write on every request; when
/// the role is fresh, one read and nothing written.
pub async fn note_use(ctx: &Ctx<'_>, name: &str, region: &str) -> Result<()> {
    let now = kumori_protocol::time::now_iso();
    let fresh = |r: &Role| {
        r.role_last_used
            .as_ref()
            .is_some_and(|u| u.region == region && u.last_used_date.get(..16) == now.get(..16))
    };
    {
        let mut tx = ctx.store.read().await?;
        match get::<Role>(ctx, &mut tx, ROLE, name, false).await? {
            Some(r) if !fresh(&r) => {}
            _ => return Ok(()),
        }
    }
    let mut tx = ctx.store.write().await?;
    if let Some(mut r) = get::<Role>(ctx, &mut tx, ROLE, name, true).await?
        && !fresh(&r)
    {
        r.role_last_used = Some(RoleLastUsed {
            last_used_date: now,
            region: region.to_string(),
        });
        tx.save(ctx, ROLE, &r.role_name, &r, false).await?;
        tx.commit().await?;
    }
    Ok(())
}

/// A trust policy must name who may assume the role, as IAM checks it.
fn check_trust(doc: &str) -> Result<()> {
    kumori_policy::Policy::parse(doc, kumori_policy::PolicyKind::Trust)
        .map(|_| ())
        .map_err(|e| Error::new("MalformedPolicyDocument", e.to_string()))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RoleChangeRequest {
    role_name: String,
    policy_document: Option<String>,
    description: Option<String>,
    max_session_duration: Option<i64>,
    permissions_boundary: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
    #[serde(default)]
    tag_keys: Vec<String>,
    marker: Option<String>,
    max_items: Option<i64>,
}

/// Loads role `name` for a change, applies `f`, stores it.
async fn change_role(
    ctx: &Ctx<'_>,
    name: &str,
    f: impl FnOnce(&mut Role) -> Result<()>,
) -> Result<Role> {
    let mut tx = ctx.store.write().await?;
    let mut role: Role = get(ctx, &mut tx, ROLE, name, true)
        .await?
        .ok_or_else(|| no_such("role", name))?;
    f(&mut role)?;
    if let Some(b) = &role.permissions_boundary {
        super::users::check_boundary(ctx, &mut tx, b).await?;
    }
    tx.save(ctx, ROLE, &role.role_name, &role, false).await?;
    tx.commit().await?;
    Ok(role)
}

pub async fn update_assume_role_policy(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: RoleChangeRequest = input(raw)?;
    let doc = req.policy_document.unwrap_or_default();
    check_trust(&doc)?;
    change_role(ctx, &req.role_name, |r| {
        r.assume_role_policy_document = doc;
        Ok(())
    })
    .await?;
    Ok(json!({}))
}

pub async fn update_role(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: RoleChangeRequest = input(raw)?;
    check_role_description(req.description.as_deref())?;
    if let Some(max) = req.max_session_duration
        && !(3600..=43200).contains(&max)
    {
        return Err(validation(format!(
            "The requested MaxSessionDuration ({max}) must be between 3600 and 43200 seconds."
        )));
    }
    change_role(ctx, &req.role_name, |r| {
        if let Some(d) = req.description {
            r.description = Some(d);
        }
        if let Some(m) = req.max_session_duration {
            r.max_session_duration = m;
        }
        Ok(())
    })
    .await?;
    Ok(json!({}))
}

pub async fn update_role_description(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: RoleChangeRequest = input(raw)?;
    check_role_description(req.description.as_deref())?;
    let role = change_role(ctx, &req.role_name, |r| {
        r.description = req.description;
        Ok(())
    })
    .await?;
    Ok(json!({ "Role": role_shown(&role)? }))
}

pub async fn tag_role(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: RoleChangeRequest = input(raw)?;
    change_role(ctx, &req.role_name, |r| {
        merge_tags(&mut r.tags, req.tags, TagKeys::CaseInsensitive)
    })
    .await?;
    Ok(json!({}))
}

pub async fn untag_role(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: RoleChangeRequest = input(raw)?;
    change_role(ctx, &req.role_name, |r| {
        remove_tags(&mut r.tags, &req.tag_keys, TagKeys::CaseInsensitive);
        Ok(())
    })
    .await?;
    Ok(json!({}))
}

pub async fn list_role_tags(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: RoleChangeRequest = input(raw)?;
    let mut tx = ctx.store.read().await?;
    let role: Role = get(ctx, &mut tx, ROLE, &req.role_name, false)
        .await?
        .ok_or_else(|| no_such("role", &req.role_name))?;
    tags_page(&role.tags, req.marker, req.max_items)
}

pub async fn put_role_permissions_boundary(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: RoleChangeRequest = input(raw)?;
    change_role(ctx, &req.role_name, |r| {
        r.permissions_boundary = req.permissions_boundary;
        Ok(())
    })
    .await?;
    Ok(json!({}))
}

pub async fn delete_role_permissions_boundary(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: RoleChangeRequest = input(raw)?;
    change_role(ctx, &req.role_name, |r| {
        r.permissions_boundary = None;
        Ok(())
    })
    .await?;
    Ok(json!({}))
}
