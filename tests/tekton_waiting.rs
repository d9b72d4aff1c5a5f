//! Tekton mode: how a step waits (wait files, content, the downward API, predecessors lost, signals
//! while waiting) and the debug pauses (breakpoints, debug before step). Synchronisation is on files
//! and exits, never on sleeps (a sleep only ever proves that something did NOT happen yet).

mod tekton_support;

use std::fs;
use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant, UNIX_EPOCH};

use tekton_support::*;

// ---------------------------------------------------------------------------------------------------
// Waiting

#[test]
fn waits_for_content_and_starts_at_once() {
    let pod = Pod::new();
    let ready = pod.p("downward/ready");
    fs::write(&ready, "").unwrap();
    let mut child = pod
        .step(0, &["-wait_file", ready.to_str().unwrap(), "-wait_file_content"], &["true"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_exit(&mut child, Duration::from_millis(300)).is_none(), "an empty ready file must hold the step");
    let written = now_ms();
    fs::OpenOptions::new().write(true).open(&ready).unwrap().write_all(b"READY").unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(10)).unwrap();
    assert_eq!(status.code(), Some(0));
    let handoff = started_at_ms(&pod.message(0)) - written;
    eprintln!("ready -> StartedAt: {handoff} ms");
    assert!(handoff < 250, "event-driven start took {handoff} ms");
}

