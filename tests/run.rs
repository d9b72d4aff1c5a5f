//! `baton run` as a container's entrypoint: exit codes, names, options, standard streams, tees,
//! timeouts, `--on-error continue`, and running as a non-root UID.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use common::*;

#[test]
fn exit_code_is_the_commands_own_and_the_record_says_how_it_ended() {
    let pod = Pod::new();
    for code in [0, 1, 3, 42, 255] {
        let name = format!("exit-{code}");
        pod.step(&name).sh(&format!("exit {code}")).run().expect_code(code);
        let record = pod.exit_record(&name);
        assert_eq!(record["step"], name.as_str());
        assert_eq!(record["exitCode"], code);
        assert_eq!(record["reason"], if code == 0 { "Completed" } else { "Failed" });
        assert!(is_timestamp(&record["startedAt"]), "{record}");
        assert!(record["startedAt"].as_str() <= record["finishedAt"].as_str(), "{record}");
        assert_eq!(record["results"], serde_json::json!({}));
        if code == 0 {
            assert!(record.get("error").is_none(), "no error on success: {record}");
        }
        // The termination message and the marker are the same record, byte for byte.
        assert_eq!(
            fs::read_to_string(pod.term_path(&name)).unwrap(),
            fs::read_to_string(pod.exit_path(&name)).unwrap()
        );
    }
}

#[test]
fn a_command_killed_by_signal_n_exits_128_plus_n() {
    let pod = Pod::new();
    for (signal, name) in [(libc::SIGUSR1, "usr1"), (libc::SIGKILL, "kill"), (libc::SIGTERM, "term")] {
        pod.step(name).sh(&format!("kill -{signal} $$")).run().expect_code(128 + signal);
        let record = pod.exit_record(name);
        assert_eq!(record["exitCode"], 128 + signal, "{record}");
        assert_eq!(record["reason"], "Failed", "{record}");
    }
}

#[test]
fn a_command_not_found_exits_127_naming_the_command_and_path() {
    let pod = Pod::new();
    let path = "/usr/bin:/bin:/baton-test/nowhere";
    let out = pod.step("missing").env("PATH", path).command(["baton-test-no-such-command", "arg"]).run();
    out.expect_code(127);
    let record = pod.exit_record("missing");
    assert_eq!(record["reason"], "CannotRun");
    assert_eq!(record["exitCode"], 127);
    let error = error_of(&record);
    assert!(error.contains("baton-test-no-such-command"), "error names the command: {error}");
    assert!(error.contains(path), "error names the PATH searched: {error}");
    assert!(!error.contains(". "), "one sentence: {error}");
    assert!(out.stderr.contains("baton-test-no-such-command"), "stderr: {}", out.stderr);

    let absent = pod.path("no/such/tool");
    pod.step("missing-path").command([&absent]).run().expect_code(127);
    let error = error_of(&pod.exit_record("missing-path")).to_string();
    assert!(error.contains(absent.to_str().unwrap()), "{error}");
}

#[test]
fn a_command_that_is_not_executable_exits_126_naming_it() {
    let pod = Pod::new();
    let script = pod.path("not-executable.sh");
    fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o644)).unwrap();
    let out = pod.step("noexec").command([&script]).run();
    out.expect_code(126);
    let record = pod.exit_record("noexec");
    assert_eq!(record["reason"], "CannotRun");
    assert_eq!(record["exitCode"], 126);
    let error = error_of(&record);
    assert!(error.contains(script.to_str().unwrap()), "error names the file: {error}");
    assert!(error.to_lowercase().contains("permission denied"), "error says why: {error}");

    // A script whose interpreter is missing from the image.
    let orphan_script = pod.path("needs-interpreter");
    fs::write(&orphan_script, "#!/baton-test/no/interpreter\n").unwrap();
    fs::set_permissions(&orphan_script, fs::Permissions::from_mode(0o755)).unwrap();
    pod.step("interp").command([&orphan_script]).run().expect_code(126);
    let record = pod.exit_record("interp");
    assert_eq!(record["exitCode"], 126);
    assert!(error_of(&record).contains(orphan_script.to_str().unwrap()), "{record}");

    // A folder is not executable either.
    let folder = pod.path("a-folder");
    fs::create_dir(&folder).unwrap();
    pod.step("folder").command([&folder]).run().expect_code(126);
    assert!(error_of(&pod.exit_record("folder")).contains(folder.to_str().unwrap()));
}

