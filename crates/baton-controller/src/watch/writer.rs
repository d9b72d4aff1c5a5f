//! The watcher's writes to the API server, off the watch loop: each is a task that waits for one of
//! [`Limits::concurrency`] places and for the client-side rate limit, then says how it went on a
//! channel the loop reads. A slow or refusing API server so slows the writes, never the watch (whose
//! stream would otherwise back up until the API server drops it as too slow).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::Recorder;
use kube::Client;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;

use super::tracker::{PendingWrite, PodKey};
use super::{annotation_patch, FIELD_MANAGER};
use crate::metrics::WatchMetrics;
use crate::step_events::{self, PodRef, StepEvent};

/// How many writes may be in flight and how fast they may start (client-go's names: QPS and burst).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    pub concurrency: usize,
    /// Requests per second, on average.
    pub qps: f64,
    /// Requests that may start at once after a quiet time.
    pub burst: u32,
}

impl Default for Limits {
    /// Above the step ends per second of a busy cluster (2,000 pods ending a step a minute each make
    /// 33), so that a change is written within a second (docs/benchmarks.md); a sustained rate above
    /// it queues, one write per pod at most, and loses nothing.
    fn default() -> Self {
        Limits { concurrency: 8, qps: 50.0, burst: 100 }
    }
}

/// How a write ended, for the watch loop to note in its tracker.
#[derive(Debug)]
pub enum Written {
    Accepted(PendingWrite),
    /// The pod is gone (404): forget it.
    Gone(PodKey),
    /// Refused or failed; the sentence says why.
    Failed(PendingWrite, String),
}

/// Starts writes and events as tasks, within [`Limits`].
pub struct Writer {
    client: Client,
    recorder: Recorder,
    places: Arc<Semaphore>,
    rate: Arc<RateLimit>,
    metrics: WatchMetrics,
    done: mpsc::UnboundedSender<Written>,
}

impl Writer {
    /// The writer, and the channel on which each write's end comes back.
    pub fn new(
        client: Client,
        recorder: Recorder,
        limits: Limits,
        metrics: WatchMetrics,
    ) -> (Writer, mpsc::UnboundedReceiver<Written>) {
        let (done, ended) = mpsc::unbounded_channel();
        let places = Arc::new(Semaphore::new(limits.concurrency.max(1)));
        let rate = Arc::new(RateLimit::new(limits.qps, limits.burst, Instant::now()));
        (Writer { client, recorder, places, rate, metrics, done }, ended)
    }

    /// The server-side apply of one annotation, as a task.
    pub fn write(&self, write: PendingWrite) {
        let (client, places, rate, metrics, done) = (
            self.client.clone(),
            self.places.clone(),
            self.rate.clone(),
            self.metrics.clone(),
            self.done.clone(),
        );
        metrics.queued.inc();
        tokio::spawn(async move {
            let _place = places.acquire_owned().await;
            rate.wait().await;
            metrics.queued.dec();
            let written = apply(&client, write, &metrics).await;
            // The loop is gone only when the watcher stops: nothing is left to tell.
            let _ = done.send(written);
        });
    }

    /// Records one step's event, as a task within the same limits. A failure is said and not
    /// retried: an event is a notice, and the annotation still carries the step's end.
    pub fn record(&self, pod: PodRef, step: StepEvent) {
        let (recorder, places, rate, metrics) =
            (self.recorder.clone(), self.places.clone(), self.rate.clone(), self.metrics.clone());
        metrics.queued.inc();
        tokio::spawn(async move {
            let _place = places.acquire_owned().await;
            rate.wait().await;
            metrics.queued.dec();
            let reference = step_events::reference(&pod, &step.container);
            let published = recorder.publish(&step_events::event(&step), &reference).await;
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
        });
    }
}

/// The server-side apply of one annotation; a pod gone meanwhile is [`Written::Gone`], other
/// failures are said by the loop and retried with backoff (a 403 too: a policy engine may refuse one
/// pod and not the next).
async fn apply(client: &Client, write: PendingWrite, metrics: &WatchMetrics) -> Written {
    let api: Api<Pod> = Api::namespaced(client.clone(), &write.key.namespace);
    let patch = annotation_patch(&write.key, &write.value);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    match api.patch(&write.key.name, &params, &Patch::Apply(&patch)).await {
        Ok(_) => {
            metrics.patched("written");
            Written::Accepted(write)
        }
        Err(e) if api_code(&e) == Some(404) => Written::Gone(write.key),
        Err(e) => {
            metrics.patched("failed");
            let why = match api_code(&e) {
                Some(403) => format!("the API server forbids it (grant this identity `patch` on pods): {e}"),
                _ => e.to_string(),
            };
            Written::Failed(write, why)
        }
    }
}

fn api_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// A token bucket of `burst` tokens refilled at `qps` per second. Each request takes a token, or
/// reserves the next one and waits for it, so requests start in the order they asked.
#[derive(Debug)]
pub struct RateLimit {
    qps: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl RateLimit {
    pub fn new(qps: f64, burst: u32, now: Instant) -> RateLimit {
        let burst = f64::from(burst.max(1));
        RateLimit { qps: qps.max(0.001), burst, state: Mutex::new((burst, now)) }
    }

    /// Takes a token at `now`: how long to wait before using it.
    pub fn reserve(&self, now: Instant) -> Duration {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (tokens, since) = *state;
        let refilled =
            (tokens + now.saturating_duration_since(since).as_secs_f64() * self.qps).min(self.burst);
        let left = refilled - 1.0;
        *state = (left, now.max(since));
        if left >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-left / self.qps)
        }
    }

    pub async fn wait(&self) {
        let wait = self.reserve(Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_goes_at_once_then_one_request_per_interval() {
        let start = Instant::now();
        let rate = RateLimit::new(10.0, 3, start);
        let waits: Vec<u128> = (0..6).map(|_| rate.reserve(start).as_millis()).collect();
        assert_eq!(waits, [0, 0, 0, 100, 200, 300]);
    }

    #[test]
    fn tokens_come_back_with_time_up_to_the_burst() {
        let start = Instant::now();
        let rate = RateLimit::new(10.0, 2, start);
        assert_eq!(rate.reserve(start), Duration::ZERO);
        assert_eq!(rate.reserve(start), Duration::ZERO);
        // A quiet minute refills two tokens, not 600.
        let later = start + Duration::from_secs(60);
        let waits: Vec<u128> = (0..4).map(|_| rate.reserve(later).as_millis()).collect();
        assert_eq!(waits, [0, 0, 100, 200]);
    }
}
