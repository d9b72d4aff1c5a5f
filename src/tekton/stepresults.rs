//! Step results and step artifacts of earlier steps, substituted at run time as Tekton's entrypoint
//! does (tektoncd/pipeline v1.15: pkg/entrypoint/entrypointer.go `applyStepResultSubstitutions`,
//! `applyStepArtifactSubstitutions`; pkg/internal/resultref; internal/artifactref).
//!
//! A StepAction's step reads `$(steps.<step>.results.<name>)` from the file
//! `/tekton/steps/step-<step>/results/<name>` of the step that wrote it:
//! - a string result (a JSON string is unquoted, anything else is taken as it is);
//! - an array result: `[i]` one element, `[*]` every element as arguments of their own (only where
//!   the whole argument, or `when` value, is the reference);
//! - an object result: `.key` one value.
//!
//! `$(steps.<step>.outputs.<name>)` / `.inputs.` are replaced by the JSON of that artifact's values
//! (artifacts.rs), in a step's script file too.
//!
//! As in Tekton: the environment first, then the `when` expressions, then the command; the first
//! reference that cannot be resolved stops that pass and is said, and what it had not reached yet is
//! left as written; the step runs all the same. One difference: an array index past the end makes
//! Tekton's entrypoint panic (the step dies without a post file); baton fails the step with a
//! sentence.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use super::artifacts;
use super::resultref::{parse_reference, replace_all, step_result_refs, RefKind, ResultValue};
use super::when::WhenExpression;
use crate::folder::{self, Folder};

/// Result and artifact files larger than this are not read (a step result goes through a
/// termination message of at most 4 KiB, or the results sidecar's limit).
const MAX_FILE: u64 = 1024 * 1024;

/// What is substituted, before the command starts.
pub struct Substitution {
    pub command: Vec<OsString>,
    pub when: Vec<WhenExpression>,
    /// The environment, as the command gets it.
    pub env: Vec<(OsString, OsString)>,
    /// References that could not be resolved, each pass's first (Tekton logs them and goes on).
    pub unresolved: Vec<String>,
}

/// Why a reference cannot be substituted.
#[derive(Debug, PartialEq, Eq)]
pub enum Unresolved {
    /// Tekton logs it and runs the step with the text as it stands.
    Logged(String),
    /// An array index past the end: Tekton's entrypoint panics; baton fails the step.
    Fatal(String),
}

/// Substitutes the step results, then the step artifacts, in `command`, `when` and `env`, reading
/// the earlier steps' files under `steps` (`/tekton/steps`); `scripts` is `/tekton/scripts` and
/// `tmp` the folder for a rewritten script.
pub fn substitute(
    command: Vec<OsString>,
    when: Vec<WhenExpression>,
    env: Vec<(OsString, OsString)>,
    steps: &Path,
    scripts: &Path,
    tmp: &Path,
) -> Result<Substitution, String> {
    let mut s = Substitution { command, when, env, unresolved: Vec::new() };
    let fatal = |e: Unresolved, s: &mut Substitution| match e {
        Unresolved::Logged(why) => {
            s.unresolved.push(why);
            Ok(())
        }
        Unresolved::Fatal(why) => Err(why),
    };
    if let Err(e) = step_results(&mut s, steps) {
        fatal(e, &mut s)?;
    }
    if let Err(e) = artifacts::step_artifacts(&mut s, steps, scripts, tmp) {
        fatal(e, &mut s)?;
    }
    Ok(s)
}

/// `applyStepResultSubstitutions`: environment (each variable in place, stopping at the first
/// error), `when`, then the command (all or nothing).
fn step_results(s: &mut Substitution, steps: &Path) -> Result<(), Unresolved> {
    for (_, value) in s.env.iter_mut() {
        let bytes = value.as_bytes();
        let mut v = bytes.to_vec();
        for m in step_result_refs(bytes) {
            let (text, _) = replacement(steps, &bytes[m.clone()])?;
            v = replace_all(&v, &bytes[m], &text);
        }
        *value = OsString::from_vec(v);
    }
    replace_when(&mut s.when, steps)?;
    let mut command = Vec::with_capacity(s.command.len());
    for arg in &s.command {
        let c = arg.as_bytes();
        let mut new = vec![c.to_vec()];
        for m in step_result_refs(c) {
            let reference = &c[m];
            let (text, array) = replacement(steps, reference).map_err(|e| match e {
                Unresolved::Logged(why) => Unresolved::Logged(format!(
                    "failed to find replacement for {} to replace {} ({why})",
                    String::from_utf8_lossy(reference),
                    String::from_utf8_lossy(c)
                )),
                fatal => fatal,
            })?;
            if !array.is_empty() {
                if c != reference {
                    return Err(whole_reference_only());
                }
                new = array.into_iter().map(String::into_bytes).collect();
            } else {
                new[0] = replace_all(&new[0], reference, &text);
            }
        }
        command.extend(new.into_iter().map(OsString::from_vec));
    }
    s.command = command;
    Ok(())
}