#[test]
fn bad_options_exit_125_and_never_run_the_command() {
    let pod = Pod::new();
    let ran = pod.path("ran");
    let touch = ["--", "touch", ran.to_str().unwrap()];
    let cases: Vec<Vec<&str>> = vec![
        vec!["run", "--timeout", "5x"],
        vec!["run", "--wait-timeout", "soon"],
        vec!["run", "--grace", "-1s"],
        vec!["run", "--on-error", "maybe"],
        vec!["run", "--message-limit", "10"],
        vec!["run", "--message-limit", "5000"],
        vec!["run", "--message-limit", "many"],
        vec!["run", "--no-such-option"],
        vec!["run", "--after", "Not_A_Step"],
        vec!["run", "--after", ""],
        vec!["frobnicate"],
    ];
    for (i, case) in cases.iter().enumerate() {
        let mut args = case.clone();
        args.extend(touch);
        let out = pod.baton(&format!("bad-{i}")).args(&args).arg("--dir").arg(pod.dir()).run();
        assert_eq!(out.code(), 125, "{args:?} must exit 125; stderr: {}", out.stderr);
        assert!(!out.stderr.trim().is_empty(), "{args:?} must say what is wrong");
        assert!(!ran.exists(), "{args:?} ran the command");
    }
    // No command at all.
    let out = pod.baton("no-command").args(["run", "--name", "x"]).run();
    assert_eq!(out.code(), 125, "{}", out.stderr);
    let out = pod.baton("no-spec").arg("wait").run();
    assert_eq!(out.code(), 125, "{}", out.stderr);
}

#[test]
fn a_bad_message_limit_names_the_allowed_range() {
    let pod = Pod::new();
    let out = pod.step("limit").args(["--message-limit", "10"]).command(["true"]).run();
    out.expect_code(125);
    assert!(out.stderr.contains("--message-limit"), "{}", out.stderr);
    assert!(out.stderr.contains("4096"), "{}", out.stderr);
}

#[test]
fn durations_take_the_documented_forms() {
    let pod = Pod::new();
    for (i, dur) in ["250ms", "1.5s", "2m", "1h", "7"].iter().enumerate() {
        let out = pod
            .baton(&format!("dur-{i}"))
            .args(["run", "--timeout", dur, "--grace", dur, "--wait-timeout", dur])
            .command(["true"])
            .run();
        assert_eq!(out.code(), 0, "{dur} refused: {}", out.stderr);
    }
}

#[test]
fn step_names_are_checked_before_anything_happens() {
    let pod = Pod::new();
    let ran = pod.path("ran");
    let long = "a".repeat(64);
    for bad in ["Build", "-a", "a-", "a b", "a/b", "..", "é", long.as_str(), ""] {
        let out = pod
            .baton("bad-name")
            .arg("run")
            .arg(format!("--name={bad}"))
            .arg("--dir")
            .arg(pod.dir())
            .command(["touch", ran.to_str().unwrap()])
            .run();
        assert_eq!(out.code(), 125, "--name {bad:?} accepted; stderr: {}", out.stderr);
        assert!(out.stderr.contains("invalid step name"), "--name {bad:?}: {}", out.stderr);
        assert!(!ran.exists(), "--name {bad:?} ran the command");
    }
    let steps = pod.dir().join("steps");
    let published: Vec<_> = fs::read_dir(&steps).map(|d| d.map(|e| e.unwrap().file_name()).collect()).unwrap_or_default();
    assert!(published.is_empty(), "invalid names published {published:?}");

    let long = "a".repeat(63);
    for good in ["a", "0", "a.b_c-d", "step-1", long.as_str()] {
        pod.step(good).command(["true"]).run().expect_code(0);
        assert_eq!(pod.exit_record(good)["step"], good);
    }
}

