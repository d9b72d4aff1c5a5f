//! One test (or more) per class of defect: steps do not trust each other, nothing hangs on a typo or
//! a blocking file, no input exhausts a wrapper, nothing is lost. This file holds the first review's
//! attacks (issue 10); the second review's (issue 17) are in the modules below, one per concern.
//!
//! The attacks run as a non-root UID (`ATTACKER`) against wrappers running as root, with the
//! kernel's own mitigation for planted links switched off (`fs.protected_symlinks=0`, restored
//! when the last test of this file that needs it is done), so that baton's own defences are what
//! is tested.

#[path = "../common/mod.rs"]
mod common;

// Issue 17, the second review.
mod argo;
mod cli;
mod liveness;
mod signals;
mod tekton;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

use common::*;

const ATTACKER: u32 = 1000;

/// `fs.protected_symlinks=0` while at least one guard lives.
struct Unprotected;

static PROTECTION: Mutex<(usize, Option<String>)> = Mutex::new((0, None));
const PROTECTED_SYMLINKS: &str = "/proc/sys/fs/protected_symlinks";

impl Unprotected {
    fn new() -> Unprotected {
        let mut p = PROTECTION.lock().unwrap_or_else(|e| e.into_inner());
        if p.0 == 0 {
            p.1 = fs::read_to_string(PROTECTED_SYMLINKS).ok();
            let _ = fs::write(PROTECTED_SYMLINKS, "0");
        }
        p.0 += 1;
        Unprotected
    }
}

impl Drop for Unprotected {
    fn drop(&mut self) {
        let mut p = PROTECTION.lock().unwrap_or_else(|e| e.into_inner());
        p.0 -= 1;
        if p.0 == 0 {
            if let Some(old) = p.1.take() {
                let _ = fs::write(PROTECTED_SYMLINKS, old.trim());
            }
        }
    }
}

/// Runs a shell script as `ATTACKER` in `dir`; returns its exit code.
fn as_attacker(dir: &Path, script: &str) -> i32 {
    Command::new("setpriv")
        .args([format!("--reuid={ATTACKER}"), format!("--regid={ATTACKER}"), "--clear-groups".into()])
        .args(["sh", "-c", script])
        .current_dir(dir)
        .status()
        .unwrap()
        .code()
        .unwrap_or(-1)
}

/// A file only root may write, to see whether a wrapper was made to write it.
fn precious(pod: &Pod) -> std::path::PathBuf {
    let p = pod.path("precious");
    fs::write(&p, "keep").unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
    p
}

