//! What identifies a cache entry: everything that changes the bytes of an
//! artifact or whether this machine may run it.

use evmc_compiler::{spec_name, CompileOptions, SpecId, TargetSpec, B256, COMPILER_BUILD_ID};
use evmc_interface::INTERFACE_VERSION;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Bumped when the on-disk layout or the manifest format changes, so old
/// entries become misses instead of being misread (their directory names
/// differ; a manifest also names its format). 2: BLAKE3 content hash.
/// 3: the key records the compiler's build id and every byte-changing
/// compile option ([`CacheKey::codegen`]). 4: the manifest pins an XXH3-128
/// checksum that every hit verifies (`artifact_xxh3`); BLAKE3 stays for the
/// store's signatures.
pub const LAYOUT_VERSION: u32 = 4;

/// What identifies a cache entry (see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheKey {
    /// `0x…` keccak of the bytecode.
    pub code_hash: B256,
    /// The spec's name ([`evmc_compiler::spec_name`]).
    pub spec: String,
    /// The optimisation level asked for.
    pub opt_level: u8,
    /// [`CompileOptions::codegen_fingerprint`]: every option that changes
    /// the artefact's bytes (opt level and budget, shard count, ...).
    pub codegen: String,
    /// [`INTERFACE_VERSION`] of the ABI the artefact uses.
    pub interface_version: u32,
    /// [`COMPILER_BUILD_ID`] of the compiler that built the artefact.
    pub compiler_version: String,
    /// LLVM target triple.
    pub target_triple: String,
    /// LLVM CPU name.
    pub target_cpu: String,
    /// Enabled features only (what a loading CPU must have).
    pub cpu_features: String,
}

impl CacheKey {
    /// The key of a compile with default options but `opt_level`, for `target`.
    pub fn new(code_hash: B256, spec: SpecId, opt_level: u8, target: &TargetSpec) -> Self {
        let mut opts = CompileOptions::for_target(spec, target.clone());
        opts.opt_level = opt_level;
        Self::for_compile(code_hash, &opts)
    }

    /// The key of compiling code with hash `code_hash` under `opts`.
    pub fn for_compile(code_hash: B256, opts: &CompileOptions) -> Self {
        Self {
            code_hash,
            spec: spec_name(opts.spec).to_string(),
            opt_level: opts.opt_level,
            codegen: opts.codegen_fingerprint(),
            interface_version: INTERFACE_VERSION,
            compiler_version: COMPILER_BUILD_ID.to_string(),
            target_triple: opts.target.triple.clone(),
            target_cpu: opts.target.cpu.clone(),
            cpu_features: sorted_features(&opts.target.required_features()),
        }
    }

    /// Whether this binary built (or could have built) an artefact of this
    /// key: same compiler build id and interface version. An entry of
    /// another build is never looked up (its key differs); `cache gc
    /// --other-builds` removes it.
    pub fn is_this_build(&self) -> bool {
        self.compiler_version == COMPILER_BUILD_ID && self.interface_version == INTERFACE_VERSION
    }

    /// The entry's directory name: a digest of every field, so that two
    /// keys differing anywhere never share an entry.
    pub fn digest_hex(&self) -> String {
        let mut h = Sha256::new();
        h.update(format!("evmc-native cache layout {LAYOUT_VERSION}\n"));
        h.update(format!(
            "code_hash={:x}\nspec={}\nopt={}\ncodegen={}\ninterface={}\ncompiler={}\ntriple={}\ncpu={}\nfeatures={}\n",
            self.code_hash,
            self.spec,
            self.opt_level,
            self.codegen,
            self.interface_version,
            self.compiler_version,
            self.target_triple,
            self.target_cpu,
            self.cpu_features
        ));
        hex::encode(h.finalize())
    }
}

/// LLVM lists host features in no particular order; the key must not depend on it.
pub fn sorted_features(features: &str) -> String {
    let mut v: Vec<&str> = features.split(',').filter(|f| !f.is_empty()).collect();
    v.sort_unstable();
    v.dedup();
    v.join(",")
}
