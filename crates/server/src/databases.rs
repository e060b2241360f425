//! The databases' reconciler: keeps `kumori-databases`' servers as the store says RDS's
//! instances are, takes the snapshots asked for, and writes back what the servers did
//! (`creating` → `backing-up` → `available`, reboots, failovers, restarts, deletions).
//!
//! Only the node holding the store's `databases` lease runs servers, so two nodes sharing a
//! store never start one instance twice. Everything is rebuilt from the store and the data
//! directories after a restart: nothing lives only here.

use kumori_databases::{Engine, Kind, Origin, Spec, State};
use kumori_services::Limits;
use kumori_services::rds::api::{self, Copy, Observed, Seen, Wanted};
use kumori_services::rds::engines::Serves;
use kumori_services::rds::instances;
use kumori_store::Store;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const LEASE: &str = "databases";
const LEASE_TTL: Duration = Duration::from_secs(30);
const EVERY: Duration = Duration::from_millis(300);
/// The store is read again at least this often, for what moves without a write.
const REREAD: Duration = Duration::from_secs(10);
const PRUNE: Duration = Duration::from_secs(3600);

/// A forwarder: the server's port it forwards to, and the task serving it.
type Forwarder = (u16, tokio::task::JoinHandle<()>);

pub struct Databases {
    engine: Arc<Engine>,
    /// The data plane's namespace prefix: then each instance also answers inside its
    /// interface's namespace, on its endpoint's port, behind its security groups.
    fabric: Option<String>,
    /// The forwarders in the data plane: (namespace, port) to the server's port, and the
    /// task serving it.
    forwarders: Mutex<HashMap<(String, u16), Forwarder>>,
    /// A temporary root (kumori --ephemeral) is removed at shutdown.
    ephemeral: bool,
    copying: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for Databases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Databases")
            .field("root", &self.engine.root())
            .finish()
    }
}

impl Databases {
    /// Starts the reconciler with instances' data under `root`.
    pub fn start(
        store: Store,
        limits: Limits,
        root: PathBuf,
        ephemeral: bool,
        fabric: Option<String>,
    ) -> Arc<Databases> {
        let me = Arc::new(Databases {
            engine: Engine::new(root),
            fabric,
            forwarders: Mutex::new(HashMap::new()),
            ephemeral,
            copying: Mutex::new(HashSet::new()),
        });
        let this = me.clone();
        let holder = format!("kumori-{}-{}", std::process::id(), uuid::Uuid::new_v4());
        tokio::spawn(async move { this.run(store, limits, holder).await });
        me
    }

    pub fn root(&self) -> PathBuf {
        self.engine.root().to_path_buf()
    }

    /// Stops every server, keeping its data (removed too when kumori's state is ephemeral).
    pub async fn shutdown(&self) {
        self.engine.shutdown().await;
        if self.ephemeral {
            let _ = std::fs::remove_dir_all(self.engine.root());
        }
    }

    fn spec_of(&self, w: &Wanted) -> Spec {
        let i = &w.instance;
        Spec {
            id: i.dbi_resource_id.clone(),
            kind: match w.serves {
                Serves::Postgres => Kind::Postgres,
                Serves::Mariadb => Kind::Mariadb,
            },
            port: i.port,
            user: i.master_username.clone(),
            password: i.kumori_password.clone(),
            database: i.db_name.clone(),
            // A deleted instance's server stops first; its record goes once it has.
            run: i.kumori_run && i.status != "deleting",
            origin: match &w.origin {
                instances::Origin::Empty => Origin::Empty,
                instances::Origin::Snapshot(dir) => {
                    Origin::Snapshot(self.engine.root().join("snapshots").join(dir))
                }
                instances::Origin::ReplicaOf(dbi) => Origin::ReplicaOf(dbi.clone()),
                instances::Origin::PointInTime { source, base, time } => {
                    let src = self.engine.root().join(source);
                    Origin::PointInTime {
                        base: self.engine.root().join("snapshots").join(base),
                        // The archive, then the live log of either data directory.
                        wal: vec![src.join("wal"), src.join("a/pg_wal"), src.join("b/pg_wal")],
                        target: time.clone(),
                    }
                }
            },
            standby: w.standby,
            failovers: i.kumori_failovers,
            reboots: i.kumori_reboots,
            parameters: i.kumori_parameters.clone(),
            promote: i.kumori_promote,
        }
    }