fn assert_untouched(p: &Path) {
    assert_eq!(fs::read_to_string(p).unwrap(), "keep", "{} was overwritten", p.display());
    assert_eq!(fs::metadata(p).unwrap().mode() & 0o7777, 0o600, "{} was chmod'ed", p.display());
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

// ---------------------------------------------------------------------------------------------
// 1. Planted symbolic links never make a wrapper write outside its folder.

#[test]
fn planted_links_in_a_step_folder_never_redirect_a_root_wrapper() {
    let _u = Unprotected::new();
    let pod = Pod::open_to_all();
    pod.baton("init").arg("init").arg("--dir").arg(pod.dir()).run().expect_code(0);
    let target = precious(&pod);
    let t = target.display();
    // The attacker claims the name first and fills the folder with links named like every file a
    // wrapper writes there, the old predictable temporary names (pid 1 in a container) included.
    let plant = format!(
        "mkdir -m 0777 steps/victim && cd steps/victim && for n in lock state.json exit.json control \
         .lock.1.tmp .state.json.1.tmp .exit.json.1.tmp; do ln -s {t} \"$n\"; done"
    );
    assert_eq!(as_attacker(&pod.dir(), &plant), 0);
    let out = pod.step("victim").command(["true"]).run();
    out.expect_code(125);
    assert!(out.stderr.contains(&format!("belongs to UID {ATTACKER}")), "{}", out.stderr);
    assert_untouched(&target);
    // The refusal is still an end: the termination message says why.
    let term = pod.termination("victim");
    assert_eq!(term["reason"], "CannotRun");
    assert!(error_of(&term).contains("claimed the name victim first"), "{term}");

    // A gate planted as a link: `baton release` leaves its target alone.
    assert_eq!(as_attacker(&pod.dir(), &format!("ln -s {t} gates/victim2")), 0);
    let out = pod.baton("release").args(["release", "--dir"]).arg(pod.dir()).arg("victim2").run();
    out.expect_code(0);
    assert_untouched(&target);
}

#[test]
fn a_claimed_step_folder_is_writable_by_its_wrapper_alone() {
    let _u = Unprotected::new();
    let pod = Pod::open_to_all();
    pod.baton("init").arg("init").arg("--dir").arg(pod.dir()).run().expect_code(0);
    let mut build = pod.step("build").arg("--gate").command(["true"]).spawn();
    pod.wait_phase("build", "waiting");
    let folder = pod.step_dir("build");
    assert_eq!(mode(&folder), 0o755);
    assert_eq!(fs::metadata(&folder).unwrap().uid(), 0);
    // Neither a fake end nor a planted link nor a rename of the folder gets through.
    for attack in [
        "echo '{}' > steps/build/exit.json",
        "ln -s /etc/passwd steps/build/.exit.json.x.tmp",
        "mv steps/build steps/build.old",
        "rm -f steps/build/lock",
    ] {
        assert_ne!(as_attacker(&pod.dir(), attack), 0, "{attack} succeeded");
    }
    assert!(!pod.exit_path("build").exists());
    assert_eq!(pod.state("build").unwrap()["state"], "waiting");
    pod.baton("release").args(["release", "--dir"]).arg(pod.dir()).arg("build").run().expect_code(0);
    build.wait().expect_code(0);
    assert_eq!(pod.exit_record("build")["reason"], "Completed");
}

// ---------------------------------------------------------------------------------------------
// 2. No top-level entry of the shared folder can be replaced by another UID.

#[test]
fn init_seals_the_shared_root_and_refuses_planted_links() {
    let _u = Unprotected::new();
    let pod = Pod::open_to_all();
    pod.baton("init").arg("init").arg("--dir").arg(pod.dir()).run().expect_code(0);
    assert_eq!(mode(&pod.dir()), 0o1777, "the root must get the sticky bit");
    assert_eq!(mode(&pod.dir().join("bin")), 0o755);
    assert_eq!(mode(&pod.dir().join("bin/baton")), 0o555);
    for attack in ["mv bin bin.old", "mv steps steps.old", "mv gates gates.old", "cp /bin/true bin/x", "rm -f bin/baton"] {
        assert_ne!(as_attacker(&pod.dir(), attack), 0, "{attack} succeeded");
    }

    // A bin/ or steps/ planted as a link before init (or before a step) is refused, not followed.
    let fresh = Pod::open_to_all();
    let elsewhere = fresh.path("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    fs::set_permissions(&elsewhere, fs::Permissions::from_mode(0o777)).unwrap();
    assert_eq!(as_attacker(&fresh.dir(), &format!("ln -s {} bin && ln -s {} steps", elsewhere.display(), elsewhere.display())), 0);
    let out = fresh.baton("init").arg("init").arg("--dir").arg(fresh.dir()).run();
    out.expect_code(125);
    assert!(out.stderr.contains("symbolic link"), "{}", out.stderr);
    assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0, "init wrote through the planted link");
    let out = fresh.step("s").command(["true"]).run();
    out.expect_code(125);
    assert!(out.stderr.contains("symbolic link"), "{}", out.stderr);
    assert_eq!(fresh.termination("s")["reason"], "CannotRun");
    assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0, "run wrote through the planted link");
}

// ---------------------------------------------------------------------------------------------
// 3. Nobody can fake another step's end, or stall its readers with a huge file.

