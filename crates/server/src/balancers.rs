//! The load balancers' reconciler: keeps `kumori-lb`'s proxies as the store says ELBv2's
//! load balancers, listeners, rules and target groups are, and writes back what the health
//! checks found and that a new load balancer is `active`.
//!
//! Every node serving the store runs the proxies (each on its own host), so a client can
//! use any node; writing health and state is done by the node that holds the store's
//! `load-balancing` lease, so nodes never race on it. The whole state is rebuilt from the
//! store after a restart: nothing lives only here.

use kumori_lb::{
    Algorithm, Config, Engine, GroupConfig, HealthCheck, ListenerConfig, Protocol, Rule,
    TargetConfig,
};
use kumori_services::Limits;
use kumori_services::elbv2::api::{self, Balancer, Found, GroupSpec};
use kumori_services::elbv2::target_groups::Health;
use kumori_store::Store;
use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const LEASE: &str = "load-balancing";
const LEASE_TTL: Duration = Duration::from_secs(30);
/// How often the store is looked at for changes, and the health written back.
const EVERY: Duration = Duration::from_millis(500);
/// A full rebuild at least this often, for what moves without a write (draining ends).
const REBUILD: Duration = Duration::from_secs(10);

/// Where one listener really listens.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Bound {
    pub load_balancer: String,
    pub name: String,
    pub listener: String,
    pub protocol: String,
    pub port: u16,
    pub address: String,
}

pub struct Balancers {
    engine: Engine,
    shown: Mutex<Vec<Bound>>,
    /// The data plane's namespace prefix, when a load balancer's nodes are namespaces.
    fabric: Option<String>,
}

/// The data plane's namespaces, where a load balancer's nodes listen and send from.
struct FabricNamespaces;

impl kumori_lb::Netns for FabricNamespaces {
    fn listen(&self, ns: &str, port: u16) -> std::io::Result<std::net::TcpListener> {
        kumori_dataplane::netns::listen_in(ns, port).map_err(std::io::Error::other)
    }
    fn socket(&self, ns: &str) -> std::io::Result<std::os::fd::OwnedFd> {
        kumori_dataplane::netns::socket_in(ns).map_err(std::io::Error::other)
    }
}

impl std::fmt::Debug for Balancers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Balancers")
            .field("bound", &self.bound())
            .finish()
    }
}

impl Balancers {
    /// Starts the reconciler; its proxies bind to `ip` and, with the data plane's namespace
    /// prefix `fabric`, inside each load balancer's nodes too.
    pub fn start(
        store: Store,
        limits: Limits,
        ip: IpAddr,
        fabric: Option<String>,
    ) -> Arc<Balancers> {
        let netns: Option<Arc<dyn kumori_lb::Netns>> = fabric
            .clone()
            .map(|_| Arc::new(FabricNamespaces) as Arc<dyn kumori_lb::Netns>);
        let me = Arc::new(Balancers {
            engine: Engine::new(ip, netns),
            shown: Mutex::new(Vec::new()),
            fabric,
        });
        let this = me.clone();
        let holder = format!("kumori-{}-{}", std::process::id(), uuid::Uuid::new_v4());
        tokio::spawn(async move { this.run(store, limits, holder).await });
        me
    }

    /// Each listener kumori serves and where.
    pub fn bound(&self) -> Vec<Bound> {
        self.shown.lock().map(|s| s.clone()).unwrap_or_default()
    }

    async fn run(self: Arc<Self>, store: Store, limits: Limits, holder: String) {
        let mut seen: Option<i64> = None;
        let mut built = Instant::now() - REBUILD;
        let mut owners: HashMap<String, (String, String)> = HashMap::new();
        let mut provisioning: Vec<(String, String, String)> = Vec::new();
        // Health as last written, so a steady state opens no write transaction. Forgotten
        // at every rebuild: a write elsewhere (a target registered again) may have reset
        // what the store holds.
        let mut written: HashMap<(String, String), Health> = HashMap::new();
        loop {
            let changes = match store.read().await {
                Ok(mut tx) => tx.changes().await.ok(),
                Err(_) => None,
            };
            if changes.is_some() && (changes != seen || built.elapsed() >= REBUILD) {
                match api::desired(&store, &limits).await {
                    Ok((balancers, groups)) => {
                        owners = groups
                            .iter()
                            .map(|g| (g.arn.clone(), (g.account.clone(), g.region.clone())))
                            .collect();
                        provisioning = balancers
                            .iter()
                            .filter(|b| !b.active)
                            .map(|b| (b.account.clone(), b.region.clone(), b.arn.clone()))
                            .collect();
                        let config = config_of(&balancers, &groups, self.fabric.as_deref());
                        self.engine.apply(config).await;
                        self.show(&balancers);
                        written.clear();
                        seen = changes;
                        built = Instant::now();
                    }
                    Err(e) => {
                        tracing::warn!("load balancers: cannot read the store: {}", e.0.message)
                    }
                }
            }
            let leader = store
                .lease(LEASE, &holder, LEASE_TTL)
                .await
                .unwrap_or(false);
            if leader {
                if !provisioning.is_empty() {
                    if let Err(e) = api::activate(&store, &limits, &provisioning).await {
                        tracing::warn!("load balancers: {}", e.0.message);
                    }
                    provisioning.clear();
                }
                let found: Vec<Found> = self
                    .engine
                    .health()
                    .into_iter()
                    .filter_map(|h| {
                        let (account, region) = owners.get(&h.group)?.clone();
                        Some(Found {
                            account,
                            region,
                            group_arn: h.group,
                            target_key: h.target,
                            health: Health {
                                state: h.health.state.into(),
                                reason: h.health.reason.map(str::to_string),
                                description: h.health.description,
                            },
                        })
                    })
                    .filter(|f| {
                        written.get(&(f.group_arn.clone(), f.target_key.clone())) != Some(&f.health)
                    })
                    .collect();
                if !found.is_empty() {
                    match api::record_health(&store, &limits, &found).await {
                        Ok(_) => written.extend(
                            found
                                .into_iter()
                                .map(|f| ((f.group_arn, f.target_key), f.health)),
                        ),
                        Err(e) => {
                            tracing::warn!("load balancers: cannot record health: {}", e.0.message)
                        }
                    }
                }
            }
            tokio::time::sleep(EVERY).await;
        }
    }

