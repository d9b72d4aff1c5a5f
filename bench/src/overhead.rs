//! Benchmark 3: wrapper overhead, `WRAPPER true` end to end (spawn → wait returns), and
//! benchmark 4: signal forwarding, SIGTERM to the wrapper → the command's handler runs.
//! Every round runs each wrapper once, in a shuffled order, so a burst of load on the machine
//! falls on all of them alike.

use std::ffi::OsString;
use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::peers::Wrapper;
use crate::util::{fresh_dir, now_ns, read_one, wait_until, Result, Rng, Watchdog};

/// Wall time of each run of `true` per wrapper (ns), in the order of `wrappers`.
pub fn overhead(wrappers: &[Wrapper], rounds: usize, tmp: &Path) -> Result<Vec<Vec<f64>>> {
    let shared = tmp.join("overhead-shared");
    fresh_dir(&shared)?;
    let child: Vec<OsString> = vec!["true".into()];
    let mut samples = vec![Vec::with_capacity(rounds); wrappers.len()];
    let mut order: Vec<usize> = (0..wrappers.len()).collect();
    let mut rng = Rng::new(0x5eed);
    // Warm the page cache and the binaries' pages first.
    for w in wrappers {
        let name = "warm";
        let _ = w.command(&child, Some((&shared, name))).stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
    fresh_dir(&shared)?;
    for round in 0..rounds {
        rng.shuffle(&mut order);
        for &i in &order {
            let w = &wrappers[i];
            let name = format!("o{round}");
            let mut cmd = w.command(&child, Some((&shared, &name)));
            cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
            let t = Instant::now();
            let st = cmd.status().map_err(|e| format!("{}: {e}", w.label))?;
            let ns = t.elapsed().as_nanos() as f64;
            if !st.success() {
                return Err(format!("{} -- true ended with {st}", w.label));
            }
            samples[i].push(ns);
        }
    }
    let _ = fs::remove_dir_all(&shared);
    Ok(samples)
}

/// SIGTERM → handler latency (ns) per wrapper, and the failures (runs where the command never saw
/// the signal) per wrapper.
pub fn signal(wrappers: &[Wrapper], rounds: usize, tmp: &Path, stamp: &Path) -> Result<(Vec<Vec<f64>>, Vec<usize>)> {
    let base = tmp.join("signal");
    fresh_dir(&base)?;
    let shared = base.join("shared");
    let mut samples = vec![Vec::with_capacity(rounds); wrappers.len()];
    let mut failures = vec![0; wrappers.len()];
    let mut order: Vec<usize> = (0..wrappers.len()).collect();
    let mut rng = Rng::new(0x51);
    for round in 0..rounds {
        rng.shuffle(&mut order);
        for &i in &order {
            let w = &wrappers[i];
            let ready = base.join(format!("ready-{i}-{round}"));
            let out = base.join(format!("out-{i}-{round}"));
            let child: Vec<OsString> = vec![stamp.into(), "sig".into(), ready.clone().into(), out.clone().into()];
            let name = format!("g{round}");
            let mut cmd = w.command(&child, Some((&shared, &name)));
            cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
            let mut c = cmd.spawn().map_err(|e| format!("{}: {e}", w.label))?;
            let dog = Watchdog::new(vec![c.id() as i32], Duration::from_secs(10));
            let ok = wait_until(Duration::from_secs(10), || Ok(ready.exists())).is_ok();
            if ok {
                // The command is set up; give the wrapper a moment to be back asleep in its loop.
                std::thread::sleep(Duration::from_millis(10));
                let t0 = now_ns();
                unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
                let _ = c.wait();
                match read_one(&out) {
                    Ok(t1) => samples[i].push(t1 as f64 - t0 as f64),
                    Err(_) => failures[i] += 1,
                }
            } else {
                failures[i] += 1;
                let _ = c.kill();
                let _ = c.wait();
            }
            drop(dog);
            let _ = fs::remove_file(&ready);
            let _ = fs::remove_file(&out);
        }
    }
    let _ = fs::remove_dir_all(&base);
    Ok((samples, failures))
}
