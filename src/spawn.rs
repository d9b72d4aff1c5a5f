//! Starting the command: its own process group, the terminal if baton had it, the signal mask baton
//! was started with, and one clear sentence when it cannot be started at all.

use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use baton_contract::record::{EXIT_CANNOT_EXECUTE, EXIT_NOT_FOUND};

use nix::spawn::{PosixSpawnAttr, PosixSpawnFileActions, PosixSpawnFlags};
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::sys::{self, SigSet};

pub struct Child {
    pub pid: i32,
    /// Read ends of the command's stdout / stderr when they are copied to files.
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

/// The command could not be started: 127 (not found) or 126 (found, not executable).
#[derive(Debug)]
pub struct CannotRun {
    pub code: i32,
    pub message: String,
}

pub fn spawn(argv: &[OsString], mask: &SigSet, pipe_stdout: bool, pipe_stderr: bool) -> Result<Child, CannotRun> {
    spawn_with(argv, mask, pipe_stdout, pipe_stderr, None)
}

/// The command line and environment in the form `posix_spawn` takes, made before the wait so that
/// none of it is done between a predecessor's end and this command's start.
pub struct Prepared {
    argv: Vec<OsString>,
    c: io::Result<(Vec<CString>, Vec<CString>)>,
}

impl Prepared {
    pub fn new(argv: &[OsString]) -> Prepared {
        let cstring = |s: &[u8]| CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in the command"));
        let c = (|| {
            let args: Vec<CString> = argv.iter().map(|a| cstring(a.as_bytes())).collect::<io::Result<_>>()?;
            let env: Vec<CString> = std::env::vars_os()
                .map(|(k, v)| cstring(&[k.as_bytes(), b"=", v.as_bytes()].concat()))
                .collect::<io::Result<_>>()?;
            Ok((args, env))
        })();
        Prepared { argv: argv.to_vec(), c }
    }
}

/// [`spawn`] of a command prepared beforehand.
pub fn spawn_prepared(prepared: &Prepared, mask: &SigSet, pipe_stdout: bool, pipe_stderr: bool) -> Result<Child, CannotRun> {
    if sys::owns_terminal() {
        return spawn_with(&prepared.argv, mask, pipe_stdout, pipe_stderr, None);
    }
    match &prepared.c {
        Ok((args, env)) => posix_spawn(args, env, mask, pipe_stdout, pipe_stderr),
        Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
    }
    .map_err(|e| explain(&prepared.argv[0], &e))
}

/// A step run in the child between fork and exec, while all signals are still blocked (only
/// async-signal-safe calls). The Tekton mode's hermetic steps use it to enter new namespaces.
pub type BeforeExec = Box<dyn Fn() -> io::Result<()> + Send + Sync>;

/// `spawn`, with `before_exec` run in the child just before the signal mask is restored.
///
/// The usual case (no hook, no terminal to hand over) goes through `posix_spawn`, which the C
/// library does with a vfork-style clone: no copy of baton's address space sits between a
/// predecessor's end and this command's start. The other cases need code between fork and exec,
/// which only std's fork path runs.
pub fn spawn_with(
    argv: &[OsString],
    mask: &SigSet,
    pipe_stdout: bool,
    pipe_stderr: bool,
    before_exec: Option<BeforeExec>,
) -> Result<Child, CannotRun> {
    let give_terminal = sys::owns_terminal();
    if before_exec.is_none() && !give_terminal {
        let prepared = Prepared::new(argv);
        return match &prepared.c {
            Ok((args, env)) => posix_spawn(args, env, mask, pipe_stdout, pipe_stderr),
            Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
        }
        .map_err(|e| explain(&argv[0], &e));
    }
    let mut command = Command::new(&argv[0]);
    command.args(&argv[1..]).process_group(0);
    if pipe_stdout {
        command.stdout(Stdio::piped());
    }
    if pipe_stderr {
        command.stderr(Stdio::piped());
    }
    let mask = *mask;
    // Between fork and exec: only async-signal-safe calls. All signals are still blocked here, so
    // taking the terminal from the background cannot stop us with SIGTTOU.
    unsafe {
        command.pre_exec(move || {
            if give_terminal {
                // SAFETY: fd 0 is open (baton's own stdin, a terminal) for the whole call.
                sys::take_terminal(std::os::fd::BorrowedFd::borrow_raw(0));
            }
            if let Some(step) = &before_exec {
                step()?;
            }
            sys::set_mask(&mask)
        });
    }
    match command.spawn() {
        Ok(mut child) => Ok(Child {
            pid: child.id() as i32,
            stdout: child.stdout.take().map(OwnedFd::from),
            stderr: child.stderr.take().map(OwnedFd::from),
        }),
        Err(e) => Err(explain(&argv[0], &e)),
    }
}

/// `posix_spawnp` of `argv` in a process group of its own, with baton's original signal mask,
/// SIGPIPE back at its default (Rust ignores it in baton), baton's environment, and its stdout /
/// stderr on pipes when they are copied to files.
fn posix_spawn(args: &[CString], env: &[CString], mask: &SigSet, pipe_stdout: bool, pipe_stderr: bool) -> io::Result<Child> {
    let nix = |e: nix::errno::Errno| io::Error::from_raw_os_error(e as i32);

    let mut attr = PosixSpawnAttr::init().map_err(nix)?;
    attr.set_flags(PosixSpawnFlags::POSIX_SPAWN_SETPGROUP | PosixSpawnFlags::POSIX_SPAWN_SETSIGMASK | PosixSpawnFlags::POSIX_SPAWN_SETSIGDEF)
        .map_err(nix)?;
    attr.set_pgroup(Pid::from_raw(0)).map_err(nix)?;
    attr.set_sigmask(mask).map_err(nix)?;
    let mut default = SigSet::empty();
    default.add(Signal::SIGPIPE);
    attr.set_sigdefault(&default).map_err(nix)?;

    let mut actions = PosixSpawnFileActions::init().map_err(nix)?;
    let mut pipes: [Option<(OwnedFd, OwnedFd)>; 2] = [None, None];
    for (i, (wanted, target)) in [(pipe_stdout, 1), (pipe_stderr, 2)].into_iter().enumerate() {
        if wanted {
            let (read, write) = sys::pipe()?;
            actions.add_dup2(write.as_raw_fd(), target).map_err(nix)?;
            pipes[i] = Some((read, write));
        }
    }
    let spawned = nix::spawn::posix_spawnp(&args[0], &actions, &attr, args, env);
    // musl's posix_spawn restores baton's mask through pthread_sigmask, which leaves out the C
    // library's signals 32-34: block them again (see sys::block_signals).
    sys::block_libc_reserved()?;
    let pid = spawned.map_err(nix)?;
    // The write ends are the child's now; dropping ours lets the copies see end of file.
    let [out, err] = pipes.map(|p| p.map(|(read, _write)| read));
    Ok(Child { pid: pid.as_raw(), stdout: out, stderr: err })
}

fn explain(program: &OsString, e: &io::Error) -> CannotRun {
    let shown = Path::new(program).display();
    let has_slash = program.to_string_lossy().contains('/');
    let (code, why) = match e.raw_os_error() {
        Some(libc::ENOENT) if has_slash && Path::new(program).exists() => (
            EXIT_CANNOT_EXECUTE,
            "the file exists but its interpreter (the #! line) or dynamic loader is missing from the image".to_string(),
        ),
        Some(libc::ENOENT) if has_slash => (EXIT_NOT_FOUND, "no such file; check the step's command and image".to_string()),
        Some(libc::ENOENT) => {
            let path = std::env::var("PATH").unwrap_or_else(|_| "not set".to_string());
            (EXIT_NOT_FOUND, format!("not found in PATH ({path}); check the step's command and image"))
        }
        Some(libc::EACCES) | Some(libc::EPERM) => (
            EXIT_CANNOT_EXECUTE,
            "permission denied; the file must be a regular file with the executable bit (chmod +x), on a file \
             system not mounted noexec"
                .to_string(),
        ),
        Some(libc::ENOEXEC) => (
            EXIT_CANNOT_EXECUTE,
            "not an executable format; give the script a #! line or run it through its interpreter".to_string(),
        ),
        _ => (EXIT_CANNOT_EXECUTE, e.to_string()),
    };
    CannotRun { code, message: format!("cannot run {shown:?}: {why}") }
}
