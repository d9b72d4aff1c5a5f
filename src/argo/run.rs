//! `argoexec emissary -- CMD…`: one container of an Argo pod. Read top-down: claim `ctr/<name>/`,
//! read the template, wait for the container-set dependencies, debug pause, run the command (with
//! the set's retries; signals from baton's signalfd and from the `signal` file go to its process
//! group), debug pause, save the outputs of `main`, then write what Argo reads: the sentence of a
//! failure to the termination log, and `exitcode` last.
//!
//! | outcome                               | exitcode file     | exit     |
//! |---------------------------------------|-------------------|----------|
//! | the command ran (last run)            | its code (128+N)  | the same |
//! | a dependency ended with code N != 0   | N                 | 64       |
//! | a dependency was lost                 | 143               | 143      |
//! | baton's own errors                    | 64                | 64       |
//! | outputs of main cannot be saved       | the command's     | 64       |
//! | stop signal N before the command ran  | 128+N             | 128+N    |
//! | init-less: the supervisor failed      | 65                | 65       |
//! | sidecar whose main containers had all ended before it started | 0 | 0 |
//!
//! Exit 64 is Argo's "the emissary failed": the controller marks the node Error with the
//! termination message, which holds baton's sentence.

use std::cell::Cell;
use std::ffi::OsString;
use std::path::Path;
use std::time::{Duration, Instant};

use baton_contract::duration::human;
use baton_contract::layout::Layout;
use nix::sys::stat::{umask, Mode};

use crate::signals::Signals;
use crate::spawn;
use crate::supervise::{self, FileSignals, Rules, Sink, Tee};
use crate::sys;
use crate::wait::{Cond, Waiter};

use super::args;
use super::files::{self, Ctr, SignalRequest};
use super::outputs;
use super::ready;
use super::template::{Retry, Template};
use super::wait::{self, is_stop, Wait, Waited};
use super::{Env, EXIT_FAILED};

/// Argo's grace between SIGTERM and SIGKILL when ARGO_TERMINATION_GRACE_PERIOD_SECONDS is unset.
const DEFAULT_GRACE: Duration = Duration::from_secs(30);

/// How the container ends: what the exitcode file says, the exit code, and the sentence of a failure.
pub(super) struct End {
    pub exitcode: i32,
    pub exit: i32,
    pub why: Option<String>,
}

impl End {
    pub fn ran(code: i32) -> End {
        End { exitcode: code, exit: code, why: None }
    }
    pub fn failed(why: String) -> End {
        End { exitcode: EXIT_FAILED, exit: EXIT_FAILED, why: Some(why) }
    }
    pub fn stopped(signal: i32) -> End {
        End::ran(128 + signal)
    }
}

pub fn emissary(command: Vec<OsString>, env: &Env) -> i32 {
    // Block signals before anything else, so that none that arrives from now on is lost.
    let mut signals = match Signals::take_over() {
        Ok(s) => s,
        Err(e) => return finish(env, None, End::failed(format!("cannot set up signal handling: {e}"))),
    };
    if sys::getpid() != 1 {
        // Not PID 1: orphans of the command reparent to baton, which reaps them.
        let _ = sys::set_child_subreaper();
    }
    // As Argo's emissary: umask 0 for it and the command. Containers of the pod run as other UIDs
    // and share what they make; baton sets the mode of every file it makes itself anyway.
    umask(Mode::empty());
    let ctr = match container_name().and_then(|name| Ctr::claim(&env.dir, &name)) {
        Ok(c) => c,
        Err(why) => return finish(env, None, End::failed(why)),
    };
    let end = run(&ctr, command, env, &mut signals);
    finish(env, Some(&ctr), end)
}

/// A command line baton cannot run: the container still ends the way Argo reads.
pub fn refuse(sentence: &str, env: &Env) -> i32 {
    let ctr = container_name().and_then(|name| Ctr::claim(&env.dir, &name)).ok();
    finish(env, ctr.as_ref(), End::failed(sentence.to_string()))
}

/// ARGO_CONTAINER_NAME, which names the container's folder `ctr/<name>`. A container added by a
/// `podSpecPatch` has none (the controller sets it before it applies the patch); Argo's emissary
/// runs it all the same, in `ctr/` itself. baton runs it in a folder of its own, `ctr/unnamed-<random>`,
/// which no template names: no dependencies, no outputs, and no exit code shared with another one.
fn container_name() -> Result<String, String> {
    let name = std::env::var("ARGO_CONTAINER_NAME").unwrap_or_default();
    if name.is_empty() {
        let name = format!("unnamed-{}", crate::folder::random_hex());
        eprintln!(
            "baton: ARGO_CONTAINER_NAME is not set (a container added by a podSpecPatch); running it as {name:?}, \
             which nothing waits for"
        );
        return Ok(name);
    }
    files::check_name(&name, "ARGO_CONTAINER_NAME").map(|()| name)
}

