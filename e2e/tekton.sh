#!/usr/bin/env bash
# e2e/tekton.sh: baton as Tekton's entrypoint, on podman.
#
# Plays e2e/tekton-taskrun.yaml, a Pod shaped exactly as Tekton's controller generates it for a
# TaskRun (init containers prepare + place-scripts, four steps chained through /tekton/run/<i>/out,
# results, a StepAction-style step-a whose array step result feeds step-b's arguments, step-b failing
# with onError: continue, the service account's git credentials for every step, step-d skipped by its
# `when`), with the entrypoint image built from tekton.Containerfile. The harness plays the parts
# podman does not:
#   - the kubelet: a fresh termination-message file per container, read back under the kubelet's
#     rules into a Pod status (e2e/lib.sh: play, kubelet_status);
#   - the downward API: /tekton/downward is a host folder laid out as the kubelet's atomic writer
#     lays it out (ready -> ..data/ready, ..data -> ..<timestamp>), and the controller's
#     "tekton.dev/ready" annotation is played by swapping ..data once every step container runs;
#   - the secret volume of the git credentials: a host folder in the atomic writer's layout too
#     (username, password; a password new for every run, looked for in every output afterwards);
#   - Tekton's controller: each step's message parsed as the controller parses it (JSON array of
#     RunResult, last value per key wins, StartedAt / ExitCode / Reason, type 1 task results,
#     type 4 step results), and the files it and the steps read (/tekton/creds, exitCode).
# It asserts exit codes, messages, results and files, then measures the step handoff: the time from
# a step's post file (/tekton/run/<i>/out, its mtime in the emptyDir) to the next step's StartedAt,
# and from the ready swap to step-a's StartedAt. Tekton's own entrypoint polls every 1 s there.
#
# Usage: e2e/tekton.sh            (ROUNDS=N for more timed rounds, default 5; E2E_KEEP=1 keeps pods;
#        STEP_ENV='BATON_INOTIFY=off' adds an environment variable to every step container, e.g. to
#        see the harness measure polling: baton's fallback re-checks every 500 ms;
#        TEKTON_IMAGE, STEP_IMAGE and TEKTON_POD name the images and the pod, for runs side by side)
set -uo pipefail

E2E_NAME=tekton-e2e
# shellcheck source=e2e/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

ROUNDS=${ROUNDS:-5}
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
TEKTON_BIN="$TARGET_DIR/$BATON_TARGET/release/baton"
CEL_BIN="$TARGET_DIR/$BATON_TARGET/release/baton-cel"
TEKTON_IMAGE=${TEKTON_IMAGE:-localhost/baton-tekton:dev}
TEKTON_POD=${TEKTON_POD:-baton-tekton-demo-pod}
POD_FILE="$E2E_DIR/tekton-taskrun.yaml"
MAX_BINARY=$((1280 * 1024))
STEPS=(step-a step-b step-c step-d)
# The git secret of the service account (kubernetes.io/basic-auth); the password is new every run.
GIT_USER=tekton-bot
GIT_PASSWORD="s3cr3t-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"

E2E_WORK=$(mktemp -d "${TMPDIR:-/tmp}/baton-tekton-e2e.XXXXXX")
FAILED=0
finish() {
  e2e_cleanup
  if [ "${E2E_KEEP:-0}" = 1 ]; then say "kept $E2E_WORK"; else rm -rf "$E2E_WORK"; fi
}
trap finish EXIT

check() { # check DESCRIPTION COMMAND...: one assertion, said either way
  local what=$1
  shift
  if "$@"; then say "ok: $what"; else say "FAIL: $what"; FAILED=$((FAILED + 1)); fi
}


# ---------------------------------------------------------------------------------------------------
# Build: the static binary, the entrypoint image, the step image.

ensure_tools
say "building the static binaries (cargo build --release --target $BATON_TARGET --bin baton --bin baton-cel)"
(cd "$REPO" && cargo build --quiet --release --target "$BATON_TARGET" --bin baton --bin baton-cel) || die "cargo build failed"
size=$(stat -c %s "$TEKTON_BIN")
say "binary: $TEKTON_BIN, $size bytes ($(file -b "$TEKTON_BIN" | cut -d, -f1-4))"
check "the static binary is at most 1.25 MiB ($size <= $MAX_BINARY)" [ "$size" -le "$MAX_BINARY" ]

