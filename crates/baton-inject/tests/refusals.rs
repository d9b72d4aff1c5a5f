//! Every refusal of the injection, each with the sentence a user reads.

use baton_inject::manifest::inject_text;
use baton_inject::{
    plan, plan_template, ImageConfig, ImageConfigs, ImageFile, ImageRef, NoImages, Options, Outcome, Refusal,
    TemplateOutcome,
};
use serde_json::{json, Value};

fn pod(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "build", "namespace": "ci"}, "spec": spec})
}

fn steps(names: &[&str]) -> Value {
    Value::Array(names.iter().map(|n| json!({"name": n, "image": "busybox", "command": ["true"]})).collect())
}

fn refusal(object: &Value) -> String {
    plan(object, &Options::default(), &NoImages).unwrap_err().to_string()
}

fn with_annotations(annotations: Value, names: &[&str]) -> Value {
    let mut p = pod(json!({"restartPolicy": "Never", "containers": steps(names)}));
    p["metadata"]["annotations"] = annotations;
    p
}

#[test]
fn a_pod_without_restart_policy_means_always() {
    let p = pod(json!({"containers": steps(&["a"])}));
    assert_eq!(
        refusal(&p),
        "Pod ci/build: spec.restartPolicy is not set, which means Always, but baton needs restartPolicy Never \
         (a restarted container would re-run half of the steps; a Job's backoffLimit retries whole pods \
         instead): set spec.restartPolicy: Never"
    );
}

#[test]
fn a_job_with_on_failure_is_refused_naming_the_template_field() {
    let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "x"},
        "spec": {"template": {"spec": {"restartPolicy": "OnFailure", "containers": steps(&["a"])}}}});
    let err = refusal(&job);
    assert!(
        err.starts_with("Job x: spec.template.spec.restartPolicy is \"OnFailure\", but baton needs"),
        "{err}"
    );
    assert!(err.ends_with("set spec.template.spec.restartPolicy: Never"), "{err}");
    let cron = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "n"},
        "spec": {"jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Always", "containers": steps(&["a"])}}}}}});
    assert!(refusal(&cron).contains("set spec.jobTemplate.spec.template.spec.restartPolicy: Never"));
}

#[test]
fn unknown_names_self_references_and_cycles() {
    let p = with_annotations(json!({"baton.dev/after.test": "biuld"}), &["build", "test"]);
    assert_eq!(
        refusal(&p),
        "Pod ci/build: annotation baton.dev/after.test names container \"biuld\", which is not in the pod: \
         use one of build, test"
    );
    let p = with_annotations(json!({"baton.dev/after.tets": "build"}), &["build", "test"]);
    assert!(refusal(&p).contains("annotation baton.dev/after.tets names container \"tets\""));
    let p = with_annotations(json!({"baton.dev/after.test": "test:done"}), &["build", "test"]);
    assert_eq!(
        refusal(&p),
        "Pod ci/build: annotation baton.dev/after.test makes container test wait for itself: remove test from it"
    );
    let p = with_annotations(
        json!({"baton.dev/order": "parallel", "baton.dev/after.a": "b", "baton.dev/after.b": "a"}),
        &["a", "b"],
    );
    assert_eq!(
        refusal(&p),
        "Pod ci/build: the containers wait for each other in a cycle, a → b → a, so none of them would ever \
         start: change the baton.dev/after.* or baton.dev/sidecars annotations to break it"
    );
}

#[test]
fn bad_annotation_values() {
    let p = with_annotations(json!({"baton.dev/inject": "no"}), &["a"]);
    assert_eq!(refusal(&p), "Pod ci/build: annotation baton.dev/inject is \"no\": use \"true\" or \"false\"");
    let p = with_annotations(json!({"baton.dev/order": "serial"}), &["a"]);
    assert!(refusal(&p)
        .ends_with("annotation baton.dev/order is \"serial\": use parallel, or sequential (the default)"));
    let p = with_annotations(json!({"baton.dev/after.a": 3}), &["a"]);
    assert!(
        refusal(&p).contains("metadata.annotations[\"baton.dev/after.a\"] is not a string (quote the value)")
    );
}

