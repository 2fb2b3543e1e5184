//! One store object per cache entry: the entry's manifest (the same one a
//! local entry has), the publisher's signature if any, and the artefact,
//! in a single object so that it is published or replaced whole.
//!
//! ```text
//! "evmc-native store object 1\n"  magic
//! u32 little-endian               length of the header
//! header                          JSON: {"manifest": Manifest, "seal": Seal | null}
//! artefact bytes                  the rest of the object
//! ```

use super::signing::Seal;
use crate::cache::manifest::{Manifest, MAX_MANIFEST_SIZE};
use serde::{Deserialize, Serialize};

const MAGIC: &[u8] = b"evmc-native store object 1\n";

#[derive(Serialize, Deserialize)]
struct Header {
    manifest: Manifest,
    seal: Option<Seal>,
}

/// A store object split into its parts; nothing in it is checked yet.
pub struct Bundle<'a> {
    /// The entry's manifest.
    pub manifest: Manifest,
    /// The publisher's signature, if signed.
    pub seal: Option<Seal>,
    /// The artifact's bytes.
    pub artifact: &'a [u8],
}

/// Encodes an object.
pub fn encode(manifest: &Manifest, seal: Option<&Seal>, artifact: &[u8]) -> Vec<u8> {
    let header = serde_json::to_vec(&serde_json::json!({ "manifest": manifest, "seal": seal }))
        .expect("header serialises");
    let mut out = Vec::with_capacity(MAGIC.len() + 4 + header.len() + artifact.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(artifact);
    out
}

/// Splits an object; the error says what is wrong with it.
pub fn decode(bytes: &[u8]) -> Result<Bundle<'_>, String> {
    let rest = bytes
        .strip_prefix(MAGIC)
        .ok_or("not an evmc-native store object (bad magic)")?;
    let (len, rest) = rest
        .split_first_chunk::<4>()
        .ok_or("object truncated in its header")?;
    let len = u32::from_le_bytes(*len) as usize;
    if len as u64 > MAX_MANIFEST_SIZE {
        return Err(format!("object header of {len} bytes is too large"));
    }
    if rest.len() < len {
        return Err("object truncated in its header".into());
    }
    let (header, artifact) = rest.split_at(len);
    let header: Header =
        serde_json::from_slice(header).map_err(|e| format!("unreadable object header: {e}"))?;
    // The same format check a local manifest gets.
    let manifest = Manifest::from_json(&header.manifest.to_json())?;
    Ok(Bundle {
        manifest,
        seal: header.seal,
        artifact,
    })
}