#[test]
fn a_huge_record_in_a_squatted_folder_stalls_no_reader() {
    let pod = Pod::open_to_all();
    pod.baton("init").arg("init").arg("--dir").arg(pod.dir()).run().expect_code(0);
    // A 1 GiB sparse exit.json under a name nobody has claimed yet.
    assert_eq!(
        as_attacker(&pod.dir(), "mkdir -m 0755 steps/big && truncate -s 1G steps/big/exit.json"),
        0
    );
    // With 256 MiB of address space, reading the whole file would abort the process.
    let limited = ["prlimit", "--as=268435456"];
    let out = pod.step("after").through(limited).args(["--after", "big"]).command(["true"]).run();
    out.expect_code(125);
    let record = pod.exit_record("after");
    assert_eq!(record["reason"], "CannotRun");
    assert!(error_of(&record).contains("more than the 4096"), "{record}");
    let out = pod.baton("status").through(limited).args(["status", "--json", "--dir"]).arg(pod.dir()).run();
    out.expect_code(0);
    let views: Value = serde_json::from_str(&out.stdout).unwrap();
    let big = views.as_array().unwrap().iter().find(|v| v["step"] == "big").unwrap().clone();
    assert!(big["error"].as_str().unwrap().contains("more than the 4096"), "{big}");
}

// ---------------------------------------------------------------------------------------------
// 4. Every mode is set explicitly, whatever the umask.

#[test]
fn modes_are_exact_under_a_restrictive_umask() {
    let pod = Pod::open_to_all();
    let umask = ["sh", "-c", "umask 377; exec \"$0\" \"$@\""];
    pod.baton("init").through(umask).arg("init").arg("--dir").arg(pod.dir()).run().expect_code(0);
    assert_eq!(mode(&pod.dir().join("bin")), 0o755);
    assert_eq!(mode(&pod.dir().join("bin/baton")), 0o555);
    assert_eq!(mode(&pod.dir().join("steps")), 0o1777);
    assert_eq!(mode(&pod.dir().join("gates")), 0o1777);
    let mut s = pod.step("s").through(umask).arg("--gate").command(["true"]).spawn();
    pod.wait_phase("s", "waiting");
    let folder = pod.step_dir("s");
    assert_eq!(mode(&folder), 0o755);
    assert_eq!(mode(&folder.join("lock")), 0o600);
    assert_eq!(mode(&folder.join("alive")), 0o644);
    assert_eq!(mode(&folder.join("state.json")), 0o644);
    assert_eq!(mode(&folder.join("control")), 0o622);
    // Another UID sees the step as it is (it can open the beacon): waiting, not "starting".
    let exe = pod.install_for_all(Path::new(BATON.as_str()));
    let out = pod.baton("status").exe(&exe).as_uid(65532).args(["status", "--json", "--dir"]).arg(pod.dir()).run();
    out.expect_code(0);
    assert!(out.stdout.contains("\"state\": \"waiting\""), "{}", out.stdout);
    pod.baton("release").through(umask).args(["release", "--dir"]).arg(pod.dir()).arg("s").run().expect_code(0);
    assert_eq!(mode(&pod.dir().join("gates/s")), 0o644);
    s.wait().expect_code(0);
    assert_eq!(mode(&pod.exit_path("s")), 0o644);
}

// ---------------------------------------------------------------------------------------------
// 5. Of two wrappers with one name, exactly one runs.

