//! What a profile saw run of a contract, for compiling only that.
//!
//! Real traffic runs a small part of each contract: the 33 shared mainnet
//! blocks ran 16% of their contracts' instructions, a third for the
//! busiest (benches/README.md, "What real blocks run of their contracts").
//! A compile given the pcs that ran ([`CompileOptions::ran`]) generates
//! code for the blocks entered and leaves every other block to the
//! interpreter: a cold block is an exit (`exit::DEOPT`) at its first
//! instruction, with the stack, gas and memory exactly as the interpreter
//! has them there. Results do not depend on the profile; only the speed
//! of what it did not see does.
//!
//! [`CompileOptions::ran`]: crate::CompileOptions::ran

use crate::revm_api::keccak256;
use crate::B256;

/// The pcs of the instructions a profile saw executed, sorted and
/// distinct.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RanPcs {
    pcs: Vec<u32>,
    digest: B256,
}

impl RanPcs {
    /// From any pcs, in any order, repeats allowed.
    pub fn new(pcs: impl IntoIterator<Item = u32>) -> Self {
        let mut pcs: Vec<u32> = pcs.into_iter().collect();
        pcs.sort_unstable();
        pcs.dedup();
        let bytes: Vec<u8> = pcs.iter().flat_map(|p| p.to_le_bytes()).collect();
        Self {
            digest: keccak256(&bytes),
            pcs,
        }
    }

    /// From a bitmap whose bit `pc % 64` of word `pc / 64` is set for each
    /// pc that ran.
    pub fn from_bitmap(words: &[u64]) -> Self {
        Self::new(words.iter().enumerate().flat_map(|(i, &w)| {
            (0..64)
                .filter(move |b| w >> b & 1 == 1)
                .map(move |b| (i * 64 + b) as u32)
        }))
    }

    /// Whether the instruction at `pc` ran.
    pub fn contains(&self, pc: u32) -> bool {
        self.pcs.binary_search(&pc).is_ok()
    }

    /// The pcs, ascending.
    pub fn pcs(&self) -> &[u32] {
        &self.pcs
    }

    /// How many instructions ran.
    pub fn len(&self) -> usize {
        self.pcs.len()
    }

    /// Whether nothing ran.
    pub fn is_empty(&self) -> bool {
        self.pcs.is_empty()
    }

    /// Keccak-256 of the pcs (4 bytes each, little-endian, ascending): what
    /// names this profile in cache keys.
    pub fn digest(&self) -> B256 {
        self.digest
    }
}

#[cfg(test)]
mod tests {
    use super::RanPcs;

    #[test]
    fn bitmap_and_list_agree() {
        let a = RanPcs::new([130, 0, 64, 5, 5, 63]);
        assert_eq!(a.pcs(), &[0, 5, 63, 64, 130]);
        let mut words = vec![0u64; 3];
        for p in [0u32, 5, 63, 64, 130] {
            words[p as usize / 64] |= 1 << (p % 64);
        }
        assert_eq!(RanPcs::from_bitmap(&words), a);
        assert!(a.contains(63) && !a.contains(62));
        assert_ne!(a.digest(), RanPcs::new([0, 5, 63, 64]).digest());
    }
}
