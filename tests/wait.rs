//! Waiting: `--after` (success, `:done`, failure and the Skipped cascade), `--wait-file`,
//! `--wait-nonempty` (also on a downward-API volume), `--wait-timeout`, markers written before the
//! waiter started, lost predecessors, `baton wait`, and the inotify / polling paths.

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

fn touch_cmd(path: &Path) -> [String; 2] {
    ["touch".to_string(), path.to_str().unwrap().to_string()]
}

#[test]
fn after_runs_the_step_once_its_predecessor_succeeded() {
    let pod = Pod::new();
    let saw = pod.path("saw");
    // b copies a's termination message: it must already be complete when b is released.
    let mut b = pod
        .step("b")
        .args(["--after", "a"])
        .sh(&format!("cat {} > {}", shq(pod.term_path("a")), shq(&saw)))
        .spawn();
    pod.wait_waiting_for("b", &missing(&["a"]));
    pod.step("a").sh("echo from-a").run().expect_code(0);
    b.wait_within(SOON).expect_code(0);
    let (a, b) = (pod.exit_record("a"), pod.exit_record("b"));
    assert_eq!(b["reason"], "Completed");
    assert!(b["startedAt"].as_str() >= a["finishedAt"].as_str(), "b started before a ended: {a} {b}");
    assert_eq!(fs::read_to_string(&saw).unwrap(), fs::read_to_string(pod.term_path("a")).unwrap());
    check_record(&fs::read_to_string(&saw).unwrap());
}

#[test]
fn after_done_accepts_any_end_of_the_predecessor() {
    let pod = Pod::new();
    let ran = pod.path("ran");
    let mut b = pod.step("b").args(["--after", "a:done"]).command(touch_cmd(&ran)).spawn();
    pod.wait_waiting_for("b", &missing(&["a"]));
    pod.step("a").sh("exit 5").run().expect_code(5);
    b.wait_within(SOON).expect_code(0);
    assert!(ran.exists());
    assert_eq!(pod.exit_record("b")["reason"], "Completed");
}

#[test]
fn a_failed_predecessor_skips_its_successors_in_cascade() {
    let pod = Pod::new();
    let ran = |n: &str| pod.path(&format!("ran-{n}"));
    // Started together, successors first, like the containers of a pod.
    let mut c = pod.step("c").args(["--after", "b"]).command(touch_cmd(&ran("c"))).spawn();
    let mut b = pod.step("b").args(["--after", "a"]).command(touch_cmd(&ran("b"))).spawn();
    let mut d = pod.step("d").args(["--after", "c:done"]).command(touch_cmd(&ran("d"))).spawn();
    let mut e = pod.step("e").args(["--after", "a:done"]).command(touch_cmd(&ran("e"))).spawn();
    pod.wait_waiting_for("b", &missing(&["a"]));
    pod.step("a").sh("exit 5").run().expect_code(5);
    b.wait_within(SOON).expect_code(0);
    c.wait_within(SOON).expect_code(0);
    d.wait_within(SOON).expect_code(0);
    e.wait_within(SOON).expect_code(0);

    for (name, cause) in [("b", "a"), ("c", "b")] {
        let record = pod.exit_record(name);
        assert_eq!(record["reason"], "Skipped", "{record}");
        assert_eq!(record["exitCode"], Value::Null, "{record}");
        assert_eq!(record["startedAt"], Value::Null, "{record}");
        let error = error_of(&record);
        assert!(error.contains(&format!("step {cause}")), "{name}'s error must name step {cause}: {error}");
        assert!(!ran(name).exists(), "skipped step {name} ran its command");
        assert_eq!(pod.termination(name)["reason"], "Skipped");
    }
    assert!(error_of(&pod.exit_record("b")).contains('5'), "b's error gives a's exit code");
    // `:done` successors run after a skipped or failed step.
    assert!(ran("d").exists() && ran("e").exists());
    assert_eq!(pod.exit_record("d")["reason"], "Completed");
}

