#!/usr/bin/env bash
# e2e/argo.sh: baton as Argo Workflows' emissary, on podman.
#
# Plays two Pods shaped exactly as Argo's controller generates them for a container-set template
# (e2e/argo/containerset.yaml, containerset-fail.yaml: init + wait + members + a sidecar), with the
# executor image built from argo.Containerfile on a stand-in for the upstream argoexec image
# (e2e/argo/upstream.Containerfile: busybox and e2e/argo/argoexec-standin.sh, whose `init` copies
# `argoexec` from PATH, i.e. baton, and writes the template, and whose `wait` waits for the exitcode
# files and reports the exit codes and outputs). The harness plays the kubelet's part (e2e/lib.sh:
# termination messages, fresh emptyDirs, the Pod status).
#
# It asserts exit codes, the exitcode files, the order of the members, Argo's retry count and pause,
# the outputs of main as the wait container reads them, the sidecar stop, a failed dependency and a
# lost one (member d's container SIGKILLed: its dependent must end within LOST_MS, where Argo's own
# emissary waits until the pod's deadline), and measures the dependency handoff: from a member's
# exitcode file (its mtime in the emptyDir) to the start of the member that waits for it. Argo's
# emissary polls every 1 s there (v3.x; v4.1 watches with fsnotify).
#
# Usage: e2e/argo.sh          (ROUNDS=N timed rounds of the container set, default 2; E2E_KEEP=1 keeps
#                              pods and volumes; LOST_MS, default 1000)
# Images (tags of this suite's own): ARGO_EXECUTOR_IMAGE (the executor image, default
# localhost/argoexec-baton:argo), STEP_IMAGE (default localhost/busybox-step:argo), ARGO_UPSTREAM_IMAGE
# (the stand-in, default localhost/argoexec-upstream-standin:argo).
set -uo pipefail

E2E_NAME=argo-e2e
ARGO_EXECUTOR_IMAGE=${ARGO_EXECUTOR_IMAGE:-localhost/argoexec-baton:argo}
STEP_IMAGE=${STEP_IMAGE:-localhost/busybox-step:argo}
ARGO_UPSTREAM_IMAGE=${ARGO_UPSTREAM_IMAGE:-localhost/argoexec-upstream-standin:argo}
# shellcheck source=e2e/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

ROUNDS=${ROUNDS:-2}
LOST_MS=${LOST_MS:-1000}
ARGO_E2E="$E2E_DIR/argo"

E2E_WORK=$(mktemp -d /tmp/baton-argo-e2e.XXXXXX)
FAILED=0
PASSED=0
finish() {
  e2e_cleanup
  if [ "${E2E_KEEP:-0}" = 1 ] || [ "$FAILED" -gt 0 ]; then say "artifacts in $E2E_WORK"; else rm -rf "$E2E_WORK"; fi
}
trap finish EXIT

check() { # check DESCRIPTION COMMAND...: one assertion, said either way
  local what=$1
  shift
  if "$@"; then say "ok: $what"; PASSED=$((PASSED + 1)); else say "FAIL: $what"; FAILED=$((FAILED + 1)); fi
}
eq() { [ "$1" = "$2" ] || { say "  expected [$2], got [$1]"; return 1; }; }
contains() { [[ "$1" == *"$2"* ]] || { say "  [$1] does not contain [$2]"; return 1; }; }

# ---------------------------------------------------------------------------------------------------
# Images: the step image, the stand-in upstream image, and the executor image argo.Containerfile
# builds on it (the same file an install builds on quay.io/argoproj/argoexec).

ensure_tools
ensure_baton_binary
say "binary: $BATON_BIN, $(stat -c %s "$BATON_BIN") bytes"
old_ids=()
for image in "$STEP_IMAGE" "$ARGO_UPSTREAM_IMAGE" "$ARGO_EXECUTOR_IMAGE"; do
  old_ids+=("$(podman image inspect "$image" --format '{{.Id}}' 2>/dev/null)")
done
build_step_image
build_argo_images "$ARGO_UPSTREAM_IMAGE" "$ARGO_EXECUTOR_IMAGE"
# The images these replaced, now untagged: removed unless a container still uses them.
forget_image "${old_ids[0]}" "$STEP_IMAGE"
forget_image "${old_ids[1]}" "$ARGO_UPSTREAM_IMAGE"
forget_image "${old_ids[2]}" "$ARGO_EXECUTOR_IMAGE"
say "images: $ARGO_EXECUTOR_IMAGE (executor: stand-in upstream + baton as /bin/argoexec), $ARGO_UPSTREAM_IMAGE, $STEP_IMAGE"

# ---------------------------------------------------------------------------------------------------
# Helpers

# pod_file YAML OUT: the Pod as written, with this run's image tags.
pod_file() {
  yaml_to_json "$1" | jq --arg exec "$ARGO_EXECUTOR_IMAGE" --arg step "$STEP_IMAGE" '
    def retag: .image |= (if . == "localhost/argoexec-baton:argo" then $exec
                          elif . == "localhost/busybox-step:argo" then $step else . end);
    .spec.initContainers |= map(retag) | .spec.containers |= map(retag)' > "$2"
}

