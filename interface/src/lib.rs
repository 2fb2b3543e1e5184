//! The contract between generated code and the runtime.
//!
//! Both sides compile against this one module: the compiler lowers field
//! accesses to the offsets below, the runtime fills the same structs. Any change
//! to a layout, a status code or a builtin signature bumps [`INTERFACE_VERSION`],
//! which every artifact records and the loader checks.
#![warn(missing_docs)]
#![no_std]

use core::ffi::c_void;

/// Bumped on any change to [`ExecCtx`], [`Builtins`], [`ArtifactMetadata`] or
/// the meaning of an exit code.
pub const INTERFACE_VERSION: u32 = 10;

/// Gas per word of memory in the expansion cost generated code charges when
/// it grows memory itself (see [`ExecCtx::mem_cap`]): `words * 3 +
/// words * words / 512`, every fork's schedule. Under any other schedule
/// the runtime leaves `mem_cap` at 0.
pub const MEM_WORD_GAS: u64 = 3;
/// Divisor of the quadratic term of that cost (see [`MEM_WORD_GAS`]).
pub const MEM_QUAD_DIVISOR: u64 = 512;
/// How far past the current memory generated code may grow it itself, in
/// bytes: two words, what an unaligned 32-byte access can add.
pub const MEM_INLINE_GROWTH: u64 = 64;

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
    /// which the runtime recorded itself. Returned by `evmc_entry` when a
    /// builtin left through [`ExecCtx::escape`].
    pub const BUILTIN: u32 = 1;
    /// A dynamic jump to something that is not a JUMPDEST.
    pub const INVALID_JUMP: u32 = 2;
    /// A block-entry check (gas, stack bounds) failed, the requested resume
    /// point is unknown, or the block was left out of a compile from a
    /// profile: the runtime must continue this frame in the interpreter at
    /// `ExecCtx::resume_pc`, with the state exactly as the interpreter would
    /// have it there. Mostly taken on paths about to halt; its exactness
    /// matters everywhere.
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
    /// CALLVALUE of this frame, as an EVM word.
    pub call_value: [u64; 4],
    /// ADDRESS of this frame, as an EVM word.
    pub address: [u64; 4],
    /// Generated code may grow memory itself, without a runtime call, up to
    /// this many bytes: the runtime guarantees the buffer's capacity that
    /// far (0: it may not). Growth done so is handed to the interpreter's
    /// state at the next runtime call or exit.
    pub mem_cap: u64,
    /// The memory expansion cost paid for `mem_len` bytes (the
    /// interpreter's `MemoryGas::expansion_cost`), so that generated code
    /// charges exactly the difference when it grows memory.
    pub mem_cost: u64,
    /// Where a builtin that ends the frame returns to, so that generated
    /// code need not test a status after every builtin call: written by
    /// `evmc_entry` before it enters the code, in the layout of LLVM's
    /// `llvm.eh.sjlj.setjmp` buffer (word 0 the entry's frame pointer,
    /// word 1 the address it resumes at, word 2 its stack pointer; the
    /// rest unused). A builtin that ends the frame restores the frame and
    /// stack pointers from here and jumps to the address, abandoning the
    /// frames of generated code (which hold nothing to release);
    /// `evmc_entry` then returns [`exit::BUILTIN`].
    pub escape: [u64; 5],
}

/// Byte offsets of [`ExecCtx`] fields, used by code generation. Derived
/// from the struct itself, so they cannot drift from it.
pub mod ctx_offsets {
    use super::ExecCtx;
    use core::mem::{offset_of, size_of};

