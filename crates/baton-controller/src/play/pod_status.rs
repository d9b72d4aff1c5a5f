//! The Pod as the API server returns it after the kubelet's status update: the spec as written, plus
//! `.status` in the kubelet's shape, built from what podman knows. Pure: `podman inspect` data and the
//! messages read from the files in, Pod JSON out.
//!
//! The shape: `phase` by the kubelet's rule for `restartPolicy: Never`, `conditions`, `hostIP`,
//! `startTime`, `initContainerStatuses` in spec order and `containerStatuses` sorted by name (as the
//! kubelet sorts them), each with `name`, `state`, `lastState`, `ready`, `restartCount`, `image`,
//! `imageID`, `containerID` (`podman://…`) and `started`; a terminated state carries `exitCode`,
//! `reason` (`Completed` for 0, `Error` otherwise, `OOMKilled`), `message` (left out when empty),
//! `startedAt`, `finishedAt` (RFC 3339, whole seconds, as `metav1.Time` marshals them) and
//! `containerID`. A container the runtime could not start is `StartError`, exit code 128, with
//! the runtime's error as its message and `startedAt` 1970-01-01T00:00:00Z, as the kubelet shows it
//! with containerd (e2e/cluster.sh; Docker's dockershim said `ContainerCannotRun`).

use std::collections::BTreeMap;

use k8s_openapi::jiff::Timestamp;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::message;
use super::rewrite::{self, Container};

/// One container as `podman inspect` describes it (the fields the kubelet's part needs).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerInspect {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub created: Option<String>,
    /// The image's ID.
    #[serde(default)]
    pub image: String,
    pub state: InspectState,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct InspectState {
    /// created, initialized, running, paused, stopping, exited, stopped, …
    pub status: String,
    #[serde(default)]
    pub exit_code: i32,
    #[serde(default, rename = "OOMKilled")]
    pub oom_killed: bool,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub finished_at: Option<String>,
}

/// The pod as `podman pod inspect` describes it.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct PodInspect {
    pub id: String,
    #[serde(default)]
    pub created: Option<String>,
}

/// Everything read from podman and the host files after (or while) the pod runs.
#[derive(Clone, Debug, Default)]
pub struct Reading {
    pub pod: PodInspect,
    pub containers: Vec<ContainerInspect>,
    /// Container name → its message as the kubelet reads it, before the pod-wide cut: the file's last
    /// 4096 bytes, or the log tail under `FallbackToLogsOnError` (see [`message`]).
    pub messages: BTreeMap<String, Vec<u8>>,
    /// Container ID → the runtime's error, for the containers `podman kube play` could not start.
    pub start_errors: BTreeMap<String, String>,
    /// The pod outlived `activeDeadlineSeconds` and was stopped for it.
    pub deadline_exceeded: bool,
}

impl Reading {
    /// podman's record of `container` of pod `pod`.
    pub fn container(&self, pod: &str, container: &str) -> Option<&ContainerInspect> {
        let name = format!("{pod}-{container}");
        self.containers.iter().find(|c| c.name == name)
    }

    /// Whether podman could not start this container (the kubelet's `StartError`).
    pub fn cannot_run(&self, inspect: &ContainerInspect) -> bool {
        self.start_errors.contains_key(&inspect.id) && secs(inspect.state.started_at.as_deref()).is_none()
    }
}

/// podman kube play's report of the containers it could not start: `starting container ID: MESSAGE`
/// lines (inside brackets when podman lists several errors).
pub fn start_errors(play_output: &str) -> BTreeMap<String, String> {
    play_output
        .lines()
        .filter_map(|line| {
            let rest = line.trim_start_matches('[').split_once("starting container ")?.1;
            let (id, message) = rest.split_once(": ")?;
            let id_ok = id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit());
            id_ok.then(|| (id.to_string(), message.trim_end_matches(']').to_string()))
        })
        .collect()
}

/// A podman time as `metav1.Time` writes it: RFC 3339, UTC, whole seconds; `None` for Go's zero time.
pub fn secs(t: Option<&str>) -> Option<String> {
    let t = t?.trim();
    if t.is_empty() || t.starts_with("0001-01-01") {
        return None;
    }
    let ts: Timestamp = t.parse().ok()?;
    k8s_openapi::jiff::fmt::strtime::format("%Y-%m-%dT%H:%M:%SZ", ts).ok()
}

/// The kubelet's `StartError` start time.
const NEVER_STARTED: &str = "1970-01-01T00:00:00Z";

