//! A named step's folder in the shared directory: claiming it, saying what the wrapper is doing, and
//! publishing the exit record that releases the steps after it.
//!
//! Trust (docs/protocol.md): `steps/` and `gates/` are world-writable and sticky, so any UID may add
//! an entry but only its owner may remove or rename it. A step's own folder is writable by its
//! wrapper alone: no other UID can plant, replace or fake anything in it. Every access goes through
//! [`Folder`]: no link is followed, every file is created `O_EXCL` with an explicit mode.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use baton_contract::control::Request;
use baton_contract::layout::{
    Layout, BEACON_FILE, CONTROL_FIFO, EXIT_FILE, GATES_DIR, LOCK_FILE, PROTOCOL_VERSION, STATE_FILE, STEPS_DIR,
};
use baton_contract::state::{Phase, StepState};

use crate::clock;
use crate::folder::{Folder, Spare};
use crate::liveness::{self, Alive};

/// `steps/` and `gates/`: every UID may add an entry, only its owner may remove or rename it.
pub const SHARED_DIR_MODE: u32 = 0o1777;
/// A step's own folder: only its wrapper writes there.
pub const STEP_DIR_MODE: u32 = 0o755;
/// `state.json`, `exit.json`, gates.
pub const RECORD_MODE: u32 = 0o644;
/// The control FIFO: `baton kill` may come in as any UID.
pub const CONTROL_MODE: u32 = 0o622;
/// The `state.json` writes that follow the wait: "running", then "running" with the pid.
const STATE_SPARES: usize = 2;
/// A step folder's private sub-folder for temporary files (0700).
pub const SCRATCH_DIR: &str = ".tmp";

/// The most bytes of `state.json` a reader takes (a fan-in of hundreds of steps fits).
pub const STATE_CAP: u64 = 64 * 1024;
/// The most bytes of `exit.json`: a record is never larger than a termination message.
pub const RECORD_CAP: u64 = baton_contract::message::KUBELET_FILE_LIMIT as u64;

/// Opens the shared directory's root, creating it if it is missing (outside a pod).
pub fn open_root(layout: &Layout) -> Result<Folder> {
    let root = layout.root();
    if !root.exists() {
        let _ = std::fs::create_dir_all(root);
    }
    Folder::open(root).with_context(|| {
        format!("cannot open the shared folder {}: mount a writable emptyDir there or pass --dir", root.display())
    })
}

/// Opens `name` (`steps` or `gates`) under the root, creating it 1777 if missing. A symbolic link
/// there is refused, and so is a folder others can write without the sticky bit (unless it is ours,
/// then it is fixed): either would let one step replace another's entries.
pub fn shared_folder(root: &Folder, name: &str) -> Result<Folder> {
    let path = root.join(name);
    let (mut dir, _) = root.ensure_sub(name, SHARED_DIR_MODE).map_err(|e| match e.raw_os_error() {
        Some(libc::ENOTDIR) | Some(libc::ELOOP) => anyhow!(
            "{} is a symbolic link or not a folder; refusing to follow it (another container may have planted \
             it): let baton init create it in a fresh emptyDir",
            path.display()
        ),
        _ => anyhow!(
            "cannot create the shared folder {}: {e}; mount a writable emptyDir at {} or pass --dir",
            path.display(),
            root.path().display()
        ),
    })?;
    let open_to_others = dir.mode() & 0o002 != 0;
    if open_to_others && dir.mode() & 0o1000 == 0 {
        if dir.owner() != nix::unistd::geteuid().as_raw() {
            return Err(anyhow!(
                "{} is writable by every UID but lacks the sticky bit, and belongs to UID {}: any step could \
                 replace another's files; recreate it with mode 1777 (baton init does)",
                path.display(),
                dir.owner()
            ));
        }
        dir.set_mode(SHARED_DIR_MODE).with_context(|| format!("cannot set mode 1777 on {}", path.display()))?;
    }
    Ok(dir)
}

/// Why a step could not be claimed.
#[derive(Debug)]
pub enum ClaimError {
    /// A living baton already runs a step of this name: this one must not touch its files.
    Taken(String),
    /// The folder cannot be used (another UID owns it, the shared folder is unusable, …).
    Unusable(anyhow::Error),
}

impl std::fmt::Display for ClaimError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            ClaimError::Taken(s) => f.write_str(s),
            ClaimError::Unusable(e) => write!(f, "{e:#}"),
        }
    }
}

