//! `run_status` on Pod JSON in the kubelet's shape, one fixture per kind of termination message.

use baton_controller::status::{
    run_status, spec_containers, Kind, Phase, RunStatus, Source, State, StepStatus,
};
use baton_controller::watch::annotation_value;
use k8s_openapi::api::core::v1::Pod;
use serde_json::{json, Value};

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn pod(value: Value) -> Pod {
    serde_json::from_value(value).unwrap()
}

fn status_of(name: &str) -> RunStatus {
    run_status(&pod(fixture(name)))
}

fn step<'a>(status: &'a RunStatus, name: &str) -> &'a StepStatus {
    status.steps.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no step {name}"))
}

fn names(status: &RunStatus) -> Vec<&str> {
    status.steps.iter().map(|s| s.name.as_str()).collect()
}

/// The terminated state of container `name` in a fixture, to edit it.
fn terminated<'a>(pod: &'a mut Value, name: &str) -> &'a mut Value {
    let list = ["initContainerStatuses", "containerStatuses"]
        .into_iter()
        .find(|list| pod["status"][list].as_array().is_some_and(|a| a.iter().any(|s| s["name"] == name)))
        .unwrap_or_else(|| panic!("no container status {name}"));
    let statuses = pod["status"][list].as_array_mut().unwrap();
    let status = statuses.iter_mut().find(|s| s["name"] == name).unwrap();
    &mut status["state"]["terminated"]
}

#[test]
fn succeeded_steps_follow_spec_order_and_baton_times() {
    let s = status_of("succeeded");
    assert_eq!(s.phase, Phase::Succeeded);
    // The kubelet sorts statuses by name (build, fetch, push); the run keeps the spec's order.
    assert_eq!(names(&s), ["baton-init", "fetch", "build", "push"]);
    let init = step(&s, "baton-init");
    assert_eq!((init.kind, init.source, init.succeeded), (Kind::Init, Source::Kubelet, Some(true)));
    assert_eq!(init.error, None);
    let build = step(&s, "build");
    assert_eq!(build.source, Source::Baton);
    assert_eq!(build.step.as_deref(), Some("build"));
    assert_eq!(build.reason.as_deref(), Some("Completed"));
    // baton's startedAt is when the command started after waiting for fetch, not the container start.
    assert_eq!(build.started_at.as_deref(), Some("2026-11-23T16:00:36.095Z"));
    assert_eq!(build.finished_at.as_deref(), Some("2026-11-23T16:00:52.731Z"));
    assert_eq!(build.results["image"], "app.tar");
}

#[test]
fn duplicate_results_the_later_step_wins_and_is_named() {
    let s = status_of("succeeded");
    assert!(step(&s, "build").results["digest"].starts_with("sha256:1f0c"));
    assert!(step(&s, "push").results["digest"].starts_with("sha256:7e6f"));
    assert!(s.results["digest"].starts_with("sha256:7e6f"));
    assert_eq!(s.results.len(), 4);
    assert_eq!(s.warnings, ["result digest is written by steps build and push; the run keeps push's value"]);
}

#[test]
fn the_yaml_copy_reads_the_same() {
    let path = format!("{}/tests/fixtures/succeeded.yaml", env!("CARGO_MANIFEST_DIR"));
    let value: Value = serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(run_status(&pod(value)), status_of("succeeded"));
}

#[test]
fn compressed_results_are_expanded() {
    let raw = fixture("deflate");
    let message = terminated(&mut raw.clone(), "list")["message"].as_str().unwrap().to_string();
    assert!(message.contains("\"results\":{},\"resultsDeflate\":\""), "{message}");
    let s = run_status(&pod(raw));
    assert_eq!(s.phase, Phase::Succeeded);
    let list = step(&s, "list");
    assert_eq!(list.results["count"], "160");
    assert!(list.results["files"].starts_with("src/module_000/mod.rs\nsrc/module_001/mod.rs"));
    assert_eq!(list.results["files"].lines().count(), 160);
}