fn run(ctr: &Ctr, mut command: Vec<OsString>, env: &Env, signals: &mut Signals) -> End {
    let initless = env_true("ARGO_WAIT_FOR_READY");
    if initless {
        if let Err(end) = ready::wait_for_supervisor(env, signals) {
            return end;
        }
    }
    let template = match Template::read(env) {
        Ok(t) => t,
        Err(why) => return End::failed(why),
    };
    if initless && ctr.name == "main" && template.has_input_artifacts() {
        return End::failed(
            "the template has input artifacts, which Argo's init-less layout (ARGO_WAIT_FOR_READY=true) links into \
             main from where the supervisor staged them, and baton does not do that yet; set initlessPod.enabled: \
             false in the workflow-controller-configmap for templates with input artifacts"
                .into(),
        );
    }
    if let Err(why) = args::add_offloaded_args(&mut command, Path::new("/tmp")) {
        return End::failed(why);
    }
    let retry = match template.retry() {
        Ok(r) => r,
        Err(why) => return End::failed(why),
    };

    let dependencies = template.dependencies(&ctr.name);
    for dep in &dependencies {
        if let Err(why) = files::check_name(dep, "the dependency") {
            return End::failed(why);
        }
        if *dep == ctr.name {
            return End::failed(format!(
                "container {:?} lists itself among its dependencies; it would wait forever",
                ctr.name
            ));
        }
    }
    if !dependencies.is_empty() {
        if let Err(end) = wait::for_dependencies(ctr, &dependencies, env, signals) {
            return end;
        }
    }
    if env_true("ARGO_DEBUG_PAUSE_BEFORE") {
        if let Some(signal) = wait::pause(ctr, "before", env, signals) {
            return End::stopped(signal);
        }
    }

    let code = match attempts(ctr, &command, &template, &retry, env, signals) {
        Ok(Some(code)) => code,
        Ok(None) => return End::ran(0), // a sidecar with nothing left to serve
        Err(end) => return end,
    };

    if env_true("ARGO_DEBUG_PAUSE_AFTER") {
        // A stop signal ends the pause; the command's code still stands.
        let _ = wait::pause(ctr, "after", env, signals);
    }
    if ctr.name == "main" {
        if let Err(why) = outputs::save(&template, &env.dir) {
            return End { exitcode: code, exit: EXIT_FAILED, why: Some(why) };
        }
    }
    End::ran(code)
}

/// One run of the command: its exit code, and whether it was asked to stop (then no retry).
struct Ran {
    code: i32,
    stop_asked: bool,
}

/// Runs the command as often as `retry` allows while it fails. Ok(None): a sidecar whose main
/// containers had all ended before it started, never run.
fn attempts(
    ctr: &Ctr,
    command: &[OsString],
    template: &Template,
    retry: &Retry,
    env: &Env,
    signals: &mut Signals,
) -> Result<Option<i32>, End> {
    let layout = Layout::new(&env.dir);
    let sidecar_of = template.is_sidecar(&ctr.name).then(|| template.main_names());
    let mut attempt = 1;
    let mut last = None;
    loop {
        let Some(ran) = run_once(ctr, command, template, sidecar_of.as_deref(), &layout, signals)? else {
            eprintln!("baton: sidecar {:?}: every main container has ended; not running it", ctr.name);
            return Ok(last);
        };
        if ran.code == 0 || attempt >= retry.attempts || ran.stop_asked {
            return Ok(Some(ran.code));
        }
        last = Some(ran.code);
        eprintln!(
            "baton: run {attempt} of {} ended with exit code {}; running again in {}",
            retry.attempts,
            ran.code,
            human(retry.pause)
        );
        if !retry.pause.is_zero() {
            let wait = Wait {
                root: &env.dir,
                dependencies: &[],
                file: None,
                deadline: Some(Instant::now() + retry.pause),
                ctr,
            };
            if let Ok(Waited::Stopped { signal, .. }) = wait.run(signals) {
                eprintln!("baton: {} before run {}: no more runs", sys::signal_name(signal), attempt + 1);
                return Ok(Some(ran.code));
            }
        }
        attempt += 1;
    }
}

