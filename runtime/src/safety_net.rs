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
//! timed, half of them natively and half interpreted, chosen at random,
//! and the artefact runs the way that costs less time per unit of gas.
//!
//! Exactness is untouched: a segment gives the interpreter's result either
//! way, and a frame can change engines at a CALL/CREATE boundary because
//! the interpreter's state is the single source of truth between segments
//! (the same property deoptimisation relies on).
//!
//! Until each engine has [`MIN_SAMPLES`] samples, one segment in
//! [`UNDECIDED_INTERP_EVERY`] is timed interpreted and one timed natively,
//! the others run natively (see there why not half interpreted);
//! after that one segment in [`PROBE_EVERY`] keeps sampling, so that a
//! verdict taken on cold code, or before the traffic changed, can turn.
//! The record lives in the artefact and is shared by every EVM that runs
//! it; sums are halved now and then so that recent segments weigh more.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};

/// Samples each engine needs before a verdict.
pub const MIN_SAMPLES: u64 = 16;

/// While an artefact is undecided, one segment in this many (a power of
/// two) is timed interpreted and one timed natively; the others run
/// natively, untimed. The contracts a node compiles were picked for their
/// gas, and most run faster natively; but many of those of real blocks run
/// too few frames for a verdict, and an even split of every segment ran
/// half of their frames interpreted for as long as they lasted. On the
/// shared mainnet blocks (`replay --mode compare --repeat 3`) the even
/// split gave 1.08-1.10x and this 1.11-1.12x (no net: 1.12x); with four
/// times as many contracts compiled (`--min-gas 50000`) 1.06-1.08x
/// against 1.11-1.14x. A contract that does lose natively is still set
/// aside once each engine has its samples, only later.
pub const UNDECIDED_INTERP_EVERY: u64 = 16;

/// An artefact's first segments run natively, untimed, before any is
/// sampled. Most contracts of real blocks run fewer segments there than a
/// verdict needs, so their interpreted samples bought nothing and cost
/// their speed: on the shared mainnet blocks at the default selection, 811
/// of 15,011 compiled segments ran interpreted as samples (447 with this),
/// and `--no-safety-net` read 1-6% faster in single runs
/// (benches/README.md, "The safety net's first segments"). A contract the
/// net would set aside loses these segments too, as it would while
/// undecided; `bench`'s warm-up runs them before its verdicts.
pub const QUIET_SEGMENTS: u8 = 32;

/// Gas each engine's samples must hold to keep a contract native on fewer
/// than [`MIN_SAMPLES`] samples (see `Evidence::Few`).
pub const DECIDE_GAS: u64 = 1_000_000;

/// Once decided, one segment in this many is still timed (a power of two)...
pub const PROBE_EVERY: u64 = 64;

/// ...when segments spend this much gas or less on average; segments that
/// spend more are timed proportionally less often (a power of two more
/// rarely, at most [`MAX_PROBE_STRETCH`] times), so that what the probes
/// cost stays a small share of the time whatever the segments' length: a
/// probe runs the losing engine half the time, and a contract whose few
/// segments per transaction run for milliseconds (burntpix: about 40 per
/// transaction, 3.5x faster natively) lost 7-16% to its probes.
pub const PROBE_GAS: u64 = 1 << 16;

/// Most a probe interval is stretched for long segments.
pub const MAX_PROBE_STRETCH: u64 = 1 << 10;

/// Below `1 - HYSTERESIS` an artefact is set aside; at or above 1 it runs
/// natively; in between it keeps its verdict.
pub const HYSTERESIS: f64 = 0.05;

/// A sample's time is clipped to this many times its engine's mean
/// segment, or its mean time per gas times the sample's gas if more...
const CLIP_FACTOR: u64 = 16;
/// ...once the engine has this many samples. Its first samples are
/// clipped when there are this many, to the same multiple of their median
/// (see [`Side::early`]).
const CLIP_AFTER: u64 = 4;

