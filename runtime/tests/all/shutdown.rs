//! Dropping a hot compiler is prompt: queued compiles are cancelled,
//! running worker processes killed, and threads stuck in a compile that
//! cannot be interrupted are left behind rather than waited for.

use evmc_compiler::{SpecId, B256};
use evmc_runtime::compile_worker::cancel_requested;
use evmc_runtime::hot::{CacheBackend, CompileBackend, CompilerConfig, HotCompiler};
use evmc_runtime::{ArtifactCache, CompileLimits, LoadedArtifact, Registry, WorkerCommand};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A compile that takes `delay` and produces nothing; stops early when
/// `cooperative` and the compile is cancelled.
struct SlowBackend {
    delay: Duration,
    cooperative: bool,
    started: AtomicUsize,
}

impl CompileBackend for SlowBackend {
    fn lookup(&self, _: B256, _: SpecId) -> Option<Arc<LoadedArtifact>> {
        None
    }
    fn compile(&self, _: &[u8], _: SpecId) -> Result<Arc<LoadedArtifact>, String> {
        self.started.fetch_add(1, Ordering::Relaxed);
        let end = Instant::now() + self.delay;
        while Instant::now() < end {
            if self.cooperative && cancel_requested() {
                return Err("cancelled".into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err("slow backend compiles nothing".into())
    }
}

fn submit_many(hot: &HotCompiler, n: u8) {
    for i in 0..n {
        hot.submit(B256::repeat_byte(i + 1), &[0x60, i, 0x00]);
    }
}

fn config(workers: usize) -> CompilerConfig {
    let mut c = CompilerConfig::new(SpecId::OSAKA);
    c.workers = workers;
    // The jobs are three-byte contracts: compile them all the same.
    c.min_native_run = 0;
    c
}

fn wait_started(backend: &SlowBackend, n: usize) {
    let end = Instant::now() + Duration::from_secs(10);
    while backend.started.load(Ordering::Relaxed) < n && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(backend.started.load(Ordering::Relaxed) >= n);
}

#[test]
fn dropping_with_a_queue_of_slow_compiles_takes_under_a_second() {
    for cooperative in [false, true] {
        let backend = Arc::new(SlowBackend {
            delay: Duration::from_secs(5),
            cooperative,
            started: AtomicUsize::new(0),
        });
        let registry = Registry::new();
        let hot = HotCompiler::new(config(2), backend.clone(), registry.clone());
        submit_many(&hot, 8);
        wait_started(&backend, 2);
        let m = registry.metrics().snapshot();
        assert_eq!(m.compiles_started, 2);
        assert_eq!(m.compile_queue, 6, "{m:?}");
        assert_eq!(m.cache_misses, 8);

        let start = Instant::now();
        drop(hot);
        let took = start.elapsed();
        assert!(took < Duration::from_secs(1), "drop took {took:?}");
        // Nothing queued was started after the drop.
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(backend.started.load(Ordering::Relaxed), 2);
        if cooperative {
            // The backend saw the cancel: both threads ended, the queue
            // was drained as cancelled.
            let m = registry.metrics().snapshot();
            assert_eq!(m.compiles_cancelled, 8, "{m:?}");
            assert_eq!(m.compile_queue, 0);
            assert_eq!(m.compiles_failed, 0, "a cancel is no failure");
        }
    }
}

/// A compile worker that never answers: `sleep`, standing in for LLVM on
/// a huge contract.
#[test]
fn dropping_kills_running_worker_processes() {
    let dir = tempfile::tempdir().unwrap();
    let limits = CompileLimits {
        timeout: Duration::from_secs(60),
        ..CompileLimits::default()
    };
    let cache = ArtifactCache::open(dir.path())
        .unwrap()
        .with_worker(WorkerCommand::new("sleep", ["60"]), limits);
    let backend = Arc::new(CacheBackend::new(cache, 0));
    let registry = Registry::new();
    let hot = HotCompiler::new(config(2), backend, registry.clone());
    submit_many(&hot, 4);
    let end = Instant::now() + Duration::from_secs(10);
    // A compile counts as started just before its worker process is
    // spawned: wait for the processes themselves.
    let mut children = sleep_children();
    while (registry.metrics().snapshot().compiles_started < 2 || children.len() < 2)
        && Instant::now() < end
    {
        std::thread::sleep(Duration::from_millis(5));
        children = sleep_children();
    }
    assert_eq!(children.len(), 2, "two workers running: {children:?}");

    let start = Instant::now();
    drop(hot);
    let took = start.elapsed();
    assert!(took < Duration::from_secs(1), "drop took {took:?}");
    for pid in children {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "worker {pid} still alive"
        );
    }
    let m = registry.metrics().snapshot();
    assert_eq!(m.compiles_cancelled, 4, "{m:?}");
    assert_eq!(m.compiles_failed, 0);
}

/// Pids of this process's children running `sleep 60`.
fn sleep_children() -> Vec<u32> {
    let me = std::process::id();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`
        let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) else {
            continue;
        };
        let ppid = rest.split(' ').nth(1).and_then(|p| p.parse::<u32>().ok());
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if ppid == Some(me) && cmdline.starts_with(b"sleep\0") {
            pids.push(pid);
        }
    }
    pids
}
