//! Tekton mode: step results and step artifacts of earlier steps substituted at run time
//! (StepActions), and `-result_from sidecar-logs`, driven from outside. The cases are Tekton's own
//! (tektoncd/pipeline v1.15: pkg/entrypoint/entrypointer_test.go TestApplyStepResultSubstitutions_Env,
//! _Command, TestApplyStepArtifactSubstitutions*, TestGetArtifactValues), run through the binary.

mod tekton_support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use tekton_support::*;

/// Step `name`'s result `result` holding `content`, where a later step reads it:
/// /tekton/steps/step-<name>/results/<result>.
fn result(pod: &Pod, name: &str, result: &str, content: &str) {
    let dir = pod.p(&format!("steps/step-{name}/results"));
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(result), content).unwrap();
}

/// The arguments a command got, one `[arg]` each, written to `out` by a shell.
fn args_command(out: &Path) -> Vec<String> {
    vec![
        "sh".into(),
        "-c".into(),
        format!("for a in \"$@\"; do printf '[%s]' \"$a\"; done > {}", out.display()),
        "sh".into(),
    ]
}

#[test]
fn command_and_arguments() {
    // TestApplyStepResultSubstitutions_Command: (result file, arguments, arguments the command gets,
    // whether Tekton logs an error and leaves them as written).
    let cases: &[(&str, &[&str], &str, bool)] = &[
        ("Hello", &["$(steps.foo.results.res1)"], "[Hello]", false),
        (r#"["Hello","World"]"#, &["$(steps.foo.results.res[1])"], "[World]", false),
        (
            r#"["Hello","World"]"#,
            &["start", "$(steps.foo.results.res[*])", "stop"],
            "[start][Hello][World][stop]",
            false,
        ),
        (r#"{"hello":"World"}"#, &["$(steps.foo.results.res.hello)"], "[World]", false),
        (
            r#"{"hello":"World"}"#,
            &["echo $(steps.foo.results.res.hello.bar)"],
            "[echo $(steps.foo.results.res.hello.bar)]",
            true,
        ),
        (
            r#"["Hello","World"]"#,
            &["start", "$(steps.foo.results.res[*])bbb", "stop"],
            "[start][$(steps.foo.results.res[*])bbb][stop]",
            true,
        ),
        (r#"["Hello","World"]"#, &["$(steps.foo.results.res[0])-$(steps.foo.results.res[1])"], "[Hello-World]", false),
        (
            r#"{"first":"hello", "second":"world"}"#,
            &["$(steps.foo.results.res.first)-$(steps.foo.results.res.second)"],
            "[hello-world]",
            false,
        ),
        // A JSON string is unquoted; an array referenced as a string, or an empty array spread, is "".
        ("\"quoted\"\n", &["$(steps.foo.results.res1)"], "[quoted]", false),
        (r#"["a"]"#, &["x$(steps.foo.results.res)x"], "[xx]", false),
        ("[]", &["$(steps.foo.results.res[*])"], "[]", false),
        // A missing file: left as written, the whole command with it.
        (
            "",
            &["$(steps.foo.results.res1)", "$(steps.nope.results.x)"],
            "[$(steps.foo.results.res1)][$(steps.nope.results.x)]",
            true,
        ),
    ];
    for (content, args, want, logged) in cases {
        let pod = Pod::new();
        let name = if args[0].contains("res1") { "res1" } else { "res" };
        result(&pod, "foo", name, content);
        let out = pod.p("args");
        let mut command = args_command(&out);
        command.extend(args.iter().map(|a| a.to_string()));
        let command: Vec<&str> = command.iter().map(String::as_str).collect();
        let o = run(pod.step(1, &[], &command));
        assert_eq!(code(&o), 0, "{args:?}: {}", stderr(&o));
        assert_eq!(fs::read_to_string(&out).unwrap(), *want, "{args:?}");
        assert_eq!(stderr(&o).contains("left as written"), *logged, "{args:?}: {}", stderr(&o));
    }
}

/// Steps do not trust each other (docs/protocol.md): a FIFO planted in place of a result would block
/// the next step forever, and a symbolic link would read a file of the reader's own container into
/// its command. Neither is read; the reference stays as written, as for a missing file.
#[test]
fn a_fifo_or_a_link_in_place_of_a_result_is_not_read() {
    for plant in ["fifo", "link"] {
        let pod = Pod::new();
        let dir = pod.p("steps/step-foo/results");
        fs::create_dir_all(&dir).unwrap();
        let private = pod.p("private");
        fs::write(&private, "private").unwrap();
        if plant == "fifo" {
            assert!(std::process::Command::new("mkfifo").arg(dir.join("res")).status().unwrap().success());
        } else {
            std::os::unix::fs::symlink(&private, dir.join("res")).unwrap();
        }
        let out = pod.p("args");
        let mut command = args_command(&out);
        command.push("$(steps.foo.results.res)".into());
        let command: Vec<&str> = command.iter().map(String::as_str).collect();
        let mut step = pod.step(1, &[], &command);
        let mut child = step.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
        if wait_exit(&mut child, std::time::Duration::from_secs(10)).is_none() {
            child.kill().unwrap();
            panic!("{plant}: the step blocked reading the planted result");
        }
        let o = child.wait_with_output().unwrap();
        assert_eq!(code(&o), 0, "{plant}: {}", stderr(&o));
        assert_eq!(fs::read_to_string(&out).unwrap(), "[$(steps.foo.results.res)]", "{plant}");
        assert!(stderr(&o).contains("left as written"), "{plant}: {}", stderr(&o));
    }
}

#[test]
fn environment() {
    // TestApplyStepResultSubstitutions_Env.
    let cases: &[(&str, &str, &str)] = &[
        ("Hello", "$(steps.foo.results.res)", "Hello"),
        (r#"["Hello","World"]"#, "$(steps.foo.results.res[1])", "World"),
        (r#"{"hello":"World"}"#, "$(steps.foo.results.res.hello)", "World"),
        (
            r#"{"first":"hello", "second":"world"}"#,
            "$(steps.foo.results.res.first)-$(steps.foo.results.res.second)",
            "hello-world",
        ),
        (r#"{"hello":"World"}"#, "echo $(steps.foo.results.res.hello.bar)", "echo $(steps.foo.results.res.hello.bar)"),
    ];
    for (content, value, want) in cases {
        let pod = Pod::new();
        result(&pod, "foo", "res", content);
        let out = pod.p("env");
        let o =
            run(pod.step(1, &[], &["sh", "-c", &format!("printf %s \"$FOO\" > {}", out.display())]).env("FOO", value));
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert_eq!(fs::read_to_string(&out).unwrap(), *want, "{value}");
    }
}

#[test]
fn an_array_result_feeds_the_next_step_s_arguments() {
    // Two real steps: a StepAction writes an array step result (reported as type 4), the next
    // step gets its elements as arguments of their own.
    let pod = Pod::new();
    let o = run(pod.cmd(["step-init", "step-make", "step-use"]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = run(pod.step(
        0,
        &["-step_results", "files"],
        &["sh", "-c", &format!("printf '%s' '[\"a b\",\"c\"]' > {}", pod.p("run/0/status/results/files").display())],
    ));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        golden(&pod.message(0)),
        r#"[{"key":"files","value":"[\"a b\",\"c\"]","type":4},{"key":"StartedAt","value":"<T>","type":3}]"#
    );
    let out = pod.p("args");
    let mut command = args_command(&out);
    command.extend(["first".into(), "$(steps.make.results.files[*])".into(), "$(steps.make.results.files[0])".into()]);
    let command: Vec<&str> = command.iter().map(String::as_str).collect();
    let o = run(pod.step(1, &["-wait_file", &pod.s("run/0/out")], &command));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(fs::read_to_string(&out).unwrap(), "[first][a b][c][a b]");
}

#[test]
fn an_index_past_the_end_fails_the_step() {
    // Tekton's entrypoint panics there (index out of range) and dies without a post file.
    let pod = Pod::new();
    result(&pod, "foo", "res", r#"["only"]"#);
    let marker = pod.p("ran");
    let o = run(pod.step(1, &[], &["touch", marker.to_str().unwrap(), "$(steps.foo.results.res[3])"]));
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("refers to element 3 of the result res of step foo, which has 1 element(s)"));
    assert!(!marker.exists());
    assert!(pod.exists("run/1/out.err"));
    assert_eq!(golden(&pod.message(1)), r#"[{"key":"StartedAt","value":"<T>","type":3}]"#);
}

const PROVENANCE: &str = r#"{"inputs":[{"name":"source","values":[{"digest":{"sha256":"b35ca","sha1":"95588"},"uri":"pkg:git/x"}]}],
  "outputs":[{"name":"image","values":[{"uri":"pkg:oci/img","digest":{"sha256":"d<e>f"}}],"buildOutput":true},{"name":"none"}]}"#;

fn provenance(pod: &Pod, step: &str, content: &str) {
    let dir = pod.p(&format!("steps/step-{step}/artifacts"));
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("provenance.json"), content).unwrap();
}

#[test]
fn step_artifacts_in_arguments_and_environment() {
    // TestGetArtifactValues, TestApplyStepArtifactSubstitutionsCommand / Env: json.Marshal of the
    // artifact's values (keys sorted, empty fields left out, HTML-safe escapes).
    let pod = Pod::new();
    provenance(&pod, "a", PROVENANCE);
    let out = pod.p("args");
    let mut command = args_command(&out);
    command.extend([
        "$(steps.a.outputs.image)".into(),
        "$(steps.a.inputs.source)".into(),
        "$(steps.a.outputs.none)".into(),
    ]);
    let command: Vec<&str> = command.iter().map(String::as_str).collect();
    let env_out = pod.p("env");
    let o = run(pod
        .step(1, &[], &command)
        .env("IMG", "x=$(steps.a.outputs.image)")
        .env("REPORT", format!("{}", env_out.display())));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        fs::read_to_string(&out).unwrap(),
        r#"[[{"digest":{"sha256":"d\u003ce\u003ef"},"uri":"pkg:oci/img"}]][[{"digest":{"sha1":"95588","sha256":"b35ca"},"uri":"pkg:git/x"}]][null]"#
    );
    let o = run(pod
        .step(2, &[], &["sh", "-c", "printf %s \"$IMG\" > \"$REPORT\""])
        .env("IMG", "x=$(steps.a.outputs.image)")
        .env("REPORT", &env_out));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        fs::read_to_string(&env_out).unwrap(),
        r#"x=[{"digest":{"sha256":"d\u003ce\u003ef"},"uri":"pkg:oci/img"}]"#
    );
    // An artifact that is not there: logged, left as written.
    let o = run(pod
        .step(3, &[], &["sh", "-c", "printf %s \"$1\" > \"$REPORT\"", "sh", "$(steps.a.outputs.nope)"])
        .env("REPORT", &env_out));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(fs::read_to_string(&env_out).unwrap(), "$(steps.a.outputs.nope)");
    assert!(stderr(&o).contains("values for template $(steps.a.outputs.nope) not found"), "{}", stderr(&o));
}

#[test]
fn step_artifacts_in_a_script_run_from_a_new_file() {
    // TestApplyStepArtifactSubstitutionsScript: a lone /tekton/scripts file is rewritten into a
    // new 0755 file in $TMPDIR (the original stays as it is).
    let pod = Pod::new();
    provenance(&pod, "a", PROVENANCE);
    let script = pod.p("scripts/script-1-abcde");
    fs::create_dir_all(script.parent().unwrap()).unwrap();
    let out = pod.p("out");
    let text = format!(
        "#!/bin/sh\nprintf '%s' '$(steps.a.outputs.image)' > {}\nprintf ' %s' \"$0\" >> {}\n",
        out.display(),
        out.display()
    );
    fs::write(&script, &text).unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let tmp = pod.dir.path().join("tmp");
    fs::create_dir_all(&tmp).unwrap();
    let o = run(pod.step(1, &[], &[script.to_str().unwrap()]).env("TMPDIR", &tmp));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let got = fs::read_to_string(&out).unwrap();
    let (json, ran) = got.split_once(' ').unwrap();
    assert_eq!(json, r#"[{"digest":{"sha256":"d\u003ce\u003ef"},"uri":"pkg:oci/img"}]"#);
    assert!(ran.starts_with(tmp.join("script-").to_str().unwrap()), "{ran}");
    assert_eq!(fs::metadata(ran).unwrap().permissions().mode() & 0o7777, 0o755);
    assert_eq!(fs::read_to_string(&script).unwrap(), text);
}

#[test]
fn sidecar_logs_leave_the_results_in_their_files() {
    // -result_from sidecar-logs: results (and artifacts) are not put in the message; Tekton's
    // results sidecar reads the files once every step's post file is there.
    let pod = Pod::new();
    let script = format!(
        "printf task > {r}/t; printf step > {s}/results/s; mkdir -p {s}/artifacts; printf '{{}}' > {s}/artifacts/provenance.json",
        r = pod.p("results").display(),
        s = pod.p("run/0/status").display()
    );
    let o = run(pod.step(
        0,
        &["-result_from", "sidecar-logs", "-results", "t", "-step_results", "s"],
        &["sh", "-c", &script],
    ));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(golden(&pod.message(0)), r#"[{"key":"StartedAt","value":"<T>","type":3}]"#);
    assert_eq!(fs::read_to_string(pod.p("results/t")).unwrap(), "task");
    assert_eq!(fs::read_to_string(pod.p("run/0/status/results/s")).unwrap(), "step");
    assert!(pod.exists("run/0/out"));
    assert_eq!(fs::read_to_string(pod.p("run/0/status/exitCode")).unwrap(), "0");
    // The same step with termination-message (the default) reports them, and task artifacts (type 6).
    let pod = Pod::new();
    fs::create_dir_all(pod.p("artifacts")).unwrap();
    fs::write(pod.p("artifacts/provenance.json"), "{\"outputs\":[]}").unwrap();
    let o =
        run(pod.step(0, &["-results", "t"], &["sh", "-c", &format!("printf task > {}/t", pod.p("results").display())]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        golden(&pod.message(0)),
        format!(
            r#"[{{"key":"t","value":"task","type":1}},{{"key":"StartedAt","value":"<T>","type":3}},{{"key":"{}","value":"{{\"outputs\":[]}}","type":6}}]"#,
            pod.p("artifacts/provenance.json").display()
        )
    );
}
