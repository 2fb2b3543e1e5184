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
    for address in a.keys().chain(b.keys()) {
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
        for key in x.storage.keys().chain(y.storage.keys()) {
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
