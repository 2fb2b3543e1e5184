//! Validating loader for compiled artifacts.
//!
//! A shared object is code that runs inside the sequencer, so nothing is
//! `dlopen`ed before its bytes have been checked: it must be an x86-64 ELF
//! shared object that exports exactly our two symbols, imports nothing beyond a
//! few libc memory functions, has no initialisers, and carries metadata that
//! matches the bytecode, spec, interface version and this machine's CPU.
//!
//! What gets loaded is the inode whose bytes were checked, opened once
//! ([`open_artifact`]): when only our user can change that inode it is
//! `dlopen`ed through its own descriptor (`/proc/self/fd/N`), otherwise the
//! checked bytes are copied to a private file with a fresh name (mode 0600,
//! removed right after loading) and loaded from there. See [`open_artifact`]
//! for why that is enough.
//!
//! The checks read what the dynamic loader itself reads (program headers,
//! the `PT_DYNAMIC` table and the relocations it points to), not only the
//! section headers, which `ld.so` ignores and a hostile file can fake.

mod dynamic;

use evmc_compiler::{host_target, B256};
use evmc_interface::{
    ArtifactMetadata, EntryFn, ENTRY_SYMBOL, INTERFACE_VERSION, METADATA_MAGIC, METADATA_SYMBOL,
};
use object::elf;
use object::read::elf::{ElfFile64, FileHeader};
use object::{Object, ObjectSection, ObjectSymbol};
use std::collections::HashSet;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// Largest artifact file the loader reads.
pub const MAX_ARTIFACT_SIZE: u64 = 256 * 1024 * 1024;

/// Symbols an artifact may import; they resolve in libc, already loaded.
pub const ALLOWED_IMPORTS: &[&str] = &["memcpy", "memmove", "memset", "memcmp", "bcmp"];

/// Bytes read (and hashed) at a time: each piece is hashed while it is
/// still in the CPU cache.
const READ_CHUNK: usize = 256 << 10;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a regular file")]
    NotAFile { path: PathBuf },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("{path}: built for {what} {found}, expected {expected}")]
    Mismatch {
        path: PathBuf,
        what: &'static str,
        found: String,
        expected: String,
    },
    #[error("{path}: dlopen failed: {reason}")]
    Dlopen { path: PathBuf, reason: String },
    /// The private copy to load from could not be written: trouble of this
    /// process or machine (temporary directory full), not of the artifact.
    #[error("{path}: cannot write the private copy to load: {source}")]
    PrivateCopy {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What the caller expects an artifact to be for.
#[derive(Clone, Debug)]
pub struct Expect {
    pub code_hash: B256,
    pub spec: String,
}

/// A validated, loaded artifact. The library stays loaded while this lives.
pub struct LoadedArtifact {
    entry: EntryFn,
    pub metadata: ArtifactMetadata,
    pub path: PathBuf,
    // Dropped in this order: the library is unloaded before the descriptor
    // its name refers to is closed.
    _lib: libloading::Library,
    /// The artifact's own descriptor when it was loaded through it: the
    /// library's name, `/proc/self/fd/N`, must not name another file while
    /// the library is loaded.
    in_place: Option<InPlace>,
}

impl std::fmt::Debug for LoadedArtifact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedArtifact")
            .field("path", &self.path)
            .field("code_hash", &self.code_hash())
            .finish()
    }
}

impl LoadedArtifact {
    pub fn entry(&self) -> EntryFn {
        self.entry
    }
    pub fn code_hash(&self) -> B256 {
        B256::from(self.metadata.code_hash)
    }
    pub fn spec(&self) -> &str {
        ArtifactMetadata::str_field(&self.metadata.spec)
    }
    /// Whether the file itself was loaded (through its descriptor) rather
    /// than a private copy of its checked bytes.
    pub fn loaded_in_place(&self) -> bool {
        self.in_place.is_some()
    }
}

fn invalid(path: &Path, reason: impl Into<String>) -> LoadError {
    LoadError::Invalid {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// This machine's target, computed once: asking LLVM builds its strings
/// anew each time, which would dominate the cost of a cache hit.
fn host() -> &'static evmc_compiler::TargetSpec {
    static T: OnceLock<evmc_compiler::TargetSpec> = OnceLock::new();
    T.get_or_init(host_target)
}

/// Host CPU features (`+feat` entries only), computed once.
fn host_features() -> &'static HashSet<String> {
    static F: OnceLock<HashSet<String>> = OnceLock::new();
    F.get_or_init(|| {
        host()
            .required_features()
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    })
}

