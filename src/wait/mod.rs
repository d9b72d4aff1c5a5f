//! Waiting for a step's start condition: other steps' ends, files, a gate.
//!
//! Event-driven: one inotify instance watches the folders where the awaited files will appear, and
//! the beacon of each running predecessor (a FIFO only its wrapper holds open for writing, see
//! `crate::liveness`) is polled beside it and hangs up the moment that wrapper lets go or dies. Each
//! wake-up re-checks every condition from the files themselves, and watches are set up before the
//! check, so nothing written before or during the set-up is missed. Without inotify (instance limit
//! reached, or `BATON_INOTIFY=off` for file systems that do not report changes), baton says so once
//! and re-checks every 500 ms instead.
//!
//! `conditions.rs` holds what a condition is and checks files and gates, `predecessors.rs` checks
//! steps, `watch.rs` sets the watches, `command.rs` is `baton wait`; this file is the waiter's loop.

mod command;
mod conditions;
mod predecessors;
mod watch;

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use baton_contract::layout::Layout;
use baton_contract::record::Reason;
use nix::sys::inotify::AddWatchFlags;

pub use command::wait_command;
pub use conditions::Cond;
// `Holder` serves src/argo's wait only.
#[cfg_attr(not(feature = "argo"), allow(unused_imports))]
pub use predecessors::{lost_sentence, Holder, LOST_WHY};

use crate::folder;
use crate::signals::Signals;
use crate::stepdir::WaitingFor;
use crate::sys;

/// Re-check interval when inotify cannot be had.
pub const FALLBACK_INTERVAL: Duration = Duration::from_millis(500);

/// How waiting ended.
#[derive(Debug)]
pub enum WaitEnd {
    Ready,
    /// A plain `--after` predecessor ended without success.
    PredecessorFailed { step: String, reason: Reason, exit_code: Option<i32>, detail: Option<String> },
    /// A predecessor's wrapper died without writing its record.
    PredecessorLost { step: String },
    TimedOut { missing: Vec<String> },
    /// A stop signal arrived first.
    Cancelled { signal: i32 },
    /// What a condition depends on cannot be read (a record that is not one, a file nobody may
    /// open, an error that did not go away): one sentence.
    Error { sentence: String },
}

enum Check {
    Met,
    Pending,
    /// A step no baton has claimed yet.
    NotStarted,
    /// A transient error (out of descriptors, memory): look again soon.
    Retry,
    End(WaitEnd),
}

/// The state of every condition after one check.
#[derive(Default)]
pub struct Progress {
    /// Conditions not met yet, described for people.
    pub missing: Vec<String>,
    /// Awaited steps that no baton has claimed yet.
    pub not_started: Vec<String>,
    /// Conditions that can no longer be met (a failed or lost predecessor, an unreadable record).
    pub ends: Vec<WaitEnd>,
    /// A transient error asks for another look soon.
    pub retry: bool,
}

impl Progress {
    pub fn waiting_for(&self) -> WaitingFor {
        WaitingFor { missing: self.missing.clone(), not_started: self.not_started.clone() }
    }
}

pub struct Waiter<'a> {
    layout: &'a Layout,
    /// The conditions not met yet.
    conds: Vec<Cond>,
    /// This waiter's inotify instance, made when something needs watching (see `sys::Inotify`).
    inotify: Option<sys::Inotify>,
    /// Whether a watch set during the current check is needed; the instance is closed when not.
    needs_watch: bool,
    /// False after inotify could not be had: the 500 ms fallback.
    watching: bool,
    watch_mask: AddWatchFlags,
    /// The beacons of the predecessors found alive by the last check, polled until the next one.
    beacons: Vec<File>,
    /// When a transient error was first met, per condition description.
    troubled: HashMap<String, Instant>,
}

/// Re-check interval while an error that may go away is being retried.
const RETRY_INTERVAL: Duration = Duration::from_millis(100);
/// How long a transient error may last before it ends the wait.
pub const RETRY_FOR: Duration = Duration::from_secs(10);
/// When a wait for a step nobody has claimed says so.
pub const NOTICE_AFTER: Duration = Duration::from_secs(5);

impl<'a> Waiter<'a> {
    pub fn new(layout: &'a Layout, conds: Vec<Cond>) -> io::Result<Waiter<'a>> {
        let watch_mask = if conds.iter().any(|c| matches!(c, Cond::NonEmpty(_))) {
            sys::WATCH_DIR | sys::WATCH_WRITES
        } else {
            sys::WATCH_DIR
        };
        Ok(Waiter {
            layout,
            conds,
            inotify: None,
            needs_watch: false,
            watching: true,
            watch_mask,
            beacons: Vec::new(),
            troubled: HashMap::new(),
        })
    }

    /// Waits until every condition holds, one fails, `timeout` passes or a stop signal arrives.
    /// `progress` is told what is still missing whenever that changes. A step that nobody has
    /// claimed after [`NOTICE_AFTER`] is named on stderr once (a typo in `--after` would otherwise
    /// wait in silence), with the steps that do exist.
    pub fn wait(
        &mut self,
        signals: &mut Signals,
        timeout: Option<Duration>,
        mut progress: impl FnMut(&WaitingFor),
    ) -> io::Result<WaitEnd> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut notice_at = Some(Instant::now() + NOTICE_AFTER);
        let mut reported: Option<WaitingFor> = None;
        loop {
            let mut p = self.check();
            if !p.ends.is_empty() {
                return Ok(p.ends.swap_remove(0));
            }
            if p.missing.is_empty() {
                return Ok(WaitEnd::Ready);
            }
            let waiting = p.waiting_for();
            if reported.as_ref() != Some(&waiting) {
                progress(&waiting);
                reported = Some(waiting);
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Ok(WaitEnd::TimedOut { missing: p.missing });
            }
            if p.not_started.is_empty() {
                notice_at = notice_at.map(|_| now + NOTICE_AFTER);
            } else if notice_at.is_some_and(|t| now >= t) {
                self.notice_not_started(&p.not_started, timeout);
                notice_at = None;
            }
            let sleep = [
                deadline.map(|d| d - now),
                self.recheck_interval(),
                p.retry.then_some(RETRY_INTERVAL),
                notice_at.filter(|_| !p.not_started.is_empty()).map(|t| t.saturating_duration_since(now)),
            ]
            .into_iter()
            .flatten()
            .min();
            let mut fds = vec![signals.fd()];
            fds.extend(self.fds());
            sys::poll(&fds, sleep)?;
            drop(fds);
            if let Some(signal) = signals.take_while_waiting()? {
                return Ok(WaitEnd::Cancelled { signal });
            }
            self.clear();
        }
    }

