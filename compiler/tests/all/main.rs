//! The integration tests of this crate, as one binary: each module is one
//! area. One binary links once, where a file per binary linked LLVM and
//! revm once each, which was most of CI's time on two cores.

mod builtin_stubs;
mod ir_snapshots;
mod llvm_workarounds;
mod opt_budget;
mod scratch_words;
