//! Applying a plan to the kernel: the difference between what was applied and what is
//! wanted, namespace by namespace, through iproute2 (`ip -batch`, one process per
//! namespace and change) and nftables (`nft -f`, which replaces a namespace's table in one
//! transaction, so a packet sees the old rules or the new, never half of each). Conntrack
//! entries live beside the rules, not in them: a rules change leaves established flows
//! alone, and a stateless ACL, checked on every packet, still cuts them.

use crate::netns;
use crate::plan::{Fabric, HOST, Item, Link, Namespace};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What one application did.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub namespaces_added: usize,
    pub namespaces_removed: usize,
    pub links_added: usize,
    pub commands: usize,
    pub rulesets: usize,
    pub took: Duration,
    /// Commands the kernel refused, with what it said.
    pub errors: Vec<String>,
}

impl Report {
    pub fn changed(&self) -> bool {
        self.namespaces_added
            + self.namespaces_removed
            + self.links_added
            + self.commands
            + self.rulesets
            > 0
    }
}

/// Keeps the kernel in step with successive plans. Remembers what it applied, so each plan
/// costs only its difference; a new `Reconciler` first removes whatever an earlier process
/// with the same prefix left (`sweep`), then builds everything.
pub struct Reconciler {
    prefix: String,
    applied: BTreeMap<String, Namespace>,
    links: BTreeSet<Link>,
    host: BTreeSet<Item>,
}

