//! The account's IAM settings: its password policy, its alias, the summary of what it holds,
//! and GetAccountAuthorizationDetails, everything at once.

use super::groups::{GROUP, Group, group_shown};
use super::policies::{CustomerPolicy, Managed, POLICY};
use super::roles::{InstanceProfile, PROFILE, ROLE, Role, role_shown};
use super::users::{USER, User, user_shown};
use super::{all, scope, url_encoded};
use crate::{Ctx, Error, Result, input};
use kumori_protocol::AwsError;
use kumori_store::{Record, Tx};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

const PASSWORD_POLICY: &str = "iam-password-policy";
const ALIAS: &str = "iam-account-alias";
/// The account itself: when it was made (the root user's `CreateDate`).
const ACCOUNT: &str = "iam-account";

pub const OPERATIONS: &[crate::kit::Op] = crate::operations![
    "UpdateAccountPasswordPolicy" => update_account_password_policy,
    "GetAccountPasswordPolicy" => get_account_password_policy,
    "DeleteAccountPasswordPolicy" => delete_account_password_policy,
    "CreateAccountAlias" => create_account_alias,
    "DeleteAccountAlias" => delete_account_alias,
    "ListAccountAliases" => list_account_aliases,
    "GetAccountSummary" => get_account_summary,
    "GetAccountAuthorizationDetails" => get_account_authorization_details,
];

async fn read_created(ctx: &Ctx<'_>, tx: &mut Tx, lock: bool) -> Result<Option<String>> {
    let rec = if lock {
        tx.lock(scope(ctx), ACCOUNT).await?
    } else {
        tx.get(scope(ctx), ACCOUNT).await?
    };
    Ok(rec.and_then(|r| {
        serde_json::from_str::<Value>(&r.body)
            .ok()
            .and_then(|v| v["CreateDate"].as_str().map(str::to_string))
    }))
}

/// When the account was made, noted in `tx` (a write transaction) if nothing has noted it
/// yet: the account's first IAM write, its root key, or the first time it is asked for.
pub(crate) async fn stamp(ctx: &Ctx<'_>, tx: &mut Tx) -> Result<String> {
    if let Some(date) = read_created(ctx, tx, true).await? {
        return Ok(date);
    }
    // A store older than this record: the root's first key is the oldest sign of the account.
    let mut date = kumori_protocol::time::now_iso();
    for k in super::access_keys::keys_of(ctx, tx, None).await? {
        if k.create_date < date {
            date = k.create_date;
        }
    }
    tx.insert(
        scope(ctx),
        &Record {
            kind: ACCOUNT.into(),
            id: ACCOUNT.into(),
            parent: None,
            body: json!({ "CreateDate": date }).to_string(),
        },
    )
    .await?;
    Ok(date)
}

/// When the account was made (the root user's `CreateDate`), noted now in a transaction of
/// its own if this is the first time anything asks.
pub(crate) async fn created(ctx: &Ctx<'_>) -> Result<String> {
    {
        let mut tx = ctx.store.read().await?;
        if let Some(date) = read_created(ctx, &mut tx, false).await? {
            return Ok(date);
        }
    }
    let mut tx = ctx.store.write().await?;
    let date = stamp(ctx, &mut tx).await?;
    tx.commit().await?;
    Ok(date)
}

/// The account's password policy as IAM shows it, if one is set.
pub(crate) async fn password_policy(ctx: &Ctx<'_>, tx: &mut Tx) -> Result<Option<Value>> {
    Ok(match tx.get(scope(ctx), PASSWORD_POLICY).await? {
        Some(r) => Some(
            serde_json::from_str(&r.body).map_err(|e| Error(AwsError::internal(e.to_string())))?,
        ),
        None => None,
    })
}