#[test]
fn a_message_cut_by_the_kubelet_names_the_limit_to_pass() {
    let raw = fixture("truncated");
    assert_eq!(spec_containers(&pod(raw.clone())), 10);
    let s = run_status(&pod(raw));
    let report = step(&s, "report");
    assert_eq!(report.state, State::Terminated);
    assert_eq!(report.succeeded, Some(false));
    // What arrived whole before the cut is still shown.
    assert_eq!(report.source, Source::Baton);
    assert_eq!(report.reason.as_deref(), Some("Completed"));
    assert_eq!(report.exit_code, Some(0));
    assert_eq!(report.started_at.as_deref(), Some("2026-11-23T16:00:58.001Z"));
    assert_eq!(
        report.error.as_deref(),
        Some(
            "message truncated by the kubelet: the pod has 10 containers, so each gets 1228 bytes; \
             pass --message-limit 1228 (the step's results were lost)"
        )
    );
    assert_eq!(s.phase, Phase::Failed);
}

#[test]
fn an_ephemeral_container_shrinks_every_share() {
    // 1 sidecar + 2 containers + 1 ephemeral = 4 containers: 3072 bytes each.
    let foreign = pod(fixture("foreign"));
    assert_eq!(spec_containers(&foreign), 4);
    let mut raw = fixture("succeeded");
    let message = terminated(&mut raw, "build")["message"].as_str().unwrap().to_string();
    terminated(&mut raw, "build")["message"] = json!(message[..100]);
    raw["spec"]["ephemeralContainers"] = json!([{"name": "debugger", "image": "busybox"}]);
    let s = run_status(&pod(raw));
    let error = step(&s, "build").error.clone().unwrap();
    assert!(error
        .starts_with("message truncated by the kubelet: the pod has 5 containers, so each gets 2457 bytes"));
}

#[test]
fn fallback_logs_are_the_error_text() {
    let s = status_of("fallback-logs");
    assert_eq!(s.phase, Phase::Failed);
    let test = step(&s, "test");
    assert_eq!(
        (test.source, test.exit_code, test.reason.as_deref()),
        (Source::Kubelet, Some(1), Some("Error"))
    );
    let error = test.error.as_deref().unwrap();
    assert!(error.starts_with("=== RUN   TestParse\n--- FAIL: TestParse"), "{error}");
    assert!(error.ends_with("FAIL"), "the trailing newline is dropped: {error:?}");
    assert_eq!(step(&s, "lint").succeeded, Some(true));
}

#[test]
fn an_oom_killed_wrapper_falls_back_to_the_kubelet() {
    let s = status_of("oom-killed");
    assert_eq!(s.phase, Phase::Failed);
    let build = step(&s, "build");
    assert_eq!(
        (build.source, build.exit_code, build.reason.as_deref()),
        (Source::Kubelet, Some(137), Some("OOMKilled"))
    );
    assert_eq!(build.started_at.as_deref(), Some("2026-11-23T16:00:33Z"));
    assert_eq!(
        build.error.as_deref(),
        Some(
            "no termination message; the kubelet reports OOMKilled, exit code 137 (128 + SIGKILL: killed by a \
             signal); SIGKILL leaves a wrapper no time to write its record (out of memory, or the grace period ended)"
        )
    );
    // The successors never ran: baton's record says so with null exit code and start.
    let package = step(&s, "package");
    assert_eq!(
        (package.reason.as_deref(), package.exit_code, package.started_at.as_deref()),
        (Some("PredecessorLost"), None, None)
    );
    let publish = step(&s, "publish");
    assert_eq!((publish.reason.as_deref(), publish.succeeded), (Some("Skipped"), Some(false)));
}

#[test]
fn a_sigkilled_wrapper_of_a_deleted_pod() {
    let s = status_of("sigkilled");
    assert_eq!(s.phase, Phase::Failed);
    let migrate = step(&s, "migrate");
    assert_eq!((migrate.exit_code, migrate.reason.as_deref()), (Some(137), Some("Error")));
    assert!(migrate.error.as_deref().unwrap().contains("SIGKILL"));
    assert_eq!(step(&s, "verify").reason.as_deref(), Some("Cancelled"));
}

#[test]
fn a_reported_signal_is_named() {
    let mut raw = fixture("sigkilled");
    terminated(&mut raw, "migrate")["signal"] = json!(15);
    terminated(&mut raw, "migrate")["exitCode"] = json!(143);
    let s = run_status(&pod(raw));
    let migrate = step(&s, "migrate");
    assert_eq!(migrate.signal, Some(15));
    assert_eq!(
        migrate.error.as_deref(),
        Some("no termination message; the kubelet reports Error, exit code 143, signal 15 (SIGTERM)")
    );
}

