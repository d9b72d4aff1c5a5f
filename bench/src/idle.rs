//! Benchmark 2: idle cost. Waiting batons and every wrapper supervising a `sleep` run side by side
//! for one window; /proc is read at its start and end: context switches and CPU time (summed over
//! the wrapper's threads), and resident memory.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::peers::Wrapper;
use crate::util::{fresh_dir, wait_all, wait_until, Result};

#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    pub rss_kib: u64,
    pub anon_kib: u64,
    pub file_kib: u64,
    /// Proportional set size: shared pages (the binary, mapped by every baton of a pod) divided
    /// among the processes that map them.
    pub pss_kib: u64,
    pub threads: u64,
    pub voluntary: u64,
    pub involuntary: u64,
    /// Time on a CPU (schedstat), ns.
    pub cpu_ns: u64,
    /// inotify instances it holds (a per-UID resource of the whole node).
    pub inotify: u64,
}

fn field(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key).map(|rest| rest.trim().trim_end_matches("kB").trim().parse().unwrap_or(0)))
        .unwrap_or(0)
}

pub fn sample(pid: i32) -> Result<Sample> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| format!("pid {pid}: {e}"))?;
    let mut s = Sample {
        rss_kib: field(&status, "VmRSS:"),
        anon_kib: field(&status, "RssAnon:"),
        file_kib: field(&status, "RssFile:"),
        threads: field(&status, "Threads:"),
        pss_kib: field(&fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default(), "Pss:"),
        inotify: fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| d.flatten().filter(|e| fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy().contains("inotify"))).count() as u64)
            .unwrap_or(0),
        ..Sample::default()
    };
    let tasks = fs::read_dir(format!("/proc/{pid}/task")).map_err(|e| format!("pid {pid}: {e}"))?;
    for t in tasks.flatten() {
        let p = t.path();
        let st = fs::read_to_string(p.join("status")).unwrap_or_default();
        s.voluntary += field(&st, "voluntary_ctxt_switches:");
        s.involuntary += field(&st, "nonvoluntary_ctxt_switches:");
        let sched = fs::read_to_string(p.join("schedstat")).unwrap_or_default();
        s.cpu_ns += sched.split_whitespace().next().and_then(|v| v.parse().ok()).unwrap_or(0);
    }
    Ok(s)
}

pub struct Row {
    pub label: String,
    pub what: String,
    pub is_baton: bool,
    /// True for a baton that is waiting (the idle target applies to it).
    pub waiting: bool,
    pub start: Sample,
    pub end: Sample,
}

struct Proc {
    label: String,
    what: String,
    is_baton: bool,
    waiting: bool,
    child: Child,
    /// The file whose existence says it is set up (a waiting baton's state.json).
    ready: Option<PathBuf>,
}

pub fn idle(baton: &Path, peers: &[Wrapper], window: Duration, tmp: &Path) -> Result<Vec<Row>> {
    let base = tmp.join("idle");
    fresh_dir(&base)?;
    let shared = base.join("shared");
    let sleep: Vec<OsString> = vec!["sleep".into(), "3600".into()];
    let mut procs: Vec<Proc> = Vec::new();
    let mut start = |label: &str, what: &str, is_baton: bool, waiting: bool, argv: Vec<OsString>, ready: Option<PathBuf>| -> Result<()> {
        let child = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{label}: {e}"))?;
        procs.push(Proc { label: label.into(), what: what.into(), is_baton, waiting, child, ready });
        Ok(())
    };
    let b = |v: &[&str]| -> Vec<OsString> {
        let mut a: Vec<OsString> = vec![baton.into()];
        a.extend(v.iter().map(OsString::from));
        a
    };
    let d = shared.to_str().ok_or("temp path not UTF-8")?;
    let never = base.join("never");
    let never = never.to_str().ok_or("temp path not UTF-8")?;
    let state = |s: &str| Some(shared.join("steps").join(s).join("state.json"));
    start("baton", "waiting (--wait-file)", true, true, b(&["run", "--name", "wait-file", "--dir", d, "--wait-file", never, "--", "true"]), state("wait-file"))?;
    start("baton", "supervising sleep (named step)", true, false, b(&["run", "--name", "busy", "--dir", d, "--", "sleep", "3600"]), None)?;
    start("baton", "waiting (--after a running step)", true, true, b(&["run", "--name", "wait-after", "--dir", d, "--after", "busy", "--", "true"]), state("wait-after"))?;
    start("baton", "waiting (--after a step not started)", true, true, b(&["run", "--name", "wait-ghost", "--dir", d, "--after", "ghost", "--", "true"]), state("wait-ghost"))?;
    start("baton", "supervising sleep (unnamed)", true, false, b(&["run", "--", "sleep", "3600"]), None)?;
    for p in peers {
        start(&p.label, "supervising sleep", false, false, p.argv(&sleep, None), None)?;
    }
    start("sleep", "bare, for reference", false, false, sleep.clone(), None)?;

    let ready = wait_until(Duration::from_secs(20), || {
        for p in procs.iter_mut() {
            if let Ok(Some(st)) = p.child.try_wait() {
                return Err(format!("{} ({}) ended early: {st}", p.label, p.what));
            }
        }
        Ok(procs.iter().all(|p| p.ready.as_ref().is_none_or(|r| r.exists())))
    });
    let result = ready.and_then(|()| {
        // Let the start-up settle (page faults, the supervisors' first loop) before the window.
        std::thread::sleep(Duration::from_millis(500));
        let starts: Vec<Sample> = procs.iter().map(|p| sample(p.child.id() as i32)).collect::<Result<_>>()?;
        std::thread::sleep(window);
        let ends: Vec<Sample> = procs.iter().map(|p| sample(p.child.id() as i32)).collect::<Result<_>>()?;
        Ok(procs
            .iter()
            .zip(starts.into_iter().zip(ends))
            .map(|(p, (start, end))| Row {
                label: p.label.clone(),
                what: p.what.clone(),
                is_baton: p.is_baton,
                waiting: p.waiting,
                start,
                end,
            })
            .collect())
    });
    for p in procs.iter() {
        unsafe { libc::kill(p.child.id() as i32, libc::SIGTERM) };
    }
    let mut children: Vec<Child> = procs.into_iter().map(|p| p.child).collect();
    let _ = wait_all(&mut children, Duration::from_secs(20));
    let _ = fs::remove_dir_all(&base);
    result
}
