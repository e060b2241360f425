//! Tags on any EC2 resource: CreateTags, DeleteTags, DescribeTags.

use super::common::{
    Filter, Filterable, MAX_TAGS, Tag, TagPattern, check_filters, dry_run, invalid_value, matches,
    page_output, paginate, put_tags, validate_tag,
};
use super::not_found_for;
use crate::{Ctx, Error, Result, input};
use kumori_store::TagRow;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateTagsRequest {
    resources: Vec<String>,
    tags: Vec<Tag>,
    dry_run: Option<bool>,
}

pub async fn create_tags(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: CreateTagsRequest = input(raw)?;
    for t in &req.tags {
        validate_tag(t)?;
    }
    let mut tx = ctx.store.write().await?;
    let mut targets = Vec::with_capacity(req.resources.len());
    for id in &req.resources {
        let rec = tx
            .get(ctx.scope(), id)
            .await?
            .ok_or_else(|| not_found_for(id))?;
        let existing = tx.tags_of(ctx.scope(), id).await?;
        let new_keys = req
            .tags
            .iter()
            .filter(|t| !existing.iter().any(|e| e.key == t.key))
            .count();
        if existing.len() + new_keys > MAX_TAGS {
            return Err(Error::new(
                "TagLimitExceeded",
                "The maximum number of Tags for a resource has been reached.",
            ));
        }
        targets.push(rec);
    }
    dry_run(req.dry_run)?;
    for rec in &targets {
        put_tags(ctx, &mut tx, &rec.id, &rec.kind, &req.tags).await?;
    }
    tx.commit().await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteTagsRequest {
    resources: Vec<String>,
    tags: Option<Vec<TagPattern>>,
    dry_run: Option<bool>,
}

pub async fn delete_tags(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DeleteTagsRequest = input(raw)?;
    let mut tx = ctx.store.write().await?;
    for id in &req.resources {
        tx.get(ctx.scope(), id)
            .await?
            .ok_or_else(|| not_found_for(id))?;
    }
    if let Some(tags) = &req.tags
        && tags
            .iter()
            .any(|t| t.key.to_ascii_lowercase().starts_with("aws:"))
    {
        return Err(invalid_value(
            "Tag keys starting with 'aws:' are reserved for internal use",
        ));
    }
    dry_run(req.dry_run)?;
    for id in &req.resources {
        match &req.tags {
            // No tags named: every tag of the resource goes.
            None => {
                for t in tx.tags_of(ctx.scope(), id).await? {
                    tx.delete_tag(ctx.scope(), id, &t.key, None).await?;
                }
            }
            Some(tags) => {
                for t in tags {
                    tx.delete_tag(ctx.scope(), id, &t.key, t.value.as_deref())
                        .await?;
                }
            }
        }
    }
    tx.commit().await?;
    Ok(json!({}))
}

impl Filterable for TagRow {
    const FILTERS: &'static [&'static str] = &["key", "resource-id", "resource-type", "value"];
    fn field(&self, name: &str) -> Vec<String> {
        match name {
            "key" => vec![self.key.clone()],
            "resource-id" => vec![self.resource_id.clone()],
            "resource-type" => vec![self.resource_type.clone()],
            "value" => vec![self.value.clone()],
            _ => vec![],
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeTagsRequest {
    #[serde(default)]
    filters: Vec<Filter>,
    max_results: Option<i64>,
    next_token: Option<String>,
    dry_run: Option<bool>,
}

/// Not `generic::describe`: its items are the tag rows of every kind of resource, not one stored
/// kind: no ids, `tag:` filters look at the row itself, and MaxResults is 5–1000.
pub async fn describe_tags(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DescribeTagsRequest = input(raw)?;
    check_filters::<TagRow>(&req.filters)?;
    if let Some(n) = req.max_results
        && !(5..=1000).contains(&n)
    {
        return Err(invalid_value(format!(
            "Value ( {n} ) for parameter maxResults is invalid. Expecting a value between 5 and 1000."
        )));
    }
    dry_run(req.dry_run)?;
    let mut tx = ctx.store.read().await?;
    let rows = tx.tags(ctx.scope(), None).await?;
    drop(tx);
    // `tag:Key` filters look at the tag row itself: its key must be Key and its value match.
    let selected: Vec<TagRow> = rows
        .into_iter()
        .filter(|r| {
            let own = [Tag {
                key: r.key.clone(),
                value: r.value.clone(),
            }];
            matches(r, &own, &req.filters)
        })
        .collect();
    let (page, next) = paginate(
        selected,
        |r| format!("{}\u{1}{}", r.resource_id, r.key),
        req.max_results,
        req.next_token.as_deref(),
    )?;
    let tags: Vec<Value> = page
        .iter()
        .map(|r| json!({ "Key": r.key, "ResourceId": r.resource_id, "ResourceType": r.resource_type, "Value": r.value }))
        .collect();
    Ok(page_output("Tags", tags, next))
}
