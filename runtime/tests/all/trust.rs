//! The cache's trust model: an entry that anyone but this process's user
//! (or root) could change is refused, with the reason, instead of being
//! loaded (from a private copy, as it once was); and every refusal is also
//! a `tracing` warning.

use crate::support::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn an_artifact_or_entry_others_can_write_is_refused_and_moved_aside() {
    let (_d, cache) = cache_with_contract();
    chmod(&entry_dir(&cache).join("artifact.so"), 0o664);
    let v = cache.verify().unwrap();
    assert_eq!((v.checked, v.ok, v.rejected.len()), (1, 0, 1), "{v:?}");
    assert!(v.rejected[0].reason.contains("writable by group or others"));

    let (_d, cache) = cache_with_contract();
    chmod(&entry_dir(&cache).join("artifact.so"), 0o664);
    assert_refused(&cache, "writable by group or others");
    // Recompiled as it should be, it is a hit again.
    cache.get_or_compile(&contract(), &opts()).unwrap();
    assert!(run_through_cache(&cache) > 0);

    let (_d, cache) = cache_with_contract();
    chmod(&entry_dir(&cache), 0o707);
    assert_refused(&cache, "writable by group or others");
}

#[test]
fn a_cache_directory_others_can_write_refuses_its_entries_in_place_once() {
    let (_d, cache) = cache_with_contract();
    let entries = cache.dir().join("entries");
    for (dir, mode) in [(cache.dir(), 0o775), (entries.as_path(), 0o757)] {
        chmod(dir, mode);
        assert_eq!(run_through_cache(&cache), 0, "ran with {mode:o}");
        assert_eq!(run_through_cache(&cache), 0);
        let r = cache.take_rejections();
        assert_eq!(r.len(), 1, "reported once: {r:?}");
        assert!(
            r[0].reason.contains("writable by group or others")
                && r[0].reason.contains(&*dir.to_string_lossy()),
            "{}",
            r[0].reason
        );
        // Not the entry's fault: left where it is.
        assert!(r[0].moved_to.is_none());
        assert!(entry_dir(&cache).join("artifact.so").exists());
        chmod(dir, 0o755);
    }
    // Writable by all but sticky (as /tmp): others cannot replace what is
    // ours in it.
    chmod(cache.dir(), 0o1777);
    assert!(run_through_cache(&cache) > 0);
    assert!(cache.take_rejections().is_empty());
}

#[test]
fn an_entry_owned_by_another_user_is_refused() {
    if !is_root() {
        // Giving a file away takes root.
        return;
    }
    let (_d, cache) = cache_with_contract();
    std::os::unix::fs::chown(entry_dir(&cache).join("artifact.so"), Some(NOBODY), None).unwrap();
    assert_refused(&cache, &format!("owned by uid {NOBODY}"));
}

/// Counts the WARN events of the runtime.
struct Warnings(Arc<AtomicUsize>);

impl tracing::Subscriber for Warnings {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, e: &tracing::Event<'_>) {
        let m = e.metadata();
        if *m.level() == tracing::Level::WARN && m.target().starts_with("evmc_runtime") {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn every_refusal_is_a_tracing_warning_too() {
    let (_d, cache) = cache_with_contract();
    let so = entry_dir(&cache).join("artifact.so");
    let mut bytes = std::fs::read(&so).unwrap();
    bytes[100] ^= 0xff;
    overwrite(&so, &bytes);
    let count = Arc::new(AtomicUsize::new(0));
    tracing::subscriber::with_default(Warnings(count.clone()), || {
        assert!(cache.get(code_hash(), SPEC, OPT).unwrap().is_none());
    });
    assert_eq!(count.load(Ordering::Relaxed), 1);
    assert_eq!(cache.take_rejections().len(), 1);
}
