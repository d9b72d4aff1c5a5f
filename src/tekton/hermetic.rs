//! `TEKTON_HERMETIC=1`: the step's command runs without network, as Tekton's entrypoint runs it
//! (tektoncd/pipeline v1.15: cmd/entrypoint/runner.go, namespaces_linux.go `dropNetworking`): in
//! new user, mount, PID and network namespaces, with every user and group id mapped to itself
//! (`0 0 4294967295`, setgroups allowed). Not when `TEKTON_RESOURCE_NAME` is set.
//!
//! Tekton's Go starts the command with `clone(CLONE_NEWUSER|CLONE_NEWNS|CLONE_NEWPID|CLONE_NEWNET)`
//! and writes the maps from the parent, so the command is PID 1 of its PID namespace. baton does the
//! same from inside the child that `spawn` forks (a hook before exec, signals still blocked):
//! that child F clones the command's process G into the new namespaces, writes G's maps (only a
//! process outside the new user namespace may map every id), lets G go on to exec, then stays as
//! G's parent in the step's process group, with every signal blocked, and ends the way G ends.
//! G brings up `lo` (Tekton leaves it down: a hermetic build can still use localhost here) and
//! execs the command as PID 1 of the new PID namespace, which sees only `lo`.
//!
//! When the kernel or the pod's security context forbids any of it, F or G reports what failed
//! through a pipe and the step fails with a sentence naming TEKTON_HERMETIC and what to change.
//!
//! Between fork and exec only async-signal-safe calls are made: no allocation, no locks.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::signal::{kill, raise, sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
use nix::sys::stat::Mode;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{pipe2, read, write, Pid};

/// What failed, as reported through the pipe: one byte, then the errno (4 bytes, native order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Stage {
    Clone = 1,
    UidMap = 2,
    GidMap = 3,
    Loopback = 4,
    Setup = 5,
}

impl Stage {
    fn from_byte(b: u8) -> Stage {
        match b {
            1 => Stage::Clone,
            2 => Stage::UidMap,
            3 => Stage::GidMap,
            4 => Stage::Loopback,
            _ => Stage::Setup,
        }
    }
}

/// Every id mapped to itself, as Tekton maps them (the largest range an int holds).
const IDENTITY_MAP: &[u8] = b"0 0 4294967295";

/// Whether the step runs hermetically: `TEKTON_HERMETIC=1` and no `TEKTON_RESOURCE_NAME` in the
/// environment the command gets (after the step results are substituted into it, as in Tekton).
pub fn requested(env: &[(std::ffi::OsString, std::ffi::OsString)]) -> bool {
    let get = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_os_str());
    get("TEKTON_HERMETIC").is_some_and(|v| v == "1") && get("TEKTON_RESOURCE_NAME").is_none_or(|v| v.is_empty())
}

/// The report pipe of one hermetic spawn.
pub struct Hermetic {
    report_read: OwnedFd,
    report_write: OwnedFd,
}

impl Hermetic {
    pub fn new() -> io::Result<Hermetic> {
        let (report_read, report_write) = pipe2(OFlag::O_CLOEXEC)?;
        Ok(Hermetic { report_read, report_write })
    }

    /// The hook to run in the forked child before exec (see the module's description). It returns
    /// only in the command's process, the new namespaces' PID 1; the other process never returns.
    pub fn hook(&self) -> impl Fn() -> io::Result<()> + Send + Sync + 'static {
        let report = self.report_write.as_raw_fd();
        move || isolate(report)
    }

    /// After the spawn: what failed, as one sentence, or None when the namespaces were made.
    pub fn failure(self) -> Option<String> {
        drop(self.report_write);
        let mut buf = [0u8; 5];
        let mut got = 0;
        while got < buf.len() {
            match read(self.report_read.as_fd(), &mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(Errno::EINTR) => {}
                Err(_) => break,
            }
        }
        (got == buf.len()).then(|| {
            let errno = i32::from_ne_bytes([buf[1], buf[2], buf[3], buf[4]]);
            sentence(Stage::from_byte(buf[0]), Errno::from_raw(errno))
        })
    }
}

