//! Tekton mode: the command (platform commands, output copies, dispatch by name or flag), flag errors
//! as one sentence, and the subcommands (`init`, `cp`, `step-init`, `decode-script`).

mod tekton_support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use base64::Engine as _;

use tekton_support::*;

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
