# shellcheck shell=bash
# Shared by e2e/run.sh, e2e/demo.sh and e2e/cluster.sh: tools, images, and the kubelet's part that
# podman does not play (termination messages, fresh emptyDirs, the Pod status object).
# Source it from bash; it sets no shell options of its own.

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$E2E_DIR/.." && pwd)

# podman on these machines needs runc and explicit ulimits (docs/e2e.md); never /etc.
export CONTAINERS_CONF="$E2E_DIR/containers.conf"
# podman inspect prints times in the local zone; the kubelet's are UTC.
export TZ=UTC

BATON_TARGET=${BATON_TARGET:-x86_64-unknown-linux-musl}
BATON_BIN="$REPO/target/$BATON_TARGET/release/baton"
# The image's platform follows the binary's (e2e/arm64.sh: aarch64, run by qemu-user).
case $BATON_TARGET in aarch64-*) BATON_PLATFORM=linux/arm64 ;; *) BATON_PLATFORM=linux/amd64 ;; esac
BATON_IMAGE=${BATON_IMAGE:-localhost/baton:0.1.0}
STEP_IMAGE=${STEP_IMAGE:-localhost/busybox-step:dev}
BUSYBOX=${BUSYBOX:-/bin/busybox}
# The kubelet's constants (pkg/kubelet/container: MaxContainerTerminationMessageLength,
# MaxPodTerminationMessageLogLength; FallbackToLogsOnError: 80 lines, 2048 bytes).
KUBELET_FILE_LIMIT=4096
KUBELET_POD_BUDGET=12288
KUBELET_LOG_LINES=80
KUBELET_LOG_BYTES=2048

E2E_NAME=${E2E_NAME:-e2e}
E2E_PODS=()     # pods this process played: removed by e2e_cleanup
E2E_VOLUMES=()  # volumes this process created: removed by e2e_cleanup

say() { printf '%s: %s\n' "$E2E_NAME" "$*" >&2; }
die() { say "error: $*"; exit 2; }