/// One sentence for the step's log: what failed and what to change.
pub fn sentence(stage: Stage, errno: Errno) -> String {
    let head = "TEKTON_HERMETIC=1 runs the step's command without network, in new user, mount, PID and network \
                namespaces";
    let what = match stage {
        Stage::Clone => "the kernel refused to create them",
        Stage::UidMap => {
            "the user ids cannot all be mapped to themselves in the new user namespace, as Tekton maps them"
        }
        Stage::GidMap => {
            "the group ids cannot all be mapped to themselves in the new user namespace, as Tekton maps them"
        }
        Stage::Loopback => "the loopback interface cannot be brought up in the new network namespace",
        Stage::Setup => "the namespaces cannot be set up",
    };
    let fix = match (stage, errno) {
        (Stage::Clone, Errno::EPERM | Errno::EACCES) => {
            "the pod's security context or the node forbids user namespaces: allow them (a seccomp profile that \
             permits clone with CLONE_NEWUSER, e.g. seccompProfile type Unconfined; an AppArmor profile that allows \
             userns; on the node kernel.unprivileged_userns_clone=1), or run this Task without hermetic execution"
        }
        (Stage::Clone, Errno::ENOSPC | Errno::EUSERS) => {
            "the node's limit on namespaces is 0 or reached (sysctl user.max_user_namespaces and the other \
             user.max_*_namespaces): raise it, or run this Task without hermetic execution"
        }
        (Stage::Clone, Errno::EINVAL) => {
            "the node's kernel has no user or PID namespaces (CONFIG_USER_NS, CONFIG_PID_NS): run this Task without \
             hermetic execution"
        }
        (Stage::UidMap | Stage::GidMap, _) => {
            "the step must run as root (UID 0, with CAP_SETUID and CAP_SETGID) in the node's own user namespace, not \
             in a pod with hostUsers: false or a rootless runtime; or run this Task without hermetic execution"
        }
        _ => "run this Task without hermetic execution, or on a node that allows user namespaces",
    };
    format!("{head}, and {what} ({}: {}); {fix}", errno_name(stage), errno.desc())
}

fn errno_name(stage: Stage) -> &'static str {
    match stage {
        Stage::Clone => "clone",
        Stage::UidMap => "uid_map",
        Stage::GidMap => "gid_map",
        Stage::Loopback => "SIOCSIFFLAGS lo",
        Stage::Setup => "setup",
    }
}

/// In the forked child F (signals blocked): clone G into the namespaces, map its ids, release it.
/// G returns Ok and goes on to exec; F waits for G and ends as G ends. On failure the stage and
/// errno go to `report`, and Err makes `spawn` fail.
fn isolate(report: RawFd) -> io::Result<()> {
    // SAFETY: the report pipe's write end is open for the whole spawn (Hermetic owns it).
    let report = unsafe { BorrowedFd::borrow_raw(report) };
    let fail = |stage: Stage, e: Errno| -> io::Result<()> {
        let mut msg = [0u8; 5];
        msg[0] = stage as u8;
        msg[1..].copy_from_slice(&(e as i32).to_ne_bytes());
        let _ = write(report, &msg);
        Err(io::Error::from_raw_os_error(e as i32))
    };
    let (go_read, go_write) = match pipe2(OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => return fail(Stage::Setup, e),
    };
    let flags = libc::CLONE_NEWUSER | libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWNET;
    // SAFETY: clone without CLONE_VM and without a new stack behaves as fork: the child continues
    // here on a copy of this single-threaded process. nix's clone needs a separate stack and a
    // callback, from which the child could not return into std's exec path; hence the raw call.
    let pid = unsafe {
        libc::syscall(libc::SYS_clone, (flags | libc::SIGCHLD) as libc::c_ulong, 0usize, 0usize, 0usize, 0usize)
    };
    if pid < 0 {
        return fail(Stage::Clone, Errno::last());
    }
    if pid == 0 {
        // G: PID 1 of the new PID namespace. Wait until F has written the maps.
        drop(go_write);
        let mut byte = [0u8; 1];
        loop {
            match read(go_read.as_fd(), &mut byte) {
                Ok(1) => break,
                Err(Errno::EINTR) => {}
                // F failed and said so.
                _ => exit(1),
            }
        }
        drop(go_read);
        if let Err(e) = loopback_up() {
            return fail(Stage::Loopback, e);
        }
        return Ok(());
    }
    // F.
    drop(go_read);
    let child = Pid::from_raw(pid as i32);
    for (stage, file) in [(Stage::UidMap, &b"uid_map"[..]), (Stage::GidMap, &b"gid_map"[..])] {
        if let Err(e) = write_map(child, file) {
            let _ = kill(child, Signal::SIGKILL);
            let _ = waitpid(child, None);
            return fail(stage, e);
        }
    }
    let _ = write(go_write.as_fd(), &[1]);
    drop(go_write);
    // Close every descriptor but the standard ones: spawn's own error pipe (its end of file tells
    // the parent that G has exec'd), the report pipe, and the parent's files.
    close_from(3);
    let status = loop {
        match waitpid(child, None) {
            Err(Errno::EINTR) => continue,
            Ok(s) => break s,
            Err(_) => exit(1),
        }
    };
    match status {
        WaitStatus::Exited(_, code) => exit(code),
        WaitStatus::Signaled(_, signal, _) => die_of(signal),
        _ => exit(1),
    }
}