volume() { podman volume inspect "$1--$2" --format '{{.Mountpoint}}'; }
mtime_ms() { local s; s=$(stat -c %.3Y "$1" 2>/dev/null) || { echo ""; return 1; }; echo "${s/./}"; }
# container_json POD NAME: its status in the Pod JSON the harness's kubelet wrote.
container_json() {
  jq -c --arg n "$2" '[.status.initContainerStatuses[]?, .status.containerStatuses[]] | map(select(.name == $n))[0]
    | {exitCode: .state.terminated.exitCode, message: (.state.terminated.message // "")}' "$(pod_dir "$1")/pod.json"
}
exit_of() { container_json "$1" "$2" | jq -r .exitCode; }
message_of() { container_json "$1" "$2" | jq -r .message; }
# finished_ms POD NAME: when podman saw the container end (ms).
finished_ms() {
  local t
  t=$(podman inspect "$1-$2" --format '{{.State.FinishedAt.UnixNano}}' 2>/dev/null) || return 1
  echo $((t / 1000000))
}
members_ended() { ! pod_states "$1" | grep -E "^$1-($2) " | grep -Eq ' (running|created|configured|initialized)$'; }

# ---------------------------------------------------------------------------------------------------
# The container set: a -> (b, flaky) -> main, with a sidecar; ROUNDS times for the handoff figures.

HANDOFFS=()
SIDECAR_STOPS=()
for round in $(seq 1 "$ROUNDS"); do
  file="$E2E_WORK/containerset-$round.json"
  pod_file "$ARGO_E2E/containerset.yaml" "$file"
  play "$file" || { cat "$(pod_dir argo-e2e-cs)/play.log" >&2; die "podman kube play failed"; }
  pod=$PLAYED
  wait_pod "$pod" 60 || { check "round $round: the pod ends within 60 s ($(pod_states "$pod" | tr '\n' ' '))" false; podman pod stop -t 1 "$pod" >/dev/null 2>&1; }
  kubelet_status "$pod"
  argo=$(volume "$pod" var-run-argo)
  ws=$(volume "$pod" workspace)
  if [ "$round" = 1 ]; then
    for c in init wait a b flaky main proxy; do say "$c: exit $(exit_of "$pod" "$c") $(message_of "$pod" "$c")"; done
    for c in init wait a b flaky main; do check "$c exits 0" eq "$(exit_of "$pod" $c)" 0; done
    check "the sidecar proxy was stopped by its emissary with SIGTERM once every member ended (143)" eq "$(exit_of "$pod" proxy)" 143
    for c in a b flaky main; do check "ctr/$c/exitcode is 0" eq "$(cat "$argo/ctr/$c/exitcode" 2>&1)" 0; done
    check "ctr/proxy/exitcode is 143" eq "$(cat "$argo/ctr/proxy/exitcode" 2>&1)" 143
    check "ctr/<name>/ is mode 777" eq "$(stat -c %a "$argo/ctr/main")" 777
    check "init installed baton as /var/run/argo/argoexec (mode 555)" all_ok cmp -s "$argo/argoexec" "$BATON_BIN"
    check "  ... with mode 555" eq "$(stat -c %a "$argo/argoexec")" 555
    check "init (the upstream stand-in, through baton's delegation) wrote the template (mode 444)" eq "$(stat -c %a "$argo/template")" 444
    check "flaky ran twice (retries \"2\": two runs in all)" eq "$(wc -l < "$ws/flaky.runs")" 2
    gap=$(( $(mtime_ms "$ws/flaky.run2") - $(mtime_ms "$ws/flaky.run1") ))
    # File times come from the kernel's coarse clock (a tick, up to 10 ms), the retry's pause from the
    # monotonic one: a 1 s pause can show as 999 ms between two mtimes.
    check "flaky's second run came after the 1s duration (${gap} ms, mtimes to a clock tick)" [ "$gap" -ge 990 ]
    check "flaky's output copies hold both runs" contains "$(cat "$argo/ctr/flaky/combined")" $'intentional failure\nflaky done'
    check "main's stdout copy" eq "$(cat "$argo/ctr/main/stdout")" "main done"
    check "output parameter /tmp/greeting saved for wait" eq "$(cat "$argo/outputs/parameters/tmp/greeting")" hello
    check "output artifact /tmp/report/ saved as report.tgz" eq "$(tar tzf "$argo/outputs/artifacts/tmp/report.tgz" | tr '\n' ' ')" "report report/one.txt report/sub report/sub/two.txt "
    check "wait read every exit code and output" eq "$(message_of "$pod" wait)" \
      "exitcodes a=0 b=0 flaky=0 main=0; parameter /tmp/greeting=hello; artifact /tmp/report=report report/one.txt report/sub report/sub/two.txt "
  fi
  a_end=$(mtime_ms "$argo/ctr/a/exitcode")
  b_end=$(mtime_ms "$argo/ctr/b/exitcode")
  f_end=$(mtime_ms "$argo/ctr/flaky/exitcode")
  m_end=$(mtime_ms "$argo/ctr/main/exitcode")
  b_start=$(mtime_ms "$ws/b.started")
  f_start=$(mtime_ms "$ws/flaky.started")
  m_start=$(mtime_ms "$ws/main.started")
  p_end=$(mtime_ms "$argo/ctr/proxy/exitcode")
  last_dep=$(( b_end > f_end ? b_end : f_end ))
  if [ -n "$a_end" ] && [ -n "$b_start" ] && [ -n "$f_start" ] && [ -n "$m_start" ] && [ -n "$p_end" ]; then
    check "round $round: b and flaky started after a ended, main after both" \
      all_ok [ "$b_start" -ge "$a_end" ] -- [ "$f_start" -ge "$a_end" ] -- [ "$m_start" -ge "$last_dep" ]
    say "round $round: a -> b $((b_start - a_end)) ms, a -> flaky $((f_start - a_end)) ms, (b, flaky) -> main $((m_start - last_dep)) ms; main -> sidecar stopped $((p_end - m_end)) ms"
    HANDOFFS+=("$((b_start - a_end))" "$((f_start - a_end))" "$((m_start - last_dep))")
    SIDECAR_STOPS+=("$((p_end - m_end))")
  else
    check "round $round: every member left its timestamps (see $(pod_dir "$pod"))" false
  fi
  remove_pod "$pod"
done

# ---------------------------------------------------------------------------------------------------
# The failures: a exits 3 (b must not run); d's container is SIGKILLed while c waits for it.

pod_file "$ARGO_E2E/containerset-fail.yaml" "$E2E_WORK/containerset-fail.json"
play "$E2E_WORK/containerset-fail.json" || { cat "$(pod_dir argo-e2e-fail)/play.log" >&2; die "podman kube play failed"; }
pod=$PLAYED
argo=$(volume "$pod" var-run-argo)
ws=$(volume "$pod" workspace)
until_true 30 test -e "$ws/d.started" || die "member d never started"
until_true 30 test -e "$argo/ctr/c/baton.lock" || die "member c never started"
sleep 0.3 # c is past its start-up and waits for d
podman kill --signal KILL "$pod-d" >/dev/null || die "podman kill $pod-d failed"
until_true 30 members_ended "$pod" 'a|b|c|d' || check "the members end after d was killed ($(pod_states "$pod" | tr '\n' ' '))" false
podman pod stop -t 2 "$pod" >/dev/null 2>&1 # the wait container waits for d's exitcode, which never comes
kubelet_status "$pod"
for c in a b c d; do say "fail pod: $c: exit $(exit_of "$pod" "$c") $(message_of "$pod" "$c")"; done
check "a exits 3" eq "$(exit_of "$pod" a)" 3
check "b exits 64 (Argo: the node is an Error), its exitcode file holds a's 3" all_ok eq "$(exit_of "$pod" b)" 64 -- eq "$(cat "$argo/ctr/b/exitcode")" 3
check "b never ran its command" test ! -e "$ws/b.ran"
check "b's termination message names its dependency" contains "$(message_of "$pod" b)" 'its dependency "a" ended with exit code 3'
check "d died of SIGKILL without an exitcode file" all_ok eq "$(exit_of "$pod" d)" 137 -- test ! -e "$argo/ctr/d/exitcode"
check "c exits 143 with exitcode 143 (Argo: the controller's kill 15 1, the node Failed), its command never ran" all_ok eq "$(exit_of "$pod" c)" 143 -- eq "$(cat "$argo/ctr/c/exitcode")" 143 -- test ! -e "$ws/c.ran"
check "c's termination message says d was lost" contains "$(message_of "$pod" c)" 'its dependency "d" ended without writing'
lost=$(( $(finished_ms "$pod" c) - $(finished_ms "$pod" d) ))
say "d killed -> c ended: ${lost} ms (Argo's emissary: until the pod's deadline)"
check "c ended within ${LOST_MS} ms of d's death (${lost} ms)" [ "$lost" -lt "$LOST_MS" ]
remove_pod "$pod"

# ---------------------------------------------------------------------------------------------------
# Summary

stats() { [ $# -gt 0 ] || { echo "no data"; return; }; printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1; s+=$1} END {printf "n=%d min=%d median=%d mean=%.1f max=%d ms", NR, v[1], v[int((NR+1)/2)], s/NR, v[NR]}'; }
say "dependency handoff (exitcode file -> the dependent's command started): $(stats "${HANDOFFS[@]}")"
say "sidecar stop (last member's exitcode -> the sidecar's exitcode, TERM included): $(stats "${SIDECAR_STOPS[@]}")"
say "Argo's emissary polls for dependencies every 1000 ms (v3.x): 0-1000 ms, 500 ms on average, plus its 1 s reaper loop after the command's exit."
say "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
