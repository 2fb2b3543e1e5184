//! The contract between generated code and the runtime.
//!
//! Both sides compile against this one module: the compiler lowers field
//! accesses to the offsets below, the runtime fills the same structs. Any change
//! to a layout, a status code or a builtin signature bumps [`INTERFACE_VERSION`],
//! which every artifact records and the loader checks.

#![no_std]

use core::ffi::c_void;

/// Bumped on any change to [`ExecCtx`], [`Builtins`], [`ArtifactMetadata`] or
/// the meaning of an exit code.
pub const INTERFACE_VERSION: u32 = 6;

/// Exported name of the compiled entry function, `extern "C" fn(*mut ExecCtx) -> u32`.
pub const ENTRY_SYMBOL: &str = "evmc_entry";
/// Exported name of the [`ArtifactMetadata`] record.
pub const METADATA_SYMBOL: &str = "evmc_metadata";
/// First bytes of [`ArtifactMetadata`], so a foreign object cannot pass as ours by accident.
pub const METADATA_MAGIC: [u8; 8] = *b"EVMCNAT\0";

/// Signature of the compiled entry point.
pub type EntryFn = unsafe extern "C" fn(ctx: *mut ExecCtx) -> u32;

/// Maximum EVM stack depth (same as the interpreter).
pub const STACK_LIMIT: u64 = 1024;

/// Why generated code returned to the runtime.
pub mod exit {
    /// `STOP`, or execution ran off the end of the code.
    pub const STOP: u32 = 0;
    /// A builtin finished the frame: halted, returned, reverted or asked for a
    /// new frame (CALL/CREATE). The runtime holds the reason and the state;
    /// execution resumes (if at all) after the instruction the builtin ran,
    /// which the runtime recorded itself.
    pub const BUILTIN: u32 = 1;
    /// A dynamic jump to something that is not a JUMPDEST.
    pub const INVALID_JUMP: u32 = 2;
    /// A block-entry check (gas, stack bounds) failed, or the requested resume
    /// point is unknown: the runtime must continue this frame in the
    /// interpreter at `ExecCtx::resume_pc`, with the state exactly as the
    /// interpreter would have it there. Taken only on paths that are about to
    /// halt, so its cost does not matter; its exactness does.
    pub const DEOPT: u32 = 3;
    /// The static gas of the instructions up to the next one with dynamic gas
    /// (or the block end) is not available: the interpreter would halt with
    /// out-of-gas at one of them, and nothing before it can halt otherwise,
    /// so the runtime halts the frame the same way. Gas, stack and pc in
    /// `ExecCtx` are stale and irrelevant (an out-of-gas halt spends all gas).
    pub const OUT_OF_GAS: u32 = 4;
}

/// Per-frame execution state shared by generated code and the runtime.
///
/// The stack holds 256-bit words as four little-endian `u64` limbs each (the
/// layout of `ruint::U256` and of LLVM's `i256` on x86-64), bottom first.
#[repr(C)]
#[derive(Debug)]
pub struct ExecCtx {
    /// Gas remaining in this frame.
    pub gas: u64,
    /// Base of the stack array; room for [`STACK_LIMIT`] words.
    pub stack: *mut u8,
    /// Number of words on the stack.
    pub stack_len: u64,
    /// Base of this frame's memory.
    pub mem_ptr: *mut u8,
    /// Size of this frame's memory in bytes (always a multiple of 32).
    pub mem_len: u64,
    /// Call data, `input_len` bytes. It may live in the shared memory
    /// buffer of the calling frame, which moves when memory grows: valid
    /// until the next runtime call, which refreshes it.
    pub input_ptr: *const u8,
    /// Call data length.
    pub input_len: u64,
    /// In: the pc to start at (0 on a fresh frame, the pc after a CALL/CREATE
    /// when resuming). Out: where the interpreter would continue.
    pub resume_pc: u64,
    /// Functions the runtime provides.
    pub builtins: *const Builtins,
    /// Opaque runtime state for this frame (interpreter, host, pending result).
    pub frame: *mut c_void,
    /// CALLER, CALLVALUE and ADDRESS of this frame as EVM words (the stack's
    /// layout), so generated code reads them without a runtime call.
    pub caller: [u64; 4],
    pub call_value: [u64; 4],
    pub address: [u64; 4],
}

/// Byte offsets of [`ExecCtx`] fields, used by code generation.
pub mod ctx_offsets {
    pub const GAS: u32 = 0;
    pub const STACK: u32 = 8;
    pub const STACK_LEN: u32 = 16;
    pub const MEM_PTR: u32 = 24;
    pub const MEM_LEN: u32 = 32;
    pub const INPUT_PTR: u32 = 40;
    pub const INPUT_LEN: u32 = 48;
    pub const RESUME_PC: u32 = 56;
    pub const BUILTINS: u32 = 64;
    pub const FRAME: u32 = 72;
    pub const CALLER: u32 = 80;
    pub const CALL_VALUE: u32 = 112;
    pub const ADDRESS: u32 = 144;
    pub const SIZE: u32 = 176;
}

