//! The baton folder of a playing pod, read from this host: every living step's `state.json`.
//!
//! The folder is an emptyDir the pod's containers write, some as root: nothing in it is trusted.
//! Every path below the volume's root is opened with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`
//! (no link followed, nothing outside the folder reached), files non-blocking (a FIFO cannot stall the
//! view), only regular files, and at most 64 KiB of each, as baton's own readers do.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::Path;

use baton_contract::layout::{STATE_FILE, STEPS_DIR};
use baton_contract::state::StepState;
use nix::dir::Dir;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstat, Mode, SFlag};

/// baton caps `state.json` at this size too (docs/protocol.md).
const STATE_CAP: u64 = 64 << 10;

/// The living steps of every baton folder among `roots` (the pod's emptyDir volumes on this host),
/// earliest change first. A folder that is not baton's, or cannot be read, gives nothing.
pub fn states(roots: &[impl AsRef<Path>]) -> Vec<StepState> {
    let mut all: Vec<StepState> =
        roots.iter().flat_map(|r| states_in(r.as_ref()).unwrap_or_default()).collect();
    all.sort_by(|a, b| a.since.cmp(&b.since).then_with(|| a.step.cmp(&b.step)));
    all
}

fn states_in(root: &Path) -> nix::Result<Vec<StepState>> {
    let root =
        nix::fcntl::open(root, OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())?;
    let steps = beneath(&root, STEPS_DIR, OFlag::O_DIRECTORY)?;
    let mut dir = Dir::from_fd(steps)?;
    let names: Vec<String> = dir
        .iter()
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().ok().map(str::to_string))
        .filter(|n| n != "." && n != "..")
        .collect();
    Ok(names.iter().filter_map(|n| read_state(&root, &format!("{STEPS_DIR}/{n}/{STATE_FILE}"))).collect())
}

fn beneath(root: &OwnedFd, path: &str, flags: OFlag) -> nix::Result<OwnedFd> {
    let how = OpenHow::new()
        .flags(flags | OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
    openat2(root, path, how)
}

fn read_state(root: &OwnedFd, path: &str) -> Option<StepState> {
    let fd = beneath(root, path, OFlag::O_NONBLOCK).ok()?;
    let st = fstat(&fd).ok()?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG
        || st.st_size as u64 > STATE_CAP
    {
        return None;
    }
    let mut text = Vec::new();
    std::fs::File::from(fd).take(STATE_CAP).read_to_end(&mut text).ok()?;
    serde_json::from_slice(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(step: &str, since: &str) -> String {
        format!(
            r#"{{"baton":1,"step":"{step}","state":"waiting","since":"{since}","pid":7,"waitingFor":["step a"]}}"#
        )
    }

    #[test]
    fn reads_the_living_steps_and_nothing_through_a_link() {
        let root = std::env::temp_dir().join(format!("baton-play-folder-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for step in ["b", "c", "link", "fifo", "big"] {
            std::fs::create_dir_all(root.join("steps").join(step)).unwrap();
        }
        std::fs::write(root.join("steps/b/state.json"), state("b", "2026-01-01T00:00:02.000Z")).unwrap();
        std::fs::write(root.join("steps/c/state.json"), state("c", "2026-01-01T00:00:01.000Z")).unwrap();
        // A link to a state file elsewhere, a FIFO and an oversized file are not read.
        let outside = root.join("outside.json");
        std::fs::write(&outside, state("outside", "2026-01-01T00:00:00.000Z")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("steps/link/state.json")).unwrap();
        nix::unistd::mkfifo(&root.join("steps/fifo/state.json"), Mode::from_bits_truncate(0o644)).unwrap();
        std::fs::write(root.join("steps/big/state.json"), " ".repeat(70_000)).unwrap();
        let found: Vec<String> = states(&[&root]).into_iter().map(|s| s.step).collect();
        assert_eq!(found, ["c", "b"]);
        // A folder that is not baton's gives nothing.
        assert!(states(&[root.join("steps")]).is_empty());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
