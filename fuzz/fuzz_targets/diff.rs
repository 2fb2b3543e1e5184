//! libFuzzer target: the input bytes are a generated world (see
//! `evmc_tests::gen`): its contracts are compiled, then a few dozen
//! transactions run against them interpreted and natively. Any difference,
//! compile error or panic is a crash; the panic message holds the world and
//! transaction as Rust source for `tests/tests/fuzz_regressions.rs`.

#![no_main]

use evmc_tests::evmc_compiler::{SpecId, B256};
use evmc_tests::evmc_runtime::{compile_and_load, LoadedArtifact};
use evmc_tests::gen::{check_world, Stats, World};
use libfuzzer_sys::fuzz_target;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Transactions per input (each also at its exact gas, one below, and two
/// random limits below).
fn variants() -> usize {
    static N: OnceLock<usize> = OnceLock::new();
    *N.get_or_init(|| {
        std::env::var("EVMC_FUZZ_VARIANTS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(24)
    })
}

/// Compiles through the real path, keeping recent artifacts: inputs that
/// differ only in the transactions they draw reuse the contracts. Bounded,
/// since a campaign compiles without end.
fn compile(code: &[u8], spec: SpecId, opt_level: u8) -> Arc<LoadedArtifact> {
    type Cache = Mutex<HashMap<(B256, SpecId, u8), Arc<LoadedArtifact>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let key = (evmc_tests::evmc_compiler::code_hash(code), spec, opt_level);
    if let Some(a) = cache.lock().unwrap().get(&key) {
        return a.clone();
    }
    let dir = DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"));
    let art = compile_and_load(code, spec, opt_level, dir.path())
        .unwrap_or_else(|e| panic!("compiling {} for {spec:?}: {e}", hex::encode(code)));
    // The loader runs a private copy; the file is not needed any more.
    let _ = std::fs::remove_file(&art.path);
    let mut c = cache.lock().unwrap();
    if c.len() >= 512 {
        c.clear();
    }
    c.insert(key, art.clone());
    art
}

fuzz_target!(|data: &[u8]| {
    // A leading 0xff selects a world of random byte strings.
    let world = match data.split_first() {
        Some((0xff, rest)) => World::decode_random(rest),
        _ => World::decode(data),
    };
    let registry = world.registry(&compile);
    if let Err(report) = check_world(&world, &registry, variants(), 2, &Stats::default()) {
        panic!("{report}");
    }
});