/// Every wrapper is held up for 200 ms each time it links or renames (putting its lock in place),
/// so that their claims overlap; still exactly one may win.
#[test]
fn two_wrappers_with_one_name_never_both_run() {
    let strace = Command::new("strace").arg("-V").output();
    assert!(strace.is_ok_and(|o| o.status.success()), "this test needs strace (apt-get install strace)");
    let slow = [
        "strace",
        "-f",
        "-qq",
        "-o",
        "/dev/null",
        "-e",
        "trace=linkat,rename,renameat,renameat2",
        "-e",
        "inject=linkat,rename,renameat,renameat2:delay_enter=200000",
    ];
    for round in 0..3 {
        let pod = Pod::new();
        let (started, release) = (pod.path("started"), pod.path("release"));
        let script = format!(
            "echo $$ >> {}; while [ ! -e {} ]; do sleep 0.02; done",
            shq(&started),
            shq(&release)
        );
        let mut procs: Vec<Proc> = (0..4)
            .map(|i| {
                let b = pod.baton(&format!("same{i}")).through(slow).arg("run").args(["--name", "same", "--dir"]);
                b.arg(pod.dir()).args(["--", "sh", "-c", &script]).spawn()
            })
            .collect();
        // Every loser refuses; the winner waits for the release.
        wait_until("the losers to refuse", HANG, || {
            (procs.iter_mut().map(|p| p.has_exited()).filter(|&e| e).count() == 3).then_some(())
        });
        assert!(!pod.exit_path("same").exists(), "round {round}: a loser published into the winner's folder");
        fs::write(&release, "").unwrap();
        let codes: Vec<i32> = procs.iter_mut().map(|p| p.wait().code()).collect();
        assert_eq!(codes.iter().filter(|&&c| c == 0).count(), 1, "round {round}: {codes:?}");
        assert_eq!(codes.iter().filter(|&&c| c == 125).count(), 3, "round {round}: {codes:?}");
        assert_eq!(fs::read_to_string(&started).unwrap().lines().count(), 1, "round {round}: two commands ran");
    }
}

// ---------------------------------------------------------------------------------------------
// 6. A refusal is an end, whatever made the step refuse.

