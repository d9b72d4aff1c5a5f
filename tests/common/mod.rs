//! Shared pieces of the black-box suite: a simulated pod (a temp dir standing in for the emptyDir),
//! a builder that starts the built `baton` out of process, bounded waits on the file system, and
//! checks of the exit record's wire form.
//!
//! Synchronisation is always on files (state.json, exit.json, markers written by the commands),
//! polled with a deadline; never on fixed sleeps.

#![allow(dead_code)]

pub mod argo;

use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub use serde_json::Value;

#[path = "under_test.rs"]
mod under_test;
#[allow(unused_imports)] // each suite uses a part
pub use under_test::{emulated, sendable, skip_emulated, BATON};

/// Upper bound for something event-driven that should happen at once: generous, so a loaded
/// two-core machine passes, yet far below the 10 s / 30 s a hang or a slow poll would take.
pub const SOON: Duration = Duration::from_secs(5);
/// The longest any single baton process may run in this suite before the test gives up on it.
pub const HANG: Duration = Duration::from_secs(30);

/// Polls `f` every few milliseconds until it returns `Some`, for at most `within`.
pub fn wait_until<T>(what: &str, within: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {within:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A simulated pod: a private temp dir holding the shared directory (`shared/`, the emptyDir),
/// the termination-message files and whatever the commands write.
pub struct Pod {
    tmp: tempfile::TempDir,
}

impl Pod {
    pub fn new() -> Pod {
        let tmp = tempfile::Builder::new().prefix("baton-test-").tempdir().expect("temp dir");
        fs::create_dir(tmp.path().join("shared")).unwrap();
        Pod { tmp }
    }

    /// A pod whose folders every UID can reach (for the runAsNonRoot cases).
    pub fn open_to_all() -> Pod {
        let pod = Pod::new();
        fs::set_permissions(pod.root(), fs::Permissions::from_mode(0o755)).unwrap();
        // An emptyDir is 0777.
        fs::set_permissions(pod.dir(), fs::Permissions::from_mode(0o777)).unwrap();
        pod
    }

    pub fn root(&self) -> &Path {
        self.tmp.path()
    }

    /// The shared directory (`--dir`).
    pub fn dir(&self) -> PathBuf {
        self.root().join("shared")
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    /// A bare `baton` invocation; its stdout/stderr go to files named after `label`.
    pub fn baton(&self, label: &str) -> Baton {
        Baton::new(self.root(), label)
    }

    /// `baton run --name NAME --dir DIR --termination-path <root>/NAME.term`, the usual step.
    pub fn step(&self, name: &str) -> Baton {
        self.baton(name)
            .arg("run")
            .args(["--name", name])
            .arg("--dir")
            .arg(self.dir())
            .arg("--termination-path")
            .arg(self.term_path(name))
    }

    pub fn term_path(&self, name: &str) -> PathBuf {
        self.root().join(format!("{name}.term"))
    }

    pub fn step_dir(&self, name: &str) -> PathBuf {
        self.dir().join("steps").join(name)
    }

    pub fn exit_path(&self, name: &str) -> PathBuf {
        self.step_dir(name).join("exit.json")
    }

    /// The step's marker (`steps/NAME/exit.json`), checked for the record's wire form.
    pub fn exit_record(&self, name: &str) -> Value {
        let path = self.exit_path(name);
        let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        check_record(&text)
    }

    /// The step's termination message, checked for the record's wire form.
    pub fn termination(&self, name: &str) -> Value {
        let path = self.term_path(name);
        let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        check_record(&text)
    }

    /// `steps/NAME/state.json`, if it is there.
    pub fn state(&self, name: &str) -> Option<Value> {
        let text = fs::read_to_string(self.step_dir(name).join("state.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Waits until step NAME says it is in `phase` ("waiting", "running").
    pub fn wait_phase(&self, name: &str, phase: &str) -> Value {
        wait_until(&format!("step {name} to be {phase}"), SOON, || {
            self.state(name).filter(|s| s["state"] == phase)
        })
    }

    /// Waits until step NAME is waiting (its watches are in place then) for as many things as
    /// `missing` has, each item named by an entry of its `waitingFor` (in any order).
    pub fn wait_waiting_for(&self, name: &str, missing: &[String]) -> Value {
        wait_until(&format!("step {name} to wait for {missing:?}"), SOON, || {
            self.state(name).filter(|s| {
                s["state"] == "waiting"
                    && s["waitingFor"].as_array().is_some_and(|a| {
                        a.len() == missing.len()
                            && missing.iter().all(|m| a.iter().any(|x| x.as_str().is_some_and(|x| x.contains(m.as_str()))))
                    })
            })
        })
    }

    /// The command's pid, once step NAME's state says it runs it.
    pub fn child_pid(&self, name: &str) -> i32 {
        wait_until(&format!("step {name} to run its command"), SOON, || {
            let state = self.state(name).filter(|s| s["state"] == "running")?;
            state["childPid"].as_i64().map(|p| p as i32)
        })
    }

    /// Waits until the file exists.
    pub fn wait_file(&self, path: &Path) {
        wait_until(&format!("{} to exist", path.display()), SOON, || path.exists().then_some(()));
    }
}

/// A baton invocation being put together.
pub struct Baton {
    exe: OsString,
    prefix: Vec<OsString>,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    env_clear: bool,
    cwd: PathBuf,
    stdin: Option<PathBuf>,
    label: String,
    out: PathBuf,
    err: PathBuf,
}

impl Baton {
    pub fn new(root: &Path, label: &str) -> Baton {
        Baton {
            exe: BATON.as_str().into(),
            prefix: Vec::new(),
            args: Vec::new(),
            envs: Vec::new(),
            env_clear: false,
            cwd: root.to_path_buf(),
            stdin: None,
            label: label.to_string(),
            out: root.join(format!("{label}.out")),
            err: root.join(format!("{label}.err")),
        }
    }

    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.args.push(a.as_ref().to_owned());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Self {
        self.envs.push((k.as_ref().to_owned(), v.as_ref().to_owned()));
        self
    }

    pub fn env_clear(mut self) -> Self {
        self.env_clear = true;
        self
    }

    pub fn cwd(mut self, dir: impl AsRef<Path>) -> Self {
        self.cwd = dir.as_ref().to_path_buf();
        self
    }

    pub fn stdin(mut self, file: impl AsRef<Path>) -> Self {
        self.stdin = Some(file.as_ref().to_path_buf());
        self
    }

    /// Runs another copy of the binary (e.g. one installed by `baton init`).
    pub fn exe(mut self, path: impl AsRef<OsStr>) -> Self {
        self.exe = path.as_ref().to_owned();
        self
    }

    /// Starts baton through a wrapper such as `unshare …` or `setpriv …`.
    pub fn through<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, prefix: I) -> Self {
        self.prefix = prefix.into_iter().map(|a| a.as_ref().to_owned()).collect();
        self
    }

    /// As PID 1 of a new PID namespace with its own /proc, like a container's entrypoint.
    #[allow(clippy::wrong_self_convention)] // a builder step, named for what the process runs as
    pub fn as_pid1(self) -> Self {
        self.through(["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"])
    }

    /// As UID/GID `uid` without supplementary groups (runAsNonRoot).
    #[allow(clippy::wrong_self_convention)]
    pub fn as_uid(self, uid: u32) -> Self {
        self.through(vec![
            "setpriv".to_string(),
            format!("--reuid={uid}"),
            format!("--regid={uid}"),
            "--clear-groups".to_string(),
        ])
    }

    /// `-- COMMAND ARGS...`
    pub fn command<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(self, argv: I) -> Self {
        self.arg("--").args(argv)
    }

    /// `-- sh -c SCRIPT`
    pub fn sh(self, script: &str) -> Self {
        self.command(["sh", "-c", script])
    }

    pub fn spawn(self) -> Proc {
        let mut cmd = match self.prefix.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(&self.exe);
                c
            }
            None => Command::new(&self.exe),
        };
        cmd.args(&self.args).current_dir(&self.cwd);
        if self.env_clear {
            cmd.env_clear();
        } else {
            // The suite never depends on the machine's own settings.
            cmd.env_remove("BATON_DIR").env_remove("BATON_STEP").env_remove("BATON_INOTIFY");
        }
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        cmd.stdout(fs::File::create(&self.out).unwrap());
        cmd.stderr(fs::File::create(&self.err).unwrap());
        cmd.stdin(match &self.stdin {
            Some(p) => Stdio::from(fs::File::open(p).unwrap()),
            None => Stdio::null(),
        });
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {:?}: {e}", self.exe));
        Proc {
            child,
            wrapped: !self.prefix.is_empty(),
            label: self.label,
            out: self.out,
            err: self.err,
            started: Instant::now(),
            done: false,
        }
    }

    /// Starts and waits (at most `HANG`).
    pub fn run(self) -> Outcome {
        self.spawn().wait()
    }
}

/// A running baton (or its wrapper).
pub struct Proc {
    child: Child,
    wrapped: bool,
    label: String,
    out: PathBuf,
    err: PathBuf,
    started: Instant,
    done: bool,
}

impl Proc {
    /// The pid of the process started (the wrapper when there is one).
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The pid of baton itself (in this PID namespace), looking through a wrapper that execs it
    /// (setpriv) or forks it (unshare --fork, strace).
    pub fn baton_pid(&self) -> i32 {
        wait_until(&format!("{} to exec baton", self.label), SOON, || self.find_baton_pid())
    }

    fn find_baton_pid(&self) -> Option<i32> {
        let me = self.pid();
        if !self.wrapped || exe_is_baton(me) {
            return Some(me);
        }
        let children = fs::read_to_string(format!("/proc/{me}/task/{me}/children")).ok()?;
        children.split_whitespace().filter_map(|p| p.parse().ok()).find(|&p| exe_is_baton(p))
    }

    /// Sends `signal` to baton itself.
    pub fn signal(&self, signal: i32) {
        let pid = self.baton_pid();
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "kill({pid}, {signal})");
    }

    /// Whether it has ended (without reaping it for good: `wait` still reports it).
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    pub fn stderr_now(&self) -> String {
        fs::read_to_string(&self.err).unwrap_or_default()
    }

    pub fn wait(&mut self) -> Outcome {
        self.wait_within(HANG)
    }

    /// Waits at most `within`; on expiry kills it and fails the test, showing its stderr.
    pub fn wait_within(&mut self, within: Duration) -> Outcome {
        let deadline = Instant::now() + within;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() >= deadline {
                self.kill_all();
                panic!(
                    "{} still running after {within:?} (a hang, or an event that was missed); stderr:\n{}",
                    self.label,
                    self.stderr_now()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        self.done = true;
        let stdout_bytes = fs::read(&self.out).unwrap_or_default();
        Outcome {
            status,
            stdout: String::from_utf8_lossy(&stdout_bytes).into_owned(),
            stdout_bytes,
            stderr: fs::read_to_string(&self.err).unwrap_or_default(),
            elapsed: self.started.elapsed(),
            label: self.label.clone(),
        }
    }
}

impl Proc {
    /// Kills baton and its wrapper, if still running.
    fn kill_all(&mut self) {
        if self.done {
            return;
        }
        // A wrapper that forked baton (strace) may leave it running when killed itself.
        if self.wrapped {
            if let Some(pid) = self.find_baton_pid() {
                kill(pid, libc::SIGKILL);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.done = true;
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill_all();
    }
}

fn exe_is_baton(pid: i32) -> bool {
    let Some(exe) = under_test::program_of(pid) else { return false };
    let name = exe.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name == "baton" || exe == Path::new(BATON.as_str())
}

/// How a baton process ended.
#[derive(Debug)]
pub struct Outcome {
    pub status: ExitStatus,
    pub stdout: String,
    pub stdout_bytes: Vec<u8>,
    pub stderr: String,
    pub elapsed: Duration,
    pub label: String,
}

impl Outcome {
    /// The exit code; fails the test if the process died of a signal instead.
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or_else(|| {
            panic!(
                "{} was killed by signal {:?} instead of exiting; stderr:\n{}",
                self.label,
                self.status.signal(),
                self.stderr
            )
        })
    }

    /// Asserts the exit code, showing the streams when it differs.
    pub fn expect_code(&self, expected: i32) -> &Self {
        assert_eq!(
            self.code(),
            expected,
            "{}: exit code\n--- stdout:\n{}\n--- stderr:\n{}",
            self.label,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Checks the exit record's wire form and returns it parsed: compact JSON, one object, the fields
/// in the documented order, `baton` = 1, timestamps RFC 3339 UTC with milliseconds; and that the
/// contract crate (what the controller uses) decodes it.
pub fn check_record(text: &str) -> Value {
    assert!(
        text.starts_with("{\"baton\":1,\"step\":") && text.ends_with('}') && !text.contains('\n'),
        "not a compact baton record: {text:?}"
    );
    let value: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("invalid JSON ({e}): {text}"));
    let keys = ["\"step\":", "\"exitCode\":", "\"reason\":", "\"startedAt\":", "\"finishedAt\":", "\"results\":"];
    let mut at = 0;
    for key in keys {
        let pos = text[at..].find(key).unwrap_or_else(|| panic!("{key} missing or out of order in {text}"));
        at += pos + key.len();
    }
    let allowed = ["baton", "step", "exitCode", "reason", "startedAt", "finishedAt", "results", "resultsDeflate", "error", "usage"];
    for key in value.as_object().unwrap().keys() {
        assert!(allowed.contains(&key.as_str()), "unexpected field {key} in {text}");
    }
    assert!(value["results"].is_object(), "results is not an object: {text}");
    assert!(is_timestamp(&value["finishedAt"]), "finishedAt: {text}");
    assert!(value["startedAt"].is_null() || is_timestamp(&value["startedAt"]), "startedAt: {text}");
    assert!(value["exitCode"].is_null() || value["exitCode"].is_i64(), "exitCode: {text}");
    if let Some(e) = value.get("error") {
        assert!(e.as_str().is_some_and(|e| !e.is_empty()), "error must be a non-empty string: {text}");
    }
    baton_contract::message::decode(text).unwrap_or_else(|e| panic!("the contract crate cannot decode {text}: {e}"));
    value
}

/// `2026-11-23T16:00:42.123Z`
pub fn is_timestamp(v: &Value) -> bool {
    let Some(s) = v.as_str() else { return false };
    let b = s.as_bytes();
    let digits = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22];
    b.len() == 24
        && digits.iter().all(|&i| b[i].is_ascii_digit())
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.'
        && b[23] == b'Z'
}

/// The `error` sentence of a record ("" when there is none).
pub fn error_of(record: &Value) -> &str {
    record.get("error").and_then(Value::as_str).unwrap_or("")
}

/// The compiled helper program (see helper.rs), built once per source version.
pub fn helper() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let source = include_str!("helper.rs");
        let hash = source.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100000001b3));
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let out = dir.join(format!("baton-test-helper-{hash:016x}"));
        if !out.exists() {
            let tmp = dir.join(format!(".baton-test-helper-{}-{hash:016x}", std::process::id()));
            let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
            let status = Command::new(rustc)
                .args(["--edition", "2021", "-C", "opt-level=1", "-o"])
                .arg(&tmp)
                .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/helper.rs"))
                .status()
                .expect("run rustc for the test helper");
            assert!(status.success(), "cannot compile tests/common/helper.rs");
            fs::rename(&tmp, &out).unwrap();
        }
        out
    })
}

/// Reads the "PID PGID PPID" line the helper's `record` role writes once it is ready.
pub fn read_ready(path: &Path) -> (i32, i32, i32) {
    let text = wait_until(&format!("{} to be written", path.display()), SOON, || fs::read_to_string(path).ok());
    let n: Vec<i32> = text.split_whitespace().map(|x| x.parse().unwrap()).collect();
    (n[0], n[1], n[2])
}

/// The signal numbers the helper's `record` role has taken so far.
pub fn recorded(path: &Path) -> Vec<i32> {
    fs::read_to_string(path).unwrap_or_default().lines().map(|l| l.parse().unwrap()).collect()
}

/// State, parent and process group of a process, from /proc/PID/stat.
pub fn proc_stat(pid: i32) -> Option<(char, i32, i32)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    let pgrp = f.next()?.parse().ok()?;
    Some((state, ppid, pgrp))
}

