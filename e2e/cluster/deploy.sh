# shellcheck shell=bash
# Scenario `deploy` of e2e/cluster.sh: deploy/ applied as docs/webhook.md says for a cluster without
# cert-manager (`batonctl webhook certs`, the Secret, the caBundle patch), the batonctl image pushed to the
# local registry, and then the real API server calling the webhook: its CEL matchCondition, a denial with
# the sentence, `--fail-open`, an injected Job in a `restricted` namespace, and the watcher Deployment
# annotating pods under deploy/'s RBAC. Sourced by e2e/cluster.sh after scenarios.sh.

BATONCTL_STATIC=${CARGO_TARGET_DIR:-$REPO/target}/x86_64-unknown-linux-musl/release/batonctl

# The batonctl image (batonctl.Containerfile) from the static batonctl, pushed; prints its tag.
push_batonctl_image() {
  local ctx tag
  # ring's C code needs a musl C compiler (batonctl.Containerfile says so).
  if ! command -v musl-gcc >/dev/null 2>&1; then
    say "installing from Debian's packages: musl-tools (apt-get install -y musl-tools)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq musl-tools >/dev/null || return 1
  fi
  # cargo rebuilds only what changed (4.5 min cold here, a second when nothing did).
  say "building the static batonctl (cargo build --release --target x86_64-unknown-linux-musl -p baton-controller)"
  (cd "$REPO" && CC_x86_64_unknown_linux_musl=musl-gcc cargo build --quiet --release \
    --target x86_64-unknown-linux-musl -p baton-controller --bin batonctl >&2) || return 1
  ctx=$E2E_WORK/batonctl-image
  mkdir -p "$ctx"
  cp "$BATONCTL_STATIC" "$ctx/batonctl"
  cp /etc/ssl/certs/ca-certificates.crt "$ctx/ca-certificates.crt"
  podman build -q --layers=false -f "$REPO/batonctl.Containerfile" --build-arg BATONCTL_BIN=batonctl \
    --build-arg CA_BUNDLE=ca-certificates.crt -t localhost/batonctl:cluster-e2e "$ctx" >/dev/null || return 1
  tag="$BATON_REGISTRY/batonctl:dev-$(podman image inspect localhost/batonctl:cluster-e2e --format '{{.Id}}' | cut -c1-12)"
  # shellcheck disable=SC2154 # tls: cluster.sh's registry flags
  podman tag localhost/batonctl:cluster-e2e "$tag" && podman push -q "${tls[@]}" "$tag" >&2 || return 1
  printf '%s\n' "$tag"
}

# The namespace deploy/ is installed in: not its default, so that examples/deploy-namespace/ (an
# overlay that moves deploy/ to another namespace, its replacements keeping the webhook consistent)
# is what the real API server judges.
DEPLOY_NS=${DEPLOY_NS:-baton-e2e-system}

