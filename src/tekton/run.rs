//! One Tekton step: wait for the files, run the command, supervise it, write what Tekton's
//! controller reads. Tekton's outcomes; baton's machinery (signalfd, inotify, process groups,
//! TERM-then-KILL, reaping).
//!
//! | outcome                     | post file | exitCode file | internal keys               | exit |
//! |-----------------------------|-----------|---------------|-----------------------------|------|
//! | success                     | out       | 0             | StartedAt                   | 0    |
//! | command exits N             | out.err   | -             | StartedAt                   | N    |
//! | on_error=continue, exits N  | out       | N             | StartedAt, ExitCode=N       | 0    |
//! | previous step failed / lost | out.err   | -             | StartedAt, Reason=Skipped   | 1    |
//! | -timeout exceeded           | out.err   | -             | StartedAt, Reason=TimeoutExceeded | 1 |
//! | cancel file non-empty       | out.err   | killed        | StartedAt, Reason=Cancelled | 9    |
//!
//! The order at the end is baton's: results collected and the message fitted first, then the
//! termination message, then the exitCode file, and the post file last, so a successor (which starts
//! within milliseconds, not at the next 1 s poll) finds everything in place, and a step whose results
//! do not fit fails instead of releasing its successors with a message the controller cannot read.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use baton_contract::duration;
use baton_contract::layout::Layout;

use crate::clock;
use crate::signals::Signals;
use crate::spawn;
use crate::supervise::{self, Rules, StopCause};
use crate::sys;
use crate::wait::{Cond, Waiter};

use super::files::{self, PostLock, Wait, Waited};
use super::flags::{Flags, RESULTS_IN_TERMINATION_MESSAGE};
use super::message::{
    self, RunResult, INTERNAL, MAX_DECOMPRESSED, STEP_ARTIFACTS, STEP_RESULT, TASK_RESULT, TEKTON_LIMIT,
};

/// Tekton's exit code for everything that is not the command's own: skipped, timed out, and the
/// entrypoint's own errors (`log.Fatal`).
pub const EXIT_FAILED: i32 = 1;
/// Cancelled through the downward-API cancel file (Tekton: "like kill -9").
pub const EXIT_CANCELLED: i32 = 9;
/// The TERM-then-KILL grace when neither BATON_GRACE nor anything else says otherwise.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);
/// The kubelet shares this many bytes among the termination messages of all containers of a pod.
const KUBELET_POD_BUDGET: usize = 12288;

/// Validated options, with every path resolved. Everything that can be wrong is found here.
pub struct Plan {
    pub root: PathBuf,
    pub command: Vec<OsString>,
    pub wait_files: Vec<PathBuf>,
    pub wait_content: bool,
    pub post_file: Option<PathBuf>,
    pub termination_path: PathBuf,
    pub results: Vec<String>,
    pub step_results: Vec<String>,
    pub metadata_dir: Option<PathBuf>,
    pub timeout: Option<Duration>,
    pub negative_timeout: bool,
    pub grace: Duration,
    pub continue_on_error: bool,
    pub stdout: Option<PathBuf>,
    pub stderr: Option<PathBuf>,
    pub breakpoint: bool,
    pub debug_before_step: bool,
    pub compress: bool,
    /// The message budget: Tekton's 4096, or the kubelet's smaller share in pods of 4+ containers.
    pub limit: usize,
}

