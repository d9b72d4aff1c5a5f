//! One admission review, answered: the request's Pod in, the AdmissionReview to send back out. No
//! I/O: the images the injection needs are resolved before (see [`super::images`]) and handed in.
//!
//! Only a Pod being created with `baton.dev/inject: "true"` is injected; anything else is allowed
//! unchanged. A pod that cannot be injected is denied with the sentence `batonctl inject` prints,
//! or, with `fail_open`, allowed unchanged with that sentence as a warning.

use base64::Engine as _;
use baton_inject::{images_to_resolve, inject_annotation, plan_template, ImageConfigs, InjectError, Options};
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use kube::core::{DynamicObject, Status};
use serde_json::{json, Value};

/// How the webhook injects.
#[derive(Debug, Clone)]
pub struct Settings {
    pub options: Options,
    /// Allow a pod that cannot be injected (unchanged, with a warning) instead of denying it.
    pub fail_open: bool,
}

/// A review's request, with its object as JSON (what the injection reads and the patch is against).
#[derive(Debug)]
pub struct Request {
    pub request: AdmissionRequest<DynamicObject>,
    pub object: Option<Value>,
}

/// Reads an `AdmissionReview` (admission.k8s.io/v1) with a request in it.
///
/// The object is taken out as JSON before kube's types read the rest: it is what the injection
/// reads and the patch is against, and kube's `DynamicObject` would buffer and copy it (serde's
/// flatten) only to be turned back into JSON.
pub fn read(body: &[u8]) -> Result<Request, String> {
    let not_a_review =
        |e: serde_json::Error| format!("the body is not an AdmissionReview (admission.k8s.io/v1): {e}");
    let mut review: Value = serde_json::from_slice(body).map_err(not_a_review)?;
    let mut take = |pointer: &str| review.pointer_mut(pointer).map(Value::take).filter(|v| !v.is_null());
    let object = take("/request/object");
    // Not looked at: the webhook answers CREATE only.
    take("/request/oldObject");
    let review: AdmissionReview<DynamicObject> = serde_json::from_value(review).map_err(not_a_review)?;
    let request: AdmissionRequest<DynamicObject> =
        review.try_into().map_err(|_| "the AdmissionReview has no request".to_string())?;
    Ok(Request { request, object })
}

impl Request {
    /// The pod to inject: a Pod being created, annotated `baton.dev/inject: "true"` (or with an
    /// unreadable value there, which the injection then refuses with its sentence).
    fn pod(&self) -> Option<&Value> {
        let r = &self.request;
        let is_pod = r.kind.group.is_empty() && r.kind.kind == "Pod" && r.sub_resource.is_none();
        if !is_pod || r.operation != Operation::Create {
            return None;
        }
        let object = self.object.as_ref()?;
        match inject_annotation(object) {
            Ok(Some(true)) | Err(_) => Some(object),
            Ok(Some(false) | None) => None,
        }
    }

    /// The images whose ENTRYPOINT the injection will ask for (none for a pod left alone).
    pub fn images(&self) -> Vec<String> {
        self.pod().map(images_to_resolve).unwrap_or_default()
    }

    /// The CPU architecture of the pod's nodes, for its images' configs (`baton_inject::pod_arch`).
    pub fn arch(&self) -> String {
        self.pod().map_or(baton_inject::platform::DEFAULT_ARCH, baton_inject::pod_arch).to_string()
    }

    /// `Pod ci/build`, `Pod ci/build-…` (generateName): the object as the CLI's sentences name it,
    /// with the request's namespace (a Pod being created often has none in its metadata).
    pub fn describe(&self) -> String {
        let object = self.object.as_ref();
        let meta = |key: &str| object.and_then(|o| o.pointer(&format!("/metadata/{key}")).cloned());
        let namespace = self.request.namespace.clone().map(Value::String).or_else(|| meta("namespace"));
        baton_inject::describe(&json!({
            "kind": "Pod",
            "metadata": {"name": meta("name"), "generateName": meta("generateName"), "namespace": namespace},
        }))
    }
}