#[test]
fn every_after_must_hold() {
    let pod = Pod::new();
    let ran = pod.path("ran");
    let mut c = pod.step("c").args(["--after", "a", "--after", "b"]).command(touch_cmd(&ran)).spawn();
    pod.wait_waiting_for("c", &missing(&["a", "b"]));
    pod.step("a").command(["true"]).run().expect_code(0);
    pod.wait_waiting_for("c", &missing(&["b"]));
    assert!(!ran.exists());
    pod.step("b").command(["true"]).run().expect_code(0);
    c.wait_within(SOON).expect_code(0);
    assert!(ran.exists());

    // One failure among them is enough to skip.
    pod.step("x").command(["true"]).run().expect_code(0);
    pod.step("y").sh("exit 1").run().expect_code(1);
    pod.step("z").args(["--after", "x", "--after", "y"]).command(["true"]).run().expect_code(0);
    let z = pod.exit_record("z");
    assert_eq!(z["reason"], "Skipped");
    assert!(error_of(&z).contains("step y"), "{z}");
}

#[test]
fn predecessors_that_could_not_run_or_timed_out_count_as_failures() {
    let pod = Pod::new();
    pod.step("gone").command(["baton-test-no-such-command"]).run().expect_code(127);
    pod.step("slow").args(["--timeout", "100ms"]).command(["sleep", "30"]).run().expect_code(124);
    for before in ["gone", "slow"] {
        let name = format!("after-{before}");
        pod.step(&name).args(["--after", before]).command(["true"]).run().expect_code(0);
        let record = pod.exit_record(&name);
        assert_eq!(record["reason"], "Skipped", "{record}");
        assert!(error_of(&record).contains(&format!("step {before}")), "{record}");
    }
}

#[test]
fn a_marker_written_before_the_waiter_started_is_seen() {
    let pod = Pod::new();
    pod.step("a").command(["true"]).run().expect_code(0);
    let out = pod.step("b").args(["--after", "a"]).command(["true"]).spawn().wait_within(SOON);
    out.expect_code(0);
    assert_eq!(pod.exit_record("b")["reason"], "Completed");

    // The race itself: predecessor and successor started at the same moment, many times over.
    // A marker written between the successor's first look and its watch would hang it.
    for round in 0..15 {
        let pod = Pod::new();
        let mut b = pod.step("b").args(["--after", "a"]).command(["true"]).spawn();
        let mut a = pod.step("a").command(["true"]).spawn();
        a.wait_within(SOON).expect_code(0);
        let out = b.wait_within(SOON);
        assert_eq!(out.code(), 0, "round {round}: {}", out.stderr);
    }
}

#[test]
fn wait_file_waits_until_the_file_exists() {
    let pod = Pod::new();
    let file = pod.path("go");
    let saw = pod.path("saw");
    let mut b = pod
        .step("b")
        .arg("--wait-file")
        .arg(&file)
        .sh(&format!("test -e {} && touch {}", shq(&file), shq(&saw)))
        .spawn();
    pod.wait_waiting_for("b", &missing(&[file.to_str().unwrap()]));
    fs::write(&file, "").unwrap();
    b.wait_within(SOON).expect_code(0);
    assert!(saw.exists(), "the command ran before the file existed");

    // A relative PATH is relative to the working directory (the pod's folder here).
    let mut c = pod.step("c").args(["--wait-file", "rel/go"]).command(["true"]).spawn();
    pod.wait_phase("c", "waiting");
    fs::create_dir(pod.path("rel")).unwrap();
    fs::write(pod.path("rel/go"), "").unwrap();
    c.wait_within(SOON).expect_code(0);
}