impl Plan {
    pub fn new(flags: Flags, root: &Path) -> Result<Plan, String> {
        if !flags.unsupported.is_empty() {
            return Err(format!(
                "{}; use Tekton's own entrypoint image for TaskRuns that need it",
                flags.unsupported.join("; ")
            ));
        }
        if let Some(extra) = flags.positional.first() {
            return Err(format!(
                "unexpected argument {:?} before --: the command and its arguments go after -entrypoint CMD --",
                extra.to_string_lossy()
            ));
        }
        let continue_on_error = match flags.on_error.as_str() {
            "" | "stopAndFail" => false,
            "continue" => true,
            other => return Err(format!("invalid -on_error {other:?}: use continue or stopAndFail")),
        };
        match flags.result_from.as_deref() {
            None | Some(RESULTS_IN_TERMINATION_MESSAGE) => {}
            Some("sidecar-logs") => {
                return Err("-result_from sidecar-logs (results read from a sidecar's logs) is not implemented by \
                            baton's Tekton mode; set the feature flag results-from to termination-message"
                    .into())
            }
            Some(other) => {
                return Err(format!("invalid -result_from {other:?}: use termination-message or sidecar-logs"))
            }
        }
        if std::env::var("TEKTON_HERMETIC").is_ok_and(|v| v == "1")
            && std::env::var("TEKTON_RESOURCE_NAME").unwrap_or_default().is_empty()
        {
            return Err("hermetic execution (TEKTON_HERMETIC=1: the command without network) is not implemented by \
                        baton's Tekton mode"
                .into());
        }
        let mut command = match flags.entrypoint.as_str() {
            "" => platform_command()?.into_iter().map(OsString::from).collect(),
            ep => vec![OsString::from(ep)],
        };
        command.extend(flags.command.iter().cloned());
        if !command.first().is_some_and(|c| !c.is_empty()) {
            return Err("the command is empty: pass -entrypoint CMD".into());
        }
        check_step_references(&command)?;
        let grace = match std::env::var("BATON_GRACE") {
            Ok(text) => duration::parse(&text).map_err(|e| format!("BATON_GRACE: {e}"))?,
            Err(_) => DEFAULT_GRACE,
        };
        let nonempty = |s: &str| (!s.is_empty()).then(|| PathBuf::from(s));
        let list = |s: &str| s.split(',').filter(|n| !n.is_empty()).map(str::to_string).collect::<Vec<_>>();
        Ok(Plan {
            root: root.to_path_buf(),
            command,
            wait_files: list(&flags.wait_file).into_iter().map(PathBuf::from).collect(),
            wait_content: flags.wait_file_content,
            post_file: nonempty(&flags.post_file),
            termination_path: flags.termination_path.as_deref().map_or_else(|| root.join("termination"), PathBuf::from),
            results: list(&flags.results),
            step_results: list(&flags.step_results),
            metadata_dir: nonempty(&flags.step_metadata_dir),
            timeout: flags.timeout(),
            negative_timeout: flags.timeout_ns < 0,
            grace,
            continue_on_error,
            stdout: nonempty(&flags.stdout_path),
            stderr: nonempty(&flags.stderr_path),
            breakpoint: flags.breakpoint_on_failure,
            debug_before_step: flags.debug_before_step,
            compress: flags.compress_termination_message,
            limit: message_limit(root),
        })
    }

    fn post_with(&self, suffix: &str) -> PathBuf {
        files::with_suffix(self.post_file.as_deref().unwrap_or(Path::new("")), suffix)
    }
}

/// The platform string Tekton's entrypoint looks up in TEKTON_PLATFORM_COMMANDS (os/arch[/variant]).
pub fn platform() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "linux/amd64",
        "aarch64" => "linux/arm64/v8",
        "arm" => "linux/arm/v7",
        "x86" => "linux/386",
        "powerpc64" => "linux/ppc64le",
        "s390x" => "linux/s390x",
        "riscv64" => "linux/riscv64",
        _ => "linux/unknown",
    }
}

/// The command for `platform` in a TEKTON_PLATFORM_COMMANDS map, falling back to the platform
/// without its last part (the CPU variant).
pub fn select_platform(commands: &BTreeMap<String, Vec<String>>, platform: &str) -> Result<Vec<String>, String> {
    if let Some(cmd) = commands.get(platform) {
        return Ok(cmd.clone());
    }
    let without_variant = &platform[..platform.rfind('/').unwrap_or(platform.len())];
    commands
        .get(without_variant)
        .cloned()
        .ok_or_else(|| format!("could not find command for platform {platform:?} in TEKTON_PLATFORM_COMMANDS"))
}

