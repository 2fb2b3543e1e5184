//! Which code hashes run natively, for which spec.
//!
//! Readers take a snapshot with one atomic load (no lock, no allocation);
//! writers publish a new map. Artifacts stay loaded while any snapshot or
//! running frame still holds them.
//!
//! Beside the artefacts it keeps why known contracts have none (compile
//! failed, over the size limit, ...), so that frames interpreted for a
//! reason are counted under it in the registry's [`Metrics`].

use crate::loader::LoadedArtifact;
use crate::metrics::{InterpretReason, Metrics};
use arc_swap::ArcSwap;
use evmc_compiler::{SpecId, B256};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Code hashes are keccak outputs: their first bytes are already uniform.
/// Each 8-byte word of a key is folded in with a rotate and an XOR; the
/// methods are inlined, so hashing a key of every frame's lookup (code
/// hash and spec) is a few instructions. Out of line, with a copy per
/// word, it took about as long as a short compiled frame (counter:
/// `artifact_for` 72 samples against 103 for `run_native_with`).
#[derive(Default)]
pub struct PrefixHasher(u64);

impl Hasher for PrefixHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            self.write_u64(u64::from_le_bytes(w.try_into().expect("eight bytes")));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.write_u64(u64::from_le_bytes(b));
        }
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.0 = self.0.rotate_left(5) ^ i;
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.write_u64(i as u64);
    }
}

/// Artifacts by code hash and spec.
pub type ArtifactMap =
    HashMap<(B256, SpecId), Arc<LoadedArtifact>, BuildHasherDefault<PrefixHasher>>;

/// Why contracts without an artefact have none, by code hash and spec.
pub type ReasonMap = HashMap<(B256, SpecId), InterpretReason, BuildHasherDefault<PrefixHasher>>;

/// An artifact registered under another spec than it was compiled for.
#[derive(Debug, thiserror::Error)]
#[error("artifact for {code_hash} was compiled for {compiled_for}, not {registered_for}")]
pub struct SpecMismatch {
    /// The contract's code hash.
    pub code_hash: B256,
    /// The spec in its metadata.
    pub compiled_for: String,
    /// The spec it was registered under.
    pub registered_for: String,
}

/// Code hash and spec → compiled artifact: what [`crate::NativeEvm`] runs
/// natively. Reads are lock-free snapshots; shared in an `Arc`.
///
/// ```no_run
/// use evmc_compiler::SpecId;
/// use evmc_runtime::{ArtifactCache, Registry};
///
/// let cache = ArtifactCache::open(&ArtifactCache::default_dir())?;
/// let registry = Registry::new();
/// let code = [0x60, 0x01, 0x60, 0x02, 0x01, 0x00];
/// let mut opts = evmc_compiler::CompileOptions::new(SpecId::OSAKA);
/// opts.opt_level = 2;
/// let artifact = cache.get_or_compile(&code, &opts)?;
/// registry.register(SpecId::OSAKA, artifact)?;
/// assert!(registry.get(evmc_compiler::code_hash(&code), SpecId::OSAKA).is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Default)]
pub struct Registry {
    map: ArcSwap<ArtifactMap>,
    /// Published like `map`, under the same generation.
    reasons: ArcSwap<ReasonMap>,
    metrics: Arc<Metrics>,
    /// Bumped after every change of `map` or `reasons`: a reader whose snapshot is of
    /// the current generation keeps it without touching the `ArcSwap`
    /// (whose load and reference counting cost more than the rest of a
    /// small transaction's dispatch).
    generation: AtomicU64,
    /// Whether EVMs on this registry time their compiled frames against the
    /// interpreter and set aside artefacts that lose (see
    /// [`crate::safety_net`]); read at every transaction boundary.
    safety_net: AtomicBool,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("len", &self.map.load().len())
            .finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Turns the safety net on or off (off in a new registry): with it on,
    /// a compiled contract that runs slower than the interpreter is run
    /// interpreted, so enabling compilation never costs speed. A node
    /// wants it on; a checker that must run every compiled frame natively
    /// (differential tests, `statetest`) leaves it off. Results are the
    /// interpreter's either way.
    pub fn set_safety_net(&self, on: bool) {
        self.safety_net.store(on, Ordering::Relaxed);
    }

