//! The files of the shared folder `/var/run/argo` that the emissary reads and writes:
//!
//! ```text
//! ctr/<name>/           mode 0777, made at start ("this also indicates we've started")
//!   exitcode            the exit code as decimal text, written last and atomically (temporary + rename)
//!   signal              a decimal signal number written by Argo's wait container or controller
//!   stdout, combined    copies of the output (ARGO_INCLUDE_SCRIPT_OUTPUT=true or log archiving)
//!   before, after       debug pauses end when these appear
//!   baton.lock          baton's liveness lock (flock, held while this emissary lives)
//! ```
//!
//! The folder is writable by every UID of the pod, as Argo has it (its wait container may run as
//! another user): nothing here follows a symbolic link, every file baton creates is made with
//! O_EXCL under an unpredictable name and given its mode explicitly, and every read is capped.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};


use crate::folder::{self, Folder, ReadError};
use crate::liveness::{self, Alive};
use crate::sys;

/// Mode of `ctr/` and `ctr/<name>/`, as Argo makes them.
pub const CTR_DIR_MODE: u32 = 0o777;
/// Mode of the output copies, as Argo makes them (the wait container reads them as another UID).
pub const OUTPUT_MODE: u32 = 0o666;
/// baton's claim of `ctr/<name>/` (see `crate::liveness`): its lock, and the beacon its waiters poll.
pub const LOCK_FILE: &str = "baton.lock";
pub const BEACON_FILE: &str = "baton.alive";
/// The longest exit code or signal file baton reads.
const SMALL_FILE_CAP: u64 = 64;

/// The folder of container `name`: `<root>/ctr/<name>`.
pub fn ctr_dir(root: &Path, name: &str) -> PathBuf {
    root.join("ctr").join(name)
}

/// `name` is usable as a folder name under `ctr/` (Argo's container names are DNS labels).
pub fn check_name(name: &str, what: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(format!("{what} {name:?} is not a container name (it names the folder ctr/<name>)"));
    }
    Ok(())
}

/// This container's folder, claimed: made (mode 0777), its lock held and beacon raised, a stale exit code
/// from an earlier run of the container removed.
pub struct Ctr {
    pub name: String,
    pub dir: PathBuf,
    /// `dir` as claimed: what baton writes there goes into this folder, even if another container
    /// renamed it or put a link in its place since.
    folder: Folder,
    _alive: Alive,
}