/// Checks the bytes of an artifact without loading it; returns its metadata.
pub fn validate_bytes(
    path: &Path,
    bytes: &[u8],
    expect: &Expect,
) -> Result<ArtifactMetadata, LoadError> {
    validate(path, bytes, expect).map(|v| v.metadata)
}

/// What validation learnt that loading checks again.
struct Validated {
    metadata: ArtifactMetadata,
    /// Distance between the two exported symbols in the validated file;
    /// the loaded library must show the same, or `dlsym` found other symbols.
    entry_minus_metadata: u64,
}

fn validate(path: &Path, bytes: &[u8], expect: &Expect) -> Result<Validated, LoadError> {
    let file = ElfFile64::<object::Endianness>::parse(bytes)
        .map_err(|e| invalid(path, format!("not an ELF64 object: {e}")))?;
    let hdr = file.elf_header();
    let endian = file.endian();
    if hdr.e_type(endian) != elf::ET_DYN {
        return Err(invalid(path, "not a shared object"));
    }
    if hdr.e_machine(endian) != elf::EM_X86_64 {
        return Err(invalid(path, "not an x86-64 object"));
    }

    // Nothing may run at load time.
    for section in file.sections() {
        let name = section.name().unwrap_or("");
        if matches!(
            name,
            ".init"
                | ".fini"
                | ".init_array"
                | ".fini_array"
                | ".preinit_array"
                | ".ctors"
                | ".dtors"
        ) {
            return Err(invalid(
                path,
                format!("has an initialiser section `{name}`"),
            ));
        }
    }
    dynamic::check_dynamic(path, &file, bytes)?;

    // Exactly our exports; only allowed imports.
    let mut meta_bytes = None;
    let mut meta_addr = 0;
    let mut entry_addr = None;
    for sym in file.dynamic_symbols() {
        let name = sym
            .name()
            .map_err(|e| invalid(path, format!("bad symbol name: {e}")))?;
        if name.is_empty() {
            continue;
        }
        let st_type = sym.elf_symbol().st_type();
        if st_type == elf::STT_GNU_IFUNC || st_type == elf::STT_TLS {
            return Err(invalid(
                path,
                format!("symbol `{name}` has type {st_type} (indirect function or TLS)"),
            ));
        }
        if sym.is_undefined() {
            if !ALLOWED_IMPORTS.contains(&name) {
                return Err(invalid(path, format!("imports unexpected symbol `{name}`")));
            }
            continue;
        }
        if !sym.is_global() {
            continue;
        }
        match name {
            ENTRY_SYMBOL => entry_addr = Some(sym.address()),
            METADATA_SYMBOL => {
                let section = sym
                    .section_index()
                    .and_then(|i| file.section_by_index(i).ok());
                let section =
                    section.ok_or_else(|| invalid(path, "metadata symbol has no section"))?;
                let data = section
                    .data()
                    .map_err(|e| invalid(path, format!("unreadable metadata section: {e}")))?;
                let start = sym
                    .address()
                    .checked_sub(section.address())
                    .ok_or_else(|| invalid(path, "metadata outside its section"))?;
                let slice = data
                    .get(start as usize..)
                    .ok_or_else(|| invalid(path, "metadata outside its section"))?;
                meta_bytes = Some(slice);
                meta_addr = sym.address();
            }
            other => {
                return Err(invalid(
                    path,
                    format!("exports unexpected symbol `{other}`"),
                ))
            }
        }
    }
    let Some(entry_addr) = entry_addr else {
        return Err(invalid(
            path,
            format!("missing entry symbol `{ENTRY_SYMBOL}`"),
        ));
    };
    let meta_bytes = meta_bytes
        .ok_or_else(|| invalid(path, format!("missing metadata symbol `{METADATA_SYMBOL}`")))?;
    let meta = ArtifactMetadata::from_bytes(meta_bytes)
        .ok_or_else(|| invalid(path, "truncated metadata"))?;
    check_metadata(path, &meta, expect)?;
    Ok(Validated {
        metadata: meta,
        entry_minus_metadata: entry_addr.wrapping_sub(meta_addr),
    })
}

