//! What `batonctl play` runs: the one pod of a manifest — a Pod, or the pod template of a Job or a
//! CronJob — as the API server would create it, checked for what a one-shot run on podman can play.
//! Pure: text in, the Pod as JSON out.

use serde_json::{json, Map, Value};

/// The pod to play, as written (the template made a Pod), with what the reader noticed on the way.
#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    /// The Pod: `apiVersion`, `kind`, `metadata` (name, namespace, labels, annotations), `spec`.
    pub pod: Value,
    pub name: String,
    /// Sentences for stderr: objects passed over, a `restartPolicy` played differently.
    pub notes: Vec<String>,
}

/// Why a manifest cannot be played. Each is one sentence that says what to do.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    #[error("the input is not valid {format}: {why}")]
    Syntax { format: &'static str, why: String },
    #[error("the input holds no Pod, Job or CronJob{}; batonctl play runs one of those", seen(.0))]
    NothingToPlay(Vec<String>),
    #[error("the input holds {} runnable objects ({}); batonctl play runs one pod: pass a file with one of them", .0.len(), .0.join(", "))]
    Several(Vec<String>),
    #[error("the {0} has no {1}; give it one")]
    Missing(String, &'static str),
    #[error(
        "the Pod {name} has restartPolicy {policy}; batonctl play runs a pod once, as a Job's pod runs: \
         set restartPolicy: Never"
    )]
    RestartPolicy { name: String, policy: String },
    #[error(
        "init container {container} of pod {pod} has restartPolicy: Always (a native sidecar), which \
         podman cannot play: make it a regular container and give it baton's --until"
    )]
    NativeSidecar { pod: String, container: String },
    #[error("pod {pod} has two containers named {container}; give every container its own name")]
    DuplicateName { pod: String, container: String },
    #[error("container {container} of pod {pod} has no image; give it one")]
    NoImage { pod: String, container: String },
}

fn seen(kinds: &[String]) -> String {
    if kinds.is_empty() {
        String::new()
    } else {
        format!(" (it holds {})", kinds.join(", "))
    }
}

/// Reads YAML (one or many documents) or JSON, finds the one Pod, Job or CronJob in it (a `List`'s
/// items included), and returns the pod it makes, named `name` when given.
pub fn read(text: &str, name: Option<&str>) -> Result<Manifest, ManifestError> {
    let documents = parse(text)?;
    let mut objects = Vec::new();
    for doc in documents {
        match kind(&doc) {
            "List" | "PodList" | "JobList" | "CronJobList" => {
                if let Some(Value::Array(items)) = doc.get("items") {
                    objects.extend(items.iter().cloned());
                }
            }
            _ if doc.is_null() => {}
            _ => objects.push(doc),
        }
    }
    let (runnable, others): (Vec<Value>, Vec<Value>) =
        objects.into_iter().partition(|o| matches!(kind(o), "Pod" | "Job" | "CronJob"));
    let mut notes: Vec<String> = others
        .iter()
        .map(|o| format!("passes over the {}: batonctl play runs pods only", describe(o)))
        .collect();
    let object = match runnable.len() {
        0 => return Err(ManifestError::NothingToPlay(others.iter().map(describe).collect())),
        1 => runnable.into_iter().next().unwrap_or_default(),
        _ => return Err(ManifestError::Several(runnable.iter().map(describe).collect())),
    };
    let mut pod = pod_of(&object, &mut notes)?;
    if let Some(name) = name {
        pod["metadata"]["name"] = json!(name);
    }
    let name = pod["metadata"]["name"].as_str().unwrap_or_default().to_string();
    check(&pod, &name)?;
    Ok(Manifest { pod, name, notes })
}

fn parse(text: &str) -> Result<Vec<Value>, ManifestError> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| ManifestError::Syntax { format: "JSON", why: e.to_string() })?;
        return Ok(match value {
            Value::Array(items) => items,
            other => vec![other],
        });
    }
    serde_saphyr::from_multiple::<Value>(text)
        .map_err(|e| ManifestError::Syntax { format: "YAML", why: e.to_string() })
}

