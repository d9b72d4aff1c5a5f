#!/usr/bin/env bash
# e2e/argo-upstream.sh: baton's Argo mode side by side with upstream's own emissary, on podman.
#
# Upstream Argo Workflows' argoexec v4.0.5, built from its Go module (e2e/upstream/build-argoexec,
# cached in ~/.cache/baton-upstream), is the executor image's /bin/argoexec in one run of each pod
# (its `init` copies itself to /var/run/argo/argoexec, so every member runs upstream's emissary); in
# the other run the executor image is argo.Containerfile's on that same image (baton at /bin/argoexec,
# upstream's beside it as /bin/argoexec-upstream: `init` is handed to upstream's, which copies baton).
# The Pods are built by e2e/argo/pod.jq, in the controller's shape, from the Argo templates in
# e2e/argo/side-by-side/ (a container set with retries, a sidecar and outputs; a plain step with
# outputs of every kind; a container set whose members fail: exit 3, a signal through ctr/d/signal,
# a SIGKILLed container, each with a dependent), plus a 10-step container set for the figures.
#
# What each run wrote is compared field by field: every container's exit code and termination
# message, the command's output in its log (the emissaries' own log lines left out), ctr/<name>/
# (exitcode, stdout, combined, the entries and their modes), /var/run/argo's entries,
# outputs/ (the tree, each parameter's bytes, each artifact's entries, modes, sizes, links, contents
# and tar format) and the files the commands left in the workspace. A field that differs passes only
# if it is listed in e2e/argo/side-by-side/differences.tsv with both values, each such line being a
# deliberate difference that docs/argo.md explains ("Differences from upstream v4.0.5, as measured").
#
# The `wait` container runs e2e/argo/argoexec-standin.sh in both runs (its `wait` reports the exit
# codes and outputs it finds): upstream's `wait` needs the Kubernetes API, which podman has not.
#
# Usage: e2e/argo-upstream.sh      (E2E_KEEP=1 keeps pods and volumes; BENCH_ROUNDS=N rounds of the
#                                    10-step figure, default 1; LOST_WAIT seconds given upstream's
#                                    member to notice a lost dependency, default 3; SHAPES="step bench"
#                                    runs only those of containerset, step, failures, bench)
# Images (this suite's own tags): ARGO_UPSTREAM_EXEC_IMAGE (upstream's argoexec on scratch, default
# localhost/argoexec:argo-upstream), ARGO_BATON_EXEC_IMAGE (default localhost/argoexec-baton:argo-upstream),
# ARGO_WAIT_IMAGE (the stand-in for `wait`, default localhost/argoexec-upstream-standin:argo-upstream),
# STEP_IMAGE (default localhost/busybox-step:argo-upstream).
set -uo pipefail

E2E_NAME="argo-upstream"
STEP_IMAGE=${STEP_IMAGE:-localhost/busybox-step:argo-upstream}
ARGO_UPSTREAM_EXEC_IMAGE=${ARGO_UPSTREAM_EXEC_IMAGE:-localhost/argoexec:argo-upstream}
ARGO_BATON_EXEC_IMAGE=${ARGO_BATON_EXEC_IMAGE:-localhost/argoexec-baton:argo-upstream}
ARGO_WAIT_IMAGE=${ARGO_WAIT_IMAGE:-localhost/argoexec-upstream-standin:argo-upstream}
# shellcheck source=e2e/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

BENCH_ROUNDS=${BENCH_ROUNDS:-1}
LOST_WAIT=${LOST_WAIT:-3}
SIDE="$E2E_DIR/argo/side-by-side"
DIFFERENCES="$SIDE/differences.tsv"
START_S=$(date +%s)

E2E_WORK=$(mktemp -d /tmp/baton-argo-upstream.XXXXXX)
PASSED=0
FAILED=0
finish() {
  e2e_cleanup
  if [ "${E2E_KEEP:-0}" = 1 ] || [ "$FAILED" -gt 0 ]; then say "artifacts in $E2E_WORK"; else rm -rf "$E2E_WORK"; fi
}
trap finish EXIT

pass() { PASSED=$((PASSED + 1)); printf 'PASS  %s\n' "$*"; }
fail() { FAILED=$((FAILED + 1)); printf 'FAIL  %s\n' "$*"; }
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }

# ---------------------------------------------------------------------------------------------------
# Upstream's argoexec and the images

