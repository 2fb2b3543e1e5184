//! Loading a private copy of the checked bytes: a fresh file under a fresh
//! name that nobody else can write, removed once it is mapped.

use super::{dlopen_error, LoadError, DLOPEN_FLAGS};
use std::path::Path;

/// `dlopen` of a private copy of the validated bytes.
pub(super) fn dlopen(
    path: &Path,
    bytes: &[u8],
) -> Result<libloading::os::unix::Library, LoadError> {
    let copy = write_copy(bytes).map_err(|source| LoadError::PrivateCopy {
        path: path.to_path_buf(),
        source,
    })?;
    // SAFETY: the bytes were validated: no initialisers run on load, and
    // the only code we call is the entry point with our own ABI.
    let lib = unsafe { libloading::os::unix::Library::open(Some(&*copy), DLOPEN_FLAGS) }
        .map_err(dlopen_error(path))?;
    // Removes the file; the mapping keeps its pages alive.
    drop(copy);
    Ok(lib)
}

/// A private copy of the validated bytes under a fresh random name, removed
/// when dropped. The name must never repeat while a library is loaded: the
/// dynamic loader returns an already loaded object when asked for a path
/// it has seen.
fn write_copy(bytes: &[u8]) -> std::io::Result<tempfile::TempPath> {
    use std::io::Write;
    let mut file = tempfile::Builder::new()
        .prefix(".evmc-load-")
        .suffix(".so")
        .tempfile()?;
    file.write_all(bytes)?;
    file.flush()?;
    Ok(file.into_temp_path())
}