fn kind(object: &Value) -> &str {
    object.get("kind").and_then(Value::as_str).unwrap_or("")
}

fn describe(object: &Value) -> String {
    let kind = match kind(object) {
        "" => "object without a kind",
        k => k,
    };
    match object.pointer("/metadata/name").and_then(Value::as_str) {
        Some(name) => format!("{kind} {name}"),
        None => kind.to_string(),
    }
}

/// The Pod a Pod, Job or CronJob makes. A Job's pod is named after the Job (a cluster adds five random
/// characters) and carries the labels the Job controller gives it.
fn pod_of(object: &Value, notes: &mut Vec<String>) -> Result<Value, ManifestError> {
    let what = describe(object);
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ManifestError::Missing(what.clone(), "metadata.name (generateName is not played)"))?
        .to_string();
    if kind(object) == "Pod" {
        let spec = object.get("spec").filter(|s| s.is_object());
        if spec.is_none() {
            return Err(ManifestError::Missing(what, "spec"));
        }
        let policy = spec.and_then(|s| s.get("restartPolicy")).and_then(Value::as_str);
        if policy != Some("Never") {
            let policy = policy.map_or("Always (the default when none is set)".to_string(), str::to_string);
            return Err(ManifestError::RestartPolicy { name, policy });
        }
        let mut pod = object.clone();
        pod["apiVersion"] = json!("v1");
        return Ok(pod);
    }
    let pointer = if kind(object) == "Job" { "/spec/template" } else { "/spec/jobTemplate/spec/template" };
    let template =
        object.pointer(pointer).filter(|t| t.get("spec").is_some_and(Value::is_object)).ok_or_else(|| {
            ManifestError::Missing(
                what.clone(),
                if kind(object) == "Job" {
                    "spec.template.spec"
                } else {
                    "spec.jobTemplate.spec.template.spec"
                },
            )
        })?;
    let mut metadata = template.get("metadata").and_then(Value::as_object).cloned().unwrap_or_default();
    metadata.insert("name".into(), json!(name));
    if let Some(ns) = object.pointer("/metadata/namespace") {
        metadata.insert("namespace".into(), ns.clone());
    }
    let labels = metadata.entry("labels").or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(labels) = labels {
        labels.insert("batch.kubernetes.io/job-name".into(), json!(name));
        labels.insert("job-name".into(), json!(name));
    }
    let mut spec = template["spec"].clone();
    match spec.get("restartPolicy").and_then(Value::as_str) {
        Some("Never") => {}
        other => {
            notes.push(format!(
                "plays the pod template of the {what} with restartPolicy Never (it has {}): no container \
                 restarts in place",
                other.unwrap_or("none")
            ));
            spec["restartPolicy"] = json!("Never");
        }
    }
    Ok(json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}))
}

