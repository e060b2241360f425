//! The PostgreSQL backend: the same [`crate::Tx`] calls on a database several kumori nodes
//! share.
//!
//! - Write transactions serialize across every node on one transaction-level advisory lock
//!   (`pg_advisory_xact_lock`), taken at `BEGIN` and freed by `COMMIT` or `ROLLBACK` — the
//!   same one-writer-at-a-time rule as SQLite's `BEGIN IMMEDIATE`, held by the database, so
//!   a node that dies mid-write frees it with its connection. It is what keeps every check
//!   inside a write (overlapping CIDRs, free addresses, quotas, client tokens, names) exact
//!   across nodes, and it is also what the snapshot numbering needs: a row's `rev` is its
//!   kind's generation plus one, read inside the writing statement, which holds only while no
//!   other writer of that kind can commit in between. Per-row locks alone would not give that.
//! - Read transactions are `REPEATABLE READ READ ONLY`: one snapshot of the database, taken at
//!   the first statement, so a describe that starts after another node's acknowledged write
//!   sees it, and the generation a snapshot cache is keyed by belongs to the same view.
//! - Documents are stored as text, exactly as written; lookups by member go through
//!   expression indexes over `body::jsonb #>> '{path}'`, made by write transactions as in
//!   SQLite. Ids and keys are `COLLATE "C"` so that listing order is byte order on both
//!   backends.
//! - A connection the database cannot give or that breaks is [`StoreError::Unavailable`]:
//!   services answer `ServiceUnavailable` (HTTP 503) and the pool reconnects by itself once
//!   the database is back.

use crate::{Key, Record, Result, Scope, StoreError, TOMBSTONE_GENERATIONS, TagRow};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_postgres::types::ToSql;

/// Schema migrations, applied in order; `kumori_migrations` records how many ran.
const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE resources (
        account TEXT COLLATE \"C\" NOT NULL,
        region  TEXT COLLATE \"C\" NOT NULL,
        id      TEXT COLLATE \"C\" NOT NULL,
        kind    TEXT COLLATE \"C\" NOT NULL,
        parent  TEXT COLLATE \"C\",
        body    TEXT NOT NULL,
        rev     BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (account, region, id)
    );
    CREATE INDEX resources_by_kind ON resources (account, region, kind, id);
    CREATE INDEX resources_by_parent ON resources (account, region, parent, kind, id);
    CREATE INDEX resources_by_rev ON resources (account, region, kind, rev);
    CREATE TABLE tags (
        account       TEXT COLLATE \"C\" NOT NULL,
        region        TEXT COLLATE \"C\" NOT NULL,
        resource_id   TEXT COLLATE \"C\" NOT NULL,
        resource_type TEXT COLLATE \"C\" NOT NULL,
        key           TEXT COLLATE \"C\" NOT NULL,
        value         TEXT NOT NULL,
        PRIMARY KEY (account, region, resource_id, key)
    );
    CREATE INDEX tags_by_type ON tags (account, region, resource_type);
    CREATE TABLE generations (
        account TEXT COLLATE \"C\" NOT NULL,
        region  TEXT COLLATE \"C\" NOT NULL,
        kind    TEXT COLLATE \"C\" NOT NULL,
        n       BIGINT NOT NULL,
        floor   BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (account, region, kind)
    );
    CREATE TABLE tombstones (
        account TEXT COLLATE \"C\" NOT NULL,
        region  TEXT COLLATE \"C\" NOT NULL,
        kind    TEXT COLLATE \"C\" NOT NULL,
        id      TEXT COLLATE \"C\" NOT NULL,
        rev     BIGINT NOT NULL,
        PRIMARY KEY (account, region, kind, id)
    );
",
    "
    CREATE TABLE leases (
        name    TEXT COLLATE \"C\" PRIMARY KEY,
        holder  TEXT NOT NULL,
        expires BIGINT NOT NULL
    );
",
    "
    ALTER TABLE tags ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
",
];

/// How long a call waits for a connection, for a new one, and for a statement or lock.
const WAIT: Duration = Duration::from_secs(5);
const CONNECT: Duration = Duration::from_secs(3);
const STATEMENT_TIMEOUT: &str = "15s";

/// Connections kept per node.
const POOL_SIZE: usize = 16;

