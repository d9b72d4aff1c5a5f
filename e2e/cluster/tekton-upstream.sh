# shellcheck shell=bash
# Scenario tekton-upstream of e2e/cluster.sh: e2e/tekton-upstream.sh's side-by-side run on the real
# kubelet. Upstream Tekton's entrypoint v1.15.0 (e2e/upstream/build-tekton-entrypoint, cached) and
# baton-tekton (tekton.Containerfile) are pushed to the cluster's registry, and the same Tekton-shaped
# Pods (e2e/upstream/tekton/side-by-side.sh: `prepare` running `entrypoint init`, steps chained by
# -wait_file/-post_file, the first on the downward file of the annotation tekton.dev/ready) run once
# with each as real pods, tku-<shape>-<upstream|baton>. The harness plays only the controller: it sets
# tekton.dev/ready once every step container runs, tekton.dev/cancel, and deletes a pod.
#
# The kubelet removes a terminated pod's emptyDirs, so the facts compared are what the real cluster
# shows in the Pod status: each container's exit code and reason, and its termination message (entries
# by key, type and value, StartedAt's value by its format only), after the kubelet's own cuts. A
# difference passes only when DELIBERATE (side-by-side.sh, plus the kubelet's reasons below) lists it
# with those values; a listed difference of a shape that ran and that the cluster can show but did not
# fails. Then the figure: BENCH_STEPS steps of `true` under each entrypoint (docs/benchmarks.md,
# tekton-upstream-cluster). Sourced by e2e/cluster.sh (after frameworks.sh: push_image, exit_code).
# Environment: TKU_SHAPES (default "chain ends leftovers stop bench"), BENCH_STEPS (20), BENCH_ROUNDS (1).

# shellcheck source=e2e/upstream/tekton/side-by-side.sh
source "$E2E_DIR/upstream/tekton/side-by-side.sh"

ENGINES=(upstream baton)
declare -A TKU_IMAGE=()
# The files under /tekton/run, /tekton/results and /workspace are gone with the pod.
UNOBSERVED=('*/files *' 'workspace *' '*/paused *')
TKU_STEP_WHAT="exit code, the kubelet's reason, termination message"
TKU_INIT_WHAT="exit code, the kubelet's reason"

# The kubelet's reason follows the exit code (Completed for 0, Error otherwise): where a listed
# difference turns an exit code 0 into another, the reason differs too, for the same reason.
DELIBERATE+=$'\n'"ends	step-r* reason	Completed	Error	results that do not fit fail the step before its post file (upstream: out, then the 4096 check)"

# tku_steps_up POD N: N step containers, all running (the controller then sets tekton.dev/ready).
tku_steps_up() {
  kubectl -n "$NS" get pod "$1" -o json 2>/dev/null \
    | jq -e --argjson n "$2" '(.status.containerStatuses // []) | length == $n and all(.state.running != null)' >/dev/null
}

# tku_state POD STEP: running, terminated or waiting, as the Pod status has it.
tku_state() {
  kubectl -n "$NS" get pod "$1" -o json 2>/dev/null \
    | jq -r --arg n "$2" '.status.containerStatuses[] | select(.name == $n) | .state | keys[0]'
}

tku_state_is() { [ "$(tku_state "$1" "$2")" = "$3" ]; }

# tku_until SECONDS COMMAND...: retries every 200 ms (each try is a kubectl call).
tku_until() { UNTIL_EVERY=0.2 until_true "$@"; }

