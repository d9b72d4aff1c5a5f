//! The outputs of the container named `main`, put where Argo's `wait` container takes them:
//! each output parameter's file (`valueFrom.path`) copied to `outputs/parameters/<path>`, each output
//! artifact as a tar.gz at `outputs/artifacts/<path>.tgz`, laid out as Argo's `archive.TarGzToWriter`
//! lays it out. Paths on a volume the template mounts are left to `wait`; a missing path is said and
//! skipped (it may be optional).
//!
//! `/var/run/argo` is writable by every container of the pod, so everything is written there through
//! the folder layer: each folder on the way is made or opened without following a link
//! ([`Folder::ensure_path`]) and each file is made under a temporary name and renamed into place; a
//! link planted under `outputs/` is refused, never written through. What is read comes from the
//! container's own file system and never blocks: a parameter is read only if it is a regular file,
//! at most the core's cap for results (all parameters together); an artifact's FIFOs and devices are
//! archived as headers only and its files up to the size they had when opened.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use baton_contract::message::MAX_DECODED_RESULTS;
use flate2::write::GzEncoder;
use flate2::Compression;

use super::gotar::{self, Entry, Names};
use super::template::{clean, Template};
use crate::folder::{self, Folder, ReadError};

/// Go's `gzip.DefaultCompression`.
const GZIP_LEVEL: u32 = 6;
/// Mode of the folders under `outputs/`, as Argo makes them.
const FOLDER_MODE: u32 = 0o755;
/// Mode of the saved outputs (`wait` may read them as another UID).
const FILE_MODE: u32 = 0o644;

/// Saves every output; the first that cannot be saved ends it with a sentence.
pub fn save(template: &Template, root: &Path) -> Result<(), String> {
    let top = Folder::open(root).map_err(|e| {
        format!(
            "cannot open the shared folder {} ({e}): it must be an emptyDir mounted in every container of the pod",
            root.display()
        )
    })?;
    let mut room = MAX_DECODED_RESULTS as u64;
    for path in template.parameter_paths() {
        if !template.on_volume(path) {
            room -= save_parameter(&top, path, room)?;
        }
    }
    for path in template.artifact_paths() {
        if !template.on_volume(path) {
            save_artifact(&top, path)?;
        }
    }
    Ok(())
}

/// Where an output goes: a folder below `under`, relative to the shared folder, and the file's
/// name. `<under>/<path><suffix>`, cleaned as Go's `filepath.Join` cleans it, except that `..`
/// never climbs out of `under`; None when nothing is left of `path`.
pub fn destination(under: &str, path: &str, suffix: &str) -> Option<(PathBuf, String)> {
    let rooted = format!("/{path}{suffix}");
    let (_, mut parts) = clean(&rooted);
    let name = parts.pop()?.to_string();
    Some((parts.iter().fold(PathBuf::from(under), |p, part| p.join(part)), name))
}

/// Writes the output `name` into the folder `dir` below `top` (made as needed, never through a
/// link): under a temporary name, then renamed into place.
fn write_output(
    top: &Folder,
    dir: &Path,
    name: &str,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    top.ensure_path(dir, FOLDER_MODE)?.create_atomically(name, FILE_MODE, fill)
}

/// Where Argo's emissary writes an artifact and Argo's `wait` container looks for it, relative to the
/// shared folder: `filepath.Join("/var/run/argo", "/outputs/artifacts/", path + ".tgz")`, whose `..`
/// may climb out of `outputs/artifacts`. None when it would climb out of the shared folder itself.
pub fn artifact_destination(path: &str) -> Option<(PathBuf, String)> {
    let joined = format!("outputs/artifacts/{path}.tgz");
    let (_, mut parts) = clean(&joined);
    if parts.first() == Some(&"..") {
        return None;
    }
    let name = parts.pop()?.to_string();
    Some((parts.iter().collect(), name))
}

fn nameless(what: &str, path: &str) -> String {
    format!("cannot save the output {what} {path:?}: the path names no file; give it the path of a file")
}

