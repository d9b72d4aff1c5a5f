//! The platform a pod's images are read for: a multi-platform image's ENTRYPOINT is that of the
//! variant the pod's nodes will pull, and the pod says which nodes those are.

use serde_json::Value;

/// The label Kubernetes puts on every node with its CPU architecture.
pub const ARCH_LABEL: &str = "kubernetes.io/arch";
/// The architecture read when the pod does not choose one (the most common node).
pub const DEFAULT_ARCH: &str = "amd64";

/// The CPU architecture of the nodes `template`'s pod may run on: `kubernetes.io/arch` in its
/// `nodeSelector`, else the values an `In` expression of its required node affinity gives that label
/// (amd64 when it is among them, else the first), else amd64. The OS is always linux (a Windows pod
/// is not injected).
pub fn pod_arch(template: &Value) -> &str {
    let spec = template.get("spec");
    let selected = spec.and_then(|s| s.get("nodeSelector")).and_then(|n| n.get(ARCH_LABEL));
    if let Some(arch) = selected.and_then(Value::as_str) {
        return arch;
    }
    let affinity = "/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms";
    let terms = spec.and_then(|s| s.pointer(affinity)).and_then(Value::as_array);
    let expressions =
        terms.into_iter().flatten().filter_map(|t| t.get("matchExpressions")?.as_array()).flatten();
    let allowed: Vec<&str> = expressions
        .filter(|e| e.get("key").and_then(Value::as_str) == Some(ARCH_LABEL))
        .filter(|e| e.get("operator").and_then(Value::as_str) == Some("In"))
        .filter_map(|e| e.get("values")?.as_array())
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    match allowed.first() {
        Some(first) if !allowed.contains(&DEFAULT_ARCH) => first,
        _ => DEFAULT_ARCH,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn arch(spec: Value) -> String {
        pod_arch(&json!({"spec": spec})).to_string()
    }

    #[test]
    fn the_pods_node_selector_or_affinity_chooses_else_amd64() {
        assert_eq!(arch(json!({})), "amd64");
        assert_eq!(arch(json!({"nodeSelector": {"kubernetes.io/arch": "arm64"}})), "arm64");
        assert_eq!(arch(json!({"nodeSelector": {"kubernetes.io/os": "linux"}})), "amd64");
        let required = |values: Value, operator: &str| {
            json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["a"]}]},
                {"matchExpressions": [{"key": "kubernetes.io/arch", "operator": operator, "values": values}]},
            ]}}}})
        };
        assert_eq!(arch(required(json!(["arm64"]), "In")), "arm64");
        assert_eq!(arch(required(json!(["s390x", "amd64"]), "In")), "amd64", "amd64 when the pod allows it");
        assert_eq!(arch(required(json!(["arm64"]), "NotIn")), "amd64");
        // The node selector wins over the affinity (both must hold; it is the narrower).
        let mut both = required(json!(["arm64", "amd64"]), "In");
        both["nodeSelector"] = json!({"kubernetes.io/arch": "arm64"});
        assert_eq!(arch(both), "arm64");
    }
}
