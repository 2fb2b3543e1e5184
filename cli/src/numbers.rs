//! Parsers for the numeric flags, shared by every subcommand so that a flag
//! accepts the same range wherever it appears. A value out of range is a
//! usage error: clap names the flag and the range and exits with status 2,
//! before anything runs (and before anything could panic on the value).

use clap::builder::RangedU64ValueParser;

/// Most transactions of a sequencer run (and most per block): about 17
/// times the default run, a few GB of generated transactions.
pub(crate) const MAX_TXS: u64 = 10_000_000;

/// Most sending accounts per sequencer generator.
pub(crate) const MAX_ACCOUNTS: u64 = 1_000_000;

/// Most timed repetitions per benchmark case.
pub(crate) const MAX_REPS: u64 = 1_000_000;

/// Upper bound of thread counts.
pub(crate) const MAX_THREADS: u64 = 1024;

/// Upper bound of durations given in seconds: one week. Far above any
/// useful limit, and far below what `Duration` can hold.
pub(crate) const MAX_SECONDS: f64 = 7.0 * 24.0 * 3600.0;

/// `-O`: LLVM's optimisation levels 0 to 3.
pub(crate) fn opt_level() -> RangedU64ValueParser<u8> {
    RangedU64ValueParser::<u8>::new().range(0..=3)
}

/// A count from 1 to `max` (one of the `MAX_` bounds): zero would silently
/// mean "nothing" or be taken as 1; the bound keeps what is sized by it in
/// memory.
pub(crate) fn count(max: u64) -> RangedU64ValueParser<usize> {
    RangedU64ValueParser::<usize>::new().range(1..=max)
}

/// A number of threads, at least 1.
pub(crate) fn threads() -> RangedU64ValueParser<usize> {
    RangedU64ValueParser::<usize>::new().range(1..=MAX_THREADS)
}

/// A size in bytes that must be at least 1 (a code-size limit of 0 would
/// leave everything interpreted).
pub(crate) fn positive_size() -> RangedU64ValueParser<usize> {
    RangedU64ValueParser::<usize>::new().range(1..)
}

/// A positive whole number of milliseconds, at most [`MAX_SECONDS`].
pub(crate) fn milliseconds() -> RangedU64ValueParser<u64> {
    RangedU64ValueParser::<u64>::new().range(1..=(MAX_SECONDS as u64) * 1000)
}

/// A positive number of seconds (fractions allowed), at most
/// [`MAX_SECONDS`]: `Duration::from_secs_f64` accepts whatever this returns.
pub(crate) fn seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !(v.is_finite() && v > 0.0 && v <= MAX_SECONDS) {
        return Err(format!(
            "must be a number of seconds above 0 and at most {MAX_SECONDS} (one week), not `{s}`"
        ));
    }
    Ok(v)
}

/// `--filter`: every command's filter is a regular expression, checked
/// when the command line is parsed.
pub(crate) fn regex(s: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(s).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::seconds;
    use std::time::Duration;

    #[test]
    fn seconds_are_finite_positive_and_bounded() {
        assert_eq!(seconds("0.3"), Ok(0.3));
        assert_eq!(seconds("60"), Ok(60.0));
        for bad in ["inf", "-inf", "NaN", "1e30", "1e300", "0", "-1", "", "x"] {
            assert!(seconds(bad).is_err(), "{bad}");
        }
        // Whatever passes converts without a panic.
        let _ = Duration::from_secs_f64(seconds("604800").unwrap());
    }
}
