//! Argo mode: the same binary answers the contract of Argo Workflows' emissary, so an Argo install
//! whose executor image carries baton as `/bin/argoexec` (argo.Containerfile) runs every step pod on
//! baton unchanged.
//!
//! Selected when the binary is invoked under the name `argoexec` (argv[0]'s base name): Argo's
//! controller runs `/var/run/argo/argoexec emissary … -- CMD` in every main container, user sidecar
//! and container-set member, and upstream's `init` copied that file from `argoexec` on the image's
//! PATH, i.e. from baton. `emissary` and `kill` are answered here; every other subcommand (`init`,
//! `wait`, `resource`, `data`, `agent`, `artifact …`, `version`, …) is handed to the upstream
//! argoexec unchanged. See docs/argo.md.

mod args;
mod files;
mod flags;
mod gotar;
mod outputs;
mod ready;
mod run;
mod subcommands;
mod template;
mod wait;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Argo's exit code for the emissary's own failures; the controller marks the node Error.
pub const EXIT_FAILED: i32 = 64;

/// The shared folder (`/var/run/argo`); tests point it elsewhere.
pub const ENV_DIR: &str = "BATON_ARGO_DIR";
pub const DEFAULT_DIR: &str = "/var/run/argo";
/// Where the sentence of a failure goes, as Argo writes it (the kubelet's default path).
pub const ENV_TERMINATION: &str = "BATON_ARGO_TERMINATION_PATH";
pub const DEFAULT_TERMINATION: &str = "/dev/termination-log";
/// Where the controller mounts offloaded values (`ARGO_TEMPLATE=offloaded`).
pub const ENV_CONFIG_DIR: &str = "BATON_ARGO_CONFIG_DIR";
pub const DEFAULT_CONFIG_DIR: &str = "/argo/config";
/// The upstream argoexec that every other subcommand is handed to.
pub const ENV_UPSTREAM: &str = "BATON_ARGOEXEC_UPSTREAM";
pub const DEFAULT_UPSTREAM: &str = "/bin/argoexec-upstream";

/// The paths this mode uses, from the environment.
pub struct Env {
    pub dir: PathBuf,
    pub termination: PathBuf,
    pub config_dir: PathBuf,
    pub upstream: PathBuf,
}

impl Env {
    fn from_process() -> Env {
        let path = |var: &str, default: &str| {
            std::env::var_os(var).filter(|v| !v.is_empty()).map_or_else(|| PathBuf::from(default), PathBuf::from)
        };
        Env {
            dir: path(ENV_DIR, DEFAULT_DIR),
            termination: path(ENV_TERMINATION, DEFAULT_TERMINATION),
            config_dir: path(ENV_CONFIG_DIR, DEFAULT_CONFIG_DIR),
            upstream: path(ENV_UPSTREAM, DEFAULT_UPSTREAM),
        }
    }
}

/// The Argo mode's exit code when this invocation is Argo's; None when it is baton's own.
pub fn dispatch() -> Option<i32> {
    let args: Vec<OsString> = std::env::args_os().collect();
    let by_name = args.first().and_then(|a| Path::new(a).file_name()).is_some_and(|n| n == "argoexec");
    by_name.then(|| main(&args))
}

fn main(args: &[OsString]) -> i32 {
    let env = Env::from_process();
    match flags::parse(&args[1..]) {
        flags::Invocation::Emissary(command) => run::emissary(command, &env),
        flags::Invocation::EmissaryHelp => {
            eprint!("{}", flags::USAGE);
            0
        }
        flags::Invocation::BadEmissary(sentence) => run::refuse(&sentence, &env),
        flags::Invocation::Kill(args) => subcommands::kill(&args),
        flags::Invocation::Delegate => subcommands::delegate(args, &env),
    }
}
