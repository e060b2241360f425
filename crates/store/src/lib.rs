//! kumori's persistence: resources as documents, keyed by account, region and id, with tags
//! beside them — behind one small transactional interface.
//!
//! Every API call runs in exactly one [`Tx`]: [`Store::read`] for describes (a consistent
//! snapshot), [`Store::write`] for anything that changes state. Invariants that span resources
//! (CIDRs that must not overlap, addresses handed out once) are checked inside the write
//! transaction, never in process memory, so that two kumori processes sharing one database stay
//! correct:
//! - SQLite: a write transaction is `BEGIN IMMEDIATE`, which takes the database's single write
//!   lock up front, so checks and writes of concurrent writers (threads or processes) serialize.
//! - PostgreSQL (`postgres.rs`): a write transaction takes the deployment's advisory lock,
//!   which serializes writers of every node sharing the database in the same way.
//!
//! SQLite is called synchronously (rusqlite), on the task that runs the transaction. A
//! statement here takes microseconds; an async driver (sqlx) runs each connection on a thread
//! of its own and pays two thread wake-ups per statement, which under concurrent writes cost
//! more than the statements and were paid with the write lock held. The methods stay `async`
//! so that PostgreSQL, a network database, sits behind the same interface.

mod postgres;

use rusqlite::{Connection, OptionalExtension, params};
use std::any::{Any, TypeId};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("database error: {0}")]
    Postgres(String),
    /// The database cannot be reached now (down, restarting, or too slow to answer): a call
    /// may be retried, and services answer `ServiceUnavailable`.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("{0}")]
    Config(String),
    #[error("resource {0} already exists")]
    Exists(String),
    #[error("cannot prepare state directory {0}: {1}")]
    Dir(PathBuf, std::io::Error),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// One stored resource: its kind (`vpc`, `subnet`, ...), id, optional parent id (the VPC of a
/// subnet) and its JSON document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub kind: String,
    pub id: String,
    pub parent: Option<String>,
    pub body: String,
}

/// A tag on a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagRow {
    pub resource_id: String,
    pub resource_type: String,
    pub key: String,
    pub value: String,
}

/// Where resources live: an account and a region (`""` for global services such as IAM).
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub account: &'a str,
    pub region: &'a str,
}
/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE resources (
        account TEXT NOT NULL,
        region  TEXT NOT NULL,
        id      TEXT NOT NULL,
        kind    TEXT NOT NULL,
        parent  TEXT,
        body    TEXT NOT NULL
    );
    -- A rowid table, not WITHOUT ROWID: documents are hundreds of bytes, and SQLite keeps
    -- large rows far better in a rowid b-tree.
    CREATE UNIQUE INDEX resources_by_id ON resources (account, region, id);
    CREATE INDEX resources_by_kind ON resources (account, region, kind, id);
    CREATE INDEX resources_by_parent ON resources (account, region, parent, kind);
    CREATE TABLE tags (
        account       TEXT NOT NULL,
        region        TEXT NOT NULL,
        resource_id   TEXT NOT NULL,
        resource_type TEXT NOT NULL,
        key           TEXT NOT NULL,
        value         TEXT NOT NULL,
        PRIMARY KEY (account, region, resource_id, key)
    ) WITHOUT ROWID;
    CREATE INDEX tags_by_type ON tags (account, region, resource_type);
",
    "
    -- How many committed transactions have changed resources of each kind: a process may
    -- reuse what it decoded of a kind for as long as the number it read it at still stands.
    -- Numbers only ever grow (reset included), so one never names two different contents.
    CREATE TABLE generations (
        account TEXT NOT NULL,
        region  TEXT NOT NULL,
        kind    TEXT NOT NULL,
        n       INTEGER NOT NULL,
        PRIMARY KEY (account, region, kind)
    ) WITHOUT ROWID;
",
    "
    -- Which generation last wrote each row, and which rows were deleted at which generation,
    -- so that a process can bring what it decoded up to date by reading only what changed.
    -- Tombstones older than a kind's `floor` are pruned; a decode older than that is redone.
    ALTER TABLE resources ADD COLUMN rev INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX resources_by_rev ON resources (account, region, kind, rev);
    CREATE TABLE tombstones (
        account TEXT NOT NULL,
        region  TEXT NOT NULL,
        kind    TEXT NOT NULL,
        id      TEXT NOT NULL,
        rev     INTEGER NOT NULL,
        PRIMARY KEY (account, region, kind, id)
    ) WITHOUT ROWID;
    ALTER TABLE generations ADD COLUMN floor INTEGER NOT NULL DEFAULT 0;
",
    "
    -- A parent's children of a kind in id order straight from the index: checks and describes
    -- read them all at once (a VPC's subnets, a subnet's interfaces), and sorting hundreds of
    -- documents after reading them cost as much again as the reading.
    DROP INDEX resources_by_parent;
    CREATE INDEX resources_by_parent ON resources (account, region, parent, kind, id);
",
    "
    -- Background work that one process at a time may do (see Store::lease).
    CREATE TABLE leases (
        name    TEXT NOT NULL PRIMARY KEY,
        holder  TEXT NOT NULL,
        expires INTEGER NOT NULL
    ) WITHOUT ROWID;
",
    "
    -- The order tags were given in, where a service keeps it (IAM lists them so); 0 for
    -- tags set one by one (EC2), which list by key.
    ALTER TABLE tags ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
",
];

/// How many generations of tombstones a kind keeps: a process whose decode is older than that
/// decodes the kind afresh.
const TOMBSTONE_GENERATIONS: i64 = 256;

/// What read transactions decode of a whole kind, and bring up to date from the rows that
/// changed since. `Clone` must be cheap (a persistent map): a refresh clones, then patches.
pub trait Snapshot: Any + Clone + Send + Sync {
    type Error: From<StoreError>;
    /// Built from every document of the kind: a JSON array ordered by id.
    fn load(all: &str) -> std::result::Result<Self, Self::Error>;
    /// Brought up to date: the resources `deleted` are gone (first), then the documents
    /// `changed` (a JSON array) are in, replacing any of the same id.
    fn patch(&mut self, deleted: &[String], changed: &str) -> std::result::Result<(), Self::Error>;
}

/// What read transactions decoded of one kind, with the generation it was decoded at.
type Snapshots = std::sync::Mutex<HashMap<SnapshotKey, (i64, Arc<dyn Any + Send + Sync>)>>;

/// Account, region, kind and the Rust type the documents were decoded into.
type SnapshotKey = (String, String, &'static str, TypeId);

/// The connection this process writes with (in memory: the only one), and whether a
/// transaction is open on it that its last user did not end.
struct Writer {
    conn: Connection,
    open: bool,
}

/// Idle read connections to the database file, reused from one read transaction to the next.
struct Readers {
    path: PathBuf,
    idle: std::sync::Mutex<Vec<Connection>>,
    closed: AtomicBool,
}

/// Idle read connections kept; more are opened while more reads run at once.
const IDLE_READERS: usize = 4;

impl Readers {
    fn take(&self) -> Result<Connection> {
        let idle = self.idle.lock().expect("reader pool poisoned").pop();
        match idle {
            Some(conn) => Ok(conn),
            None => open_file(&self.path, false),
        }
    }

    fn give(&self, conn: Connection) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        let mut idle = self.idle.lock().expect("reader pool poisoned");
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.idle.lock().expect("reader pool poisoned").clear();
    }
}

/// The database behind kumori: SQLite (embedded, the default) or PostgreSQL (shared by
/// several nodes), behind the same [`Tx`] calls.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    snapshots: Arc<Snapshots>,
}

#[derive(Clone)]
enum Backend {
    Sqlite(Sqlite),
    Postgres(Arc<postgres::Pg>),
}

/// Write transactions of this process take turns on one connection of their own, held for
/// the whole transaction, so its page cache stays good from one write to the next (SQLite
/// drops a connection's cache whenever another connection has written since its last
/// transaction). On disk, reads run on connections beside it, each on its own WAL snapshot.
/// Correctness still comes from `BEGIN IMMEDIATE`, which also serializes writers of other
/// processes.
#[derive(Clone)]
struct Sqlite {
    /// Connections for read transactions; `None` in memory, where reads share the writer's.
    readers: Option<Arc<Readers>>,
    writer: Arc<tokio::sync::Mutex<Writer>>,
    location: Option<PathBuf>,
    /// Told of each commit on disk, for the checkpoints that follow.
    commits: Option<Arc<tokio::sync::Notify>>,
}

/// Copies committed pages from the WAL into the database file on a reader connection, a
/// moment after commits, while writers go on. A checkpoint writes and syncs up to thousands of
/// pages; left to SQLite it runs inside the COMMIT of whichever writer crossed 1,000 WAL
/// pages, with the write lock held and every other writer waiting. Passive: it neither waits
/// for nor blocks readers and writers. It runs on a blocking thread (it syncs the file), and
/// ends when the readers are closed.
fn checkpoints(readers: Arc<Readers>, commits: Arc<tokio::sync::Notify>) {
    tokio::spawn(async move {
        loop {
            commits.notified().await;
            // A burst of commits makes one checkpoint, of each page's last version only.
            tokio::time::sleep(CHECKPOINT_DELAY).await;
            if readers.closed.load(Ordering::Acquire) {
                return;
            }
            let readers = readers.clone();
            let _ = tokio::task::spawn_blocking(move || {
                if let Ok(conn) = readers.take()
                    && pragma(&conn, "PRAGMA wal_checkpoint(PASSIVE)").is_ok()
                {
                    readers.give(conn);
                }
            })
            .await;
        }
    });
}

/// How long after a commit its checkpoint starts.
const CHECKPOINT_DELAY: Duration = Duration::from_millis(250);

/// WAL pages at which the writer checkpoints by itself (SQLite's default is 1,000). Under a
/// steady stream of writes the checkpoint task never finds the log fully copied, and the log
/// starts over (from its beginning) only after a writer's own checkpoint: by then the task has
/// copied all but the last moment's pages, so that checkpoint is short. 16,384 pages: 64 MiB.
const WRITER_AUTOCHECKPOINT_PAGES: &str = "16384";

