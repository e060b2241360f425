//! Root filesystems: one Debian bookworm tree per image family, built by mmdebstrap from
//! the host's Debian mirror and cached under the state directory. The same tree serves
//! every family (the README says so); each family's default user exists in it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The packages an instance needs: an SSH server, sudo, an init that reaps (tini), and the
/// tools a tutorial reaches for.
/// cloud-init runs user data as on EC2 (tzdata for its `timezone`); e2fsprogs, xfsprogs and
/// mount let a user format and mount an EBS volume as AWS's guides do; the aws CLI is on the
/// instance as on Amazon Linux.
pub const PACKAGES: &str = "openssh-server,sudo,tini,iproute2,iputils-ping,curl,ca-certificates,procps,python3,cloud-init,tzdata,e2fsprogs,xfsprogs,mount,awscli";

/// The name of the cached tree: it changes with what goes into it, so a cache built by an
/// older kumori is never used for a newer one's instances.
fn tree_name() -> String {
    // FNV-1a: stable across Rust releases, unlike std's hasher.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in PACKAGES
        .bytes()
        .chain(USERS.bytes())
        .chain(TWEAKS.concat().bytes())
    {
        h = (h ^ u64::from(b)).wrapping_mul(0x100000001b3);
    }
    format!("debian-bookworm-{:08x}", h as u32)
}

/// Each family's default user, with password-less sudo as on EC2.
const USERS: &str = "for u in ec2-user ubuntu admin; do chroot \"$1\" useradd -m -s /bin/bash -G sudo \"$u\"; echo \"$u ALL=(ALL) NOPASSWD:ALL\" > \"$1/etc/sudoers.d/90-$u\"; done";

/// Changes made to the tree after the packages are in.
const TWEAKS: &[&str] = &[
    // Host keys are made per instance at first boot, never shared.
    "rm -f \"$1\"/etc/ssh/ssh_host_*",
    "sed -i 's/^#\\?PasswordAuthentication.*/PasswordAuthentication no/' \"$1/etc/ssh/sshd_config\"",
];

/// The default user of an image, by its name as the catalogue gives it.
pub fn default_user(image_name: &str) -> &'static str {
    let n = image_name.to_ascii_lowercase();
    if n.contains("ubuntu") {
        "ubuntu"
    } else if n.contains("debian") {
        "admin"
    } else {
        "ec2-user"
    }
}

/// The Debian mirror to build from: `KUMORI_DEBIAN_MIRROR` when set, else the one the host's
/// apt uses (deb822 or one-line sources), else Debian's own.
pub fn host_mirror() -> String {
    if let Ok(m) = std::env::var("KUMORI_DEBIAN_MIRROR")
        && !m.is_empty()
    {
        return m;
    }
    let mut texts = Vec::new();
    if let Ok(d) = std::fs::read_dir("/etc/apt/sources.list.d") {
        for e in d.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "sources" || x == "list") {
                texts.push(std::fs::read_to_string(p).unwrap_or_default());
            }
        }
    }
    texts.push(std::fs::read_to_string("/etc/apt/sources.list").unwrap_or_default());
    for t in &texts {
        for line in t.lines() {
            let line = line.trim();
            let url = if let Some(rest) = line.strip_prefix("URIs:") {
                rest.split_whitespace().next()
            } else if let Some(rest) = line.strip_prefix("deb ") {
                rest.split_whitespace().find(|w| w.starts_with("http"))
            } else {
                None
            };
            if let Some(u) = url
                && u.contains("debian")
                && !u.contains("security")
            {
                return u.to_string();
            }
        }
    }
    "http://deb.debian.org/debian".into()
}

/// The root filesystem under `cache`, built first if missing. Built into a temporary
/// directory and renamed into place, so a half-built tree is never used.
pub fn ensure(cache: &Path) -> Result<PathBuf, String> {
    let name = tree_name();
    let done = cache.join(&name);
    if done.join("usr/sbin/sshd").exists() {
        return Ok(done);
    }
    std::fs::create_dir_all(cache).map_err(|e| format!("{}: {e}", cache.display()))?;
    let building = cache.join(format!("{name}.building.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&building);
    let mut cmd = Command::new("mmdebstrap");
    cmd.args([
        "--variant=apt",
        "--mode=root",
        &format!("--include={PACKAGES}"),
        "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/locale/*",
        "--dpkgopt=path-exclude=/usr/share/doc/*",
    ]);
    for t in TWEAKS.iter().copied().chain([USERS]) {
        cmd.arg(format!("--customize-hook={t}"));
    }
    let out = cmd
        .arg("bookworm")
        .arg(&building)
        .arg(host_mirror())
        .output()
        .map_err(|e| format!("mmdebstrap: {e} (Debian: apt-get install mmdebstrap)"))?;
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&building);
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(15).collect();
        return Err(format!(
            "building the root filesystem failed: {}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ));
    }
    std::fs::rename(&building, &done).map_err(|e| format!("{}: {e}", done.display()))?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_family_has_its_default_user() {
        assert_eq!(
            default_user("al2023-ami-2023.9.20261110.0-kernel-6.1-x86_64"),
            "ec2-user"
        );
        assert_eq!(
            default_user("amzn2-ami-kernel-5.10-hvm-2.0.2026-x86_64-gp2"),
            "ec2-user"
        );
        assert_eq!(
            default_user("ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-2026"),
            "ubuntu"
        );
        assert_eq!(default_user("debian-12-amd64-20261101"), "admin");
    }
}
