//! `batonctl`: reads baton's run status out of pods, puts baton into them, and plays them on podman.
//! Wiring only: the library does the work, and this file alone maps outcomes to exit codes (0 done,
//! 1 failed, 2 bad usage; `status --exit-status`: 0 succeeded, 1 failed, 2 still going, 3 unreadable
//! input; `play`: 0 succeeded, 1 failed, 3 not played).

use std::io::{IsTerminal, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use baton_controller::status::{Phase, PodRunStatus};
use baton_controller::{metrics, play, table, watch};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use cluster_args::ClusterArgs;
use k8s_openapi::api::core::v1::Pod;

mod cli_input;
mod cluster_args;
mod inject_cli;
mod status_cli;
mod webhook_cli;

/// The static (musl) batonctl would otherwise use musl's allocator, which hands memory back to the
/// kernel at every turn: under the webhook's load, a third of the time went to mmap, munmap and
/// page faults (measured with perf; docs/webhook.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The most `status` reads: far beyond any pod list, small enough that a wrong file fails fast.
const MAX_INPUT: u64 = 256 << 20;

#[derive(Parser, Debug)]
#[command(
    name = "batonctl",
    version,
    about = "Puts baton into pods, and reads their steps' results and run status back out.",
    max_term_width = 100
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Put baton into every Pod, Job and CronJob of a manifest (YAML or JSON) and print it:
    /// `batonctl inject -f job.yaml | kubectl apply -f -`.
    Inject(inject_cli::InjectArgs),
    /// Serve a mutating admission webhook (HTTPS) that injects baton into every Pod created with the
    /// annotation baton.dev/inject: "true"; `batonctl webhook certs` makes its certificates.
    Webhook(webhook_cli::WebhookArgs),
    /// Print the run status of pods read from the cluster (`batonctl status job/NAME`, `-l SELECTOR`)
    /// or given as JSON or YAML (`kubectl get pod NAME -o json | batonctl status`); `-w` keeps it live.
    ///
    /// Exit status: 0 when the status was printed, 1 when the input or the cluster cannot be read, 2
    /// for a wrong command line. With --exit-status (and always with -w) it says how the run went: 0
    /// every pod succeeded (a Job: its newest pod), 1 a pod failed, 2 a pod is still pending or
    /// running, 3 the input or the cluster cannot be read.
    Status(status_cli::StatusArgs),
    /// Watch pods and print one JSON line each time a pod's run status changes.
    Watch {
        #[command(flatten)]
        cluster: ClusterArgs,
        /// Only pods with these labels, as `kubectl -l` takes them (`app=build,tier!=test`), selected
        /// by the API server. The default is the label `batonctl inject` and the webhook put on the
        /// pods they inject; `-l ''` watches every pod.
        #[arg(short = 'l', long = "selector", value_name = "SELECTOR", default_value = watch::DEFAULT_SELECTOR)]
        selector: String,
        /// Also write the run status of each pod to its `baton.dev/run-status` annotation (server-side
        /// apply, field manager `batonctl`), only when it changed.
        #[arg(long)]
        annotate: bool,
        /// Batch window for annotation writes (`2s`, `500ms`): the first change opens it and the status
        /// at its end is written. A final phase is written at once.
        #[arg(long, value_name = "DUR", value_parser = duration, default_value = "0s", requires = "annotate")]
        batch: Duration,
        /// Record one Kubernetes Event on the pod for each step that fails, is skipped or loses a
        /// predecessor (reason: the step's; message: its sentence), once (needs `create` and `patch` on
        /// events.k8s.io events).
        #[arg(long)]
        events: bool,
        /// Serve Prometheus metrics (plain HTTP, GET /metrics) on this address, e.g. `[::]:9090`.
        #[arg(long, value_name = "ADDR")]
        metrics_listen: Option<SocketAddr>,
    },
    /// Run a pod that uses baton (a Pod, or the pod template of a Job or CronJob; YAML or JSON) in real
    /// containers on podman, as a cluster would, and print its run status:
    /// `batonctl inject -f job.yaml | batonctl play -f -`.
    ///
    /// The kubelet's part is played here: a termination-message file per container, fresh emptyDirs,
    /// the Pod JSON in the kubelet's shape (docs/play.md). One line per change while it runs (stderr),
    /// the run status at the end (stdout). Ctrl-C stops the pod as a deletion would.
    ///
    /// Exit status: 0 the run succeeded, 1 it failed, 3 the pod could not be played (a sentence says
    /// why), 2 a wrong command line.
    Play {
        /// The manifest; `-` reads standard input.
        #[arg(short = 'f', long = "file", value_name = "FILE", default_value = "-")]
        file: String,
        /// Keep the pod, its volumes and the work folder for a post-mortem (`podman logs POD-CONTAINER`).
        #[arg(long)]
        keep: bool,
        /// Play the pod under this name (default: the Pod's name, or the Job's or CronJob's).
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// The work folder: the Pod JSON (pod.json), podman's output, the termination-message files
        /// (default: a new folder in $TMPDIR).
        #[arg(long, value_name = "DIR")]
        work_dir: Option<PathBuf>,
        /// podman's settings file, passed as CONTAINERS_CONF (default: $CONTAINERS_CONF when set, else
        /// e2e/containers.conf of the baton checkout batonctl was built in, else podman's own).
        #[arg(long, value_name = "FILE")]
        containers_conf: Option<PathBuf>,
        /// The run status at the end: `table` for people, `json` for machines.
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Print a completion script for bash, zsh or fish: `source <(batonctl completions bash)`.
    Completions {
        #[arg(value_enum)]
        shell: Shell,
    },
}

/// The shells `completions` writes for.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Table,
    Json,
}

