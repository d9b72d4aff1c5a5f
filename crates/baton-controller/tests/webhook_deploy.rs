//! deploy/ checked without a cluster (no kubectl here): every document of every file the
//! kustomization lists parses, each object is of the kind and name expected and reads as its
//! Kubernetes type (k8s-openapi), and the pieces fit together: names, ports, the Secret, the
//! certificate's DNS names (the ones `batonctl webhook certs` writes), the RBAC, the hardening. The
//! commands the Deployments run are checked against the real batonctl's argument parser.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, Namespace, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

/// Every object of deploy/, by `Kind/namespace/name`.
fn objects() -> BTreeMap<String, Value> {
    by_key(kustomization(&deploy()))
}

fn by_key(objects: Vec<Value>) -> BTreeMap<String, Value> {
    let mut all = BTreeMap::new();
    for object in objects {
        let key = format!(
            "{}/{}/{}",
            object["kind"].as_str().unwrap(),
            object["metadata"]["namespace"].as_str().unwrap_or("-"),
            object["metadata"]["name"].as_str().unwrap()
        );
        assert!(all.insert(key.clone(), object).is_none(), "{key} twice");
    }
    all
}

/// The objects of the kustomization in `dir`: its files, and those of the folders it names. Every
/// YAML file of `dir` is listed, as a resource or as kustomize's own configuration.
fn kustomization(dir: &Path) -> Vec<Value> {
    let file = read(&dir.join("kustomization.yaml")).remove(0);
    assert_eq!(file["kind"], "Kustomization");
    let list = |key: &str| -> Vec<&str> {
        file[key].as_array().into_iter().flatten().map(|r| r.as_str().unwrap()).collect()
    };
    let resources = list("resources");
    let configurations = list("configurations");
    let on_disk: BTreeSet<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .collect();
    let listed: BTreeSet<String> = resources
        .iter()
        .chain(&configurations)
        .filter(|r| r.ends_with(".yaml"))
        .map(|r| r.to_string())
        .collect();
    assert_eq!(listed, on_disk, "{}: the kustomization lists every file", dir.display());
    let mut all = Vec::new();
    for resource in resources {
        let path = dir.join(resource);
        if path.is_dir() {
            all.extend(kustomization(&path));
        } else {
            all.extend(read(&path));
        }
    }
    all
}

fn read(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    baton_inject::manifest::objects(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn typed<T: DeserializeOwned>(objects: &BTreeMap<String, Value>, key: &str) -> T {
    let object = objects.get(key).unwrap_or_else(|| panic!("{key} is missing"));
    serde_json::from_value(object.clone())
        .unwrap_or_else(|e| panic!("{key} is not a valid {}: {e}", std::any::type_name::<T>()))
}

const NS: &str = "baton-system";

#[test]
fn every_object_is_there_and_reads_as_its_kubernetes_type() {
    let objects = objects();
    let keys: Vec<&str> = objects.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "Certificate/baton-system/baton-ca",
            "Certificate/baton-system/baton-webhook",
            "ClusterRole/-/baton-controller",
            "ClusterRoleBinding/-/baton-controller",
            "Deployment/baton-system/baton-controller",
            "Deployment/baton-system/baton-webhook",
            "Issuer/baton-system/baton-ca",
            "Issuer/baton-system/baton-selfsigned",
            "MutatingWebhookConfiguration/-/baton-webhook",
            "Namespace/-/baton-system",
            "PodDisruptionBudget/baton-system/baton-webhook",
            "PriorityClass/-/baton-webhook",
            "Service/baton-system/baton-webhook",
            "ServiceAccount/baton-system/baton-controller",
            "ServiceAccount/baton-system/baton-webhook",
            "ValidatingAdmissionPolicy/-/baton-controller-writes-run-status-only",
            "ValidatingAdmissionPolicyBinding/-/baton-controller-writes-run-status-only",
        ]
    );
    let _: Namespace = typed(&objects, "Namespace/-/baton-system");
    let _: ServiceAccount = typed(&objects, "ServiceAccount/baton-system/baton-webhook");
    let _: ServiceAccount = typed(&objects, "ServiceAccount/baton-system/baton-controller");
    let _: PodDisruptionBudget = typed(&objects, "PodDisruptionBudget/baton-system/baton-webhook");
    let _: ValidatingAdmissionPolicy =
        typed(&objects, "ValidatingAdmissionPolicy/-/baton-controller-writes-run-status-only");
    let _: ValidatingAdmissionPolicyBinding =
        typed(&objects, "ValidatingAdmissionPolicyBinding/-/baton-controller-writes-run-status-only");
    for object in objects.values() {
        let api = object["apiVersion"].as_str().unwrap();
        let kind = object["kind"].as_str().unwrap();
        let want = match kind {
            "Certificate" | "Issuer" => "cert-manager.io/v1",
            "ClusterRole" | "ClusterRoleBinding" => "rbac.authorization.k8s.io/v1",
            "Deployment" => "apps/v1",
            "MutatingWebhookConfiguration"
            | "ValidatingAdmissionPolicy"
            | "ValidatingAdmissionPolicyBinding" => "admissionregistration.k8s.io/v1",
            "PodDisruptionBudget" => "policy/v1",
            "PriorityClass" => "scheduling.k8s.io/v1",
            _ => "v1",
        };
        assert_eq!(api, want, "{kind}");
    }
}

