//! Signals: blocked from the first instant and read from a signalfd, so none is lost and the event
//! loop handles them between other work, never inside a handler; forwarded to the command's group
//! as they were sent.

use std::io;
use std::os::fd::BorrowedFd;

use crate::sys::{self, SigSet, SignalFd};

/// Signals that cancel a step that is still waiting: its command then never starts.
pub const STOP_SIGNALS: [i32; 4] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT];

pub struct Signals {
    fd: SignalFd,
    /// The mask baton was started with; the command gets it back.
    original_mask: SigSet,
    /// Signals that arrived before the command existed, to forward once it does.
    early: Vec<i32>,
}

impl Signals {
    /// Blocks every catchable signal and opens the signalfd. Call first thing in `run` and `wait`.
    pub fn take_over() -> io::Result<Signals> {
        let original_mask = sys::block_signals()?;
        let fd = SignalFd::all_signals()?;
        Ok(Signals { fd, original_mask, early: Vec::new() })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.fd()
    }

    pub fn original_mask(&self) -> &SigSet {
        &self.original_mask
    }

    /// The next pending signal, if any.
    pub fn next(&self) -> io::Result<Option<i32>> {
        self.fd.read()
    }

    /// While waiting: returns the first stop signal; reaps on SIGCHLD; keeps the rest for the command.
    pub fn take_while_waiting(&mut self) -> io::Result<Option<i32>> {
        while let Some(signal) = self.next()? {
            if STOP_SIGNALS.contains(&signal) {
                return Ok(Some(signal));
            }
            if signal == libc::SIGCHLD {
                sys::reap(None);
            } else {
                self.early.push(signal);
            }
        }
        Ok(None)
    }

    /// Signals kept while waiting, in arrival order, to forward to the new command.
    pub fn take_early(&mut self) -> Vec<i32> {
        std::mem::take(&mut self.early)
    }
}

/// Sends `signal` to the command's group `pgid`. A stop signal (SIGTERM, SIGINT, SIGHUP, SIGQUIT)
/// is followed by SIGCONT to each process of the group that is stopped (`baton kill -s STOP`, a
/// job-control stop, a debugger), so it still hears the signal and ends within the grace period. A
/// process that is not stopped gets no SIGCONT: it sees exactly the signals that were sent.
pub fn forward(pgid: i32, signal: i32) {
    let _ = sys::signal_group(pgid, signal);
    if !STOP_SIGNALS.contains(&signal) {
        return;
    }
    match stopped_members(pgid) {
        Some(stopped) => {
            for pid in stopped {
                let _ = sys::kill(pid, libc::SIGCONT);
            }
        }
        // /proc cannot tell: wake the whole group rather than leave a stopped command to SIGKILL.
        None => {
            let _ = sys::signal_group(pgid, libc::SIGCONT);
        }
    }
}

/// The processes of group `pgid` that are stopped now (state `T`, or `t` under a debugger); None
/// when /proc cannot be listed. The kernel tells only a parent that its child stopped, and a
/// grandchild's parent is not baton: so /proc is read once, when a stop signal is forwarded (at an
/// event, never on a timer). A stop still on its way at that instant is not seen; such a command
/// ends at SIGKILL after the grace period.
fn stopped_members(pgid: i32) -> Option<Vec<i32>> {
    let mut stopped = Vec::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
        // A process that has ended since the listing has no stat: it is not stopped.
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        if matches!(state_and_group(&stat), Some(('T' | 't', group)) if group == pgid) {
            stopped.push(pid);
        }
    }
    Some(stopped)
}

/// The state letter and process group of a `/proc/PID/stat` line, "PID (COMM) STATE PPID PGRP …".
/// COMM may hold spaces and parentheses: the fields are counted from its last ')'.
fn state_and_group(stat: &str) -> Option<(char, i32)> {
    let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let group = fields.nth(1)?.parse().ok()?;
    Some((state, group))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        assert_eq!(state_and_group("42 (sleep) T 1 42 42 0 -1"), Some(('T', 42)));
        assert_eq!(state_and_group("7 (a) S 9 (b) R 3 5 5 0) t 1 6 6 0"), Some(('t', 6)));
        assert_eq!(state_and_group("7 (cut"), None);
    }
}
