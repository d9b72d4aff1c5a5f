//! Waiting for a step's start condition: other steps' ends, files, a gate.
//!
//! Event-driven: one inotify instance watches the folders where the awaited files will appear, and a
//! parked thread per running predecessor blocks on its wrapper's lock, which the kernel releases the
//! moment that wrapper dies. Each wake-up re-checks every condition from the files themselves, and
//! watches are set up before the check, so nothing written before or during the set-up is missed.
//! Without inotify (instance limit reached, or `BATON_INOTIFY=off` for file systems that do not
//! report changes), baton says so once and re-checks every 500 ms instead.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_contract::layout::Layout;
use baton_contract::message;
use baton_contract::record::Reason;

use crate::signals::Signals;
use crate::sys;

/// Re-check interval when inotify cannot be had.
pub const FALLBACK_INTERVAL: Duration = Duration::from_millis(500);

/// One part of a start condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cond {
    /// Step `name` has ended; successfully unless `any_end`.
    Step { name: String, any_end: bool },
    /// The path exists (symbolic links followed).
    File(PathBuf),
    /// The path exists and is not empty.
    NonEmpty(PathBuf),
    /// The gate of step `name` was released (`baton release`).
    Gate(String),
}

impl Cond {
    /// `STEP` or `STEP:done`, as `--after` takes it.
    pub fn parse_after(text: &str) -> Result<Cond, String> {
        let (name, any_end) = match text.strip_suffix(":done") {
            Some(name) => (name, true),
            None => (text, false),
        };
        baton_contract::name::check_step(name).map_err(|e| format!("--after {text}: {e}"))?;
        Ok(Cond::Step { name: name.to_string(), any_end })
    }

    /// `STEP`, `STEP:done`, `file:PATH` or `nonempty:PATH`, as `baton wait` takes it.
    pub fn parse_spec(text: &str) -> Result<Cond, String> {
        if let Some(path) = text.strip_prefix("file:") {
            return nonempty_path(path, text).map(Cond::File);
        }
        if let Some(path) = text.strip_prefix("nonempty:") {
            return nonempty_path(path, text).map(Cond::NonEmpty);
        }
        Cond::parse_after(text).map_err(|e| e.replace("--after ", ""))
    }

    /// How `baton status` and error messages name what is missing.
    pub fn describe(&self) -> String {
        match self {
            Cond::Step { name, any_end: false } => format!("step {name}"),
            Cond::Step { name, any_end: true } => format!("step {name} (any end)"),
            Cond::File(p) => format!("file {}", p.display()),
            Cond::NonEmpty(p) => format!("non-empty file {}", p.display()),
            Cond::Gate(name) => format!("gate of step {name} (baton release {name})"),
        }
    }
}

fn nonempty_path(path: &str, spec: &str) -> Result<PathBuf, String> {
    if path.is_empty() {
        Err(format!("invalid wait spec {spec:?}: the path is empty"))
    } else {
        Ok(PathBuf::from(path))
    }
}

/// How waiting ended.
#[derive(Debug)]
pub enum WaitEnd {
    Ready,
    /// A plain `--after` predecessor ended without success.
    PredecessorFailed { step: String, reason: Reason, exit_code: Option<i32>, detail: Option<String> },
    /// A predecessor's wrapper died without writing its record.
    PredecessorLost { step: String },
    TimedOut { missing: Vec<String> },
    /// A stop signal arrived first.
    Cancelled { signal: i32 },
}

enum Check {
    Met,
    Pending,
    End(WaitEnd),
}

/// The holder of a liveness lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holder {
    /// No lock: its owner has not started (or is not baton).
    Absent,
    /// Its owner lives.
    Alive,
    /// The lock is free: its owner has exited or was killed.
    Gone,
}

/// The state of every condition after one check.
pub struct Progress {
    /// Conditions not met yet, described for people.
    pub missing: Vec<String>,
    /// Conditions that can no longer be met (a failed or lost predecessor).
    pub ends: Vec<WaitEnd>,
}

pub struct Waiter<'a> {
    layout: &'a Layout,
    /// The conditions not met yet.
    conds: Vec<Cond>,
    inotify: Option<sys::Inotify>,
    watch_mask: u32,
    /// (device, inode) of predecessor locks that already have a parked thread.
    parked: HashSet<(u64, u64)>,
    wake_read: OwnedFd,
    wake_write: Arc<OwnedFd>,
}

