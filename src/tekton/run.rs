//! One Tekton step: credentials, wait for the files, substitute the earlier steps' results, check
//! the `when` expressions, run the command (hermetic if asked), supervise it, write what Tekton's
//! controller reads. Tekton's outcomes; baton's machinery (signalfd, inotify, process groups,
//! TERM-then-KILL, reaping).
//!
//! | outcome                     | post file | exitCode file | internal keys               | exit |
//! |-----------------------------|-----------|---------------|-----------------------------|------|
//! | success                     | out       | 0             | StartedAt                   | 0    |
//! | `when` does not hold        | out       | 0             | StartedAt, Reason=Skipped   | 0    |
//! | command exits N             | out.err   | -             | StartedAt                   | N    |
//! | on_error=continue, exits N  | out       | N             | StartedAt, ExitCode=N       | 0    |
//! | the same, breakpoint set    | -         | -             | StartedAt                   | paused |
//! | previous step failed / lost | out.err   | -             | StartedAt, Reason=Skipped   | 1    |
//! | -timeout exceeded           | out.err   | -             | StartedAt, Reason=TimeoutExceeded | 1 |
//! | cancel file non-empty       | out.err   | killed        | StartedAt, Reason=Cancelled | 9    |
//!
//! The order at the end is baton's: results collected and the message fitted first, then the
//! termination message, then the exitCode file, and the post file last, so a successor (which starts
//! within milliseconds, not at the next 1 s poll) finds everything in place, and a step whose results
//! do not fit fails instead of releasing its successors with a message the controller cannot read.

use std::fs;
use std::path::Path;
use std::time::Duration;

use baton_contract::duration;
use baton_contract::layout::Layout;

use crate::clock;
use crate::signals::Signals;
use crate::spawn;
use crate::supervise::{self, Rules, StopCause};
use crate::sys;
use crate::wait::{Cond, Waiter};

use super::credentials::{self, Credentials};
use super::debug;
use super::files::{self, PostLock, Wait, Waited};
use super::flags::Flags;
use super::hermetic::{self, Hermetic};
use super::message;
use super::plan::Plan;
use super::report::{self, internal, too_large, write_termination, Outcome, EXIT_CANCELLED, EXIT_FAILED};
use super::stepresults;
use super::when;

pub fn run(flags: Flags, credentials: Credentials, root: &Path, post_file_hint: Option<String>) -> i32 {
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
                let _ = files::write_post(root, &files::with_suffix(Path::new(&post), ".err"), "");
            }
            return EXIT_FAILED;
        }
    };
    let _lock = plan.post_file.as_deref().and_then(|post| PostLock::claim(&plan.root, post));
    // Tekton's order: the credentials into /tekton/creds, then what it holds into $HOME, then the wait.
    let creds_dir = plan.root.join(super::CREDS_DIR);
    credentials.write(&creds_dir);
    credentials::copy_to_home(&creds_dir);
    let layout = Layout::new(&plan.root);
    let mut step = Step { plan: &plan, layout: &layout, started_at: None, usage: None, leftovers: None };
    step.go(&mut signals)
}

/// In the step's metadata folder (`-step_metadata_dir`), beside `exitCode`.
const USAGE_FILE: &str = "usage.json";

struct Step<'a> {
    plan: &'a Plan,
    /// Only for the Waiter's API: Tekton steps use no baton layout.
    layout: &'a Layout,
    started_at: Option<String>,
    /// What the command cost, once it ran (written to `usage.json` beside `exitCode`).
    usage: Option<baton_contract::record::Usage>,
    /// The command's process group once its leader exited, with the copies of its output: what it
    /// left running (`dockerd &`) is ended only after the post file is written, as Tekton's
    /// entrypoint publishes when its direct child exits.
    leftovers: Option<(i32, Vec<supervise::Tee>)>,
}

