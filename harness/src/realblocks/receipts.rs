//! Receipts as alloy-evm's `AlloyReceiptBuilder` builds them, with each
//! logs bloom built from a memo of the Keccak-256 of every log address and
//! topic already seen in the block.
//!
//! A receipt's bloom hashes each log's address and each of its topics;
//! blocks repeat the same few (the ERC-20 Transfer topic, the busy tokens'
//! addresses) hundreds of times, and those hashes were a sixth of an
//! interpreted block's time. Keccak is pure, so a remembered hash gives the
//! bloom bit for bit; the header check (receipts root, logs bloom) still
//! judges the result.

use super::keccak_lanes::{keccak256_each, LANES};
use alloy_consensus::{Eip658Value, ReceiptEnvelope, ReceiptWithBloom, TxEnvelope, TxType};
use alloy_evm::eth::receipt_builder::{ReceiptBuilder, ReceiptBuilderCtx};
use alloy_evm::Evm;
use alloy_primitives::map::{AddressMap, B256Map, HashMap};
use alloy_primitives::{Address, Bloom, Log, B256};
use std::sync::Mutex;

/// Distinct addresses and topics remembered per map; beyond it the map
/// starts again (a block that logs more distinct values than this gains
/// nothing from remembering them).
const MEMO_CAPACITY: usize = 1 << 16;

/// Builds the same receipts as `AlloyReceiptBuilder`; one per block run,
/// so every run of a block does the same hashing work.
#[derive(Debug, Default)]
pub(crate) struct MemoReceiptBuilder {
    memo: Mutex<BloomMemo>,
}

/// Keccak-256 of the log addresses and topics seen so far. Topics are
/// chosen by contracts, so the maps' hasher is keyed at random, as revm's
/// own maps of accounts and storage slots (foldhash, through alloy's maps
/// of fixed-size bytes). With std's SipHash, keyed too, the maps took a
/// quarter to a third of the bloom's time on a block that logs thousands
/// of values once (the Merge block), the Keccak of those values the rest.
#[derive(Debug, Default)]
struct BloomMemo {
    addresses: AddressMap<B256>,
    topics: B256Map<B256>,
}

impl BloomMemo {
    /// The bloom of `logs`: remembered hashes are used as found; the
    /// others are hashed up to [`LANES`] at a time (`keccak_lanes`: eight
    /// on AVX-512 cost about one and a half scalar hashes), without
    /// repeats, and remembered. A bloom is an OR, so the order in which
    /// values reach it does not matter.
    fn logs_bloom(&mut self, logs: &[Log]) -> Bloom {
        let mut bloom = Bloom::ZERO;
        let mut pending: Vec<Value> = Vec::with_capacity(LANES);
        let values = logs.iter().flat_map(|log| {
            std::iter::once(Value::Address(log.address))
                .chain(log.topics().iter().map(|t| Value::Topic(*t)))
        });
        for value in values {
            let known = match &value {
                Value::Address(a) => self.addresses.get(a),
                Value::Topic(t) => self.topics.get(t),
            };
            match known {
                Some(hash) => bloom.m3_2048_hashed(hash),
                // Its bits go in with the first one's.
                None if pending.contains(&value) => {}
                None => {
                    pending.push(value);
                    if pending.len() == LANES {
                        self.hash_all(&mut pending, &mut bloom);
                    }
                }
            }
        }
        self.hash_all(&mut pending, &mut bloom);
        bloom
    }

    /// Hashes every value of `pending` into `bloom`, remembers it, and
    /// empties `pending`.
    fn hash_all(&mut self, pending: &mut Vec<Value>, bloom: &mut Bloom) {
        let mut inputs: [&[u8]; LANES] = [&[]; LANES];
        for (input, value) in inputs.iter_mut().zip(pending.iter()) {
            *input = value.bytes();
        }
        let mut hashes = [B256::ZERO; LANES];
        let n = pending.len();
        keccak256_each(&inputs[..n], &mut hashes[..n]);
        for (value, hash) in pending.drain(..).zip(hashes) {
            bloom.m3_2048_hashed(&hash);
            match value {
                Value::Address(a) => remember(&mut self.addresses, a, hash),
                Value::Topic(t) => remember(&mut self.topics, t, hash),
            }
        }
    }
}

