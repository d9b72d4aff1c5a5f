//! Pod → run status: what each container's wrapper wrote back, with the kubelet's own view wherever
//! baton's record is missing or unusable. Pure: no I/O, no clock, and the same Pod always gives the same
//! status, so comparing two statuses tells whether anything worth saying changed.

use std::collections::BTreeMap;

use baton_contract::message::kubelet_share;
use baton_contract::record::Usage;
use k8s_openapi::api::core::v1::{ContainerStateTerminated, ContainerStatus, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::{Deserialize, Serialize};

use crate::termination::{self, Message};

/// The run status of one pod: its steps in spec order, the run's phase and its merged results.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunStatus {
    pub phase: Phase,
    /// Init containers (sidecars included) in spec order, then the regular containers in spec order.
    /// Ephemeral containers are debugging tools, not steps: they are left out.
    pub steps: Vec<StepStatus>,
    /// Every terminated step's results in one map; when two steps write the same name, the later step
    /// in `steps` order wins (each step keeps its own value in its entry, and `warnings` says so).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub results: BTreeMap<String, String>,
    /// Facts about the run as a whole: the pod's own reason (eviction, deadline), overridden results.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The run's phase, derived from its steps (see [`run_status`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    Pending,
    Running,
    Succeeded,
    Failed,
}

impl Phase {
    /// Whether the run has ended for good.
    pub fn is_final(self) -> bool {
        matches!(self, Phase::Succeeded | Phase::Failed)
    }

    /// The phase of several runs taken together: Failed if one failed, else still going if one is,
    /// else Succeeded (no run: Succeeded).
    pub fn worst(phases: impl IntoIterator<Item = Phase>) -> Phase {
        phases.into_iter().fold(Phase::Succeeded, |worst, p| match (worst, p) {
            (Phase::Failed, _) | (_, Phase::Failed) => Phase::Failed,
            (Phase::Succeeded, p) => p,
            (w, _) => w,
        })
    }
}

/// What kind of container a step runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// An init container that runs to completion before the others start.
    Init,
    /// A native sidecar: an init container with `restartPolicy: Always`. It does not decide the phase.
    Sidecar,
    /// A regular container.
    Container,
}

/// A container's state as the kubelet reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Waiting,
    Running,
    Terminated,
}

/// Who said what a step's `reason` means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// baton's exit record (its reasons: Completed, Failed, Skipped, …).
    Baton,
    /// The kubelet (its reasons: Completed, Error, OOMKilled, StartError, ContainerCannotRun, CrashLoopBackOff, …).
    Kubelet,
}

/// One container of the pod.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepStatus {
    /// The container's name.
    pub name: String,
    pub kind: Kind,
    /// The step name baton's record gives, when it gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    pub state: State,
    pub source: Source,
    /// Terminated steps only: whether the step counts as a success for the run's phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub succeeded: Option<bool>,
    /// baton's exit code of the command (null when it never ran), else the kubelet's exit code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The signal the kubelet reports, when it reports one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// baton's startedAt (when the command really started, after waiting; null when it never ran),
    /// else the kubelet's container start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub results: BTreeMap<String, String>,
    /// One sentence (or a log tail) when something went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Text another program left in the termination message of a step that succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub restarts: u32,
    /// What the command cost (CPU, largest resident set), from baton's record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// A running container whose baton still waits: the `--after` steps that have not ended.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting_for: Vec<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl StepStatus {
    fn new(name: &str, kind: Kind) -> Self {
        StepStatus {
            name: name.to_string(),
            kind,
            step: None,
            state: State::Waiting,
            source: Source::Kubelet,
            succeeded: None,
            exit_code: None,
            signal: None,
            reason: None,
            started_at: None,
            finished_at: None,
            results: BTreeMap::new(),
            error: None,
            message: None,
            restarts: 0,
            usage: None,
            waiting_for: Vec::new(),
        }
    }
}