/// PATH is followed through symbolic links, also when the link leads into another folder and
/// through a second link, as with files projected into a volume.
#[test]
fn wait_file_follows_symbolic_links_into_other_folders() {
    let pod = Pod::new();
    for dir in ["a", "b", "c"] {
        fs::create_dir(pod.path(dir)).unwrap();
    }
    // a/one -> ../b/file (one hop); a/two -> ../b/link -> <abs>/c/file (two hops).
    symlink("../b/file", pod.path("a/one")).unwrap();
    symlink("../b/link", pod.path("a/two")).unwrap();
    symlink(pod.path("c/file"), pod.path("b/link")).unwrap();
    for (name, link, target) in [("one", "a/one", "b/file"), ("two", "a/two", "c/file")] {
        let mut w = pod.step(name).arg("--wait-file").arg(pod.path(link)).command(["true"]).spawn();
        pod.wait_phase(name, "waiting");
        fs::write(pod.path(target), "").unwrap();
        let deadline = Instant::now() + SOON;
        while !w.has_exited() {
            assert!(Instant::now() < deadline, "{link} -> {target} exists, yet step {name} still waits");
            std::thread::sleep(Duration::from_millis(5));
        }
        w.wait().expect_code(0);
    }
}

/// Runs baton under strace with every inotify_add_watch held up for a moment after it returns,
/// and says when the first of them has happened: whatever baton watches first (the missing folder,
/// which fails, or the nearest existing one above it), a folder made by someone else in that moment
/// falls in the window between looking and watching. Deterministic where the bare race is not.
fn under_slow_watches(pod: &Pod, step: Baton, folder: &Path) -> Proc {
    let trace = pod.path("trace");
    let strace = Command::new("strace").arg("-V").output();
    assert!(strace.is_ok_and(|o| o.status.success()), "this test needs strace (apt-get install strace)");
    let proc = step
        .through([
            "strace",
            "-f",
            "-o",
            trace.to_str().unwrap(),
            "-e",
            "trace=inotify_add_watch",
            "-e",
            "inject=inotify_add_watch:delay_exit=200000",
        ])
        .spawn();
    let parent = folder.parent().unwrap();
    let watched = [format!("\"{}\", ", folder.display()), format!("\"{}\", ", parent.display())];
    wait_until(&format!("a watch on {} or above", folder.display()), SOON, || {
        let text = fs::read_to_string(&trace).ok()?;
        text.lines().any(|l| l.contains("inotify_add_watch(") && watched.iter().any(|w| l.contains(w))).then_some(())
    });
    proc
}

/// The file will be in a folder that does not exist yet. The waiter watches the nearest existing
/// folder above; a folder made just after its own watch failed and before the one above was set
/// must still be noticed (watch, then look), or the step waits forever.
#[test]
fn wait_file_in_a_folder_made_while_the_watch_is_set_up_is_not_missed() {
    let pod = Pod::new();
    let folder = pod.path("later");
    let file = folder.join("go");
    let step = pod.step("w").arg("--wait-file").arg(&file).command(["true"]);
    let mut w = under_slow_watches(&pod, step, &folder);
    fs::create_dir(&folder).unwrap();
    pod.wait_phase("w", "waiting");
    fs::write(&file, "").unwrap();
    w.wait_within(SOON).expect_code(0);
}

/// The same for `--after`: the predecessor's wrapper makes `steps/NAME/` when it starts, and may
/// do so just while the successor sets up its watches.
#[test]
fn after_a_predecessor_whose_folder_appears_while_the_watch_is_set_up_is_not_missed() {
    let pod = Pod::new();
    let step = pod.step("b").args(["--after", "a"]).command(["true"]);
    let mut b = under_slow_watches(&pod, step, &pod.step_dir("a"));
    // What a's wrapper does first (then it is preempted for a moment).
    fs::create_dir(pod.step_dir("a")).unwrap();
    fs::set_permissions(pod.step_dir("a"), std::os::unix::fs::PermissionsExt::from_mode(0o1777)).unwrap();
    pod.wait_phase("b", "waiting");
    pod.step("a").command(["true"]).run().expect_code(0);
    b.wait_within(SOON).expect_code(0);
    assert_eq!(pod.exit_record("b")["reason"], "Completed");
}