fn duration(text: &str) -> Result<Duration, String> {
    baton_contract::duration::parse(text)
}

fn main() -> ExitCode {
    let cli = Cli::from_arg_matches(&command().get_matches()).unwrap_or_else(|e| e.exit());
    let outcome = match cli.command {
        Command::Inject(args) => {
            inject_cli::manifests(&args.file, |f| read_input(f, "batonctl inject -f job.yaml"))
                .and_then(|manifests| inject_cli::run(args, &manifests))
        }
        Command::Webhook(args) => webhook_cli::run(args),
        Command::Status(args) => return status_cli::run(args),
        Command::Play { file, keep, name, work_dir, containers_conf, output } => {
            let options = PlayOptions { file, keep, name, work_dir, containers_conf, output };
            return play_pod(options);
        }
        Command::Watch { cluster, selector, annotate, batch, events, metrics_listen } => {
            let selector = Some(selector).filter(|s| !s.is_empty());
            let options =
                watch::Options { namespace: None, selector, annotate, batch, events, ..Default::default() };
            watch_pods(cluster, options, metrics_listen)
        }
        Command::Completions { shell } => completions(shell),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("batonctl: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The command line, named as it was called: kubectl runs its plugin `kubectl-baton` for `kubectl
/// baton …`, and then the help and errors say `kubectl baton`.
fn command() -> clap::Command {
    let argv0 = std::env::args_os().next().map(PathBuf::from);
    let called = argv0.as_deref().and_then(|p| p.file_name()).and_then(|n| n.to_str()).unwrap_or("batonctl");
    Cli::command().bin_name(bin_name(called))
}

/// `kubectl-baton` → `kubectl baton` (kubectl's plugin naming); anything else is `batonctl`.
fn bin_name(called: &str) -> &'static str {
    if called == "kubectl-baton" {
        "kubectl baton"
    } else {
        "batonctl"
    }
}

fn completions(shell: Shell) -> Result<()> {
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "batonctl", &mut out);
    std::io::stdout().lock().write_all(&out).context("cannot write the completion script")
}

pub fn describe(file: &str) -> String {
    if file == "-" {
        "standard input".to_string()
    } else {
        file.to_string()
    }
}

/// The text of `file` (`-`: standard input, which must not be a terminal; `example` says how to use it).
pub fn read_input(file: &str, example: &str) -> Result<String> {
    let mut bytes = Vec::new();
    if file == "-" {
        let stdin = std::io::stdin();
        if stdin.is_terminal() {
            bail!("nothing on standard input: pipe a manifest in, or pass -f FILE ({example})");
        }
        stdin.lock().take(MAX_INPUT).read_to_end(&mut bytes).context("cannot read standard input")?;
    } else {
        let f = std::fs::File::open(file).with_context(|| format!("cannot open {file}"))?;
        f.take(MAX_INPUT).read_to_end(&mut bytes).with_context(|| format!("cannot read {file}"))?;
    }
    String::from_utf8(bytes).with_context(|| format!("{} is not UTF-8 text", describe(file)))
}

/// A Pod, or a List / PodList of pods (what `kubectl get pods -o json` prints), as JSON or YAML.
pub fn parse_pods(text: &str) -> Result<Vec<Pod>> {
    let value: serde_json::Value = if text.trim_start().starts_with('{') {
        serde_json::from_str(text).context("the JSON is not valid")?
    } else {
        serde_saphyr::from_str(text).map_err(|e| anyhow::anyhow!("the YAML is not valid: {e}"))?
    };
    let kind = value.get("kind").and_then(serde_json::Value::as_str).unwrap_or("");
    let items = match kind {
        "List" | "PodList" => match value.get("items") {
            Some(serde_json::Value::Array(items)) => items.clone(),
            _ => bail!("the {kind} has no items array"),
        },
        "Pod" => vec![value],
        "" => bail!("the object has no kind; expected a Pod or a List of pods"),
        other => bail!("the object is a {other}; expected a Pod or a List of pods"),
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| serde_json::from_value(item).with_context(|| format!("item {i} is not a valid Pod")))
        .collect()
}

/// `play` when the pod could not be played.
const EXIT_NOT_PLAYED: u8 = 3;

struct PlayOptions {
    file: String,
    keep: bool,
    name: Option<String>,
    work_dir: Option<PathBuf>,
    containers_conf: Option<PathBuf>,
    output: Output,
}

/// `play`: 0 succeeded, 1 failed, 3 not played.
fn play_pod(o: PlayOptions) -> ExitCode {
    let played = (|| -> Result<(PodRunStatus, play::Played)> {
        if o.file == "-" && std::io::stdin().is_terminal() {
            bail!("no manifest on standard input: pipe one in (batonctl inject -f job.yaml | batonctl play) or pass -f FILE");
        }
        if let Some(conf) = o.containers_conf.as_ref().filter(|c| !c.is_file()) {
            bail!("--containers-conf {}: no such file; give podman's settings file (e2e/containers.conf in baton's repository)", conf.display());
        }
        let text = read_input(&o.file, "batonctl inject -f job.yaml | batonctl play -f -")?;
        let exe = std::env::current_exe().ok().and_then(|e| e.canonicalize().ok());
        let env_set = std::env::var_os("CONTAINERS_CONF").is_some_and(|v| !v.is_empty());
        let podman = play::podman::Podman {
            containers_conf: play::containers_conf(o.containers_conf.clone(), env_set, exe.as_deref()),
        };
        let options =
            play::Options { name: o.name.clone(), keep: o.keep, work_dir: o.work_dir.clone(), podman };
        let played = play::play(&text, &describe(&o.file), &options, &mut std::io::stderr())?;
        let pod: Pod =
            serde_json::from_value(played.pod.clone()).context("the Pod JSON written is not a Pod")?;
        Ok((PodRunStatus::of(&pod), played))
    })();
    // The status first; the pod and its volumes go when `played` is dropped, at the end.
    let (run, _played) = match played {
        Ok(run) => run,
        Err(e) => {
            eprintln!("batonctl: {e:#}");
            return ExitCode::from(EXIT_NOT_PLAYED);
        }
    };
    let mut out = std::io::stdout().lock();
    let printed = match o.output {
        Output::Json => writeln!(out, "{}", serde_json::to_string(&run).unwrap_or_default()),
        Output::Table => write!(out, "{}", table::render(&run)),
    };
    if let Err(e) = printed.and_then(|()| out.flush()) {
        eprintln!("batonctl: cannot write the run status: {e}");
    }
    match run.status.phase {
        Phase::Succeeded => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}

fn watch_pods(
    cluster: ClusterArgs,
    mut options: watch::Options,
    metrics_listen: Option<SocketAddr>,
) -> Result<()> {
    cluster_args::runtime()?.block_on(async move {
        if let Some(address) = metrics_listen {
            let mut registry = prometheus_client::registry::Registry::default();
            options.metrics = metrics::WatchMetrics::new(&mut registry);
            metrics::start(address, registry, "batonctl watch").await.map_err(anyhow::Error::msg)?;
        }
        let client = cluster.client().await?;
        options.namespace = cluster.namespace(&client);
        let mut out = std::io::stdout();
        tokio::select! {
            done = watch::run(client, &options, &mut out) => done.map_err(anyhow::Error::from),
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_pod_a_list_and_yaml() {
        let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"},"spec":{"containers":[{"name":"c"}]}}"#;
        assert_eq!(parse_pods(pod).unwrap().len(), 1);
        let list = format!(r#"{{"apiVersion":"v1","kind":"List","items":[{pod},{pod}]}}"#);
        assert_eq!(parse_pods(&list).unwrap().len(), 2);
        let yaml = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\nspec:\n  containers:\n  - name: c\n";
        assert_eq!(parse_pods(yaml).unwrap()[0].metadata.name.as_deref(), Some("a"));
    }

    #[test]
    fn refuses_what_is_not_a_pod_with_a_sentence() {
        let err = parse_pods(r#"{"kind":"Service"}"#).unwrap_err().to_string();
        assert!(err.contains("is a Service"), "{err}");
        assert!(parse_pods("{").unwrap_err().to_string().contains("JSON is not valid"));
        assert!(parse_pods("- [").is_err());
        assert!(parse_pods("{}").unwrap_err().to_string().contains("no kind"));
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
