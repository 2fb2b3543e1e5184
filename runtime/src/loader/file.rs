//! Opening artefact files safely: regular files only (no symlinks, FIFOs,
//! devices), of bounded size, read through the one descriptor that is
//! later loaded, and whether that descriptor may be loaded in place.

use super::mapping::{Bytes, Mapping};
use super::{invalid, LoadError, MAX_ARTIFACT_SIZE};
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Bytes read (and hashed) at a time: each piece is hashed while it is
/// still in the CPU cache.
const READ_CHUNK: usize = 256 << 10;

/// Reads a file that must be a regular file (not a symlink, directory,
/// FIFO or device) of at most `max` bytes. The checks are made on the
/// opened handle, so the path cannot be swapped in between.
pub fn read_regular_file(path: &Path, max: u64) -> Result<Vec<u8>, LoadError> {
    let (file, md) = open_regular(path, None, max)?;
    let io = |source: std::io::Error| LoadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let len = md.len();
    let mut bytes = Vec::with_capacity(len.min(max) as usize);
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > max {
        return Err(invalid(path, format!("grew past the limit of {max} bytes")));
    }
    Ok(bytes)
}

fn cstring(path: &Path, p: &std::ffi::OsStr) -> Result<std::ffi::CString, LoadError> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_bytes()).map_err(|_| invalid(path, "path contains a NUL byte"))
}

/// Opens `path` (relative to `dir` when given) as a regular file of at most
/// `max` bytes: not through a symlink (`O_NOFOLLOW`), without waiting on a
/// FIFO, refusing directories and devices. Returns it with its metadata.
fn open_regular(
    path: &Path,
    dir: Option<(&OwnedFd, &std::ffi::OsStr)>,
    max: u64,
) -> Result<(File, std::fs::Metadata), LoadError> {
    let io = |source: std::io::Error| LoadError::Io {
        path: path.to_path_buf(),
        source,
    };
    // O_NONBLOCK: opening a FIFO must not wait for a writer.
    let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;
    let (at, name) = match dir {
        Some((fd, name)) => (fd.as_raw_fd(), cstring(path, name)?),
        None => (libc::AT_FDCWD, cstring(path, path.as_os_str())?),
    };
    // SAFETY: a valid descriptor (or AT_FDCWD) and a NUL-terminated name.
    let fd = unsafe { libc::openat(at, name.as_ptr(), flags) };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ELOOP) {
            return Err(LoadError::NotAFile {
                path: path.to_path_buf(),
            });
        }
        return Err(io(e));
    }
    // SAFETY: a descriptor just opened, owned by nobody else.
    let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let md = file.metadata().map_err(io)?;
    if !md.file_type().is_file() {
        return Err(LoadError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    if md.len() > max {
        return Err(invalid(
            path,
            format!("{} bytes is larger than the limit of {max}", md.len()),
        ));
    }
    Ok((file, md))
}

/// Only this process's user (or root) can change what `md` describes:
/// owned by our effective uid, not writable by group or others (with POSIX
/// ACLs the group bits are the mask, which bounds every named entry).
fn only_ours(md: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: plain syscall without arguments.
    md.uid() == unsafe { libc::geteuid() } && md.mode() & 0o022 == 0
}

/// Why the file or directory `md` describes could be changed by someone
/// this process does not trust: it is owned by another user than our
/// effective uid or root, or it is writable by group or others. A
/// directory writable by others but with the sticky bit set passes: others
/// may add names to it but not rename or remove ours, and what lies below
/// it is checked on its own. `None` when only we (or root) can change it.
pub fn trust_problem(md: &std::fs::Metadata) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: plain syscall without arguments.
    let euid = unsafe { libc::geteuid() };
    let mode = md.mode() & 0o7777;
    if md.uid() != euid && md.uid() != 0 {
        return Some(format!(
            "owned by uid {}, neither this process's user (uid {euid}) nor root",
            md.uid()
        ));
    }
    let sticky_dir = md.is_dir() && mode & 0o1000 != 0;
    if mode & 0o022 != 0 && !sticky_dir {
        return Some(format!("writable by group or others (mode {mode:o})"));
    }
    None
}

