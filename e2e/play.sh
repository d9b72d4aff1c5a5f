#!/usr/bin/env bash
# e2e/play.sh: `batonctl play` on podman (docs/play.md).
#
# Plays examples/pipeline.yaml and examples/failure.yaml through `batonctl play`, the pipeline once
# more as the pod template of a Job (kept with --keep, then removed here), a pod stopped by Ctrl-C, a
# pod whose image is missing and one podman refuses; asserts the exit codes (0 succeeded, 1 failed, 3 not played), the run status it prints
# (-o json), the live view's lines, the Pod JSON it keeps (read back with `batonctl status`), and that
# nothing is left behind without --keep.
#
# Images: BATON_IMAGE (default localhost/baton:play) and STEP_IMAGE (default
# localhost/busybox-step:play), built here (e2e/lib.sh build_images); the examples' own tags are
# rewritten to them. Pods are named play-*. BATONCTL=path uses that batonctl (default: built with
# cargo). E2E_KEEP=1 keeps the work folder. Prints one PASS/FAIL line per check; exits 1 on a FAIL.
set -uo pipefail

E2E_NAME=play-e2e
export BATON_IMAGE=${BATON_IMAGE:-localhost/baton:play}
export STEP_IMAGE=${STEP_IMAGE:-localhost/busybox-step:play}
# shellcheck source=e2e/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); printf 'PASS  %s\n' "$*"; }
fail() { FAILED=$((FAILED + 1)); printf 'FAIL  %s\n' "$*"; }
# check DESCRIPTION COMMAND...: PASS when the command succeeds.
check() { local what=$1; shift; if "$@" >/dev/null 2>&1; then pass "$what"; else fail "$what"; fi; }

PODS=(play-pipeline play-failure play-job play-stop play-missing play-refused)
E2E_WORK=$(mktemp -d "${TMPDIR:-/tmp}/baton-play-e2e.XXXXXX")
finish() {
  local p v
  # batonctl play removes what it made; this is for an interrupted run and the --keep check.
  for p in "${PODS[@]}"; do
    remove_pod "$p"
    for v in baton workspace; do podman volume rm -f "$p--$v" >/dev/null 2>&1; done
  done
  if [ "$FAILED" -eq 0 ] && [ "${E2E_KEEP:-0}" != 1 ]; then rm -rf "$E2E_WORK"; else say "work folder: $E2E_WORK"; fi
}
trap finish EXIT
trap 'exit 130' INT TERM

ensure_tools
ensure_baton_binary
say "building images $BATON_IMAGE and $STEP_IMAGE (podman build, no network)"
build_images
BATONCTL_BIN=$(find_batonctl)
if [ -z "$BATONCTL_BIN" ] || [ "$BATONCTL_BIN" = BUILD-FAILED ]; then die "batonctl does not build"; fi
# batonctl play chooses no settings file when CONTAINERS_CONF is set (lib.sh sets it).

# with_images FILE: the manifest with this script's image tags.
with_images() { sed -e "s#localhost/baton:0.1.0#$BATON_IMAGE#g" -e "s#localhost/busybox-step:dev#$STEP_IMAGE#g" "$1"; }

# play_pod NAME FILE [ARGS...]: batonctl play -o json; sets RC, TOOK (ms); status in NAME.json, live
# view in NAME.err, work folder NAME/.
play_pod() {
  local name=$1 file=$2 t0
  shift 2
  t0=$(now_ms)
  "$BATONCTL_BIN" play -f "$file" -o json --work-dir "$E2E_WORK/$name" "$@" \
    > "$E2E_WORK/$name.json" 2> "$E2E_WORK/$name.err"
  RC=$?
  TOOK=$(( $(now_ms) - t0 ))
  sed 's/^/      /' "$E2E_WORK/$name.err"
}
# step NAME STEP FIELD: a step's field in the run status batonctl play printed.
step() { jq -c --arg s "$2" --arg f "$3" '.steps[] | select(.name == $s) | .[$f]' "$E2E_WORK/$1.json"; }
phase() { jq -r .phase "$E2E_WORK/$1.json"; }
# The path of the Pod JSON that batonctl play names on stderr.
pod_json_of() { sed -n 's/^batonctl: the Pod JSON, in the kubelet.s shape: \([^ ]*\) .*/\1/p' "$E2E_WORK/$1.err"; }
gone() { ! podman pod exists "$1" && ! podman volume exists "$1--baton" && ! podman volume exists "$1--workspace"; }
ms() { jq -r "$JQ_MS"' ms' <<<"$1"; }

