//! argoexec's other subcommands: `kill` answered here (Argo's controller runs
//! `kubectl exec … /var/run/argo/argoexec kill 15 1` in images without a shell), everything else
//! handed to the upstream argoexec with the same arguments.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::Command;

use nix::sys::signal::{kill as send, Signal};
use nix::unistd::Pid;

use super::{files, Env, ENV_UPSTREAM, EXIT_FAILED};
use crate::sys;

/// `argoexec kill SIGNAL PID`: sends SIGNAL (a number, or a name such as TERM) to process PID.
pub fn kill(args: &[String]) -> i32 {
    let fail = |sentence: String| {
        eprintln!("baton: {sentence}");
        EXIT_FAILED
    };
    let [signal, pid] = args else {
        return fail(format!(
            "argoexec kill takes SIGNAL PID, as in argoexec kill 15 1; got {} argument(s)",
            args.len()
        ));
    };
    let Some(number) = sys::parse_signal(signal) else {
        return fail(format!(
            "argoexec kill: {signal:?} is not a signal; write a number such as 15 or a name such as TERM"
        ));
    };
    let Ok(signal) = Signal::try_from(number) else {
        return fail(format!(
            "argoexec kill: {} cannot be sent by this command; use 1 to 31",
            sys::signal_name(number)
        ));
    };
    let Some(pid) = pid.parse::<i32>().ok().filter(|p| *p > 0) else {
        return fail(format!("argoexec kill: {pid:?} is not a process id; write a positive number such as 1"));
    };
    println!("killing {pid} with {}", sys::signal_name(number));
    match send(Pid::from_raw(pid), signal) {
        Ok(()) => 0,
        // Said through std's error (strerror), not nix's own table of errno descriptions.
        Err(e) => fail(format!(
            "argoexec kill: cannot send {} to process {pid}: {}",
            sys::signal_name(number),
            std::io::Error::from(e)
        )),
    }
}

/// Replaces this process with the upstream argoexec, same arguments (argv[0] included). Returns
/// only when that cannot be done.
pub fn delegate(args: &[OsString], env: &Env) -> i32 {
    let error = Command::new(&env.upstream).arg0(&args[0]).args(&args[1..]).exec();
    let what = match args.get(1) {
        Some(sub) => format!("argoexec {}", sub.to_string_lossy()),
        None => "argoexec without a subcommand".to_string(),
    };
    let sentence = format!(
        "{what} is upstream argoexec's work: baton hands it to {} and could not start it ({error}); use the \
         executor image built from argo.Containerfile, or set {ENV_UPSTREAM} to the upstream argoexec",
        env.upstream.display()
    );
    eprintln!("baton: {sentence}");
    let _ = files::write_termination(&env.termination, &sentence);
    EXIT_FAILED
}
