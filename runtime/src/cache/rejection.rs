//! Refused entries: what was refused, why, and where it went; kept for the
//! caller ([`RejectionLog`]) and announced as `tracing` warnings, so that
//! no refusal goes unreported whoever looked the entry up.

use serde::Serialize;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// An entry that was refused and, if the cache could be written, moved out
/// of the way.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// The refused entry (a directory, or a store object's URL).
    pub entry: PathBuf,
    /// Why it was refused.
    pub reason: String,
    /// Where it went (`quarantine/…`), or `None` if it was left in place
    /// (the cache is read-only, or the problem is the cache directory
    /// itself): it is then refused again on the next lookup.
    pub moved_to: Option<PathBuf>,
}

impl Rejection {
    /// Emits the refusal as a `tracing` warning.
    pub(super) fn trace(&self) {
        match &self.moved_to {
            Some(to) => tracing::warn!(
                entry = %self.entry.display(),
                reason = %self.reason,
                moved_to = %to.display(),
                "cache entry refused and moved to quarantine"
            ),
            None => tracing::warn!(
                entry = %self.entry.display(),
                reason = %self.reason,
                "cache entry refused and left in place"
            ),
        }
    }
}

/// The refusals of one cache not yet taken by its user. Cloning shares the
/// list: a caller that hands the cache to something else (a compile
/// backend, say) keeps a handle to collect what it refuses.
#[derive(Clone, Debug, Default)]
pub struct RejectionLog(Arc<Mutex<Vec<Rejection>>>);

impl RejectionLog {
    /// The refusals since the last call, oldest first.
    pub fn take(&self) -> Vec<Rejection> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub(super) fn push(&self, r: Rejection) {
        r.trace();
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(r);
    }
}
