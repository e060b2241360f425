//! kumori's load-balancer engine: a real proxy behind every listener.
//!
//! The engine is told the whole desired state ([`Config`]: listeners with their rules,
//! target groups with their targets and health checks) and makes it so ([`Engine::apply`]),
//! idempotently: a listener whose port and protocol did not change keeps its socket and
//! its connections and only sees new rules; a target whose address and health-check
//! settings did not change keeps its health. What it knows of health it answers
//! ([`Engine::health`]); the caller writes that where the control plane reads it.
//!
//! - `rules`: ALB's rule conditions and actions, from ELBv2's own shapes.
//! - `proxy`: HTTP listeners (hyper, pooled connections to targets) and TCP ones.
//! - `health`: HTTP and TCP health checks with ELB's thresholds and reason codes.
//!
//! Listeners bind to the engine's address (127.0.0.1 by default) on the listener's own port,
//! or on a free port when that one is taken or privileged; [`Engine::bound`] says which.
//! Given [`Netns`] (the data plane's namespaces), a listener also listens inside each of
//! its load balancer's nodes, and what a node sends (requests, health checks) leaves from
//! that node's namespace, so security groups and routes apply to it as on AWS.

pub mod health;
pub mod proxy;
pub mod rules;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

pub use rules::{Action, Condition, Rule};