# tku_play SHAPE ENGINE: the pod of SHAPE under ENGINE's entrypoint on the cluster, the ready annotation
# set once its steps all run (R_READY: ms, just before `kubectl annotate`; R_ENDED: when the watch saw
# the pod's phase Succeeded or Failed), the shape's hook
# SHAPE_cluster_running run after it, until the pod ended; then its Pod JSON and facts. Returns 1 (after
# a FAIL) when the pod does not start or end.
tku_play() {
  local shape=$1 engine=$2 pod dir n down=api
  pod=tku-$shape-$engine
  R_POD=$pod
  dir=$(pod_dir "$pod")
  mkdir -p "$dir"
  [ "$shape" = stop ] && down=api+cancel
  shape_pod "$E2E_WORK/$shape.spec" "$pod" "${TKU_IMAGE[$engine]}" "$IMAGE_STEP" "$down" \
    "$(cat "$E2E_WORK/$shape.results")" > "$dir/spec.json"
  # Pulled once per content tag; the stop shape holds its last status across the deletion (a finalizer).
  # Every `$` of the scripts written `$$`, which the kubelet's expansion of $(VAR) in args turns back into
  # `$` (unescaped, `kill -TERM $$` reached sh as `kill -TERM $`); Tekton's controller puts scripts in
  # files, which nothing expands.
  jq --arg shape "$shape" '.spec.initContainers[].imagePullPolicy = "IfNotPresent" | .spec.containers[].imagePullPolicy = "IfNotPresent"
    | .spec.containers[].args |= map(gsub("\\$"; "$$"))
    | if $shape == "stop" then .metadata.finalizers = ["baton.dev/e2e-hold"] else . end' "$dir/spec.json" > "$dir/apply.json"
  n=$(jq '.spec.containers | length' "$dir/spec.json")
  apply "$dir/apply.json" || return 1
  if ! tku_until "$POD_TIMEOUT" tku_steps_up "$pod" "$n"; then
    fail "$pod: its $n step containers were not all running within ${POD_TIMEOUT}s"
    return 1
  fi
  R_READY=$(now_ms)
  kubectl -n "$NS" annotate pod "$pod" tekton.dev/ready=READY >/dev/null
  if declare -F "${shape}_cluster_running" >/dev/null; then "${shape}_cluster_running" "$pod"; fi
  wait_end "$pod" || return 1
  R_ENDED=$(now_ms)
  pod_json "$pod"
  tku_facts "$pod"
}

# tku_facts POD: $E2E_WORK/POD.facts as side-by-side.sh compares them (for each step in the spec's
# order, then the init container: exit code, the kubelet's reason, the message's entries), and
# POD.times: each step's StartedAt (ms).
tku_facts() {
  local pod=$1 dir name label
  dir=$(pod_dir "$pod")
  {
    for name in $(jq -r '.spec.containers[].name' "$dir/spec.json") prepare; do
      label=$name
      [ "$name" = prepare ] && label=init
      mkdir -p "$dir/containers/$name"
      jq -j --arg n "$name" '[.status.initContainerStatuses[]?, .status.containerStatuses[]] | map(select(.name == $n))[0]
        | .state.terminated.message // ""' "$dir/pod.json" > "$dir/containers/$name/message"
      printf '%s exit\t%s\n' "$label" "$(exit_code "$pod" "$name")"
      printf '%s reason\t%s\n' "$label" "$(jq -r --arg n "$name" '[.status.initContainerStatuses[]?, .status.containerStatuses[]]
        | map(select(.name == $n))[0].state.terminated.reason // "(not terminated)"' "$dir/pod.json")"
      [ "$name" = prepare ] || message_facts "$name" "$dir/containers/$name/message"
    done
    cat "$E2E_WORK/$pod.hook" 2>/dev/null
  } > "$E2E_WORK/$pod.facts"
  for name in $(jq -r '.spec.containers[].name' "$dir/spec.json"); do
    printf '%s\t%s\n' "$name" "$(jq -Rrs "$JQ_MS"'try (fromjson | map(select(.key == "StartedAt"))[-1].value | ms) catch "null"' \
      < "$dir/containers/$name/message" 2>/dev/null)"
  done > "$E2E_WORK/$pod.times"
}
# tku_started POD STEP: the step's StartedAt (ms), from its termination message.
tku_started() { awk -F'\t' -v s="$2" '$1 == s { print $2 }' "$E2E_WORK/$1.times"; }

# The cluster's hooks and checks of the shapes (side-by-side.sh has their steps).

