//! Repetition and statistics: runs of the modes being compared alternate
//! within one loop, so machine drift (frequency, other load) falls on all of
//! them alike, and the loop stops on a time budget.

use std::time::{Duration, Instant};

/// How long to measure one case.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Stop once this much time went into the timed runs (and `min_reps`
    /// rounds were made).
    pub time: Duration,
    pub min_reps: usize,
    pub max_reps: usize,
}

impl Budget {
    /// Exactly `reps` rounds.
    pub fn fixed(reps: usize) -> Self {
        Self {
            time: Duration::ZERO,
            min_reps: reps.max(1),
            max_reps: reps.max(1),
        }
    }
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            time: Duration::from_millis(1000),
            min_reps: 3,
            max_reps: 20_000,
        }
    }
}

/// Runs each of `modes` once per round, rotating which goes first, until the
/// budget is spent; returns the durations of each mode. A mode returns the
/// duration it measured itself (only the part that matters), or an error
/// that stops the loop.
pub fn alternate<const N: usize>(
    budget: &Budget,
    modes: &mut [&mut dyn FnMut() -> Result<Duration, String>; N],
) -> Result<[Vec<Duration>; N], String> {
    let mut samples: [Vec<Duration>; N] = std::array::from_fn(|_| Vec::new());
    let start = Instant::now();
    for round in 0..budget.max_reps {
        if round >= budget.min_reps && start.elapsed() >= budget.time {
            break;
        }
        for k in 0..N {
            let m = (round + k) % N;
            samples[m].push((modes[m])()?);
        }
    }
    Ok(samples)
}

pub fn median(samples: &[Duration]) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let mut s = samples.to_vec();
    s.sort_unstable();
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2
    }
}

/// Geometric mean of positive ratios; `None` for an empty list.
pub fn geomean(values: &[f64]) -> Option<f64> {
    if values.is_empty() || values.iter().any(|v| *v <= 0.0 || !v.is_finite()) {
        return None;
    }
    Some((values.iter().map(|v| v.ln()).sum::<f64>() / values.len() as f64).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_geomean() {
        let ms = Duration::from_millis;
        assert_eq!(median(&[ms(3), ms(1), ms(2)]), ms(2));
        assert_eq!(
            median(&[ms(4), ms(1), ms(2), ms(3)]),
            Duration::from_micros(2500)
        );
        assert_eq!(median(&[]), Duration::ZERO);
        assert!((geomean(&[2.0, 8.0]).unwrap() - 4.0).abs() < 1e-12);
        assert_eq!(geomean(&[]), None);
    }

    #[test]
    fn alternation_rotates_and_respects_fixed_reps() {
        let order = std::cell::RefCell::new(Vec::new());
        let mut a = || {
            order.borrow_mut().push('a');
            Ok(Duration::from_nanos(1))
        };
        let mut b = || {
            order.borrow_mut().push('b');
            Ok(Duration::from_nanos(2))
        };
        let [sa, sb] = alternate(&Budget::fixed(3), &mut [&mut a, &mut b]).unwrap();
        assert_eq!((sa.len(), sb.len()), (3, 3));
        assert_eq!(order.into_inner(), vec!['a', 'b', 'b', 'a', 'a', 'b']);
    }
}
