#!/usr/bin/env bash
# e2e/tekton-controller.sh: Tekton's own controller on the real cluster, with its entrypoint image
# swapped for baton-tekton, running Tekton's own example TaskRuns.
#
# Upstream Tekton Pipelines' controller v1.15.0 (github.com/tektoncd/pipeline/cmd/controller, built from
# its Go module by e2e/upstream/build-tekton-entrypoint controller, cached in ~/.cache/baton-upstream)
# runs here as a host process (-kubeconfig, -disable-ha, SYSTEM_NAMESPACE a namespace of its own holding
# the config maps of the module's config/) with -entrypoint-image baton-tekton (tekton.Containerfile)
# pushed to the cluster's registry. Its other images are built here: -workingdirinit-image and
# -nop-image from upstream's own commands (e2e/upstream/tekton/entrypoint.Containerfile), -shell-image
# the busybox step image. No webhook runs (it needs knative's certificates and a Service the cluster
# cannot route to): the TaskRuns are created as the examples write them and the reconciler defaults them
# itself. Tekton's CRDs (config/300-crds) and the TaskRuns (examples/v1/taskruns/) are read from the Go
# module at test time; each example's busybox, alpine, ubuntu and bash images are retagged to the step
# image (e2e/upstream/tekton/examples.Containerfile: busybox with a /tmp, CMD ["sh"] and busybox's ash
# as /bin/bash; the node has no internet).
# The examples run, and those skipped with the reason, are in EXAMPLES_TSV and SKIPPED_TSV below.
#
# Each example runs in a namespace of its own (as upstream's test of its examples does: some share the
# names of their Secrets and StepActions), and must end with the condition Succeeded True, with every
# pod's init container `prepare` from the swapped entrypoint image. An example that fails under baton
# is then run once more with upstream's entrypoint image: a NOTE line tells a baton bug (upstream
# passes) from the environment (it fails too).
#
# Usage: e2e/tekton-controller.sh [EXAMPLE...]     (default: every example of EXAMPLES_TSV)
#   With KUBECONFIG, on that cluster, pushing to BATON_REGISTRY (the cluster of e2e/cluster/up); without,
#   e2e/cluster/up's cluster is brought up and taken down at the end (CLUSTER_KEEP=1 keeps it).
#   TEKTON_ENTRYPOINT=upstream   every example under upstream's entrypoint image (the baseline)
#   PARALLEL=N                   TaskRuns running at once (default 4); TR_TIMEOUT seconds each (default 300)
#   E2E_KEEP=1                   keep the namespaces, the CRDs and the work folder (the controller's log)
# Ends with one line `N passed, M failed`; exits 1 when a check failed.
set -uo pipefail

E2E_NAME=tekton-controller
STEP_IMAGE=${STEP_IMAGE:-localhost/busybox-step:tekton-controller}
# shellcheck source=e2e/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
# shellcheck source=e2e/checks.sh
source "$E2E_DIR/checks.sh"
# shellcheck source=e2e/cluster/attach.sh
source "$E2E_DIR/cluster/attach.sh"
# shellcheck source=e2e/cluster/frameworks.sh
source "$E2E_DIR/cluster/frameworks.sh"

TEKTON_ENTRYPOINT=${TEKTON_ENTRYPOINT:-baton}
case $TEKTON_ENTRYPOINT in baton | upstream) ;; *) die "TEKTON_ENTRYPOINT=$TEKTON_ENTRYPOINT: baton or upstream" ;; esac
PARALLEL=${PARALLEL:-4}
TR_TIMEOUT=${TR_TIMEOUT:-300}
BATON_TEKTON_IMAGE=localhost/baton-tekton:tekton-controller
UPSTREAM_IMAGE=localhost/tekton-entrypoint:tekton-controller
WORKINGDIRINIT_IMAGE=localhost/tekton-workingdirinit:tekton-controller
NOP_IMAGE=localhost/tekton-nop:tekton-controller
EXAMPLES_STEP_IMAGE=localhost/tekton-examples-step:tekton-controller
START_S=$(date +%s)
RUN_ID="tkctl-$START_S"

# ---------------------------------------------------------------------------------------------------
# The examples: path under the module's examples/v1/taskruns/. Each must end Succeeded.