# An overlay of deploy/without-cert-manager/ for this cluster: examples/deploy-namespace/ as a user
# copies it (its namespace set to $DEPLOY_NS, its base to without-cert-manager), the pushed images named
# in kustomize's `images:` as a user would (baton-init's image through the webhook's env var
# BATON_INIT_IMAGE, deploy/base/kustomizeconfig.yaml), and the watcher pointed at the API server by the
# node's address (this cluster runs no kube-proxy: docs/e2e.md).
write_overlay() {
  local dir=$1 image=$2 base
  mkdir -p "$dir/namespace"
  base=$(realpath --relative-to="$dir/namespace" "$REPO/deploy/without-cert-manager")
  sed -e "s|^namespace: baton$|namespace: $DEPLOY_NS|" -e "s|^  - \.\./\.\./deploy$|  - $base|" \
    "$REPO/examples/deploy-namespace/kustomization.yaml" > "$dir/namespace/kustomization.yaml"
  base=namespace
  cat > "$dir/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $base
images:
  - name: localhost/batonctl
    newName: ${image%:*}
    newTag: ${image##*:}
  - name: localhost/baton
    newName: ${IMAGE_BATON%:*}
    newTag: ${IMAGE_BATON##*:}
patches:
  - target: {kind: Deployment, name: baton-controller}
    patch: |
      - op: add
        path: /spec/template/spec/containers/0/env
        value: [{name: KUBERNETES_SERVICE_HOST, value: "$NODE_IP"}, {name: KUBERNETES_SERVICE_PORT, value: "$API_PORT"}]
EOF
}

# admit NAME ANNOTATION: a one-step pod, annotated baton.dev/inject=ANNOTATION (none when empty), created
# in $NS; the answer in $dir/NAME.out, the created Pod in $dir/NAME.json. Returns kubectl's status.
admit() {
  local name=$1 value=$2 annotations=""
  [ -z "$value" ] || annotations="annotations: {baton.dev/inject: \"$value\"}"
  cat > "$dir/$name.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $name
  $annotations
spec:
  restartPolicy: Never
  containers:
  - name: only
    image: $IMAGE_STEP
    command: [sh, -c, 'echo hello']
EOF
  kubectl -n "$NS" create -f "$dir/$name.yaml" -o json > "$dir/$name.json" 2> "$dir/$name.out"
}

# expect_admitted NAME ANNOTATION WHAT JQ: the pod is created, and the created Pod satisfies JQ.
expect_admitted() {
  if admit "$1" "$2"; then
    check "deploy: $3" jq -e "$4" "$dir/$1.json"
  else
    fail "deploy: $3: refused: $(cat "$dir/$1.out")"
  fi
}

# wait_run_status POD PHASE SECONDS: until the pod's baton.dev/run-status annotation says PHASE (a watch).
wait_run_status() {
  local line
  while read -r line; do
    jq -e --arg p "$2" '.phase == $p' <<<"$line" >/dev/null 2>&1 && return 0
  done < <(timeout "$3" kubectl -n "$NS" get pod "$1" -w -o jsonpath='{.metadata.annotations.baton\.dev/run-status}{"\n"}' 2>/dev/null)
  return 1
}

# install_deploy WHO: deploy/without-cert-manager applied in $dir/overlay as docs/webhook.md says, until
# the webhook's replicas and the controller are ready; WHO names the scenario in its lines.
install_deploy() {
  local who=$1 image
  mkdir -p "$dir/overlay"
  # An earlier run's install, still going away, would refuse the new one.
  kubectl delete namespace "$DEPLOY_NS" --ignore-not-found --timeout=120s >/dev/null 2>&1
  image=$(push_batonctl_image) || { fail "$who: the batonctl image does not build or push"; return 1; }
  write_overlay "$dir/overlay" "$image"
  "$BATONCTL_BIN" webhook certs --service baton-webhook --namespace "$DEPLOY_NS" --out "$dir/certs" \
    > "$dir/ca-bundle.txt" 2>/dev/null || { fail "$who: batonctl webhook certs failed"; return 1; }
  if ! kubectl apply -k "$dir/overlay" > "$dir/apply.log" 2>&1 \
    || ! kubectl -n "$DEPLOY_NS" create secret tls baton-webhook-tls --cert "$dir/certs/tls.crt" --key "$dir/certs/tls.key" >/dev/null \
    || ! kubectl patch mutatingwebhookconfiguration baton-webhook --type=json \
      -p "[{\"op\": \"add\", \"path\": \"/webhooks/0/clientConfig/caBundle\", \"value\": \"$(cat "$dir/ca-bundle.txt")\"}]" >/dev/null; then
    fail "$who: applying deploy/without-cert-manager as docs/webhook.md says failed: $(tail -n 3 "$dir/apply.log")"
    return 1
  fi
  if kubectl -n "$DEPLOY_NS" rollout status deploy/baton-webhook --timeout=120s >/dev/null 2>&1 \
    && kubectl -n "$DEPLOY_NS" rollout status deploy/baton-controller --timeout=60s >/dev/null 2>&1; then
    pass "$who: deploy/without-cert-manager applied in namespace $DEPLOY_NS through examples/deploy-namespace/ as docs/webhook.md says; the webhook's 2 replicas and the controller are ready"
    kubectl get mutatingwebhookconfiguration baton-webhook -o json > "$dir/webhook-config.json"
    kubectl -n "$DEPLOY_NS" get deploy baton-webhook -o json > "$dir/webhook-deployment.json"
    # shellcheck disable=SC2016 # jq's variables
    check "$who: the webhook configuration follows the namespace: it calls the Service in $DEPLOY_NS and leaves that namespace out" \
      jq -e --arg ns "$DEPLOY_NS" '.webhooks[0].clientConfig.service.namespace == $ns
        and (.webhooks[0].namespaceSelector.matchExpressions[0].values | index($ns) != null)' "$dir/webhook-config.json"
  else
    fail "$who: the webhook or the controller did not become ready: $(kubectl -n "$DEPLOY_NS" get pods -o wide 2>&1 | tail -n +2 | tr '\n' ';')"
    return 1
  fi
}

scenario_deploy() {
  local dir rns
  [ "$LOCAL_CLUSTER" = 1 ] || { skip "deploy: needs e2e/cluster/up's cluster (its registry, no cert-manager)"; return; }
  dir=$E2E_WORK/deploy
  install_deploy deploy || return

  # The real API server evaluates the matchCondition and calls the webhook.
  expect_admitted deploy-plain "" "a pod without the annotation is created untouched (no baton-init)" \
    '(.spec.initContainers // []) | length == 0'
  expect_admitted deploy-false false "baton.dev/inject: \"false\" is untouched (the CEL matchCondition)" \
    '(.spec.initContainers // []) | length == 0'
  expect_admitted deploy-injected true "an annotated pod is injected by the API server's call (baton-init, the step wrapped)" \
    '.spec.initContainers[0].name == "baton-init" and .spec.containers[0].command[0] == "/var/run/baton/bin/baton"'
  # shellcheck disable=SC2016 # jq's variables
  check "deploy: baton-init's image is the one the overlay's kustomize images: named ($IMAGE_BATON), through the webhook's --image=\$(BATON_INIT_IMAGE)" \
    all_ok jq -e --arg image "$IMAGE_BATON" '.spec.initContainers[0].image == $image' "$dir/deploy-injected.json" -- \
      jq -e --arg image "$IMAGE_BATON" '.spec.template.spec.containers[0]
        | (.command | index("--image=$(BATON_INIT_IMAGE)") != null)
          and (.env[] | select(.name == "BATON_INIT_IMAGE") | .value == $image)' "$dir/webhook-deployment.json"
  if admit deploy-yes yes; then
    fail "deploy: baton.dev/inject: \"yes\" was admitted; it must be denied with a sentence"
  else
    check "deploy: baton.dev/inject: \"yes\" is denied with the sentence, as docs/webhook.md shows it" \
      grep -qF "admission webhook \"inject.baton.dev\" denied the request: Pod $NS/deploy-yes: annotation baton.dev/inject is \"yes\": use \"true\" or \"false\"" "$dir/deploy-yes.out"
  fi

  # The watcher Deployment, under deploy/'s RBAC, annotates the injected pod once it ended.
  if wait_end deploy-injected; then
    if wait_run_status deploy-injected Succeeded 60; then
      pass "deploy: the watcher (baton-controller, deploy/'s RBAC) wrote the run status Succeeded on the pod"
    else
      fail "deploy: the watcher wrote no run status Succeeded within 60 s: $(kubectl -n "$DEPLOY_NS" logs deploy/baton-controller --tail=3 2>&1 | tr '\n' ' ')"
    fi
  fi

  # An injected Job in a namespace that enforces the restricted Pod Security Standard and has a
  # ResourceQuota on requests and limits: the quota refuses any container that sets neither.
  rns=$NS-restricted
  kubectl create namespace "$rns" >/dev/null
  kubectl label namespace "$rns" pod-security.kubernetes.io/enforce=restricted >/dev/null
  kubectl -n "$rns" create quota baton-e2e \
    --hard=requests.cpu=1,requests.memory=512Mi,limits.cpu=1,limits.memory=512Mi >/dev/null
  for_cluster "$PODS_DIR/restricted-job.yaml" > "$dir/restricted-job.json"
  kubectl -n "$rns" apply -f "$dir/restricted-job.json" >/dev/null 2>&1
  if kubectl -n "$rns" wait --for=condition=Complete job/baton-restricted --timeout=90s >/dev/null 2>&1; then
    pass "deploy: an injected Job completed in a namespace enforcing restricted Pod Security, under a ResourceQuota on requests and limits"
    kubectl -n "$rns" get pods -l batch.kubernetes.io/job-name=baton-restricted -o json > "$dir/restricted-pods.json"
    check "deploy: the Job's pod is Guaranteed, as its own containers make it (baton-init's requests = limits)" \
      jq -e '.items | length == 1 and .[0].status.qosClass == "Guaranteed"
        and (.[0].spec.initContainers[0] | .name == "baton-init" and .resources.requests == .resources.limits)' "$dir/restricted-pods.json"
    kubectl -n "$rns" logs job/baton-restricted -c tamper > "$dir/tamper.log" 2>&1
    check "deploy: a step of baton-init's UID cannot overwrite, remove or move the baton binary it runs (the read-only bin mount): $(grep -m 1 -F 'bin/baton' "$dir/tamper.log" | cut -c1-120)" \
      all_ok grep -qxF "tamper: bin/baton unchanged" "$dir/tamper.log" -- \
        test "$(grep -cF 'Read-only file system' "$dir/tamper.log")" -ge 2 -- \
        jq -e '.items[0].spec.containers[] | select(.name == "tamper") | .volumeMounts[]
          | select(.mountPath == "/var/run/baton/bin") | .readOnly == true' "$dir/restricted-pods.json"
  else
    fail "deploy: the injected Job did not complete under restricted Pod Security and a ResourceQuota: $(kubectl -n "$rns" get events --field-selector reason=FailedCreate -o jsonpath='{.items[0].message}' 2>&1 | head -c 400)"
  fi
  kubectl delete namespace "$rns" --wait=false >/dev/null 2>&1
  # The metrics of the replicas that answered (the patch below replaces them): 2 injected, 1 denied.
  webhook_metrics deploy 2 1

  # --fail-open: the refused pod is let through unchanged, with the sentence as a warning.
  kubectl -n "$DEPLOY_NS" patch deploy baton-webhook --type=json \
    -p '[{"op": "add", "path": "/spec/template/spec/containers/0/command/-", "value": "--fail-open"}]' >/dev/null
  kubectl -n "$DEPLOY_NS" rollout status deploy/baton-webhook --timeout=120s >/dev/null 2>&1
  if admit deploy-yes-open yes; then
    check "deploy: with --fail-open the same pod is admitted unchanged, warned with the sentence" \
      all_ok jq -e '(.spec.initContainers // []) | length == 0' "$dir/deploy-yes-open.json" -- \
        grep -qF "Warning: baton: not injected: Pod $NS/deploy-yes-open: annotation baton.dev/inject is \"yes\"" "$dir/deploy-yes-open.out"
  else
    fail "deploy: with --fail-open the pod was still refused: $(cat "$dir/deploy-yes-open.out")"
  fi
  kubectl delete -k "$dir/overlay" --timeout=120s >/dev/null 2>&1
}

# ---------------------------------------------------------------------------------------------------
# Scenario `controller`: deploy/'s watcher Deployment under deploy/'s RBAC and policy, as it must behave
# on a cluster it shares: only labelled pods, a refused patch that stops nothing, a Warning Event per
# failed step, and a relist (the controller away and back) that rewrites nothing already right.

# ctl_pod NAME INJECT LABELS FIRST SECOND: a two-step pod in $NS (FIRST and SECOND are sh scripts),
# annotated baton.dev/inject=INJECT when INJECT is not empty, with the labels LABELS ("{...}").
ctl_pod() {
  local annotations="{}"
  [ -z "$2" ] || annotations="{baton.dev/inject: \"$2\"}"
  cat > "$dir/$1.yaml" <<EOS
apiVersion: v1
kind: Pod
metadata: {name: $1, annotations: $annotations, labels: $3}
spec:
  restartPolicy: Never
  containers:
  - {name: first, image: $IMAGE_STEP, command: [sh, -c, '$4']}
  - {name: second, image: $IMAGE_STEP, command: [sh, -c, '$5']}
EOS
  kubectl -n "$NS" create -f "$dir/$1.yaml" > /dev/null 2> "$dir/$1.out" \
    || { fail "controller: pod $1 was not created: $(cat "$dir/$1.out")"; return 1; }
}

# annotation_of POD: the pod's baton.dev/run-status annotation ("" when none).
annotation_of() { kubectl -n "$NS" get pod "$1" -o jsonpath='{.metadata.annotations.baton\.dev/run-status}'; }

# A second policy, as a cluster's own policy engine might add: the controller may not update pods
# labelled e2e.baton.dev/deny=true.
deny_policy() {
  cat <<'EOS'
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: baton-e2e-deny}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: [v1], operations: [UPDATE], resources: [pods]}
    objectSelector: {matchLabels: {e2e.baton.dev/deny: "true"}}
  matchConditions:
  - name: the-baton-controller
    expression: request.userInfo.username.endsWith(':baton-controller')
  validations:
  - {expression: "false", message: "e2e: this pod may not be annotated"}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: baton-e2e-deny}
