//! mdmhub host: loads sandboxed WebAssembly connectors ([`runtime`]), gives
//! them a capability-limited HTTP client ([`http`]) bound to one account
//! ([`account`]), keeps a synced inventory ([`store`], [`sync`]) of saved
//! accounts ([`accounts`], secrets sealed by [`secrets`]), and offers all of
//! it through the `mdmhub` CLI ([`cli`]) and the HTTP API ([`api`]).

pub mod account;
pub mod accounts;
pub mod api;
pub mod builtin;
pub mod cli;
pub mod contract;
pub mod holder;
pub mod http;
pub mod metrics;
pub mod model;
pub mod pager;
pub mod runtime;
pub mod secrets;
pub mod store;
pub mod sync;
pub mod template;
pub mod webhooks;

/// mimalloc for every program linking mdmhub: a sync allocates and frees
/// millions of short-lived strings from several threads, where glibc's
/// allocator spent about a tenth of the CPU (profiled on a 30,000-device sync).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
