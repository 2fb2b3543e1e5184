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
//! bounded and compares the whole input on every hit. A contract that
//! hashes fresh data every time (a hash chain) would pay a lookup and a
//! store per hash for nothing, so a window of lookups that hardly hits
//! turns the memo off for a while ([`MIN_HITS`]).
//!
//! What it remembers lives for a block by default ([`MemoScope`]): a node's
//! EVM is made for each block, and `NativeEvm` forgets at `set_block`. An
//! EVM that runs block after block (the sequencer's loop) takes
//! [`MemoScope::Evm`]: the slots of its hot accounts are hashed in every
//! block, and it keeps them, in a table that grows on to [`HUGE`] slots. A
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
    /// For the EVM's whole life, across blocks: for an EVM that executes
    /// block after block, as the sequencer's `BlockExecutor` does. The
    /// table grows on to 8,192 slots (about 900 KB).
    Evm,
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
/// Slots of a memo kept for an EVM's life ([`MemoScope::Evm`]) once it has
/// stored [`LARGE`] hashes (a power of two). The sequencer's weth workload
/// hashes the balance slots of its 1,000 accounts in every block: kept
/// across blocks in 1,024 slots they read 1.61–1.65x, in 8,192 slots
/// 1.70–1.71x, against 1.50–1.53x forgotten at each block
/// (benches/README.md, "KECCAK256 results kept across blocks").
const HUGE: usize = 8192;
/// Lookups per window of the hit count (see [`KeccakMemo::looked`]).
const WINDOW: u32 = 256;
/// A window with fewer hits than this turns the memo off for [`OFF_FOR`]
/// hashes. Real traffic hits far more often: 58-63% of the compiled frames'
/// lookups over the shared mainnet blocks, 50-87% in the sequencer's
/// workloads.
const MIN_HITS: u32 = WINDOW / 16;
/// Hashes computed without the memo once a window missed: a lookup and a
/// store cost about a tenth of a Keccak-f, which a contract hashing fresh
/// data every time (a hash chain) pays for nothing. The memo tries again
/// after them.
const OFF_FOR: u32 = 16 * WINDOW;

/// What is looked at first: a slot's period, input length and the input's
/// full 64-bit mix (the index is its top bits). Kept apart from the inputs,
/// so a miss reads 16 bytes of a table that fits the L1 cache.
#[derive(Clone, Copy)]
struct Tag {
    mix: u64,
    /// The period (block or transaction) the slot was written in; 0 never
    /// matches.
    generation: u32,
    len: u32,
}

/// What a slot remembers: the input, compared in full on every hit (the
/// mix only rules candidates out), and its hash.
#[derive(Clone, Copy)]
struct Entry {
    input: [u8; MAX_INPUT],
    hash: B256,
}

const NO_TAG: Tag = Tag {
    mix: 0,
    generation: 0,
    len: 0,
};

const NO_ENTRY: Entry = Entry {
    input: [0; MAX_INPUT],
    hash: B256::ZERO,
};

/// See the module documentation.
pub(crate) struct KeccakMemo {
    generation: u32,
    /// [`SMALL`] or [`LARGE`] tags and entries, made at the first hash of at
    /// most [`MAX_INPUT`] bytes, so that an EVM made for one call that
    /// hashes nothing makes none. On the heap: 112 KB would be a large
    /// temporary on the stack of a node's small-stack thread.
    tags: Vec<Tag>,
    entries: Vec<Entry>,
    /// Hashes stored since the last [`Self::forget`].
    stored: usize,
    /// Lookups and hits in the current window of [`WINDOW`] lookups.
    looked: u32,
    hits: u32,
    /// Hashes still to compute without the memo (see [`OFF_FOR`]).
    off_for: u32,
    /// How long it remembers; also how far its table grows ([`LARGE`], or
    /// [`HUGE`] for [`MemoScope::Evm`]).
    scope: MemoScope,
}

impl Default for KeccakMemo {
    fn default() -> Self {
        Self {
            generation: 1,
            tags: Vec::new(),
            entries: Vec::new(),
            stored: 0,
            looked: 0,
            hits: 0,
            off_for: 0,
            scope: MemoScope::default(),
        }
    }
}

impl KeccakMemo {
    /// Sets how long the memo remembers (see [`MemoScope`]).
    pub(crate) fn set_scope(&mut self, scope: MemoScope) {
        self.scope = scope;
    }

    /// A transaction starts: a memo kept per transaction forgets.
    #[inline]
    pub(crate) fn transaction_starts(&mut self) {
        if self.scope == MemoScope::Transaction {
            self.forget();
        }
    }

    /// A block starts: every memo but one kept for the EVM's life forgets.
    #[inline]
    pub(crate) fn block_starts(&mut self) {
        if self.scope != MemoScope::Evm {
            self.forget();
        }
    }

