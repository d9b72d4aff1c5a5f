//! `batonctl status` from the cluster against API responses in the real shape, through kube's
//! `Client` over a tower mock service: which requests a pod, a Job, a CronJob and a selector make,
//! which pods they show, and `-w` until the run ends. The real API server is the real-cluster
//! suite's (docs/controller.md says which commands it runs).

use std::time::Duration;

use baton_controller::cluster::{self, Error, Pods, Selection};
use baton_controller::status::Phase;
use http::{Method, Request, Response, StatusCode};
use k8s_openapi::api::core::v1::Pod;
use kube::client::Body;
use serde_json::{json, Value};
use tower_test::mock::{self, Handle, SendResponse};

type Mock = Handle<Request<Body>, Response<Body>>;

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A fixture as a pod of Job `job`, made at `created`.
fn job_pod(fixture_name: &str, name: &str, job: &str, created: &str) -> Value {
    let mut p = fixture(fixture_name);
    p["metadata"]["name"] = json!(name);
    p["metadata"]["creationTimestamp"] = json!(created);
    p["metadata"]["labels"] = json!({"batch.kubernetes.io/job-name": job, "job-name": job});
    p
}

fn job(name: &str, uid: &str, owner: Option<&str>, created: &str, conditions: Value) -> Value {
    let mut j = json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": "ci", "uid": uid, "creationTimestamp": created},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}},
        "status": {"conditions": conditions},
    });
    if let Some(owner) = owner {
        j["metadata"]["ownerReferences"] = json!([{
            "apiVersion": "batch/v1", "kind": "CronJob", "name": "nightly", "uid": owner, "controller": true
        }]);
    }
    j
}

fn list(kind: &str, items: &[&Value]) -> Value {
    json!({"kind": kind, "apiVersion": "v1", "metadata": {"resourceVersion": "101"}, "items": items})
}

fn respond(send: SendResponse<Response<Body>>, status: StatusCode, body: &Value) {
    let bytes = serde_json::to_vec(body).unwrap();
    send.send_response(Response::builder().status(status).body(Body::from(bytes)).unwrap());
}

fn not_found(send: SendResponse<Response<Body>>) {
    respond(
        send,
        StatusCode::NOT_FOUND,
        &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
                "message": "not found"}),
    );
}

async fn next(handle: &mut Mock) -> (Request<Body>, SendResponse<Response<Body>>) {
    tokio::time::timeout(Duration::from_secs(10), handle.next_request())
        .await
        .expect("no request within 10 s")
        .expect("the client is gone")
}

/// Answers the next request, after checking its method and URI.
async fn answer(handle: &mut Mock, uri: &str, status: StatusCode, body: &Value) {
    let (req, send) = next(handle).await;
    assert_eq!((req.method(), req.uri().to_string()), (&Method::GET, uri.to_string()));
    respond(send, status, body);
}

fn names(pods: &[Pod]) -> Vec<&str> {
    pods.iter().map(|p| p.metadata.name.as_deref().unwrap()).collect()
}

#[tokio::test]
async fn a_job_shows_all_its_pods_oldest_first_and_runs_as_its_newest() {
    let (service, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "ci");
    let failed = job_pod("oom-killed", "build-a", "build", "2026-11-23T16:00:00Z");
    let retried = job_pod("succeeded", "build-b", "build", "2026-11-23T16:01:00Z");
    let server = async {
        let uri = "/apis/batch/v1/namespaces/ci/jobs/build";
        answer(
            &mut handle,
            uri,
            StatusCode::OK,
            &job("build", "u1", None, "2026-11-23T16:00:00Z", json!([])),
        )
        .await;
        let uri = "/api/v1/namespaces/ci/pods?&labelSelector=batch.kubernetes.io%2Fjob-name%3Dbuild";
        // The API server lists by name: the retry first.
        answer(&mut handle, uri, StatusCode::OK, &list("PodList", &[&retried, &failed])).await;
    };
    let shown = async {
        let pods = cluster::resolve(&client, Some("ci"), &Selection::Job("build".into())).await.unwrap();
        assert_eq!(pods.what, "job ci/build");
        let shown = cluster::list(&client, &pods).await.unwrap();
        (pods, shown)
    };
    let ((pods, shown), ()) = tokio::join!(shown, server);
    assert_eq!(names(&shown), ["build-a", "build-b"]);
    // The first pod failed; the Job's run is its newest pod's.
    assert_eq!(cluster::run_phase(&pods, &shown), Phase::Succeeded);
}

