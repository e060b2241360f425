//! Typed resources over the store's documents.

use crate::{Ctx, Error, Result};
use kumori_protocol::AwsError;
use kumori_store::{Key, Record, Snapshot, Tx};
use rand::Rng;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A resource kept in the store as one JSON document.
pub trait Resource: Serialize + DeserializeOwned {
    /// The store's kind, which is also EC2's resource type for tags (`vpc`, `subnet`).
    const KIND: &'static str;
    fn id(&self) -> &str;
    /// The resource this one lives in (a subnet's VPC), which must outlive it.
    fn parent(&self) -> Option<&str> {
        None
    }
}

fn to_record<R: Resource>(r: &R) -> Result<Record> {
    Ok(Record {
        kind: R::KIND.to_string(),
        id: r.id().to_string(),
        parent: r.parent().map(str::to_string),
        body: serde_json::to_string(r).map_err(|e| Error(AwsError::internal(e.to_string())))?,
    })
}

fn from_record<R: Resource>(rec: &Record) -> Result<R> {
    serde_json::from_str(&rec.body).map_err(|e| {
        Error(AwsError::internal(format!(
            "stored {} {} is unreadable: {e}",
            rec.kind, rec.id
        )))
    })
}

pub async fn get<R: Resource>(ctx: &Ctx<'_>, tx: &mut Tx, id: &str) -> Result<Option<R>> {
    match tx.get(ctx.scope(), id).await? {
        Some(rec) if rec.kind == R::KIND => Ok(Some(from_record(&rec)?)),
        _ => Ok(None),
    }
}

/// Reads and locks `id` for the rest of the write transaction.
pub async fn lock<R: Resource>(ctx: &Ctx<'_>, tx: &mut Tx, id: &str) -> Result<Option<R>> {
    match tx.lock(ctx.scope(), id).await? {
        Some(rec) if rec.kind == R::KIND => Ok(Some(from_record(&rec)?)),
        _ => Ok(None),
    }
}

/// Decodes a JSON array of stored documents ([`Tx::list_json`]).
pub fn decode_all<R: Resource>(all: &str) -> Result<Vec<R>> {
    serde_json::from_str(all).map_err(|e| {
        Error(AwsError::internal(format!(
            "a stored {} is unreadable: {e}",
            R::KIND
        )))
    })
}

/// Every resource of `R`'s kind, ordered by id.
pub async fn list<R: Resource>(ctx: &Ctx<'_>, tx: &mut Tx) -> Result<Vec<R>> {
    decode_all(&tx.list_json(ctx.scope(), R::KIND).await?)
}

/// Every resource of a kind by id, as read transactions share it ([`Tx::snapshot`]): a
/// persistent map, so bringing it up to date after a write clones in O(1) and patches only
/// what changed.
#[derive(Clone)]
pub struct Docs<R: Clone>(pub imbl::OrdMap<String, R>);

impl<R: Resource + Clone + Send + Sync + 'static> Snapshot for Docs<R> {
    type Error = Error;
    fn load(all: &str) -> Result<Self> {
        let items: Vec<R> = decode_all(all)?;
        Ok(Docs(
            items.into_iter().map(|r| (r.id().to_string(), r)).collect(),
        ))
    }
    fn patch(&mut self, deleted: &[String], changed: &str) -> Result<()> {
        for id in deleted {
            self.0.remove(id);
        }
        for r in decode_all::<R>(changed)? {
            self.0.insert(r.id().to_string(), r);
        }
        Ok(())
    }
}

/// Every resource of `R`'s kind, by id, shared with other read transactions of this process
/// and refreshed from what changed ([`Tx::snapshot`]).
pub async fn snapshot<R: Resource + Clone + Send + Sync + 'static>(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
) -> Result<std::sync::Arc<Docs<R>>> {
    tx.snapshot(ctx.scope(), R::KIND).await
}

pub async fn children<R: Resource>(ctx: &Ctx<'_>, tx: &mut Tx, parent: &str) -> Result<Vec<R>> {
    decode_all(&tx.children_json(ctx.scope(), parent, R::KIND).await?)
}

/// The child of `parent` of `R`'s kind whose member `field` (`GroupName`) is `value`.
pub async fn child_where<R: Resource>(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    parent: &str,
    field: &str,
    value: impl Into<Key<'_>>,
) -> Result<Option<R>> {
    match tx
        .child_where(ctx.scope(), parent, R::KIND, field, value)
        .await?
    {
        Some(rec) => Ok(Some(from_record(&rec)?)),
        None => Ok(None),
    }
}

/// Every child of `parent` whose member `field` holds `value`, through an index (see
/// `Tx::child_where`).
pub async fn children_where<R: Resource>(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    parent: &str,
    field: &str,
    value: impl Into<Key<'_>>,
) -> Result<Vec<R>> {
    let recs = tx
        .children_where(ctx.scope(), parent, R::KIND, field, value)
        .await?;
    recs.iter().map(from_record).collect()
}

/// Every resource of its kind whose member `field` (`A.B` for a nested one) holds `value`,
/// across parents, through an index (see `Tx::find_where`).
pub async fn find_where<R: Resource>(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    field: &str,
    value: impl Into<Key<'_>>,
) -> Result<Vec<R>> {
    let recs = tx.find_where(ctx.scope(), R::KIND, field, value).await?;
    recs.iter().map(from_record).collect()
}

/// The child of `parent` with the greatest integer `field` at most `value`.
pub async fn child_at_most<R: Resource>(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    parent: &str,
    field: &str,
    value: i64,
) -> Result<Option<R>> {
    match tx
        .child_at_most(ctx.scope(), parent, R::KIND, field, value)
        .await?
    {
        Some(rec) => Ok(Some(from_record(&rec)?)),
        None => Ok(None),
    }
}

pub async fn insert<R: Resource>(ctx: &Ctx<'_>, tx: &mut Tx, r: &R) -> Result<()> {
    Ok(tx.insert(ctx.scope(), &to_record(r)?).await?)
}

pub async fn update<R: Resource>(ctx: &Ctx<'_>, tx: &mut Tx, r: &R) -> Result<()> {
    Ok(tx.update(ctx.scope(), &to_record(r)?).await?)
}

/// A new AWS-style id: the prefix, a dash and 17 lowercase hex digits (`vpc-0a1b…`).
pub fn new_id(prefix: &str) -> String {
    let n: u128 = rand::rng().random();
    format!("{prefix}-{:017x}", n & ((1u128 << 68) - 1))
}

/// The ARN partition a region belongs to.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// `arn:aws:ec2:us-east-1:000000000000:subnet/subnet-…`
pub fn arn(service: &str, region: &str, account: &str, resource: &str) -> String {
    format!(
        "arn:{}:{service}:{region}:{account}:{resource}",
        partition(region)
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_and_arns() {
        let id = super::new_id("vpc");
        assert_eq!(id.len(), 4 + 17);
        assert!(
            id[4..]
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_eq!(
            super::arn("ec2", "cn-north-1", "1", "vpc/v"),
            "arn:aws-cn:ec2:cn-north-1:1:vpc/v"
        );
    }
}
