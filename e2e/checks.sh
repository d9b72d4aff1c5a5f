# shellcheck shell=bash
# Checks shared by e2e/run.sh (podman) and e2e/cluster.sh (a real cluster): PASS/FAIL bookkeeping,
# reading a pod's run status, the assertions, and the scenarios of the examples/ pods.
#
# The driver that sources this file defines:
#   play_and_wait FILE   start the pod in FILE, wait for its end (FAIL on a hang), set PLAYED
#   pod_json POD         write $(pod_dir POD)/pod.json: the Pod with the kubelet's status
#   container_started_ms POD CONTAINER   when the runtime started the container (ms, or null)
#   container_log POD CONTAINER   the container's log

HANDOFF_MS=${HANDOFF_MS:-100}
# A sidecar's end after the step it serves: baton's notice and SIGTERM, then the sidecar's own exit.
SIDECAR_MS=${SIDECAR_MS:-1000}
POD_TIMEOUT=${POD_TIMEOUT:-60}

PASSED=0
FAILED=0
SKIPPED=0
pass() { PASSED=$((PASSED + 1)); printf 'PASS  %s\n' "$*"; }
fail() { FAILED=$((FAILED + 1)); printf 'FAIL  %s\n' "$*"; }
skip() { SKIPPED=$((SKIPPED + 1)); printf 'SKIP  %s\n' "$*"; }
# matches TEXT REGEX: TEXT matches the extended regular expression.
matches() { [[ $1 =~ $2 ]]; }
# check DESCRIPTION COMMAND...: PASS when the command succeeds.
check() { local what=$1; shift; if "$@" >/dev/null 2>&1; then pass "$what"; else fail "$what"; fi; }

# ---------------------------------------------------------------------------------------------------
# Reading a played pod

# The pod's spec container names, init containers first.
containers_of() { jq -r '(.spec.initContainers // [])[].name, .spec.containers[].name' "$(pod_dir "$1")/spec.json"; }

# A field of a step in the run status being asserted on (batonctl's, or the harness's reader).
step_field() { jq -c --arg n "$2" --arg f "$3" '(.steps[] | select(.name == $n) | .[$f]) // null' "$(status_file "$1")"; }
# The container's exit code in the Pod status (the kubelet's view).
container_exit() {
  jq -c --arg n "$2" '([.status.initContainerStatuses[]?, .status.containerStatuses[]] | map(select(.name == $n))[0].state.terminated.exitCode) // null' \
    "$(pod_dir "$1")/pod.json"
}
# Milliseconds since the epoch of baton's startedAt/finishedAt of a step, from the termination message
# itself (the harness's reader keeps baton's millisecond times), or "null".
step_ms() {
  jq -r --arg n "$2" --arg f "$3" "$JQ_MS"'
    (.steps[] | select(.name == $n) | .[$f]) as $t
    | if $t == null or ($t | length) < 24 then "null" else $t | ms end' "$(pod_dir "$1")/fallback.json"
}

