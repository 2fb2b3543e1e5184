//! The second tier of the artifact cache: a store shared by many nodes, on
//! S3-compatible object storage (`s3://bucket/prefix`) or in a directory
//! (`file:///path`).
//!
//! A local miss asks the store before compiling, and a compiled artefact
//! is published to it after the local publish. One object per key holds
//! the entry's manifest, the publisher's signature and the artefact
//! ([`bundle`]); it is published put-if-absent, so publishers racing on one
//! key end with one whole object.
//!
//! A downloaded object is used only when it passes everything a local
//! entry passes (key, size, BLAKE3, the loader's ELF and metadata checks)
//! and is signed by a publisher key the node trusts ([`signing`]). A node
//! without trusted keys never uses a downloaded artefact directly: it
//! compiles, and its publish then compares its own bytes with the stored
//! object (reproducible artefacts make them equal). A refused object is
//! never kept locally; the refusal is reported with its reason through
//! [`ArtifactCache::take_rejections`] and a `tracing` warning, and the
//! contract is compiled locally (or runs interpreted).
//!
//! Every store call has a deadline ([`client::LOOKUP_TIMEOUT`],
//! [`client::UPLOAD_TIMEOUT`]); a store that does not answer is left alone
//! for a growing backoff, with one warning, and the cache works locally
//! meanwhile. Store calls happen only where compiles happen (a hot node's
//! background compile threads, an up-front compile, the warm-up of
//! [`ArtifactCache::prefetch`]), never in a lookup by [`ArtifactCache::get`].

pub mod bundle;
pub mod client;
pub mod signing;

use super::manifest::{blake3_hex, Manifest, ARTIFACT_FILE, MAX_MANIFEST_SIZE};
use super::{entry_loader, ArtifactCache, CacheError, CacheKey, Rejection};
use crate::loader::{LoadedArtifact, MAX_ARTIFACT_SIZE};
pub use client::{ListedObject, StoreClient, StoreError};
pub use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Largest object a lookup downloads: the largest artefact and header.
const MAX_OBJECT_SIZE: u64 = MAX_ARTIFACT_SIZE + MAX_MANIFEST_SIZE + 64;

/// Where the store is and whom to trust.
#[derive(Clone)]
pub struct StoreConfig {
    /// `s3://bucket/prefix` or `file:///path`.
    pub url: String,
    /// Signs what this node publishes; unsigned without one.
    pub sign_key: Option<SigningKey>,
    /// Publishers whose signed artefacts this node uses without compiling.
    pub trusted: Vec<VerifyingKey>,
}

impl StoreConfig {
    /// The store at `url`, signing with the key file named by
    /// `EVMC_SIGN_KEY` and trusting the keys of `EVMC_TRUSTED_KEYS`
    /// (hex, separated by commas or spaces), if set.
    pub fn from_env(url: &str) -> Result<Self, String> {
        let var = |name| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let sign_key = var("EVMC_SIGN_KEY")
            .map(|p| signing::read_signing_key(std::path::Path::new(&p)))
            .transpose()?;
        let trusted = var("EVMC_TRUSTED_KEYS")
            .map(|v| signing::parse_public_keys(&v))
            .transpose()?
            .unwrap_or_default();
        Ok(Self {
            url: url.to_string(),
            sign_key,
            trusted,
        })
    }
}

/// Downloads in flight at once in [`ArtifactCache::prefetch`] and
/// [`ArtifactCache::pull`].
const FETCH_THREADS: usize = 8;

/// `f` over `items` on up to [`FETCH_THREADS`] threads (downloads are
/// bound by the store's latency); the results in no particular order.
fn in_parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::with_capacity(items.len()));
    std::thread::scope(|s| {
        for _ in 0..items.len().min(FETCH_THREADS) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                let r = f(item);
                results.lock().expect("not poisoned").push(r);
            });
        }
    });
    results.into_inner().expect("not poisoned")
}

/// The store tier of one cache.
pub struct RemoteTier {
    client: StoreClient,
    sign_key: Option<SigningKey>,
    trusted: Vec<VerifyingKey>,
}

