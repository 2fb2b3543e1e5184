//! evmc-harness: drivers that run real and reference workloads through
//! evmc-native and check the results.

pub mod realblocks;