spec:
  policyName: baton-e2e-deny
  validationActions: [Deny]
EOS
}

scenario_controller() {
  local dir rv_before mf_before logs metrics _
  [ "$LOCAL_CLUSTER" = 1 ] || { skip "controller: needs e2e/cluster/up's cluster (its registry, no cert-manager)"; return; }
  dir=$E2E_WORK/controller
  install_deploy controller || return
  deny_policy > "$dir/deny.yaml"
  kubectl apply -f "$dir/deny.yaml" >/dev/null || { fail "controller: the deny policy was not created"; return; }

  # Three pods that end: a plain one (no label), a failing injected one, one the policy protects.
  ctl_pod ctl-plain "" "{}" 'echo plain' 'exit 0' || return
  ctl_pod ctl-failing true "{}" 'echo failing; exit 3' 'echo never' || return
  ctl_pod ctl-denied true '{e2e.baton.dev/deny: "true"}' 'echo denied' 'echo denied too' || return
  wait_end ctl-plain && wait_end ctl-failing && wait_end ctl-denied || return
  if wait_run_status ctl-failing Failed 60; then
    pass "controller: the failing injected pod got run status Failed"
  else
    fail "controller: the failing injected pod got no run status Failed within 60 s"
  fi
  # The refusal is logged (and retried: the line says when); then a later pod is still annotated.
  logs=""
  for _ in $(seq 30); do
    logs=$(kubectl -n "$DEPLOY_NS" logs deploy/baton-controller 2>&1 | grep -F "pod $NS/ctl-denied failed, retrying in")
    [ -z "$logs" ] || break
    sleep 1
  done
  check "controller: the denied patch of ctl-denied is logged with the policy's message: $(head -n 1 <<<"$logs" | cut -c1-200)" \
    grep -q "e2e: this pod may not be annotated" <<<"$logs"
  ctl_pod ctl-later true "{}" 'echo later' 'echo later too' || return
  wait_end ctl-later || return
  if wait_run_status ctl-later Succeeded 60; then
    pass "controller: a pod injected after the refusal got run status Succeeded (the watcher went on)"
  else
    fail "controller: the pod after the refusal got no run status within 60 s: the refused patch stopped the watcher"
  fi
  # A second refusal in the log is the retry itself (the first waits 10 s).
  for _ in $(seq 40); do
    [ "$(kubectl -n "$DEPLOY_NS" logs deploy/baton-controller 2>&1 | grep -cF "pod $NS/ctl-denied failed, retrying in")" -ge 2 ] && break
    sleep 1
  done
  check "controller: the denied patch was retried and refused again (two refusals logged within 40 s)" \
    test "$(kubectl -n "$DEPLOY_NS" logs deploy/baton-controller 2>&1 | grep -cF "pod $NS/ctl-denied failed, retrying in")" -ge 2
  check "controller: the protected pod has no run status (the policy refused every retry)" \
    test -z "$(annotation_of ctl-denied)"
  check "controller: the plain pod, not labelled baton.dev/injected, has no run status" \
    test -z "$(annotation_of ctl-plain)"
  kubectl -n "$NS" get events --field-selector involvedObject.name=ctl-failing -o json > "$dir/events.json"
  check "controller: a Warning Event with the step's reason Failed for step first of ctl-failing, from batonctl" \
    jq -e '[.items[] | select(.type == "Warning" and .reason == "Failed" and .reportingComponent == "batonctl"
      and .involvedObject.fieldPath == "spec.containers{first}")] | length == 1' "$dir/events.json"

  # A relist: the controller away (scaled to 0), a pod ends meanwhile, the controller back.
  rv_before=$(kubectl -n "$NS" get pod ctl-failing -o jsonpath='{.metadata.resourceVersion}')
  mf_before=$(kubectl -n "$NS" get pod ctl-failing --show-managed-fields -o json | jq -c .metadata.managedFields)
  kubectl -n "$DEPLOY_NS" scale deploy/baton-controller --replicas=0 >/dev/null
  kubectl -n "$DEPLOY_NS" wait --for=delete pod -l app.kubernetes.io/name=baton-controller --timeout=60s >/dev/null 2>&1
  ctl_pod ctl-away true "{}" 'echo away' 'echo away too' || return
  wait_end ctl-away || return
  check "controller: the pod that ended while the controller was away has no run status yet" \
    test -z "$(annotation_of ctl-away)"
  kubectl -n "$DEPLOY_NS" scale deploy/baton-controller --replicas=1 >/dev/null
  if wait_run_status ctl-away Succeeded 90; then
    pass "controller: after the relist, the pod that ended while the controller was away got run status Succeeded"
  else
    fail "controller: the new controller did not annotate the pod that ended while it was away within 90 s"
  fi
  # Its writes are batched: give a needless rewrite of ctl-failing time to show.
  sleep 3
  check "controller: the relist left ctl-failing as it was (resourceVersion $rv_before, same managedFields)" \
    all_ok test "$(kubectl -n "$NS" get pod ctl-failing -o jsonpath='{.metadata.resourceVersion}')" = "$rv_before" -- \
      test "$(kubectl -n "$NS" get pod ctl-failing --show-managed-fields -o json | jq -c .metadata.managedFields)" = "$mf_before"
  # The API server drops an apply that changes nothing, so the resourceVersion alone cannot tell a
  # needless write: the new controller's own count of written patches must be 1 (ctl-away's).
  # The scrape goes through the API server's proxy, which a busy node may answer with an error: tried
  # again until the controller's patch counters are in it.
  for _ in 1 2 3 4 5; do
    metrics=$(kubectl get --raw "/api/v1/namespaces/$DEPLOY_NS/pods/$(kubectl -n "$DEPLOY_NS" get pod \
      -l app.kubernetes.io/name=baton-controller --field-selector=status.phase=Running \
      -o jsonpath='{.items[0].metadata.name}'):9090/proxy/metrics" 2>&1)
    grep -q '^batonctl_watch_patches_total' <<<"$metrics" && break
    sleep 2
  done
  check "controller: after the relist the new controller wrote one patch, ctl-away's ($(grep -F 'batonctl_watch_patches_total{result="written"}' <<<"$metrics" || head -c 300 <<<"$metrics"))" \
    grep -qx 'batonctl_watch_patches_total{result="written"} 1' <<<"$metrics"
  vap_checks
  kubectl delete -f "$dir/deny.yaml" >/dev/null 2>&1
  kubectl delete -k "$dir/overlay" --timeout=120s >/dev/null 2>&1
}

