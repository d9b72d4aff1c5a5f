# shellcheck shell=bash
# shellcheck disable=SC2034 # ARGO_EXECUTOR, EXPECT_SHA and OUT_PREFIX are e2e/argo-controller.sh's
# The side by side of e2e/argo-controller.sh: after the run under baton's executor image, the examples
# of SIDE_BY_SIDE run once more under upstream's (the controller restarted with it), and every node of
# each Workflow is compared field by field with the baton run's: its phase, exit code, output
# parameters, result and message (the Workflow's generated name and the node ids made from it
# normalized away). A field that differs passes only when ARGO_DELIBERATE lists it with exactly those
# values (docs/argo.md says why); a listed difference no longer seen fails too. And the figure: the
# container set own/containerset-chain.yaml under each emissary, alone on the cluster, timed from its
# members' log lines (`kubectl logs --timestamps`, the container runtime's clock as it reads each
# line). Sourced by e2e/argo-controller.sh after its functions.

# What is compared: the container sets (the emissary's own dependency handling) and the examples whose
# nodes carry what the emissary writes (exit codes, outputs, results, failures). Not scripts-bash:
# its result is a random number.
SIDE_BY_SIDE=(container-set-template/sequence-workflow.yaml container-set-template/parallel-workflow.yaml
  container-set-template/graph-workflow.yaml own/containerset-fail.yaml exit-code-output-variable.yaml
  output-parameter.yaml status-reference.yaml continue-on-fail.yaml parameter-aggregation.yaml dag-continue-on-fail.yaml exit-handlers.yaml
  loops-arbitrary-sequential-steps.yaml steps.yaml dag-diamond.yaml)

# example<TAB>node<TAB>field<TAB>baton's value<TAB>upstream's value: the differences kept on purpose.
ARGO_DELIBERATE='own/containerset-fail.yaml	b [Container cs]	message	b: Error (exit code 64): container "b" did not run: its dependency "a" ended with exit code 3	b: Error (exit code 64): dependency "a" exited with non-zero code: 3'

