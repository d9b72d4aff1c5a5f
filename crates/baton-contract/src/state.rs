//! `state.json`: what a living wrapper is doing now, for `baton status` and for humans.
//! Ended and lost steps have no state of their own here: `exit.json` and the `lock` tell those.

use serde::{Deserialize, Serialize};

/// The phases of a living wrapper.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Waiting for its start condition.
    Waiting,
    /// The command runs.
    Running,
    /// Stopped at a breakpoint after a failure, until `baton resume`.
    Paused,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepState {
    pub baton: u32,
    pub step: String,
    pub state: Phase,
    /// When this phase began (RFC 3339, milliseconds).
    pub since: String,
    /// The wrapper's pid, in its own container's PID namespace.
    pub pid: u32,
    /// The command's pid (same namespace), while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child_pid: Option<u32>,
    /// What the wrapper still waits for: `step build`, `file /path`, `nonempty /path`, `gate`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting_for: Vec<String>,
    /// Awaited steps that no baton has claimed yet: a typo in `--after`, or a step that is late.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_started: Vec<String>,
    /// While paused: the exit code the command failed with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}
