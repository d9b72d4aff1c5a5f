//! Tekton mode, driven from outside: the built binary invoked as `entrypoint` over a temporary
//! folder standing in for `/tekton` (BATON_TEKTON_ROOT). Golden tests of the outcomes and the
//! termination messages against the facts sheet (docs/tekton.md); waiting and debugging are in
//! tekton_waiting.rs, the command line and subcommands in tekton_cli.rs. Synchronisation is on files
//! and exits, never on sleeps (a sleep only ever proves that something did NOT happen yet).

mod tekton_support;

use std::fs;
use std::process::Stdio;
use std::time::{Duration, Instant};

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

/// Issue 20.9: a process the command left running (`dockerd &`) does not hold back the post file:
/// Tekton's entrypoint publishes when its direct child exits. The group is ended afterwards.
#[test]
fn leftover_processes_do_not_delay_the_post_file() {
    let pod = Pod::new();
    let leftover = pod.p("leftover");
    let mut child = pod
        .step(0, &[], &["sh", "-c", "trap '' TERM; sleep 60 & echo $! > \"$0\"; exit 0", leftover.to_str().unwrap()])
        .env("BATON_GRACE", "60s")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Before the fix the post file came only after the grace period (60 s) or the leftover's end.
    wait_for(&pod.p("run/0/out"), Duration::from_secs(10));
    assert!(child.try_wait().unwrap().is_none(), "baton still ends the group after publishing");
    assert_eq!(golden(&pod.message(0)), r#"[{"key":"StartedAt","value":"<T>","type":3}]"#);
    let pid: i32 = fs::read_to_string(&leftover).unwrap().trim().parse().unwrap();
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(10)).expect("baton ends once the group is gone").code(),
        Some(0)
    );
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
        r#"\u2028"#,
        "\u{fffd}",
        r#"ok","type":1},{"key":"StartedAt","value":"<T>","type":3}]"#
    );
    assert_eq!(golden(&pod.message(0)), expected);
}

/// Issue 20, measured against Tekton's entrypoint v1.15.0 (e2e/tekton-upstream.sh): it writes the
/// results into the termination file, reads the file back and writes it again with the internal keys
/// and the artifacts. So an invalid UTF-8 byte of a task or step result ends up as U+FFFD itself (3
/// bytes; one per bad byte, as Go decodes), while one of an artifact, written once, stays the escape
/// `\ufffd` (6 bytes). The controller reads both the same; the size the 4096 check sees differs.
#[test]
fn invalid_utf8_as_tekton_leaves_it_results_decoded_artifacts_escaped() {
    let pod = Pod::new();
    fs::write(pod.p("results/t"), b"a\xffb").unwrap();
    let o = run(pod.step(
        0,
        &["-results", "t", "-step_results", "s"],
        &[
            "sh",
            "-c",
            "printf 'x\\342\\202.' > \"$0/results/s\"; printf '{\"x\":\"\\377\"}' > \"$0/artifacts/provenance.json\"",
            &pod.s("run/0/status"),
        ],
    ));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let prov = pod.s("run/0/status/artifacts/provenance.json");
    assert_eq!(
        golden(&pod.message(0)),
        format!(
            "[{{\"key\":\"t\",\"value\":\"a\u{fffd}b\",\"type\":1}},\
             {{\"key\":\"s\",\"value\":\"x\u{fffd}\u{fffd}.\",\"type\":4}},\
             {{\"key\":\"StartedAt\",\"value\":\"<T>\",\"type\":3}},\
             {{\"key\":\"{prov}\",\"value\":\"{{\\\"x\\\":\\\"\\ufffd\\\"}}\",\"type\":5}}]"
        )
    );
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

/// Issue 20.10: an entry whose type is a name, as older controllers wrote it, is kept, as Tekton's
/// `ResultType` reads it (and written back as its number).
#[test]
fn existing_entry_with_a_type_name_is_kept() {
    let pod = Pod::new();
    let mut c = pod.step(0, &[], &["true"]);
    fs::write(pod.p("termination-0"), r#"[{"key":"x","value":"y","type":"TaskRunResult"}]"#).unwrap();
    let o = run(c.stderr(Stdio::piped()));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        golden(&pod.message(0)),
        r#"[{"key":"x","value":"y","type":1},{"key":"StartedAt","value":"<T>","type":3}]"#
    );
}

/// Issue 20, measured against Tekton's entrypoint v1.15.0 (e2e/tekton-upstream.sh, steps g4 to g7):
/// entries the file already held are read as Go's `json.Unmarshal` reads them, so none is lost where
/// Tekton keeps it. The expected bytes are upstream's own.
#[test]
fn existing_entries_are_read_as_go_reads_them() {
    let cases: [(&[u8], &str); 4] = [
        // A lone surrogate escape: U+FFFD (serde_json alone refused the whole file).
        (
            br#"[{"key":"k","value":"\ud800 \u00e9","type":1}]"#,
            "[{\"key\":\"k\",\"value\":\"\u{fffd} \u{e9}\",\"type\":1}",
        ),
        // resourceName, a field of Tekton's struct, written back.
        (
            br#"[{"key":"k","value":"v","resourceName":"git","type":1}]"#,
            r#"[{"key":"k","value":"v","resourceName":"git","type":1}"#,
        ),
        // Field names in any case; unknown fields ignored.
        (br#"[{"Key":"k","VALUE":"v","Type":1,"extra":true}]"#, r#"[{"key":"k","value":"v","type":1}"#),
        // Invalid UTF-8, a type of any integer, a null entry.
        (
            b"[{\"key\":\"k\",\"value\":\"a\xffb\",\"type\":-1},{\"key\":\"n\",\"value\":\"v\",\"type\":300},null]",
            "[{\"key\":\"k\",\"value\":\"a\u{fffd}b\",\"type\":-1},{\"key\":\"n\",\"value\":\"v\",\"type\":300},\
             {\"key\":\"\",\"value\":\"\"}",
        ),
    ];
    for (held, kept) in cases {
        let pod = Pod::new();
        let mut c = pod.step(0, &[], &["true"]);
        fs::write(pod.p("termination-0"), held).unwrap();
        let o = run(c.stderr(Stdio::piped()));
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert_eq!(golden(&pod.message(0)), format!(r#"{kept},{{"key":"StartedAt","value":"<T>","type":3}}]"#));
    }
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
