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

use evmc_compiler::{host_target, B256};
use evmc_interface::{
    ArtifactMetadata, EntryFn, ENTRY_SYMBOL, INTERFACE_VERSION, METADATA_MAGIC, METADATA_SYMBOL,
};
use object::elf;
use object::read::elf::{Dyn, ElfFile64, FileHeader, SectionHeader};
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

/// Host CPU features (`+feat` entries only), computed once.
fn host_features() -> &'static HashSet<String> {
    static F: OnceLock<HashSet<String>> = OnceLock::new();
    F.get_or_init(|| {
        host_target()
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
    for sh in file.elf_section_table().iter() {
        if let Ok(Some((dyns, _))) = sh.dynamic(endian, bytes) {
            for d in dyns {
                let tag = d.d_tag(endian) as u32;
                if matches!(
                    tag,
                    elf::DT_INIT
                        | elf::DT_FINI
                        | elf::DT_INIT_ARRAY
                        | elf::DT_FINI_ARRAY
                        | elf::DT_PREINIT_ARRAY
                ) {
                    return Err(invalid(
                        path,
                        format!("has an initialiser (dynamic tag {tag})"),
                    ));
                }
                if tag == elf::DT_NEEDED {
                    return Err(invalid(path, "depends on another shared library"));
                }
            }
        }
    }

    // Exactly our exports; only allowed imports.
    let mut meta_bytes = None;
    let mut has_entry = false;
    for sym in file.dynamic_symbols() {
        let name = sym
            .name()
            .map_err(|e| invalid(path, format!("bad symbol name: {e}")))?;
        if name.is_empty() {
            continue;
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
            ENTRY_SYMBOL => has_entry = true,
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
            }
            other => {
                return Err(invalid(
                    path,
                    format!("exports unexpected symbol `{other}`"),
                ))
            }
        }
    }
    if !has_entry {
        return Err(invalid(
            path,
            format!("missing entry symbol `{ENTRY_SYMBOL}`"),
        ));
    }
    let meta_bytes = meta_bytes
        .ok_or_else(|| invalid(path, format!("missing metadata symbol `{METADATA_SYMBOL}`")))?;
    let meta = ArtifactMetadata::from_bytes(meta_bytes)
        .ok_or_else(|| invalid(path, "truncated metadata"))?;
    check_metadata(path, &meta, expect)?;
    Ok(meta)
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
    let host = host_target();
    let triple = ArtifactMetadata::str_field(&meta.target_triple);
    if triple != host.triple {
        return Err(mismatch("target", triple.to_string(), host.triple));
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
    let md = std::fs::symlink_metadata(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if !md.file_type().is_file() {
        return Err(LoadError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    if md.len() > MAX_ARTIFACT_SIZE {
        return Err(invalid(
            path,
            format!("{} bytes is larger than any artifact", md.len()),
        ));
    }
    let bytes = std::fs::read(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    load_bytes(path, &bytes, expect)
}

/// Validates `bytes` and loads exactly those bytes.
pub fn load_bytes(path: &Path, bytes: &[u8], expect: &Expect) -> Result<LoadedArtifact, LoadError> {
    let metadata = validate_bytes(path, bytes, expect)?;
    let sealed = sealed_copy(bytes).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let flags = libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_LOCAL;
    // SAFETY: the bytes were validated above: no initialisers run on load,
    // and the only code we call is the entry point with our own ABI.
    let lib =
        unsafe { libloading::os::unix::Library::open(Some(&sealed.path), flags) }.map_err(|e| {
            LoadError::Dlopen {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }
        })?;
    let entry: EntryFn = unsafe {
        *lib.get::<EntryFn>(ENTRY_SYMBOL.as_bytes())
            .map_err(|e| LoadError::Dlopen {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?
    };
    drop(sealed);
    Ok(LoadedArtifact {
        entry,
        metadata,
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
