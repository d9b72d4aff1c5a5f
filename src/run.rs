//! `baton run`: claim the step, wait, run, supervise, report. The order of the phases is the
//! protocol: a successor is released only after the termination message is on disk.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use baton_contract::control::Request;
use baton_contract::duration::human;
use baton_contract::layout::{Layout, DEFAULT_DIR, ENV_DIR, ENV_STEP};
use baton_contract::message::{KUBELET_FILE_LIMIT, MIN_LIMIT};
use baton_contract::record::{ExitRecord, Reason, EXIT_BATON_FAILED, EXIT_TIMED_OUT};
use baton_contract::state::Phase;

use crate::cli::{OnError, RunArgs, DEFAULT_TERMINATION_PATH};
use crate::clock;
use crate::report::{self, Sinks};
use crate::signals::{Signals, STOP_SIGNALS};
use crate::spawn;
use crate::stepdir::{StepDir, WaitingFor};
use crate::supervise::{self, Rules, StopCause};
use crate::sys;
use crate::wait::{Cond, WaitEnd, Waiter};

/// Validated options: everything that can be wrong with the command line, found before any waiting.
struct Plan {
    name: Option<String>,
    layout: Layout,
    start: Vec<Cond>,
    until: Vec<Cond>,
    stop_after: Vec<Cond>,
    termination_path: PathBuf,
    termination_required: bool,
    limit: usize,
}

fn plan(args: &RunArgs) -> Result<Plan, String> {
    if let Some(name) = &args.name {
        if name.is_empty() && std::env::var(ENV_STEP).is_ok_and(|v| v.is_empty()) {
            return Err(crate::cli::EMPTY_STEP_ENV.into());
        }
        baton_contract::name::check_step(name).map_err(|e| format!("--name: {e}"))?;
    }
    for (flag, set) in [("--gate", args.gate), ("--breakpoint-on-failure", args.breakpoint_on_failure)] {
        if set && args.name.is_none() {
            return Err(format!("{flag} needs a step name: pass --name or set BATON_STEP"));
        }
    }
    let steps = |flag: &str, list: &[String], any_end: bool| -> Result<Vec<Cond>, String> {
        list.iter()
            .map(|text| {
                let cond = if any_end {
                    baton_contract::name::check_step(text)
                        .map(|()| Cond::Step { name: text.clone(), any_end: true })
                        .map_err(|e| format!("{flag} {text}: {e}"))?
                } else {
                    Cond::parse_after(text)?
                };
                match (&cond, &args.name) {
                    (Cond::Step { name, .. }, Some(me)) if name == me => {
                        Err(format!("{flag} {text}: a step cannot wait for itself"))
                    }
                    _ => Ok(cond),
                }
            })
            .collect()
    };
    let mut start = steps("--after", &args.after, false)?;
    start.extend(args.wait_file.iter().cloned().map(Cond::File));
    start.extend(args.wait_nonempty.iter().cloned().map(Cond::NonEmpty));
    if args.gate {
        start.extend(args.name.clone().map(Cond::Gate));
    }
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
        start,
        until: steps("--until", &args.until, true)?,
        stop_after: steps("--stop-after", &args.stop_after, true)?,
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
            // The folder is not this wrapper's to write: the termination message still says why.
            Err(e) => return refuse_unclaimed(&plan, &e.to_string()),
        },
        None => None,
    };
    let (mut record, exit) = run_step(&args, &plan, &mut signals, step.as_mut());
    if record.finished_at.is_empty() {
        record.finished_at = clock::now_rfc3339();
    }
    if let Some(e) = &record.error {
        eprintln!("baton: {e}");
    }
    let mut sinks = Sinks {
        step: step.as_mut(),
        termination_path: &plan.termination_path,
        termination_required: plan.termination_required,
        limit: plan.limit,
    };
    report::finish(record, exit, &mut sinks)
}

