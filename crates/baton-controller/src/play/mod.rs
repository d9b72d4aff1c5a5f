//! `batonctl play`: a pod that uses baton run as a cluster would, on podman, without a cluster. The
//! kubelet's part that podman does not play is played here (docs/play.md):
//!
//! - [`manifest`] (pure): the one Pod, Job or CronJob of a manifest, as the Pod to run;
//! - [`rewrite`] (pure): the kubelet's set-up written into the Pod for `podman kube play`;
//! - [`message`] (pure): termination messages cut as the kubelet cuts them;
//! - [`pod_status`] (pure): the Pod JSON, in the kubelet's shape, from `podman inspect`;
//! - [`view`] (pure): the live view's lines;
//! - [`podman`] and [`folder`]: the I/O — podman commands, the baton folder read from this host;
//! - [`play`] (here): set up, play, watch, read back, clean up.

pub mod folder;
pub mod manifest;
pub mod message;
pub mod pod_status;
pub mod podman;
pub mod rewrite;
pub mod view;

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;
use nix::sys::signal::{SigSet, Signal};
use serde_json::Value;

use manifest::ManifestError;
use pod_status::{ContainerInspect, Reading};
use podman::{Podman, PodmanError};
use rewrite::Container;
use view::View;

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

/// The sentence for an image podman does not have.
fn missing_image(image: &str) -> String {
    let how = if image.starts_with("localhost/baton:") {
        format!("build it in baton's repository with `make static && podman build -t {image} .`")
    } else if image.starts_with("localhost/busybox-step:") {
        "build it in baton's repository with `e2e/demo.sh` (it builds both images of the examples) or from \
         e2e/busybox-step.Containerfile"
            .to_string()
    } else {
        format!("pull or build it first (`podman pull {image}`): batonctl play pulls nothing")
    };
    format!("the image {image} is not in podman's image store: {how}")
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

enum Event {
    /// A line of `podman events`.
    Podman(String),
    /// `podman kube play` returned; its output.
    Played(String),
    Signal(Signal),
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
        pending: Vec::new(),
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
                run.flush();
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

/// Checks what can be checked before anything is made: podman runs, the pod's name is free, every
/// image is there. Returns podman's version.
fn check(podman: &Podman, m: &manifest::Manifest) -> Result<String, Error> {
    let version = podman.version()?;
    if podman.pod_exists(&m.name)? {
        return Err(Error::PodExists(m.name.clone()));
    }
    let mut images: Vec<String> = Vec::new();
    for c in rewrite::containers(&m.pod) {
        if !images.contains(&c.image) {
            images.push(c.image);
        }
    }
    let mut missing = Vec::new();
    for image in &images {
        if !podman.image_exists(image)? {
            missing.push(missing_image(image));
        }
    }
    if missing.is_empty() {
        Ok(version)
    } else {
        Err(Error::MissingImages(missing))
    }
}

/// What the kubelet's set-up made.
struct SetUp {
    dir: PathBuf,
    /// `<dir>/containers`: the termination-message files.
    host: PathBuf,
    play_file: PathBuf,
    /// The emptyDirs' folders on this host.
    roots: Vec<PathBuf>,
    cleanup: Cleanup,
}

/// The kubelet's set-up: a fresh 0666 termination-message file per container, fresh 0777 emptyDirs,
/// and the Pod podman plays.
fn set_up(
    podman: &Podman,
    m: &manifest::Manifest,
    containers: &[Container],
    opts: &Options,
    out: &mut dyn Write,
) -> Result<SetUp, Error> {
    let dir = work_dir(opts.work_dir.as_deref(), &m.name)?;
    let host = dir.join("containers");
    for c in containers {
        let file = rewrite::termination_file(&host, &c.name);
        std::fs::create_dir_all(file.parent().unwrap_or(&host))
            .map_err(io(format!("create {}", host.display())))?;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&file)
            .map_err(io(format!("create {}", file.display())))?;
        f.set_permissions(std::fs::Permissions::from_mode(0o666))
            .map_err(io(format!("chmod {}", file.display())))?;
    }
    let play_file = dir.join("play.json");
    write_json(&play_file, &rewrite::for_podman(&m.pod, &host))?;

    let mut cleanup =
        Cleanup { podman: podman.clone(), pod: m.name.clone(), volumes: Vec::new(), keep: opts.keep };
    let mut roots = Vec::new();
    for v in rewrite::empty_dirs(&m.pod) {
        let name = rewrite::volume_name(&m.name, &v);
        if podman.volume_exists(&name)? {
            podman.volume_rm(&name)?;
            let _ = writeln!(out, "batonctl: replaced the volume {name} an earlier run left");
        }
        let root = podman.volume_create(&name)?;
        cleanup.volumes.push(name);
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o777))
            .map_err(io(format!("chmod {}", root.display())))?;
        roots.push(root);
    }
    Ok(SetUp { dir, host, play_file, roots, cleanup })
}

