//! The `kumori` command: a thin binary over the library crates.

use clap::{Parser, Subcommand};
use kumori_blobs::Blobs;
use kumori_server::{Config, Limits, ServeOptions, router, serve};
use kumori_store::Store;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "kumori",
    version,
    about = "A local AWS cloud that real AWS tools drive unchanged"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// A PostgreSQL database instead of SQLite: several nodes started with the same one share
/// one kumori.
#[derive(clap::Args)]
struct Database {
    /// PostgreSQL to keep state in, shared by every node given it
    /// (postgres://user:password@host:port/database).
    #[arg(long, env = "KUMORI_DATABASE_URL")]
    database_url: Option<String>,
    /// The schema kumori's tables live in, made if missing (default: the connection's own).
    #[arg(long, env = "KUMORI_DATABASE_SCHEMA", requires = "database_url")]
    database_schema: Option<String>,
    /// Where blobs (S3 objects, backups) are kept: with --database-url, a directory every
    /// node mounts (default: <state-dir>/blobs; in memory with --ephemeral).
    #[arg(long, env = "KUMORI_BLOB_DIR")]
    blob_dir: Option<PathBuf>,
    /// Where RDS instances' database servers keep their data (default:
    /// <state-dir>/databases; with --ephemeral or --database-url, a temporary directory
    /// removed at exit).
    #[arg(long, env = "KUMORI_DATABASES_DIR")]
    databases_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve every AWS service on one HTTP port.
    Serve {
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        #[arg(long, default_value_t = 4566)]
        port: u16,
        /// Where state lives (default: the per-user data directory, e.g. ~/.local/share/kumori).
        #[arg(long, env = "KUMORI_STATE_DIR", conflicts_with = "ephemeral")]
        state_dir: Option<PathBuf>,
        /// Keep nothing on disk: state lives in memory and goes with the process.
        #[arg(long)]
        ephemeral: bool,
        #[command(flatten)]
        database: Database,
        /// The account every access key maps to.
        #[arg(long, env = "KUMORI_ACCOUNT_ID", default_value = "000000000000")]
        account_id: String,
        /// Region of requests that name none.
        #[arg(long, env = "KUMORI_DEFAULT_REGION", default_value = "us-east-1")]
        default_region: String,
        /// VPCs allowed per region (AWS's default quota is 5).
        #[arg(long, default_value_t = 5)]
        vpc_quota: usize,
        /// Elastic IPs allowed per region (AWS's default quota is 5).
        #[arg(long, default_value_t = 5)]
        eip_quota: usize,
        /// What is checked of each request: `off` (any key works), `verify` (SigV4
        /// signatures against IAM's keys) or `enforce` (signatures and IAM policies).
        #[arg(long, env = "KUMORI_AUTH", default_value = "off")]
        auth: kumori_server::Mode,
        /// A host name, besides loopback ones, under which kumori's own endpoints
        /// (`/_kumori/*`) answer (repeatable): the name you serve kumori as.
        #[arg(long = "allowed-host")]
        allowed_hosts: Vec<String>,
        /// Seconds a client has to send a request's headers; an idle keep-alive connection
        /// is closed after as long.
        #[arg(long, default_value_t = 20)]
        header_timeout: u64,
        /// Seconds a request may take, body included, before it is abandoned.
        #[arg(long, default_value_t = 60)]
        request_timeout: u64,
        /// Open connections at most; further ones are answered 503 and closed.
        #[arg(long, default_value_t = 1024)]
        max_connections: usize,
        #[command(flatten)]
        dataplane: DataplaneArgs,
    },
    /// The data plane's own commands.
    Dataplane {
        #[command(subcommand)]
        command: DataplaneCommand,
    },
    /// The metadata endpoint of an instance (with its secret when authentication is on), for
    /// a process on this host to act as that instance: set AWS_EC2_METADATA_SERVICE_ENDPOINT
    /// to what it prints.
    ImdsEndpoint {
        instance_id: String,
        /// Where kumori serves.
        #[arg(long, default_value = "http://127.0.0.1:4566")]
        endpoint: String,
        /// Whether the server runs with authentication on (then the endpoint has a secret).
        #[arg(long, env = "KUMORI_AUTH", default_value = "off")]
        auth: kumori_server::Mode,
        #[arg(long, env = "KUMORI_ACCOUNT_ID", default_value = "000000000000")]
        account_id: String,
        /// The state a running kumori keeps (default: the per-user data directory).
        #[arg(long, env = "KUMORI_STATE_DIR")]
        state_dir: Option<PathBuf>,
        #[command(flatten)]
        database: Database,
    },
    /// Whether one end reaches another, hop by hop, and what blocks it: e.g.
    /// `kumori reach --from 203.0.113.5 --to i-0abc… --port 22`. Asks the running kumori
    /// (--endpoint-url); exits 0 when reachable, 1 when not, 2 when no kumori answers.
    Reach {
        /// An instance id, an interface id, or an address (an address on the internet, or
        /// a private one).
        #[arg(long)]
        from: String,
        /// An instance id, an interface id, or an address.
        #[arg(long)]
        to: String,
        /// The destination port; without it, every port's verdict.
        #[arg(long)]
        port: Option<u16>,
        /// tcp, udp or icmp.
        #[arg(long, default_value = "tcp")]
        protocol: String,
        /// Also send the question's real packets through the data plane (a server started
        /// with --dataplane) and print what the kernel did beside the engine's verdict.
        #[arg(long)]
        probe: bool,
        #[command(flatten)]
        asking: Asking,
    },
    /// Exposures a reviewer would flag in a region's networks: admin and database ports
    /// open to the internet, internet-reachable interfaces in subnets without a default
    /// route to a gateway, shadowed network ACL entries, unused security groups. Asks the
    /// running kumori (--endpoint-url); exits 0 when there is none, 1 when there are, 2 when
    /// no kumori answers.
    Audit {
        #[command(flatten)]
        asking: Asking,
    },
}

