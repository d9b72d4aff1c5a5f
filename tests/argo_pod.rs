//! Argo mode: the pod around the emissary: the shared folder as Argo's other containers see it, the
//! init-less layout's supervisor, `argoexec kill`, and the subcommands handed to the upstream argoexec
//! (artifact plugins included). Same harness as tests/argo.rs. Synchronisation is on files and exits.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;
use std::time::Duration;

use common::argo::*;
use common::*;

// ---------------------------------------------------------------------------------------------------
// The shared folder, as Argo's other containers see it

#[test]
fn the_folder_is_open_to_every_uid_and_the_exitcode_appears_whole() {
    let argo = Argo::new();
    // A restarted container's old code, in the folder as Argo's wait container pre-creates it.
    fs::create_dir_all(argo.ctr("main", "")).unwrap();
    fs::set_permissions(argo.dir.join("ctr/main"), fs::Permissions::from_mode(0o777)).unwrap();
    fs::write(argo.ctr("main", "exitcode"), "7").unwrap();
    argo.emissary("main", r#"[ ! -e "$EXITCODE" ]"#).env("EXITCODE", argo.ctr("main", "exitcode")).run().expect_code(0);
    assert_eq!(argo.exitcode("main"), "0", "the stale code is gone before the command runs");
    assert_eq!(fs::metadata(argo.dir.join("ctr/main")).unwrap().mode() & 0o7777, 0o777);
    assert_eq!(fs::metadata(argo.ctr("main", "exitcode")).unwrap().mode() & 0o7777, 0o644);
    let mut names: Vec<String> = fs::read_dir(argo.dir.join("ctr/main"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["baton.alive", "baton.lock", "combined", "exitcode", "stdout"], "no temporary file left");
}

/// Writes the init-less supervisor's marker as Argo's supervisor writes it: atomically.
fn supervisor_says(argo: &Argo, text: &str) {
    let tmp = argo.dir.join(".status.tmp");
    fs::write(&tmp, text).unwrap();
    fs::rename(&tmp, argo.dir.join("status")).unwrap();
}

// Argo v4.1's init-less layout (ARGO_WAIT_FOR_READY=true): the command waits for the supervisor's READY
// in /var/run/argo/status; RUNNING is its heartbeat (issue 20.3).
#[test]
fn the_initless_layout_waits_for_the_supervisors_ready() {
    let argo = Argo::new();
    let mut main = argo.emissary("main", r#"touch "$ROOT/ran""#).env("ARGO_WAIT_FOR_READY", "true").spawn();
    wait_until("the wait to be announced", SOON, || main.stderr_now().contains("supervisor's READY").then_some(()));
    supervisor_says(&argo, "RUNNING");
    std::thread::sleep(Duration::from_millis(200)); // only ever proves that it did NOT start yet
    assert!(!main.has_exited(), "RUNNING is not READY");
    assert!(!argo.p("ran").exists());
    supervisor_says(&argo, "READY");
    main.wait_within(SOON).expect_code(0);
    assert!(argo.p("ran").exists());
    assert_eq!(argo.exitcode("main"), "0");
}

// FAILED: Argo's supervisor sentinel 65, with the supervisor's message in the termination log.
#[test]
fn the_initless_supervisors_failure_ends_the_container_unrun() {
    let argo = Argo::new();
    supervisor_says(&argo, "FAILED\ncannot load input artifact a");
    let o = argo.emissary("main", r#"touch "$ROOT/ran""#).env("ARGO_WAIT_FOR_READY", "true").run();
    o.expect_code(65);
    assert_eq!(argo.exitcode("main"), "65");
    assert!(!argo.p("ran").exists());
    assert!(argo.read(&argo.termination("main")).contains("cannot load input artifact a"));
}

// Input artifacts are linked into main from where the supervisor staged them: not done by baton yet,
// so such a template is refused with a sentence rather than run without its inputs.
#[test]
fn the_initless_layout_with_input_artifacts_is_refused() {
    let argo = Argo::new();
    argo.template(r#"{"inputs":{"artifacts":[{"name":"a","path":"/tmp/a"}]}}"#);
    supervisor_says(&argo, "READY");
    let o = argo.emissary("main", r#"touch "$ROOT/ran""#).env("ARGO_WAIT_FOR_READY", "true").run();
    o.expect_code(64);
    assert!(!argo.p("ran").exists());
    assert!(argo.read(&argo.termination("main")).contains("initlessPod.enabled: false"));
}

#[test]
// A container added by a podSpecPatch has no ARGO_CONTAINER_NAME (the controller sets it before it
// applies the patch); Argo's emissary runs it all the same, and so does baton, in a folder of its own
// (issue 20.2).
fn a_container_without_a_name_runs_as_argo_runs_it() {
    let argo = Argo::new();
    let o = argo.argoexec("nameless", ["emissary", "--", "sh", "-c", "echo ran; exit 3"]).run();
    o.expect_code(3);
    assert_eq!(o.stdout, "ran\n");
    assert!(o.stderr.contains("ARGO_CONTAINER_NAME is not set"), "{}", o.stderr);
    let folders: Vec<String> = fs::read_dir(argo.dir.join("ctr"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(folders.len() == 1 && folders[0].starts_with("unnamed-"), "{folders:?}");
    assert_eq!(argo.exitcode(&folders[0]), "3");
}

#[test]
fn a_debug_pause_waits_for_its_file() {
    let argo = Argo::new();
    let mut main = argo.emissary("main", r#"touch "$ROOT/ran""#).env("ARGO_DEBUG_PAUSE_BEFORE", "true").spawn();
    wait_until("the pause to be announced", SOON, || main.stderr_now().contains("paused until").then_some(()));
    assert!(!argo.p("ran").exists() && !main.has_exited());
    fs::write(argo.ctr("main", "before"), "").unwrap();
    main.wait_within(SOON).expect_code(0);
    assert!(argo.p("ran").exists());
}

// ---------------------------------------------------------------------------------------------------
// kill, and the other subcommands

#[test]
fn kill_sends_a_signal_to_a_process() {
    let argo = Argo::new();
    let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
    let pid = sleeper.id().to_string();
    let o = argo.argoexec("kill", ["kill", "15", pid.as_str()]).run();
    o.expect_code(0);
    assert_eq!(o.stdout, format!("killing {pid} with SIGTERM\n"));
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(sleeper.wait().unwrap().signal(), Some(libc::SIGTERM));
    let o = argo.argoexec("kill-bad", ["kill", "15"]).run();
    o.expect_code(64);
    assert!(o.stderr.contains("argoexec kill takes SIGNAL PID"), "{}", o.stderr);
    argo.argoexec("kill-nope", ["kill", "NOPE", "1"]).run().expect_code(64);
}

#[test]
fn other_subcommands_go_to_the_upstream_argoexec_unchanged() {
    let argo = Argo::new();
    let upstream = argo.p("argoexec-upstream");
    fs::write(&upstream, "#!/bin/sh\necho \"$$ $0 $*\" > \"$SEEN\"\nexit 7\n").unwrap();
    fs::set_permissions(&upstream, fs::Permissions::from_mode(0o755)).unwrap();
    let mut proc = argo
        .argoexec("init", ["init", "--loglevel", "info", "--log-format", "text", "--gloglevel", "0"])
        .env("BATON_ARGOEXEC_UPSTREAM", &upstream)
        .env("SEEN", argo.p("seen"))
        .spawn();
    let pid = proc.pid();
    proc.wait().expect_code(7);
    let seen = argo.read(&argo.p("seen"));
    let (seen_pid, rest) = seen.split_once(' ').unwrap();
    assert_eq!(seen_pid, pid.to_string(), "replaced by the upstream (exec), not started beside it");
    assert!(rest.ends_with(" init --loglevel info --log-format text --gloglevel 0\n"), "{seen}");
}

// Argo v4.0+ runs an artifact plugin's containers as `/var/run/argo/argoexec artifact-plugin-init …`
// in the plugin's own image, which has no upstream argoexec: `init` copies it into the shared folder
// when the template uses a plugin, and the delegation finds it there (issue 20.1).
#[test]
fn artifact_plugin_containers_find_the_upstream_in_the_shared_folder() {
    let argo = Argo::new();
    let upstream = argo.p("image-upstream");
    fs::write(&upstream, "#!/bin/sh\necho \"upstream $*\"\n").unwrap();
    fs::set_permissions(&upstream, fs::Permissions::from_mode(0o755)).unwrap();
    let shared = argo.dir.join("argoexec-upstream");

    argo.template(r#"{"inputs":{"artifacts":[{"name":"a","path":"/tmp/a"}]}}"#);
    let o = argo.argoexec("init", ["init"]).env("BATON_ARGOEXEC_UPSTREAM", &upstream).run();
    o.expect_code(0);
    assert!(!shared.exists(), "a pod without plugins is spared the copy");

    argo.template(r#"{"inputs":{"artifacts":[{"name":"a","path":"/tmp/a","plugin":{"name":"my-plugin"}}]}}"#);
    let o = argo.argoexec("init", ["init", "--loglevel", "info"]).env("BATON_ARGOEXEC_UPSTREAM", &upstream).run();
    o.expect_code(0);
    assert_eq!(o.stdout, "upstream init --loglevel info\n");
    assert_eq!(fs::read(&shared).unwrap(), fs::read(&upstream).unwrap());
    assert_eq!(fs::metadata(&shared).unwrap().mode() & 0o777, 0o555);

    // The plugin's image: no upstream of its own (BATON_ARGOEXEC_UPSTREAM names nothing).
    let o = argo.argoexec("plugin-init", ["artifact-plugin-init", "--plugin-name", "my-plugin", "--", "serve"]).run();
    o.expect_code(0);
    assert_eq!(o.stdout, "upstream artifact-plugin-init --plugin-name my-plugin -- serve\n");
}

#[test]
fn a_missing_upstream_is_named() {
    let argo = Argo::new();
    let o = argo.argoexec("wait", ["wait", "--loglevel", "info"]).run();
    o.expect_code(64);
    assert!(o.stderr.contains("BATON_ARGOEXEC_UPSTREAM") && o.stderr.contains("argoexec wait"), "{}", o.stderr);
    assert!(argo.read(&argo.termination("wait")).contains("BATON_ARGOEXEC_UPSTREAM"));
}
