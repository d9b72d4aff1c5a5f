//! Waiting for a step's start condition: other steps' ends, files, a gate.
//!
//! Event-driven: one inotify instance watches the folders where the awaited files will appear, and a
//! parked thread per running predecessor blocks on its wrapper's lock, which the kernel releases the
//! moment that wrapper dies. Each wake-up re-checks every condition from the files themselves, and
//! watches are set up before the check, so nothing written before or during the set-up is missed.
//! Without inotify (instance limit reached, or `BATON_INOTIFY=off` for file systems that do not
//! report changes), baton says so once and re-checks every 500 ms instead.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::sys::inotify::AddWatchFlags;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_contract::layout::{Layout, EXIT_FILE, LOCK_FILE};
use baton_contract::message;
use baton_contract::record::Reason;

use crate::folder::{self, Folder, ReadError};
use crate::signals::Signals;
use crate::stepdir::WaitingFor;
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
    /// What a condition depends on cannot be read (a record that is not one, a file nobody may
    /// open, an error that did not go away): one sentence.
    Error { sentence: String },
}

enum Check {
    Met,
    Pending,
    /// A step no baton has claimed yet.
    NotStarted,
    /// A transient error (out of descriptors, memory): look again soon.
    Retry,
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
#[derive(Default)]
pub struct Progress {
    /// Conditions not met yet, described for people.
    pub missing: Vec<String>,
    /// Awaited steps that no baton has claimed yet.
    pub not_started: Vec<String>,
    /// Conditions that can no longer be met (a failed or lost predecessor, an unreadable record).
    pub ends: Vec<WaitEnd>,
    /// A transient error asks for another look soon.
    pub retry: bool,
}

impl Progress {
    pub fn waiting_for(&self) -> WaitingFor {
        WaitingFor { missing: self.missing.clone(), not_started: self.not_started.clone() }
    }
}

pub struct Waiter<'a> {
    layout: &'a Layout,
    /// The conditions not met yet.
    conds: Vec<Cond>,
    /// This waiter's inotify instance, made when something needs watching (see `sys::Inotify`).
    inotify: Option<sys::Inotify>,
    /// Whether a watch set during the current check is needed; the instance is closed when not.
    needs_watch: bool,
    /// False after inotify could not be had: the 500 ms fallback.
    watching: bool,
    watch_mask: AddWatchFlags,
    /// (device, inode) of predecessor locks that already have a parked thread.
    parked: HashSet<(u64, u64)>,
    /// When a transient error was first met, per condition description.
    troubled: HashMap<String, Instant>,
    wake_read: OwnedFd,
    wake_write: Arc<OwnedFd>,
}

/// Re-check interval while an error that may go away is being retried.
const RETRY_INTERVAL: Duration = Duration::from_millis(100);
/// How long a transient error may last before it ends the wait.
pub const RETRY_FOR: Duration = Duration::from_secs(10);
/// When a wait for a step nobody has claimed says so.
pub const NOTICE_AFTER: Duration = Duration::from_secs(5);

