//! The worker processes, seen from the compiling side: each thread that
//! compiles through a worker keeps one alive between its compiles.
//!
//! Starting a worker is not free: the executable is mapped and relocated,
//! LLVM initialises its targets, and the first compile of a process pays
//! page faults on code and tables a later one finds in memory. A small
//! contract took 45-54 ms in a fresh worker against 24-30 ms in a process
//! that had started already (AMD EPYC family 26), a fixed cost that was a
//! tenth to a fifth of compiling a block folder's contracts. So a worker
//! answers requests until its stdin closes, one JSON line each, and the
//! thread that started it sends it the next one.
//!
//! The caps stay per compile. A worker past its deadline, cancelled, or
//! dead is killed with its process group and never used again; the next
//! compile starts a fresh one. `RLIMIT_AS` holds for the worker's whole
//! life, and an allocator keeps some of what one compile freed, so a
//! compile that fails in a worker that had answered before (it died, or
//! could not start its threads) runs once more in a fresh worker: whether
//! a contract compiles under the cap is decided as if every compile had
//! a process of its own. A worker also retires after [`MAX_SERVED`]
//! compiles, so that what it kept does not grow without bound, and exits
//! by itself after [`super::WORKER_IDLE_EXIT`] without a request, so that
//! an idle host holds no compiler's heap; the next compile finds it gone
//! and starts another.
//!
//! Each worker belongs to the thread that started it: Linux sends
//! `PR_SET_PDEATHSIG` when the *thread* that forked ends, so a worker
//! handed to another thread would die under it. The thread's slot kills
//! its worker when the thread ends.

use super::{
    block_sigpipe_in_this_thread, cancel_requested, memory_hint, CompileFailure, CompileLimits,
    CompiledFile, Request, Response, WorkerCommand, CANCEL_POLL, STDERR_KEEP, THREAD_START_FAILED,
};
use evmc_compiler::CompileOptions;
use std::cell::RefCell;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

/// Compiles a worker answers before it is retired.
pub(super) const MAX_SERVED: u32 = 256;

thread_local! {
    /// This thread's idle worker, if it has one.
    static IDLE: RefCell<Option<WorkerProcess>> = const { RefCell::new(None) };
}

/// What identifies a worker a thread may use again: the same command under
/// the same memory cap.
#[derive(Clone, PartialEq, Eq)]
struct WorkerKey {
    program: PathBuf,
    args: Vec<OsString>,
    max_memory: u64,
}

/// A running worker, its pipes and the threads that read them.
struct WorkerProcess {
    key: WorkerKey,
    child: Child,
    /// `None` once closed (the worker then exits).
    stdin: Option<ChildStdin>,
    /// Each line the worker writes, then `None` at the end of its stdout.
    lines: Receiver<Option<Vec<u8>>>,
    /// The start of what the worker wrote on stderr since the current
    /// request was sent (at most [`STDERR_KEEP`] bytes).
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
    /// Compiles it answered.
    served: u32,
}

/// How one request to a worker ended.
enum Exchange {
    /// Its answer line.
    Answer(Vec<u8>),
    /// It ended its stdout without answering: exited or killed.
    Died,
    /// Failed before an answer was possible; the worker is killed.
    Failed(CompileFailure),
}