/// One run. Ok(None): a sidecar whose main containers have all ended, not started.
fn run_once(
    ctr: &Ctr,
    command: &[OsString],
    template: &Template,
    sidecar_of: Option<&[String]>,
    layout: &Layout,
    signals: &mut Signals,
) -> Result<Option<Ran>, End> {
    // A sidecar stops once every main container has an exit code: TERM, KILL after the grace.
    // Watched from before the start, so no exit code is missed.
    let until = match sidecar_of {
        Some(mains) => {
            let conds = mains.iter().map(|m| Cond::File(files::ctr_dir(layout.root(), m).join("exitcode"))).collect();
            let mut waiter = Waiter::new(layout, conds)
                .map_err(|e| End::failed(format!("cannot watch the main containers' exit codes: {e}")))?;
            if waiter.check().missing.is_empty() {
                return Ok(None);
            }
            Some(waiter)
        }
        None => None,
    };
    let capture = env_true("ARGO_INCLUDE_SCRIPT_OUTPUT") || template.archives_logs();
    let copies = if capture {
        let open = |name: &str| {
            ctr.open_output(name).map_err(|e| End::failed(format!("cannot open {}: {e}", ctr.dir.join(name).display())))
        };
        Some((open("stdout")?, open("combined")?))
    } else {
        None
    };
    let child = spawn::spawn(command, signals.original_mask(), capture, capture).map_err(|c| End::failed(c.message))?;
    let mut tees = Vec::new();
    if let (Some((stdout, combined)), Some(out), Some(err)) = (copies, child.stdout, child.stderr) {
        let both = combined.try_clone().map_err(|e| End::failed(format!("cannot copy the output: {e}")))?;
        match (Tee::new(out, Sink::Out, stdout), Tee::new(err, Sink::Err, combined)) {
            (Ok(out), Ok(err)) => tees.extend([out.also(both), err]),
            (Err(e), _) | (_, Err(e)) => eprintln!("baton: cannot copy the output: {e}"),
        }
    }
    let stop_asked = Cell::new(false);
    let file_signals = Waiter::new(layout, vec![Cond::File(ctr.signal())]).ok().map(|mut waiter| {
        let _ = waiter.check(); // sets the watch on ctr/<name>/
        FileSignals { waiter, take: Box::new(|| take_signal(ctr, &stop_asked)) }
    });
    let rules = Rules {
        timeout: None,
        grace: grace(),
        step: None,
        until,
        stop_after: Vec::new(),
        stop_timeout: Duration::ZERO,
        layout,
        // Argo's contract: background grandchildren are neither awaited nor stopped.
        keep_group: true,
    };
    let supervised = supervise::supervise_with(child.pid, signals, tees, rules, file_signals)
        .map_err(|e| End::failed(format!("lost track of the command: {e}")))?;
    let stop_asked = stop_asked.get() || supervised.told_to_stop.is_some() || supervised.stopped.is_some();
    Ok(Some(Ran { code: supervised.ended.code(), stop_asked }))
}

/// The signal file, read and removed: the signal to send to the command's group, if any.
fn take_signal(ctr: &Ctr, stop_asked: &Cell<bool>) -> Vec<i32> {
    match files::read_signal(&ctr.signal()) {
        SignalRequest::None => Vec::new(),
        SignalRequest::Signal(signal) => {
            ctr.remove_signal();
            stop_asked.set(stop_asked.get() || is_stop(signal));
            vec![signal]
        }
        SignalRequest::Bad(sentence) => {
            eprintln!("baton: {sentence}");
            ctr.remove_signal();
            Vec::new()
        }
    }
}

fn env_true(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| v == "true")
}

/// ARGO_TERMINATION_GRACE_PERIOD_SECONDS (set when the pod sets terminationGracePeriodSeconds).
fn grace() -> Duration {
    let seconds = std::env::var("ARGO_TERMINATION_GRACE_PERIOD_SECONDS").ok().and_then(|v| v.parse::<u64>().ok());
    seconds.filter(|s| *s > 0).map_or(DEFAULT_GRACE, Duration::from_secs)
}

/// Says the failure (stderr and the termination log), then writes the exit code file, last.
fn finish(env: &Env, ctr: Option<&Ctr>, end: End) -> i32 {
    if let Some(why) = &end.why {
        eprintln!("baton: {why}");
        if let Err(e) = files::write_termination(&env.termination, why) {
            eprintln!("baton: cannot write the termination message to {}: {e}", env.termination.display());
        }
    }
    if let Some(ctr) = ctr {
        if let Err(e) = ctr.write_exitcode(end.exitcode) {
            eprintln!(
                "baton: cannot write {}: {e}; the containers waiting for it are stopped by the controller",
                ctr.exitcode().display()
            );
        }
    }
    end.exit
}
