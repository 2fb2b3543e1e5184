//! The hand-written Rust programs compute what the contracts compute, with
//! the same gas, and run out of gas exactly when the contracts do.

use evmc_benches::{discover, reference, CallSettings, Transaction, Work};
use evmc_tests::shared_dir;

fn fixture(name: &str) -> Transaction {
    let file = shared_dir().join(format!("benchdata/contracts/{name}.json"));
    let mut cases = discover(&[file], CallSettings::default()).unwrap();
    assert_eq!(cases.len(), 1);
    match cases.remove(0).work {
        Work::Run { tx, .. } => *tx,
        Work::CompileOnly { .. } => unreachable!("fixtures run"),
    }
}

fn word(n: u64) -> [u8; 32] {
    let mut w = [0u8; 32];
    w[24..].copy_from_slice(&n.to_be_bytes());
    w
}

#[test]
fn rust_versions_agree_with_the_interpreter_on_output_and_gas() {
    for name in ["fibonacci-calldata", "factorial"] {
        let program = reference::for_program(name).unwrap();
        let base = fixture(name);
        for n in [0, 1, 2, 3, 10, 57, 1000] {
            let tx = base.with_input(&word(n));
            let evm = tx.verify(None);
            let (intrinsic, floor) = tx.intrinsic_gas();
            let rust = program(tx.input(), tx.gas_limit() - intrinsic).unwrap();
            assert_eq!(
                rust.output.as_slice(),
                evm.output.as_slice(),
                "{name} n={n}"
            );
            assert_eq!(
                (intrinsic + rust.gas_used).max(floor),
                evm.gas_used,
                "{name} n={n}"
            );
            // Just enough gas, and one unit less.
            let exact = intrinsic + rust.gas_used;
            for (limit, enough) in [(exact, true), (exact - 1, false)] {
                if limit < floor {
                    continue;
                }
                let evm = tx.with_gas_limit(limit).verify(None);
                let rust = program(tx.input(), limit - intrinsic);
                assert_eq!(rust.is_some(), enough, "{name} n={n} gas {limit}");
                assert_eq!(
                    evm.observable.starts_with("success"),
                    enough,
                    "{name} n={n} gas {limit}: {}",
                    evm.observable
                );
            }
        }
    }
}
