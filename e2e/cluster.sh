#!/usr/bin/env bash
# The suite on a real single-node Kubernetes: the examples, the plain examples through `batonctl
# inject | kubectl apply`, `batonctl status` on the real Pod JSON against what `batonctl play` prints for
# the same pod, faults (OOM kill, deletion mid-run, a container killed by the runtime), native sidecars,
# a Job retried by backoffLimit, the watcher, deploy/ with the webhook called by the real API server (and
# its metrics scraped), its controller (only labelled pods, a denied patch, a relist, deploy/'s policy), a
# mesh-like proxy added by a MutatingAdmissionPolicy after the webhook (which re-plans the pod), the
# Argo- and Tekton-shaped pods (the latter also side by side with upstream Tekton's entrypoint),
# `batonctl status` reading the API
# server (pod/, job/, cronjob/, selectors, -w until the run ends, as a kubectl plugin), and the 20-step
# figure. docs/e2e.md describes it.
#
#   e2e/cluster.sh [SCENARIO...]     (default: all; see SCENARIOS below)
#
# Without KUBECONFIG it brings up the test cluster of e2e/cluster/up (as root; a warm start takes well
# under a minute, a cold one first builds Kubernetes) and takes it down at the end (CLUSTER_KEEP=1 keeps
# it). With KUBECONFIG it uses that cluster, pushing the images to $BATON_REGISTRY; the scenarios that
# need the node's container runtime are then skipped. Ends with one line `N passed, M failed`; exits 1
# when a check failed. Environment: BATONCTL, E2E_KEEP=1, POD_TIMEOUT (seconds per pod, default 120).
set -uo pipefail

E2E_NAME=cluster
# shellcheck source=e2e/lib.sh
source "$(dirname "$0")/lib.sh"
POD_TIMEOUT=${POD_TIMEOUT:-120}
# shellcheck source=e2e/checks.sh
source "$E2E_DIR/checks.sh"
# shellcheck source=e2e/cluster/attach.sh
source "$E2E_DIR/cluster/attach.sh"
# shellcheck source=e2e/cluster/scenarios.sh
source "$E2E_DIR/cluster/scenarios.sh"
# shellcheck source=e2e/cluster/deploy.sh
source "$E2E_DIR/cluster/deploy.sh"
# shellcheck source=e2e/cluster/frameworks.sh
source "$E2E_DIR/cluster/frameworks.sh"
# shellcheck source=e2e/cluster/status.sh
source "$E2E_DIR/cluster/status.sh"
# shellcheck source=e2e/cluster/tekton-upstream.sh
source "$E2E_DIR/cluster/tekton-upstream.sh"

