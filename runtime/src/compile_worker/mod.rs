//! Compiling with resource caps: a size limit on the bytecode, and a time
//! and memory cap enforced by compiling in a separate worker process that is
//! killed at the deadline and runs under `RLIMIT_AS`. LLVM cannot be
//! interrupted or bounded from inside a process, and its failure modes on
//! pathological input (abort on allocation failure, deep recursion) would
//! take the host down with it.
//!
//! The worker is any program that runs [`worker_main`] (the CLI's hidden
//! `__compile-worker` subcommand). It reads one JSON [`Request`] per line
//! on stdin, writes each shared object to the requested path and answers
//! each request with one JSON [`Response`] line on stdout, until its stdin
//! ends. A compiling thread keeps its worker for the next compile
//! (`compile_worker/process.rs`).
//!
//! Without the `compiler` feature only the types remain (the cache's
//! errors and results name them); nothing is compiled.

#[cfg(feature = "compiler")]
mod process;

#[cfg(feature = "compiler")]
use evmc_compiler::{compile_to_file, parse_spec, CompileError, CompileOptions, TargetSpec};
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
#[cfg(feature = "compiler")]
use std::io::{BufRead, Write};
#[cfg(feature = "compiler")]
use std::path::Path;
use std::path::PathBuf;
use std::time::Duration;
#[cfg(feature = "compiler")]
use std::time::Instant;

/// How to start a compile worker: `program args…`.
#[derive(Clone, Debug)]
pub struct WorkerCommand {
    /// The executable.
    pub program: PathBuf,
    /// Its arguments (before any the cache adds).
    pub args: Vec<OsString>,
}

impl WorkerCommand {
    /// `program` run with `args`.
    pub fn new(
        program: impl Into<PathBuf>,
        args: impl IntoIterator<Item = impl Into<OsString>>,
    ) -> Self {
        Self {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
        }
    }
}

/// Caps on one compile. Time and memory apply only to compiles run in a
/// worker process; the size limit applies everywhere.
#[derive(Clone, Debug)]
pub struct CompileLimits {
    /// Larger bytecode is not compiled (it stays interpreted).
    pub max_code_size: usize,
    /// Wall time after which the worker is killed.
    pub timeout: Duration,
    /// Address-space cap of the worker in bytes (`RLIMIT_AS`); 0 = none.
    pub max_memory: u64,
}

/// Default [`CompileLimits::timeout`].
pub const DEFAULT_COMPILE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default [`CompileLimits::max_memory`]: LLVM maps itself and reserves
/// thread stacks, so address space runs well above resident memory.
pub const DEFAULT_MAX_MEMORY: u64 = 4 << 30;

impl Default for CompileLimits {
    fn default() -> Self {
        Self {
            max_code_size: evmc_compiler::DEFAULT_MAX_CODE_SIZE,
            timeout: DEFAULT_COMPILE_TIMEOUT,
            max_memory: DEFAULT_MAX_MEMORY,
        }
    }
}

/// Why a compile (in process or in a worker) produced no artifact.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CompileFailure {
    /// The bytecode is above the size limit: stays interpreted, by design.
    #[error("bytecode is {size} bytes, above the compile limit of {limit} bytes")]
    TooLarge {
        /// Bytecode length in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The compiler failed.
    #[error("{0}")]
    Compile(String),
    /// The worker ran past its deadline and was killed.
    #[error("compile did not finish within {0:?}; worker killed")]
    Timeout(Duration),
    /// An in-process compile ran past its deadline (see
    /// [`compile_on_thread`]): left to finish on its thread, unused.
    #[error("compile did not finish within {0:?}; left to finish on its thread, unused")]
    TimeoutInProcess(Duration),
    /// The worker ended without an answer (killed, crashed, out of
    /// memory), or answered something that is no compile response.
    #[error("compile worker {status}{hint}{stderr}")]
    WorkerDied {
        /// Its exit status, or what it answered.
        status: String,
        /// A likely cause, when one is known.
        hint: String,
        /// What it wrote on stderr for this compile (the first
        /// `STDERR_KEEP` bytes).
        stderr: String,
    },
    /// The worker could not be started.
    #[error("cannot run compile worker `{program}`: {reason}")]
    Spawn {
        /// The worker's executable.
        program: String,
        /// Why.
        reason: String,
    },
    /// The thread's cancel flag was set (see [`with_cancel_flag`]); the
    /// worker was killed.
    #[error("compile cancelled; worker killed")]
    Cancelled,
}

