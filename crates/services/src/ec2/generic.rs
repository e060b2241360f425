//! Describe as every EC2 resource does it, so each resource states only what is
//! its own: its id prefix, filters, how it is shown and its not-found error.

use super::common::{
    Filter, Filterable, Tag, check_filters, dry_run, matches, page_output, paginate,
    tags_by_resource,
};
use crate::resource::{self, Resource};
use crate::{Ctx, Error, Result, input, output};
use serde::Deserialize;
use serde_json::Value;

pub trait Ec2Resource: Resource + Filterable {
    /// `vpc`, `subnet`: ids look like `vpc-0123…`; also the noun in EC2's messages.
    const ID_PREFIX: &'static str;
    /// EC2's code prefix for this resource's id errors: `InvalidVpcID`, `InvalidSubnetID`.
    const ID_ERROR: &'static str;
    /// The resource as EC2 shows it, with its tags (omitted when there are none, as AWS does).
    fn shown(&self, tags: &[Tag]) -> Result<Value> {
        let mut v = output(self)?;
        if !tags.is_empty() {
            v["Tags"] = output(&tags)?;
        }
        Ok(v)
    }
    fn not_found(id: &str) -> Error;
    /// The code for an id of the wrong shape: `<ID_ERROR>.Malformed`, unless EC2 spells it
    /// otherwise for this resource.
    fn malformed_code() -> String {
        format!("{}.Malformed", Self::ID_ERROR)
    }
    /// Deleted long enough ago that EC2 no longer lists it (a deleted NAT gateway lingers
    /// for about an hour); such a resource is neither listed nor found.
    fn gone(&self, _now: time::OffsetDateTime) -> bool {
        false
    }
    /// Resources of this kind that AWS owns and every account sees, not stored (the
    /// AWS-managed prefix lists of the region).
    fn builtin(_region: &str) -> Vec<Self> {
        Vec::new()
    }
}

/// Refuses an id that cannot be of this resource (`InvalidVpcID.Malformed`).
pub fn check_id<R: Ec2Resource>(id: &str) -> Result<()> {
    let prefix = R::ID_PREFIX;
    if !id
        .strip_prefix(prefix)
        .is_some_and(|rest| rest.starts_with('-'))
    {
        return Err(Error::new(
            R::malformed_code(),
            format!("Invalid id: \"{id}\" (expecting \"{prefix}-...\")"),
        ));
    }
    Ok(())
}

/// What every EC2 Describe call takes.
pub struct DescribeArgs<'a> {
    pub ids: &'a [String],
    pub filters: &'a [Filter],
    pub max_results: Option<i64>,
    pub next_token: Option<&'a str>,
    pub dry_run: Option<bool>,
}

/// One page of the resources that match: the explicit ids (all of which must exist), then the
/// filters; with the token of the next page.
pub async fn describe<R: Ec2Resource>(
    ctx: &Ctx<'_>,
    args: DescribeArgs<'_>,
) -> Result<(Vec<Value>, Option<String>)> {
    check_filters::<R>(args.filters)?;
    for id in args.ids {
        check_id::<R>(id)?;
    }
    let mut tx = ctx.store.read().await?;
    let now = time::OffsetDateTime::now_utc();
    let all: Vec<R> = R::builtin(ctx.region)
        .into_iter()
        .chain(resource::list::<R>(ctx, &mut tx).await?)
        .filter(|r| !r.gone(now))
        .collect();
    let tags = tags_by_resource(ctx, &mut tx, R::KIND).await?;
    drop(tx);
    if let Some(missing) = args
        .ids
        .iter()
        .find(|id| !all.iter().any(|r| r.id() == id.as_str()))
    {
        return Err(R::not_found(missing));
    }
    dry_run(args.dry_run)?;
    let none = Vec::new();
    let tags_of = |r: &R| tags.get(r.id()).unwrap_or(&none);
    let heavy = !args.filters.is_empty() && all.len() > 256;
    let selected: Vec<&R> = crate::cpu_bound(heavy, || {
        all.iter()
            .filter(|r| args.ids.is_empty() || args.ids.iter().any(|id| id == r.id()))
            .filter(|r| matches(*r, tags_of(r), args.filters))
            .collect()
    });
    let (page, next) = paginate(
        selected,
        |r| r.id().to_string(),
        args.max_results,
        args.next_token,
    )?;
    let shown = page
        .iter()
        .map(|r| r.shown(tags_of(r)))
        .collect::<Result<Vec<_>>>()?;
    Ok((shown, next))
}

/// The members every EC2 Describe request shares besides its list of ids.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeRequest {
    #[serde(default)]
    filters: Vec<Filter>,
    max_results: Option<i64>,
    next_token: Option<String>,
    dry_run: Option<bool>,
}

/// A whole Describe operation: reads the ids from input member `ids_member` (`VpcIds`) and
/// answers the page under `list_member` (`Vpcs`) with its `NextToken`.
pub async fn describe_call<R: Ec2Resource>(
    ctx: &Ctx<'_>,
    raw: &Value,
    ids_member: &str,
    list_member: &str,
) -> Result<Value> {
    let req: DescribeRequest = input(raw)?;
    let ids: Vec<String> = match raw.get(ids_member) {
        Some(v) => input(v)?,
        None => Vec::new(),
    };
    let args = DescribeArgs {
        ids: &ids,
        filters: &req.filters,
        max_results: req.max_results,
        next_token: req.next_token.as_deref(),
        dry_run: req.dry_run,
    };
    let (items, next) = describe::<R>(ctx, args).await?;
    Ok(page_output(list_member, items, next))
}
