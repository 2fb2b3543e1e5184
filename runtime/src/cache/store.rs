//! The directory layout and the only operations that change it: publish an
//! entry (a complete directory renamed into place), move one aside, read
//! one. Every change is a single `rename`, so a reader sees an entry whole
//! or not at all, whatever other processes do at the same time.
//!
//! ```text
//! <root>/CACHEDIR.TAG
//! <root>/entries/<key digest>/{manifest.json, artifact.so}
//! <root>/tmp/…                 entries being built (named for their owner
//!                              process, see `owner`), removed when it is gone
//! <root>/quarantine/<digest>.<time>.<pid>.<n>/{entry, reason.txt}
//! ```

use super::manifest::{Manifest, ARTIFACT_FILE, MANIFEST_FILE, MAX_MANIFEST_SIZE};
use super::rejection::Rejection;
use super::{owner, CacheError};
use crate::loader::{open_artifact, read_regular_file, trust_problem, LoadError, OpenedArtifact};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

const CACHEDIR_TAG: &str = "Signature: 8a477f597d28d172789f06886806bc55\n\
# This directory is an evmc-native artifact cache; backup tools may skip it.\n";

#[derive(Clone, Debug)]
pub(super) struct Layout {
    pub root: PathBuf,
    pub entries: PathBuf,
    pub tmp: PathBuf,
    pub quarantine: PathBuf,
}

/// Why reading an entry failed.
pub(super) enum EntryError {
    /// The entry is bad: it must be moved aside.
    Bad(String),
    /// The process or system is in trouble (no file descriptors, no memory),
    /// not the entry.
    Transient(CacheError),
}

pub(super) fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The error of a write to a directory we may only read. By kind too:
/// `tempfile` wraps the OS error with the path, losing its number.
pub(super) fn is_read_only(e: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        e.raw_os_error(),
        Some(libc::EACCES | libc::EPERM | libc::EROFS)
    ) || matches!(
        e.kind(),
        ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem
    )
}

pub(super) fn is_transient(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM | libc::EAGAIN | libc::EINTR)
    )
}

