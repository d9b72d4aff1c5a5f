//! Kubernetes Events for steps that did not succeed: one per step, on the pod, so that `kubectl
//! describe pod` and event-based alerting show which step failed, was skipped or lost a
//! predecessor, with the step's own sentence.
//!
//! Which steps: a terminated step that counts as a failure for the run (baton's `Failed`,
//! `TimedOut`, `CannotRun`, `ResultsError`, `PredecessorLost`, the kubelet's `OOMKilled`, `Error`,
//! …) or that was `Skipped`. Once: the watcher remembers the steps it has told about, and a watcher
//! that starts again takes the steps already in the pod's run-status annotation as told (it wrote
//! both together).

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::runtime::events::{Event, EventType};

use crate::status::{RunStatus, State, StepStatus};

/// The reason of every event this module makes is the step's own reason; the action is this.
pub const ACTION: &str = "StepEnded";
/// The most bytes of a note the API server takes (1 kB); longer sentences are cut there.
const NOTE_LIMIT: usize = 1024;

/// One event to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepEvent {
    /// The container, as the event's `fieldPath` names it (`spec.containers{NAME}`).
    pub container: String,
    pub reason: String,
    pub note: String,
}

/// Whether `step` deserves an event.
fn noteworthy(step: &StepStatus) -> bool {
    step.state == State::Terminated
        && (step.succeeded == Some(false) || step.reason.as_deref() == Some("Skipped"))
}

/// The steps of `status` that deserve an event, by container name.
pub fn noteworthy_steps(status: &RunStatus) -> BTreeSet<String> {
    status.steps.iter().filter(|s| noteworthy(s)).map(|s| s.name.clone()).collect()
}

/// The events `status` calls for that `told` (container names) does not hold yet.
pub fn due(status: &RunStatus, told: &BTreeSet<String>) -> Vec<StepEvent> {
    status
        .steps
        .iter()
        .filter(|s| noteworthy(s) && !told.contains(&s.name))
        .map(|s| StepEvent { container: s.name.clone(), reason: reason(s), note: note(s) })
        .collect()
}

fn reason(step: &StepStatus) -> String {
    let reason = step.reason.clone().unwrap_or_else(|| "Failed".to_string());
    // PascalCase, at most 128 characters, as the Events API asks.
    reason.chars().filter(char::is_ascii_alphanumeric).take(128).collect()
}

/// "step NAME ended REASON with exit code N: SENTENCE", cut to the API's limit.
fn note(step: &StepStatus) -> String {
    let name = step.step.as_deref().unwrap_or(&step.name);
    let reason = step.reason.as_deref().unwrap_or("without success");
    let mut note = match step.exit_code {
        Some(code) => format!("step {name} ended {reason} with exit code {code}"),
        None => format!("step {name} ended {reason}"),
    };
    if let Some(why) = step.error.as_deref().filter(|e| !e.is_empty()) {
        note.push_str(": ");
        note.push_str(why);
    }
    if note.len() > NOTE_LIMIT {
        let mut cut = NOTE_LIMIT - 3;
        while !note.is_char_boundary(cut) {
            cut -= 1;
        }
        note.truncate(cut);
        note.push_str("...");
    }
    note
}

/// The event as kube's recorder takes it.
pub fn event(step: &StepEvent) -> Event {
    Event {
        type_: EventType::Warning,
        reason: step.reason.clone(),
        note: Some(step.note.clone()),
        action: ACTION.to_string(),
        secondary: None,
    }
}

/// The pod, with the container as `fieldPath` (as the kubelet names containers in its events), so
/// that two steps' events are two events, not one event counted twice.
pub fn reference(pod: &PodRef, container: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".to_string()),
        kind: Some("Pod".to_string()),
        name: Some(pod.name.clone()),
        namespace: Some(pod.namespace.clone()),
        uid: pod.uid.clone(),
        field_path: Some(format!("spec.containers{{{container}}}")),
        ..ObjectReference::default()
    }
}

/// What an event needs of its pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodRef {
    pub namespace: String,
    pub name: String,
    pub uid: Option<String>,
}

impl PodRef {
    pub fn of(pod: &Pod) -> PodRef {
        PodRef {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone().unwrap_or_default(),
            uid: pod.metadata.uid.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{Kind, Phase, Source};

    fn step(name: &str, reason: &str, succeeded: bool, error: Option<&str>) -> StepStatus {
        StepStatus {
            name: name.into(),
            kind: Kind::Container,
            step: Some(name.into()),
            state: State::Terminated,
            source: Source::Baton,
            succeeded: Some(succeeded),
            exit_code: Some(if succeeded { 0 } else { 2 }),
            signal: None,
            reason: Some(reason.into()),
            started_at: None,
            finished_at: None,
            results: Default::default(),
            error: error.map(str::to_string),
            message: None,
            restarts: 0,
            usage: None,
            waiting_for: Vec::new(),
        }
    }

    #[test]
    fn failed_and_skipped_steps_are_told_once_and_completed_ones_never() {
        let status = RunStatus {
            phase: Phase::Failed,
            steps: vec![
                step("build", "Completed", true, None),
                step("test", "Failed", false, Some("exit status 2")),
                step("publish", "Skipped", true, Some("step test did not succeed")),
            ],
            results: Default::default(),
            warnings: vec![],
        };
        let events = due(&status, &BTreeSet::new());
        let names: Vec<&str> = events.iter().map(|e| e.container.as_str()).collect();
        assert_eq!(names, ["test", "publish"]);
        assert_eq!(events[0].reason, "Failed");
        assert_eq!(events[0].note, "step test ended Failed with exit code 2: exit status 2");
        assert!(due(&status, &noteworthy_steps(&status)).is_empty(), "told steps are not told again");
    }

    #[test]
    fn a_long_sentence_is_cut_to_the_api_limit_on_a_character_boundary() {
        let long = "é".repeat(2000);
        let s = step("x", "Failed", false, Some(&long));
        let n = note(&s);
        assert!(n.len() <= NOTE_LIMIT && n.ends_with("..."), "{}", n.len());
    }
}
