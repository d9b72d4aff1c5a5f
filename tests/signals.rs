//! Signals: forwarded to the command's own process group (all catchable ones but SIGCHLD, the
//! real-time ones too), kept when they arrive before the command exists, and a stop signal while
//! waiting cancels the step before its command ever starts.

mod common;

use common::*;

fn sigrt(n: i32) -> i32 {
    libc::SIGRTMIN() + n
}

#[test]
fn catchable_signals_reach_the_commands_own_process_group_but_sigchld_does_not() {
    let pod = Pod::new();
    let (rec, ready) = (pod.path("rec"), pod.path("ready"));
    let mut proc = pod
        .step("sig")
        .command([helper().to_str().unwrap(), "record", rec.to_str().unwrap(), ready.to_str().unwrap(), "15", "42"])
        .spawn();
    let (child, child_pgrp, child_parent) = read_ready(&ready);
    let baton = proc.baton_pid();
    assert_eq!(child_parent, baton, "the command is baton's child");
    assert_eq!(child_pgrp, child, "the command leads its own process group");
    let (_, _, baton_pgrp) = proc_stat(baton).unwrap();
    assert_ne!(baton_pgrp, child_pgrp, "the command must not share baton's process group");

    // Every catchable signal but the stop-baton-itself ones (KILL, STOP), SIGCHLD, and those that
    // mean baton itself crashed (ILL, TRAP, BUS, FPE, SEGV, SYS), one at a time.
    let mut sent = sendable(&[
        libc::SIGHUP,
        libc::SIGINT,
        libc::SIGQUIT,
        libc::SIGABRT,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGPIPE,
        libc::SIGALRM,
        libc::SIGSTKFLT,
        libc::SIGCONT,
        libc::SIGURG,
        libc::SIGXCPU,
        libc::SIGXFSZ,
        libc::SIGVTALRM,
        libc::SIGPROF,
        libc::SIGWINCH,
        libc::SIGIO,
        libc::SIGPWR,
        sigrt(0),
        sigrt(3),
        libc::SIGRTMAX(),
    ]);
    // The command runs, so no SIGCONT follows a stop signal (HUP, INT, QUIT). (TSTP, TTIN, TTOU
    // stop baton too: see job_control_stops_the_command_then_baton.)
    for (i, &signal) in sent.iter().enumerate() {
        proc.signal(signal);
        wait_until(&format!("signal {signal} to reach the command"), SOON, || (recorded(&rec).len() > i).then_some(()));
        assert_eq!(recorded(&rec), sent[..=i]);
    }
    // SIGCHLD is baton's own business. A real-time signal sent after it arrives after it would
    // have (standard signals are delivered first), so once it is there, SIGCHLD would be too.
    let sentinel = sigrt(4);
    proc.signal(libc::SIGCHLD);
    proc.signal(sentinel);
    wait_until("the sentinel signal", SOON, || recorded(&rec).contains(&sentinel).then_some(()));
    sent.push(sentinel);
    assert_eq!(recorded(&rec), sent, "SIGCHLD must not be forwarded");

    proc.signal(libc::SIGTERM);
    let out = proc.wait_within(SOON);
    out.expect_code(42);
    assert_eq!(recorded(&rec).last(), Some(&libc::SIGTERM));
    let record = pod.exit_record("sig");
    assert_eq!(record["reason"], "Failed", "a command that ran is not Cancelled: {record}");
    assert_eq!(record["exitCode"], 42);
}

#[test]
fn sigterm_to_a_running_step_ends_the_command_with_143() {
    let pod = Pod::new();
    let mut proc = pod.step("run").command(["sleep", "30"]).spawn();
    pod.child_pid("run");
    proc.signal(libc::SIGTERM);
    let out = proc.wait_within(SOON);
    out.expect_code(143);
    let record = pod.exit_record("run");
    assert_eq!(record["exitCode"], 143);
    assert!(record["startedAt"].is_string());
}