#[test]
fn baton_step_and_baton_dir_come_from_the_environment() {
    let pod = Pod::new();
    pod.baton("env")
        .env("BATON_DIR", pod.dir())
        .env("BATON_STEP", "from-env")
        .args(["run", "--termination-path"])
        .arg(pod.term_path("from-env"))
        .command(["true"])
        .run()
        .expect_code(0);
    let record = pod.exit_record("from-env");
    assert_eq!(record["step"], "from-env");
    assert_eq!(record["reason"], "Completed");
}

#[test]
fn an_unnamed_step_runs_but_publishes_nothing() {
    let pod = Pod::new();
    let ran = pod.path("ran");
    pod.baton("unnamed")
        .arg("run")
        .arg("--dir")
        .arg(pod.dir())
        .sh(&format!("touch {}; exit 3", shq(&ran)))
        .run()
        .expect_code(3);
    assert!(ran.exists(), "the command must run");
    let left: Vec<_> = fs::read_dir(pod.dir()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "an unnamed step wrote {left:?} into the shared directory");
}

#[test]
fn without_tees_the_command_inherits_stdin_stdout_and_stderr() {
    let pod = Pod::new();
    let input = pod.path("input");
    fs::write(&input, "from-stdin\n").unwrap();
    let out = pod
        .step("stdio")
        .stdin(&input)
        .sh("cat; echo to-stdout; echo to-stderr >&2; readlink /proc/$$/fd/1; readlink /proc/$$/fd/2")
        .run();
    out.expect_code(0);
    let stdout_file = pod.path("stdio.out");
    let stderr_file = pod.path("stdio.err");
    // No copy in between: the command writes straight into baton's own files.
    assert_eq!(
        out.stdout,
        format!("from-stdin\nto-stdout\n{}\n{}\n", stdout_file.display(), stderr_file.display())
    );
    assert!(out.stderr.starts_with("to-stderr\n"), "stderr: {:?}", out.stderr);
}

#[test]
fn tees_append_both_streams_to_files_and_still_pass_them_through() {
    let pod = Pod::new();
    let (log_out, log_err) = (pod.path("out.log"), pod.path("err.log"));
    fs::write(&log_out, "earlier\n").unwrap();
    let out = pod
        .step("tee")
        .arg("--stdout")
        .arg(&log_out)
        .arg("--stderr")
        .arg(&log_err)
        .sh("i=0; while [ $i -lt 3000 ]; do echo line-$i-abcdefghijklmnopqrstuvwxyz; i=$((i+1)); done; echo oops >&2; exit 4")
        .run();
    out.expect_code(4);
    let expected: String = (0..3000).map(|i| format!("line-{i}-abcdefghijklmnopqrstuvwxyz\n")).collect();
    assert!(out.stdout == expected, "stdout passthrough lost data ({} of {} bytes)", out.stdout.len(), expected.len());
    assert_eq!(fs::read_to_string(&log_out).unwrap(), format!("earlier\n{expected}"), "--stdout appends");
    assert_eq!(fs::read_to_string(&log_err).unwrap(), "oops\n");
    assert!(out.stderr.starts_with("oops\n"), "stderr passthrough: {:?}", out.stderr);
    assert_eq!(pod.exit_record("tee")["exitCode"], 4);
}

#[test]
fn a_grandchild_holding_the_tee_pipe_does_not_hold_the_step_open() {
    let pod = Pod::new();
    let gc = pod.path("gc.pid");
    let mut proc = pod
        .step("holder")
        .arg("--stdout")
        .arg(pod.path("out.log"))
        .arg("--stderr")
        .arg(pod.path("err.log"))
        .sh(&format!("sleep 30 & echo $! > {}; echo bye; echo bye-err >&2; exit 0", shq(&gc)))
        .spawn();
    let out = proc.wait_within(SOON);
    out.expect_code(0);
    let grandchild: i32 = fs::read_to_string(&gc).unwrap().trim().parse().unwrap();
    kill(grandchild, libc::SIGKILL);
    assert_eq!(out.stdout, "bye\n");
    assert_eq!(fs::read_to_string(pod.path("out.log")).unwrap(), "bye\n");
    assert_eq!(fs::read_to_string(pod.path("err.log")).unwrap(), "bye-err\n");
    assert_eq!(pod.exit_record("holder")["reason"], "Completed");
}

