//! The `mdmhub` command line: global options and the subcommands. Each
//! subcommand lives in its own module and returns `anyhow::Result`; `main`
//! prints an error as one line and exits non-zero.

mod accounts;
mod call;
mod connectors;
pub(crate) mod describe;
pub mod inputs;
mod inventory;
mod keys;
mod serve;
mod sync;
mod table;

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};

use std::sync::Arc;

use crate::accounts::Accounts;
use crate::runtime::{Registry, Runtime, RuntimeConfig};
use crate::secrets::MasterKey;
use crate::store::Store;

/// mdmhub: one normalized view of the devices in your MDMs.
#[derive(Debug, Parser)]
#[command(name = "mdmhub", version, about)]
pub struct Cli {
    /// Data directory (database, keys, compiled-connector cache).
    #[arg(long, global = true, env = "MDMHUB_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Directory of third-party connectors (`*.wasm`) [default: <data dir>/connectors].
    #[arg(long, global = true, env = "MDMHUB_CONNECTORS_DIR")]
    pub connectors_dir: Option<PathBuf>,
    /// Database URL: `sqlite://PATH` or `postgres://...` [default: SQLite in the data dir].
    #[arg(
        long,
        global = true,
        env = "MDMHUB_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Log output format (logs go to stderr).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Log output formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inspect connectors.
    #[command(subcommand)]
    Connectors(connectors::ConnectorsCommand),
    /// Call a vendor live through a connector (no storage).
    Call(call::CallArgs),
    /// Manage saved accounts (credentials are checked before saving).
    #[command(subcommand)]
    Accounts(accounts::AccountsCommand),
    /// Sync accounts into the inventory, by hand or on their schedule.
    Sync(sync::SyncArgs),
    /// Synced devices.
    #[command(subcommand)]
    Devices(inventory::DevicesCommand),
    /// Synced users.
    #[command(subcommand)]
    Users(inventory::ListCommand),
    /// Synced installed apps.
    #[command(subcommand)]
    Apps(inventory::ListCommand),
    /// Synced organizations (tenants, sites, blueprints, groups).
    #[command(subcommand, alias = "organizations")]
    Orgs(inventory::ListCommand),
    /// Serve the HTTP API (and sync accounts on their schedules).
    Serve(serve::ServeArgs),
    /// API keys for the HTTP API.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
}

impl Cli {
    /// Runs the chosen command, printing to stdout.
    pub async fn run(self) -> anyhow::Result<()> {
        self.run_to(&mut std::io::stdout()).await
    }

    /// Runs the chosen command, writing its output to `out` (tests read it).
    pub async fn run_to(self, out: &mut (dyn std::io::Write + Send)) -> anyhow::Result<()> {
        let env = Env::new(&self)?;
        match self.command {
            Command::Connectors(c) => c.run(&env).await,
            Command::Call(c) => c.run(&env, out).await,
            Command::Accounts(c) => c.run(&env, out).await,
            Command::Sync(c) => c.run(&env, out).await,
            Command::Devices(c) => c.run(&env, out).await,
            Command::Users(c) => c.run(&env, inventory::Kind::Users, out).await,
            Command::Apps(c) => c.run(&env, inventory::Kind::Apps, out).await,
            Command::Orgs(c) => c.run(&env, inventory::Kind::Organizations, out).await,
            Command::Serve(c) => c.run(&env, out).await,
            Command::Keys(c) => c.run(&env, out).await,
        }
    }
}

/// What every command needs: the resolved directories and a runtime.
pub struct Env {
    /// The data directory.
    pub data_dir: PathBuf,
    /// The connectors directory.
    pub connectors_dir: PathBuf,
    /// The runtime.
    pub runtime: Runtime,
    /// `--database-url`, if given.
    pub database_url: Option<String>,
}

impl Env {
    fn new(cli: &Cli) -> anyhow::Result<Self> {
        let data_dir = match &cli.data_dir {
            Some(d) => d.clone(),
            None => directories::ProjectDirs::from("", "", "mdmhub")
                .context("no home directory to put the data directory in; pass --data-dir")?
                .data_dir()
                .to_path_buf(),
        };
        let connectors_dir = cli
            .connectors_dir
            .clone()
            .unwrap_or_else(|| data_dir.join("connectors"));
        let config = RuntimeConfig {
            cache_dir: Some(data_dir.join("cache").join("components")),
            ..RuntimeConfig::default()
        };
        let runtime = Runtime::new(config).context("starting the WebAssembly runtime")?;
        Ok(Self {
            data_dir,
            connectors_dir,
            runtime,
            database_url: cli.database_url.clone(),
        })
    }

    /// Opens (and migrates) the database.
    pub async fn store(&self) -> anyhow::Result<Store> {
        match &self.database_url {
            Some(url) => Store::open(url)
                .await
                .with_context(|| format!("opening database {}", crate::store::redact(url))),
            None => Store::open_in(&self.data_dir).await.with_context(|| {
                format!(
                    "opening database {}",
                    self.data_dir.join(crate::store::SQLITE_FILE).display()
                )
            }),
        }
    }

    /// The store, connectors and master key that account work needs.
    pub async fn accounts(&self) -> anyhow::Result<Accounts> {
        let store = self.store().await?;
        let shared = store.backend() == crate::store::Backend::Postgres;
        let key = MasterKey::load(&self.data_dir, shared).context("loading the master key")?;
        Ok(Accounts {
            store,
            runtime: self.runtime.clone(),
            registry: Arc::new(self.registry().await),
            key: Arc::new(key),
        })
    }

    /// Loads the built-in connectors and the connectors directory.
    pub async fn registry(&self) -> Registry {
        self.runtime
            .load_all(crate::builtin::BUILTINS, Some(&self.connectors_dir))
            .await
    }
}

/// The whole `mdmhub` program: parses the command line, sets up logging,
/// runs, and reports an error as one line.
pub async fn main() -> std::process::ExitCode {
    use clap::Parser as _;
    let cli = Cli::parse();
    // A server's log is its record of requests; commands only warn.
    let level = match cli.command {
        Command::Serve(_) => "info",
        _ => "warn",
    };
    init_logging_at(cli.log_format, level);
    match cli.run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // `mdmhub ... | head`: the reader left; that is not an error.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            // One line: the error and its causes.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Sets up logging to stderr (`RUST_LOG` filters; default `warn`).
pub fn init_logging(format: LogFormat) {
    init_logging_at(format, "warn");
}

/// Sets up logging to stderr (`RUST_LOG` filters; default `level`).
pub fn init_logging_at(format: LogFormat, level: &str) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| level.into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
