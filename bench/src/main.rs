//! baton-bench: runs every benchmark of docs/benchmarks.md in one go and writes the page and its
//! plots. Started by `bench/run`, which builds baton, this harness and `stamp`, and installs the
//! peers; see that script for the options.

mod handoff;
mod idle;
mod message;
mod overhead;
mod peers;
mod plot;
mod report;
mod size;
mod util;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::handoff::Ctx;
use crate::peers::Wrapper;
use crate::util::Result;

/// How many repetitions of what: the full run and the quick one.
pub struct Plan {
    pub quick: bool,
    /// The chains to run.
    pub chains: Vec<ChainPlan>,
    pub fan_width: usize,
    pub fan_out_runs: usize,
    pub fan_in_runs: usize,
    pub overhead_rounds: usize,
    pub signal_rounds: usize,
    pub idle_window: Duration,
    pub message_samples: usize,
    /// Sections to run (`--only handoff,idle,overhead,signal,message,size`); None: all.
    pub only: Option<Vec<String>>,
}

/// One chain size: N steps, `runs` times; `term`: every step writes a termination message (as in a
/// pod); `memory`: the shared folder and the messages on tmpfs (an emptyDir with medium: Memory)
/// instead of the disk.
#[derive(Clone, Copy)]
pub struct ChainPlan {
    pub n: usize,
    pub runs: usize,
    pub term: bool,
    pub memory: bool,
}

const fn chain(n: usize, runs: usize, term: bool, memory: bool) -> ChainPlan {
    ChainPlan { n, runs, term, memory }
}

impl Plan {
    pub fn runs(&self, section: &str) -> bool {
        self.only.as_ref().is_none_or(|o| o.iter().any(|s| s == section))
    }
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                quick,
                chains: vec![
                    chain(10, 5, false, false),
                    chain(50, 2, false, false),
                    chain(200, 1, false, false),
                    chain(10, 5, true, false),
                    chain(50, 2, true, false),
                    chain(10, 5, true, true),
                    chain(50, 2, true, true),
                ],
                fan_width: 100,
                fan_out_runs: 2,
                fan_in_runs: 3,
                overhead_rounds: 150,
                signal_rounds: 30,
                idle_window: Duration::from_secs(3),
                message_samples: 300,
                only: None,
            }
        } else {
            Plan {
                quick,
                chains: vec![
                    chain(10, 30, false, false),
                    chain(50, 8, false, false),
                    chain(200, 3, false, false),
                    chain(10, 30, true, false),
                    chain(50, 8, true, false),
                    chain(10, 30, true, true),
                    chain(50, 8, true, true),
                ],
                fan_width: 100,
                fan_out_runs: 10,
                fan_in_runs: 20,
                overhead_rounds: 1000,
                signal_rounds: 200,
                idle_window: Duration::from_secs(10),
                message_samples: 3000,
                only: None,
            }
        }
    }
}

pub struct Config {
    pub repo: PathBuf,
    pub baton: PathBuf,
    pub stamp: PathBuf,
    pub tmp: PathBuf,
    /// A folder on tmpfs, for the chains with `memory` (none: they are not run).
    pub memory: Option<PathBuf>,
    /// File system types of `tmp` and `memory` (`ext4`, `tmpfs`), for the page.
    pub tmp_fs: String,
    pub memory_fs: String,
    /// Static binary sizes with only some modes built in (label, bytes), from bench/run.
    pub mode_sizes: Vec<(String, u64)>,
    /// The shipped static binary per Rust target (triple, bytes), from bench/run (make static).
    pub arch_sizes: Vec<(String, u64)>,
    pub command: String,
    /// The folder that receives benchmarks.md and img/ (default: the repository's docs/).
    pub out: PathBuf,
    /// Where the measured baton came from (commit, build), for the page.
    pub source: String,
}

pub struct ChainResult {
    pub n: usize,
    /// Steps also wrote a termination message (in place, to a file the harness made first, as the
    /// kubelet makes /dev/termination-log) before publishing.
    pub term: bool,
    /// The shared folder and the messages were on tmpfs.
    pub memory: bool,
    pub runs: usize,
    pub baton: Vec<handoff::Chain>,
    pub bare: Vec<handoff::Chain>,
}

