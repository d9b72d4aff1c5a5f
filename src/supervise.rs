//! The running phase: one loop that forwards signals to the command's process group, reaps every
//! child (the command's status is never lost to another waiter), copies output to files, and
//! enforces the run-time limit.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use crate::signals::Signals;
use crate::sys::{self, Ended};

/// A copy of one of the command's output streams into a file, beside baton's own stream.
pub struct Tee {
    pipe: OwnedFd,
    sink: RawFd,
    file: File,
}

impl Tee {
    /// `sink` is baton's own stdout (1) or stderr (2): `kubectl logs` still shows everything.
    pub fn new(pipe: OwnedFd, sink: RawFd, file: File) -> io::Result<Tee> {
        sys::set_nonblocking(pipe.as_raw_fd())?;
        Ok(Tee { pipe, sink, file })
    }

    /// Copies what is readable now. Returns false at end of stream.
    fn pump(&mut self) -> bool {
        let mut buf = [0u8; 65536];
        loop {
            let n = unsafe { libc::read(self.pipe.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n == 0 {
                return false;
            }
            if n < 0 {
                let e = io::Error::last_os_error();
                return match e.kind() {
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::WouldBlock => true,
                    _ => false,
                };
            }
            let chunk = &buf[..n as usize];
            write_fd(self.sink, chunk);
            let _ = self.file.write_all(chunk);
        }
    }
}

fn write_fd(fd: RawFd, mut data: &[u8]) {
    while !data.is_empty() {
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n > 0 {
            data = &data[n as usize..];
            continue;
        }
        match io::Error::last_os_error().kind() {
            io::ErrorKind::Interrupted => {}
            io::ErrorKind::WouldBlock => {
                let mut p = [libc::pollfd { fd, events: libc::POLLOUT, revents: 0 }];
                let _ = sys::poll(&mut p, Some(Duration::from_secs(1)));
            }
            _ => return,
        }
    }
}

/// What the loop saw.
pub struct Supervised {
    pub ended: Ended,
    /// The run-time limit expired and baton stopped the command.
    pub timed_out: bool,
    /// The stop signal baton sent last (SIGTERM, or SIGKILL after the grace period).
    pub stop_signal: Option<i32>,
}

/// Supervises the command `pid` (leader of its own process group) until it exits.
pub fn supervise(
    pid: i32,
    signals: &mut Signals,
    mut tees: Vec<Tee>,
    timeout: Option<Duration>,
    grace: Duration,
) -> io::Result<Supervised> {
    for signal in signals.take_early() {
        let _ = sys::signal_group(pid, signal);
    }
    let timeout_at = timeout.map(|t| Instant::now() + t);
    let mut kill_at: Option<Instant> = None;
    let mut timed_out = false;
    let mut stop_signal = None;
    let ended = 'outer: loop {
        let now = Instant::now();
        if !timed_out && timeout_at.is_some_and(|at| now >= at) {
            timed_out = true;
            stop_signal = Some(libc::SIGTERM);
            let _ = sys::signal_group(pid, libc::SIGTERM);
            kill_at = Some(now + grace);
        }
        if kill_at.is_some_and(|at| now >= at) {
            stop_signal = Some(libc::SIGKILL);
            let _ = sys::signal_group(pid, libc::SIGKILL);
            kill_at = None;
        }
        let next = [timeout_at.filter(|_| !timed_out), kill_at].into_iter().flatten().min();
        let mut fds = vec![sys::pollfd(signals.fd())];
        fds.extend(tees.iter().map(|t| sys::pollfd(t.pipe.as_raw_fd())));
        sys::poll(&mut fds, next.map(|at| at.saturating_duration_since(Instant::now())))?;

        while let Some(signal) = signals.next()? {
            if signal == libc::SIGCHLD {
                if let Some(end) = sys::reap(Some(pid)) {
                    break 'outer end;
                }
            } else {
                let _ = sys::signal_group(pid, signal);
            }
        }
        let mut i = 0;
        tees.retain_mut(|tee| {
            let ready = fds[1 + i].revents != 0;
            i += 1;
            !ready || tee.pump()
        });
    };
    // The command is gone. Take what it left in the pipes, but do not wait for a grandchild that
    // still holds them open: the step is over.
    for tee in &mut tees {
        tee.pump();
    }
    Ok(Supervised { ended, timed_out, stop_signal })
}