#[test]
fn wait_nonempty_needs_content_not_just_the_file() {
    let pod = Pod::new();
    let (file, other) = (pod.path("data"), pod.path("other"));
    let ran = pod.path("ran");
    let mut b = pod
        .step("b")
        .arg("--wait-nonempty")
        .arg(&file)
        .arg("--wait-file")
        .arg(&other)
        .command(touch_cmd(&ran))
        .spawn();
    pod.wait_waiting_for("b", &missing(&[file.to_str().unwrap(), other.to_str().unwrap()]));
    // The file appears empty (kept open, as a slow writer would), then the other condition is met:
    // once the step says it only waits for the data, it has seen the empty file and kept waiting.
    let mut writer = fs::OpenOptions::new().create(true).append(true).open(&file).unwrap();
    fs::write(&other, "").unwrap();
    pod.wait_waiting_for("b", &missing(&[file.to_str().unwrap()]));
    assert!(!ran.exists(), "ran with an empty file");
    std::io::Write::write_all(&mut writer, b"ready\n").unwrap();
    b.wait_within(SOON).expect_code(0);
    assert!(ran.exists());
}

/// A downward-API volume as the kubelet's AtomicWriter builds it: the data in a timestamped
/// folder, `..data` a symbolic link to it, each visible name a link through `..data`; an update
/// writes a new timestamped folder and renames a new `..data` link over the old one.
struct DownwardVolume {
    root: std::path::PathBuf,
    generation: u32,
}

impl DownwardVolume {
    fn new(root: &Path, files: &[(&str, &str)]) -> DownwardVolume {
        fs::create_dir(root).unwrap();
        let mut v = DownwardVolume { root: root.to_path_buf(), generation: 0 };
        v.update(files);
        v
    }

    fn update(&mut self, files: &[(&str, &str)]) {
        self.generation += 1;
        let ts = format!("..2026_11_23_16_00_0{}.{}", self.generation, 100 + self.generation);
        let dir = self.root.join(&ts);
        fs::create_dir(&dir).unwrap();
        for (name, content) in files {
            fs::write(dir.join(name), content).unwrap();
        }
        let old = fs::read_link(self.root.join("..data")).ok();
        symlink(&ts, self.root.join("..data_tmp")).unwrap();
        fs::rename(self.root.join("..data_tmp"), self.root.join("..data")).unwrap();
        for (name, _) in files {
            let visible = self.root.join(name);
            if fs::symlink_metadata(&visible).is_err() {
                symlink(Path::new("..data").join(name), &visible).unwrap();
            }
        }
        if let Some(old) = old {
            fs::remove_dir_all(self.root.join(old)).unwrap();
        }
    }
}

#[test]
fn wait_nonempty_sees_a_downward_api_update_by_symlink_swap() {
    let pod = Pod::new();
    let volume = pod.path("downward");
    let mut dw = DownwardVolume::new(&volume, &[("ready", "")]);
    let ready = volume.join("ready");
    let cancel = volume.join("cancel");
    let ran = pod.path("ran");
    let mut b = pod
        .step("b")
        .arg("--wait-nonempty")
        .arg(&ready)
        .arg("--wait-file")
        .arg(&cancel)
        .command(touch_cmd(&ran))
        .spawn();
    pod.wait_waiting_for("b", &missing(&[ready.to_str().unwrap(), cancel.to_str().unwrap()]));
    // A file that appears with an update.
    dw.update(&[("ready", ""), ("cancel", "")]);
    pod.wait_waiting_for("b", &missing(&[ready.to_str().unwrap()]));
    // The annotation is set: new content arrives by the swap of `..data`.
    dw.update(&[("ready", "true"), ("cancel", "")]);
    b.wait_within(SOON).expect_code(0);
    assert!(ran.exists());
}