/// The one container of a Deployment's pods, after the pod-level checks every Deployment passes:
/// non-root, read-only root filesystem, no privilege escalation, resource requests.
fn hardened(deployment: &Deployment) -> Container {
    let spec = deployment.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    let pod_security = spec.security_context.as_ref().unwrap();
    assert_eq!(pod_security.run_as_non_root, Some(true));
    assert!(pod_security.run_as_user.is_some_and(|u| u != 0));
    assert_eq!(spec.containers.len(), 1);
    let container = spec.containers[0].clone();
    let security = container.security_context.as_ref().unwrap();
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(security.capabilities.as_ref().unwrap().drop.as_deref(), Some(&["ALL".to_string()][..]));
    let requests = container.resources.as_ref().unwrap().requests.as_ref().unwrap();
    assert!(requests.contains_key("cpu") && requests.contains_key("memory"));
    assert_eq!(container.image.as_deref(), Some("localhost/batonctl:0.1.0"));
    container
}

/// batonctl accepts `command[1..]` (`--help` at the end: clap checks every flag before it, then
/// prints the help and exits 0 instead of running).
fn batonctl_accepts(command: &[String]) {
    assert_eq!(command[0], "/batonctl", "the scratch image's binary");
    let out =
        Command::new(env!("CARGO_BIN_EXE_batonctl")).args(&command[1..]).arg("--help").output().unwrap();
    assert!(out.status.success(), "{command:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// `command` as the kubelet runs it in `container`: `$(VAR)` replaced by the value of its env var VAR.
fn expanded(container: &Container) -> Vec<String> {
    let env = container.env.as_deref().unwrap_or_default();
    let mut command = container.command.clone().unwrap();
    for word in &mut command {
        for var in env {
            *word = word.replace(&format!("$({})", var.name), var.value.as_deref().unwrap_or_default());
        }
    }
    command
}

fn flag<'a>(command: &'a [String], name: &str) -> &'a str {
    command
        .iter()
        .find_map(|a| a.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("{name} is not in {command:?}"))
}