/// Runs `cmd`, feeding it `input`; Err carries what it printed.
fn run(mut cmd: Command, input: Option<&str>) -> Result<(), String> {
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    let what = format!("{cmd:?}");
    let mut child = cmd.spawn().map_err(|e| format!("{what}: {e}"))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        let _ = stdin.write_all(text.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{what}: {e}"))?;
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if out.status.success() && err.is_empty() {
        Ok(())
    } else {
        Err(format!("{what}: {err}"))
    }
}

fn ip(ns: &str) -> Command {
    let mut c = Command::new("ip");
    if ns != HOST {
        c.args(["-n", ns]);
    }
    c
}

/// Lines for `ip -batch`, as one input.
fn batch(lines: &[&str]) -> String {
    let mut s = lines.join("\n");
    s.push('\n');
    s
}

fn ip_batch(ns: &str, lines: &[&str], errors: &mut Vec<String>) {
    if lines.is_empty() {
        return;
    }
    let mut c = ip(ns);
    c.args(["-force", "-batch", "-"]);
    let input = batch(lines);
    if let Err(e) = run(c, Some(&input)) {
        // `ip` names failed commands by line: keep the lines with the error.
        let numbered: Vec<String> = lines
            .iter()
            .enumerate()
            .map(|(i, l)| format!("  {}: {l}", i + 1))
            .collect();
        errors.push(format!("{e}\n{}", numbered.join("\n")));
    }
}

/// The namespaces whose names start with `prefix-`, as `ip netns` keeps them.
pub fn namespaces_with(prefix: &str) -> Vec<String> {
    let want = format!("{prefix}-");
    let mut out: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with(&want))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Whether this process may build a fabric: Linux, the tools, and the right to make
/// namespaces. The error says what is missing.
pub fn check_capable() -> Result<(), String> {
    if !cfg!(target_os = "linux") {
        return Err("the data plane needs Linux".into());
    }
    for tool in ["ip", "nft"] {
        let found = Command::new(tool)
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !found {
            return Err(format!(
                "the data plane needs `{tool}` (Debian: apt-get install iproute2 nftables)"
            ));
        }
    }
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root && !netns::has_cap_net_admin() {
        return Err(
            "the data plane needs root or CAP_NET_ADMIN (and CAP_SYS_ADMIN for namespaces): run as root, or without --dataplane".into(),
        );
    }
    Ok(())
}

impl Reconciler {
    /// A reconciler for `prefix`, after removing what an earlier one left.
    pub fn new(prefix: &str) -> Reconciler {
        let mut r = Reconciler {
            prefix: prefix.to_string(),
            applied: BTreeMap::new(),
            links: BTreeSet::new(),
            host: BTreeSet::new(),
        };
        r.sweep();
        r
    }

    /// Removes everything with this reconciler's prefix: its namespaces (and so every link
    /// with an end in one) and the host's link.
    pub fn sweep(&mut self) -> usize {
        let names = namespaces_with(&self.prefix);
        let mut errors = Vec::new();
        let lines: Vec<String> = names.iter().map(|n| format!("netns del {n}")).collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        ip_batch(HOST, &refs, &mut errors);
        let host_dev = format!("{}-host", self.prefix);
        if std::path::Path::new(&format!("/sys/class/net/{host_dev}")).exists() {
            let mut c = ip(HOST);
            c.args(["link", "del", &host_dev]);
            let _ = run(c, None);
        }
        for e in errors {
            tracing::warn!("data plane sweep: {e}");
        }
        self.applied.clear();
        self.links.clear();
        self.host.clear();
        names.len()
    }

    /// Brings the kernel to `want`.
    pub fn apply(&mut self, want: &Fabric) -> Report {
        let started = Instant::now();
        let mut rep = Report::default();
        let errors = &mut rep.errors;

        // Namespaces that go take their links with them.
        let gone: Vec<String> = self
            .applied
            .keys()
            .filter(|n| !want.namespaces.contains_key(*n))
            .cloned()
            .collect();
        if !gone.is_empty() {
            let gone_set: BTreeSet<&String> = gone.iter().collect();
            let dropped: Vec<Link> = self
                .links
                .iter()
                .filter(|l| gone_set.contains(&l.a.ns) || gone_set.contains(&l.b.ns))
                .cloned()
                .collect();
            // A deleted namespace is destroyed later, by the kernel, with its links: delete
            // those first, so that their far ends (and routes over them) are gone before
            // anything new is added beside them.
            self.delete_links(dropped, errors);
            let lines: Vec<String> = gone.iter().map(|n| format!("netns del {n}")).collect();
            let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
            ip_batch(HOST, &refs, errors);
            for n in &gone {
                self.applied.remove(n);
            }
            rep.namespaces_removed = gone.len();
        }
        // Links no longer wanted.
        let stale: Vec<Link> = self.links.difference(&want.links).cloned().collect();
        self.delete_links(stale, errors);
        // New namespaces, with their sysctls set before any link is made in them (links
        // take the namespace's defaults when they are made).
        let new: Vec<String> = want
            .namespaces
            .keys()
            .filter(|n| !self.applied.contains_key(*n))
            .cloned()
            .collect();
        if !new.is_empty() {
            let mut lines = Vec::new();
            for n in &new {
                if std::path::Path::new(&format!("/run/netns/{n}")).exists() {
                    lines.push(format!("netns del {n}"));
                }
                lines.push(format!("netns add {n}"));
            }
            let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
            ip_batch(HOST, &refs, errors);
            for n in &new {
                self.applied.insert(n.clone(), Namespace::default());
            }
            rep.namespaces_added = new.len();
        }
        for (name, ns) in &want.namespaces {
            let had = &self.applied[name].sysctls;
            let changed: Vec<(String, String)> = ns
                .sysctls
                .iter()
                .filter(|(k, v)| had.get(*k) != Some(*v))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if !changed.is_empty() {
                if let Err(e) = netns::sysctls(name, &changed) {
                    errors.push(format!("{name}: {e}"));
                }
                self.applied.get_mut(name).expect("applied").sysctls = ns.sysctls.clone();
            }
        }
        // New links, made straight into their namespaces.
        let fresh: Vec<Link> = want.links.difference(&self.links).cloned().collect();
        if !fresh.is_empty() {
            let lines: Vec<String> = fresh
                .iter()
                .map(|l| {
                    let at = |ns: &str| {
                        if ns == HOST {
                            String::new()
                        } else {
                            format!(" netns {ns}")
                        }
                    };
                    format!(
                        "link add {}{} type veth peer name {}{}",
                        l.a.dev,
                        at(&l.a.ns),
                        l.b.dev,
                        at(&l.b.ns)
                    )
                })
                .collect();
            let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
            ip_batch(HOST, &refs, errors);
            for l in fresh {
                self.forget_dev(&l.a.ns, &l.a.dev);
                self.forget_dev(&l.b.ns, &l.b.dev);
                self.links.insert(l);
                rep.links_added += 1;
            }
        }
        // Addresses, routes and rules; then the ruleset.
        for (name, ns) in &want.namespaces {
            let had = self.applied.get_mut(name).expect("applied");
            rep.commands += diff_items(name, &had.items, &ns.items, errors);
            had.items = ns.items.clone();
            if had.nft != ns.nft {
                if let Err(e) = netns::nft(name, &ns.nft, !had.nft.is_empty()) {
                    errors.push(format!("{name}: {e}"));
                }
                had.nft = ns.nft.clone();
                rep.rulesets += 1;
            }
        }
        rep.commands += diff_items(HOST, &self.host, &want.host, errors);
        self.host = want.host.clone();
        rep.took = started.elapsed();
        rep
    }

    /// Deletes veth links (either end takes both), one `ip -batch` per namespace, and
    /// forgets what was applied on them.
    fn delete_links(&mut self, links: Vec<Link>, errors: &mut Vec<String>) {
        let mut by_ns: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for l in &links {
            by_ns
                .entry(l.a.ns.clone())
                .or_default()
                .push(format!("link del dev {}", l.a.dev));
        }
        for (ns, lines) in &by_ns {
            let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
            ip_batch(ns, &refs, errors);
        }
        for l in links {
            self.links.remove(&l);
            self.forget_dev(&l.a.ns, &l.a.dev);
            self.forget_dev(&l.b.ns, &l.b.dev);
        }
    }

    /// Forgets what was applied on a device that went (or was made anew).
    fn forget_dev(&mut self, ns: &str, dev: &str) {
        let items = if ns == HOST {
            &mut self.host
        } else if let Some(n) = self.applied.get_mut(ns) {
            &mut n.items
        } else {
            return;
        };
        items.retain(|i| i.dev.as_deref() != Some(dev));
    }

    /// Removes the whole fabric.
    pub fn down(&mut self) -> usize {
        self.sweep()
    }
}

/// Applies the difference between two item sets in `ns`; answers how many commands ran.
fn diff_items(
    ns: &str,
    had: &BTreeSet<Item>,
    want: &BTreeSet<Item>,
    errors: &mut Vec<String>,
) -> usize {
    let mut dels: Vec<&Item> = had.difference(want).filter(|i| i.del.is_some()).collect();
    dels.sort_by_key(|i| std::cmp::Reverse(i.stage));
    let mut adds: Vec<&Item> = want.difference(had).collect();
    adds.sort_by_key(|i| i.stage);
    let lines: Vec<&str> = dels
        .iter()
        .filter_map(|i| i.del.as_deref())
        .chain(adds.iter().map(|i| i.add.as_str()))
        .collect();
    ip_batch(ns, &lines, errors);
    lines.len()
}
