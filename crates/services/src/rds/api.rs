//! What the server's database reconciler reads and writes: every instance's desired server
//! (`desired`), the snapshots waiting to be copied, and the transitions a server's progress
//! makes in what RDS shows (`observe`, `snapshot_done`, `finish_deletes`). Each write is
//! one transaction that re-reads what it changes, so a request racing it wins or loses whole.

use super::engines::{self, Serves};
use super::events;
use super::instances::{self, DbInstance, Origin};
use super::snapshots::{self, DbSnapshot};
use crate::resource;
use crate::{Ctx, Limits, Result};
use kumori_store::{Store, Tx};
use serde_json::{Value, json};

/// One instance as its server should be.
#[derive(Debug, Clone)]
pub struct Wanted {
    pub account: String,
    pub region: String,
    pub instance: DbInstance,
    pub serves: Serves,
    /// Whether a standby should stream beside it (Multi-AZ).
    pub standby: bool,
    /// For a restore: the snapshot directory it starts from; for a replica: its source's
    /// resource id.
    pub origin: Origin,
}

/// A snapshot whose copy is still to be taken.
#[derive(Debug, Clone)]
pub struct Copy {
    pub account: String,
    pub region: String,
    pub snapshot: String,
    /// The instance (`DbiResourceId`) it copies.
    pub dbi: String,
    pub dir: String,
}

#[derive(Debug, Clone, Default)]
pub struct Desired {
    pub instances: Vec<Wanted>,
    pub copies: Vec<Copy>,
    /// Every snapshot's directory that must be kept.
    pub snapshot_dirs: Vec<String>,
}

/// What the store says every server should be, across accounts and regions.
pub async fn desired(store: &Store, limits: &Limits) -> Result<Desired> {
    let mut tx = store.read().await?;
    let mut scopes = tx.scopes_with(instances::KIND).await?;
    scopes.extend(tx.scopes_with(snapshots::KIND).await?);
    scopes.sort();
    scopes.dedup();
    let mut out = Desired::default();
    for (account, region) in scopes {
        let ctx = Ctx::root(store, &account, &region, limits);
        let all: Vec<DbInstance> = resource::list(&ctx, &mut tx).await?;
        for i in all {
            let Some(e) = engines::engine(&i.engine) else {
                continue;
            };
            out.instances.push(Wanted {
                account: account.clone(),
                region: region.clone(),
                serves: e.serves,
                standby: i.multi_az && i.read_replica_source.is_none(),
                origin: i.kumori_origin.clone(),
                instance: i,
            });
        }
        let snaps: Vec<DbSnapshot> = resource::list(&ctx, &mut tx).await?;
        for s in snaps {
            out.snapshot_dirs.push(s.kumori_dir.clone());
            if s.status == "creating" {
                out.copies.push(Copy {
                    account: account.clone(),
                    region: region.clone(),
                    snapshot: s.db_snapshot_identifier,
                    dbi: s.dbi_resource_id,
                    dir: s.kumori_dir,
                });
            }
        }
    }
    Ok(out)
}

/// What a server is doing, as the engine reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    Creating,
    Running,
    Stopped,
    Failed(String),
}

#[derive(Debug, Clone)]
pub struct Observed {
    pub state: Seen,
    pub port: Option<u16>,
    /// Whether the engine has carried out the spec made from the record as it is now.
    pub converged: bool,
    pub standby: bool,
    pub promoted: bool,
}

