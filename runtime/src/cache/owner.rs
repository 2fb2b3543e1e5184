//! Which process a temporary directory in `tmp/` belongs to, so that those
//! of processes that died mid-way (killed during a compile) are removed at
//! the next open instead of waiting for gc's grace period. The files that
//! [`crate::compile_worker::compile_on_thread`] compiles into, beside the
//! artefact it makes, name their owner the same way.
//!
//! The owner is written into the directory's name:
//! `<kind>-<pid namespace>-<pid>-<start time>-<random>`. A pid alone is not
//! enough: pids are reused, so the owner's start time (in clock ticks since
//! boot, `/proc/<pid>/stat`) must match too; and a pid means nothing in
//! another pid namespace (a container sharing the cache), so a directory
//! from another namespace is never judged here (gc's grace applies).

use std::sync::OnceLock;

/// The tag of this process: (pid namespace inode, pid, start time).
fn this_process() -> Option<&'static (u64, u32, u64)> {
    static TAG: OnceLock<Option<(u64, u32, u64)>> = OnceLock::new();
    TAG.get_or_init(|| {
        let pid = std::process::id();
        Some((pid_namespace()?, pid, start_time(pid)?))
    })
    .as_ref()
}

/// The inode of this process's pid namespace (`/proc/self/ns/pid` reads
/// as `pid:[4026531836]`).
fn pid_namespace() -> Option<u64> {
    let link = std::fs::read_link("/proc/self/ns/pid").ok()?;
    let link = link.to_str()?;
    link.strip_prefix("pid:[")?.strip_suffix(']')?.parse().ok()
}

/// When `pid` started, in clock ticks since boot (field 22 of
/// `/proc/<pid>/stat`; the command name before it may hold spaces and
/// parentheses, so fields are counted after its last `)`).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    // `rest` starts at field 3 (the state).
    rest.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// The name prefix of a temporary of `kind` (`build`, `evict`, `compiling`)
/// owned by this process; the bare `<kind>-` when this process cannot tell
/// who it is (no procfs), leaving such directories to gc's grace period.
pub(crate) fn prefix(kind: &str) -> String {
    match this_process() {
        Some((ns, pid, start)) => format!("{kind}-{ns}-{pid}-{start}-"),
        None => format!("{kind}-"),
    }
}

fn parse(name: &str) -> Option<(u64, u32, u64)> {
    let mut parts = name.splitn(5, '-');
    let kind = parts.next()?;
    if !matches!(kind, "build" | "evict" | "compiling") {
        return None;
    }
    let ns = parts.next()?.parse().ok()?;
    let pid = parts.next()?.parse().ok()?;
    let start = parts.next()?.parse().ok()?;
    parts.next()?;
    Some((ns, pid, start))
}

/// Whether the process that owns the directory `name` is gone: `Some(true)`
/// when it was of our pid namespace and no longer exists (`kill(pid, 0)`
/// fails with `ESRCH`) or its pid now belongs to a process started at
/// another time; `Some(false)` when it is alive; `None` when that cannot be
/// told (a name without an owner, another namespace, no procfs).
pub(crate) fn owner_gone(name: &str) -> Option<bool> {
    let (ns, pid, start) = parse(name)?;
    let (my_ns, _, _) = this_process()?;
    if ns != *my_ns {
        return None;
    }
    let raw_pid = libc::pid_t::try_from(pid).ok().filter(|p| *p > 0)?;
    // SAFETY: signal 0 only checks that the process exists.
    if unsafe { libc::kill(raw_pid, 0) } != 0
        && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
    {
        return Some(true);
    }
    // Alive, or not ours to signal (EPERM): the same process only if it
    // started when the owner did. Unreadable (exited meanwhile, or hidden
    // by procfs's `hidepid`): not judged.
    start_time(pid).map(|now| now != start)
}

/// [`owner_gone`] says so for sure.
pub(crate) fn owner_is_dead(name: &str) -> bool {
    owner_gone(name) == Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_dead_pid_is_not() {
        let mine = format!("{}abc", prefix("build"));
        assert_eq!(owner_gone(&mine), Some(false), "{mine}");
        // A child that has exited and been reaped: its pid is free.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let (ns, _, start) = this_process().unwrap();
        assert!(owner_is_dead(&format!("build-{ns}-{pid}-{start}-x")));
        // Our pid with another start time: a reused pid.
        let me = std::process::id();
        assert!(owner_is_dead(&format!("evict-{ns}-{me}-{}-x", start + 1)));
        // Another namespace, or no tag: not judged.
        assert_eq!(
            owner_gone(&format!("build-{}-{pid}-{start}-x", ns + 1)),
            None
        );
        assert_eq!(owner_gone("build-Xk3j9a"), None);
    }
}
