//! Set-up shared by the criterion benches (each includes it as a module): the cases of the shared
//! benchdata (see `evmc_benches`), narrowed by `EVMC_BENCH_FILTER`.
//!
//! Criterion's own filter (`cargo bench -- PATTERN`) only skips timing;
//! `EVMC_BENCH_FILTER=REGEX` also skips compiling what is not wanted, which
//! is most of the cost of a partial run.

// Each bench uses part of it.
#![allow(dead_code)]

use criterion::Criterion;
use evmc_benches::{discover, CallSettings, Case, CompileSettings, Compiler};
use std::path::PathBuf;
use std::time::Duration;

/// `$EVMC_SHARED_DIR/benchdata`, else `../shared/benchdata` beside the
/// workspace root.
pub(crate) fn benchdata() -> PathBuf {
    let dir = evmc_harness::shared_dir().join("benchdata");
    assert!(
        dir.is_dir(),
        "benchmark data not found at {}",
        dir.display()
    );
    dir
}

/// Every case of the benchdata whose `group/name` matches
/// `EVMC_BENCH_FILTER` (all without it).
pub(crate) fn cases() -> Vec<Case> {
    let filter = std::env::var("EVMC_BENCH_FILTER")
        .ok()
        .map(|f| regex::Regex::new(&f).unwrap_or_else(|e| panic!("EVMC_BENCH_FILTER: {e}")));
    let mut cases = discover(&[benchdata()], CallSettings::default())
        .unwrap_or_else(|e| panic!("benchmark data: {e}"));
    if let Some(re) = filter {
        cases.retain(|c| re.is_match(&c.id()));
    }
    cases
}

pub(crate) fn compiler() -> Compiler {
    Compiler::new(CompileSettings::default()).unwrap_or_else(|e| panic!("{e}"))
}

/// Few samples: some programs run for seconds per transaction, and there
/// are about a hundred of them.
pub(crate) fn criterion() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args()
}

/// Median of per-iteration times collected inside `iter_custom`.
pub(crate) fn median_per_iter(samples: &[(u64, Duration)]) -> Duration {
    let per: Vec<Duration> = samples
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, d)| *d / *n as u32)
        .collect();
    evmc_benches::median(&per)
}
