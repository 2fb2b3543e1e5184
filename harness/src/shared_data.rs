//! Where tests and benchmarks find the shared fixtures and benchmark inputs.

use std::path::PathBuf;

/// `$EVMC_SHARED_DIR`, else `../shared` beside the workspace root this crate
/// was built in. Panics when missing: a test without its data must fail,
/// not pass.
pub fn shared_dir() -> PathBuf {
    let dir = std::env::var_os("EVMC_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    assert!(
        dir.is_dir(),
        "shared test data not found at {} (set EVMC_SHARED_DIR)",
        dir.display()
    );
    dir
}
