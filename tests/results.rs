//! The end of a step: `--results`, the termination message (written in place, within
//! `--message-limit`, compressed when needed, never cut), and what successors see.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

use common::*;

#[test]
fn results_are_collected_into_the_record_and_the_termination_message() {
    let pod = Pod::new();
    let results = pod.path("results");
    fs::create_dir(&results).unwrap();
    let script = format!(
        "cd {}; printf 'sha256:abc' > digest; printf 'line 1\\nline 2\\n' > notes; printf 'é ü 漢' > Unicode_name.v2; : > empty",
        shq(&results)
    );
    pod.step("a").arg("--results").arg(&results).sh(&script).run().expect_code(0);
    let record = pod.termination("a");
    assert_eq!(record["reason"], "Completed");
    assert_eq!(
        record["results"],
        serde_json::json!({"digest": "sha256:abc", "notes": "line 1\nline 2\n", "Unicode_name.v2": "é ü 漢", "empty": ""})
    );
    assert_eq!(fs::read_to_string(pod.term_path("a")).unwrap(), fs::read_to_string(pod.exit_path("a")).unwrap());

    // An empty results folder is no results, and no error.
    let none = pod.path("none");
    fs::create_dir(&none).unwrap();
    pod.step("b").arg("--results").arg(&none).command(["true"]).run().expect_code(0);
    assert_eq!(pod.exit_record("b")["results"], serde_json::json!({}));
}

/// Each kind of bad result fails a command that succeeded: exit 125, reason ResultsError, an error
/// naming the file and what is wrong with it, and its successors are skipped.
#[test]
fn a_bad_result_fails_the_step_and_its_successors_see_a_failure() {
    let cases: [(&str, &str, &str); 6] = [
        ("not-utf8", "printf 'ok\\377\\376' > bin", "bin"),
        ("name-not-utf8", "printf v > \"$(printf 'bad\\377name')\"", "bad"),
        ("symlink", "printf v > real; mv real ../elsewhere; ln -s ../elsewhere link", "link"),
        ("folder", "mkdir sub; printf v > sub/inner", "sub"),
        ("bad-name", "printf v > 'with space'", "with space"),
        ("bad-edge", "printf v > -dash", "-dash"),
    ];
    for (case, script, culprit) in cases {
        let pod = Pod::new();
        let results = pod.path("results");
        fs::create_dir(&results).unwrap();
        let mut next = pod.step("next").args(["--after", "a"]).command(["touch", pod.path("ran").to_str().unwrap()]).spawn();
        let out = pod
            .step("a")
            .arg("--results")
            .arg(&results)
            .sh(&format!("cd {} && printf fine > good && {script}", shq(&results)))
            .run();
        assert_eq!(out.code(), 125, "{case}: stderr {}", out.stderr);
        let record = pod.termination("a");
        assert_eq!(record["reason"], "ResultsError", "{case}: {record}");
        assert_eq!(record["exitCode"], 0, "{case}: the command itself succeeded: {record}");
        let error = error_of(&record);
        assert!(error.contains(culprit), "{case}: the error names {culprit:?}: {error}");
        assert!(out.stderr.contains(culprit), "{case}: stderr names {culprit:?}: {}", out.stderr);
        assert_eq!(pod.exit_record("a")["reason"], "ResultsError");
        next.wait_within(SOON).expect_code(0);
        let next = pod.exit_record("next");
        assert_eq!(next["reason"], "Skipped", "{case}: {next}");
        assert!(error_of(&next).contains("step a"), "{case}: {next}");
        assert!(!pod.path("ran").exists(), "{case}: a successor ran after a results error");
    }
}

#[test]
fn each_results_error_says_what_is_wrong() {
    let pod = Pod::new();
    let results = pod.path("results");
    fs::create_dir(&results).unwrap();
    fs::write(results.join("bin"), b"\xff\xfe").unwrap();
    symlink("/etc/hostname", results.join("link")).unwrap();
    fs::create_dir(results.join("sub")).unwrap();
    fs::write(results.join("bad name"), "v").unwrap();
    pod.step("a").arg("--results").arg(&results).command(["true"]).run().expect_code(125);
    let error = error_of(&pod.exit_record("a")).to_lowercase();
    for words in ["utf-8", "symbolic link", "folder", "invalid result name"] {
        assert!(error.contains(words), "the error says {words:?}: {error}");
    }
}