#[test]
fn an_unknown_entrypoint_names_the_container_the_image_and_the_ways_out() {
    let p =
        pod(json!({"restartPolicy": "Never", "containers": [{"name": "app", "image": "ghcr.io/org/app:1"}]}));
    assert_eq!(
        refusal(&p),
        "Pod ci/build: container app has no command and the ENTRYPOINT of its image ghcr.io/org/app:1 is \
         unknown: add the image to an --images file, or let baton read it from the registry (imagePullSecrets \
         or a docker config file), or set the container's command"
    );
    struct Down;
    impl ImageConfigs for Down {
        fn config(&self, image: &ImageRef<'_>) -> Result<Option<ImageConfig>, String> {
            Err(format!("{} answered 401 Unauthorized", image.image.split('/').next().unwrap()))
        }
    }
    let err = plan(&p, &Options::default(), &Down).unwrap_err().to_string();
    assert!(
        err.contains("ghcr.io/org/app:1 is unknown (ghcr.io answered 401 Unauthorized): add the image"),
        "{err}"
    );
}

#[test]
fn an_image_with_nothing_to_run() {
    let images = ImageFile::parse("scratch-app: {}\n").unwrap();
    let p = pod(json!({"restartPolicy": "Never", "containers": [{"name": "app", "image": "scratch-app"}]}));
    let err = plan(&p, &Options::default(), &images).unwrap_err().to_string();
    assert_eq!(
        err,
        "Pod ci/build: container app has no command and no args, and its image scratch-app has neither \
         ENTRYPOINT nor CMD, so there is nothing to run: set the container's command"
    );
    // With args there is something to run: the args themselves.
    let p = pod(
        json!({"restartPolicy": "Never", "containers": [{"name": "app", "image": "scratch-app", "args": ["/app"]}]}),
    );
    let injection = plan(&p, &Options::default(), &images).unwrap();
    let mut patched = p.clone();
    json_patch::patch(&mut patched, &injection.patch).unwrap();
    let command = patched["spec"]["containers"][0]["command"].as_array().unwrap();
    assert_eq!(command.last().unwrap(), "--");
    assert_eq!(patched["spec"]["containers"][0]["args"], json!(["/app"]));
}

#[test]
fn names_baton_needs_are_taken() {
    let p = pod(json!({"restartPolicy": "Never", "containers": steps(&["a"]),
        "volumes": [{"name": "baton", "configMap": {"name": "settings"}}]}));
    assert_eq!(
        refusal(&p),
        "Pod ci/build: the pod already has a volume named \"baton\" that is not an emptyDir, and baton needs \
         that name for its shared folder: rename the volume"
    );
    let p =
        pod(json!({"restartPolicy": "Never", "containers": [{"name": "a", "image": "x", "command": ["true"],
        "volumeMounts": [{"name": "run", "mountPath": "/var/run/baton/"}]}]}));
    assert_eq!(
        refusal(&p),
        "Pod ci/build: container a already mounts volume \"run\" at /var/run/baton, where baton's shared folder \
         goes: move that mount, or choose another folder with --dir"
    );
    let p = pod(json!({"restartPolicy": "Never", "containers": steps(&["baton-init"])}));
    assert_eq!(
        refusal(&p),
        "Pod ci/build: the pod has a container named \"baton-init\", the name of baton's init container: rename the container"
    );
}

#[test]
fn malformed_pods() {
    let p = pod(json!({"restartPolicy": "Never"}));
    assert_eq!(refusal(&p), "Pod ci/build: spec.containers is missing or empty: fix the manifest");
    let p = pod(json!({"restartPolicy": "Never", "containers": [{"name": "a", "command": "true"}]}));
    assert_eq!(
        refusal(&p),
        "Pod ci/build: spec.containers[0].command is not a list of strings: fix the manifest"
    );
    let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "x"}, "spec": {}});
    assert_eq!(refusal(&job), "Job x: spec.template is missing: fix the manifest");
}

