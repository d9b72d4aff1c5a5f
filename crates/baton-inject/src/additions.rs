//! What the injection adds to a pod besides the wrapped commands: the init container `baton-init`,
//! the two volumes it fills and their mounts, and the label that marks the pod as baton's.
//!
//! A cluster's first day decides the shape: `baton-init` must pass Pod Security "restricted" and
//! ResourceQuotas, keep a Guaranteed pod Guaranteed, and still leave no step able to swap the binary
//! every step runs. So:
//! - `baton-init` drops every capability, cannot gain privileges, has a read-only root file system,
//!   gets the `RuntimeDefault` seccomp profile where the pod sets none, and requests what it limits;
//! - it runs as root (the owner of the emptyDir the kubelet makes, so it can seal the shared folder's
//!   root with the sticky bit) unless the pod demands non-root, then as the image's non-root UID;
//! - the binary lives in a volume of its own, `baton-bin`, which every step mounts read-only at
//!   `DIR/bin`: whatever UID `baton-init` ran as, no step can replace `DIR/bin/baton`, and no step
//!   can rename `DIR/bin` away (it is a mount point in every container);
//! - both volumes are memory-backed and bounded by a `sizeLimit`.

use serde_json::{json, Map, Value};

use crate::Options;

/// The init container that copies baton into the shared folder.
pub const INIT_CONTAINER: &str = "baton-init";
/// The `emptyDir` volume of the shared folder.
pub const VOLUME: &str = "baton";
/// The `emptyDir` volume that holds the binary, mounted read-only at `DIR/bin` in every step.
pub const BIN_VOLUME: &str = "baton-bin";
/// The label that marks a pod as baton's: the controller selects on it.
pub const INJECTED_LABEL: &str = "baton.dev/injected";
/// The shared folder's bound: records, states and results (at most 1 MiB a step) of every step.
pub const VOLUME_SIZE: &str = "64Mi";
/// The binary's volume: one static binary of about 1.2 MB.
pub const BIN_VOLUME_SIZE: &str = "8Mi";
/// What `baton-init` requests and limits (equal, so a Guaranteed pod stays Guaranteed): it copies
/// one file. Below every pod's own containers, it adds nothing to what a quota counts for the pod
/// (an init container's requests count only where they exceed the sum of the containers').
pub const INIT_CPU: &str = "50m";
pub const INIT_MEMORY: &str = "16Mi";

/// The `baton-init` container for a pod with `spec`.
pub(crate) fn init_container(spec: &Map<String, Value>, options: &Options) -> Value {
    let pod_security = spec.get("securityContext");
    let mut security = json!({
        "allowPrivilegeEscalation": false,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": true,
    });
    if demands_non_root(spec) {
        // The image's user is the non-root UID 65532; a pod-wide runAsUser applies as it is.
        if pod_security.and_then(|s| s.get("runAsNonRoot")) != Some(&Value::Bool(true)) {
            security["runAsNonRoot"] = json!(true);
        }
    } else {
        security["runAsUser"] = json!(0);
    }
    if pod_security.and_then(|s| s.get("seccompProfile")).is_none() {
        security["seccompProfile"] = json!({"type": "RuntimeDefault"});
    }
    let quantity = json!({"cpu": INIT_CPU, "memory": INIT_MEMORY});
    json!({
        "name": INIT_CONTAINER,
        "image": options.image,
        "command": ["/baton", "init", "--dir", options.dir, "--bin-volume"],
        "resources": {"requests": quantity, "limits": quantity},
        "securityContext": security,
        "volumeMounts": [mount(&options.dir), bin_mount(&options.dir, false)],
    })
}

/// Whether the pod runs nothing as root: `runAsNonRoot` or a non-zero `runAsUser` for the whole
/// pod, or on every one of its containers. Then `baton-init` must not be root either.
fn demands_non_root(spec: &Map<String, Value>) -> bool {
    let non_root = |security: Option<&Value>| {
        security.is_some_and(|s| {
            s.get("runAsNonRoot") == Some(&Value::Bool(true))
                || s.get("runAsUser").and_then(Value::as_i64).is_some_and(|uid| uid != 0)
        })
    };
    if non_root(spec.get("securityContext")) {
        return true;
    }
    let containers = spec.get("containers").and_then(Value::as_array);
    containers.is_some_and(|list| !list.is_empty() && list.iter().all(|c| non_root(c.get("securityContext"))))
}

/// The shared folder's volume.
pub(crate) fn volume() -> Value {
    json!({"name": VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": VOLUME_SIZE}})
}

/// The binary's volume.
pub(crate) fn bin_volume() -> Value {
    json!({"name": BIN_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": BIN_VOLUME_SIZE}})
}

/// The shared folder, mounted at `dir`.
pub(crate) fn mount(dir: &str) -> Value {
    json!({"name": VOLUME, "mountPath": dir})
}

/// The binary's folder, mounted at `dir/bin`: read-only in every step.
pub(crate) fn bin_mount(dir: &str, read_only: bool) -> Value {
    let mut mount = json!({"name": BIN_VOLUME, "mountPath": format!("{dir}/bin")});
    if read_only {
        mount["readOnly"] = json!(true);
    }
    mount
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn init_runs_as_root_unless_the_pod_demands_otherwise() {
        let options = Options::default();
        let root = init_container(&spec(json!({"containers": [{"name": "a"}]})), &options);
        assert_eq!(root["securityContext"]["runAsUser"], 0);
        assert_eq!(root["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
        for demanding in [
            json!({"securityContext": {"runAsNonRoot": true}, "containers": [{"name": "a"}]}),
            json!({"securityContext": {"runAsUser": 1000}, "containers": [{"name": "a"}]}),
            json!({"containers": [{"name": "a", "securityContext": {"runAsNonRoot": true}},
                                  {"name": "b", "securityContext": {"runAsUser": 7}}]}),
        ] {
            let init = init_container(&spec(demanding.clone()), &options);
            assert!(init["securityContext"].get("runAsUser").is_none(), "{demanding}");
        }
        let pod_wide = init_container(
            &spec(
                json!({"securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "Localhost"}}}),
            ),
            &options,
        );
        assert!(pod_wide["securityContext"].get("runAsNonRoot").is_none(), "the pod's own setting applies");
        assert!(pod_wide["securityContext"].get("seccompProfile").is_none(), "the pod's own profile applies");
        let one_root = spec(json!({"containers": [{"name": "a", "securityContext": {"runAsNonRoot": true}},
                                                  {"name": "b"}]}));
        assert_eq!(init_container(&one_root, &options)["securityContext"]["runAsUser"], 0);
    }

    #[test]
    fn init_requests_what_it_limits() {
        let init = init_container(&Map::new(), &Options::default());
        assert_eq!(init["resources"]["requests"], init["resources"]["limits"]);
        assert_eq!(init["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
        assert_eq!(init["securityContext"]["allowPrivilegeEscalation"], false);
        assert_eq!(init["securityContext"]["readOnlyRootFilesystem"], true);
    }
}