/// Voluntary + involuntary context switches of every thread of a process: how often it woke up.
pub fn wakeups(pid: i32) -> u64 {
    let mut total = 0;
    for task in fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let status = fs::read_to_string(task.unwrap().path().join("status")).unwrap_or_default();
        for line in status.lines() {
            if line.starts_with("voluntary_ctxt_switches:") || line.starts_with("nonvoluntary_ctxt_switches:") {
                total += line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap();
            }
        }
    }
    total
}

/// Writes a file through a temporary name and a rename, like a well-behaved writer.
pub fn write_atomic(path: &Path, content: &[u8]) {
    let tmp = path.with_extension("tmp-test");
    fs::write(&tmp, content).unwrap();
    fs::rename(&tmp, path).unwrap();
}

/// Sends a signal to a pid, ignoring a process that is already gone.
pub fn kill(pid: i32, signal: i32) {
    unsafe { libc::kill(pid, signal) };
}

/// `s` quoted for sh.
pub fn shq(s: impl AsRef<OsStr>) -> String {
    format!("'{}'", s.as_ref().to_string_lossy().replace('\'', r"'\''"))
}

impl Pod {
    /// Copies a program into `<root>/for-all/`, readable and executable by every UID (the build's
    /// own target folder may not be).
    pub fn install_for_all(&self, program: &Path) -> PathBuf {
        let dir = self.root().join("for-all");
        let _ = fs::create_dir(&dir);
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let to = dir.join(program.file_name().unwrap());
        copy_executable(program, &to);
        to
    }
}

/// `["step a", "file /x"]` as the owned strings `wait_waiting_for` takes.
pub fn missing(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Copies a program to `to` with mode 0555. The copy is written by a separate `cp` process: a
/// file this (multi-threaded) test process held open for writing could leak into a child forked
/// meanwhile by another test and make executing it fail with ETXTBSY.
pub fn copy_executable(from: &Path, to: &Path) {
    let status = Command::new("cp").arg(from).arg(to).status().unwrap();
    assert!(status.success(), "cp {} {}", from.display(), to.display());
    fs::set_permissions(to, fs::Permissions::from_mode(0o555)).unwrap();
}
