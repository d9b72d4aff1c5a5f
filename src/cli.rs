//! Command-line arguments: what was asked, before anything is checked against the system.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use baton_contract::layout::{DEFAULT_DIR, ENV_DIR, ENV_STEP};
use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "baton",
    version,
    about = "In-pod entrypoint for workflow steps: wait for the start condition, run the command, \
             forward signals, reap zombies, report the end.",
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once; the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Copy this binary to DIR/bin/baton (run it in an init container).
    Init(InitArgs),
    /// Wait for the start condition, run COMMAND as a child, report how it ended.
    Run(RunArgs),
    /// Wait like `run` does, without running anything (for shell scripts).
    Wait(WaitArgs),
    /// Show every step of the shared directory and what it is doing.
    Status(StatusArgs),
    /// Send a signal to a step's command (default: this container's step).
    Kill(KillArgs),
    /// Open a step's gate (see `run --gate`); remembered if the step has not started yet.
    Release(StepArgs),
    /// End a step's breakpoint (see `run --breakpoint-on-failure`).
    Resume(ResumeArgs),
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub dir: DirArg,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct KillArgs {
    #[command(flatten)]
    pub dir: DirArg,
    /// The signal: a name (TERM, SIGTERM) or a number.
    #[arg(short = 's', long = "signal", default_value = "TERM", value_name = "SIGNAL")]
    pub signal: String,
    /// The step [default: BATON_STEP, or the step whose baton is PID 1 in this container].
    #[arg(value_name = "STEP")]
    pub step: Option<String>,
}

#[derive(Args, Debug)]
pub struct StepArgs {
    #[command(flatten)]
    pub dir: DirArg,
    #[arg(value_name = "STEP")]
    pub step: String,
}

#[derive(Args, Debug)]
pub struct ResumeArgs {
    #[command(flatten)]
    pub dir: DirArg,
    /// End the step Failed instead of with its command's own record.
    #[arg(long)]
    pub fail: bool,
    #[arg(value_name = "STEP")]
    pub step: String,
}

#[derive(Args, Debug, Clone)]
pub struct DirArg {
    /// The shared directory (an emptyDir mounted in every container).
    #[arg(long, env = ENV_DIR, default_value = DEFAULT_DIR, value_name = "DIR")]
    pub dir: PathBuf,
}

