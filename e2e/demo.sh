#!/usr/bin/env bash
# The demo, and the README's main job: baton in real containers on this machine.
#
#   e2e/demo.sh [--example FILE] [--keep]
#
# On a fresh Debian machine it installs what is missing from Debian's packages (podman, runc,
# busybox-static, jq, yq: saying so) and the musl Rust target (rustup), builds the static baton binary
# (make static), the two images (podman build, no network) and batonctl (cargo), then plays the
# pipeline example (or FILE: a Pod, Job or CronJob manifest that uses baton) with `batonctl play`,
# which plays the kubelet's part on podman (docs/play.md) and shows each change as it happens. Then it
# prints the logs, the termination messages, the run status and the measured step handoffs. --keep
# keeps the pod, its volumes and the work folder (the Pod JSON in the kubelet's shape, pod.json, for
# `batonctl status -f`), and says where.
# Exit status: 0 when the run succeeded, 1 when it failed, 3 when the pod could not be played.
set -uo pipefail

E2E_NAME=demo
# shellcheck source=e2e/lib.sh
source "$(dirname "$0")/lib.sh"

EXAMPLE="$REPO/examples/pipeline.yaml"
while [ $# -gt 0 ]; do
  case $1 in
    --example) EXAMPLE=$2; shift 2 ;;
    --keep) export E2E_KEEP=1; shift ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
[ -f "$EXAMPLE" ] || die "no such file: $EXAMPLE"

E2E_WORK=$(mktemp -d "${TMPDIR:-/tmp}/baton-demo.XXXXXX")
if [ "${E2E_KEEP:-0}" = 1 ]; then
  trap 'e2e_cleanup; say "kept the work folder $E2E_WORK (the Pod JSON: $E2E_WORK/play/pod.json)"' EXIT
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
if [ -z "${BATONCTL:-}" ]; then
  say "batonctl plays the pod and reads the run status; its first build takes a few minutes"
fi
BATONCTL_BIN=$(find_batonctl)
if [ -z "$BATONCTL_BIN" ] || [ "$BATONCTL_BIN" = BUILD-FAILED ]; then die "batonctl does not build"; fi

dir="$E2E_WORK/play"
echo
echo "== batonctl play -f ${EXAMPLE#"$REPO"/} --keep   (one line per change: containers from podman, steps from baton's folder)"
# --keep: the logs below need the containers; this script removes them at its end (unless --keep).
"$BATONCTL_BIN" play -f "$EXAMPLE" --keep --work-dir "$dir" > "$E2E_WORK/status.txt"
rc=$?
[ -s "$dir/pod.json" ] || exit "$rc"
pod=$(jq -r .metadata.name "$dir/pod.json")
E2E_PODS+=("$pod")
mapfile -t E2E_VOLUMES < <(jq -r '.spec.volumes[]? | select(has("emptyDir")) | .name' "$dir/play.json")

echo
echo "== Logs (podman logs, as kubectl logs)"
for c in $(jq -r '.spec.containers[].name' "$dir/pod.json"); do
  podman logs "$pod-$c" 2>&1 | sed "s/^/  $c | /"
done

echo
echo "== Termination messages (kubectl get pod $pod -o jsonpath='{.status.containerStatuses[*].state.terminated.message}')"
jq -r '.status.containerStatuses[] | "  \(.name): \(.state.terminated.message // "(none)")"' "$dir/pod.json"

echo
echo "== Run status (batonctl play prints it at the end; batonctl status -f pod.json prints the same)"
sed 's/^/  /' "$E2E_WORK/status.txt"

echo
echo "== Step handoffs (a step's baton startedAt minus the end of the step it waits for, from the messages)"
"$BATONCTL_BIN" status -f "$dir/pod.json" -o json > "$E2E_WORK/status.json"
# Pairs: every step and the steps its --after names, as written in the pod.
jq -r '.spec.containers[] | .name as $n | (.command + (.args // []))
       | [.[] | select(startswith("--after=")) | ltrimstr("--after=") | sub(":done$"; "")] as $after
       | select($after | length > 0) | "\($n) \($after | join(","))"' "$dir/pod.json" |
while read -r succ preds; do
  jq -r --arg s "$succ" --arg p "$preds" "$JQ_MS"'
    ($p | split(",")) as $ps
    | ([.steps[] | select(.name | IN($ps[])) | .finishedAt | ms] | max) as $last
    | (.steps[] | select(.name == $s)) as $st
    | if $st.startedAt != null then "  \($p | gsub(","; "+")) -> \($s): \(($st.startedAt | ms) - $last) ms"
      else "  \($p | gsub(","; "+")) -> \($s): did not run (\($st.reason)), ended \(($st.finishedAt | ms) - $last) ms after" end' \
    "$E2E_WORK/status.json"
done

echo
say "run phase: $(jq -r .phase "$E2E_WORK/status.json")"
[ "${E2E_KEEP:-0}" = 1 ] || say "removing pod $pod and its volumes now (--keep keeps them)"
exit "$rc"
