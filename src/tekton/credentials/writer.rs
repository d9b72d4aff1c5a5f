//! Writing the credentials (writer.go): into `/tekton/creds`, then what it holds into `$HOME`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::git::Ssh;
use super::{read_capped, Credentials};
use crate::tekton::files;

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
        let any = self.docker.is_some() || self.basic_git.is_some() || self.ssh.is_some();
        if any {
            report("the folder", files::make_dir(dir, CREDS_DIR_MODE));
        }
        if let Some(config) = &self.docker {
            let docker = dir.join(".docker");
            report(
                ".docker/config.json",
                files::make_dir(&docker, CREDS_DIR_MODE)
                    .and_then(|()| crate::folder::write_atomically(&docker.join("config.json"), config, FILE_MODE)),
            );
        }
        let mut gitconfig = None;
        if let Some((config, credentials)) = &self.basic_git {
            let written = crate::folder::write_atomically(&dir.join(".gitconfig"), config, FILE_MODE)
                .and_then(|()| crate::folder::write_atomically(&dir.join(".git-credentials"), credentials, FILE_MODE));
            let ok = written.is_ok();
            report(".gitconfig, .git-credentials", written);
            if !ok {
                return; // gitBuilder.Write stops at the first error.
            }
            gitconfig = Some(config.clone());
        }
        if let Some(ssh) = &self.ssh {
            report(".ssh", ssh.write(dir, gitconfig));
        }
    }
}

impl Ssh {
    fn write(&self, dir: &Path, gitconfig: Option<Vec<u8>>) -> io::Result<()> {
        let ssh = dir.join(".ssh");
        files::make_dir(&ssh, CREDS_DIR_MODE)?;
        for (secret, key) in &self.keys {
            crate::folder::write_atomically(&ssh.join(format!("id_{secret}")), key, FILE_MODE)?;
        }
        crate::folder::write_atomically(&ssh.join("config"), &self.config, FILE_MODE)?;
        if let Some(known_hosts) = &self.known_hosts {
            crate::folder::write_atomically(&ssh.join("known_hosts"), known_hosts, FILE_MODE)?;
        }
        if !self.gitconfig.is_empty() {
            // Tekton appends (O_APPEND) to whatever .gitconfig holds: the basic-git one just written,
            // or an earlier file.
            let path = dir.join(".gitconfig");
            let mut content = match gitconfig {
                Some(c) => c,
                None => read_capped(&path).or_else(|e| {
                    if e.kind() == io::ErrorKind::NotFound {
                        Ok(Vec::new())
                    } else {
                        Err(e)
                    }
                })?,
            };
            content.extend_from_slice(&self.gitconfig);
            crate::folder::write_atomically(&path, &content, FILE_MODE)?;
        }
        Ok(())
    }
}

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
    for name in COPIED_TO_HOME {
        if let Err(e) = copy_cred(&creds_dir.join(name), &home.join(name)) {
            eprintln!(
                "baton: could not copy the credential {name} from {} to {}: {e}",
                creds_dir.display(),
                home.display()
            );
        }
    }
}

/// `tryCopyCred`: a folder recursively (made 0700 if missing), a file by content (0600); a
/// missing source is no error.
fn copy_cred(source: &Path, destination: &Path) -> io::Result<()> {
    let meta = match fs::symlink_metadata(source) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if meta.is_dir() {
        files::make_dir(destination, HOME_DIR_MODE)?;
        for entry in fs::read_dir(source)? {
            let name = entry?.file_name();
            copy_cred(&source.join(&name), &destination.join(&name))?;
        }
        Ok(())
    } else {
        crate::folder::write_atomically(destination, &read_capped(source)?, FILE_MODE)
    }
}