/// What [`ArtifactCache::prefetch`] did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PrefetchReport {
    /// Keys asked for.
    pub requested: usize,
    /// Keys the local cache had already.
    pub already_local: usize,
    /// Objects downloaded, checked and kept.
    pub fetched: usize,
    /// Not in the store.
    pub missing: usize,
    /// In the store but refused (see the rejections).
    pub refused: usize,
    /// Lookups that failed: store unreachable, too slow, or an error.
    pub failed: usize,
    /// Wall time in seconds.
    pub secs: f64,
}

/// What [`ArtifactCache::push`] or [`ArtifactCache::pull`] did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SyncReport {
    /// Entries copied.
    pub copied: usize,
    /// Already at the destination.
    pub present: usize,
    /// Refused or failed, with the reason.
    pub failed: Vec<(String, String)>,
}

/// One store object as [`ArtifactCache::store_verify`] found it.
#[derive(Clone, Debug, Serialize)]
pub struct StoreEntry {
    /// The key digest the object is stored under.
    pub digest: String,
    /// Object size in bytes.
    pub size: u64,
    /// The object's manifest, when it could be decoded.
    pub manifest: Option<Manifest>,
    /// Hex public key of the signer, if signed.
    pub signed_by: Option<String>,
    /// Why it is refused, if it is.
    pub problem: Option<String>,
}

impl RemoteTier {
    /// The store client.
    pub fn client(&self) -> &StoreClient {
        &self.client
    }

    /// Whether downloaded artefacts can be used (some publisher is trusted).
    pub fn trusts_anyone(&self) -> bool {
        !self.trusted.is_empty()
    }

    /// Every check an object must pass to be used for `key`; returns its
    /// manifest and artefact bytes, or why it is refused.
    fn check(
        &self,
        key: &CacheKey,
        object: &[u8],
        need_trust: bool,
    ) -> Result<(Manifest, Vec<u8>, Option<String>), String> {
        let b = bundle::decode(object)?;
        // A copy of its own: the ELF parser needs the bytes aligned, which
        // they are not at an arbitrary offset of the object.
        let artifact = b.artifact.to_vec();
        let m = b.manifest;
        if &m.key != key {
            return Err(describe_key_mismatch(&m.key, key));
        }
        if b.artifact.len() as u64 != m.artifact_size {
            return Err(format!(
                "artefact is {} bytes, its manifest says {} (truncated or padded object)",
                b.artifact.len(),
                m.artifact_size
            ));
        }
        let hash = blake3_hex(b.artifact);
        if hash != m.artifact_blake3 {
            return Err(format!(
                "artefact's BLAKE3 is {hash}, its manifest says {} (tampered object)",
                m.artifact_blake3
            ));
        }
        if need_trust || b.seal.is_some() && self.trusts_anyone() {
            signing::check(
                b.seal.as_ref(),
                &self.trusted,
                &key.digest_hex(),
                &m.artifact_blake3,
                m.artifact_size,
            )?;
        }
        let name = PathBuf::from(self.client.object_url(&key.digest_hex()));
        entry_loader(&name, &m)
            .and_then(|l| {
                l.validate(crate::loader::Source::Bytes {
                    path: &name,
                    bytes: &artifact,
                })
            })
            .map_err(|e| strip_prefix(&e.to_string(), &name))?;
        let signer = b.seal.map(|s| s.public_key);
        Ok((m, artifact, signer))
    }
}

/// What differs between the key an object claims and the one asked for.
fn describe_key_mismatch(found: &CacheKey, wanted: &CacheKey) -> String {
    let what = if found.code_hash != wanted.code_hash {
        format!("another contract ({})", found.code_hash)
    } else if found.compiler_version != wanted.compiler_version {
        format!("another compiler build ({})", found.compiler_version)
    } else if found.spec != wanted.spec {
        format!("another spec ({})", found.spec)
    } else {
        "another key (options or target)".to_string()
    };
    format!("object under this key is for {what}")
}

fn strip_prefix(msg: &str, name: &std::path::Path) -> String {
    let p = format!("{}: ", name.display());
    msg.strip_prefix(&p).unwrap_or(msg).to_string()
}

