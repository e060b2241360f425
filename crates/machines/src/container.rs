//! One instance as one OCI container: an overlay of the image's root filesystem (the
//! instance's own upper layer is its root volume: it survives stop/start and goes at
//! terminate), a bundle whose `config.json` joins the interface's network namespace, and
//! runc to start, signal and delete it. The console (tini's and the init's output) goes to a
//! file, which GetConsoleOutput can read.

use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What an instance is made of, as the store has it.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// The container's name: unique on the host (the data plane's prefix and the id).
    pub name: String,
    /// The network namespace of its primary interface.
    pub netns: String,
    /// `ip-10-0-1-4`, as EC2 names a host.
    pub hostname: String,
    /// The image's default user and the key pair's public key for it.
    pub user: String,
    pub authorized_key: Option<String>,
    /// User data, decoded; run once at first boot.
    pub user_data: Option<Vec<u8>>,
    pub memory_bytes: u64,
    /// vCPUs: the CPU time it may use (within what the host has).
    pub vcpus: u32,
    /// The VPC's DNS server and the region's private domain (`ec2.internal`).
    pub resolver: Option<std::net::Ipv4Addr>,
    pub domain: String,
    /// Layers captured from other instances (CreateImage) between the image's root
    /// filesystem and the instance's own, bottom first.
    pub layers: Vec<PathBuf>,
}

/// Where an instance's layers and bundle live: `<dir>/<name>/`.
pub struct Layout {
    pub root: PathBuf,
}

impl Layout {
    pub fn new(dir: &Path, name: &str) -> Layout {
        Layout {
            root: dir.join(name),
        }
    }
    fn upper(&self) -> PathBuf {
        self.root.join("upper")
    }
    fn work(&self) -> PathBuf {
        self.root.join("work")
    }
    pub fn merged(&self) -> PathBuf {
        self.root.join("merged")
    }
    fn bundle(&self) -> PathBuf {
        self.root.join("bundle")
    }
    pub fn console(&self) -> PathBuf {
        self.root.join("console.log")
    }
}

/// Runs a command to its end: its output, or what it said on failure.
pub(crate) fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn is_mounted(path: &Path) -> bool {
    let p = path.to_string_lossy();
    std::fs::read_to_string("/proc/self/mounts")
        .map(|m| m.lines().any(|l| l.split(' ').nth(1) == Some(&p)))
        .unwrap_or(false)
}

/// kumori's init, run by tini: the host keys kumori made for the first boot printed to the
/// console as EC2 prints them, then cloud-init in the background when the instance has user data (its
/// four stages, as systemd would order them), and the SSH server in the foreground, so
/// that SSH never waits for user data. Without cloud-init in the image, a shell script in
/// user data runs once.
const INIT: &str = r#"#!/bin/sh
mkdir -p /run/sshd
# Host keys new at this boot (kumori put them in place): printed as EC2 prints them.
if [ -f /var/lib/kumori/new-host-keys ]; then
  rm -f /var/lib/kumori/new-host-keys
  echo "-----BEGIN SSH HOST KEY FINGERPRINTS-----"
  for k in /etc/ssh/ssh_host_*_key.pub; do ssh-keygen -lf "$k"; done
  echo "-----END SSH HOST KEY FINGERPRINTS-----"
  echo "-----BEGIN SSH HOST KEY KEYS-----"
  cat /etc/ssh/ssh_host_*_key.pub
  echo "-----END SSH HOST KEY KEYS-----"
fi
if [ -f /var/lib/kumori/user-data ] && command -v cloud-init >/dev/null 2>&1; then
  ( cloud-init init --local && cloud-init init && cloud-init modules --mode=config \
      && cloud-init modules --mode=final ) 2>&1 &
elif [ -f /var/lib/kumori/user-data ] && [ ! -f /var/lib/kumori/user-data.done ]; then
  touch /var/lib/kumori/user-data.done
  ( if head -c 2 /var/lib/kumori/user-data | grep -q '#!'; then
      chmod +x /var/lib/kumori/user-data && /var/lib/kumori/user-data
    else
      echo "kumori: this image has no cloud-init; only shell scripts in user data run"
    fi ) >> /var/log/cloud-init-output.log 2>&1 &
fi
echo "kumori: sshd starting"
exec /usr/sbin/sshd -D -e
"#;

