# shellcheck shell=bash
# The scenarios of e2e/cluster.sh beyond the examples of checks.sh: a smoke pod, the examples compared
# with `batonctl play`, the plain examples through `batonctl inject`, faults, native sidecars, a Job's
# retries and the 20-step figure. Sourced by e2e/cluster.sh after checks.sh, which defines the driver
# (for_cluster, apply, wait_end, play_and_wait, pod_json) these use.

PODS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/pods
# How long a step whose container the runtime killed may leave its successor waiting (ms).
LOST_MS=${LOST_MS:-1000}

# A busybox pod without baton: the node runs a container to completion, and its message comes back.
scenario_smoke() {
  local pod=smoke dir
  dir=$(pod_dir "$pod")
  mkdir -p "$dir"
  cat > "$dir/spec.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata: {name: $pod}
spec:
  restartPolicy: Never
  containers:
  - name: hello
    image: $STEP_IMAGE
    command: [sh, -c, 'echo hello from the node > /dev/termination-log; exit 7']
EOF
  for_cluster "$dir/spec.yaml" > "$dir/apply.json"
  apply "$dir/apply.json" || return
  wait_end "$pod" || return
  pod_json "$pod"
  check "$pod: a busybox container ran on the node: exit 7, reason Error, its termination message" \
    jq -e '.status.phase == "Failed" and (.status.containerStatuses[0].state.terminated
      | .exitCode == 7 and .reason == "Error" and .message == "hello from the node\n")' "$dir/pod.json"
}

# The podman suite's check of its kubelet emulation, on the real kubelet: the same rules must hold.
scenario_kubelet() {
  play_and_wait "$E2E_DIR/pods/kubelet.yaml" || return
  collect baton-e2e-kubelet
  kubelet_checks baton-e2e-kubelet
}

# Packets from the bridge to any other device that up's FORWARD rule dropped.
forward_drops() {
  iptables -L FORWARD -v -x -n 2>/dev/null | awk -v b="$BRIDGE" '/baton-cluster/ && $6 == b && $7 == "!" b { print $1; exit }'
}

# Nothing a pod sends leaves the machine: the host reaches its name server over TCP, a pod must not.
scenario_isolation() {
  local pod=isolation dir server before
  server=$(awk '$1 == "nameserver" && $2 !~ /^127\./ { print $2; exit }' /etc/resolv.conf)
  if [ -z "$server" ] || ! timeout 3 bash -c "exec 3<>/dev/tcp/$server/53" 2>/dev/null; then
    skip "isolation: the host reaches no outside name server over TCP to compare with"
    return
  fi
  dir=$(pod_dir "$pod")
  mkdir -p "$dir"
  cat > "$dir/spec.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata: {name: $pod}
spec:
  restartPolicy: Never
  containers:
  - name: probe
    image: $STEP_IMAGE
    command: [sh, -c, 'if nc -w 3 $server 53 < /dev/null; then echo reached; exit 1; fi; echo blocked']
EOF
  for_cluster "$dir/spec.yaml" > "$dir/apply.json"
  before=$(forward_drops)
  apply "$dir/apply.json" || return
  wait_end "$pod" || return
  pod_json "$pod"
  check "$pod: a pod gets no connection to $server:53, which the host reaches" \
    jq -e '.status.phase == "Succeeded"' "$dir/pod.json"
  if [ "$LOCAL_CLUSTER" = 1 ]; then
    check "$pod: its packets were dropped by up's FORWARD rule ($before, then $(forward_drops) packets)" \
      test "$(forward_drops)" -gt "$before"
  fi
}

# ---------------------------------------------------------------------------------------------------
# batonctl play against the real kubelet

# The fields of a run status that the cluster and play must agree on: not times, container IDs or the
# CPU and memory a step used, which differ from run to run.
# shellcheck disable=SC2016
JQ_COMPARABLE='{phase, steps: [.steps[] | del(.startedAt, .finishedAt, .containerID, .image, .imageID, .duration, .usage)]}'

