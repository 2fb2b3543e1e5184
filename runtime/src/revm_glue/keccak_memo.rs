//! A memo of KECCAK256 results for compiled frames, kept for a block.
//!
//! Token contracts hash the same mapping slot (`key ‖ slot`, 64 bytes) more
//! than once per transaction: a balance is read, checked and written back,
//! each access computing the slot afresh. The transactions of a block do it
//! again: every swap in a block hashes the pool's balance slot in both
//! tokens, every transfer from a busy address its balance slot. Keccak is a
//! pure function, so returning a remembered hash for identical input bytes
//! is exact; only the cost of Keccak-f[1600] is saved (gas, memory expansion
//! and every check stay with the caller). The memo is direct-mapped and
//! bounded and compares the whole input on every hit.
//!
//! What it remembers lives for a block by default ([`MemoScope`]): a node's
//! EVM is made for each block, and `NativeEvm` forgets at `set_block`. A
//! benchmark that times one transaction again and again on one EVM takes
//! [`MemoScope::Transaction`], so that its figure is what one transaction
//! gets, never hits left by the previous repetition.

use super::keccak::keccak256;
use revm::primitives::B256;

/// How long [`crate::NativeEvm`] remembers KECCAK256 results.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MemoScope {
    /// Until the block changes (`set_block`) or the EVM is dropped.
    #[default]
    Block,
    /// Until the transaction ends: what a benchmark timing one transaction
    /// on a reused EVM needs.
    Transaction,
}

/// Inputs longer than this are hashed without the memo (mapping slots are
/// 64 bytes; nested mappings hash 64 bytes at each level).
const MAX_INPUT: usize = 64;
/// Slots of a new memo (a power of two): what one transaction needs.
const SMALL: usize = 64;
/// Slots once a period has stored [`SMALL`] hashes (a power of two): room
/// for the mapping slots of a block (500 WETH transfers hash at most 1,000
/// distinct ones), at 112 KB. The 64 slots of a memo kept for a
/// transaction thrashed when kept for a block; an EVM made for one call
/// keeps the 7 KB table.
const LARGE: usize = 1024;

#[derive(Clone, Copy)]
struct Slot {
    /// The period (block or transaction) the slot was written in; 0 never
    /// matches.
    generation: u32,
    len: u32,
    input: [u8; MAX_INPUT],
    hash: B256,
}

const EMPTY: Slot = Slot {
    generation: 0,
    len: 0,
    input: [0; MAX_INPUT],
    hash: B256::ZERO,
};

/// See the module documentation.
pub(crate) struct KeccakMemo {
    generation: u32,
    /// [`SMALL`] or [`LARGE`] slots, made at the first hash of at most
    /// [`MAX_INPUT`] bytes, so that an EVM made for one call that hashes
    /// nothing makes none. On the heap: 112 KB would be a large temporary on
    /// the stack of a node's small-stack thread.
    slots: Vec<Slot>,
    /// Hashes stored since the last [`Self::forget`].
    stored: usize,
}

impl Default for KeccakMemo {
    fn default() -> Self {
        Self {
            generation: 1,
            slots: Vec::new(),
            stored: 0,
        }
    }
}

impl KeccakMemo {
    /// Forgets every remembered hash (at each block, or each transaction).
    pub(crate) fn forget(&mut self) {
        self.stored = 0;
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            // After 2^32 periods the stamps would repeat.
            self.slots.fill(EMPTY);
            self.generation = 1;
        }
    }

    /// Keccak-256 of `input`, remembered until [`Self::forget`].
    pub(crate) fn hash(&mut self, input: &[u8]) -> B256 {
        if input.len() > MAX_INPUT {
            return keccak256(input);
        }
        if self.slots.is_empty() {
            self.slots = vec![EMPTY; SMALL];
        }
        let mut at = index(input, self.slots.len());
        if let Some(hash) = self.remembered(at, input) {
            return hash;
        }
        let hash = keccak256(input);
        if self.stored == SMALL && self.slots.len() == SMALL {
            self.grow();
            at = index(input, LARGE);
        }
        self.stored += 1;
        self.slots[at] = Slot {
            generation: self.generation,
            len: input.len() as u32,
            input: {
                let mut bytes = [0; MAX_INPUT];
                bytes[..input.len()].copy_from_slice(input);
                bytes
            },
            hash,
        };
        hash
    }

    /// Moves to [`LARGE`] slots, taking along what this period stored.
    #[cold]
    fn grow(&mut self) {
        let small = std::mem::replace(&mut self.slots, vec![EMPTY; LARGE]);
        for s in small
            .into_iter()
            .filter(|s| s.generation == self.generation)
        {
            let at = index(&s.input[..s.len as usize], LARGE);
            self.slots[at] = s;
        }
    }

    /// The hash of `input` if slot `at` holds it from this period.
    #[inline]
    fn remembered(&self, at: usize, input: &[u8]) -> Option<B256> {
        let slot = &self.slots[at];
        (slot.generation == self.generation
            && slot.len as usize == input.len()
            && slot.input[..input.len()] == *input)
            .then_some(slot.hash)
    }

    /// Whether a hash of `input` is remembered (for tests).
    #[cfg(test)]
    pub(crate) fn remembers(&self, input: &[u8]) -> bool {
        !self.slots.is_empty()
            && self
                .remembered(index(input, self.slots.len()), input)
                .is_some()
    }
}

