//! Waiting before a run: for container-set dependencies (`ctr/<dep>/exitcode`), for a debug-pause
//! file, or through a retry's pause. baton's [`Waiter`] sets up the watches (inotify on the folders,
//! nothing written during the set-up missed, a 500 ms re-check when inotify cannot be had) and polls
//! each running dependency's beacon (`crate::liveness`); this module applies Argo's rules to the files.
//!
//! A dependency is lost when its emissary's beacon (`ctr/<dep>/baton.alive`) hung up and it left no
//! exit code: its container was killed (SIGKILL, OOM) before it could write one. The kernel closes
//! the beacon the moment that process dies, so the dependent learns of it at once; Argo's own
//! emissary waits there until the controller signals it (a round trip through the kubelet and the
//! controller, since v3.4.11 / v3.5.0). A dependency run by Argo's emissary leaves no
//! beacon and is waited for as Argo waits; so is one whose beacon another container removed
//! (`ctr/` is 0777 by Argo's design) or replaced with one that is not its folder owner's.
//!
//! While waiting, a stop signal (to baton, or asked for in this container's `signal` file) ends the
//! wait: the command never starts. Other signals in the file are left there for the command.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use baton_contract::layout::Layout;

use crate::signals::{Signals, STOP_SIGNALS};
use crate::sys;
use crate::wait::{Cond, Holder, Waiter};

use super::files::{self, Ctr, Number, SignalRequest, BEACON_FILE};
use super::run::End;
use super::{Env, EXIT_FAILED};

/// How waiting ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Waited {
    Ready,
    /// A dependency ended with this non-zero exit code.
    DependencyFailed {
        name: String,
        code: i32,
    },
    /// A dependency's emissary died without writing its exit code.
    DependencyLost {
        name: String,
        exitcode: PathBuf,
    },
    /// A dependency's exit code file is not an exit code: the clause that says why.
    DependencyUnreadable {
        name: String,
        why: String,
    },
    /// A stop signal reached baton, or was asked for in the signal file.
    Stopped {
        signal: i32,
        from_file: bool,
    },
    /// The deadline passed (a retry's pause).
    Elapsed,
}

/// A signal that ends a wait: baton's stop signals, and SIGKILL asked for in the signal file.
pub fn is_stop(signal: i32) -> bool {
    STOP_SIGNALS.contains(&signal) || signal == libc::SIGKILL
}

pub struct Wait<'a> {
    /// The shared folder, `/var/run/argo`.
    pub root: &'a Path,
    /// Container-set members that must have ended with exit code 0.
    pub dependencies: &'a [String],
    /// A file that must exist (a debug pause).
    pub file: Option<PathBuf>,
    pub deadline: Option<Instant>,
    /// This container (its signal file).
    pub ctr: &'a Ctr,
}

impl Wait<'_> {
    pub fn run(&self, signals: &mut Signals) -> io::Result<Waited> {
        let layout = Layout::new(self.root);
        let mut conds: Vec<Cond> = self.dependencies.iter().map(|d| Cond::File(self.exitcode(d))).collect();
        conds.extend(self.file.clone().map(Cond::File));
        // Only for the watch on this container's folder: the file is read below, whatever the Waiter thinks.
        conds.push(Cond::File(self.ctr.signal()));
        let mut waiter = Waiter::new(&layout, conds)?;
        loop {
            // Watches first (the Waiter's check sets them up), then Argo's rules on the files.
            let _ = waiter.check();
            if let Some(end) = self.evaluate(&mut waiter) {
                return Ok(end);
            }
            let now = Instant::now();
            if self.deadline.is_some_and(|d| now >= d) {
                return Ok(Waited::Elapsed);
            }
            let sleep = [self.deadline.map(|d| d - now), waiter.recheck_interval()].into_iter().flatten().min();
            let mut fds = vec![signals.fd()];
            fds.extend(waiter.fds());
            sys::poll(&fds, sleep)?;
            if let Some(signal) = signals.take_while_waiting()? {
                return Ok(Waited::Stopped { signal, from_file: false });
            }
            waiter.clear();
        }
    }

    fn exitcode(&self, name: &str) -> PathBuf {
        files::ctr_dir(self.root, name).join("exitcode")
    }

    /// Argo's rules on the files as they are now. None: still waiting.
    fn evaluate(&self, waiter: &mut Waiter) -> Option<Waited> {
        match files::read_signal(&self.ctr.signal()) {
            SignalRequest::Signal(signal) if is_stop(signal) => {
                self.ctr.remove_signal();
                return Some(Waited::Stopped { signal, from_file: true });
            }
            SignalRequest::Bad(sentence) => {
                eprintln!("baton: {sentence}");
                self.ctr.remove_signal();
            }
            SignalRequest::Signal(_) | SignalRequest::None => {}
        }
        let mut pending = false;
        for name in self.dependencies {
            let path = self.exitcode(name);
            let end = match files::read_number(&path) {
                Number::Value(0) => continue,
                Number::Value(code) => Some(failed(name, code)),
                Number::Bad(why) => {
                    Some(Waited::DependencyUnreadable { name: name.clone(), why: format!("{} {why}", path.display()) })
                }
                Number::Missing | Number::Empty => {
                    let beacon = files::ctr_dir(self.root, name).join(BEACON_FILE);
                    match waiter.beacon_at(&beacon) {
                        // Gone: it may have written its exit code just before it went.
                        Ok(Holder::Gone) => match files::read_number(&path) {
                            Number::Value(0) => continue,
                            Number::Value(code) => Some(failed(name, code)),
                            _ => Some(Waited::DependencyLost { name: name.clone(), exitcode: path }),
                        },
                        // Not started yet, not baton, or running.
                        _ => None,
                    }
                }
            };
            if end.is_some() {
                return end;
            }
            pending = true;
        }
        if self.file.as_ref().is_some_and(|f| !f.exists()) {
            pending = true;
        }
        (!pending && self.deadline.is_none()).then_some(Waited::Ready)
    }
}

