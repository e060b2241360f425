//! MariaDB, which serves both `mysql` and `mariadb` instances (MySQL's clients speak to it
//! unchanged). `mariadb-install-db` makes the data directory, an init file on the first
//! start makes the master user (`'user'@'%'`, all privileges but SUPER and READ_ONLY ADMIN,
//! as RDS's master user has no SUPER: a read replica's `read_only` holds for it) and the database asked for,
//! and kumori itself talks to the server as the operating system's user over the Unix
//! socket. Standbys and read replicas are loaded from a `mariadb-dump` of their primary and
//! follow it by GTID; a snapshot is a prepared `mariadb-backup`.

use crate::process::{self, Owner};
use crate::{Meta, Role, Spec};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::process::Child;

const REPL_USER: &str = "rdsrepladmin";

pub struct Server {
    sbin: PathBuf,
    /// Who kumori is: MariaDB's `root`-like account for local socket logins.
    me: String,
}

fn os_user() -> String {
    // SAFETY: getpwuid on our own uid; the result is copied at once.
    unsafe {
        let pw = libc::getpwuid(libc::geteuid());
        if pw.is_null() {
            return "root".into();
        }
        std::ffi::CStr::from_ptr((*pw).pw_name)
            .to_string_lossy()
            .into_owned()
    }
}

fn sql_string(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

impl Server {
    pub fn new(programs: &crate::Programs) -> Result<Server, String> {
        let sbin = programs
            .mariadb
            .clone()
            .ok_or("MariaDB is not installed: apt-get install mariadb-server mariadb-client mariadb-backup")?;
        Ok(Server {
            sbin,
            me: os_user(),
        })
    }

    fn tool(&self, name: &str) -> tokio::process::Command {
        let path = process::find(name, &[self.sbin.clone(), PathBuf::from("/usr/bin")])
            .unwrap_or_else(|| PathBuf::from(name));
        process::command(&path, None::<&Owner>, libc::SIGTERM)
    }

    /// The server's socket: beside its data when the path is short enough for a socket
    /// address, else in the temporary directory under a name made from that path.
    fn socket(dir: &Path, data: &str) -> PathBuf {
        let near = dir.join(format!("{data}.sock"));
        if near.as_os_str().len() < 100 {
            return near;
        }
        std::env::temp_dir().join(format!("kumori-db-{:x}.sock", hash(&near)))
    }

    /// Runs SQL as kumori's own account over the socket.
    async fn sql(&self, dir: &Path, data: &str, sql: &str) -> Result<String, String> {
        let mut cmd = self.tool("mariadb");
        cmd.arg(format!("--socket={}", Self::socket(dir, data).display()))
            .arg("-u")
            .arg(&self.me)
            .args(["-N", "-B", "-e", sql])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let out = cmd.output().await.map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }

    pub async fn backup(
        &self,
        dir: &Path,
        data: &str,
        dest: &Path,
        log: &Path,
    ) -> Result<(), String> {
        let target = dest.join("data");
        std::fs::create_dir_all(dest).map_err(|e| e.to_string())?;
        let mut cmd = self.tool("mariadb-backup");
        cmd.arg("--backup")
            .arg(format!("--target-dir={}", target.display()))
            .arg(format!("--socket={}", Self::socket(dir, data).display()))
            .arg(format!("--user={}", self.me));
        process::run(cmd, log).await?;
        let mut cmd = self.tool("mariadb-backup");
        cmd.arg("--prepare")
            .arg(format!("--target-dir={}", target.display()));
        process::run(cmd, log).await
    }

    pub async fn copy(&self, data: &Path, dest: &Path, log: &Path) -> Result<(), String> {
        std::fs::create_dir_all(dest).map_err(|e| e.to_string())?;
        let mut cmd = process::command(Path::new("cp"), None, libc::SIGTERM);
        cmd.arg("-a").arg(data).arg(dest.join("data"));
        process::run(cmd, log).await
    }

    fn server_cmd(&self, dir: &Path, data: &str, port: u16) -> tokio::process::Command {
        let mut cmd = process::command(&self.sbin.join("mariadbd"), None, libc::SIGTERM);
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", dir.join(data).display()))
            .arg(format!("--port={port}"))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--socket={}", Self::socket(dir, data).display()))
            .arg(format!(
                "--pid-file={}",
                dir.join(format!("{data}.pid")).display()
            ))
            .arg(format!(
                "--log-error={}",
                dir.join(format!("{data}.err")).display()
            ))
            .arg("--log-bin=mysql-bin")
            .arg(format!(
                "--server-id={}",
                (hash(&dir.join(data)) % 4_000_000_000) + 1
            ))
            .arg("--skip-name-resolve")
            // A small footprint while idle.
            .arg("--innodb-buffer-pool-size=16M")
            .arg("--innodb-log-buffer-size=4M")
            .arg("--key-buffer-size=1M")
            .arg("--performance-schema=OFF");
        if process::is_root() {
            cmd.arg("--user=root");
        }
        cmd
    }

    async fn install(&self, dir: &Path, data: &str) -> Result<(), String> {
        let mut cmd = self.tool("mariadb-install-db");
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", dir.join(data).display()))
            .arg(format!("--user={}", self.me))
            .arg("--auth-root-authentication-method=socket")
            .arg("--skip-test-db");
        process::run(cmd, &dir.join(format!("{data}.log"))).await
    }
}

fn hash(p: &Path) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    p.hash(&mut h);
    h.finish()
}