/// The database, its pool, and which member indexes are known to exist.
pub(crate) struct Pg {
    pool: Pool,
    /// The advisory-lock key of this deployment (its schema's), so that deployments in other
    /// schemas of one database do not wait for each other.
    lock_key: i64,
    indexes: Arc<Mutex<HashSet<String>>>,
    growth: Arc<Growth>,
    pub(crate) label: String,
}

/// Rows this process added since the tables were last analyzed, and when to analyze next.
///
/// PostgreSQL plans from statistics that autovacuum refreshes only about once a minute; a
/// table that grew from nothing since (a new deployment, a bulk load, a test) has none, and
/// every equality then looks so selective that the planner reaches a row by its id through
/// whichever index is smallest, reading thousands of entries. So the store analyzes by
/// itself as the tables grow: at 128 new rows, then at each doubling, until autovacuum's own
/// schedule is as good (past about a million). Another node's analyze counts as well as ours.
#[derive(Default)]
struct Growth {
    rows: std::sync::atomic::AtomicU64,
    next: std::sync::atomic::AtomicU64,
    running: std::sync::atomic::AtomicBool,
}

const FIRST_ANALYZE_ROWS: u64 = 128;
const LAST_ANALYZE_ROWS: u64 = 1 << 20;

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// A database error, or [`StoreError::Unavailable`] when the connection itself failed (the
/// database is down or restarting, or a statement or lock waited past its timeout).
impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        use tokio_postgres::error::SqlState;
        match e.code() {
            None => unavailable(e),
            Some(c)
                if *c == SqlState::QUERY_CANCELED
                    || *c == SqlState::ADMIN_SHUTDOWN
                    || *c == SqlState::CANNOT_CONNECT_NOW
                    || *c == SqlState::LOCK_NOT_AVAILABLE
                    || c.code().starts_with("08") =>
            {
                unavailable(e)
            }
            Some(_) => StoreError::Postgres(e.to_string()),
        }
    }
}

/// A schema name kumori may create and use: plain lower-case letters, digits and `_`.
fn plain_schema(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !s.as_bytes()[0].is_ascii_digit()
}