/// `--dataplane` and its settings.
#[derive(clap::Args)]
struct DataplaneArgs {
    /// Realise every VPC as real Linux networking (namespaces, veth links, routes,
    /// nftables), kept in step with the API, so packets meet the security groups, ACLs and
    /// routes. Linux, as root. Removed again at a clean shutdown.
    #[arg(long)]
    dataplane: bool,
    /// What every namespace and link the data plane makes is named after.
    #[arg(long, default_value = "kmr", value_parser = prefix_name)]
    dataplane_prefix: String,
    /// A host on the data plane's internet, with this public address (repeatable; default
    /// 203.0.113.5 "my IP", 198.51.100.7 a stranger, 198.51.100.80 a public server).
    #[arg(long = "internet-host")]
    internet_hosts: Vec<std::net::Ipv4Addr>,
    /// Do not link the host to the data plane's internet (by default it reaches the public
    /// pool 198.18.0.0/15 through one link, as 192.0.2.1).
    #[arg(long)]
    no_host_link: bool,
    /// Where images' root filesystems are built and kept, shared by every kumori on this
    /// machine (default: <data dir>/kumori/images).
    #[arg(long, env = "KUMORI_IMAGE_CACHE")]
    image_cache: Option<PathBuf>,
    /// Keep instances as records only: no containers, even with runc and mmdebstrap.
    #[arg(long)]
    no_instances: bool,
}

fn prefix_name(s: &str) -> Result<String, String> {
    if (1..=6).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        Ok(s.to_string())
    } else {
        Err("1 to 6 lowercase letters or digits".into())
    }
}

#[derive(Subcommand)]
enum DataplaneCommand {
    /// Remove every namespace and link a data plane with this prefix made (what a clean
    /// shutdown does; for after a crash).
    Down {
        #[arg(long, default_value = "kmr", value_parser = prefix_name)]
        prefix: String,
    },
}

/// Which kumori `reach` and `audit` ask, about which region, as whom: as every AWS tool
/// reads them. The access key (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN)
/// signs the question, which a server under `--auth verify|enforce` requires.
#[derive(clap::Args)]
struct Asking {
    /// The region to look in [default: AWS_REGION, else AWS_DEFAULT_REGION, else the
    /// server's default region (us-east-1 unless it was started with --default-region)].
    #[arg(long)]
    region: Option<String>,
    /// Where the running kumori serves.
    #[arg(
        long,
        env = "AWS_ENDPOINT_URL",
        default_value = "http://127.0.0.1:4566"
    )]
    endpoint_url: String,
}

impl Asking {
    /// The region: `--region`, else AWS_REGION, else AWS_DEFAULT_REGION; none leaves it to
    /// the server.
    fn with_env_region(mut self) -> Self {
        self.region = self.region.or_else(|| {
            ["AWS_REGION", "AWS_DEFAULT_REGION"]
                .iter()
                .find_map(|v| std::env::var(v).ok().filter(|r| !r.is_empty()))
        });
        self
    }

