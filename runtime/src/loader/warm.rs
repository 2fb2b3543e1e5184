//! Fetching an artefact's code into the cache before it runs.
//!
//! The interpreter's code is the same for every contract and stays cached;
//! a compiled contract's is its own. Real traffic runs most contracts a few
//! times a block, and the first frame of each then fetches its code and
//! tables line by line from memory, one miss after another, as execution
//! reaches them. On the shared real blocks a block's first run gained
//! about a third less from compiling than its later runs ("Code fetched
//! before its first run in a block" in `benches/README.md`). Issued
//! together as prefetches, the same lines arrive in parallel.
//!
//! Each EVM takes a new [`epoch`](next_epoch) when it is made and at each
//! block; an artefact is fetched at its first native frame of an epoch
//! newer than the one it was last fetched for, so a contract that runs all
//! block long pays once a block, and a transaction repeated on one EVM
//! (as `bench` times it) once.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Bytes fetched at most per artefact: more than the code and tables of
/// nine in ten of the real blocks' artefacts (median 44 KiB), and a fraction of a server
/// core's L2 (1-2 MiB), so that a large contract, of which a call runs a
/// small part, cannot push everything else out.
pub(crate) const WARM_LIMIT: usize = 128 << 10;

/// The last epoch handed out; 0 means "never fetched".
static EPOCH: AtomicU64 = AtomicU64::new(0);

/// A new epoch, later than every one handed out before.
#[inline]
pub(crate) fn next_epoch() -> u64 {
    EPOCH.fetch_add(1, Relaxed) + 1
}

/// An artefact's code and read-only tables, and the epoch they were last
/// fetched for.
#[derive(Debug, Default)]
pub(crate) struct Warmth {
    start: usize,
    len: usize,
    fetched_for: AtomicU64,
    /// Times fetched (for tests and statistics).
    fetches: AtomicU64,
}

impl Warmth {
    /// `len` bytes of mapped code and tables from `start` (of which the
    /// first [`WARM_LIMIT`] are fetched).
    pub(crate) fn new(start: usize, len: usize) -> Self {
        Self {
            start,
            len: len.min(WARM_LIMIT),
            fetched_for: AtomicU64::new(0),
            fetches: AtomicU64::new(0),
        }
    }

    /// Fetches the code into the cache unless it was fetched for `epoch` or
    /// a later one; whether it did. Two EVMs of different epochs running
    /// the same artefact fetch it once each at most, not at every turn.
    #[inline]
    pub(crate) fn warm_for(&self, epoch: u64) -> bool {
        if self.fetched_for.load(Relaxed) >= epoch {
            return false;
        }
        self.fetched_for.store(epoch, Relaxed);
        self.fetch();
        true
    }

    /// Bytes fetched each time.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Times fetched so far.
    pub(crate) fn fetches(&self) -> u64 {
        self.fetches.load(Relaxed)
    }

    #[cold]
    #[inline(never)]
    fn fetch(&self) {
        self.fetches.fetch_add(1, Relaxed);
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T1};
            // Into L2, which holds code and data alike: the front end
            // finds the code there, and L1 is left to what runs now.
            for at in (self.start..self.start + self.len).step_by(64) {
                // SAFETY: a prefetch is a hint; it never faults, and these
                // addresses are the artefact's own mapped segments.
                unsafe { _mm_prefetch::<_MM_HINT_T1>(at as *const i8) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_artefact_is_fetched_once_per_epoch_and_not_for_an_older_one() {
        let code = vec![0u8; 4096];
        let warmth = Warmth::new(code.as_ptr() as usize, code.len());
        let (first, second) = (next_epoch(), next_epoch());
        assert!(second > first, "epochs only grow");
        assert!(warmth.warm_for(first));
        assert!(!warmth.warm_for(first), "once per epoch");
        assert!(warmth.warm_for(second), "again in a new epoch");
        // An EVM still in the older epoch does not fetch it again.
        assert!(!warmth.warm_for(first));
        assert!(!warmth.warm_for(second));
        assert_eq!(warmth.fetches(), 2);
    }

    #[test]
    fn at_most_the_limit_is_fetched() {
        assert_eq!(Warmth::new(4096, 100).len(), 100);
        assert_eq!(Warmth::new(4096, 10 << 20).len(), WARM_LIMIT);
        // Nothing to fetch (an artefact loaded by `dlopen`): never faults.
        assert!(Warmth::default().warm_for(next_epoch()));
    }
}