/// Everything the engine should run.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub listeners: Vec<ListenerConfig>,
    pub groups: Vec<GroupConfig>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ListenerConfig {
    /// Names the listener across applies (its ARN).
    pub key: String,
    pub port: u16,
    /// The namespaces of its load balancer's nodes, where it also listens (with [`Netns`]).
    pub nodes: Vec<String>,
    pub protocol: Protocol,
    /// In priority order, the default rule last.
    pub rules: Vec<Rule>,
    /// How long a request may wait for its target (the load balancer's idle timeout).
    pub idle_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Http,
    Tcp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GroupConfig {
    /// Names the group (its ARN); forward actions name groups by it.
    pub key: String,
    pub targets: Vec<TargetConfig>,
    pub health: HealthCheck,
    pub algorithm: Algorithm,
    /// Load-balancer-generated cookie stickiness, for how long.
    pub stickiness: Option<Duration>,
    /// The namespace its health checks leave from (a node of a load balancer using it);
    /// `None`: the host.
    pub checked_from: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TargetConfig {
    /// Names the target in its group (`id:port`).
    pub key: String,
    /// Where traffic goes; `None` when there is nowhere (an instance that does not run).
    pub addr: Option<SocketAddr>,
    /// Deregistering: no new requests.
    pub draining: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HealthCheck {
    pub enabled: bool,
    /// HTTP checks (path, matcher); otherwise a TCP connect.
    pub http: bool,
    pub path: String,
    /// `None`: the target's own port.
    pub port: Option<u16>,
    pub interval: Duration,
    pub timeout: Duration,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
    /// `200`, `200,202`, `200-299`.
    pub matcher: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    RoundRobin,
    LeastOutstandingRequests,
    WeightedRandom,
}

/// A target's health as ELB words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub state: &'static str,
    pub reason: Option<&'static str>,
    pub description: Option<String>,
}

/// One target's health, for the caller to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthReport {
    pub group: String,
    pub target: String,
    pub health: Health,
}

const INITIAL: u8 = 0;
const HEALTHY: u8 = 1;
const UNHEALTHY: u8 = 2;
const UNCHECKED: u8 = 3;

/// What the proxies and the health checker share of one target.
#[derive(Debug)]
pub struct TargetCell {
    state: AtomicU8,
    detail: Mutex<(Option<&'static str>, Option<String>)>,
    /// Requests under way (least outstanding requests).
    in_flight: AtomicUsize,
}

impl TargetCell {
    fn new(state: u8) -> Self {
        TargetCell {
            state: AtomicU8::new(state),
            detail: Mutex::new((
                Some("Elb.InitialHealthChecking"),
                Some("Initial health checks in progress".into()),
            )),
            in_flight: AtomicUsize::new(0),
        }
    }
    fn routable(&self) -> bool {
        matches!(self.state.load(Ordering::Relaxed), HEALTHY | UNCHECKED)
    }
    fn health(&self) -> Health {
        let detail = self
            .detail
            .lock()
            .map(|d| d.clone())
            .unwrap_or((None, None));
        match self.state.load(Ordering::Relaxed) {
            HEALTHY => Health {
                state: "healthy",
                reason: None,
                description: None,
            },
            UNHEALTHY => Health {
                state: "unhealthy",
                reason: detail.0,
                description: detail.1,
            },
            UNCHECKED => Health {
                state: "unavailable",
                reason: Some("Target.HealthCheckDisabled"),
                description: Some("Health checks are disabled".into()),
            },
            _ => Health {
                state: "initial",
                reason: Some("Elb.InitialHealthChecking"),
                description: Some("Initial health checks in progress".into()),
            },
        }
    }
}

/// A target as requests are routed to it.
#[derive(Debug)]
pub struct Target {
    pub key: String,
    pub addr: Option<SocketAddr>,
    pub draining: bool,
    pub cell: Arc<TargetCell>,
}

/// A target group as requests are routed to it.
#[derive(Debug)]
pub struct Group {
    pub key: String,
    pub algorithm: Algorithm,
    pub stickiness: Option<Duration>,
    pub targets: Vec<Target>,
    /// Whose turn it is; kept across applies, so a change elsewhere does not restart the
    /// rotation.
    next: Arc<AtomicUsize>,
}

impl Group {
    /// The target for a new request or connection: the sticky one if it can take it, else
    /// by the group's algorithm among healthy targets; when none is healthy, among all of
    /// them (ELB fails open); `None` when the group has no target to send to (503).
    pub fn pick(&self, sticky: Option<&str>) -> Option<&Target> {
        let live = |t: &&Target| t.addr.is_some() && !t.draining;
        let mut candidates: Vec<&Target> = self
            .targets
            .iter()
            .filter(live)
            .filter(|t| t.cell.routable())
            .collect();
        if candidates.is_empty() {
            candidates = self.targets.iter().filter(live).collect();
        }
        if candidates.is_empty() {
            return None;
        }
        if let Some(key) = sticky
            && let Some(t) = candidates.iter().find(|t| t.key == key)
        {
            return Some(t);
        }
        let n = candidates.len();
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        Some(match self.algorithm {
            Algorithm::RoundRobin => candidates[turn % n],
            Algorithm::WeightedRandom => {
                use rand::Rng;
                candidates[rand::rng().random_range(0..n)]
            }
            Algorithm::LeastOutstandingRequests => {
                // Ties go round robin, so an idle group still spreads its requests.
                (0..n)
                    .map(|i| candidates[(turn + i) % n])
                    .min_by_key(|t| t.cell.in_flight.load(Ordering::Relaxed))?
            }
        })
    }
}

/// The groups by key, as every listener's requests see them.
pub type Groups = Arc<HashMap<String, Arc<Group>>>;

/// Network namespaces, as the data plane has them: where node listeners bind and node
/// traffic leaves from.
pub trait Netns: Send + Sync + 'static {
    /// A listening TCP socket on every address of namespace `ns`, at `port`.
    fn listen(&self, ns: &str, port: u16) -> std::io::Result<std::net::TcpListener>;
    /// A new, unconnected, non-blocking IPv4 TCP socket of namespace `ns`.
    fn socket(&self, ns: &str) -> std::io::Result<std::os::fd::OwnedFd>;
}

/// Where outgoing connections are made: the host, or a namespace.
#[derive(Clone)]
pub struct Dialer {
    netns: Option<(Arc<dyn Netns>, String)>,
}

impl std::fmt::Debug for Dialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Dialer({:?})", self.netns.as_ref().map(|(_, ns)| ns))
    }
}

impl Dialer {
    pub fn host() -> Dialer {
        Dialer { netns: None }
    }

