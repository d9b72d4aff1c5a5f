//! Properties over generated pods: every original field is kept, every container is wrapped exactly
//! once, no volume or mount name collides, and injecting an injected pod changes nothing — on the
//! JSON tree and through YAML and JSON text, byte for byte.

use std::collections::BTreeSet;

use baton_inject::manifest::inject_text;
use baton_inject::{inject_object, runs_baton, ImageFile, Options, Outcome};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const DIR: &str = "/var/run/baton";

/// Strings that YAML likes to misread, plus arbitrary printable text and lines.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("yes".to_string()),
        Just("null".to_string()),
        Just("1.50".to_string()),
        Just("0o17".to_string()),
        Just("- item".to_string()),
        Just("key: value".to_string()),
        Just("# not a comment".to_string()),
        Just("  leading and trailing  ".to_string()),
        Just("line one\nline two\n".to_string()),
        Just("---".to_string()),
        Just("".to_string()),
        "[ -~]{0,16}",
        "[a-z \n\"'é]{0,24}",
    ]
}

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,6}[a-z0-9]"
}

fn extra_fields() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map("x[A-Za-z]{1,6}", text().prop_map(Value::String), 0..3)
        .prop_map(|m| m.into_iter().collect())
}

/// A container: maybe a command, maybe args, maybe mounts, maybe unknown fields.
fn container() -> impl Strategy<Value = Value> {
    (
        prop::option::of(prop::collection::vec(text(), 1..4)),
        prop::option::of(prop::collection::vec(text(), 0..3)),
        prop::option::of(prop::collection::vec((name(), "/[a-z]{1,8}"), 0..3)),
        prop::sample::select(vec!["busybox", "app:1", "ghcr.io/org/tool:2"]),
        extra_fields(),
        prop::option::of(text()),
    )
        .prop_map(|(command, args, mounts, image, extra, env)| {
            let mut c = Map::new();
            c.insert("image".into(), json!(image));
            if let Some(command) = command {
                c.insert("command".into(), json!(command));
            }
            if let Some(args) = args {
                c.insert("args".into(), json!(args));
            }
            if let Some(mounts) = mounts {
                let mut seen = BTreeSet::new();
                let mounts: Vec<Value> = mounts
                    .into_iter()
                    .filter(|(_, path)| seen.insert(path.clone()))
                    .map(|(n, p)| json!({"name": n, "mountPath": p}))
                    .collect();
                c.insert("volumeMounts".into(), json!(mounts));
            }
            if let Some(env) = env {
                c.insert("env".into(), json!([{"name": "VALUE", "value": env}]));
            }
            c.extend(extra);
            Value::Object(c)
        })
}