    /// Offset of [`ExecCtx::gas`].
    pub const GAS: u32 = offset_of!(ExecCtx, gas) as u32;
    /// Offset of [`ExecCtx::stack`].
    pub const STACK: u32 = offset_of!(ExecCtx, stack) as u32;
    /// Offset of [`ExecCtx::stack_len`].
    pub const STACK_LEN: u32 = offset_of!(ExecCtx, stack_len) as u32;
    /// Offset of [`ExecCtx::mem_ptr`].
    pub const MEM_PTR: u32 = offset_of!(ExecCtx, mem_ptr) as u32;
    /// Offset of [`ExecCtx::mem_len`].
    pub const MEM_LEN: u32 = offset_of!(ExecCtx, mem_len) as u32;
    /// Offset of [`ExecCtx::input_ptr`].
    pub const INPUT_PTR: u32 = offset_of!(ExecCtx, input_ptr) as u32;
    /// Offset of [`ExecCtx::input_len`].
    pub const INPUT_LEN: u32 = offset_of!(ExecCtx, input_len) as u32;
    /// Offset of [`ExecCtx::resume_pc`].
    pub const RESUME_PC: u32 = offset_of!(ExecCtx, resume_pc) as u32;
    /// Offset of [`ExecCtx::builtins`].
    pub const BUILTINS: u32 = offset_of!(ExecCtx, builtins) as u32;
    /// Offset of [`ExecCtx::frame`].
    pub const FRAME: u32 = offset_of!(ExecCtx, frame) as u32;
    /// Offset of [`ExecCtx::caller`].
    pub const CALLER: u32 = offset_of!(ExecCtx, caller) as u32;
    /// Offset of [`ExecCtx::call_value`].
    pub const CALL_VALUE: u32 = offset_of!(ExecCtx, call_value) as u32;
    /// Offset of [`ExecCtx::address`].
    pub const ADDRESS: u32 = offset_of!(ExecCtx, address) as u32;
    /// Offset of [`ExecCtx::mem_cap`].
    pub const MEM_CAP: u32 = offset_of!(ExecCtx, mem_cap) as u32;
    /// Offset of [`ExecCtx::mem_cost`].
    pub const MEM_COST: u32 = offset_of!(ExecCtx, mem_cost) as u32;
    /// Offset of [`ExecCtx::escape`].
    pub const ESCAPE: u32 = offset_of!(ExecCtx, escape) as u32;
    /// Size of [`ExecCtx`] in bytes.
    pub const SIZE: u32 = size_of::<ExecCtx>() as u32;
}

/// Executes one EVM instruction with the interpreter's own semantics, on the
/// state in `ctx` (stack, memory, gas synchronised both ways).
/// Returns to continue with the next instruction; when the frame ends or
/// suspends (the runtime keeps the reason) it does not return but leaves
/// through [`ExecCtx::escape`].
pub type ExecOpFn = unsafe extern "C" fn(ctx: *mut ExecCtx, opcode: u32, pc: u32);

/// Grows this frame's memory to cover `offset..offset + len` and charges the
/// expansion gas exactly as the interpreter's MLOAD/MSTORE/MSTORE8 do (after
/// their static gas, which generated code has charged); returns 0 with
/// `ctx.gas`, `ctx.mem_ptr`, `ctx.mem_len`, `ctx.mem_cost` and `ctx.mem_cap`
/// updated. `offset_overflow` is
/// non-zero when the offset operand does not fit 64 bits. When the
/// interpreter would halt there (out of gas, invalid operand) the frame is
/// halted the same way and the builtin leaves through [`ExecCtx::escape`].
pub type MemExpandFn =
    unsafe extern "C" fn(ctx: *mut ExecCtx, offset: u64, len: u64, offset_overflow: u64);

/// Pays for a run of memory accesses at once: charges `static_gas` (the
/// static gas of the run's instructions) and grows this frame's memory to
/// `end` bytes (rounded up to a word), charging the expansion as the
/// interpreter's growth to that size would; returns 1 with `ctx.gas`,
/// `ctx.mem_ptr`, `ctx.mem_len`, `ctx.mem_cost` and `ctx.mem_cap`
/// updated. Returns 0 and changes nothing the interpreter would see when
/// the gas does not cover both: generated code then hands the run to the
/// interpreter, which halts where and how it would have. When the growth
/// itself is refused with the gas paid (a memory limit), the frame is
/// halted as the run's first access past the limit would halt it and the
/// builtin leaves through [`ExecCtx::escape`].
pub type MemReserveFn = unsafe extern "C" fn(ctx: *mut ExecCtx, end: u64, static_gas: u64) -> u32;