pub struct FanResult {
    pub out_baton: Vec<f64>,
    pub out_bare: Vec<f64>,
    pub out_fallbacks: usize,
    pub in_baton: Vec<f64>,
    pub in_bare: Vec<f64>,
    pub in_fallbacks: usize,
}

pub struct Results {
    pub plan: Plan,
    pub config: Config,
    pub machine: report::Machine,
    pub wrappers: Vec<Wrapper>,
    pub missing_peers: Vec<String>,
    pub chains: Result<Vec<ChainResult>>,
    pub fans: Result<FanResult>,
    pub idle: Result<Vec<idle::Row>>,
    pub overhead: Result<Vec<Vec<f64>>>,
    pub signal: Result<(Vec<Vec<f64>>, Vec<usize>)>,
    pub message: Result<Vec<message::Case>>,
    pub binaries: Vec<size::Binary>,
    pub image: std::result::Result<u64, String>,
    pub machine_end: report::Load,
    pub elapsed: Duration,
}

fn skipped<T>() -> Result<T> {
    Err(report::NOT_RUN.to_string())
}

fn progress(text: &str) {
    eprintln!("baton-bench: {text}");
}

fn chains(ctx: &Ctx, memory: Option<&Ctx>, plan: &Plan) -> Result<Vec<ChainResult>> {
    let mut out = Vec::new();
    for c in &plan.chains {
        let Some(ctx) = (if c.memory { memory } else { Some(ctx) }) else { continue };
        let mut r = ChainResult { n: c.n, term: c.term, memory: c.memory, runs: c.runs, baton: Vec::new(), bare: Vec::new() };
        for rep in 0..c.runs {
            let with = if c.term { " with termination messages" } else { "" };
            let on = if c.memory { " on tmpfs" } else { "" };
            progress(&format!("handoff: chain of {}{with}{on}, run {}/{}", c.n, rep + 1, c.runs));
            r.baton.push(handoff::chain(ctx, c.n, rep, c.term)?);
            r.bare.push(handoff::bare_chain(ctx, c.n, rep)?);
        }
        out.push(r);
    }
    Ok(out)
}

fn fans(ctx: &Ctx, plan: &Plan) -> Result<FanResult> {
    let w = plan.fan_width;
    let mut f = FanResult {
        out_baton: vec![],
        out_bare: vec![],
        out_fallbacks: 0,
        in_baton: vec![],
        in_bare: vec![],
        in_fallbacks: 0,
    };
    for rep in 0..plan.fan_out_runs {
        progress(&format!("handoff: fan-out 1 → {w}, run {}/{}", rep + 1, plan.fan_out_runs));
        let (v, fb) = handoff::fan_out(ctx, w, rep)?;
        f.out_baton.extend(v);
        f.out_fallbacks = f.out_fallbacks.max(fb);
        f.out_bare.extend(handoff::bare_fan_out(ctx, w, rep)?);
    }
    for rep in 0..plan.fan_in_runs {
        progress(&format!("handoff: fan-in {w} → 1, run {}/{}", rep + 1, plan.fan_in_runs));
        let (v, fb) = handoff::fan_in(ctx, w, rep)?;
        f.in_baton.push(v);
        f.in_fallbacks = f.in_fallbacks.max(fb);
        f.in_bare.push(handoff::bare_fan_in(ctx, w, rep)?);
    }
    Ok(f)
}

