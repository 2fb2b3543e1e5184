//! Mapping a validated artefact: its segments directly when it binds
//! nothing at load time ([`super::image`], every artefact this compiler
//! builds), else through the dynamic loader, from the file itself through
//! its descriptor ([`in_place`]) or from a private copy of the checked
//! bytes ([`private_copy`]); then checking that the loaded object shows
//! exactly the entry and metadata that were validated.

mod in_place;
mod private_copy;

use super::elf::Validated;
use super::file::ArtifactFile;
use super::image::{Image, Layout};
use super::mapping::Bytes;
use super::warm::Warmth;
use super::{invalid, LoadError};
use crate::safety_net::{NetRecord, NetReport};
use evmc_compiler::B256;
use evmc_interface::{ArtifactMetadata, EntryFn, ENTRY_SYMBOL, METADATA_SYMBOL};
use in_place::InPlace;
use std::path::{Path, PathBuf};

/// A validated, loaded artifact. The library stays loaded while this lives.
pub struct LoadedArtifact {
    entry: EntryFn,
    /// The metadata record embedded in the artifact.
    pub metadata: ArtifactMetadata,
    /// Where it was loaded from (as given to the loader).
    pub path: PathBuf,
    object: Object,
    /// Whether the file itself is mapped rather than a copy of its bytes.
    in_place: bool,
    /// How its frames ran against the interpreter (see [`crate::safety_net`]).
    pub(crate) net: NetRecord,
    /// Its code and tables, fetched before its first frame of a block.
    pub(crate) warmth: Warmth,
}

/// What keeps the code mapped.
enum Object {
    Mapped {
        _image: Image,
    },
    Library {
        // Dropped in this order: the library is unloaded before the
        // descriptor its name refers to is closed.
        _lib: libloading::Library,
        /// The artifact's own descriptor when it was loaded through it:
        /// the library's name, `/proc/self/fd/N`, must not name another
        /// file while the library is loaded.
        _in_place: Option<InPlace>,
    },
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
    /// The compiled contract's entry point.
    pub fn entry(&self) -> EntryFn {
        self.entry
    }
    /// What the safety net measured for it: native against interpreted
    /// time per gas and the verdict taken (only when the registry's
    /// safety net is on).
    pub fn safety_net(&self) -> NetReport {
        self.net.report()
    }
    /// Bytes of its code and tables fetched into the cache before its
    /// first frame of a block (0 when the dynamic loader placed it); for
    /// tests.
    #[doc(hidden)]
    pub fn code_fetch_bytes(&self) -> usize {
        self.warmth.len()
    }
    /// Times its code was fetched so far; for tests.
    #[doc(hidden)]
    pub fn code_fetches(&self) -> u64 {
        self.warmth.fetches()
    }
    /// Keccak-256 of the bytecode it implements.
    pub fn code_hash(&self) -> B256 {
        B256::from(self.metadata.code_hash)
    }
    /// The spec's name it was compiled for.
    pub fn spec(&self) -> &str {
        ArtifactMetadata::str_field(&self.metadata.spec)
    }
    /// Whether the file itself was loaded (through its descriptor) rather
    /// than a private copy of its checked bytes.
    pub fn loaded_in_place(&self) -> bool {
        self.in_place
    }
    /// Whether its segments were mapped directly rather than by the
    /// dynamic loader (see `loader::image`); for tests.
    #[doc(hidden)]
    pub fn mapped_directly(&self) -> bool {
        matches!(self.object, Object::Mapped { .. })
    }
}

