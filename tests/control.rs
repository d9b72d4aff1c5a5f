//! Lifecycle control from `kubectl exec` (issue 3): `baton status`, `kill`, `release`, `resume` and the
//! `baton run` options `--gate`, `--breakpoint-on-failure`, `--until`, `--stop-after`, `--stop-timeout`.
//!
//! Every test is a simulated pod: a temp dir stands in for the emptyDir (mode 0777, as the kubelet
//! creates it), `baton init` prepares it as the init container would, and each "container" is a
//! `baton run` wrapper the test starts out of process. The tests synchronise on the shared
//! directory's files (`state.json`, `exit.json`) and on marker files the commands write, through
//! `eventually`, a bounded poll: never a fixed sleep. The only time bounds are generous ones that
//! tell an event-driven reaction from a hang or a timeout that should not have been needed.
//!
//! The cross-UID tests need root (to start steps as UID 65532 with `setpriv`); elsewhere they say
//! so on stderr and pass without checking anything.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

#[path = "common/under_test.rs"]
mod under_test;
use under_test::BATON;

/// The longest anything awaited may take: far beyond an event-driven reaction on a loaded machine,
/// far below a hang.
const PATIENCE: Duration = Duration::from_secs(15);

/// A command body that runs until it is signalled. Bounded (about a minute), so that nothing
/// outlives a crashed test for long.
const LOOP: &str = "n=0; while [ $n -lt 600 ]; do sleep 0.1; n=$((n+1)); done";

/// A script line that waits (at most ~10 s) until the wrapper of step `$STEP` says it is running.
const UNTIL_I_RUN: &str = r#"i=0; until grep -q '"state":"running"' "$D/steps/$STEP/state.json" 2>/dev/null || [ $i -ge 1000 ]; do sleep 0.01; i=$((i+1)); done"#;

/// The non-root UID of distroless images.
const NONROOT: u32 = 65532;

// ---------------------------------------------------------------------------------------------
// A simulated pod
// ---------------------------------------------------------------------------------------------

/// Polls `f` every 10 ms until it returns `Some`, for at most `PATIENCE`.
fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {PATIENCE:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// What a `baton` control command did.
#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn code_of(status: std::process::ExitStatus) -> i32 {
    status.code().unwrap_or_else(|| 128 + status.signal().expect("exited or signalled"))
}

struct Pod {
    /// The emptyDir.
    shared: tempfile::TempDir,
    /// The wrappers' own stdout/stderr (what `kubectl logs` would show), outside the emptyDir.
    logs: tempfile::TempDir,
}

impl Pod {
    /// A pod whose init container ran `baton init`, as root, on a 0777 emptyDir.
    fn new() -> Pod {
        let pod = Pod::bare();
        let out = pod.baton(&["init"]);
        assert_eq!(out.code, 0, "baton init: {out:?}");
        pod
    }

    /// A pod without `baton init`: the wrappers create the folders they need.
    fn bare() -> Pod {
        let shared = tempfile::Builder::new().prefix("baton-control-").tempdir().expect("temp dir");
        fs::set_permissions(shared.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let logs = tempfile::Builder::new().prefix("baton-control-logs-").tempdir().expect("temp dir");
        Pod { shared, logs }
    }

    fn dir(&self) -> &Path {
        self.shared.path()
    }

    fn dir_str(&self) -> &str {
        self.dir().to_str().expect("UTF-8 temp dir")
    }

    /// A marker file the commands write into (`"$D/<name>"` in their scripts).
    fn file(&self, name: &str) -> PathBuf {
        self.dir().join(name)
    }

    fn read(&self, name: &str) -> String {
        fs::read_to_string(self.file(name)).unwrap_or_else(|e| panic!("cannot read marker {name}: {e}"))
    }

    fn wait_file(&self, name: &str) {
        let path = self.file(name);
        eventually(&format!("marker {}", path.display()), || path.exists().then_some(()));
    }

    /// Starts describing a wrapper for step `name`.
    fn step(&self, name: &str) -> Launch<'_> {
        Launch { pod: self, name: name.to_string(), opts: Vec::new(), uid: None, env: Vec::new(), pid_ns: false }
    }

    /// `baton SUBCOMMAND --dir D ARGS...` as root, in a clean environment.
    fn baton(&self, args: &[&str]) -> Out {
        self.baton_with(None, &[], args)
    }

    /// The same as another UID, through the copy `baton init` put in the shared directory.
    fn baton_as(&self, uid: u32, args: &[&str]) -> Out {
        self.baton_with(Some(uid), &[], args)
    }

