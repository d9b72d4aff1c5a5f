//! The running phase: one loop that forwards signals to the command's process group, reaps every
//! child (the command's status is never lost to another waiter), copies output to files, enforces
//! the run-time limit, answers control requests (and, for Argo, signals asked for in files), stops a
//! sidecar when the steps it serves have ended (`--until`) and holds back SIGTERM until the steps it
//! must outlive have ended (`--stop-after`).

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use baton_contract::control::Request;
use baton_contract::layout::Layout;

use crate::signals::{forward, Signals, STOP_SIGNALS};
use crate::stepdir::{StepDir, WaitingFor};
use baton_contract::state::Phase;
use crate::sys::{self, Ended};
use crate::wait::{Cond, Waiter};

/// A copy of one of the command's output streams into files, beside baton's own stream.
pub struct Tee {
    pipe: OwnedFd,
    sink: Sink,
    files: Vec<File>,
}

/// Baton's own stream a tee also writes to: `kubectl logs` still shows everything.
#[derive(Clone, Copy)]
pub enum Sink {
    Out,
    Err,
}

impl Tee {
    pub fn new(pipe: OwnedFd, sink: Sink, file: File) -> io::Result<Tee> {
        sys::set_nonblocking(pipe.as_fd())?;
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
            let n = match sys::read_now(self.pipe.as_fd(), &mut buf) {
                Ok(Some(0)) | Err(_) => return false,
                Ok(None) => return true,
                Ok(Some(n)) => n,
            };
            let chunk = &buf[..n];
            let _ = match self.sink {
                Sink::Out => sys::write_all(io::stdout().as_fd(), chunk),
                Sink::Err => sys::write_all(io::stderr().as_fd(), chunk),
            };
            for file in &self.files {
                // The file may be a FIFO opened without blocking: write_all waits for room.
                let _ = sys::write_all(file.as_fd(), chunk);
            }
        }
    }
}

/// The tees for a new command: each of its piped streams (stdout, stderr) paired with its file.
pub fn tees(streams: [(Option<OwnedFd>, Option<File>); 2]) -> Vec<Tee> {
    let mut tees = Vec::new();
    for ((pipe, file), sink) in streams.into_iter().zip([Sink::Out, Sink::Err]) {
        if let (Some(pipe), Some(file)) = (pipe, file) {
            match Tee::new(pipe, sink, file) {
                Ok(t) => tees.push(t),
                Err(e) => eprintln!("baton: cannot copy output: {e}"),
            }
        }
    }
    tees
}

/// How long a command runs before its pid is recorded in `state.json` (see `supervise_with`).
pub const PID_RECORD_DELAY: Duration = Duration::from_millis(10);

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
    pub step: Option<&'a mut StepDir>,
    /// Sidecar mode: stop the command once these steps have ended.
    pub until: Option<Waiter<'a>>,
    /// Hold SIGTERM until these steps have ended, for at most `stop_timeout`.
    pub stop_after: Vec<Cond>,
    pub stop_timeout: Duration,
    pub layout: &'a Layout,
    /// Leave what remains of the command's process group running when the command exits (the
    /// caller may end it later with [`end_group`], given the tees back in [`Supervised::tees`]).
    pub keep_group: bool,
}

/// What the loop saw.
pub struct Supervised {
    pub ended: Ended,
    /// Why baton stopped the command, and the last signal it sent to do so.
    pub stopped: Option<(StopCause, i32)>,
    /// A stop signal (SIGTERM, SIGINT, SIGHUP, SIGQUIT) reached baton itself: the pod is going away.
    pub told_to_stop: Option<i32>,
    /// With `keep_group`: the copies of the output, which a process left in the group may still use.
    pub tees: Vec<Tee>,
}

/// `--stop-after`: SIGTERM is held back until the listed steps have ended. One waiter for the whole
/// run, made at the first SIGTERM, however many more come.
struct StopAfter<'a> {
    conds: Vec<Cond>,
    waiter: Option<Waiter<'a>>,
    /// While a SIGTERM is held: when to forward it anyway.
    holding_until: Option<Instant>,
    /// The steps have ended (or the hold expired): SIGTERM goes through at once from now on.
    released: bool,
}

impl<'a> StopAfter<'a> {
    /// A SIGTERM arrived: true if it must be forwarded now.
    fn on_term(&mut self, layout: &'a Layout, stop_timeout: Duration) -> bool {
        if self.released || self.conds.is_empty() {
            return true;
        }
        if self.holding_until.is_some() {
            return false; // already held: one SIGTERM is forwarded when the steps end
        }
        if self.waiter.is_none() {
            match Waiter::new(layout, self.conds.clone()) {
                Ok(w) => self.waiter = Some(w),
                Err(_) => {
                    self.released = true;
                    return true;
                }
            }
        }
        let progress = self.waiter.as_mut().map(Waiter::check).unwrap_or_default();
        if progress.missing.is_empty() {
            self.released = true;
            return true;
        }
        eprintln!(
            "baton: holding SIGTERM until {} ended (at most {})",
            progress.missing.join(", "),
            baton_contract::duration::human(stop_timeout)
        );
        self.holding_until = Some(Instant::now() + stop_timeout);
        false
    }