# Collects a pod's status after it ended: Pod JSON, the harness's reading, batonctl's.
collect() {
  local pod=$1 dir
  dir=$(pod_dir "$pod")
  pod_json "$pod"
  if run_status "$pod"; then
    if [ -n "${BATONCTL_BIN:-}" ]; then
      pass "$pod: batonctl status -f pod.json -o json read the Pod"
    fi
  else
    fail "$pod: batonctl status failed: $(head -c 400 "$dir/batonctl.err")"
  fi
  {
    echo "== $pod  (run status from $([ -s "$dir/batonctl.json" ] && echo batonctl || echo "the harness's reader"))"
    if [ -s "$dir/batonctl.json" ]; then "$BATONCTL_BIN" status -f "$dir/pod.json" 2>&1; else status_table "$dir/fallback.json"; fi
  } | sed 's/^/      /'
  if [ -s "$dir/batonctl.json" ]; then
    # batonctl and the harness's own reading of the same messages must agree on every step.
    local diff
    diff=$(jq -n -c --slurpfile a "$dir/batonctl.json" --slurpfile b "$dir/fallback.json" '
      def key: {phase, steps: [.steps[] | {name, exitCode, reason, results: (.results // {})}]};
      ($a[0] | key) as $x | ($b[0] | key) as $y
      | if $x == $y then empty else {batonctl: $x, messages: $y} end')
    if [ -z "$diff" ]; then
      pass "$pod: batonctl agrees with the termination messages (phase, exit codes, reasons, results)"
    else
      fail "$pod: batonctl and the termination messages disagree: $diff"
    fi
  fi
}

# ---------------------------------------------------------------------------------------------------
# Assertions

expect_phase() {
  local got
  got=$(jq -r .phase "$(status_file "$1")")
  [ "$got" = "$2" ] && pass "$1: run phase $2" || fail "$1: run phase: expected $2, got $got"
}

# expect_step POD CONTAINER CONTAINER_EXIT EXIT_CODE REASON: the container's exit code as the kubelet
# reports it, and the step's exit code (baton's record: the command's code, null if it never ran) and
# reason in the run status.
expect_step() {
  local pod=$1 c=$2 want_ctr=$3 want_code=$4 want_reason=$5 ctr code reason
  ctr=$(container_exit "$pod" "$c")
  code=$(step_field "$pod" "$c" exitCode)
  reason=$(step_field "$pod" "$c" reason | tr -d '"')
  if [ "$ctr" = "$want_ctr" ] && [ "$code" = "$want_code" ] && [ "$reason" = "$want_reason" ]; then
    pass "$pod/$c: container exit $ctr, exitCode $code, reason $reason"
  else
    fail "$pod/$c: expected container exit $want_ctr, exitCode $want_code, reason $want_reason; got $ctr, $code, $reason (error: $(step_field "$pod" "$c" error))"
  fi
}

# expect_results POD CONTAINER JSON: the step's results, exactly.
expect_results() {
  local got
  got=$(jq -c --arg n "$2" '(.steps[] | select(.name == $n) | .results) // {}' "$(status_file "$1")")
  if jq -e -n --argjson a "$got" --argjson b "$3" '$a == $b' >/dev/null; then
    [ ${#got} -le 160 ] || got="${got:0:150}... (${#got} bytes)"
    pass "$1/$2: results $got"
  else
    fail "$1/$2: results: expected $3, got $got"
  fi
}

# expect_error POD CONTAINER TEXT: the step's error sentence mentions TEXT.
expect_error() {
  local got
  got=$(step_field "$1" "$2" error)
  case "$got" in
    *"$3"*) pass "$1/$2: error names it: $got" ;;
    *) fail "$1/$2: error should mention \"$3\", got $got" ;;
  esac
}

# expect_order POD STEP...: each step started after the one before it had finished.
expect_order() {
  local pod=$1 prev="" s ok=1 prev_end start
  for s in "${@:2}"; do
    if [ -n "$prev" ]; then
      prev_end=$(step_ms "$pod" "$prev" finishedAt)
      start=$(step_ms "$pod" "$s" startedAt)
      if [ "$prev_end" = null ] || [ "$start" = null ] || [ "$start" -lt "$prev_end" ]; then ok=0; fi
    fi
    prev=$s
  done
  [ $ok = 1 ] && pass "$pod: start order ${*:2}" || fail "$pod: start order ${*:2} not kept"
}

# expect_handoff POD "PRED..." SUCC [FIELD]: SUCC's FIELD (startedAt; finishedAt for a step that does
# not run) lies within HANDOFF_MS after the last predecessor's finishedAt. Figures go to figures.tsv.
expect_handoff() {
  local pod=$1 preds=$2 succ=$3 field=${4:-startedAt} p end=0 e t gap
  for p in $preds; do
    e=$(step_ms "$pod" "$p" finishedAt)
    [ "$e" = null ] && { fail "$pod: handoff $preds -> $succ: $p has no finishedAt"; return; }
    [ "$e" -gt "$end" ] && end=$e
  done
  t=$(step_ms "$pod" "$succ" "$field")
  [ "$t" = null ] && { fail "$pod: handoff $preds -> $succ: $succ has no $field"; return; }
  gap=$((t - end))
  printf '%s\t%s -> %s\t%s\t%s\n' "$pod" "${preds// /+}" "$succ" "$field" "$gap" >> "$E2E_WORK/figures.tsv"
  if [ "$gap" -ge 0 ] && [ "$gap" -le "$HANDOFF_MS" ]; then
    pass "$pod: handoff ${preds// /+} -> $succ in $gap ms (${field} after finishedAt; limit $HANDOFF_MS ms)"
  else
    local up late=""
    up=$(container_started_ms "$pod" "$succ")
    if [ "$up" != null ] && [ "$up" -gt "$end" ]; then
      late=" - but its container only started $((up - end)) ms after that end: the machine was too slow for the example's head start, nothing was measured"
    fi
    fail "$pod: handoff ${preds// /+} -> $succ took $gap ms (${field} after finishedAt; limit 0..$HANDOFF_MS ms)$late"
  fi
}

figure() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >> "$E2E_WORK/figures.tsv"; }

# ---------------------------------------------------------------------------------------------------
# The examples

scenario_pipeline() {
  local pod=baton-pipeline digest
  play_and_wait "$REPO/examples/pipeline.yaml" || return
  collect "$pod"
  digest=$(printf 'hello from baton\n' | sha256sum | cut -c1-64)
  expect_phase "$pod" Succeeded
  expect_step "$pod" baton-init 0 0 Completed
  expect_step "$pod" fetch 0 0 Completed
  expect_step "$pod" build 0 0 Completed
  expect_step "$pod" publish 0 0 Completed
  expect_results "$pod" fetch "{\"digest\":\"$digest\",\"version\":\"v1.2.3\"}"
  local size
  size=$(jq -r '.steps[] | select(.name == "build") | .results.size // ""' "$(status_file "$pod")")
  if [[ "$size" =~ ^[1-9][0-9]*$ ]]; then
    expect_results "$pod" build "{\"artifact\":\"app-v1.2.3.tar\",\"size\":\"$size\"}"
  else
    fail "$pod/build: result size should be a byte count, got \"$size\""
  fi
  expect_results "$pod" publish '{"url":"file:///workspace/published/app-v1.2.3.tar"}'
  expect_order "$pod" fetch build publish
  expect_handoff "$pod" fetch build
  expect_handoff "$pod" build publish
}

scenario_dag() {
  local pod=baton-dag u0 u1 l0 l1
  play_and_wait "$REPO/examples/dag.yaml" || return
  collect "$pod"
  expect_phase "$pod" Succeeded
  expect_step "$pod" prepare 0 0 Completed
  expect_step "$pod" unit 0 0 Completed
  expect_step "$pod" lint 0 0 Completed
  expect_step "$pod" report 0 0 Completed
  expect_results "$pod" prepare '{"modules":"3"}'
  expect_results "$pod" report '{"summary":"3 modules, 3 passed, 0 lint warnings"}'
  expect_order "$pod" prepare unit report
  expect_order "$pod" prepare lint report
  expect_handoff "$pod" prepare unit
  expect_handoff "$pod" prepare lint
  expect_handoff "$pod" "unit lint" report
  u0=$(step_ms "$pod" unit startedAt); u1=$(step_ms "$pod" unit finishedAt)
  l0=$(step_ms "$pod" lint startedAt); l1=$(step_ms "$pod" lint finishedAt)
  if [ "$u0" != null ] && [ "$l0" != null ] && [ "$u0" -lt "$l1" ] && [ "$l0" -lt "$u1" ]; then
    pass "$pod: unit and lint ran in parallel (started $((u0 > l0 ? u0 - l0 : l0 - u0)) ms apart)"
  else
    fail "$pod: unit and lint did not overlap (unit $u0..$u1, lint $l0..$l1)"
  fi
}

scenario_sidecar() {
  local pod=baton-sidecar gap
  play_and_wait "$REPO/examples/sidecar.yaml" || return
  collect "$pod"
  expect_phase "$pod" Succeeded
  expect_step "$pod" main 0 0 Completed
  expect_step "$pod" log-shipper 0 0 Stopped
  expect_results "$pod" main '{"lines":"10"}'
  expect_results "$pod" log-shipper '{"last":"main: done","shipped":"11"}'
  # The sidecar's end includes its own shutdown (a shell trap running wc, tail, tr): the limit is not
  # the handoff's, but far below --grace 5s (a SIGKILL would also lose the results checked above).
  gap=$(( $(step_ms "$pod" log-shipper finishedAt) - $(step_ms "$pod" main finishedAt) ))
  figure "$pod" "main -> log-shipper stopped" finishedAt "$gap"
  if [ "$gap" -ge 0 ] && [ "$gap" -le "$SIDECAR_MS" ]; then
    pass "$pod: --until main stopped the sidecar $gap ms after main ended (notice, SIGTERM, its trap, exit; limit $SIDECAR_MS ms)"
  else
    fail "$pod: --until main: the sidecar ended $gap ms after main (limit 0..$SIDECAR_MS ms)"
  fi
}

scenario_failure() {
  local pod=baton-failure
  play_and_wait "$REPO/examples/failure.yaml" || return
  collect "$pod"
  expect_phase "$pod" Failed
  expect_step "$pod" checkout 0 0 Completed
  expect_step "$pod" test 3 3 Failed
  expect_step "$pod" package 0 null Skipped
  expect_step "$pod" upload 0 null Skipped
  expect_step "$pod" notify 0 0 Completed
  expect_results "$pod" test '{"failed":"2"}'
  expect_results "$pod" notify '{"message":"tests failed: 2"}'
  expect_error "$pod" package "step test did not succeed"
  expect_error "$pod" upload "step package did not succeed"
  expect_order "$pod" checkout test notify
  expect_handoff "$pod" checkout test
  expect_handoff "$pod" test package finishedAt
  expect_handoff "$pod" package upload finishedAt
  expect_handoff "$pod" "test upload" notify
}


# kubelet_checks POD: the termination-message rules on e2e/pods/kubelet.yaml after it ended, containers
# found by name (the kubelet sorts their statuses by name). A container the runtime could not start is
# StartError, containerd's reason, as the real cluster showed (Docker's dockershim said ContainerCannotRun).
kubelet_checks() {
  local pod=$1 dir want log
  dir=$(pod_dir "$pod")
  log=$(container_log "$pod" probe)
  # shellcheck disable=SC2016
  local of='.status.containerStatuses[] | select(.name == $c) | .state.terminated'
  check "$pod/probe: the termination file is bind-mounted, mode 0666" \
    all_ok matches "$log" 'mount: bind-mounted' -- matches "$log" '-rw-rw-rw-'
  check "$pod/probe: a rename over the termination file fails ($(grep rename: <<<"$log"))" \
    matches "$log" 'rename: refused:.*busy'
  check "$pod/probe: message written in place is read back, exit 3, reason Error" \
    jq -e --arg c probe "$of"' | .message == "written in place" and .exitCode == 3 and .reason == "Error"' "$dir/pod.json"
  want=$(seq 1 100 | sed 's/^/log line /' | tail -n "$KUBELET_LOG_LINES" | tail -c "$KUBELET_LOG_BYTES")
  check "$pod/fallback: FallbackToLogsOnError gives the last 80 log lines of a failed container" \
    jq -e --arg c fallback --arg w "$want"$'\n' "$of"' | .message == $w' "$dir/pod.json"
  want=$(seq 1 2000 | tr '\n' ' ' | head -c 5000 | tail -c 4096 | head -c 2457)
  check "$pod/big: a 5000-byte message keeps its last 4096 bytes, then the first 12288/5 = 2457" \
    jq -e --arg c big --arg w "$want" "$of"' | .message == $w' "$dir/pod.json"
  check "$pod/quiet: FallbackToLogsOnError gives nothing for a container that exited 0" \
    jq -e --arg c quiet "$of"' | has("message") | not' "$dir/pod.json"
  check "$pod/missing: a command the runtime cannot start is StartError, exit 128, with the runtime's error" \
    jq -e --arg c missing "$of"' | .exitCode == 128 and .reason == "StartError" and (.message | test("/var/run/baton/bin/baton"))' "$dir/pod.json"
  expect_step "$pod" missing 128 128 StartError
  check "$pod: pod phase Failed (containers exited non-zero)" jq -e '.status.phase == "Failed"' "$dir/pod.json"
}

# lost_checks POD T_KILL: e2e/pods/lost.yaml after its step work was SIGKILLed at T_KILL (ms): next ends
# PredecessorLost at once (within LOST_MS), last is Skipped. The same on podman and on the real kubelet.
lost_checks() {
  local pod=$1 t_kill=$2 t_end gap
  collect "$pod"
  expect_phase "$pod" Failed
  expect_step "$pod" work 137 137 Error
  expect_step "$pod" next 125 null PredecessorLost
  expect_error "$pod" next "step work was lost"
  expect_step "$pod" last 0 null Skipped
  t_end=$(step_ms "$pod" next finishedAt)
  if [ "$t_end" != null ]; then
    gap=$((t_end - t_kill))
    figure "$pod" "SIGKILL of work -> next PredecessorLost" finishedAt "$gap"
    check "$pod/next: noticed the lost predecessor $gap ms after the SIGKILL (limit $LOST_MS ms)" \
      test "$gap" -le "$LOST_MS"
  fi
}

# Prints the measured figures and the verdict; returns 1 when a check failed.
summary() {
  echo
  echo "Measured (ms; handoff = successor's baton startedAt, or finishedAt for a step that does not run,"
  echo "minus the predecessor's baton finishedAt, both from the termination messages):"
  awk -F'\t' '{ printf "  %-20s %-44s %-10s %7s %s\n", $1, $2, $3, $4, ($3 == "size" ? "bytes" : "ms") }' "$E2E_WORK/figures.tsv"
  echo "$SKIPPED skipped"
  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}