# --- the pipeline: three steps one after the other, results handed over -----------------------------
with_images "$REPO/examples/pipeline.yaml" > "$E2E_WORK/pipeline.yaml"
play_pod play-pipeline "$E2E_WORK/pipeline.yaml" --name play-pipeline
say "play-pipeline: batonctl play took $TOOK ms"
check "play-pipeline: exit 0 (got $RC)" test "$RC" = 0
check "play-pipeline: phase Succeeded" test "$(phase play-pipeline)" = Succeeded
for s in fetch build publish; do
  check "play-pipeline/$s: Completed, exit code 0" \
    test "$(step play-pipeline $s reason) $(step play-pipeline $s exitCode)" = '"Completed" 0'
done
check "play-pipeline: results handed over (url of build's artifact)" \
  test "$(jq -r .results.url "$E2E_WORK/play-pipeline.json")" = file:///workspace/published/app-v1.2.3.tar
fetch_end=$(ms "$(step play-pipeline fetch finishedAt)")
build_start=$(ms "$(step play-pipeline build startedAt)")
check "play-pipeline: build started after fetch ended ($((build_start - fetch_end)) ms)" test "$build_start" -ge "$fetch_end"
check "play-pipeline: the live view says build waited for fetch" grep -Eq '^ +[0-9.]+s  build +waiting for step fetch$' "$E2E_WORK/play-pipeline.err"
check "play-pipeline: the live view says each container started and ended" \
  bash -c "for s in baton-init fetch build publish; do grep -Eq \"s  \$s +started\$\" '$E2E_WORK/play-pipeline.err' && grep -Eq \"s  \$s +ended Completed, exit code 0\" '$E2E_WORK/play-pipeline.err' || exit 1; done"
pj=$(pod_json_of play-pipeline)
check "play-pipeline: the Pod JSON is where stderr says ($pj)" test "$pj" = "$E2E_WORK/play-pipeline/pod.json" -a -s "$pj"
check "play-pipeline: batonctl status --exit-status on the kept Pod JSON: 0" "$BATONCTL_BIN" status --exit-status -f "$pj"
check "play-pipeline: the Pod JSON has the kubelet's messages (4 containers: 3072 bytes each at most)" \
  jq -e '[.status.containerStatuses[].state.terminated.message | length] | all(. > 0 and . <= 3072)' "$pj"
check "play-pipeline: without --keep the pod and its volumes are removed" gone play-pipeline
check "play-pipeline: without --keep only the Pod JSON and podman's output stay" \
  test "$(cd "$E2E_WORK/play-pipeline" && echo *)" = "play.log pod.json"

# --- the failure example: a failed step, the Skipped cascade, a :done step -----------------------------
with_images "$REPO/examples/failure.yaml" > "$E2E_WORK/failure.yaml"
play_pod play-failure "$E2E_WORK/failure.yaml" --name play-failure
say "play-failure: batonctl play took $TOOK ms"
check "play-failure: exit 1 (got $RC)" test "$RC" = 1
check "play-failure: phase Failed" test "$(phase play-failure)" = Failed
check "play-failure/test: Failed, exit code 3" test "$(step play-failure test reason) $(step play-failure test exitCode)" = '"Failed" 3'
for s in package upload; do
  check "play-failure/$s: Skipped, no exit code" test "$(step play-failure $s reason) $(step play-failure $s exitCode)" = '"Skipped" null'
done
check "play-failure/notify: Completed, reports test's result" \
  test "$(step play-failure notify reason) $(jq -r .results.message "$E2E_WORK/play-failure.json")" = '"Completed" tests failed: 2'
check "play-failure: the live view gives test's end with the step's reason" \
  grep -Eq 's  test +ended Error, exit code 3 \(step Failed\)$' "$E2E_WORK/play-failure.err"