/// When either engine reaches this many samples, every sum is halved.
const DECAY_AT: u64 = 1 << 14;

/// Step of each engine's running median of time per gas, in octaves per
/// sample (`Side::log_per_gas`): small enough that it stays within a few
/// percent of the median, large enough to follow it from the first four
/// samples' median within tens of samples.
const MEDIAN_STEP: f64 = 1.0 / 16.0;

const UNDECIDED: u8 = 0;
const NATIVE: u8 = 1;
const INTERPRETED: u8 = 2;

/// How an artefact runs, as far as the safety net has measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not enough samples yet: one segment in [`UNDECIDED_INTERP_EVERY`]
    /// is timed interpreted, one natively, the others run natively.
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
    /// The same ratio of the two engines' running medians of time per
    /// gas; `None` until each has four samples with gas.
    pub median_speedup: Option<f64>,
}

/// One engine's sums.
#[derive(Default)]
struct Side {
    samples: AtomicU64,
    ticks: AtomicU64,
    gas: AtomicU64,
    /// `(ticks, gas)` of the samples taken before [`CLIP_AFTER`], which
    /// no mean can clip yet. When there are [`CLIP_AFTER`] of them, what
    /// each took beyond [`CLIP_FACTOR`] times their median is taken back
    /// out of the sums: one of them descheduled for a time slice, or
    /// waiting on a cold database page, would otherwise stay in the sums
    /// until they decay ([`DECAY_AT`] samples later) and decide the verdict
    /// on its own. A median of four is not moved by one such sample. A
    /// lock, taken only for these first samples of each engine.
    early: std::sync::Mutex<Vec<(u64, u64)>>,
    /// A running median of the samples' time per gas, as the bits of its
    /// base-2 logarithm (0: none yet): the median of the first four, then
    /// a step of [`MEDIAN_STEP`] towards each sample. Outliers move it one
    /// step each, whatever their size.
    log_per_gas: AtomicU64,
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

    /// The running median of time per gas, once there is one.
    fn median_per_gas(&self) -> Option<f64> {
        match self.log_per_gas.load(Relaxed) {
            0 => None,
            bits => Some(f64::from_bits(bits).exp2()),
        }
    }

    /// Moves the running median a step towards a sample's time per gas.
    fn step_median(&self, ticks: u64, gas: u64) {
        let bits = self.log_per_gas.load(Relaxed);
        if gas == 0 || bits == 0 {
            return;
        }
        let m = f64::from_bits(bits);
        let x = (ticks.max(1) as f64 / gas as f64).log2();
        self.set_log_median(if x > m {
            m + MEDIAN_STEP
        } else {
            m - MEDIAN_STEP
        });
    }

    fn set_log_median(&self, log2: f64) {
        // 0.0's bits mean "none": a median of exactly one tick per gas is
        // kept a hair above.
        let log2 = if log2 == 0.0 { f64::MIN_POSITIVE } else { log2 };
        self.log_per_gas.store(log2.to_bits(), Relaxed);
    }

    /// Adds a sample taken before the side has [`CLIP_AFTER`] (see
    /// [`Self::early`]); `false` if it has them by now (the caller clips
    /// the sample against the means instead).
    fn add_early(&self, ticks: u64, gas: u64) -> bool {
        let mut early = self.early.lock().unwrap_or_else(|e| e.into_inner());
        if self.samples.load(Relaxed) >= CLIP_AFTER {
            return false;
        }
        early.push((ticks, gas));
        self.ticks.fetch_add(ticks, Relaxed);
        self.gas.fetch_add(gas, Relaxed);
        self.samples.fetch_add(1, Relaxed);
        if early.len() as u64 >= CLIP_AFTER {
            if let Some(m) = median_per_gas(&early) {
                self.set_log_median(m.log2());
            }
            let excess = excess_over_median(&early);
            // Relaxed atomics: `fetch_update` cannot fail with `Some`.
            let _ = self
                .ticks
                .fetch_update(Relaxed, Relaxed, |t| Some(t.saturating_sub(excess)));
            *early = Vec::new();
        }
        true
    }
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(match v.len().is_multiple_of(2) {
        true => (v[m - 1] + v[m]) / 2.0,
        false => v[m],
    })
}

