//! Tekton's debug breakpoint on failure (`-breakpoint_on_failure`, set by the TaskRun's
//! `debug.breakpoints.onFailure`): the failed step stays in its container until someone runs one of
//! the controller's `/tekton/debug/scripts`, which write the exit code it then exits with.

use baton_contract::layout::Layout;

use crate::signals::Signals;

use super::files::{self, Wait, Waited};
use super::plan::Plan;

/// `-breakpoint_on_failure`: wait for `<post_file>.breakpointexit` and exit with the number in it.
pub fn breakpoint(plan: &Plan, layout: &Layout, signals: &mut Signals) -> i32 {
    let exit_file = plan.post_with(".breakpointexit");
    eprintln!(
        "baton: the step failed and -breakpoint_on_failure is set: waiting for {} \
         (kubectl exec into this container and run /tekton/debug/scripts/debug-continue or debug-fail-continue)",
        exit_file.display()
    );
    let files = [exit_file.clone()];
    // With content: the debug scripts write it with `echo N >`, and a wake-up at its creation
    // would read it empty (Tekton's 1 s poll seldom sees that moment; inotify always does).
    match (Wait { files: &files, content: true, err_is_go: false, lost_check: false }).run(signals, layout) {
        Waited::Signal(signal) => return 128 + signal,
        Waited::Skip(e) | Waited::Failed(e) => {
            eprintln!("baton: while waiting for {}: {e}", exit_file.display())
        }
        Waited::Ready => {}
    }
    // The post file's folder, made without following links (see `files::parent_folder`); the
    // file itself neither a link nor a FIFO, and small.
    let read = files::parent_folder(&plan.root, &exit_file)
        .map_err(|e| e.to_string())
        .and_then(|(dir, name)| dir.read(&name, 64, false).map_err(|e| e.to_string()))
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
    match read {
        Ok(text) => match text.strip_suffix('\n').unwrap_or(&text).parse::<i64>() {
            // Go's os.Exit(n): the kernel keeps the low 8 bits.
            Ok(n) => (n & 0xff) as i32,
            Err(e) => {
                eprintln!("baton: cannot read the breakpoint exit code {text:?}: {e}; exiting 0");
                0
            }
        },
        Err(e) => {
            eprintln!("baton: breakpoint postfile {} not readable ({e}); exiting 0", exit_file.display());
            0
        }
    }
}