/// Saves one parameter of at most `room` bytes; returns its size.
fn save_parameter(top: &Folder, path: &str, room: u64) -> Result<u64, String> {
    let (dir, name) = destination("outputs/parameters", path, "").ok_or_else(|| nameless("parameter", path))?;
    let value = match folder::read_mounted(Path::new(path), room) {
        Ok(value) => value,
        Err(ReadError::Missing) => {
            eprintln!("baton: the output parameter file {path} does not exist; not saved (it may be optional)");
            return Ok(0);
        }
        Err(ReadError::NotRegular) => {
            return Err(format!(
                "cannot save the output parameter {path}: it is not a regular file (a folder, FIFO or device); write \
                 the value into a regular file"
            ))
        }
        Err(ReadError::TooLarge { size, .. }) => {
            return Err(format!(
                "cannot save the output parameter {path}: it is {size} bytes, more than the {room} bytes left of the \
                 {MAX_DECODED_RESULTS} that the output parameters may hold together; save large data as an output \
                 artifact"
            ))
        }
        Err(e) => return Err(format!("cannot read the output parameter file {path}: {e}")),
    };
    write_output(top, &dir, &name, |out| out.write_all(&value)).map_err(|e| {
        format!("cannot save the output parameter {path} to {}: {e}", top.path().join(&dir).join(&name).display())
    })?;
    Ok(value.len() as u64)
}

fn save_artifact(top: &Folder, path: &str) -> Result<(), String> {
    // Argo drops one trailing slash for the archive's name.
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    let (dir, name) = artifact_destination(trimmed).ok_or_else(|| {
        format!(
            "cannot save the output artifact {path}: its archive would go outside the shared folder {} (its `..` \
             climbs out of it); give the artifact a path that stays below it",
            top.path().display()
        )
    })?;
    // Taken cleaned, as Go's filepath.Abs takes it: "/tmp/file/" is the file /tmp/file.
    let source = absolute(path);
    // As Argo's TarGzToWriter: a path that does not exist (through a link too) may be optional; one
    // that is not a regular file or folder (through a link too) fails the step.
    let target = match fs::metadata(&source) {
        Ok(meta) if meta.is_file() || meta.is_dir() => meta,
        Ok(_) => {
            return Err(format!(
                "cannot save the output artifact {path}: it is not a regular file or folder (a FIFO, device or \
                 socket), which Argo does not archive; give it the path of a file or folder"
            ))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            eprintln!("baton: the output artifact {path} does not exist; not saved (it may be optional)");
            return Ok(());
        }
        Err(e) => return Err(format!("cannot read the output artifact {path}: {e}")),
    };
    let entry = source.file_name().map_or_else(|| PathBuf::from("."), PathBuf::from);
    // A link at the path to a folder is archived as the link only (filepath.Walk does not follow
    // it); a link to a file, as the file it names (Argo opens it), under the link's name.
    let is_link = fs::symlink_metadata(&source).is_ok_and(|m| m.file_type().is_symlink());
    let source = if is_link && target.is_file() {
        fs::canonicalize(&source).map_err(|e| format!("cannot read the output artifact {path}: {e}"))?
    } else {
        source
    };
    write_output(top, &dir, &name, |out| {
        let mut tar = tar::Builder::new(GzEncoder::new(out, Compression::new(GZIP_LEVEL)));
        append(&mut tar, &mut Names::default(), &source, &entry)?;
        tar.into_inner()?.finish()?.flush()
    })
    .map_err(|e| {
        format!("cannot save the output artifact {path} to {}: {e}", top.path().join(&dir).join(&name).display())
    })
}

