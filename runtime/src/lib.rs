//! evmc-runtime: loads compiled contracts and runs them inside revm.
//!
//! Pipeline position: `.so` on disk → [`loader`] (validate, then load) →
//! [`registry`] (code hash + spec → artifact) → [`NativeEvm`] (revm's frame
//! loop, with compiled frames run by [`run_native`]).
//!
//! The `compiler` feature (on by default) adds compiling in this process:
//! [`compile_and_load`], cache compiles, hot compilation. Without it the
//! runtime has no LLVM in it and loads artefacts compiled elsewhere.
#![warn(missing_docs)]

pub mod cache;
pub mod compile_worker;
pub mod hot;
pub mod loader;
pub mod metrics;
pub mod registry;
mod revm_glue;
pub mod safety_net;
#[cfg(feature = "compiler")]
pub mod sequencer;

pub use cache::{
    ArtifactCache, CacheError, CacheKey, CompileFailure, CompileLimits, WorkerCommand,
};
pub use loader::{Expect, LoadError, LoadedArtifact, Loader};
pub use metrics::{InterpretReason, Metrics, MetricsSnapshot};
pub use registry::{Registry, SpecMismatch};
pub use revm_glue::alloy_evm::{
    HotCompile, HotOptions, NativeEthEvm, NativeEthEvmInner, NativeEvmFactory,
};
pub use revm_glue::block;
pub use revm_glue::cpu_builtins;
pub use revm_glue::evm::NativeEvm;
pub use revm_glue::executor::{run_native, ROOM_AFTER_GROWS};
pub use revm_glue::inspect::FrameLevel;
pub use revm_glue::keccak_memo::MemoScope;
pub use revm_glue::trace::{divergence_report, first_divergence, TraceStep};

#[cfg(feature = "compiler")]
use evmc_compiler::{CompileOptions, SpecId};
#[cfg(feature = "compiler")]
use std::path::Path;
#[cfg(feature = "compiler")]
use std::sync::Arc;

/// Why [`compile_and_load`] failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The compile failed.
    #[error(transparent)]
    Compile(#[from] evmc_compiler::CompileError),
    /// The artifact did not load.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The compile thread failed or ran out of time (see
    /// [`compile_worker::compile_on_thread`]).
    #[cfg(feature = "compiler")]
    #[error(transparent)]
    Thread(#[from] compile_worker::CompileFailure),
}

/// Compiles `code` for `spec` into `dir`, then loads it through the
/// validating loader: the whole real path. The compile gets at most
/// [`compile_worker::DEFAULT_COMPILE_TIMEOUT`].
#[cfg(feature = "compiler")]
pub fn compile_and_load(
    code: &[u8],
    spec: SpecId,
    opt_level: u8,
    dir: &Path,
) -> Result<Arc<LoadedArtifact>, Error> {
    let mut opts = CompileOptions::new(spec);
    opts.opt_level = opt_level;
    compile_and_load_with(code, &opts, dir)
}

/// [`compile_and_load`] with any options: the artefact is named after the
/// code hash, the spec and a digest of the options that change its bytes.
#[cfg(feature = "compiler")]
pub fn compile_and_load_with(
    code: &[u8],
    opts: &CompileOptions,
    dir: &Path,
) -> Result<Arc<LoadedArtifact>, Error> {
    let hash = evmc_compiler::code_hash(code);
    let options = evmc_compiler::code_hash(opts.codegen_fingerprint().as_bytes());
    let path = dir.join(format!(
        "{hash:x}-{}-{}.so",
        evmc_compiler::spec_name(opts.spec),
        &hex::encode(options)[..16]
    ));
    compile_worker::compile_on_thread(code, opts, &path, compile_worker::DEFAULT_COMPILE_TIMEOUT)??;
    let art = Loader::new(Expect {
        code_hash: hash,
        spec: evmc_compiler::spec_name(opts.spec).to_string(),
    })
    .load(&path)?;
    Ok(Arc::new(art))
}