# leftovers: without a post file to read, a step's end is seen in its successor's StartedAt.
leftovers_cluster_checks() {
  local e pod a_b c_d
  for e in "${ENGINES[@]}"; do
    pod=tku-leftovers-$e
    a_b=$(( $(tku_started "$pod" step-b) - $(tku_started "$pod" step-a) ))
    c_d=$(( $(tku_started "$pod" step-d) - $(tku_started "$pod" step-c) ))
    say "leftovers/$e: StartedAt a -> b (a left 'sleep 3 &') ${a_b} ms, c -> d (c with -stdout_path left 'sleep 2; echo late') ${c_d} ms"
    check "leftovers/$e: b started within 2 s of a, while a's 'sleep 3 &' lived on (${a_b} ms; issue 20.9)" [ "$a_b" -lt 2000 ]
    if [ "$e" = upstream ]; then
      check "leftovers/upstream: with -stdout_path, d waited for c's leftover holding the copy's pipe (${c_d} ms >= 1800)" [ "$c_d" -ge 1800 ]
    else
      check "leftovers/baton: with -stdout_path, d started within 1 s of c all the same (${c_d} ms)" [ "$c_d" -lt 1000 ]
    fi
  done
}

# stop: the controller cancels the TaskRun (tekton.dev/cancel, keep-pod-on-cancel) while a runs, then
# deletes the pod (grace period 3 s) while c still waits; the finalizer keeps the last status.
stop_cluster_running() {
  local pod=$1
  tku_until 60 kubectl -n "$NS" exec "$pod" -c step-a -- pidof sleep >/dev/null 2>&1 \
    || { fail "$pod: step-a's command never started"; return; }
  kubectl -n "$NS" annotate pod "$pod" tekton.dev/cancel=CANCEL >/dev/null
  tku_until 60 tku_state_is "$pod" step-a terminated || fail "$pod: step-a was not cancelled within 60 s"
  sleep 1.5 # b sees a's out.err (upstream: at its next 1 s poll)
  printf 'stop states\t%s\n' "$(for c in a b c; do printf '%s=%s ' "$c" "$(tku_state "$pod" "step-$c")"; done)" > "$E2E_WORK/$pod.hook"
  kubectl -n "$NS" delete pod "$pod" --grace-period=3 --wait=false >/dev/null
}

# tku_shape SHAPE: both entrypoints, the comparison, the shape's checks.
tku_shape() {
  local shape=$1 engine
  : > "$E2E_WORK/$shape.spec"
  SPEC="$E2E_WORK/$shape.spec" "${shape}_spec"
  "${shape}_results" | tr -d '\n' > "$E2E_WORK/$shape.results"
  say "tekton-upstream: $shape, $(jq -s 'length' "$E2E_WORK/$shape.spec") steps, under upstream's entrypoint, then baton's"
  for engine in "${ENGINES[@]}"; do
    tku_play "$shape" "$engine" || return
    [ "$shape" != stop ] || kubectl -n "$NS" patch pod "$R_POD" --type=json -p '[{"op": "remove", "path": "/metadata/finalizers"}]' >/dev/null
    [ "${E2E_KEEP:-0}" = 1 ] || kubectl -n "$NS" delete pod "$R_POD" --wait=false >/dev/null 2>&1
  done
  compare "$shape"
  if declare -F "${shape}_cluster_checks" >/dev/null; then "${shape}_cluster_checks"
  elif [ "$shape" = chain ]; then chain_checks; fi
}

