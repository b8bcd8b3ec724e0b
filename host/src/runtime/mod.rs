//! The sandboxed runtime: one engine ([`engine`]), compiled components cached
//! on disk ([`cache`]), connectors loaded and checked ([`loader`],
//! [`validate`]), and calls, each in a fresh `Store` ([`state`]) with a
//! memory cap, a CPU budget and a wall-clock deadline.

pub mod bindings;
pub mod cache;
pub mod engine;
pub mod loader;
pub mod state;
pub mod validate;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Engine, Store, Trap, UpdateDeadline};

use crate::account::{AccountSession, AccountSpec, ConfigError};
use crate::contract::*;
use crate::http::{HttpClient, HttpLimits};
pub use loader::{Registry, Rejected, Source};
use state::{CallEnv, CallState};

/// How the runtime is sized and limited.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Engine pool sizing.
    pub engine: engine::EngineLimits,
    /// Memory cap of one call.
    pub memory_bytes: usize,
    /// Guest CPU time allowed between host calls.
    pub cpu_budget: Duration,
    /// Wall-clock limit of one call, host waits included.
    pub call_timeout: Duration,
    /// Where compiled artifacts are cached (`None`: compile every load).
    pub cache_dir: Option<PathBuf>,
    /// HTTP limits.
    pub http: HttpLimits,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            engine: engine::EngineLimits::default(),
            memory_bytes: 256 << 20,
            cpu_budget: Duration::from_secs(10),
            call_timeout: Duration::from_secs(300),
            cache_dir: None,
            http: HttpLimits::default(),
        }
    }
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The connector answered with an error.
    #[error("{}", describe_connector_error(.0))]
    Connector(ConnectorError),
    /// The guest trapped (a bug, or a limit it hit); only this call failed.
    #[error("connector trapped: {0}")]
    Trap(String),
    /// The call ran past its wall-clock limit.
    #[error("call exceeded its time limit of {0:?}")]
    Timeout(Duration),
    /// The connector's answer breaks the contract.
    #[error("connector returned an invalid result: {0}")]
    InvalidOutput(String),
}

/// A readable line for a connector error, with its class first.
pub fn describe_connector_error(e: &ConnectorError) -> String {
    match e {
        ConnectorError::Unauthorized(m) => format!("unauthorized: {m}"),
        ConnectorError::Forbidden(m) => format!("forbidden: {m}"),
        ConnectorError::NotFound(m) => format!("not found: {m}"),
        ConnectorError::RateLimited(ms) => format!("rate limited: retry after {ms} ms"),
        ConnectorError::ConnectionFailed(m) => format!("connection failed: {m}"),
        ConnectorError::TlsFailure(m) => format!("TLS error: {m}"),
        ConnectorError::ServerError(s) => format!("server error {}: {}", s.status, s.message),
        ConnectorError::InvalidConfig(m) => format!("invalid config: {m}"),
        ConnectorError::Unsupported(m) => format!("unsupported: {m}"),
        ConnectorError::InvalidVendorData(m) => format!("invalid vendor data: {m}"),
        ConnectorError::Rejected(s) => {
            format!("rejected by the vendor ({}): {}", s.status, s.message)
        }
    }
}

struct Inner {
    engine: Engine,
    linker: Linker<CallState>,
    cache: cache::ArtifactCache,
    config: RuntimeConfig,
    http: HttpClient,
}

/// The runtime; cheap to clone.
#[derive(Clone)]
pub struct Runtime(Arc<Inner>);

impl Runtime {
    /// Builds the engine, the linker (WASI p2 locked down, wasi-http denied,
    /// the contract's imports) and the HTTP client.
    pub fn new(config: RuntimeConfig) -> anyhow::Result<Self> {
        let engine = engine::build(config.engine)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        bindings::Connector::add_to_linker::<_, HasSelf<CallState>>(&mut linker, |s| s)?;
        let cache = cache::ArtifactCache::new(&engine, config.cache_dir.clone());
        let http = HttpClient::new(config.http);
        Ok(Self(Arc::new(Inner {
            engine,
            linker,
            cache,
            config,
            http,
        })))
    }

    /// Binds an account to a connector (validating its config).
    pub fn session(
        &self,
        connector: &Connector,
        spec: AccountSpec,
    ) -> Result<Arc<AccountSession>, ConfigError> {
        let session = AccountSession::new(&connector.info, spec)?;
        self.0.http.register(&session);
        Ok(session)
    }

    /// The shared HTTP client.
    pub fn http(&self) -> &HttpClient {
        &self.0.http
    }
}

/// A loaded connector, ready to call.
pub struct Connector {
    /// What `describe()` said (validated).
    pub info: ConnectorInfo,
    /// Where it came from.
    pub source: Source,
    /// sha256 of the component.
    pub sha256: String,
    pre: bindings::ConnectorPre<CallState>,
    rt: Runtime,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("id", &self.info.id)
            .field("source", &self.source)
            .finish()
    }
}