/// The median time per gas of the samples that spent gas.
fn median_per_gas(samples: &[(u64, u64)]) -> Option<f64> {
    median(
        samples
            .iter()
            .filter(|&&(_, g)| g > 0)
            .map(|&(t, g)| t.max(1) as f64 / g as f64)
            .collect(),
    )
}

/// What the samples took beyond [`CLIP_FACTOR`] times what their median
/// predicts: the median segment, or the median time per gas times the
/// sample's gas if more (the rule [`NetRecord::record`] applies with means).
fn excess_over_median(samples: &[(u64, u64)]) -> u64 {
    let segment = median(samples.iter().map(|&(t, _)| t as f64).collect()).unwrap_or(0.0);
    let per_gas = median_per_gas(samples).unwrap_or(0.0);
    samples
        .iter()
        .map(|&(t, g)| t.saturating_sub(clip_bound(segment, per_gas, g)))
        .sum()
}

/// Most ticks a sample of `gas` counts for: [`CLIP_FACTOR`] times what a
/// segment (`segment` ticks) or its gas at `per_gas` ticks each predicts,
/// whichever is more.
fn clip_bound(segment: f64, per_gas: f64, gas: u64) -> u64 {
    // `as` saturates an out-of-range bound.
    (segment.max(per_gas * gas as f64) * CLIP_FACTOR as f64) as u64
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
    /// One less than the probe interval once decided, above
    /// `PROBE_EVERY - 1` for long segments (see [`PROBE_GAS`]); zero
    /// before any sample.
    probe_mask: AtomicU64,
    /// Segments chosen so far, up to [`QUIET_SEGMENTS`] (a load and a
    /// store, not an atomic add: two EVMs racing miss a count at most).
    quiet: AtomicU8,
}

