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
ctx=$(mktemp -d)
cp "$BUSYBOX" "$ctx/busybox"
podman build -q --layers=false -f "$E2E_DIR/busybox-step.Containerfile" -t "$STEP_IMAGE" "$ctx" >/dev/null \
  || die "podman build of $STEP_IMAGE failed"
rm -rf "$ctx"
say "images: $UPSTREAM_IMAGE ($(image_size "$UPSTREAM_IMAGE") bytes), $BATON_TEKTON_IMAGE ($(image_size "$BATON_TEKTON_IMAGE") bytes), $STEP_IMAGE"

image_of() { if [ "$1" = upstream ]; then echo "$UPSTREAM_IMAGE"; else echo "$BATON_TEKTON_IMAGE"; fi; }

# ---------------------------------------------------------------------------------------------------
# Pods: a list of steps, written by `step`, made into a Pod in the controller's shape by `pod_json`.

# step NAME WAIT SCRIPT [FLAG...]: a step of the pod being described ($SPEC). WAIT: `ready` (the
# downward file, as the first step of a TaskRun), `-` (the step before), a step's name, or a path. SCRIPT runs
# as `-entrypoint sh -- -c SCRIPT`; an empty SCRIPT leaves -entrypoint to the flags.
step() {
  local name=$1 wait=$2 script=$3
  shift 3
  jq -nc --arg n "$name" --arg w "$wait" --arg s "$script" '{name: $n, wait: $w, script: $s, flags: $ARGS.positional}' \
    --args -- "$@" >> "$SPEC"
}

# pod_json SPEC POD ENGINE DOWNWARD RESULTS: the Pod, as Tekton's controller lays it out.
pod_json() {
  jq -s --arg pod "$2" --arg entry "$(image_of "$3")" --arg stepimg "$STEP_IMAGE" --arg down "$4" --arg results "$5" '
    . as $spec | ($spec | length) as $n
    | (reduce range(0; $n) as $i ({}; .[$spec[$i].name] = $i)) as $index
    | def wait_flags($i):
        $spec[$i].wait as $w
        | if $w == "ready" then ["-wait_file", "/tekton/downward/ready", "-wait_file_content"]
          elif $w == "-" then ["-wait_file", "/tekton/run/\($i - 1)/out"]
          elif ($w | startswith("/")) then ["-wait_file", $w]
          else ["-wait_file", "/tekton/run/\($index[$w])/out"] end;
      def run_mounts($i): [range(0; $n) | {name: "tekton-internal-run-\(.)", mountPath: "/tekton/run/\(.)"}
                                          + (if . == $i then {} else {readOnly: true} end)];
    {apiVersion: "v1", kind: "Pod",
     metadata: {name: $pod, labels: {"app.kubernetes.io/managed-by": "tekton-pipelines"}},
     spec: {
       restartPolicy: "Never",
       initContainers: [{
         name: "prepare", image: $entry, workingDir: "/",
         command: (["/ko-app/entrypoint", "init", "/ko-app/entrypoint", "/tekton/bin/entrypoint"] + [$spec[] | "step-\(.name)"]),
         terminationMessagePath: "/dev/termination-log",
         volumeMounts: [{name: "tekton-internal-bin", mountPath: "/tekton/bin"},
                        {name: "tekton-internal-steps", mountPath: "/tekton/steps"}]}],
       containers: [range(0; $n) as $i | $spec[$i] as $s | {
         name: "step-\($s.name)", image: $stepimg, command: ["/tekton/bin/entrypoint"],
         args: (wait_flags($i)
                + ["-post_file", "/tekton/run/\($i)/out", "-termination_path", "/tekton/termination",
                   "-step_metadata_dir", "/tekton/run/\($i)/status"]
                + $s.flags
                + (if $results == "" then [] else ["-results", $results] end)
                + (if $s.script == "" then [] else ["-entrypoint", "sh", "--", "-c", $s.script] end)),
         env: [{name: "HOME", value: "/tekton/home"}],
         terminationMessagePath: "/tekton/termination",
         volumeMounts: ([{name: "tekton-internal-bin", mountPath: "/tekton/bin", readOnly: true},
                         {name: "tekton-internal-workspace", mountPath: "/workspace"},
                         {name: "tekton-internal-home", mountPath: "/tekton/home"},
                         {name: "tekton-internal-results", mountPath: "/tekton/results"},
                         {name: "tekton-internal-steps", mountPath: "/tekton/steps", readOnly: true},
                         {name: "tekton-internal-downward", mountPath: "/tekton/downward", readOnly: true}]
                        + run_mounts($i))}],
       volumes: ([{name: "tekton-internal-workspace", emptyDir: {}}, {name: "tekton-internal-home", emptyDir: {}},
                  {name: "tekton-internal-results", emptyDir: {}}, {name: "tekton-internal-steps", emptyDir: {}},
                  {name: "tekton-internal-bin", emptyDir: {}},
                  {name: "tekton-internal-downward", hostPath: {path: $down, type: "Directory"}}]
                 + [range(0; $n) | {name: "tekton-internal-run-\(.)", emptyDir: {}}])}}' "$1"
}

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
until_true() { # until_true SECONDS COMMAND...: retries every 50 ms
  local deadline=$(( $(now_ms) + $1 * 1000 ))
  shift
  until "$@"; do
    [ "$(now_ms)" -lt "$deadline" ] || return 1
    sleep 0.05
  done
}

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
  pod_json "$E2E_WORK/$shape.spec" "$R_POD" "$engine" "$down" "$(cat "$E2E_WORK/$shape.results")" > "$file"
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

