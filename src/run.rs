//! `baton run`: claim the step, wait, run, supervise, report. The order of the phases is the
//! protocol: a successor is released only after the termination message is on disk.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use baton_contract::duration::human;
use baton_contract::layout::Layout;
use baton_contract::message::{KUBELET_FILE_LIMIT, MIN_LIMIT};
use baton_contract::record::{ExitRecord, Reason, EXIT_BATON_FAILED, EXIT_TIMED_OUT};
use baton_contract::state::Phase;

use crate::cli::{OnError, RunArgs, DEFAULT_TERMINATION_PATH};
use crate::report::{self, Sinks};
use crate::signals::Signals;
use crate::spawn;
use crate::stepdir::StepDir;
use crate::supervise::{self, Tee};
use crate::sys;
use crate::wait::{Cond, WaitEnd, Waiter};
use crate::clock;

/// Validated options: everything that can be wrong with the command line, found before any waiting.
struct Plan {
    name: Option<String>,
    layout: Layout,
    conds: Vec<Cond>,
    termination_path: PathBuf,
    termination_required: bool,
    limit: usize,
}

fn plan(args: &RunArgs) -> Result<Plan, String> {
    if let Some(name) = &args.name {
        baton_contract::name::check_step(name).map_err(|e| format!("--name: {e}"))?;
    }
    let mut conds = Vec::new();
    for after in &args.after {
        let cond = Cond::parse_after(after)?;
        if let (Cond::Step { name, .. }, Some(me)) = (&cond, &args.name) {
            if name == me {
                return Err(format!("--after {after}: a step cannot wait for itself"));
            }
        }
        conds.push(cond);
    }
    conds.extend(args.wait_file.iter().cloned().map(Cond::File));
    conds.extend(args.wait_nonempty.iter().cloned().map(Cond::NonEmpty));
    if !(MIN_LIMIT..=KUBELET_FILE_LIMIT).contains(&args.message_limit) {
        return Err(format!(
            "--message-limit {}: use {MIN_LIMIT} to {KUBELET_FILE_LIMIT} bytes (the kubelet keeps at most \
             {KUBELET_FILE_LIMIT}; pass 12288 / the number of containers in the pod when that is smaller)",
            args.message_limit
        ));
    }
    if args.command.first().is_some_and(|c| c.is_empty()) {
        return Err("the command after -- is empty".into());
    }
    Ok(Plan {
        name: args.name.clone(),
        layout: Layout::new(&args.dir.dir),
        conds,
        termination_path: args.termination_path.clone().unwrap_or_else(|| DEFAULT_TERMINATION_PATH.into()),
        termination_required: args.termination_path.is_some(),
        limit: args.message_limit,
    })
}

pub fn run(args: RunArgs) -> i32 {
    // Block signals before anything else, so that none that arrives from now on is lost.
    let mut signals = match Signals::take_over() {
        Ok(s) => s,
        Err(e) => return fail_early(&format!("cannot set up signal handling: {e}")),
    };
    if sys::getpid() != 1 {
        // Not PID 1: orphans of the command reparent to baton, which reaps them.
        let _ = sys::set_child_subreaper();
    }
    let plan = match plan(&args) {
        Ok(p) => p,
        Err(e) => return refuse(&args, &e),
    };
    let mut step = match &plan.name {
        Some(name) => match StepDir::claim(&plan.layout, name) {
            Ok(s) => Some(s),
            Err(e) => return fail_early(&format!("{e:#}")),
        },
        None => None,
    };
    let sinks = Sinks {
        step: None,
        termination_path: &plan.termination_path,
        termination_required: plan.termination_required,
        limit: plan.limit,
    };
    let (record, exit) = run_step(&args, &plan, &mut signals, step.as_mut());
    report::finish(record, exit, &Sinks { step: step.as_ref(), ..sinks })
}

