//! The bytes of an artefact: read into memory, or the file mapped
//! read-only when it cannot change while we look at it (a cache entry).
//!
//! Reading copies every byte from the page cache before the content hash
//! reads them again; for a 768 KB artefact the copy was a sixth of a cache
//! hit (`perf` of repeated `ArtifactCache::get`). A mapping lets the hash
//! and the ELF checks read the page cache directly, and then serves as
//! the loaded image itself (`Image::adopt`), whatever the file's size:
//! a warm hit of a 72 KiB artefact took 72-77 µs of CPU so, against
//! 89-118 read into memory and its segments mapped apart (592 KiB:
//! 140-155 against 245-257).

use std::fs::File;
use std::os::fd::AsRawFd;

/// An artefact's bytes, however they were obtained.
#[derive(Debug)]
pub(super) enum Bytes {
    Read(Vec<u8>),
    Mapped(Mapping),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Read(v) => v,
            Bytes::Mapped(m) => m.as_slice(),
        }
    }
}

/// A private read-only mapping of a whole file, unmapped on drop.
///
/// Sound to read only while nobody truncates the file: a page past the
/// end of a truncated file raises `SIGBUS`. Only files that are never
/// rewritten in place are mapped (cache entries: published read-only by
/// rename, in directories only our user can write), and only when only
/// our user can change them; `dlopen` maps those same files anyway, so a
/// mapping exposes nothing loading them in place does not.
#[derive(Debug)]
pub(super) struct Mapping {
    ptr: *const u8,
    len: usize,
}

// SAFETY: a read-only mapping owned by this value; nothing writes through it.
unsafe impl Send for Mapping {}
// SAFETY: as above; shared reads of immutable memory.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps the first `len` (> 0) bytes of `file`, populated now: the
    /// content hash reads every page, and the mapping usually becomes the
    /// loaded image (`Image::adopt`), whose first run must take no page
    /// faults.
    pub(super) fn new(file: &File, len: usize) -> std::io::Result<Self> {
        // SAFETY: a fresh mapping chosen by the kernel; the descriptor is
        // valid for the call.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_POPULATE,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Mapping {
            ptr: ptr.cast(),
            len,
        })
    }

    /// The address and length, for a new owner that unmaps them.
    pub(super) fn into_raw(self) -> (*const u8, usize) {
        let raw = (self.ptr, self.len);
        std::mem::forget(self);
        raw
    }

    pub(super) fn as_slice(&self) -> &[u8] {
        // SAFETY: `len` readable bytes mapped at `ptr` while `self` lives.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, not used after this.
        unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.len) };
    }
}