    /// The server to ask, as the holder of `credentials` (unsigned without).
    fn server<'a>(
        &'a self,
        credentials: Option<&'a kumori_server::ask::Credentials>,
    ) -> kumori_server::ask::Server<'a> {
        kumori_server::ask::Server {
            endpoint: &self.endpoint_url,
            region: self.region.as_deref(),
            credentials,
        }
    }
}

/// Why a command failed, and the exit status that says so.
enum Failure {
    /// Exit 1: the command's answer is "no" (not reachable, findings), or an error.
    Failed(String),
    /// Exit 2: no kumori answered at the endpoint.
    Unreachable(String),
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure::Failed(message)
    }
}

impl From<kumori_server::ask::AskError> for Failure {
    fn from(e: kumori_server::ask::AskError) -> Self {
        match e {
            kumori_server::ask::AskError::Unreachable(m) => Failure::Unreachable(m),
            kumori_server::ask::AskError::Failed(m) => Failure::Failed(m),
        }
    }
}

/// What `kumori reach` and `kumori audit` print: the server's text; then they fail with
/// `no` when the verdict is not the good one.
fn verdict(told: kumori_server::ask::Told, no: &str) -> Result<(), Failure> {
    print!("{}", told.text);
    match told.ok {
        true => Ok(()),
        false => Err(Failure::Failed(no.into())),
    }
}