/// Waits and runs; returns the record and the container's exit code.
fn run_step(args: &RunArgs, plan: &Plan, signals: &mut Signals, mut step: Option<&mut StepDir>) -> (ExitRecord, i32) {
    let new_record = |reason| ExitRecord::new(plan.name.clone(), reason, String::new());
    let done = |mut record: ExitRecord, exit: i32| {
        record.finished_at = clock::now_rfc3339();
        if let Some(e) = &record.error {
            eprintln!("baton: {e}");
        }
        (record, exit)
    };
    let ended_without_running = |reason, exit, error: String| {
        let mut r = new_record(reason);
        r.error = Some(error);
        done(r, exit)
    };

    if !plan.conds.is_empty() {
        let waited = Waiter::new(&plan.layout, plan.conds.clone()).and_then(|mut w| {
            w.wait(signals, args.wait_timeout, |missing| {
                if let Some(s) = step.as_deref_mut() {
                    s.set_state(Phase::Waiting, None, missing, None);
                }
            })
        });
        match waited {
            Err(e) => return ended_without_running(Reason::CannotRun, EXIT_BATON_FAILED, format!("waiting failed: {e}")),
            Ok(WaitEnd::Ready) => {}
            Ok(WaitEnd::PredecessorFailed { step: before, reason, exit_code, detail }) => {
                let how = match (detail, exit_code) {
                    (Some(d), _) => d,
                    (None, Some(code)) => format!("it ended {reason} with exit code {code}"),
                    (None, None) => format!("it ended {reason}"),
                };
                return ended_without_running(Reason::Skipped, 0, format!("skipped because step {before} did not succeed: {how}"));
            }
            Ok(WaitEnd::PredecessorLost { step: before }) => {
                return ended_without_running(
                    Reason::PredecessorLost,
                    EXIT_BATON_FAILED,
                    format!(
                        "step {before} was lost: its baton died without writing a record (its container was \
                         killed, e.g. OOM-killed); this step does not run"
                    ),
                );
            }
            Ok(WaitEnd::TimedOut { missing }) => {
                let after = human(args.wait_timeout.unwrap_or_default());
                return ended_without_running(
                    Reason::WaitTimedOut,
                    EXIT_BATON_FAILED,
                    format!("gave up waiting after {after}; still missing: {}", missing.join(", ")),
                );
            }
            Ok(WaitEnd::Cancelled { signal }) => {
                return ended_without_running(
                    Reason::Cancelled,
                    128 + signal,
                    format!("cancelled by {} while waiting; the command never started", sys::signal_name(signal)),
                );
            }
        }
    }

    let tees = match open_tees(args) {
        Ok(t) => t,
        Err(e) => return ended_without_running(Reason::CannotRun, EXIT_BATON_FAILED, e),
    };
    if let Some(dir) = &args.results {
        // Give the command a folder to write into; collect_results reports any real problem later.
        let _ = std::fs::create_dir_all(dir);
    }
    let mut record = new_record(Reason::Completed);
    record.started_at = Some(clock::now_rfc3339());
    let child = match spawn::spawn(&args.command, signals.original_mask(), tees.0.is_some(), tees.1.is_some()) {
        Ok(c) => c,
        Err(cannot) => {
            record.exit_code = Some(cannot.code);
            record.error = Some(cannot.message);
            return match args.on_error {
                OnError::Continue => {
                    record.reason = Reason::Continued;
                    done(record, 0)
                }
                OnError::Stop => {
                    record.reason = Reason::CannotRun;
                    done(record, cannot.code)
                }
            };
        }
    };
    if let Some(s) = step.as_deref_mut() {
        s.set_state(Phase::Running, Some(child.pid as u32), &[], None);
    }
    let mut tee_list = Vec::new();
    for (pipe, file, sink) in [(child.stdout, tees.0, 1), (child.stderr, tees.1, 2)] {
        if let (Some(pipe), Some(file)) = (pipe, file) {
            match Tee::new(pipe, sink, file) {
                Ok(t) => tee_list.push(t),
                Err(e) => eprintln!("baton: cannot copy output: {e}"),
            }
        }
    }
    let supervised = match supervise::supervise(child.pid, signals, tee_list, args.timeout, args.grace) {
        Ok(s) => s,
        Err(e) => {
            record.reason = Reason::Failed;
            record.error = Some(format!("lost track of the command: {e}"));
            return done(record, EXIT_BATON_FAILED);
        }
    };
    let code = supervised.ended.code();
    record.exit_code = Some(code);
    let mut exit = code;
    if supervised.timed_out {
        record.reason = Reason::TimedOut;
        let how = supervised.stop_signal.map(sys::signal_name).unwrap_or_default();
        record.error = Some(format!(
            "the command ran longer than --timeout {} and was stopped with {how}",
            human(args.timeout.unwrap_or_default())
        ));
        exit = EXIT_TIMED_OUT;
    } else if code != 0 {
        record.reason = match args.on_error {
            OnError::Stop => Reason::Failed,
            OnError::Continue => {
                exit = 0;
                Reason::Continued
            }
        };
    }
    if let Some(dir) = &args.results {
        match report::collect_results(dir) {
            Ok(results) => record.results = results,
            Err(e) if record.reason.is_success() => {
                record.reason = Reason::ResultsError;
                record.error = Some(e);
                exit = EXIT_BATON_FAILED;
            }
            Err(e) => record.error = Some(e),
        }
    }
    done(record, exit)
}

type Tees = (Option<File>, Option<File>);

fn open_tees(args: &RunArgs) -> Result<Tees, String> {
    let open = |path: &Option<PathBuf>, flag: &str| -> Result<Option<File>, String> {
        let Some(p) = path else { return Ok(None) };
        OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o644)
            .open(p)
            .map(Some)
            .map_err(|e| format!("cannot open {flag} file {}: {e}", p.display()))
    };
    Ok((open(&args.stdout, "--stdout")?, open(&args.stderr, "--stderr")?))
}

/// Bad options. A named step still publishes a record, so that its successors do not wait forever.
fn refuse(args: &RunArgs, error: &str) -> i32 {
    eprintln!("baton: {error}");
    let Some(name) = args.name.as_deref().filter(|n| baton_contract::name::check_step(n).is_ok()) else {
        return EXIT_BATON_FAILED;
    };
    let layout = Layout::new(&args.dir.dir);
    let Ok(step) = StepDir::claim(&layout, name) else { return EXIT_BATON_FAILED };
    let mut record = ExitRecord::new(Some(name.to_string()), Reason::CannotRun, clock::now_rfc3339());
    record.error = Some(error.to_string());
    let path = args.termination_path.clone().unwrap_or_else(|| DEFAULT_TERMINATION_PATH.into());
    let sinks = Sinks {
        step: Some(&step),
        termination_path: &path,
        termination_required: args.termination_path.is_some(),
        limit: args.message_limit.clamp(MIN_LIMIT, KUBELET_FILE_LIMIT),
    };
    report::finish(record, EXIT_BATON_FAILED, &sinks);
    EXIT_BATON_FAILED
}

fn fail_early(error: &str) -> i32 {
    eprintln!("baton: {error}");
    EXIT_BATON_FAILED
}