#[test]
fn wait_timeout_exits_125_naming_only_what_is_still_missing() {
    let pod = Pod::new();
    let (present, absent, empty) = (pod.path("present"), pod.path("absent"), pod.path("empty"));
    fs::write(&present, "x").unwrap();
    fs::write(&empty, "").unwrap();
    pod.step("done-before").command(["true"]).run().expect_code(0);
    let ran = pod.path("ran");
    let out = pod
        .step("w")
        .args(["--after", "ghost", "--after", "done-before", "--wait-timeout", "300ms"])
        .arg("--wait-file")
        .arg(&present)
        .arg("--wait-file")
        .arg(&absent)
        .arg("--wait-nonempty")
        .arg(&empty)
        .command(touch_cmd(&ran))
        .spawn()
        .wait_within(SOON);
    out.expect_code(125);
    assert!(!ran.exists(), "the command ran");
    let record = pod.exit_record("w");
    assert_eq!(record["reason"], "WaitTimedOut");
    assert_eq!(record["exitCode"], Value::Null);
    assert_eq!(record["startedAt"], Value::Null);
    let error = error_of(&record);
    for named in ["ghost", absent.to_str().unwrap(), empty.to_str().unwrap()] {
        assert!(error.contains(named), "error must name {named}: {error}");
    }
    for met in [present.to_str().unwrap(), "done-before"] {
        assert!(!error.contains(met), "error names {met}, which was there: {error}");
    }
    assert!(out.stderr.contains(absent.to_str().unwrap()), "stderr: {}", out.stderr);
}

#[test]
fn a_predecessor_killed_while_running_is_lost_and_noticed_quickly() {
    let pod = Pod::new();
    let mut a = pod.step("a").command(["sleep", "30"]).spawn();
    let a_child = pod.child_pid("a");
    let ran = pod.path("ran");
    let mut b = pod.step("b").args(["--after", "a"]).command(touch_cmd(&ran)).spawn();
    let mut c = pod.step("c").args(["--after", "a:done"]).command(touch_cmd(&ran)).spawn();
    pod.wait_waiting_for("b", &missing(&["a"]));
    pod.wait_waiting_for("c", &missing(&["a"]));
    // The container of a is OOM-killed: its baton dies with SIGKILL, without a record.
    let killed = Instant::now();
    a.signal(libc::SIGKILL);
    let out_b = b.wait_within(SOON);
    let out_c = c.wait_within(SOON);
    let noticed = killed.elapsed();
    kill(a_child, libc::SIGKILL);
    let _ = a.wait();
    out_b.expect_code(125);
    out_c.expect_code(125);
    assert!(noticed < Duration::from_secs(3), "a lost predecessor took {noticed:?} to notice");
    assert!(!ran.exists(), "a successor of a lost step ran");
    for name in ["b", "c"] {
        let record = pod.exit_record(name);
        assert_eq!(record["reason"], "PredecessorLost", "{record}");
        assert_eq!(record["exitCode"], Value::Null);
        assert!(error_of(&record).contains("step a"), "error names step a: {record}");
    }
    assert!(!pod.exit_path("a").exists());
}

#[test]
fn a_predecessor_killed_while_waiting_itself_is_lost() {
    let pod = Pod::new();
    let mut a = pod.step("a").arg("--wait-file").arg(pod.path("never")).command(["true"]).spawn();
    pod.wait_phase("a", "waiting");
    let mut b = pod.step("b").args(["--after", "a"]).command(["true"]).spawn();
    pod.wait_waiting_for("b", &missing(&["a"]));
    a.signal(libc::SIGKILL);
    let _ = a.wait();
    let out = b.wait_within(SOON);
    out.expect_code(125);
    assert_eq!(pod.exit_record("b")["reason"], "PredecessorLost");
}

