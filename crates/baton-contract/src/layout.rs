//! The shared directory (an `emptyDir` mounted in every container of the pod), protocol version 1.
//!
//! ```text
//! $BATON_DIR/                   default /var/run/baton
//!   bin/baton                   the binary, copied by `baton init` (mode 0555)
//!   steps/<step>/               created by the step's wrapper when it starts (mode 1777)
//!     lock                      flock'ed LOCK_EX by the wrapper for its whole life: liveness
//!     state.json                what the wrapper is doing now (waiting / running / paused)
//!     exit.json                 the exit record; its appearance is the "step ended" marker
//!     control                   FIFO: requests to the wrapper (kill, resume), one line each
//!   gates/<step>                a released gate (`baton release`), remembered until read
//! ```
//!
//! Every file another process reads appears by `rename(2)` of a finished temporary file in the same
//! folder, so a reader sees nothing or everything. Temporary names start with `.`.

use std::path::{Path, PathBuf};

/// Version of this layout and of the records in it; also the `baton` field of every record.
pub const PROTOCOL_VERSION: u32 = 1;
/// The shared directory when neither `--dir` nor `BATON_DIR` says otherwise.
pub const DEFAULT_DIR: &str = "/var/run/baton";
/// Environment variable naming the shared directory.
pub const ENV_DIR: &str = "BATON_DIR";
/// Environment variable naming this container's step.
pub const ENV_STEP: &str = "BATON_STEP";

pub const STEPS_DIR: &str = "steps";
pub const GATES_DIR: &str = "gates";
pub const LOCK_FILE: &str = "lock";
/// The beacon: a FIFO only the step's wrapper holds open for writing, while it lives.
pub const BEACON_FILE: &str = "alive";
pub const STATE_FILE: &str = "state.json";
pub const EXIT_FILE: &str = "exit.json";
pub const CONTROL_FIFO: &str = "control";

/// Paths of the shared directory, rooted at `root`.
#[derive(Clone, Debug)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Layout { root: root.into() }
    }
    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn bin(&self) -> PathBuf {
        self.root.join("bin").join("baton")
    }
    pub fn steps(&self) -> PathBuf {
        self.root.join(STEPS_DIR)
    }
    pub fn step(&self, step: &str) -> PathBuf {
        self.steps().join(step)
    }
    pub fn lock(&self, step: &str) -> PathBuf {
        self.step(step).join(LOCK_FILE)
    }
    pub fn state(&self, step: &str) -> PathBuf {
        self.step(step).join(STATE_FILE)
    }
    pub fn exit(&self, step: &str) -> PathBuf {
        self.step(step).join(EXIT_FILE)
    }
    pub fn control(&self, step: &str) -> PathBuf {
        self.step(step).join(CONTROL_FIFO)
    }
    pub fn gates(&self) -> PathBuf {
        self.root.join(GATES_DIR)
    }
    pub fn gate(&self, step: &str) -> PathBuf {
        self.gates().join(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_documented_tree() {
        let l = Layout::new("/var/run/baton");
        assert_eq!(l.bin(), Path::new("/var/run/baton/bin/baton"));
        assert_eq!(l.exit("build"), Path::new("/var/run/baton/steps/build/exit.json"));
        assert_eq!(l.lock("build"), Path::new("/var/run/baton/steps/build/lock"));
        assert_eq!(l.state("build"), Path::new("/var/run/baton/steps/build/state.json"));
        assert_eq!(l.control("build"), Path::new("/var/run/baton/steps/build/control"));
        assert_eq!(l.gate("build"), Path::new("/var/run/baton/gates/build"));
    }
}