/// Waits and runs; returns the record (finishedAt set once the command has run) and the exit code.
fn run_step(args: &RunArgs, plan: &Plan, signals: &mut Signals, mut step: Option<&mut StepDir>) -> (ExitRecord, i32) {
    // The record of a step whose command never ran.
    let never_ran = |reason, exit, error: String| {
        let mut record = ExitRecord::new(plan.name.clone(), reason, String::new());
        record.error = Some(error);
        (record, exit)
    };

    let prepared = spawn::Prepared::new(&args.command);
    if !plan.start.is_empty() {
        let waited = Waiter::new(&plan.layout, plan.start.clone()).and_then(|mut w| {
            w.wait(signals, args.wait_timeout, |waiting| {
                if let Some(s) = step.as_deref_mut() {
                    s.set_state(Phase::Waiting, None, waiting, None);
                }
            })
        });
        match waited {
            Ok(WaitEnd::Ready) => {}
            Ok(end) => {
                let (reason, exit, error) = explain_wait(end, args);
                return never_ran(reason, exit, error);
            }
            Err(e) => return never_ran(Reason::CannotRun, EXIT_BATON_FAILED, format!("waiting failed: {e}")),
        }
    }
    let until = if plan.until.is_empty() {
        None
    } else {
        match Waiter::new(&plan.layout, plan.until.clone()) {
            Ok(mut w) => {
                if w.check().missing.is_empty() {
                    let why = "every --until step had ended before this sidecar started; it did not run";
                    return never_ran(Reason::Stopped, 0, why.into());
                }
                Some(w)
            }
            Err(e) => return never_ran(Reason::CannotRun, EXIT_BATON_FAILED, format!("cannot watch --until steps: {e}")),
        }
    };

    let tees = match open_tees(args) {
        Ok(t) => t,
        Err(e) => return never_ran(Reason::CannotRun, EXIT_BATON_FAILED, e),
    };
    if let Some(dir) = &args.results {
        // Give the command a folder to write into; collect_results reports any real problem later.
        let _ = std::fs::create_dir_all(dir);
    }
    // Running from now on: a `baton kill` that comes before the spawn returns waits in the FIFO.
    if let Some(s) = step.as_deref_mut() {
        s.set_state(Phase::Running, None, &WaitingFor::default(), None);
    }
    let mut record = ExitRecord::new(plan.name.clone(), Reason::Completed, String::new());
    record.started_at = Some(clock::now_rfc3339());
    let child = match spawn::spawn_prepared(&prepared, signals.original_mask(), tees.0.is_some(), tees.1.is_some()) {
        Ok(c) => c,
        Err(cannot) => {
            record.exit_code = Some(cannot.code);
            record.error = Some(cannot.message);
            return match args.on_error {
                OnError::Continue => (ExitRecord { reason: Reason::Continued, ..record }, 0),
                OnError::Stop => (ExitRecord { reason: Reason::CannotRun, ..record }, cannot.code),
            };
        }
    };
    let tee_list = supervise::tees([(child.stdout, tees.0), (child.stderr, tees.1)]);
    let rules = Rules {
        timeout: args.timeout,
        grace: args.grace,
        step: step.as_deref_mut(),
        until,
        stop_after: plan.stop_after.clone(),
        stop_timeout: args.stop_timeout,
        layout: &plan.layout,
        keep_group: args.keep_group,
    };
    let supervised = match supervise::supervise(child.pid, signals, tee_list, rules) {
        Ok(s) => s,
        Err(e) => {
            record.reason = Reason::Failed;
            record.error = Some(format!("lost track of the command: {e}"));
            return (record, EXIT_BATON_FAILED);
        }
    };
    let code = supervised.ended.code();
    record.exit_code = Some(code);
    record.usage = Some(crate::sys::children_usage().into());
    let mut exit = code;
    match supervised.stopped {
        Some((StopCause::Until, _)) => {
            record.reason = Reason::Stopped;
            exit = 0;
        }
        Some((StopCause::Timeout, signal)) => {
            record.reason = Reason::TimedOut;
            record.error = Some(format!(
                "the command ran longer than --timeout {} and was stopped with {}",
                human(args.timeout.unwrap_or_default()),
                sys::signal_name(signal)
            ));
            exit = EXIT_TIMED_OUT;
        }
        None if code != 0 => {
            record.reason = match args.on_error {
                OnError::Stop => Reason::Failed,
                OnError::Continue => {
                    exit = 0;
                    Reason::Continued
                }
            };
        }
        None => {}
    }
    if let Some(dir) = &args.results {
        match report::collect_results(dir) {
            Ok(results) => record.results = results,
            Err(e) if record.reason.is_success() => {
                record.reason = Reason::ResultsError;
                record.error = Some(e);
                exit = EXIT_BATON_FAILED;
            }
            Err(e) => {
                record.error = Some(match record.error.take() {
                    Some(earlier) => format!("{earlier}; {e}"),
                    None => e,
                })
            }
        }
    }
    record.finished_at = clock::now_rfc3339();
    // A pod deletion (SIGTERM to baton) must end the step, not pause it: no second signal comes.
    let pause_here = code != 0 && record.reason != Reason::Stopped && supervised.told_to_stop.is_none();
    if args.breakpoint_on_failure && pause_here {
        if let Some(s) = step {
            if pause(s, signals, code) {
                record.reason = Reason::Failed;
                record.error.get_or_insert_with(|| "failed at a breakpoint with baton resume --fail".into());
                exit = code;
            }
        }
    }
    (record, exit)
}

