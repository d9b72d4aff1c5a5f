//! The few raw syscalls baton needs, each behind a small safe wrapper. Everything else is std.

use std::ffi::CString;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 { Err(io::Error::last_os_error()) } else { Ok(ret) }
}

/// A signal set.
#[derive(Clone, Copy)]
pub struct SigSet(libc::sigset_t);

impl SigSet {
    fn empty() -> SigSet {
        let mut set = MaybeUninit::<libc::sigset_t>::uninit();
        unsafe { libc::sigemptyset(set.as_mut_ptr()) };
        SigSet(unsafe { set.assume_init() })
    }
}

/// Blocks every catchable signal and returns (previous mask, blocked set). Blocked signals queue up
/// until read from a signalfd: none is lost, not even before the child exists, and as PID 1 they
/// are delivered although baton installs no handler. Blocking SIGSEGV and the other fault signals
/// is safe: a real fault in baton is still delivered (and kills it); only a `kill -SEGV` from
/// outside is queued, and forwarded like any other signal.
pub fn block_signals() -> io::Result<(SigSet, SigSet)> {
    let mut blocked = SigSet::empty();
    for signal in 1..=max_signal() {
        if signal != libc::SIGKILL && signal != libc::SIGSTOP {
            unsafe { libc::sigaddset(&mut blocked.0, signal) };
        }
    }
    let mut previous = SigSet::empty();
    check(unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &blocked.0, &mut previous.0) })?;
    Ok((previous, blocked))
}

/// Restores a signal mask. Async-signal-safe: used between fork and exec.
pub fn set_mask(mask: &SigSet) -> io::Result<()> {
    check(unsafe { libc::sigprocmask(libc::SIG_SETMASK, &mask.0, std::ptr::null_mut()) }).map(drop)
}

/// The highest signal number (the last real-time signal).
pub fn max_signal() -> i32 {
    libc::SIGRTMAX()
}

/// A non-blocking signalfd for a blocked set.
pub struct SignalFd(OwnedFd);

impl SignalFd {
    pub fn new(set: &SigSet) -> io::Result<SignalFd> {
        let fd = check(unsafe { libc::signalfd(-1, &set.0, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) })?;
        Ok(SignalFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }
    /// The next pending signal's number, or None when none is pending.
    pub fn read(&self) -> io::Result<Option<i32>> {
        let mut info = MaybeUninit::<libc::signalfd_siginfo>::uninit();
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        let n = unsafe { libc::read(self.0.as_raw_fd(), info.as_mut_ptr().cast(), size) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::WouldBlock { Ok(None) } else { Err(e) };
        }
        Ok(Some(unsafe { info.assume_init() }.ssi_signo as i32))
    }
    pub fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// Makes orphaned descendants reparent to this process, so it can reap them when it is not PID 1.
pub fn set_child_subreaper() -> io::Result<()> {
    check(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) }).map(drop)
}

/// How a reaped process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    Signaled(i32),
}

impl Ended {
    /// The shell convention: the code, or 128+N for signal N.
    pub fn code(self) -> i32 {
        match self {
            Ended::Exited(c) => c,
            Ended::Signaled(s) => 128 + s,
        }
    }
}

/// Reaps every exited descendant without blocking; returns the end of `child` if it was among them.
/// baton is the only one that reaps, so no other waiter can steal the child's status.
pub fn reap(child: Option<i32>) -> Option<Ended> {
    let mut found = None;
    loop {
        let mut status = 0;
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return found;
        }
        if Some(pid) == child {
            found = Some(if libc::WIFSIGNALED(status) {
                Ended::Signaled(libc::WTERMSIG(status))
            } else {
                Ended::Exited(libc::WEXITSTATUS(status))
            });
        }
    }
}

/// Sends a signal to a process group; falls back to the process itself if the group is gone.
pub fn signal_group(pgid: i32, signal: i32) -> io::Result<()> {
    if unsafe { libc::kill(-pgid, signal) } == 0 {
        return Ok(());
    }
    check(unsafe { libc::kill(pgid, signal) }).map(drop)
}

