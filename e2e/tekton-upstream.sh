#!/usr/bin/env bash
# e2e/tekton-upstream.sh: baton's Tekton mode side by side with upstream's entrypoint, on podman.
#
# Builds upstream Tekton's real entrypoint (v1.15.0, e2e/upstream/build-tekton-entrypoint, cached outside
# the repository) and plays the same Tekton-shaped pods twice: once with upstream's entrypoint image
# (its binary at /ko-app/entrypoint), once with baton's (tekton.Containerfile) in its place. Each pod is
# in the controller's shape: init container `prepare` running `/ko-app/entrypoint init /ko-app/entrypoint
# /tekton/bin/entrypoint step-…`, steps running /tekton/bin/entrypoint with the same flags (-wait_file,
# -post_file, -termination_path, -step_metadata_dir, -results, …) and chained through /tekton/run/<i>/out,
# the first of each chain waiting on the downward-API file /tekton/downward/ready. The harness plays the
# kubelet (e2e/lib.sh: termination files, emptyDirs), the controller's ready and cancel annotations (the
# downward volume's atomic-writer swap), `kubectl exec` of Tekton's debug scripts (podman exec) and a pod
# deletion (podman pod stop). Pods are tku-<shape>-<upstream|baton>; the images, tagged :tekton-upstream,
# are removed at the end (unless E2E_KEEP=1).
#
# Then it compares, field by field, what each wrote: the exit codes, the termination messages (entries by
# key, type and value; StartedAt's value only by its format), every file under /tekton/run/<i> (post
# files, `exitCode`, step results, the metadata folder, with modes), /tekton/results, the output copies
# (-stdout_path, -stderr_path) and the links `init` made in /tekton/steps. A field that differs passes
# only when it is in DELIBERATE below, with exactly the values listed there (docs/tekton.md, "Differences
# from upstream v1.15.0, as measured", says why); a listed difference no longer seen fails too.
# Last, the figure: a 20-step pod (each step `true`, each waiting on the one before) under both
# entrypoints, wall time from the ready annotation to the last post file and the median handoff.
#
# One line per check (PASS/FAIL), then `N passed, M failed`; exit 1 when a check failed.
# Usage: e2e/tekton-upstream.sh          (E2E_KEEP=1 keeps pods, volumes and $E2E_WORK;
#        SHAPES="chain ends" runs some pods (chain ends debug leftovers stop bench);
#        BENCH_STEPS=N, default 20; BENCH_ROUNDS=N, default 1)
set -uo pipefail

E2E_NAME=tekton-upstream
STEP_IMAGE=${STEP_IMAGE:-localhost/busybox-step:tekton-upstream}
# shellcheck source=e2e/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
# shellcheck source=e2e/checks.sh
source "$E2E_DIR/checks.sh"
# shellcheck source=e2e/upstream/tekton/side-by-side.sh
source "$E2E_DIR/upstream/tekton/side-by-side.sh"

UPSTREAM_IMAGE=localhost/tekton-entrypoint-upstream:tekton-upstream
BATON_TEKTON_IMAGE=localhost/baton-tekton:tekton-upstream
SHAPES=${SHAPES:-chain ends debug leftovers stop bench}
BENCH_STEPS=${BENCH_STEPS:-20}
BENCH_ROUNDS=${BENCH_ROUNDS:-1}
ENGINES=(upstream baton)

E2E_WORK=$(mktemp -d "${TMPDIR:-/tmp}/baton-tekton-upstream.XXXXXX")
finish() {
  e2e_cleanup
  if [ "${E2E_KEEP:-0}" = 1 ]; then
    say "kept $E2E_WORK"
  else
    rm -rf "$E2E_WORK"
    podman rmi "$UPSTREAM_IMAGE" "$BATON_TEKTON_IMAGE" "$STEP_IMAGE" >/dev/null 2>&1
  fi
}
trap finish EXIT

# ---------------------------------------------------------------------------------------------------
# Build: upstream's entrypoint (cached), baton, the three images.

