//! Checks of an artefact's ELF structure: an x86-64 shared object that
//! runs nothing when loaded, exports exactly the entry point and the
//! metadata record, and imports only a few libc memory functions. The
//! dynamic-loader view (`PT_DYNAMIC`, relocations) is checked in
//! [`super::dynamic`]; this module returns the metadata record for
//! [`super::metadata`] to check.

use super::image::Layout;
use super::{dynamic, invalid, LoadError, ALLOWED_IMPORTS};
use evmc_interface::{ArtifactMetadata, ENTRY_SYMBOL, METADATA_SYMBOL};
use object::elf;
use object::read::elf::{ElfFile64, FileHeader, ProgramHeader};
use object::{Object, ObjectSection, ObjectSymbol};
use std::path::Path;

/// What validation learnt that loading checks again.
pub(super) struct Validated {
    pub metadata: ArtifactMetadata,
    /// Distance between the two exported symbols in the validated file;
    /// the loaded library must show the same, or `dlsym` found other symbols.
    pub entry_minus_metadata: u64,
    /// The entry symbol's address in the file: where the library was put
    /// is the loaded entry's address minus this.
    pub entry_addr: u64,
    /// The segments mapped readable and not writable (address and size in
    /// the file's addresses, as far as the file holds them): the code, its
    /// tables and constants, which loading maps in whole (see
    /// `loaded::map_in`).
    pub read_only: Vec<(u64, u64)>,
    /// Where the segments go when the object can be mapped without the
    /// dynamic loader (see [`super::image`]).
    pub layout: Option<Layout>,
}

/// Checks the structure of `bytes`; returns the metadata record it carries,
/// not checked yet.
pub(super) fn check(path: &Path, bytes: &[u8]) -> Result<Validated, LoadError> {
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
    let mut binds_nothing = dynamic::check_dynamic(path, &file, bytes)?;

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
            binds_nothing = false;
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
    let phdrs = hdr
        .program_headers(endian, bytes)
        .map_err(|e| invalid(path, format!("bad program headers: {e}")))?;
    let layout = Layout::of(
        phdrs,
        endian,
        bytes.len() as u64,
        binds_nothing,
        entry_addr,
        (meta_addr, ArtifactMetadata::SIZE as u64),
    );
    let read_only = phdrs
        .iter()
        .filter(|ph| {
            let flags = ph.p_flags(endian);
            ph.p_type(endian) == elf::PT_LOAD && flags & elf::PF_R != 0 && flags & elf::PF_W == 0
        })
        // The part read from the file, which the file's size bounds: a
        // segment's zero-filled tail (its size in memory past it) is left
        // to be faulted in, however large a foreign file claims it is.
        .map(|ph| {
            (
                ph.p_vaddr(endian),
                ph.p_filesz(endian).min(ph.p_memsz(endian)),
            )
        })
        .collect();
    Ok(Validated {
        metadata: meta,
        entry_minus_metadata: entry_addr.wrapping_sub(meta_addr),
        entry_addr,
        read_only,
        layout,
    })
}
