//! Watches pods and reports run-status changes: one JSON line per change (a pod event that leaves the
//! status as it was prints nothing) and, with `--annotate`, a server-side apply of the status to an
//! annotation of the pod, only when what it would write differs from what is there.
//!
//! Write rule, to keep etcd quiet: the annotation holds [`RunStatus::ended`] (the phase and the steps
//! that have terminated), so a container going from waiting to running costs nothing; nothing is
//! written before the first step ends; and a value equal to the pod's annotation, or to what this
//! watcher last wrote, is never written again. With a batch window, the first change opens the window
//! and the status at its end is written (one write per window per pod); a final phase is written at once.
//!
//! The loop only decides ([`tracker`]); the writes run beside it ([`writer`]), a bounded number at a
//! time and at a bounded rate, at most one per pod. A relist (after a restart of the watch, or the
//! API server's 410 Gone: kube's watcher lists again) rewrites nothing that is already there.

mod tracker;
mod writer;

use std::io::Write;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::watcher;
use kube::runtime::WatchStreamExt;
use kube::Client;
use tokio::time::Instant;

pub use tracker::{Action, PendingWrite, PodKey, Tracker};
pub use writer::{Limits, RateLimit};
use writer::{Writer, Written};

use crate::metrics::WatchMetrics;
use crate::status::RunStatus;
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
    /// How many writes may be in flight and how fast they may start.
    pub limits: Limits,
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
    let (writer, mut written) = Writer::new(client, recorder, options.limits, options.metrics.clone());
    loop {
        let due = tracker.next_due();
        let event = tokio::select! {
            // The ends of writes first: each frees its pod for the next.
            biased;
            Some(written) = written.recv() => {
                settle(&mut tracker, written);
                continue;
            }
            () = sleep_until(due) => {
                for write in tracker.due(Instant::now()) {
                    writer.write(write);
                }
                continue;
            }
            event = events.next() => event,
        };
        match event {
            None => return Ok(()),
            Some(Err(e)) => {
                options.metrics.restarts.inc();
                eprintln!("batonctl: watching pods failed, retrying: {e}")
            }
            Some(Ok(event)) => {
                options.metrics.updates.inc();
                for action in tracker.on_event(event, Instant::now()) {
                    match action {
                        Action::Print(line) => {
                            writeln!(out, "{line}")?;
                            out.flush()?;
                        }
                        Action::Write(write) => writer.write(write),
                        Action::Event(pod, step) => writer.record(pod, step),
                    }
                }
                options.metrics.pods.set(tracker.len() as i64);
            }
        }
    }
}

/// Notes how a write ended: a refusal is said, with when it is tried again.
fn settle(tracker: &mut Tracker, written: Written) {
    match written {
        Written::Accepted(write) => tracker.wrote(&write.key, write.value),
        Written::Gone(key) => tracker.forget(&key),
        Written::Failed(write, why) => {
            let after = tracker.failed(&write.key, write.value, Instant::now());
            eprintln!(
                "batonctl: writing the run status of pod {} failed, retrying in {after:?}: {why}",
                write.key
            );
        }
    }
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
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