    /// Whether the safety net is on (see [`Registry::set_safety_net`]).
    pub fn safety_net(&self) -> bool {
        self.safety_net.load(Ordering::Relaxed)
    }

    /// The counters of everything running on this registry.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Records why `code_hash` has no artefact under `spec`; frames of it
    /// are then counted as interpreted for that reason. Registering an
    /// artefact for it later takes precedence.
    pub fn mark_interpreted(&self, code_hash: B256, spec: SpecId, reason: InterpretReason) {
        self.reasons.rcu(|m| {
            let mut m = ReasonMap::clone(m);
            m.insert((code_hash, spec), reason);
            m
        });
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The current reasons for contracts without an artefact.
    pub fn reasons(&self) -> Arc<ReasonMap> {
        self.reasons.load_full()
    }

    /// Makes `artifact` the executor for its code hash under `spec`.
    /// Refused when the artifact was compiled for another spec: its gas
    /// costs and opcode set are those of the spec it records.
    pub fn register(
        &self,
        spec: SpecId,
        artifact: Arc<LoadedArtifact>,
    ) -> Result<(), SpecMismatch> {
        let want = evmc_compiler::spec_name(spec);
        if artifact.spec() != want {
            return Err(SpecMismatch {
                code_hash: artifact.code_hash(),
                compiled_for: artifact.spec().to_string(),
                registered_for: want.to_string(),
            });
        }
        self.register_unchecked(spec, artifact);
        Ok(())
    }

    /// [`Registry::register`] without the spec check, for tests that need a
    /// wrong executor in place (to prove the checkers notice).
    #[doc(hidden)]
    pub fn register_unchecked(&self, spec: SpecId, artifact: Arc<LoadedArtifact>) {
        let key = (artifact.code_hash(), spec);
        self.map.rcu(|m| {
            let mut m = ArtifactMap::clone(m);
            m.insert(key, artifact.clone());
            m
        });
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Unregisters the artifact of `code_hash` for `spec`, if any.
    pub fn remove(&self, code_hash: B256, spec: SpecId) {
        self.map.rcu(|m| {
            let mut m = ArtifactMap::clone(m);
            m.remove(&(code_hash, spec));
            m
        });
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The current set of artifacts.
    pub fn snapshot(&self) -> Arc<ArtifactMap> {
        self.map.load_full()
    }

    /// Changes so far; read before [`Registry::snapshot`], a snapshot is at
    /// least as new as the generation read (see [`Registry::refresh`]).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Replaces `snapshot` (taken at generation `*seen`) with the current
    /// map, unless nothing changed since.
    pub fn refresh(&self, snapshot: &mut Arc<ArtifactMap>, seen: &mut u64) {
        let g = self.generation();
        if g != *seen {
            *snapshot = self.snapshot();
            *seen = g;
        }
    }

    /// The artifact of `code_hash` for `spec`, if registered.
    pub fn get(&self, code_hash: B256, spec: SpecId) -> Option<Arc<LoadedArtifact>> {
        self.map.load().get(&(code_hash, spec)).cloned()
    }

    /// Number of registered artifacts.
    pub fn len(&self) -> usize {
        self.map.load().len()
    }

    /// Whether nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn prefix_hasher_folds_every_word_and_the_tail() {
        let bytes: Vec<u8> = (1..=13).collect();
        let mut whole = PrefixHasher::default();
        whole.write(&bytes);
        let mut by_words = PrefixHasher::default();
        by_words.write_u64(u64::from_le_bytes(bytes[..8].try_into().unwrap()));
        by_words.write_u64(u64::from_le_bytes([9, 10, 11, 12, 13, 0, 0, 0]));
        assert_eq!(whole.finish(), by_words.finish());

        // A registry key: any word of the code hash, and the spec, count.
        let build = BuildHasherDefault::<PrefixHasher>::default();
        let key = |h: B256, s: SpecId| build.hash_one((h, s));
        let base = key(B256::repeat_byte(0x11), SpecId::CANCUN);
        for i in 0..32 {
            let mut h = B256::repeat_byte(0x11);
            h[i] ^= 1;
            assert_ne!(key(h, SpecId::CANCUN), base, "byte {i}");
        }
        assert_ne!(key(B256::repeat_byte(0x11), SpecId::PRAGUE), base);
    }
}