#[test]
fn a_tee_file_that_cannot_be_opened_fails_the_step_before_the_command_runs() {
    let pod = Pod::new();
    let ran = pod.path("ran");
    // A missing folder is made (as for --results); a path under a regular file can never be opened.
    fs::write(pod.path("a-file"), "").unwrap();
    let bad = pod.path("a-file/out.log");
    let out = pod.step("badtee").arg("--stdout").arg(&bad).command(["touch", ran.to_str().unwrap()]).run();
    out.expect_code(125);
    assert!(!ran.exists());
    let record = pod.exit_record("badtee");
    assert_eq!(record["exitCode"], serde_json::Value::Null);
    assert!(error_of(&record).contains(bad.to_str().unwrap()), "{record}");
}

#[test]
fn tee_files_in_missing_folders_get_their_folders() {
    let pod = Pod::new();
    let log = pod.path("logs/deep/out.log");
    pod.step("mk").arg("--stdout").arg(&log).sh("echo hello").run().expect_code(0);
    assert_eq!(fs::read_to_string(&log).unwrap(), "hello\n");
}

#[test]
fn on_error_continue_exits_0_keeps_the_real_code_and_lets_successors_run() {
    let pod = Pod::new();
    pod.step("flaky").args(["--on-error", "continue"]).sh("exit 3").run().expect_code(0);
    let record = pod.exit_record("flaky");
    assert_eq!(record["reason"], "Continued");
    assert_eq!(record["exitCode"], 3);

    let ran = pod.path("next-ran");
    pod.step("next").args(["--after", "flaky"]).command(["touch", ran.to_str().unwrap()]).run().expect_code(0);
    assert!(ran.exists(), "a Continued predecessor counts as success");
    assert_eq!(pod.exit_record("next")["reason"], "Completed");

    // "Cannot run" continues too.
    pod.step("absent").args(["--on-error", "continue"]).command(["baton-test-no-such-command"]).run().expect_code(0);
    let record = pod.exit_record("absent");
    assert_eq!(record["reason"], "Continued");
    assert_eq!(record["exitCode"], 127);
    assert!(error_of(&record).contains("baton-test-no-such-command"), "{record}");

    // And a success stays Completed.
    pod.step("fine").args(["--on-error", "continue"]).command(["true"]).run().expect_code(0);
    assert_eq!(pod.exit_record("fine")["reason"], "Completed");
}

#[test]
fn timeout_stops_the_command_with_sigterm_and_exits_124() {
    let pod = Pod::new();
    let out = pod.step("slow").args(["--timeout", "300ms"]).command(["sleep", "30"]).run();
    out.expect_code(124);
    assert!(out.elapsed < Duration::from_secs(10), "took {:?}", out.elapsed);
    let record = pod.exit_record("slow");
    assert_eq!(record["reason"], "TimedOut");
    assert_eq!(record["exitCode"], 128 + libc::SIGTERM);
    let error = error_of(&record);
    assert!(error.contains("--timeout") && error.contains("SIGTERM"), "{error}");
}