pub async fn update_account_password_policy(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let min = raw["MinimumPasswordLength"].as_i64().unwrap_or(6);
    if !(6..=128).contains(&min) {
        return Err(Error::new(
            "ValidationError",
            format!(
                "1 validation error detected: Value '{min}' at 'minimumPasswordLength' failed to satisfy constraint: Member must have value between 6 and 128"
            ),
        ));
    }
    let flag = |k: &str| raw[k].as_bool().unwrap_or(false);
    let mut p = json!({
        "MinimumPasswordLength": min,
        "RequireSymbols": flag("RequireSymbols"),
        "RequireNumbers": flag("RequireNumbers"),
        "RequireUppercaseCharacters": flag("RequireUppercaseCharacters"),
        "RequireLowercaseCharacters": flag("RequireLowercaseCharacters"),
        "AllowUsersToChangePassword": flag("AllowUsersToChangePassword"),
        "ExpirePasswords": raw["MaxPasswordAge"].as_i64().is_some_and(|a| a > 0),
        "HardExpiry": flag("HardExpiry"),
    });
    if let Some(a) = raw["MaxPasswordAge"].as_i64() {
        p["MaxPasswordAge"] = json!(a);
    }
    if let Some(n) = raw["PasswordReusePrevention"].as_i64() {
        p["PasswordReusePrevention"] = json!(n);
    }
    let rec = Record {
        kind: PASSWORD_POLICY.into(),
        id: PASSWORD_POLICY.into(),
        parent: None,
        body: p.to_string(),
    };
    let mut tx = ctx.store.write().await?;
    if tx.lock(scope(ctx), PASSWORD_POLICY).await?.is_some() {
        tx.update(scope(ctx), &rec).await?;
    } else {
        tx.insert(scope(ctx), &rec).await?;
    }
    tx.commit().await?;
    Ok(json!({}))
}

fn no_password_policy(ctx: &Ctx<'_>) -> Error {
    Error::new(
        "NoSuchEntity",
        format!(
            "The Password Policy with domain name {} cannot be found.",
            ctx.account
        ),
    )
}

pub async fn get_account_password_policy(ctx: &Ctx<'_>, _raw: &Value) -> Result<Value> {
    let mut tx = ctx.store.read().await?;
    let p = password_policy(ctx, &mut tx)
        .await?
        .ok_or_else(|| no_password_policy(ctx))?;
    Ok(json!({ "PasswordPolicy": p }))
}