impl Layout {
    pub(super) fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
            entries: root.join("entries"),
            tmp: root.join("tmp"),
            quarantine: root.join("quarantine"),
        }
    }

    /// Creates the directories and proves that they can be written;
    /// returns whether they can. A directory that exists, is readable but
    /// cannot be written (a cache shared read-only, a read-only mount) is
    /// a read-only cache, which still serves hits: `Ok(false)`. One that
    /// is missing and cannot be created, is not a directory or cannot be
    /// read is a clear [`CacheError::Unusable`].
    pub(super) fn create(&self) -> Result<bool, CacheError> {
        let unusable = |path: &Path, what: &str, e: std::io::Error| CacheError::Unusable {
            path: path.to_path_buf(),
            reason: format!("{what}: {e}"),
        };
        let mut writable = true;
        for dir in [&self.root, &self.entries, &self.tmp, &self.quarantine] {
            // Not writable by group or others whatever the umask: lookups
            // refuse entries under such directories.
            let made = std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(dir);
            match made {
                Ok(()) => {}
                // Under the root: missing is an empty part of a cache we
                // only read.
                Err(e) if dir != &self.root && is_read_only(&e) => {
                    writable = false;
                    if !dir.exists() {
                        continue;
                    }
                }
                Err(e) if is_read_only(&e) && dir.is_dir() => writable = false,
                Err(e) => return Err(unusable(dir, "cannot create", e)),
            }
            // The root may be a symlink (users relocate caches); what is
            // inside must be real directories.
            let md = if dir == &self.root {
                std::fs::metadata(dir)
            } else {
                std::fs::symlink_metadata(dir)
            };
            let md = md.map_err(|e| unusable(dir, "cannot stat", e))?;
            if !md.is_dir() {
                return Err(CacheError::Unusable {
                    path: dir.clone(),
                    reason: "not a directory".into(),
                });
            }
        }
        std::fs::read_dir(&self.root).map_err(|e| unusable(&self.root, "cannot read", e))?;
        if writable {
            match tempfile::Builder::new()
                .prefix(".write-probe-")
                .tempfile_in(&self.tmp)
            {
                Ok(probe) => drop(probe),
                Err(e) if is_read_only(&e) => writable = false,
                Err(e) => return Err(unusable(&self.tmp, "not writable", e)),
            }
        }
        if !writable {
            return Ok(false);
        }
        self.tighten_own_dirs();
        let tag = self.root.join("CACHEDIR.TAG");
        if !tag.exists() {
            let mut f = tempfile::NamedTempFile::new_in(&self.tmp)
                .map_err(|e| unusable(&self.tmp, "not writable", e))?;
            f.write_all(CACHEDIR_TAG.as_bytes())
                .map_err(|e| unusable(&self.tmp, "not writable", e))?;
            // Another process may have written it first: either copy is fine.
            let _ = f.persist(&tag);
        }
        Ok(true)
    }

    /// Removes group and other write permission from the directories the
    /// cache made under its root (earlier versions made them under the
    /// umask, 0775 under a umask of 002), where they are ours; the root
    /// itself is the user's choice and is only checked.
    fn tighten_own_dirs(&self) {
        use std::os::unix::fs::MetadataExt;
        // SAFETY: plain syscall without arguments.
        let euid = unsafe { libc::geteuid() };
        for dir in [&self.entries, &self.tmp, &self.quarantine] {
            if let Ok(md) = std::fs::symlink_metadata(dir) {
                if md.is_dir() && md.uid() == euid && md.mode() & 0o022 != 0 {
                    let mode = md.mode() & 0o7755;
                    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode));
                }
            }
        }
    }

    /// Removes the temporary directories in `tmp/` whose owner process is
    /// gone (see `owner`); returns those removed.
    pub(super) fn remove_dead_temporaries(&self) -> Vec<PathBuf> {
        let Ok(rd) = std::fs::read_dir(&self.tmp) else {
            return Vec::new();
        };
        let mut removed = Vec::new();
        for e in rd.flatten() {
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            if owner::owner_is_dead(name) && std::fs::remove_dir_all(e.path()).is_ok() {
                removed.push(e.path());
            }
        }
        removed
    }

    /// Why the cache's own directories (root and `entries/`) could be
    /// changed by someone this process does not trust, if they could.
    pub(super) fn untrusted_dirs(&self) -> Option<String> {
        let check = |dir: &Path, md: std::io::Result<std::fs::Metadata>| match md {
            Ok(md) => trust_problem(&md).map(|p| format!("{} is {p}", dir.display())),
            Err(e) => Some(format!("{}: cannot stat: {e}", dir.display())),
        };
        check(&self.root, std::fs::metadata(&self.root))
            .or_else(|| check(&self.entries, std::fs::symlink_metadata(&self.entries)))
    }

    pub(super) fn entry_dir(&self, digest: &str) -> PathBuf {
        self.entries.join(digest)
    }

    /// Reads an entry's manifest and opens its artifact. Checks that they
    /// are regular files and that the manifest belongs under this name; the
    /// artifact's content is read and checked by the loader.
    pub(super) fn read_entry(&self, dir: &Path) -> Result<Option<Entry>, EntryError> {
        let md = match std::fs::symlink_metadata(dir) {
            Ok(md) => md,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) if is_transient(&e) => {
                return Err(EntryError::Transient(CacheError::Io {
                    path: dir.to_path_buf(),
                    source: e,
                }))
            }
            Err(e) => return Err(EntryError::Bad(format!("cannot stat entry: {e}"))),
        };
        if !md.is_dir() {
            return Err(EntryError::Bad(
                "entry is not a directory (symlink or file in its place)".into(),
            ));
        }
        let entry_error = |name: &'static str| {
            move |e: LoadError| match e {
                LoadError::Io { path, source } if is_transient(&source) => {
                    EntryError::Transient(CacheError::Io { path, source })
                }
                LoadError::NotAFile { .. } => {
                    EntryError::Bad(format!("{name} is not a regular file"))
                }
                e => EntryError::Bad(format!("{name}: {}", strip_path(&e.to_string()))),
            }
        };
        let manifest = read_regular_file(&dir.join(MANIFEST_FILE), MAX_MANIFEST_SIZE)
            .map_err(entry_error(MANIFEST_FILE))?;
        let manifest = Manifest::from_json(&manifest).map_err(EntryError::Bad)?;
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if manifest.key.digest_hex() != name {
            return Err(EntryError::Bad(format!(
                "manifest is for another key ({} {} O{}) than its directory name says",
                manifest.key.code_hash, manifest.key.spec, manifest.key.opt_level
            )));
        }
        let artifact = open_artifact(&dir.join(ARTIFACT_FILE))
            .map_err(entry_error(ARTIFACT_FILE))?
            .never_rewritten();
        Ok(Some(Entry {
            manifest,
            artifact,
            last_used: md.modified().ok(),
        }))
    }

    /// Moves `entry` (whatever it is) into `quarantine/` with a reason file.
    pub(super) fn quarantine(&self, entry: &Path, reason: &str) -> Rejection {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let name = entry
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dest = self.quarantine.join(format!(
            "{name}.{}.{}.{}",
            now_unix(),
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let moved = std::fs::create_dir_all(&dest)
            .and_then(|_| std::fs::rename(entry, dest.join("entry")))
            .and_then(|_| {
                std::fs::write(
                    dest.join("reason.txt"),
                    format!("{}\n{reason}\n", entry.display()),
                )
            });
        let moved_to = match moved {
            Ok(()) => Some(dest),
            Err(_) => {
                let _ = std::fs::remove_dir_all(&dest);
                None
            }
        };
        Rejection {
            entry: entry.to_path_buf(),
            reason: reason.to_string(),
            moved_to,
        }
    }

    /// A fresh private directory to build an entry in.
    pub(super) fn build_dir(&self) -> Result<tempfile::TempDir, CacheError> {
        tempfile::Builder::new()
            .prefix(&owner::prefix("build"))
            .tempdir_in(&self.tmp)
            .map_err(|source| CacheError::Io {
                path: self.tmp.clone(),
                source,
            })
    }

    /// Writes the manifest into `build` and renames the whole directory to
    /// the entry's name. Returns false when another writer got there first
    /// (its entry stays; ours is discarded).
    pub(super) fn publish(
        &self,
        build: tempfile::TempDir,
        manifest: &Manifest,
    ) -> Result<bool, CacheError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| CacheError::Io { path, source }
        };
        let mpath = build.path().join(MANIFEST_FILE);
        let mut f = std::fs::File::create(&mpath).map_err(io(&mpath))?;
        f.write_all(&manifest.to_json()).map_err(io(&mpath))?;
        f.sync_all().map_err(io(&mpath))?;
        // Read-only: nothing of ours ever writes to a published artifact,
        // which lookups load in place (see `loader::open_artifact`).
        let apath = build.path().join(ARTIFACT_FILE);
        std::fs::File::open(&apath)
            .and_then(|f| {
                f.set_permissions(std::fs::Permissions::from_mode(0o444))?;
                f.sync_all()
            })
            .map_err(io(&apath))?;
        // Only we may write the entry, whatever the umask: lookups then
        // load its artifact in place.
        std::fs::metadata(build.path())
            .and_then(|md| {
                let mode = md.permissions().mode() & 0o7755;
                std::fs::set_permissions(build.path(), std::fs::Permissions::from_mode(mode))
            })
            .map_err(io(build.path()))?;
        let dest = self.entry_dir(&manifest.key.digest_hex());
        match std::fs::rename(build.path(), &dest) {
            Ok(()) => {
                // The directory is the entry now; nothing left to clean up.
                let _ = build.keep();
                Ok(true)
            }
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EEXIST | libc::ENOTEMPTY | libc::EISDIR | libc::ENOTDIR)
                ) =>
            {
                Ok(false)
            }
            Err(source) => Err(CacheError::Io { path: dest, source }),
        }
    }
}