/// A claimed step folder. The wrapper holds its claim (the lock, and the beacon waiters poll: see
/// `crate::liveness`) until it has published its record: when it dies, however it dies, the kernel
/// closes the beacon and waiters learn of it at once.
pub struct StepDir {
    layout: Layout,
    name: String,
    folder: Folder,
    alive: Option<Alive>,
    /// The read side of the `control` FIFO, opened read-write so it never reports end of file.
    control: File,
    /// A request line cut by the end of a read.
    partial: Vec<u8>,
    noise: Noise,
    phase: Option<Phase>,
    /// Temporary files made ahead of time for the next `state.json` writes and for `exit.json`, so
    /// that the writes on the way from one step to the next create no file (see `Folder::spare`):
    /// "running" just before the spawn and "running" with the pid just after it (with a quick
    /// command, that one too precedes the record).
    state_spares: Vec<Spare>,
    record_spare: Option<Spare>,
}

impl StepDir {
    /// Claims the folder of step `name`: atomically, so of two wrappers with one name exactly one
    /// runs; never a folder another UID made.
    pub fn claim(layout: &Layout, name: &str) -> Result<StepDir, ClaimError> {
        let unusable = ClaimError::Unusable;
        let root = open_root(layout).map_err(unusable)?;
        let steps = shared_folder(&root, STEPS_DIR).map_err(unusable)?;
        let path = steps.join(name);
        let (mut folder, created) = steps.ensure_sub(name, STEP_DIR_MODE).map_err(|e| {
            unusable(anyhow!("cannot create the step folder {} ({e}); is it a symbolic link?", path.display()))
        })?;
        let me = nix::unistd::geteuid().as_raw();
        if !created && folder.owner() != me {
            return Err(unusable(anyhow!(
                "the folder of step {name} ({}) belongs to UID {}, but this baton runs as UID {me}: another \
                 container claimed the name {name} first; give every step of the pod its own --name",
                path.display(),
                folder.owner()
            )));
        }
        if folder.mode() != STEP_DIR_MODE {
            // Left by an older baton (1777) or a restrictive umask: only the owner writes here.
            folder.set_mode(STEP_DIR_MODE).map_err(|e| unusable(anyhow!("cannot set the mode of {}: {e}", path.display())))?;
        }
        // Temporary files are made in a private sub-folder and renamed in: a successor watching this
        // folder wakes for the record itself, not for every file on its way.
        let scratch = folder
            .ensure_sub(SCRATCH_DIR, 0o700)
            .map_err(|e| unusable(anyhow!("cannot create {}: {e}", path.join(SCRATCH_DIR).display())))?
            .0;
        let folder = folder.with_scratch(scratch);
        let alive = match liveness::claim(&folder, LOCK_FILE, BEACON_FILE) {
            Ok(Some(alive)) => alive,
            Ok(None) => {
                return Err(ClaimError::Taken(format!(
                    "step name {name:?} is taken: another living baton already runs it in {}; give every step of \
                     the pod its own --name",
                    layout.root().display()
                )))
            }
            Err(e) => return Err(unusable(anyhow!("cannot create the lock and beacon of step {name} in {}: {e}", path.display()))),
        };
        // What an earlier run of this step (a restarted container) left is stale now: its temporary
        // files, and its record.
        folder.clear_scratch();
        match folder.remove(EXIT_FILE) {
            Ok(()) => eprintln!("baton: step {name:?} had ended before; running it again"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(unusable(anyhow!("cannot remove the old record of step {name:?}: {e}"))),
        }
        let _ = folder.remove(STATE_FILE);
        let control = folder
            .fifo(CONTROL_FIFO, CONTROL_MODE)
            .map_err(|e| unusable(anyhow!("cannot create the FIFO {}: {e}", folder.join(CONTROL_FIFO).display())))?;
        let state_spares = (0..STATE_SPARES).filter_map(|_| folder.spare(STATE_FILE, RECORD_MODE).ok()).collect();
        let record_spare = folder.spare(EXIT_FILE, RECORD_MODE).ok();
        Ok(StepDir {
            layout: layout.clone(),
            name: name.to_string(),
            folder,
            alive: Some(alive),
            control,
            partial: Vec::new(),
            noise: Noise::default(),
            phase: None,
            state_spares,
            record_spare,
        })
    }

    /// The control FIFO's descriptor, to poll.
    pub fn control_fd(&self) -> BorrowedFd<'_> {
        self.control.as_fd()
    }

