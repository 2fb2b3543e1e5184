//! Listing, checking and trimming a cache directory (`evmc-native cache
//! ls | verify | gc`). Removal first renames an entry out of `entries/`, so
//! a concurrent lookup sees it whole or not at all.

use super::manifest::{Manifest, MANIFEST_FILE, MAX_MANIFEST_SIZE};
use super::owner;
use super::rejection::Rejection;
use super::store::{self, now_unix, EntryError, Layout};
use super::{validate_entry, CacheError};
use crate::loader::read_regular_file;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

/// Temporary files that do not name their owner process (see `owner`)
/// and are older than this belong to dead writers.
const STALE_TMP: Duration = Duration::from_secs(3600);

/// One entry of a cache directory, as `ls` lists it.
#[derive(Clone, Debug, Serialize)]
pub struct EntryInfo {
    /// The key digest (the directory name).
    pub digest: String,
    /// The entry's directory.
    pub path: PathBuf,
    /// Bytes on disk (manifest and artifact).
    pub size: u64,
    /// Last lookup hit (the directory's mtime), seconds since the Unix epoch.
    pub last_used_unix: u64,
    /// The manifest, when it could be read.
    pub manifest: Option<Manifest>,
    /// Why the manifest could not be read, if it could not.
    pub problem: Option<String>,
    /// Built by another compiler build or for another interface version
    /// than this binary's ([`super::CacheKey::is_this_build`]): never used
    /// by this binary. False when the manifest is unreadable.
    pub other_build: bool,
}

/// What [`super::ArtifactCache::verify`] found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct VerifyReport {
    /// Entries checked.
    pub checked: usize,
    /// Entries that passed every check.
    pub ok: usize,
    /// Artifact bytes read and hashed.
    pub bytes_hashed: u64,
    /// Bad entries: moved to `quarantine/`, or left in place when the
    /// cache is read-only (`moved_to` is `None`).
    pub rejected: Vec<Rejection>,
    /// The cache could not be written: nothing was moved.
    pub read_only: bool,
}

/// What [`super::ArtifactCache::gc_with`] removes besides garbage
/// (temporaries of dead writers, quarantine, unreadable entries).
#[derive(Clone, Copy, Debug, Default)]
pub struct GcOptions {
    /// Then removes the least recently used entries until the cache is at
    /// most this many bytes.
    pub max_size: Option<u64>,
    /// First removes every entry built by another compiler build or for
    /// another interface version (entries of another cache layout are
    /// unreadable, so always removed).
    pub other_builds: bool,
}

/// What [`super::ArtifactCache::gc`] removed and kept.
#[derive(Clone, Debug, Default, Serialize)]
pub struct GcReport {
    /// Entries removed, those of `removed_other_builds` included.
    pub removed_entries: usize,
    /// Entries of another compiler build or interface version removed.
    pub removed_other_builds: usize,
    /// Quarantined entries removed.
    pub removed_quarantined: usize,
    /// Temporary build directories of dead writers removed.
    pub removed_temporary: usize,
    /// Bytes freed, everything removed included.
    pub freed_bytes: u64,
    /// Entries left.
    pub kept_entries: usize,
    /// Bytes of the entries left.
    pub kept_bytes: u64,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CacheError + '_ {
    move |source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The paths in `dir`, sorted; none when `dir` is missing (a read-only
/// cache need not have every directory).
fn children(dir: &Path) -> Result<Vec<PathBuf>, CacheError> {
    let rd = match std::fs::read_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        r => r.map_err(io(dir))?,
    };
    let mut v: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    v.sort();
    Ok(v)
}

/// Total size of a file or of a directory tree, not following symlinks.
fn disk_size(path: &Path) -> u64 {
    let Ok(md) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !md.is_dir() {
        return md.len();
    }
    std::fs::read_dir(path)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| disk_size(&e.path()))
                .sum()
        })
        .unwrap_or(0)
}

