//! Tekton mode: TEKTON_HERMETIC=1 (tektoncd/pipeline v1.15: cmd/entrypoint/runner.go,
//! namespaces_linux.go; namespaces_test.go TestDropNetworking checks that the command has no
//! network and that env, whoami, pwd and uname are unchanged). Here, from the command itself: only
//! `lo` in /proc/net/dev, new user, mount, PID and network namespaces, PID 1, and the same user,
//! folder and environment. Needs a kernel and a context that allow user namespaces (the test says
//! so and returns when they do not).

mod tekton_support;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use tekton_support::*;

/// What a command sees of its namespaces and network, one `key=value` per line.
const PROBE: &str = r#"
echo pid=$$
for ns in user mnt pid net; do echo "$ns=$(readlink /proc/self/ns/$ns)"; done
echo "devices=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\n' ,)"
echo "uid=$(id -u) gid=$(id -g) pwd=$(pwd) home=$HOME marker=$MARKER"
if command -v bash >/dev/null; then
  # A closed port on a loopback that is up refuses; on one that is down it is unreachable.
  echo "loopback=$(bash -c 'echo > /dev/tcp/127.0.0.1/9' 2>&1 | grep -o -e refused -e unreachable | head -1)"
fi
"#;

fn probe(pod: &Pod, i: usize, env: &[(&str, &str)]) -> (i32, String, String) {
    let out = pod.p(&format!("probe-{i}"));
    let mut c = pod.step(i, &[], &["sh", "-c", &format!("{{ {PROBE} }} > {}", out.display())]);
    c.env("MARKER", "m-1").current_dir(pod.dir.path());
    for (k, v) in env {
        c.env(k, v);
    }
    let o = run(c);
    (code(&o), fs::read_to_string(&out).unwrap_or_default(), stderr(&o))
}

fn value<'a>(probe: &'a str, key: &str) -> &'a str {
    probe
        .split(['\n', ' '])
        .find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
        .unwrap_or_else(|| panic!("{key} not in {probe}"))
}

/// qemu-user's clone() takes no namespace flags: the hermetic step fails there with "(clone: Invalid argument)".
const NO_NAMESPACES_EMULATED: &str = "qemu-user refuses clone() with CLONE_NEWUSER|CLONE_NEWNS|CLONE_NEWPID|CLONE_NEWNET (EINVAL)";

/// Whether this machine lets an unprivileged process create a user namespace at all.
fn namespaces_allowed(pod: &Pod) -> bool {
    if skip_emulated(NO_NAMESPACES_EMULATED) {
        return false;
    }
    let (code, _, err) = probe(pod, 9, &[("TEKTON_HERMETIC", "1")]);
    if code != 0 && err.contains("TEKTON_HERMETIC=1") && err.contains("(clone:") {
        eprintln!("skipped: this kernel or context forbids user namespaces: {err}");
        return false;
    }
    true
}

