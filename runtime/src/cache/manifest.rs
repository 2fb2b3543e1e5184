//! The manifest stored beside each artifact: its key, and the size and
//! content hash the artifact must have before anything else looks at it.

use super::key::{CacheKey, LAYOUT_VERSION};
use serde::{Deserialize, Serialize};

/// The manifest's file name in an entry.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The artifact's file name in an entry.
pub const ARTIFACT_FILE: &str = "artifact.so";
/// A manifest is a few hundred bytes; anything much larger is not one.
pub const MAX_MANIFEST_SIZE: u64 = 64 * 1024;

/// An entry's manifest (`manifest.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The cache format ([`LAYOUT_VERSION`]) the entry was written in;
    /// absent before version 2.
    #[serde(default = "format_before_versioning")]
    pub format: u32,
    /// The key the entry is stored under.
    pub key: CacheKey,
    /// Hex BLAKE3 of the artifact file ([`blake3_hex`]): what the store's
    /// signatures cover.
    #[serde(default)]
    pub artifact_blake3: String,
    /// Hex XXH3-128 of the artifact file ([`crate::loader::content_hash`]):
    /// what every cache hit verifies.
    #[serde(default)]
    pub artifact_xxh3: String,
    /// Size of the artifact file in bytes.
    pub artifact_size: u64,
    /// Length of the compiled bytecode in bytes.
    pub code_size: usize,
    /// Seconds since the Unix epoch.
    pub created_unix: u64,
    /// Wall time of the compile, in milliseconds.
    pub compile_ms: f64,
    /// LLVM optimisation level actually used (the opt budget may lower it).
    pub effective_opt_level: u8,
}

fn format_before_versioning() -> u32 {
    1
}

/// Hex BLAKE3 of an artifact: the hash a store signature covers.
pub fn blake3_hex(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// The hex checksum a manifest pins ([`crate::loader::content_hash`]).
pub fn content_hash_hex(bytes: &[u8]) -> String {
    format!("{:032x}", crate::loader::content_hash(bytes))
}

/// [`content_hash_hex`] read back; `None` unless 32 hex digits.
pub fn parse_content_hash(hex: &str) -> Option<u128> {
    // `from_str_radix` would also take a leading `+`.
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u128::from_str_radix(hex, 16).ok()
}

impl Manifest {
    /// The manifest as pretty-printed JSON.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("manifest serialises")
    }

    /// Parses a manifest of this cache format; one of another format (an
    /// entry written by an older or newer evmc-native) is refused.
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        let m: Self =
            serde_json::from_slice(bytes).map_err(|e| format!("unreadable manifest: {e}"))?;
        if m.format != LAYOUT_VERSION {
            return Err(format!(
                "manifest of cache format {}, this evmc-native reads format {LAYOUT_VERSION}",
                m.format
            ));
        }
        Ok(m)
    }
}
