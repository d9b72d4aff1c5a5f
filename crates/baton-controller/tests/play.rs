//! `batonctl play`'s kubelet emulation on data captured from real podman runs
//! (tests/fixtures/play/NAME/, made by capture.sh there): the Pod JSON built from `podman inspect`, the
//! termination-message files and the logs; the same inputs through the shell harness's rules
//! (e2e/lib.sh `read_message`, e2e/kubelet/status.jq) give the same Pod; and `batonctl play`'s
//! refusals as a process.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

mod support;

use baton_controller::play::pod_status::{self, ContainerInspect, PodInspect, Reading};
use baton_controller::play::{manifest, message, rewrite};
use baton_controller::status::{run_status, Phase};
use k8s_openapi::api::core::v1::Pod;
use serde_json::{json, Value};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/play").join(name)
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// The captured run `name`: the Pod as written and what podman and the files said.
struct Captured {
    dir: PathBuf,
    spec: Value,
    reading: Reading,
}

fn captured(name: &str) -> Captured {
    let dir = fixture(name);
    let text = std::fs::read_to_string(dir.join("pod.yaml")).unwrap();
    let spec = manifest::read(&text, Some(&format!("play-fixture-{name}"))).unwrap().pod;
    let containers: Vec<ContainerInspect> =
        serde_json::from_slice(&std::fs::read(dir.join("inspect.json")).unwrap()).unwrap();
    let pod: PodInspect =
        serde_json::from_slice(&std::fs::read(dir.join("pod-inspect.json")).unwrap()).unwrap();
    let play_log = std::fs::read_to_string(dir.join("play.log")).unwrap();
    let mut reading =
        Reading { pod, containers, start_errors: pod_status::start_errors(&play_log), ..Reading::default() };
    let pod_name = spec["metadata"]["name"].as_str().unwrap().to_string();
    for c in rewrite::containers(&spec) {
        let i = reading.container(&pod_name, &c.name).unwrap().clone();
        if i.state.status != "exited" || reading.cannot_run(&i) {
            continue;
        }
        let file = std::fs::read(dir.join("containers").join(&c.name).join("termination-log")).unwrap();
        let logs = || std::fs::read(dir.join("containers").join(&c.name).join("log"));
        let m =
            message::read(message::file_tail(&file).to_vec(), c.fallback_to_logs, i.state.exit_code, logs)
                .unwrap();
        reading.messages.insert(c.name.clone(), m);
    }
    Captured { dir, spec, reading }
}

fn terminated<'a>(pod: &'a Value, name: &str) -> &'a Value {
    ["initContainerStatuses", "containerStatuses"]
        .iter()
        .filter_map(|k| pod["status"][k].as_array())
        .flatten()
        .find(|s| s["name"] == name)
        .map(|s| &s["state"]["terminated"])
        .unwrap_or_else(|| panic!("no status for {name}"))
}