check "play-failure: batonctl status --exit-status on the Pod JSON: 1" \
  bash -c "'$BATONCTL_BIN' status --exit-status -f '$(pod_json_of play-failure)' >/dev/null; test \$? = 1"
check "play-failure: the pod and its volumes are removed" gone play-failure

# --- plain manifests, written without baton: batonctl inject | batonctl play --------------------------
# (issue 12: "a Job with three sequential steps, a DAG by annotations, a sidecar", injected and played)
# started / finished (ms) of a step in NAME's run status
t_of() { ms "$(step "$1" "$2" "$3" | tr -d '"')"; }
inject_play() { # inject_play NAME FILE: inject with this script's baton image, then play
  with_images "$2" | "$BATONCTL_BIN" inject -f - --image "$BATON_IMAGE" > "$E2E_WORK/$1.injected.yaml" 2> "$E2E_WORK/$1.inject.err" \
    || { cat "$E2E_WORK/$1.inject.err"; return 1; }
  play_pod "$1" "$E2E_WORK/$1.injected.yaml" --name "$1"
}
if inject_play play-plain-steps "$REPO/examples/plain/job-steps.yaml"; then
  check "plain job-steps: injected and played: exit 0, Succeeded (got $RC, $(phase play-plain-steps))" \
    test "$RC $(phase play-plain-steps)" = "0 Succeeded"
  check "plain job-steps: fetch, build, publish ran one after another" bash -c "
    [ $(t_of play-plain-steps build startedAt) -ge $(t_of play-plain-steps fetch finishedAt) ] &&
    [ $(t_of play-plain-steps publish startedAt) -ge $(t_of play-plain-steps build finishedAt) ]"
else
  fail "plain job-steps: batonctl inject failed"
fi
if inject_play play-plain-dag "$REPO/examples/plain/dag.yaml"; then
  check "plain dag: injected and played: exit 0, Succeeded (got $RC, $(phase play-plain-dag))" \
    test "$RC $(phase play-plain-dag)" = "0 Succeeded"
  check "plain dag: unit and lint after prepare, report after both" bash -c "
    p=$(t_of play-plain-dag prepare finishedAt)
    [ $(t_of play-plain-dag unit startedAt) -ge \$p ] && [ $(t_of play-plain-dag lint startedAt) -ge \$p ] &&
    [ $(t_of play-plain-dag report startedAt) -ge $(t_of play-plain-dag unit finishedAt) ] &&
    [ $(t_of play-plain-dag report startedAt) -ge $(t_of play-plain-dag lint finishedAt) ]"
else
  fail "plain dag: batonctl inject failed"
fi
if inject_play play-plain-sidecar "$REPO/examples/plain/sidecar.yaml"; then
  check "plain sidecar: injected and played: exit 0, Succeeded (got $RC, $(phase play-plain-sidecar))" \
    test "$RC $(phase play-plain-sidecar)" = "0 Succeeded"
  check "plain sidecar: the log shipper was stopped once main ended (Stopped)" \
    test "$(step play-plain-sidecar log-shipper reason)" = '"Stopped"'
else
  fail "plain sidecar: batonctl inject failed"
fi

# --- a Job: its pod template, named after it; --keep keeps the pod -----------------------------------
yaml_to_json "$E2E_WORK/pipeline.yaml" | jq '{apiVersion: "batch/v1", kind: "Job", metadata: {name: "play-job"},
  spec: {backoffLimit: 0, template: {metadata: {labels: .metadata.labels}, spec: .spec}}}' > "$E2E_WORK/job.json"
play_pod play-job "$E2E_WORK/job.json" --keep
check "play-job: exit 0, phase Succeeded (got $RC, $(phase play-job))" test "$RC $(phase play-job)" = "0 Succeeded"
check "play-job: the pod is named after the Job and labelled as the Job controller labels it" \
  jq -e '.metadata.name == "play-job" and .metadata.labels["job-name"] == "play-job"' "$(pod_json_of play-job)"
check "play-job: --keep keeps the pod and its volumes" bash -c "podman pod exists play-job && podman volume exists play-job--baton"
check "play-job: --keep keeps the termination-message files" test -f "$E2E_WORK/play-job/containers/fetch/termination-log"

