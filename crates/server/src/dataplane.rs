//! `--dataplane`: the loop that keeps the kernel in step with the store. It polls the
//! store's change number (every write moves it, on this node or another), and when it
//! moved rebuilds the model of every account's networks, plans the fabric and applies the
//! difference (`kumori-dataplane`). The number is read before the model, so a write that
//! lands in between is applied by the next round. A start sweeps whatever an earlier
//! process left and builds everything from the store; a clean shutdown removes it all.

use kumori_dataplane::probe::{Outcome, probe, probe_for};
use kumori_dataplane::{Names, Options, Reconciler, Report, plan};
use kumori_net::reach::model::{Network, Protocol};
use kumori_net::reach::trace::Endpoint;
use kumori_services::Limits;
use kumori_store::Store;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the store's change number is read.
const POLL: Duration = Duration::from_millis(5);

struct State {
    reconciler: Reconciler,
    /// The model last applied, for probes.
    network: Network,
    last: Option<Report>,
    rounds: u64,
    /// The store's change number the fabric was last built from.
    applied: Option<i64>,
    stopped: bool,
}

/// The running data plane.
pub struct Dataplane {
    options: Options,
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for Dataplane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dataplane")
            .field("prefix", &self.options.prefix)
            .finish()
    }
}

impl Dataplane {
    /// Checks this process may build a fabric, sweeps what an earlier one left under the
    /// same prefix, and starts the loop.
    pub fn start(store: Store, options: Options) -> Result<Arc<Dataplane>, String> {
        kumori_dataplane::check_capable()?;
        let state = Arc::new(Mutex::new(State {
            reconciler: Reconciler::new(&options.prefix),
            network: Network::default(),
            last: None,
            rounds: 0,
            applied: None,
            stopped: false,
        }));
        let dp = Arc::new(Dataplane {
            options: options.clone(),
            state: state.clone(),
        });
        tokio::spawn(run(store, options, state));
        Ok(dp)
    }

    /// Removes the whole fabric and stops the loop.
    pub async fn shutdown(&self) {
        let state = self.state.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let mut s = state.lock().expect("data plane state");
            s.stopped = true;
            s.reconciler.down()
        })
        .await;
    }

    /// What `/_kumori/health` shows; `changes` is the store's change number now, so
    /// `in_step` says whether every acknowledged write is in the kernel.
    pub fn status(&self, changes: Option<i64>) -> serde_json::Value {
        let s = self.state.lock().expect("data plane state");
        let last = s.last.as_ref().map(|r| {
            serde_json::json!({
                "took_ms": r.took.as_secs_f64() * 1000.0,
                "errors": r.errors,
            })
        });
        serde_json::json!({
            "prefix": self.options.prefix,
            "internet_hosts": self.options.internet_hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
            "host_link": self.options.host_link,
            "vpcs": s.network.vpcs.len(),
            "interfaces": s.network.interfaces.len(),
            "rounds": s.rounds,
            "in_step": changes.is_some() && s.applied == changes,
            "last": last,
        })
    }

    /// Real packets for the question, through the fabric as last applied. `None` when the
    /// source is not in the fabric.
    pub async fn probe(
        &self,
        from: &Endpoint,
        to: &Endpoint,
        protocol: Protocol,
        port: u16,
    ) -> Result<Option<Outcome>, String> {
        let p = {
            let s = self.state.lock().expect("data plane state");
            probe_for(
                &s.network,
                &Names(&self.options.prefix),
                &self.options.internet_hosts,
                from,
                to,
                protocol,
                port,
            )
        };
        let Some(p) = p else {
            return Ok(None);
        };
        tokio::task::spawn_blocking(move || probe(&p, Duration::from_secs(2)))
            .await
            .map_err(|e| e.to_string())?
            .map(Some)
    }
}

async fn run(store: Store, options: Options, state: Arc<Mutex<State>>) {
    let limits = Limits::default();
    let mut applied: Option<i64> = None;
    loop {
        tokio::time::sleep(POLL).await;
        if state.lock().expect("data plane state").stopped {
            return;
        }
        let changes = match store.read().await {
            Ok(mut tx) => tx.changes().await,
            Err(e) => Err(e),
        };
        let changes = match changes {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!("data plane: reading the store: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if applied == Some(changes) {
            continue;
        }
        let started = Instant::now();
        let net = match kumori_services::ec2::reach::all_networks(&store, &limits).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!("data plane: building the model: {}", e.0.message);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let fabric = plan(&net, &options);
        let st = state.clone();
        let report = tokio::task::spawn_blocking(move || {
            let mut s = st.lock().expect("data plane state");
            if s.stopped {
                return None;
            }
            let r = s.reconciler.apply(&fabric);
            s.network = net;
            s.rounds += 1;
            s.applied = Some(changes);
            s.last = Some(r.clone());
            Some(r)
        })
        .await;
        let Ok(Some(report)) = report else {
            return;
        };
        for e in &report.errors {
            tracing::warn!("data plane: {e}");
        }
        if report.changed() {
            tracing::info!(
                "data plane: applied in {:?} ({:?} in the kernel): {} namespaces added, {} removed, {} links, {} commands, {} rulesets",
                started.elapsed(),
                report.took,
                report.namespaces_added,
                report.namespaces_removed,
                report.links_added,
                report.commands,
                report.rulesets
            );
        }
        applied = Some(changes);
    }
}
