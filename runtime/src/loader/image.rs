//! Mapping an artefact's segments directly, without the dynamic loader.
//!
//! The compiler's artefacts bind nothing at load time: no relocations, no
//! imports, no zero-filled memory, and the one writable segment holds only
//! the dynamic table, which nothing writes once `ld.so` is not involved.
//! Such an object is its segments placed at their offsets from one base,
//! so loading it is one reservation and one `mmap` per segment, every one
//! mapped without write permission, from the checked file or a sealed
//! private copy. `dlopen` did the same work and more: the path resolution
//! of `/proc/self/fd/N` (twice, with the `RTLD_NOLOAD` probe), a search of
//! every object it has loaded (longer with each artefact), its lists and
//! locks, and `dlsym`. A warm cache hit of a 52 KiB artefact took 81 µs of
//! CPU instead of 93, in `bench` the median hit 61-66 µs instead of 88-106
//! (benches/README.md, "Artefacts mapped without the dynamic loader"). An
//! object outside that shape (an older or foreign build that links
//! `memcpy`, say) still goes through `dlopen`.
//!
//! A cache entry is mapped whole to be hashed and checked (`mapping`);
//! when its segments lie at their own file offsets, as the compiler's
//! linker puts all but the dynamic table, that mapping becomes the image
//! ([`Image::adopt`]) and nothing is mapped a second time.

use super::mapping::Mapping;
use object::elf;
use object::read::elf::ProgramHeader;
use object::Endianness;
use std::fs::File;
use std::os::fd::AsRawFd;

const PAGE: u64 = 4096;

/// Largest address range an artefact's segments may span (its code and
/// tables are a few MiB at most; a foreign file claiming more is loaded by
/// `dlopen`, which bounds it by the file's size and the address space).
const MAX_SPAN: u64 = 256 << 20;

/// One segment: `len` bytes of the file from `offset`, placed at `vaddr`
/// from the base.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Segment {
    vaddr: u64,
    offset: u64,
    len: u64,
    exec: bool,
    writable: bool,
}

impl Segment {
    /// The whole pages it occupies: where they start from the base, how
    /// many bytes, and the file offset of the first.
    fn pages(&self) -> (usize, usize, libc::off_t) {
        let delta = self.vaddr % PAGE;
        (
            (self.vaddr - delta) as usize,
            (self.len + delta) as usize,
            (self.offset - delta) as libc::off_t,
        )
    }
}

/// Where an artefact's segments go, when it can be mapped directly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Layout {
    /// Bytes reserved from the base: the last segment's end, in pages.
    span: u64,
    segments: Vec<Segment>,
    /// Whether the file mapped whole from its first byte is the image
    /// already (see [`Image::adopt`]): every segment but the dynamic
    /// table's lies at its own offset, and the entry and the metadata
    /// record are in those.
    as_file: bool,
}

impl Layout {
    /// The layout of an object whose dynamic table binds nothing
    /// (`binds_nothing`: no relocations, no imports), if every loadable
    /// segment maps as it is: file bytes only (no zero-filled tail),
    /// offsets and addresses congruent modulo the page, pages apart,
    /// within the file and [`MAX_SPAN`], writable only where the dynamic
    /// table is, and `entry` and the `meta_len` bytes at `meta` inside
    /// them (the entry in executable code).
    pub(super) fn of(
        phdrs: &[elf::ProgramHeader64<Endianness>],
        endian: Endianness,
        file_len: u64,
        binds_nothing: bool,
        entry: u64,
        (meta, meta_len): (u64, u64),
    ) -> Option<Layout> {
        if !binds_nothing {
            return None;
        }
        let dynamic = phdrs
            .iter()
            .find(|ph| ph.p_type(endian) == elf::PT_DYNAMIC)
            .map(|ph| (ph.p_vaddr(endian), ph.p_memsz(endian)))?;
        let mut segments = Vec::new();
        let mut end_page = 0u64;
        for ph in phdrs.iter().filter(|ph| ph.p_type(endian) == elf::PT_LOAD) {
            let (vaddr, offset) = (ph.p_vaddr(endian), ph.p_offset(endian));
            let (len, memsz) = (ph.p_filesz(endian), ph.p_memsz(endian));
            let flags = ph.p_flags(endian);
            let end = vaddr.checked_add(len)?;
            let fits = len == memsz
                && len > 0
                && offset % PAGE == vaddr % PAGE
                && offset.checked_add(len)? <= file_len
                && end <= MAX_SPAN
                // In address order, no page shared with the previous one.
                && vaddr - vaddr % PAGE >= end_page;
            if !fits {
                return None;
            }
            if flags & elf::PF_W != 0 {
                // Mapped read-only: it may hold the dynamic table only.
                let (d, dlen) = dynamic;
                if vaddr < d || end > d.checked_add(dlen)? {
                    return None;
                }
            }
            end_page = end.div_ceil(PAGE) * PAGE;
            segments.push(Segment {
                vaddr,
                offset,
                len,
                exec: flags & elf::PF_X != 0,
                writable: flags & elf::PF_W != 0,
            });
        }
        let inside = |at: u64, n: u64, exec: bool, read_only: bool| {
            segments.iter().any(|s| {
                at >= s.vaddr
                    && at.saturating_add(n) <= s.vaddr + s.len
                    && (s.exec || !exec)
                    && (!s.writable || !read_only)
            })
        };
        if !inside(entry, 1, true, false) || !inside(meta, meta_len, false, false) {
            return None;
        }
        let as_file = segments.iter().all(|s| s.writable || s.vaddr == s.offset)
            && inside(entry, 1, true, true)
            && inside(meta, meta_len, false, true);
        Some(Layout {
            span: end_page,
            segments,
            as_file,
        })
    }