/// Signals that arrive while the step still waits (before the command exists) and do not stop it
/// are kept and delivered to the command as soon as it starts: here they end a `sleep`.
#[test]
fn a_signal_that_arrives_before_the_command_exists_is_not_lost() {
    let pod = Pod::new();
    for signal in sendable(&[libc::SIGUSR1, sigrt(2)]) {
        let name = if signal == libc::SIGUSR1 { "usr1" } else { "rt" };
        let go = pod.path(&format!("go-{name}"));
        let mut proc = pod.step(name).arg("--wait-file").arg(&go).command(["sleep", "30"]).spawn();
        pod.wait_phase(name, "waiting");
        proc.signal(signal);
        // Let the waiter take the signal first: it must keep waiting, not cancel.
        wait_until("the signal to be taken", SOON, || {
            let pending = std::fs::read_to_string(format!("/proc/{}/status", proc.baton_pid())).ok()?;
            pending.lines().any(|l| l.starts_with("ShdPnd:\t0000000000000000")).then_some(())
        });
        assert!(!proc.has_exited(), "{name}: a non-stop signal while waiting ended the step");
        std::fs::write(&go, "").unwrap();
        let out = proc.wait_within(SOON);
        out.expect_code(128 + signal);
        let record = pod.exit_record(name);
        assert_eq!(record["exitCode"], 128 + signal, "{record}");
        assert!(record["startedAt"].is_string(), "the command did start: {record}");
    }
}

#[test]
fn a_stop_signal_while_waiting_cancels_the_step_before_the_command_starts() {
    let pod = Pod::new();
    let cases = [
        ("term", libc::SIGTERM, "SIGTERM"),
        ("int", libc::SIGINT, "SIGINT"),
        ("hup", libc::SIGHUP, "SIGHUP"),
        ("quit", libc::SIGQUIT, "SIGQUIT"),
    ];
    let never = pod.path("never");
    let mut procs = Vec::new();
    for (name, _, _) in cases {
        let ran = pod.path(&format!("ran-{name}"));
        let proc = pod
            .step(name)
            .arg("--wait-file")
            .arg(&never)
            .command(["touch", ran.to_str().unwrap()])
            .spawn();
        procs.push(proc);
    }
    // A successor of the cancelled step.
    let mut next = pod.step("next").args(["--after", "term"]).command(["touch", pod.path("ran-next").to_str().unwrap()]).spawn();
    for ((name, signal, signame), proc) in cases.iter().zip(&mut procs) {
        pod.wait_phase(name, "waiting");
        proc.signal(*signal);
        let out = proc.wait_within(SOON);
        out.expect_code(128 + signal);
        let record = pod.exit_record(name);
        assert_eq!(record["reason"], "Cancelled", "{record}");
        assert_eq!(record["exitCode"], Value::Null, "{record}");
        assert_eq!(record["startedAt"], Value::Null, "{record}");
        assert!(error_of(&record).contains(signame), "the error names {signame}: {record}");
        assert!(!pod.path(&format!("ran-{name}")).exists(), "{name}: the command ran");
        assert_eq!(pod.termination(name)["reason"], "Cancelled");
    }
    next.wait_within(SOON).expect_code(0);
    assert_eq!(pod.exit_record("next")["reason"], "Skipped");
    assert!(!pod.path("ran-next").exists());
}

