//! Overlays of deploy/ built by kustomize itself (`kubectl kustomize`, where kubectl is installed;
//! skipped with a note elsewhere): another `namespace:` still gives a webhook whose pieces agree, and
//! kustomize's `images:` reaches the image of the baton-init container the webhook adds.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// `to` relative to the folder `from` (kustomize takes no absolute paths to a base).
fn relative(from: &Path, to: &Path) -> String {
    let (from, to) = (from.canonicalize().unwrap(), to.canonicalize().unwrap());
    let common = from.components().zip(to.components()).take_while(|(a, b)| a == b).count();
    let up = from.components().skip(common).map(|_| "..".to_string());
    let down = to.components().skip(common).map(|c| match c {
        Component::Normal(name) => name.to_string_lossy().into_owned(),
        other => panic!("{other:?}"),
    });
    up.chain(down).collect::<Vec<_>>().join("/")
}

/// A kustomization folder of its own with `text`, where `BASE` is replaced by the path of deploy/.
fn overlay(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let base = relative(dir.path(), &repository().join("deploy"));
    std::fs::write(dir.path().join("kustomization.yaml"), text.replace("BASE", &base)).unwrap();
    dir
}

/// `kubectl kustomize DIR`, by `Kind/namespace/name`; `None` when kubectl is not installed.
fn kustomize(dir: &Path) -> Option<BTreeMap<String, Value>> {
    let Ok(out) = Command::new("kubectl").arg("kustomize").arg(dir).output() else {
        eprintln!("kubectl is not installed here: kustomize's own build is not checked");
        return None;
    };
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let objects = baton_inject::manifest::objects(&String::from_utf8(out.stdout).unwrap()).unwrap();
    let key = |o: &Value| {
        let namespace = o["metadata"]["namespace"].as_str().unwrap_or("-");
        format!("{}/{namespace}/{}", o["kind"].as_str().unwrap(), o["metadata"]["name"].as_str().unwrap())
    };
    Some(objects.into_iter().map(|o| (key(&o), o)).collect())
}

/// Every place of the built objects that names baton's namespace agrees on `ns`.
fn consistent(objects: &BTreeMap<String, Value>, ns: &str) {
    let text = serde_json::to_string(objects).unwrap();
    assert!(!text.contains("baton-system"), "baton-system is left somewhere: {text}");
    assert!(objects.contains_key(&format!("Namespace/-/{ns}")));
    let config = &objects["MutatingWebhookConfiguration/-/baton-webhook"];
    assert_eq!(
        config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        format!("{ns}/baton-webhook")
    );
    let hook = &config["webhooks"][0];
    assert_eq!(hook["clientConfig"]["service"]["namespace"], ns);
    assert!(objects.contains_key(&format!("Service/{ns}/baton-webhook")), "the Service it calls is there");
    let excluded = &hook["namespaceSelector"]["matchExpressions"][0];
    assert_eq!(excluded["key"], "kubernetes.io/metadata.name");
    assert_eq!(excluded["values"][0], ns, "the webhook never applies to its own namespace");
    if let Some(certificate) = objects.get(&format!("Certificate/{ns}/baton-webhook")) {
        let names: Vec<String> = serde_json::from_value(certificate["spec"]["dnsNames"].clone()).unwrap();
        assert_eq!(names, baton_controller::webhook::certs::dns_names("baton-webhook", ns));
    }
    let binding = &objects["ClusterRoleBinding/-/baton-controller"];
    assert_eq!(binding["subjects"][0]["namespace"], ns);
}

/// The example overlay, with its namespace and its base replaced.
fn example(namespace: &str, base: &str) -> tempfile::TempDir {
    let example = repository().join("examples/deploy-namespace/kustomization.yaml");
    let text = std::fs::read_to_string(example).unwrap();
    assert!(text.contains("\nnamespace: baton\n") && text.contains("  - ../../deploy\n"), "{text}");
    overlay(
        &text
            .replace("\nnamespace: baton\n", &format!("\nnamespace: {namespace}\n"))
            .replace("  - ../../deploy\n", &format!("  - BASE{base}\n")),
    )
}

#[test]
fn the_example_overlay_moves_the_whole_webhook_to_another_namespace() {
    let Some(built) = kustomize(&repository().join("examples/deploy-namespace")) else { return };
    consistent(&built, "baton");
    for (namespace, base) in [("ci-tools", ""), ("platform-baton", "/without-cert-manager")] {
        let dir = example(namespace, base);
        let built = kustomize(dir.path()).unwrap();
        consistent(&built, namespace);
        assert_eq!(built.contains_key(&format!("Certificate/{namespace}/baton-webhook")), base.is_empty());
    }
}

#[test]
fn the_baton_init_image_follows_kustomize_images() {
    let dir = overlay(
        "resources: [BASE]\n\
         images:\n\
         - {name: localhost/baton, newName: registry.example.com/ci/baton, newTag: \"1.2.3\"}\n\
         - {name: localhost/batonctl, newName: registry.example.com/ci/batonctl, newTag: \"1.2.3\"}\n",
    );
    let Some(built) = kustomize(dir.path()) else { return };
    let webhook =
        &built["Deployment/baton-system/baton-webhook"]["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(webhook["image"], "registry.example.com/ci/batonctl:1.2.3");
    let env = webhook["env"].as_array().unwrap();
    let init = env.iter().find(|e| e["name"] == "BATON_INIT_IMAGE").unwrap();
    assert_eq!(init["value"], "registry.example.com/ci/baton:1.2.3", "the image baton-init runs");
    assert!(webhook["command"].as_array().unwrap().contains(&"--image=$(BATON_INIT_IMAGE)".into()));
    let controller =
        &built["Deployment/baton-system/baton-controller"]["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(controller["image"], "registry.example.com/ci/batonctl:1.2.3");
}