/// How much a record's samples can decide.
enum Evidence {
    /// Too few samples for anything.
    None,
    /// A few long segments per engine: enough to keep a contract native,
    /// not to set it aside. Clipping needs [`CLIP_AFTER`] samples, and one
    /// segment preempted for a time slice (milliseconds, as long as the
    /// segment itself) doubles a mean of two: with the tests running beside
    /// it on two cores, structarray_alloc (about 3x natively) was set aside
    /// at "0.54x over 2 + 2 samples" in one run of eight. Taking each
    /// engine's fastest segment instead was biased the other way: segments
    /// differ in time per gas, and the engine with more samples had more
    /// chances at a cheap one (burntpix, 6-7x natively, set aside at "0.64x
    /// over 2 + 6"). A contract that does lose natively stays undecided,
    /// sampled one segment in [`UNDECIDED_INTERP_EVERY`] per engine, until
    /// [`MIN_SAMPLES`] each set it aside.
    Few,
    /// [`MIN_SAMPLES`] per engine: a verdict either way.
    Full,
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
        let mask = self.probe_mask.load(Relaxed).max(PROBE_EVERY - 1);
        if v == UNDECIDED {
            let quiet = self.quiet.load(Relaxed);
            if quiet < QUIET_SEGMENTS {
                self.quiet.store(quiet + 1, Relaxed);
                return Choice::Native;
            }
            // The top bits pick: one segment in `UNDECIDED_INTERP_EVERY` is
            // timed interpreted, one timed natively, the rest run natively
            // untimed, skipping the clock reads and the record (timing
            // every segment measured the same within noise: 1.12-1.13x
            // against 1.11-1.14x on the shared blocks at `--min-gas
            // 50000`). A probe below uses the low bits.
            match random >> (64 - UNDECIDED_INTERP_EVERY.trailing_zeros()) {
                0 => Choice::Sample(false),
                1 => Choice::Sample(true),
                _ => Choice::Native,
            }
        } else if random & mask == 0 {
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
        // multiple of what the means predict once there are means to speak
        // of (before that, of what the first samples' median predicts:
        // `Side::early`). The prediction grows with the segment's gas: a
        // contract's segments range from a few hundred gas between calls
        // to millions in one loop, and a clip on the mean segment alone cut
        // burntpix's long interpreted segment to a twentieth, which set the
        // contract aside though it ran 3.4x faster natively.
        if side.samples.load(Relaxed) >= CLIP_AFTER || !side.add_early(ticks, gas) {
            side.step_median(ticks, gas);
            let (n, t, g) = side.load();
            let per_gas = if g > 0 { t as f64 / g as f64 } else { 0.0 };
            let ticks = ticks.min(clip_bound((t / n.max(1)) as f64, per_gas, gas));
            side.ticks.fetch_add(ticks, Relaxed);
            side.gas.fetch_add(gas, Relaxed);
            let n = side.samples.fetch_add(1, Relaxed) + 1;
            if n >= DECAY_AT {
                self.native.halve();
                self.interp.halve();
            }
        }
        self.probe_mask.store(self.probe_interval() - 1, Relaxed);
        let verdict = match self.speedup() {
            Some((s, n_native, n_interp)) => {
                // A band around 1 where the verdict stays as it is (native
                // while undecided: the contract was compiled for a reason),
                // so that noise between near-equal engines does not flip it.
                let current = self.verdict.load(Relaxed);
                match self.evidence(n_native, n_interp) {
                    // The running medians must agree before a contract
                    // is set aside: a few interrupted segments, each
                    // clipped to 16 times the mean, can outweigh the rest
                    // of 16 samples (a profiler's interrupts did, setting
                    // aside contracts 2-3x faster natively); they move a
                    // median a step each.
                    Evidence::Full
                        if s < 1.0 - HYSTERESIS
                            && self.median_speedup().is_none_or(|m| m < 1.0) =>
                    {
                        INTERPRETED
                    }
                    // Few samples only ever keep a contract native (see
                    // `Evidence::Few`).
                    Evidence::Full | Evidence::Few
                        if s >= 1.0 || (current == UNDECIDED && s >= 1.0 - HYSTERESIS) =>
                    {
                        NATIVE
                    }
                    // The means say native loses, the medians that it
                    // wins: native, as an undecided contract runs.
                    Evidence::Full if current == UNDECIDED => NATIVE,
                    _ => current,
                }
            }
            None => UNDECIDED,
        };
        if verdict != UNDECIDED {
            self.verdict.store(verdict, Relaxed);
        }
    }

    /// What the samples so far can carry: a verdict either way with
    /// [`MIN_SAMPLES`] per engine; for contracts whose frames are long (a
    /// few calls a block, each spending millions of gas), two per engine
    /// with [`DECIDE_GAS`] each can keep the contract native: timer noise
    /// is nothing against milliseconds, and waiting for sixteen would run
    /// half of those calls interpreted.
    fn evidence(&self, n_native: u64, n_interp: u64) -> Evidence {
        if n_native >= MIN_SAMPLES && n_interp >= MIN_SAMPLES {
            Evidence::Full
        } else if n_native >= 2
            && n_interp >= 2
            && self.native.gas.load(Relaxed) >= DECIDE_GAS
            && self.interp.gas.load(Relaxed) >= DECIDE_GAS
        {
            Evidence::Few
        } else {
            Evidence::None
        }
    }

