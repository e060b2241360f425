//! kumori's database engine: a real database server behind every RDS DB instance.
//!
//! The engine is told what should exist (`Engine::apply` with one `Spec` per instance) and
//! makes it so, idempotently: a data directory per instance under its root, a server
//! process on the instance's port of 127.0.0.1, a streaming standby beside it for Multi-AZ,
//! a read-only follower for a read replica. One task supervises each instance: it restarts
//! a server that died (counted in `Status::restarts`), carries out reboots and failovers
//! asked by raising a counter in the spec, and stops and removes everything when the spec
//! goes. What it decided is kept beside the data (`kumori.json`), so a restarted kumori
//! takes every instance up again where it was.
//!
//! `postgres` is served by PostgreSQL, `mysql` and `mariadb` by MariaDB (wire-compatible
//! with MySQL's clients); the engines' differences live in `postgres.rs` and `mariadb.rs`.

mod mariadb;
mod postgres;
pub mod process;

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::process::Child;
use tokio::sync::watch;

/// Which server runs an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    Postgres,
    Mariadb,
}

/// How a new instance's data begins.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Origin {
    /// A new, empty database with the master user.
    Empty,
    /// A copy of a snapshot's data directory (made by `Engine::snapshot`).
    Snapshot(PathBuf),
    /// A copy of another instance's data that then follows it (a read replica).
    ReplicaOf(String),
    /// A snapshot's copy replayed forward from archived write-ahead log to `target` (an ISO
    /// time; to the end of what was written when `None`): point-in-time restore.
    /// PostgreSQL only.
    PointInTime {
        base: PathBuf,
        wal: Vec<PathBuf>,
        target: Option<String>,
    },
}

/// What one instance should be.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Spec {
    /// Its directory's name: stable for the instance's life (RDS's `DbiResourceId`).
    pub id: String,
    pub kind: Kind,
    /// The port asked for; another is taken when it is in use (see `Status::port`).
    pub port: u16,
    pub user: String,
    pub password: String,
    pub database: Option<String>,
    /// Whether the server should be running (false: stopped, data kept).
    pub run: bool,
    pub origin: Origin,
    /// Multi-AZ: keep a streaming standby that a failover promotes.
    pub standby: bool,
    /// Failovers asked for; when more than were done, the standby takes over.
    pub failovers: u64,
    /// Reboots asked for; when more than were done, the server restarts.
    pub reboots: u64,
    /// Server settings from the parameter group (PostgreSQL: reloaded at once, so dynamic
    /// ones apply; static ones and all of MariaDB's at the next start).
    pub parameters: Vec<(String, String)>,
    /// A replica that should stop following its source and accept writes.
    pub promote: bool,
}

impl Spec {
    /// A digest of the whole spec: `Status::converged` names the spec last carried out.
    pub fn digest(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.hash(&mut h);
        h.finish()
    }
}

/// Where an instance is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum State {
    Creating,
    Running,
    Stopped,
    Failed(String),
}

/// What the engine reports of one instance.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub id: String,
    pub state: State,
    /// The port it listens on (or will, when stopped).
    pub port: Option<u16>,
    pub failovers: u64,
    pub reboots: u64,
    /// Times its server died and was started again.
    pub restarts: u64,
    /// Whether a standby is streaming beside it.
    pub standby: bool,
    pub promoted: bool,
    /// The digest of the spec last carried out (`Spec::digest`).
    pub converged: u64,
}

/// What the engine keeps beside an instance's data.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Meta {
    /// Which of `a` and `b` holds the primary's data.
    primary: String,
    port: u16,
    /// The port the spec asked for when `port` was chosen (they differ when it was taken).
    #[serde(default)]
    asked: u16,
    /// The password of kumori's replication user on this server.
    repl: String,
    bootstrapped: bool,
    failovers: u64,
    reboots: u64,
    password: String,
    #[serde(default)]
    parameters: Vec<(String, String)>,
    #[serde(default)]
    follows: bool,
    /// Replaying archived log toward a point in time; promoted when done.
    #[serde(default)]
    recovering: bool,
}

