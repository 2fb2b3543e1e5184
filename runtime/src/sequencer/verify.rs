//! Where two runs of the same blocks differ, if they do.

use crate::revm_glue::block::{AccountDiff, BlockOutput, StateDiff};

/// The first difference between `a` and `b` (receipts in order, then the
/// state diff), described for a human; `None` when identical.
pub fn first_difference(a: &[BlockOutput], b: &[BlockOutput]) -> Option<String> {
    if a.len() != b.len() {
        return Some(format!("{} blocks vs {}", a.len(), b.len()));
    }
    a.iter()
        .zip(b)
        .enumerate()
        .find_map(|(i, (x, y))| block_difference(x, y).map(|d| format!("block {}: {d}", i + 1)))
}

/// The first difference between two outputs of one block.
pub fn block_difference(a: &BlockOutput, b: &BlockOutput) -> Option<String> {
    if a == b {
        return None;
    }
    if a.receipts.len() != b.receipts.len() {
        return Some(format!(
            "{} receipts vs {}",
            a.receipts.len(),
            b.receipts.len()
        ));
    }
    for (i, (x, y)) in a.receipts.iter().zip(&b.receipts).enumerate() {
        let field = if x.status != y.status {
            format!("status {:?} vs {:?}", x.status, y.status)
        } else if x.gas_used != y.gas_used {
            format!("gas used {} vs {}", x.gas_used, y.gas_used)
        } else if x.output != y.output {
            format!("output {} vs {}", x.output, y.output)
        } else if x.logs != y.logs {
            format!("logs {:?} vs {:?}", x.logs, y.logs)
        } else {
            continue;
        };
        return Some(format!("tx {i}: {field}"));
    }
    diff_difference(&a.diff, &b.diff)
}

fn diff_difference(a: &StateDiff, b: &StateDiff) -> Option<String> {
    let empty = AccountDiff::default();
    for address in sorted_union(a.keys(), b.keys()) {
        let (x, y) = match (a.get(address), b.get(address)) {
            (Some(x), Some(y)) => (x, y),
            (Some(_), None) => return Some(format!("account {address} changed only in the first")),
            (None, Some(_)) => {
                return Some(format!("account {address} changed only in the second"))
            }
            (None, None) => (&empty, &empty),
        };
        if x == y {
            continue;
        }
        if x.balance != y.balance || x.nonce != y.nonce || x.code_hash != y.code_hash {
            return Some(format!(
                "account {address}: balance {} nonce {} code {} vs balance {} nonce {} code {}",
                x.balance, x.nonce, x.code_hash, y.balance, y.nonce, y.code_hash
            ));
        }
        for key in sorted_union(x.storage.keys(), y.storage.keys()) {
            let (u, v) = (x.storage.get(key), y.storage.get(key));
            if u != v {
                return Some(format!("account {address} slot {key:#x}: {u:?} vs {v:?}"));
            }
        }
        return Some(format!(
            "account {address}: destroyed {} vs {}",
            x.destroyed, y.destroyed
        ));
    }
    None
}

/// The keys of two maps, each once, in order: the first difference is
/// then the same in every run (a map's own order depends on its hasher's
/// seed).
fn sorted_union<'a, K: Ord + 'a>(
    a: impl Iterator<Item = &'a K>,
    b: impl Iterator<Item = &'a K>,
) -> Vec<&'a K> {
    let mut keys: Vec<_> = a.chain(b).collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::revm_glue::block::{Address, Receipt, TxStatus, U256};

    fn block() -> BlockOutput {
        let receipt = Receipt {
            status: TxStatus::Success,
            gas_used: 21_000,
            cumulative_gas_used: 21_000,
            logs: Vec::new(),
            output: Default::default(),
        };
        let mut out = BlockOutput {
            receipts: vec![receipt.clone(), receipt],
            gas_used: 42_000,
            ..Default::default()
        };
        let acc = out.diff.entry(Address::repeat_byte(7)).or_default();
        acc.storage.insert(U256::from(1), U256::from(2));
        out
    }

    #[test]
    fn names_the_first_differing_receipt_or_slot() {
        let a = vec![block(), block()];
        assert_eq!(first_difference(&a, &a.clone()), None);

        let mut b = a.clone();
        b[1].receipts[1].gas_used += 1;
        assert_eq!(
            first_difference(&a, &b).unwrap(),
            "block 2: tx 1: gas used 21000 vs 21001"
        );

        let mut b = a.clone();
        b[0].diff
            .values_mut()
            .next()
            .unwrap()
            .storage
            .insert(U256::from(1), U256::from(3));
        let d = first_difference(&a, &b).unwrap();
        assert!(
            d.starts_with("block 1: account 0x0707") && d.contains("slot 0x1"),
            "{d}"
        );

        assert_eq!(first_difference(&a, &a[..1]).unwrap(), "2 blocks vs 1");
    }
}
