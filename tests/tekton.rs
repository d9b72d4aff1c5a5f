//! Tekton mode, driven from outside: the built binary invoked as `entrypoint` over a temporary
//! folder standing in for `/tekton` (BATON_TEKTON_ROOT). Golden tests of the termination messages
//! and files against the facts sheet (docs/tekton.md), the subcommands, and the flag errors.
//! Synchronisation is on files and exits, never on sleeps (a sleep only ever proves that something
//! did NOT happen yet).

mod tekton_support;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, UNIX_EPOCH};

use base64::Engine as _;

use tekton_support::*;

// ---------------------------------------------------------------------------------------------------
// The outcomes table

#[test]
fn success_writes_post_exit_code_and_started_at() {
    let pod = Pod::new();
    let o = run(pod
        .step(
            0,
            &["-results", "foo,missing,bar"],
            &["sh", "-c", "printf 'hi' > $R/foo; printf '%s' \"$1\" > $R/bar", "sh", "b&<v>\n"],
        )
        .env("R", pod.p("results")));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        golden(&pod.message(0)),
        r#"[{"key":"foo","value":"hi","type":1},{"key":"bar","value":"b\u0026\u003cv\u003e\n","type":1},{"key":"StartedAt","value":"<T>","type":3}]"#
    );
    assert!(pod.exists("run/0/out") && !pod.exists("run/0/out.err"));
    assert_eq!(fs::read_to_string(pod.p("run/0/status/exitCode")).unwrap(), "0");
    assert!(pod.p("run/0/status/results").is_dir() && pod.p("run/0/status/artifacts").is_dir());
    assert_eq!(fs::metadata(pod.p("run/0/out")).unwrap().len(), 0);
}

#[test]
fn failure_writes_err_and_keeps_the_code() {
    let pod = Pod::new();
    let o = run(pod.step(0, &[], &["sh", "-c", "exit 3"]));
    assert_eq!(code(&o), 3);
    assert_eq!(golden(&pod.message(0)), r#"[{"key":"StartedAt","value":"<T>","type":3}]"#);
    assert!(pod.exists("run/0/out.err") && !pod.exists("run/0/out"));
    assert!(!pod.exists("run/0/status/exitCode"));
}

#[test]
fn on_error_continue_reports_exit_code_and_succeeds() {
    let pod = Pod::new();
    let o = run(pod.step(0, &["-on_error", "continue"], &["sh", "-c", "exit 3"]));
    assert_eq!(code(&o), 0);
    assert_eq!(
        golden(&pod.message(0)),
        r#"[{"key":"StartedAt","value":"<T>","type":3},{"key":"ExitCode","value":"3","type":3}]"#
    );
    assert!(pod.exists("run/0/out") && !pod.exists("run/0/out.err"));
    assert_eq!(fs::read_to_string(pod.p("run/0/status/exitCode")).unwrap(), "3");
}

#[test]
fn stop_and_fail_is_the_default_behaviour() {
    let pod = Pod::new();
    let o = run(pod.step(0, &["-on_error", "stopAndFail"], &["sh", "-c", "exit 4"]));
    assert_eq!(code(&o), 4);
    assert!(pod.exists("run/0/out.err"));
}

#[test]
fn previous_step_failed_skips() {
    let pod = Pod::new();
    fs::create_dir_all(pod.p("run/0")).unwrap();
    fs::write(pod.p("run/0/out.err"), "").unwrap();
    let marker = pod.p("ran");
    let o =
        run(pod.step(1, &["-wait_file", &pod.s("run/0/out"), "-results", "r"], &["touch", marker.to_str().unwrap()]));
    assert_eq!(code(&o), 1);
    assert_eq!(
        golden(&pod.message(1)),
        r#"[{"key":"StartedAt","value":"<T>","type":3},{"key":"Reason","value":"Skipped","type":3}]"#
    );
    assert!(pod.exists("run/1/out.err") && !pod.exists("run/1/out"));
    assert!(!marker.exists(), "a skipped step must not run its command");
    assert!(!pod.exists("run/1/status/exitCode"));
}

#[test]
fn timeout_terminates_the_group_and_reports_timeout_exceeded() {
    let pod = Pod::new();
    let started = Instant::now();
    // The grandchild shares the process group: it is stopped too.
    let o = run(pod.step(0, &["-timeout", "300ms"], &["sh", "-c", "sleep 30 & sleep 30; wait"]));
    assert_eq!(code(&o), 1);
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert_eq!(
        golden(&pod.message(0)),
        r#"[{"key":"StartedAt","value":"<T>","type":3},{"key":"Reason","value":"TimeoutExceeded","type":3}]"#
    );
    assert!(pod.exists("run/0/out.err"));
    assert!(!pod.exists("run/0/status/exitCode"));
    assert!(stderr(&o).contains("SIGTERM"), "{}", stderr(&o));
}

#[test]
fn cancel_file_kills_the_step() {
    let pod = Pod::new();
    fs::write(pod.p("downward/cancel"), "").unwrap();
    let started = pod.p("started");
    let mut child = pod
        .step(0, &[], &["sh", "-c", "touch \"$0\"; exec sleep 30", started.to_str().unwrap()])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&started, Duration::from_secs(10));
    fs::write(pod.p("downward/cancel"), "true").unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(10)).expect("the cancel file must end the step");
    assert_eq!(status.code(), Some(9));
    assert_eq!(
        golden(&pod.message(0)),
        r#"[{"key":"StartedAt","value":"<T>","type":3},{"key":"Reason","value":"Cancelled","type":3}]"#
    );
    assert!(pod.exists("run/0/out.err"));
    assert_eq!(fs::read_to_string(pod.p("run/0/status/exitCode")).unwrap(), "killed");
}