fn platform_command() -> Result<Vec<String>, String> {
    let env = std::env::var("TEKTON_PLATFORM_COMMANDS").unwrap_or_default();
    let invalid = |why: String| {
        format!("no -entrypoint, and TEKTON_PLATFORM_COMMANDS is not a JSON map of platform to command ({why})")
    };
    let value: serde_json::Value = serde_json::from_str(&env).map_err(|e| invalid(e.to_string()))?;
    let mut commands = BTreeMap::new();
    for (platform, argv) in value.as_object().ok_or_else(|| invalid("not an object".into()))? {
        let argv = argv.as_array().ok_or_else(|| invalid(format!("{platform}: not an array")))?;
        let argv: Option<Vec<String>> = argv.iter().map(|a| a.as_str().map(str::to_string)).collect();
        commands.insert(platform.clone(), argv.ok_or_else(|| invalid(format!("{platform}: not an array of strings")))?);
    }
    select_platform(&commands, platform())
}

/// `$(steps.<name>.results.<result>)` in the command or the environment: Tekton's entrypoint
/// substitutes those at run time; baton does not yet, and says so rather than run the literal.
fn check_step_references(command: &[OsString]) -> Result<(), String> {
    let is_ref = |s: &str| {
        s.match_indices("$(steps.").any(|(i, _)| {
            let rest = &s[i..];
            let end = rest.find(')').unwrap_or(rest.len());
            rest[..end].contains(".results.") || rest[..end].contains(".outputs")
        })
    };
    let found = command
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .find(|a| is_ref(a))
        .map(|a| format!("argument {a:?}"))
        .or_else(|| {
            std::env::vars_os()
                .find(|(_, v)| is_ref(&v.to_string_lossy()))
                .map(|(k, _)| format!("environment variable {}", k.to_string_lossy()))
        });
    match found {
        Some(place) => Err(format!(
            "{place} refers to a step result or artifact ($(steps.<step>.results.<name>)), which Tekton's \
             entrypoint substitutes at run time; baton's Tekton mode does not implement that yet"
        )),
        None => Ok(()),
    }
}

/// Tekton checks 4096 bytes, but the kubelet keeps only 12288 / (containers in the pod) of each
/// message. The containers: the steps (`<root>/steps/<i>` links made by `init`), `prepare`, and
/// `place-scripts` when there are scripts; BATON_TEKTON_CONTAINERS says the real number (sidecars).
fn message_limit(root: &Path) -> usize {
    let containers = std::env::var("BATON_TEKTON_CONTAINERS").ok().and_then(|v| v.parse::<usize>().ok());
    let containers = containers.filter(|n| *n > 0).unwrap_or_else(|| {
        let count = |dir: &Path, pick: &dyn Fn(&str) -> bool| {
            fs::read_dir(dir).map_or(0, |d| d.flatten().filter(|e| e.file_name().to_str().is_some_and(pick)).count())
        };
        let steps = count(&root.join("steps"), &|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        let scripts = count(&root.join("scripts"), &|n| !n.starts_with('.'));
        steps.max(1) + 1 + usize::from(scripts > 0)
    });
    TEKTON_LIMIT.min(KUBELET_POD_BUDGET / containers)
}

/// How the step ended, in Tekton's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Succeeded,
    /// The command failed with this code (128+N for signal N; 126/127 when it could not run).
    Failed(i32),
    /// `-on_error continue` and the command exited with this code.
    Continued(i32),
    /// A previous step failed (or was lost); `with_reason`: Reason=Skipped is reported (not for a
    /// debug-before-step "fail-continue").
    Skipped {
        with_reason: bool,
    },
    TimedOut,
    Cancelled,
    /// The entrypoint's own failure (Tekton: log.Fatal, exit 1).
    Error,
    /// The results could not be reported; the step fails with this code.
    ResultsFailed(i32),
}

impl Outcome {
    /// The outcome once the results could not be reported.
    fn without_results(self) -> Outcome {
        match self {
            Outcome::Succeeded | Outcome::Continued(_) | Outcome::Error => Outcome::ResultsFailed(EXIT_FAILED),
            Outcome::Failed(code) => Outcome::ResultsFailed(code),
            other => other,
        }
    }
}

