//! The integration tests of this crate, as one binary: each module is one
//! area. One binary links once, where a file per binary linked LLVM and
//! revm once each, which was most of CI's time on two cores.

mod drop_in;
mod edge_cases;
mod fuzz_diff;
mod fuzz_regressions;
mod inspect;
mod limits;
mod loop_unroll;
mod narrow_counters;
mod oog_sweep;
mod opcodes;
mod parts;
mod profile;
mod smoke;
