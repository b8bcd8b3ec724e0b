//! The one integration-test binary (each binary relinks wasmtime).

mod example;
mod http_rules;
mod iru;
mod loading;
mod sandbox;
mod server;
mod support;
