//! Tekton's subcommands: `init`, `cp`, `step-init`, `decode-script`. Success exits 0 with one line
//! on stderr; failure prints `<cmd> error: <msg>` and exits 1, as Tekton's entrypoint does.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;


/// Mode of the copied entrypoint: the owner may write and run it, everybody may run it.
pub const BINARY_MODE: u32 = 0o311;

/// Runs the subcommand named by the first positional argument; None when there is none.
pub fn process(args: &[OsString], root: &Path) -> Option<i32> {
    let name = args.first()?.to_str()?;
    let rest: Vec<PathBuf> = args[1..].iter().map(PathBuf::from).collect();
    let result = match name {
        "cp" => match rest.as_slice() {
            [src, dst] => cp(src, dst).map(|()| format!("Copied {} to {}", src.display(), dst.display())),
            _ => Err(format!("expected 2 arguments, SRC DST; got {}", rest.len())),
        },
        "init" => match rest.as_slice() {
            [src, dst, steps @ ..] => {
                install(src, dst).and_then(|()| step_init(root, steps)).map(|()| "Entrypoint initialization".to_string())
            }
            _ => Err(format!("expected SRC DST [STEP...]; got {} arguments", rest.len())),
        },
        "step-init" => step_init(root, &rest).map(|()| format!("Setup {} directories", root.join("steps").display())),
        "decode-script" => match rest.as_slice() {
            [file] => decode_script(file).map(|()| format!("Decoded script {}", file.display())),
            _ => Err(format!("expected 1 argument, FILE; got {}", rest.len())),
        },
        _ => return None,
    };
    Some(match result {
        Ok(done) => {
            eprintln!("{done}");
            0
        }
        Err(e) => {
            eprintln!("{name} error: {e}");
            1
        }
    })
}

/// Copies `src` to `dst` with mode 0311, through a new file under an unpredictable name and a
/// rename: a reader (or an init container that restarts while a step already runs the old copy)
/// never sees a part, and nothing planted in the shared folder is followed.
pub fn cp(src: &Path, dst: &Path) -> Result<(), String> {
    let mut source = File::open(src).map_err(|e| format!("open {}: {e}", src.display()))?;
    if fs::metadata(dst).is_ok_and(|m| m.is_dir()) {
        return Err(format!("copy {} to {}: is a directory", src.display(), dst.display()));
    }
    crate::folder::create_atomically(dst, BINARY_MODE, |out| io::copy(&mut source, out).map(drop))
        .map_err(|e| format!("copy {} to {}: {e}", src.display(), dst.display()))
}

/// `init`'s copy: the entrypoint, and beside it the CEL evaluator (`baton-cel`) when the image has
/// one beside `src`, so that steps with CEL `when` expressions find it in `/tekton/bin`.
fn install(src: &Path, dst: &Path) -> Result<(), String> {
    cp(src, dst)?;
    let companion = src.with_file_name(super::when::CEL_BINARY);
    if companion.is_file() {
        cp(&companion, &dst.with_file_name(super::when::CEL_BINARY))?;
    }
    Ok(())
}

/// Creates `<root>/steps/<name>` and `<root>/steps/<i>` as symbolic links to `<root>/run/<i>/status`.
/// An existing link is fine (init containers restart); a wrong one is replaced.
pub fn step_init(root: &Path, steps: &[PathBuf]) -> Result<(), String> {
    let dir = root.join("steps");
    fs::create_dir_all(&dir).map_err(|e| format!("creating steps directory {}: {e}", dir.display()))?;
    for (i, step) in steps.iter().enumerate() {
        let target = root.join("run").join(i.to_string()).join("status");
        link(&target, &dir.join(step))?;
        link(&target, &dir.join(i.to_string()))?;
    }
    Ok(())
}

fn link(target: &Path, path: &Path) -> Result<(), String> {
    let fail = |e: io::Error| format!("symlink {} {}: {e}", target.display(), path.display());
    match std::os::unix::fs::symlink(target, path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            if fs::read_link(path).is_ok_and(|t| t == target) {
                return Ok(());
            }
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let tmp = path.with_file_name(crate::folder::temp_name(&name));
            std::os::unix::fs::symlink(target, &tmp).and_then(|()| fs::rename(&tmp, path)).map_err(|e| {
                let _ = fs::remove_file(&tmp);
                fail(e)
            })
        }
        Err(e) => Err(fail(e)),
    }
}

/// Decodes a script file from standard (padded) base64 in place, keeping its mode. Line breaks in
/// the encoded text are ignored, as Go's decoder ignores them.
pub fn decode_script(path: &Path) -> Result<(), String> {
    let shown = path.display();
    let mut encoded = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut encoded))
        .map_err(|e| format!("error reading from script file {:?}: {e}", shown.to_string()))?;
    encoded.retain(|b| *b != b'\n' && *b != b'\r');
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    );
    let decoded = engine
        .decode(&encoded)
        .map_err(|e| format!("error decoding script file {:?}: illegal base64 data ({e})", shown.to_string()))?;
    OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .and_then(|mut f| f.write_all(&decoded))
        .map_err(|e| format!("error writing decoded script file {:?}: {e}", shown.to_string()))
}
