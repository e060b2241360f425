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
use kumori_services::ec2::api::{Capture, Machine, machine_seen};
use kumori_store::Store;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where instances run: their layers under `dir`, root filesystems cached under `cache`.
#[derive(Debug, Clone)]
pub struct Machines {
    pub dir: std::path::PathBuf,
    pub cache: std::path::PathBuf,
}

impl Machines {
    /// Where root volumes captured by CreateImage are kept, one layer per image.
    fn layers(&self) -> std::path::PathBuf {
        self.dir.join("images")
    }
}

/// The port kumori's API answers on inside each VPC, at the metadata service's address.
pub const API_PORT: u16 = 4566;

/// `kumori dataplane down`: removes the instance containers (and their root mounts) a
/// crashed server left under `prefix`; answers how many.
pub fn sweep_instances(prefix: &str) -> usize {
    kumori_machines::container::sweep(prefix)
}

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
    /// The image's root filesystem, once built (or why it could not be).
    rootfs: Option<Result<std::path::PathBuf, String>>,
    /// Containers this process started, by name.
    containers: std::collections::BTreeSet<String>,
    /// The account of each instance, for its metadata service.
    accounts: std::collections::HashMap<String, String>,
    /// The services in each VPC's router (the metadata service, the DNS server), by VPC id.
    services: std::collections::HashMap<String, Vec<tokio::task::JoinHandle<()>>>,
    /// The region of each VPC with instances (its DNS names say it).
    regions: std::collections::HashMap<String, String>,
    /// kumori's own API, to serve inside every VPC (`serve_api`), and where it is served.
    api: Option<(axum::Router, crate::serve::ServeOptions)>,
    api_tasks: std::collections::HashMap<String, tokio::task::JoinHandle<()>>,
    /// Instances whose SSH server is being waited for (`pending`), by id.
    booting: std::collections::BTreeSet<String>,
    /// The reboot count each container was started at, by name: when the store's moves,
    /// the container is restarted.
    boots: std::collections::HashMap<String, u64>,
    /// The volumes plugged into each running container, by container name and volume id,
    /// with the device name they were plugged at.
    plugged: std::collections::HashMap<
        String,
        std::collections::BTreeMap<String, (String, kumori_machines::volume::Plugged)>,
    >,
    stopped: bool,
}

/// The running data plane.
pub struct Dataplane {
    options: Options,
    machines: Option<Machines>,
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
    pub fn start(
        store: Store,
        options: Options,
        machines: Option<Machines>,
    ) -> Result<Arc<Dataplane>, String> {
        kumori_dataplane::check_capable()?;
        // Containers an earlier process left hold its namespaces: stopped first, so that the
        // sweep below really removes them.
        if let Some(m) = &machines {
            for name in
                kumori_machines::container::containers_with(&format!("{}-i-", options.prefix))
            {
                if let Err(e) =
                    kumori_machines::container::stop(&m.dir, &name, Duration::from_secs(2))
                {
                    tracing::warn!("data plane: stopping {name}: {e}");
                }
            }
            // Their volumes' loop devices too.
            for id in kumori_machines::volume::files(&m.dir) {
                kumori_machines::volume::unbind(&m.dir, &id);
            }
        }
        let state = Arc::new(Mutex::new(State {
            reconciler: Reconciler::new(&options.prefix),
            network: Network::default(),
            last: None,
            rounds: 0,
            applied: None,
            rootfs: None,
            containers: Default::default(),
            accounts: Default::default(),
            services: Default::default(),
            regions: Default::default(),
            api: None,
            api_tasks: Default::default(),
            booting: Default::default(),
            boots: Default::default(),
            plugged: Default::default(),
            stopped: false,
        }));
        let dp = Arc::new(Dataplane {
            options: options.clone(),
            machines: machines.clone(),
            state: state.clone(),
        });
        if let Some(m) = &machines {
            // Launches wait for the SSH server, stops for the processes to end.
            kumori_services::ec2::instances::set_real_boots();
            let prefix = options.prefix.clone();
            kumori_services::ec2::instances::set_liveness(Box::new(move |_account, id| {
                Some(kumori_machines::container::running(&format!(
                    "{prefix}-{id}"
                )))
            }));
            // GetConsoleOutput reads what each container printed.
            let (dir, prefix) = (m.dir.clone(), options.prefix.clone());
            kumori_services::ec2::instances::set_console_reader(Box::new(move |_account, id| {
                let l = kumori_machines::container::Layout::new(&dir, &format!("{prefix}-{id}"));
                std::fs::read(l.console()).ok()
            }));
            kumori_machines::hostkeys::warm();
            // Built once and cached; a minute or two the first time, so not in the way of
            // the API: instances wait for it.
            let cache = m.cache.clone();
            let st = state.clone();
            std::thread::spawn(move || {
                let built = kumori_machines::rootfs::ensure(&cache);
                if let Err(e) = &built {
                    tracing::warn!("data plane: {e}");
                }
                st.lock().expect("data plane state").rootfs = Some(built);
            });
        }
        tokio::spawn(run(store, options, machines, state));
        Ok(dp)
    }