    fn baton_with(&self, uid: Option<u32>, env: &[(&str, &str)], args: &[&str]) -> Out {
        let mut cmd = match uid {
            None => Command::new(BATON.as_str()),
            Some(uid) => {
                let mut c = Command::new("setpriv");
                c.args([format!("--reuid={uid}"), format!("--regid={uid}"), "--clear-groups".into()]);
                c.arg(self.dir().join("bin/baton"));
                c
            }
        };
        cmd.arg(args[0]).arg("--dir").arg(self.dir()).args(&args[1..]);
        clean_env(&mut cmd);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.stdin(Stdio::null()).output().expect("run baton");
        Out {
            code: code_of(out.status),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The exit record of a step (`steps/<name>/exit.json`).
    fn record(&self, name: &str) -> Value {
        let path = self.dir().join("steps").join(name).join("exit.json");
        let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("no record for step {name}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("record of {name} is not JSON ({e}): {text}"))
    }

    fn ended(&self, name: &str) -> bool {
        self.dir().join("steps").join(name).join("exit.json").exists()
    }

    /// The wrapper's own `state.json`, if it has one now.
    fn state(&self, name: &str) -> Option<Value> {
        let text = fs::read_to_string(self.dir().join("steps").join(name).join("state.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Waits until step `name`'s wrapper says it is in `phase` (waiting, running, paused).
    /// Waits for the phase; for "running", also for the command's pid, which baton records just
    /// after the spawn (it says "running" just before, so that an early kill is heard).
    fn wait_phase(&self, name: &str, phase: &str) -> Value {
        eventually(&format!("step {name} to be {phase}"), || {
            self.state(name).filter(|s| s["state"] == phase && (phase != "running" || s["childPid"].is_u64()))
        })
    }

    /// `baton status --json`, as an array.
    fn status(&self) -> Vec<Value> {
        let out = self.baton(&["status", "--json"]);
        assert_eq!(out.code, 0, "baton status --json: {out:?}");
        match serde_json::from_str(&out.stdout) {
            Ok(Value::Array(a)) => a,
            other => panic!("status --json is not an array: {other:?}\n{}", out.stdout),
        }
    }

    /// One step's object from `baton status --json`.
    fn view(&self, name: &str) -> Value {
        self.status()
            .into_iter()
            .find(|v| v["step"] == name)
            .unwrap_or_else(|| panic!("step {name} missing from baton status --json"))
    }
}

fn clean_env(cmd: &mut Command) {
    for var in ["BATON_DIR", "BATON_STEP", "BATON_INOTIFY", "HOSTNAME"] {
        cmd.env_remove(var);
    }
}

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

fn can_switch_uid(test: &str) -> bool {
    let ok = is_root() && Path::new("/usr/bin/setpriv").exists();
    if !ok {
        eprintln!("{test}: skipped: needs root and setpriv to start steps as UID {NONROOT}");
    }
    ok
}

/// A wrapper about to be started: `baton run --dir D --name NAME OPTS -- sh -c SCRIPT`.
struct Launch<'p> {
    pod: &'p Pod,
    name: String,
    opts: Vec<String>,
    uid: Option<u32>,
    env: Vec<(String, String)>,
    pid_ns: bool,
}

impl Launch<'_> {
    fn opts(mut self, opts: &[&str]) -> Self {
        self.opts.extend(opts.iter().map(|s| s.to_string()));
        self
    }

    fn run_as(mut self, uid: u32) -> Self {
        self.uid = Some(uid);
        self
    }

    fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Runs the wrapper as PID 1 of a new PID namespace, like a container's entrypoint.
    fn own_pid_namespace(mut self) -> Self {
        self.pid_ns = true;
        self
    }

    /// Starts the wrapper; `$D` in the script is the shared directory.
    fn spawn(self, script: &str) -> Step {
        let pod = self.pod;
        let mut cmd = if let Some(uid) = self.uid {
            let mut c = Command::new("setpriv");
            c.args([format!("--reuid={uid}"), format!("--regid={uid}"), "--clear-groups".into()]);
            c.arg(pod.dir().join("bin/baton"));
            c
        } else if self.pid_ns {
            let mut c = Command::new("unshare");
            c.args(["--pid", "--fork", "--mount-proc", "--kill-child", BATON.as_str()]);
            c
        } else {
            Command::new(BATON.as_str())
        };
        cmd.args(["run", "--dir", pod.dir_str(), "--name", &self.name]);
        cmd.args(&self.opts);
        cmd.args(["--", "sh", "-c", script]);
        clean_env(&mut cmd);
        cmd.env("D", pod.dir());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let out = pod.logs.path().join(format!("{}.out", self.name));
        let err = pod.logs.path().join(format!("{}.err", self.name));
        cmd.stdin(Stdio::null()).stdout(fs::File::create(&out).unwrap()).stderr(fs::File::create(&err).unwrap());
        let child = cmd.spawn().expect("start baton run");
        let state = pod.dir().join("steps").join(&self.name).join("state.json");
        Step { name: self.name, child, code: None, out, err, state, pid_ns: self.pid_ns }
    }
}

/// A running wrapper ("container"). Dropping it kills whatever is left of it.
struct Step {
    name: String,
    child: Child,
    code: Option<i32>,
    out: PathBuf,
    err: PathBuf,
    state: PathBuf,
    pid_ns: bool,
}

impl Step {
    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends `signal` to the wrapper itself, as the kubelet does to a container's PID 1.
    fn signal(&self, signal: i32) {
        assert_eq!(unsafe { libc::kill(self.pid(), signal) }, 0, "kill {signal} {}", self.pid());
    }

    fn stdout(&self) -> String {
        fs::read_to_string(&self.out).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        fs::read_to_string(&self.err).unwrap_or_default()
    }

    fn alive(&mut self) -> bool {
        self.code.is_none() && self.child.try_wait().expect("try_wait").is_none()
    }

    /// The wrapper's exit code (128+N for signal N), within `PATIENCE`.
    fn wait(&mut self) -> i32 {
        if let Some(code) = self.code {
            return code;
        }
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() >= deadline {
                panic!(
                    "the wrapper of step {} still runs after {PATIENCE:?}; its stderr:\n{}",
                    self.name,
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let code = code_of(status);
        self.code = Some(code);
        code
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        if !self.alive() {
            return;
        }
        // The command runs in its own process group, which outlives a SIGKILLed wrapper.
        if !self.pid_ns {
            let child_pid = fs::read_to_string(&self.state)
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .and_then(|s| s["childPid"].as_i64());
            if let Some(pid) = child_pid.filter(|p| *p > 1) {
                unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A script that installs `traps`, then writes the marker `ready` and runs until signalled.
fn ready_loop(traps: &str, ready: &str) -> String {
    format!("{traps}\ntouch \"$D/{ready}\"\n{LOOP}")
}

fn assert_contains(text: &str, part: &str) {
    assert!(text.contains(part), "expected {part:?} in:\n{text}");
}

fn row<'a>(table: &'a str, step: &str) -> (&'a str, &'a str) {
    let line = table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(step))
        .unwrap_or_else(|| panic!("no row for step {step} in:\n{table}"));
    let mut parts = line.splitn(2, char::is_whitespace);
    parts.next();
    let rest = parts.next().unwrap_or("").trim_start();
    let (state, detail) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    (state, detail.trim_start())
}

// ---------------------------------------------------------------------------------------------
// baton status
// ---------------------------------------------------------------------------------------------

#[test]
fn status_shows_waiting_running_paused_ended_and_lost_steps_in_table_and_json() {
    let pod = Pod::new();
    let mut done = pod.step("done").spawn("exit 0");
    assert_eq!(done.wait(), 0);
    let mut busy = pod.step("busy").spawn(LOOP);
    let mut broken = pod.step("broken").opts(&["--breakpoint-on-failure"]).spawn("exit 3");
    let flag = pod.file("flag");
    let flag_str = flag.to_str().unwrap();
    let mut next = pod.step("next").opts(&["--after", "busy", "--wait-file", flag_str]).spawn("exit 0");
    let mut gone = pod.step("gone").spawn(LOOP);

    let busy_state = pod.wait_phase("busy", "running");
    pod.wait_phase("broken", "paused");
    pod.wait_phase("next", "waiting");
    let gone_state = pod.wait_phase("gone", "running");
    // Lost: the wrapper dies without a record (its container was SIGKILLed); its command's group
    // survives it, so the test ends that too.
    gone.signal(libc::SIGKILL);
    assert_eq!(gone.wait(), 128 + libc::SIGKILL);
    unsafe { libc::kill(-(gone_state["childPid"].as_i64().unwrap() as i32), libc::SIGKILL) };

    // --json: an array of objects with at least step, state, exitCode, reason, waitingFor.
    let views = pod.status();
    let names: Vec<&str> = views.iter().map(|v| v["step"].as_str().unwrap()).collect();
    assert_eq!(names, ["broken", "busy", "done", "gone", "next"]);
    for v in &views {
        for field in ["step", "state", "exitCode", "reason", "waitingFor"] {
            assert!(v.get(field).is_some(), "status --json lacks {field}: {v}");
        }
    }
    let view = |n: &str| views.iter().find(|v| v["step"] == n).unwrap().clone();

    let v = view("next");
    assert_eq!(v["state"], "waiting");
    assert_eq!(v["waitingFor"], serde_json::json!(["step busy", format!("file {flag_str}")]));
    assert_eq!(v["exitCode"], Value::Null);
    assert_eq!(v["reason"], Value::Null);

    let v = view("busy");
    assert_eq!(v["state"], "running");
    assert_eq!(v["childPid"], busy_state["childPid"]);
    assert_eq!(v["pid"].as_u64(), Some(busy.pid() as u64));
    assert!(v["since"].is_string(), "{v}");
    assert_eq!(v["exitCode"], Value::Null);
    assert_eq!(v["waitingFor"], serde_json::json!([]));

    let v = view("broken");
    assert_eq!(v["state"], "paused");
    assert_eq!(v["exitCode"], 3);
    assert_eq!(v["reason"], Value::Null);

    let v = view("done");
    assert_eq!(v["state"], "ended");
    assert_eq!(v["exitCode"], 0);
    assert_eq!(v["reason"], "Completed");
    assert!(v["durationMs"].as_i64().is_some_and(|ms| ms >= 0), "{v}");

    let v = view("gone");
    assert_eq!(v["state"], "lost");
    assert_eq!(v["exitCode"], Value::Null);
    assert_eq!(v["reason"], Value::Null);
    assert_contains(v["error"].as_str().unwrap_or(""), "died without writing a record");

    // The table, for people.
    let out = pod.baton(&["status"]);
    assert_eq!(out.code, 0, "{out:?}");
    let header: Vec<&str> = out.stdout.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["STEP", "STATE", "DETAIL"]);
    let (state, detail) = row(&out.stdout, "next");
    assert_eq!(state, "waiting");
    assert_contains(detail, &format!("waiting for step busy, file {flag_str}"));
    let (state, detail) = row(&out.stdout, "busy");
    assert_eq!(state, "running");
    assert_contains(detail, &format!("pid {} for ", busy_state["childPid"]));
    let (state, detail) = row(&out.stdout, "broken");
    assert_eq!(state, "paused");
    assert_contains(detail, "at a breakpoint after exit code 3");
    assert_contains(detail, "baton resume [--fail] broken");
    let (state, detail) = row(&out.stdout, "done");
    assert_eq!(state, "ended");
    assert_contains(detail, "Completed, exit code 0, ran ");
    let (state, detail) = row(&out.stdout, "gone");
    assert_eq!(state, "lost");
    assert_contains(detail, "died without writing a record");

    // waitingFor lists what is *still* missing.
    fs::write(&flag, "").unwrap();
    eventually("next to wait only for busy", || {
        (pod.state("next")?["waitingFor"] == serde_json::json!(["step busy"])).then_some(())
    });
    assert_eq!(pod.view("next")["waitingFor"], serde_json::json!(["step busy"]));

    // A lost step cannot be signalled.
    let out = pod.baton(&["kill", "gone"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_contains(&out.stderr, "step gone was lost");
    assert_contains(&out.stderr, "nothing was sent");

    // Wind down: busy fails (143), so next is skipped; broken is resumed.
    assert_eq!(pod.baton(&["kill", "busy"]).code, 0);
    assert_eq!(busy.wait(), 143);
    assert_eq!(next.wait(), 0);
    assert_eq!(pod.record("next")["reason"], "Skipped");
    assert_eq!(pod.baton(&["resume", "broken"]).code, 0);
    assert_eq!(broken.wait(), 3);
}

#[test]
fn status_of_a_pod_without_steps_says_so() {
    let pod = Pod::new();
    let out = pod.baton(&["status"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout.trim(), format!("no steps in {}", pod.dir_str()));
    let out = pod.baton(&["status", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(serde_json::from_str::<Value>(&out.stdout).unwrap(), serde_json::json!([]));
}

// ---------------------------------------------------------------------------------------------
// baton kill
// ---------------------------------------------------------------------------------------------

#[test]
fn kill_from_one_step_stops_the_command_of_another() {
    let pod = Pod::new();
    let mut b = pod.step("b").spawn(LOOP);
    pod.wait_phase("b", "running");
    // Step a's container has no kill and may not see b's processes: it asks b's baton.
    let mut a = pod.step("a").spawn(r#""$D/bin/baton" kill --dir "$D" b"#);
    assert_eq!(a.wait(), 0, "{}", a.stderr());
    assert_contains(&a.stdout(), "sent SIGTERM to step b");
    assert_eq!(b.wait(), 143);
    let rec = pod.record("b");
    assert_eq!(rec["exitCode"], 143);
    assert_eq!(rec["reason"], "Failed");
    assert_eq!(pod.record("a")["reason"], "Completed");
}

#[test]
fn kill_sends_signals_by_number_and_by_name_and_kill_ends_a_child_that_ignores_term() {
    let pod = Pod::new();
    let traps = r#"trap 'echo USR1 >> "$D/got"' USR1
trap 'echo USR2 >> "$D/got"' USR2
trap 'echo TERM >> "$D/got"' TERM
( trap 'echo GRANDCHILD-USR1 >> "$D/got"' USR1; touch "$D/grandchild-ready"; n=0; while [ $n -lt 600 ]; do sleep 0.1; n=$((n+1)); done ) &"#;
    let mut k = pod.step("k").spawn(&ready_loop(traps, "k-ready"));
    pod.wait_file("k-ready");
    pod.wait_file("grandchild-ready");
    pod.wait_phase("k", "running");
    let got = |sig: &str| {
        eventually(&format!("the command to record {sig}"), || {
            fs::read_to_string(pod.file("got")).ok().filter(|t| t.lines().any(|l| l == sig)).map(drop)
        })
    };

    let out = pod.baton(&["kill", "-s", &libc::SIGUSR1.to_string(), "k"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_contains(&out.stdout, "sent SIGUSR1 to step k");
    got("USR1");
    got("GRANDCHILD-USR1"); // the whole process group, not only the command

    let out = pod.baton(&["kill", "-s", "SIGUSR2", "k"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_contains(&out.stdout, "sent SIGUSR2 to step k");
    got("USR2");

    // Default TERM: this command traps it and goes on running.
    let out = pod.baton(&["kill", "k"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_contains(&out.stdout, "sent SIGTERM to step k");
    got("TERM");
    assert!(k.alive(), "the command ignores TERM; its wrapper must still run");
    assert_eq!(pod.view("k")["state"], "running");

    let out = pod.baton(&["kill", "-s", "NOPE", "k"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert_contains(&out.stderr, "unknown signal");

    let out = pod.baton(&["kill", "-s", "KILL", "k"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_contains(&out.stdout, "sent SIGKILL to step k");
    assert_eq!(k.wait(), 137);
    let rec = pod.record("k");
    assert_eq!(rec["exitCode"], 137);
    assert_eq!(rec["reason"], "Failed");
}

#[test]
fn kill_of_an_unknown_waiting_or_ended_step_exits_1_and_says_nothing_was_sent() {
    let pod = Pod::new();
    let mut done = pod.step("done").spawn("exit 0");
    assert_eq!(done.wait(), 0);
    let mut later = pod.step("later").opts(&["--after", "never"]).spawn("touch \"$D/later-ran\"");
    pod.wait_phase("later", "waiting");

    let out = pod.baton(&["kill", "nope"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_contains(&out.stderr, "unknown step nope");
    assert_contains(&out.stderr, "known steps: done, later");
    assert_contains(&out.stderr, "nothing was sent");

    let out = pod.baton(&["kill", "later"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_contains(&out.stderr, "step later has not started its command yet (waiting for step never)");
    assert_contains(&out.stderr, "nothing was sent");

    let out = pod.baton(&["kill", "-s", "KILL", "done"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_contains(&out.stderr, "step done has ended (Completed, exit code 0)");
    assert_contains(&out.stderr, "nothing was sent");

    let out = pod.baton(&["kill", "Not_A_Step"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");

    // Nothing reached the waiting step: a SIGTERM to its own wrapper cancels it as usual.
    assert!(later.alive());
    assert_eq!(pod.view("later")["state"], "waiting");
    later.signal(libc::SIGTERM);
    assert_eq!(later.wait(), 143);
    assert_eq!(pod.record("later")["reason"], "Cancelled");
    assert!(!pod.file("later-ran").exists());
}

#[test]
fn kill_without_step_signals_the_step_named_by_baton_step() {
    let pod = Pod::new();
    let mut solo = pod.step("solo").spawn(LOOP);
    pod.wait_phase("solo", "running");
    let out = pod.baton_with(None, &[("BATON_STEP", "solo")], &["kill"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_contains(&out.stdout, "sent SIGTERM to step solo");
    assert_eq!(solo.wait(), 143);
    assert_eq!(pod.record("solo")["exitCode"], 143);
}

#[test]
fn kill_without_step_or_baton_step_signals_the_step_whose_baton_is_pid_1() {
    if !is_root() || !Path::new("/usr/bin/unshare").exists() {
        eprintln!(
            "kill_without_step_or_baton_step_signals_the_step_whose_baton_is_pid_1: skipped: needs root and unshare"
        );
        return;
    }
    let pod = Pod::new();
    // In its own PID namespace the wrapper is PID 1, as a container's entrypoint. Its command runs
    // `baton kill` with neither STEP nor BATON_STEP, ignoring the TERM that comes back to its group.
    // It waits (bounded) until its baton says it runs: see kill_from_the_steps_own_command_at_once_*.
    let script = format!(
        r#"trap 'echo TERM > "$D/got"; exit 7' TERM
{UNTIL_I_RUN}
(trap '' TERM; "{BATON}" kill --dir "$D"; echo $? > "$D/kill-rc") > "$D/kill-out" 2>&1
{LOOP}"#,
        BATON = BATON.as_str()
    );
    let mut solo = pod.step("solo").own_pid_namespace().env("STEP", "solo").spawn(&script);
    pod.wait_file("kill-rc");
    assert_eq!(pod.read("kill-rc").trim(), "0", "{}", pod.read("kill-out"));
    assert_eq!(solo.wait(), 7, "{}", solo.stderr());
    assert_contains(&pod.read("kill-out"), "sent SIGTERM to step solo");
    assert_eq!(pod.read("got").trim(), "TERM");
    assert_eq!(pod.record("solo")["exitCode"], 7);
}

#[test]
fn kill_from_the_steps_own_command_at_once_is_delivered() {
    // The command of a step is running; `baton kill` from inside it (the no-STEP form is meant for
    // exactly that) must reach it, however early the command calls it. Eight containers start
    // together, as in a pod, and each command signals its own step first thing.
    let pod = Pod::new();
    let script = r#"trap 'exit 7' TERM
(trap '' TERM; BATON_STEP="$STEP" "$D/bin/baton" kill --dir "$D" > "$D/$STEP.kill-out" 2>&1; echo $? > "$D/$STEP.kill-rc")
n=0; while [ $n -lt 100 ]; do sleep 0.1; n=$((n+1)); done; exit 9"#;
    let names: Vec<String> = (0..8).map(|i| format!("s{i}")).collect();
    let mut steps: Vec<Step> = names.iter().map(|n| pod.step(n).env("STEP", n).spawn(script)).collect();
    let mut refused = Vec::new();
    for (name, step) in names.iter().zip(steps.iter_mut()) {
        pod.wait_file(&format!("{name}.kill-rc"));
        let rc = pod.read(&format!("{name}.kill-rc"));
        if rc.trim() != "0" {
            refused.push(format!("{name}: exit {}: {}", rc.trim(), pod.read(&format!("{name}.kill-out")).trim()));
            step.signal(libc::SIGTERM);
        }
        assert!(matches!(step.wait(), 7 | 143), "{}", step.stderr());
    }
    assert!(refused.is_empty(), "baton kill from a running command was refused:\n{}", refused.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Gates
// ---------------------------------------------------------------------------------------------

#[test]
fn gate_released_before_the_step_starts_is_remembered() {
    let pod = Pod::new();
    let out = pod.baton(&["release", "deploy"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.stdout.trim(),
        "opened the gate of step deploy (it has not started yet; it will go on when it does)"
    );
    let out = pod.baton(&["release", "deploy"]);
    assert_eq!(out.code, 0, "releasing twice is fine: {out:?}");
    assert_eq!(out.stdout.trim(), "the gate of step deploy was already open");
    let out = pod.baton(&["release", "Not_A_Step"]);
    assert_eq!(out.code, 125, "{out:?}");

    let mut deploy = pod.step("deploy").opts(&["--gate"]).spawn("touch \"$D/deployed\"");
    assert_eq!(deploy.wait(), 0, "{}", deploy.stderr());
    assert!(pod.file("deployed").exists());
    assert_eq!(pod.record("deploy")["reason"], "Completed");
}

#[test]
fn gate_released_after_the_step_started_wakes_it_even_without_init() {
    // No `baton init`: gates/ does not exist yet while the step waits.
    let pod = Pod::bare();
    let mut deploy = pod.step("deploy").opts(&["--gate"]).spawn("touch \"$D/deployed\"");
    pod.wait_phase("deploy", "waiting");
    let v = pod.view("deploy");
    assert_eq!(v["state"], "waiting");
    assert_eq!(v["waitingFor"], serde_json::json!(["gate of step deploy (baton release deploy)"]));
    assert!(!pod.file("deployed").exists());

    let released = Instant::now();
    let out = pod.baton(&["release", "deploy"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout.trim(), "opened the gate of step deploy");
    assert_eq!(deploy.wait(), 0, "{}", deploy.stderr());
    assert!(released.elapsed() < Duration::from_secs(5), "release took {:?} to reach the step", released.elapsed());
    assert!(pod.file("deployed").exists());
    assert_eq!(pod.record("deploy")["reason"], "Completed");

    let out = pod.baton(&["release", "deploy"]);
    assert_eq!(out.code, 0, "releasing twice is fine: {out:?}");
    assert_eq!(out.stdout.trim(), "the gate of step deploy was already open");
}

// ---------------------------------------------------------------------------------------------
// Breakpoints
// ---------------------------------------------------------------------------------------------

#[test]
fn breakpoint_resume_ends_with_the_real_record_and_successors_then_skip() {
    let pod = Pod::new();
    let mut build = pod.step("build").opts(&["--breakpoint-on-failure"]).env("HOSTNAME", "mypod").spawn("exit 3");
    let mut test = pod.step("test").opts(&["--after", "build"]).spawn("touch \"$D/test-ran\"");
    pod.wait_phase("build", "paused");
    pod.wait_phase("test", "waiting");

    // One block on stderr that says how to get in and how to go on.
    let block = eventually("the breakpoint block on stderr", || {
        let e = build.stderr();
        e.contains("deleting the pod").then_some(e)
    });
    let exe = format!("{}/bin/baton", pod.dir_str());
    assert_contains(&block, "step build failed with exit code 3 and is paused at a breakpoint");
    assert_contains(&block, &format!("kubectl exec mypod -c <container> -- {exe} resume build"));
    assert_contains(&block, &format!("kubectl exec mypod -c <container> -- {exe} resume --fail build"));

    // Meanwhile the successor keeps waiting: the paused wrapper is alive and has no record.
    let v = pod.view("test");
    assert_eq!(v["state"], "waiting");
    assert_eq!(v["waitingFor"], serde_json::json!(["step build"]));
    assert!(!pod.ended("build") && !pod.ended("test"));
    assert!(build.alive());

    let out = pod.baton(&["kill", "build"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_contains(&out.stderr, "step build is paused at a breakpoint");
    assert_contains(&out.stderr, "nothing was sent");
    let out = pod.baton(&["resume", "test"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_contains(&out.stderr, "step test is not paused at a breakpoint (waiting): nothing was sent");
    let out = pod.baton(&["resume", "nope"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_contains(&out.stderr, "unknown step nope");

    let out = pod.baton(&["resume", "build"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout.trim(), "resumed step build");
    assert_eq!(build.wait(), 3);
    let rec = pod.record("build");
    assert_eq!(rec["exitCode"], 3);
    assert_eq!(rec["reason"], "Failed");
    assert!(rec.get("error").is_none(), "the command's real record has no error: {rec}");

    assert_eq!(test.wait(), 0);
    let rec = pod.record("test");
    assert_eq!(rec["reason"], "Skipped");
    assert_eq!(rec["exitCode"], Value::Null);
    assert_contains(rec["error"].as_str().unwrap(), "step build did not succeed");
    assert!(!pod.file("test-ran").exists());
}

#[test]
fn breakpoint_resume_keeps_the_steps_own_verdict_and_resume_fail_ends_it_failed() {
    // With --on-error continue the two ways out differ: resume keeps Continued, --fail fails.
    let pod = Pod::new();
    let opts = ["--breakpoint-on-failure", "--on-error", "continue"];
    let mut soft = pod.step("soft").opts(&opts).spawn("exit 4");
    let mut hard = pod.step("hard").opts(&opts).spawn("exit 4");
    let mut after_soft = pod.step("after-soft").opts(&["--after", "soft"]).spawn("exit 0");
    let mut after_hard = pod.step("after-hard").opts(&["--after", "hard"]).spawn("touch \"$D/after-hard-ran\"");
    pod.wait_phase("soft", "paused");
    pod.wait_phase("hard", "paused");

    let out = pod.baton(&["resume", "soft"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(soft.wait(), 0);
    let rec = pod.record("soft");
    assert_eq!((rec["reason"].as_str(), rec["exitCode"].as_i64()), (Some("Continued"), Some(4)));
    assert_eq!(after_soft.wait(), 0);
    assert_eq!(pod.record("after-soft")["reason"], "Completed");

    let out = pod.baton(&["resume", "--fail", "hard"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout.trim(), "resumed step hard; it ends Failed");
    assert_eq!(hard.wait(), 4);
    let rec = pod.record("hard");
    assert_eq!((rec["reason"].as_str(), rec["exitCode"].as_i64()), (Some("Failed"), Some(4)));
    assert_contains(rec["error"].as_str().unwrap_or(""), "resume --fail");
    assert_eq!(after_hard.wait(), 0);
    assert_eq!(pod.record("after-hard")["reason"], "Skipped");
    assert!(!pod.file("after-hard-ran").exists());
}

#[test]
fn breakpoint_pause_is_ended_by_sigterm() {
    let pod = Pod::new();
    let mut build = pod.step("build").opts(&["--breakpoint-on-failure"]).spawn("exit 3");
    let mut test = pod.step("test").opts(&["--after", "build"]).spawn("exit 0");
    pod.wait_phase("build", "paused");
    build.signal(libc::SIGTERM);
    assert_eq!(build.wait(), 3);
    assert_contains(&build.stderr(), "SIGTERM ended the breakpoint of step build");
    let rec = pod.record("build");
    assert_eq!((rec["reason"].as_str(), rec["exitCode"].as_i64()), (Some("Failed"), Some(3)));
    assert_eq!(test.wait(), 0);
    assert_eq!(pod.record("test")["reason"], "Skipped");
}

#[test]
fn breakpoint_is_not_entered_when_a_sigterm_to_the_wrapper_stopped_the_command() {
    // Pod deletion: the kubelet sends one SIGTERM, then SIGKILL after the grace period. If that
    // SIGTERM (forwarded to the command) leads into a pause, no second SIGTERM ever ends it: the
    // container is SIGKILLed and the step's record is lost.
    let pod = Pod::new();
    let mut build = pod.step("build").opts(&["--breakpoint-on-failure"]).spawn(&ready_loop("", "build-ready"));
    pod.wait_file("build-ready");
    pod.wait_phase("build", "running");
    build.signal(libc::SIGTERM);
    let paused = eventually("step build to end or pause", || {
        if pod.ended("build") {
            Some(false)
        } else {
            pod.state("build").filter(|s| s["state"] == "paused").map(|_| true)
        }
    });
    assert!(!paused, "a SIGTERM from outside stopped the command, yet the step paused at a breakpoint");
    assert_eq!(build.wait(), 143);
    assert_eq!(pod.record("build")["exitCode"], 143);
}

// ---------------------------------------------------------------------------------------------
// Sidecars (--until)
// ---------------------------------------------------------------------------------------------

#[test]
fn sidecar_until_stops_with_term_then_kill_and_ends_0_stopped() {
    let pod = Pod::new();
    let mut main = pod.step("main").spawn(r#"exec "$D/bin/baton" wait --dir "$D" "file:$D/go""#);
    let mut polite =
        pod.step("polite").opts(&["--until", "main", "--grace", "10s"]).spawn(&ready_loop("", "polite-ready"));
    let stubborn_traps = r#"trap 'echo TERM >> "$D/stubborn-got"' TERM"#;
    let mut stubborn = pod
        .step("stubborn")
        .opts(&["--until", "main", "--grace", "300ms"])
        .spawn(&ready_loop(stubborn_traps, "stubborn-ready"));
    pod.wait_file("polite-ready");
    pod.wait_file("stubborn-ready");
    pod.wait_phase("main", "running");
    assert_eq!(pod.view("polite")["state"], "running");
    assert_eq!(pod.view("stubborn")["state"], "running");

    let ended = Instant::now();
    fs::write(pod.file("go"), "").unwrap();
    assert_eq!(main.wait(), 0);

    // Honours TERM: 143 in the record, exit 0 and Stopped for the Job; no SIGKILL (grace is 10s).
    assert_eq!(polite.wait(), 0, "{}", polite.stderr());
    let rec = pod.record("polite");
    assert_eq!((rec["reason"].as_str(), rec["exitCode"].as_i64()), (Some("Stopped"), Some(143)));
    assert!(ended.elapsed() < Duration::from_secs(9), "polite sidecar needed {:?}", ended.elapsed());

    // Ignores TERM: it got TERM first, then SIGKILL after --grace.
    assert_eq!(stubborn.wait(), 0, "{}", stubborn.stderr());
    let rec = pod.record("stubborn");
    assert_eq!((rec["reason"].as_str(), rec["exitCode"].as_i64()), (Some("Stopped"), Some(137)));
    assert_eq!(pod.read("stubborn-got").trim(), "TERM");
}

#[test]
fn sidecar_with_two_until_steps_stops_only_when_both_have_ended() {
    let pod = Pod::new();
    let wait_for = |f: &str| format!(r#"exec "$D/bin/baton" wait --dir "$D" "file:$D/{f}""#);
    let mut a = pod.step("a").spawn(&wait_for("a-go"));
    let mut b = pod.step("b").spawn(&wait_for("b-go"));
    let traps = r#"trap 'echo USR1 >> "$D/side-got"' USR1"#;
    let mut side = pod.step("side").opts(&["--until", "a", "--until", "b"]).spawn(&ready_loop(traps, "side-ready"));
    pod.wait_file("side-ready");
    pod.wait_phase("side", "running");
    pod.wait_phase("a", "running");

    fs::write(pod.file("a-go"), "").unwrap();
    assert_eq!(a.wait(), 0);
    // A control request after a's end makes the sidecar's baton look at its --until steps again;
    // the command is still there to trap the signal, so only one of two steps ending stopped nothing.
    assert_eq!(pod.baton(&["kill", "-s", "USR1", "side"]).code, 0);
    eventually("the sidecar to trap USR1", || {
        fs::read_to_string(pod.file("side-got")).ok().filter(|t| t.contains("USR1"))
    });
    assert!(side.alive(), "the sidecar stopped although step b still runs");
    assert_eq!(pod.view("side")["state"], "running");

    fs::write(pod.file("b-go"), "").unwrap();
    assert_eq!(b.wait(), 0);
    assert_eq!(side.wait(), 0, "{}", side.stderr());
    let rec = pod.record("side");
    assert_eq!((rec["reason"].as_str(), rec["exitCode"].as_i64()), (Some("Stopped"), Some(143)));
}

#[test]
fn sidecar_whose_until_steps_already_ended_stops_at_once_without_running() {
    let pod = Pod::new();
    let mut main = pod.step("main").spawn("exit 1");
    assert_eq!(main.wait(), 1);
    let mut late = pod.step("late").opts(&["--until", "main"]).spawn("touch \"$D/late-ran\"; sleep 30");
    assert_eq!(late.wait(), 0, "{}", late.stderr());
    assert!(!pod.file("late-ran").exists(), "the sidecar's command ran");
    let rec = pod.record("late");
    assert_eq!(rec["reason"], "Stopped");
    assert_eq!(rec["exitCode"], Value::Null);
    assert_eq!(rec["startedAt"], Value::Null);
    assert_contains(rec["error"].as_str().unwrap_or(""), "had ended before this sidecar started");
}

// ---------------------------------------------------------------------------------------------
// Ordered shutdown (--stop-after, --stop-timeout)
// ---------------------------------------------------------------------------------------------

/// A sidecar command that, on TERM, notes the time and whether main had ended by then.
const PROXY_TRAP: &str = r#"trap 'date +%s%N > "$D/proxy-term"
if [ -e "$D/steps/main/exit.json" ]; then echo after; else echo before; fi > "$D/proxy-saw"
exit 0' TERM"#;

#[test]
fn stop_after_holds_sigterm_until_main_has_ended() {
    let pod = Pod::new();
    // Main takes 2 s to finish on SIGTERM.
    let main_trap = r#"trap 'sleep 2; date +%s%N > "$D/main-done"; exit 0' TERM"#;
    let mut main = pod.step("main").spawn(&ready_loop(main_trap, "main-ready"));
    let mut proxy = pod.step("proxy").opts(&["--stop-after", "main"]).spawn(&ready_loop(PROXY_TRAP, "proxy-ready"));
    pod.wait_file("main-ready");
    pod.wait_file("proxy-ready");
    pod.wait_phase("main", "running");
    pod.wait_phase("proxy", "running");

    // Pod deletion: SIGTERM to every container at the same moment.
    let term = Instant::now();
    main.signal(libc::SIGTERM);
    proxy.signal(libc::SIGTERM);

    assert_eq!(main.wait(), 0, "{}", main.stderr());
    assert_eq!(proxy.wait(), 0, "{}", proxy.stderr());
    assert!(
        term.elapsed() < Duration::from_secs(10),
        "the hold lasted {:?}: main's end did not release it",
        term.elapsed()
    );
    assert_contains(&proxy.stderr(), "holding SIGTERM until step main");
    // The proxy's command got TERM only after main's record was published, and after main's last act.
    assert_eq!(pod.read("proxy-saw").trim(), "after");
    let main_done: u128 = pod.read("main-done").trim().parse().unwrap();
    let proxy_term: u128 = pod.read("proxy-term").trim().parse().unwrap();
    assert!(proxy_term >= main_done, "proxy got TERM at {proxy_term}, main finished at {main_done}");
    assert_eq!(pod.record("main")["reason"], "Completed");
    let rec = pod.record("proxy");
    assert_eq!((rec["reason"].as_str(), rec["exitCode"].as_i64()), (Some("Completed"), Some(0)));
}

#[test]
fn stop_timeout_bounds_the_hold() {
    let pod = Pod::new();
    // Main ignores TERM: it would never end.
    let mut main = pod.step("main").spawn(&ready_loop("trap '' TERM", "main-ready"));
    let mut proxy = pod
        .step("proxy")
        .opts(&["--stop-after", "main", "--stop-timeout", "1s"])
        .spawn(&ready_loop(PROXY_TRAP, "proxy-ready"));
    pod.wait_file("main-ready");
    pod.wait_file("proxy-ready");
    pod.wait_phase("proxy", "running");

    let term = Instant::now();
    main.signal(libc::SIGTERM);
    proxy.signal(libc::SIGTERM);
    assert_eq!(proxy.wait(), 0, "{}", proxy.stderr());
    let held = term.elapsed();
    assert!(held >= Duration::from_millis(950), "SIGTERM was held only {held:?}, less than --stop-timeout 1s");
    assert!(held < Duration::from_secs(10), "SIGTERM was held {held:?} despite --stop-timeout 1s");
    assert_contains(&proxy.stderr(), "--stop-timeout expired");
    assert_eq!(pod.read("proxy-saw").trim(), "before");

    assert!(main.alive());
    assert_eq!(pod.view("main")["state"], "running");
    assert_eq!(pod.baton(&["kill", "-s", "KILL", "main"]).code, 0);
    assert_eq!(main.wait(), 137);
}

// ---------------------------------------------------------------------------------------------
// Across UIDs: a root step beside a UID 65532 step
// ---------------------------------------------------------------------------------------------

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

#[test]
fn root_baton_kills_resumes_and_releases_steps_running_as_uid_65532() {
    if !can_switch_uid("root_baton_kills_resumes_and_releases_steps_running_as_uid_65532") {
        return;
    }
    let pod = Pod::new();
    assert_eq!(mode(&pod.dir().join("steps")), 0o1777);
    assert_eq!(mode(&pod.dir().join("gates")), 0o1777);

    let mut work = pod.step("work").run_as(NONROOT).spawn(LOOP);
    let mut gated = pod.step("gated").run_as(NONROOT).opts(&["--gate"]).spawn("exit 0");
    let mut brk = pod.step("brk").run_as(NONROOT).opts(&["--breakpoint-on-failure"]).spawn("exit 5");
    pod.wait_phase("work", "running");
    pod.wait_phase("gated", "waiting");
    pod.wait_phase("brk", "paused");
    let folder = pod.dir().join("steps/work");
    assert_eq!(fs::metadata(&folder).unwrap().uid(), NONROOT, "the step did not run as {NONROOT}");
    // Only the step's own wrapper writes its folder (docs/protocol.md, trust model).
    assert_eq!(mode(&folder), 0o755);
    assert_eq!(mode(&folder.join("control")), 0o622);

    let out = pod.baton(&["kill", "work"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(work.wait(), 143);
    assert_eq!(pod.record("work")["exitCode"], 143);

    let out = pod.baton(&["release", "gated"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(gated.wait(), 0, "{}", gated.stderr());
    assert_eq!(pod.record("gated")["reason"], "Completed");

    let out = pod.baton(&["resume", "brk"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(brk.wait(), 5);
    assert_eq!(pod.record("brk")["reason"], "Failed");
}

#[test]
fn uid_65532_baton_kills_resumes_and_releases_steps_running_as_root() {
    if !can_switch_uid("uid_65532_baton_kills_resumes_and_releases_steps_running_as_root") {
        return;
    }
    let pod = Pod::new();
    let mut work = pod.step("work").spawn(LOOP);
    let mut gated = pod.step("gated").opts(&["--gate"]).spawn("exit 0");
    let mut brk = pod.step("brk").opts(&["--breakpoint-on-failure"]).spawn("exit 5");
    pod.wait_phase("work", "running");
    pod.wait_phase("gated", "waiting");
    pod.wait_phase("brk", "paused");
    assert_eq!(fs::metadata(pod.dir().join("steps/work")).unwrap().uid(), 0);

    let out = pod.baton_as(NONROOT, &["status", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let views: Vec<Value> = serde_json::from_str(&out.stdout).unwrap();
    let states: Vec<(&str, &str)> =
        views.iter().map(|v| (v["step"].as_str().unwrap(), v["state"].as_str().unwrap())).collect();
    assert_eq!(states, [("brk", "paused"), ("gated", "waiting"), ("work", "running")]);

    // A step running as 65532 kills a root step's command through its baton.
    let mut killer = pod.step("killer").run_as(NONROOT).spawn(r#""$D/bin/baton" kill --dir "$D" work"#);
    assert_eq!(killer.wait(), 0, "{}", killer.stderr());
    assert_eq!(work.wait(), 143);
    assert_eq!(pod.record("work")["exitCode"], 143);

    let out = pod.baton_as(NONROOT, &["release", "gated"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(gated.wait(), 0, "{}", gated.stderr());
    assert_eq!(pod.record("gated")["reason"], "Completed");

    let out = pod.baton_as(NONROOT, &["resume", "--fail", "brk"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(brk.wait(), 5);
    let rec = pod.record("brk");
    assert_eq!(rec["reason"], "Failed");
    assert_contains(rec["error"].as_str().unwrap_or(""), "resume --fail");
}
