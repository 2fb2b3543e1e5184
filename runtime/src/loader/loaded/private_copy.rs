//! Loading a private copy of the checked bytes: a fresh file under a fresh
//! name that nobody else can write, removed once it is mapped.

use super::{dlopen_error, LoadError, DLOPEN_FLAGS};
use std::path::{Path, PathBuf};

/// `dlopen` of a private copy of the validated bytes.
pub(super) fn dlopen(
    path: &Path,
    bytes: &[u8],
) -> Result<libloading::os::unix::Library, LoadError> {
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