/// The watch of a playing pod: what it has said, what is going on.
struct Run<'a> {
    watch: Watch<'a>,
    view: View,
    /// When the play began, for podman's and baton's times.
    since: Timestamp,
    start: Instant,
    grace: u64,
    /// podman kube play's output, once it returned.
    play_log: Option<String>,
    /// `podman pod kill` runs (a signal, the deadline, the end of the grace period).
    stops: Vec<Child>,
    /// When the grace period of a stop ends.
    kill_at: Option<Instant>,
    /// podman has news: ask it.
    dirty: bool,
    /// Lines found since the last were said.
    pending: Vec<view::Line>,
    out: &'a mut dyn Write,
}

impl Run<'_> {
    fn on(&mut self, event: Event, names: &[String], dir: &Path) -> Result<(), Error> {
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
    fn stop(&mut self, why: &str) -> Result<(), Error> {
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
    fn on_tick(&mut self) -> Result<(), Error> {
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
    fn refresh(&mut self, dir: &Path) -> Result<Option<Value>, Error> {
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

    fn note(&mut self, lines: Vec<view::Line>) {
        self.pending.extend(lines);
    }

    /// Says the lines noted. Each is timed by its source (podman's start and end times, baton's
    /// `since`), relative to the moment the play began; lines found together are said in the order
    /// they happened.
    fn flush(&mut self) {
        let mut lines = std::mem::take(&mut self.pending);
        lines.sort_by_key(|l| l.at);
        for l in lines {
            let secs = l
                .at
                .map_or(self.start.elapsed().as_secs_f64(), |t| t.duration_since(self.since).as_secs_f64());
            let _ = writeln!(self.out, "{secs:>7.2}s  {}", l.text);
        }
    }
}

/// The time now (jiff's own `Timestamp::now` needs its `std` feature, which only the `cli` feature
/// brings in through kube).
fn now() -> Timestamp {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Timestamp::from_nanosecond(since_epoch.as_nanos() as i128).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// A child process that is killed and reaped when dropped (`podman events` never ends by itself).
struct Reaped(Child);

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

/// The pod's state as podman and the host files tell it.
struct Watch<'a> {
    podman: &'a Podman,
    pod: &'a Value,
    name: &'a str,
    containers: &'a [Container],
    host: &'a Path,
    reading: Reading,
}

impl Watch<'_> {
    fn refresh(&mut self) -> Result<(), Error> {
        let names: Vec<String> =
            self.containers.iter().map(|c| format!("{}-{}", self.name, c.name)).collect();
        self.reading.containers = self.podman.inspect(&names)?;
        if self.reading.pod.id.is_empty() {
            if let Ok(p) = self.podman.pod_inspect(self.name) {
                self.reading.pod = p;
            }
        }
        for c in self.containers {
            if self.reading.messages.contains_key(&c.name) {
                continue; // an ended container's message does not change
            }
            let Some(i) = self.reading.container(self.name, &c.name).cloned() else { continue };
            if let Some(m) = self.message(c, &i)? {
                self.reading.messages.insert(c.name.clone(), m);
            }
        }
        Ok(())
    }

    /// The message of an ended container as the kubelet reads it (before the pod-wide cut).
    fn message(&self, c: &Container, i: &ContainerInspect) -> Result<Option<Vec<u8>>, Error> {
        let ended = matches!(i.state.status.as_str(), "exited" | "stopped")
            && pod_status::secs(i.state.started_at.as_deref()).is_some();
        if !ended {
            return Ok(None);
        }
        let file = rewrite::termination_file(self.host, &c.name);
        let tail = read_tail(&file, message::FILE_LIMIT).map_err(io(format!("read {}", file.display())))?;
        let logs = || self.podman.logs(&i.name, message::LOG_LINES);
        Ok(Some(message::read(tail, c.fallback_to_logs, i.state.exit_code, logs)?))
    }

    fn pod_json(&self) -> Value {
        pod_status::pod_json(self.pod, &self.reading)
    }
}

/// The last `n` bytes of a file (a missing file is empty), without following a link.
fn read_tail(file: &Path, n: usize) -> std::io::Result<Vec<u8>> {
    let mut f = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(file)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(n as u64)))?;
    let mut bytes = Vec::new();
    f.take(n as u64).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// podman's error among its play output.
fn last_error(log: &str) -> String {
    log.lines()
        .rev()
        .find(|l| l.starts_with("Error: "))
        .or_else(|| log.lines().rev().find(|l| !l.trim().is_empty()))
        .unwrap_or("no output")
        .trim_start_matches("Error: ")
        .to_string()
}

fn write_json(file: &Path, value: &Value) -> Result<(), Error> {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    std::fs::write(file, text + "\n").map_err(io(format!("write {}", file.display())))
}

/// The work folder: the one asked for, or a new one in $TMPDIR.
fn work_dir(asked: Option<&Path>, pod: &str) -> Result<PathBuf, Error> {
    if let Some(dir) = asked {
        std::fs::create_dir_all(dir).map_err(io(format!("create {}", dir.display())))?;
        if std::fs::read_dir(dir).map_err(io(format!("read {}", dir.display())))?.next().is_some() {
            return Err(Error::Io {
                what: format!("use {} as the work folder", dir.display()),
                source: std::io::Error::other("it is not empty; give an empty or new folder"),
            });
        }
        return Ok(dir.to_path_buf());
    }
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    for n in 0..100u32 {
        let dir = std::env::temp_dir().join(format!(
            "batonctl-play-{pod}-{}-{}",
            stamp.as_secs(),
            std::process::id() + n
        ));
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
                    .map_err(io(format!("chmod {}", dir.display())))?;
                return Ok(dir);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io(format!("create {}", dir.display()))(e)),
        }
    }
    Err(io("create a work folder in $TMPDIR")(std::io::Error::other("every name tried exists")))
}