/// Bytes of WAL file kept once the log starts over: 16 MiB.
const WAL_KEPT_BYTES: &str = "16777216";

/// Bytes of the database file a connection may map instead of reading: reads after another
/// connection's commit refetch pages, and mapped ones cost no copy. Address space, not memory.
const MMAP_BYTES: &str = "268435456";

/// Pages a connection keeps (negative: KiB): 32 MiB, so that the writer's working set (every
/// network interface of a subnet, say) stays cached. Used only as pages are read.
const CACHE_KIB: &str = "-32768";

/// How long a transaction waits for another process's write lock before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Distinct statements a connection keeps prepared (all of this file's fit).
const STATEMENT_CACHE: usize = 64;

/// Runs a statement that may answer rows (most pragmas do), reading them all.
fn pragma(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare(sql)?;
    let mut rows = stmt.query([])?;
    while rows.next()?.is_some() {}
    Ok(())
}

/// A connection to the database file. The writer never sleeps in SQLite waiting for another
/// process's lock (that would hold a runtime thread): [`Store::write`] retries instead.
fn open_file(path: &Path, writer: bool) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    pragma(&conn, "PRAGMA journal_mode = WAL")?;
    // With WAL, NORMAL loses nothing when the process dies (kill -9): committed pages are in
    // the OS's hands. Only a power cut could lose the last commits.
    pragma(&conn, "PRAGMA synchronous = NORMAL")?;
    pragma(&conn, &format!("PRAGMA mmap_size = {MMAP_BYTES}"))?;
    pragma(&conn, &format!("PRAGMA cache_size = {CACHE_KIB}"))?;
    // The WAL file keeps its largest size for reuse; past a burst of writes it is cut back to
    // this once the log starts over.
    pragma(
        &conn,
        &format!("PRAGMA journal_size_limit = {WAL_KEPT_BYTES}"),
    )?;
    if writer {
        // The writer leaves checkpoints to the task above, and checkpoints itself only if
        // the WAL grows far past what that task lets it reach.
        pragma(
            &conn,
            &format!("PRAGMA wal_autocheckpoint = {WRITER_AUTOCHECKPOINT_PAGES}"),
        )?;
        conn.busy_timeout(Duration::ZERO)?;
    }
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DatabaseBusy)
}

impl Store {
    /// Opens (creating if needed) the SQLite database `kumori.db` in `dir`.
    pub async fn open_dir(dir: &Path) -> Result<Store> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Dir(dir.to_path_buf(), e))?;
        let path = dir.join("kumori.db");
        let writer = open_file(&path, true)?;
        let readers = Arc::new(Readers {
            path: path.clone(),
            idle: std::sync::Mutex::new(vec![]),
            closed: AtomicBool::new(false),
        });
        let commits = Arc::new(tokio::sync::Notify::new());
        checkpoints(readers.clone(), commits.clone());
        Self::init(writer, Some(readers), Some(path), Some(commits)).await
    }

    /// An in-memory database: nothing touches the disk. One connection holds it, so every
    /// transaction is serialized — quick enough for tests and throwaway sessions.
    pub async fn open_memory() -> Result<Store> {
        let conn = Connection::open_in_memory()?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Self::init(conn, None, None, None).await
    }

    /// A PostgreSQL database that several kumori nodes may share (`url`: a `postgres://` URL
    /// or key=value string). With `schema`, kumori keeps its tables in that schema, made if
    /// missing, so that one database can hold several deployments.
    pub async fn open_postgres(url: &str, schema: Option<&str>) -> Result<Store> {
        let pg = postgres::Pg::open(url, schema).await?;
        pg.migrate().await?;
        Ok(Store {
            backend: Backend::Postgres(Arc::new(pg)),
            snapshots: Arc::default(),
        })
    }

    async fn init(
        writer: Connection,
        readers: Option<Arc<Readers>>,
        location: Option<PathBuf>,
        commits: Option<Arc<tokio::sync::Notify>>,
    ) -> Result<Store> {
        let store = Store {
            backend: Backend::Sqlite(Sqlite {
                readers,
                writer: Arc::new(tokio::sync::Mutex::new(Writer {
                    conn: writer,
                    open: false,
                })),
                location,
                commits,
            }),
            snapshots: Arc::default(),
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<()> {
        let tx = self.write().await?;
        let conn = tx.conn();
        let done: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(done as usize) {
            conn.execute_batch(sql)?;
            pragma(conn, &format!("PRAGMA user_version = {}", i + 1))?;
        }
        tx.commit().await
    }

    /// `sqlite` or `postgresql` — the backend's name, for health reports.
    pub fn backend(&self) -> &'static str {
        match &self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgresql",
        }
    }

    /// The database file, or `None` when the store is in memory or on PostgreSQL.
    pub fn location(&self) -> Option<&Path> {
        match &self.backend {
            Backend::Sqlite(s) => s.location.as_deref(),
            Backend::Postgres(_) => None,
        }
    }

    /// Where the state is, in words: a file, memory, or a database (never its password).
    pub fn describe(&self) -> String {
        match &self.backend {
            Backend::Sqlite(Sqlite {
                location: Some(p), ..
            }) => format!("{} (sqlite)", p.display()),
            Backend::Sqlite(_) => "memory (--ephemeral: nothing is kept)".into(),
            Backend::Postgres(pg) => format!("PostgreSQL database {}", pg.label),
        }
    }

    /// Whether the database answers now (SQLite always does).
    pub async fn ping(&self) -> bool {
        match &self.backend {
            Backend::Sqlite(_) => true,
            Backend::Postgres(pg) => pg.ping().await,
        }
    }

    /// A read-only snapshot.
    pub async fn read(&self) -> Result<Tx> {
        let conn = match &self.backend {
            Backend::Postgres(pg) => Conn::Pg(pg.begin(false).await?),
            Backend::Sqlite(sqlite) => match &sqlite.readers {
                Some(pool) => {
                    let conn = pool.take()?;
                    // Deferred: the WAL snapshot is taken at the first read.
                    conn.execute_batch("BEGIN")?;
                    Conn::Reader(Lease {
                        conn: Some(conn),
                        pool: pool.clone(),
                    })
                }
                // The one connection, held until the transaction ends: nothing can change
                // the database meanwhile, so its statements need no transaction around them.
                None => Conn::Owned(Owned(sqlite.take_writer().await)),
            },
        };
        Ok(Tx {
            conn,
            write: false,
            touched: BTreeSet::new(),
            snapshots: self.snapshots.clone(),
            commits: None,
        })
    }

    /// A write transaction; it holds the database's write lock until commit or drop.
    pub async fn write(&self) -> Result<Tx> {
        let sqlite = match &self.backend {
            Backend::Postgres(pg) => {
                return Ok(Tx {
                    conn: Conn::Pg(pg.begin(true).await?),
                    write: true,
                    touched: BTreeSet::new(),
                    snapshots: self.snapshots.clone(),
                    commits: None,
                });
            }
            Backend::Sqlite(sqlite) => sqlite,
        };
        let mut guard = sqlite.take_writer().await;
        // Another process holding the lock: wait for it here, not inside SQLite, so that the
        // runtime's thread serves other requests meanwhile. This process's own writers queue
        // on the mutex above.
        let started = Instant::now();
        let mut pause = Duration::from_micros(500);
        loop {
            match guard.conn.execute_batch("BEGIN IMMEDIATE") {
                Ok(()) => break,
                Err(e) if is_busy(&e) && started.elapsed() < BUSY_TIMEOUT => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Err(e) => return Err(e.into()),
            }
        }
        guard.open = true;
        Ok(Tx {
            conn: Conn::Owned(Owned(guard)),
            write: true,
            touched: BTreeSet::new(),
            snapshots: self.snapshots.clone(),
            commits: sqlite.commits.clone(),
        })
    }

    /// Takes or renews the lease `name` for `holder` until `ttl` from now, unless another
    /// holder has it and it has not run out: `true` when `holder` holds it now. Background
    /// work that must run on one process at a time (sweeps, and later health checks and Auto
    /// Scaling) is done by whoever holds its lease; when that process dies, the lease runs
    /// out and another takes it over. Time is the caller's clock, in milliseconds.
    pub async fn lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let expires = now + ttl.as_millis() as i64;
        let mut tx = self.write().await?;
        if let Some(pg) = tx.pg() {
            let held = pg.lease(name, holder, now, expires).await?;
            tx.commit().await?;
            return Ok(held);
        }
        let changed = tx
            .conn()
            .prepare_cached(
                "INSERT INTO leases (name, holder, expires) VALUES (?1, ?2, ?4) \
                 ON CONFLICT (name) DO UPDATE SET holder = ?2, expires = ?4 \
                 WHERE leases.holder = ?2 OR leases.expires <= ?3",
            )?
            .execute(params![name, holder, now, expires])?;
        tx.commit().await?;
        Ok(changed == 1)
    }

    /// Drops every resource and tag of every account.
    pub async fn reset(&self) -> Result<()> {
        if let Backend::Postgres(pg) = &self.backend {
            return pg.reset().await;
        }
        let tx = self.write().await?;
        // No tombstones tell what went: every decode made before now must be redone.
        tx.conn().execute_batch(
            "DELETE FROM resources; DELETE FROM tags; DELETE FROM tombstones;
             UPDATE generations SET n = n + 1, floor = n + 1;",
        )?;
        tx.commit().await
    }

    /// Closes the readers and checkpoints the WAL into the database file (SQLite), or the
    /// pool (PostgreSQL). The writer connection closes with the last clone of the store.
    pub async fn close(&self) {
        match &self.backend {
            Backend::Postgres(pg) => pg.close(),
            Backend::Sqlite(sqlite) => {
                if let Some(readers) = &sqlite.readers {
                    readers.close();
                    let w = sqlite.take_writer().await;
                    let _ = pragma(&w.conn, "PRAGMA wal_checkpoint(TRUNCATE)");
                }
            }
        }
    }
}