/// A pure 256-bit operation with the interpreter's semantics (division by
/// zero gives zero, SDIV of MIN by -1 gives MIN, ...). `words` holds the
/// operands as little-endian 64-bit limbs, the top of the EVM stack first;
/// the result replaces `words[0]`. `sqrmod` is MULMOD of a word by itself,
/// its two operands the word and the modulus (`words[0]`, `words[1]`):
/// generated code calls it where both factors are one value. No gas, no
/// halts: the opcodes behind these charge static gas only, which generated
/// code does.
pub type ArithFn = unsafe extern "C" fn(words: *mut [u64; 4]);

/// KECCAK256 with the interpreter's semantics after its static gas: `words[0]`
/// is the offset (the top of the EVM stack), `words[1]` the length, as
/// little-endian 64-bit limbs; the hash replaces `words[0]`. Charges the
/// per-word and memory-expansion gas on `ctx.gas` and updates `ctx.mem_ptr`
/// and `ctx.mem_len`. Returns to continue; when the interpreter would halt
/// there (invalid operand, out of gas) the frame is halted the same way and
/// the builtin leaves through [`ExecCtx::escape`].
pub type KeccakFn = unsafe extern "C" fn(ctx: *mut ExecCtx, words: *mut [u64; 4]);

/// CALLDATALOAD of the offset in `words[0]` (little-endian 64-bit limbs),
/// result into `words[0]`, for the offsets generated code does not read
/// inline (the word runs past the end of the call data). Static gas only,
/// no halts.
pub type CallDataLoadFn = unsafe extern "C" fn(ctx: *mut ExecCtx, words: *mut [u64; 4]);

/// The builtin table, one line per builtin: the [`Builtin`] variant, the
/// [`Builtins`] field, the [`builtin_offsets`] constant and the Rust
/// signature. Everything else about a builtin (the struct, its offsets, the
/// argument and return kinds code generation declares) is generated from
/// here, so adding one is a line here plus its implementation in the runtime.
/// Fields keep this order: it is the table's layout.
macro_rules! for_each_builtin {
    ($gen:ident) => {
        $gen! {
            ExecOp exec_op EXEC_OP: ExecOpFn,
            MemExpand mem_expand MEM_EXPAND: MemExpandFn,
            Div div DIV: ArithFn,
            Sdiv sdiv SDIV: ArithFn,
            Rem rem REM: ArithFn,
            Smod smod SMOD: ArithFn,
            Addmod addmod ADDMOD: ArithFn,
            Mulmod mulmod MULMOD: ArithFn,
            Keccak256 keccak256 KECCAK256: KeccakFn,
            CallDataLoad calldataload CALLDATALOAD: CallDataLoadFn,
            MemReserve mem_reserve MEM_RESERVE: MemReserveFn,
            Sqrmod sqrmod SQRMOD: ArithFn,
        }
    };
}

