//! Counters an embedding host can read: how many frames ran natively, why
//! the others were interpreted, what the hot compiler and the artefact
//! cache did.
//!
//! One [`Metrics`] belongs to each [`Registry`](crate::Registry) and is
//! shared by everything built on it (every [`NativeEvm`](crate::NativeEvm)
//! and [`HotCompiler`](crate::hot::HotCompiler) using that registry), so a
//! host reaches it from whichever of them it holds. All counters are
//! relaxed atomics. EVMs count frames in plain local integers and add them
//! here once per transaction, so the per-frame cost is one local increment.
//!
//! Every change is also reported through the `metrics` crate facade
//! (`evmc_*` names, listed on [`Metrics`]), which an installed recorder
//! such as a Prometheus exporter collects; with no recorder installed
//! those calls do nothing.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Why a frame ran in revm's interpreter rather than natively.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InterpretReason {
    /// No artefact for the code hash and spec, and no known reason why:
    /// not compiled (yet), or not submitted for compiling.
    NotCompiled,
    /// The compile failed; the contract is on the negative list.
    CompileFailed,
    /// An artefact was found but refused (failed validation or loading).
    Refused,
    /// The only artefact was compiled for another spec.
    SpecMismatch,
    /// The bytecode is over the compile size limit.
    TooLarge,
    /// Code too short for compiled code to pay its entries (see
    /// `evmc_compiler::analysis::too_short`).
    TooShort,
    /// The frame has no code hash to look an artefact up by (init code).
    NoCodeHash,
    /// The artefact ran slower than the interpreter: the safety net set it
    /// aside (see [`crate::safety_net`]), or this segment was one of its
    /// interpreted samples.
    SafetyNet,
}

impl InterpretReason {
    /// Every reason, in the order of [`MetricsSnapshot::interpreted`].
    pub const ALL: [InterpretReason; 8] = [
        Self::NotCompiled,
        Self::CompileFailed,
        Self::Refused,
        Self::SpecMismatch,
        Self::TooLarge,
        Self::TooShort,
        Self::NoCodeHash,
        Self::SafetyNet,
    ];

    /// Stable snake_case name, used as the `reason` label and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotCompiled => "not_compiled",
            Self::CompileFailed => "compile_failed",
            Self::Refused => "refused",
            Self::SpecMismatch => "spec_mismatch",
            Self::TooLarge => "too_large",
            Self::TooShort => "too_short",
            Self::NoCodeHash => "no_code_hash",
            Self::SafetyNet => "safety_net",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

const REASONS: usize = InterpretReason::ALL.len();
// `FrameCounts::touched` has a bit per reason.
const _: () = assert!(REASONS <= u8::BITS as usize);

/// Live counters. Facade names (all counters unless noted):
/// `evmc_frames_native_total`, `evmc_frames_interpreted_total{reason}`,
/// `evmc_compile_queue_length` (gauge), `evmc_compiles_started_total`,
/// `evmc_compiles_finished_total`, `evmc_compiles_failed_total`,
/// `evmc_compiles_cancelled_total`, `evmc_compile_seconds` (histogram),
/// `evmc_cache_hits_total`, `evmc_cache_misses_total`,
/// `evmc_cache_refusals_total`.
#[derive(Debug, Default)]
pub struct Metrics {
    frames_native: AtomicU64,
    frames_interpreted: [AtomicU64; REASONS],
    compile_queue: AtomicU64,
    compiles_started: AtomicU64,
    compiles_finished: AtomicU64,
    compiles_failed: AtomicU64,
    compiles_cancelled: AtomicU64,
    compile_nanos: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    cache_refusals: AtomicU64,
}

/// A copy of every counter at one moment (each read on its own: counters
/// moving meanwhile may be a little apart).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Frames run natively.
    pub frames_native: u64,
    /// Indexed like [`InterpretReason::ALL`]; see
    /// [`MetricsSnapshot::interpreted_for`].
    pub interpreted: [u64; REASONS],
    /// Contracts waiting for a compile thread.
    pub compile_queue: u64,
    /// Compiles started.
    pub compiles_started: u64,
    /// Compiles that produced an artefact.
    pub compiles_finished: u64,
    /// Compiles that failed.
    pub compiles_failed: u64,
    /// Queued compiles cancelled (shutdown).
    pub compiles_cancelled: u64,
    /// Wall time of all finished and failed compiles.
    pub compile_time: Duration,
    /// Hot compiler lookups served from the cache.
    pub cache_hits: u64,
    /// Hot compiler lookups that missed.
    pub cache_misses: u64,
    /// Cache entries refused.
    pub cache_refusals: u64,
}