SCENARIOS=(smoke isolation kubelet pipeline dag sidecar failure plain faults native job watch deploy controller mesh argo tekton tekton-upstream status bench)
WANT=("$@")
[ ${#WANT[@]} -gt 0 ] || WANT=("${SCENARIOS[@]}")
for s in "${WANT[@]}"; do
  [[ " ${SCENARIOS[*]} " == *" $s "* ]] || die "unknown scenario $s; choose among: ${SCENARIOS[*]}"
done

E2E_WORK=$(mktemp -d "${TMPDIR:-/tmp}/baton-cluster.XXXXXX")
: > "$E2E_WORK/figures.tsv"
NS=""

finish() {
  if [ -n "$NS" ] && [ "${E2E_KEEP:-0}" != 1 ]; then
    kubectl delete namespace "$NS" --wait=false >/dev/null 2>&1
  fi
  cluster_detach
  if [ "$FAILED" -eq 0 ] && [ "${E2E_KEEP:-0}" != 1 ]; then rm -rf "$E2E_WORK"; else say "artifacts (manifests, Pod JSON, run status) in $E2E_WORK"; fi
}
trap finish EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------------
# The cluster, the images, batonctl

ensure_tools
# The test cluster (e2e/cluster/attach.sh): KUBECONFIG's, or e2e/cluster/up's brought up here.
cluster_attach
[ -z "$CLUSTER_UP_MS" ] || figure cluster "e2e/cluster/up" up "$CLUSTER_UP_MS"

ensure_baton_binary
say "building images $BATON_IMAGE and $STEP_IMAGE (podman build, no network)"
build_images
# A tag per content, so that IfNotPresent never runs a stale image.
IMAGE_BATON="$BATON_REGISTRY/baton:dev-$(podman image inspect "$BATON_IMAGE" --format '{{.Id}}' | cut -c1-12)"
IMAGE_STEP="$BATON_REGISTRY/busybox-step:dev-$(podman image inspect "$STEP_IMAGE" --format '{{.Id}}' | cut -c1-12)"
for pair in "$BATON_IMAGE=$IMAGE_BATON" "$STEP_IMAGE=$IMAGE_STEP"; do
  { podman tag "${pair%%=*}" "${pair#*=}" && podman push -q "${tls[@]}" "${pair#*=}" >&2; } || die "podman push ${pair#*=} failed"
done
say "pushed $IMAGE_BATON and $IMAGE_STEP"

BATONCTL_BIN=$(find_batonctl)
{ [ -n "$BATONCTL_BIN" ] && [ "$BATONCTL_BIN" != BUILD-FAILED ]; } || die "batonctl does not build; the suite reads every pod with it"
export BATONCTL_BIN

NS="baton-e2e-$(date +%s)"
kubectl create namespace "$NS" >/dev/null || die "cannot create namespace $NS"
kubectl -n "$NS" wait --for=jsonpath='{.metadata.name}'=default serviceaccount/default --timeout=60s >/dev/null 2>&1 \
  || die "namespace $NS got no default service account within 60 s (is kube-controller-manager running?)"
say "Kubernetes $(kubectl version -o json | jq -r .serverVersion.gitVersion), namespace $NS"

# ---------------------------------------------------------------------------------------------------
# The cluster driver (checks.sh's interface: play_and_wait, pod_json, container_started_ms)

# for_cluster FILE: the manifest (YAML or JSON, a Pod or a Job) as JSON, with the local images renamed to
# the pushed tags and pulled IfNotPresent.
for_cluster() {
  yaml_to_json "$1" | jq --arg from_b "$BATON_IMAGE" --arg to_b "$IMAGE_BATON" \
    --arg from_s "$STEP_IMAGE" --arg to_s "$IMAGE_STEP" '
    walk(if type == "object" and has("image") and has("name") then
           (if .image == $from_b then .image = $to_b elif .image == $from_s then .image = $to_s else . end)
           | .imagePullPolicy = "IfNotPresent"
         else . end)'
}

# apply FILE: applies the cluster's version of FILE (already for_cluster'd when it is .json) in $NS.
apply() {
  local out
  out=$(kubectl -n "$NS" apply -f "$1" 2>&1) || { fail "kubectl apply $(basename "$1"): $out"; return 1; }
}

# wait_end POD [SECONDS]: until the pod's phase is Succeeded or Failed, from a watch (no polling).
wait_end() {
  local pod=$1 phase
  while read -r phase; do
    case $phase in Succeeded|Failed) return 0 ;; esac
  done < <(timeout "${2:-$POD_TIMEOUT}" kubectl -n "$NS" get pod "$pod" -w -o jsonpath='{.status.phase}{"\n"}' 2>/dev/null)
  fail "$pod: not ended after ${2:-$POD_TIMEOUT}s (phase ${phase:-unknown}; a step hangs, or an image cannot be pulled)"
  kubectl -n "$NS" get pod "$pod" -o json > "$(pod_dir "$pod")/pod.json" 2>/dev/null
  return 1
}

# play_and_wait FILE: the example pod on the cluster, until it ended.
play_and_wait() {
  local file=$1 pod dir
  pod=$(yaml_to_json "$file" | jq -er .metadata.name) || die "$file: not a Pod"
  # shellcheck disable=SC2034 # lib.sh's, read by checks.sh
  PLAYED=$pod
  dir=$(pod_dir "$pod")
  mkdir -p "$dir"
  yaml_to_json "$file" > "$dir/spec.json"
  for_cluster "$file" > "$dir/apply.json"
  apply "$dir/apply.json" || return 1
  wait_end "$pod"
}

pod_json() { kubectl -n "$NS" get pod "$1" -o json > "$(pod_dir "$1")/pod.json"; }
container_log() { kubectl -n "$NS" logs "$1" -c "$2" 2>&1; }

# When the kubelet says the container started (whole seconds).
container_started_ms() {
  jq -r --arg n "$2" "$JQ_MS"'
    [.status.initContainerStatuses[]?, .status.containerStatuses[]] | map(select(.name == $n))[0].state
    | (.terminated.startedAt // .running.startedAt // null) | if . == null then "null" else ms end' "$(pod_dir "$1")/pod.json"
}

for s in "${WANT[@]}"; do
  say "scenario $s"
  "scenario_$s"
  case $s in
    # The examples' checks are checks.sh's, as on podman; then play must print what the cluster gave.
    pipeline|dag|sidecar|failure) compare_with_play "baton-$s" "$REPO/examples/$s.yaml" ;;
  esac
done

summary
