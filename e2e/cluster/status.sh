# shellcheck shell=bash
# Scenario `status` of e2e/cluster.sh: `batonctl status` reading the real API server (pod/, job/,
# cronjob/, -l, the default selector, -w until the run ends, the kubectl plugin), and, for scenario
# `deploy`, the webhook's metrics scraped through the API server. Sourced by e2e/cluster.sh after
# scenarios.sh (it uses inject, apply, wait_end, collect).

# How long `-w` may take to notice that the run ended and exit (generous: a Job is asked every 2 s).
STATUS_W_BOUND_MS=${STATUS_W_BOUND_MS:-15000}
# The label of this scenario's pods.
STATUS_LABEL=e2e.baton.dev/status=true

# st_pod NAME STEP... > FILE: a plain Pod labelled $STATUS_LABEL, one container per STEP ("name=script").
# With ST_MARK=1, a Job with backoffLimit 1 instead, its containers mounting a hostPath folder at /mark.
st_pod() {
  local name=$1 step mount="" indent=""
  shift
  if [ "${ST_MARK:-0}" = 1 ]; then
    printf 'apiVersion: batch/v1\nkind: Job\nmetadata: {name: %s}\nspec:\n  backoffLimit: 1\n  template:\n' "$name"
    printf '    metadata: {labels: {%s}}\n    spec:\n' "${STATUS_LABEL/=/: \"}\""
    printf '      volumes: [{name: mark, hostPath: {path: /set-by-the-suite, type: Directory}}]\n'
    mount=", volumeMounts: [{name: mark, mountPath: /mark}]"
    indent="    "
  else
    printf 'apiVersion: v1\nkind: Pod\nmetadata: {name: %s, labels: {%s}}\nspec:\n' "$name" "${STATUS_LABEL/=/: \"}\""
  fi
  printf '%s  restartPolicy: Never\n%s  containers:\n' "$indent" "$indent"
  for step in "$@"; do
    printf "%s  - {name: %s, image: %s, command: [sh, -c, '%s']%s}\n" "$indent" "${step%%=*}" "$STEP_IMAGE" "${step#*=}" "$mount"
  done
}

