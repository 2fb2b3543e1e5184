//! Loads a cached artefact and runs one call natively, in a runtime built
//! without LLVM: what a node that only runs precompiled contracts does.
//!
//! ```text
//! cargo run --release -p evmc-example-load-only -- CACHE_DIR CODE_HEX SPEC OPT_LEVEL [INPUT_HEX]
//! ```
//!
//! Fill the cache first on this machine, e.g. `evmc-native compile CODE
//! --cache-dir CACHE_DIR` (which also records this machine's target there).
//!
//! Looks the contract up in the cache for this machine, runs the call with
//! the artefact and once interpreted, and prints one JSON line. Exits 0 when
//! the artefact was found, ran natively and matched the interpreter; 1
//! otherwise.

use evmc_compiler::SpecId;
use evmc_runtime::{ArtifactCache, LoadedArtifact, NativeEvm, Registry};
use revm::context::{Context, TxEnv};
use revm::context_interface::result::ExecutionResult;
use revm::database::{CacheDB, EmptyDB};
use revm::handler::{ExecuteEvm, MainBuilder, MainnetContext};
use revm::primitives::{address, Address, Bytes, TxKind};
use revm::state::{AccountInfo, Bytecode};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

const CONTRACT: Address = address!("0xcccccccccccccccccccccccccccccccccccccccc");
const SENDER: Address = address!("0x1111111111111111111111111111111111111111");

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("evmc-example-load-only: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, code, spec, opt, rest @ ..] = args.as_slice() else {
        return Err(
            "usage: evmc-example-load-only CACHE_DIR CODE_HEX SPEC OPT_LEVEL [INPUT_HEX]".into(),
        );
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
    let native = call(&code, &input, spec, Some(artifact))?;
    let interpreted = call(&code, &input, spec, None)?;
    let same = native.0 == interpreted.0;
    println!(
        "{}",
        serde_json::json!({
            "target_cpu": target.cpu,
            "native_frames": native.1,
            "result": format!("{:?}", native.0),
            "matches_interpreter": same,
        })
    );
    if native.1 == 0 {
        return Err("the call did not run natively".into());
    }
    if !same {
        return Err("native and interpreted outcomes differ".into());
    }
    Ok(())
}

/// One call of `code` at a fixed address; with `artifact`, natively. Returns
/// the result and the number of frames that ran natively.
fn call(
    code: &[u8],
    input: &[u8],
    spec: SpecId,
    artifact: Option<Arc<LoadedArtifact>>,
) -> Result<(ExecutionResult, u64), String> {
    let mut db = CacheDB::<EmptyDB>::default();
    let bytecode = Bytecode::new_raw(Bytes::copy_from_slice(code));
    db.insert_account_info(CONTRACT, AccountInfo::default().with_code(bytecode));
    let ctx: MainnetContext<_> = Context::new(db, spec);
    let registry = Registry::new();
    if let Some(a) = artifact {
        registry.register(spec, a).map_err(|e| e.to_string())?;
    }
    let mut evm = NativeEvm::new(ctx.build_mainnet(), registry);
    let tx = TxEnv::builder()
        .caller(SENDER)
        .kind(TxKind::Call(CONTRACT))
        .data(Bytes::copy_from_slice(input))
        .gas_limit(1_000_000)
        .gas_price(0)
        .build()
        .map_err(|e| format!("bad transaction: {e:?}"))?;
    let r = evm.transact(tx).map_err(|e| format!("rejected: {e:?}"))?;
    Ok((r.result, evm.native_frames))
}