/// Executes one EVM instruction with the interpreter's own semantics, on the
/// state in `ctx` (stack, memory, gas synchronised both ways).
/// Returns 0 to continue with the next instruction, non-zero when the frame
/// ends or suspends (the runtime keeps the reason).
pub type ExecOpFn = unsafe extern "C" fn(ctx: *mut ExecCtx, opcode: u32, pc: u32) -> u32;

/// Grows this frame's memory to cover `offset..offset + len` and charges the
/// expansion gas exactly as the interpreter's MLOAD/MSTORE/MSTORE8 do (after
/// their static gas, which generated code has charged); returns 0 with
/// `ctx.gas`, `ctx.mem_ptr` and `ctx.mem_len` updated. `offset_overflow` is
/// non-zero when the offset operand does not fit 64 bits. When the
/// interpreter would halt there (out of gas, invalid operand) the frame is
/// halted the same way and 1 is returned: generated code then exits with
/// [`exit::BUILTIN`].
pub type MemExpandFn =
    unsafe extern "C" fn(ctx: *mut ExecCtx, offset: u64, len: u64, offset_overflow: u64) -> u32;

/// A pure 256-bit operation with the interpreter's semantics (division by
/// zero gives zero, SDIV of MIN by -1 gives MIN, ...). `words` holds the
/// operands as little-endian 64-bit limbs, the top of the EVM stack first;
/// the result replaces `words[0]`. No gas, no halts: the opcodes behind
/// these charge static gas only, which generated code does.
pub type ArithFn = unsafe extern "C" fn(words: *mut [u64; 4]);

/// KECCAK256 with the interpreter's semantics after its static gas: `words[0]`
/// is the offset (the top of the EVM stack), `words[1]` the length, as
/// little-endian 64-bit limbs; the hash replaces `words[0]`. Charges the
/// per-word and memory-expansion gas on `ctx.gas` and updates `ctx.mem_ptr`
/// and `ctx.mem_len`. Returns 0 to continue; non-zero when the interpreter
/// would halt there (invalid operand, out of gas), with the frame halted the
/// same way: generated code then exits with [`exit::BUILTIN`].
pub type KeccakFn = unsafe extern "C" fn(ctx: *mut ExecCtx, words: *mut [u64; 4]) -> u32;

/// CALLDATALOAD of the offset in `words[0]` (little-endian 64-bit limbs),
/// result into `words[0]`, for the offsets generated code does not read
/// inline (the word runs past the end of the call data). Static gas only,
/// no halts.
pub type CallDataLoadFn = unsafe extern "C" fn(ctx: *mut ExecCtx, words: *mut [u64; 4]);

/// Table of runtime functions passed to generated code; the `.so` imports
/// nothing from the host process.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Builtins {
    pub exec_op: ExecOpFn,
    pub mem_expand: MemExpandFn,
    pub div: ArithFn,
    pub sdiv: ArithFn,
    pub rem: ArithFn,
    pub smod: ArithFn,
    pub addmod: ArithFn,
    pub mulmod: ArithFn,
    pub keccak256: KeccakFn,
    pub calldataload: CallDataLoadFn,
}

/// Byte offsets of [`Builtins`] fields.
pub mod builtin_offsets {
    pub const EXEC_OP: u32 = 0;
    pub const MEM_EXPAND: u32 = 8;
    pub const DIV: u32 = 16;
    pub const SDIV: u32 = 24;
    pub const MOD: u32 = 32;
    pub const SMOD: u32 = 40;
    pub const ADDMOD: u32 = 48;
    pub const MULMOD: u32 = 56;
    pub const KECCAK256: u32 = 64;
    pub const CALLDATALOAD: u32 = 72;
}

pub const META_TRIPLE_LEN: usize = 64;
pub const META_CPU_LEN: usize = 64;
pub const META_FEATURES_LEN: usize = 2048;
pub const META_VERSION_LEN: usize = 32;
pub const META_SPEC_LEN: usize = 32;

/// Self-description embedded in every artifact (exported as [`METADATA_SYMBOL`]).
/// Strings are NUL-padded UTF-8.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ArtifactMetadata {
    pub magic: [u8; 8],
    pub interface_version: u32,
    pub opt_level: u32,
    pub code_hash: [u8; 32],
    pub code_len: u64,
    pub spec: [u8; META_SPEC_LEN],
    pub target_triple: [u8; META_TRIPLE_LEN],
    pub target_cpu: [u8; META_CPU_LEN],
    pub cpu_features: [u8; META_FEATURES_LEN],
    pub compiler_version: [u8; META_VERSION_LEN],
}

impl ArtifactMetadata {
    pub const SIZE: usize = core::mem::size_of::<Self>();