    /// Removes the whole fabric and stops the loop.
    pub async fn shutdown(&self) {
        let state = self.state.clone();
        let machines = self.machines.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let mut s = state.lock().expect("data plane state");
            s.stopped = true;
            for task in s.services.drain().flat_map(|(_, t)| t) {
                task.abort();
            }
            for (_, task) in s.api_tasks.drain() {
                task.abort();
            }
            if let Some(m) = &machines {
                for name in std::mem::take(&mut s.containers) {
                    let _ = kumori_machines::container::stop(&m.dir, &name, Duration::from_secs(5));
                }
                for id in kumori_machines::volume::files(&m.dir) {
                    kumori_machines::volume::unbind(&m.dir, &id);
                }
            }
            s.reconciler.down()
        })
        .await;
    }

    /// Serves kumori's API inside every VPC too, at `http://169.254.169.254:4566` (the
    /// metadata service's address, another port), so that programs on instances (the aws
    /// CLI with the role's credentials) reach it as a process on the host does: the same
    /// app, the same authentication and policies.
    /// The prefix of the fabric's namespace names.
    pub fn prefix(&self) -> &str {
        &self.options.prefix
    }

    pub fn serve_api(&self, app: axum::Router, options: crate::serve::ServeOptions) {
        self.state.lock().expect("data plane state").api = Some((app, options));
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
            "instances": match (&self.machines, &s.rootfs) {
                (None, _) => serde_json::json!("records only"),
                (Some(_), None) => serde_json::json!({ "image": "building" }),
                (Some(_), Some(Ok(_))) => serde_json::json!({ "image": "ready", "containers": s.containers.len() }),
                (Some(_), Some(Err(e))) => serde_json::json!({ "image": e }),
            },
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

async fn run(store: Store, options: Options, machines: Option<Machines>, state: Arc<Mutex<State>>) {
    let limits = Limits::default();
    let mut applied: Option<i64> = None;
    let mut had_rootfs = false;
    let mut had_api = false;
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
        // The root filesystem arriving (or failing) is a change too: instances waited for it.
        let (has_rootfs, has_api) = {
            let s = state.lock().expect("data plane state");
            (s.rootfs.is_some(), s.api.is_some())
        };
        if applied == Some(changes) && has_rootfs == had_rootfs && has_api == had_api {
            continue;
        }
        had_rootfs = has_rootfs;
        had_api = has_api;
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
        let wanted = match &machines {
            Some(_) => match kumori_services::ec2::api::machines(&store, &limits).await {
                Ok(m) => Some(m),
                Err(e) => {
                    tracing::warn!("data plane: reading instances: {}", e.0.message);
                    None
                }
            },
            None => None,
        };
        // Only with the instances in hand: their layers must not be taken for unused.
        let captures = match &machines {
            Some(_) if wanted.is_some() => {
                match kumori_services::ec2::api::captures(&store).await {
                    Ok((pending, mut used)) => {
                        // Instances run on their layers after their image is deregistered.
                        for w in wanted.iter().flatten() {
                            used.extend(w.layers.iter().cloned());
                        }
                        Some((pending, used))
                    }
                    Err(e) => {
                        tracing::warn!("data plane: reading images: {}", e.0.message);
                        None
                    }
                }
            }
            _ => None,
        };
        let volumes = match &machines {
            Some(_) => kumori_services::ec2::api::volume_ids(&store).await.ok(),
            None => None,
        };
        let st = state.clone();
        let prefix = options.prefix.clone();
        let fabric_vpcs: Vec<String> = net.vpcs.keys().cloned().collect();
        let machines_at = machines.clone();
        let report = tokio::task::spawn_blocking(move || {
            let mut s = st.lock().expect("data plane state");
            if s.stopped {
                return None;
            }
            let mut r = s.reconciler.apply(&fabric);
            s.network = net;
            let mut seen = Seen::default();
            if let (Some(m), Some(wanted)) = (&machines_at, wanted) {
                s.accounts = wanted
                    .iter()
                    .map(|w| (w.instance_id.clone(), w.account.clone()))
                    .collect();
                s.regions = wanted
                    .iter()
                    .map(|w| (w.vpc_id.clone(), w.region.clone()))
                    .collect();
                seen = run_machines(&mut s, m, &prefix, &wanted, &mut r.errors);
            }
            if let (Some(m), Some((pending, used))) = (&machines_at, captures) {
                seen.captured = capture_images(m, &prefix, &pending, &used);
            }
            // Deleted volumes' files go.
            if let (Some(m), Some(volumes)) = (&machines_at, volumes) {
                for id in kumori_machines::volume::files(&m.dir) {
                    if !volumes.contains(&id) {
                        kumori_machines::volume::remove(&m.dir, &id);
                    }
                }
            }
            // The metadata service: a listener in each new VPC's router, none for a gone one.
            let names = Names(&prefix);
            let vpcs: Vec<String> = fabric_vpcs.clone();
            s.services.retain(|vpc, tasks| {
                let keep = vpcs.contains(vpc);
                if !keep {
                    tasks.iter().for_each(|t| t.abort());
                }
                keep
            });
            s.api_tasks.retain(|vpc, task| {
                let keep = vpcs.contains(vpc);
                if !keep {
                    task.abort();
                }
                keep
            });
            let mut apis = Vec::new();
            if machines_at.is_some() && s.api.is_some() {
                for vpc in vpcs.iter().filter(|v| !s.api_tasks.contains_key(*v)) {
                    let bound = kumori_dataplane::netns::in_netns(&names.vpc(vpc), || {
                        let l = std::net::TcpListener::bind((
                            kumori_dataplane::plan::IMDS_ADDRESS,
                            API_PORT,
                        ))
                        .map_err(|e| format!("kumori's API: {e}"))?;
                        l.set_nonblocking(true).map_err(|e| e.to_string())?;
                        Ok(l)
                    });
                    match bound {
                        Ok(l) => apis.push((vpc.clone(), l)),
                        Err(e) => r.errors.push(format!("{vpc}: {e}")),
                    }
                }
            }
            let mut listeners = Vec::new();
            if machines_at.is_some() {
                for vpc in vpcs.iter().filter(|v| !s.services.contains_key(*v)) {
                    let dns = s
                        .network
                        .vpcs
                        .get(vpc)
                        .and_then(kumori_dataplane::plan::resolver);
                    let bound = kumori_dataplane::netns::in_netns(&names.vpc(vpc), move || {
                        let l =
                            std::net::TcpListener::bind((kumori_dataplane::plan::IMDS_ADDRESS, 80))
                                .map_err(|e| format!("metadata service: {e}"))?;
                        l.set_nonblocking(true).map_err(|e| e.to_string())?;
                        let d = match dns {
                            Some(ip) => {
                                let d = std::net::UdpSocket::bind((ip, 53))
                                    .map_err(|e| format!("DNS server: {e}"))?;
                                d.set_nonblocking(true).map_err(|e| e.to_string())?;
                                Some(d)
                            }
                            None => None,
                        };
                        Ok((l, d))
                    });
                    match bound {
                        Ok(l) => listeners.push((vpc.clone(), l)),
                        Err(e) => r.errors.push(format!("{vpc}: {e}")),
                    }
                }
            }
            s.rounds += 1;
            s.applied = Some(changes);
            s.last = Some(r.clone());
            Some((r, listeners, apis, seen))
        })
        .await;
        let Ok(Some((report, listeners, apis, seen))) = report else {
            return;
        };
        let api = state.lock().expect("data plane state").api.clone();
        if let Some((app, serve_options)) = api {
            for (vpc, l) in apis {
                match tokio::net::TcpListener::from_std(l) {
                    Ok(l) => {
                        let task = tokio::spawn({
                            let (app, serve_options) = (app.clone(), serve_options.clone());
                            async move {
                                let _ = crate::serve::serve(
                                    l,
                                    app,
                                    serve_options,
                                    std::future::pending(),
                                )
                                .await;
                            }
                        });
                        state
                            .lock()
                            .expect("data plane state")
                            .api_tasks
                            .insert(vpc, task);
                    }
                    Err(e) => tracing::warn!("data plane: kumori's API in {vpc}: {e}"),
                }
            }
        }
        for (m, what) in seen.now {
            if let Err(e) = machine_seen(&store, &m, what).await {
                tracing::warn!("data plane: {}: {}", m.instance_id, e.0.message);
            }
        }
        for (c, outcome) in seen.captured {
            if let Err(e) = kumori_services::ec2::api::captured(&store, &c, outcome).await {
                tracing::warn!("data plane: {}: {}", c.image_id, e.0.message);
            }
        }
        for m in seen.booting {
            tokio::spawn(watch_boot(
                store.clone(),
                state.clone(),
                Names(&options.prefix).interface(&m.interface_id),
                m,
            ));
        }
        for (vpc, (listener, dns)) in listeners {
            let mut tasks = Vec::new();
            match tokio::net::TcpListener::from_std(listener) {
                Ok(l) => tasks.push(tokio::spawn(serve_imds(
                    l,
                    vpc.clone(),
                    store.clone(),
                    state.clone(),
                ))),
                Err(e) => tracing::warn!("data plane: metadata service in {vpc}: {e}"),
            }
            match dns.map(tokio::net::UdpSocket::from_std) {
                Some(Ok(d)) => tasks.push(tokio::spawn(serve_dns(d, vpc.clone(), state.clone()))),
                Some(Err(e)) => tracing::warn!("data plane: DNS server in {vpc}: {e}"),
                None => {}
            }
            state
                .lock()
                .expect("data plane state")
                .services
                .insert(vpc, tasks);
        }
        for e in &report.errors {
            tracing::warn!("data plane: {e}");
        }
        if !report.errors.is_empty() {
            // Something did not take (a container that would not start while its last
            // one was going): the next round tries again, change or not.
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
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

/// What a round saw of instances: states to record now, and instances to watch boot.
#[derive(Default)]
struct Seen {
    now: Vec<(Machine, kumori_services::ec2::api::Seen)>,
    booting: Vec<Machine>,
    captured: Vec<(Capture, Result<(), String>)>,
}

/// Captures the root volumes images wait for, and removes layers no image runs on.
fn capture_images(
    m: &Machines,
    prefix: &str,
    pending: &[Capture],
    used: &std::collections::BTreeSet<String>,
) -> Vec<(Capture, Result<(), String>)> {
    let dir = m.layers();
    let out = pending
        .iter()
        .map(|c| {
            let name = format!("{prefix}-{}", c.instance_id);
            let r = kumori_machines::container::capture(&m.dir, &name, &dir.join(&c.image_id));
            (c.clone(), r)
        })
        .collect();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            if !used.contains(&id) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    out
}

/// Brings the containers in step with the instances: pending and running ones run (a
/// reboot restarts them), stopping and stopped ones are stopped (their root volume kept),
/// terminated or gone ones are removed.
fn run_machines(
    s: &mut State,
    m: &Machines,
    prefix: &str,
    wanted: &[Machine],
    errors: &mut Vec<String>,
) -> Seen {
    use kumori_machines::container::{Spec, destroy, running, start, stop};
    use kumori_services::ec2::api::Seen as Saw;
    let mut out = Seen::default();
    let rootfs = match s.rootfs.clone() {
        Some(Ok(r)) => r,
        // No root filesystem can be had: instances waiting to boot never will.
        Some(Err(e)) => {
            for w in wanted.iter().filter(|w| w.state == "pending") {
                out.now.push((
                    w.clone(),
                    Saw::Failed(format!("the image's root filesystem: {e}")),
                ));
            }
            return out;
        }
        None => return out,
    };
    let names = Names(prefix);
    let mut seen = std::collections::BTreeSet::new();
    for w in wanted {
        let name = format!("{prefix}-{}", w.instance_id);
        seen.insert(name.clone());
        match w.state.as_str() {
            "pending" | "running" => {
                let up = running(&name);
                let rebooted = s.boots.get(&name).is_some_and(|b| *b != w.reboots);
                if up && rebooted {
                    // A reboot: the processes end and the instance boots again, same root.
                    if let Err(e) = stop(&m.dir, &name, Duration::from_secs(5)) {
                        errors.push(format!("{}: {e}", w.instance_id));
                        continue;
                    }
                } else if up {
                    s.boots.insert(name.clone(), w.reboots);
                    if w.state == "pending" && s.booting.insert(w.instance_id.clone()) {
                        out.booting.push(w.clone());
                    }
                    sync_disks(s, m, &name, w, errors);
                    continue;
                }
                // A new container has a new /dev: whatever was plugged is plugged again.
                unplug_all(s, m, &name);
                let kind = kumori_catalog::instance_type(&w.instance_type);
                let memory_mib = kind
                    .and_then(|t| t["MemoryInfo"]["SizeInMiB"].as_u64())
                    .unwrap_or(1024);
                let vcpus = kind
                    .and_then(|t| t["VCpuInfo"]["DefaultVCpus"].as_u64())
                    .unwrap_or(1) as u32;
                let spec = Spec {
                    name: name.clone(),
                    netns: names.interface(&w.interface_id),
                    hostname: format!("ip-{}", w.private_ip.replace('.', "-")),
                    user: kumori_machines::rootfs::default_user(&w.image_name).into(),
                    authorized_key: w.public_key.clone(),
                    user_data: w.user_data.clone(),
                    memory_bytes: memory_mib << 20,
                    vcpus,
                    layers: w.layers.iter().map(|l| m.layers().join(l)).collect(),
                    resolver: s
                        .network
                        .vpcs
                        .get(&w.vpc_id)
                        .and_then(kumori_dataplane::plan::resolver),
                    domain: kumori_dns::domain(&w.region),
                };
                match start(&m.dir, &rootfs, &spec) {
                    Ok(()) => {
                        s.containers.insert(name.clone());
                        s.boots.insert(name.clone(), w.reboots);
                        if w.state == "pending" && s.booting.insert(w.instance_id.clone()) {
                            out.booting.push(w.clone());
                        }
                        sync_disks(s, m, &name, w, errors);
                    }
                    Err(e) => errors.push(format!("{}: {e}", w.instance_id)),
                }
            }
            "stopping" | "stopped" => {
                match stop(&m.dir, &name, Duration::from_secs(5)) {
                    Ok(()) if w.state == "stopping" => out.now.push((w.clone(), Saw::Down)),
                    Ok(()) => {}
                    Err(e) => errors.push(format!("{}: {e}", w.instance_id)),
                }
                s.containers.remove(&name);
                s.boots.remove(&name);
                unplug_all(s, m, &name);
            }
            _ => {
                if let Err(e) = destroy(&m.dir, &name) {
                    errors.push(format!("{}: {e}", w.instance_id));
                }
                s.containers.remove(&name);
                s.boots.remove(&name);
                unplug_all(s, m, &name);
            }
        }
    }
    // Terminated instances leave the describes (and this list) in time: their containers go.
    let gone: Vec<String> = s.containers.difference(&seen).cloned().collect();
    for name in gone {
        if let Err(e) = destroy(&m.dir, &name) {
            errors.push(format!("{name}: {e}"));
        }
        s.containers.remove(&name);
        s.boots.remove(&name);
        unplug_all(s, m, &name);
    }
    out
}

/// Plugs the volumes attached to a running instance into its container and takes out those
/// detached (their loop devices let go).
fn sync_disks(s: &mut State, m: &Machines, name: &str, w: &Machine, errors: &mut Vec<String>) {
    use kumori_machines::volume::{Disk, plug, unbind, unplug};
    let have = s.plugged.entry(name.to_string()).or_default();
    let gone: Vec<String> = have
        .iter()
        .filter(|(id, (device, _))| !w.disks.iter().any(|(i, d, _)| i == *id && d == device))
        .map(|(id, _)| id.clone())
        .collect();
    for id in gone {
        if let Some((_, p)) = have.remove(&id) {
            unplug(name, &p);
            unbind(&m.dir, &id);
        }
    }
    for (id, device, size) in &w.disks {
        if have.contains_key(id) {
            continue;
        }
        let disk = Disk {
            volume_id: id.clone(),
            device: device.clone(),
            size_gib: *size,
        };
        match plug(&m.dir, name, &disk) {
            Ok(p) => {
                have.insert(id.clone(), (device.clone(), p));
            }
            Err(e) => errors.push(format!("{}: volume {id}: {e}", w.instance_id)),
        }
    }
}

/// Forgets what was plugged into a container that is gone, letting its loop devices go.
fn unplug_all(s: &mut State, m: &Machines, name: &str) {
    for (id, _) in s.plugged.remove(name).unwrap_or_default() {
        kumori_machines::volume::unbind(&m.dir, &id);
    }
}

/// How long a booting instance's SSH server is waited for before the instance is shown
/// running anyway (its instance check then says whether it is alive).
const BOOT_WAIT: Duration = Duration::from_secs(120);

/// Waits for a booting instance's SSH server to greet (`SSH-`), asked inside its own
/// namespace so no security group or route is in the way, then records it running.
async fn watch_boot(store: Store, state: Arc<Mutex<State>>, netns: String, m: Machine) {
    let until = Instant::now() + BOOT_WAIT;
    loop {
        let ns = netns.clone();
        let greeted = tokio::task::spawn_blocking(move || {
            kumori_dataplane::netns::in_netns(&ns, || {
                use std::io::Read;
                let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 22));
                let mut c = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300))
                    .map_err(|e| e.to_string())?;
                c.set_read_timeout(Some(Duration::from_millis(500)))
                    .map_err(|e| e.to_string())?;
                let mut hello = [0u8; 4];
                c.read_exact(&mut hello).map_err(|e| e.to_string())?;
                Ok(&hello == b"SSH-")
            })
        })
        .await
        .ok()
        .and_then(|r| r.ok())
        .unwrap_or(false);
        let stopped = state.lock().expect("data plane state").stopped;
        if stopped {
            return;
        }
        if greeted || Instant::now() > until {
            if !greeted {
                tracing::warn!(
                    "data plane: {}: no SSH server after {BOOT_WAIT:?}; shown running",
                    m.instance_id
                );
            }
            if let Err(e) = machine_seen(&store, &m, kumori_services::ec2::api::Seen::Up).await {
                tracing::warn!("data plane: {}: {}", m.instance_id, e.0.message);
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    state
        .lock()
        .expect("data plane state")
        .booting
        .remove(&m.instance_id);
}

/// The VPC's DNS server (at its base address + 2): EC2's private host names, answered by
/// `kumori-dns` from the VPC's ranges as last applied.
async fn serve_dns(socket: tokio::net::UdpSocket, vpc: String, state: Arc<Mutex<State>>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, peer) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("DNS server in {vpc}: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let resolver = {
            let s = state.lock().expect("data plane state");
            s.network.vpcs.get(&vpc).map(|v| kumori_dns::Vpc {
                cidrs: v.cidrs.clone(),
                region: s
                    .regions
                    .get(&vpc)
                    .cloned()
                    .unwrap_or_else(|| "us-east-1".into()),
            })
        };
        if let Some(answer) = resolver.and_then(|r| r.answer(&buf[..n])) {
            let _ = socket.send_to(&answer, peer).await;
        }
    }
}