#[test]
fn the_webhook_fits_together() {
    let objects = objects();
    let deployment: Deployment = typed(&objects, "Deployment/baton-system/baton-webhook");
    let spec = deployment.spec.as_ref().unwrap();
    assert_eq!(spec.replicas, Some(2));
    let pod = spec.template.spec.as_ref().unwrap();
    assert_eq!(pod.service_account_name.as_deref(), Some("baton-webhook"));
    assert_eq!(
        pod.automount_service_account_token,
        Some(false),
        "the webhook does not talk to the API server"
    );
    let container = hardened(&deployment);
    let command = expanded(&container);
    assert_eq!(&command[..2], ["/batonctl", "webhook"]);
    batonctl_accepts(&command);
    // The baton-init image comes from an env var, which kustomize's images: rewrite (kustomizeconfig.yaml).
    assert_eq!(
        container.command.as_ref().unwrap().iter().filter(|w| *w == "--image=$(BATON_INIT_IMAGE)").count(),
        1
    );
    assert_eq!(flag(&command, "--image"), baton_inject::DEFAULT_IMAGE, "the baton image of this version");

    // Scheduled before the workloads it admits, one replica per zone when possible.
    let priority: PriorityClass = typed(&objects, "PriorityClass/-/baton-webhook");
    assert_eq!(pod.priority_class_name.as_deref(), Some(priority.metadata.name.as_deref().unwrap()));
    assert!((1..=1_000_000_000).contains(&priority.value), "above workloads, below the system's classes");
    assert_eq!(priority.global_default, Some(false));
    let spread = &pod.topology_spread_constraints.as_ref().unwrap()[0];
    assert_eq!((spread.topology_key.as_str(), spread.max_skew), ("topology.kubernetes.io/zone", 1));
    assert_eq!(spread.when_unsatisfiable, "ScheduleAnyway", "a single-zone cluster still runs both");

    // The certificate files are those of the mounted Secret that cert-manager writes.
    let certificate = &objects["Certificate/baton-system/baton-webhook"];
    let secret = certificate["spec"]["secretName"].as_str().unwrap();
    let volume = pod.volumes.as_ref().unwrap().iter().find(|v| v.name == "tls").unwrap();
    assert_eq!(volume.secret.as_ref().unwrap().secret_name.as_deref(), Some(secret));
    let mount = container.volume_mounts.as_ref().unwrap().iter().find(|m| m.name == "tls").unwrap();
    assert_eq!(mount.read_only, Some(true));
    assert_eq!(flag(&command, "--tls-cert"), format!("{}/tls.crt", mount.mount_path));
    assert_eq!(flag(&command, "--tls-key"), format!("{}/tls.key", mount.mount_path));

    // The port it listens on is the one the probes, the Service and the webhook use.
    let listen: std::net::SocketAddr = flag(&command, "--listen").parse().unwrap();
    assert_eq!(listen.ip(), std::net::Ipv6Addr::UNSPECIFIED, "[::]: IPv4 and IPv6 alike");
    let port = &container.ports.as_ref().unwrap()[0];
    assert_eq!((port.name.as_deref(), port.container_port), (Some("https"), i32::from(listen.port())));
    for probe in [container.readiness_probe.as_ref().unwrap(), container.liveness_probe.as_ref().unwrap()] {
        let get = probe.http_get.as_ref().unwrap();
        assert_eq!((get.path.as_deref(), get.scheme.as_deref()), (Some("/healthz"), Some("HTTPS")));
    }
    let service: Service = typed(&objects, "Service/baton-system/baton-webhook");
    let service_spec = service.spec.as_ref().unwrap();
    let labels = spec.template.metadata.as_ref().unwrap().labels.clone().unwrap();
    for (k, v) in service_spec.selector.as_ref().unwrap() {
        assert_eq!(labels.get(k), Some(v), "the Service selects the webhook's pods");
    }
    let service_port = &service_spec.ports.as_ref().unwrap()[0];
    let target = serde_json::to_value(service_port.target_port.as_ref().unwrap()).unwrap();
    assert_eq!(target, "https");

    // The serving certificate names the Service as the API server calls it.
    let names: Vec<String> = serde_json::from_value(certificate["spec"]["dnsNames"].clone()).unwrap();
    assert_eq!(names, baton_controller::webhook::certs::dns_names("baton-webhook", NS));
    assert_eq!(certificate["spec"]["issuerRef"]["name"], "baton-ca");
    assert_eq!(objects["Certificate/baton-system/baton-ca"]["spec"]["isCA"], true);
    assert_eq!(objects["Issuer/baton-system/baton-ca"]["spec"]["ca"]["secretName"], "baton-ca");

    let config: MutatingWebhookConfiguration =
        typed(&objects, "MutatingWebhookConfiguration/-/baton-webhook");
    let annotations = config.metadata.annotations.as_ref().unwrap();
    assert_eq!(annotations["cert-manager.io/inject-ca-from"], "baton-system/baton-webhook");
    let hooks = config.webhooks.as_ref().unwrap();
    assert_eq!(hooks.len(), 1);
    let hook = &hooks[0];
    let target = hook.client_config.service.as_ref().unwrap();
    assert_eq!((target.name.as_str(), target.namespace.as_str()), ("baton-webhook", NS));
    assert_eq!((target.path.as_deref(), target.port), (Some("/mutate"), Some(service_port.port)));
    assert_eq!(hook.side_effects, "None");
    assert!(hook.timeout_seconds.is_some_and(|t| (1..=30).contains(&t)));
    // The webhook ends a request when the API server stops waiting for it, not later.
    let request_timeout = baton_contract::duration::parse(flag(&command, "--request-timeout")).unwrap();
    assert_eq!(Some(request_timeout.as_secs() as i32), hook.timeout_seconds);
    assert_eq!(hook.reinvocation_policy.as_deref(), Some("IfNeeded"));
    assert_eq!(hook.failure_policy.as_deref(), Some("Fail"));
    assert_eq!(hook.admission_review_versions, ["v1"]);
    let rule = &hook.rules.as_ref().unwrap()[0];
    assert_eq!(rule.operations.as_deref(), Some(&["CREATE".to_string()][..]));
    assert_eq!(rule.resources.as_deref(), Some(&["pods".to_string()][..]));
    let condition = &hook.match_conditions.as_ref().unwrap()[0];
    assert!(condition.expression.contains("'baton.dev/inject'"), "{}", condition.expression);
    let namespaces = serde_json::to_string(&hook.namespace_selector).unwrap();
    assert!(namespaces.contains(NS), "baton's own namespace is left out: {namespaces}");
}