#[test]
fn timeout_kills_the_whole_group_after_grace_when_sigterm_is_ignored() {
    let pod = Pod::new();
    let h = helper().to_str().unwrap();
    let (rec, ready, rec2, ready2) = (pod.path("rec"), pod.path("ready"), pod.path("rec2"), pod.path("ready2"));
    let script = format!(
        "{h} record {} {} & exec {h} record {} {}",
        shq(&rec2),
        shq(&ready2),
        shq(&rec),
        shq(&ready)
    );
    let out = pod.step("stubborn").args(["--timeout", "1s", "--grace", "300ms"]).sh(&script).run();
    out.expect_code(124);
    // The default grace is 10 s: finishing well before proves --grace was used.
    assert!(out.elapsed < Duration::from_secs(8), "took {:?}", out.elapsed);
    let record = pod.exit_record("stubborn");
    assert_eq!(record["reason"], "TimedOut");
    assert_eq!(record["exitCode"], 128 + libc::SIGKILL, "{record}");
    assert!(error_of(&record).contains("SIGKILL"), "{record}");
    // SIGTERM came first, to the whole group (the command and its background grandchild).
    // (Neither was stopped, so no SIGCONT followed.)
    assert_eq!(recorded(&rec), [libc::SIGTERM], "the command must have seen SIGTERM before SIGKILL");
    assert_eq!(recorded(&rec2), [libc::SIGTERM], "the grandchild must have seen SIGTERM");
    let (grandchild, _, _) = read_ready(&ready2);
    wait_until("the grandchild to be killed too", SOON, || {
        proc_stat(grandchild).is_none_or(|(state, _, _)| state == 'Z').then_some(())
    });
}

/// runAsNonRoot with a read-only root file system: baton (in a folder nobody but root may write,
/// and so is the working directory) runs as two different UIDs, and writes only under --dir, the
/// results folder and the termination path.
#[test]
fn runs_as_non_root_uids_writing_only_where_allowed() {
    let pod = Pod::open_to_all();
    // The pod's init container (root) prepares the emptyDir.
    pod.baton("init").arg("init").arg("--dir").arg(pod.dir()).run().expect_code(0);
    let image = pod.path("image");
    fs::create_dir(&image).unwrap();
    let exe = image.join("baton");
    copy_executable(Path::new(BATON.as_str()), &exe);
    fs::set_permissions(&image, fs::Permissions::from_mode(0o555)).unwrap();
    let results = pod.path("results-a");
    fs::create_dir(&results).unwrap();
    std::os::unix::fs::chown(&results, Some(65532), Some(65532)).unwrap();
    // The kubelet's termination-message files: created by root, mode 0666, bind-mounted.
    for name in ["a", "b"] {
        fs::write(pod.term_path(name), "").unwrap();
        fs::set_permissions(pod.term_path(name), fs::Permissions::from_mode(0o666)).unwrap();
    }
    let step = |name: &str, uid: u32| {
        pod.step(name).exe(&exe).as_uid(uid).cwd(&image).env("HOME", "/nonexistent").env("TMPDIR", &image)
    };
    let mut b = step("b", 65533).args(["--after", "a"]).sh("id -u").spawn();
    let a = step("a", 65532)
        .arg("--results")
        .arg(&results)
        .sh(&format!("id -u; printf v > {}/who", shq(&results)))
        .run();
    a.expect_code(0);
    assert_eq!(a.stdout, "65532\n");
    let b = b.wait();
    b.expect_code(0);
    assert_eq!(b.stdout, "65533\n");
    assert_eq!(pod.termination("a")["results"], serde_json::json!({"who": "v"}));
    assert_eq!(pod.termination("b")["reason"], "Completed");
    assert_eq!(pod.exit_record("b")["reason"], "Completed");

    // Nothing was written outside --dir, the results folder and the termination files.
    let entries: Vec<_> = fs::read_dir(&image).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(entries, ["baton"], "baton wrote into its own read-only folder");
    let mut stray = Vec::new();
    walk(pod.root(), &mut |p: &Path| {
        let uid = fs::symlink_metadata(p).unwrap().uid();
        if (uid == 65532 || uid == 65533) && !p.starts_with(pod.dir()) && !p.starts_with(&results) {
            stray.push(p.to_path_buf());
        }
    });
    assert!(stray.is_empty(), "files written by the steps outside the allowed places: {stray:?}");
    // The termination files were written in place, not replaced.
    assert_eq!(fs::metadata(pod.term_path("a")).unwrap().uid(), 0);
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        f(&path);
        if fs::symlink_metadata(&path).unwrap().is_dir() {
            walk(&path, f);
        }
    }
}

