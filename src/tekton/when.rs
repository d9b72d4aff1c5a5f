//! Step-level `when` expressions (`-when_expressions`), evaluated as Tekton's entrypoint does
//! (tektoncd/pipeline v1.15: pkg/entrypoint/entrypointer.go `allowExec`,
//! pkg/apis/pipeline/v1/types/when_types.go `AllowsExecution`), after the step results are
//! substituted into them:
//! - `{"input": I, "operator": "in", "values": [V…]}`: I is one of the values; any other operator
//!   (`notin`) means it is not;
//! - `{"cel": E}`: the CEL expression E, compiled with no variables, yields `true`. One that does
//!   not compile or does not yield a boolean fails the step.
//!
//! All must hold, or the step is skipped: exit 0, its post file, `exitCode` 0, Reason `Skipped`,
//! and no results.
//!
//! CEL comes from the `cel` crate (its Pratt parser), in the companion binary `baton-cel` that the
//! Tekton image ships beside the entrypoint (src/bin/baton_cel.rs): baton itself stays within its
//! size budget. Without the companion a `cel` expression fails the step with a sentence that says
//! so; input/operator/values expressions need nothing.

use std::collections::HashMap;

use super::message::go_field;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WhenExpression {
    pub input: String,
    pub operator: String,
    pub values: Vec<String>,
    pub cel: String,
}

impl WhenExpression {
    /// `isTrue`: `in`, or else `notin`.
    fn holds(&self) -> bool {
        let found = self.values.contains(&self.input);
        if self.operator == "in" {
            found
        } else {
            !found
        }
    }
}