impl ArtifactCache {
    /// Adds the store tier described by `config` (nothing is contacted yet).
    pub fn with_store(mut self, config: StoreConfig) -> Result<Self, String> {
        self.remote = Some(RemoteTier {
            client: StoreClient::open(&config.url)?,
            sign_key: config.sign_key,
            trusted: config.trusted,
        });
        Ok(self)
    }

    /// The store tier, if configured.
    pub fn store(&self) -> Option<&RemoteTier> {
        self.remote.as_ref()
    }

    fn reject_remote(&self, digest: &str, reason: String) {
        let url = self
            .remote
            .as_ref()
            .map(|r| r.client.object_url(digest))
            .unwrap_or_default();
        // Pushing warns through `tracing` too.
        self.rejections.push(Rejection {
            entry: PathBuf::from(url),
            reason,
            moved_to: None,
        });
    }

    /// Downloads the object for `key` into the local cache if it passes
    /// every check. `Ok(true)` when the local cache now has it.
    fn fetch_to_local(&self, key: &CacheKey) -> Result<Fetch, CacheError> {
        self.fetch_object(&key.digest_hex(), Some(key))
            .map(|(fetch, _)| fetch)
    }

    /// Downloads the store object named `digest` once, checks it (for
    /// `key`, or for the key its own manifest names, which must be the one
    /// its name says) and keeps it in the local cache. The reason comes
    /// with a refusal.
    fn fetch_object(
        &self,
        digest: &str,
        key: Option<&CacheKey>,
    ) -> Result<(Fetch, Option<String>), CacheError> {
        let Some(remote) = &self.remote else {
            return Ok((Fetch::Missing, None));
        };
        if !remote.trusts_anyone() {
            return Ok((Fetch::Missing, None));
        }
        let object = match remote.client.get(digest, MAX_OBJECT_SIZE) {
            Ok(Some(o)) => o,
            Ok(None) => return Ok((Fetch::Missing, None)),
            Err(StoreError::Unavailable(e)) => return Ok((Fetch::Failed, Some(e.to_string()))),
            Err(StoreError::Failed(e)) => {
                tracing::warn!("artefact store {}: {e}", remote.client.url());
                return Ok((Fetch::Failed, Some(e)));
            }
        };
        let named;
        let key = match key {
            Some(k) => k,
            None => match bundle::decode(&object) {
                Ok(b) if b.manifest.key.digest_hex() == digest => {
                    named = b.manifest.key;
                    &named
                }
                Ok(_) => {
                    let reason = "object's manifest is for another key than its name".to_string();
                    self.reject_remote(digest, reason.clone());
                    return Ok((Fetch::Refused, Some(reason)));
                }
                Err(reason) => {
                    self.reject_remote(digest, reason.clone());
                    return Ok((Fetch::Refused, Some(reason)));
                }
            },
        };
        let (manifest, artifact) = match remote.check(key, &object, true) {
            Ok((m, a, _)) => (m, a),
            Err(reason) => {
                self.reject_remote(digest, reason.clone());
                return Ok((Fetch::Refused, Some(reason)));
            }
        };
        let build = self.layout.build_dir()?;
        let out = build.path().join(ARTIFACT_FILE);
        std::fs::write(&out, &artifact).map_err(|source| CacheError::Io {
            path: out.clone(),
            source,
        })?;
        self.layout.publish(build, &manifest)?;
        Ok((Fetch::Local, None))
    }

    /// The store's artefact for `key`, checked, kept locally and loaded;
    /// `None` when the store has none that this node may use.
    pub(super) fn fetch_remote(
        &self,
        key: &CacheKey,
    ) -> Result<Option<Arc<LoadedArtifact>>, CacheError> {
        match self.fetch_to_local(key)? {
            Fetch::Local => self.get_key(key),
            _ => Ok(None),
        }
    }

    /// Publishes a freshly compiled artefact to the store (signed if this
    /// node has a key). Failures are warnings: the local entry stands.
    pub(super) fn publish_remote(&self, manifest: &Manifest, artifact: &[u8]) {
        let Some(remote) = &self.remote else { return };
        match self.put_remote(remote, manifest, artifact) {
            // The breaker has warned once for the outage.
            Ok(_) | Err(StoreError::Unavailable(_)) => {}
            Err(StoreError::Failed(reason)) => {
                tracing::warn!("artefact store {}: {reason}", remote.client.url());
            }
        }
    }

