//! A memo of KECCAK256 results for one transaction's compiled frames.
//!
//! Token contracts hash the same mapping slot (`key ‖ slot`, 64 bytes) more
//! than once per transaction: a balance is read, checked and written back,
//! each access computing the slot afresh. Keccak is a pure function, so
//! returning a remembered hash for identical input bytes is exact; only the
//! cost of Keccak-f[1600] is saved (gas, memory expansion and every check
//! stay with the caller). The memo is direct-mapped and bounded, compares the
//! whole input on every hit, and forgets everything at each transaction so
//! that its benefit is what one transaction gives, never a warm-up across
//! a benchmark's repetitions.

use super::keccak::keccak256;
use revm::primitives::B256;

/// Inputs longer than this are hashed without the memo (mapping slots are
/// 64 bytes; nested mappings hash 64 bytes at each level).
const MAX_INPUT: usize = 64;
/// Number of slots (a power of two).
const SLOTS: usize = 64;

#[derive(Clone, Copy)]
struct Slot {
    /// The transaction the slot was written in; 0 never matches.
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
    slots: Box<[Slot; SLOTS]>,
}

impl Default for KeccakMemo {
    fn default() -> Self {
        Self {
            generation: 1,
            slots: Box::new([EMPTY; SLOTS]),
        }
    }
}

impl KeccakMemo {
    /// Forgets every remembered hash (called at each transaction start).
    pub(crate) fn next_transaction(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            // After 2^32 transactions the stamps would repeat.
            self.slots.fill(EMPTY);
            self.generation = 1;
        }
    }

    /// Keccak-256 of `input`, remembered for the rest of the transaction.
    pub(crate) fn hash(&mut self, input: &[u8]) -> B256 {
        if input.len() > MAX_INPUT {
            return keccak256(input);
        }
        let slot = &mut self.slots[index(input)];
        if slot.generation == self.generation
            && slot.len as usize == input.len()
            && slot.input[..input.len()] == *input
        {
            return slot.hash;
        }
        let hash = keccak256(input);
        slot.generation = self.generation;
        slot.len = input.len() as u32;
        slot.input[..input.len()].copy_from_slice(input);
        slot.hash = hash;
        hash
    }
}

/// A slot for `input` (at most [`MAX_INPUT`] bytes): a multiplicative hash
/// of its 8-byte words, so that two keys of one mapping (same slot number,
/// different key) land apart.
fn index(input: &[u8]) -> usize {
    let mut h = input.len() as u64;
    let mut chunks = input.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        h = (h ^ w).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
    }
    for &b in chunks.remainder() {
        h = (h ^ b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    (h.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - SLOTS.trailing_zeros())) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    // The reference: revm's own function.
    use revm::primitives::keccak256;

    #[test]
    fn equals_keccak_for_every_length_and_forgets_per_transaction() {
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
            memo.next_transaction();
            assert!(memo.slots.iter().all(|s| s.generation != memo.generation));
        }
    }

    #[test]
    fn mapping_slots_of_one_mapping_spread_over_the_memo() {
        let mut used = std::collections::HashSet::new();
        for key in 0..32u8 {
            let mut input = [0u8; 64];
            input[31] = key;
            input[63] = 3;
            used.insert(index(&input));
        }
        assert!(used.len() >= 20, "{} slots for 32 keys", used.len());
    }
}
