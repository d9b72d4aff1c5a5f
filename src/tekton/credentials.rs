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
//! (nothing is followed or truncated in place). No secret value ever goes into a sentence: errors
//! name files, never their contents.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use base64::Engine as _;

use super::files;
use super::gourl::{go_quote, has_path, GoUrl};
use super::message::{go_field, go_json_string};
use crate::folder::ReadError;

/// The credential files `CopyCredsToHome` copies (writer.CredsInitCredentials).
const COPIED_TO_HOME: [&str; 4] = [".docker", ".gitconfig", ".git-credentials", ".ssh"];
/// Every credential file is written with this mode (Tekton: 0600).
const FILE_MODE: u32 = 0o600;
/// Folders made in `/tekton/creds` (Tekton: os.ModePerm under the usual umask 022).
const CREDS_DIR_MODE: u32 = 0o755;
/// Folders made in `$HOME` (writer.credsDirPermissions).
const HOME_DIR_MODE: u32 = 0o700;
/// A Kubernetes secret holds at most 1 MiB.
const MAX_SECRET: u64 = 1024 * 1024;
/// The e-mail Tekton writes for `-basic-docker` entries.
const DOCKER_EMAIL: &str = "not@val.id";

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

#[derive(Debug)]
struct Ssh {
    /// `id_<secret>` files, in the order Tekton writes them.
    keys: Vec<(String, Vec<u8>)>,
    config: Vec<u8>,
    known_hosts: Option<Vec<u8>>,
    /// `insteadOf` rules appended to `.gitconfig`.
    gitconfig: Vec<u8>,
}

/// One `-ssh-git` secret: its private key and known hosts.
struct SshKey {
    secret: String,
    key: Vec<u8>,
    known_hosts: Vec<u8>,
}

/// The `-ssh-git` URLs in the order first given, each with its secrets.
type SshUrls = Vec<(String, Vec<SshKey>)>;

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

// ---------------------------------------------------------------------------------------------------
// Docker (dockercreds.basicDockerBuilder.Write)

/// One `auths` entry as Tekton's `entry` struct keeps it: every other field of a docker config
/// (identitytoken, …) is dropped by Go's decoding.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct DockerEntry {
    username: String,
    password: String,
    auth: String,
    email: String,
}

fn docker_json(
    cfg: &[String],
    config: &[String],
    basic: &[Basic],
    secrets: &Path,
) -> Result<Option<Vec<u8>>, LoadError> {
    let mut auths: BTreeMap<String, DockerEntry> = BTreeMap::new();
    for name in cfg {
        // A .dockercfg is the map of registries itself.
        let path = secrets.join(name).join(".dockercfg");
        auths.extend(docker_auths(&path, false)?);
    }
    for name in config {
        let path = secrets.join(name).join(".dockerconfigjson");
        auths.extend(docker_auths(&path, true)?);
    }
    for b in basic {
        let mut userpass = b.username.clone();
        userpass.push(b':');
        userpass.extend_from_slice(&b.password);
        auths.insert(
            b.url.clone(),
            DockerEntry {
                username: go_string(&b.username),
                password: go_string(&b.password),
                auth: base64::engine::general_purpose::STANDARD.encode(userpass),
                email: DOCKER_EMAIL.to_string(),
            },
        );
    }
    if auths.is_empty() {
        return Ok(None);
    }
    // json.Marshal(configFile{Auth: auths}): map keys sorted, omitempty on all but auth.
    let mut out = String::from("{\"auths\":{");
    for (i, (registry, e)) in auths.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&go_json_string(registry.as_bytes()));
        out.push_str(":{");
        let mut fields = Vec::new();
        for (key, value, always) in [
            ("username", &e.username, false),
            ("password", &e.password, false),
            ("auth", &e.auth, true),
            ("email", &e.email, false),
        ] {
            if always || !value.is_empty() {
                fields.push(format!("\"{key}\":{}", go_json_string(value.as_bytes())));
            }
        }
        out.push_str(&fields.join(","));
        out.push('}');
    }
    out.push_str("}}");
    Ok(Some(out.into_bytes()))
}

