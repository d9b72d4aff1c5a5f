#!/usr/bin/env bash
# e2e/argo-controller.sh: Argo's own workflow-controller on the real cluster, with its executor image
# swapped for baton's, running Argo's own examples.
#
# Upstream Argo Workflows' workflow-controller v4.0.5, built from its Go module
# (e2e/upstream/build-workflow-controller, cached in ~/.cache/baton-upstream), runs here as a host
# process (--namespaced in a namespace of its own) with --executor-image an image in the cluster's
# registry: upstream's argoexec v4.0.5 (e2e/upstream/build-argoexec, e2e/upstream/argoexec.Containerfile)
# with baton put in by argo.Containerfile exactly as a real install does it, so `init` and `wait` run
# upstream's binary and every main container, container-set member and sidecar runs baton as the
# emissary. Argo's CRDs and the executor's Role come from the Go module's manifests/, the Workflows
# from its examples/, both read at test time; each example's images are retagged to images in the
# cluster's registry (the node has no internet): busybox, alpine, debian and ubuntu to the busybox step
# image with a /tmp, argoproj/argosay to that with the module's own argosay script
# (e2e/argo/examples.Containerfile). The examples run, and those skipped with the reason, are in
# EXAMPLES_TSV and SKIPPED_TSV below; docs/argo.md has the verdicts, docs/e2e.md the environment.
#
# Each example must end in the phase it is meant to give (most Succeeded, some Failed on purpose),
# with the output its pods are meant to print, and with baton as the emissary: the pods' init
# container is the swapped image, and the log of no container the emissary wraps holds a line of
# upstream's emissary (`time=… level=… msg=…`; baton says nothing when all is well); while the main
# container of own/look-inside.yaml runs, /var/run/argo/argoexec in it is baton and ctr/main/ holds
# baton's beacon. An example that fails under baton is then run once more with upstream's executor
# image (no swap): a NOTE line tells a baton bug (upstream passes) from the environment (it fails too).
#
# Usage: e2e/argo-controller.sh [EXAMPLE...]      (default: every example of EXAMPLES below)
#   With KUBECONFIG, on that cluster, pushing to BATON_REGISTRY (the cluster of e2e/cluster/up: its
#   own registry); without, e2e/cluster/up's cluster is brought up and taken down at the end
#   (CLUSTER_KEEP=1 keeps it), as e2e/cluster.sh does.
#   ARGO_EXECUTOR=upstream   every example under upstream's executor image (the baseline; the baton
#                            checks then expect upstream's emissary instead)
#   SIDE_BY_SIDE_RUN=0       no side by side with upstream's executor (e2e/argo/controller-side-by-side.sh)
#                            and no figure after the run under baton
#   BENCH_ROUNDS=N           the figure's rounds per emissary (default 1; each about a minute here)
#   PARALLEL=N               Workflows running at once (default 0: all); WF_TIMEOUT seconds each (default 480)
#   E2E_KEEP=1               keep the namespace, the CRDs and the work folder (the controller's log)
# Ends with one line `N passed, M failed`; exits 1 when a check failed.
set -uo pipefail

E2E_NAME=argo-controller
STEP_IMAGE=${STEP_IMAGE:-localhost/busybox-step:argo-controller}
# shellcheck source=e2e/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
# shellcheck source=e2e/checks.sh
source "$E2E_DIR/checks.sh"
# shellcheck source=e2e/cluster/attach.sh
source "$E2E_DIR/cluster/attach.sh"
# shellcheck source=e2e/cluster/frameworks.sh
source "$E2E_DIR/cluster/frameworks.sh"
# shellcheck source=e2e/argo/controller-side-by-side.sh
source "$E2E_DIR/argo/controller-side-by-side.sh"

ARGO_EXECUTOR=${ARGO_EXECUTOR:-baton}
case $ARGO_EXECUTOR in baton | upstream) ;; *) die "ARGO_EXECUTOR=$ARGO_EXECUTOR: baton or upstream" ;; esac
PARALLEL=${PARALLEL:-0}
WF_TIMEOUT=${WF_TIMEOUT:-480}
UPSTREAM_IMAGE=localhost/argoexec:argo-controller
BATON_EXEC_IMAGE=localhost/argoexec-baton:argo-controller
EXAMPLES_STEP_IMAGE=localhost/argo-examples-step:argo-controller
ARGOSAY_IMAGE=localhost/argo-examples-argosay:argo-controller
START_S=$(date +%s)

# ---------------------------------------------------------------------------------------------------
# The examples: path under the module's examples/, the phase it is meant to end in, a line its pods
# must print (- for none). Every one runs with the service account default and Argo's executor Role.

