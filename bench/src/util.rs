//! Clocks, statistics, process helpers shared by every benchmark.

use std::fs;
use std::io;
use std::path::Path;
use std::process::{Child, ExitStatus};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

pub type Result<T> = std::result::Result<T, String>;

/// CLOCK_MONOTONIC in nanoseconds: the clock `stamp` reads too.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Nearest-rank percentile of sorted values (q in 0..=1).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Summary of a sample.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    pub n: usize,
    pub median: f64,
    pub p99: f64,
    pub min: f64,
    pub max: f64,
}

impl Stats {
    pub fn of(values: &[f64]) -> Stats {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        if v.is_empty() {
            return Stats { n: 0, median: f64::NAN, p99: f64::NAN, min: f64::NAN, max: f64::NAN };
        }
        Stats { n: v.len(), median: percentile(&v, 0.5), p99: percentile(&v, 0.99), min: v[0], max: v[v.len() - 1] }
    }
}

/// Nanoseconds shown in the unit that suits them: `850 µs`, `1.24 ms`, `3.1 s`.
pub fn dur(ns: f64) -> String {
    if !ns.is_finite() {
        return "–".into();
    }
    let a = ns.abs();
    if a < 1_000.0 {
        format!("{ns:.0} ns")
    } else if a < 1_000_000.0 {
        format!("{:.1} µs", ns / 1e3)
    } else if a < 1_000_000_000.0 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// A signed difference, with its sign always shown.
pub fn delta(ns: f64) -> String {
    if ns >= 0.0 { format!("+{}", dur(ns)) } else { format!("−{}", dur(-ns)) }
}

pub fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 && a.is_finite() { format!("{:.2}×", a / b) } else { "–".into() }
}

/// Polls `ready` every millisecond until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut ready: impl FnMut() -> Result<bool>) -> Result<()> {
    let until = Instant::now() + timeout;
    loop {
        if ready()? {
            return Ok(());
        }
        if Instant::now() >= until {
            return Err(format!("not ready after {timeout:?}"));
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// SIGKILLs `pids` if not cancelled (dropped) within `after`: a hung wrapper fails its benchmark
/// instead of hanging the whole run. Before killing, it notes what each living process was doing.
pub struct Watchdog {
    cancel: Option<mpsc::Sender<()>>,
    thread: Option<thread::JoinHandle<Option<String>>>,
}

/// What a living process is blocked in: its command line and each thread's wait channel and state.
pub fn describe_process(pid: i32) -> Option<String> {
    let cmd = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let cmd: String = String::from_utf8_lossy(&cmd).replace('\0', " ");
    let mut text = format!("pid {pid} `{}`:", cmd.trim());
    if let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            let wchan = fs::read_to_string(t.path().join("wchan")).unwrap_or_default();
            let stat = fs::read_to_string(t.path().join("stat")).unwrap_or_default();
            let state = stat.rsplit(')').next().and_then(|r| r.split_whitespace().next()).unwrap_or("?").to_string();
            text.push_str(&format!(" [task {} {state} in {}]", t.file_name().to_string_lossy(), if wchan.is_empty() { "-" } else { &wchan }));
        }
    }
    Some(text)
}

impl Watchdog {
    pub fn new(pids: Vec<i32>, after: Duration) -> Watchdog {
        let (tx, rx) = mpsc::channel::<()>();
        let thread = thread::spawn(move || match rx.recv_timeout(after) {
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let alive: Vec<String> = pids.iter().filter_map(|&p| describe_process(p)).collect();
                for pid in pids {
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
                Some(alive.join("; "))
            }
            _ => None,
        });
        Watchdog { cancel: Some(tx), thread: Some(thread) }
    }

    /// Stops the watchdog; returns what was still running if it had fired.
    pub fn stop(mut self) -> Option<String> {
        self.cancel.take().map(|tx| tx.send(()));
        self.thread.take().and_then(|t| t.join().unwrap_or(None))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Some(tx) = self.cancel.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Waits for every child; returns their statuses and the monotonic time the last wait returned.
pub fn wait_all(children: &mut [Child], limit: Duration) -> Result<(Vec<ExitStatus>, u64)> {
    let dog = Watchdog::new(children.iter().map(|c| c.id() as i32).collect(), limit);
    let mut statuses = Vec::with_capacity(children.len());
    for c in children.iter_mut() {
        statuses.push(c.wait().map_err(|e| format!("wait: {e}"))?);
    }
    let end = now_ns();
    if let Some(alive) = dog.stop() {
        return Err(format!("some processes did not end within {limit:?} and were killed; they were: {alive}"));
    }
    Ok((statuses, end))
}

/// `stamp run` output: (start, end).
pub fn read_stamp(path: &Path) -> Result<(u64, u64)> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut it = text.split_whitespace().map(|t| t.parse::<u64>());
    match (it.next(), it.next()) {
        (Some(Ok(a)), Some(Ok(b))) => Ok((a, b)),
        _ => Err(format!("{}: not a stamp: {text:?}", path.display())),
    }
}

/// `stamp sig` output: the handler's time.
pub fn read_one(path: &Path) -> Result<u64> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.trim().parse().map_err(|_| format!("{}: not a time: {text:?}", path.display()))
}

pub fn fresh_dir(path: &Path) -> Result<()> {
    match fs::remove_dir_all(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("remove {}: {e}", path.display())),
    }
    fs::create_dir_all(path).map_err(|e| format!("create {}: {e}", path.display()))
}

/// A small deterministic generator (xorshift64*), for shuffles and test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

/// Runs a command with a time limit; returns (success, stdout, stderr).
pub fn run_capture(cmd: &mut std::process::Command, limit: Duration) -> Result<(bool, String, String)> {
    use std::process::Stdio;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    let dog = Watchdog::new(vec![child.id() as i32], limit);
    let out = child.wait_with_output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if dog.stop().is_some() {
        return Err(format!("{cmd:?} took longer than {limit:?}"));
    }
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}