/// The registries of a `.dockercfg` (`nested` false) or `.dockerconfigjson` (`nested`: under
/// `auths`) secret, decoded as Go decodes them into Tekton's `entry`.
fn docker_auths(path: &Path, nested: bool) -> Result<BTreeMap<String, DockerEntry>, LoadError> {
    let what = if nested { "a .dockerconfigjson" } else { "a .dockercfg" };
    let bad = |why: String| {
        LoadError::Secret(format!(
            "the docker credentials {} are not {what} ({why}); fix the secret (kubectl create secret docker-registry)",
            path.display()
        ))
    };
    let bytes = read_capped(path).map_err(|e| {
        LoadError::Secret(format!(
            "cannot read the docker credentials {}: {e}; the secret must have the key {}",
            path.display(),
            path.file_name().unwrap_or_default().to_string_lossy()
        ))
    })?;
    // Parsed as a Value: serde_json's syntax errors carry no part of the input (typed errors would).
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| bad(format!("not JSON: error at line {} column {}", e.line(), e.column())))?;
    let map = if nested {
        match &value {
            serde_json::Value::Object(top) => go_field(top, "auths"),
            serde_json::Value::Null => None,
            _ => return Err(bad("not a JSON object".into())),
        }
    } else {
        Some(&value)
    };
    let mut auths = BTreeMap::new();
    match map {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::Object(registries)) => {
            for (registry, entry) in registries {
                let entry = match entry {
                    serde_json::Value::Null => DockerEntry::default(),
                    serde_json::Value::Object(fields) => {
                        let text = |name: &str| match go_field(fields, name) {
                            None | Some(serde_json::Value::Null) => Ok(String::new()),
                            Some(serde_json::Value::String(s)) => Ok(s.clone()),
                            Some(_) => Err(bad(format!("{registry}: {name} is not a string"))),
                        };
                        DockerEntry {
                            username: text("username")?,
                            password: text("password")?,
                            auth: text("auth")?,
                            email: text("email")?,
                        }
                    }
                    _ => return Err(bad(format!("{registry}: not a JSON object"))),
                };
                auths.insert(registry.clone(), entry);
            }
        }
        Some(_) => return Err(bad("the registries are not a JSON object".into())),
    }
    Ok(auths)
}