# deploy/'s ValidatingAdmissionPolicy (deploy/base/controller-policy.yaml) judging requests made as the
# controller's ServiceAccount (kubectl --as; its RBAC lets it patch any pod): the run-status annotation
# may change, the image or another annotation may not. On ctl-plain, which the controller does not watch.
vap_checks() {
  local as=(--as="system:serviceaccount:$DEPLOY_NS:baton-controller")
  if kubectl -n "$NS" "${as[@]}" patch pod ctl-plain --type=json \
      -p "[{\"op\": \"replace\", \"path\": \"/spec/containers/0/image\", \"value\": \"$IMAGE_STEP-evil\"}]" > "$dir/vap-image.out" 2>&1; then
    fail "controller: the controller's ServiceAccount changed a pod's image: deploy/'s policy did not refuse it"
  else
    check "controller: deploy/'s policy refuses the controller's ServiceAccount a change of a pod's image: $(cut -c1-220 "$dir/vap-image.out")" \
      grep -qF "ValidatingAdmissionPolicy 'baton-controller-writes-run-status-only' with binding 'baton-controller-writes-run-status-only' denied request: baton-controller may change only the baton.dev/run-status annotation of a pod, not its spec" "$dir/vap-image.out"
  fi
  if kubectl -n "$NS" "${as[@]}" annotate pod ctl-plain e2e.baton.dev/other=x > "$dir/vap-other.out" 2>&1; then
    fail "controller: the controller's ServiceAccount set an annotation other than baton.dev/run-status"
  else
    check "controller: ... and another annotation than baton.dev/run-status: $(cut -c1-160 "$dir/vap-other.out")" \
      grep -qF "baton-controller may change only the baton.dev/run-status annotation of a pod" "$dir/vap-other.out"
  fi
  if kubectl -n "$NS" "${as[@]}" annotate pod ctl-plain 'baton.dev/run-status={"phase":"Succeeded"}' > "$dir/vap-annotation.out" 2>&1; then
    check "controller: deploy/'s policy lets the controller's ServiceAccount write the run-status annotation" \
      test "$(annotation_of ctl-plain)" = '{"phase":"Succeeded"}'
  else
    fail "controller: the controller's ServiceAccount could not write the run-status annotation: $(cat "$dir/vap-annotation.out")"
  fi
}

