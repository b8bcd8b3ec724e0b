//! Runtime benchmarks (figures, not assertions):
//! - per-call overhead: instantiate from `InstancePre` in a fresh `Store`
//!   and call `describe()` on the SDK example (a Rust component);
//! - start-up: loading connectors with an empty artifact cache vs from it.
//!
//! Run: `cargo bench -p mdmhub-tests --bench runtime` (add `--profile dev`
//! for a quicker build with optimized dependencies).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use mdmhub::runtime::{Runtime, RuntimeConfig};

const EXAMPLE: &str = env!("MDMHUB_WASM_EXAMPLE_RUST_MINIMAL");
const HOSTILE: &str = env!("MDMHUB_WASM_TEST_HOSTILE");

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let tmp = std::env::temp_dir().join(format!("mdmhub-bench-{}", std::process::id()));
    let connectors = tmp.join("connectors");
    std::fs::create_dir_all(&connectors).unwrap();
    std::fs::copy(EXAMPLE, connectors.join("acme.wasm")).unwrap();
    std::fs::copy(HOSTILE, connectors.join("hostile.wasm")).unwrap();
    if let Some(py) = std::env::var_os("MDMHUB_BENCH_PY_WASM") {
        std::fs::copy(PathBuf::from(py), connectors.join("acme_py.wasm")).unwrap();
    }
    let config = RuntimeConfig {
        cache_dir: Some(tmp.join("cache")),
        ..RuntimeConfig::default()
    };

    // Start-up: first load compiles; a new runtime then loads from the cache.
    let start = Instant::now();
    let rt = Runtime::new(config.clone()).unwrap();
    let registry = rt
        .load_all(mdmhub::builtin::BUILTINS, Some(&connectors))
        .await;
    let cold = start.elapsed();
    assert!(registry.rejected.is_empty(), "{:?}", registry.rejected);
    let mut warm = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let rt = Runtime::new(config.clone()).unwrap();
        let r = rt
            .load_all(mdmhub::builtin::BUILTINS, Some(&connectors))
            .await;
        warm.push(start.elapsed());
        assert_eq!(r.connectors.len(), registry.connectors.len());
    }
    warm.sort();
    println!(
        "start-up, {} connectors: first load {:.1} ms, from cache {:.1} ms (median of 5, engine creation included)",
        registry.connectors.len(),
        ms(cold),
        ms(warm[2])
    );

    // Per-call overhead of a trivial call: `check` of the hostile component
    // returns at once without calling the host.
    let hostile = registry.get("hostile").unwrap();
    let spec = mdmhub::account::AccountSpec {
        id: "bench".into(),
        config: [("host".to_string(), "api.test".to_string())].into(),
        secrets: [("token".to_string(), mdmhub::account::Secret::new("x"))].into(),
        ..Default::default()
    };
    let session = rt.session(hostile, spec).unwrap();
    for _ in 0..1_000 {
        hostile.check(&session).await.unwrap();
    }
    let mut samples = Vec::with_capacity(20_000);
    for _ in 0..20_000 {
        let t = Instant::now();
        hostile.check(&session).await.unwrap();
        samples.push(t.elapsed());
    }
    samples.sort();
    println!(
        "per call (fresh instance + trivial check), 20000 calls: median {:.1} us, p90 {:.1} us, p99 {:.1} us",
        us(percentile(&samples, 0.5)),
        us(percentile(&samples, 0.9)),
        us(percentile(&samples, 0.99))
    );

    // The same with a realistic result: `describe` returns a large record.
    let acme = registry.get("acme").unwrap();
    for _ in 0..1_000 {
        acme.describe().await.unwrap();
    }
    let mut samples = Vec::with_capacity(20_000);
    for _ in 0..20_000 {
        let t = Instant::now();
        acme.describe().await.unwrap();
        samples.push(t.elapsed());
    }
    samples.sort();
    println!(
        "per call (fresh instance + describe, a large record), 20000 calls: median {:.1} us, p90 {:.1} us, p99 {:.1} us",
        us(percentile(&samples, 0.5)),
        us(percentile(&samples, 0.9)),
        us(percentile(&samples, 0.99))
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