/// What a one-shot podman run cannot play, refused before anything starts.
fn check(pod: &Value, name: &str) -> Result<(), ManifestError> {
    let containers = pod.pointer("/spec/containers").and_then(Value::as_array);
    if containers.is_none_or(Vec::is_empty) {
        return Err(ManifestError::Missing(format!("Pod {name}"), "spec.containers"));
    }
    let init = pod.pointer("/spec/initContainers").and_then(Value::as_array);
    let mut names = Vec::new();
    for (c, is_init) in init
        .into_iter()
        .flatten()
        .map(|c| (c, true))
        .chain(containers.into_iter().flatten().map(|c| (c, false)))
    {
        let container = c.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
        if container.is_empty() {
            return Err(ManifestError::Missing(format!("a container of pod {name}"), "name"));
        }
        if names.contains(&container) {
            return Err(ManifestError::DuplicateName { pod: name.to_string(), container });
        }
        if c.get("image").and_then(Value::as_str).is_none_or(str::is_empty) {
            return Err(ManifestError::NoImage { pod: name.to_string(), container });
        }
        if is_init && c.get("restartPolicy").and_then(Value::as_str) == Some("Always") {
            return Err(ManifestError::NativeSidecar { pod: name.to_string(), container });
        }
        names.push(container);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  restartPolicy: Never\n  containers:\n  - name: a\n    image: i\n";

    #[test]
    fn a_pod_is_played_as_written() {
        let m = read(POD, None).unwrap();
        assert_eq!(m.name, "p");
        assert_eq!(m.pod["spec"]["containers"][0]["image"], "i");
        assert!(m.notes.is_empty());
        assert_eq!(read(POD, Some("play-p")).unwrap().pod["metadata"]["name"], "play-p");
    }

    #[test]
    fn json_and_yaml_give_the_same_pod() {
        let yaml = read(POD, None).unwrap();
        let json = read(&serde_json::to_string(&yaml.pod).unwrap(), None).unwrap();
        assert_eq!(yaml, json);
    }

    #[test]
    fn a_job_plays_its_template_named_after_it() {
        let job = "kind: Job\napiVersion: batch/v1\nmetadata: {name: nightly, namespace: ci}\nspec:\n  template:\n    metadata: {labels: {app: x}}\n    spec:\n      restartPolicy: OnFailure\n      containers: [{name: a, image: i}]\n";
        let m = read(job, None).unwrap();
        assert_eq!(m.name, "nightly");
        assert_eq!(m.pod["kind"], "Pod");
        assert_eq!(m.pod["metadata"]["namespace"], "ci");
        assert_eq!(m.pod["metadata"]["labels"]["app"], "x");
        assert_eq!(m.pod["metadata"]["labels"]["job-name"], "nightly");
        assert_eq!(m.pod["spec"]["restartPolicy"], "Never");
        assert!(m.notes[0].contains("restartPolicy Never (it has OnFailure)"), "{:?}", m.notes);
    }

    #[test]
    fn a_cronjob_plays_its_job_template() {
        let cron = r#"{"kind":"CronJob","metadata":{"name":"c"},"spec":{"schedule":"* * * * *","jobTemplate":{"spec":{"template":{"spec":{"restartPolicy":"Never","containers":[{"name":"a","image":"i"}]}}}}}}"#;
        let m = read(cron, None).unwrap();
        assert_eq!((m.name.as_str(), m.notes.len()), ("c", 0));
        assert_eq!(m.pod["spec"]["containers"][0]["name"], "a");
    }

    #[test]
    fn other_documents_are_passed_over_and_said() {
        let text = format!("kind: ConfigMap\nmetadata: {{name: cfg}}\n---\n{POD}---\n");
        let m = read(&text, None).unwrap();
        assert_eq!(m.notes, ["passes over the ConfigMap cfg: batonctl play runs pods only"]);
        let list = format!(r#"{{"kind":"List","items":[{}]}}"#, serde_json::to_string(&m.pod).unwrap());
        assert_eq!(read(&list, None).unwrap().name, "p");
    }

    #[test]
    fn refusals_are_sentences_that_name_the_thing() {
        let err = |text: &str| read(text, None).unwrap_err().to_string();
        assert_eq!(
            err("kind: Service\nmetadata: {name: s}\n"),
            "the input holds no Pod, Job or CronJob (it holds Service s); batonctl play runs one of those"
        );
        assert!(err(&format!("{POD}---\n{}", POD.replace("name: p", "name: q")))
            .contains("2 runnable objects (Pod p, Pod q)"));
        assert!(err(&POD.replace("  restartPolicy: Never\n", ""))
            .contains("restartPolicy Always (the default when none is set)"));
        assert!(err(&POD.replace("Never", "OnFailure")).contains("Pod p has restartPolicy OnFailure"));
        let sidecar = POD.replace(
            "  containers:",
            "  initContainers:\n  - {name: proxy, image: i, restartPolicy: Always}\n  containers:",
        );
        assert!(err(&sidecar).contains("init container proxy of pod p has restartPolicy: Always"));
        assert!(err(&format!("{POD}  - name: a\n    image: j\n")).contains("two containers named a"));
        assert!(err(&POD.replace("    image: i\n", "")).contains("container a of pod p has no image"));
        assert!(err(&POD.replace("  name: p\n", "  generateName: p-\n")).contains("Pod has no metadata.name"));
        assert!(err("{").starts_with("the input is not valid JSON"));
        assert!(err("a: [").starts_with("the input is not valid YAML"));
    }
}