/// Checks metadata against what the caller wants and what this machine is.
pub fn check_metadata(
    path: &Path,
    meta: &ArtifactMetadata,
    expect: &Expect,
) -> Result<(), LoadError> {
    let mismatch = |what, found: String, expected: String| LoadError::Mismatch {
        path: path.to_path_buf(),
        what,
        found,
        expected,
    };
    if meta.magic != METADATA_MAGIC {
        return Err(invalid(
            path,
            "not an evmc-native artifact (bad metadata magic)",
        ));
    }
    if meta.interface_version != INTERFACE_VERSION {
        return Err(mismatch(
            "interface version",
            meta.interface_version.to_string(),
            INTERFACE_VERSION.to_string(),
        ));
    }
    if meta.code_hash != expect.code_hash.0 {
        return Err(mismatch(
            "code hash",
            B256::from(meta.code_hash).to_string(),
            expect.code_hash.to_string(),
        ));
    }
    let spec = ArtifactMetadata::str_field(&meta.spec);
    if !spec.eq_ignore_ascii_case(&expect.spec) {
        return Err(mismatch("spec", spec.to_string(), expect.spec.clone()));
    }
    let triple = ArtifactMetadata::str_field(&meta.target_triple);
    if triple != host().triple {
        return Err(mismatch(
            "target",
            triple.to_string(),
            host().triple.clone(),
        ));
    }
    let features = ArtifactMetadata::str_field(&meta.cpu_features);
    let missing: Vec<&str> = features
        .split(',')
        .filter(|f| !f.is_empty() && !host_features().contains(*f))
        .collect();
    if !missing.is_empty() {
        return Err(mismatch(
            "CPU features",
            missing.join(","),
            "features of this CPU".into(),
        ));
    }
    Ok(())
}

/// Reads, validates and loads the artifact at `path`.
pub fn load(path: &Path, expect: &Expect) -> Result<LoadedArtifact, LoadError> {
    load_file(open_artifact(path)?.read(None)?, expect)
}

/// Reads a file that must be a regular file (not a symlink, directory,
/// FIFO or device) of at most `max` bytes. The checks are made on the
/// opened handle, so the path cannot be swapped in between.
pub fn read_regular_file(path: &Path, max: u64) -> Result<Vec<u8>, LoadError> {
    let (file, _) = open_regular(path, None, max)?;
    let io = |source: std::io::Error| LoadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let len = file.metadata().map_err(io)?.len();
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

/// An artifact file opened for loading, not read yet (see [`open_artifact`]).
#[derive(Debug)]
pub struct OpenedArtifact {
    path: PathBuf,
    file: File,
    len: u64,
    /// (device, inode).
    id: (u64, u64),
    in_place: bool,
}

/// An artifact file and the bytes read through its descriptor.
#[derive(Debug)]
pub struct ArtifactFile {
    path: PathBuf,
    file: File,
    bytes: Vec<u8>,
    id: (u64, u64),
    in_place: bool,
}

/// Opens the artifact at `path` once; its bytes are then read, checked and
/// loaded through that descriptor, so the inode loaded is the inode checked
/// whatever happens to the path in between (renames, replacements,
/// symlinks).
///
/// Loading the file itself (`dlopen` of `/proc/self/fd/N`) rather than a
/// private copy of its bytes is sound only if nobody else can change the
/// inode between the checks and the end of its use (`ld.so` maps the file:
/// a later write to it would reach loaded code). So it is done only when
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
    let in_place = only_ours(&md) && {
        let dir = File::from(dir_fd);
        dir.metadata().map(|d| only_ours(&d)).unwrap_or(false)
    };
    Ok(OpenedArtifact {
        path: path.to_path_buf(),
        file,
        len: md.len(),
        id: (md.dev(), md.ino()),
        in_place,
    })
}

impl OpenedArtifact {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Size when opened.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the file may be loaded through its own descriptor.
    pub fn loadable_in_place(&self) -> bool {
        self.in_place
    }

    /// Reads the whole file, feeding `hasher` piece by piece as the bytes
    /// arrive. A file that turns out shorter or longer than when it was
    /// opened (changed while being read) is refused.
    pub fn read(self, mut hasher: Option<&mut blake3::Hasher>) -> Result<ArtifactFile, LoadError> {
        let path = &self.path;
        let io = |source: std::io::Error| LoadError::Io {
            path: path.to_path_buf(),
            source,
        };
        let len = usize::try_from(self.len).map_err(|_| invalid(path, "too large"))?;
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
                h.update(&bytes[start..]);
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
            return Err(invalid(
                path,
                format!(
                    "changed size while being read (truncated or replaced; {len} bytes expected)"
                ),
            ));
        }
        Ok(ArtifactFile {
            path: self.path,
            file: self.file,
            bytes,
            id: self.id,
            in_place: self.in_place,
        })
    }
}

