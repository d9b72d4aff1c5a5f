//! The `kubectl exec` side: `baton status`, `kill`, `release`, `resume`. They read the shared
//! directory and talk to wrappers through their control FIFOs, so they work across containers, UIDs
//! and PID namespaces, in images without a shell or `kill`.

use std::fs;
use std::io::{self, Write};

use baton_contract::control::Request;
use baton_contract::duration::human;
use baton_contract::layout::{Layout, BEACON_FILE, CONTROL_FIFO, ENV_STEP, EXIT_FILE, STATE_FILE};
use baton_contract::message;
use baton_contract::state::{Phase, StepState};
use baton_contract::time::parse_millis;
use serde::Serialize;

use crate::cli::{KillArgs, ResumeArgs, StatusArgs, StepArgs};
use crate::folder::{Folder, ReadError};
use crate::liveness::{self, Liveness};
use crate::stepdir::{self, list_steps, RECORD_CAP, RECORD_MODE, STATE_CAP};
use crate::{clock, sys};

/// One step as `baton status` shows it.
#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct StepView {
    pub step: String,
    /// starting, waiting, running, paused, ended or lost.
    pub state: &'static str,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    pub waiting_for: Vec<String>,
    /// Awaited steps no baton has claimed yet.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_started: Vec<String>,
    pub pid: Option<u32>,
    pub child_pid: Option<u32>,
    /// When the current state began (living wrappers).
    pub since: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub duration_ms: Option<i64>,
    pub error: Option<String>,
    /// Ended steps: what the command cost (CPU, largest resident set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<baton_contract::record::Usage>,
}

impl StepView {
    fn new(step: &str, state: &'static str) -> StepView {
        StepView {
            step: step.to_string(),
            state,
            exit_code: None,
            reason: None,
            waiting_for: Vec::new(),
            not_started: Vec::new(),
            pid: None,
            child_pid: None,
            since: None,
            started_at: None,
            finished_at: None,
            duration_ms: None,
            error: None,
            usage: None,
        }
    }
}

/// Reads what step `name` is doing from its folder. None if there is no such step.
pub fn inspect(layout: &Layout, name: &str) -> Option<StepView> {
    let steps = Folder::open(&layout.steps()).ok()?;
    inspect_in(&steps, name)
}

/// [`inspect`] with `steps/` open. Nothing is followed, every read is capped and must come from
/// the step folder's owner: another UID cannot make a step look ended, running or huge.
fn inspect_in(steps: &Folder, name: &str) -> Option<StepView> {
    let folder = match steps.sub(name) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(e) => return Some(trouble(name, format!("its folder cannot be opened ({e})"))),
    };
    if let Some(ended) = ended(&folder, name) {
        return Some(ended);
    }
    match liveness::look(&folder, BEACON_FILE) {
        Ok(Liveness::Alive(_)) => {}
        Ok(Liveness::Absent) => return Some(StepView::new(name, "starting")),
        // Its beacon hung up: the wrapper is gone. A record it wrote just now still counts.
        Ok(Liveness::Gone) => {
            return Some(ended(&folder, name).unwrap_or_else(|| {
                let mut v = StepView::new(name, "lost");
                v.error = Some(crate::wait::LOST_WHY.to_string());
                v
            }))
        }
        Err(e) => return Some(trouble(name, format!("its beacon {} cannot be used ({e})", folder.join(BEACON_FILE).display()))),
    }
    let state = folder.read(STATE_FILE, STATE_CAP, true).ok().and_then(|b| serde_json::from_slice::<StepState>(&b).ok());
    let Some(state) = state else { return Some(StepView::new(name, "starting")) };
    let mut v = StepView::new(name, match state.state {
        Phase::Waiting => "waiting",
        Phase::Running => "running",
        Phase::Paused => "paused",
    });
    v.waiting_for = state.waiting_for;
    v.not_started = state.not_started;
    v.pid = Some(state.pid);
    v.child_pid = state.child_pid;
    v.exit_code = state.exit_code;
    v.since = Some(state.since);
    Some(v)
}

/// A step whose files cannot be trusted or read: shown, with the sentence, never guessed at.
fn trouble(name: &str, why: String) -> StepView {
    let mut v = StepView::new(name, "unknown");
    v.error = Some(why);
    v
}

