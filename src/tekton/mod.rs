//! Tekton mode: the same binary answers the contract of Tekton's entrypoint
//! (`/ko-app/entrypoint`, copied to `/tekton/bin/entrypoint`), so a Tekton install that points its
//! controller's entrypoint image at baton runs every TaskRun pod on baton unchanged.
//!
//! Selected when the binary is invoked as `entrypoint` (argv[0]'s base name), or when its first
//! argument is one of Tekton's single-dash flags (`-wait_file`, `-entrypoint`, `-post_file`, …).
//! Then the command line is Tekton's (Go flag syntax), the subcommands are Tekton's (`init`, `cp`,
//! `step-init`, `decode-script`), and the files and messages are byte-compatible with what Tekton's
//! controller reads. See docs/tekton.md.

mod artifacts;
mod credentials;
mod debug;
mod files;
mod flags;
mod gourl;
mod hermetic;
mod message;
mod plan;
mod report;
mod resultref;
mod run;
mod stepresults;
mod subcommands;
mod when;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The Tekton folder (`/tekton`); tests point it elsewhere.
pub const ENV_ROOT: &str = "BATON_TEKTON_ROOT";
pub const DEFAULT_ROOT: &str = "/tekton";

/// Where the controller mounts the credential secrets, and the step's own credentials folder.
const SECRETS_DIR: &str = "creds-secrets";
const CREDS_DIR: &str = "creds";

/// Exit code of a command-line error, as Go's flag package exits.
const EXIT_USAGE: i32 = 2;

/// The Tekton mode's exit code when this invocation is Tekton's; None when it is baton's own.
pub fn dispatch() -> Option<i32> {
    let args: Vec<OsString> = std::env::args_os().collect();
    let by_name = args.first().and_then(|a| Path::new(a).file_name()).is_some_and(|n| n == "entrypoint");
    let by_flag = args.get(1).and_then(|a| a.to_str()).is_some_and(flags::is_tekton_flag);
    if !(by_name || by_flag) {
        return None;
    }
    Some(main(&args[1..]))
}

fn root() -> PathBuf {
    std::env::var_os(ENV_ROOT).filter(|r| !r.is_empty()).map_or_else(|| PathBuf::from(DEFAULT_ROOT), PathBuf::from)
}

fn main(args: &[OsString]) -> i32 {
    let root = root();
    let parsed = match flags::parse(args) {
        Ok(f) => f,
        Err(flags::ParseError::Help) => {
            eprint!("{}", flags::USAGE);
            return 0;
        }
        Err(flags::ParseError::Usage(sentence)) => return refuse(&root, args, &sentence, EXIT_USAGE),
    };
    // Tekton reads the credential secrets while it parses the flags: a missing one stops the step
    // before anything is written or run.
    let credentials = match credentials::load(&parsed.credentials, &root.join(SECRETS_DIR), &root.join(CREDS_DIR)) {
        Ok(c) => c,
        Err(credentials::LoadError::Flag(sentence)) => return refuse(&root, args, &sentence, EXIT_USAGE),
        Err(credentials::LoadError::Secret(sentence)) => return refuse(&root, args, &sentence, report::EXIT_FAILED),
    };
    if let Some(code) = subcommands::process(&parsed.positional, &root) {
        return code;
    }
    let hint = (!parsed.post_file.is_empty()).then(|| parsed.post_file.clone());
    run::run(parsed, credentials, &root, hint)
}

/// One sentence, and the `.err` post file when the arguments name one, so that the steps after this
/// one skip instead of waiting until the TaskRun times out.
fn refuse(root: &Path, args: &[OsString], sentence: &str, code: i32) -> i32 {
    eprintln!("baton: {sentence}");
    if let Some(post) = flags::find_post_file(args) {
        let _ = files::write_post(root, &files::with_suffix(Path::new(&post), ".err"), "");
    }
    code
}
