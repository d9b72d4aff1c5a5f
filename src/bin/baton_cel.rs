//! `baton-cel`: the CEL evaluator of the Tekton mode, a companion binary beside the entrypoint.
//!
//! Tekton's step `when` expressions may be CEL. The `cel` crate costs about 270 KB, more than the
//! in-pod binary's size budget leaves, so it lives here, in the Tekton image only
//! (`/ko-app/baton-cel`, copied to `/tekton/bin/baton-cel` by `init` beside the entrypoint), and the
//! entrypoint runs it only for a step that has a CEL expression.
//!
//! `baton-cel EXPRESSION...`: each expression is compiled with no variables and evaluated; one line
//! per expression on stdout, `true`, `false`, or `other` (not a boolean). An expression that does not
//! compile or cannot be evaluated: its sentence on stderr, exit 1. Bad usage: exit 2.

use std::io::Write;
use std::process::ExitCode;

fn evaluate(expression: &str) -> Result<Option<bool>, String> {
    let program = cel::parser::PrattParser::new()
        .parse(expression)
        .map_err(|e| format!("the CEL expression {expression} does not compile: {e}"))?;
    match cel::Value::resolve(&program, &cel::Context::default()) {
        Ok(cel::Value::Bool(b)) => Ok(Some(b)),
        Ok(_) => Ok(None),
        Err(e) => Err(format!("the CEL expression {expression} cannot be evaluated: {e}")),
    }
}

fn main() -> ExitCode {
    let expressions: Vec<String> = std::env::args().skip(1).collect();
    if expressions.is_empty() {
        eprintln!("usage: baton-cel EXPRESSION...");
        return ExitCode::from(2);
    }
    let mut out = String::new();
    for e in &expressions {
        match evaluate(e) {
            Ok(Some(true)) => out.push_str("true\n"),
            Ok(Some(false)) => out.push_str("false\n"),
            Ok(None) => out.push_str("other\n"),
            Err(sentence) => {
                eprintln!("{sentence}");
                return ExitCode::from(1);
            }
        }
    }
    match std::io::stdout().write_all(out.as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(1),
    }
}

#[cfg(test)]
mod tests {
    use super::evaluate;

    #[test]
    fn tekton_cel_cases() {
        // tektoncd/pipeline v1.15, pkg/entrypoint/entrypointer_test.go TestAllowExec (CEL cases).
        assert_eq!(evaluate("'foo'=='foo'"), Ok(Some(true)));
        assert_eq!(evaluate("'foo'!='foo'"), Ok(Some(false)));
        assert_eq!(evaluate("'foo'"), Ok(None));
        assert!(evaluate("foo==foo").is_err(), "an undeclared name does not evaluate");
        assert!(evaluate("1 +").unwrap_err().contains("does not compile"));
        assert_eq!(evaluate("'b' in ['a', 'b'] && size('xy') == 2 && 'abc'.startsWith('a')"), Ok(Some(true)));
    }
}
