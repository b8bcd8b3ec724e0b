//! mdmhub host: loads sandboxed WebAssembly connectors ([`runtime`]), gives
//! them a capability-limited HTTP client ([`http`]) bound to one account
//! ([`account`]), and offers both through the `mdmhub` CLI ([`cli`]).

pub mod account;
pub mod builtin;
pub mod cli;
pub mod contract;
pub mod http;
pub mod model;
pub mod pager;
pub mod runtime;
pub mod template;
