//! Puts baton into a Pod, Job or CronJob — the way `linkerd inject` puts in a proxy — with no I/O:
//! the same function serves `batonctl inject` (manifests on disk), an admission webhook (a JSON
//! Patch), and `batonctl play`.
//!
//! The injection of a pod template:
//! - adds the init container `baton-init` (first; `/baton init --dir DIR`) and the volume `baton`
//!   (`emptyDir: {medium: Memory}`) mounted at DIR in it and in every wrapped container;
//! - wraps every container of `spec.containers` that does not run baton yet: its `command` becomes
//!   `[DIR/bin/baton, run, --name=<container>, <options>…, --, <original command…>]`, `args` untouched;
//!   a container without `command` gets its image's ENTRYPOINT (and CMD when it has no `args`)
//!   from an [`ImageConfigs`];
//! - orders the steps from the template's annotations ([`order`]) and refuses, with one sentence,
//!   what would hang or re-run: unknown names, self references, cycles, a restartPolicy other than
//!   Never ([`Refusal`]);
//! - sets `--message-limit` to `min(4096, 12288 / containers)` (init containers included).
//!
//! It is idempotent: a container that already runs `baton run` is left as it is, and a template
//! with nothing left to wrap yields no operation at all — except that a pod baton injected before
//! and that has gained containers since (another webhook's, such as a mesh's proxy) is planned again:
//! the new containers wrapped, every step's `--message-limit` lowered to the new share.
//!
//! - [`plan`] / [`inject_object`]: a whole object (Pod, Job, CronJob; any other kind is left alone);
//! - [`plan_template`]: a bare pod template or a Pod as an admission webhook gets it;
//! - [`manifest`]: YAML/JSON text with many documents or a `List`, written back in the same format.

pub mod additions;
pub mod error;
pub mod images;
pub mod manifest;
pub mod order;
pub mod platform;
pub mod template;

use json_patch::jsonptr::{Pointer, PointerBuf};
use json_patch::Patch;
use serde_json::Value;

pub use additions::{BIN_VOLUME, INIT_CONTAINER, INJECTED_LABEL, VOLUME};
pub use error::{InjectError, Refusal};
pub use images::{Chain, ImageConfig, ImageConfigs, ImageFile, ImageRef, NoImages};
pub use platform::pod_arch;
pub use template::{images_to_resolve, inject_annotation, runs_baton, TemplateOutcome, TemplatePlan, INJECT};

/// The baton image of this version: what `baton-init` runs unless `--image` says otherwise
/// (the tag the Dockerfile documents: `podman build -t localhost/baton:VERSION .`).
pub const DEFAULT_IMAGE: &str = concat!("localhost/baton:", env!("CARGO_PKG_VERSION"));

/// How to inject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The image of `baton-init`.
    pub image: String,
    /// The shared folder, an absolute path without a trailing `/`.
    pub dir: String,
}

impl Default for Options {
    fn default() -> Self {
        Options { image: DEFAULT_IMAGE.to_string(), dir: baton_contract::layout::DEFAULT_DIR.to_string() }
    }
}

impl Options {
    /// Checked options: an image name and an absolute folder (a trailing `/` is dropped).
    pub fn new(image: &str, dir: &str) -> Result<Options, String> {
        let trimmed = dir.trim_end_matches('/');
        if !dir.starts_with('/') || trimmed.is_empty() || dir.contains(['\0', '\n']) {
            return Err(format!(
                "--dir {dir:?} is not an absolute folder other than /: pass one such as /var/run/baton"
            ));
        }
        if image.trim().is_empty() || image.contains(char::is_whitespace) {
            return Err(format!("--image {image:?} is not an image name: pass one such as {DEFAULT_IMAGE}"));
        }
        Ok(Options { image: image.to_string(), dir: trimmed.to_string() })
    }
}

/// The kinds that hold a pod template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Pod,
    Job,
    CronJob,
}

impl Kind {
    /// The kind of `object` when it holds a pod template: `v1` Pod, `batch/*` Job and CronJob.
    pub fn of(object: &Value) -> Option<Kind> {
        let api = object.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
        match object.get("kind").and_then(Value::as_str)? {
            "Pod" if api == "v1" => Some(Kind::Pod),
            "Job" if api.starts_with("batch/") => Some(Kind::Job),
            "CronJob" if api.starts_with("batch/") => Some(Kind::CronJob),
            _ => None,
        }
    }

    /// Where the pod template is in an object of this kind.
    pub fn template_path(self) -> &'static [&'static str] {
        match self {
            Kind::Pod => &[],
            Kind::Job => &["spec", "template"],
            Kind::CronJob => &["spec", "jobTemplate", "spec", "template"],
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Pod => "Pod",
            Kind::Job => "Job",
            Kind::CronJob => "CronJob",
        }
    }
}

/// What happened to an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `wrapped` containers of its pod template now run under baton.
    Injected { kind: Kind, wrapped: usize },
    /// Nothing left to wrap, but more containers than at the injection: `steps` limits lowered.
    Relimited { kind: Kind, steps: usize },
    /// Nothing left to wrap.
    AlreadyInjected { kind: Kind },
    /// `baton.dev/inject: "false"`.
    OptedOut { kind: Kind },
    /// `spec.os.name: windows`: baton runs on Linux nodes only; left alone.
    Windows { kind: Kind },
    /// Not a Pod, Job or CronJob (its `kind`, or `None` when it has none): left alone.
    NotAWorkload { kind: Option<String> },
}