/// `path` as the entry `name`, as Go's `filepath.Walk` and `tar.FileInfoHeader` see it, never
/// following a link and never blocking: a folder, then everything below it in lexical order; a
/// regular file with as many bytes as it had when opened; a link as a link; a FIFO or a device as
/// a header only (nothing is read from it). A socket in a folder fails it, as Go's
/// `tar.FileInfoHeader` does ("sockets not supported"). Each header as Go writes it ([`gotar`]).
fn append<W: Write>(tar: &mut tar::Builder<W>, names: &mut Names, path: &Path, name: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(path)?;
    let kind = meta.file_type();
    let header = |meta: &fs::Metadata, names: &mut Names| {
        let link = if kind.is_symlink() { fs::read_link(path)?.into_os_string().into_vec() } else { Vec::new() };
        let entry = name.as_os_str().as_bytes().to_vec();
        Entry::of(entry, meta, link, names).ok_or_else(|| {
            io::Error::other(format!(
                "{} is a socket, which a tar archive cannot hold; remove it first",
                path.display()
            ))
        })
    };
    if kind.is_file() {
        let (file, st) = folder::open_file(path).map_err(|e| io::Error::other(format!("{}: {e}", path.display())))?;
        // The size and the rest as the opened file has them.
        let entry = header(&file.metadata()?, names)?;
        let path = path.to_path_buf();
        return gotar::append(tar, &entry, Exactly { file, left: st.st_size as u64, path });
    }
    gotar::append(tar, &header(&meta, names)?, io::empty())?;
    if !kind.is_dir() {
        return Ok(());
    }
    let mut entries: Vec<_> = fs::read_dir(path)?.collect::<io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        if entry.file_type()?.is_socket() {
            let why =
                format!("{} is a socket, which a tar archive cannot hold; remove it first", entry.path().display());
            return Err(io::Error::other(why));
        }
        append(tar, names, &entry.path(), &name.join(entry.file_name()))?;
    }
    Ok(())
}

/// The first `left` bytes of a file, the size its tar header gives: a file that grows while it is
/// archived (an endless one too) is cut there; one that shrinks is an error, not a corrupt archive.
struct Exactly {
    file: File,
    left: u64,
    path: PathBuf,
}

impl Read for Exactly {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = self.left.min(buf.len() as u64) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read(&mut buf[..want])?;
        if n == 0 {
            let why =
                format!("{} shrank while it was archived; let the command finish writing it", self.path.display());
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, why));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn absolute(path: &str) -> PathBuf {
    let (abs, parts) = clean(path);
    let base = if abs { PathBuf::from("/") } else { std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")) };
    parts.iter().fold(
        base,
        |p, part| {
            if *part == ".." {
                p.parent().map_or(p.clone(), Path::to_path_buf)
            } else {
                p.join(part)
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_stay_under_their_folder() {
        let at = |dir: &str, name: &str| Some((PathBuf::from(dir), name.to_string()));
        assert_eq!(destination("outputs/artifacts", "/tmp/a", ".tgz"), at("outputs/artifacts/tmp", "a.tgz"));
        assert_eq!(destination("outputs/parameters", "rel/p", ""), at("outputs/parameters/rel", "p"));
        assert_eq!(destination("outputs/parameters", "/tmp/../x", ""), at("outputs/parameters", "x"));
        assert_eq!(destination("outputs/parameters", "/../../etc/passwd", ""), at("outputs/parameters/etc", "passwd"));
        assert!(destination("outputs/parameters", "/", "").is_none());
    }

    #[test]
    fn artifact_destinations_are_argos_join_within_the_shared_folder() {
        let at = |dir: &str, name: &str| Some((PathBuf::from(dir), name.to_string()));
        assert_eq!(artifact_destination("/tmp/a"), at("outputs/artifacts/tmp", "a.tgz"));
        assert_eq!(artifact_destination("/tmp/../../x"), at("outputs", "x.tgz"));
        assert_eq!(artifact_destination("/../../x"), at("", "x.tgz"));
        assert_eq!(artifact_destination("/../../../x"), None);
        assert_eq!(artifact_destination("rel/../../../../x"), None);
    }

    #[test]
    fn a_file_is_archived_with_the_size_its_header_gives() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        fs::write(&path, "0123456789").unwrap();
        let read = |left| {
            let mut bytes = Vec::new();
            Exactly { file: File::open(&path).unwrap(), left, path: path.clone() }
                .read_to_end(&mut bytes)
                .map(|_| bytes)
        };
        assert_eq!(read(4).unwrap(), b"0123", "a file that grew is cut at its size");
        assert_eq!(read(10).unwrap(), b"0123456789");
        let shrank = read(11).unwrap_err();
        assert!(shrank.to_string().contains("shrank while it was archived"), "{shrank}");
    }
}