EXAMPLES_TSV='suspend-template.yaml	Succeeded	hello world
exit-handler-step-level.yaml	Succeeded	step cleanup
exit-handler-dag-level.yaml	Succeeded	task cleanup
continue-on-fail.yaml	Succeeded	intentional failure
loops-arbitrary-sequential-steps.yaml	Failed	will fail and stop here
dag-disable-failFast.yaml	Failed	haha
dag-continue-on-fail.yaml	Failed	intentional failure
exit-handlers.yaml	Failed	boohoo!
hello-world.yaml	Succeeded	hello world
steps.yaml	Succeeded	hello2b
dag-diamond.yaml	Succeeded	D
dag-diamond-steps.yaml	Succeeded	D
dag-multiroot.yaml	Succeeded	-
dag-targets.yaml	Succeeded	-
dag-enhanced-depends.yaml	Succeeded	-
status-reference.yaml	Succeeded	the flakey container failed
exit-code-output-variable.yaml	Succeeded	Exit code was: 123
arguments-parameters.yaml	Succeeded	hello world
global-parameters.yaml	Succeeded	-
output-parameter.yaml	Succeeded	hello world
parameter-aggregation.yaml	Succeeded	-
parameter-aggregation-dag.yaml	Succeeded	-
conditionals.yaml	Succeeded	hello
loops.yaml	Succeeded	goodbye world
loops-dag.yaml	Succeeded	-
loops-sequence.yaml	Succeeded	-
scripts-bash.yaml	Succeeded	result was:
expression-destructure-json.yaml	Succeeded	-
expression-destructure-json-complex.yaml	Succeeded	-
expression-reusing-verbose-snippets.yaml	Succeeded	-
expression-tag-template-workflow.yaml	Succeeded	-
step-level-timeout.yaml	Failed	-
dag-task-level-timeout.yaml	Failed	-
timeouts-workflow.yaml	Failed	-
pod-spec-patch.yaml	Succeeded	hello world
pod-spec-patch-wf-tmpl.yaml	Succeeded	hello world
pod-spec-yaml-patch.yaml	Succeeded	hello world
pod-metadata.yaml	Succeeded	-
init-container.yaml	Succeeded	bye
default-pdb-support.yaml	Succeeded	-
template-on-exit.yaml	Succeeded	goodbye world
title-and-description-with-markdown.yaml	Succeeded	hello world
steps-inline-workflow.yaml	Succeeded	hello argo
dag-inline-workflow.yaml	Succeeded	hello argo
label-value-from-workflow.yaml	Succeeded	hello argo
synchronization-mutex-wf-level.yaml	Succeeded	hello world
memoize-simple.yaml	Succeeded	-
container-set-template/sequence-workflow.yaml	Succeeded	hello argo
container-set-template/parallel-workflow.yaml	Succeeded	hello argo
container-set-template/graph-workflow.yaml	Succeeded	hello argo
dns-config.yaml	Succeeded	hello world
image-pull-secrets.yaml	Succeeded	hello world
node-selector.yaml	Succeeded	Linux
secrets.yaml	Succeeded	secret from file: S00perS3cretPa55word
dag-custom-metrics.yaml	Succeeded	console output-->TEST-ONE-A
pod-metadata-wf-field.yaml	Succeeded	hello1
arguments-parameters-from-configmap.yaml	Succeeded	hello world
global-parameters-from-configmap.yaml	Succeeded	hello world
global-parameters-from-configmap-referenced-as-local-variable.yaml	Succeeded	hello world
workflow-template/hello-world.yaml	Succeeded	hello world
workflow-template/steps.yaml	Succeeded	inner-hello2b
workflow-template/dag.yaml	Succeeded	inner-D
workflow-template/workflow-template-ref.yaml	Succeeded	hello world
workflow-template/workflow-template-ref-with-entrypoint-arg-passing.yaml	Succeeded	hello world
parallelism-limit.yaml	Succeeded	-
parallelism-template-limit.yaml	Succeeded	-
dag-nested.yaml	Succeeded	-
own/containerset-fail.yaml	Failed	c runs
own/look-inside.yaml	Succeeded	looked at'

