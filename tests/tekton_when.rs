//! Tekton mode: step-level `when` expressions (`-when_expressions`), driven from outside. The cases
//! are Tekton's (tektoncd/pipeline v1.15: pkg/entrypoint/entrypointer_test.go TestAllowExec,
//! TestTerminationReason "reason skipped due to when expressions evaluation",
//! TestApplyStepWhenSubstitutions_Input / _CEL / _Values). CEL runs in the companion binary
//! `baton-cel`, found beside the entrypoint (the build puts both in one folder); without it a CEL
//! expression must fail the step with a sentence.

mod tekton_support;

use std::fs;

use tekton_support::*;

fn result(pod: &Pod, name: &str, result: &str, content: &str) {
    let dir = pod.p(&format!("steps/step-{name}/results"));
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(result), content).unwrap();
}

/// Runs step 0 with `when` and a command that leaves a marker and a task result; returns (exit
/// code, ran, stderr).
fn step_with(pod: &Pod, when: &str) -> (i32, bool, String) {
    let marker = pod.p("ran");
    let _ = fs::remove_file(&marker);
    let script = format!("touch {}; printf r > {}/r", marker.display(), pod.p("results").display());
    let o = run(pod.step(0, &["-when_expressions", when, "-results", "r"], &["sh", "-c", &script]));
    (code(&o), marker.exists(), stderr(&o))
}

