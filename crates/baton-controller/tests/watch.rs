//! The watcher against API responses in the real shape, through kube's `Client` over a tower mock
//! service: each request's method, URI and body are pinned, and a status that did not change must
//! cause no write.

use std::time::Duration;

use baton_controller::status::{run_status, Phase, RunStatus};
use baton_controller::watch::{self, annotation_value, Action, Tracker, ANNOTATION};
use http::{Method, Request, Response, StatusCode};
use k8s_openapi::api::core::v1::Pod;
use kube::client::Body;
use kube::runtime::watcher::Event;
use serde_json::{json, Value};
use tokio::time::Instant;
use tower_test::mock::{self, Handle, SendResponse};

const LIST_URI: &str = "/api/v1/namespaces/ci/pods?&labelSelector=baton.dev%2Frun&limit=500";
const PATCH_URI: &str = "/api/v1/namespaces/ci/pods/demo-running?&force=true&fieldManager=batonctl";

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn pod(value: &Value) -> Pod {
    serde_json::from_value(value.clone()).unwrap()
}

/// The running fixture at successive moments: `build` ends at the last.
struct Moments {
    started: Value,
}

impl Moments {
    fn new() -> Self {
        Moments { started: fixture("running") }
    }

    fn at(&self, rv: u32, annotation: Option<&str>, build_ended: bool) -> Value {
        let mut p = self.started.clone();
        p["metadata"]["resourceVersion"] = json!(rv.to_string());
        if let Some(value) = annotation {
            p["metadata"]["annotations"] = json!({ ANNOTATION: value });
        }
        if build_ended {
            let build = p["status"]["containerStatuses"]
                .as_array_mut()
                .unwrap()
                .iter_mut()
                .find(|s| s["name"] == "build")
                .unwrap();
            build["state"] = json!({"terminated": {
                "exitCode": 0, "reason": "Completed",
                "message": "{\"baton\":1,\"step\":\"build\",\"exitCode\":0,\"reason\":\"Completed\",\"startedAt\":\"2026-11-23T16:00:37.460Z\",\"finishedAt\":\"2026-11-23T16:00:49.020Z\",\"results\":{\"image\":\"app.tar\"}}",
                "startedAt": "2026-11-23T16:00:34Z", "finishedAt": "2026-11-23T16:00:49Z",
                "containerID": "containerd://7c1d1e36b1f3c0d6a0f5c7e1b2a3d4c5e6f708192a3b4c5d6e7f8091a2b3c4d5"}});
            build["ready"] = json!(false);
            build["started"] = json!(false);
        }
        p
    }
}

fn respond(send: SendResponse<Response<Body>>, status: StatusCode, body: &Value) {
    let bytes = serde_json::to_vec(body).unwrap();
    send.send_response(Response::builder().status(status).body(Body::from(bytes)).unwrap());
}

fn list(items: &[&Value]) -> Value {
    json!({"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "101"}, "items": items})
}

/// A watch response: one JSON event a line, as the API server streams them.
fn watch_body(events: &[(&str, Value)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (kind, object) in events {
        body.extend(serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap());
        body.push(b'\n');
    }
    body
}

async fn next(
    handle: &mut Handle<Request<Body>, Response<Body>>,
) -> (Request<Body>, SendResponse<Response<Body>>) {
    tokio::time::timeout(Duration::from_secs(10), handle.next_request())
        .await
        .expect("the watcher sent no request within 10 s")
        .expect("the client is gone")
}

/// The watcher's requests by method: its watch and its writes go side by side, so a request of
/// another method than the one asked for is kept for a later ask.
struct Requests {
    handle: Handle<Request<Body>, Response<Body>>,
    early: Vec<(Request<Body>, SendResponse<Response<Body>>)>,
}

impl Requests {
    fn new(handle: Handle<Request<Body>, Response<Body>>) -> Self {
        Requests { handle, early: Vec::new() }
    }

    async fn next(&mut self, method: Method) -> (Request<Body>, SendResponse<Response<Body>>) {
        if let Some(i) = self.early.iter().position(|(req, _)| req.method() == method) {
            return self.early.remove(i);
        }
        loop {
            let (req, send) = next(&mut self.handle).await;
            if req.method() == method {
                return (req, send);
            }
            self.early.push((req, send));
        }
    }
}

fn assert_watch(req: &Request<Body>, rv: &str) {
    assert_eq!(req.method(), Method::GET);
    let uri = req.uri().to_string();
    assert!(uri.starts_with("/api/v1/namespaces/ci/pods?&watch=true&"), "{uri}");
    assert!(uri.contains("labelSelector=baton.dev%2Frun"), "{uri}");
    assert!(uri.contains(&format!("resourceVersion={rv}")), "{uri}");
}

/// Pins the server-side apply: method, URI with field manager and force, content type, exact body.
async fn assert_apply(req: Request<Body>, expected_value: &str) {
    assert_eq!(req.method(), Method::PATCH);
    assert_eq!(req.uri().to_string(), PATCH_URI);
    assert_eq!(req.headers()["content-type"], "application/apply-patch+yaml");
    let body: Value = serde_json::from_slice(&req.into_body().collect_bytes().await.unwrap()).unwrap();
    assert_eq!(
        body,
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "demo-running", "namespace": "ci",
               "annotations": {"baton.dev/run-status": expected_value}}})
    );
}