/// The metadata service inside a VPC: requests to 169.254.169.254 reach the router, and are
/// answered as the instance whose private address sent them, by the same code as the
/// per-instance endpoint (`services::ec2::imds`), tokens and role credentials included.
async fn serve_imds(
    listener: tokio::net::TcpListener,
    vpc: String,
    store: Store,
    state: Arc<Mutex<State>>,
) {
    use http_body_util::Full;
    use hyper::body::Bytes;
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Out of descriptors, say: wait rather than spin.
                tracing::warn!("metadata service in {vpc}: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (store, state, vpc) = (store.clone(), state.clone(), vpc.clone());
        // A second handle on the socket, to set the TTL each answer leaves with (a token's
        // is the hop limit) while hyper owns the stream.
        let ttl = {
            use std::os::fd::AsFd;
            stream
                .as_fd()
                .try_clone_to_owned()
                .ok()
                .map(std::net::TcpStream::from)
                .and_then(|s| Some((s.ttl().ok()?, s)))
        };
        let ttl = Arc::new(ttl);
        tokio::spawn(async move {
            let svc =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let (store, state, vpc, ttl) =
                        (store.clone(), state.clone(), vpc.clone(), ttl.clone());
                    async move {
                        let caller = {
                            let s = state.lock().expect("data plane state");
                            let ip = match peer.ip() {
                                std::net::IpAddr::V4(ip) => Some(ip),
                                _ => None,
                            };
                            s.network
                                .interfaces
                                .values()
                                .find(|e| {
                                    e.vpc_id == vpc
                                        && ip.is_some_and(|ip| e.private_ips.contains(&ip))
                                })
                                .and_then(|e| match &e.owner {
                                    kumori_net::reach::model::Owner::Instance(i) => Some(i.clone()),
                                    _ => None,
                                })
                                .and_then(|i| s.accounts.get(&i).map(|a| (i, a.clone())))
                        };
                        let reply = |status: u16, body: String, headers: Vec<(String, String)>| {
                            let mut r = hyper::Response::new(Full::new(Bytes::from(body)));
                            *r.status_mut() = hyper::StatusCode::from_u16(status)
                                .unwrap_or(hyper::StatusCode::OK);
                            let h = r.headers_mut();
                            h.insert(
                                "content-type",
                                hyper::header::HeaderValue::from_static("text/plain"),
                            );
                            h.insert("server", hyper::header::HeaderValue::from_static("EC2ws"));
                            for (n, v) in headers {
                                if let (Ok(n), Ok(v)) = (
                                    hyper::header::HeaderName::from_bytes(n.as_bytes()),
                                    hyper::header::HeaderValue::from_str(&v),
                                ) {
                                    h.insert(n, v);
                                }
                            }
                            Ok::<_, std::convert::Infallible>(r)
                        };
                        let Some((instance, account)) = caller else {
                            return reply(404, "Not Found".into(), vec![]);
                        };
                        let headers: Vec<(String, String)> = req
                            .headers()
                            .iter()
                            .filter_map(|(n, v)| {
                                Some((
                                    n.as_str().to_ascii_lowercase(),
                                    v.to_str().ok()?.to_string(),
                                ))
                            })
                            .collect();
                        let limits = Limits::default();
                        let ctx =
                            kumori_services::Ctx::root(&store, &account, "us-east-1", &limits);
                        let r = kumori_services::ec2::imds::ImdsRequest {
                            method: req.method().as_str(),
                            path: req.uri().path(),
                            headers,
                        };
                        match kumori_services::ec2::imds::handle(&ctx, &instance, &r).await {
                            Ok(out) => {
                                if let Some((default, socket)) = &*ttl {
                                    let _ = socket.set_ttl(out.ip_ttl.map_or(*default, u32::from));
                                }
                                reply(out.status, out.body, out.headers)
                            }
                            Err(e) => reply(500, e.0.to_string(), vec![]),
                        }
                    }
                });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                .await;
        });
    }
}
