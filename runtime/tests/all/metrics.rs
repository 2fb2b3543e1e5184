//! The registry's metrics count frames by how they ran, and why the
//! interpreted ones were.

use crate::support::{code_hash, contract, fixture, opts, SPEC};
use evmc_harness::fixture::run_fixture;
use evmc_runtime::{InterpretReason, Registry};
use std::sync::Arc;

#[test]
fn frames_are_counted_native_or_interpreted_with_the_reason() {
    let f = fixture();
    let pre = f.pre_state();

    // Nothing known about the contract: not compiled.
    let registry = Registry::new();
    let r = run_fixture(f, &pre, SPEC, Some(&Arc::clone(&registry)));
    let m = registry.metrics().snapshot();
    assert_eq!(r.native_frames, 0);
    assert_eq!(m.frames_native, 0);
    assert!(
        m.interpreted_for(InterpretReason::NotCompiled) >= 1,
        "{m:?}"
    );

    // Marked as over the size limit: counted under that reason.
    let registry = Registry::new();
    registry.mark_interpreted(code_hash(), SPEC, InterpretReason::TooLarge);
    run_fixture(f, &pre, SPEC, Some(&Arc::clone(&registry)));
    let m = registry.metrics().snapshot();
    assert!(m.interpreted_for(InterpretReason::TooLarge) >= 1, "{m:?}");
    assert_eq!(m.interpreted_for(InterpretReason::NotCompiled), 0, "{m:?}");

    // Compiled: every frame of it native, counted as the EVM counted them.
    let dir = tempfile::tempdir().unwrap();
    let art =
        evmc_runtime::compile_and_load(&contract(), SPEC, opts().opt_level, dir.path()).unwrap();
    let registry = Registry::new();
    registry.register(SPEC, art).unwrap();
    let r = run_fixture(f, &pre, SPEC, Some(&Arc::clone(&registry)));
    let m = registry.metrics().snapshot();
    assert!(r.native_frames >= 1);
    assert_eq!(m.frames_native, r.native_frames, "{m:?}");
    assert_eq!(m.frames_interpreted(), 0, "{m:?}");
}