/// Removes the temporary database directories of kumori processes that are gone (killed
/// before they could remove their own); their servers died with them.
fn remove_stale_databases() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if let Some(pid) = name
            .strip_prefix("kumori-databases-")
            .and_then(|p| p.parse::<u32>().ok())
            && !std::path::Path::new("/proc").join(pid.to_string()).exists()
        {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

fn state_dir_or_default(state_dir: Option<PathBuf>) -> Result<PathBuf, String> {
    match state_dir {
        Some(d) => Ok(d),
        None => Ok(dirs::data_dir()
            .ok_or("no per-user data directory; pass --state-dir")?
            .join("kumori")),
    }
}

/// The store a server keeps (for `serve`, and `imds-endpoint` beside it).
async fn open_state(state_dir: Option<PathBuf>, database: Database) -> Result<Store, String> {
    if let Some(url) = database.database_url {
        return Store::open_postgres(&url, database.database_schema.as_deref())
            .await
            .map_err(|e| e.to_string());
    }
    let dir = state_dir_or_default(state_dir)?;
    Store::open_dir(&dir).await.map_err(|e| e.to_string())
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KUMORI_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(Failure::Failed(e)) => {
            eprintln!("kumori: {e}");
            std::process::ExitCode::FAILURE
        }
        Err(Failure::Unreachable(e)) => {
            eprintln!("kumori: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    if let Command::Reach {
        from,
        to,
        port,
        protocol,
        probe,
        asking,
    } = cli.command
    {
        let asking = asking.with_env_region();
        let credentials = kumori_server::ask::Credentials::from_env();
        let server = asking.server(credentials.as_ref());
        let told = kumori_server::ask::reach(&server, &from, &to, port, &protocol, probe).await?;
        return verdict(told, "not reachable");
    }
    if let Command::Dataplane {
        command: DataplaneCommand::Down { prefix },
    } = &cli.command
    {
        kumori_dataplane::check_capable()?;
        // Instances first: their containers hold the namespaces.
        let containers = kumori_server::dataplane::sweep_instances(prefix);
        let gone = kumori_dataplane::kernel::namespaces_with(prefix).len();
        kumori_dataplane::Reconciler::new(prefix);
        println!(
            "kumori: removed {containers} instance containers and {gone} namespaces named {prefix}-*"
        );
        return Ok(());
    }
    if let Command::Audit { asking } = cli.command {
        let asking = asking.with_env_region();
        let credentials = kumori_server::ask::Credentials::from_env();
        let told = kumori_server::ask::audit(&asking.server(credentials.as_ref())).await?;
        return verdict(told, "findings above");
    }
    if let Command::ImdsEndpoint {
        instance_id,
        endpoint,
        auth,
        account_id,
        state_dir,
        database,
    } = cli.command
    {
        let store = open_state(state_dir, database).await?;
        let limits = Limits::default();
        let ctx = kumori_services::Ctx {
            store: &store,
            account: &account_id,
            region: "us-east-1",
            limits: &limits,
            caller: None,
        };
        let path = kumori_services::ec2::imds::endpoint_path(
            &ctx,
            &instance_id,
            auth != kumori_server::Mode::Off,
        )
        .await
        .map_err(|e| format!("{}: {}", e.0.code, e.0.message))?
        .ok_or_else(|| format!("no instance {instance_id} in account {account_id}"))?;
        println!("{}{path}", endpoint.trim_end_matches('/'));
        return Ok(());
    }
    let Command::Serve {
        host,
        port,
        state_dir,
        ephemeral,
        database,
        account_id,
        default_region,
        vpc_quota,
        eip_quota,
        auth,
        allowed_hosts,
        header_timeout,
        request_timeout,
        max_connections,
        dataplane,
    } = cli.command
    else {
        unreachable!("the other commands returned above");
    };
    if account_id.len() != 12 || !account_id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("--account-id must be 12 digits, not '{account_id}'").into());
    }
    if database.database_url.is_some() && (ephemeral || state_dir.is_some()) {
        return Err(
            "--database-url keeps state in PostgreSQL: leave out --ephemeral and \
                    --state-dir (and KUMORI_STATE_DIR)"
                .to_string()
                .into(),
        );
    }
    let blobs = std::sync::Arc::new(match (&database.blob_dir, &database.database_url) {
        (Some(dir), _) => Blobs::dir(dir),
        (None, Some(_)) => Blobs::Unconfigured,
        (None, None) if ephemeral => Blobs::memory(),
        (None, None) => Blobs::dir(state_dir_or_default(state_dir.clone())?.join("blobs")),
    });
    // Where RDS's database servers keep their data: as told, else beside the state, else
    // (state in memory or in PostgreSQL) a directory of this process's, removed at exit.
    let (databases_dir, databases_temporary) =
        match (&database.databases_dir, ephemeral, &database.database_url) {
            (Some(d), _, _) => (d.clone(), false),
            (None, false, None) => (
                state_dir_or_default(state_dir.clone())?.join("databases"),
                false,
            ),
            _ => {
                remove_stale_databases();
                (
                    std::env::temp_dir().join(format!("kumori-databases-{}", std::process::id())),
                    true,
                )
            }
        };
    // Where a data plane's instances keep their layers: beside the state when it has a
    // directory, else under the data directory by prefix.
    let instances_dir = state_dir.as_ref().map(|d| d.join("instances"));
    let store = if ephemeral {
        Store::open_memory().await.map_err(|e| e.to_string())?
    } else {
        open_state(state_dir, database).await?
    };
    let addr: SocketAddr = format!("{host}:{port}")
        .parse()
        .map_err(|e| format!("bad --host/--port {host}:{port}: {e}"))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    println!("kumori: state in {}", store.describe());
    println!("kumori: blobs in {}", blobs.describe());
    // State written before IAM's tags had the store's table keeps them in documents.
    kumori_services::iam::move_tags_out_of_documents(&store)
        .await
        .map_err(|e| format!("{}: {}", e.0.code, e.0.message))?;
    if auth != kumori_server::Mode::Off {
        root_credential(&store, &account_id).await?;
    }
    println!("kumori: listening on http://{local}");
    let dataplane = if dataplane.dataplane {
        let hosts = if dataplane.internet_hosts.is_empty() {
            ["203.0.113.5", "198.51.100.7", "198.51.100.80"]
                .iter()
                .map(|h| h.parse().expect("address"))
                .collect()
        } else {
            dataplane.internet_hosts
        };
        let options = kumori_dataplane::Options {
            prefix: dataplane.dataplane_prefix,
            internet_hosts: hosts,
            host_link: !dataplane.no_host_link,
        };
        let tools = ["runc", "mmdebstrap"]
            .into_iter()
            .filter(|t| {
                std::process::Command::new(t)
                    .arg("--version")
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .status()
                    .is_err()
            })
            .collect::<Vec<_>>();
        let machines = if dataplane.no_instances {
            None
        } else if !tools.is_empty() {
            println!(
                "kumori: instances stay records: {} missing (Debian: apt-get install runc mmdebstrap)",
                tools.join(", ")
            );
            None
        } else {
            let data = state_dir_or_default(None)?;
            let dir = instances_dir
                .clone()
                .unwrap_or_else(|| data.join("instances").join(&options.prefix));
            let cache = dataplane.image_cache.unwrap_or_else(|| data.join("images"));
            println!(
                "kumori: instances run as containers: layers in {}, images in {}",
                dir.display(),
                cache.display()
            );
            Some(kumori_server::dataplane::Machines { dir, cache })
        };
        let dp =
            kumori_server::dataplane::Dataplane::start(store.clone(), options.clone(), machines)
                .map_err(|e| format!("--dataplane: {e}"))?;
        println!(
            "kumori: data plane on: namespaces {p}-*, internet hosts {}{}",
            options
                .internet_hosts
                .iter()
                .map(|h| h.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            if options.host_link {
                format!(
                    "; this host reaches {} as {}",
                    kumori_dataplane::plan::PUBLIC_POOL,
                    kumori_dataplane::plan::HOST_ADDRESS
                )
            } else {
                String::new()
            },
            p = options.prefix,
        );
        Some(dp)
    } else {
        None
    };
    let limits = Limits {
        vpcs_per_region: vpc_quota,
        addresses_per_region: eip_quota,
        ..Limits::default()
    };
    let databases = kumori_server::databases::Databases::start(
        store.clone(),
        limits.clone(),
        databases_dir,
        databases_temporary,
        dataplane.as_ref().map(|dp| dp.prefix().to_string()),
    );
    println!(
        "kumori: RDS instances' databases in {}",
        databases.root().display()
    );
    let app = router(
        store.clone(),
        Config {
            account_id: account_id.clone(),
            default_region,
            limits: limits.clone(),
            auth,
            allowed_hosts: allowed_hosts
                .into_iter()
                .chain((host != "0.0.0.0" && host != "::").then_some(host))
                .collect(),
            blobs,
            dataplane: dataplane.clone(),
            balancers: Some(kumori_server::balancers::Balancers::start(
                store.clone(),
                limits.clone(),
                std::net::Ipv4Addr::LOCALHOST.into(),
                dataplane.as_ref().map(|dp| dp.prefix().to_string()),
            )),
            databases: Some(databases.clone()),
        },
    );
    let options = ServeOptions {
        header_read_timeout: std::time::Duration::from_secs(header_timeout.max(1)),
        request_timeout: std::time::Duration::from_secs(request_timeout.max(1)),
        max_connections: max_connections.max(1),
    };
    if let Some(dp) = &dataplane {
        dp.serve_api(app.clone(), options.clone());
    }
    kumori_server::background::spawn_housekeeping(store.clone());
    kumori_server::background::spawn_autoscaling(store.clone(), limits);
    let served = serve(listener, app, options, shutdown())
        .await
        .map_err(|e| e.to_string());
    databases.shutdown().await;
    if let Some(dp) = dataplane {
        dp.shutdown().await;
    }
    served?;
    store.close().await;
    Ok(())
}

/// With authentication on, the account needs a root key: the one the environment gives
/// (`KUMORI_ROOT_ACCESS_KEY_ID`, `KUMORI_ROOT_SECRET_ACCESS_KEY`), or one made on first
/// start and printed once.
async fn root_credential(store: &Store, account: &str) -> Result<(), String> {
    let given = match (
        std::env::var("KUMORI_ROOT_ACCESS_KEY_ID"),
        std::env::var("KUMORI_ROOT_SECRET_ACCESS_KEY"),
    ) {
        (Ok(id), Ok(secret)) => Some((id, secret)),
        (Err(_), Err(_)) => None,
        _ => {
            return Err(
                "set both KUMORI_ROOT_ACCESS_KEY_ID and KUMORI_ROOT_SECRET_ACCESS_KEY, or neither"
                    .into(),
            );
        }
    };
    let limits = Limits::default();
    let ctx = kumori_services::Ctx {
        store,
        account,
        region: "us-east-1",
        limits: &limits,
        caller: None,
    };
    match kumori_services::auth::ensure_root_key(&ctx, given).await {
        Ok(Some((id, secret))) => {
            println!("kumori: root credentials for account {account} (shown once, keep them):");
            println!("kumori:   AWS_ACCESS_KEY_ID={id}");
            println!("kumori:   AWS_SECRET_ACCESS_KEY={secret}");
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(e) => Err(format!("{}: {}", e.0.code, e.0.message)),
    }
}

/// Ctrl-C or SIGTERM: finish in-flight requests, then close the store cleanly.
async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
