//! The live view: one line per change, from two sources — the Pod JSON (a container started, a
//! container ended with its reason and exit code) and the `state.json` files of the baton folder (a
//! step waits for something, runs, is paused). Pure: the caller reads, this decides what to say.

use std::collections::BTreeMap;

use baton_contract::state::{Phase, StepState};
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

use super::pod_status::Reading;
use crate::termination::{self, Message};

/// The longest note a line carries; the run status at the end has the full text.
const NOTE: usize = 120;

/// One line of the view, and when the change happened (when the source says).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub at: Option<Timestamp>,
    pub text: String,
}

/// What has been said so far.
#[derive(Debug, Default)]
pub struct View {
    width: usize,
    containers: BTreeMap<String, &'static str>,
    steps: BTreeMap<String, String>,
}

impl View {
    /// A view of a pod with these containers (for the column width).
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let containers: BTreeMap<String, &'static str> =
            names.into_iter().map(|n| (n.to_string(), "waiting")).collect();
        let width = containers.keys().map(|n| n.chars().count()).max().unwrap_or(0);
        View { width, containers, steps: BTreeMap::new() }
    }

    fn line(&self, at: Option<Timestamp>, name: &str, text: &str) -> Line {
        Line { at, text: format!("{name:<w$}  {text}", w = self.width) }
    }

    /// Lines for the containers whose state changed since the last call, in spec order (init
    /// containers first), timed by podman's record of the start and the end (`reading`).
    pub fn pod(&mut self, pod: &Value, reading: &Reading) -> Vec<Line> {
        let pod_name = pod.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
        let time = |name: &str, end: bool| {
            let i = reading.container(pod_name, name)?;
            let t = if end { i.state.finished_at.as_deref() } else { i.state.started_at.as_deref() }?;
            t.parse::<Timestamp>().ok().filter(|t| t.as_second() > 0)
        };
        let statuses = ["initContainerStatuses", "containerStatuses"]
            .iter()
            .filter_map(|k| pod.pointer(&format!("/status/{k}")).and_then(Value::as_array))
            .flatten();
        let mut by_name: BTreeMap<&str, &Value> = BTreeMap::new();
        for s in statuses {
            by_name.insert(s["name"].as_str().unwrap_or_default(), s);
        }
        let order = ["initContainers", "containers"]
            .iter()
            .filter_map(|k| pod.pointer(&format!("/spec/{k}")).and_then(Value::as_array))
            .flatten()
            .filter_map(|c| c["name"].as_str());
        let mut lines = Vec::new();
        for name in order {
            let Some(status) = by_name.get(name) else { continue };
            let state = &status["state"];
            let now = if state.get("terminated").is_some() {
                "terminated"
            } else if state.get("running").is_some() {
                "running"
            } else {
                "waiting"
            };
            let before = self.containers.insert(name.to_string(), now).unwrap_or("waiting");
            if before == now {
                continue;
            }
            let started = time(name, false);
            if before == "waiting"
                && now != "waiting"
                && state.pointer("/terminated/reason") != Some(&"StartError".into())
            {
                lines.push(self.line(started, name, "started"));
            }
            if now == "terminated" {
                // podman notes the start once runc returns, which can be after a quick command ended.
                let end = time(name, true).map(|end| started.map_or(end, |s| s.max(end)));
                lines.push(self.line(end, name, &ended(&state["terminated"])));
            }
        }
        lines
    }

    /// Lines for the steps whose baton state changed since the last call. `states` holds every
    /// living step's `state.json`; a step that has none any more has ended (its container's end says
    /// how). The state of a step whose container is not known to have started yet waits for the next
    /// call, so that a step never runs before its container started.
    pub fn steps(&mut self, states: &[StepState]) -> Vec<Line> {
        let mut lines = Vec::new();
        for s in states {
            if self.containers.get(&s.step) == Some(&"waiting") {
                continue;
            }
            let text = match s.state {
                Phase::Waiting => {
                    let mut t = format!("waiting for {}", join_or(&s.waiting_for, "its start"));
                    if !s.not_started.is_empty() {
                        t.push_str(&format!(" (not started yet: {})", s.not_started.join(", ")));
                    }
                    t
                }
                Phase::Running => "running".to_string(),
                Phase::Paused => format!(
                    "paused at a breakpoint (exit code {}): baton resume {}",
                    s.exit_code.map_or("-".to_string(), |c| c.to_string()),
                    s.step
                ),
            };
            if self.steps.get(&s.step) != Some(&text) {
                self.steps.insert(s.step.clone(), text.clone());
                lines.push(self.line(s.since.parse().ok(), &s.step, &text));
            }
        }
        lines
    }
}