impl<'a> Step<'a> {
    fn go(&mut self, signals: &mut Signals) -> i32 {
        let plan = self.plan;
        if let Some(dir) = &plan.metadata_dir {
            for sub in ["results", "artifacts"] {
                if let Err(e) = files::make_folders(&plan.root, &dir.join(sub)) {
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
        // Tekton's order: the earlier steps' results and artifacts substituted, the `when`
        // expressions evaluated, then the command started.
        let substituted = stepresults::substitute(
            plan.command.clone(),
            plan.when.clone(),
            stepresults::environment(),
            &plan.root.join("steps"),
            &plan.root.join("scripts"),
            &stepresults::temp_dir(),
        );
        let substituted = match substituted {
            Ok(s) => s,
            Err(e) => {
                eprintln!("baton: {e}");
                return Outcome::Error;
            }
        };
        for why in &substituted.unresolved {
            eprintln!(
                "baton: a reference to an earlier step is left as written, as Tekton's entrypoint leaves it: {why}"
            );
        }
        stepresults::set_environment(&substituted.env);
        match when::allows(&substituted.when) {
            Ok(true) => {}
            Ok(false) => {
                eprintln!("baton: the step is skipped: its when expressions do not all hold");
                return Outcome::WhenSkipped;
            }
            Err(e) => {
                eprintln!("baton: {e}");
                return Outcome::Error;
            }
        }
        let command = substituted.command;
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
        let (out_file, err_file) = match (
            files::open_tee(&plan.root, plan.stdout.as_deref()),
            files::open_tee(&plan.root, plan.stderr.as_deref()),
        ) {
            (Ok(o), Ok(e)) => (o, e),
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("baton: {e}");
                return Outcome::Error;
            }
        };
        // TEKTON_HERMETIC=1, read from the environment the command gets (runner.go).
        let hermetic = match hermetic::requested(&substituted.env).then(Hermetic::new).transpose() {
            Ok(h) => h,
            Err(e) => {
                eprintln!("baton: TEKTON_HERMETIC=1: cannot set up the step's namespaces: {e}");
                return Outcome::Error;
            }
        };
        let before_exec = hermetic.as_ref().map(|h| Box::new(h.hook()) as spawn::BeforeExec);
        self.started_at = Some(clock::now_rfc3339());
        let spawned =
            spawn::spawn_with(&command, signals.original_mask(), out_file.is_some(), err_file.is_some(), before_exec);
        if let Some(why) = hermetic.and_then(Hermetic::failure) {
            // Tekton: cmd.Start fails, the step fails (exit 1).
            eprintln!("baton: {why}");
            return Outcome::Error;
        }
        let child = match spawned {
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
            keep_group: true,
        };
        let supervised = match supervise::supervise(child.pid, signals, tees, rules) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("baton: lost track of the command: {e}");
                return Outcome::Error;
            }
        };
        let code = supervised.ended.code();
        self.usage = Some(sys::children_usage().into());
        self.leftovers = Some((child.pid, supervised.tees));
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
            // Tekton checks the breakpoint before -on_error continue: a failure pauses the step.
            None if plan.continue_on_error && !plan.breakpoint => Outcome::Continued(code),
            None => Outcome::Failed(code),
        }
    }

    /// A stop signal while waiting: the command never starts. As with Tekton's entrypoint (which
    /// dies of the signal), no termination message; unlike it, the `.err` post file, so no
    /// successor is left waiting.
    fn interrupted(&self, signal: i32) -> i32 {
        eprintln!("baton: {} while waiting; the command never started", sys::signal_name(signal));
        if self.plan.post_file.is_some() {
            let _ = files::write_post(&self.plan.root, &self.plan.post_with(".err"), "");
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
        // A step skipped by its `when` reports no results; with -result_from sidecar-logs the results
        // stay in their files for Tekton's results sidecar.
        if read_results && outcome != Outcome::WhenSkipped && plan.results_in_message {
            match report::collect(plan) {
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
            Outcome::Succeeded | Outcome::WhenSkipped => Some("0".to_string()),
            Outcome::Continued(code) => Some(code.to_string()),
            Outcome::Cancelled => Some("killed".to_string()),
            _ => None,
        };
        if let (Some(content), Some(dir)) = (exit_code_file, &plan.metadata_dir) {
            if let Err(e) = files::write_post(&plan.root, &dir.join("exitCode"), &content) {
                eprintln!("baton: cannot write {}: {e}", dir.join("exitCode").display());
            }
        }
        // baton's own addition, where Tekton's controller never looks (its termination message
        // stays byte for byte Tekton's): what the command cost.
        if let (Some(usage), Some(dir)) = (self.usage, &plan.metadata_dir) {
            let json = serde_json::to_string(&usage).expect("usage serializes");
            if let Err(e) = files::write_post(&plan.root, &dir.join(USAGE_FILE), &json) {
                eprintln!("baton: cannot write {}: {e}", dir.join(USAGE_FILE).display());
            }
        }
        let post = match outcome {
            Outcome::Succeeded | Outcome::Continued(_) | Outcome::WhenSkipped => Some(""),
            // The debug-before-step "fail-continue" (Skipped without a reason) writes `.err` even so:
            // with a breakpoint, `.err` lets the next step run.
            Outcome::Failed(_) | Outcome::Error | Outcome::Skipped { with_reason: true } if plan.breakpoint => None,
            _ => Some(".err"),
        };
        if let (Some(suffix), Some(_)) = (post, &plan.post_file) {
            let path = plan.post_with(suffix);
            if let Err(e) = files::write_post(&plan.root, &path, "") {
                eprintln!("baton: cannot write the post file {}: {e}", path.display());
            }
        }
        if let Some((pgid, mut tees)) = self.leftovers.take() {
            supervise::end_group(pgid, signals, plan.grace, &mut tees);
        }
        match outcome {
            Outcome::Succeeded | Outcome::Continued(_) | Outcome::WhenSkipped => 0,
            Outcome::Failed(_) | Outcome::Error if plan.breakpoint => debug::breakpoint(plan, self.layout, signals),
            Outcome::Failed(code) | Outcome::ResultsFailed(code) => code,
            Outcome::Cancelled => EXIT_CANCELLED,
            Outcome::Skipped { .. } | Outcome::TimedOut | Outcome::Error => EXIT_FAILED,
        }
    }
}
