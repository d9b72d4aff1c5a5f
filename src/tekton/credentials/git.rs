//! The git credentials: over HTTPS (gitcreds.basicGitConfig.Write) and over SSH
//! (gitcreds.sshGitConfig.Write).

use std::path::Path;

use super::Basic;
use crate::tekton::gourl::{go_quote, has_path, GoUrl};

#[derive(Debug)]
pub(super) struct Ssh {
    /// `id_<secret>` files, in the order Tekton writes them.
    pub(super) keys: Vec<(String, Vec<u8>)>,
    pub(super) config: Vec<u8>,
    pub(super) known_hosts: Option<Vec<u8>>,
    /// `insteadOf` rules appended to `.gitconfig`.
    pub(super) gitconfig: Vec<u8>,
}

/// One `-ssh-git` secret: its private key and known hosts.
pub(super) struct SshKey {
    pub(super) secret: String,
    pub(super) key: Vec<u8>,
    pub(super) known_hosts: Vec<u8>,
}

/// The `-ssh-git` URLs in the order first given, each with its secrets.
pub(super) type SshUrls = Vec<(String, Vec<SshKey>)>;

pub(super) fn git_files(entries: &[Basic]) -> (Vec<u8>, Vec<u8>) {
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

pub(super) fn ssh_files(entries: &SshUrls, ssh_dir: &Path) -> Ssh {
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
