//! Validating loader for compiled artifacts.
//!
//! A shared object is code that runs inside the sequencer, so nothing is
//! `dlopen`ed before its bytes have been checked: it must be an x86-64 ELF
//! shared object that exports exactly our two symbols, imports nothing beyond a
//! few libc memory functions, has no initialisers, and carries metadata that
//! matches the bytecode, spec, interface version and this machine's CPU.
//!
//! One [`Loader`] holds what an artefact must be ([`Expect`], and for cache
//! entries what the manifest [`Pinned`]); [`Loader::validate`] and
//! [`Loader::load`] take the artefact as a path, an opened file or bytes
//! ([`Source`]). The work is split by mechanism:
//! - [`file`]: opening regular files only, reading them through the
//!   descriptor that is later loaded, and whether it may be loaded in place;
//!   `mapping`: cache entries mapped rather than copied when read, the
//!   mapping then becoming the loaded image;
//! - `elf` and `dynamic`: the ELF structure, as the dynamic loader reads it
//!   (program headers, the `PT_DYNAMIC` table and the relocations it points
//!   to), not only the section headers, which `ld.so` ignores and a hostile
//!   file can fake;
//! - `metadata`: the metadata record against the caller, the manifest and
//!   this machine ([`host`]: CPU features from `cpuid`, without LLVM);
//! - `loaded`: the [`LoadedArtifact`] and how it gets there: the segments
//!   mapped by `image` when the object binds nothing at load time (every
//!   artefact this compiler builds), else `dlopen`; either from the file
//!   itself through its descriptor or from a private copy of the checked
//!   bytes (see [`open_artifact`] for which and why), then the loaded entry
//!   and metadata checked against the validated ones;
//! - `warm`: fetching an artefact's code into the cache before its first
//!   frame of a block.

mod dynamic;
mod elf;
mod file;
pub mod host;
mod image;
mod loaded;
mod mapping;
mod metadata;
pub(crate) mod warm;

pub use file::{open_artifact, read_regular_file, trust_problem, ArtifactFile, OpenedArtifact};
pub use loaded::LoadedArtifact;

use evmc_compiler::B256;
use evmc_interface::ArtifactMetadata;
use std::path::{Path, PathBuf};

/// Largest artifact file the loader reads.
pub const MAX_ARTIFACT_SIZE: u64 = 256 * 1024 * 1024;

/// Symbols an artifact may import; they resolve in libc, already loaded.
pub const ALLOWED_IMPORTS: &[&str] = &["memcpy", "memmove", "memset", "memcmp", "bcmp"];

/// Why an artifact was refused or could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The artifact's path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The path is not a regular file.
    #[error("{path}: not a regular file")]
    NotAFile {
        /// The artifact's path.
        path: PathBuf,
    },
    /// The file is not an acceptable artifact (ELF checks, metadata, hash).
    #[error("{path}: {reason}")]
    Invalid {
        /// The artifact's path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The artifact was built for something else than expected.
    #[error("{path}: built for {what} {found}, expected {expected}")]
    Mismatch {
        /// The artifact's path.
        path: PathBuf,
        /// What differs (spec, code hash, CPU, ...).
        what: &'static str,
        /// What the artifact says.
        found: String,
        /// What was expected.
        expected: String,
    },
    /// `dlopen` refused it.
    #[error("{path}: dlopen failed: {reason}")]
    Dlopen {
        /// The artifact's path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The private copy to load from could not be written: trouble of this
    /// process or machine (temporary directory full), not of the artifact.
    #[error("{path}: cannot write the private copy to load: {source}")]
    PrivateCopy {
        /// The artifact's path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Its validated segments could not be mapped: trouble of this process
    /// (no address space or memory left under its limits) or of the file
    /// system (mounted `noexec`), not of the artifact.
    #[error("{path}: cannot map its segments: {source}")]
    Map {
        /// The artifact's path.
        path: PathBuf,
        /// The error of the system call.
        source: std::io::Error,
    },
}

/// What the caller expects an artifact to be for.
#[derive(Clone, Debug)]
pub struct Expect {
    /// Keccak-256 of the bytecode it must implement.
    pub code_hash: B256,
    /// The spec's name it must be compiled for.
    pub spec: String,
}

fn invalid(path: &Path, reason: impl Into<String>) -> LoadError {
    LoadError::Invalid {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// What a cache manifest pins about an artifact beyond [`Expect`].
#[derive(Clone, Debug)]
pub struct Pinned<'a> {
    /// [`content_hash`] of the whole file.
    pub content_hash: u128,
    /// File size in bytes.
    pub size: u64,
    /// Optimisation level in its metadata.
    pub opt_level: u8,
    /// Compiler build id in its metadata.
    pub compiler_version: &'a str,
    /// LLVM CPU name in its metadata.
    pub target_cpu: &'a str,
    /// CPU features in its metadata.
    pub cpu_features: &'a str,
}

/// The checksum a cache manifest pins and every cache hit verifies:
/// XXH3-128 of the artifact's bytes.
///
/// It has to catch accidents (a flipped bit, a torn or truncated write, a
/// file from elsewhere), not forgeries: whoever can write a cache entry
/// can rewrite its manifest too, so no hash in the manifest could stop
/// them (the cache refuses directories others can write instead, and the
/// loader's own checks stand behind that). Artefacts that cross machines
/// are checked against BLAKE3 under a signature by the store
/// (`cache::manifest::blake3_hex`). BLAKE3 here took 165 µs of a 290 µs
/// Seaport cache hit (668 KB) on an AMD EPYC family 25; XXH3-128 takes 27.
///
/// `twox-hash` computes it: it picks AVX2 when the CPU has it, at run
/// time, where `xxhash-rust` (used before, same values) fixes SSE2 at
/// build time for a binary that runs on any x86-64: 13-30 µs against
/// 27-62 over a 592 KiB artefact on that CPU.
pub fn content_hash(bytes: &[u8]) -> u128 {
    twox_hash::XxHash3_128::oneshot(bytes)
}

/// Where an artefact comes from.
#[derive(Debug)]
pub enum Source<'a> {
    /// A file, opened once here ([`open_artifact`]).
    Path(&'a Path),
    /// A file opened by the caller, not read yet.
    Opened(OpenedArtifact),
    /// A file opened and read by the caller.
    Read(ArtifactFile),
    /// Bytes in memory (named `path` in errors); always loaded from a
    /// private copy.
    Bytes {
        /// The name used in errors.
        path: &'a Path,
        /// The artifact's bytes.
        bytes: &'a [u8],
    },
}

impl<'a> From<&'a Path> for Source<'a> {
    fn from(path: &'a Path) -> Self {
        Source::Path(path)
    }
}

impl<'a> From<&'a PathBuf> for Source<'a> {
    fn from(path: &'a PathBuf) -> Self {
        Source::Path(path)
    }
}

impl From<OpenedArtifact> for Source<'_> {
    fn from(file: OpenedArtifact) -> Self {
        Source::Opened(file)
    }
}