impl ArtifactFile {
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

/// Validates the bytes of `file` and loads exactly them: the file itself
/// through its descriptor, or a private copy (see [`open_artifact`]).
pub fn load_file(file: ArtifactFile, expect: &Expect) -> Result<LoadedArtifact, LoadError> {
    let v = validate(&file.path, &file.bytes, expect)?;
    open_validated_file(file, v)
}

/// What a cache manifest pins about an artifact beyond [`Expect`].
#[derive(Clone, Debug)]
pub struct Pinned<'a> {
    /// [`content_hash`] of the whole file.
    pub content_hash: [u8; 32],
    pub size: u64,
    pub opt_level: u8,
    pub compiler_version: &'a str,
    pub target_cpu: &'a str,
    pub cpu_features: &'a str,
}

/// BLAKE3 of an artifact's bytes.
pub fn content_hash(bytes: &[u8]) -> [u8; 32] {
    blake3::hash(bytes).into()
}

/// Checks `bytes` against `pinned` (size and content hash first, before the
/// bytes are even parsed), validates them and loads exactly those bytes
/// (a private copy).
pub fn load_pinned(
    path: &Path,
    bytes: &[u8],
    expect: &Expect,
    pinned: &Pinned<'_>,
) -> Result<LoadedArtifact, LoadError> {
    let v = validate_pinned_bytes(path, bytes, expect, pinned)?;
    let lib = dlopen_copy(path, bytes)?;
    finish_load(path, lib, None, v)
}

/// [`load_pinned`] for an opened artifact: its size is checked before it
/// is read, its content hash as it is read, and the file itself is loaded
/// when it may be (see [`open_artifact`]).
pub fn load_pinned_file(
    opened: OpenedArtifact,
    expect: &Expect,
    pinned: &Pinned<'_>,
) -> Result<LoadedArtifact, LoadError> {
    let (file, v) = check_pinned_file(opened, expect, pinned)?;
    open_validated_file(file, v)
}

/// Every check of [`load_pinned_file`], without loading.
pub fn validate_pinned_file(
    opened: OpenedArtifact,
    expect: &Expect,
    pinned: &Pinned<'_>,
) -> Result<ArtifactMetadata, LoadError> {
    check_pinned_file(opened, expect, pinned).map(|(_, v)| v.metadata)
}

/// Every check of [`load_pinned`], without loading.
pub fn validate_pinned(
    path: &Path,
    bytes: &[u8],
    expect: &Expect,
    pinned: &Pinned<'_>,
) -> Result<ArtifactMetadata, LoadError> {
    validate_pinned_bytes(path, bytes, expect, pinned).map(|v| v.metadata)
}

fn validate_pinned_bytes(
    path: &Path,
    bytes: &[u8],
    expect: &Expect,
    pinned: &Pinned<'_>,
) -> Result<Validated, LoadError> {
    check_size(path, bytes.len() as u64, pinned)?;
    check_hash(path, content_hash(bytes), pinned)?;
    check_pinned(path, bytes, expect, pinned)
}

fn check_pinned_file(
    opened: OpenedArtifact,
    expect: &Expect,
    pinned: &Pinned<'_>,
) -> Result<(ArtifactFile, Validated), LoadError> {
    check_size(&opened.path, opened.len, pinned)?;
    let mut hasher = blake3::Hasher::new();
    let file = opened.read(Some(&mut hasher))?;
    check_hash(&file.path, hasher.finalize().into(), pinned)?;
    let v = check_pinned(&file.path, &file.bytes, expect, pinned)?;
    Ok((file, v))
}

fn check_size(path: &Path, len: u64, pinned: &Pinned<'_>) -> Result<(), LoadError> {
    if len != pinned.size {
        return Err(invalid(
            path,
            format!(
                "is {len} bytes, its manifest says {} (truncated or replaced)",
                pinned.size
            ),
        ));
    }
    Ok(())
}

fn check_hash(path: &Path, hash: [u8; 32], pinned: &Pinned<'_>) -> Result<(), LoadError> {
    if hash != pinned.content_hash {
        return Err(invalid(
            path,
            "content hash differs from its manifest (corrupted or replaced)",
        ));
    }
    Ok(())
}

