//! `batonctl status -w`'s frame: the table of every pod shown, then what happened, one line per step
//! start and end in the order it happened (the [`timeline`](crate::timeline) `batonctl play` uses),
//! whatever order the pods and steps are listed in.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use crate::status::{Kind, PodRunStatus, Source, State, StepStatus};
use crate::table;
use crate::timeline::Timeline;

/// One frame: every pod's table, then `happened:` and its lines.
pub fn frame(runs: &[PodRunStatus]) -> String {
    let mut out = String::new();
    for (i, run) in runs.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&table::render(run));
    }
    let lines = happened(runs);
    if !lines.is_empty() {
        out.push_str("happened:\n");
        for l in lines {
            out.push_str("  ");
            out.push_str(&l);
            out.push('\n');
        }
    }
    out
}

/// Each step's start and end, oldest first, timed by baton's record (else the kubelet's): `TIME
/// STEP  started`, `TIME  STEP  ended REASON, exit code N` (no code for a step that never ran). With
/// several pods, STEP is `POD/STEP`. A running regular container has no record yet, and baton in it
/// may still be waiting for the steps before it (the containers of a pod start at once): its line says
/// only what the kubelet knows, `TIME  STEP  container started`, until the record gives the step's
/// start. An init container runs alone: its container's start is its start.
pub fn happened(runs: &[PodRunStatus]) -> Vec<String> {
    let mut timeline = Timeline::new(Duration::ZERO);
    let name = |run: &PodRunStatus, step: &StepStatus| {
        if runs.len() > 1 {
            format!("{}/{}", run.pod, step.name)
        } else {
            step.name.clone()
        }
    };
    let width =
        runs.iter().flat_map(|r| r.status.steps.iter().map(move |s| name(r, s).chars().count())).max();
    let width = width.unwrap_or(0);
    for run in runs {
        for step in &run.status.steps {
            let who = format!("{:<width$}", name(run, step));
            if let Some(at) = time(step.started_at.as_deref()) {
                let waits = step.kind == Kind::Container && step.source == Source::Kubelet;
                let what =
                    if waits && step.state == State::Running { "container started" } else { "started" };
                timeline.add(Some(at), at, format!("{who}  {what}"));
            }
            if step.state == State::Terminated {
                if let Some(at) = time(step.finished_at.as_deref()) {
                    let reason = step.reason.as_deref().unwrap_or("-");
                    // A step that never ran (Skipped, Cancelled) has no exit code to say.
                    let code = step.exit_code.map_or(String::new(), |c| format!(", exit code {c}"));
                    timeline.add(Some(at), at, format!("{who}  ended {reason}{code}"));
                }
            }
        }
    }
    timeline.drain().into_iter().map(|(at, text)| format!("{}  {}", clock(at), text.trim_end())).collect()
}

fn time(text: Option<&str>) -> Option<Timestamp> {
    text?.parse().ok()
}

/// `16:00:33.100`: the time of day (UTC), to the millisecond.
fn clock(at: Timestamp) -> String {
    k8s_openapi::jiff::fmt::strtime::format("%H:%M:%S%.3f", at).unwrap_or_else(|_| at.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{Phase, RunStatus};

    fn step(name: &str, started: Option<&str>, finished: Option<&str>) -> StepStatus {
        let mut s: StepStatus = serde_json::from_value(serde_json::json!({
            "name": name, "kind": "container", "state": "waiting", "source": "baton"
        }))
        .unwrap();
        s.started_at = started.map(str::to_string);
        if let Some(f) = finished {
            s.state = State::Terminated;
            s.finished_at = Some(f.to_string());
            s.exit_code = Some(0);
            s.reason = Some("Completed".into());
        } else if started.is_some() {
            s.state = State::Running;
        }
        assert_eq!((s.kind, s.source), (Kind::Container, Source::Baton));
        s
    }

    fn run(pod: &str, steps: Vec<StepStatus>) -> PodRunStatus {
        PodRunStatus {
            namespace: Some("ci".into()),
            pod: pod.into(),
            status: RunStatus { phase: Phase::Running, steps, results: Default::default(), warnings: vec![] },
        }
    }

    #[test]
    fn steps_are_said_in_the_order_they_happened_not_the_order_listed() {
        // lint is listed before checkout (as the kubelet sorts by name) but ran after it.
        let r = run(
            "job-x",
            vec![
                step("lint", Some("2026-12-06T12:00:05.200Z"), Some("2026-12-06T12:00:06Z")),
                step("checkout", Some("2026-12-06T12:00:01Z"), Some("2026-12-06T12:00:05.100Z")),
                step("test", Some("2026-12-06T12:00:05.150Z"), None),
            ],
        );
        assert_eq!(
            happened(&[r]),
            [
                "12:00:01.000  checkout  started",
                "12:00:05.100  checkout  ended Completed, exit code 0",
                "12:00:05.150  test      started",
                "12:00:05.200  lint      started",
                "12:00:06.000  lint      ended Completed, exit code 0",
            ]
        );
    }

    #[test]
    fn a_running_container_without_a_record_is_only_a_started_container() {
        // As the kubelet reports a three-step pod while its first step runs: every container started
        // at once, and baton in package waits for test, so the step itself has not started.
        let mut waiting = step("package", Some("2026-12-06T09:19:15Z"), None);
        waiting.source = Source::Kubelet;
        let done = step("test", Some("2026-12-06T09:19:16.202Z"), Some("2026-12-06T09:19:16.219Z"));
        let mut init = step("baton-init", Some("2026-12-06T09:19:14Z"), None);
        (init.kind, init.source) = (Kind::Init, Source::Kubelet);
        assert_eq!(
            happened(&[run("failure-x", vec![init, done, waiting])]),
            [
                "09:19:14.000  baton-init  started",
                "09:19:15.000  package     container started",
                "09:19:16.202  test        started",
                "09:19:16.219  test        ended Completed, exit code 0",
            ]
        );
    }

    #[test]
    fn several_pods_interleave_and_name_their_pod() {
        let first =
            run("job-x-1", vec![step("build", Some("2026-12-06T12:00:01Z"), Some("2026-12-06T12:00:03Z"))]);
        let retry = run("job-x-2", vec![step("build", Some("2026-12-06T12:00:02Z"), None)]);
        let text = frame(&[first, retry]);
        assert!(text.starts_with("pod ci/job-x-1: Running\n"), "{text}");
        assert!(text.contains("\npod ci/job-x-2: Running\n"), "{text}");
        assert!(
            text.ends_with(
                "happened:\n  12:00:01.000  job-x-1/build  started\n  12:00:02.000  job-x-2/build  started\n  \
                 12:00:03.000  job-x-1/build  ended Completed, exit code 0\n"
            ),
            "{text}"
        );
    }
}