#[test]
fn a_predecessor_that_starts_after_the_waiter_and_then_dies_is_lost() {
    let pod = Pod::new();
    let mut b = pod.step("b").args(["--after", "a"]).command(["true"]).spawn();
    pod.wait_waiting_for("b", &missing(&["a"]));
    let mut a = pod.step("a").command(["sleep", "30"]).spawn();
    let a_child = pod.child_pid("a");
    a.signal(libc::SIGKILL);
    let _ = a.wait();
    kill(a_child, libc::SIGKILL);
    b.wait_within(SOON).expect_code(125);
    let record = pod.exit_record("b");
    assert_eq!(record["reason"], "PredecessorLost");
    assert!(error_of(&record).contains("step a"), "{record}");
}

#[test]
fn a_predecessor_that_died_before_the_waiter_started_is_lost() {
    let pod = Pod::new();
    let mut a = pod.step("a").command(["sleep", "30"]).spawn();
    let a_child = pod.child_pid("a");
    a.signal(libc::SIGKILL);
    let _ = a.wait();
    kill(a_child, libc::SIGKILL);
    let out = pod.step("b").args(["--after", "a"]).command(["true"]).spawn().wait_within(SOON);
    out.expect_code(125);
    let record = pod.exit_record("b");
    assert_eq!(record["reason"], "PredecessorLost");
    assert!(error_of(&record).contains("step a"));
}

#[test]
fn a_predecessor_that_has_not_started_yet_is_not_lost() {
    let pod = Pod::new();
    let ran = pod.path("ran");
    let mut b = pod.step("b").args(["--after", "late"]).command(touch_cmd(&ran)).spawn();
    pod.wait_waiting_for("b", &missing(&["late"]));
    let late = pod.step("late").command(["true"]).run();
    late.expect_code(0);
    b.wait_within(SOON).expect_code(0);
    assert!(ran.exists());
    assert_eq!(pod.exit_record("b")["reason"], "Completed");
}

#[test]
fn baton_wait_exits_0_when_every_spec_holds() {
    let pod = Pod::new();
    let (file, data) = (pod.path("file"), pod.path("data"));
    let mut w = pod
        .baton("wait")
        .env("BATON_DIR", pod.dir())
        .args(["wait", "a", "b:done"])
        .arg(format!("file:{}", file.display()))
        .arg(format!("nonempty:{}", data.display()))
        .spawn();
    pod.step("a").command(["true"]).run().expect_code(0);
    pod.step("b").sh("exit 2").run().expect_code(2);
    fs::write(&file, "").unwrap();
    fs::write(&data, "x").unwrap();
    w.wait_within(SOON).expect_code(0);
}

#[test]
fn baton_wait_exits_1_when_a_required_step_did_not_succeed() {
    let pod = Pod::new();
    pod.step("bad").sh("exit 2").run().expect_code(2);
    let out = pod.baton("wait").arg("wait").arg("--dir").arg(pod.dir()).arg("bad").spawn().wait_within(SOON);
    out.expect_code(1);
    assert!(out.stderr.contains("bad"), "stderr names the step: {}", out.stderr);
}

#[test]
fn baton_wait_exits_125_on_timeout_naming_what_is_missing() {
    let pod = Pod::new();
    let file = pod.path("never");
    let out = pod
        .baton("wait")
        .args(["wait", "--timeout", "300ms", "--dir"])
        .arg(pod.dir())
        .arg("ghost")
        .arg(format!("file:{}", file.display()))
        .spawn()
        .wait_within(SOON);
    out.expect_code(125);
    assert!(out.stderr.contains("ghost") && out.stderr.contains(file.to_str().unwrap()), "{}", out.stderr);
}