# ---------------------------------------------------------------------------------------------------
# Scenario `mesh`: a second mutating admission step (a MutatingAdmissionPolicy, as a mesh's injector)
# adds a proxy container `istio-proxy` AFTER baton's webhook injected the pod, as Istio's injector does
# (webhooks run in name order): the baton webhook (reinvocationPolicy: IfNeeded) is called again and
# must re-plan the pod: the proxy wrapped as a sidecar that stops after the last step, every step's
# --message-limit lowered to the new share of the kubelet's budget.
#
# The API server runs the mutating admission policies before the webhooks, then the whole chain once
# more when something changed (staging/src/k8s.io/apiserver/pkg/admission/reinvocation.go). A policy is
# run on that second pass only if it was invoked on the first (its match constraints and conditions
# held; plugin/policy/mutating/dispatcher.go: `ShouldReinvoke`): a policy that *matches* only pods
# labelled baton.dev/injected would never run, since that label is baton's own, added after the first
# pass. So this policy matches every pod labelled e2e.baton.dev/mesh=true and its patch adds nothing
# until baton's label is there: a no-op on the first pass, the proxy on the reinvocation; then the
# webhook, whose last output changed, is called again.

mesh_policy() {
  cat <<EOS
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicy
metadata: {name: baton-e2e-mesh}
spec:
  failurePolicy: Fail
  reinvocationPolicy: IfNeeded
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}
    objectSelector: {matchLabels: {e2e.baton.dev/mesh: "true"}}
  mutations:
  # A JSON patch: an ApplyConfiguration may not set an atomic list such as a command. Empty (nothing
  # changed) until baton's webhook labelled the pod, and once the proxy is there.
  - patchType: JSONPatch
    jsonPatch:
      expression: >-
        has(object.metadata.labels) && 'baton.dev/injected' in object.metadata.labels
          && !object.spec.containers.exists(c, c.name == 'istio-proxy')
        ? [JSONPatch{op: "add", path: "/spec/containers/-", value: Object.spec.containers{name: "istio-proxy",
            image: "$IMAGE_STEP", imagePullPolicy: "IfNotPresent", command: ["sleep", "3600"]}}]
        : []
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicyBinding
metadata: {name: baton-e2e-mesh}
spec:
  policyName: baton-e2e-mesh
