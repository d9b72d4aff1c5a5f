//! Watches pods and reports run-status changes: one JSON line per change (a pod event that leaves the
//! status as it was prints nothing) and, with `--annotate`, a server-side apply of the status to an
//! annotation of the pod, only when what it would write differs from what is there.
//!
//! Write rule, to keep etcd quiet: the annotation holds [`RunStatus::ended`] (the phase and the steps
//! that have terminated), so a container going from waiting to running costs nothing; nothing is
//! written before the first step ends; and a value equal to the pod's annotation, or to what this
//! watcher last wrote, is never written again. With a batch window, the first change opens the window
//! and the status at its end is written (one write per window per pod); a final phase is written at once.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::Write;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::Client;
use tokio::time::Instant;

use crate::metrics::WatchMetrics;
use crate::status::{run_status, PodRunStatus, RunStatus};
use crate::step_events::{self, PodRef, StepEvent};
use crate::Error;

/// The annotation the run status is written to.
pub const ANNOTATION: &str = "baton.dev/run-status";
/// The field manager of the server-side apply: the owner of the annotation.
pub const FIELD_MANAGER: &str = "batonctl";
/// How long a failed write waits before it is tried again; each further failure of the same pod
/// doubles it, up to [`MAX_RETRY`].
pub const RETRY: Duration = Duration::from_secs(10);
pub const MAX_RETRY: Duration = Duration::from_secs(300);
/// Which pods the watcher looks at when not told: those `batonctl inject` and the webhook labelled.
pub const DEFAULT_SELECTOR: &str = "baton.dev/injected=true";

/// Which pods to watch and what to do on a change.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The namespace to watch; `None` watches all namespaces.
    pub namespace: Option<String>,
    /// A label selector (`app=x,tier!=y`), as `kubectl -l` takes it.
    pub selector: Option<String>,
    /// Write the status to the [`ANNOTATION`] of each pod.
    pub annotate: bool,
    /// The batch window for writes; zero writes each change at once.
    pub batch: Duration,
    /// Record one Kubernetes Event on the pod for each step that fails, is skipped or loses a
    /// predecessor (see [`step_events`]).
    pub events: bool,
    /// Counted as the watcher goes (registered by the caller that serves them).
    pub metrics: WatchMetrics,
}

/// Runs until the output fails; watch errors are retried with backoff, and so is each pod's failed
/// write, on its own: one pod the API server will not let us annotate stops nothing else.
pub async fn run(client: Client, options: &Options, out: &mut (dyn Write + Send)) -> Result<(), Error> {
    let api: Api<Pod> = match &options.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let mut config = watcher::Config::default();
    if let Some(selector) = &options.selector {
        config = config.labels(selector);
    }
    let mut events = watcher::watcher(api, config).default_backoff().boxed();
    let mut tracker = Tracker::new(options.annotate, options.batch).with_events(options.events);
    let reporter =
        Reporter { controller: FIELD_MANAGER.to_string(), instance: std::env::var("POD_NAME").ok() };
    let recorder = Recorder::new(client.clone(), reporter);
    loop {
        let due = tracker.next_due();
        let event = tokio::select! {
            event = events.next() => event,
            () = sleep_until(due) => {
                for write in tracker.due(Instant::now()) {
                    apply(&client, &mut tracker, write, &options.metrics).await?;
                }
                continue;
            }
        };
        match event {
            None => return Ok(()),
            Some(Err(e)) => {
                options.metrics.restarts.inc();
                eprintln!("batonctl: watching pods failed, retrying: {e}")
            }
            Some(Ok(event)) => {
                for action in tracker.on_event(event, Instant::now()) {
                    match action {
                        Action::Print(line) => {
                            writeln!(out, "{line}")?;
                            out.flush()?;
                        }
                        Action::Write(write) => apply(&client, &mut tracker, write, &options.metrics).await?,
                        Action::Event(pod, step) => record(&recorder, &pod, &step, &options.metrics).await,
                    }
                }
                options.metrics.pods.set(tracker.pods.len() as i64);
            }
        }
    }
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The server-side apply of one annotation; a pod gone meanwhile is forgotten, other failures are
/// said and retried with backoff (a 403 too: a policy engine may refuse one pod and not the next).
async fn apply(
    client: &Client,
    tracker: &mut Tracker,
    write: PendingWrite,
    metrics: &WatchMetrics,
) -> Result<(), Error> {
    let api: Api<Pod> = Api::namespaced(client.clone(), &write.key.namespace);
    let patch = annotation_patch(&write.key, &write.value);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    match api.patch(&write.key.name, &params, &Patch::Apply(&patch)).await {
        Ok(_) => {
            metrics.patched("written");
            tracker.wrote(&write.key, write.value)
        }
        Err(e) if api_code(&e) == Some(404) => tracker.forget(&write.key),
        Err(e) => {
            metrics.patched("failed");
            let key = write.key.clone();
            let after = tracker.failed(&key, write.value, Instant::now());
            let why = match api_code(&e) {
                Some(403) => format!("the API server forbids it (grant this identity `patch` on pods): {e}"),
                _ => e.to_string(),
            };
            eprintln!("batonctl: writing the run status of pod {key} failed, retrying in {after:?}: {why}");
        }
    }
    Ok(())
}

/// Records one step's event. A failure is said and not retried: an event is a notice, and the
/// annotation still carries the step's end.
async fn record(recorder: &Recorder, pod: &PodRef, step: &StepEvent, metrics: &WatchMetrics) {
    let reference = step_events::reference(pod, &step.container);
    let published = recorder.publish(&step_events::event(step), &reference).await;
    metrics.evented(if published.is_ok() { "recorded" } else { "failed" });
    if let Err(e) = published {
        let hint = if api_code(&e) == Some(403) {
            " (grant this identity `create` on events.k8s.io events)"
        } else {
            ""
        };
        eprintln!(
            "batonctl: recording the event of step {} of pod {}/{} failed{hint}: {e}",
            step.container, pod.namespace, pod.name
        );
    }
}

fn api_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// The apply body: only the annotation, so the field manager owns nothing else of the pod.
pub fn annotation_patch(key: &PodKey, value: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": key.name,
            "namespace": key.namespace,
            "annotations": { ANNOTATION: value },
        },
    })
}

