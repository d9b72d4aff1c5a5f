//! The system calls baton needs beyond std, through nix's safe APIs. Raw `unsafe` is left only where
//! nix has no safe form, each with the reason beside it: sending and reaping with real-time
//! signals (nix's `Signal` enum has none of them, and a command killed by SIGRTMIN+3 must still
//! report 128+N), and the fork/exec path (src/spawn.rs).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags};
use nix::sys::resource::{getrusage, UsageWho};
use nix::sys::signal::{pthread_sigmask, raise, sigprocmask, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd as NixSignalFd};
use nix::unistd::{self, Pid};

pub use nix::sys::signal::SigSet;

fn io_err(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// Blocks every catchable signal and returns the previous mask. Blocked signals queue up
/// until read from a signalfd: none is lost, not even before the child exists, and as PID 1 they
/// are delivered although baton installs no handler. Blocking SIGSEGV and the other fault signals
/// is safe: a real fault in baton is still delivered (and kills it); only a `kill -SEGV` from
/// outside is queued, and forwarded like any other signal. (The kernel ignores SIGKILL and SIGSTOP
/// in a mask; the C library keeps its own signals 32-34 out of a full set: they are blocked apart.)
pub fn block_signals() -> io::Result<SigSet> {
    let mut previous = SigSet::empty();
    pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::all()), Some(&mut previous)).map_err(io_err)?;
    block_libc_reserved()?;
    Ok(previous)
}

/// Signals 32, 33 and 34: musl keeps all three out of a full set (glibc 32 and 33) for its own use,
/// so `SigSet::all()` leaves them unblocked, and one sent from outside (`kill -RTMIN` is 34 for a
/// glibc program) would kill baton without a record. baton calls nothing that needs them (no
/// thread cancellation, no set*id across threads), so it blocks them too and reads them from its
/// signalfd like any other signal: a bit mask for the kernel, since the C library's sigset_t
/// functions refuse these numbers. musl's own mask changes (posix_spawn restoring the mask) unblock
/// them again: the spawn blocks them once more at once, which leaves a window of a few system calls.
const LIBC_RESERVED_SIGNALS: u64 = (1 << (32 - 1)) | (1 << (33 - 1)) | (1 << (34 - 1));
/// The kernel's signal mask size in bytes (64 signals).
const KERNEL_SIGSET_SIZE: usize = 8;