/// A run status with the pod it belongs to: the form `batonctl` prints, one JSON object a line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodRunStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub pod: String,
    #[serde(flatten)]
    pub status: RunStatus,
}

impl PodRunStatus {
    pub fn of(pod: &Pod) -> Self {
        PodRunStatus {
            namespace: pod.metadata.namespace.clone(),
            pod: pod.metadata.name.clone().unwrap_or_default(),
            status: run_status(pod),
        }
    }
}

/// The number of containers the kubelet divides the message budget among: init (sidecars included),
/// regular and ephemeral containers of the spec.
pub fn spec_containers(pod: &Pod) -> usize {
    pod.spec.as_ref().map_or(0, |s| {
        s.init_containers.as_ref().map_or(0, Vec::len)
            + s.containers.len()
            + s.ephemeral_containers.as_ref().map_or(0, Vec::len)
    })
}

/// Reads a pod's run status.
///
/// Phase rule, over init containers and regular containers (sidecars do not count):
/// - `Failed` when the pod's own phase is Failed (eviction, deadline, a failed init container), or when
///   every counted step has terminated and at least one did not succeed;
/// - `Succeeded` when every counted step has terminated and all succeeded;
/// - `Running` while some counted step has not terminated but some container has started;
/// - `Pending` before any container has started.
pub fn run_status(pod: &Pod) -> RunStatus {
    let share = Share::of(pod);
    let status = pod.status.as_ref();
    let init_statuses = status.and_then(|s| s.init_container_statuses.as_deref()).unwrap_or_default();
    let statuses = status.and_then(|s| s.container_statuses.as_deref()).unwrap_or_default();

    let mut steps = Vec::new();
    if let Some(spec) = pod.spec.as_ref() {
        for c in spec.init_containers.iter().flatten() {
            let kind = if c.restart_policy.as_deref() == Some("Always") { Kind::Sidecar } else { Kind::Init };
            steps.push(step_status(&c.name, kind, find(init_statuses, &c.name), share));
        }
        for c in &spec.containers {
            steps.push(step_status(&c.name, Kind::Container, find(statuses, &c.name), share));
        }
    }
    // A status without a spec entry should not exist; show it rather than lose it.
    for (list, kind) in [(init_statuses, Kind::Init), (statuses, Kind::Container)] {
        for cs in list {
            if !steps.iter().any(|s| s.name == cs.name) {
                steps.push(step_status(&cs.name, kind, Some(cs), share));
            }
        }
    }

    crate::waiting::mark(pod, &mut steps);

    let mut warnings = Vec::new();
    let pod_phase = status.and_then(|s| s.phase.as_deref());
    // A pod-level reason (Evicted, DeadlineExceeded, …) is something no step says.
    let why: Vec<&str> =
        [status.and_then(|s| s.reason.as_deref()), status.and_then(|s| s.message.as_deref())]
            .into_iter()
            .flatten()
            .filter(|s| !s.is_empty())
            .collect();
    if !why.is_empty() {
        warnings.push(format!("the pod is {}: {}", pod_phase.unwrap_or("in no phase"), why.join(": ")));
    }
    let (results, overridden) = merge_results(&steps);
    warnings.extend(overridden);
    RunStatus { phase: phase(&steps, pod_phase), steps, results, warnings }
}

fn find<'a>(statuses: &'a [ContainerStatus], name: &str) -> Option<&'a ContainerStatus> {
    statuses.iter().find(|s| s.name == name)
}

fn phase(steps: &[StepStatus], pod_phase: Option<&str>) -> Phase {
    if pod_phase == Some("Failed") {
        return Phase::Failed;
    }
    let counted: Vec<&StepStatus> = steps.iter().filter(|s| s.kind != Kind::Sidecar).collect();
    let ended = |s: &&StepStatus| s.state == State::Terminated;
    if !counted.is_empty() && counted.iter().all(ended) {
        return if counted.iter().all(|s| s.succeeded == Some(true)) {
            Phase::Succeeded
        } else {
            Phase::Failed
        };
    }
    if steps.iter().any(|s| s.state != State::Waiting) {
        Phase::Running
    } else {
        Phase::Pending
    }
}

