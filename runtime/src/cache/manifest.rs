//! The manifest stored beside each artifact: its key, and the size and
//! content hash the artifact must have before anything else looks at it.

use super::key::CacheKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const MANIFEST_FILE: &str = "manifest.json";
pub const ARTIFACT_FILE: &str = "artifact.so";
/// A manifest is a few hundred bytes; anything much larger is not one.
pub const MAX_MANIFEST_SIZE: u64 = 64 * 1024;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub key: CacheKey,
    /// Hex SHA-256 of the artifact file.
    pub artifact_sha256: String,
    pub artifact_size: u64,
    pub code_size: usize,
    /// Seconds since the Unix epoch.
    pub created_unix: u64,
    pub compile_ms: f64,
    /// LLVM optimisation level actually used (the opt budget may lower it).
    pub effective_opt_level: u8,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Manifest {
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("manifest serialises")
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("unreadable manifest: {e}"))
    }
}
