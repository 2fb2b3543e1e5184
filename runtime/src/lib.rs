//! evmc-runtime: loads compiled contracts and runs them inside revm.
//!
//! Pipeline position: `.so` on disk → [`loader`] (validate, then load) →
//! [`registry`] (code hash + spec → artifact) → [`NativeEvm`] (revm's frame
//! loop, with compiled frames run by [`run_native`]).

pub mod bench;
pub mod cache;
pub mod compile_worker;
pub mod hot;
pub mod loader;
pub mod registry;
mod revm_glue;
pub mod sequencer;
mod shared_data;

pub use cache::{
    ArtifactCache, CacheError, CacheKey, CompileFailure, CompileLimits, WorkerCommand,
};
pub use loader::{load, Expect, LoadError, LoadedArtifact};
pub use registry::{Registry, SpecMismatch};
pub use revm_glue::alloy_evm::{
    HotCompile, HotOptions, NativeEthEvm, NativeEthEvmInner, NativeEvmFactory,
};
pub use revm_glue::evm::NativeEvm;
pub use revm_glue::executor::run_native;
pub use revm_glue::single_call::{run_call, CallLog, CallOutcome, CallSetup};
pub use revm_glue::trace::{divergence_report, first_divergence, TraceStep};
pub use revm_glue::{block, fixture, statetest};
pub use shared_data::shared_dir;

use evmc_compiler::{CompileOptions, SpecId};
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Compile(#[from] evmc_compiler::CompileError),
    #[error(transparent)]
    Load(#[from] LoadError),
}

/// Compiles `code` for `spec` into `dir`, then loads it through the
/// validating loader: the whole real path.
pub fn compile_and_load(
    code: &[u8],
    spec: SpecId,
    opt_level: u8,
    dir: &Path,
) -> Result<Arc<LoadedArtifact>, Error> {
    let mut opts = CompileOptions::new(spec);
    opts.opt_level = opt_level;
    let hash = evmc_compiler::code_hash(code);
    let path = dir.join(format!(
        "{hash:x}-{}-O{opt_level}.so",
        evmc_compiler::spec_name(spec)
    ));
    evmc_compiler::compile_to_file(code, &opts, &path)?;
    let art = load(
        &path,
        &Expect {
            code_hash: hash,
            spec: evmc_compiler::spec_name(spec).to_string(),
        },
    )?;
    Ok(Arc::new(art))
}
