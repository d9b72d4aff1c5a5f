//! The injection of one pod template (a Pod, or the `template` of a Job): what to add and rewrite,
//! as JSON Patch operations against the template as given.
//!
//! - [`read`]: the template's fields, each refused with a sentence when it is not what Kubernetes takes;
//! - [`command`]: a step's command: what it runs without baton, wrapped in `baton run`, its limit.

mod command;
mod read;

use baton_contract::message::kubelet_share;
use json_patch::jsonptr::{Pointer, PointerBuf};
use json_patch::{AddOperation, PatchOperation};
use serde_json::{json, Value};

use crate::additions::{self, bin_mount, mount, BIN_VOLUME, INIT_CONTAINER, INJECTED_LABEL, VOLUME};
use crate::error::Refusal;
use crate::images::ImageConfigs;
use crate::order;
use crate::Options;
pub use command::runs_baton;
use command::{original_command, relimited, wrapped};
use read::{annotations, pull_secrets, read_container, Container};

/// The annotation that opts a pod out (`"false"`) or, for the webhook, in (`"true"`).
pub const INJECT: &str = "baton.dev/inject";
/// What the injection does to a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateOutcome {
    /// `wrapped` containers now run under baton.
    Injected { wrapped: usize },
    /// Every container already ran `baton run`, but the pod has more containers than when it was
    /// injected (a later webhook added some): the `--message-limit` of `steps` was lowered.
    Relimited { steps: usize },
    /// Every container already runs `baton run`: nothing to do.
    AlreadyInjected,
    /// `baton.dev/inject: "false"`: left alone.
    OptedOut,
    /// `spec.os.name: windows`: baton is a Linux binary; left alone, with a warning.
    Windows,
}

/// One template's injection: its outcome and the operations, with paths under the template's pointer.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplatePlan {
    pub outcome: TemplateOutcome,
    pub ops: Vec<PatchOperation>,
}

/// Where the template is and how to name its fields in sentences.
pub(crate) struct Site<'a> {
    /// The template's JSON pointer inside the object that is patched.
    pub at: &'a Pointer,
    /// The template's path in sentences: `""` for a Pod, `"spec.template."` for a Job.
    pub field: &'a str,
    /// The object's namespace, for image pull secrets.
    pub namespace: Option<&'a str>,
}

/// The value of `baton.dev/inject` on a template: `Some(true)`, `Some(false)`, or `None` when it is
/// absent (an admission webhook injects only `Some(true)`; `batonctl inject` all but `Some(false)`).
pub fn inject_annotation(template: &Value) -> Result<Option<bool>, Refusal> {
    match template.pointer("/metadata/annotations").and_then(|a| a.get(INJECT)) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s == "true" => Ok(Some(true)),
        Some(Value::String(s)) if s == "false" => Ok(Some(false)),
        Some(other) => Err(Refusal::BadAnnotation {
            annotation: INJECT.to_string(),
            value: other.as_str().map_or_else(|| other.to_string(), str::to_string),
            expected: "use \"true\" or \"false\"".to_string(),
        }),
    }
}

/// The images whose ENTRYPOINT the injection of `template` will ask for: those of containers that
/// have no command and do not run baton yet. For callers that resolve images ahead (asynchronously).
pub fn images_to_resolve(template: &Value) -> Vec<String> {
    let mut images = Vec::new();
    for c in template.pointer("/spec/containers").and_then(Value::as_array).into_iter().flatten() {
        let command = c.get("command").and_then(Value::as_array);
        let has_command = command.is_some_and(|c| !c.is_empty());
        if !has_command {
            if let Some(image) = c.get("image").and_then(Value::as_str) {
                if !images.iter().any(|i| i == image) {
                    images.push(image.to_string());
                }
            }
        }
    }
    images
}