/// Whether any process is left in process group `pgid` (zombies included).
pub fn group_exists(pgid: i32) -> bool {
    (unsafe { libc::kill(-pgid, 0) } == 0) || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Stops this process (job control: after the command's group was stopped). The kernel ignores it
/// for the init of a PID namespace, as it should: a container's PID 1 does not stop.
pub fn stop_self() {
    unsafe { libc::raise(libc::SIGSTOP) };
}

pub fn getpid() -> i32 {
    unsafe { libc::getpid() }
}

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// An inotify instance; baton only needs to know that *something* changed, then it re-checks.
///
/// One per process at most, made when the first watch is needed ([`Inotify::shared`]): instances
/// are a per-UID resource of the whole node (`fs.inotify.max_user_instances`, often 128). It is
/// never closed before the process exits: closing an instance that has watches waits for a kernel
/// grace period (10-25 ms measured here), which on the way from a command's exit to the published
/// marker would be the largest part of a step handoff.
pub struct Inotify(RawFd);

/// What a directory watch reports: entries appearing, vanishing, being renamed or changed.
pub const WATCH_DIR: u32 = libc::IN_CREATE
    | libc::IN_MOVED_TO
    | libc::IN_MOVED_FROM
    | libc::IN_DELETE
    | libc::IN_ATTRIB
    | libc::IN_CLOSE_WRITE
    | libc::IN_DELETE_SELF
    | libc::IN_MOVE_SELF
    | libc::IN_ONLYDIR;
/// Added when a file must become non-empty: a writer may keep it open.
pub const WATCH_WRITES: u32 = libc::IN_MODIFY;

static SHARED_INOTIFY: std::sync::OnceLock<Result<Inotify, i32>> = std::sync::OnceLock::new();

/// The error `Inotify::shared` gives when `BATON_INOTIFY=off`.
const INOTIFY_OFF: i32 = -1;

impl Inotify {
    /// The process's instance, made on first use; `BATON_INOTIFY=off` (for file systems that do not
    /// report changes) or a failure to make it is returned to every caller.
    pub fn shared() -> io::Result<&'static Inotify> {
        let made = SHARED_INOTIFY.get_or_init(|| {
            if std::env::var_os("BATON_INOTIFY").is_some_and(|v| v == "off") {
                return Err(INOTIFY_OFF);
            }
            let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
            if fd < 0 {
                Err(io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO))
            } else {
                Ok(Inotify(fd))
            }
        });
        match made {
            Ok(i) => Ok(i),
            Err(INOTIFY_OFF) => Err(io::Error::other("BATON_INOTIFY=off")),
            Err(errno) => Err(io::Error::from_raw_os_error(*errno)),
        }
    }

    /// The process's instance if one was made.
    pub fn existing() -> Option<&'static Inotify> {
        SHARED_INOTIFY.get().and_then(|r| r.as_ref().ok())
    }

    /// Why watching failed, naming the limit that was hit.
    pub fn explain(e: &io::Error) -> String {
        match e.raw_os_error() {
            // inotify_init1 says EMFILE for both limits: see whether this process can open anything.
            Some(libc::EMFILE) if std::fs::File::open("/dev/null").is_err() => {
                "this process has no file descriptors left (its RLIMIT_NOFILE, ulimit -n)".to_string()
            }
            Some(libc::EMFILE) => "this user has no inotify instances left (fs.inotify.max_user_instances)".to_string(),
            Some(libc::ENOSPC) => "this user has no inotify watches left (fs.inotify.max_user_watches)".to_string(),
            Some(libc::ENFILE) => "the node has no file descriptors left (fs.file-max)".to_string(),
            _ => e.to_string(),
        }
    }

    /// Adds `mask` to the watch on `dir` (other waiters of this process may watch it too).
    pub fn watch(&self, dir: &Path, mask: u32) -> io::Result<()> {
        let c = cstring(dir)?;
        check(unsafe { libc::inotify_add_watch(self.0, c.as_ptr(), mask | libc::IN_MASK_ADD) }).map(drop)
    }
    pub fn fd(&self) -> RawFd {
        self.0
    }
}

/// Writes all of `data` to `fd` (a pipe), retrying on EINTR.
pub fn write_all(fd: RawFd, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        data = &data[n as usize..];
    }
    Ok(())
}

/// Reads and discards whatever is readable on a non-blocking fd.
pub fn drain(fd: RawFd) {
    let mut buf = [0u8; 4096];
    while unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
}

/// A close-on-exec pipe: (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

pub fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    let flags = check(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    check(unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) }).map(drop)
}

/// `poll(2)` over `fds` until one is ready or `timeout` passes (None: no timeout). EINTR is retried.
pub fn poll(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> io::Result<usize> {
    let ms = match timeout {
        None => -1,
        // Round up, so a deadline is never woken for a moment too early and spun on.
        Some(t) => t.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32,
    };
    loop {
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

pub fn pollfd(fd: RawFd) -> libc::pollfd {
    libc::pollfd { fd, events: libc::POLLIN, revents: 0 }
}

/// Whether fd 0 is a terminal whose foreground process group is ours: then the child must get it.
pub fn owns_terminal() -> bool {
    unsafe { libc::isatty(0) == 1 && libc::tcgetpgrp(0) == libc::getpgrp() }
}

/// Makes the calling process's group the terminal's foreground group. Async-signal-safe.
pub fn take_terminal() {
    unsafe { libc::tcsetpgrp(0, libc::getpgrp()) };
}


/// `SIGTERM`, `SIGRTMIN+3`, or the number.
pub fn signal_name(signal: i32) -> String {
    match signal {
        1..=31 => format!("SIG{}", baton_contract::signal::short_name(signal).unwrap_or("?")),
        s if (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&s) => format!("SIGRTMIN+{}", s - libc::SIGRTMIN()),
        s => s.to_string(),
    }
}

/// Parses `TERM`, `SIGTERM`, `sigterm`, `15`, `RTMIN+2`.
pub fn parse_signal(text: &str) -> Option<i32> {
    if let Ok(n) = text.parse::<i32>() {
        return (1..=max_signal()).contains(&n).then_some(n);
    }
    let upper = text.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(n) = baton_contract::signal::by_short_name(bare) {
        return Some(n);
    }
    let alias = match bare {
        "IOT" => Some(libc::SIGABRT),
        "POLL" => Some(libc::SIGIO),
        "RTMIN" => Some(libc::SIGRTMIN()),
        "RTMAX" => Some(libc::SIGRTMAX()),
        _ => None,
    };
    if alias.is_some() {
        return alias;
    }
    let offset: i32 = bare.strip_prefix("RTMIN+")?.parse().ok()?;
    let s = libc::SIGRTMIN() + offset;
    (s <= libc::SIGRTMAX()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names_round_trip() {
        for s in 1..=max_signal() {
            assert_eq!(parse_signal(&signal_name(s)), Some(s), "{s}");
        }
        assert_eq!(parse_signal("term"), Some(libc::SIGTERM));
        assert_eq!(parse_signal("9"), Some(libc::SIGKILL));
        assert_eq!(parse_signal("SIGNOPE"), None);
        assert_eq!(parse_signal("0"), None);
    }
}