fn dlopen_error(path: &Path) -> impl Fn(libloading::Error) -> LoadError + '_ {
    move |e| LoadError::Dlopen {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

const DLOPEN_FLAGS: std::ffi::c_int =
    libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_LOCAL;

/// Loads the validated `file`: the file itself when it may be (mapped
/// directly, or through its descriptor when `ld.so` will map it afresh),
/// else a private copy of its bytes.
pub(super) fn load_file(file: ArtifactFile, v: Validated) -> Result<LoadedArtifact, LoadError> {
    if let Some(layout) = &v.layout {
        let ArtifactFile {
            path,
            file,
            bytes,
            in_place,
            ..
        } = file;
        let image = match (in_place, bytes) {
            (true, Bytes::Mapped(map)) if layout.maps_as_file() => Image::adopt(map, layout),
            (true, _) => Image::map_file(&file, layout),
            (false, bytes) => Image::map_bytes(&bytes, layout, &v.metadata.code_hash),
        };
        return finish_mapped(&path, image, in_place, v);
    }
    if file.in_place && in_place::proc_fd_works() {
        let ArtifactFile {
            path,
            file,
            bytes,
            id,
            ..
        } = file;
        return match in_place::dlopen(&path, file, id)? {
            Some((lib, in_place)) => finish_load(&path, lib, Some(in_place), v),
            None => {
                let lib = private_copy::dlopen(&path, &bytes)?;
                finish_load(&path, lib, None, v)
            }
        };
    }
    let lib = private_copy::dlopen(&file.path, &file.bytes)?;
    finish_load(&file.path, lib, None, v)
}

/// Loads a private copy of the validated `bytes`.
pub(super) fn load_bytes(
    path: &Path,
    bytes: &[u8],
    v: Validated,
) -> Result<LoadedArtifact, LoadError> {
    if let Some(layout) = &v.layout {
        return finish_mapped(
            path,
            Image::map_bytes(bytes, layout, &v.metadata.code_hash),
            false,
            v,
        );
    }
    let lib = private_copy::dlopen(path, bytes)?;
    finish_load(path, lib, None, v)
}

/// Checks that the object mapped by [`Image`] holds the validated metadata
/// where the file put it; the entry is where the file says (the layout
/// keeps it inside an executable segment).
fn finish_mapped(
    path: &Path,
    image: std::io::Result<Image>,
    in_place: bool,
    v: Validated,
) -> Result<LoadedArtifact, LoadError> {
    let image = image.map_err(|source| LoadError::Map {
        path: path.to_path_buf(),
        source,
    })?;
    let entry_at = image.base().wrapping_add(v.entry_addr as usize);
    let meta_at = entry_at.wrapping_sub(v.entry_minus_metadata as usize);
    // SAFETY: the layout keeps the metadata record inside a mapped,
    // readable segment of the image.
    let loaded =
        unsafe { std::slice::from_raw_parts(meta_at as *const u8, ArtifactMetadata::SIZE) };
    if loaded != v.metadata.as_bytes() {
        return Err(invalid(
            path,
            "mapped metadata differs from the validated file",
        ));
    }
    // SAFETY: the validated entry symbol's address in the mapped image: the
    // code generated with our ABI.
    let entry: EntryFn = unsafe { std::mem::transmute::<usize, EntryFn>(entry_at) };
    let (code_at, code_len) = v.layout.as_ref().map_or((0, 0), Layout::code_and_tables);
    let warmth = Warmth::new(image.base().wrapping_add(code_at), code_len);
    Ok(LoadedArtifact {
        entry,
        metadata: v.metadata,
        path: path.to_path_buf(),
        object: Object::Mapped { _image: image },
        in_place,
        net: NetRecord::default(),
        warmth,
    })
}

/// Checks that the loaded library shows the validated symbols and metadata.
fn finish_load(
    path: &Path,
    lib: libloading::os::unix::Library,
    in_place: Option<InPlace>,
    v: Validated,
) -> Result<LoadedArtifact, LoadError> {
    match checked_entry(path, &lib, &v) {
        Ok(entry) => {
            map_in(entry, &v);
            Ok(LoadedArtifact {
                entry,
                metadata: v.metadata,
                path: path.to_path_buf(),
                in_place: in_place.is_some(),
                object: Object::Library {
                    _lib: lib.into(),
                    _in_place: in_place,
                },
                net: NetRecord::default(),
                // Where `ld.so` put the code is not tracked: such an
                // artefact (not one this compiler builds) is not fetched.
                warmth: Warmth::default(),
            })
        }
        Err(e) => {
            // Unloaded before its name, `/proc/self/fd/N`, is released.
            drop(lib);
            drop(in_place);
            Err(e)
        }
    }
}

/// Maps the loaded library's read-only segments (code, jump tables,
/// constants) into the page tables now, one system call each, rather than
/// at page faults when its code first runs. `ld.so` maps the file without
/// populating it, so the first run of each artefact took a fault for each
/// group of pages of code it touched (the kernel maps the pages around a
/// fault with it, 64 KiB by default): with every contract of the shared
/// real blocks compiled, a first native run of the blocks took
/// 0.154-0.205 s, and 0.125-0.141 s with the segments mapped at load,
/// which costs about as much CPU ("Real blocks: the first run of an
/// artefact" in benches/README.md). A
/// node loads before it runs, so the work leaves the block. A kernel
/// without `MADV_POPULATE_READ` (before 5.14) refuses it with `EINVAL`,
/// and a read of each page maps them instead.
fn map_in(entry: EntryFn, v: &Validated) {
    const PAGE: usize = 4096;
    let base = (entry as usize).wrapping_sub(v.entry_addr as usize);
    for &(addr, size) in &v.read_only {
        let start = base.wrapping_add(addr as usize) & !(PAGE - 1);
        let end = base.wrapping_add(addr.saturating_add(size) as usize);
        if end <= start {
            continue;
        }
        // SAFETY: the range is a readable segment of the library just
        // loaded and validated (its entry symbol is where the file says),
        // mapped while the library stays loaded.
        let r = unsafe { libc::madvise(start as *mut _, end - start, libc::MADV_POPULATE_READ) };
        if r != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
            for p in (start..end).step_by(PAGE) {
                // SAFETY: as above; a read maps the page in.
                unsafe { std::ptr::read_volatile(p as *const u8) };
            }
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