/// `replaceWhen`: each expression in place, in order; values (an exact `[*]` spreads), then input,
/// then CEL. What was replaced before an error stays replaced, as in Tekton.
fn replace_when(when: &mut [WhenExpression], steps: &Path) -> Result<(), Unresolved> {
    for w in when.iter_mut() {
        let mut values = Vec::new();
        for v in &w.values {
            let b = v.as_bytes();
            let mut new = b.to_vec();
            let mut spread = None;
            for m in step_result_refs(b) {
                let (text, array) = replacement(steps, &b[m.clone()])?;
                if !array.is_empty() {
                    if b != &b[m] {
                        return Err(whole_reference_only());
                    }
                    spread = Some(array);
                    break;
                }
                new = replace_all(&new, &b[m], &text);
            }
            match spread {
                Some(array) => values.extend(array),
                None => values.push(String::from_utf8_lossy(&new).into_owned()),
            }
        }
        w.values = values;
        for field in [&mut w.input, &mut w.cel] {
            let b = field.as_bytes().to_vec();
            let mut new = b.clone();
            for m in step_result_refs(&b) {
                let (text, _) = replacement(steps, &b[m.clone()])?;
                new = replace_all(&new, &b[m], &text);
            }
            *field = String::from_utf8_lossy(&new).into_owned();
        }
    }
    Ok(())
}

fn whole_reference_only() -> Unresolved {
    Unresolved::Logged(
        "value must be in \"$(steps.<step-name>.results.<result-name>[*])\" format, when using array results".into(),
    )
}

/// `findReplacement`: the text to put in place of `reference` (`$(…)`), or the array to spread.
fn replacement(steps: &Path, reference: &[u8]) -> Result<(Vec<u8>, Vec<String>), Unresolved> {
    let text = String::from_utf8_lossy(reference);
    let inner = text.strip_prefix("$(").unwrap_or(&text);
    let inner = inner.strip_suffix(')').unwrap_or(inner);
    let r = parse_reference(inner).map_err(Unresolved::Logged)?;
    let path = steps.join(format!("step-{}", r.step)).join("results").join(&r.result);
    let bytes = read_step_file(steps, &r.step, &format!("results/{}", r.result))
        .map_err(|e| Unresolved::Logged(format!("open {}: {e}", path.display())))?;
    let value = ResultValue::parse(&bytes);
    Ok(match r.kind {
        RefKind::String => (value.string, Vec::new()),
        RefKind::Object(key) => (value.object.get(&key).cloned().unwrap_or_default().into_bytes(), Vec::new()),
        RefKind::Array(None) => (Vec::new(), value.array),
        RefKind::Array(Some(i)) => match value.array.get(i) {
            Some(v) => (v.clone().into_bytes(), Vec::new()),
            None => {
                return Err(Unresolved::Fatal(format!(
                    "{text} refers to element {i} of the result {} of step {}, which has {} element(s); \
                     fix the index or the step that writes the result",
                    r.result,
                    r.step,
                    value.array.len()
                )))
            }
        },
    })
}

/// A file of the step's own image or of an init container (a script). Only a regular file is
/// read, not through a link in its last component and never blocking on a FIFO.
pub fn read_capped(path: &Path) -> io::Result<Vec<u8>> {
    Ok(folder::read_file(path, MAX_FILE)?)
}

/// The file `rel` (`results/<name>`, `artifacts/provenance.json`) of the earlier step `step`, in
/// `<steps>/step-<step>`. That entry is the link step-init made to `<root>/run/<i>/status`, in an
/// emptyDir every step can write, and step i wrote everything below `<root>/run/<i>`: so the link is
/// taken only in that form, no link below `<root>/run/<i>` is followed, and only a regular file is
/// read, never blocking on a FIFO (docs/protocol.md, the trust model).
pub fn read_step_file(steps: &Path, step: &str, rel: &str) -> io::Result<Vec<u8>> {
    let entry = format!("step-{step}");
    let (start, below) = match fs::read_link(steps.join(&entry)) {
        Ok(target) => {
            let run = steps.parent().unwrap_or(Path::new("")).join("run");
            let i = target.strip_prefix(&run).ok().and_then(|t| t.to_str()?.strip_suffix("/status"));
            match i.filter(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit())) {
                Some(i) => (Folder::open(&run.join(i))?, Path::new("status").join(rel)),
                None => {
                    return Err(io::Error::other(format!(
                        "{} is a symbolic link to {}, not to {}/<i>/status as step-init makes it, so baton does not \
                         follow it",
                        steps.join(&entry).display(),
                        target.display(),
                        run.display()
                    )))
                }
            }
        }
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => (Folder::open(steps)?, Path::new(&entry).join(rel)),
        Err(e) => return Err(e),
    };
    let name = below.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
    let folder = start.sub_path(below.parent().unwrap_or(Path::new("")))?;
    Ok(folder.read(&name, MAX_FILE, false)?)
}

/// The environment of this process, in its order.
pub fn environment() -> Vec<(OsString, OsString)> {
    std::env::vars_os().collect()
}

/// Makes the environment `env` this process's own, for the command to inherit. Tekton does the same
/// (os.Setenv). Called before the command is spawned, while no other thread reads the environment.
pub fn set_environment(env: &[(OsString, OsString)]) {
    for (key, value) in env {
        if std::env::var_os(key).as_deref() != Some(value.as_os_str()) {
            std::env::set_var(key, value);
        }
    }
}

/// Where a script with its artifacts is rewritten: `$TMPDIR`, else /tmp (Go's os.TempDir).
pub fn temp_dir() -> PathBuf {
    std::env::var_os("TMPDIR").filter(|t| !t.is_empty()).map_or_else(|| PathBuf::from("/tmp"), PathBuf::from)
}