    /// `Ok(true)` if stored, `Ok(false)` if an equal artefact was there.
    fn put_remote(
        &self,
        remote: &RemoteTier,
        manifest: &Manifest,
        artifact: &[u8],
    ) -> Result<bool, StoreError> {
        let digest = manifest.key.digest_hex();
        let seal = remote.sign_key.as_ref().map(|k| {
            signing::seal(
                k,
                &digest,
                &manifest.artifact_blake3,
                manifest.artifact_size,
            )
        });
        let object = bundle::encode(manifest, seal.as_ref(), artifact);
        if remote.client.put_if_absent(&digest, object)? {
            return Ok(true);
        }
        // Another publisher was first: fine if it stored what we built.
        let existing = remote
            .client
            .get(&digest, MAX_OBJECT_SIZE)?
            .ok_or_else(|| {
                StoreError::Failed("object vanished after a conflicting upload".into())
            })?;
        match remote.check(&manifest.key, &existing, false) {
            Ok((_, bytes, _)) if bytes.as_slice() == artifact => Ok(false),
            Ok(_) => {
                let reason = "store holds different bytes for this key than this node compiled \
                              (a non-reproducible build, or a forged object)"
                    .to_string();
                self.reject_remote(&digest, reason.clone());
                Err(StoreError::Failed(reason))
            }
            Err(reason) => {
                self.reject_remote(&digest, reason.clone());
                Err(StoreError::Failed(reason))
            }
        }
    }

    /// Warm-up: copies the store's artefacts for `keys` into the local
    /// cache, several at a time, so that later lookups hit locally.
    pub fn prefetch(&self, keys: &[CacheKey]) -> PrefetchReport {
        let start = Instant::now();
        let mut report = PrefetchReport {
            requested: keys.len(),
            ..Default::default()
        };
        let todo: Vec<&CacheKey> = keys
            .iter()
            .filter(|k| !self.layout.entry_dir(&k.digest_hex()).exists())
            .collect();
        report.already_local = keys.len() - todo.len();
        let results = in_parallel(&todo, |key| {
            self.fetch_to_local(key).unwrap_or(Fetch::Failed)
        });
        for r in results {
            match r {
                Fetch::Local => report.fetched += 1,
                Fetch::Missing => report.missing += 1,
                Fetch::Refused => report.refused += 1,
                Fetch::Failed => report.failed += 1,
            }
        }
        report.secs = start.elapsed().as_secs_f64();
        report
    }

    /// Publishes every valid local entry to the store.
    pub fn push(&self) -> Result<SyncReport, CacheError> {
        let mut report = SyncReport::default();
        let Some(remote) = &self.remote else {
            return Ok(report);
        };
        for e in self.ls()? {
            let Some(m) = e.manifest else { continue };
            let path = e.path.join(ARTIFACT_FILE);
            let bytes = match crate::loader::read_regular_file(&path, MAX_ARTIFACT_SIZE) {
                Ok(b) if blake3_hex(&b) == m.artifact_blake3 => b,
                Ok(_) => {
                    report.failed.push((
                        e.digest,
                        "local artefact does not match its manifest".into(),
                    ));
                    continue;
                }
                Err(err) => {
                    report.failed.push((e.digest, err.to_string()));
                    continue;
                }
            };
            match self.put_remote(remote, &m, &bytes) {
                Ok(true) => report.copied += 1,
                Ok(false) => report.present += 1,
                Err(reason) => report.failed.push((e.digest, reason.to_string())),
            }
        }
        Ok(report)
    }

