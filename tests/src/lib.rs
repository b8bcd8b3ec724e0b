//! Test support that outlives one test binary: the vendor simulators
//! (`mdmhub-sim`), used by the integration tests, the benchmarks and the demo.

pub mod sim;