impl CompileFailure {
    /// Whether the contract itself is at fault (retrying will not help),
    /// as opposed to the environment (cannot start the worker, disk full).
    pub fn is_permanent(&self) -> bool {
        !matches!(
            self,
            CompileFailure::Spawn { .. } | CompileFailure::Cancelled
        )
    }
}

thread_local! {
    static CANCEL: std::cell::RefCell<Option<std::sync::Arc<std::sync::atomic::AtomicBool>>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `f` with `flag` as this thread's cancel flag: a worker-process
/// compile running inside `f` when the flag is set is killed within
/// [`CANCEL_POLL`] and fails with [`CompileFailure::Cancelled`]. This
/// reaches compiles started deep inside other layers (the artefact cache)
/// without threading a token through their signatures.
pub fn with_cancel_flag<R>(
    flag: &std::sync::Arc<std::sync::atomic::AtomicBool>,
    f: impl FnOnce() -> R,
) -> R {
    let previous = CANCEL.with(|c| c.replace(Some(flag.clone())));
    struct Restore(Option<std::sync::Arc<std::sync::atomic::AtomicBool>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            CANCEL.with(|c| *c.borrow_mut() = self.0.take());
        }
    }
    let _restore = Restore(previous);
    f()
}

/// Whether this thread's cancel flag (see [`with_cancel_flag`]) is set;
/// long-running compile backends may poll it.
pub fn cancel_requested() -> bool {
    CANCEL.with(|c| {
        c.borrow()
            .as_ref()
            .is_some_and(|f| f.load(std::sync::atomic::Ordering::Relaxed))
    })
}

/// How often a waiting compile checks its cancel flag.
pub const CANCEL_POLL: Duration = Duration::from_millis(20);

/// What a successful compile produced.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CompiledFile {
    /// Artifact size in bytes.
    pub size: u64,
    /// Wall time of the compile, in milliseconds.
    pub compile_ms: f64,
    /// Optimisation level used (the opt budget may lower it).
    pub effective_opt_level: u8,
    /// Size of the generated code, in LLVM instructions.
    pub ir_instructions: usize,
}

/// Blocks SIGPIPE in the calling thread. Writing to the pipe of a worker
/// that already died raises SIGPIPE, which kills a host that restored its
/// default action (the CLI does, for its own stdout); blocked, the write
/// fails with EPIPE instead, and the pending signal, directed at this
/// thread, is discarded when the thread ends.
fn block_sigpipe_in_this_thread() {
    // SAFETY: plain signal-mask calls on a local set, for this thread only.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// A compile request, sent to a worker on its stdin as JSON.
#[derive(Serialize, Deserialize)]
pub struct Request {
    /// The bytecode, hex.
    pub code_hex: String,
    /// The spec's name.
    pub spec: String,
    /// Optimisation level.
    pub opt_level: u8,
    /// [`evmc_compiler::CompileOptions::opt_budget`].
    pub opt_budget: usize,
    /// Compile threads.
    pub threads: usize,
    /// Options that change the artefact's bytes travel with the request:
    /// the worker builds exactly what the caller's cache key names.
    pub max_shards: usize,
    /// [`evmc_compiler::CompileOptions::part_insts`].
    pub part_insts: usize,
    /// Larger bytecode is refused.
    pub max_code_size: usize,
    /// LLVM target triple.
    pub target_triple: String,
    /// LLVM CPU name.
    pub target_cpu: String,
    /// LLVM feature string.
    pub target_features: String,
    /// [`evmc_compiler::CompileOptions::ran`]: the pcs a profile saw run,
    /// when only those blocks are compiled.
    #[serde(default)]
    pub ran: Option<Vec<u32>>,
    /// Where to write the `.so`.
    pub out: PathBuf,
}

#[cfg(feature = "compiler")]
impl Request {
    /// The request to compile `code` with `opts` into `out`: every option
    /// that changes the artefact's bytes, so that the worker builds what
    /// the caller's cache key names.
    pub fn new(code: &[u8], opts: &CompileOptions, out: &Path) -> Self {
        Self {
            code_hex: hex::encode(code),
            spec: evmc_compiler::spec_name(opts.spec).to_string(),
            opt_level: opts.opt_level,
            opt_budget: opts.opt_budget,
            threads: opts.threads,
            max_shards: opts.max_shards,
            part_insts: opts.part_insts,
            max_code_size: opts.max_code_size,
            target_triple: opts.target.triple.clone(),
            target_cpu: opts.target.cpu.clone(),
            target_features: opts.target.features.clone(),
            ran: opts.ran.as_ref().map(|r| r.pcs().to_vec()),
            out: out.to_path_buf(),
        }
    }

    /// The request as the worker reads it: one JSON line.
    pub fn to_line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).expect("request serialises");
        line.push(b'\n');
        line
    }
}