#[test]
fn kubelet_rules_on_a_real_run() {
    let c = captured("kubelet");
    let pod = pod_status::pod_json(&c.spec, &c.reading);
    let t = |n: &str| terminated(&pod, n);
    assert_eq!((t("probe")["exitCode"].clone(), t("probe")["reason"].clone()), (json!(3), json!("Error")));
    assert_eq!(t("probe")["message"], "written in place");
    // FallbackToLogsOnError: the failed container's last 80 log lines.
    let want: String = (21..=100).map(|i| format!("log line {i}\n")).collect();
    assert_eq!(t("fallback")["message"], want);
    // 5000 bytes written: the last 4096, then the first 12288 / 5 containers = 2457 of those.
    let written: String = (1..=2000).map(|i| format!("{i} ")).collect::<String>()[..5000].to_string();
    assert_eq!(t("big")["message"].as_str().unwrap(), &written[5000 - 4096..][..2457]);
    // A successful container gives no message, whatever its policy; the field is left out.
    assert!(t("quiet").get("message").is_none());
    let missing = t("missing");
    assert_eq!((missing["exitCode"].clone(), missing["reason"].clone()), (json!(128), json!("StartError")));
    assert!(missing["message"].as_str().unwrap().contains("/var/run/baton/bin/baton"), "{missing}");
    assert_eq!(missing["startedAt"], "1970-01-01T00:00:00Z");
    assert_eq!(pod["status"]["phase"], "Failed");
    // The kubelet sorts regular container statuses by name.
    let order: Vec<&str> = pod["status"]["containerStatuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["big", "fallback", "missing", "probe", "quiet"]);
}

#[test]
fn the_pipeline_succeeds_with_its_results() {
    let c = captured("pipeline");
    let pod = pod_status::pod_json(&c.spec, &c.reading);
    assert_eq!(pod["status"]["phase"], "Succeeded");
    assert_eq!(terminated(&pod, "baton-init")["reason"], "Completed");
    assert!(pod["status"]["initContainerStatuses"][0]["ready"].as_bool().unwrap());
    for s in pod["status"]["containerStatuses"].as_array().unwrap() {
        let t = &s["state"]["terminated"];
        assert_eq!((t["exitCode"].as_i64(), t["reason"].as_str()), (Some(0), Some("Completed")), "{s}");
        // metav1.Time: whole seconds, UTC.
        assert_eq!(t["startedAt"].as_str().unwrap().len(), 20, "{t}");
        assert!(s["containerID"].as_str().unwrap().starts_with("podman://"));
    }
    let uid = pod["metadata"]["uid"].as_str().unwrap();
    assert_eq!(uid.split('-').map(str::len).collect::<Vec<_>>(), [8, 4, 4, 4, 12]);
    // The spec is the Pod as written: no harness volume, no pull policy rewritten.
    assert_eq!(pod["spec"], c.spec["spec"]);
    let run = run_status(&serde_json::from_value::<Pod>(pod).unwrap());
    assert_eq!(run.phase, Phase::Succeeded);
    assert_eq!(run.results["url"], "file:///workspace/published/app-v1.2.3.tar");
    assert_eq!(run.results["digest"].len(), 64);
}

#[test]
fn the_failure_example_fails_and_skips() {
    let c = captured("failure");
    let pod = pod_status::pod_json(&c.spec, &c.reading);
    assert_eq!(pod["status"]["phase"], "Failed");
    let run = run_status(&serde_json::from_value::<Pod>(pod).unwrap());
    assert_eq!(run.phase, Phase::Failed);
    let step = |n: &str| run.steps.iter().find(|s| s.name == n).unwrap();
    assert_eq!((step("test").exit_code, step("test").reason.as_deref()), (Some(3), Some("Failed")));
    for skipped in ["package", "upload"] {
        assert_eq!((step(skipped).exit_code, step(skipped).reason.as_deref()), (None, Some("Skipped")));
    }
    assert_eq!(step("notify").reason.as_deref(), Some("Completed"));
    assert_eq!(run.results["message"], "tests failed: 2");
}

#[test]
fn a_pod_still_running_and_one_not_created_yet() {
    let mut c = captured("pipeline");
    let name = "play-fixture-pipeline-publish";
    let publish = c.reading.containers.iter_mut().find(|i| i.name == name).unwrap();
    publish.state.status = "running".into();
    publish.state.finished_at = Some("0001-01-01T00:00:00Z".into());
    c.reading.messages.remove("publish");
    c.reading.containers.retain(|i| !i.name.ends_with("-build"));
    let pod = pod_status::pod_json(&c.spec, &c.reading);
    let status = |n: &str| {
        pod["status"]["containerStatuses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == n)
            .unwrap()
            .clone()
    };
    assert!(status("publish")["state"]["running"]["startedAt"].is_string());
    assert_eq!(
        (status("publish")["ready"].clone(), status("publish")["started"].clone()),
        (json!(true), json!(true))
    );
    assert_eq!(status("build")["state"], json!({"waiting": {"reason": "ContainerCreating"}}));
    assert!(status("build").get("containerID").is_none());
    assert_eq!(pod["status"]["phase"], "Pending");
}

#[test]
fn a_deadline_fails_the_pod_with_the_kubelets_reason() {
    let mut c = captured("pipeline");
    c.reading.deadline_exceeded = true;
    let pod = pod_status::pod_json(&c.spec, &c.reading);
    assert_eq!(pod["status"]["phase"], "Failed");
    assert_eq!(pod["status"]["reason"], "DeadlineExceeded");
    let run = run_status(&serde_json::from_value::<Pod>(pod).unwrap());
    assert_eq!(run.phase, Phase::Failed);
    assert!(run.warnings[0].contains("DeadlineExceeded"), "{:?}", run.warnings);
}

// ---------------------------------------------------------------------------------------------------
// One set of rules: the shell harness (e2e/run.sh keeps it) and this crate agree on the same inputs.

fn bash(script: &str, args: &[&str]) -> Output {
    let out = Command::new("bash")
        .arg("-c")
        .arg(script)
        .arg("bash")
        .args(args)
        .env("E2E_NAME", "play-test")
        .stderr(Stdio::piped())
        .output()
        .expect("bash runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out
}

fn need_jq() {
    let ok = Command::new("jq").arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(ok, "jq is needed to compare with e2e/kubelet/status.jq: apt-get install jq (test.sh does)");
}

/// The shell harness's reading of a message: e2e/lib.sh's read_message (tail -c 4096 | head -c SHARE).
fn shell_read_message(file: &Path, share: usize) -> Vec<u8> {
    let lib = repo().join("e2e/lib.sh");
    let script = r#"source "$1"; read_message "$2" "$3""#;
    bash(script, &[lib.to_str().unwrap(), file.to_str().unwrap(), &share.to_string()]).stdout
}

#[test]
fn the_shell_harness_cuts_the_same_bytes() {
    let dir = std::env::temp_dir().join(format!("baton-play-cut-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("short", b"written in place".to_vec()),
        ("ascii-5000", (1..=2000).map(|i| format!("{i} ")).collect::<String>().into_bytes()[..5000].to_vec()),
        ("two-byte-chars", "é".repeat(3000).into_bytes()),
        ("three-byte-chars", "a€".repeat(1500).into_bytes()),
        ("invalid", (0..=255u8).cycle().take(6000).collect()),
    ];
    for (name, bytes) in &cases {
        let file = dir.join(name);
        std::fs::write(&file, bytes).unwrap();
        for share in [12288, 4096, 3072, 2457, 1228, 7] {
            let rust = &message::file_tail(bytes)[..message::file_tail(bytes).len().min(share)];
            assert_eq!(shell_read_message(&file, share), rust, "{name}, share {share}");
        }
    }
    assert!(shell_read_message(&dir.join("no-such-file"), 4096).is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_character_cut_in_three_bytes_is_where_jq_and_go_differ() {
    need_jq();
    // "€" is E2 82 AC; cut after E2 82. Go's encoder (the API server) writes U+FFFD per invalid byte;
    // jq 1.6 (the shell harness) writes one per cut character. Only a message cut inside a
    // character of three or four bytes shows it; baton's records never reach that cut.
    let cut = "a€".as_bytes()[..3].to_vec();
    assert_eq!(message::go_string(&cut), "a\u{FFFD}\u{FFFD}");
    let mut jq =
        Command::new("jq").args(["-Rs", "."]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    std::io::Write::write_all(&mut jq.stdin.take().unwrap(), &cut).unwrap();
    let out = jq.wait_with_output().unwrap();
    let jq_text: String = serde_json::from_slice(&out.stdout).unwrap();
    let version = Command::new("jq").arg("--version").output().unwrap().stdout;
    if version.starts_with(b"jq-1.6") {
        assert_eq!(jq_text, "a\u{FFFD}");
    } else {
        assert!(jq_text == "a\u{FFFD}" || jq_text == "a\u{FFFD}\u{FFFD}", "{jq_text:?}");
    }
}

/// The Pod the shell harness builds (e2e/kubelet/status.jq) from the same captured run: messages read
/// with lib.sh's read_message and the fallback rule of lib.sh's kubelet_status.
fn shell_pod_json(c: &Captured) -> Value {
    need_jq();
    let work = std::env::temp_dir().join(format!(
        "baton-play-jq-{}-{}",
        std::process::id(),
        c.spec["metadata"]["name"].as_str().unwrap()
    ));
    std::fs::create_dir_all(&work).unwrap();
    let containers = rewrite::containers(&c.spec);
    let share = message::POD_BUDGET / containers.len();
    let mut messages = BTreeMap::new();
    let pod_name = c.spec["metadata"]["name"].as_str().unwrap();
    for k in &containers {
        let dir = c.dir.join("containers").join(&k.name);
        let mut m = shell_read_message(&dir.join("termination-log"), message::FILE_LIMIT);
        let exit = c.reading.container(pod_name, &k.name).map_or(0, |i| i.state.exit_code);
        if k.fallback_to_logs && m.is_empty() && exit != 0 {
            // lib.sh: podman logs --tail 80 | tail -c 2048 (the fixture holds podman logs --tail 80).
            let script = r#"tail -c "$2" "$1""#;
            m = bash(script, &[dir.join("log").to_str().unwrap(), &message::LOG_BYTES.to_string()]).stdout;
        }
        m.truncate(share);
        messages.insert(k.name.clone(), String::from_utf8(m).expect("the fixtures cut no character"));
    }
    std::fs::write(work.join("spec.json"), c.spec.to_string()).unwrap();
    std::fs::write(work.join("messages.json"), serde_json::to_string(&messages).unwrap()).unwrap();
    let errors: BTreeMap<&String, &String> = c.reading.start_errors.iter().collect();
    std::fs::write(work.join("start-errors.json"), serde_json::to_string(&errors).unwrap()).unwrap();
    let status_jq = repo().join("e2e/kubelet/status.jq");
    let out = Command::new("jq")
        .arg("-n")
        .args(["--slurpfile", "spec"])
        .arg(work.join("spec.json"))
        .args(["--slurpfile", "ctrs"])
        .arg(c.dir.join("inspect.json"))
        .args(["--slurpfile", "pod"])
        .arg(c.dir.join("pod-inspect.json"))
        .args(["--slurpfile", "msgs"])
        .arg(work.join("messages.json"))
        .args(["--slurpfile", "starterr"])
        .arg(work.join("start-errors.json"))
        .arg("-f")
        .arg(status_jq)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::remove_dir_all(&work).unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn status_jq_and_this_crate_build_the_same_pod() {
    for name in ["kubelet", "pipeline", "failure"] {
        let c = captured(name);
        let rust = pod_status::pod_json(&c.spec, &c.reading);
        let mut shell = shell_pod_json(&c);
        // The two differences in shape, where this crate follows the kubelet and status.jq does not:
        // the kubelet sorts regular container statuses by name (status.jq keeps spec order), and gives
        // a container that could not run its containerID (status.jq only to started ones).
        let statuses = shell["status"]["containerStatuses"].as_array_mut().unwrap();
        statuses.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        for s in statuses.iter_mut() {
            if s["state"]["terminated"]["reason"] == "StartError" && s.get("containerID").is_none() {
                s["containerID"] = s["state"]["terminated"]["containerID"].clone();
            }
        }
        assert_eq!(rust, shell, "{name}: the Pod JSON differs");
    }
}

// ---------------------------------------------------------------------------------------------------
// `batonctl play` as a process, where it refuses before any container exists.

fn play(args: &[&str], stdin: &[u8]) -> Output {
    let mut command = support::batonctl();
    command.arg("play").args(args);
    support::run_with_input(command, stdin)
}

#[test]
fn refusals_exit_3_with_one_sentence() {
    let out = play(&["-f", "-"], b"kind: Service\nmetadata: {name: s}\n");
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "batonctl: the input holds no Pod, Job or CronJob (it holds Service s); batonctl play runs one of those\n"
    );
    let pod = b"kind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: a, image: i}]\n";
    let out = play(&[], pod);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("restartPolicy Always (the default when none is set)")
    );
    let out = play(&["--containers-conf", "/no/such/containers.conf"], pod);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("--containers-conf /no/such/containers.conf: no such file"));
    let out = play(&["-f", "/no/such/manifest.yaml"], b"");
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot open /no/such/manifest.yaml"));
    assert!(out.stdout.is_empty());
}