EXAMPLES_TSV='steps-run-in-order.yaml
unnamed-steps.yaml
custom-env.yaml
custom-volume.yaml
default_task_params.yaml
home-is-set.yaml
home-volume.yaml
ignore-step-error.yaml
optional-workspaces.yaml
propagating_params_implicit.yaml
propagating_workspaces.yaml
readonly-internal-dir.yaml
run-steps-as-non-root.yaml
secret-env-from.yaml
secret-env.yaml
secret-volume-params.yaml
secret-volume.yaml
sidecar-interp.yaml
sidecar-ready-script.yaml
sidecar-ready.yaml
step-by-digest.yaml
stepaction-passing-results.yaml
stepaction-results.yaml
stepaction.yaml
stepactions-steptemplate.yaml
steptemplate-env-merge.yaml
task-result.yaml
task-volume-args.yaml
template-volume.yaml
using_context_variables.yaml
workingdir.yaml
workspace-in-sidecar.yaml
workspace-volume.yaml
5080-entrypoint-init-regression.yaml
object-param-result.yaml
creds-init-only-mounts-provided-credentials.yaml
beta/emit-array-results.yaml
beta/workspace-in-sidecar.yaml
beta/workspace-isolation.yaml'

SKIPPED_TSV='authenticating-git-commands.yaml	alpine/git and a git server over the network
beta/authenticating-git-commands.yaml	alpine/git and a git server over the network
dind-sidecar.yaml	docker:dind, privileged, and the network
step-script.yaml	node, perl and python images
steptemplate-variable-interop.yaml	its image is a parameter, ubuntu, from docker.io
entrypoint-resolution.yaml	the controller looks up a ghcr.io image'"'"'s entrypoint over the network
configmap.yaml	bash syntax ("sh: are: unknown operand"): fails under upstream'"'"'s entrypoint too
stepaction-params.yaml	bash arrays ("unexpected \"(\""): fails under upstream'"'"'s entrypoint too
beta/large-task-result.yaml	its bash script exits 1 under busybox ash: fails under upstream'"'"'s entrypoint too
array-default.yaml	args [echo, …] with no command: the bash image'"'"'s docker-entrypoint.sh runs them, the stand-in'"'"'s CMD sh does not
beta/param_array_indexing.yaml	args [echo, …] with no command (bash'"'"'s docker-entrypoint.sh): fails under upstream'"'"'s entrypoint too
beta/propagated-object-parameters.yaml	args [echo, …] with no command (bash'"'"'s docker-entrypoint.sh): fails under upstream'"'"'s entrypoint too
workspace.yaml	a PersistentVolumeClaim: the cluster has no storage class
workspace-readonly.yaml	a PersistentVolumeClaim: the cluster has no storage class
workspace-with-volumeClaimTemplate.yaml	a PersistentVolumeClaim: the cluster has no storage class
beta/bundles-resolver.yaml	a resolver (OCI bundles) over the network
beta/git-resolver.yaml	a resolver (git) over the network
beta/hub-resolver.yaml	a resolver (Tekton Hub) over the network
beta/stepaction-git-resolver.yaml	a resolver (git) over the network
alpha/	enable-api-fields: alpha (this run keeps the default, beta)
no-ci/	not run by upstream'"'"'s own test either'

# ---------------------------------------------------------------------------------------------------
# The cluster (as e2e/argo-controller.sh finds or brings it up)

E2E_WORK=$(mktemp -d "${TMPDIR:-/tmp}/baton-tekton-controller.XXXXXX")
SYS_NS=""
CREATED_CRDS=()

finish() {
  stop_controller
  if [ "${E2E_KEEP:-0}" != 1 ]; then
    kubectl delete namespace -l "baton.dev/e2e=$RUN_ID" --wait=false >/dev/null 2>&1
    [ ${#CREATED_CRDS[@]} = 0 ] || kubectl delete crd "${CREATED_CRDS[@]}" --wait=false >/dev/null 2>&1
  else
    say "E2E_KEEP=1: namespaces labelled baton.dev/e2e=$RUN_ID and CRDs ${CREATED_CRDS[*]:-(none created)} kept"
  fi
  cluster_detach
  if [ "$FAILED" -eq 0 ] && [ "${E2E_KEEP:-0}" != 1 ]; then rm -rf "$E2E_WORK"; else say "artifacts (the controller's log, TaskRuns, pods, logs) in $E2E_WORK"; fi
}
trap finish EXIT
trap 'exit 130' INT TERM

ensure_tools
# The test cluster (e2e/cluster/attach.sh): KUBECONFIG's, or e2e/cluster/up's brought up here.
cluster_attach

# ---------------------------------------------------------------------------------------------------
# Upstream's binaries, the Go module's copy, the images

command -v go >/dev/null 2>&1 || die "no 'go' on PATH: install Go 1.26 or newer (upstream's controller is built from its Go module)"
declare -A UPSTREAM_BIN
for cmd in controller entrypoint workingdirinit nop; do
  UPSTREAM_BIN[$cmd]=$("$E2E_DIR/upstream/build-tekton-entrypoint" "$cmd" | tail -n 1) || die "e2e/upstream/build-tekton-entrypoint $cmd failed"
  [ -x "${UPSTREAM_BIN[$cmd]}" ] || die "e2e/upstream/build-tekton-entrypoint $cmd printed ${UPSTREAM_BIN[$cmd]}, not an executable"
done
CONTROLLER=${UPSTREAM_BIN[controller]}
MODULE=$(cd "$E2E_DIR/upstream/tekton" && go mod download -json github.com/tektoncd/pipeline | jq -r .Dir)
EXAMPLES_DIR=$MODULE/examples/v1/taskruns
{ [ -d "$EXAMPLES_DIR" ] && [ -d "$MODULE/config/300-crds" ]; } || die "the Go module's copy ($MODULE) has no examples/v1/taskruns/ or config/300-crds/"
say "upstream: Tekton Pipelines $(basename "$(dirname "$CONTROLLER")"); the module's copy: $MODULE"

old_ids=()
images=("$STEP_IMAGE" "$EXAMPLES_STEP_IMAGE" "$BATON_TEKTON_IMAGE" "$UPSTREAM_IMAGE" "$WORKINGDIRINIT_IMAGE" "$NOP_IMAGE")
for image in "${images[@]}"; do old_ids+=("$(podman image inspect "$image" --format '{{.Id}}' 2>/dev/null)"); done
build_step_image
ctx=$(mktemp -d)
printf '#!/bin/sh\n# bash, played by busybox ash (e2e/upstream/tekton/examples.Containerfile)\nexec /bin/sh "$@"\n' > "$ctx/bash"
chmod 0755 "$ctx/bash"
podman build -q --build-arg "STEP_IMAGE=$STEP_IMAGE" -f "$E2E_DIR/upstream/tekton/examples.Containerfile" \
  -t "$EXAMPLES_STEP_IMAGE" "$ctx" >/dev/null || die "podman build of $EXAMPLES_STEP_IMAGE failed"
rm -rf "$ctx"
for target in entrypoint workingdirinit nop; do
  image=$UPSTREAM_IMAGE
  [ "$target" = workingdirinit ] && image=$WORKINGDIRINIT_IMAGE
  [ "$target" = nop ] && image=$NOP_IMAGE
  ctx=$(mktemp -d)
  cp "${UPSTREAM_BIN[$target]}" "$ctx/$target"
  podman build -q --layers=false --target "$target" -f "$E2E_DIR/upstream/tekton/entrypoint.Containerfile" -t "$image" "$ctx" >/dev/null \
    || die "podman build of $image failed"
  rm -rf "$ctx"
done
build_tekton_image "$BATON_TEKTON_IMAGE"
for i in "${!images[@]}"; do forget_image "${old_ids[$i]}" "${images[$i]}"; done
IMG_STEP=$(push_image "$EXAMPLES_STEP_IMAGE" tekton-examples-step) || die "podman push of $EXAMPLES_STEP_IMAGE failed"
IMG_BATON=$(push_image "$BATON_TEKTON_IMAGE" baton-tekton) || die "podman push of $BATON_TEKTON_IMAGE failed"
IMG_UPSTREAM=$(push_image "$UPSTREAM_IMAGE" tekton-entrypoint) || die "podman push of $UPSTREAM_IMAGE failed"
IMG_WORKINGDIRINIT=$(push_image "$WORKINGDIRINIT_IMAGE" tekton-workingdirinit) || die "podman push of $WORKINGDIRINIT_IMAGE failed"
IMG_NOP=$(push_image "$NOP_IMAGE" tekton-nop) || die "podman push of $NOP_IMAGE failed"
say "pushed $IMG_STEP, $IMG_BATON, $IMG_UPSTREAM, $IMG_WORKINGDIRINIT, $IMG_NOP"

# retagged FILE: the documents of examples/v1/taskruns/FILE as JSON, one a line, each image the
# examples name retagged to the registry's.
retagged() {
  yaml_to_json "$EXAMPLES_DIR/$1" | jq -c --arg step "$IMG_STEP" '
    select(. != null)
    | walk(if type == "object" and (.image | type) == "string" then
           .image |= (if test("^(mirror\\.gcr\\.io/(library/)?(busybox|alpine|ubuntu|bash)|cgr\\.dev/chainguard/busybox)([:@].*)?$")
                      then $step else . end)
         else . end)'
}

# ---------------------------------------------------------------------------------------------------
# Tekton: the CRDs, the controller's namespace and config maps, the controller

SYS_NS="baton-tkctl-$START_S"
kubectl create namespace "$SYS_NS" >/dev/null || die "cannot create namespace $SYS_NS"
kubectl label namespace "$SYS_NS" "baton.dev/e2e=$RUN_ID" >/dev/null

CRD_FILES=()
for f in "$MODULE"/config/300-crds/*.yaml; do
  CRD_FILES+=(-f "$f")
  crd=$(yaml_to_json "$f" | jq -r .metadata.name)
  kubectl get crd "$crd" >/dev/null 2>&1 || CREATED_CRDS+=("$crd")
done
kubectl apply --server-side --force-conflicts "${CRD_FILES[@]}" >/dev/null 2>"$E2E_WORK/crds.err" \
  || die "Tekton's CRDs do not apply: $(cat "$E2E_WORK/crds.err")"
kubectl wait --for=condition=Established --timeout=60s "${CRD_FILES[@]}" >/dev/null 2>&1 || die "Tekton's CRDs not established within 60 s"

# The config maps of the module's config/, in the controller's namespace, as written, except that the
# controller serves no metrics (they would listen on every interface of this shared machine).
for f in config-defaults config-events config-feature-flags config-logging config-observability \
         config-registry-cert config-spire config-tracing config-leader-election-controller config-wait-exponential-backoff; do
  yaml_to_json "$MODULE/config/$f.yaml" | jq -c --arg ns "$SYS_NS" '.metadata.namespace = $ns
    | if .metadata.name == "config-observability" then .data["metrics-protocol"] = "none" else . end'
done | jq -s '{apiVersion: "v1", kind: "List", items: .}' > "$E2E_WORK/config.json"
kubectl apply -f "$E2E_WORK/config.json" >/dev/null || die "the config maps of config/ do not apply"
say "Kubernetes $(kubectl version -o json | jq -r .serverVersion.gitVersion), namespace $SYS_NS, CRDs from $MODULE/config/300-crds (created: ${CREATED_CRDS[*]:-none})"

# free_port: a TCP port nothing listens on now (the controller's probes and profiling servers listen
# on every interface and cannot be turned off; their defaults 8080 and 8008 may be taken here).
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 20000))
    ss -Htln "sport = :$p" 2>/dev/null | grep -q . || { echo "$p"; return; }
  done
}

# start_controller IMAGE: upstream's controller as a host process with IMAGE as its entrypoint image;
# its log in $E2E_WORK/controller-N.log.
CONTROLLER_RUNS=0
start_controller() {
  CONTROLLER_RUNS=$((CONTROLLER_RUNS + 1))
  CONTROLLER_LOG="$E2E_WORK/controller-$CONTROLLER_RUNS.log"
  local i t0
  t0=$(date +%s%3N)
  SYSTEM_NAMESPACE=$SYS_NS METRICS_DOMAIN=tekton.dev/pipeline PROBES_PORT=$(free_port) PROFILING_PORT=$(free_port) \
    "$CONTROLLER" -kubeconfig "$KUBECONFIG" -disable-ha \
    -entrypoint-image "$1" -nop-image "$IMG_NOP" -shell-image "$IMG_STEP" -shell-image-win "$IMG_STEP" \
    -workingdirinit-image "$IMG_WORKINGDIRINIT" -sidecarlogresults-image "$IMG_NOP" \
    > "$CONTROLLER_LOG" 2>&1 &
  CONTROLLER_PID=$!
  for i in $(seq 600); do
    # Logged by knative's sharedmain once its informers' caches have synced.
    if grep -q '"Starting controllers..."\|Starting controllers' "$CONTROLLER_LOG" 2>/dev/null; then
      say "controller (pid $CONTROLLER_PID) ready after $(( $(date +%s%3N) - t0 )) ms, -entrypoint-image $1; log $CONTROLLER_LOG"
      return 0
    fi
    kill -0 "$CONTROLLER_PID" 2>/dev/null || { tail -n 20 "$CONTROLLER_LOG" >&2; die "the controller exited (log: $CONTROLLER_LOG)"; }
    sleep 0.1
  done
  tail -n 20 "$CONTROLLER_LOG" >&2
  die "the controller did not start within 60 s (log: $CONTROLLER_LOG)"
}

# ---------------------------------------------------------------------------------------------------
# Submitting an example, following it to its end, checking it

# submit EXAMPLE NS: the namespace NS, the example's other objects in it, then its TaskRun(s).
submit() {
  local ex=$1 ns=$2 out="$E2E_WORK/$OUT_PREFIX${1//\//_}"
  mkdir -p "$out"
  retagged "$ex" | jq -c --arg ex "$ex" 'if .kind == "TaskRun" then .metadata.annotations["baton.dev/example"] = $ex else . end' \
    > "$out/submitted.json"
  { kubectl create namespace "$ns" && kubectl label namespace "$ns" "baton.dev/e2e=$RUN_ID" \
    && kubectl -n "$ns" wait --for=jsonpath='{.metadata.name}'=default serviceaccount/default --timeout=60s; } >/dev/null 2>"$E2E_WORK/submit.err" \
    || return 1
  if jq -s -e 'any(.kind != "TaskRun")' "$out/submitted.json" >/dev/null; then
    jq -c 'select(.kind != "TaskRun")' "$out/submitted.json" | jq -s '{apiVersion: "v1", kind: "List", items: .}' \
      | kubectl -n "$ns" create -f - >/dev/null 2>"$E2E_WORK/submit.err" || return 1
  fi
  jq -c 'select(.kind == "TaskRun")' "$out/submitted.json" | jq -s '{apiVersion: "v1", kind: "List", items: .}' \
    | kubectl -n "$ns" create -f - >/dev/null 2>"$E2E_WORK/submit.err"
}

# collect EXAMPLE NS: its TaskRuns and pods as JSON and every container's log, into $E2E_WORK/EXAMPLE/.
collect_example() {
  local dir="$E2E_WORK/$OUT_PREFIX${1//\//_}" pod c
  mkdir -p "$dir/logs"
  kubectl -n "$2" get taskruns -o json > "$dir/taskruns.json" 2>/dev/null
  kubectl -n "$2" get pods -o json > "$dir/pods.json" 2>/dev/null
  jq -r '.items[] | .metadata.name as $p | [.status.initContainerStatuses[]?, .status.containerStatuses[]?][] | "\($p) \(.name)"' \
    "$dir/pods.json" | while read -r pod c; do
    kubectl -n "$2" logs "$pod" -c "$c" > "$dir/logs/$pod.$c.log" 2>&1
  done
}

# check_example EXAMPLE STATE: STATE is "True", "False" or a word for no end.
check_example() {
  local ex=$1 state=$2 dir="$E2E_WORK/$OUT_PREFIX${1//\//_}" why prepare n secs
  why=$(jq -r '[.items[] | .status.conditions[]? | select(.type == "Succeeded") | "\(.reason): \(.message)"] | join("; ")' "$dir/taskruns.json")
  secs=$(jq -r '[.items[] | select(.status.completionTime) | (.status.completionTime | fromdateiso8601) - (.metadata.creationTimestamp | fromdateiso8601)] | max // "?"' "$dir/taskruns.json")
  check "$ex: its TaskRun(s) ended Succeeded (in ${secs}s)${why:+; $why}" test "$state" = True
  RESULT[$ex]=$state
  prepare=$(jq -r '[.items[] | .spec.initContainers[]? | select(.name == "prepare") | .image] | unique | join(" ")' "$dir/pods.json")
  n=$(jq -r '.items | length' "$dir/pods.json")
  check "$ex: $n pod(s), each with init container prepare from the -entrypoint-image ($prepare)" \
    all_ok test "$n" -gt 0 -- test "$prepare" = "$EP_IMAGE"
}

# run_examples LIST: every example of LIST, PARALLEL at once.
declare -A RESULT
NS_COUNT=0
run_examples() {
  local -a queue=() running=()
  local -A ns_of since
  local ex ns state now i ended
  while read -r ex; do [ -n "$ex" ] && queue+=("$ex"); done <<<"$1"
  while [ ${#queue[@]} -gt 0 ] || [ ${#running[@]} -gt 0 ]; do
    while [ ${#running[@]} -lt "$PARALLEL" ] && [ ${#queue[@]} -gt 0 ]; do
      ex=${queue[0]}
      queue=("${queue[@]:1}")
      NS_COUNT=$((NS_COUNT + 1))
      ns="baton-tkctl-$START_S-$NS_COUNT"
      if ! submit "$ex" "$ns"; then
        fail "$ex: not submitted: $(cat "$E2E_WORK/submit.err")"
        RESULT[$ex]=unsubmitted
        continue
      fi
      ns_of[$ex]=$ns; since[$ex]=$(date +%s); running+=("$ex")
    done
    sleep 2
    now=$(date +%s)
    ended=()
    for ex in "${running[@]}"; do
      ns=${ns_of[$ex]}
      # Every TaskRun of the namespace ended: the state of the first that failed, or True.
      state=$(kubectl -n "$ns" get taskruns -o json 2>/dev/null | jq -r '[.items[] | ((.status.conditions // [])[] | select(.type == "Succeeded") | .status) // "Unknown"]
        | if length == 0 or any(. == "Unknown") then "Unknown" elif all(. == "True") then "True" else "False" end')
      if [ "$state" = Unknown ] || [ -z "$state" ]; then
        [ $((now - since[$ex])) -lt "$TR_TIMEOUT" ] && continue
        state="Unknown (still, after ${TR_TIMEOUT}s)"
      fi
      ended+=("$ex")
      collect_example "$ex" "$ns"
      check_example "$ex" "$state"
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
while read -r ex; do
  if [ ${#WANT[@]} -eq 0 ] || [[ " ${WANT[*]} " == *" $ex "* ]] || [[ " ${WANT[*]} " == *" ${ex%.yaml} "* ]]; then
    LIST+="$ex"$'\n'
  fi
done <<<"$EXAMPLES_TSV"
[ -n "$LIST" ] || die "no example of that name; see EXAMPLES_TSV in $0"
if [ ${#WANT[@]} -eq 0 ]; then
  while IFS=$'\t' read -r ex why; do skip "$ex: $why"; done <<<"$SKIPPED_TSV"
fi

OUT_PREFIX=""
EP_IMAGE=$IMG_BATON
[ "$TEKTON_ENTRYPOINT" = upstream ] && EP_IMAGE=$IMG_UPSTREAM
start_controller "$EP_IMAGE"
run_examples "$LIST"

# Every example that failed under baton, once more under upstream's entrypoint image.
RERUN=""
if [ "$TEKTON_ENTRYPOINT" = baton ]; then
  while read -r ex; do
    [ -n "$ex" ] && [ "${RESULT[$ex]:-}" != True ] && [ "${RESULT[$ex]:-}" != unsubmitted ] && RERUN+="$ex"$'\n'
  done <<<"$LIST"
fi
NOTES=()
if [ -n "$RERUN" ]; then
  stop_controller
  EP_IMAGE=$IMG_UPSTREAM
  start_controller "$EP_IMAGE"
  say "again under upstream's entrypoint image: $(tr '\n' ' ' <<<"$RERUN")"
  OUT_PREFIX=upstream-
  declare -A BATON_RESULT
  while read -r ex; do [ -n "$ex" ] && BATON_RESULT[$ex]=${RESULT[$ex]}; done <<<"$RERUN"
  # In a subshell: the re-run's checks are not counted, they tell what the failures above were.
  run_examples "$RERUN" | sed 's/^\(PASS\|FAIL\)  /  upstream: \1  /'
  while read -r ex; do
    [ -n "$ex" ] || continue
    state=$(jq -r '[.items[] | (.status.conditions // [])[] | select(.type == "Succeeded") | .status] | if length > 0 and all(. == "True") then "True" else "not True" end' \
      "$E2E_WORK/upstream-${ex//\//_}/taskruns.json" 2>/dev/null)
    if [ "$state" = True ]; then
      NOTES+=("$ex: baton ${BATON_RESULT[$ex]}, upstream's entrypoint Succeeded: a baton bug")
    else
      NOTES+=("$ex: baton ${BATON_RESULT[$ex]}, upstream's entrypoint did not succeed either: the environment (or the example), not baton")
    fi
  done <<<"$RERUN"
fi

echo
for note in "${NOTES[@]}"; do echo "NOTE  $note"; done
say "took $(( $(date +%s) - START_S )) s"
echo "$SKIPPED skipped"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