fn options(annotate: bool) -> watch::Options {
    watch::Options {
        namespace: Some("ci".into()),
        selector: Some("baton.dev/run".into()),
        annotate,
        batch: Duration::ZERO,
        events: false,
        limits: Default::default(),
        metrics: Default::default(),
    }
}

fn lines(out: &[u8]) -> Vec<Value> {
    std::str::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[tokio::test]
async fn annotates_once_per_change_and_never_for_an_unchanged_status() {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "ci");
    let moments = Moments::new();
    let first = moments.at(101, None, false);
    let first_value = annotation_value(&run_status(&pod(&first))).unwrap();
    let ended = moments.at(105, Some(&first_value), true);
    let ended_value = annotation_value(&run_status(&pod(&ended))).unwrap();

    let mut out = Vec::new();
    let opts = options(true);
    let server = async {
        let mut requests = Requests::new(handle);
        let (req, send) = requests.next(Method::GET).await;
        assert_eq!(req.uri().to_string(), LIST_URI);
        respond(send, StatusCode::OK, &list(&[&first]));

        // fetch has ended: the first write holds baton-init and fetch.
        let (req, send) = requests.next(Method::PATCH).await;
        assert_apply(req, &first_value).await;
        let written: RunStatus = serde_json::from_str(&first_value).unwrap();
        assert_eq!(written.phase, Phase::Running);
        assert_eq!(
            written.steps.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["baton-init", "fetch"]
        );
        respond(send, StatusCode::OK, &moments.at(102, Some(&first_value), false));

        let (req, send) = requests.next(Method::GET).await;
        assert_watch(&req, "101");
        let mut relabelled = moments.at(103, Some(&first_value), false);
        relabelled["metadata"]["labels"]["extra"] = json!("yes");
        let mut ready_flip = moments.at(104, Some(&first_value), false);
        ready_flip["status"]["conditions"][2]["status"] = json!("True");
        let body = watch_body(&[
            // Our own write coming back, a label change, a condition flip: no status change, no write.
            ("MODIFIED", moments.at(102, Some(&first_value), false)),
            ("MODIFIED", relabelled),
            ("MODIFIED", ready_flip),
            // build ends: one more write.
            ("MODIFIED", ended.clone()),
            ("BOOKMARK", json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"resourceVersion": "106"}})),
        ]);
        send.send_response(Response::builder().body(Body::from(body)).unwrap());

        let (req, send) = requests.next(Method::PATCH).await;
        assert_apply(req, &ended_value).await;
        respond(send, StatusCode::OK, &moments.at(107, Some(&ended_value), true));

        // The watch resumed after the bookmark; no third write happened by then, nor while it is
        // answered (the write rule is the tracker's, pinned below: this only shows the wire).
        let (req, _send) = requests.next(Method::GET).await;
        assert_watch(&req, "106");
        assert!(
            requests.early.is_empty(),
            "a request came before the resumed watch: {:?}",
            requests.early[0].0
        );
    };
    tokio::select! {
        stopped = watch::run(client, &opts, &mut out) => panic!("the watcher stopped: {stopped:?}"),
        () = server => {}
    }
    let printed = lines(&out);
    assert_eq!(printed.len(), 2, "{printed:#?}");
    assert_eq!(printed[0]["pod"], "demo-running");
    assert_eq!(printed[0]["namespace"], "ci");
    assert_eq!(printed[0]["phase"], "Running");
    assert_eq!(printed[1]["steps"][3]["name"], "build");
    assert_eq!(printed[1]["steps"][3]["state"], "terminated");
    assert_eq!(printed[1]["results"]["image"], "app.tar");
}

