//! Reading files of a folder others can write: only regular files, never through a link, never
//! blocking on a FIFO put in their place, and never more than a cap, checked before the read.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{self, OFlag};
use nix::sys::stat::{self, FileStat, Mode};

use super::{io_err, is_file, split, Folder};

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

impl Folder {
    /// Opens an entry for reading: only a regular file, never through a link, never blocking.
    pub fn open_file(&self, name: &str) -> Result<(File, FileStat), ReadError> {
        let (f, st) = self.open_entry(name)?;
        if !is_file(&st) {
            return Err(ReadError::NotRegular);
        }
        Ok((f, st))
    }

    /// Opens whatever `name` is for reading, never through a link and never blocking (a FIFO without
    /// a writer opens at once); returns it with its `fstat` for the caller to judge.
    pub(super) fn open_entry(&self, name: &str) -> Result<(File, FileStat), ReadError> {
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
        let fd = fcntl::openat(&self.fd, name, flags, Mode::empty()).map_err(|e| ReadError::from(io_err(e)))?;
        let st = stat::fstat(&fd).map_err(|e| ReadError::Io(io_err(e)))?;
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