# all_ok TEST -- TEST ...: every test command (separated by --) succeeds; for checks of several facts.
all_ok() {
  local cmd=()
  while [ $# -gt 0 ]; do
    if [ "$1" = -- ]; then "${cmd[@]}" || return 1; cmd=(); else cmd+=("$1"); fi
    shift
  done
  "${cmd[@]}"
}

# Milliseconds since the epoch.
now_ms() { date +%s%3N; }

# until_true SECONDS COMMAND...: COMMAND again every UNTIL_EVERY seconds (default 0.02, for the
# harness's own conditions) until it succeeds; fails once SECONDS have passed.
until_true() {
  local deadline=$(( $(now_ms) + $1 * 1000 ))
  shift
  until "$@"; do
    [ "$(now_ms)" -lt "$deadline" ] || return 1
    sleep "${UNTIL_EVERY:-0.02}"
  done
}
# A jq definition: RFC 3339 UTC time (any fraction of a second, or none) -> milliseconds since the epoch.
# shellcheck disable=SC2016
JQ_MS='def ms: (.[0:19] + "Z" | fromdateiso8601) * 1000
  + (if .[19:20] == "." then ((.[20:] | sub("Z$"; "")) + "000")[0:3] | tonumber else 0 end);'

# ---------------------------------------------------------------------------------------------------
# Tools

# Installs what is missing from Debian's packages, saying so. podman + runc run the pods, busybox-static
# is the step image's content, jq and yq read and write Pod JSON/YAML.
ensure_tools() {
  local pkgs=() c
  command -v podman >/dev/null 2>&1 || pkgs+=(podman)
  command -v runc >/dev/null 2>&1 || [ -x /usr/sbin/runc ] || pkgs+=(runc)
  command -v jq >/dev/null 2>&1 || pkgs+=(jq)
  command -v yq >/dev/null 2>&1 || pkgs+=(yq)
  if [ ! -x "$BUSYBOX" ] || ldd "$BUSYBOX" >/dev/null 2>&1; then
    # Debian's busybox package is dynamically linked; busybox-static installs a static /bin/busybox.
    [ "$BUSYBOX" = /bin/busybox ] || die "BUSYBOX=$BUSYBOX is not a static executable"
    pkgs+=(busybox-static)
  fi
  [ ${#pkgs[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null 2>&1 || die "missing: ${pkgs[*]}; install them (this script knows apt-get only)"
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  say "installing from Debian's packages: ${pkgs[*]} (apt-get install -y ${pkgs[*]})"
  "${sudo[@]}" apt-get update -qq || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${pkgs[@]}" >/dev/null \
    || die "apt-get install ${pkgs[*]} failed"
  for c in podman jq yq; do command -v "$c" >/dev/null 2>&1 || die "$c still missing after apt-get"; done
}

# The static binary, from the project's own build (make static) when it is missing or older than the
# sources. make static adds the musl target with rustup when it is missing.
ensure_baton_binary() {
  local stale=""
  if [ -x "$BATON_BIN" ]; then
    stale=$(find "$REPO/src" "$REPO/crates/baton-contract/src" "$REPO/Cargo.toml" "$REPO/Cargo.lock" \
      -newer "$BATON_BIN" -print -quit 2>/dev/null)
  fi
  if [ ! -x "$BATON_BIN" ] || [ -n "$stale" ]; then
    command -v cargo >/dev/null 2>&1 || die "cargo is needed to build baton: install Rust (https://rustup.rs)"
    if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed 2>/dev/null | grep -qx "$BATON_TARGET"; then
      say "adding the Rust target $BATON_TARGET (rustup target add $BATON_TARGET)"
    fi
    say "building the static binary (make static)"
    make -C "$REPO" --no-print-directory static TARGET="$BATON_TARGET" >&2 || die "make static failed"
  fi
}

# Builds both images offline: the baton image (Dockerfile: scratch + /baton) and the step image
# (e2e/busybox-step.Containerfile: scratch + Debian's static busybox).
build_images() {
  local old_baton old_step
  old_baton=$(podman image inspect "$BATON_IMAGE" --format '{{.Id}}' 2>/dev/null)
  old_step=$(podman image inspect "$STEP_IMAGE" --format '{{.Id}}' 2>/dev/null)
  podman build -q --layers=false --platform "$BATON_PLATFORM" -f "$REPO/Dockerfile" \
    --build-arg "BATON_BIN=${BATON_BIN#"$REPO"/}" -t "$BATON_IMAGE" "$REPO" >/dev/null \
    || die "podman build of $BATON_IMAGE failed"
  build_step_image
  # The images these replaced, now untagged: removed unless a container still uses them.
  forget_image "$old_baton" "$BATON_IMAGE"
  forget_image "$old_step" "$STEP_IMAGE"
}

# build_step_image: $STEP_IMAGE, e2e/busybox-step.Containerfile (scratch + Debian's static busybox).
build_step_image() {
  local ctx rc
  ctx=$(mktemp -d)
  cp "$BUSYBOX" "$ctx/busybox"
  podman build -q --layers=false -f "$E2E_DIR/busybox-step.Containerfile" -t "$STEP_IMAGE" "$ctx" >/dev/null
  rc=$?
  rm -rf "$ctx"
  [ $rc -eq 0 ] || die "podman build of $STEP_IMAGE failed"
}

# build_tekton_image IMAGE: tekton.Containerfile's image with the static baton and baton-cel built
# (cargo build --release) for $BATON_TARGET.
build_tekton_image() {
  local ctx target=${CARGO_TARGET_DIR:-$REPO/target}/$BATON_TARGET/release
  (cd "$REPO" && cargo build --quiet --release --target "$BATON_TARGET" --bin baton --bin baton-cel) || die "cargo build failed"
  ctx=$(mktemp -d)
  cp "$target/baton" "$ctx/baton"
  cp "$target/baton-cel" "$ctx/baton-cel"
  podman build -q --layers=false -f "$REPO/tekton.Containerfile" --build-arg BATON_BIN=baton --build-arg CEL_BIN=baton-cel \
    -t "$1" "$ctx" >/dev/null || die "podman build of $1 failed"
  rm -rf "$ctx"
}

# Tekton's downward API volume (/tekton/downward) and the controller's "ready" annotation, played on
# a host folder (e2e/tekton.sh, e2e/tekton-upstream.sh).

# downward_dir DIR: the kubelet's atomic-writer layout, with the annotation not set yet (empty file).
downward_dir() {
  local d=$1
  mkdir -p "$d/..2026_01_01_00_00_00.000000001"
  : > "$d/..2026_01_01_00_00_00.000000001/ready"
  ln -s ..2026_01_01_00_00_00.000000001 "$d/..data"
  ln -s ..data/ready "$d/ready"
  chmod -R a+rX "$d"
}

# set_ready DIR: the kubelet's update after the controller sets tekton.dev/ready=READY: a new
# timestamped folder, then ..data swapped by rename. Prints the time of the swap (ms).
set_ready() {
  local d=$1 new=..2026_01_01_00_00_01.000000002
  mkdir -p "$d/$new"
  printf READY > "$d/$new/ready"
  chmod -R a+rX "$d/$new"
  ln -s "$new" "$d/..data_tmp"
  now_ms
  mv -T "$d/..data_tmp" "$d/..data"
}

# Tekton's controller reading a Pod status (e2e/tekton.sh, e2e/cluster.sh's tekton):
# step_json POD STEP: {exitCode, reason, message, entries: {key: value}, results, stepResults,
# startedAt (from the message), exitCodeKey, reasonKey} for a step container, as the controller sees it.
step_json() {
  jq --arg n "$2" '
    .status.containerStatuses[] | select(.name == $n) | .state.terminated as $t
    | ($t.message // "") as $m
    | ($m | try fromjson catch "UNPARSABLE") as $arr
    | {exitCode: $t.exitCode, kubeletReason: $t.reason, message: $m, messageBytes: ($m | utf8bytelength),
       parsed: ($arr | type == "array"),
       entries: (if ($arr | type) == "array" then (reduce $arr[] as $e ({}; .[$e.key] = {value: $e.value, type: $e.type})) else {} end)}
    | .results = (.entries | with_entries(select(.value.type == 1)) | map_values(.value))
    | .stepResults = (.entries | with_entries(select(.value.type == 4)) | map_values(.value))
    | .startedAt = .entries.StartedAt.value
    | .exitCodeKey = .entries.ExitCode.value
    | .reasonKey = .entries.Reason.value' "$(pod_dir "$1")/pod.json"
}

# build_argo_images UPSTREAM EXECUTOR: the stand-in for Argo's upstream executor image
# (e2e/argo/upstream.Containerfile) and argo.Containerfile's executor image on it, with $BATON_BIN.
build_argo_images() {
  local ctx
  ctx=$(mktemp -d)
  cp "$BUSYBOX" "$ctx/busybox"
  cp "$E2E_DIR/argo/argoexec-standin.sh" "$ctx/argoexec"
  cp "$E2E_DIR/argo/flatten.awk" "$ctx/flatten.awk"
  podman build -q --layers=false -f "$E2E_DIR/argo/upstream.Containerfile" -t "$1" "$ctx" >/dev/null \
    || die "podman build of $1 failed"
  rm -rf "$ctx"
  build_argo_executor_image "$1" "$2"
}

# build_argo_executor_image UPSTREAM EXECUTOR: argo.Containerfile's executor image on the image
# UPSTREAM (the stand-in, or e2e/argo-upstream.sh's image of the real argoexec), with $BATON_BIN.
build_argo_executor_image() {
  local ctx
  ctx=$(mktemp -d)
  cp "$BATON_BIN" "$ctx/baton"
  # With --layers=false, podman 4.3 drops the build's first stage, which is the upstream image itself:
  # its tag would be gone.
  podman build -q -f "$REPO/argo.Containerfile" --build-arg "UPSTREAM_IMAGE=$1" \
    --build-arg BATON_BIN=baton -t "$2" "$ctx" >/dev/null || die "podman build of $2 failed"
  rm -rf "$ctx"
}

# forget_image ID NAME: removes image ID if NAME no longer points at it and nothing else names it.
forget_image() {
  [ -n "$1" ] || return 0
  [ "$(podman image inspect "$2" --format '{{.Id}}' 2>/dev/null)" != "$1" ] || return 0
  [ "$(podman image inspect "$1" --format '{{len .RepoTags}}' 2>/dev/null)" = 0 ] || return 0
  podman rmi "$1" >/dev/null 2>&1 || true
}

# Bytes of an image as podman stores it.
image_size() { podman image inspect "$1" --format '{{.Size}}'; }

# batonctl, when the controller crate has its binary: $BATONCTL, or built with cargo. Prints its
# path, or nothing when the crate has no binary yet (or BATONCTL=none).
find_batonctl() {
  [ "${BATONCTL:-}" = none ] && return 0   # BATONCTL=none: the harness's own reader only
  if [ -n "${BATONCTL:-}" ]; then
    [ -x "$BATONCTL" ] || die "BATONCTL=$BATONCTL is not executable"
    printf '%s\n' "$BATONCTL"
    return 0
  fi
  [ -f "$REPO/crates/baton-controller/src/main.rs" ] || return 0
  local dir=${CARGO_TARGET_DIR:-$REPO/target}
  # The dev profile: it shares its dependencies with `cargo test --workspace` (test.sh runs that first).
  say "building batonctl (cargo build -p baton-controller --bin batonctl)"
  if ! (cd "$REPO" && cargo build --quiet -p baton-controller --bin batonctl >&2); then
    say "error: batonctl does not build"
    printf '%s\n' "BUILD-FAILED"
    return 0
  fi
  printf '%s\n' "$dir/debug/batonctl"
}

# yaml_to_json FILE: the YAML document as JSON, with Debian's yq (a jq wrapper) or mikefarah's yq v4.
yaml_to_json() {
  if yq --version 2>&1 | grep -q mikefarah; then yq -o=json '.' "$1"; else yq . "$1"; fi
}

# ---------------------------------------------------------------------------------------------------
# Playing a pod, as the kubelet would

pod_dir() { printf '%s/pods/%s\n' "$E2E_WORK" "$1"; }

# play FILE: plays the Pod in FILE (YAML or JSON) with podman kube play, after the kubelet's set-up:
# a fresh 0666 termination-message file per container, bind-mounted at terminationMessagePath, and
# fresh 0777 emptyDirs unique to the pod. Sets PLAYED to the pod's name (no subshell: the pod must
# be remembered for the clean-up). Returns podman's exit code.
PLAYED=""
play() {
  local file=$1 pod dir prefix name vol mp rc
  PLAYED=""
  pod=$(yaml_to_json "$file" | jq -er .metadata.name) || die "$file: not a Pod"
  dir=$(pod_dir "$pod")
  if [ -d "$dir" ]; then
    # The same pod played again: keep the earlier run's artifacts beside it.
    local n=1
    while [ -e "$dir.$n" ]; do n=$((n + 1)); done
    mv "$dir" "$dir.$n"
  fi
  mkdir -p "$dir"
  # The pods name localhost/baton:0.1.0 and localhost/busybox-step:dev; other BATON_IMAGE and
  # STEP_IMAGE tags (e2e/arm64.sh's) take their place.
  yaml_to_json "$file" | jq --arg baton "$BATON_IMAGE" --arg step "$STEP_IMAGE" '
    def retag: map(.image |= (if . == "localhost/baton:0.1.0" then $baton
                              elif . == "localhost/busybox-step:dev" then $step else . end));
    .spec.containers |= retag | if .spec.initContainers then .spec.initContainers |= retag else . end' > "$dir/spec.json"
  remove_pod "$pod"
  E2E_PODS+=("$pod")
  for name in $(jq -r '(.spec.initContainers // [])[].name, .spec.containers[].name' "$dir/spec.json"); do
    mkdir -p "$dir/containers/$name"
    : > "$dir/containers/$name/termination-log"
    chmod 0666 "$dir/containers/$name/termination-log"
  done
  prefix="$pod--"
  for vol in $(jq -r '.spec.volumes[]? | select(has("emptyDir")) | .name' "$dir/spec.json"); do
    podman volume rm -f "$prefix$vol" >/dev/null 2>&1
    podman volume create "$prefix$vol" >/dev/null || die "cannot create volume $prefix$vol"
    E2E_VOLUMES+=("$prefix$vol")
    mp=$(podman volume inspect "$prefix$vol" --format '{{.Mountpoint}}')
    chmod 0777 "$mp"
  done
  # E2E_STEP_ENV="A=1 B=2": extra environment for every container, e.g. BATON_INOTIFY=off.
  jq --arg hostdir "$dir/containers" --arg prefix "$prefix" \
    --argjson env "$(printf '%s\n' ${E2E_STEP_ENV:-} | jq -R -s 'split("\n") | map(select(contains("=")) | split("=") | {key: .[0], value: (.[1:] | join("="))}) | from_entries')" \
    -f "$E2E_DIR/kubelet/play.jq" "$dir/spec.json" > "$dir/play.json"
  podman kube play "$dir/play.json" > "$dir/play.log" 2>&1
  rc=$?
  PLAYED=$pod
  return $rc
}

# Containers of a pod other than its infra container, with their podman state.
pod_states() {
  podman pod inspect "$1" --format '{{range .Containers}}{{.Name}} {{.State}}{{"\n"}}{{end}}' 2>/dev/null | grep -v -- '-infra '
}

# wait_pod POD SECONDS: until no container of the pod runs any more. Returns 1 on time-out.
wait_pod() {
  local pod=$1 deadline=$(( $(now_ms) + $2 * 1000 ))
  while pod_states "$pod" | grep -Eq ' (running|paused|stopping)$'; do
    [ "$(now_ms)" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}

# wait_log POD CONTAINER TEXT SECONDS: until the container's log shows TEXT.
wait_log() {
  local deadline=$(( $(now_ms) + $4 * 1000 ))
  until podman logs "$1-$2" 2>&1 | grep -qF -- "$3"; do
    [ "$(now_ms)" -lt "$deadline" ] || return 1
    sleep 0.05
  done
}

# read_message FILE SHARE: the kubelet's reading of a termination-message file: at most the LAST 4096
# bytes (a missing file counts as empty), then the status manager keeps the FIRST SHARE bytes
# (12288 / containers of the spec), even in the middle of a UTF-8 character.
read_message() {
  [ -f "$1" ] || return 0
  tail -c "$KUBELET_FILE_LIMIT" "$1" | head -c "$2"
}

# kubelet_status POD: writes $(pod_dir POD)/pod.json, the Pod with .status in the kubelet's shape.
kubelet_status() {
  local pod=$1 dir n share name file policy exit_code
  dir=$(pod_dir "$pod")
  n=$(jq '(.spec.initContainers // [] | length) + (.spec.containers | length) + (.spec.ephemeralContainers // [] | length)' "$dir/spec.json")
  share=$(( KUBELET_POD_BUDGET / n ))
  # shellcheck disable=SC2046
  podman inspect $(jq -r --arg p "$pod" '(.spec.initContainers // [])[].name, .spec.containers[].name | "\($p)-\(.)"' "$dir/spec.json") \
    > "$dir/inspect.json" 2>/dev/null || true
  [ -s "$dir/inspect.json" ] || echo '[]' > "$dir/inspect.json"
  podman pod inspect "$pod" > "$dir/pod-inspect.json" 2>/dev/null || echo '{}' > "$dir/pod-inspect.json"
  echo '{}' > "$dir/messages.json"
  for name in $(jq -r '(.spec.initContainers // [])[].name, .spec.containers[].name' "$dir/spec.json"); do
    file="$dir/containers/$name/termination-log"
    read_message "$file" "$KUBELET_FILE_LIMIT" > "$dir/containers/$name/message.file"
    policy=$(jq -r --arg n "$name" '[(.spec.initContainers // [])[], .spec.containers[]] | map(select(.name == $n))[0].terminationMessagePolicy // "File"' "$dir/spec.json")
    exit_code=$(jq -r --arg n "$pod-$name" 'map(select(.Name == $n))[0].State.ExitCode // 0' "$dir/inspect.json")
    if [ "$policy" = FallbackToLogsOnError ] && [ ! -s "$dir/containers/$name/message.file" ] && [ "$exit_code" != 0 ]; then
      podman logs --tail "$KUBELET_LOG_LINES" "$pod-$name" 2>&1 | tail -c "$KUBELET_LOG_BYTES" > "$dir/containers/$name/message.file"
    fi
    head -c "$share" "$dir/containers/$name/message.file" > "$dir/containers/$name/message"
    jq -Rs --arg n "$name" --slurpfile all "$dir/messages.json" '$all[0] + {($n): .}' \
      < "$dir/containers/$name/message" > "$dir/messages.json.tmp" && mv "$dir/messages.json.tmp" "$dir/messages.json"
  done
  # Containers the runtime could not start (the kubelet's StartError): podman kube play names
  # them in its output, "starting container ID: MESSAGE".
  sed -n 's/^starting container \([0-9a-f]\{64\}\): \(.*\)$/\1\t\2/p' "$dir/play.log" 2>/dev/null \
    | jq -R -s 'split("\n") | map(select(length > 0) | split("\t") | {key: .[0], value: (.[1:] | join("\t"))}) | from_entries' \
    > "$dir/start-errors.json"
  jq -n --slurpfile spec "$dir/spec.json" --slurpfile ctrs "$dir/inspect.json" \
    --slurpfile pod "$dir/pod-inspect.json" --slurpfile msgs "$dir/messages.json" \
    --slurpfile starterr "$dir/start-errors.json" \
    -f "$E2E_DIR/kubelet/status.jq" > "$dir/pod.json"
}

# run_status POD: $(pod_dir POD)/fallback.json from the harness's reader, and batonctl.json from
# `batonctl status -f pod.json -o json` when BATONCTL_BIN is set. Returns batonctl's exit code.
run_status() {
  local dir
  dir=$(pod_dir "$1")
  jq -f "$E2E_DIR/run-status.jq" "$dir/pod.json" > "$dir/fallback.json"
  expand_results "$dir/fallback.json"
  rm -f "$dir/batonctl.json"
  if [ -n "${BATONCTL_BIN:-}" ] && [ -x "$BATONCTL_BIN" ]; then
    "$BATONCTL_BIN" status -f "$dir/pod.json" -o json > "$dir/batonctl.json" 2> "$dir/batonctl.err"
    return $?
  fi
}

# inflate_raw: base64 of raw DEFLATE (RFC 1951) on stdin -> the data, at most 1 MiB. gzip reads raw
# DEFLATE behind a gzip header; the missing trailer makes it complain at the end, after the data.
inflate_raw() {
  { printf '\037\213\010\000\000\000\000\000\000\003'; base64 -d; } | gzip -dc 2>/dev/null | head -c 1048576
}

# expand_results FILE: in a run status from run-status.jq, replaces every step's resultsDeflate (baton's
# compressed results, docs/message-budget.md) by the results it holds.
expand_results() {
  local file=$1 name results
  for name in $(jq -r '.steps[] | select(.resultsDeflate != null) | .name' "$file"); do
    results=$(jq -r --arg n "$name" '.steps[] | select(.name == $n) | .resultsDeflate' "$file" | inflate_raw)
    jq --arg n "$name" --arg r "$results" '
      .steps |= map(if .name == $n then (del(.resultsDeflate) | .results = (try ($r | fromjson) catch {})) else . end)
      | .results = (reduce .steps[] as $s ({}; . + ($s.results // {})))' "$file" > "$file.tmp" && mv "$file.tmp" "$file"
  done
}

# The run status to assert on: batonctl's when it ran, else the harness's reader.
status_file() {
  local dir
  dir=$(pod_dir "$1")
  if [ -s "$dir/batonctl.json" ]; then printf '%s\n' "$dir/batonctl.json"; else printf '%s\n' "$dir/fallback.json"; fi
}

# A table of a run status file (the fallback of batonctl's table).
status_table() {
  jq -r "$JQ_MS"'
    "POD \(.pod)  PHASE \(.phase)",
    (["STEP", "KIND", "STATE", "EXIT", "REASON", "STARTED", "DURATION", "RESULTS"] | @tsv),
    (.steps[] | [.name, .kind, .state, (.exitCode // "-" | tostring), (.reason // "-"), (.startedAt // "-"),
       (if .startedAt != null and .finishedAt != null and (.startedAt | length) > 20
        then "\((.finishedAt | ms) - (.startedAt | ms)) ms" else "-" end),
       (.results // {} | to_entries | map("\(.key)=\(.value | if length > 24 then .[0:21] + "..." else . end)") | join(" ") | if . == "" then "-" else . end)] | @tsv)' "$1" \
  | awk -F'\t' 'NR == 1 { print; next }
      { for (i = 1; i <= NF; i++) { cell[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) } rows = NR; cols = NF > cols ? NF : cols }
      END { for (r = 2; r <= rows; r++) { line = ""; for (i = 1; i <= cols; i++) line = line sprintf(i < cols ? "%-" w[i] "s  " : "%s", cell[r, i]); print line } }'
}

# Removes a pod this harness plays (by name), and waits for nothing.
remove_pod() {
  podman pod exists "$1" 2>/dev/null || return 0
  podman pod rm -f -t 0 "$1" >/dev/null 2>&1
}

# Removes every pod and volume this process created. Set E2E_KEEP=1 to keep them for a post-mortem.
e2e_cleanup() {
  local p v
  if [ "${E2E_KEEP:-0}" = 1 ]; then
    say "E2E_KEEP=1: keeping pods ${E2E_PODS[*]:-} and volumes ${E2E_VOLUMES[*]:-}"
    return 0
  fi
  for p in "${E2E_PODS[@]}"; do remove_pod "$p"; done
  for v in "${E2E_VOLUMES[@]}"; do podman volume rm -f "$v" >/dev/null 2>&1; done
}
