//! Files in folders that other UIDs can write to (the shared directory, Tekton's and Argo's folders).
//!
//! The steps of one pod may run different images under different UIDs, and all of them share these
//! folders. So every access here is one that a planted entry cannot redirect: a folder is opened
//! once and everything below it is reached with `openat` relative to its descriptor, never
//! following a symbolic link; a file is created `O_CREAT|O_EXCL|O_NOFOLLOW` (under an unpredictable
//! name when it is a temporary one) and gets its mode with `fchmod`, whatever the umask; a file is
//! read only if it is a regular file, with a size cap, and opened `O_NONBLOCK` so that a FIFO put
//! in its place cannot block the reader.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{self, AtFlags, Flock, FlockArg, OFlag};
use nix::sys::stat::{self, FileStat, Mode, SFlag};
use nix::unistd::{self, UnlinkatFlags};

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
    let mut h = RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    format!(".{name}.{:016x}.tmp", h.finish())
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

/// A temporary file made ahead of time ([`Folder::spare`]).
#[derive(Debug)]
pub struct Spare {
    file: File,
    tmp: String,
}

/// Why a file could not be read.
#[derive(Debug)]
pub enum ReadError {
    Missing,
    /// A symbolic link, folder, FIFO, socket or device where a regular file belongs.
    NotRegular,
    TooLarge { size: u64, cap: u64 },
    /// Not written by the folder's owner.
    WrongOwner { owner: u32, expected: u32 },
    /// Something else where a FIFO belongs.
    NotFifo,
    Io(io::Error),
}

/// EMFILE, ENFILE, ENOMEM, EAGAIN, EINTR, ENOBUFS: the system is short of something right now.
pub fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error().map(Errno::from_raw),
        Some(Errno::EMFILE | Errno::ENFILE | Errno::ENOMEM | Errno::EAGAIN | Errno::EINTR | Errno::ENOBUFS)
    )
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            ReadError::Missing => write!(f, "it does not exist"),
            ReadError::NotRegular => write!(f, "it is not a regular file (a symbolic link, folder, FIFO or device)"),
            ReadError::TooLarge { size, cap } => write!(f, "it is {size} bytes, more than the {cap} such a file can be"),
            ReadError::WrongOwner { owner, expected } => {
                write!(f, "it belongs to UID {owner}, not to UID {expected}, the owner of its folder")
            }
            ReadError::NotFifo => write!(f, "it is not a FIFO"),
            ReadError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> ReadError {
        if e.kind() == io::ErrorKind::NotFound {
            ReadError::Missing
        } else if e.raw_os_error() == Some(Errno::ELOOP as i32) {
            ReadError::NotRegular
        } else {
            ReadError::Io(e)
        }
    }
}

/// For callers that speak `io::Error`: a missing file is ENOENT again, so it says what it always
/// says ("No such file or directory") and `kind()` is `NotFound`.
impl From<ReadError> for io::Error {
    fn from(e: ReadError) -> io::Error {
        match e {
            ReadError::Missing => io_err(Errno::ENOENT),
            ReadError::Io(e) => e,
            other => io::Error::other(other.to_string()),
        }
    }
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

    /// Creates the new file `name` (never an existing one, never through a link) with exactly `bits`.
    pub fn create(&self, name: &str, bits: u32) -> io::Result<File> {
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = fcntl::openat(&self.fd, name, flags, mode(0o600)).map_err(io_err)?;
        stat::fchmod(&fd, mode(bits)).map_err(io_err)?;
        Ok(File::from(fd))
    }

    /// Opens `name` for writing, appended to or emptied, creating it with `bits` (less the umask) if
    /// it is missing; never through a link (ELOOP), never blocking on a FIFO nobody reads (ENXIO).
    pub fn open_for_writing(&self, name: &str, bits: u32, append: bool) -> io::Result<File> {
        let how = if append { OFlag::O_APPEND } else { OFlag::O_TRUNC };
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | how;
        let fd = fcntl::openat(&self.fd, name, flags, mode(bits)).map_err(io_err)?;
        Ok(File::from(fd))
    }