fn pod() -> impl Strategy<Value = Value> {
    (
        prop::collection::btree_set(name(), 1..6),
        prop::collection::vec(container(), 6),
        prop::collection::btree_set(name(), 0..3),
        prop::collection::btree_set(name(), 0..3),
        prop::bool::ANY,
        prop::option::of(text()),
        extra_fields(),
    )
        .prop_map(|(names, containers, inits, volumes, parallel, label, extra)| {
            let names: Vec<String> = names.into_iter().collect();
            let containers: Vec<Value> = names
                .iter()
                .zip(containers)
                .map(|(n, mut c)| {
                    c.as_object_mut().unwrap().insert("name".into(), json!(n));
                    c
                })
                .collect();
            let inits: Vec<Value> = inits
                .into_iter()
                .filter(|n| !names.contains(n))
                .map(|n| json!({"name": n, "image": "busybox", "command": ["true"]}))
                .collect();
            let volumes: Vec<Value> =
                volumes.into_iter().map(|n| json!({"name": n, "emptyDir": {}})).collect();
            let mut annotations = Map::new();
            if parallel {
                annotations.insert("baton.dev/order".into(), json!("parallel"));
                // The last container waits for all the others.
                let (last, rest) = names.split_last().unwrap();
                annotations.insert(format!("baton.dev/after.{last}"), json!(rest.join(",")));
            }
            if let Some(label) = label {
                annotations.insert("note".into(), json!(label));
            }
            let mut spec = Map::new();
            spec.insert("restartPolicy".into(), json!("Never"));
            spec.insert("containers".into(), Value::Array(containers));
            if !inits.is_empty() {
                spec.insert("initContainers".into(), Value::Array(inits));
            }
            if !volumes.is_empty() {
                spec.insert("volumes".into(), Value::Array(volumes));
            }
            spec.extend(extra);
            json!({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": "p", "annotations": annotations}, "spec": spec})
        })
}

fn images() -> ImageFile {
    ImageFile::parse("busybox: {cmd: [sh]}\napp:1: {entrypoint: [/app], cmd: [serve]}\nghcr.io/org/tool:2: {entrypoint: [/tool]}\n")
        .unwrap()
}

fn names_of(list: &Value) -> Vec<&str> {
    list.as_array().into_iter().flatten().map(|v| v["name"].as_str().unwrap()).collect()
}

/// `new` starts with every element of `old`, in order (the injection only appends).
fn extends(old: Option<&Value>, new: &Value) -> bool {
    let old = old.and_then(Value::as_array).cloned().unwrap_or_default();
    let new = new.as_array().unwrap();
    new.len() >= old.len() && new[..old.len()] == old[..]
}

fn check(original: &Value, injected: &Value) -> Result<(), TestCaseError> {
    // Metadata: the pod's own, plus the label that marks it as baton's.
    let mut metadata = original["metadata"].clone();
    metadata["labels"]["baton.dev/injected"] = json!("true");
    prop_assert_eq!(&metadata, &injected["metadata"]);
    let (old, new) = (original["spec"].as_object().unwrap(), injected["spec"].as_object().unwrap());
    for (key, value) in old {
        if !["containers", "initContainers", "volumes"].contains(&key.as_str()) {
            prop_assert_eq!(value, &new[key], "spec.{} changed", key);
        }
    }
    // Init containers: baton-init first, then the pod's own, untouched.
    let inits = new["initContainers"].as_array().unwrap();
    prop_assert_eq!(inits[0]["name"].as_str(), Some("baton-init"));
    prop_assert_eq!(
        &inits[1..],
        old.get("initContainers").and_then(Value::as_array).map_or(&[][..], |v| &v[..])
    );
    // Volumes: the pod's own, then baton's two; no name twice.
    prop_assert!(extends(old.get("volumes"), &new["volumes"]));
    let volumes = names_of(&new["volumes"]);
    prop_assert_eq!(
        volumes.iter().collect::<BTreeSet<_>>().len(),
        volumes.len(),
        "volume names collide: {:?}",
        volumes
    );
    prop_assert_eq!(volumes.iter().filter(|v| **v == "baton").count(), 1);
    prop_assert_eq!(volumes.iter().filter(|v| **v == "baton-bin").count(), 1);
    let count = new["containers"].as_array().unwrap().len() + inits.len();
    let limit = format!("--message-limit={}", 4096.min(12288 / count));
    for (o, n) in old["containers"].as_array().unwrap().iter().zip(new["containers"].as_array().unwrap()) {
        for (key, value) in o.as_object().unwrap() {
            if key != "command" && key != "volumeMounts" {
                prop_assert_eq!(value, &n[key], "container field {} changed", key);
            }
        }
        // Wrapped exactly once: baton run, its options, `--`, then the original command.
        let command: Vec<String> = serde_json::from_value(n["command"].clone()).unwrap();
        prop_assert_eq!(
            &command[..3],
            &[format!("{DIR}/bin/baton"), "run".into(), format!("--name={}", o["name"].as_str().unwrap())]
        );
        let split = command.iter().position(|a| a == "--").unwrap();
        prop_assert!(command[..split].contains(&limit));
        let tail = &command[split + 1..];
        prop_assert!(!runs_baton(tail), "wrapped twice: {:?}", command);
        match o.get("command") {
            Some(original) => prop_assert_eq!(&json!(tail), original),
            None => prop_assert!(
                tail.first().is_some_and(|t| t.starts_with('/') || t == "sh") || o.get("args").is_some()
            ),
        }
        // Mounts: the container's own, then baton's at DIR; no path twice.
        prop_assert!(extends(o.get("volumeMounts"), &n["volumeMounts"]));
        let paths: Vec<&str> =
            n["volumeMounts"].as_array().unwrap().iter().map(|m| m["mountPath"].as_str().unwrap()).collect();
        prop_assert_eq!(
            paths.iter().collect::<BTreeSet<_>>().len(),
            paths.len(),
            "mount paths collide: {:?}",
            paths
        );
        let baton = json!({"name": "baton", "mountPath": DIR});
        prop_assert!(n["volumeMounts"].as_array().unwrap().contains(&baton), "no baton mount");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn injection_keeps_everything_and_wraps_once(original in pod()) {
        let images = images();
        let mut injected = original.clone();
        let outcome = inject_object(&mut injected, &Options::default(), &images).unwrap();
        prop_assert!(matches!(outcome, Outcome::Injected { .. }), "{:?}", outcome);
        check(&original, &injected)?;
        let mut again = injected.clone();
        let outcome = inject_object(&mut again, &Options::default(), &images).unwrap();
        prop_assert!(matches!(outcome, Outcome::AlreadyInjected { .. }), "{:?}", outcome);
        prop_assert_eq!(&again, &injected);
    }

    #[test]
    fn text_round_trips_are_byte_identical(original in pod(), pretty in prop::bool::ANY) {
        let images = images();
        let mut injected = original.clone();
        inject_object(&mut injected, &Options::default(), &images).unwrap();
        let texts = [
            serde_saphyr::to_string(&original).unwrap(),
            if pretty { serde_json::to_string_pretty(&original).unwrap() } else { serde_json::to_string(&original).unwrap() },
        ];
        for text in texts {
            let once = inject_text(&text, &Options::default(), &images).unwrap();
            prop_assert_eq!(once.changed, 1);
            // What is written reads back as the injected tree: nothing lost or changed on the way.
            let read: Value = serde_saphyr::from_str(&once.text).unwrap();
            prop_assert_eq!(&read, &injected, "{}", once.text);
            let twice = inject_text(&once.text, &Options::default(), &images).unwrap();
            prop_assert_eq!(twice.changed, 0);
            prop_assert_eq!(&twice.text, &once.text);
        }
    }
}
