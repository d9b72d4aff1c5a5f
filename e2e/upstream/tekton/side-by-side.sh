# shellcheck shell=bash
# e2e/upstream/tekton/side-by-side.sh: what e2e/tekton-upstream.sh (podman) and e2e/cluster.sh's scenario
# tekton-upstream (e2e/cluster/tekton-upstream.sh, the real kubelet) share: the shapes of the pods (a list
# of steps, `step`), the Pod in the shape Tekton's controller makes (`shape_pod`), the facts of a
# termination message (`message_facts`), the deliberate differences (DELIBERATE) and the comparison of
# two runs' facts (`compare`, `unseen_listed`). Sourced after e2e/checks.sh (pass, fail, check).
#
# The caller sets E2E_WORK (facts in $E2E_WORK/tku-<shape>-<engine>.facts), ENGINES (upstream baton),
# SHAPES (the shapes it runs), BENCH_STEPS, and may set UNOBSERVED: key patterns (like `like`'s) of facts
# it cannot collect, whose DELIBERATE entries are then not expected to be seen, and TKU_STEP_WHAT,
# TKU_INIT_WHAT: what a step's and init's facts are, as the PASS/FAIL lines name them.

# ---------------------------------------------------------------------------------------------------
# Pods: a list of steps, written by `step`, made into a Pod in the controller's shape by `shape_pod`.

# step NAME WAIT SCRIPT [FLAG...]: a step of the pod being described ($SPEC). WAIT: `ready` (the
# downward file, as the first step of a TaskRun), `-` (the step before), a step's name, or a path. SCRIPT runs
# as `-entrypoint sh -- -c SCRIPT`; an empty SCRIPT leaves -entrypoint to the flags.
step() {
  local name=$1 wait=$2 script=$3
  shift 3
  jq -nc --arg n "$name" --arg w "$wait" --arg s "$script" '{name: $n, wait: $w, script: $s, flags: $ARGS.positional}' \
    --args -- "$@" >> "$SPEC"
}

# shape_pod SPEC POD ENTRY_IMAGE STEP_IMAGE DOWNWARD RESULTS: the Pod, as Tekton's controller lays it out.
# DOWNWARD: a host folder (podman: the harness plays the downward volume there), `api` (the
# controller's downwardAPI volume: `ready` from the annotation tekton.dev/ready) or `api+cancel` (also
# `cancel` from tekton.dev/cancel, as with the feature keep-pod-on-cancel).
shape_pod() {
  jq -s --arg pod "$2" --arg entry "$3" --arg stepimg "$4" --arg down "$5" --arg results "$6" '
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
                  {name: "tekton-internal-downward"}
                  + (if ($down | startswith("/")) then {hostPath: {path: $down, type: "Directory"}}
                     else {downwardAPI: {defaultMode: 420, items: (
                       [{path: "ready", fieldRef: {apiVersion: "v1", fieldPath: "metadata.annotations[\u0027tekton.dev/ready\u0027]"}}]
                       + (if $down == "api+cancel"
                          then [{path: "cancel", fieldRef: {apiVersion: "v1", fieldPath: "metadata.annotations[\u0027tekton.dev/cancel\u0027]"}}]
                          else [] end))}} end)]
                 + [range(0; $n) | {name: "tekton-internal-run-\(.)", emptyDir: {}}])}}' "$1"
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
# Entries whose key matches a pattern of UNOBSERVED (facts the caller cannot collect) are not expected.
unseen_listed() {
  local s key u b why n=0 shape ran p
  while IFS=$'\t' read -r s key u b why; do
    n=$((n + 1))
    [ -n "$s" ] || continue
    ran=0
    for shape in $SHAPES; do like "$shape" "$s" && ran=1; done
    for p in ${UNOBSERVED[@]+"${UNOBSERVED[@]}"}; do like "$key" "$p" && ran=0; done
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
    init) what="init: ${TKU_INIT_WHAT:-exit code and the links in /tekton/steps}" ;;
    results) what="/tekton/results" ;;
    workspace) what="/workspace (the -stdout_path/-stderr_path copies)" ;;
    *) what="$group: ${TKU_STEP_WHAT:-exit code and termination message}" ;;
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

# leftovers: processes a step leaves running (issue 20.9). a leaves `sleep 3` holding the container's
# stdout; c, with -stdout_path, leaves a subshell holding the copy's pipe.
leftovers_results() { echo; }
leftovers_spec() {
  step a ready 'sleep 3 & echo "a: done"'
  step b - 'true'
  step c ready '(sleep 2; echo late) & echo early' -stdout_path /workspace/logs/c.stdout
  step d - 'true'
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