/// The flat results map (later step wins) and one warning per name whose value a later step replaced.
fn merge_results(steps: &[StepStatus]) -> (BTreeMap<String, String>, Vec<String>) {
    let mut merged: BTreeMap<String, (String, &str)> = BTreeMap::new();
    let mut warnings = Vec::new();
    for step in steps.iter().filter(|s| s.state == State::Terminated) {
        for (name, value) in &step.results {
            if let Some((old, by)) = merged.insert(name.clone(), (value.clone(), &step.name)) {
                if old != *value {
                    warnings.push(format!(
                        "result {name} is written by steps {by} and {}; the run keeps {}'s value",
                        step.name, step.name
                    ));
                }
            }
        }
    }
    (merged.into_iter().map(|(k, (v, _))| (k, v)).collect(), warnings)
}

/// The kubelet's per-container share of the message budget in this pod.
#[derive(Clone, Copy)]
struct Share {
    containers: usize,
    bytes: usize,
}

impl Share {
    fn of(pod: &Pod) -> Self {
        let containers = spec_containers(pod);
        Share { containers, bytes: kubelet_share(containers) }
    }

    fn truncated_sentence(self) -> String {
        format!(
            "message truncated by the kubelet: the pod has {} containers, so each gets {} bytes; \
             pass --message-limit {}",
            self.containers, self.bytes, self.bytes
        )
    }
}

fn step_status(name: &str, kind: Kind, cs: Option<&ContainerStatus>, share: Share) -> StepStatus {
    let mut step = StepStatus::new(name, kind);
    let Some(cs) = cs else { return step };
    step.restarts = u32::try_from(cs.restart_count).unwrap_or(0);
    let state = cs.state.as_ref();
    if let Some(t) = state.and_then(|s| s.terminated.as_ref()) {
        terminated(&mut step, t, share);
        return step;
    }
    if let Some(r) = state.and_then(|s| s.running.as_ref()) {
        step.state = State::Running;
        step.started_at = r.started_at.as_ref().map(rfc3339);
    } else if let Some(w) = state.and_then(|s| s.waiting.as_ref()) {
        step.reason = w.reason.clone();
        step.error = w.message.clone().filter(|m| !m.is_empty());
    }
    // A restarted container: say how its last run ended, which the current state no longer shows.
    if let Some(last) = cs.last_state.as_ref().and_then(|s| s.terminated.as_ref()) {
        let mut before = StepStatus::new(name, kind);
        terminated(&mut before, last, share);
        let mut sentence = format!(
            "restarted {} times; the last run ended {} with exit code {}",
            step.restarts,
            before.reason.as_deref().unwrap_or("without a reason"),
            before.exit_code.map_or("null".to_string(), |c| c.to_string()),
        );
        if let Some(why) = before.error {
            sentence.push_str(": ");
            sentence.push_str(&why);
        }
        step.error = Some(match step.error.take() {
            Some(now) => format!("{now}; {sentence}"),
            None => sentence,
        });
    }
    step
}

