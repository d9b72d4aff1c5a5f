//! `batonctl inject` run as a process: the golden manifests of baton-inject, standard input and
//! output, refusals and exit codes, the plain examples; and (ignored unless tests/registry.sh runs
//! them against a real registry) ENTRYPOINT and CMD read from a registry.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn golden(name: &str) -> PathBuf {
    repo().join("crates/baton-inject/tests/golden").join(name)
}

fn batonctl(args: &[&str], stdin: &[u8]) -> Output {
    let mut command = support::batonctl();
    command
        .arg("inject")
        .args(args)
        // No docker config of this machine: the tests use none or their own.
        .env("HOME", "/nonexistent")
        .env_remove("DOCKER_CONFIG")
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("XDG_RUNTIME_DIR");
    support::run_with_input(command, stdin)
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap()
}

fn ok(out: &Output) -> &str {
    assert!(out.status.success(), "exit {:?}: {}", out.status.code(), text(&out.stderr));
    text(&out.stdout)
}

/// The commands of every container of a pod template, joined with spaces.
fn commands(template: &Value) -> Vec<String> {
    template["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            c["command"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect::<Vec<_>>().join(" ")
        })
        .collect()
}

#[test]
fn the_golden_manifests_come_out_of_the_binary_as_out_of_the_library() {
    let images = golden("images.yaml");
    for name in ["pod.yaml", "job.yaml", "cronjob.yaml", "list.json", "pod.json", "multi.yaml"] {
        let (stem, ext) = name.split_once('.').unwrap();
        let input = golden(&format!("{stem}.in.{ext}"));
        let want = std::fs::read_to_string(golden(&format!("{stem}.out.{ext}"))).unwrap();
        let out = batonctl(&["-f", input.to_str().unwrap(), "--images", images.to_str().unwrap()], b"");
        assert_eq!(ok(&out), want, "{name}");
        // The output piped back in: the same bytes, nothing injected again.
        let again = batonctl(&["--images", images.to_str().unwrap()], &out.stdout);
        assert_eq!(ok(&again), want, "{name} injected twice");
        assert!(text(&again.stderr).lines().all(|l| !l.contains(": injected")), "{}", text(&again.stderr));
    }
}

#[test]
fn notes_go_to_stderr_and_other_kinds_pass_through() {
    let input =
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web   # kept\nspec: {ports: [{port: 80}]}\n";
    let out = batonctl(&[], input.as_bytes());
    assert_eq!(ok(&out), input);
    assert_eq!(
        text(&out.stderr),
        "batonctl inject: Service web is not a Pod, Job or CronJob: passed through unchanged\n"
    );
}

#[test]
fn refusals_exit_1_with_their_sentence_and_print_nothing() {
    let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"a","image":"x","command":["true"]}]}}"#;
    let out = batonctl(&[], pod.as_bytes());
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(
        text(&out.stderr).starts_with("batonctl: Pod p: spec.restartPolicy is not set, which means Always, but baton needs restartPolicy Never"),
        "{}",
        text(&out.stderr)
    );
    let cycle = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: c\n  annotations:\n    baton.dev/after.a: b\n    baton.dev/after.b: a\n\
                 spec:\n  restartPolicy: Never\n  containers:\n  - {name: a, image: x, command: [\"true\"]}\n  - {name: b, image: x, command: [\"true\"]}\n";
    let out = batonctl(&[], cycle.as_bytes());
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("in a cycle, a → b → a,"), "{}", text(&out.stderr));
}

#[test]
fn bad_options_say_what_to_pass() {
    let pod = std::fs::read(golden("pod.in.json")).unwrap();
    let out = batonctl(&["--dir", "relative"], &pod);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--dir \"relative\" is not an absolute folder"),
        "{}",
        text(&out.stderr)
    );
    let out = batonctl(&["--images", "/nonexistent/images.yaml"], &pod);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot open /nonexistent/images.yaml"), "{}", text(&out.stderr));
    let out = batonctl(&["--images", golden("pod.in.yaml").to_str().unwrap()], &pod);
    assert!(
        text(&out.stderr).contains("is not a map of IMAGE: {entrypoint: [...], cmd: [...]}"),
        "{}",
        text(&out.stderr)
    );
    let out = batonctl(&["--no-such-flag"], &pod);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn another_image_and_folder() {
    let pod = std::fs::read(golden("pod.in.json")).unwrap();
    let out = batonctl(&["--image", "registry.example/baton:1.2.3", "--dir", "/run/b"], &pod);
    let v: Value = serde_json::from_str(ok(&out)).unwrap();
    assert_eq!(v["spec"]["initContainers"][0]["image"], "registry.example/baton:1.2.3");
    assert_eq!(commands(&v), ["/run/b/bin/baton run --name=only --dir=/run/b --message-limit=4096 -- true"]);
}