#[tokio::test]
async fn a_cronjob_is_its_latest_owned_job() {
    let (service, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "ci");
    let server = async {
        let cron = json!({"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "nightly", "namespace": "ci", "uid": "cron-1"},
            "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}}});
        answer(&mut handle, "/apis/batch/v1/namespaces/ci/cronjobs/nightly", StatusCode::OK, &cron).await;
        let jobs = list(
            "JobList",
            &[
                &job("nightly-100", "j1", Some("cron-1"), "2026-11-22T03:00:00Z", json!([])),
                &job("nightly-200", "j2", Some("cron-1"), "2026-11-23T03:00:00Z", json!([])),
                // Newer, but another CronJob's, and one nobody owns.
                &job("other-300", "j3", Some("cron-2"), "2026-11-24T03:00:00Z", json!([])),
                &job("manual", "j4", None, "2026-11-24T04:00:00Z", json!([])),
            ],
        );
        answer(&mut handle, "/apis/batch/v1/namespaces/ci/jobs?", StatusCode::OK, &jobs).await;
    };
    let selection = Selection::CronJob("nightly".into());
    let resolved = cluster::resolve(&client, None, &selection);
    let (pods, ()) = tokio::join!(resolved, server);
    let pods = pods.unwrap();
    // A Job without a selector (as here) is found by its name label.
    assert_eq!(pods.labels.as_deref(), Some("batch.kubernetes.io/job-name=nightly-200"));
    assert_eq!(pods.job.as_deref(), Some("nightly-200"));
}

/// A Job made again under the same name must not show the old one's pods, which keep the name label
/// while they terminate: the Job's own selector (its controller-uid) picks its pods.
#[tokio::test]
async fn a_job_with_a_selector_is_found_by_it() {
    let (service, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "ci");
    let mut j = job("build", "u2", None, "2026-11-23T16:00:00Z", json!([]));
    j["spec"]["selector"] = json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "u2"}});
    let server = answer(&mut handle, "/apis/batch/v1/namespaces/ci/jobs/build", StatusCode::OK, &j);
    let selection = Selection::Job("build".into());
    let (pods, ()) = tokio::join!(cluster::resolve(&client, None, &selection), server);
    assert_eq!(pods.unwrap().labels.as_deref(), Some("batch.kubernetes.io/controller-uid=u2"));
}

#[tokio::test]
async fn a_missing_pod_is_one_sentence_naming_it() {
    let (service, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "ci");
    let server = async {
        let (req, send) = next(&mut handle).await;
        assert_eq!(req.uri().to_string(), "/api/v1/namespaces/ci/pods/gone");
        not_found(send);
    };
    let selection = Selection::Pod("gone".into());
    let (resolved, ()) = tokio::join!(cluster::resolve(&client, None, &selection), server);
    let err = resolved.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }));
    assert_eq!(
        err.to_string(),
        "pod gone is not in namespace ci: check the name, or give its namespace with -n"
    );
}

#[tokio::test]
async fn a_selector_across_namespaces_lists_every_namespace() {
    let (service, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "ci");
    let a = fixture("succeeded");
    let b = fixture("running");
    let selection = Selection::Labels(Some("baton.dev/injected=true".into()));
    let pods = cluster::resolve(&client, None, &selection).await.unwrap();
    let server = async {
        let uri = "/api/v1/pods?&labelSelector=baton.dev%2Finjected%3Dtrue";
        answer(&mut handle, uri, StatusCode::OK, &list("PodList", &[&a, &b])).await;
    };
    let (shown, ()) = tokio::join!(cluster::list(&client, &pods), server);
    let shown = shown.unwrap();
    assert_eq!(shown.len(), 2);
    assert_eq!(cluster::run_phase(&pods, &shown), Phase::Running);
}