# --- Ctrl-C: the pod is stopped as a deletion stops it ---------------------------------------------------
cat > "$E2E_WORK/stop.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata: {name: play-stop}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 5
  initContainers:
  - {name: baton-init, image: $BATON_IMAGE, command: [/baton, init, --dir, /var/run/baton], volumeMounts: [{name: baton, mountPath: /var/run/baton}]}
  containers:
  - {name: work, image: $STEP_IMAGE, command: [/var/run/baton/bin/baton, run, --name=work, --, sleep, "60"], volumeMounts: [{name: baton, mountPath: /var/run/baton}]}
  - {name: next, image: $STEP_IMAGE, command: [/var/run/baton/bin/baton, run, --name=next, --after=work, --, "true"], volumeMounts: [{name: baton, mountPath: /var/run/baton}]}
  volumes:
  - {name: baton, emptyDir: {medium: Memory}}
EOF
"$BATONCTL_BIN" play -f "$E2E_WORK/stop.yaml" -o json --work-dir "$E2E_WORK/play-stop" > "$E2E_WORK/play-stop.json" 2> "$E2E_WORK/play-stop.err" &
bp=$!
deadline=$(( $(now_ms) + 30000 ))
until grep -Eq 's  work +running$' "$E2E_WORK/play-stop.err" || [ "$(now_ms)" -gt "$deadline" ]; do sleep 0.1; done
t0=$(now_ms)
kill -INT "$bp"
wait "$bp"
RC=$?
TOOK=$(( $(now_ms) - t0 ))
sed 's/^/      /' "$E2E_WORK/play-stop.err"
check "play-stop: Ctrl-C ends the run in $TOOK ms (grace 5 s): exit 1, phase Failed (got $RC, $(phase play-stop))" \
  test "$RC $(phase play-stop)" = "1 Failed" -a "$TOOK" -lt 5000
check "play-stop/work: the SIGTERM reached its command: Failed, exit code 143" \
  test "$(step play-stop work reason) $(step play-stop work exitCode)" = '"Failed" 143'
# next hears its SIGTERM (Cancelled) or sees work end first (Skipped): podman signals the containers
# one by one, so either is a right end of a deleted pod; it never runs its command.
check "play-stop/next: cancelled or skipped while waiting, never run ($(step play-stop next reason))" \
  bash -c "case '$(step play-stop next reason)' in '\"Cancelled\"'|'\"Skipped\"') true ;; *) false ;; esac && [ '$(step play-stop next startedAt)' = null ]"
check "play-stop: the pod and its volumes are removed" gone play-stop

# --- an image podman does not have: nothing is played ---------------------------------------------------
sed "s#$STEP_IMAGE#localhost/busybox-step:play-no-such-tag#g" "$E2E_WORK/pipeline.yaml" > "$E2E_WORK/missing.yaml"
play_pod play-missing "$E2E_WORK/missing.yaml" --name play-missing
check "play-missing: exit 3 (got $RC)" test "$RC" = 3
check "play-missing: one sentence naming the image and how to build it" \
  grep -q "^batonctl: the image localhost/busybox-step:play-no-such-tag is not in podman's image store: build it" "$E2E_WORK/play-missing.err"
check "play-missing: no pod, no volume" gone play-missing

# --- a pod podman refuses: nothing is left waiting --------------------------------------------------------
printf '%s\n' 'apiVersion: v1' 'kind: Pod' 'metadata: {name: play-refused}' 'spec:' '  restartPolicy: Never' \
  "  containers: [{name: a, image: $STEP_IMAGE, command: [\"true\"], volumeMounts: [{name: nowhere, mountPath: /x}]}]" \
  > "$E2E_WORK/refused.yaml"
play_pod play-refused "$E2E_WORK/refused.yaml"
check "play-refused: exit 3 with podman's reason (got $RC)" \
  bash -c "test $RC = 3 && grep -q '^batonctl: podman kube play did not start pod play-refused: volume mount nowhere' '$E2E_WORK/play-refused.err'"
check "play-refused: no pod, no volume" gone play-refused

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
