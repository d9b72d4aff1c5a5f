//! Files in folders that other UIDs can write to (the shared directory, Tekton's and Argo's folders).
//!
//! The steps of one pod may run different images under different UIDs, and all of them share these
//! folders. So every access here is one that a planted entry cannot redirect: a folder is opened
//! once and everything below it is reached with `openat` relative to its descriptor, never
//! following a symbolic link; a file is created `O_CREAT|O_EXCL|O_NOFOLLOW` (under an unpredictable
//! name when it is a temporary one) and gets its mode with `fchmod`, whatever the umask; a file is
//! read only if it is a regular file, with a size cap, and opened `O_NONBLOCK` so that a FIFO put
//! in its place cannot block the reader.
//!
//! This file holds the folder itself and the way down to its sub-folders; `read.rs` reads files
//! (capped, never blocking, never through a link), `write.rs` creates and replaces them, `fifo.rs`
//! makes and opens FIFOs (the control FIFO, the beacon of `crate::liveness`).

mod fifo;
mod read;
mod write;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{self, AtFlags, OFlag};
use nix::sys::stat::{self, FileStat, Mode, SFlag};
use nix::unistd::{self, UnlinkatFlags};

// Some of these serve only the foreign contracts (src/tekton, src/argo): a build without them (bench/run
// builds one to size each mode) leaves them unused.
#[cfg_attr(not(all(feature = "tekton", feature = "argo")), allow(unused_imports))]
pub use read::{is_transient, open_file, read_capped, read_file, read_mounted, ReadError};
#[cfg_attr(not(all(feature = "tekton", feature = "argo")), allow(unused_imports))]
pub use write::{create_atomically, write_atomically, Spare};

/// An open folder. Everything below it is reached relative to its descriptor.
#[derive(Debug)]
pub struct Folder {
    fd: OwnedFd,
    path: PathBuf,
    owner: u32,
    mode: u32,
    /// Where temporary files are made before they are renamed or linked in (default: here). A
    /// private sub-folder keeps their creation out of sight of the waiters watching this folder.
    scratch: Option<Box<Folder>>,
}

