//! Step artifacts of earlier steps, substituted at run time as Tekton's entrypoint does
//! (pkg/entrypoint/entrypointer.go `applyStepArtifactSubstitutions`, internal/artifactref):
//! `$(steps.<step>.outputs.<name>)` / `.inputs.` becomes the JSON of that artifact's values in
//! `/tekton/steps/step-<step>/artifacts/provenance.json`, as `json.Marshal` writes it.

use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use super::message::{go_field, go_json_string};
use super::resultref::{find, replace_all};
use super::stepresults::{read_capped, read_step_file, Substitution, Unresolved};

/// `applyStepArtifactSubstitutions`: a lone script file under `/tekton/scripts` is rewritten into a
/// new file (when a reference changes it), else each argument; then each environment variable.
pub fn step_artifacts(s: &mut Substitution, steps: &Path, scripts: &Path, tmp: &Path) -> Result<(), Unresolved> {
    if s.command.len() == 1 && Path::new(&s.command[0]).parent() == Some(scripts) {
        let script = PathBuf::from(&s.command[0]);
        let content =
            read_capped(&script).map_err(|e| Unresolved::Logged(format!("open {}: {e}", script.display())))?;
        let replaced = replace_artifacts(&content, steps)?;
        if replaced != content {
            let rewritten = rewrite_script(&replaced, tmp).map_err(|e| {
                Unresolved::Logged(format!("cannot write the script with its artifacts in {}: {e}", tmp.display()))
            })?;
            s.command = vec![rewritten.into_os_string()];
        }
    } else {
        for arg in s.command.iter_mut() {
            *arg = OsString::from_vec(replace_artifacts(arg.as_bytes(), steps)?);
        }
    }
    for (_, value) in s.env.iter_mut() {
        *value = OsString::from_vec(replace_artifacts(value.as_bytes(), steps)?);
    }
    Ok(())
}

fn replace_artifacts(s: &[u8], steps: &Path) -> Result<Vec<u8>, Unresolved> {
    let mut out = s.to_vec();
    for m in step_artifact_refs(s) {
        let values = artifact_values(steps, &s[m.clone()])?;
        out = replace_all(&out, &s[m], values.as_bytes());
    }
    Ok(out)
}

/// The matches of `\$\(steps\.([^.]+)\.(?:inputs|outputs)\.([^.)]+)\)`: (range, step, kind, name).
pub fn step_artifact_refs(s: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(i) = find(s, b"$(steps.", from) {
        match artifact_at(s, i) {
            Some(end) => {
                found.push(i..end);
                from = end;
            }
            None => from = i + 1,
        }
    }
    found
}

/// The end of an artifact reference starting at `i`, if one does.
fn artifact_at(s: &[u8], i: usize) -> Option<usize> {
    let mut j = i + b"$(steps.".len();
    let step = s[j..].iter().take_while(|&&c| c != b'.').count();
    if step == 0 {
        return None;
    }
    j += step;
    let kind = [&b".inputs."[..], b".outputs."].into_iter().find(|k| s[j..].starts_with(k))?;
    j += kind.len();
    let name = s[j..].iter().take_while(|&&c| c != b'.' && c != b')').count();
    (name > 0 && s.get(j + name) == Some(&b')')).then_some(j + name + 1)
}

/// `getArtifactValues`: the JSON of the named artifact's values, as `json.Marshal` writes it.
fn artifact_values(steps: &Path, reference: &[u8]) -> Result<String, Unresolved> {
    let text = String::from_utf8_lossy(reference);
    let inner = &text[2..text.len() - 1];
    let parts: Vec<&str> = inner.split('.').collect();
    let (step, kind, name) = (parts[1], parts[2], parts[3]);
    let path = steps.join(format!("step-{step}")).join("artifacts").join("provenance.json");
    let logged = |why: String| Unresolved::Logged(why);
    let content = read_step_file(steps, step, "artifacts/provenance.json")
        .map_err(|e| logged(format!("open {}: {e}", path.display())))?;
    let bad = |why: &str| logged(format!("{}: {why}", path.display()));
    let doc: serde_json::Value = serde_json::from_slice(&content)
        .map_err(|e| bad(&format!("not JSON (line {} column {})", e.line(), e.column())))?;
    let lists = match &doc {
        serde_json::Value::Object(o) => (go_field(o, "inputs"), go_field(o, "outputs")),
        serde_json::Value::Null => (None, None),
        _ => return Err(bad("not an object of inputs and outputs")),
    };
    // json.Unmarshal reads the whole document: a malformed list fails whichever one is asked for.
    let inputs = artifacts(lists.0).map_err(|why| bad(&why))?;
    let outputs = artifacts(lists.1).map_err(|why| bad(&why))?;
    let list = if kind == "outputs" { outputs } else { inputs };
    match list.into_iter().find(|(n, _)| n == name) {
        Some((_, values)) => Ok(values),
        None => Err(logged(format!("values for template {text} not found"))),
    }
}