#[test]
fn with_on_error_continue_a_results_error_still_fails_the_step() {
    let pod = Pod::new();
    let results = pod.path("results");
    fs::create_dir(&results).unwrap();
    fs::write(results.join("bin"), b"\xff").unwrap();
    pod.step("a").args(["--on-error", "continue"]).arg("--results").arg(&results).sh("exit 3").run().expect_code(125);
    let record = pod.exit_record("a");
    assert_eq!(record["reason"], "ResultsError", "{record}");
    assert_eq!(record["exitCode"], 3);
}

#[test]
fn a_failed_command_with_a_bad_result_keeps_its_own_failure() {
    let pod = Pod::new();
    let results = pod.path("results");
    fs::create_dir(&results).unwrap();
    fs::write(results.join("bin"), b"\xff").unwrap();
    pod.step("a").arg("--results").arg(&results).sh("exit 3").run().expect_code(3);
    let record = pod.exit_record("a");
    assert_eq!(record["reason"], "Failed");
    assert_eq!(record["exitCode"], 3);
    assert!(error_of(&record).contains("bin"), "{record}");
}

/// The kubelet bind-mounts the termination file into the container: it must be written in place
/// (same inode), and what it held before must be gone (the kubelet reads the file's last 4096 bytes).
#[test]
fn the_termination_message_is_written_in_place() {
    let pod = Pod::new();
    let term = pod.term_path("a");
    fs::write(&term, "#".repeat(5000)).unwrap();
    fs::set_permissions(&term, fs::Permissions::from_mode(0o666)).unwrap();
    let inode = fs::metadata(&term).unwrap().ino();
    // Written once, at the end: while the command runs, the file is as the kubelet left it.
    let during = pod.path("during");
    pod.step("a").sh(&format!("cat {} > {}", shq(&term), shq(&during))).run().expect_code(0);
    assert_eq!(fs::read_to_string(&during).unwrap(), "#".repeat(5000), "the message was written before the end");
    assert_eq!(fs::metadata(&term).unwrap().ino(), inode, "the termination file was replaced, not written in place");
    let text = fs::read_to_string(&term).unwrap();
    assert!(!text.contains('#'), "old content left behind: {text}");
    check_record(&text);
    assert_eq!(text, fs::read_to_string(pod.exit_path("a")).unwrap());
}

/// The real thing: the file is a bind mount (here in a private mount namespace) that cannot be
/// renamed over; what baton writes must land in the kubelet's file behind it.
#[test]
fn the_termination_message_goes_through_a_kubelet_style_bind_mount() {
    let pod = Pod::new();
    let kubelet_side = pod.path("kubelet-termination-log");
    let mount_point = pod.path("dev-termination-log");
    for f in [&kubelet_side, &mount_point] {
        fs::write(f, "").unwrap();
        fs::set_permissions(f, fs::Permissions::from_mode(0o666)).unwrap();
    }
    let out = pod
        .baton("a")
        .through([
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            r#"mount --bind "$0" "$1" && shift && exec "$@""#,
            kubelet_side.to_str().unwrap(),
            mount_point.to_str().unwrap(),
        ])
        .args(["run", "--name", "a", "--dir"])
        .arg(pod.dir())
        .arg("--termination-path")
        .arg(&mount_point)
        .sh("exit 3")
        .run();
    out.expect_code(3);
    let text = fs::read_to_string(&kubelet_side).unwrap();
    assert_eq!(check_record(&text)["exitCode"], 3, "{text}");
    assert_eq!(text, fs::read_to_string(pod.exit_path("a")).unwrap());
    assert_eq!(fs::read_to_string(&mount_point).unwrap(), "", "outside the namespace the mount point is untouched");
}

/// A step released by its predecessor finds the predecessor's termination message complete.
#[test]
fn the_termination_message_is_on_disk_before_successors_are_released() {
    let pod = Pod::new();
    for round in 0..5 {
        let (a, b) = (format!("a{round}"), format!("b{round}"));
        let saw = pod.path(&format!("saw{round}"));
        let mut next = pod
            .step(&b)
            .args(["--after", &a])
            .sh(&format!("cat {} > {}", shq(pod.term_path(&a)), shq(&saw)))
            .spawn();
        pod.step(&a).command(["true"]).run().expect_code(0);
        next.wait_within(SOON).expect_code(0);
        let seen = fs::read_to_string(&saw).unwrap();
        check_record(&seen);
        assert_eq!(seen, fs::read_to_string(pod.term_path(&a)).unwrap());
    }
}

