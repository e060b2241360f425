//! RDS events: what happened to an instance or snapshot, kept 14 days as RDS keeps them, and
//! `DescribeEvents` over them (the last hour unless asked otherwise).

use super::{invalid, known_filters};
use crate::resource::{self, Resource};
use crate::{Ctx, Result, input};
use kumori_store::Tx;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub const OPERATIONS: &[crate::kit::Op] = crate::operations![
    "DescribeEvents" => describe_events,
    "DescribeEventCategories" => describe_event_categories,
];

pub const KIND: &str = "rds-event";
const KEEP_SECONDS: u64 = 14 * 24 * 3600;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Event {
    pub source_identifier: String,
    pub source_type: String,
    pub message: String,
    pub event_categories: Vec<String>,
    pub date: String,
    pub source_arn: String,
    pub kumori_at: u64,
    pub kumori_key: String,
}

impl Resource for Event {
    const KIND: &'static str = KIND;
    fn id(&self) -> &str {
        &self.kumori_key
    }
}

/// Records an event now, in the caller's transaction.
pub async fn record(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    source_type: &str,
    identifier: &str,
    arn: &str,
    category: &str,
    message: impl Into<String>,
) -> Result<()> {
    use rand::Rng;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let e = Event {
        source_identifier: identifier.into(),
        source_type: source_type.into(),
        message: message.into(),
        event_categories: vec![category.into()],
        date: kumori_protocol::time::now_iso(),
        source_arn: arn.into(),
        kumori_at: (nanos / 1_000_000_000) as u64,
        // Sortable by time; the random tail keeps two events of one instant apart.
        kumori_key: format!("rds-event/{nanos:024}-{:08x}", rand::rng().random::<u32>()),
    };
    resource::insert(ctx, tx, &e).await
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeRequest {
    source_identifier: Option<String>,
    source_type: Option<String>,
    start_time: Option<String>,
    end_time: Option<String>,
    duration: Option<i64>,
    #[serde(default)]
    event_categories: Vec<String>,
    #[serde(default)]
    filters: Vec<super::Filter>,
    max_records: Option<i64>,
    marker: Option<String>,
}

pub async fn describe_events(ctx: &Ctx<'_>, raw: &Value) -> Result<Value> {
    let req: DescribeRequest = input(raw)?;
    known_filters(&req.filters, &[])?;
    if req.source_identifier.is_some() && req.source_type.is_none() {
        return Err(invalid(
            "Cannot specify source identifier without source type",
        ));
    }
    let now = kumori_protocol::time::now_unix();
    let end = req
        .end_time
        .as_deref()
        .and_then(kumori_protocol::time::unix_of_iso)
        .unwrap_or(now);
    let start = match (&req.start_time, req.duration) {
        (Some(s), _) => kumori_protocol::time::unix_of_iso(s).unwrap_or(0),
        (None, Some(minutes)) => end.saturating_sub(minutes.max(0) as u64 * 60),
        (None, None) => end.saturating_sub(3600),
    };
    let mut tx = ctx.store.read().await?;
    let all: Vec<Event> = resource::list(ctx, &mut tx).await?;
    let items: Vec<(String, Value)> = all
        .into_iter()
        .filter(|e| e.kumori_at >= start && e.kumori_at <= end)
        .filter(|e| {
            req.source_type
                .as_deref()
                .is_none_or(|t| t == e.source_type)
        })
        .filter(|e| {
            req.source_identifier
                .as_deref()
                .is_none_or(|i| i.eq_ignore_ascii_case(&e.source_identifier))
        })
        .filter(|e| {
            req.event_categories.is_empty()
                || e.event_categories
                    .iter()
                    .any(|c| req.event_categories.contains(c))
        })
        .map(|e| {
            (
                e.kumori_key.clone(),
                json!({
                    "SourceIdentifier": e.source_identifier,
                    "SourceType": e.source_type,
                    "Message": e.message,
                    "EventCategories": e.event_categories,
                    "Date": e.date,
                    "SourceArn": e.source_arn,
                }),
            )
        })
        .collect();
    super::page(items, "Events", req.marker.as_deref(), req.max_records)
}

/// Removes events older than RDS keeps (called by the reconciler, not per request).
pub async fn prune(ctx: &Ctx<'_>, tx: &mut Tx) -> Result<usize> {
    let cutoff = kumori_protocol::time::now_unix().saturating_sub(KEEP_SECONDS);
    let all: Vec<Event> = resource::list(ctx, tx).await?;
    let mut n = 0;
    for e in all.iter().take_while(|e| e.kumori_at < cutoff) {
        tx.delete(ctx.scope(), &e.kumori_key).await?;
        n += 1;
    }
    Ok(n)
}

pub async fn describe_event_categories(_ctx: &Ctx<'_>, _raw: &Value) -> Result<Value> {
    let map = |t: &str, cats: &[&str]| json!({ "SourceType": t, "EventCategories": cats });
    Ok(json!({ "EventCategoriesMapList": [
        map("db-instance", &["availability", "backup", "configuration change", "creation", "deletion", "failover", "failure", "low storage", "maintenance", "notification", "read replica", "recovery", "restoration"]),
        map("db-snapshot", &["creation", "deletion", "notification", "restoration"]),
        map("db-parameter-group", &["configuration change"]),
    ]}))
}