impl Connector {
    /// Runs `describe()`.
    pub async fn describe(&self) -> Result<ConnectorInfo, CallError> {
        describe(&self.rt, &self.pre, &self.info.id).await
    }

    /// Runs `check()`: proves the account's credentials and config.
    pub async fn check(&self, session: &Arc<AccountSession>) -> Result<(), CallError> {
        let (mut store, inst, deadline) = self.instantiate(Some(session.clone())).await?;
        let ctx = session.context();
        let done = finish(deadline, self.timeout(), inst.call_check(&mut store, &ctx)).await;
        self.counted("check", done.and_then(|r| r.map_err(CallError::Connector)))
    }

    /// Lists one page of `kind` from `cursor`, in a fresh instance.
    pub async fn list(
        &self,
        session: &Arc<AccountSession>,
        kind: ResourceKind,
        cursor: Option<&str>,
        options: &ListOptions,
    ) -> Result<Page, CallError> {
        self.list_in(None, session, kind, cursor, options).await
    }

    /// Lists one page, in an instance of `warm` when given.
    pub async fn list_in(
        &self,
        warm: Option<&Warm>,
        session: &Arc<AccountSession>,
        kind: ResourceKind,
        cursor: Option<&str>,
        options: &ListOptions,
    ) -> Result<Page, CallError> {
        let mut k = self.take(warm, session).await?;
        k.store.data_mut().env.read_ahead = true;
        let ctx = session.context();
        let page = finish(
            k.deadline,
            self.timeout(),
            k.inst.call_list(&mut k.store, &ctx, kind, cursor, options),
        )
        .await;
        self.give_back(warm, k, page.is_ok());
        let page = self.counted("list", page.and_then(|r| r.map_err(CallError::Connector)))?;
        let mut page = validate::page(page, kind)?;
        page.records.iter_mut().for_each(|r| session.link(r));
        Ok(page)
    }

    /// Reads one object of `kind`, in a fresh instance.
    pub async fn get(
        &self,
        session: &Arc<AccountSession>,
        kind: ResourceKind,
        id: &str,
    ) -> Result<Entity, CallError> {
        self.get_in(None, session, kind, id).await
    }

    /// Reads one object, in an instance of `warm` when given.
    pub async fn get_in(
        &self,
        warm: Option<&Warm>,
        session: &Arc<AccountSession>,
        kind: ResourceKind,
        id: &str,
    ) -> Result<Entity, CallError> {
        let mut k = self.take(warm, session).await?;
        let ctx = session.context();
        let entity = finish(
            k.deadline,
            self.timeout(),
            k.inst.call_get(&mut k.store, &ctx, kind, id),
        )
        .await;
        self.give_back(warm, k, entity.is_ok());
        let entity = self.counted("get", entity.and_then(|r| r.map_err(CallError::Connector)))?;
        let mut entity = validate::entity(entity, kind)?;
        session.link(&mut entity);
        Ok(entity)
    }

    /// Runs an action on a device.
    pub async fn action(
        &self,
        session: &Arc<AccountSession>,
        device_id: &str,
        request: &ActionRequest,
    ) -> Result<ActionOutcome, CallError> {
        let (mut store, inst, deadline) = self.instantiate(Some(session.clone())).await?;
        let ctx = session.context();
        let done = finish(
            deadline,
            self.timeout(),
            inst.call_action(&mut store, &ctx, device_id, request),
        )
        .await;
        self.counted("action", done.and_then(|r| r.map_err(CallError::Connector)))
    }

    /// Counts a finished call by its outcome (metrics only).
    fn counted<T>(&self, op: &'static str, r: Result<T, CallError>) -> Result<T, CallError> {
        crate::metrics::connector_call(&self.info.id, op, r.as_ref().err());
        r
    }

    fn timeout(&self) -> Duration {
        self.rt.0.config.call_timeout
    }

    async fn instantiate(
        &self,
        session: Option<Arc<AccountSession>>,
    ) -> Result<(Store<CallState>, bindings::Connector, Instant), CallError> {
        instantiate(&self.rt, &self.pre, &self.info.id, session).await
    }

    /// An instance for one call: an idle one of `warm`, readied for the
    /// call, or a fresh one.
    async fn take(
        &self,
        warm: Option<&Warm>,
        session: &Arc<AccountSession>,
    ) -> Result<Kept, CallError> {
        if let Some(w) = warm {
            assert!(
                Arc::ptr_eq(&w.session, session),
                "a warm pool serves only its own account"
            );
            let idle = w.idle.lock().expect("warm pool lock").pop();
            if let Some(mut k) = idle {
                k.deadline = Instant::now() + self.timeout();
                k.store.data_mut().begin_call(k.deadline);
                k.store.set_epoch_deadline(1);
                k.calls += 1;
                return Ok(k);
            }
        }
        let (store, inst, deadline) = self.instantiate(Some(session.clone())).await?;
        Ok(Kept {
            store,
            inst,
            deadline,
            calls: 1,
        })
    }

