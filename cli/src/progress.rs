//! Progress bars of long jobs, on stderr. indicatif draws only when stderr
//! is a terminal, so piped or captured runs get none; `-q` hides them too.

use indicatif::{ProgressBar, ProgressStyle};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

static QUIET: AtomicBool = AtomicBool::new(false);

/// Hides every bar from now on (`-q`).
pub(crate) fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// A bar over `len` steps labelled `what`; hidden when `hidden` (e.g. JSON
/// output was asked for) or `-q` was given.
pub(crate) fn bar(len: usize, what: &str, hidden: bool) -> ProgressBar {
    if hidden || QUIET.load(Ordering::Relaxed) {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len as u64);
    pb.set_style(
        ProgressStyle::with_template(
            "{msg:>10} [{bar:40}] {pos}/{len} {elapsed_precise} eta {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

/// A spinner for a step of unknown length, labelled `what`.
pub(crate) fn spinner(what: &str, hidden: bool) -> ProgressBar {
    if hidden || QUIET.load(Ordering::Relaxed) {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new_spinner();
    pb.set_style(
        ProgressStyle::with_template("{spinner} {msg} {elapsed_precise}").expect("valid template"),
    );
    pb.set_message(what.to_string());
    pb.enable_steady_tick(Duration::from_millis(200));
    pb
}
