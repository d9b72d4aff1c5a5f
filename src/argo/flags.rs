//! argoexec's command line, as Argo's controller writes it: `argoexec SUBCOMMAND [--loglevel L]
//! [--log-format F] [--gloglevel N] [-- ARGS…]` (cobra syntax: `--flag value` or `--flag=value`,
//! the log flags also before the subcommand). Only what baton answers itself is parsed; anything
//! else goes to the upstream argoexec exactly as it came.

use std::ffi::OsString;

/// argoexec's persistent log flags: accepted (baton's own messages are plain sentences) and ignored.
const LOG_FLAGS: &[&str] = &["loglevel", "log-format", "gloglevel"];

#[derive(Debug, PartialEq, Eq)]
pub enum Invocation {
    /// `emissary [flags] -- CMD…`: the command to run.
    Emissary(Vec<OsString>),
    /// `emissary --help`.
    EmissaryHelp,
    /// `emissary` with a command line baton cannot run: one sentence.
    BadEmissary(String),
    /// `kill SIGNAL PID`: the arguments after the subcommand.
    Kill(Vec<String>),
    /// Anything else: the upstream argoexec's.
    Delegate,
}

/// How many arguments a log flag at `args[0]` takes (1 or 2), or None when it is not one.
fn log_flag(args: &[OsString]) -> Option<usize> {
    let name = args.first()?.to_str()?.strip_prefix("--")?;
    if name.split_once('=').is_some_and(|(n, _)| LOG_FLAGS.contains(&n)) {
        return Some(1);
    }
    (LOG_FLAGS.contains(&name) && args.len() > 1).then_some(2)
}

pub fn parse(args: &[OsString]) -> Invocation {
    // Log flags may come before the subcommand; any other flag there is the upstream's business.
    let mut i = 0;
    while let Some(n) = log_flag(&args[i..]) {
        i += n;
    }
    match args.get(i).and_then(|a| a.to_str()) {
        Some("emissary") => emissary(&args[i + 1..]),
        Some("kill") => kill(&args[i + 1..]),
        _ => Invocation::Delegate,
    }
}

fn emissary(args: &[OsString]) -> Invocation {
    let mut i = 0;
    loop {
        let Some(arg) = args.get(i) else {
            return Invocation::BadEmissary(
                "argoexec emissary was given no command: write it after --, as in argoexec emissary -- CMD ARGS".into(),
            );
        };
        if arg == "--" {
            i += 1;
            break;
        }
        if let Some(n) = log_flag(&args[i..]) {
            i += n;
            continue;
        }
        match arg.to_str() {
            Some("-h" | "--help") => return Invocation::EmissaryHelp,
            Some(flag) if flag.starts_with('-') => {
                return Invocation::BadEmissary(format!(
                    "argoexec emissary: unknown flag {flag}; it takes --loglevel, --log-format and --gloglevel, \
                     then -- and the command"
                ))
            }
            _ => break, // the command, without a `--` before it
        }
    }
    let command = args[i..].to_vec();
    if command.first().is_none_or(|c| c.is_empty()) {
        return Invocation::BadEmissary(
            "argoexec emissary was given no command (or an empty one) after --: check the container's command".into(),
        );
    }
    Invocation::Emissary(command)
}

fn kill(args: &[OsString]) -> Invocation {
    let mut positional = Vec::new();
    let mut i = 0;
    while i < args.len() {
        if let Some(n) = log_flag(&args[i..]) {
            i += n;
            continue;
        }
        positional.push(args[i].to_string_lossy().into_owned());
        i += 1;
    }
    Invocation::Kill(positional)
}

/// The help text (`argoexec emissary --help`).
pub const USAGE: &str = "\
Usage: argoexec emissary [--loglevel L] [--log-format F] [--gloglevel N] -- CMD [ARGS...]
       argoexec kill SIGNAL PID
       argoexec <any other subcommand>   handed unchanged to $BATON_ARGOEXEC_UPSTREAM
                                         (default /bin/argoexec-upstream)

baton's Argo mode: a drop-in for Argo Workflows' emissary (docs/argo.md). Runs CMD for the
container named by ARGO_CONTAINER_NAME after its container-set dependencies, forwards every signal
to its process group, writes /var/run/argo/ctr/<name>/exitcode atomically, and the outputs of the
container named main. The log flags are accepted and ignored.

Environment: ARGO_CONTAINER_NAME, ARGO_TEMPLATE, ARGO_CONTAINER_ARGS_FILE,
ARGO_INCLUDE_SCRIPT_OUTPUT, ARGO_DEBUG_PAUSE_BEFORE, ARGO_DEBUG_PAUSE_AFTER,
ARGO_TERMINATION_GRACE_PERIOD_SECONDS; baton's own: BATON_ARGO_DIR (default /var/run/argo),
BATON_ARGO_TERMINATION_PATH (default /dev/termination-log), BATON_ARGO_CONFIG_DIR (default
/argo/config), BATON_ARGOEXEC_UPSTREAM, BATON_INOTIFY=off.
";

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_controllers_command_line() {
        let parsed = parse(&args(&[
            "emissary",
            "--loglevel",
            "info",
            "--log-format",
            "text",
            "--gloglevel",
            "0",
            "--",
            "sh",
            "-c",
            "echo hi",
        ]));
        assert_eq!(parsed, Invocation::Emissary(args(&["sh", "-c", "echo hi"])));
    }

    #[test]
    fn log_flags_anywhere_before_the_command() {
        let parsed = parse(&args(&["--loglevel=debug", "emissary", "--gloglevel=2", "--", "--", "x"]));
        assert_eq!(parsed, Invocation::Emissary(args(&["--", "x"])));
        assert_eq!(
            parse(&args(&["emissary", "true", "--loglevel"])),
            Invocation::Emissary(args(&["true", "--loglevel"]))
        );
    }

    #[test]
    fn emissary_mistakes_are_sentences() {
        let bad = |list: &[&str]| match parse(&args(list)) {
            Invocation::BadEmissary(s) => s,
            other => panic!("{list:?}: {other:?}"),
        };
        assert!(bad(&["emissary"]).contains("no command"));
        assert!(bad(&["emissary", "--"]).contains("no command"));
        assert!(bad(&["emissary", "--", ""]).contains("empty"));
        assert!(bad(&["emissary", "--verbose", "--", "x"]).contains("unknown flag --verbose"));
        assert_eq!(parse(&args(&["emissary", "--help"])), Invocation::EmissaryHelp);
    }

    #[test]
    fn kill_and_delegation() {
        assert_eq!(parse(&args(&["kill", "15", "1"])), Invocation::Kill(vec!["15".into(), "1".into()]));
        assert_eq!(
            parse(&args(&["--loglevel", "info", "kill", "9", "--loglevel", "info", "7"])),
            Invocation::Kill(vec!["9".into(), "7".into()])
        );
        for list in [
            &[][..],
            &["init", "--loglevel", "info"],
            &["wait"],
            &["version"],
            &["--kubeconfig=/k", "emissary"],
            &["artifact", "delete"],
        ] {
            assert_eq!(parse(&args(list)), Invocation::Delegate, "{list:?}");
        }
    }
}
