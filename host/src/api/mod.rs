//! The HTTP API (`mdmhub serve`): read endpoints over the synced inventory
//! under `/v1`, scoped to the workspace of the caller's bearer key, manual
//! syncs, device actions, adding accounts, webhook subscriptions, health
//! checks, metrics and the OpenAPI document. One module per concern: `auth` (keys), `problem` (RFC
//! 9457 errors), `params` (query, path and body extractors), `inventory`,
//! `accounts`, `runs`, `connectors`, `actions` (device actions),
//! `idempotency` (`Idempotency-Key`), `audit` (the action log), `live`
//! (sessions and vendor errors of calls made while the caller waits),
//! `webhooks` (subscriptions and their deliveries), `health`, `metrics`, `openapi`, `schema` (answer shapes for the
//! document), `trace` (request logs). Handlers call a connector only in
//! `live` reads, actions and account checks; syncs go through `sync`.

mod accounts;
mod actions;
mod audit;
mod auth;
mod connectors;
mod health;
mod idempotency;
mod inventory;
mod live;
mod metrics;
pub mod openapi;
mod params;
pub mod problem;
mod runs;
mod schema;
mod trace;
mod webhooks;

use std::future::{Future, IntoFuture};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::{Extension, Router, middleware};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout_at};
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;

use crate::accounts::Accounts;
use crate::runtime::Registry;
use crate::store::Store;
use crate::store::accounts::AccountRow;
use crate::store::runs::RunRow;
use crate::sync::{SyncError, Syncer, schedule};
use crate::webhooks::deliver::{DeliveryOptions, Dispatcher};
use problem::{Kind, Problem};

/// What handlers share: the syncer (with the store and connectors), the
/// shutdown signal, and the syncs started through the API.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

struct Shared {
    syncer: Syncer,
    /// Whether API callers may set an account's endpoints (see
    /// [`ServeOptions::api_endpoints`]).
    api_endpoints: bool,
    /// Whether webhook URLs may be `http://` or private addresses.
    webhooks_private: bool,
    shutdown: CancellationToken,
    syncs: Mutex<JoinSet<()>>,
    sessions: live::Sessions,
}

/// The answer of a sync started in the background.
type SyncDone = oneshot::Receiver<Result<RunRow, SyncError>>;

impl AppState {
    /// State over `syncer`, stopped by `shutdown`, with `options`' rules
    /// for account endpoints and webhook URLs.
    pub fn new(syncer: Syncer, shutdown: CancellationToken, options: &ServeOptions) -> Self {
        Self(Arc::new(Shared {
            syncer,
            api_endpoints: options.api_endpoints,
            webhooks_private: options.webhooks.allow_private,
            shutdown,
            syncs: Mutex::new(JoinSet::new()),
            sessions: live::Sessions::default(),
        }))
    }

    fn api_endpoints(&self) -> bool {
        self.0.api_endpoints
    }

    fn webhooks_private(&self) -> bool {
        self.0.webhooks_private
    }

    fn store(&self) -> &Store {
        &self.0.syncer.accounts.store
    }

    fn accounts(&self) -> &Accounts {
        &self.0.syncer.accounts
    }

    fn sessions(&self) -> &live::Sessions {
        &self.0.sessions
    }

    fn registry(&self) -> &Registry {
        &self.0.syncer.accounts.registry
    }

    /// Syncs `account` in the background; its result arrives on the
    /// receiver. Refused once shutdown has begun.
    fn start_sync(&self, account: AccountRow) -> Result<SyncDone, Problem> {
        if self.0.shutdown.is_cancelled() {
            return Err(Problem::new(
                Kind::ShuttingDown,
                "the server is shutting down; start the sync on another replica or after restart",
            ));
        }
        let (tx, rx) = oneshot::channel();
        let syncer = self.0.syncer.clone();
        let mut syncs = self.0.syncs.lock().expect("never poisoned");
        // Forget finished syncs so the set holds only running ones.
        while syncs.try_join_next().is_some() {}
        syncs.spawn(async move {
            let result = syncer.sync(&account, "api", None).await;
            match &result {
                Ok(run) => {
                    tracing::info!(account = %account.name, run = %run.id, created = run.counts.created, updated = run.counts.updated, removed = run.counts.removed, "sync finished")
                }
                Err(e) => tracing::warn!(account = %account.name, error = %e, "sync failed"),
            }
            let _ = tx.send(result);
        });
        Ok(rx)
    }

    /// Waits until `deadline` for the API's syncs, then interrupts the rest
    /// (a sync resumes from its last checkpoint next time).
    async fn finish_syncs(&self, deadline: Instant) {
        let mut syncs = std::mem::take(&mut *self.0.syncs.lock().expect("never poisoned"));
        let drained = timeout_at(deadline, async {
            while syncs.join_next().await.is_some() {}
        });
        if drained.await.is_err() {
            tracing::warn!(
                running = syncs.len(),
                "syncs still running at the shutdown deadline; interrupting them (they resume from their last checkpoint)"
            );
            syncs.shutdown().await;
        }
    }
}