impl Pg {
    /// Connects to `url` (a `postgres://` URL or key=value string); with `schema`, keeps
    /// kumori's tables in that schema, made if missing.
    pub(crate) async fn open(url: &str, schema: Option<&str>) -> Result<Pg> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Config(format!("bad database URL: {e}")))?;
        if let Some(s) = schema
            && !plain_schema(s)
        {
            return Err(StoreError::Config(format!(
                "bad database schema '{s}': use lower-case letters, digits and _"
            )));
        }
        let mut options = config.get_options().unwrap_or_default().to_string();
        options.push_str(&format!(
            " -c statement_timeout={STATEMENT_TIMEOUT} -c lock_timeout={STATEMENT_TIMEOUT}"
        ));
        if let Some(s) = schema {
            options.push_str(&format!(" -c search_path={s}"));
        }
        config.options(options.trim());
        config.connect_timeout(CONNECT);
        if config.get_application_name().is_none() {
            config.application_name("kumori");
        }
        let label = format!(
            "{}{}",
            config.get_dbname().unwrap_or("(default database)"),
            schema.map(|s| format!(", schema {s}")).unwrap_or_default()
        );
        let manager = Manager::from_config(
            config,
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(WAIT))
            .create_timeout(Some(CONNECT))
            .recycle_timeout(Some(CONNECT))
            .build()
            .map_err(|e| StoreError::Config(e.to_string()))?;
        let lock_key = schema.map_or(0x6b75_6d6f, |s| {
            // FNV-1a: stable across builds, unlike std's hasher.
            s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            }) as i64
        });
        let pg = Pg {
            pool,
            lock_key,
            indexes: Arc::default(),
            growth: Arc::new(Growth {
                next: FIRST_ANALYZE_ROWS.into(),
                ..Growth::default()
            }),
            label,
        };
        if let Some(s) = schema {
            // Under the lock, so that nodes starting together do not race to make it.
            let client = pg.client().await?;
            client
                .batch_execute(&format!(
                    "BEGIN; SELECT pg_advisory_xact_lock({lock_key}); \
                     CREATE SCHEMA IF NOT EXISTS {s}; COMMIT"
                ))
                .await?;
        }
        Ok(pg)
    }

    async fn client(&self) -> Result<Object> {
        self.pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Backend(e) => StoreError::from(e),
            e => unavailable(format!("no database connection: {e}")),
        })
    }

    /// Applies the migrations this database has not had, in one write transaction.
    pub(crate) async fn migrate(&self) -> Result<()> {
        let mut tx = self.begin(true).await?;
        let c = tx.client();
        c.batch_execute("CREATE TABLE IF NOT EXISTS kumori_migrations (version INTEGER NOT NULL)")
            .await?;
        let done: i64 = c
            .query_one("SELECT COUNT(*) FROM kumori_migrations", &[])
            .await?
            .get(0);
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(done as usize) {
            c.batch_execute(sql).await?;
            c.execute(
                "INSERT INTO kumori_migrations (version) VALUES ($1)",
                &[&(i as i32 + 1)],
            )
            .await?;
        }
        tx.commit(&[]).await?;
        // A node starting on a database others filled plans well from its first call.
        self.client()
            .await?
            .batch_execute("ANALYZE resources, tags, tombstones")
            .await?;
        Ok(())
    }

    /// A transaction: a write one holds this deployment's write lock until it ends.
    pub(crate) async fn begin(&self, write: bool) -> Result<PgTx> {
        let client = self.client().await?;
        let begin = if write {
            format!("BEGIN; SELECT pg_advisory_xact_lock({})", self.lock_key)
        } else {
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY".to_string()
        };
        let mut tx = PgTx {
            client: Some(client),
            open: false,
            write,
            made: vec![],
            indexes: self.indexes.clone(),
            inserted: 0,
            pool: self.pool.clone(),
            growth: self.growth.clone(),
            #[cfg(test)]
            plans: None,
        };
        tx.client().batch_execute(&begin).await?;
        tx.open = true;
        Ok(tx)
    }

    /// Drops every resource and tag of every account.
    pub(crate) async fn reset(&self) -> Result<()> {
        let mut tx = self.begin(true).await?;
        tx.client()
            .batch_execute(
                "DELETE FROM resources; DELETE FROM tags; DELETE FROM tombstones;
                 UPDATE generations SET n = n + 1, floor = n + 1;",
            )
            .await?;
        tx.commit(&[]).await
    }

    /// Whether the database answers now.
    pub(crate) async fn ping(&self) -> bool {
        match self.client().await {
            Ok(c) => c.simple_query("SELECT 1").await.is_ok(),
            Err(_) => false,
        }
    }

    pub(crate) fn close(&self) {
        self.pool.close();
    }
}

/// One PostgreSQL transaction. Dropped without commit, it is rolled back on a task of its
/// own before its connection goes back to the pool.
pub(crate) struct PgTx {
    client: Option<Object>,
    open: bool,
    write: bool,
    /// Member indexes this transaction made: known to exist once it commits.
    made: Vec<String>,
    indexes: Arc<Mutex<HashSet<String>>>,
    /// Rows this transaction added; counted toward the next analyze when it commits.
    inserted: u64,
    pool: Pool,
    growth: Arc<Growth>,
    /// Tests: the plan of every query this transaction runs, when asked for.
    #[cfg(test)]
    pub(crate) plans: Option<Vec<String>>,
}

impl Drop for PgTx {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        if !self.open {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    if client.batch_execute("ROLLBACK").await.is_err() {
                        // Not given back: the pool makes a new connection in its place.
                        drop(Object::take(client));
                    }
                });
            }
            Err(_) => drop(Object::take(client)),
        }
    }
}

/// Rows of `kind, id, parent, body` as records.
fn records(rows: Vec<tokio_postgres::Row>) -> Vec<Record> {
    rows.into_iter()
        .map(|r| Record {
            kind: r.get(0),
            id: r.get(1),
            parent: r.get(2),
            body: r.get(3),
        })
        .collect()
}

fn tag_rows(rows: Vec<tokio_postgres::Row>) -> Vec<TagRow> {
    rows.into_iter()
        .map(|r| TagRow {
            resource_id: r.get(0),
            resource_type: r.get(1),
            key: r.get(2),
            value: r.get(3),
        })
        .collect()
}