/// A worker's answer, on its stdout as JSON.
#[derive(Serialize, Deserialize)]
pub enum Response {
    /// Compiled.
    Ok(CompiledFile),
    /// The bytecode is above the size limit: stays interpreted, by design.
    TooLarge {
        /// Bytecode length in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Failed, with the compiler's message.
    Err(String),
}

#[cfg(feature = "compiler")]
/// Compiles `code` into the shared object `out`, in `worker` when given
/// (with every cap of `limits`), else in this process.
pub fn compile_to_path(
    code: &[u8],
    opts: &CompileOptions,
    out: &Path,
    worker: Option<&WorkerCommand>,
    limits: &CompileLimits,
) -> Result<CompiledFile, CompileFailure> {
    let limit = limits.max_code_size.min(opts.max_code_size);
    if code.len() > limit {
        return Err(CompileFailure::TooLarge {
            size: code.len(),
            limit,
        });
    }
    let mut opts = opts.clone();
    opts.max_code_size = limit;
    match worker {
        None => match compile_here(code, &opts, out, limits.timeout)? {
            Response::Ok(f) => Ok(f),
            Response::TooLarge { size, limit } => Err(CompileFailure::TooLarge { size, limit }),
            Response::Err(e) => Err(CompileFailure::Compile(e)),
        },
        Some(w) => process::compile_in_worker(code, &opts, out, w, limits),
    }
}

#[cfg(feature = "compiler")]
/// [`compile_to_file`] on a thread of its own (with a stack deep enough for
/// LLVM), waited for at most `timeout`: the per-contract cap of the
/// commands that compile in their own process (`run`, `statetest`,
/// `bench`, a cache without a worker), which a worker gets by being killed.
/// LLVM cannot be stopped midway, so a compile past its time is left to
/// finish on its thread, and the contract stays interpreted.
///
/// The thread writes a file of its own next to `out`, which this function
/// moves to `out` only when the result came in time: a compile given up
/// on never touches `out`, not even after the caller has compiled it again
/// or moved on (it removes its own file when it finds itself given up; one
/// left by a process that ended first is removed by the next compile of
/// the same `out`).
/// The outer error is the thread's (not started, panicked, out of time, its
/// file not movable), the inner one the compiler's.
pub fn compile_on_thread(
    code: &[u8],
    opts: &CompileOptions,
    out: &Path,
    timeout: Duration,
) -> Result<Result<evmc_compiler::Artifact, CompileError>, CompileFailure> {
    use std::sync::{Arc, Condvar, Mutex};
    /// What the waiter and the thread agree on, under one lock: the result
    /// once there, or that nobody waits for it any more.
    enum Handoff {
        Waiting,
        Done(Result<evmc_compiler::Artifact, CompileError>),
        Panicked,
        GivenUp,
    }
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    remove_abandoned(out, &name);
    let own = out.with_file_name(format!(
        ".{name}.{}{}",
        crate::cache::owner::prefix("compiling"),
        SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let shared = Arc::new((Mutex::new(Handoff::Waiting), Condvar::new()));
    let theirs = Arc::clone(&shared);
    let (code, opts, file) = (code.to_vec(), opts.clone(), own.clone());
    std::thread::Builder::new()
        .name("evmc-compile".into())
        .stack_size(evmc_compiler::LLVM_THREAD_STACK)
        .spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                compile_to_file(&code, &opts, &file)
            }));
            let (lock, cv) = &*theirs;
            let mut h = lock.lock().unwrap_or_else(|p| p.into_inner());
            match *h {
                Handoff::GivenUp => {
                    let _ = std::fs::remove_file(&file);
                }
                _ => {
                    *h = match r {
                        Ok(r) => Handoff::Done(r),
                        Err(_) => Handoff::Panicked,
                    };
                    cv.notify_one();
                }
            }
        })
        .map_err(|e| CompileFailure::Compile(format!("{THREAD_START_FAILED}: {e}")))?;
    let (lock, cv) = &*shared;
    let h = lock.lock().unwrap_or_else(|p| p.into_inner());
    let (mut h, _) = cv
        .wait_timeout_while(h, timeout, |h| matches!(h, Handoff::Waiting))
        .unwrap_or_else(|p| p.into_inner());
    match std::mem::replace(&mut *h, Handoff::GivenUp) {
        Handoff::Waiting | Handoff::GivenUp => Err(CompileFailure::TimeoutInProcess(timeout)),
        Handoff::Panicked => Err(CompileFailure::Compile("the compiler panicked".into())),
        Handoff::Done(Err(e)) => Ok(Err(e)),
        Handoff::Done(Ok(a)) => match std::fs::rename(&own, out) {
            Ok(()) => Ok(Ok(a)),
            Err(e) => {
                let _ = std::fs::remove_file(&own);
                Err(CompileFailure::Compile(format!(
                    "cannot move the compiled artefact to {}: {e}",
                    out.display()
                )))
            }
        },
    }
}

