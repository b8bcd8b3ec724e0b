//! The `mdmhub` command line: global options and the subcommands. Each
//! subcommand lives in its own module and returns `anyhow::Result`; `main`
//! prints an error as one line and exits non-zero.

mod call;
mod connectors;
mod describe;
pub mod inputs;

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};

use crate::runtime::{Registry, Runtime, RuntimeConfig};

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
        })
    }

    /// Loads the built-in connectors and the connectors directory.
    pub async fn registry(&self) -> Registry {
        self.runtime
            .load_all(crate::builtin::BUILTINS, Some(&self.connectors_dir))
            .await
    }
}

/// Sets up logging to stderr (`RUST_LOG` filters; default `warn`).
pub fn init_logging(format: LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| "warn".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