#[test]
fn every_refusal_of_a_named_step_publishes_its_end() {
    let cases: &[(&str, &[&str])] = &[
        ("negative duration", &["--name", "s", "--timeout=-1s", "--", "true"]),
        ("bad unit", &["--name", "s", "--timeout", "5x", "--", "true"]),
        ("bad --on-error", &["--name=s", "--on-error", "maybe", "--", "true"]),
        ("bad --message-limit", &["--name", "s", "--message-limit", "abc", "--", "true"]),
        ("unknown flag", &["--name", "s", "--bogus", "--", "true"]),
        ("no --", &["--name", "s", "echo", "hi"]),
        ("no command", &["--name", "s"]),
        ("BATON_STEP", &["--wait-timeout", "-2", "--", "true"]),
    ];
    for (what, args) in cases {
        let pod = Pod::new();
        let mut next = pod.step("next").args(["--after", "s"]).command(["true"]).spawn();
        pod.wait_phase("next", "waiting");
        let mut b = pod.baton("s").arg("run").arg("--dir").arg(pod.dir()).arg("--termination-path").arg(pod.term_path("s"));
        if *what == "BATON_STEP" {
            b = b.env("BATON_STEP", "s");
        }
        let out = b.args(*args).run();
        out.expect_code(125);
        let record = pod.exit_record("s");
        assert_eq!(record["reason"], "CannotRun", "{what}: {record}");
        assert!(!error_of(&record).is_empty(), "{what}: {record}");
        assert_eq!(pod.termination("s")["reason"], "CannotRun", "{what}");
        // The step after it skips at once instead of waiting for the pod's deletion.
        next.wait_within(SOON).expect_code(0);
        assert_eq!(pod.exit_record("next")["reason"], "Skipped", "{what}");
        if *what == "no --" {
            assert!(out.stderr.contains("put -- before the command"), "{}", out.stderr);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 7. A typo in --after is named after a short while, and in `baton status`.

#[test]
fn a_step_nobody_claims_is_named_with_the_steps_that_exist() {
    let pod = Pod::new();
    let mut build = pod.step("build").arg("--gate").command(["true"]).spawn();
    pod.wait_phase("build", "waiting");
    let mut test = pod.step("test").args(["--after", "biuld"]).command(["true"]).spawn();
    let state = wait_until("test to say what it waits for", SOON, || pod.state("test").filter(|s| s["notStarted"] == serde_json::json!(["biuld"])));
    assert_eq!(state["waitingFor"], serde_json::json!(["step biuld"]));
    let out = pod.baton("status").args(["status", "--dir"]).arg(pod.dir()).run();
    assert!(out.stdout.contains("no baton has claimed step biuld"), "{}", out.stdout);
    // The notice on the wrapper's stderr, once, after a short while; it keeps waiting.
    wait_until("the notice", wait::NOTICE + SOON, || test.stderr_now().contains("still waiting for step biuld").then_some(()));
    let notice = test.stderr_now();
    assert!(notice.contains("steps there: build, test"), "{notice}");
    assert!(!test.has_exited());
    test.signal(libc::SIGTERM);
    test.wait_within(SOON).expect_code(143);
    build.signal(libc::SIGTERM);
    build.wait_within(SOON);
}

mod wait {
    pub const NOTICE: std::time::Duration = std::time::Duration::from_secs(5);
}

// ---------------------------------------------------------------------------------------------
// 8. A transient error reading a predecessor is retried, never taken for its end.

fn strace_emfile(step_folder: &Path, when: &str) -> Vec<String> {
    let strace = Command::new("strace").arg("-V").output();
    assert!(strace.is_ok_and(|o| o.status.success()), "this test needs strace (apt-get install strace)");
    vec![
        "strace".into(),
        "-f".into(),
        "-qq".into(),
        "-o".into(),
        format!("{}.strace", step_folder.display()),
        "-P".into(),
        step_folder.display().to_string(),
        "-e".into(),
        "trace=openat".into(),
        "-e".into(),
        format!("inject=openat:error=EMFILE:when={when}"),
    ]
}

#[test]
fn emfile_while_reading_a_predecessor_is_retried_not_taken_for_its_end() {
    let pod = Pod::new();
    let mut a = pod.step("a").arg("--gate").command(["true"]).spawn();
    pod.wait_phase("a", "waiting");
    let folder = pod.step_dir("a");
    // The first 6 opens in a's folder (its lock, its record) fail with EMFILE.
    let mut b = pod.step("b").through(strace_emfile(&folder, "1..6")).args(["--after", "a"]).command(["true"]).spawn();
    let mut c = pod.step("c").args(["--after", "a:done"]).through(strace_emfile(&folder, "1..6")).command(["true"]).spawn();
    pod.wait_phase("b", "waiting");
    pod.wait_phase("c", "waiting");
    wait_until("the injected errors", SOON, || {
        let log = fs::read_to_string(format!("{}.strace", folder.display())).unwrap_or_default();
        (log.matches("(INJECTED)").count() >= 6).then_some(())
    });
    assert!(!b.has_exited() && !c.has_exited(), "a transient error ended a wait");
    pod.baton("release").args(["release", "--dir"]).arg(pod.dir()).arg("a").run().expect_code(0);
    a.wait().expect_code(0);
    b.wait_within(SOON).expect_code(0);
    c.wait_within(SOON).expect_code(0);
    assert_eq!(pod.exit_record("b")["reason"], "Completed");
    assert_eq!(pod.exit_record("c")["reason"], "Completed");
}

#[test]
fn an_error_that_does_not_go_away_ends_the_wait_with_its_sentence() {
    let pod = Pod::new();
    let mut a = pod.step("a").arg("--gate").command(["true"]).spawn();
    pod.wait_phase("a", "waiting");
    let folder = pod.step_dir("a");
    let out = pod.step("b").through(strace_emfile(&folder, "1+")).args(["--after", "a"]).command(["true"]).run();
    out.expect_code(125);
    let record = pod.exit_record("b");
    assert_eq!(record["reason"], "CannotRun");
    // EMFILE; glibc says "Too many open files", musl (the release builds) "No file descriptors available".
    assert!(error_of(&record).contains("(os error 24)"), "{record}");
    assert!(error_of(&record).contains("ulimit -n"), "{record}");
    a.signal(libc::SIGTERM);
    a.wait_within(SOON);
}

// ---------------------------------------------------------------------------------------------
// 9. Results are sized before they are read.

#[test]
fn huge_sparse_results_are_refused_before_they_are_read() {
    if skip_emulated("qemu-user reserves 128 MiB of address space for its translation buffer, all that the test's prlimit --as allows") {
        return;
    }
    let pod = Pod::new();
    let results = pod.path("results");
    fs::create_dir(&results).unwrap();
    for i in 0..300 {
        let f = fs::File::create(results.join(format!("r{i:03}"))).unwrap();
        f.set_len(1 << 20).unwrap();
    }
    // 128 MiB of address space: reading the 300 MiB would abort the wrapper.
    let out = pod
        .step("s")
        .through(["prlimit", "--as=134217728"])
        .arg("--results")
        .arg(&results)
        .command(["true"])
        .run();
    out.expect_code(125);
    let record = pod.exit_record("s");
    assert_eq!(record["reason"], "ResultsError");
    assert!(error_of(&record).contains("add up to more than 1048576 bytes"), "{record}");
}

// ---------------------------------------------------------------------------------------------
// 10. A flood on the control FIFO neither delays the end nor floods the log.

#[test]
fn a_flood_on_the_control_fifo_is_bounded() {
    let pod = Pod::open_to_all();
    let go = pod.path("go");
    let mut s = pod.step("s").sh(&format!("while [ ! -e {} ]; do sleep 0.02; done", shq(&go))).spawn();
    pod.wait_phase("s", "running");
    let control = pod.step_dir("s").join("control");
    let mut flood = Command::new("setpriv")
        .args([format!("--reuid={ATTACKER}"), format!("--regid={ATTACKER}"), "--clear-groups".into()])
        .args(["sh", "-c", &format!("exec cat /dev/zero > {}", shq(&control))])
        .spawn()
        .unwrap();
    // Let it write a good deal while the command runs.
    wait_until("the flood to be read", SOON, || s.stderr_now().contains("ignoring an unknown control request").then_some(()));
    fs::write(&go, "").unwrap();
    let out = s.wait_within(SOON);
    let _ = flood.kill();
    let _ = flood.wait();
    out.expect_code(0);
    assert!(out.stderr.len() < 4096, "{} bytes of complaints on stderr", out.stderr.len());
    assert_eq!(pod.exit_record("s")["reason"], "Completed");
}

// ---------------------------------------------------------------------------------------------
// 11. --stop-after holds one watcher, however many SIGTERMs come.

fn count(dir: String) -> usize {
    fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

fn inotify_instances(pid: i32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter(|e| fs::read_link(e.as_ref().unwrap().path()).is_ok_and(|l| l.to_string_lossy().contains("inotify")))
        .count()
}

fn pending_signals(pid: i32) -> bool {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status.lines().any(|l| (l.starts_with("ShdPnd:") || l.starts_with("SigPnd:")) && !l.ends_with("0000000000000000"))
}

#[test]
fn stop_after_holds_one_watcher_however_many_sigterms() {
    let pod = Pod::new();
    pod.step("main").command(["true"]).run().expect_code(0);
    let ready = pod.path("ready");
    let proxy = pod
        .step("proxy")
        .args(["--stop-after", "main", "--grace", "30s"])
        .sh(&format!("trap '' TERM; touch {}; while :; do sleep 0.05; done", shq(&ready)))
        .spawn();
    pod.wait_file(&ready);
    let pid = proxy.baton_pid();
    let before = (count(format!("/proc/{pid}/fd")), count(format!("/proc/{pid}/task")));
    for _ in 0..60 {
        proxy.signal(libc::SIGTERM);
        wait_until("the SIGTERM to be taken", SOON, || (!pending_signals(pid)).then_some(()));
    }
    let after = (count(format!("/proc/{pid}/fd")), count(format!("/proc/{pid}/task")));
    assert!(after.0 <= before.0 + 3, "descriptors grew from {} to {}", before.0, after.0);
    assert!(after.1 <= before.1 + 1, "threads grew from {} to {}", before.1, after.1);
    assert!(inotify_instances(pid) <= 1, "{} inotify instances", inotify_instances(pid));
    // The command ignores SIGTERM: end its group, then the wrapper.
    kill(-pod.child_pid("proxy"), libc::SIGKILL);
    proxy.signal(libc::SIGKILL);
}

// ---------------------------------------------------------------------------------------------
// 12. An open that would block does not hold the wrapper.

#[test]
fn fifos_without_readers_are_errors_not_hangs() {
    let pod = Pod::new();
    let fifo = pod.path("fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let out = pod.step("tee").arg("--stdout").arg(&fifo).command(["true"]).spawn().wait_within(SOON);
    out.expect_code(125);
    assert!(out.stderr.contains("FIFO that nobody reads"), "{}", out.stderr);
    assert_eq!(pod.exit_record("tee")["reason"], "CannotRun");

    let out = pod.baton("term").args(["run", "--name", "term", "--dir"]).arg(pod.dir()).arg("--termination-path").arg(&fifo).args(["--", "true"]).spawn().wait_within(SOON);
    out.expect_code(125);
    assert_eq!(pod.exit_record("term")["reason"], "ResultsError");
}

// ---------------------------------------------------------------------------------------------
// 13, 14. A termination message that cannot be written fails the step; /dev/null is fine.

#[test]
fn an_unwritable_termination_path_fails_the_step_and_dev_null_does_not() {
    let pod = Pod::new();
    let out = pod.baton("full").args(["run", "--name", "full", "--dir"]).arg(pod.dir()).args(["--termination-path", "/dev/full", "--", "true"]).run();
    out.expect_code(125);
    let record = pod.exit_record("full");
    assert_eq!(record["reason"], "ResultsError");
    assert!(error_of(&record).contains("/dev/full"), "{record}");
    assert_eq!(record["exitCode"], 0, "exitCode stays the command's own");

    let out = pod.baton("null").args(["run", "--name", "null", "--dir"]).arg(pod.dir()).args(["--termination-path", "/dev/null", "--", "true"]).run();
    out.expect_code(0);
    assert_eq!(out.stderr, "", "nothing to complain about");
    assert_eq!(pod.exit_record("null")["reason"], "Completed");
}

#[test]
fn a_record_that_cannot_be_published_fails_the_step_and_blames_no_oom() {
    let pod = Pod::new();
    let strace = Command::new("strace").arg("-V").output();
    assert!(strace.is_ok_and(|o| o.status.success()), "this test needs strace");
    let mut next = pod.step("next").args(["--after", "s"]).command(["true"]).spawn();
    pod.wait_phase("next", "waiting");
    // The shared folder is full when the record is written: every rename in s's folder fails.
    fs::create_dir_all(pod.step_dir("s")).unwrap();
    fs::set_permissions(pod.step_dir("s"), fs::Permissions::from_mode(0o755)).unwrap();
    let out = pod
        .step("s")
        .through([
            "strace".to_string(),
            "-f".into(),
            "-qq".into(),
            "-o".into(),
            "/dev/null".into(),
            "-P".into(),
            pod.step_dir("s").display().to_string(),
            "-e".into(),
            "trace=renameat,rename,renameat2".into(),
            "-e".into(),
            "inject=renameat,rename,renameat2:error=ENOSPC".into(),
        ])
        .command(["true"])
        .run();
    out.expect_code(125);
    // The termination message does not say Completed for a container that exits 125.
    let term = pod.termination("s");
    assert_eq!(term["reason"], "ResultsError", "{term}");
    assert!(error_of(&term).contains("No space left on device"), "{term}");
    let out = next.wait_within(SOON);
    out.expect_code(125);
    let record = pod.exit_record("next");
    assert_eq!(record["reason"], "PredecessorLost");
    assert!(error_of(&record).contains("could not be written"), "{record}");
}

// ---------------------------------------------------------------------------------------------
// 15. Limits are named right; an empty BATON_STEP is an error everywhere.

#[test]
fn out_of_descriptors_is_not_called_out_of_inotify_instances() {
    let pod = Pod::new();
    let file = pod.path("go");
    // 0, 1, 2 and the signalfd: no descriptor is left for an inotify instance.
    let mut w = pod.baton("w").through(["prlimit", "--nofile=4:4"]).args(["wait", "--dir"]).arg(pod.dir()).arg(format!("file:{}", file.display())).spawn();
    wait_until("the notice", SOON, || w.stderr_now().contains("cannot watch").then_some(()));
    fs::write(&file, "").unwrap();
    let out = w.wait_within(SOON);
    out.expect_code(0);
    assert!(out.stderr.contains("no file descriptors left"), "{}", out.stderr);
    assert!(!out.stderr.contains("inotify instances"), "{}", out.stderr);
}

#[test]
fn an_empty_baton_step_is_an_error_for_run_and_kill_alike() {
    let pod = Pod::new();
    let run = pod.baton("run").env("BATON_STEP", "").args(["run", "--dir"]).arg(pod.dir()).args(["--", "true"]).run();
    run.expect_code(125);
    let kill = pod.baton("kill").env("BATON_STEP", "").args(["kill", "--dir"]).arg(pod.dir()).run();
    kill.expect_code(125);
    for out in [&run, &kill] {
        assert!(out.stderr.contains("BATON_STEP is set but empty"), "{}", out.stderr);
    }
}

// ---------------------------------------------------------------------------------------------
// 16. What the command leaves in its process group is ended before the step ends.

fn alive(pid: i32) -> bool {
    proc_stat(pid).is_some_and(|(state, _, _)| state != 'Z')
}

#[test]
fn leftovers_in_the_commands_group_are_ended_before_the_step_ends() {
    let pod = Pod::new();
    let (left, daemon) = (pod.path("left"), pod.path("daemon"));
    // One leftover ignores SIGTERM (it gets SIGKILL after --grace); a daemon left the group.
    // (The script makes sure the daemon has left the group before it exits.)
    let script = format!(
        "(trap '' TERM; exec sleep 300) & echo $! > {}; setsid sleep 300 & d=$!; echo $d > {}; \
         while [ \"$(cut -d' ' -f5 /proc/$d/stat)\" = $$ ]; do sleep 0.01; done; exit 0",
        shq(&left),
        shq(&daemon)
    );
    let out = pod.step("s").args(["--grace", "500ms"]).sh(&script).spawn().wait_within(SOON);
    out.expect_code(0);
    let left: i32 = fs::read_to_string(&left).unwrap().trim().parse().unwrap();
    let daemon: i32 = fs::read_to_string(&daemon).unwrap().trim().parse().unwrap();
    assert!(!alive(left), "the leftover of the command's group still runs");
    assert!(alive(daemon), "a daemon that left the group must not be touched");
    kill(daemon, libc::SIGKILL);
    assert_eq!(pod.exit_record("s")["reason"], "Completed");

    // --keep-group leaves them.
    let keep = pod.path("keep");
    let out = pod.step("k").arg("--keep-group").sh(&format!("sleep 300 & echo $! > {}; exit 0", shq(&keep))).run();
    out.expect_code(0);
    let keep: i32 = fs::read_to_string(&keep).unwrap().trim().parse().unwrap();
    assert!(alive(keep), "--keep-group must leave the group alone");
    kill(keep, libc::SIGKILL);
}

// ---------------------------------------------------------------------------------------------
// 17. Job control: SIGTSTP stops the command, then baton; SIGCONT resumes both.

#[test]
fn job_control_stops_the_command_then_baton() {
    let pod = Pod::new();
    let mut s = pod.step("s").command(["sleep", "300"]).spawn();
    let child = pod.child_pid("s");
    let baton = s.baton_pid();
    let state = |pid| proc_stat(pid).map(|(st, _, _)| st);
    s.signal(libc::SIGTSTP);
    wait_until("the command and baton to stop", SOON, || (state(child) == Some('T') && state(baton) == Some('T')).then_some(()));
    s.signal(libc::SIGCONT);
    wait_until("both to run again", SOON, || (state(child) != Some('T') && state(baton) != Some('T')).then_some(()));
    s.signal(libc::SIGTERM);
    s.wait_within(SOON).expect_code(143);
}

// ---------------------------------------------------------------------------------------------
// 18. The first hour: suggestions for a mistyped flag.

#[test]
fn a_mistyped_flag_gets_a_suggestion() {
    let pod = Pod::new();
    let out = pod.baton("typo").args(["run", "--tmeout", "5s", "--", "true"]).run();
    out.expect_code(125);
    assert!(out.stderr.contains("--timeout"), "{}", out.stderr);
}
