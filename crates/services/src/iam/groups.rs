//! IAM groups and who is in them. Membership is kept on the user (its `groups`), so a user's
//! policies are read from one record plus its groups'.

use super::Save;
use super::users::{USER, User, user_shown};
use super::{
    ListRequest, all, check_name, check_path, conflict, get, key, no_such, page, record, scope,
    unique_id,
};
use crate::{Ctx, Result, input};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub(crate) const GROUP: &str = "iam-group";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Group {
    pub path: String,
    pub group_name: String,
    pub group_id: String,
    pub arn: String,
    pub create_date: String,
    #[serde(default)]
    pub inline_policies: BTreeMap<String, String>,
    #[serde(default)]
    pub attached_policies: Vec<String>,
}

pub const OPERATIONS: &[crate::kit::Op] = crate::operations![
    "CreateGroup" => create_group,
    "GetGroup" => get_group,
    "ListGroups" => list_groups,
    "UpdateGroup" => update_group,
    "DeleteGroup" => delete_group,
    "AddUserToGroup" => add_user_to_group,
    "RemoveUserFromGroup" => remove_user_from_group,
    "ListGroupsForUser" => list_groups_for_user,
];

pub(crate) fn group_shown(g: &Group) -> Value {
    json!({
        "Path": g.path,
        "GroupName": g.group_name,
        "GroupId": g.group_id,
        "Arn": g.arn,
        "CreateDate": g.create_date,
    })
}

