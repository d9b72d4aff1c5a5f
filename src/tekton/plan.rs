//! The step's plan: the command line checked and every path resolved before anything waits or runs.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use baton_contract::duration;

use super::files;
use super::flags::{Flags, RESULTS_IN_SIDECAR_LOGS, RESULTS_IN_TERMINATION_MESSAGE};
use super::message::{KUBELET_POD_BUDGET, TEKTON_LIMIT};
use super::when::{self, WhenExpression};

/// The TERM-then-KILL grace when neither BATON_GRACE nor anything else says otherwise.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// Validated options, with every path resolved. Everything that can be wrong is found here.
pub struct Plan {
    pub root: PathBuf,
    pub command: Vec<OsString>,
    pub wait_files: Vec<PathBuf>,
    pub wait_content: bool,
    pub post_file: Option<PathBuf>,
    pub termination_path: PathBuf,
    pub results: Vec<String>,
    pub step_results: Vec<String>,
    pub metadata_dir: Option<PathBuf>,
    pub timeout: Option<Duration>,
    pub negative_timeout: bool,
    pub grace: Duration,
    pub continue_on_error: bool,
    pub stdout: Option<PathBuf>,
    pub stderr: Option<PathBuf>,
    pub breakpoint: bool,
    pub debug_before_step: bool,
    pub compress: bool,
    /// `-result_from termination-message` (the default); false: `sidecar-logs`, where the results
    /// stay in their files for Tekton's results sidecar and only the internal keys go in the message.
    pub results_in_message: bool,
    /// `-when_expressions`: all must hold, or the step is skipped.
    pub when: Vec<WhenExpression>,
    /// The message budget: Tekton's 4096, or the kubelet's smaller share in pods of 4+ containers.
    pub limit: usize,
}

impl Plan {
    pub fn new(flags: Flags, root: &Path) -> Result<Plan, String> {
        if !flags.unsupported.is_empty() {
            return Err(format!(
                "{}; use Tekton's own entrypoint image for TaskRuns that need it",
                flags.unsupported.join("; ")
            ));
        }
        if let Some(extra) = flags.positional.first() {
            return Err(format!(
                "unexpected argument {:?} before --: the command and its arguments go after -entrypoint CMD --",
                extra.to_string_lossy()
            ));
        }
        let continue_on_error = match flags.on_error.as_str() {
            "" | "stopAndFail" => false,
            "continue" => true,
            other => return Err(format!("invalid -on_error {other:?}: use continue or stopAndFail")),
        };
        let results_in_message = match flags.result_from.as_deref() {
            None | Some(RESULTS_IN_TERMINATION_MESSAGE) => true,
            Some(RESULTS_IN_SIDECAR_LOGS) => false,
            Some(other) => {
                return Err(format!(
                    "invalid -result_from {other:?}: use {RESULTS_IN_TERMINATION_MESSAGE} or {RESULTS_IN_SIDECAR_LOGS}"
                ))
            }
        };
        // Tekton: log.Fatal before anything runs.
        let when = when::parse(&flags.when_expressions)?;
        let mut command = match flags.entrypoint.as_str() {
            "" => platform_command()?.into_iter().map(OsString::from).collect(),
            ep => vec![OsString::from(ep)],
        };
        command.extend(flags.command.iter().cloned());
        if command.first().is_none_or(|c| c.is_empty()) {
            return Err("the command is empty: pass -entrypoint CMD".into());
        }
        let grace = match std::env::var("BATON_GRACE") {
            Ok(text) => duration::parse(&text).map_err(|e| format!("BATON_GRACE: {e}"))?,
            Err(_) => DEFAULT_GRACE,
        };
        let nonempty = |s: &str| (!s.is_empty()).then(|| PathBuf::from(s));
        let list = |s: &str| s.split(',').filter(|n| !n.is_empty()).map(str::to_string).collect::<Vec<_>>();
        Ok(Plan {
            root: root.to_path_buf(),
            command,
            wait_files: list(&flags.wait_file).into_iter().map(PathBuf::from).collect(),
            wait_content: flags.wait_file_content,
            post_file: nonempty(&flags.post_file),
            termination_path: flags.termination_path.as_deref().map_or_else(|| root.join("termination"), PathBuf::from),
            results: list(&flags.results),
            step_results: list(&flags.step_results),
            metadata_dir: nonempty(&flags.step_metadata_dir),
            timeout: flags.timeout(),
            negative_timeout: flags.timeout_ns < 0,
            grace,
            continue_on_error,
            stdout: nonempty(&flags.stdout_path),
            stderr: nonempty(&flags.stderr_path),
            breakpoint: flags.breakpoint_on_failure,
            debug_before_step: flags.debug_before_step,
            compress: flags.compress_termination_message,
            results_in_message,
            when,
            limit: message_limit(root),
        })
    }

