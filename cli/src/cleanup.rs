//! No temporary files left behind when a run is interrupted.
//!
//! Every temporary file of a run (the artefacts `statetest`, `bench` and
//! `run` compile, the sequencer's in-process compiles, the private copies
//! the loader maps, the linker's own files in the compile workers) is made
//! under the system's temporary directory. [`install`] gives the process a
//! private one instead, `$TMPDIR/evmc-native-<pid>-XXXXXX`, by pointing
//! `TMPDIR` at it for this process and the processes it starts, and removes
//! it as a whole: when the command returns, and on SIGINT, SIGTERM or
//! SIGHUP, after which the process exits with 128 + the signal's number
//! (130 for SIGINT, 143 for SIGTERM), as a shell reports a process killed
//! by it.
//!
//! The signal handler only writes the signal's number to a pipe (all it
//! may safely do); a thread reading the pipe removes the directory and
//! ends the process. A second signal of the same kind, during that
//! cleanup, ends the process at once (the handler restores the default
//! action). Only SIGKILL, or a crash, can still leave the directory.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::OnceLock;

/// The signals after which temporary files are removed.
const SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// Attempts at removing the directory while other threads may still be
/// writing into it.
const REMOVE_ATTEMPTS: usize = 50;

/// The write end of the pipe the handler writes to; -1 before [`install`].
static PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);

/// The private temporary directory, once made.
static PRIVATE_DIR: OnceLock<PathBuf> = OnceLock::new();

/// Removes the private temporary directory when dropped (the command
/// returned, or unwound from a panic).
pub(crate) struct TempRoot {
    dir: PathBuf,
}

impl Drop for TempRoot {
    fn drop(&mut self) {
        remove(&self.dir);
    }
}

/// Makes the process's private temporary directory, points `TMPDIR` at it
/// and removes it on SIGINT, SIGTERM and SIGHUP. Must be called while the
/// process has only one thread (`TMPDIR` is changed). Without a usable
/// temporary directory it changes nothing and returns `None`: the
/// temporary files are then made, and left, where they always were.
pub(crate) fn install() -> Option<TempRoot> {
    let dir = tempfile::Builder::new()
        .prefix(&format!("evmc-native-{}-", std::process::id()))
        .tempdir()
        .ok()?
        .keep();
    if start_signal_thread().is_err() {
        let _ = std::fs::remove_dir(&dir);
        return None;
    }
    let _ = PRIVATE_DIR.set(dir.clone());
    // Single-threaded here (see above): nothing reads the environment
    // while it changes. Child processes inherit it.
    std::env::set_var("TMPDIR", &dir);
    Some(TempRoot { dir })
}

/// The pipe, the thread reading it, and the handlers writing to it.
fn start_signal_thread() -> std::io::Result<()> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: descriptors just made, owned by nobody else.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    std::thread::Builder::new()
        .name("cleanup-on-signal".into())
        .spawn(move || wait_for_signal(read))?;
    // The write end lives as long as the process: handlers may run at any time.
    PIPE_WRITE.store(write.as_raw_fd(), Ordering::Release);
    std::mem::forget(write);
    for sig in SIGNALS {
        // SAFETY: a zeroed sigaction is valid; the handler only calls
        // async-signal-safe functions.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(sig, &action, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

/// The handler: passes the signal on to the cleanup thread, and lets the
/// next one of its kind take its default action.
extern "C" fn on_signal(sig: libc::c_int) {
    // SAFETY: write, signal and errno access are async-signal-safe.
    unsafe {
        let errno = *libc::__errno_location();
        let fd = PIPE_WRITE.load(Ordering::Acquire);
        let byte = sig as u8;
        libc::write(fd, (&byte as *const u8).cast(), 1);
        libc::signal(sig, libc::SIG_DFL);
        *libc::__errno_location() = errno;
    }
}

fn wait_for_signal(read: OwnedFd) {
    let mut byte = 0u8;
    loop {
        // SAFETY: reads one byte into `byte`.
        let n = unsafe { libc::read(read.as_raw_fd(), (&mut byte as *mut u8).cast(), 1) };
        if n == 1 {
            break;
        }
        if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        return;
    }
    if let Some(dir) = PRIVATE_DIR.get() {
        remove(dir);
    }
    // `_exit`, not `exit`: other threads may be inside LLVM, whose global
    // destructors `exit` would run under them.
    // SAFETY: ends the process; nothing after it runs.
    unsafe { libc::_exit(128 + libc::c_int::from(byte)) }
}

/// Removes `dir` and everything in it, again while other threads are still
/// adding files to it (a compile finishing meanwhile).
fn remove(dir: &std::path::Path) {
    for _ in 0..REMOVE_ATTEMPTS {
        match std::fs::remove_dir_all(dir) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(_) => std::thread::yield_now(),
        }
    }
}
