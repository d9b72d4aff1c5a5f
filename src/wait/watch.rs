//! The waiter's inotify watches: the deepest existing folder on the way to every awaited file, and
//! the folder each symbolic link on the way points into. Without inotify, the 500 ms fallback.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use nix::sys::inotify::AddWatchFlags;

use super::{Waiter, FALLBACK_INTERVAL};
use crate::sys;

/// As many symbolic links as the kernel follows in one path.
const MAX_LINK_HOPS: usize = 40;

impl Waiter<'_> {
    /// Watches the folders on the way to `path` and to every hop of its chain of symbolic links.
    pub(super) fn watch_path(&mut self, path: &Path) {
        let mut hop = absolute(path);
        for _ in 0..MAX_LINK_HOPS {
            self.watch_file(&hop);
            let Ok(target) = fs::read_link(&hop) else { break };
            hop = hop.parent().unwrap_or(Path::new("/")).join(target);
        }
    }

    /// Watches the deepest existing folder on the way to `file`.
    pub(super) fn watch_file(&mut self, file: &Path) {
        self.watch_with(file, self.watch_mask);
    }

    pub(super) fn watch_with(&mut self, file: &Path, mask: AddWatchFlags) {
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
