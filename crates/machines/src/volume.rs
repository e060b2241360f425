//! EBS volumes as block devices: each volume is a sparse file of its size under
//! `<dir>/volumes/`, bound to a loop device while it is attached to a running instance, and
//! shown inside the instance at its device name (`/dev/sdf`) and the Xen name the kernel
//! gives it on EC2 (`/dev/xvdf`). The user formats and mounts it there as on EC2; the file
//! keeps the data across detach and attach to another instance, and goes with the volume.
//!
//! A device appears in a running container without a restart: the devices cgroup (v1)
//! allows it, and `runc exec` makes the node in the container's `/dev`.

use crate::container::run;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A volume as attached to an instance.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Disk {
    pub volume_id: String,
    /// The device name asked for (`/dev/sdf`, `xvdf`).
    pub device: String,
    pub size_gib: u64,
}

/// A disk bound to a loop device: what is plugged into a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plugged {
    pub loop_device: String,
    pub major: u32,
    pub minor: u32,
    /// The nodes made for it inside the container.
    pub nodes: Vec<String>,
}

/// The file holding a volume's blocks.
pub fn file(dir: &Path, volume_id: &str) -> PathBuf {
    dir.join("volumes").join(format!("{volume_id}.img"))
}

/// The loop devices bound to `path` now.
fn loops_of(path: &Path) -> Vec<String> {
    run(Command::new("losetup").arg("-j").arg(path))
        .map(|out| {
            out.lines()
                .filter_map(|l| l.split(':').next().map(str::to_string))
                .filter(|d| d.starts_with("/dev/loop"))
                .collect()
        })
        .unwrap_or_default()
}

/// The device nodes inside the instance for `device`: the name asked for and, for an `sd`
/// name, the `xvd` name Xen gives it.
pub fn nodes(device: &str) -> Vec<String> {
    let name = device.trim_start_matches("/dev/");
    let mut out = vec![format!("/dev/{name}")];
    if let Some(rest) = name.strip_prefix("sd") {
        out.push(format!("/dev/xvd{rest}"));
    }
    out
}

/// Binds the volume's file (made sparse at its size the first time) to a loop device.
pub fn bind(dir: &Path, disk: &Disk) -> Result<(String, u32, u32), String> {
    use std::os::unix::fs::MetadataExt;
    let path = file(dir, &disk.volume_id);
    if !path.exists() {
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        let f = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        f.set_len(disk.size_gib << 30)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let dev = match loops_of(&path).into_iter().next() {
        Some(d) => d,
        None => run(Command::new("losetup").args(["-f", "--show"]).arg(&path))?
            .trim()
            .to_string(),
    };
    let rdev = std::fs::metadata(&dev)
        .map_err(|e| format!("{dev}: {e}"))?
        .rdev();
    Ok((dev, libc_major(rdev), libc_minor(rdev)))
}

/// Lets the loop devices bound to the volume's file go (lazily, when something inside an
/// instance still holds it open: the kernel frees it at the last close).
pub fn unbind(dir: &Path, volume_id: &str) {
    for d in loops_of(&file(dir, volume_id)) {
        let _ = run(Command::new("losetup").arg("-d").arg(&d));
    }
}

/// Removes a volume's file (it was deleted).
pub fn remove(dir: &Path, volume_id: &str) {
    unbind(dir, volume_id);
    let _ = std::fs::remove_file(file(dir, volume_id));
}

/// The volumes with a file under `dir`.
pub fn files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir.join("volumes"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .strip_suffix(".img")
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn libc_major(rdev: u64) -> u32 {
    (((rdev >> 32) & 0xffff_f000) | ((rdev >> 8) & 0x0000_0fff)) as u32
}

fn libc_minor(rdev: u64) -> u32 {
    (((rdev >> 12) & 0xffff_ff00) | (rdev & 0x0000_00ff)) as u32
}

/// The devices cgroup (v1) file of container `name` (`cgroupsPath` `/kumori/<name>`).
fn devices_file(name: &str, which: &str) -> PathBuf {
    Path::new("/sys/fs/cgroup/devices/kumori")
        .join(name)
        .join(which)
}

/// Makes the disk appear in running container `name` at its device names.
pub fn plug(dir: &Path, name: &str, disk: &Disk) -> Result<Plugged, String> {
    let (loop_device, major, minor) = bind(dir, disk)?;
    let allow = devices_file(name, "devices.allow");
    std::fs::write(&allow, format!("b {major}:{minor} rwm")).map_err(|e| {
        format!(
            "{}: {e} (attaching volumes needs the v1 devices cgroup)",
            allow.display()
        )
    })?;
    let nodes = nodes(&disk.device);
    for n in &nodes {
        run(Command::new("runc").args([
            "exec",
            name,
            "sh",
            "-c",
            &format!("rm -f {n} && mknod -m 660 {n} b {major} {minor} && chgrp disk {n}"),
        ]))?;
    }
    Ok(Plugged {
        loop_device,
        major,
        minor,
        nodes,
    })
}

/// Takes the disk out of running container `name` (its nodes and the cgroup's permission).
pub fn unplug(name: &str, p: &Plugged) {
    let _ = run(Command::new("runc")
        .args(["exec", name, "rm", "-f"])
        .args(&p.nodes));
    let _ = std::fs::write(
        devices_file(name, "devices.deny"),
        format!("b {}:{} rwm", p.major, p.minor),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_sd_name_also_shows_as_xvd() {
        assert_eq!(nodes("/dev/sdf"), ["/dev/sdf", "/dev/xvdf"]);
        assert_eq!(nodes("xvdg"), ["/dev/xvdg"]);
        assert_eq!(nodes("/dev/xvdh"), ["/dev/xvdh"]);
    }

    #[test]
    fn device_numbers_split_as_glibc_does() {
        // makedev(7, 3) and makedev(259, 1).
        assert_eq!((libc_major(0x703), libc_minor(0x703)), (7, 3));
        let rdev: u64 = (259 << 8) | 1;
        assert_eq!((libc_major(rdev), libc_minor(rdev)), (259, 1));
    }
}
