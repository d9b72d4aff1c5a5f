//! The small files `batonctl inject` and `batonctl webhook` are pointed at: `--images`,
//! `--registry-auth` and the docker configs found for it. Read with a cap, so that a wrong file
//! (a log, an image) fails at once with a sentence instead of filling memory.

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};
use baton_controller::registry::Credentials;
use baton_inject::ImageFile;

/// The most such a file may hold.
const MAX_SMALL_FILE: u64 = 4 << 20;

/// The text of a small file named on the command line.
pub fn read_small(path: &Path) -> Result<String> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut text = String::new();
    file.take(MAX_SMALL_FILE + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("cannot read {} as UTF-8 text", path.display()))?;
    if text.len() as u64 > MAX_SMALL_FILE {
        bail!("{} is larger than {} MiB: is it the right file?", path.display(), MAX_SMALL_FILE >> 20);
    }
    Ok(text)
}

/// The `--images` file (ENTRYPOINT and CMD by image); none given is an empty one.
pub fn image_file(path: Option<&Path>) -> Result<ImageFile> {
    let Some(path) = path else { return Ok(ImageFile::default()) };
    ImageFile::parse(&read_small(path)?).map_err(|e| anyhow::anyhow!("--images {}: {e}", path.display()))
}

/// The docker config given as `--registry-auth`.
pub fn registry_auth(path: &Path) -> Result<Credentials> {
    Credentials::parse(&read_small(path)?)
        .map_err(|e| anyhow::anyhow!("--registry-auth {}: {e}", path.display()))
}