#[test]
fn the_controller_watches_with_least_privilege() {
    let objects = objects();
    let deployment: Deployment = typed(&objects, "Deployment/baton-system/baton-controller");
    let spec = deployment.spec.as_ref().unwrap();
    assert_eq!(spec.replicas, Some(1));
    let pod = spec.template.spec.as_ref().unwrap();
    assert_eq!(pod.service_account_name.as_deref(), Some("baton-controller"));
    let command = hardened(&deployment).command.unwrap();
    assert_eq!(command, ["/batonctl", "watch", "--annotate", "--events", "-A", "--metrics-listen=[::]:9090"]);
    batonctl_accepts(&command);

    let role: ClusterRole = typed(&objects, "ClusterRole/-/baton-controller");
    let rules = role.rules.unwrap();
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[0].api_groups.as_deref(), Some(&[String::new()][..]));
    assert_eq!(rules[0].resources.as_deref(), Some(&["pods".to_string()][..]));
    assert_eq!(rules[0].verbs, ["get", "list", "watch", "patch"]);
    assert_eq!(rules[1].api_groups.as_deref(), Some(&["events.k8s.io".to_string()][..]));
    assert_eq!(rules[1].verbs, ["create", "patch"]);
    // The patch right is narrowed to the run-status annotation by a ValidatingAdmissionPolicy bound to it.
    let policy = &objects["ValidatingAdmissionPolicy/-/baton-controller-writes-run-status-only"];
    let binding = &objects["ValidatingAdmissionPolicyBinding/-/baton-controller-writes-run-status-only"];
    assert_eq!(binding["spec"]["policyName"], policy["metadata"]["name"]);
    assert_eq!(binding["spec"]["validationActions"], serde_json::json!(["Deny"]));
    assert!(policy["spec"]["matchConditions"][0]["expression"]
        .as_str()
        .unwrap()
        .contains(":baton-controller"));
    assert_eq!(policy["spec"]["validations"][0]["expression"], "object.spec == oldObject.spec");
    let binding: ClusterRoleBinding = typed(&objects, "ClusterRoleBinding/-/baton-controller");
    assert_eq!(
        (binding.role_ref.kind.as_str(), binding.role_ref.name.as_str()),
        ("ClusterRole", "baton-controller")
    );
    let subject = &binding.subjects.unwrap()[0];
    assert_eq!(
        (subject.kind.as_str(), subject.name.as_str(), subject.namespace.as_deref()),
        ("ServiceAccount", "baton-controller", Some(NS))
    );
}