/// Validates `bytes` and checks the metadata against the rest of `pinned`.
fn check_pinned(
    path: &Path,
    bytes: &[u8],
    expect: &Expect,
    pinned: &Pinned<'_>,
) -> Result<Validated, LoadError> {
    let v = validate(path, bytes, expect)?;
    let m = &v.metadata;
    let mismatch = |what, found: String, expected: &str| LoadError::Mismatch {
        path: path.to_path_buf(),
        what,
        found,
        expected: expected.to_string(),
    };
    if m.opt_level != pinned.opt_level as u32 {
        return Err(mismatch(
            "opt level",
            m.opt_level.to_string(),
            &pinned.opt_level.to_string(),
        ));
    }
    for (what, field, want) in [
        ("compiler", &m.compiler_version[..], pinned.compiler_version),
        ("target CPU", &m.target_cpu[..], pinned.target_cpu),
    ] {
        let found = ArtifactMetadata::str_field(field);
        if found != want {
            return Err(mismatch(what, found.to_string(), want));
        }
    }
    let feature_set = |s: &str| -> std::collections::BTreeSet<String> {
        s.split(',')
            .filter(|f| !f.is_empty())
            .map(str::to_string)
            .collect()
    };
    let found = ArtifactMetadata::str_field(&m.cpu_features);
    if feature_set(found) != feature_set(pinned.cpu_features) {
        return Err(mismatch(
            "CPU feature set",
            found.to_string(),
            pinned.cpu_features,
        ));
    }
    Ok(v)
}

/// Validates `bytes` and loads exactly those bytes (a private copy).
pub fn load_bytes(path: &Path, bytes: &[u8], expect: &Expect) -> Result<LoadedArtifact, LoadError> {
    let v = validate(path, bytes, expect)?;
    let lib = dlopen_copy(path, bytes)?;
    finish_load(path, lib, None, v)
}

fn dlopen_error(path: &Path) -> impl Fn(libloading::Error) -> LoadError + '_ {
    move |e| LoadError::Dlopen {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

const DLOPEN_FLAGS: std::ffi::c_int =
    libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_LOCAL;

/// Loads the validated `file`: through its descriptor when it may be and
/// `ld.so` will map it afresh, else a private copy of its bytes.
fn open_validated_file(file: ArtifactFile, v: Validated) -> Result<LoadedArtifact, LoadError> {
    if file.in_place && proc_fd_works() {
        let ArtifactFile {
            path,
            file,
            bytes,
            id,
            ..
        } = file;
        return match dlopen_in_place(&path, file, id)? {
            Some((lib, in_place)) => finish_load(&path, lib, Some(in_place), v),
            None => {
                let lib = dlopen_copy(&path, &bytes)?;
                finish_load(&path, lib, None, v)
            }
        };
    }
    let lib = dlopen_copy(&file.path, &file.bytes)?;
    finish_load(&file.path, lib, None, v)
}

/// `/proc/self/fd` is there (procfs mounted), checked once.
fn proc_fd_works() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| Path::new("/proc/self/fd").is_dir())
}

/// (device, inode) of the files loaded in place and not unloaded yet. The
/// lock also keeps the checks and the `dlopen` of one in-place load
/// together.
static LOADED_IN_PLACE: Mutex<std::collections::BTreeSet<(u64, u64)>> =
    Mutex::new(std::collections::BTreeSet::new());

fn loaded_in_place() -> std::sync::MutexGuard<'static, std::collections::BTreeSet<(u64, u64)>> {
    LOADED_IN_PLACE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Libraries loaded in place each hold a descriptor: at most a quarter of
/// the process's limit (`RLIMIT_NOFILE` when first asked) is used so; past
/// that, loads use a private copy.
fn max_held_descriptors() -> usize {
    static MAX: OnceLock<usize> = OnceLock::new();
    *MAX.get_or_init(|| {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `lim` is a valid out-parameter.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
            return 0;
        }
        usize::try_from(lim.rlim_cur / 4).unwrap_or(usize::MAX)
    })
}

/// The descriptor a library was loaded through, kept open while it is
/// loaded; dropped after the library is unloaded.
struct InPlace {
    _file: File,
    id: (u64, u64),
}

impl Drop for InPlace {
    fn drop(&mut self) {
        loaded_in_place().remove(&self.id);
    }
}