impl WorkerProcess {
    fn spawn(key: WorkerKey) -> Result<Self, CompileFailure> {
        let mut cmd = Command::new(&key.program);
        cmd.args(&key.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let max_memory = key.max_memory;
        // SAFETY: only async-signal-safe calls (setpgid, prctl, setrlimit)
        // between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                // Own process group, so a kill also reaches the linker it runs.
                libc::setpgid(0, 0);
                // Die with the thread that started it (see the module
                // documentation) instead of compiling for nobody.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                // No transparent huge pages (the flag survives exec), whatever
                // the worker's allocator: the kernel zeroes all 2 MiB of a
                // huge page at its first touch. With mimalloc's (which asks
                // for them) that was a third of a small compile in a fresh
                // worker; without, the benchdata contracts compiled 9-10%
                // faster (benches/README.md, "Allocator").
                libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
                let no_core = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                libc::setrlimit(libc::RLIMIT_CORE, &no_core);
                if max_memory > 0 {
                    let cap = libc::rlimit {
                        rlim_cur: max_memory,
                        rlim_max: max_memory,
                    };
                    if libc::setrlimit(libc::RLIMIT_AS, &cap) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| spawn_failure(&key, e.to_string()))?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        let kept = Arc::new(Mutex::new(Vec::new()));
        let started = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(format!("evmc-worker-{name}"))
                .stack_size(64 << 10)
                .spawn(f)
        };
        let out_reader = started(
            "stdout",
            Box::new(move || {
                let mut stdout = BufReader::new(stdout);
                loop {
                    let mut line = Vec::new();
                    match stdout.read_until(b'\n', &mut line) {
                        Ok(n) if n > 0 && line.ends_with(b"\n") => {
                            if tx.send(Some(line)).is_err() {
                                return;
                            }
                        }
                        // The end (a last line without its newline is no
                        // whole answer).
                        _ => {
                            let _ = tx.send(None);
                            return;
                        }
                    }
                }
            }),
        );
        let theirs = Arc::clone(&kept);
        // Keeps draining whatever it does not keep: a worker blocked on a
        // full pipe would look like one that ran out of time.
        let err_reader = started(
            "stderr",
            Box::new(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = stderr.read(&mut buf) {
                    if n == 0 {
                        return;
                    }
                    let mut kept = theirs.lock().unwrap_or_else(|p| p.into_inner());
                    let room = (STDERR_KEEP as usize).saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
            }),
        );
        let mut worker = Self {
            key,
            child,
            stdin: Some(stdin),
            lines,
            stderr: kept,
            readers: Vec::new(),
            served: 0,
        };
        for reader in [out_reader, err_reader] {
            match reader {
                Ok(h) => worker.readers.push(h),
                Err(e) => {
                    let failure = spawn_failure(&worker.key, format!("reading its output: {e}"));
                    worker.kill();
                    return Err(failure);
                }
            }
        }
        Ok(worker)
    }

    /// Sends `body` (one request line) and waits for the answer until
    /// `limits.timeout` after `start`, killing the worker on timeout or
    /// cancel.
    fn exchange(&mut self, body: &[u8], limits: &CompileLimits, start: Instant) -> Exchange {
        self.stderr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        let Some(mut stdin) = self.stdin.take() else {
            return Exchange::Died;
        };
        // Written on a thread of its own, with SIGPIPE blocked: a worker
        // that died (or never reads) must neither take this thread down
        // nor hold it past the deadline. A write error shows as the
        // worker's death, below; a kill ends a blocked write.
        let (answer, stdin) = std::thread::scope(|s| {
            let writer = s.spawn(move || {
                block_sigpipe_in_this_thread();
                let _ = stdin.write_all(body).and_then(|_| stdin.flush());
                stdin
            });
            let answer = self.wait_for_line(limits, start);
            if let Ok(None) = answer {
                // It ended its stdout: let it exit (or kill it) before
                // joining the writer, which it may be leaving blocked.
                self.reap(start + limits.timeout);
            }
            (answer, writer.join().ok())
        });
        match answer {
            Ok(Some(line)) => {
                self.stdin = stdin;
                Exchange::Answer(line)
            }
            Ok(None) => Exchange::Died,
            Err(failure) => Exchange::Failed(failure),
        }
    }

