# shellcheck shell=bash
# Scenarios `argo` and `tekton` of e2e/cluster.sh: the Argo- and Tekton-shaped pods that e2e/argo.sh and
# e2e/tekton.sh play on podman, as real pods, so that the real kubelet (emptyDirs, downward API, secret
# volumes, termination messages) judges them. The kubelet removes a terminated pod's emptyDirs: what
# the podman scripts read in the volumes afterwards is read here in the messages and logs. Sourced by
# e2e/cluster.sh after scenarios.sh.

# exit_code POD CONTAINER: its exit code in the pod's Pod JSON.
exit_code() {
  jq -r --arg n "$2" '[.status.initContainerStatuses[]?, .status.containerStatuses[]] | map(select(.name == $n))[0]
    | .state.terminated.exitCode' "$(pod_dir "$1")/pod.json"
}
term_message() {
  jq -r --arg n "$2" '[.status.initContainerStatuses[]?, .status.containerStatuses[]] | map(select(.name == $n))[0]
    | .state.terminated.message // ""' "$(pod_dir "$1")/pod.json"
}

# push_image LOCAL NAME: LOCAL pushed to the cluster's registry by content tag; prints the tag.
push_image() {
  local tag
  tag="$BATON_REGISTRY/$2:dev-$(podman image inspect "$1" --format '{{.Id}}' | cut -c1-12)"
  podman tag "$1" "$tag" && podman push -q "${tls[@]}" "$tag" >&2 || return 1
  printf '%s\n' "$tag"
}

# The container set of e2e/argo/containerset.yaml (a -> (b, flaky retried) -> main, a sidecar), with
# argo.Containerfile's executor on e2e/argo.sh's stand-in for the upstream image.
scenario_argo() {
  local pod=argo-e2e-cs dir exec c log
  dir=$(pod_dir "$pod")
  mkdir -p "$dir"
  build_argo_images localhost/argoexec-upstream-standin:cluster localhost/argoexec-baton:cluster
  exec=$(push_image localhost/argoexec-baton:cluster argoexec-baton) || { fail "argo: the executor image does not push"; return; }
  # No Workflow owns it here: the garbage collector would delete a pod whose owner does not exist.
  yaml_to_json "$E2E_DIR/argo/containerset.yaml" | jq --arg exec "$exec" --arg step "$IMAGE_STEP" '
    def retag: .image |= (if . == "localhost/argoexec-baton:argo" then $exec
                          elif . == "localhost/busybox-step:argo" then $step else . end);
    del(.metadata.ownerReferences) | .spec.initContainers |= map(retag) | .spec.containers |= map(retag)' > "$dir/apply.json"
  apply "$dir/apply.json" || return
  wait_end "$pod" || return
  pod_json "$pod"
  for c in init wait a b flaky main; do
    check "argo: $c exits 0" test "$(exit_code "$pod" $c)" = 0
  done
  check "argo: the sidecar proxy was stopped by its emissary with SIGTERM once every member ended (143)" \
    test "$(exit_code "$pod" proxy)" = 143
  # The kubelet removes a terminated pod's emptyDirs, so the exitcode files are e2e/argo.sh's to check;
  # the wait container read them, and the members' logs stay.
  log=$(kubectl -n "$NS" logs "$pod" -c flaky 2>&1)
  check "argo: flaky ran twice (retries \"2\"): its log holds baton's retry line, the failed run and the good one" \
    all_ok matches "$log" "run 1 of 2 ended with exit code 1; running again in 1.0s" -- \
      matches "$log" "intentional failure" -- matches "$log" "flaky done"
  check "argo: wait read every exit code and output, as on podman" test "$(term_message "$pod" wait)" = \
    "exitcodes a=0 b=0 flaky=0 main=0; parameter /tmp/greeting=hello; artifact /tmp/report=report report/one.txt report/sub report/sub/two.txt "
}

# steps_running POD: every container of the pod runs (Tekton's controller then sets tekton.dev/ready).
steps_running() {
  kubectl -n "$NS" get pod "$1" -o json 2>/dev/null \
    | jq -e '(.status.containerStatuses // []) | length == 4 and all(.state.running != null)' >/dev/null
}

# e2e/tekton-taskrun.yaml, the Pod Tekton's controller makes for a TaskRun, as written, with the real
# downward API (the annotation tekton.dev/ready set once the steps run) and a real Secret git-creds.
scenario_tekton() {
  local pod=baton-tekton-demo-pod dir image password a b c d i
  dir=$(pod_dir "$pod")
  mkdir -p "$dir"
  build_tekton_image localhost/baton-tekton:cluster
  image=$(push_image localhost/baton-tekton:cluster baton-tekton) || { fail "tekton: the entrypoint image does not push"; return; }
  password="s3cr3t-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
  kubectl -n "$NS" create secret generic git-creds --type=kubernetes.io/basic-auth \
    --from-literal=username=tekton-bot --from-literal=password="$password" >/dev/null \
    || { fail "tekton: the Secret git-creds was not created"; return; }
  yaml_to_json "$E2E_DIR/tekton-taskrun.yaml" | jq --arg from "localhost/baton-tekton:dev" --arg to "$image" \
    'walk(if type == "object" and .image? == $from then .image = $to else . end)' > "$dir/spec.json"
  for_cluster "$dir/spec.json" > "$dir/apply.json"
  apply "$dir/apply.json" || return
  for i in $(seq 600); do steps_running "$pod" && break; sleep 0.1; done
  steps_running "$pod" || { fail "tekton: the four step containers were not all running within 60 s"; return; }
  kubectl -n "$NS" annotate pod "$pod" tekton.dev/ready=READY >/dev/null
  wait_end "$pod" || return
  pod_json "$pod"
  a=$(step_json "$pod" step-a); b=$(step_json "$pod" step-b); c=$(step_json "$pod" step-c); d=$(step_json "$pod" step-d)
  check "tekton: init containers prepare and place-scripts exit 0" \
    test "$(jq -r '[.status.initContainerStatuses[].state.terminated.exitCode] | join(",")' "$dir/pod.json")" = 0,0
  check "tekton: step-a exit 0, task result greeting, step results note and files (a RunResult array)" \
    test "$(jq -c '[.exitCode, .results.greeting, .stepResults.note, .stepResults.files]' <<<"$a")" = '[0,"hello from a","a-note","[\"alpha\",\"beta gamma\"]"]'
  check "tekton: step-b exit 0 (onError: continue), ExitCode=3 in its message, \$(steps.a.results.files[*]) as two arguments" \
    test "$(jq -c '[.exitCode, .exitCodeKey, .results["b-result"]]' <<<"$b")" = '[0,"3","alpha|beta gamma|"]'
  check "tekton: step-c's CEL when held; it read step-b's exitCode and the git credentials of the real Secret" \
    test "$(jq -c '[.exitCode, .results.summary]' <<<"$c")" = '[0,"a=hello from a b-exit=3 creds=ok"]'
  check "tekton: step-d exit 0, Reason=Skipped (its when does not hold), its script never ran" \
    test "$(jq -c '[.exitCode, .reasonKey, (.entries | keys | join(","))]' <<<"$d")" = '[0,"Skipped","Reason,StartedAt"]'
  check "tekton: the git password is in no termination message or Pod status" \
    bash -c '! grep -qF -- "$1" "$2"' _ "$password" "$dir/pod.json"
}
