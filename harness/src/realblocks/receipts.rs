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

use alloy_consensus::{Eip658Value, ReceiptEnvelope, ReceiptWithBloom, TxEnvelope, TxType};
use alloy_evm::eth::receipt_builder::{ReceiptBuilder, ReceiptBuilderCtx};
use alloy_evm::Evm;
use alloy_primitives::{keccak256, Address, Bloom, Log, B256};
use std::sync::Mutex;

/// Entries per table (2^10): a block rarely logs more distinct addresses
/// or topics than this.
const SLOT_BITS: u32 = 10;
const MEMO_SLOTS: usize = 1 << SLOT_BITS;

/// Builds the same receipts as `AlloyReceiptBuilder`; one per block run,
/// so every run of a block does the same hashing work.
#[derive(Debug, Default)]
pub(crate) struct MemoReceiptBuilder {
    memo: Mutex<BloomMemo>,
}

/// Keccak-256 of the log addresses and topics seen so far, in
/// direct-mapped tables: a value whose slot another one took is hashed
/// again. Topics are chosen by contracts, and with a table whose slot
/// conflicts only cost a hash, no choice of them costs more than having no
/// memo (a hash map could be made to chain them).
#[derive(Debug, Default)]
struct BloomMemo {
    addresses: Table<Address>,
    topics: Table<B256>,
}

#[derive(Debug)]
struct Table<K> {
    slots: Vec<Option<(K, B256)>>,
}

impl<K> Default for Table<K> {
    fn default() -> Self {
        Self { slots: Vec::new() }
    }
}

impl<K: AsRef<[u8]> + Eq + Copy> Table<K> {
    fn hash(&mut self, key: K) -> B256 {
        if self.slots.is_empty() {
            self.slots.resize_with(MEMO_SLOTS, || None);
        }
        let slot = &mut self.slots[slot_of(key.as_ref())];
        match slot {
            Some((k, hash)) if *k == key => *hash,
            _ => {
                let hash = keccak256(key.as_ref());
                *slot = Some((key, hash));
                hash
            }
        }
    }
}

/// A slot from every byte of `key` (so keys sharing a prefix spread).
fn slot_of(key: &[u8]) -> usize {
    let mut h = 0u64;
    for chunk in key.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        h = (h ^ u64::from_le_bytes(word)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    (h >> (64 - SLOT_BITS)) as usize
}

impl BloomMemo {
    fn logs_bloom(&mut self, logs: &[Log]) -> Bloom {
        let mut bloom = Bloom::ZERO;
        for log in logs {
            bloom.m3_2048_hashed(&self.addresses.hash(log.address));
            for topic in log.topics() {
                bloom.m3_2048_hashed(&self.topics.hash(*topic));
            }
        }
        bloom
    }
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
    use alloy_primitives::{Bytes, LogData};

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
    /// within receipts and when more values than slots take turns.
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
        // Values that share a slot push each other out and are hashed
        // again, with the same bloom.
        let crowd: Vec<u64> = (0..4 * MEMO_SLOTS as u64).collect();
        for _ in 0..2 {
            let logs = vec![log(4, &crowd)];
            let mut expected = Bloom::ZERO;
            expected.accrue_logs(&logs);
            assert_eq!(memo.logs_bloom(&logs), expected);
        }
    }
}
