//! Which baton binary the suites run: the one cargo built for this machine, or the one
//! `BATON_TEST_BIN` names: tests/arm64.sh points it at the arm64 build, which qemu-user then runs
//! through binfmt_misc. Included by tests/common, tests/tekton_support and tests/control.rs.

#![allow(dead_code)] // each suite uses a part

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

/// The binary under test.
pub static BATON: LazyLock<String> =
    LazyLock::new(|| std::env::var("BATON_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_baton").to_string()));

/// Whether the binary under test is of another architecture than this machine, so that qemu-user
/// runs it (only ever with BATON_TEST_BIN).
pub fn emulated() -> bool {
    static FOREIGN: LazyLock<bool> = LazyLock::new(|| {
        std::env::var_os("BATON_TEST_BIN").is_some_and(|bin| elf_machine(Path::new(&bin)) != elf_machine(Path::new(env!("CARGO_BIN_EXE_baton"))))
    });
    *FOREIGN
}

/// e_machine of an ELF file (bytes 18-19; both builds are little-endian).
fn elf_machine(path: &Path) -> Option<u16> {
    let bytes = std::fs::read(path).ok()?;
    Some(u16::from_le_bytes([*bytes.get(18)?, *bytes.get(19)?]))
}

/// For a test that cannot pass under qemu-user: when emulated, says so with the reason, on a line
/// tests/arm64.sh collects, and returns true (the test then returns without checking anything).
pub fn skip_emulated(why: &str) -> bool {
    if !emulated() {
        return false;
    }
    let test = std::thread::current().name().unwrap_or("?").to_string();
    eprintln!("SKIPPED-EMULATED {test}: {why}");
    true
}

/// Whether qemu-user carries `signal`, sent with kill(2), to the program it runs. Measured with
/// Debian's qemu-user-static 7.2 against `baton run` under qemu-aarch64, signals sent one after
/// another: SIGILL kills qemu itself (with SIGSEGV), and so does SIGFPE once another signal came
/// before it; SIGBUS and SIGSEGV never reach the program; real-time 35 and 36 kill qemu, and so does
/// 32, while 34 reaches the program as another number (qemu remaps the real-time signals around the
/// ones its own C library keeps). All of them reach the same musl build natively, 32 to 34 included
/// (tests/hardening/signals.rs).
pub fn carried(signal: i32) -> bool {
    !emulated() || ![libc::SIGILL, libc::SIGFPE, libc::SIGBUS, libc::SIGSEGV, 32, 33, 34, 35, 36].contains(&signal)
}

/// The signals of `signals` that the binary under test can be sent (all of them natively); says
/// which were left out under emulation, on a line tests/arm64.sh collects.
pub fn sendable(signals: &[i32]) -> Vec<i32> {
    let (kept, dropped): (Vec<i32>, Vec<i32>) = signals.iter().partition(|&&s| carried(s));
    if !dropped.is_empty() {
        let test = std::thread::current().name().unwrap_or("?").to_string();
        eprintln!("NARROWED-EMULATED {test}: signals {dropped:?} not sent, qemu-user does not carry them to its program");
    }
    kept
}

/// The program a process runs: /proc/PID/exe, or under qemu-user, whose binfmt_misc entry has the
/// P flag (argv = interpreter, binary, argv[0], ...), the binary qemu was given.
pub fn program_of(pid: i32) -> Option<PathBuf> {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    if !(emulated() && exe.to_string_lossy().contains("qemu")) {
        return Some(exe);
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let binary = cmdline.split(|&b| b == 0).nth(1)?;
    Some(PathBuf::from(String::from_utf8_lossy(binary).into_owned()))
}