    fn notice_not_started(&self, names: &[String], timeout: Option<Duration>) {
        let known = crate::stepdir::list_steps(self.layout);
        let known = if known.is_empty() { "none yet".to_string() } else { known.join(", ") };
        let (them, has) = if names.len() == 1 { ("step", "has") } else { ("steps", "have") };
        let until = match timeout {
            Some(t) => format!("until --wait-timeout {}", baton_contract::duration::human(t)),
            None => "until it starts or the pod is deleted".to_string(),
        };
        eprintln!(
            "baton: still waiting for {them} {}, which no baton {has} claimed in {} (steps there: {known}); if that \
             is a typo, fix --after; waiting on {until}",
            names.join(", "),
            self.layout.root().display()
        );
    }

    /// Checks every condition not met yet. Watches are set up before a condition is looked at, so
    /// no change slips between; a predecessor that is running needs none (its beacon wakes us). A
    /// condition once met stays met (a step does not un-end), so it is dropped: a wake-up costs
    /// only what is still pending, which matters when one step waits for a hundred.
    pub fn check(&mut self) -> Progress {
        self.needs_watch = false;
        // The beacons of this check's living predecessors replace the last check's: one that hung
        // up belongs to a step that is now ended or lost, and is not polled again.
        self.beacons.clear();
        let progress = self.check_all();
        if !self.needs_watch && !progress.missing.is_empty() {
            // Everything pending is a running predecessor, whose beacon wakes us: no instance held.
            if let Some(inotify) = self.inotify.take() {
                inotify.close();
            }
        }
        progress
    }

    fn check_all(&mut self) -> Progress {
        let mut progress = Progress::default();
        let mut i = 0;
        while i < self.conds.len() {
            let cond = self.conds[i].clone();
            match self.check_one(&cond) {
                Check::Met => {
                    self.troubled.remove(&cond.describe());
                    self.conds.remove(i);
                    continue;
                }
                Check::Pending => progress.missing.push(cond.describe()),
                Check::NotStarted => {
                    progress.missing.push(cond.describe());
                    if let Cond::Step { name, .. } = &cond {
                        progress.not_started.push(name.clone());
                    }
                }
                Check::Retry => {
                    progress.missing.push(cond.describe());
                    progress.retry = true;
                }
                Check::End(end) => progress.ends.push(end),
            }
            i += 1;
        }
        progress
    }

    /// The descriptors that become readable when something may have changed.
    pub fn fds(&self) -> Vec<BorrowedFd<'_>> {
        let mut fds: Vec<BorrowedFd> = self.beacons.iter().map(File::as_fd).collect();
        fds.extend(self.inotify.as_ref().map(sys::Inotify::fd));
        fds
    }

    /// How often to re-check without being told: only when inotify is not available.
    pub fn recheck_interval(&self) -> Option<Duration> {
        (!self.watching).then_some(FALLBACK_INTERVAL)
    }

    /// Consumes the wake-ups, after a poll.
    pub fn clear(&self) {
        for fd in self.fds() {
            sys::drain(fd);
        }
    }

    /// A transient error is retried for [`RETRY_FOR`]; after that, or for any other error, it ends
    /// the wait with its sentence. Never is an error taken for a step's end or for "not started".
    fn trouble(&mut self, cond: &Cond, e: io::Error, what: impl FnOnce() -> String) -> Check {
        let key = cond.describe();
        if folder::is_transient(&e) {
            let since = *self.troubled.entry(key).or_insert_with(Instant::now);
            if since.elapsed() < RETRY_FOR {
                return Check::Retry;
            }
        }
        let what = what();
        let what = if what.is_empty() { format!("cannot look at {}", cond.describe()) } else { what };
        Check::End(WaitEnd::Error { sentence: format!("{what}: {e}{}", limit_hint(&e)) })
    }
}

impl Drop for Waiter<'_> {
    /// The wait is over (or the step is): an instance still open is left to the process's exit.
    fn drop(&mut self) {
        if let Some(inotify) = self.inotify.take() {
            inotify.keep();
        }
    }
}

/// A hint for errors that come from a limit.
fn limit_hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EMFILE) => " (this process has no file descriptors left: raise its limit, ulimit -n)",
        Some(libc::ENFILE) => " (the node has no file descriptors left: fs.file-max)",
        Some(libc::ENOMEM) => " (out of memory: raise the container's memory limit)",
        _ => "",
    }
}