#[test]
fn containers_that_do_not_run_baton() {
    let s = status_of("foreign");
    // The ephemeral debug container is not a step.
    assert_eq!(names(&s), ["proxy", "app", "report"]);
    assert_eq!(step(&s, "proxy").kind, Kind::Sidecar);
    assert_eq!(step(&s, "proxy").state, State::Running);
    let app = step(&s, "app");
    assert_eq!((app.source, app.succeeded, app.error.as_deref()), (Source::Kubelet, Some(true), None));
    assert_eq!(
        app.message.as_deref(),
        Some(r#"[{"key":"StartedAt","value":"2026-11-23T16:00:33.512Z","type":3}]"#)
    );
    let report = step(&s, "report");
    assert_eq!((report.exit_code, report.reason.as_deref()), (Some(128), Some("ContainerCannotRun")));
    assert!(report
        .error
        .as_deref()
        .unwrap()
        .ends_with("exec: \"nope\": executable file not found in $PATH: unknown"));
    // Every counted step ended and one failed; the sidecar still running does not hold the phase.
    assert_eq!(s.phase, Phase::Failed);
}

#[test]
fn a_running_pod_and_what_its_annotation_holds() {
    let s = status_of("running");
    assert_eq!(s.phase, Phase::Running);
    assert_eq!(step(&s, "cache").kind, Kind::Sidecar);
    assert_eq!(step(&s, "build").state, State::Running);
    assert_eq!(step(&s, "build").started_at.as_deref(), Some("2026-11-23T16:00:34Z"));
    assert_eq!(s.results["commit"], "9fceb02");
    let annotation: RunStatus = serde_json::from_str(&annotation_value(&s).unwrap()).unwrap();
    assert_eq!(names(&annotation), ["baton-init", "fetch"]);
    assert_eq!(annotation.phase, Phase::Running);
}

#[test]
fn a_pending_pod_has_nothing_to_annotate() {
    let s = status_of("pending");
    assert_eq!(s.phase, Phase::Pending);
    assert!(s
        .steps
        .iter()
        .all(|s| s.state == State::Waiting && s.reason.as_deref() == Some("PodInitializing")));
    assert_eq!(annotation_value(&s), None);
}

#[test]
fn a_pod_the_kubelet_has_not_reported_yet() {
    let mut raw = fixture("pending");
    raw["status"] = json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True",
        "lastProbeTime": null, "lastTransitionTime": "2026-11-23T16:00:30Z"}], "qosClass": "BestEffort"});
    let s = run_status(&pod(raw));
    assert_eq!(s.phase, Phase::Pending);
    assert_eq!(names(&s), ["baton-init", "fetch", "build"]);
    assert!(s.steps.iter().all(|s| s.state == State::Waiting && s.reason.is_none()));
}

#[test]
fn a_failed_init_container_fails_the_run() {
    let s = status_of("init-failed");
    assert_eq!(s.phase, Phase::Failed);
    let clone = step(&s, "clone");
    assert_eq!((clone.kind, clone.exit_code, clone.succeeded), (Kind::Init, Some(128), Some(false)));
    assert!(clone.error.as_deref().unwrap().contains("fatal: repository"));
    assert_eq!(step(&s, "build").state, State::Waiting);
}

#[test]
fn an_evicted_pod_fails_with_the_pods_reason() {
    let mut raw = fixture("running");
    raw["status"]["phase"] = json!("Failed");
    raw["status"]["reason"] = json!("Evicted");
    raw["status"]["message"] = json!("The node was low on resource: ephemeral-storage.");
    let s = run_status(&pod(raw));
    assert_eq!(s.phase, Phase::Failed);
    assert_eq!(s.warnings, ["the pod is Failed: Evicted: The node was low on resource: ephemeral-storage."]);
}

#[test]
fn a_restarted_step_tells_how_its_last_run_ended() {
    let s = status_of("crashloop");
    assert_eq!(s.phase, Phase::Running);
    let flaky = step(&s, "flaky");
    assert_eq!(
        (flaky.state, flaky.reason.as_deref(), flaky.restarts),
        (State::Waiting, Some("CrashLoopBackOff"), 3)
    );
    assert_eq!(
        flaky.error.as_deref(),
        Some(
            "back-off 40s restarting failed container=flaky pod=demo-crashloop_ci(3f1c2b8e); restarted 3 times; \
             the last run ended Failed with exit code 2: the command exited with code 2"
        )
    );
}

