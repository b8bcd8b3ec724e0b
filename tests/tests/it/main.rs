//! The one integration-test binary (each binary relinks wasmtime).

mod api;
mod example;
mod http_rules;
mod intune;
mod intune_sim;
mod inventory;
mod iru;
mod loading;
mod sandbox;
mod server;
mod support;
