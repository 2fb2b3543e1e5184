//! This machine's target as LLVM names it, recorded in the cache so that a
//! runtime built without LLVM can name the entries compiled here for it.
//!
//! A process that can ask LLVM (the `compiler` feature) records the host
//! target under the machine's [`fingerprint`](crate::loader::host::fingerprint)
//! (vendor, family/model/stepping and `cpuid` features) when it opens the
//! cache; a process without LLVM reads it back. A recorded target is only
//! a name to look entries up by: every artefact is still checked against
//! the CPU's own features when it is loaded.
//!
//! ```text
//! <root>/hosts/<fingerprint>.json   {"triple", "cpu", "features"}
//! ```

use super::store::Layout;
use crate::loader::{host, read_regular_file};
use evmc_compiler::TargetSpec;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A profile is a few hundred bytes to a few KiB.
const MAX_PROFILE_SIZE: u64 = 64 * 1024;

#[derive(Serialize, Deserialize, PartialEq, Eq)]
struct Profile {
    triple: String,
    cpu: String,
    features: String,
}

fn path(layout: &Layout) -> PathBuf {
    layout
        .root
        .join("hosts")
        .join(format!("{}.json", host::fingerprint()))
}

/// The target recorded for this machine, if any and if it is one this CPU
/// runs.
// Processes that can ask LLVM never need it.
#[cfg_attr(feature = "compiler", allow(dead_code))]
pub(super) fn recorded(layout: &Layout) -> Option<TargetSpec> {
    let bytes = read_regular_file(&path(layout), MAX_PROFILE_SIZE).ok()?;
    let p: Profile = serde_json::from_slice(&bytes).ok()?;
    let target = TargetSpec {
        triple: p.triple,
        cpu: p.cpu,
        features: p.features,
    };
    let runs = host::runs_triple(&target.triple)
        && target
            .required_features()
            .split(',')
            .filter(|f| !f.is_empty())
            .all(|f| {
                f.strip_prefix('+')
                    .is_some_and(|f| host::features().contains(f))
            });
    runs.then_some(target)
}

/// Records `target` as this machine's, unless it is already. Best effort:
/// a read-only cache still serves hits to processes that can ask LLVM.
#[cfg(feature = "compiler")]
pub(super) fn record(layout: &Layout, target: &TargetSpec) {
    use std::io::Write;
    let profile = Profile {
        triple: target.triple.clone(),
        cpu: target.cpu.clone(),
        features: target.features.clone(),
    };
    let path = path(layout);
    if let Ok(bytes) = read_regular_file(&path, MAX_PROFILE_SIZE) {
        if serde_json::from_slice::<Profile>(&bytes).ok().as_ref() == Some(&profile) {
            return;
        }
    }
    let Some(dir) = path.parent() else {
        return;
    };
    let _ = std::fs::create_dir_all(dir);
    let Ok(mut tmp) = tempfile::NamedTempFile::new_in(&layout.tmp) else {
        return;
    };
    let body = serde_json::to_vec_pretty(&profile).expect("profile serialises");
    if tmp.write_all(&body).is_ok() {
        // Written whole, then renamed: readers see the old or the new one.
        let _ = tmp.persist(&path);
    }
}

#[cfg(all(test, feature = "compiler"))]
mod tests {
    use super::*;

    #[test]
    fn the_recorded_host_target_is_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path());
        layout.create().unwrap();
        assert!(recorded(&layout).is_none());
        let host = evmc_compiler::host_target();
        record(&layout, &host);
        assert_eq!(recorded(&layout), Some(host.clone()));
        // A target needing a feature this CPU lacks is not this machine's.
        let mut foreign = host;
        foreign.features.push_str(",+no-such-feature");
        record(&layout, &foreign);
        assert_eq!(recorded(&layout), None);
    }
}