/// Removes the pod and its volumes when dropped, unless they are kept.
#[derive(Debug)]
struct Cleanup {
    podman: Podman,
    pod: String,
    volumes: Vec<String>,
    keep: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        if self.podman.pod_exists(&self.pod).unwrap_or(false) {
            let _ = self.podman.pod_rm(&self.pod);
        }
        for v in &self.volumes {
            let _ = self.podman.volume_rm(v);
        }
    }
}

/// Lets SIGINT and SIGTERM through to this thread again when `play` returns.
struct Unblock(SigSet);

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
    fn a_missing_image_says_how_to_get_it() {
        assert_eq!(
            missing_image("localhost/baton:0.1.0"),
            "the image localhost/baton:0.1.0 is not in podman's image store: build it in baton's repository \
             with `make static && podman build -t localhost/baton:0.1.0 .`"
        );
        assert!(missing_image("localhost/busybox-step:dev").contains("e2e/busybox-step.Containerfile"));
        assert!(
            missing_image("docker.io/library/alpine:3").contains("podman pull docker.io/library/alpine:3")
        );
    }

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

    #[test]
    fn the_tail_of_a_file_is_read_without_the_rest() {
        let file = std::env::temp_dir().join(format!("baton-play-tail-{}", std::process::id()));
        std::fs::write(&file, "x".repeat(5000) + "end").unwrap();
        let tail = read_tail(&file, 4096).unwrap();
        assert_eq!(tail.len(), 4096);
        assert!(tail.ends_with(b"xend"));
        std::fs::remove_file(&file).unwrap();
        assert!(read_tail(&file, 4096).unwrap().is_empty());
    }
}