/// `label=bytes,label=bytes` as given by bench/run.
fn sizes(list: Option<&String>) -> Vec<(String, u64)> {
    list.map(|m| {
        m.split(',')
            .filter_map(|kv| kv.split_once('=').and_then(|(k, v)| Some((k.to_string(), v.parse().ok()?))))
            .collect()
    })
    .unwrap_or_default()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut quick = false;
    let mut get = std::collections::HashMap::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--repo" | "--baton" | "--stamp" | "--tmp" | "--memory" | "--tmp-fs" | "--memory-fs" | "--mode-sizes" | "--arch-sizes" | "--command"
            | "--source" | "--only" | "--out" => {
                get.insert(a.clone(), args.next().unwrap_or_default());
            }
            other => {
                eprintln!("baton-bench: unknown argument {other:?}; run it through bench/run");
                std::process::exit(2);
            }
        }
    }
    let need = |k: &str| -> PathBuf {
        match get.get(k) {
            Some(v) if !v.is_empty() => PathBuf::from(v),
            _ => {
                eprintln!("baton-bench: {k} is required; run it through bench/run");
                std::process::exit(2);
            }
        }
    };
    let repo = need("--repo");
    let config = Config {
        out: get.get("--out").filter(|o| !o.is_empty()).map(PathBuf::from).unwrap_or_else(|| repo.join("docs")),
        repo,
        baton: need("--baton"),
        stamp: need("--stamp"),
        tmp: need("--tmp"),
        memory: get.get("--memory").filter(|m| !m.is_empty()).map(PathBuf::from),
        tmp_fs: get.get("--tmp-fs").cloned().unwrap_or_else(|| "disk".into()),
        memory_fs: get.get("--memory-fs").cloned().unwrap_or_else(|| "tmpfs".into()),
        mode_sizes: sizes(get.get("--mode-sizes")),
        arch_sizes: sizes(get.get("--arch-sizes")),
        command: get.get("--command").cloned().unwrap_or_else(|| "bench/run".into()),
        source: get.get("--source").cloned().unwrap_or_default(),
    };
    let mut plan = Plan::new(quick);
    plan.only = get.get("--only").filter(|o| !o.is_empty()).map(|o| o.split(',').map(|s| s.trim().to_string()).collect());
    if let Some(only) = &plan.only {
        let known = ["handoff", "idle", "overhead", "signal", "message", "size"];
        if let Some(bad) = only.iter().find(|s| !known.contains(&s.as_str())) {
            eprintln!("baton-bench: --only {bad}: the sections are {}", known.join(", "));
            std::process::exit(2);
        }
    }
    let started = Instant::now();
    let machine = report::Machine::probe(&config);
    let (peers, missing_peers) = peers::discover();
    let ctx = Ctx { baton: &config.baton, stamp: &config.stamp, tmp: &config.tmp };
    let memory = config.memory.as_ref().map(|m| Ctx { baton: &config.baton, stamp: &config.stamp, tmp: m });

    progress("1/6 handoff");
    let (chains, fans) =
        if plan.runs("handoff") { (chains(&ctx, memory.as_ref(), &plan), fans(&ctx, &plan)) } else { (skipped(), skipped()) };

    progress(&format!("2/6 idle ({} s window)", plan.idle_window.as_secs()));
    let idle = if plan.runs("idle") { idle::idle(&config.baton, &peers, plan.idle_window, &config.tmp) } else { skipped() };

    let mut wrappers = vec![peers::bare(), peers::baton(&config.baton, false), peers::baton(&config.baton, true)];
    wrappers.extend(peers.iter().cloned());
    progress(&format!("3/6 wrapper overhead ({} rounds)", plan.overhead_rounds));
    let overhead = if plan.runs("overhead") { overhead::overhead(&wrappers, plan.overhead_rounds, &config.tmp) } else { skipped() };
    progress(&format!("4/6 signal forwarding ({} rounds)", plan.signal_rounds));
    let signal = if plan.runs("signal") { overhead::signal(&wrappers, plan.signal_rounds, &config.tmp, &config.stamp) } else { skipped() };
    progress("5/6 termination message");
    let message = if plan.runs("message") { Ok(message::run(plan.message_samples)) } else { skipped() };
    progress("6/6 sizes");
    let binaries = size::binaries(&config.baton, &peers);
    let image = if plan.runs("size") { size::image(&config.repo, &config.baton, &config.tmp) } else { skipped() };

    let results = Results {
        machine_end: report::Load::now(),
        elapsed: started.elapsed(),
        plan,
        config,
        machine,
        wrappers,
        missing_peers,
        chains,
        fans,
        idle,
        overhead,
        signal,
        message,
        binaries,
        image,
    };
    match report::write(&results) {
        Ok(summary) => {
            println!("{summary}");
        }
        Err(e) => {
            eprintln!("baton-bench: cannot write the report: {e}");
            std::process::exit(1);
        }
    }
}