    /// Forgets every remembered hash (at each block, or each transaction).
    pub(crate) fn forget(&mut self) {
        self.stored = 0;
        self.looked = 0;
        self.hits = 0;
        self.off_for = 0;
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            // After 2^32 periods the stamps would repeat.
            self.tags.fill(NO_TAG);
            self.generation = 1;
        }
    }

    /// Keccak-256 of `input`, remembered until [`Self::forget`].
    pub(crate) fn hash(&mut self, input: &[u8]) -> B256 {
        if input.len() > MAX_INPUT {
            return keccak256(input);
        }
        if self.off_for > 0 {
            self.off_for -= 1;
            return keccak256(input);
        }
        if self.tags.is_empty() {
            self.tags = vec![NO_TAG; SMALL];
            self.entries = vec![NO_ENTRY; SMALL];
        }
        let m = mix(input);
        let mut at = index(m, self.tags.len());
        let found = self.remembered(at, m, input);
        self.count_lookup(found.is_some());
        if let Some(hash) = found {
            return hash;
        }
        let hash = keccak256(input);
        // A table grows once a period has stored as many hashes as it has
        // slots: 64 → 1,024, and for an EVM's life on to 8,192.
        let slots = self.tags.len();
        let max_slots = if self.scope == MemoScope::Evm {
            HUGE
        } else {
            LARGE
        };
        if self.stored == slots && slots < max_slots {
            self.grow(if slots == SMALL { LARGE } else { HUGE });
            at = index(m, self.tags.len());
        }
        self.stored += 1;
        self.tags[at] = Tag {
            mix: m,
            generation: self.generation,
            len: input.len() as u32,
        };
        let entry = &mut self.entries[at];
        entry.input[..input.len()].copy_from_slice(input);
        entry.hash = hash;
        hash
    }

    /// Counts a lookup; at the end of a window, turns the memo off if it
    /// hit too little.
    #[inline]
    fn count_lookup(&mut self, hit: bool) {
        self.looked += 1;
        self.hits += hit as u32;
        if self.looked == WINDOW {
            if self.hits < MIN_HITS {
                self.off_for = OFF_FOR;
            }
            self.looked = 0;
            self.hits = 0;
        }
    }

    /// Moves to `slots` slots, taking along what this period stored.
    #[cold]
    fn grow(&mut self, slots: usize) {
        let tags = std::mem::replace(&mut self.tags, vec![NO_TAG; slots]);
        let entries = std::mem::replace(&mut self.entries, vec![NO_ENTRY; slots]);
        for (tag, entry) in tags.into_iter().zip(entries) {
            if tag.generation == self.generation {
                let at = index(tag.mix, slots);
                self.tags[at] = tag;
                self.entries[at] = entry;
            }
        }
    }

    /// The hash of `input` (whose mix is `m`) if slot `at` holds it from
    /// this period.
    #[inline]
    fn remembered(&self, at: usize, m: u64, input: &[u8]) -> Option<B256> {
        let tag = &self.tags[at];
        if tag.mix != m || tag.generation != self.generation || tag.len as usize != input.len() {
            return None;
        }
        let entry = &self.entries[at];
        (entry.input[..input.len()] == *input).then_some(entry.hash)
    }

    /// Whether a hash of `input` is remembered (for tests).
    #[cfg(test)]
    pub(crate) fn remembers(&self, input: &[u8]) -> bool {
        let m = mix(input);
        !self.tags.is_empty()
            && self
                .remembered(index(m, self.tags.len()), m, input)
                .is_some()
    }
}

