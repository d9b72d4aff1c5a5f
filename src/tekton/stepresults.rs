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

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use super::artifacts;
use super::when::WhenExpression;
use crate::folder;

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
                Unresolved::Logged(_) => Unresolved::Logged(format!(
                    "failed to find replacement for {} to replace {}",
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

/// The matches of Tekton's `\$\(steps\..*?\.results\..*?\)` (RE2, leftmost, lazy; `.` is any byte
/// but a newline), as byte ranges.
pub fn step_result_refs(s: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(i) = find(s, b"$(steps.", from) {
        let after = i + b"$(steps.".len();
        let end =
            lazy_until(s, after, b".results.").and_then(|j| lazy_until(s, j + b".results.".len(), b")")).map(|k| k + 1);
        match end {
            Some(end) => {
                found.push(i..end);
                from = end;
            }
            None => from = i + 1,
        }
    }
    found
}

/// The first `needle` at or after `from` with no newline between `from` and it.
fn lazy_until(s: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    let mut j = from;
    while j + needle.len() <= s.len() {
        if s[j..].starts_with(needle) {
            return Some(j);
        }
        if s[j] == b'\n' {
            return None;
        }
        j += 1;
    }
    None
}

pub fn find(s: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    (from..=s.len().saturating_sub(needle.len())).find(|&i| s[i..].starts_with(needle))
}

/// Go's `strings.ReplaceAll`.
pub fn replace_all(s: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    if from.is_empty() {
        return s.to_vec();
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
}

/// A parsed `steps.<step>.results.<name>[…]` / `.<key>` (resultref.ParseStepExpression).
#[derive(Debug, PartialEq, Eq)]
pub struct Reference {
    pub step: String,
    pub result: String,
    pub kind: RefKind,
}

#[derive(Debug, PartialEq, Eq)]
pub enum RefKind {
    String,
    /// `[*]`: None; `[i]`: Some(i).
    Array(Option<usize>),
    Object(String),
}

pub fn parse_reference(expression: &str) -> Result<Reference, String> {
    let parts: Vec<&str> = expression.split('.').collect();
    let invalid = || {
        format!(
            "{expression:?} must be one of the form 1). \"steps.<stepName>.results.<resultName>\"; 2). \
             \"steps.<stepName>.results.<objectResultName>.<individualAttribute>\""
        )
    };
    if parts.len() < 4 || parts[0] != "steps" || parts[2] != "results" {
        return Err(invalid());
    }
    let step = parts[1].to_string();
    match parts.len() {
        4 => {
            let (result, index) = result_name(parts[3]);
            let kind = match index {
                None => RefKind::String,
                Some("*") => RefKind::Array(None),
                // strconv.Atoi's error is ignored there: "[1*]" is element 0.
                Some(i) => RefKind::Array(Some(i.parse().unwrap_or(0))),
            };
            Ok(Reference { step, result, kind })
        }
        5 => Ok(Reference { step, result: parts[3].to_string(), kind: RefKind::Object(parts[4].to_string()) }),
        _ => Err(invalid()),
    }
}

/// `ParseResultName`: the name without its `[…]` parts (`\[([0-9])*\*?\]`), and what the first held.
fn result_name(name: &str) -> (String, Option<&str>) {
    let mut first = None;
    let mut stripped = String::new();
    let b = name.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'[' {
            let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
            let mut j = i + 1 + digits;
            if b.get(j) == Some(&b'*') {
                j += 1;
            }
            if b.get(j) == Some(&b']') {
                let inside = &name[i + 1..j];
                first.get_or_insert(inside);
                i = j + 1;
                continue;
            }
        }
        let c = name[i..].chars().next().unwrap_or('\u{fffd}');
        stripped.push(c);
        i += c.len_utf8();
    }
    (stripped, first.filter(|inside| !inside.is_empty()))
}

/// A result file as Tekton's `ResultValue.UnmarshalJSON` reads it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ResultValue {
    pub string: Vec<u8>,
    pub array: Vec<String>,
    pub object: BTreeMap<String, String>,
}

impl ResultValue {
    pub fn parse(bytes: &[u8]) -> ResultValue {
        use serde_json::Value;
        // Go decodes into []string, map[string]string or string in turn; a null is "". Parsed once,
        // as a Value (the decoder the binary already has), then checked for the same shapes.
        let text = |v: &Value| match v {
            Value::String(s) => Some(s.clone()),
            Value::Null => Some(String::new()),
            _ => None,
        };
        let value: Option<Value> = serde_json::from_slice(bytes).ok();
        match (bytes.first(), &value) {
            (Some(b'['), Some(Value::Array(a))) => {
                if let Some(array) = a.iter().map(text).collect::<Option<Vec<_>>>() {
                    return ResultValue { array, ..Default::default() };
                }
            }
            (Some(b'{'), Some(Value::Object(o))) => {
                if let Some(object) = o.iter().map(|(k, v)| text(v).map(|v| (k.clone(), v))).collect::<Option<_>>() {
                    return ResultValue { object, ..Default::default() };
                }
            }
            _ => {}
        }
        match value.as_ref().and_then(text) {
            Some(s) => ResultValue { string: s.into_bytes(), ..Default::default() },
            None => ResultValue { string: bytes.to_vec(), ..Default::default() },
        }
    }
}

/// `findReplacement`: the text to put in place of `reference` (`$(…)`), or the array to spread.
fn replacement(steps: &Path, reference: &[u8]) -> Result<(Vec<u8>, Vec<String>), Unresolved> {
    let text = String::from_utf8_lossy(reference);
    let inner = text.strip_prefix("$(").unwrap_or(&text);
    let inner = inner.strip_suffix(')').unwrap_or(inner);
    let r = parse_reference(inner).map_err(Unresolved::Logged)?;
    let path = steps.join(format!("step-{}", r.step)).join("results").join(&r.result);
    let value = ResultValue::parse(
        &read_capped(&path).map_err(|e| Unresolved::Logged(format!("open {}: {e}", path.display())))?,
    );
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

/// An earlier step's result or artifact file. Another step wrote it, so only a regular file is read,
/// not through a link and never blocking on a FIFO (docs/protocol.md, the trust model).
pub fn read_capped(path: &Path) -> io::Result<Vec<u8>> {
    Ok(folder::read_file(path, MAX_FILE)?)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(s: &str) -> Vec<&str> {
        step_result_refs(s.as_bytes()).into_iter().map(|r| &s[r]).collect()
    }

    #[test]
    fn references_as_tekton_s_regexp_finds_them() {
        assert_eq!(refs("$(steps.foo.results.res)"), ["$(steps.foo.results.res)"]);
        assert_eq!(
            refs("$(steps.foo.results.res.first)-$(steps.foo.results.res.second)"),
            ["$(steps.foo.results.res.first)", "$(steps.foo.results.res.second)"]
        );
        // Lazy but not bounded by ')': the first match runs on to the next ".results." on the line.
        assert_eq!(
            refs("$(steps.a.exitCode.path) $(steps.b.results.c)"),
            ["$(steps.a.exitCode.path) $(steps.b.results.c)"]
        );
        // `.` does not match a newline.
        assert_eq!(refs("$(steps.a\n.results.b) $(steps.c.results.d)"), ["$(steps.c.results.d)"]);
        assert_eq!(refs("$(steps.a.results.b\n) x"), Vec::<&str>::new());
        assert_eq!(refs("$(params.x) $(steps.a.results.r[*])"), ["$(steps.a.results.r[*])"]);
    }

    #[test]
    fn expressions_as_resultref_parses_them() {
        // pkg/internal/resultref: parseExpression's cases, for steps.
        let r = |s: &str| parse_reference(s).unwrap();
        assert_eq!(r("steps.a.results.s"), Reference { step: "a".into(), result: "s".into(), kind: RefKind::String });
        assert_eq!(r("steps.a.results.arr[1]").kind, RefKind::Array(Some(1)));
        assert_eq!(r("steps.a.results.arr[*]").kind, RefKind::Array(None));
        assert_eq!(r("steps.a.results.arr[*]").result, "arr");
        assert_eq!(r("steps.a.results.obj.key").kind, RefKind::Object("key".into()));
        assert_eq!(r("steps.a.results.arr[]").kind, RefKind::String);
        assert_eq!(r("steps.a.results.arr[1*]").kind, RefKind::Array(Some(0)));
        assert!(parse_reference("steps.foo.results.res.hello.bar").is_err());
        assert!(parse_reference("steps.foo.result.res").is_err());
        assert!(parse_reference("tasks.foo.results.res").is_err());
    }

    #[test]
    fn values_as_result_value_unmarshals_them() {
        let v = ResultValue::parse;
        assert_eq!(v(b"Hello").string, b"Hello");
        assert_eq!(v(b"\"quoted \\u0041\"\n").string, b"quoted A");
        assert_eq!(v(b"").string, b"");
        assert_eq!(v(b"null").string, b"");
        assert_eq!(v(b"[\"a\",null,\"b\"]\n").array, ["a", "", "b"]);
        assert_eq!(v(b"[1,2]").string, b"[1,2]");
        assert_eq!(v(b" [\"a\"]").string, b" [\"a\"]");
        let o = v(br#"{"first":"hello", "second":"world"}"#).object;
        assert_eq!(o.get("second").map(String::as_str), Some("world"));
        assert_eq!(v(br#"{"a":1}"#).string, br#"{"a":1}"#);
    }
}