#[tokio::test]
async fn without_annotate_it_only_prints_changes() {
    let (service, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "ci");
    let moments = Moments::new();
    let mut out = Vec::new();
    let opts = options(false);
    let server = async {
        let (_req, send) = next(&mut handle).await;
        respond(send, StatusCode::OK, &list(&[&moments.at(101, None, false)]));
        let (req, send) = next(&mut handle).await;
        assert_watch(&req, "101");
        let body = watch_body(&[
            ("MODIFIED", moments.at(102, None, false)),
            ("MODIFIED", moments.at(103, None, true)),
            ("MODIFIED", moments.at(104, None, true)),
            ("DELETED", moments.at(105, None, true)),
        ]);
        send.send_response(Response::builder().body(Body::from(body)).unwrap());
        let (req, _send) = next(&mut handle).await;
        assert_eq!(req.method(), Method::GET, "no write without --annotate");
        assert_watch(&req, "105");
    };
    tokio::select! {
        stopped = watch::run(client, &opts, &mut out) => panic!("the watcher stopped: {stopped:?}"),
        () = server => {}
    }
    assert_eq!(lines(&out).len(), 2);
}

/// A policy engine that refuses one pod's annotation (a 403) stops nothing: the next pod's write
/// goes through, and the refused one is tried again later (see the backoff test below).
#[tokio::test]
async fn a_forbidden_write_is_that_pods_problem_only() {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "ci");
    let moments = Moments::new();
    let mut other = moments.at(101, None, false);
    other["metadata"]["name"] = json!("demo-other");
    other["metadata"]["uid"] = json!("0b7c1f52-0000-4000-8000-000000000002");
    let mut out = Vec::new();
    let opts = options(true);
    let server = async {
        let mut requests = Requests::new(handle);
        let (_req, send) = requests.next(Method::GET).await;
        respond(send, StatusCode::OK, &list(&[&moments.at(101, None, false), &other]));
        // Both writes go out side by side: one refused is no reason to hold the other.
        let (first, first_send) = requests.next(Method::PATCH).await;
        let (second, second_send) = requests.next(Method::PATCH).await;
        let ((req, send), (other_req, other_send)) = if *first.uri() == PATCH_URI {
            ((first, first_send), (second, second_send))
        } else {
            ((second, second_send), (first, first_send))
        };
        assert_eq!(req.uri().to_string(), PATCH_URI);
        respond(
            send,
            StatusCode::FORBIDDEN,
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": "admission webhook \"policy.example\" denied the request: no",
                    "reason": "Forbidden", "details": {"name": "demo-running", "kind": "pods"}, "code": 403}),
        );
        let uri = other_req.uri().to_string();
        assert!(uri.starts_with("/api/v1/namespaces/ci/pods/demo-other?"), "the other pod is written: {uri}");
        respond(other_send, StatusCode::OK, &other);
        let (req, _send) = requests.next(Method::GET).await;
        assert_watch(&req, "101");
    };
    tokio::select! {
        stopped = watch::run(client, &opts, &mut out) => panic!("the watcher stopped: {stopped:?}"),
        () = server => {}
    }
}