#[cfg(feature = "compiler")]
/// Removes the files [`compile_on_thread`] left beside `out` (named
/// `name`) in processes that have exited since: a compile given up on
/// removes its own file when it finishes, but not when its process ends
/// first. Only files whose owner is gone for sure are removed (see
/// [`crate::cache::owner`]); those of live processes, or of another pid
/// namespace, stay.
fn remove_abandoned(out: &Path, name: &str) {
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let head = format!(".{name}.");
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(owner) = file.to_str().and_then(|f| f.strip_prefix(head.as_str())) else {
            continue;
        };
        if owner.starts_with("compiling-") && crate::cache::owner::owner_is_dead(owner) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(feature = "compiler")]
/// [`compile_on_thread`], its result as a worker answers: the thread's own
/// failures (not started, panicked, out of time) are the error.
fn compile_here(
    code: &[u8],
    opts: &CompileOptions,
    out: &Path,
    timeout: Duration,
) -> Result<Response, CompileFailure> {
    let start = Instant::now();
    Ok(match compile_on_thread(code, opts, out, timeout)? {
        Ok(a) => Response::Ok(CompiledFile {
            size: a.size,
            compile_ms: start.elapsed().as_secs_f64() * 1e3,
            effective_opt_level: a.timings.opt_level,
            ir_instructions: a.timings.ir_instructions,
        }),
        Err(CompileError::TooLarge { size, limit }) => Response::TooLarge { size, limit },
        Err(e) => Response::Err(e.to_string()),
    })
}

#[cfg(feature = "compiler")]
const THREAD_START_FAILED: &str = "cannot start the compile thread";

#[cfg(feature = "compiler")]
/// Longest stderr kept from a failed worker.
const STDERR_KEEP: u64 = 16 * 1024;

#[cfg(feature = "compiler")]
fn memory_hint(max_memory: u64) -> String {
    format!(" (the memory cap of {max_memory} bytes may have been reached)")
}