# message_facts STEP FILE: the termination message as entries (StartedAt's value by its format only).
message_facts() {
  local name=$1 file=$2 raw json
  raw=$(cat "$file" 2>/dev/null)
  if [ -z "$raw" ]; then printf '%s message\t(empty)\n' "$name"; return; fi
  json=$raw
  if [[ $raw == tknz:* ]]; then
    printf '%s message-encoding\ttknz: (DEFLATE, base64)\n' "$name"
    json=${raw#tknz:}
    # Unpadded base64: padded for base64 -d.
    while [ $(( ${#json} % 4 )) -ne 0 ]; do json+="="; done
    json=$(printf '%s' "$json" | inflate_raw)
  fi
  # Its length in bytes: the JSON's spacing and escaping (StartedAt has a fixed length in UTC).
  printf '%s message-bytes\t%s\n' "$name" "$(printf '%s' "$json" | wc -c)"
  jq -r --arg s "$name" '
    if type != "array" then "\($s) message\tnot an array: \(tojson)" else
      (to_entries[] | .key as $k | .value
       | "\($s) message[\($k)]\t\(.key) type=\(.type | tojson) \(
           if .key == "StartedAt" then
             (if (.value | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}(Z|[+-][0-9]{2}:[0-9]{2})$"))
              then "<time, Tekton format>" else "bad time \(.value | tojson)" end)
           else .value | tojson end)"),
      "\($s) message-entries\t\(length)" end' <<<"$json" 2>/dev/null \
    || printf '%s message\tunparsable: %s\n' "$name" "$(head -c 200 <<<"$raw" | jq -Rsc .)"
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

# ---------------------------------------------------------------------------------------------------
# Deliberate differences: SHAPE<TAB>KEY<TAB>UPSTREAM<TAB>BATON<TAB>WHY. "(none)": no such fact; a value
# ending in "*" matches any value that starts with what comes before it. docs/tekton.md lists each.
DELIBERATE=$(cat <<'EOF'
*	*/files run/*/out.baton-lock	(none)	file 600 ""	baton's post file lock
*	*/files run/*/out.baton-alive	(none)	fifo *	baton's liveness beacon
*	*/files run/*/status/usage.json	(none)	file 644 "{\"userCpuMs\":*	baton's usage.json
chain	step-d message[4]	ExitCode type=3 "-1"	ExitCode type=3 "143"	a signalled command: 128+N (upstream: -1, exit 255)
chain	step-d message-bytes	*	*	a signalled command: 128+N (upstream: -1, exit 255)
chain	step-d/files run/3/status/exitCode	file 644 "-1"	file 644 "143"	a signalled command: 128+N (upstream: -1, exit 255)
ends	step-k1 exit	255	137	a signalled command: 128+N (upstream: -1, exit 255)
ends	step-x1 exit	1	127	a command that cannot be run: 127 or 126 (upstream: 1)
ends	step-r*/files run/*/out	file 644 ""	(none)	results that do not fit fail the step before its post file (upstream: out, then the 4096 check)
ends	step-r*/files run/*/status/exitCode	file 644 "0"	(none)	results that do not fit fail the step before its post file (upstream: out, then the 4096 check)
ends	step-r*/files run/*/out.err	(none)	file 644 ""	results that do not fit fail the step before its post file (upstream: out, then the 4096 check)
ends	step-r* exit	0	1	results that do not fit fail the step before its post file (upstream: out, then the 4096 check)
ends	step-r* message*	*	*	results that do not fit fail the step before its post file (upstream: out, then the 4096 check)
stop	step-c exit	2	143	a stop signal while waiting: 128+N and out.err (upstream: exit 2, no post file)
stop	step-c/files run/2/out.err	(none)	file 644 ""	a stop signal while waiting: 128+N and out.err (upstream: exit 2, no post file)
leftovers	workspace /workspace/logs/c.stdout	file 644 "early\nlate\n"	file 644 "early\n"	the step ends at its direct child's exit with -stdout_path too (upstream: when the copy ends)
EOF
)

# compare SHAPE: one check per group of facts of the two runs of SHAPE.
compare() {
  local shape=$1 up bt joined group
  up="$E2E_WORK/tku-$shape-upstream.facts"
  bt="$E2E_WORK/tku-$shape-baton.facts"
  joined="$E2E_WORK/$shape.joined"
  # KEY<TAB>UPSTREAM<TAB>BATON for every key either wrote, in upstream's order, then baton's own keys.
  jq -Rrn --rawfile u "$up" --rawfile b "$bt" '
    def facts($t): [$t | split("\n")[] | select(length > 0) | split("\t") | {key: .[0], value: (.[1:] | join("\t"))}];
    facts($u) as $U | facts($b) as $B | ($U | from_entries) as $um | ($B | from_entries) as $bm
    | ([$U[].key] + [$B[].key | select($um[.] == null)])[]
    | [., ($um[.] // "(none)"), ($bm[.] // "(none)")] | join("\t")' > "$joined"
  while IFS= read -r group; do
    compare_group "$shape" "$group" "$joined"
  done < <(cut -f1 "$joined" | cut -d' ' -f1 | awk '!seen[$0]++')
}

# like TEXT PATTERN: TEXT matches PATTERN, where `*` is any text and everything else is itself.
like() {
  local pat=$2 re="" c i
  for ((i = 0; i < ${#pat}; i++)); do
    c=${pat:i:1}
    case $c in
      '*') re+='.*' ;;
      '['|']'|'.'|'^'|'$'|'('|')'|'{'|'}'|'+'|'?'|'|'|\\) re+="\\$c" ;;
      *) re+=$c ;;
    esac
  done
  [[ $1 =~ ^${re}$ ]]
}

# listed SHAPE KEY UPSTREAM BATON: whether this difference is a listed one; its reason in LISTED_WHY.
declare -A SEEN=()
LISTED_WHY=
listed() {
  local s key u b why n=0
  while IFS=$'\t' read -r s key u b why; do
    n=$((n + 1))
    if like "$1" "$s" && like "$2" "$key" && like "$3" "$u" && like "$4" "$b"; then
      SEEN[$n]=1
      LISTED_WHY=$why
      return 0
    fi
  done <<<"$DELIBERATE"
  return 1
}

# unseen_listed: a FAIL for each listed difference of a shape that ran but that no run showed.
unseen_listed() {
  local s key u b why n=0 shape ran
  while IFS=$'\t' read -r s key u b why; do
    n=$((n + 1))
    [ -n "$s" ] || continue
    ran=0
    for shape in $SHAPES; do like "$shape" "$s" && ran=1; done
    if [ "$ran" = 1 ] && [ -z "${SEEN[$n]:-}" ]; then
      fail "listed difference no longer seen: $s/$key ($why): update DELIBERATE and docs/tekton.md"
    fi
  done <<<"$DELIBERATE"
}

compare_group() {
  local shape=$1 group=$2 joined=$3 key u b r known n=0 same=0 unlisted=() reasons=()
  while IFS=$'\t' read -r key u b; do
    [ "${key%% *}" = "$group" ] || continue
    n=$((n + 1))
    if [ "$u" = "$b" ]; then same=$((same + 1)); continue; fi
    if listed "$shape" "$key" "$u" "$b"; then
      known=0
      for r in "${reasons[@]}"; do [ "$r" = "$LISTED_WHY" ] && known=1; done
      [ "$known" = 1 ] || reasons+=("$LISTED_WHY")
    else
      unlisted+=("${key#* }: upstream $u, baton $b")
    fi
  done < "$joined"
  local what
  case $group in
    */files) what="$group: /tekton/run/<i> (post file, exitCode, step results, metadata folder)" ;;
    */paused) what="$group: what the harness saw while the step was at its breakpoint" ;;
    init) what="init: exit code and the links in /tekton/steps" ;;
    results) what="/tekton/results" ;;
    workspace) what="/workspace (the -stdout_path/-stderr_path copies)" ;;
    *) what="$group: exit code and termination message" ;;
  esac
  if [ ${#unlisted[@]} -eq 0 ]; then
    if [ ${#reasons[@]} -eq 0 ]; then
      pass "$shape/$what: same as upstream ($n fields)"
    else
      pass "$shape/$what: $same of $n fields as upstream's, the others as listed: $(printf '%s; ' "${reasons[@]}")"
    fi
  else
    fail "$shape/$what: differs from upstream: $(printf '%s; ' "${unlisted[@]}")"
  fi
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

# fact_of POD KEY: a fact's value in POD's facts.
fact_of() { awk -F'\t' -v k="$2" '$1 == k { print $2 }' "$E2E_WORK/$1.facts"; }

# ---------------------------------------------------------------------------------------------------
# The shapes. SHAPE_spec writes the steps; SHAPE_results is the TaskRun's result names (-results).

# chain: the TaskRun of e2e/tekton.sh in small: results, a step result (and b's command referring to
# it, as a StepAction's), output copies, onError continue
# (an exit code and a signal), a step reading the exitCode before it, an existing termination entry
# whose type is a name (issue 20.10), a failing step and the steps skipped after it.
chain_results() { echo 'greeting,b-result,summary'; }
# shellcheck disable=SC2016 # the scripts expand in the step's shell
chain_spec() {
  step a ready 'echo out-a; echo err-a >&2; printf "hello from a" > /tekton/results/greeting; printf a-note > /tekton/steps/step-a/results/note' \
    -stdout_path /workspace/logs/a.stdout -stderr_path /workspace/logs/a.stderr -step_results note
  step b - 'echo "b: exits 3"; printf "b saw %s" "$(steps.a.results.note)" > /tekton/results/b-result; exit 3' -on_error continue
  step c - 'printf "[{\"key\":\"carried\",\"value\":\"by c\",\"type\":\"TaskRunResult\"}]" > /tekton/termination; printf "b-exit=%s" "$(cat /tekton/steps/step-b/exitCode)" > /tekton/results/summary'
  step d - 'kill -TERM $$' -on_error continue
  step e - 'echo out-e; echo err-e >&2; exit 5' -on_error stopAndFail -stdout_path /workspace/logs/e.stdout -stderr_path /workspace/logs/e.stderr
  step f - 'echo never'
  step g - 'echo never'
}
chain_checks() {
  local e
  for e in "${ENGINES[@]}"; do
    check "chain/$e: step-c's message keeps the entry it found with type \"TaskRunResult\", written back as 1 (issue 20.10)" \
      [ "$(fact_of "tku-chain-$e" "step-c message[0]")" = 'carried type=1 "by c"' ]
  done
}

# ends: a -timeout (with onError continue: the timeout still fails the step), a command killed by
# SIGKILL, a negative timeout, a command that does not exist, `when` (input/operator/values and CEL),
# a compressed message, a -timeout not reached, step artifacts, results over the kubelet's share of
# this 24-container pod (1500 bytes > 12288 / 24) and over 4096 bytes, a result with bytes JSON must
# escape, what the termination file held before (not JSON, a type name upstream does not know, no
# type, a lone surrogate escape, resourceName, field names in other cases, invalid UTF-8, types out
# of the usual range, a null entry); each a chain of its own. The chains run side by side, so
# their results are step results (each step's own folder), not task results, which every step reads.
ends_results() { echo; }
ends_spec() {
  step t1 ready 'sleep 5' -timeout 1s -on_error continue
  step t2 - 'echo never'
  step k1 ready 'kill -KILL $$'
  step k2 - 'echo never'
  step n1 ready 'echo never' -timeout -1s
  step x1 ready '' -entrypoint /no/such/command
  step w1 ready 'echo never' --when_expressions '[{"input":"a","operator":"notin","values":["a"]}]'
  step w2 ready 'printf yes > /tekton/steps/step-w2/results/cel' -step_results cel --when_expressions "[{\"cel\":\"'a' == 'a'\"}]"
  step z1 ready 'printf "%0600d" 0 > /tekton/steps/step-z1/results/zeros' -step_results zeros -compress_termination_message
  step t3 ready 'true' -timeout 5s
  step p1 ready 'printf "{\"outputs\":[{\"name\":\"image\",\"values\":[{\"uri\":\"pkg:oci/x\",\"digest\":{\"sha256\":\"abc\"}}]}]}" > /tekton/steps/step-p1/artifacts/provenance.json'
  step r1 ready 'printf "%01500d" 0 > /tekton/steps/step-r1/results/big' -step_results big
  step r2 - 'echo after r1'
  step r3 ready 'printf "%05000d" 0 > /tekton/steps/step-r3/results/big' -step_results big
  step r4 - 'echo after r3'
  step e1 ready 'printf "<&>\"\\\\\t\n\342\200\250 \303\251 \377 \001." > /tekton/steps/step-e1/results/esc' -step_results esc
  step g1 ready 'printf "not json" > /tekton/termination'
  step g2 ready 'printf "[{\"key\":\"k\",\"value\":\"v\",\"type\":\"Foo\"},{\"key\":\"n\",\"value\":\"w\",\"type\":3}]" > /tekton/termination'
  step g3 ready 'printf "[{\"key\":\"k\",\"value\":\"v\"}]" > /tekton/termination'
  step g4 ready 'printf "[{\"key\":\"k\",\"value\":\"\\\\ud800 \\\\u00e9\",\"type\":1}]" > /tekton/termination'
  step g5 ready 'printf "[{\"key\":\"k\",\"value\":\"v\",\"resourceName\":\"git\",\"type\":1}]" > /tekton/termination'
  step g6 ready 'printf "[{\"Key\":\"k\",\"VALUE\":\"v\",\"Type\":1,\"extra\":true}]" > /tekton/termination'
  step g7 ready 'printf "[{\"key\":\"k\",\"value\":\"a\\377b\",\"type\":-1},{\"key\":\"n\",\"value\":\"v\",\"type\":300},null]" > /tekton/termination'
}

# debug: Tekton's debug breakpoints, the harness playing `kubectl exec` of the controller's scripts.
# a fails with onError: continue under -breakpoint_on_failure: does the entrypoint pause (issue 20.7)?
# c and d: before-step breakpoints, continued and fail-continued (issue 20.8), d under
# -breakpoint_on_failure (e then runs), g without it (h is skipped). Side by side chains: step results.
debug_results() { echo; }
debug_spec() {
  step a ready 'echo "a: fails"; exit 2' -breakpoint_on_failure -on_error continue
  step b - 'printf yes > /tekton/steps/step-b/results/ran' -step_results ran -breakpoint_on_failure
  step c ready 'printf yes > /tekton/steps/step-c/results/ran' -step_results ran -debug_before_step
  step d - 'printf yes > /tekton/steps/step-d/results/ran' -step_results ran -debug_before_step -breakpoint_on_failure
  step e - 'printf yes > /tekton/steps/step-e/results/ran' -step_results ran -breakpoint_on_failure
  step g ready 'echo never' -debug_before_step
  step h - 'printf yes > /tekton/steps/step-h/results/ran' -step_results ran
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

# leftovers: processes a step leaves running (issue 20.9). a leaves `sleep 3` holding the container's
# stdout; c, with -stdout_path, leaves a subshell holding the copy's pipe.
leftovers_results() { echo; }
leftovers_spec() {
  step a ready 'sleep 3 & echo "a: done"'
  step b - 'true'
  step c ready '(sleep 2; echo late) & echo early' -stdout_path /workspace/logs/c.stdout
  step d - 'true'
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

# stop: the controller cancels the TaskRun (keep-pod-on-cancel: the annotation tekton.dev/cancel makes
# /tekton/downward/cancel non-empty) while a runs, then the pod is deleted (SIGTERM to every container,
# SIGKILL 3 s later) while c still waits (on a file nothing writes).
stop_results() { echo; }
stop_spec() {
  step a ready 'sleep 30'
  step b - 'echo never'
  step c /workspace/never 'echo never'
}
# cancel_dir DIR: the kubelet's update of the downward volume after the controller set tekton.dev/cancel.
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

# ---------------------------------------------------------------------------------------------------
# The figure: BENCH_STEPS steps in sequence, each `true`, each waiting on the one before.

bench_results() { echo; }
bench_spec() {
  local i
  step s1 ready '' -entrypoint true
  for i in $(seq 2 "$BENCH_STEPS"); do step "s$i" - '' -entrypoint true; done
}
stats() { [ $# -gt 0 ] || { echo "no data"; return; }; printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1; s+=$1} END {printf "n=%d min=%d median=%d mean=%.1f max=%d ms", NR, v[1], v[int((NR+1)/2)], s/NR, v[NR]}'; }
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
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