/// Loader errors start with the path, which the caller already names.
fn strip_path(msg: &str) -> &str {
    msg.split_once(": ").map(|(_, r)| r).unwrap_or(msg)
}

/// An entry as [`Layout::read_entry`] found it.
pub(super) struct Entry {
    pub manifest: Manifest,
    pub artifact: OpenedArtifact,
    /// The entry directory's modification time: its last hit (see [`touch`]).
    pub last_used: Option<SystemTime>,
}

/// A hit records itself in its entry at most this often. gc orders entries
/// by their last hit, to the second, to evict the least recently used; the
/// system call took 5 µs of every 80–190 µs hit on an AMD EPYC VM.
pub(super) const TOUCH_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// [`touch`]es an entry last used `last_used` unless that was less than
/// [`TOUCH_EVERY`] ago.
pub(super) fn touch_unless_recent(path: &Path, last_used: Option<SystemTime>) {
    let recent = last_used
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age < TOUCH_EVERY);
    if !recent {
        touch(path);
    }
}

/// Sets an entry's modification time to now: gc evicts the least recently
/// used entries first. Best effort (a read-only cache still serves hits).
pub(super) fn touch(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    if let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) {
        // SAFETY: valid NUL-terminated path; a null `times` means "now".
        unsafe {
            libc::utimensat(libc::AT_FDCWD, c.as_ptr(), std::ptr::null(), 0);
        }
    }
}