#[test]
fn unknown_versions_and_malformed_records_fail_the_step_with_a_reason() {
    let mut raw = fixture("succeeded");
    let message =
        terminated(&mut raw, "build")["message"].as_str().unwrap().replace("\"baton\":1", "\"baton\":2");
    terminated(&mut raw, "build")["message"] = json!(message);
    terminated(&mut raw, "push")["message"] = json!(r#"{"baton":1,"step":"push","reason":"Exploded"}"#);
    let s = run_status(&pod(raw));
    assert_eq!(s.phase, Phase::Failed);
    let build = step(&s, "build");
    assert_eq!((build.source, build.succeeded, build.exit_code), (Source::Kubelet, Some(false), Some(0)));
    assert!(build.error.as_deref().unwrap().contains("version 2"));
    assert!(step(&s, "push").error.as_deref().unwrap().contains("malformed baton record"));
}

#[test]
fn every_cut_of_every_record_gives_a_failed_step_and_never_a_wrong_field() {
    let raw = fixture("succeeded");
    for name in ["fetch", "build", "push"] {
        let whole = run_status(&pod(raw.clone()));
        let whole = step(&whole, name).clone();
        let message = terminated(&mut raw.clone(), name)["message"].as_str().unwrap().to_string();
        for cut in 10..message.len() {
            let mut cut_pod = raw.clone();
            terminated(&mut cut_pod, name)["message"] = json!(message[..cut]);
            let s = run_status(&pod(cut_pod));
            let got = step(&s, name);
            assert_eq!(got.succeeded, Some(false), "{name} cut at {cut}");
            assert!(got.error.as_deref().unwrap().starts_with("message truncated by the kubelet"));
            if got.source == Source::Baton {
                assert_eq!(got.reason, whole.reason);
                assert_eq!(got.exit_code, whole.exit_code, "{name} cut at {cut}");
            }
            assert!(got.results.is_empty() || got.results == whole.results);
        }
    }
}

#[test]
fn the_json_form_is_camel_case_and_drops_empty_fields() {
    let s = status_of("oom-killed");
    let v = serde_json::to_value(&s).unwrap();
    assert_eq!(v["phase"], "Failed");
    assert_eq!(
        v["steps"][1],
        json!({"name": "build", "kind": "container", "state": "terminated", "source": "kubelet", "succeeded": false,
               "exitCode": 137, "reason": "OOMKilled", "startedAt": "2026-11-23T16:00:33Z",
               "finishedAt": "2026-11-23T16:00:50Z", "error": s.steps[1].error})
    );
    assert_eq!(
        v["steps"][2],
        json!({"name": "package", "kind": "container", "step": "package", "state": "terminated", "source": "baton",
               "succeeded": false, "reason": "PredecessorLost", "finishedAt": "2026-11-23T16:00:51.002Z",
               "error": "step build ended without writing its record: its wrapper was killed"})
    );
    assert!(v.get("results").is_none() && v.get("warnings").is_none());
    let back: RunStatus = serde_json::from_value(v).unwrap();
    assert_eq!(back, s);
}

/// The kubelet says `build` and `test` both run; `test`'s baton still waits for `build` (its
/// `--after`), and the status says so, in JSON and in the table. The annotation is unchanged: it
/// holds only the steps that ended.
#[test]
fn a_running_container_whose_after_step_has_not_ended_is_waiting_for_it() {
    let running = fixture("running");
    let status = run_status(&pod(running.clone()));
    assert_eq!(step(&status, "test").state, State::Running);
    assert_eq!(step(&status, "test").waiting_for, ["build"]);
    assert!(step(&status, "build").waiting_for.is_empty(), "fetch has ended: build runs its command");
    let json = serde_json::to_value(step(&status, "test")).unwrap();
    assert_eq!(json["waitingFor"], json!(["build"]));
    let table = baton_controller::table::render(&baton_controller::PodRunStatus::of(&pod(running.clone())));
    let row = table.lines().find(|l| l.starts_with("test ")).unwrap();
    assert!(row.contains(" waiting ") && row.ends_with("baton waits for build"), "{row}");

    // build ends: test's command runs.
    let mut ended = running;
    let statuses = ended["status"]["containerStatuses"].as_array_mut().unwrap();
    let build = statuses.iter_mut().find(|s| s["name"] == "build").unwrap();
    build["state"] = json!({"terminated": {"exitCode": 0, "reason": "Completed",
        "startedAt": "2026-11-23T16:00:34Z", "finishedAt": "2026-11-23T16:00:49Z"}});
    let status = run_status(&pod(ended));
    assert!(step(&status, "test").waiting_for.is_empty());
    assert_eq!(annotation_value(&status).map(|v| v.contains("waitingFor")), Some(false));
}
