//! Issue 17: Tekton's shared folders: credentials under a linked $HOME, results read through a
//! linked parent, post and log files.
//!
//! The attacker is a step of another UID that can write a folder a later root step uses: a
//! workspace `$HOME`, its own `/tekton/run/<i>`, the `/tekton/steps` emptyDir. Its links must
//! never make the root step write, or read into its arguments, a file of the root step's choosing.

use super::*;

#[path = "../tekton_support/mod.rs"]
mod tekton_support;

use std::os::unix::fs::chown;
use std::path::PathBuf;

use tekton_support::{code, run, stderr, Pod as TektonPod};

/// A Tekton pod whose folders the attacker can reach: the temporary folder opened to all, and
/// `dirs` (relative to it) made as emptyDirs are, 0777.
fn tekton_pod(dirs: &[&str]) -> TektonPod {
    let pod = TektonPod::new();
    fs::set_permissions(pod.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    for dir in dirs {
        let path = pod.dir.path().join(dir);
        fs::create_dir_all(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o777)).unwrap();
    }
    pod
}

/// A root-only folder (0700) outside the pod, where nothing may appear.
fn root_only_dir(keep: &Pod, name: &str) -> PathBuf {
    let dir = keep.path(name);
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

fn is_empty(dir: &Path) -> bool {
    fs::read_dir(dir).unwrap().next().is_none()
}

// ---------------------------------------------------------------------------------------------
// 3. Credentials are copied into $HOME without following links.

#[test]
fn credentials_are_not_copied_through_links_planted_in_a_shared_home() {
    let _u = Unprotected::new();
    let pod = tekton_pod(&["home"]);
    let home = pod.dir.path().join("home");
    let secret = pod.p("creds-secrets/foo");
    fs::create_dir_all(&secret).unwrap();
    for (key, value) in [("ssh-privatekey", "PRIVATE KEY"), ("username", "user"), ("password", "pass")] {
        fs::write(secret.join(key), value).unwrap();
    }
    fs::create_dir_all(pod.p("creds")).unwrap();
    let keep = Pod::new();
    let (ssh, docker) = (root_only_dir(&keep, "ssh"), root_only_dir(&keep, "docker"));
    let target = precious(&keep);
    let plant = format!(
        "ln -s {} .ssh && ln -s {} .docker && ln -s {} .gitconfig",
        ssh.display(),
        docker.display(),
        target.display()
    );
    assert_eq!(as_attacker(&home, &plant), 0);

    let flags = ["-ssh-git=foo=github.com/org/repo", "-basic-docker=foo=https://us.gcr.io"];
    let o = run(pod.step(0, &flags, &["true"]).env("HOME", &home));
    assert_eq!(code(&o), 0, "Tekton only logs a credential that cannot be copied: {}", stderr(&o));
    assert!(is_empty(&ssh), "the private key was written through $HOME/.ssh");
    assert!(is_empty(&docker), "config.json was written through $HOME/.docker");
    assert_untouched(&target);
    for name in [".ssh", ".docker", ".gitconfig"] {
        let said = format!("{} is a symbolic link", home.join(name).display());
        assert!(stderr(&o).contains(&said), "{name}: {}", stderr(&o));
        assert!(fs::symlink_metadata(home.join(name)).unwrap().file_type().is_symlink(), "{name} was replaced");
    }
    // The step's own copies, in /tekton/creds, are all there.
    for f in [".ssh/id_foo", ".docker/config.json", ".gitconfig"] {
        assert!(pod.p(&format!("creds/{f}")).is_file(), "{f}");
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Earlier steps' results are read, and post files and output copies written, without following
//    links below the folders another step can write.

#[test]
fn a_result_is_never_read_through_a_linked_parent() {
    let _u = Unprotected::new();
    let keep = Pod::new();
    // What a root step can read and the attacker cannot: <secret>/results/res.
    let secret = root_only_dir(&keep, "secret");
    fs::create_dir(secret.join("results")).unwrap();
    fs::write(secret.join("results/res"), "root only").unwrap();
    let s = secret.display();
    for (what, plant) in [
        ("status/results", format!("cd tekton/run/0 && mkdir status && ln -s {s}/results status/results")),
        ("status", format!("cd tekton/run/0 && ln -s {s} status")),
        ("steps/step-foo", format!("cd tekton/steps && rm step-foo && ln -s {s} step-foo")),
    ] {
        // /tekton/steps is an emptyDir every step can write; /tekton/run/0 is step 0's (the attacker's).
        let pod = tekton_pod(&["tekton/steps", "tekton/run/0"]);
        chown(pod.p("run/0"), Some(ATTACKER), Some(ATTACKER)).unwrap();
        let init = run(pod.cmd(["step-init", "step-foo"]));
        assert_eq!(code(&init), 0, "{}", stderr(&init));
        assert_eq!(as_attacker(pod.dir.path(), &plant), 0, "{what}");

        let out = pod.p("args");
        let script = format!("printf %s \"$1\" > {}", out.display());
        let o = run(pod.step(1, &[], &["sh", "-c", &script, "sh", "$(steps.foo.results.res)"]));
        assert_eq!(code(&o), 0, "{what}: {}", stderr(&o));
        assert_eq!(fs::read_to_string(&out).unwrap(), "$(steps.foo.results.res)", "{what}: read through the link");
        assert!(stderr(&o).contains("symbolic link"), "{what}: {}", stderr(&o));
    }
}

#[test]
fn post_files_and_output_copies_are_never_written_through_a_planted_link() {
    let _u = Unprotected::new();
    let keep = Pod::new();
    let target = precious(&keep);
    let elsewhere = root_only_dir(&keep, "elsewhere");
    let (t, e) = (target.display(), elsewhere.display());
    // Each: a flag of the root step 1 and its path (in the pod's temporary folder), what the
    // attacker plants there, and the sentence expected. `ws` is a workspace outside /tekton.
    let cases = [
        ("", "", format!("ln -s {t} tekton/run/1/out"), "run/1/out is a symbolic link"),
        ("", "", format!("rmdir tekton/run/1 && ln -s {e} tekton/run/1"), "run/1 is a symbolic link"),
        (
            "-step_metadata_dir",
            "tekton/run/1/status",
            format!("ln -s {e} tekton/run/1/status"),
            "status is a symbolic link",
        ),
        ("-stdout_path", "ws/out.log", format!("ln -s {t} ws/out.log"), "ws/out.log is a symbolic link"),
        ("-stderr_path", "ws/logs/err.log", format!("ln -s {e} ws/logs"), "ws/logs is a symbolic link"),
    ];
    for (flag, rel, plant, said) in cases {
        // Where the attacker can write here: /tekton/run and /tekton/run/1, and the workspace.
        let pod = tekton_pod(&["tekton/run", "tekton/run/1", "ws"]);
        let path = pod.dir.path().join(rel);
        let path = path.to_str().unwrap();
        let flags: &[&str] = if flag.is_empty() { &[] } else { &[flag, path] };
        assert_eq!(as_attacker(pod.dir.path(), &plant), 0, "{plant}");

        let o = run(pod.step(1, flags, &["echo", "output"]));
        assert_untouched(&target);
        let written: Vec<_> = fs::read_dir(&elsewhere).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert!(written.is_empty(), "{plant}: wrote {written:?} into {e}");
        assert!(stderr(&o).contains(said), "{plant}: {}", stderr(&o));
    }
}
