//! IAM instance profile associations: AssociateIamInstanceProfile,
//! DescribeIamInstanceProfileAssociations, ReplaceIamInstanceProfileAssociation,
//! DisassociateIamInstanceProfile. The association lives on the instance's record (its
//! `IamInstanceProfile` with an `iip-assoc-` id); an instance holds at most one.

use super::common::{Filter, Filterable, check_filters, matches, page_output, paginate};
use super::instances::{IamProfileIn, IamProfileRef, Instance, launch_profile};
use crate::resource;
use crate::{Ctx, Error, Result, input};
use serde::Deserialize;
use serde_json::{Value, json};

fn shown(i: &Instance, p: &IamProfileRef, state: &str) -> Value {
    json!({
        "AssociationId": p.association_id,
        "InstanceId": i.instance_id,
        "IamInstanceProfile": { "Arn": p.arn, "Id": p.id },
        "State": state,
        "Timestamp": p.associated_at,
    })
}

fn association_not_found(id: &str) -> Error {
    Error::new(
        "InvalidAssociationID.NotFound",
        format!("An association with the ID {id} does not exist."),
    )
}

fn instance_not_found(id: &str) -> Error {
    Error::new(
        "InvalidInstanceID.NotFound",
        format!("The instance ID '{id}' does not exist"),
    )
}

/// The resolved profile a request names, or the error for naming none that exists.
async fn profile(ctx: &Ctx<'_>, given: &IamProfileIn) -> Result<IamProfileRef> {
    launch_profile(ctx, Some(given)).await?.ok_or_else(|| {
        Error::new(
            "MissingParameter",
            "The request must contain the parameter IamInstanceProfile.Arn or .Name",
        )
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AssociateRequest {
    iam_instance_profile: IamProfileIn,
    instance_id: String,
}

pub async fn associate_iam_instance_profile(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: AssociateRequest = input(raw)?;
    let p = profile(ctx, &req.iam_instance_profile).await?;
    let mut tx = ctx.store.write().await?;
    let mut i: Instance = resource::lock(ctx, &mut tx, &req.instance_id)
        .await?
        .filter(|i: &Instance| i.state != "terminated")
        .ok_or_else(|| instance_not_found(&req.instance_id))?;
    if i.iam_instance_profile.is_some() {
        return Err(Error::new(
            "IncorrectState",
            format!(
                "There is an existing association for instance {}",
                i.instance_id
            ),
        ));
    }
    i.iam_instance_profile = Some(p.clone());
    resource::update(ctx, &mut tx, &i).await?;
    tx.commit().await?;
    Ok(json!({ "IamInstanceProfileAssociation": shown(&i, &p, "associating") }))
}

/// The instance holding association `id`, locked.
async fn holder(ctx: &Ctx<'_>, tx: &mut kumori_store::Tx, id: &str) -> Result<Instance> {
    let found = resource::list::<Instance>(ctx, tx)
        .await?
        .into_iter()
        .find(|i| {
            i.iam_instance_profile
                .as_ref()
                .is_some_and(|p| p.association_id == id)
        })
        .ok_or_else(|| association_not_found(id))?;
    resource::lock::<Instance>(ctx, tx, &found.instance_id)
        .await?
        .ok_or_else(|| association_not_found(id))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ReplaceRequest {
    iam_instance_profile: IamProfileIn,
    association_id: String,
}

pub async fn replace_iam_instance_profile_association(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: ReplaceRequest = input(raw)?;
    let p = profile(ctx, &req.iam_instance_profile).await?;
    let mut tx = ctx.store.write().await?;
    let mut i = holder(ctx, &mut tx, &req.association_id).await?;
    i.iam_instance_profile = Some(p.clone());
    resource::update(ctx, &mut tx, &i).await?;
    tx.commit().await?;
    Ok(json!({ "IamInstanceProfileAssociation": shown(&i, &p, "associating") }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DisassociateRequest {
    association_id: String,
}

pub async fn disassociate_iam_instance_profile(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DisassociateRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    let mut i = holder(ctx, &mut tx, &req.association_id).await?;
    let p = i
        .iam_instance_profile
        .take()
        .ok_or_else(|| association_not_found(&req.association_id))?;
    resource::update(ctx, &mut tx, &i).await?;
    tx.commit().await?;
    Ok(json!({ "IamInstanceProfileAssociation": shown(&i, &p, "disassociating") }))
}

struct AssociationRow<'a>(&'a Instance);

impl Filterable for AssociationRow<'_> {
    const FILTERS: &'static [&'static str] = &["instance-id", "state"];
    fn field(&self, name: &str) -> Vec<String> {
        match name {
            "instance-id" => vec![self.0.instance_id.clone()],
            "state" => vec!["associated".into()],
            _ => vec![],
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeRequest {
    #[serde(default)]
    association_ids: Vec<String>,
    #[serde(default)]
    filters: Vec<Filter>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

/// Not `generic::describe`: an association is not a stored kind but the profile inside a live
/// instance's record; its ids are not checked for form, and it has no tags and no DryRun.
pub async fn describe_iam_instance_profile_associations(
    ctx: &Ctx<'_>,
    raw: &Value,
) -> Result<Value> {
    let req: DescribeRequest = input(raw)?;
    check_filters::<AssociationRow>(&req.filters)?;
    let mut tx = ctx.store.read().await?;
    let all: Vec<Instance> = resource::list(ctx, &mut tx).await?;
    drop(tx);
    let held: Vec<(&Instance, &IamProfileRef)> = all
        .iter()
        .filter(|i| i.state != "terminated")
        .filter_map(|i| Some((i, i.iam_instance_profile.as_ref()?)))
        .collect();
    if let Some(id) = req
        .association_ids
        .iter()
        .find(|id| !held.iter().any(|(_, p)| &p.association_id == *id))
    {
        return Err(association_not_found(id));
    }
    let selected: Vec<&(&Instance, &IamProfileRef)> = held
        .iter()
        .filter(|(_, p)| {
            req.association_ids.is_empty() || req.association_ids.contains(&p.association_id)
        })
        .filter(|(i, _)| matches(&AssociationRow(i), &[], &req.filters))
        .collect();
    let (page, next) = paginate(
        selected,
        |(_, p)| p.association_id.clone(),
        req.max_results,
        req.next_token.as_deref(),
    )?;
    let shown = page
        .iter()
        .map(|(i, p)| shown(i, p, "associated"))
        .collect();
    Ok(page_output("IamInstanceProfileAssociations", shown, next))
}
