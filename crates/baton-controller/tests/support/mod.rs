//! Shared by the suites that run `batonctl` as a process.

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// The built `batonctl`, to be given its arguments.
pub fn batonctl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_batonctl"))
}

/// Runs `command` with `stdin` on its standard input (then closed), and its output captured.
pub fn run_with_input(mut command: Command, stdin: &[u8]) -> Output {
    let mut child =
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    // A command that refuses before it reads (a bad option, a refused pod) closes its end: that is
    // its answer, not the test's failure.
    match input.write_all(stdin) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        written => written.unwrap(),
    }
    drop(input);
    child.wait_with_output().unwrap()
}