#[async_trait::async_trait]
impl crate::Server for Server {
    fn make_dir(&self, dir: &Path) -> Result<(), String> {
        process::make_dir(dir, None).map_err(|e| e.to_string())
    }

    async fn init(&self, dir: &Path, data: &str, spec: &Spec, repl: &str) -> Result<(), String> {
        self.install(dir, data).await?;
        let user = sql_string(&spec.user);
        let mut sql = format!(
            "CREATE USER IF NOT EXISTS {user}@'%' IDENTIFIED BY {pw};\n\
             GRANT ALL PRIVILEGES ON *.* TO {user}@'%' WITH GRANT OPTION;\n\
             REVOKE SUPER, READ_ONLY ADMIN ON *.* FROM {user}@'%';\n\
             CREATE USER IF NOT EXISTS '{REPL_USER}'@'%' IDENTIFIED BY {repl};\n\
             GRANT ALL PRIVILEGES ON *.* TO '{REPL_USER}'@'%';\n",
            pw = sql_string(&spec.password),
            repl = sql_string(repl),
        );
        if let Some(db) = &spec.database {
            sql.push_str(&format!(
                "CREATE DATABASE IF NOT EXISTS `{}`;\n",
                db.replace('`', "``")
            ));
        }
        let path = dir.join("init.sql");
        std::fs::write(&path, sql).map_err(|e| e.to_string())
    }

    async fn copy_in(&self, dir: &Path, data: &str, from: &Path) -> Result<(), String> {
        let dest = dir.join(data);
        let mut cmd = process::command(Path::new("cp"), None, libc::SIGTERM);
        cmd.arg("-a").arg(from.join("data")).arg(&dest);
        process::run(cmd, &dir.join(format!("{data}.log"))).await?;
        // A snapshot of a replica restores to an instance of its own.
        for f in ["master.info", "relay-log.info", "multi-master.info"] {
            let _ = std::fs::remove_file(dest.join(f));
        }
        Ok(())
    }

    async fn seed(
        &self,
        dir: &Path,
        data: &str,
        source_port: u16,
        repl: &str,
    ) -> Result<(), String> {
        let log = dir.join(format!("{data}.log"));
        self.install(dir, data).await?;
        let port = process::port_near(0);
        let mut cmd = self.server_cmd(dir, data, port);
        cmd.arg("--skip-slave-start");
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start mariadbd: {e}"))?;
        let result = async {
            crate::wait_for(
                Some(&mut child),
                &dir.join(format!("{data}.err")),
                Duration::from_secs(60),
                || async { self.sql(dir, data, "SELECT 1").await.is_ok() },
            )
            .await?;
            let dump = dir.join("seed.sql");
            let mut d = self.tool("mariadb-dump");
            d.arg("-h")
                .arg("127.0.0.1")
                .arg("-P")
                .arg(source_port.to_string())
                .arg("-u")
                .arg(REPL_USER)
                .args([
                    "--all-databases",
                    "--single-transaction",
                    "--gtid",
                    "--master-data=1",
                    "--routines",
                    "--events",
                    "--triggers",
                ])
                .arg(format!("--result-file={}", dump.display()))
                .env("MYSQL_PWD", repl);
            process::run(d, &log).await?;
            let mut load = self.tool("mariadb");
            load.arg(format!("--socket={}", Self::socket(dir, data).display()))
                .arg("-u")
                .arg(&self.me)
                .stdin(std::fs::File::open(&dump).map_err(|e| e.to_string())?);
            let r = process::run(load, &log).await;
            let _ = std::fs::remove_file(&dump);
            r?;
            self.sql(
                dir,
                data,
                &format!(
                    "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={source_port}, \
                     MASTER_USER='{REPL_USER}', MASTER_PASSWORD={}, MASTER_USE_GTID=slave_pos",
                    sql_string(repl)
                ),
            )
            .await?;
            Ok::<(), String>(())
        }
        .await;
        crate::Server::stop(self, &mut child).await;
        result
    }

