//! `mdmhub-sim`: vendor API simulators for tests, benchmarks and demos.
//!
//! `mdmhub-sim iru --devices 1000 --port 8001 --seed 1` serves a synthetic
//! Iru tenant on loopback and prints its base URL once it is ready;
//! `mdmhub-sim intune --devices 1000 --port 8002` does the same for
//! Microsoft Intune (the token endpoint and Graph on one origin).

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use mdmhub_tests::sim::control::{BudgetSpec, Faults};
use mdmhub_tests::sim::intune::{IntuneOptions, IntuneSim, Throttle};
use mdmhub_tests::sim::iru::{IruOptions, IruSim};
use mdmhub_tests::sim::server::Running;

#[derive(Parser)]
#[command(name = "mdmhub-sim", about = "Vendor API simulators for mdmhub")]
struct Cli {
    #[command(subcommand)]
    vendor: Vendor,
}

#[derive(Subcommand)]
enum Vendor {
    /// Iru (formerly Kandji) Endpoint Management API v1.
    Iru(IruArgs),
    /// Microsoft Intune through Microsoft Graph (v1.0 and beta).
    Intune(IntuneArgs),
}

/// Fault injection shared by every simulator.
#[derive(Args)]
struct FaultArgs {
    /// Answer the first N requests with 429.
    #[arg(long, default_value_t = 0)]
    throttle_burst: u32,
    /// `Retry-After` seconds on those 429s (none if unset).
    #[arg(long)]
    throttle_retry_after: Option<u32>,
    /// Answer the next N requests (after any 429 burst) with a 5xx.
    #[arg(long, default_value_t = 0)]
    error_burst: u32,
    /// Status of those errors.
    #[arg(long, default_value_t = 503)]
    error_status: u16,
    /// Delay every response by this many milliseconds.
    #[arg(long, default_value_t = 0)]
    slow_ms: u64,
    /// The device page at this offset answers malformed JSON.
    #[arg(long)]
    malformed_page: Option<u64>,
    /// Delete the first device when the page at this offset is served.
    #[arg(long)]
    delete_during_walk_at: Option<u64>,
}

impl FaultArgs {
    fn faults(&self) -> Faults {
        Faults {
            throttle_burst: self.throttle_burst,
            throttle_retry_after: self.throttle_retry_after,
            error_burst: self.error_burst,
            error_status: Some(self.error_status),
            slow_ms: self.slow_ms,
            malformed_page: self.malformed_page,
            delete_during_walk_at: self.delete_during_walk_at,
        }
    }
}

#[derive(Args)]
struct IruArgs {
    /// Devices in the synthetic fleet.
    #[arg(long, default_value_t = 500)]
    devices: usize,
    /// Port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 8001)]
    port: u16,
    /// Seed of the fleet.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The accepted API token.
    #[arg(long, default_value = "test-token")]
    token: String,
    /// A valid token that lacks the device permissions.
    #[arg(long, default_value = "limited-token")]
    limited_token: String,
    /// Status for a missing permission (403, or 401 as some tenants answer).
    #[arg(long, default_value_t = 403)]
    missing_permission_status: u16,
    /// Requests allowed per budget window (Iru: 10,000 per hour).
    #[arg(long, default_value_t = 10_000)]
    budget: u32,
    /// Length of the budget window in seconds.
    #[arg(long, default_value_t = 3600)]
    budget_window_secs: u64,
    /// Send no `Retry-After` when the budget is spent.
    #[arg(long)]
    budget_no_retry_after: bool,
    #[command(flatten)]
    faults: FaultArgs,
}

#[derive(Args)]
struct IntuneArgs {
    /// Devices in the synthetic (mixed-platform) fleet.
    #[arg(long, default_value_t = 500)]
    devices: usize,
    /// Port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 8002)]
    port: u16,
    /// Seed of the fleet.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The app with every permission.
    #[arg(long, default_value = "test-client")]
    client_id: String,
    /// The secret of both apps.
    #[arg(long, default_value = "test-secret")]
    client_secret: String,
    /// A valid app that lacks the device permissions (403 on devices).
    #[arg(long, default_value = "limited-client")]
    limited_client_id: String,
    /// The tenant id or domain the token endpoint accepts (default: any).
    #[arg(long)]
    tenant: Option<String>,
    /// Access token lifetime in seconds.
    #[arg(long, default_value_t = 3599)]
    token_ttl: u64,
    /// Multiply Intune's request limits (4000/2000/400/200 per window).
    #[arg(long, default_value_t = 1.0)]
    throttle_scale: f64,
    /// No request limits at all.
    #[arg(long, conflicts_with = "throttle_scale")]
    no_throttle: bool,
    /// Length of the throttling window in seconds.
    #[arg(long, default_value_t = 20)]
    window_secs: u64,
    #[command(flatten)]
    faults: FaultArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::parse().vendor {
        Vendor::Iru(a) => iru(a).await,
        Vendor::Intune(a) => intune(a).await,
    }
}

async fn iru(a: IruArgs) -> ExitCode {
    let opts = IruOptions {
        devices: a.devices,
        seed: a.seed,
        token: a.token.clone(),
        limited_token: a.limited_token,
        missing_permission_status: a.missing_permission_status,
        budget: BudgetSpec {
            limit: a.budget,
            window: Duration::from_secs(a.budget_window_secs),
            retry_after: !a.budget_no_retry_after,
        },
        faults: a.faults.faults(),
    };
    let running = match IruSim::spawn(opts, a.port).await {
        Ok((_, running)) => running,
        Err(e) => return listen_failed(a.port, e),
    };
    let summary = format!("{} devices, token `{}`", a.devices, a.token);
    serve("iru", running, summary).await
}

async fn intune(a: IntuneArgs) -> ExitCode {
    let throttle = if a.no_throttle {
        Throttle::unlimited()
    } else {
        Throttle {
            window: Duration::from_secs(a.window_secs),
            ..Throttle::scaled(a.throttle_scale)
        }
    };
    let opts = IntuneOptions {
        devices: a.devices,
        seed: a.seed,
        client_id: a.client_id.clone(),
        client_secret: a.client_secret.clone(),
        limited_client_id: a.limited_client_id,
        tenant: a.tenant,
        token_ttl: Duration::from_secs(a.token_ttl),
        throttle,
        faults: a.faults.faults(),
    };
    let (sim, running) = match IntuneSim::spawn(opts, a.port).await {
        Ok(s) => s,
        Err(e) => return listen_failed(a.port, e),
    };
    let (base, tenant) = (&running.base_url, sim.tenant_id());
    let summary = format!(
        "{} devices, client `{}` / `{}`, tenant {tenant}; token at {base}/{tenant}/oauth2/v2.0/token, Graph at {base}/v1.0",
        a.devices, a.client_id, a.client_secret,
    );
    serve("intune", running, summary).await
}

fn listen_failed(port: u16, e: std::io::Error) -> ExitCode {
    eprintln!("error: cannot listen on 127.0.0.1:{port}: {e}");
    ExitCode::FAILURE
}

/// Prints the base URL (stdout) and a summary (stderr), then serves until
/// Ctrl-C.
async fn serve(vendor: &str, running: Running, summary: String) -> ExitCode {
    println!("{}", running.base_url);
    eprintln!(
        "mdmhub-sim {vendor}: {summary}; control at {}/_sim/actions|stats|faults",
        running.base_url
    );
    let _ = tokio::signal::ctrl_c().await;
    ExitCode::SUCCESS
}
