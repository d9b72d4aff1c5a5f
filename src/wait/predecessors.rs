//! Waiting for another step: its folder, its beacon (is its wrapper alive?) and its record.
//!
//! A running predecessor needs no watch: its beacon (see `crate::liveness`) is polled with the rest,
//! and hangs up the moment its wrapper publishes its record and lets go, or dies. A step not started
//! yet is watched for, then looked at once more, so its start is never missed.

use std::io;
use std::path::Path;

use baton_contract::layout::{BEACON_FILE, EXIT_FILE};
use baton_contract::message;

use super::{Check, Cond, WaitEnd, Waiter};
use crate::folder::{self, Folder, ReadError};
use crate::liveness::{self, Liveness};
use crate::sys;

/// Whether a wrapper lives, as its beacon says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holder {
    /// No beacon: its owner has not started (or is not baton).
    Absent,
    /// Its owner lives.
    Alive,
    /// Its owner has exited or was killed.
    Gone,
}

/// Why a step is lost. It does not guess the cause: an OOM kill, an eviction and a shared folder
/// that could not be written (a full volume) all look the same from here.
pub const LOST_WHY: &str = "its baton died without writing a record (its container was killed, e.g. OOM-killed, \
                            or the shared folder could not be written; that container's termination message and \
                            log say which)";

/// Why a step's successors see it as lost.
pub fn lost_sentence(step: &str) -> String {
    format!("step {step} was lost: {LOST_WHY}")
}

impl Waiter<'_> {
    /// Beacon first: a running predecessor is waited for on its beacon alone (no watch). A step not
    /// started yet is watched for, then looked at once more, so its start is never missed.
    pub(super) fn check_step(&mut self, name: &str, any_end: bool) -> Check {
        let cond = Cond::Step { name: name.to_string(), any_end };
        let mut watched = false;
        loop {
            let folder = match self.step_folder(name) {
                Ok(f) => f,
                Err(e) => return self.trouble(&cond, e, || format!("cannot open the folder of step {name}")),
            };
            let holder = match &folder {
                None => Ok(Holder::Absent),
                Some(folder) => self.beacon_in(folder, BEACON_FILE),
            };
            let holder = match holder {
                Ok(h) => h,
                Err(ReadError::Io(e)) if folder::is_transient(&e) => return self.trouble(&cond, e, String::new),
                Err(e) => return self.persistent(name, format!("its beacon cannot be used ({e})")),
            };
            if holder != Holder::Absent || watched {
                // A record is published before its wrapper lets go of the beacon: read it now.
                let end = match &folder {
                    Some(folder) => self.read_end(folder, name, any_end),
                    None => None,
                };
                return match (end, holder) {
                    (Some(check), _) => check,
                    (None, Holder::Gone) => Check::End(WaitEnd::PredecessorLost { step: name.to_string() }),
                    (None, Holder::Alive) => Check::Pending,
                    (None, Holder::Absent) if folder.is_none() => Check::NotStarted,
                    (None, Holder::Absent) => Check::Pending,
                };
            }
            self.watch_with(&self.layout.exit(name), sys::WATCH_STEP);
            watched = true;
        }
    }

    /// The folder of step `name`, without following links; None when no baton has made it yet.
    fn step_folder(&self, name: &str) -> io::Result<Option<Folder>> {
        let steps = match Folder::open_to_read(&self.layout.steps()) {
            Ok(s) => s,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        match steps.sub(name) {
            Ok(f) => Ok(Some(f)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether the wrapper whose beacon is `name` in `folder` lives; a living one's beacon is polled
    /// from now on, until the next check.
    fn beacon_in(&mut self, folder: &Folder, name: &str) -> Result<Holder, ReadError> {
        Ok(self.keep(liveness::look(folder, name)?))
    }

    /// Whether the wrapper whose beacon is at `path` lives (see [`liveness::look_at`]); a living one's
    /// beacon is polled from now on, until the next check. Only a missing beacon is "absent": any
    /// other error is the caller's to judge.
    pub fn beacon_at(&mut self, path: &Path) -> io::Result<Holder> {
        Ok(self.keep(liveness::look_at(path)?))
    }

    fn keep(&mut self, seen: Liveness) -> Holder {
        match seen {
            Liveness::Absent => Holder::Absent,
            Liveness::Gone => Holder::Gone,
            Liveness::Alive(beacon) => {
                self.beacons.push(beacon);
                Holder::Alive
            }
        }
    }

    /// The verdict from a predecessor's record, or None if it has none yet.
    fn read_end(&mut self, folder: &Folder, name: &str, any_end: bool) -> Option<Check> {
        let cond = Cond::Step { name: name.to_string(), any_end };
        let bytes = match folder.read(EXIT_FILE, crate::stepdir::RECORD_CAP, true) {
            Ok(b) => b,
            Err(ReadError::Missing) => return None,
            Err(ReadError::Io(e)) if folder::is_transient(&e) => return Some(self.trouble(&cond, e, String::new)),
            Err(e) => {
                let why = format!("its record {} cannot be used: {e}", folder.join(EXIT_FILE).display());
                return Some(self.persistent(name, why));
            }
        };
        self.troubled.remove(&cond.describe());
        let decoded = std::str::from_utf8(&bytes)
            .map_err(|e| e.to_string())
            .and_then(|t| message::decode(t).map_err(|e| e.to_string()));
        Some(match decoded {
            Ok(record) if any_end || record.reason.is_success() => Check::Met,
            Ok(record) => Check::End(WaitEnd::PredecessorFailed {
                step: name.to_string(),
                reason: record.reason,
                exit_code: record.exit_code,
                detail: None,
            }),
            Err(e) => self.persistent(name, format!("its record {} is not a baton record ({e})", folder.join(EXIT_FILE).display())),
        })
    }

    /// A step's files that will not become readable: the wait ends with a sentence.
    fn persistent(&self, name: &str, why: String) -> Check {
        Check::End(WaitEnd::Error {
            sentence: format!(
                "cannot tell how step {name} ended: {why}; only its own baton writes its folder, so check what else \
                 writes to {}",
                self.layout.root().display()
            ),
        })
    }
}
