//! argoexec's other subcommands: `kill` answered here (Argo's controller runs
//! `kubectl exec … /var/run/argo/argoexec kill 15 1` in images without a shell), everything else
//! handed to the upstream argoexec with the same arguments; `init` first shares that upstream with
//! the artifact plugins' containers when the template uses one.

use std::ffi::OsString;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::process::Command;

use nix::sys::signal::{kill as send, Signal};
use nix::unistd::Pid;

use super::template::Template;
use super::{files, Env, ENV_UPSTREAM, EXIT_FAILED};
use crate::folder::Folder;
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

/// Replaces this process with the upstream argoexec, same arguments (argv[0] included): the image's
/// own, else the one beside this binary (the init-less layout's image volume, `/argo-bin/bin/`),
/// else (in an artifact plugin's image, which has none) the copy `init` left in the shared folder.
/// Returns only when that cannot be done.
pub fn delegate(args: &[OsString], env: &Env) -> i32 {
    if args.get(1).is_some_and(|a| a == "init") {
        if let Err(sentence) = share_upstream(env) {
            eprintln!("baton: {sentence}");
            let _ = files::write_termination(&env.termination, &sentence);
            return EXIT_FAILED;
        }
    }
    let beside = std::env::current_exe().ok().and_then(|exe| Some(exe.parent()?.join(SHARED_UPSTREAM)));
    let upstream = [Some(env.upstream.clone()), beside, Some(env.dir.join(SHARED_UPSTREAM))]
        .into_iter()
        .flatten()
        .find(|p| p.exists())
        .unwrap_or_else(|| env.upstream.clone());
    let error = Command::new(&upstream).arg0(&args[0]).args(&args[1..]).exec();
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

/// The upstream argoexec's copy in the shared folder, beside `argoexec` (baton, which upstream `init`
/// copies there from the image's PATH).
pub const SHARED_UPSTREAM: &str = "argoexec-upstream";

/// Before `argoexec init`, when the template uses an artifact plugin: Argo's controller runs the
/// plugin's containers as `/var/run/argo/argoexec artifact-plugin-init|artifact-plugin-sidecar …` in
/// the plugin's own image, which has no upstream argoexec; so the init container copies it into the
/// shared folder (mode 0555, through a temporary name). Other pods are spared the copy (tens of MB).
fn share_upstream(env: &Env) -> Result<(), String> {
    // A template that cannot be read is upstream init's to report.
    if !Template::read(env).is_ok_and(|t| t.uses_plugins()) {
        return Ok(());
    }
    let target = env.dir.join(SHARED_UPSTREAM);
    let cannot = |e: std::io::Error| {
        format!(
            "cannot copy the upstream argoexec {} to {} for the template's artifact plugins ({e}); set \
             {ENV_UPSTREAM} to the upstream argoexec and mount the shared folder writable",
            env.upstream.display(),
            target.display()
        )
    };
    let mut source = File::open(&env.upstream).map_err(cannot)?;
    let top = Folder::open(&env.dir).map_err(cannot)?;
    top.create_atomically(SHARED_UPSTREAM, 0o555, |out| std::io::copy(&mut source, out).map(drop)).map_err(cannot)
}