    /// Whether this dialer sends anything to `addr`. From the host, only loopback: a target's
    /// other addresses (an instance's private one, an `ip` target in a VPC) belong to the
    /// data plane's namespaces, and from the host they would lead to whatever network the
    /// host is on, which kumori never sends to.
    pub fn may_reach(&self, addr: SocketAddr) -> bool {
        self.netns.is_some() || addr.ip().is_loopback()
    }

    /// A TCP connection to `addr`, given 10 s.
    pub async fn connect(&self, addr: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
        if !self.may_reach(addr) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!(
                    "kumori sends nothing from this machine to {addr}: only loopback targets are reached without --dataplane"
                ),
            ));
        }
        let connect = async {
            match &self.netns {
                None => tokio::net::TcpStream::connect(addr).await,
                Some((netns, ns)) => {
                    let (netns, ns) = (netns.clone(), ns.clone());
                    let fd = tokio::task::spawn_blocking(move || netns.socket(&ns))
                        .await
                        .map_err(std::io::Error::other)??;
                    let socket =
                        tokio::net::TcpSocket::from_std_stream(std::net::TcpStream::from(fd));
                    socket.connect(addr).await
                }
            }
        };
        let stream = tokio::time::timeout(Duration::from_secs(10), connect)
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }
}

struct Running {
    port: u16,
    protocol: Protocol,
    bound: SocketAddr,
    config: Arc<RwLock<Arc<ListenerConfig>>>,
    task: tokio::task::JoinHandle<()>,
}

struct Check {
    fingerprint: (Option<SocketAddr>, HealthCheck, Option<String>),
    cell: Arc<TargetCell>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// The engine: listeners, groups and health checks, kept as the last [`Config`] said.
pub struct Engine {
    ip: IpAddr,
    netns: Option<Arc<dyn Netns>>,
    groups: Arc<RwLock<Groups>>,
    /// One pooled client per place traffic leaves from (`None`: the host).
    clients: Mutex<HashMap<Option<String>, (proxy::Client, Dialer)>>,
    /// Running listeners by key and namespace (`None`: the host's).
    listeners: Mutex<HashMap<(String, Option<String>), Running>>,
    checks: Mutex<HashMap<(String, String), Check>>,
    turns: Mutex<HashMap<String, Arc<AtomicUsize>>>,
}

impl Engine {
    /// An engine whose listeners bind to `ip`, and inside nodes' namespaces when given
    /// `netns`. Must be made inside a tokio runtime.
    pub fn new(ip: IpAddr, netns: Option<Arc<dyn Netns>>) -> Engine {
        Engine {
            ip,
            netns,
            groups: Arc::new(RwLock::new(Arc::new(HashMap::new()))),
            clients: Mutex::new(HashMap::new()),
            listeners: Mutex::new(HashMap::new()),
            checks: Mutex::new(HashMap::new()),
            turns: Mutex::new(HashMap::new()),
        }
    }

    /// The client and dialer of namespace `ns` (the host's for `None`, or when the engine
    /// has no namespaces).
    fn client(&self, ns: Option<&str>) -> (proxy::Client, Dialer) {
        let ns = ns.filter(|_| self.netns.is_some()).map(str::to_string);
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients
            .entry(ns.clone())
            .or_insert_with(|| {
                let dialer = match (&self.netns, ns) {
                    (Some(n), Some(ns)) => Dialer {
                        netns: Some((n.clone(), ns)),
                    },
                    _ => Dialer::host(),
                };
                (proxy::client(dialer.clone()), dialer)
            })
            .clone()
    }