#[test]
fn refused_writes_are_retried_with_backoff_and_a_success_resets_it() {
    let moments = Moments::new();
    let mut tracker = Tracker::new(true, Duration::ZERO);
    let now = Instant::now();
    let actions = tracker.on_event(Event::Apply(pod(&moments.at(101, None, false))), now);
    let Some(Action::Write(write)) = actions.into_iter().find(|a| matches!(a, Action::Write(_))) else {
        panic!("an ended step is written")
    };
    let mut waits = Vec::new();
    for _ in 0..7 {
        waits.push(tracker.failed(&write.key, write.value.clone(), now).as_secs());
        let due = tracker.due(now + watch::MAX_RETRY);
        assert_eq!(due.len(), 1, "the refused write is due again");
    }
    assert_eq!(waits, [10, 20, 40, 80, 160, 300, 300]);
    tracker.wrote(&write.key, write.value.clone());
    assert_eq!(tracker.failed(&write.key, write.value, now).as_secs(), 10);
}

#[tokio::test]
async fn a_pod_gone_before_its_write_is_forgotten() {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "ci");
    let moments = Moments::new();
    let mut out = Vec::new();
    let opts = options(true);
    let server = async {
        let mut requests = Requests::new(handle);
        let (_req, send) = requests.next(Method::GET).await;
        respond(send, StatusCode::OK, &list(&[&moments.at(101, None, false)]));
        let (_req, send) = requests.next(Method::PATCH).await;
        respond(
            send,
            StatusCode::NOT_FOUND,
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": "pods \"demo-running\" not found", "reason": "NotFound",
                    "details": {"name": "demo-running", "kind": "pods"}, "code": 404}),
        );
        let (req, _send) = requests.next(Method::GET).await;
        assert_watch(&req, "101");
    };
    tokio::select! {
        stopped = watch::run(client, &opts, &mut out) => panic!("the watcher stopped: {stopped:?}"),
        () = server => {}
    }
}

/// The API server's 410 Gone for a compacted resource version: kube's watcher lists again; a pod gone
/// meanwhile is forgotten, and a pod whose annotation already holds its status is not written again.
#[tokio::test]
async fn a_410_gone_relists_forgets_the_pods_gone_and_rewrites_nothing() {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "ci");
    let moments = Moments::new();
    let value = annotation_value(&run_status(&pod(&moments.at(101, None, false)))).unwrap();
    let kept = moments.at(101, Some(&value), false);
    let mut gone = kept.clone();
    gone["metadata"]["name"] = json!("demo-gone");
    gone["metadata"]["uid"] = json!("0b7c1f52-0000-4000-8000-000000000003");
    let mut out = Vec::new();
    let opts = options(true);
    let metrics = opts.metrics.clone();
    let server = async {
        let mut requests = Requests::new(handle);
        let (_req, send) = requests.next(Method::GET).await;
        respond(send, StatusCode::OK, &list(&[&kept, &gone]));
        let (req, send) = requests.next(Method::GET).await;
        assert_watch(&req, "101");
        let expired = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "too old resource version: 101 (250)", "reason": "Expired", "code": 410});
        send.send_response(Response::builder().body(Body::from(watch_body(&[("ERROR", expired)]))).unwrap());
        // The relist: demo-gone was deleted while the watch was away.
        let (req, send) = requests.next(Method::GET).await;
        assert!(!req.uri().to_string().contains("watch=true"), "a list after the 410: {}", req.uri());
        let mut relisted = list(&[&kept]);
        relisted["metadata"]["resourceVersion"] = json!("250");
        respond(send, StatusCode::OK, &relisted);
        let (req, _send) = requests.next(Method::GET).await;
        assert_watch(&req, "250");
        assert!(requests.early.is_empty(), "a write went out: {:?}", requests.early[0].0);
    };
    tokio::select! {
        stopped = watch::run(client, &opts, &mut out) => panic!("the watcher stopped: {stopped:?}"),
        () = server => {}
    }
    assert_eq!(metrics.restarts.get(), 1, "the 410 counts as one restart of the watch");
    assert_eq!(metrics.pods.get(), 1, "demo-gone is forgotten after the relist");
    assert_eq!(lines(&out).len(), 2, "each pod printed once, at first sight: the relist changed nothing");
}