fn join_or(items: &[String], none: &str) -> String {
    if items.is_empty() {
        none.to_string()
    } else {
        items.join(", ")
    }
}

/// `ended REASON, exit code N`, and what the step's record or message says beyond it.
fn ended(t: &Value) -> String {
    let code = t["exitCode"].as_i64().map_or("-".to_string(), |c| c.to_string());
    let reason = t["reason"].as_str().unwrap_or("-");
    let mut text = format!("ended {reason}, exit code {code}");
    match termination::read(t["message"].as_str().unwrap_or("")) {
        Message::Record(r) => {
            // What the step says beyond the container's end: its own reason, the command's exit code
            // when it differs, the error of a step that did not succeed.
            let step_code = r.exit_code.map(|c| c.to_string());
            let same = r.reason.to_string() == reason && step_code.as_deref() == Some(code.as_str());
            if !same {
                text.push_str(&format!(" (step {}", r.reason));
                if let Some(c) = step_code.filter(|c| *c != code) {
                    text.push_str(&format!(", exit code {c}"));
                }
                if let Some(e) = r.error.filter(|_| !r.reason.is_success()) {
                    text.push_str(&format!(": {}", short(&e)));
                }
                text.push(')');
            }
        }
        Message::Truncated(_) => text.push_str(" (step record cut by the kubelet)"),
        Message::Text(m) if code != "0" => text.push_str(&format!(": {}", short(&m))),
        Message::Unreadable(why) => text.push_str(&format!(": {}", short(&why))),
        _ => {}
    }
    text
}