    /// Makes the running listeners, groups and health checks those of `config`.
    pub async fn apply(&self, config: Config) {
        let mut groups = HashMap::new();
        {
            let mut checks = self.checks.lock().unwrap_or_else(|e| e.into_inner());
            let mut wanted = std::collections::HashSet::new();
            for g in &config.groups {
                let mut targets = Vec::new();
                for t in &g.targets {
                    let id = (g.key.clone(), t.key.clone());
                    wanted.insert(id.clone());
                    let fingerprint = (t.addr, g.health.clone(), g.checked_from.clone());
                    let keep = checks
                        .get(&id)
                        .is_some_and(|c| c.fingerprint == fingerprint);
                    if !keep {
                        if let Some(old) = checks.remove(&id)
                            && let Some(task) = old.task
                        {
                            task.abort();
                        }
                        let (cell, task) = match t.addr {
                            Some(addr) if g.health.enabled => {
                                let cell = Arc::new(TargetCell::new(INITIAL));
                                let (_, dialer) = self.client(g.checked_from.as_deref());
                                let task = tokio::spawn(health::run(
                                    addr,
                                    g.health.clone(),
                                    cell.clone(),
                                    dialer,
                                ));
                                (cell, Some(task))
                            }
                            _ if !g.health.enabled => (Arc::new(TargetCell::new(UNCHECKED)), None),
                            _ => (Arc::new(TargetCell::new(INITIAL)), None),
                        };
                        checks.insert(
                            id.clone(),
                            Check {
                                fingerprint,
                                cell,
                                task,
                            },
                        );
                    }
                    let cell = checks[&id].cell.clone();
                    targets.push(Target {
                        key: t.key.clone(),
                        addr: t.addr,
                        draining: t.draining,
                        cell,
                    });
                }
                let next = self
                    .turns
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(g.key.clone())
                    .or_default()
                    .clone();
                groups.insert(
                    g.key.clone(),
                    Arc::new(Group {
                        key: g.key.clone(),
                        algorithm: g.algorithm,
                        stickiness: g.stickiness,
                        targets,
                        next,
                    }),
                );
            }
            checks.retain(|id, c| {
                let keep = wanted.contains(id);
                if !keep && let Some(task) = &c.task {
                    task.abort();
                }
                keep
            });
        }
        self.turns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|k, _| groups.contains_key(k));
        *self.groups.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(groups);

        // Every listener on the host, and in each of its nodes' namespaces.
        let mut wanted: Vec<((String, Option<String>), ListenerConfig)> = Vec::new();
        for l in config.listeners {
            if self.netns.is_some() {
                for ns in &l.nodes {
                    wanted.push(((l.key.clone(), Some(ns.clone())), l.clone()));
                }
            }
            wanted.push(((l.key.clone(), None), l));
        }
        let mut listeners = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        let keys: std::collections::HashSet<&(String, Option<String>)> =
            wanted.iter().map(|(k, _)| k).collect();
        listeners.retain(|key, r| {
            let keep = keys.contains(key);
            if !keep {
                r.task.abort();
            }
            keep
        });
        for (id, l) in wanted {
            if let Some(r) = listeners.get(&id)
                && r.port == l.port
                && r.protocol == l.protocol
                && !r.task.is_finished()
            {
                *r.config.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(l);
                continue;
            }
            if let Some(old) = listeners.remove(&id) {
                old.task.abort();
            }
            let socket = match (&id.1, &self.netns) {
                // Bound synchronously: binding does not block, and the lock is not held
                // across an await.
                (None, _) => std::net::TcpListener::bind((self.ip, l.port))
                    .or_else(|_| std::net::TcpListener::bind((self.ip, 0))),
                (Some(ns), Some(netns)) => netns.listen(ns, l.port),
                (Some(_), None) => continue,
            }
            .and_then(|s| {
                s.set_nonblocking(true)?;
                tokio::net::TcpListener::from_std(s)
            });
            let socket = match socket {
                Ok(s) => s,
                Err(e) => {
                    // A node's namespace may not be up yet: the next apply tries again.
                    tracing::debug!(
                        "load balancer listener {} ({:?}): cannot bind: {e}",
                        l.key,
                        id.1
                    );
                    continue;
                }
            };
            let Ok(bound) = socket.local_addr() else {
                continue;
            };
            let (port, protocol) = (l.port, l.protocol);
            let (client, dialer) = self.client(id.1.as_deref());
            let config = Arc::new(RwLock::new(Arc::new(l)));
            let task = tokio::spawn(proxy::serve(
                socket,
                protocol,
                config.clone(),
                self.groups.clone(),
                client,
                dialer,
            ));
            if id.1.is_none() && port != bound.port() {
                tracing::info!(
                    "load balancer listener {}: port {port} is taken, serving on {bound}",
                    id.0
                );
            }
            listeners.insert(
                id,
                Running {
                    port,
                    protocol,
                    bound,
                    config,
                    task,
                },
            );
        }
    }