#[test]
fn a_false_expression_skips_the_step_as_tekton_does() {
    // TestTerminationReason: exit 0, the post file (not .err), exitCode 0, Reason=Skipped, and no
    // results, even when a result file is there.
    let pod = Pod::new();
    fs::write(pod.p("results/r"), "left by someone").unwrap();
    let (code, ran, err) = step_with(&pod, r#"[{"input":"foo","operator":"in","values":["bar"]}]"#);
    assert_eq!(code, 0, "{err}");
    assert!(!ran, "a skipped step does not run its command");
    assert_eq!(
        golden(&pod.message(0)),
        r#"[{"key":"StartedAt","value":"<T>","type":3},{"key":"Reason","value":"Skipped","type":3}]"#
    );
    assert!(pod.exists("run/0/out") && !pod.exists("run/0/out.err"));
    assert_eq!(fs::read_to_string(pod.p("run/0/status/exitCode")).unwrap(), "0");
    // A successor is released (and runs: the post file is not .err).
    let marker = pod.p("next");
    let o = run(pod.step(1, &["-wait_file", &pod.s("run/0/out")], &["touch", marker.to_str().unwrap()]));
    assert_eq!(o.status.code(), Some(0));
    assert!(marker.exists());
}

#[test]
fn input_operator_values() {
    // TestAllowExec, the cases without CEL.
    let cases: &[(&str, bool)] = &[
        (r#"[{"input":"foo","operator":"in","values":["foo","bar"]}]"#, true),
        (r#"[{"input":"foobar","operator":"notin","values":["foobar"]}]"#, false),
        (
            r#"[{"input":"foobar","operator":"in","values":["foobar"]},{"input":"foo","operator":"in","values":["bar"]}]"#,
            false,
        ),
        (
            r#"[{"input":"foobar","operator":"in","values":["foobar"]},{"input":"foo","operator":"notin","values":["bar"]}]"#,
            true,
        ),
        ("[]", true),
        ("", true),
    ];
    for (when, runs) in cases {
        let pod = Pod::new();
        let (code, ran, err) = step_with(&pod, when);
        assert_eq!(code, 0, "{when}: {err}");
        assert_eq!(ran, *runs, "{when}");
        assert_eq!(pod.message(0).contains("\"Reason\""), !runs, "{when}");
        assert_eq!(pod.message(0).contains(r#"{"key":"r","value":"r","type":1}"#), *runs, "{when}");
    }
}

#[test]
fn step_results_are_substituted_first() {
    // TestApplyStepWhenSubstitutions_Input / _Values: string, array element, object key, a whole
    // array spread into values, and a reference that cannot be resolved (left as written).
    let cases: &[(&str, &str, bool)] = &[
        ("Hello", r#"[{"input":"$(steps.foo.results.res)","operator":"in","values":["Hello"]}]"#, true),
        (
            r#"["Hello","World"]"#,
            r#"[{"input":"$(steps.foo.results.res[1])","operator":"in","values":["World"]}]"#,
            true,
        ),
        (
            r#"{"hello":"World"}"#,
            r#"[{"input":"World","operator":"in","values":["$(steps.foo.results.res.hello)"]}]"#,
            true,
        ),
        (
            r#"["Hello","World"]"#,
            r#"[{"input":"World","operator":"in","values":["$(steps.foo.results.res[*])"]}]"#,
            true,
        ),
        (
            r#"["Hello","World"]"#,
            r#"[{"input":"World","operator":"in","values":["$(steps.foo.results.res[*])1"]}]"#,
            false,
        ),
        (
            r#"{"hello":"World"}"#,
            r#"[{"input":"$(steps.foo.results.res.hello.bar)","operator":"in","values":["$(steps.foo.results.res.hello.bar)"]}]"#,
            true,
        ),
    ];
    for (content, when, runs) in cases {
        let pod = Pod::new();
        result(&pod, "foo", "res", content);
        let (code, ran, err) = step_with(&pod, when);
        assert_eq!(code, 0, "{when}: {err}");
        assert_eq!(ran, *runs, "{when}: {err}");
    }
}

#[test]
fn invalid_json_fails_before_waiting() {
    // main.go: json.Unmarshal fails, log.Fatal (exit 1) before anything runs; baton also writes
    // the .err post file so that later steps skip.
    let pod = Pod::new();
    let o = run(pod.step(0, &["-wait_file", &pod.s("never"), "-when_expressions", "[{"], &["true"]));
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("-when_expressions is not a JSON list of when expressions"), "{}", stderr(&o));
    assert!(pod.exists("run/0/out.err"));
}

#[test]
fn cel() {
    // TestAllowExec, the CEL cases, and TestApplyStepWhenSubstitutions_CEL.
    let cases: &[(&str, Option<bool>)] = &[
        (r#"[{"cel":"'foo'=='foo'"}]"#, Some(true)),
        (r#"[{"cel":"'foo'!='foo'"}]"#, Some(false)),
        (r#"[{"cel":"'foo'=='foo'"},{"input":"foo","operator":"in","values":["bar"]}]"#, Some(false)),
        (r#"[{"cel":"'foo'=='foo'"},{"cel":"'xxx'!='xxx'"}]"#, Some(false)),
        (r#"[{"cel":"'$(steps.foo.results.res)' == 'Hello'"}]"#, Some(true)),
        // Not a boolean, or not compilable: the step fails.
        (r#"[{"cel":"'foo'"}]"#, None),
        (r#"[{"cel":"foo==foo"}]"#, None),
    ];
    for (when, want) in cases {
        let pod = Pod::new();
        result(&pod, "foo", "res", "Hello");
        let (code, ran, err) = step_with(&pod, when);
        match want {
            Some(runs) => {
                assert_eq!(code, 0, "{when}: {err}");
                assert_eq!(ran, *runs, "{when}");
            }
            None => {
                assert_eq!(code, 1, "{when}: {err}");
                assert!(!ran);
                assert!(pod.exists("run/0/out.err"));
                assert_eq!(golden(&pod.message(0)), r#"[{"key":"StartedAt","value":"<T>","type":3}]"#);
            }
        }
    }
    let (_, _, err) = step_with(&Pod::new(), r#"[{"cel":"'foo'"}]"#);
    assert!(err.contains("the CEL expression 'foo' is not evaluated to a boolean"), "{err}");
}

#[test]
fn cel_without_the_companion_fails_the_step_with_a_sentence() {
    let pod = Pod::new();
    let marker = pod.p("ran");
    let mut c = pod.step(0, &["-when_expressions", r#"[{"cel":"'foo'=='foo'"}]"#], &["touch", marker.to_str().unwrap()]);
    c.env("BATON_CEL", pod.p("no-such-baton-cel"));
    let o = run(c);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(!marker.exists());
    assert!(stderr(&o).contains("needs baton's CEL evaluator baton-cel"), "{}", stderr(&o));
    assert!(pod.exists("run/0/out.err"));
}