#[test]
fn the_plain_examples_become_baton_pods() {
    let example = |name: &str| {
        let path = repo().join("examples/plain").join(name);
        let out = batonctl(&["-f", path.to_str().unwrap()], b"");
        let injected = ok(&out).to_string();
        assert_eq!(ok(&batonctl(&[], injected.as_bytes())), injected, "{name}: not idempotent");
        serde_saphyr::from_str::<Value>(&injected).unwrap()
    };
    let job = example("job-steps.yaml");
    let template = &job["spec"]["template"];
    assert_eq!(template["spec"]["initContainers"][0]["name"], "baton-init");
    let c = commands(template);
    assert!(
        c[0].starts_with("/var/run/baton/bin/baton run --name=fetch --message-limit=3072 -- sh -c"),
        "{}",
        c[0]
    );
    assert!(
        c[1].starts_with("/var/run/baton/bin/baton run --name=build --after=fetch --message-limit=3072 --"),
        "{}",
        c[1]
    );
    assert!(
        c[2].starts_with("/var/run/baton/bin/baton run --name=publish --after=build --message-limit=3072 --"),
        "{}",
        c[2]
    );

    let dag = example("dag.yaml");
    let c = commands(&dag);
    assert!(c[0].contains("--name=prepare --message-limit=2457 --"), "{}", c[0]);
    assert!(c[1].contains("--name=unit --after=prepare --message-limit=2457 --"), "{}", c[1]);
    assert!(c[2].contains("--name=lint --after=prepare --message-limit=2457 --"), "{}", c[2]);
    assert!(
        c[3].contains("--name=report --after=unit --after=lint:done --message-limit=2457 --"),
        "{}",
        c[3]
    );

    let sidecar = example("sidecar.yaml");
    let c = commands(&sidecar);
    assert!(c[0].contains("--name=main --message-limit=4096 --"), "{}", c[0]);
    assert!(c[1].contains("--name=log-shipper --until=main --message-limit=4096 --"), "{}", c[1]);
}

#[test]
fn several_files_and_folders_come_out_as_one_stream() {
    let plain = repo().join("examples/plain");
    let one = |name: &str| ok(&batonctl(&["-f", plain.join(name).to_str().unwrap()], b"")).to_string();
    // A folder is its .yaml, .yml and .json files in name order: dag, job-steps, sidecar.
    let out = batonctl(&["-f", plain.to_str().unwrap()], b"");
    let want = [one("dag.yaml"), one("job-steps.yaml"), one("sidecar.yaml")].join("---\n");
    assert_eq!(ok(&out), want);
    let notes = text(&out.stderr);
    assert_eq!(notes.lines().count(), 3, "{notes}");
    assert!(notes.contains("dag.yaml: Pod plain-dag: injected"), "{notes}");
    // Several -f, standard input among them.
    let pod = std::fs::read(golden("pod.in.json")).unwrap();
    let out = batonctl(&["-f", plain.join("sidecar.yaml").to_str().unwrap(), "-f", "-"], &pod);
    let docs: Vec<Value> = serde_saphyr::from_multiple(ok(&out)).unwrap();
    let names: Vec<&str> = docs.iter().filter_map(|d| d["metadata"]["name"].as_str()).collect();
    assert_eq!(names, ["plain-sidecar", "compact"]);
    // A refusal names the file it is in.
    let empty = tempfile::tempdir().unwrap();
    let out = batonctl(&["-f", empty.path().to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("holds no .yaml, .yml or .json file"), "{}", text(&out.stderr));
}

#[test]
fn a_windows_pod_passes_through_unchanged_with_a_warning() {
    let pod = br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"win"},"spec":{"os":{"name":"windows"},"restartPolicy":"Never","containers":[{"name":"a","image":"mcr.microsoft.com/windows/nanoserver:ltsc2022","command":["cmd","/c","echo hi"]}]}}"#;
    let out = batonctl(&[], pod);
    assert_eq!(ok(&out).trim_end(), text(pod));
    assert!(
        text(&out.stderr).contains("Pod win: warning: not injected, it runs on Windows nodes"),
        "{}",
        text(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------------------
// Against a real registry: crates/baton-controller/tests/registry.sh starts Debian's docker-registry
// on a loopback port, pushes images with podman and runs these with INJECT_REGISTRY=127.0.0.1:PORT.

fn registry() -> String {
    std::env::var("INJECT_REGISTRY")
        .expect("INJECT_REGISTRY=host:port is unset: run crates/baton-controller/tests/registry.sh")
}

fn pod_of(images: &[(&str, &str, Option<&str>)]) -> String {
    let containers: Vec<Value> = images
        .iter()
        .map(|(name, image, args)| {
            let mut c = serde_json::json!({"name": name, "image": image});
            if let Some(args) = args {
                c["args"] = serde_json::json!([args]);
            }
            c
        })
        .collect();
    serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "from-registry"},
        "spec": {"restartPolicy": "Never", "containers": containers}})
    .to_string()
}