impl Sqlite {
    /// The writer connection, with no transaction left open on it.
    async fn take_writer(&self) -> tokio::sync::OwnedMutexGuard<Writer> {
        let mut guard = self.writer.clone().lock_owned().await;
        if guard.open {
            // A transaction whose rollback failed. "No transaction is active" is fine here.
            let _ = guard.conn.execute_batch("ROLLBACK");
            guard.open = false;
        }
        guard
    }
}

/// The writer connection lent to one transaction. Dropped without commit, it rolls back
/// before anyone else gets the connection.
struct Owned(tokio::sync::OwnedMutexGuard<Writer>);

impl Drop for Owned {
    fn drop(&mut self) {
        if self.0.open && self.0.conn.execute_batch("ROLLBACK").is_ok() {
            self.0.open = false;
        }
        // Should the rollback fail, `open` stays set and the next user rolls back first.
    }
}

/// A reader connection lent to one read transaction, given back at its end.
struct Lease {
    conn: Option<Connection>,
    pool: Arc<Readers>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            // A connection whose transaction will not end is not given back.
            if conn.is_autocommit() || conn.execute_batch("ROLLBACK").is_ok() {
                self.pool.give(conn);
            }
        }
    }
}

enum Conn {
    /// A read transaction on one of the readers.
    Reader(Lease),
    /// The writer connection.
    Owned(Owned),
    /// A transaction on a PostgreSQL connection.
    Pg(postgres::PgTx),
}

/// One transaction. Dropping it without [`Tx::commit`] rolls everything back.
pub struct Tx {
    conn: Conn,
    write: bool,
    /// Account, region and kind of what this transaction changed: their generations move
    /// on by one at commit, which is also the `rev` of the rows it writes.
    touched: BTreeSet<(String, String, String)>,
    snapshots: Arc<Snapshots>,
    /// Told when a write transaction commits on disk.
    commits: Option<Arc<tokio::sync::Notify>>,
}

fn record(row: &rusqlite::Row) -> rusqlite::Result<Record> {
    Ok(Record {
        kind: row.get(0)?,
        id: row.get(1)?,
        parent: row.get(2)?,
        body: row.get(3)?,
    })
}

fn tag_row(r: &rusqlite::Row) -> rusqlite::Result<TagRow> {
    Ok(TagRow {
        resource_id: r.get(0)?,
        resource_type: r.get(1)?,
        key: r.get(2)?,
        value: r.get(3)?,
    })
}

/// What a child lookup compares a document member with. Booleans are stored by JSON as
/// `true`/`false`, which SQLite's `json_extract` reads as 1 and 0.
#[derive(Debug, Clone, Copy)]
pub enum Key<'a> {
    Text(&'a str),
    Int(i64),
    Bool(bool),
    /// The member is absent (or null): documents written before it existed.
    Missing,
}

impl<'a> From<&'a str> for Key<'a> {
    fn from(v: &'a str) -> Self {
        Key::Text(v)
    }
}
impl<'a> From<&'a String> for Key<'a> {
    fn from(v: &'a String) -> Self {
        Key::Text(v)
    }
}
impl From<i64> for Key<'_> {
    fn from(v: i64) -> Self {
        Key::Int(v)
    }
}
impl From<bool> for Key<'_> {
    fn from(v: bool) -> Self {
        Key::Bool(v)
    }
}

impl rusqlite::ToSql for Key<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value, ValueRef};
        Ok(match self {
            Key::Text(t) => ToSqlOutput::Borrowed(ValueRef::Text(t.as_bytes())),
            Key::Int(n) => ToSqlOutput::Owned(Value::Integer(*n)),
            Key::Bool(b) => ToSqlOutput::Owned(Value::Integer(i64::from(*b))),
            Key::Missing => ToSqlOutput::Owned(Value::Null),
        })
    }
}

/// How a child lookup compares the member (`IS` so that [`Key::Missing`] finds absent members;
/// SQLite uses an index for `IS` as for `=`).
#[derive(Debug, Clone, Copy)]
enum Cmp {
    Is,
    /// The greatest member at most the key.
    AtMost,
}

/// The lookups by member of [`Tx::child_where`] and its kin: `select` is what they return,
/// `member` the `json_extract` expression, written as the index has it so SQLite uses it.
/// `ORDER BY +id`: ordering by the bare column would have SQLite walk the parent's index in
/// id order instead, parsing every sibling's JSON.
fn member_sql(select: &str, kind: &str, member: &str, cmp: Cmp, tail: &str) -> String {
    let (op, order) = match cmp {
        Cmp::Is => ("IS", "+id".to_string()),
        Cmp::AtMost => ("<=", format!("{member} DESC")),
    };
    let order = if tail.is_empty() {
        String::new()
    } else {
        format!(" ORDER BY {order} {tail}")
    };
    format!(
        "SELECT {select} FROM resources WHERE account = ? AND region = ? \
         AND parent = ? AND kind = '{kind}' AND {member} {op} ?{order}"
    )
}

/// [`Tx::find_where`]'s lookup: by member among every resource of the kind in the scope.
fn find_where_sql(kind: &str, member: &str) -> String {
    format!(
        "SELECT kind, id, parent, body FROM resources WHERE account = ? AND region = ? \
         AND kind = '{kind}' AND {member} IS ? ORDER BY +id"
    )
}

/// The lookup of [`Tx::children_where`]: `+id`, or SQLite orders by walking the parent's
/// index and reads every sibling.
fn children_where_sql(kind: &str, member: &str) -> String {
    let sql = member_sql("kind, id, parent, body", kind, member, Cmp::Is, "");
    format!("{sql} ORDER BY +id")
}

/// The lookup of [`Tx::child_where`].
#[cfg(test)]
fn child_where_sql(kind: &str, member: &str) -> String {
    member_sql("kind, id, parent, body", kind, member, Cmp::Is, "LIMIT 1")
}

/// Member lookups put the kind and member names into their SQL (as the indexes have them),
/// so those must be names from code, never from requests.
fn check_member_names(kind: &str, field: &str) {
    let plain = |n: &str, extra: char| {
        !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == extra)
    };
    assert!(
        plain(kind, '-') && field.split('.').all(|f| plain(f, '_')),
        "member lookups take names from code: {kind:?}, {field:?}"
    );
}

/// A JSON array of documents from the one `group_concat` row of a query (`NULL`: none).
fn json_array(body: Option<String>) -> String {
    format!("[{}]", body.unwrap_or_default())
}

// The `rev` of a row a transaction writes is its kind's committed generation plus one, read
// inside the writing statement by the subquery
//     (SELECT COALESCE(MAX(n), 0) + 1 FROM generations
//      WHERE account = ?1 AND region = ?2 AND kind = ?4)
// Generations move only at commit, and a write transaction holds the write lock throughout,
// so every row of a kind that one transaction writes gets the same number: the generation the
// kind moves to when it commits.

/// At commit, the kinds a transaction touched in one scope (`?1` account, `?2` region, `?3`
/// the kinds as a JSON array) move on by one generation; a kind whose generation reaches a
/// multiple of `?4` ([`TOMBSTONE_GENERATIONS`]) forgets the tombstones that much older, and
/// decodes older than that floor start over.
const GENERATIONS_BUMP: &str = "INSERT INTO generations (account, region, kind, n) \
     SELECT ?1, ?2, value, 1 FROM json_each(?3) WHERE true \
     ON CONFLICT (account, region, kind) DO UPDATE SET n = n + 1";
const TOMBSTONES_PRUNE: &str = "DELETE FROM tombstones WHERE account = ?1 AND region = ?2 \
     AND kind IN (SELECT value FROM json_each(?3)) \
     AND rev <= (SELECT g.n - ?4 FROM generations g WHERE g.account = ?1 AND g.region = ?2 \
                 AND g.kind = tombstones.kind AND g.n % ?4 = 0)";
const FLOOR_RAISE: &str = "UPDATE generations SET floor = n - ?4 WHERE account = ?1 \
     AND region = ?2 AND kind IN (SELECT value FROM json_each(?3)) AND n % ?4 = 0";

impl Tx {
    /// The SQLite connection. PostgreSQL transactions never get here: every public call
    /// answers from `postgres.rs` first.
    fn conn(&self) -> &Connection {
        match &self.conn {
            Conn::Reader(l) => l.conn.as_ref().expect("held until the end"),
            Conn::Owned(o) => &o.0.conn,
            Conn::Pg(_) => unreachable!("SQLite statement on a PostgreSQL transaction"),
        }
    }

    fn pg(&mut self) -> Option<&mut postgres::PgTx> {
        match &mut self.conn {
            Conn::Pg(pg) => Some(pg),
            _ => None,
        }
    }

    pub async fn commit(mut self) -> Result<()> {
        let touched = std::mem::take(&mut self.touched);
        let mut scopes: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
        for (account, region, kind) in &touched {
            scopes.entry((account, region)).or_default().push(kind);
        }
        if let Some(pg) = self.pg() {
            let scopes: Vec<(&str, &str, Vec<&str>)> =
                scopes.into_iter().map(|((a, r), k)| (a, r, k)).collect();
            return pg.commit(&scopes).await;
        }
        for ((account, region), kinds) in scopes {
            let kinds = serde_json::to_string(&kinds).unwrap_or_default();
            let conn = self.conn();
            conn.prepare_cached(GENERATIONS_BUMP)?
                .execute(params![account, region, kinds])?;
            conn.prepare_cached(TOMBSTONES_PRUNE)?.execute(params![
                account,
                region,
                kinds,
                TOMBSTONE_GENERATIONS
            ])?;
            conn.prepare_cached(FLOOR_RAISE)?.execute(params![
                account,
                region,
                kinds,
                TOMBSTONE_GENERATIONS
            ])?;
        }
        match &mut self.conn {
            Conn::Reader(l) => {
                if let Some(conn) = &l.conn {
                    conn.execute_batch("COMMIT")?;
                }
            }
            Conn::Pg(_) => unreachable!("committed above"),
            Conn::Owned(o) => {
                if o.0.open {
                    o.0.conn.execute_batch("COMMIT")?;
                    o.0.open = false;
                    if let Some(c) = &self.commits {
                        c.notify_one();
                    }
                }
            }
        }
        Ok(())
    }

