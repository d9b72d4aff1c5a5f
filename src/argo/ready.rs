//! Argo v4.1's init-less layout (`ARGO_WAIT_FOR_READY=true`): no init container; a `supervisor`
//! container writes the template and stages the inputs while the wrapped containers start (their
//! `argoexec` comes from an image volume at `/argo-bin/bin/`), and says when they may run in
//! `/var/run/argo/status`: `RUNNING`, rewritten every 5 s as a heartbeat, then `READY`, or
//! `FAILED\n<why>`. Argo's emissary polls it every 2 s; baton watches its folder (inotify) and wakes
//! otherwise only when the heartbeat is due.

use std::io;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use baton_contract::layout::Layout;

use crate::signals::Signals;
use crate::sys;
use crate::wait::{Cond, Waiter};

use super::files::read_capped;
use super::run::End;
use super::Env;

/// The supervisor's marker in the shared folder.
pub const STATUS_FILE: &str = "status";
/// Argo's `ExitCodeSupervisorPreMainFailure`: the supervisor failed before the containers could run.
pub const EXIT_SUPERVISOR_FAILED: i32 = 65;
/// Argo's `supervisorHeartbeatTimeout`: a marker that neither appears nor changes for this long
/// means the supervisor is dead.
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(30);
/// More than any marker Argo writes (a word, or FAILED and one message).
const STATUS_CAP: u64 = 64 * 1024;

/// How the wait for the supervisor ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ready {
    Go,
    /// `FAILED`, with the supervisor's message.
    Failed(String),
    /// No marker, or no new heartbeat, for [`HEARTBEAT_TIMEOUT`].
    Dead,
    /// A stop signal reached baton.
    Stopped(i32),
}

/// The init-less layout: waits for the supervisor's READY .
pub(super) fn wait_for_supervisor(env: &Env, signals: &mut Signals) -> Result<(), End> {
    let status = env.dir.join(STATUS_FILE);
    eprintln!("baton: ARGO_WAIT_FOR_READY is set: waiting for the supervisor's READY in {}", status.display());
    let failed = |why: String| End { exitcode: EXIT_SUPERVISOR_FAILED, exit: EXIT_SUPERVISOR_FAILED, why: Some(why) };
    match wait(&env.dir, signals) {
        Ok(Ready::Go) => Ok(()),
        Ok(Ready::Failed(why)) => Err(failed(format!("the supervisor failed before this container could run: {why}"))),
        Ok(Ready::Dead) => Err(failed(format!(
            "the supervisor wrote no READY to {} and no heartbeat for 30 s: it is not running; see its log \
             (kubectl logs POD -c supervisor)",
            status.display()
        ))),
        Ok(Ready::Stopped(signal)) => {
            eprintln!(
                "baton: {} while waiting for the supervisor; the command never started",
                sys::signal_name(signal)
            );
            Err(End::stopped(signal))
        }
        Err(e) => Err(End::failed(format!("cannot watch {} for the supervisor: {e}", status.display()))),
    }
}

/// What the marker says now. None: keep waiting (missing, `RUNNING`, or not a marker).
pub fn decide(text: &[u8]) -> Option<Ready> {
    let text = String::from_utf8_lossy(text);
    let (first, rest) = text.split_once('\n').unwrap_or((&text, ""));
    match first.trim() {
        "READY" => Some(Ready::Go),
        "FAILED" => Some(Ready::Failed(rest.trim().to_string())),
        _ => None,
    }
}

/// Waits until the supervisor's marker in `root` says READY or FAILED, or the supervisor is dead.
pub fn wait(root: &Path, signals: &mut Signals) -> io::Result<Ready> {
    let layout = Layout::new(root);
    let status = root.join(STATUS_FILE);
    let mut waiter = Waiter::new(&layout, vec![Cond::File(status.clone())])?;
    // The heartbeat: the marker's last seen modification time, and when the next one is due.
    let mut beat: Option<SystemTime> = None;
    let mut dead_at = Instant::now() + HEARTBEAT_TIMEOUT;
    loop {
        let _ = waiter.check(); // sets the watch on the folder before the read
        if let Ok(Some(text)) = read_capped(&status, STATUS_CAP) {
            if let Some(ready) = decide(&text) {
                return Ok(ready);
            }
            let modified = std::fs::symlink_metadata(&status).and_then(|m| m.modified()).ok();
            if modified.is_some() && modified != beat {
                beat = modified;
                dead_at = Instant::now() + HEARTBEAT_TIMEOUT;
            }
        }
        let now = Instant::now();
        if now >= dead_at {
            return Ok(Ready::Dead);
        }
        let sleep = [Some(dead_at - now), waiter.recheck_interval()].into_iter().flatten().min();
        let mut fds = vec![signals.fd()];
        fds.extend(waiter.fds());
        sys::poll(&fds, sleep)?;
        if let Some(signal) = signals.take_while_waiting()? {
            return Ok(Ready::Stopped(signal));
        }
        waiter.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_as_argo_writes_it() {
        assert_eq!(decide(b"READY"), Some(Ready::Go));
        assert_eq!(decide(b"READY\n"), Some(Ready::Go));
        assert_eq!(
            decide(b"FAILED\ncannot load input artifact a\n"),
            Some(Ready::Failed("cannot load input artifact a".into()))
        );
        assert_eq!(decide(b"RUNNING"), None);
        assert_eq!(decide(b""), None);
    }
}
