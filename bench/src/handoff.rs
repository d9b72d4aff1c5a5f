//! Benchmark 1: handoff between steps. Pre-started `baton run` wrappers over one shared directory
//! (a temp folder standing in for the pod's emptyDir), wired with `--after`, all released at once by
//! creating the file the first ones wait for. Each step's command is `stamp run`, so a handoff is
//! measured from the predecessor's command exit to the successor's command exec, on one clock.
//! The baseline runs the same `stamp`s as bare sequential execs from one parent.

use std::collections::HashMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::util::{fresh_dir, now_ns, read_stamp, wait_all, wait_until, Result};

pub struct Ctx<'a> {
    pub baton: &'a Path,
    pub stamp: &'a Path,
    pub tmp: &'a Path,
}

/// One step of a graph.
pub struct Spec {
    pub name: String,
    pub after: Vec<String>,
    /// Waits for the release file (`--wait-file`).
    pub first: bool,
}

pub struct GraphRun {
    /// Monotonic time the release file was created.
    pub go: u64,
    /// Monotonic time the last wrapper had exited (as seen by the harness).
    pub end: u64,
    /// (exec, exit) of each step's command.
    pub stamps: HashMap<String, (u64, u64)>,
    /// Wrappers that could not get an inotify instance and fell back to re-checking on a timer.
    pub fallbacks: usize,
}

/// Starts every step, waits until all of them wait, releases them, waits for all to end.
/// With `term`, every step also writes its termination message (`--termination-path`, a file made
/// first, as the kubelet makes it; written in place before the marker is published), as every step
/// does in a pod.
pub fn run_graph(ctx: &Ctx, tag: &str, specs: &[Spec], term: bool) -> Result<GraphRun> {
    let base = ctx.tmp.join(tag);
    fresh_dir(&base)?;
    let shared = base.join("shared");
    let out = base.join("out");
    let logs = base.join("log");
    for d in [&shared, &out, &logs] {
        fs::create_dir_all(d).map_err(|e| e.to_string())?;
    }
    let go = base.join("go");
    let mut children: Vec<Child> = Vec::with_capacity(specs.len());
    let started = (|| -> Result<()> {
        for s in specs {
            let mut c = Command::new(ctx.baton);
            c.arg("run").arg("--name").arg(&s.name).arg("--dir").arg(&shared);
            if s.first {
                c.arg("--wait-file").arg(&go);
            }
            for a in &s.after {
                c.arg("--after").arg(a);
            }
            if term {
                // The kubelet makes the file (it bind-mounts it) before the container starts.
                let path = out.join(format!("{}.term", s.name));
                File::create(&path).map_err(|e| e.to_string())?;
                c.arg("--termination-path").arg(path);
            }
            c.arg("--").arg(ctx.stamp).arg("run").arg(out.join(&s.name));
            let log = File::create(logs.join(&s.name)).map_err(|e| e.to_string())?;
            c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
            children.push(c.spawn().map_err(|e| format!("spawn baton: {e}"))?);
        }
        // Every wrapper writes state.json once its watches are set and it has checked once.
        let mut pending: Vec<PathBuf> = specs.iter().map(|s| shared.join("steps").join(&s.name).join("state.json")).collect();
        wait_until(Duration::from_secs(60), || {
            pending.retain(|p| !p.exists());
            for c in children.iter_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    return Err(format!("a wrapper ended before the release: {st}"));
                }
            }
            Ok(pending.is_empty())
        })
        .map_err(|e| format!("{tag}: waiting for the wrappers to be ready: {e}"))
    })();
    if let Err(e) = started {
        for c in children.iter_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
        return Err(e);
    }
    // Let the last wrappers settle into poll(2).
    std::thread::sleep(Duration::from_millis(100));
    let t_go = now_ns();
    File::create(&go).map_err(|e| e.to_string())?;
    let (statuses, end) = match wait_all(&mut children, Duration::from_secs(60)) {
        Ok(x) => x,
        Err(e) => {
            // Keep what explains the hang: the steps' state files and the wrappers' stderr.
            let mut why = format!("{tag}: {e}");
            for s in specs {
                let dir = shared.join("steps").join(&s.name);
                let state = fs::read_to_string(dir.join("state.json")).unwrap_or_default();
                let ended = dir.join("exit.json").exists();
                let log = fs::read_to_string(logs.join(&s.name)).unwrap_or_default();
                if !ended || !log.trim().is_empty() {
                    why.push_str(&format!("; step {}: ended={ended} state={} stderr={:?}", s.name, state.trim(), log.trim()));
                }
            }
            return Err(why);
        }
    };
    let mut fallbacks = 0;
    for (s, st) in specs.iter().zip(&statuses) {
        let log = fs::read_to_string(logs.join(&s.name)).unwrap_or_default();
        if log.contains("checking every") {
            fallbacks += 1;
        }
        if !st.success() {
            return Err(format!("{tag}: step {} ended with {st}: {}", s.name, log.trim()));
        }
    }
    let mut stamps = HashMap::new();
    for s in specs {
        stamps.insert(s.name.clone(), read_stamp(&out.join(&s.name))?);
    }
    let _ = fs::remove_dir_all(&base);
    Ok(GraphRun { go: t_go, end, stamps, fallbacks })
}

/// One chain of N steps.
pub struct Chain {
    /// Command exit → next command exec, N-1 values (ns).
    pub handoffs: Vec<f64>,
    /// Release (or harness start) → first command exec.
    pub first_start: f64,
    /// Release → last wrapper gone.
    pub wall: f64,
    pub fallbacks: usize,
}

