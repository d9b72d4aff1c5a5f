//! Tekton's command line, parsed the way Go's `flag` package parses it: `-x v`, `-x=v`, `--x v`,
//! bool flags set by their bare name or `-x=true|false`, the last of a repeated flag wins, parsing
//! stops at the first argument that is not a flag, and everything after the first `--` (when it is
//! not the very first argument) is the command's.

use std::ffi::OsString;
use std::time::Duration;

/// Where `-result_from` says results go: the termination message (the default), or files that
/// Tekton's results sidecar prints to its log.
pub const RESULTS_IN_TERMINATION_MESSAGE: &str = "termination-message";
pub const RESULTS_IN_SIDECAR_LOGS: &str = "sidecar-logs";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Bool,
    Duration,
}

/// Every flag of Tekton's entrypoint (v1.15: cmd/entrypoint/main.go, and the credential flags that
/// pkg/credentials/{gitcreds,dockercreds} add), -enable_spire included, so that it is refused by
/// name rather than called unknown.
const FLAGS: &[(&str, Kind)] = &[
    ("entrypoint", Kind::Text),
    ("wait_file", Kind::Text),
    ("wait_file_content", Kind::Bool),
    ("post_file", Kind::Text),
    ("termination_path", Kind::Text),
    ("results", Kind::Text),
    ("step_results", Kind::Text),
    ("step_metadata_dir", Kind::Text),
    ("timeout", Kind::Duration),
    ("on_error", Kind::Text),
    ("stdout_path", Kind::Text),
    ("stderr_path", Kind::Text),
    ("breakpoint_on_failure", Kind::Bool),
    ("debug_before_step", Kind::Bool),
    ("result_from", Kind::Text),
    ("compress_termination_message", Kind::Bool),
    ("when_expressions", Kind::Text),
    // Known, not implemented: refused when it would change what happens.
    ("enable_spire", Kind::Bool),
    ("spire_socket_path", Kind::Text),
    // Repeatable: each occurrence adds one secret (Go flag.Value).
    ("basic-git", Kind::Text),
    ("ssh-git", Kind::Text),
    ("basic-docker", Kind::Text),
    ("docker-config", Kind::Text),
    ("docker-cfg", Kind::Text),
];

/// What the command line asked for. Text flags keep Tekton's defaults; empty means "not given".
#[derive(Debug, Default)]
pub struct Flags {
    pub entrypoint: String,
    pub wait_file: String,
    pub wait_file_content: bool,
    pub post_file: String,
    /// None: the default, `<tekton root>/termination`.
    pub termination_path: Option<String>,
    pub results: String,
    pub step_results: String,
    pub step_metadata_dir: String,
    /// Go duration in nanoseconds; may be negative (Tekton refuses that only once the step starts).
    pub timeout_ns: i128,
    pub on_error: String,
    pub stdout_path: String,
    pub stderr_path: String,
    pub breakpoint_on_failure: bool,
    pub debug_before_step: bool,
    /// None: the default, `termination-message`.
    pub result_from: Option<String>,
    pub compress_termination_message: bool,
    /// `-when_expressions` (JSON, the last one given); empty: none.
    pub when_expressions: String,
    /// The credential flags in the order given: (flag name, `secret=url` or secret name).
    pub credentials: Vec<(String, String)>,
    /// Flags given that baton does not implement, each with the sentence that says so.
    pub unsupported: Vec<String>,
    /// Arguments after the flags and before `--` (Go's `flag.Args()`): a subcommand, or a mistake.
    pub positional: Vec<OsString>,
    /// Arguments after the first `--`.
    pub command: Vec<OsString>,
}