impl MetricsSnapshot {
    /// Frames interpreted for `reason`.
    pub fn interpreted_for(&self, reason: InterpretReason) -> u64 {
        self.interpreted[reason.index()]
    }

    /// Frames interpreted for any reason.
    pub fn frames_interpreted(&self) -> u64 {
        self.interpreted.iter().sum()
    }
}

/// One EVM's frame counts since its last flush into [`Metrics`]: plain
/// integers, so counting a frame costs no atomic operation.
#[derive(Default)]
pub struct FrameCounts {
    native: u64,
    interpreted: [u64; REASONS],
    /// Bit `i` set: `interpreted[i]` may be non-zero. A flush visits only
    /// these: it runs at every transaction, and walking every reason was
    /// about a third of `NativeEvm`'s own instructions in a transaction
    /// that runs nothing compiled (callgrind).
    touched: u8,
    /// The `metrics` facade's counters, registered on first use: building
    /// a labelled key allocates, which cost more than the rest of a small
    /// transaction's bookkeeping when done at every flush.
    facade_native: Option<metrics::Counter>,
    facade_interpreted: [Option<metrics::Counter>; REASONS],
}

impl std::fmt::Debug for FrameCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameCounts")
            .field("native", &self.native)
            .field("interpreted", &self.interpreted)
            .finish()
    }
}

impl FrameCounts {
    /// Counts a frame run natively.
    #[inline]
    pub fn native(&mut self) {
        self.native += 1;
    }

    /// Counts a frame interpreted for `reason`.
    #[inline]
    pub fn interpreted(&mut self, reason: InterpretReason) {
        self.interpreted[reason.index()] += 1;
        self.touched |= 1 << reason.index();
    }

    /// Adds the counts to `metrics` and starts again from zero.
    pub fn flush(&mut self, metrics: &Metrics) {
        if self.native != 0 {
            metrics.frames_native.fetch_add(self.native, Relaxed);
            self.facade_native
                .get_or_insert_with(|| metrics::counter!("evmc_frames_native_total"))
                .increment(self.native);
            self.native = 0;
        }
        let mut touched = std::mem::take(&mut self.touched);
        while touched != 0 {
            let reason = InterpretReason::ALL[touched.trailing_zeros() as usize];
            touched &= touched - 1;
            let n = std::mem::take(&mut self.interpreted[reason.index()]);
            if n != 0 {
                metrics.frames_interpreted[reason.index()].fetch_add(n, Relaxed);
                self.facade_interpreted[reason.index()]
                    .get_or_insert_with(|| {
                        metrics::counter!("evmc_frames_interpreted_total", "reason" => reason.as_str())
                    })
                    .increment(n);
            }
        }
    }
}

