//! The safety net: an artefact that runs slower than the interpreter is
//! set aside, so that enabling compilation never costs speed.
//!
//! A compiled contract can lose to the interpreter: straight-line code run
//! once (its machine code is far larger than its bytecode and comes cold
//! from memory), a contract whose frames are a few instructions between
//! host calls, or one that runs a handful of times per block so that its
//! code is never warm. Which contracts lose depends on the machine and the
//! traffic, so it is measured where it happens: some frame segments of
//! each artefact (a frame's run up to its end or to a CALL/CREATE) are
//! timed, half of them run natively and half interpreted, chosen at random,
//! and the artefact runs the way that costs less time per unit of gas.
//!
//! Exactness is untouched: a segment gives the interpreter's result either
//! way, and a frame can change engines at a CALL/CREATE boundary because
//! the interpreter's state is the single source of truth between segments
//! (the same property deoptimisation relies on).
//!
//! Every segment is timed until each engine has [`MIN_SAMPLES`] samples;
//! after that one segment in [`PROBE_EVERY`] keeps sampling, so that a
//! verdict taken on cold code, or before the traffic changed, can turn.
//! The record lives in the artefact and is shared by every EVM that runs
//! it; sums are halved now and then so that recent segments weigh more.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};

/// Samples each engine needs before a verdict.
pub const MIN_SAMPLES: u64 = 16;

/// Gas each engine's samples must hold for a verdict on fewer than
/// [`MIN_SAMPLES`] samples (see `NetRecord::enough`).
pub const DECIDE_GAS: u64 = 1_000_000;

/// Once decided, one segment in this many is still timed (a power of two).
pub const PROBE_EVERY: u64 = 64;

/// Below `1 - HYSTERESIS` an artefact is set aside; at or above 1 it runs
/// natively; in between it keeps its verdict.
pub const HYSTERESIS: f64 = 0.05;

/// A sample's time is clipped to this many times its engine's mean...
const CLIP_FACTOR: u64 = 16;
/// ...once the engine has this many samples.
const CLIP_AFTER: u64 = 4;

/// When either engine reaches this many samples, every sum is halved.
const DECAY_AT: u64 = 1 << 14;

const UNDECIDED: u8 = 0;
const NATIVE: u8 = 1;
const INTERPRETED: u8 = 2;

/// How an artefact runs, as far as the safety net has measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not enough samples yet: segments alternate at random.
    Undecided,
    /// Native is as fast as the interpreter or faster.
    Native,
    /// Native was slower: frames run interpreted (still sampled now and then).
    Interpreted,
}

impl Verdict {
    /// Stable snake_case name, for reports and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Undecided => "undecided",
            Self::Native => "native",
            Self::Interpreted => "interpreted",
        }
    }
}

/// What the net measured for one artefact.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NetReport {
    /// The current verdict.
    pub verdict: Verdict,
    /// Timed native segments (after decay).
    pub native_samples: u64,
    /// Timed interpreted segments (after decay).
    pub interp_samples: u64,
    /// Interpreted time per gas over native time per gas: above 1, native
    /// is faster. `None` until both engines have run a segment with gas.
    pub speedup: Option<f64>,
}

/// One engine's sums.
#[derive(Default)]
struct Side {
    samples: AtomicU64,
    ticks: AtomicU64,
    gas: AtomicU64,
}

impl Side {
    fn load(&self) -> (u64, u64, u64) {
        (
            self.samples.load(Relaxed),
            self.ticks.load(Relaxed),
            self.gas.load(Relaxed),
        )
    }

    fn halve(&self) {
        for a in [&self.samples, &self.ticks, &self.gas] {
            a.store(a.load(Relaxed) / 2, Relaxed);
        }
    }
}

/// The per-artefact record (kept in [`crate::LoadedArtifact`]). Updates are
/// relaxed atomics: two EVMs racing lose at most a sample, never exactness.
#[derive(Default)]
pub struct NetRecord {
    native: Side,
    interp: Side,
    /// The first segment of each engine is dropped (bit 0: native, bit 1:
    /// interpreted): it pays for page faults and cold caches that say
    /// nothing about the code.
    warmed: AtomicU8,
    verdict: AtomicU8,
}

/// What to do with one segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    /// Run natively, untimed.
    Native,
    /// Run interpreted, untimed.
    Interpreted,
    /// Run natively (`true`) or interpreted, and record the time.
    Sample(bool),
}