/// The servers' programs, found once.
#[derive(Debug, Clone)]
pub struct Programs {
    pub postgres: Option<PathBuf>,
    pub mariadb: Option<PathBuf>,
}

impl Programs {
    pub fn find() -> Programs {
        Programs {
            postgres: postgres::bin_dir(),
            mariadb: process::find("mariadbd", &[PathBuf::from("/usr/sbin")])
                .and_then(|p| p.parent().map(Path::to_path_buf)),
        }
    }

    /// Why `kind` cannot run here, naming the Debian package that brings it.
    pub fn missing(&self, kind: Kind) -> Option<String> {
        match kind {
            Kind::Postgres if self.postgres.is_none() => Some(
                "PostgreSQL's server (initdb, postgres) is not installed: apt-get install postgresql"
                    .into(),
            ),
            Kind::Postgres if process::is_root() && process::user("postgres").is_none() => Some(
                "PostgreSQL will not run as root and there is no postgres user: apt-get install postgresql"
                    .into(),
            ),
            Kind::Mariadb if self.mariadb.is_none() => Some(
                "MariaDB's server (mariadbd) is not installed: apt-get install mariadb-server mariadb-client mariadb-backup"
                    .into(),
            ),
            _ => None,
        }
    }
}

struct Instance {
    dir: PathBuf,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    spec: watch::Sender<Option<Spec>>,
    status: Mutex<Status>,
    /// Held while the instance is being changed, and while a snapshot copies it.
    busy: tokio::sync::Mutex<()>,
}

/// The engine: every instance under one root directory.
pub struct Engine {
    root: PathBuf,
    /// The port each server of this engine has (by instance id, `id/standby` for a standby),
    /// so that instances made at once never pick the same one.
    ports: Mutex<HashMap<String, u16>>,
    /// Set when kumori stops: servers stop, their data stays.
    halting: std::sync::atomic::AtomicBool,
    programs: Programs,
    instances: Mutex<HashMap<String, Arc<Instance>>>,
}

