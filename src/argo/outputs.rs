//! The outputs of the container named `main`, put where Argo's `wait` container takes them:
//! each output parameter's file (`valueFrom.path`) copied to `outputs/parameters/<path>`, each output
//! artifact (file or folder) as a tar.gz at `outputs/artifacts/<path>.tgz`, laid out as Argo's
//! `archive.TarGzToWriter` lays it out (one entry named after the file; a folder as its name and
//! everything below it, in lexical order, symbolic links kept as links). Paths on a volume the
//! template mounts are left to `wait`; a missing path is said and skipped (it may be optional).

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt};
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;

use crate::folder::create_atomically;
use super::template::{clean, Template};

/// Go's `gzip.DefaultCompression`.
const GZIP_LEVEL: u32 = 6;

/// Saves every output; the first that cannot be saved ends it with a sentence.
pub fn save(template: &Template, root: &Path) -> Result<(), String> {
    for path in template.parameter_paths() {
        if !template.on_volume(path) {
            save_parameter(root, path)?;
        }
    }
    for path in template.artifact_paths() {
        if !template.on_volume(path) {
            save_artifact(root, path)?;
        }
    }
    Ok(())
}

/// `<root>/<under>/<path><suffix>`, cleaned as Go's `filepath.Join` cleans it, except that `..`
/// never climbs out of `<root>/<under>`; None when nothing is left of `path`.
pub fn destination(root: &Path, under: &str, path: &str, suffix: &str) -> Option<PathBuf> {
    let rooted = format!("/{path}{suffix}");
    let (_, parts) = clean(&rooted);
    if parts.is_empty() {
        return None;
    }
    Some(parts.iter().fold(root.join(under), |p, part| p.join(part)))
}

fn nameless(what: &str, path: &str) -> String {
    format!("cannot save the output {what} {path:?}: the path names no file; give it the path of a file")
}

fn save_parameter(root: &Path, path: &str) -> Result<(), String> {
    let dst = destination(root, "outputs/parameters", path, "").ok_or_else(|| nameless("parameter", path))?;
    let mut src = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            eprintln!("baton: the output parameter file {path} does not exist; not saved (it may be optional)");
            return Ok(());
        }
        Err(e) => return Err(format!("cannot read the output parameter file {path}: {e}")),
    };
    make_parents(&dst)?;
    create_atomically(&dst, 0o644, |out| io::copy(&mut src, out).map(drop))
        .map_err(|e| format!("cannot save the output parameter {path} to {}: {e}", dst.display()))
}

fn save_artifact(root: &Path, path: &str) -> Result<(), String> {
    // Argo drops one trailing slash for the archive's name.
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    let dst = destination(root, "outputs/artifacts", trimmed, ".tgz").ok_or_else(|| nameless("artifact", path))?;
    // Taken cleaned, as Go's filepath.Abs takes it: "/tmp/file/" is the file /tmp/file.
    let source = absolute(path);
    let meta = match fs::metadata(&source) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            eprintln!("baton: the output artifact {path} does not exist; not saved (it may be optional)");
            return Ok(());
        }
        Err(e) => return Err(format!("cannot read the output artifact {path}: {e}")),
    };
    if !meta.is_file() && !meta.is_dir() {
        return Err(format!("cannot save the output artifact {path}: it is not a regular file or a folder"));
    }
    let name = source.file_name().map_or_else(|| PathBuf::from("."), PathBuf::from);
    make_parents(&dst)?;
    create_atomically(&dst, 0o644, |out| {
        let mut tar = tar::Builder::new(GzEncoder::new(out, Compression::new(GZIP_LEVEL)));
        tar.follow_symlinks(false);
        if meta.is_dir() {
            append_tree(&mut tar, &source, &name)?;
        } else {
            tar.append_file(&name, &mut File::open(&source)?)?;
        }
        tar.into_inner()?.finish()?.flush()
    })
    .map_err(|e| format!("cannot save the output artifact {path} to {}: {e}", dst.display()))
}

/// The folder `dir` as `name`, then everything below it in lexical order, as Go's `filepath.Walk`.
fn append_tree<W: Write>(tar: &mut tar::Builder<W>, dir: &Path, name: &Path) -> io::Result<()> {
    tar.append_path_with_name(dir, name)?;
    let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let (path, inner) = (entry.path(), name.join(entry.file_name()));
        let kind = entry.file_type()?;
        if kind.is_dir() {
            append_tree(tar, &path, &inner)?;
        } else if kind.is_file() || kind.is_symlink() {
            tar.append_path_with_name(&path, &inner)?;
        } else if kind.is_socket() {
            eprintln!("baton: {} is a socket, which a tar archive cannot hold; left out", path.display());
        } else {
            // FIFOs and devices: a header only, as Go's tar writes them.
            let mut header = tar::Header::new_gnu();
            header.set_metadata(&fs::symlink_metadata(&path)?);
            tar.append_data(&mut header, &inner, io::empty())?;
        }
    }
    Ok(())
}

fn absolute(path: &str) -> PathBuf {
    let (abs, parts) = clean(path);
    let base = if abs { PathBuf::from("/") } else { std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")) };
    parts.iter().fold(
        base,
        |p, part| if *part == ".." { p.parent().map_or(p.clone(), Path::to_path_buf) } else { p.join(part) },
    )
}

/// The folders on the way to `file`, made with mode 0755 as Argo makes them.
fn make_parents(file: &Path) -> Result<(), String> {
    let Some(dir) = file.parent() else { return Ok(()) };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(|e| format!("cannot create the folder {}: {e}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_stay_under_their_folder() {
        let root = Path::new("/r");
        assert_eq!(
            destination(root, "outputs/artifacts", "/tmp/a", ".tgz").unwrap(),
            Path::new("/r/outputs/artifacts/tmp/a.tgz")
        );
        assert_eq!(
            destination(root, "outputs/parameters", "rel/p", "").unwrap(),
            Path::new("/r/outputs/parameters/rel/p")
        );
        assert_eq!(
            destination(root, "outputs/parameters", "/tmp/../x", "").unwrap(),
            Path::new("/r/outputs/parameters/x")
        );
        assert_eq!(
            destination(root, "outputs/parameters", "/../../etc/passwd", "").unwrap(),
            Path::new("/r/outputs/parameters/etc/passwd")
        );
        assert!(destination(root, "outputs/parameters", "/", "").is_none());
    }
}