/// The condition that `member` holds `value`, and the text it is compared with as parameter
/// `$n`: the member as `#>>` reads it (`true`, `42`, …), or `IS NULL` with no parameter for
/// [`Key::Missing`] (PostgreSQL's `IS NOT DISTINCT FROM` would not use the index).
fn holds(member: &str, value: Key<'_>, n: usize) -> (String, Option<String>) {
    let text = match value {
        Key::Text(t) => t.to_string(),
        Key::Int(i) => i.to_string(),
        Key::Bool(b) => b.to_string(),
        Key::Missing => return (format!("{member} IS NULL"), None),
    };
    (format!("{member} = ${n}"), Some(text))
}

/// A lookup's parameters, with the compared text (if any) after them.
fn with<'a>(
    args: &[&'a (dyn ToSql + Sync)],
    value: &'a Option<String>,
) -> Vec<&'a (dyn ToSql + Sync)> {
    let mut all = args.to_vec();
    if let Some(v) = value {
        all.push(v);
    }
    all
}

/// At commit, SQLite's three steps (`GENERATIONS_BUMP` and its kin in lib.rs) as one
/// statement, `$3` a text array: the kinds touched move on a generation, a kind reaching a
/// multiple of `$4` raises its floor and forgets the tombstones below it. One round trip,
/// sent with the COMMIT behind it.
const GENERATIONS_BUMP: &str = "WITH bumped AS ( \
     INSERT INTO generations (account, region, kind, n) \
     SELECT $1, $2, k, 1 FROM unnest($3::text[]) AS k \
     ON CONFLICT (account, region, kind) DO UPDATE SET n = generations.n + 1, \
     floor = CASE WHEN (generations.n + 1) % $4 = 0 THEN generations.n + 1 - $4 \
                  ELSE generations.floor END \
     RETURNING kind, n) \
     DELETE FROM tombstones t USING bumped b WHERE t.account = $1 AND t.region = $2 \
     AND t.kind = b.kind AND b.n % $4 = 0 AND t.rev <= b.n - $4";

/// How lookups by member order what they find: by id, but not in a way the id-ordered
/// indexes could provide, or the planner (its statistics not yet caught up with a bulk load)
/// walks every sibling of the kind through such an index, parsing each document, to avoid a
/// sort of the one or two rows the member's own index finds. As `+id` in SQLite.
const BY_ID: &str = "id || ''";

/// The `rev` a row written now gets: its kind's committed generation plus one.
const NEXT_REV: &str = "(SELECT COALESCE(MAX(n), 0) + 1 FROM generations \
     WHERE account = $1 AND region = $2 AND kind = $4)";

impl PgTx {
    fn client(&mut self) -> &Object {
        self.client.as_ref().expect("held until the end")
    }

