//! `batonctl status`: the run status of pods read from a file or standard input (`kubectl get pod -o
//! json | batonctl status`), or from the cluster (`batonctl status job/NAME`, `-l SELECTOR`), once or
//! live with `-w` until the run ends.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use baton_controller::cluster::{self, Pods, Selection};
use baton_controller::status::{Phase, PodRunStatus};
use baton_controller::{live, table, watch};
use clap::Args;
use k8s_openapi::api::core::v1::Pod;

use crate::cluster_args::{self, ClusterArgs};
use crate::{describe, parse_pods, read_input, Output};

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Read from the cluster: pod/NAME, job/NAME (its pods) or cronjob/NAME (its latest Job's pods).
    #[arg(value_name = "KIND/NAME", conflicts_with_all = ["file", "selector"])]
    target: Option<String>,
    /// The file to read; `-` reads standard input (the default, unless the cluster is asked).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<String>,
    /// Read the pods with these labels from the cluster, as `kubectl -l` takes them. Without KIND/NAME
    /// the cluster is asked for the pods `batonctl inject` and the webhook labelled
    /// (baton.dev/injected=true); `-l ''` reads every pod.
    #[arg(short = 'l', long = "selector", value_name = "SELECTOR", conflicts_with = "file")]
    selector: Option<String>,
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Keep the table live, one redraw per change, until the run ends; the exit status then says how
    /// it went, as with --exit-status.
    #[arg(short = 'w', long = "watch", conflicts_with = "file")]
    watch: bool,
    /// `table` for people, `json` for machines (one JSON object a line, one line a pod).
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Table)]
    output: Output,
    /// Exit 0 if every pod's run succeeded (a Job's: its newest pod's), 1 if one failed, 2 if one is
    /// still going (3: the input cannot be read).
    #[arg(long)]
    exit_status: bool,
}

/// `--exit-status` when the input cannot be read.
const EXIT_UNREADABLE: u8 = 3;

pub fn run(args: StatusArgs) -> ExitCode {
    let says_phase = args.exit_status || args.watch;
    let outcome = if args.target.is_some() || args.selector.is_some() || args.watch || args.cluster.given() {
        from_cluster(&args)
    } else {
        from_file(args.file.as_deref().unwrap_or("-"), args.output)
    };
    match outcome {
        Ok(phase) if says_phase => phase_exit(phase),
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("batonctl: {e:#}");
            ExitCode::from(if says_phase { EXIT_UNREADABLE } else { 1 })
        }
    }
}

/// `--exit-status`: 0 succeeded, 1 failed, 2 still going.
fn phase_exit(phase: Phase) -> ExitCode {
    match phase {
        Phase::Succeeded => ExitCode::SUCCESS,
        Phase::Failed => ExitCode::from(1),
        Phase::Pending | Phase::Running => ExitCode::from(2),
    }
}

/// Prints the status of every pod of the file; returns the runs' phase taken together.
fn from_file(file: &str, output: Output) -> Result<Phase> {
    let text = read_input(file, "kubectl get pod NAME -o json | batonctl status")?;
    let pods = parse_pods(&text).with_context(|| format!("{} holds no pod", describe(file)))?;
    print(&pods, output)?;
    Ok(Phase::worst(pods.iter().map(|p| PodRunStatus::of(p).status.phase)))
}

