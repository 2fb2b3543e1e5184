//! The integration tests of this crate, as one binary: each module is one
//! area. One binary links once, where a file per binary linked LLVM and
//! revm once each, which was most of CI's time on two cores.

mod support;

mod cache;
mod dead_builds;
mod hostile_artifacts;
mod hot;
mod in_place;
mod load_only;
mod metrics;
mod read_only;
mod sequencer;
mod shutdown;
mod store;
mod trust;
