//! Creating and replacing files in a folder others can write: `O_EXCL`, never through a link,
//! modes set with `fchmod` whatever the umask, temporary files under names nobody can guess, renamed
//! into place so a reader sees the old file or the whole new one.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{self, AtFlags, Flock, FlockArg, OFlag};
use nix::sys::stat;
use nix::unistd;

use super::{io_err, mode, split, temp_name, Folder, ReadError};

/// A temporary file made ahead of time ([`Folder::spare`]).
#[derive(Debug)]
pub struct Spare {
    file: File,
    tmp: String,
}

impl Folder {
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