impl Metrics {
    /// Every counter, now.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let mut interpreted = [0; REASONS];
        for (out, c) in interpreted.iter_mut().zip(&self.frames_interpreted) {
            *out = c.load(Relaxed);
        }
        MetricsSnapshot {
            frames_native: self.frames_native.load(Relaxed),
            interpreted,
            compile_queue: self.compile_queue.load(Relaxed),
            compiles_started: self.compiles_started.load(Relaxed),
            compiles_finished: self.compiles_finished.load(Relaxed),
            compiles_failed: self.compiles_failed.load(Relaxed),
            compiles_cancelled: self.compiles_cancelled.load(Relaxed),
            compile_time: Duration::from_nanos(self.compile_nanos.load(Relaxed)),
            cache_hits: self.cache_hits.load(Relaxed),
            cache_misses: self.cache_misses.load(Relaxed),
            cache_refusals: self.cache_refusals.load(Relaxed),
        }
    }

    /// A contract was queued for compiling.
    pub fn compile_queued(&self) {
        let n = self.compile_queue.fetch_add(1, Relaxed) + 1;
        metrics::gauge!("evmc_compile_queue_length").set(n as f64);
    }

    /// A queued contract left the queue (picked up or cancelled).
    pub fn compile_dequeued(&self) {
        let n = self.compile_queue.fetch_sub(1, Relaxed).saturating_sub(1);
        metrics::gauge!("evmc_compile_queue_length").set(n as f64);
    }

    /// A compile started.
    pub fn compile_started(&self) {
        self.compiles_started.fetch_add(1, Relaxed);
        metrics::counter!("evmc_compiles_started_total").increment(1);
    }

    /// A compile ended after `time`, with an artefact or without.
    pub fn compile_ended(&self, time: Duration, ok: bool) {
        let nanos = u64::try_from(time.as_nanos()).unwrap_or(u64::MAX);
        self.compile_nanos.fetch_add(nanos, Relaxed);
        metrics::histogram!("evmc_compile_seconds").record(time.as_secs_f64());
        if ok {
            self.compiles_finished.fetch_add(1, Relaxed);
            metrics::counter!("evmc_compiles_finished_total").increment(1);
        } else {
            self.compiles_failed.fetch_add(1, Relaxed);
            metrics::counter!("evmc_compiles_failed_total").increment(1);
        }
    }

    /// A queued or running compile was abandoned at shutdown.
    pub fn compile_cancelled(&self) {
        self.compiles_cancelled.fetch_add(1, Relaxed);
        metrics::counter!("evmc_compiles_cancelled_total").increment(1);
    }

    /// An artefact lookup found a usable artefact.
    pub fn cache_hit(&self) {
        self.cache_hits.fetch_add(1, Relaxed);
        metrics::counter!("evmc_cache_hits_total").increment(1);
    }

    /// An artefact lookup found nothing.
    pub fn cache_miss(&self) {
        self.cache_misses.fetch_add(1, Relaxed);
        metrics::counter!("evmc_cache_misses_total").increment(1);
    }

    /// An artefact lookup found an entry that was refused (corrupt, for
    /// another spec or build, failed validation).
    pub fn cache_refusal(&self) {
        self.cache_refusals.fetch_add(1, Relaxed);
        metrics::counter!("evmc_cache_refusals_total").increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flush_adds_every_reason_counted_once_and_starts_again() {
        let metrics = Metrics::default();
        let mut counts = FrameCounts::default();
        for (i, reason) in InterpretReason::ALL.into_iter().enumerate() {
            assert_eq!(reason.index(), i, "ALL is in index order");
            for _ in 0..=i {
                counts.interpreted(reason);
            }
        }
        counts.native();
        counts.native();
        counts.flush(&metrics);
        counts.interpreted(InterpretReason::TooShort);
        counts.flush(&metrics);
        // Nothing new: adds nothing.
        counts.flush(&metrics);
        let snap = metrics.snapshot();
        for (i, reason) in InterpretReason::ALL.into_iter().enumerate() {
            let again = u64::from(reason == InterpretReason::TooShort);
            assert_eq!(
                snap.interpreted_for(reason),
                i as u64 + 1 + again,
                "{reason:?}"
            );
        }
        assert_eq!(snap.frames_native, 2);
    }
}