impl<'a> Waiter<'a> {
    pub fn new(layout: &'a Layout, conds: Vec<Cond>) -> io::Result<Waiter<'a>> {
        let watch_mask = if conds.iter().any(|c| matches!(c, Cond::NonEmpty(_))) {
            sys::WATCH_DIR | sys::WATCH_WRITES
        } else {
            sys::WATCH_DIR
        };
        let inotify = if std::env::var_os("BATON_INOTIFY").is_some_and(|v| v == "off") {
            eprintln!("baton: BATON_INOTIFY=off: checking every {}ms instead of watching", FALLBACK_INTERVAL.as_millis());
            None
        } else {
            match sys::Inotify::new() {
                Ok(i) => Some(i),
                Err(e) => {
                    fallback_notice(&e);
                    None
                }
            }
        };
        let (wake_read, wake_write) = sys::pipe()?;
        sys::set_nonblocking(wake_read.as_raw_fd())?;
        Ok(Waiter { layout, conds, inotify, watch_mask, parked: HashSet::new(), wake_read, wake_write: Arc::new(wake_write) })
    }

    /// Waits until every condition holds, one fails, `timeout` passes or a stop signal arrives.
    /// `progress` is told what is still missing whenever that changes.
    pub fn wait(
        &mut self,
        signals: &mut Signals,
        timeout: Option<Duration>,
        mut progress: impl FnMut(&[String]),
    ) -> io::Result<WaitEnd> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut reported: Option<Vec<String>> = None;
        loop {
            let Progress { missing, mut ends } = self.check();
            if !ends.is_empty() {
                return Ok(ends.swap_remove(0));
            }
            if missing.is_empty() {
                return Ok(WaitEnd::Ready);
            }
            if reported.as_ref() != Some(&missing) {
                progress(&missing);
                reported = Some(missing.clone());
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Ok(WaitEnd::TimedOut { missing });
            }
            let sleep = [deadline.map(|d| d - now), self.recheck_interval()].into_iter().flatten().min();
            let mut fds = vec![sys::pollfd(signals.fd())];
            fds.extend(self.fds().into_iter().map(sys::pollfd));
            sys::poll(&mut fds, sleep)?;
            if let Some(signal) = signals.take_while_waiting()? {
                return Ok(WaitEnd::Cancelled { signal });
            }
            self.clear();
        }
    }

    /// Sets up watches, then checks every condition (in that order, so no change slips between).
    /// A condition once met stays met (a step does not un-end), so it is dropped: a wake-up costs
    /// only what is still pending, which matters when one step waits for a hundred.
    pub fn check(&mut self) -> Progress {
        self.watch_all();
        let mut progress = Progress { missing: Vec::new(), ends: Vec::new() };
        let mut i = 0;
        while i < self.conds.len() {
            match self.check_one(i) {
                Check::Met => {
                    self.conds.remove(i);
                    continue;
                }
                Check::Pending => progress.missing.push(self.conds[i].describe()),
                Check::End(end) => progress.ends.push(end),
            }
            i += 1;
        }
        progress
    }

    /// The descriptors that become readable when something may have changed.
    pub fn fds(&self) -> Vec<RawFd> {
        let mut fds = vec![self.wake_read.as_raw_fd()];
        fds.extend(self.inotify.as_ref().map(sys::Inotify::fd));
        fds
    }

    /// How often to re-check without being told: only when inotify is not available.
    pub fn recheck_interval(&self) -> Option<Duration> {
        self.inotify.is_none().then_some(FALLBACK_INTERVAL)
    }

    /// Consumes the wake-ups, after a poll.
    pub fn clear(&self) {
        for fd in self.fds() {
            sys::drain(fd);
        }
    }

    /// Watches the deepest existing folder on the way to every file a condition looks at, and the
    /// folder of every hop of a chain of symbolic links.
    fn watch_all(&mut self) {
        let Some(inotify) = &self.inotify else { return };
        let mut files: Vec<PathBuf> = Vec::new();
        for cond in &self.conds {
            match cond {
                Cond::Step { name, .. } => files.push(self.layout.exit(name)),
                Cond::Gate(name) => files.push(self.layout.gate(name)),
                Cond::File(p) | Cond::NonEmpty(p) => {
                    let mut hop = absolute(p);
                    for _ in 0..MAX_LINK_HOPS {
                        files.push(hop.clone());
                        let Ok(target) = fs::read_link(&hop) else { break };
                        hop = hop.parent().unwrap_or(Path::new("/")).join(target);
                    }
                }
            }
        }
        for file in files {
            let Some(dir) = file.parent() else { continue };
            if let Err(e) = watch_deepest(inotify, dir, self.watch_mask) {
                fallback_notice(&e);
                self.inotify = None;
                return;
            }
        }
    }

