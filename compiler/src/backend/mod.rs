//! LLVM module -> object file -> shared object.

#[cfg(feature = "llvm")]
pub mod link;
#[cfg(feature = "llvm")]
pub mod target;
pub mod target_spec;

#[cfg(feature = "llvm")]
pub use link::link_shared_object;
#[cfg(feature = "llvm")]
pub use target::host_target;
pub use target_spec::TargetSpec;
