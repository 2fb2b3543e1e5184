//! Validating loader for compiled artifacts.
//!
//! A shared object is code that runs inside the sequencer, so nothing is
//! `dlopen`ed before its bytes have been checked: it must be an x86-64 ELF
//! shared object that exports exactly our two symbols, imports nothing beyond a
//! few libc memory functions, has no initialisers, and carries metadata that
//! matches the bytecode, spec, interface version and this machine's CPU.
//! The checked bytes are what gets loaded: they are copied to a private
//! file with a fresh name (mode 0600, removed right after loading) and
//! loaded from there, so the file on disk can change under us without effect.
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
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Largest artifact file the loader reads.
pub const MAX_ARTIFACT_SIZE: u64 = 256 * 1024 * 1024;

/// Symbols an artifact may import; they resolve in libc, already loaded.
pub const ALLOWED_IMPORTS: &[&str] = &["memcpy", "memmove", "memset", "memcmp", "bcmp"];

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
    _lib: libloading::Library,
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
    let bytes = read_regular_file(path, MAX_ARTIFACT_SIZE)?;
    load_bytes(path, &bytes, expect)
}

/// Reads a file that must be a regular file (not a symlink, directory,
/// FIFO or device) of at most `max` bytes. The checks are made on the
/// opened handle, so the path cannot be swapped in between.
pub fn read_regular_file(path: &Path, max: u64) -> Result<Vec<u8>, LoadError> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source: std::io::Error| LoadError::Io {
        path: path.to_path_buf(),
        source,
    };
    // O_NONBLOCK: opening a FIFO must not wait for a writer.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path);
    let file = match file {
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(LoadError::NotAFile {
                path: path.to_path_buf(),
            })
        }
        r => r.map_err(io)?,
    };
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
    let mut bytes = Vec::with_capacity(md.len() as usize);
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > max {
        return Err(invalid(path, format!("grew past the limit of {max} bytes")));
    }
    Ok(bytes)
}

/// What a cache manifest pins about an artifact beyond [`Expect`].
#[derive(Clone, Debug)]
pub struct Pinned<'a> {
    /// SHA-256 of the whole file.
    pub sha256: [u8; 32],
    pub size: u64,
    pub opt_level: u8,
    pub compiler_version: &'a str,
    pub target_cpu: &'a str,
    pub cpu_features: &'a str,
}

/// SHA-256 of an artifact's bytes.
pub fn content_hash(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

/// Checks `bytes` against `pinned` (size and content hash first, before the
/// bytes are even parsed), validates them and loads exactly those bytes.
pub fn load_pinned(
    path: &Path,
    bytes: &[u8],
    expect: &Expect,
    pinned: &Pinned<'_>,
) -> Result<LoadedArtifact, LoadError> {
    let v = check_pinned(path, bytes, expect, pinned)?;
    open_validated(path, bytes, v)
}

/// Every check of [`load_pinned`], without loading.
pub fn validate_pinned(
    path: &Path,
    bytes: &[u8],
    expect: &Expect,
    pinned: &Pinned<'_>,
) -> Result<ArtifactMetadata, LoadError> {
    check_pinned(path, bytes, expect, pinned).map(|v| v.metadata)
}

fn check_pinned(
    path: &Path,
    bytes: &[u8],
    expect: &Expect,
    pinned: &Pinned<'_>,
) -> Result<Validated, LoadError> {
    if bytes.len() as u64 != pinned.size {
        return Err(invalid(
            path,
            format!(
                "is {} bytes, its manifest says {} (truncated or replaced)",
                bytes.len(),
                pinned.size
            ),
        ));
    }
    if content_hash(bytes) != pinned.sha256 {
        return Err(invalid(
            path,
            "content hash differs from its manifest (corrupted or replaced)",
        ));
    }
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

/// Validates `bytes` and loads exactly those bytes.
pub fn load_bytes(path: &Path, bytes: &[u8], expect: &Expect) -> Result<LoadedArtifact, LoadError> {
    let v = validate(path, bytes, expect)?;
    open_validated(path, bytes, v)
}

fn open_validated(path: &Path, bytes: &[u8], v: Validated) -> Result<LoadedArtifact, LoadError> {
    let sealed = sealed_copy(bytes).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let dlopen_err = |reason: String| LoadError::Dlopen {
        path: path.to_path_buf(),
        reason,
    };
    let flags = libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_LOCAL;
    // SAFETY: the bytes were validated above: no initialisers run on load,
    // and the only code we call is the entry point with our own ABI.
    let lib = unsafe { libloading::os::unix::Library::open(Some(&sealed.path), flags) }
        .map_err(|e| dlopen_err(e.to_string()))?;
    // SAFETY: only addresses are taken here; nothing is called or read
    // until the symbols are known to be the validated ones.
    let (entry, meta_ptr) = unsafe {
        let entry = *lib
            .get::<EntryFn>(ENTRY_SYMBOL.as_bytes())
            .map_err(|e| dlopen_err(e.to_string()))?;
        let meta = *lib
            .get::<*const u8>(METADATA_SYMBOL.as_bytes())
            .map_err(|e| dlopen_err(e.to_string()))?;
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
    drop(sealed);
    Ok(LoadedArtifact {
        entry,
        metadata: v.metadata,
        path: path.to_path_buf(),
        _lib: lib.into(),
    })
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
