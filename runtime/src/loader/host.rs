//! What this machine can run, asked of the CPU directly (`cpuid`, `xgetbv`)
//! rather than of LLVM, so that loading needs no compiler. Features carry
//! LLVM's names, the names artefacts list as required: each entry below
//! reads the bit LLVM's own host query reads, under the same condition on
//! the register state the OS saves (a vector unit whose registers the OS
//! does not save on a context switch cannot be used). A required feature
//! not in this table is never reported, so an artefact needing it is
//! refused.

use std::collections::HashSet;
use std::sync::OnceLock;

/// Which `cpuid` output register a feature bit is in.
#[derive(Clone, Copy)]
enum Reg {
    Eax,
    Ebx,
    Ecx,
    Edx,
}

/// Register state the OS must save for a feature to be usable.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// None beyond the general-purpose and SSE state.
    Base,
    /// YMM (XCR0 bits 1 and 2), with OSXSAVE and the AVX bit itself.
    Avx,
    /// YMM plus the opmask and ZMM state (XCR0 bits 5 to 7).
    Avx512,
    /// The AMX tile configuration and data (XCR0 bits 17 and 18).
    Amx,
}

/// (LLVM name, leaf, subleaf, register, bit, state).
type Bit = (&'static str, u32, u32, Reg, u32, State);

use Reg::{Eax, Ebx, Ecx, Edx};
use State::{Amx, Avx, Avx512, Base};

const EXT: u32 = 0x8000_0000;

const FEATURES: &[Bit] = &[
    ("cx8", 1, 0, Edx, 8, Base),
    ("cmov", 1, 0, Edx, 15, Base),
    ("mmx", 1, 0, Edx, 23, Base),
    ("fxsr", 1, 0, Edx, 24, Base),
    ("sse", 1, 0, Edx, 25, Base),
    ("sse2", 1, 0, Edx, 26, Base),
    ("sse3", 1, 0, Ecx, 0, Base),
    ("pclmul", 1, 0, Ecx, 1, Base),
    ("ssse3", 1, 0, Ecx, 9, Base),
    ("fma", 1, 0, Ecx, 12, Avx),
    ("cx16", 1, 0, Ecx, 13, Base),
    ("sse4.1", 1, 0, Ecx, 19, Base),
    ("sse4.2", 1, 0, Ecx, 20, Base),
    // LLVM's CRC32 feature is SSE4.2's CRC32 instruction.
    ("crc32", 1, 0, Ecx, 20, Base),
    ("movbe", 1, 0, Ecx, 22, Base),
    ("popcnt", 1, 0, Ecx, 23, Base),
    ("aes", 1, 0, Ecx, 25, Base),
    // LLVM reports XSAVE only when the OS saves the YMM state.
    ("xsave", 1, 0, Ecx, 26, Avx),
    ("avx", 1, 0, Ecx, 28, Avx),
    ("f16c", 1, 0, Ecx, 29, Avx),
    ("rdrnd", 1, 0, Ecx, 30, Base),
    ("fsgsbase", 7, 0, Ebx, 0, Base),
    ("sgx", 7, 0, Ebx, 2, Base),
    ("bmi", 7, 0, Ebx, 3, Base),
    ("avx2", 7, 0, Ebx, 5, Avx),
    ("bmi2", 7, 0, Ebx, 8, Base),
    ("invpcid", 7, 0, Ebx, 10, Base),
    ("rtm", 7, 0, Ebx, 11, Base),
    ("avx512f", 7, 0, Ebx, 16, Avx512),
    // LLVM marks every AVX-512 host as having the 512-bit encodings.
    ("evex512", 7, 0, Ebx, 16, Avx512),
    ("avx512dq", 7, 0, Ebx, 17, Avx512),
    ("rdseed", 7, 0, Ebx, 18, Base),
    ("adx", 7, 0, Ebx, 19, Base),
    ("avx512ifma", 7, 0, Ebx, 21, Avx512),
    ("clflushopt", 7, 0, Ebx, 23, Base),
    ("clwb", 7, 0, Ebx, 24, Base),
    ("avx512cd", 7, 0, Ebx, 28, Avx512),
    ("sha", 7, 0, Ebx, 29, Base),
    ("avx512bw", 7, 0, Ebx, 30, Avx512),
    ("avx512vl", 7, 0, Ebx, 31, Avx512),
    ("avx512vbmi", 7, 0, Ecx, 1, Avx512),
    ("pku", 7, 0, Ecx, 4, Base),
    ("waitpkg", 7, 0, Ecx, 5, Base),
    ("avx512vbmi2", 7, 0, Ecx, 6, Avx512),
    ("shstk", 7, 0, Ecx, 7, Base),
    ("gfni", 7, 0, Ecx, 8, Base),
    ("vaes", 7, 0, Ecx, 9, Avx),
    ("vpclmulqdq", 7, 0, Ecx, 10, Avx),
    ("avx512vnni", 7, 0, Ecx, 11, Avx512),
    ("avx512bitalg", 7, 0, Ecx, 12, Avx512),
    ("avx512vpopcntdq", 7, 0, Ecx, 14, Avx512),
    ("rdpid", 7, 0, Ecx, 22, Base),
    ("kl", 7, 0, Ecx, 23, Base),
    ("cldemote", 7, 0, Ecx, 25, Base),
    ("movdiri", 7, 0, Ecx, 27, Base),
    ("movdir64b", 7, 0, Ecx, 28, Base),
    ("enqcmd", 7, 0, Ecx, 29, Base),
    ("uintr", 7, 0, Edx, 5, Base),
    ("avx512vp2intersect", 7, 0, Edx, 8, Avx512),
    ("serialize", 7, 0, Edx, 14, Base),
    ("tsxldtrk", 7, 0, Edx, 16, Base),
    ("pconfig", 7, 0, Edx, 18, Base),
    ("amx-bf16", 7, 0, Edx, 22, Amx),
    ("avx512fp16", 7, 0, Edx, 23, Avx512),
    ("amx-tile", 7, 0, Edx, 24, Amx),
    ("amx-int8", 7, 0, Edx, 25, Amx),
    ("sha512", 7, 1, Eax, 0, Avx),
    ("sm3", 7, 1, Eax, 1, Avx),
    ("sm4", 7, 1, Eax, 2, Avx),
    ("raoint", 7, 1, Eax, 3, Base),
    ("avxvnni", 7, 1, Eax, 4, Avx),
    ("avx512bf16", 7, 1, Eax, 5, Avx512),
    ("cmpccxadd", 7, 1, Eax, 7, Base),
    ("amx-fp16", 7, 1, Eax, 21, Amx),
    ("hreset", 7, 1, Eax, 22, Base),
    ("avxifma", 7, 1, Eax, 23, Avx),
    ("avxvnniint8", 7, 1, Edx, 4, Avx),
    ("avxneconvert", 7, 1, Edx, 5, Avx),
    ("amx-complex", 7, 1, Edx, 8, Amx),
    ("avxvnniint16", 7, 1, Edx, 10, Avx),
    ("prefetchi", 7, 1, Edx, 14, Base),
    ("usermsr", 7, 1, Edx, 15, Base),
    ("avx10.1-256", 7, 1, Edx, 19, Avx512),
    ("xsaveopt", 0xd, 1, Eax, 0, Avx),
    ("xsavec", 0xd, 1, Eax, 1, Avx),
    ("xsaves", 0xd, 1, Eax, 3, Avx),
    ("ptwrite", 0x14, 0, Ebx, 4, Base),
    ("widekl", 0x19, 0, Ebx, 2, Base),
    ("sahf", EXT + 1, 0, Ecx, 0, Base),
    ("lzcnt", EXT + 1, 0, Ecx, 5, Base),
    ("sse4a", EXT + 1, 0, Ecx, 6, Base),
    ("prfchw", EXT + 1, 0, Ecx, 8, Base),
    ("xop", EXT + 1, 0, Ecx, 11, Avx),
    ("lwp", EXT + 1, 0, Ecx, 15, Base),
    ("fma4", EXT + 1, 0, Ecx, 16, Avx),
    ("tbm", EXT + 1, 0, Ecx, 21, Base),
    ("mwaitx", EXT + 1, 0, Ecx, 29, Base),
    ("64bit", EXT + 1, 0, Edx, 29, Base),
    ("clzero", EXT + 8, 0, Ebx, 0, Base),
    ("rdpru", EXT + 8, 0, Ebx, 4, Base),
    ("wbnoinvd", EXT + 8, 0, Ebx, 9, Base),
];

/// The LLVM feature names this module can detect.
pub fn known_features() -> impl Iterator<Item = &'static str> {
    FEATURES.iter().map(|f| f.0)
}