/// Fills a terminated step from baton's record when the message is one, else from the kubelet.
fn terminated(step: &mut StepStatus, t: &ContainerStateTerminated, share: Share) {
    step.state = State::Terminated;
    step.exit_code = Some(t.exit_code);
    step.signal = t.signal.filter(|&n| n != 0);
    step.reason = t.reason.clone();
    step.started_at = t.started_at.as_ref().map(rfc3339);
    step.finished_at = t.finished_at.as_ref().map(rfc3339);
    let exited_zero = t.exit_code == 0;
    step.succeeded = Some(exited_zero);
    match termination::read(t.message.as_deref().unwrap_or("")) {
        Message::Empty => {
            if !exited_zero {
                step.error = Some(without_message(t));
            }
        }
        Message::Text(text) => {
            if exited_zero {
                step.message = Some(text);
            } else {
                step.error = Some(text);
            }
        }
        Message::Record(r) => {
            step.source = Source::Baton;
            step.succeeded = Some(r.reason.is_success());
            step.step = r.step;
            step.exit_code = r.exit_code;
            step.reason = Some(r.reason.to_string());
            step.started_at = r.started_at;
            step.finished_at = Some(r.finished_at);
            step.results = r.results;
            step.error = r.error;
            step.usage = r.usage;
        }
        Message::Truncated(p) => {
            // Whatever arrived is shown, but the step fails: its record, and maybe its results, are lost.
            step.succeeded = Some(false);
            if let Some(reason) = p.reason {
                step.source = Source::Baton;
                step.reason = Some(reason.to_string());
                step.exit_code = p.exit_code;
                step.started_at = p.started_at;
                step.finished_at = p.finished_at.or(step.finished_at.take());
            }
            step.step = p.step;
            step.results = p.results;
            step.usage = p.usage;
            let mut sentence = share.truncated_sentence();
            if step.results.is_empty() {
                sentence.push_str(" (the step's results were lost)");
            }
            if let Some(earlier) = p.error {
                sentence = format!("{sentence}; the record's own error: {earlier}");
            }
            step.error = Some(sentence);
        }
        Message::Unreadable(why) => {
            step.succeeded = Some(false);
            step.error = Some(why);
        }
    }
}

/// The sentence for a failed container that left no message: the kubelet's view is all there is.
fn without_message(t: &ContainerStateTerminated) -> String {
    let reason = t.reason.as_deref().unwrap_or("no reason");
    let code = t.exit_code;
    let signal = t.signal.filter(|&n| n > 0);
    let how = match (signal, code) {
        (Some(n), _) => format!("exit code {code}, signal {n} ({})", signal_name(n)),
        (None, 129..=192) => {
            format!("exit code {code} (128 + {}: killed by a signal)", signal_name(code - 128))
        }
        (None, _) => format!("exit code {code}"),
    };
    let mut sentence = format!("no termination message; the kubelet reports {reason}, {how}");
    if signal == Some(9) || code == 137 {
        sentence.push_str(
            "; SIGKILL leaves a wrapper no time to write its record (out of memory, or the grace period ended)",
        );
    }
    sentence
}

fn signal_name(n: i32) -> String {
    baton_contract::signal::short_name(n).map_or_else(|| format!("signal {n}"), |s| format!("SIG{s}"))
}

/// The kubelet's own form: RFC 3339, UTC, whole seconds.
fn rfc3339(t: &Time) -> String {
    k8s_openapi::jiff::fmt::strtime::format("%Y-%m-%dT%H:%M:%SZ", t.0).unwrap_or_else(|_| t.0.to_string())
}

impl RunStatus {
    /// The part of the status that only grows as steps end: the phase, the terminated steps, the
    /// results and warnings. This is what the watcher writes to the pod, so waiting → running
    /// transitions cost no writes.
    pub fn ended(&self) -> RunStatus {
        RunStatus {
            phase: self.phase,
            steps: self.steps.iter().filter(|s| s.state == State::Terminated).cloned().collect(),
            results: self.results.clone(),
            warnings: self.warnings.clone(),
        }
    }

    /// Compact JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names_cover_the_table_and_beyond() {
        assert_eq!(signal_name(9), "SIGKILL");
        assert_eq!(signal_name(15), "SIGTERM");
        assert_eq!(signal_name(31), "SIGSYS");
        assert_eq!(signal_name(0), "signal 0");
        assert_eq!(signal_name(64), "signal 64");
        assert_eq!(signal_name(i32::MIN), format!("signal {}", i32::MIN));
    }

    #[test]
    fn a_pod_without_spec_or_status_is_pending() {
        let status = run_status(&Pod::default());
        assert_eq!(status.phase, Phase::Pending);
        assert!(status.steps.is_empty());
    }
}
