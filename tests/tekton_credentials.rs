//! Tekton mode: the legacy credential flags (-basic-git, -ssh-git, -basic-docker, -docker-config,
//! -docker-cfg), driven from outside. Each case mirrors one of Tekton's own tests
//! (tektoncd/pipeline v1.15: pkg/credentials/gitcreds/creds_test.go, dockercreds/creds_test.go,
//! writer/writer_test.go): the same secrets and flags, the same expected bytes; here through the
//! whole binary, so also the modes, the copy into $HOME, and what never reaches any output.

mod tekton_support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use tekton_support::*;

/// A pod with secrets mounted at /tekton/creds-secrets/<name> and an empty /tekton/creds.
struct CredPod {
    pod: Pod,
    home: PathBuf,
}

impl CredPod {
    fn new() -> CredPod {
        let pod = Pod::new();
        fs::create_dir_all(pod.p("creds")).unwrap();
        let home = pod.dir.path().join("home");
        fs::create_dir_all(&home).unwrap();
        CredPod { pod, home }
    }

    /// A secret volume: one file per key (mode 0644 as the kubelet's default 0644 volumes).
    fn secret(&self, name: &str, keys: &[(&str, &str)]) {
        let dir = self.pod.p(&format!("creds-secrets/{name}"));
        fs::create_dir_all(&dir).unwrap();
        for (key, value) in keys {
            fs::write(dir.join(key), value).unwrap();
        }
    }

    /// Step 0 with the credential flags, running `command`, HOME set to the pod's home.
    fn step(&self, creds: &[&str], command: &[&str]) -> Output {
        run(self.pod.step(0, creds, command).env("HOME", &self.home))
    }

    fn creds(&self, rel: &str) -> String {
        fs::read_to_string(self.pod.p(&format!("creds/{rel}"))).unwrap_or_else(|e| panic!("creds/{rel}: {e}"))
    }

