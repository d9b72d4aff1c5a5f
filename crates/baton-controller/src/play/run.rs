//! A playing pod's event loop: podman's events, `podman kube play`'s return and the signals come in
//! as [`Event`]s; [`Run`] asks podman again, stops the pod as a deletion would, and says the lines
//! of the live view.

use std::io::Write;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;
use nix::sys::signal::{SigSet, Signal};
use serde_json::Value;

use super::observe::{last_error, Watch};
use super::view::{self, View};
use super::{pod_status, Error};
use crate::timeline::Timeline;

pub(super) enum Event {
    /// A line of `podman events`.
    Podman(String),
    /// `podman kube play` returned; its output.
    Played(String),
    Signal(Signal),
}

/// The watch of a playing pod: what it has said, what is going on.
pub(super) struct Run<'a> {
    pub(super) watch: Watch<'a>,
    pub(super) view: View,
    /// When the play began, for podman's and baton's times.
    pub(super) since: Timestamp,
    pub(super) start: Instant,
    pub(super) grace: u64,
    /// podman kube play's output, once it returned.
    pub(super) play_log: Option<String>,
    /// `podman pod kill` runs (a signal, the deadline, the end of the grace period).
    pub(super) stops: Vec<Child>,
    /// When the grace period of a stop ends.
    pub(super) kill_at: Option<Instant>,
    /// podman has news: ask it.
    pub(super) dirty: bool,
    /// Lines found and not yet said.
    pub(super) timeline: Timeline<String>,
    pub(super) out: &'a mut dyn Write,
}

impl Run<'_> {
    pub(super) fn on(&mut self, event: Event, names: &[String], dir: &Path) -> Result<(), Error> {
        match event {
            Event::Podman(line) => {
                // A container of this pod started or ended.
                let e: Value = serde_json::from_str(&line).unwrap_or_default();
                let ours =
                    e.get("Name").and_then(Value::as_str).is_some_and(|n| names.iter().any(|m| m == n));
                self.dirty |=
                    ours && matches!(e.get("Status").and_then(Value::as_str), Some("start" | "died"));
            }
            Event::Played(text) => {
                self.watch.reading.start_errors = pod_status::start_errors(&text);
                let _ = std::fs::write(dir.join("play.log"), &text);
                self.play_log = Some(text);
                self.dirty = true;
            }
            Event::Signal(sig) => self.stop(sig.as_ref())?,
        }
        Ok(())
    }

    /// Stops the pod as a deletion would: SIGTERM now, SIGKILL when the grace period is over
    /// ([`Run::on_tick`]); asked again, SIGKILL at once.
    pub(super) fn stop(&mut self, why: &str) -> Result<(), Error> {
        let podman = self.watch.podman;
        let (text, signal) = if self.kill_at.is_none() && self.stops.is_empty() {
            let grace = self.grace;
            self.kill_at = Some(Instant::now() + Duration::from_secs(grace));
            (
                format!("{why}: stopping the pod as a deletion would (SIGTERM, SIGKILL after {grace} s)"),
                "TERM",
            )
        } else {
            self.kill_at = None;
            (format!("{why} again: SIGKILL to every container"), "KILL")
        };
        self.note(vec![view::Line { at: Some(now()), text }]);
        self.stops.push(podman.pod_kill(self.watch.name, signal)?);
        self.dirty = true;
        Ok(())
    }

    /// The end of a grace period: SIGKILL to what is left.
    pub(super) fn on_tick(&mut self) -> Result<(), Error> {
        if self.kill_at.is_some_and(|at| Instant::now() >= at) {
            self.kill_at = None;
            let text = "the grace period is over: SIGKILL to every container".to_string();
            self.note(vec![view::Line { at: Some(now()), text }]);
            self.stops.push(self.watch.podman.pod_kill(self.watch.name, "KILL")?);
            self.dirty = true;
        }
        Ok(())
    }

    /// Asks podman, says what changed; the Pod JSON once the run is over.
    pub(super) fn refresh(&mut self, dir: &Path) -> Result<Option<Value>, Error> {
        self.watch.refresh()?;
        let pod = self.watch.pod_json();
        let lines = self.view.pod(&pod, &self.watch.reading);
        self.note(lines);
        let Some(log) = &self.play_log else { return Ok(None) };
        // A stop has gone through when its signal was sent: containers that never started stay so.
        let stopped =
            !self.stops.is_empty() && self.stops.iter_mut().all(|c| matches!(c.try_wait(), Ok(Some(_))));
        if settled(&pod, stopped) {
            return Ok(Some(pod));
        }
        // podman kube play creates every container before it returns (those after a failed init
        // container too): one that does not exist now never will, and the pod would wait forever.
        let w = &self.watch;
        if w.reading.pod.id.is_empty()
            || w.containers.iter().any(|c| w.reading.container(w.name, &c.name).is_none())
        {
            let log_file = dir.join("play.log").display().to_string();
            return Err(Error::NotPlayed { pod: w.name.to_string(), why: last_error(log), log: log_file });
        }
        Ok(None)
    }

    pub(super) fn note(&mut self, lines: Vec<view::Line>) {
        let found = now();
        for l in lines {
            self.timeline.add(l.at, found, l.text);
        }
    }

    /// Says the lines noted that happened at least a refresh ago (podman may tell a start that late),
    /// in the order they happened. Each is timed by its source (podman's start and end times,
    /// baton's `since`; else when it was found), relative to the moment the play began.
    pub(super) fn flush(&mut self) {
        let lines = self.timeline.release(now());
        self.say(lines);
    }

    /// Says every line still held: the run is over.
    pub(super) fn flush_all(&mut self) {
        let lines = self.timeline.drain();
        self.say(lines);
    }

    fn say(&mut self, lines: Vec<(Timestamp, String)>) {
        for (at, text) in lines {
            let secs = at.duration_since(self.since).as_secs_f64();
            let _ = writeln!(self.out, "{secs:>7.2}s  {text}");
        }
    }
}

