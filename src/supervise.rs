//! The running phase: one loop that forwards signals to the command's process group, reaps every
//! child (the command's status is never lost to another waiter), copies output to files, enforces
//! the run-time limit, answers control requests (and, for Argo, signals asked for in files), stops a
//! sidecar when the steps it serves have ended (`--until`) and holds back SIGTERM until the steps it
//! must outlive have ended (`--stop-after`).

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use baton_contract::control::Request;
use baton_contract::layout::Layout;

use crate::signals::{Signals, STOP_SIGNALS};
use crate::stepdir::StepDir;
use crate::sys::{self, Ended};
use crate::wait::{Cond, Waiter};

/// A copy of one of the command's output streams into files, beside baton's own stream.
pub struct Tee {
    pipe: OwnedFd,
    sink: RawFd,
    files: Vec<File>,
}

impl Tee {
    /// `sink` is baton's own stdout (1) or stderr (2): `kubectl logs` still shows everything.
    pub fn new(pipe: OwnedFd, sink: RawFd, file: File) -> io::Result<Tee> {
        sys::set_nonblocking(pipe.as_raw_fd())?;
        Ok(Tee { pipe, sink, files: vec![file] })
    }

    /// Also copies the stream into `file` (Argo's `combined` gets both streams).
    pub fn also(mut self, file: File) -> Tee {
        self.files.push(file);
        self
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
            for file in &mut self.files {
                let _ = file.write_all(chunk);
            }
        }
    }
}

/// The tees for a new command: each of its piped streams (stdout, stderr) paired with its file.
pub fn tees(streams: [(Option<OwnedFd>, Option<File>); 2]) -> Vec<Tee> {
    let mut tees = Vec::new();
    for ((pipe, file), sink) in streams.into_iter().zip([1, 2]) {
        if let (Some(pipe), Some(file)) = (pipe, file) {
            match Tee::new(pipe, sink, file) {
                Ok(t) => tees.push(t),
                Err(e) => eprintln!("baton: cannot copy output: {e}"),
            }
        }
    }
    tees
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

/// Why baton itself stopped the command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopCause {
    /// `--timeout` expired.
    Timeout,
    /// Every `--until` step has ended.
    Until,
}

/// What the running phase is asked to do besides waiting for the command.
pub struct Rules<'a> {
    pub timeout: Option<Duration>,
    pub grace: Duration,
    /// The step's folder, for control requests (`baton kill`).
    pub step: Option<&'a StepDir>,
    /// Sidecar mode: stop the command once these steps have ended.
    pub until: Option<Waiter<'a>>,
    /// Hold SIGTERM until these steps have ended, for at most `stop_timeout`.
    pub stop_after: Vec<Cond>,
    pub stop_timeout: Duration,
    pub layout: &'a Layout,
}

/// What the loop saw.
pub struct Supervised {
    pub ended: Ended,
    /// Why baton stopped the command, and the last signal it sent to do so.
    pub stopped: Option<(StopCause, i32)>,
    /// A stop signal (SIGTERM, SIGINT, SIGHUP, SIGQUIT) reached baton itself: the pod is going away.
    pub told_to_stop: Option<i32>,
}

/// A SIGTERM held back by `--stop-after`.
struct Held<'a> {
    waiter: Waiter<'a>,
    until: Instant,
}

/// Signals asked for in files, where a foreign contract has them (Argo's `ctr/<name>/signal`):
/// `waiter` watches the folder they appear in, `take` reads (and removes) them. Taken before the
/// first wait, so a file written before the command started counts, then at every wake-up.
pub struct FileSignals<'a> {
    pub waiter: Waiter<'a>,
    pub take: Box<dyn FnMut() -> Vec<i32> + 'a>,
}

/// Supervises the command `pid` (leader of its own process group) until it exits.
pub fn supervise(pid: i32, signals: &mut Signals, tees: Vec<Tee>, rules: Rules) -> io::Result<Supervised> {
    supervise_with(pid, signals, tees, rules, None)
}