/// readOnlyRootFilesystem for real: in a private mount namespace the whole root file system is
/// remounted read-only, except the emptyDir, the results folder and the termination file (bind
/// mounts, as in a pod); baton then runs as a non-root UID. Any write elsewhere would fail.
#[test]
fn runs_as_non_root_on_a_read_only_root_file_system() {
    let pod = Pod::open_to_all();
    pod.baton("init").arg("init").arg("--dir").arg(pod.dir()).run().expect_code(0);
    let exe = pod.install_for_all(Path::new(BATON.as_str()));
    let results = pod.path("results");
    fs::create_dir(&results).unwrap();
    std::os::unix::fs::chown(&results, Some(65532), Some(65532)).unwrap();
    for name in ["a", "b"] {
        fs::write(pod.term_path(name), "").unwrap();
        fs::set_permissions(pod.term_path(name), fs::Permissions::from_mode(0o666)).unwrap();
    }
    const SETUP: &str = r#"
        uid=$1; shift
        while [ "$1" != "--" ]; do mount --bind "$1" "$1" || exit 90; shift; done; shift
        mount -o remount,bind,ro / || exit 91
        exec setpriv --reuid=$uid --regid=$uid --clear-groups "$@"
    "#;
    let contained = |name: &str, uid: u32, writable: &[&Path]| {
        let mut prefix: Vec<String> = ["unshare", "--mount", "--propagation", "private", "sh", "-c", SETUP, "sh"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        prefix.push(uid.to_string());
        prefix.push(pod.dir().to_str().unwrap().to_string());
        prefix.push(pod.term_path(name).to_str().unwrap().to_string());
        prefix.extend(writable.iter().map(|p| p.to_str().unwrap().to_string()));
        prefix.push("--".to_string());
        pod.step(name).exe(&exe).through(prefix).cwd("/").env("HOME", "/nonexistent")
    };
    let mut b = contained("b", 65533, &[]).args(["--after", "a"]).sh("id -u").spawn();
    let a = contained("a", 65532, &[&results])
        .arg("--results")
        .arg(&results)
        // The root file system really is read-only for the command too.
        .sh(&format!("if touch /tmp/baton-test-rofs 2>/dev/null; then exit 9; fi; printf ok > {}/status; id -u", shq(&results)))
        .run();
    a.expect_code(0);
    assert_eq!(a.stdout, "65532\n");
    assert!(a.stderr.is_empty(), "baton complained: {}", a.stderr);
    let b = b.wait();
    b.expect_code(0);
    assert_eq!(b.stdout, "65533\n");
    assert!(b.stderr.is_empty(), "baton complained: {}", b.stderr);
    let record = pod.termination("a");
    assert_eq!(record["reason"], "Completed");
    assert_eq!(record["results"], serde_json::json!({"status": "ok"}));
    assert_eq!(pod.termination("b")["reason"], "Completed");
    assert_eq!(pod.exit_record("b")["reason"], "Completed");
}

/// Steps of different UIDs that start together on a fresh emptyDir (no `baton init` before them):
/// the first makes `steps/`, and the second must be able to make its own folder in it at any
/// moment, also just after the first made `steps/` (here: while its chmod is held up by strace).
#[test]
fn steps_of_different_uids_starting_together_on_a_fresh_shared_dir_both_run() {
    let pod = Pod::open_to_all();
    let exe = pod.install_for_all(Path::new(BATON.as_str()));
    for name in ["a", "b"] {
        fs::write(pod.term_path(name), "").unwrap();
        fs::set_permissions(pod.term_path(name), fs::Permissions::from_mode(0o666)).unwrap();
    }
    let strace = std::process::Command::new("strace").arg("-V").output();
    assert!(strace.is_ok_and(|o| o.status.success()), "this test needs strace (apt-get install strace)");
    let mut a = pod
        .step("a")
        .exe(&exe)
        .through([
            "strace",
            "-f",
            "-o",
            "/dev/null",
            "-e",
            "trace=chmod,fchmodat",
            "-e",
            "inject=chmod,fchmodat:delay_enter=1000000",
            "setpriv",
            "--reuid=65532",
            "--regid=65532",
            "--clear-groups",
        ])
        .command(["true"])
        .spawn();
    let steps = pod.dir().join("steps");
    wait_until("step a to make steps/", SOON, || fs::metadata(&steps).ok());
    let b = pod.step("b").exe(&exe).as_uid(65533).command(["true"]).run();
    b.expect_code(0);
    a.wait().expect_code(0);
    assert_eq!(pod.exit_record("a")["reason"], "Completed");
    assert_eq!(pod.exit_record("b")["reason"], "Completed");
}

/// The command gets the descriptors baton was started with and nothing of baton's own: not the
/// step's lock (a command holding it would keep a dead wrapper "alive"), the control FIFO, the
/// signalfd or the inotify instance.
#[test]
fn the_command_inherits_no_descriptor_of_batons_own() {
    let pod = Pod::new();
    let list = "ls /proc/$$/fd";
    let direct = std::process::Command::new("sh").args(["-c", list]).stdin(std::process::Stdio::null()).output().unwrap();
    let expected = String::from_utf8(direct.stdout).unwrap();
    pod.step("before").command(["true"]).run().expect_code(0);
    let ready = pod.path("ready");
    fs::write(&ready, "").unwrap();
    let out = pod.step("fds").args(["--after", "before"]).arg("--wait-file").arg(&ready).sh(list).run();
    out.expect_code(0);
    assert_eq!(out.stdout, expected, "descriptors leaked into the command");
}

#[test]
fn a_shared_directory_it_cannot_use_is_a_125_naming_it() {
    let pod = Pod::open_to_all();
    let exe = pod.install_for_all(Path::new(BATON.as_str()));
    let locked = pod.path("locked");
    fs::create_dir(&locked).unwrap();
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).unwrap();
    let ran = pod.path("ran");
    let out = pod
        .baton("a")
        .exe(&exe)
        .as_uid(65532)
        .args(["run", "--name", "a", "--dir"])
        .arg(&locked)
        .command(["touch", ran.to_str().unwrap()])
        .run();
    out.expect_code(125);
    assert!(out.stderr.contains(locked.to_str().unwrap()), "stderr names the folder: {}", out.stderr);
    assert!(!ran.exists(), "the command ran without its step folder");
}

