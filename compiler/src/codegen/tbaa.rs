//! Type-based alias tags for the four regions generated code reads and
//! writes through pointers: the execution context's fields, the EVM stack,
//! EVM memory and the call data.
//!
//! The stack array and the memory buffer are reached through pointers
//! loaded from the context, which a builtin call may capture, so without
//! tags LLVM must assume that a store to a stack slot or to memory can
//! change any context field or any other region: the memory's base and
//! size are loaded again after every stack store, and a stack word stored
//! before an MSTORE is loaded again after it. The regions never overlap
//! (a stack slot, a byte of memory and a context field are distinct
//! addresses; the call data is only read), and each is only ever accessed
//! under its own tag, so telling LLVM that accesses under different tags do
//! not alias is exact. Accesses left untagged (scratch space, the builtin
//! table) alias everything, as before; a builtin call still clobbers all.

use inkwell::context::Context;
use inkwell::values::{InstructionValue, MetadataValue};

/// A region of memory that generated code accesses.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Region {
    /// Fields of `ExecCtx`.
    Ctx,
    /// The EVM stack's slots.
    Stack,
    /// EVM memory.
    Memory,
    /// The call data (read only).
    Input,
}

/// One access tag per [`Region`], each a scalar type of its own under a
/// common root, so that no two of them alias.
pub(crate) struct Tags<'ctx> {
    kind: u32,
    tags: [MetadataValue<'ctx>; 4],
}

impl<'ctx> Tags<'ctx> {
    pub(crate) fn new(cx: &'ctx Context) -> Self {
        let root = cx.metadata_node(&[cx.metadata_string("evmc regions").into()]);
        let zero = cx.i64_type().const_zero();
        let tag = |name: &str| {
            let ty = cx.metadata_node(&[cx.metadata_string(name).into(), root.into(), zero.into()]);
            cx.metadata_node(&[ty.into(), ty.into(), zero.into()])
        };
        Tags {
            kind: cx.get_kind_id("tbaa"),
            tags: [
                tag("exec ctx"),
                tag("evm stack"),
                tag("evm memory"),
                tag("call data"),
            ],
        }
    }

    /// Marks the load or store `inst` as an access to `region`.
    pub(crate) fn tag(&self, inst: InstructionValue<'ctx>, region: Region) {
        inst.set_metadata(self.tags[region as usize], self.kind)
            .expect("a load or store takes metadata");
    }
}