#[test]
#[ignore = "needs a registry: run crates/baton-controller/tests/registry.sh"]
fn registry_gives_entrypoint_and_cmd() {
    let r = registry();
    let app = format!("{r}/inject/app:1");
    let cmd_only = format!("{r}/inject/cmd-only:1");
    let multi = format!("{r}/inject/multi:1");
    let pod = pod_of(&[
        ("plain", &app, None),
        ("with-args", &app, Some("--loud")),
        ("cmd-only", &cmd_only, None),
        ("multi", &multi, None),
    ]);
    let out = batonctl(&["--insecure-registry", &r], pod.as_bytes());
    let v: Value = serde_json::from_str(ok(&out)).unwrap();
    let c = commands(&v);
    // No command, no args: ENTRYPOINT + CMD.
    assert!(c[0].ends_with("--name=plain --message-limit=2457 -- /hello --greet world"), "{}", c[0]);
    // No command, args: ENTRYPOINT only, the args stay where they are.
    assert!(c[1].ends_with("--after=plain --message-limit=2457 -- /hello"), "{}", c[1]);
    assert_eq!(v["spec"]["containers"][1]["args"], serde_json::json!(["--loud"]));
    // CMD only.
    assert!(c[2].ends_with("-- sh -c echo hi"), "{}", c[2]);
    // A multi-platform image: the linux variant of this machine's CPU.
    let arch = if cfg!(target_arch = "aarch64") { "arm64" } else { "amd64" };
    assert!(c[3].ends_with(&format!("-- /entry-{arch}")), "{}", c[3]);
}

#[test]
#[ignore = "needs a registry: run crates/baton-controller/tests/registry.sh"]
fn registry_without_the_image_is_a_refusal() {
    let r = registry();
    let pod = pod_of(&[("gone", &format!("{r}/inject/missing:1"), None)]);
    let out = batonctl(&["--insecure-registry", &r], pod.as_bytes());
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.starts_with(&format!("batonctl: Pod from-registry: container gone has no command and the ENTRYPOINT of its image {r}/inject/missing:1 is unknown (its registry {r} answered: ")), "{err}");
    assert!(err.contains("add the image to an --images file"), "{err}");
    // Over HTTPS (no --insecure-registry) the plain-HTTP registry cannot answer either.
    let out = batonctl(&[], pod_of(&[("app", &format!("{r}/inject/app:1"), None)]).as_bytes());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
}

#[test]
#[ignore = "needs a registry: run crates/baton-controller/tests/registry.sh"]
fn the_images_file_comes_before_the_registry() {
    let r = registry();
    let dir = std::env::temp_dir().join(format!("inject-images-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("images.yaml");
    std::fs::write(&file, format!("images:\n  {r}/inject/app:1: {{entrypoint: [/from-file]}}\n")).unwrap();
    let pod =
        pod_of(&[("a", &format!("{r}/inject/app:1"), None), ("b", &format!("{r}/inject/cmd-only:1"), None)]);
    let out = batonctl(&["--insecure-registry", &r, "--images", file.to_str().unwrap()], pod.as_bytes());
    std::fs::remove_dir_all(&dir).unwrap();
    let c = commands(&serde_json::from_str(ok(&out)).unwrap());
    assert!(c[0].ends_with("-- /from-file"), "{}", c[0]);
    assert!(c[1].ends_with("-- sh -c echo hi"), "{}", c[1]);
}