/// Issue 11: every ended step's record says what its command cost, from getrusage(RUSAGE_CHILDREN).
#[test]
fn the_record_reports_cpu_time_and_peak_memory() {
    let pod = Pod::new();
    let h = helper().to_str().unwrap();
    pod.step("burn").command([h, "burn", "200"]).run().expect_code(0);
    let usage = pod.exit_record("burn")["usage"].clone();
    let cpu = usage["userCpuMs"].as_u64().unwrap() + usage["systemCpuMs"].as_u64().unwrap();
    assert!(cpu >= 150, "a step that burns 200 ms of CPU reports {usage}");
    assert_eq!(pod.termination("burn")["usage"], usage, "the termination message carries it too");

    pod.step("alloc").command([h, "alloc", "64"]).run().expect_code(0);
    let usage = pod.exit_record("alloc")["usage"].clone();
    assert!(usage["maxRssKiB"].as_u64().unwrap() >= 64 * 1024, "a step that allocates 64 MiB reports {usage}");

    // Shown by baton status for ended steps.
    let out = pod.baton("status").args(["status", "--dir"]).arg(pod.dir()).run();
    assert!(out.stdout.contains("cpu ") && out.stdout.contains("max rss "), "{}", out.stdout);
    // A step whose command never ran has no usage.
    pod.step("skip").args(["--after", "nope:done", "--wait-timeout", "10ms"]).command(["true"]).run().expect_code(125);
    assert!(pod.exit_record("skip").get("usage").is_none());
}