#[test]
fn downward_api_symlink_swap_is_seen() {
    let pod = Pod::new();
    let d = pod.p("downward");
    fs::create_dir_all(d.join("..2026_01")).unwrap();
    fs::write(d.join("..2026_01/ready"), "").unwrap();
    std::os::unix::fs::symlink("..2026_01", d.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/ready", d.join("ready")).unwrap();
    let mut child = pod
        .step(0, &["-wait_file", d.join("ready").to_str().unwrap(), "-wait_file_content"], &["true"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_exit(&mut child, Duration::from_millis(300)).is_none());
    // The kubelet's atomic writer: a new timestamped folder, then ..data swapped by rename.
    fs::create_dir_all(d.join("..2026_02")).unwrap();
    fs::write(d.join("..2026_02/ready"), "READY").unwrap();
    std::os::unix::fs::symlink("..2026_02", d.join("..data_tmp")).unwrap();
    let written = now_ms();
    fs::rename(d.join("..data_tmp"), d.join("..data")).unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(10)).unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(started_at_ms(&pod.message(0)) - written < 250);
}

#[test]
fn steps_hand_off_in_order_without_polling() {
    let pod = Pod::new();
    let log = pod.p("order");
    let append = |name: &str| format!("echo {name} >> {}", log.display());
    let mut c2 = pod.step(2, &["-wait_file", &pod.s("run/1/out")], &["sh", "-c", &append("c")]).spawn().unwrap();
    let mut c1 = pod.step(1, &["-wait_file", &pod.s("run/0/out")], &["sh", "-c", &append("b")]).spawn().unwrap();
    let o0 = run(pod.step(0, &[], &["sh", "-c", &append("a")]));
    assert_eq!(code(&o0), 0);
    let posted = fs::metadata(pod.p("run/0/out")).unwrap().modified().unwrap();
    assert_eq!(wait_exit(&mut c1, Duration::from_secs(10)).unwrap().code(), Some(0));
    assert_eq!(wait_exit(&mut c2, Duration::from_secs(10)).unwrap().code(), Some(0));
    assert_eq!(fs::read_to_string(&log).unwrap(), "a\nb\nc\n");
    let posted_ms = posted.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    let handoff = started_at_ms(&pod.message(1)) - posted_ms;
    eprintln!("post file -> next StartedAt: {handoff} ms");
    assert!(handoff < 250, "{handoff} ms");
}

#[test]
fn wait_files_are_taken_one_after_another() {
    let pod = Pod::new();
    // The second file's .err is not looked at while the first is still missing.
    fs::write(pod.p("b.err"), "").unwrap();
    let mut child = pod
        .step(0, &["-wait_file", &format!("{},{}", pod.s("a"), pod.s("b"))], &["true"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_exit(&mut child, Duration::from_millis(300)).is_none());
    fs::write(pod.p("a"), "").unwrap();
    assert_eq!(wait_exit(&mut child, Duration::from_secs(10)).unwrap().code(), Some(1));
    assert!(pod.message(0).contains(r#""Reason","value":"Skipped""#));
}

#[test]
fn breakpoint_on_failure_treats_err_as_go() {
    let pod = Pod::new();
    fs::create_dir_all(pod.p("run/0")).unwrap();
    fs::write(pod.p("run/0/out.err"), "").unwrap();
    let o = run(pod.step(1, &["-wait_file", &pod.s("run/0/out"), "-breakpoint_on_failure"], &["true"]));
    assert_eq!(code(&o), 0);
    assert!(pod.exists("run/1/out"));
}

#[test]
fn predecessor_lost_skips_at_once() {
    let pod = Pod::new();
    let started = pod.p("started");
    let mut first = pod
        .step(
            0,
            &[],
            &["sh", "-c", "echo $$ > \"$0.tmp\"; mv \"$0.tmp\" \"$0\"; exec sleep 30", started.to_str().unwrap()],
        )
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&started, Duration::from_secs(10));
    let orphan: i32 = fs::read_to_string(&started).unwrap().trim().parse().unwrap();
    let mut second =
        pod.step(1, &["-wait_file", &pod.s("run/0/out")], &["true"]).stderr(Stdio::piped()).spawn().unwrap();
    assert!(wait_exit(&mut second, Duration::from_millis(300)).is_none(), "a living predecessor is waited for");
    // The predecessor's baton dies without writing anything (its container was OOM-killed).
    first.kill().unwrap();
    first.wait().unwrap();
    let killed = Instant::now();
    let status = wait_exit(&mut second, Duration::from_secs(10)).expect("a lost predecessor must not hang the step");
    assert!(killed.elapsed() < Duration::from_millis(500), "{:?}", killed.elapsed());
    assert_eq!(status.code(), Some(1));
    assert!(pod.message(1).contains(r#""Reason","value":"Skipped""#));
    assert!(pod.exists("run/1/out.err"));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.contains("killed"), "{err}");
    // The killed wrapper's command outlives it (as in a container whose baton alone was killed): end it.
    unsafe { libc::kill(orphan, libc::SIGKILL) };
}

#[test]
fn stop_signal_while_waiting_never_runs_the_command() {
    let pod = Pod::new();
    let marker = pod.p("ran");
    let mut child = pod
        .step(0, &["-wait_file", &pod.s("never")], &["touch", marker.to_str().unwrap()])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_exit(&mut child, Duration::from_millis(200)).is_none());
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = wait_exit(&mut child, Duration::from_secs(10)).unwrap();
    assert_eq!(status.code(), Some(143));
    assert!(!marker.exists());
    assert!(pod.exists("run/0/out.err"));
    assert_eq!(pod.message(0), "", "Tekton's entrypoint writes no message when a signal ends its wait");
}

// ---------------------------------------------------------------------------------------------------
// Debugging

#[test]
fn breakpoint_on_failure_waits_for_the_exit_code() {
    let pod = Pod::new();
    fs::write(pod.p("results/r"), "v").unwrap();
    let mut child = pod
        .step(0, &["-breakpoint_on_failure", "-results", "r"], &["sh", "-c", "exit 3"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The message is written before the breakpoint; no post file at all.
    let deadline = Instant::now() + Duration::from_secs(10);
    while pod.message(0).is_empty() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        golden(&pod.message(0)),
        r#"[{"key":"r","value":"v","type":1},{"key":"StartedAt","value":"<T>","type":3}]"#
    );
    assert!(wait_exit(&mut child, Duration::from_millis(200)).is_none(), "the step must stay at its breakpoint");
    assert!(!pod.exists("run/0/out") && !pod.exists("run/0/out.err"));
    // /tekton/debug/scripts/debug-fail-continue: touch out.err, `echo 1 > out.breakpointexit` (here 5):
    // the file exists empty before the number is in it, and the number is what counts.
    fs::write(pod.p("run/0/out.err"), "").unwrap();
    let mut exit_file = fs::File::create(pod.p("run/0/out.breakpointexit")).unwrap();
    assert!(wait_exit(&mut child, Duration::from_millis(200)).is_none(), "an empty exit file is not read yet");
    exit_file.write_all(b"5\n").unwrap();
    drop(exit_file);
    assert_eq!(wait_exit(&mut child, Duration::from_secs(10)).unwrap().code(), Some(5));
}

#[test]
fn debug_before_step_continue_and_fail() {
    let pod = Pod::new();
    let marker = pod.p("ran");
    let mut child = pod
        .step(0, &["-debug_before_step"], &["touch", marker.to_str().unwrap()])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_exit(&mut child, Duration::from_millis(200)).is_none());
    fs::create_dir_all(pod.p("run/0")).unwrap();
    fs::write(pod.p("run/0/out.beforestepexit"), "").unwrap();
    assert_eq!(wait_exit(&mut child, Duration::from_secs(10)).unwrap().code(), Some(0));
    assert!(marker.exists());

    let marker = pod.p("ran-1");
    let mut child = pod
        .step(1, &["-debug_before_step"], &["touch", marker.to_str().unwrap()])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_exit(&mut child, Duration::from_millis(200)).is_none());
    fs::create_dir_all(pod.p("run/1")).unwrap();
    fs::write(pod.p("run/1/out.beforestepexit.err"), "").unwrap();
    assert_eq!(wait_exit(&mut child, Duration::from_secs(10)).unwrap().code(), Some(1));
    assert!(!marker.exists());
    assert!(pod.exists("run/1/out.err"));
    assert_eq!(golden(&pod.message(1)), r#"[{"key":"StartedAt","value":"<T>","type":3}]"#);
}

/// Issue 20.7: under `debug.breakpoints.onFailure` a failing step with `onError: continue` pauses like
/// any failing step (Tekton checks the breakpoint first): no post file, no `ExitCode`, no `exitCode`.
#[test]
fn breakpoint_on_failure_pauses_a_step_that_continues_on_error() {
    let pod = Pod::new();
    let mut child = pod
        .step(0, &["-breakpoint_on_failure", "-on_error", "continue"], &["sh", "-c", "exit 3"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while pod.message(0).is_empty() {
        assert!(Instant::now() < deadline, "the message is written before the breakpoint");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(wait_exit(&mut child, Duration::from_millis(200)).is_none(), "the step must stay at its breakpoint");
    assert_eq!(golden(&pod.message(0)), r#"[{"key":"StartedAt","value":"<T>","type":3}]"#);
    assert!(!pod.exists("run/0/out") && !pod.exists("run/0/out.err") && !pod.exists("run/0/status/exitCode"));
    // /tekton/debug/scripts/debug-continue: touch out, `echo 0 > out.breakpointexit`.
    fs::write(pod.p("run/0/out"), "").unwrap();
    fs::write(pod.p("run/0/out.breakpointexit"), "0\n").unwrap();
    assert_eq!(wait_exit(&mut child, Duration::from_secs(10)).unwrap().code(), Some(0));
}

/// Issue 20.8: the before-step "fail-continue" writes `out.err` also under a failure breakpoint, where
/// `.err` lets the next step run (Tekton's debug flow); the skipped step exits 1 without pausing.
#[test]
fn debug_before_step_fail_continue_with_breakpoints_lets_the_next_step_run() {
    let pod = Pod::new();
    let marker = pod.p("ran-0");
    let mut first = pod
        .step(0, &["-breakpoint_on_failure", "-debug_before_step"], &["touch", marker.to_str().unwrap()])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let next_marker = pod.p("ran-1");
    let mut next = pod
        .step(
            1,
            &["-wait_file", &pod.s("run/0/out"), "-breakpoint_on_failure"],
            &["touch", next_marker.to_str().unwrap()],
        )
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_exit(&mut first, Duration::from_millis(200)).is_none());
    fs::create_dir_all(pod.p("run/0")).unwrap();
    fs::write(pod.p("run/0/out.beforestepexit.err"), "").unwrap();
    assert_eq!(wait_exit(&mut first, Duration::from_secs(10)).unwrap().code(), Some(1));
    assert!(!marker.exists());
    assert!(pod.exists("run/0/out.err"));
    assert_eq!(wait_exit(&mut next, Duration::from_secs(10)).unwrap().code(), Some(0));
    assert!(next_marker.exists(), "the next step runs");
    assert!(!pod.message(1).contains("Skipped"), "{}", pod.message(1));
}