# st_job KIND NAME FILE > JSON: the example pod of FILE (it runs baton already) as the template of a Job
# (KIND Job, backoffLimit 0) or a suspended CronJob (KIND CronJob), labelled baton.dev/injected=true
# and $STATUS_LABEL, for the cluster.
st_job() {
  for_cluster "$3" | jq --arg kind "$1" --arg name "$2" --arg key "${STATUS_LABEL%=*}" --arg value "${STATUS_LABEL#*=}" '
    {spec: {backoffLimit: 0, template: {metadata: {labels: ((.metadata.labels // {})
      + {"baton.dev/injected": "true", ($key): $value})}, spec}}} as $job
    | {apiVersion: "batch/v1", kind: $kind, metadata: {name: $name}}
      + if $kind == "Job" then $job else {spec: {schedule: "0 3 * * *", suspend: true, jobTemplate: $job}} end'
}

# st_watch KEY ARGS...: `batonctl status -n $NS -w ARGS` in the background, its frames in $dir/KEY.frames,
# its exit status and the time it exited (ms) in $dir/KEY.end once it exits.
st_watch() {
  local key=$1
  shift
  (
    timeout 300 "$BATONCTL_BIN" status -n "$NS" -w "$@" > "$dir/$key.frames" 2> "$dir/$key.err"
    echo "$? $(now_ms)" > "$dir/$key.end"
  ) &
  ST_WATCHERS+=("$!")
}

# pod_end_ms POD: when the pod's last container ended, by the kubelet (ms, whole seconds).
pod_end_ms() {
  kubectl -n "$NS" get pod "$1" -o json \
    | jq -r "$JQ_MS"'[.status.containerStatuses[].state.terminated.finishedAt // empty | ms] | max // 0'
}

# newest_pod JOB: the Job's newest pod.
newest_pod() {
  kubectl -n "$NS" get pods -l "batch.kubernetes.io/job-name=$1" --sort-by=.metadata.creationTimestamp \
    -o jsonpath='{.items[-1:].metadata.name}'
}

# st_watch_checks KEY WHAT CODE POD FIRST: the watcher KEY (of WHAT) exited CODE by itself, within
# $STATUS_W_BOUND_MS after the end of POD (the run's last pod); it drew more than one frame (a frame
# starts at the line of FIRST, the oldest pod), the first before the run ended, no two in a row alike,
# and the last one says the run's end, its happened: lines in time order.
st_watch_checks() {
  local key=$1 what=$2 want=$3 pod=$4 first=$5 rc at end final frames n i alike=0
  read -r rc at < "$dir/$key.end" || { fail "status: $what -w left no exit status"; return; }
  end=$(pod_end_ms "$pod")
  check "status: $what -w ended by itself with exit status $want, $((at - end)) ms after its last pod $pod ended (bound $STATUS_W_BOUND_MS ms; exit status $rc)" \
    test "$rc" = "$want" -a "$at" -ge "$end" -a "$((at - end))" -le "$STATUS_W_BOUND_MS"
  rm -f "$dir/$key.frame."*
  csplit -s -z -f "$dir/$key.frame." "$dir/$key.frames" "/^pod $NS\/$first: \|has no pods yet$/" '{*}' 2>/dev/null
  frames=("$dir/$key.frame."*)
  n=${#frames[@]}
  for ((i = 1; i < n; i++)); do
    cmp -s <(grep -v '^$' "${frames[i - 1]}") <(grep -v '^$' "${frames[i]}") && alike=$((alike + 1))
  done
  check "status: $what -w redrew $n frames, the first one before the run ended ($(head -n 1 "${frames[0]}")), no two in a row alike" \
    all_ok test "$n" -ge 2 -- test "$alike" = 0 -- grep -qE '(: (Pending|Running)| has no pods yet)$' "${frames[0]}" -- \
      test "$(grep -cE '^pod .*: (Succeeded|Failed)$' "${frames[0]}")" = 0
  final=$([ "$want" = 0 ] && echo Succeeded || echo Failed)
  # shellcheck disable=SC2016 # sh -c's script
  check "status: $what -w's last frame says $pod $final, its happened: lines in time order" \
    all_ok grep -qx "pod $NS/$pod: $final" "${frames[n - 1]}" -- \
      sh -c 'sed -n "/^happened:\$/,\$p" "$1" | tail -n +2 | awk "NF { print \$1 }" | sort -c' - "${frames[n - 1]}"
}

scenario_status() {
  local dir=$E2E_WORK/status f out rc pods want got plugin retry=0 waits
  mkdir -p "$dir"
  ST_WATCHERS=()
  st_pod st-steps 'fetch=sleep 1; echo fetched' 'build=sleep 1; echo built' 'publish=sleep 1; echo published' > "$dir/st-steps.yaml"
  inject "$dir/st-steps.yaml" "$dir/st-steps.json" || return
  st_job Job pipeline "$REPO/examples/pipeline.yaml" > "$dir/pipeline.json"
  st_job Job failure "$REPO/examples/failure.yaml" > "$dir/failure.json"
  # A CronJob that does not run by itself: a Job is started from it with kubectl create job --from.
  st_job CronJob nightly "$REPO/examples/pipeline.yaml" > "$dir/nightly.json"
  if [ "$LOCAL_CLUSTER" = 1 ]; then
    # A Job whose first pod fails and second succeeds: a mark in a hostPath folder tells them apart.
    retry=1
    mkdir -p "$dir/mark" && chmod 0777 "$dir/mark"
    # shellcheck disable=SC2016 # the steps' scripts
    ST_MARK=1 st_pod st-retry 'flaky=sleep 1; echo x >> /mark/tries; [ $(wc -l < /mark/tries) -ge 2 ] || exit 3' \
      'report=sleep 1; echo try $(wc -l < /mark/tries)' > "$dir/st-retry.yaml"
    inject "$dir/st-retry.yaml" "$dir/st-retry.json.in" || return
    jq --arg mark "$dir/mark" '.spec.template.spec.volumes |= map(if .name == "mark" then .hostPath.path = $mark else . end)' \
      "$dir/st-retry.json.in" > "$dir/st-retry.json"
  else
    skip "status: -w of a Job retried after a failed pod needs e2e/cluster/up's node (a hostPath mark)"
  fi

  # -w, each started right after its object was created, before its run ends.
  apply "$dir/st-steps.json" || return
  st_watch steps pod/st-steps
  apply "$dir/pipeline.json" || return
  st_watch pipeline job/pipeline
  apply "$dir/failure.json" || return
  st_watch failure job/failure
  if [ "$retry" = 1 ]; then
    apply "$dir/st-retry.json" || return
    st_watch retry job/st-retry
  fi
  apply "$dir/nightly.json" || return
  out=$("$BATONCTL_BIN" status -n "$NS" cronjob/nightly --exit-status 2>&1)
  rc=$?
  check "status: cronjob/nightly, which started no Job yet: exit 3 and the sentence saying how to start one ($out)" \
    all_ok test "$rc" = 3 -- grep -qF "cronjob nightly in namespace $NS has started no Job yet" <<<"$out"
  kubectl -n "$NS" create job --from=cronjob/nightly nightly-manual >/dev/null \
    || fail "status: kubectl create job --from=cronjob/nightly failed"

  wait_end st-steps || return
  waits=(pipeline:Complete failure:Failed nightly-manual:Complete)
  [ "$retry" = 0 ] || waits+=(st-retry:Complete)
  for f in "${waits[@]}"; do
    kubectl -n "$NS" wait --for="condition=${f#*:}" "job/${f%%:*}" --timeout="${POD_TIMEOUT}s" >/dev/null \
      || fail "status: the Job ${f%%:*} did not reach ${f#*:} within ${POD_TIMEOUT}s"
  done
  wait "${ST_WATCHERS[@]}"
  st_watch_checks steps pod/st-steps 0 st-steps st-steps
  st_watch_checks pipeline job/pipeline 0 "$(newest_pod pipeline)" "$(newest_pod pipeline)"
  st_watch_checks failure job/failure 1 "$(newest_pod failure)" "$(newest_pod failure)"
  # Every container starts at once and baton in it waits: a step is "started" only by its record.
  check "status: no frame of job/failure -w says package or upload started (they were Skipped), only that their containers did" \
    all_ok grep -qE '^  [0-9:.]+  package +container started$' "$dir/failure.frames" -- \
      test "$(grep -cE '^  [0-9:.]+  (package|upload) +started$' "$dir/failure.frames")" = 0
  # The kubelet says running while baton waits: such a step is waitingFor its --after steps.
  check "status: no frame of job/failure -w shows package or upload running (baton held them, then they were Skipped); $(grep -cE '^package +container +waiting .*baton waits for test$' "$dir/failure.frames") frame(s) show package waiting for test" \
    test "$(grep -cE '^(package|upload) +container +running ' "$dir/failure.frames")" = 0
  if [ "$retry" = 1 ]; then
    pods=$(kubectl -n "$NS" get pods -l batch.kubernetes.io/job-name=st-retry --sort-by=.metadata.creationTimestamp -o jsonpath='{.items[*].metadata.name}')
    st_watch_checks retry job/st-retry 0 "${pods##* }" "${pods%% *}"
    check "status: job/st-retry -w did not end at the first pod's failure: its last frame shows both pods ($pods), the first Failed" \
      all_ok test "$(wc -w <<<"$pods")" = 2 -- grep -qx "pod $NS/${pods%% *}: Failed" "$dir/retry.frames"
  fi

  # A finished injected pod: the table and -o json from the cluster, and -f of kubectl's Pod JSON.
  mkdir -p "$(pod_dir st-steps)"
  yaml_to_json "$dir/st-steps.yaml" > "$(pod_dir st-steps)/spec.json"
  collect st-steps
  expect_phase st-steps Succeeded
  "$BATONCTL_BIN" status -n "$NS" pod/st-steps > "$dir/st-steps.table" 2> "$dir/st-steps.err"
  rc=$?
  want=$(jq -r '.spec.initContainers[].name, .spec.containers[].name' "$dir/st-steps.json" | tr '\n' ' ')
  got=$(awk 'NR > 2 && $2 ~ /^(init|container|sidecar)$/ { print $1 }' "$dir/st-steps.table" | tr '\n' ' ')
  check "status: pod/st-steps -n \$NS prints the table (exit $rc) naming every step in order: ${want% }" \
    all_ok test "$rc" = 0 -- test "$got" = "$want" -- grep -qx "pod $NS/st-steps: Succeeded" "$dir/st-steps.table"
  "$BATONCTL_BIN" status -n "$NS" pod/st-steps -o json > "$dir/st-steps.cluster.json" 2>> "$dir/st-steps.err"
  kubectl -n "$NS" get pod st-steps -o json | "$BATONCTL_BIN" status -f - -o json > "$dir/st-steps.file.json" 2>> "$dir/st-steps.err"
  # shellcheck disable=SC2016 # jq's variables
  check "status: pod/st-steps -o json from the API server equals status -f of kubectl's Pod JSON (phase, every step, results)" \
    jq -e -n --slurpfile a "$dir/st-steps.cluster.json" --slurpfile b "$dir/st-steps.file.json" \
      '($a | length) == 1 and ($b | length) == 1 and ($a[0] | {pod, phase, steps, results}) == ($b[0] | {pod, phase, steps, results})
       and $a[0].phase == "Succeeded" and ($a[0].steps | length) == 4'

  # The kubectl plugin: batonctl named kubectl-baton on the PATH.
  plugin=$dir/plugin
  mkdir -p "$plugin"
  ln -sf "$BATONCTL_BIN" "$plugin/kubectl-baton"
  out=$(PATH=$plugin:$PATH kubectl baton status pod/st-steps -n "$NS" 2>&1)
  check "status: kubectl baton status pod/st-steps -n \$NS (kubectl-baton -> batonctl on the PATH) prints what batonctl prints" \
    all_ok test -s "$dir/st-steps.table" -- test "$out" = "$(cat "$dir/st-steps.table")"
  out=$(PATH=$plugin:$PATH kubectl baton status --bogus 2>&1)
  rc=$?
  check "status: as a plugin, a wrong command line is refused (exit $rc) with the usage of kubectl baton status" \
    all_ok test "$rc" = 2 -- grep -q "^Usage: kubectl baton status " <<<"$out"

  # job/: every pod of the Job, oldest first; the run is the newest pod's.
  "$BATONCTL_BIN" status -n "$NS" job/failure --exit-status > "$dir/failure.table" 2>&1
  rc=$?
  check "status: job/failure --exit-status: exit 1 (got $rc), its pod Failed: test 3 Failed, package and upload Skipped, notify Completed" \
    all_ok test "$rc" = 1 -- grep -qE "^pod $NS/failure-[a-z0-9]+: Failed$" "$dir/failure.table" -- \
      grep -qE '^test +container +terminated +3 +Failed ' "$dir/failure.table" -- \
      test "$(grep -cE '^(package|upload) +container +terminated +- +Skipped ' "$dir/failure.table")" = 2 -- \
      grep -qE '^notify +container +terminated +0 +Completed ' "$dir/failure.table"
  "$BATONCTL_BIN" status -n "$NS" job/pipeline -o json > "$dir/pipeline.status.json" 2>&1
  rc=$?
  check "status: job/pipeline -o json: exit $rc, one line for its pod, Succeeded, with the results the steps handed over" \
    all_ok test "$rc" = 0 -- jq -e -s 'length == 1 and (.[0].pod | startswith("pipeline-")) and .[0].phase == "Succeeded"
      and .[0].results.artifact == "app-v1.2.3.tar"' "$dir/pipeline.status.json"
  if [ "$retry" = 1 ]; then
    "$BATONCTL_BIN" status -n "$NS" job/st-retry --exit-status -o json > "$dir/st-retry.status.json" 2>&1
    rc=$?
    check "status: job/st-retry --exit-status -o json: exit $rc, its two pods oldest first ($pods), Failed then Succeeded" \
      all_ok test "$rc" = 0 -- test "$(jq -r .pod "$dir/st-retry.status.json" | tr '\n' ' ')" = "$pods " -- \
        test "$(jq -r .phase "$dir/st-retry.status.json" | tr '\n' ' ')" = "Failed Succeeded "
    "$BATONCTL_BIN" status -n "$NS" job/st-retry > "$dir/st-retry.table" 2>&1
  fi
  "$BATONCTL_BIN" status -n "$NS" cronjob/nightly --exit-status -o json > "$dir/nightly.status.json" 2>&1
  rc=$?
  check "status: cronjob/nightly --exit-status: exit $rc, the pod of its latest Job nightly-manual, Succeeded" \
    all_ok test "$rc" = 0 -- jq -e -s 'length == 1 and (.[0].pod | startswith("nightly-manual-")) and .[0].phase == "Succeeded"' "$dir/nightly.status.json"

  # -l SELECTOR and the default selector: the pods the API server selects, as kubectl lists them.
  for f in "$STATUS_LABEL" ""; do
    if [ -n "$f" ]; then
      "$BATONCTL_BIN" status -n "$NS" -l "$f" -o json --exit-status > "$dir/selected.json" 2>&1
    else
      "$BATONCTL_BIN" status -n "$NS" -o json --exit-status > "$dir/selected.json" 2>&1
    fi
    rc=$?
    got=$(jq -r .pod "$dir/selected.json" 2>/dev/null | sort | tr '\n' ' ')
    want=$(kubectl -n "$NS" get pods -l "${f:-baton.dev/injected=true}" -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}' | sort | tr '\n' ' ')
    check "status: $([ -n "$f" ] && echo "-l $f" || echo "the default selector (baton.dev/injected=true)") -n \$NS -o json --exit-status: the $(wc -w <<<"$want") pods kubectl lists, exit $rc (failure's pod Failed)" \
      all_ok test -n "$want" -- test "$got" = "$want" -- test "$rc" = 1
  done
  out=$("$BATONCTL_BIN" status -n "$NS" pod/st-nope 2>&1)
  rc=$?
  check "status: pod/st-nope: exit $rc and one sentence ($out)" \
    all_ok test "$rc" = 1 -- test "$out" = "batonctl: pod st-nope is not in namespace $NS: check the name, or give its namespace with -n"
}

# ---------------------------------------------------------------------------------------------------
# For scenario `deploy`: the webhook's metrics, from every replica through the API server's proxy.

# sum SAMPLE: the sample (NAME or NAME{LABELS}) summed over the replicas' metrics in $dir/metrics.txt.
sum() { awk -v m="$1" '$1 == m { s += $2 } END { print s + 0 }' "$dir/metrics.txt"; }

# The admissions by outcome, summed: "injected 2, denied 2, …".
outcomes() {
  sed -n 's/^batonctl_webhook_admissions_total{outcome="\([a-z_]*\)"} \([0-9]*\)$/\1 \2/p' "$dir/metrics.txt" \
    | awk '{ n[$1] += $2 } END { for (o in n) printf "%s%s %d", (i++ ? ", " : ""), o, n[o] }'
}

# webhook_metrics WHO INJECTED DENIED: after the webhook admitted INJECTED pods and denied DENIED, a pod
# whose image's ENTRYPOINT only its registry knows (unreachable from the webhook's pod: denied), then
# the metrics of every replica summed: admissions by outcome, the latency histogram, registry look-ups.
webhook_metrics() {
  local who=$1 injected=$2 denied=$3 p all="" metrics
  cat > "$dir/deploy-lookup.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata: {name: deploy-lookup, annotations: {baton.dev/inject: "true"}}
spec:
  restartPolicy: Never
  containers:
  - {name: only, image: $IMAGE_STEP}
EOF
  if kubectl -n "$NS" create -f "$dir/deploy-lookup.yaml" > /dev/null 2> "$dir/deploy-lookup.out"; then
    fail "$who: a pod whose image's ENTRYPOINT the webhook cannot read was admitted"
  else
    check "$who: a pod without a command whose image's registry the webhook cannot reach is denied: it could not read the image's configuration" \
      grep -qF "could not read the image's configuration from its registry" "$dir/deploy-lookup.out"
  fi
  denied=$((denied + 1))
  for p in $(kubectl -n "$DEPLOY_NS" get pods -l app.kubernetes.io/name=baton-webhook -o jsonpath='{.items[*].metadata.name}'); do
    if metrics=$(kubectl get --raw "/api/v1/namespaces/$DEPLOY_NS/pods/$p:9090/proxy/metrics" 2>&1); then
      printf '%s\n' "$metrics" > "$dir/metrics-$p.txt"
      all+=$metrics$'\n'
    else
      fail "$who: the metrics of $p could not be read through the API server: $(head -c 200 <<<"$metrics")"
    fi
  done
  [ -n "$all" ] || return
  printf '%s' "$all" > "$dir/metrics.txt"
  check "$who: the webhook's $(wc -l < <(grep -F _count "$dir/metrics.txt")) replicas count admissions by outcome: $(outcomes) (at least the $injected injected and $denied denied here)" \
    all_ok test "$(sum 'batonctl_webhook_admissions_total{outcome="injected"}')" -ge "$injected" -- \
      test "$(sum 'batonctl_webhook_admissions_total{outcome="denied"}')" -ge "$denied"
  check "$who: the latency histogram counts every admission: _count $(sum batonctl_webhook_admission_duration_seconds_count) = the admissions' total, its +Inf bucket too" \
    all_ok test "$(sum batonctl_webhook_admission_duration_seconds_count)" = \
      "$(awk '$1 ~ /^batonctl_webhook_admissions_total\{/ { s += $2 } END { print s + 0 }' "$dir/metrics.txt")" -- \
      test "$(sum 'batonctl_webhook_admission_duration_seconds_bucket{le="+Inf"}')" = "$(sum batonctl_webhook_admission_duration_seconds_count)"
  check "$who: the registry look-ups are counted: $(sum 'batonctl_webhook_image_lookups_total{result="failed"}') failed (the unreachable registry), declared as a counter" \
    all_ok test "$(sum 'batonctl_webhook_image_lookups_total{result="failed"}')" -ge 1 -- \
      grep -qx '# TYPE batonctl_webhook_image_lookups counter' <<<"$all"
}