fn ended(folder: &Folder, name: &str) -> Option<StepView> {
    let bytes = match folder.read(EXIT_FILE, RECORD_CAP, true) {
        Ok(b) => b,
        Err(ReadError::Missing) => return None,
        Err(e) => {
            let mut v = StepView::new(name, "ended");
            v.error = Some(format!("its record cannot be used: {e}"));
            return Some(v);
        }
    };
    let mut v = StepView::new(name, "ended");
    match std::str::from_utf8(&bytes).map_err(|e| e.to_string()).and_then(|t| message::decode(t).map_err(|e| e.to_string())) {
        Ok(r) => {
            v.exit_code = r.exit_code;
            v.reason = Some(r.reason.to_string());
            v.duration_ms = r
                .started_at
                .as_deref()
                .and_then(parse_millis)
                .zip(parse_millis(&r.finished_at))
                .map(|(s, f)| f - s);
            v.started_at = r.started_at;
            v.finished_at = Some(r.finished_at);
            v.error = r.error;
            v.usage = r.usage;
        }
        Err(e) => v.error = Some(format!("its record is unreadable: {e}")),
    }
    Some(v)
}

/// Every step with a folder in the shared directory, by name.
pub fn all_steps(layout: &Layout) -> io::Result<Vec<StepView>> {
    let steps = Folder::open(&layout.steps())?;
    let mut views: Vec<StepView> = list_steps(layout).iter().filter_map(|n| inspect_in(&steps, n)).collect();
    // A step still waiting for one that has started since it last wrote its state is not told twice.
    let known: Vec<String> = views.iter().map(|v| v.step.clone()).collect();
    for v in &mut views {
        v.not_started.retain(|n| !known.contains(n));
    }
    Ok(views)
}

pub fn status(args: StatusArgs) -> i32 {
    let layout = Layout::new(&args.dir.dir);
    let steps = match all_steps(&layout) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            eprintln!("baton: cannot read {}: {e}", layout.steps().display());
            return 1;
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&steps).expect("views serialize"));
        return 0;
    }
    if steps.is_empty() {
        println!("no steps in {}", layout.root().display());
        return 0;
    }
    let now = clock::now_ms();
    let width = steps.iter().map(|s| s.step.len()).max().unwrap_or(4).max(4);
    println!("{:width$}  {:8}  DETAIL", "STEP", "STATE");
    for s in &steps {
        println!("{:width$}  {:8}  {}", s.step, s.state, detail(s, now));
    }
    0
}

fn detail(s: &StepView, now: i64) -> String {
    let since = || {
        s.since.as_deref().and_then(parse_millis).map_or(String::new(), |t| {
            format!(" for {}", human(std::time::Duration::from_millis((now - t).max(0) as u64)))
        })
    };
    match s.state {
        "waiting" if s.not_started.is_empty() => format!("waiting for {}{}", s.waiting_for.join(", "), since()),
        "waiting" => format!(
            "waiting for {}{}; no baton has claimed {} yet (a typo in --after?)",
            s.waiting_for.join(", "),
            since(),
            s.not_started.iter().map(|n| format!("step {n}")).collect::<Vec<_>>().join(", ")
        ),
        "running" => format!("pid {}{}", s.child_pid.map_or("?".into(), |p| p.to_string()), since()),
        "paused" => format!(
            "at a breakpoint after exit code {}{}; baton resume [--fail] {}",
            s.exit_code.map_or("?".into(), |c| c.to_string()),
            since(),
            s.step
        ),
        "ended" => {
            let mut d = s.reason.clone().unwrap_or_default();
            if let Some(c) = s.exit_code {
                d += &format!(", exit code {c}");
            }
            if let Some(ms) = s.duration_ms {
                d += &format!(", ran {}", human(std::time::Duration::from_millis(ms.max(0) as u64)));
            }
            if let Some(u) = s.usage {
                let cpu = std::time::Duration::from_millis(u.user_cpu_ms + u.system_cpu_ms);
                d += &format!(", cpu {}, max rss {} KiB", human(cpu), u.max_rss_kib);
            }
            if let Some(e) = &s.error {
                d += &format!(": {e}");
            }
            d
        }
        "lost" | "unknown" => s.error.clone().unwrap_or_default(),
        _ => "its baton is starting".into(),
    }
}

pub fn kill(args: KillArgs) -> i32 {
    let Some(signal) = sys::parse_signal(&args.signal) else {
        eprintln!("baton: unknown signal {:?}: use a name like TERM or KILL, or a number 1-{}", args.signal, sys::max_signal());
        return 125;
    };
    let from_env = match std::env::var(ENV_STEP) {
        Ok(s) if s.is_empty() && args.step.is_none() => {
            eprintln!("baton: {}", crate::cli::EMPTY_STEP_ENV);
            return 125;
        }
        Ok(s) => Some(s),
        Err(_) => None,
    };
    let name = match args.step.or(from_env).or_else(pid1_step) {
        Some(n) => n,
        None => {
            eprintln!(
                "baton: cannot tell which step to signal: pass STEP, or set BATON_STEP (the baton that is PID 1 \
                 in this container runs no named step)"
            );
            return 125;
        }
    };
    let layout = Layout::new(&args.dir.dir);
    let view = match find(&layout, &name) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let sig = sys::signal_name(signal);
    if view.state != "running" {
        eprintln!("baton: {}: nothing was sent", not_running(&view));
        return 1;
    }
    match send(&layout, &name, Request::Kill(signal)) {
        Ok(()) => {
            let pid = view.child_pid.map_or(String::new(), |p| format!(" (pid {p} in its container)"));
            println!("sent {sig} to step {name}{pid}");
            0
        }
        Err(e) => {
            eprintln!("baton: cannot reach the baton of step {name} ({e}); it has probably just ended: nothing was sent");
            1
        }
    }
}

