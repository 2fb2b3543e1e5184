//! What `ld.so` will do with a file: its program headers, its `PT_DYNAMIC`
//! table and the relocations that table names. Section headers are only
//! advisory to the dynamic loader, so every check that matters for what
//! runs at `dlopen` time is made on these structures.

use super::{invalid, LoadError, ALLOWED_IMPORTS};
use object::elf;
use object::read::elf::{Dyn, ElfFile64, FileHeader, ProgramHeader, SectionHeader};
use object::Endianness;
use std::path::Path;

/// Dynamic tags an artifact may carry. Anything else (initialisers,
/// dependencies, search paths, audit libraries, text relocations…) is refused.
const ALLOWED_TAGS: &[u32] = &[
    elf::DT_NULL,
    elf::DT_HASH,
    elf::DT_GNU_HASH,
    elf::DT_STRTAB,
    elf::DT_SYMTAB,
    elf::DT_STRSZ,
    elf::DT_SYMENT,
    elf::DT_SONAME,
    elf::DT_FLAGS,
    elf::DT_FLAGS_1,
    elf::DT_BIND_NOW,
    elf::DT_RELA,
    elf::DT_RELASZ,
    elf::DT_RELAENT,
    elf::DT_RELACOUNT,
    elf::DT_JMPREL,
    elf::DT_PLTRELSZ,
    elf::DT_PLTREL,
    elf::DT_PLTGOT,
    DT_RELRSZ,
    DT_RELR,
    DT_RELRENT,
    elf::DT_VERSYM,
    elf::DT_VERDEF,
    elf::DT_VERDEFNUM,
];

/// Relocations that only write addresses: no resolver code (IRELATIVE),
/// no TLS set-up, no copies into the host.
const ALLOWED_RELOCS: &[u32] = &[
    elf::R_X86_64_NONE,
    elf::R_X86_64_64,
    elf::R_X86_64_GLOB_DAT,
    elf::R_X86_64_JUMP_SLOT,
    elf::R_X86_64_RELATIVE,
];

// Packed relative relocations (only relative: no symbol, no code).
const DT_RELRSZ: u32 = 35;
const DT_RELR: u32 = 36;
const DT_RELRENT: u32 = 37;

const SYM_SIZE: u64 = 24;
const RELA_SIZE: u64 = 24;