/// `/proc/<pid>/{uid_map,gid_map}` ← `0 0 4294967295`, the path built without allocating.
fn write_map(pid: Pid, file: &[u8]) -> Result<(), Errno> {
    let mut path = [0u8; 64];
    let mut n = 0;
    let mut put = |bytes: &[u8]| {
        path[n..n + bytes.len()].copy_from_slice(bytes);
        n += bytes.len();
    };
    put(b"/proc/");
    let mut digits = [0u8; 12];
    let mut d = digits.len();
    let mut v = pid.as_raw() as u32;
    loop {
        d -= 1;
        digits[d] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    put(&digits[d..]);
    put(b"/");
    put(file);
    let fd = open(&path[..n], OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty())?;
    match write(fd.as_fd(), IDENTITY_MAP)? {
        n if n == IDENTITY_MAP.len() => Ok(()),
        _ => Err(Errno::EIO),
    }
}

/// `ip link set lo up` in the new network namespace.
fn loopback_up() -> Result<(), Errno> {
    let sock = socket(AddressFamily::Inet, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)?;
    // SAFETY: ifreq is plain data, zeroed; the name is "lo" with its NUL. nix has no safe call to
    // read or set an interface's flags, hence the two ioctls.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    req.ifr_name[0] = b'l' as libc::c_char;
    req.ifr_name[1] = b'o' as libc::c_char;
    Errno::result(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut req) })?;
    unsafe { req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short };
    Errno::result(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS as _, &req) })?;
    Ok(())
}

/// Closes every descriptor from `first` on (close_range(2), else one by one up to the limit).
fn close_from(first: RawFd) {
    // SAFETY: after fork, in a process that only waits and exits: nothing uses these descriptors.
    // nix has no close_range.
    if unsafe { libc::syscall(libc::SYS_close_range, first as libc::c_uint, libc::c_uint::MAX, 0) } == 0 {
        return;
    }
    let limit =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| soft);
    for fd in first..(limit.min(1 << 20) as RawFd) {
        // SAFETY: as above.
        unsafe { libc::close(fd) };
    }
}

/// Ends this process as G ended: killed by the same signal (F's signals are all blocked until now).
fn die_of(signal: Signal) -> ! {
    let mut set = SigSet::empty();
    set.add(signal);
    // SAFETY: SIG_DFL installs no handler; this process only dies here.
    let _ = unsafe { nix::sys::signal::signal(signal, nix::sys::signal::SigHandler::SigDfl) };
    let _ = sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None);
    let _ = raise(signal);
    exit(128 + signal as i32)
}

fn exit(code: i32) -> ! {
    // SAFETY: _exit is async-signal-safe and runs no destructors or atexit handlers (nix has none).
    unsafe { libc::_exit(code) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    #[test]
    fn requested_as_runner_go_decides() {
        let env = |pairs: &[(&str, &str)]| -> Vec<(OsString, OsString)> {
            pairs.iter().map(|(k, v)| (OsString::from(k), OsString::from(v))).collect()
        };
        assert!(requested(&env(&[("TEKTON_HERMETIC", "1")])));
        assert!(requested(&env(&[("TEKTON_HERMETIC", "1"), ("TEKTON_RESOURCE_NAME", "")])));
        assert!(!requested(&env(&[("TEKTON_HERMETIC", "1"), ("TEKTON_RESOURCE_NAME", "git")])));
        assert!(!requested(&env(&[("TEKTON_HERMETIC", "true")])));
        assert!(!requested(&env(&[])));
    }

    #[test]
    fn sentences_name_the_variable_and_the_fix() {
        let s = sentence(Stage::Clone, Errno::EPERM);
        assert!(s.starts_with("TEKTON_HERMETIC=1"), "{s}");
        assert!(s.contains("(clone: Operation not permitted)") && s.contains("seccomp"), "{s}");
        assert!(sentence(Stage::Clone, Errno::ENOSPC).contains("user.max_user_namespaces"));
        assert!(sentence(Stage::UidMap, Errno::EPERM).contains("hostUsers: false"));
        assert!(sentence(Stage::Loopback, Errno::EPERM).contains("loopback"));
    }
}
