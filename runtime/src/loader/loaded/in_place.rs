//! Loading the checked file itself, through the descriptor it was read
//! from (`/proc/self/fd/N`), when only our user can change it (see
//! [`crate::loader::open_artifact`] for when that is sound).

use super::{dlopen_error, LoadError, DLOPEN_FLAGS};
use std::collections::BTreeSet;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, OnceLock};

/// `/proc/self/fd` is there (procfs mounted), checked once.
pub(super) fn proc_fd_works() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| Path::new("/proc/self/fd").is_dir())
}

/// (device, inode) of the files loaded in place and not unloaded yet. The
/// lock also keeps the checks and the `dlopen` of one in-place load
/// together.
static LOADED_IN_PLACE: Mutex<BTreeSet<(u64, u64)>> = Mutex::new(BTreeSet::new());

fn loaded_in_place() -> MutexGuard<'static, BTreeSet<(u64, u64)>> {
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
pub(super) struct InPlace {
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
/// `None` if it may know them (see [`crate::loader::open_artifact`]).
pub(super) fn dlopen(
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
