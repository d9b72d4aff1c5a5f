//! `batonctl play`: a pod that uses baton run as a cluster would, on podman, without a cluster. The
//! kubelet's part that podman does not play is played here (docs/play.md):
//!
//! - [`manifest`] (pure): the one Pod, Job or CronJob of a manifest, as the Pod to run;
//! - [`rewrite`] (pure): the kubelet's set-up written into the Pod for `podman kube play`;
//! - [`message`] (pure): termination messages cut as the kubelet cuts them;
//! - [`pod_status`] (pure): the Pod JSON, in the kubelet's shape, from `podman inspect`;
//! - [`view`] (pure): the live view's lines;
//! - [`podman`] and [`folder`]: the I/O — podman commands, the baton folder read from this host;
//! - `setup`: the checks before anything is made, the kubelet's set-up, the clean-up;
//! - `observe`: the pod's state as podman and the host files tell it;
//! - `run`: the event loop — podman's events, signals, stops, the lines said;
//! - [`play`] (here): set up, play, watch, read back, clean up.

pub mod folder;
pub mod manifest;
pub mod message;
mod observe;
pub mod pod_status;
pub mod podman;
pub mod rewrite;
mod run;
mod setup;
pub mod view;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, Signal};
use serde_json::Value;

use manifest::ManifestError;
use observe::Watch;
use pod_status::Reading;
use podman::{Podman, PodmanError};
use run::{now, Event, Reaped, Run, Unblock};
use setup::{check, set_up, write_json, Cleanup};
use view::View;

use crate::timeline::Timeline;

/// How often the baton folder is looked at for the live view.
const TICK: Duration = Duration::from_millis(100);
/// podman is asked for the containers' states on every event, and at least this often.
const REFRESH: Duration = Duration::from_secs(2);
/// The kubelet's default `terminationGracePeriodSeconds`.
const DEFAULT_GRACE: u64 = 30;

/// What to play and how.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Play the pod under this name instead of its own.
    pub name: Option<String>,
    /// Keep the pod, its volumes and the work folder for a post-mortem.
    pub keep: bool,
    /// Where the Pod JSON and the termination-message files go (default: a new folder in $TMPDIR).
    pub work_dir: Option<PathBuf>,
    pub podman: Podman,
}

/// A played pod. Dropping it removes the pod and its volumes (unless they are kept), so that the run
/// status can be shown first.
#[derive(Debug)]
pub struct Played {
    /// The Pod JSON in the kubelet's shape.
    pub pod: Value,
    /// Where it was written.
    pub pod_json: PathBuf,
    _cleanup: Cleanup,
}

/// Why a pod could not be played. Each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Podman(#[from] PodmanError),
    #[error("{}", .0.join("; "))]
    MissingImages(Vec<String>),
    #[error(
        "a pod named {0} exists in podman already (kept by an earlier run?): remove it with \
         `podman pod rm -f {0}`, or play this one under another name with --name"
    )]
    PodExists(String),
    #[error("cannot {what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error("podman kube play did not start pod {pod}: {why} (podman's output: {log})")]
    NotPlayed { pod: String, why: String, log: String },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

/// Where podman's settings come from, when `batonctl play` chooses them: `flag` (--containers-conf)
/// first; else none when `CONTAINERS_CONF` is set (podman reads it); else `e2e/containers.conf` of
/// the baton checkout `batonctl` was built in, when there is one.
pub fn containers_conf(flag: Option<PathBuf>, env_set: bool, exe: Option<&Path>) -> Option<PathBuf> {
    if flag.is_some() {
        return flag;
    }
    if env_set {
        return None;
    }
    exe?.ancestors().skip(1).map(|dir| dir.join("e2e").join("containers.conf")).find(|conf| {
        conf.is_file() && conf.parent().and_then(Path::parent).is_some_and(|r| r.join("Cargo.toml").is_file())
    })
}

