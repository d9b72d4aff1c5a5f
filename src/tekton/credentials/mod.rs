//! Tekton's legacy credential initialisation ("creds-init"), as its entrypoint does it
//! (tektoncd/pipeline v1.15: cmd/entrypoint/main.go, pkg/credentials/{gitcreds,dockercreds,writer}).
//!
//! When a TaskRun's service account has secrets annotated `tekton.dev/git-*` or `tekton.dev/docker-*`,
//! the controller mounts each at `/tekton/creds-secrets/<secret>` and passes every step
//! `-basic-git=<secret>=<url>`, `-ssh-git=<secret>=<url>`, `-basic-docker=<secret>=<url>`,
//! `-docker-config=<secret>` or `-docker-cfg=<secret>`. The entrypoint then writes, into the step's
//! own memory emptyDir `/tekton/creds`:
//! - `.docker/config.json`: `{"auths":{…}}` merged from the `-docker-cfg` secrets, then the
//!   `-docker-config` secrets, then the `-basic-docker` ones (a later one wins per registry);
//! - `.gitconfig` (`[credential] helper = store` and one `[credential "<url>"]` per `-basic-git`) and
//!   `.git-credentials` (`https://user:password@host…`, host-only URLs first);
//! - `.ssh/id_<secret>`, `.ssh/config` (a `Host` per URL, host-only first), `.ssh/known_hosts`, and
//!   `insteadOf` rules appended to `.gitconfig` for repository-specific SSH URLs;
//!
//! and copies `.docker`, `.gitconfig`, `.git-credentials` and `.ssh` from `/tekton/creds` into
//! `$HOME` (also when no flag was given).
//!
//! Every secret file is read when the flags are read, so a missing one fails the step before
//! anything is written or run. Files are written 0600 under a fresh name and renamed into place
//! (nothing is followed or truncated in place); in `$HOME`, which other steps may write, a link
//! where a credential goes is refused (writer.rs). No secret value ever goes into a sentence:
//! errors name files, never their contents.

mod docker;
mod git;
mod writer;

use std::io;
use std::path::Path;

use super::gourl::GoUrl;
use crate::folder::ReadError;
use docker::docker_json;
use git::{git_files, ssh_files, Ssh, SshKey, SshUrls};

pub use writer::copy_to_home;

/// A Kubernetes secret holds at most 1 MiB.
const MAX_SECRET: u64 = 1024 * 1024;

/// Why the credentials cannot be set up. Neither sentence carries a secret value.
#[derive(Debug, PartialEq, Eq)]
pub enum LoadError {
    /// A flag's value is wrong or names a secret file that cannot be read: Go's flag package
    /// reports it ("invalid value … for flag -basic-git: …") and exits 2.
    Flag(String),
    /// A `-docker-config` / `-docker-cfg` secret that cannot be read or is not a docker config:
    /// Tekton logs it and runs without the docker credentials; baton fails the step (exit 1).
    Secret(String),
}

/// The files to write into `/tekton/creds`, worked out from the flags with every secret read.
#[derive(Debug, Default)]
pub struct Credentials {
    /// `.docker/config.json`.
    docker: Option<Vec<u8>>,
    /// `.gitconfig` and `.git-credentials` of the `-basic-git` secrets.
    basic_git: Option<(Vec<u8>, Vec<u8>)>,
    ssh: Option<Ssh>,
}

/// A `-basic-git` / `-basic-docker` entry.
struct Basic {
    url: String,
    username: Vec<u8>,
    password: Vec<u8>,
}

/// Reads every secret the flags name (under `secrets`, `/tekton/creds-secrets`) and works out the
/// files, as Tekton's flag parsing (`Set`) and builders (`Write`) do. `creds_dir` is
/// `/tekton/creds` (the `.ssh/config` names the keys there).
pub fn load(flags: &[(String, String)], secrets: &Path, creds_dir: &Path) -> Result<Credentials, LoadError> {
    let mut basic_git: Vec<Basic> = Vec::new();
    let mut ssh_git: SshUrls = Vec::new();
    let mut basic_docker: Vec<Basic> = Vec::new();
    let mut docker_config: Vec<String> = Vec::new();
    let mut docker_cfg: Vec<String> = Vec::new();
    for (flag, value) in flags {
        let invalid = |why: String| LoadError::Flag(format!("invalid value {value:?} for flag -{flag}: {why}"));
        match flag.as_str() {
            "docker-config" => docker_config.push(value.clone()),
            "docker-cfg" => docker_cfg.push(value.clone()),
            kind => {
                // basicGitConfig.Set, sshGitConfig.Set, basicDocker.Set: exactly "secret=url".
                let parts: Vec<&str> = value.split('=').collect();
                let [secret, url] = parts[..] else {
                    return Err(invalid(format!("expect entries of the form secret=url, got: {value}")));
                };
                let dir = secrets.join(secret);
                match kind {
                    "ssh-git" => {
                        let key = read_secret(&dir.join("ssh-privatekey")).map_err(invalid)?;
                        let known_hosts = read_secret(&dir.join("known_hosts")).unwrap_or_default();
                        let entry = SshKey { secret: secret.to_string(), key, known_hosts };
                        match ssh_git.iter_mut().find(|(u, _)| u == url) {
                            Some((_, entries)) => entries.push(entry),
                            None => ssh_git.push((url.to_string(), vec![entry])),
                        }
                    }
                    _ => {
                        let list = if kind == "basic-git" { &mut basic_git } else { &mut basic_docker };
                        if list.iter().any(|b| b.url == url) {
                            return Err(invalid(format!("multiple entries for url: {url}")));
                        }
                        let username = read_secret(&dir.join("username")).map_err(invalid)?;
                        let password = read_secret(&dir.join("password")).map_err(invalid)?;
                        if kind == "basic-git" {
                            // url.Parse, as newBasicEntry does: a URL Go cannot parse is a flag error.
                            GoUrl::parse(url).map_err(invalid)?;
                        }
                        list.push(Basic { url: url.to_string(), username, password });
                    }
                }
            }
        }
    }
    Ok(Credentials {
        docker: docker_json(&docker_cfg, &docker_config, &basic_docker, secrets)?,
        basic_git: (!basic_git.is_empty()).then(|| git_files(&basic_git)),
        ssh: (!ssh_git.is_empty()).then(|| ssh_files(&ssh_git, &creds_dir.join(".ssh"))),
    })
}

/// A secret's file (the keys of a Secret volume are links into `..data`) or one of `/tekton/creds`.
fn read_capped(path: &Path) -> io::Result<Vec<u8>> {
    crate::folder::read_mounted(path, MAX_SECRET).map_err(|e| match e {
        ReadError::TooLarge { .. } => io::Error::other("larger than the 1 MiB a Kubernetes secret can hold"),
        e => e.into(),
    })
}

/// A secret file, whole; the sentence names the file (Go: "open PATH: no such file or directory").
fn read_secret(path: &Path) -> Result<Vec<u8>, String> {
    read_capped(path).map_err(|e| format!("open {}: {e}", path.display()))
}
