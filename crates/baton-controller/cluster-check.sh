#!/usr/bin/env bash
# Runs `batonctl watch --annotate` and `batonctl status` against a real cluster (kind, or whatever
# KUBECONFIG points at), with a pod whose containers write baton records, a log tail and an empty message.
# Exits 0 with "skipped: no cluster" when kubectl cannot reach an API server.
#
# Environment:
#   BATONCTL        a built batonctl (default: built here with cargo)
#   NAMESPACE       where the check pod runs (default: the kubeconfig's namespace, else default)
#   BUSYBOX_IMAGE   the image of the check pod (default: busybox:1.36)
#   CHECK_TIMEOUT   seconds to wait for the pod to end (default: 180)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
image="${BUSYBOX_IMAGE:-busybox:1.36}"
timeout="${CHECK_TIMEOUT:-180}"

say() { printf 'cluster-check: %s\n' "$*" >&2; }
fail() { say "FAILED: $*"; exit 1; }

if ! command -v kubectl >/dev/null 2>&1; then
    echo "cluster-check: skipped: no cluster (kubectl is not installed)"
    exit 0
fi
if ! kubectl get --raw=/readyz --request-timeout=5s >/dev/null 2>&1; then
    echo "cluster-check: skipped: no cluster (kubectl cannot reach an API server; set KUBECONFIG)"
    exit 0
fi

command -v jq >/dev/null 2>&1 || fail "jq is needed to read batonctl's JSON (apt-get install jq)"

if [[ -z "${BATONCTL:-}" ]]; then
    say "building batonctl"
    (cd "$here" && cargo build --quiet -p baton-controller --bin batonctl)
    target="${CARGO_TARGET_DIR:-$(cd "$here" && cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')}"
    BATONCTL="$target/debug/batonctl"
fi
[[ -x "$BATONCTL" ]] || fail "no batonctl at $BATONCTL"

ns="${NAMESPACE:-$(kubectl config view --minify -o jsonpath='{..namespace}' 2>/dev/null || true)}"
ns="${ns:-default}"
run="check-$(date +%s)-$$"
pod="baton-$run"
work="$(mktemp -d)"
watch_pid=""

cleanup() {
    if [[ -n "$watch_pid" ]]; then kill "$watch_pid" 2>/dev/null || true; wait "$watch_pid" 2>/dev/null || true; fi
    kubectl -n "$ns" delete pod "$pod" --ignore-not-found --wait=false >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

say "watching namespace $ns for pod $pod"
"$BATONCTL" watch -n "$ns" -l "baton.dev/check=$run" --annotate >"$work/watch.jsonl" 2>"$work/watch.err" &
watch_pid=$!

# Each container writes what baton would: `one` a record with results, `two` a record after `one`'s
# (simulated) wait, `three` fails with no message under FallbackToLogsOnError, so its log tail is the message.
record='now() { date -u +%Y-%m-%dT%H:%M:%S.000Z; }; start=$(now); sleep "$PAUSE"; printf "{\"baton\":1,\"step\":\"%s\",\"exitCode\":0,\"reason\":\"Completed\",\"startedAt\":\"%s\",\"finishedAt\":\"%s\",\"results\":{\"greeting\":\"hello from %s\"}}" "$STEP" "$start" "$(now)" "$STEP" > /dev/termination-log'
kubectl -n "$ns" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $pod
  labels:
    baton.dev/check: "$run"
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 5
  containers:
  - name: one
    image: $image
    command: ["sh", "-c", '$record']
    env: [{name: STEP, value: one}, {name: PAUSE, value: "1"}]
  - name: two
    image: $image
    command: ["sh", "-c", '$record']
    env: [{name: STEP, value: two}, {name: PAUSE, value: "4"}]
  - name: three
    image: $image
    command: ["sh", "-c", "sleep 6; echo 'step three: boom' >&2; exit 3"]
    terminationMessagePolicy: FallbackToLogsOnError
EOF

say "waiting up to ${timeout}s for the pod to end"
kubectl -n "$ns" wait "pod/$pod" --for=jsonpath='{.status.phase}'=Failed --timeout="${timeout}s" >/dev/null \
    || fail "pod $pod did not fail as expected: $(kubectl -n "$ns" get pod "$pod" -o jsonpath='{.status.phase}')"

# The watcher writes the final phase at once; give it a few seconds to see the last event.
for _ in $(seq 1 30); do
    grep -q '"phase":"Failed"' "$work/watch.jsonl" 2>/dev/null && break
    sleep 1
done
grep -q '"phase":"Failed"' "$work/watch.jsonl" || fail "batonctl watch printed no final status: $(cat "$work/watch.err")"
sleep 2

# kubectl hides managedFields unless asked (since 1.21); the ownership check below reads them.
kubectl -n "$ns" get pod "$pod" -o json --show-managed-fields >"$work/pod.json"
"$BATONCTL" status -f "$work/pod.json" -o json >"$work/status.json"
"$BATONCTL" status -f "$work/pod.json"

check() { # check DESCRIPTION JQ-FILTER FILE
    jq -e "$2" "$3" >/dev/null || fail "$1 ($(jq -c . "$3" | head -c 2000))"
}
check "the run failed" '.phase == "Failed"' "$work/status.json"
check "step one's baton record was read" '.steps[0].source == "baton" and .steps[0].results.greeting == "hello from one"' "$work/status.json"
check "the flat results keep the later step" '.results.greeting == "hello from two"' "$work/status.json"
check "step three's log tail is its error" '.steps[2].exitCode == 3 and (.steps[2].error | contains("boom"))' "$work/status.json"

jq -r '.metadata.annotations["baton.dev/run-status"] // empty' "$work/pod.json" >"$work/annotation.json"
[[ -s "$work/annotation.json" ]] || fail "the pod has no baton.dev/run-status annotation"
check "the annotation holds the final phase" '.phase == "Failed" and (.steps | length) == 3' "$work/annotation.json"
check "the annotation is owned by batonctl through server-side apply" \
    '[.metadata.managedFields[] | select(.manager == "batonctl" and .operation == "Apply")] | length == 1' "$work/pod.json"

lines=$(wc -l <"$work/watch.jsonl")
say "ok: $lines status lines printed; run status annotated by batonctl"
