//! Which code hashes run natively, for which spec.
//!
//! Readers take a snapshot with one atomic load (no lock, no allocation);
//! writers publish a new map. Artifacts stay loaded while any snapshot or
//! running frame still holds them.

use crate::loader::LoadedArtifact;
use arc_swap::ArcSwap;
use evmc_compiler::{SpecId, B256};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

/// Code hashes are keccak outputs: their first bytes are already uniform.
#[derive(Default)]
pub struct PrefixHasher(u64);

impl Hasher for PrefixHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(b);
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.0 = self.0.rotate_left(5) ^ i as u64;
    }
}

pub type ArtifactMap =
    HashMap<(B256, SpecId), Arc<LoadedArtifact>, BuildHasherDefault<PrefixHasher>>;

#[derive(Default)]
pub struct Registry {
    map: ArcSwap<ArtifactMap>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("len", &self.map.load().len())
            .finish()
    }
}

impl Registry {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Makes `artifact` the executor for its code hash under `spec`.
    pub fn register(&self, spec: SpecId, artifact: Arc<LoadedArtifact>) {
        let key = (artifact.code_hash(), spec);
        self.map.rcu(|m| {
            let mut m = ArtifactMap::clone(m);
            m.insert(key, artifact.clone());
            m
        });
    }

    pub fn remove(&self, code_hash: B256, spec: SpecId) {
        self.map.rcu(|m| {
            let mut m = ArtifactMap::clone(m);
            m.remove(&(code_hash, spec));
            m
        });
    }

    /// The current set of artifacts.
    pub fn snapshot(&self) -> Arc<ArtifactMap> {
        self.map.load_full()
    }

    pub fn get(&self, code_hash: B256, spec: SpecId) -> Option<Arc<LoadedArtifact>> {
        self.map.load().get(&(code_hash, spec)).cloned()
    }

    pub fn len(&self) -> usize {
        self.map.load().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