/// Every route, with its OpenAPI operation.
fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(health::routes())
        .merge(openapi::routes())
        .merge(inventory::routes())
        .merge(accounts::routes())
        .merge(runs::routes())
        .merge(connectors::routes())
        .merge(actions::routes())
        .merge(audit::routes())
        .merge(metrics::routes())
        .merge(webhooks::routes())
}

/// The OpenAPI document of every route this server serves.
pub fn document() -> utoipa::openapi::OpenApi {
    api().into_openapi()
}

/// The application: every route, problem answers for unknown routes and
/// methods, the document at `/openapi.json`, and request logs.
pub fn router(state: AppState) -> Router {
    let (router, doc) = api().split_for_parts();
    let rendered = doc
        .to_pretty_json()
        .expect("the OpenAPI document serializes");
    router
        .fallback(problem::no_route)
        .method_not_allowed_fallback(problem::wrong_method)
        .layer(Extension(openapi::Document(Arc::new(rendered))))
        .layer(middleware::from_fn(metrics::track))
        .layer(middleware::from_fn(trace::requests))
        .with_state(state)
}

/// How `serve` runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Also sync accounts on their schedules in this process.
    pub schedule: bool,
    /// Scheduled accounts synced at once.
    pub concurrency: usize,
    /// How often the scheduler looks for due accounts.
    pub tick: Duration,
    /// How long shutdown waits for in-flight requests and running syncs
    /// before it interrupts them.
    pub grace: Duration,
    /// Whether `POST /v1/accounts` may set `endpoints`. An endpoint may
    /// reach loopback and private addresses, so by default only the
    /// operator's CLI sets them: an API key must not aim the host at
    /// internal services.
    pub api_endpoints: bool,
    /// Deliver webhooks from the outbox in this process.
    pub deliver_webhooks: bool,
    /// How webhooks are delivered (and which URLs subscriptions may use).
    pub webhooks: DeliveryOptions,
    /// Bytes of records kept ready to list in memory (see
    /// [`crate::store::Store::cache_lists`]); 0 reads every page's
    /// records from the database.
    pub list_cache_bytes: u64,
}

/// MiB of records kept ready to list by default, and as much again of
/// account lists: enough for about 150,000 devices with their users.
pub const DEFAULT_LIST_CACHE_MIB: u64 = 512;

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            schedule: true,
            concurrency: 4,
            tick: Duration::from_secs(30),
            grace: Duration::from_secs(60),
            api_endpoints: false,
            deliver_webhooks: true,
            webhooks: DeliveryOptions::default(),
            list_cache_bytes: DEFAULT_LIST_CACHE_MIB << 20,
        }
    }
}

/// Serves the API on `listener` (and runs the scheduler) until `signal`
/// resolves; then stops accepting, lets in-flight requests and syncs finish
/// within the grace period, and returns.
pub async fn serve(
    listener: TcpListener,
    syncer: Syncer,
    options: ServeOptions,
    signal: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let shutdown = CancellationToken::new();
    let store = &syncer.accounts.store;
    store.cache_lists(options.list_cache_bytes);
    if let Err(e) = store.warm_lists(None).await {
        tracing::warn!(error = %e, "reading account lists into memory");
    }
    let state = AppState::new(syncer.clone(), shutdown.clone(), &options);
    let dispatcher = if options.deliver_webhooks {
        let accounts = &syncer.accounts;
        let d = Dispatcher::new(
            accounts.store.clone(),
            accounts.key.clone(),
            options.webhooks,
        )
        .map_err(std::io::Error::other)?;
        Some(tokio::spawn(d.run(shutdown.clone())))
    } else {
        None
    };
    let scheduler = options.schedule.then(|| {
        tokio::spawn(schedule::run_forever(
            syncer,
            options.concurrency,
            options.tick,
            shutdown.clone().cancelled_owned(),
        ))
    });
    let http = axum::serve(listener, router(state.clone()))
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .into_future();
    let mut http = tokio::spawn(http);
    tokio::select! {
        _ = signal => {}
        // The server stopped by itself: an I/O error to report.
        done = &mut http => {
            shutdown.cancel();
            return done.unwrap_or_else(|e| Err(std::io::Error::other(e)));
        }
    }
    tracing::info!("shutting down: no new connections; finishing requests and syncs");
    shutdown.cancel();
    let deadline = Instant::now() + options.grace;
    match timeout_at(deadline, &mut http).await {
        Ok(done) => done.unwrap_or_else(|e| Err(std::io::Error::other(e)))?,
        Err(_) => {
            tracing::warn!("requests still in flight at the shutdown deadline; closing them");
            http.abort();
        }
    }
    if let Some(mut scheduler) = scheduler
        && timeout_at(deadline, &mut scheduler).await.is_err()
    {
        tracing::warn!(
            "scheduled syncs still running at the shutdown deadline; interrupting them (they resume from their last checkpoint)"
        );
        scheduler.abort();
    }
    state.finish_syncs(deadline).await;
    if let Some(mut dispatcher) = dispatcher
        && timeout_at(deadline, &mut dispatcher).await.is_err()
    {
        tracing::warn!(
            "webhook deliveries still in flight at the shutdown deadline; they are retried after restart"
        );
        dispatcher.abort();
    }
    tracing::info!("stopped");
    Ok(())
}