fn name(i: usize) -> String {
    format!("s{i:03}")
}

pub fn chain(ctx: &Ctx, n: usize, rep: usize, term: bool) -> Result<Chain> {
    let specs: Vec<Spec> = (0..n)
        .map(|i| Spec { name: name(i), after: if i == 0 { vec![] } else { vec![name(i - 1)] }, first: i == 0 })
        .collect();
    let run = run_graph(ctx, &format!("chain-{n}-{rep}{}", if term { "-term" } else { "" }), &specs, term)?;
    let st: Vec<(u64, u64)> = (0..n).map(|i| run.stamps[&name(i)]).collect();
    Ok(Chain {
        handoffs: st.windows(2).map(|w| w[1].0 as f64 - w[0].1 as f64).collect(),
        first_start: st[0].0 as f64 - run.go as f64,
        wall: run.end as f64 - run.go as f64,
        fallbacks: run.fallbacks,
    })
}

fn stamp_cmd(ctx: &Ctx, out: &Path) -> Command {
    let mut c = Command::new(ctx.stamp);
    c.arg("run").arg(out).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    c
}

/// N bare sequential execs of `stamp` from one parent: spawn, wait, spawn the next.
pub fn bare_chain(ctx: &Ctx, n: usize, rep: usize) -> Result<Chain> {
    let base = ctx.tmp.join(format!("bare-{n}-{rep}"));
    fresh_dir(&base)?;
    let t0 = now_ns();
    for i in 0..n {
        let st = stamp_cmd(ctx, &base.join(name(i))).status().map_err(|e| e.to_string())?;
        if !st.success() {
            return Err(format!("bare stamp: {st}"));
        }
    }
    let end = now_ns();
    let st: Vec<(u64, u64)> = (0..n).map(|i| read_stamp(&base.join(name(i)))).collect::<Result<_>>()?;
    let _ = fs::remove_dir_all(&base);
    Ok(Chain {
        handoffs: st.windows(2).map(|w| w[1].0 as f64 - w[0].1 as f64).collect(),
        first_start: st[0].0 as f64 - t0 as f64,
        wall: end as f64 - t0 as f64,
        fallbacks: 0,
    })
}

/// Fan-out 1 → width: the latency from the root's exit to each leaf's exec.
pub fn fan_out(ctx: &Ctx, width: usize, rep: usize) -> Result<(Vec<f64>, usize)> {
    let mut specs = vec![Spec { name: "root".into(), after: vec![], first: true }];
    specs.extend((0..width).map(|i| Spec { name: name(i), after: vec!["root".into()], first: false }));
    let run = run_graph(ctx, &format!("fanout-{rep}"), &specs, false)?;
    let root_end = run.stamps["root"].1 as f64;
    Ok(((0..width).map(|i| run.stamps[&name(i)].0 as f64 - root_end).collect(), run.fallbacks))
}

/// Fan-in width → 1: the latency from the last source's exit to the sink's exec.
pub fn fan_in(ctx: &Ctx, width: usize, rep: usize) -> Result<(f64, usize)> {
    let mut specs: Vec<Spec> = (0..width).map(|i| Spec { name: name(i), after: vec![], first: true }).collect();
    specs.push(Spec { name: "sink".into(), after: (0..width).map(name).collect(), first: false });
    let run = run_graph(ctx, &format!("fanin-{rep}"), &specs, false)?;
    let last = (0..width).map(|i| run.stamps[&name(i)].1).max().unwrap_or(0) as f64;
    Ok((run.stamps["sink"].0 as f64 - last, run.fallbacks))
}

/// Bare fan-out: one parent waits for the root, then spawns every leaf at once.
pub fn bare_fan_out(ctx: &Ctx, width: usize, rep: usize) -> Result<Vec<f64>> {
    let base = ctx.tmp.join(format!("bare-fanout-{rep}"));
    fresh_dir(&base)?;
    stamp_cmd(ctx, &base.join("root")).status().map_err(|e| e.to_string())?;
    let mut kids: Vec<Child> =
        (0..width).map(|i| stamp_cmd(ctx, &base.join(name(i))).spawn().map_err(|e| e.to_string())).collect::<Result<_>>()?;
    wait_all(&mut kids, Duration::from_secs(60))?;
    let root_end = read_stamp(&base.join("root"))?.1 as f64;
    let v = (0..width).map(|i| read_stamp(&base.join(name(i))).map(|s| s.0 as f64 - root_end)).collect::<Result<_>>()?;
    let _ = fs::remove_dir_all(&base);
    Ok(v)
}

/// Bare fan-in: one parent spawns every source, waits for all, then spawns the sink.
pub fn bare_fan_in(ctx: &Ctx, width: usize, rep: usize) -> Result<f64> {
    let base = ctx.tmp.join(format!("bare-fanin-{rep}"));
    fresh_dir(&base)?;
    let mut kids: Vec<Child> =
        (0..width).map(|i| stamp_cmd(ctx, &base.join(name(i))).spawn().map_err(|e| e.to_string())).collect::<Result<_>>()?;
    wait_all(&mut kids, Duration::from_secs(60))?;
    stamp_cmd(ctx, &base.join("sink")).status().map_err(|e| e.to_string())?;
    let last = (0..width).map(|i| read_stamp(&base.join(name(i))).map(|s| s.1)).collect::<Result<Vec<u64>>>()?;
    let sink = read_stamp(&base.join("sink"))?.0 as f64;
    let _ = fs::remove_dir_all(&base);
    Ok(sink - *last.iter().max().unwrap_or(&0) as f64)
}