    /// Copies every store object this node may use into the local cache,
    /// each downloaded once, eight at a time (a standby's
    /// warm-up is bound by the store's latency, not by the checks).
    pub fn pull(&self) -> Result<SyncReport, CacheError> {
        let mut report = SyncReport::default();
        let Some(remote) = &self.remote else {
            return Ok(report);
        };
        let listed = remote.client.list().map_err(|e| store_failure(remote, e))?;
        let todo: Vec<&ListedObject> = listed
            .iter()
            .filter(|o| !self.layout.entry_dir(&o.digest).exists())
            .collect();
        report.present = listed.len() - todo.len();
        if !remote.trusts_anyone() {
            // Nothing would be used: say why for each object.
            for o in todo {
                report.failed.push((
                    o.digest.clone(),
                    "no trusted publisher key configured".into(),
                ));
            }
            return Ok(report);
        }
        let results = in_parallel(&todo, |o| {
            (o.digest.clone(), self.fetch_object(&o.digest, None))
        });
        for (digest, r) in results {
            match r {
                Ok((Fetch::Local, _)) => report.copied += 1,
                Ok((_, reason)) => report.failed.push((
                    digest,
                    reason.unwrap_or_else(|| "refused or unavailable on download".into()),
                )),
                Err(e) => report.failed.push((digest, e.to_string())),
            }
        }
        report.failed.sort();
        Ok(report)
    }

    /// Downloads and checks one listed object, as a lookup for the key its
    /// manifest names would (signature only if this node trusts keys).
    fn inspect(&self, remote: &RemoteTier, o: &ListedObject) -> StoreEntry {
        let mut entry = StoreEntry {
            digest: o.digest.clone(),
            size: o.size,
            manifest: None,
            signed_by: None,
            problem: None,
        };
        let object = match remote.client.get(&o.digest, MAX_OBJECT_SIZE) {
            Ok(Some(b)) => b,
            Ok(None) => {
                entry.problem = Some("vanished while listed".into());
                return entry;
            }
            Err(e) => {
                entry.problem = Some(e.to_string());
                return entry;
            }
        };
        let key = match bundle::decode(&object) {
            Ok(b) => b.manifest.key,
            Err(e) => {
                entry.problem = Some(e);
                return entry;
            }
        };
        if key.digest_hex() != o.digest {
            entry.problem = Some("object's manifest is for another key than its name".into());
            return entry;
        }
        match remote.check(&key, &object, remote.trusts_anyone()) {
            Ok((m, _, signer)) => {
                entry.manifest = Some(m);
                entry.signed_by = signer;
            }
            Err(e) => entry.problem = Some(e),
        }
        entry
    }

    /// Every store object, downloaded and checked.
    pub fn store_verify(&self) -> Result<Vec<StoreEntry>, CacheError> {
        let Some(remote) = &self.remote else {
            return Ok(Vec::new());
        };
        let listed = remote.client.list().map_err(|e| store_failure(remote, e))?;
        Ok(listed.iter().map(|o| self.inspect(remote, o)).collect())
    }

    /// The store's objects without downloading them.
    pub fn store_ls(&self) -> Result<Vec<ListedObject>, CacheError> {
        match &self.remote {
            Some(remote) => remote.client.list().map_err(|e| store_failure(remote, e)),
            None => Ok(Vec::new()),
        }
    }

    /// Removes store objects that fail their checks or were built by
    /// another compiler build than this one; returns what it removed.
    pub fn store_gc(&self) -> Result<Vec<StoreEntry>, CacheError> {
        let Some(remote) = &self.remote else {
            return Ok(Vec::new());
        };
        let mut removed = Vec::new();
        for mut e in self.store_verify()? {
            if e.problem.is_none() {
                match &e.manifest {
                    Some(m) if m.key.compiler_version != evmc_compiler::COMPILER_BUILD_ID => {
                        e.problem = Some(format!("built by compiler {}", m.key.compiler_version));
                    }
                    _ => continue,
                }
            }
            remote
                .client
                .delete(&e.digest)
                .map_err(|err| store_failure(remote, err))?;
            removed.push(e);
        }
        Ok(removed)
    }
}

/// A store failure in a maintenance command, as a cache error.
fn store_failure(remote: &RemoteTier, e: StoreError) -> CacheError {
    CacheError::Unusable {
        path: PathBuf::from(remote.client.url()),
        reason: e.to_string(),
    }
}

/// What became of one download.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fetch {
    Local,
    Missing,
    Refused,
    Failed,
}