/// This CPU's features (LLVM names, without `+`), computed once.
pub fn features() -> &'static HashSet<&'static str> {
    static F: OnceLock<HashSet<&'static str>> = OnceLock::new();
    F.get_or_init(detect)
}

#[cfg(target_arch = "x86_64")]
fn detect() -> HashSet<&'static str> {
    use std::arch::x86_64::{__cpuid_count, CpuidResult};
    // SAFETY: `cpuid` exists on every x86-64 CPU; leaves above the
    // maximum are never asked for (see `supported`). (Safe to call from
    // Rust 1.87 on, hence the allowance.)
    #[allow(unused_unsafe)]
    let cpuid = |leaf, sub| unsafe { __cpuid_count(leaf, sub) };
    let max_leaf = cpuid(0, 0).eax;
    let max_ext = cpuid(EXT, 0).eax;
    let max_sub7 = if max_leaf >= 7 { cpuid(7, 0).eax } else { 0 };
    let supported = |leaf: u32, sub: u32| {
        if leaf >= EXT {
            leaf <= max_ext
        } else {
            leaf <= max_leaf && (leaf != 7 || sub <= max_sub7)
        }
    };
    let leaf1 = cpuid(1, 0);
    let osxsave = leaf1.ecx >> 27 & 1 == 1;
    let xcr0 = if osxsave { xcr0() } else { 0 };
    let avx = osxsave && leaf1.ecx >> 28 & 1 == 1 && xcr0 & 0x6 == 0x6;
    let state_ok = |s: State| match s {
        Base => true,
        Avx => avx,
        Avx512 => avx && xcr0 & 0xe0 == 0xe0,
        Amx => osxsave && xcr0 & (3 << 17) == 3 << 17,
    };
    let mut leaves: std::collections::HashMap<(u32, u32), CpuidResult> = Default::default();
    let mut found = HashSet::new();
    for &(name, leaf, sub, reg, bit, state) in FEATURES {
        if !supported(leaf, sub) || !state_ok(state) {
            continue;
        }
        let r = *leaves
            .entry((leaf, sub))
            .or_insert_with(|| cpuid(leaf, sub));
        let word = match reg {
            Eax => r.eax,
            Ebx => r.ebx,
            Ecx => r.ecx,
            Edx => r.edx,
        };
        if word >> bit & 1 == 1 {
            found.insert(name);
        }
    }
    found
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> HashSet<&'static str> {
    HashSet::new()
}