pub fn block_libc_reserved() -> io::Result<()> {
    let mask = LIBC_RESERVED_SIGNALS;
    // SAFETY: rt_sigprocmask reads KERNEL_SIGSET_SIZE bytes from a live u64 and writes nothing (the
    // old-mask pointer is null). nix has no form for signals its SigSet cannot hold.
    let rc = unsafe {
        libc::syscall(libc::SYS_rt_sigprocmask, libc::SIG_BLOCK, &mask as *const u64, std::ptr::null_mut::<u64>(), KERNEL_SIGSET_SIZE)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Restores a signal mask. Async-signal-safe (one sigprocmask): used between fork and exec.
pub fn set_mask(mask: &SigSet) -> io::Result<()> {
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(mask), None).map_err(io_err)
}

/// The highest signal number (the last real-time signal).
pub fn max_signal() -> i32 {
    libc::SIGRTMAX()
}

/// A non-blocking signalfd for a blocked set.
pub struct SignalFd(NixSignalFd);

impl SignalFd {
    /// A signalfd for every signal baton blocks ([`block_signals`]): the full set, and the C
    /// library's reserved 32-34, which no SigSet can hold (SIGKILL and SIGSTOP the kernel leaves out).
    pub fn all_signals() -> io::Result<SignalFd> {
        let flags = SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC;
        let fd = NixSignalFd::with_flags(&SigSet::all(), flags).map_err(io_err)?;
        let mask = u64::MAX;
        // SAFETY: signalfd4 on our own signalfd replaces its mask; it reads KERNEL_SIGSET_SIZE bytes
        // from a live u64. nix has no form for signals its SigSet cannot hold.
        let rc = unsafe {
            libc::syscall(libc::SYS_signalfd4, fd.as_fd().as_raw_fd(), &mask as *const u64, KERNEL_SIGSET_SIZE, flags.bits())
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(SignalFd(fd))
    }
    /// The next pending signal's number, or None when none is pending.
    pub fn read(&self) -> io::Result<Option<i32>> {
        match self.0.read_signal() {
            Ok(info) => Ok(info.map(|i| i.ssi_signo as i32)),
            Err(e) => Err(io_err(e)),
        }
    }
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// Makes orphaned descendants reparent to this process, so it can reap them when it is not PID 1.
pub fn set_child_subreaper() -> io::Result<()> {
    nix::sys::prctl::set_child_subreaper(true).map_err(io_err)
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
        // SAFETY: waitpid writes one int through a valid pointer. Not nix's waitpid: it turns a death
        // by a real-time signal into an error, after the status has been taken from the kernel.
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

/// What the reaped descendants used: CPU times and the largest resident set among them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub user_ms: u64,
    pub system_ms: u64,
    pub max_rss_kib: u64,
}

impl From<Usage> for baton_contract::record::Usage {
    fn from(u: Usage) -> Self {
        baton_contract::record::Usage { user_cpu_ms: u.user_ms, system_cpu_ms: u.system_ms, max_rss_kib: u.max_rss_kib }
    }
}

/// `getrusage(RUSAGE_CHILDREN)`: every descendant baton has reaped (the command, and what it left
/// that was reparented to baton), waited-for grandchildren included.
pub fn children_usage() -> Usage {
    let Ok(u) = getrusage(UsageWho::RUSAGE_CHILDREN) else { return Usage::default() };
    let ms = |t: nix::sys::time::TimeVal| (t.tv_sec() as u64) * 1000 + (t.tv_usec() as u64) / 1000;
    Usage { user_ms: ms(u.user_time()), system_ms: ms(u.system_time()), max_rss_kib: u.max_rss().max(0) as u64 }
}

/// `kill(2)` with a signal number, real-time ones included.
pub fn kill(pid: i32, signal: i32) -> io::Result<()> {
    // SAFETY: kill only reads its two integers. nix's kill takes its `Signal` enum, which has no
    // real-time signals, and baton forwards those too.
    if unsafe { libc::kill(pid, signal) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sends a signal to a process group; falls back to the process itself if the group is gone.
pub fn signal_group(pgid: i32, signal: i32) -> io::Result<()> {
    kill(-pgid, signal).or_else(|_| kill(pgid, signal))
}

/// Whether any process is left in process group `pgid` (zombies included).
pub fn group_exists(pgid: i32) -> bool {
    match nix::sys::signal::killpg(Pid::from_raw(pgid), None) {
        Ok(()) | Err(Errno::EPERM) => true,
        Err(_) => false,
    }
}

/// Stops this process (job control: after the command's group was stopped). The kernel ignores it
/// for the init of a PID namespace, as it should: a container's PID 1 does not stop.
pub fn stop_self() {
    let _ = raise(Signal::SIGSTOP);
}

pub fn getpid() -> i32 {
    unistd::getpid().as_raw()
}

/// An inotify instance; baton only needs to know that *something* changed, then it re-checks.
///
/// Instances are a per-UID resource of the whole node (`fs.inotify.max_user_instances`, often
/// 128), so a waiter makes one only when something needs watching and closes it as soon as nothing
/// does ([`Inotify::close`]): a wait on running predecessors holds none. Closing an instance that
/// has watches waits for a kernel grace period (10-25 ms measured here), which would be the largest
/// part of a step handoff if it sat between a command's exit and the next one's start: a close is
/// left to a thread of its own, and an instance still open when its waiter is done is left to the
/// process's exit ([`Inotify::keep`]).
pub struct Inotify(nix::sys::inotify::Inotify);

/// What a directory watch reports: entries appearing, vanishing, being renamed or changed.
pub const WATCH_DIR: AddWatchFlags = AddWatchFlags::IN_CREATE
    .union(AddWatchFlags::IN_MOVED_TO)
    .union(AddWatchFlags::IN_MOVED_FROM)
    .union(AddWatchFlags::IN_DELETE)
    .union(AddWatchFlags::IN_ATTRIB)
    .union(AddWatchFlags::IN_CLOSE_WRITE)
    .union(AddWatchFlags::IN_DELETE_SELF)
    .union(AddWatchFlags::IN_MOVE_SELF)
    .union(AddWatchFlags::IN_ONLYDIR);
/// What a watch on a step's folder (or on `steps/`, until the folder is made) needs: a folder, a lock
/// (linked in) or a record (renamed in) appearing. Writers make their temporary files elsewhere, and
/// removals do not matter, so a waiter is woken for the record itself and nothing on its way.
pub const WATCH_STEP: AddWatchFlags = AddWatchFlags::IN_CREATE
    .union(AddWatchFlags::IN_MOVED_TO)
    .union(AddWatchFlags::IN_DELETE_SELF)
    .union(AddWatchFlags::IN_MOVE_SELF)
    .union(AddWatchFlags::IN_ONLYDIR);
/// Added when a file must become non-empty: a writer may keep it open.
pub const WATCH_WRITES: AddWatchFlags = AddWatchFlags::IN_MODIFY;

impl Inotify {
    /// A new instance; `BATON_INOTIFY=off` (for file systems that do not report changes) refuses.
    pub fn new() -> io::Result<Inotify> {
        if std::env::var_os("BATON_INOTIFY").is_some_and(|v| v == "off") {
            return Err(io::Error::other("BATON_INOTIFY=off"));
        }
        nix::sys::inotify::Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).map(Inotify).map_err(io_err)
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

    /// Adds `mask` to the watch on `dir` (an earlier watch of the same folder keeps its events).
    pub fn watch(&self, dir: &Path, mask: AddWatchFlags) -> io::Result<()> {
        // nix names no IN_MASK_ADD: the kernel's bit, kept as it is.
        self.0.add_watch(dir, mask | AddWatchFlags::from_bits_retain(libc::IN_MASK_ADD)).map(drop).map_err(io_err)
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }

    /// Closes the instance without waiting for it: the kernel's grace period is paid by a thread of
    /// its own, so a predecessor that ends meanwhile is not kept waiting (quick steps end within it).
    pub fn close(self) {
        // If no thread can be had, the closure is dropped unrun and the instance stays open until
        // the process exits, rather than being closed here.
        let instance = std::mem::ManuallyDrop::new(self.0);
        let closer = std::thread::Builder::new().name("inotify-close".into()).stack_size(16 * 1024);
        let _ = closer.spawn(move || drop(std::mem::ManuallyDrop::into_inner(instance)));
    }

    /// Leaves the instance open until the process exits, so that no grace period is paid on the way
    /// from here to the next step.
    pub fn keep(self) {
        std::mem::forget(self.0);
    }
}

/// Writes all of `data` to `fd`, retrying on EINTR and waiting (up to a second at a time) while a
/// non-blocking reader is full. Gives up on any other error.
pub fn write_all(fd: BorrowedFd, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => {
                let mut p = [PollFd::new(fd, PollFlags::POLLOUT)];
                let _ = nix::poll::poll(&mut p, PollTimeout::from(1000u16));
            }
            Err(e) => return Err(io_err(e)),
        }
    }
    Ok(())
}

/// Reads what is readable now into `buf`: Some(0) at end of file, None when nothing is there.
pub fn read_now(fd: BorrowedFd, buf: &mut [u8]) -> io::Result<Option<usize>> {
    loop {
        match unistd::read(fd, buf) {
            Ok(n) => return Ok(Some(n)),
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => return Ok(None),
            Err(e) => return Err(io_err(e)),
        }
    }
}

/// Reads and discards whatever is readable on a non-blocking fd.
pub fn drain(fd: BorrowedFd) {
    let mut buf = [0u8; 4096];
    while matches!(read_now(fd, &mut buf), Ok(Some(n)) if n > 0) {}
}

/// A close-on-exec pipe: (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    unistd::pipe2(OFlag::O_CLOEXEC).map_err(io_err)
}

pub fn set_nonblocking(fd: BorrowedFd) -> io::Result<()> {
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL).map_err(io_err)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).map(drop).map_err(io_err)
}

