#!/usr/bin/env bash
# The e2e suite: baton in real containers (podman kube play), with the harness playing the kubelet's
# part for termination messages and the Pod status (docs/e2e.md).
#
#   e2e/run.sh              every scenario
#   e2e/run.sh dag lost     only these (names: image kubelet pipeline dag sidecar shutdown failure
#                           cancel grace lost cannotrun budget nonroot exec)
#
# Environment: BATONCTL=path (else built from crates/baton-controller when it has its binary;
# BATONCTL=none: only the harness's own reader),
# E2E_WORK=dir (artifacts: each pod's spec, Pod JSON, run status; default a temp dir, removed on
# success), E2E_KEEP=1 (keep pods, volumes and artifacts), HANDOFF_MS (default 100), SIDECAR_MS
# (default 1000), LOST_MS (default 1000), POD_TIMEOUT (seconds, default 60).
# Prints one PASS/FAIL line per check, ends with "N passed, M failed"; exits 1 when a check failed.
set -uo pipefail

E2E_NAME=e2e
# shellcheck source=e2e/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=e2e/checks.sh
source "$(dirname "$0")/checks.sh"

LOST_MS=${LOST_MS:-1000}

ALL=(image kubelet pipeline dag sidecar shutdown failure cancel grace lost cannotrun budget nonroot exec)
WANT=("$@")
[ ${#WANT[@]} -gt 0 ] || WANT=("${ALL[@]}")
for s in "${WANT[@]}"; do
  [[ " ${ALL[*]} " == *" $s "* ]] || die "unknown scenario $s (known: ${ALL[*]})"
done

if [ -z "${E2E_WORK:-}" ]; then
  E2E_WORK=$(mktemp -d "${TMPDIR:-/tmp}/baton-e2e.XXXXXX")
  E2E_WORK_TEMP=1
fi
mkdir -p "$E2E_WORK"
: > "$E2E_WORK/figures.tsv"

finish() {
  local rc=$?
  e2e_cleanup
  if [ "${E2E_WORK_TEMP:-0}" = 1 ] && [ "$FAILED" -eq 0 ] && [ "$rc" -eq 0 ] && [ "${E2E_KEEP:-0}" != 1 ]; then
    rm -rf "$E2E_WORK"
  else
    say "artifacts (spec, Pod JSON, run status of every pod) in $E2E_WORK"
  fi
}
trap finish EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------------
# The podman driver (see checks.sh)

# The Pod JSON: the kubelet's part, played from podman's state.
pod_json() { kubelet_status "$1"; }
container_log() { podman logs "$1-$2" 2>&1; }

# When podman started the container, in ms (inspect has nanoseconds).
container_started_ms() {
  jq -r --arg n "$1-$2" "$JQ_MS"' map(select(.Name == $n))[0].State.StartedAt // null
    | if . == null or startswith("0001") then "null" else ms end' "$(pod_dir "$1")/inspect.json"
}

# play_and_wait FILE: plays, waits for the end; records a FAIL (a hang) on time-out.
play_and_wait() {
  if ! play "$1"; then
    fail "$(basename "$1"): podman kube play failed: $(tail -n 3 "$(pod_dir "$PLAYED")/play.log" 2>/dev/null)"
    return 1
  fi
  if ! wait_pod "$PLAYED" "$POD_TIMEOUT"; then
    fail "$PLAYED: still running after ${POD_TIMEOUT}s (a step hangs): $(pod_states "$PLAYED" | tr '\n' ' ')"
    podman pod stop -t 1 "$PLAYED" >/dev/null 2>&1
  fi
  return 0
}

# ---------------------------------------------------------------------------------------------------
# Scenarios

# The baton image (Dockerfile): one layer holding only /baton (the static binary of make static),
# non-root, labelled.
scenario_image() {
  local tmp layers files size
  tmp=$(mktemp -d)
  podman image save -q -o "$tmp/image.tar" "$BATON_IMAGE" >/dev/null 2>&1 && tar -xf "$tmp/image.tar" -C "$tmp"
  layers=$(jq -r '.[0].Layers | length' "$tmp/manifest.json" 2>/dev/null)
  files=$(jq -r '.[0].Layers[]' "$tmp/manifest.json" 2>/dev/null | while read -r l; do tar -tf "$tmp/$l"; done | tr '\n' ' ')
  size=$(image_size "$BATON_IMAGE")
  figure "$BATON_IMAGE" "image size (bytes; binary $(stat -c %s "$BATON_BIN"))" size "$size"
  check "$BATON_IMAGE: one layer holding only baton (layers: $layers; files: $files)" \
    test "$layers" = 1 -a "$files" = "baton "
  check "$BATON_IMAGE: /baton is the binary of make static" \
    bash -c "tar -xOf '$tmp/$(jq -r '.[0].Layers[0]' "$tmp/manifest.json")' baton | cmp -s - '$BATON_BIN'"
  check "$BATON_IMAGE: user 65532:65532, entrypoint /baton, default command init --dir /var/run/baton" \
    test "$(podman image inspect "$BATON_IMAGE" --format '{{.Config.User}} {{.Config.Entrypoint}} {{.Config.Cmd}}')" \
      = "65532:65532 [/baton] [init --dir /var/run/baton]"
  check "$BATON_IMAGE: OCI labels (title, version, licenses Apache-2.0, source)" \
    bash -c "podman image inspect '$BATON_IMAGE' --format '{{json .Config.Labels}}' | jq -e '.[\"org.opencontainers.image.licenses\"] == \"Apache-2.0\" and .[\"org.opencontainers.image.title\"] == \"baton\" and (.[\"org.opencontainers.image.version\"] | length > 0)'"
  check "$BATON_IMAGE: size $size bytes, under 1.5 MB" test "$size" -lt 1500000
  check "$BATON_IMAGE: platform $BATON_PLATFORM (the binary's)" \
    test "$(podman image inspect "$BATON_IMAGE" --format '{{.Os}}/{{.Architecture}}')" = "$BATON_PLATFORM"
  rm -rf "$tmp"
}

scenario_kubelet() {
  local pod=baton-e2e-kubelet
  # podman kube play fails (exit 125) because `missing` cannot start: that is part of the test.
  play "$E2E_DIR/pods/kubelet.yaml"
  [ "$PLAYED" = "$pod" ] || { fail "$pod: podman kube play failed"; return; }
  wait_pod "$pod" "$POD_TIMEOUT" || fail "$pod: still running after ${POD_TIMEOUT}s"
  collect "$pod"
  kubelet_checks "$pod"
}

# Pod deletion during the sidecar example: SIGTERM reaches both containers at once; --stop-after main
# holds the shipper's back until main, which takes a second to shut down, has ended.
scenario_shutdown() {
  local pod=baton-sidecar t0 took gap
  if ! play "$REPO/examples/sidecar.yaml"; then fail "$pod: podman kube play failed"; return; fi
  if ! wait_log "$pod" log-shipper "shipped: main: line 2" 15; then
    fail "$pod: main did not start writing"; podman pod stop -t 1 "$pod" >/dev/null 2>&1; return
  fi
  t0=$(now_ms)
  podman pod stop -t 10 "$pod" >/dev/null 2>&1
  took=$(( $(now_ms) - t0 ))
  wait_pod "$pod" 5
  collect "$pod"
  figure "$pod" "pod stop (main needs ~1 s on SIGTERM)" "stop" "$took"
  expect_phase "$pod" Failed
  expect_step "$pod" main 143 143 Failed
  expect_step "$pod" log-shipper 0 0 Stopped
  local last
  last=$(jq -r '.steps[] | select(.name == "log-shipper") | .results.last // ""' "$(status_file "$pod")")
  [ "$last" = "main: stopped" ] \
    && pass "$pod: the shipper outlived main's shutdown (its last shipped line: \"$last\")" \
    || fail "$pod: --stop-after main: the shipper's last line is \"$last\", not main's final \"main: stopped\""
  gap=$(( $(step_ms "$pod" log-shipper finishedAt) - $(step_ms "$pod" main finishedAt) ))
  figure "$pod" "main -> log-shipper (deletion)" finishedAt "$gap"
  if [ "$gap" -ge 0 ] && [ "$gap" -le "$SIDECAR_MS" ]; then
    pass "$pod: on deletion the shipper ended $gap ms after main (limit 0..$SIDECAR_MS ms)"
  else
    fail "$pod: on deletion the shipper ended $gap ms after main (expected 0..$SIDECAR_MS ms)"
  fi
  check "$pod: pod deletion took $took ms: no SIGKILL needed (grace 10 s)" test "$took" -lt 5000
  check "$pod: the shipper's baton said it held SIGTERM back" \
    bash -c "podman logs $pod-log-shipper 2>&1 | grep -q 'holding SIGTERM until step main'"
}

# stop_pod POD GRACE: the pod deletion (SIGTERM to every container, SIGKILL after GRACE seconds).
# Prints how long it took, in ms.
stop_pod() {
  local t0
  t0=$(now_ms)
  podman pod stop -t "$2" "$1" >/dev/null 2>&1
  echo $(( $(now_ms) - t0 ))
}

scenario_cancel() {
  local pod=baton-e2e-cancel took
  if ! play "$E2E_DIR/pods/cancel.yaml"; then fail "$pod: podman kube play failed"; return; fi
  if ! wait_log "$pod" work working 15; then fail "$pod: work did not start"; fi
  # Let the two waiting steps' containers be up and waiting (they start right after work's).
  sleep 0.5
  took=$(stop_pod "$pod" 10)
  wait_pod "$pod" 5
  collect "$pod"
  figure "$pod" "pod stop, 1 running + 2 waiting" stop "$took"
  check "$pod: the pod stopped in $took ms on SIGTERM alone (grace 10 s)" test "$took" -lt 5000
  expect_phase "$pod" Failed
  expect_step "$pod" work 143 143 Failed
  expect_step "$pod" next 143 null Cancelled
  expect_step "$pod" last 143 null Cancelled
  expect_error "$pod" next "the command never started"
}

scenario_grace() {
  local pod=baton-e2e-grace took
  if ! play "$E2E_DIR/pods/grace.yaml"; then fail "$pod: podman kube play failed"; return; fi
  if ! wait_log "$pod" stubborn "ignoring SIGTERM" 15; then fail "$pod: stubborn did not start"; fi
  sleep 0.5
  took=$(stop_pod "$pod" 2)
  wait_pod "$pod" 5
  collect "$pod"
  figure "$pod" "pod stop, command ignores SIGTERM, grace 2 s" stop "$took"
  check "$pod: SIGKILL came with the end of the 2 s grace period (stop took $took ms)" \
    test "$took" -ge 1900 -a "$took" -lt 6000
  expect_phase "$pod" Failed
  # baton died with its container: no record, the kubelet's view stands.
  expect_step "$pod" stubborn 137 137 Error
  check "$pod/stubborn: no termination message (baton was SIGKILLed with its container)" \
    jq -e '.status.containerStatuses[] | select(.name == "stubborn") | .state.terminated | has("message") | not' "$(pod_dir "$pod")/pod.json"
  expect_step "$pod" waiter 143 null Cancelled
  local cancelled_ms stop_ms
  cancelled_ms=$(step_ms "$pod" waiter finishedAt)
  stop_ms=$(jq -r '.status.containerStatuses[] | select(.name == "stubborn") | .state.terminated.finishedAt | fromdateiso8601 * 1000' "$(pod_dir "$pod")/pod.json")
  if [ "$cancelled_ms" != null ] && [ $((stop_ms - cancelled_ms)) -ge 1000 ]; then
    pass "$pod/waiter: cancelled at the SIGTERM, $((stop_ms - cancelled_ms)) ms (whole seconds) before stubborn's SIGKILL"
  else
    fail "$pod/waiter: not cancelled before the grace period ended (cancelled $cancelled_ms, SIGKILL $stop_ms)"
  fi
}

scenario_lost() {
  local pod=baton-e2e-lost t_kill
  if ! play "$E2E_DIR/pods/lost.yaml"; then fail "$pod: podman kube play failed"; return; fi
  if ! wait_log "$pod" work working 15; then fail "$pod: work did not start"; fi
  sleep 0.5
  t_kill=$(now_ms)
  podman kill -s KILL "$pod-work" >/dev/null 2>&1
  if ! wait_pod "$pod" 15; then
    fail "$pod: the steps after the killed one hang: $(pod_states "$pod" | tr '\n' ' ')"
    podman pod stop -t 1 "$pod" >/dev/null 2>&1
  fi
  lost_checks "$pod" "$t_kill"
}

scenario_budget() {
  local pod=baton-e2e-budget dir numbers
  play_and_wait "$E2E_DIR/pods/budget.yaml" || return
  collect "$pod"
  dir=$(pod_dir "$pod")
  numbers=$(seq 1 900 | tr '\n' ',')
  expect_phase "$pod" Failed
  expect_step "$pod" packed 0 0 Completed
  check "$pod/packed: the message ($(wc -c < "$dir/containers/packed/termination-log") bytes) fits the kubelet's 3072, results compressed" \
    jq -e --rawfile m "$dir/containers/packed/termination-log" '($m | length) <= 3072 and ($m | fromjson | .resultsDeflate != null)' -n
  expect_results "$pod" packed "$(jq -n -c --arg v "$numbers" '{numbers: $v}')"
  check "$pod/careless: the kubelet cut its $(wc -c < "$dir/containers/careless/termination-log")-byte message to 3072 bytes" \
    test "$(wc -c < "$dir/containers/careless/message")" -eq 3072
  if [ -s "$dir/batonctl.json" ]; then
    expect_error "$pod" careless "pass --message-limit 3072"
  else
    skip "$pod/careless: the explanation of a cut message is batonctl's"
  fi
  expect_step "$pod" toolarge 125 0 ResultsError
  expect_error "$pod" toolarge "largest: noise (4000 bytes)"
  check "$pod/toolarge: still a valid, complete record" \
    jq -e '.baton == 1 and .reason == "ResultsError"' "$dir/containers/toolarge/message"
}

scenario_cannotrun() {
  local pod=baton-e2e-cannotrun t0 waited
  t0=$(now_ms)
  # podman kube play reports the container it could not start (exit 125): part of the test.
  play "$E2E_DIR/pods/cannotrun.yaml"
  [ "$PLAYED" = "$pod" ] || { fail "$pod: podman kube play failed"; return; }
  wait_pod "$pod" 20 || { fail "$pod: test still waits after 20 s despite --wait-timeout=3s"; podman pod stop -t 1 "$pod" >/dev/null 2>&1; }
  waited=$(( $(now_ms) - t0 ))
  collect "$pod"
  expect_phase "$pod" Failed
  expect_step "$pod" build 128 128 StartError
  expect_step "$pod" test 125 null WaitTimedOut
  expect_error "$pod" test "step build"
  check "$pod: the wait ended with --wait-timeout (pod done after $waited ms)" test "$waited" -lt 15000
}

scenario_nonroot() {
  local pod=baton-e2e-nonroot
  play_and_wait "$E2E_DIR/pods/nonroot.yaml" || return
  collect "$pod"
  expect_phase "$pod" Succeeded
  expect_step "$pod" baton-init 0 0 Completed
  expect_step "$pod" scan 0 0 Completed
  expect_step "$pod" publish 0 0 Completed
  expect_results "$pod" scan '{"rootfs":"read-only","uid":"65532"}'
  expect_results "$pod" publish '{"seen":"scan ran as 65532: scanned as 65532, root filesystem read-only","uid":"0"}'
  check "$pod: the init container ran as 65532 (the image's user)" \
    test "$(podman inspect "$pod-baton-init" --format '{{.Config.User}}')" = "65532:65532"
  expect_handoff "$pod" scan publish
}

# baton_exec POD CONTAINER ARGS...: runs /var/run/baton/bin/baton in a running container.
baton_exec() { local pod=$1 c=$2; shift 2; podman exec "$pod-$c" /var/run/baton/bin/baton "$@"; }

scenario_exec() {
  local pod=baton-e2e-exec out rc i
  if ! "$BATON_BIN" status --help >/dev/null 2>&1; then
    skip "exec: baton has no status/kill commands yet (issue 3)"
    return
  fi
  if ! play "$E2E_DIR/pods/exec.yaml"; then fail "$pod: podman kube play failed"; return; fi
  # The scratch image has no shell: everything below runs baton itself, from the shared folder.
  for i in $(seq 1 100); do
    out=$(baton_exec "$pod" hold status --json 2>/dev/null) \
      && jq -e '[.[] | select(.step == "hold" and .state == "running")] | length == 1' <<<"$out" >/dev/null \
      && jq -e '[.[] | select(.state == "waiting")] | length == 2' <<<"$out" >/dev/null \
      && jq -e '[.[] | select(.step == "worker" and .state == "running")] | length == 1' <<<"$out" >/dev/null && break
    sleep 0.1
  done
  check "$pod: podman exec into the scratch step runs baton status" \
    bash -c "podman exec $pod-hold /var/run/baton/bin/baton status > '$(pod_dir "$pod")/status.txt' 2>&1"
  sed 's/^/      /' "$(pod_dir "$pod")/status.txt"
  check "$pod: baton status --json: hold and worker running, gated waiting for its gate, next waiting for hold and gated" \
    jq -e '
      (map(select(.step == "hold"))[0].state == "running") and (map(select(.step == "worker"))[0].state == "running")
      and (map(select(.step == "gated"))[0] | .state == "waiting" and (.waitingFor | any(test("gate"))))
      and (map(select(.step == "next"))[0] | .state == "waiting" and (.waitingFor | any(test("hold"))) and (.waitingFor | any(test("gated"))))' \
      <<<"$out"
  out=$(baton_exec "$pod" hold kill no-such-step 2>&1); rc=$?
  check "$pod: baton kill of an unknown step exits 1 with a sentence ($out)" test "$rc" -eq 1 -a -n "$out"
  out=$(baton_exec "$pod" hold release gated 2>&1); rc=$?
  check "$pod: baton release gated exits 0 ($out)" test "$rc" -eq 0
  out=$(baton_exec "$pod" hold kill -s KILL worker 2>&1); rc=$?
  check "$pod: baton kill -s KILL worker, a root step in another container, from the 65532 one, exits 0 ($out)" test "$rc" -eq 0
  out=$(baton_exec "$pod" hold kill 2>&1); rc=$?
  check "$pod: baton kill (no STEP: this container's step, hold) exits 0 ($out)" test "$rc" -eq 0
  if ! wait_pod "$pod" 15; then
    fail "$pod: steps still running after kill and release: $(pod_states "$pod" | tr '\n' ' ')"
    podman pod stop -t 1 "$pod" >/dev/null 2>&1
  fi
  collect "$pod"
  expect_phase "$pod" Failed
  expect_step "$pod" hold 143 143 Failed
  expect_step "$pod" worker 137 137 Failed
  expect_step "$pod" gated 0 0 Completed
  expect_step "$pod" next 0 0 Completed
  expect_handoff "$pod" "hold gated" next
}

# ---------------------------------------------------------------------------------------------------


T_START=$(now_ms)
ensure_tools
ensure_baton_binary
say "building images $BATON_IMAGE and $STEP_IMAGE (podman build, no network)"
build_images
say "baton image: $(image_size "$BATON_IMAGE") bytes; step image: $(image_size "$STEP_IMAGE") bytes"
BATONCTL_BIN=$(find_batonctl)
if [ "$BATONCTL_BIN" = BUILD-FAILED ]; then
  fail "batonctl: crates/baton-controller has a batonctl binary, but it does not build"
  BATONCTL_BIN=""
elif [ -z "$BATONCTL_BIN" ]; then
  skip "batonctl: not used (BATONCTL=none, or crates/baton-controller has no binary); asserting on the harness's own reading of the termination messages"
fi
export BATONCTL_BIN

for s in "${WANT[@]}"; do
  say "scenario $s"
  "scenario_$s"
done

say "e2e took $(( ($(now_ms) - T_START) / 1000 )) s"
summary