/// A list of artifacts as `[]Artifact` decodes it: (name, the JSON of its values).
fn artifacts(list: Option<&serde_json::Value>) -> Result<Vec<(String, String)>, String> {
    let items = match list {
        None | Some(serde_json::Value::Null) => return Ok(Vec::new()),
        Some(serde_json::Value::Array(a)) => a,
        Some(_) => return Err("inputs and outputs must be lists".into()),
    };
    let mut out = Vec::new();
    for artifact in items {
        let empty = serde_json::Map::new();
        let fields = match artifact {
            serde_json::Value::Object(o) => o,
            serde_json::Value::Null => &empty,
            _ => return Err("an artifact is not an object".into()),
        };
        let name = match go_field(fields, "name") {
            None | Some(serde_json::Value::Null) => String::new(),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(_) => return Err("an artifact's name is not a string".into()),
        };
        if !matches!(go_field(fields, "buildOutput"), None | Some(serde_json::Value::Null | serde_json::Value::Bool(_)))
        {
            return Err("an artifact's buildOutput is not a boolean".into());
        }
        out.push((name, marshal_values(go_field(fields, "values"))?));
    }
    Ok(out)
}

/// `json.Marshal([]ArtifactValue)`: `null`, or `[{"digest":{…},"uri":…}]` with empty fields left out.
fn marshal_values(values: Option<&serde_json::Value>) -> Result<String, String> {
    let list = match values {
        None | Some(serde_json::Value::Null) => return Ok("null".into()),
        Some(serde_json::Value::Array(a)) => a,
        Some(_) => return Err("values is not a list".into()),
    };
    let mut out = String::from("[");
    for (i, v) in list.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let empty = serde_json::Map::new();
        let fields = match v {
            serde_json::Value::Object(o) => o,
            serde_json::Value::Null => &empty,
            _ => return Err("a value is not an object".into()),
        };
        let mut parts = Vec::new();
        match go_field(fields, "digest") {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::Object(digest)) if digest.is_empty() => {}
            Some(serde_json::Value::Object(digest)) => {
                let mut entries = Vec::new();
                for (algorithm, hex) in digest {
                    let hex = match hex {
                        serde_json::Value::String(s) => s.as_str(),
                        serde_json::Value::Null => "",
                        _ => return Err("a digest is not a string".into()),
                    };
                    entries.push(format!(
                        "{}:{}",
                        go_json_string(algorithm.as_bytes()),
                        go_json_string(hex.as_bytes())
                    ));
                }
                parts.push(format!("\"digest\":{{{}}}", entries.join(",")));
            }
            Some(_) => return Err("digest is not an object".into()),
        }
        match go_field(fields, "uri") {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::String(s)) if s.is_empty() => {}
            Some(serde_json::Value::String(s)) => parts.push(format!("\"uri\":{}", go_json_string(s.as_bytes()))),
            Some(_) => return Err("uri is not a string".into()),
        }
        out.push('{');
        out.push_str(&parts.join(","));
        out.push('}');
    }
    out.push(']');
    Ok(out)
}

/// `writeToTempFile`: the script with its artifacts, a new 0755 file `script-*` in `tmp`.
fn rewrite_script(content: &[u8], tmp: &Path) -> io::Result<PathBuf> {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let path = tmp.join(format!("script-{}{nanos}", crate::sys::getpid()));
    crate::folder::write_atomically(&path, content, 0o755)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_references() {
        let s = "a $(steps.s1.outputs.image) b $(steps.s2.inputs.src) $(steps.x.y.outputs.z) $(steps.s.outputs.a.b)";
        let found: Vec<&str> = step_artifact_refs(s.as_bytes()).into_iter().map(|r| &s[r]).collect();
        assert_eq!(found, ["$(steps.s1.outputs.image)", "$(steps.s2.inputs.src)"]);
    }
}