#[test]
fn hermetic_step_sees_only_loopback_as_pid_1_of_new_namespaces() {
    let pod = Pod::new();
    if !namespaces_allowed(&pod) {
        return;
    }
    let (code, outside, err) = probe(&pod, 0, &[]);
    assert_eq!(code, 0, "{err}");
    let (code, inside, err) = probe(&pod, 1, &[("TEKTON_HERMETIC", "1")]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(value(&inside, "devices"), "lo,", "{inside}");
    assert_eq!(value(&inside, "pid"), "1", "the command is PID 1 of its PID namespace: {inside}");
    for ns in ["user", "mnt", "pid", "net"] {
        assert_ne!(value(&inside, ns), value(&outside, ns), "a new {ns} namespace: {inside} / {outside}");
    }
    // Every id is mapped to itself; the folder and environment are those of the step.
    for key in ["uid", "gid", "pwd", "home", "marker"] {
        assert_eq!(value(&inside, key), value(&outside, key), "{key}");
    }
    if inside.contains("loopback=") {
        assert_eq!(value(&inside, "loopback"), "refused", "lo is up: {inside}");
    }
    assert!(pod.exists("run/1/out"));
    assert_eq!(golden(&pod.message(1)), r#"[{"key":"StartedAt","value":"<T>","type":3}]"#);
}

#[test]
fn results_exit_codes_and_timeouts_cross_the_namespaces() {
    let pod = Pod::new();
    if !namespaces_allowed(&pod) {
        return;
    }
    let hermetic = |i: usize, extra: &[&str], script: &str| {
        run(pod.step(i, extra, &["sh", "-c", script]).env("TEKTON_HERMETIC", "1").env("R", pod.p("results")))
    };
    // A result written inside (the mount namespace shares the files) and the exit code relayed.
    let o = hermetic(0, &["-results", "r", "-on_error", "continue"], "printf inside > $R/r; exit 7");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        golden(&pod.message(0)),
        r#"[{"key":"r","value":"inside","type":1},{"key":"StartedAt","value":"<T>","type":3},{"key":"ExitCode","value":"7","type":3}]"#
    );
    // PID 1 ignores SIGTERM it has no handler for, as under Tekton: the timeout's KILL ends it.
    let started = Instant::now();
    let o = run(pod
        .step(1, &["-timeout", "200ms"], &["sh", "-c", "sleep 30"])
        .env("TEKTON_HERMETIC", "1")
        .env("BATON_GRACE", "300ms"));
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    assert!(pod.message(1).contains(r#"{"key":"Reason","value":"TimeoutExceeded","type":3}"#));
    // A command that cannot be run: 127, as without namespaces.
    let o = run(pod.step(2, &[], &["/no/such/command"]).env("TEKTON_HERMETIC", "1"));
    assert_eq!(code(&o), 127, "{}", stderr(&o));
}

#[test]
fn not_hermetic_with_tekton_resource_name_or_another_value() {
    let pod = Pod::new();
    let (_, outside, _) = probe(&pod, 0, &[]);
    for (i, env) in [
        (1, &[("TEKTON_HERMETIC", "1"), ("TEKTON_RESOURCE_NAME", "source")][..]),
        (2, &[("TEKTON_HERMETIC", "true")][..]),
    ] {
        let (code, seen, err) = probe(&pod, i, env);
        assert_eq!(code, 0, "{err}");
        assert_eq!(value(&seen, "net"), value(&outside, "net"), "{env:?}");
        assert_ne!(value(&seen, "pid"), "1");
    }
}

#[test]
fn a_forbidden_mapping_fails_with_a_sentence() {
    if skip_emulated(NO_NAMESPACES_EMULATED) {
        return;
    }
    // In a user namespace that maps only root (unshare -r), the identity map of every id cannot be
    // written: the step fails before its command runs, with the sentence, exit 1 and out.err.
    let unshare = ["/usr/bin/unshare", "/bin/unshare"].into_iter().find(|p| Path::new(p).exists());
    let Some(unshare) = unshare else {
        eprintln!("skipped: unshare(1) (util-linux) is not installed");
        return;
    };
    let pod = Pod::new();
    let marker = pod.p("ran");
    let c = pod.step(0, &[], &["touch", marker.to_str().unwrap()]);
    let args: Vec<_> = std::iter::once(c.get_program().to_owned()).chain(c.get_args().map(|a| a.to_owned())).collect();
    let mut outer = std::process::Command::new(unshare);
    outer.args(["--user", "--map-root-user"]).args(&args);
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => outer.env(k, v),
            None => outer.env_remove(k),
        };
    }
    outer.env("TEKTON_HERMETIC", "1");
    let o = run(outer);
    if stderr(&o).contains("unshare failed") {
        eprintln!("skipped: unshare --user is not allowed here: {}", stderr(&o));
        return;
    }
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("TEKTON_HERMETIC=1") && err.contains("(uid_map: Operation not permitted)"), "{err}");
    assert!(!marker.exists());
    assert!(pod.exists("run/0/out.err"));
}