/// The Pod with its status: `pod` is the Pod as written (no harness mounts: an API object does not
/// show them).
pub fn pod_json(pod: &Value, reading: &Reading) -> Value {
    let name = pod.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let containers = rewrite::containers(pod);
    let ephemeral = pod.pointer("/spec/ephemeralContainers").and_then(Value::as_array).map_or(0, Vec::len);
    let share = message::pod_share(containers.len() + ephemeral);

    let statuses: Vec<(bool, Value)> =
        containers.iter().map(|c| (c.init, container_status(name, c, reading, share))).collect();
    let init: Vec<&Value> = statuses.iter().filter(|(i, _)| *i).map(|(_, s)| s).collect();
    let mut main: Vec<&Value> = statuses.iter().filter(|(i, _)| !*i).map(|(_, s)| s).collect();

    let exit = |s: &Value| s.pointer("/state/terminated/exitCode").and_then(Value::as_i64);
    let has = |s: &Value, state: &str| s.pointer(&format!("/state/{state}")).is_some();
    // The kubelet's phase for restartPolicy Never (getPhase).
    let phase = if reading.deadline_exceeded || init.iter().any(|s| exit(s).is_some_and(|c| c != 0)) {
        "Failed"
    } else if init.iter().any(|s| !has(s, "terminated")) || main.iter().any(|s| has(s, "waiting")) {
        "Pending"
    } else if main.iter().any(|s| has(s, "running")) {
        "Running"
    } else if main.iter().all(|s| exit(s) == Some(0)) {
        "Succeeded"
    } else {
        "Failed"
    };
    let done = matches!(phase, "Succeeded" | "Failed");
    let created = secs(reading.pod.created.as_deref());
    let last = statuses
        .iter()
        .filter_map(|(_, s)| s.pointer("/state/terminated/finishedAt").and_then(Value::as_str))
        .max()
        .map(str::to_string);
    let initialized = init.iter().all(|s| exit(s) == Some(0));
    let ready = phase == "Running" && main.iter().all(|s| s["ready"] == json!(true));
    let condition = |kind: &str, ok: bool, reason: bool| {
        let mut c = json!({
            "type": kind,
            "status": if ok { "True" } else { "False" },
            "lastProbeTime": null,
            "lastTransitionTime": last.clone().or(created.clone()),
        });
        if reason && done {
            c["reason"] = json!("PodCompleted");
        }
        c
    };

    main.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    let mut status = Map::new();
    status.insert("phase".into(), json!(phase));
    if reading.deadline_exceeded {
        status.insert("reason".into(), json!("DeadlineExceeded"));
        status
            .insert("message".into(), json!("Pod was active on the node longer than the specified deadline"));
    }
    status.insert(
        "conditions".into(),
        json!([
            condition("Initialized", initialized, true),
            condition("Ready", ready, true),
            condition("ContainersReady", ready, true),
            condition("PodScheduled", true, false),
        ]),
    );
    status.insert("hostIP".into(), json!("127.0.0.1"));
    status.insert("startTime".into(), json!(created));
    if !init.is_empty() {
        status.insert("initContainerStatuses".into(), json!(init));
    }
    status.insert("containerStatuses".into(), json!(main));
    status.insert("qosClass".into(), json!(qos_class(pod)));

    let mut out = pod.clone();
    let meta = &mut out["metadata"];
    if meta.get("namespace").is_none() {
        meta["namespace"] = json!("default");
    }
    let id = &reading.pod.id;
    if id.len() >= 32 {
        meta["uid"] =
            json!(format!("{}-{}-{}-{}-{}", &id[0..8], &id[8..12], &id[12..16], &id[16..20], &id[20..32]));
    }
    meta["creationTimestamp"] = json!(created);
    out["status"] = Value::Object(status);
    out
}