/// XCR0: the register state the OS saves. Only called when OSXSAVE is set.
#[cfg(target_arch = "x86_64")]
fn xcr0() -> u64 {
    #[target_feature(enable = "xsave")]
    unsafe fn read() -> u64 {
        std::arch::x86_64::_xgetbv(0)
    }
    // SAFETY: OSXSAVE says the OS enabled XGETBV.
    unsafe { read() }
}

/// Whether code generated for `triple` runs on this platform: same
/// architecture, operating system and ABI. The vendor field (`pc`,
/// `unknown`) changes nothing in the generated code, and LLVM builds name
/// it differently.
pub fn runs_triple(triple: &str) -> bool {
    let mut parts = triple.split('-');
    let arch = parts.next().unwrap_or("");
    let rest: Vec<&str> = parts.collect();
    // `arch-vendor-os-env`, or `arch-vendor-os` / `arch-os-env`.
    let (os, env) = match rest.as_slice() {
        [_, os, env] => (*os, *env),
        [a, b] if *a == std::env::consts::OS => (*a, *b),
        [_, os] => (*os, ""),
        _ => return false,
    };
    arch == std::env::consts::ARCH && os == std::env::consts::OS && env == HOST_ENV
}

/// The ABI this process was built for, as the last triple component names it.
const HOST_ENV: &str = if cfg!(target_env = "gnu") {
    "gnu"
} else if cfg!(target_env = "musl") {
    "musl"
} else {
    ""
};

/// Identifies this machine for the purpose of choosing artefacts: vendor,
/// family/model/stepping and detected features. Two machines with the same
/// fingerprint get the same host target from LLVM.
pub fn fingerprint() -> &'static str {
    static F: OnceLock<String> = OnceLock::new();
    F.get_or_init(|| {
        let mut h = blake3::Hasher::new();
        h.update(std::env::consts::ARCH.as_bytes());
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: leaves 0 and 1 exist on every x86-64 CPU.
            #[allow(unused_unsafe)]
            let (l0, l1) =
                unsafe { (std::arch::x86_64::__cpuid(0), std::arch::x86_64::__cpuid(1)) };
            for w in [l0.ebx, l0.edx, l0.ecx, l1.eax] {
                h.update(&w.to_le_bytes());
            }
        }
        let mut f: Vec<&str> = features().iter().copied().collect();
        f.sort_unstable();
        h.update(f.join(",").as_bytes());
        h.finalize().to_hex()[..32].to_string()
    })
}

#[cfg(all(test, feature = "compiler"))]
mod tests {
    use super::*;

    /// On this machine, `cpuid` gives exactly LLVM's answer for every
    /// feature of the table: each one LLVM reports (which an artefact
    /// compiled for this host requires) is detected, and none it denies.
    #[test]
    fn cpuid_features_agree_with_llvm() {
        let llvm = evmc_compiler::host_target();
        let enabled: HashSet<&str> = llvm
            .features
            .split(',')
            .filter_map(|f| f.strip_prefix('+'))
            .collect();
        let known: HashSet<&str> = known_features().collect();
        let missed: Vec<&&str> = enabled
            .iter()
            .filter(|f| !features().contains(**f))
            .collect();
        assert!(
            missed.is_empty(),
            "LLVM reports {missed:?}, cpuid does not (unknown to the table: {:?})",
            missed
                .iter()
                .filter(|f| !known.contains(**f))
                .collect::<Vec<_>>()
        );
        let extra: Vec<&&str> = features()
            .iter()
            .filter(|f| !enabled.contains(**f))
            .collect();
        assert!(extra.is_empty(), "cpuid reports {extra:?}, LLVM does not");
    }

    #[test]
    fn the_llvm_host_triple_is_this_platform() {
        assert!(runs_triple(&evmc_compiler::host_target().triple));
        assert!(runs_triple("x86_64-unknown-linux-gnu"));
        assert!(!runs_triple("aarch64-unknown-linux-gnu"));
        assert!(!runs_triple("x86_64-pc-windows-msvc"));
        assert!(!runs_triple("x86_64-unknown-linux-musl"));
    }
}