pub(crate) fn plan(
    template: &Value,
    site: &Site<'_>,
    options: &Options,
    images: &dyn ImageConfigs,
) -> Result<TemplatePlan, Refusal> {
    let field = |path: &str| format!("{}{path}", site.field);
    let malformed =
        |path: &str, problem: &str| Refusal::Malformed { field: field(path), problem: problem.to_string() };

    if inject_annotation(template)? == Some(false) {
        return Ok(TemplatePlan { outcome: TemplateOutcome::OptedOut, ops: Vec::new() });
    }
    let annotations = annotations(template, &field)?;
    let spec = match template.get("spec") {
        Some(Value::Object(spec)) => spec,
        _ => return Err(malformed("spec", "missing")),
    };
    if spec.get("os").and_then(|os| os.get("name")).and_then(Value::as_str) == Some("windows") {
        return Ok(TemplatePlan { outcome: TemplateOutcome::Windows, ops: Vec::new() });
    }
    match spec.get("restartPolicy") {
        Some(Value::String(p)) if p == "Never" => {}
        Some(Value::String(p)) => {
            return Err(Refusal::RestartPolicy {
                field: field("spec.restartPolicy"),
                policy: Some(p.clone()),
            })
        }
        None | Some(Value::Null) => {
            return Err(Refusal::RestartPolicy { field: field("spec.restartPolicy"), policy: None })
        }
        Some(_) => return Err(malformed("spec.restartPolicy", "not a string")),
    }

    let containers = match spec.get("containers") {
        Some(Value::Array(list)) if !list.is_empty() => list,
        _ => return Err(malformed("spec.containers", "missing or empty")),
    };
    let containers: Vec<Container> = containers
        .iter()
        .enumerate()
        .map(|(i, c)| read_container(c, &field(&format!("spec.containers[{i}]"))))
        .collect::<Result<_, _>>()?;
    let inits = match spec.get("initContainers") {
        Some(Value::Array(list)) => Some(list),
        None | Some(Value::Null) => None,
        Some(_) => return Err(malformed("spec.initContainers", "not a list")),
    };
    let volumes = match spec.get("volumes") {
        Some(Value::Array(list)) => Some(list),
        None | Some(Value::Null) => None,
        Some(_) => return Err(malformed("spec.volumes", "not a list")),
    };

    let names: Vec<String> = containers.iter().map(|c| c.name.to_string()).collect();
    for name in &names {
        baton_contract::name::check_step(name).map_err(|e| malformed("spec.containers", &e))?;
        if name == INIT_CONTAINER {
            return Err(Refusal::NameTaken { name: name.clone() });
        }
    }
    let orders = order::plan(&names, &annotations)?;

    let to_wrap: Vec<usize> =
        (0..containers.len()).filter(|&i| !runs_baton(&containers[i].command)).collect();
    let has_init = inits
        .is_some_and(|l| l.iter().any(|c| c.get("name").and_then(Value::as_str) == Some(INIT_CONTAINER)));
    let count = containers.len() + inits.map_or(0, Vec::len) + usize::from(!has_init);
    let limit = kubelet_share(count);
    // A pod baton injected before, called again after another webhook added containers (a mesh's
    // proxy, an init container): the kubelet's budget is shared by more, so every step's limit is
    // lowered to the new share. A pod written for baton by hand is left as its author wrote it.
    let replan = !to_wrap.is_empty() || labelled(template);
    let relimit: Vec<(usize, Vec<String>)> = (0..containers.len())
        .filter(|i| replan && !to_wrap.contains(i))
        .filter_map(|i| relimited(&containers[i].command, limit).map(|command| (i, command)))
        .collect();
    if to_wrap.is_empty() && relimit.is_empty() {
        return Ok(TemplatePlan { outcome: TemplateOutcome::AlreadyInjected, ops: Vec::new() });
    }

    let spec_at = site.at.with_trailing_token("spec");
    let mut ops = Vec::new();
    if !has_init {
        let init = additions::init_container(spec, options);
        match inits {
            Some(_) => ops.push(add(&spec_at, &["initContainers", "0"], init)),
            None => ops.push(add(&spec_at, &["initContainers"], json!([init]))),
        }
    }
    let mut volumes_to_add = Vec::new();
    for (name, volume) in [(VOLUME, additions::volume()), (BIN_VOLUME, additions::bin_volume())] {
        match volumes.and_then(|l| l.iter().find(|v| v.get("name").and_then(Value::as_str) == Some(name))) {
            Some(volume) if volume.get("emptyDir").is_some() => {}
            Some(_) => return Err(Refusal::VolumeTaken { volume: name.to_string() }),
            None => volumes_to_add.push(volume),
        }
    }
    match volumes {
        Some(_) => ops.extend(volumes_to_add.into_iter().map(|v| add(&spec_at, &["volumes", "-"], v))),
        None if !volumes_to_add.is_empty() => ops.push(add(&spec_at, &["volumes"], json!(volumes_to_add))),
        None => {}
    }
    let labels_at = site.at.with_trailing_token("metadata");
    match template.pointer("/metadata/labels") {
        _ if labelled(template) => {}
        Some(Value::Object(_)) => ops.push(add(&labels_at, &["labels", INJECTED_LABEL], json!("true"))),
        _ if template.get("metadata").is_some_and(Value::is_object) => {
            ops.push(add(&labels_at, &["labels"], json!({INJECTED_LABEL: "true"})))
        }
        _ => ops.push(add(site.at, &["metadata"], json!({"labels": {INJECTED_LABEL: "true"}}))),
    }

    for (i, command) in &relimit {
        let at = spec_at.concat(&PointerBuf::from_tokens(["containers".to_string(), i.to_string()]));
        ops.push(add(&at, &["command"], json!(command)));
    }
    let pull_secrets = pull_secrets(spec);
    let arch = crate::pod_arch(template);
    for &i in &to_wrap {
        let c = &containers[i];
        let at = spec_at.concat(&PointerBuf::from_tokens(["containers".to_string(), i.to_string()]));
        let original = original_command(c, &pull_secrets, site.namespace, arch, images)?;
        let command = wrapped(c, &orders[i], &original, options, limit);
        // `add` replaces an existing member (RFC 6902), so one operation fits both cases.
        ops.push(add(&at, &["command"], json!(command)));
        let wanted = [(VOLUME, mount(&options.dir)), (BIN_VOLUME, bin_mount(&options.dir, true))];
        let mut mounts_to_add = Vec::new();
        for (volume, wanted) in wanted {
            let path = wanted["mountPath"].as_str().unwrap_or_default();
            let here = c
                .mounts
                .into_iter()
                .flatten()
                .find(|m| m.get("mountPath").and_then(Value::as_str).is_some_and(|p| same_dir(p, path)));
            match here {
                Some(m) if m.get("name").and_then(Value::as_str) == Some(volume) => {}
                Some(m) => {
                    return Err(Refusal::MountTaken {
                        container: c.name.to_string(),
                        volume: m.get("name").and_then(Value::as_str).unwrap_or_default().to_string(),
                        dir: path.to_string(),
                    })
                }
                None => mounts_to_add.push(wanted),
            }
        }
        match c.mounts {
            None => ops.push(add(&at, &["volumeMounts"], json!(mounts_to_add))),
            Some(_) => ops.extend(mounts_to_add.into_iter().map(|m| add(&at, &["volumeMounts", "-"], m))),
        }
    }
    let outcome = match to_wrap.len() {
        0 => TemplateOutcome::Relimited { steps: relimit.len() },
        wrapped => TemplateOutcome::Injected { wrapped },
    };
    Ok(TemplatePlan { outcome, ops })
}

/// Whether the template carries the label of baton's injection.
fn labelled(template: &Value) -> bool {
    template.pointer("/metadata/labels").and_then(|l| l.get(INJECTED_LABEL)) == Some(&json!("true"))
}

fn same_dir(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

fn add(base: &Pointer, tokens: &[&str], value: Value) -> PatchOperation {
    let mut path = base.to_buf();
    for t in tokens {
        path.push_back(t.to_string());
    }
    PatchOperation::Add(AddOperation { path, value })
}