/// An artifact file opened for loading, not read yet (see [`open_artifact`]).
#[derive(Debug)]
pub struct OpenedArtifact {
    path: PathBuf,
    file: File,
    len: u64,
    /// (device, inode).
    id: (u64, u64),
    in_place: bool,
    /// [`trust_problem`] of the file, else of its directory, when opened.
    untrusted: Option<String>,
    /// Never rewritten in place (see [`OpenedArtifact::never_rewritten`]).
    never_rewritten: bool,
}

/// An artifact file and the bytes read through its descriptor.
#[derive(Debug)]
pub struct ArtifactFile {
    pub(super) path: PathBuf,
    pub(super) file: File,
    pub(super) bytes: Bytes,
    /// (device, inode).
    pub(super) id: (u64, u64),
    pub(super) in_place: bool,
}

/// Opens the artifact at `path` once; its bytes are then read, checked and
/// loaded through that descriptor, so the inode loaded is the inode checked
/// whatever happens to the path in between (renames, replacements,
/// symlinks).
///
/// Loading the file itself (mapping its segments, see `loader::image`, or
/// `dlopen` of `/proc/self/fd/N` for other objects) rather than a private
/// copy of its bytes is sound only if nobody else can change the inode
/// between the checks and the end of its use (the file is mapped: a later
/// write to it would reach loaded code). So it is done only when
/// the file and its directory (opened first, the file opened relative to
/// it) are owned by our effective uid and not writable by group or others;
/// otherwise the checked bytes are copied to a private file, loaded from
/// there. Cache entries qualify: their artifacts are published read-only
/// (0444) in directories only we can write, and never rewritten in place.
///
/// The threat model: the copy only ever guarded against other uids. A
/// process running as our uid (or root) can write crafted code into the
/// cache, or into this process, anyway; in-place loading gives it nothing
/// new. Nor can the file's owner or mode change under us: only its owner
/// (us) or root can `chmod` or `chown` it.
///
/// The rest concerns objects loaded through `dlopen`; a directly mapped
/// artefact holds no descriptor and maps the same inode apart each time.
/// `ld.so` returns an already loaded object instead of mapping the file
/// when the name matches a loaded object's name or soname, or the file's
/// (device, inode) is loaded already. Neither may hand out another object
/// than the one checked. Under one lock: an inode we loaded in place and
/// still hold is loaded again from a copy (asking `ld.so` would also add
/// this descriptor's name to that object); otherwise a `RTLD_NOLOAD` probe
/// asks whether the name or the inode is known (a name left behind by an
/// object someone else keeps loaded, a soname, the file loaded by other
/// code), and if so a copy is loaded too (a fresh inode under a fresh
/// name). Only then does `dlopen` map this inode as a new object. Cache
/// entries never share an inode (each is written as a new file and renamed
/// into place), and a removed and re-created entry has a new inode (the old
/// one stays allocated while it is mapped). The descriptor stays open while
/// the library is loaded, so its name cannot come to mean another file
/// (at most a quarter of `RLIMIT_NOFILE` are held so; further loads use a
/// copy); and after loading, the symbols and the metadata are checked
/// against the validated bytes again.
pub fn open_artifact(path: &Path) -> Result<OpenedArtifact, LoadError> {
    use std::os::unix::fs::MetadataExt;
    let io = |source: std::io::Error| LoadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let Some(name) = path.file_name() else {
        return Err(LoadError::NotAFile {
            path: path.to_path_buf(),
        });
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let c_dir = cstring(path, dir.as_os_str())?;
    // SAFETY: a NUL-terminated path; O_PATH opens without reading anything.
    let dir_fd = unsafe {
        libc::open(
            c_dir.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if dir_fd < 0 {
        return Err(io(std::io::Error::last_os_error()));
    }
    // SAFETY: a descriptor just opened, owned by nobody else.
    let dir_fd = unsafe { OwnedFd::from_raw_fd(dir_fd) };
    let (file, md) = open_regular(path, Some((&dir_fd, name)), MAX_ARTIFACT_SIZE)?;
    let dir_md = File::from(dir_fd).metadata();
    let in_place = only_ours(&md) && dir_md.as_ref().map(only_ours).unwrap_or(false);
    let untrusted = trust_problem(&md)
        .map(|p| format!("the file is {p}"))
        .or_else(|| match &dir_md {
            Ok(d) => trust_problem(d).map(|p| format!("its directory is {p}")),
            Err(e) => Some(format!("its directory cannot be examined: {e}")),
        });
    Ok(OpenedArtifact {
        path: path.to_path_buf(),
        file,
        len: md.len(),
        id: (md.dev(), md.ino()),
        in_place,
        untrusted,
        never_rewritten: false,
    })
}

impl OpenedArtifact {
    /// The path it was opened at.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Size when opened.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the file may be loaded through its own descriptor.
    pub fn loadable_in_place(&self) -> bool {
        self.in_place
    }

    /// Why the file or its directory, as opened, could be changed by
    /// someone this process does not trust ([`trust_problem`]); `None` if
    /// only our user or root can change them.
    pub fn trust_problem(&self) -> Option<&str> {
        self.untrusted.as_deref()
    }

    /// Marks the file as one that is never rewritten in place (a cache
    /// entry: published read-only by rename). When it may also be loaded
    /// in place, it is then mapped rather than copied when read.
    pub(crate) fn never_rewritten(mut self) -> Self {
        self.never_rewritten = true;
        self
    }

    /// Reads the whole file. A file that turns out shorter or longer than
    /// when it was opened (changed while being read) is refused.
    pub fn read(self) -> Result<ArtifactFile, LoadError> {
        self.read_hashed(None)
    }

    /// [`Self::read`], feeding `hasher` as the bytes arrive.
    pub(super) fn read_hashed(
        self,
        mut hasher: Option<&mut twox_hash::XxHash3_128>,
    ) -> Result<ArtifactFile, LoadError> {
        let path = &self.path;
        let io = |source: std::io::Error| LoadError::Io {
            path: path.to_path_buf(),
            source,
        };
        let len = usize::try_from(self.len).map_err(|_| invalid(path, "too large"))?;
        let changed = || {
            invalid(
                path,
                format!(
                    "changed size while being read (truncated or replaced; {len} bytes expected)"
                ),
            )
        };
        // A file system that cannot map files (some FUSE ones) is read
        // instead: the entry is sound, only the way to it differs.
        let map = if self.never_rewritten && self.in_place && len > 0 {
            Mapping::new(&self.file, len).ok()
        } else {
            None
        };
        if let Some(map) = map {
            // Mapped at the size it was opened with; refused if it changed
            // since, before a byte of it is read.
            if self.file.metadata().map_err(io)?.len() != self.len {
                return Err(changed());
            }
            if let Some(h) = hasher {
                h.write(map.as_slice());
            }
            return Ok(ArtifactFile {
                path: self.path,
                file: self.file,
                bytes: Bytes::Mapped(map),
                id: self.id,
                in_place: self.in_place,
            });
        }
        let mut bytes: Vec<u8> = Vec::new();
        bytes
            .try_reserve_exact(len)
            .map_err(|_| io(std::io::Error::from_raw_os_error(libc::ENOMEM)))?;
        let fd = self.file.as_raw_fd();
        while bytes.len() < len {
            let start = bytes.len();
            let want = (len - start).min(READ_CHUNK);
            let spare = bytes.spare_capacity_mut();
            // SAFETY: `spare` has room for at least `want` bytes.
            let n = unsafe { libc::read(fd, spare.as_mut_ptr().cast(), want) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(io(e));
            }
            if n == 0 {
                break;
            }
            // SAFETY: `read` initialised `n <= want` bytes past the length.
            unsafe { bytes.set_len(start + n as usize) };
            if let Some(h) = hasher.as_deref_mut() {
                h.write(&bytes[start..]);
            }
        }
        let grew = bytes.len() == len && {
            let mut one = [0u8; 1];
            loop {
                match (&self.file).read(&mut one) {
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    r => break r.map_err(io)? > 0,
                }
            }
        };
        if bytes.len() < len || grew {
            return Err(changed());
        }
        Ok(ArtifactFile {
            path: self.path,
            file: self.file,
            bytes: Bytes::Read(bytes),
            id: self.id,
            in_place: self.in_place,
        })
    }
}

impl ArtifactFile {
    /// The path it was opened at.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The bytes read; what gets checked and loaded.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Whether the file may be loaded through its own descriptor.
    pub fn loadable_in_place(&self) -> bool {
        self.in_place
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A read-only file of `len` patterned bytes in a fresh directory only
    /// we can write, as cache entries are.
    fn entry_like(len: usize) -> (tempfile::TempDir, PathBuf, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().join("artifact.so");
        let bytes: Vec<u8> = (0..len).map(|i| (i * 7 + i / 4096) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
        (dir, path, bytes)
    }

    fn read(path: &Path, never_rewritten: bool) -> (ArtifactFile, u128) {
        let mut opened = open_artifact(path).unwrap();
        assert!(opened.loadable_in_place());
        if never_rewritten {
            opened = opened.never_rewritten();
        }
        let mut h = twox_hash::XxHash3_128::new();
        let file = opened.read_hashed(Some(&mut h)).unwrap();
        (file, h.finish_128())
    }

    /// Manifests already written pin XXH3-128 values: whichever crate
    /// computes them must give the same, on the short path and on the long
    /// one (AVX2 where the CPU has it), at once and in pieces.
    #[test]
    fn the_checksum_is_xxh3_128() {
        let long: Vec<u8> = (0..300_007u32).map(|i| (i * 7 + i / 4093) as u8).collect();
        for (bytes, want) in [
            (&b"evmc-native"[..], 0xfbb8536eef123affc8f36ad1f96d5e6c_u128),
            (&long[..], 0x81227204a4d531134dcab7cd9946508f),
        ] {
            assert_eq!(crate::loader::content_hash(bytes), want);
            let mut h = twox_hash::XxHash3_128::new();
            for piece in bytes.chunks(READ_CHUNK / 3) {
                h.write(piece);
            }
            assert_eq!(h.finish_128(), want);
        }
    }

    #[test]
    fn entries_are_mapped_and_read_the_same_as_copies() {
        for len in [0, 1, 4095, 4096, 768 << 10 | 123] {
            let (_dir, path, bytes) = entry_like(len);
            let (mapped, mapped_hash) = read(&path, true);
            let (copied, copied_hash) = read(&path, false);
            // An empty file cannot be mapped (and is no artefact).
            assert_eq!(matches!(mapped.bytes, Bytes::Mapped(_)), len > 0, "{len}");
            assert!(matches!(copied.bytes, Bytes::Read(_)));
            assert_eq!(mapped.bytes(), &bytes[..]);
            assert_eq!(copied.bytes(), &bytes[..]);
            assert_eq!(mapped_hash, crate::loader::content_hash(&bytes));
            assert_eq!(copied_hash, mapped_hash);
        }
    }

    #[test]
    fn an_entry_that_changed_size_after_opening_is_refused_before_it_is_mapped_and_read() {
        let (_dir, path, _) = entry_like(512 << 10);
        let opened = open_artifact(&path).unwrap().never_rewritten();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(256 << 10)
            .unwrap();
        let err = opened.read_hashed(None).unwrap_err().to_string();
        assert!(err.contains("changed size while being read"), "{err}");
    }
}
