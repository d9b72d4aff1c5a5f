#!/usr/bin/env bash
# The demo, and the README's main job: baton in real containers on this machine.
#
#   e2e/demo.sh [--example FILE] [--no-batonctl] [--keep]
#
# On a fresh Debian machine it installs what is missing from Debian's packages (podman, runc,
# busybox-static, jq, yq: saying so) and the musl Rust target (rustup), builds the static baton binary
# (make static) and the two images (podman build, no network), plays the pipeline example (or FILE,
# a Pod manifest written for baton) with `podman kube play`, plays the kubelet's part for the
# termination messages, and prints the run status (`batonctl status`, or the harness's own table with
# --no-batonctl) and the measured step handoffs. --keep keeps the pod, its volumes and its work folder
# (the Pod JSON in the kubelet's shape, pod.json, for `batonctl status -f`), and says where.
# Exit status: 0 when the pod succeeded.
set -uo pipefail

E2E_NAME=demo
# shellcheck source=e2e/lib.sh
source "$(dirname "$0")/lib.sh"

EXAMPLE="$REPO/examples/pipeline.yaml"
USE_BATONCTL=1
while [ $# -gt 0 ]; do
  case $1 in
    --example) EXAMPLE=$2; shift 2 ;;
    --no-batonctl) USE_BATONCTL=0; shift ;;
    --keep) export E2E_KEEP=1; shift ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
[ -f "$EXAMPLE" ] || die "no such file: $EXAMPLE"

E2E_WORK=$(mktemp -d "${TMPDIR:-/tmp}/baton-demo.XXXXXX")
if [ "${E2E_KEEP:-0}" = 1 ]; then
  trap 'e2e_cleanup; say "kept the work folder $E2E_WORK (the Pod JSON: $E2E_WORK/pods/*/pod.json)"' EXIT
else
  trap 'e2e_cleanup; rm -rf "$E2E_WORK"' EXIT
fi
trap 'exit 130' INT TERM

ensure_tools
ensure_baton_binary
say "podman $(podman version --format '{{.Client.Version}}') with $(basename "$(podman info --format '{{.Host.OCIRuntime.Path}}')"), settings from ${CONTAINERS_CONF#"$REPO"/}"
say "building the images (podman build, no network)"
build_images
say "baton: $(stat -c %s "$BATON_BIN") bytes, static; image $BATON_IMAGE: $(image_size "$BATON_IMAGE") bytes (FROM scratch, /baton, user 65532)"
say "step image $STEP_IMAGE: $(image_size "$STEP_IMAGE") bytes (FROM scratch + Debian's static busybox)"

BATONCTL_BIN=""
if [ "$USE_BATONCTL" = 1 ]; then
  if [ -z "${BATONCTL:-}" ] && [ -f "$REPO/crates/baton-controller/src/main.rs" ]; then
    say "batonctl reads the run status; the first build takes a few minutes (--no-batonctl skips it)"
  fi
  BATONCTL_BIN=$(find_batonctl)
  [ "$BATONCTL_BIN" = BUILD-FAILED ] && { say "batonctl does not build: showing the harness's own reading"; BATONCTL_BIN=""; }
fi
export BATONCTL_BIN

say "playing ${EXAMPLE#"$REPO"/} (podman kube play)"
t0=$(now_ms)
if ! play "$EXAMPLE"; then
  cat "$(pod_dir "$PLAYED")/play.log" >&2
  die "podman kube play failed"
fi
pod=$PLAYED
if ! wait_pod "$pod" 120; then
  say "the pod still runs after 120 s; stopping it"
  podman pod stop -t 5 "$pod" >/dev/null 2>&1
fi
say "the pod ended after $(( $(now_ms) - t0 )) ms"
kubelet_status "$pod"
run_status "$pod" || say "batonctl failed: $(cat "$(pod_dir "$pod")/batonctl.err")"
dir=$(pod_dir "$pod")

echo
echo "== Logs (podman logs, as kubectl logs)"
for c in $(jq -r '.spec.containers[].name' "$dir/spec.json"); do
  podman logs "$pod-$c" 2>&1 | sed "s/^/  $c | /"
done

echo
echo "== Termination messages (kubectl get pod $pod -o jsonpath='{.status.containerStatuses[*].state.terminated.message}')"
jq -r '.status.containerStatuses[] | "  \(.name): \(.state.terminated.message // "(none)")"' "$dir/pod.json"

echo
if [ -s "$dir/batonctl.json" ]; then
  echo "== Run status (batonctl status -f pod.json, the Pod JSON in the kubelet's shape)"
  "$BATONCTL_BIN" status -f "$dir/pod.json" | sed 's/^/  /'
else
  echo "== Run status (the harness's reading of the Pod JSON; batonctl status prints the same)"
  status_table "$dir/fallback.json" | sed 's/^/  /'
fi

echo
echo "== Step handoffs (a step's baton startedAt minus the end of the step it waits for, from the messages)"
# Pairs: every step and the steps its --after names, as written in the pod.
jq -r '.spec.containers[] | .name as $n | (.command + (.args // []))
       | [.[] | select(startswith("--after=")) | ltrimstr("--after=") | sub(":done$"; "")] as $after
       | select($after | length > 0) | "\($n) \($after | join(","))"' "$dir/spec.json" |
while read -r succ preds; do
  jq -r --arg s "$succ" --arg p "$preds" "$JQ_MS"'
    ($p | split(",")) as $ps
    | ([.steps[] | select(.name | IN($ps[])) | .finishedAt | ms] | max) as $last
    | (.steps[] | select(.name == $s)) as $st
    | if $st.startedAt != null then "  \($p | gsub(","; "+")) -> \($s): \(($st.startedAt | ms) - $last) ms"
      else "  \($p | gsub(","; "+")) -> \($s): did not run (\($st.reason)), ended \(($st.finishedAt | ms) - $last) ms after" end' \
    "$dir/fallback.json"
done

phase=$(jq -r .phase "$(status_file "$pod")")
echo
say "run phase: $phase"
[ "$phase" = Succeeded ]