impl Ctr {
    pub fn claim(root: &Path, name: &str) -> Result<Ctr, String> {
        let dir = ctr_dir(root, name);
        let unusable = |what: &Path, e: io::Error| {
            format!(
                "cannot create {} ({e}): the shared folder {} must be a writable emptyDir mounted in every container \
                 of the pod",
                what.display(),
                root.display()
            )
        };
        // Made without following links, born with their mode (Argo's wait container may be another UID).
        let top = Folder::open(root).map_err(|e| unusable(root, e))?;
        let (ctr, _) = top.ensure_sub("ctr", CTR_DIR_MODE).map_err(|e| unusable(&root.join("ctr"), e))?;
        let (folder, _) = ctr.ensure_sub(name, CTR_DIR_MODE).map_err(|e| unusable(&dir, e))?;
        let alive = match liveness::claim(&folder, LOCK_FILE, BEACON_FILE) {
            Ok(Some(alive)) => alive,
            Ok(None) => {
                return Err(format!(
                    "container {name:?} already runs under a living baton in {}: ARGO_CONTAINER_NAME must differ per container",
                    dir.display()
                ))
            }
            Err(e) => return Err(format!("cannot create the liveness lock and beacon in {}: {e}", dir.display())),
        };
        let ctr = Ctr { name: name.to_string(), dir, folder, _alive: alive };
        match ctr.folder.remove("exitcode") {
            Ok(()) => eprintln!("baton: container {name:?} had ended before; running it again"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot remove the old {}: {e}", ctr.exitcode().display())),
        }
        Ok(ctr)
    }

    pub fn exitcode(&self) -> PathBuf {
        self.dir.join("exitcode")
    }
    pub fn signal(&self) -> PathBuf {
        self.dir.join("signal")
    }
    pub fn pause_file(&self, which: &str) -> PathBuf {
        self.dir.join(which)
    }

    /// Writes the exit code file: decimal text, no newline (as Argo writes it), mode 0644.
    pub fn write_exitcode(&self, code: i32) -> io::Result<()> {
        self.folder.write_atomically("exitcode", code.to_string().as_bytes(), 0o644)
    }

    /// Opens the output copy `name` (`stdout`, `combined`) for appending, mode 0666 as Argo makes it:
    /// only a regular file (a FIFO planted there, read or not, would hold or leak the output).
    pub fn open_output(&self, name: &str) -> io::Result<File> {
        let path = self.dir.join(name);
        let file = self.folder.open_for_writing(name, OUTPUT_MODE, true).map_err(|e| match e.raw_os_error() {
            Some(libc::ENXIO) => io::Error::other(format!("{} is a FIFO", path.display())),
            _ => e,
        })?;
        if !file.metadata()?.is_file() {
            return Err(io::Error::other(format!("{} is not a regular file", path.display())));
        }
        file.set_permissions(std::fs::Permissions::from_mode(OUTPUT_MODE))?;
        Ok(file)
    }

    /// Removes the signal file once it has been read.
    pub fn remove_signal(&self) {
        let _ = self.folder.remove("signal");
    }
}

/// Up to `cap` bytes of `path`, a file in the shared folder: never through a symbolic link, never
/// blocking on a FIFO. None when it does not exist; an error when it is not a regular file or is
/// longer than `cap`.
pub fn read_capped(path: &Path, cap: u64) -> io::Result<Option<Vec<u8>>> {
    optional(folder::read_file(path, cap))
}

/// [`read_capped`] for a file of the ConfigMap the controller mounts at `/argo/config`: its keys
/// are links into `..data`, followed.
pub fn read_config(path: &Path, cap: u64) -> io::Result<Option<Vec<u8>>> {
    optional(folder::read_mounted(path, cap))
}

fn optional(read: Result<Vec<u8>, ReadError>) -> io::Result<Option<Vec<u8>>> {
    match read {
        Ok(content) => Ok(Some(content)),
        Err(ReadError::Missing) => Ok(None),
        Err(ReadError::TooLarge { cap, .. }) => Err(io::Error::other(format!("it is longer than {cap} bytes"))),
        Err(e) => Err(e.into()),
    }
}

/// A small decimal number file (`exitcode`, `signal`) as read now.
#[derive(Debug, PartialEq, Eq)]
pub enum Number {
    Missing,
    /// Created but not written yet (Argo's own writers truncate, then write).
    Empty,
    Value(i64),
    /// Anything else, said as a clause: "holds \"x\"".
    Bad(String),
}

/// Reads a decimal number (surrounding whitespace allowed, a sign allowed) from `path`.
pub fn read_number(path: &Path) -> Number {
    match read_capped(path, SMALL_FILE_CAP) {
        Ok(None) => Number::Missing,
        Ok(Some(bytes)) => {
            let text = String::from_utf8_lossy(&bytes);
            let text = text.trim();
            if text.is_empty() {
                return Number::Empty;
            }
            let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
            match text.parse::<i64>() {
                Ok(n) if digits.bytes().all(|b| b.is_ascii_digit()) => Number::Value(n),
                _ => Number::Bad(format!("holds {text:?}, not a decimal number")),
            }
        }
        Err(e) => Number::Bad(format!("cannot be read ({e})")),
    }
}

/// What the signal file asks for now.
#[derive(Debug, PartialEq, Eq)]
pub enum SignalRequest {
    None,
    Signal(i32),
    /// A file that is not a signal number: the sentence for stderr.
    Bad(String),
}

/// Reads the signal file: a decimal signal number 1..SIGRTMAX. An empty file is a writer that has
/// not finished (Argo's writes are not atomic): nothing yet, the next change is awaited.
pub fn read_signal(path: &Path) -> SignalRequest {
    let bad = |why: String| {
        SignalRequest::Bad(format!(
            "ignoring {}: it {why}; write a signal number such as 15 (SIGTERM) or 9 (SIGKILL)",
            path.display()
        ))
    };
    match read_number(path) {
        Number::Missing | Number::Empty => SignalRequest::None,
        Number::Value(n) if (1..=i64::from(sys::max_signal())).contains(&n) => SignalRequest::Signal(n as i32),
        Number::Value(n) => bad(format!("holds {n}, which is not a signal number")),
        Number::Bad(why) => bad(why),
    }
}

/// The kubelet's termination message: written in place (it is a bind-mounted file), at most the
/// 4096 bytes the kubelet keeps.
pub fn write_termination(path: &Path, sentence: &str) -> io::Result<()> {
    let mut end = sentence.len().min(4096);
    while !sentence.is_char_boundary(end) {
        end -= 1;
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    f.write_all(&sentence.as_bytes()[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn numbers_as_argo_writes_them() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("n");
        assert_eq!(read_number(&p), Number::Missing);
        for (text, want) in [
            ("", Number::Empty),
            (" \n", Number::Empty),
            ("137", Number::Value(137)),
            ("0\n", Number::Value(0)),
            ("-1", Number::Value(-1)),
        ] {
            fs::write(&p, text).unwrap();
            assert_eq!(read_number(&p), want, "{text:?}");
        }
        for text in ["1 2", "0x10", "fifteen", "1.0", "+-1"] {
            fs::write(&p, text).unwrap();
            assert!(matches!(read_number(&p), Number::Bad(_)), "{text:?}");
        }
        fs::write(&p, "1".repeat(65)).unwrap();
        assert!(matches!(read_number(&p), Number::Bad(why) if why.contains("longer than 64")));
    }

    #[test]
    fn signal_files_accept_only_signal_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("signal");
        assert_eq!(read_signal(&p), SignalRequest::None);
        fs::write(&p, "15").unwrap();
        assert_eq!(read_signal(&p), SignalRequest::Signal(15));
        fs::write(&p, "").unwrap();
        assert_eq!(read_signal(&p), SignalRequest::None);
        for text in ["0", "-9", "999", "TERM"] {
            fs::write(&p, text).unwrap();
            assert!(matches!(read_signal(&p), SignalRequest::Bad(s) if s.contains("write a signal number")), "{text}");
        }
        fs::remove_file(&p).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", &p).unwrap();
        assert!(matches!(read_signal(&p), SignalRequest::Bad(s) if s.contains("symbolic link")));
    }

    #[test]
    fn exit_codes_and_output_copies_go_into_the_claimed_folder_only() {
        let root = tempfile::tempdir().unwrap();
        let elsewhere = root.path().join("elsewhere");
        fs::create_dir(&elsewhere).unwrap();
        let ctr = Ctr::claim(root.path(), "main").unwrap();
        // A link planted in place of a file, then one in place of the whole folder.
        std::os::unix::fs::symlink(elsewhere.join("target"), ctr.exitcode()).unwrap();
        std::os::unix::fs::symlink(elsewhere.join("target"), ctr.dir.join("stdout")).unwrap();
        assert!(ctr.open_output("stdout").is_err());
        fs::rename(&ctr.dir, root.path().join("ctr/moved")).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &ctr.dir).unwrap();
        ctr.write_exitcode(3).unwrap();
        ctr.open_output("combined").unwrap();
        assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0, "nothing written through a link");
        let moved = root.path().join("ctr/moved");
        assert_eq!(fs::read_to_string(moved.join("exitcode")).unwrap(), "3");
        assert_eq!(fs::symlink_metadata(moved.join("exitcode")).unwrap().permissions().mode() & 0o7777, 0o644);
        assert_eq!(fs::metadata(moved.join("combined")).unwrap().permissions().mode() & 0o7777, OUTPUT_MODE);
    }

    #[test]
    fn names_are_folder_names() {
        assert!(check_name("main", "container").is_ok());
        for bad in ["", ".", "..", "a/b"] {
            assert!(check_name(bad, "container").is_err(), "{bad}");
        }
    }
}
