//! Loads a cached artefact and runs one call natively, in a runtime that
//! may be built without LLVM (`cargo build -p evmc-runtime
//! --no-default-features --example load_only`): what a node that only runs
//! precompiled contracts does.
//!
//! ```text
//! load_only CACHE_DIR CODE_HEX SPEC OPT_LEVEL [INPUT_HEX]
//! ```
//!
//! Looks the contract up in the cache for this machine, runs the call with
//! the artefact and once interpreted, and prints one JSON line. Exits 0 when
//! the artefact was found, ran natively and matched the interpreter; 1
//! otherwise.

use evmc_runtime::{run_call, ArtifactCache, CallSetup};
use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("load_only: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, code, spec, opt, rest @ ..] = args.as_slice() else {
        return Err("usage: load_only CACHE_DIR CODE_HEX SPEC OPT_LEVEL [INPUT_HEX]".into());
    };
    let code = hex::decode(code).map_err(|e| format!("code: {e}"))?;
    let input = match rest.first() {
        Some(h) => hex::decode(h).map_err(|e| format!("input: {e}"))?,
        None => Vec::new(),
    };
    let spec = evmc_compiler::parse_spec(spec).ok_or(format!("unknown spec {spec}"))?;
    let opt: u8 = opt.parse().map_err(|e| format!("opt level: {e}"))?;
    let cache = ArtifactCache::open(Path::new(dir)).map_err(|e| e.to_string())?;
    let target = cache
        .target()
        .ok_or("no target is recorded for this machine in the cache")?
        .clone();
    let artifact = cache
        .get(evmc_compiler::code_hash(&code), spec, opt)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("not in the cache: {:?}", cache.take_rejections()))?;
    let setup = CallSetup {
        code,
        input,
        gas_limit: 1_000_000,
        spec,
    };
    let native = run_call(&setup, Some(artifact))?;
    let interpreted = run_call(&setup, None)?;
    println!(
        "{}",
        serde_json::json!({
            "target_cpu": target.cpu,
            "native_frames": native.native_frames,
            "status": native.status,
            "gas_used": native.gas_used,
            "output": hex::encode(&native.output),
            "matches_interpreter": native.observable() == interpreted.observable(),
        })
    );
    if native.native_frames == 0 {
        return Err("the call did not run natively".into());
    }
    if native.observable() != interpreted.observable() {
        return Err("native and interpreted outcomes differ".into());
    }
    Ok(())
}