/// `dlopen` of the file through its descriptor, if `ld.so` knows neither
/// that name nor that inode yet (it then maps this inode as a new object);
/// `None` if it may know them (see [`open_artifact`]).
fn dlopen_in_place(
    path: &Path,
    file: File,
    id: (u64, u64),
) -> Result<Option<(libloading::os::unix::Library, InPlace)>, LoadError> {
    use libloading::os::unix::Library;
    let mut loaded = loaded_in_place();
    // Loaded in place already: asking ld.so would add this name to that
    // object, where it would outlive our descriptor. Or enough descriptors
    // held already.
    if loaded.contains(&id) || loaded.len() >= max_held_descriptors() {
        return Ok(None);
    }
    let name = format!("/proc/self/fd/{}", file.as_raw_fd());
    // SAFETY: RTLD_NOLOAD maps nothing and runs nothing; it only returns
    // (a new reference to) an object that is loaded already.
    let known = unsafe { Library::open(Some(&name), DLOPEN_FLAGS | libc::RTLD_NOLOAD) };
    if let Ok(already) = known {
        drop(already);
        return Ok(None);
    }
    // SAFETY: the bytes of this inode were validated: no initialisers run
    // on load, and the only code we call is the entry point with our ABI.
    let lib = unsafe { Library::open(Some(&name), DLOPEN_FLAGS) }.map_err(dlopen_error(path))?;
    loaded.insert(id);
    Ok(Some((lib, InPlace { _file: file, id })))
}

/// `dlopen` of a private copy of the validated bytes.
fn dlopen_copy(path: &Path, bytes: &[u8]) -> Result<libloading::os::unix::Library, LoadError> {
    let sealed = sealed_copy(bytes).map_err(|source| LoadError::PrivateCopy {
        path: path.to_path_buf(),
        source,
    })?;
    // SAFETY: the bytes were validated: no initialisers run on load, and
    // the only code we call is the entry point with our own ABI.
    let lib = unsafe { libloading::os::unix::Library::open(Some(&sealed.path), DLOPEN_FLAGS) }
        .map_err(dlopen_error(path))?;
    // The mapping keeps the (unlinked) file alive.
    drop(sealed);
    Ok(lib)
}

/// Checks that the loaded library shows the validated symbols and metadata.
fn finish_load(
    path: &Path,
    lib: libloading::os::unix::Library,
    in_place: Option<InPlace>,
    v: Validated,
) -> Result<LoadedArtifact, LoadError> {
    match checked_entry(path, &lib, &v) {
        Ok(entry) => Ok(LoadedArtifact {
            entry,
            metadata: v.metadata,
            path: path.to_path_buf(),
            _lib: lib.into(),
            in_place,
        }),
        Err(e) => {
            // Unloaded before its name, `/proc/self/fd/N`, is released.
            drop(lib);
            drop(in_place);
            Err(e)
        }
    }
}

fn checked_entry(
    path: &Path,
    lib: &libloading::os::unix::Library,
    v: &Validated,
) -> Result<EntryFn, LoadError> {
    // SAFETY: only addresses are taken here; nothing is called or read
    // until the symbols are known to be the validated ones.
    let (entry, meta_ptr) = unsafe {
        let entry = *lib
            .get::<EntryFn>(ENTRY_SYMBOL.as_bytes())
            .map_err(dlopen_error(path))?;
        let meta = *lib
            .get::<*const u8>(METADATA_SYMBOL.as_bytes())
            .map_err(dlopen_error(path))?;
        (entry, meta)
    };
    if (entry as usize as u64).wrapping_sub(meta_ptr as u64) != v.entry_minus_metadata {
        return Err(invalid(
            path,
            "symbol lookup found other symbols than validated",
        ));
    }
    // SAFETY: the metadata symbol is a validated ArtifactMetadata::SIZE
    // byte object in a read-only segment of the library just loaded.
    let loaded = unsafe { std::slice::from_raw_parts(meta_ptr, ArtifactMetadata::SIZE) };
    if loaded != v.metadata.as_bytes() {
        return Err(invalid(
            path,
            "loaded metadata differs from the validated file",
        ));
    }
    Ok(entry)
}

/// A private copy of the validated bytes under a fresh random name. The
/// name must never repeat while a library is loaded: the dynamic loader
/// returns an already loaded object when asked for a path it has seen.
struct SealedCopy {
    path: PathBuf,
    _file: tempfile::TempPath,
}

fn sealed_copy(bytes: &[u8]) -> std::io::Result<SealedCopy> {
    use std::io::Write;
    let mut file = tempfile::Builder::new()
        .prefix(".evmc-load-")
        .suffix(".so")
        .tempfile()?;
    file.write_all(bytes)?;
    file.flush()?;
    let tmp = file.into_temp_path();
    Ok(SealedCopy {
        path: tmp.to_path_buf(),
        _file: tmp,
    })
}