    /// One segment in how many a decided record times: [`PROBE_EVERY`],
    /// stretched by the segments' mean gas over [`PROBE_GAS`].
    fn probe_interval(&self) -> u64 {
        let (nn, _, ng) = self.native.load();
        let (in_, _, ig) = self.interp.load();
        let mean_gas = (ng + ig) / (nn + in_).max(1);
        let stretch = (mean_gas / PROBE_GAS)
            .clamp(1, MAX_PROBE_STRETCH)
            .next_power_of_two();
        PROBE_EVERY * stretch
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

    /// The interpreter's running median of time per gas over native's.
    fn median_speedup(&self) -> Option<f64> {
        Some(self.interp.median_per_gas()? / self.native.median_per_gas()?)
    }

    /// What has been measured so far.
    pub fn report(&self) -> NetReport {
        let s = self.speedup();
        NetReport {
            median_speedup: self.median_speedup(),
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
    /// A stream of its own: each EVM draws a different seed. With one fixed
    /// seed every new EVM made the same first choice, and that first
    /// output's top bits are 0, a timed interpreted segment: the first
    /// compiled segment of every EVM ran interpreted, and every EVM drew the
    /// same choices after it. A node creates an EVM per block, `bench` one
    /// per case; onchain-lm, timed in a few long runs of one frame each,
    /// measured 1.04-1.06x in two runs of eight with the shared seed, 8-12x
    /// in the others.
    fn default() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let k = NEXT.fetch_add(1, Relaxed);
        Self::seeded(k)
    }
}

impl Rng {
    /// The stream numbered `k` (for tests that want the same choices at
    /// every run).
    pub fn seeded(k: u64) -> Self {
        // SplitMix64's finaliser spreads consecutive numbers over the whole
        // state; xorshift needs a nonzero one.
        let mut z = k.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Self((z ^ (z >> 31)) | 1)
    }

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
    fn a_few_long_segments_never_set_a_contract_aside() {
        let r = NetRecord::default();
        // Native twice as fast, but one of its two segments lost a time
        // slice and took six times as long: the means say 0.57x.
        r.record(true, 1, 1);
        r.record(false, 1, 1);
        r.record(true, 1_000_000, 1_000_000);
        r.record(true, 6_000_000, 1_000_000);
        r.record(false, 2_000_000, 1_000_000);
        r.record(false, 2_000_000, 1_000_000);
        let rep = r.report();
        assert_eq!(rep.verdict, Verdict::Undecided, "{rep:?}");
        assert!(rep.speedup.unwrap() < 0.6, "{rep:?}");
        // More long segments where native does lose: still undecided until
        // each engine has `MIN_SAMPLES`, then set aside.
        for _ in 0..MIN_SAMPLES - 3 {
            r.record(true, 3_000_000, 1_000_000);
            r.record(false, 1_000_000, 1_000_000);
        }
        assert_eq!(r.verdict(), Verdict::Undecided, "{:?}", r.report());
        r.record(true, 3_000_000, 1_000_000);
        r.record(false, 1_000_000, 1_000_000);
        assert_eq!(r.verdict(), Verdict::Interpreted, "{:?}", r.report());
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
    fn an_artefacts_first_segments_run_natively_untimed() {
        let r = NetRecord::default();
        // Zero picks an interpreted sample once the quiet segments are over.
        for _ in 0..QUIET_SEGMENTS {
            assert_eq!(r.choose(0), Choice::Native);
        }
        assert_eq!(r.choose(0), Choice::Sample(false));
        assert_eq!(r.choose(u64::MAX), Choice::Native);
    }

    #[test]
    fn the_first_segment_of_each_engine_is_dropped() {
        let r = NetRecord::default();
        r.record(true, 1_000_000, 1);
        r.record(false, 1, 1);
        assert_eq!(r.report().native_samples, 0);
        assert_eq!(r.report().interp_samples, 0);
    }

    /// Each EVM starts its own stream: the first segment of a new EVM is
    /// timed interpreted one time in `UNDECIDED_INTERP_EVERY`, not every
    /// time (as with one seed for all).
    #[test]
    fn new_evms_make_different_first_choices() {
        let r = NetRecord::default();
        for _ in 0..QUIET_SEGMENTS {
            r.choose(0);
        }
        let n = 4096;
        let first_interpreted = (0..n)
            .filter(|_| r.choose(Rng::default().next_u64()) == Choice::Sample(false))
            .count();
        let expect = n / UNDECIDED_INTERP_EVERY as usize;
        assert!(
            first_interpreted > expect / 2 && first_interpreted < expect * 2,
            "{first_interpreted} of {n} new EVMs ran their first segment interpreted"
        );
    }

    #[test]
    fn decided_records_sample_one_segment_in_probe_every() {
        let r = NetRecord::default();
        feed(&r, 1, 5, 40);
        let mut rng = Rng::seeded(1);
        let n = 64 * 1024;
        let sampled = (0..n)
            .filter(|_| matches!(r.choose(rng.next_u64()), Choice::Sample(_)))
            .count();
        let expect = n / PROBE_EVERY as usize;
        assert!(sampled > expect / 2 && sampled < expect * 2, "{sampled}");
    }

    #[test]
    fn undecided_records_run_few_segments_interpreted() {
        assert!(UNDECIDED_INTERP_EVERY.is_power_of_two());
        let r = NetRecord::default();
        let mut rng = Rng::seeded(2);
        let n = 64 * 1024;
        let (mut interp, mut timed_native, mut native) = (0, 0, 0);
        for _ in 0..n {
            match r.choose(rng.next_u64()) {
                Choice::Sample(false) => interp += 1,
                Choice::Sample(true) => timed_native += 1,
                Choice::Native => native += 1,
                Choice::Interpreted => {
                    panic!("an undecided record ran a segment interpreted untimed")
                }
            }
        }
        let expect = n / UNDECIDED_INTERP_EVERY as usize;
        for timed in [interp, timed_native] {
            assert!(timed > expect * 3 / 4 && timed < expect * 5 / 4, "{timed}");
        }
        assert_eq!(interp + timed_native + native, n);
    }

    #[test]
    fn long_segments_are_probed_less_often() {
        let sampled = |gas: u64| {
            let r = NetRecord::default();
            feed(&r, 1, 5, 40);
            // The same speeds, on segments of `gas` each.
            for _ in 0..40 {
                r.record(true, gas, gas);
                r.record(false, 5 * gas, gas);
            }
            let mut rng = Rng::seeded(3);
            (0..1 << 20)
                .filter(|_| matches!(r.choose(rng.next_u64()), Choice::Sample(_)))
                .count()
        };
        let short = sampled(1000);
        let long = sampled(20 * PROBE_GAS);
        // 1 in 64, then 1 in 64 * 16 (the mean is about 10 PROBE_GAS).
        assert!(short > (1 << 20) / 128 && short < (1 << 20) / 32, "{short}");
        assert!(long * 8 < short && long > 0, "{long} vs {short}");
    }

    #[test]
    fn a_long_segment_among_short_ones_is_not_clipped() {
        // Nine short segments per call of the contract and one long one,
        // native 3.4x faster per gas on both kinds, as burntpix's calls.
        let r = NetRecord::default();
        for _ in 0..4 {
            for _ in 0..9 {
                r.record(true, 300, 300);
                r.record(false, 1020, 300);
            }
            r.record(true, 1_000_000, 1_500_000);
            r.record(false, 3_400_000, 1_500_000);
        }
        let s = r.report().speedup.unwrap();
        assert!((3.0..3.8).contains(&s), "{:?}", r.report());
        assert_eq!(r.verdict(), Verdict::Native);
    }

    #[test]
    fn one_descheduled_segment_does_not_flip_the_verdict() {
        let r = NetRecord::default();
        feed(&r, 1, 2, 20);
        assert_eq!(r.verdict(), Verdict::Native);
        r.record(true, 1_000_000_000, 100);
        assert_eq!(r.verdict(), Verdict::Native, "{:?}", r.report());
    }

    /// A segment descheduled for a time slice among an engine's first
    /// samples, before any mean can clip it: left whole it decided the
    /// verdict for the next `DECAY_AT` samples, in either direction.
    #[test]
    fn an_outlier_among_the_first_samples_is_clipped_to_their_median() {
        for outlier_native in [true, false] {
            let r = NetRecord::default();
            // The engine with the outlier is really the faster one.
            let (fast, slow) = (100, 200);
            let (native_cost, interp_cost) = match outlier_native {
                true => (fast, slow),
                false => (slow, fast),
            };
            for i in 0..20 {
                let stalled = |cost: u64, outlier: bool| match (i, outlier) {
                    (2, true) => 3_000_000_000,
                    _ => cost,
                };
                r.record(true, stalled(native_cost, outlier_native), 100);
                r.record(false, stalled(interp_cost, !outlier_native), 100);
            }
            let rep = r.report();
            let want = match outlier_native {
                true => Verdict::Native,
                false => Verdict::Interpreted,
            };
            assert_eq!(rep.verdict, want, "{rep:?}");
            // 19 samples at the cost and one clipped to 16 times it.
            let s = rep.speedup.unwrap();
            let expect = match outlier_native {
                true => 2.0 * 19.0 / (18.0 + 16.0),
                false => (18.0 + 16.0) / (2.0 * 19.0),
            };
            assert!((s - expect).abs() < 0.01, "{s} against {expect}: {rep:?}");
        }
    }

    /// A profiler's sampling interrupts (about 20 µs each in a VM) hit
    /// one frame of 1 µs in twenty: one engine can draw several of them
    /// among the 16 samples of a verdict, and the clipped means then say
    /// native loses. The running medians do not.
    #[test]
    fn frequent_interrupts_in_one_engine_do_not_set_a_faster_contract_aside() {
        let r = NetRecord::default();
        for i in 0..40u64 {
            // Native 2x faster; every fourth native sample interrupted
            // after the first four.
            let interrupted = i > 5 && i % 4 == 0;
            r.record(true, if interrupted { 15_000 } else { 1_000 }, 1_000);
            r.record(false, 2_000, 1_000);
        }
        let rep = r.report();
        assert!(
            rep.speedup.unwrap() < 0.95,
            "the means alone would set it aside: {rep:?}"
        );
        assert!(rep.median_speedup.unwrap() > 1.5, "{rep:?}");
        assert_eq!(rep.verdict, Verdict::Native, "{rep:?}");
        // A contract slower natively in every segment is still set aside.
        let r = NetRecord::default();
        feed(&r, 3, 2, 40);
        let rep = r.report();
        assert!(rep.median_speedup.unwrap() < 0.8, "{rep:?}");
        assert_eq!(rep.verdict, Verdict::Interpreted, "{rep:?}");
    }

    #[test]
    fn the_first_samples_median_ignores_one_outlier_and_scales_with_gas() {
        // A long segment among short ones at the same cost per gas: kept.
        assert_eq!(
            excess_over_median(&[(300, 300), (300, 300), (1_500_000, 1_500_000), (300, 300)]),
            0
        );
        // One segment 1000 times the others: cut to 16 times their median.
        assert_eq!(
            excess_over_median(&[(100, 10), (1_000_000, 10), (100, 10), (120, 10)]),
            1_000_000 - 16 * 110
        );
        // Segments without gas are measured against the median segment.
        assert_eq!(
            excess_over_median(&[(10, 0), (10, 0), (10, 0), (1000, 0)]),
            1000 - 160
        );
    }

    #[test]
    fn sums_decay_instead_of_overflowing() {
        let r = NetRecord::default();
        feed(&r, 1, 5, DECAY_AT as usize + 10);
        assert!(r.report().native_samples < DECAY_AT);
        assert_eq!(r.verdict(), Verdict::Native);
    }
}
