//! The data of one call's `Store`: a locked-down WASI context, a wasi-http
//! that refuses every request, the memory limiter, and the account the call
//! runs for. Implements the host side of the `http` and `log` imports.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use super::bindings::mdmhub::connector::{http, log, types};
use crate::account::AccountSession;
use crate::http::HttpClient;

/// Most log lines one call may write; the rest are counted and dropped.
const MAX_LOG_LINES: u32 = 1_000;
/// Longest log message kept.
const MAX_LOG_MESSAGE: usize = 4_096;

/// What a call runs for.
pub struct CallEnv {
    /// The connector's id (for logs).
    pub connector: Arc<str>,
    /// The account, or `None` for `describe` (which may not call `http`).
    pub session: Option<Arc<AccountSession>>,
    /// The shared HTTP client.
    pub http: HttpClient,
    /// When the call must end.
    pub deadline: Instant,
    /// Whether listing pages are read ahead (a list call; see
    /// [`crate::http::ahead`]).
    pub read_ahead: bool,
}

/// A store's data.
pub struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    http_ctx: WasiHttpCtx,
    hooks: DenyOutgoingHttp,
    pub(crate) limits: StoreLimits,
    pub(crate) env: CallEnv,
    /// When the guest last got control back from the host; the CPU budget
    /// counts from here, so waiting inside `http` never uses it up.
    pub(crate) guest_since: Instant,
    logs: u32,
}

impl CallState {
    /// State for one call with a memory cap of `memory_bytes`.
    pub fn new(env: CallEnv, memory_bytes: usize) -> Self {
        // No args, env, preopened dirs, network or name lookups: clocks and
        // random only. Stdio goes nowhere.
        let wasi = WasiCtxBuilder::new()
            .allow_ip_name_lookup(false)
            .allow_tcp(false)
            .allow_udp(false)
            .build();
        let limits = StoreLimitsBuilder::new()
            .memory_size(memory_bytes)
            .table_elements(200_000)
            .instances(64)
            .tables(64)
            .memories(16)
            .trap_on_grow_failure(true)
            .build();
        Self {
            wasi,
            table: ResourceTable::new(),
            http_ctx: WasiHttpCtx::new(),
            hooks: DenyOutgoingHttp,
            limits,
            env,
            guest_since: Instant::now(),
            logs: 0,
        }
    }

    /// Readies a kept instance's state for its next call: a new deadline,
    /// a fresh CPU budget and log quota.
    pub(crate) fn begin_call(&mut self, deadline: Instant) {
        self.env.deadline = deadline;
        self.env.read_ahead = false;
        self.guest_since = Instant::now();
        self.logs = 0;
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for CallState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http_ctx,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// `wasi:http/outgoing-handler` exists (toolchains import it) but refuses
/// everything: connectors reach vendors only through `mdmhub:connector/http`.
struct DenyOutgoingHttp;

type HttpResponseFuture = Box<
    dyn Future<
            Output = wasmtime_wasi_http::Result<(
                ::http::Response<WasiBody>,
                Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
            )>,
        > + Send,
>;

impl WasiHttpHooks for DenyOutgoingHttp {
    fn send_request(
        &mut self,
        _request: ::http::Request<WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> HttpResponseFuture {
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}

impl types::Host for CallState {}

impl http::Host for CallState {
    async fn send(
        &mut self,
        req: http::Request,
        paging: Option<http::Paging>,
    ) -> Result<http::Response, http::HttpError> {
        let result = match &self.env.session {
            None => Err(http::HttpError::Denied("describe may not call http".into())),
            Some(session) => {
                let session = session.clone();
                let span = tracing::debug_span!("http", connector = %self.env.connector, account = %session.id, method = ?req.method);
                let _enter = span.enter();
                let url = req.url.clone();
                let r = self
                    .env
                    .http
                    .send(
                        &session,
                        req,
                        paging,
                        self.env.deadline,
                        self.env.read_ahead,
                    )
                    .await;
                if let Err(e) = &r {
                    tracing::debug!(%url, error = ?e, "request failed");
                }
                r
            }
        };
        self.guest_since = Instant::now();
        result
    }
}

impl log::Host for CallState {
    async fn write(&mut self, level: log::Level, message: String, fields: Vec<log::Field>) {
        self.logs += 1;
        if self.logs > MAX_LOG_LINES {
            if self.logs == MAX_LOG_LINES + 1 {
                tracing::warn!(connector = %self.env.connector, "connector log limit reached; dropping further lines of this call");
            }
            return;
        }
        let mut message = message;
        message.truncate(message.floor_char_boundary(MAX_LOG_MESSAGE));
        let fields: String = fields
            .iter()
            .map(|f| format!(" {}={:?}", f.key, f.value))
            .collect();
        let account = self
            .env
            .session
            .as_ref()
            .map(|s| s.id.as_str())
            .unwrap_or("-");
        let connector = &*self.env.connector;
        match level {
            log::Level::Trace => tracing::trace!(connector, account, "{message}{fields}"),
            log::Level::Debug => tracing::debug!(connector, account, "{message}{fields}"),
            log::Level::Info => tracing::info!(connector, account, "{message}{fields}"),
            log::Level::Warn => tracing::warn!(connector, account, "{message}{fields}"),
            log::Level::Error => tracing::error!(connector, account, "{message}{fields}"),
        }
        self.guest_since = Instant::now();
    }
}
