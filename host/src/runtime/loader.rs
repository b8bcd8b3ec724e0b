//! Loading connectors: the built-in ones and every `*.wasm` in the
//! connectors directory. A file that is not a component of the `connector`
//! world, or whose `describe()` fails or is absurd, is rejected with the
//! reason while the others load.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Connector, Runtime, bindings, validate};

/// Largest component file accepted (Python components are ~40 MB).
const MAX_COMPONENT_BYTES: usize = 256 << 20;

/// Where a connector came from.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Compiled into the binary.
    Builtin(String),
    /// A file in the connectors directory (or given on the command line).
    File(PathBuf),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Builtin(n) => write!(f, "built-in {n}"),
            Source::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// A file that could not be loaded, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rejected {
    /// The file (or built-in name).
    pub source: String,
    /// Why, in one sentence.
    pub reason: String,
}

/// The loaded connectors by id, and the rejected files.
#[derive(Debug, Default)]
pub struct Registry {
    /// Loaded connectors by id.
    pub connectors: BTreeMap<String, Arc<Connector>>,
    /// Files that did not load.
    pub rejected: Vec<Rejected>,
}

impl Registry {
    /// The connector with `id`.
    pub fn get(&self, id: &str) -> Option<&Arc<Connector>> {
        self.connectors.get(id)
    }
}

impl Runtime {
    /// Loads the built-ins, then every `*.wasm` in `dir` (sorted by name; a
    /// missing dir is empty). A file whose id is already loaded is rejected.
    pub async fn load_all(&self, builtins: &[(&str, &[u8])], dir: Option<&Path>) -> Registry {
        let mut registry = Registry::default();
        let mut candidates: Vec<(Source, Vec<u8>)> = builtins
            .iter()
            .map(|(n, b)| (Source::Builtin((*n).into()), b.to_vec()))
            .collect();
        if let Some(dir) = dir {
            match list_wasm(dir) {
                Ok(files) => {
                    for path in files {
                        match std::fs::read(&path) {
                            Ok(bytes) => candidates.push((Source::File(path), bytes)),
                            Err(e) => registry.rejected.push(Rejected {
                                source: path.display().to_string(),
                                reason: format!("cannot read: {e}"),
                            }),
                        }
                    }
                }
                Err(e) => registry.rejected.push(Rejected {
                    source: dir.display().to_string(),
                    reason: format!("cannot list the connectors directory: {e}"),
                }),
            }
        }
        for (source, bytes) in candidates {
            match self.load(source.clone(), &bytes).await {
                Ok(c) => {
                    if let Some(existing) = registry.connectors.get(&c.info.id) {
                        registry.rejected.push(Rejected {
                            source: source.to_string(),
                            reason: format!(
                                "connector id `{}` is already provided by {}",
                                c.info.id, existing.source
                            ),
                        });
                    } else {
                        registry.connectors.insert(c.info.id.clone(), Arc::new(c));
                    }
                }
                Err(reason) => {
                    tracing::info!(%source, %reason, "connector rejected");
                    registry.rejected.push(Rejected {
                        source: source.to_string(),
                        reason,
                    });
                }
            }
        }
        registry
    }

    /// Loads one component; the error is a sentence saying why not.
    pub async fn load(&self, source: Source, bytes: &[u8]) -> Result<Connector, String> {
        check_format(bytes)?;
        let sha256 = super::cache::ArtifactCache::digest(bytes);
        let rt = self.clone();
        let owned = bytes.to_vec();
        let sha = sha256.clone();
        // Compiling is CPU-bound: keep it off the async workers.
        let component =
            tokio::task::spawn_blocking(move || rt.0.cache.load(&rt.0.engine, &owned, &sha))
                .await
                .map_err(|e| format!("compilation panicked: {e}"))?
                .map_err(|e| format!("does not compile: {}", first_line(&e)))?;
        let pre = self
            .0
            .linker
            .instantiate_pre(&component)
            .map_err(|e| format!("imports something mdmhub does not provide: {}", chain(&e)))?;
        let pre = bindings::ConnectorPre::new(pre).map_err(|e| {
            format!(
                "does not implement the mdmhub:connector@0.1 world: {}",
                chain(&e)
            )
        })?;
        let info = super::describe(self, &pre, &source.to_string())
            .await
            .map_err(|e| format!("describe() failed: {e}"))?;
        validate::describe(&info).map_err(|e| format!("describe() is invalid: {e}"))?;
        Ok(Connector {
            info,
            source,
            sha256,
            pre,
            rt: self.clone(),
        })
    }
}

fn check_format(bytes: &[u8]) -> Result<(), String> {
    if bytes.len() > MAX_COMPONENT_BYTES {
        return Err(format!(
            "is {} bytes, over the {} MiB limit",
            bytes.len(),
            MAX_COMPONENT_BYTES >> 20
        ));
    }
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err("is not a WebAssembly file".into());
    }
    match bytes[4..8] {
        [1, 0, 0, 0] => Err("is a core WebAssembly module, not a component: build it for wasm32-wasip2 (or wrap it with `wasm-tools component new`)".into()),
        [0x0d, 0x00, 0x01, 0x00] => Ok(()),
        _ => Err("is a WebAssembly binary of an unsupported version or layer".into()),
    }
}

fn list_wasm(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wasm") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

fn first_line(e: &anyhow::Error) -> String {
    format!("{e}")
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

fn chain(e: &wasmtime::Error) -> String {
    let text = format!("{e:#}");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .take(3)
        .collect::<Vec<_>>()
        .join(": ")
}