# The figure: BENCH_STEPS steps of `true`, each waiting on the one before, under each entrypoint.
# Per-step times come from the StartedAt entries (the moment each entrypoint stopped waiting, in ms,
# on this node's clock, which is the harness's): the kubelet's startedAt/finishedAt are whole seconds,
# the post files are gone with the pod's emptyDirs, and `true` prints nothing to timestamp in the logs.
# A handoff is a step's StartedAt minus its predecessor's: `true`'s own run (a few ms) plus the wait.
tku_bench() {
  local engine round pod i ok walls firsts ends handoffs t0
  : > "$E2E_WORK/bench.spec"
  SPEC="$E2E_WORK/bench.spec" bench_spec
  bench_results | tr -d '\n' > "$E2E_WORK/bench.results"
  for engine in "${ENGINES[@]}"; do
    walls=() firsts=() ends=() handoffs=()
    for round in $(seq 1 "${BENCH_ROUNDS:-1}"); do
      tku_play bench "$engine" || return
      pod=$R_POD
      ok=0
      for i in $(seq 1 "$BENCH_STEPS"); do
        [ "$(fact_of "$pod" "step-s$i exit")" = 0 ] && [ "$(tku_started "$pod" "step-s$i")" != null ] && ok=$((ok + 1))
      done
      check "bench/$engine round $round: all $BENCH_STEPS steps exit 0 with a StartedAt ($ok)" [ "$ok" = "$BENCH_STEPS" ]
      if [ "$ok" = "$BENCH_STEPS" ]; then
        firsts+=("$(( $(tku_started "$pod" step-s1) - R_READY ))")
        walls+=("$(( $(tku_started "$pod" "step-s$BENCH_STEPS") - R_READY ))")
        ends+=("$(( R_ENDED - R_READY ))")
        for i in $(seq 2 "$BENCH_STEPS"); do
          t0=$(tku_started "$pod" "step-s$((i - 1))")
          handoffs+=("$(( $(tku_started "$pod" "step-s$i") - t0 ))")
        done
      fi
      [ "${E2E_KEEP:-0}" = 1 ] || kubectl -n "$NS" delete pod "$pod" --wait=false >/dev/null 2>&1
    done
    say "tekton-upstream bench/$engine: ready -> s$BENCH_STEPS's StartedAt: $(stats "${walls[@]}"); handoff: $(stats "${handoffs[@]}"); ready -> s1's StartedAt: $(stats "${firsts[@]}"); ready -> phase Succeeded seen: $(stats "${ends[@]}")"
    figure "tku-bench-$engine" "ready -> s$BENCH_STEPS StartedAt, median of ${#walls[@]}" wall "$(median "${walls[@]}")"
    figure "tku-bench-$engine" "StartedAt handoff, median of ${#handoffs[@]} ($(stats "${handoffs[@]}"))" handoff "$(median "${handoffs[@]}")"
    figure "tku-bench-$engine" "ready -> s1 StartedAt, median" first "$(median "${firsts[@]}")"
    figure "tku-bench-$engine" "ready -> phase Succeeded seen by the watch, median" end "$(median "${ends[@]}")"
  done
}

scenario_tekton-upstream() {
  local bin ctx shape
  BENCH_STEPS=${BENCH_STEPS:-20}
  SHAPES=${TKU_SHAPES:-chain ends leftovers stop bench}
  bin=$("$E2E_DIR/upstream/build-tekton-entrypoint" | tail -n 1)
  [ -x "$bin" ] || { fail "tekton-upstream: e2e/upstream/build-tekton-entrypoint built nothing"; return; }
  ctx=$(mktemp -d)
  cp "$bin" "$ctx/entrypoint"
  # --timestamp 0: the same binary gives the same image, hence the same content tag: the node pulls
  # its 46 MB once, not on every run.
  podman build -q --layers=false --timestamp 0 -f "$E2E_DIR/upstream/tekton/entrypoint.Containerfile" \
    -t localhost/tekton-entrypoint-upstream:cluster "$ctx" >/dev/null || die "podman build of upstream's entrypoint image failed"
  rm -rf "$ctx"
  build_tekton_image localhost/baton-tekton:cluster
  TKU_IMAGE[upstream]=$(push_image localhost/tekton-entrypoint-upstream:cluster tekton-entrypoint-upstream) \
    || { fail "tekton-upstream: upstream's entrypoint image does not push"; return; }
  TKU_IMAGE[baton]=$(push_image localhost/baton-tekton:cluster baton-tekton) \
    || { fail "tekton-upstream: the baton-tekton image does not push"; return; }
  say "tekton-upstream: ${TKU_IMAGE[upstream]} ($(image_size localhost/tekton-entrypoint-upstream:cluster) bytes), ${TKU_IMAGE[baton]}"
  for shape in $SHAPES; do
    if [ "$shape" = bench ]; then tku_bench; continue; fi
    # debug needs `kubectl exec` into paused steps: e2e/tekton-upstream.sh plays it on podman.
    case $shape in chain|ends|leftovers|stop) ;; *) die "tekton-upstream: no shape '$shape' on the cluster (chain ends leftovers stop bench)" ;; esac
    tku_shape "$shape"
  done
  unseen_listed
}
