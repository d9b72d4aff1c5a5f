//! The kubelet's set-up that podman does not do, written into the Pod before `podman kube play`.
//! Pure: the Pod as JSON in, the Pod podman plays out.
//!
//! 1. **Termination messages.** The kubelet gives every container a fresh host file (mode 0666, made
//!    by the driver) and bind-mounts it at the container's `terminationMessagePath` (default
//!    `/dev/termination-log`). Here: a `hostPath` volume of `type: File` per container, mounted at
//!    that path: a bind mount of one file, which a `rename(2)` cannot replace (EBUSY), as on a node.
//! 2. **Fresh emptyDirs.** podman 4.3 turns an `emptyDir` into a *named* volume called like the pod's
//!    volume, which two pods with a volume `baton` would share. Each one is renamed
//!    `<pod>--<volume>`; the driver creates it fresh, mode 0777, before the play.
//! 3. **Init containers kept.** podman removes a completed init container at once; the annotation
//!    `io.podman.annotations.init.container.type: always` keeps it, so its end can be read back.
//! 4. **No pulls.** Every container gets `imagePullPolicy: Never`: the driver has checked that every
//!    image is in podman's store, and a play never reaches a registry.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

/// The annotation that keeps podman from removing completed init containers.
pub const KEEP_INIT: (&str, &str) = ("io.podman.annotations.init.container.type", "always");
/// The kubelet's default `terminationMessagePath`.
pub const DEFAULT_TERMINATION_PATH: &str = "/dev/termination-log";

/// One container of the pod, as the kubelet's part needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Container {
    pub name: String,
    pub init: bool,
    pub image: String,
    pub termination_path: String,
    /// `terminationMessagePolicy: FallbackToLogsOnError`.
    pub fallback_to_logs: bool,
}