EOS
}

scenario_mesh() {
  local dir
  [ "$LOCAL_CLUSTER" = 1 ] || { skip "mesh: needs e2e/cluster/up's cluster (its registry, no cert-manager)"; return; }
  if ! kubectl api-resources 2>/dev/null | grep -qi '^mutatingadmissionpolicies '; then
    skip "mesh: this API server does not serve MutatingAdmissionPolicy"
    return
  fi
  dir=$E2E_WORK/mesh
  install_deploy mesh || return
  mesh_policy > "$dir/mesh.yaml"
  kubectl apply -f "$dir/mesh.yaml" >/dev/null || { fail "mesh: the MutatingAdmissionPolicy was not created"; return; }
  sleep 2 # the policy reaches the API server's admission through an informer
  cat > "$dir/job.yaml" <<EOS
apiVersion: batch/v1
kind: Job
metadata: {name: baton-mesh}
spec:
  backoffLimit: 0
  template:
    metadata:
      labels: {e2e.baton.dev/mesh: "true"}
      annotations: {baton.dev/inject: "true"}
    spec:
      restartPolicy: Never
      containers:
      - {name: compile, image: $IMAGE_STEP, command: [sh, -c, 'echo compiled']}
      - {name: test, image: $IMAGE_STEP, command: [sh, -c, 'sleep 1; echo tested']}
EOS
  kubectl -n "$NS" apply -f "$dir/job.yaml" >/dev/null || { fail "mesh: the Job was not created"; return; }
  if kubectl -n "$NS" wait --for=condition=Complete job/baton-mesh --timeout="${POD_TIMEOUT}s" >/dev/null 2>&1; then
    pass "mesh: the injected Job with a proxy added by a MutatingAdmissionPolicy completed"
  else
    fail "mesh: the Job with the proxy did not complete within ${POD_TIMEOUT}s: $(kubectl -n "$NS" get events --field-selector reason=FailedCreate -o jsonpath='{.items[-1:].message}' 2>&1 | head -c 300)"
  fi
  kubectl -n "$NS" get pods -l batch.kubernetes.io/job-name=baton-mesh -o json > "$dir/pods.json"
  kubectl -n "$DEPLOY_NS" logs -l app.kubernetes.io/name=baton-webhook --tail=-1 --prefix > "$dir/webhook.log" 2>&1
  # The webhook's two calls for the Job's pod (generateName baton-mesh-), in the order they came.
  grep -F "batonctl webhook: Pod $NS/baton-mesh-…: " "$dir/webhook.log" | sed 's/^\[[^]]*\] //' > "$dir/webhook-mesh.log"
  check "mesh: baton's webhook saw the pod before the proxy (2 containers wrapped), then again after the policy added it (1 more wrapped): $(tr '\n' ';' < "$dir/webhook-mesh.log")" \
    test "$(sed 's/^.*: //' "$dir/webhook-mesh.log" | sort | tr '\n' ';')" = "injected (1 container wrapped);injected (2 containers wrapped);"
  check "mesh: the policy added istio-proxy to the labelled pod (baton.dev/injected) and baton wrapped it as a sidecar until the last step (--until=test)" \
    jq -e '.items[0] | (.metadata.labels["baton.dev/injected"] != null) and (.spec.containers[] | select(.name == "istio-proxy")
      | .command[0] == "/var/run/baton/bin/baton" and (.command | index("--until=test") != null))' "$dir/pods.json"
  # baton-init and 2 steps: min(4096, 12288 / 3) = 4096 each at the first call; with the proxy 12288 / 4.
  # shellcheck disable=SC2016 # jq's variables
  check "mesh: the re-plan lowered every wrapped container's --message-limit to the new share, 3072 (was 4096 for 3 containers): $(jq -c '[.items[0].spec.containers[] | {(.name): (.command[] | select(startswith("--message-limit")))}] | add' "$dir/pods.json")" \
    jq -e '[.items[0].spec.containers[] | [.command[] | select(startswith("--message-limit="))]] as $l
      | ($l | length) == 3 and all($l[]; . == ["--message-limit=3072"])' "$dir/pods.json"
  check "mesh: the proxy ended exit 0 after the steps (stopped by baton, not killed)" \
    jq -e '.items[0].status.containerStatuses[] | select(.name == "istio-proxy") | .state.terminated.exitCode == 0' "$dir/pods.json"
  kubectl delete -f "$dir/mesh.yaml" >/dev/null 2>&1
  kubectl delete -k "$dir/overlay" --timeout=120s >/dev/null 2>&1
}