/// baton blocks every signal for itself; the command must not inherit that: it starts with the
/// mask and dispositions baton was started with, or a SIGTERM forwarded to it would never end it.
/// (What "started with" is: the same program started by this test directly, the way baton is.)
#[test]
fn the_command_starts_with_the_signal_mask_and_dispositions_baton_was_given() {
    let pod = Pod::new();
    let probe = ["grep", "-E", "^Sig(Blk|Ign):", "/proc/self/status"];
    let direct = std::process::Command::new(probe[0]).args(&probe[1..]).output().unwrap();
    let expected = String::from_utf8(direct.stdout).unwrap();
    assert!(expected.starts_with("SigBlk:\t0000000000000000\n"), "{expected}");
    let out = pod.step("mask").command(probe).run();
    out.expect_code(0);
    if emulated() {
        // Under qemu-user the command starts with real-time signal 33 no longer ignored (measured;
        // the native musl build keeps it): there, the ignored ones are compared for 1-31 only.
        let standard = |text: &str| {
            text.lines()
                .map(|l| match l.strip_prefix("SigIgn:\t") {
                    Some(hex) => format!("SigIgn 1-31: {:x}", u64::from_str_radix(hex, 16).unwrap() & 0x7fff_ffff),
                    None => l.to_string(),
                })
                .collect::<Vec<_>>()
        };
        eprintln!("NARROWED-EMULATED {}: ignored signals compared for 1-31 only", std::thread::current().name().unwrap_or("?"));
        assert_eq!(standard(&out.stdout), standard(&expected));
        return;
    }
    assert_eq!(out.stdout, expected);
}

/// "Every catchable signal that reaches baton (1–31 and the real-time ones) is forwarded ...
/// except SIGCHLD": that includes the numbers that usually mean a crash when they are sent with
/// kill(2) from outside (`kubectl exec … kill -SEGV 1`). baton must not die of them: a wrapper that
/// dies writes no record, and its successors would see the step as lost.
#[test]
fn crash_signal_numbers_sent_with_kill_are_forwarded_too() {
    let pod = Pod::new();
    let (rec, ready) = (pod.path("rec"), pod.path("ready"));
    let mut proc = pod
        .step("sig")
        .through(["prlimit", "--core=0"])
        .command([helper().to_str().unwrap(), "record", rec.to_str().unwrap(), ready.to_str().unwrap(), "15", "42"])
        .spawn();
    let (child, _, _) = read_ready(&ready);
    let signals = sendable(&[libc::SIGILL, libc::SIGTRAP, libc::SIGBUS, libc::SIGFPE, libc::SIGSEGV, libc::SIGSYS]);
    for (i, &signal) in signals.iter().enumerate() {
        proc.signal(signal);
        let deadline = std::time::Instant::now() + SOON;
        while recorded(&rec).len() <= i {
            if proc.has_exited() {
                kill(child, libc::SIGKILL);
                let out = proc.wait();
                panic!("baton died ({:?}) of signal {signal} sent with kill instead of forwarding it", out.status);
            }
            assert!(std::time::Instant::now() < deadline, "signal {signal} never reached the command");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(recorded(&rec)[i], signal);
    }
    proc.signal(libc::SIGTERM);
    proc.wait_within(SOON).expect_code(42);
}

/// Issue 11: a SIGTERM forwarded to a stopped command is followed by SIGCONT (it is stopped), so it
/// still ends within the grace period instead of waiting for SIGKILL.
#[test]
fn a_stopped_command_still_hears_sigterm() {
    let pod = Pod::new();
    let ready = pod.path("ready");
    let mut s = pod.step("s").args(["--grace", "30s"]).sh(&format!("trap 'exit 7' TERM; touch {}; while :; do sleep 0.05; done", shq(&ready))).spawn();
    pod.wait_file(&ready);
    let child = pod.child_pid("s");
    let out = pod.baton("kill").args(["kill", "-s", "STOP", "--dir"]).arg(pod.dir()).arg("s").run();
    out.expect_code(0);
    wait_until("the command to stop", SOON, || (proc_stat(child).map(|p| p.0) == Some('T')).then_some(()));
    s.signal(libc::SIGTERM);
    // Well within the 30 s grace: the trap ran, so SIGCONT followed the SIGTERM.
    let out = s.wait_within(SOON);
    out.expect_code(7);
    assert_eq!(pod.exit_record("s")["exitCode"], 7);
}