    pub fn post_with(&self, suffix: &str) -> PathBuf {
        files::with_suffix(self.post_file.as_deref().unwrap_or(Path::new("")), suffix)
    }
}

/// The platform string Tekton's entrypoint looks up in TEKTON_PLATFORM_COMMANDS (os/arch[/variant]).
pub fn platform() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "linux/amd64",
        "aarch64" => "linux/arm64/v8",
        "arm" => "linux/arm/v7",
        "x86" => "linux/386",
        "powerpc64" => "linux/ppc64le",
        "s390x" => "linux/s390x",
        "riscv64" => "linux/riscv64",
        _ => "linux/unknown",
    }
}

/// The command for `platform` in a TEKTON_PLATFORM_COMMANDS map, falling back to the platform
/// without its last part (the CPU variant).
pub fn select_platform(commands: &BTreeMap<String, Vec<String>>, platform: &str) -> Result<Vec<String>, String> {
    if let Some(cmd) = commands.get(platform) {
        return Ok(cmd.clone());
    }
    let without_variant = &platform[..platform.rfind('/').unwrap_or(platform.len())];
    commands
        .get(without_variant)
        .cloned()
        .ok_or_else(|| format!("could not find command for platform {platform:?} in TEKTON_PLATFORM_COMMANDS"))
}

fn platform_command() -> Result<Vec<String>, String> {
    let env = std::env::var("TEKTON_PLATFORM_COMMANDS").unwrap_or_default();
    select_platform(&platform_commands(&env)?, platform())
}

/// TEKTON_PLATFORM_COMMANDS read as upstream's `json.Unmarshal` into `map[string][]string` reads it:
/// `null` for a platform is no command (an image with no ENTRYPOINT: the step's args run alone).
fn platform_commands(env: &str) -> Result<BTreeMap<String, Vec<String>>, String> {
    let invalid = |why: String| {
        format!("no -entrypoint, and TEKTON_PLATFORM_COMMANDS is not a JSON map of platform to command ({why})")
    };
    let value: serde_json::Value = serde_json::from_str(env).map_err(|e| invalid(e.to_string()))?;
    let mut commands = BTreeMap::new();
    for (platform, argv) in value.as_object().ok_or_else(|| invalid("not an object".into()))? {
        if argv.is_null() {
            commands.insert(platform.clone(), Vec::new());
            continue;
        }
        let argv = argv.as_array().ok_or_else(|| invalid(format!("{platform}: not an array")))?;
        let argv: Option<Vec<String>> = argv.iter().map(|a| a.as_str().map(str::to_string)).collect();
        commands.insert(platform.clone(), argv.ok_or_else(|| invalid(format!("{platform}: not an array of strings")))?);
    }
    Ok(commands)
}

/// Tekton checks 4096 bytes, but the kubelet keeps only 12288 / (containers in the pod) of each
/// message. The containers: the steps (`<root>/steps/<i>` links made by `init`), `prepare`, and
/// `place-scripts` when there are scripts; BATON_TEKTON_CONTAINERS says the real number (sidecars).
fn message_limit(root: &Path) -> usize {
    let containers = std::env::var("BATON_TEKTON_CONTAINERS").ok().and_then(|v| v.parse::<usize>().ok());
    let containers = containers.filter(|n| *n > 0).unwrap_or_else(|| {
        let count = |dir: &Path, pick: &dyn Fn(&str) -> bool| {
            fs::read_dir(dir).map_or(0, |d| d.flatten().filter(|e| e.file_name().to_str().is_some_and(pick)).count())
        };
        let steps = count(&root.join("steps"), &|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        let scripts = count(&root.join("scripts"), &|n| !n.starts_with('.'));
        steps.max(1) + 1 + usize::from(scripts > 0)
    });
    TEKTON_LIMIT.min(KUBELET_POD_BUDGET / containers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_fallback_drops_the_variant() {
        let map: BTreeMap<String, Vec<String>> = [
            ("linux/arm64".to_string(), vec!["/arm".to_string()]),
            ("linux/amd64".to_string(), vec!["/amd".to_string(), "x".to_string()]),
        ]
        .into();
        assert_eq!(select_platform(&map, "linux/amd64").unwrap(), ["/amd", "x"]);
        assert_eq!(select_platform(&map, "linux/arm64/v8").unwrap(), ["/arm"]);
        assert!(select_platform(&map, "linux/s390x").unwrap_err().contains("linux/s390x"));
    }

    #[test]
    fn a_platform_without_a_command_is_an_empty_one_as_upstream_reads_it() {
        let map = platform_commands(r#"{"linux/amd64": null, "linux/arm64": ["/bin/sh"]}"#).unwrap();
        assert_eq!(map["linux/amd64"], Vec::<String>::new());
        assert_eq!(map["linux/arm64"], ["/bin/sh"]);
        assert!(platform_commands(r#"{"linux/amd64": "sh"}"#).unwrap_err().contains("linux/amd64: not an array"));
    }
}