fn writes(actions: Vec<Action>) -> Vec<watch::PendingWrite> {
    actions
        .into_iter()
        .filter_map(|a| match a {
            Action::Write(write) => Some(write),
            _ => None,
        })
        .collect()
}

#[test]
fn a_change_while_a_write_is_in_flight_waits_for_its_answer() {
    let moments = Moments::new();
    let mut tracker = Tracker::new(true, Duration::ZERO);
    let now = Instant::now();
    let first = writes(tracker.on_event(Event::Apply(pod(&moments.at(101, None, false))), now));
    assert_eq!(first.len(), 1);
    // build ends while the first write is in flight: nothing is sent beside it.
    let ended = tracker.on_event(Event::Apply(pod(&moments.at(103, None, true))), now);
    assert!(writes(ended).is_empty(), "a second write of the pod went out beside the first");
    assert!(tracker.due(now).is_empty());
    assert_eq!(tracker.next_due(), None, "a write in flight makes no deadline (the loop would spin)");
    // The answer comes: the newer value goes at once, and only it.
    tracker.wrote(&first[0].key, first[0].value.clone());
    let next = tracker.due(now);
    assert_eq!(next.len(), 1);
    assert!(next[0].value.contains("\"build\""), "{}", next[0].value);
    tracker.wrote(&next[0].key, next[0].value.clone());
    assert_eq!(tracker.next_due(), None);
}

#[test]
fn the_value_in_flight_is_not_sent_again_when_the_pod_comes_back_unchanged() {
    let moments = Moments::new();
    let mut tracker = Tracker::new(true, Duration::ZERO);
    let now = Instant::now();
    let first = writes(tracker.on_event(Event::Apply(pod(&moments.at(101, None, false))), now));
    assert_eq!(first.len(), 1);
    let mut relabelled = moments.at(102, None, false);
    relabelled["metadata"]["labels"]["extra"] = json!("yes");
    assert!(tracker.on_event(Event::Apply(pod(&relabelled)), now).is_empty());
    tracker.wrote(&first[0].key, first[0].value.clone());
    assert!(tracker.due(now).is_empty());
    assert_eq!(tracker.next_due(), None);
}

// ---- The write rule, on the tracker alone: how many writes a 10-step pod costs. ----

/// A pod with `baton-init` and ten baton steps; `ended` steps have terminated, `running` more run.
fn ten_steps(init: &str, running: usize, ended: usize) -> Pod {
    let names: Vec<String> = (1..=10).map(|i| format!("step-{i:02}")).collect();
    let container =
        |n: &String| json!({"name": n, "image": "builder", "command": ["/var/run/baton/bin/baton"]});
    let state = |i: usize| {
        if i < ended {
            let msg = format!(
                "{{\"baton\":1,\"step\":\"step-{:02}\",\"exitCode\":0,\"reason\":\"Completed\",\"startedAt\":\"2026-11-23T16:01:{:02}.000Z\",\"finishedAt\":\"2026-11-23T16:01:{:02}.500Z\",\"results\":{{}}}}",
                i + 1, i, i
            );
            json!({"terminated": {"exitCode": 0, "reason": "Completed", "message": msg,
                   "startedAt": "2026-11-23T16:00:40Z", "finishedAt": format!("2026-11-23T16:01:{i:02}Z")}})
        } else if i < ended + running {
            json!({"running": {"startedAt": "2026-11-23T16:00:40Z"}})
        } else {
            json!({"waiting": {"reason": if init == "done" { "ContainerCreating" } else { "PodInitializing" }}})
        }
    };
    let init_state = match init {
        "waiting" => json!({"waiting": {"reason": "PodInitializing"}}),
        "running" => json!({"running": {"startedAt": "2026-11-23T16:00:35Z"}}),
        _ => json!({"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": "2026-11-23T16:00:35Z",
                                   "finishedAt": "2026-11-23T16:00:36Z"}}),
    };
    let phase = if ended == 10 {
        "Succeeded"
    } else if init == "waiting" {
        "Pending"
    } else {
        "Running"
    };
    let mut statuses: Vec<Value> = names
        .iter()
        .enumerate()
        .map(|(i, n)| json!({"name": n, "image": "builder", "imageID": "", "ready": false, "restartCount": 0, "state": state(i)}))
        .collect();
    statuses.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "ten", "namespace": "ci", "uid": "0b6a9f3e-0000-4000-8000-000000000010"},
        "spec": {"initContainers": [{"name": "baton-init", "image": "baton"}],
                 "containers": names.iter().map(container).collect::<Vec<_>>()},
        "status": {"phase": phase,
                   "initContainerStatuses": [{"name": "baton-init", "image": "baton", "imageID": "", "ready": false,
                                              "restartCount": 0, "state": init_state}],
                   "containerStatuses": statuses}
    }))
    .unwrap()
}

