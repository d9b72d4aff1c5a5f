//! Whether a wrapper lives, told by a signal that only the wrapper can give.
//!
//! A claim has two parts. The *lock* (`flock` LOCK_EX, mode 0600) makes the claim exclusive: of two
//! wrappers with one name exactly one wins, and a restarted container takes over a dead one's name.
//! Only its owner (and root) can open it, so no other UID can hold it. The *beacon* is a FIFO
//! (mode 0644) that the wrapper holds open read-write for its whole life. Any UID may open it to
//! read, none but the owner to write, so the owner is the only writer there can ever be: a reader
//! sees `read(2)` fail with EAGAIN while the wrapper lives, and end of file once it is gone, and a
//! reader that opened it while the wrapper lived is woken by POLLHUP the moment the wrapper closes
//! it or dies (the kernel closes a killed process's descriptors). A waiter polls the beacon in the
//! loop it already runs: no thread, no timer, no wake-up until that moment.
//!
//! An earlier design let waiters park on the lock itself (`flock` LOCK_SH, mode 0444). But any
//! process that can open a file can `flock` it: a step of another UID could take LOCK_EX on a
//! step's lock and hold its successors past that step's record, or past its death.

use std::fs::File;
use std::io::{self, Read};

use nix::errno::Errno;
use nix::fcntl::Flock;

use crate::folder::{Folder, ReadError};

/// The claim's lock: only its owner (and root) can open it, so only they can hold it.
pub const LOCK_MODE: u32 = 0o600;
/// The beacon: every UID may wait on it; only its owner can hold it open for writing.
pub const BEACON_MODE: u32 = 0o644;

/// A living wrapper's claim: its beacon and its lock, both let go of when this is dropped (or the
/// process dies), the beacon first (fields drop in order).
pub struct Alive {
    _beacon: File,
    _lock: Flock<File>,
}

/// Claims `lock` in `folder` and raises the beacon `beacon` beside it. `Ok(None)`: a living wrapper
/// holds the claim. The beacon appears (linked in) only once the claim is won, already open, so a
/// reader never finds a winner's beacon without its writer; a dead wrapper's beacon is replaced.
pub fn claim(folder: &Folder, lock: &str, beacon: &str) -> io::Result<Option<Alive>> {
    let Some(lock) = folder.create_locked(lock, LOCK_MODE)? else { return Ok(None) };
    let beacon = folder.fifo(beacon, BEACON_MODE)?;
    Ok(Some(Alive { _beacon: beacon, _lock: lock }))
}

/// What a reader learns from a beacon.
#[derive(Debug)]
pub enum Liveness {
    /// No beacon: its wrapper has not claimed the name yet (or is not baton).
    Absent,
    /// Its wrapper lives. The beacon, opened for reading: POLLHUP on it means the wrapper is gone.
    Alive(File),
    /// Its wrapper has ended or died.
    Gone,
}

/// Looks at the beacon `name` in `folder` without following a link or blocking. Only a FIFO of the
/// folder's owner is a beacon: anything else is an error, never taken for a living or a dead wrapper.
pub fn look(folder: &Folder, name: &str) -> Result<Liveness, ReadError> {
    let (mut beacon, st) = match folder.open_fifo_reader(name) {
        Ok(opened) => opened,
        Err(ReadError::Missing) => return Ok(Liveness::Absent),
        Err(e) => return Err(e),
    };
    if st.st_uid != folder.owner() {
        return Err(ReadError::WrongOwner { owner: st.st_uid, expected: folder.owner() });
    }
    let mut byte = [0u8; 1];
    loop {
        return match beacon.read(&mut byte) {
            // No writer: the owner let go of it, or died.
            Ok(0) => Ok(Liveness::Gone),
            // A writer holds it open (only the owner can be one). Bytes in it are not baton's: the
            // owner never writes, so only root could have; the writer is there all the same.
            Ok(_) => Ok(Liveness::Alive(beacon)),
            Err(e) if e.raw_os_error() == Some(Errno::EAGAIN as i32) => Ok(Liveness::Alive(beacon)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => Err(ReadError::Io(e)),
        };
    }
}

/// [`look`] for a beacon named by a path: its folder is reached as the path says, the beacon itself
/// never through a link.
pub fn look_at(path: &std::path::Path) -> Result<Liveness, ReadError> {
    let (dir, name) = crate::folder::split(path)?;
    look(&dir, &name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    fn folder() -> (tempfile::TempDir, Folder) {
        let dir = tempfile::tempdir().unwrap();
        let folder = Folder::open(dir.path()).unwrap();
        (dir, folder)
    }

    #[test]
    fn a_claimed_beacon_is_alive_until_its_claim_ends_then_gone() {
        let (_dir, f) = folder();
        assert!(matches!(look(&f, "alive").unwrap(), Liveness::Absent));
        let alive = claim(&f, "lock", "alive").unwrap().expect("the first claim wins");
        let Liveness::Alive(reader) = look(&f, "alive").unwrap() else { panic!("a claimed beacon is alive") };
        assert!(claim(&f, "lock", "alive").unwrap().is_none(), "a living claim is not taken twice");
        drop(alive);
        // The reader that waited on it is woken: poll reports a hang-up at once.
        let ready = crate::sys::poll(&[reader.as_fd()], Some(std::time::Duration::ZERO)).unwrap();
        assert_eq!(ready, vec![true], "the end of the claim wakes a waiting reader");
        assert!(matches!(look(&f, "alive").unwrap(), Liveness::Gone));
    }

    #[test]
    fn a_dead_claim_is_taken_over_and_its_beacon_raised_again() {
        let (_dir, f) = folder();
        drop(claim(&f, "lock", "alive").unwrap().unwrap());
        assert!(matches!(look(&f, "alive").unwrap(), Liveness::Gone));
        let _again = claim(&f, "lock", "alive").unwrap().expect("a dead wrapper's claim is taken over");
        assert!(matches!(look(&f, "alive").unwrap(), Liveness::Alive(_)));
    }

    #[test]
    fn a_beacon_that_is_not_a_fifo_is_an_error() {
        let (dir, f) = folder();
        std::fs::write(dir.path().join("alive"), "").unwrap();
        assert!(matches!(look(&f, "alive"), Err(ReadError::NotFifo)));
        std::fs::remove_file(dir.path().join("alive")).unwrap();
        std::os::unix::fs::symlink("/dev/null", dir.path().join("alive")).unwrap();
        assert!(look(&f, "alive").is_err(), "a link is not followed");
    }
}
