//! FIFOs in a folder others can write: the control FIFO of a step and the beacon of its claim
//! (`crate::liveness`), made under a temporary name and linked in with their final mode, and opened
//! without blocking.

use std::fs::File;
use std::io;

use nix::errno::Errno;
use nix::fcntl::{self, AtFlags, OFlag};
use nix::sys::stat::{self, FileStat, Mode};
use nix::unistd;

use super::{io_err, is_fifo, mode, temp_name, Folder, ReadError};

impl Folder {
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
        let (f, st) = self.open_entry(name)?;
        if !is_fifo(&st) {
            return Err(ReadError::NotFifo);
        }
        Ok((f, st))
    }
}