# compare_with_play POD FILE: `batonctl play` of FILE (the local images, on podman) must print the run
# status `batonctl status` printed for the cluster's pod POD; every difference is named.
compare_with_play() {
  local pod=$1 file=$2 dir diff
  dir=$(pod_dir "$pod")
  [ -s "$dir/batonctl.json" ] || { fail "$pod: no batonctl status of the cluster's pod to compare play with"; return; }
  "$BATONCTL_BIN" play -f "$file" -o json --name "play-$pod" --work-dir "$dir/play" > "$dir/play.json" 2> "$dir/play.err"
  if [ ! -s "$dir/play.json" ]; then
    fail "$pod: batonctl play printed no run status: $(tail -n 3 "$dir/play.err")"
    return
  fi
  diff=$(jq -n -c --slurpfile real "$dir/batonctl.json" --slurpfile play "$dir/play.json" '
    def cmp: '"$JQ_COMPARABLE"';
    ($real[0] | cmp) as $r | ($play[0] | cmp) as $p
    | [if $r.phase != $p.phase then {phase: {cluster: $r.phase, play: $p.phase}} else empty end]
      + [range(0; [$r.steps, $p.steps] | map(length) | max) as $i
         | ($r.steps[$i] // {}) as $a | ($p.steps[$i] // {}) as $b
         | ([$a, $b] | map(keys) | add | unique) as $ks
         | [$ks[] as $k | select($a[$k] != $b[$k]) | {key: $k, value: {cluster: $a[$k], play: $b[$k]}}]
         | select(length > 0) | {step: ($a.name // $b.name)} + from_entries]
    | .[]')
  if [ -z "$diff" ]; then
    pass "$pod: batonctl play prints the run status the real kubelet gave (phase, every step but its times)"
  else
    fail "$pod: batonctl play and the real kubelet differ (the cluster is right): $(tr '\n' ' ' <<<"$diff")"
  fi
}

# ---------------------------------------------------------------------------------------------------
# The plain examples: batonctl inject | kubectl apply

# inject FILE OUT: `batonctl inject` of FILE with the pushed baton image, then the pushed step image.
inject() {
  "$BATONCTL_BIN" inject -f "$1" --image "$IMAGE_BATON" > "$2.yaml" 2> "$2.err" \
    || { fail "batonctl inject $(basename "$1"): $(head -c 300 "$2.err")"; return 1; }
  for_cluster "$2.yaml" > "$2"
}

scenario_plain() {
  local pod dir f
  for f in dag sidecar; do
    pod=plain-$f
    dir=$(pod_dir "$pod")
    mkdir -p "$dir"
    inject "$REPO/examples/plain/$f.yaml" "$dir/apply.json" || continue
    apply "$dir/apply.json" || continue
    wait_end "$pod" || continue
    collect "$pod"
    expect_phase "$pod" Succeeded
    "$BATONCTL_BIN" inject -f "$REPO/examples/plain/$f.yaml" > "$dir/for-play.yaml" 2>/dev/null
    compare_with_play "$pod" "$dir/for-play.yaml"
  done
  expect_step plain-dag report 0 0 Completed
  expect_step plain-sidecar log-shipper 0 0 Stopped

  # A Job: its pod is the Job controller's, named by it.
  dir=$(pod_dir plain-steps-job)
  mkdir -p "$dir"
  inject "$REPO/examples/plain/job-steps.yaml" "$dir/apply.json" || return
  apply "$dir/apply.json" || return
  if ! kubectl -n "$NS" wait --for=condition=Complete job/plain-steps --timeout="${POD_TIMEOUT}s" >/dev/null 2>&1; then
    fail "plain-steps: the Job did not complete within ${POD_TIMEOUT}s"
    return
  fi
  pass "plain-steps: the injected Job completed"
  pod=$(kubectl -n "$NS" get pods -l batch.kubernetes.io/job-name=plain-steps -o jsonpath='{.items[0].metadata.name}')
  mkdir -p "$(pod_dir "$pod")"
  kubectl -n "$NS" get job plain-steps -o json | jq .spec.template > "$(pod_dir "$pod")/spec.json"
  collect "$pod"
  expect_phase "$pod" Succeeded
  expect_order "$pod" fetch build publish
  "$BATONCTL_BIN" inject -f "$REPO/examples/plain/job-steps.yaml" > "$dir/for-play.yaml" 2>/dev/null
  compare_with_play "$pod" "$dir/for-play.yaml"
}

# ---------------------------------------------------------------------------------------------------
# Faults

# hold FILE OUT: the pod with a finalizer, so that its last status can be read after a deletion.
hold() { for_cluster "$1" | jq '.metadata.finalizers = ["baton.dev/e2e-hold"]' > "$2"; }
release() { kubectl -n "$NS" patch pod "$1" --type=json -p '[{"op": "remove", "path": "/metadata/finalizers"}]' >/dev/null 2>&1; }

# wait_log POD CONTAINER TEXT SECONDS: until the container's log shows TEXT (a followed log, no polling).
wait_log() {
  local deadline=$(( $(date +%s) + $4 ))
  until kubectl -n "$NS" logs "$1" -c "$2" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.2  # the container is not created yet: nothing to follow
  done
  # grep's own status (a pipe would give kubectl's SIGPIPE under pipefail); kubectl ends with the container.
  grep -qF -m 1 -- "$3" < <(timeout "$4" kubectl -n "$NS" logs -f "$1" -c "$2" 2>/dev/null)
}

scenario_faults() {
  fault_delete
  fault_shutdown
  fault_grace
  fault_oom
  if [ "$LOCAL_CLUSTER" = 1 ]; then fault_runtime_kill; else skip "runtime kill: needs the node's containerd (e2e/cluster/up's cluster)"; fi
}

# Deletion mid-run: the kubelet's SIGTERM to every container, one step running and two waiting.
fault_delete() {
  local pod=baton-e2e-cancel dir t0 took
  dir=$(pod_dir "$pod")
  mkdir -p "$dir"
  yaml_to_json "$E2E_DIR/pods/cancel.yaml" > "$dir/spec.json"
  hold "$E2E_DIR/pods/cancel.yaml" "$dir/apply.json"
  apply "$dir/apply.json" || return
  wait_log "$pod" work working 60 || { fail "$pod: work did not start"; return; }
  sleep 0.5  # the waiting steps' containers start right after work's
  t0=$(now_ms)
  kubectl -n "$NS" delete pod "$pod" --grace-period=10 --wait=false >/dev/null
  wait_end "$pod" 30 || { release "$pod"; return; }
  took=$(( $(now_ms) - t0 ))
  collect "$pod"
  release "$pod"
  figure "$pod" "kubectl delete, 1 running + 2 waiting" delete "$took"
  check "$pod: the pod ended $took ms after the deletion, on SIGTERM alone (grace 10 s)" test "$took" -lt 8000
  expect_phase "$pod" Failed
  expect_step "$pod" work 143 143 Failed
  expect_step "$pod" next 143 null Cancelled
  expect_step "$pod" last 143 null Cancelled
  expect_error "$pod" next "the command never started"
}

# Deletion of a pod with a sidecar mid-run (podman's `shutdown` scenario, e2e/run.sh, on the real
# kubelet): examples/sidecar.yaml, renamed, deleted while main writes. The kubelet sends SIGTERM to both
# containers at once; --stop-after main holds the shipper's back until main, which takes a second to
# stop, has ended: the shipper ships main's last line, then ends Stopped, after main, and both publish
# their records (termination messages).
fault_shutdown() {
  local pod=baton-e2e-shutdown dir t0 took gap last follower
  dir=$(pod_dir "$pod")
  mkdir -p "$dir"
  yaml_to_json "$REPO/examples/sidecar.yaml" | jq --arg n "$pod" '.metadata.name = $n' > "$dir/spec.json"
  hold "$dir/spec.json" "$dir/apply.json"
  apply "$dir/apply.json" || return
  if ! wait_log "$pod" log-shipper "shipped: main: line 2" 60; then
    fail "$pod: main did not start writing"
    release "$pod"
    kubectl -n "$NS" delete pod "$pod" --wait=false >/dev/null 2>&1
    return
  fi
  # The shipper's whole log (baton's own lines among them), followed until the container ends.
  kubectl -n "$NS" logs -f "$pod" -c log-shipper > "$dir/log-shipper.log" 2>&1 &
  follower=$!
  t0=$(now_ms)
  kubectl -n "$NS" delete pod "$pod" --grace-period=10 --wait=false >/dev/null
  wait_end "$pod" 30 || { kill "$follower" 2>/dev/null; release "$pod"; return; }
  took=$(( $(now_ms) - t0 ))
  collect "$pod"
  { sleep 10; kill "$follower" 2>/dev/null; } &
  wait "$follower" 2>/dev/null
  release "$pod"
  figure "$pod" "kubectl delete, main + a --stop-after sidecar (main needs ~1 s on SIGTERM)" delete "$took"
  check "$pod: the pod ended $took ms after the deletion, on SIGTERM alone (grace 10 s)" test "$took" -lt 8000
  expect_phase "$pod" Failed
  expect_step "$pod" main 143 143 Failed
  expect_step "$pod" log-shipper 0 0 Stopped
  check "$pod: both containers published their record (a termination message each)" \
    jq -e '[.status.containerStatuses[] | .state.terminated.message // "" | length > 0] == [true, true]' "$dir/pod.json"
  last=$(jq -r '.steps[] | select(.name == "log-shipper") | .results.last // ""' "$(status_file "$pod")")
  check "$pod: the shipper outlived main's shutdown (its last shipped line: \"$last\")" test "$last" = "main: stopped"
  gap=$(( $(step_ms "$pod" log-shipper finishedAt) - $(step_ms "$pod" main finishedAt) ))
  figure "$pod" "main -> log-shipper (deletion)" finishedAt "$gap"
  check "$pod: on deletion the shipper ended $gap ms after main, in order (limit 0..$SIDECAR_MS ms)" \
    test "$gap" -ge 0 -a "$gap" -le "$SIDECAR_MS"
  check "$pod: the shipper's baton said it held SIGTERM back ($(grep -m 1 -F 'holding SIGTERM' "$dir/log-shipper.log"))" \
    grep -qF 'holding SIGTERM until step main' "$dir/log-shipper.log"
}

# Deletion of a pod whose command ignores SIGTERM: the kubelet's SIGKILL at the end of the grace period.
fault_grace() {
  local pod=baton-e2e-grace dir t0 took
  dir=$(pod_dir "$pod")
  mkdir -p "$dir"
  yaml_to_json "$E2E_DIR/pods/grace.yaml" > "$dir/spec.json"
  hold "$E2E_DIR/pods/grace.yaml" "$dir/apply.json"
  apply "$dir/apply.json" || return
  wait_log "$pod" stubborn "ignoring SIGTERM" 60 || { fail "$pod: stubborn did not start"; return; }
  sleep 0.5
  t0=$(now_ms)
  kubectl -n "$NS" delete pod "$pod" --grace-period=2 --wait=false >/dev/null
  wait_end "$pod" 30 || { release "$pod"; return; }
  took=$(( $(now_ms) - t0 ))
  collect "$pod"
  release "$pod"
  figure "$pod" "kubectl delete --grace-period=2, SIGTERM ignored" delete "$took"
  check "$pod: the SIGKILL came at the end of the 2 s grace period (the pod ended after $took ms)" \
    test "$took" -ge 1900 -a "$took" -lt 10000
  expect_phase "$pod" Failed
  expect_step "$pod" stubborn 137 137 Error
  check "$pod/stubborn: no termination message (baton was SIGKILLed with its container)" \
    jq -e '.status.containerStatuses[] | select(.name == "stubborn") | .state.terminated | has("message") | not' "$dir/pod.json"
  expect_step "$pod" waiter 143 null Cancelled
}

# A step over its memory limit: the kernel's OOM killer in the container's cgroup.
fault_oom() {
  local pod=baton-e2e-oom
  play_and_wait "$PODS_DIR/oom.yaml" || return
  collect "$pod"
  expect_phase "$pod" Failed
  check "$pod/hog: the kubelet reports OOMKilled" \
    jq -e '.status.containerStatuses[] | select(.name == "hog") | .state.terminated.reason == "OOMKilled"' "$(pod_dir "$pod")/pod.json"
  expect_step "$pod" hog 137 137 Failed
  expect_step "$pod" next 0 null Skipped
  expect_step "$pod" cleanup 0 0 Completed
}

# A running step's container SIGKILLed by the runtime (containerd), as an OOM kill of the wrapper would.
fault_runtime_kill() {
  local pod=baton-e2e-lost id t_kill
  mkdir -p "$(pod_dir "$pod")"
  yaml_to_json "$E2E_DIR/pods/lost.yaml" > "$(pod_dir "$pod")/spec.json"
  for_cluster "$E2E_DIR/pods/lost.yaml" > "$(pod_dir "$pod")/apply.json"
  apply "$(pod_dir "$pod")/apply.json" || return
  wait_log "$pod" work working 60 || { fail "$pod: work did not start"; return; }
  sleep 0.5
  id=$(kubectl -n "$NS" get pod "$pod" -o jsonpath='{.status.containerStatuses[?(@.name=="work")].containerID}')
  t_kill=$(now_ms)
  ctr --address "$RUN/containerd.sock" -n k8s.io tasks kill -s SIGKILL "${id#containerd://}" >/dev/null \
    || { fail "$pod: ctr could not kill container $id"; return; }
  wait_end "$pod" 30 || return
  lost_checks "$pod" "$t_kill"
}

# ---------------------------------------------------------------------------------------------------
# Native sidecars, a Job's retries

scenario_native() {
  local pod=baton-e2e-native dir
  play_and_wait "$PODS_DIR/native-sidecar.yaml" || return
  collect "$pod"
  dir=$(pod_dir "$pod")
  expect_phase "$pod" Succeeded
  expect_step "$pod" first 0 0 Completed
  expect_step "$pod" second 0 0 Completed
  expect_results "$pod" second '{"seen":"ready"}'
  expect_order "$pod" first second
  check "$pod/proxy: the native sidecar ran beside the steps and was stopped after them (SIGTERM: exit 0)" \
    jq -e '.status.initContainerStatuses[] | select(.name == "proxy") | .state.terminated.exitCode == 0' "$dir/pod.json"
}

scenario_job() {
  local job=baton-e2e-retry dir mark pods first second
  dir=$(pod_dir "$job")
  mark=$E2E_WORK/retry-mark
  mkdir -p "$dir" "$mark"
  chmod 0777 "$mark"
  for_cluster "$PODS_DIR/retry-job.yaml" \
    | jq --arg mark "$mark" '.spec.template.spec.volumes |= map(if .name == "mark" then .hostPath.path = $mark else . end)' \
    > "$dir/apply.json"
  apply "$dir/apply.json" || return
  if ! kubectl -n "$NS" wait --for=condition=Complete "job/$job" --timeout="${POD_TIMEOUT}s" >/dev/null 2>&1; then
    fail "$job: the Job did not complete within ${POD_TIMEOUT}s"
    return
  fi
  pods=$(kubectl -n "$NS" get pods -l "batch.kubernetes.io/job-name=$job" --sort-by=.metadata.creationTimestamp -o jsonpath='{.items[*].metadata.name}')
  read -r first second _ <<<"$pods"
  check "$job: backoffLimit 1: a failed pod, then a second one that completed ($pods)" \
    test -n "$second" -a "$(kubectl -n "$NS" get job "$job" -o jsonpath='{.status.failed} {.status.succeeded}')" = "1 1"
  for pod in $first $second; do
    mkdir -p "$(pod_dir "$pod")"
    jq .spec.template "$dir/apply.json" > "$(pod_dir "$pod")/spec.json"
    collect "$pod"
  done
  expect_phase "$first" Failed
  expect_step "$first" flaky 3 3 Failed
  expect_step "$first" report 0 null Skipped
  expect_phase "$second" Succeeded
  expect_step "$second" flaky 0 0 Completed
  expect_results "$second" report '{"attempt":"2"}'
}

# batonctl watch --annotate against the real API server (crates/baton-controller/cluster-check.sh), as
# the cluster's admin: deploy/'s RBAC for the watcher is not exercised here.
scenario_watch() {
  local out
  if out=$(BATONCTL=$BATONCTL_BIN NAMESPACE=$NS BUSYBOX_IMAGE=$IMAGE_STEP CHECK_TIMEOUT=$POD_TIMEOUT \
      "$REPO/crates/baton-controller/cluster-check.sh" 2>&1); then
    pass "crates/baton-controller/cluster-check.sh: $(tail -n 1 <<<"$out")"
  else
    fail "crates/baton-controller/cluster-check.sh: $(grep -m 1 FAILED <<<"$out" || tail -n 1 <<<"$out")"
  fi
}

# ---------------------------------------------------------------------------------------------------
# The figure: a 20-step pod from creation to completion, and the median handoff between its steps

scenario_bench() {
  local pod=baton-e2e-20 dir t0 took handoffs median
  dir=$(pod_dir "$pod")
  mkdir -p "$dir"
  jq -n --arg baton "$BATON_IMAGE" --arg step "$STEP_IMAGE" -f "$PODS_DIR/twenty.jq" > "$dir/spec.json"
  for_cluster "$dir/spec.json" > "$dir/apply.json"
  t0=$(now_ms)
  apply "$dir/apply.json" || return
  wait_end "$pod" || return
  took=$(( $(now_ms) - t0 ))
  collect "$pod"
  expect_phase "$pod" Succeeded
  handoffs=$(jq -r "$JQ_MS"'[.steps[] | select(.name | startswith("s"))] as $s
    | range(1; $s | length) | ($s[.].startedAt | ms) - ($s[. - 1].finishedAt | ms)' "$dir/fallback.json" | sort -n)
  median=$(awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2)) }' <<<"$handoffs")
  figure "$pod" "kubectl apply -> phase Succeeded, 20 steps" total "$took"
  figure "$pod" "median of 19 handoffs (min $(head -n 1 <<<"$handoffs"), max $(tail -n 1 <<<"$handoffs"))" startedAt "${median:-?}"
  check "$pod: 19 handoffs measured, median ${median:-?} ms (limit $HANDOFF_MS ms)" \
    test "$(wc -l <<<"$handoffs")" = 19 -a "${median:-999999}" -le "$HANDOFF_MS"
}