/// What a server's progress does to its record.
struct Step {
    record: DbInstance,
    /// Events to record: category and message.
    events: Vec<(&'static str, String)>,
    /// Whether the first automated snapshot is to begin.
    backup: bool,
}

/// The record after what the server did; `None` when nothing moves.
fn step(i: &DbInstance, o: &Observed, copying: bool) -> Option<Step> {
    let mut n = i.clone();
    let mut events = Vec::new();
    let mut backup = false;
    if let Some(p) = o.port
        && o.state == Seen::Running
        && n.kumori_port != Some(p)
    {
        n.kumori_port = Some(p);
    }
    match (&o.state, i.status.as_str()) {
        (Seen::Running, "creating") if o.converged => {
            n.instance_create_time = Some(kumori_protocol::time::now_iso());
            if n.backup_retention_period > 0 && n.read_replica_source.is_none() {
                n.status = "backing-up".into();
                backup = true;
            } else {
                n.status = "available".into();
            }
        }
        (Seen::Running, "backing-up") if !copying => n.status = "available".into(),
        // A server that failed to come up and then did (the engine tries again).
        (Seen::Running, "failed") if o.converged => {
            n.status = "available".into();
            events.push(("recovery", "DB instance recovered".to_string()));
        }
        (Seen::Stopped, "stopping") if o.converged => {
            n.status = "stopped".into();
            events.push(("notification", "DB instance stopped".to_string()));
        }
        (Seen::Running, "starting") if o.converged => {
            n.status = "available".into();
            events.push(("notification", "DB instance started".to_string()));
        }
        (Seen::Running, "rebooting") if o.converged => {
            n.status = "available".into();
            if i.multi_az {
                events.push((
                    "failover",
                    "Multi-AZ instance failover completed".to_string(),
                ));
            }
        }
        (Seen::Running, "modifying" | "resetting-master-credentials")
            if o.converged && o.standby == (i.multi_az && i.read_replica_source.is_none()) =>
        {
            n.status = "available".into();
            if i.kumori_promote && o.promoted {
                events.push((
                    "read replica",
                    "Completed promotion of the read replica".to_string(),
                ));
            }
        }
        (Seen::Failed(why), status) if status != "failed" && status != "deleting" => {
            if n.kumori_error.as_deref() != Some(why.as_str()) {
                n.kumori_error = Some(why.clone());
                events.push(("failure", format!("The database server failed: {why}")));
            }
            if status == "creating" {
                n.status = "failed".into();
            }
        }
        _ => {}
    }
    if o.state == Seen::Running && n.kumori_error.is_some() && n.status != "failed" {
        n.kumori_error = None;
    }
    let moved = serde_json::to_string(&n).ok() != serde_json::to_string(i).ok();
    moved.then_some(Step {
        record: n,
        events,
        backup,
    })
}

/// Writes what the servers did: each instance whose record moves, in a transaction of its
/// own that re-reads it.
pub async fn observe(
    store: &Store,
    limits: &Limits,
    seen: &[(Wanted, Observed)],
    copying: &[(String, String, String)],
) -> Result<()> {
    for (w, o) in seen {
        let busy = |i: &DbInstance| {
            copying.iter().any(|(a, r, id)| {
                *a == w.account && *r == w.region && *id == i.db_instance_identifier
            })
        };
        if step(&w.instance, o, busy(&w.instance)).is_none() {
            continue;
        }
        let ctx = Ctx::root(store, &w.account, &w.region, limits);
        let mut tx = store.write().await?;
        let Some(cur) =
            instances::get(&ctx, &mut tx, &w.instance.db_instance_identifier, true).await?
        else {
            continue;
        };
        // Only what the engine saw of this very record counts.
        if serde_json::to_string(&cur).ok() != serde_json::to_string(&w.instance).ok() {
            continue;
        }
        let Some(Step {
            record: n,
            events: evs,
            backup,
        }) = step(&cur, o, busy(&cur))
        else {
            continue;
        };
        if backup {
            let name = format!("rds:{}-{}", n.db_instance_identifier, time_name());
            if snapshots::get(&ctx, &mut tx, &name, false).await?.is_none() {
                snapshots::begin(&ctx, &mut tx, &n, &name, "automated").await?;
            }
        }
        instances::save(&ctx, &mut tx, &n).await?;
        for (category, message) in evs {
            events::record(
                &ctx,
                &mut tx,
                "db-instance",
                &n.db_instance_identifier,
                &n.arn,
                category,
                message,
            )
            .await?;
        }
        if n.status == "available" && matches!(cur.status.as_str(), "creating" | "backing-up") {
            events::record(
                &ctx,
                &mut tx,
                "db-instance",
                &n.db_instance_identifier,
                &n.arn,
                "availability",
                "DB instance is available",
            )
            .await?;
        }
        tx.commit().await?;
    }
    Ok(())
}

/// `2026-12-08-01-20`: how RDS names automated snapshots.
fn time_name() -> String {
    let iso = kumori_protocol::time::now_iso();
    iso.get(..16).unwrap_or(&iso).replace(['T', ':'], "-")
}

/// Records an event about an instance (a server that died and was restarted).
pub async fn instance_event(
    store: &Store,
    limits: &Limits,
    account: &str,
    region: &str,
    identifier: &str,
    category: &str,
    message: &str,
) -> Result<()> {
    let ctx = Ctx::root(store, account, region, limits);
    let mut tx = store.write().await?;
    let arn = super::arn(&ctx, "db", identifier);
    events::record(
        &ctx,
        &mut tx,
        "db-instance",
        identifier,
        &arn,
        category,
        message,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A snapshot's copy is taken (or failed).
pub async fn snapshot_done(
    store: &Store,
    limits: &Limits,
    c: &Copy,
    result: std::result::Result<(), String>,
) -> Result<()> {
    let ctx = Ctx::root(store, &c.account, &c.region, limits);
    let mut tx = store.write().await?;
    let Some(mut s) = snapshots::get(&ctx, &mut tx, &c.snapshot, true).await? else {
        return Ok(());
    };
    if s.status != "creating" {
        return Ok(());
    }
    let message = match &result {
        Ok(()) => {
            s.status = "available".into();
            s.snapshot_create_time = Some(kumori_protocol::time::now_iso());
            if s.snapshot_type == "automated" {
                "Automated snapshot created"
            } else {
                "Manual snapshot created"
            }
            .to_string()
        }
        Err(e) => {
            s.status = "failed".into();
            format!("Snapshot failed: {e}")
        }
    };
    snapshots::save(&ctx, &mut tx, &s).await?;
    events::record(
        &ctx,
        &mut tx,
        "db-snapshot",
        &s.db_snapshot_identifier,
        &s.arn,
        "creation",
        message,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Removes the instances being deleted whose server has stopped (their spec says stop)
/// and whose final snapshot (if any) is taken; the reconciler then removes their data.
pub async fn finish_deletes(
    store: &Store,
    limits: &Limits,
    seen: &[(Wanted, Observed)],
) -> Result<()> {
    let done = seen
        .iter()
        .filter(|(w, o)| w.instance.status == "deleting" && o.state != Seen::Running)
        .map(|(w, _)| w);
    for w in done {
        let ctx = Ctx::root(store, &w.account, &w.region, limits);
        let mut tx = store.write().await?;
        let Some(mut i) =
            instances::get(&ctx, &mut tx, &w.instance.db_instance_identifier, true).await?
        else {
            continue;
        };
        if i.status != "deleting" {
            continue;
        }
        if let Some(f) = &i.kumori_final_snapshot
            && snapshots::get(&ctx, &mut tx, f, false)
                .await?
                .is_some_and(|s| s.status == "creating")
        {
            continue;
        }
        instances::detach_interface(&ctx, &mut tx, &mut i).await?;
        if let Some(arn) = i
            .master_user_secret
            .as_ref()
            .and_then(|s| s["SecretArn"].as_str())
        {
            forget_secret(&ctx, &mut tx, arn).await?;
        }
        tx.delete(ctx.scope(), &i.kumori_key).await?;
        tx.set_tags(ctx.scope(), &i.arn, instances::KIND, &[])
            .await?;
        tx.commit().await?;
    }
    Ok(())
}

/// Old events go (RDS keeps 14 days); called now and then by the reconciler.
pub async fn prune_events(store: &Store, limits: &Limits) -> Result<()> {
    let mut tx = store.write().await?;
    for (account, region) in tx.scopes_with(events::KIND).await? {
        let ctx = Ctx::root(store, &account, &region, limits);
        events::prune(&ctx, &mut tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A master password as RDS generates one for a managed secret: 28 printable characters
/// RDS allows in passwords.
pub fn generated_password() -> String {
    use rand::Rng;
    const CHARS: &[u8] =
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&()*+,-.:;<=>?[]^_{|}~";
    let mut r = rand::rng();
    (0..28)
        .map(|_| CHARS[r.random_range(0..CHARS.len())] as char)
        .collect()
}

/// The master user's secret in Secrets Manager, made in `tx`: `MasterUserSecret` as RDS
/// shows it. The secret holds `{"username", "password"}`, as RDS's do.
pub async fn managed_secret(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    i: &DbInstance,
    password: &str,
    kms: Option<&str>,
) -> Result<Value> {
    let name = format!("rds!db-{}", uuid::Uuid::new_v4());
    let kms = kms.map(str::to_string).unwrap_or_else(|| {
        format!(
            "arn:aws:kms:{}:{}:key/aws-secretsmanager-default",
            ctx.region, ctx.account
        )
    });
    let arn = crate::secretsmanager::api::create_managed(
        ctx,
        tx,
        &name,
        &secret_json(i, password).to_string(),
        Some(&kms),
        "rds",
    )
    .await?;
    Ok(json!({ "SecretArn": arn, "SecretStatus": "active", "KmsKeyId": kms }))
}

/// A new master password put in the instance's managed secret (RotateMasterUserPassword).
pub async fn rotate_secret(
    ctx: &Ctx<'_>,
    tx: &mut Tx,
    i: &DbInstance,
    password: &str,
) -> Result<()> {
    let Some(arn) = i
        .master_user_secret
        .as_ref()
        .and_then(|s| s["SecretArn"].as_str())
    else {
        return Ok(());
    };
    crate::secretsmanager::api::put_managed(ctx, tx, arn, &secret_json(i, password).to_string())
        .await
}

/// Deletes an instance's managed secret (its instance deleted, or management turned off).
pub async fn forget_secret(ctx: &Ctx<'_>, tx: &mut Tx, arn: &str) -> Result<()> {
    crate::secretsmanager::api::delete_managed(ctx, tx, arn).await
}

fn secret_json(i: &DbInstance, password: &str) -> Value {
    json!({ "username": i.master_username, "password": password })
}