/// The time now (jiff's own `Timestamp::now` needs its `std` feature, which only the `cli` feature
/// brings in through kube).
pub(super) fn now() -> Timestamp {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Timestamp::from_nanosecond(since_epoch.as_nanos() as i128).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// A child process that is killed and reaped when dropped (`podman events` never ends by itself).
pub(super) struct Reaped(pub(super) Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The run is over: every container that will run has ended (or a stop has gone through), and the
/// kubelet's phase is final.
fn settled(pod: &Value, stopped: bool) -> bool {
    let statuses = ["initContainerStatuses", "containerStatuses"]
        .iter()
        .filter_map(|k| pod.pointer(&format!("/status/{k}")).and_then(Value::as_array))
        .flatten();
    let running = statuses.clone().any(|s| s.pointer("/state/running").is_some());
    let phase = pod.pointer("/status/phase").and_then(Value::as_str);
    !running && (matches!(phase, Some("Succeeded" | "Failed")) || stopped)
}

/// Lets SIGINT and SIGTERM through to this thread again when `play` returns.
pub(super) struct Unblock(pub(super) SigSet);

impl Drop for Unblock {
    fn drop(&mut self) {
        let _ = self.0.thread_unblock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn settled_needs_no_running_container_and_a_final_phase_or_a_stop() {
        let pod = |phase: &str, state: Value| json!({"status": {"phase": phase, "containerStatuses": [{"state": state}]}});
        let ended = json!({"terminated": {"exitCode": 0}});
        let running = json!({"running": {}});
        let waiting = json!({"waiting": {}});
        assert!(settled(&pod("Succeeded", ended.clone()), false));
        assert!(!settled(&pod("Running", running.clone()), false));
        assert!(!settled(&pod("Failed", running), true));
        assert!(!settled(&pod("Pending", waiting.clone()), false));
        assert!(settled(&pod("Pending", waiting), true));
    }
}