/// The record's reason, the exit code and the sentence for a wait that ended without running.
fn explain_wait(end: WaitEnd, args: &RunArgs) -> (Reason, i32, String) {
    match end {
        WaitEnd::Ready => unreachable!("a ready wait runs the command"),
        WaitEnd::PredecessorFailed { step, reason, exit_code, detail } => {
            let how = match (detail, exit_code) {
                (Some(d), _) => d,
                (None, Some(code)) => format!("it ended {reason} with exit code {code}"),
                (None, None) => format!("it ended {reason}"),
            };
            (Reason::Skipped, 0, format!("skipped because step {step} did not succeed: {how}"))
        }
        WaitEnd::PredecessorLost { step } => {
            (Reason::PredecessorLost, EXIT_BATON_FAILED, format!("{}; this step does not run", crate::wait::lost_sentence(&step)))
        }
        WaitEnd::Error { sentence } => (Reason::CannotRun, EXIT_BATON_FAILED, format!("{sentence}; this step does not run")),
        WaitEnd::TimedOut { missing } => (
            Reason::WaitTimedOut,
            EXIT_BATON_FAILED,
            format!(
                "gave up waiting after {}; still missing: {}",
                human(args.wait_timeout.unwrap_or_default()),
                missing.join(", ")
            ),
        ),
        WaitEnd::Cancelled { signal } => (
            Reason::Cancelled,
            128 + signal,
            format!("cancelled by {} while waiting; the command never started", sys::signal_name(signal)),
        ),
    }
}

/// Keeps a failed step open for debugging until `baton resume` (or a stop signal). Returns true
/// when it was resumed with `--fail`.
fn pause(step: &mut StepDir, signals: &mut Signals, code: i32) -> bool {
    step.set_state(Phase::Paused, None, &WaitingFor::default(), Some(code));
    let name = step.name().to_string();
    let pod = std::env::var("HOSTNAME").unwrap_or_else(|_| "<pod>".into());
    let exe = step.layout().bin();
    eprintln!(
        "baton: step {name} failed with exit code {code} and is paused at a breakpoint.\n\
         baton:   look around:  kubectl exec -it {pod} -c <container> -- {exe} status\n\
         baton:   go on:        kubectl exec {pod} -c <container> -- {exe} resume {name}\n\
         baton:   fail it:      kubectl exec {pod} -c <container> -- {exe} resume --fail {name}\n\
         baton: the steps after it wait until then; deleting the pod ends the pause too.",
        exe = exe.display()
    );
    loop {
        if sys::poll(&[signals.fd(), step.control_fd()], None).is_err() {
            return false;
        }
        while let Ok(Some(signal)) = signals.next() {
            if signal == libc::SIGCHLD {
                sys::reap(None);
            } else if STOP_SIGNALS.contains(&signal) {
                eprintln!("baton: {} ended the breakpoint of step {name}", sys::signal_name(signal));
                return false;
            }
        }
        for request in step.requests() {
            match request {
                Request::Resume => return false,
                Request::ResumeFail => return true,
                Request::Kill(_) => eprintln!("baton: step {name} is paused: its command has ended; ignoring kill"),
            }
        }
    }
}

type Tees = (Option<File>, Option<File>);

/// Opens the `--stdout` / `--stderr` files. Without blocking: a FIFO nobody reads is a sentence now,
/// not an `open` that holds the wrapper (and every signal) until someone does.
fn open_tees(args: &RunArgs) -> Result<Tees, String> {
    let open = |path: &Option<PathBuf>, flag: &str| -> Result<Option<File>, String> {
        let Some(p) = path else { return Ok(None) };
        if let Some(parent) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(parent); // as for --results; a real problem shows below
        }
        OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o644)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(p)
            .map(Some)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ENXIO) => format!(
                    "cannot open {flag} file {}: it is a FIFO that nobody reads; start its reader first, or give a \
                     regular file",
                    p.display()
                ),
                _ => format!("cannot open {flag} file {}: {e}", p.display()),
            })
    };
    Ok((open(&args.stdout, "--stdout")?, open(&args.stderr, "--stderr")?))
}

