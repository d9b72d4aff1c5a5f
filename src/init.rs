//! `baton init`: put this binary into the shared directory, for the step containers to run.
//! Needs nothing from the image: no shell, no cp.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use baton_contract::layout::Layout;

use crate::stepdir::ensure_shared_dir;
use crate::sys;

pub fn init(dir: &Path) -> Result<PathBuf> {
    let layout = Layout::new(dir);
    let target = layout.bin();
    let bin_dir = target.parent().expect("bin/baton has a parent");
    fs::create_dir_all(bin_dir).with_context(|| {
        format!("cannot create {}: mount a writable emptyDir at {} or pass --dir", bin_dir.display(), dir.display())
    })?;
    // Steps of one pod may run as different UIDs: open the shared folders to all of them now, while
    // the init container (often root) can.
    for shared in [layout.steps(), layout.gates()] {
        ensure_shared_dir(&shared).with_context(|| format!("cannot create {}", shared.display()))?;
    }
    let tmp = bin_dir.join(format!(".baton.{}.tmp", sys::getpid()));
    let copied = copy_self(&tmp).and_then(|()| fs::rename(&tmp, &target));
    if let Err(e) = copied {
        let _ = fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot install baton at {}", target.display()));
    }
    Ok(target)
}

fn copy_self(to: &Path) -> io::Result<()> {
    let mut source = File::open("/proc/self/exe")?;
    let mut dest = OpenOptions::new().write(true).create_new(true).mode(0o700).open(to)?;
    io::copy(&mut source, &mut dest)?;
    dest.set_permissions(fs::Permissions::from_mode(0o555))?;
    dest.sync_all()
}
