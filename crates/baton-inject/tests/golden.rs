//! Golden files: every `tests/golden/NAME.in.{yaml,json}` injected must equal `NAME.out.*`, and
//! injecting the output again must give the same bytes. `BLESS=1 cargo test -p baton-inject --test
//! golden` writes the outputs (read them before committing).

use std::path::{Path, PathBuf};

use baton_inject::manifest::{inject_text, Format};
use baton_inject::{ImageFile, Options};
use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn images() -> ImageFile {
    ImageFile::parse(&std::fs::read_to_string(dir().join("images.yaml")).unwrap()).unwrap()
}

fn golden(name: &str) -> (String, Vec<String>) {
    let ext = name.rsplit('.').next().unwrap();
    let stem = name.trim_end_matches(&format!(".{ext}"));
    let input = std::fs::read_to_string(dir().join(format!("{stem}.in.{ext}"))).unwrap();
    let out_path = dir().join(format!("{stem}.out.{ext}"));
    let images = images();
    let once = inject_text(&input, &Options::default(), &images).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(once.format, if ext == "json" { Format::Json } else { Format::Yaml });
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(&out_path, &once.text).unwrap();
    }
    let want = std::fs::read_to_string(&out_path).unwrap_or_else(|e| panic!("{}: {e}", out_path.display()));
    assert_eq!(once.text, want, "{name}: the output differs from {}", out_path.display());
    let twice = inject_text(&once.text, &Options::default(), &images).unwrap();
    assert_eq!(twice.text, once.text, "{name}: injecting twice changed the output");
    assert_eq!(twice.changed, 0, "{name}");
    (once.text, once.notes)
}

/// The documents of a YAML stream as JSON values (for assertions on fields).
fn yaml_docs(text: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(text).unwrap().into_iter().filter(|v| !v.is_null()).collect()
}

fn strings(value: &Value) -> Vec<&str> {
    value.as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect()
}

#[test]
fn pod_yaml() {
    let (out, notes) = golden("pod.yaml");
    assert_eq!(notes, ["Pod ci/build: injected (3 containers wrapped)"]);
    assert!(out.starts_with("# A build pod: three steps, one after the other.\n# Comments above"), "{out}");
    let pod = &yaml_docs(&out)[0];
    let spec = &pod["spec"];
    assert_eq!(spec["initContainers"][0]["name"], "baton-init");
    assert_eq!(
        strings(&spec["initContainers"][0]["command"]),
        ["/baton", "init", "--dir", "/var/run/baton", "--bin-volume"]
    );
    assert_eq!(
        spec["volumes"][1],
        serde_json::json!({"name": "baton", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}})
    );
    assert_eq!(
        spec["volumes"][2],
        serde_json::json!({"name": "baton-bin", "emptyDir": {"medium": "Memory", "sizeLimit": "8Mi"}})
    );
    assert_eq!(pod["metadata"]["labels"]["baton.dev/injected"], "true");
    // The binary is read-only in every step.
    for c in spec["containers"].as_array().unwrap() {
        let bin = c["volumeMounts"].as_array().unwrap().iter().find(|m| m["name"] == "baton-bin").unwrap();
        assert_eq!(
            bin,
            &serde_json::json!({"name": "baton-bin", "mountPath": "/var/run/baton/bin", "readOnly": true})
        );
    }
    // 1 init + 3 containers: 12288 / 4 = 3072.
    let c = &spec["containers"];
    assert_eq!(
        strings(&c[0]["command"]),
        [
            "/var/run/baton/bin/baton",
            "run",
            "--name=fetch",
            "--message-limit=3072",
            "--",
            "git",
            "clone",
            "--depth=1",
            "https://example.invalid/app.git",
            "/workspace/src"
        ]
    );
    // No command: the image's ENTRYPOINT and CMD (no args).
    assert_eq!(
        strings(&c[1]["command"]),
        [
            "/var/run/baton/bin/baton",
            "run",
            "--name=migrate",
            "--after=fetch",
            "--message-limit=3072",
            "--",
            "/migrate",
            "up"
        ]
    );
    assert_eq!(c[1]["env"][0]["value"], "8080");
    assert_eq!(c[1]["env"][1]["value"], "true");
    // A custom terminationMessagePath is where baton writes; args untouched.
    assert_eq!(
        strings(&c[2]["command"]),
        [
            "/var/run/baton/bin/baton",
            "run",
            "--name=test",
            "--after=migrate",
            "--termination-path=/tmp/termination",
            "--message-limit=3072",
            "--",
            "sh",
            "-c"
        ]
    );
    assert_eq!(c[2]["args"][0], "set -eu\ngo vet ./...\ngo test ./...\n");
    assert_eq!(c[2]["resources"]["requests"]["cpu"], "500m");
    for container in c.as_array().unwrap() {
        let mounts = container["volumeMounts"].as_array().unwrap();
        assert_eq!(
            mounts.iter().filter(|m| m["name"] == "baton" && m["mountPath"] == "/var/run/baton").count(),
            1
        );
    }
}