impl From<ArtifactFile> for Source<'_> {
    fn from(file: ArtifactFile) -> Self {
        Source::Read(file)
    }
}

/// Checks and loads artefacts that must match one [`Expect`] (and, for
/// cache entries, what their manifest [`Pinned`]).
///
/// ```no_run
/// use evmc_runtime::{Expect, Loader};
/// use std::path::Path;
///
/// // `/tmp/add.so` compiled by `evmc_compiler::compile_to_file` from:
/// let code = [0x60, 0x01, 0x60, 0x02, 0x01, 0x00];
/// let code_hash = evmc_compiler::code_hash(&code);
/// let loader = Loader::new(Expect { code_hash, spec: "Osaka".into() });
/// let so = Path::new("/tmp/add.so");
/// loader.validate(so)?; // every check, nothing mapped
/// let artifact = loader.load(so)?;
/// assert_eq!(artifact.spec(), "Osaka");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Loader<'p> {
    expect: Expect,
    pinned: Option<Pinned<'p>>,
}

/// The bytes that passed every check, and where they came from.
enum Checked<'a> {
    File(ArtifactFile),
    Bytes(&'a Path, &'a [u8]),
}

impl<'p> Loader<'p> {
    /// A loader for artifacts that must match `expect`.
    pub fn new(expect: Expect) -> Self {
        Self {
            expect,
            pinned: None,
        }
    }

    /// Also requires what a cache manifest pins: the size is checked
    /// before the bytes are read, the content hash as they are read, both
    /// before they are parsed.
    pub fn pinned(mut self, pinned: Pinned<'p>) -> Self {
        self.pinned = Some(pinned);
        self
    }

    /// Every check [`Self::load`] makes before mapping anything; returns
    /// the artefact's metadata.
    pub fn validate<'a>(
        &self,
        source: impl Into<Source<'a>>,
    ) -> Result<ArtifactMetadata, LoadError> {
        self.check(source.into()).map(|(_, v)| v.metadata)
    }

    /// Validates the artefact and loads exactly the bytes validated: the
    /// file itself through its descriptor when it may be, otherwise a
    /// private copy (see [`open_artifact`]).
    pub fn load<'a>(&self, source: impl Into<Source<'a>>) -> Result<LoadedArtifact, LoadError> {
        match self.check(source.into())? {
            (Checked::File(file), v) => loaded::load_file(file, v),
            (Checked::Bytes(path, bytes), v) => loaded::load_bytes(path, bytes, v),
        }
    }

    fn check<'a>(&self, source: Source<'a>) -> Result<(Checked<'a>, elf::Validated), LoadError> {
        let checked = match source {
            Source::Path(path) => Checked::File(self.read(open_artifact(path)?)?),
            Source::Opened(opened) => Checked::File(self.read(opened)?),
            Source::Read(file) => {
                if let Some(p) = &self.pinned {
                    metadata::check_size(&file.path, file.bytes.len() as u64, p)?;
                    metadata::check_hash(&file.path, content_hash(&file.bytes), p)?;
                }
                Checked::File(file)
            }
            Source::Bytes { path, bytes } => {
                if let Some(p) = &self.pinned {
                    metadata::check_size(path, bytes.len() as u64, p)?;
                    metadata::check_hash(path, content_hash(bytes), p)?;
                }
                Checked::Bytes(path, bytes)
            }
        };
        let (path, bytes) = match &checked {
            Checked::File(f) => (f.path.as_path(), &*f.bytes),
            Checked::Bytes(path, bytes) => (*path, *bytes),
        };
        let v = elf::check(path, bytes)?;
        metadata::check_expected(path, &v.metadata, &self.expect)?;
        if let Some(p) = &self.pinned {
            metadata::check_pinned(path, &v.metadata, p)?;
        }
        Ok((checked, v))
    }

    /// Reads an opened file; when pinned, its size is checked first and
    /// its content hash as it is read.
    fn read(&self, opened: OpenedArtifact) -> Result<ArtifactFile, LoadError> {
        let Some(p) = &self.pinned else {
            return opened.read();
        };
        metadata::check_size(opened.path(), opened.len(), p)?;
        let mut hasher = twox_hash::XxHash3_128::new();
        let file = opened.read_hashed(Some(&mut hasher))?;
        metadata::check_hash(&file.path, hasher.finish_128(), p)?;
        Ok(file)
    }
}