fn write_results(dir: &std::path::Path, results: &[(&str, String)]) {
    fs::create_dir_all(dir).unwrap();
    for (k, v) in results {
        fs::write(dir.join(k), v).unwrap();
    }
}

/// Deterministic pseudo-random hex: compresses only to about half.
fn noise(len: usize, seed: u64) -> String {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from_digit((x % 16) as u32, 16).unwrap()
        })
        .collect()
}

#[test]
fn over_the_limit_the_results_are_compressed_and_decode_back() {
    let pod = Pod::new();
    let results = pod.path("results");
    let expected: BTreeMap<String, String> = [
        ("log".to_string(), "abcdefgh-".repeat(400)),
        ("digest".to_string(), "sha256:0123456789abcdef".to_string()),
        ("text".to_string(), "é".repeat(300)),
    ]
    .into_iter()
    .collect();
    let pairs: Vec<(&str, String)> = expected.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    write_results(&results, &pairs);
    // 12288 / 5 containers.
    pod.step("a").arg("--results").arg(&results).args(["--message-limit", "2457"]).command(["true"]).run().expect_code(0);
    let text = fs::read_to_string(pod.term_path("a")).unwrap();
    assert!(text.len() <= 2457, "{} bytes over the limit", text.len());
    let raw = check_record(&text);
    assert_eq!(raw["reason"], "Completed");
    assert!(raw.get("resultsDeflate").is_some(), "expected compressed results: {text}");
    let decoded = baton_contract::message::decode(&text).unwrap();
    assert_eq!(decoded.results, expected);
    assert_eq!(decoded.exit_code, Some(0));
    // The marker carries the same record; a successor sees a success.
    assert_eq!(text, fs::read_to_string(pod.exit_path("a")).unwrap());
    pod.step("b").args(["--after", "a"]).command(["true"]).run().expect_code(0);
    assert_eq!(pod.exit_record("b")["reason"], "Completed");
}

#[test]
fn results_that_do_not_fit_even_compressed_fail_naming_the_largest_and_the_limit() {
    for limit in [1024usize, 4096] {
        let pod = Pod::new();
        let results = pod.path("results");
        write_results(
            &results,
            &[("noise", noise(12000, 7)), ("middle", noise(3000, 9)), ("small", "ok".to_string())],
        );
        let mut next = pod.step("b").args(["--after", "a"]).command(["true"]).spawn();
        let out = pod
            .step("a")
            .arg("--results")
            .arg(&results)
            .args(["--message-limit", &limit.to_string()])
            .command(["true"])
            .run();
        out.expect_code(125);
        let text = fs::read_to_string(pod.term_path("a")).unwrap();
        assert!(text.len() <= limit, "{} bytes over the limit {limit}", text.len());
        let record = check_record(&text);
        assert_eq!(record["reason"], "ResultsError", "{text}");
        assert_eq!(record["exitCode"], 0);
        let error = error_of(&record);
        for named in ["noise", "12000", "middle", "3000", &limit.to_string()] {
            assert!(error.contains(named), "limit {limit}: the error names {named}: {error}");
        }
        assert!(out.stderr.contains("noise"), "{}", out.stderr);
        next.wait_within(SOON).expect_code(0);
        assert_eq!(pod.exit_record("b")["reason"], "Skipped");
    }
}

#[test]
fn a_long_error_is_shortened_to_fit_never_cut_json() {
    let pod = Pod::new();
    let long_path: String = (0..300).map(|i| format!("/no/such/dir-{i}")).collect::<Vec<_>>().join(":");
    let out = pod
        .step("a")
        .env("PATH", &long_path)
        .args(["--message-limit", "256"])
        .command(["baton-test-no-such-command"])
        .run();
    out.expect_code(127);
    let text = fs::read_to_string(pod.term_path("a")).unwrap();
    assert!(text.len() <= 256, "{} bytes: {text}", text.len());
    let record = check_record(&text);
    assert_eq!(record["reason"], "CannotRun");
    assert_eq!(record["exitCode"], 127);
    // The full sentence still goes to the log.
    assert!(out.stderr.contains(&long_path), "stderr keeps the whole error");
}
