//! Two runs of the same block, compared transaction by transaction and on
//! the state they leave.

use super::execute::BlockRun;

/// The first difference between `a` and `b` (per transaction: status, gas,
/// output, logs; then receipts; then the post-state, account by account),
/// described with `a_name` and `b_name`; `None` when they agree.
pub fn run_difference(a: &BlockRun, b: &BlockRun, a_name: &str, b_name: &str) -> Option<String> {
    if a.txs.len() != b.txs.len() {
        return Some(format!(
            "{} transactions {a_name}, {} {b_name}",
            a.txs.len(),
            b.txs.len()
        ));
    }
    for (i, (x, y)) in a.txs.iter().zip(&b.txs).enumerate() {
        let field = if x.status != y.status {
            format!("status {} {a_name}, {} {b_name}", x.status, y.status)
        } else if x.gas_used != y.gas_used {
            format!("gas {} {a_name}, {} {b_name}", x.gas_used, y.gas_used)
        } else if x.output != y.output {
            format!("output {} {a_name}, {} {b_name}", x.output, y.output)
        } else if x.logs != y.logs {
            format!(
                "logs differ ({} {a_name}, {} {b_name})",
                x.logs.len(),
                y.logs.len()
            )
        } else {
            continue;
        };
        return Some(format!("transaction {i}: {field}"));
    }
    if a.receipts != b.receipts {
        let i = a
            .receipts
            .iter()
            .zip(&b.receipts)
            .position(|(x, y)| x != y)
            .unwrap_or(0);
        return Some(format!("receipt {i} differs"));
    }
    if a.post != b.post {
        let keys = a.post.keys().chain(b.post.keys());
        for address in keys {
            let (x, y) = (a.post.get(address), b.post.get(address));
            if x != y {
                return Some(format!(
                    "post-state of {address}: {x:?} {a_name}, {y:?} {b_name}"
                ));
            }
        }
    }
    if a.new_code != b.new_code {
        return Some("created code differs".into());
    }
    None
}