    async fn query(
        &mut self,
        sql: &str,
        args: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>> {
        #[cfg(test)]
        if self.plans.is_some() {
            let plan: Vec<String> = self
                .client()
                .query(&format!("EXPLAIN {sql}"), args)
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
            if let Some(plans) = self.plans.as_mut() {
                plans.push(plan.join("\n"));
            }
        }
        let c = self.client();
        let stmt = c.prepare_cached(sql).await?;
        Ok(c.query(&stmt, args).await?)
    }

    /// Tests: records the plan of each query from now on; with sequential scans off, so that
    /// a plan shows which index the planner prefers even over a table of a few rows.
    #[cfg(test)]
    pub(crate) async fn explain(&mut self) -> Result<()> {
        self.client()
            .batch_execute("SET LOCAL enable_seqscan = off")
            .await?;
        self.plans = Some(vec![]);
        Ok(())
    }

    async fn execute(&mut self, sql: &str, args: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        let c = self.client();
        let stmt = c.prepare_cached(sql).await?;
        Ok(c.execute(&stmt, args).await?)
    }

    /// The one `string_agg` row of a query, as a JSON array.
    async fn json(&mut self, sql: &str, args: &[&(dyn ToSql + Sync)]) -> Result<String> {
        let rows = self.query(sql, args).await?;
        let body: Option<String> = rows.first().and_then(|r| r.get(0));
        Ok(crate::json_array(body))
    }

    /// Moves the generations of the kinds touched in each scope on, then commits.
    pub(crate) async fn commit(&mut self, touched: &[(&str, &str, Vec<&str>)]) -> Result<()> {
        let c = self.client.as_ref().expect("held until the end");
        let bump = c.prepare_cached(GENERATIONS_BUMP).await?;
        let kinds: Vec<Vec<String>> = touched
            .iter()
            .map(|(_, _, k)| k.iter().map(|k| k.to_string()).collect())
            .collect();
        // Pipelined: the bookkeeping and the COMMIT go out together. Should a statement fail,
        // PostgreSQL ends the transaction at COMMIT with a rollback, and its error is ours.
        let args: Vec<[&(dyn ToSql + Sync); 4]> = touched
            .iter()
            .zip(&kinds)
            .map(|((account, region, _), kinds)| {
                [
                    account as &(dyn ToSql + Sync),
                    region,
                    kinds,
                    &TOMBSTONE_GENERATIONS,
                ]
            })
            .collect();
        let bumps = args.iter().map(|a| c.execute(&bump, a));
        let (bumped, committed) = tokio::join!(futures_join_all(bumps), c.batch_execute("COMMIT"));
        for b in bumped {
            b?;
        }
        committed?;
        self.open = false;
        if self.inserted > 0 {
            let rows = std::mem::take(&mut self.inserted);
            self.grew(rows);
        }
        let made = std::mem::take(&mut self.made);
        if !made.is_empty() {
            self.indexes
                .lock()
                .expect("index set poisoned")
                .extend(made);
        }
        Ok(())
    }

    pub(crate) async fn get(&mut self, s: Scope<'_>, id: &str) -> Result<Option<Record>> {
        let rows = self
            .query(
                "SELECT kind, id, parent, body FROM resources \
                 WHERE account = $1 AND region = $2 AND id = $3",
                &[&s.account, &s.region, &id],
            )
            .await?;
        Ok(records(rows).pop())
    }

    pub(crate) async fn get_many(&mut self, s: Scope<'_>, ids: &[String]) -> Result<Vec<Record>> {
        let rows = self
            .query(
                "SELECT kind, id, parent, body FROM resources WHERE account = $1 \
                 AND region = $2 AND id = ANY($3::text[]) ORDER BY id",
                &[&s.account, &s.region, &ids],
            )
            .await?;
        Ok(records(rows))
    }

    pub(crate) async fn count(&mut self, s: Scope<'_>, kind: &str) -> Result<usize> {
        let rows = self
            .query(
                "SELECT COUNT(*) FROM resources WHERE account = $1 AND region = $2 AND kind = $3",
                &[&s.account, &s.region, &kind],
            )
            .await?;
        Ok(rows[0].get::<_, i64>(0) as usize)
    }

    pub(crate) async fn list(&mut self, s: Scope<'_>, kind: &str) -> Result<Vec<Record>> {
        let rows = self
            .query(
                "SELECT kind, id, parent, body FROM resources \
                 WHERE account = $1 AND region = $2 AND kind = $3 ORDER BY id",
                &[&s.account, &s.region, &kind],
            )
            .await?;
        Ok(records(rows))
    }

    pub(crate) async fn list_json(&mut self, s: Scope<'_>, kind: &str) -> Result<String> {
        self.json(
            "SELECT string_agg(body, ',' ORDER BY id) FROM resources \
             WHERE account = $1 AND region = $2 AND kind = $3",
            &[&s.account, &s.region, &kind],
        )
        .await
    }

    pub(crate) async fn children_json(
        &mut self,
        s: Scope<'_>,
        parent: &str,
        kind: &str,
    ) -> Result<String> {
        self.json(
            "SELECT string_agg(body, ',' ORDER BY id) FROM resources \
             WHERE account = $1 AND region = $2 AND parent = $3 AND kind = $4",
            &[&s.account, &s.region, &parent, &kind],
        )
        .await
    }

    pub(crate) async fn children(
        &mut self,
        s: Scope<'_>,
        parent: &str,
        kind: Option<&str>,
    ) -> Result<Vec<Record>> {
        let rows = self
            .query(
                "SELECT kind, id, parent, body FROM resources WHERE account = $1 \
                 AND region = $2 AND parent = $3 AND ($4::text IS NULL OR kind = $4) ORDER BY id",
                &[&s.account, &s.region, &parent, &kind],
            )
            .await?;
        Ok(records(rows))
    }

    /// The `#>>` expression of `field` (dotted: nested) in documents of `kind`, and in a write
    /// transaction the index over it made first if this process does not know it exists.
    /// `numeric`: the member as a bigint, for ordered lookups.
    async fn member(
        &mut self,
        kind: &str,
        field: &str,
        scope: Index,
        numeric: bool,
    ) -> Result<String> {
        crate::check_member_names(kind, field);
        let path = field.replace('.', ",");
        let text = format!("(body::jsonb #>> '{{{path}}}')");
        let member = if numeric {
            format!("({text}::bigint)")
        } else {
            text
        };
        if self.write {
            let name = format!(
                "resources_{}_{}{}{}",
                kind.replace('-', "_"),
                field.replace('.', "_"),
                if numeric { "_num" } else { "" },
                if matches!(scope, Index::Any) {
                    "_any"
                } else {
                    ""
                }
            );
            let known = self
                .indexes
                .lock()
                .expect("index set poisoned")
                .contains(&name);
            if !known && !self.made.contains(&name) {
                let columns = match scope {
                    Index::PerParent => "account, region, parent",
                    Index::Any => "account, region",
                };
                self.client()
                    .batch_execute(&format!(
                        "CREATE INDEX IF NOT EXISTS {name} ON resources ({columns}, {member}) \
                         WHERE kind = '{kind}'"
                    ))
                    .await?;
                self.made.push(name);
            }
        }
        Ok(member)
    }

    pub(crate) async fn child_where(
        &mut self,
        s: Scope<'_>,
        parent: &str,
        kind: &str,
        field: &str,
        value: Key<'_>,
        limit_one: bool,
    ) -> Result<Vec<Record>> {
        let member = self.member(kind, field, Index::PerParent, false).await?;
        let (holds, v) = holds(&member, value, 4);
        let limit = if limit_one { " LIMIT 1" } else { "" };
        let sql = format!(
            "SELECT kind, id, parent, body FROM resources WHERE account = $1 AND region = $2 \
             AND parent = $3 AND kind = '{kind}' AND {holds} ORDER BY {BY_ID}{limit}"
        );
        let rows = self
            .query(&sql, &with(&[&s.account, &s.region, &parent], &v))
            .await?;
        Ok(records(rows))
    }

    pub(crate) async fn count_where(
        &mut self,
        s: Scope<'_>,
        parent: &str,
        kind: &str,
        field: &str,
        value: Key<'_>,
    ) -> Result<usize> {
        let member = self.member(kind, field, Index::PerParent, false).await?;
        let (holds, v) = holds(&member, value, 4);
        let sql = format!(
            "SELECT COUNT(*) FROM resources WHERE account = $1 AND region = $2 \
             AND parent = $3 AND kind = '{kind}' AND {holds}"
        );
        let rows = self
            .query(&sql, &with(&[&s.account, &s.region, &parent], &v))
            .await?;
        Ok(rows[0].get::<_, i64>(0) as usize)
    }

    pub(crate) async fn child_at_most(
        &mut self,
        s: Scope<'_>,
        parent: &str,
        kind: &str,
        field: &str,
        value: i64,
    ) -> Result<Option<Record>> {
        let member = self.member(kind, field, Index::PerParent, true).await?;
        let sql = format!(
            "SELECT kind, id, parent, body FROM resources WHERE account = $1 AND region = $2 \
             AND parent = $3 AND kind = '{kind}' AND {member} <= $4 \
             ORDER BY {member} DESC LIMIT 1"
        );
        let rows = self
            .query(&sql, &[&s.account, &s.region, &parent, &value])
            .await?;
        Ok(records(rows).pop())
    }

    pub(crate) async fn find_where(
        &mut self,
        s: Scope<'_>,
        kind: &str,
        field: &str,
        value: Key<'_>,
    ) -> Result<Vec<Record>> {
        let member = self.member(kind, field, Index::Any, false).await?;
        let (holds, v) = holds(&member, value, 3);
        let sql = format!(
            "SELECT kind, id, parent, body FROM resources WHERE account = $1 AND region = $2 \
             AND kind = '{kind}' AND {holds} ORDER BY {BY_ID}"
        );
        let rows = self
            .query(&sql, &with(&[&s.account, &s.region], &v))
            .await?;
        Ok(records(rows))
    }

    /// Adds a row; `false` if its id is taken.
    /// Counts committed new rows; past the next mark, analyzes the tables on a connection of
    /// its own, after this transaction, without holding anyone up.
    fn grew(&self, rows: u64) {
        use std::sync::atomic::Ordering::SeqCst;
        let total = self.growth.rows.fetch_add(rows, SeqCst) + rows;
        let next = self.growth.next.load(SeqCst);
        if total < next || next > LAST_ANALYZE_ROWS || self.growth.running.swap(true, SeqCst) {
            return;
        }
        self.growth.next.store(next * 2, SeqCst);
        let (pool, growth) = (self.pool.clone(), self.growth.clone());
        tokio::spawn(async move {
            if let Ok(c) = pool.get().await {
                let _ = c.batch_execute("ANALYZE resources, tags, tombstones").await;
            }
            growth.running.store(false, SeqCst);
        });
    }

    pub(crate) async fn insert(&mut self, s: Scope<'_>, r: &Record) -> Result<bool> {
        let sql = format!(
            "INSERT INTO resources (account, region, id, kind, parent, body, rev) \
             VALUES ($1, $2, $3, $4, $5, $6, {NEXT_REV}) ON CONFLICT DO NOTHING"
        );
        let n = self
            .execute(
                &sql,
                &[&s.account, &s.region, &r.id, &r.kind, &r.parent, &r.body],
            )
            .await?;
        self.inserted += n;
        Ok(n == 1)
    }

    pub(crate) async fn update(&mut self, s: Scope<'_>, r: &Record) -> Result<()> {
        let sql = format!(
            "UPDATE resources SET body = $6, parent = $5, rev = {NEXT_REV} \
             WHERE account = $1 AND region = $2 AND id = $3"
        );
        self.execute(
            &sql,
            &[&s.account, &s.region, &r.id, &r.kind, &r.parent, &r.body],
        )
        .await?;
        Ok(())
    }

    /// Removes a row and its tags, leaving a tombstone; the kind it had, if it existed.
    pub(crate) async fn delete(&mut self, s: Scope<'_>, id: &str) -> Result<Option<String>> {
        let rows = self
            .query(
                "DELETE FROM resources WHERE account = $1 AND region = $2 AND id = $3 \
                 RETURNING kind",
                &[&s.account, &s.region, &id],
            )
            .await?;
        let kind: Option<String> = rows.first().map(|r| r.get(0));
        if let Some(kind) = &kind {
            let sql = format!(
                "INSERT INTO tombstones (account, region, id, kind, rev) \
                 VALUES ($1, $2, $3, $4, {NEXT_REV}) \
                 ON CONFLICT (account, region, kind, id) DO UPDATE SET rev = excluded.rev"
            );
            self.execute(&sql, &[&s.account, &s.region, &id, kind])
                .await?;
        }
        self.execute(
            "DELETE FROM tags WHERE account = $1 AND region = $2 AND resource_id = $3",
            &[&s.account, &s.region, &id],
        )
        .await?;
        Ok(kind)
    }

    /// See `Store::lease`.
    pub(crate) async fn lease(
        &mut self,
        name: &str,
        holder: &str,
        now: i64,
        expires: i64,
    ) -> Result<bool> {
        let n = self
            .execute(
                "INSERT INTO leases (name, holder, expires) VALUES ($1, $2, $4) \
                 ON CONFLICT (name) DO UPDATE SET holder = $2, expires = $4 \
                 WHERE leases.holder = $2 OR leases.expires <= $3",
                &[&name, &holder, &now, &expires],
            )
            .await?;
        Ok(n == 1)
    }

    pub(crate) async fn scopes_with(&mut self, kind: &str) -> Result<Vec<(String, String)>> {
        let rows = self
            .query(
                "SELECT DISTINCT account, region FROM resources WHERE kind = $1 ORDER BY 1, 2",
                &[&kind],
            )
            .await?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    pub(crate) async fn changes(&mut self) -> Result<i64> {
        let rows = self
            .query("SELECT COALESCE(SUM(n), 0)::bigint FROM generations", &[])
            .await?;
        Ok(rows.first().map_or(0, |r| r.get(0)))
    }

    pub(crate) async fn generation(&mut self, s: Scope<'_>, kind: &str) -> Result<(i64, i64)> {
        let rows = self
            .query(
                "SELECT n, floor FROM generations WHERE account = $1 AND region = $2 AND kind = $3",
                &[&s.account, &s.region, &kind],
            )
            .await?;
        Ok(rows.first().map_or((0, 0), |r| (r.get(0), r.get(1))))
    }

    pub(crate) async fn changes_since(
        &mut self,
        s: Scope<'_>,
        kind: &str,
        since: i64,
    ) -> Result<(Vec<String>, String)> {
        let deleted = self
            .query(
                "SELECT id FROM tombstones WHERE account = $1 AND region = $2 AND kind = $3 \
                 AND rev > $4",
                &[&s.account, &s.region, &kind, &since],
            )
            .await?
            .into_iter()
            .map(|r| r.get(0))
            .collect();
        let changed = self
            .json(
                "SELECT string_agg(body, ',' ORDER BY id) FROM resources \
                 WHERE account = $1 AND region = $2 AND kind = $3 AND rev > $4",
                &[&s.account, &s.region, &kind, &since],
            )
            .await?;
        Ok((deleted, changed))
    }

    pub(crate) async fn tags(
        &mut self,
        s: Scope<'_>,
        resource_type: Option<&str>,
    ) -> Result<Vec<TagRow>> {
        let rows = self
            .query(
                "SELECT resource_id, resource_type, key, value FROM tags WHERE account = $1 \
                 AND region = $2 AND ($3::text IS NULL OR resource_type = $3) \
                 ORDER BY resource_id, seq, key",
                &[&s.account, &s.region, &resource_type],
            )
            .await?;
        Ok(tag_rows(rows))
    }

    pub(crate) async fn tags_of(&mut self, s: Scope<'_>, resource_id: &str) -> Result<Vec<TagRow>> {
        let rows = self
            .query(
                "SELECT resource_id, resource_type, key, value FROM tags WHERE account = $1 \
                 AND region = $2 AND resource_id = $3 ORDER BY seq, key",
                &[&s.account, &s.region, &resource_id],
            )
            .await?;
        Ok(tag_rows(rows))
    }

    pub(crate) async fn set_tags(
        &mut self,
        s: Scope<'_>,
        resource_id: &str,
        resource_type: &str,
        tags: &[(String, String)],
    ) -> Result<()> {
        self.execute(
            "DELETE FROM tags WHERE account = $1 AND region = $2 AND resource_id = $3",
            &[&s.account, &s.region, &resource_id],
        )
        .await?;
        for (i, (key, value)) in tags.iter().enumerate() {
            self.execute(
                "INSERT INTO tags (account, region, resource_id, resource_type, key, value, seq) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &s.account,
                    &s.region,
                    &resource_id,
                    &resource_type,
                    key,
                    value,
                    &(i as i64 + 1),
                ],
            )
            .await?;
        }
        Ok(())
    }

    pub(crate) async fn put_tag(&mut self, s: Scope<'_>, t: &TagRow) -> Result<()> {
        self.execute(
            "INSERT INTO tags (account, region, resource_id, resource_type, key, value) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (account, region, resource_id, key) DO UPDATE SET value = excluded.value",
            &[
                &s.account,
                &s.region,
                &t.resource_id,
                &t.resource_type,
                &t.key,
                &t.value,
            ],
        )
        .await?;
        Ok(())
    }

    pub(crate) async fn delete_tag(
        &mut self,
        s: Scope<'_>,
        resource_id: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<()> {
        self.execute(
            "DELETE FROM tags WHERE account = $1 AND region = $2 AND resource_id = $3 \
             AND key = $4 AND ($5::text IS NULL OR value = $5)",
            &[&s.account, &s.region, &resource_id, &key, &value],
        )
        .await?;
        Ok(())
    }
}

/// Which resources a member index covers: a parent's children, or a whole scope's.
#[derive(Clone, Copy)]
enum Index {
    PerParent,
    Any,
}

/// Awaits every future, polling them together so that their statements are pipelined.
async fn futures_join_all<F: std::future::Future>(fs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut pending: Vec<std::pin::Pin<Box<F>>> = fs.map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (f, slot) in pending.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out.into_iter().map(|v| v.expect("ready")).collect()
}
