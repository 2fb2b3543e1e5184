//! The storage words one native run has read or written, so that reading
//! one of them again skips the host.
//!
//! Contracts read the same slot more than once between two calls: a
//! ray tracer its scene in every iteration, a token a balance it checked a
//! moment before. Each SLOAD through revm hashes the address and the key
//! into the journal's maps. Within one run of a compiled frame (from its
//! entry or its resume after a CALL/CREATE to its next suspension or end),
//! nothing but the frame's own SSTOREs changes its storage: other frames
//! run only during a suspension, which ends the run, and every run starts
//! with an empty memo. A slot read or written earlier in the run is warm,
//! so reading it again charges the warm cost, which generated code has
//! already charged as the opcode's static gas: a hit returns the
//! remembered word and charges nothing, exactly as revm's SLOAD does for a
//! warm slot (before Berlin, SLOAD has no dynamic gas at all).
//!
//! The memo is direct-mapped, owned by the EVM and reused by every run;
//! each run stamps its entries with its own number, so emptying it costs
//! nothing. Its table (72 KB) is made at the first store, so an EVM made
//! for one call zeroes it for that call. A table that starts small and grows
//! when it thrashes ran erc20_transfer and the ipsilon snailtracer 3-4%
//! slower (the lookup then depends on the table's length).

/// Number of entries (a power of two). Snailtracer reads its scene, a few
/// hundred slots, for every ray: 16 entries hit 2% of its SLOADs, 256 hit
/// 41%, 1,024 hit 83% (burntpix 50%, erc20_transfer's loop 99.9%).
const ENTRIES: usize = 1024;

/// A 256-bit word as generated code stores it: four little-endian limbs.
pub(super) type Word = [u64; 4];

#[derive(Clone, Copy)]
struct Entry {
    /// The run that wrote the entry; 0 never matches.
    run: u32,
    key: Word,
    value: Word,
}

const EMPTY: Entry = Entry {
    run: 0,
    key: [0; 4],
    value: [0; 4],
};

/// See the module documentation.
pub(crate) struct SloadMemo {
    run: u32,
    entries: Option<Box<[Entry; ENTRIES]>>,
}

impl Default for SloadMemo {
    fn default() -> Self {
        Self {
            run: 1,
            entries: None,
        }
    }
}

impl SloadMemo {
    /// Forgets every word (called at each run's start).
    pub(super) fn next_run(&mut self) {
        self.run = self.run.wrapping_add(1);
        if self.run == 0 {
            // After 2^32 runs the stamps would repeat.
            if let Some(e) = self.entries.as_mut() {
                e.fill(EMPTY);
            }
            self.run = 1;
        }
    }

    /// The word last read from or written to `key` in this run.
    #[inline]
    pub(super) fn get(&self, key: &Word) -> Option<Word> {
        let e = &self.entries.as_ref()?[index(key)];
        (e.run == self.run && e.key == *key).then_some(e.value)
    }

    /// Remembers that `key` holds `value` (read, or just stored).
    #[inline]
    pub(super) fn set(&mut self, key: Word, value: Word) {
        // Made on the heap directly: 72 KB would be a large temporary on
        // the stack of a node's small-stack thread.
        let entries = self.entries.get_or_insert_with(|| {
            let table = vec![EMPTY; ENTRIES].into_boxed_slice();
            table
                .try_into()
                .unwrap_or_else(|_| unreachable!("ENTRIES long"))
        });
        entries[index(&key)] = Entry {
            run: self.run,
            key,
            value,
        };
    }
}

/// The entry for `key`: mapping slots are Keccak hashes (any limb will do),
/// array elements and plain variables small consecutive numbers (the low
/// limb tells them apart).
#[inline]
fn index(key: &Word) -> usize {
    let h = (key[0] ^ key[1] ^ key[2] ^ key[3]).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (h >> (64 - ENTRIES.trailing_zeros())) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_last_word_of_each_key_for_one_run() {
        let mut m = SloadMemo::default();
        let k = |n: u64| [n, 0, 0, 0];
        assert_eq!(m.get(&k(1)), None);
        m.set(k(1), [7, 0, 0, 0]);
        assert_eq!(m.get(&k(1)), Some([7, 0, 0, 0]));
        m.set(k(1), [8, 0, 0, 1]);
        assert_eq!(m.get(&k(1)), Some([8, 0, 0, 1]));
        // Keys share entries: a key evicted by another is a miss, never
        // the other's word.
        for n in 2..5000 {
            m.set(k(n), [n, n, n, n]);
        }
        let mut hits = 0;
        for n in 2..5000 {
            if let Some(v) = m.get(&k(n)) {
                assert_eq!(v, [n, n, n, n]);
                hits += 1;
            }
        }
        assert!(hits > 0);
        assert_eq!(m.get(&[0, 0, 0, 1 << 63]), None);
        // The next run starts empty.
        m.next_run();
        assert!((1..5000).all(|n| m.get(&k(n)).is_none()));
    }

    #[test]
    fn run_numbers_wrap_to_an_empty_memo() {
        let mut m = SloadMemo::default();
        m.set([1, 0, 0, 0], [2, 0, 0, 0]);
        m.run = u32::MAX;
        m.set([3, 0, 0, 0], [4, 0, 0, 0]);
        m.next_run();
        assert_eq!(m.run, 1);
        // The entry stamped 1 long ago is gone, not revived.
        assert_eq!(m.get(&[1, 0, 0, 0]), None);
        assert_eq!(m.get(&[3, 0, 0, 0]), None);
    }
}