#[derive(Args, Debug)]
pub struct InitArgs {
    #[command(flatten)]
    pub dir: DirArg,
    /// DIR/bin is a volume of its own that every step mounts read-only (what `batonctl inject`
    /// makes): accept it as the kubelet made it, even when another UID owns it.
    #[arg(long)]
    pub bin_volume: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnError {
    /// A failed command fails the step.
    Stop,
    /// A failed command still lets the step (and its successors) succeed; the real code is recorded.
    Continue,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// This step's name; unnamed steps run but publish nothing.
    #[arg(long, env = ENV_STEP, value_name = "NAME")]
    pub name: Option<String>,

    #[command(flatten)]
    pub dir: DirArg,

    /// Wait until STEP has ended; plain STEP must have succeeded, STEP:done accepts any end.
    /// Repeatable: all of them.
    #[arg(long, value_name = "STEP[:done]")]
    pub after: Vec<String>,

    /// Wait until PATH exists (repeatable).
    #[arg(long, value_name = "PATH")]
    pub wait_file: Vec<PathBuf>,

    /// Wait until PATH exists and is not empty (repeatable).
    #[arg(long, value_name = "PATH")]
    pub wait_nonempty: Vec<PathBuf>,

    /// Give up waiting after DUR: exit 125, reason WaitTimedOut.
    #[arg(long, value_name = "DUR", value_parser = duration)]
    pub wait_timeout: Option<Duration>,

    /// Stop the command after DUR: SIGTERM to its process group, SIGKILL after --grace; exit 124.
    #[arg(long, value_name = "DUR", value_parser = duration)]
    pub timeout: Option<Duration>,

    /// Time between SIGTERM and SIGKILL when baton stops the command.
    #[arg(long, value_name = "DUR", value_parser = duration, default_value = "10s")]
    pub grace: Duration,

    /// After the command exits, every regular file in DIR is a result (name = file name).
    #[arg(long, value_name = "DIR")]
    pub results: Option<PathBuf>,

    /// Where the exit record goes (the container's terminationMessagePath)
    /// [default: /dev/termination-log, written only if it exists]
    #[arg(long, value_name = "PATH")]
    pub termination_path: Option<PathBuf>,

    /// The most bytes the exit record may take: 4096, or 12288 / (containers in the pod) if smaller.
    #[arg(long, value_name = "BYTES", default_value_t = 4096)]
    pub message_limit: usize,

    /// What a failed command means for the step.
    #[arg(long, value_enum, value_name = "stop|continue", default_value_t = OnError::Stop)]
    pub on_error: OnError,

    /// Also append the command's standard output to FILE.
    #[arg(long, value_name = "FILE")]
    pub stdout: Option<PathBuf>,

    /// Also append the command's standard error to FILE.
    #[arg(long, value_name = "FILE")]
    pub stderr: Option<PathBuf>,

    /// Also wait until the step's gate is opened with `baton release NAME`.
    #[arg(long)]
    pub gate: bool,

    /// When the command fails, keep the container alive (paused) until `baton resume NAME`.
    #[arg(long)]
    pub breakpoint_on_failure: bool,

    /// Sidecar mode: once every STEP listed has ended, stop the command (SIGTERM, SIGKILL after
    /// --grace) and end with exit 0, reason Stopped. Repeatable.
    #[arg(long, value_name = "STEP")]
    pub until: Vec<String>,

    /// Ordered shutdown: hold a SIGTERM back until every STEP listed has ended, then forward it.
    /// Repeatable.
    #[arg(long, value_name = "STEP")]
    pub stop_after: Vec<String>,

    /// How long a SIGTERM is held back by --stop-after at most; the default fits the pod's default
    /// 30 s grace period (raise both together).
    #[arg(long, value_name = "DUR", value_parser = duration, default_value = "25s")]
    pub stop_timeout: Duration,

    /// When the command exits, leave what remains of its process group running (by default it gets
    /// SIGTERM, then SIGKILL after --grace, before the step ends).
    #[arg(long)]
    pub keep_group: bool,

    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

pub const DEFAULT_TERMINATION_PATH: &str = "/dev/termination-log";

/// `BATON_STEP=` (set, empty) is a mistake for every command, never "unset".
pub const EMPTY_STEP_ENV: &str =
    "BATON_STEP is set but empty: set it to the step's name, or remove it from the container's environment";

/// The one sentence that refuses a `baton run` command line clap could not parse, and whether it
/// says all there is: a command without `--` in front of it, or none. Otherwise clap's own message
/// (a suggestion, the usage) is worth showing before it.
pub fn run_refusal(e: &clap::Error) -> (String, bool) {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let offending = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => s.clone(),
        Some(ContextValue::Strings(v)) => v.join(" "),
        _ => String::new(),
    };
    let rendered = e.render().to_string();
    let first = rendered.lines().next().unwrap_or("invalid command line").trim_start_matches("error: ");
    match e.kind() {
        ErrorKind::UnknownArgument if !offending.starts_with('-') => (
            format!(
                "{first}; put -- before the command: baton run [OPTIONS] -- {offending} …; everything after -- is the command"
            ),
            true,
        ),
        // clap's first line ends in a colon and lists <COMMAND>... on the next: say it in words.
        ErrorKind::MissingRequiredArgument if offending.contains("COMMAND") => (
            "no command was given: put it after --, as in baton run [OPTIONS] -- COMMAND [ARGS…]".to_string(),
            true,
        ),
        _ => (format!("{first}; see baton run --help"), false),
    }
}

#[derive(Args, Debug)]
pub struct WaitArgs {
    #[command(flatten)]
    pub dir: DirArg,

    /// Give up after DUR: exit 125.
    #[arg(long, value_name = "DUR", value_parser = duration)]
    pub timeout: Option<Duration>,

    /// STEP, STEP:done, file:PATH or nonempty:PATH; all must hold.
    #[arg(required = true, value_name = "SPEC")]
    pub specs: Vec<String>,
}

fn duration(text: &str) -> Result<Duration, String> {
    baton_contract::duration::parse(text)
}