impl<'a> Waiter<'a> {
    pub fn new(layout: &'a Layout, conds: Vec<Cond>) -> io::Result<Waiter<'a>> {
        let watch_mask = if conds.iter().any(|c| matches!(c, Cond::NonEmpty(_))) {
            sys::WATCH_DIR | sys::WATCH_WRITES
        } else {
            sys::WATCH_DIR
        };
        let (wake_read, wake_write) = sys::pipe()?;
        sys::set_nonblocking(wake_read.as_fd())?;
        Ok(Waiter {
            layout,
            conds,
            inotify: None,
            needs_watch: false,
            watching: true,
            watch_mask,
            parked: HashSet::new(),
            troubled: HashMap::new(),
            wake_read,
            wake_write: Arc::new(wake_write),
        })
    }

    /// Waits until every condition holds, one fails, `timeout` passes or a stop signal arrives.
    /// `progress` is told what is still missing whenever that changes. A step that nobody has
    /// claimed after [`NOTICE_AFTER`] is named on stderr once (a typo in `--after` would otherwise
    /// wait in silence), with the steps that do exist.
    pub fn wait(
        &mut self,
        signals: &mut Signals,
        timeout: Option<Duration>,
        mut progress: impl FnMut(&WaitingFor),
    ) -> io::Result<WaitEnd> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut notice_at = Some(Instant::now() + NOTICE_AFTER);
        let mut reported: Option<WaitingFor> = None;
        loop {
            let mut p = self.check();
            if !p.ends.is_empty() {
                return Ok(p.ends.swap_remove(0));
            }
            if p.missing.is_empty() {
                return Ok(WaitEnd::Ready);
            }
            let waiting = p.waiting_for();
            if reported.as_ref() != Some(&waiting) {
                progress(&waiting);
                reported = Some(waiting);
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Ok(WaitEnd::TimedOut { missing: p.missing });
            }
            if p.not_started.is_empty() {
                notice_at = notice_at.map(|_| now + NOTICE_AFTER);
            } else if notice_at.is_some_and(|t| now >= t) {
                self.notice_not_started(&p.not_started, timeout);
                notice_at = None;
            }
            let sleep = [
                deadline.map(|d| d - now),
                self.recheck_interval(),
                p.retry.then_some(RETRY_INTERVAL),
                notice_at.filter(|_| !p.not_started.is_empty()).map(|t| t.saturating_duration_since(now)),
            ]
            .into_iter()
            .flatten()
            .min();
            let mut fds = vec![signals.fd()];
            fds.extend(self.fds());
            sys::poll(&fds, sleep)?;
            drop(fds);
            if let Some(signal) = signals.take_while_waiting()? {
                return Ok(WaitEnd::Cancelled { signal });
            }
            self.clear();
        }
    }

    fn notice_not_started(&self, names: &[String], timeout: Option<Duration>) {
        let known = crate::stepdir::list_steps(self.layout);
        let known = if known.is_empty() { "none yet".to_string() } else { known.join(", ") };
        let (them, has) = if names.len() == 1 { ("step", "has") } else { ("steps", "have") };
        let until = match timeout {
            Some(t) => format!("until --wait-timeout {}", baton_contract::duration::human(t)),
            None => "until it starts or the pod is deleted".to_string(),
        };
        eprintln!(
            "baton: still waiting for {them} {}, which no baton {has} claimed in {} (steps there: {known}); if that \
             is a typo, fix --after; waiting on {until}",
            names.join(", "),
            self.layout.root().display()
        );
    }

    /// Checks every condition not met yet. Watches are set up before a condition is looked at, so
    /// no change slips between; a predecessor that is running needs none (its lock wakes us). A
    /// condition once met stays met (a step does not un-end), so it is dropped: a wake-up costs
    /// only what is still pending, which matters when one step waits for a hundred.
    pub fn check(&mut self) -> Progress {
        self.needs_watch = false;
        let progress = self.check_all();
        if !self.needs_watch && !progress.missing.is_empty() {
            // Everything pending is a running predecessor, whose lock wakes us: no instance held.
            if let Some(inotify) = self.inotify.take() {
                inotify.close();
            }
        }
        progress
    }

    fn check_all(&mut self) -> Progress {
        let mut progress = Progress::default();
        let mut i = 0;
        while i < self.conds.len() {
            let cond = self.conds[i].clone();
            match self.check_one(&cond) {
                Check::Met => {
                    self.troubled.remove(&cond.describe());
                    self.conds.remove(i);
                    continue;
                }
                Check::Pending => progress.missing.push(cond.describe()),
                Check::NotStarted => {
                    progress.missing.push(cond.describe());
                    if let Cond::Step { name, .. } = &cond {
                        progress.not_started.push(name.clone());
                    }
                }
                Check::Retry => {
                    progress.missing.push(cond.describe());
                    progress.retry = true;
                }
                Check::End(end) => progress.ends.push(end),
            }
            i += 1;
        }
        progress
    }

