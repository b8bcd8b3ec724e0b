//! Builds guest crates of this workspace for `wasm32-wasip2` from a build
//! script, so a fresh clone needs only cargo and the rustup target.
//!
//! The nested cargo uses its own target directory (`target/wasm-guests`):
//! the outer build holds the lock on the main one.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The wasm target every guest is built for.
pub const TARGET: &str = "wasm32-wasip2";

/// The cargo profile guests are built with (see the workspace `Cargo.toml`).
pub const PROFILE: &str = "guest";

/// Builds `packages` (cargo package names) with [`PROFILE`] and returns the
/// path of each `.wasm`, in order. Panics with cargo's output on failure,
/// which is how a build script reports errors.
pub fn build_guests(packages: &[&str]) -> Vec<PathBuf> {
    let workspace = workspace_root();
    let target_dir = guest_target_dir(&workspace);
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&workspace)
        .args([
            "build",
            "--profile",
            PROFILE,
            "--target",
            TARGET,
            "--target-dir",
        ])
        .arg(&target_dir);
    for p in packages {
        cmd.args(["-p", p]);
    }
    // The outer build's settings must not leak in: clippy's wrapper, host
    // rustflags or a forced target would break the guest build.
    for var in [
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("could not run cargo to build guest components: {e}"));
    assert!(
        status.success(),
        "building guest components {packages:?} for {TARGET} failed (is the target installed? \
         `rustup target add {TARGET}`)"
    );
    for dir in ["sdk", "wit"] {
        println!("cargo:rerun-if-changed={}", workspace.join(dir).display());
    }
    packages
        .iter()
        .map(|p| {
            target_dir
                .join(TARGET)
                .join(PROFILE)
                .join(format!("{}.wasm", p.replace('-', "_")))
        })
        .collect()
}

/// Tells cargo to rebuild when a guest crate's sources change.
pub fn watch(crate_dir: &Path) {
    println!("cargo:rerun-if-changed={}", crate_dir.join("src").display());
    println!(
        "cargo:rerun-if-changed={}",
        crate_dir.join("Cargo.toml").display()
    );
}

/// The workspace root: the nearest ancestor of the calling crate whose
/// `Cargo.toml` declares `[workspace]`.
pub fn workspace_root() -> PathBuf {
    let manifest_dir =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("run from a build script"));
    manifest_dir
        .ancestors()
        .find(|d| {
            std::fs::read_to_string(d.join("Cargo.toml"))
                .map(|s| s.contains("[workspace]"))
                .unwrap_or(false)
        })
        .expect("no workspace root above the build script's crate")
        .to_path_buf()
}

fn guest_target_dir(workspace: &Path) -> PathBuf {
    let main = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    main.join("wasm-guests")
}