    async fn run(self: Arc<Self>, store: Store, limits: Limits, holder: String) {
        let mut seen: Option<i64> = None;
        let mut read_at = Instant::now() - REREAD;
        let mut pruned = Instant::now();
        let mut desired = api::Desired::default();
        let mut restarts: HashMap<String, u64> = HashMap::new();
        loop {
            tokio::time::sleep(EVERY).await;
            let leader = store
                .lease(LEASE, &holder, LEASE_TTL)
                .await
                .unwrap_or(false);
            if !leader {
                continue;
            }
            let changes = match store.read().await {
                Ok(mut tx) => tx.changes().await.ok(),
                Err(_) => None,
            };
            if changes.is_some() && (changes != seen || read_at.elapsed() >= REREAD) {
                match api::desired(&store, &limits).await {
                    Ok(d) => {
                        desired = d;
                        seen = changes;
                        read_at = Instant::now();
                    }
                    Err(e) => {
                        tracing::warn!("databases: cannot read the store: {}", e.0.message);
                        continue;
                    }
                }
            }
            let specs: Vec<(Wanted, Spec)> = desired
                .instances
                .iter()
                .map(|w| (w.clone(), self.spec_of(w)))
                .collect();
            self.engine
                .apply(specs.iter().map(|(_, s)| s.clone()).collect());
            let status: HashMap<String, kumori_databases::Status> = self
                .engine
                .status()
                .into_iter()
                .map(|s| (s.id.clone(), s))
                .collect();
            let mut pairs = Vec::new();
            for (w, spec) in &specs {
                let Some(s) = status.get(&spec.id) else {
                    continue;
                };
                let before = restarts.insert(spec.id.clone(), s.restarts).unwrap_or(0);
                if s.restarts > before {
                    let _ = api::instance_event(
                        &store,
                        &limits,
                        &w.account,
                        &w.region,
                        &w.instance.db_instance_identifier,
                        "availability",
                        "DB instance restarted: its server stopped unexpectedly and was started again",
                    )
                    .await;
                }
                pairs.push((
                    w.clone(),
                    Observed {
                        state: match &s.state {
                            State::Creating => Seen::Creating,
                            State::Running => Seen::Running,
                            State::Stopped => Seen::Stopped,
                            State::Failed(e) => Seen::Failed(e.clone()),
                        },
                        port: s.port,
                        converged: s.converged == spec.digest(),
                        standby: s.standby,
                        promoted: s.promoted,
                    },
                ));
            }
            let dbi_to_instance: HashMap<&str, &Wanted> = desired
                .instances
                .iter()
                .map(|w| (w.instance.dbi_resource_id.as_str(), w))
                .collect();
            let copying: Vec<(String, String, String)> = desired
                .copies
                .iter()
                .filter_map(|c| dbi_to_instance.get(c.dbi.as_str()))
                .map(|w| {
                    (
                        w.account.clone(),
                        w.region.clone(),
                        w.instance.db_instance_identifier.clone(),
                    )
                })
                .collect();
            if let Err(e) = api::observe(&store, &limits, &pairs, &copying).await {
                tracing::warn!("databases: cannot record progress: {}", e.0.message);
            }
            for c in &desired.copies {
                let made = status
                    .get(&c.dbi)
                    .is_some_and(|s| matches!(s.state, State::Running | State::Stopped));
                let gone = !dbi_to_instance.contains_key(c.dbi.as_str());
                if made || gone {
                    self.copy(store.clone(), limits.clone(), c.clone(), gone);
                }
            }
            if let Some(prefix) = &self.fabric {
                let wanted: Vec<((String, u16), u16)> = specs
                    .iter()
                    .filter_map(|(w, spec)| {
                        let s = status.get(&spec.id)?;
                        let eni = w.instance.kumori_interface.as_ref()?;
                        (s.state == State::Running).then_some((
                            (
                                kumori_dataplane::plan::Names(prefix).interface(eni),
                                w.instance.port,
                            ),
                            s.port?,
                        ))
                    })
                    .collect();
                self.forward(wanted).await;
            }
            if let Err(e) = api::finish_deletes(&store, &limits, &pairs).await {
                tracing::warn!("databases: cannot finish deletions: {}", e.0.message);
            }
            self.collect_snapshots(&desired.snapshot_dirs);
            if pruned.elapsed() > PRUNE {
                pruned = Instant::now();
                let _ = api::prune_events(&store, &limits).await;
            }
        }
    }

    /// Keeps a forwarder in each namespace asked for: connections to the endpoint's port
    /// there (which the data plane let through the instance's security groups) go on to
    /// the server on loopback.
    async fn forward(&self, wanted: Vec<((String, u16), u16)>) {
        let keep: HashSet<(String, u16)> = wanted.iter().map(|(k, _)| k.clone()).collect();
        {
            let mut map = self.forwarders.lock().expect("forwarders");
            map.retain(|k, (target, task)| {
                let same = keep.contains(k)
                    && wanted.iter().any(|(w, t)| w == k && t == target)
                    && !task.is_finished();
                if !same {
                    task.abort();
                }
                same
            });
        }
        for ((ns, port), target) in wanted {
            if self
                .forwarders
                .lock()
                .expect("forwarders")
                .contains_key(&(ns.clone(), port))
            {
                continue;
            }
            let listener = {
                let ns = ns.clone();
                tokio::task::spawn_blocking(move || kumori_dataplane::netns::listen_in(&ns, port))
                    .await
            };
            // The namespace may not be made yet: the next round tries again.
            let Ok(Ok(listener)) = listener else {
                continue;
            };
            if listener.set_nonblocking(true).is_err() {
                continue;
            }
            let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                continue;
            };
            let task = tokio::spawn(async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    tokio::spawn(async move {
                        if let Ok(mut out) =
                            tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                        {
                            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                        }
                    });
                }
            });
            self.forwarders
                .lock()
                .expect("forwarders")
                .insert((ns, port), (target, task));
        }
    }

    /// Takes a snapshot's copy on a task of its own (once), then records it.
    fn copy(self: &Arc<Self>, store: Store, limits: Limits, c: Copy, gone: bool) {
        if !self.copying.lock().expect("copying").insert(c.dir.clone()) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let result = if gone {
                Err("the DB instance was deleted before its snapshot was taken".to_string())
            } else {
                let dest = this.engine.root().join("snapshots").join(&c.dir);
                if dest.join("kumori.json").exists() {
                    Ok(())
                } else {
                    this.engine.snapshot(&c.dbi, &dest).await
                }
            };
            if let Err(e) = api::snapshot_done(&store, &limits, &c, result).await {
                tracing::warn!("databases: cannot record snapshot: {}", e.0.message);
            }
            this.copying.lock().expect("copying").remove(&c.dir);
        });
    }

    /// Removes snapshot copies no snapshot names any more (deleted, or never recorded).
    fn collect_snapshots(&self, keep: &[String]) {
        let dir = self.engine.root().join("snapshots");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        let copying = self.copying.lock().expect("copying").clone();
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let base = name.trim_end_matches(".partial").to_string();
            if !keep.contains(&base) && !copying.contains(&base) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}
