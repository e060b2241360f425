//! PostgreSQL: `initdb` makes a cluster whose superuser is the master user, `postgres` serves
//! it on the instance's port (TCP on 127.0.0.1 only: no Unix socket, whose path length the
//! state directory could break), standbys and read replicas are `pg_basebackup -R` copies
//! streaming from their primary, a failover is `pg_ctl promote`, and a snapshot is a base
//! backup. Settings from the parameter group live in `kumori-parameters.conf`, included
//! by `postgresql.conf` and reloaded with SIGHUP when they change.

use crate::process::{self, Owner};
use crate::{Meta, Role, Spec};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::process::Child;

/// kumori's own replication role, named as RDS names its own.
pub const REPL_USER: &str = "rdsrepladmin";

pub fn bin_dir() -> Option<PathBuf> {
    if let Some(p) = process::find("initdb", &[]) {
        // A symlink on PATH (as /usr/local/bin's) points into the real directory.
        let real = std::fs::canonicalize(&p).unwrap_or(p);
        return real.parent().map(Path::to_path_buf);
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|d| d.join("initdb").is_file())
        .collect();
    dirs.sort_by_key(|d| {
        d.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    dirs.pop()
}

pub struct Server {
    bin: PathBuf,
    owner: Option<Owner>,
}

impl Server {
    pub fn new(programs: &crate::Programs) -> Result<Server, String> {
        let bin = programs
            .postgres
            .clone()
            .ok_or("PostgreSQL is not installed: apt-get install postgresql")?;
        let owner = if process::is_root() {
            Some(process::user("postgres").ok_or("no postgres user: apt-get install postgresql")?)
        } else {
            None
        };
        Ok(Server { bin, owner })
    }

    fn cmd(&self, program: &str) -> tokio::process::Command {
        process::command(&self.bin.join(program), self.owner.as_ref(), libc::SIGINT)
    }

    /// A base backup of the server on `port` into `dest` (made here), with `-R` a standby
    /// that follows it.
    pub async fn base_backup(
        &self,
        port: u16,
        repl: &str,
        dest: &Path,
        follow: bool,
        log: &Path,
    ) -> Result<(), String> {
        process::make_dir(dest, self.owner.as_ref()).map_err(|e| e.to_string())?;
        let mut cmd = self.cmd("pg_basebackup");
        cmd.arg("-h")
            .arg("127.0.0.1")
            .arg("-p")
            .arg(port.to_string())
            .arg("-U")
            .arg(REPL_USER)
            .arg("-D")
            .arg(dest)
            .args(["-X", "stream", "-c", "fast", "--no-sync"])
            .env("PGPASSWORD", repl)
            .env("PGCONNECT_TIMEOUT", "10");
        if follow {
            cmd.arg("-R");
        }
        process::run(cmd, log).await
    }

    /// Copies a stopped server's files (ownership kept).
    pub async fn copy(&self, data: &Path, dest: &Path, log: &Path) -> Result<(), String> {
        let mut cmd = process::command(Path::new("cp"), None, libc::SIGTERM);
        cmd.arg("-a").arg(data).arg(dest);
        process::run(cmd, log).await?;
        let _ = std::fs::remove_file(dest.join("postmaster.pid"));
        Ok(())
    }

    fn conninfo(port: u16, user: &str, password: &str) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        c.host("127.0.0.1")
            .port(port)
            .user(user)
            .password(password)
            .dbname("postgres")
            .connect_timeout(Duration::from_secs(3));
        c
    }

    async fn execute(port: u16, user: &str, password: &str, sql: &str) -> Result<(), String> {
        let (client, conn) = Self::conninfo(port, user, password)
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| format!("cannot connect as {user}: {e}"))?;
        let task = tokio::spawn(conn);
        let r = client
            .batch_execute(sql)
            .await
            .map_err(|e| match e.as_db_error() {
                // The server's own words, not the driver's "db error".
                Some(d) => format!("{}: {}", d.code().code(), d.message()),
                None => e.to_string(),
            });
        drop(client);
        let _ = task.await;
        r
    }
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

const HBA: &str = "\
# Written by kumori: password logins over TCP; kumori's replication role for standbys.
host all all 127.0.0.1/32 scram-sha-256
host all all ::1/128 scram-sha-256
host all all 0.0.0.0/0 scram-sha-256
host replication rdsrepladmin 127.0.0.1/32 scram-sha-256
";

#[async_trait::async_trait]
impl crate::Server for Server {
    fn make_dir(&self, dir: &Path) -> Result<(), String> {
        process::make_dir(dir, self.owner.as_ref()).map_err(|e| e.to_string())?;
        process::make_dir(&dir.join("wal"), self.owner.as_ref()).map_err(|e| e.to_string())
    }

    async fn init(&self, dir: &Path, data: &str, spec: &Spec, _repl: &str) -> Result<(), String> {
        let pwfile = dir.join("pwfile");
        std::fs::write(&pwfile, format!("{}\n", spec.password)).map_err(|e| e.to_string())?;
        process::give(&pwfile, self.owner.as_ref()).map_err(|e| e.to_string())?;
        let mut cmd = self.cmd("initdb");
        cmd.arg("-D")
            .arg(dir.join(data))
            .arg("-U")
            .arg(&spec.user)
            .arg(format!("--pwfile={}", pwfile.display()))
            .args([
                "-A",
                "scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ]);
        let r = process::run(cmd, &dir.join(format!("{data}.log"))).await;
        let _ = std::fs::remove_file(&pwfile);
        r?;
        let d = dir.join(data);
        std::fs::write(d.join("pg_hba.conf"), HBA).map_err(|e| e.to_string())?;
        let conf = d.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).map_err(|e| e.to_string())?;
        text.push_str("\n# kumori: the DB parameter group's settings\ninclude_if_exists = 'kumori-parameters.conf'\n");
        std::fs::write(&conf, text).map_err(|e| e.to_string())?;
        self.set_parameters_file(&d, &spec.parameters)
    }

    async fn copy_in(&self, dir: &Path, data: &str, from: &Path) -> Result<(), String> {
        let dest = dir.join(data);
        self.copy(&from.join("data"), &dest, &dir.join(format!("{data}.log")))
            .await?;
        let _ = std::fs::remove_file(dest.join("standby.signal"));
        Ok(())
    }

    async fn seed(
        &self,
        dir: &Path,
        data: &str,
        source_port: u16,
        repl: &str,
    ) -> Result<(), String> {
        self.base_backup(
            source_port,
            repl,
            &dir.join(data),
            true,
            &dir.join(format!("{data}.log")),
        )
        .await
    }

    async fn start(
        &self,
        dir: &Path,
        data: &str,
        port: u16,
        _role: Role,
        _spec: &Spec,
        _meta: &Meta,
        _first: bool,
    ) -> Result<Child, String> {
        let d = dir.join(data);
        let _ = std::fs::remove_file(d.join("postmaster.pid"));
        let log = dir.join(format!("{data}.log"));
        let mut cmd = self.cmd("postgres");
        cmd.arg("-D").arg(&d);
        for (k, v) in [
            ("listen_addresses", "127.0.0.1".to_string()),
            ("port", port.to_string()),
            ("unix_socket_directories", String::new()),
            ("wal_level", "replica".into()),
            ("max_wal_senders", "10".into()),
            ("hot_standby", "on".into()),
            ("wal_keep_size", "256MB".into()),
            // A small footprint while idle: shared memory is touched as it is used.
            ("shared_buffers", "16MB".into()),
            ("max_connections", "100".into()),
            // Every finished segment of log is kept beside the data, for point-in-time
            // restore (a standby archives nothing until it is promoted).
            ("archive_mode", "on".into()),
            (
                "archive_command",
                format!(
                    "test ! -f {w}/%f && cp %p {w}/%f",
                    w = dir.join("wal").display()
                ),
            ),
        ] {
            cmd.arg("-c").arg(format!("{k}={v}"));
        }
        process::output_to(&mut cmd, &log)?;
        cmd.spawn()
            .map_err(|e| format!("cannot start postgres: {e}"))
    }

    async fn wait_ready(
        &self,
        dir: &Path,
        _port: u16,
        _spec: &Spec,
        meta: &Meta,
        child: Option<&mut Child>,
    ) -> Result<(), String> {
        let log = dir.join(format!("{}.log", meta.primary));
        let pidfile = dir.join(&meta.primary).join("postmaster.pid");
        let pid = child.as_ref().and_then(|c| c.id());
        crate::wait_for(child, &log, Duration::from_secs(120), || {
            let pidfile = pidfile.clone();
            async move {
                // Ready when *this* server says so in its pid file (its first line its pid,
                // its eighth its state): a server on the same port, such as one another
                // instance started there first, is never taken for it.
                let text = std::fs::read_to_string(&pidfile).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                lines.first().and_then(|l| l.trim().parse::<u32>().ok()) == pid
                    && matches!(lines.get(7).map(|l| l.trim()), Some("ready" | "standby"))
            }
        })
        .await
    }

    async fn bootstrap(
        &self,
        _dir: &Path,
        port: u16,
        spec: &Spec,
        meta: &Meta,
    ) -> Result<(), String> {
        let mut sql = format!(
            "CREATE ROLE {} WITH REPLICATION LOGIN PASSWORD {};",
            REPL_USER,
            quote_literal(&meta.repl)
        );
        if let Some(db) = spec.database.as_deref().filter(|d| *d != "postgres") {
            sql.push_str(&format!("CREATE DATABASE {};", quote_ident(db)));
        }
        // CREATE DATABASE cannot run inside the implicit transaction of a multi-statement
        // batch: one statement at a time.
        for stmt in sql.split_inclusive(';') {
            match Self::execute(port, &spec.user, &spec.password, stmt).await {
                // Made by an earlier try that stopped half way: duplicate_object,
                // duplicate_database.
                Err(e) if e.starts_with("42710:") || e.starts_with("42P04:") => {}
                r => r?,
            }
        }
        Ok(())
    }

    async fn set_password(
        &self,
        _dir: &Path,
        port: u16,
        spec: &Spec,
        meta: &Meta,
    ) -> Result<(), String> {
        Self::execute(
            port,
            &spec.user,
            &meta.password,
            &format!(
                "ALTER ROLE {} WITH PASSWORD {}",
                quote_ident(&spec.user),
                quote_literal(&spec.password)
            ),
        )
        .await
    }

    fn set_parameters(
        &self,
        data: &Path,
        parameters: &[(String, String)],
        running: Option<&Child>,
    ) -> Result<(), String> {
        self.set_parameters_file(data, parameters)?;
        if let Some(pid) = running.and_then(|c| c.id()) {
            // SAFETY: a signal to the postmaster we started.
            unsafe {
                libc::kill(pid as i32, libc::SIGHUP);
            }
        }
        Ok(())
    }

    async fn catch_up(&self, _dir: &Path, _data: &str, _port: u16) -> Result<(), String> {
        // A primary's fast shutdown sends all its WAL to connected standbys before it
        // exits, so the standby already has everything.
        Ok(())
    }

    async fn promote(&self, dir: &Path, data: &str, _port: u16) -> Result<(), String> {
        let mut cmd = self.cmd("pg_ctl");
        cmd.arg("promote")
            .arg("-D")
            .arg(dir.join(data))
            .args(["-w", "-t", "60"]);
        process::run(cmd, &dir.join(format!("{data}.log"))).await
    }

    async fn stop(&self, child: &mut Child) {
        // SIGINT: PostgreSQL's fast shutdown.
        process::stop(child, libc::SIGINT, Duration::from_secs(30)).await;
    }

    fn recover_to(
        &self,
        dir: &Path,
        data: &str,
        wal: &[PathBuf],
        target: Option<&str>,
    ) -> Result<(), String> {
        let d = dir.join(data);
        let conf = d.join("kumori-recovery.conf");
        let mut text = String::from("# Written by kumori: a point-in-time restore.\n");
        if wal.is_empty() {
            // Keep the archive, drop the target (nothing was written after it).
            let old = std::fs::read_to_string(&conf).map_err(|e| e.to_string())?;
            for line in old.lines().skip(1) {
                if !line.starts_with("recovery_target_time") {
                    text.push_str(line);
                    text.push('\n');
                }
            }
        } else {
            // The archive first, then the source's live log (its newest, not yet archived).
            let dirs: Vec<String> = wal.iter().map(|w| w.display().to_string()).collect();
            text.push_str(&format!(
                "restore_command = 'for d in {}; do test -f \"$d/%f\" && cp \"$d/%f\" \"%p\" && exit 0; done; exit 1'\n",
                dirs.join(" ")
            ));
            text.push_str("recovery_target_action = 'promote'\n");
            if let Some(t) = target {
                // PostgreSQL reads `2026-12-08 01:42:33.008+00`, not ISO's `T…Z`.
                let t = t.replacen('T', " ", 1).replace('Z', "+00");
                text.push_str(&format!("recovery_target_time = {}\n", quote_literal(&t)));
            }
        }
        std::fs::write(&conf, text).map_err(|e| e.to_string())?;
        process::give(&conf, self.owner.as_ref()).map_err(|e| e.to_string())?;
        let pg_conf = d.join("postgresql.conf");
        let mut main = std::fs::read_to_string(&pg_conf).map_err(|e| e.to_string())?;
        if !main.contains("kumori-recovery.conf") {
            main.push_str("include_if_exists = 'kumori-recovery.conf'\n");
            std::fs::write(&pg_conf, main).map_err(|e| e.to_string())?;
        }
        let signal = d.join("recovery.signal");
        std::fs::write(&signal, b"").map_err(|e| e.to_string())?;
        process::give(&signal, self.owner.as_ref()).map_err(|e| e.to_string())
    }

    async fn wait_promoted(&self, dir: &Path, data: &str) -> Result<(), String> {
        let d = dir.join(data);
        let start = std::time::Instant::now();
        // Recovery ends by removing recovery.signal, once the server takes writes.
        while d.join("recovery.signal").exists() {
            if start.elapsed() > Duration::from_secs(300) {
                return Err("the point-in-time restore did not finish within 300s".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = std::fs::write(d.join("kumori-recovery.conf"), "# recovered\n");
        Ok(())
    }
}

impl Server {
    fn set_parameters_file(
        &self,
        data: &Path,
        parameters: &[(String, String)],
    ) -> Result<(), String> {
        let mut text = String::from("# Written by kumori from the DB parameter group.\n");
        for (k, v) in parameters {
            // Only PostgreSQL's own settings: RDS's (rds.*) have no meaning here.
            if k.contains('.') || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            text.push_str(&format!("{k} = {}\n", quote_literal(v)));
        }
        let path = data.join("kumori-parameters.conf");
        std::fs::write(&path, text).map_err(|e| e.to_string())?;
        process::give(&path, self.owner.as_ref()).map_err(|e| e.to_string())
    }
}