#[cfg(feature = "compiler")]
/// Entry point of a compile worker process: one response line on stdout
/// for each request line on stdin, until stdin ends. Returns the process
/// exit code: 0 at the end of stdin or after [`WORKER_IDLE_EXIT`] without
/// a request, 2 on a line that is no request (the worker then ends, as no
/// answer could be trusted to match).
pub fn worker_main() -> i32 {
    // Read through a buffer of its own, whose emptiness it can see before
    // waiting on the descriptor (std's stdin hides its buffer).
    // SAFETY: fd 0 is this process's stdin, open for its whole life; the
    // `File` is never dropped, so the descriptor is never closed here.
    let raw = std::mem::ManuallyDrop::new(unsafe {
        <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(0)
    });
    let mut stdin = std::io::BufReader::new(&*raw);
    let mut line = Vec::new();
    loop {
        line.clear();
        if stdin.buffer().is_empty() && !request_within(WORKER_IDLE_EXIT) {
            return 0;
        }
        match stdin.read_until(b'\n', &mut line) {
            Ok(0) => return 0,
            Ok(_) => {}
            Err(e) => {
                eprintln!("compile worker: reading a request: {e}");
                return 2;
            }
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let request: Request = match serde_json::from_slice(&line) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("compile worker: not a compile request: {e}");
                return 2;
            }
        };
        let response = match decode_request(&request) {
            // The parent kills a worker past its time: no deadline here.
            Ok((code, opts)) => compile_here(&code, &opts, &request.out, Duration::MAX)
                .unwrap_or_else(|f| Response::Err(f.to_string())),
            Err(e) => Response::Err(e),
        };
        let mut body = serde_json::to_vec(&response).expect("response serialises");
        body.push(b'\n');
        let mut out = std::io::stdout().lock();
        if out.write_all(&body).and_then(|_| out.flush()).is_err() {
            return 2;
        }
    }
}

/// How long a worker waits for its next request before it exits: an idle
/// worker holds what its compiles left in its heap (100-145 MB resident
/// while a block folder's contracts compiled), which a node whose hot
/// contracts are all compiled should not keep. Its thread starts a fresh
/// one at the next compile; one that exits just as a request arrives
/// counts as dead, and the compile goes to a fresh worker.
#[cfg(feature = "compiler")]
pub const WORKER_IDLE_EXIT: Duration = Duration::from_secs(10);

/// Whether stdin becomes readable (a request, or its end) within `wait`.
#[cfg(feature = "compiler")]
fn request_within(wait: Duration) -> bool {
    let mut fd = libc::pollfd {
        fd: 0,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = wait.as_millis().min(i32::MAX as u128) as i32;
    loop {
        // SAFETY: one valid pollfd, for the duration of the call.
        match unsafe { libc::poll(&mut fd, 1, ms) } {
            0 => return false,
            // Interrupted: wait again (a little longer in all, harmless).
            -1 if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted => {}
            // Readable, hung up, or an error the read will report.
            _ => return true,
        }
    }
}

#[cfg(feature = "compiler")]
fn decode_request(r: &Request) -> Result<(Vec<u8>, CompileOptions), String> {
    let code = hex::decode(&r.code_hex).map_err(|e| format!("bad bytecode hex: {e}"))?;
    let spec = parse_spec(&r.spec).ok_or_else(|| format!("unknown spec `{}`", r.spec))?;
    let target = TargetSpec {
        triple: r.target_triple.clone(),
        cpu: r.target_cpu.clone(),
        features: r.target_features.clone(),
    };
    let mut opts = CompileOptions::for_target(spec, target);
    opts.opt_level = r.opt_level;
    opts.opt_budget = r.opt_budget;
    opts.threads = r.threads;
    opts.max_shards = r.max_shards;
    opts.part_insts = r.part_insts;
    opts.max_code_size = r.max_code_size;
    opts.ran = r
        .ran
        .as_ref()
        .map(|pcs| std::sync::Arc::new(evmc_compiler::RanPcs::new(pcs.iter().copied())));
    Ok((code, opts))
}