    /// The descriptors that become readable when something may have changed.
    pub fn fds(&self) -> Vec<BorrowedFd<'_>> {
        let mut fds = vec![self.wake_read.as_fd()];
        fds.extend(self.inotify.as_ref().map(sys::Inotify::fd));
        fds
    }

    /// How often to re-check without being told: only when inotify is not available.
    pub fn recheck_interval(&self) -> Option<Duration> {
        (!self.watching).then_some(FALLBACK_INTERVAL)
    }

    /// Consumes the wake-ups, after a poll.
    pub fn clear(&self) {
        for fd in self.fds() {
            sys::drain(fd);
        }
    }

    fn check_one(&mut self, cond: &Cond) -> Check {
        match cond {
            Cond::Step { name, any_end } => self.check_step(name, *any_end),
            Cond::File(p) | Cond::NonEmpty(p) => {
                self.watch_path(p);
                let found = match fs::metadata(p) {
                    Ok(m) => Ok(!matches!(cond, Cond::NonEmpty(_)) || m.len() > 0),
                    Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) => Ok(false),
                    Err(e) => Err(e),
                };
                match found {
                    Ok(yes) => met(yes),
                    Err(e) => self.trouble(cond, e, || format!("cannot look at {}", p.display())),
                }
            }
            Cond::Gate(name) => {
                let gate = self.layout.gate(name);
                self.watch_file(&gate);
                match fs::symlink_metadata(&gate) {
                    Ok(_) => Check::Met,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Check::Pending,
                    Err(e) => self.trouble(cond, e, || format!("cannot look at the gate {}", gate.display())),
                }
            }
        }
    }

    /// Lock first: a running predecessor is waited for on its lock alone (no watch). A step not
    /// started yet is watched for, then looked at once more, so its start is never missed.
    fn check_step(&mut self, name: &str, any_end: bool) -> Check {
        let cond = Cond::Step { name: name.to_string(), any_end };
        let mut watched = false;
        loop {
            let folder = match self.step_folder(name) {
                Ok(f) => f,
                Err(e) => return self.trouble(&cond, e, || format!("cannot open the folder of step {name}")),
            };
            let holder = match &folder {
                None => Ok(Holder::Absent),
                Some(folder) => self.holder(folder),
            };
            let holder = match holder {
                Ok(h) => h,
                Err(e) if folder::is_transient(&e) => return self.trouble(&cond, e, String::new),
                Err(e) => return self.persistent(name, format!("its lock cannot be used ({e})")),
            };
            if holder != Holder::Absent || watched {
                // A record is published before its wrapper lets go of the lock: read it now.
                let end = match &folder {
                    Some(folder) => self.read_end(folder, name, any_end),
                    None => None,
                };
                return match (end, holder) {
                    (Some(check), _) => check,
                    (None, Holder::Gone) => Check::End(WaitEnd::PredecessorLost { step: name.to_string() }),
                    (None, Holder::Alive) => Check::Pending,
                    (None, Holder::Absent) if folder.is_none() => Check::NotStarted,
                    (None, Holder::Absent) => Check::Pending,
                };
            }
            self.watch_with(&self.layout.exit(name), sys::WATCH_STEP);
            watched = true;
        }
    }

    /// The folder of step `name`, without following links; None when no baton has made it yet.
    fn step_folder(&self, name: &str) -> io::Result<Option<Folder>> {
        let steps = match Folder::open_to_read(&self.layout.steps()) {
            Ok(s) => s,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        match steps.sub(name) {
            Ok(f) => Ok(Some(f)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Who holds the lock in a step's folder; a living holder gets a parked thread.
    fn holder(&mut self, folder: &Folder) -> io::Result<Holder> {
        let (lock, st) = match folder.open_file(LOCK_FILE) {
            Ok((f, st)) if st.st_uid == folder.owner() => (f, st),
            Ok((_, st)) => {
                return Err(io::Error::other(format!(
                    "it belongs to UID {}, not to UID {}, the owner of its folder",
                    st.st_uid,
                    folder.owner()
                )))
            }
            Err(ReadError::Missing) => return Ok(Holder::Absent),
            Err(ReadError::Io(e)) => return Err(e),
            Err(other) => return Err(io::Error::other(other.to_string())),
        };
        self.hold(lock, (st.st_dev, st.st_ino))
    }

    /// Who holds the liveness lock at `path` (see [`folder::create_locked`]). While its holder
    /// lives, a thread is parked on the lock and wakes this waiter the moment the holder dies.
    /// Only a missing file is "absent": any other error is the caller's to judge.
    pub fn lock_holder(&mut self, path: &Path) -> io::Result<Holder> {
        let (dir, name) = folder::split(path)?;
        match dir.open_file(&name) {
            Ok((lock, st)) => self.hold(lock, (st.st_dev, st.st_ino)),
            Err(ReadError::Missing) => Ok(Holder::Absent),
            Err(ReadError::Io(e)) => Err(e),
            Err(other) => Err(io::Error::other(other.to_string())),
        }
    }

    /// `key`: the lock file's (device, inode), from the `fstat` that opened it.
    fn hold(&mut self, lock: File, key: (u64, u64)) -> io::Result<Holder> {
        match folder::probe(lock)? {
            None => Ok(Holder::Gone),
            Some(lock) => {
                if self.parked.insert(key) {
                    self.park(lock);
                }
                Ok(Holder::Alive)
            }
        }
    }

    /// The verdict from a predecessor's record, or None if it has none yet.
    fn read_end(&mut self, folder: &Folder, name: &str, any_end: bool) -> Option<Check> {
        let cond = Cond::Step { name: name.to_string(), any_end };
        let bytes = match folder.read(EXIT_FILE, crate::stepdir::RECORD_CAP, true) {
            Ok(b) => b,
            Err(ReadError::Missing) => return None,
            Err(ReadError::Io(e)) if folder::is_transient(&e) => return Some(self.trouble(&cond, e, String::new)),
            Err(e) => return Some(self.persistent(name, format!("its record {} cannot be used: {e}", folder.join(EXIT_FILE).display()))),
        };
        self.troubled.remove(&cond.describe());
        let decoded = std::str::from_utf8(&bytes).map_err(|e| e.to_string()).and_then(|t| message::decode(t).map_err(|e| e.to_string()));
        Some(match decoded {
            Ok(record) if any_end || record.reason.is_success() => Check::Met,
            Ok(record) => Check::End(WaitEnd::PredecessorFailed {
                step: name.to_string(),
                reason: record.reason,
                exit_code: record.exit_code,
                detail: None,
            }),
            Err(e) => self.persistent(name, format!("its record {} is not a baton record ({e})", folder.join(EXIT_FILE).display())),
        })
    }

    fn persistent(&self, name: &str, why: String) -> Check {
        Check::End(WaitEnd::Error {
            sentence: format!(
                "cannot tell how step {name} ended: {why}; only its own baton writes its folder, so check what else \
                 writes to {}",
                self.layout.root().display()
            ),
        })
    }

    /// A transient error is retried for [`RETRY_FOR`]; after that, or for any other error, it ends
    /// the wait with its sentence. Never is an error taken for a step's end or for "not started".
    fn trouble(&mut self, cond: &Cond, e: io::Error, what: impl FnOnce() -> String) -> Check {
        let key = cond.describe();
        if folder::is_transient(&e) {
            let since = *self.troubled.entry(key).or_insert_with(Instant::now);
            if since.elapsed() < RETRY_FOR {
                return Check::Retry;
            }
        }
        let what = what();
        let what = if what.is_empty() { format!("cannot look at {}", cond.describe()) } else { what };
        Check::End(WaitEnd::Error { sentence: format!("{what}: {e}{}", limit_hint(&e)) })
    }

    /// Parks a thread on a living predecessor's lock; it wakes the loop when that wrapper lets go.
    fn park(&mut self, lock: File) {
        let wake = Arc::clone(&self.wake_write);
        let spawned = std::thread::Builder::new()
            .name("lock-watch".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                let _ = folder::wait_unlocked(lock);
                let _ = sys::write_all(wake.as_fd(), b"x");
            });
        if spawned.is_err() {
            // Without the thread, fall back to re-checking on a timer.
            self.watching = false;
        }
    }

    /// Watches the folders on the way to `path` and to every hop of its chain of symbolic links.
    fn watch_path(&mut self, path: &Path) {
        let mut hop = absolute(path);
        for _ in 0..MAX_LINK_HOPS {
            self.watch_file(&hop);
            let Ok(target) = fs::read_link(&hop) else { break };
            hop = hop.parent().unwrap_or(Path::new("/")).join(target);
        }
    }

    /// Watches the deepest existing folder on the way to `file`.
    fn watch_file(&mut self, file: &Path) {
        self.watch_with(file, self.watch_mask);
    }

    fn watch_with(&mut self, file: &Path, mask: AddWatchFlags) {
        self.needs_watch = true;
        if !self.watching {
            return;
        }
        let Some(dir) = file.parent() else { return };
        if self.inotify.is_none() {
            match sys::Inotify::new() {
                Ok(i) => self.inotify = Some(i),
                Err(e) => {
                    fallback_notice(&e);
                    self.watching = false;
                    return;
                }
            }
        }
        let watched = self.inotify.as_ref().map_or(Ok(()), |inotify| watch_deepest(inotify, dir, mask));
        if let Err(e) = watched {
            fallback_notice(&e);
            self.watching = false;
        }
    }
}

impl Drop for Waiter<'_> {
    /// The wait is over (or the step is): an instance still open is left to the process's exit.
    fn drop(&mut self) {
        if let Some(inotify) = self.inotify.take() {
            inotify.keep();
        }
    }
}

fn met(yes: bool) -> Check {
    if yes {
        Check::Met
    } else {
        Check::Pending
    }
}

/// A hint for errors that come from a limit.
fn limit_hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EMFILE) => " (this process has no file descriptors left: raise its limit, ulimit -n)",
        Some(libc::ENFILE) => " (the node has no file descriptors left: fs.file-max)",
        Some(libc::ENOMEM) => " (out of memory: raise the container's memory limit)",
        _ => "",
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
fn watch_deepest(inotify: &sys::Inotify, dir: &Path, mask: AddWatchFlags) -> io::Result<()> {
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
    static SAID: std::sync::Once = std::sync::Once::new();
    SAID.call_once(|| {
        let why = sys::Inotify::explain(e);
        eprintln!("baton: cannot watch for changes: {why}; checking every {}ms instead", FALLBACK_INTERVAL.as_millis());
    });
}

/// Why a step is lost. It does not guess the cause: an OOM kill, an eviction and a shared folder
/// that could not be written (a full volume) all look the same from here.
pub const LOST_WHY: &str = "its baton died without writing a record (its container was killed, e.g. OOM-killed, \
                            or the shared folder could not be written; that container's termination message and \
                            log say which)";

/// Why a step's successors see it as lost.
pub fn lost_sentence(step: &str) -> String {
    format!("step {step} was lost: {LOST_WHY}")
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
            eprintln!("baton: {}", lost_sentence(&step));
            EXIT_BATON_FAILED
        }
        Ok(WaitEnd::Error { sentence }) => {
            eprintln!("baton: {sentence}");
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
