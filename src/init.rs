//! `baton init`: put this binary into the shared directory, for the step containers to run.
//! Needs nothing from the image: no shell, no cp.
//!
//! It also closes the shared directory's top level to other UIDs: the root gets the sticky bit, so
//! no step can rename `bin/` or `steps/` away and put its own in their place, and `bin/` is
//! writable by this UID alone, so nobody can replace the binary every step runs. With
//! `--bin-volume`, `bin/` is a volume of its own that every step mounts read-only (what `batonctl
//! inject` makes): then no step can write or rename it whatever UID this runs as, and a non-root
//! init container takes it as the kubelet made it (0777, root's).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use baton_contract::layout::{Layout, GATES_DIR, STEPS_DIR};

use crate::folder::Folder;
use crate::stepdir::{open_root, shared_folder};

const BIN_DIR_MODE: u32 = 0o755;
const BIN_MODE: u32 = 0o555;

pub fn init(dir: &Path, bin_volume: bool) -> Result<PathBuf> {
    let layout = Layout::new(dir);
    let mut root = open_root(&layout)?;
    seal_root(&mut root, bin_volume);
    let bin = bin_folder(&root, bin_volume)?;
    // Steps of one pod may run as different UIDs: create the shared folders now, while the init
    // container (often root) can.
    for shared in [STEPS_DIR, GATES_DIR] {
        shared_folder(&root, shared)?;
    }
    let target = layout.bin();
    install_self(&bin).with_context(|| format!("cannot install baton at {}", target.display()))?;
    Ok(target)
}

/// Adds the sticky bit to a root that every UID can write (an emptyDir is 0777). When this UID may
/// not (it does not own the volume), says what that leaves open.
fn seal_root(root: &mut Folder, bin_volume: bool) {
    let mode = root.mode();
    if mode & 0o002 == 0 || mode & 0o1000 != 0 {
        return;
    }
    if let Err(e) = root.set_mode(mode | 0o1000) {
        let open = if bin_volume { "steps/ or gates/" } else { "bin/ or steps/" };
        eprintln!(
            "baton: warning: cannot set the sticky bit on {} ({e}; it belongs to UID {}): a step running as \
             another UID could replace {open} there; run the init container as root or as the volume's owner, \
             or run every step as one UID",
            root.path().display(),
            root.owner()
        );
    }
}

/// `bin/`, writable by this UID alone. A symbolic link, or a folder another UID can write, is refused,
/// unless it is a volume every step mounts read-only (`bin_volume`).
fn bin_folder(root: &Folder, bin_volume: bool) -> Result<Folder> {
    let path = root.join("bin");
    let (mut bin, created) = root.ensure_sub("bin", BIN_DIR_MODE).map_err(|e| match e.raw_os_error() {
        Some(libc::ENOTDIR) | Some(libc::ELOOP) => anyhow!(
            "{} is a symbolic link or not a folder; refusing to follow it (another container may have planted \
             it): start from a fresh emptyDir",
            path.display()
        ),
        _ => anyhow!("cannot create {}: {e}; mount a writable emptyDir at {} or pass --dir", path.display(), root.path().display()),
    })?;
    let me = nix::unistd::geteuid().as_raw();
    if !created && bin.owner() != me {
        if !bin_volume && (bin.owner() != 0 || bin.mode() & 0o022 != 0) {
            bail!(
                "{} belongs to UID {}, not to this init container's UID {me}: whoever owns it could replace the \
                 binary every step runs; start from a fresh emptyDir",
                path.display(),
                bin.owner()
            );
        }
    } else if bin.mode() != BIN_DIR_MODE {
        bin.set_mode(BIN_DIR_MODE).with_context(|| format!("cannot set the mode of {}", path.display()))?;
    }
    Ok(bin)
}

/// Copies this binary into `bin/baton` through a new file and a rename: a container that is
/// starting runs the old file or the whole new one, never a part (and never hits ETXTBSY).
fn install_self(bin: &Folder) -> io::Result<()> {
    let mut source = File::open("/proc/self/exe")?;
    let tmp = crate::folder::temp_name("baton");
    let mut dest = bin.create(&tmp, 0o700)?;
    let copied = io::copy(&mut source, &mut dest)
        .and_then(|_| nix::sys::stat::fchmod(&dest, nix::sys::stat::Mode::from_bits_truncate(BIN_MODE)).map_err(crate::folder::io_err))
        .and_then(|()| bin.rename(&tmp, "baton"));
    if copied.is_err() {
        let _ = bin.remove(&tmp);
    }
    copied
}