/// A multiplicative hash of `input`'s 8-byte words (at most [`MAX_INPUT`]
/// bytes), so that two keys of one mapping (same slot number, different
/// key) land apart.
#[inline]
fn mix(input: &[u8]) -> u64 {
    let mut h = input.len() as u64;
    let mut chunks = input.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        h = (h ^ w).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
    }
    for &b in chunks.remainder() {
        h = (h ^ b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    h.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// One of `slots` (a power of two) for an input of mix `m`: its top bits.
#[inline]
fn index(m: u64, slots: usize) -> usize {
    (m >> (64 - slots.trailing_zeros())) as usize
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
            assert!(memo.tags.iter().all(|t| t.generation != memo.generation));
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
        assert_eq!(memo.tags.len(), SMALL, "an EVM for one call stays small");
        let kept: Vec<u32> = (0..SMALL as u32)
            .filter(|&n| memo.remembers(&slot(n)))
            .collect();
        memo.hash(&slot(SMALL as u32));
        assert_eq!(memo.tags.len(), LARGE);
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
        assert_eq!(memo.tags.len(), LARGE);
        // A memo for a block or a transaction grows no further, though it
        // stores more hashes than it has slots (each input twice, so that
        // the lookups hit often enough to keep the memo on)...
        for n in 0..2 * LARGE as u32 {
            for _ in 0..2 {
                assert_eq!(memo.hash(&slot(n)), keccak256(slot(n)));
            }
        }
        assert!(memo.stored > LARGE, "{} stored", memo.stored);
        assert_eq!(memo.tags.len(), LARGE);
        // ...one kept for an EVM's life does, once it stored as many
        // hashes as it has slots, keeping what it stored.
        let mut memo = KeccakMemo::default();
        memo.set_scope(MemoScope::Evm);
        for n in 0..LARGE as u32 {
            memo.hash(&slot(n));
            memo.hash(&slot(n));
        }
        assert_eq!(memo.tags.len(), LARGE);
        let kept = (0..LARGE as u32)
            .filter(|&n| memo.remembers(&slot(n)))
            .count();
        memo.hash(&slot(LARGE as u32));
        assert_eq!(memo.tags.len(), HUGE);
        let now = (0..LARGE as u32)
            .filter(|&n| memo.remembers(&slot(n)))
            .count();
        assert!(now + 1 >= kept, "{now} of {kept} kept in growing");
        for n in 0..2 * HUGE as u32 {
            assert_eq!(memo.hash(&slot(n)), keccak256(slot(n)));
        }
        assert_eq!(memo.tags.len(), HUGE);
    }

    /// 32-byte inputs numbered `n` (a hash chain's links are such).
    fn word(n: u32) -> [u8; 32] {
        let mut b = [0u8; 32];
        b[28..].copy_from_slice(&n.to_be_bytes());
        b
    }

    #[test]
    fn a_window_that_hardly_hits_turns_the_memo_off_for_a_while() {
        let mut memo = KeccakMemo::default();
        // A window of fresh inputs with MIN_HITS - 1 repeats among them.
        for n in 0..WINDOW - (MIN_HITS - 1) {
            memo.hash(&word(n));
        }
        for n in 0..MIN_HITS - 1 {
            memo.hash(&word(n));
        }
        assert_eq!(memo.off_for, OFF_FOR, "too few hits: off");
        // Off: exact, but nothing is stored or looked up.
        let stored = memo.stored;
        for n in 0..OFF_FOR {
            assert_eq!(memo.hash(&word(n % 8)), keccak256(word(n % 8)));
        }
        assert_eq!((memo.stored, memo.looked, memo.off_for), (stored, 0, 0));
        // Then it looks up again, and what it stored before is still there.
        assert!(memo.remembers(&word(1)));
        assert_eq!(memo.hash(&word(1)), keccak256(word(1)));
        assert_eq!((memo.looked, memo.hits), (1, 1));
        // A new period starts on.
        memo.off_for = 5;
        memo.forget();
        assert_eq!((memo.off_for, memo.looked, memo.hits), (0, 0, 0));
    }

    #[test]
    fn a_window_with_enough_hits_keeps_the_memo_on() {
        let mut memo = KeccakMemo::default();
        for n in 0..WINDOW - MIN_HITS {
            memo.hash(&word(n));
        }
        // Recent inputs, so that the small table still holds them.
        for n in 0..MIN_HITS {
            memo.hash(&word(WINDOW - MIN_HITS - 1 - n));
        }
        assert_eq!(memo.off_for, 0);
        assert_eq!((memo.looked, memo.hits), (0, 0), "a new window");
        assert!(memo.remembers(&word(WINDOW - MIN_HITS - 1)));
    }

    #[test]
    fn a_different_input_of_the_same_mix_never_takes_the_hash() {
        let mut memo = KeccakMemo::default();
        let a = word(7);
        memo.hash(&a);
        // Forge the slot of `b` to carry `a`'s tag fields but for the mix:
        // the input comparison, not the mix, decides.
        let b = word(8);
        let at = index(mix(&b), memo.tags.len());
        memo.tags[at] = Tag {
            mix: mix(&b),
            generation: memo.generation,
            len: 32,
        };
        memo.entries[at] = Entry {
            input: {
                let mut i = [0; MAX_INPUT];
                i[..32].copy_from_slice(&a);
                i
            },
            hash: keccak256(a),
        };
        assert!(!memo.remembers(&b));
        assert_eq!(memo.hash(&b), keccak256(b));
    }

    #[test]
    fn mapping_slots_of_one_mapping_spread_over_the_memo() {
        let mut used = std::collections::HashSet::new();
        for key in 0..32u8 {
            let mut input = [0u8; 64];
            input[31] = key;
            input[63] = 3;
            used.insert(index(mix(&input), SMALL));
        }
        assert!(used.len() >= 20, "{} slots for 32 keys", used.len());
    }
}