fn container_status(pod: &str, c: &Container, reading: &Reading, share: usize) -> Value {
    let waiting =
        || json!({"waiting": {"reason": if c.init { "PodInitializing" } else { "ContainerCreating" }}});
    let inspect = reading.container(pod, &c.name);
    let started = inspect.and_then(|i| secs(i.state.started_at.as_deref()));
    let text = |bytes: Option<&Vec<u8>>| bytes.map(|m| message::cut(m, share)).unwrap_or_default();
    let state = match inspect {
        None => waiting(),
        Some(i) if reading.cannot_run(i) => {
            let runtime = reading.start_errors[&i.id].as_bytes();
            json!({"terminated": {
                "exitCode": 128,
                "reason": "StartError",
                "message": message::cut(runtime, share),
                "startedAt": NEVER_STARTED,
                "finishedAt": secs(i.created.as_deref()),
                "containerID": format!("podman://{}", i.id),
            }})
        }
        Some(i) if matches!(i.state.status.as_str(), "running" | "paused" | "stopping") => {
            json!({"running": {"startedAt": started}})
        }
        Some(i) if matches!(i.state.status.as_str(), "exited" | "stopped") && started.is_some() => {
            let s = &i.state;
            let reason = if s.oom_killed {
                "OOMKilled"
            } else if s.exit_code == 0 {
                "Completed"
            } else {
                "Error"
            };
            let mut t = json!({
                "exitCode": s.exit_code,
                "reason": reason,
                "startedAt": started,
                "finishedAt": secs(s.finished_at.as_deref()),
                "containerID": format!("podman://{}", i.id),
            });
            let msg = text(reading.messages.get(&c.name));
            if !msg.is_empty() {
                t["message"] = json!(msg);
            }
            json!({"terminated": t})
        }
        Some(_) => waiting(),
    };
    let running = state.get("running").is_some();
    let exit = state.pointer("/terminated/exitCode").and_then(Value::as_i64);
    let mut status = json!({
        "name": c.name,
        "state": state,
        "lastState": {},
        "ready": if c.init { exit == Some(0) } else { running },
        "restartCount": 0,
        "image": c.image,
        "imageID": inspect.map(|i| i.image.clone()).unwrap_or_default(),
        "started": running,
    });
    if let Some(i) = inspect.filter(|i| started.is_some() || reading.cannot_run(i)) {
        status["containerID"] = json!(format!("podman://{}", i.id));
    }
    status
}

/// The pod's QoS class: BestEffort without any requests or limits, Guaranteed when every container
/// limits CPU and memory and requests what it limits, else Burstable.
fn qos_class(pod: &Value) -> &'static str {
    let all: Vec<&Value> = ["initContainers", "containers"]
        .iter()
        .filter_map(|k| pod.pointer(&format!("/spec/{k}")).and_then(Value::as_array))
        .flatten()
        .collect();
    let get = |c: &Value, kind: &str, res: &str| {
        c.pointer(&format!("/resources/{kind}/{res}")).map(|v| v.to_string().trim_matches('"').to_string())
    };
    let any = all.iter().any(|c| {
        ["requests", "limits"].iter().any(|k| {
            c.pointer(&format!("/resources/{k}")).and_then(Value::as_object).is_some_and(|m| !m.is_empty())
        })
    });
    if !any {
        return "BestEffort";
    }
    let guaranteed = all.iter().all(|c| {
        ["cpu", "memory"].iter().all(|r| {
            let limit = get(c, "limits", r);
            limit.is_some() && get(c, "requests", r).is_none_or(|req| Some(req) == limit)
        })
    });
    if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_whole_seconds_and_go_zero_is_none() {
        assert_eq!(secs(Some("2026-11-30T04:27:38.920215879Z")).as_deref(), Some("2026-11-30T04:27:38Z"));
        assert_eq!(secs(Some("2026-11-30T05:27:38.9+01:00")).as_deref(), Some("2026-11-30T04:27:38Z"));
        assert_eq!(secs(Some("0001-01-01T00:00:00Z")), None);
        assert_eq!(secs(Some("")), None);
        assert_eq!(secs(None), None);
    }

    #[test]
    fn start_errors_are_read_from_play_output() {
        let id = "6b9379177e0941495dd0b82d4d16fbbd68ebde9d510e7892254266dcea7cf63e";
        let out = format!("[starting container {id}: runc: exec: \"/x\": no such file]\nPod:\nabc\nError: failed to start 1 containers\n");
        let errors = start_errors(&out);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[id], "runc: exec: \"/x\": no such file");
        assert!(start_errors("starting container abc: no").is_empty());
    }

    #[test]
    fn qos_follows_requests_and_limits() {
        let pod = |res: Value| json!({"spec": {"containers": [{"name": "a", "resources": res}]}});
        assert_eq!(qos_class(&pod(json!({}))), "BestEffort");
        assert_eq!(qos_class(&pod(json!({"requests": {"cpu": "1"}}))), "Burstable");
        assert_eq!(qos_class(&pod(json!({"limits": {"cpu": "1", "memory": "1Gi"}}))), "Guaranteed");
        assert_eq!(
            qos_class(&pod(json!({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}}))),
            "Burstable"
        );
    }
}