    /// Keeps a finished call's instance in `warm` for the next call, unless
    /// the call trapped or timed out (its state is then unknown), the
    /// instance has served its share of calls, or enough are idle.
    fn give_back(&self, warm: Option<&Warm>, k: Kept, healthy: bool) {
        let Some(w) = warm else { return };
        if !healthy || k.calls >= MAX_CALLS_PER_INSTANCE {
            return;
        }
        let mut idle = w.idle.lock().expect("warm pool lock");
        if idle.len() < w.max_idle {
            idle.push(k);
        }
    }
}

/// Calls one instance serves before it is replaced by a fresh one: bounds
/// what a connector's leaks or caches can grow to.
const MAX_CALLS_PER_INSTANCE: u32 = 1_000;

/// An instance with its store, between or during calls.
struct Kept {
    store: Store<CallState>,
    inst: bindings::Connector,
    deadline: Instant,
    calls: u32,
}

/// Instances of one connector kept for one account's many like calls within
/// one job (a sync run's page and detail reads), so that each call does not
/// pay for instantiating and tearing down an instance. Each call still has
/// its own deadline, CPU budget and log quota; the memory cap is the
/// instance's. Nothing crosses accounts: a pool belongs to one session, and
/// it is dropped with the job.
pub struct Warm {
    session: Arc<AccountSession>,
    max_idle: usize,
    idle: std::sync::Mutex<Vec<Kept>>,
}

impl Warm {
    /// A pool for `session` keeping at most `max_idle` idle instances.
    pub fn new(session: Arc<AccountSession>, max_idle: usize) -> Self {
        Self {
            session,
            max_idle,
            idle: std::sync::Mutex::new(Vec::new()),
        }
    }
}

/// Runs `describe()` on a component that is not (yet) a [`Connector`].
async fn describe(
    rt: &Runtime,
    pre: &bindings::ConnectorPre<CallState>,
    label: &str,
) -> Result<ConnectorInfo, CallError> {
    let (mut store, inst, deadline) = instantiate(rt, pre, label, None).await?;
    finish(
        deadline,
        rt.0.config.call_timeout,
        inst.call_describe(&mut store),
    )
    .await
}

/// A fresh instance in a fresh store: nothing leaks between calls.
async fn instantiate(
    rt: &Runtime,
    pre: &bindings::ConnectorPre<CallState>,
    connector: &str,
    session: Option<Arc<AccountSession>>,
) -> Result<(Store<CallState>, bindings::Connector, Instant), CallError> {
    let rt = &rt.0;
    let deadline = Instant::now() + rt.config.call_timeout;
    let env = CallEnv {
        connector: connector.into(),
        session,
        http: rt.http.clone(),
        deadline,
        read_ahead: false,
    };
    let mut store = Store::new(&rt.engine, CallState::new(env, rt.config.memory_bytes));
    store.limiter(|s| &mut s.limits);
    let budget = rt.config.cpu_budget;
    // Checked every tick while the guest runs: yield so the wall-clock
    // timeout and other tasks get a turn, and trap once the guest has run
    // `budget` since it last returned from a host call.
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |ctx| {
        if ctx.data().guest_since.elapsed() > budget {
            Ok(UpdateDeadline::Interrupt)
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });
    let inst = pre.instantiate_async(&mut store).await.map_err(trap)?;
    store.data_mut().guest_since = Instant::now();
    Ok((store, inst, deadline))
}

/// Awaits a guest call within the deadline and turns traps into errors.
async fn finish<T>(
    deadline: Instant,
    limit: Duration,
    fut: impl Future<Output = wasmtime::Result<T>>,
) -> Result<T, CallError> {
    match tokio::time::timeout_at(deadline.into(), fut).await {
        Err(_) => Err(CallError::Timeout(limit)),
        Ok(Err(e)) => Err(trap(e)),
        Ok(Ok(v)) => Ok(v),
    }
}

fn trap(e: wasmtime::Error) -> CallError {
    let what = match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => {
            "used its CPU budget without returning to the host (an endless loop?)".to_string()
        }
        Some(Trap::StackOverflow) => "stack overflow (unbounded recursion?)".to_string(),
        Some(Trap::UnreachableCodeReached) => "panicked (wasm `unreachable` executed)".to_string(),
        Some(other) => other.to_string(),
        None => {
            let text = format!("{e:?}");
            if text.contains("forcing trap when growing memory") {
                "exceeded its memory limit".to_string()
            } else {
                e.to_string()
            }
        }
    };
    CallError::Trap(what)
}