    /// The next line of the worker's stdout (`None`: it ended), waited
    /// for in slices so that a cancel kills the worker promptly.
    fn wait_for_line(
        &mut self,
        limits: &CompileLimits,
        start: Instant,
    ) -> Result<Option<Vec<u8>>, CompileFailure> {
        let deadline = start + limits.timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.kill();
                return Err(CompileFailure::Timeout(limits.timeout));
            }
            if cancel_requested() {
                self.kill();
                return Err(CompileFailure::Cancelled);
            }
            match self.lines.recv_timeout(left.min(CANCEL_POLL)) {
                Ok(line) => return Ok(line),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Ok(None),
            }
        }
    }

    /// Kills the worker's process group and reaps it.
    fn kill(&mut self) {
        self.stdin = None;
        // SAFETY: plain syscall; the group id is the child's pid (setpgid
        // at spawn).
        unsafe {
            libc::kill(-(self.child.id() as libc::pid_t), libc::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for a worker that ended its stdout to exit, until
    /// `deadline`; then kills it. Its status stays with `child`.
    fn reap(&mut self, deadline: Instant) {
        use wait_timeout::ChildExt;
        self.stdin = None;
        let left = deadline.saturating_duration_since(Instant::now());
        if !matches!(self.child.wait_timeout(left), Ok(Some(_))) {
            self.kill();
        }
    }

    /// The status of a worker that ended (see [`Self::reap`]) and what it
    /// wrote on stderr, once its readers have read all of it.
    fn ended(mut self) -> (std::io::Result<ExitStatus>, String) {
        let status = self.child.wait();
        for reader in std::mem::take(&mut self.readers) {
            let _ = reader.join();
        }
        let text = {
            let stderr = self.stderr.lock().unwrap_or_else(|p| p.into_inner());
            String::from_utf8_lossy(&stderr).trim().to_string()
        };
        (status, text)
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.kill();
        }
        for reader in std::mem::take(&mut self.readers) {
            let _ = reader.join();
        }
    }
}

fn spawn_failure(key: &WorkerKey, reason: String) -> CompileFailure {
    CompileFailure::Spawn {
        program: key.program.display().to_string(),
        reason,
    }
}

/// This thread's idle worker for `key`, or a new one. A worker of another
/// key, or one that ended while idle, is dropped (killed and reaped).
fn take_worker(key: &WorkerKey) -> Result<WorkerProcess, CompileFailure> {
    let idle = IDLE.with(|slot| slot.borrow_mut().take());
    if let Some(mut w) = idle {
        if w.key == *key && matches!(w.child.try_wait(), Ok(None)) {
            return Ok(w);
        }
    }
    WorkerProcess::spawn(key.clone())
}

/// Keeps `w` as this thread's idle worker, or retires it after
/// [`MAX_SERVED`] compiles.
fn keep_worker(w: WorkerProcess) {
    if w.served < MAX_SERVED {
        IDLE.with(|slot| *slot.borrow_mut() = Some(w));
    }
}

/// Compiles in a worker of `worker` under every cap of `limits` (see the
/// module documentation).
pub(super) fn compile_in_worker(
    code: &[u8],
    opts: &CompileOptions,
    out: &Path,
    worker: &WorkerCommand,
    limits: &CompileLimits,
) -> Result<CompiledFile, CompileFailure> {
    let body = Request::new(code, opts, out).to_line();
    let key = WorkerKey {
        program: worker.program.clone(),
        args: worker.args.clone(),
        max_memory: limits.max_memory,
    };
    loop {
        let mut w = take_worker(&key)?;
        let reused = w.served > 0;
        let start = Instant::now();
        match w.exchange(&body, limits, start) {
            Exchange::Failed(failure) => return Err(failure),
            Exchange::Answer(line) => {
                let elapsed = start.elapsed();
                let Ok(response) = serde_json::from_slice::<Response>(&line) else {
                    // Not the worker this crate runs: not to be trusted
                    // with another request, nor waited for.
                    w.kill();
                    let (_, stderr) = w.ended();
                    let shown = String::from_utf8_lossy(&line[..line.len().min(200)]).into_owned();
                    return Err(CompileFailure::WorkerDied {
                        status: format!(
                            "answered with something else than a compile response: {}",
                            shown.trim()
                        ),
                        hint: String::new(),
                        stderr: stderr_suffix(stderr),
                    });
                };
                w.served += 1;
                match response {
                    Response::Err(e) if e.starts_with(THREAD_START_FAILED) => {
                        // Its address space, not the contract, may be at
                        // fault: decide in a fresh worker.
                        drop(w);
                        if reused {
                            continue;
                        }
                        return Err(CompileFailure::Compile(if key.max_memory > 0 {
                            format!("{e}{}", memory_hint(key.max_memory))
                        } else {
                            e
                        }));
                    }
                    response => {
                        keep_worker(w);
                        return match response {
                            Response::Ok(mut f) => {
                                f.compile_ms = elapsed.as_secs_f64() * 1e3;
                                Ok(f)
                            }
                            Response::TooLarge { size, limit } => {
                                Err(CompileFailure::TooLarge { size, limit })
                            }
                            Response::Err(e) => Err(CompileFailure::Compile(e)),
                        };
                    }
                }
            }
            Exchange::Died => {
                let (status, stderr) = w.ended();
                if reused {
                    continue;
                }
                return Err(died(&key, status, stderr));
            }
        }
    }
}

/// The failure of a worker that ended without a usable answer.
fn died(key: &WorkerKey, status: std::io::Result<ExitStatus>, stderr: String) -> CompileFailure {
    let status = match status {
        Ok(s) => s,
        Err(e) => return spawn_failure(key, format!("waiting for it: {e}")),
    };
    let max_memory = key.max_memory;
    let memory_hint = max_memory > 0
        && (status.signal().is_some()
            || stderr.contains("alloc")
            || stderr.contains("memory")
            || stderr.contains("failed to map"));
    CompileFailure::WorkerDied {
        status: match status.signal() {
            Some(sig) => format!("killed by signal {sig}"),
            None => format!("exited with {status} without a result"),
        },
        hint: if memory_hint {
            self::memory_hint(max_memory)
        } else {
            String::new()
        },
        stderr: stderr_suffix(stderr),
    }
}

/// What a worker wrote on stderr, as the end of a failure's message.
fn stderr_suffix(stderr: String) -> String {
    if stderr.is_empty() {
        stderr
    } else {
        format!(": {stderr}")
    }
}