/// An object's injection: what happens, and the JSON Patch that does it (empty unless injected).
#[derive(Debug, Clone, PartialEq)]
pub struct Injection {
    pub outcome: Outcome,
    pub patch: Patch,
}

/// The injection of a whole object (Pod, Job or CronJob; anything else is left alone), as a JSON
/// Patch against `object`.
pub fn plan(object: &Value, options: &Options, images: &dyn ImageConfigs) -> Result<Injection, InjectError> {
    plan_at(object, Pointer::root(), options, images)
}

/// [`plan`] for an object found at `at` inside a larger document (an item of a `List`): the patch's
/// paths start with `at`.
pub fn plan_at(
    object: &Value,
    at: &Pointer,
    options: &Options,
    images: &dyn ImageConfigs,
) -> Result<Injection, InjectError> {
    let Some(kind) = Kind::of(object) else {
        let kind = object.get("kind").and_then(Value::as_str).map(str::to_string);
        return Ok(Injection { outcome: Outcome::NotAWorkload { kind }, patch: Patch(Vec::new()) });
    };
    let fail = |refusal| InjectError { object: Some(describe(object)), refusal };
    let path = kind.template_path();
    let field: String = path.iter().map(|p| format!("{p}.")).collect();
    let relative = PointerBuf::from_tokens(path.iter().copied());
    let template_at = at.concat(&relative);
    let template = object.pointer(relative.as_str()).ok_or_else(|| {
        fail(Refusal::Malformed {
            field: field.trim_end_matches('.').to_string(),
            problem: "missing".to_string(),
        })
    })?;
    let namespace = object.pointer("/metadata/namespace").and_then(Value::as_str);
    let site = template::Site { at: &template_at, field: &field, namespace };
    let planned = template::plan(template, &site, options, images).map_err(fail)?;
    let outcome = match planned.outcome {
        TemplateOutcome::Injected { wrapped } => Outcome::Injected { kind, wrapped },
        TemplateOutcome::Relimited { steps } => Outcome::Relimited { kind, steps },
        TemplateOutcome::AlreadyInjected => Outcome::AlreadyInjected { kind },
        TemplateOutcome::OptedOut => Outcome::OptedOut { kind },
        TemplateOutcome::Windows => Outcome::Windows { kind },
    };
    Ok(Injection { outcome, patch: Patch(planned.ops) })
}

/// The injection of a bare pod template (`metadata` + `spec`), or of a Pod as an admission request
/// carries it (its `kind` is not looked at), with paths relative to `template`. `namespace` is where
/// the pod's `imagePullSecrets` live.
pub fn plan_template(
    template: &Value,
    namespace: Option<&str>,
    options: &Options,
    images: &dyn ImageConfigs,
) -> Result<TemplatePlan, InjectError> {
    let site = template::Site { at: Pointer::root(), field: "", namespace };
    template::plan(template, &site, options, images).map_err(InjectError::from)
}

/// Injects `object` in place; see [`plan`].
pub fn inject_object(
    object: &mut Value,
    options: &Options,
    images: &dyn ImageConfigs,
) -> Result<Outcome, InjectError> {
    let injection = plan(object, options, images)?;
    json_patch::patch(object, &injection.patch).map_err(|e| InjectError {
        object: Some(describe(object)),
        refusal: Refusal::Malformed { field: e.to_string(), problem: "not patchable".to_string() },
    })?;
    Ok(injection.outcome)
}

/// `Job ci/build`, `Pod build`, `CronJob nightly-…` (generateName), `Pod (no name)`.
pub fn describe(object: &Value) -> String {
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("object");
    let meta = |key: &str| object.pointer(&format!("/metadata/{key}")).and_then(Value::as_str);
    let name = match (meta("name"), meta("generateName")) {
        (Some(name), _) => name.to_string(),
        (None, Some(prefix)) => format!("{prefix}…"),
        (None, None) => "(no name)".to_string(),
    };
    match meta("namespace") {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_image_is_the_one_the_dockerfile_builds() {
        let dockerfile = include_str!("../../../Dockerfile");
        let version = dockerfile
            .lines()
            .find_map(|l| l.strip_prefix("ARG VERSION="))
            .expect("the Dockerfile has ARG VERSION=");
        assert_eq!(DEFAULT_IMAGE, format!("localhost/baton:{version}"));
        assert!(dockerfile.contains(&format!("podman build -t {DEFAULT_IMAGE} .")), "{DEFAULT_IMAGE}");
    }

    #[test]
    fn options_are_checked() {
        assert_eq!(Options::new("img", "/x/y/").unwrap().dir, "/x/y");
        assert!(Options::new("img", "x").unwrap_err().contains("not an absolute folder"));
        assert!(Options::new("img", "/").is_err());
        assert!(Options::new("a b", "/x").unwrap_err().contains("not an image name"));
    }
}
