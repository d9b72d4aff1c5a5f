#!/usr/bin/env bash
# The examples against a real cluster, for users: the same pods and the same checks as e2e/run.sh,
# with a real kubelet writing the Pod status.
#
#   e2e/cluster.sh [pipeline dag sidecar failure]
#
# Needs kubectl with a reachable cluster (KUBECONFIG or ~/.kube/config); exits 0 with "skipped: no
# cluster reachable" otherwise. The images are built here (podman build, as e2e/run.sh does) and:
#   - loaded into kind (`kind load image-archive`) when the current context is a kind cluster;
#   - else pushed to $BATON_REGISTRY (e.g. registry.example.com/me), which the cluster must be able
#     to pull from (podman push uses your podman login).
# Environment: BATON_NAMESPACE (default: a fresh namespace baton-e2e-<time>, deleted at the end),
# BATONCTL, E2E_KEEP=1, POD_TIMEOUT (seconds per pod, default 180: includes pulling the images).
# Then runs crates/baton-controller/cluster-check.sh (batonctl watch against the cluster) when it exists.
set -uo pipefail

E2E_NAME=cluster
# shellcheck source=e2e/lib.sh
source "$(dirname "$0")/lib.sh"
POD_TIMEOUT=${POD_TIMEOUT:-180}
# shellcheck source=e2e/checks.sh
source "$(dirname "$0")/checks.sh"

if ! command -v kubectl >/dev/null 2>&1; then
  echo "skipped: no cluster reachable (kubectl is not installed)"
  exit 0
fi
if ! kubectl version -o json --request-timeout=5s 2>/dev/null | grep -q '"serverVersion"'; then
  echo "skipped: no cluster reachable (kubectl cannot reach an API server; set KUBECONFIG)"
  exit 0
fi

WANT=("$@")
[ ${#WANT[@]} -gt 0 ] || WANT=(pipeline dag sidecar failure)
for s in "${WANT[@]}"; do
  case $s in pipeline|dag|sidecar|failure) ;; *) die "unknown example $s (pipeline, dag, sidecar, failure)" ;; esac
done

E2E_WORK=$(mktemp -d "${TMPDIR:-/tmp}/baton-cluster.XXXXXX")
: > "$E2E_WORK/figures.tsv"
CONTEXT=$(kubectl config current-context 2>/dev/null || echo "?")
NS=${BATON_NAMESPACE:-}
CREATED_NS=""
CLUSTER_PODS=()

finish() {
  local p
  if [ "${E2E_KEEP:-0}" = 1 ]; then
    say "E2E_KEEP=1: keeping namespace ${NS} and its pods; artifacts in $E2E_WORK"
    return
  fi
  if [ -n "$CREATED_NS" ]; then
    kubectl delete namespace "$CREATED_NS" --wait=false >/dev/null 2>&1
  else
    for p in "${CLUSTER_PODS[@]}"; do kubectl -n "$NS" delete pod "$p" --ignore-not-found --wait=false >/dev/null 2>&1; done
  fi
  if [ "$FAILED" -eq 0 ]; then rm -rf "$E2E_WORK"; else say "artifacts (spec, Pod JSON, run status) in $E2E_WORK"; fi
}
trap finish EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------------
# Images into the cluster

ensure_tools
ensure_baton_binary
say "building images $BATON_IMAGE and $STEP_IMAGE (podman build, no network)"
build_images

