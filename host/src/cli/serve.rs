//! `mdmhub serve`: the HTTP API and the scheduler in one process, until
//! SIGINT or SIGTERM (a second signal exits at once).

use std::io::Write;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use tokio::net::TcpListener;

use super::Env;
use crate::api::{self, ServeOptions};
use crate::sync::background::Background;
use crate::sync::{SyncOptions, Syncer};
use crate::webhooks::deliver::DeliveryOptions;

/// `mdmhub serve` options.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "MDMHUB_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Do not sync accounts on their schedules in this process (another
    /// replica does).
    #[arg(long)]
    pub no_schedule: bool,
    /// Scheduled accounts synced at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Seconds shutdown waits for in-flight requests and running syncs
    /// before interrupting them (interrupted syncs resume later).
    #[arg(long, default_value_t = 60)]
    pub shutdown_timeout: u64,
    /// Let API callers set account endpoints (which may reach private
    /// addresses); for simulators and on-prem vendors behind a trusted API.
    #[arg(long)]
    pub allow_api_endpoints: bool,
    /// Let webhook subscriptions use plain `http://` URLs and loopback or
    /// private addresses (receivers inside your network, tests, the demo).
    #[arg(long)]
    pub allow_private_webhooks: bool,
    /// Do not deliver webhooks from this process (another replica does).
    #[arg(long)]
    pub no_webhooks: bool,
    /// MiB of records kept ready to list in memory, checked against the
    /// database on every page, and as much again of account lists kept
    /// between syncs (0 turns both off).
    #[arg(long, default_value_t = crate::api::DEFAULT_LIST_CACHE_MIB)]
    pub list_cache_mib: u64,
}

impl ServeArgs {
    /// Serves until a signal, then shuts down gracefully.
    pub async fn run(self, env: &Env, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
        let accounts = env.accounts().await?;
        for r in &accounts.registry.rejected {
            tracing::warn!(source = %r.source, reason = %r.reason, "connector rejected");
        }
        let listener = TcpListener::bind(&self.listen)
            .await
            .with_context(|| format!("listening on {}", self.listen))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        tracing::info!(%addr, connectors = accounts.registry.connectors.len(), "serving the API");
        writeln!(
            out,
            "Serving the mdmhub API on http://{addr} (Ctrl-C stops)"
        )?;
        out.flush()?;
        let options = ServeOptions {
            schedule: !self.no_schedule,
            concurrency: self.concurrency,
            grace: Duration::from_secs(self.shutdown_timeout),
            api_endpoints: self.allow_api_endpoints,
            deliver_webhooks: !self.no_webhooks,
            webhooks: DeliveryOptions {
                allow_private: self.allow_private_webhooks,
                ..DeliveryOptions::default()
            },
            list_cache_bytes: self.list_cache_mib << 20,
            ..ServeOptions::default()
        };
        let background = Background::new().context("starting the sync runtime")?;
        let syncer = Syncer::new(accounts, SyncOptions::default()).in_background(background);
        api::serve(listener, syncer, options, stop_signal())
            .await
            .context("serving the API")
    }
}

/// Resolves on the first SIGINT or SIGTERM; a second one exits at once.
async fn stop_signal() {
    any_signal().await;
    tracing::info!("stop signal received; send another to exit at once");
    tokio::spawn(async {
        any_signal().await;
        eprintln!("second stop signal: exiting now; interrupted syncs resume later");
        std::process::exit(130);
    });
}

async fn any_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGTERM; only Ctrl-C stops the server");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
