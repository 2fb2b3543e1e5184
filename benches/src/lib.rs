//! The benchmark harness shared by `evmc-native bench` and the criterion
//! benches: find programs ([`discover`]), compile each contract once with
//! its phases, size and load time ([`compile`]), check the native run
//! against the interpreter's and time both alternated ([`run`]), next to
//! hand-written Rust for the simplest programs ([`reference`]), against the
//! performance targets ([`targets`]).

pub mod compile;
pub mod discover;
pub mod exec;
pub mod machine;
pub mod measure;
pub mod reference;
pub mod run;
pub mod targets;

pub use compile::{CompileSettings, Compiler, Contract};
pub use discover::{discover, CallSettings, Case, Work};
pub use exec::{Run, Runner, Transaction, Verified};
pub use machine::Machine;
pub use measure::{alternate, geomean, median, Budget};
pub use run::{
    bench_case, divergence, verify_natively, CaseReport, ContractReport, PhasesMs, ReferenceReport,
    Stats,
};
pub use targets::Target;
