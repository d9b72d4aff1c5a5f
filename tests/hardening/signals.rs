//! Issue 17: Signal transparency: the command sees the signals that were sent, and no others; a
//! stopped process of its group still ends on SIGTERM.

use super::*;

/// The shell command for the helper's `record` role: it takes every signal and appends its number
/// to `rec`, and exits with `exit_code` once it has taken `exit_signal`.
fn recorder(rec: &Path, ready: &Path, exit_signal: i32, exit_code: i32) -> String {
    format!("{} record {} {} {exit_signal} {exit_code}", shq(helper()), shq(rec), shq(ready))
}

/// dumb-init's `test_proxies_signals`: each catchable signal sent to the wrapper reaches the command
/// once, and nothing else does. The command takes every signal, SIGCONT included (as a shell with a
/// CONT trap does), so a SIGCONT that nobody sent would show.
#[test]
fn a_command_that_takes_sigcont_sees_exactly_the_signals_that_were_sent() {
    let pod = Pod::new();
    let (rec, ready) = (pod.path("rec"), pod.path("ready"));
    let end = libc::SIGRTMIN() + 5;
    let mut s = pod.step("s").sh(&format!("exec {}", recorder(&rec, &ready, end, 42))).spawn();
    read_ready(&ready);
    // 1 to 31 but those that cannot be caught, SIGCHLD (baton's own) and the job-control stops
    // (they stop baton too), as in dumb-init. SIGHUP, SIGINT, SIGQUIT and SIGTERM are among them.
    let not_sent = [libc::SIGKILL, libc::SIGSTOP, libc::SIGCHLD, libc::SIGTSTP, libc::SIGTTIN, libc::SIGTTOU];
    let sent = sendable(&(1..32).filter(|s| !not_sent.contains(s)).collect::<Vec<i32>>());
    for (i, &signal) in sent.iter().enumerate() {
        s.signal(signal);
        wait_until(&format!("signal {signal} to reach the command"), SOON, || (recorded(&rec).len() > i).then_some(()));
        assert_eq!(recorded(&rec), sent[..=i], "the command saw other signals than those sent");
    }
    s.signal(end);
    s.wait_within(SOON).expect_code(42);
    assert_eq!(recorded(&rec), [&sent[..], &[end]].concat(), "the command saw other signals than those sent");
}

/// A command stopped with SIGSTOP (a debugger, `kill -STOP` through `kubectl exec`) and trapping
/// SIGTERM still ends on it, long before the grace period: SIGCONT follows to the stopped process.
#[test]
fn a_stopped_command_still_ends_on_sigterm() {
    let pod = Pod::new();
    let (rec, ready) = (pod.path("rec"), pod.path("ready"));
    let command = format!("exec {}", recorder(&rec, &ready, libc::SIGTERM, 7));
    let mut s = pod.step("s").args(["--grace", "30s"]).sh(&command).spawn();
    let (child, _, _) = read_ready(&ready);
    kill(child, libc::SIGSTOP);
    wait_until("the command to stop", SOON, || (proc_stat(child).map(|p| p.0) == Some('T')).then_some(()));
    s.signal(libc::SIGTERM);
    s.wait_within(SOON).expect_code(7);
    assert_eq!(recorded(&rec), [libc::SIGTERM]);
}

/// A stopped grandchild in the command's group is not baton's child (its stop is reported to its
/// parent only), yet it still ends on SIGTERM rather than at SIGKILL after the grace period; the
/// command, which runs, sees SIGTERM alone.
#[test]
fn a_stopped_grandchild_in_the_group_still_ends_on_sigterm() {
    if skip_emulated(
        "baton must be a sub-reaper (qemu-user refuses PR_SET_CHILD_SUBREAPER): else the grandchild goes to \
         the host's init when the command ends, and the kernel sends its orphaned, stopped group SIGHUP",
    ) {
        return;
    }
    let pod = Pod::new();
    let (rec, ready, rec2, ready2) = (pod.path("rec"), pod.path("ready"), pod.path("rec2"), pod.path("ready2"));
    let grandchild = recorder(&rec2, &ready2, libc::SIGTERM, 0);
    let script = format!("{grandchild} & exec {}", recorder(&rec, &ready, libc::SIGTERM, 7));
    let mut s = pod.step("s").args(["--grace", "30s"]).sh(&script).spawn();
    read_ready(&ready);
    let (grandchild, group, _) = read_ready(&ready2);
    assert_eq!(group, pod.child_pid("s"), "the grandchild is in the command's group");
    kill(grandchild, libc::SIGSTOP);
    wait_until("the grandchild to stop", SOON, || (proc_stat(grandchild).map(|p| p.0) == Some('T')).then_some(()));
    s.signal(libc::SIGTERM);
    s.wait_within(SOON).expect_code(7);
    assert_eq!(recorded(&rec2), [libc::SIGTERM], "the grandchild must have ended on SIGTERM");
    // The kernel tells the command (the grandchild's parent) with SIGCHLD that its child stopped.
    let seen: Vec<i32> = recorded(&rec).into_iter().filter(|&s| s != libc::SIGCHLD).collect();
    assert_eq!(seen, [libc::SIGTERM], "the running command must see SIGTERM alone");
}

/// Signals 32, 33 and 34 are the C library's own (musl keeps all three out of a full signal set, glibc
/// 32 and 33), yet anyone may send them (`kill -RTMIN` is 34 for a glibc program). Sent to baton they
/// must not kill it without a record: it forwards them like any other, and the step ends with the
/// command's fate (a glibc `sleep` takes 32 and 33 itself and dies of 34, then of SIGTERM).
#[test]
fn the_c_librarys_own_signals_do_not_kill_baton() {
    for signal in sendable(&[32, 33, 34]) {
        let pod = Pod::new();
        let mut step = pod.step("s").command(["sleep", "30"]).spawn();
        pod.wait_phase("s", "running");
        let baton = step.baton_pid();
        unsafe { libc::kill(baton, signal) };
        // Whatever the command made of it, baton is still there to stop it and say how it ended.
        unsafe { libc::kill(baton, libc::SIGTERM) };
        let out = step.wait_within(SOON);
        assert!(pod.exit_path("s").exists(), "signal {signal} killed baton before it wrote a record");
        let code = pod.exit_record("s")["exitCode"].as_i64().unwrap() as i32;
        assert!(code == 128 + signal || code == 128 + libc::SIGTERM, "signal {signal}: exit code {code}");
        out.expect_code(code);
    }
}
