//! Compiles the built-in connectors (`connectors/*`) to components and
//! writes `builtins.rs`, which embeds them.

use std::path::Path;

/// Built-in connector crates, by package name. Each is a workspace member
/// under `connectors/`.
const BUILTINS: &[&str] = &["mdmhub-connector-iru", "mdmhub-connector-intune"];

fn main() {
    let root = mdmhub_build_support::workspace_root();
    for p in BUILTINS {
        let dir = p.trim_start_matches("mdmhub-connector-");
        mdmhub_build_support::watch(&root.join("connectors").join(dir));
    }
    let wasm = if BUILTINS.is_empty() {
        Vec::new()
    } else {
        mdmhub_build_support::build_guests(BUILTINS)
    };
    let entries: Vec<String> = BUILTINS
        .iter()
        .zip(&wasm)
        .map(|(name, path)| {
            format!(
                "({:?}, include_bytes!({:?}) as &[u8])",
                name.trim_start_matches("mdmhub-connector-"),
                path.display().to_string()
            )
        })
        .collect();
    let out = Path::new(&std::env::var("OUT_DIR").unwrap()).join("builtins.rs");
    std::fs::write(out, format!("&[{}]", entries.join(", "))).unwrap();
    println!("cargo:rerun-if-changed=build.rs");
    // `sqlx::migrate!` embeds the migrations but does not ask for a rebuild
    // when one is added.
    println!("cargo:rerun-if-changed=migrations");
}