fn mtime_unix(path: &Path) -> u64 {
    std::fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn remove_any(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(md) if md.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

pub(super) fn ls(layout: &Layout) -> Result<Vec<EntryInfo>, CacheError> {
    let mut out = Vec::new();
    for path in children(&layout.entries)? {
        let digest = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let manifest = read_regular_file(&path.join(MANIFEST_FILE), MAX_MANIFEST_SIZE)
            .map_err(|e| e.to_string())
            .and_then(|b| Manifest::from_json(&b));
        let (manifest, problem) = match manifest {
            Ok(m) => (Some(m), None),
            Err(e) => (None, Some(e)),
        };
        let other_build = manifest.as_ref().is_some_and(|m| !m.key.is_this_build());
        out.push(EntryInfo {
            other_build,
            digest,
            size: disk_size(&path),
            last_used_unix: mtime_unix(&path),
            path,
            manifest,
            problem,
        });
    }
    Ok(out)
}

/// Checks every entry as a lookup would, trust of the directories
/// included; bad ones are moved aside when `writable`, else only reported.
pub(super) fn verify(layout: &Layout, writable: bool) -> Result<VerifyReport, CacheError> {
    let mut report = VerifyReport {
        read_only: !writable,
        ..Default::default()
    };
    for dir in children(&layout.entries)? {
        report.checked += 1;
        // (reason, whether the entry itself is at fault and may be moved)
        let problem = match layout.read_entry(&dir) {
            // Removed since the listing.
            Ok(None) => {
                report.checked -= 1;
                continue;
            }
            Ok(Some(store::Entry {
                manifest: m,
                artifact: file,
                ..
            })) => {
                report.bytes_hashed += file.len();
                if let Some(p) = layout.untrusted_dirs() {
                    Some((p, false))
                } else if let Some(p) = file.trust_problem() {
                    Some((p.to_string(), true))
                } else {
                    validate_entry(&m, file)
                        .err()
                        .map(|e| (e.to_string(), true))
                }
            }
            Err(EntryError::Bad(reason)) => Some((reason, true)),
            Err(EntryError::Transient(e)) => return Err(e),
        };
        match problem {
            None => report.ok += 1,
            Some((reason, true)) if writable => {
                report.rejected.push(layout.quarantine(&dir, &reason))
            }
            Some((reason, _)) => report.rejected.push(Rejection {
                entry: dir,
                reason,
                moved_to: None,
            }),
        }
    }
    for r in &report.rejected {
        r.trace();
    }
    Ok(report)
}

pub(super) fn gc(layout: &Layout, opts: GcOptions) -> Result<GcReport, CacheError> {
    let mut report = GcReport::default();
    let now = now_unix();
    for path in children(&layout.tmp)? {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        // A directory that names its owner is stale exactly when the owner
        // is gone (however long a live one takes); others after a grace.
        let stale = owner::owner_gone(name)
            .unwrap_or_else(|| now.saturating_sub(mtime_unix(&path)) >= STALE_TMP.as_secs());
        if !stale {
            continue;
        }
        let size = disk_size(&path);
        if remove_any(&path).is_ok() {
            report.removed_temporary += 1;
            report.freed_bytes += size;
        }
    }
    for path in children(&layout.quarantine)? {
        let size = disk_size(&path);
        if remove_any(&path).is_ok() {
            report.removed_quarantined += 1;
            report.freed_bytes += size;
        }
    }
    let mut entries = ls(layout)?;
    if opts.other_builds {
        // Before the size limit: what this binary cannot use goes first.
        entries.retain(|e| {
            if !e.other_build {
                return true;
            }
            if evict(layout, &e.path).is_err() {
                report.kept_entries += 1;
                report.kept_bytes += e.size;
            } else {
                report.removed_entries += 1;
                report.removed_other_builds += 1;
                report.freed_bytes += e.size;
            }
            false
        });
    }
    let max_size = opts.max_size;
    // Unreadable entries go first, then the least recently used.
    entries.sort_by_key(|e| (e.manifest.is_some(), e.last_used_unix));
    let mut total: u64 = entries.iter().map(|e| e.size).sum();
    for e in entries {
        let over = max_size.is_some_and(|max| total > max);
        if e.manifest.is_some() && !over {
            report.kept_entries += 1;
            report.kept_bytes += e.size;
            continue;
        }
        if evict(layout, &e.path).is_ok() {
            report.removed_entries += 1;
            report.freed_bytes += e.size;
            total -= e.size;
        } else {
            report.kept_entries += 1;
            report.kept_bytes += e.size;
        }
    }
    Ok(report)
}

/// Renames the entry out of `entries/` (atomic for readers), then deletes it.
fn evict(layout: &Layout, entry: &Path) -> std::io::Result<()> {
    let grave = tempfile::Builder::new()
        .prefix(&owner::prefix("evict"))
        .tempdir_in(&layout.tmp)?;
    let dest = grave.path().join("entry");
    std::fs::rename(entry, &dest)?;
    // Dropping `grave` removes it with its content.
    drop(grave);
    Ok(())
}