#[test]
fn cancel_file_already_set_never_starts_the_command() {
    let pod = Pod::new();
    fs::write(pod.p("downward/cancel"), "true").unwrap();
    let marker = pod.p("ran");
    let o = run(pod.step(0, &[], &["touch", marker.to_str().unwrap()]));
    assert_eq!(code(&o), 9);
    assert!(!marker.exists());
    assert!(pod.message(0).contains(r#"{"key":"Reason","value":"Cancelled","type":3}"#));
}

#[test]
fn signalled_child_exits_128_plus_n() {
    let pod = Pod::new();
    let o = run(pod.step(0, &[], &["sh", "-c", "kill -KILL $$"]));
    assert_eq!(code(&o), 137);
    assert!(pod.exists("run/0/out.err"));
    let o = run(pod.step(1, &["-on_error", "continue"], &["sh", "-c", "kill -TERM $$"]));
    assert_eq!(code(&o), 0);
    assert!(pod.message(1).ends_with(r#"{"key":"ExitCode","value":"143","type":3}]"#));
}

#[test]
fn cannot_run_is_127_and_not_continued() {
    let pod = Pod::new();
    let o = run(pod.step(0, &["-on_error", "continue"], &["/no/such/command"]));
    assert_eq!(code(&o), 127);
    assert!(stderr(&o).contains("/no/such/command"), "{}", stderr(&o));
    assert!(pod.exists("run/0/out.err") && !pod.exists("run/0/out"));
    assert_eq!(golden(&pod.message(0)), r#"[{"key":"StartedAt","value":"<T>","type":3}]"#);
}

// ---------------------------------------------------------------------------------------------------
// Messages

#[test]
fn go_json_escaping_of_result_values() {
    let pod = Pod::new();
    fs::write(pod.p("results/r"), b"<&>\"\\\t\x01\x7f\xe2\x80\xa8\xffok").unwrap();
    let o = run(pod.step(0, &["-results", "r"], &["true"]));
    assert_eq!(code(&o), 0);
    let expected = concat!(
        r#"[{"key":"r","value":"\u003c\u0026\u003e\"\\\t\u0001"#,
        "\u{7f}",
        r#"\u2028\ufffdok","type":1},{"key":"StartedAt","value":"<T>","type":3}]"#
    );
    assert_eq!(golden(&pod.message(0)), expected);
}

#[test]
fn step_results_and_artifacts_have_their_types() {
    let pod = Pod::new();
    let o = run(pod.step(
        0,
        &["-results", "t", "-step_results", "s"],
        &[
            "sh",
            "-c",
            "printf T > \"$0/results/t\"; printf S > \"$1/results/s\"; printf '{}' > \"$1/artifacts/provenance.json\"",
            pod.root.to_str().unwrap(),
            &pod.s("run/0/status"),
        ],
    ));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let prov = pod.s("run/0/status/artifacts/provenance.json");
    assert_eq!(
        golden(&pod.message(0)),
        format!(
            r#"[{{"key":"t","value":"T","type":1}},{{"key":"s","value":"S","type":4}},{{"key":"StartedAt","value":"<T>","type":3}},{{"key":"{prov}","value":"{{}}","type":5}}]"#
        )
    );
}

#[test]
fn existing_message_is_appended_to() {
    let pod = Pod::new();
    let mut c = pod.step(0, &[], &["true"]);
    fs::write(pod.p("termination-0"), r#"[{"key":"x","value":"y","type":1}]"#).unwrap();
    let o = run(c.stderr(Stdio::piped()));
    assert_eq!(code(&o), 0);
    assert_eq!(
        golden(&pod.message(0)),
        r#"[{"key":"x","value":"y","type":1},{"key":"StartedAt","value":"<T>","type":3}]"#
    );
}

#[test]
fn results_too_large_fail_the_step_before_the_post_file() {
    let pod = Pod::new();
    let big: String = (0..5000u32).map(|i| char::from(b'a' + ((i * 7919) % 26) as u8)).collect();
    fs::write(pod.p("results/big"), &big).unwrap();
    fs::write(pod.p("results/small"), "s").unwrap();
    let o = run(pod.step(0, &["-results", "big,small"], &["true"]));
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("Termination message is above max allowed size 4096, caused by large task result."),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("big (5000 bytes)"), "{}", stderr(&o));
    assert_eq!(golden(&pod.message(0)), r#"[{"key":"StartedAt","value":"<T>","type":3}]"#);
    // The successors skip: the post file says failure, and no exitCode claims success.
    assert!(pod.exists("run/0/out.err") && !pod.exists("run/0/out"));
    assert!(!pod.exists("run/0/status/exitCode"));
}

#[test]
fn compression_when_asked_and_smaller() {
    let pod = Pod::new();
    fs::write(pod.p("results/big"), "abc".repeat(3000)).unwrap();
    let o = run(pod.step(0, &["-results", "big", "-compress_termination_message"], &["true"]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = pod.message(0);
    assert!(text.starts_with("tknz:") && text.len() <= 4096 && !text.ends_with('='), "{text}");
    let json = decode_tknz(&text);
    assert_eq!(
        golden(&json),
        format!(
            r#"[{{"key":"big","value":"{}","type":1}},{{"key":"StartedAt","value":"<T>","type":3}}]"#,
            "abc".repeat(3000)
        )
    );
    assert!(pod.exists("run/0/out"));
    // Small messages stay plain JSON even with the flag.
    let o = run(pod.step(1, &["-compress_termination_message"], &["true"]));
    assert_eq!(code(&o), 0);
    assert!(pod.message(1).starts_with("[{"));
}

#[test]
fn compressed_existing_message_is_read_back() {
    let pod = Pod::new();
    fs::write(pod.p("results/big"), "xyz".repeat(2000)).unwrap();
    let mut c = pod.step(0, &["-results", "big", "-compress_termination_message"], &["true"]);
    let old = format!(r#"[{{"key":"old","value":"{}","type":1}}]"#, "q".repeat(100));
    let packed = miniz_oxide::deflate::compress_to_vec(old.as_bytes(), 9);
    fs::write(
        pod.p("termination-0"),
        format!("tknz:{}", base64::engine::general_purpose::STANDARD_NO_PAD.encode(packed)),
    )
    .unwrap();
    assert_eq!(code(&run(c.stderr(Stdio::piped()))), 0);
    let json = decode_tknz(&pod.message(0));
    assert!(json.starts_with(r#"[{"key":"old","value":"qqq"#), "{json}");
    assert!(json.contains(r#"{"key":"big","value":"xyzxyz"#));
}

#[test]
fn the_kubelet_share_is_the_budget_in_bigger_pods() {
    let pod = Pod::new();
    // init made 3 steps: with `prepare` 4 containers, 12288 / 4 = 3072 bytes each.
    let o = run(pod.cmd(["init", BATON.as_str(), pod.s("bin/entrypoint").as_str(), "step-a", "step-b", "step-c"]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    fs::write(pod.p("results/r"), "z".repeat(3100)).unwrap();
    let o = run(pod.step(0, &["-results", "r"], &["true"]));
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("max allowed size 3072"), "{}", stderr(&o));
    // The real count wins when given.
    let o = run(pod.step(1, &["-results", "r"], &["true"]).env("BATON_TEKTON_CONTAINERS", "3"));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

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

// ---------------------------------------------------------------------------------------------------
// Command, output, dispatch

#[test]
fn platform_commands_when_no_entrypoint() {
    let pod = Pod::new();
    let mut c = pod.cmd(["-post_file", &pod.s("run/0/out"), "-termination_path", &pod.s("t"), "--", "extra"]);
    c.env(
        "TEKTON_PLATFORM_COMMANDS",
        r#"{"linux/amd64":["sh","-c","echo \"$0\"; exit 4"],"linux/arm64":["sh","-c","echo \"$0\"; exit 4"]}"#,
    );
    let o = run(c);
    assert_eq!(code(&o), 4, "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "extra\n");
    let mut c = pod.cmd(["-post_file", &pod.s("run/1/out"), "--", "x"]);
    c.env("TEKTON_PLATFORM_COMMANDS", r#"{"windows/amd64":["cmd"]}"#);
    let o = run(c);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("could not find command for platform"), "{}", stderr(&o));
    assert!(pod.exists("run/1/out.err"), "successors must not wait forever");
    let o = run(pod.cmd(["-post_file", &pod.s("run/2/out"), "--", "x"]));
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("TEKTON_PLATFORM_COMMANDS"), "{}", stderr(&o));
}

#[test]
fn stdout_and_stderr_paths_copy_and_append() {
    let pod = Pod::new();
    let out = pod.p("logs/deep/out.log");
    let err = pod.p("logs/err.log");
    fs::create_dir_all(err.parent().unwrap()).unwrap();
    fs::write(&err, "before\n").unwrap();
    let o = run(pod.step(
        0,
        &["-stdout_path", out.to_str().unwrap(), "-stderr_path", err.to_str().unwrap()],
        &["sh", "-c", "echo to-out; echo to-err >&2"],
    ));
    assert_eq!(code(&o), 0);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "to-out\n");
    assert!(stderr(&o).contains("to-err"));
    assert_eq!(fs::read_to_string(&out).unwrap(), "to-out\n");
    assert_eq!(fs::read_to_string(&err).unwrap(), "before\nto-err\n");
}

#[test]
fn baton_name_with_a_tekton_flag_is_tekton_mode() {
    let pod = Pod::new();
    let o = Command::new(BATON.as_str())
        .args(["-post_file", &pod.s("run/0/out"), "-termination_path", &pod.s("t"), "-entrypoint", "true", "--"])
        .env("BATON_TEKTON_ROOT", &pod.root)
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(pod.exists("run/0/out"));
    // baton's own command line is untouched.
    let o = Command::new(BATON.as_str()).arg("--help").output().unwrap();
    assert_eq!(code(&o), 0);
    assert!(String::from_utf8_lossy(&o.stdout).contains("run"));
}

// ---------------------------------------------------------------------------------------------------
// Flag errors

#[test]
fn flag_errors_are_one_sentence() {
    let pod = Pod::new();
    let cases: &[(&[&str], i32, &str)] = &[
        (&["-nope", "--", "true"], 2, "flag provided but not defined: -nope"),
        (&["-timeout", "1d", "-entrypoint", "true", "--"], 2, "invalid value \"1d\" for flag -timeout"),
        (&["-timeout", "10", "-entrypoint", "true", "--"], 2, "missing unit"),
        (&["-wait_file_content=maybe", "--"], 2, "invalid boolean value"),
        (&["-post_file"], 2, "flag needs an argument: -post_file"),
        (
            &["-enable_spire", "-entrypoint", "true", "--"],
            1,
            "-enable_spire (SPIRE signing of results, which needs a SPIRE agent's socket) is not implemented",
        ),
        (&["-when_expressions", r#"{"input":"a"}"#, "-entrypoint", "true", "--"], 1, "-when_expressions is not a JSON list"),
        (
            &["-basic-git", "s=https://x", "-entrypoint", "true", "--"],
            2,
            "invalid value \"s=https://x\" for flag -basic-git",
        ),
        // Not a flag of Tekton's entrypoint (only unmerged pull requests add it).
        (
            &["-secret_mask_file", "/m", "-entrypoint", "true", "--"],
            2,
            "flag provided but not defined: -secret_mask_file",
        ),
        (&["-result_from", "stdout", "-entrypoint", "true", "--"], 1, "invalid -result_from \"stdout\""),
        (&["-on_error", "ignore", "-entrypoint", "true", "--"], 1, "invalid -on_error \"ignore\""),
        (&["-entrypoint", "true", "stray", "--"], 1, "unexpected argument \"stray\""),
    ];
    for (args, want, sentence) in cases {
        let o = run(pod.cmd(*args));
        assert_eq!(code(&o), *want, "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains(sentence), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: one sentence, got {err}");
    }
    let o = run(pod.cmd(["-help"]));
    assert_eq!(code(&o), 0);
    assert!(stderr(&o).contains("-wait_file"));
}

#[test]
fn refused_flags_still_release_successors() {
    let pod = Pod::new();
    let o = run(pod.cmd(["-bogus", "-post_file", &pod.s("run/0/out"), "--", "true"]));
    assert_eq!(code(&o), 2);
    assert!(pod.exists("run/0/out.err"));
    let o = run(pod.cmd(["-enable_spire", "-post_file", &pod.s("run/1/out"), "-entrypoint", "true", "--"]));
    assert_eq!(code(&o), 1);
    assert!(pod.exists("run/1/out.err"));
}

#[test]
fn negative_timeout_fails_after_waiting_like_tekton() {
    let pod = Pod::new();
    let marker = pod.p("ran");
    let o = run(pod.step(0, &["-timeout", "-1s"], &["touch", marker.to_str().unwrap()]));
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("negative timeout specified"));
    assert!(!marker.exists());
    assert!(pod.exists("run/0/out.err"));
    assert_eq!(golden(&pod.message(0)), r#"[{"key":"StartedAt","value":"<T>","type":3}]"#);
}

// ---------------------------------------------------------------------------------------------------
// Subcommands

#[test]
fn init_copies_the_binary_and_links_the_steps() {
    let pod = Pod::new();
    let dst = pod.p("bin/entrypoint");
    let o = run(pod.cmd(["init", BATON.as_str(), dst.to_str().unwrap(), "step-a", "step-b"]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(fs::metadata(&dst).unwrap().permissions().mode() & 0o7777, 0o311);
    assert_eq!(fs::metadata(&dst).unwrap().len(), fs::metadata(BATON.as_str()).unwrap().len());
    for (link, i) in [("step-a", 0), ("0", 0), ("step-b", 1), ("1", 1)] {
        assert_eq!(
            fs::read_link(pod.p(&format!("steps/{link}"))).unwrap(),
            pod.p(&format!("run/{i}/status")),
            "{link}"
        );
    }
    // An init container that restarts finds its links: fine. A wrong link is replaced.
    fs::remove_file(pod.p("steps/1")).unwrap();
    std::os::unix::fs::symlink("/elsewhere", pod.p("steps/1")).unwrap();
    let o = run(pod.cmd(["init", BATON.as_str(), dst.to_str().unwrap(), "step-a", "step-b"]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(fs::read_link(pod.p("steps/1")).unwrap(), pod.p("run/1/status"));
    // The copy runs: `entrypoint` by name, in Tekton mode.
    let o = Command::new(&dst).args(["cp"]).output().unwrap();
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).starts_with("cp error: "), "{}", stderr(&o));
}

#[test]
fn init_and_cp_errors() {
    let pod = Pod::new();
    let o = run(pod.cmd(["init", "/no/such/src", &pod.s("bin/x")]));
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).starts_with("init error: "), "{}", stderr(&o));
    let o = run(pod.cmd(["init", "onlyone"]));
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).starts_with("init error: "));
    let o = run(pod.cmd(["cp", BATON.as_str(), &pod.s("nodir/x")]));
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).starts_with("cp error: "), "{}", stderr(&o));
}

#[test]
fn cp_copies_with_mode_0311() {
    let pod = Pod::new();
    let src = pod.p("src");
    fs::write(&src, "payload").unwrap();
    let dst = pod.p("dst");
    let o = run(pod.cmd(["cp", src.to_str().unwrap(), dst.to_str().unwrap()]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(fs::metadata(&dst).unwrap().permissions().mode() & 0o7777, 0o311);
    fs::set_permissions(&dst, fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(fs::read_to_string(&dst).unwrap(), "payload");
}

#[test]
fn step_init_makes_only_the_links() {
    let pod = Pod::new();
    let o = run(pod.cmd(["step-init", "step-x"]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(fs::read_link(pod.p("steps/step-x")).unwrap(), pod.p("run/0/status"));
    assert_eq!(fs::read_link(pod.p("steps/0")).unwrap(), pod.p("run/0/status"));
}

#[test]
fn decode_script_in_place_keeping_the_mode() {
    let pod = Pod::new();
    let script = pod.p("scripts/script-0-abcde");
    fs::create_dir_all(script.parent().unwrap()).unwrap();
    let text = "#!/bin/sh\necho hello from a script\n";
    let encoded = base64::engine::general_purpose::STANDARD.encode(text);
    // As place-scripts writes it: a heredoc, so a newline at the end (and maybe in between).
    fs::write(&script, format!("{}\n{}\n", &encoded[..8], &encoded[8..])).unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let o = run(pod.cmd(["decode-script", script.to_str().unwrap()]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(fs::read_to_string(&script).unwrap(), text);
    assert_eq!(fs::metadata(&script).unwrap().permissions().mode() & 0o777, 0o755);
    fs::write(&script, "not base64!").unwrap();
    let o = run(pod.cmd(["decode-script", script.to_str().unwrap()]));
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).starts_with("decode-script error: error decoding script file"), "{}", stderr(&o));
}

/// Issue 11: what the command cost goes to `usage.json` beside `exitCode`, never into the termination
/// message, which stays exactly what Tekton's controller reads.
#[test]
fn usage_is_written_beside_exit_code_not_into_the_message() {
    let pod = Pod::new();
    let o = run(pod.step(0, &[], &["sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let usage: serde_json::Value = serde_json::from_str(&fs::read_to_string(pod.p("run/0/status/usage.json")).unwrap()).unwrap();
    for key in ["userCpuMs", "systemCpuMs", "maxRssKiB"] {
        assert!(usage[key].is_u64(), "{key} in {usage}");
    }
    assert!(usage["maxRssKiB"].as_u64().unwrap() > 0, "{usage}");
    assert!(!pod.message(0).contains("usage") && !pod.message(0).contains("CpuMs"), "{}", pod.message(0));
}