/// Bad options. A named step still publishes a record, so that its successors do not wait forever.
fn refuse(args: &RunArgs, error: &str) -> i32 {
    let limit = args.message_limit.clamp(MIN_LIMIT, KUBELET_FILE_LIMIT);
    refuse_as(args.name.as_deref(), &args.dir.dir, args.termination_path.clone(), limit, error)
}

/// A command line clap could not parse (an unknown flag, a bad value, no `--`): what the step's
/// name, folder and termination path would have been is read from the raw arguments and the
/// environment, so the refusal still publishes its end.
pub fn refuse_unparsed(raw: &[OsString], error: &str) -> i32 {
    let mut name = None;
    let mut dir = None;
    let mut termination = None;
    let mut limit = None;
    let mut i = 0;
    while i < raw.len() {
        let arg = raw[i].to_string_lossy();
        if arg == "--" {
            break;
        }
        for (flag, slot) in
            [("--name", &mut name), ("--dir", &mut dir), ("--termination-path", &mut termination), ("--message-limit", &mut limit)]
        {
            if let Some(value) = arg.strip_prefix(flag).and_then(|rest| rest.strip_prefix('=')) {
                *slot = Some(value.to_string());
            } else if arg == flag {
                *slot = raw.get(i + 1).map(|v| v.to_string_lossy().into_owned());
                i += 1;
            }
        }
        i += 1;
    }
    let env = |key: &str| std::env::var(key).ok().filter(|v| !v.is_empty());
    let name = name.or_else(|| env(ENV_STEP));
    let dir = dir.or_else(|| env(ENV_DIR)).unwrap_or_else(|| DEFAULT_DIR.to_string());
    let limit = limit.and_then(|l| l.parse().ok()).unwrap_or(KUBELET_FILE_LIMIT).clamp(MIN_LIMIT, KUBELET_FILE_LIMIT);
    refuse_as(name.as_deref(), Path::new(&dir), termination.map(PathBuf::from), limit, error)
}

/// Publishes a `CannotRun` record for step `name` (when it is a valid name whose folder this
/// wrapper can claim) and writes the termination message. Exit 125.
fn refuse_as(name: Option<&str>, dir: &Path, termination: Option<PathBuf>, limit: usize, error: &str) -> i32 {
    eprintln!("baton: {error}");
    let name = name.filter(|n| baton_contract::name::check_step(n).is_ok());
    let layout = Layout::new(dir);
    let mut step = None;
    if let Some(name) = name {
        match StepDir::claim(&layout, name) {
            Ok(s) => step = Some(s),
            Err(e) => eprintln!("baton: {e}"),
        }
    }
    let mut record = ExitRecord::new(name.map(str::to_string), Reason::CannotRun, clock::now_rfc3339());
    record.error = Some(error.to_string());
    let path = termination.clone().unwrap_or_else(|| DEFAULT_TERMINATION_PATH.into());
    let mut sinks = Sinks { step: step.as_mut(), termination_path: &path, termination_required: termination.is_some(), limit };
    report::finish(record, EXIT_BATON_FAILED, &mut sinks);
    EXIT_BATON_FAILED
}

/// The step's folder cannot be claimed (its name is taken by a living baton, another UID made it,
/// the shared folder is unusable): nothing may be written there, but the termination message says why.
fn refuse_unclaimed(plan: &Plan, error: &str) -> i32 {
    eprintln!("baton: {error}");
    let mut record = ExitRecord::new(plan.name.clone(), Reason::CannotRun, clock::now_rfc3339());
    record.error = Some(error.to_string());
    let mut sinks =
        Sinks { step: None, termination_path: &plan.termination_path, termination_required: plan.termination_required, limit: plan.limit };
    report::finish(record, EXIT_BATON_FAILED, &mut sinks);
    EXIT_BATON_FAILED
}

fn fail_early(error: &str) -> i32 {
    eprintln!("baton: {error}");
    EXIT_BATON_FAILED
}
