//! The driver of bench/controller-scale.sh: `batonctl watch --annotate` on many pods of a real API
//! server, whose statuses change through the API (no kubelet: the pods carry a scheduling gate, so
//! no node ever runs them, and their container statuses are written as a kubelet would write them).
//!
//! It creates the pods, starts the watcher (a child process, so that its memory and CPU time are its
//! own), waits until it holds every pod, then ends the pods' steps one change at a time at a steady
//! rate, and measures:
//! - the time from each accepted status write to the first annotation that shows it (its own watch);
//! - the annotation writes the watcher made (its metrics) against the changes;
//! - the watcher's peak and final memory (`/proc/PID/status`) and its CPU time per pod update.
//!
//! Prints one JSON object. Usage (the namespace must not exist; it is left for the caller to delete):
//!   scale_bench BATONCTL NAMESPACE PODS STEPS RATE METRICS_PORT [WATCH ARGS...]

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::runtime::WatchStreamExt;
use kube::Client;
use serde_json::{json, Value};
use tokio::time::Instant;

/// The annotation the watcher writes (batonctl's `watch::ANNOTATION`).
const ANNOTATION: &str = "baton.dev/run-status";

struct Plan {
    batonctl: String,
    namespace: String,
    pods: usize,
    steps: usize,
    rate: f64,
    port: u16,
    watch_args: Vec<String>,
}

fn plan() -> Plan {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 6 {
        eprintln!("usage: scale_bench BATONCTL NAMESPACE PODS STEPS RATE METRICS_PORT [WATCH ARGS...]");
        std::process::exit(2);
    }
    let number = |i: usize| -> f64 {
        args[i].parse().unwrap_or_else(|_| panic!("argument {} is not a number: {}", i + 1, args[i]))
    };
    Plan {
        batonctl: args[0].clone(),
        namespace: args[1].clone(),
        pods: number(2) as usize,
        steps: number(3) as usize,
        rate: number(4),
        port: number(5) as u16,
        watch_args: args[6..].to_vec(),
    }
}

fn pod_name(i: usize) -> String {
    format!("scale-{i:05}")
}

/// A pod as `batonctl inject` leaves it, as far as the watcher looks: the label, steps by name. The
/// scheduling gate keeps every node away.
fn pod(i: usize, steps: usize) -> Pod {
    let containers: Vec<Value> = (0..steps)
        .map(|s| json!({"name": format!("step-{s}"), "image": "registry.invalid/step:1"}))
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": pod_name(i), "labels": {"baton.dev/injected": "true", "app": "scale"}},
        "spec": {"schedulingGates": [{"name": "baton.dev/scale-bench"}], "containers": containers},
    }))
    .expect("a valid pod")
}

/// The status a kubelet would write once steps `0..ended` have ended: each with baton's record as
/// its termination message, the next one running, the rest waiting; Succeeded after the last.
fn status(steps: usize, ended: usize) -> Value {
    let at = |s: usize| format!("2026-12-06T10:{:02}:{:02}Z", s / 60 % 60, s % 60);
    let statuses: Vec<Value> = (0..steps)
        .map(|s| {
            let name = format!("step-{s}");
            let state = if s < ended {
                let record = json!({"baton": 1, "step": name, "exitCode": 0, "reason": "Completed",
                    "startedAt": at(s), "finishedAt": at(s + 1), "results": {"step": s.to_string()}});
                json!({"terminated": {"exitCode": 0, "reason": "Completed", "message": record.to_string(),
                    "startedAt": at(s), "finishedAt": at(s + 1)}})
            } else if s == ended {
                json!({"running": {"startedAt": at(s)}})
            } else {
                json!({"waiting": {"reason": "PodInitializing"}})
            };
            json!({"name": name, "image": "registry.invalid/step:1", "imageID": "", "ready": s == ended,
                   "restartCount": 0, "state": state})
        })
        .collect();
    let phase = if ended == steps { "Succeeded" } else { "Running" };
    json!({"status": {"phase": phase, "containerStatuses": statuses}})
}

/// Steps the annotation says have ended.
fn ended_in(pod: &Pod) -> Option<usize> {
    let value = pod.metadata.annotations.as_ref()?.get(ANNOTATION)?;
    let status: Value = serde_json::from_str(value).ok()?;
    let steps = status["steps"].as_array()?;
    Some(steps.iter().filter(|s| s["state"] == "terminated").count())
}

/// A field of `/proc/PID/status` in KiB.
fn proc_kib(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The process's user and system CPU time, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // After the command: state is field 0, utime 11, stime 12; the kernel's USER_HZ is 100.
    (ticks(11) + ticks(12)) / 100.0
}

/// One value of the watcher's metrics (a counter's or gauge's sample with these labels).
async fn metric(port: u16, sample: &str) -> Option<f64> {
    let body = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        stream.write_all(b"GET /metrics HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n").ok()?;
        let mut body = String::new();
        stream.read_to_string(&mut body).ok()?;
        Some(body)
    })
    .await
    .ok()??;
    body.lines().find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.trim().parse().ok())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