pub fn run(flags: Flags, root: &Path, post_file_hint: Option<String>) -> i32 {
    // Block signals before anything else, so that none that arrives from now on is lost.
    let mut signals = match Signals::take_over() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("baton: cannot set up signal handling: {e}");
            return EXIT_FAILED;
        }
    };
    if sys::getpid() != 1 {
        let _ = sys::set_child_subreaper();
    }
    let plan = match Plan::new(flags, root) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("baton: {e}");
            // Let the steps after this one skip instead of waiting until the TaskRun times out.
            if let Some(post) = post_file_hint {
                let _ = files::write_post(&files::with_suffix(Path::new(&post), ".err"), "");
            }
            return EXIT_FAILED;
        }
    };
    let _lock = plan.post_file.as_deref().and_then(PostLock::claim);
    let layout = Layout::new(&plan.root);
    let mut step = Step { plan: &plan, layout: &layout, started_at: None };
    step.go(&mut signals)
}

struct Step<'a> {
    plan: &'a Plan,
    /// Only for the Waiter's API: Tekton steps use no baton layout.
    layout: &'a Layout,
    started_at: Option<String>,
}

impl<'a> Step<'a> {
    fn go(&mut self, signals: &mut Signals) -> i32 {
        let plan = self.plan;
        if let Some(dir) = &plan.metadata_dir {
            for sub in ["results", "artifacts"] {
                if let Err(e) = fs::create_dir_all(dir.join(sub)) {
                    eprintln!("baton: cannot create {}: {e}", dir.join(sub).display());
                    return self.finish(Outcome::Error, false, signals);
                }
            }
        }
        let wait =
            Wait { files: &plan.wait_files, content: plan.wait_content, err_is_go: plan.breakpoint, lost_check: true };
        let waited = wait.run(signals, self.layout);
        match waited {
            Waited::Ready => {}
            Waited::Skip(why) => {
                eprintln!("baton: skipping step because a previous step failed: {why}");
                return self.finish(Outcome::Skipped { with_reason: true }, false, signals);
            }
            Waited::Failed(why) => {
                eprintln!("baton: {why}");
                return self.finish(Outcome::Error, false, signals);
            }
            Waited::Signal(signal) => return self.interrupted(signal),
        }
        if plan.debug_before_step {
            let go_on = plan.post_with(".beforestepexit");
            eprintln!(
                "baton: debug before step: waiting for {} (continue: /tekton/debug/scripts/debug-beforestep-continue) \
                 or {}.err (skip: /tekton/debug/scripts/debug-beforestep-fail-continue)",
                go_on.display(),
                go_on.display()
            );
            let files = [go_on];
            let before = Wait { files: &files, content: false, err_is_go: false, lost_check: false };
            let waited = before.run(signals, self.layout);
            match waited {
                Waited::Ready => {}
                Waited::Signal(signal) => return self.interrupted(signal),
                Waited::Skip(_) | Waited::Failed(_) => {
                    eprintln!("baton: skipping execute step script because before step breakpoint fail-continue");
                    return self.finish(Outcome::Skipped { with_reason: false }, true, signals);
                }
            }
        }
        let outcome = self.run_command(signals);
        self.finish(outcome, true, signals)
    }

