//! Writing the credentials (writer.go): into `/tekton/creds`, then what it holds into `$HOME`.
//!
//! `$HOME` may be a workspace or `/tekton/home`, which steps of other UIDs write: `$HOME` itself is
//! reached as the image made it, but `.ssh`, `.docker` and every credential file in it are made
//! without following links, and one that is a link is refused with a sentence (docs/tekton.md).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::git::Ssh;
use super::{read_capped, Credentials, MAX_SECRET};
use crate::folder::{self, Folder, ReadError};

/// The credential files `CopyCredsToHome` copies (writer.CredsInitCredentials).
const COPIED_TO_HOME: [&str; 4] = [".docker", ".gitconfig", ".git-credentials", ".ssh"];
/// Every credential file is written with this mode (Tekton: 0600).
const FILE_MODE: u32 = 0o600;
/// Folders made in `/tekton/creds` (Tekton: os.ModePerm under the usual umask 022).
const CREDS_DIR_MODE: u32 = 0o755;
/// Folders made in `$HOME` (writer.credsDirPermissions).
const HOME_DIR_MODE: u32 = 0o700;

impl Credentials {
    /// Writes the files into `dir` (`/tekton/creds`) in Tekton's order: docker, then git (basic,
    /// then ssh). A failure is said and the rest goes on, as Tekton only logs it.
    pub fn write(&self, dir: &Path) {
        let report = |what: &str, r: io::Result<()>| {
            if let Err(e) = r {
                eprintln!("baton: error initializing credentials ({what} in {}): {e}", dir.display());
            }
        };
        if self.docker.is_none() && self.basic_git.is_none() && self.ssh.is_none() {
            return;
        }
        let creds =
            match folder::split(dir).and_then(|(parent, name)| parent.ensure_path(Path::new(&name), CREDS_DIR_MODE)) {
                Ok(creds) => creds,
                Err(e) => return report("the folder", Err(e)),
            };
        if let Some(config) = &self.docker {
            let written = creds
                .ensure_path(Path::new(".docker"), CREDS_DIR_MODE)
                .and_then(|docker| docker.write_atomically("config.json", config, FILE_MODE));
            report(".docker/config.json", written);
        }
        let mut gitconfig = None;
        if let Some((config, credentials)) = &self.basic_git {
            let written = creds
                .write_atomically(".gitconfig", config, FILE_MODE)
                .and_then(|()| creds.write_atomically(".git-credentials", credentials, FILE_MODE));
            let ok = written.is_ok();
            report(".gitconfig, .git-credentials", written);
            if !ok {
                return; // gitBuilder.Write stops at the first error.
            }
            gitconfig = Some(config.clone());
        }
        if let Some(ssh) = &self.ssh {
            report(".ssh", ssh.write(&creds, gitconfig));
        }
    }
}

impl Ssh {
    fn write(&self, creds: &Folder, gitconfig: Option<Vec<u8>>) -> io::Result<()> {
        let ssh = creds.ensure_path(Path::new(".ssh"), CREDS_DIR_MODE)?;
        for (secret, key) in &self.keys {
            ssh.write_atomically(&format!("id_{secret}"), key, FILE_MODE)?;
        }
        ssh.write_atomically("config", &self.config, FILE_MODE)?;
        if let Some(known_hosts) = &self.known_hosts {
            ssh.write_atomically("known_hosts", known_hosts, FILE_MODE)?;
        }
        if !self.gitconfig.is_empty() {
            // Tekton appends (O_APPEND) to whatever .gitconfig holds: the basic-git one just written,
            // or an earlier file.
            let mut content = match gitconfig {
                Some(c) => c,
                None => match creds.read(".gitconfig", MAX_SECRET, false) {
                    Ok(c) => c,
                    Err(ReadError::Missing) => Vec::new(),
                    Err(e) => return Err(e.into()),
                },
            };
            content.extend_from_slice(&self.gitconfig);
            creds.write_atomically(".gitconfig", &content, FILE_MODE)?;
        }
        Ok(())
    }
}

/// `CopyCredsToHome`: copies what `/tekton/creds` holds into `$HOME`, whatever wrote it. Nothing
/// here is fatal; each failure is said.
pub fn copy_to_home(creds_dir: &Path) {
    if !creds_dir.is_dir() {
        return;
    }
    let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) else {
        eprintln!("baton: HOME is not set, so the credentials in {} are not copied into it", creds_dir.display());
        return;
    };
    let home = PathBuf::from(home);
    // $HOME itself as the image made it (`/root` may be a link); nothing below it is followed.
    let into = match Folder::open(&home) {
        Ok(into) => into,
        Err(e) => {
            eprintln!("baton: could not copy the credentials from {} to {}: {e}", creds_dir.display(), home.display());
            return;
        }
    };
    for name in COPIED_TO_HOME {
        if let Err(e) = copy_cred(&creds_dir.join(name), &into, name) {
            eprintln!(
                "baton: could not copy the credential {name} from {} to {}: {e}",
                creds_dir.display(),
                home.display()
            );
        }
    }
}

/// `tryCopyCred`: a folder recursively (made 0700 if missing), a file by content (0600), to `name`
/// in `into`; a missing source is no error. A link at `name` is refused, never followed or replaced.
fn copy_cred(source: &Path, into: &Folder, name: &str) -> io::Result<()> {
    let meta = match fs::symlink_metadata(source) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if into.stat(name)?.is_some_and(|st| folder::is_link(&st)) {
        return Err(io::Error::other(format!(
            "{} is a symbolic link, which baton does not follow or replace where other steps can write; remove it",
            into.join(name).display()
        )));
    }
    if !meta.is_dir() {
        return into.write_atomically(name, &read_capped(source)?, FILE_MODE);
    }
    let (folder, _) = into.ensure_sub(name, HOME_DIR_MODE)?;
    for entry in fs::read_dir(source)? {
        let entry = entry?.file_name();
        let entry = entry.to_str().ok_or_else(|| {
            io::Error::other(format!("{} has a name that is not UTF-8; rename it", source.join(&entry).display()))
        })?;
        copy_cred(&source.join(entry), &folder, entry)?;
    }
    Ok(())
}