/// Bytes as a Go string reaches JSON: invalid UTF-8 becomes U+FFFD.
fn go_string(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// ---------------------------------------------------------------------------------------------------
// Git over HTTPS (gitcreds.basicGitConfig.Write)

fn git_files(entries: &[Basic]) -> (Vec<u8>, Vec<u8>) {
    let mut config = b"[credential]\n\thelper = store\n".to_vec();
    for e in entries {
        // A repository URL gets useHttpPath, so that two repositories of one host can have their own.
        config.extend_from_slice(format!("[credential {}]\n\tusername = ", go_quote(&e.url)).as_bytes());
        for &b in &e.username {
            if b == b'\\' {
                config.push(b'\\');
            }
            config.push(b);
        }
        config.push(b'\n');
        if has_path(&e.url) {
            config.extend_from_slice(b"\tuseHttpPath = true\n");
        }
    }
    // Host-only URLs first (git's store returns the first match), then the repository URLs, each
    // group in the order given (sort.SliceStable).
    let host_only = |e: &&Basic| !has_path(&e.url);
    let order = entries.iter().filter(host_only).chain(entries.iter().filter(|e| !host_only(e)));
    let mut credentials = Vec::new();
    for e in order {
        let url = GoUrl::parse(&e.url).expect("checked when the flag was read");
        credentials.extend_from_slice(&url.with_user(&e.username, &e.password));
        credentials.push(b'\n');
    }
    (config, credentials)
}

// ---------------------------------------------------------------------------------------------------
// Git over SSH (gitcreds.sshGitConfig.Write)

fn ssh_files(entries: &SshUrls, ssh_dir: &Path) -> Ssh {
    // Host-only URLs first, each group in the order given.
    let host_only = |(url, _): &&(String, Vec<SshKey>)| ssh_url(url).2.is_empty();
    let order = entries.iter().filter(host_only).chain(entries.iter().filter(|e| !host_only(e)));
    let (mut keys, mut config, mut known_hosts, mut gitconfig) = (Vec::new(), String::new(), Vec::new(), String::new());
    for (url, secrets) in order {
        let (host, port, path) = ssh_url(url);
        let alias = if path.is_empty() {
            host.to_string()
        } else {
            let alias = format!("{host}--{}", path.trim_start_matches('/').replace('/', "--"));
            let repo = path.trim_start_matches('/');
            gitconfig.push_str(&format!("[url \"git@{alias}:{repo}.git\"]\n\tinsteadOf = git@{host}:{repo}.git\n"));
            let from = if port == "22" {
                format!("ssh://{host}/{repo}.git")
            } else {
                format!("ssh://{host}:{port}/{repo}.git")
            };
            gitconfig.push_str(&format!("[url \"ssh://{alias}/{repo}.git\"]\n\tinsteadOf = {from}\n"));
            alias
        };
        config.push_str(&format!("Host {alias}\n    HostName {host}\n    Port {port}\n"));
        for k in secrets {
            keys.push((k.secret.clone(), k.key.clone()));
            config.push_str(&format!("    IdentityFile {}\n", ssh_dir.join(format!("id_{}", k.secret)).display()));
            if !k.known_hosts.is_empty() {
                known_hosts.push(k.known_hosts.clone());
            }
        }
    }
    Ssh {
        keys,
        config: config.into_bytes(),
        known_hosts: (!known_hosts.is_empty()).then(|| known_hosts.join(&b'\n')),
        gitconfig: gitconfig.into_bytes(),
    }
}

/// `parseSSHURL`: `host[:port][/repo/path]`, port 22 unless given.
fn ssh_url(raw: &str) -> (&str, &str, &str) {
    let (hostport, path) = match raw.find('/') {
        Some(i) => (&raw[..i], &raw[i..]),
        None => (raw, ""),
    };
    match split_host_port(hostport) {
        Some((host, port)) => (host, port, path),
        None => (hostport, "22", path),
    }
}

/// Go's `net.SplitHostPort`; None where it returns an error.
fn split_host_port(hostport: &str) -> Option<(&str, &str)> {
    let i = hostport.rfind(':')?;
    let (host, j, k) = if hostport.starts_with('[') {
        let end = hostport.find(']')?;
        if end + 1 != i {
            return None;
        }
        (&hostport[1..end], 1, end + 1)
    } else {
        let host = &hostport[..i];
        if host.contains(':') {
            return None;
        }
        (host, 0, 0)
    };
    if hostport[j..].contains('[') || hostport[k..].contains(']') {
        return None;
    }
    Some((host, &hostport[i + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_urls_as_tekton_splits_them() {
        // gitcreds/creds_test.go: TestParseSSHURL.
        let cases = [
            ("github.com", ("github.com", "22", "")),
            ("github.com:2222", ("github.com", "2222", "")),
            ("github.com/org/repo", ("github.com", "22", "/org/repo")),
            ("github.com:2222/org/repo", ("github.com", "2222", "/org/repo")),
            ("gitlab.example.com", ("gitlab.example.com", "22", "")),
            ("gitlab.example.com:3333/team/project", ("gitlab.example.com", "3333", "/team/project")),
            ("[::1]:2200", ("::1", "2200", "")),
            ("a:b:c", ("a:b:c", "22", "")),
        ];
        for (raw, want) in cases {
            assert_eq!(ssh_url(raw), want, "{raw}");
        }
    }
}
