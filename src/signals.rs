//! Signals: blocked from the first instant and read from a signalfd, so none is lost and the event
//! loop handles them between other work, never inside a handler.

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
        let (original_mask, blocked) = sys::block_signals()?;
        let fd = SignalFd::new(&blocked)?;
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