# Skipped, of the Workflows that need no artifact repository, database, network or external service,
# and why (docs/argo.md counts the others).
SKIPPED_TSV='retry-container.yaml	python (python:alpine3.23): the busybox step image has none
retry-with-steps.yaml	python (python:alpine3.23): the busybox step image has none
container-set-template/outputs-result-workflow.yaml	python (python:alpine3.23): the busybox step image has none
timeouts-step.yaml	bash: the busybox step image has none
volumes-emptydir.yaml	[[ ]]: the ash of Debian'"'"'s busybox lacks it (the example prints "Not found" and succeeds)
container-set-template/workspace-workflow.yaml	an output artifact: needs an artifact repository
sidecar.yaml	apk and curl from the network, and an influxdb sidecar
intermediate-parameters.yaml	resumed with a value for a supplied output (argo node set), which this script does not do
suspend-template-outputs.yaml	resumed with a value for a supplied output (argo node set), which this script does not do
gc-ttl.yaml	deletes the Workflow 5 s after its end: nothing left to check
pod-gc-strategy.yaml	deletes the pods at their end: no log left to check
pod-spec-from-previous-step.yaml	asks for 10Gi and 2 CPUs: more than this shared node gives
synchronization-wf-level.yaml	needs the ConfigMap my-config, which examples/ does not have
workflow-template/retry-with-steps.yaml	python (python:alpine3.23): the busybox step image has none'

# ---------------------------------------------------------------------------------------------------
# The cluster (as e2e/cluster.sh finds or brings it up)

E2E_WORK=$(mktemp -d "${TMPDIR:-/tmp}/baton-argo-controller.XXXXXX")
NS=""
CREATED_CRDS=()

# The Workflow whose running main container is looked into (it runs until the look is done), and the
# background processes that look.
LOOK_INSIDE=own/look-inside.yaml
LOOKERS=()