    /// Each running listener's key, its configured port and where it really listens.
    pub fn bound(&self) -> Vec<(String, u16, SocketAddr)> {
        let listeners = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<_> = listeners
            .iter()
            .filter(|((_, ns), _)| ns.is_none())
            .map(|((k, _), r)| (k.clone(), r.port, r.bound))
            .collect();
        out.sort();
        out
    }

    /// The health of every target that has somewhere to be checked.
    pub fn health(&self) -> Vec<HealthReport> {
        let checks = self.checks.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<HealthReport> = checks
            .iter()
            .filter(|(_, c)| c.fingerprint.0.is_some())
            .map(|((g, t), c)| HealthReport {
                group: g.clone(),
                target: t.clone(),
                health: c.cell.health(),
            })
            .collect();
        out.sort_by(|a, b| (&a.group, &a.target).cmp(&(&b.group, &b.target)));
        out
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Ok(l) = self.listeners.lock() {
            l.values().for_each(|r| r.task.abort());
        }
        if let Ok(c) = self.checks.lock() {
            c.values()
                .filter_map(|c| c.task.as_ref())
                .for_each(|t| t.abort());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(key: &str, state: u8, draining: bool) -> Target {
        Target {
            key: key.into(),
            addr: Some("127.0.0.1:1".parse().unwrap()),
            draining,
            cell: Arc::new(TargetCell::new(state)),
        }
    }

    fn group(algorithm: Algorithm, targets: Vec<Target>) -> Group {
        Group {
            key: "g".into(),
            algorithm,
            stickiness: None,
            targets,
            next: Arc::new(AtomicUsize::new(0)),
        }
    }

    #[test]
    fn healthy_targets_take_turns_and_the_rest_only_when_none_is_healthy() {
        let g = group(
            Algorithm::RoundRobin,
            vec![
                target("a", HEALTHY, false),
                target("b", UNHEALTHY, false),
                target("c", HEALTHY, false),
                target("d", HEALTHY, true),
            ],
        );
        let picks: Vec<&str> = (0..4).map(|_| g.pick(None).unwrap().key.as_str()).collect();
        assert_eq!(picks, ["a", "c", "a", "c"]);
        // A sticky target that is healthy wins; one that is not is ignored.
        assert_eq!(g.pick(Some("c")).unwrap().key, "c");
        assert_ne!(g.pick(Some("b")).unwrap().key, "b");
        // None healthy: ELB fails open to all registered (not draining) targets.
        let open = group(
            Algorithm::RoundRobin,
            vec![
                target("a", UNHEALTHY, false),
                target("b", INITIAL, false),
                target("c", UNHEALTHY, true),
            ],
        );
        let picks: std::collections::BTreeSet<&str> = (0..4)
            .map(|_| open.pick(None).unwrap().key.as_str())
            .collect();
        assert_eq!(picks, ["a", "b"].into_iter().collect());
        assert!(
            group(Algorithm::RoundRobin, vec![target("a", HEALTHY, true)])
                .pick(None)
                .is_none()
        );
    }

    #[test]
    fn least_outstanding_requests_avoids_the_busy_target() {
        let g = group(
            Algorithm::LeastOutstandingRequests,
            vec![
                target("busy", HEALTHY, false),
                target("idle", HEALTHY, false),
            ],
        );
        g.targets[0].cell.in_flight.store(3, Ordering::Relaxed);
        for _ in 0..4 {
            assert_eq!(g.pick(None).unwrap().key, "idle");
        }
    }
}