impl Flags {
    pub fn timeout(&self) -> Option<Duration> {
        (self.timeout_ns > 0).then(|| Duration::from_nanos(self.timeout_ns.min(u64::MAX as i128) as u64))
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum ParseError {
    /// `-h` / `-help`: print the usage, exit 0 (as Go's flag package does).
    Help,
    /// One sentence; exit 2 (as Go's flag package does).
    Usage(String),
}

/// Whether `arg` is one of Tekton's flags written with a single dash (`-wait_file`, `-timeout=1s`):
/// the sign that a `baton` binary was invoked the way Tekton invokes its entrypoint.
pub fn is_tekton_flag(arg: &str) -> bool {
    let Some(rest) = arg.strip_prefix('-') else { return false };
    if rest.starts_with('-') {
        return false;
    }
    let name = rest.split_once('=').map_or(rest, |(n, _)| n);
    FLAGS.iter().any(|(n, _)| *n == name)
}

/// Best effort, for error paths: the `-post_file` value, if the arguments say one.
pub fn find_post_file(args: &[OsString]) -> Option<String> {
    let mut found = None;
    let mut i = 0;
    while i < args.len() {
        let Some(a) = args[i].to_str() else { break };
        if a == "--" {
            break;
        }
        let bare = a.trim_start_matches('-');
        if let Some(v) = bare.strip_prefix("post_file=") {
            found = Some(v.to_string());
        } else if bare == "post_file" && a.starts_with('-') {
            found = args.get(i + 1).and_then(|v| v.to_str()).map(str::to_string);
            i += 1;
        }
        i += 1;
    }
    found.filter(|p| !p.is_empty())
}

/// Splits at the first `--` as Tekton does (only when it is not the first argument), then parses
/// the flags before it.
pub fn parse(args: &[OsString]) -> Result<Flags, ParseError> {
    let (flag_args, command) = match args.iter().position(|a| a == "--") {
        Some(i) if i > 0 => (&args[..i], args[i + 1..].to_vec()),
        _ => (args, Vec::new()),
    };
    let mut flags = Flags { command, ..Flags::default() };
    let mut i = 0;
    while i < flag_args.len() {
        let Some(s) = flag_args[i].to_str() else { break };
        if s.len() < 2 || !s.starts_with('-') {
            break;
        }
        let mut name = &s[1..];
        if let Some(rest) = name.strip_prefix('-') {
            if rest.is_empty() {
                i += 1; // a first-argument `--` ends the flags
                break;
            }
            name = rest;
        }
        if name.is_empty() || name.starts_with('-') || name.starts_with('=') {
            return Err(ParseError::Usage(format!("bad flag syntax: {s}")));
        }
        i += 1;
        let (name, inline) = match name.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (name, None),
        };
        let Some(&(_, kind)) = FLAGS.iter().find(|(n, _)| *n == name) else {
            if name == "h" || name == "help" {
                return Err(ParseError::Help);
            }
            return Err(ParseError::Usage(format!(
                "flag provided but not defined: -{name} (not a flag of Tekton's entrypoint; see -help)"
            )));
        };
        let value = match (kind, inline) {
            (Kind::Bool, None) => "true".to_string(),
            (_, Some(v)) => v.to_string(),
            (_, None) => match flag_args.get(i) {
                Some(v) => {
                    i += 1;
                    v.to_str()
                        .ok_or_else(|| ParseError::Usage(format!("the value of -{name} is not valid UTF-8")))?
                        .to_string()
                }
                None => return Err(ParseError::Usage(format!("flag needs an argument: -{name}"))),
            },
        };
        set(&mut flags, name, kind, value)?;
    }
    flags.positional = flag_args[i..].to_vec();
    Ok(flags)
}

fn set(flags: &mut Flags, name: &str, kind: Kind, value: String) -> Result<(), ParseError> {
    let boolean = || {
        parse_bool(&value)
            .ok_or_else(|| ParseError::Usage(format!("invalid boolean value {value:?} for -{name}: parse error")))
    };
    match kind {
        Kind::Bool => {
            let on = boolean()?;
            match name {
                "wait_file_content" => flags.wait_file_content = on,
                "breakpoint_on_failure" => flags.breakpoint_on_failure = on,
                "debug_before_step" => flags.debug_before_step = on,
                "compress_termination_message" => flags.compress_termination_message = on,
                "enable_spire" => {
                    flags.unsupported.retain(|u| !u.starts_with("-enable_spire"));
                    if on {
                        flags.unsupported.push(
                            "-enable_spire (SPIRE signing of results, which needs a SPIRE agent's socket) is not \
                             implemented by baton's Tekton mode"
                                .to_string(),
                        );
                    }
                }
                _ => unreachable!("every bool flag is handled"),
            }
        }
        Kind::Duration => {
            flags.timeout_ns = baton_contract::duration::parse_go(&value)
                .map_err(|e| ParseError::Usage(format!("invalid value {value:?} for flag -{name}: {e}")))?;
        }
        Kind::Text => match name {
            "entrypoint" => flags.entrypoint = value,
            "wait_file" => flags.wait_file = value,
            "post_file" => flags.post_file = value,
            "termination_path" => flags.termination_path = Some(value),
            "results" => flags.results = value,
            "step_results" => flags.step_results = value,
            "step_metadata_dir" => flags.step_metadata_dir = value,
            "on_error" => flags.on_error = value,
            "stdout_path" => flags.stdout_path = value,
            "stderr_path" => flags.stderr_path = value,
            "result_from" => flags.result_from = Some(value),
            // Without -enable_spire the socket path changes nothing, in Tekton either.
            "spire_socket_path" => {}
            "when_expressions" => flags.when_expressions = value,
            creds => flags.credentials.push((creds.to_string(), value)),
        },
    }
    Ok(())
}

/// Go's `strconv.ParseBool`.
fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// The help text (`-help`).
pub const USAGE: &str = "\
Usage: entrypoint [FLAGS] -- [ARGS...]      (baton's Tekton mode: a drop-in for Tekton's entrypoint)
       entrypoint init SRC DST [STEP...] | cp SRC DST | step-init [STEP...] | decode-script FILE

