//! A mesh's injector after baton's: the API server calls baton's webhook first (webhooks run in name
//! order), then Istio's adds its proxy, then baton's is called again (`reinvocationPolicy:
//! IfNeeded`). The second call must wrap the proxy as a sidecar and lower every step's limit to the
//! new share; a third must change nothing.

use baton_inject::{plan_template, ImageConfig, NoImages, Options, TemplateOutcome};
use serde_json::{json, Value};
use std::collections::BTreeMap;

const PROXY_IMAGE: &str = "docker.io/istio/proxyv2:1.24.0";

/// A Job's pod as baton's webhook first sees it: two steps, the proxy named ahead of its arrival.
fn pod() -> Value {
    json!({
        "metadata": {"annotations": {"baton.dev/inject": "true", "baton.dev/sidecars": "istio-proxy"}},
        "spec": {"restartPolicy": "Never", "containers": [
            {"name": "build", "image": "golang:1.23", "command": ["go", "build", "./..."]},
            {"name": "test", "image": "golang:1.23", "command": ["go", "test", "./..."]},
        ]},
    })
}

/// What Istio's injector does to a pod (shortened): an init container, and its proxy appended to
/// `containers` (no command: the image's ENTRYPOINT, pilot-agent, runs its args).
fn istio_injects(pod: &mut Value) {
    pod["spec"]["initContainers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "istio-init", "image": PROXY_IMAGE, "args": ["istio-iptables", "-p", "15001"]}));
    pod["spec"]["containers"].as_array_mut().unwrap().push(json!({
        "name": "istio-proxy", "image": PROXY_IMAGE, "args": ["proxy", "sidecar", "--domain", "ci.svc.cluster.local"],
        "securityContext": {"runAsUser": 1337, "runAsGroup": 1337},
    }));
}

fn images() -> BTreeMap<String, Result<ImageConfig, String>> {
    let pilot = ImageConfig { entrypoint: vec!["/usr/local/bin/pilot-agent".into()], cmd: vec![] };
    BTreeMap::from([(PROXY_IMAGE.to_string(), Ok(pilot))])
}

fn admit(pod: &mut Value) -> TemplateOutcome {
    let planned = plan_template(pod, Some("ci"), &Options::default(), &images()).unwrap();
    json_patch::patch(pod, &planned.ops).unwrap();
    planned.outcome
}

fn command(pod: &Value, i: usize) -> String {
    let words: Vec<&str> = pod["spec"]["containers"][i]["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    words.join(" ")
}

#[test]
fn a_proxy_added_after_baton_is_wrapped_as_a_sidecar_and_the_limits_follow() {
    let mut pod = pod();
    assert_eq!(admit(&mut pod), TemplateOutcome::Injected { wrapped: 2 });
    // baton-init + 2 steps: 4096 each.
    assert!(
        command(&pod, 1).contains("--name=test --after=build --message-limit=4096 --"),
        "{}",
        command(&pod, 1)
    );

    istio_injects(&mut pod);
    assert_eq!(admit(&mut pod), TemplateOutcome::Injected { wrapped: 1 });
    // baton-init, istio-init + build, test, istio-proxy: 12288 / 5 = 2457 for every one of them.
    assert_eq!(
        command(&pod, 0),
        "/var/run/baton/bin/baton run --name=build --message-limit=2457 -- go build ./..."
    );
    assert_eq!(
        command(&pod, 1),
        "/var/run/baton/bin/baton run --name=test --after=build --message-limit=2457 -- go test ./..."
    );
    assert_eq!(
        command(&pod, 2),
        "/var/run/baton/bin/baton run --name=istio-proxy --until=build --until=test --message-limit=2457 -- \
         /usr/local/bin/pilot-agent"
    );
    assert_eq!(pod["spec"]["containers"][2]["args"][0], "proxy", "args stay where they are");
    let mounts = pod["spec"]["containers"][2]["volumeMounts"].as_array().unwrap();
    assert_eq!(mounts.len(), 2, "{mounts:?}");

    // Called a third time (another webhook changed something else): nothing to do.
    let again = plan_template(&pod, Some("ci"), &Options::default(), &NoImages).unwrap();
    assert_eq!((again.outcome, again.ops.len()), (TemplateOutcome::AlreadyInjected, 0));
}

#[test]
fn a_proxy_is_a_sidecar_even_when_not_named() {
    let mut pod = pod();
    pod["metadata"]["annotations"] = json!({"baton.dev/inject": "true"});
    admit(&mut pod);
    istio_injects(&mut pod);
    admit(&mut pod);
    assert!(
        command(&pod, 2).contains("--name=istio-proxy --until=build --until=test --message"),
        "{}",
        command(&pod, 2)
    );
    assert!(!command(&pod, 2).contains("--after"), "the proxy waits for no step");
}

#[test]
fn a_native_sidecar_proxy_is_left_alone_and_only_the_limits_change() {
    let mut pod = pod();
    admit(&mut pod);
    // Istio with native sidecars: the proxy is an init container that keeps running.
    let native =
        json!({"name": "istio-proxy", "image": PROXY_IMAGE, "restartPolicy": "Always", "args": ["proxy"]});
    pod["spec"]["initContainers"].as_array_mut().unwrap().push(native.clone());
    assert_eq!(admit(&mut pod), TemplateOutcome::Relimited { steps: 2 });
    assert_eq!(pod["spec"]["initContainers"][1], native, "untouched");
    // baton-init, istio-proxy + 2 steps: 3072.
    assert!(command(&pod, 0).contains("--name=build --message-limit=3072 --"), "{}", command(&pod, 0));
    assert!(
        command(&pod, 1).contains("--name=test --after=build --message-limit=3072 --"),
        "{}",
        command(&pod, 1)
    );
    let again = plan_template(&pod, Some("ci"), &Options::default(), &NoImages).unwrap();
    assert_eq!((again.outcome, again.ops.len()), (TemplateOutcome::AlreadyInjected, 0));
}

#[test]
fn a_pod_written_for_baton_by_hand_keeps_its_limits() {
    // No baton.dev/injected label: its author chose the limits; nothing is added to wrap either.
    let mut pod = pod();
    for (i, c) in pod["spec"]["containers"].as_array_mut().unwrap().iter_mut().enumerate() {
        c["command"] = json!(["/var/run/baton/bin/baton", "run", format!("--name=s{i}"), "--", "true"]);
    }
    pod["spec"]["initContainers"] = json!([{"name": "a"}, {"name": "b"}, {"name": "c"}, {"name": "d"}]);
    let planned = plan_template(&pod, None, &Options::default(), &NoImages).unwrap();
    assert_eq!((planned.outcome, planned.ops.len()), (TemplateOutcome::AlreadyInjected, 0));
}