ensure_tools
UPSTREAM_BIN=$("$E2E_DIR/upstream/build-tekton-entrypoint" | tail -n 1)
[ -x "$UPSTREAM_BIN" ] || die "e2e/upstream/build-tekton-entrypoint built nothing"
say "upstream's entrypoint: $UPSTREAM_BIN, $(stat -c %s "$UPSTREAM_BIN") bytes"
ctx=$(mktemp -d)
cp "$UPSTREAM_BIN" "$ctx/entrypoint"
podman build -q --layers=false -f "$E2E_DIR/upstream/tekton/entrypoint.Containerfile" -t "$UPSTREAM_IMAGE" "$ctx" >/dev/null \
  || die "podman build of $UPSTREAM_IMAGE failed"
rm -rf "$ctx"
build_tekton_image "$BATON_TEKTON_IMAGE"
build_step_image
say "images: $UPSTREAM_IMAGE ($(image_size "$UPSTREAM_IMAGE") bytes), $BATON_TEKTON_IMAGE ($(image_size "$BATON_TEKTON_IMAGE") bytes), $STEP_IMAGE"

image_of() { if [ "$1" = upstream ]; then echo "$UPSTREAM_IMAGE"; else echo "$BATON_TEKTON_IMAGE"; fi; }


volume_path() { podman volume inspect "$1--$2" --format '{{.Mountpoint}}'; }
mtime_ms() { local s; s=$(stat -c %.3Y "$1" 2>/dev/null) || return 1; echo "${s/./}"; }
step_names() { jq -r '.spec.containers[].name' "$(pod_dir "$1")/spec.json"; }
# step_index POD STEP: i of /tekton/run/<i>.
step_index() { jq -r --arg n "$2" '.spec.containers | map(.name) | index($n)' "$(pod_dir "$1")/spec.json"; }
run_dir() { volume_path "$1" "tekton-internal-run-$(step_index "$1" "$2")"; }
state_of() { podman inspect "$1-$2" --format '{{.State.Status}}' 2>/dev/null; }
exited() { [ "$(state_of "$1" "$2")" = exited ]; }

all_running() { # all_running POD: every step container has started
  local states c
  states=$(pod_states "$1")
  for c in $(step_names "$1"); do
    grep -Eq "^$1-$c (running|exited|stopped)$" <<<"$states" || return 1
  done
}
# lib.sh's until_true retries every 50 ms here.
UNTIL_EVERY=0.05

# play_shape SHAPE ENGINE: plays the pod SHAPE described in $E2E_WORK/SHAPE.spec under ENGINE's
# entrypoint image; runs the shape's hooks (SHAPE_before_ready, SHAPE_running) when defined. Sets
# R_POD and R_READY (ms of the ready swap); the pod has ended and has its pod.json.
play_shape() {
  local shape=$1 engine=$2 down file
  R_POD=tku-$shape-$engine
  down="$E2E_WORK/downward-$R_POD"
  rm -rf "$down"
  downward_dir "$down"
  file="$E2E_WORK/$R_POD.json"
  shape_pod "$E2E_WORK/$shape.spec" "$R_POD" "$(image_of "$engine")" "$STEP_IMAGE" "$down" "$(cat "$E2E_WORK/$shape.results")" > "$file"
  play "$file" || { cat "$(pod_dir "$R_POD")/play.log" >&2; die "podman kube play of $R_POD failed"; }
  until_true 120 all_running "$R_POD" || die "$R_POD: the step containers never started"
  # The steps are all waiting: the first ones on the ready file, the others on their predecessor.
  sleep 0.3
  if declare -F "${shape}_before_ready" >/dev/null; then "${shape}_before_ready" "$R_POD" "$engine"; fi
  R_READY=$(set_ready "$down")
  if declare -F "${shape}_running" >/dev/null; then "${shape}_running" "$R_POD" "$engine"; fi
  wait_pod "$R_POD" 120 || die "pod $R_POD did not finish within 120 s"
  kubelet_status "$R_POD"
}

