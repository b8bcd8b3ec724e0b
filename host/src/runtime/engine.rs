//! The one wasmtime engine: pooling allocator sized for Rust, Python
//! (componentize-py) and JavaScript (jco) components, copy-on-write heap
//! images, and epoch interruption driven by a ticker thread.

use std::time::Duration;

use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances; the granularity of CPU limits and yields.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Sizing of the engine.
#[derive(Debug, Clone, Copy)]
pub struct EngineLimits {
    /// Concurrent component instances (calls in flight).
    pub max_instances: u32,
    /// Largest linear memory any connector may grow to.
    pub max_memory_bytes: usize,
}

impl Default for EngineLimits {
    fn default() -> Self {
        Self {
            max_instances: 128,
            max_memory_bytes: 1 << 30,
        }
    }
}

/// Builds the engine and starts its epoch ticker (which stops with it).
pub fn build(limits: EngineLimits) -> anyhow::Result<Engine> {
    let n = limits.max_instances;
    let mut pool = PoolingAllocationConfig::new();
    // A componentize-py component has ~10 core instances, a few memories and
    // a function table of tens of thousands of entries; jco's is similar.
    pool.total_component_instances(n)
        .total_core_instances(n * 16)
        .total_memories(n * 4)
        .total_tables(n * 8)
        .total_stacks(n)
        .max_core_instances_per_component(32)
        .max_memories_per_component(8)
        .max_tables_per_component(16)
        .max_component_instance_size(4 << 20)
        .max_core_instance_size(4 << 20)
        .table_elements(200_000)
        .max_memory_size(limits.max_memory_bytes)
        .max_unused_warm_slots(n / 4)
        // Reset a slot by scanning for the pages a call dirtied and copying
        // them back, instead of unmapping everything: no madvise and no page
        // faults on the next call (the bulk of the per-call cost otherwise).
        .pagemap_scan(Enabled::Auto)
        .linear_memory_keep_resident(8 << 20)
        .table_keep_resident(1 << 20);
    let mut cfg = Config::new();
    cfg.allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .wasm_component_model(true)
        .memory_init_cow(true)
        .epoch_interruption(true)
        .max_wasm_stack(1 << 20);
    // `MDMHUB_PERFMAP=1` names guest functions in `perf` profiles
    // (/tmp/perf-PID.map): for finding where a connector spends its time.
    if std::env::var_os("MDMHUB_PERFMAP").is_some() {
        cfg.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    let engine = Engine::new(&cfg)?;
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("mdmhub-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })?;
    Ok(engine)
}