    /// Whether [`Image::adopt`] can make the image of this layout from a
    /// mapping of the whole file.
    pub(super) fn maps_as_file(&self) -> bool {
        self.as_file
    }

    /// Where the code and the read-only tables after it lie, from the
    /// base, and their length: what runs and what it reads (jump tables,
    /// constants), without the header page before the code.
    pub(super) fn code_and_tables(&self) -> (usize, usize) {
        let Some(start) = self.segments.iter().find(|s| s.exec).map(|s| s.vaddr) else {
            return (0, 0);
        };
        let end = self
            .segments
            .iter()
            .filter(|s| s.vaddr >= start && !s.writable)
            .map(|s| s.vaddr + s.len)
            .max()
            .unwrap_or(start);
        (start as usize, (end - start) as usize)
    }
}

/// An artefact mapped by [`Image::map_file`] or [`Image::map_bytes`]; its
/// whole reservation is unmapped on drop.
#[derive(Debug)]
pub(super) struct Image {
    base: *mut u8,
    span: usize,
}

// SAFETY: the mapping is owned by this value and never written through it;
// the code in it is called through the addresses it gives, from any thread.
unsafe impl Send for Image {}
// SAFETY: as above.
unsafe impl Sync for Image {}

impl Image {
    /// Address of the object's virtual address 0.
    pub(super) fn base(&self) -> usize {
        self.base as usize
    }

