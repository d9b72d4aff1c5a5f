//! The watcher's decisions, apart from the I/O: which lines to print, which writes to make and when.
//!
//! What it keeps per pod is small and fixed (a few hundred bytes at 2,000 pods): the pod's UID, a
//! digest of its run status and of the value last written, the write waiting for its window and the
//! names of the steps already told about. The decoded status is dropped after each event: it is
//! computed again from the next one.

use std::collections::hash_map::{DefaultHasher, Entry};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher::Event;
use tokio::time::Instant;

use super::{annotation_value, ANNOTATION, MAX_RETRY, RETRY};
use crate::status::{run_status, PodRunStatus, RunStatus};
use crate::step_events::{self, PodRef, StepEvent};

/// A pod's namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PodKey {
    pub namespace: String,
    pub name: String,
}

impl PodKey {
    pub(super) fn of(pod: &Pod) -> Self {
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
    /// Apply this annotation value now; the pod has no other write in flight until
    /// [`Tracker::wrote`], [`Tracker::failed`] or [`Tracker::forget`] says how it went.
    Write(PendingWrite),
    /// Record this step's event on the pod.
    Event(PodRef, StepEvent),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingWrite {
    pub key: PodKey,
    pub value: String,
}

/// A digest that stands for a status or an annotation value: equal values, equal digests (in one
/// process), and no copy of the value kept.
type Digest = u64;

fn digest(text: &str) -> Digest {
    let mut hasher = DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

fn status_digest(status: &RunStatus) -> Digest {
    digest(&serde_json::to_string(status).unwrap_or_default())
}

/// What the watcher knows of one pod.
struct Tracked {
    uid: Option<String>,
    status: Digest,
    /// The value this watcher last wrote and saw accepted.
    written: Option<Digest>,
    /// The value being written now (at most one write per pod is in flight).
    sending: Option<Digest>,
    /// A write waiting for its batch window, its retry or the write in flight to end.
    due: Option<(Instant, String)>,
    /// Writes refused in a row: the next retry waits longer.
    failures: u32,
    /// The steps (container names) whose event has been recorded, or was before this watcher started.
    told: BTreeSet<String>,
}

impl Tracked {
    /// A pod seen for the first time: the steps its run-status annotation already holds were told
    /// about when that annotation was written.
    fn new(uid: Option<String>, status: Digest, annotation: Option<&String>) -> Self {
        let told = annotation
            .and_then(|a| serde_json::from_str::<RunStatus>(a).ok())
            .map(|written| step_events::noteworthy_steps(&written))
            .unwrap_or_default();
        Tracked { uid, status, written: None, sending: None, due: None, failures: 0, told }
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

    /// How many pods it holds.
    pub fn len(&self) -> usize {
        self.pods.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pods.is_empty()
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
        let digest_now = status_digest(&status);
        let mut actions = Vec::new();
        let uid = pod.metadata.uid.clone();
        let current = pod.metadata.annotations.as_ref().and_then(|a| a.get(ANNOTATION));
        // A pod deleted and created again under the same name is a new pod.
        let (tracked, changed) = match self.pods.entry(key.clone()) {
            Entry::Occupied(entry) if entry.get().uid == uid => {
                let tracked = entry.into_mut();
                let changed = tracked.status != digest_now;
                tracked.status = digest_now;
                (tracked, changed)
            }
            Entry::Occupied(mut entry) => {
                entry.insert(Tracked::new(uid, digest_now, current));
                (entry.into_mut(), true)
            }
            Entry::Vacant(entry) => (entry.insert(Tracked::new(uid, digest_now, current)), true),
        };
        if self.events {
            for step in step_events::due(&status, &tracked.told) {
                tracked.told.insert(step.container.clone());
                actions.push(Action::Event(PodRef::of(pod), step));
            }
        }
        let value = if self.annotate { annotation_value(&status) } else { None };
        let is_final = status.phase.is_final();
        if changed {
            let line =
                PodRunStatus { namespace: pod.metadata.namespace.clone(), pod: key.name.clone(), status };
            actions.insert(0, Action::Print(serde_json::to_string(&line).unwrap_or_default()));
        }
        if !self.annotate {
            return actions;
        }
        match value {
            Some(value)
                if Some(&value) != current
                    && ![tracked.written, tracked.sending].contains(&Some(digest(&value))) =>
            {
                let at_once = self.batch.is_zero() || is_final;
                if at_once && tracked.sending.is_none() {
                    tracked.due = None;
                    tracked.sending = Some(digest(&value));
                    actions.push(Action::Write(PendingWrite { key, value }));
                } else {
                    // Written when the window ends, or as soon as the write in flight has.
                    let window = if at_once { now } else { now + self.batch };
                    let at = tracked.due.as_ref().map_or(window, |(at, _)| (*at).min(window));
                    tracked.due = Some((at, value));
                }
            }
            _ => tracked.due = None,
        }
        actions
    }

    /// The writes whose window has ended, of pods with no write in flight; each is in flight now.
    pub fn due(&mut self, now: Instant) -> Vec<PendingWrite> {
        let mut writes = Vec::new();
        for (key, tracked) in &mut self.pods {
            if tracked.sending.is_none() && tracked.due.as_ref().is_some_and(|(at, _)| *at <= now) {
                if let Some((_, value)) = tracked.due.take() {
                    tracked.sending = Some(digest(&value));
                    writes.push(PendingWrite { key: key.clone(), value });
                }
            }
        }
        writes
    }

    /// When the next window ends (of a pod with no write in flight: that one waits for its answer).
    pub fn next_due(&self) -> Option<Instant> {
        self.pods
            .values()
            .filter(|t| t.sending.is_none())
            .filter_map(|t| t.due.as_ref().map(|(at, _)| *at))
            .min()
    }

    pub fn wrote(&mut self, key: &PodKey, value: String) {
        if let Some(t) = self.pods.get_mut(key) {
            t.written = Some(digest(&value));
            t.sending = None;
            t.failures = 0;
            if t.due.as_ref().is_some_and(|(_, due)| *due == value) {
                t.due = None;
            }
        }
    }

    /// A write of `key` failed: it is tried again after [`RETRY`], doubled for each failure in a
    /// row, at most [`MAX_RETRY`] (unless a newer status is due before). Returns the wait.
    pub fn failed(&mut self, key: &PodKey, value: String, now: Instant) -> Duration {
        let Some(t) = self.pods.get_mut(key) else { return Duration::ZERO };
        let after = RETRY.saturating_mul(1 << t.failures.min(10)).min(MAX_RETRY);
        t.failures += 1;
        t.sending = None;
        match t.due.as_mut() {
            // A newer value waits: it goes no earlier than the retry would.
            Some((at, _)) => *at = (*at).max(now + after),
            None => t.due = Some((now + after, value)),
        }
        after
    }

    pub fn forget(&mut self, key: &PodKey) {
        self.pods.remove(key);
    }
}