/// The kubelet's status updates of a 10-step pod, each twice (a repeated update changes nothing), with
/// the moment, in seconds, it reaches the watcher.
fn lifecycle() -> Vec<(f64, Pod)> {
    let mut updates = vec![
        (0.0, ten_steps("waiting", 0, 0)),
        (1.0, ten_steps("running", 0, 0)),
        (2.0, ten_steps("done", 0, 0)),
        (2.5, ten_steps("done", 4, 0)),
        (3.0, ten_steps("done", 10, 0)),
    ];
    for ended in 1..=10 {
        updates.push((3.0 + ended as f64, ten_steps("done", 10 - ended, ended)));
    }
    updates.into_iter().flat_map(|(t, p)| [(t, p.clone()), (t + 0.1, p)]).collect()
}

/// Feeds the lifecycle to a tracker, playing the API server: a write sets the annotation on the pod.
fn count(batch: Duration) -> (usize, usize) {
    let t0 = Instant::now();
    let mut tracker = Tracker::new(true, batch);
    let mut annotation: Option<String> = None;
    let (mut prints, mut writes) = (0, 0);
    for (at, mut pod) in lifecycle() {
        let now = t0 + Duration::from_secs_f64(at);
        for write in tracker.due(now) {
            writes += 1;
            tracker.wrote(&write.key, write.value.clone());
            annotation = Some(write.value);
        }
        if let Some(value) = &annotation {
            pod.metadata.annotations = Some([(ANNOTATION.to_string(), value.clone())].into());
        }
        for action in tracker.on_event(Event::Apply(pod), now) {
            match action {
                Action::Print(_) => prints += 1,
                Action::Write(write) => {
                    writes += 1;
                    tracker.wrote(&write.key, write.value.clone());
                    annotation = Some(write.value);
                }
                Action::Event(..) => panic!("no event was asked for"),
            }
        }
    }
    assert_eq!(tracker.next_due(), None, "a write was left pending");
    let last: RunStatus = serde_json::from_str(annotation.as_deref().unwrap()).unwrap();
    assert_eq!(last.phase, Phase::Succeeded);
    assert_eq!(last.steps.len(), 11);
    (prints, writes)
}

#[test]
fn a_ten_step_pod_costs_one_write_per_container_end() {
    // 15 distinct statuses are printed; only the 11 container ends (baton-init + 10 steps) are written.
    assert_eq!(count(Duration::ZERO), (15, 11));
}

#[test]
fn a_batch_window_merges_the_writes_of_steps_ending_close_together() {
    // Ends at 2 s (baton-init), then 4 s … 13 s: windows of 5 s write at 7 s and 12 s, the final phase at once.
    assert_eq!(count(Duration::from_secs(5)), (15, 3));
}

#[test]
fn a_restarted_watcher_does_not_rewrite_what_the_pod_already_holds() {
    let mut pod = ten_steps("done", 5, 5);
    let value = annotation_value(&run_status(&pod)).unwrap();
    pod.metadata.annotations = Some([(ANNOTATION.to_string(), value)].into());
    let mut tracker = Tracker::new(true, Duration::ZERO);
    let actions = tracker.on_event(Event::InitApply(pod), Instant::now());
    assert!(matches!(actions.as_slice(), [Action::Print(_)]), "{actions:?}");
}

