//! Doing things inside a named network namespace. `setns` moves only the calling thread, so
//! each call runs on a thread of its own that enters the namespace and ends there: sockets
//! it opens keep that namespace, files under `/proc/sys/net` it writes are that namespace's,
//! and programs it starts are born in it. The caller's threads never change namespace.

use crate::plan::HOST;
use std::io::Write;
use std::process::{Command, Stdio};

/// Runs `f` on a thread inside namespace `ns` (`HOST`: the host's own).
pub fn in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    let path = format!("/run/netns/{ns}");
    let host = ns == HOST;
    std::thread::spawn(move || {
        if !host {
            let file = std::fs::File::open(&path).map_err(|e| format!("{path}: {e}"))?;
            use std::os::fd::AsRawFd;
            // SAFETY: the descriptor is open for the call; setns changes only this thread.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            if rc != 0 {
                return Err(format!(
                    "entering {path}: {}",
                    std::io::Error::last_os_error()
                ));
            }
        }
        f()
    })
    .join()
    .map_err(|_| "namespace thread panicked".to_string())?
}

/// A listening TCP socket of namespace `ns` on all its addresses at `port` (a service's
/// node, such as a load balancer's, answering on its interface).
pub fn listen_in(ns: &str, port: u16) -> Result<std::net::TcpListener, String> {
    in_netns(ns, move || {
        std::net::TcpListener::bind((std::net::Ipv4Addr::UNSPECIFIED, port))
            .map_err(|e| format!("port {port}: {e}"))
    })
}

/// A new, unconnected, non-blocking TCP socket of namespace `ns`: connections made with it
/// leave from that namespace.
pub fn socket_in(ns: &str) -> Result<std::os::fd::OwnedFd, String> {
    in_netns(ns, || {
        // SAFETY: plain socket(2); the descriptor is owned by the OwnedFd made from it.
        let fd = unsafe {
            libc::socket(
                libc::AF_INET,
                libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error().to_string());
        }
        use std::os::fd::FromRawFd;
        // SAFETY: fd is a new descriptor no one else owns.
        Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
    })
}

/// Sets sysctls (`net.ipv4.ip_forward` style) inside `ns`.
pub fn sysctls(ns: &str, values: &[(String, String)]) -> Result<(), String> {
    let values = values.to_vec();
    in_netns(ns, move || {
        for (k, v) in values {
            let path = format!("/proc/sys/{}", k.replace('.', "/"));
            std::fs::write(&path, v.as_bytes()).map_err(|e| format!("{path}: {e}"))?;
        }
        Ok(())
    })
}

/// Replaces `table ip kumori` in `ns` with `body` (none when empty) in one transaction.
pub fn nft(ns: &str, body: &str, existed: bool) -> Result<(), String> {
    let mut text = String::from("table ip kumori {}\ndelete table ip kumori\n");
    if !body.is_empty() {
        text.push_str("table ip kumori {\n");
        text.push_str(body);
        text.push_str("}\n");
    } else if !existed {
        return Ok(());
    }
    in_netns(ns, move || {
        let mut child = Command::new("nft")
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("nft: {e}"))?;
        if let Some(mut i) = child.stdin.take() {
            let _ = i.write_all(text.as_bytes());
        }
        let out = child.wait_with_output().map_err(|e| format!("nft: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "nft: {}\n--- ruleset ---\n{text}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    })
}

/// Whether this process holds CAP_NET_ADMIN in its effective set.
pub fn has_cap_net_admin() -> bool {
    const CAP_NET_ADMIN: u32 = 12;
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_NET_ADMIN) != 0)
}