#[test]
fn without_cert_manager_everything_but_the_certificates() {
    let all = objects();
    let without = by_key(kustomization(&deploy().join("without-cert-manager")));
    let want: Vec<&String> =
        all.keys().filter(|k| !k.starts_with("Certificate/") && !k.starts_with("Issuer/")).collect();
    assert_eq!(without.keys().collect::<Vec<_>>(), want);
}

/// kustomize itself (kubectl kustomize, where kubectl is installed) builds the same objects, with
/// the common label.
#[test]
fn kubectl_kustomize_builds_the_same_objects() {
    let Ok(out) = Command::new("kubectl").arg("kustomize").arg(deploy()).output() else {
        eprintln!("kubectl is not installed here: kustomize's own build is not checked");
        return;
    };
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let built = by_key(baton_inject::manifest::objects(&String::from_utf8(out.stdout).unwrap()).unwrap());
    assert_eq!(built.keys().collect::<Vec<_>>(), objects().keys().collect::<Vec<_>>());
    for (key, object) in &built {
        assert_eq!(object["metadata"]["labels"]["app.kubernetes.io/part-of"], "baton", "{key}");
    }
}

/// deploy/monitoring/: ServiceMonitors on the `metrics` ports the Deployments and the webhook's
/// Service name, and the flags that make those ports serve.
#[test]
fn the_metrics_ports_line_up_with_the_monitoring_folder() {
    let base = objects();
    let monitoring = by_key(kustomization(&deploy().join("monitoring")));
    for name in ["baton-webhook", "baton-controller"] {
        let deployment: Deployment = typed(&base, &format!("Deployment/baton-system/{name}"));
        let container = hardened(&deployment);
        let port =
            container.ports.unwrap().into_iter().find(|p| p.name.as_deref() == Some("metrics")).unwrap();
        assert_eq!(port.container_port, 9090, "{name}");
        let flags: Vec<String> =
            container.command.unwrap().into_iter().chain(container.args.unwrap_or_default()).collect();
        assert!(flags.iter().any(|f| f == "--metrics-listen=[::]:9090"), "{name}: {flags:?}");
        let template = deployment.spec.unwrap().template.metadata.unwrap();
        assert_eq!(template.annotations.unwrap()["prometheus.io/port"], "9090", "{name}");
        let monitor = &monitoring[&format!("ServiceMonitor/baton-system/{name}")];
        assert_eq!(monitor["spec"]["endpoints"][0]["port"], "metrics");
        assert_eq!(monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"], name);
    }
    let webhook: Service = typed(&base, "Service/baton-system/baton-webhook");
    assert!(webhook.spec.unwrap().ports.unwrap().iter().any(|p| p.name.as_deref() == Some("metrics")));
    let controller: Service = typed(&monitoring, "Service/baton-system/baton-controller-metrics");
    assert_eq!(
        controller.spec.unwrap().ports.unwrap()[0].target_port,
        Some(IntOrString::String("metrics".into()))
    );
}

/// deploy/ pins no architecture: no Deployment selects nodes by `kubernetes.io/arch` (a node
/// selector or any affinity term), so the webhook and the controller run on amd64 and arm64 nodes
/// alike, their images being manifest lists (build/multiarch-images.sh).
#[test]
fn no_deployment_is_pinned_to_an_architecture() {
    let all = objects();
    let deployments: Vec<_> = all.iter().filter(|(k, _)| k.starts_with("Deployment/")).collect();
    assert!(deployments.len() >= 2, "{:?}", all.keys());
    for (key, object) in deployments {
        let pod = &object["spec"]["template"]["spec"];
        let text = serde_json::to_string(&[&pod["nodeSelector"], &pod["affinity"]]).unwrap();
        assert!(!text.contains("kubernetes.io/arch"), "{key} pins an architecture: {text}");
        let _: Deployment = typed(&all, key);
    }
}
