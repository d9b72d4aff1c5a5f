//! `batonctl status` run as a process: files and standard input, JSON and YAML, table and JSON output,
//! exit codes.

mod support;

use std::process::Output;

use serde_json::Value;

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn batonctl(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut command = support::batonctl();
    command.args(args);
    support::run_with_input(command, stdin.unwrap_or_default())
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap()
}

#[test]
fn json_output_is_one_line_per_pod() {
    let out = batonctl(&["status", "-f", &fixture("succeeded.json"), "-o", "json"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<&str> = text(&out.stdout).lines().collect();
    assert_eq!(lines.len(), 1);
    let v: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(
        (v["namespace"].as_str(), v["pod"].as_str(), v["phase"].as_str()),
        (Some("ci"), Some("demo-succeeded"), Some("Succeeded"))
    );
}

#[test]
fn yaml_on_standard_input_gives_the_same_status() {
    let yaml = std::fs::read(fixture("succeeded.yaml")).unwrap();
    let from_yaml = batonctl(&["status", "-o", "json"], Some(&yaml));
    let from_json = batonctl(&["status", "-f", &fixture("succeeded.json"), "-o", "json"], None);
    assert!(from_yaml.status.success(), "{}", text(&from_yaml.stderr));
    assert_eq!(text(&from_yaml.stdout), text(&from_json.stdout));
}

#[test]
fn a_list_of_pods_prints_one_table_each() {
    let a: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("truncated.json")).unwrap()).unwrap();
    let b: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("oom-killed.json")).unwrap()).unwrap();
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": [a, b]});
    let out = batonctl(&["status"], Some(list.to_string().as_bytes()));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(table.starts_with("pod ci/demo-truncated: Failed\nSTEP "), "{table}");
    assert!(table.contains("\n\npod ci/demo-oom: Failed\n"), "{table}");
    assert!(table.contains("pass --message-limit 1228"), "{table}");
    let report = table.lines().find(|l| l.starts_with("report ")).unwrap();
    assert!(report.contains("terminated") && report.contains("Completed"), "{report}");
}

#[test]
fn bad_input_exits_1_with_one_sentence() {
    let out = batonctl(&["status"], Some(b"{\"kind\":\"Service\"}"));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "batonctl: standard input holds no pod: the object is a Service; expected a Pod or a List of pods\n"
    );
    let out = batonctl(&["status", "-f", "/nonexistent/pod.json"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("batonctl: cannot open /nonexistent/pod.json: "),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn bad_usage_exits_2() {
    assert_eq!(batonctl(&["watch", "--batch", "soon", "--annotate"], None).status.code(), Some(2));
    assert_eq!(
        batonctl(&["watch", "--batch", "2s"], None).status.code(),
        Some(2),
        "--batch needs --annotate"
    );
    assert_eq!(batonctl(&["status", "-o", "xml"], None).status.code(), Some(2));
}

/// `--exit-status` says how the run went: 0 succeeded, 1 failed, 2 still going, 3 unreadable input.
#[test]
fn exit_status_says_how_the_run_went() {
    for (file, code) in
        [("succeeded.json", 0), ("oom-killed.json", 1), ("running.json", 2), ("pending.json", 2)]
    {
        let out = batonctl(&["status", "--exit-status", "-f", &fixture(file)], None);
        assert_eq!(out.status.code(), Some(code), "{file}: {}", text(&out.stderr));
        let plain = batonctl(&["status", "-f", &fixture(file)], None);
        assert_eq!(plain.status.code(), Some(0), "{file} without --exit-status");
    }
    let out = batonctl(&["status", "--exit-status"], Some(b"{"));
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    // A list with a failed pod and a running one: failed wins.
    let a: Value = serde_json::from_str(&std::fs::read_to_string(fixture("running.json")).unwrap()).unwrap();
    let b: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("oom-killed.json")).unwrap()).unwrap();
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [a, b]});
    let out = batonctl(&["status", "--exit-status"], Some(list.to_string().as_bytes()));
    assert_eq!(out.status.code(), Some(1));
    let help = batonctl(&["status", "--help"], None);
    assert!(text(&help.stdout).contains("--exit-status"), "{}", text(&help.stdout));
    assert!(text(&help.stdout).contains("Exit status"), "{}", text(&help.stdout));
}

/// A selection the cluster is not asked about: one sentence that says what to give, before any
/// kubeconfig is read (exit 1; 3 with --exit-status).
#[test]
fn a_wrong_cluster_selection_is_refused_before_the_cluster_is_asked() {
    let cases: [(&[&str], &str); 3] = [
        (
            &["status", "deployment/web"],
            "batonctl: batonctl status reads pods, Jobs and CronJobs, not deployment: give pod/NAME, job/NAME or cronjob/NAME\n",
        ),
        (
            &["status", "-A", "job/build"],
            "batonctl: job/build names one object, which lives in one namespace: give it with -n NAMESPACE instead of -A\n",
        ),
        (
            &["status", "-f", "pod.json", "-n", "ci"],
            "batonctl: -f pod.json reads pods from a file, while KIND/NAME, -l, -w, -n, -A, --kubeconfig and --context read them from the cluster: give one or the other\n",
        ),
    ];
    for (args, said) in cases {
        let mut command = support::batonctl();
        command.args(args).env("KUBECONFIG", "/nonexistent/kubeconfig");
        let out = support::run_with_input(command, b"");
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(text(&out.stderr), said, "{args:?}");
    }
    let out = batonctl(&["status", "--exit-status", "deployment/web"], None);
    assert_eq!(out.status.code(), Some(3));
    // A name and a selector, or a name and a file, is a wrong command line.
    assert_eq!(batonctl(&["status", "job/a", "-l", "x=y"], None).status.code(), Some(2));
    assert_eq!(batonctl(&["status", "job/a", "-f", "pod.json"], None).status.code(), Some(2));
}

#[test]
fn completions_are_written_for_bash_zsh_and_fish() {
    for (shell, mark) in
        [("bash", "complete -F"), ("zsh", "#compdef batonctl"), ("fish", "complete -c batonctl")]
    {
        let out = batonctl(&["completions", shell], None);
        assert!(out.status.success(), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        assert!(script.contains(mark), "{shell}: {script}");
        assert!(script.contains("exit-status"), "{shell}: the status flags are completed");
    }
    assert_eq!(batonctl(&["completions", "tcsh"], None).status.code(), Some(2));
}

/// kubectl runs `kubectl-baton` for `kubectl baton …`: the same commands, named as kubectl users
/// type them.
#[test]
fn as_a_kubectl_plugin_it_names_itself_kubectl_baton() {
    let dir = std::env::temp_dir().join(format!("batonctl-plugin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let plugin = dir.join("kubectl-baton");
    let _ = std::fs::remove_file(&plugin);
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_batonctl"), &plugin).unwrap();
    let help = std::process::Command::new(&plugin).args(["status", "--help"]).output().unwrap();
    assert!(help.status.success());
    assert!(text(&help.stdout).contains("Usage: kubectl baton status"), "{}", text(&help.stdout));
    let status = std::process::Command::new(&plugin)
        .args(["status", "--exit-status", "-f", &fixture("succeeded.json")])
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(0), "{}", text(&status.stderr));
    assert!(text(&status.stdout).starts_with("pod ci/demo-succeeded: Succeeded\n"));
    let plain = batonctl(&["status", "--help"], None);
    assert!(text(&plain.stdout).contains("Usage: batonctl status"), "{}", text(&plain.stdout));
    std::fs::remove_dir_all(&dir).unwrap();
}