    /// The requests waiting in the control FIFO. Reads at most one buffer a call, so a flood of
    /// writes can never hold the caller's loop (it comes back to its signals between two reads).
    pub fn requests(&mut self) -> Vec<Request> {
        let mut buf = [0u8; 16 * 1024];
        let n = match (&self.control).read(&mut buf) {
            Ok(n) => n,
            Err(_) => return Vec::new(), // WouldBlock: nothing there
        };
        self.partial.extend_from_slice(&buf[..n]);
        let mut requests = Vec::new();
        let complete = self.partial.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        for line in self.partial[..complete].split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            match std::str::from_utf8(line).ok().and_then(Request::parse) {
                Some(r) => requests.push(r),
                None => self.noise.unknown(&self.name, line),
            }
        }
        self.partial.drain(..complete);
        if self.partial.len() > MAX_REQUEST_LINE {
            // No request is this long: a line without end is noise.
            let junk = std::mem::take(&mut self.partial);
            self.noise.unknown(&self.name, &junk);
        }
        requests
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Records what the wrapper does now, for `baton status`. Best effort: a status file that cannot
    /// be written must not stop the step.
    pub fn set_state(&mut self, phase: Phase, child_pid: Option<u32>, waiting: &WaitingFor, exit_code: Option<i32>) {
        let state = StepState {
            baton: PROTOCOL_VERSION,
            step: self.name.clone(),
            state: phase,
            since: clock::now_rfc3339(),
            pid: std::process::id(),
            child_pid,
            waiting_for: waiting.missing.clone(),
            not_started: waiting.not_started.clone(),
            exit_code,
        };
        let json = serde_json::to_vec(&state).expect("state serializes");
        let written = match self.state_spares.pop() {
            Some(spare) => self.folder.replace_with(spare, STATE_FILE, &json),
            None => self.folder.write_atomically(STATE_FILE, &json, RECORD_MODE),
        };
        if let Err(e) = written {
            if self.phase.is_none() {
                eprintln!("baton: cannot write the state of step {:?}: {e}", self.name);
            }
        }
        // Spares are made again only while waiting, never on the way to the command or the record.
        if phase == Phase::Waiting {
            while self.state_spares.len() < STATE_SPARES {
                match self.folder.spare(STATE_FILE, RECORD_MODE) {
                    Ok(spare) => self.state_spares.push(spare),
                    Err(_) => break,
                }
            }
        }
        self.phase = Some(phase);
    }

    /// Publishes the exit record (the marker the steps after this one wait for), then lets go of the
    /// claim at once, so a successor polling the beacon wakes now rather than when this process exits.
    pub fn publish(&mut self, record_json: &str) -> io::Result<()> {
        let published = match self.record_spare.take() {
            Some(spare) => self.folder.replace_with(spare, EXIT_FILE, record_json.as_bytes()),
            None => self.folder.write_atomically(EXIT_FILE, record_json.as_bytes(), RECORD_MODE),
        };
        if published.is_ok() {
            drop(self.alive.take());
        }
        // Off the handoff path: a status reader looks at exit.json first.
        let _ = self.folder.remove(STATE_FILE);
        let _ = self.folder.remove(CONTROL_FIFO);
        for spare in self.state_spares.drain(..) {
            self.folder.discard(spare);
        }
        published
    }

    /// Where the record goes, for messages.
    pub fn exit_path(&self) -> std::path::PathBuf {
        self.folder.join(EXIT_FILE)
    }
}

/// What a waiting wrapper still waits for, as `state.json` says it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WaitingFor {
    /// Every condition not met yet, described for people.
    pub missing: Vec<String>,
    /// Awaited steps that no baton has claimed yet (a typo in `--after` shows here).
    pub not_started: Vec<String>,
}

/// The longest request line; anything longer is noise.
const MAX_REQUEST_LINE: usize = 256;

/// Complaints about unknown control requests: at most one line a second, each cut short, so that
/// a flood of junk written into the FIFO cannot flood the container's log.
#[derive(Default)]
struct Noise {
    last: Option<Instant>,
    suppressed: u64,
}

impl Noise {
    fn unknown(&mut self, step: &str, line: &[u8]) {
        let now = Instant::now();
        if self.last.is_some_and(|t| now.duration_since(t).as_secs() < 1) {
            self.suppressed += 1;
            return;
        }
        let shown: String = String::from_utf8_lossy(&line[..line.len().min(60)]).escape_debug().collect();
        let more = if line.len() > 60 { "…" } else { "" };
        let earlier = match std::mem::take(&mut self.suppressed) {
            0 => String::new(),
            n => format!(" ({n} more ignored since the last notice)"),
        };
        eprintln!("baton: step {step}: ignoring an unknown control request \"{shown}{more}\"{earlier}");
        self.last = Some(now);
    }
}

/// The gates folder, for `baton release` and for waiters.
pub fn gates(layout: &Layout) -> Result<Folder> {
    let root = open_root(layout)?;
    shared_folder(&root, GATES_DIR)
}

/// The names of the steps that have a folder in the shared directory, sorted.
pub fn list_steps(layout: &Layout) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(layout.steps())
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| baton_contract::name::check_step(n).is_ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}
