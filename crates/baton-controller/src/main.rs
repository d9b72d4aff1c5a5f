//! `batonctl`: reads baton's run status out of pods, puts baton into them, and plays them on podman.
//! Wiring only: the library does the work, and this file alone maps outcomes to exit codes (0 done,
//! 1 failed, 2 bad usage; `status --exit-status`: 0 succeeded, 1 failed, 2 still going, 3 unreadable
//! input; `play`: 0 succeeded, 1 failed, 3 not played).

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use baton_controller::status::{Phase, PodRunStatus};
use baton_controller::{play, table, watch};
use clap::{Parser, Subcommand, ValueEnum};
use k8s_openapi::api::core::v1::Pod;
use kube::config::{KubeConfigOptions, Kubeconfig};

mod cli_input;
mod inject_cli;
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
    /// Print the run status of a pod (or a list of pods) given as JSON or YAML:
    /// `kubectl get pod NAME -o json | batonctl status`.
    ///
    /// Exit status: 0 when the status was printed, 1 when the input cannot be read, 2 for a wrong
    /// command line. With --exit-status it says how the run went: 0 every pod succeeded, 1 a pod
    /// failed, 2 a pod is still pending or running, 3 the input cannot be read.
    Status {
        /// The file to read; `-` reads standard input.
        #[arg(short = 'f', long = "file", value_name = "FILE", default_value = "-")]
        file: String,
        /// `table` for people, `json` for machines (one JSON object a line, one line a pod).
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Table)]
        output: Output,
        /// Exit 0 if every pod's run succeeded, 1 if one failed, 2 if one is still going (3: the
        /// input cannot be read).
        #[arg(long)]
        exit_status: bool,
    },
    /// Watch pods and print one JSON line each time a pod's run status changes.
    Watch {
        /// The namespace to watch (default: the kubeconfig's namespace).
        #[arg(short = 'n', long = "namespace", value_name = "NAMESPACE")]
        namespace: Option<String>,
        /// Watch pods in every namespace.
        #[arg(short = 'A', long = "all-namespaces", conflicts_with = "namespace")]
        all_namespaces: bool,
        /// Only pods with these labels, as `kubectl -l` takes them (`app=build,tier!=test`), selected
        /// by the API server. The default is the label `batonctl inject` and the webhook put on the
        /// pods they inject; `-l ''` watches every pod.
        #[arg(short = 'l', long = "selector", value_name = "SELECTOR", default_value = watch::DEFAULT_SELECTOR)]
        selector: String,
        /// The kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or the in-cluster service account).
        #[arg(long, value_name = "PATH")]
        kubeconfig: Option<PathBuf>,
        /// The kubeconfig context to use (default: its current context).
        #[arg(long, value_name = "NAME")]
        context: Option<String>,
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
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Output {
    Table,
    Json,
}

fn duration(text: &str) -> Result<Duration, String> {
    baton_contract::duration::parse(text)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Inject(args) => inject_cli::manifests(&args.file, |f| read_input(f, "batonctl inject -f job.yaml"))
            .and_then(|manifests| inject_cli::run(args, &manifests)),
        Command::Webhook(args) => webhook_cli::run(args),
        Command::Status { file, output, exit_status } => match status(&file, output) {
            Ok(phase) if exit_status => return run_exit(phase),
            Ok(_) => Ok(()),
            Err(e) if exit_status => {
                eprintln!("batonctl: {e:#}");
                return ExitCode::from(EXIT_UNREADABLE);
            }
            Err(e) => Err(e),
        },
        Command::Play { file, keep, name, work_dir, containers_conf, output } => {
            let options = PlayOptions { file, keep, name, work_dir, containers_conf, output };
            return play_pod(options);
        }
        Command::Watch { namespace, all_namespaces, selector, kubeconfig, context, annotate, batch, events } => {
            let target = Target { namespace, all_namespaces, kubeconfig, context };
            let selector = Some(selector).filter(|s| !s.is_empty());
            let options = watch::Options { namespace: None, selector, annotate, batch, events };
            watch_pods(target, options)
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("batonctl: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `--exit-status` when the input cannot be read.
const EXIT_UNREADABLE: u8 = 3;

/// `--exit-status`: 0 succeeded, 1 failed, 2 still going.
fn run_exit(phase: Phase) -> ExitCode {
    match phase {
        Phase::Succeeded => ExitCode::SUCCESS,
        Phase::Failed => ExitCode::from(1),
        Phase::Pending | Phase::Running => ExitCode::from(2),
    }
}

/// Prints the status of every pod; returns the worst phase among them (Failed, then still going).
fn status(file: &str, output: Output) -> Result<Phase> {
    let text = read_input(file, "kubectl get pod NAME -o json | batonctl status")?;
    let pods = parse_pods(&text).with_context(|| format!("{} holds no pod", describe(file)))?;
    let mut out = std::io::stdout().lock();
    let mut worst = Phase::Succeeded;
    for (i, pod) in pods.iter().enumerate() {
        let run = PodRunStatus::of(pod);
        worst = match (worst, run.status.phase) {
            (Phase::Failed, _) | (_, Phase::Failed) => Phase::Failed,
            (Phase::Succeeded, p) => p,
            (w, _) => w,
        };
        match output {
            Output::Json => writeln!(out, "{}", serde_json::to_string(&run)?)?,
            Output::Table => {
                if i > 0 {
                    writeln!(out)?;
                }
                write!(out, "{}", table::render(&run))?;
            }
        }
    }
    Ok(worst)
}

fn describe(file: &str) -> String {
    if file == "-" {
        "standard input".to_string()
    } else {
        file.to_string()
    }
}

/// The text of `file` (`-`: standard input, which must not be a terminal; `example` says how to use it).
fn read_input(file: &str, example: &str) -> Result<String> {
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
fn parse_pods(text: &str) -> Result<Vec<Pod>> {
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

/// Where to watch: resolved against the kubeconfig, which needs the runtime.
struct Target {
    namespace: Option<String>,
    all_namespaces: bool,
    kubeconfig: Option<PathBuf>,
    context: Option<String>,
}

fn watch_pods(target: Target, mut options: watch::Options) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let client = client(&target).await?;
        options.namespace = match (target.all_namespaces, target.namespace) {
            (true, _) => None,
            (false, Some(ns)) => Some(ns),
            (false, None) => Some(client.default_namespace().to_string()),
        };
        let mut out = std::io::stdout();
        tokio::select! {
            done = watch::run(client, &options, &mut out) => done.map_err(anyhow::Error::from),
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    })
}

async fn client(target: &Target) -> Result<kube::Client> {
    let options = KubeConfigOptions { context: target.context.clone(), ..KubeConfigOptions::default() };
    let config = match &target.kubeconfig {
        Some(path) => {
            let file = Kubeconfig::read_from(path)
                .with_context(|| format!("cannot read kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &options)
                .await
                .with_context(|| format!("kubeconfig {} is not usable", path.display()))?
        }
        None if target.context.is_some() => {
            kube::Config::from_kubeconfig(&options).await.context("cannot load the kubeconfig context")?
        }
        None => {
            kube::Config::infer().await.context("cannot find a cluster: no kubeconfig and not in a pod")?
        }
    };
    kube::Client::try_from(config).context("cannot build a Kubernetes client")
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
