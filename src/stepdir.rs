//! A named step's folder in the shared directory: claiming it, saying what the wrapper is doing, and
//! publishing the exit record that releases the steps after it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use baton_contract::control::Request;
use baton_contract::layout::{Layout, PROTOCOL_VERSION};
use baton_contract::state::{Phase, StepState};

use crate::clock;
use crate::sys;

/// Shared folders are world-writable and sticky (like /tmp): steps of a pod may run as different UIDs.
pub const SHARED_DIR_MODE: u32 = 0o1777;

/// Creates `dir` (and its parents) if missing, open to every UID. The folder is born with its final
/// mode, so a wrapper of another UID never finds it closed.
pub fn ensure_shared_dir(dir: &Path) -> io::Result<()> {
    match sys::mkdir_exact(dir, SHARED_DIR_MODE) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = dir.parent() {
                fs::create_dir_all(parent)?;
            }
            ensure_shared_dir(dir)
        }
        Err(e) => Err(e),
    }
}

/// Creates `path` already locked (`flock` LOCK_EX, held while the returned file is open): it is
/// locked under a temporary name, then renamed into place, so nobody ever sees it unlocked and
/// takes a starting wrapper for a dead one. The descriptor is close-on-exec (std's default), so
/// the command does not inherit the lock.
pub fn create_locked(path: &Path, mode: u32) -> io::Result<File> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("lock");
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", sys::getpid()));
    let file = OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(&tmp)?;
    let locked = sys::flock(file.as_raw_fd(), true, false)
        .and_then(|got| if got { Ok(()) } else { Err(io::ErrorKind::WouldBlock.into()) });
    if let Err(e) = locked.and_then(|()| fs::rename(&tmp, path)) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(file)
}

/// Writes `content` to `path` through a temporary file in the same folder and a rename, so a reader
/// sees the old file or the whole new one, never a part.
pub fn write_atomically(path: &Path, content: &[u8], mode: u32) -> io::Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", sys::getpid()));
    let mut f = OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(&tmp)?;
    let written = f.write_all(content).and_then(|()| f.set_permissions(fs::Permissions::from_mode(mode)));
    if let Err(e) = written.and_then(|()| fs::rename(&tmp, path)) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(())
}

/// A claimed step folder. The wrapper holds an exclusive flock on `lock` for as long as it lives:
/// when it dies, however it dies, the kernel drops the lock and waiters learn of it at once.
pub struct StepDir {
    layout: Layout,
    name: String,
    _lock: File,
    /// The read side of the `control` FIFO, opened read-write so it never reports end of file.
    control: File,
    phase: Option<Phase>,
}

impl StepDir {
    /// Claims the folder of step `name`. Fails if a living wrapper already owns it.
    pub fn claim(layout: &Layout, name: &str) -> Result<StepDir> {
        let steps = layout.steps();
        ensure_shared_dir(&steps).with_context(|| {
            format!(
                "cannot create the shared folder {}: mount a writable emptyDir at {} or pass --dir",
                steps.display(),
                layout.root().display()
            )
        })?;
        let folder = layout.step(name);
        ensure_shared_dir(&folder).with_context(|| format!("cannot create the step folder {}", folder.display()))?;

        let lock_path = layout.lock(name);
        if let Ok(existing) = File::open(&lock_path) {
            if !sys::flock(existing.as_raw_fd(), false, false)? {
                bail!(
                    "step name {name:?} is taken: another living baton already runs it in {}; give every \
                     step of the pod its own --name",
                    layout.root().display()
                );
            }
        }
        // A record left by an earlier run of this step (a restarted container) is stale now.
        match fs::remove_file(layout.exit(name)) {
            Ok(()) => eprintln!("baton: step {name:?} had ended before; running it again"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).context(format!("cannot remove the old record of step {name:?}")),
        }
        let control = open_control(&layout.control(name))?;
        let lock = create_locked(&lock_path, 0o444).with_context(|| format!("cannot create {}", lock_path.display()))?;
        Ok(StepDir { layout: layout.clone(), name: name.to_string(), _lock: lock, control, phase: None })
    }

    /// The control FIFO's descriptor, to poll.
    pub fn control_fd(&self) -> RawFd {
        self.control.as_raw_fd()
    }

    /// The requests waiting in the control FIFO.
    pub fn requests(&self) -> Vec<Request> {
        let mut buf = [0u8; 4096];
        let mut text = Vec::new();
        loop {
            let n = unsafe { libc::read(self.control.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                break;
            }
            text.extend_from_slice(&buf[..n as usize]);
        }
        let text = String::from_utf8_lossy(&text);
        text.lines()
            .filter_map(|line| {
                let request = Request::parse(line);
                if request.is_none() {
                    eprintln!("baton: ignoring an unknown control request {line:?}");
                }
                request
            })
            .collect()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Records what the wrapper does now, for `baton status`. Best effort: a status file that cannot
    /// be written must not stop the step.
    pub fn set_state(&mut self, phase: Phase, child_pid: Option<u32>, waiting_for: &[String], exit_code: Option<i32>) {
        let state = StepState {
            baton: PROTOCOL_VERSION,
            step: self.name.clone(),
            state: phase,
            since: clock::now_rfc3339(),
            pid: std::process::id(),
            child_pid,
            waiting_for: waiting_for.to_vec(),
            exit_code,
        };
        let json = serde_json::to_vec(&state).expect("state serializes");
        if let Err(e) = write_atomically(&self.layout.state(&self.name), &json, 0o644) {
            if self.phase.is_none() {
                eprintln!("baton: cannot write the state of step {:?}: {e}", self.name);
            }
        }
        self.phase = Some(phase);
    }

    /// Publishes the exit record: the marker the steps after this one wait for.
    pub fn publish(&self, record_json: &str) -> io::Result<PathBuf> {
        let path = self.layout.exit(&self.name);
        write_atomically(&path, record_json.as_bytes(), 0o644)?;
        let _ = fs::remove_file(self.layout.state(&self.name));
        let _ = fs::remove_file(self.layout.control(&self.name));
        Ok(path)
    }
}

/// Creates the control FIFO (writable by every UID: `kubectl exec` may run as another user) and opens
/// it without blocking.
fn open_control(path: &Path) -> Result<File> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_fifo() => {}
        Ok(_) => {
            fs::remove_file(path).with_context(|| format!("cannot replace {}", path.display()))?;
            sys::mkfifo(path, 0o622).with_context(|| format!("cannot create the FIFO {}", path.display()))?;
        }
        Err(_) => sys::mkfifo(path, 0o622).with_context(|| format!("cannot create the FIFO {}", path.display()))?,
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .with_context(|| format!("cannot open the FIFO {}", path.display()))
}
