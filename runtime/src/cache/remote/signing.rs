//! Publisher keys: an Ed25519 signature over what identifies an artefact
//! (the cache key's digest, the artefact's BLAKE3 and size), so a node that
//! trusts the publisher's public key can use a downloaded artefact without
//! recompiling it, whoever else can write to the store.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::Path;

/// A signature and the public key that made it, as stored with an object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seal {
    /// Hex Ed25519 public key (32 bytes).
    pub public_key: String,
    /// Hex Ed25519 signature (64 bytes) over [`signed_message`].
    pub signature: String,
}

/// The bytes a publisher signs: a domain tag, then the fields the loader
/// pins, so a signature can be replayed neither onto other bytes nor onto
/// another key (another contract, spec, compiler build or target).
pub fn signed_message(key_digest: &str, blake3_hex: &str, size: u64) -> Vec<u8> {
    format!(
        "evmc-native artefact signature 1\nkey={key_digest}\nblake3={blake3_hex}\nsize={size}\n"
    )
    .into_bytes()
}

/// Signs an artefact's identity with `key`.
pub fn seal(key: &SigningKey, key_digest: &str, blake3_hex: &str, size: u64) -> Seal {
    let sig = key.sign(&signed_message(key_digest, blake3_hex, size));
    Seal {
        public_key: hex::encode(key.verifying_key().as_bytes()),
        signature: hex::encode(sig.to_bytes()),
    }
}

/// Checks `seal` against the artefact's identity and the trusted keys;
/// the error says why the object is refused.
pub fn check(
    seal: Option<&Seal>,
    trusted: &[VerifyingKey],
    key_digest: &str,
    blake3_hex: &str,
    size: u64,
) -> Result<(), String> {
    let Some(seal) = seal else {
        return Err("object is unsigned and this node trusts only signed artefacts".into());
    };
    let public = parse_public_key(&seal.public_key)
        .map_err(|e| format!("object is signed with a malformed key: {e}"))?;
    if !trusted.contains(&public) {
        return Err(format!(
            "object is signed by {}, which is not a trusted publisher key",
            seal.public_key
        ));
    }
    let sig: [u8; 64] = hex::decode(&seal.signature)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or("object has a malformed signature")?;
    public
        .verify(
            &signed_message(key_digest, blake3_hex, size),
            &Signature::from_bytes(&sig),
        )
        .map_err(|_| {
            format!(
                "signature by {} does not match the artefact (wrong bytes, size or key)",
                seal.public_key
            )
        })
}

/// A hex public key (64 hex digits).
pub fn parse_public_key(hex_key: &str) -> Result<VerifyingKey, String> {
    let bytes: [u8; 32] = hex::decode(hex_key.trim().trim_start_matches("0x"))
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| format!("`{hex_key}` is not a 32-byte hex public key"))?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| format!("`{hex_key}`: {e}"))
}

/// Public keys separated by commas or whitespace (`EVMC_TRUSTED_KEYS`).
pub fn parse_public_keys(list: &str) -> Result<Vec<VerifyingKey>, String> {
    list.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(parse_public_key)
        .collect()
}

/// Reads a signing key file: the 32-byte secret seed as 64 hex digits.
pub fn read_signing_key(path: &Path) -> Result<SigningKey, String> {
    let text = crate::loader::read_regular_file(path, 1024).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&text);
    let seed: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| format!("{}: not a signing key (64 hex digits)", path.display()))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Makes a new signing key from the system's random source and writes it
/// to `path` (mode 0600, never over an existing file); returns it.
pub fn generate_signing_key(path: &Path) -> Result<SigningKey, String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .map_err(|e| format!("/dev/urandom: {e}"))?;
    let key = SigningKey::from_bytes(&seed);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| writeln!(f, "{}", hex::encode(seed)))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(key)
}