/// A log address or topic not remembered yet.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Value {
    Address(Address),
    Topic(B256),
}

impl Value {
    fn bytes(&self) -> &[u8] {
        match self {
            Value::Address(a) => a.as_slice(),
            Value::Topic(t) => t.as_slice(),
        }
    }
}

/// Puts `key` and its `hash` into `map`, which starts again when full.
fn remember<K, S>(map: &mut HashMap<K, B256, S>, key: K, hash: B256)
where
    K: Eq + std::hash::Hash,
    S: std::hash::BuildHasher,
{
    if map.len() >= MEMO_CAPACITY {
        map.clear();
    }
    map.insert(key, hash);
}

impl ReceiptBuilder for MemoReceiptBuilder {
    type Transaction = TxEnvelope;
    type Receipt = ReceiptEnvelope;

    fn build_receipt<E: Evm>(&self, ctx: ReceiptBuilderCtx<'_, TxType, E>) -> ReceiptEnvelope {
        let receipt = alloy_consensus::Receipt {
            status: Eip658Value::Eip658(ctx.result.is_success()),
            cumulative_gas_used: ctx.cumulative_gas_used,
            logs: ctx.result.into_logs(),
        };
        // A poisoned lock only means another receipt's hashing panicked;
        // the memo holds nothing half-written (inserts are whole).
        let bloom = self
            .memo
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .logs_bloom(&receipt.logs);
        let receipt = ReceiptWithBloom::new(receipt, bloom);
        match ctx.tx_type {
            TxType::Legacy => ReceiptEnvelope::Legacy(receipt),
            TxType::Eip2930 => ReceiptEnvelope::Eip2930(receipt),
            TxType::Eip1559 => ReceiptEnvelope::Eip1559(receipt),
            TxType::Eip4844 => ReceiptEnvelope::Eip4844(receipt),
            TxType::Eip7702 => ReceiptEnvelope::Eip7702(receipt),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{keccak256, Bytes, LogData};

    fn log(address: u8, topics: &[u64]) -> Log {
        let topics = topics
            .iter()
            .map(|t| B256::left_padding_from(&t.to_be_bytes()))
            .collect();
        Log {
            address: Address::repeat_byte(address),
            data: LogData::new_unchecked(topics, Bytes::new()),
        }
    }

    /// The memo's bloom is alloy's, also when values repeat across and
    /// within receipts and once the memo has started again.
    #[test]
    fn memo_bloom_is_alloys_bloom() {
        let mut memo = BloomMemo::default();
        let receipts = [
            vec![log(1, &[7, 8]), log(1, &[7]), log(2, &[])],
            vec![],
            vec![log(2, &[8, 7, 9, 1]), log(3, &[7, 7])],
        ];
        for logs in &receipts {
            let mut expected = Bloom::ZERO;
            expected.accrue_logs(logs);
            assert_eq!(memo.logs_bloom(logs), expected);
        }
        memo.topics.extend((0..MEMO_CAPACITY as u64).map(|k| {
            let t = B256::left_padding_from(&(k + 1000).to_be_bytes());
            (t, keccak256(t))
        }));
        let logs = vec![log(4, &[7, 123_456])];
        let mut expected = Bloom::ZERO;
        expected.accrue_logs(&logs);
        assert_eq!(memo.logs_bloom(&logs), expected);
        assert!(memo.topics.len() <= 2, "the full map started again");
    }

    /// A receipt of many logs, as an airdrop's: one sender in every log,
    /// new recipients, hashed eight at a time across logs.
    #[test]
    fn many_new_values_in_one_receipt_give_alloys_bloom() {
        let mut memo = BloomMemo::default();
        let logs: Vec<Log> = (0..37u64).map(|i| log(9, &[1, 2, 100 + i])).collect();
        let mut expected = Bloom::ZERO;
        expected.accrue_logs(&logs);
        assert_eq!(memo.logs_bloom(&logs), expected);
        assert_eq!(memo.topics.len(), 2 + 37, "each topic remembered once");
        assert_eq!(memo.addresses.len(), 1);
    }
}