impl Engine {
    /// An engine keeping its instances under `root` (made when first needed).
    pub fn new(root: PathBuf) -> Arc<Engine> {
        Arc::new(Engine {
            root,
            ports: Mutex::new(HashMap::new()),
            halting: std::sync::atomic::AtomicBool::new(false),
            programs: Programs::find(),
            instances: Mutex::new(HashMap::new()),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn programs(&self) -> &Programs {
        &self.programs
    }

    /// Makes the instances `specs` describe exist, and removes every other one.
    pub fn apply(self: &Arc<Self>, specs: Vec<Spec>) {
        if self.halting.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let mut map = self.instances.lock().expect("instances");
        let wanted: std::collections::HashSet<String> =
            specs.iter().map(|s| s.id.clone()).collect();
        for spec in specs {
            match map.get(&spec.id) {
                Some(i) => {
                    i.spec.send_if_modified(|cur| {
                        if cur.as_ref() == Some(&spec) {
                            false
                        } else {
                            *cur = Some(spec.clone());
                            true
                        }
                    });
                }
                None => {
                    let (tx, _) = watch::channel(Some(spec.clone()));
                    let inst = Arc::new(Instance {
                        dir: self.root.join(&spec.id),
                        spec: tx,
                        status: Mutex::new(Status {
                            id: spec.id.clone(),
                            state: State::Creating,
                            port: None,
                            failovers: 0,
                            reboots: 0,
                            restarts: 0,
                            standby: false,
                            promoted: false,
                            converged: 0,
                        }),
                        busy: tokio::sync::Mutex::new(()),
                        task: Mutex::new(None),
                    });
                    map.insert(spec.id.clone(), inst.clone());
                    let engine = self.clone();
                    let task = tokio::spawn({
                        let inst = inst.clone();
                        async move { engine.supervise(inst).await }
                    });
                    *inst.task.lock().expect("task") = Some(task);
                }
            }
        }
        // Directories left by instances that no longer exist (deleted while kumori was
        // down) go too, once no task owns them.
        for (id, inst) in map.iter() {
            if !wanted.contains(id) {
                inst.spec.send_replace(None);
            }
        }
        map.retain(|id, _| wanted.contains(id));
        if let Ok(entries) = std::fs::read_dir(&self.root) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if name.starts_with("db-")
                    && !wanted.contains(&name)
                    && e.path().join("kumori.json").exists()
                {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
    }

    /// Stops every server (keeping its data) and waits for them; `apply` does nothing after.
    pub async fn shutdown(&self) {
        self.halting
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let all: Vec<Arc<Instance>> = self
            .instances
            .lock()
            .expect("instances")
            .drain()
            .map(|(_, i)| i)
            .collect();
        for i in &all {
            i.spec.send_replace(None);
        }
        for i in all {
            let task = i.task.lock().expect("task").take();
            if let Some(t) = task {
                let _ = t.await;
            }
        }
    }

    /// A port for `key`: `wanted` when no other server of this engine has it and nothing on
    /// the machine listens there, else one the system picks; kept for `key` until released.
    fn pick(&self, key: &str, wanted: u16) -> u16 {
        let mut ports = self.ports.lock().expect("ports");
        let taken: std::collections::HashSet<u16> = ports
            .iter()
            .filter(|(k, _)| k.as_str() != key)
            .map(|(_, p)| *p)
            .collect();
        let mut candidate = wanted;
        for _ in 0..20 {
            if candidate != 0 && !taken.contains(&candidate) && procs_port_free(candidate) {
                break;
            }
            candidate = process::port_near(0);
        }
        ports.insert(key.to_string(), candidate);
        candidate
    }

    fn release(&self, id: &str) {
        let standby = format!("{id}/standby");
        self.ports
            .lock()
            .expect("ports")
            .retain(|k, _| k != id && *k != standby);
    }

    /// What each instance is doing.
    pub fn status(&self) -> Vec<Status> {
        let map = self.instances.lock().expect("instances");
        map.values()
            .map(|i| i.status.lock().expect("status").clone())
            .collect()
    }

    /// Copies instance `id`'s data, consistent, into `dest` (a new directory), which a
    /// `Origin::Snapshot` later starts from: a base backup of the running server, or a copy
    /// of a stopped one's files.
    pub async fn snapshot(&self, id: &str, dest: &Path) -> Result<(), String> {
        let inst = self
            .instances
            .lock()
            .expect("instances")
            .get(id)
            .cloned()
            .ok_or_else(|| format!("no database {id} here"))?;
        let spec = inst.spec.borrow().clone().ok_or("being deleted")?;
        let _busy = inst.busy.lock().await;
        let meta = read_meta(&inst.dir).ok_or("not made yet")?;
        let running = inst.status.lock().expect("status").state == State::Running;
        let tmp = dest.with_extension("partial");
        let _ = std::fs::remove_dir_all(&tmp);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        let data = inst.dir.join(&meta.primary);
        let log = inst.dir.join("snapshot.log");
        let result = match spec.kind {
            Kind::Postgres => {
                let s = postgres::Server::new(&self.programs)?;
                std::fs::create_dir_all(&tmp).map_err(|e| e.to_string())?;
                if running {
                    s.base_backup(meta.port, &meta.repl, &tmp.join("data"), false, &log)
                        .await
                } else {
                    s.copy(&data, &tmp.join("data"), &log).await
                }
            }
            Kind::Mariadb => {
                let s = mariadb::Server::new(&self.programs)?;
                if running {
                    s.backup(&inst.dir, &meta.primary, &tmp, &log).await
                } else {
                    s.copy(&data, &tmp, &log).await
                }
            }
        };
        let result = result.and_then(|_| write_meta(&tmp, &meta));
        if let Err(e) = result {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        std::fs::rename(&tmp, dest).map_err(|e| e.to_string())
    }

    async fn supervise(self: Arc<Self>, inst: Arc<Instance>) {
        let mut rx = inst.spec.subscribe();
        let mut procs = Procs::default();
        // Failures in a row: one alone (a port another process took between our choosing
        // and the server's binding) is tried again before anyone is told.
        let mut failures = 0u32;
        loop {
            let spec = rx.borrow_and_update().clone();
            let Some(spec) = spec else {
                let _busy = inst.busy.lock().await;
                procs.stop_all().await;
                if let Some(name) = inst.dir.file_name() {
                    self.release(&name.to_string_lossy());
                }
                if !self.halting.load(std::sync::atomic::Ordering::SeqCst) {
                    let _ = tokio::fs::remove_dir_all(&inst.dir).await;
                }
                return;
            };
            let result = {
                let _busy = inst.busy.lock().await;
                self.converge(&inst, &spec, &mut procs).await
            };
            match result {
                Ok(()) => {
                    failures = 0;
                    inst.status.lock().expect("status").converged = spec.digest()
                }
                // Waiting on another instance (a replica's source) is no failure.
                Err(e) if e.starts_with("waiting") => {
                    inst.status.lock().expect("status").state = State::Creating
                }
                Err(e) => {
                    tracing::warn!("database {}: {e}", spec.id);
                    failures += 1;
                    if failures >= FAILURES_TOLD {
                        inst.status.lock().expect("status").state = State::Failed(e);
                    }
                }
            }
            tokio::select! {
                _ = rx.changed() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    fn set(&self, inst: &Instance, f: impl FnOnce(&mut Status)) {
        f(&mut inst.status.lock().expect("status"));
    }

    async fn converge(
        &self,
        inst: &Instance,
        spec: &Spec,
        procs: &mut Procs,
    ) -> Result<(), String> {
        if let Some(why) = self.programs.missing(spec.kind) {
            return Err(why);
        }
        let kind: Box<dyn Server> = match spec.kind {
            Kind::Postgres => Box::new(postgres::Server::new(&self.programs)?),
            Kind::Mariadb => Box::new(mariadb::Server::new(&self.programs)?),
        };
        procs.quick = Some(match spec.kind {
            Kind::Postgres => libc::SIGINT,
            Kind::Mariadb => libc::SIGTERM,
        });
        let mut meta = match read_meta(&inst.dir) {
            Some(m) => m,
            None => {
                if let Err(e) = self.create(inst, spec, kind.as_ref()).await {
                    // Nothing half made: the next try starts from nothing.
                    let _ = tokio::fs::remove_dir_all(&inst.dir).await;
                    return Err(e);
                }
                read_meta(&inst.dir).ok_or("lost the instance's record")?
            }
        };
        if !spec.run {
            procs.stop_all().await;
            self.set(inst, |s| {
                s.state = State::Stopped;
                s.port = Some(meta.port);
                s.standby = false;
            });
            return Ok(());
        }
        // The port: asked for anew when the spec's changed (ModifyDBInstance --db-port).
        if spec.port != meta.asked {
            procs.stop_primary(kind.as_ref()).await;
            meta.asked = spec.port;
            meta.port = self.pick(&spec.id, spec.port);
            write_meta(&inst.dir, &meta)?;
        }
        let died = procs
            .primary
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_some());
        if died {
            procs.primary = None;
            self.set(inst, |s| s.restarts += 1);
        }
        if spec.reboots > meta.reboots {
            procs.stop_primary(kind.as_ref()).await;
            meta.reboots = spec.reboots;
            write_meta(&inst.dir, &meta)?;
        }
        if procs.primary.is_none() {
            // Its own port again, unless something else took it meanwhile.
            let port = self.pick(&spec.id, if meta.port == 0 { spec.port } else { meta.port });
            if port != meta.port {
                meta.port = port;
                write_meta(&inst.dir, &meta)?;
            }
            self.set(inst, |s| s.port = Some(meta.port));
            // Directories made since (the log archive) exist for older instances too.
            kind.make_dir(&inst.dir)?;
            let first = !meta.bootstrapped;
            let child = kind
                .start(
                    &inst.dir,
                    &meta.primary,
                    meta.port,
                    Role::of(&meta),
                    spec,
                    &meta,
                    first,
                )
                .await?;
            procs.primary = Some(child);
            if let Err(e) = kind
                .wait_ready(&inst.dir, meta.port, spec, &meta, procs.primary.as_mut())
                .await
            {
                // One that is up but not ready in time is stopped, not left behind.
                procs.stop_primary(kind.as_ref()).await;
                // Nothing was written after the asked time: the end of the log is that time.
                if meta.recovering && e.contains("recovery ended before configured recovery target")
                {
                    kind.recover_to(&inst.dir, &meta.primary, &[], None)?;
                    return Err("waiting: replaying the log to its end".into());
                }
                return Err(e);
            }
            if meta.recovering {
                kind.wait_promoted(&inst.dir, &meta.primary).await?;
                meta.recovering = false;
                write_meta(&inst.dir, &meta)?;
            }
            if first {
                // A set-up that failed is tried again from a fresh start of the server.
                if let Err(e) = kind.bootstrap(&inst.dir, meta.port, spec, &meta).await {
                    procs.stop_primary(kind.as_ref()).await;
                    return Err(e);
                }
                meta.bootstrapped = true;
                meta.password = spec.password.clone();
                meta.parameters = spec.parameters.clone();
                write_meta(&inst.dir, &meta)?;
            }
        }
        if spec.promote && meta.follows {
            kind.promote(&inst.dir, &meta.primary, meta.port).await?;
            meta.follows = false;
            write_meta(&inst.dir, &meta)?;
            self.set(inst, |s| s.promoted = true);
        }
        if spec.password != meta.password && !meta.follows {
            kind.set_password(&inst.dir, meta.port, spec, &meta).await?;
            meta.password = spec.password.clone();
            write_meta(&inst.dir, &meta)?;
        }
        if spec.parameters != meta.parameters {
            kind.set_parameters(
                &inst.dir.join(&meta.primary),
                &spec.parameters,
                procs.primary.as_ref(),
            )?;
            meta.parameters = spec.parameters.clone();
            write_meta(&inst.dir, &meta)?;
        }
        // The standby: made, kept running, promoted on a failover.
        let other = if meta.primary == "a" { "b" } else { "a" };
        if spec.standby && !meta.follows {
            if procs
                .standby
                .as_mut()
                .is_some_and(|(c, _)| c.try_wait().ok().flatten().is_some())
            {
                procs.standby = None;
            }
            if spec.failovers > meta.failovers && procs.standby.is_some() {
                self.failover(inst, spec, kind.as_ref(), procs, &mut meta)
                    .await?;
            }
            let other = if meta.primary == "a" { "b" } else { "a" };
            if procs.standby.is_none() {
                let dir = inst.dir.join(other);
                if !dir.join(READY).exists() {
                    let _ = tokio::fs::remove_dir_all(&dir).await;
                    kind.seed(&inst.dir, other, meta.port, &meta.repl).await?;
                    std::fs::write(dir.join(READY), b"").map_err(|e| e.to_string())?;
                }
                let port = self.pick(&format!("{}/standby", spec.id), 0);
                let child = kind
                    .start(&inst.dir, other, port, Role::Standby, spec, &meta, false)
                    .await?;
                procs.standby = Some((child, port));
            }
        } else {
            if let Some((mut c, _)) = procs.standby.take() {
                kind.stop(&mut c).await;
            }
            let _ = tokio::fs::remove_dir_all(inst.dir.join(other)).await;
        }
        // A failover asked with no standby (Single-AZ) is a reboot, as in RDS.
        if spec.failovers > meta.failovers {
            meta.failovers = spec.failovers;
            write_meta(&inst.dir, &meta)?;
        }
        let standby = procs.standby.is_some();
        self.set(inst, |s| {
            s.state = State::Running;
            s.port = Some(meta.port);
            s.failovers = meta.failovers;
            s.reboots = meta.reboots;
            s.standby = standby;
        });
        Ok(())
    }

    /// Makes a new instance's data directory and record of itself.
    async fn create(&self, inst: &Instance, spec: &Spec, kind: &dyn Server) -> Result<(), String> {
        let _ = tokio::fs::remove_dir_all(&inst.dir).await;
        process::make_dir(&self.root, None).map_err(|e| e.to_string())?;
        kind.make_dir(&inst.dir)?;
        let mut meta = Meta {
            primary: "a".into(),
            repl: process::secret(),
            password: spec.password.clone(),
            ..Meta::default()
        };
        match &spec.origin {
            Origin::Empty => kind.init(&inst.dir, "a", spec, &meta.repl).await?,
            Origin::Snapshot(from) => {
                kind.copy_in(&inst.dir, "a", from).await?;
                // The snapshot's server had its own replication password: keep using it.
                if let Some(m) = read_meta_file(&from.join("kumori.json")) {
                    meta.repl = m.repl;
                }
                meta.bootstrapped = true;
            }
            Origin::PointInTime { base, wal, target } => {
                kind.copy_in(&inst.dir, "a", base).await?;
                kind.recover_to(&inst.dir, "a", wal, target.as_deref())?;
                if let Some(m) = read_meta_file(&base.join("kumori.json")) {
                    meta.repl = m.repl;
                }
                meta.bootstrapped = true;
                meta.recovering = true;
            }
            Origin::ReplicaOf(source) => {
                let src = read_meta(&self.root.join(source))
                    .filter(|m| m.bootstrapped)
                    .ok_or_else(|| format!("waiting for the source instance {source}"))?;
                if !process::listening(src.port).await {
                    return Err(format!("waiting for the source instance {source} to run"));
                }
                kind.seed(&inst.dir, "a", src.port, &src.repl).await?;
                meta.repl = src.repl.clone();
                meta.bootstrapped = true;
                meta.follows = true;
            }
        }
        meta.port = self.pick(&spec.id, spec.port);
        meta.asked = spec.port;
        write_meta(&inst.dir, &meta)
    }

    /// The standby takes over: the primary stops (sending all it has to the standby first),
    /// the standby is promoted and restarted on the instance's port, and the old primary's
    /// data is dropped, to be seeded again as the new standby.
    async fn failover(
        &self,
        inst: &Instance,
        spec: &Spec,
        kind: &dyn Server,
        procs: &mut Procs,
        meta: &mut Meta,
    ) -> Result<(), String> {
        let other = if meta.primary == "a" { "b" } else { "a" }.to_string();
        let Some((mut standby, standby_port)) = procs.standby.take() else {
            return Ok(());
        };
        procs.stop_primary(kind).await;
        kind.catch_up(&inst.dir, &other, standby_port).await?;
        kind.promote(&inst.dir, &other, standby_port).await?;
        kind.stop(&mut standby).await;
        let old = meta.primary.clone();
        meta.primary = other.clone();
        meta.failovers = spec.failovers;
        let _ = std::fs::remove_file(inst.dir.join(&other).join(READY));
        write_meta(&inst.dir, meta)?;
        let _ = tokio::fs::remove_dir_all(inst.dir.join(&old)).await;
        let child = kind
            .start(
                &inst.dir,
                &other,
                meta.port,
                Role::Primary,
                spec,
                meta,
                false,
            )
            .await?;
        procs.primary = Some(child);
        kind.wait_ready(&inst.dir, meta.port, spec, meta, procs.primary.as_mut())
            .await
    }
}

fn procs_port_free(port: u16) -> bool {
    port != 0 && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// Failures in a row before the engine reports an instance failed.
const FAILURES_TOLD: u32 = 3;

/// Marks a standby's data as completely seeded.
const READY: &str = "kumori-standby-ready";

#[derive(Default)]
struct Procs {
    primary: Option<Child>,
    standby: Option<(Child, u16)>,
    /// The signal that stops the server quickly (PostgreSQL: SIGINT; its SIGTERM waits
    /// for every client to leave).
    quick: Option<i32>,
}

impl Procs {
    async fn stop_primary(&mut self, kind: &dyn Server) {
        if let Some(mut c) = self.primary.take() {
            kind.stop(&mut c).await;
        }
    }

    async fn stop_all(&mut self) {
        for c in self
            .primary
            .take()
            .into_iter()
            .chain(self.standby.take().map(|(c, _)| c))
        {
            let mut c = c;
            process::stop(
                &mut c,
                self.quick.unwrap_or(libc::SIGTERM),
                Duration::from_secs(20),
            )
            .await;
        }
    }
}

/// How a server is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Accepts writes.
    Primary,
    /// Follows another server and accepts reads (a read replica).
    Replica,
    /// Follows the primary beside it, for failover.
    Standby,
}

impl Role {
    fn of(meta: &Meta) -> Role {
        if meta.follows {
            Role::Replica
        } else {
            Role::Primary
        }
    }
}

/// What differs between PostgreSQL and MariaDB. `dir` is the instance's directory, `data`
/// the name of a data directory in it (`a` or `b`).
#[async_trait::async_trait]
trait Server: Send + Sync {
    fn make_dir(&self, dir: &Path) -> Result<(), String>;
    async fn init(&self, dir: &Path, data: &str, spec: &Spec, repl: &str) -> Result<(), String>;
    async fn copy_in(&self, dir: &Path, data: &str, from: &Path) -> Result<(), String>;
    async fn seed(
        &self,
        dir: &Path,
        data: &str,
        source_port: u16,
        repl: &str,
    ) -> Result<(), String>;
    #[allow(clippy::too_many_arguments)]
    async fn start(
        &self,
        dir: &Path,
        data: &str,
        port: u16,
        role: Role,
        spec: &Spec,
        meta: &Meta,
        first: bool,
    ) -> Result<Child, String>;
    async fn wait_ready(
        &self,
        dir: &Path,
        port: u16,
        spec: &Spec,
        meta: &Meta,
        child: Option<&mut Child>,
    ) -> Result<(), String>;
    async fn bootstrap(
        &self,
        dir: &Path,
        port: u16,
        spec: &Spec,
        meta: &Meta,
    ) -> Result<(), String>;
    async fn set_password(
        &self,
        dir: &Path,
        port: u16,
        spec: &Spec,
        meta: &Meta,
    ) -> Result<(), String>;
    fn set_parameters(
        &self,
        data: &Path,
        parameters: &[(String, String)],
        running: Option<&Child>,
    ) -> Result<(), String>;
    async fn catch_up(&self, dir: &Path, data: &str, port: u16) -> Result<(), String>;
    async fn promote(&self, dir: &Path, data: &str, port: u16) -> Result<(), String>;
    async fn stop(&self, child: &mut Child);
    /// Sets a copied data directory to replay archived log from `wal` up to `target`
    /// (with no `wal`, keeps the archive and drops the target).
    fn recover_to(
        &self,
        dir: &Path,
        data: &str,
        wal: &[PathBuf],
        target: Option<&str>,
    ) -> Result<(), String> {
        let _ = (dir, data, wal, target);
        Err("point-in-time restore is not served for this engine".into())
    }
    /// Waits until a recovering server has finished and accepts writes.
    async fn wait_promoted(&self, dir: &Path, data: &str) -> Result<(), String> {
        let _ = (dir, data);
        Ok(())
    }
}

fn read_meta(dir: &Path) -> Option<Meta> {
    read_meta_file(&dir.join("kumori.json"))
}

fn read_meta_file(path: &Path) -> Option<Meta> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

fn write_meta(dir: &Path, meta: &Meta) -> Result<(), String> {
    let tmp = dir.join("kumori.json.new");
    std::fs::write(
        &tmp,
        serde_json::to_vec_pretty(meta).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, dir.join("kumori.json")).map_err(|e| e.to_string())
}

/// Waits until `ready` answers true, the process exits, or `limit` passes.
async fn wait_for<F, Fut>(
    mut child: Option<&mut Child>,
    log: &Path,
    limit: Duration,
    mut ready: F,
) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = std::time::Instant::now();
    loop {
        if ready().await {
            return Ok(());
        }
        if let Some(Ok(Some(status))) = child.as_deref_mut().map(|c| c.try_wait()) {
            return Err(format!(
                "the server exited ({status}): {}",
                process::tail(log)
            ));
        }
        if start.elapsed() > limit {
            return Err(format!(
                "the server did not answer within {}s: {}",
                limit.as_secs(),
                process::tail(log)
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