/// `name: y` is the boolean true in YAML 1.1, as Kubernetes reads it: the name is there, but it is
/// not a string, and quoting it is the fix.
#[test]
fn a_yaml_boolean_where_a_string_belongs_is_named_with_the_fix() {
    let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: build, namespace: ci}\nspec:\n  restartPolicy: Never\n  \
                containers:\n  - {name: x, image: busybox, command: [\"true\"]}\n  - {name: y, image: busybox, command: [\"true\"]}\n";
    let err = inject_text(text, &Options::default(), &NoImages).unwrap_err().to_string();
    assert_eq!(
        err,
        "Pod ci/build: spec.containers[1].name is a boolean, not a string (YAML reads y, n, yes, no, on and \
         off as booleans; quote the value): fix the manifest"
    );
    let p = pod(json!({"restartPolicy": "Never", "containers": [{"name": 1, "image": "busybox"}]}));
    assert_eq!(
        refusal(&p),
        "Pod ci/build: spec.containers[0].name is not a string (quote the value): fix the manifest"
    );
}

#[test]
fn the_manifest_says_which_document() {
    let text = "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n---\napiVersion: batch/v1\nkind: Job\n\
                metadata: {name: j}\nspec:\n  template:\n    spec:\n      containers: [{name: a, image: x, command: [\"true\"]}]\n";
    let err = inject_text(text, &Options::default(), &NoImages).unwrap_err().to_string();
    assert!(err.starts_with("document 2: Job j: spec.template.spec.restartPolicy is not set"), "{err}");
    let err =
        inject_text("kind: Pod\n  bad: [indent\n", &Options::default(), &NoImages).unwrap_err().to_string();
    assert!(err.starts_with("the YAML is not valid: "), "{err}");
    let err = inject_text("{\"kind\": \"Pod\",}", &Options::default(), &NoImages).unwrap_err().to_string();
    assert!(err.starts_with("the JSON is not valid: "), "{err}");
}

#[test]
fn opting_out_and_other_kinds_leave_the_object_alone() {
    let p = with_annotations(json!({"baton.dev/inject": "false"}), &["a"]);
    let injection = plan(&p, &Options::default(), &NoImages).unwrap();
    assert_eq!(injection.outcome, Outcome::OptedOut { kind: baton_inject::Kind::Pod });
    assert!(injection.patch.0.is_empty());
    // Even a pod that would be refused: opting out comes first.
    let mut p = pod(json!({"containers": steps(&["a"])}));
    p["metadata"]["annotations"] = json!({"baton.dev/inject": "false"});
    assert!(plan(&p, &Options::default(), &NoImages).is_ok());
    // A Deployment, or a "Job" of another API group, is not a workload baton injects.
    for other in [
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}}),
        json!({"apiVersion": "example.com/v1", "kind": "Job", "metadata": {"name": "j"}}),
    ] {
        let injection = plan(&other, &Options::default(), &NoImages).unwrap();
        assert!(matches!(injection.outcome, Outcome::NotAWorkload { kind: Some(_) }));
    }
}

#[test]
fn a_bare_template_for_the_webhook() {
    // What an admission request carries: a Pod, maybe without kind, paths relative to it.
    let template = json!({"metadata": {"annotations": {"baton.dev/inject": "true"}},
        "spec": {"restartPolicy": "Never", "containers": steps(&["a", "b"]), "initContainers": []}});
    let planned = plan_template(&template, Some("ci"), &Options::default(), &NoImages).unwrap();
    assert_eq!(planned.outcome, TemplateOutcome::Injected { wrapped: 2 });
    let paths: Vec<String> = planned.ops.iter().map(|op| op.path().to_string()).collect();
    assert_eq!(
        paths,
        [
            "/spec/initContainers/0",
            "/spec/volumes",
            "/metadata/labels",
            "/spec/containers/0/command",
            "/spec/containers/0/volumeMounts",
            "/spec/containers/1/command",
            "/spec/containers/1/volumeMounts"
        ]
    );
    let mut patched = template.clone();
    json_patch::patch(&mut patched, &planned.ops).unwrap();
    let again = plan_template(&patched, Some("ci"), &Options::default(), &NoImages).unwrap();
    assert_eq!(again.outcome, TemplateOutcome::AlreadyInjected);
    assert!(again.ops.is_empty());
    let err = plan_template(&json!({"spec": {}}), None, &Options::default(), &NoImages).unwrap_err();
    assert!(matches!(err.refusal, Refusal::RestartPolicy { .. }));
    assert_eq!(err.object, None);
}

#[test]
fn another_dir_is_passed_to_every_step() {
    let p = pod(json!({"restartPolicy": "Never", "containers": steps(&["a"])}));
    let options = Options::new("registry.example/baton:1", "/baton/").unwrap();
    let mut patched = p.clone();
    baton_inject::inject_object(&mut patched, &options, &NoImages).unwrap();
    assert_eq!(
        patched["spec"]["initContainers"][0]["command"],
        json!(["/baton", "init", "--dir", "/baton", "--bin-volume"])
    );
    assert_eq!(patched["spec"]["initContainers"][0]["volumeMounts"][1]["mountPath"], "/baton/bin");
    assert_eq!(patched["spec"]["initContainers"][0]["image"], "registry.example/baton:1");
    assert_eq!(
        patched["spec"]["containers"][0]["command"],
        json!(["/baton/bin/baton", "run", "--name=a", "--dir=/baton", "--message-limit=4096", "--", "true"])
    );
    assert_eq!(
        patched["spec"]["containers"][0]["volumeMounts"],
        json!([{"name": "baton", "mountPath": "/baton"},
               {"name": "baton-bin", "mountPath": "/baton/bin", "readOnly": true}])
    );
}
