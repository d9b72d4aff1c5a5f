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
}

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
        _ => {
            eprintln!("usage: helper record REC READY [EXIT_SIG EXIT_CODE] | inotify-hog READY");
            std::process::exit(2);
        }
    }
}
