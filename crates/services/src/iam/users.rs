//! IAM users, their console passwords (login profiles), tags and permissions boundaries.

use super::Save;
use super::{
    ListRequest, Tag, all, check_name, check_path, conflict, get, key, no_such, page, scope,
    unique_id, validation,
};
use crate::{Ctx, Error, Principal, Result, input, output};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub(crate) const USER: &str = "iam-user";

/// Tags per user, role or policy (IAM's quota).
pub(crate) const MAX_TAGS: usize = 50;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LoginProfile {
    pub create_date: String,
    pub password_reset_required: bool,
    /// Salted SHA-256 of the password: kumori never needs it back.
    pub password_hash: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct User {
    pub path: String,
    pub user_name: String,
    pub user_id: String,
    pub arn: String,
    pub create_date: String,
    /// In the store's tags table, not the document (see `iam::Entity`).
    #[serde(skip)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub permissions_boundary: Option<String>,
    /// Inline policies by name, documents as given.
    #[serde(default)]
    pub inline_policies: BTreeMap<String, String>,
    /// ARNs of attached managed policies, in attachment order.
    #[serde(default)]
    pub attached_policies: Vec<String>,
    /// Names of the groups the user is in.
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub login_profile: Option<LoginProfile>,
}

pub const OPERATIONS: &[crate::kit::Op] = crate::operations![
    "CreateUser" => create_user,
    "GetUser" => get_user,
    "ListUsers" => list_users,
    "UpdateUser" => update_user,
    "DeleteUser" => delete_user,
    "TagUser" => tag_user,
    "UntagUser" => untag_user,
    "ListUserTags" => list_user_tags,
    "CreateLoginProfile" => create_login_profile,
    "GetLoginProfile" => get_login_profile,
    "UpdateLoginProfile" => update_login_profile,
    "DeleteLoginProfile" => delete_login_profile,
    "PutUserPermissionsBoundary" => put_user_permissions_boundary,
    "DeleteUserPermissionsBoundary" => delete_user_permissions_boundary,
];

pub(crate) fn user_shown(u: &User) -> Result<Value> {
    let mut v = json!({
        "Path": u.path,
        "UserName": u.user_name,
        "UserId": u.user_id,
        "Arn": u.arn,
        "CreateDate": u.create_date,
    });
    if let Some(b) = &u.permissions_boundary {
        v["PermissionsBoundary"] = json!({
            "PermissionsBoundaryType": "PermissionsBoundaryPolicy",
            "PermissionsBoundaryArn": b,
        });
    }
    if !u.tags.is_empty() {
        v["Tags"] = output(&u.tags)?;
    }
    Ok(v)
}

/// The user named in a request, or the caller when none is named (as IAM does for
/// `GetUser`, `CreateAccessKey`, … called with a user's own key).
pub(crate) fn user_or_caller(ctx: &Ctx<'_>, name: Option<String>) -> Result<Option<String>> {
    match (name, ctx.caller.map(|c| &c.principal)) {
        (Some(n), _) => Ok(Some(n)),
        (None, Some(Principal::User { name })) => Ok(Some(name.clone())),
        (None, Some(Principal::AssumedRole { .. })) => Err(Error::new(
            "ValidationError",
            "Must specify userName when calling with non-User credentials",
        )),
        (None, _) => Ok(None),
    }
}

/// Checks the tags a request gives, as IAM does: each key and value against the model's
/// patterns, and no key twice, whatever its case (IAM's `InvalidInput`).
pub(crate) fn check_tags(tags: &[Tag]) -> Result<()> {
    if tags.len() > MAX_TAGS {
        return Err(too_many_tags());
    }
    for (i, t) in tags.iter().enumerate() {
        if tags[..i].iter().any(|e| same_key(&e.key, &t.key)) {
            return Err(Error::new(
                "InvalidInput",
                "Duplicate tag keys found. Please note that Tag keys are case insensitive.",
            ));
        }
        if t.key.is_empty() || t.key.chars().count() > 128 || t.value.chars().count() > 256 {
            return Err(validation(format!(
                "1 validation error detected: Value '{}' at 'tags.{}.member.key' failed to satisfy constraint: Member must have length between 1 and 128 (values up to 256)",
                t.key,
                i + 1
            )));
        }
        for (what, text, repeat) in [("key", &t.key, '+'), ("value", &t.value, '*')] {
            if !text.chars().all(tag_char) {
                // A control character cannot travel in XML: such a value is not quoted back.
                let value = if text.chars().any(char::is_control) {
                    String::new()
                } else {
                    format!(" '{text}'")
                };
                return Err(validation(format!(
                    "1 validation error detected: Value{value} at 'tags.{}.member.{what}' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\p{{L}}\\p{{Z}}\\p{{N}}_.:/=+\\-@]{repeat}",
                    i + 1
                )));
            }
        }
    }
    Ok(())
}

fn too_many_tags() -> Error {
    Error::new(
        "LimitExceeded",
        format!("The number of tags has reached the maximum limit of {MAX_TAGS}."),
    )
}

/// IAM's tag keys are compared without regard to case.
fn same_key(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

/// IAM's tag pattern `[\p{L}\p{Z}\p{N}_.:/=+\-@]`: letters, separators, numbers, a few signs.
fn tag_char(c: char) -> bool {
    c.is_alphabetic()
        || c.is_numeric()
        || (c.is_whitespace() && !c.is_control())
        || "_.:/=+-@".contains(c)
}

/// How an entity's tag keys meet: a user's or a role's keys are case-insensitive (tagging
/// `department` replaces `Department`, key and value), other entities' are not (IAM's
/// "Tagging IAM resources").
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum TagKeys {
    CaseInsensitive,
    CaseSensitive,
}

impl TagKeys {
    fn same(self, a: &str, b: &str) -> bool {
        match self {
            TagKeys::CaseInsensitive => same_key(a, b),
            TagKeys::CaseSensitive => a == b,
        }
    }
}

/// Adds the request's `new` tags to `have`: a tag whose key is already there replaces it in
/// place; more than IAM's 50 in all is `LimitExceeded`.
pub(crate) fn merge_tags(have: &mut Vec<Tag>, new: Vec<Tag>, keys: TagKeys) -> Result<()> {
    check_tags(&new)?;
    for t in new {
        match have.iter_mut().find(|h| keys.same(&h.key, &t.key)) {
            Some(h) => *h = t,
            None => have.push(t),
        }
    }
    if have.len() > MAX_TAGS {
        return Err(too_many_tags());
    }
    Ok(())
}

/// Removes the tags with the given keys.
pub(crate) fn remove_tags(have: &mut Vec<Tag>, gone: &[String], keys: TagKeys) {
    have.retain(|t| !gone.iter().any(|g| keys.same(g, &t.key)));
}

/// One page of an entity's tags, in the order they were added, as ListUserTags,
/// ListRoleTags and ListPolicyTags give them (`IsTruncated`, `Marker`).
pub(crate) fn tags_page(
    tags: &[Tag],
    marker: Option<String>,
    max_items: Option<i64>,
) -> Result<Value> {
    let items = tags
        .iter()
        .enumerate()
        .map(|(i, t)| Ok((format!("{i:04}"), output(t)?)))
        .collect::<Result<Vec<_>>>()?;
    let req = ListRequest {
        path_prefix: None,
        marker,
        max_items,
    };
    Ok(page(items, &req, "Tags"))
}

/// A permissions boundary must be a managed policy that exists.
pub(crate) async fn check_boundary(
    ctx: &Ctx<'_>,
    tx: &mut kumori_store::Tx,
    arn: &str,
) -> Result<()> {
    if super::policies::find(ctx, tx, arn).await?.is_none() {
        return Err(Error::new(
            "InvalidInput",
            format!("ARN {arn} is not valid."),
        ));
    }
    Ok(())
}

/// Loads user `name` for a change, applies `f`, checks its boundary, stores it: one
/// transaction.
async fn change_user(
    ctx: &Ctx<'_>,
    name: &str,
    f: impl FnOnce(&mut User) -> Result<()>,
) -> Result<User> {
    let mut tx = ctx.store.write().await?;
    let mut user: User = get(ctx, &mut tx, USER, name, true)
        .await?
        .ok_or_else(|| no_such("user", name))?;
    f(&mut user)?;
    if let Some(b) = &user.permissions_boundary {
        check_boundary(ctx, &mut tx, b).await?;
    }
    tx.save(ctx, USER, &user.user_name, &user, false).await?;
    tx.commit().await?;
    Ok(user)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateUserRequest {
    user_name: String,
    path: Option<String>,
    permissions_boundary: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
}

pub async fn create_user(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: CreateUserRequest = input(raw)?;
    check_name("userName", &req.user_name)?;
    let path = req.path.unwrap_or_else(|| "/".into());
    check_path(&path)?;
    check_tags(&req.tags)?;
    let mut tx = ctx.store.write().await?;
    super::account::stamp(ctx, &mut tx).await?;
    if get::<User>(ctx, &mut tx, USER, &req.user_name, true)
        .await?
        .is_some()
    {
        return Err(conflict(
            "EntityAlreadyExists",
            format!("User with name {} already exists.", req.user_name),
        ));
    }
    if let Some(b) = &req.permissions_boundary {
        check_boundary(ctx, &mut tx, b).await?;
    }
    let user = User {
        arn: format!(
            "arn:{}:iam::{}:user{path}{}",
            crate::resource::partition(ctx.region),
            ctx.account,
            req.user_name
        ),
        path,
        user_id: unique_id("AIDA"),
        create_date: kumori_protocol::time::now_iso(),
        tags: req.tags,
        permissions_boundary: req.permissions_boundary,
        inline_policies: BTreeMap::new(),
        attached_policies: vec![],
        groups: vec![],
        login_profile: None,
        user_name: req.user_name,
    };
    tx.save(ctx, USER, &user.user_name, &user, true).await?;
    tx.commit().await?;
    Ok(json!({ "User": user_shown(&user)? }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UserNameRequest {
    user_name: Option<String>,
}

pub async fn get_user(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: UserNameRequest = input(raw)?;
    let Some(name) = user_or_caller(ctx, req.user_name)? else {
        // The root user, as IAM shows it to its own credentials: made with the account.
        return Ok(json!({ "User": {
            "Path": "/",
            "UserName": "",
            "UserId": ctx.account,
            "Arn": format!("arn:{}:iam::{}:root", crate::resource::partition(ctx.region), ctx.account),
            "CreateDate": super::account::created(ctx).await?,
        }}));
    };
    let mut tx = ctx.store.read().await?;
    let user: User = get(ctx, &mut tx, USER, &name, false)
        .await?
        .ok_or_else(|| no_such("user", &name))?;
    Ok(json!({ "User": user_shown(&user)? }))
}

pub async fn list_users(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ListRequest = input(raw)?;
    let mut tx = ctx.store.read().await?;
    let users: Vec<User> = all(ctx, &mut tx, USER).await?;
    let prefix = req.path_prefix.clone().unwrap_or_else(|| "/".into());
    let items = users
        .iter()
        .filter(|u| u.path.starts_with(&prefix))
        .map(|u| {
            // ListUsers leaves out tags and the boundary, as IAM does.
            let mut v = user_shown(u)?;
            if let Some(o) = v.as_object_mut() {
                o.remove("Tags");
                o.remove("PermissionsBoundary");
            }
            Ok((u.user_name.to_lowercase(), v))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(page(items, &req, "Users"))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateUserRequest {
    user_name: String,
    new_path: Option<String>,
    new_user_name: Option<String>,
}

pub async fn update_user(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: UpdateUserRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let mut user: User = get(ctx, &mut tx, USER, &req.user_name, true)
        .await?
        .ok_or_else(|| no_such("user", &req.user_name))?;
    if let Some(p) = &req.new_path {
        check_path(p)?;
        user.path = p.clone();
    }
    let old_key = key(USER, &user.user_name);
    if let Some(n) = &req.new_user_name {
        check_name("newUserName", n)?;
        if !n.eq_ignore_ascii_case(&user.user_name)
            && get::<User>(ctx, &mut tx, USER, n, true).await?.is_some()
        {
            return Err(conflict(
                "EntityAlreadyExists",
                format!("User with name {n} already exists."),
            ));
        }
        user.user_name = n.clone();
    }
    user.arn = format!(
        "arn:{}:iam::{}:user{}{}",
        crate::resource::partition(ctx.region),
        ctx.account,
        user.path,
        user.user_name
    );
    // The id is the lowercased name: a new name is a new record, and the user's access
    // keys follow it.
    tx.delete(scope(ctx), &old_key).await?;
    tx.save(ctx, USER, &user.user_name, &user, true).await?;
    super::access_keys::rename_owner(ctx, &mut tx, &old_key, &user.user_name).await?;
    tx.commit().await?;
    Ok(json!({}))
}

pub async fn delete_user(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: UserNameRequest = input(raw)?;
    let name = req.user_name.unwrap_or_default();
    let mut tx = ctx.store.write().await?;
    let user: User = get(ctx, &mut tx, USER, &name, true)
        .await?
        .ok_or_else(|| no_such("user", &name))?;
    let keys = super::access_keys::of_user(ctx, &mut tx, &user.user_name).await?;
    // IAM refuses while anything still hangs off the user, and says which.
    super::refuse_if_held(&[
        (!keys.is_empty(), "must delete access keys first"),
        (
            user.login_profile.is_some(),
            "must delete login profile first",
        ),
        (
            !user.inline_policies.is_empty(),
            "must delete policies first",
        ),
        (
            !user.attached_policies.is_empty(),
            "must detach all policies first",
        ),
        (
            !user.groups.is_empty(),
            "must remove users from group first",
        ),
    ])?;
    tx.delete(scope(ctx), &key(USER, &user.user_name)).await?;
    tx.commit().await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagRequest {
    user_name: String,
    #[serde(default)]
    tags: Vec<Tag>,
    #[serde(default)]
    tag_keys: Vec<String>,
    marker: Option<String>,
    max_items: Option<i64>,
}

pub async fn tag_user(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: TagRequest = input(raw)?;
    change_user(ctx, &req.user_name, |u| {
        merge_tags(&mut u.tags, req.tags, TagKeys::CaseInsensitive)
    })
    .await?;
    Ok(json!({}))
}

pub async fn untag_user(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: TagRequest = input(raw)?;
    change_user(ctx, &req.user_name, |u| {
        remove_tags(&mut u.tags, &req.tag_keys, TagKeys::CaseInsensitive);
        Ok(())
    })
    .await?;
    Ok(json!({}))
}

pub async fn list_user_tags(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: TagRequest = input(raw)?;
    let mut tx = ctx.store.read().await?;
    let user: User = get(ctx, &mut tx, USER, &req.user_name, false)
        .await?
        .ok_or_else(|| no_such("user", &req.user_name))?;
    tags_page(&user.tags, req.marker, req.max_items)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LoginProfileRequest {
    user_name: Option<String>,
    password: Option<String>,
    password_reset_required: Option<bool>,
}

fn no_login_profile(user: &str) -> Error {
    Error::new(
        "NoSuchEntity",
        format!("Login Profile for User {user} cannot be found."),
    )
}

fn hash_password(password: &str) -> String {
    use rand::Rng;
    use sha2::{Digest, Sha256};
    let salt: [u8; 16] = rand::rng().random();
    let salt = kumori_protocol::sigv4::hex(&salt);
    let digest = Sha256::digest(format!("{salt}:{password}").as_bytes());
    format!("{salt}${}", kumori_protocol::sigv4::hex(&digest))
}

/// The account's password policy, if set, or IAM's default rule: at least 8 characters, with
/// at least three of uppercase letters, lowercase letters, digits and symbols.
async fn check_password(ctx: &Ctx<'_>, tx: &mut kumori_store::Tx, password: &str) -> Result<()> {
    let policy = super::account::password_policy(ctx, tx).await?;
    let min = policy
        .as_ref()
        .and_then(|p| p["MinimumPasswordLength"].as_u64())
        .unwrap_or(8) as usize;
    let mut missing = Vec::new();
    if password.chars().count() < min {
        missing.push(format!("Password should have at least {min} characters"));
    }
    if policy.is_none() {
        let kinds = [
            password.chars().any(|c| c.is_uppercase()),
            password.chars().any(|c| c.is_lowercase()),
            password.chars().any(|c| c.is_ascii_digit()),
            password.chars().any(|c| !c.is_alphanumeric()),
        ];
        if kinds.iter().filter(|k| **k).count() < 3 {
            missing.push(
                "Password should have at least three of: uppercase letters, lowercase letters, numbers, symbols"
                    .into(),
            );
        }
    }
    if let Some(p) = &policy {
        let need = |k: &str| p[k].as_bool() == Some(true);
        if need("RequireSymbols") && password.chars().all(|c| c.is_alphanumeric()) {
            missing.push("Password should have at least one symbol".into());
        }
        if need("RequireNumbers") && !password.chars().any(|c| c.is_ascii_digit()) {
            missing.push("Password should have at least one number".into());
        }
        if need("RequireUppercaseCharacters") && !password.chars().any(|c| c.is_uppercase()) {
            missing.push("Password should have at least one uppercase letter".into());
        }
        if need("RequireLowercaseCharacters") && !password.chars().any(|c| c.is_lowercase()) {
            missing.push("Password should have at least one lowercase letter".into());
        }
    }
    if !missing.is_empty() {
        return Err(Error::new(
            "PasswordPolicyViolation",
            format!(
                "Password does not conform to the account password policy: {}",
                missing.join("; ")
            ),
        ));
    }
    Ok(())
}

pub async fn create_login_profile(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: LoginProfileRequest = input(raw)?;
    let name = user_or_caller(ctx, req.user_name)?.unwrap_or_default();
    let password = req.password.unwrap_or_default();
    let mut tx = ctx.store.write().await?;
    let mut user: User = get(ctx, &mut tx, USER, &name, true)
        .await?
        .ok_or_else(|| no_such("user", &name))?;
    if user.login_profile.is_some() {
        return Err(conflict(
            "EntityAlreadyExists",
            format!("Login Profile for user {} already exists.", user.user_name),
        ));
    }
    check_password(ctx, &mut tx, &password).await?;
    let profile = LoginProfile {
        create_date: kumori_protocol::time::now_iso(),
        password_reset_required: req.password_reset_required.unwrap_or(false),
        password_hash: hash_password(&password),
    };
    let shown = json!({
        "UserName": user.user_name,
        "CreateDate": profile.create_date,
        "PasswordResetRequired": profile.password_reset_required,
    });
    user.login_profile = Some(profile);
    tx.save(ctx, USER, &user.user_name, &user, false).await?;
    tx.commit().await?;
    Ok(json!({ "LoginProfile": shown }))
}

pub async fn get_login_profile(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: LoginProfileRequest = input(raw)?;
    let name = user_or_caller(ctx, req.user_name)?.unwrap_or_default();
    let mut tx = ctx.store.read().await?;
    let user: User = get(ctx, &mut tx, USER, &name, false)
        .await?
        .ok_or_else(|| no_such("user", &name))?;
    let Some(p) = &user.login_profile else {
        return Err(no_login_profile(&user.user_name));
    };
    Ok(json!({ "LoginProfile": {
        "UserName": user.user_name,
        "CreateDate": p.create_date,
        "PasswordResetRequired": p.password_reset_required,
    }}))
}

pub async fn update_login_profile(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: LoginProfileRequest = input(raw)?;
    let name = user_or_caller(ctx, req.user_name)?.unwrap_or_default();
    let mut tx = ctx.store.write().await?;
    let mut user: User = get(ctx, &mut tx, USER, &name, true)
        .await?
        .ok_or_else(|| no_such("user", &name))?;
    if user.login_profile.is_none() {
        return Err(no_login_profile(&user.user_name));
    }
    if let Some(pw) = &req.password {
        check_password(ctx, &mut tx, pw).await?;
    }
    if let Some(p) = user.login_profile.as_mut() {
        if let Some(pw) = &req.password {
            p.password_hash = hash_password(pw);
        }
        if let Some(r) = req.password_reset_required {
            p.password_reset_required = r;
        }
    }
    tx.save(ctx, USER, &user.user_name, &user, false).await?;
    tx.commit().await?;
    Ok(json!({}))
}

pub async fn delete_login_profile(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: LoginProfileRequest = input(raw)?;
    let name = user_or_caller(ctx, req.user_name)?.unwrap_or_default();
    change_user(ctx, &name, |u| match u.login_profile.take() {
        Some(_) => Ok(()),
        None => Err(no_login_profile(&u.user_name)),
    })
    .await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BoundaryRequest {
    user_name: String,
    permissions_boundary: Option<String>,
}

pub async fn put_user_permissions_boundary(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: BoundaryRequest = input(raw)?;
    change_user(ctx, &req.user_name, |u| {
        u.permissions_boundary = Some(req.permissions_boundary.unwrap_or_default());
        Ok(())
    })
    .await?;
    Ok(json!({}))
}

pub async fn delete_user_permissions_boundary(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: BoundaryRequest = input(raw)?;
    change_user(ctx, &req.user_name, |u| {
        u.permissions_boundary = None;
        Ok(())
    })
    .await?;
    Ok(json!({}))
}
