//! The integration tests of this crate, as one binary: each module is one
//! area. One binary links once, where a file per binary linked LLVM and
//! revm once each, which was most of CI's time on two cores.

mod bench_cli;
mod cache_cli;
mod cache_dir;
mod cli;
mod closed_stdout;
mod compile_limits;
mod hostile_inputs;
mod interrupt;
mod json_schema;
mod nothing_ran;
mod numeric_flags;
mod operator;
mod replay;
mod run_cli;
mod sequencer_cli;
mod statetest;
mod store_cli;
mod support;