/// cloud-init's settings for kumori's instances: the EC2 data source at kumori's metadata
/// service without platform checks (a container has no EC2 DMI), no network or hostname
/// management (the data plane and the runtime own them), host keys left as the init made
/// them, the family's default user, and only the modules that mean something here.
/// Packages come from the image: apt goes through `kumori-apt`, which installs nothing and
/// says so for a package the image lacks (instances reach no mirror).
fn cloud_config(user: &str) -> String {
    format!(
        r#"# Written by kumori at each boot.
datasource_list: [Ec2]
datasource:
  Ec2:
    metadata_urls: ["http://169.254.169.254"]
    strict_id: false
    max_wait: 10
    timeout: 2
network: {{config: disabled}}
preserve_hostname: true
manage_etc_hosts: false
ssh_deletekeys: false
ssh_genkeytypes: []
system_info:
  default_user:
    name: {user}
    lock_passwd: true
    groups: [adm, sudo]
    sudo: ["ALL=(ALL) NOPASSWD:ALL"]
    shell: /bin/bash
  apt_get_wrapper:
    command: /usr/local/sbin/kumori-apt
    enabled: true
cloud_init_modules: [bootcmd, write-files, users-groups, ssh]
cloud_config_modules: [timezone, runcmd]
cloud_final_modules: [package-update-upgrade-install, write-files-deferred, scripts-vendor,
  scripts-per-once, scripts-per-boot, scripts-per-instance, scripts-user, final-message]
"#
    )
}

/// What cloud-init's apt calls go through (`apt_get_wrapper`): `update` and `upgrade` do
/// nothing, `install` succeeds for packages the image holds and fails, saying why, for
/// the others.
const APT: &str = r#"#!/bin/sh
# kumori: instances reach no package mirror; packages come from the image.
for a in "$@"; do
  case "$a" in
    update|upgrade|dist-upgrade) echo "kumori: apt-get $a skipped: instances reach no package mirror"; exit 0 ;;
  esac
done
missing=""
seen_install=""
for a in "$@"; do
  case "$a" in
    install) seen_install=1 ;;
    -*|*=*) ;;
    *) if [ -n "$seen_install" ] && ! dpkg -s "$a" >/dev/null 2>&1; then missing="$missing $a"; fi ;;
  esac
done
if [ -n "$missing" ]; then
  echo "kumori: package(s)$missing not in the image and instances reach no package mirror: not installed" >&2
  exit 100
fi
exit 0
"#;

fn write(path: &Path, data: &[u8], mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    std::fs::write(path, data).map_err(|e| format!("{}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The uid and gid of `user` in the tree at `root`.
fn ids_of(root: &Path, user: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&user)).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
    })
}

/// The OCI runtime configuration.
fn config(spec: &Spec, rootfs: &Path) -> serde_json::Value {
    let host = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let vcpus = spec.vcpus.clamp(1, host);
    // Docker's default capabilities: what sshd, sudo and a tutorial's services need.
    let caps = [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FSETID",
        "CAP_FOWNER",
        "CAP_MKNOD",
        "CAP_NET_RAW",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETFCAP",
        "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
        "CAP_KILL",
        "CAP_AUDIT_WRITE",
        // `mount` of an attached volume, as on EC2. The instance is as trusted as the user who
        // launched it: its devices are only those the devices cgroup allows (its volumes).
        "CAP_SYS_ADMIN",
    ];
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": ["/usr/bin/tini", "-s", "--", "/usr/local/sbin/kumori-init"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps, "ambient": [],
            },
            // sudo needs to gain privileges.
            "noNewPrivileges": false,
        },
        "root": { "path": rootfs, "readonly": false },
        "hostname": spec.hostname,
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"] },
            { "destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=755"] },
            { "destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"] },
        ],
        "linux": {
            "namespaces": [
                { "type": "pid" }, { "type": "ipc" }, { "type": "uts" }, { "type": "mount" },
                { "type": "network", "path": format!("/run/netns/{}", spec.netns) },
            ],
            "resources": {
                "memory": { "limit": spec.memory_bytes },
                // As many CPUs' time per period as the type has vCPUs, at most the host's.
                "cpu": { "period": 100_000, "quota": 100_000 * i64::from(vcpus) },
                "devices": [{ "allow": false, "access": "rwm" }],
            },
            "cgroupsPath": format!("/kumori/{}", spec.name),
            "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
        },
    })
}