    fn run_command(&mut self, signals: &mut Signals) -> Outcome {
        let plan = self.plan;
        self.started_at = Some(clock::now_rfc3339());
        if plan.negative_timeout {
            eprintln!("baton: negative timeout specified");
            return Outcome::Error;
        }
        let cancel_file = plan.root.join("downward").join("cancel");
        let cancel = match Waiter::new(self.layout, vec![Cond::NonEmpty(cancel_file.clone())]) {
            Ok(mut w) => {
                if w.check().missing.is_empty() {
                    eprintln!(
                        "baton: the step was cancelled ({} is set) before its command started",
                        cancel_file.display()
                    );
                    return Outcome::Cancelled;
                }
                Some(w)
            }
            Err(e) => {
                eprintln!("baton: cannot watch {} for cancellation: {e}", cancel_file.display());
                None
            }
        };
        let (out_file, err_file) = match (open_tee(plan.stdout.as_deref()), open_tee(plan.stderr.as_deref())) {
            (Ok(o), Ok(e)) => (o, e),
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("baton: {e}");
                return Outcome::Error;
            }
        };
        self.started_at = Some(clock::now_rfc3339());
        let child = match spawn::spawn(&plan.command, signals.original_mask(), out_file.is_some(), err_file.is_some()) {
            Ok(c) => c,
            Err(cannot) => {
                // Tekton: not an exit of the command, so -on_error continue does not apply.
                eprintln!("baton: {}", cannot.message);
                return Outcome::Failed(cannot.code);
            }
        };
        let tees = supervise::tees([(child.stdout, out_file), (child.stderr, err_file)]);
        let rules = Rules {
            timeout: plan.timeout,
            grace: plan.grace,
            step: None,
            until: cancel,
            stop_after: Vec::new(),
            stop_timeout: Duration::ZERO,
            layout: self.layout,
            keep_group: false,
        };
        let supervised = match supervise::supervise(child.pid, signals, tees, rules) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("baton: lost track of the command: {e}");
                return Outcome::Error;
            }
        };
        let code = supervised.ended.code();
        match supervised.stopped {
            Some((StopCause::Timeout, signal)) => {
                eprintln!(
                    "baton: the step ran longer than -timeout {} and its command was stopped with {}",
                    duration::human(plan.timeout.unwrap_or_default()),
                    sys::signal_name(signal)
                );
                Outcome::TimedOut
            }
            Some((StopCause::Until, signal)) => {
                eprintln!(
                    "baton: the step was cancelled ({} is set); its command was stopped with {}",
                    cancel_file.display(),
                    sys::signal_name(signal)
                );
                Outcome::Cancelled
            }
            None if code == 0 => Outcome::Succeeded,
            None if plan.continue_on_error => Outcome::Continued(code),
            None => Outcome::Failed(code),
        }
    }

    /// A stop signal while waiting: the command never starts. As with Tekton's entrypoint (which
    /// dies of the signal), no termination message; unlike it, the `.err` post file, so no
    /// successor is left waiting.
    fn interrupted(&self, signal: i32) -> i32 {
        eprintln!("baton: {} while waiting; the command never started", sys::signal_name(signal));
        if self.plan.post_file.is_some() {
            let _ = files::write_post(&self.plan.post_with(".err"), "");
        }
        128 + signal
    }

    /// Reports the outcome: results, termination message, exitCode file, post file, in that order;
    /// then the breakpoint, if any. Returns the exit code.
    fn finish(&mut self, mut outcome: Outcome, read_results: bool, signals: &mut Signals) -> i32 {
        let plan = self.plan;
        let started_at = self.started_at.clone().unwrap_or_else(clock::now_rfc3339);
        let existing = fs::read(&plan.termination_path).ok().and_then(|t| message::decode(&t).ok()).unwrap_or_default();
        let (mut results, mut artifacts, mut problem) = (Vec::new(), Vec::new(), None);
        if read_results {
            match self.collect() {
                Ok((r, a)) => (results, artifacts) = (r, a),
                Err(e) => problem = Some(e),
            }
        }
        let all = [existing.clone(), results.clone(), internal(outcome, &started_at), artifacts].concat();
        let mut rendered = message::render(&all, plan.compress);
        if problem.is_none() && !rendered.fits(plan.limit) {
            problem = Some(too_large(&results, &rendered, plan.limit));
        }
        if let Some(p) = problem {
            eprintln!("baton: {p}");
            outcome = outcome.without_results();
            results.clear();
            rendered = message::render(&[existing, internal(outcome, &started_at)].concat(), plan.compress);
        }
        if let Err(e) = write_termination(&plan.termination_path, &rendered.text) {
            eprintln!(
                "baton: cannot write the termination message to {}: {e}; it was: {}",
                plan.termination_path.display(),
                rendered.text
            );
            outcome = outcome.without_results();
        }
        let exit_code_file = match outcome {
            Outcome::Succeeded => Some("0".to_string()),
            Outcome::Continued(code) => Some(code.to_string()),
            Outcome::Cancelled => Some("killed".to_string()),
            _ => None,
        };
        if let (Some(content), Some(dir)) = (exit_code_file, &plan.metadata_dir) {
            if let Err(e) = files::write_post(&dir.join("exitCode"), &content) {
                eprintln!("baton: cannot write {}: {e}", dir.join("exitCode").display());
            }
        }
        let post = match outcome {
            Outcome::Succeeded | Outcome::Continued(_) => Some(""),
            Outcome::Failed(_) | Outcome::Error | Outcome::Skipped { .. } if plan.breakpoint => None,
            _ => Some(".err"),
        };
        if let (Some(suffix), Some(_)) = (post, &plan.post_file) {
            let path = plan.post_with(suffix);
            if let Err(e) = files::write_post(&path, "") {
                eprintln!("baton: cannot write the post file {}: {e}", path.display());
            }
        }
        match outcome {
            Outcome::Succeeded | Outcome::Continued(_) => 0,
            Outcome::Failed(_) | Outcome::Error if plan.breakpoint => self.breakpoint(signals),
            Outcome::Failed(code) | Outcome::ResultsFailed(code) => code,
            Outcome::Cancelled => EXIT_CANCELLED,
            Outcome::Skipped { .. } | Outcome::TimedOut | Outcome::Error => EXIT_FAILED,
        }
    }

    /// Task results, step results, step artifacts: files read verbatim; a missing one is skipped.
    fn collect(&self) -> Result<(Vec<RunResult>, Vec<RunResult>), String> {
        let plan = self.plan;
        let step_dir = plan.metadata_dir.clone().unwrap_or_default().join("results");
        let mut results = Vec::new();
        let mut problems = Vec::new();
        for (dir, names, kind) in
            [(plan.root.join("results"), &plan.results, TASK_RESULT), (step_dir, &plan.step_results, STEP_RESULT)]
        {
            for name in names {
                match read_capped(&dir.join(name)) {
                    Ok(Some(value)) => results.push(RunResult::new(name.clone(), value, kind)),
                    Ok(None) => {}
                    Err(e) => problems.push(format!("result {name} ({}): {e}", dir.join(name).display())),
                }
            }
        }
        let mut artifacts = Vec::new();
        if let Some(dir) = &plan.metadata_dir {
            let path = dir.join("artifacts").join("provenance.json");
            match read_capped(&path) {
                Ok(Some(value)) => artifacts.push(RunResult::new(path.to_string_lossy(), value, STEP_ARTIFACTS)),
                Ok(None) => {}
                Err(e) => problems.push(format!("artifacts ({}): {e}", path.display())),
            }
        }
        if problems.is_empty() {
            Ok((results, artifacts))
        } else {
            Err(format!("cannot report the results: {}", problems.join("; ")))
        }
    }

    /// `-breakpoint_on_failure`: wait for `<post_file>.breakpointexit` and exit with the number in it.
    fn breakpoint(&self, signals: &mut Signals) -> i32 {
        let exit_file = self.plan.post_with(".breakpointexit");
        eprintln!(
            "baton: the step failed and -breakpoint_on_failure is set: waiting for {} \
             (kubectl exec into this container and run /tekton/debug/scripts/debug-continue or debug-fail-continue)",
            exit_file.display()
        );
        let files = [exit_file.clone()];
        match (Wait { files: &files, content: false, err_is_go: false, lost_check: false }).run(signals, self.layout)
        {
            Waited::Signal(signal) => return 128 + signal,
            Waited::Skip(e) | Waited::Failed(e) => eprintln!("baton: while waiting for {}: {e}", exit_file.display()),
            Waited::Ready => {}
        }
        match fs::read_to_string(&exit_file) {
            Ok(text) => match text.strip_suffix('\n').unwrap_or(&text).parse::<i64>() {
                // Go's os.Exit(n): the kernel keeps the low 8 bits.
                Ok(n) => (n & 0xff) as i32,
                Err(e) => {
                    eprintln!("baton: cannot read the breakpoint exit code {text:?}: {e}; exiting 0");
                    0
                }
            },
            Err(e) => {
                eprintln!("baton: breakpoint postfile {} not readable ({e}); exiting 0", exit_file.display());
                0
            }
        }
    }
}

