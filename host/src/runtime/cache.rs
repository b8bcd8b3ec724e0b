//! Compiled components cached on disk, keyed by the file's sha256 and the
//! engine's compatibility hash, so a restart skips Cranelift.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// The artifact cache directory.
pub struct ArtifactCache {
    dir: Option<PathBuf>,
    engine_key: String,
}

impl ArtifactCache {
    /// A cache in `dir` (`None` compiles every time).
    pub fn new(engine: &Engine, dir: Option<PathBuf>) -> Self {
        let mut h = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        Self {
            dir,
            engine_key: format!("{:016x}", h.finish()),
        }
    }

    /// The hex sha256 of `bytes`.
    pub fn digest(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    /// The compiled component for `bytes` (of digest `sha`), from the cache
    /// or compiled now and stored.
    pub fn load(&self, engine: &Engine, bytes: &[u8], sha: &str) -> anyhow::Result<Component> {
        let Some(dir) = &self.dir else {
            return Ok(Component::from_binary(engine, bytes)?);
        };
        let path = dir.join(format!("{sha}-{}.cwasm", self.engine_key));
        if path.exists() {
            // SAFETY: the file was written by `store` below from wasmtime's own
            // `precompile_component` output, under a name that binds it to the
            // source's hash and this engine's configuration; the cache dir is
            // the operator's data dir, as trusted as the binary itself.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(c) => return Ok(c),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "discarding unusable cached artifact")
                }
            }
        }
        let compiled = engine.precompile_component(bytes)?;
        store(dir, &path, &compiled)
            .with_context(|| format!("writing the compiled artifact {}", path.display()))?;
        // SAFETY: as above; the bytes were produced by this engine just now.
        Ok(unsafe { Component::deserialize(engine, &compiled) }?)
    }
}

/// Writes atomically (temp file + rename) so a crash never leaves a torn artifact.
fn store(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