    /// While holding: true when the held SIGTERM must go now (steps ended, or the hold expired).
    fn due(&mut self, now: Instant) -> bool {
        let Some(until) = self.holding_until else { return false };
        let ended = self.waiter.as_mut().is_some_and(|w| {
            w.clear();
            w.check().missing.is_empty()
        });
        if now >= until {
            eprintln!("baton: --stop-timeout expired; forwarding SIGTERM now");
        }
        if ended || now >= until {
            self.holding_until = None;
            self.released = true;
            return true;
        }
        false
    }
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
    // The command's pid goes into state.json once it has run for a moment: a quick command that
    // ends sooner never needs it, and its end is not kept waiting for that write.
    let mut pid_due = rules.step.is_some().then(|| Instant::now() + PID_RECORD_DELAY);
    let mut stopped: Option<(StopCause, i32)> = None;
    let mut kill_at: Option<Instant> = None;
    let mut stop_after = StopAfter { conds: rules.stop_after.clone(), waiter: None, holding_until: None, released: false };
    let mut told_to_stop = None;

    let grace = rules.grace;
    let stop = |cause: StopCause, stopped: &mut Option<(StopCause, i32)>, kill_at: &mut Option<Instant>| {
        if stopped.is_none() {
            forward(pid, libc::SIGTERM);
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
        if let Some(f) = files.as_mut().filter(|_| files_due) {
            for signal in (f.take)() {
                let _ = sys::signal_group(pid, signal);
            }
        }

        if let (Some(at), Some(step)) = (pid_due, rules.step.as_deref_mut()) {
            if now >= at {
                step.set_state(Phase::Running, Some(pid as u32), &WaitingFor::default(), None);
                pid_due = None;
            }
        }
        // Wait for the next thing to happen.
        let mut fds = vec![signals.fd()];
        fds.extend(rules.step.as_deref().map(StepDir::control_fd));
        if let Some(w) = &rules.until {
            fds.extend(w.fds());
        }
        if let Some(w) = &stop_after.waiter {
            fds.extend(w.fds());
        }
        let first_file = fds.len();
        if let Some(f) = &files {
            fds.extend(f.waiter.fds());
        }
        let file_fds = first_file..fds.len();
        let first_tee = fds.len();
        fds.extend(tees.iter().map(|t| t.pipe.as_fd()));
        let next = [
            pid_due,
            timeout_at.filter(|_| stopped.is_none()),
            kill_at,
            stop_after.holding_until,
            rules.until.as_ref().and_then(Waiter::recheck_interval).map(|d| now + d),
            stop_after.waiter.as_ref().and_then(Waiter::recheck_interval).filter(|_| stop_after.holding_until.is_some()).map(|d| now + d),
            files.as_ref().and_then(|f| f.waiter.recheck_interval()).map(|d| now + d),
        ]
        .into_iter()
        .flatten()
        .min();
        let ready = sys::poll(&fds, next.map(|at| at.saturating_duration_since(Instant::now())))?;
        drop(fds);

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
                libc::SIGTERM if stopped.is_none() => {
                    if stop_after.on_term(rules.layout, rules.stop_timeout) {
                        forward(pid, libc::SIGTERM);
                    }
                }
                libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU => {
                    // Job control, as a shell expects of its job: the command stops, then baton.
                    let _ = sys::signal_group(pid, signal);
                    sys::stop_self();
                }
                _ => forward(pid, signal),
            }
        }
        if let Some(step) = rules.step.as_deref_mut() {
            for request in step.requests() {
                match request {
                    Request::Kill(signal) => forward(pid, signal),
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
            files_due = file_fds.clone().any(|i| ready[i]) || f.waiter.recheck_interval().is_some();
            if files_due {
                f.waiter.clear();
                let _ = f.waiter.check();
            }
        }
        if stop_after.due(Instant::now()) {
            forward(pid, libc::SIGTERM);
        }
        let mut i = first_tee;
        tees.retain_mut(|tee| {
            let readable = ready[i];
            i += 1;
            !readable || tee.pump()
        });
    };
    if !rules.keep_group {
        end_group(pid, signals, rules.grace, &mut tees);
    }
    // The command is gone. Take what it left in the pipes, but do not wait for a grandchild that
    // still holds them open: the step is over.
    for tee in &mut tees {
        tee.pump();
    }
    if !rules.keep_group {
        tees.clear();
    }
    Ok(Supervised { ended, stopped, told_to_stop, tees })
}

/// What the command left running in its process group (`sh -c 'daemon & exit 0'`) gets SIGTERM,
/// then SIGKILL after `grace`, and is reaped before the step ends: when baton is not PID 1, nothing
/// else would clean it up. Processes that left the group (daemons that called setsid) are not
/// waited for.
pub fn end_group(pgid: i32, signals: &mut Signals, grace: Duration, tees: &mut [Tee]) {
    if !sys::group_exists(pgid) {
        return;
    }
    forward(pgid, libc::SIGTERM);
    let kill_at = Instant::now() + grace;
    let mut killed = false;
    // After SIGKILL the kernel ends them at once; this bound only guards against the unkillable.
    let give_up = kill_at + Duration::from_secs(5);
    while sys::group_exists(pgid) {
        let now = Instant::now();
        if now >= give_up {
            eprintln!("baton: processes of the command's group did not end after SIGKILL; leaving them");
            return;
        }
        if !killed && now >= kill_at {
            let _ = sys::signal_group(pgid, libc::SIGKILL);
            killed = true;
        }
        let until = if killed { give_up } else { kill_at };
        let fds: Vec<BorrowedFd> = [signals.fd()].into_iter().chain(tees.iter().map(|t| t.pipe.as_fd())).collect();
        // A member that is not baton's child (its parent lives on in the group) is not announced by
        // SIGCHLD: look again every 50 ms.
        let wait = until.saturating_duration_since(now).min(Duration::from_millis(50));
        if sys::poll(&fds, Some(wait)).is_err() {
            return;
        }
        while let Ok(Some(signal)) = signals.next() {
            if signal == libc::SIGCHLD {
                sys::reap(None);
            }
        }
        for tee in tees.iter_mut() {
            tee.pump();
        }
        sys::reap(None);
    }
}
