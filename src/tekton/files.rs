//! The files a Tekton step waits on and writes: wait files with their `.err` skip rule, the post
//! file, and baton's claim beside it (its lock and beacon, see `crate::liveness`); the output
//! copies. None is written through a link.
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
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use baton_contract::layout::Layout;

use crate::signals::Signals;
use crate::folder::Folder;
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
    /// Takes `<post_file>.baton-lock` and raises `<post_file>.baton-alive`, in the post file's
    /// folder made as for the post file itself (no link followed, see [`parent_folder`]). The beacon
    /// appears already held open, so a successor never mistakes a starting step for a dead one.
    /// Best effort.
    pub fn claim(root: &Path, post_file: &Path) -> Option<PostLock> {
        let (dir, lock) = parent_folder(root, &lock_path(post_file)).ok()?;
        let beacon = beacon_path(post_file);
        let beacon = beacon.file_name()?.to_str()?;
        let alive = liveness::claim(&dir, &lock, beacon).ok()??;
        Some(PostLock { _alive: alive })
    }
}

/// Folders made for a post file, the step's metadata folders or an output copy: Tekton's `MkdirAll`
/// (0777 less the usual umask 022).
const PARENT_MODE: u32 = 0o755;

/// Opens the folder `dir`, making what is missing of it as Tekton's `MkdirAll` does. Other steps
/// can write these folders (`/tekton/run`, a workspace), so no link is followed: below the Tekton
/// root `root` (the pod author's, opened as given) for a folder under it, from `/` (or the working
/// folder) for any other.
pub fn make_folders(root: &Path, dir: &Path) -> io::Result<Folder> {
    let (base, below) = match dir.strip_prefix(root) {
        Ok(below) => (root, below),
        Err(_) => match dir.strip_prefix("/") {
            Ok(below) => (Path::new("/"), below),
            Err(_) => (Path::new("."), dir),
        },
    };
    Folder::open(base)?.ensure_path(below, PARENT_MODE)
}

/// The folder that holds `path` (made by [`make_folders`]) and the file's name.
pub fn parent_folder(root: &Path, path: &Path) -> io::Result<(Folder, String)> {
    let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, format!("{} names no file; give a file's path", path.display()))
    })?;
    Ok((make_folders(root, path.parent().unwrap_or(Path::new("")))?, name.to_string()))
}

/// Tekton's post writer (for `exitCode` and `usage.json` too): creates the parent folders, then
/// the file (empty, or with `content`), never through a link (see [`parent_folder`]). Files with
/// content appear by rename, so a reader never sees a part of one.
pub fn write_post(root: &Path, path: &Path, content: &str) -> io::Result<()> {
    let (dir, name) = parent_folder(root, path)?;
    if content.is_empty() {
        dir.open_for_writing(&name, 0o666, false).map(drop).map_err(|e| link_refused(path, e))
    } else {
        dir.write_atomically(&name, content.as_bytes(), 0o644)
    }
}

/// An output copy (`-stdout_path`, `-stderr_path`), appended to. Its folders are made as for the
/// post file, without following links; a FIFO nobody reads is a sentence, not a hang.
pub fn open_tee(root: &Path, path: Option<&Path>) -> Result<Option<File>, String> {
    let Some(path) = path else { return Ok(None) };
    let (dir, name) =
        parent_folder(root, path).map_err(|e| format!("error creating parent directory of {}: {e}", path.display()))?;
    dir.open_for_writing(&name, 0o644, true).map(Some).map_err(|e| match e.raw_os_error() {
        Some(libc::ENXIO) => {
            format!(
                "cannot open {}: it is a FIFO that nobody reads; start its reader first, or give a regular file",
                path.display()
            )
        }
        _ => format!("error opening {}: {}", path.display(), link_refused(path, e)),
    })
}

/// ELOOP from opening `path` without following links, said as what it is.
pub fn link_refused(path: &Path, e: io::Error) -> io::Error {
    if e.raw_os_error() != Some(libc::ELOOP) {
        return e;
    }
    io::Error::other(format!(
        "{} is a symbolic link, which baton does not write through where other steps can write; remove it",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn parent_folders_are_made_below_the_root_and_never_through_a_link() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("tekton");
        fs::create_dir(&root).unwrap();
        let (dir, name) = parent_folder(&root, &root.join("run/1/out")).unwrap();
        assert_eq!((dir.path(), name.as_str()), (root.join("run/1").as_path(), "out"));
        assert_eq!(fs::metadata(root.join("run/1")).unwrap().permissions().mode() & 0o7777, PARENT_MODE);

        std::os::unix::fs::symlink(tmp.path(), root.join("run/2")).unwrap();
        let e = parent_folder(&root, &root.join("run/2/sub/out")).unwrap_err();
        assert!(e.to_string().contains("run/2 is a symbolic link"), "{e}");
        assert!(!tmp.path().join("sub").exists(), "made through the link");

        let e = parent_folder(&root, &root.join("run/../../out")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
    }
}
