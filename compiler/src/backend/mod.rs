//! LLVM module -> object file -> shared object.

pub mod link;
pub mod target;

pub use link::link_shared_object;
pub use target::{host_target, TargetSpec};
