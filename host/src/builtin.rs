//! The built-in connectors, compiled from `connectors/*` by the build script
//! and embedded in the binary as `(name, component bytes)`.

/// Every built-in connector.
pub const BUILTINS: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/builtins.rs"));