/// What the annotation should hold for a status: `None` while nothing has ended.
pub fn annotation_value(status: &RunStatus) -> Option<String> {
    let ended = status.ended();
    (!ended.steps.is_empty() || ended.phase.is_final()).then(|| ended.to_json())
}

/// A pod's namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PodKey {
    pub namespace: String,
    pub name: String,
}

impl PodKey {
    fn of(pod: &Pod) -> Self {
        PodKey {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone().unwrap_or_default(),
        }
    }
}

impl std::fmt::Display for PodKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// What the watcher should do after an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Print this JSON line.
    Print(String),
    /// Apply this annotation value now.
    Write(PendingWrite),
    /// Record this step's event on the pod.
    Event(PodRef, StepEvent),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingWrite {
    pub key: PodKey,
    pub value: String,
}

/// What the watcher knows of one pod.
struct Tracked {
    uid: Option<String>,
    status: RunStatus,
    /// The value this watcher last wrote and saw accepted.
    written: Option<String>,
    /// A write waiting for its batch window (or retry) to end.
    due: Option<(Instant, String)>,
    /// Writes refused in a row: the next retry waits longer.
    failures: u32,
    /// The steps (container names) whose event has been recorded, or was before this watcher started.
    told: BTreeSet<String>,
}

impl Tracked {
    /// A pod seen for the first time: the steps its run-status annotation already holds were told
    /// about when that annotation was written.
    fn new(uid: Option<String>, status: RunStatus, annotation: Option<&String>) -> Self {
        let told = annotation
            .and_then(|a| serde_json::from_str::<RunStatus>(a).ok())
            .map(|written| step_events::noteworthy_steps(&written))
            .unwrap_or_default();
        Tracked { uid, status, written: None, due: None, failures: 0, told }
    }
}

/// The decisions of the watcher, apart from the I/O: which lines to print and which writes to make.
pub struct Tracker {
    annotate: bool,
    batch: Duration,
    events: bool,
    pods: HashMap<PodKey, Tracked>,
    /// The pods seen since a re-list began; the others are gone once it ends.
    relisting: Option<HashSet<PodKey>>,
}

impl Tracker {
    pub fn new(annotate: bool, batch: Duration) -> Self {
        Tracker { annotate, batch, events: false, pods: HashMap::new(), relisting: None }
    }

    /// Also ask for an event per step that did not succeed ([`Action::Event`]).
    pub fn with_events(mut self, events: bool) -> Self {
        self.events = events;
        self
    }