macro_rules! builtin_items {
    ($($variant:ident $field:ident $offset:ident: $ty:ident,)*) => {
        /// Table of runtime functions passed to generated code; the `.so`
        /// imports nothing from the host process.
        #[repr(C)]
        #[derive(Debug, Clone, Copy)]
        pub struct Builtins {
            $(
                #[doc = concat!("The `", stringify!($field), "` builtin.")]
                pub $field: $ty,
            )*
        }

        /// Byte offsets of [`Builtins`] fields, derived from the struct.
        pub mod builtin_offsets {
            use super::Builtins;
            $(
                #[doc = concat!("Offset of [`Builtins::", stringify!($field), "`].")]
                pub const $offset: u32 = core::mem::offset_of!(Builtins, $field) as u32;
            )*
        }

        /// Names one entry of the [`Builtins`] table.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Builtin {
            $(
                #[doc = concat!("The `", stringify!($field), "` builtin.")]
                $variant,
            )*
        }

        impl Builtin {
            /// Every builtin, in table order.
            pub const ALL: &'static [Builtin] = &[$(Builtin::$variant,)*];

            /// Byte offset of its function pointer in [`Builtins`].
            pub const fn offset(self) -> u32 {
                match self {
                    $(Builtin::$variant => builtin_offsets::$offset,)*
                }
            }

            /// Name of its field in [`Builtins`].
            pub const fn name(self) -> &'static str {
                match self {
                    $(Builtin::$variant => stringify!($field),)*
                }
            }

            /// Argument and return kinds of its function, read off its
            /// Rust signature.
            pub const fn signature(self) -> Signature {
                match self {
                    $(Builtin::$variant => Signature {
                        params: <$ty as AbiFn>::PARAMS,
                        ret: <$ty as AbiFn>::RET,
                    },)*
                }
            }
        }
    };
}

for_each_builtin!(builtin_items);

/// How a value crosses the builtin ABI (the C calling convention of
/// x86-64), as code generation declares it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AbiType {
    /// No value (a function that returns nothing).
    Void,
    /// A 32-bit integer.
    I32,
    /// A 64-bit integer.
    I64,
    /// Any pointer.
    Ptr,
}

/// The argument and return kinds of a builtin's function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signature {
    /// Argument kinds, in order.
    pub params: &'static [AbiType],
    /// Return kind.
    pub ret: AbiType,
}

/// A Rust type that crosses the builtin ABI as one [`AbiType`].
pub trait AbiValue {
    /// How a value of this type crosses the ABI.
    const KIND: AbiType;
}

impl AbiValue for () {
    const KIND: AbiType = AbiType::Void;
}
impl AbiValue for u32 {
    const KIND: AbiType = AbiType::I32;
}
impl AbiValue for u64 {
    const KIND: AbiType = AbiType::I64;
}
impl<T> AbiValue for *mut T {
    const KIND: AbiType = AbiType::Ptr;
}
impl<T> AbiValue for *const T {
    const KIND: AbiType = AbiType::Ptr;
}

/// An `unsafe extern "C"` function pointer type whose arguments and result
/// cross the ABI as [`AbiType`]s: how a builtin's LLVM signature follows
/// from its Rust one.
pub trait AbiFn {
    /// Argument kinds, in order.
    const PARAMS: &'static [AbiType];
    /// Return kind.
    const RET: AbiType;
}

macro_rules! abi_fn {
    ($($arg:ident),*) => {
        impl<R: AbiValue, $($arg: AbiValue),*> AbiFn for unsafe extern "C" fn($($arg),*) -> R {
            const PARAMS: &'static [AbiType] = &[$($arg::KIND),*];
            const RET: AbiType = R::KIND;
        }
    };
}

abi_fn!(A);
abi_fn!(A, B);
abi_fn!(A, B, C);
abi_fn!(A, B, C, D);

/// Bytes of [`ArtifactMetadata::target_triple`].
pub const META_TRIPLE_LEN: usize = 64;
/// Bytes of [`ArtifactMetadata::target_cpu`].
pub const META_CPU_LEN: usize = 64;
/// Bytes of [`ArtifactMetadata::cpu_features`].
pub const META_FEATURES_LEN: usize = 2048;
/// Bytes of [`ArtifactMetadata::compiler_version`].
pub const META_VERSION_LEN: usize = 32;
/// Bytes of [`ArtifactMetadata::spec`].
pub const META_SPEC_LEN: usize = 32;