/// Plays the pod of `text` (YAML or JSON) and returns its Pod JSON once every container has ended.
/// The live view and notes go to `out`, one line per change. Reads top-down: check, set up, start,
/// watch, read back.
pub fn play(text: &str, source: &str, opts: &Options, out: &mut dyn Write) -> Result<Played, Error> {
    let m = manifest::read(text, opts.name.as_deref())?;
    for note in &m.notes {
        let _ = writeln!(out, "batonctl: {source}: {note}");
    }
    let podman = &opts.podman;
    let version = check(podman, &m)?;
    let containers = rewrite::containers(&m.pod);
    let set_up = set_up(podman, &m, &containers, opts, out)?;

    let init = containers.iter().filter(|c| c.init).count();
    let regular = containers.len() - init;
    let _ = writeln!(
        out,
        "batonctl: playing pod {} from {source} ({regular} container{}{}) on podman {version}{}",
        m.name,
        if regular == 1 { "" } else { "s" },
        if init > 0 { format!(", {init} init") } else { String::new() },
        podman.containers_conf.as_ref().map_or(String::new(), |c| format!(", settings from {}", c.display())),
    );

    // Signals come to a thread, as events: the first stops the pod as a deletion would, the second
    // at once. Blocked here before any thread starts, so that every thread inherits the block.
    let signals: SigSet = [Signal::SIGINT, Signal::SIGTERM].into_iter().collect();
    signals.thread_block().map_err(|e| io("block SIGINT and SIGTERM")(e.into()))?;
    let _unblock = Unblock(signals);
    let (tx, rx) = mpsc::channel();
    let signal_tx = tx.clone();
    std::thread::spawn(move || {
        while let Ok(sig) = signals.wait() {
            if signal_tx.send(Event::Signal(sig)).is_err() {
                return;
            }
        }
    });
    let since = now();
    let (events, lines) = podman.events(&since.to_string())?;
    let events = Reaped(events);
    let event_tx = tx.clone();
    std::thread::spawn(move || podman::each_line(lines, |l| event_tx.send(Event::Podman(l)).is_ok()));
    let (mut kube, mut output) = podman.kube_play(&set_up.play_file)?;
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = (&mut output).take(1 << 20).read_to_string(&mut text);
        let _ = kube.wait();
        let _ = tx.send(Event::Played(text));
    });

    let mut run = Run {
        watch: Watch {
            podman,
            pod: &m.pod,
            name: &m.name,
            containers: &containers,
            host: &set_up.host,
            reading: Reading::default(),
        },
        view: View::new(containers.iter().map(|c| c.name.as_str())),
        since,
        start: Instant::now(),
        grace: m
            .pod
            .pointer("/spec/terminationGracePeriodSeconds")
            .and_then(Value::as_u64)
            .unwrap_or(DEFAULT_GRACE),
        play_log: None,
        stops: Vec::new(),
        kill_at: None,
        dirty: false,
        timeline: Timeline::new(REFRESH),
        out,
    };
    let deadline =
        m.pod.pointer("/spec/activeDeadlineSeconds").and_then(Value::as_u64).map(Duration::from_secs);
    let names: Vec<String> = containers.iter().map(|c| format!("{}-{}", m.name, c.name)).collect();
    let mut refreshed = run.start;
    let pod = loop {
        // Every event waiting is taken before podman is asked again.
        let mut next = rx.recv_timeout(TICK).map_err(|_| ());
        while let Ok(event) = next {
            run.on(event, &names, &set_up.dir)?;
            next = rx.try_recv().map_err(|_| ());
        }
        if deadline.is_some_and(|d| run.start.elapsed() >= d) && !run.watch.reading.deadline_exceeded {
            run.watch.reading.deadline_exceeded = true;
            let secs = deadline.unwrap_or_default().as_secs();
            run.stop(&format!("activeDeadlineSeconds ({secs}) reached"))?;
        }
        run.on_tick()?;
        if run.dirty || refreshed.elapsed() >= REFRESH {
            run.dirty = false;
            refreshed = Instant::now();
            if let Some(pod) = run.refresh(&set_up.dir)? {
                run.flush_all();
                break pod;
            }
        }
        let lines = run.view.steps(&folder::states(&set_up.roots));
        run.note(lines);
        run.flush();
    };
    drop(events);
    for mut c in run.stops {
        let _ = c.wait();
    }

    let pod_json = set_up.dir.join("pod.json");
    write_json(&pod_json, &pod)?;
    let out = run.out;
    let _ = writeln!(
        out,
        "batonctl: the Pod JSON, in the kubelet's shape: {} (batonctl status -f reads it)",
        pod_json.display()
    );
    let cleanup = set_up.cleanup;
    if opts.keep {
        let volumes = &cleanup.volumes;
        let _ = writeln!(
            out,
            "batonctl: kept pod {} and its volumes [{}], and {} (remove them with: podman pod rm -f {}{})",
            m.name,
            volumes.join(", "),
            set_up.dir.display(),
            m.name,
            if volumes.is_empty() {
                String::new()
            } else {
                format!("; podman volume rm {}", volumes.join(" "))
            },
        );
    } else {
        let _ = std::fs::remove_dir_all(&set_up.host);
        let _ = std::fs::remove_file(&set_up.play_file);
    }
    Ok(Played { pod, pod_json, _cleanup: cleanup })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_conf_prefers_the_flag_then_the_environment_then_the_checkout() {
        let repo = std::env::temp_dir().join(format!("baton-play-conf-{}", std::process::id()));
        std::fs::create_dir_all(repo.join("e2e")).unwrap();
        std::fs::create_dir_all(repo.join("target/debug")).unwrap();
        std::fs::write(repo.join("e2e/containers.conf"), "").unwrap();
        std::fs::write(repo.join("Cargo.toml"), "").unwrap();
        let exe = repo.join("target/debug/batonctl");
        let flag = PathBuf::from("/etc/x.conf");
        assert_eq!(containers_conf(Some(flag.clone()), true, Some(&exe)), Some(flag));
        assert_eq!(containers_conf(None, true, Some(&exe)), None);
        assert_eq!(containers_conf(None, false, Some(&exe)), Some(repo.join("e2e/containers.conf")));
        assert_eq!(containers_conf(None, false, Some(Path::new("/usr/bin/batonctl"))), None);
        std::fs::remove_dir_all(&repo).unwrap();
    }
}