/// The `-when_expressions` value, as `json.Unmarshal` into `v1.StepWhenExpressions` reads it.
pub fn parse(json: &str) -> Result<Vec<WhenExpression>, String> {
    if json.is_empty() {
        return Ok(Vec::new());
    }
    let invalid = |why: String| format!("-when_expressions is not a JSON list of when expressions: {why}");
    let value: serde_json::Value = serde_json::from_str(json).map_err(|e| invalid(e.to_string()))?;
    let list = match value {
        serde_json::Value::Null => return Ok(Vec::new()),
        serde_json::Value::Array(list) => list,
        _ => return Err(invalid("not a list".into())),
    };
    let mut when = Vec::with_capacity(list.len());
    for item in list {
        let empty = serde_json::Map::new();
        let fields = match &item {
            serde_json::Value::Object(o) => o,
            serde_json::Value::Null => &empty,
            _ => return Err(invalid("an expression is not an object".into())),
        };
        let text = |name: &str| match go_field(fields, name) {
            None | Some(serde_json::Value::Null) => Ok(String::new()),
            Some(serde_json::Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(invalid(format!("{name} is not a string"))),
        };
        let values = match go_field(fields, "values") {
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(serde_json::Value::Array(values)) => values
                .iter()
                .map(|v| match v {
                    serde_json::Value::String(s) => Ok(s.clone()),
                    serde_json::Value::Null => Ok(String::new()),
                    _ => Err(invalid("values are not strings".into())),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(invalid("values is not a list".into())),
        };
        when.push(WhenExpression { input: text("input")?, operator: text("operator")?, values, cel: text("cel")? });
    }
    Ok(when)
}

/// `allowExec`: Ok(true) when the step may run, Ok(false) when it is skipped, Err when a CEL
/// expression cannot be evaluated to a boolean.
pub fn allows(when: &[WhenExpression]) -> Result<bool, String> {
    let mut evaluated: HashMap<&str, bool> = HashMap::new();
    for w in when.iter().filter(|w| !w.cel.is_empty()) {
        if evaluated.contains_key(w.cel.as_str()) {
            continue;
        }
        match cel(&w.cel)? {
            Some(true) => {
                evaluated.insert(&w.cel, true);
            }
            Some(false) => return Ok(false),
            None => return Err(format!("the CEL expression {} is not evaluated to a boolean", w.cel)),
        }
    }
    Ok(when.iter().all(|w| w.holds() && (w.cel.is_empty() || evaluated.get(w.cel.as_str()) == Some(&true))))
}

/// Compiles and evaluates `expression` with no variables: Some(bool), or None for another type.
/// The `cel` crate is larger than baton's size budget leaves, so the evaluation runs in the
/// companion binary `baton-cel` beside this one (`BATON_CEL` names another).
fn cel(expression: &str) -> Result<Option<bool>, String> {
    let companion = std::env::var_os(ENV_CEL).map(std::path::PathBuf::from).or_else(|| {
        std::env::current_exe().ok().and_then(|exe| exe.parent().map(|dir| dir.join(CEL_BINARY)))
    });
    let Some(companion) = companion else { return Err(missing(expression, "this binary's folder is unknown")) };
    let out = match std::process::Command::new(&companion).arg(expression).output() {
        Ok(out) => out,
        Err(e) => return Err(missing(expression, &format!("{}: {e}", companion.display()))),
    };
    if !out.status.success() {
        let sentence = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(if sentence.is_empty() { format!("the CEL expression {expression} cannot be evaluated") } else { sentence });
    }
    match String::from_utf8_lossy(&out.stdout).trim() {
        "true" => Ok(Some(true)),
        "false" => Ok(Some(false)),
        _ => Ok(None),
    }
}

/// The companion's name, beside the entrypoint (`/ko-app/baton-cel`, `/tekton/bin/baton-cel`).
pub const CEL_BINARY: &str = "baton-cel";
const ENV_CEL: &str = "BATON_CEL";

fn missing(expression: &str, why: &str) -> String {
    format!(
        "the step's when expression has the CEL expression {expression:?}, which needs baton's CEL evaluator \
         {CEL_BINARY} beside the entrypoint ({why}); use the baton-tekton image, which ships it and whose init \
         copies it to /tekton/bin, or set {ENV_CEL}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(input: &str, operator: &str, values: &[&str]) -> WhenExpression {
        WhenExpression {
            input: input.into(),
            operator: operator.into(),
            values: values.iter().map(|v| v.to_string()).collect(),
            cel: String::new(),
        }
    }

    fn c(expression: &str) -> WhenExpression {
        WhenExpression { cel: expression.into(), ..Default::default() }
    }

    #[test]
    fn input_operator_values() {
        // entrypointer_test.go TestAllowExec: the expressions without CEL.
        assert_eq!(allows(&[w("foo", "in", &["foo", "bar"])]), Ok(true));
        assert_eq!(allows(&[w("foobar", "notin", &["foobar"])]), Ok(false));
        assert_eq!(allows(&[w("foobar", "in", &["foobar"]), w("foo", "in", &["bar"])]), Ok(false));
        assert_eq!(allows(&[w("foobar", "in", &["foobar"]), w("foo", "notin", &["bar"])]), Ok(true));
        assert_eq!(allows(&[]), Ok(true));
    }

    // The CEL cases of TestAllowExec run through the companion in tests/tekton_when.rs (cel) and
    // in src/bin/baton_cel.rs: a unit test binary has no companion beside it.

    #[test]
    fn parsed_as_go_unmarshals_it() {
        // pkg/pod/entrypoint.go: json.Marshal(step.When).
        let got = parse(r#"[{"input":"foo","operator":"in","values":["foo","bar"]},{"cel":"'a'=='a'"},{"Input":"x","values":null}]"#)
            .unwrap();
        assert_eq!(got, [w("foo", "in", &["foo", "bar"]), c("'a'=='a'"), w("x", "", &[])]);
        assert_eq!(parse("").unwrap(), []);
        assert_eq!(parse("null").unwrap(), []);
        assert!(parse("{").is_err());
        assert!(parse(r#"[{"values":"a"}]"#).is_err());
    }
}