impl NetRecord {
    /// The current verdict.
    pub fn verdict(&self) -> Verdict {
        match self.verdict.load(Relaxed) {
            NATIVE => Verdict::Native,
            INTERPRETED => Verdict::Interpreted,
            _ => Verdict::Undecided,
        }
    }

    /// How the next segment runs, given a fresh random number.
    #[inline]
    pub fn choose(&self, random: u64) -> Choice {
        let v = self.verdict.load(Relaxed);
        if v == UNDECIDED || random & (PROBE_EVERY - 1) == 0 {
            Choice::Sample(random >> 63 == 1)
        } else if v == NATIVE {
            Choice::Native
        } else {
            Choice::Interpreted
        }
    }

    /// Records a timed segment: `ticks` of the clock for `gas` units of the
    /// frame's own gas, natively or not; updates the verdict.
    pub fn record(&self, native: bool, ticks: u64, gas: u64) {
        let bit = if native { 1 } else { 2 };
        if self.warmed.fetch_or(bit, Relaxed) & bit == 0 {
            return;
        }
        let side = if native { &self.native } else { &self.interp };
        // A segment the thread was descheduled in, or that took an
        // interrupt, would outweigh hundreds of real ones: clip it to a
        // multiple of the mean once there is a mean to speak of.
        let (n, t, _) = side.load();
        let ticks = if n >= CLIP_AFTER {
            ticks.min(t / n * CLIP_FACTOR)
        } else {
            ticks
        };
        side.ticks.fetch_add(ticks, Relaxed);
        side.gas.fetch_add(gas, Relaxed);
        let n = side.samples.fetch_add(1, Relaxed) + 1;
        if n >= DECAY_AT {
            self.native.halve();
            self.interp.halve();
        }
        let verdict = match self.speedup() {
            Some((s, n_native, n_interp)) if self.enough(n_native, n_interp) => {
                // A band around 1 where the verdict stays as it is (native
                // while undecided: the contract was compiled for a reason),
                // so that noise between near-equal engines does not flip it.
                let current = self.verdict.load(Relaxed);
                if s < 1.0 - HYSTERESIS {
                    INTERPRETED
                } else if s >= 1.0 || current == UNDECIDED {
                    NATIVE
                } else {
                    current
                }
            }
            _ => UNDECIDED,
        };
        if verdict != UNDECIDED {
            self.verdict.store(verdict, Relaxed);
        }
    }

    /// Whether the samples so far can carry a verdict: [`MIN_SAMPLES`] per
    /// engine, or, for contracts whose frames are long (a few calls a
    /// block, each spending millions of gas), two per engine with
    /// [`DECIDE_GAS`] each: timer noise is nothing against milliseconds,
    /// and waiting for sixteen would run half of those calls interpreted.
    fn enough(&self, n_native: u64, n_interp: u64) -> bool {
        if n_native >= MIN_SAMPLES && n_interp >= MIN_SAMPLES {
            return true;
        }
        n_native >= 2
            && n_interp >= 2
            && self.native.gas.load(Relaxed) >= DECIDE_GAS
            && self.interp.gas.load(Relaxed) >= DECIDE_GAS
    }

    /// Interpreted time per gas over native time per gas, with each side's
    /// sample count.
    fn speedup(&self) -> Option<(f64, u64, u64)> {
        let (nn, nt, ng) = self.native.load();
        let (in_, it, ig) = self.interp.load();
        if nn == 0 || in_ == 0 {
            return None;
        }
        // Per gas when both sides saw gas; per segment otherwise (frames
        // that spend nothing between host calls).
        let (native_cost, interp_cost) = if ng > 0 && ig > 0 {
            (nt as f64 / ng as f64, it as f64 / ig as f64)
        } else {
            (nt as f64 / nn as f64, it as f64 / in_ as f64)
        };
        let s = if native_cost > 0.0 {
            interp_cost / native_cost
        } else {
            f64::INFINITY
        };
        Some((s, nn, in_))
    }

    /// What has been measured so far.
    pub fn report(&self) -> NetReport {
        let s = self.speedup();
        NetReport {
            verdict: self.verdict(),
            native_samples: self.native.samples.load(Relaxed),
            interp_samples: self.interp.samples.load(Relaxed),
            speedup: s.map(|(s, _, _)| s),
        }
    }
}