#[test]
fn baton_wait_exits_125_on_a_bad_spec_or_a_lost_step() {
    let pod = Pod::new();
    for spec in ["file:", "nonempty:", "Bad_Step", "x:later"] {
        let out = pod.baton("wait").args(["wait", "--dir"]).arg(pod.dir()).arg(spec).run();
        assert_eq!(out.code(), 125, "{spec}: {}", out.stderr);
        assert!(!out.stderr.is_empty());
    }
    let mut a = pod.step("a").command(["sleep", "30"]).spawn();
    let a_child = pod.child_pid("a");
    let mut w = pod.baton("wait").args(["wait", "--dir"]).arg(pod.dir()).arg("a").spawn();
    // `baton wait` has no state file to synchronise on: whether it looks before or after a dies,
    // it must end with a lost step, not wait forever.
    a.signal(libc::SIGKILL);
    let _ = a.wait();
    kill(a_child, libc::SIGKILL);
    let out = w.wait_within(SOON);
    out.expect_code(125);
    assert!(out.stderr.contains("a was lost") || out.stderr.contains("step a"), "{}", out.stderr);
}

/// With inotify, a waiting baton sleeps until something changes: no wake-ups at all while nothing
/// happens. The same wait with `BATON_INOTIFY=off` re-checks on a timer, which the same measure
/// sees, so the measure itself is shown to work.
#[test]
fn waiting_is_event_driven_while_inotify_works() {
    let pod = Pod::new();
    let file = pod.path("go");
    let mut watching = pod.step("watching").arg("--wait-file").arg(&file).args(["--after", "ghost"]).command(["true"]).spawn();
    let mut polling = pod
        .step("polling")
        .env("BATON_INOTIFY", "off")
        .arg("--wait-file")
        .arg(&file)
        .args(["--after", "ghost"])
        .command(["true"])
        .spawn();
    pod.wait_phase("watching", "waiting");
    pod.wait_phase("polling", "waiting");
    let (w0, p0) = (wakeups(watching.pid()), wakeups(polling.pid()));
    // An observation window, not a synchronisation: how often did each wake up meanwhile?
    std::thread::sleep(Duration::from_millis(1300));
    let (w1, p1) = (wakeups(watching.pid()), wakeups(polling.pid()));
    assert!(w1 - w0 <= 1, "the inotify waiter woke {} times while nothing changed", w1 - w0);
    assert!(p1 - p0 >= 2, "the polling waiter woke only {} times in 1.3 s", p1 - p0);
    for p in [&mut watching, &mut polling] {
        p.signal(libc::SIGTERM);
        p.wait_within(SOON).expect_code(128 + libc::SIGTERM);
    }
}

#[test]
fn inotify_off_polls_and_says_so_once() {
    let pod = Pod::new();
    let (one, two) = (pod.path("one"), pod.path("two"));
    let mut w = pod
        .step("w")
        .env("BATON_INOTIFY", "off")
        .arg("--wait-file")
        .arg(&one)
        .arg("--wait-file")
        .arg(&two)
        .command(["true"])
        .spawn();
    pod.wait_waiting_for("w", &missing(&[one.to_str().unwrap(), two.to_str().unwrap()]));
    fs::write(&one, "").unwrap();
    // Seen by a re-check on the timer (nothing else wakes it).
    pod.wait_waiting_for("w", &missing(&[two.to_str().unwrap()]));
    fs::write(&two, "").unwrap();
    let out = w.wait_within(SOON);
    out.expect_code(0);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one notice, once: {lines:?}");
    assert!(lines[0].to_lowercase().contains("inotify"), "the notice says why: {lines:?}");
}

