//! The description of a code-generation target, shared by the compiler
//! (which generates code for it) and loaders (which check that this machine
//! can run code generated for it). Needs no LLVM.

/// What to generate code for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetSpec {
    /// LLVM target triple (`x86_64-unknown-linux-gnu`).
    pub triple: String,
    /// LLVM CPU name (`znver3`, `generic`, ...).
    pub cpu: String,
    /// LLVM feature string (`+avx2,-avx512f,...`).
    pub features: String,
}

impl TargetSpec {
    /// Only the enabled features, which is what a loading machine must have.
    pub fn required_features(&self) -> String {
        self.features
            .split(',')
            .filter(|f| f.starts_with('+'))
            .collect::<Vec<_>>()
            .join(",")
    }
}
