//! `stamp`: the child command of every benchmark. It records CLOCK_MONOTONIC (nanoseconds, the clock
//! the harness reads too) at the moments a wrapper's latency is measured against:
//!
//! - `stamp run OUT`: the time `main` starts (just after exec) and the time just before it exits,
//!   written to OUT as `START END`. A handoff is the gap from one step's END to the next one's START.
//! - `stamp sig READY OUT`: installs a SIGTERM handler, creates READY, and waits; the handler reads
//!   the clock first thing, then the time is written to OUT and it exits 0.
//!
//! Built static (musl) and small, so its own exec costs the same under every wrapper and bare.

use std::ffi::CString;
use std::sync::atomic::{AtomicU64, Ordering};

fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn write_file(path: &str, text: &str) {
    let c = CString::new(path).expect("path without NUL");
    unsafe {
        let fd = libc::open(c.as_ptr(), libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC, 0o644);
        if fd < 0 {
            libc::_exit(3);
        }
        let _ = libc::write(fd, text.as_ptr().cast(), text.len());
        libc::close(fd);
    }
}

static SIGNALED_AT: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_term(_: libc::c_int) {
    SIGNALED_AT.store(now_ns(), Ordering::SeqCst);
}

fn main() {
    let start = now_ns();
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("run") if args.len() == 3 => {
            let c = CString::new(args[2].as_str()).expect("path without NUL");
            unsafe {
                let fd = libc::open(c.as_ptr(), libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC, 0o644);
                if fd < 0 {
                    libc::_exit(3);
                }
                let end = now_ns();
                let text = format!("{start} {end}\n");
                let _ = libc::write(fd, text.as_ptr().cast(), text.len());
                libc::_exit(0);
            }
        }
        Some("sig") if args.len() == 4 => unsafe {
            // Block SIGTERM while setting up, then wait for it with sigsuspend under the mask the
            // process was started with: no lost-wakeup race, and a wrapper that left SIGTERM
            // blocked in the child is caught (the harness then times out and says so).
            let mut term = std::mem::zeroed::<libc::sigset_t>();
            libc::sigemptyset(&mut term);
            libc::sigaddset(&mut term, libc::SIGTERM);
            let mut original = std::mem::zeroed::<libc::sigset_t>();
            libc::sigprocmask(libc::SIG_BLOCK, &term, &mut original);
            let mut action = std::mem::zeroed::<libc::sigaction>();
            action.sa_sigaction = on_term as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(libc::SIGTERM, &action, std::ptr::null_mut());
            write_file(&args[2], "");
            while SIGNALED_AT.load(Ordering::SeqCst) == 0 {
                libc::sigsuspend(&original);
            }
            write_file(&args[3], &format!("{}\n", SIGNALED_AT.load(Ordering::SeqCst)));
            libc::_exit(0);
        },
        _ => {
            eprintln!("usage: stamp run OUT | stamp sig READY OUT");
            std::process::exit(2);
        }
    }
}