fn short(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= NOTE {
        return flat;
    }
    let mut cut: String = flat.chars().take(NOTE - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::play::pod_status::{ContainerInspect, InspectState};
    use serde_json::json;

    fn pod(a: Value, b: Value) -> Value {
        json!({
            "spec": {"containers": [{"name": "fetch"}, {"name": "build"}]},
            "status": {"containerStatuses": [{"name": "build", "state": b}, {"name": "fetch", "state": a}]},
        })
    }

    #[test]
    fn one_line_per_container_change_in_spec_order() {
        let mut view = View::new(["fetch", "build"]);
        let reading = Reading::default();
        let waiting = json!({"waiting": {"reason": "ContainerCreating"}});
        assert!(view.pod(&pod(waiting.clone(), waiting.clone()), &reading).is_empty());
        let running = json!({"running": {"startedAt": "2026-01-01T00:00:00Z"}});
        assert_eq!(
            texts(view.pod(&pod(running.clone(), running.clone()), &reading)),
            ["fetch  started", "build  started"]
        );
        assert!(view.pod(&pod(running.clone(), running.clone()), &reading).is_empty());
        let record = r#"{"baton":1,"step":"fetch","exitCode":0,"reason":"Completed","startedAt":"2026-01-01T00:00:01.000Z","finishedAt":"2026-01-01T00:00:02.000Z","results":{}}"#;
        let done = json!({"terminated": {"exitCode": 0, "reason": "Completed", "message": record}});
        assert_eq!(texts(view.pod(&pod(done, running), &reading)), ["fetch  ended Completed, exit code 0"]);
    }

    fn texts(lines: Vec<Line>) -> Vec<String> {
        lines.into_iter().map(|l| l.text).collect()
    }

    #[test]
    fn lines_carry_podmans_times() {
        let mut view = View::new(["fetch", "build"]);
        let inspect = |name: &str, started: &str, finished: &str| ContainerInspect {
            name: format!("p-{name}"),
            state: InspectState {
                status: "exited".into(),
                started_at: Some(started.into()),
                finished_at: Some(finished.into()),
                ..InspectState::default()
            },
            ..ContainerInspect::default()
        };
        let reading = Reading {
            containers: vec![
                inspect("fetch", "2026-01-01T00:00:01.5Z", "2026-01-01T00:00:02.25Z"),
                inspect("build", "0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"),
            ],
            ..Reading::default()
        };
        let mut p =
            pod(json!({"terminated": {"exitCode": 0, "reason": "Completed"}}), json!({"running": {}}));
        p["metadata"] = json!({"name": "p"});
        let lines = view.pod(&p, &reading);
        let at: Vec<Option<String>> = lines.iter().map(|l| l.at.map(|t| t.to_string())).collect();
        assert_eq!(at, [Some("2026-01-01T00:00:01.5Z".into()), Some("2026-01-01T00:00:02.25Z".into()), None]);
    }

    #[test]
    fn an_end_says_the_steps_own_reason_and_error() {
        let skipped = r#"{"baton":1,"step":"b","exitCode":null,"reason":"Skipped","error":"step a ended Failed","startedAt":null,"finishedAt":"2026-01-01T00:00:02.000Z","results":{}}"#;
        assert_eq!(
            ended(&json!({"exitCode": 0, "reason": "Completed", "message": skipped})),
            "ended Completed, exit code 0 (step Skipped: step a ended Failed)"
        );
        let failed = r#"{"baton":1,"step":"t","exitCode":3,"reason":"Failed","startedAt":"2026-01-01T00:00:01.000Z","finishedAt":"2026-01-01T00:00:02.000Z","results":{}}"#;
        assert_eq!(
            ended(&json!({"exitCode": 3, "reason": "Error", "message": failed})),
            "ended Error, exit code 3 (step Failed)"
        );
        let timeout = r#"{"baton":1,"step":"t","exitCode":124,"reason":"TimedOut","error":"the command ran longer than 1s","startedAt":"2026-01-01T00:00:01.000Z","finishedAt":"2026-01-01T00:00:02.000Z","results":{}}"#;
        assert_eq!(
            ended(&json!({"exitCode": 125, "reason": "Error", "message": timeout})),
            "ended Error, exit code 125 (step TimedOut, exit code 124: the command ran longer than 1s)"
        );
        assert_eq!(
            ended(&json!({"exitCode": 128, "reason": "StartError", "message": "exec: no such file"})),
            "ended StartError, exit code 128: exec: no such file"
        );
        assert_eq!(ended(&json!({"exitCode": 137, "reason": "OOMKilled"})), "ended OOMKilled, exit code 137");
    }

    #[test]
    fn a_container_that_cannot_run_never_started() {
        let mut view = View::new(["fetch", "build"]);
        let cannot = json!({"terminated": {"exitCode": 128, "reason": "StartError", "message": "no"}});
        let waiting = json!({"waiting": {}});
        assert_eq!(
            texts(view.pod(&pod(cannot, waiting), &Reading::default())),
            ["fetch  ended StartError, exit code 128: no"]
        );
    }

    #[test]
    fn step_states_are_said_when_they_change() {
        let mut view = View::new(["build"]);
        let state = |phase: Phase, waiting: &[&str]| StepState {
            baton: 1,
            step: "build".into(),
            state: phase,
            since: "2026-01-01T00:00:00.000Z".into(),
            pid: 1,
            child_pid: None,
            waiting_for: waiting.iter().map(|s| s.to_string()).collect(),
            not_started: vec![],
            exit_code: None,
        };
        // Not a word before its container started.
        assert!(view.steps(&[state(Phase::Waiting, &["step fetch"])]).is_empty());
        let running = json!({"running": {}});
        let p = json!({"spec": {"containers": [{"name": "build"}]}, "status": {"containerStatuses": [{"name": "build", "state": running}]}});
        assert_eq!(texts(view.pod(&p, &Reading::default())), ["build  started"]);
        let lines = view.steps(&[state(Phase::Waiting, &["step fetch"])]);
        assert_eq!(texts(lines.clone()), ["build  waiting for step fetch"]);
        assert_eq!(lines[0].at.map(|t| t.to_string()).as_deref(), Some("2026-01-01T00:00:00Z"));
        assert!(view.steps(&[state(Phase::Waiting, &["step fetch"])]).is_empty());
        assert_eq!(texts(view.steps(&[state(Phase::Running, &[])])), ["build  running"]);
    }
}