# node_fields FILE: one line per node and field of the Workflow in FILE: node key (display name,
# type, template), field, value; the Workflow's name replaced by WF, node ids by WF-ID.
node_fields() {
  jq -r '.metadata.name as $wf
    | def norm: gsub($wf + "-[0-9]+"; "WF-ID") | gsub($wf; "WF");
      [.status.nodes // {} | .[]
       | {key: "\(.displayName | norm) [\(.type)\(if .templateName then " " + .templateName else "" end)]",
          phase: (.phase // ""), exitCode: (.outputs.exitCode // ""), result: (.outputs.result // "" | norm),
          parameters: ([.outputs.parameters[]? | "\(.name)=\(.value // "")"] | join(" ") | norm),
          message: (.message // "" | norm)}]
    | group_by(.key)[] | . as $same | ($same | length) as $n
    | ["phase", "exitCode", "result", "parameters", "message"][] as $f
    | [$same[0].key + (if $n > 1 then " x\($n)" else "" end), $f, ([$same[][$f]] | sort | join(" | "))] | @tsv' "$1"
}

# compare_nodes EXAMPLE: the baton run's nodes of EXAMPLE against the upstream run's.
compare_nodes() {
  local ex=$1 b="$E2E_WORK/${1//\//_}/workflow.json" u="$E2E_WORK/sbs-upstream-${1//\//_}/workflow.json"
  local key field bv uv listed same=0 differ=0
  { [ -s "$b" ] && [ -s "$u" ]; } || { fail "side by side: $ex: a run left no Workflow to compare"; return; }
  while IFS=$'\t' read -r key field bv uv; do
    if [ "$bv" = "$uv" ]; then
      same=$((same + 1))
      continue
    fi
    differ=$((differ + 1))
    listed=$(awk -F'\t' -v e="$ex" -v k="$key" -v f="$field" '$1 == e && $2 == k && $3 == f' <<<"$ARGO_DELIBERATE")
    if [ -z "$listed" ]; then
      fail "side by side: $ex: $key $field: baton \"$bv\", upstream \"$uv\""
    else
      check "side by side: $ex: $key $field differs as listed (baton \"$bv\", upstream \"$uv\")" \
        test "$listed" = "$ex	$key	$field	$bv	$uv"
    fi
  done < <(LC_ALL=C join -t $'\t' -a 1 -a 2 -e '(no node)' -o 0,1.2,2.2 \
             <(node_fields "$b" | awk -F'\t' '{print $1 "\x1f" $2 "\t" $3}' | LC_ALL=C sort) \
             <(node_fields "$u" | awk -F'\t' '{print $1 "\x1f" $2 "\t" $3}' | LC_ALL=C sort) \
           | awk -F'\t' 'BEGIN { OFS = "\t" } { split($1, kf, "\x1f"); print kf[1], kf[2], $2, $3 }')
  check "side by side: $ex: every node's fields equal under both emissaries, but for the listed ($same equal, $differ different)" \
    test "$same" -gt 0
  # A listed difference that was not seen fails: the list says what is measured.
  while IFS=$'\t' read -r lex key field bv uv; do
    [ "$lex" = "$ex" ] || continue
    node_fields "$b" | grep -qxF -- "$key	$field	$bv" \
      || fail "side by side: $ex: $key $field was listed as differing (baton \"$bv\") but baton's run shows otherwise"
  done <<<"$ARGO_DELIBERATE"
}

CHAIN=(gate s01 s02 s03 s04 s05 s06 s07 s08 s09 s10)

# chain_times DIR: from the members' logs with timestamps in DIR/ts/ and the pod in DIR/pods.json,
# the wall (gate's line to s10's) and the ten handoffs (each member's line minus the one before's), in
# ms, on one line. The timestamps are the container runtime's as it reads each line: a few ms apart
# from the exits. A handoff whose member the kubelet started only after its predecessor's line (its
# startedAt has whole seconds: a later second) measured start-up: it is `x`, and so is the wall.
chain_times() {
  local c line
  for c in "${CHAIN[@]}"; do
    line=$(grep -m1 -E " $c\$" "$1/ts/$c.log") || return 1
    printf '%s\n' "${line%% *}"
  done | jq -Rrn --slurpfile pods "$1/pods.json" --args '$ARGS.positional as $names
    | ($pods[0].items[0].status.containerStatuses // [] | map({(.name): ((.state.terminated.startedAt // "9")[0:19])}) | add // {}) as $started
    | [inputs] as $lines
    | [$lines[] | (.[0:19] + "Z" | fromdateiso8601) + ((.[19:] | (capture("^(?<f>\\.[0-9]+)") | .f) // "0") | tonumber)] as $t
    | [range(1; $t | length) as $i
       | if ($started[$names[$i]] // "9") > $lines[$i - 1][0:19] then "x"
         else (($t[$i] - $t[$i - 1]) * 1000 | round) | if . == 0 then 0 else . end end] as $h
    | "\(if any($h[]; . == "x") then "x" else (($t[-1] - $t[0]) * 1000 | round) end) \($h | map(tostring) | join(" "))"' "${CHAIN[@]}"
}

# figure_rounds ENGINE: own/containerset-chain.yaml, BENCH_ROUNDS times one after another with
# nothing else submitted, under the controller as it runs now (ENGINE's executor image); each
# round's wall and handoffs into $E2E_WORK/figure-ENGINE.txt (`x` for those the kubelet's late
# start of a member made a measure of start-up, not of the handoff: left out of the figure).
figure_rounds() {
  local engine=$1 r ex dir pod c times
  for r in $(seq "${BENCH_ROUNDS:-1}"); do
    ex="own/containerset-chain.yaml#$engine-$r"
    run_examples "$ex	Succeeded	s10"
    dir="$E2E_WORK/$OUT_PREFIX${ex//\//_}"
    pod=$(jq -r '.items[0].metadata.name // empty' "$dir/pods.json" 2>/dev/null)
    [ -n "$pod" ] || { fail "figure: round $r under $engine left no pod"; continue; }
    mkdir -p "$dir/ts"
    for c in "${CHAIN[@]}"; do
      kubectl -n "$NS" logs --timestamps "$pod" -c "$c" > "$dir/ts/$c.log" 2>&1
    done
    times=$(chain_times "$dir") \
      || { fail "figure: round $r under $engine: a member printed no line with a timestamp ($dir/ts/)"; continue; }
    echo "$times" >> "$E2E_WORK/figure-$engine.txt"
    say "figure: round $r under $engine: gate to s10 ${times%% *} ms; handoffs ${times#* } ms (x: the member started after its predecessor's end)"
  done
}

# figure_report: per engine, the median wall of its rounds and the median, min and max of all their
# handoffs, one FIGURE line each (docs/benchmarks.md, section argo-controller-figure).
figure_report() {
  local engine
  for engine in upstream baton; do
    if [ ! -s "$E2E_WORK/figure-$engine.txt" ]; then
      say "figure: no round under $engine"
      continue
    fi
    awk -v e="$engine" '
      function median(a, n,   i, j, t) { for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j > 0 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
                                          return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
      { rounds++; if ($1 != "x") w[++walls] = $1; for (i = 2; i <= NF; i++) if ($i != "x") h[++n] = $i; else late++ }
      END { if (n == 0) { printf "figure: under %s every handoff of %d round(s) measured start-up\n", e, rounds; exit }
            m = median(h, n); printf "FIGURE  argo container set of 10 on the real kubelet, %s emissary: %d round(s), gate to s10 median %s ms (%d whole), handoff median %s ms (min %s, max %s, %d handoffs, %d left out)\n",
              e, rounds, walls ? median(w, walls) : "-", walls, m, h[1], h[n], n, late + 0 }' "$E2E_WORK/figure-$engine.txt"
  done
}

# side_by_side LIST: the examples of LIST (TSV: path, phase, text) that SIDE_BY_SIDE names, under
# upstream's executor image, compared with the baton run's; then the figure.
side_by_side() {
  local sbs="" ex want text
  while IFS=$'\t' read -r ex want text; do
    [ -n "$ex" ] && [[ " ${SIDE_BY_SIDE[*]} " == *" $ex "* ]] && sbs+="$ex	$want	$text"$'\n'
  done <<<"$1"
  [ -n "$sbs" ] || return 0
  stop_controller
  EXEC_IMAGE=$IMG_UPSTREAM
  ARGO_EXECUTOR=upstream
  EXPECT_SHA=$(sha256sum < "$ARGOEXEC" | cut -c1-64)
  start_controller "$EXEC_IMAGE"
  say "side by side under upstream's executor image: $(cut -f1 <<<"$sbs" | tr '\n' ' ')"
  OUT_PREFIX="sbs-upstream-"
  run_examples "$sbs"
  while IFS=$'\t' read -r ex want text; do
    [ -n "$ex" ] && compare_nodes "$ex"
  done <<<"$sbs"
  figure_rounds upstream
  figure_report
}