    /// Decodes a record from raw bytes (as read out of an artifact file).
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < Self::SIZE {
            return None;
        }
        // SAFETY: every bit pattern is valid for this plain-bytes struct, and
        // read_unaligned tolerates any alignment of the source.
        let meta = unsafe { core::ptr::read_unaligned(bytes.as_ptr() as *const Self) };
        Some(meta)
    }

    /// The record as bytes, for embedding into an object.
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: repr(C) struct of byte arrays and integers without padding
        // between fields (checked by the layout test below).
        unsafe { core::slice::from_raw_parts(self as *const Self as *const u8, Self::SIZE) }
    }

    pub fn str_field(field: &[u8]) -> &str {
        let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
        core::str::from_utf8(&field[..end]).unwrap_or("<invalid utf-8>")
    }

    /// Copies `s` into a NUL-padded field; returns false if it does not fit.
    pub fn set_str(field: &mut [u8], s: &str) -> bool {
        field.fill(0);
        if s.len() >= field.len() {
            return false;
        }
        field[..s.len()].copy_from_slice(s.as_bytes());
        true
    }

    pub fn empty() -> Self {
        Self {
            magic: METADATA_MAGIC,
            interface_version: INTERFACE_VERSION,
            opt_level: 0,
            code_hash: [0; 32],
            code_len: 0,
            spec: [0; META_SPEC_LEN],
            target_triple: [0; META_TRIPLE_LEN],
            target_cpu: [0; META_CPU_LEN],
            cpu_features: [0; META_FEATURES_LEN],
            compiler_version: [0; META_VERSION_LEN],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};

    #[test]
    fn ctx_layout_matches_offsets() {
        assert_eq!(offset_of!(ExecCtx, gas), ctx_offsets::GAS as usize);
        assert_eq!(offset_of!(ExecCtx, stack), ctx_offsets::STACK as usize);
        assert_eq!(
            offset_of!(ExecCtx, stack_len),
            ctx_offsets::STACK_LEN as usize
        );
        assert_eq!(offset_of!(ExecCtx, mem_ptr), ctx_offsets::MEM_PTR as usize);
        assert_eq!(offset_of!(ExecCtx, mem_len), ctx_offsets::MEM_LEN as usize);
        assert_eq!(
            offset_of!(ExecCtx, input_ptr),
            ctx_offsets::INPUT_PTR as usize
        );
        assert_eq!(
            offset_of!(ExecCtx, input_len),
            ctx_offsets::INPUT_LEN as usize
        );
        assert_eq!(
            offset_of!(ExecCtx, resume_pc),
            ctx_offsets::RESUME_PC as usize
        );
        assert_eq!(
            offset_of!(ExecCtx, builtins),
            ctx_offsets::BUILTINS as usize
        );
        assert_eq!(offset_of!(ExecCtx, frame), ctx_offsets::FRAME as usize);
        assert_eq!(offset_of!(ExecCtx, caller), ctx_offsets::CALLER as usize);
        assert_eq!(
            offset_of!(ExecCtx, call_value),
            ctx_offsets::CALL_VALUE as usize
        );
        assert_eq!(offset_of!(ExecCtx, address), ctx_offsets::ADDRESS as usize);
        assert_eq!(size_of::<ExecCtx>(), ctx_offsets::SIZE as usize);
        assert_eq!(
            offset_of!(Builtins, exec_op),
            builtin_offsets::EXEC_OP as usize
        );
        assert_eq!(
            offset_of!(Builtins, mem_expand),
            builtin_offsets::MEM_EXPAND as usize
        );
        assert_eq!(offset_of!(Builtins, div), builtin_offsets::DIV as usize);
        assert_eq!(offset_of!(Builtins, sdiv), builtin_offsets::SDIV as usize);
        assert_eq!(offset_of!(Builtins, rem), builtin_offsets::MOD as usize);
        assert_eq!(offset_of!(Builtins, smod), builtin_offsets::SMOD as usize);
        assert_eq!(
            offset_of!(Builtins, addmod),
            builtin_offsets::ADDMOD as usize
        );
        assert_eq!(
            offset_of!(Builtins, mulmod),
            builtin_offsets::MULMOD as usize
        );
        assert_eq!(
            offset_of!(Builtins, keccak256),
            builtin_offsets::KECCAK256 as usize
        );
        assert_eq!(
            offset_of!(Builtins, calldataload),
            builtin_offsets::CALLDATALOAD as usize
        );
    }

    #[test]
    fn metadata_has_no_padding() {
        let fields = 8
            + 4
            + 4
            + 32
            + 8
            + META_SPEC_LEN
            + META_TRIPLE_LEN
            + META_CPU_LEN
            + META_FEATURES_LEN
            + META_VERSION_LEN;
        assert_eq!(ArtifactMetadata::SIZE, fields);
        let mut m = ArtifactMetadata::empty();
        assert!(ArtifactMetadata::set_str(&mut m.spec, "CANCUN"));
        let back = ArtifactMetadata::from_bytes(m.as_bytes()).unwrap();
        assert_eq!(ArtifactMetadata::str_field(&back.spec), "CANCUN");
    }
}
