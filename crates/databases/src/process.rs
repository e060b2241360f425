//! Starting the engines' programs: as whom, with what lifetime, on which port.
//!
//! PostgreSQL refuses to run as root, so when kumori is root its programs run as the
//! `postgres` user that Debian's package makes. That user could not reach a data directory
//! under root's home (`/root` is 0700), so it keeps one capability, `CAP_DAC_READ_SEARCH`,
//! as an ambient capability: it may look up paths through directories it does not own,
//! and writes only where it owns. MariaDB runs as root when kumori is (`--user=root`).
//!
//! Every server is started with `PR_SET_PDEATHSIG`: if kumori dies, its databases stop with
//! it and come back when it starts again, instead of lingering unsupervised.

use std::ffi::CString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::process::Command;

/// The user a program runs as, when kumori is root and the engine will not run as root.
#[derive(Debug, Clone)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The system user `name`, looked up once before any fork.
pub fn user(name: &str) -> Option<Owner> {
    let c = CString::new(name).ok()?;
    // SAFETY: getpwnam reads a static buffer; we copy out of it at once and kumori looks
    // users up only here.
    let pw = unsafe { libc::getpwnam(c.as_ptr()) };
    if pw.is_null() {
        return None;
    }
    // SAFETY: checked non-null above.
    let pw = unsafe { &*pw };
    Some(Owner {
        uid: pw.pw_uid,
        gid: pw.pw_gid,
    })
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
const CAP_DAC_READ_SEARCH: u32 = 2;

/// A command for `program` that runs as `owner` (when given) and is sent `death` when
/// kumori dies (PostgreSQL's fast shutdown is SIGINT; its SIGTERM waits for clients).
pub fn command(program: &Path, owner: Option<&Owner>, death: i32) -> Command {
    let mut cmd = Command::new(program);
    cmd.stdin(Stdio::null());
    let owner = owner.cloned();
    // SAFETY: the closure runs between fork and exec and calls only async-signal-safe
    // system calls (prctl, setgroups, setgid, setuid, capset) on plain data.
    unsafe {
        cmd.pre_exec(move || {
            if let Some(o) = &owner {
                if libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0
                    || libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(o.gid) != 0
                    || libc::setuid(o.uid) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                let bit = 1u32 << CAP_DAC_READ_SEARCH;
                let mut header = CapHeader {
                    version: LINUX_CAPABILITY_VERSION_3,
                    pid: 0,
                };
                let data = [
                    CapData {
                        effective: bit,
                        permitted: bit,
                        inheritable: bit,
                    },
                    CapData {
                        effective: 0,
                        permitted: 0,
                        inheritable: 0,
                    },
                ];
                if libc::syscall(
                    libc::SYS_capset,
                    &mut header as *mut CapHeader,
                    data.as_ptr(),
                ) != 0
                    || libc::prctl(
                        libc::PR_CAP_AMBIENT,
                        libc::PR_CAP_AMBIENT_RAISE,
                        CAP_DAC_READ_SEARCH as libc::c_ulong,
                        0,
                        0,
                    ) != 0
                {
                    return Err(io::Error::last_os_error());
                }
            }
            // After the change of user: a change of credentials clears the death signal.
            if libc::prctl(libc::PR_SET_PDEATHSIG, death, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

/// Runs a command to its end; its output goes to `log` (appended), and a failure's last
/// lines of that log become the error.
pub async fn run(mut cmd: Command, log: &Path) -> Result<(), String> {
    let what = format!("{:?}", cmd.as_std().get_program());
    output_to(&mut cmd, log)?;
    let status = cmd
        .status()
        .await
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status}): {}", tail(log)))
    }
}

/// Sends a command's output and errors to the end of `log`.
pub fn output_to(cmd: &mut Command, log: &Path) -> Result<(), String> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("cannot open {}: {e}", log.display()))?;
    let err = file.try_clone().map_err(|e| e.to_string())?;
    cmd.stdout(file).stderr(err);
    Ok(())
}

/// The last lines of a log, for an error message.
pub fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(3).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join(" / ")
}

/// `port` on 127.0.0.1 when nothing listens there, else one the system picks.
pub fn port_near(port: u16) -> u16 {
    if port != 0 && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
        return port;
    }
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(port)
}

/// Whether something accepts connections on 127.0.0.1:`port`.
pub async fn listening(port: u16) -> bool {
    tokio::time::timeout(
        std::time::Duration::from_millis(300),
        tokio::net::TcpStream::connect(("127.0.0.1", port)),
    )
    .await
    .map(|r| r.is_ok())
    .unwrap_or(false)
}

/// A program on PATH, or in the first of `dirs` that has it.
pub fn find(name: &str, dirs: &[PathBuf]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(dirs.iter().cloned())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Makes `path` (and its parents) and gives it to `owner`, private to it.
pub fn make_dir(path: &Path, owner: Option<&Owner>) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
    if let Some(o) = owner {
        std::os::unix::fs::chown(path, Some(o.uid), Some(o.gid))?;
    }
    Ok(())
}

/// Gives a file to `owner` (files kumori writes for a server to read).
pub fn give(path: &Path, owner: Option<&Owner>) -> io::Result<()> {
    if let Some(o) = owner {
        std::os::unix::fs::chown(path, Some(o.uid), Some(o.gid))?;
    }
    Ok(())
}

/// Asks a process to stop with `signal`, and waits for it (killing it after `grace`).
pub async fn stop(child: &mut tokio::process::Child, signal: i32, grace: std::time::Duration) {
    if let Some(pid) = child.id() {
        // SAFETY: kill on a pid we spawned and have not reaped.
        unsafe {
            libc::kill(pid as i32, signal);
        }
    }
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        let _ = child.kill().await;
    }
}

/// A random password for kumori's own replication user.
pub fn secret() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut r = rand::rng();
    (0..24)
        .map(|_| CHARS[r.random_range(0..CHARS.len())] as char)
        .collect()
}