pub fn io_err(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

fn mode(bits: u32) -> Mode {
    Mode::from_bits_truncate(bits as nix::libc::mode_t)
}

/// `.NAME.<16 random hex digits>.tmp`: a name nobody can guess and plant beforehand.
pub fn temp_name(name: &str) -> String {
    format!(".{name}.{}.tmp", random_hex())
}

/// 16 random hex digits (std's per-process random hasher keys), for names nobody can guess.
pub fn random_hex() -> String {
    let mut h = RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}

fn is_file(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFREG
}

pub fn is_link(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFLNK
}

pub fn is_fifo(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFIFO
}

const DIR_FLAGS: OFlag = OFlag::O_RDONLY.union(OFlag::O_DIRECTORY).union(OFlag::O_CLOEXEC);

impl Folder {
    /// Opens the folder at `path` (links in `path` itself are followed: it is the pod author's).
    pub fn open(path: &Path) -> io::Result<Folder> {
        // openat, not open: musl's open() spends an extra fcntl on O_CLOEXEC.
        let fd = fcntl::openat(fcntl::AT_FDCWD, path, DIR_FLAGS, Mode::empty()).map_err(io_err)?;
        Folder::from_fd(fd, path.to_path_buf())
    }

    fn from_fd(fd: OwnedFd, path: PathBuf) -> io::Result<Folder> {
        let st = stat::fstat(&fd).map_err(io_err)?;
        Ok(Folder { fd, path, owner: st.st_uid, mode: st.st_mode & 0o7777, scratch: None })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn owner(&self) -> u32 {
        self.owner
    }

    /// The permission bits (with set-id and sticky bits) when the folder was opened.
    pub fn mode(&self) -> u32 {
        self.mode
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Makes temporary files in `scratch` (a folder on the same file system) from now on.
    pub fn with_scratch(mut self, scratch: Folder) -> Folder {
        self.scratch = Some(Box::new(scratch));
        self
    }

    /// The folder temporary files are made in.
    fn temp_dir(&self) -> &Folder {
        self.scratch.as_deref().unwrap_or(self)
    }

    /// Opens the folder at `path` only to reach what is below it (no owner or mode is looked at).
    pub fn open_to_read(path: &Path) -> io::Result<Folder> {
        let fd = fcntl::openat(fcntl::AT_FDCWD, path, DIR_FLAGS, Mode::empty()).map_err(io_err)?;
        Ok(Folder { fd, path: path.to_path_buf(), owner: u32::MAX, mode: 0, scratch: None })
    }

    /// Opens the sub-folder `name`; a symbolic link there is refused (ENOTDIR/ELOOP), not followed.
    pub fn sub(&self, name: &str) -> io::Result<Folder> {
        let fd = fcntl::openat(&self.fd, name, DIR_FLAGS | OFlag::O_NOFOLLOW, Mode::empty()).map_err(io_err)?;
        Folder::from_fd(fd, self.join(name))
    }

    /// Creates the sub-folder `name` with exactly `bits` (umask aside) if it is missing, then opens
    /// it. Returns whether this call created it.
    /// The folder is born with its final mode (the umask is cleared for the call): a reader of
    /// another UID never finds it closed. Callers create folders before they start any thread.
    pub fn ensure_sub(&self, name: &str, bits: u32) -> io::Result<(Folder, bool)> {
        let old = stat::umask(Mode::empty());
        let made = stat::mkdirat(&self.fd, name, mode(bits));
        stat::umask(old);
        let created = match made {
            Ok(()) => true,
            Err(Errno::EEXIST) => false,
            Err(e) => return Err(io_err(e)),
        };
        Ok((self.sub(name)?, created))
    }

    /// Opens the folder `rel` below this one, creating each missing component with exactly `bits`
    /// (as [`Folder::ensure_sub`] does). A symbolic link at any component is refused, never
    /// followed, so a folder another UID can write cannot send the caller elsewhere; so is a
    /// component that does not go down (`..`, `/`).
    pub fn ensure_path(&self, rel: &Path, bits: u32) -> io::Result<Folder> {
        self.walk(rel, Some(bits))
    }

    /// Opens the existing folder `rel` below this one, refusing links as [`Folder::ensure_path`].
    pub fn sub_path(&self, rel: &Path) -> io::Result<Folder> {
        self.walk(rel, None)
    }

    fn walk(&self, rel: &Path, create: Option<u32>) -> io::Result<Folder> {
        let mut here = Folder::from_fd(self.fd.try_clone()?, self.path.clone())?;
        for component in rel.components() {
            let name = match component {
                Component::CurDir => continue,
                Component::Normal(name) => name.to_str(),
                _ => None,
            };
            let Some(name) = name else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{} goes up or holds a name that is not UTF-8, so it cannot be reached below {}; give the \
                         plain path",
                        rel.display(),
                        self.path.display()
                    ),
                ));
            };
            let next = match create {
                Some(bits) => here.ensure_sub(name, bits).map(|(folder, _)| folder),
                None => here.sub(name),
            };
            here = match next {
                Ok(folder) => folder,
                Err(_) if here.stat(name)?.is_some_and(|st| is_link(&st)) => {
                    return Err(io::Error::other(format!(
                        "{} is a symbolic link, which baton does not follow where other steps can write; make it \
                         a folder",
                        here.join(name).display()
                    )))
                }
                Err(e) => return Err(e),
            };
        }
        Ok(here)
    }

    /// Sets the folder's mode exactly.
    pub fn set_mode(&mut self, bits: u32) -> io::Result<()> {
        stat::fchmod(&self.fd, mode(bits)).map_err(io_err)?;
        self.mode = bits;
        Ok(())
    }

    /// `lstat` of an entry: None when there is none.
    pub fn stat(&self, name: &str) -> io::Result<Option<FileStat>> {
        match stat::fstatat(&self.fd, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(st)),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(io_err(e)),
        }
    }

    pub fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        fcntl::renameat(&self.fd, from, &self.fd, to).map_err(io_err)
    }

    pub fn remove(&self, name: &str) -> io::Result<()> {
        unistd::unlinkat(&self.fd, name, UnlinkatFlags::NoRemoveDir).map_err(io_err)
    }
}

/// The folder that holds `path`, and `path`'s last component: for callers that have a path.
pub fn split(path: &Path) -> io::Result<(Folder, String)> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("{} names no file", path.display())))?;
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    Ok((Folder::open(parent)?, name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn ensure_path_makes_each_folder_and_refuses_links_and_climbing() {
        let tmp = tempfile::tempdir().unwrap();
        let top = Folder::open(tmp.path()).unwrap();
        let deep = top.ensure_path(Path::new("a/./b/c"), 0o751).unwrap();
        assert_eq!(deep.path(), tmp.path().join("a/b/c"));
        for made in ["a", "a/b", "a/b/c"] {
            assert_eq!(std::fs::metadata(tmp.path().join(made)).unwrap().permissions().mode() & 0o7777, 0o751);
        }
        assert_eq!(top.ensure_path(Path::new("a/b"), 0o700).unwrap().mode(), 0o751, "an existing folder is kept");
        std::os::unix::fs::symlink(tmp.path().join("a"), tmp.path().join("link")).unwrap();
        let e = top.ensure_path(Path::new("link/b"), 0o755).unwrap_err();
        assert!(e.to_string().contains("is a symbolic link"), "{e}");
        for climbing in ["a/../../x", "/etc"] {
            assert_eq!(top.ensure_path(Path::new(climbing), 0o755).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        }
    }
}