ensure_tools
ensure_baton_binary
command -v go >/dev/null 2>&1 || die "no 'go' on PATH: install Go 1.26 or newer (e2e/upstream/build-argoexec builds upstream's argoexec)"
ARGOEXEC=$("$E2E_DIR/upstream/build-argoexec" | tail -n 1) || die "e2e/upstream/build-argoexec failed"
[ -x "$ARGOEXEC" ] || die "e2e/upstream/build-argoexec printed $ARGOEXEC, which is not an executable"
say "upstream: $ARGOEXEC, $(stat -c %s "$ARGOEXEC") bytes ($("$ARGOEXEC" version --short 2>/dev/null | head -n 1))"
say "baton: $BATON_BIN, $(stat -c %s "$BATON_BIN") bytes"

old_ids=()
images=("$STEP_IMAGE" "$ARGO_UPSTREAM_EXEC_IMAGE" "$ARGO_BATON_EXEC_IMAGE" "$ARGO_WAIT_IMAGE")
for image in "${images[@]}"; do old_ids+=("$(podman image inspect "$image" --format '{{.Id}}' 2>/dev/null)"); done
build_step_image
ctx=$(mktemp -d)
cp "$ARGOEXEC" "$ctx/argoexec"
cp "$E2E_DIR/upstream/kubeconfig" "$ctx/kubeconfig"
podman build -q --layers=false -f "$E2E_DIR/upstream/argoexec.Containerfile" -t "$ARGO_UPSTREAM_EXEC_IMAGE" "$ctx" >/dev/null \
  || die "podman build of $ARGO_UPSTREAM_EXEC_IMAGE failed"
rm -rf "$ctx"
build_argo_executor_image "$ARGO_UPSTREAM_EXEC_IMAGE" "$ARGO_BATON_EXEC_IMAGE"
# The stand-in's executor image is not used: only its upstream part, for `wait`.
build_argo_images "$ARGO_WAIT_IMAGE" "$ARGO_WAIT_IMAGE-exec"
podman rmi "$ARGO_WAIT_IMAGE-exec" >/dev/null 2>&1
for i in "${!images[@]}"; do forget_image "${old_ids[$i]}" "${images[$i]}"; done
say "images: $ARGO_UPSTREAM_EXEC_IMAGE (upstream's argoexec), $ARGO_BATON_EXEC_IMAGE (argo.Containerfile on it), $ARGO_WAIT_IMAGE (wait), $STEP_IMAGE"

# ---------------------------------------------------------------------------------------------------
# Playing a pod under either executor