    fn check_one(&mut self, i: usize) -> Check {
        let met = |yes: bool| if yes { Check::Met } else { Check::Pending };
        match self.conds[i].clone() {
            Cond::File(p) => met(p.exists()),
            Cond::NonEmpty(p) => met(fs::metadata(&p).is_ok_and(|m| m.len() > 0)),
            Cond::Gate(name) => met(self.layout.gate(&name).exists()),
            Cond::Step { name, any_end } => self.check_step(&name, any_end),
        }
    }

    fn check_step(&mut self, name: &str, any_end: bool) -> Check {
        if let Some(check) = self.read_end(name, any_end) {
            return check;
        }
        match self.lock_holder(&self.layout.lock(name)) {
            // Not started yet (that is no loss), or running.
            Ok(Holder::Absent) | Ok(Holder::Alive) => Check::Pending,
            // The wrapper is gone. Its record, if it wrote one, was written before it died.
            Ok(Holder::Gone) | Err(_) => {
                self.read_end(name, any_end).unwrap_or(Check::End(WaitEnd::PredecessorLost { step: name.to_string() }))
            }
        }
    }

    /// Who holds the liveness lock at `path` (see `stepdir::create_locked`). While its holder
    /// lives, a thread is parked on the lock and wakes this waiter the moment the holder dies.
    pub fn lock_holder(&mut self, path: &Path) -> io::Result<Holder> {
        let Ok(lock) = File::open(path) else { return Ok(Holder::Absent) };
        if sys::flock(lock.as_raw_fd(), false, false)? {
            return Ok(Holder::Gone);
        }
        self.park(lock);
        Ok(Holder::Alive)
    }

    /// The verdict from a predecessor's record, or None if it has none yet.
    fn read_end(&self, name: &str, any_end: bool) -> Option<Check> {
        let text = match fs::read_to_string(self.layout.exit(name)) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
            Err(e) => return Some(self.unreadable(name, any_end, e.to_string())),
        };
        Some(match message::decode(&text) {
            Ok(record) if any_end || record.reason.is_success() => Check::Met,
            Ok(record) => Check::End(WaitEnd::PredecessorFailed {
                step: name.to_string(),
                reason: record.reason,
                exit_code: record.exit_code,
                detail: None,
            }),
            Err(e) => self.unreadable(name, any_end, e.to_string()),
        })
    }

    fn unreadable(&self, name: &str, any_end: bool, why: String) -> Check {
        if any_end {
            return Check::Met;
        }
        Check::End(WaitEnd::PredecessorFailed {
            step: name.to_string(),
            reason: Reason::Failed,
            exit_code: None,
            detail: Some(format!("its record {} is unreadable ({why})", self.layout.exit(name).display())),
        })
    }

    /// Parks a thread on a living predecessor's lock; it wakes the loop when that wrapper dies.
    fn park(&mut self, lock: File) {
        let Ok(meta) = lock.metadata() else { return };
        if !self.parked.insert((meta.dev(), meta.ino())) {
            return;
        }
        let wake = Arc::clone(&self.wake_write);
        let spawned = std::thread::Builder::new()
            .name("lock-watch".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                let _ = sys::flock(lock.as_raw_fd(), false, true);
                let _ = unsafe { libc::write(wake.as_raw_fd(), b"x".as_ptr().cast(), 1) };
            });
        if spawned.is_err() {
            // Without the thread, fall back to re-checking on a timer.
            self.inotify = None;
        }
    }
}

/// As many symbolic links as the kernel follows in one path.
const MAX_LINK_HOPS: usize = 40;

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")).join(p)
    }
}