fn watch_body(events: &[(&str, &Value)]) -> Body {
    let mut body = Vec::new();
    for (kind, object) in events {
        body.extend(serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap());
        body.push(b'\n');
    }
    Body::from(body)
}

/// The running fixture with every step ended, as the kubelet reports it at the end.
fn ended(mut p: Value) -> Value {
    for s in p["status"]["containerStatuses"].as_array_mut().unwrap() {
        if s["state"].get("running").is_some() {
            s["state"] = json!({"terminated": {"exitCode": 0, "reason": "Completed",
                "startedAt": "2026-11-23T16:00:34Z", "finishedAt": "2026-11-23T16:00:49Z"}});
        }
    }
    p["status"]["phase"] = json!("Succeeded");
    p
}

#[tokio::test]
async fn watch_shows_each_change_and_ends_with_the_run() {
    let (service, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "ci");
    let running = fixture("running");
    let done = ended(running.clone());
    let pods = Pods {
        namespace: Some("ci".into()),
        labels: None,
        fields: Some("metadata.name=demo-running".into()),
        job: None,
        what: "pod ci/demo-running".into(),
    };
    let server = async {
        let (req, send) = next(&mut handle).await;
        let uri = req.uri().to_string();
        assert!(
            uri.starts_with("/api/v1/namespaces/ci/pods?&fieldSelector=metadata.name%3Ddemo-running"),
            "{uri}"
        );
        respond(send, StatusCode::OK, &list("PodList", &[&running]));
        let (req, send) = next(&mut handle).await;
        assert!(req.uri().to_string().contains("watch=true"), "{}", req.uri());
        send.send_response(Response::builder().body(watch_body(&[("MODIFIED", &done)])).unwrap());
        // The watcher may ask again once the stream ends; the run has ended by then.
        let _ = tokio::time::timeout(Duration::from_secs(1), handle.next_request()).await;
    };
    let mut phases = Vec::new();
    let watched = cluster::watch(&client, &pods, |shown| {
        phases.push(baton_controller::status::run_status(&shown[0]).phase);
    });
    let (phase, ()) = tokio::join!(watched, server);
    assert_eq!(phase.unwrap(), Phase::Succeeded);
    assert_eq!(phases, [Phase::Running, Phase::Succeeded]);
}

#[tokio::test]
async fn watch_of_a_job_waits_for_the_retry_after_a_failed_pod() {
    let (service, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "ci");
    let failed = job_pod("oom-killed", "build-a", "build", "2026-11-23T16:00:00Z");
    let retry = ended(job_pod("running", "build-b", "build", "2026-11-23T16:01:00Z"));
    let pods = Pods {
        namespace: Some("ci".into()),
        labels: Some("batch.kubernetes.io/job-name=build".into()),
        fields: None,
        job: Some("build".into()),
        what: "job ci/build".into(),
    };
    let server = async {
        let (_req, send) = next(&mut handle).await;
        respond(send, StatusCode::OK, &list("PodList", &[&failed]));
        // The Job has not given up: watching goes on.
        answer(
            &mut handle,
            "/apis/batch/v1/namespaces/ci/jobs/build",
            StatusCode::OK,
            &job("build", "u1", None, "2026-11-23T16:00:00Z", json!([])),
        )
        .await;
        let (req, send) = next(&mut handle).await;
        assert!(req.uri().to_string().contains("watch=true"), "{}", req.uri());
        send.send_response(Response::builder().body(watch_body(&[("ADDED", &retry)])).unwrap());
        let _ = tokio::time::timeout(Duration::from_secs(1), handle.next_request()).await;
    };
    let mut shown_counts = Vec::new();
    let watched = cluster::watch(&client, &pods, |shown| shown_counts.push(shown.len()));
    let (phase, ()) = tokio::join!(watched, server);
    assert_eq!(phase.unwrap(), Phase::Succeeded);
    assert_eq!(shown_counts, [1, 2]);
}