fn failed(name: &str, code: i64) -> Waited {
    Waited::DependencyFailed {
        name: name.to_string(),
        code: code.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32,
    }
}

/// Waits for the container-set dependencies; a failed or lost one, or a stop signal, ends the
/// container unrun.
pub(super) fn for_dependencies(
    ctr: &Ctr,
    dependencies: &[String],
    env: &Env,
    signals: &mut Signals,
) -> Result<(), End> {
    let wait = Wait { root: &env.dir, dependencies, file: None, deadline: None, ctr };
    let me = &ctr.name;
    match wait.run(signals) {
        Ok(Waited::Ready) | Ok(Waited::Elapsed) => Ok(()),
        Ok(Waited::DependencyFailed { name, code }) => Err(End {
            exitcode: code,
            exit: EXIT_FAILED,
            why: Some(format!("container {me:?} did not run: its dependency {name:?} ended with exit code {code}")),
        }),
        // Ended as the controller's `argoexec kill 15 1` ends it under Argo (exit 143, the node Failed),
        // only at once instead of after the controller's round trip; the sentence says why.
        Ok(Waited::DependencyLost { name, exitcode }) => Err(End {
            why: Some(format!(
                "container {me:?} did not run: its dependency {name:?} ended without writing {} (its container \
                 was killed, e.g. OOM-killed)",
                exitcode.display()
            )),
            ..End::stopped(libc::SIGTERM)
        }),
        Ok(Waited::DependencyUnreadable { name, why }) => {
            Err(End::failed(format!("container {me:?} did not run: the exit code of its dependency {name:?}: {why}")))
        }
        Ok(Waited::Stopped { signal, from_file }) => {
            eprintln!(
                "baton: {} {}while waiting for {}; the command never started",
                sys::signal_name(signal),
                if from_file { "asked for in the signal file " } else { "" },
                dependencies.join(", ")
            );
            Err(End::stopped(signal))
        }
        Err(e) => Err(End::failed(format!("waiting for the dependencies failed: {e}"))),
    }
}

/// A debug pause: waits for `ctr/<name>/<which>`. Returns the stop signal that ended it early.
pub(super) fn pause(ctr: &Ctr, which: &str, env: &Env, signals: &mut Signals) -> Option<i32> {
    let file = ctr.pause_file(which);
    eprintln!(
        "baton: ARGO_DEBUG_PAUSE_{} is set: paused until {} exists (from a debug container: touch \
         /proc/1/root{})",
        which.to_uppercase(),
        file.display(),
        file.display()
    );
    let wait = Wait { root: &env.dir, dependencies: &[], file: Some(file), deadline: None, ctr };
    match wait.run(signals) {
        Ok(Waited::Stopped { signal, .. }) => {
            eprintln!("baton: {} ended the pause", sys::signal_name(signal));
            Some(signal)
        }
        Ok(_) => None,
        Err(e) => {
            eprintln!("baton: cannot watch for {which}: {e}; going on");
            None
        }
    }
}