/// What the webhook did, for its log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not a Pod being created with `baton.dev/inject: "true"`.
    Skipped,
    /// Every container already runs baton.
    AlreadyInjected,
    /// A Windows pod: allowed unchanged, with a warning.
    Windows,
    Injected {
        wrapped: usize,
    },
    /// Injected before; called again after containers were added: `steps` limits lowered.
    Relimited {
        steps: usize,
    },
    /// Denied with this sentence.
    Denied(String),
    /// Allowed unchanged with this sentence as a warning (`fail_open`).
    FailedOpen(String),
}

impl Verdict {
    /// The verdict as the `outcome` label of `batonctl_webhook_admissions_total`.
    pub fn outcome(&self) -> &'static str {
        match self {
            Verdict::Skipped => "skipped",
            Verdict::AlreadyInjected => "already_injected",
            Verdict::Windows => "windows",
            Verdict::Injected { .. } => "injected",
            Verdict::Relimited { .. } => "relimited",
            Verdict::Denied(_) => "denied",
            Verdict::FailedOpen(_) => "failed_open",
        }
    }
}

/// The answer to `request`: the response (uid echoed) and what was done.
pub fn answer(
    request: &Request,
    settings: &Settings,
    images: &dyn ImageConfigs,
) -> (AdmissionResponse, Verdict) {
    let allow = AdmissionResponse::from(&request.request);
    let Some(pod) = request.pod() else { return (allow, Verdict::Skipped) };
    let namespace = request.request.namespace.as_deref();
    let refused = |e: InjectError| {
        let sentence = InjectError { object: Some(request.describe()), refusal: e.refusal }.to_string();
        refuse(request, settings, sentence)
    };
    let plan = match plan_template(pod, namespace, &settings.options, images) {
        Ok(plan) => plan,
        Err(e) => return refused(e),
    };
    if plan.outcome == baton_inject::TemplateOutcome::Windows {
        let mut allow = allow;
        let sentence = format!(
            "baton: not injected: {} runs on Windows nodes (spec.os.name: windows), and baton runs on Linux only",
            request.describe()
        );
        allow.warnings = Some(vec![sentence]);
        return (allow, Verdict::Windows);
    }
    if plan.ops.is_empty() {
        return (allow, Verdict::AlreadyInjected);
    }
    let verdict = match plan.outcome {
        baton_inject::TemplateOutcome::Relimited { steps } => Verdict::Relimited { steps },
        baton_inject::TemplateOutcome::Injected { wrapped } => Verdict::Injected { wrapped },
        _ => Verdict::Injected { wrapped: 0 },
    };
    match allow.with_patch(json_patch::Patch(plan.ops)) {
        Ok(patched) => (patched, verdict),
        Err(e) => refuse(request, settings, format!("{}: cannot write the patch: {e}", request.describe())),
    }
}

fn refuse(request: &Request, settings: &Settings, sentence: String) -> (AdmissionResponse, Verdict) {
    let mut response = AdmissionResponse::from(&request.request);
    if settings.fail_open {
        response.warnings = Some(vec![format!("baton: not injected: {sentence}")]);
        return (response, Verdict::FailedOpen(sentence));
    }
    response.allowed = false;
    response.result = Status::failure(&sentence, "Forbidden");
    response.result.code = 403;
    (response, Verdict::Denied(sentence))
}

/// The AdmissionReview to send back, as the API server reads it: the patch as a base64 string.
///
/// kube's `AdmissionResponse` keeps the patch as bytes and serialises them as an array of numbers
/// (kube-rs #1781); the API server's `[]byte` field takes a base64 string. So the bytes are taken out
/// before kube serialises the review and put back in, encoded.
pub fn to_wire(mut response: AdmissionResponse) -> Vec<u8> {
    let patch = response.patch.take();
    let mut review = serde_json::to_value(response.into_review()).unwrap_or(Value::Null);
    if let (Some(bytes), Some(response)) = (patch, review.get_mut("response")) {
        response["patch"] = Value::String(base64::engine::general_purpose::STANDARD.encode(bytes));
    }
    serde_json::to_vec(&review).unwrap_or_default()
}