/// StartedAt, then the key that says how the step ended.
fn internal(outcome: Outcome, started_at: &str) -> Vec<RunResult> {
    let mut keys = vec![RunResult::new("StartedAt", started_at, INTERNAL)];
    match outcome {
        Outcome::Continued(code) => keys.push(RunResult::new("ExitCode", code.to_string(), INTERNAL)),
        Outcome::Skipped { with_reason: true } => keys.push(RunResult::new("Reason", "Skipped", INTERNAL)),
        Outcome::TimedOut => keys.push(RunResult::new("Reason", "TimeoutExceeded", INTERNAL)),
        Outcome::Cancelled => keys.push(RunResult::new("Reason", "Cancelled", INTERNAL)),
        _ => {}
    }
    keys
}

fn too_large(results: &[RunResult], rendered: &message::Rendered, limit: usize) -> String {
    let mut by_size: Vec<&RunResult> = results.iter().collect();
    by_size.sort_by(|a, b| b.value.len().cmp(&a.value.len()).then(a.key.cmp(&b.key)));
    let largest: Vec<String> = by_size.iter().take(3).map(|r| format!("{} ({} bytes)", r.key, r.value.len())).collect();
    let what = if rendered.compressed() && rendered.text.len() <= limit {
        format!("it inflates to {} bytes, more than the {MAX_DECOMPRESSED} readers accept", rendered.json_len)
    } else {
        format!("it is {} bytes", rendered.text.len())
    };
    let head = if limit == TEKTON_LIMIT {
        "Termination message is above max allowed size 4096, caused by large task result.".to_string()
    } else {
        format!(
            "Termination message is above max allowed size {limit}, caused by large task result (the kubelet keeps \
             {KUBELET_POD_BUDGET} bytes / containers in the pod for each; set BATON_TEKTON_CONTAINERS if the count \
             is wrong)."
        )
    };
    format!(
        "{head} {what}; largest results: {}; the step fails and reports no results; write large data to a \
         workspace and return its path",
        if largest.is_empty() { "none".to_string() } else { largest.join(", ") }
    )
}