  -entrypoint CMD               the command to run (else TEKTON_PLATFORM_COMMANDS, a JSON map
                                platform -> argv)
  -wait_file A,B,...            wait for these files, one after another; <file>.err skips the step
  -wait_file_content            also wait until they are not empty
  -post_file FILE               written when the step succeeded; FILE.err when it did not
  -termination_path FILE        the termination message (default /tekton/termination)
  -results NAMES                task results to report, files under /tekton/results
  -step_results NAMES           step results to report, files under <step_metadata_dir>/results
  -step_metadata_dir DIR        where the exitCode file goes (/tekton/run/<i>/status)
  -timeout DUR                  Go duration (1h2m3.5s); 0: none. SIGTERM to the command's group,
                                SIGKILL after BATON_GRACE (default 10s)
  -on_error continue|stopAndFail
  -stdout_path FILE, -stderr_path FILE   also append the command's output to these files
  -breakpoint_on_failure        on failure wait for <post_file>.breakpointexit
  -debug_before_step            wait for <post_file>.beforestepexit before running
  -result_from termination-message|sidecar-logs
                                sidecar-logs: results stay in their files for the results sidecar
  -compress_termination_message write `tknz:` + base64(raw DEFLATE) when that is smaller
  -when_expressions JSON        [{input, operator: in|notin, values} or {cel}]: unless all hold,
                                the step is skipped (exit 0, Reason Skipped)
  -basic-git SECRET=URL, -ssh-git SECRET=URL, -basic-docker SECRET=URL, -docker-config SECRET,
  -docker-cfg SECRET            credentials from /tekton/creds-secrets/SECRET into /tekton/creds
                                (then copied to $HOME); repeatable

Not implemented (refused with a sentence): -enable_spire. Environment: BATON_TEKTON_ROOT (default
/tekton), BATON_GRACE, BATON_TEKTON_CONTAINERS, TEKTON_HERMETIC=1 (no network for the command).
";

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn go_flag_forms() {
        let f = parse(&args(&[
            "-wait_file",
            "/a,/b",
            "--post_file=/p",
            "-wait_file_content",
            "-timeout",
            "1h2m3.5s",
            "-entrypoint",
            "-dash-is-a-value",
            "--",
            "x",
            "--",
            "-y",
        ]))
        .unwrap();
        assert_eq!(f.wait_file, "/a,/b");
        assert_eq!(f.post_file, "/p");
        assert!(f.wait_file_content);
        assert_eq!(f.timeout_ns, 3_723_500_000_000);
        assert_eq!(f.entrypoint, "-dash-is-a-value");
        assert_eq!(f.command, args(&["x", "--", "-y"]));
        assert!(f.positional.is_empty());
    }