    async fn start(
        &self,
        dir: &Path,
        data: &str,
        port: u16,
        role: Role,
        spec: &Spec,
        _meta: &Meta,
        first: bool,
    ) -> Result<Child, String> {
        let log = dir.join(format!("{data}.log"));
        let mut cmd = self.server_cmd(dir, data, port);
        if role != Role::Primary {
            cmd.arg("--read-only=1");
        }
        if first {
            cmd.arg(format!("--init-file={}", dir.join("init.sql").display()));
        }
        for (k, v) in &spec.parameters {
            if k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                cmd.arg(format!("--{}={v}", k.replace('_', "-")));
            }
        }
        process::output_to(&mut cmd, &log)?;
        cmd.spawn()
            .map_err(|e| format!("cannot start mariadbd: {e}"))
    }

    async fn wait_ready(
        &self,
        dir: &Path,
        _port: u16,
        _spec: &Spec,
        meta: &Meta,
        child: Option<&mut Child>,
    ) -> Result<(), String> {
        let data = meta.primary.clone();
        crate::wait_for(
            child,
            &dir.join(format!("{data}.err")),
            Duration::from_secs(120),
            || {
                let data = data.clone();
                async move { self.sql(dir, &data, "SELECT 1").await.is_ok() }
            },
        )
        .await
    }

    async fn bootstrap(
        &self,
        dir: &Path,
        _port: u16,
        _spec: &Spec,
        _meta: &Meta,
    ) -> Result<(), String> {
        // The init file ran before the server took connections; it holds the password.
        let _ = std::fs::remove_file(dir.join("init.sql"));
        Ok(())
    }

    async fn set_password(
        &self,
        dir: &Path,
        _port: u16,
        spec: &Spec,
        meta: &Meta,
    ) -> Result<(), String> {
        self.sql(
            dir,
            &meta.primary,
            &format!(
                "ALTER USER {}@'%' IDENTIFIED BY {}",
                sql_string(&spec.user),
                sql_string(&spec.password)
            ),
        )
        .await
        .map(|_| ())
    }

    fn set_parameters(
        &self,
        _data: &Path,
        _p: &[(String, String)],
        _running: Option<&Child>,
    ) -> Result<(), String> {
        // MariaDB takes the parameter group's settings as options at its next start.
        Ok(())
    }

    async fn catch_up(&self, dir: &Path, data: &str, _port: u16) -> Result<(), String> {
        // Until the standby has applied all it received from the stopped primary.
        for _ in 0..100 {
            let status = self.sql(dir, data, "SHOW SLAVE STATUS\\G").await?;
            let field = |name: &str| {
                status.lines().find_map(|l| {
                    l.trim()
                        .strip_prefix(&format!("{name}: "))
                        .map(str::to_string)
                })
            };
            if field("Read_Master_Log_Pos") == field("Exec_Master_Log_Pos")
                && field("Master_Log_File") == field("Relay_Master_Log_File")
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    async fn promote(&self, dir: &Path, data: &str, _port: u16) -> Result<(), String> {
        self.sql(
            dir,
            data,
            "STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only=0",
        )
        .await
        .map(|_| ())
    }

    async fn stop(&self, child: &mut Child) {
        process::stop(child, libc::SIGTERM, Duration::from_secs(30)).await;
    }
}
