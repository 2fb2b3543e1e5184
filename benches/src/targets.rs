//! The performance targets, by program.

use serde::Serialize;

/// Speedup is interpreter time over native time, same run, whole transaction.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", content = "limit", rename_all = "snake_case")]
pub enum Target {
    /// At least this speedup.
    Speedup(f64),
    /// Compiling all the case's contracts takes at most this many ms.
    CompileMs(f64),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Speedup(x) => write!(f, "≥{x}×"),
            Target::CompileMs(ms) => write!(f, "≤{ms}ms"),
        }
    }
}

/// A cache-hit load must take at most this long, for every contract.
pub const MAX_LOAD_US: f64 = 200.0;
/// Geometric mean of the speedups over the ipsilon main set.
pub const IPSILON_MAIN_GEOMEAN: f64 = 3.0;
pub const IPSILON_MAIN_GROUP: &str = "evm-benchmarks/main";
/// Compiled fibonacci within this factor of hand-written Rust.
pub const MAX_REFERENCE_RATIO: f64 = 1.5;

/// Single-call fixtures of deployed contracts, each held to
/// [`REAL_CONTRACT_SPEEDUP`] unless listed with its own target.
const REAL_CONTRACTS: &[&str] = &[
    "weth",
    "fiat_token",
    "usdc_proxy",
    "uniswap_v2_pair",
    "univ2_router",
    "seaport",
    "airdrop",
    "counter",
    "eip2935",
    "eip4788",
    "push0_proxy",
];
const REAL_CONTRACT_SPEEDUP: f64 = 1.5;

/// The targets for a case, from its group and name (its first `/` segment
/// names the program).
pub fn targets_for(group: &str, name: &str) -> Vec<Target> {
    let program = name.split('/').next().unwrap_or(name);
    let fixture = group == "contracts";
    let mut t = Vec::new();
    match program {
        "snailtracer" => {
            t.push(Target::Speedup(4.0));
            t.push(Target::CompileMs(500.0));
        }
        // evmone's and ipsilon's builds, every input.
        "weierstrudel" => t.push(Target::Speedup(2.0)),
        "fibonacci-calldata" if fixture => t.push(Target::Speedup(18.0)),
        "factorial" if fixture => t.push(Target::Speedup(12.0)),
        "burntpix" if fixture => t.push(Target::Speedup(7.0)),
        "onchain_lm_v2" | "onchain-lm-v2" if fixture => t.push(Target::Speedup(9.0)),
        "curve-stableswap-2pool" if fixture => t.push(Target::Speedup(2.6)),
        "hash_10k" if fixture => t.push(Target::Speedup(1.6)),
        "erc20_transfer" if fixture => t.push(Target::Speedup(1.6)),
        p if fixture && REAL_CONTRACTS.contains(&p) => {
            t.push(Target::Speedup(REAL_CONTRACT_SPEEDUP));
            if p == "seaport" {
                t.push(Target::CompileMs(1000.0));
            }
        }
        _ => {}
    }
    t
}

/// Whether `target` is met; `None` when there is nothing to judge (no
/// speedup because the row diverged or did not run).
pub fn met(target: Target, speedup: Option<f64>, compile_ms: Option<f64>) -> Option<bool> {
    match target {
        Target::Speedup(x) => speedup.map(|s| s >= x),
        Target::CompileMs(ms) => compile_ms.map(|c| c <= ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_by_program() {
        assert_eq!(
            targets_for("evm-benchmarks/main", "snailtracer/benchmark"),
            vec![Target::Speedup(4.0), Target::CompileMs(500.0)]
        );
        assert_eq!(
            targets_for("contracts", "seaport"),
            vec![Target::Speedup(1.5), Target::CompileMs(1000.0)]
        );
        assert_eq!(
            targets_for("contracts", "fibonacci-calldata"),
            vec![Target::Speedup(18.0)]
        );
        for group in ["evmone/main", "evm-benchmarks/main"] {
            assert_eq!(
                targets_for(group, "weierstrudel/14"),
                vec![Target::Speedup(2.0)]
            );
        }
        assert!(targets_for("evmone/micro", "factorial").is_empty());
        assert!(targets_for("contracts", "bswap64").is_empty());
        assert_eq!(met(Target::Speedup(2.0), Some(2.5), None), Some(true));
        assert_eq!(
            met(Target::CompileMs(500.0), None, Some(600.0)),
            Some(false)
        );
        assert_eq!(met(Target::Speedup(2.0), None, None), None);
    }
}
