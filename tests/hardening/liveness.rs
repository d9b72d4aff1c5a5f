//! Issue 17: a step's liveness cannot be held by another UID: successors wake at its record or its
//! death, whatever a stranger opens or locks in its folder.

use super::*;
use std::os::unix::process::CommandExt;
use std::process::{Child, Stdio};

/// Starts `script` as `ATTACKER` in `dir` and leaves it running; it ends with the returned child.
fn attacker_in_background(dir: &Path, script: &str) -> Attacker {
    let child = Command::new("setpriv")
        .args([format!("--reuid={ATTACKER}"), format!("--regid={ATTACKER}"), "--clear-groups".into()])
        .args(["sh", "-c", script])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    Attacker(child)
}

/// Ends the attacker's whole process group when the test is done, whatever happened.
struct Attacker(Child);

impl Drop for Attacker {
    fn drop(&mut self) {
        unsafe { libc::kill(-(self.0.id() as i32), libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

/// Everything a stranger can try on a running step's folder to look alive in its place: hold its
/// lock, lock and hold open its beacon, open the beacon for writing. `tried` appears when each
/// attempt has been made (and, where it succeeded, holds).
const HOLD_EVERYTHING: &str = "flock -x steps/u/lock sleep 30 & \
     flock -x steps/u/alive sleep 30 & \
     sleep 30 < steps/u/alive & \
     (exec 3> steps/u/alive && sleep 30) & \
     sleep 0.3; touch tried; wait";

fn running_step_u(pod: &Pod, command: &str) -> Proc {
    pod.baton("init").arg("init").arg("--dir").arg(pod.dir()).run().expect_code(0);
    let u = pod.step("u").sh(command).spawn();
    pod.wait_phase("u", "running");
    u
}

#[test]
fn a_stranger_holding_a_steps_lock_does_not_hold_back_its_successor() {
    let pod = Pod::open_to_all();
    let mut u = running_step_u(&pod, "sleep 1");
    let _attacker = attacker_in_background(&pod.dir(), HOLD_EVERYTHING);
    pod.wait_file(&pod.dir().join("tried"));
    let mut w = pod.step("w").args(["--after", "u"]).command(["true"]).spawn();
    u.wait_within(SOON).expect_code(0);
    // The successor starts at u's record, not when the stranger lets go 30 s later.
    w.wait_within(SOON).expect_code(0);
    assert_eq!(pod.exit_record("w")["reason"], "Completed");
    let status = pod.baton("status").args(["status", "--dir"]).arg(pod.dir()).run();
    assert!(!status.stdout.contains("waiting"), "{}", status.stdout);
}

#[test]
fn a_stranger_holding_a_dead_steps_lock_does_not_hide_its_death() {
    let pod = Pod::open_to_all();
    let mut u = running_step_u(&pod, "sleep 60");
    let command = pod.child_pid("u");
    let _attacker = attacker_in_background(&pod.dir(), HOLD_EVERYTHING);
    pod.wait_file(&pod.dir().join("tried"));
    let mut w = pod.step("w").args(["--after", "u"]).command(["true"]).spawn();
    pod.wait_phase("w", "waiting");
    // u's wrapper dies without a record (as in an OOM kill): w learns of it at once.
    unsafe { libc::kill(u.baton_pid(), libc::SIGKILL) };
    u.wait_within(SOON);
    w.wait_within(SOON).expect_code(125);
    assert_eq!(pod.exit_record("w")["reason"], "PredecessorLost");
    let status = pod.baton("status").args(["status", "--dir"]).arg(pod.dir()).run();
    assert!(status.stdout.contains("lost"), "{}", status.stdout);
    // u's command outlived its killed wrapper: its own group ends here, nothing else on the machine.
    unsafe { libc::kill(-command, libc::SIGKILL) };
}

#[test]
fn only_the_wrapper_can_open_its_lock_or_write_its_beacon() {
    let pod = Pod::open_to_all();
    let mut u = running_step_u(&pod, "sleep 30");
    assert_eq!(mode(&pod.step_dir("u").join("lock")), 0o600);
    assert_eq!(mode(&pod.step_dir("u").join("alive")), 0o644);
    for attack in ["exec 3< steps/u/lock", "exec 3> steps/u/alive", "rm -f steps/u/alive", "mkfifo steps/u/x"] {
        assert_ne!(as_attacker(&pod.dir(), attack), 0, "{attack} succeeded");
    }
    u.signal(libc::SIGTERM);
    u.wait_within(SOON);
}