    fn show(&self, balancers: &[Balancer]) {
        let bound = self.engine.bound();
        let mut shown = Vec::new();
        for b in balancers {
            for l in &b.listeners {
                if let Some((_, _, addr)) = bound.iter().find(|(k, _, _)| *k == l.arn) {
                    shown.push(Bound {
                        load_balancer: b.arn.clone(),
                        name: b.name.clone(),
                        listener: l.arn.clone(),
                        protocol: l.protocol.clone(),
                        port: l.port,
                        address: addr.to_string(),
                    });
                }
            }
        }
        if let Ok(mut s) = self.shown.lock() {
            *s = shown;
        }
    }
}

/// The engine's configuration from ELBv2's records. Listeners the engine cannot serve
/// (HTTPS and TLS, which need ACM's certificates; UDP) are left out, and so are target
/// groups no listener uses: ELB checks no target of those.
fn config_of(balancers: &[Balancer], groups: &[GroupSpec], fabric: Option<&str>) -> Config {
    let mut config = Config::default();
    let mut used: BTreeSet<String> = BTreeSet::new();
    // Where each group's health checks leave from: a node of a load balancer using it.
    let mut checked_from: HashMap<String, String> = HashMap::new();
    for b in balancers {
        let nodes: Vec<String> = match fabric {
            Some(prefix) => b
                .nodes
                .iter()
                .map(|eni| kumori_dataplane::plan::Names(prefix).interface(eni))
                .collect(),
            None => vec![],
        };
        for l in &b.listeners {
            let protocol = match l.protocol.as_str() {
                "HTTP" => Protocol::Http,
                "TCP" => Protocol::Tcp,
                _ => continue,
            };
            let rules: Vec<Rule> = l
                .rules
                .iter()
                .filter_map(|r| Rule::from_aws(&r.conditions, &r.actions))
                .collect();
            for r in &rules {
                if let kumori_lb::Action::Forward { groups, .. } = &r.action {
                    used.extend(groups.iter().map(|(g, _)| g.clone()));
                    if let Some(first) = nodes.first() {
                        for (g, _) in groups {
                            checked_from
                                .entry(g.clone())
                                .or_insert_with(|| first.clone());
                        }
                    }
                }
            }
            config.listeners.push(ListenerConfig {
                key: l.arn.clone(),
                port: l.port,
                nodes: nodes.clone(),
                protocol,
                rules,
                idle_timeout: Duration::from_secs(b.idle_timeout_secs.max(1)),
            });
        }
    }
    for g in groups.iter().filter(|g| used.contains(&g.arn)) {
        config.groups.push(GroupConfig {
            key: g.arn.clone(),
            targets: g
                .targets
                .iter()
                .map(|t| TargetConfig {
                    key: t.key.clone(),
                    addr: t
                        .ip
                        .as_ref()
                        .and_then(|ip| ip.parse::<IpAddr>().ok())
                        .map(|ip| SocketAddr::new(ip, t.port)),
                    draining: t.draining,
                })
                .collect(),
            health: HealthCheck {
                enabled: g.health_enabled,
                http: g.health_protocol.starts_with("HTTP"),
                path: g.health_path.clone(),
                port: g.health_port,
                interval: Duration::from_secs(g.interval_secs.max(1)),
                timeout: Duration::from_secs(g.timeout_secs.max(1)),
                healthy_threshold: g.healthy_threshold.max(1),
                unhealthy_threshold: g.unhealthy_threshold.max(1),
                matcher: g.matcher.clone(),
            },
            algorithm: match g.algorithm.as_str() {
                "least_outstanding_requests" => Algorithm::LeastOutstandingRequests,
                "weighted_random" => Algorithm::WeightedRandom,
                _ => Algorithm::RoundRobin,
            },
            stickiness: g.stickiness.then(|| Duration::from_secs(g.stickiness_secs)),
            checked_from: checked_from.get(&g.arn).cloned(),
        });
    }
    config
}