    pub fn on_event(&mut self, event: Event<Pod>, now: Instant) -> Vec<Action> {
        match event {
            Event::Apply(pod) => self.observe(&pod, now),
            Event::InitApply(pod) => {
                if let Some(seen) = self.relisting.as_mut() {
                    seen.insert(PodKey::of(&pod));
                }
                self.observe(&pod, now)
            }
            Event::Delete(pod) => {
                self.forget(&PodKey::of(&pod));
                Vec::new()
            }
            Event::Init => {
                self.relisting = Some(HashSet::new());
                Vec::new()
            }
            Event::InitDone => {
                if let Some(seen) = self.relisting.take() {
                    self.pods.retain(|key, _| seen.contains(key));
                }
                Vec::new()
            }
        }
    }

    /// One pod as it is now: print if its status changed, write if its annotation is behind.
    pub fn observe(&mut self, pod: &Pod, now: Instant) -> Vec<Action> {
        let key = PodKey::of(pod);
        let status = run_status(pod);
        let mut actions = Vec::new();
        let uid = pod.metadata.uid.clone();
        let current = pod.metadata.annotations.as_ref().and_then(|a| a.get(ANNOTATION));
        // A pod deleted and created again under the same name is a new pod.
        let (tracked, changed) = match self.pods.entry(key.clone()) {
            Entry::Occupied(entry) if entry.get().uid == uid => {
                let tracked = entry.into_mut();
                let changed = tracked.status != status;
                tracked.status = status;
                (tracked, changed)
            }
            Entry::Occupied(mut entry) => {
                entry.insert(Tracked::new(uid, status, current));
                (entry.into_mut(), true)
            }
            Entry::Vacant(entry) => (entry.insert(Tracked::new(uid, status, current)), true),
        };
        if changed {
            let line = PodRunStatus {
                namespace: pod.metadata.namespace.clone(),
                pod: key.name.clone(),
                status: tracked.status.clone(),
            };
            actions.push(Action::Print(serde_json::to_string(&line).unwrap_or_default()));
        }
        if self.events {
            for step in step_events::due(&tracked.status, &tracked.told) {
                tracked.told.insert(step.container.clone());
                actions.push(Action::Event(PodRef::of(pod), step));
            }
        }
        if !self.annotate {
            return actions;
        }
        match annotation_value(&tracked.status) {
            Some(value) if Some(&value) != current && Some(&value) != tracked.written.as_ref() => {
                if self.batch.is_zero() || tracked.status.phase.is_final() {
                    tracked.due = None;
                    actions.push(Action::Write(PendingWrite { key, value }));
                } else {
                    let at = tracked.due.as_ref().map_or(now + self.batch, |(at, _)| *at);
                    tracked.due = Some((at, value));
                }
            }
            _ => tracked.due = None,
        }
        actions
    }

    /// The writes whose window has ended.
    pub fn due(&mut self, now: Instant) -> Vec<PendingWrite> {
        let mut writes = Vec::new();
        for (key, tracked) in &mut self.pods {
            if tracked.due.as_ref().is_some_and(|(at, _)| *at <= now) {
                if let Some((_, value)) = tracked.due.take() {
                    writes.push(PendingWrite { key: key.clone(), value });
                }
            }
        }
        writes
    }

    /// When the next window ends.
    pub fn next_due(&self) -> Option<Instant> {
        self.pods.values().filter_map(|t| t.due.as_ref().map(|(at, _)| *at)).min()
    }

    pub fn wrote(&mut self, key: &PodKey, value: String) {
        if let Some(t) = self.pods.get_mut(key) {
            t.written = Some(value);
            t.failures = 0;
        }
    }

    /// A write of `key` failed: it is tried again after [`RETRY`], doubled for each failure in a
    /// row, at most [`MAX_RETRY`] (unless a newer status is due before). Returns the wait.
    pub fn failed(&mut self, key: &PodKey, value: String, now: Instant) -> Duration {
        let Some(t) = self.pods.get_mut(key) else { return Duration::ZERO };
        let after = RETRY.saturating_mul(1 << t.failures.min(10)).min(MAX_RETRY);
        t.failures += 1;
        if t.due.is_none() {
            t.due = Some((now + after, value));
        }
        after
    }

    pub fn forget(&mut self, key: &PodKey) {
        self.pods.remove(key);
    }
}