/// A result file, verbatim; None when it does not exist. Larger than any reader accepts: an error.
fn read_capped(path: &Path) -> Result<Option<Vec<u8>>, String> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let mut value = Vec::new();
    file.take(MAX_DECOMPRESSED as u64 + 1).read_to_end(&mut value).map_err(|e| e.to_string())?;
    if value.len() > MAX_DECOMPRESSED {
        return Err(format!("larger than {MAX_DECOMPRESSED} bytes"));
    }
    Ok(Some(value))
}

/// In place (the kubelet bind-mounts the file: it cannot be renamed over), then fsync.
fn write_termination(path: &Path, text: &str) -> io::Result<()> {
    let mut f = OpenOptions::new().write(true).create(true).truncate(true).mode(0o666).open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

fn open_tee(path: Option<&Path>) -> Result<Option<File>, String> {
    let Some(path) = path else { return Ok(None) };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| format!("error creating parent directory of {}: {e}", path.display()))?;
    }
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o644)
        .open(path)
        .map(Some)
        .map_err(|e| format!("error opening {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_fallback_drops_the_variant() {
        let map: BTreeMap<String, Vec<String>> = [
            ("linux/arm64".to_string(), vec!["/arm".to_string()]),
            ("linux/amd64".to_string(), vec!["/amd".to_string(), "x".to_string()]),
        ]
        .into();
        assert_eq!(select_platform(&map, "linux/amd64").unwrap(), ["/amd", "x"]);
        assert_eq!(select_platform(&map, "linux/arm64/v8").unwrap(), ["/arm"]);
        assert!(select_platform(&map, "linux/s390x").unwrap_err().contains("linux/s390x"));
    }

    #[test]
    fn step_references_are_found() {
        let args = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        assert!(check_step_references(&args(&["echo", "$(steps.step-a.results.out)"])).is_err());
        assert!(check_step_references(&args(&["echo", "$(steps.step-a.exitCode.path)", "$(params.x)"])).is_ok());
    }
}
