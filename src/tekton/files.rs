//! The files a Tekton step waits on and writes: wait files with their `.err` skip rule, the post
//! file, and baton's claim beside it (its lock and beacon, see `crate::liveness`).
//!
//! Waiting reuses baton's [`Waiter`] for its inotify set-up (watches first, then the check, so no
//! change is missed; symlink swaps of downward-API volumes followed; a 500 ms re-check when inotify
//! cannot be had) and applies Tekton's rule itself: the files are taken one after another; a file
//! that is missing (or empty, with `-wait_file_content`) while `<file>.err` exists skips the step.
//!
//! Predecessor lost: a baton step holds `<post_file>.baton-lock` and the beacon
//! `<post_file>.baton-alive` for its whole life. A successor waiting on that post file finds the
//! beacon hung up, and neither the post file nor its `.err`, only when the predecessor's wrapper
//! died without writing either (its container was OOM-killed or killed): it then skips at once
//! instead of waiting until the TaskRun times out. Predecessors that are not baton leave no beacon
//! and are waited for as Tekton waits; so is one whose beacon cannot be read.

use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use baton_contract::layout::Layout;

use crate::signals::Signals;
use crate::folder;
use crate::liveness::{self, Alive};
use crate::sys;
use crate::wait::{Cond, Holder, Waiter};

/// `path` with `suffix` appended to its last component (`out` → `out.err`).
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = OsString::from(path.as_os_str());
    s.push(suffix);
    PathBuf::from(s)
}

pub fn lock_path(post_file: &Path) -> PathBuf {
    with_suffix(post_file, ".baton-lock")
}

pub fn beacon_path(post_file: &Path) -> PathBuf {
    with_suffix(post_file, ".baton-alive")
}

/// How waiting ended.
#[derive(Debug)]
pub enum Waited {
    Ready,
    /// Tekton's skip: a `.err` file (or, baton's addition, a lost predecessor). The sentence says which.
    Skip(String),
    /// Tekton's other wait error: a file that cannot be looked at.
    Failed(String),
    /// A stop signal arrived while waiting.
    Signal(i32),
}

pub struct Wait<'a> {
    pub files: &'a [PathBuf],
    /// `-wait_file_content`: a file must also be non-empty.
    pub content: bool,
    /// `-breakpoint_on_failure`: a `.err` file counts as go.
    pub err_is_go: bool,
    /// Look for a predecessor's liveness lock beside each file.
    pub lost_check: bool,
}

impl Wait<'_> {
    /// Waits for the files, one after another, by Tekton's rule.
    pub fn run(&self, signals: &mut Signals, layout: &Layout) -> Waited {
        let files: Vec<&PathBuf> = self.files.iter().filter(|f| !f.as_os_str().is_empty()).collect();
        if files.is_empty() {
            return Waited::Ready;
        }
        let conds = files
            .iter()
            .map(|f| if self.content { Cond::NonEmpty((*f).clone()) } else { Cond::File((*f).clone()) })
            .collect();
        let waited = Waiter::new(layout, conds).and_then(|mut waiter| self.wait(&files, &mut waiter, signals));
        waited.unwrap_or_else(|e| Waited::Failed(format!("waiting failed: {e}")))
    }

    fn wait(&self, files: &[&PathBuf], waiter: &mut Waiter, signals: &mut Signals) -> io::Result<Waited> {
        loop {
            // Watches first (the Waiter's check sets them up), then Tekton's rule on the files.
            let _ = waiter.check();
            if let Some(end) = self.evaluate(files, waiter) {
                return Ok(end);
            }
            let mut fds = vec![signals.fd()];
            fds.extend(waiter.fds());
            sys::poll(&fds, waiter.recheck_interval())?;
            if let Some(signal) = signals.take_while_waiting()? {
                return Ok(Waited::Signal(signal));
            }
            waiter.clear();
        }
    }

    /// Tekton's rule, file after file. None: still waiting.
    fn evaluate(&self, files: &[&PathBuf], waiter: &mut Waiter) -> Option<Waited> {
        for file in files {
            match self.present(file) {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => return Some(Waited::Failed(format!("waiting for {:?}: {e}", file.display().to_string()))),
            }
            let err_file = with_suffix(file, ".err");
            if err_file.exists() {
                if self.err_is_go {
                    continue;
                }
                return Some(Waited::Skip(format!("{} exists: a previous step failed", err_file.display())));
            }
            // A missing lock: not started yet, or not baton.
            if self.lost_check && matches!(waiter.beacon_at(&beacon_path(file)), Ok(Holder::Gone)) {
                // The wrapper is gone; it may have written one of its files just before it went.
                if self.present(file).unwrap_or(false) || (self.err_is_go && err_file.exists()) {
                    continue;
                }
                if err_file.exists() {
                    return Some(Waited::Skip(format!("{} exists: a previous step failed", err_file.display())));
                }
                return Some(Waited::Skip(format!(
                    "the step that writes {} ended without writing it or {} (its container was killed, e.g. \
                     OOM-killed)",
                    file.display(),
                    err_file.display()
                )));
            }
            return None;
        }
        Some(Waited::Ready)
    }

    fn present(&self, file: &Path) -> io::Result<bool> {
        match fs::metadata(file) {
            Ok(m) => Ok(!self.content || m.len() > 0),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// This step's claim beside its post file, held until the process ends.
pub struct PostLock {
    _alive: Alive,
}

impl PostLock {
    /// Takes `<post_file>.baton-lock` and raises `<post_file>.baton-alive`. The beacon appears
    /// already held open, so a successor never mistakes a starting step for a dead one. Best effort.
    pub fn claim(post_file: &Path) -> Option<PostLock> {
        let path = lock_path(post_file);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = fs::create_dir_all(dir);
        }
        let (dir, lock) = folder::split(&path).ok()?;
        let beacon = beacon_path(post_file);
        let beacon = beacon.file_name()?.to_str()?;
        let alive = liveness::claim(&dir, &lock, beacon).ok()??;
        Some(PostLock { _alive: alive })
    }
}

/// Tekton's post writer: creates the parent folders, then the file (empty, or with `content`).
/// Files with content appear by rename, so a reader never sees a part of one.
pub fn write_post(path: &Path, content: &str) -> io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    if content.is_empty() {
        OpenOptions::new().write(true).create(true).truncate(true).mode(0o666).open(path).map(drop)
    } else {
        crate::folder::write_atomically(path, content.as_bytes(), 0o644)
    }
}

/// Creates the folder `path` with exactly `mode` unless it exists (as a folder, or a link to one).
pub fn make_dir(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    match fs::DirBuilder::new().mode(mode).create(path) {
        Ok(()) => fs::set_permissions(path, fs::Permissions::from_mode(mode)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}