    /// Maps the segments of `file` (whose bytes were validated and cannot
    /// change: see `loader::open_artifact`), populated now so that the
    /// first run takes no page faults (`loaded::map_in` says why).
    pub(super) fn map_file(file: &File, layout: &Layout) -> std::io::Result<Image> {
        let image = Image::reserve(layout)?;
        for s in &layout.segments {
            let (at, len, offset) = s.pages();
            // SAFETY: a fixed mapping inside the reservation this value
            // owns (the layout keeps segments inside `span` and pages
            // apart), of a descriptor valid for the call.
            let p = unsafe {
                libc::mmap(
                    image.base.add(at).cast(),
                    len,
                    prot(s),
                    libc::MAP_PRIVATE | libc::MAP_FIXED | libc::MAP_POPULATE,
                    file.as_raw_fd(),
                    offset,
                )
            };
            if p == libc::MAP_FAILED {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(image)
    }

    /// Makes the image from `map`, the whole file mapped read-only from
    /// its first byte (and populated), when the layout
    /// [`Layout::maps_as_file`]: the executable segments are made
    /// executable in place, and nothing is mapped twice. The compiler's
    /// linker puts every segment at its own file offset but the dynamic
    /// table's, one page further: that one is left where the file has it,
    /// since nothing reads it once `ld.so` is not involved, and the entry
    /// and metadata are elsewhere. The rest of the file (its section
    /// headers, the padding between segments) stays mapped readable,
    /// bytes that were checked like the others.
    ///
    /// On a 592 KiB artefact a cache hit spent a third of its time mapping
    /// the segments apart, and a tenth on the page faults of the mapping
    /// its checksum was computed over.
    pub(super) fn adopt(map: Mapping, layout: &Layout) -> std::io::Result<Image> {
        debug_assert!(layout.as_file);
        let (base, span) = map.into_raw();
        let image = Image {
            base: base.cast_mut(),
            span,
        };
        for s in layout.segments.iter().filter(|s| s.exec && !s.writable) {
            let (at, len, _) = s.pages();
            // SAFETY: pages of the mapping this value now owns (the layout
            // keeps segments within the file, which the mapping covers).
            let r = unsafe { libc::mprotect(image.base.add(at).cast(), len, prot(s)) };
            if r != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(image)
    }

    /// Maps the segments of a private copy of `bytes` (validated, the
    /// whole file): an anonymous memory file, sealed against every change
    /// before it is mapped, so that no one can write to the code or
    /// truncate it under the mapping. Its name, `evmc-` and the first
    /// eight bytes of `code_hash` in hex, is what `/proc/self/maps` and
    /// `perf` show for the code, so that a profile tells the contracts
    /// apart.
    pub(super) fn map_bytes(
        bytes: &[u8],
        layout: &Layout,
        code_hash: &[u8; 32],
    ) -> std::io::Result<Image> {
        Image::map_file(&sealed_copy(bytes, &memfd_name(code_hash))?, layout)
    }

    /// A private anonymous reservation of the layout's span.
    fn reserve(layout: &Layout) -> std::io::Result<Image> {
        // SAFETY: a fresh anonymous mapping chosen by the kernel.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                layout.span as usize,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Image {
            base: p.cast(),
            span: layout.span as usize,
        })
    }
}

/// `evmc-` and the first eight bytes of `code_hash` in hex, NUL-terminated.
fn memfd_name(code_hash: &[u8; 32]) -> std::ffi::CString {
    let hex = hex::encode(&code_hash[..8]);
    std::ffi::CString::new(format!("evmc-{hex}")).expect("hex digits hold no NUL")
}

/// A sealed anonymous memory file named `name` holding `bytes`.
fn sealed_copy(bytes: &[u8], name: &std::ffi::CStr) -> std::io::Result<File> {
    use std::io::Write;
    use std::os::fd::FromRawFd;
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // SAFETY: a NUL-terminated name; the descriptor returned is ours.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), flags) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a descriptor just created, owned by nobody else.
    let mut file = unsafe { File::from_raw_fd(fd) };
    file.write_all(bytes)?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl on our descriptor.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(file)
}

fn prot(s: &Segment) -> libc::c_int {
    match s.exec {
        true => libc::PROT_READ | libc::PROT_EXEC,
        false => libc::PROT_READ,
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        // SAFETY: the reservation made in `reserve`; nothing runs its code
        // any more (the artefact owning this value is gone).
        unsafe { libc::munmap(self.base.cast(), self.span) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object::{U32, U64};

    const LE: Endianness = Endianness::Little;

    type Headers = Vec<elf::ProgramHeader64<Endianness>>;
    type Edit = (&'static str, fn(&mut Headers));

    fn ph(
        kind: u32,
        flags: u32,
        vaddr: u64,
        offset: u64,
        len: u64,
    ) -> elf::ProgramHeader64<Endianness> {
        elf::ProgramHeader64 {
            p_type: U32::new(LE, kind),
            p_flags: U32::new(LE, flags),
            p_offset: U64::new(LE, offset),
            p_vaddr: U64::new(LE, vaddr),
            p_paddr: U64::new(LE, vaddr),
            p_filesz: U64::new(LE, len),
            p_memsz: U64::new(LE, len),
            p_align: U64::new(LE, PAGE),
        }
    }

    /// The shape the compiler's linker gives an artefact: headers, code,
    /// constants, and the dynamic table alone in a writable segment.
    fn artefact() -> Headers {
        vec![
            ph(elf::PT_LOAD, elf::PF_R, 0, 0, 0x252),
            ph(elf::PT_LOAD, elf::PF_R | elf::PF_X, 0x1000, 0x1000, 0x7000),
            ph(elf::PT_LOAD, elf::PF_R, 0x8000, 0x8000, 0x1e80),
            ph(elf::PT_LOAD, elf::PF_R | elf::PF_W, 0xaf30, 0x9f30, 0xd0),
            ph(elf::PT_DYNAMIC, elf::PF_R | elf::PF_W, 0xaf30, 0x9f30, 0xd0),
        ]
    }

    fn layout(phdrs: &[elf::ProgramHeader64<Endianness>], binds_nothing: bool) -> Option<Layout> {
        Layout::of(phdrs, LE, 0xa000, binds_nothing, 0x1000, (0x8000, 0x100))
    }

    #[test]
    fn an_artefact_maps_directly_with_its_span_in_pages() {
        let l = layout(&artefact(), true).expect("the compiler's shape");
        assert_eq!(l.span, 0xb000);
        assert_eq!(l.segments.len(), 4);
        assert!(l.segments[1].exec && !l.segments[3].exec);
    }

    #[test]
    fn the_code_and_its_tables_are_what_is_fetched_before_a_run() {
        // From the code to the end of the constants: not the header page
        // before them, nor the dynamic table after.
        let l = layout(&artefact(), true).unwrap();
        assert_eq!(l.code_and_tables(), (0x1000, 0x8000 + 0x1e80 - 0x1000));
    }

    #[test]
    fn the_file_is_the_image_when_every_segment_but_the_dynamic_table_lies_at_its_offset() {
        assert!(layout(&artefact(), true).unwrap().maps_as_file());
        let edits: [Edit; 3] = [
            ("code a page further than in the file", |p| {
                for (i, vaddr) in [(1, 0x2000), (2, 0x9000), (3, 0xbf30), (4, 0xbf30)] {
                    p[i].p_vaddr = U64::new(LE, vaddr);
                }
            }),
            ("constants a page further", |p| {
                for (i, vaddr) in [(2, 0x9000), (3, 0xbf30), (4, 0xbf30)] {
                    p[i].p_vaddr = U64::new(LE, vaddr);
                }
            }),
            ("metadata in the writable segment", |p| {
                p[2].p_filesz = U64::new(LE, 0xe80);
                p[2].p_memsz = U64::new(LE, 0xe80);
                for i in [3, 4] {
                    p[i].p_vaddr = U64::new(LE, 0x9f30);
                    p[i].p_offset = U64::new(LE, 0x8f30);
                    p[i].p_filesz = U64::new(LE, 0x1000);
                    p[i].p_memsz = U64::new(LE, 0x1000);
                }
            }),
        ];
        for (what, edit) in edits {
            let mut p = artefact();
            edit(&mut p);
            // The metadata where each edit leaves readable bytes.
            let l = Layout::of(&p, LE, 0xb000, true, 0x2000, (0x9f40, 0x100));
            let l = l.unwrap_or_else(|| panic!("{what}: no longer maps directly"));
            assert!(!l.maps_as_file(), "{what}");
        }
    }

    #[test]
    fn anything_else_is_left_to_the_dynamic_loader() {
        assert_eq!(layout(&artefact(), false), None, "relocations or imports");
        let edits: [Edit; 8] = [
            ("zero-filled tail", |p| p[2].p_memsz = U64::new(LE, 0x3000)),
            ("shares a page", |p| p[2].p_vaddr = U64::new(LE, 0x7f00)),
            ("out of order", |p| p.swap(1, 2)),
            ("past the file", |p| p[2].p_filesz = U64::new(LE, 0x9000)),
            ("offset and address apart", |p| {
                p[2].p_offset = U64::new(LE, 0x8100)
            }),
            ("writable data", |p| {
                p[2].p_flags = U32::new(LE, elf::PF_R | elf::PF_W)
            }),
            ("no dynamic table", |p| {
                p.pop();
            }),
            ("entry not executable", |p| {
                p[1].p_flags = U32::new(LE, elf::PF_R)
            }),
        ];
        for (what, edit) in edits {
            let mut p = artefact();
            edit(&mut p);
            assert_eq!(layout(&p, true), None, "{what}");
        }
        let far = Layout::of(&artefact(), LE, 0xa000, true, 0x1000, (0x9f00, 0x200));
        assert_eq!(far, None, "metadata past its segment");
        let huge = {
            let mut p = artefact();
            p[3].p_vaddr = U64::new(LE, MAX_SPAN + 0xf30);
            p[4].p_vaddr = U64::new(LE, MAX_SPAN + 0xf30);
            p
        };
        assert_eq!(layout(&huge, true), None, "span past MAX_SPAN");
    }

    #[test]
    fn a_private_copy_is_named_after_its_code_hash() {
        let mut hash = [0u8; 32];
        hash[0] = 0xab;
        hash[7] = 0x01;
        hash[8] = 0xff;
        assert_eq!(memfd_name(&hash).to_str(), Ok("evmc-ab00000000000001"));
        let copy = sealed_copy(b"code", &memfd_name(&hash)).expect("a memory file");
        let link = std::fs::read_link(format!("/proc/self/fd/{}", copy.as_raw_fd()));
        let link = link.expect("its descriptor").display().to_string();
        assert!(link.starts_with("/memfd:evmc-ab00000000000001"), "{link}");
    }
}
