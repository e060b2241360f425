//! Policies: customer managed policies with versions, AWS managed ones (read-only data),
//! attaching either to users, groups and roles, and the inline policies each of those
//! holds. Documents are checked by `kumori-policy` as IAM checks them
//! (`MalformedPolicyDocument`) and stored as given.

use super::Save;
use super::groups::{GROUP, Group};
use super::managed::{self, AwsPolicy};
use super::roles::{ROLE, Role};
use super::users::{TagKeys, USER, User, check_tags, merge_tags, remove_tags, tags_page};
use super::{
    ListRequest, Tag, all, check_path, conflict, get, key, no_such, page, record, scope, unique_id,
    url_encoded,
};
use crate::{Ctx, Error, Result, input, output};
use kumori_protocol::AwsError;
use kumori_store::Tx;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub(crate) const POLICY: &str = "iam-policy";
/// IAM's quotas.
const VERSIONS_PER_POLICY: usize = 5;
const MANAGED_PER_ENTITY: usize = 10;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyVersion {
    pub version_id: String,
    pub document: String,
    pub create_date: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CustomerPolicy {
    pub policy_name: String,
    pub policy_id: String,
    pub arn: String,
    pub path: String,
    pub default_version_id: String,
    #[serde(default)]
    pub description: Option<String>,
    pub create_date: String,
    pub update_date: String,
    /// In the store's tags table, not the document (see `iam::Entity`).
    #[serde(skip)]
    pub tags: Vec<Tag>,
    pub versions: Vec<PolicyVersion>,
    /// The number the next version gets (`v<n>`); numbers are never reused.
    pub next_version: u32,
}

impl CustomerPolicy {
    pub fn default_document(&self) -> &str {
        self.versions
            .iter()
            .find(|v| v.version_id == self.default_version_id)
            .map_or("", |v| v.document.as_str())
    }
}

/// A managed policy, the account's own or AWS's.
pub enum Managed {
    Customer(Box<CustomerPolicy>),
    Aws(&'static AwsPolicy),
}

impl Managed {
    pub fn arn(&self) -> &str {
        match self {
            Managed::Customer(p) => &p.arn,
            Managed::Aws(p) => &p.arn,
        }
    }
    pub fn name(&self) -> &str {
        match self {
            Managed::Customer(p) => &p.policy_name,
            Managed::Aws(p) => &p.policy_name,
        }
    }
    /// The default version's document.
    pub fn document(&self) -> String {
        match self {
            Managed::Customer(p) => p.default_document().to_string(),
            Managed::Aws(p) => managed::document_text(p),
        }
    }
}

pub const OPERATIONS: &[crate::kit::Op] = crate::operations![
    "CreatePolicy" => create_policy,
    "GetPolicy" => get_policy,
    "DeletePolicy" => delete_policy,
    "ListPolicies" => list_policies,
    "CreatePolicyVersion" => create_policy_version,
    "GetPolicyVersion" => get_policy_version,
    "ListPolicyVersions" => list_policy_versions,
    "DeletePolicyVersion" => delete_policy_version,
    "SetDefaultPolicyVersion" => set_default_policy_version,
    "TagPolicy" => tag_policy,
    "UntagPolicy" => untag_policy,
    "ListPolicyTags" => list_policy_tags,
    "ListEntitiesForPolicy" => list_entities_for_policy,
    "AttachUserPolicy" => attach::<User>,
    "AttachGroupPolicy" => attach::<Group>,
    "AttachRolePolicy" => attach::<Role>,
    "DetachUserPolicy" => detach::<User>,
    "DetachGroupPolicy" => detach::<Group>,
    "DetachRolePolicy" => detach::<Role>,
    "ListAttachedUserPolicies" => list_attached::<User>,
    "ListAttachedGroupPolicies" => list_attached::<Group>,
    "ListAttachedRolePolicies" => list_attached::<Role>,
    "PutUserPolicy" => put_inline::<User>,
    "PutGroupPolicy" => put_inline::<Group>,
    "PutRolePolicy" => put_inline::<Role>,
    "GetUserPolicy" => get_inline::<User>,
    "GetGroupPolicy" => get_inline::<Group>,
    "GetRolePolicy" => get_inline::<Role>,
    "ListUserPolicies" => list_inline::<User>,
    "ListGroupPolicies" => list_inline::<Group>,
    "ListRolePolicies" => list_inline::<Role>,
    "DeleteUserPolicy" => delete_inline::<User>,
    "DeleteGroupPolicy" => delete_inline::<Group>,
    "DeleteRolePolicy" => delete_inline::<Role>,
];

/// Checks an identity-based policy document as IAM does.
pub fn check_document(doc: &str) -> Result<()> {
    kumori_policy::Policy::parse(doc, kumori_policy::PolicyKind::Identity)
        .map(|_| ())
        .map_err(|e| Error::new("MalformedPolicyDocument", e.to_string()))
}

/// Checks a version of a managed policy: as any identity-based policy, and in the policy
/// language of 2012-10-17, which IAM requires of managed policies (CreatePolicy,
/// CreatePolicyVersion) though not of inline ones.
pub fn check_managed_document(doc: &str) -> Result<()> {
    kumori_policy::Policy::parse_managed(doc)
        .map(|_| ())
        .map_err(|e| Error::new("MalformedPolicyDocument", e.to_string()))
}

/// The managed policy with `arn`: AWS's, or one of the account's.
pub async fn find(ctx: &Ctx<'_>, tx: &mut Tx, arn: &str) -> Result<Option<Managed>> {
    if let Some(p) = managed::by_arn(arn) {
        return Ok(Some(Managed::Aws(p)));
    }
    Ok(customer(ctx, tx, arn, false)
        .await?
        .map(|p| Managed::Customer(Box::new(p))))
}

async fn customer(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    arn: &str,
    lock: bool,
) -> Result<Option<CustomerPolicy>> {
    let Some((_, name)) = arn.rsplit_once('/') else {
        return Ok(None);
    };
    Ok(get::<CustomerPolicy>(ctx, tx, POLICY, name, lock)
        .await?
        .filter(|p| p.arn == arn))
}

fn no_such_policy(arn: &str) -> Error {
    Error::new(
        "NoSuchEntity",
        format!("Policy {arn} does not exist or is not attachable."),
    )
}

fn invalid_arn(arn: &str) -> Error {
    Error::new("InvalidInput", format!("ARN {arn} is not valid."))
}

/// Users, groups and roles: what policies attach to and what holds inline policies.
pub(crate) trait Holder: super::Entity {
    const KIND: &'static str;
    /// As IAM's messages name it.
    const WHAT: &'static str;
    /// The request member that names it.
    const NAME_MEMBER: &'static str;
    fn name(&self) -> &str;
    fn inline(&mut self) -> &mut BTreeMap<String, String>;
    fn attached(&mut self) -> &mut Vec<String>;
}

impl Holder for User {
    const KIND: &'static str = USER;
    const WHAT: &'static str = "user";
    const NAME_MEMBER: &'static str = "UserName";
    fn name(&self) -> &str {
        &self.user_name
    }
    fn inline(&mut self) -> &mut BTreeMap<String, String> {
        &mut self.inline_policies
    }
    fn attached(&mut self) -> &mut Vec<String> {
        &mut self.attached_policies
    }
}

impl Holder for Group {
    const KIND: &'static str = GROUP;
    const WHAT: &'static str = "group";
    const NAME_MEMBER: &'static str = "GroupName";
    fn name(&self) -> &str {
        &self.group_name
    }
    fn inline(&mut self) -> &mut BTreeMap<String, String> {
        &mut self.inline_policies
    }
    fn attached(&mut self) -> &mut Vec<String> {
        &mut self.attached_policies
    }
}

impl Holder for Role {
    const KIND: &'static str = ROLE;
    const WHAT: &'static str = "role";
    const NAME_MEMBER: &'static str = "RoleName";
    fn name(&self) -> &str {
        &self.role_name
    }
    fn inline(&mut self) -> &mut BTreeMap<String, String> {
        &mut self.inline_policies
    }
    fn attached(&mut self) -> &mut Vec<String> {
        &mut self.attached_policies
    }
}

fn holder_name<H: Holder>(raw: &Value) -> String {
    raw[H::NAME_MEMBER].as_str().unwrap_or_default().to_string()
}

async fn load<H: Holder>(ctx: &Ctx<'_>, tx: &mut Tx, name: &str, lock: bool) -> Result<H> {
    get::<H>(ctx, tx, H::KIND, name, lock)
        .await?
        .ok_or_else(|| no_such(H::WHAT, name))
}

async fn save<H: Holder>(ctx: &Ctx<'_>, tx: &mut Tx, h: &H) -> Result<()> {
    tx.update(scope(ctx), &record(H::KIND, h.name(), h)?)
        .await?;
    Ok(())
}

fn policy_shown(p: &Managed, attachments: usize) -> Result<Value> {
    let mut v = match p {
        Managed::Customer(c) => {
            let mut v = json!({
                "PolicyName": c.policy_name,
                "PolicyId": c.policy_id,
                "Arn": c.arn,
                "Path": c.path,
                "DefaultVersionId": c.default_version_id,
                "IsAttachable": true,
                "CreateDate": c.create_date,
                "UpdateDate": c.update_date,
            });
            if let Some(d) = &c.description {
                v["Description"] = json!(d);
            }
            if !c.tags.is_empty() {
                v["Tags"] = output(&c.tags)?;
            }
            v
        }
        Managed::Aws(a) => {
            let mut v = json!({
                "PolicyName": a.policy_name,
                "Arn": a.arn,
                "Path": a.path,
                "DefaultVersionId": a.default_version_id,
                "IsAttachable": true,
            });
            if let Some(x) = &a.policy_id {
                v["PolicyId"] = json!(x);
            }
            if let Some(x) = &a.description {
                v["Description"] = json!(x);
            }
            if let Some(x) = &a.create_date {
                v["CreateDate"] = json!(x);
            }
            if let Some(x) = &a.update_date {
                v["UpdateDate"] = json!(x);
            }
            v
        }
    };
    v["AttachmentCount"] = json!(attachments);
    v["PermissionsBoundaryUsageCount"] = json!(0);
    Ok(v)
}

/// Who holds `arn` attached: (users, groups, roles).
async fn holders_of(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    arn: &str,
) -> Result<(Vec<User>, Vec<Group>, Vec<Role>)> {
    let users: Vec<User> = all(ctx, tx, USER).await?;
    let groups: Vec<Group> = all(ctx, tx, GROUP).await?;
    let roles: Vec<Role> = all(ctx, tx, ROLE).await?;
    let has = |v: &Vec<String>| v.iter().any(|a| a == arn);
    Ok((
        users
            .into_iter()
            .filter(|u| has(&u.attached_policies))
            .collect(),
        groups
            .into_iter()
            .filter(|g| has(&g.attached_policies))
            .collect(),
        roles
            .into_iter()
            .filter(|r| has(&r.attached_policies))
            .collect(),
    ))
}

async fn attachment_count(ctx: &Ctx<'_>, tx: &mut Tx, arn: &str) -> Result<usize> {
    let (u, g, r) = holders_of(ctx, tx, arn).await?;
    Ok(u.len() + g.len() + r.len())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreatePolicyRequest {
    policy_name: String,
    path: Option<String>,
    policy_document: String,
    description: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
}

pub async fn create_policy(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: CreatePolicyRequest = input(raw)?;
    super::check_name("policyName", &req.policy_name)?;
    let path = req.path.unwrap_or_else(|| "/".into());
    check_path(&path)?;
    check_managed_document(&req.policy_document)?;
    check_tags(&req.tags)?;
    let mut tx = ctx.store.write().await?;
    super::account::stamp(ctx, &mut tx).await?;
    if get::<CustomerPolicy>(ctx, &mut tx, POLICY, &req.policy_name, true)
        .await?
        .is_some()
    {
        return Err(conflict(
            "EntityAlreadyExists",
            format!(
                "A policy called {} already exists. Duplicate names are not allowed.",
                req.policy_name
            ),
        ));
    }
    let now = kumori_protocol::time::now_iso();
    let p = CustomerPolicy {
        arn: format!(
            "arn:{}:iam::{}:policy{path}{}",
            crate::resource::partition(ctx.region),
            ctx.account,
            req.policy_name
        ),
        path,
        policy_id: unique_id("ANPA"),
        default_version_id: "v1".into(),
        description: req.description,
        create_date: now.clone(),
        update_date: now.clone(),
        tags: req.tags,
        versions: vec![PolicyVersion {
            version_id: "v1".into(),
            document: req.policy_document,
            create_date: now,
        }],
        next_version: 2,
        policy_name: req.policy_name,
    };
    tx.save(ctx, POLICY, &p.policy_name, &p, true).await?;
    tx.commit().await?;
    let mut shown = policy_shown(&Managed::Customer(Box::new(p)), 0)?;
    // CreatePolicy's answer leaves out the description, as IAM's does.
    if let Some(o) = shown.as_object_mut() {
        o.remove("Description");
    }
    Ok(json!({ "Policy": shown }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ArnRequest {
    policy_arn: String,
    version_id: Option<String>,
    policy_document: Option<String>,
    set_as_default: Option<bool>,
    #[serde(default)]
    tags: Vec<Tag>,
    #[serde(default)]
    tag_keys: Vec<String>,
    marker: Option<String>,
    max_items: Option<i64>,
}

pub async fn get_policy(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ArnRequest = input(raw)?;
    let mut tx = ctx.store.read().await?;
    let p = find(ctx, &mut tx, &req.policy_arn).await?.ok_or_else(|| {
        Error::new(
            "NoSuchEntity",
            format!("Policy {} was not found.", req.policy_arn),
        )
    })?;
    let n = attachment_count(ctx, &mut tx, p.arn()).await?;
    Ok(json!({ "Policy": policy_shown(&p, n)? }))
}

/// The account's policy with `arn`, locked for a change; AWS's cannot be changed.
async fn own_policy(ctx: &Ctx<'_>, tx: &mut Tx, arn: &str) -> Result<CustomerPolicy> {
    if managed::by_arn(arn).is_some() {
        return Err(Error(
            AwsError::new(
                "AccessDenied",
                format!("AWS managed policy {arn} cannot be modified."),
            )
            .with_status(403),
        ));
    }
    customer(ctx, tx, arn, true)
        .await?
        .ok_or_else(|| Error::new("NoSuchEntity", format!("Policy {arn} was not found.")))
}

async fn save_policy(ctx: &Ctx<'_>, tx: &mut Tx, p: &CustomerPolicy) -> Result<()> {
    tx.save(ctx, POLICY, &p.policy_name, p, false).await?;
    Ok(())
}

pub async fn delete_policy(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ArnRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let p = own_policy(ctx, &mut tx, &req.policy_arn).await?;
    if attachment_count(ctx, &mut tx, &p.arn).await? > 0 {
        return Err(conflict(
            "DeleteConflict",
            "Cannot delete a policy attached to entities.".into(),
        ));
    }
    if p.versions.len() > 1 {
        return Err(conflict(
            "DeleteConflict",
            "This policy has more than one version. Before you delete a policy, you must delete the policy's versions. The default version is deleted with the policy.".into(),
        ));
    }
    tx.delete(scope(ctx), &key(POLICY, &p.policy_name)).await?;
    tx.commit().await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListPoliciesRequest {
    scope: Option<String>,
    only_attached: Option<bool>,
    path_prefix: Option<String>,
    marker: Option<String>,
    max_items: Option<i64>,
}

pub async fn list_policies(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ListPoliciesRequest = input(raw)?;
    let which = req.scope.clone().unwrap_or_else(|| "All".into());
    let prefix = req.path_prefix.clone().unwrap_or_else(|| "/".into());
    let mut tx = ctx.store.read().await?;
    let mut candidates: Vec<Managed> = Vec::new();
    if which != "Local" {
        candidates.extend(managed::all().iter().map(Managed::Aws));
    }
    if which != "AWS" {
        let own: Vec<CustomerPolicy> = all(ctx, &mut tx, POLICY).await?;
        candidates.extend(own.into_iter().map(|p| Managed::Customer(Box::new(p))));
    }
    let mut items = Vec::new();
    for p in candidates {
        let path = match &p {
            Managed::Customer(c) => c.path.clone(),
            Managed::Aws(a) => a.path.clone(),
        };
        if !path.starts_with(&prefix) {
            continue;
        }
        let n = attachment_count(ctx, &mut tx, p.arn()).await?;
        if req.only_attached == Some(true) && n == 0 {
            continue;
        }
        let mut v = policy_shown(&p, n)?;
        if let Some(o) = v.as_object_mut() {
            o.remove("Description");
        }
        items.push((format!("{}{}", p.name().to_lowercase(), p.arn()), v));
    }
    let list = ListRequest {
        path_prefix: None,
        marker: req.marker,
        max_items: req.max_items,
    };
    Ok(page(items, &list, "Policies"))
}

fn version_shown(v: &PolicyVersion, default: &str, with_document: bool) -> Value {
    let mut out = json!({
        "VersionId": v.version_id,
        "IsDefaultVersion": v.version_id == default,
        "CreateDate": v.create_date,
    });
    if with_document {
        out["Document"] = json!(url_encoded(&v.document));
    }
    out
}

pub async fn create_policy_version(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ArnRequest = input(raw)?;
    let doc = req.policy_document.clone().unwrap_or_default();
    check_managed_document(&doc)?;
    let mut tx = ctx.store.write().await?;
    let mut p = own_policy(ctx, &mut tx, &req.policy_arn).await?;
    if p.versions.len() >= VERSIONS_PER_POLICY {
        return Err(conflict(
            "LimitExceeded",
            format!(
                "A managed policy can have up to {VERSIONS_PER_POLICY} versions. Before you create a new version, you must delete an existing version."
            ),
        ));
    }
    let now = kumori_protocol::time::now_iso();
    let v = PolicyVersion {
        version_id: format!("v{}", p.next_version),
        document: doc,
        create_date: now.clone(),
    };
    p.next_version += 1;
    if req.set_as_default == Some(true) {
        p.default_version_id = v.version_id.clone();
    }
    p.update_date = now;
    p.versions.push(v.clone());
    save_policy(ctx, &mut tx, &p).await?;
    tx.commit().await?;
    Ok(json!({ "PolicyVersion": version_shown(&v, &p.default_version_id, false) }))
}

pub async fn get_policy_version(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ArnRequest = input(raw)?;
    let id = req.version_id.clone().unwrap_or_default();
    let mut tx = ctx.store.read().await?;
    let missing = || {
        Error::new(
            "NoSuchEntity",
            format!(
                "Policy {} version {id} does not exist or is not attachable.",
                req.policy_arn
            ),
        )
    };
    match find(ctx, &mut tx, &req.policy_arn).await? {
        Some(Managed::Customer(p)) => {
            let v = p
                .versions
                .iter()
                .find(|v| v.version_id == id)
                .ok_or_else(missing)?;
            Ok(json!({ "PolicyVersion": version_shown(v, &p.default_version_id, true) }))
        }
        Some(Managed::Aws(a)) if a.default_version_id == id => Ok(json!({ "PolicyVersion": {
            "Document": url_encoded(&managed::document_text(a)),
            "VersionId": a.default_version_id,
            "IsDefaultVersion": true,
            "CreateDate": a.update_date.clone().or(a.create_date.clone()).unwrap_or_default(),
        }})),
        _ => Err(missing()),
    }
}

pub async fn list_policy_versions(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ArnRequest = input(raw)?;
    let mut tx = ctx.store.read().await?;
    let versions: Vec<Value> = match find(ctx, &mut tx, &req.policy_arn).await? {
        Some(Managed::Customer(p)) => p
            .versions
            .iter()
            .rev()
            .map(|v| version_shown(v, &p.default_version_id, false))
            .collect(),
        Some(Managed::Aws(a)) => vec![json!({
            "VersionId": a.default_version_id,
            "IsDefaultVersion": true,
            "CreateDate": a.update_date.clone().or(a.create_date.clone()).unwrap_or_default(),
        })],
        None => return Err(no_such_policy(&req.policy_arn)),
    };
    Ok(json!({ "Versions": versions, "IsTruncated": false }))
}

pub async fn delete_policy_version(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ArnRequest = input(raw)?;
    let id = req.version_id.clone().unwrap_or_default();
    let mut tx = ctx.store.write().await?;
    let mut p = own_policy(ctx, &mut tx, &req.policy_arn).await?;
    if p.default_version_id == id {
        return Err(conflict(
            "DeleteConflict",
            "Cannot delete the default version of a policy.".into(),
        ));
    }
    let before = p.versions.len();
    p.versions.retain(|v| v.version_id != id);
    if p.versions.len() == before {
        return Err(Error::new(
            "NoSuchEntity",
            format!(
                "Policy {} version {id} does not exist or is not attachable.",
                p.arn
            ),
        ));
    }
    save_policy(ctx, &mut tx, &p).await?;
    tx.commit().await?;
    Ok(json!({}))
}

pub async fn set_default_policy_version(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ArnRequest = input(raw)?;
    let id = req.version_id.clone().unwrap_or_default();
    let mut tx = ctx.store.write().await?;
    let mut p = own_policy(ctx, &mut tx, &req.policy_arn).await?;
    if !p.versions.iter().any(|v| v.version_id == id) {
        return Err(Error::new(
            "NoSuchEntity",
            format!(
                "Policy {} version {id} does not exist or is not attachable.",
                p.arn
            ),
        ));
    }
    p.default_version_id = id;
    p.update_date = kumori_protocol::time::now_iso();
    save_policy(ctx, &mut tx, &p).await?;
    tx.commit().await?;
    Ok(json!({}))
}

pub async fn tag_policy(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ArnRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let mut p = own_policy(ctx, &mut tx, &req.policy_arn).await?;
    // A policy's tag keys are case-sensitive, unlike a user's or a role's.
    merge_tags(&mut p.tags, req.tags, TagKeys::CaseSensitive)?;
    save_policy(ctx, &mut tx, &p).await?;
    tx.commit().await?;
    Ok(json!({}))
}

pub async fn untag_policy(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ArnRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let mut p = own_policy(ctx, &mut tx, &req.policy_arn).await?;
    remove_tags(&mut p.tags, &req.tag_keys, TagKeys::CaseSensitive);
    save_policy(ctx, &mut tx, &p).await?;
    tx.commit().await?;
    Ok(json!({}))
}

pub async fn list_policy_tags(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ArnRequest = input(raw)?;
    let mut tx = ctx.store.read().await?;
    let tags = match find(ctx, &mut tx, &req.policy_arn).await? {
        Some(Managed::Customer(p)) => p.tags,
        Some(Managed::Aws(_)) => vec![],
        None => return Err(no_such_policy(&req.policy_arn)),
    };
    tags_page(&tags, req.marker, req.max_items)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EntitiesRequest {
    policy_arn: String,
    entity_filter: Option<String>,
    path_prefix: Option<String>,
}

pub async fn list_entities_for_policy(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: EntitiesRequest = input(raw)?;
    let mut tx = ctx.store.read().await?;
    if find(ctx, &mut tx, &req.policy_arn).await?.is_none() {
        return Err(no_such_policy(&req.policy_arn));
    }
    let (users, groups, roles) = holders_of(ctx, &mut tx, &req.policy_arn).await?;
    let prefix = req.path_prefix.unwrap_or_else(|| "/".into());
    let want = |kind: &str| req.entity_filter.as_deref().is_none_or(|f| f == kind);
    Ok(json!({
        "PolicyUsers": users.iter().filter(|_| want("User")).filter(|u| u.path.starts_with(&prefix))
            .map(|u| json!({ "UserName": u.user_name, "UserId": u.user_id })).collect::<Vec<_>>(),
        "PolicyGroups": groups.iter().filter(|_| want("Group")).filter(|g| g.path.starts_with(&prefix))
            .map(|g| json!({ "GroupName": g.group_name, "GroupId": g.group_id })).collect::<Vec<_>>(),
        "PolicyRoles": roles.iter().filter(|_| want("Role")).filter(|r| r.path.starts_with(&prefix))
            .map(|r| json!({ "RoleName": r.role_name, "RoleId": r.role_id })).collect::<Vec<_>>(),
        "IsTruncated": false,
    }))
}

async fn attach<H: Holder>(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let name = holder_name::<H>(raw);
    let arn = raw["PolicyArn"].as_str().unwrap_or_default().to_string();
    if !arn.starts_with("arn:") {
        return Err(invalid_arn(&arn));
    }
    let mut tx = ctx.store.write().await?;
    let mut h: H = load(ctx, &mut tx, &name, true).await?;
    let p = find(ctx, &mut tx, &arn)
        .await?
        .ok_or_else(|| no_such_policy(&arn))?;
    let attached = h.attached();
    if !attached.iter().any(|a| a == p.arn()) {
        if attached.len() >= MANAGED_PER_ENTITY {
            return Err(conflict(
                "LimitExceeded",
                format!(
                    "Cannot exceed quota for PoliciesPer{}: {MANAGED_PER_ENTITY}",
                    capitalized(H::WHAT)
                ),
            ));
        }
        attached.push(p.arn().to_string());
        save(ctx, &mut tx, &h).await?;
    }
    tx.commit().await?;
    Ok(json!({}))
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

async fn detach<H: Holder>(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let name = holder_name::<H>(raw);
    let arn = raw["PolicyArn"].as_str().unwrap_or_default().to_string();
    let mut tx = ctx.store.write().await?;
    let mut h: H = load(ctx, &mut tx, &name, true).await?;
    let attached = h.attached();
    let before = attached.len();
    attached.retain(|a| a != &arn);
    if attached.len() == before {
        return Err(Error::new(
            "NoSuchEntity",
            format!("Policy {arn} was not found."),
        ));
    }
    save(ctx, &mut tx, &h).await?;
    tx.commit().await?;
    Ok(json!({}))
}

async fn list_attached<H: Holder>(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let name = holder_name::<H>(raw);
    let req: ListRequest = input(raw)?;
    let mut tx = ctx.store.read().await?;
    let mut h: H = load(ctx, &mut tx, &name, false).await?;
    let prefix = req.path_prefix.clone().unwrap_or_else(|| "/".into());
    let mut items = Vec::new();
    for arn in h.attached().clone() {
        if let Some(p) = find(ctx, &mut tx, &arn).await? {
            let path = match &p {
                Managed::Customer(c) => c.path.clone(),
                Managed::Aws(a) => a.path.clone(),
            };
            if path.starts_with(&prefix) {
                items.push((
                    format!("{}{arn}", p.name().to_lowercase()),
                    json!({ "PolicyName": p.name(), "PolicyArn": arn }),
                ));
            }
        }
    }
    let list = ListRequest {
        path_prefix: None,
        ..req
    };
    Ok(page(items, &list, "AttachedPolicies"))
}

fn inline_name(raw: &Value) -> String {
    raw["PolicyName"].as_str().unwrap_or_default().to_string()
}

async fn put_inline<H: Holder>(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let name = holder_name::<H>(raw);
    let policy = inline_name(raw);
    super::check_name("policyName", &policy)?;
    let doc = raw["PolicyDocument"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    check_document(&doc)?;
    let mut tx = ctx.store.write().await?;
    let mut h: H = load(ctx, &mut tx, &name, true).await?;
    h.inline().insert(policy, doc);
    save(ctx, &mut tx, &h).await?;
    tx.commit().await?;
    Ok(json!({}))
}

fn no_such_inline(what: &str, policy: &str) -> Error {
    Error::new(
        "NoSuchEntity",
        format!("The {what} policy with name {policy} cannot be found."),
    )
}

async fn get_inline<H: Holder>(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let name = holder_name::<H>(raw);
    let policy = inline_name(raw);
    let mut tx = ctx.store.read().await?;
    let mut h: H = load(ctx, &mut tx, &name, false).await?;
    let holder = h.name().to_string();
    let doc = h
        .inline()
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(&policy))
        .map(|(k, v)| (k.clone(), v.clone()))
        .ok_or_else(|| no_such_inline(H::WHAT, &policy))?;
    let mut out = json!({ "PolicyName": doc.0, "PolicyDocument": url_encoded(&doc.1) });
    out[H::NAME_MEMBER] = json!(holder);
    Ok(out)
}

async fn list_inline<H: Holder>(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let name = holder_name::<H>(raw);
    let mut tx = ctx.store.read().await?;
    let mut h: H = load(ctx, &mut tx, &name, false).await?;
    let names: Vec<&String> = h.inline().keys().collect();
    Ok(json!({ "PolicyNames": names, "IsTruncated": false }))
}

async fn delete_inline<H: Holder>(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let name = holder_name::<H>(raw);
    let policy = inline_name(raw);
    let mut tx = ctx.store.write().await?;
    let mut h: H = load(ctx, &mut tx, &name, true).await?;
    let found = h
        .inline()
        .keys()
        .find(|k| k.eq_ignore_ascii_case(&policy))
        .cloned()
        .ok_or_else(|| no_such_inline(H::WHAT, &policy))?;
    h.inline().remove(&found);
    save(ctx, &mut tx, &h).await?;
    tx.commit().await?;
    Ok(json!({}))
}