/// An answer for a body that is not a review (the API server then applies its failurePolicy).
pub fn invalid(reason: &str) -> Vec<u8> {
    to_wire(AdmissionResponse::invalid(reason))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use baton_inject::{ImageConfig, NoImages};

    use super::*;

    fn review(annotations: Value, containers: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "namespace": "ci",
                "operation": "CREATE",
                "userInfo": {"username": "admin"},
                "object": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"generateName": "build-", "annotations": annotations},
                    "spec": {"restartPolicy": "Never", "containers": containers},
                },
                "oldObject": null,
                "dryRun": false,
            }
        }))
        .unwrap()
    }

    fn settings(fail_open: bool) -> Settings {
        Settings { options: Options::new("localhost/baton:t", "/var/run/baton").unwrap(), fail_open }
    }

    fn wire(body: &[u8], fail_open: bool, images: &dyn ImageConfigs) -> (String, Verdict) {
        let request = read(body).unwrap();
        let (response, verdict) = answer(&request, &settings(fail_open), images);
        (String::from_utf8(to_wire(response)).unwrap(), verdict)
    }

    #[test]
    fn the_patch_goes_on_the_wire_as_base64() {
        let body = review(json!({"baton.dev/inject": "true"}), json!([{"name": "a", "command": ["x"]}]));
        let (text, verdict) = wire(&body, false, &NoImages);
        assert_eq!(verdict, Verdict::Injected { wrapped: 1 });
        let got: Value = serde_json::from_str(&text).unwrap();
        let patch = got["response"]["patch"].as_str().expect("the patch is a string");
        let ops: Value =
            serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(patch).unwrap())
                .unwrap();
        let quantity = json!({"cpu": "50m", "memory": "16Mi"});
        let want_ops = json!([
            {"op": "add", "path": "/spec/initContainers", "value": [{"name": "baton-init",
                "image": "localhost/baton:t",
                "command": ["/baton", "init", "--dir", "/var/run/baton", "--bin-volume"],
                "resources": {"requests": quantity, "limits": quantity},
                "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
                    "readOnlyRootFilesystem": true, "runAsUser": 0, "seccompProfile": {"type": "RuntimeDefault"}},
                "volumeMounts": [{"name": "baton", "mountPath": "/var/run/baton"},
                    {"name": "baton-bin", "mountPath": "/var/run/baton/bin"}]}]},
            {"op": "add", "path": "/spec/volumes", "value": [
                {"name": "baton", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
                {"name": "baton-bin", "emptyDir": {"medium": "Memory", "sizeLimit": "8Mi"}}]},
            {"op": "add", "path": "/metadata/labels", "value": {"baton.dev/injected": "true"}},
            {"op": "add", "path": "/spec/containers/0/command", "value": ["/var/run/baton/bin/baton", "run",
                "--name=a", "--message-limit=4096", "--", "x"]},
            {"op": "add", "path": "/spec/containers/0/volumeMounts", "value": [
                {"name": "baton", "mountPath": "/var/run/baton"},
                {"name": "baton-bin", "mountPath": "/var/run/baton/bin", "readOnly": true}]},
        ]);
        assert_eq!(ops, want_ops);
        // The whole review, byte for byte: nothing else rides along.
        let want = format!(
            concat!(
                r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{{"#,
                r#""allowed":true,"patch":"{}","patchType":"JSONPatch","status":{{}},"#,
                r#""uid":"705ab4f5-6393-11e8-b7cc-42010a800002"}}}}"#
            ),
            patch
        );
        assert_eq!(text, want);
    }

    #[test]
    fn a_windows_pod_is_allowed_unchanged_with_a_warning() {
        let mut body: Value = serde_json::from_slice(&review(
            json!({"baton.dev/inject": "true"}),
            json!([{"name": "a", "command": ["x"]}]),
        ))
        .unwrap();
        body["request"]["object"]["spec"]["os"] = json!({"name": "windows"});
        let (text, verdict) = wire(&serde_json::to_vec(&body).unwrap(), false, &NoImages);
        assert_eq!(verdict, Verdict::Windows);
        let got: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(got["response"]["allowed"], true);
        assert!(got["response"].get("patch").is_none(), "{got}");
        let warning = got["response"]["warnings"][0].as_str().unwrap();
        assert!(warning.contains("runs on Windows nodes (spec.os.name: windows)"), "{warning}");
    }

    #[test]
    fn pods_without_the_annotation_and_other_objects_are_allowed_unchanged() {
        let want = concat!(
            r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"allowed":true,"#,
            r#""status":{},"uid":"705ab4f5-6393-11e8-b7cc-42010a800002"}}"#
        );
        let containers = json!([{"name": "a", "command": ["x"]}]);
        for annotations in [json!(null), json!({}), json!({"baton.dev/inject": "false"})] {
            assert_eq!(
                wire(&review(annotations, containers.clone()), false, &NoImages),
                (want.into(), Verdict::Skipped)
            );
        }
        let mut update: Value =
            serde_json::from_slice(&review(json!({"baton.dev/inject": "true"}), containers)).unwrap();
        update["request"]["operation"] = json!("UPDATE");
        assert_eq!(wire(&serde_json::to_vec(&update).unwrap(), false, &NoImages).1, Verdict::Skipped);
        update["request"]["operation"] = json!("CREATE");
        update["request"]["kind"]["kind"] = json!("Service");
        assert_eq!(wire(&serde_json::to_vec(&update).unwrap(), false, &NoImages).1, Verdict::Skipped);
    }

    #[test]
    fn a_pod_that_cannot_be_injected_is_denied_with_the_clis_sentence() {
        let body =
            review(json!({"baton.dev/inject": "true"}), json!([{"name": "app", "image": "ghcr.io/o/app:1"}]));
        let (text, verdict) = wire(&body, false, &NoImages);
        let sentence = "Pod ci/build-…: container app has no command and the ENTRYPOINT of its image \
                        ghcr.io/o/app:1 is unknown: add the image to an --images file, or let baton read it from \
                        the registry (imagePullSecrets or a docker config file), or set the container's command";
        assert_eq!(verdict, Verdict::Denied(sentence.into()));
        let got: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            got["response"],
            json!({"uid": "705ab4f5-6393-11e8-b7cc-42010a800002", "allowed": false,
                   "status": {"status": "Failure", "code": 403, "reason": "Forbidden", "message": sentence}})
        );
        // The same pod with the image known is injected.
        let mut known = BTreeMap::new();
        known.insert(
            "ghcr.io/o/app:1".to_string(),
            Ok(ImageConfig { entrypoint: vec!["/app".into()], cmd: vec![] }),
        );
        assert_eq!(wire(&body, false, &known).1, Verdict::Injected { wrapped: 1 });
    }

    #[test]
    fn fail_open_allows_unchanged_with_a_warning() {
        let body = review(json!({"baton.dev/inject": "yes"}), json!([{"name": "a", "command": ["x"]}]));
        let (text, verdict) = wire(&body, true, &NoImages);
        let sentence = r#"Pod ci/build-…: annotation baton.dev/inject is "yes": use "true" or "false""#;
        assert_eq!(verdict, Verdict::FailedOpen(sentence.into()));
        let got: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            got["response"],
            json!({"uid": "705ab4f5-6393-11e8-b7cc-42010a800002", "allowed": true, "status": {},
                   "warnings": [format!("baton: not injected: {sentence}")]})
        );
    }

    #[test]
    fn an_injected_pod_is_allowed_as_it_is() {
        let command = json!(["/var/run/baton/bin/baton", "run", "--name=a", "--", "x"]);
        let body = review(json!({"baton.dev/inject": "true"}), json!([{"name": "a", "command": command}]));
        let (text, verdict) = wire(&body, false, &NoImages);
        assert_eq!(verdict, Verdict::AlreadyInjected);
        assert!(!text.contains("patch"), "{text}");
    }

    #[test]
    fn what_is_not_a_review_gets_a_sentence() {
        assert!(read(b"{").unwrap_err().contains("not an AdmissionReview"));
        let no_request = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#;
        assert_eq!(read(no_request).err().unwrap(), "the AdmissionReview has no request");
        let text = String::from_utf8(invalid("bad")).unwrap();
        assert!(text.contains(r#""allowed":false"#) && text.contains(r#""message":"bad""#), "{text}");
    }
}