fn print(pods: &[Pod], output: Output) -> Result<()> {
    let mut out = std::io::stdout().lock();
    for (i, pod) in pods.iter().enumerate() {
        let run = PodRunStatus::of(pod);
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
    Ok(())
}

/// What the command line selects: KIND/NAME, else the label selector (baton's label by default).
fn selection(args: &StatusArgs) -> Result<Selection> {
    if let Some(file) = &args.file {
        bail!("-f {file} reads pods from a file, while KIND/NAME, -l, -w, -n, -A, --kubeconfig and --context read them from the cluster: give one or the other");
    }
    let Some(target) = &args.target else {
        let labels = args.selector.clone().unwrap_or_else(|| watch::DEFAULT_SELECTOR.to_string());
        return Ok(Selection::Labels(Some(labels).filter(|l| !l.is_empty())));
    };
    let selection = Selection::parse(target).map_err(anyhow::Error::msg)?;
    if args.cluster.all_namespaces {
        bail!("{target} names one object, which lives in one namespace: give it with -n NAMESPACE instead of -A");
    }
    Ok(selection)
}

fn from_cluster(args: &StatusArgs) -> Result<Phase> {
    let selection = selection(args)?;
    cluster_args::runtime()?.block_on(async {
        let client = args.cluster.client().await?;
        let namespace = args.cluster.namespace(&client);
        let pods = cluster::resolve(&client, namespace.as_deref(), &selection).await?;
        if !args.watch {
            let shown = cluster::list(&client, &pods).await?;
            if shown.is_empty() {
                eprintln!("batonctl: {}", pods.none_found());
            }
            print(&shown, args.output)?;
            return Ok(cluster::run_phase(&pods, &shown));
        }
        let terminal = std::io::stdout().is_terminal();
        let screen = std::cell::RefCell::new(Screen::new(args.output, terminal, pods.clone()));
        let ended = tokio::select! {
            phase = cluster::watch(&client, &pods, |shown| screen.borrow_mut().show(shown)) => Some(phase),
            _ = tokio::signal::ctrl_c() => None,
        };
        match ended {
            Some(phase) => Ok(phase?),
            None => Ok(screen.borrow().phase),
        }
    })
}

/// `-w`'s output: a redraw of the frame per change (the screen cleared first on a terminal, a plain
/// reprint otherwise), or with `-o json` one line per pod whose status changed.
struct Screen {
    output: Output,
    terminal: bool,
    /// The selection, for the run's phase.
    pods: Pods,
    last_frame: String,
    last_json: BTreeMap<(Option<String>, String), String>,
    /// The run's phase at the last change: what Ctrl-C exits with.
    phase: Phase,
}

impl Screen {
    fn new(output: Output, terminal: bool, pods: Pods) -> Self {
        Screen {
            output,
            terminal,
            pods,
            last_frame: String::new(),
            last_json: BTreeMap::new(),
            phase: Phase::Pending,
        }
    }

    fn show(&mut self, pods: &[Pod]) {
        let text = self.update(pods);
        if text.is_empty() {
            return;
        }
        let mut out = std::io::stdout().lock();
        if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            eprintln!("batonctl: cannot write to standard output: {e}");
        }
    }

    /// What to write for the pods as they are now: nothing when nothing shown changed.
    fn update(&mut self, pods: &[Pod]) -> String {
        self.phase = cluster::run_phase(&self.pods, pods);
        let runs: Vec<PodRunStatus> = pods.iter().map(PodRunStatus::of).collect();
        match self.output {
            Output::Json => {
                let mut text = String::new();
                for run in &runs {
                    let line = serde_json::to_string(run).unwrap_or_default();
                    let key = (run.namespace.clone(), run.pod.clone());
                    if self.last_json.get(&key) != Some(&line) {
                        text.push_str(&line);
                        text.push('\n');
                        self.last_json.insert(key, line);
                    }
                }
                text
            }
            Output::Table => {
                let frame = if runs.is_empty() {
                    format!("{}\n", self.pods.none_found())
                } else {
                    live::frame(&runs)
                };
                if frame == self.last_frame {
                    return String::new();
                }
                let text = if self.terminal {
                    format!("\x1b[H\x1b[2J{frame}")
                } else if self.last_frame.is_empty() {
                    frame.clone()
                } else {
                    format!("\n{frame}")
                };
                self.last_frame = frame;
                text
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(fixture: &str) -> Pod {
        let path = format!("{}/tests/fixtures/{fixture}.json", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn job_pods() -> Pods {
        Pods {
            namespace: Some("ci".into()),
            labels: Some("batch.kubernetes.io/job-name=build".into()),
            fields: None,
            job: Some("build".into()),
            what: "job ci/build".into(),
        }
    }

    #[test]
    fn one_redraw_per_change_and_none_for_an_unchanged_status() {
        let mut screen = Screen::new(Output::Table, false, job_pods());
        assert_eq!(screen.update(&[]), "job ci/build has no pods yet\n");
        let running = pod("running");
        let first = screen.update(std::slice::from_ref(&running));
        assert!(first.starts_with("\npod ci/demo-running: Running\n"), "{first}");
        // The same status again (a label or condition changed): nothing is drawn.
        assert_eq!(screen.update(std::slice::from_ref(&running)), "");
        assert_eq!(screen.phase, Phase::Running);
        let second = screen.update(&[running, pod("succeeded")]);
        assert!(second.contains("pod ci/demo-succeeded: Succeeded"), "{second}");
        // A Job's run is its newest pod's.
        assert_eq!(screen.phase, Phase::Succeeded);
    }

    #[test]
    fn a_terminal_is_cleared_before_each_frame_and_json_says_only_what_changed() {
        let mut screen = Screen::new(Output::Table, true, job_pods());
        assert!(screen.update(&[pod("running")]).starts_with("\x1b[H\x1b[2Jpod ci/demo-running: Running\n"));
        let mut json = Screen::new(Output::Json, false, job_pods());
        assert_eq!(json.update(&[pod("running"), pod("succeeded")]).lines().count(), 2);
        let changed = json.update(&[pod("oom-killed"), pod("succeeded")]);
        assert_eq!(changed.lines().count(), 1, "{changed}");
        assert!(changed.contains("\"pod\":\"demo-oom\""), "{changed}");
    }
}
