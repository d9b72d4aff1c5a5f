//! A tiny stand-alone program the integration tests run as a step's command, where a shell cannot
//! observe what the test needs. Compiled on first use by `common::helper()` with plain `rustc` (no
//! dependencies; the few libc calls are declared here).
//!
//! Roles:
//! - `record REC READY [EXIT_SIG EXIT_CODE]`: blocks every signal and takes them one by one with
//!   sigwaitinfo (so the kernel's delivery order is kept and SIGCHLD is seen even though its default
//!   action is to ignore), appending each number as a line to REC. Once the mask is in place it writes
//!   "PID PGID PPID" to READY (atomically). Exits with EXIT_CODE after recording EXIT_SIG.
//! - `inotify-hog READY`: takes inotify instances until the kernel refuses one, writes
//!   "COUNT ERRNO" to READY and waits to be killed.
//! - `burn MS`: spins until it has used MS ms of CPU time; `alloc MIB`: touches MIB MiB of memory.

use std::io::Write;
use std::os::raw::{c_int, c_void};

#[repr(C)]
struct SigSet([u64; 16]);

extern "C" {
    fn sigfillset(set: *mut SigSet) -> c_int;
    fn sigprocmask(how: c_int, set: *const SigSet, old: *mut SigSet) -> c_int;
    fn sigwaitinfo(set: *const SigSet, info: *mut c_void) -> c_int;
    fn getpid() -> c_int;
    fn getpgrp() -> c_int;
    fn getppid() -> c_int;
    fn inotify_init1(flags: c_int) -> c_int;
    fn pause() -> c_int;
    fn __errno_location() -> *mut c_int;
    fn clock_gettime(clock: c_int, ts: *mut [i64; 2]) -> c_int;
}

const CLOCK_PROCESS_CPUTIME_ID: c_int = 2;

const SIG_BLOCK: c_int = 0;

fn write_ready(path: &str, text: &str) {
    let tmp = format!("{path}.tmp");
    std::fs::write(&tmp, text).expect("write ready file");
    std::fs::rename(&tmp, path).expect("publish ready file");
}

fn record(args: &[String]) {
    let rec = &args[0];
    let ready = &args[1];
    let exit_on: Option<(c_int, i32)> = args.get(2).map(|s| (s.parse().unwrap(), args[3].parse().unwrap()));
    let mut set = SigSet([0; 16]);
    unsafe {
        sigfillset(&mut set);
        sigprocmask(SIG_BLOCK, &set, std::ptr::null_mut());
    }
    let mut out = std::fs::OpenOptions::new().create(true).append(true).open(rec).expect("open record file");
    let (pid, pgrp, ppid) = unsafe { (getpid(), getpgrp(), getppid()) };
    write_ready(ready, &format!("{pid} {pgrp} {ppid}\n"));
    let mut info = [0u8; 128];
    loop {
        let sig = unsafe { sigwaitinfo(&set, info.as_mut_ptr().cast()) };
        if sig < 0 {
            continue; // EINTR
        }
        out.write_all(format!("{sig}\n").as_bytes()).expect("append to record file");
        if let Some((s, code)) = exit_on {
            if s == sig {
                std::process::exit(code);
            }
        }
    }
}

fn inotify_hog(args: &[String]) {
    let mut count = 0;
    let errno = loop {
        let fd = unsafe { inotify_init1(0o2000000 /* IN_CLOEXEC */) };
        if fd < 0 {
            break unsafe { *__errno_location() };
        }
        count += 1;
        if count > 100_000 {
            break 0;
        }
    };
    write_ready(&args[0], &format!("{count} {errno}\n"));
    loop {
        unsafe { pause() };
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("record") => record(&args[1..]),
        Some("inotify-hog") => inotify_hog(&args[1..]),
        Some("burn") => burn(args[1].parse().expect("burn MS")),
        Some("alloc") => alloc(args[1].parse().expect("alloc MIB")),
        _ => {
            eprintln!("usage: helper record REC READY [EXIT_SIG EXIT_CODE] | inotify-hog READY | burn MS | alloc MIB");
            std::process::exit(2);
        }
    }
}

/// `burn MS`: spins until this process has used MS milliseconds of CPU time.
fn burn(ms: i64) {
    let cpu_ms = || {
        let mut ts = [0i64; 2];
        unsafe { clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
        ts[0] * 1000 + ts[1] / 1_000_000
    };
    let mut x = 0u64;
    while cpu_ms() < ms {
        for i in 0..10_000u64 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
        }
    }
    std::hint::black_box(x);
}

/// `alloc MIB`: touches MIB mebibytes of memory (every page written), then exits.
fn alloc(mib: usize) {
    let v = vec![1u8; mib << 20];
    std::hint::black_box(&v);
}
