//! Shared by the benchmark suites: run-length settings (quick or full, from the environment) and
//! the engines a suite runs on. Included with `mod common;` from each bench file.
#![allow(dead_code)]

use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, SamplingMode};

use canister_vm::runtime::{CanisterConfig, Engine};

/// Set to `1` by `cargo xtask bench --quick`: short warm-up and measurement, 10 samples.
pub const QUICK_ENV: &str = "CANISTER_VM_BENCH_QUICK";

/// Whether the quick settings are in force.
pub fn quick() -> bool {
    std::env::var(QUICK_ENV).is_ok_and(|v| v == "1")
}

/// How long a benchmark of a group runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Length {
    /// Iterations of microseconds to milliseconds.
    Short,
    /// Iterations of tens of milliseconds or more: flat sampling, fewer samples.
    Long,
}

/// Applies the quick or full settings to `group`.
pub fn configure(group: &mut BenchmarkGroup<'_, WallTime>, length: Length) {
    let (warm, measure, samples) = match (quick(), length) {
        (true, Length::Short) => (0.3, 1.2, 10),
        (true, Length::Long) => (0.1, 1.0, 10),
        (false, Length::Short) => (2.0, 5.0, 30),
        (false, Length::Long) => (1.0, 8.0, 15),
    };
    group.warm_up_time(Duration::from_secs_f64(warm));
    group.measurement_time(Duration::from_secs_f64(measure));
    group.sample_size(samples);
    if length == Length::Long {
        group.sampling_mode(SamplingMode::Flat);
    }
}

/// The engines this build can run, wasmi first (wasmtime with the `wasmtime` feature).
pub fn engines() -> Vec<Engine> {
    Engine::available()
}

/// `config` set to run on `engine`.
pub fn on(engine: Engine, config: CanisterConfig) -> CanisterConfig {
    config.engine(engine)
}

/// Where criterion writes its results: `$CARGO_TARGET_DIR/criterion`, else `target/criterion`
/// in the workspace.
pub fn criterion_dir() -> std::path::PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("criterion")
}