fn in_group(u: &User, group: &str) -> bool {
    u.groups.iter().any(|g| g.eq_ignore_ascii_case(group))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GroupRequest {
    group_name: String,
    path: Option<String>,
    new_group_name: Option<String>,
    new_path: Option<String>,
    user_name: Option<String>,
    marker: Option<String>,
    max_items: Option<i64>,
}

fn arn_of(ctx: &Ctx<'_>, path: &str, name: &str) -> String {
    format!(
        "arn:{}:iam::{}:group{path}{name}",
        crate::resource::partition(ctx.region),
        ctx.account
    )
}

pub async fn create_group(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: GroupRequest = input(raw)?;
    check_name("groupName", &req.group_name)?;
    let path = req.path.unwrap_or_else(|| "/".into());
    check_path(&path)?;
    let mut tx = ctx.store.write().await?;
    super::account::stamp(ctx, &mut tx).await?;
    if get::<Group>(ctx, &mut tx, GROUP, &req.group_name, true)
        .await?
        .is_some()
    {
        return Err(conflict(
            "EntityAlreadyExists",
            format!("Group with name {} already exists.", req.group_name),
        ));
    }
    let g = Group {
        arn: arn_of(ctx, &path, &req.group_name),
        path,
        group_id: unique_id("AGPA"),
        create_date: kumori_protocol::time::now_iso(),
        inline_policies: BTreeMap::new(),
        attached_policies: vec![],
        group_name: req.group_name,
    };
    tx.insert(scope(ctx), &record(GROUP, &g.group_name, &g)?)
        .await?;
    tx.commit().await?;
    Ok(json!({ "Group": group_shown(&g) }))
}

pub async fn get_group(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: GroupRequest = input(raw)?;
    let mut tx = ctx.store.read().await?;
    let g: Group = get(ctx, &mut tx, GROUP, &req.group_name, false)
        .await?
        .ok_or_else(|| no_such("group", &req.group_name))?;
    let users: Vec<User> = all(ctx, &mut tx, USER).await?;
    let items = users
        .iter()
        .filter(|u| in_group(u, &g.group_name))
        .map(|u| Ok((u.user_name.to_lowercase(), user_shown(u)?)))
        .collect::<Result<Vec<_>>>()?;
    let list = ListRequest {
        path_prefix: None,
        marker: req.marker,
        max_items: req.max_items,
    };
    let mut out = page(items, &list, "Users");
    out["Group"] = group_shown(&g);
    Ok(out)
}

pub async fn list_groups(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ListRequest = input(raw)?;
    let mut tx = ctx.store.read().await?;
    let groups: Vec<Group> = all(ctx, &mut tx, GROUP).await?;
    let prefix = req.path_prefix.clone().unwrap_or_else(|| "/".into());
    let items = groups
        .iter()
        .filter(|g| g.path.starts_with(&prefix))
        .map(|g| (g.group_name.to_lowercase(), group_shown(g)))
        .collect();
    Ok(page(items, &req, "Groups"))
}

pub async fn update_group(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: GroupRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let mut g: Group = get(ctx, &mut tx, GROUP, &req.group_name, true)
        .await?
        .ok_or_else(|| no_such("group", &req.group_name))?;
    let old = g.group_name.clone();
    if let Some(p) = &req.new_path {
        check_path(p)?;
        g.path = p.clone();
    }
    if let Some(n) = &req.new_group_name {
        check_name("newGroupName", n)?;
        if !n.eq_ignore_ascii_case(&old)
            && get::<Group>(ctx, &mut tx, GROUP, n, true).await?.is_some()
        {
            return Err(conflict(
                "EntityAlreadyExists",
                format!("Group with name {n} already exists."),
            ));
        }
        g.group_name = n.clone();
    }
    g.arn = arn_of(ctx, &g.path, &g.group_name);
    tx.delete(scope(ctx), &key(GROUP, &old)).await?;
    tx.insert(scope(ctx), &record(GROUP, &g.group_name, &g)?)
        .await?;
    // Members keep their membership under the new name.
    let users: Vec<User> = all(ctx, &mut tx, USER).await?;
    for mut u in users.into_iter().filter(|u| in_group(u, &old)) {
        for n in u.groups.iter_mut() {
            if n.eq_ignore_ascii_case(&old) {
                *n = g.group_name.clone();
            }
        }
        tx.save(ctx, USER, &u.user_name, &u, false).await?;
    }
    tx.commit().await?;
    Ok(json!({}))
}

pub async fn delete_group(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: GroupRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let g: Group = get(ctx, &mut tx, GROUP, &req.group_name, true)
        .await?
        .ok_or_else(|| no_such("group", &req.group_name))?;
    let users: Vec<User> = all(ctx, &mut tx, USER).await?;
    super::refuse_if_held(&[
        (
            users.iter().any(|u| in_group(u, &g.group_name)),
            "must remove users from group first",
        ),
        (!g.inline_policies.is_empty(), "must delete policies first"),
        (
            !g.attached_policies.is_empty(),
            "must detach all policies first",
        ),
    ])?;
    tx.delete(scope(ctx), &key(GROUP, &g.group_name)).await?;
    tx.commit().await?;
    Ok(json!({}))
}

/// The group and the user a membership change names, both locked.
async fn group_and_user(
    ctx: &Ctx<'_>,
    tx: &mut kumori_store::Tx,
    group: &str,
    user: &str,
) -> Result<(Group, User)> {
    let g: Group = get(ctx, tx, GROUP, group, true)
        .await?
        .ok_or_else(|| no_such("group", group))?;
    let u: User = get(ctx, tx, USER, user, true)
        .await?
        .ok_or_else(|| no_such("user", user))?;
    Ok((g, u))
}

pub async fn add_user_to_group(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: GroupRequest = input(raw)?;
    let name = req.user_name.unwrap_or_default();
    let mut tx = ctx.store.write().await?;
    // IAM looks for the user first: when neither exists, the user is the one it names.
    let mut u: User = get(ctx, &mut tx, USER, &name, true)
        .await?
        .ok_or_else(|| no_such("user", &name))?;
    let g: Group = get(ctx, &mut tx, GROUP, &req.group_name, true)
        .await?
        .ok_or_else(|| no_such("group", &req.group_name))?;
    // Adding a member twice is not an error in IAM.
    if !in_group(&u, &g.group_name) {
        u.groups.push(g.group_name.clone());
        tx.save(ctx, USER, &u.user_name, &u, false).await?;
    }
    tx.commit().await?;
    Ok(json!({}))
}

pub async fn remove_user_from_group(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: GroupRequest = input(raw)?;
    let name = req.user_name.unwrap_or_default();
    let mut tx = ctx.store.write().await?;
    let (g, mut u) = group_and_user(ctx, &mut tx, &req.group_name, &name).await?;
    if !in_group(&u, &g.group_name) {
        return Err(no_such("user", &name));
    }
    u.groups.retain(|n| !n.eq_ignore_ascii_case(&g.group_name));
    tx.save(ctx, USER, &u.user_name, &u, false).await?;
    tx.commit().await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ForUserRequest {
    user_name: String,
    marker: Option<String>,
    max_items: Option<i64>,
}

pub async fn list_groups_for_user(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ForUserRequest = input(raw)?;
    let name = req.user_name;
    let mut tx = ctx.store.read().await?;
    let u: User = get(ctx, &mut tx, USER, &name, false)
        .await?
        .ok_or_else(|| no_such("user", &name))?;
    let mut items = Vec::new();
    for n in &u.groups {
        if let Some(g) = get::<Group>(ctx, &mut tx, GROUP, n, false).await? {
            items.push((g.group_name.to_lowercase(), group_shown(&g)));
        }
    }
    let list = ListRequest {
        path_prefix: None,
        marker: req.marker,
        max_items: req.max_items,
    };
    Ok(page(items, &list, "Groups"))
}