/// Watches the deepest existing folder on the way to `dir` (absolute). After each watch it looks
/// whether the next folder down has appeared meanwhile and, if so, descends: a folder created while
/// the watches were being set up is never missed. Fails only when inotify runs out of watches.
fn watch_deepest(inotify: &sys::Inotify, dir: &Path, mask: u32) -> io::Result<()> {
    let chain: Vec<&Path> = dir.ancestors().collect(); // dir, its parent, ..., "/"
    let mut i = chain.iter().position(|d| d.is_dir()).unwrap_or(chain.len() - 1);
    loop {
        match inotify.watch(chain[i], mask) {
            Ok(()) if i > 0 && chain[i - 1].is_dir() => i -= 1,
            Ok(()) => return Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::ENOMEM)) => return Err(e),
            // Gone again (or not a folder): go one up.
            Err(_) if i + 1 < chain.len() => i += 1,
            Err(_) => return Ok(()),
        }
    }
}

fn fallback_notice(e: &io::Error) {
    let why = match e.raw_os_error() {
        Some(libc::EMFILE) => "this user has no inotify instances left (fs.inotify.max_user_instances)".to_string(),
        Some(libc::ENOSPC) => "this user has no inotify watches left (fs.inotify.max_user_watches)".to_string(),
        _ => e.to_string(),
    };
    eprintln!("baton: cannot watch for changes: {why}; checking every {}ms instead", FALLBACK_INTERVAL.as_millis());
}

/// `baton wait`: exit 0 when every spec holds, 1 when a required step did not succeed, 125 on
/// timeout or error, 128+N when stopped by signal N.
pub fn wait_command(args: crate::cli::WaitArgs) -> i32 {
    use baton_contract::record::EXIT_BATON_FAILED;
    let conds: Result<Vec<Cond>, String> = args.specs.iter().map(|s| Cond::parse_spec(s)).collect();
    let conds = match conds {
        Ok(c) => c,
        Err(e) => {
            eprintln!("baton: {e}");
            return EXIT_BATON_FAILED;
        }
    };
    let layout = Layout::new(&args.dir.dir);
    let ended = Signals::take_over()
        .and_then(|mut signals| Waiter::new(&layout, conds)?.wait(&mut signals, args.timeout, |_| {}));
    match ended {
        Ok(WaitEnd::Ready) => 0,
        Ok(WaitEnd::PredecessorFailed { step, reason, exit_code, detail }) => {
            let how = detail.unwrap_or_else(|| match exit_code {
                Some(c) => format!("it ended {reason} with exit code {c}"),
                None => format!("it ended {reason}"),
            });
            eprintln!("baton: step {step} did not succeed: {how}");
            1
        }
        Ok(WaitEnd::PredecessorLost { step }) => {
            eprintln!("baton: step {step} was lost: its baton died without writing a record");
            EXIT_BATON_FAILED
        }
        Ok(WaitEnd::TimedOut { missing }) => {
            let after = baton_contract::duration::human(args.timeout.unwrap_or_default());
            eprintln!("baton: gave up waiting after {after}; still missing: {}", missing.join(", "));
            EXIT_BATON_FAILED
        }
        Ok(WaitEnd::Cancelled { signal }) => {
            eprintln!("baton: cancelled by {} while waiting", sys::signal_name(signal));
            128 + signal
        }
        Err(e) => {
            eprintln!("baton: waiting failed: {e}");
            EXIT_BATON_FAILED
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_and_wait_specs() {
        assert_eq!(Cond::parse_after("build").unwrap(), Cond::Step { name: "build".into(), any_end: false });
        assert_eq!(Cond::parse_after("build:done").unwrap(), Cond::Step { name: "build".into(), any_end: true });
        assert!(Cond::parse_after("Build").unwrap_err().contains("--after Build"));
        assert!(Cond::parse_after("a:b").is_err());
        assert_eq!(Cond::parse_spec("file:/x/y").unwrap(), Cond::File("/x/y".into()));
        assert_eq!(Cond::parse_spec("nonempty:rel").unwrap(), Cond::NonEmpty("rel".into()));
        assert!(Cond::parse_spec("file:").unwrap_err().contains("path is empty"));
        let e = Cond::parse_spec("Nope").unwrap_err();
        assert!(e.starts_with("Nope: invalid step name"), "{e}");
    }

    #[test]
    fn descriptions_name_the_missing_thing() {
        assert_eq!(Cond::parse_after("a:done").unwrap().describe(), "step a (any end)");
        assert_eq!(Cond::NonEmpty("/d/ready".into()).describe(), "non-empty file /d/ready");
        assert_eq!(Cond::Gate("g".into()).describe(), "gate of step g (baton release g)");
    }
}