# ---------------------------------------------------------------------------------------------------
# What each entrypoint wrote, as facts: "KEY<TAB>VALUE", KEY = "<group> <field>". Groups are a step
# (step-a: exit code, message; step-a/files: its /tekton/run/<i>) or the pod's shared folders.

# tree_facts GROUP PREFIX DIR: a line per entry under DIR: type, mode, and a file's bytes (JSON string).
tree_facts() {
  local group=$1 prefix=$2 dir=$3 p rel
  [ -d "$dir" ] || return 0
  while IFS= read -r p; do
    rel=${p#"$dir"/}
    if [ -L "$p" ]; then printf '%s %s%s\tlink -> %s\n' "$group" "$prefix" "$rel" "$(readlink "$p")"
    elif [ -d "$p" ]; then printf '%s %s%s\tfolder %s\n' "$group" "$prefix" "$rel" "$(stat -c %a "$p")"
    elif [ -p "$p" ]; then printf '%s %s%s\tfifo %s\n' "$group" "$prefix" "$rel" "$(stat -c %a "$p")"
    elif [ -f "$p" ]; then printf '%s %s%s\tfile %s %s\n' "$group" "$prefix" "$rel" "$(stat -c %a "$p")" "$(head -c 300 "$p" | jq -Rsc .)"
    else printf '%s %s%s\tother %s\n' "$group" "$prefix" "$rel" "$(stat -c %F "$p")"
    fi
  done < <(find "$dir" -mindepth 1 | LC_ALL=C sort)
}

# facts POD: $E2E_WORK/POD.facts (compared) and POD.times (StartedAt, post file, ends; in ms).
facts() {
  local pod=$1 dir name i run post started
  dir=$(pod_dir "$pod")
  {
    for name in $(step_names "$pod"); do
      printf '%s exit\t%s\n' "$name" "$(jq -r --arg n "$pod-$name" 'map(select(.Name == $n))[0].State.ExitCode' "$dir/inspect.json")"
      message_facts "$name" "$dir/containers/$name/termination-log"
      tree_facts "$name/files" "run/$(step_index "$pod" "$name")/" "$(run_dir "$pod" "$name")"
    done
    printf 'init exit\t%s\n' "$(jq -r --arg n "$pod-prepare" 'map(select(.Name == $n))[0].State.ExitCode' "$dir/inspect.json")"
    tree_facts init "/tekton/steps/" "$(volume_path "$pod" tekton-internal-steps)"
    tree_facts results "/tekton/results/" "$(volume_path "$pod" tekton-internal-results)"
    tree_facts workspace "/workspace/" "$(volume_path "$pod" tekton-internal-workspace)"
    # What a shape's hooks saw while the pod ran.
    cat "$E2E_WORK/$pod.hook" 2>/dev/null
  } > "$E2E_WORK/$pod.facts"
  {
    for name in $(step_names "$pod"); do
      run=$(run_dir "$pod" "$name")
      started=$(jq -r "$JQ_MS"'map(select(.key == "StartedAt"))[-1].value // empty | ms' "$dir/containers/$name/termination-log" 2>/dev/null)
      post=$(mtime_ms "$run/out" || mtime_ms "$run/out.err" || true)
      printf '%s\t%s\t%s\t%s\n' "$name" "${started:-null}" "${post:-null}" \
        "$(jq -r --arg n "$pod-$name" "$JQ_MS"'map(select(.Name == $n))[0].State.FinishedAt // empty | .[0:23] + "Z" | ms' "$dir/inspect.json")"
    done
  } > "$E2E_WORK/$pod.times"
}
# time_of POD STEP COLUMN: started | post | finished (ms)
time_of() {
  local col
  case $3 in started) col=2 ;; post) col=3 ;; finished) col=4 ;; esac
  awk -F'\t' -v s="$2" -v c="$col" '$1 == s { print $c }' "$E2E_WORK/$1.times"
}


