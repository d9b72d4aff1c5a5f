//! The exit record: one compact JSON object that is both a step's end marker in the shared directory
//! and its container's termination message.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::layout::PROTOCOL_VERSION;

/// Exit code for a run that exceeded `--timeout` (as GNU timeout).
pub const EXIT_TIMED_OUT: i32 = 124;
/// Exit code for baton's own failures: bad options, wait timeout, lost predecessor, results errors.
pub const EXIT_BATON_FAILED: i32 = 125;
/// Exit code when the command exists but cannot be executed.
pub const EXIT_CANNOT_EXECUTE: i32 = 126;
/// Exit code when the command is not found.
pub const EXIT_NOT_FOUND: i32 = 127;
/// A child killed by signal N gives 128 + N.
pub const EXIT_SIGNAL_BASE: i32 = 128;

/// Why a step ended. The wire form is the variant name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Reason {
    /// The command exited 0.
    Completed,
    /// The command exited non-zero or was killed by a signal.
    Failed,
    /// The command failed but `--on-error continue` let the step succeed.
    Continued,
    /// A required predecessor did not succeed, so the command never ran.
    Skipped,
    /// SIGTERM/SIGINT/SIGHUP/SIGQUIT arrived while waiting; the command never ran.
    Cancelled,
    /// `--timeout` expired and the command was stopped.
    TimedOut,
    /// `--wait-timeout` expired before the start condition was met.
    WaitTimedOut,
    /// A predecessor's wrapper died without writing its record.
    PredecessorLost,
    /// The command could not be started (not found, not executable).
    CannotRun,
    /// The results could not be collected or did not fit the termination message.
    ResultsError,
    /// A sidecar (`--until`) was stopped because the steps it serves ended.
    Stopped,
}

impl Reason {
    pub const ALL: [Reason; 11] = [
        Reason::Completed,
        Reason::Failed,
        Reason::Continued,
        Reason::Skipped,
        Reason::Cancelled,
        Reason::TimedOut,
        Reason::WaitTimedOut,
        Reason::PredecessorLost,
        Reason::CannotRun,
        Reason::ResultsError,
        Reason::Stopped,
    ];

    /// Whether a plain `--after STEP` lets its successor run.
    pub fn is_success(self) -> bool {
        matches!(self, Reason::Completed | Reason::Continued | Reason::Stopped)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Completed => "Completed",
            Reason::Failed => "Failed",
            Reason::Continued => "Continued",
            Reason::Skipped => "Skipped",
            Reason::Cancelled => "Cancelled",
            Reason::TimedOut => "TimedOut",
            Reason::WaitTimedOut => "WaitTimedOut",
            Reason::PredecessorLost => "PredecessorLost",
            Reason::CannotRun => "CannotRun",
            Reason::ResultsError => "ResultsError",
            Reason::Stopped => "Stopped",
        }
    }

    pub fn parse(text: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `{"baton":1,"step":…,"exitCode":…,"reason":…,"startedAt":…,"finishedAt":…,"results":{…},"error":…,"usage":{…}}`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExitRecord {
    /// Protocol version, always present: it is how a reader tells a baton record from other text.
    pub baton: u32,
    /// The step's name; null for an unnamed step.
    pub step: Option<String>,
    /// The command's exit code (128+N for signal N); null when the command never ran.
    pub exit_code: Option<i32>,
    pub reason: Reason,
    /// When the command really started (after waiting); null when it never ran.
    pub started_at: Option<String>,
    pub finished_at: String,
    /// Result name → value. Empty when the results travel compressed in `results_deflate`.
    #[serde(default)]
    pub results: BTreeMap<String, String>,
    /// The results object as compact JSON, raw DEFLATE, standard base64 (padded); see `message`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results_deflate: Option<String>,
    /// One sentence when something went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What the command cost, when it ran: last, so a kubelet cut takes it first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

/// What a step's command used, from `getrusage(RUSAGE_CHILDREN)` once it and everything it left
/// behind were reaped: `{"userCpuMs":…,"systemCpuMs":…,"maxRssKiB":…}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// CPU time in user mode, milliseconds, all its processes together.
    #[serde(rename = "userCpuMs")]
    pub user_cpu_ms: u64,
    /// CPU time in the kernel, milliseconds.
    #[serde(rename = "systemCpuMs")]
    pub system_cpu_ms: u64,
    /// The largest resident set of any one of its processes, KiB.
    #[serde(rename = "maxRssKiB")]
    pub max_rss_kib: u64,
}

impl ExitRecord {
    pub fn new(step: Option<String>, reason: Reason, finished_at: String) -> Self {
        ExitRecord {
            baton: PROTOCOL_VERSION,
            step,
            exit_code: None,
            reason,
            started_at: None,
            finished_at,
            results: BTreeMap::new(),
            results_deflate: None,
            error: None,
            usage: None,
        }
    }

    /// Compact JSON, the form written to files.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an exit record always serializes")
    }
}

/// The exit code of a raw wait status's outcome: the code itself, or 128+N for a signal death.
pub fn exit_code_for_signal(signal: i32) -> i32 {
    EXIT_SIGNAL_BASE + signal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_form_has_the_documented_field_order_and_nulls() {
        let mut r = ExitRecord::new(Some("build".into()), Reason::Completed, "2026-11-23T16:00:42.123Z".into());
        r.exit_code = Some(0);
        r.started_at = Some("2026-11-23T16:00:41.000Z".into());
        r.results.insert("digest".into(), "sha256:abc".into());
        assert_eq!(
            r.to_json(),
            r#"{"baton":1,"step":"build","exitCode":0,"reason":"Completed","startedAt":"2026-11-23T16:00:41.000Z","finishedAt":"2026-11-23T16:00:42.123Z","results":{"digest":"sha256:abc"}}"#
        );
        r.usage = Some(Usage { user_cpu_ms: 210, system_cpu_ms: 12, max_rss_kib: 65800 });
        assert!(r.to_json().ends_with(r#","usage":{"userCpuMs":210,"systemCpuMs":12,"maxRssKiB":65800}}"#), "{}", r.to_json());
        let never = ExitRecord::new(None, Reason::Skipped, "2026-11-23T16:00:42.123Z".into());
        assert_eq!(
            never.to_json(),
            r#"{"baton":1,"step":null,"exitCode":null,"reason":"Skipped","startedAt":null,"finishedAt":"2026-11-23T16:00:42.123Z","results":{}}"#
        );
    }

    #[test]
    fn every_reason_round_trips_and_only_three_succeed() {
        for r in Reason::ALL {
            assert_eq!(Reason::parse(r.as_str()), Some(r));
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{r}\""));
        }
        let ok: Vec<_> = Reason::ALL.into_iter().filter(|r| r.is_success()).collect();
        assert_eq!(ok, [Reason::Completed, Reason::Continued, Reason::Stopped]);
    }
}