/// `poll(2)` for input on `fds` until one is ready or `timeout` passes (None: no timeout); EINTR is
/// retried. Returns which of them are ready (or hung up).
pub fn poll(fds: &[BorrowedFd], timeout: Option<Duration>) -> io::Result<Vec<bool>> {
    // Round up, so a deadline is never woken for a moment too early and spun on.
    let timeout = match timeout {
        None => PollTimeout::NONE,
        Some(t) => PollTimeout::try_from(t.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32)
            .unwrap_or(PollTimeout::MAX),
    };
    let mut polled: Vec<PollFd> = fds.iter().map(|fd| PollFd::new(*fd, PollFlags::POLLIN)).collect();
    loop {
        match nix::poll::poll(&mut polled, timeout) {
            Ok(_) => return Ok(polled.iter().map(|p| p.revents().is_some_and(|r| !r.is_empty())).collect()),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(io_err(e)),
        }
    }
}

/// Whether stdin is a terminal whose foreground process group is ours: then the child must get it.
pub fn owns_terminal() -> bool {
    let stdin = std::io::stdin();
    unistd::isatty(stdin.as_fd()).unwrap_or(false) && unistd::tcgetpgrp(stdin.as_fd()) == Ok(unistd::getpgrp())
}

/// Makes the calling process's group the terminal's foreground group. Async-signal-safe.
pub fn take_terminal(stdin: BorrowedFd) {
    let _ = unistd::tcsetpgrp(stdin, unistd::getpgrp());
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