/// [`supervise`], also sending the command's group the signals that `files` asks for.
pub fn supervise_with(
    pid: i32,
    signals: &mut Signals,
    mut tees: Vec<Tee>,
    mut rules: Rules,
    mut files: Option<FileSignals>,
) -> io::Result<Supervised> {
    for signal in signals.take_early() {
        let _ = sys::signal_group(pid, signal);
    }
    let timeout_at = rules.timeout.map(|t| Instant::now() + t);
    let mut stopped: Option<(StopCause, i32)> = None;
    let mut kill_at: Option<Instant> = None;
    let mut held: Option<Held> = None;
    let mut told_to_stop = None;

    let grace = rules.grace;
    let stop = |cause: StopCause, stopped: &mut Option<(StopCause, i32)>, kill_at: &mut Option<Instant>| {
        if stopped.is_none() {
            let _ = sys::signal_group(pid, libc::SIGTERM);
            *stopped = Some((cause, libc::SIGTERM));
            *kill_at = Some(Instant::now() + grace);
        }
    };

    // Whether the signal files may have changed: at the start, then when their watch wakes.
    let mut files_due = true;

    let ended = 'run: loop {
        let now = Instant::now();
        if timeout_at.is_some_and(|at| now >= at) {
            stop(StopCause::Timeout, &mut stopped, &mut kill_at);
        }
        if kill_at.is_some_and(|at| now >= at) {
            let _ = sys::signal_group(pid, libc::SIGKILL);
            stopped = stopped.map(|(cause, _)| (cause, libc::SIGKILL));
            kill_at = None;
        }
        if held.as_ref().is_some_and(|h| now >= h.until) {
            eprintln!("baton: --stop-timeout expired; forwarding SIGTERM now");
            let _ = sys::signal_group(pid, libc::SIGTERM);
            held = None;
        }
        if let Some(f) = files.as_mut().filter(|_| files_due) {
            for signal in (f.take)() {
                let _ = sys::signal_group(pid, signal);
            }
        }

        // Wait for the next thing to happen.
        let mut fds = vec![signals.fd()];
        fds.extend(rules.step.map(StepDir::control_fd));
        if let Some(w) = &rules.until {
            fds.extend(w.fds());
        }
        let first_file = fds.len();
        if let Some(f) = &files {
            fds.extend(f.waiter.fds());
        }
        let file_fds = first_file..fds.len();
        if let Some(h) = &held {
            fds.extend(h.waiter.fds());
        }
        let first_tee = fds.len();
        fds.extend(tees.iter().map(|t| t.pipe.as_raw_fd()));
        let next = [
            timeout_at.filter(|_| stopped.is_none()),
            kill_at,
            held.as_ref().map(|h| h.until),
            rules.until.as_ref().and_then(Waiter::recheck_interval).map(|d| now + d),
            held.as_ref().and_then(|h| h.waiter.recheck_interval()).map(|d| now + d),
            files.as_ref().and_then(|f| f.waiter.recheck_interval()).map(|d| now + d),
        ]
        .into_iter()
        .flatten()
        .min();
        let mut pollfds: Vec<libc::pollfd> = fds.iter().map(|&fd| sys::pollfd(fd)).collect();
        sys::poll(&mut pollfds, next.map(|at| at.saturating_duration_since(Instant::now())))?;

        while let Some(signal) = signals.next()? {
            if STOP_SIGNALS.contains(&signal) {
                told_to_stop = Some(signal);
            }
            match signal {
                libc::SIGCHLD => {
                    if let Some(end) = sys::reap(Some(pid)) {
                        break 'run end;
                    }
                }
                libc::SIGTERM if !rules.stop_after.is_empty() && stopped.is_none() => {
                    if held.is_none() {
                        held = hold_term(&rules, pid);
                    }
                }
                _ => {
                    let _ = sys::signal_group(pid, signal);
                }
            }
        }
        if let Some(step) = rules.step {
            for request in step.requests() {
                match request {
                    Request::Kill(signal) => {
                        let _ = sys::signal_group(pid, signal);
                    }
                    Request::Resume | Request::ResumeFail => {
                        eprintln!("baton: step {:?} is not at a breakpoint; ignoring resume", step.name())
                    }
                }
            }
        }
        if let Some(w) = &mut rules.until {
            w.clear();
            if stopped.is_none() && w.check().missing.is_empty() {
                stop(StopCause::Until, &mut stopped, &mut kill_at);
            }
        }
        if let Some(f) = &mut files {
            // Drained before the next take, so a file written from now on wakes the next poll.
            files_due = file_fds.clone().any(|i| pollfds[i].revents != 0) || f.waiter.recheck_interval().is_some();
            if files_due {
                f.waiter.clear();
                let _ = f.waiter.check();
            }
        }
        if let Some(h) = &mut held {
            h.waiter.clear();
            if h.waiter.check().missing.is_empty() {
                let _ = sys::signal_group(pid, libc::SIGTERM);
                held = None;
            }
        }
        let mut i = first_tee;
        tees.retain_mut(|tee| {
            let ready = pollfds[i].revents != 0;
            i += 1;
            !ready || tee.pump()
        });
    };
    // The command is gone. Take what it left in the pipes, but do not wait for a grandchild that
    // still holds them open: the step is over.
    for tee in &mut tees {
        tee.pump();
    }
    Ok(Supervised { ended, stopped, told_to_stop })
}

/// Starts holding SIGTERM for `--stop-after`, or forwards it at once if those steps already ended.
fn hold_term<'a>(rules: &Rules<'a>, pid: i32) -> Option<Held<'a>> {
    let forward = || {
        let _ = sys::signal_group(pid, libc::SIGTERM);
        None
    };
    let Ok(mut waiter) = Waiter::new(rules.layout, rules.stop_after.clone()) else { return forward() };
    let progress = waiter.check();
    if progress.missing.is_empty() {
        return forward();
    }
    eprintln!(
        "baton: holding SIGTERM until {} ended (at most {})",
        progress.missing.join(", "),
        baton_contract::duration::human(rules.stop_timeout)
    );
    Some(Held { waiter, until: Instant::now() + rules.stop_timeout })
}