volume() { podman volume inspect "$1--$2" --format '{{.Mountpoint}}' 2>/dev/null; }
mtime_ms() { local s; s=$(stat -c %.3Y "$1" 2>/dev/null) || { echo ""; return 1; }; echo "${s/./}"; }
container_json() {
  jq -c --arg n "$2" '[.status.initContainerStatuses[]?, .status.containerStatuses[]] | map(select(.name == $n))[0]
    | {exitCode: .state.terminated.exitCode, message: (.state.terminated.message // "")}' "$(pod_dir "$1")/pod.json"
}
exit_of() { container_json "$1" "$2" | jq -r '.exitCode // "(running)"'; }
finished_ms() {
  local t
  t=$(podman inspect "$1-$2" --format '{{.State.FinishedAt.UnixNano}}' 2>/dev/null) || return 1
  echo $((t / 1000000))
}
running() { podman inspect "$1-$2" --format '{{.State.Status}}' 2>/dev/null | grep -q running; }

# template_json SHAPE: the Argo template of e2e/argo/side-by-side/SHAPE.yaml, images set.
template_json() {
  yaml_to_json "$SIDE/$1.yaml" | jq -c --arg step "$STEP_IMAGE" 'walk(if type == "object" and .image == "STEP" then .image = $step else . end)'
}
# bench_template N: a container set of a gate and N members s01..sN in sequence, each `true`. The gate
# waits until the N emissaries have made their ctr/<name>/, so that every member is up when it ends.
bench_template() {
  jq -n -c --argjson n "$1" --arg step "$STEP_IMAGE" '
    [range(1; $n + 1) | "s\(. | tostring | if length < 2 then "0" + . else . end)"] as $names
    | {name: "bench", inputs: {}, outputs: {}, metadata: {},
       containerSet: {containers: ([{name: "gate", image: $step, command: ["sh", "-c"],
           args: ["for c in \($names | join(" ")); do until [ -d /var/run/argo/ctr/$c ]; do sleep 0.05; done; done; sleep 0.3"],
           resources: {}}]
         + [$names | to_entries[] | {name: .value, image: $step, command: ["true"], resources: {},
             dependencies: [if .key == 0 then "gate" else $names[.key - 1] end]}])},
       archiveLocation: {archiveLogs: false}}'
}

# start_pod TEMPLATE_JSON POD IMPL: plays the Pod e2e/argo/pod.jq builds for the template, `init` from
# upstream's image (IMPL upstream) or baton's (IMPL baton). Sets PLAYED.
start_pod() {
  local exec_image=$ARGO_UPSTREAM_EXEC_IMAGE file="$E2E_WORK/$2.json"
  [ "$3" = baton ] && exec_image=$ARGO_BATON_EXEC_IMAGE
  jq --arg pod "$2" --arg init "$exec_image" --arg wait "$ARGO_WAIT_IMAGE" --arg step "$STEP_IMAGE" \
    -f "$E2E_DIR/argo/pod.jq" <<<"$1" > "$file" || die "e2e/argo/pod.jq failed for $2"
  PLAY_MS=$(now_ms)
  play "$file" || { cat "$(pod_dir "$2")/play.log" >&2; die "podman kube play of $2 failed"; }
}

# ---------------------------------------------------------------------------------------------------
# Facts: what a run wrote, one "KEY<TAB>JSON string" line each, for the field-by-field comparison

# The command's own output in a container's log: without the emissary's lines (upstream's log lines,
# time=… level=… msg=…; its error, printed twice, and cobra's "Error: exit status N" after a command
# that failed; baton's "baton: …" sentences).
command_log() {
  local msg=$3
  awk -v m="$msg" 'index($0, "time=") == 1 || index($0, "baton: ") == 1 { next }
    /^Error: exit status [0-9]+$/ || (m != "" && ($0 == m || $0 == "Error: " m)) { next } { print }' "$(pod_dir "$1")/containers/$2/log"
}

# fact KEY < VALUE: one fact of the pod being read, into $FACTS.
fact() { printf '%s\t%s\n' "$1" "$(jq -Rsc .)" >> "$FACTS"; }

# facts POD SHAPE_TEMPLATE_JSON: writes $E2E_WORK/POD.facts, and sets FACTS to it.
facts() {
  local pod=$1 template=$2 argo ws c msg tmp p a
  FACTS="$E2E_WORK/$1.facts"
  argo=$(volume "$pod" var-run-argo)
  ws=$(volume "$pod" workspace)
  : > "$FACTS"
  for c in $(jq -r '(.spec.initContainers // [])[].name, .spec.containers[].name' "$(pod_dir "$pod")/spec.json"); do
    msg=$(container_json "$pod" "$c" | jq -r .message)
    podman logs "$pod-$c" > "$(pod_dir "$pod")/containers/$c/log" 2>&1
    exit_of "$pod" "$c" | fact "$c: container exit code"
    printf '%s' "$msg" | fact "$c: termination message"
    [ "$c" = init ] || [ "$c" = wait ] || command_log "$pod" "$c" "$msg" | fact "$c: the command's output in the container log"
  done
  find "$argo" -mindepth 1 -maxdepth 1 -printf '%P %y %m\n' | sort | fact "/var/run/argo: entries, types and modes"
  sha256sum < "$argo/template" | cut -c1-16 | fact "/var/run/argo/template: sha256 (written by upstream's init in both)"
  for c in $(jq -r '.containerSet.containers[]?.name, (if .container then "main" else empty end), .sidecars[]?.name' <<<"$template"); do
    if [ -f "$argo/ctr/$c/exitcode" ]; then fact "ctr/$c/exitcode" < "$argo/ctr/$c/exitcode"; else printf '(none)' | fact "ctr/$c/exitcode"; fi
    # Without `signal`, a request that its emissary removes once read: upstream's may leave the last
    # one of a sidecar it ran again after stopping it (docs/argo.md), depending on the timing.
    find "$argo/ctr/$c" -mindepth 1 ! -name 'baton.*' ! -name signal -printf '%P %y %m\n' 2>/dev/null | sort \
      | fact "ctr/$c/: entries, types and modes (baton.* and signal left out)"
    for f in stdout combined; do
      if [ -f "$argo/ctr/$c/$f" ]; then fact "ctr/$c/$f" < "$argo/ctr/$c/$f"; else printf '(none)' | fact "ctr/$c/$f"; fi
    done
  done
  (cd "$argo/ctr" && find . -mindepth 2 -maxdepth 2 -name 'baton.*' -printf '%P %y %m\n' | sort) \
    | fact "ctr/*/baton.*: baton's lock and beacon (docs/argo.md), with types and modes"
  if [ -d "$argo/outputs" ]; then
    (cd "$argo/outputs" && find . -mindepth 1 -printf '%P %y %m %s\n' | awk '$1 ~ /\.tgz$/ { $4 = "-" } { print }' | sort) \
      | fact "outputs/: entries, types, modes and sizes (.tgz sizes left out)"
  else
    printf '(none)' | fact "outputs/: entries, types, modes and sizes (.tgz sizes left out)"
  fi
  for p in $(jq -r '.outputs.parameters[]?.valueFrom.path' <<<"$template"); do
    if [ -f "$argo/outputs/parameters$p" ]; then fact "outputs/parameters$p" < "$argo/outputs/parameters$p"; else printf '(none)' | fact "outputs/parameters$p"; fi
  done
  for a in $(jq -r '.outputs.artifacts[]?.path' <<<"$template"); do
    a=${a%/}
    local tgz="$argo/outputs/artifacts$a.tgz"
    if [ ! -f "$tgz" ]; then printf '(none)' | fact "outputs/artifacts$a.tgz"; continue; fi
    # Entries in archive order: type and mode, owner (names, else numbers), size, name (and a link's
    # target); no times.
    tar -tvzf "$tgz" 2>&1 | awk '{ $4 = ""; $5 = ""; print }' | tr -s ' ' | fact "outputs/artifacts$a.tgz: entries (type, mode, owner, size, name)"
    gzip -dc "$tgz" | dd bs=1 skip=257 count=8 2>/dev/null | od -An -c | tr -s ' ' | fact "outputs/artifacts$a.tgz: first header's magic and version"
    if [ "$a" = /tmp/rounded.txt ]; then
      # Its mtime's fraction is .6 or more: Go's tar writer rounds it up to the next second.
      echo $(( $(tar -tvzf "$tgz" --full-time | awk '{ print $4 " " $5 }' | date -f - +%s) - $(cat "$ws/rounded.secs") )) \
        | fact "outputs/artifacts$a.tgz: its header's mtime minus the file's whole seconds"
    else
      # Every mtime in it fixed by the command: the archive itself, byte for byte, once gunzipped.
      gzip -dc "$tgz" | sha256sum | cut -c1-16 | fact "outputs/artifacts$a.tgz: the tar stream, gunzipped (sha256)"
    fi
    tmp=$(mktemp -d)
    tar -xzf "$tgz" -C "$tmp" 2>&1 | fact "outputs/artifacts$a.tgz: GNU tar unpacks it (its complaints)"
    (cd "$tmp" && find . -type f -exec sha256sum {} + | cut -c1-16,65- | sort -k2) | fact "outputs/artifacts$a.tgz: contents (sha256)"
    rm -rf "$tmp"
  done
  if [ -n "$ws" ]; then
    (cd "$ws" && find . -mindepth 1 -printf '%P %y\n' | sort) | fact "workspace: what the commands left"
    [ -f "$ws/flaky.runs" ] && wc -l < "$ws/flaky.runs" | tr -d ' \n' | fact "flaky: runs"
  fi
  return 0
}

# compare SHAPE: every fact of SHAPE's upstream run against its baton run.
compare() {
  local shape=$1 up="$E2E_WORK/au-$1-upstream.facts" bt="$E2E_WORK/au-$1-baton.facts"
  jq -n -r --rawfile up "$up" --rawfile bt "$bt" --rawfile known "$DIFFERENCES" --arg shape "$shape" '
    def parse: split("\n") | map(select(length > 0) | split("\t") | {key: .[0], value: (.[1] | fromjson)});
    def short: if length > 90 then .[0:87] + "..." else . end | tojson;
    ($up | parse) as $u | ($bt | parse) as $b
    | ($u | from_entries) as $uu | ($b | from_entries) as $bb
    | ($known | split("\n") | map(select(length > 0 and (startswith("#") | not)) | split("\t")
        | select(.[0] == $shape) | {key: .[1], value: {up: (.[2] | fromjson), bt: (.[3] | fromjson), why: .[4]}}) | from_entries) as $k
    | (($u + $b) | map(.key) | reduce .[] as $x ([]; if index([$x]) then . else . + [$x] end))[]
    | . as $key | $uu[$key] as $x | $bb[$key] as $y | $k[$key] as $d
    | if $x == $y and $d == null then "PASS\t\($shape): \($key): the same under both: \($x // "(missing)" | short)"
      elif $x == $y then "FAIL\t\($shape): \($key): the same under both (\($x | short)), but differences.tsv lists a difference: update it and docs/argo.md"
      elif $d != null and $d.up == $x and $d.bt == $y then "PASS\t\($shape): \($key): upstream \($x | short), baton \($y | short): deliberate, \($d.why)"
      elif $d != null then "FAIL\t\($shape): \($key): upstream \($x // "(missing)" | short), baton \($y // "(missing)" | short); differences.tsv expects upstream \($d.up | short), baton \($d.bt | short)"
      else "FAIL\t\($shape): \($key): upstream \($x // "(missing)" | short), baton \($y // "(missing)" | short): an unlisted difference" end' \
  > "$E2E_WORK/$shape.compare" || { fail "$shape: the comparison itself failed (jq)"; return; }
  local verdict line
  while IFS=$'\t' read -r verdict line; do
    if [ "$verdict" = PASS ]; then pass "$line"; else fail "$line"; fi
  done < "$E2E_WORK/$shape.compare"
}

# ---------------------------------------------------------------------------------------------------
# The shapes, each run under upstream's emissary and then baton's

# The two binaries the init containers installed: each run's own.
check_installed() {
  local pod=$1 impl=$2 want=$ARGOEXEC argo
  [ "$impl" = baton ] && want=$BATON_BIN
  argo=$(volume "$pod" var-run-argo)
  check "$pod: init installed $impl's binary as /var/run/argo/argoexec" cmp -s "$argo/argoexec" "$want"
}

run_plain() { # run_plain SHAPE: a pod that ends by itself
  local shape=$1 template impl pod
  template=$(template_json "$shape")
  for impl in upstream baton; do
    pod="au-$shape-$impl"
    start_pod "$template" "$pod" "$impl"
    wait_pod "$pod" 90 || { fail "$pod: the pod ends within 90 s ($(pod_states "$pod" | tr '\n' ' '))"; podman pod stop -t 1 "$pod" >/dev/null 2>&1; }
    kubelet_status "$pod"
    check_installed "$pod" "$impl"
    facts "$pod" "$template"
    remove_pod "$pod"
  done
  compare "$shape"
}

run_failures() {
  local template impl pod argo ws t_signal t_kill d_ms f_ms alone kills
  template=$(template_json failures)
  for impl in upstream baton; do
    pod="au-failures-$impl"
    start_pod "$template" "$pod" "$impl"
    argo=$(volume "$pod" var-run-argo)
    ws=$(volume "$pod" workspace)
    until_true 30 all_ok test -e "$ws/d.started" -- test -e "$ws/e.started" -- test -d "$argo/ctr/c" -- test -d "$argo/ctr/f" \
      || die "$pod: members d, e, c and f never all started ($(pod_states "$pod" | tr '\n' ' '))"
    sleep 0.3 # c and f are past their start-up and wait for d and e
    # What Argo's wait container writes to stop a container (emissary.Kill): the number, in place.
    t_signal=$(now_ms)
    printf '%d' 15 > "$argo/ctr/d/signal"
    t_kill=$(now_ms)
    podman kill --signal KILL "$pod-e" >/dev/null || die "podman kill $pod-e failed"
    until_true 30 members_ended "$pod" 'a|b|c|d|e' || fail "$pod: members a to e end within 30 s ($(pod_states "$pod" | tr '\n' ' '))"
    # f waits for e, which died without an exitcode: does f end by itself within LOST_WAIT seconds?
    alone=no
    until_true "$LOST_WAIT" not running "$pod" f && alone=yes
    kills=0
    while [ "$alone" = no ] && running "$pod" f && [ "$kills" -lt 3 ]; do
      # What Argo's controller does once it sees e's container terminated: `kubectl exec` of
      # /var/run/argo/argoexec kill 15 1 in every running container of the pod, again at its next
      # reconciliation if the pod still runs.
      podman exec "$pod-f" /var/run/argo/argoexec kill 15 1 >> "$(pod_dir "$pod")/kill.log" 2>&1
      kills=$((kills + 1))
      until_true 5 not running "$pod" f
    done
    [ "$alone" = yes ] || check "$pod: f ended after the controller's kill 15 1 (sent $kills time(s), 5 s apart)" not running "$pod" f
    podman pod stop -t 2 "$pod" >/dev/null 2>&1 # the wait container waits for e's exitcode, which never comes
    kubelet_status "$pod"
    check_installed "$pod" "$impl"
    facts "$pod" "$template"
    printf '%s' "$alone" | fact "f: ended by itself within LOST_WAIT seconds of e's SIGKILL (before the controller's kill)"
    d_ms=$(( $(finished_ms "$pod" d) - t_signal ))
    f_ms=$(( $(finished_ms "$pod" f) - t_kill ))
    say "$impl: signal file written -> d ended ${d_ms} ms; e SIGKILLed -> f ended ${f_ms} ms ($([ "$alone" = yes ] && echo 'by itself' || echo "after the controller's kill 15 1, sent $kills time(s) from ${LOST_WAIT} s on"))"
    FIGURES+=("$impl: signal file written -> d ended: $d_ms ms" "$impl: e SIGKILLed -> f ended: $f_ms ms")
    remove_pod "$pod"
  done
  compare failures
}
not() { ! "$@"; }
members_ended() { ! pod_states "$1" | grep -E "^$1-($2) " | grep -Eq ' (running|created|configured|initialized)$'; }

stats() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1; s+=$1} END {printf "n=%d min=%d median=%d max=%d", NR, v[1], v[int((NR+1)/2)], v[NR]}'; }
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

# The figure: a gate, then 10 members in sequence, each `true`. Wall: the gate's exitcode -> s10's;
# handoffs: one exitcode to the next (the dependency seen, `true` started, run, reaped, exitcode written).
run_bench() {
  local template impl pod argo round first prev t i wall hand=() all
  template=$(bench_template 10)
  for round in $(seq 1 "$BENCH_ROUNDS"); do
    for impl in upstream baton; do
      pod="au-bench-$impl"
      start_pod "$template" "$pod" "$impl"
      wait_pod "$pod" 120 || { fail "$pod: the pod ends within 120 s"; podman pod stop -t 1 "$pod" >/dev/null 2>&1; }
      kubelet_status "$pod"
      argo=$(volume "$pod" var-run-argo)
      hand=()
      first=$(mtime_ms "$argo/ctr/gate/exitcode")
      prev=$first
      for i in $(seq -w 1 10); do
        t=$(mtime_ms "$argo/ctr/s$i/exitcode") || break
        hand+=($((t - prev)))
        prev=$t
      done
      if [ -n "$first" ] && [ ${#hand[@]} = 10 ]; then
        wall=$((prev - first))
        all=$(( $(finished_ms "$pod" s10) - PLAY_MS ))
        say "round $round, $impl: 10 steps in ${wall} ms (gate's exitcode -> s10's); handoffs $(stats "${hand[@]}") ms; podman kube play -> s10's container ended ${all} ms"
        BENCH+=("$impl $wall $(median "${hand[@]}") $all")
      else
        fail "$pod: the gate and s01..s10 each wrote an exitcode (${#hand[@]} of s01..s10 did)"
      fi
      if [ "$round" = 1 ]; then facts "$pod" "$template"; fi
      remove_pod "$pod"
    done
  done
  compare bench
}

FIGURES=()
BENCH=()
for shape in ${SHAPES:-containerset step failures bench}; do
  case $shape in
    containerset | step) run_plain "$shape" ;;
    failures) run_failures ;;
    bench) run_bench ;;
    *) die "SHAPES: no shape $shape (containerset, step, failures, bench)" ;;
  esac
done

# ---------------------------------------------------------------------------------------------------
# Summary

say "figures (this machine; mtimes of the exitcode files, podman's container end times):"
for impl in upstream baton; do
  w=() h=() a=()
  for line in "${BENCH[@]}"; do
    read -r who wall hand all <<<"$line"
    [ "$who" = "$impl" ] || continue
    w+=("$wall"); h+=("$hand"); a+=("$all")
  done
  [ ${#w[@]} -gt 0 ] && say "  $impl: 10 steps of \`true\` in sequence: wall $(median "${w[@]}") ms, median handoff $(median "${h[@]}") ms, play -> last container ended $(median "${a[@]}") ms (median of ${#w[@]} round(s))"
done
for f in "${FIGURES[@]}"; do say "  $f"; done
say "took $(( $(date +%s) - START_S )) s"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
