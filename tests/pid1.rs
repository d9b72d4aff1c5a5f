//! baton as a container's PID 1 (a new PID namespace via `unshare --pid --fork --mount-proc`), and
//! as a sub-reaper when it is not: orphans are reaped, no zombie is left, its own command's exit
//! status is never lost, and signals from outside (the kubelet's SIGTERM) are handled.

mod common;

use common::*;

/// The command orphans a grandchild, checks that it was re-parented to baton, kills it and checks
/// that it is reaped (a zombie keeps its /proc entry). Then it makes a burst of orphans that exit
/// at once and checks that none of them is left a zombie of baton's. Exit codes 90+ say which check
/// failed; 7 means all passed.
fn orphan_script(dir: &std::path::Path) -> String {
    let gc = dir.join("gc.pid");
    format!(
        r#"
        wait_for() {{ i=0; while ! eval "$1"; do i=$((i+1)); [ $i -gt 800 ] && {{ echo "timed out: $1" >&2; exit $2; }}; sleep 0.01; done; }}
        (sh -c 'echo $$ > {gc}.tmp && mv {gc}.tmp {gc}; exec sleep 30' &)
        wait_for '[ -s {gc} ]' 90
        g=$(cat {gc})
        # Re-parented to baton, which is this shell's parent.
        wait_for '[ "$(cut -d" " -f4 /proc/$g/stat)" = "$PPID" ]' 91
        kill $g
        wait_for '[ ! -e /proc/$g ]' 92
        for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do (true &); done
        zombies() {{ for s in /proc/[0-9]*/stat; do read -r l < $s 2>/dev/null || continue; set -- $l; [ "$3" = Z ] && [ "$4" = "$PPID" ] && echo $1; done; }}
        wait_for '[ -z "$(zombies)" ]' 93
        exit 7
        "#,
        gc = shq(&gc)
    )
}

#[test]
fn as_pid1_orphans_are_reaped_and_no_zombie_is_left() {
    let pod = Pod::new();
    let script = format!("[ $PPID = 1 ] || exit 89\n{}", orphan_script(pod.root()));
    let out = pod.step("init").as_pid1().sh(&script).run();
    out.expect_code(7);
    let record = pod.exit_record("init");
    assert_eq!(record["exitCode"], 7);
    assert_eq!(record["reason"], "Failed");
}

#[test]
fn as_sub_reaper_orphans_are_reaped_too() {
    if skip_emulated("qemu-user 7.2 refuses prctl(PR_SET_CHILD_SUBREAPER) with EINVAL (QEMU_STRACE=1 shows it); as PID 1, tested above, baton reaps under emulation too") {
        return;
    }
    let pod = Pod::new();
    let out = pod.step("sub").sh(&orphan_script(pod.root())).run();
    out.expect_code(7);
    assert_eq!(pod.exit_record("sub")["exitCode"], 7);
}

/// The classic race: a reaper calling waitpid(-1) while the command exits among a burst of
/// orphans. The command's own status must reach the record every time.
#[test]
fn the_commands_exit_status_is_never_lost_among_orphans() {
    let pod = Pod::new();
    let burst = "for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25; do (true &); done";
    let mut procs = Vec::new();
    for round in 0..8 {
        let (name, script, expected) = if round % 2 == 0 {
            (format!("exit-{round}"), format!("{burst}; exit 42"), 42)
        } else {
            (format!("signal-{round}"), format!("{burst}; kill -USR2 $$"), 128 + libc::SIGUSR2)
        };
        let proc = if round < 4 { pod.step(&name).as_pid1() } else { pod.step(&name) }.sh(&script).spawn();
        procs.push((name, proc, expected));
    }
    for (name, mut proc, expected) in procs {
        proc.wait_within(HANG).expect_code(expected);
        assert_eq!(pod.exit_record(&name)["exitCode"], expected, "{name}");
    }
}

/// Orphans also arrive while baton still waits: a `kubectl exec` that leaves a background process
/// behind in the container. They are re-parented to PID 1 and must be reaped then too.
#[test]
fn as_pid1_orphans_are_reaped_while_still_waiting() {
    let pod = Pod::new();
    let go = pod.path("go");
    let mut proc = pod.step("init").as_pid1().arg("--wait-file").arg(&go).command(["true"]).spawn();
    pod.wait_phase("init", "waiting");
    let baton = proc.baton_pid();
    let children = || -> Vec<i32> {
        let mut all = Vec::new();
        for task in std::fs::read_dir(format!("/proc/{baton}/task")).unwrap() {
            let text = std::fs::read_to_string(task.unwrap().path().join("children")).unwrap_or_default();
            all.extend(text.split_whitespace().map(|p| p.parse::<i32>().unwrap()));
        }
        all
    };
    let status = std::process::Command::new("nsenter")
        .args(["--target", &baton.to_string(), "--pid", "sh", "-c", "sleep 30 >/dev/null 2>&1 </dev/null &"])
        .status()
        .unwrap();
    assert!(status.success());
    let orphan = wait_until("the orphan to be re-parented to baton", SOON, || children().first().copied());
    kill(orphan, libc::SIGKILL);
    wait_until("the orphan to be reaped (not left a zombie)", SOON, || children().is_empty().then_some(()));
    std::fs::write(&go, "").unwrap();
    proc.wait_within(SOON).expect_code(0);
}

#[test]
fn as_pid1_signals_from_outside_are_forwarded() {
    let pod = Pod::new();
    let (rec, ready) = (pod.path("rec"), pod.path("ready"));
    let mut proc = pod
        .step("init")
        .as_pid1()
        .command([helper().to_str().unwrap(), "record", rec.to_str().unwrap(), ready.to_str().unwrap(), "15", "42"])
        .spawn();
    let (child, pgrp, parent) = read_ready(&ready);
    assert_eq!(parent, 1, "baton is PID 1");
    assert_eq!(pgrp, child, "the command leads its own process group");
    let rt = libc::SIGRTMIN() + 3;
    for (i, signal) in [libc::SIGUSR1, rt, libc::SIGHUP].into_iter().enumerate() {
        proc.signal(signal);
        wait_until(&format!("signal {signal} to reach the command"), SOON, || (recorded(&rec).len() > i).then_some(()));
    }
    // The kubelet's SIGTERM: a PID 1 without a handler would ignore it.
    proc.signal(libc::SIGTERM);
    proc.wait_within(SOON).expect_code(42);
    // Exactly what was sent: SIGCONT follows a stop signal only to a stopped process.
    assert_eq!(recorded(&rec), [libc::SIGUSR1, rt, libc::SIGHUP, libc::SIGTERM]);
    assert_eq!(pod.exit_record("init")["exitCode"], 42);
}

#[test]
fn as_pid1_sigterm_while_waiting_cancels() {
    let pod = Pod::new();
    let ran = pod.path("ran");
    let mut proc = pod
        .step("init")
        .as_pid1()
        .arg("--wait-file")
        .arg(pod.path("never"))
        .command(["touch", ran.to_str().unwrap()])
        .spawn();
    let state = pod.wait_phase("init", "waiting");
    assert_eq!(state["pid"], 1, "baton is PID 1: {state}");
    proc.signal(libc::SIGTERM);
    proc.wait_within(SOON).expect_code(143);
    let record = pod.exit_record("init");
    assert_eq!(record["reason"], "Cancelled");
    assert_eq!(record["exitCode"], Value::Null);
    assert!(!ran.exists());
}
