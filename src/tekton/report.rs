//! What a step reports, in the order Tekton's controller reads it: the outcome, the results and
//! artifacts read verbatim from their files, the internal keys, and the termination message.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::message::{
    self, RunResult, INTERNAL, KUBELET_POD_BUDGET, MAX_DECOMPRESSED, STEP_ARTIFACTS, STEP_RESULT, TASK_ARTIFACTS,
    TASK_RESULT, TEKTON_LIMIT,
};
use super::plan::Plan;
use crate::folder::{self, ReadError};

/// Tekton's exit code for everything that is not the command's own: skipped, timed out, and the
/// entrypoint's own errors (`log.Fatal`).
pub const EXIT_FAILED: i32 = 1;
/// Cancelled through the downward-API cancel file (Tekton: "like kill -9").
pub const EXIT_CANCELLED: i32 = 9;

/// How the step ended, in Tekton's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    /// The command failed with this code (128+N for signal N; 126/127 when it could not run).
    Failed(i32),
    /// `-on_error continue` and the command exited with this code.
    Continued(i32),
    /// A previous step failed (or was lost); `with_reason`: Reason=Skipped is reported (not for a
    /// debug-before-step "fail-continue").
    Skipped {
        with_reason: bool,
    },
    /// The step's `when` expressions do not all hold: Tekton's skip that succeeds (exit 0, the post
    /// file, exitCode 0, Reason=Skipped, no results).
    WhenSkipped,
    TimedOut,
    Cancelled,
    /// The entrypoint's own failure (Tekton: log.Fatal, exit 1).
    Error,
    /// The results could not be reported; the step fails with this code.
    ResultsFailed(i32),
}

impl Outcome {
    /// The outcome once the results could not be reported.
    pub fn without_results(self) -> Outcome {
        match self {
            Outcome::Succeeded | Outcome::Continued(_) | Outcome::Error => Outcome::ResultsFailed(EXIT_FAILED),
            Outcome::Failed(code) => Outcome::ResultsFailed(code),
            other => other,
        }
    }
}
/// Task results, step results, then step and task artifacts: files read verbatim (results with
/// invalid UTF-8 made valid as Tekton's two writes make them: `message::go_round_trip`); a missing
/// one is skipped.
pub fn collect(plan: &Plan) -> Result<(Vec<RunResult>, Vec<RunResult>), String> {
    let step_dir = plan.metadata_dir.clone().unwrap_or_default().join("results");
    let mut results = Vec::new();
    let mut problems = Vec::new();
    for (dir, names, kind) in
        [(plan.root.join("results"), &plan.results, TASK_RESULT), (step_dir, &plan.step_results, STEP_RESULT)]
    {
        for name in names {
            match read_capped(&dir.join(name)) {
                // As Tekton's final message holds them: written, read back and written again.
                Ok(Some(value)) => results.push(RunResult::new(name.clone(), message::go_round_trip(&value), kind)),
                Ok(None) => {}
                Err(e) => problems.push(format!("result {name} ({}): {e}", dir.join(name).display())),
            }
        }
    }
    let mut artifacts = Vec::new();
    if let Some(dir) = &plan.metadata_dir {
        let path = dir.join("artifacts").join("provenance.json");
        match read_capped(&path) {
            Ok(Some(value)) => artifacts.push(RunResult::new(path.to_string_lossy(), value, STEP_ARTIFACTS)),
            Ok(None) => {}
            Err(e) => problems.push(format!("artifacts ({}): {e}", path.display())),
        }
    }
    let path = plan.root.join("artifacts").join("provenance.json");
    match read_capped(&path) {
        Ok(Some(value)) => artifacts.push(RunResult::new(path.to_string_lossy(), value, TASK_ARTIFACTS)),
        Ok(None) => {}
        Err(e) => problems.push(format!("artifacts ({}): {e}", path.display())),
    }
    if problems.is_empty() {
        Ok((results, artifacts))
    } else {
        Err(format!("cannot report the results: {}", problems.join("; ")))
    }
}

/// StartedAt, then the key that says how the step ended.
pub fn internal(outcome: Outcome, started_at: &str) -> Vec<RunResult> {
    let mut keys = vec![RunResult::new("StartedAt", started_at, INTERNAL)];
    match outcome {
        Outcome::Continued(code) => keys.push(RunResult::new("ExitCode", code.to_string(), INTERNAL)),
        Outcome::Skipped { with_reason: true } | Outcome::WhenSkipped => {
            keys.push(RunResult::new("Reason", "Skipped", INTERNAL))
        }
        Outcome::TimedOut => keys.push(RunResult::new("Reason", "TimeoutExceeded", INTERNAL)),
        Outcome::Cancelled => keys.push(RunResult::new("Reason", "Cancelled", INTERNAL)),
        _ => {}
    }
    keys
}

pub fn too_large(results: &[RunResult], rendered: &message::Rendered, limit: usize) -> String {
    let mut by_size: Vec<&RunResult> = results.iter().collect();
    by_size.sort_by(|a, b| b.value.len().cmp(&a.value.len()).then(a.key.cmp(&b.key)));
    let largest: Vec<String> = by_size.iter().take(3).map(|r| format!("{} ({} bytes)", r.key, r.value.len())).collect();
    let what = if rendered.compressed() && rendered.text.len() <= limit {
        format!("it inflates to {} bytes, more than the {MAX_DECOMPRESSED} readers accept", rendered.json_len)
    } else {
        format!("it is {} bytes", rendered.text.len())
    };
    let head = if limit == TEKTON_LIMIT {
        "Termination message is above max allowed size 4096, caused by large task result.".to_string()
    } else {
        format!(
            "Termination message is above max allowed size {limit}, caused by large task result (the kubelet keeps \
             {KUBELET_POD_BUDGET} bytes / containers in the pod for each; set BATON_TEKTON_CONTAINERS if the count \
             is wrong)."
        )
    };
    format!(
        "{head} {what}; largest results: {}; the step fails and reports no results; write large data to a \
         workspace and return its path",
        if largest.is_empty() { "none".to_string() } else { largest.join(", ") }
    )
}

/// A result file, verbatim; None when it does not exist. Larger than any reader accepts: an error.
pub fn read_capped(path: &Path) -> Result<Option<Vec<u8>>, String> {
    match folder::read_mounted(path, MAX_DECOMPRESSED as u64) {
        Ok(value) => Ok(Some(value)),
        Err(ReadError::Missing) => Ok(None),
        Err(ReadError::TooLarge { .. }) => Err(format!("larger than {MAX_DECOMPRESSED} bytes")),
        Err(e) => Err(e.to_string()),
    }
}

/// In place (the kubelet bind-mounts the file: it cannot be renamed over), then fsync.
pub fn write_termination(path: &Path, text: &str) -> io::Result<()> {
    let mut f = OpenOptions::new().write(true).create(true).truncate(true).mode(0o666).open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}