/// Init containers, then regular containers, in spec order.
pub fn containers(pod: &Value) -> Vec<Container> {
    let list = |key: &str, init: bool| {
        pod.pointer(&format!("/spec/{key}"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(move |c| {
                let text = |k: &str| c.get(k).and_then(Value::as_str);
                Container {
                    name: text("name").unwrap_or_default().to_string(),
                    init,
                    image: text("image").unwrap_or_default().to_string(),
                    termination_path: text("terminationMessagePath")
                        .unwrap_or(DEFAULT_TERMINATION_PATH)
                        .to_string(),
                    fallback_to_logs: text("terminationMessagePolicy") == Some("FallbackToLogsOnError"),
                }
            })
            .collect::<Vec<_>>()
    };
    let mut all = list("initContainers", true);
    all.extend(list("containers", false));
    all
}

/// The names of the pod's `emptyDir` volumes.
pub fn empty_dirs(pod: &Value) -> Vec<String> {
    volumes(pod)
        .filter(|v| v.get("emptyDir").is_some())
        .filter_map(|v| v.get("name").and_then(Value::as_str).map(str::to_string))
        .collect()
}

/// The podman volume that stands for the pod's `emptyDir` named `volume`.
pub fn volume_name(pod: &str, volume: &str) -> String {
    format!("{pod}--{volume}")
}

/// The host file bind-mounted at `container`'s termination-message path, under the play's folder.
pub fn termination_file(host_dir: &Path, container: &str) -> PathBuf {
    host_dir.join(container).join("termination-log")
}

fn volumes(pod: &Value) -> impl Iterator<Item = &Value> {
    pod.pointer("/spec/volumes").and_then(Value::as_array).into_iter().flatten()
}

/// The Pod podman plays: `pod` with the kubelet's set-up written in (see the module's notes).
/// `host_dir` holds `<container>/termination-log` for every container.
pub fn for_podman(pod: &Value, host_dir: &Path) -> Value {
    let name = pod.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let empty = empty_dirs(pod);
    let taken: Vec<String> =
        volumes(pod).filter_map(|v| v.get("name").and_then(Value::as_str).map(str::to_string)).collect();
    // A name for the termination-log volume of container i that no volume of the pod has.
    let tl_volume = |i: usize| {
        let mut n = format!("termination-log-{i}");
        while taken.contains(&n) {
            n.insert(0, 'x');
        }
        n
    };

    let mut out = pod.clone();
    let annotations = &mut out["metadata"]["annotations"];
    if !annotations.is_object() {
        *annotations = json!({});
    }
    annotations[KEEP_INIT.0] = json!(KEEP_INIT.1);

    let mut new_volumes: Vec<Value> = volumes(pod)
        .map(|v| {
            let mut v = v.clone();
            if v.get("emptyDir").is_some() {
                let renamed = volume_name(name, v["name"].as_str().unwrap_or_default());
                v["name"] = json!(renamed);
            }
            v
        })
        .collect();
    let mut index = 0;
    for key in ["initContainers", "containers"] {
        let Some(Value::Array(list)) = out.pointer_mut(&format!("/spec/{key}")) else { continue };
        for c in list.iter_mut() {
            let container = c.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
            let path = c
                .get("terminationMessagePath")
                .and_then(Value::as_str)
                .unwrap_or(DEFAULT_TERMINATION_PATH)
                .to_string();
            let mounts = &mut c["volumeMounts"];
            if !mounts.is_array() {
                *mounts = json!([]);
            }
            if let Value::Array(mounts) = mounts {
                for m in mounts.iter_mut() {
                    let vol = m.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
                    if empty.contains(&vol) {
                        m["name"] = json!(volume_name(name, &vol));
                    }
                }
                mounts.push(json!({"name": tl_volume(index), "mountPath": path}));
            }
            c["imagePullPolicy"] = json!("Never");
            let file = termination_file(host_dir, &container);
            new_volumes.push(json!({
                "name": tl_volume(index),
                "hostPath": {"path": file.to_string_lossy(), "type": "File"},
            }));
            index += 1;
        }
    }
    out["spec"]["volumes"] = Value::Array(new_volumes);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {
                "restartPolicy": "Never",
                "initContainers": [{"name": "init", "image": "b", "volumeMounts": [{"name": "baton", "mountPath": "/var/run/baton"}]}],
                "containers": [
                    {"name": "a", "image": "s", "volumeMounts": [{"name": "baton", "mountPath": "/var/run/baton"}, {"name": "cfg", "mountPath": "/cfg"}]},
                    {"name": "b", "image": "s", "terminationMessagePath": "/tmp/msg", "terminationMessagePolicy": "FallbackToLogsOnError", "imagePullPolicy": "Always"},
                ],
                "volumes": [{"name": "baton", "emptyDir": {"medium": "Memory"}}, {"name": "cfg", "configMap": {"name": "c"}}, {"name": "termination-log-1", "emptyDir": {}}],
            }
        })
    }

    #[test]
    fn containers_come_init_first_with_their_termination_settings() {
        let list = containers(&pod());
        let names: Vec<(&str, bool)> = list.iter().map(|c| (c.name.as_str(), c.init)).collect();
        assert_eq!(names, [("init", true), ("a", false), ("b", false)]);
        assert_eq!(list[1].termination_path, "/dev/termination-log");
        assert_eq!((list[2].termination_path.as_str(), list[2].fallback_to_logs), ("/tmp/msg", true));
        assert_eq!(empty_dirs(&pod()), ["baton", "termination-log-1"]);
    }

    #[test]
    fn every_container_gets_its_termination_file_and_the_renamed_empty_dirs() {
        let out = for_podman(&pod(), Path::new("/work/p/containers"));
        assert_eq!(out["metadata"]["annotations"][KEEP_INIT.0], "always");
        let vols = out["spec"]["volumes"].as_array().unwrap();
        let names: Vec<&str> = vols.iter().map(|v| v["name"].as_str().unwrap()).collect();
        // The pod's own volume named termination-log-1 pushes the harness's name aside.
        assert_eq!(
            names,
            [
                "p--baton",
                "cfg",
                "p--termination-log-1",
                "termination-log-0",
                "xtermination-log-1",
                "termination-log-2"
            ]
        );
        assert_eq!(
            vols[4]["hostPath"],
            json!({"path": "/work/p/containers/a/termination-log", "type": "File"})
        );
        let a = &out["spec"]["containers"][0];
        assert_eq!(a["volumeMounts"][0]["name"], "p--baton");
        assert_eq!(a["volumeMounts"][1]["name"], "cfg");
        assert_eq!(
            a["volumeMounts"][2],
            json!({"name": "xtermination-log-1", "mountPath": "/dev/termination-log"})
        );
        let b = &out["spec"]["containers"][1];
        assert_eq!(b["volumeMounts"], json!([{"name": "termination-log-2", "mountPath": "/tmp/msg"}]));
        assert_eq!(b["imagePullPolicy"], "Never");
        assert_eq!(out["spec"]["initContainers"][0]["volumeMounts"][0]["name"], "p--baton");
        // Nothing else changes.
        assert_eq!(out["spec"]["restartPolicy"], "Never");
        assert_eq!(out["spec"]["volumes"][1], pod()["spec"]["volumes"][1]);
    }
}