/// Checks the dynamic-loader view of the object; returns whether it binds
/// nothing at load time (no relocation entries at all), which
/// [`super::image`] needs to map it without `ld.so`.
pub(super) fn check_dynamic(
    path: &Path,
    file: &ElfFile64<'_, Endianness>,
    bytes: &[u8],
) -> Result<bool, LoadError> {
    let endian = file.endian();
    if !file.elf_header().is_little_endian() {
        return Err(invalid(path, "not a little-endian object"));
    }
    let phdrs = file.elf_program_headers();
    let mut dynamic = None;
    let mut has_stack_note = false;
    for ph in phdrs {
        let flags = ph.p_flags(endian);
        match ph.p_type(endian) {
            elf::PT_INTERP => return Err(invalid(path, "has a program interpreter")),
            elf::PT_TLS => return Err(invalid(path, "has thread-local storage")),
            elf::PT_LOAD if flags & elf::PF_W != 0 && flags & elf::PF_X != 0 => {
                return Err(invalid(path, "has a writable and executable segment"))
            }
            elf::PT_GNU_STACK => {
                if flags & elf::PF_X != 0 {
                    // dlopen would make every thread stack of the host executable.
                    return Err(invalid(path, "asks for an executable stack"));
                }
                has_stack_note = true;
            }
            elf::PT_DYNAMIC => {
                if dynamic.is_some() {
                    return Err(invalid(path, "has more than one dynamic segment"));
                }
                let d = ph
                    .dynamic(endian, bytes)
                    .ok()
                    .flatten()
                    .ok_or_else(|| invalid(path, "dynamic segment outside the file"))?;
                dynamic = Some(d);
            }
            _ => {}
        }
    }
    if !has_stack_note {
        // Without PT_GNU_STACK, glibc assumes the object needs an executable stack.
        return Err(invalid(path, "has no PT_GNU_STACK header"));
    }
    let dynamic = dynamic.ok_or_else(|| invalid(path, "has no dynamic segment"))?;

    let tag_value = |tag: u32| -> Option<u64> {
        dynamic
            .iter()
            .find(|d| d.d_tag(endian) as u32 == tag)
            .map(|d| d.d_val(endian))
    };
    for d in dynamic {
        let tag64 = d.d_tag(endian);
        let tag = tag64 as u32;
        if tag as u64 != tag64 || !ALLOWED_TAGS.contains(&tag) {
            let what = match tag {
                elf::DT_INIT | elf::DT_INIT_ARRAY | elf::DT_PREINIT_ARRAY => "an initialiser",
                elf::DT_FINI | elf::DT_FINI_ARRAY => "a finaliser",
                elf::DT_NEEDED => "a dependency on another shared library",
                _ => "an unexpected entry",
            };
            return Err(invalid(
                path,
                format!("has {what} in its dynamic table (tag {tag64:#x})"),
            ));
        }
        if tag == elf::DT_NULL {
            break;
        }
    }

    // The symbol table ld.so binds with must be the one the caller checked.
    let dynsym = file
        .elf_section_table()
        .iter()
        .find(|s| s.sh_type(endian) == elf::SHT_DYNSYM)
        .ok_or_else(|| invalid(path, "has no dynamic symbol table"))?;
    let symtab = tag_value(elf::DT_SYMTAB).ok_or_else(|| invalid(path, "has no DT_SYMTAB"))?;
    if symtab != dynsym.sh_addr(endian) {
        return Err(invalid(
            path,
            "dynamic segment and section headers disagree on the symbol table",
        ));
    }
    let nsyms = dynsym.sh_size(endian) / SYM_SIZE;
    let strtab = tag_value(elf::DT_STRTAB).ok_or_else(|| invalid(path, "has no DT_STRTAB"))?;
    let strsz = tag_value(elf::DT_STRSZ).unwrap_or(0);
    let strings = at_vaddr(file, bytes, strtab, strsz)
        .ok_or_else(|| invalid(path, "string table outside the file"))?;
    let syms = at_vaddr(file, bytes, symtab, nsyms * SYM_SIZE)
        .ok_or_else(|| invalid(path, "symbol table outside the file"))?;

    if let Some(pltrel) = tag_value(elf::DT_PLTREL) {
        if pltrel != elf::DT_RELA as u64 {
            return Err(invalid(path, "uses REL relocations"));
        }
    }
    let tables = [
        (elf::DT_RELA, elf::DT_RELASZ),
        (elf::DT_JMPREL, elf::DT_PLTRELSZ),
    ];
    let mut binds_nothing = tag_value(DT_RELRSZ).unwrap_or(0) == 0;
    for (at, size) in tables {
        let Some(addr) = tag_value(at) else { continue };
        let size = tag_value(size).unwrap_or(0);
        binds_nothing &= size == 0;
        let relocs = at_vaddr(file, bytes, addr, size)
            .ok_or_else(|| invalid(path, "relocation table outside the file"))?;
        for r in relocs.chunks_exact(RELA_SIZE as usize) {
            let info = u64::from_le_bytes(r[8..16].try_into().expect("8 bytes"));
            let (sym, kind) = (info >> 32, info as u32);
            if !ALLOWED_RELOCS.contains(&kind) {
                return Err(invalid(path, format!("has a relocation of type {kind}")));
            }
            if sym == 0 {
                continue;
            }
            if sym >= nsyms {
                return Err(invalid(path, "relocation against a symbol past the table"));
            }
            check_bound_symbol(path, syms, strings, sym)?;
        }
    }
    Ok(binds_nothing)
}

/// A symbol a relocation binds: our own, or an allowed libc import; never
/// an indirect function (whose resolver would run at load time).
fn check_bound_symbol(
    path: &Path,
    syms: &[u8],
    strings: &[u8],
    index: u64,
) -> Result<(), LoadError> {
    let s = &syms[(index * SYM_SIZE) as usize..][..SYM_SIZE as usize];
    let name_off = u32::from_le_bytes(s[0..4].try_into().expect("4 bytes")) as usize;
    let kind = s[4] & 0xf;
    let shndx = u16::from_le_bytes(s[6..8].try_into().expect("2 bytes"));
    let name = strings
        .get(name_off..)
        .and_then(|t| t.split(|&b| b == 0).next())
        .map(String::from_utf8_lossy)
        .ok_or_else(|| invalid(path, "symbol name outside the string table"))?;
    if kind == elf::STT_GNU_IFUNC || kind == elf::STT_TLS {
        return Err(invalid(
            path,
            format!("binds `{name}` of symbol type {kind}"),
        ));
    }
    if shndx == elf::SHN_UNDEF && !ALLOWED_IMPORTS.contains(&name.as_ref()) {
        return Err(invalid(path, format!("imports unexpected symbol `{name}`")));
    }
    Ok(())
}

/// File bytes backing `size` bytes at virtual address `addr`.
fn at_vaddr<'a>(
    file: &ElfFile64<'_, Endianness>,
    bytes: &'a [u8],
    addr: u64,
    size: u64,
) -> Option<&'a [u8]> {
    let endian = file.endian();
    file.elf_program_headers().iter().find_map(|ph| {
        if ph.p_type(endian) != elf::PT_LOAD {
            return None;
        }
        let (start, filesz) = (ph.p_vaddr(endian), ph.p_filesz(endian));
        let rel = addr.checked_sub(start)?;
        if rel.checked_add(size)? > filesz {
            return None;
        }
        let off = ph.p_offset(endian).checked_add(rel)?;
        bytes.get(off as usize..(off.checked_add(size)?) as usize)
    })
}
