//! Everything in the harness that touches revm's API.

pub mod fixture;
pub mod single_call;
pub mod statetest;
