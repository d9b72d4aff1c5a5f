//! The fields of a template the injection reads, each refused with one sentence when it is not what
//! Kubernetes takes (a YAML boolean where a string belongs, a map where a list belongs).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::Refusal;

/// A container as far as the injection reads it.
pub(super) struct Container<'a> {
    pub name: &'a str,
    pub image: Option<&'a str>,
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub mounts: Option<&'a Vec<Value>>,
    pub termination_path: Option<&'a str>,
}

/// The template's annotations, each a string.
pub(super) fn annotations(
    template: &Value,
    field: &dyn Fn(&str) -> String,
) -> Result<BTreeMap<String, String>, Refusal> {
    let mut out = BTreeMap::new();
    match template.pointer("/metadata/annotations") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (key, value) in map {
                match value {
                    Value::String(s) => {
                        out.insert(key.clone(), s.clone());
                    }
                    _ => {
                        return Err(Refusal::Malformed {
                            field: field(&format!("metadata.annotations[{key:?}]")),
                            problem: not_a_string(value),
                        })
                    }
                }
            }
        }
        Some(_) => {
            return Err(Refusal::Malformed {
                field: field("metadata.annotations"),
                problem: "not a map".to_string(),
            })
        }
    }
    Ok(out)
}

/// Why `value` is refused where a string belongs. YAML 1.1, which Kubernetes reads, makes `y`, `n`,
/// `yes`, `no`, `on` and `off` booleans: quoting the value keeps it a string.
fn not_a_string(value: &Value) -> String {
    match value {
        Value::Bool(_) => {
            "a boolean, not a string (YAML reads y, n, yes, no, on and off as booleans; quote the value)"
                .to_string()
        }
        _ => "not a string (quote the value)".to_string(),
    }
}

pub(super) fn read_container<'a>(c: &'a Value, field: &str) -> Result<Container<'a>, Refusal> {
    let malformed = |path: &str, problem: &str| Refusal::Malformed {
        field: format!("{field}{path}"),
        problem: problem.to_string(),
    };
    let name = match c.get("name") {
        Some(Value::String(name)) => name.as_str(),
        None | Some(Value::Null) => return Err(malformed(".name", "missing")),
        Some(other) => return Err(malformed(".name", &not_a_string(other))),
    };
    let strings = |key: &str| -> Result<Vec<String>, Refusal> {
        match c.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|s| {
                    s.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| malformed(&format!(".{key}"), "not a list of strings"))
                })
                .collect(),
            Some(_) => Err(malformed(&format!(".{key}"), "not a list of strings")),
        }
    };
    let mounts = match c.get("volumeMounts") {
        Some(Value::Array(list)) => Some(list),
        None | Some(Value::Null) => None,
        Some(_) => return Err(malformed(".volumeMounts", "not a list")),
    };
    Ok(Container {
        name,
        image: c.get("image").and_then(Value::as_str),
        command: strings("command")?,
        args: strings("args")?,
        mounts,
        termination_path: c.get("terminationMessagePath").and_then(Value::as_str),
    })
}

pub(super) fn pull_secrets(spec: &Map<String, Value>) -> Vec<String> {
    spec.get("imagePullSecrets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.get("name").and_then(Value::as_str).map(str::to_string))
        .collect()
}