    #[test]
    fn bools_last_wins_and_positional() {
        let f = parse(&args(&["-breakpoint_on_failure=false", "-results", "a", "-results", "b", "init", "x"])).unwrap();
        assert!(!f.breakpoint_on_failure);
        assert_eq!(f.results, "b");
        assert_eq!(f.positional, args(&["init", "x"]));
        assert_eq!(parse(&args(&["-", "x"])).unwrap().positional, args(&["-", "x"]));
        // A first-argument `--` is Go's terminator, not Tekton's split.
        assert_eq!(parse(&args(&["--", "cp", "a", "b"])).unwrap().positional, args(&["cp", "a", "b"]));
    }

    #[test]
    fn errors_are_sentences() {
        let usage = |list: &[&str]| match parse(&args(list)) {
            Err(ParseError::Usage(s)) => s,
            other => panic!("{list:?}: {other:?}"),
        };
        assert!(usage(&["-nope"]).starts_with("flag provided but not defined: -nope"));
        assert_eq!(usage(&["-post_file"]), "flag needs an argument: -post_file");
        assert_eq!(usage(&["---x"]), "bad flag syntax: ---x");
        assert_eq!(
            usage(&["-wait_file_content=yes"]),
            "invalid boolean value \"yes\" for -wait_file_content: parse error"
        );
        assert!(usage(&["-timeout", "1d"]).contains("unknown unit \"d\""));
        assert_eq!(parse(&args(&["-help"])).unwrap_err(), ParseError::Help);
        assert_eq!(parse(&args(&["-h"])).unwrap_err(), ParseError::Help);
    }

    #[test]
    fn unsupported_only_when_effective() {
        let f = parse(&args(&["-enable_spire=false", "-spire_socket_path", "x", "-when_expressions", "[]"])).unwrap();
        assert!(f.unsupported.is_empty(), "{:?}", f.unsupported);
        assert_eq!(f.when_expressions, "[]");
        let f = parse(&args(&["-enable_spire", "-enable_spire"])).unwrap();
        assert_eq!(f.unsupported.len(), 1, "{:?}", f.unsupported);
    }

    #[test]
    fn credential_flags_repeat_in_order() {
        // cmd/entrypoint/main.go: gitcreds.AddFlags, dockercreds.AddFlags (flag.Value: every occurrence).
        let f = parse(&args(&[
            "-basic-git=a=https://x",
            "-docker-config",
            "d",
            "--ssh-git",
            "s=github.com",
            "-basic-git",
            "b=https://y",
        ]))
        .unwrap();
        let got: Vec<(&str, &str)> = f.credentials.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            got,
            [
                ("basic-git", "a=https://x"),
                ("docker-config", "d"),
                ("ssh-git", "s=github.com"),
                ("basic-git", "b=https://y")
            ]
        );
    }

    #[test]
    fn secret_mask_file_is_not_a_flag_of_tekton() {
        // Only unmerged pull requests add it; v1.15's entrypoint has no such flag.
        assert!(!is_tekton_flag("-secret_mask_file"));
        match parse(&args(&["-secret_mask_file", "/m"])) {
            Err(ParseError::Usage(s)) => {
                assert!(s.starts_with("flag provided but not defined: -secret_mask_file"), "{s}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn dispatch_by_flag() {
        assert!(is_tekton_flag("-wait_file"));
        assert!(is_tekton_flag("-timeout=1s"));
        assert!(is_tekton_flag("-basic-git"));
        assert!(!is_tekton_flag("--wait_file"));
        assert!(!is_tekton_flag("--wait-file"));
        assert!(!is_tekton_flag("run"));
        assert!(!is_tekton_flag("-h"));
    }

    #[test]
    fn post_file_for_error_paths() {
        assert_eq!(find_post_file(&args(&["-bogus", "-post_file", "/p", "--", "-post_file", "/q"])), Some("/p".into()));
        assert_eq!(find_post_file(&args(&["--post_file=/r"])), Some("/r".into()));
        assert_eq!(find_post_file(&args(&["-x"])), None);
    }
}