struct Watcher(Child);

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let plan = plan();
    let client = Client::try_default().await?;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": plan.namespace}}))?;
    namespaces.create(&PostParams::default(), &namespace).await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &plan.namespace);

    // 1. The pods, 32 creations at a time.
    let t0 = Instant::now();
    futures::stream::iter(0..plan.pods)
        .map(|i| {
            let pods = pods.clone();
            async move { pods.create(&PostParams::default(), &pod(i, plan.steps)).await.map(|_| ()) }
        })
        .buffer_unordered(32)
        .try_collect::<()>()
        .await?;
    let created_in = t0.elapsed();

    // 2. The watcher, until it holds every pod.
    let mut command = Command::new(&plan.batonctl);
    command
        .args(["watch", "--annotate", "-n", &plan.namespace])
        .arg(format!("--metrics-listen=127.0.0.1:{}", plan.port))
        .args(&plan.watch_args)
        .stdout(Stdio::null());
    let watcher = Watcher(command.spawn()?);
    let pid = watcher.0.id();
    let t1 = Instant::now();
    while metric(plan.port, "batonctl_watch_pods").await != Some(plan.pods as f64) {
        if t1.elapsed() > Duration::from_secs(120) {
            return Err(format!("the watcher did not hold the {} pods within 120 s", plan.pods).into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let listed_in = t1.elapsed();
    let rss_listed = proc_kib(pid, "VmRSS");

    // 3. Our own watch: when each pod's annotation first shows each number of ended steps.
    let seen: Arc<Mutex<HashMap<String, Vec<Option<Instant>>>>> = Arc::default();
    let mut stream = watcher::watcher(pods.clone(), watcher::Config::default()).applied_objects().boxed();
    let observer = {
        let seen = seen.clone();
        let steps = plan.steps;
        tokio::spawn(async move {
            while let Some(Ok(pod)) = stream.next().await {
                let (Some(name), Some(ended)) = (pod.metadata.name.clone(), ended_in(&pod)) else { continue };
                let now = Instant::now();
                let mut seen = seen.lock().unwrap();
                let times = seen.entry(name).or_insert_with(|| vec![None; steps + 1]);
                // An annotation showing n ended steps shows every change up to n.
                for slot in times.iter_mut().take(ended + 1) {
                    slot.get_or_insert(now);
                }
            }
        })
    };

    // 4. The changes: round by round, each pod's next step ends, at a steady rate.
    let cpu_before = cpu_seconds(pid);
    let updates_before = metric(plan.port, "batonctl_watch_updates_total").await.unwrap_or(0.0);
    let interval = Duration::from_secs_f64(1.0 / plan.rate);
    let changes: Vec<(usize, usize)> =
        (1..=plan.steps).flat_map(|ended| (0..plan.pods).map(move |i| (i, ended))).collect();
    let start = Instant::now();
    let accepted: Vec<(usize, usize, Instant)> = futures::stream::iter(changes.iter().copied().enumerate())
        .map(|(n, (i, ended))| {
            let pods = pods.clone();
            let steps = plan.steps;
            async move {
                tokio::time::sleep_until(start + interval * n as u32).await;
                let patch = status(steps, ended);
                pods.patch_status(&pod_name(i), &PatchParams::default(), &Patch::Merge(&patch)).await?;
                Ok::<_, kube::Error>((i, ended, Instant::now()))
            }
        })
        .buffer_unordered(64)
        .try_collect()
        .await?;
    let changes_took = start.elapsed();

    // 5. Until every pod's last change shows (or two minutes).
    let t2 = Instant::now();
    loop {
        let done = {
            let seen = seen.lock().unwrap();
            seen.len() == plan.pods && seen.values().all(|times| times[plan.steps].is_some())
        };
        if done || t2.elapsed() > Duration::from_secs(120) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cpu = cpu_seconds(pid) - cpu_before;
    let updates = metric(plan.port, "batonctl_watch_updates_total").await.unwrap_or(0.0) - updates_before;
    let written = metric(plan.port, "batonctl_watch_patches_total{result=\"written\"}").await.unwrap_or(0.0);
    let failed = metric(plan.port, "batonctl_watch_patches_total{result=\"failed\"}").await.unwrap_or(0.0);
    let (hwm, rss, anon) = (proc_kib(pid, "VmHWM"), proc_kib(pid, "VmRSS"), proc_kib(pid, "RssAnon"));
    observer.abort();
    drop(watcher);

    let seen = seen.lock().unwrap();
    let mut latencies: Vec<f64> = Vec::new();
    let mut missing = 0;
    for (i, ended, at) in &accepted {
        match seen.get(&pod_name(*i)).and_then(|times| times[*ended]) {
            Some(shown) => latencies.push(shown.saturating_duration_since(*at).as_secs_f64() * 1000.0),
            None => missing += 1,
        }
    }
    latencies.sort_by(f64::total_cmp);
    let report = json!({
        "pods": plan.pods,
        "steps": plan.steps,
        "changes": accepted.len(),
        "rate_per_s": plan.rate,
        "watch_args": plan.watch_args,
        "created_s": created_in.as_secs_f64(),
        "listed_s": listed_in.as_secs_f64(),
        "changes_s": changes_took.as_secs_f64(),
        "annotations_written": written,
        "annotations_failed": failed,
        "writes_per_change": written / accepted.len().max(1) as f64,
        "changes_not_shown": missing,
        "latency_ms": {
            "p50": percentile(&latencies, 50.0),
            "p90": percentile(&latencies, 90.0),
            "p99": percentile(&latencies, 99.0),
            "max": latencies.last().copied().unwrap_or(f64::NAN),
        },
        "updates": updates,
        "cpu_s": cpu,
        "cpu_us_per_update": cpu * 1e6 / updates.max(1.0),
        "memory_kib": {"rss_after_list": rss_listed, "peak_rss": hwm, "rss_end": rss, "anon_end": anon},
    });
    println!("{report}");
    Ok(())
}