build_tekton_image "$TEKTON_IMAGE"
if ! podman image exists "$STEP_IMAGE"; then
  build_step_image
fi
say "images: $TEKTON_IMAGE ($(image_size "$TEKTON_IMAGE") bytes), $STEP_IMAGE"

# ---------------------------------------------------------------------------------------------------
# The downward API (downward_dir, set_ready: e2e/lib.sh) and the git secret

# secret_dir DIR: the kubelet's secret volume of git-creds (atomic-writer layout, files 0644).
secret_dir() {
  local d=$1 data=..2026_01_01_00_00_00.000000003
  mkdir -p "$d/$data"
  printf '%s' "$GIT_USER" > "$d/$data/username"
  printf '%s' "$GIT_PASSWORD" > "$d/$data/password"
  chmod 0644 "$d/$data/username" "$d/$data/password"
  ln -s "$data" "$d/..data"
  ln -s ..data/username "$d/username"
  ln -s ..data/password "$d/password"
  chmod a+rx "$d" "$d/$data"
}

# pod_file VARIANT OUT DOWN SECRET: the Pod as podman can play it: the downwardAPI and secret volumes
# as host folders, the images and the pod named as this run names them.
# VARIANT "cascade" drops step-b's onError: continue, so step-c and step-d must be skipped.
pod_file() {
  local variant=$1 out=$2 down=$3 secret=$4
  yq . "$POD_FILE" | jq --arg down "$down" --arg secret "$secret" --arg variant "$variant" --arg env "${STEP_ENV:-}" \
      --arg tekton_image "$TEKTON_IMAGE" --arg step_image "$STEP_IMAGE" --arg pod "$TEKTON_POD" '
      .metadata.name = $pod
    | def image: if .image == "localhost/baton-tekton:dev" then .image = $tekton_image
                 elif .image == "localhost/busybox-step:dev" then .image = $step_image else . end;
      .spec.initContainers |= map(image) | .spec.containers |= map(image)
    | (if $env == "" then . else
         .spec.containers |= map(.env = ((.env // []) + [{name: ($env | split("=")[0]), value: ($env | split("=")[1:] | join("="))}]))
       end)
    | .spec.volumes |= map(if .name == "tekton-internal-downward"
                           then {name, hostPath: {path: $down, type: "Directory"}}
                           elif .secret.secretName == "git-creds"
                           then {name, hostPath: {path: $secret, type: "Directory"}} else . end)
    | if $variant == "cascade" then
        .spec.containers |= map(if .name == "step-b"
          then .args |= ((indices("-on_error")[0]) as $i | if $i == null then . else .[:$i] + .[$i + 2:] end)
          else . end)
      else . end' > "$out"
}

# all_steps_running POD: every step container has started (the controller then sets tekton.dev/ready).
all_steps_running() {
  local states
  states=$(pod_states "$1")
  for c in "${STEPS[@]}"; do
    grep -Eq "^$1-$c (running|exited|stopped)$" <<<"$states" || return 1
  done
}

# ---------------------------------------------------------------------------------------------------
# Tekton's controller reading the Pod status

iso_ms() { # RFC 3339 with milliseconds (UTC) -> ms
  python3 -c 'import sys,datetime; t=sys.argv[1]; print(int(datetime.datetime.fromisoformat(t.replace("Z","+00:00")).timestamp()*1000))' "$1"
}

volume_path() { podman volume inspect "$1--$2" --format '{{.Mountpoint}}'; }

mtime_ms() { local s; s=$(stat -c %.3Y "$1") || return 1; echo "${s/./}"; }

# play_round VARIANT N: plays the pod; sets R_POD and R_READY (ms of the ready swap).
play_round() {
  local variant=$1 n=$2 down secret file deadline
  down="$E2E_WORK/downward-$variant-$n"
  downward_dir "$down"
  secret="$E2E_WORK/secret-$variant-$n"
  secret_dir "$secret"
  file="$E2E_WORK/pod-$variant-$n.json"
  pod_file "$variant" "$file" "$down" "$secret"
  play "$file" || { cat "$(pod_dir "$TEKTON_POD")/play.log" >&2; die "podman kube play failed"; }
  R_POD=$PLAYED
  deadline=$(( $(now_ms) + 60000 ))
  until all_steps_running "$R_POD"; do
    [ "$(now_ms)" -lt "$deadline" ] || die "the step containers never started"
    sleep 0.05
  done
  # The steps are all waiting: step-a on the ready file, the others on their predecessor.
  sleep 0.3
  R_READY=$(set_ready "$down")
  wait_pod "$R_POD" 60 || die "pod $R_POD did not finish within 60 s"
  kubelet_status "$R_POD"
}

# ---------------------------------------------------------------------------------------------------
# Round 1..N: the TaskRun as written (b fails, onError: continue), asserted and timed.

HANDOFFS=()
READY_GAPS=()
for round in $(seq 1 "$ROUNDS"); do
  play_round continue "$round"
  pod=$R_POD
  dir=$(pod_dir "$pod")
  a=$(step_json "$pod" step-a)
  b=$(step_json "$pod" step-b)
  c=$(step_json "$pod" step-c)
  d=$(step_json "$pod" step-d)
  if [ "$round" = 1 ]; then
    for s in "${STEPS[@]}"; do
      say "$s: exit $(step_json "$pod" $s | jq .exitCode), message: $(step_json "$pod" $s | jq -r .message)"
    done
    init_exit=$(jq '[.status.initContainerStatuses[].state.terminated.exitCode] | join(",")' -r "$dir/pod.json")
    check "init containers prepare and place-scripts exit 0 ($init_exit)" [ "$init_exit" = "0,0" ]
    check "step-a: exit 0" [ "$(jq .exitCode <<<"$a")" = 0 ]
    check "step-a: the message is a RunResult array the controller parses" [ "$(jq .parsed <<<"$a")" = true ]
    check "step-a: task result greeting" [ "$(jq -r .results.greeting <<<"$a")" = "hello from a" ]
    check "step-a: step result note (type 4)" [ "$(jq -r .stepResults.note <<<"$a")" = "a-note" ]
    check "step-a: array step result files (type 4)" [ "$(jq -r .stepResults.files <<<"$a")" = '["alpha","beta gamma"]' ]
    check "step-a: StartedAt in Tekton's format" grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$' <<<"$(jq -r .startedAt <<<"$a")"
    check "step-a: exact message bytes" [ "$(jq -r .message <<<"$a" | sed -E 's/"StartedAt","value":"[^"]*"/"StartedAt","value":"T"/')" = '[{"key":"greeting","value":"hello from a","type":1},{"key":"note","value":"a-note","type":4},{"key":"files","value":"[\"alpha\",\"beta gamma\"]","type":4},{"key":"StartedAt","value":"T","type":3}]' ]
    check "step-b: exit 0 (onError: continue)" [ "$(jq .exitCode <<<"$b")" = 0 ]
    check "step-b: ExitCode=3 in the message (the controller shows reason Continued)" [ "$(jq -r .exitCodeKey <<<"$b")" = 3 ]
    check "step-b: \$(steps.a.results.files[*]) became two arguments (b-result)" [ "$(jq -r .results[\"b-result\"] <<<"$b")" = "alpha|beta gamma|" ]
    check "step-c: exit 0" [ "$(jq .exitCode <<<"$c")" = 0 ]
    check "step-c: read step-b's exitCode file at once and found the git credentials in \$HOME (summary)" [ "$(jq -r .results.summary <<<"$c")" = "a=hello from a b-exit=3 creds=ok" ]
    check "step-d: exit 0, Reason=Skipped (its when does not hold)" all_ok [ "$(jq .exitCode <<<"$d")" = 0 ] -- [ "$(jq -r .reasonKey <<<"$d")" = Skipped ]
    check "step-d: no results, its script never ran" all_ok [ "$(jq -r '.results | length' <<<"$d")" = 0 ] -- [ "$(jq -r '.entries | keys | join(",")' <<<"$d")" = "Reason,StartedAt" ]
    n=$(jq '(.spec.initContainers | length) + (.spec.containers | length)' "$dir/spec.json")
    share=$((KUBELET_POD_BUDGET / n))
    for s in a b c d; do
      bytes=$(jq .messageBytes <<<"${!s}")
      check "step-$s: message ($bytes bytes) within the kubelet's share ($share)" [ "$bytes" -le "$share" ]
    done
    run0=$(volume_path "$pod" tekton-internal-run-0)
    run1=$(volume_path "$pod" tekton-internal-run-1)
    run3=$(volume_path "$pod" tekton-internal-run-3)
    check "step-a: post file out, exitCode 0" all_ok [ -e "$run0/out" ] -- [ "$(cat "$run0/status/exitCode")" = 0 ]
    check "step-b: post file out (not out.err), exitCode 3" all_ok [ -e "$run1/out" ] -- [ ! -e "$run1/out.err" ] -- [ "$(cat "$run1/status/exitCode")" = 3 ]
    check "step-d: post file out (not out.err), exitCode 0" all_ok [ -e "$run3/out" ] -- [ ! -e "$run3/out.err" ] -- [ "$(cat "$run3/status/exitCode")" = 0 ]
    bin_mode=$(podman run --rm -v "$pod--tekton-internal-bin:/b:ro" --entrypoint /bin/stat "$STEP_IMAGE" -c %a /b/entrypoint 2>/dev/null)
    check "init installed /tekton/bin/entrypoint with mode 0311 ($bin_mode)" [ "$bin_mode" = 311 ]
    cel_mode=$(podman run --rm -v "$pod--tekton-internal-bin:/b:ro" --entrypoint /bin/stat "$STEP_IMAGE" -c %a /b/baton-cel 2>/dev/null)
    check "init installed the CEL evaluator /tekton/bin/baton-cel beside it ($cel_mode), and step-c's CEL when held" [ "$cel_mode" = 311 ]
    # The credentials, as Tekton's entrypoint writes them (gitcreds TestBasicFlagHandling).
    creds0=$(volume_path "$pod" tekton-creds-init-home-0)
    home=$(volume_path "$pod" tekton-internal-home)
    check "/tekton/creds/.gitconfig of step-a: Tekton's bytes" [ "$(cat "$creds0/.gitconfig")" = "$(printf '[credential]\n\thelper = store\n[credential "https://github.com"]\n\tusername = %s' "$GIT_USER")" ]
    check "/tekton/creds/.git-credentials of step-a: Tekton's bytes" [ "$(cat "$creds0/.git-credentials"; echo .)" = "$(printf 'https://%s:%s@github.com\n.' "$GIT_USER" "$GIT_PASSWORD")" ]
    check "credential files mode 0600, in /tekton/creds and in \$HOME" [ "$(stat -c %a "$creds0/.gitconfig" "$creds0/.git-credentials" "$home/.gitconfig" "$home/.git-credentials" | sort -u)" = 600 ]
    for s in "${STEPS[@]}"; do podman logs "$pod-$s" > "$dir/containers/$s/log" 2>&1; done
    check "the git password is in no termination message, log or Pod status" \
      bash -c '! grep -rqF -- "$1" "$2"/pod.json "$2"/containers' _ "$GIT_PASSWORD" "$dir"
  fi
  if ! jq -e '.startedAt != null' <<<"$a" >/dev/null || ! jq -e '.startedAt != null' <<<"$b" >/dev/null \
     || ! jq -e '.startedAt != null' <<<"$c" >/dev/null || ! jq -e '.startedAt != null' <<<"$d" >/dev/null; then
    check "round $round: every step reported StartedAt (see $dir/pod.json)" false
    remove_pod "$pod"
    continue
  fi
  run0=$(volume_path "$pod" tekton-internal-run-0)
  run1=$(volume_path "$pod" tekton-internal-run-1)
  run2=$(volume_path "$pod" tekton-internal-run-2)
  a_start=$(iso_ms "$(jq -r .startedAt <<<"$a")")
  b_start=$(iso_ms "$(jq -r .startedAt <<<"$b")")
  c_start=$(iso_ms "$(jq -r .startedAt <<<"$c")")
  d_start=$(iso_ms "$(jq -r .startedAt <<<"$d")")
  ab=$((b_start - $(mtime_ms "$run0/out")))
  bc=$((c_start - $(mtime_ms "$run1/out")))
  cd=$((d_start - $(mtime_ms "$run2/out")))
  ready=$((a_start - R_READY))
  say "round $round: ready -> step-a ${ready} ms; a post -> b ${ab} ms; b post -> c ${bc} ms; c post -> d ${cd} ms"
  HANDOFFS+=("$ab" "$bc" "$cd")
  READY_GAPS+=("$ready")
  remove_pod "$pod"
done

# ---------------------------------------------------------------------------------------------------
# The cascade: step-b without onError fails, step-c and step-d are skipped.

play_round cascade 1
pod=$R_POD
b=$(step_json "$pod" step-b)
c=$(step_json "$pod" step-c)
d=$(step_json "$pod" step-d)
say "cascade: step-b exit $(jq .exitCode <<<"$b") $(jq -r .message <<<"$b")"
say "cascade: step-c exit $(jq .exitCode <<<"$c") $(jq -r .message <<<"$c")"
say "cascade: step-d exit $(jq .exitCode <<<"$d") $(jq -r .message <<<"$d")"
check "cascade: step-b exits 3 with no ExitCode key" all_ok [ "$(jq .exitCode <<<"$b")" = 3 ] -- [ "$(jq -r .exitCodeKey <<<"$b")" = null ]
check "cascade: step-c exits 1 with Reason=Skipped" all_ok [ "$(jq .exitCode <<<"$c")" = 1 ] -- [ "$(jq -r .reasonKey <<<"$c")" = Skipped ]
check "cascade: step-c never ran its script (no summary)" [ "$(jq -r .results.summary <<<"$c")" = null ]
check "cascade: step-d exits 1 with Reason=Skipped (a previous step failed)" all_ok [ "$(jq .exitCode <<<"$d")" = 1 ] -- [ "$(jq -r .reasonKey <<<"$d")" = Skipped ]
run1=$(volume_path "$pod" tekton-internal-run-1)
run2=$(volume_path "$pod" tekton-internal-run-2)
run3=$(volume_path "$pod" tekton-internal-run-3)
check "cascade: out.err files of step-b, step-c and step-d" all_ok [ -e "$run1/out.err" ] -- [ -e "$run2/out.err" ] -- [ -e "$run3/out.err" ]
remove_pod "$pod"

# ---------------------------------------------------------------------------------------------------
# TEKTON_HERMETIC=1 in a container: as root the command is PID 1 of new namespaces and sees only lo;
# as a non-root user (no CAP_SETUID for the identity map) the step fails with the sentence.

hermetic_run() { # hermetic_run PODMAN-ARGS...: a hermetic step in the step image, baton mounted
  podman run --rm "$@" --tmpfs /tekton:mode=1777 -v "$TEKTON_BIN:/tekton-bin/entrypoint:ro" -e TEKTON_HERMETIC=1 \
    "$STEP_IMAGE" /tekton-bin/entrypoint -entrypoint sh -- \
    -c 'echo "devices=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " " | tr "\n" ,) pid=$$"' 2>&1
}
out=$(hermetic_run --name tekton-e2e-hermetic-root)
say "hermetic, root: $out"
check "hermetic step as root: only lo, PID 1" [ "$out" = "devices=lo, pid=1" ]
out=$(hermetic_run --name tekton-e2e-hermetic-user --user 1000:1000)
say "hermetic, UID 1000: $out"
check "hermetic step as UID 1000: fails with the sentence naming TEKTON_HERMETIC" grep -q "^baton: TEKTON_HERMETIC=1 .*(uid_map: Operation not permitted)" <<<"$out"

# ---------------------------------------------------------------------------------------------------
# Summary

stats() { [ $# -gt 0 ] || { echo "no data"; return; }; printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1; s+=$1} END {printf "n=%d min=%d median=%d mean=%.1f max=%d ms", NR, v[1], v[int((NR+1)/2)], s/NR, v[NR]}'; }
say "step handoff (post file -> next StartedAt): $(stats "${HANDOFFS[@]}")"
say "ready -> step-a StartedAt: $(stats "${READY_GAPS[@]}")"
say "Tekton's entrypoint polls every 1000 ms: a handoff there takes 0-1000 ms, 500 ms on average, plus its own start."
if [ "$FAILED" -gt 0 ]; then
  say "$FAILED check(s) FAILED"
  exit 1
fi
say "all checks passed"
