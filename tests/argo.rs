//! Argo mode, driven from outside: the built binary invoked as `argoexec` over a temporary folder
//! standing in for `/var/run/argo` (BATON_ARGO_DIR), with the termination log in a file
//! (BATON_ARGO_TERMINATION_PATH). The cases mirror Argo's own `TestEmissary`
//! (cmd/argoexec/commands/emissary_test.go; names cited per test), then the container-set
//! behaviour Argo's e2e suite asserts, then what baton adds. Synchronisation is on files and exits,
//! never on sleeps.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::argo::*;
use common::*;

/// A script that fails on its first run and succeeds after (Argo's containerSetRetryTest.sh), and
/// counts its runs in RUNS.
const FAIL_ONCE: &str = r#"echo run >> "$RUNS"; mkdir -p "$ART"; echo hello > "$ART/file"
if [ -f "$STATE" ]; then exit 0; fi; touch "$STATE"; exit 1"#;

fn runs(path: &Path) -> usize {
    fs::read_to_string(path).map(|t| t.lines().count()).unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------------
// Argo's TestEmissary

// TestEmissary/Exit0
#[test]
fn exit_0_writes_exitcode_0() {
    let argo = Argo::new();
    argo.emissary("main", "exit").run().expect_code(0);
    assert_eq!(argo.exitcode("main"), "0");
    for folder in ["ctr", "ctr/main"] {
        assert_eq!(fs::metadata(argo.dir.join(folder)).unwrap().mode() & 0o7777, 0o777, "{folder}");
    }
}

// TestEmissary/Exit1
#[test]
fn exit_1_writes_exitcode_1() {
    let argo = Argo::new();
    argo.emissary("main", "exit 1").run().expect_code(1);
    assert_eq!(argo.exitcode("main"), "1");
    assert_eq!(
        fs::metadata(argo.termination("main")).map(|m| m.len()).unwrap_or(0),
        0,
        "no termination message for the command's own failure"
    );
}

// TestEmissary/Stdout
#[test]
fn stdout_is_copied_and_still_shown() {
    let argo = Argo::new();
    let o = argo.emissary("main", "echo hello").run();
    o.expect_code(0);
    assert_eq!(argo.read(&argo.ctr("main", "stdout")), "hello\n");
    assert_eq!(o.stdout, "hello\n", "the container's own stdout is untouched");
}

// TestEmissary/Sub-process
#[test]
fn background_sub_processes_are_not_awaited() {
    let argo = Argo::new();
    let o = argo.emissary("main", r#"(sleep 60; echo 'should not wait for sub-process') & printf hello"#).run();
    o.expect_code(0);
    assert!(o.elapsed < Duration::from_secs(30), "it waited for the background sleep");
    assert_eq!(argo.read(&argo.ctr("main", "stdout")), "hello");
}

// TestEmissary/Combined
#[test]
fn combined_holds_both_streams() {
    let argo = Argo::new();
    let o = argo.emissary("main", "echo out; echo hello > /dev/stderr").run();
    o.expect_code(0);
    assert_eq!(argo.read(&argo.ctr("main", "combined")), "out\nhello\n");
    assert_eq!(argo.read(&argo.ctr("main", "stdout")), "out\n");
    assert!(o.stderr.contains("hello"), "stderr untouched: {}", o.stderr);
    for file in ["stdout", "combined"] {
        assert_eq!(fs::metadata(argo.ctr("main", file)).unwrap().mode() & 0o777, 0o666, "{file}");
    }
}

// TestEmissary/Signal: a signal file written before the command starts; 15 -> 143, 9 -> 137.
#[test]
fn a_signal_file_written_before_the_start_stops_the_command() {
    for (signal, code) in [(15, 143), (9, 137)] {
        let argo = Argo::new();
        fs::create_dir_all(argo.ctr("main", "")).unwrap();
        fs::write(argo.ctr("main", "signal"), signal.to_string()).unwrap();
        argo.emissary("main", "sleep 30").spawn().wait_within(SOON).expect_code(code);
        assert_eq!(argo.exitcode("main"), code.to_string());
        assert!(!argo.ctr("main", "signal").exists(), "the signal file is removed once read");
    }
}

/// A container-set template with one member `main`, an artifact, and `retry` as its retryStrategy.
fn retry_template(argo: &Argo, retry: &str) -> PathBuf {
    let art = argo.p("tmp/artifact");
    argo.template(&format!(
        r#"{{"outputs":{{"artifacts":[{{"path":"{}/"}}]}},"containerSet":{{"containers":[{{"name":"main"}}],"retryStrategy":{retry}}}}}"#,
        art.display()
    ));
    argo.dir.join(format!("outputs/artifacts{}.tgz", art.display()))
}

fn fail_once(argo: &Argo) -> Baton {
    argo.emissary("main", FAIL_ONCE)
        .env("RUNS", argo.p("runs"))
        .env("STATE", argo.p("state"))
        .env("ART", argo.p("tmp/artifact"))
}

// TestEmissary/RetryContainerSetFail: retries 1 is one run in all (Argo's count): the failure
// stands, and the artifact is still saved.
#[test]
fn retries_1_is_one_run() {
    let argo = Argo::new();
    let tgz = retry_template(&argo, r#"{"retries":1}"#);
    fail_once(&argo).run().expect_code(1);
    assert_eq!(runs(&argo.p("runs")), 1);
    assert_eq!(argo.exitcode("main"), "1");
    assert!(!tgz_entries(&tgz).is_empty());
}

// TestEmissary/RetryContainerSetSuccess: retries 2 is two runs: the second succeeds.
#[test]
fn retries_2_runs_again_and_succeeds() {
    let argo = Argo::new();
    let tgz = retry_template(&argo, r#"{"retries":2}"#);
    fail_once(&argo).run().expect_code(0);
    assert_eq!(runs(&argo.p("runs")), 2);
    assert_eq!(argo.exitcode("main"), "0");
    assert!(!tgz_entries(&tgz).is_empty());
}

// ---------------------------------------------------------------------------------------------------
// Container sets, as Argo's e2e suite drives them

// e2e TestWorkflowTemplateWithRetryStrategyInContainerSet: retries "2" (a string) runs a failing
// member exactly twice; `duration` is the pause between the runs.
#[test]
fn retries_as_a_string_with_a_pause() {
    let argo = Argo::new();
    argo.template(
        r#"{"containerSet":{"containers":[{"name":"c3"}],"retryStrategy":{"retries":"2","duration":"300ms"}}}"#,
    );
    let started = Instant::now();
    let o = argo
        .emissary("c3", r#"echo run >> "$RUNS"; echo intentional failure; exit 1"#)
        .env("RUNS", argo.p("runs"))
        .run();
    o.expect_code(1);
    assert_eq!(runs(&argo.p("runs")), 2);
    assert!(started.elapsed() >= Duration::from_millis(300), "the pause between runs was not kept");
    assert!(o.stderr.contains("run 1 of 2 ended with exit code 1"), "{}", o.stderr);
}

// e2e TestWorkflowTemplateWithRetryStrategyInContainerSet, c2: a command that cannot be found is
// the emissary's failure (64), and is not retried.
#[test]
fn a_command_that_is_not_found_is_not_retried() {
    let argo = Argo::new();
    argo.template(r#"{"containerSet":{"containers":[{"name":"c2"}],"retryStrategy":{"retries":"2"}}}"#);
    let o = argo
        .argoexec("c2", ["emissary", "--", "invalid-command-xyz", "command"])
        .env("ARGO_CONTAINER_NAME", "c2")
        .run();
    o.expect_code(64);
    assert_eq!(argo.exitcode("c2"), "64");
    assert_eq!(o.stderr.matches("cannot run").count(), 1, "{}", o.stderr);
    assert!(argo.read(&argo.termination("c2")).contains("invalid-command-xyz"));
}

const CHAIN: &str = r#"{"containerSet":{"containers":[{"name":"a"},{"name":"b","dependencies":["a"]}]}}"#;

#[test]
fn a_member_waits_for_its_dependency() {
    let argo = Argo::new();
    argo.template(CHAIN);
    let order = argo.p("order");
    let gate = argo.p("gate");
    let mut b = argo.emissary("b", r#"echo b >> "$ORDER""#).env("ORDER", &order).spawn();
    argo.wait_lock("b");
    let mut a = argo
        .emissary("a", r#"while [ ! -e "$GATE" ]; do sleep 0.01; done; echo a >> "$ORDER""#)
        .env("ORDER", &order)
        .env("GATE", &gate)
        .spawn();
    argo.wait_lock("a");
    assert!(!order.exists() && !b.has_exited(), "b ran before a ended");
    fs::write(&gate, "").unwrap();
    a.wait().expect_code(0);
    b.wait_within(SOON).expect_code(0);
    assert_eq!(argo.read(&order), "a\nb\n");
    assert_eq!(argo.exitcode("b"), "0");
}

impl Argo {
    /// Waits until container `name`'s emissary has claimed its folder (its beacon, raised last, is there).
    fn wait_lock(&self, name: &str) {
        let lock = self.ctr(name, "baton.alive");
        wait_until(&format!("{} to exist", lock.display()), SOON, || lock.exists().then_some(()));
    }
}

// Argo's rule: a dependency's non-zero code goes into the member's exitcode, the member does not
// run, and exits 64 (the controller marks it Error).
#[test]
fn a_failed_dependency_ends_the_member_without_running_it() {
    let argo = Argo::new();
    argo.template(CHAIN);
    argo.emissary("a", "exit 3").run().expect_code(3);
    let o = argo.emissary("b", r#"touch "$ROOT/b-ran""#).run();
    o.expect_code(64);
    assert_eq!(argo.exitcode("b"), "3");
    assert!(!argo.p("b-ran").exists(), "b ran its command");
    let message = argo.read(&argo.termination("b"));
    assert!(message.contains(r#"dependency "a" ended with exit code 3"#), "{message}");
}

// Argo's emissary waits here (#10063) until the controller sees the dependency's container end and
// runs `argoexec kill 15 1` in the member (v3.4.11+): exit 143, the node Failed. baton's beacon tells
// the member at once, and it ends the same way (issue 20.5), with a sentence.
#[test]
fn a_lost_dependency_ends_the_member_at_once() {
    let argo = Argo::new();
    argo.template(CHAIN);
    let mut a = argo.emissary("a", r#"touch "$ROOT/a-started"; exec sleep 30"#).spawn();
    let mut b = argo.emissary("b", r#"touch "$ROOT/b-ran""#).spawn();
    wait_until("a's command to start", SOON, || argo.p("a-started").exists().then_some(()));
    argo.wait_lock("b");
    let sleep_pid = child_of(a.pid());
    kill(a.pid(), libc::SIGKILL);
    let _ = a.wait();
    let o = b.wait_within(SOON);
    kill(sleep_pid, libc::SIGKILL);
    o.expect_code(143);
    assert_eq!(argo.exitcode("b"), "143");
    assert!(!argo.ctr("a", "exitcode").exists());
    assert!(!argo.p("b-ran").exists());
    let message = argo.read(&argo.termination("b"));
    assert!(message.contains(r#"dependency "a" ended without writing"#) && message.contains("killed"), "{message}");
}

/// The first child of `pid`.
fn child_of(pid: i32) -> i32 {
    wait_until("a child process", SOON, || {
        let text = fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
        text.split_whitespace().next()?.parse().ok()
    })
}

#[test]
fn a_stop_signal_while_waiting_ends_the_member_unrun() {
    let argo = Argo::new();
    argo.template(CHAIN);
    let mut b = argo.emissary("b", r#"touch "$ROOT/b-ran""#).spawn();
    argo.wait_lock("b");
    b.signal(libc::SIGTERM);
    b.wait_within(SOON).expect_code(143);
    assert_eq!(argo.exitcode("b"), "143");
    assert!(!argo.p("b-ran").exists());
}

// ---------------------------------------------------------------------------------------------------
// Signals from files, sidecars

#[test]
fn a_signal_file_written_while_running_is_sent_at_once() {
    let argo = Argo::new();
    let mut main = argo.emissary("main", r#"touch "$ROOT/started"; sleep 30"#).spawn();
    wait_until("the command to start", SOON, || argo.p("started").exists().then_some(()));
    // Not a signal number: one sentence, the file removed, the command left alone.
    write_atomic(&argo.ctr("main", "signal"), b"TERM");
    wait_until("the bad signal file to be removed", SOON, || (!argo.ctr("main", "signal").exists()).then_some(()));
    assert!(!main.has_exited());
    // As Argo's wait container writes it: in place, not atomically.
    fs::write(argo.ctr("main", "signal"), "15").unwrap();
    let o = main.wait_within(SOON);
    o.expect_code(143);
    assert!(o.stderr.contains("ignoring") && o.stderr.contains("write a signal number"), "{}", o.stderr);
    assert!(!argo.ctr("main", "signal").exists());
}

#[test]
fn a_sidecar_stops_once_every_main_container_ended() {
    let argo = Argo::new();
    argo.template(r#"{"containerSet":{"containers":[{"name":"a"},{"name":"b"}]},"sidecars":[{"name":"proxy"}]}"#);
    let mut proxy = argo.emissary("proxy", r#"touch "$ROOT/proxy-started"; sleep 30"#).spawn();
    wait_until("the sidecar to start", SOON, || argo.p("proxy-started").exists().then_some(()));
    argo.emissary("a", "exit 0").run().expect_code(0);
    assert!(!proxy.has_exited(), "stopped while b had not ended");
    argo.emissary("b", "exit 2").run().expect_code(2);
    proxy.wait_within(SOON).expect_code(143);
    assert_eq!(argo.exitcode("proxy"), "143");
}

#[test]
fn a_sidecar_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let argo = Argo::new();
    argo.template(r#"{"sidecars":[{"name":"proxy"}]}"#);
    let mut proxy = argo
        .emissary("proxy", r#"trap '' TERM; touch "$ROOT/proxy-started"; sleep 30"#)
        .env("ARGO_TERMINATION_GRACE_PERIOD_SECONDS", "1")
        .spawn();
    wait_until("the sidecar to start", SOON, || argo.p("proxy-started").exists().then_some(()));
    let ended = Instant::now();
    argo.emissary("main", "true").run().expect_code(0);
    proxy.wait_within(SOON).expect_code(137);
    assert!(ended.elapsed() >= Duration::from_secs(1), "killed before the grace period");
}