finish() {
  local pid
  for pid in "${LOOKERS[@]}"; do kill "$pid" 2>/dev/null; done
  stop_controller
  if [ "${E2E_KEEP:-0}" != 1 ]; then
    [ -z "$NS" ] || kubectl delete namespace "$NS" --wait=false >/dev/null 2>&1
    [ ${#CREATED_CRDS[@]} = 0 ] || kubectl delete crd "${CREATED_CRDS[@]}" --wait=false >/dev/null 2>&1
  else
    say "E2E_KEEP=1: namespace $NS and CRDs ${CREATED_CRDS[*]:-(none created)} kept"
  fi
  cluster_detach
  if [ "$FAILED" -eq 0 ] && [ "${E2E_KEEP:-0}" != 1 ]; then rm -rf "$E2E_WORK"; else say "artifacts (the controller's log, Workflows, pods, logs) in $E2E_WORK"; fi
}
trap finish EXIT
trap 'exit 130' INT TERM

ensure_tools
# The test cluster (e2e/cluster/attach.sh): KUBECONFIG's, or e2e/cluster/up's brought up here.
cluster_attach

# ---------------------------------------------------------------------------------------------------
# Upstream's binaries, the Go module's copy, the images

ensure_baton_binary
command -v go >/dev/null 2>&1 || die "no 'go' on PATH: install Go 1.26 or newer (upstream's controller and argoexec are built from their Go module)"
CONTROLLER=$("$E2E_DIR/upstream/build-workflow-controller" | tail -n 1) || die "e2e/upstream/build-workflow-controller failed"
ARGOEXEC=$("$E2E_DIR/upstream/build-argoexec" | tail -n 1) || die "e2e/upstream/build-argoexec failed"
{ [ -x "$CONTROLLER" ] && [ -x "$ARGOEXEC" ]; } || die "the builds printed $CONTROLLER and $ARGOEXEC, not executables"
MODULE=$(cd "$E2E_DIR/upstream/argo" && go mod download -json github.com/argoproj/argo-workflows/v4 | jq -r .Dir)
{ [ -d "$MODULE/examples" ] && [ -d "$MODULE/manifests" ]; } || die "the Go module's copy ($MODULE) has no examples/ or manifests/"
say "upstream: $("$CONTROLLER" version 2>/dev/null | head -n 1), argoexec $("$ARGOEXEC" version --short 2>/dev/null | head -n 1); the module's copy: $MODULE"

old_ids=()
images=("$STEP_IMAGE" "$EXAMPLES_STEP_IMAGE" "$ARGOSAY_IMAGE" "$UPSTREAM_IMAGE" "$BATON_EXEC_IMAGE")
for image in "${images[@]}"; do old_ids+=("$(podman image inspect "$image" --format '{{.Id}}' 2>/dev/null)"); done
build_step_image
ctx=$(mktemp -d)
cp "$MODULE/test/e2e/images/argosay/v2/argosay" "$ctx/argosay" || die "the module has no test/e2e/images/argosay/v2/argosay"
chmod 0755 "$ctx/argosay"
printf '#!/bin/sh\n# cowsay without the cow (e2e/argo/examples.Containerfile)\necho "$*"\n' > "$ctx/cowsay"
chmod 0755 "$ctx/cowsay"
for target in step argosay; do
  image=$EXAMPLES_STEP_IMAGE target_arg=(--target step)
  [ "$target" = argosay ] && image=$ARGOSAY_IMAGE target_arg=()
  podman build -q --build-arg "STEP_IMAGE=$STEP_IMAGE" "${target_arg[@]}" -f "$E2E_DIR/argo/examples.Containerfile" \
    -t "$image" "$ctx" >/dev/null || die "podman build of $image failed"
done
rm -rf "$ctx"
ctx=$(mktemp -d)
cp "$ARGOEXEC" "$ctx/argoexec"
cp "$E2E_DIR/upstream/kubeconfig" "$ctx/kubeconfig"
podman build -q --layers=false --target cluster -f "$E2E_DIR/upstream/argoexec.Containerfile" -t "$UPSTREAM_IMAGE" "$ctx" >/dev/null \
  || die "podman build of $UPSTREAM_IMAGE failed"
rm -rf "$ctx"
build_argo_executor_image "$UPSTREAM_IMAGE" "$BATON_EXEC_IMAGE"
for i in "${!images[@]}"; do forget_image "${old_ids[$i]}" "${images[$i]}"; done
IMG_STEP=$(push_image "$EXAMPLES_STEP_IMAGE" argo-examples-step) || die "podman push of $EXAMPLES_STEP_IMAGE failed"
IMG_ARGOSAY=$(push_image "$ARGOSAY_IMAGE" argo-examples-argosay) || die "podman push of $ARGOSAY_IMAGE failed"
IMG_UPSTREAM=$(push_image "$UPSTREAM_IMAGE" argoexec-upstream) || die "podman push of $UPSTREAM_IMAGE failed"
IMG_BATON=$(push_image "$BATON_EXEC_IMAGE" argoexec-baton) || die "podman push of $BATON_EXEC_IMAGE failed"
say "pushed $IMG_STEP, $IMG_UPSTREAM, $IMG_BATON, $IMG_ARGOSAY"

# retagged FILE: the documents of examples/FILE as JSON, one a line, each image the examples name
# retagged to the registry's.
retagged() {
  local path=${1%%#*} file
  file="$MODULE/examples/$path"
  # own/NAME: the project's own Workflows in e2e/argo/workflows/ (the side by side's, the figure's);
  # PATH#TAG: the same Workflow again, as another example (the figure's rounds).
  [ "${path#own/}" = "$path" ] || file="$E2E_DIR/argo/workflows/${path#own/}"
  yaml_to_json "$file" | jq -c --arg step "$IMG_STEP" --arg argosay "$IMG_ARGOSAY" '
    walk(if type == "object" and (.image | type) == "string" then
           .image |= (if test("^(busybox|alpine|debian|ubuntu)(:.*)?$") then $step
                      elif test("^argoproj/argosay:v[12]$") then $argosay else . end)
         else . end)'
}

# workflow_json PATH: the example, retagged, annotated with its path.
workflow_json() {
  retagged "$1" | jq -c --arg ex "$1" '.metadata.annotations["baton.dev/example"] = $ex'
}

# ---------------------------------------------------------------------------------------------------
# Argo: the CRDs, a namespace, the executor's Role, the controller's configmap, the controller

NS="baton-argo-$(date +%s)"
kubectl create namespace "$NS" >/dev/null || die "cannot create namespace $NS"
kubectl -n "$NS" wait --for=jsonpath='{.metadata.name}'=default serviceaccount/default --timeout=60s >/dev/null 2>&1 \
  || die "namespace $NS got no default service account within 60 s"

CRD_DIR="$MODULE/manifests/base/crds/full"
CRD_FILES=()
for f in "$CRD_DIR"/argoproj.io_*.yaml; do
  CRD_FILES+=(-f "$f")
  crd=$(basename "$f" .yaml)
  crd="${crd#argoproj.io_}.argoproj.io"
  kubectl get crd "$crd" >/dev/null 2>&1 || CREATED_CRDS+=("$crd")
done
# Server-side: the full CRDs are too large for the last-applied annotation (their README says so).
kubectl apply --server-side --force-conflicts "${CRD_FILES[@]}" >/dev/null 2>"$E2E_WORK/crds.err" \
  || die "Argo's CRDs do not apply: $(cat "$E2E_WORK/crds.err")"
kubectl wait --for=condition=Established --timeout=60s "${CRD_FILES[@]}" >/dev/null 2>&1 || die "Argo's CRDs not established within 60 s"
# The executor's Role (workflowtaskresults create and patch) bound to the service account default.
kubectl -n "$NS" apply -f "$MODULE/manifests/quick-start/base/executor/emissary/executor-role.yaml" \
  -f "$MODULE/manifests/quick-start/base/executor-default-rolebinding.yaml" >/dev/null \
  || die "the executor Role does not apply"
# What the examples expect to find: examples/configmaps/ and the WorkflowTemplates of
# examples/workflow-template/templates.yaml, retagged (as upstream's test of its examples applies them),
# and the Secret the comment of examples/secrets.yaml creates.
kubectl -n "$NS" apply -f "$MODULE/examples/configmaps" >/dev/null || die "examples/configmaps/ does not apply"
retagged workflow-template/templates.yaml | jq -s '{apiVersion: "v1", kind: "List", items: .}' \
  | kubectl -n "$NS" apply -f - >/dev/null || die "the WorkflowTemplates of examples/workflow-template/templates.yaml do not apply"
kubectl -n "$NS" create secret generic my-secret --from-literal=mypassword=S00perS3cretPa55word >/dev/null \
  || die "the Secret my-secret of examples/secrets.yaml was not created"
# The controller's configmap: no metrics or telemetry servers (they would listen on every interface of
# this shared machine; the controller's own :6060 healthz cannot be moved). e2e/cluster/up's cluster
# runs no kube-proxy, so no Service ClusterIP answers: the executor's containers (`wait` reports the
# outputs to the API server) are given the API server's own address, as e2e/cluster/deploy.sh gives it
# to the watcher. (Each value ends with a newline: the controller reads a one-line value as a scalar.)
executor=""
if [ "$LOCAL_CLUSTER" = 1 ]; then
  executor=$(printf 'env:\n- name: KUBERNETES_SERVICE_HOST\n  value: "%s"\n- name: KUBERNETES_SERVICE_PORT\n  value: "%s"\n' "$NODE_IP" "$API_PORT")
fi
jq -n --arg ns "$NS" --arg executor "$executor" '{apiVersion: "v1", kind: "ConfigMap",
  metadata: {name: "workflow-controller-configmap", namespace: $ns},
  data: ({metricsConfig: "enabled: false\n", telemetryConfig: "enabled: false\n"}
         + (if $executor == "" then {} else {executor: $executor} end))}' > "$E2E_WORK/configmap.json"
kubectl -n "$NS" create -f "$E2E_WORK/configmap.json" >/dev/null || die "the controller's configmap was not created"
say "Kubernetes $(kubectl version -o json | jq -r .serverVersion.gitVersion), namespace $NS, CRDs from $CRD_DIR (created: ${CREATED_CRDS[*]:-none})"

# start_controller IMAGE: upstream's controller as a host process, for $NS only, with IMAGE as the
# executor image; its log in $E2E_WORK/controller-N.log.
CONTROLLER_RUNS=0
start_controller() {
  CONTROLLER_RUNS=$((CONTROLLER_RUNS + 1))
  CONTROLLER_LOG="$E2E_WORK/controller-$CONTROLLER_RUNS.log"
  LEADER_ELECTION_DISABLE=true "$CONTROLLER" --kubeconfig "$KUBECONFIG" --namespace "$NS" --namespaced \
    --managed-namespace "$NS" --executor-image "$1" --executor-image-pull-policy IfNotPresent \
    --loglevel info > "$CONTROLLER_LOG" 2>&1 &
  CONTROLLER_PID=$!
  local i
  for i in $(seq 300); do
    # Logged once its informers' caches have synced.
    grep -q 'msg="Starting CronWorkflow controller"' "$CONTROLLER_LOG" 2>/dev/null && return 0
    kill -0 "$CONTROLLER_PID" 2>/dev/null || { tail -n 20 "$CONTROLLER_LOG" >&2; die "the workflow-controller exited (log: $CONTROLLER_LOG)"; }
    sleep 0.1
  done
  tail -n 20 "$CONTROLLER_LOG" >&2
  die "the workflow-controller did not start within 30 s (log: $CONTROLLER_LOG)"
}

# ---------------------------------------------------------------------------------------------------
# Submitting an example, following it to its end, checking it

# submit PATH: creates the Workflow; prints its name.
submit() {
  workflow_json "$1" > "$E2E_WORK/submitted-${1//\//_}.json"
  kubectl -n "$NS" create -f "$E2E_WORK/submitted-${1//\//_}.json" -o jsonpath='{.metadata.name}' 2>"$E2E_WORK/submit.err"
}

# resume WORKFLOW: `argo resume`, as workflow/util's ResumeWorkflow does it: every running Suspend node
# of a template without a duration marked Succeeded.
resume() {
  local wf=$1 i json
  for i in 1 2 3 4 5; do
    json=$(kubectl -n "$NS" get workflow "$wf" -o json) || return 1
    json=$(jq -c --arg now "$(date -u +%Y-%m-%dT%H:%M:%SZ)" '
      ([(.spec.templates // [])[] | select(.suspend != null and .suspend.duration == null) | .name]) as $manual
      | .status.nodes |= with_entries(if .value.type == "Suspend" and .value.phase == "Running"
                                          and ((.value.templateName // "") | IN($manual[]))
          then .value.phase = "Succeeded" | .value.message = "Resumed by e2e/argo-controller.sh" | .value.finishedAt = $now
          else . end)' <<<"$json")
    kubectl -n "$NS" replace -f - <<<"$json" >/dev/null 2>&1 && return 0
  done
  return 1
}

EXPECT_SHA=$(sha256sum < "$BATON_BIN" | cut -c1-64)
[ "$ARGO_EXECUTOR" = upstream ] && EXPECT_SHA=$(sha256sum < "$ARGOEXEC" | cut -c1-64)

not() { ! "$@"; }

# look_inside WORKFLOW FILE: in the background, from the Workflow's submission on: once its main
# container runs, what `kubectl exec` finds in it: the sha256 of /var/run/argo/argoexec, then the
# entries of ctr/main/, one line each, into FILE; then /tmp/seen in it, which ends it
# (e2e/argo/workflows/look-inside.yaml).
look_inside() {
  local wf=$1 file=$2 pod sha entries deadline=$(( $(date +%s) + WF_TIMEOUT ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    pod=$(kubectl -n "$NS" get pods -l "workflows.argoproj.io/workflow=$wf" -o json 2>/dev/null \
      | jq -r '.items[] | select(any(.status.containerStatuses[]?; .name == "main" and .state.running != null)) | .metadata.name' | head -n 1)
    # An exec may fail on a busy node, or while the container is still starting: tried again.
    if [ -n "$pod" ] && sha=$(kubectl -n "$NS" exec "$pod" -c main -- sha256sum /var/run/argo/argoexec 2>/dev/null) \
      && entries=$(kubectl -n "$NS" exec "$pod" -c main -- ls /var/run/argo/ctr/main 2>/dev/null); then
      printf '%s\n%s\n' "${sha:0:64}" "$(tr '\n' ' ' <<<"$entries")" > "$file.tmp"
      mv "$file.tmp" "$file"
      until kubectl -n "$NS" exec "$pod" -c main -- touch /tmp/seen 2>/dev/null; do
        [ "$(date +%s)" -lt "$deadline" ] || return 1
        sleep 0.5
      done
      return 0
    fi
    sleep 0.5
  done
}

# inside_checks EXAMPLE FILE: /var/run/argo/argoexec in the running main container is baton (or
# upstream's under ARGO_EXECUTOR=upstream), and ctr/main/ holds baton's beacon (or not).
inside_checks() {
  local ex=$1 sha entries
  if [ ! -s "$2" ]; then
    fail "$ex: its main container was never seen running (nothing was looked at inside it)"
    return
  fi
  { read -r sha; read -r entries; } < "$2"
  check "$ex: while main runs, /var/run/argo/argoexec in it is $ARGO_EXECUTOR's binary (sha256 ${sha:0:16})" test "$sha" = "$EXPECT_SHA"
  if [ "$ARGO_EXECUTOR" = baton ]; then
    check "$ex: while main runs, its emissary holds baton's beacon ctr/main/baton.alive (ctr/main/: $entries)" matches "$entries" 'baton\.alive'
  else
    check "$ex: while main runs, ctr/main/ holds no baton.alive (ctr/main/: $entries)" not matches "$entries" 'baton\.alive'
  fi
}

# collect EXAMPLE WORKFLOW: its Workflow and pods as JSON, and the logs of every container the
# emissary wraps (its command `/var/run/argo/argoexec emissary … -- …`: main, container-set members,
# sidecars; not init, wait or a template's own init containers) that started, into $E2E_WORK/EXAMPLE/.
collect_workflow() {
  local dir="$E2E_WORK/$OUT_PREFIX${1//\//_}" pod c
  mkdir -p "$dir/logs"
  kubectl -n "$NS" get workflow "$2" -o json > "$dir/workflow.json" 2>/dev/null
  kubectl -n "$NS" get pods -l "workflows.argoproj.io/workflow=$2" -o json > "$dir/pods.json" 2>/dev/null
  jq -r '.items[] | .metadata.name as $p
    | [(.spec.initContainers // [])[], .spec.containers[] | select(.command[1]? == "emissary") | .name] as $wrapped
    | [.status.initContainerStatuses[]?, .status.containerStatuses[]?] | .[] | select(.name | IN($wrapped[]))
    | select(.state.terminated.startedAt != null or .state.running != null or .lastState.terminated != null)
    | "\($p) \(.name)"' "$dir/pods.json" > "$dir/wrapped.txt"
  while read -r pod c; do
    kubectl -n "$NS" logs "$pod" -c "$c" > "$dir/logs/$pod.$c.log" 2>&1
  done < "$dir/wrapped.txt"
}

# check_workflow EXAMPLE WORKFLOW PHASE EXPECTED TEXT
check_workflow() {
  local ex=$1 wf=$2 phase=$3 want=$4 text=$5 dir="$E2E_WORK/$OUT_PREFIX${1//\//_}" msg inits n upstream_lines
  msg=$(jq -r '.status.message // ""' "$dir/workflow.json")
  check "$ex: $wf ended $phase (meant to: $want)${msg:+; message: $msg}" test "$phase" = "$want"
  RESULT[$ex]=$phase
  if [ "$text" != - ]; then
    check "$ex: its pods printed \"$text\"" grep -qF -- "$text" "$dir"/logs/*.log
  fi
  inits=$(jq -r --arg img "$EXEC_IMAGE" '[.items[] | .spec.initContainers[]? | select(.name == "init") | .image]
    | "\(length) \(map(select(. != $img)) | length)"' "$dir/pods.json")
  n=$(wc -l < "$dir/wrapped.txt")
  upstream_lines=$(cat /dev/null "$dir"/logs/*.log 2>/dev/null | grep -cE '^time=[^ ]+ level=[A-Za-z]+ msg=')
  if [ "$want" != Succeeded ] && { [ "$n" = 0 ] || { [ "$ARGO_EXECUTOR" = upstream ] && [ "$upstream_lines" = 0 ]; }; }; then
    # A deadline may end the pods before any container starts, or a container as it starts, before
    # upstream's emissary logs a line (timeouts-*, on a busy node).
    skip "$ex: no wrapped container ran long enough in its ${inits%% *} pod(s) to tell whose emissary it was"
  elif [ "$ARGO_EXECUTOR" = baton ]; then
    check "$ex: baton was the emissary: ${inits%% *} pod(s), each with init from the swapped image; $n wrapped container log(s), none with a line of upstream's emissary" \
      all_ok test "${inits#* }" = 0 -- test "${inits%% *}" -gt 0 -- test "$n" -gt 0 -- test "$upstream_lines" = 0
  else
    check "$ex: upstream's emissary ran: ${inits%% *} pod(s) with init from upstream's image; $upstream_lines of its log lines in $n wrapped container log(s)" \
      all_ok test "${inits#* }" = 0 -- test "${inits%% *}" -gt 0 -- test "$n" -gt 0 -- test "$upstream_lines" -gt 0
  fi
}

# run_examples TSV: every example of TSV (path, phase, text), PARALLEL Workflows at once.
declare -A RESULT
run_examples() {
  local -a queue=() running=()
  local -A wf_of since want_of text_of phase_of
  local ex want text wf json phase now i ended name susp shown=""
  while IFS=$'\t' read -r ex want text; do
    [ -n "$ex" ] || continue
    queue+=("$ex"); want_of[$ex]=$want; text_of[$ex]=$text
  done <<<"$1"
  while [ ${#queue[@]} -gt 0 ] || [ ${#running[@]} -gt 0 ]; do
    while { [ "$PARALLEL" = 0 ] || [ ${#running[@]} -lt "$PARALLEL" ]; } && [ ${#queue[@]} -gt 0 ]; do
      ex=${queue[0]}
      queue=("${queue[@]:1}")
      if ! wf=$(submit "$ex"); then
        fail "$ex: kubectl create of the Workflow: $(cat "$E2E_WORK/submit.err")"
        RESULT[$ex]=unsubmitted
        continue
      fi
      wf_of[$ex]=$wf; since[$ex]=$(date +%s); running+=("$ex")
      if [ "$ex" = "$LOOK_INSIDE" ]; then
        look_inside "$wf" "$E2E_WORK/$OUT_PREFIX${ex//\//_}.inside" &
        LOOKERS+=($!)
      fi
    done
    [ "${#running[@]}" = "$shown" ] || say "${#running[@]} Workflow(s) not ended yet, $(( $(date +%s) - START_S )) s in"
    shown=${#running[@]}
    sleep 2
    json=$(kubectl -n "$NS" get workflows -o json 2>/dev/null) || continue
    now=$(date +%s)
    phase_of=()
    while read -r name phase susp; do
      phase_of[$name]=$phase
      if [ "$susp" = true ]; then
        if resume "$name"; then say "resumed $name"; else say "resuming $name failed"; fi
      fi
    done < <(jq -r '.items[] | ([(.spec.templates // [])[] | select(.suspend != null and .suspend.duration == null) | .name]) as $manual
      | "\(.metadata.name) \(.status.phase // "Pending") \([.status.nodes // {} | .[]
          | select(.type == "Suspend" and .phase == "Running" and ((.templateName // "") | IN($manual[])))] | length > 0)"' <<<"$json")
    ended=()
    for ex in "${running[@]}"; do
      wf=${wf_of[$ex]}
      phase=${phase_of[$wf]:-Pending}
      case $phase in
        Succeeded | Failed | Error) ;;
        *) [ $((now - since[$ex])) -lt "$WF_TIMEOUT" ] && continue
           phase="$phase (still, after ${WF_TIMEOUT}s)" ;;
      esac
      ended+=("$ex")
      collect_workflow "$ex" "$wf"
      check_workflow "$ex" "$wf" "$phase" "${want_of[$ex]}" "${text_of[$ex]}"
      [ "$ex" != "$LOOK_INSIDE" ] || inside_checks "$ex" "$E2E_WORK/$OUT_PREFIX${ex//\//_}.inside"
    done
    for ex in "${ended[@]}"; do
      for i in "${!running[@]}"; do [ "${running[$i]}" = "$ex" ] && unset 'running[i]'; done
      running=("${running[@]}")
    done
  done
}

# ---------------------------------------------------------------------------------------------------
# The run

WANT=("$@")
LIST=""
while IFS=$'\t' read -r ex want text; do
  if [ ${#WANT[@]} -eq 0 ] || [[ " ${WANT[*]} " == *" $ex "* ]] || [[ " ${WANT[*]} " == *" ${ex%.yaml} "* ]]; then
    LIST+="$ex	$want	$text"$'\n'
  fi
done <<<"$EXAMPLES_TSV"
[ -n "$LIST" ] || die "no example of that name; see EXAMPLES_TSV in $0"
if [ ${#WANT[@]} -eq 0 ]; then
  while IFS=$'\t' read -r ex why; do skip "$ex: $why"; done <<<"$SKIPPED_TSV"
fi

OUT_PREFIX=""
STARTED_AS=$ARGO_EXECUTOR
EXEC_IMAGE=$IMG_BATON
[ "$ARGO_EXECUTOR" = upstream ] && EXEC_IMAGE=$IMG_UPSTREAM
start_controller "$EXEC_IMAGE"
say "workflow-controller (pid $CONTROLLER_PID) with --executor-image $EXEC_IMAGE; log $CONTROLLER_LOG"
run_examples "$LIST"
# The figure's rounds under baton, alone on the cluster (the side by side below runs upstream's).
if [ "$STARTED_AS" = baton ] && [ "${SIDE_BY_SIDE_RUN:-1}" = 1 ]; then
  figure_rounds baton
fi

# Every example that failed under baton, once more under upstream's executor image.
RERUN=""
if [ "$ARGO_EXECUTOR" = baton ]; then
  while IFS=$'\t' read -r ex want text; do
    [ -n "$ex" ] && [ "${RESULT[$ex]:-}" != "$want" ] && [ "${RESULT[$ex]:-}" != unsubmitted ] && RERUN+="$ex	$want	$text"$'\n'
  done <<<"$LIST"
fi
NOTES=()
if [ -n "$RERUN" ]; then
  stop_controller
  EXEC_IMAGE=$IMG_UPSTREAM
  start_controller "$EXEC_IMAGE"
  say "again under upstream's executor image: $(cut -f1 <<<"$RERUN" | tr '\n' ' ')"
  OUT_PREFIX=upstream-
  ARGO_EXECUTOR=upstream
  EXPECT_SHA=$(sha256sum < "$ARGOEXEC" | cut -c1-64)
  declare -A BATON_RESULT
  while IFS=$'\t' read -r ex want text; do [ -n "$ex" ] && BATON_RESULT[$ex]=${RESULT[$ex]}; done <<<"$RERUN"
  # In a subshell: the re-run's checks are not counted, they tell what the failures above were.
  run_examples "$RERUN" | sed 's/^\(PASS\|FAIL\)  /  upstream: \1  /'
  while IFS=$'\t' read -r ex want text; do
    [ -n "$ex" ] || continue
    phase=$(jq -r '.status.phase // "?"' "$E2E_WORK/upstream-${ex//\//_}/workflow.json" 2>/dev/null)
    if [ "$phase" = "$want" ]; then
      NOTES+=("$ex: baton ${BATON_RESULT[$ex]}, upstream's executor $phase as meant: a baton bug")
    else
      NOTES+=("$ex: baton ${BATON_RESULT[$ex]}, upstream's executor $phase, not $want either: the environment (or the expectation), not baton")
    fi
  done <<<"$RERUN"
fi

# The side by side with upstream's executor, and the figure (SIDE_BY_SIDE_RUN=0 leaves them out).
if [ "$STARTED_AS" = baton ] && [ "${SIDE_BY_SIDE_RUN:-1}" = 1 ]; then
  side_by_side "$LIST"
fi

echo
for note in "${NOTES[@]}"; do echo "NOTE  $note"; done
say "took $(( $(date +%s) - START_S )) s"
echo "$SKIPPED skipped"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