/// The container's status as runc tells it (`running`, `stopped`, `created`), or `None`
/// when runc does not know it.
pub fn status(name: &str) -> Option<String> {
    run(Command::new("runc").args(["state", name]))
        .ok()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .and_then(|v| v["status"].as_str().map(str::to_string))
}

/// Whether runc knows the container and it runs.
pub fn running(name: &str) -> bool {
    status(name).as_deref() == Some("running")
}

/// Boots the instance: mounts its root (the image under its own upper layer), puts what the
/// first boot needs in place, and starts the container detached.
pub fn start(dir: &Path, rootfs: &Path, spec: &Spec) -> Result<(), String> {
    let l = Layout::new(dir, &spec.name);
    for d in [l.upper(), l.work(), l.merged(), l.bundle()] {
        std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    match status(&spec.name).as_deref() {
        Some("running") => return Ok(()),
        // A container left stopped (its process gone): made anew. One runc cannot tell us
        // about is left alone; `runc run` then says why, and the next round tries again.
        Some(_) => {
            let _ = run(Command::new("runc").args(["delete", "-f", &spec.name]));
        }
        None => {}
    }
    // overlayfs lists lower layers top first.
    let lower: Vec<String> = spec
        .layers
        .iter()
        .rev()
        .chain(std::iter::once(&rootfs.to_path_buf()))
        .map(|p| p.display().to_string())
        .collect();
    if !is_mounted(&l.merged()) {
        run(Command::new("mount")
            .args([
                "-t",
                "overlay",
                "overlay",
                "-o",
                &format!(
                    "lowerdir={},upperdir={},workdir={}",
                    lower.join(":"),
                    l.upper().display(),
                    l.work().display()
                ),
            ])
            .arg(l.merged()))?;
    }
    let m = l.merged();
    write(
        &m.join("usr/local/sbin/kumori-init"),
        INIT.as_bytes(),
        0o755,
    )?;
    write(
        &m.join("etc/hostname"),
        format!("{}\n", spec.hostname).as_bytes(),
        0o644,
    )?;
    write(
        &m.join("etc/hosts"),
        format!("127.0.0.1 localhost\n127.0.1.1 {}\n", spec.hostname).as_bytes(),
        0o644,
    )?;
    // Host keys in place before the container starts: its SSH server is up at once.
    if !m.join("etc/ssh/ssh_host_ed25519_key").exists() {
        for k in crate::hostkeys::take()? {
            let at = m.join("etc/ssh").join(k.name);
            write(&at, &k.private, 0o600)?;
            write(&at.with_extension("pub"), &k.public, 0o644)?;
        }
        write(&m.join("var/lib/kumori/new-host-keys"), b"", 0o644)?;
    }
    if let Some(key) = &spec.authorized_key {
        let home = m.join("home").join(&spec.user);
        let ssh = home.join(".ssh");
        write(
            &ssh.join("authorized_keys"),
            format!("{key}\n").as_bytes(),
            0o600,
        )?;
        if let Some((uid, gid)) = ids_of(&m, &spec.user) {
            for p in [&ssh, &ssh.join("authorized_keys")] {
                std::os::unix::fs::chown(p, Some(uid), Some(gid))
                    .map_err(|e| format!("{}: {e}", p.display()))?;
            }
            std::fs::set_permissions(&ssh, std::os::unix::fs::PermissionsExt::from_mode(0o700))
                .map_err(|e| format!("{}: {e}", ssh.display()))?;
        }
    }
    if let Some(data) = &spec.user_data
        && !m.join("var/lib/kumori/user-data").exists()
    {
        write(&m.join("var/lib/kumori/user-data"), data, 0o700)?;
    }
    if let Some(ns) = spec.resolver {
        write(
            &m.join("etc/resolv.conf"),
            format!("nameserver {ns}\nsearch {}\n", spec.domain).as_bytes(),
            0o644,
        )?;
    }
    if m.join("usr/bin/cloud-init").exists() {
        write(
            &m.join("etc/cloud/cloud.cfg.d/90-kumori.cfg"),
            cloud_config(&spec.user).as_bytes(),
            0o644,
        )?;
        write(&m.join("usr/local/sbin/kumori-apt"), APT.as_bytes(), 0o755)?;
    }
    let cfg = config(spec, &m);
    std::fs::write(
        l.bundle().join("config.json"),
        serde_json::to_vec_pretty(&cfg).expect("json"),
    )
    .map_err(|e| format!("bundle: {e}"))?;
    let console = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(l.console())
        .map_err(|e| format!("{}: {e}", l.console().display()))?;
    let err = console.try_clone().map_err(|e| e.to_string())?;
    let status = Command::new("runc")
        .args(["run", "-d", "--bundle"])
        .arg(l.bundle())
        .arg(&spec.name)
        .stdin(Stdio::null())
        .stdout(console)
        .stderr(err)
        .status()
        .map_err(|e| format!("runc: {e} (Debian: apt-get install runc)"))?;
    if !status.success() {
        return Err(format!(
            "runc could not start {}: see {}",
            spec.name,
            l.console().display()
        ));
    }
    Ok(())
}

/// Stops the instance: SIGTERM, then SIGKILL after `grace`; the container is deleted and
/// its root unmounted, its layers kept (the root volume survives a stop).
pub fn stop(dir: &Path, name: &str, grace: Duration) -> Result<(), String> {
    let l = Layout::new(dir, name);
    if running(name) {
        let _ = run(Command::new("runc").args(["kill", name, "TERM"]));
        let until = Instant::now() + grace;
        while running(name) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let _ = run(Command::new("runc").args(["delete", "-f", name]));
    if is_mounted(&l.merged()) {
        run(Command::new("umount").arg(l.merged()))?;
    }
    Ok(())
}

/// Captures the instance's root volume (its own upper layer, whiteouts and all) as the
/// layer `into`, for an image made from it: copied whole, then the files that belong to one
/// instance only are dropped (host keys, made anew at first boot as cloud-init does; user
/// data and its run marker). Copied beside and renamed, so a half-copied layer never shows.
pub fn capture(dir: &Path, name: &str, into: &Path) -> Result<(), String> {
    let upper = Layout::new(dir, name).upper();
    if !upper.is_dir() {
        return Err(format!("{name} has no root volume on this host"));
    }
    let partial = into.with_extension("partial");
    let _ = std::fs::remove_dir_all(&partial);
    if let Some(parent) = partial.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    // cp -a keeps owners, modes, whiteout devices and overlay's trusted.* attributes.
    run(Command::new("cp").arg("-a").arg(&upper).arg(&partial))?;
    for gone in ["var/lib/kumori/user-data", "var/lib/kumori/user-data.done"] {
        let _ = std::fs::remove_file(partial.join(gone));
    }
    if let Ok(keys) = std::fs::read_dir(partial.join("etc/ssh")) {
        for k in keys.flatten() {
            if k.file_name().to_string_lossy().starts_with("ssh_host_") {
                let _ = std::fs::remove_file(k.path());
            }
        }
    }
    let _ = std::fs::remove_dir_all(into);
    std::fs::rename(&partial, into).map_err(|e| format!("{}: {e}", into.display()))
}

/// Terminates the instance: stopped, and its layers removed.
pub fn destroy(dir: &Path, name: &str) -> Result<(), String> {
    stop(dir, name, Duration::from_secs(2))?;
    let root = Layout::new(dir, name).root;
    if root.exists() {
        std::fs::remove_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
    }
    Ok(())
}

/// The containers runc knows whose names start with `prefix`.
pub fn containers_with(prefix: &str) -> Vec<String> {
    run(Command::new("runc").args(["list", "-q"]))
        .map(|s| {
            s.lines()
                .filter(|n| n.starts_with(prefix))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Removes what a crashed kumori left of instances named `<prefix>-i-…`: their containers
/// (killed, deleted) and the mounts of their roots. Their layers stay on disk: they are the
/// root volumes, and the next `kumori serve` boots the instances on them again. Answers how
/// many containers went.
pub fn sweep(prefix: &str) -> usize {
    let names = containers_with(&format!("{prefix}-i-"));
    for n in &names {
        let _ = run(Command::new("runc").args(["kill", n, "KILL"]));
        let _ = run(Command::new("runc").args(["delete", "-f", n]));
    }
    let ours = format!("/{prefix}-i-");
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    for target in mounts.lines().filter_map(|l| l.split(' ').nth(1)) {
        if target.ends_with("/merged") && target.contains(&ours) {
            let _ = run(Command::new("umount").arg(target));
        }
    }
    names.len()
}