    /// Creates a new file under an unpredictable temporary name in [`Folder::temp_dir`]; returns it
    /// and its name.
    fn create_temp(&self, name: &str, bits: u32) -> io::Result<(File, String)> {
        loop {
            let tmp = temp_name(name);
            match self.temp_dir().create(&tmp, bits) {
                Ok(f) => return Ok((f, tmp)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Replaces `name` with `content` through a new temporary file and a rename: a reader sees the old
    /// file or the whole new one.
    pub fn write_atomically(&self, name: &str, content: &[u8], bits: u32) -> io::Result<()> {
        self.create_atomically(name, bits, |f| f.write_all(content))
    }

    /// [`Folder::write_atomically`] with the content written by `fill` (a copy, an archive).
    pub fn create_atomically(&self, name: &str, bits: u32, fill: impl FnOnce(&mut File) -> io::Result<()>) -> io::Result<()> {
        let (mut f, tmp) = self.create_temp(name, bits)?;
        let done = fill(&mut f).and_then(|()| {
            fcntl::renameat(&self.temp_dir().fd, tmp.as_str(), &self.fd, name).map_err(io_err)
        });
        if done.is_err() {
            let _ = self.temp_dir().remove(&tmp);
        }
        done
    }

    /// A temporary file for `name`, made now so that replacing `name` later costs only a write and
    /// a rename: on some disks creating a file (allocating its inode) is what takes the time.
    pub fn spare(&self, name: &str, bits: u32) -> io::Result<Spare> {
        let (file, tmp) = self.create_temp(name, bits)?;
        Ok(Spare { file, tmp })
    }

    /// Replaces `name` with `content` through `spare` (made by [`Folder::spare`] for this folder).
    pub fn replace_with(&self, spare: Spare, name: &str, content: &[u8]) -> io::Result<()> {
        let Spare { mut file, tmp } = spare;
        let done = file
            .write_all(content)
            .and_then(|()| fcntl::renameat(&self.temp_dir().fd, tmp.as_str(), &self.fd, name).map_err(io_err));
        if done.is_err() {
            let _ = self.temp_dir().remove(&tmp);
        }
        done
    }

    /// Removes every file of the scratch folder (what a killed writer left there).
    pub fn clear_scratch(&self) {
        if let Some(scratch) = self.scratch.as_deref() {
            for leftover in std::fs::read_dir(scratch.path()).into_iter().flatten().flatten() {
                if let Some(name) = leftover.file_name().to_str() {
                    let _ = scratch.remove(name);
                }
            }
        }
    }

    /// Removes a spare that was not used.
    pub fn discard(&self, spare: Spare) {
        let _ = self.temp_dir().remove(&spare.tmp);
    }

    pub fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        fcntl::renameat(&self.fd, from, &self.fd, to).map_err(io_err)
    }

    pub fn remove(&self, name: &str) -> io::Result<()> {
        unistd::unlinkat(&self.fd, name, UnlinkatFlags::NoRemoveDir).map_err(io_err)
    }

    /// Opens an entry for reading: only a regular file, never through a link, never blocking.
    pub fn open_file(&self, name: &str) -> Result<(File, FileStat), ReadError> {
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
        let fd = fcntl::openat(&self.fd, name, flags, Mode::empty()).map_err(|e| ReadError::from(io_err(e)))?;
        let st = stat::fstat(&fd).map_err(|e| ReadError::Io(io_err(e)))?;
        if !is_file(&st) {
            return Err(ReadError::NotRegular);
        }
        Ok((File::from(fd), st))
    }

    /// Reads the regular file `name`, at most `cap` bytes; with `owned`, only if the folder's owner
    /// wrote it.
    pub fn read(&self, name: &str, cap: u64, owned: bool) -> Result<Vec<u8>, ReadError> {
        let (f, st) = self.open_file(name)?;
        if owned && st.st_uid != self.owner {
            return Err(ReadError::WrongOwner { owner: st.st_uid, expected: self.owner });
        }
        read_capped(f, st.st_size as u64, cap)
    }

    /// Opens the FIFO `name` for writing without blocking: ENXIO when nobody reads it.
    pub fn open_fifo_writer(&self, name: &str) -> io::Result<File> {
        let flags = OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = fcntl::openat(&self.fd, name, flags, Mode::empty()).map_err(io_err)?;
        let st = stat::fstat(&fd).map_err(io_err)?;
        if !is_fifo(&st) {
            return Err(io::Error::other(format!("{} is not a FIFO", self.join(name).display())));
        }
        Ok(File::from(fd))
    }

    /// Makes the FIFO `name` with exactly `bits`, replacing whatever stale entry has that name, and
    /// opens it read-write without blocking: a reader end that never sees end of file, and a writer
    /// end that only this process holds (see `crate::liveness`). It is made under a temporary name
    /// and renamed in, so a reader never finds it missing or with the wrong mode.
    pub fn fifo(&self, name: &str, bits: u32) -> io::Result<File> {
        let dir = self.temp_dir();
        let tmp = loop {
            let tmp = temp_name(name);
            match unistd::mkfifoat(&dir.fd, tmp.as_str(), mode(0o600)) {
                Ok(()) => break tmp,
                Err(Errno::EEXIST) => continue,
                Err(e) => return Err(io_err(e)),
            }
        };
        let opened = (|| {
            let flags = OFlag::O_RDWR | OFlag::O_NONBLOCK | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            let fd = fcntl::openat(&dir.fd, tmp.as_str(), flags, Mode::empty()).map_err(io_err)?;
            if !is_fifo(&stat::fstat(&fd).map_err(io_err)?) {
                return Err(io::Error::other(format!("{} was replaced while it was being created", self.join(name).display())));
            }
            stat::fchmod(&fd, mode(bits)).map_err(io_err)?;
            // Linked in where the name is free; a stale one is replaced by a rename.
            match unistd::linkat(&dir.fd, tmp.as_str(), &self.fd, name, AtFlags::empty()) {
                Err(Errno::EEXIST) => fcntl::renameat(&dir.fd, tmp.as_str(), &self.fd, name).map_err(io_err)?,
                linked => linked.map_err(io_err)?,
            }
            Ok(File::from(fd))
        })();
        let _ = dir.remove(&tmp);
        opened
    }

    /// Opens the FIFO `name` for reading without blocking, never through a link: an error when it is
    /// something else. Returns it with its `fstat`.
    pub fn open_fifo_reader(&self, name: &str) -> Result<(File, FileStat), ReadError> {
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
        let fd = fcntl::openat(&self.fd, name, flags, Mode::empty()).map_err(|e| ReadError::from(io_err(e)))?;
        let st = stat::fstat(&fd).map_err(|e| ReadError::Io(io_err(e)))?;
        if !is_fifo(&st) {
            return Err(ReadError::NotFifo);
        }
        Ok((File::from(fd), st))
    }

    /// Creates `name` already locked (`flock` LOCK_EX, held while the returned lock lives): it is
    /// made under a temporary name, locked, then linked into place, which fails if `name` exists, so
    /// two claimers can never both win, and nobody ever sees it unlocked. An existing `name` whose
    /// holder is gone (a restarted container) is taken over by locking it. `Ok(None)`: a living
    /// holder has it. Give it `bits` that let no other UID open it (0600): any process that can open
    /// a file can hold a `flock` on it, so a lock others can read is a lock others can hold.
    pub fn create_locked(&self, name: &str, bits: u32) -> io::Result<Option<Flock<File>>> {
        let (file, tmp) = self.create_temp(name, bits)?;
        let locked = Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, e)| io_err(e));
        let linked = locked.and_then(|lock| {
            let from = &self.temp_dir().fd;
            unistd::linkat(from, tmp.as_str(), &self.fd, name, AtFlags::empty()).map(|()| lock).map_err(io_err)
        });
        let _ = self.temp_dir().remove(&tmp);
        match linked {
            Ok(lock) => Ok(Some(lock)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let (existing, _) = self.open_file(name).map_err(|e| match e {
                    ReadError::Io(e) => e,
                    other => io::Error::other(format!("{} cannot be used as a lock: {other}", self.join(name).display())),
                })?;
                match Flock::lock(existing, FlockArg::LockExclusiveNonblock) {
                    Ok(lock) => {
                        // A lock left by an older baton may be readable by all: not any more.
                        let _ = stat::fchmod(lock.as_fd(), mode(bits));
                        Ok(Some(lock))
                    }
                    Err((_, Errno::EWOULDBLOCK)) => Ok(None),
                    Err((_, e)) => Err(io_err(e)),
                }
            }
            Err(e) => Err(e),
        }
    }
}

/// Reads at most `cap` bytes of `f`, whose size the caller saw as `size`.
pub fn read_capped(f: File, size: u64, cap: u64) -> Result<Vec<u8>, ReadError> {
    if size > cap {
        return Err(ReadError::TooLarge { size, cap });
    }
    // One read of one byte more than the size: a short read of a regular file is its end, so the
    // usual case costs one read(2); a file that grew meanwhile is read on, up to the cap.
    let mut f = f;
    let mut bytes = vec![0u8; size as usize + 1];
    let n = loop {
        match f.read(&mut bytes) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => break other.map_err(ReadError::Io)?,
        }
    };
    bytes.truncate(n);
    if n as u64 > size {
        (&mut f).take(cap + 1 - n as u64).read_to_end(&mut bytes).map_err(ReadError::Io)?;
    }
    if bytes.len() as u64 > cap {
        return Err(ReadError::TooLarge { size: bytes.len() as u64, cap });
    }
    Ok(bytes)
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

/// [`Folder::read`] for a path, without the owner check: its folder is reached as the path says,
/// the file itself only if it is a regular file and not a link.
pub fn read_file(path: &Path, cap: u64) -> Result<Vec<u8>, ReadError> {
    let (dir, name) = split(path)?;
    dir.read(&name, cap, false)
}

/// [`Folder::open_file`] for a path: its folder is reached as the path says, the file itself only
/// if it is a regular file and not a link, without blocking.
pub fn open_file(path: &Path) -> Result<(File, FileStat), ReadError> {
    let (dir, name) = split(path)?;
    dir.open_file(&name)
}

/// Reads at most `cap` bytes of a regular file, following links, without blocking on a FIFO. For
/// files that are not another step's to plant: a ConfigMap or Secret volume's (each key is a link
/// into `..data`, as the kubelet writes them), the step's own.
pub fn read_mounted(path: &Path, cap: u64) -> Result<Vec<u8>, ReadError> {
    let flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
    let fd = fcntl::open(path, flags, Mode::empty()).map_err(|e| ReadError::from(io_err(e)))?;
    let st = stat::fstat(&fd).map_err(|e| ReadError::Io(io_err(e)))?;
    if !is_file(&st) {
        return Err(ReadError::NotRegular);
    }
    read_capped(File::from(fd), st.st_size as u64, cap)
}

/// [`Folder::write_atomically`] for a path.
pub fn write_atomically(path: &Path, content: &[u8], bits: u32) -> io::Result<()> {
    let (dir, name) = split(path)?;
    dir.write_atomically(&name, content, bits)
}

/// [`Folder::create_atomically`] for a path.
pub fn create_atomically(path: &Path, bits: u32, fill: impl FnOnce(&mut File) -> io::Result<()>) -> io::Result<()> {
    let (dir, name) = split(path)?;
    dir.create_atomically(&name, bits, fill)
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