    /// Notes that this transaction writes rows of `kind`.
    fn touch(&mut self, s: Scope<'_>, kind: &str) {
        // Looked up before allocating: most writes touch a kind already noted.
        let noted = self
            .touched
            .iter()
            .any(|(a, r, k)| a == s.account && r == s.region && k == kind);
        if !noted {
            self.touched
                .insert((s.account.into(), s.region.into(), kind.into()));
        }
    }

    /// Rows of a query as records.
    fn records(&self, sql: &str, args: impl rusqlite::Params) -> Result<Vec<Record>> {
        let mut stmt = self.conn().prepare_cached(sql)?;
        let rows = stmt.query_map(args, record)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The one `group_concat` row of a query, as a JSON array.
    fn json(&self, sql: &str, args: impl rusqlite::Params) -> Result<String> {
        let body: Option<String> = self
            .conn()
            .prepare_cached(sql)?
            .query_row(args, |r| r.get(0))?;
        Ok(json_array(body))
    }

    pub async fn get(&mut self, s: Scope<'_>, id: &str) -> Result<Option<Record>> {
        if let Some(pg) = self.pg() {
            return pg.get(s, id).await;
        }
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT kind, id, parent, body FROM resources \
                 WHERE account = ? AND region = ? AND id = ?",
            )?
            .query_row(params![s.account, s.region, id], record)
            .optional()?)
    }

    /// The resources with these ids (those that exist), in one query.
    pub async fn get_many(&mut self, s: Scope<'_>, ids: &[String]) -> Result<Vec<Record>> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        if let Some(pg) = self.pg() {
            return pg.get_many(s, ids).await;
        }
        // The ids travel as one JSON array, so the statement text is fixed.
        self.records(
            "SELECT kind, id, parent, body FROM resources WHERE account = ? AND region = ? \
             AND id IN (SELECT value FROM json_each(?)) ORDER BY id",
            params![
                s.account,
                s.region,
                serde_json::to_string(ids).unwrap_or_default()
            ],
        )
    }

    /// Reads a resource and locks it until the transaction ends, so that checks over its
    /// children (overlapping subnets of a VPC) cannot race. A write transaction already holds
    /// the deployment's one write lock on both backends (SQLite's database lock, PostgreSQL's
    /// advisory lock: see `postgres.rs` for why not row locks), so this is a read.
    pub async fn lock(&mut self, s: Scope<'_>, id: &str) -> Result<Option<Record>> {
        self.get(s, id).await
    }

    /// How many resources of `kind` there are: quotas count without reading bodies.
    pub async fn count(&mut self, s: Scope<'_>, kind: &str) -> Result<usize> {
        if let Some(pg) = self.pg() {
            return pg.count(s, kind).await;
        }
        let n: i64 = self
            .conn()
            .prepare_cached(
                "SELECT COUNT(*) FROM resources WHERE account = ? AND region = ? AND kind = ?",
            )?
            .query_row(params![s.account, s.region, kind], |r| r.get(0))?;
        Ok(n as usize)
    }

    /// Every resource of `kind`, ordered by id.
    pub async fn list(&mut self, s: Scope<'_>, kind: &str) -> Result<Vec<Record>> {
        if let Some(pg) = self.pg() {
            return pg.list(s, kind).await;
        }
        self.records(
            "SELECT kind, id, parent, body FROM resources \
             WHERE account = ? AND region = ? AND kind = ? ORDER BY id",
            params![s.account, s.region, kind],
        )
    }

    /// Every resource of `kind` as one JSON array of their documents, ordered by id: what
    /// describes and snapshots decode in one go.
    pub async fn list_json(&mut self, s: Scope<'_>, kind: &str) -> Result<String> {
        if let Some(pg) = self.pg() {
            return pg.list_json(s, kind).await;
        }
        // The subquery hands the rows over in the index's order (by id), which group_concat
        // keeps; an ORDER BY inside group_concat would sort them all over again.
        self.json(
            "SELECT group_concat(body, ',') FROM (SELECT body FROM resources \
             WHERE account = ? AND region = ? AND kind = ? ORDER BY id)",
            params![s.account, s.region, kind],
        )
    }

    /// The children of `parent` of `kind` as one JSON array of their documents, ordered by id.
    pub async fn children_json(
        &mut self,
        s: Scope<'_>,
        parent: &str,
        kind: &str,
    ) -> Result<String> {
        if let Some(pg) = self.pg() {
            return pg.children_json(s, parent, kind).await;
        }
        // In id order as the index has them, as in `list_json`.
        self.json(
            "SELECT group_concat(body, ',') FROM (SELECT body FROM resources \
             WHERE account = ? AND region = ? AND parent = ? AND kind = ? ORDER BY id)",
            params![s.account, s.region, parent, kind],
        )
    }

    /// A child of `parent` of `kind` whose document holds `value` in its top-level member
    /// `field`: uniqueness checks (a group name in its VPC) without reading every sibling.
    ///
    /// `kind` and `field` are names from code, not from requests. A write transaction makes
    /// sure an index over that member of that kind exists (created the first time, over rows
    /// already stored too), so the lookup costs the same beside ten thousand siblings as
    /// beside none; a read before any write has asked uses no index but finds the same row.
    pub async fn child_where(
        &mut self,
        s: Scope<'_>,
        parent: &str,
        kind: &str,
        field: &str,
        value: impl Into<Key<'_>>,
    ) -> Result<Option<Record>> {
        if let Some(pg) = self.pg() {
            return Ok(pg
                .child_where(s, parent, kind, field, value.into(), true)
                .await?
                .pop());
        }
        let member = self.member(kind, field)?;
        let sql = member_sql("kind, id, parent, body", kind, &member, Cmp::Is, "LIMIT 1");
        let args = params![s.account, s.region, parent, value.into()];
        Ok(self
            .conn()
            .prepare_cached(&sql)?
            .query_row(args, record)
            .optional()?)
    }

    /// Every child of `parent` of `kind` whose member `field` holds `value`, ordered by id,
    /// through the same index as [`Tx::child_where`].
    pub async fn children_where(
        &mut self,
        s: Scope<'_>,
        parent: &str,
        kind: &str,
        field: &str,
        value: impl Into<Key<'_>>,
    ) -> Result<Vec<Record>> {
        if let Some(pg) = self.pg() {
            return pg
                .child_where(s, parent, kind, field, value.into(), false)
                .await;
        }
        let member = self.member(kind, field)?;
        self.records(
            &children_where_sql(kind, &member),
            params![s.account, s.region, parent, value.into()],
        )
    }

    /// How many children of `parent` of `kind` hold `value` in `field`: counted in the index,
    /// no document read.
    pub async fn count_where(
        &mut self,
        s: Scope<'_>,
        parent: &str,
        kind: &str,
        field: &str,
        value: impl Into<Key<'_>>,
    ) -> Result<usize> {
        if let Some(pg) = self.pg() {
            return pg.count_where(s, parent, kind, field, value.into()).await;
        }
        let member = self.member(kind, field)?;
        let sql = member_sql("COUNT(*)", kind, &member, Cmp::Is, "");
        let n: i64 = self
            .conn()
            .prepare_cached(&sql)?
            .query_row(params![s.account, s.region, parent, value.into()], |r| {
                r.get(0)
            })?;
        Ok(n as usize)
    }

    /// The child of `parent` of `kind` with the greatest integer `field` at most `value`: with
    /// children holding disjoint ranges keyed by their first number, the only one that can
    /// overlap a range ending at `value` (a subnet's addresses in its VPC).
    pub async fn child_at_most(
        &mut self,
        s: Scope<'_>,
        parent: &str,
        kind: &str,
        field: &str,
        value: i64,
    ) -> Result<Option<Record>> {
        if let Some(pg) = self.pg() {
            return pg.child_at_most(s, parent, kind, field, value).await;
        }
        let member = self.member(kind, field)?;
        let sql = member_sql(
            "kind, id, parent, body",
            kind,
            &member,
            Cmp::AtMost,
            "LIMIT 1",
        );
        Ok(self
            .conn()
            .prepare_cached(&sql)?
            .query_row(params![s.account, s.region, parent, value], record)
            .optional()?)
    }

    /// Every resource of `kind` in the scope whose member `field` holds `value`, ordered by
    /// id: `child_where` for resources looked up across parents (an instance by its client
    /// token, an interface by the instance it is attached to). `field` may name a nested
    /// member, `Attachment.InstanceId`.
    pub async fn find_where(
        &mut self,
        s: Scope<'_>,
        kind: &str,
        field: &str,
        value: impl Into<Key<'_>>,
    ) -> Result<Vec<Record>> {
        if let Some(pg) = self.pg() {
            return pg.find_where(s, kind, field, value.into()).await;
        }
        let member = self.index(kind, field, false)?;
        self.records(
            &find_where_sql(kind, &member),
            params![s.account, s.region, value.into()],
        )
    }

    /// The `json_extract` expression of `field` in documents of `kind`; in a write
    /// transaction, the index over it (per parent) is made first if it does not exist yet.
    fn member(&self, kind: &str, field: &str) -> Result<String> {
        self.index(kind, field, true)
    }

    fn index(&self, kind: &str, field: &str, per_parent: bool) -> Result<String> {
        check_member_names(kind, field);
        // The member and kind appear literally, as in the index, so SQLite can use it.
        let path: Vec<String> = field.split('.').map(|f| format!("\"{f}\"")).collect();
        let member = format!("json_extract(body, '$.{}')", path.join("."));
        if self.write {
            let name = field.replace('.', "_");
            let (index, columns) = if per_parent {
                (
                    format!("resources_{}_{name}", kind.replace('-', "_")),
                    "account, region, parent",
                )
            } else {
                (
                    format!("resources_{}_{name}_any", kind.replace('-', "_")),
                    "account, region",
                )
            };
            self.conn()
                .prepare_cached(&format!(
                    "CREATE INDEX IF NOT EXISTS {index} ON resources ({columns}, {member}) \
                     WHERE kind = '{kind}'"
                ))?
                .execute([])?;
        }
        Ok(member)
    }

    /// The resources whose parent is `parent` (of `kind` if given), ordered by id.
    pub async fn children(
        &mut self,
        s: Scope<'_>,
        parent: &str,
        kind: Option<&str>,
    ) -> Result<Vec<Record>> {
        if let Some(pg) = self.pg() {
            return pg.children(s, parent, kind).await;
        }
        self.records(
            "SELECT kind, id, parent, body FROM resources WHERE account = ?1 AND region = ?2 \
             AND parent = ?3 AND (?4 IS NULL OR kind = ?4) ORDER BY id",
            params![s.account, s.region, parent, kind],
        )
    }

    /// Adds a new resource; fails with [`StoreError::Exists`] if its id is taken.
    pub async fn insert(&mut self, s: Scope<'_>, r: &Record) -> Result<()> {
        if let Some(pg) = self.pg() {
            if !pg.insert(s, r).await? {
                return Err(StoreError::Exists(r.id.clone()));
            }
            self.touch(s, &r.kind);
            return Ok(());
        }
        let done = self
            .conn()
            .prepare_cached(
                "INSERT INTO resources (account, region, id, kind, parent, body, rev) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, (SELECT COALESCE(MAX(n), 0) + 1 FROM generations \
                                                  WHERE account = ?1 AND region = ?2 AND kind = ?4)) \
                 ON CONFLICT DO NOTHING",
            )?
            .execute(params![s.account, s.region, r.id, r.kind, r.parent, r.body])?;
        if done == 0 {
            return Err(StoreError::Exists(r.id.clone()));
        }
        self.touch(s, &r.kind);
        Ok(())
    }

    /// Replaces the document (and parent) of an existing resource.
    pub async fn update(&mut self, s: Scope<'_>, r: &Record) -> Result<()> {
        if let Some(pg) = self.pg() {
            pg.update(s, r).await?;
            self.touch(s, &r.kind);
            return Ok(());
        }
        self.conn()
            .prepare_cached(
                "UPDATE resources SET body = ?6, parent = ?5, \
                 rev = (SELECT COALESCE(MAX(n), 0) + 1 FROM generations \
                        WHERE account = ?1 AND region = ?2 AND kind = ?4) \
                 WHERE account = ?1 AND region = ?2 AND id = ?3",
            )?
            .execute(params![s.account, s.region, r.id, r.kind, r.parent, r.body])?;
        self.touch(s, &r.kind);
        Ok(())
    }

    /// Removes a resource and its tags; `false` if it did not exist.
    pub async fn delete(&mut self, s: Scope<'_>, id: &str) -> Result<bool> {
        if let Some(pg) = self.pg() {
            let kind = pg.delete(s, id).await?;
            if let Some(kind) = &kind {
                self.touch(s, kind);
            }
            return Ok(kind.is_some());
        }
        // RETURNING: the row is gone at the statement's first step.
        let kind: Option<String> = self
            .conn()
            .prepare_cached(
                "DELETE FROM resources WHERE account = ? AND region = ? AND id = ? RETURNING kind",
            )?
            .query_row(params![s.account, s.region, id], |r| r.get(0))
            .optional()?;
        if let Some(kind) = &kind {
            self.conn()
                .prepare_cached(
                    "INSERT INTO tombstones (account, region, id, kind, rev) \
                     VALUES (?1, ?2, ?3, ?4, (SELECT COALESCE(MAX(n), 0) + 1 FROM generations \
                                              WHERE account = ?1 AND region = ?2 AND kind = ?4)) \
                     ON CONFLICT (account, region, kind, id) DO UPDATE SET rev = excluded.rev",
                )?
                .execute(params![s.account, s.region, id, kind])?;
            self.touch(s, kind);
        }
        self.conn()
            .prepare_cached(
                "DELETE FROM tags WHERE account = ? AND region = ? AND resource_id = ?",
            )?
            .execute(params![s.account, s.region, id])?;
        Ok(kind.is_some())
    }

    /// A number that moves whenever any write commits, in this process or another on the
    /// same database: what the data plane polls to know it has something to apply.
    pub async fn changes(&mut self) -> Result<i64> {
        if let Some(pg) = self.pg() {
            return pg.changes().await;
        }
        Ok(self
            .conn()
            .prepare_cached("SELECT COALESCE(SUM(n), 0) FROM generations")?
            .query_row([], |r| r.get(0))?)
    }

    /// A kind's committed generation, and the floor below which its tombstones are gone.
    async fn generation(&mut self, s: Scope<'_>, kind: &str) -> Result<(i64, i64)> {
        if let Some(pg) = self.pg() {
            return pg.generation(s, kind).await;
        }
        let row = self
            .conn()
            .prepare_cached(
                "SELECT n, floor FROM generations WHERE account = ? AND region = ? AND kind = ?",
            )?
            .query_row(params![s.account, s.region, kind], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        Ok(row.unwrap_or((0, 0)))
    }

    /// The documents of `kind` written after generation `since`, as one JSON array, and the
    /// ids deleted after it.
    async fn changes_since(
        &mut self,
        s: Scope<'_>,
        kind: &str,
        since: i64,
    ) -> Result<(Vec<String>, String)> {
        if let Some(pg) = self.pg() {
            return pg.changes_since(s, kind, since).await;
        }
        let deleted = self
            .conn()
            .prepare_cached(
                "SELECT id FROM tombstones WHERE account = ? AND region = ? AND kind = ? AND rev > ?",
            )?
            .query_map(params![s.account, s.region, kind, since], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        let changed = self.json(
            "SELECT group_concat(body, ',' ORDER BY id) FROM resources \
             WHERE account = ? AND region = ? AND kind = ? AND rev > ?",
            params![s.account, s.region, kind, since],
        )?;
        Ok((deleted, changed))
    }

    /// Every resource of `kind` as `T` decodes it. A read transaction reuses what this process
    /// decoded before when no commit has changed the kind since, and otherwise brings it up to
    /// date from the rows that changed (a full decode only when tombstones that old are gone).
    /// A write transaction always decodes afresh: it may read its own uncommitted changes.
    pub async fn snapshot<T: Snapshot>(
        &mut self,
        s: Scope<'_>,
        kind: &'static str,
    ) -> std::result::Result<Arc<T>, T::Error> {
        if self.write {
            let all = self.list_json(s, kind).await?;
            return Ok(Arc::new(T::load(&all)?));
        }
        let (n, floor) = self.generation(s, kind).await?;
        let key: SnapshotKey = (
            s.account.to_string(),
            s.region.to_string(),
            kind,
            TypeId::of::<T>(),
        );
        let cached = self
            .snapshots
            .lock()
            .expect("snapshot cache poisoned")
            .get(&key)
            .and_then(|(at, v)| Some((*at, v.clone().downcast::<T>().ok()?)));
        let fresh = match cached {
            Some((at, v)) if at == n => return Ok(v),
            // A decode newer than this transaction's view: another reader got there first.
            Some((at, _)) if at > n => {
                let all = self.list_json(s, kind).await?;
                return Ok(Arc::new(T::load(&all)?));
            }
            Some((at, v)) if at >= floor => {
                let (deleted, changed) = self.changes_since(s, kind, at).await?;
                let mut t = T::clone(&v);
                t.patch(&deleted, &changed)?;
                t
            }
            _ => T::load(&self.list_json(s, kind).await?)?,
        };
        let v = Arc::new(fresh);
        self.snapshots
            .lock()
            .expect("snapshot cache poisoned")
            .insert(key, (n, v.clone()));
        Ok(v)
    }

    /// Every (account, region) holding resources of `kind`: for background sweeps, which
    /// look at every account.
    pub async fn scopes_with(&mut self, kind: &str) -> Result<Vec<(String, String)>> {
        if let Some(pg) = self.pg() {
            return pg.scopes_with(kind).await;
        }
        let mut stmt = self.conn().prepare_cached(
            "SELECT DISTINCT account, region FROM resources WHERE kind = ? ORDER BY 1, 2",
        )?;
        let rows = stmt.query_map(params![kind], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Tags of every resource of `resource_type`, or of all resources when `None`, ordered by
    /// resource id and key.
    pub async fn tags(&mut self, s: Scope<'_>, resource_type: Option<&str>) -> Result<Vec<TagRow>> {
        if let Some(pg) = self.pg() {
            return pg.tags(s, resource_type).await;
        }
        let mut stmt = self.conn().prepare_cached(
            "SELECT resource_id, resource_type, key, value FROM tags WHERE account = ?1 \
             AND region = ?2 AND (?3 IS NULL OR resource_type = ?3) ORDER BY resource_id, seq, key",
        )?;
        let rows = stmt.query_map(params![s.account, s.region, resource_type], tag_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Tags of one resource: in the order [`Tx::set_tags`] gave them, then by key.
    pub async fn tags_of(&mut self, s: Scope<'_>, resource_id: &str) -> Result<Vec<TagRow>> {
        if let Some(pg) = self.pg() {
            return pg.tags_of(s, resource_id).await;
        }
        let mut stmt = self.conn().prepare_cached(
            "SELECT resource_id, resource_type, key, value FROM tags WHERE account = ? \
             AND region = ? AND resource_id = ? ORDER BY seq, key",
        )?;
        let rows = stmt.query_map(params![s.account, s.region, resource_id], tag_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Replaces every tag of a resource with `tags`, which keep their order (IAM's entities:
    /// their keys are compared without case and listed in the order they were added, so IAM
    /// works out the whole set and stores it).
    pub async fn set_tags(
        &mut self,
        s: Scope<'_>,
        resource_id: &str,
        resource_type: &str,
        tags: &[(String, String)],
    ) -> Result<()> {
        if let Some(pg) = self.pg() {
            return pg.set_tags(s, resource_id, resource_type, tags).await;
        }
        self.conn()
            .prepare_cached(
                "DELETE FROM tags WHERE account = ? AND region = ? AND resource_id = ?",
            )?
            .execute(params![s.account, s.region, resource_id])?;
        let mut insert = self.conn().prepare_cached(
            "INSERT INTO tags (account, region, resource_id, resource_type, key, value, seq) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )?;
        for (i, (key, value)) in tags.iter().enumerate() {
            insert.execute(params![
                s.account,
                s.region,
                resource_id,
                resource_type,
                key,
                value,
                i as i64 + 1
            ])?;
        }
        Ok(())
    }

    /// Sets one tag, replacing the value of an existing key.
    pub async fn put_tag(&mut self, s: Scope<'_>, t: &TagRow) -> Result<()> {
        if let Some(pg) = self.pg() {
            return pg.put_tag(s, t).await;
        }
        self.conn()
            .prepare_cached(
                "INSERT INTO tags (account, region, resource_id, resource_type, key, value) \
                 VALUES (?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (account, region, resource_id, key) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![
                s.account,
                s.region,
                t.resource_id,
                t.resource_type,
                t.key,
                t.value
            ])?;
        Ok(())
    }

    /// Removes a tag; with `value`, only if the tag has that value.
    pub async fn delete_tag(
        &mut self,
        s: Scope<'_>,
        resource_id: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<()> {
        if let Some(pg) = self.pg() {
            return pg.delete_tag(s, resource_id, key, value).await;
        }
        self.conn()
            .prepare_cached(
                "DELETE FROM tags WHERE account = ?1 AND region = ?2 AND resource_id = ?3 \
                 AND key = ?4 AND (?5 IS NULL OR value = ?5)",
            )?
            .execute(params![s.account, s.region, resource_id, key, value])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Scope<'static> = Scope {
        account: "000000000000",
        region: "us-east-1",
    };

    fn rec(kind: &str, id: &str, parent: Option<&str>) -> Record {
        Record {
            kind: kind.into(),
            id: id.into(),
            parent: parent.map(Into::into),
            body: format!("{{\"id\":\"{id}\"}}"),
        }
    }

    async fn rolled_back_writes_leave_nothing(store: Store) {
        let mut tx = store.write().await.unwrap();
        tx.insert(S, &rec("vpc", "vpc-1", None)).await.unwrap();
        drop(tx);
        let mut tx = store.read().await.unwrap();
        assert!(tx.get(S, "vpc-1").await.unwrap().is_none());
    }

    async fn get_many_returns_those_that_exist_in_this_scope(store: Store) {
        let mut tx = store.write().await.unwrap();
        for id in ["a", "b", "c"] {
            tx.insert(S, &rec("k", id, None)).await.unwrap();
        }
        let other = Scope {
            region: "eu-west-1",
            ..S
        };
        tx.insert(other, &rec("k", "d", None)).await.unwrap();
        let ids: Vec<String> = ["c", "a", "d", "zz"].map(String::from).to_vec();
        let got: Vec<String> = tx
            .get_many(S, &ids)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(got, ["a", "c"]);
        assert!(tx.get_many(S, &[]).await.unwrap().is_empty());
    }

    async fn insert_children_tags_and_delete(store: Store) {
        let mut tx = store.write().await.unwrap();
        tx.insert(S, &rec("vpc", "vpc-1", None)).await.unwrap();
        tx.insert(S, &rec("subnet", "subnet-2", Some("vpc-1")))
            .await
            .unwrap();
        tx.insert(S, &rec("subnet", "subnet-1", Some("vpc-1")))
            .await
            .unwrap();
        assert!(matches!(
            tx.insert(S, &rec("vpc", "vpc-1", None)).await,
            Err(StoreError::Exists(_))
        ));
        let tag = TagRow {
            resource_id: "vpc-1".into(),
            resource_type: "vpc".into(),
            key: "Name".into(),
            value: "a".into(),
        };
        tx.put_tag(S, &tag).await.unwrap();
        tx.put_tag(
            S,
            &TagRow {
                value: "b".into(),
                ..tag.clone()
            },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();

        let mut tx = store.write().await.unwrap();
        let kids = tx.children(S, "vpc-1", Some("subnet")).await.unwrap();
        assert_eq!(
            kids.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["subnet-1", "subnet-2"]
        );
        assert_eq!(tx.tags_of(S, "vpc-1").await.unwrap()[0].value, "b");
        tx.delete_tag(S, "vpc-1", "Name", Some("a")).await.unwrap();
        assert_eq!(
            tx.tags(S, Some("vpc")).await.unwrap().len(),
            1,
            "value mismatch keeps the tag"
        );
        assert!(tx.delete(S, "vpc-1").await.unwrap());
        assert!(
            tx.tags(S, None).await.unwrap().is_empty(),
            "tags go with their resource"
        );
        let other = Scope {
            account: "111111111111",
            region: "us-east-1",
        };
        assert!(
            tx.list(other, "subnet").await.unwrap().is_empty(),
            "accounts are isolated"
        );
    }

    async fn child_where_finds_by_member_through_an_index_it_makes(store: Store) {
        let mut tx = store.write().await.unwrap();
        for (id, parent, name) in [
            ("sg-1", "vpc-1", "web"),
            ("sg-2", "vpc-1", "db"),
            ("sg-3", "vpc-2", "web"),
        ] {
            let body = format!("{{\"GroupId\":\"{id}\",\"GroupName\":\"{name}\"}}");
            tx.insert(
                S,
                &Record {
                    kind: "security-group".into(),
                    id: id.into(),
                    parent: Some(parent.into()),
                    body,
                },
            )
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
        let mut tx = store.read().await.unwrap();
        let before = tx
            .child_where(S, "vpc-1", "security-group", "GroupName", "web")
            .await
            .unwrap();
        assert_eq!(
            before.map(|r| r.id).as_deref(),
            Some("sg-1"),
            "no index yet, same answer"
        );
        drop(tx);
        let mut tx = store.write().await.unwrap();
        let hit = tx
            .child_where(S, "vpc-2", "security-group", "GroupName", "web")
            .await
            .unwrap();
        assert_eq!(hit.map(|r| r.id).as_deref(), Some("sg-3"));
        let miss = tx
            .child_where(S, "vpc-2", "security-group", "GroupName", "db")
            .await
            .unwrap();
        assert!(miss.is_none(), "a name in another parent is not found");
        if store.backend() == "sqlite" {
            let plan: String = tx
                .conn()
                .query_row(
                    &format!(
                        "EXPLAIN QUERY PLAN {}",
                        child_where_sql("security-group", "json_extract(body, '$.\"GroupName\"')")
                    ),
                    params![S.account, S.region, "vpc-1", "web"],
                    |r| r.get(3),
                )
                .unwrap();
            assert!(
                plan.contains("resources_security_group_GroupName"),
                "{plan}"
            );
        }
        tx.commit().await.unwrap();
    }

    async fn lookups_by_member_count_list_and_find_the_range_below(store: Store) {
        let mut tx = store.write().await.unwrap();
        // Subnets of vpc-1 keyed by their first address; one written before the member existed.
        for (id, parent, body) in [
            (
                "subnet-1",
                "vpc-1",
                r#"{"First":100,"Zone":"a","Default":true}"#,
            ),
            (
                "subnet-2",
                "vpc-1",
                r#"{"First":200,"Zone":"b","Default":false}"#,
            ),
            (
                "subnet-3",
                "vpc-1",
                r#"{"First":300,"Zone":"a","Default":true}"#,
            ),
            ("subnet-4", "vpc-1", r#"{"Zone":"a"}"#),
            (
                "subnet-5",
                "vpc-2",
                r#"{"First":250,"Zone":"a","Default":true}"#,
            ),
        ] {
            let rec = Record {
                kind: "subnet".into(),
                id: id.into(),
                parent: Some(parent.into()),
                body: body.into(),
            };
            tx.insert(S, &rec).await.unwrap();
        }
        let ids = |v: Vec<Record>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(
            tx.count_where(S, "vpc-1", "subnet", "Zone", "a")
                .await
                .unwrap(),
            3
        );
        assert_eq!(
            tx.count_where(S, "vpc-1", "subnet", "Zone", "c")
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            ids(tx
                .children_where(S, "vpc-1", "subnet", "Default", true)
                .await
                .unwrap()),
            ["subnet-1", "subnet-3"]
        );
        assert_eq!(
            ids(tx
                .children_where(S, "vpc-1", "subnet", "First", Key::Missing)
                .await
                .unwrap()),
            ["subnet-4"]
        );
        let mut below = Vec::new();
        for n in [99, 100, 299, 1000] {
            let found = tx
                .child_at_most(S, "vpc-1", "subnet", "First", n)
                .await
                .unwrap();
            below.push(found.map(|r| r.id));
        }
        let below: Vec<Option<&str>> = below.iter().map(|r| r.as_deref()).collect();
        // 299 finds subnet-2, not vpc-2's 250.
        assert_eq!(
            below,
            [None, Some("subnet-1"), Some("subnet-2"), Some("subnet-3")]
        );
        if store.backend() == "sqlite" {
            // Each lookup goes through the member's index, whatever the key (a NULL included).
            let plan = |sql: String, key: Key<'_>| -> String {
                tx.conn()
                    .query_row(
                        &format!("EXPLAIN QUERY PLAN {sql}"),
                        params![S.account, S.region, "vpc-1", key],
                        |r| r.get(3),
                    )
                    .unwrap()
            };
            for (field, key) in [("First", Key::Missing), ("Default", Key::Bool(true))] {
                let member = format!("json_extract(body, '$.\"{field}\"')");
                let p = plan(children_where_sql("subnet", &member), key);
                assert!(
                    p.contains(&format!("resources_subnet_{field}")),
                    "{field}: {p}"
                );
            }
            let zone = "json_extract(body, '$.\"Zone\"')";
            let p = plan(
                member_sql("COUNT(*)", "subnet", zone, Cmp::Is, ""),
                Key::Text("a"),
            );
            assert!(p.contains("resources_subnet_Zone"), "count: {p}");
            let first = "json_extract(body, '$.\"First\"')";
            let p = plan(
                member_sql("id", "subnet", first, Cmp::AtMost, "LIMIT 1"),
                Key::Int(5),
            );
            assert!(p.contains("resources_subnet_First"), "at most: {p}");
        }
        tx.commit().await.unwrap();
    }

    async fn find_where_looks_across_parents_and_into_nested_members(store: Store) {
        let mut tx = store.write().await.unwrap();
        for (id, parent, body) in [
            (
                "eni-1",
                "subnet-1",
                r#"{"Attachment":{"InstanceId":"i-1"}}"#,
            ),
            (
                "eni-2",
                "subnet-2",
                r#"{"Attachment":{"InstanceId":"i-1"}}"#,
            ),
            (
                "eni-3",
                "subnet-1",
                r#"{"Attachment":{"InstanceId":"i-2"}}"#,
            ),
            ("eni-4", "subnet-1", r#"{}"#),
        ] {
            let rec = Record {
                kind: "network-interface".into(),
                id: id.into(),
                parent: Some(parent.into()),
                body: body.into(),
            };
            tx.insert(S, &rec).await.unwrap();
        }
        let found = tx
            .find_where(S, "network-interface", "Attachment.InstanceId", "i-1")
            .await
            .unwrap();
        let ids: Vec<_> = found.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["eni-1", "eni-2"]);
        if store.backend() == "sqlite" {
            let member = tx
                .index("network-interface", "Attachment.InstanceId", false)
                .unwrap();
            let plan: String = tx
                .conn()
                .query_row(
                    &format!(
                        "EXPLAIN QUERY PLAN {}",
                        find_where_sql("network-interface", &member)
                    ),
                    params![S.account, S.region, "i-1"],
                    |r| r.get(3),
                )
                .unwrap();
            assert!(
                plan.contains("resources_network_interface_Attachment_InstanceId_any"),
                "{plan}"
            );
        }
        tx.commit().await.unwrap();
    }

    async fn json_lists_come_in_id_order(store: Store) {
        let mut tx = store.write().await.unwrap();
        for id in ["subnet-c", "subnet-a", "subnet-d", "subnet-b"] {
            tx.insert(S, &rec("subnet", id, Some("vpc-1")))
                .await
                .unwrap();
        }
        tx.insert(S, &rec("subnet", "subnet-0", Some("vpc-2")))
            .await
            .unwrap();
        tx.insert(S, &rec("vpc", "vpc-1", None)).await.unwrap();
        tx.commit().await.unwrap();
        let mut tx = store.read().await.unwrap();
        let all = tx.list_json(S, "subnet").await.unwrap();
        assert_eq!(
            ids_of(&all),
            ["subnet-0", "subnet-a", "subnet-b", "subnet-c", "subnet-d"]
        );
        let kids = tx.children_json(S, "vpc-1", "subnet").await.unwrap();
        assert_eq!(
            ids_of(&kids),
            ["subnet-a", "subnet-b", "subnet-c", "subnet-d"]
        );
        assert_eq!(tx.children_json(S, "vpc-9", "subnet").await.unwrap(), "[]");
    }

    #[tokio::test]
    async fn file_store_survives_reopen() {
        let dir = std::env::temp_dir().join(format!("kumori-store-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        {
            let store = Store::open_dir(&dir).await.unwrap();
            let mut tx = store.write().await.unwrap();
            tx.insert(S, &rec("vpc", "vpc-9", None)).await.unwrap();
            tx.commit().await.unwrap();
            store.close().await;
        }
        let store = Store::open_dir(&dir).await.unwrap();
        let mut tx = store.read().await.unwrap();
        assert_eq!(tx.list(S, "vpc").await.unwrap().len(), 1);
        drop(tx);
        store.close().await;
        std::fs::remove_dir_all(&dir).unwrap();
    }

    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

    /// The ids of a kind, as a snapshot; counts its full decodes and patches in `LOADS` and
    /// `PATCHES` (only the one test that reads them uses this type).
    #[derive(Clone, Debug)]
    struct Ids(std::collections::BTreeSet<String>);

    // Per test thread: the test runs once per backend, each on a thread of its own.
    thread_local! {
        static LOADS: AtomicUsize = const { AtomicUsize::new(0) };
        static PATCHES: AtomicUsize = const { AtomicUsize::new(0) };
    }

    fn ids_of(array: &str) -> Vec<String> {
        let docs: Vec<serde_json::Value> = serde_json::from_str(array).unwrap();
        docs.iter()
            .map(|d| d["id"].as_str().unwrap().to_string())
            .collect()
    }

    impl Snapshot for Ids {
        type Error = StoreError;
        fn load(all: &str) -> Result<Self> {
            LOADS.with(|n| n.fetch_add(1, SeqCst));
            Ok(Ids(ids_of(all).into_iter().collect()))
        }
        fn patch(&mut self, deleted: &[String], changed: &str) -> Result<()> {
            PATCHES.with(|n| n.fetch_add(1, SeqCst));
            for d in deleted {
                self.0.remove(d);
            }
            self.0.extend(ids_of(changed));
            Ok(())
        }
    }

    async fn ids(tx: &mut Tx) -> Vec<String> {
        let v: Arc<Ids> = tx.snapshot(S, "vpc").await.unwrap();
        v.0.iter().cloned().collect()
    }

    /// The same without counting, for tests that may run beside the counting one.
    #[derive(Clone, Debug)]
    struct PlainIds(std::collections::BTreeSet<String>);

    impl Snapshot for PlainIds {
        type Error = StoreError;
        fn load(all: &str) -> Result<Self> {
            Ok(PlainIds(ids_of(all).into_iter().collect()))
        }
        fn patch(&mut self, deleted: &[String], changed: &str) -> Result<()> {
            for d in deleted {
                self.0.remove(d);
            }
            self.0.extend(ids_of(changed));
            Ok(())
        }
    }

    async fn plain_ids(tx: &mut Tx) -> Vec<String> {
        let v: Arc<PlainIds> = tx.snapshot(S, "vpc").await.unwrap();
        v.0.iter().cloned().collect()
    }

    async fn write(store: &Store, ops: &[(&str, bool)]) -> Tx {
        let mut tx = store.write().await.unwrap();
        for (id, add) in ops {
            if *add {
                tx.insert(S, &rec("vpc", id, None)).await.unwrap();
            } else {
                assert!(tx.delete(S, id).await.unwrap());
            }
        }
        tx
    }

    async fn snapshots_are_reused_and_patched_from_what_changed(store: Store) {
        let counts = || {
            (
                LOADS.with(|n| n.load(SeqCst)),
                PATCHES.with(|n| n.load(SeqCst)),
            )
        };
        write(&store, &[("vpc-1", true)])
            .await
            .commit()
            .await
            .unwrap();
        let read = || async { store.read().await.unwrap() };
        assert_eq!(ids(&mut read().await).await, ["vpc-1"]);
        assert_eq!(ids(&mut read().await).await, ["vpc-1"]);
        assert_eq!(counts(), (1, 0), "the second read reuses the first");

        // A write sees its own uncommitted change; once rolled back, nobody does, and the
        // snapshot stays good.
        let mut tx = write(&store, &[("vpc-2", true)]).await;
        assert_eq!(ids(&mut tx).await, ["vpc-1", "vpc-2"]);
        drop(tx);
        assert_eq!(ids(&mut read().await).await, ["vpc-1"]);
        assert_eq!(
            counts(),
            (2, 0),
            "writes decode afresh; the cache is untouched"
        );

        // Other kinds leave it alone; inserts, updates and deletes of the kind are patched in.
        let mut tx = store.write().await.unwrap();
        tx.insert(S, &rec("subnet", "subnet-1", Some("vpc-1")))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(ids(&mut read().await).await, ["vpc-1"]);
        assert_eq!(counts(), (2, 0));
        write(&store, &[("vpc-3", true)])
            .await
            .commit()
            .await
            .unwrap();
        assert_eq!(ids(&mut read().await).await, ["vpc-1", "vpc-3"]);
        write(&store, &[("vpc-1", false), ("vpc-4", true)])
            .await
            .commit()
            .await
            .unwrap();
        assert_eq!(ids(&mut read().await).await, ["vpc-3", "vpc-4"]);
        // Deleted and made again under the same id, in one transaction and across two.
        write(&store, &[("vpc-3", false), ("vpc-3", true)])
            .await
            .commit()
            .await
            .unwrap();
        write(&store, &[("vpc-4", false)])
            .await
            .commit()
            .await
            .unwrap();
        write(&store, &[("vpc-4", true)])
            .await
            .commit()
            .await
            .unwrap();
        assert_eq!(ids(&mut read().await).await, ["vpc-3", "vpc-4"]);
        assert_eq!(
            counts(),
            (2, 3),
            "three refreshes, each a patch, no full decode"
        );

        // Reset leaves no tombstones: the next read decodes afresh.
        store.reset().await.unwrap();
        assert!(ids(&mut read().await).await.is_empty());
        assert_eq!(counts().0, 3);

        // After many generations old tombstones go; a decode that old starts over, and
        // stays right.
        write(&store, &[("vpc-old", true)])
            .await
            .commit()
            .await
            .unwrap();
        assert_eq!(ids(&mut read().await).await, ["vpc-old"]);
        let loads = counts().0;
        for i in 0..(TOMBSTONE_GENERATIONS + 3) {
            let id = format!("vpc-x{i}");
            write(&store, &[(id.as_str(), true)])
                .await
                .commit()
                .await
                .unwrap();
            write(&store, &[(id.as_str(), false)])
                .await
                .commit()
                .await
                .unwrap();
        }
        write(&store, &[("vpc-old", false)])
            .await
            .commit()
            .await
            .unwrap();
        assert!(ids(&mut read().await).await.is_empty());
        assert_eq!(counts().0, loads + 1, "the floor passed the cached decode");
    }

    async fn a_dropped_write_frees_the_lock_for_another_process(a: Store, b: Store) {
        let mut tx = a.write().await.unwrap();
        tx.insert(S, &rec("vpc", "vpc-gone", None)).await.unwrap();
        drop(tx);
        // The rollback runs on a task; the other process gets the lock long before its busy
        // timeout (10 s), and sees nothing of the dropped write.
        let started = std::time::Instant::now();
        let mut tx = b.write().await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(3));
        assert!(tx.get(S, "vpc-gone").await.unwrap().is_none());
        tx.insert(S, &rec("vpc", "vpc-kept", None)).await.unwrap();
        tx.commit().await.unwrap();
        // The first process writes again, on a connection with no transaction left open.
        let mut tx = a.write().await.unwrap();
        assert!(tx.get(S, "vpc-kept").await.unwrap().is_some());
        tx.insert(S, &rec("vpc", "vpc-also", None)).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(
            plain_ids(&mut b.read().await.unwrap()).await,
            ["vpc-also", "vpc-kept"]
        );
        a.close().await;
        b.close().await;
    }

    async fn a_writer_waits_for_another_process_without_holding_the_runtime(a: Store, b: Store) {
        let mut held = a.write().await.unwrap();
        held.insert(S, &rec("vpc", "vpc-first", None))
            .await
            .unwrap();
        // On this one-thread runtime the waiting writer must yield while it waits, or the
        // holder below never runs to commit.
        let waiting = tokio::spawn(async move {
            let mut tx = b.write().await.unwrap();
            let seen = tx.get(S, "vpc-first").await.unwrap().is_some();
            tx.insert(S, &rec("vpc", "vpc-second", None)).await.unwrap();
            tx.commit().await.unwrap();
            b.close().await;
            seen
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiting.is_finished(), "the lock is still held");
        held.commit().await.unwrap();
        assert!(
            waiting.await.unwrap(),
            "the second writer saw the first's commit"
        );
        assert_eq!(
            plain_ids(&mut a.read().await.unwrap()).await,
            ["vpc-first", "vpc-second"]
        );
        a.close().await;
    }

    async fn snapshots_follow_commits_of_another_process(a: Store, b: Store) {
        write(&a, &[("vpc-1", true)]).await.commit().await.unwrap();
        assert_eq!(plain_ids(&mut b.read().await.unwrap()).await, ["vpc-1"]);
        write(&a, &[("vpc-2", true), ("vpc-1", false)])
            .await
            .commit()
            .await
            .unwrap();
        assert_eq!(plain_ids(&mut b.read().await.unwrap()).await, ["vpc-2"]);
        a.close().await;
        b.close().await;
    }

    /// A PostgreSQL store in a schema of its own, on the server the test script started
    /// (`KUMORI_TEST_DATABASE_URL`); `None`, said aloud, without one, unless the suite
    /// requires it (`KUMORI_REQUIRE_POSTGRES=1`, as scripts/test sets).
    async fn pg_store(schema: &str) -> Option<Store> {
        let Ok(url) = std::env::var("KUMORI_TEST_DATABASE_URL") else {
            assert!(
                std::env::var("KUMORI_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "KUMORI_TEST_DATABASE_URL is not set but KUMORI_REQUIRE_POSTGRES=1"
            );
            eprintln!("SKIPPED: no PostgreSQL (set KUMORI_TEST_DATABASE_URL)");
            return None;
        };
        Some(Store::open_postgres(&url, Some(schema)).await.unwrap())
    }

    /// A schema no other run uses.
    fn schema(test: &str) -> String {
        format!(
            "rs_{}_{}_{}",
            &test[..test.len().min(30)],
            std::process::id(),
            rand_suffix()
        )
    }

    fn rand_suffix() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos() as u64
    }

    /// Each test on SQLite in memory and on PostgreSQL.
    macro_rules! on_both {
        ($($name:ident),* $(,)?) => { $(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    super::$name(super::Store::open_memory().await.unwrap()).await
                }
                #[tokio::test]
                async fn postgres() {
                    if let Some(s) = super::pg_store(&super::schema(stringify!($name))).await {
                        super::$name(s).await
                    }
                }
            }
        )* };
    }

    /// Each test with two stores on one database, standing for two kumori processes: two
    /// SQLite stores on one file, or two PostgreSQL stores on one schema.
    macro_rules! two_processes {
        ($($name:ident),* $(,)?) => { $(
            mod $name {
                use super::Store;
                #[tokio::test]
                async fn sqlite() {
                    let dir = std::env::temp_dir().join(format!(
                        "kumori-store-{}-{}",
                        stringify!($name),
                        std::process::id()
                    ));
                    let _ = std::fs::remove_dir_all(&dir);
                    let a = Store::open_dir(&dir).await.unwrap();
                    let b = Store::open_dir(&dir).await.unwrap();
                    super::$name(a, b).await;
                    std::fs::remove_dir_all(&dir).unwrap();
                }
                #[tokio::test]
                async fn postgres() {
                    let schema = super::schema(stringify!($name));
                    let Some(a) = super::pg_store(&schema).await else { return };
                    let b = super::pg_store(&schema).await.unwrap();
                    super::$name(a, b).await
                }
            }
        )* };
    }

    async fn leases_go_to_one_holder_until_they_run_out(store: Store) {
        let ttl = Duration::from_millis(300);
        assert!(store.lease("sweep", "a", ttl).await.unwrap());
        assert!(!store.lease("sweep", "b", ttl).await.unwrap(), "a holds it");
        assert!(store.lease("sweep", "a", ttl).await.unwrap(), "a renews");
        assert!(
            store.lease("other", "b", ttl).await.unwrap(),
            "leases are per name"
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(store.lease("sweep", "b", ttl).await.unwrap(), "a's ran out");
        assert!(
            !store.lease("sweep", "a", ttl).await.unwrap(),
            "b holds it now"
        );
    }

    async fn set_tags_keeps_their_order_and_replaces_the_set(store: Store) {
        let mut tx = store.write().await.unwrap();
        let t = |k: &str, v: &str| (k.to_string(), v.to_string());
        tx.set_tags(S, "user/a", "user", &[t("zeta", "1"), t("Alpha", "2")])
            .await
            .unwrap();
        let keys = |rows: Vec<TagRow>| rows.into_iter().map(|r| r.key).collect::<Vec<_>>();
        assert_eq!(
            keys(tx.tags_of(S, "user/a").await.unwrap()),
            ["zeta", "Alpha"]
        );
        tx.set_tags(S, "user/a", "user", &[t("b", "3")])
            .await
            .unwrap();
        assert_eq!(keys(tx.tags_of(S, "user/a").await.unwrap()), ["b"]);
        assert_eq!(keys(tx.tags(S, Some("user")).await.unwrap()), ["b"]);
        tx.set_tags(S, "user/a", "user", &[]).await.unwrap();
        assert!(tx.tags_of(S, "user/a").await.unwrap().is_empty());
    }

    async fn scopes_with_names_each_account_and_region_once(store: Store) {
        let mut tx = store.write().await.unwrap();
        let eu = Scope {
            region: "eu-west-1",
            ..S
        };
        tx.insert(S, &rec("vpc", "vpc-1", None)).await.unwrap();
        tx.insert(S, &rec("vpc", "vpc-2", None)).await.unwrap();
        tx.insert(eu, &rec("vpc", "vpc-3", None)).await.unwrap();
        tx.insert(eu, &rec("subnet", "subnet-1", None))
            .await
            .unwrap();
        let scopes = tx.scopes_with("vpc").await.unwrap();
        let want = [
            (S.account.to_string(), "eu-west-1".to_string()),
            (S.account.to_string(), "us-east-1".to_string()),
        ];
        assert_eq!(scopes, want);
        assert_eq!(tx.scopes_with("subnet").await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn postgres_lookups_by_member_use_the_member_index() {
        let Some(store) = pg_store(&schema("plans")).await else {
            return;
        };
        let mut tx = store.write().await.unwrap();
        for (id, parent, body) in [
            ("subnet-1", "vpc-1", r#"{"First":100,"Zone":"a"}"#),
            ("subnet-2", "vpc-1", r#"{"First":200,"Zone":"b"}"#),
            (
                "eni-1",
                "subnet-1",
                r#"{"Attachment":{"InstanceId":"i-1"}}"#,
            ),
        ] {
            let kind = if id.starts_with("eni") {
                "network-interface"
            } else {
                "subnet"
            };
            let rec = Record {
                kind: kind.into(),
                id: id.into(),
                parent: Some(parent.into()),
                body: body.into(),
            };
            tx.insert(S, &rec).await.unwrap();
        }
        tx.pg().unwrap().explain().await.unwrap();
        let found = tx
            .child_where(S, "vpc-1", "subnet", "Zone", "b")
            .await
            .unwrap();
        assert_eq!(found.map(|r| r.id).as_deref(), Some("subnet-2"));
        tx.children_where(S, "vpc-1", "subnet", "Zone", Key::Missing)
            .await
            .unwrap();
        tx.count_where(S, "vpc-1", "subnet", "Zone", "a")
            .await
            .unwrap();
        let below = tx
            .child_at_most(S, "vpc-1", "subnet", "First", 150)
            .await
            .unwrap();
        assert_eq!(below.map(|r| r.id).as_deref(), Some("subnet-1"));
        let enis = tx
            .find_where(S, "network-interface", "Attachment.InstanceId", "i-1")
            .await
            .unwrap();
        assert_eq!(enis.len(), 1);
        let plans = tx.pg().unwrap().plans.take().unwrap();
        let want = [
            "resources_subnet_zone ",
            "resources_subnet_zone ",
            "resources_subnet_zone ",
            "resources_subnet_first_num ",
            "resources_network_interface_attachment_instanceid_any ",
        ];
        assert_eq!(plans.len(), want.len(), "{plans:#?}");
        for (plan, index) in plans.iter().zip(want) {
            assert!(plan.contains(index), "not through {index}:\n{plan}");
        }
    }

    on_both!(
        set_tags_keeps_their_order_and_replaces_the_set,
        leases_go_to_one_holder_until_they_run_out,
        scopes_with_names_each_account_and_region_once,
        rolled_back_writes_leave_nothing,
        get_many_returns_those_that_exist_in_this_scope,
        insert_children_tags_and_delete,
        child_where_finds_by_member_through_an_index_it_makes,
        lookups_by_member_count_list_and_find_the_range_below,
        find_where_looks_across_parents_and_into_nested_members,
        json_lists_come_in_id_order,
        snapshots_are_reused_and_patched_from_what_changed
    );
    two_processes!(
        a_dropped_write_frees_the_lock_for_another_process,
        a_writer_waits_for_another_process_without_holding_the_runtime,
        snapshots_follow_commits_of_another_process
    );
}