#[test]
fn a_relist_forgets_pods_that_are_gone_and_a_new_uid_is_a_new_pod() {
    let mut tracker = Tracker::new(false, Duration::ZERO);
    let now = Instant::now();
    let pod = ten_steps("done", 10, 0);
    assert_eq!(tracker.on_event(Event::Apply(pod.clone()), now).len(), 1);
    assert_eq!(tracker.on_event(Event::Apply(pod.clone()), now).len(), 0);
    // Re-listed without it: gone, so seeing it again prints again.
    tracker.on_event(Event::Init, now);
    tracker.on_event(Event::InitDone, now);
    assert_eq!(tracker.on_event(Event::Apply(pod.clone()), now).len(), 1);
    let mut again = pod;
    again.metadata.uid = Some("another".into());
    assert_eq!(tracker.on_event(Event::Apply(again), now).len(), 1);
}

/// One Event per step that did not succeed, once, and none for the steps a restarted watcher finds in
/// the pod's annotation (told when that annotation was written).
#[test]
fn steps_that_did_not_succeed_get_one_event_each_once() {
    let oom = pod(&fixture("oom-killed"));
    let mut tracker = Tracker::new(true, Duration::ZERO).with_events(true);
    let events = |actions: Vec<Action>| -> Vec<(String, String)> {
        actions
            .into_iter()
            .filter_map(|a| match a {
                Action::Event(_, e) => Some((e.container, e.reason)),
                _ => None,
            })
            .collect()
    };
    let first = events(tracker.on_event(Event::Apply(oom.clone()), Instant::now()));
    let want = [("build", "OOMKilled"), ("package", "PredecessorLost"), ("publish", "Skipped")];
    assert_eq!(first, want.map(|(c, r)| (c.to_string(), r.to_string())));
    assert!(events(tracker.on_event(Event::Apply(oom.clone()), Instant::now())).is_empty(), "once");
    // A watcher started again, on the pod as the first one annotated it.
    let mut annotated = fixture("oom-killed");
    let value = annotation_value(&run_status(&oom)).unwrap();
    annotated["metadata"]["annotations"] = json!({ ANNOTATION: value });
    let mut again = Tracker::new(true, Duration::ZERO).with_events(true);
    assert!(events(again.on_event(Event::Apply(pod(&annotated)), Instant::now())).is_empty());
    // Without --events, none.
    let mut quiet = Tracker::new(true, Duration::ZERO);
    assert!(events(quiet.on_event(Event::Apply(oom), Instant::now())).is_empty());
}

/// The event on the wire: events.k8s.io/v1, on the pod with the container as fieldPath, the step's
/// reason, its sentence as the note.
#[tokio::test]
async fn the_event_goes_to_the_events_api_on_the_pod() {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "ci");
    let mut out = Vec::new();
    let mut opts = options(false);
    opts.events = true;
    let oom = fixture("oom-killed");
    let server = async {
        let mut requests = Requests::new(handle);
        let (_req, send) = requests.next(Method::GET).await;
        respond(send, StatusCode::OK, &list(&[&oom]));
        let mut told = Vec::new();
        for _ in 0..3 {
            let (req, send) = requests.next(Method::POST).await;
            assert_eq!(req.uri().path(), "/apis/events.k8s.io/v1/namespaces/ci/events");
            let body: Value =
                serde_json::from_slice(&req.into_body().collect_bytes().await.unwrap()).unwrap();
            assert_eq!(body["regarding"]["name"], "demo-oom");
            let container = body["regarding"]["fieldPath"].as_str().unwrap().to_string();
            assert_eq!(body["type"], "Warning");
            assert_eq!(body["action"], "StepEnded");
            let step = container.trim_start_matches("spec.containers{").trim_end_matches('}');
            assert!(body["note"].as_str().unwrap().starts_with(&format!("step {step} ended")), "{body}");
            told.push(container);
            respond(send, StatusCode::CREATED, &body);
        }
        told.sort();
        assert_eq!(told, ["spec.containers{build}", "spec.containers{package}", "spec.containers{publish}"]);
        let (req, _send) = requests.next(Method::GET).await;
        assert_watch(&req, "101");
    };
    tokio::select! {
        stopped = watch::run(client, &opts, &mut out) => panic!("the watcher stopped: {stopped:?}"),
        () = server => {}
    }
}