/// A cheap, monotonic clock in arbitrary units (only compared with
/// itself): the time-stamp counter on x86-64, nanoseconds elsewhere.
#[inline]
pub fn ticks() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: rdtsc has no preconditions on x86-64.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        use std::sync::OnceLock;
        use std::time::Instant;
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }
}

/// xorshift64*: the random choices of one EVM (statistical, not secret).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Default for Rng {
    fn default() -> Self {
        Self(0x9e37_79b9_7f4a_7c15)
    }
}

impl Rng {
    /// The next random number.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(r: &NetRecord, native_cost: u64, interp_cost: u64, rounds: usize) {
        for _ in 0..rounds {
            r.record(true, native_cost * 100, 100);
            r.record(false, interp_cost * 100, 100);
        }
    }

    #[test]
    fn undecided_until_both_engines_have_enough_samples() {
        let r = NetRecord::default();
        feed(&r, 1, 5, MIN_SAMPLES as usize); // the first of each is dropped
        assert_eq!(r.verdict(), Verdict::Undecided);
        feed(&r, 1, 5, 1);
        assert_eq!(r.verdict(), Verdict::Native);
    }

    #[test]
    fn a_slower_artefact_is_set_aside_and_can_come_back() {
        let r = NetRecord::default();
        feed(&r, 3, 1, 40);
        assert_eq!(r.verdict(), Verdict::Interpreted);
        let rep = r.report();
        assert!(rep.speedup.unwrap() < 0.5, "{rep:?}");
        feed(&r, 1, 10, 40);
        assert_eq!(r.verdict(), Verdict::Native);
    }

    #[test]
    fn long_frames_are_decided_on_a_few_samples() {
        let r = NetRecord::default();
        // The first of each engine is dropped; then two each of 1M gas.
        for _ in 0..2 {
            r.record(true, 1_000_000, 1_000_000);
            r.record(false, 5_000_000, 1_000_000);
        }
        assert_eq!(r.verdict(), Verdict::Undecided);
        r.record(true, 1_000_000, 1_000_000);
        r.record(false, 5_000_000, 1_000_000);
        assert_eq!(r.verdict(), Verdict::Native, "{:?}", r.report());
    }

    #[test]
    fn near_equal_engines_keep_the_verdict() {
        let r = NetRecord::default();
        // 0.97x: inside the band, native while undecided...
        feed(&r, 100, 97, 20);
        assert_eq!(r.verdict(), Verdict::Native, "{:?}", r.report());
        // ...and a set-aside artefact stays set aside until native wins.
        let r = NetRecord::default();
        feed(&r, 100, 50, 20);
        assert_eq!(r.verdict(), Verdict::Interpreted);
        feed(&r, 100, 120, 20);
        assert_eq!(r.verdict(), Verdict::Interpreted, "{:?}", r.report());
    }

    #[test]
    fn the_first_segment_of_each_engine_is_dropped() {
        let r = NetRecord::default();
        r.record(true, 1_000_000, 1);
        r.record(false, 1, 1);
        assert_eq!(r.report().native_samples, 0);
        assert_eq!(r.report().interp_samples, 0);
    }

    #[test]
    fn decided_records_sample_one_segment_in_probe_every() {
        let r = NetRecord::default();
        feed(&r, 1, 5, 40);
        let mut rng = Rng::default();
        let n = 64 * 1024;
        let sampled = (0..n)
            .filter(|_| matches!(r.choose(rng.next_u64()), Choice::Sample(_)))
            .count();
        let expect = n / PROBE_EVERY as usize;
        assert!(sampled > expect / 2 && sampled < expect * 2, "{sampled}");
    }

    #[test]
    fn one_descheduled_segment_does_not_flip_the_verdict() {
        let r = NetRecord::default();
        feed(&r, 1, 2, 20);
        assert_eq!(r.verdict(), Verdict::Native);
        r.record(true, 1_000_000_000, 100);
        assert_eq!(r.verdict(), Verdict::Native, "{:?}", r.report());
    }

    #[test]
    fn sums_decay_instead_of_overflowing() {
        let r = NetRecord::default();
        feed(&r, 1, 5, DECAY_AT as usize + 10);
        assert!(r.report().native_samples < DECAY_AT);
        assert_eq!(r.verdict(), Verdict::Native);
    }
}