/// One of `slots` (a power of two) for `input` (at most [`MAX_INPUT`]
/// bytes): a multiplicative hash of its 8-byte words, so that two keys of
/// one mapping (same slot number, different key) land apart.
fn index(input: &[u8], slots: usize) -> usize {
    let mut h = input.len() as u64;
    let mut chunks = input.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        h = (h ^ w).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
    }
    for &b in chunks.remainder() {
        h = (h ^ b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    (h.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - slots.trailing_zeros())) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    // The reference: revm's own function.
    use revm::primitives::keccak256;

    #[test]
    fn equals_keccak_for_every_length_and_forgets_when_told() {
        let mut memo = KeccakMemo::default();
        let data: Vec<u8> = (0..200u32).map(|i| (i * 7 + 3) as u8).collect();
        for round in 0..3 {
            for len in 0..data.len() {
                // Twice: a miss, then a hit (or a collision) must agree.
                for _ in 0..2 {
                    assert_eq!(memo.hash(&data[..len]), keccak256(&data[..len]), "{len}");
                }
            }
            // Same length, one byte different: never the old hash.
            let mut other = data[..64].to_vec();
            other[63] ^= 1;
            assert_eq!(memo.hash(&other), keccak256(&other));
            if round == 1 {
                memo.generation = u32::MAX;
            }
            memo.forget();
            assert!(memo.slots.iter().all(|s| s.generation != memo.generation));
        }
    }

    #[test]
    fn grows_once_a_period_stores_as_many_hashes_as_it_has_slots() {
        let slot = |n: u32| {
            let mut b = [0u8; 64];
            b[..4].copy_from_slice(&n.to_le_bytes());
            b
        };
        let mut memo = KeccakMemo::default();
        for n in 0..SMALL as u32 {
            memo.hash(&slot(n));
        }
        assert_eq!(memo.slots.len(), SMALL, "an EVM for one call stays small");
        let kept: Vec<u32> = (0..SMALL as u32)
            .filter(|&n| memo.remembers(&slot(n)))
            .collect();
        memo.hash(&slot(SMALL as u32));
        assert_eq!(memo.slots.len(), LARGE);
        // The small table's entries move along (each large slot lies inside
        // one small slot); the new entry may have replaced one of them.
        let lost = kept.iter().filter(|&&n| !memo.remembers(&slot(n))).count();
        assert!(lost <= 1, "{lost} of {} lost in growing", kept.len());
        assert!(memo.remembers(&slot(SMALL as u32)));
        for n in 0..4 * SMALL as u32 {
            assert_eq!(memo.hash(&slot(n)), keccak256(slot(n)));
        }
        // The next period starts empty, in the large table.
        memo.forget();
        assert!((0..4 * SMALL as u32).all(|n| !memo.remembers(&slot(n))));
        assert_eq!(memo.slots.len(), LARGE);
    }

    #[test]
    fn mapping_slots_of_one_mapping_spread_over_the_memo() {
        let mut used = std::collections::HashSet::new();
        for key in 0..32u8 {
            let mut input = [0u8; 64];
            input[31] = key;
            input[63] = 3;
            used.insert(index(&input, SMALL));
        }
        assert!(used.len() >= 20, "{} slots for 32 keys", used.len());
    }
}