run_shape() { # run_shape SHAPE: both entrypoints, then the comparison and the shape's own checks
  local shape=$1 engine
  for engine in "${ENGINES[@]}"; do
    play_shape "$shape" "$engine"
    facts "$R_POD"
    [ "${E2E_KEEP:-0}" = 1 ] || remove_pod "$R_POD"
  done
  compare "$shape"
  if declare -F "${shape}_checks" >/dev/null; then "${shape}_checks"; fi
}


debug_before_ready() { # the debug-beforestep-continue / -fail-continue scripts, as kubectl exec runs them
  local pod=$1
  podman exec "$pod-step-c" sh -c 'echo "0" > /tekton/run/2/out.beforestepexit' || die "podman exec in $pod-step-c failed"
  podman exec "$pod-step-d" sh -c 'echo "1" > /tekton/run/3/out.beforestepexit.err' || die "podman exec in $pod-step-d failed"
  podman exec "$pod-step-g" sh -c 'echo "1" > /tekton/run/5/out.beforestepexit.err' || die "podman exec in $pod-step-g failed"
}
debug_running() { # a's failure breakpoint: seen paused, then the debug-continue script
  local pod=$1 run0 paused
  run0=$(run_dir "$pod" step-a)
  until_true 30 test -s "$(pod_dir "$pod")/containers/step-a/termination-log" || true
  sleep 2.5 # more than upstream's 1 s poll: b, waiting on a, would have seen a post file by now
  paused="$(state_of "$pod" step-a), post files: $(find "$run0" -maxdepth 1 \( -name out -o -name out.err \) -printf '%f ')"
  printf 'step-a/paused state\t%s\n' "$paused" > "$E2E_WORK/$pod.hook"
  printf 'step-b/paused state\t%s\n' "$(state_of "$pod" step-b)" >> "$E2E_WORK/$pod.hook"
  podman exec "$pod-step-a" sh -c 'touch /tekton/run/0/out; echo "0" > /tekton/run/0/out.breakpointexit' \
    || die "podman exec in $pod-step-a failed"
}
debug_checks() {
  local e
  for e in "${ENGINES[@]}"; do
    check "debug/$e: a failing step with onError: continue pauses under -breakpoint_on_failure (running, no post file; issue 20.7)" \
      [ "$(fact_of "tku-debug-$e" "step-a/paused state")" = "running, post files: " ]
    check "debug/$e: the before-step fail-continue writes out.err (issue 20.8)" \
      all_ok [ "$(fact_of "tku-debug-$e" "step-g/files run/5/out.err")" = 'file 644 ""' ] -- [ "$(fact_of "tku-debug-$e" "step-d/files run/3/out.err")" = 'file 644 ""' ]
  done
}

leftovers_checks() {
  local e pod a c
  for e in "${ENGINES[@]}"; do
    pod=tku-leftovers-$e
    a=$(( $(time_of "$pod" step-a post) - $(time_of "$pod" step-a started) ))
    c=$(( $(time_of "$pod" step-c post) - $(time_of "$pod" step-c started) ))
    say "leftovers/$e: post file after StartedAt: a (sleep 3 &) ${a} ms, c (-stdout_path, sleep 2 &) ${c} ms"
    check "leftovers/$e: a's post file within 1 s of its start, while its 'sleep 3 &' lives on (${a} ms; issue 20.9)" [ "$a" -lt 1000 ]
    if [ "$e" = upstream ]; then
      check "leftovers/upstream: with -stdout_path the post file waits for the leftover holding the copy's pipe (${c} ms >= 1800)" [ "$c" -ge 1800 ]
    else
      check "leftovers/baton: with -stdout_path the post file is still written at the direct child's exit (${c} ms < 1000)" [ "$c" -lt 1000 ]
    fi
  done
}