pub fn resume(args: ResumeArgs) -> i32 {
    let layout = Layout::new(&args.dir.dir);
    let view = match find(&layout, &args.step) {
        Ok(v) => v,
        Err(code) => return code,
    };
    if view.state != "paused" {
        eprintln!("baton: step {} is not paused at a breakpoint ({}): nothing was sent", args.step, view.state);
        return 1;
    }
    let request = if args.fail { Request::ResumeFail } else { Request::Resume };
    match send(&layout, &args.step, request) {
        Ok(()) => {
            println!("resumed step {}{}", args.step, if args.fail { "; it ends Failed" } else { "" });
            0
        }
        Err(e) => {
            eprintln!("baton: cannot reach the baton of step {} ({e}): nothing was sent", args.step);
            1
        }
    }
}

pub fn release(args: StepArgs) -> i32 {
    if let Err(e) = baton_contract::name::check_step(&args.step) {
        eprintln!("baton: {e}");
        return 125;
    }
    let layout = Layout::new(&args.dir.dir);
    let gates = match stepdir::gates(&layout) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("baton: cannot open the gate of step {}: {e:#}", args.step);
            return 1;
        }
    };
    // A new file, never through a link: whatever another UID put at that name is left alone.
    let created = gates.create(&args.step, RECORD_MODE).and_then(|mut f| f.write_all(clock::now_rfc3339().as_bytes()));
    match created {
        Ok(()) => {
            let later = if layout.step(&args.step).is_dir() { "" } else { " (it has not started yet; it will go on when it does)" };
            println!("opened the gate of step {}{later}", args.step);
            0
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            println!("the gate of step {} was already open", args.step);
            0
        }
        Err(e) => {
            eprintln!("baton: cannot open the gate of step {} at {}: {e}", args.step, gates.join(&args.step).display());
            1
        }
    }
}

fn find(layout: &Layout, name: &str) -> Result<StepView, i32> {
    if let Err(e) = baton_contract::name::check_step(name) {
        eprintln!("baton: {e}");
        return Err(125);
    }
    inspect(layout, name).ok_or_else(|| {
        let known = list_steps(layout);
        let known = if known.is_empty() { "none yet".to_string() } else { known.join(", ") };
        eprintln!(
            "baton: unknown step {name}: no step of that name has started in {} (known steps: {known}): nothing was sent",
            layout.root().display()
        );
        1
    })
}

fn not_running(v: &StepView) -> String {
    match v.state {
        "waiting" => format!("step {} has not started its command yet (waiting for {})", v.step, v.waiting_for.join(", ")),
        "starting" => format!("step {} has not started its command yet", v.step),
        "paused" => format!("step {} is paused at a breakpoint and its command has ended; use baton resume {}", v.step, v.step),
        "lost" => crate::wait::lost_sentence(&v.step),
        "unknown" => format!("step {}: {}", v.step, v.error.as_deref().unwrap_or("its files cannot be read")),
        _ => format!(
            "step {} has ended ({}{})",
            v.step,
            v.reason.as_deref().unwrap_or("?"),
            v.exit_code.map_or(String::new(), |c| format!(", exit code {c}"))
        ),
    }
}

/// Writes one request line into the step's control FIFO; fails with ENXIO if no wrapper reads it.
fn send(layout: &Layout, name: &str, request: Request) -> io::Result<()> {
    let mut fifo = Folder::open(&layout.steps())?.sub(name)?.open_fifo_writer(CONTROL_FIFO)?;
    fifo.write_all(request.to_line().as_bytes())
}

/// The step of the baton that is PID 1 in this container, from its command line.
fn pid1_step() -> Option<String> {
    let cmdline = fs::read("/proc/1/cmdline").ok()?;
    let args: Vec<String> = cmdline.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    let run_at = args.iter().position(|a| a == "run")?;
    let mut rest = args[run_at + 1..].iter().take_while(|a| *a != "--");
    while let Some(a) = rest.next() {
        if a == "--name" {
            return rest.next().cloned();
        }
        if let Some(n) = a.strip_prefix("--name=") {
            return Some(n.to_string());
        }
    }
    let environ = fs::read("/proc/1/environ").ok()?;
    environ
        .split(|b| *b == 0)
        .find_map(|kv| kv.strip_prefix(format!("{ENV_STEP}=").as_bytes()))
        .map(|v| String::from_utf8_lossy(v).into_owned())
}