/// Self-description embedded in every artifact (exported as [`METADATA_SYMBOL`]).
/// Strings are NUL-padded UTF-8.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ArtifactMetadata {
    /// [`METADATA_MAGIC`].
    pub magic: [u8; 8],
    /// The [`INTERFACE_VERSION`] the artifact was compiled against.
    pub interface_version: u32,
    /// LLVM optimisation level used.
    pub opt_level: u32,
    /// Keccak-256 of the compiled bytecode.
    pub code_hash: [u8; 32],
    /// Length of the compiled bytecode in bytes.
    pub code_len: u64,
    /// Hard fork compiled for (evmc-compiler's spec name).
    pub spec: [u8; META_SPEC_LEN],
    /// LLVM target triple.
    pub target_triple: [u8; META_TRIPLE_LEN],
    /// LLVM CPU name.
    pub target_cpu: [u8; META_CPU_LEN],
    /// CPU features the code requires (`+avx2,...`).
    pub cpu_features: [u8; META_FEATURES_LEN],
    /// Build id of the compiler that produced it.
    pub compiler_version: [u8; META_VERSION_LEN],
}

impl ArtifactMetadata {
    /// Size of the record in bytes.
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

    /// The string in a NUL-padded field (up to its first NUL).
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

    /// A record with the magic and interface version set, every other field zero.
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
    use core::mem::size_of;

    /// The layout of interface version 10. The offsets are derived from the
    /// structs; this pins them, so that a change to a struct that would need
    /// a new [`INTERFACE_VERSION`] cannot go unnoticed.
    #[test]
    fn layout_is_that_of_version_10() {
        assert_eq!(INTERFACE_VERSION, 10);
        let ctx = [
            ctx_offsets::GAS,
            ctx_offsets::STACK,
            ctx_offsets::STACK_LEN,
            ctx_offsets::MEM_PTR,
            ctx_offsets::MEM_LEN,
            ctx_offsets::INPUT_PTR,
            ctx_offsets::INPUT_LEN,
            ctx_offsets::RESUME_PC,
            ctx_offsets::BUILTINS,
            ctx_offsets::FRAME,
            ctx_offsets::CALLER,
            ctx_offsets::CALL_VALUE,
            ctx_offsets::ADDRESS,
            ctx_offsets::MEM_CAP,
            ctx_offsets::MEM_COST,
            ctx_offsets::ESCAPE,
            ctx_offsets::SIZE,
        ];
        assert_eq!(
            ctx,
            [0, 8, 16, 24, 32, 40, 48, 56, 64, 72, 80, 112, 144, 176, 184, 192, 232]
        );
        let names = [
            "exec_op",
            "mem_expand",
            "div",
            "sdiv",
            "rem",
            "smod",
            "addmod",
            "mulmod",
            "keccak256",
            "calldataload",
            "mem_reserve",
            "sqrmod",
        ];
        assert_eq!(Builtin::ALL.len(), names.len());
        for (i, (b, name)) in Builtin::ALL.iter().zip(names).enumerate() {
            assert_eq!(b.name(), name);
            assert_eq!(b.offset() as usize, 8 * i);
        }
        assert_eq!(builtin_offsets::REM, Builtin::Rem.offset());
        assert_eq!(size_of::<Builtins>(), 8 * names.len());
    }

    #[test]
    fn signatures_follow_the_rust_types() {
        use AbiType::*;
        let sig = |b: Builtin| {
            let s = b.signature();
            (s.params, s.ret)
        };
        assert_eq!(sig(Builtin::ExecOp), (&[Ptr, I32, I32][..], Void));
        assert_eq!(sig(Builtin::MemExpand), (&[Ptr, I64, I64, I64][..], Void));
        for b in [
            Builtin::Div,
            Builtin::Sdiv,
            Builtin::Rem,
            Builtin::Smod,
            Builtin::Addmod,
            Builtin::Mulmod,
            Builtin::Sqrmod,
        ] {
            assert_eq!(sig(b), (&[Ptr][..], Void));
        }
        assert_eq!(sig(Builtin::Keccak256), (&[Ptr, Ptr][..], Void));
        assert_eq!(sig(Builtin::CallDataLoad), (&[Ptr, Ptr][..], Void));
        assert_eq!(sig(Builtin::MemReserve), (&[Ptr, I64, I64][..], I32));
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