cancel_dir() {
  local d=$1 new=..2026_01_01_00_00_02.000000003
  mkdir -p "$d/$new"
  printf READY > "$d/$new/ready"
  printf true > "$d/$new/cancel"
  chmod -R a+rX "$d/$new"
  [ -L "$d/cancel" ] || ln -s ..data/cancel "$d/cancel"
  ln -s "$new" "$d/..data_tmp"
  mv -T "$d/..data_tmp" "$d/..data"
}
stop_running() {
  local pod=$1
  until_true 30 podman exec "$pod-step-a" pidof sleep >/dev/null 2>&1 || die "$pod: step-a's command never started"
  cancel_dir "$E2E_WORK/downward-$pod"
  until_true 30 exited "$pod" step-a || die "$pod: step-a was not cancelled"
  sleep 1.5 # b sees a's out.err (upstream: at its next 1 s poll)
  printf 'stop states\t%s\n' "$(for c in a b c; do printf '%s=%s ' "$c" "$(state_of "$pod" "step-$c")"; done)" > "$E2E_WORK/$pod.hook"
  podman pod stop -t 3 "$pod" >/dev/null 2>&1
}

run_bench() {
  local round engine pod i prev last ok handoffs walls firsts
  : > "$E2E_WORK/bench.spec"
  SPEC="$E2E_WORK/bench.spec" bench_spec
  bench_results | tr -d '\n' > "$E2E_WORK/bench.results"
  for engine in "${ENGINES[@]}"; do
    handoffs=() walls=() firsts=()
    for round in $(seq 1 "$BENCH_ROUNDS"); do
      play_shape bench "$engine"
      pod=$R_POD
      facts "$pod"
      ok=0
      for i in $(seq 1 "$BENCH_STEPS"); do
        [ "$(fact_of "$pod" "step-s$i exit")" = 0 ] && [ -n "$(fact_of "$pod" "step-s$i/files run/$((i - 1))/out")" ] && ok=$((ok + 1))
      done
      check "bench/$engine round $round: all $BENCH_STEPS steps exit 0 and write out ($ok)" [ "$ok" = "$BENCH_STEPS" ]
      firsts+=("$(( $(time_of "$pod" step-s1 started) - R_READY ))")
      for i in $(seq 2 "$BENCH_STEPS"); do
        prev=$(time_of "$pod" "step-s$((i - 1))" post)
        handoffs+=("$(( $(time_of "$pod" "step-s$i" started) - prev ))")
      done
      last=$(time_of "$pod" "step-s$BENCH_STEPS" post)
      walls+=("$(( last - R_READY ))")
      [ "${E2E_KEEP:-0}" = 1 ] || remove_pod "$pod"
    done
    BENCH_WALL[$engine]=$(median "${walls[@]}")
    BENCH_HANDOFF[$engine]="median $(median "${handoffs[@]}") ms ($(stats "${handoffs[@]}"))"
    say "bench/$engine: ready -> last post file: $(stats "${walls[@]}"); handoff: $(stats "${handoffs[@]}"); ready -> s1's StartedAt: $(stats "${firsts[@]}")"
  done
}

# ---------------------------------------------------------------------------------------------------
# Run

declare -A BENCH_WALL=() BENCH_HANDOFF=()
for shape in $SHAPES; do
  if [ "$shape" = bench ]; then run_bench; continue; fi
  declare -F "${shape}_spec" >/dev/null || die "no shape '$shape' (chain ends debug leftovers stop bench)"
  : > "$E2E_WORK/$shape.spec"
  SPEC="$E2E_WORK/$shape.spec" "${shape}_spec"
  "${shape}_results" | tr -d '\n' > "$E2E_WORK/$shape.results"
  say "== $shape: $(jq -s 'length' "$E2E_WORK/$shape.spec") steps, under upstream's entrypoint, then baton's"
  run_shape "$shape"
done

if [ -n "${BENCH_WALL[upstream]:-}" ]; then
  echo "figure: $BENCH_STEPS steps of \`true\` in sequence ($BENCH_ROUNDS round(s) each), from the ready annotation to the last post file (median): upstream's entrypoint v1.15.0 ${BENCH_WALL[upstream]} ms, baton ${BENCH_WALL[baton]} ms"
  echo "figure: handoff, a post file to the next step's StartedAt: upstream's entrypoint ${BENCH_HANDOFF[upstream]}, baton ${BENCH_HANDOFF[baton]}"
fi
unseen_listed
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
