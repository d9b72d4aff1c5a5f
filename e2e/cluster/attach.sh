# shellcheck shell=bash
# shellcheck disable=SC2034 # OWN_CLUSTER, LOCAL_CLUSTER, CLUSTER_UP_MS and tls are for the suites that source it
# How a suite finds the test cluster (e2e/cluster.sh, e2e/argo-controller.sh, e2e/tekton-controller.sh):
# the one KUBECONFIG names, or e2e/cluster/up's, brought up here and taken down by cluster_detach.
# Source it after e2e/lib.sh.

# shellcheck source=e2e/cluster/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
OWN_CLUSTER=0
LOCAL_CLUSTER=0
CLUSTER_UP_MS=""
CONTROLLER_PID=""

# cluster_attach: KUBECONFIG (brought up when unset: OWN_CLUSTER=1, the time `up` took in
# CLUSTER_UP_MS); with e2e/cluster/up's cluster (LOCAL_CLUSTER=1), its kubectl on PATH and its
# registry as BATON_REGISTRY; tls, podman's flags for that registry. Dies when the API server does not
# answer or no registry is named.
cluster_attach() {
  local t0
  if [ -z "${KUBECONFIG:-}" ]; then
    t0=$(now_ms)
    KUBECONFIG=$("$CLUSTER_DIR/up" | tail -n 1) || die "e2e/cluster/up failed (its logs: $LOGS)"
    export KUBECONFIG
    OWN_CLUSTER=1
    CLUSTER_UP_MS=$(( $(now_ms) - t0 ))
  fi
  if [ "$KUBECONFIG" = "$KUBECONFIG_OUT" ] && [ -f "$RUN/bin" ]; then
    LOCAL_CLUSTER=1
    PATH=$(cat "$RUN/bin"):$PATH
    BATON_REGISTRY=$REGISTRY
  fi
  kubectl version -o json --request-timeout=5s 2>/dev/null | grep -q '"serverVersion"' \
    || die "kubectl cannot reach the API server of KUBECONFIG=$KUBECONFIG"
  [ -n "${BATON_REGISTRY:-}" ] || die "KUBECONFIG is set but BATON_REGISTRY is not: name a registry the cluster pulls from"
  # A registry on loopback is plain HTTP.
  tls=()
  case $BATON_REGISTRY in 127.0.0.1:*|localhost:*) tls=(--tls-verify=false) ;; esac
}

# cluster_detach: the cluster cluster_attach brought up taken down, unless CLUSTER_KEEP=1.
cluster_detach() {
  if [ "$OWN_CLUSTER" = 1 ] && [ "${CLUSTER_KEEP:-0}" != 1 ]; then
    "$CLUSTER_DIR/down" >&2
  elif [ "$OWN_CLUSTER" = 1 ]; then
    say "CLUSTER_KEEP=1: the test cluster stays up; KUBECONFIG=$KUBECONFIG; e2e/cluster/down takes it away"
  fi
}

# stop_controller: an engine's controller the suite runs as a host process (CONTROLLER_PID): SIGTERM,
# and SIGKILL after 5 s (Argo's v4.0.5 may not end on SIGTERM alone).
stop_controller() {
  local _
  [ -n "$CONTROLLER_PID" ] || return 0
  kill -TERM "$CONTROLLER_PID" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$CONTROLLER_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$CONTROLLER_PID" 2>/dev/null
  wait "$CONTROLLER_PID" 2>/dev/null
  CONTROLLER_PID=""
}