#[test]
fn job_yaml_dag_by_annotations() {
    let (out, _) = golden("job.yaml");
    let job = &yaml_docs(&out)[0];
    let spec = &job["spec"]["template"]["spec"];
    let inits: Vec<&str> =
        spec["initContainers"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(inits, ["baton-init", "setup"]);
    // 2 init + 4 = 6 containers: 2048 bytes each.
    let command = |i: usize| strings(&spec["containers"][i]["command"]).join(" ");
    assert!(command(0).starts_with("/var/run/baton/bin/baton run --name=prepare --message-limit=2048 -- sh"));
    assert!(command(1).contains("--name=unit --after=prepare --message-limit=2048 --"));
    assert!(command(2).contains("--name=lint --after=prepare --message-limit=2048 --"));
    assert!(command(3).contains("--name=report --after=unit --after=lint:done --message-limit=2048 --"));
    assert_eq!(job["spec"]["backoffLimit"], 2);
}

#[test]
fn cronjob_yaml_with_a_sidecar() {
    let (out, _) = golden("cronjob.yaml");
    let cron = &yaml_docs(&out)[0];
    assert_eq!(cron["spec"]["schedule"], "0 3 * * *");
    let spec = &cron["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    // The proxy has args but no command: the ENTRYPOINT only, args stay as they are.
    assert_eq!(
        strings(&spec["containers"][0]["command"]),
        [
            "/var/run/baton/bin/baton",
            "run",
            "--name=proxy",
            "--until=backup",
            "--until=verify",
            "--message-limit=3072",
            "--",
            "/docker-entrypoint.sh"
        ]
    );
    assert_eq!(strings(&spec["containers"][0]["args"]), ["-c", "/etc/envoy/custom.yaml"]);
    // Sidecars are left out of the default chain: backup starts at once, verify after it.
    assert!(strings(&spec["containers"][1]["command"])
        .join(" ")
        .contains("--name=backup --message-limit=3072 --"));
    assert!(strings(&spec["containers"][2]["command"])
        .join(" ")
        .contains("--name=verify --after=backup --message"));
}

#[test]
fn list_json_keeps_its_indentation_and_other_kinds() {
    let (out, notes) = golden("list.json");
    assert_eq!(
        notes,
        [
            "item 1: Pod default/one: injected (2 containers wrapped)",
            "item 2: Service web is not a Pod, Job or CronJob: passed through unchanged"
        ]
    );
    assert!(out.starts_with("{\n    \"apiVersion\": \"v1\",\n    \"items\": ["), "{out}");
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        list["items"][1],
        serde_json::json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}})
    );
    assert_eq!(list["items"][0]["spec"]["containers"][0]["command"][6], "hello <world> & \"friends\"");
    assert_eq!(list["items"][0]["spec"]["containers"][1]["volumeMounts"][0]["name"], "baton");
}

#[test]
fn compact_json_stays_on_one_line() {
    let (out, _) = golden("pod.json");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.ends_with("}\n"));
}

#[test]
fn multi_document_yaml_passes_other_kinds_byte_for_byte() {
    let (out, notes) = golden("multi.yaml");
    assert_eq!(
        notes,
        [
            "document 1: ConfigMap settings is not a Pod, Job or CronJob: passed through unchanged",
            "document 2: Job steps: injected (2 containers wrapped)",
            "document 3: Service web is not a Pod, Job or CronJob: passed through unchanged",
            "document 4: Pod manual: baton.dev/inject is \"false\", unchanged",
            "document 5: Pod solo: injected (1 container wrapped)",
        ]
    );
    let input = std::fs::read_to_string(dir().join("multi.in.yaml")).unwrap();
    for kept in [
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings   # this comment stays: the ConfigMap passes byte for byte\ndata:\n  level: \"debug\"\n  enabled: yes\n---\n# The Job's leading comment stays too.\n",
        "---\napiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  ports: [{port: 80}]\n---\n# Left alone on purpose.\n",
        "# only a comment: not a document\n---\n",
    ] {
        assert!(input.contains(kept) && out.contains(kept), "not kept: {kept}");
    }
    assert_eq!(yaml_docs(&out).len(), 5);
}

#[test]
fn a_linkerd_injected_job_keeps_its_proxy_beside_the_steps() {
    let (out, notes) = golden("mesh.yaml");
    assert_eq!(notes, ["Job ci/meshed: injected (3 containers wrapped)"]);
    let spec = &yaml_docs(&out)[0]["spec"]["template"]["spec"];
    let command = |i: usize| strings(&spec["containers"][i]["command"]).join(" ");
    // 2 init + 3 containers: 12288 / 5 = 2457. The proxy is not a step: it starts at once and is
    // stopped when both steps have ended; the steps' chain skips it.
    assert_eq!(
        command(0),
        "/var/run/baton/bin/baton run --name=linkerd-proxy --until=fetch --until=build --message-limit=2457 -- \
         /usr/lib/linkerd/linkerd2-proxy"
    );
    assert!(command(1).contains("--name=fetch --message-limit=2457 --"), "{}", command(1));
    assert!(command(2).contains("--name=build --after=fetch --message-limit=2457 --"), "{}", command(2));
    // The postStart hook that holds the steps until the proxy is ready stays.
    assert_eq!(
        spec["containers"][0]["lifecycle"]["postStart"]["exec"]["command"][0],
        "/usr/lib/linkerd/linkerd-await"
    );
    assert_eq!(spec["initContainers"][1]["name"], "linkerd-init");
}
