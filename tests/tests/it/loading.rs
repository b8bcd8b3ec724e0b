//! Loading the connectors directory: misfits are rejected by name, the
//! rest load, compiled artifacts are cached; a Python component works.

use std::path::{Path, PathBuf};
use std::process::Command;

use mdmhub::builtin::BUILTINS;
use mdmhub::contract::*;
use mdmhub::runtime::Source;

use crate::server;
use crate::support::*;

fn connectors_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn misfits_are_rejected_with_their_reason_and_the_rest_load() {
    let dir = connectors_dir("misfits");
    std::fs::write(dir.join("garbage.wasm"), b"this is not wasm at all").unwrap();
    std::fs::write(dir.join("core.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::copy(wasm::OTHER_WORLD, dir.join("other-world.wasm")).unwrap();
    std::fs::copy(wasm::BAD_DESCRIBE, dir.join("bad-describe.wasm")).unwrap();
    std::fs::copy(wasm::EXAMPLE, dir.join("acme.wasm")).unwrap();
    std::fs::copy(wasm::EXAMPLE, dir.join("acme-again.wasm")).unwrap();
    std::fs::write(dir.join("notes.txt"), b"ignored: not .wasm").unwrap();
    let rt = runtime();
    let reg = rt.load_all(BUILTINS, Some(&dir)).await;
    let ids: Vec<&str> = reg.connectors.keys().map(String::as_str).collect();
    assert!(ids.contains(&"acme"), "{ids:?}");
    for (name, _) in BUILTINS {
        assert!(
            reg.connectors
                .values()
                .any(|c| matches!(&c.source, Source::Builtin(n) if n == name)),
            "built-in {name} did not load"
        );
    }
    assert_eq!(reg.connectors.len(), BUILTINS.len() + 1);
    let reason = |file: &str| {
        reg.rejected
            .iter()
            .find(|r| r.source.ends_with(file))
            .unwrap_or_else(|| panic!("{file} not rejected: {:?}", reg.rejected))
            .reason
            .clone()
    };
    assert!(reason("garbage.wasm").contains("not a WebAssembly file"));
    assert!(reason("core.wasm").contains("core WebAssembly module, not a component"));
    assert!(reason("other-world.wasm").contains("does not implement the mdmhub:connector"));
    assert!(reason("bad-describe.wasm").contains("describe() is invalid"));
    assert!(reason("acme.wasm").contains("already provided"));
    assert_eq!(reg.rejected.len(), 5, "{:?}", reg.rejected);
}

#[tokio::test]
async fn compiled_artifacts_are_cached_by_content_hash() {
    let rt = runtime();
    let c = load(&rt, wasm::EXAMPLE).await;
    let cached: Vec<_> = std::fs::read_dir(cache_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        cached
            .iter()
            .any(|f| f.starts_with(&c.sha256) && f.ends_with(".cwasm")),
        "{cached:?}"
    );
    // A second runtime loads it from the cache and it works the same.
    let again = load(&runtime(), wasm::EXAMPLE).await;
    assert_eq!(again.info.id, "acme");
}

/// componentize-py: `MDMHUB_COMPONENTIZE_PY` or on PATH (`.ci/run` installs it).
fn componentize_py() -> PathBuf {
    if let Some(p) = std::env::var_os("MDMHUB_COMPONENTIZE_PY") {
        return p.into();
    }
    let venv =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tools/venv/bin/componentize-py");
    if venv.exists() {
        return venv;
    }
    "componentize-py".into()
}

#[tokio::test]
async fn a_python_component_loads_and_calls_http() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("acme_py.wasm");
    let status = Command::new(componentize_py())
        .current_dir(root.join("examples/python-minimal"))
        .args(["-d", "../../wit/0.1.0", "-w", "connector", "componentize", "app", "-o"])
        .arg(&out)
        .status()
        .expect("componentize-py is needed: run `scripts/test` (it installs it) or `pip install componentize-py==0.25.1`");
    assert!(status.success(), "componentize-py failed");
    let rt = mdmhub::runtime::Runtime::new(mdmhub::runtime::RuntimeConfig {
        cache_dir: Some(cache_dir()),
        ..Default::default()
    })
    .unwrap();
    let c = load(&rt, out.to_str().unwrap()).await;
    assert_eq!(c.info.id, "acme-py");
    let srv = server::start(0).await;
    let s = session(
        &rt,
        &c,
        spec(
            &[("tenant", "t")],
            &[("api_token", "acme-token")],
            Some(&srv.url),
        ),
    );
    c.check(&s).await.unwrap();
    let (records, _) = list_all(&c, &s, ResourceKind::Users, None).await;
    let emails: Vec<String> = records
        .into_iter()
        .map(|r| match r {
            Entity::User(u) => u.email.unwrap(),
            other => panic!("not a user: {other:?}"),
        })
        .collect();
    assert_eq!(
        emails,
        (0..5)
            .map(|i| format!("user{i}@example.com"))
            .collect::<Vec<_>>()
    );
}