    fn home(&self, rel: &str) -> String {
        fs::read_to_string(self.home.join(rel)).unwrap_or_else(|e| panic!("$HOME/{rel}: {e}"))
    }
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

fn ok(o: &Output) {
    assert_eq!(code(o), 0, "{}", stderr(o));
}

#[test]
fn basic_git_one_secret() {
    // TestBasicFlagHandling.
    let p = CredPod::new();
    p.secret("foo", &[("username", "bar"), ("password", "baz")]);
    ok(&p.step(&["-basic-git=foo=https://github.com"], &["true"]));
    let config = "[credential]\n\thelper = store\n[credential \"https://github.com\"]\n\tusername = bar\n";
    assert_eq!(p.creds(".gitconfig"), config);
    assert_eq!(p.creds(".git-credentials"), "https://bar:baz@github.com\n");
    for f in [".gitconfig", ".git-credentials"] {
        assert_eq!(mode(&p.pod.p(&format!("creds/{f}"))), 0o600, "{f}");
        assert_eq!(p.home(f), p.creds(f), "{f} copied into $HOME");
        assert_eq!(mode(&p.home.join(f)), 0o600, "$HOME/{f}");
    }
}

#[test]
fn basic_git_two_secrets() {
    // TestBasicFlagHandlingTwice.
    let p = CredPod::new();
    p.secret("foo", &[("username", "asdf"), ("password", "blah")]);
    p.secret("bar", &[("username", "bleh"), ("password", "belch")]);
    ok(&p.step(&["-basic-git=foo=https://github.com", "-basic-git=bar=https://gitlab.com"], &["true"]));
    assert_eq!(
        p.creds(".gitconfig"),
        "[credential]\n\thelper = store\n[credential \"https://github.com\"]\n\tusername = asdf\n\
         [credential \"https://gitlab.com\"]\n\tusername = bleh\n"
    );
    assert_eq!(p.creds(".git-credentials"), "https://asdf:blah@github.com\nhttps://bleh:belch@gitlab.com\n");
}

#[test]
fn basic_git_repositories_of_one_host() {
    // TestBasicFlagHandlingMultipleReposSameHost.
    let p = CredPod::new();
    p.secret("repo1-creds", &[("username", "user1"), ("password", "token1")]);
    p.secret("repo2-creds", &[("username", "user2"), ("password", "token2")]);
    ok(&p.step(
        &["-basic-git=repo1-creds=https://github.com/org/repo1", "-basic-git=repo2-creds=https://github.com/org/repo2"],
        &["true"],
    ));
    assert_eq!(
        p.creds(".gitconfig"),
        "[credential]\n\thelper = store\n\
         [credential \"https://github.com/org/repo1\"]\n\tusername = user1\n\tuseHttpPath = true\n\
         [credential \"https://github.com/org/repo2\"]\n\tusername = user2\n\tuseHttpPath = true\n"
    );
    assert_eq!(
        p.creds(".git-credentials"),
        "https://user1:token1@github.com/org/repo1\nhttps://user2:token2@github.com/org/repo2\n"
    );
}

#[test]
fn basic_git_host_wide_credentials_come_first() {
    // TestBasicFlagHandlingMixedCredentials: .gitconfig in the order given, .git-credentials host-only first.
    let p = CredPod::new();
    p.secret("host-wide-creds", &[("username", "myorguser"), ("password", "host-token")]);
    p.secret("repo-specific-creds", &[("username", "foo"), ("password", "repo-token")]);
    ok(&p.step(
        &[
            "-basic-git=repo-specific-creds=https://github.com/secret-org/private-repo",
            "-basic-git=host-wide-creds=https://github.com",
        ],
        &["true"],
    ));
    assert_eq!(
        p.creds(".gitconfig"),
        "[credential]\n\thelper = store\n\
         [credential \"https://github.com/secret-org/private-repo\"]\n\tusername = foo\n\tuseHttpPath = true\n\
         [credential \"https://github.com\"]\n\tusername = myorguser\n"
    );
    assert_eq!(
        p.creds(".git-credentials"),
        "https://myorguser:host-token@github.com\nhttps://foo:repo-token@github.com/secret-org/private-repo\n"
    );
}

#[test]
fn basic_git_backslash_in_username() {
    // TestBasicBackslashInUsername.
    let p = CredPod::new();
    p.secret("foo", &[("username", "foo\\bar\\banana"), ("password", "baz")]);
    ok(&p.step(&["-basic-git=foo=https://github.com"], &["true"]));
    assert_eq!(
        p.creds(".gitconfig"),
        "[credential]\n\thelper = store\n[credential \"https://github.com\"]\n\tusername = foo\\\\bar\\\\banana\n"
    );
    assert_eq!(p.creds(".git-credentials"), "https://foo%5Cbar%5Cbanana:baz@github.com\n");
}

#[test]
fn ssh_git_one_secret() {
    // TestSSHFlagHandling.
    let p = CredPod::new();
    p.secret("foo", &[("ssh-privatekey", "bar"), ("known_hosts", "ssh-rsa blah")]);
    ok(&p.step(&["-ssh-git=foo=github.com"], &["true"]));
    let ssh = p.pod.p("creds/.ssh");
    assert_eq!(
        p.creds(".ssh/config"),
        format!("Host github.com\n    HostName github.com\n    Port 22\n    IdentityFile {}/id_foo\n", ssh.display())
    );
    assert_eq!(p.creds(".ssh/known_hosts"), "ssh-rsa blah");
    assert_eq!(p.creds(".ssh/id_foo"), "bar");
    for f in ["config", "known_hosts", "id_foo"] {
        assert_eq!(mode(&ssh.join(f)), 0o600, "{f}");
        assert_eq!(p.home(&format!(".ssh/{f}")), p.creds(&format!(".ssh/{f}")));
        assert_eq!(mode(&p.home.join(".ssh").join(f)), 0o600);
    }
    assert_eq!(mode(&ssh), 0o755);
    assert_eq!(mode(&p.home.join(".ssh")), 0o700, "writer.credsDirPermissions");
    assert!(!p.pod.p("creds/.gitconfig").exists(), "no repository URL: no insteadOf rules");
}

#[test]
fn ssh_git_three_secrets_two_hosts() {
    // TestSSHFlagHandlingThrice.
    let p = CredPod::new();
    p.secret("foo", &[("ssh-privatekey", "asdf"), ("known_hosts", "ssh-rsa aaaa")]);
    p.secret("bar", &[("ssh-privatekey", "bleh"), ("known_hosts", "ssh-rsa bbbb")]);
    p.secret("baz", &[("ssh-privatekey", "derp"), ("known_hosts", "ssh-rsa cccc")]);
    ok(&p.step(
        &["-ssh-git=foo=github.com", "-ssh-git=bar=github.com", "-ssh-git=baz=gitlab.example.com:2222"],
        &["true"],
    ));
    let ssh = p.pod.p("creds/.ssh");
    let s = ssh.display();
    assert_eq!(
        p.creds(".ssh/config"),
        format!(
            "Host github.com\n    HostName github.com\n    Port 22\n    IdentityFile {s}/id_foo\n    IdentityFile {s}/id_bar\n\
             Host gitlab.example.com\n    HostName gitlab.example.com\n    Port 2222\n    IdentityFile {s}/id_baz\n"
        )
    );
    assert_eq!(p.creds(".ssh/known_hosts"), "ssh-rsa aaaa\nssh-rsa bbbb\nssh-rsa cccc");
    assert_eq!(
        (p.creds(".ssh/id_foo"), p.creds(".ssh/id_bar"), p.creds(".ssh/id_baz")),
        ("asdf".into(), "bleh".into(), "derp".into())
    );
}

#[test]
fn ssh_git_repositories_get_host_aliases() {
    // TestSSHFlagHandlingMultipleReposSameHost.
    let p = CredPod::new();
    p.secret("repo1-secret", &[("ssh-privatekey", "key-for-repo1"), ("known_hosts", "ssh-rsa repo1-host-key")]);
    p.secret("repo2-secret", &[("ssh-privatekey", "key-for-repo2"), ("known_hosts", "ssh-rsa repo2-host-key")]);
    ok(&p.step(
        &["-ssh-git=repo1-secret=github.com/org/repo1", "-ssh-git=repo2-secret=github.com/org/repo2"],
        &["true"],
    ));
    let s = p.pod.p("creds/.ssh");
    let s = s.display();
    assert_eq!(
        p.creds(".ssh/config"),
        format!(
            "Host github.com--org--repo1\n    HostName github.com\n    Port 22\n    IdentityFile {s}/id_repo1-secret\n\
             Host github.com--org--repo2\n    HostName github.com\n    Port 22\n    IdentityFile {s}/id_repo2-secret\n"
        )
    );
    assert_eq!(
        p.creds(".gitconfig"),
        "[url \"git@github.com--org--repo1:org/repo1.git\"]\n\tinsteadOf = git@github.com:org/repo1.git\n\
         [url \"ssh://github.com--org--repo1/org/repo1.git\"]\n\tinsteadOf = ssh://github.com/org/repo1.git\n\
         [url \"git@github.com--org--repo2:org/repo2.git\"]\n\tinsteadOf = git@github.com:org/repo2.git\n\
         [url \"ssh://github.com--org--repo2/org/repo2.git\"]\n\tinsteadOf = ssh://github.com/org/repo2.git\n"
    );
    assert_eq!(p.creds(".ssh/id_repo1-secret"), "key-for-repo1");
    assert_eq!(p.creds(".ssh/id_repo2-secret"), "key-for-repo2");
}

#[test]
fn ssh_git_host_wide_first_and_custom_port() {
    // TestSSHFlagHandlingMixedCredentials and TestSSHFlagHandlingRepoSpecificWithCustomPort.
    let p = CredPod::new();
    p.secret("repo-specific", &[("ssh-privatekey", "repo-key"), ("known_hosts", "ssh-rsa repo-known")]);
    p.secret("host-wide", &[("ssh-privatekey", "host-key"), ("known_hosts", "ssh-rsa host-known")]);
    p.secret("myrepo", &[("ssh-privatekey", "custom-port-key")]);
    ok(&p.step(
        &[
            "-ssh-git=repo-specific=github.com/org/private-repo",
            "-ssh-git=host-wide=github.com",
            "-ssh-git=myrepo=gitlab.example.com:2222/team/project",
        ],
        &["true"],
    ));
    let s = p.pod.p("creds/.ssh");
    let s = s.display();
    assert_eq!(
        p.creds(".ssh/config"),
        format!(
            "Host github.com\n    HostName github.com\n    Port 22\n    IdentityFile {s}/id_host-wide\n\
             Host github.com--org--private-repo\n    HostName github.com\n    Port 22\n    IdentityFile {s}/id_repo-specific\n\
             Host gitlab.example.com--team--project\n    HostName gitlab.example.com\n    Port 2222\n    IdentityFile {s}/id_myrepo\n"
        )
    );
    assert_eq!(
        p.creds(".gitconfig"),
        "[url \"git@github.com--org--private-repo:org/private-repo.git\"]\n\tinsteadOf = git@github.com:org/private-repo.git\n\
         [url \"ssh://github.com--org--private-repo/org/private-repo.git\"]\n\tinsteadOf = ssh://github.com/org/private-repo.git\n\
         [url \"git@gitlab.example.com--team--project:team/project.git\"]\n\tinsteadOf = git@gitlab.example.com:team/project.git\n\
         [url \"ssh://gitlab.example.com--team--project/team/project.git\"]\n\tinsteadOf = ssh://gitlab.example.com:2222/team/project.git\n"
    );
    // A secret without known_hosts adds none.
    assert_eq!(p.creds(".ssh/known_hosts"), "ssh-rsa host-known\nssh-rsa repo-known");
}

#[test]
fn basic_and_ssh_git_share_the_gitconfig() {
    // gitBuilder.Write: basic first (.gitconfig written), then ssh appends its insteadOf rules.
    let p = CredPod::new();
    p.secret("https", &[("username", "u"), ("password", "p")]);
    p.secret("ssh", &[("ssh-privatekey", "k")]);
    ok(&p.step(&["-ssh-git=ssh=github.com/org/repo", "-basic-git=https=https://gitlab.com"], &["true"]));
    assert_eq!(
        p.creds(".gitconfig"),
        "[credential]\n\thelper = store\n[credential \"https://gitlab.com\"]\n\tusername = u\n\
         [url \"git@github.com--org--repo:org/repo.git\"]\n\tinsteadOf = git@github.com:org/repo.git\n\
         [url \"ssh://github.com--org--repo/org/repo.git\"]\n\tinsteadOf = ssh://github.com/org/repo.git\n"
    );
}

#[test]
fn basic_docker() {
    // TestFlagHandling, TestFlagHandlingTwice.
    let p = CredPod::new();
    p.secret("foo", &[("username", "bar"), ("password", "baz")]);
    ok(&p.step(&["-basic-docker=foo=https://us.gcr.io"], &["true"]));
    assert_eq!(
        p.creds(".docker/config.json"),
        r#"{"auths":{"https://us.gcr.io":{"username":"bar","password":"baz","auth":"YmFyOmJheg==","email":"not@val.id"}}}"#
    );
    assert_eq!(mode(&p.pod.p("creds/.docker/config.json")), 0o600);
    assert_eq!(p.home(".docker/config.json"), p.creds(".docker/config.json"));

    let p = CredPod::new();
    p.secret("foo", &[("username", "asdf"), ("password", "blah")]);
    p.secret("bar", &[("username", "bleh"), ("password", "belch")]);
    ok(&p.step(&["-basic-docker=foo=https://us.gcr.io", "-basic-docker=bar=https://eu.gcr.io"], &["true"]));
    assert_eq!(
        p.creds(".docker/config.json"),
        r#"{"auths":{"https://eu.gcr.io":{"username":"bleh","password":"belch","auth":"YmxlaDpiZWxjaA==","email":"not@val.id"},"https://us.gcr.io":{"username":"asdf","password":"blah","auth":"YXNkZjpibGFo","email":"not@val.id"}}}"#
    );
}

#[test]
fn docker_secrets_merged_in_tekton_order() {
    // TestMultipleFlagHandling, plus the merge order of basicDockerBuilder.Write: .dockercfg
    // secrets, then .dockerconfigjson ones, then -basic-docker, a later one winning per registry;
    // fields other than username/password/auth/email are dropped as Go's decoding drops them.
    let p = CredPod::new();
    p.secret("foo", &[("username", "bar"), ("password", "baz")]);
    p.secret("bar", &[(".dockerconfigjson", r#"{"auths":{"https://index.docker.io/v1":{"auth":"fooisbar"}}}"#)]);
    p.secret("blubb", &[(".dockerconfigjson", r#"{"auths":{"us.icr.io":{"auth":"fooisblubb","identitytoken":"x"}}}"#)]);
    p.secret("baz", &[(".dockercfg", r#"{"https://my.registry/v1":{"auth":"fooisbaz"}}"#)]);
    p.secret("bla", &[(".dockercfg", r#"{"de.icr.io":{"auth":"fooisbla"},"us.icr.io":{"auth":"lost"}}"#)]);
    ok(&p.step(
        &[
            "-basic-docker=foo=https://us.gcr.io",
            "-docker-config=bar",
            "-docker-config=blubb",
            "-docker-cfg=baz",
            "-docker-cfg=bla",
        ],
        &["true"],
    ));
    assert_eq!(
        p.creds(".docker/config.json"),
        r#"{"auths":{"de.icr.io":{"auth":"fooisbla"},"https://index.docker.io/v1":{"auth":"fooisbar"},"https://my.registry/v1":{"auth":"fooisbaz"},"https://us.gcr.io":{"username":"bar","password":"baz","auth":"YmFyOmJheg==","email":"not@val.id"},"us.icr.io":{"auth":"fooisblubb"}}}"#
    );
}

#[test]
fn no_flags_write_nothing_but_still_copy_to_home() {
    // TestNoAuthProvided; CopyCredsToHome runs without flags too (writer_test.go: TestTryCopyCred*).
    let p = CredPod::new();
    ok(&p.step(&[], &["true"]));
    assert!(fs::read_dir(p.pod.p("creds")).unwrap().next().is_none(), "nothing written without flags");

    let p = CredPod::new();
    fs::create_dir_all(p.pod.p("creds/.docker/sub")).unwrap();
    fs::write(p.pod.p("creds/.docker/sub/important-credential.json"), "hello, world!").unwrap();
    fs::write(p.pod.p("creds/.git-credentials"), "hello, world!").unwrap();
    fs::write(p.pod.p("creds/unrelated"), "x").unwrap();
    // An existing file in $HOME is replaced (Tekton truncates it); a link there is refused, with
    // a sentence, neither followed nor replaced (steps of other UIDs may write $HOME).
    fs::write(p.home.join(".gitconfig"), "old").unwrap();
    fs::write(p.pod.p("creds/.gitconfig"), "new").unwrap();
    let elsewhere = p.pod.dir.path().join("elsewhere");
    fs::write(&elsewhere, "keep").unwrap();
    std::os::unix::fs::symlink(&elsewhere, p.home.join(".git-credentials")).unwrap();
    let o = p.step(&[], &["true"]);
    ok(&o);
    assert_eq!(p.home(".docker/sub/important-credential.json"), "hello, world!");
    assert_eq!(p.home(".gitconfig"), "new");
    let said = format!("{} is a symbolic link", p.home.join(".git-credentials").display());
    assert!(stderr(&o).contains(&said), "{}", stderr(&o));
    assert!(fs::symlink_metadata(p.home.join(".git-credentials")).unwrap().file_type().is_symlink());
    assert_eq!(fs::read_to_string(&elsewhere).unwrap(), "keep");
    assert!(!p.home.join("unrelated").exists(), "only .docker .gitconfig .git-credentials .ssh are copied");
    assert_eq!(mode(&p.home.join(".docker/sub")), 0o700);
}

#[test]
fn unset_home_is_not_fatal() {
    let p = CredPod::new();
    p.secret("foo", &[("username", "bar"), ("password", "baz")]);
    let o = run(p.pod.step(0, &["-basic-git=foo=https://github.com"], &["true"]).env_remove("HOME"));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stderr(&o).contains("HOME is not set"), "{}", stderr(&o));
    assert!(p.pod.exists("creds/.git-credentials") && p.pod.exists("run/0/out"));
}

#[test]
fn a_missing_secret_file_fails_before_anything_is_written_or_run() {
    // TestBasicFlagHandlingMissingFiles, TestSSHFlagHandlingMissingFiles, TestFlagHandlingMissingFiles
    // (dockercreds): Set fails, so Go's flag parsing fails (exit 2).
    let cases: &[(&str, &[(&str, &str)])] = &[
        ("-basic-git=not-found=https://github.com", &[("username", "u")]),
        ("-ssh-git=not-found=github.com", &[("known_hosts", "h")]),
        ("-basic-docker=not-found=https://us.gcr.io", &[("password", "p")]),
    ];
    for (flag, keys) in cases {
        let p = CredPod::new();
        p.secret("ok", &[("username", "u"), ("password", "p")]);
        p.secret("not-found", keys);
        let marker = p.pod.p("ran");
        let o = p.step(&["-basic-git=ok=https://gitlab.com", flag], &["touch", marker.to_str().unwrap()]);
        assert_eq!(code(&o), 2, "{flag}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains(&format!(
                "invalid value {:?} for flag {}",
                &flag[flag.find('=').unwrap() + 1..],
                &flag[..flag.find('=').unwrap()]
            )),
            "{err}"
        );
        assert!(err.contains("creds-secrets/not-found/"), "{err}");
        assert!(!marker.exists(), "{flag}: the command must not run");
        assert!(fs::read_dir(p.pod.p("creds")).unwrap().next().is_none(), "{flag}: nothing written");
        assert!(p.pod.exists("run/0/out.err"), "{flag}: successors are released");
    }
    // A docker config secret Tekton cannot read: Tekton logs it and goes on without docker
    // credentials; baton fails the step (exit 1) before anything is written or run.
    for (flag, key) in [("-docker-config=dc", "wrong"), ("-docker-cfg=dc", ".dockerconfigjson")] {
        let p = CredPod::new();
        p.secret("dc", &[(key, "{}")]);
        let o = p.step(&[flag], &["true"]);
        assert_eq!(code(&o), 1, "{flag}: {}", stderr(&o));
        assert!(stderr(&o).contains("cannot read the docker credentials"), "{}", stderr(&o));
        assert!(p.pod.exists("run/0/out.err") && !p.pod.exists("run/0/out"));
    }
}

#[test]
fn malformed_values_are_flag_errors() {
    // TestBasicMalformedValues, TestSshMalformedValues, TestMalformedValueTooMany/TooFew,
    // TestBasicFlagHandlingURLCollision, TestFlagHandlingURLCollision.
    let p = CredPod::new();
    p.secret("foo", &[("username", "bar"), ("password", "baz")]);
    p.secret("bar", &[("username", "bar"), ("password", "baz")]);
    let cases: &[(&[&str], &str)] = &[
        (&["-basic-git=bar=baz=blah"], "expect entries of the form secret=url"),
        (&["-ssh-git=bar"], "expect entries of the form secret=url"),
        (&["-basic-docker=bar=baz=blah"], "expect entries of the form secret=url"),
        (
            &["-basic-git=foo=https://github.com", "-basic-git=bar=https://github.com"],
            "multiple entries for url: https://github.com",
        ),
        (&["-basic-docker=foo=https://us.gcr.io", "-basic-docker=bar=https://us.gcr.io"], "multiple entries for url"),
        (&["-basic-git=foo=git@github.com:org/repo"], "first path segment in URL cannot contain colon"),
    ];
    for (flags, sentence) in cases {
        let o = p.step(flags, &["true"]);
        assert_eq!(code(&o), 2, "{flags:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(sentence), "{flags:?}: {}", stderr(&o));
    }
}

#[test]
fn secrets_never_reach_any_output() {
    // Every secret value, through success and through every failure path: never in stdout, stderr,
    // the termination message, or any file of the pod outside the credential folders.
    const SECRETS: [&str; 6] =
        ["s3cr3t-user", "s3cr3t-pass", "s3cr3t-key", "s3cr3t-docker", "s3cr3t-id-token", "czNjcjN0"];
    type Scenario<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str, &'a str)>);
    let scenarios: Vec<Scenario> = vec![
        // Success.
        (
            vec![
                "-basic-git=g=https://github.com",
                "-ssh-git=k=github.com/org/r",
                "-basic-docker=g=https://r.io",
                "-docker-config=d",
            ],
            vec![
                ("g", "username", "s3cr3t-user"),
                ("g", "password", "s3cr3t-pass"),
                ("k", "ssh-privatekey", "s3cr3t-key"),
                (
                    "d",
                    ".dockerconfigjson",
                    r#"{"auths":{"x.io":{"auth":"s3cr3t-docker","identitytoken":"s3cr3t-id-token"}}}"#,
                ),
            ],
        ),
        // A docker config whose values are not strings, and one that is not JSON.
        (
            vec!["-docker-config=d"],
            vec![("d", ".dockerconfigjson", r#"{"auths":{"x.io":{"auth":["s3cr3t-docker"]}}}"#)],
        ),
        (vec!["-docker-config=d"], vec![("d", ".dockerconfigjson", "s3cr3t-docker")]),
        (vec!["-docker-cfg=d"], vec![("d", ".dockercfg", r#"{"x.io":"s3cr3t-docker"}"#)]),
        (vec!["-docker-config=d"], vec![("d", ".dockerconfigjson", r#"{"auths":"s3cr3t-docker"}"#)]),
        // A password file but no username; a duplicate URL.
        (vec!["-basic-git=g=https://github.com"], vec![("g", "password", "s3cr3t-pass")]),
        (
            vec!["-basic-docker=g=https://r.io", "-basic-docker=g=https://r.io"],
            vec![("g", "username", "s3cr3t-user"), ("g", "password", "s3cr3t-pass")],
        ),
    ];
    for (flags, secrets) in scenarios {
        let p = CredPod::new();
        for (name, key, value) in &secrets {
            p.secret(name, &[(key, value)]);
        }
        // In a second run /tekton/creds cannot be written (a file stands there): the write errors are said too.
        for broken in [false, true] {
            if broken {
                fs::remove_dir_all(p.pod.p("creds")).unwrap();
                fs::write(p.pod.p("creds"), "").unwrap();
            }
            let o = p.step(&flags, &["sh", "-c", "echo step output"]);
            let mut outputs = vec![
                ("stdout".to_string(), String::from_utf8_lossy(&o.stdout).into_owned()),
                ("stderr".to_string(), stderr(&o)),
            ];
            for file in walk(&p.pod.root) {
                let rel = file.strip_prefix(&p.pod.root).unwrap().to_string_lossy().into_owned();
                if rel.starts_with("creds/") || rel.starts_with("creds-secrets/") {
                    continue;
                }
                outputs.push((rel, String::from_utf8_lossy(&fs::read(&file).unwrap_or_default()).into_owned()));
            }
            for (place, text) in &outputs {
                for secret in SECRETS {
                    assert!(!text.contains(secret), "{flags:?}: the secret {secret} is in {place}: {text}");
                }
            }
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => out.extend(walk(&path)),
            Ok(t) if t.is_file() => out.push(path),
            _ => {}
        }
    }
    out
}