pub async fn delete_account_password_policy(ctx: &Ctx<'_>, _raw: &Value) -> Result<Value> {
    let mut tx = ctx.store.write().await?;
    if !tx.delete(scope(ctx), PASSWORD_POLICY).await? {
        // IAM words this one apart from GetAccountPasswordPolicy's.
        return Err(Error::new(
            "NoSuchEntity",
            "The account policy with name PasswordPolicy cannot be found.",
        ));
    }
    tx.commit().await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AliasRequest {
    account_alias: String,
}

pub async fn create_account_alias(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: AliasRequest = input(raw)?;
    let a = &req.account_alias;
    let ok = a.len() >= 3
        && a.len() <= 63
        && a.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !a.starts_with('-')
        && !a.ends_with('-');
    if !ok {
        return Err(Error::new(
            "ValidationError",
            format!(
                "1 validation error detected: Value '{a}' at 'accountAlias' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-z0-9]([a-z0-9]|-(?!-)){{1,61}}[a-z0-9]$"
            ),
        ));
    }
    let mut tx = ctx.store.write().await?;
    // An account has one alias: a new one replaces the old.
    tx.delete(scope(ctx), ALIAS).await?;
    tx.insert(
        scope(ctx),
        &Record {
            kind: ALIAS.into(),
            id: ALIAS.into(),
            parent: None,
            body: json!({ "Alias": a }).to_string(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(json!({}))
}

pub async fn delete_account_alias(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: AliasRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let current = aliases(ctx, &mut tx).await?;
    if !current.contains(&req.account_alias) {
        return Err(Error::new(
            "NoSuchEntity",
            format!("The account alias {} cannot be found.", req.account_alias),
        ));
    }
    tx.delete(scope(ctx), ALIAS).await?;
    tx.commit().await?;
    Ok(json!({}))
}

async fn aliases(ctx: &Ctx<'_>, tx: &mut Tx) -> Result<Vec<String>> {
    Ok(match tx.get(scope(ctx), ALIAS).await? {
        Some(r) => serde_json::from_str::<Value>(&r.body)
            .ok()
            .and_then(|v| v["Alias"].as_str().map(str::to_string))
            .into_iter()
            .collect(),
        None => vec![],
    })
}

pub async fn list_account_aliases(ctx: &Ctx<'_>, _raw: &Value) -> Result<Value> {
    let mut tx = ctx.store.read().await?;
    Ok(json!({ "AccountAliases": aliases(ctx, &mut tx).await?, "IsTruncated": false }))
}

/// GetAccountSummary: what the account holds and IAM's quotas, under exactly the keys IAM's
/// `SummaryMap` has. kumori has no MFA devices, server or signing certificates, or SAML and
/// OIDC providers: those count nothing.
pub async fn get_account_summary(ctx: &Ctx<'_>, _raw: &Value) -> Result<Value> {
    let mut tx = ctx.store.read().await?;
    let users: Vec<User> = all(ctx, &mut tx, USER).await?;
    let groups: Vec<Group> = all(ctx, &mut tx, GROUP).await?;
    let roles: Vec<Role> = all(ctx, &mut tx, ROLE).await?;
    let policies: Vec<CustomerPolicy> = all(ctx, &mut tx, POLICY).await?;
    let profiles: Vec<InstanceProfile> = all(ctx, &mut tx, PROFILE).await?;
    let root_keys = super::access_keys::keys_of(ctx, &mut tx, None).await?;
    // Managed policies in use: one for each attachment to a user, group or role.
    let attachments = users
        .iter()
        .map(|u| u.attached_policies.len())
        .sum::<usize>()
        + groups
            .iter()
            .map(|g| g.attached_policies.len())
            .sum::<usize>()
        + roles
            .iter()
            .map(|r| r.attached_policies.len())
            .sum::<usize>();
    let count = |n: usize| n as i64;
    let m: BTreeMap<&str, i64> = BTreeMap::from([
        ("Users", count(users.len())),
        ("UsersQuota", 5000),
        ("Groups", count(groups.len())),
        ("GroupsQuota", 300),
        ("ServerCertificates", 0),
        ("ServerCertificatesQuota", 20),
        ("UserPolicySizeQuota", 2048),
        ("GroupPolicySizeQuota", 5120),
        ("GroupsPerUserQuota", 10),
        ("SigningCertificatesPerUserQuota", 2),
        ("AccessKeysPerUserQuota", 2),
        ("MFADevices", 0),
        ("MFADevicesInUse", 0),
        ("AccountMFAEnabled", 0),
        ("AccountAccessKeysPresent", i64::from(!root_keys.is_empty())),
        ("AccountSigningCertificatesPresent", 0),
        ("AttachedPoliciesPerGroupQuota", 10),
        ("AttachedPoliciesPerRoleQuota", 10),
        ("AttachedPoliciesPerUserQuota", 10),
        ("Policies", count(policies.len())),
        ("PoliciesQuota", 1500),
        ("PolicySizeQuota", 6144),
        ("PolicyVersionsInUse", count(attachments)),
        ("PolicyVersionsInUseQuota", 10000),
        ("VersionsPerPolicyQuota", 5),
        ("GlobalEndpointTokenVersion", 1),
        ("Roles", count(roles.len())),
        ("RolesQuota", 1000),
        ("RolePolicySizeQuota", 10240),
        ("AssumeRolePolicySizeQuota", 2048),
        ("InstanceProfiles", count(profiles.len())),
        ("InstanceProfilesQuota", 1000),
        ("Providers", 0),
    ]);
    Ok(json!({ "SummaryMap": m }))
}

fn attached_shown(arns: &[String]) -> Vec<Value> {
    arns.iter()
        .map(|a| json!({ "PolicyName": a.rsplit('/').next().unwrap_or_default(), "PolicyArn": a }))
        .collect()
}

fn inline_shown(inline: &BTreeMap<String, String>) -> Vec<Value> {
    inline
        .iter()
        .map(|(n, d)| json!({ "PolicyName": n, "PolicyDocument": url_encoded(d) }))
        .collect()
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DetailsRequest {
    #[serde(default)]
    filter: Vec<String>,
}

pub async fn get_account_authorization_details(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DetailsRequest = input(raw)?;
    let want = |k: &str| req.filter.is_empty() || req.filter.iter().any(|f| f == k);
    let mut tx = ctx.store.read().await?;
    let users: Vec<User> = all(ctx, &mut tx, USER).await?;
    let groups: Vec<Group> = all(ctx, &mut tx, GROUP).await?;
    let roles: Vec<Role> = all(ctx, &mut tx, ROLE).await?;
    let policies: Vec<CustomerPolicy> = all(ctx, &mut tx, POLICY).await?;
    let profiles: Vec<InstanceProfile> = all(ctx, &mut tx, PROFILE).await?;
    let mut out = json!({ "IsTruncated": false });
    if want("User") {
        let list: Vec<Value> = users
            .iter()
            .map(|u| {
                let mut v = user_shown(u)?;
                v["UserPolicyList"] = json!(inline_shown(&u.inline_policies));
                v["GroupList"] = json!(u.groups);
                v["AttachedManagedPolicies"] = json!(attached_shown(&u.attached_policies));
                Ok(v)
            })
            .collect::<Result<_>>()?;
        out["UserDetailList"] = json!(list);
    }
    if want("Group") {
        let list: Vec<Value> = groups
            .iter()
            .map(|g| {
                let mut v = group_shown(g);
                v["GroupPolicyList"] = json!(inline_shown(&g.inline_policies));
                v["AttachedManagedPolicies"] = json!(attached_shown(&g.attached_policies));
                v
            })
            .collect();
        out["GroupDetailList"] = json!(list);
    }
    if want("Role") {
        let list: Vec<Value> = roles
            .iter()
            .map(|r| {
                let mut v = role_shown(r)?;
                v["RolePolicyList"] = json!(inline_shown(&r.inline_policies));
                v["AttachedManagedPolicies"] = json!(attached_shown(&r.attached_policies));
                let mine: Vec<Value> = profiles
                    .iter()
                    .filter(|p| p.roles.iter().any(|n| n.eq_ignore_ascii_case(&r.role_name)))
                    .map(|p| {
                        json!({
                            "Path": p.path,
                            "InstanceProfileName": p.instance_profile_name,
                            "InstanceProfileId": p.instance_profile_id,
                            "Arn": p.arn,
                            "CreateDate": p.create_date,
                            "Roles": [role_shown(r).unwrap_or_default()],
                        })
                    })
                    .collect();
                v["InstanceProfileList"] = json!(mine);
                Ok(v)
            })
            .collect::<Result<_>>()?;
        out["RoleDetailList"] = json!(list);
    }
    let mut listed: Vec<Value> = Vec::new();
    if want("AWSManagedPolicy") {
        // AWS's policies in use in the account, as IAM lists them.
        let used: std::collections::BTreeSet<&String> = users
            .iter()
            .flat_map(|u| &u.attached_policies)
            .chain(groups.iter().flat_map(|g| &g.attached_policies))
            .chain(roles.iter().flat_map(|r| &r.attached_policies))
            .collect();
        for arn in used {
            if let Some(p) = super::managed::by_arn(arn) {
                let mut v = json!({
                    "PolicyName": p.policy_name,
                    "Arn": p.arn,
                    "Path": p.path,
                    "DefaultVersionId": p.default_version_id,
                    "IsAttachable": true,
                    "PolicyVersionList": [{
                        "Document": url_encoded(&super::managed::document_text(p)),
                        "VersionId": p.default_version_id,
                        "IsDefaultVersion": true,
                        "CreateDate": p.update_date.clone().or(p.create_date.clone()).unwrap_or_default(),
                    }],
                });
                if let Some(id) = &p.policy_id {
                    v["PolicyId"] = json!(id);
                }
                listed.push(v);
            }
        }
    }
    if want("LocalManagedPolicy") {
        let list: Vec<Value> = policies
            .iter()
            .map(|p| {
                let m = Managed::Customer(Box::new(p.clone()));
                json!({
                    "PolicyName": m.name(),
                    "PolicyId": p.policy_id,
                    "Arn": p.arn,
                    "Path": p.path,
                    "DefaultVersionId": p.default_version_id,
                    "IsAttachable": true,
                    "CreateDate": p.create_date,
                    "UpdateDate": p.update_date,
                    "PolicyVersionList": p.versions.iter().map(|v| json!({
                        "Document": url_encoded(&v.document),
                        "VersionId": v.version_id,
                        "IsDefaultVersion": v.version_id == p.default_version_id,
                        "CreateDate": v.create_date,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        listed.extend(list);
    }
    if want("AWSManagedPolicy") || want("LocalManagedPolicy") {
        out["Policies"] = json!(listed);
    }
    Ok(out)
}