/// The real fallback: the UID has used up its inotify instances (128 on most nodes).
#[test]
fn without_inotify_instances_it_falls_back_to_polling_and_says_so_once() {
    const UID: u32 = 64123;
    let pod = Pod::open_to_all();
    let hog_exe = pod.install_for_all(helper());
    let exe = pod.install_for_all(Path::new(BATON.as_str()));
    let ready = pod.path("hog-ready");
    let hog_dir = pod.path("hog");
    fs::create_dir(&hog_dir).unwrap();
    std::os::unix::fs::chown(&hog_dir, Some(UID), Some(UID)).unwrap();
    let ready = hog_dir.join(ready.file_name().unwrap());
    let hog = Command::new("setpriv")
        .args([format!("--reuid={UID}"), format!("--regid={UID}"), "--clear-groups".into()])
        .arg(&hog_exe)
        .arg("inotify-hog")
        .arg(&ready)
        .spawn()
        .unwrap();
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _hog = Reap(hog);
    let text = wait_until("the inotify hog", SOON, || fs::read_to_string(&ready).ok());
    let errno: i32 = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert_eq!(errno, libc::EMFILE, "the hog should have hit the per-user limit: {text}");

    let file = pod.path("go");
    fs::write(pod.term_path("w"), "").unwrap();
    fs::set_permissions(pod.term_path("w"), std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
    let mut w = pod.step("w").exe(&exe).as_uid(UID).arg("--wait-file").arg(&file).command(["true"]).spawn();
    pod.wait_phase("w", "waiting");
    fs::write(&file, "").unwrap();
    let out = w.wait_within(SOON);
    out.expect_code(0);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one notice, once: {lines:?}");
    assert!(lines[0].contains("max_user_instances"), "the notice names the limit: {lines:?}");
}

#[test]
fn baton_wait_stopped_by_a_signal_exits_128_plus_n() {
    if skip_emulated("/proc/PID/status shows qemu's own signal mask, not baton's: the test cannot tell when baton has blocked its signals") {
        return;
    }
    let pod = Pod::new();
    let mut w = pod.baton("wait").args(["wait", "--dir"]).arg(pod.dir()).arg("ghost").spawn();
    // No state file for `baton wait`: wait until it has its signals blocked (SigBlk set), so the
    // signal is taken by baton and not by the default action.
    wait_until("baton wait to block its signals", SOON, || {
        let status = fs::read_to_string(format!("/proc/{}/status", w.pid())).ok()?;
        status.lines().any(|l| l.starts_with("SigBlk:") && !l.ends_with("0000000000000000")).then_some(())
    });
    w.signal(libc::SIGTERM);
    w.wait_within(SOON).expect_code(128 + libc::SIGTERM);
}

/// inotify instances are a per-UID resource of the whole node: a wait on a step that runs holds
/// none (its lock wakes the waiter), a wait on a step not started yet holds one, until it starts.
#[test]
fn a_wait_holds_an_inotify_instance_only_while_something_needs_watching() {
    fn instances(pid: i32) -> usize {
        fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| d.filter(|e| fs::read_link(e.as_ref().unwrap().path()).is_ok_and(|l| l.to_string_lossy().contains("inotify"))).count())
            .unwrap_or(0)
    }
    let pod = Pod::new();
    let mut a = pod.step("a").arg("--gate").command(["true"]).spawn();
    pod.wait_phase("a", "waiting");
    let mut b = pod.step("b").args(["--after", "a"]).command(["true"]).spawn();
    pod.wait_phase("b", "waiting");
    assert_eq!(instances(b.baton_pid()), 0, "a wait on a running step holds no inotify instance");

    let mut c = pod.step("c").args(["--after", "d"]).command(["true"]).spawn();
    pod.wait_phase("c", "waiting");
    let c_pid = c.baton_pid();
    assert_eq!(instances(c_pid), 1, "a wait on a step not started yet watches for it");
    let mut d = pod.step("d").arg("--gate").command(["true"]).spawn();
    wait_until("c to let go of its instance once d runs", SOON, || (instances(c_pid) == 0).then_some(()));

    for (gate, _) in [("a", 0), ("d", 0)] {
        pod.baton("release").args(["release", "--dir"]).arg(pod.dir()).arg(gate).run().expect_code(0);
    }
    for p in [&mut a, &mut b, &mut c, &mut d] {
        p.wait_within(SOON).expect_code(0);
    }
}
