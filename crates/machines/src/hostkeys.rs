//! SSH host keys for an instance's first boot, made on the host before its container starts
//! so that its SSH server is up at once. An RSA key takes most of a second to make, so a
//! few are made ahead, in the background; ed25519 and ECDSA keys take milliseconds and are
//! made when asked. Each key is used once, by one instance, and is never kept elsewhere.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Condvar, Mutex, OnceLock};

/// A host key: its file name under `/etc/ssh` and the private and public halves.
pub struct HostKey {
    pub name: &'static str,
    pub private: Vec<u8>,
    pub public: Vec<u8>,
}

/// How many RSA keys wait ready.
const SPARE: usize = 4;

struct Pool {
    rsa: Mutex<Vec<(Vec<u8>, Vec<u8>)>>,
    wanted: Condvar,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<&'static Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let p: &'static Pool = Box::leak(Box::new(Pool {
            rsa: Mutex::new(Vec::new()),
            wanted: Condvar::new(),
        }));
        std::thread::spawn(move || {
            loop {
                {
                    let mut keys = p.rsa.lock().expect("host key pool");
                    while keys.len() >= SPARE {
                        keys = p.wanted.wait(keys).expect("host key pool");
                    }
                }
                match make("rsa") {
                    Ok(k) => p.rsa.lock().expect("host key pool").push(k),
                    Err(e) => {
                        tracing::warn!("making spare host keys: {e}");
                        std::thread::sleep(std::time::Duration::from_secs(5));
                    }
                }
            }
        });
        p
    })
}

/// Starts making spare keys (at start, so the first instance finds them ready).
pub fn warm() {
    pool();
}

/// One key of `kind`, by ssh-keygen in a private temporary directory.
fn make(kind: &str) -> Result<(Vec<u8>, Vec<u8>), String> {
    static MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir =
        std::env::temp_dir().join(format!("kumori-hostkey-{}-{n}-{kind}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let file = dir.join("key");
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", "", "-C", "", "-f"])
        .arg(&file)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("ssh-keygen: {e} (Debian: apt-get install openssh-client)"));
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    let keys = out.and_then(|o| {
        if o.status.success() {
            Ok((read(&file)?, read(&dir.join("key.pub"))?))
        } else {
            Err(format!(
                "ssh-keygen: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ))
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
    keys
}

/// A new set of host keys (ed25519, ECDSA, RSA), as an instance's first boot makes them.
pub fn take() -> Result<Vec<HostKey>, String> {
    let p = pool();
    let spare = p.rsa.lock().expect("host key pool").pop();
    p.wanted.notify_one();
    let rsa = match spare {
        Some(k) => k,
        None => make("rsa")?,
    };
    let mut out = Vec::new();
    for (name, kind) in [
        ("ssh_host_ed25519_key", "ed25519"),
        ("ssh_host_ecdsa_key", "ecdsa"),
    ] {
        let (private, public) = make(kind)?;
        out.push(HostKey {
            name,
            private,
            public,
        });
    }
    out.push(HostKey {
        name: "ssh_host_rsa_key",
        private: rsa.0,
        public: rsa.1,
    });
    Ok(out)
}
