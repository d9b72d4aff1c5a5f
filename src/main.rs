//! baton: the in-pod entrypoint. `main` only parses and maps outcomes to exit codes; each concern
//! lives in its own module.
// A build without a foreign mode (only bench/run makes one, to weigh the modes) leaves the core
// pieces that only those modes use unused.
#![cfg_attr(not(all(feature = "tekton", feature = "argo")), allow(dead_code))]

#[cfg(feature = "argo")]
mod argo;
mod cli;
mod clock;
mod control;
mod folder;
mod init;
mod liveness;
mod report;
mod run;
mod signals;
mod spawn;
mod stepdir;
mod supervise;
mod sys;
#[cfg(feature = "tekton")]
mod tekton;
mod wait;

use std::ffi::OsString;

use baton_contract::record::EXIT_BATON_FAILED;
use clap::Parser;

use crate::cli::{Cli, Command};

/// The exit code when this invocation is another engine's entrypoint contract (Tekton's, Argo's).
fn foreign_contract() -> Option<i32> {
    #[cfg(feature = "tekton")]
    if let Some(code) = tekton::dispatch() {
        return Some(code);
    }
    #[cfg(feature = "argo")]
    if let Some(code) = argo::dispatch() {
        return Some(code);
    }
    None
}

fn main() {
    if let Some(code) = foreign_contract() {
        std::process::exit(code)
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            if !e.use_stderr() {
                let _ = e.print();
                std::process::exit(0); // --help, --version
            }
            // Usage errors are baton's own failures (125), so they never pass for the command's code.
            let raw: Vec<OsString> = std::env::args_os().collect();
            if raw.get(1).is_some_and(|a| a == "run") {
                let (sentence, says_all) = cli::run_refusal(&e);
                if !says_all {
                    let _ = e.print();
                }
                // A refusal is an end: the step still publishes its record and marker.
                run::refuse_unparsed(&raw[2..], &sentence);
            } else {
                let _ = e.print();
            }
            std::process::exit(EXIT_BATON_FAILED);
        }
    };
    let code = match cli.command {
        Command::Init(args) => match init::init(&args.dir.dir, args.bin_volume) {
            Ok(path) => {
                println!("{}", path.display());
                0
            }
            Err(e) => {
                eprintln!("baton: {e:#}");
                EXIT_BATON_FAILED
            }
        },
        Command::Run(args) => run::run(args),
        Command::Wait(args) => wait::wait_command(args),
        Command::Status(args) => control::status(args),
        Command::Kill(args) => control::kill(args),
        Command::Release(args) => control::release(args),
        Command::Resume(args) => control::resume(args),
    };
    std::process::exit(code);
}