# How the pods name the images, and with which pull policy.
IMAGE_BATON=$BATON_IMAGE
IMAGE_STEP=$STEP_IMAGE
PULL_POLICY=Never
if [[ "$CONTEXT" == kind-* ]] && command -v kind >/dev/null 2>&1; then
  kind_cluster=${CONTEXT#kind-}
  say "loading the images into kind cluster $kind_cluster (kind load image-archive)"
  podman save -q -m -o "$E2E_WORK/images.tar" "$BATON_IMAGE" "$STEP_IMAGE" || die "podman save failed"
  kind load image-archive "$E2E_WORK/images.tar" --name "$kind_cluster" >&2 || die "kind load image-archive failed"
  rm -f "$E2E_WORK/images.tar"
elif [ -n "${BATON_REGISTRY:-}" ]; then
  # A tag per content, so that IfNotPresent never runs a stale image.
  IMAGE_BATON="$BATON_REGISTRY/baton:dev-$(podman image inspect "$BATON_IMAGE" --format '{{.Id}}' | cut -c1-12)"
  IMAGE_STEP="$BATON_REGISTRY/busybox-step:dev-$(podman image inspect "$STEP_IMAGE" --format '{{.Id}}' | cut -c1-12)"
  PULL_POLICY=IfNotPresent
  for pair in "$BATON_IMAGE=$IMAGE_BATON" "$STEP_IMAGE=$IMAGE_STEP"; do
    podman tag "${pair%%=*}" "${pair#*=}" && podman push -q "${pair#*=}" >&2 || die "podman push ${pair#*=} failed"
  done
  say "pushed $IMAGE_BATON and $IMAGE_STEP"
else
  die "context $CONTEXT is not a kind cluster (or kind is not installed): set BATON_REGISTRY to a registry the cluster pulls from"
fi

if [ -z "$NS" ]; then
  NS="baton-e2e-$(date +%s)"
  kubectl create namespace "$NS" >/dev/null || die "cannot create namespace $NS (set BATON_NAMESPACE to one you may use)"
  CREATED_NS=$NS
fi
say "context $CONTEXT, namespace $NS"

BATONCTL_BIN=$(find_batonctl)
[ "$BATONCTL_BIN" = BUILD-FAILED ] && { fail "batonctl does not build"; BATONCTL_BIN=""; }
[ -n "$BATONCTL_BIN" ] || skip "batonctl: not available; asserting on the harness's own reading"
export BATONCTL_BIN

# ---------------------------------------------------------------------------------------------------
# The cluster driver (see checks.sh)

# play_and_wait FILE: applies the pod (images renamed for the cluster), waits for Succeeded or Failed.
play_and_wait() {
  local file=$1 pod dir deadline phase
  pod=$(yaml_to_json "$file" | jq -er .metadata.name) || die "$file: not a Pod"
  PLAYED=$pod
  dir=$(pod_dir "$pod")
  rm -rf "$dir"
  mkdir -p "$dir"
  yaml_to_json "$file" > "$dir/spec.json"
  kubectl -n "$NS" delete pod "$pod" --ignore-not-found --wait=true >/dev/null 2>&1
  CLUSTER_PODS+=("$pod")
  jq --arg from_b "$BATON_IMAGE" --arg to_b "$IMAGE_BATON" --arg from_s "$STEP_IMAGE" --arg to_s "$IMAGE_STEP" \
     --arg policy "$PULL_POLICY" '
    def fix: if .image == $from_b then .image = $to_b elif .image == $from_s then .image = $to_s else . end
             | .imagePullPolicy = $policy;
    .spec.containers |= map(fix) | if .spec.initContainers then .spec.initContainers |= map(fix) else . end' \
    "$dir/spec.json" > "$dir/apply.json"
  if ! kubectl -n "$NS" apply -f "$dir/apply.json" > "$dir/apply.log" 2>&1; then
    fail "$pod: kubectl apply failed: $(tail -n 3 "$dir/apply.log")"
    return 1
  fi
  deadline=$(( $(now_ms) + POD_TIMEOUT * 1000 ))
  while :; do
    phase=$(kubectl -n "$NS" get pod "$pod" -o jsonpath='{.status.phase}' 2>/dev/null)
    case $phase in Succeeded|Failed) break ;; esac
    if [ "$(now_ms)" -ge "$deadline" ]; then
      fail "$pod: still $phase after ${POD_TIMEOUT}s (a step hangs, or the images cannot be pulled)"
      kubectl -n "$NS" get pod "$pod" -o json > "$dir/pod.json" 2>/dev/null
      return 0
    fi
    sleep 1
  done
  # The kubelet may still be writing the last container statuses.
  sleep 1
  return 0
}

pod_json() { kubectl -n "$NS" get pod "$1" -o json > "$(pod_dir "$1")/pod.json"; }

# When the kubelet says the container started (seconds only).
container_started_ms() {
  jq -r --arg n "$2" "$JQ_MS"'
    [.status.initContainerStatuses[]?, .status.containerStatuses[]] | map(select(.name == $n))[0].state
    | (.terminated.startedAt // .running.startedAt // null) | if . == null then "null" else ms end' "$(pod_dir "$1")/pod.json"
}

for s in "${WANT[@]}"; do
  say "example $s"
  "scenario_$s"
done

if [ -x "$REPO/crates/baton-controller/cluster-check.sh" ]; then
  say "crates/baton-controller/cluster-check.sh (batonctl watch against the cluster)"
  if BATONCTL=${BATONCTL_BIN:-${BATONCTL:-}} NAMESPACE=$NS "$REPO/crates/baton-controller/cluster-check.sh"; then
    pass "crates/baton-controller/cluster-check.sh"
  else
    fail "crates/baton-controller/cluster-check.sh"
  fi
fi

summary
